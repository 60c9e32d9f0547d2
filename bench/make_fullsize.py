#!/usr/bin/env python3
"""A full-size random-weight ConsistentID folder for benchmarks: the real architectures, shapes and
file formats of the official release, made with the reference libraries (no download).

    bench/make_fullsize.py OUT_DIR

OUT_DIR gets (as `consistentid fetch` lays out the real folder):
  model_index.json, scheduler/, tokenizer/ (the real CLIP BPE vocabulary from the test data),
  text_encoder/  CLIP ViT-L/14 text tower (12 layers, 768), fp16 variant files,
  unet/          SD1.5 UNet (320/640/1280/1280, cross 768), fp16 variant files,
  vae/           SD1.5 VAE (128/256/512/512), fp16 variant files,
  image_encoder/ CLIP ViT-H/14 vision tower (32 layers, 1280, MLP 5120), fp16,
  ConsistentID-v1.bin  torch pickle {image_proj (bf16), FacialEncoder, adapter_modules (rank 128)},
  face_parsing.pth     facexlib 0.3.0's BiSeNet (ResNet-18 context path, 19 classes),
  buffalo_l/w600k_r50.onnx  insightface IResNet-50 (3-4-14-3, 64..512, 512 numbers),
  buffalo_l/det_10g.onnx    an SCRFD-shaped detector (strides 8/16/32, 2 anchors; NOT det_10g's
                            exact backbone: its timings stand in for the detector's order of size).
Weights are random (timing does not depend on them); every image it generates is noise.

Environment: the fixture venv (torch 2.0.0, diffusers 0.23.0, transformers 4.31.0, onnx 1.14.1,
safetensors 0.4.0, opencv-python for gen_bisenet's helpers); about 5 GB of disk, 3-6 minutes.
"""

import json
import shutil
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "scripts"))
from gen_bisenet import DATA, facexlib_parsing  # noqa: E402
from gen_consistentid_modules import FacialEncoder, ProjPlusModel  # noqa: E402
from gen_onnx import IResNet, ScrfdReplica, export, randomize as randomize_onnx  # noqa: E402
from gen_unet_adapters import install_processors  # noqa: E402
from diffusers import AutoencoderKL, UNet2DConditionModel  # noqa: E402
from transformers import CLIPTextConfig, CLIPTextModel, CLIPVisionConfig, CLIPVisionModelWithProjection  # noqa: E402

TINY = HERE.parent / "tests" / "fixtures" / "sd_tiny"


def main(out: Path):
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    torch.manual_seed(0)
    shutil.copy(TINY / "model_index.json", out / "model_index.json")
    shutil.copytree(TINY / "scheduler", out / "scheduler")
    shutil.copytree(DATA / "clip" / "tokenizer", out / "tokenizer")

    with torch.no_grad():
        text = CLIPTextModel(CLIPTextConfig(vocab_size=49408, hidden_size=768, intermediate_size=3072,
                                            num_hidden_layers=12, num_attention_heads=12,
                                            max_position_embeddings=77, hidden_act="quick_gelu",
                                            projection_dim=768)).eval()
        text.half().save_pretrained(out / "text_encoder", variant="fp16", safe_serialization=True)
        del text
        print("text_encoder", flush=True)

        # diffusers' defaults are SD1.5's UNet.
        unet = UNet2DConditionModel(cross_attention_dim=768, attention_head_dim=8).eval()
        unet.half().save_pretrained(out / "unet", variant="fp16", safe_serialization=True)
        adapters = install_processors(unet, rank=128, num_tokens=4, scale=1.0)
        for p in adapters.parameters():  # LoRA `up` starts at zero: give it values
            p.normal_(0.0, 0.01)
        del unet
        print("unet", flush=True)

        vae = AutoencoderKL(block_out_channels=[128, 256, 512, 512], layers_per_block=2, latent_channels=4,
                            sample_size=512,
                            down_block_types=["DownEncoderBlock2D"] * 4,
                            up_block_types=["UpDecoderBlock2D"] * 4).eval()
        vae.half().save_pretrained(out / "vae", variant="fp16", safe_serialization=True)
        del vae
        print("vae", flush=True)

        vision = CLIPVisionModelWithProjection(CLIPVisionConfig(
            hidden_size=1280, intermediate_size=5120, num_hidden_layers=32, num_attention_heads=16,
            image_size=224, patch_size=14, projection_dim=1024, hidden_act="gelu")).eval()
        vision.half().save_pretrained(out / "image_encoder", safe_serialization=True)
        del vision
        print("image_encoder", flush=True)

        proj = ProjPlusModel(768, 512, 1280, 4, depth=4, heads=12, hidden=1024)
        enc = FacialEncoder(1280, 768, 1024, depth=8, heads=16)
        torch.save({"image_proj": {k: v.to(torch.bfloat16) for k, v in proj.state_dict().items()},
                    "FacialEncoder": enc.state_dict(), "adapter_modules": adapters.state_dict()},
                   out / "ConsistentID-v1.bin")
        print("ConsistentID-v1.bin", flush=True)

        bisenet = facexlib_parsing(scale=False)["bisenet"].BiSeNet(num_class=19).eval()
        torch.save(bisenet.state_dict(), out / "face_parsing.pth")
        print("face_parsing.pth", flush=True)

    (out / "buffalo_l").mkdir()
    r50 = IResNet([3, 4, 14, 3], [64, 128, 256, 512], 512)
    randomize_onnx(r50, 7)
    x = torch.randn(1, 3, 112, 112)
    (out / "buffalo_l" / "w600k_r50.onnx").write_bytes(
        export(r50, "w600k_r50", x, {"input.1": {0: "None"}}, "input.1", ["fc1"]))
    det = ScrfdReplica(c=64)
    randomize_onnx(det, 11)
    names = [f"{k}_{s}" for k in ("score", "bbox", "kps") for s in (8, 16, 32)]
    (out / "buffalo_l" / "det_10g.onnx").write_bytes(
        export(det, "det_10g", torch.randn(1, 3, 640, 640), {"input.1": {2: "?", 3: "?"}}, "input.1", names))
    print("buffalo_l", flush=True)
    (out / "bench-folder.json").write_text(json.dumps({"random_weights": True, "made_by": "bench/make_fullsize.py"}))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]))
