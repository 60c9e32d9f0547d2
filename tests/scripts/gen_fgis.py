#!/usr/bin/env python3
"""FGIS end to end, re-created in Python from its parts as train-eval spec C2 reconstructs it:
BiSeNet (bisenet_tiny, facexlib's code at 1/8 width) parses each photo at 512² (Pillow bilinear,
ImageNet normalisation, argmax); the official region selection (`facial_masks` of
gen_consistentid_pipeline.py: face, the first eye, ear and lip, nose); each region composited
over black with its mask resized as the official code does (`m.resize(face.size)`); the
official evaluation helper `crop_image(·, 10)` (gen_eval_crop.py's restatement; a region with
no pixel above 10, on which it fails, counts as absent); CLIP
`image_embeds` (consistentid_pipeline's tiny ViT through CLIPImageProcessor); cosine per region
present in both photos, FGIS their mean.

Writes tests/fixtures/eval/fgis.json for the reference astronaut.png against grace_hopper.jpg:
the regions (word → cosine) and FGIS.

Needs the real data; torch 2.0.0, transformers 4.31.0, opencv-python-headless 4.8.1.78, pillow.

    venv/bin/python tests/scripts/gen_fgis.py
"""

import json
import os
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_bisenet import facexlib_parsing  # noqa: E402
from gen_consistentid_pipeline import facial_masks  # noqa: E402
from gen_eval_crop_helper import crop_image  # noqa: E402

FIX = Path(__file__).resolve().parents[1] / "fixtures"
DATA = Path(os.environ.get("CONSISTENTID_REAL_DATA", Path.home() / ".cache/consistentid/real-data"))
WORDS = {"Face": "face", "Eye": "eyes", "Ear": "ears", "Nose": "nose", "Lip": "mouth"}  # our region words


def word(name):
    return WORDS[name.split("_")[-1]]


def regions(face, bisenet, vision, processor):
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    x = torch.from_numpy(np.asarray(face.resize((512, 512), Image.BILINEAR)).copy()).permute(2, 0, 1).float().div(255)
    with torch.no_grad():
        labels = bisenet(((x - mean) / std)[None])[0][0].argmax(0).numpy().astype(np.uint8)
    out = {}
    for name, m in facial_masks(labels).items():
        comp = Image.composite(face, Image.new("RGB", face.size, (0, 0, 0)), m.resize(face.size))
        if not (np.array(comp.convert("L")) > 10).any():
            continue  # the official crop_image fails on it; the region counts as absent
        crop = crop_image(comp, 10)
        with torch.no_grad():
            e = vision(pixel_values=processor(images=crop, return_tensors="pt").pixel_values).image_embeds[0]
        out[word(name)] = e
    return out


def main():
    bisenet = facexlib_parsing()["bisenet"].BiSeNet(num_class=19).eval()
    bisenet.load_state_dict(torch.load(FIX / "bisenet_tiny" / "face_parsing.pth"))
    vision = CLIPVisionModelWithProjection.from_pretrained(FIX / "consistentid_pipeline" / "image_encoder").eval()
    processor = CLIPImageProcessor()
    ref = regions(Image.open(DATA / "images" / "astronaut.png").convert("RGB"), bisenet, vision, processor)
    img = regions(Image.open(DATA / "images" / "grace_hopper.jpg").convert("RGB"), bisenet, vision, processor)
    common = {w: float(torch.nn.functional.cosine_similarity(ref[w], img[w], dim=0)) for w in ref if w in img}
    out = {"reference": "astronaut.png", "image": "grace_hopper.jpg", "regions": common,
           "missing": sorted(w for w in ref if w not in img), "fgis": sum(common.values()) / len(common)}
    (FIX / "eval" / "fgis.json").write_text(json.dumps(out, indent=1) + "\n")
    print(out)


if __name__ == "__main__":
    main()
