#!/usr/bin/env python3
"""Parity fixtures for the ControlNet (diffusers 0.23 ControlNetModel) and the UNet's use of its
residuals, on tiny random weights.

tests/fixtures/controlnet_tiny/:
  controlnet/  ControlNetModel.from_unet(sd_tiny's UNet, conditioning_embedding_out_channels
               (4, 8): one halving, as sd_tiny's VAE), every weight random (the zero
               convolutions too), diffusers layout;
  controlnet_bgr/ the same with controlnet_conditioning_channel_order "bgr" and
               global_pool_conditions (the shuffle ControlNets' options);
  expected.safetensors: sample [2,4,8,6], timestep [2], encoder_hidden_states [2,81,32],
               cond [2,3,16,12] in [0, 1], scale 0.7 → down.<i> and mid (the residuals),
               bgr.down.<i>, bgr.mid, and unet_out: sd_tiny's UNet with the first residuals.
Environment: torch 2.0.0, diffusers 0.23.0, safetensors 0.4.1.

    venv/bin/python tests/scripts/gen_controlnet.py
"""

import shutil
from pathlib import Path

import diffusers
import torch
from diffusers import ControlNetModel, UNet2DConditionModel
from safetensors.torch import save_file

from gen_unet import randomize

assert diffusers.__version__ == "0.23.0", diffusers.__version__
FIX = Path(__file__).resolve().parents[1] / "fixtures"
OUT = FIX / "controlnet_tiny"


def main():
    if OUT.exists():
        shutil.rmtree(OUT)
    gen = torch.Generator().manual_seed(31)
    unet = UNet2DConditionModel.from_pretrained(FIX / "sd_tiny" / "unet").eval()
    nets = {}
    for name, extra in [("controlnet", {}), ("controlnet_bgr", {"controlnet_conditioning_channel_order": "bgr",
                                                                 "global_pool_conditions": True})]:
        net = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(4, 8)).eval()
        if extra:
            net = ControlNetModel.from_config({**net.config, **extra}).eval()
        randomize(net, gen)
        net.save_pretrained(OUT / name, safe_serialization=True)
        nets[name] = net
    sample = torch.randn(2, 4, 8, 6, generator=gen)
    t = torch.tensor([981.0, 20.0])
    context = torch.randn(2, 81, unet.config.cross_attention_dim, generator=gen)
    cond = torch.rand(2, 3, 16, 12, generator=gen)
    out = {"sample": sample, "timestep": t, "encoder_hidden_states": context, "cond": cond}
    with torch.no_grad():
        for prefix, name in [("", "controlnet"), ("bgr.", "controlnet_bgr")]:
            down, mid = nets[name](sample, t, encoder_hidden_states=context, controlnet_cond=cond,
                                   conditioning_scale=0.7, return_dict=False)
            out.update({f"{prefix}down.{i}": d for i, d in enumerate(down)})
            out[f"{prefix}mid"] = mid
            if not prefix:
                out["unet_out"] = unet(sample, t, encoder_hidden_states=context, down_block_additional_residuals=down,
                                       mid_block_additional_residual=mid).sample
    save_file({k: v.contiguous() for k, v in out.items()}, OUT / "expected.safetensors")
    print({k: tuple(v.shape) for k, v in out.items()})


if __name__ == "__main__":
    main()
