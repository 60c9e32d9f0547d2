#!/usr/bin/env python3
"""Parity fixtures for the ConsistentID modules: ProjPlusModel ("image_proj") and FacialEncoder,
re-created in PyTorch from shared/spec/consistentid.md §3.1-3.4 (the official modules' structure,
key names and forward passes) at tiny widths, saved in exactly the official checkpoint structure:
`torch.save({"image_proj": <bf16 state dict>, "FacialEncoder": <f32 state dict>,
"adapter_modules": <f32 state dict>})`, a nested dict with mixed bf16/f32 storages and
ModuleList indices as they are (`layers.1.0.to_q`, `proj.2`, `1.3`).

Writes tests/fixtures/consistentid_tiny/ConsistentID-v1.bin and expected.safetensors:
  id_embedding [1,16], clip_penultimate [1,10,24] -> id_tokens [1,4,32]
  prompt_embeds [1,77,32], region_hidden_states [1,5,10,24], facial_token_mask i64 [1,77],
  facial_token_idx_mask i64 [1,5] -> fused_prompt_embeds [1,77,32]
Environment: torch 2.0.0, safetensors 0.4.0.

    venv/bin/python tests/scripts/gen_consistentid_modules.py
"""

import math
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

assert torch.__version__.startswith("2.0.0")
OUT = Path(__file__).resolve().parents[1] / "fixtures" / "consistentid_tiny"


def FeedForward(dim, mult=4):
    inner = int(dim * mult)
    return nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, inner, bias=False), nn.GELU(), nn.Linear(inner, dim, bias=False))


class PerceiverAttention(nn.Module):
    def __init__(self, dim, dim_head=64, heads=8):
        super().__init__()
        self.scale, self.dim_head, self.heads = dim_head ** -0.5, dim_head, heads
        inner = dim_head * heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim, inner * 2, bias=False)
        self.to_out = nn.Linear(inner, dim, bias=False)

    def forward(self, x, latents):
        x, latents = self.norm1(x), self.norm2(latents)
        b, n2, _ = latents.shape
        q = self.to_q(latents)
        k, v = self.to_kv(torch.cat((x, latents), dim=-2)).chunk(2, dim=-1)
        split = lambda t: t.reshape(b, t.shape[1], self.heads, self.dim_head).transpose(1, 2)
        q, k, v = split(q), split(k), split(v)
        s = 1 / math.sqrt(math.sqrt(self.dim_head))
        w = torch.softmax((q * s) @ (k * s).transpose(-2, -1), dim=-1)
        return self.to_out((w @ v).transpose(1, 2).reshape(b, n2, -1))


class FacePerceiverResampler(nn.Module):
    def __init__(self, dim, depth, dim_head, heads, embedding_dim, output_dim, ff_mult=4):
        super().__init__()
        self.proj_in = nn.Linear(embedding_dim, dim)
        self.proj_out = nn.Linear(dim, output_dim)
        self.norm_out = nn.LayerNorm(output_dim)
        self.layers = nn.ModuleList([nn.ModuleList([PerceiverAttention(dim, dim_head, heads), FeedForward(dim, ff_mult)])
                                     for _ in range(depth)])

    def forward(self, latents, x):
        x = self.proj_in(x)
        for attn, ff in self.layers:
            latents = attn(x, latents) + latents
            latents = ff(latents) + latents
        return self.norm_out(self.proj_out(latents))


class ProjPlusModel(nn.Module):
    def __init__(self, cross_attention_dim, id_embeddings_dim, clip_embeddings_dim, num_tokens, depth, heads, hidden=None):
        super().__init__()
        self.cross_attention_dim, self.num_tokens = cross_attention_dim, num_tokens
        hidden = hidden or id_embeddings_dim * 2 + 8  # the official width is 2 x 512
        self.proj = nn.Sequential(nn.Linear(id_embeddings_dim, hidden), nn.GELU(),
                                  nn.Linear(hidden, cross_attention_dim * num_tokens))
        self.norm = nn.LayerNorm(cross_attention_dim)
        self.perceiver_resampler = FacePerceiverResampler(cross_attention_dim, depth, 64, heads,
                                                          clip_embeddings_dim, cross_attention_dim)

    def forward(self, id_embeds, clip_embeds):
        x = self.norm(self.proj(id_embeds).reshape(-1, self.num_tokens, self.cross_attention_dim))
        return self.perceiver_resampler(x, clip_embeds)


