#!/usr/bin/env python3
"""A tiny random-weight replica of the whole official SD1.5 ConsistentID pipeline (steps 2-14 of
shared/spec/consistentid.md §1.2, with a provided ArcFace embedding in place of insightface),
recording every intermediate for an injected starting noise.

Model folder (assembled the same way by the Rust test): tests/fixtures/sd_tiny (tokenizer, text
encoder, UNet, VAE, scheduler config) + tests/fixtures/bisenet_tiny/face_parsing.pth +
tests/fixtures/consistentid_pipeline/{image_encoder/, ConsistentID-v1.bin}. The checkpoint holds
ProjPlusModel (bf16) and FacialEncoder re-created from the spec (gen_consistentid_modules.py) and the
UNet's ConsistentID processors (gen_unet_adapters.py, rank 3, 4 ID tokens, scale 1.0), in the
official nested structure. Face photo: astronaut.png (real data).

expected.safetensors: id_embedding [1,512]; input_ids, facial_token_mask, facial_token_idx,
facial_token_idx_mask (i64); clip_penultimate [1,257,24]; id_tokens; null / augmented / text_only
[1,81,32]; init_latents [1,4,8,6]; image [1,3,64,48]; plus prompt, negative prompt, steps, merge
step and guidance in the metadata.

    venv/bin/python tests/scripts/gen_consistentid_pipeline.py
"""

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, EulerDiscreteScheduler, UNet2DConditionModel
from PIL import Image
from safetensors.torch import save_file
from transformers import CLIPImageProcessor, CLIPTextModel, CLIPTokenizer, CLIPVisionConfig, CLIPVisionModelWithProjection

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_bisenet import facexlib_parsing, masks_for_unique_values  # noqa: E402
from gen_consistentid_modules import FacialEncoder, ProjPlusModel  # noqa: E402
from gen_prompts import build  # noqa: E402
from gen_unet import randomize  # noqa: E402
from gen_unet_adapters import install_processors  # noqa: E402

FIX = Path(__file__).resolve().parents[1] / "fixtures"
OUT = FIX / "consistentid_pipeline"
DATA = Path(os.environ.get("CONSISTENTID_REAL_DATA", Path.home() / ".cache/consistentid/real-data"))
CAPTION = "The person has one face, one nose, two eyes, two ears, and one mouth."
PROMPT = "a photo of a person as an astronaut, highly detailed"
NEGATIVE = "blurry, lowres"
STEPS, MERGE, GUIDANCE = 5, 2, 5.0
NAMES = {1: "Face", 4: "Left_Eye", 5: "Right_Eye", 7: "Left_Ear", 8: "Right_Ear", 10: "Nose", 12: "Upper_Lip", 13: "Lower_Lip"}


def facial_masks(labels):
    """masks_for_unique_values + get_prepare_facemask's selection (dict order by label)."""
    masks = masks_for_unique_values(labels)
    kept, seen = {}, set()
    for v in sorted(masks):
        if v not in NAMES:
            continue
        pair = NAMES[v].split("_")[1] if "_" in NAMES[v] else NAMES[v]
        if pair in seen:
            continue
        seen.add(pair)
        kept[NAMES[v]] = Image.fromarray(masks[v])
    return kept


def load_sd_tiny():
    """sd_tiny's tokenizer (with the ConsistentID tokens), text encoder, UNet, VAE, Euler."""
    sd = FIX / "sd_tiny"
    tok = CLIPTokenizer.from_pretrained(sd / "tokenizer")
    tok.add_tokens(["<|image|>", "<|facial|>"], special_tokens=True)
    text_encoder = CLIPTextModel.from_pretrained(sd / "text_encoder").eval()
    unet = UNet2DConditionModel.from_pretrained(sd / "unet").eval()
    vae = AutoencoderKL.from_pretrained(sd / "vae").eval()
    scheduler = EulerDiscreteScheduler.from_config(EulerDiscreteScheduler.load_config(sd / "scheduler"))
    return tok, text_encoder, unet, vae, scheduler


