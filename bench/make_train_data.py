#!/usr/bin/env python3
"""A synthetic training set for the training-step benchmark, in the official JSON layout:
N photos at SIZE² (smooth random colour fields), BiSeNet-style label maps with background, face,
eyes, ears, nose and lips as rectangles, both captions naming every facial part, and a unit
identity per photo. Timing does not depend on the content.

    bench/make_train_data.py OUT [N=16] [SIZE=512]
"""

import json
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

out = Path(sys.argv[1])
n = int(sys.argv[2]) if len(sys.argv) > 2 else 16
size = int(sys.argv[3]) if len(sys.argv) > 3 else 512
out.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(0)
records = []
for i in range(n):
    coarse = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    Image.fromarray(coarse).resize((size, size), Image.BICUBIC).save(out / f"{i}_resize.png")
    labels = np.zeros((size, size), np.uint8)
    for label, (y0, y1, x0, x1) in [(1, (0.2, 0.8, 0.25, 0.75)), (4, (0.35, 0.4, 0.3, 0.45)),
                                    (5, (0.35, 0.4, 0.55, 0.7)), (7, (0.4, 0.5, 0.2, 0.25)),
                                    (10, (0.45, 0.6, 0.45, 0.55)), (12, (0.65, 0.7, 0.4, 0.6))]:
        labels[int(y0 * size):int(y1 * size), int(x0 * size):int(x1 * size)] = label
    labels[int(0.8 * size):, :] = 16  # cloth reaching the border: a foreground to mask by
    Image.fromarray(labels).save(out / f"{i}_mask.png")
    face = torch.nn.functional.normalize(torch.randn(1, 512), dim=-1)
    torch.save(face, out / f"{i}_faceid.bin")
    records.append({
        "origin_IMG": f"{i}.png", "resize_IMG": f"{i}_resize.png", "parsing_color_IMG": f"{i}_color.png",
        "parsing_mask_IMG": f"{i}_mask.png", "id_embed_file_origin": f"{i}_faceid.bin",
        "vqa_llva": "The image features a young woman with short hair, smiling, in a black jacket.",
        "vqa_llva_more_face_detail": "She has an oval face, small ears, large eyes, a small nose and a thin mouth.",
    })
(out / "JSON_all.json").write_text(json.dumps(records))
print(f"{n} records in {out / 'JSON_all.json'}")
