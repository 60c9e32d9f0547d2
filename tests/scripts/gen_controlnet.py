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
  single_file.safetensors: a third ControlNet (conditioning_embedding_out_channels (4, 8, 8, 16):
               the 6 blocks of the SD1.5 ControlNets) in the LDM / A1111 single-file layout
               (`control_model.input_blocks…`, `input_hint_block`, `zero_convs`,
               `middle_block_out`), checked to convert back exactly with diffusers' own
               convert_ldm_unet_checkpoint(controlnet=True); single_file_config.json its
               architecture; expected single.down.<i>, single.mid for cond_single [2,3,64,48].
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


RESNET = {"norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1",
          "norm2": "out_layers.0", "conv2": "out_layers.3", "conv_shortcut": "skip_connection"}


def to_ldm(state, config):
    """The A1111 / LDM names of a diffusers ControlNet's state dict (SD1.x layout)."""
    n = len(config["block_out_channels"])
    layers = config["layers_per_block"]
    names = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
             "conv_in": "input_blocks.0.0", "mid_block.resnets.0": "middle_block.0",
             "mid_block.attentions.0": "middle_block.1", "mid_block.resnets.1": "middle_block.2",
             "controlnet_cond_embedding.conv_in": "input_hint_block.0",
             "controlnet_cond_embedding.conv_out": "input_hint_block.14", "controlnet_mid_block": "middle_block_out.0"}
    for j in range(6):
        names[f"controlnet_cond_embedding.blocks.{j}"] = f"input_hint_block.{2 * (j + 1)}"
    k = 1
    for b in range(n):
        for i in range(layers):
            names[f"down_blocks.{b}.resnets.{i}"] = f"input_blocks.{k}.0"
            names[f"down_blocks.{b}.attentions.{i}"] = f"input_blocks.{k}.1"
            k += 1
        if b + 1 < n:
            names[f"down_blocks.{b}.downsamplers.0.conv"] = f"input_blocks.{k}.0.op"
            k += 1
    for i in range(k):
        names[f"controlnet_down_blocks.{i}"] = f"zero_convs.{i}.0"
    out = {}
    for key, v in state.items():
        prefix = max((p for p in names if key.startswith(p + ".")), key=len)
        rest = key[len(prefix) + 1:]
        if ".resnets." in prefix or prefix.startswith("mid_block.resnets"):
            head, _, tail = rest.partition(".")
            rest = f"{RESNET[head]}.{tail}"
        out[f"control_model.{names[prefix]}.{rest}"] = v
    return out


def single_file(unet, gen):
    from diffusers.pipelines.stable_diffusion.convert_from_ckpt import convert_ldm_unet_checkpoint
    net = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(4, 8, 8, 16)).eval()
    randomize(net, gen)
    state = {k: v.contiguous() for k, v in net.state_dict().items()}
    ldm = to_ldm(state, net.config)
    config = {k: v for k, v in net.config.items() if k != "num_class_embeds"}
    back = convert_ldm_unet_checkpoint(dict(ldm), config, controlnet=True)
    assert back.keys() == state.keys(), set(back) ^ set(state)
    assert all(torch.equal(back[k], state[k]) for k in state), "diffusers converts it back exactly"
    save_file(ldm, OUT / "single_file.safetensors")
    (OUT / "single_file_config.json").write_text(net.to_json_string())
    return net


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
    single = single_file(unet, gen)
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
        cond_single = torch.rand(2, 3, 64, 48, generator=gen)
        down, mid = single(sample, t, encoder_hidden_states=context, controlnet_cond=cond_single,
                           conditioning_scale=0.7, return_dict=False)
        out.update({f"single.down.{i}": d for i, d in enumerate(down)})
        out.update({"single.mid": mid, "cond_single": cond_single})
    save_file({k: v.contiguous() for k, v in out.items()}, OUT / "expected.safetensors")
    print({k: tuple(v.shape) for k, v in out.items()})


if __name__ == "__main__":
    main()
