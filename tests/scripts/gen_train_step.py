#!/usr/bin/env python3
"""One to three training steps of the OFFICIAL ConsistentID trainer on a tiny random replica, for
the Rust trainer's parity test (shared/spec/train-eval.md §E4).

The official `train.py` (`ConsistentID`: forward, noise loss, background mask, the L_loc hooks),
`attention.py` (processors, FacialEncoder), `functions.py` (ProjPlusModel, AttentionMLP,
BalancedL1Loss) are imported at run time from OFFICIAL_DIR (a checkout of JackAILab/ConsistentID at
e234008); nothing of them is copied. Patches, all minimal:
  T1  xformers reported unavailable before `attention.py` is imported (otherwise L_loc captures
      nothing and divides 0 by 0);
  T2  CPU, no accelerate: `ConsistentID.forward` is called directly and the optimizer is built
      as train.py:181-195 builds it; float32, except case `bf16`: accelerate's bf16 recipe as
      torch.autocast("cpu", bfloat16) around the forward, the frozen UNet and ProjPlus cast to
      bf16 before the optimizer is built, latents, noise and encoder outputs bf16;
  T3  tiny widths: AttentionMLP (dim 32, depth 2, heads 1) and ProjPlus' FacePerceiverResampler
      (depth forced to 1) through wrappers, and a 2-level
      UNet (widths 16/32, 2 heads, 8 groups, cross-attention width 64) whose hooked attn1 layers
      (down_blocks.1, mid_block, up_blocks.1) see 10x10 and 20x20 maps (>= 77 keys);
  T4  the mask coin through the instance's `mask_loss_prob` (1.0 = masked, 0.0 = not); noise,
      timesteps and the frozen encoders' outputs are drawn here and injected.
The processors are installed as train.py:151-177 installs them (LoRA rank 4, to_k_ip/to_v_ip
copied from attn2's to_k/to_v); the `paper` case hooks attn2's text branch by a labelled patch of
`Consistent_IPAttProcessor` (our variant, not the official code).

Writes tests/fixtures/train_step/:
  unet/ (diffusers folder), scheduler/scheduler_config.json,
  ConsistentID-init.bin: the initial trained weights in the released structure (f32; the LoRA
      `up` weights random so that every gradient is non-trivial; case `official` zeroes them),
  <case>.safetensors: per step s the batch (s.latents, s.noise, s.timesteps, s.prompt_embeds,
      s.image_embeds, s.region_embeds, s.face_id, s.facial_token_mask, s.facial_token_idx,
      s.facial_token_idx_mask, s.facial_masks, s.foreground) and the results (s.noise_pred at
      step 0 (times the foreground mask when masked), s.predict_loss, s.loc_loss, s.grad.<release
      key> at the case's chosen steps), and final.<key> after the last step where chosen.
Environment: torch 2.0.0, torchvision 0.15.1, diffusers 0.23.0, transformers 4.31.0, einops 0.7.0,
safetensors 0.4.0, opencv-python-headless 4.8.1.78.

    OFFICIAL_DIR=/path/to/ConsistentID venv/bin/python tests/scripts/gen_train_step.py
"""

import functools
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

assert torch.__version__.startswith("2.0.0")
OFFICIAL = Path(os.environ["OFFICIAL_DIR"])
OUT = Path(__file__).resolve().parents[1] / "fixtures" / "train_step"

# T1: before attention.py reads it.
import diffusers.utils.import_utils as iu  # noqa: E402

iu.is_xformers_available = lambda: False
sys.path.insert(0, str(OFFICIAL))
import attention  # noqa: E402
import functions  # noqa: E402
import train  # noqa: E402
from diffusers import DDPMScheduler, UNet2DConditionModel  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

assert not attention.is_xformers_available()

D, CLIP, ID, TOKENS, RANK = 64, 24, 32, 17, 4
B, SIZE, LATENT = 2, 40, 20
# T3
attention.AttentionMLP = functools.partial(functions.AttentionMLP, dim=32, depth=2, heads=1)
_resampler = functions.FacePerceiverResampler
# ProjPlusModel passes depth=4 itself, so the depth is forced rather than defaulted.
functions.FacePerceiverResampler = lambda **kw: _resampler(**{**kw, "depth": 1})


def tiny_unet():
    torch.manual_seed(1)
    unet = UNet2DConditionModel(
        sample_size=LATENT,
        block_out_channels=(16, 32),
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        layers_per_block=1,
        cross_attention_dim=D,
        attention_head_dim=2,
        norm_num_groups=8,
    )
    with torch.no_grad():
        for p in unet.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return unet


