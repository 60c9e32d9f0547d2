#!/usr/bin/env python3
"""The PyTorch side of `consistentid bench`: the official ConsistentID SD1.5 pipeline's work
(shared/spec/consistentid.md §1.2) on the same folder, face and shapes, timed by the same phases,
printed as the same JSON keys. Run by scripts/bench.sh; alone:

    venv/bin/python bench/torch_pipeline.py --model DIR --face astronaut.png [--steps 3 ...]

What runs, as upstream: insightface's buffalo_l graphs on onnxruntime (SCRFD at 640², ArcFace on
a 112² crop), facexlib's BiSeNet at 512² with the cv2 region masks, the marked prompt and the
CLIP-L text tower (facial ids + the CFG pair), CLIP ViT-H on the photo, its zero image, the 5
region composites and 5 zero images (12 images, as upstream), ProjPlus and FacialEncoder twice,
the UNet with ConsistentID's processors (batch 2, CFG) under diffusers' Euler scheduler with the
merge step, and the VAE decoder. f32 on the CPU, torch's default threads.

Environment: the fixture venv (torch 2.0.0, diffusers 0.23.0, transformers 4.31.0,
onnxruntime 1.16.3, opencv-python-headless 4.8.1.78, safetensors 0.4.0).
"""

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "scripts"))
import cv2  # noqa: E402
import onnxruntime as ort  # noqa: E402
from diffusers import AutoencoderKL, EulerDiscreteScheduler, UNet2DConditionModel  # noqa: E402
from PIL import Image  # noqa: E402
from transformers import CLIPImageProcessor, CLIPTextModel, CLIPTokenizer, CLIPVisionModelWithProjection  # noqa: E402

from gen_bisenet import facexlib_parsing, masks_for_unique_values  # noqa: E402
from gen_consistentid_modules import FacialEncoder, ProjPlusModel  # noqa: E402
from gen_consistentid_pipeline import CAPTION, facial_masks  # noqa: E402
from gen_prompts import build  # noqa: E402
from gen_unet_adapters import install_processors  # noqa: E402

NEGATIVE = "blurry"
# Where the networks run (`--device cuda` on a GPU machine; insightface's ONNX stays on the CPU
# as the official pipeline's onnxruntime does without onnxruntime-gpu).
DEV = torch.device("cpu")


def sync():
    if DEV.type == "cuda":
        torch.cuda.synchronize()


def rss_mb(key):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1]) / 1024
    return None


