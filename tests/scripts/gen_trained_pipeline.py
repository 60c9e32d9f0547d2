#!/usr/bin/env python3
"""A ConsistentID-v1.bin written by `consistentid train` through the pipeline replica of
gen_consistentid_pipeline.py (its `render`: the official pipeline's steps on astronaut.png, the
same stored ID embedding and starting latents), for the test that an exported checkpoint gives the
same image in the reference pipeline as in ours.

tests/fixtures/train_export/ConsistentID-v1.bin was made by our trainer from fresh weights, on
the tiny replica folder of native/tests/common (`consistentid_folder`) and tests/fixtures/
training_sample's records 0 and 2 (the captions of native/tests/train.rs `dataset`):

    consistentid --device cpu train --model FOLDER --dataset data.json --out run --steps 3 \\
      --batch 2 --resolution 40 --seed 7 --from-scratch

This script loads it strictly into the re-created ProjPlusModel, FacialEncoder and processors
(the official structure: `image_proj` in bf16, `adapter_modules`, `FacialEncoder`) and writes
tests/fixtures/train_export/expected.safetensors: id_tokens, augmented, image.
Environment as gen_consistentid_pipeline.py (torch 2.0.0, diffusers 0.23.0, transformers 4.31.0).

    venv/bin/python tests/scripts/gen_trained_pipeline.py
"""

import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from transformers import CLIPVisionModelWithProjection

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_consistentid_modules import FacialEncoder, ProjPlusModel  # noqa: E402
from gen_consistentid_pipeline import FIX, load_sd_tiny, render  # noqa: E402
from gen_unet_adapters import install_processors  # noqa: E402

OUT = FIX / "train_export"


def main():
    tok, text_encoder, unet, vae, scheduler = load_sd_tiny()
    vision = CLIPVisionModelWithProjection.from_pretrained(FIX / "consistentid_pipeline" / "image_encoder").eval()
    ckpt = torch.load(OUT / "ConsistentID-v1.bin", map_location="cpu")
    assert all(v.dtype == torch.bfloat16 for v in ckpt["image_proj"].values())
    D = text_encoder.config.hidden_size
    proj = ProjPlusModel(D, 512, 24, 4, depth=2, heads=1, hidden=24).eval()
    proj.load_state_dict({k: v.float() for k, v in ckpt["image_proj"].items()}, strict=True)
    enc = FacialEncoder(24, D, 48, depth=2, heads=1).eval()
    enc.load_state_dict(ckpt["FacialEncoder"], strict=True)
    install_processors(unet, scale=1.0).load_state_dict(ckpt["adapter_modules"], strict=True)
    stored = load_file(FIX / "consistentid_pipeline" / "expected.safetensors")
    models = (tok, text_encoder, unet, vae, scheduler, vision)
    tensors, _, _ = render(models, proj, enc, stored["id_embedding"], stored["init_latents"])
    save_file({k: tensors[k] for k in ("id_tokens", "augmented", "image")}, str(OUT / "expected.safetensors"))
    print("image differs from the untrained replica's by", float((tensors["image"] - stored["image"]).abs().max()))


if __name__ == "__main__":
    main()
