#!/usr/bin/env python3
"""Parity fixtures for BiSeNet face parsing, the facial-region masks and the region images.

BiSeNet: facexlib 0.3.0's own `parsing/bisenet.py` + `parsing/resnet.py` (= zllrunning's
face-parsing.PyTorch, the architecture of `face_parsing.pth`), taken from its wheel, with the
channel widths scaled down 8x by substituting the literals (64/128/256/512 -> 8/16/32/64) so the
random-weight replica stays small. Saved with `torch.save(state_dict)` (zip format, Long
`num_batches_tracked` storages included) as tests/fixtures/bisenet_tiny/face_parsing.pth.
For each real photo, bisenet_tiny/expected.safetensors holds:
  <photo>.resized_patch  u8 [64,64,3]  rows/cols 224..288 of the Pillow BILINEAR 512x512 resize
  <photo>.logits_patch   [19,32,32]    main-head logits at rows/cols 240..272
  <photo>.label_counts   i64 [19]      pixels per label of the argmax map
  astronaut.labels       u8 [512,512]  the argmax label map itself
  astronaut.region_labels, astronaut.region<k>.{mask (bit-packed), pixel_sum, pixel_patch}: the
                         official region selection (Face, first eye, first ear, Nose, first lip) on
                         that map, each region image (Image.composite over black, mask resized to
                         the photo with Pillow's default) through CLIPImageProcessor
Regions (tests/fixtures/regions/<photo>.safetensors), on label maps drawn from the real photos
(each 128x128 photo quantised into 19 levels of luminance, so regions have real-world shapes with
holes): the official `masks_for_unique_values` (cv2.findContours RETR_EXTERNAL +
drawContours filled) for every label present, bit-packed; and a Pillow check of the region image
(`Image.composite(I, black, mask.resize(I.size))`, mask upsampled with Pillow's default BICUBIC).

Needs the real data (tests/scripts/fetch_real_data.sh); torch 2.0.0, opencv-python-headless 4.8.1,
pillow, numpy 1.24.3.

    venv/bin/python tests/scripts/gen_bisenet.py
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import types
import zipfile
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image
from transformers import CLIPImageProcessor
from safetensors.numpy import save_file

assert torch.__version__.startswith("2.0.0")
ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("CONSISTENTID_REAL_DATA", Path.home() / ".cache/consistentid/real-data"))
PHOTOS = (("astronaut", "astronaut.png"), ("grace_hopper", "grace_hopper.jpg"))


def facexlib_parsing(scale=True):
    tmp = tempfile.mkdtemp()
    if os.environ.get("FACEXLIB_WHEEL"):  # offline machines (scripts/gpu-check.sh) carry the wheel
        shutil.copy(os.environ["FACEXLIB_WHEEL"], tmp)
    else:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "facexlib==0.3.0", "-d", tmp], check=True)
    wheel = next(Path(tmp).glob("facexlib-0.3.0-*.whl"))
    z = zipfile.ZipFile(wheel)
    pkg = types.ModuleType("fxparsing"); pkg.__path__ = []
    sys.modules["fxparsing"] = pkg
    mods = {}
    for name in ("resnet", "bisenet"):
        src = z.read(f"facexlib/parsing/{name}.py").decode()
        if scale:
            for big, small in (("512", "64"), ("256", "32"), ("128", "16"), ("64", "8")):
                src = src.replace(big, small)
        mod = types.ModuleType(f"fxparsing.{name}"); mod.__package__ = "fxparsing"
        sys.modules[f"fxparsing.{name}"] = mod
        exec(compile(src, f"facexlib/parsing/{name}.py", "exec"), mod.__dict__)
        mods[name] = mod
    shutil.rmtree(tmp)
    return mods


def masks_for_unique_values(labels):
    """ConsistentID functions.py `masks_for_unique_values` (cv2 contour fill), per label."""
    out = {}
    for v in np.unique(labels):
        binary = ((labels == v) * 255).astype(np.uint8)
        contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        filled = np.zeros_like(binary)
        cv2.drawContours(filled, contours, -1, 255, thickness=cv2.FILLED)
        out[int(v)] = filled
    return out


def main():
    mods = facexlib_parsing()
    out = ROOT / "fixtures" / "bisenet_tiny"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    torch.manual_seed(0)
    net = mods["bisenet"].BiSeNet(num_class=19).eval()
    with torch.no_grad():
        for name, p in net.named_parameters():
            fan = p[0].numel() if p.dim() > 1 else 1
            p.copy_(torch.randn_like(p) / np.sqrt(fan) * (1.5 if p.dim() > 1 else 0.2) + (1.0 if p.dim() == 1 and "bn" in name and name.endswith("weight") else 0.0))
        for name, b in net.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(torch.randn_like(b) * 0.1)
            elif name.endswith("running_var"):
                b.copy_(torch.rand_like(b) + 0.5)
            elif name.endswith("num_batches_tracked"):
                b.fill_(79999)
    torch.save(net.state_dict(), out / "face_parsing.pth")
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    expected = {}
    for photo, file in PHOTOS:
        img = Image.open(DATA / "images" / file).convert("RGB").resize((512, 512), Image.BILINEAR)
        arr = np.asarray(img)
        x = ((torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div(255) - mean) / std)[None]
        with torch.no_grad():
            logits = net(x)[0]
        expected[f"{photo}.resized_patch"] = np.ascontiguousarray(arr[224:288, 224:288])
        expected[f"{photo}.logits_patch"] = logits[0, :, 240:272, 240:272].numpy().copy()
        labels = logits[0].argmax(0).numpy().astype(np.uint8)
        if photo == "astronaut":  # the full map for one photo keeps the fixture small
            expected[f"{photo}.labels"] = labels
        expected[f"{photo}.label_counts"] = np.bincount(labels.ravel(), minlength=19).astype(np.int64)
        print(photo, "labels present:", np.unique(labels).tolist())
        if photo == "astronaut":
            # The official region selection and region images on this label map.
            masks = masks_for_unique_values(labels)
            names = {1: "Face", 4: "Left_Eye", 5: "Right_Eye", 7: "Left_Ear", 8: "Right_Ear", 10: "Nose",
                     12: "Upper_Lip", 13: "Lower_Lip"}
            kept, seen = [], set()
            for v in sorted(masks):
                if v not in names:
                    continue
                pair = names[v].split("_")[-1] if "_" in names[v] else names[v]
                if pair in seen:
                    continue
                seen.add(pair)
                kept.append(v)
            full = Image.open(DATA / "images" / file).convert("RGB")
            processor = CLIPImageProcessor()
            expected[f"{photo}.region_labels"] = np.array(kept, np.int64)
            for k, v in enumerate(kept):
                m = Image.fromarray(masks[v])
                region = Image.composite(full, Image.new("RGB", full.size, (0, 0, 0)), m.resize(full.size))
                pv = processor(images=region, return_tensors="np").pixel_values[0]
                expected[f"{photo}.region{k}.mask"] = np.packbits(masks[v] > 0)
                expected[f"{photo}.region{k}.pixel_sum"] = pv.astype(np.float64).sum(axis=(1, 2))
                expected[f"{photo}.region{k}.pixel_patch"] = pv[:, 96:128, 96:128].copy()
            print(photo, "regions kept:", [names[v] for v in kept])
    save_file(expected, str(out / "expected.safetensors"))

    # The real-size network's keys and shapes (metadata only): what face_parsing.pth holds.
    real = facexlib_parsing(scale=False)["bisenet"].BiSeNet(num_class=19)
    keys = {k: list(v.shape) for k, v in real.state_dict().items()}
    (ROOT / "fixtures" / "bisenet_keys.json").write_text(json.dumps(keys, indent=0))

    regions = ROOT / "fixtures" / "regions"
    regions.mkdir(parents=True, exist_ok=True)
    for photo, file in PHOTOS:
        img = Image.open(DATA / "images" / file).convert("RGB").resize((128, 128), Image.BILINEAR)
        grey = np.asarray(img.convert("L")).astype(np.int32)
        labels = (grey * 19 // 256).astype(np.uint8)
        masks = masks_for_unique_values(labels)
        values = sorted(masks)
        mask = Image.fromarray(masks[values[len(values) // 2]]).resize((64, 64), Image.NEAREST)
        composite = Image.composite(img, Image.new("RGB", img.size, (0, 0, 0)), mask.resize(img.size))
        assert 0 in masks, "the quantised map has background"
        save_file({
            "labels": labels,
            "without_background": np.packbits((255 - masks[0]) > 0),
            "values": np.array(values, np.int64),
            "filled": np.stack([np.packbits(masks[v] > 0) for v in values]),
            "composite_mask": np.asarray(mask),
            "composite": np.asarray(composite),
        }, str(regions / f"{photo}.safetensors"))


if __name__ == "__main__":
    main()
