#!/usr/bin/env python3
"""Reference for ConsistentID's denoising loop (the merge step), after the official `__call__`
(shared/spec/consistentid.md §1.2 steps 11-14): CFG always on; steps i <= start_merge_step use
[null; text_only], later ones [null; augmented]; Euler (from the base model's scheduler config);
decode `(vae.decode(x / scaling) / 2 + 0.5).clamp(0, 1)`.

Model: tests/fixtures/sd_tiny's VAE and scheduler config with tests/fixtures/unet_tiny_ip's UNet and
its ConsistentID processors (LoRA + 4-token IP branch, scale 0.7) from gen_unet_adapters.py.
Conditioning (null, augmented, text_only: [1,81,12]) and the starting noise are random and
injected. Writes tests/fixtures/consistentid_merge.safetensors with, per case k:
  {k}.null/augmented/text_only, {k}.init_latents [1,4,8,8], {k}.image [1,3,64,64];
cases: merge 2 of 6 steps (guidance 5), merge 0 (only step 0 text-only), merge 9 >= steps.

    venv/bin/python tests/scripts/gen_consistentid_merge.py
"""

import sys
from pathlib import Path

import torch
from diffusers import AutoencoderKL, EulerDiscreteScheduler, UNet2DConditionModel
from safetensors.torch import load_file, save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_unet_adapters import install_processors  # noqa: E402

FIX = Path(__file__).resolve().parents[1] / "fixtures"


def load_unet():
    unet = UNet2DConditionModel.from_pretrained(FIX / "unet_tiny_ip" / "unet").eval()
    adapters = install_processors(unet)
    state = load_file(FIX / "unet_tiny_ip" / "adapter.safetensors")
    adapters.load_state_dict({k.removeprefix("adapter_modules."): v for k, v in state.items()})
    return unet


def run(unet, vae, scheduler, null, augmented, text_only, latents, steps, merge, guidance):
    scheduler.set_timesteps(steps)
    latents = latents * scheduler.init_noise_sigma
    for i, t in enumerate(scheduler.timesteps):
        x = scheduler.scale_model_input(torch.cat([latents] * 2), t)
        cond = torch.cat([null, text_only if i <= merge else augmented])
        eps = unet(x, t, encoder_hidden_states=cond).sample
        u, c = eps.chunk(2)
        latents = scheduler.step(u + guidance * (c - u), t, latents).prev_sample
    image = vae.decode(latents / vae.config.scaling_factor).sample
    return (image / 2 + 0.5).clamp(0, 1)


def main():
    unet = load_unet()
    vae = AutoencoderKL.from_pretrained(FIX / "sd_tiny" / "vae").eval()
    scheduler = EulerDiscreteScheduler.from_config(EulerDiscreteScheduler.load_config(FIX / "sd_tiny" / "scheduler"))
    gen = torch.Generator().manual_seed(21)
    out = {}
    for k, merge in enumerate([2, 0, 9]):
        cond = {n: torch.randn(1, 81, 12, generator=gen) for n in ("null", "augmented", "text_only")}
        init = torch.randn(1, 4, 8, 8, generator=gen)
        with torch.no_grad():
            image = run(unet, vae, scheduler, cond["null"], cond["augmented"], cond["text_only"], init, 6, merge, 5.0)
        out.update({f"{k}.{n}": v for n, v in cond.items()})
        out[f"{k}.init_latents"] = init
        out[f"{k}.merge_step"] = torch.tensor([merge])
        out[f"{k}.image"] = image.contiguous()
    save_file(out, FIX / "consistentid_merge.safetensors")
    print("wrote", len(out), "tensors")


if __name__ == "__main__":
    main()
