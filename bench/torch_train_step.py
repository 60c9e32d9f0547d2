#!/usr/bin/env python3
"""PyTorch's side of the training-step benchmark: the OFFICIAL trainer's step (train.py:224-262 and
`ConsistentID.forward`, imported from a checkout; nothing copied) on a ConsistentID folder:
the frozen VAE encode, CLIP text and CLIP ViT-H (the photo and 5 regions per sample), the
forward with its L_loc hooks, backward and AdamW (train.py:181-195), timed per step.

    bench/torch_train_step.py --model FOLDER --official DIR [--batch 8] [--steps 4]
                              [--resolution 512] [--device cuda] [--precision f32|bf16]

`--precision bf16` is the official recipe (frozen networks and ProjPlus in bf16 under bf16
autocast); `f32` is like for like with `consistentid train` (f32 throughout). Trained modules are
built by the official constructors at the folder's widths (random weights: timing does not
depend on them); inputs are random tensors of the shapes the data loader gives. Patches as
tests/scripts/gen_train_step.py: T1 (xformers off, else L_loc captures nothing) and no
accelerate. Prints JSON: per-step seconds, peak memory, device, settings.

Environment: torch (2.0 or later), diffusers 0.23.0, transformers, einops, pillow.
"""

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

import torch
from PIL import Image

p = argparse.ArgumentParser()
p.add_argument("--model", required=True)
p.add_argument("--official", default=os.environ.get("OFFICIAL_DIR"))
p.add_argument("--batch", type=int, default=8)
p.add_argument("--steps", type=int, default=4)
p.add_argument("--resolution", type=int, default=512)
p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
p.add_argument("--precision", choices=["f32", "bf16"], default="f32")
p.add_argument("--rank", type=int, default=128)
p.add_argument("--tiny", action="store_true", help="smoke test on a tiny folder (gen_train_step.py's T3 widths)")
args = p.parse_args()

# T1: before attention.py reads it.
import diffusers.utils.import_utils as iu  # noqa: E402

iu.is_xformers_available = lambda: False
sys.path.insert(0, str(Path(args.official)))
import attention  # noqa: E402
import functions  # noqa: E402
import train  # noqa: E402
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel  # noqa: E402

if args.tiny:  # T3: the official widths need a cross-attention width of 64 or more
    import functools

    attention.AttentionMLP = functools.partial(functions.AttentionMLP, dim=32, depth=2, heads=1)
    _resampler = functions.FacePerceiverResampler
    functions.FacePerceiverResampler = lambda **kw: _resampler(**{**kw, "depth": 1, "heads": 1, "dim_head": 16})
from transformers import CLIPTextModel, CLIPVisionModelWithProjection  # noqa: E402

dev = torch.device(args.device)
frozen_dtype = torch.bfloat16 if args.precision == "bf16" else torch.float32
folder = Path(args.model)


def load(cls, sub):
    for variant in ("fp16", None):
        try:
            return cls.from_pretrained(folder / sub, variant=variant, torch_dtype=frozen_dtype)
        except (OSError, ValueError):
            continue
    raise SystemExit(f"cannot load {folder / sub}")


unet = load(UNet2DConditionModel, "unet").to(dev)
vae = load(AutoencoderKL, "vae").to(dev)
text = load(CLIPTextModel, "text_encoder").to(dev)
vision = load(CLIPVisionModelWithProjection, "image_encoder").to(dev)
for m in (unet, vae, text, vision):
    m.requires_grad_(False)
sched = DDPMScheduler.from_pretrained(folder / "scheduler")
cross = unet.config.cross_attention_dim
clip_dim = vision.config.hidden_size
image_proj = functions.ProjPlusModel(cross_attention_dim=cross, id_embeddings_dim=512, clip_embeddings_dim=clip_dim, num_tokens=4)
facial = attention.FacialEncoder(image_CLIPModel_encoder=None, embedding_dim=clip_dim, output_dim=cross, embed_dim=cross)

