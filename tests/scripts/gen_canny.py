#!/usr/bin/env python3
"""Canny control images as the official ControlNet demo makes them (`demo/controlnet_demo.py`:
`cv2.Canny(np.array(image), 100, 200)` on the RGB array, then the edges in all three channels):
OpenCV 4.8.1's own Canny (3×3 Sobel, L1 gradient, the colour channel of largest gradient per
pixel) on the real photos (the astronaut at its size; Grace Hopper at 512² as the demo resizes,
Pillow's default filter) and on a small synthetic image with flat areas and ties, at thresholds
(100, 200) and (30, 90).

Writes tests/fixtures/canny/expected.safetensors: per case the input (`<case>.rgb`, u8 [H, W, 3],
for the synthetic one; the photos are read by the test, Grace Hopper resized with Pillow's BICUBIC) and the edges bit-packed row by row (`<case>.edges`,
np.packbits of edges > 0) with `<case>.shape`.

Needs the real data; opencv-python-headless 4.8.1.78, numpy 1.24.3, pillow 10.0.1.

    venv/bin/python tests/scripts/gen_canny.py
"""

import os
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from safetensors.numpy import save_file

assert cv2.__version__ == "4.8.1"
OUT = Path(__file__).resolve().parents[1] / "fixtures" / "canny"
DATA = Path(os.environ.get("CONSISTENTID_REAL_DATA", Path.home() / ".cache/consistentid/real-data"))


def synthetic():
    rng = np.random.default_rng(9)
    img = np.zeros((37, 53, 3), np.uint8)
    img[5:20, 8:30] = (200, 40, 40)
    img[12:33, 25:50] = (40, 200, 90)
    img[:, 40:] += rng.integers(0, 60, size=(37, 13, 3), dtype=np.uint8)
    yy, xx = np.mgrid[0:37, 0:53]
    img[..., 2] = ((xx * 4 + yy * 3) % 256).astype(np.uint8)
    return img


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    astronaut = np.array(Image.open(DATA / "images" / "astronaut.png").convert("RGB"))
    grace = np.array(Image.open(DATA / "images" / "grace_hopper.jpg").convert("RGB").resize((512, 512)))
    out = {}
    for case, img, keep in (("synthetic", synthetic(), True), ("astronaut", astronaut, False), ("grace_hopper", grace, False)):
        for low, high in ((100, 200), (30, 90)):
            name = f"{case}_{low}_{high}"
            edges = cv2.Canny(img, low, high)
            assert set(np.unique(edges)) <= {0, 255}
            out[f"{name}.edges"] = np.packbits(edges > 0, axis=1)
            out[f"{name}.shape"] = np.array(edges.shape, np.int64)
            print(name, int((edges > 0).sum()), "edge pixels")
        if keep:
            out[f"{case}.rgb"] = np.ascontiguousarray(img)
    save_file(out, str(OUT / "expected.safetensors"))


if __name__ == "__main__":
    main()
