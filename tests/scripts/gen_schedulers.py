#!/usr/bin/env python3
"""Parity fixtures for the schedulers: diffusers 0.23 tables and whole denoising loops.

For each (scheduler, config, steps) case this records the timesteps, sigmas and
init_noise_sigma, then runs a full loop with a stand-in model (output = 0.3 * scaled input +
a fixed random tensor per step) and injected ancestral noise, saving the inputs and the final
sample. Environment: see gen_clip_text.py (torch 2.0.0, diffusers 0.23.0).

    venv/bin/python tests/scripts/gen_schedulers.py
"""

import json
from pathlib import Path

import diffusers
import torch
from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, EulerAncestralDiscreteScheduler, EulerDiscreteScheduler
from diffusers.schedulers import scheduling_euler_ancestral_discrete as ea_module
from safetensors.torch import save_file

assert diffusers.__version__ == "0.23.0", diffusers.__version__
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

CONFIGS = {
    # Realistic Vision V6.0 B1 / SD1.5 style PNDM config (what ConsistentID inherits).
    "sd15": {"_class_name": "PNDMScheduler", "_diffusers_version": "0.6.0", "beta_end": 0.012,
             "beta_schedule": "scaled_linear", "beta_start": 0.00085, "num_train_timesteps": 1000,
             "set_alpha_to_one": False, "skip_prk_steps": True, "steps_offset": 1, "clip_sample": False,
             "prediction_type": "epsilon", "timestep_spacing": "leading"},
    # Bare config: every scheduler falls back to its own defaults (linspace / leading spacing).
    "bare_v": {"beta_schedule": "linear", "prediction_type": "v_prediction"},
    # Cosine betas, trailing spacing, fewer training steps.
    "cosine_trailing": {"beta_schedule": "squaredcos_cap_v2", "num_train_timesteps": 500,
                        "timestep_spacing": "trailing", "clip_sample": False},
}

KINDS = {
    "euler": lambda c: EulerDiscreteScheduler.from_config(c),
    "euler-a": lambda c: EulerAncestralDiscreteScheduler.from_config(c),
    "ddim": lambda c: DDIMScheduler.from_config(c),
    "dpmpp-2m-karras": lambda c: DPMSolverMultistepScheduler.from_config(c, use_karras_sigmas=True),
}


def run_case(kind, cfg_name, steps, seed, tensors):
    sched = KINDS[kind](CONFIGS[cfg_name])
    sched.set_timesteps(steps)
    gen = torch.Generator().manual_seed(seed)
    shape = (1, 4, 5, 6)
    x = torch.randn(shape, generator=gen) * sched.init_noise_sigma
    x_init = x.clone()
    consts = torch.randn((steps,) + shape, generator=gen)
    noise = torch.randn((steps,) + shape, generator=gen)
    queue = list(noise)
    ea_module.randn_tensor = lambda *a, **k: queue.pop(0).clone()
    for i, t in enumerate(sched.timesteps):
        inp = sched.scale_model_input(x, t)
        out = 0.3 * inp + consts[i]
        x = sched.step(out, t, x).prev_sample
    key = f"{kind}.{cfg_name}.{steps}"
    tensors[f"{key}.timesteps"] = sched.timesteps.to(torch.float64).contiguous()
    if hasattr(sched, "sigmas") and kind != "ddim":
        tensors[f"{key}.sigmas"] = sched.sigmas.to(torch.float64).contiguous()
    tensors[f"{key}.init_noise_sigma"] = torch.tensor([float(sched.init_noise_sigma)], dtype=torch.float64)
    tensors[f"{key}.x_init"] = x_init.contiguous()
    tensors[f"{key}.consts"] = consts.contiguous()
    tensors[f"{key}.noise"] = noise.contiguous()
    tensors[f"{key}.x_final"] = x.contiguous()
    return key


def main():
    tensors, cases = {}, []
    seed = 0
    for kind in KINDS:
        for cfg_name in CONFIGS:
            # The cosine schedule gives Karras timesteps a repeated first value, where diffusers
            # 0.23 starts at index 1 and then indexes past its sigmas: not a case to copy.
            if kind == "dpmpp-2m-karras" and cfg_name == "cosine_trailing":
                continue
            for steps in (7, 20):
                seed += 1
                key = run_case(kind, cfg_name, steps, seed, tensors)
                cases.append({"key": key, "kind": kind, "config": cfg_name, "steps": steps})
    save_file(tensors, FIXTURES / "schedulers.safetensors")
    (FIXTURES / "schedulers.json").write_text(json.dumps({"configs": CONFIGS, "cases": cases}, indent=1))
    print(f"wrote {len(cases)} scheduler cases")


if __name__ == "__main__":
    main()
