#!/usr/bin/env python3
"""Parity fixture for the whole CLIP model (CLIP-T / CLIP-I scores): transformers 4.31
`CLIPModel` at tiny widths (text: hidden 32, 2 layers, 2 heads; vision: hidden 24, 2 layers,
patch 14 on 28² images; projection 16; quick_gelu as OpenAI's ViT-L/14), random weights, saved as
a `CLIPModel` folder (config.json with text_config / vision_config, model.safetensors) with the
tokenizer of clip_tiny_a (a slice of the real CLIP vocabulary), in tests/fixtures/clip_model_tiny/.
expected.safetensors: `text_embeds` (get_text_features) of the prompts in prompts.json, and
`image_embeds` (get_image_features) of astronaut.png and grace_hopper.jpg through
CLIPImageProcessor at 28² (shortest side bicubic, centre crop, CLIP normalisation).

Needs the real data (tests/scripts/fetch_real_data.sh); torch 2.0.0, transformers 4.31.0, pillow.

    venv/bin/python tests/scripts/gen_clip_model.py
"""

import json
import os
import shutil
from pathlib import Path

import torch
from PIL import Image
from safetensors.torch import save_file
from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTokenizer

assert torch.__version__.startswith("2.0.0")
FIX = Path(__file__).resolve().parents[1] / "fixtures"
OUT = FIX / "clip_model_tiny"
DATA = Path(os.environ.get("CONSISTENTID_REAL_DATA", Path.home() / ".cache/consistentid/real-data"))
PROMPTS = [
    "a woman as an astronaut, oil painting",
    "a photo of a man wearing a red hat in the snow",
    "portrait",
    " ".join(["a very long prompt that goes on and on"] * 12),
]


def main():
    if OUT.exists():
        shutil.rmtree(OUT)
    tok = CLIPTokenizer.from_pretrained(FIX / "clip_tiny_a" / "tokenizer")
    torch.manual_seed(3)
    config = CLIPConfig(
        text_config=dict(vocab_size=len(tok), hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                         num_attention_heads=2, hidden_act="quick_gelu", max_position_embeddings=77),
        vision_config=dict(hidden_size=24, intermediate_size=40, num_hidden_layers=2, num_attention_heads=2,
                           image_size=28, patch_size=14, hidden_act="quick_gelu"),
        projection_dim=16,
    )
    model = CLIPModel(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    model.save_pretrained(OUT, safe_serialization=True)
    tok.save_pretrained(OUT)
    processor = CLIPImageProcessor(size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28})
    photos = [Image.open(DATA / "images" / f).convert("RGB") for f in ("astronaut.png", "grace_hopper.jpg")]
    with torch.no_grad():
        ids = tok(PROMPTS, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
        text = model.get_text_features(input_ids=ids)
        image = model.get_image_features(pixel_values=processor(images=photos, return_tensors="pt").pixel_values)
    (OUT / "prompts.json").write_text(json.dumps(PROMPTS, indent=1) + "\n")
    save_file({"text_embeds": text.contiguous(), "image_embeds": image.contiguous(), "input_ids": ids},
              str(OUT / "expected.safetensors"))
    print("CLIP-T", torch.nn.functional.cosine_similarity(text[:2], image, dim=-1).tolist())


if __name__ == "__main__":
    main()
