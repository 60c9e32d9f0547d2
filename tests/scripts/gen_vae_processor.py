#!/usr/bin/env python3
"""diffusers 0.23's own `VaeImageProcessor.preprocess` as the inpainting pipelines call it:
`image_processor` (LANCZOS resize, ÷255, 2x − 1) on the real astronaut photo and
`mask_processor` (grey, LANCZOS resize, ÷255, binarised at 0.5) on a synthetic soft-edged RGB
mask, both to 96×64 (downscaled) and the mask also to 160×120 (upscaled).

Writes tests/fixtures/inpaint_inputs/expected.safetensors: `mask_rgb` (the mask image, u8
[90, 120, 3]), `image_96x64` [1, 3, 64, 96], `mask_96x64` and `mask_160x120` [1, 1, h, w].

Needs the real data; torch 2.0.0, diffusers 0.23.0, pillow 10.0.1, numpy 1.24.3.

    venv/bin/python tests/scripts/gen_vae_processor.py
"""

import os
from pathlib import Path

import diffusers
import numpy as np
from diffusers.image_processor import VaeImageProcessor
from PIL import Image
from safetensors.numpy import save_file

assert diffusers.__version__ == "0.23.0"
OUT = Path(__file__).resolve().parents[1] / "fixtures" / "inpaint_inputs"
DATA = Path(os.environ.get("CONSISTENTID_REAL_DATA", Path.home() / ".cache/consistentid/real-data"))


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    image_processor = VaeImageProcessor(vae_scale_factor=8)
    mask_processor = VaeImageProcessor(vae_scale_factor=8, do_normalize=False, do_binarize=True,
                                       do_convert_grayscale=True)
    photo = Image.open(DATA / "images" / "astronaut.png").convert("RGB")
    yy, xx = np.mgrid[0:90, 0:120]
    d = np.sqrt((xx - 60.0) ** 2 + ((yy - 45.0) * 1.3) ** 2)
    soft = np.clip(255 * (1 - (d - 25) / 12), 0, 255)
    mask_rgb = np.stack([soft, soft * 0.8, 255 - soft * 0.5], -1).astype(np.uint8)
    mask = Image.fromarray(mask_rgb)
    out = {
        "mask_rgb": mask_rgb,
        "image_96x64": image_processor.preprocess(photo, height=64, width=96).numpy(),
        "mask_96x64": mask_processor.preprocess(mask, height=64, width=96).numpy(),
        "mask_160x120": mask_processor.preprocess(mask, height=120, width=160).numpy(),
    }
    save_file({k: np.ascontiguousarray(v) for k, v in out.items()}, str(OUT / "expected.safetensors"))
    print({k: (v.shape, float(v.mean())) for k, v in out.items()})


if __name__ == "__main__":
    main()
