#!/usr/bin/env python3
"""Samples of the OFFICIAL `MyDataset.__getitem__` (utils.py, imported at run time from
OFFICIAL_DIR, a checkout of JackAILab/ConsistentID at e234008) on a 3-record FGID-style folder
written here (size 40): a square photo with every facial label, a 48x40 photo (resized and
centre-cropped) whose caption lacks the ears, and a sample whose text is dropped. The text-drop
coin is set through `random.random` (the only patch). Tokenizer: transformers 4.31
`CLIPTokenizer` with the real CLIP vocabulary (tests/scripts/fetch_real_data.sh).

Writes tests/fixtures/training_sample/: per record i the photo `i.png`, the label map
`i_mask.png`, and in expected.safetensors `i.image` [3,40,40], `i.clip_image` and
`i.facial_clip_image` every 8th pixel ([3,28,28], [5,3,28,28]: CLIPImageProcessor itself is
checked elsewhere), `i.facial_mask` [5,40,40], `i.foreground` [40,40] (WithoutBackground),
`i.input_ids`; captions in records.json.

    OFFICIAL_DIR=/path/to/ConsistentID venv/bin/python tests/scripts/gen_training_sample.py
"""

import json
import os
import random
import sys
from pathlib import Path

import numpy as np
import torch
import transformers
from PIL import Image
from safetensors.torch import save_file
from transformers import CLIPTokenizer

assert transformers.__version__ == "4.31.0"
sys.path.insert(0, os.environ["OFFICIAL_DIR"])
import utils  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "fixtures" / "training_sample"
DATA = Path(os.environ.get("CONSISTENTID_REAL_DATA", Path.home() / ".cache/consistentid/real-data"))
FACE = "The face is oval, the ears small, the eyes dark, the nose straight and the mouth wide."
RECORDS = [
    ((40, 40), [1, 4, 5, 7, 8, 10, 12, 13, 17], "A woman smiling. She stands outside.", FACE, False),
    ((48, 40), [1, 2, 4, 7, 10, 11, 12], "A man in a hat. Indoors.", "His face is long, his eyes blue, his nose thin.", False),
    ((40, 40), [1, 4, 10, 12], "A child. At the beach.", FACE, True),
]


def labels(values, seed):
    """A head-like label map: hair (17) and skin (1) blobs, a skin hole holding the features."""
    arr = np.zeros((40, 40), np.uint8)
    arr[4:36, 8:32] = values[0]
    boxes = [(10, 14, 12, 17), (10, 14, 23, 28), (15, 21, 4, 8), (15, 21, 32, 36), (17, 23, 18, 22), (14, 16, 12, 18), (26, 29, 15, 25), (29, 31, 15, 25)]
    for v, (y0, y1, x0, x1) in zip(values[1:], boxes):
        arr[y0:y1, x0:x1] = v
    return Image.fromarray(arr)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    tok = CLIPTokenizer.from_pretrained(DATA / "clip" / "tokenizer")
    records = []
    for i, ((w, h), values, caption, face, _) in enumerate(RECORDS):
        rng = np.random.default_rng(i)
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(OUT / f"{i}.png")
        labels(values, i).save(OUT / f"{i}_mask.png")
        records.append({"resize_IMG": f"{i}.png", "parsing_mask_IMG": f"{i}_mask.png", "vqa_llva": caption, "vqa_llva_more_face_detail": face})
    (OUT / "records.json").write_text(json.dumps(records, indent=1) + "\n")
    ds = utils.MyDataset(str(OUT / "records.json"), None, tokenizer=tok, size=40, image_root_path=str(OUT), parsing_root_path=str(OUT))
    out = {}
    for i, rec in enumerate(RECORDS):
        random.random = (lambda: 0.05) if rec[4] else (lambda: 0.5)
        item = ds[i]
        out[f"{i}.image"] = item["image"]
        out[f"{i}.clip_image"] = item["clip_image"][0, :, ::8, ::8]
        out[f"{i}.facial_clip_image"] = item["facial_clip_image"][:, :, ::8, ::8]
        out[f"{i}.facial_mask"] = item["facial_mask"]
        fg = np.array(item["parsing_mask_list"]["WithoutBackground"], dtype=np.float32) / 255
        out[f"{i}.foreground"] = torch.from_numpy(fg)
        out[f"{i}.input_ids"] = item["clean_input_id"][0]
        print(i, item["text_prompt"], list(item["key_parsing_mask_list"].keys()))
    save_file({k: v.contiguous() for k, v in out.items()}, OUT / "expected.safetensors")


if __name__ == "__main__":
    main()
