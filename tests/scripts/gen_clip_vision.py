#!/usr/bin/env python3
"""Parity fixtures for the CLIP vision tower and CLIPImageProcessor (transformers 4.31.0).

tests/fixtures/clip_vision_tiny/: a tiny random-weight CLIPVisionModelWithProjection (the ViT-H
layout at small widths: gelu, 224 px input, patch 14 so 257 tokens, 3 layers) in the transformers layout
(config.json + model.safetensors), and expected.safetensors with, for each real photo:
  <photo>.crop            u8 [224,224,3]  the image after CLIPImageProcessor's resize + crop
                          (recovered exactly from pixel_values)
  <photo>.pixel_values_corner  [3,16,16]  the normalised top-left corner (checks the arithmetic)
  <photo>.penultimate_hidden_state [1,257,H], <photo>.image_embeds [1,P]
Also sd-like facts: tests/fixtures/clip_vit_h_keys.json lists every key and shape of the real
laion/CLIP-ViT-H-14-laion2B-s32B-b79K CLIPVisionModelWithProjection (metadata only).
Needs the real data (tests/scripts/fetch_real_data.sh); torch 2.0.0, transformers 4.31.0.

    venv/bin/python tests/scripts/gen_clip_vision.py
"""

import json
import os
import shutil
from pathlib import Path

import numpy as np
import torch
import transformers
from PIL import Image
from safetensors.numpy import save_file as save_np
from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

assert transformers.__version__ == "4.31.0", transformers.__version__
ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("CONSISTENTID_REAL_DATA", Path.home() / ".cache/consistentid/real-data"))
MEAN = np.array([0.48145466, 0.4578275, 0.40821073], np.float32)
STD = np.array([0.26862954, 0.26130258, 0.27577711], np.float32)


def main():
    out = ROOT / "fixtures" / "clip_vision_tiny"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    config = CLIPVisionConfig(hidden_size=32, intermediate_size=48, projection_dim=24, num_hidden_layers=3,
                              num_attention_heads=4, image_size=224, patch_size=14, hidden_act="gelu",
                              layer_norm_eps=1e-5)
    torch.manual_seed(0)
    model = CLIPVisionModelWithProjection(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.2)
    model.save_pretrained(out, safe_serialization=True)
    processor = CLIPImageProcessor()
    expected = {}
    for photo, file in (("astronaut", "astronaut.png"), ("grace_hopper", "grace_hopper.jpg")):
        img = Image.open(DATA / "images" / file).convert("RGB")
        pv = processor(images=img, return_tensors="pt").pixel_values
        # Undo the normalisation to get the 8-bit crop back (exact: values are k/255).
        crop = np.rint((pv[0].numpy().transpose(1, 2, 0) * STD + MEAN) * 255).astype(np.uint8)
        with torch.no_grad():
            o = model(pixel_values=pv, output_hidden_states=True)
        expected[f"{photo}.crop"] = crop
        expected[f"{photo}.pixel_values_corner"] = pv[0, :, :16, :16].numpy().copy()
        expected[f"{photo}.penultimate_hidden_state"] = o.hidden_states[-2].numpy()
        expected[f"{photo}.image_embeds"] = o.image_embeds.numpy()
    save_np(expected, str(out / "expected.safetensors"))

    # The real ViT-H/14 vision tower's keys (open_clip ViT-H-14 dims, as laion's config.json).
    h = CLIPVisionConfig(hidden_size=1280, intermediate_size=5120, projection_dim=1024, num_hidden_layers=32,
                         num_attention_heads=16, image_size=224, patch_size=14, hidden_act="gelu",
                         layer_norm_eps=1e-5)
    with torch.device("meta"):
        big = CLIPVisionModelWithProjection(h)
    keys = {k: list(v.shape) for k, v in big.state_dict().items()}
    (ROOT / "fixtures" / "clip_vit_h_keys.json").write_text(json.dumps({"config": h.to_diff_dict(), "keys": keys}, indent=0))
    print(len(keys), "ViT-H keys")


if __name__ == "__main__":
    main()
