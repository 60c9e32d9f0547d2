#!/usr/bin/env python3
"""Single-file (original LDM layout) SD1.x checkpoints for the tests.

1. tests/fixtures/sd15_single_file_keys.json: key → shape of a real SD1.5 single-file checkpoint
   (`model.diffusion_model.*`, `first_stage_model.*`, `cond_stage_model.transformer.*`),
   derived from sd15_keys.json (run gen_sd15_keys.py first) by the inverse of diffusers'
   conversion, and checked here: diffusers 0.23 `convert_ldm_unet_checkpoint` and
   `convert_ldm_vae_checkpoint` must turn it back into exactly the diffusers keys and shapes.
2. tests/fixtures/sd_tiny_single_file.safetensors: the sd_tiny folder (gen_txt2img.py) as one
   single-file checkpoint, so loading it must give the folder's txt2img images.

Environment: gen_clip_text.py.

    venv/bin/python tests/scripts/gen_single_file.py
"""

import inspect
import json
from pathlib import Path

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from diffusers.pipelines.stable_diffusion.convert_from_ckpt import (convert_ldm_unet_checkpoint,
                                                                   convert_ldm_vae_checkpoint)
from safetensors.torch import load_file, save_file

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
RESNET = {"norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1", "norm2": "out_layers.0",
          "conv2": "out_layers.3", "conv_shortcut": "skip_connection"}


def unet_to_ldm(key, config):
    n = len(config["block_out_channels"])
    lpb = config["layers_per_block"]
    layers = [lpb] * n if isinstance(lpb, int) else lpb
    p = key.split(".")
    fixed = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
             "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2"}
    head = ".".join(p[:2])
    if head in fixed:
        return "model.diffusion_model." + fixed[head] + "." + ".".join(p[2:])
    if p[0] == "conv_in" or p[0] == "conv_out" or p[0] == "conv_norm_out":
        return "model.diffusion_model." + fixed[p[0]] + "." + ".".join(p[1:])
    if p[0] == "down_blocks":
        b, kind = int(p[1]), p[2]
        base = 1 + sum(l + 1 for l in layers[:b])
        if kind == "downsamplers":
            rest = "op." + ".".join(p[5:])
            return f"model.diffusion_model.input_blocks.{base + layers[b]}.0.{rest}"
        i, rest = int(p[3]), p[4:]
        sub = 0 if kind == "resnets" else 1
    elif p[0] == "up_blocks":
        b, kind = int(p[1]), p[2]
        rl = list(reversed(layers))
        base = sum(l + 1 for l in rl[:b])
        if kind == "upsamplers":
            has_attn = config["up_block_types"][b] == "CrossAttnUpBlock2D"
            return f"model.diffusion_model.output_blocks.{base + rl[b]}.{2 if has_attn else 1}.conv.{'.'.join(p[5:])}"
        i, rest = int(p[3]), p[4:]
        base += i
        sub = 0 if kind == "resnets" else 1
        if kind == "resnets":
            rest = [RESNET.get(rest[0], rest[0])] + rest[1:]
        return f"model.diffusion_model.output_blocks.{base}.{sub}." + ".".join(rest)
    elif p[0] == "mid_block":
        idx = {("resnets", "0"): 0, ("attentions", "0"): 1, ("resnets", "1"): 2}[(p[1], p[2])]
        rest = p[3:]
        if p[1] == "resnets":
            rest = [RESNET.get(rest[0], rest[0])] + rest[1:]
        return f"model.diffusion_model.middle_block.{idx}." + ".".join(rest)
    else:
        raise ValueError(key)
    if kind == "resnets":
        rest = [RESNET.get(rest[0], rest[0])] + rest[1:]
    return f"model.diffusion_model.input_blocks.{base + i}.{sub}." + ".".join(rest)


def vae_to_ldm(key, config, shape):
    n = len(config["block_out_channels"])
    p = key.split(".")
    part = p[0]
    new_shape = list(shape)
    if p[1] == "down_blocks":
        rest = p[3:]
        if rest[0] == "resnets":
            rest = ["block"] + rest[1:]
        else:
            rest = ["downsample"] + rest[2:]
        out = [part, "down", p[2]] + rest
    elif p[1] == "up_blocks":
        rest = p[3:]
        if rest[0] == "resnets":
            rest = ["block"] + rest[1:]
        else:
            rest = ["upsample"] + rest[2:]
        out = [part, "up", str(n - 1 - int(p[2]))] + rest
    elif p[1] == "mid_block":
        if p[2] == "resnets":
            out = [part, "mid", f"block_{int(p[3]) + 1}"] + p[4:]
        else:
            names = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out": "proj_out"}
            rest = p[4:]
            leaf = names[rest[0]]
            rest = rest[2:] if rest[0] == "to_out" else rest[1:]
            out = [part, "mid", "attn_1", leaf] + rest
            if leaf in ("q", "k", "v", "proj_out") and rest[-1] == "weight":
                new_shape = new_shape + [1, 1]
    elif p[1] == "conv_norm_out":
        out = [part, "norm_out"] + p[2:]
    else:
        out = p
    out = ".".join(out).replace("conv_shortcut", "nin_shortcut")
    return "first_stage_model." + out, new_shape


