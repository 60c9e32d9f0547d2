#!/usr/bin/env python3
"""Parity fixture for the UNet with ConsistentID's attention processors (LoRA on every
attention, LoRA + decoupled IP-Adapter cross-attention on attn2), written after the spec's
description of `Consistent_AttProcessor` / `Consistent_IPAttProcessor` on diffusers 0.23's
`LoRALinearLayer`.

tests/fixtures/unet_tiny_ip/: unet/ (base weights), adapter.safetensors (the
`adapter_modules` state dict, keys `adapter_modules.{i}.…` by diffusers processor index),
attn_processors.json (diffusers' processor order: the index → module table), expected.safetensors
(sample, timestep, encoder_hidden_states with 4 trailing ID tokens, out). Environment: gen_clip_text.py.

    venv/bin/python tests/scripts/gen_unet_adapters.py
"""

import json
import shutil
import sys
from pathlib import Path

import diffusers
import torch
import torch.nn.functional as F
from diffusers import UNet2DConditionModel
from diffusers.models.lora import LoRALinearLayer
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_unet import randomize  # noqa: E402

assert diffusers.__version__ == "0.23.0", diffusers.__version__
OUT = Path(__file__).resolve().parents[1] / "fixtures" / "unet_tiny_ip"
RANK, NUM_TOKENS, SCALE = 3, 4, 0.7


def sdpa(attn, q, k, v):
    b = q.shape[0]
    split = lambda t: t.view(b, -1, attn.heads, t.shape[-1] // attn.heads).transpose(1, 2)
    out = F.scaled_dot_product_attention(split(q), split(k), split(v))
    return out.transpose(1, 2).reshape(b, -1, q.shape[-1])


class LoraProcessor(torch.nn.Module):
    def __init__(self, hidden, cross=None, rank=RANK):
        super().__init__()
        self.to_q_lora = LoRALinearLayer(hidden, hidden, rank)
        self.to_k_lora = LoRALinearLayer(cross or hidden, hidden, rank)
        self.to_v_lora = LoRALinearLayer(cross or hidden, hidden, rank)
        self.to_out_lora = LoRALinearLayer(hidden, hidden, rank)

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, scale=1.0):
        ctx = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        q = attn.to_q(hidden_states) + self.to_q_lora(hidden_states)
        k = attn.to_k(ctx) + self.to_k_lora(ctx)
        v = attn.to_v(ctx) + self.to_v_lora(ctx)
        h = sdpa(attn, q, k, v)
        return attn.to_out[0](h) + self.to_out_lora(h)


class IpLoraProcessor(LoraProcessor):
    def __init__(self, hidden, cross, rank=RANK, num_tokens=NUM_TOKENS, scale=SCALE):
        super().__init__(hidden, cross, rank)
        self.num_tokens, self.scale = num_tokens, scale
        self.to_k_ip = torch.nn.Linear(cross, hidden, bias=False)
        self.to_v_ip = torch.nn.Linear(cross, hidden, bias=False)

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, scale=1.0):
        end = encoder_hidden_states.shape[1] - self.num_tokens
        text, ip = encoder_hidden_states[:, :end], encoder_hidden_states[:, end:]
        q = attn.to_q(hidden_states) + self.to_q_lora(hidden_states)
        k = attn.to_k(text) + self.to_k_lora(text)
        v = attn.to_v(text) + self.to_v_lora(text)
        h = sdpa(attn, q, k, v) + self.scale * sdpa(attn, q, self.to_k_ip(ip), self.to_v_ip(ip))
        return attn.to_out[0](h) + self.to_out_lora(h)


def install_processors(unet, rank=RANK, num_tokens=NUM_TOKENS, scale=SCALE):
    """ConsistentID's processors on every attention of `unet` (LoRA on attn1, LoRA + IP branch on
    attn2, widths by block as `set_ip_adapter`); returns them as diffusers' ordered ModuleList."""
    cfg = unet.config
    procs = {}
    for name in unet.attn_processors.keys():
        if name.startswith("mid_block"):
            hidden = cfg.block_out_channels[-1]
        elif name.startswith("up_blocks"):
            hidden = list(reversed(cfg.block_out_channels))[int(name.split(".")[1])]
        else:
            hidden = cfg.block_out_channels[int(name.split(".")[1])]
        if name.endswith("attn1.processor"):
            procs[name] = LoraProcessor(hidden, rank=rank)
        else:
            procs[name] = IpLoraProcessor(hidden, cfg.cross_attention_dim, rank, num_tokens, scale)
    unet.set_attn_processor(procs)
    return torch.nn.ModuleList(unet.attn_processors.values())


def main():
    if OUT.exists():
        shutil.rmtree(OUT)
    gen = torch.Generator().manual_seed(11)
    config = dict(block_out_channels=[8, 16, 24],
                  down_block_types=["CrossAttnDownBlock2D", "DownBlock2D", "CrossAttnDownBlock2D"],
                  up_block_types=["CrossAttnUpBlock2D", "UpBlock2D", "CrossAttnUpBlock2D"], layers_per_block=1,
                  attention_head_dim=[2, 4, 3], norm_num_groups=4, cross_attention_dim=12, sample_size=8)
    unet = UNet2DConditionModel(**config).eval()
    randomize(unet, gen)
    (OUT / "unet").mkdir(parents=True)
    unet.save_pretrained(OUT / "unet", safe_serialization=True)
    names = list(unet.attn_processors.keys())
    adapters = install_processors(unet)
    randomize(adapters, gen)
    state = {f"adapter_modules.{k}": v.contiguous() for k, v in adapters.state_dict().items()}
    save_file(state, OUT / "adapter.safetensors")
    (OUT / "attn_processors.json").write_text(json.dumps([n.removesuffix(".processor") for n in names], indent=1))
    sample = torch.randn((2, 4, 6, 5), generator=gen)
    context = torch.randn((2, 77 + NUM_TOKENS, config["cross_attention_dim"]), generator=gen)
    t = torch.tensor([801.0, 21.0])
    with torch.no_grad():
        out = unet(sample, t, encoder_hidden_states=context).sample
    save_file({"sample": sample, "timestep": t, "encoder_hidden_states": context, "out": out.contiguous()},
              OUT / "expected.safetensors")
    print(f"wrote unet_tiny_ip with {len(names)} processors")


if __name__ == "__main__":
    main()