def install_processors(unet):
    """train.py:151-177 with rank RANK."""
    unet.requires_grad_(False)
    unet_sd = unet.state_dict()
    procs = {}
    for name in unet.attn_processors.keys():
        cross = None if name.endswith("attn1.processor") else unet.config.cross_attention_dim
        if name.startswith("mid_block"):
            hidden = unet.config.block_out_channels[-1]
        elif name.startswith("up_blocks"):
            hidden = list(reversed(unet.config.block_out_channels))[int(name[len("up_blocks.")])]
        else:
            hidden = unet.config.block_out_channels[int(name[len("down_blocks.")])]
        if cross is None:
            procs[name] = attention.Consistent_AttProcessor(hidden_size=hidden, cross_attention_dim=cross, rank=RANK)
        else:
            layer = name.split(".processor")[0]
            weights = {"to_k_ip.weight": unet_sd[layer + ".to_k.weight"], "to_v_ip.weight": unet_sd[layer + ".to_v.weight"]}
            procs[name] = attention.Consistent_IPAttProcessor(hidden_size=hidden, cross_attention_dim=cross, rank=RANK)
            procs[name].load_state_dict(weights, strict=False)
    unet.set_attn_processor(procs)
    return torch.nn.ModuleList(unet.attn_processors.values())


def build(seed):
    torch.manual_seed(seed)
    image_proj = functions.ProjPlusModel(cross_attention_dim=D, id_embeddings_dim=ID, clip_embeddings_dim=CLIP, num_tokens=4)
    facial = attention.FacialEncoder(image_CLIPModel_encoder=None, embedding_dim=CLIP, output_dim=D, embed_dim=D)
    unet = tiny_unet()
    adapters = install_processors(unet)
    torch.manual_seed(seed + 1)
    with torch.no_grad():
        for n, p in adapters.named_parameters():
            if "_lora.up." in n:
                p.copy_(torch.randn_like(p) * 0.1)
    return image_proj, facial, unet, adapters


def release_names(model, unet):
    order = [k[: -len(".processor")] for k in unet.attn_processors.keys()]
    names = {}
    for n, p in model.named_parameters():
        if n.startswith("image_proj_model."):
            names[p] = "image_proj." + n[len("image_proj_model."):]
        elif n.startswith("FacialEncoder."):
            names[p] = n
        elif ".processor." in n:
            attn, rest = n[len("unet."):].split(".processor.")
            names[p] = f"adapter_modules.{order.index(attn)}.{rest}"
    return names


def rect(mask, y0, y1, x0, x1):
    mask[y0:y1, x0:x1] = 1.0


def batch(drop):
    """The collated batch of official MyDataset's shape: facial masks in label order, token
    positions in text order, WithoutBackground as PIL images."""
    masks = torch.zeros(B, 5, SIZE, SIZE)
    idx = torch.zeros(B, 5, dtype=torch.long)
    valid = torch.zeros(B, 5, dtype=torch.bool)
    token_mask = torch.zeros(B, 77, dtype=torch.bool)
    fg = []
    layouts = [
        ([(6, 34, 8, 32), (12, 16, 12, 18), (14, 20, 4, 8), (18, 24, 17, 22), (26, 29, 14, 26)], [10, 13, 20, 31, 38]),
        ([(4, 30, 10, 36), (10, 14, 20, 26), (20, 24, 16, 24)], [5, 9, 70]),
    ]
    for b, (boxes, positions) in enumerate(layouts):
        f = torch.zeros(SIZE, SIZE)
        rect(f, 2 + b, 38, 4, 36 - b)
        fg.append(Image.fromarray((f.numpy() * 255).astype("uint8"), mode="L"))
        if drop:
            continue
        for k, (box, pos) in enumerate(zip(boxes, positions)):
            rect(masks[b, k], *box)
            idx[b, k] = pos
            valid[b, k] = True
            token_mask[b, pos] = True
    return masks, idx, valid, token_mask, fg


def paper_hooks(unet, scores, layers=5):
    """OUR `paper` variant's reference: a forward pre-hook on each hooked attn2 records the text
    branch's probabilities, softmax(q·k_text^T·d^-1/2) with the processor's LoRA on q and k, via
    diffusers' own get_attention_scores; the processor itself runs unchanged."""
    from diffusers.models.attention_processor import Attention

    names = ["down_blocks.0", "down_blocks.1", "down_blocks.2", "mid_block", "up_blocks.1", "up_blocks.2", "up_blocks.3"]
    start = (len(names) - layers) // 2
    hooked = names[start : start + layers]

    def make(name):
        def hook(attn, args, kwargs):
            hidden = args[0]
            context = kwargs["encoder_hidden_states"]
            proc = attn.processor
            text = context[:, : context.shape[1] - proc.num_tokens, :]
            q = attn.to_q(hidden) + proc.lora_scale * proc.to_q_lora(hidden)
            k = attn.to_k(text) + proc.lora_scale * proc.to_k_lora(text)
            scores[name] = attn.get_attention_scores(attn.head_to_batch_dim(q), attn.head_to_batch_dim(k), None)

        return hook

    for name, module in unet.named_modules():
        if isinstance(module, Attention) and "attn2" in name and any(h in name for h in hooked):
            module.register_forward_pre_hook(make(name), with_kwargs=True)