class AttentionMLP(nn.Module):
    def __init__(self, dim, depth, heads, embedding_dim, output_dim):
        super().__init__()
        self.latents = nn.Parameter(torch.randn(1, 1, dim) / dim ** 0.5)
        self.proj_in = nn.Linear(embedding_dim, dim)
        self.proj_out = nn.Linear(dim, output_dim)
        self.norm_out = nn.LayerNorm(output_dim)
        self.layers = nn.ModuleList([nn.ModuleList([PerceiverAttention(dim, 64, heads), FeedForward(dim, 4)])
                                     for _ in range(depth)])

    def forward(self, x):
        latents = self.latents.repeat(x.size(0), 1, 1)
        x = self.proj_in(x)
        for attn, ff in self.layers:
            latents = attn(x, latents) + latents
            latents = ff(latents) + latents
        return self.norm_out(self.proj_out(latents))


class MLP(nn.Module):
    def __init__(self, in_dim, out_dim, hidden_dim, use_residual=True):
        super().__init__()
        self.use_residual = use_residual
        self.layernorm = nn.LayerNorm(in_dim)
        self.fc1 = nn.Linear(in_dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, out_dim)

    def forward(self, x):
        y = self.fc2(F.gelu(self.fc1(self.layernorm(x))))
        return y + x if self.use_residual else y


class FuseModule(nn.Module):
    def __init__(self, embed_dim):
        super().__init__()
        self.mlp1 = MLP(embed_dim * 2, embed_dim, embed_dim, use_residual=False)
        self.mlp2 = MLP(embed_dim, embed_dim, embed_dim, use_residual=True)
        self.layer_norm = nn.LayerNorm(embed_dim)

    def forward(self, prompt_embeds, id_embeds, class_tokens_mask, valid_id_mask):
        d = prompt_embeds.shape[-1]
        valid = id_embeds.view(-1, d)[valid_id_mask.flatten()]
        t = prompt_embeds[class_tokens_mask]
        fused = self.layer_norm(self.mlp2(self.mlp1(torch.cat([t, valid], dim=-1)) + t))
        out = prompt_embeds.clone()
        out.masked_scatter_(class_tokens_mask[:, :, None].expand_as(out), fused.to(out.dtype))
        return out


class FacialEncoder(nn.Module):
    def __init__(self, embedding_dim, output_dim, dim, depth, heads):
        super().__init__()
        self.visual_projection = AttentionMLP(dim, depth, heads, embedding_dim, output_dim)
        self.fuse_module = FuseModule(output_dim)

    def forward(self, prompt_embeds, multi_image_embeds, class_tokens_mask, valid_id_mask):
        b, n, t, c = multi_image_embeds.shape
        f = self.visual_projection(multi_image_embeds.view(b * n, t, c)).view(b, n, 1, -1)
        return self.fuse_module(prompt_embeds, f, class_tokens_mask, valid_id_mask)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    proj = ProjPlusModel(32, 16, 24, 4, depth=2, heads=2).eval()
    enc = FacialEncoder(24, 32, 48, depth=3, heads=2).eval()
    with torch.no_grad():
        for m in (proj, enc):
            for name, p in m.named_parameters():
                p.copy_(torch.randn_like(p) * (0.3 if p.dim() > 1 else 0.1) + (1.0 if name.endswith("weight") and p.dim() == 1 else 0.0))
    # The official checkpoint: image_proj in bfloat16, the rest in float32.
    proj_sd = {k: v.to(torch.bfloat16) for k, v in proj.state_dict().items()}
    proj.load_state_dict({k: v.float() for k, v in proj_sd.items()})
    adapter = {"0.to_q_lora.down.weight": torch.randn(3, 32), "0.to_q_lora.up.weight": torch.zeros(32, 3)}
    torch.save({"image_proj": proj_sd, "FacialEncoder": enc.state_dict(), "adapter_modules": adapter},
               OUT / "ConsistentID-v1.bin")

    g = torch.Generator().manual_seed(1)
    id_embedding = F.normalize(torch.randn(1, 16, generator=g), dim=-1)
    clip = torch.randn(1, 10, 24, generator=g)
    prompt = torch.randn(1, 77, 32, generator=g)
    regions = torch.randn(1, 5, 10, 24, generator=g)
    mask = torch.zeros(1, 77, dtype=torch.bool)
    mask[0, [6, 9, 13]] = True
    valid = torch.tensor([[True, True, True, False, False]])
    with torch.no_grad():
        id_tokens = proj(id_embedding, clip)
        fused = enc(prompt, regions, mask, valid)
    save_file({
        "id_embedding": id_embedding, "clip_penultimate": clip, "id_tokens": id_tokens,
        "prompt_embeds": prompt, "region_hidden_states": regions,
        "facial_token_mask": mask.long(), "facial_token_idx_mask": valid.long(),
        "fused_prompt_embeds": fused,
    }, str(OUT / "expected.safetensors"))
    print("id tokens", tuple(id_tokens.shape), "changed rows", (fused != prompt).any(-1).nonzero()[:, 1].tolist())


if __name__ == "__main__":
    main()
