#!/usr/bin/env python3
"""Parity fixtures for the ONNX executor, referenced against onnxruntime.

Writes tests/fixtures/onnx/<case>.onnx and <case>.safetensors. The safetensors file holds the
graph inputs under their graph names and onnxruntime's outputs as `expected.<output name>`.

Two kinds of cases:
  * op cases: one or a few nodes built with onnx.helper, covering every attribute path the
    executor implements (pads/strides/groups/dilations, auto_pad, ceil_mode, every Resize
    coordinate mode, old-opset variants, dynamic shape chains);
  * whole graphs exported from PyTorch with random weights and the real models' structure:
    insightface's IResNet (ArcFace w600k_r50 / glintr100 layout, at tiny widths) and an
    SCRFD-shaped detector (strides 8/16/32, 2 anchors, score/bbox/kps heads, FPN upsampling,
    GroupNorm heads, learnable Scale), exported with dynamic H/W like det_10g.onnx.

Environment (pinned): python 3.11, torch 2.0.0, onnx 1.14.1, onnxruntime 1.16.3, numpy 1.24.3.

    venv/bin/pip install torch==2.0.0 onnx==1.14.1 onnxruntime==1.16.3 numpy==1.24.3 safetensors==0.4.0
    venv/bin/python tests/scripts/gen_onnx.py
"""

import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn as nn
from onnx import TensorProto, helper, numpy_helper
from safetensors.numpy import save_file

assert torch.__version__.startswith("2.0.0"), torch.__version__
assert onnx.__version__ == "1.14.1", onnx.__version__
assert ort.__version__ == "1.16.3", ort.__version__

OUT = Path(__file__).resolve().parents[1] / "fixtures" / "onnx"
RNG = np.random.default_rng(1234)


def randn(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def save_case(name, model_bytes, feeds):
    path = OUT / f"{name}.onnx"
    path.write_bytes(model_bytes)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    outs = sess.run(None, feeds)
    tensors = {k: np.ascontiguousarray(v) for k, v in feeds.items()}
    for meta, value in zip(sess.get_outputs(), outs):
        value = np.asarray(value)
        if value.dtype.kind in "iub":
            value = value.astype(np.int64)
        else:
            value = value.astype(np.float32)
        tensors[f"expected.{meta.name}"] = np.ascontiguousarray(value)
    save_file(tensors, str(OUT / f"{name}.safetensors"))


def graph_case(name, nodes, inputs, outputs, initializers=(), opset=13):
    """`inputs`: list of (name, array) fed at run time; `initializers`: list of (name, array)."""
    g = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape) for n, a in inputs],
        [helper.make_tensor_value_info(o, TensorProto.INT64 if o in INT_OUTPUTS else TensorProto.FLOAT, None) for o in outputs],
        [numpy_helper.from_array(a, n) for n, a in initializers],
    )
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 7
    # (no onnx.checker: outputs are declared without shapes; onnxruntime validates the graph)
    save_case(name, model.SerializeToString(), dict(inputs))


# Outputs of the op cases that are integer tensors.
INT_OUTPUTS = {"s2", "xi"}


def i64(*v):
    return np.array(v, dtype=np.int64)