class Pipeline:
    def __init__(self, root: Path, bisenet_module):
        f32 = dict(torch_dtype=torch.float32)
        self.tok = CLIPTokenizer.from_pretrained(root / "tokenizer")
        self.tok.add_tokens(["<|image|>", "<|facial|>"], special_tokens=True)
        self.text = CLIPTextModel.from_pretrained(root / "text_encoder", variant="fp16", **f32).eval().to(DEV)
        self.unet = UNet2DConditionModel.from_pretrained(root / "unet", variant="fp16", **f32).eval().to(DEV)
        self.vae = AutoencoderKL.from_pretrained(root / "vae", variant="fp16", **f32).eval().to(DEV)
        self.scheduler = EulerDiscreteScheduler.from_config(EulerDiscreteScheduler.load_config(root / "scheduler"))
        self.vision = CLIPVisionModelWithProjection.from_pretrained(root / "image_encoder", **f32).eval().to(DEV)
        ckpt = torch.load(root / "ConsistentID-v1.bin", map_location="cpu")
        self.proj = ProjPlusModel(768, 512, 1280, 4, depth=4, heads=12, hidden=1024).eval()
        self.proj.load_state_dict({k: v.float() for k, v in ckpt["image_proj"].items()})
        self.enc = FacialEncoder(1280, 768, 1024, depth=8, heads=16).eval()
        self.enc.load_state_dict(ckpt["FacialEncoder"])
        install_processors(self.unet, rank=128, num_tokens=4, scale=1.0).load_state_dict(ckpt["adapter_modules"])
        del ckpt
        self.proj.to(DEV)
        self.enc.to(DEV)
        self.unet.to(DEV)
        self.bisenet = bisenet_module.BiSeNet(num_class=19).eval()
        self.bisenet.load_state_dict(torch.load(root / "face_parsing.pth", map_location="cpu"))
        opts = ort.SessionOptions()
        self.det = ort.InferenceSession(str(root / "buffalo_l" / "det_10g.onnx"), opts, providers=["CPUExecutionProvider"])
        self.rec = ort.InferenceSession(str(root / "buffalo_l" / "w600k_r50.onnx"), opts, providers=["CPUExecutionProvider"])
        self.processor = CLIPImageProcessor()

    def analyse(self, face):
        arr = np.asarray(face)[:, :, ::-1]  # insightface sees BGR
        scale = 640 / max(arr.shape[:2])
        resized = cv2.resize(arr, (round(arr.shape[1] * scale), round(arr.shape[0] * scale)))
        canvas = np.zeros((640, 640, 3), np.uint8)
        canvas[:resized.shape[0], :resized.shape[1]] = resized
        blob = cv2.dnn.blobFromImage(canvas, 1 / 128, (640, 640), (127.5,) * 3, swapRB=True)
        self.det.run(None, {self.det.get_inputs()[0].name: blob})
        crop = cv2.resize(arr, (112, 112))
        blob = cv2.dnn.blobFromImage(crop, 1 / 127.5, (112, 112), (127.5,) * 3, swapRB=True)
        emb = self.rec.run(None, {self.rec.get_inputs()[0].name: blob})[0]
        return torch.nn.functional.normalize(torch.from_numpy(emb), dim=-1).to(DEV)

    def parse(self, face):
        mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
        x = torch.from_numpy(np.asarray(face.resize((512, 512), Image.BILINEAR)).copy()).permute(2, 0, 1).float() / 255
        labels = self.bisenet(((x - mean) / std)[None])[0][0].argmax(0).numpy().astype(np.uint8)
        return facial_masks(labels)

    def penult(self, px):
        return self.vision(pixel_values=px, output_hidden_states=True).hidden_states[-2]

    def encode(self, face, masks, id_embedding, prompt):
        p = build(prompt, CAPTION, list(masks), self.tok)
        masks = {k: masks[k] for k in p["kept"]}
        e_fac = self.text(torch.tensor([p["input_ids"]], device=DEV))[0]
        ids = self.tok([NEGATIVE, p["prompt_text_only"]], padding="max_length", max_length=77, truncation=True,
                       return_tensors="pt").input_ids
        n_txt, e_txt = self.text(ids.to(DEV))[0].chunk(2)
        clip = self.processor(images=face, return_tensors="pt").pixel_values.to(DEV)
        h, h0 = self.penult(clip), self.penult(torch.zeros_like(clip))
        t_id, t_id0 = self.proj(id_embedding, h), self.proj(torch.zeros(1, 512, device=DEV), h0)
        regions = []
        for m in masks.values():
            comp = Image.composite(face, Image.new("RGB", face.size, (0, 0, 0)), m.resize(face.size))
            regions.append(self.processor(images=comp, return_tensors="pt").pixel_values)
        regions += [torch.zeros(1, 3, 224, 224)] * (5 - len(regions))
        region_pixels = torch.cat(regions).to(DEV)
        f, f0 = self.penult(region_pixels)[None], self.penult(torch.zeros_like(region_pixels))[None]
        pos = set(p["facial_positions"])
        mask = torch.tensor([[i in pos for i in range(77)]], device=DEV)
        valid = torch.tensor([p["facial_token_idx_mask"]], device=DEV)
        p_fac = self.enc(e_fac, f, mask, valid) if mask.any() else e_fac
        p_fac0 = self.enc(n_txt, f0, mask, valid) if mask.any() else n_txt
        return (torch.cat([p_fac0, t_id0], 1), torch.cat([p_fac, t_id], 1), torch.cat([e_txt, t_id], 1))

    def denoise(self, conds, width, height, steps, merge, guidance, seed, on_step):
        null, augmented, text_only = conds
        latents = torch.randn(1, 4, height // 8, width // 8, generator=torch.Generator().manual_seed(seed)).to(DEV)
        self.scheduler.set_timesteps(steps)
        latents = latents * self.scheduler.init_noise_sigma
        for i, t in enumerate(self.scheduler.timesteps):
            xin = self.scheduler.scale_model_input(torch.cat([latents] * 2), t)
            cond = torch.cat([null, text_only if i <= merge else augmented])
            u, c = self.unet(xin, t, encoder_hidden_states=cond).sample.chunk(2)
            latents = self.scheduler.step(u + guidance * (c - u), t, latents).prev_sample
            on_step()
        return latents

    def decode(self, latents):
        return (self.vae.decode(latents / self.vae.config.scaling_factor).sample / 2 + 0.5).clamp(0, 1)


def timed(fn):
    sync()
    t = time.perf_counter()
    out = fn()
    sync()
    return out, time.perf_counter() - t


def portrait(pipe, face, args):
    start = time.perf_counter()
    phases, steps = {}, []
    emb, phases["analyse"] = timed(lambda: pipe.analyse(face))
    masks, phases["parse"] = timed(lambda: pipe.parse(face))
    conds, phases["encode"] = timed(lambda: pipe.encode(face, masks, emb, args.prompt))
    last = [time.perf_counter()]

    def on_step():
        sync()
        now = time.perf_counter()
        steps.append(now - last[0])
        last[0] = now

    latents, phases["denoise"] = timed(lambda: pipe.denoise(conds, args.width, args.height, args.steps,
                                                              args.merge_step, 5.0, args.seed, on_step))
    _, phases["decode"] = timed(lambda: pipe.decode(latents))
    return {"total_s": time.perf_counter() - start, "phases_s": phases, "steps_s": steps, "warnings": []}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--face", type=Path, required=True)
    ap.add_argument("--prompt", default="a woman as an astronaut, oil painting")
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--height", type=int, default=512)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--merge-step", type=int, default=1)
    ap.add_argument("--warm", type=int, default=1)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    global DEV
    DEV = torch.device(args.device)
    face = Image.open(args.face).convert("RGB")
    bisenet_module = facexlib_parsing(scale=False)["bisenet"]  # the import, not timed as loading
    rss_before = rss_mb("VmRSS")
    with torch.no_grad():
        pipe, load_s = timed(lambda: Pipeline(args.model, bisenet_module))
        rss_after = rss_mb("VmRSS")
        print(f"loaded in {load_s:.1f}s", file=sys.stderr)
        portraits = []
        for k in range(args.warm + 1):
            portraits.append(portrait(pipe, face, args))
            print(f"portrait {k + 1}: {portraits[-1]['total_s']:.1f}s", file=sys.stderr)
        comp = {}
        _, comp["text_encoder_pair"] = timed(lambda: pipe.text(pipe.tok([NEGATIVE, args.prompt], padding="max_length",
                                                                          max_length=77, return_tensors="pt").input_ids))
        _, comp["clip_vision_batch1"] = timed(lambda: pipe.penult(torch.zeros(1, 3, 224, 224)))
        _, comp["clip_vision_batch5"] = timed(lambda: pipe.penult(torch.zeros(5, 3, 224, 224)))
        _, comp["bisenet_512"] = timed(lambda: pipe.bisenet(torch.zeros(1, 3, 512, 512)))
        _, comp["vae_decode"] = timed(lambda: pipe.decode(torch.zeros(1, 4, args.height // 8, args.width // 8)))
    print(json.dumps({
        "implementation": f"official pipeline (torch {torch.__version__}, diffusers, onnxruntime {ort.__version__})",
        "backend": "cpu",
        "machine": {"os": platform.system().lower(), "arch": platform.machine(), "cpu": platform.processor() or None,
                    "threads": torch.get_num_threads(), "cores": os.cpu_count()},
        "model": str(args.model),
        "settings": {"width": args.width, "height": args.height, "steps": args.steps, "merge_step": args.merge_step,
                     "scheduler": "euler", "dtype": "f32"},
        "load_s": load_s, "rss_before_load_mb": rss_before, "rss_after_load_mb": rss_after,
        "portraits": portraits, "components_s": comp,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }, indent=2))


if __name__ == "__main__":
    main()
