#!/usr/bin/env python3
"""Parity fixture for the DINO metric's network: transformers 4.31 `ViTModel` (the architecture of
facebook/dino-vits16: patch 16, GELU, layer norm eps 1e-12, a pooler the metric does not use) at
tiny widths (hidden 24, 2 layers, 2 heads, 32² images), random weights, saved as a model folder in
tests/fixtures/vit_tiny/ (config.json, model.safetensors, preprocessor_config.json).
expected.safetensors: `ViTImageProcessor` (resize 32² bilinear, ÷255, ImageNet mean/std) pixel
values and `last_hidden_state[:, 0]` (the class token, DINO's embedding) of astronaut.png and
grace_hopper.jpg.

Needs the real data (tests/scripts/fetch_real_data.sh); torch 2.0.0, transformers 4.31.0, pillow.

    venv/bin/python tests/scripts/gen_vit.py
"""

import os
import shutil
from pathlib import Path

import torch
from PIL import Image
from safetensors.torch import save_file
from transformers import ViTConfig, ViTImageProcessor, ViTModel

assert torch.__version__.startswith("2.0.0")
OUT = Path(__file__).resolve().parents[1] / "fixtures" / "vit_tiny"
DATA = Path(os.environ.get("CONSISTENTID_REAL_DATA", Path.home() / ".cache/consistentid/real-data"))


def main():
    if OUT.exists():
        shutil.rmtree(OUT)
    torch.manual_seed(4)
    config = ViTConfig(hidden_size=24, num_hidden_layers=2, num_attention_heads=2, intermediate_size=40,
                       image_size=32, patch_size=16, layer_norm_eps=1e-12, qkv_bias=True)
    model = ViTModel(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    model.save_pretrained(OUT, safe_serialization=True)
    processor = ViTImageProcessor(size={"height": 32, "width": 32}, resample=Image.BILINEAR,
                                  image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225])
    processor.save_pretrained(OUT)
    photos = [Image.open(DATA / "images" / f).convert("RGB") for f in ("astronaut.png", "grace_hopper.jpg")]
    pixels = processor(images=photos, return_tensors="pt").pixel_values
    with torch.no_grad():
        cls = model(pixel_values=pixels).last_hidden_state[:, 0]
    save_file({"pixel_values": pixels.contiguous(), "cls": cls.contiguous()}, str(OUT / "expected.safetensors"))
    print("cos", float(torch.nn.functional.cosine_similarity(cls[0], cls[1], dim=0)))


if __name__ == "__main__":
    main()