# train.py:151-177: the processors, to_k_ip/to_v_ip copied from attn2.
unet_sd = unet.state_dict()
procs = {}
for name in unet.attn_processors.keys():
    hidden = (unet.config.block_out_channels[-1] if name.startswith("mid_block")
              else list(reversed(unet.config.block_out_channels))[int(name[len("up_blocks.")])] if name.startswith("up_blocks")
              else unet.config.block_out_channels[int(name[len("down_blocks.")])])
    if name.endswith("attn1.processor"):
        procs[name] = attention.Consistent_AttProcessor(hidden_size=hidden, cross_attention_dim=None, rank=args.rank)
    else:
        layer = name.split(".processor")[0]
        procs[name] = attention.Consistent_IPAttProcessor(hidden_size=hidden, cross_attention_dim=cross, rank=args.rank)
        procs[name].load_state_dict({"to_k_ip.weight": unet_sd[layer + ".to_k.weight"].float(),
                                     "to_v_ip.weight": unet_sd[layer + ".to_v.weight"].float()}, strict=False)
unet.set_attn_processor(procs)
adapters = torch.nn.ModuleList(unet.attn_processors.values())
image_proj.to(dev, dtype=frozen_dtype)  # train.py:148 casts it with the frozen networks
facial.to(dev)
adapters.to(dev)
model = train.ConsistentID(unet, image_proj, adapters, facial)
unet_params = [q for q in model.unet.parameters() if q.requires_grad]
other = [q for n, q in model.named_parameters() if q.requires_grad and "unet" not in n]
opt = torch.optim.AdamW([{"params": unet_params, "lr": 1e-4}, {"params": other, "lr": 1e-4}],
                        betas=(0.9, 0.999), weight_decay=1e-2, eps=1e-08)

B, S = args.batch, args.resolution
C = vision.config.image_size
fg = Image.new("L", (S, S), 0)
fg.paste(255, (S // 8, S // 8, S - S // 8, S))
masks = torch.zeros(B, 5, S, S, device=dev)
for k, (y0, y1, x0, x1) in enumerate([(0.2, 0.8, 0.25, 0.75), (0.35, 0.4, 0.3, 0.45), (0.4, 0.5, 0.2, 0.25),
                                      (0.45, 0.6, 0.45, 0.55), (0.65, 0.7, 0.4, 0.6)]):
    masks[:, k, int(y0 * S):int(y1 * S), int(x0 * S):int(x1 * S)] = 1.0
idx = torch.tensor([[10, 13, 20, 31, 38]] * B, device=dev)
valid = torch.ones(B, 5, dtype=torch.bool, device=dev)
token_mask = torch.zeros(B, 77, dtype=torch.bool, device=dev)
token_mask[:, [10, 13, 20, 31, 38]] = True


def sync():
    if dev.type == "cuda":
        torch.cuda.synchronize()


times = []
for step in range(args.steps):
    sync()
    t0 = time.perf_counter()
    with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=args.precision == "bf16"):
        with torch.no_grad():
            images = torch.rand(B, 3, S, S, device=dev, dtype=frozen_dtype) * 2 - 1
            latents = vae.encode(images).latent_dist.sample() * vae.config.scaling_factor
            noise = torch.randn_like(latents)
            t = torch.randint(0, sched.config.num_train_timesteps, (B,), device=dev)
            noisy = sched.add_noise(latents, noise, t)
            ids = torch.randint(0, text.config.vocab_size - 1, (B, 77), device=dev)
            prompt = text(ids)[0]
            pixels = torch.randn(B * 6, 3, C, C, device=dev, dtype=frozen_dtype)
            hidden = vision(pixels, output_hidden_states=True).hidden_states[-2]
            image_embeds, regions = hidden[:B], hidden[B:].reshape(B, 5, hidden.shape[1], hidden.shape[2])
            face = torch.nn.functional.normalize(torch.randn(B, 1, 512, device=dev), dim=-1).to(frozen_dtype)
        model.cross_attention_scores.clear()
        _, losses = model(noisy, t, prompt.clone(), image_embeds, face, regions, token_mask, valid, noise,
                          [{"WithoutBackground": fg}] * B, masks, idx, valid)
        loss = losses["predict_loss"] + losses["facial_loss"]
    opt.zero_grad()
    loss.backward()
    opt.step()
    sync()
    times.append(time.perf_counter() - t0)
    print(f"step {step + 1}: {times[-1]:.3f} s, loss {float(loss):.5f}", file=sys.stderr)

peak = (torch.cuda.max_memory_allocated() if dev.type == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
print(json.dumps({
    "side": "pytorch", "steps_s": times, "peak_bytes": peak,
    "device": torch.cuda.get_device_name() if dev.type == "cuda" else "cpu",
    "batch": B, "resolution": S, "precision": args.precision, "torch": torch.__version__,
}))