# The tensors whose AdamW state is kept after each step (case `official`): one of each kind.
TRACKED = ["image_proj.proj.0.weight", "image_proj.norm.bias", "FacialEncoder.visual_projection.proj_in.weight",
           "adapter_modules.1.to_k_ip.weight", "adapter_modules.0.to_q_lora.down.weight", "adapter_modules.0.to_q_lora.up.weight"]


def run_case(name, seed, *, coin, zero_up, variant, train_adapter, steps, grads_at, final, bf16=False, track=False):
    image_proj, facial, unet, adapters = build(7)
    if bf16:
        # accelerate's bf16 (train_bash.sh:2, train.py:136-148): the frozen UNet and ProjPlus in
        # bf16, the processors and the FacialEncoder in f32 (they were made after the cast).
        with torch.no_grad():
            for n, p in unet.named_parameters():
                if ".processor." not in n:
                    p.data = p.data.to(torch.bfloat16)
        image_proj.to(torch.bfloat16)
    if zero_up:
        with torch.no_grad():
            for n, p in adapters.named_parameters():
                if "_lora.up." in n:
                    p.zero_()
    if not train_adapter:
        adapters.requires_grad_(False)
    model = train.ConsistentID(unet, image_proj, adapters, facial)
    model.mask_loss_prob = coin
    if variant == "paper":
        # Replace the official attn1 hooks by the attn2 text-branch recording.
        from diffusers.models.attention_processor import Attention

        for n, m in unet.named_modules():
            if isinstance(m, Attention) and "old_get_attention_scores" in m.__dict__:
                m.get_attention_scores = m.old_get_attention_scores
        paper_hooks(unet, model.cross_attention_scores)
    unet_params = [p for p in model.unet.parameters() if p.requires_grad]
    other = [p for n, p in model.named_parameters() if p.requires_grad and "unet" not in n]
    opt = torch.optim.AdamW([{"params": unet_params, "lr": 1e-4}, {"params": other, "lr": 1e-4}], betas=(0.9, 0.999), weight_decay=1e-2, eps=1e-08)
    names = release_names(model, unet)
    sched = DDPMScheduler.from_pretrained(OUT / "scheduler")
    out, meta = {}, {"case": name, "steps": steps, "coin": coin, "variant": variant, "train_adapter": train_adapter}
    gen = torch.Generator().manual_seed(seed)
    for s, drop in enumerate(steps):
        masks, idx, valid, token_mask, fg = batch(drop)
        latents = torch.randn(B, 4, LATENT, LATENT, generator=gen)
        noise = torch.randn(B, 4, LATENT, LATENT, generator=gen)
        t = torch.randint(0, 1000, (B,), generator=gen)
        prompt = torch.randn(B, 77, D, generator=gen)
        image = torch.randn(B, TOKENS, CLIP, generator=gen)
        regions = torch.randn(B, 5, TOKENS, CLIP, generator=gen)
        face = torch.nn.functional.normalize(torch.randn(B, 1, ID, generator=gen), dim=-1)
        if bf16:
            # The frozen encoders' outputs, the latents and the noise are bf16 tensors there.
            latents, noise, prompt, image, regions, face = (x.to(torch.bfloat16) for x in (latents, noise, prompt, image, regions, face))
        noisy = sched.add_noise(latents, noise, t)
        model.cross_attention_scores.clear()
        # FuseModule scatters into its input in place: the model gets a copy.
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            pred, losses = model(noisy, t, prompt.clone(), image, face, regions, token_mask, valid, noise, [{"WithoutBackground": m} for m in fg], masks, idx, valid)
        loss = losses["predict_loss"] + losses["facial_loss"]
        opt.zero_grad()
        loss.backward()
        p = f"{s}."
        if bf16:
            latents, noise, prompt, image, regions, face = (x.float() for x in (latents, noise, prompt, image, regions, face))
        out.update({p + "latents": latents, p + "noise": noise, p + "timesteps": t, p + "prompt_embeds": prompt, p + "image_embeds": image,
                    p + "region_embeds": regions.reshape(B * 5, TOKENS, CLIP), p + "face_id": face.reshape(B, ID),
                    p + "facial_token_mask": token_mask.long(), p + "facial_token_idx": idx, p + "facial_token_idx_mask": valid.long(),
                    p + "facial_masks": masks,
                    p + "foreground": torch.stack([torch.from_numpy(np.array(m)).float() / 255 for m in fg]),
                    p + "predict_loss": losses["predict_loss"].detach().float().reshape(1),
                    p + "loc_loss": (torch.as_tensor(losses["facial_loss"]).float() / model.facial_weight).detach().reshape(1)})
        if s == 0:
            # The prediction as forward returns it: times the foreground mask when the coin masks.
            out[p + "pred"] = pred.detach().float()
            meta["layers"] = list(model.cross_attention_scores.keys())
        if s in grads_at:
            for param, key in names.items():
                if param.grad is not None:
                    out[f"{p}grad.{key}"] = param.grad.detach().float()
        opt.step()
        if track:
            # The step's AdamW result for a few tensors of each kind: parameter and both moments.
            for param, key in names.items():
                if key in TRACKED:
                    st = opt.state[param]
                    out.update({f"{p}param.{key}": param.detach().clone(), f"{p}exp_avg.{key}": st["exp_avg"].clone(),
                                f"{p}exp_avg_sq.{key}": st["exp_avg_sq"].clone()})
    for param, key in names.items():
        if final:
            out["final." + key] = param.detach().float()
    save_file({k: v.contiguous() for k, v in out.items()}, OUT / f"{name}.safetensors", metadata={"meta": json.dumps(meta)})
    print(name, {k: float(v) for k, v in out.items() if k.endswith("_loss")})