def render(models, proj, enc, id_embedding, init):
    """Steps 2-14 of the pipeline on astronaut.png with the given trained modules: every
    intermediate, the image last (`models`: tok, text_encoder, unet (processors installed),
    vae, scheduler, vision)."""
    tok, text_encoder, unet, vae, scheduler, vision = models
    # BiSeNet (the tiny facexlib replica of bisenet_tiny) on the face photo.
    bisenet = facexlib_parsing()["bisenet"].BiSeNet(num_class=19).eval()
    bisenet.load_state_dict(torch.load(FIX / "bisenet_tiny" / "face_parsing.pth"))
    face = Image.open(DATA / "images" / "astronaut.png").convert("RGB")
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    x = torch.from_numpy(np.asarray(face.resize((512, 512), Image.BILINEAR)).copy()).permute(2, 0, 1).float().div(255)
    with torch.no_grad():
        labels = bisenet(((x - mean) / std)[None])[0][0].argmax(0).numpy().astype(np.uint8)
    masks = facial_masks(labels)

    # Text side.
    p = build(PROMPT, CAPTION, list(masks), tok)
    masks = {k: masks[k] for k in p["kept"]}
    processor = CLIPImageProcessor()
    with torch.no_grad():
        e_fac = text_encoder(torch.tensor([p["input_ids"]]))[0]
        def encode(text):
            ids = tok(text, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
            return text_encoder(ids)[0]
        e_txt, n_txt = encode(p["prompt_text_only"]), encode(NEGATIVE)
        # ID tokens from the whole photo and from a zero image / zero embedding.
        clip_pixels = processor(images=face, return_tensors="pt").pixel_values
        penult = lambda px: vision(pixel_values=px, output_hidden_states=True).hidden_states[-2]
        h, h0 = penult(clip_pixels), penult(torch.zeros_like(clip_pixels))
        t_id, t_id0 = proj(id_embedding, h), proj(torch.zeros(1, 512), h0)
        # Region images: composite over black, CLIPImageProcessor, zero-padded to 5.
        regions = []
        for m in masks.values():
            comp = Image.composite(face, Image.new("RGB", face.size, (0, 0, 0)), m.resize(face.size))
            regions.append(processor(images=comp, return_tensors="pt").pixel_values)
        regions += [torch.zeros(1, 3, 224, 224)] * (5 - len(regions))
        region_pixels = torch.cat(regions)
        f, f0 = penult(region_pixels)[None], penult(torch.zeros_like(region_pixels))[None]
        mask = torch.tensor([p["facial_positions"] and [i in p["facial_positions"] for i in range(77)] or [False] * 77])
        valid = torch.tensor([p["facial_token_idx_mask"]])
        p_fac = enc(e_fac, f, mask, valid) if mask.any() else e_fac
        p_fac0 = enc(n_txt, f0, mask, valid) if mask.any() else n_txt
        null = torch.cat([p_fac0, t_id0], 1)
        augmented = torch.cat([p_fac, t_id], 1)
        text_only = torch.cat([e_txt, t_id], 1)
        # Denoising with the merge step.
        latents = init.clone()
        scheduler.set_timesteps(STEPS)
        latents = latents * scheduler.init_noise_sigma
        for i, t in enumerate(scheduler.timesteps):
            xin = scheduler.scale_model_input(torch.cat([latents] * 2), t)
            cond = torch.cat([null, text_only if i <= MERGE else augmented])
            eps = unet(xin, t, encoder_hidden_states=cond).sample
            u, c = eps.chunk(2)
            latents = scheduler.step(u + GUIDANCE * (c - u), t, latents).prev_sample
        image = (vae.decode(latents / vae.config.scaling_factor).sample / 2 + 0.5).clamp(0, 1)

    idx = torch.tensor([p["facial_token_idx"]])
    tensors = {
        "id_embedding": id_embedding, "input_ids": torch.tensor([p["input_ids"]]),
        "facial_token_mask": mask.long(), "facial_token_idx": idx, "facial_token_idx_mask": valid.long(),
        "clip_penultimate": h.contiguous(), "id_tokens": t_id.contiguous(),
        "null": null.contiguous(), "augmented": augmented.contiguous(), "text_only": text_only.contiguous(),
        "init_latents": init, "image": image.contiguous(),
    }
    return tensors, {
        "prompt": PROMPT, "negative_prompt": NEGATIVE, "steps": str(STEPS), "merge_step": str(MERGE),
        "guidance": str(GUIDANCE), "regions": json.dumps(list(masks)),
    }, p


def main():
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    gen = torch.Generator().manual_seed(5)
    torch.manual_seed(5)
    tok, text_encoder, unet, vae, scheduler = load_sd_tiny()
    adapters = install_processors(unet, scale=1.0)
    randomize(adapters, gen)

    vision_config = CLIPVisionConfig(hidden_size=24, intermediate_size=40, projection_dim=16, num_hidden_layers=3,
                                     num_attention_heads=2, image_size=224, patch_size=14, hidden_act="gelu")
    vision = CLIPVisionModelWithProjection(vision_config).eval()
    randomize(vision, gen)
    vision.save_pretrained(OUT / "image_encoder", safe_serialization=True)

    D = text_encoder.config.hidden_size
    proj = ProjPlusModel(D, 512, 24, 4, depth=2, heads=1, hidden=24).eval()
    enc = FacialEncoder(24, D, 48, depth=2, heads=1).eval()
    randomize(proj, gen)
    randomize(enc, gen)
    proj_sd = {k: v.to(torch.bfloat16) for k, v in proj.state_dict().items()}
    proj.load_state_dict({k: v.float() for k, v in proj_sd.items()})
    torch.save({"image_proj": proj_sd, "FacialEncoder": enc.state_dict(), "adapter_modules": adapters.state_dict()},
               OUT / "ConsistentID-v1.bin")

    # The draws happen in the order the fixture was first made with.
    models = (tok, text_encoder, unet, vae, scheduler, vision)
    id_embedding = F.normalize(torch.randn(1, 512, generator=gen), dim=-1)
    init = torch.randn(1, 4, 8, 6, generator=gen)
    tensors, metadata, p = render(models, proj, enc, id_embedding, init)
    save_file(tensors, str(OUT / "expected.safetensors"), metadata=metadata)
    print("regions", metadata["regions"], "prompt_face", p["prompt_face"])


if __name__ == "__main__":
    main()
