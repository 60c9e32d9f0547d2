#!/usr/bin/env python3
"""Reference MTCNN detections with facenet-pytorch 2.6.0 (its own `detect_face`, the real MIT
weights from its wheel) on the real public-domain photos.

Writes tests/fixtures/face/mtcnn_<photo>.safetensors: boxes [N,4], scores [N], landmarks [N,5,2]
(order of `detect_face`: highest score first; `select_largest=False`).
Needs: facenet-pytorch==2.6.0 (pip install --no-deps), torch 2.0.0, torchvision 0.15.1, pillow,
and the real data (tests/scripts/fetch_real_data.sh).

    venv/bin/python tests/scripts/gen_mtcnn.py
"""

import os
from pathlib import Path

import numpy as np
import torch
from facenet_pytorch import MTCNN
from PIL import Image
from safetensors.numpy import save_file

assert torch.__version__.startswith("2.0.0")
ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("CONSISTENTID_REAL_DATA", Path.home() / ".cache/consistentid/real-data"))


def main():
    mtcnn = MTCNN(keep_all=True, select_largest=False, device="cpu")
    for photo, file in (("astronaut", "astronaut.png"), ("grace_hopper", "grace_hopper.jpg")):
        img = Image.open(DATA / "images" / file).convert("RGB")
        boxes, probs, points = (np.array(v, dtype=np.float32) for v in mtcnn.detect(img, landmarks=True))
        save_file({
            "boxes": boxes.astype(np.float32),
            "scores": probs.astype(np.float32),
            "landmarks": points.astype(np.float32),
        }, str(ROOT / "fixtures" / "face" / f"mtcnn_{photo}.safetensors"))
        print(photo, boxes.round(2).tolist(), probs.tolist())


if __name__ == "__main__":
    main()
