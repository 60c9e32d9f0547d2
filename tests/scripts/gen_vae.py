#!/usr/bin/env python3
"""Parity fixtures for the VAE (diffusers 0.23 AutoencoderKL), encode and decode.

Tiny random-weight VAEs saved in the diffusers layout under tests/fixtures/vae_tiny_*/vae/, with
inputs and reference outputs in expected.safetensors:
  image [1,3,H,W] in [-1,1] -> latent_mean, latent_logvar (unscaled, from encode)
  latents [1,C,h,w] (diffusion latents, i.e. scaled) -> decoded = decode(latents / scaling_factor)
Environment: see gen_clip_text.py (torch 2.0.0, diffusers 0.23.0).

    venv/bin/python tests/scripts/gen_vae.py
"""

import json
import sys
import shutil
from pathlib import Path

import diffusers
import torch
from diffusers import AutoencoderKL
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_unet import randomize  # noqa: E402

assert diffusers.__version__ == "0.23.0", diffusers.__version__
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def make(name, config, image_hw, storage_dtype, variant, seed):
    out = FIXTURES / name
    if out.exists():
        shutil.rmtree(out)
    gen = torch.Generator().manual_seed(seed)
    vae = AutoencoderKL(**config).eval()
    randomize(vae, gen)
    state = {k: v.to(storage_dtype).contiguous() for k, v in vae.state_dict().items()}
    vae.load_state_dict({k: v.float() for k, v in state.items()})
    (out / "vae").mkdir(parents=True)
    vae.save_config(out / "vae")
    fname = "diffusion_pytorch_model.safetensors" if variant is None else f"diffusion_pytorch_model.{variant}.safetensors"
    save_file(state, out / "vae" / fname, metadata={"format": "pt"})
    (out / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline",
                                                      "vae": ["diffusers", "AutoencoderKL"]}, indent=1))
    h, w = image_hw
    f = 2 ** (len(config["block_out_channels"]) - 1)
    image = torch.rand((1, 3, h, w), generator=gen) * 2 - 1
    latents = torch.randn((1, config["latent_channels"], h // f, w // f), generator=gen)
    with torch.no_grad():
        dist = vae.encode(image).latent_dist
        decoded = vae.decode(latents / vae.config.scaling_factor).sample
    save_file({
        "image": image.contiguous(),
        "latent_mean": dist.mean.contiguous(),
        "latent_logvar": dist.logvar.contiguous(),
        "latents": latents.contiguous(),
        "decoded": decoded.contiguous(),
    }, out / "expected.safetensors")


def main():
    make("vae_tiny_a", dict(block_out_channels=[8, 16, 24], down_block_types=["DownEncoderBlock2D"] * 3,
                            up_block_types=["UpDecoderBlock2D"] * 3, layers_per_block=1, latent_channels=4,
                            norm_num_groups=4, sample_size=32),
         (20, 28), torch.float32, None, 1)
    make("vae_tiny_b", dict(block_out_channels=[12, 20], down_block_types=["DownEncoderBlock2D"] * 2,
                            up_block_types=["UpDecoderBlock2D"] * 2, layers_per_block=2, latent_channels=3,
                            norm_num_groups=4, scaling_factor=0.13025, sample_size=16),
         (18, 12), torch.float16, "fp16", 2)
    print("wrote 2 VAE fixtures")


if __name__ == "__main__":
    main()