def adamw_bf16():
    """torch's AdamW with the official settings on one bf16 tensor (train.py builds ProjPlus'
    optimizer after casting it): the parameter, exp_avg and exp_avg_sq after each of 6 steps
    with bf16 gradients of scales 1e-6..1."""
    gen = torch.Generator().manual_seed(21)
    n = 2048
    p0 = (torch.randn(n, generator=gen) * torch.logspace(-3, 0, n)).to(torch.bfloat16)
    param = torch.nn.Parameter(p0.clone())
    opt = torch.optim.AdamW([param], lr=1e-4, betas=(0.9, 0.999), weight_decay=1e-2, eps=1e-08)
    out = {"param": p0.float()}
    for s in range(6):
        scale = 10.0 ** (-6 + s)
        grad = (torch.randn(n, generator=gen) * scale).to(torch.bfloat16)
        param.grad = grad.clone()
        opt.step()
        state = opt.state[param]
        out.update({f"{s}.grad": grad.float(), f"{s}.param": param.detach().float(),
                    f"{s}.exp_avg": state["exp_avg"].float(), f"{s}.exp_avg_sq": state["exp_avg_sq"].float()})
    save_file({k: v.contiguous() for k, v in out.items()}, OUT / "adamw_bf16.safetensors")


def official_case():
    run_case("official", 11, coin=1.0, zero_up=True, variant="code", train_adapter=True, steps=[False, False, False], grads_at=[0], final=True, track=True)


def bf16_case():
    """The official precision recipe: ProjPlus' bf16 parameters under its pure-bf16 AdamW."""
    adamw_bf16()
    run_case("bf16", 15, coin=1.0, zero_up=False, variant="code", train_adapter=True, steps=[False, False, False], grads_at=[], final=True, bf16=True)


def main():
    if sys.argv[1:] == ["bf16"]:
        # Only this case (the others' files stay as committed).
        return bf16_case()
    if sys.argv[1:] == ["official"]:
        return official_case()
    OUT.mkdir(parents=True, exist_ok=True)
    DDPMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000).save_pretrained(OUT / "scheduler")
    image_proj, facial, unet, adapters = build(7)
    base = tiny_unet()
    base.save_pretrained(OUT / "unet", safe_serialization=True)
    sd = lambda m: {k: v.detach().clone() for k, v in m.state_dict().items()}
    torch.save({"image_proj": sd(image_proj), "FacialEncoder": sd(facial), "adapter_modules": sd(adapters)}, OUT / "ConsistentID-init.bin")
    # Kept small (a few MB): the gradients where they say most, and the parameters after the last
    # step, which depend on every step's gradients and both moments.
    official_case()
    run_case("dropped", 12, coin=0.0, zero_up=False, variant="code", train_adapter=True, steps=[False, True, False], grads_at=[1], final=False)
    run_case("paper", 13, coin=0.0, zero_up=False, variant="paper", train_adapter=True, steps=[False], grads_at=[0], final=False)
    run_case("frozen_adapter", 14, coin=1.0, zero_up=False, variant="code", train_adapter=False, steps=[False], grads_at=[], final=True)
    bf16_case()

if __name__ == "__main__":
    main()