def to_ldm(unet_shapes, vae_shapes, text_shapes, unet_config, vae_config):
    ldm = {}
    for k, s in unet_shapes.items():
        ldm[unet_to_ldm(k, unet_config)] = s
    for k, s in vae_shapes.items():
        nk, ns = vae_to_ldm(k, vae_config, s)
        ldm[nk] = ns
    for k, s in text_shapes.items():
        ldm["cond_stage_model.transformer." + k] = s
    assert len(ldm) == len(unet_shapes) + len(vae_shapes) + len(text_shapes), "key collision"
    return ldm


def check_with_diffusers(ldm, unet_shapes, vae_shapes, unet_config, vae_config, make):
    """Runs diffusers' own LDM → diffusers conversion and compares."""
    ckpt = {k: make(k, s) for k, s in ldm.items()}
    unet = convert_ldm_unet_checkpoint(dict(ckpt), unet_config)
    vae = convert_ldm_vae_checkpoint(dict(ckpt), vae_config)
    for got, want, what in [(unet, unet_shapes, "unet"), (vae, vae_shapes, "vae")]:
        got_shapes = {k: list(v.shape) for k, v in got.items()}
        assert got_shapes == {k: list(v) for k, v in want.items()}, (what, set(got_shapes) ^ set(want))
    return unet, vae


def full_config(cls, partial):
    """The class defaults overridden by `partial`: the whole config the converter reads."""
    params = inspect.signature(cls.__init__).parameters
    defaults = {k: v.default for k, v in params.items() if v.default is not inspect.Parameter.empty}
    config = {**defaults, **partial}
    # The converter tests `"num_class_embeds" in config`, which a None default would trip.
    if config.get("num_class_embeds") is None:
        config.pop("num_class_embeds", None)
    return config


def main():
    keys = json.loads((FIXTURES / "sd15_keys.json").read_text())
    unet_cfg = full_config(UNet2DConditionModel, keys["unet_config"])
    vae_cfg = full_config(AutoencoderKL, keys["vae_config"])
    ldm = to_ldm(keys["unet"], keys["vae"], keys["text_encoder"], unet_cfg, vae_cfg)
    check_with_diffusers(ldm, keys["unet"], keys["vae"], unet_cfg, vae_cfg,
                         lambda k, s: torch.empty(s, device="meta"))
    (FIXTURES / "sd15_single_file_keys.json").write_text(json.dumps(ldm, indent=0, sort_keys=True))

    # The tiny pipeline as a single file.
    tiny = FIXTURES / "sd_tiny"
    u_cfg = full_config(UNet2DConditionModel, json.loads((tiny / "unet" / "config.json").read_text()))
    v_cfg = json.loads((tiny / "vae" / "config.json").read_text())
    u = load_file(tiny / "unet" / "diffusion_pytorch_model.safetensors")
    v = load_file(tiny / "vae" / "diffusion_pytorch_model.safetensors")
    t = load_file(tiny / "text_encoder" / "model.safetensors")
    out = {}
    for k, x in u.items():
        out[unet_to_ldm(k, u_cfg)] = x
    for k, x in v.items():
        nk, ns = vae_to_ldm(k, v_cfg, list(x.shape))
        out[nk] = x.reshape(ns).contiguous()
    for k, x in t.items():
        out["cond_stage_model.transformer." + k] = x
    check_with_diffusers({k: list(x.shape) for k, x in out.items()},
                         {k: list(x.shape) for k, x in u.items()}, {k: list(x.shape) for k, x in v.items()},
                         u_cfg, v_cfg, lambda k, s: out[k])
    save_file(out, FIXTURES / "sd_tiny_single_file.safetensors")
    print(f"wrote {len(ldm)} SD1.5 single-file keys and a {len(out)}-tensor tiny single file")


if __name__ == "__main__":
    main()
