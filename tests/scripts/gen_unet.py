#!/usr/bin/env python3
"""Parity fixtures for the UNet (diffusers 0.23 UNet2DConditionModel, plain attention).

Tiny random-weight UNets in the diffusers layout under tests/fixtures/unet_tiny_*/unet/, with
inputs and the reference output in expected.safetensors:
  sample [B,C,h,w], timestep [B] (float), encoder_hidden_states [B,L,D] -> out [B,C,h,w]
Shapes cover non-square and odd latents, odd head counts, linear and conv projections, 77 and
81 (ConsistentID) context tokens, and widths that are not multiples of their head counts. Environment: see gen_clip_text.py.

    venv/bin/python tests/scripts/gen_unet.py
"""

import json
import shutil
from pathlib import Path

import diffusers
import torch
from diffusers import UNet2DConditionModel
from safetensors.torch import save_file

assert diffusers.__version__ == "0.23.0", diffusers.__version__
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def randomize(model, gen):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name and name.endswith("weight"):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=gen))
            elif p.dim() == 1:
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(torch.randn(p.shape, generator=gen) / p[0].numel() ** 0.5)


def make(name, config, batch, hw, context_len, timesteps, storage_dtype, variant, seed):
    out = FIXTURES / name
    if out.exists():
        shutil.rmtree(out)
    gen = torch.Generator().manual_seed(seed)
    unet = UNet2DConditionModel(**config).eval()
    randomize(unet, gen)
    state = {k: v.to(storage_dtype).contiguous() for k, v in unet.state_dict().items()}
    unet.load_state_dict({k: v.float() for k, v in state.items()})
    (out / "unet").mkdir(parents=True)
    unet.save_config(out / "unet")
    fname = "diffusion_pytorch_model.safetensors" if variant is None else f"diffusion_pytorch_model.{variant}.safetensors"
    save_file(state, out / "unet" / fname, metadata={"format": "pt"})
    (out / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline",
                                                      "unet": ["diffusers", "UNet2DConditionModel"]}, indent=1))
    sample = torch.randn((batch, config["in_channels"]) + hw, generator=gen)
    context = torch.randn((batch, context_len, config["cross_attention_dim"]), generator=gen)
    t = torch.tensor(timesteps, dtype=torch.float32)
    with torch.no_grad():
        pred = unet(sample, t, encoder_hidden_states=context).sample
    save_file({"sample": sample, "timestep": t, "encoder_hidden_states": context, "out": pred.contiguous()},
              out / "expected.safetensors")


def main():
    make("unet_tiny_a",
         dict(block_out_channels=[16, 24], down_block_types=["CrossAttnDownBlock2D", "DownBlock2D"],
              up_block_types=["UpBlock2D", "CrossAttnUpBlock2D"], layers_per_block=1, attention_head_dim=2,
              norm_num_groups=8, cross_attention_dim=24, in_channels=4, out_channels=4, sample_size=8),
         1, (8, 12), 77, [981.0], torch.float32, None, 1)
    make("unet_tiny_b",
         dict(block_out_channels=[8, 16, 24],
              down_block_types=["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
              up_block_types=["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"], layers_per_block=2,
              attention_head_dim=[2, 4, 3], norm_num_groups=4, cross_attention_dim=20, use_linear_projection=True,
              in_channels=4, out_channels=4, sample_size=8),
         2, (9, 7), 81, [13.5, 500.0], torch.float16, "fp16", 2)
    # Widths that are not multiples of their head counts: diffusers builds heads × (width // heads)
    # attention dims (16 → 3 × 5 = 15, 40 → 3 × 13 = 39), conv projections.
    make("unet_tiny_c",
         dict(block_out_channels=[16, 40],
              down_block_types=["CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
              up_block_types=["CrossAttnUpBlock2D", "CrossAttnUpBlock2D"], layers_per_block=1,
              attention_head_dim=3, norm_num_groups=8, cross_attention_dim=24,
              in_channels=4, out_channels=4, sample_size=8),
         1, (8, 6), 77, [421.0], torch.float32, None, 3)
    print("wrote 3 UNet fixtures")


if __name__ == "__main__":
    main()
