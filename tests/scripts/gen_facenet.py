#!/usr/bin/env python3
"""Parity fixture for FaceSim with FaceNet under FastComposer's rule: facenet-pytorch 2.6.0's own
`MTCNN(image_size=160, margin=0, min_face_size=20, thresholds=[0.6, 0.7, 0.7], factor=0.709,
post_process=True, keep_all=True)` with its real (MIT) weights on the real photos, the first face's
crop (`extract_face` + `fixed_image_standardization`), and its own `InceptionResnetV1` code with
the channel widths divided by 16 (literal substitution, as gen_bisenet.py does for BiSeNet) and
random weights and BatchNorm statistics and 2 of each residual block's repeats, saved with `torch.save(state_dict)` as
tests/fixtures/facenet_tiny/facenet.pt.
expected.safetensors per photo: `<photo>.box` (the first face's box as MTCNN returns it),
`<photo>.face` [160, 160, 3] u8 (the resized crop; the network input is (x − 127.5) / 128),
`<photo>.embedding` [1, 32]; and `facesim`,
max(dot, 0) of the two embeddings (FastComposer's `single_object_evaluation.py` rule).

Needs the real data; torch 2.0.0, torchvision 0.15.1, facenet-pytorch 2.6.0 (--no-deps), pillow.

    venv/bin/python tests/scripts/gen_facenet.py
"""

import os
import re
import sys
import types
from pathlib import Path

import facenet_pytorch
import torch
from facenet_pytorch import MTCNN
from PIL import Image
from safetensors.torch import save_file

assert torch.__version__.startswith("2.0.0")
OUT = Path(__file__).resolve().parents[1] / "fixtures" / "facenet_tiny"
DATA = Path(os.environ.get("CONSISTENTID_REAL_DATA", Path.home() / ".cache/consistentid/real-data"))
WIDTHS = {"32": "2", "64": "4", "80": "5", "96": "6", "128": "8", "192": "12", "256": "16",
          "384": "24", "512": "32", "896": "56", "1792": "112"}


def tiny_module():
    src = (Path(facenet_pytorch.__file__).parent / "models" / "inception_resnet_v1.py").read_text()
    src = re.sub(r"\b(" + "|".join(WIDTHS) + r")\b", lambda m: WIDTHS[m.group(1)], src)
    mod = types.ModuleType("tiny_inception_resnet_v1")
    mod.__package__ = "facenet_pytorch.models"
    exec(compile(src, "inception_resnet_v1.py", "exec"), mod.__dict__)
    return mod


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(6)
    net = tiny_module().InceptionResnetV1(classify=False).eval()
    # Fewer repeats of each residual block (5/10/5 in the real network) keep the file small; the
    # loader counts them from the state dict.
    net.repeat_1, net.repeat_2, net.repeat_3 = net.repeat_1[:2], net.repeat_2[:2], net.repeat_3[:2]
    with torch.no_grad():
        for name, p in net.state_dict().items():
            if name.endswith("running_var"):
                p.copy_(torch.rand_like(p) * 0.5 + 0.75)
            elif name.endswith("running_mean"):
                p.copy_(torch.randn_like(p) * 0.1)
            elif p.is_floating_point():
                p.add_(torch.randn_like(p) * 0.02)
    torch.save(net.state_dict(), OUT / "facenet.pt")
    mtcnn = MTCNN(image_size=160, margin=0, min_face_size=20, thresholds=[0.6, 0.7, 0.7], factor=0.709,
                  post_process=True, keep_all=True, device="cpu")
    out, embeddings = {}, []
    for photo, file in (("astronaut", "astronaut.png"), ("grace_hopper", "grace_hopper.jpg")):
        img = Image.open(DATA / "images" / file).convert("RGB")
        boxes, _ = mtcnn.detect(img)
        faces = mtcnn(img)
        assert faces is not None, photo
        with torch.no_grad():
            emb = net(faces[:1])
        out[f"{photo}.box"] = torch.tensor([float(v) for v in boxes[0]], dtype=torch.float32)
        pixels = (faces[0] * 128 + 127.5).round()
        assert torch.equal((pixels - 127.5) / 128, faces[0])
        out[f"{photo}.face"] = pixels.to(torch.uint8).permute(1, 2, 0).contiguous()
        out[f"{photo}.embedding"] = emb
        embeddings.append(emb)
    out["facesim"] = torch.clamp(embeddings[0] @ embeddings[1].T, min=0).reshape(1)
    save_file(out, str(OUT / "expected.safetensors"))
    print({k: v.tolist() for k, v in out.items() if k.endswith("box") or k == "facesim"})


if __name__ == "__main__":
    main()
