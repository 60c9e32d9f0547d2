#!/usr/bin/env python3
"""The official evaluation helpers' `crop_image` (evaluation/eval_function.py:12-28 of
JackAILab/ConsistentID e234008, restated here: Pillow 'L', pixels > threshold, their bounding
box, `Image.crop((left, top, right, bottom))`) on random region composites: dark noise with a
brighter blob, so the greyscale threshold and Pillow's rounding decide the box. Pillow 10.4.0.

Writes tests/fixtures/eval/crop.json: per case the RGB bytes, the size and the expected crop.

    venv/bin/pip install numpy==1.26.4 Pillow==10.4.0
    venv/bin/python tests/scripts/gen_eval_crop.py
"""

import json
import sys
from pathlib import Path

import numpy as np
import PIL
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_eval_crop_helper import crop_image  # noqa: E402

assert PIL.__version__ == "10.4.0"


rng = np.random.default_rng(7)
cases = []
for k in range(6):
    w, h = int(rng.integers(12, 40)), int(rng.integers(12, 40))
    # Values around the threshold: greys of 9-13 in one channel or several.
    img = rng.integers(0, 14, size=(h, w, 3), dtype=np.uint8)
    img[rng.random((h, w)) < 0.7] = 0
    y0, x0 = int(rng.integers(0, h // 2)), int(rng.integers(0, w // 2))
    img[y0 : y0 + h // 3, x0 : x0 + w // 3] = rng.integers(20, 255, size=3, dtype=np.uint8)
    pil = Image.fromarray(img, "RGB")
    crop = crop_image(pil)
    cases.append(
        {
            "width": w,
            "height": h,
            "rgb": img.flatten().tolist(),
            "crop_width": crop.width,
            "crop_height": crop.height,
            "crop_rgb": np.array(crop).flatten().tolist(),
        }
    )

out = Path(__file__).resolve().parents[1] / "fixtures/eval/crop.json"
out.write_text(json.dumps({"threshold": 10, "cases": cases}))
print(out, [(c["crop_width"], c["crop_height"]) for c in cases])
