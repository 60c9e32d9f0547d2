#!/usr/bin/env python3
"""Half-precision references for the tiny txt2img loop (diffusers, `torch_dtype=torch.float16`).

Loads tests/fixtures/sd_tiny/ (gen_txt2img.py's folder) as the official pipeline does on a GPU,
with every model in fp16, and runs its cases with the same initial latents; also in bf16, and in
f32 (which must reproduce the pinned diffusers 0.23 fixture: the numerics did not change between
releases). Writes tests/fixtures/sd_tiny/half.safetensors with, per case, `{case}.f16.image`,
`{case}.bf16.image` and `{case}.f32.image` ([1,3,H,W] in [0,1]), and prints how far each half
image is from the f32 one (the parity tests' tolerances are stated against these figures).

PyTorch before 2.1 has no half-precision matmul or convolution on the CPU, so this uses a current
release (the other scripts pin diffusers 0.23 / torch 2.0):

    python3.11 -m venv venv5 && venv5/bin/pip install torch==2.15.0 transformers==5.24.0 \
        safetensors==0.8.0 diffusers==0.42.1
    venv5/bin/python tests/scripts/gen_txt2img_fp16.py
"""

import json
from pathlib import Path

import diffusers
import torch
from diffusers import DDIMScheduler, EulerDiscreteScheduler, StableDiffusionPipeline
from safetensors.torch import load_file, save_file

assert diffusers.__version__ == "0.42.1", diffusers.__version__
assert torch.__version__.startswith("2.15.0"), torch.__version__
FOLDER = Path(__file__).resolve().parents[1] / "fixtures" / "sd_tiny"


def run(dtype, case, init):
    pipe = StableDiffusionPipeline.from_pretrained(FOLDER, torch_dtype=dtype, safety_checker=None,
                                                   requires_safety_checker=False)
    sched_cls = EulerDiscreteScheduler if case["scheduler"] == "euler" else DDIMScheduler
    pipe.scheduler = sched_cls.from_config(pipe.scheduler.config)
    with torch.no_grad():
        image = pipe(case["prompt"], negative_prompt=case["negative_prompt"],
                     num_inference_steps=case["steps"], guidance_scale=case["guidance"],
                     latents=init.to(dtype), output_type="pt").images
    return image.float().contiguous()


def main():
    torch.set_num_threads(1)
    cases = json.loads((FOLDER / "cases.json").read_text())
    pinned = load_file(FOLDER / "expected.safetensors")
    out = {}
    for case in cases:
        name = case["name"]
        init = pinned[f"{name}.init_latents"]
        f32 = run(torch.float32, case, init)
        drift = (f32 - pinned[f"{name}.image"]).abs().max().item()
        assert drift < 1e-5, f"{name}: f32 differs from the diffusers 0.23 fixture by {drift}"
        out[f"{name}.f32.image"] = f32
        for label, dtype in (("f16", torch.float16), ("bf16", torch.bfloat16)):
            image = run(dtype, case, init)
            out[f"{name}.{label}.image"] = image
            diff = (image - f32).abs()
            print(f"{name} {label}: max |half - f32| = {diff.max().item():.2e}, "
                  f"mean = {diff.mean().item():.2e}")
    save_file(out, FOLDER / "half.safetensors")
    print(f"wrote {FOLDER / 'half.safetensors'}")


if __name__ == "__main__":
    main()
