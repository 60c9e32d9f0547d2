#!/usr/bin/env python3
"""Key and shape lists (metadata only, no weights) of the real SD1.5 models in the diffusers
layout, from diffusers 0.23 / transformers 4.31 built with the published SD1.5 configs:
tests/fixtures/sd15_keys.json = {"unet": {key: shape}, "vae": {...}, "text_encoder": {...}}.
The Rust side builds the same models from the same configs and checks that every key is
consumed exactly once. Environment: gen_clip_text.py.

    venv/bin/python tests/scripts/gen_sd15_keys.py
"""

import json
from pathlib import Path

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel

OUT = Path(__file__).resolve().parents[1] / "fixtures" / "sd15_keys.json"

# runwayml/stable-diffusion-v1-5 unet/config.json and vae/config.json (the fields that differ
# from the class defaults), and openai/clip-vit-large-patch14's text config.
UNET = dict(sample_size=64, cross_attention_dim=768, attention_head_dim=8)
VAE = dict(block_out_channels=[128, 256, 512, 512], down_block_types=["DownEncoderBlock2D"] * 4,
           up_block_types=["UpDecoderBlock2D"] * 4, layers_per_block=2, sample_size=512)
TEXT = dict(hidden_size=768, intermediate_size=3072, num_attention_heads=12, num_hidden_layers=12,
            projection_dim=768, hidden_act="quick_gelu")


def shapes(model):
    return {k: list(v.shape) for k, v in model.state_dict().items() if not k.endswith("position_ids")}


def main():
    torch.set_default_dtype(torch.float16)  # halves the memory; shapes are what we keep
    keys = {
        "unet_config": UNET,
        "vae_config": VAE,
        "text_config": TEXT,
        "unet": shapes(UNet2DConditionModel(**UNET)),
        "vae": shapes(AutoencoderKL(**VAE)),
        "text_encoder": shapes(CLIPTextModel(CLIPTextConfig(**TEXT))),
    }
    OUT.write_text(json.dumps(keys, indent=0, sort_keys=True))
    print({k: len(v) for k, v in keys.items() if not k.endswith("config")})


if __name__ == "__main__":
    main()
