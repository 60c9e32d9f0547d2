#!/usr/bin/env python3
"""The training text of the OFFICIAL `MyDataset.__getitem__` (utils.py, imported at run time from
OFFICIAL_DIR, a checkout of JackAILab/ConsistentID at e234008) on a small FGID-style folder written
here: per case a 40x40 image, a label PNG holding the case's BiSeNet labels, and the two captions.
The text-drop coin is set through `random.random` (the only patch). Token ids come from
transformers 4.31 `CLIPTokenizer` with the real CLIP vocabulary (tests/scripts/fetch_real_data.sh).

Writes tests/fixtures/training_text.json: per case the captions, labels and drop coin, and the
official text, clean ids, facial-token mask positions, facial_token_idx(_mask) and the mask keys
kept (in order).

    OFFICIAL_DIR=/path/to/ConsistentID venv/bin/python tests/scripts/gen_training_text.py
"""

import json
import os
import random
import sys
import tempfile
from pathlib import Path

import numpy as np
import transformers
from PIL import Image
from transformers import CLIPTokenizer

assert transformers.__version__ == "4.31.0"
sys.path.insert(0, os.environ["OFFICIAL_DIR"])
import utils  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("CONSISTENTID_REAL_DATA", Path.home() / ".cache/consistentid/real-data"))

# FGID_caption.py's own example record (its line breaks and indentation joined by one space).
EXAMPLE_CAPTION = ("The image features a young woman with short hair, wearing a black shirt and a black jacket. "
                   "She has a smiling expression on her face, and her eyes are open. The woman appears to be the main subject of the photo.")
EXAMPLE_FACE = ("The person in the image has a short haircut, which gives her a modern and stylish appearance. "
                "She has a small nose, which is a prominent feature of her face. Her eyes are large and wide-set, adding to her striking facial features. "
                "The woman has a thin mouth and a small chin, which further accentuates her overall look. Her ears are small and subtle, blending in with her hairstyle.")
ALL = [0, 1, 4, 5, 7, 8, 10, 12, 13]
CASES = [
    (EXAMPLE_CAPTION, EXAMPLE_FACE, ALL, False),
    (EXAMPLE_CAPTION, EXAMPLE_FACE, [0, 1, 4, 5, 10, 12, 13], False),
    ("A man in a suit. He stands in a park.", "He has a round face, brown eyes, a long nose and a wide mouth.", ALL, False),
    ("A man in a suit. He stands in a park.", "He has a round face, brown eyes, a long nose and a wide mouth.", [0, 1, 10], False),
    ("  Leading spaces before the first sentence. Then more text here.", "Her face is oval and her ears are hidden.", ALL, False),
    ("No period in this caption at all", "The face is calm, the eyes closed, the mouth small.", [0, 1, 4, 12], False),
    ("A woman smiling. Outdoors.", "A face. " * 50 + "Eyes, nose and mouth.", ALL, False),
    ("Ein Mädchen lächelt. Café im Hintergrund, Straße.", "Ihr face ist rund, eyes groß; nose klein, mouth schmal.", ALL, False),
    ("A man in a suit. He stands in a park.", "He has a round face, brown eyes, a long nose and a wide mouth.", ALL, True),
    ("Short.", "face nose eyes ears mouth", [0, 1, 2, 4, 7, 10, 12], False),
    ("x", "The face, the face again, the ears and the ears once more.", ALL, False),
]


def label_png(labels):
    arr = np.zeros((40, 40), np.uint8)
    for i, v in enumerate(l for l in labels if l != 0):
        y, x = 2 + (i // 4) * 9, 2 + (i % 4) * 9
        arr[y : y + 7, x : x + 7] = v
    return Image.fromarray(arr)


def main():
    tok = CLIPTokenizer.from_pretrained(DATA / "clip" / "tokenizer")
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        records = []
        for i, (caption, face, labels, _) in enumerate(CASES):
            rng = np.random.default_rng(i)
            Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(tmp / f"{i}_resize.png")
            label_png(labels).save(tmp / f"{i}_mask.png")
            records.append({"resize_IMG": f"{i}_resize.png", "parsing_mask_IMG": f"{i}_mask.png",
                            "vqa_llva": caption, "vqa_llva_more_face_detail": face})
        (tmp / "data.json").write_text(json.dumps(records))
        ds = utils.MyDataset(str(tmp / "data.json"), None, tokenizer=tok, size=40, image_root_path=str(tmp), parsing_root_path=str(tmp))
        for i, (caption, face, labels, drop) in enumerate(CASES):
            random.random = (lambda: 0.05) if drop else (lambda: 0.5)
            item = ds[i]
            mask = item["facial_token_mask"][0].tolist()
            out.append({
                "caption": caption, "facial_caption": face, "labels": labels, "dropped": drop,
                "text": item["text_prompt"],
                "input_ids": item["clean_input_id"][0].tolist(),
                "facial_positions": [j for j, m in enumerate(mask) if m],
                "facial_token_idx": item["facial_token_idx"][0].tolist(),
                "facial_token_idx_mask": item["facial_token_idx_mask"][0].tolist(),
                "kept_regions": list(item["key_parsing_mask_list"].keys()),
                "mask_keys": [k for k in utils.masks_for_unique_values(Image.open(tmp / f"{i}_mask.png")).keys()],
            })
    (ROOT / "fixtures" / "training_text.json").write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n")
    for c in out:
        print(len(c["text"]), c["facial_positions"], c["kept_regions"])


if __name__ == "__main__":
    main()