def op_cases():
    N = helper.make_node
    x = randn(2, 4, 9, 11)
    # Convolutions.
    graph_case("conv_groups_pads", [N("Conv", ["x", "w", "b"], ["y"], group=2, pads=[1, 0, 2, 1], strides=[2, 1], dilations=[2, 1])],
               [("x", x)], ["y"], [("w", randn(6, 2, 3, 2)), ("b", randn(6))])
    graph_case("conv_same_upper", [N("Conv", ["x", "w"], ["y"], auto_pad="SAME_UPPER", strides=[2, 2])],
               [("x", x)], ["y"], [("w", randn(3, 4, 4, 3))])
    graph_case("conv_depthwise_same_lower", [N("Conv", ["x", "w", "b"], ["y"], group=4, auto_pad="SAME_LOWER", strides=[2, 2])],
               [("x", x)], ["y"], [("w", randn(4, 1, 2, 2)), ("b", randn(4))])
    # Normalisation and activations.
    var = np.abs(randn(4)) + 0.1
    graph_case("batchnorm_prelu", [
        N("BatchNormalization", ["x", "s", "bb", "m", "v"], ["bn"], epsilon=1e-3),
        N("PRelu", ["bn", "slope"], ["y"]),
    ], [("x", x)], ["y"], [("s", randn(4)), ("bb", randn(4)), ("m", randn(4)), ("v", var), ("slope", randn(4, 1, 1))])
    graph_case("batchnorm_1d", [N("BatchNormalization", ["x", "s", "bb", "m", "v"], ["y"])],
               [("x", randn(3, 4))], ["y"], [("s", randn(4)), ("bb", randn(4)), ("m", randn(4)), ("v", var)])
    graph_case("instance_norm", [N("InstanceNormalization", ["x", "s", "b"], ["y"], epsilon=1e-5)],
               [("x", x)], ["y"], [("s", randn(4)), ("b", randn(4))])
    graph_case("unary_chain", [
        N("LeakyRelu", ["x"], ["a"], alpha=0.2), N("Sigmoid", ["a"], ["b"]), N("Tanh", ["x"], ["c"]),
        N("Abs", ["x"], ["d"]), N("Sqrt", ["d"], ["e"]), N("Neg", ["e"], ["f"]), N("Exp", ["f"], ["g"]),
        N("Relu", ["x"], ["h"]), N("Clip", ["x", "lo", "hi"], ["i"]), N("Identity", ["i"], ["j"]),
        N("Dropout", ["j"], ["k"]),
    ], [("x", x)], ["b", "c", "g", "h", "k"], [("lo", np.array(-0.5, np.float32)), ("hi", np.array(0.7, np.float32))])
    graph_case("clip_opset6", [N("Clip", ["x"], ["y"], min=-0.3, max=0.4)], [("x", x)], ["y"], opset=6)
    graph_case("broadcast_arith", [
        N("Add", ["x", "c1"], ["a"]), N("Mul", ["a", "c2"], ["b"]), N("Sub", ["c3", "b"], ["c"]),
        N("Div", ["c", "c4"], ["d"]), N("Pow", ["c4", "two"], ["e"]), N("Add", ["d", "e"], ["y"]),
    ], [("x", x)], ["y"], [("c1", randn(4, 1, 1)), ("c2", randn(11)), ("c3", randn(1, 1, 9, 1)),
                           ("c4", np.abs(randn(2, 1, 1, 11)) + 0.5), ("two", np.array([2.0], np.float32))])
    # Pooling and reductions.
    graph_case("maxpool_pads", [N("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])], [("x", x)], ["y"])
    graph_case("maxpool_ceil", [N("MaxPool", ["x"], ["y"], kernel_shape=[2, 3], strides=[2, 2], ceil_mode=1)], [("x", x)], ["y"])
    graph_case("avgpool_exclude_pad", [N("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])], [("x", x)], ["y"])
    graph_case("avgpool_include_pad", [N("AveragePool", ["x"], ["y"], kernel_shape=[3, 2], strides=[1, 2], pads=[1, 0, 1, 0], count_include_pad=1)], [("x", x)], ["y"])
    graph_case("avgpool_2x2", [N("AveragePool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1, count_include_pad=0)], [("x", x)], ["y"])
    graph_case("global_pools", [N("GlobalAveragePool", ["x"], ["a"]), N("GlobalMaxPool", ["x"], ["b"])], [("x", x)], ["a", "b"])
    graph_case("reduce_mean_attr", [N("ReduceMean", ["x"], ["a"], axes=[2, 3]), N("ReduceMean", ["x"], ["b"], axes=[-3], keepdims=0),
                                    N("ReduceMax", ["x"], ["c"], axes=[1])], [("x", x)], ["a", "b", "c"])
    graph_case("reduce_sum_input", [N("ReduceSum", ["x", "axes"], ["y"], keepdims=0)], [("x", x)], ["y"], [("axes", i64(1, 3))])
    # Matrix products and softmax.
    graph_case("gemm", [N("Gemm", ["a", "b", "c"], ["y"], alpha=0.5, beta=2.0, transB=1)],
               [("a", randn(3, 5))], ["y"], [("b", randn(7, 5)), ("c", randn(7))])
    graph_case("gemm_transa", [N("Gemm", ["a", "b"], ["y"], transA=1)], [("a", randn(5, 3))], ["y"], [("b", randn(5, 4))])
    graph_case("matmul_broadcast", [N("MatMul", ["a", "b"], ["y"]), N("MatMul", ["y", "v"], ["z"])],
               [("a", randn(2, 3, 4, 5))], ["y", "z"], [("b", randn(5, 6)), ("v", randn(6))])
    graph_case("softmax_13", [N("Softmax", ["x"], ["y"], axis=1)], [("x", x)], ["y"])
    graph_case("softmax_11_flatten", [N("Softmax", ["x"], ["y"], axis=2)], [("x", x)], ["y"], opset=11)
    # Resizing.
    small = randn(1, 3, 5, 7)
    empty = np.array([], np.float32)
    graph_case("resize_nearest_asym", [N("Resize", ["x", "", "s"], ["y"], mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor")],
               [("x", small)], ["y"], [("s", np.array([1, 1, 2, 2], np.float32))])
    graph_case("resize_nearest_sizes", [N("Resize", ["x", "", "", "sz"], ["y"], mode="nearest")],
               [("x", small)], ["y"], [("sz", i64(1, 3, 8, 12))])
    graph_case("resize_nearest_ceil_down", [N("Resize", ["x", "", "", "sz"], ["y"], mode="nearest", nearest_mode="ceil", coordinate_transformation_mode="tf_half_pixel_for_nn")],
               [("x", small)], ["y"], [("sz", i64(1, 3, 3, 4))])
    graph_case("resize_linear_half", [N("Resize", ["x", "roi", "s"], ["y"], mode="linear")],
               [("x", small)], ["y"], [("roi", empty), ("s", np.array([1, 1, 1.5, 2.5], np.float32))])
    graph_case("resize_linear_corners", [N("Resize", ["x", "", "", "sz"], ["y"], mode="linear", coordinate_transformation_mode="align_corners")],
               [("x", small)], ["y"], [("sz", i64(1, 3, 9, 4))])
    graph_case("resize_linear_pytorch_down", [N("Resize", ["x", "", "", "sz"], ["y"], mode="linear", coordinate_transformation_mode="pytorch_half_pixel")],
               [("x", small)], ["y"], [("sz", i64(1, 3, 1, 3))])
    graph_case("resize_opset10", [N("Resize", ["x", "s"], ["y"], mode="nearest")],
               [("x", small)], ["y"], [("s", np.array([1, 1, 3, 2], np.float32))], opset=10)
    graph_case("upsample_opset9", [N("Upsample", ["x", "s"], ["y"], mode="nearest")],
               [("x", small)], ["y"], [("s", np.array([1, 1, 2, 2], np.float32))], opset=9)
    graph_case("upsample_opset7_linear", [N("Upsample", ["x"], ["y"], mode="linear", scales=[1.0, 1.0, 2.0, 3.0])],
               [("x", small)], ["y"], opset=7)
    # Shapes: a dynamic reshape chain as exporters write it, slices, gathers, casts, constants.
    graph_case("shape_chain", [
        N("Shape", ["x"], ["s"]),
        N("Gather", ["s", "zero"], ["n"], axis=0),
        N("Unsqueeze", ["n", "zero1"], ["n1"]),
        N("Concat", ["n1", "tail"], ["target"], axis=0),
        N("Reshape", ["x", "target"], ["r"]),
        N("Transpose", ["r"], ["t"], perm=[0, 2, 1]),
        N("Unsqueeze", ["t", "two"], ["u"]),
        N("Squeeze", ["u", "two"], ["sq"]),
        N("Flatten", ["sq"], ["q"], axis=1),
        N("Cast", ["s"], ["sf"], to=TensorProto.FLOAT),
        N("ConstantOfShape", ["cshape"], ["z"], value=numpy_helper.from_array(np.array([1.5], np.float32))),
        N("Constant", [], ["k"], value=numpy_helper.from_array(np.array([[2.0, -1.0]], np.float32))),
        N("Mul", ["z", "k"], ["zk"]),
        N("Shape", ["x"], ["s2"], start=1, end=-1),
    ], [("x", x)], ["q", "sf", "zk", "s2"], [("zero", np.array(0, np.int64)), ("zero1", i64(0)), ("tail", i64(4, -1)), ("two", i64(2)), ("cshape", i64(4, 1))], opset=15)
    graph_case("slice_steps", [
        N("Slice", ["x", "st", "en", "ax", "sp"], ["a"]),
        N("Slice", ["x", "st2", "en2"], ["b"]),
        N("Gather", ["x", "idx"], ["c"], axis=3),
        N("Unsqueeze", ["c", "ax2"], ["d"]),
        N("Concat", ["x", "x"], ["e"], axis=-1),
        N("Cast", ["x"], ["xi"], to=TensorProto.INT64),
    ], [("x", x)], ["a", "b", "d", "e", "xi"], [("st", i64(-1, 1)), ("en", i64(-100, 8)), ("ax", i64(2, 3)), ("sp", i64(-2, 3)),
                                            ("st2", i64(0, 1)), ("en2", i64(1, 3)), ("idx", np.array([[0, -1], [2, 2]], np.int64)),
                                            ("ax2", i64(0))])
    graph_case("slice_opset9", [N("Slice", ["x"], ["y"], starts=[1, 2], ends=[3, 100], axes=[1, 3]),
                                N("Unsqueeze", ["y"], ["z"], axes=[0]), N("Squeeze", ["z"], ["w"], axes=[0])],
               [("x", x)], ["w"], opset=9)


# --- whole graphs: insightface IResNet and an SCRFD-shaped detector ------------------------------

class IBasicBlock(nn.Module):
    """insightface recognition/arcface_torch/backbones/iresnet.py block."""

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes, eps=1e-05)
        self.conv1 = nn.Conv2d(inplanes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes, eps=1e-05)
        self.prelu = nn.PReLU(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes, eps=1e-05)
        self.downsample = downsample

    def forward(self, x):
        identity = x
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        if self.downsample is not None:
            identity = self.downsample(x)
        return out + identity


class IResNet(nn.Module):
    def __init__(self, layers, widths, emb):
        super().__init__()
        self.inplanes = widths[0]
        self.conv1 = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0], eps=1e-05)
        self.prelu = nn.PReLU(widths[0])
        self.layer1 = self._make(widths[0], layers[0])
        self.layer2 = self._make(widths[1], layers[1])
        self.layer3 = self._make(widths[2], layers[2])
        self.layer4 = self._make(widths[3], layers[3])
        self.bn2 = nn.BatchNorm2d(widths[3], eps=1e-05)
        self.dropout = nn.Dropout(p=0.0)
        self.fc = nn.Linear(widths[3] * 7 * 7, emb)
        self.features = nn.BatchNorm1d(emb, eps=1e-05)

    def _make(self, planes, blocks):
        down = nn.Sequential(nn.Conv2d(self.inplanes, planes, 1, 2, bias=False), nn.BatchNorm2d(planes, eps=1e-05))
        layers = [IBasicBlock(self.inplanes, planes, 2, down)]
        self.inplanes = planes
        layers += [IBasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.bn2(x)
        x = torch.flatten(x, 1)
        x = self.dropout(x)
        return self.features(self.fc(x))


class Scale(nn.Module):
    def __init__(self, v):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(v, dtype=torch.float32))

    def forward(self, x):
        return x * self.scale


class ScrfdReplica(nn.Module):
    """SCRFD layout: backbone to strides 8/16/32, top-down FPN with nearest upsampling, shared
    heads (GroupNorm + ReLU), 2 anchors per location, outputs ordered score x3, bbox x3, kps x3
    with shapes (H*W*2, 1), (H*W*2, 4), (H*W*2, 10) as det_10g.onnx."""

    def __init__(self, c=8):
        super().__init__()
        def block(i, o, s):
            return nn.Sequential(nn.Conv2d(i, o, 3, s, 1, bias=False), nn.BatchNorm2d(o), nn.ReLU())
        self.stem = nn.Sequential(block(3, c, 2), block(c, c, 2), nn.MaxPool2d(3, 1, 1))
        self.c8 = block(c, 2 * c, 2)
        self.c16 = nn.Sequential(nn.AvgPool2d(2, 2, count_include_pad=False), block(2 * c, 2 * c, 1))
        self.c32 = block(2 * c, 4 * c, 2)
        self.lat = nn.ModuleList([nn.Conv2d(ch, c, 1) for ch in (2 * c, 2 * c, 4 * c)])
        self.head = nn.Sequential(nn.Conv2d(c, c, 3, 1, 1), nn.GroupNorm(2, c), nn.ReLU())
        self.cls = nn.Conv2d(c, 2, 3, 1, 1)
        self.reg = nn.Conv2d(c, 8, 3, 1, 1)
        self.kps = nn.Conv2d(c, 20, 3, 1, 1)
        self.scales = nn.ModuleList([Scale(1.0 + 0.1 * i) for i in range(3)])

    def forward(self, x):
        f8 = self.c8(self.stem(x))
        f16 = self.c16(f8)
        f32 = self.c32(f16)
        p32 = self.lat[2](f32)
        p16 = self.lat[1](f16) + nn.functional.interpolate(p32, size=f16.shape[2:], mode="nearest")
        p8 = self.lat[0](f8) + nn.functional.interpolate(p16, size=f8.shape[2:], mode="nearest")
        scores, boxes, kpss = [], [], []
        for p, scale in zip((p8, p16, p32), self.scales):
            h = self.head(p)
            scores.append(self.cls(h).sigmoid().permute(0, 2, 3, 1).reshape(-1, 1))
            boxes.append(scale(self.reg(h)).permute(0, 2, 3, 1).reshape(-1, 4))
            kpss.append(self.kps(h).permute(0, 2, 3, 1).reshape(-1, 10))
        return (*scores, *boxes, *kpss)


def randomize(module, seed):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("scale"):
                continue
            p.copy_(torch.randn(p.shape, generator=gen) * (0.5 if p.dim() > 1 else 0.3) + (1.0 if "bn" in name and name.endswith("weight") else 0.0))
        for name, b in module.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(torch.randn(b.shape, generator=gen) * 0.1)
            elif name.endswith("running_var"):
                b.copy_(torch.rand(b.shape, generator=gen) + 0.5)
    # Keep activations in a sane range through deep stacks: scale conv weights by fan-in.
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                fan_in = m.weight[0].numel()
                m.weight.mul_(1.0 / np.sqrt(fan_in))


def export(module, name, example, dynamic, input_name, output_names):
    module.eval()
    import io
    buf = io.BytesIO()
    torch.onnx.export(module, example, buf, input_names=[input_name], output_names=output_names, opset_version=11,
                      dynamic_axes=dynamic, do_constant_folding=True)
    return buf.getvalue()


def whole_graphs():
    # iresnet_tiny_512: the real 512-number embedding (w600k_r50's), for the tiny ConsistentID
    # folder of the host and browser tests (buffalo_l replica: scrfd_tiny_det + this).
    for name, layers, widths, emb in (("iresnet50_tiny", [3, 4, 14, 3], [4, 8, 8, 16], 64),
                                      ("iresnet100_tiny", [3, 13, 30, 3], [4, 4, 8, 8], 32),
                                      ("iresnet_tiny_512", [1, 1, 1, 1], [2, 2, 4, 4], 512)):
        net = IResNet(layers, widths, emb)
        randomize(net, 7)
        x = torch.randn(1, 3, 112, 112, generator=torch.Generator().manual_seed(3))
        data = export(net, name, x, {"input.1": {0: "None"}}, "input.1", ["fc1"])
        save_case(name, data, {"input.1": x.numpy()})

    net = ScrfdReplica()
    randomize(net, 11)
    with torch.no_grad():  # spread the scores over (0, 1) so that thresholds and NMS matter
        net.cls.weight.mul_(40.0)
        net.cls.bias.fill_(-2.0)
    names = [f"{k}_{s}" for k in ("score", "bbox", "kps") for s in (8, 16, 32)]
    x = torch.randn(1, 3, 96, 128, generator=torch.Generator().manual_seed(5))
    data = export(net, "scrfd_tiny", x, {"input.1": {2: "?", 3: "?"}}, "input.1", names)
    save_case("scrfd_tiny", data, {"input.1": x.numpy()})
    # The same graph at the detector's real input size for the SCRFD pipeline tests.
    (OUT / "scrfd_tiny_det.onnx").write_bytes(data)


def unsupported_case():
    """A valid graph with an op outside the executor's set (Erf): loading must name it."""
    g = helper.make_graph([helper.make_node("Erf", ["x"], ["y"], name="the_erf")], "unsupported",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    (OUT / "unsupported_erf.onnx").write_bytes(model.SerializeToString())


def main():
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    unsupported_case()
    op_cases()
    whole_graphs()
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"wrote {len(list(OUT.iterdir()))} files, {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
