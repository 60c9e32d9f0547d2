#!/usr/bin/env python3
"""Parity fixture for the whole txt2img loop (diffusers 0.23 StableDiffusionPipeline).

A tiny random-weight SD pipeline folder (tokenizer with a 600-merge slice of the real CLIP
vocabulary, CLIP text encoder, UNet, VAE, PNDM-style SD scheduler config) is saved under
tests/fixtures/sd_tiny/, and the pipeline is run with injected initial latents for Euler and DDIM
(prompt + negative prompt, CFG). expected.safetensors holds, per case, `init_latents` (standard
normal, before init_noise_sigma scaling) and `image` ([1,3,H,W] in [0,1], output_type="pt").
Needs the real CLIP vocabulary (tests/scripts/fetch_real_data.sh); environment: gen_clip_text.py.

    venv/bin/python tests/scripts/gen_txt2img.py
"""

import json
import shutil
import sys
from pathlib import Path

import diffusers
import torch
from diffusers import (AutoencoderKL, DDIMScheduler, EulerDiscreteScheduler, PNDMScheduler,
                       StableDiffusionPipeline, UNet2DConditionModel)
from safetensors.torch import save_file
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_clip_text import randomize as randomize_clip, real_merges, write_tokenizer  # noqa: E402
from gen_unet import randomize  # noqa: E402

assert diffusers.__version__ == "0.23.0", diffusers.__version__
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
OUT = FIXTURES / "sd_tiny"

CASES = [
    # (name, scheduler, steps, guidance, prompt, negative, latent h, w)
    ("euler", "euler", 4, 7.5, "a photo of a cat, 4k", "blurry, lowres", 6, 4),
    ("ddim", "ddim", 3, 5.0, "portrait of a woman", None, 4, 6),
]


def main():
    if OUT.exists():
        shutil.rmtree(OUT)
    gen = torch.Generator().manual_seed(7)
    vocab = write_tokenizer(OUT / "tokenizer", real_merges()[:600])
    text_encoder = CLIPTextModel(CLIPTextConfig(vocab_size=vocab, hidden_size=32, intermediate_size=48,
                                                num_hidden_layers=2, num_attention_heads=4,
                                                max_position_embeddings=77)).eval()
    randomize_clip(text_encoder, gen)
    unet = UNet2DConditionModel(block_out_channels=[8, 16], down_block_types=["CrossAttnDownBlock2D", "DownBlock2D"],
                                up_block_types=["UpBlock2D", "CrossAttnUpBlock2D"], layers_per_block=1,
                                attention_head_dim=2, norm_num_groups=4, cross_attention_dim=32,
                                sample_size=8).eval()
    randomize(unet, gen)
    with torch.no_grad():
        # Keep the stand-in noise prediction small, so the loop stays in a sane range.
        unet.conv_out.weight.mul_(0.2)
    vae = AutoencoderKL(block_out_channels=[8, 8], down_block_types=["DownEncoderBlock2D"] * 2,
                        up_block_types=["UpDecoderBlock2D"] * 2, layers_per_block=1, latent_channels=4,
                        norm_num_groups=4, sample_size=16).eval()
    randomize(vae, gen)
    scheduler = PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              set_alpha_to_one=False, skip_prk_steps=True, steps_offset=1)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder,
                                   tokenizer=CLIPTokenizer.from_pretrained(OUT / "tokenizer"), unet=unet,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.save_pretrained(OUT, safe_serialization=True)
    # Run what the Rust side will load: the saved folder.
    saved = StableDiffusionPipeline.from_pretrained(OUT, safety_checker=None, requires_safety_checker=False)
    for part in ("text_encoder", "unet", "vae"):
        a, b = getattr(pipe, part).state_dict(), getattr(saved, part).state_dict()
        for k in a:
            if not torch.equal(a[k], b[k]):
                print(f"note: {part}.{k} differs after save/load")
    pipe = saved
    scheduler = saved.scheduler
    tensors, cases = {}, []
    for name, kind, steps, guidance, prompt, negative, h, w in CASES:
        sched_cls = EulerDiscreteScheduler if kind == "euler" else DDIMScheduler
        pipe.scheduler = sched_cls.from_config(scheduler.config)
        init = torch.randn((1, 4, h, w), generator=gen)
        with torch.no_grad():
            image = pipe(prompt, negative_prompt=negative, num_inference_steps=steps, guidance_scale=guidance,
                         latents=init.clone(), output_type="pt").images
        tensors[f"{name}.init_latents"] = init
        tensors[f"{name}.image"] = image.contiguous()
        cases.append({"name": name, "scheduler": kind, "steps": steps, "guidance": guidance,
                      "prompt": prompt, "negative_prompt": negative})
    save_file(tensors, OUT / "expected.safetensors")
    (OUT / "cases.json").write_text(json.dumps(cases, indent=1))
    print(f"wrote sd_tiny with {len(cases)} txt2img cases")


if __name__ == "__main__":
    main()
