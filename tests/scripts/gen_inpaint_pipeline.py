#!/usr/bin/env python3
"""The OFFICIAL ConsistentID inpainting pipeline (`pipelines/StableDIffusionInpaint_ConsistentID.py`,
JackAILab/ConsistentID e234008, imported from OFFICIAL_DIR, nothing copied) run on a tiny random
replica, for the Rust parity test (tests/tests/parity_inpaint.rs).

Model: tests/fixtures/sd_tiny (tokenizer, text encoder, UNet, VAE, scheduler config) with
consistentid_pipeline/image_encoder (CLIP vision, width 24) and bisenet_tiny/face_parsing.pth, plus
what this script writes to tests/fixtures/inpaint_pipeline/:
  ConsistentID-v1.bin  the official ProjPlusModel, FacialEncoder and UNet processors (rank 4) at
                       tiny widths, random, in the released structure (image_proj bf16);
  unet9/               a 9-channel (inpainting) UNet: sd_tiny's config with in_channels 9, random;
  mask.png             the mask (an ellipse over the face, 512²);
  expected.safetensors per case: the injected draws (`<case>.noise`, `<case>.image_noise`,
                       `<case>.masked_noise` where the pipeline draws them), the latents it prepared
                       (`<case>.image_latents`, `<case>.mask`, `<case>.masked_image_latents`) and the
                       image (`<case>.image`, [1, 3, 64, 48] in [0, 1]); `id_embedding`.
Patches, all outside the pipeline's `__call__`:
  P1  `insightface` is imported by the pipeline modules but never called here: a stub module;
  P2  the identity comes injected (`get_prepare_faceid`), as in gen_consistentid_pipeline.py;
  P3  `load_ConsistentID_model`'s assignments are made here without insightface, the hub and the
      CUDA BiSeNet: the tiny facexlib BiSeNet of bisenet_tiny runs the official
      `parsing_face_mask` on the CPU (`Tensor.cuda` is the identity);
  P4  tiny widths: FacePerceiverResampler depth 1 and 1 head (the official 32 // 64 is 0),
      AttentionMLP dim 32, depth 2, 1 head;
  P5  diffusers' `randn_tensor` in the inpainting pipelines and in the VAE's sampling returns
      draws from a seeded generator, recorded for the Rust side;
  P6  the ControlNet pipeline calls `check_inputs(prompt, image, mask_image, height, width,
      callback_steps, output_type, …)`, a later diffusers' signature: on its pinned diffusers 0.23
      it stops with a TypeError (an official defect). The call is passed on to 0.23's own
      `check_inputs` without the two arguments it does not take.
Cases `control_*` run the OFFICIAL `StableDiffusionControlNetInpaintConsistentIDPipeline` with
controlnet_tiny/controlnet and the Canny edges of the face photo (cv2.Canny(·, 100, 200), as the
official demos). Case `img2img` is diffusers' own StableDiffusionImg2ImgPipeline on plain sd_tiny,
strength 0.6.
Environment: torch 2.0.0, diffusers 0.23.0, transformers 4.31.0, einops 0.7.0, opencv-python-headless
4.8.1.78, safetensors 0.4.1; the real photo astronaut.png (CONSISTENTID_REAL_DATA).

    OFFICIAL_DIR=/path/to/ConsistentID venv/bin/python tests/scripts/gen_inpaint_pipeline.py
"""

import functools
import os
import sys
import types
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw
from safetensors.torch import save_file
from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from gen_bisenet import facexlib_parsing  # noqa: E402
from gen_consistentid_pipeline import DATA, FIX, load_sd_tiny  # noqa: E402
from gen_unet import randomize  # noqa: E402

OFFICIAL = Path(os.environ["OFFICIAL_DIR"])
OUT = FIX / "inpaint_pipeline"
PROMPT = "a photo of a person as an astronaut, highly detailed"
NEGATIVE = "blurry, lowres"
STEPS, MERGE, WIDTH, HEIGHT = 5, 1, 48, 64
# The identity width (ArcFace gives 512; the checkpoint decides, and 32 keeps the fixture small).
ID_DIM = 32

# P1
for name in ("insightface", "insightface.app"):
    sys.modules[name] = types.ModuleType(name)
sys.modules["insightface.app"].FaceAnalysis = None
sys.path.insert(0, str(OFFICIAL))
import attention  # noqa: E402
import functions  # noqa: E402

# P4
_resampler = functions.FacePerceiverResampler
functions.FacePerceiverResampler = lambda **kw: _resampler(**{**kw, "depth": 1, "heads": 1})
attention.AttentionMLP = functools.partial(functions.AttentionMLP, dim=32, depth=2, heads=1)

import diffusers.models.vae as vae_module  # noqa: E402
import diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion_img2img as img2img_module  # noqa: E402
import diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion_inpaint as inpaint_module  # noqa: E402
from diffusers import DDIMScheduler, StableDiffusionImg2ImgPipeline, UNet2DConditionModel  # noqa: E402
import diffusers.pipelines.controlnet.pipeline_controlnet_inpaint as control_module  # noqa: E402
from diffusers import ControlNetModel  # noqa: E402
from pipelines.StableDIffusionControlNetInpaint_ConsistentID import StableDiffusionControlNetInpaintConsistentIDPipeline  # noqa: E402
from pipelines.StableDIffusionInpaint_ConsistentID import StableDiffusionInpaintConsistentIDPipeline  # noqa: E402


class Draws:
    """P5: what the pipeline draws, from a seeded generator, by caller."""

    def __init__(self, seed):
        self.gen = torch.Generator().manual_seed(seed)
        self.vae, self.pipeline = [], []

    def make(self, log):
        def randn_tensor(shape, generator=None, device=None, dtype=None, layout=None):
            t = torch.randn(shape, generator=self.gen)
            log.append(t)
            return t.to(dtype=dtype or torch.float32)
        return randn_tensor


def tiny_bisenet():
    net = facexlib_parsing()["bisenet"].BiSeNet(num_class=19).eval()
    net.load_state_dict(torch.load(FIX / "bisenet_tiny" / "face_parsing.pth"))
    return net


def make_pipe(unet, checkpoint, vision, scheduler, models, controlnet=None):
    tok, text_encoder, _, vae, _ = models
    parts = dict(vae=vae, text_encoder=text_encoder, tokenizer=tok, unet=unet, scheduler=scheduler,
                 safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    if controlnet is None:
        pipe = StableDiffusionInpaintConsistentIDPipeline(**parts)
    else:
        pipe = StableDiffusionControlNetInpaintConsistentIDPipeline(controlnet=controlnet, **parts)
        check = pipe.check_inputs  # P6

        def later_signature(prompt, image, mask_image, height, width, callback_steps, output_type, *rest, **kw):
            return check(prompt, image, height, width, callback_steps, *rest, **kw)

        pipe.check_inputs = later_signature
    # P3: load_ConsistentID_model (BaseConsistentID.py:29-140), minus insightface, hub, CUDA.
    pipe.lora_rank, pipe.torch_dtype, pipe.num_tokens = 4, torch.float32, 4
    pipe.set_ip_adapter()
    pipe.image_encoder = vision
    pipe.clip_image_processor = CLIPImageProcessor()
    pipe.id_image_processor = CLIPImageProcessor()
    pipe.crop_size = 512
    pipe.bise_net = tiny_bisenet()
    pipe.part_colors = [[255, 0, 0]] * 24  # only colours the unused visualisation
    pipe.image_proj_model = functions.ProjPlusModel(
        cross_attention_dim=unet.config.cross_attention_dim, id_embeddings_dim=ID_DIM,
        clip_embeddings_dim=vision.config.hidden_size, num_tokens=4)
    pipe.FacialEncoder = attention.FacialEncoder(
        None, embedding_dim=vision.config.hidden_size, output_dim=unet.config.cross_attention_dim,
        embed_dim=unet.config.cross_attention_dim)
    pipe.trigger_word_ID, pipe.trigger_word_facial = "<|image|>", "<|facial|>"
    pipe.FacialEncoder.load_state_dict(checkpoint["FacialEncoder"], strict=True)
    pipe.image_proj_model.load_state_dict(checkpoint["image_proj"], strict=True)
    torch.nn.ModuleList(pipe.unet.attn_processors.values()).load_state_dict(checkpoint["adapter_modules"], strict=True)
    pipe.tokenizer.add_tokens(["<|image|>"], special_tokens=True)
    pipe.tokenizer.add_tokens(["<|facial|>"], special_tokens=True)
    return pipe


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(9)
    torch.manual_seed(9)
    models = load_sd_tiny()
    tok, text_encoder, unet4, vae, euler = models
    vision = CLIPVisionModelWithProjection.from_pretrained(FIX / "consistentid_pipeline" / "image_encoder").eval()
    unet9 = UNet2DConditionModel.from_config({**unet4.config, "in_channels": 9}).eval()
    randomize(unet9, gen)
    unet9.save_pretrained(OUT / "unet9", safe_serialization=True)

    # The checkpoint: the official modules at tiny widths, random; processors made by the
    # official set_ip_adapter on sd_tiny's UNet (the 9-channel one has the same attention).
    proj = functions.ProjPlusModel(cross_attention_dim=unet4.config.cross_attention_dim, id_embeddings_dim=ID_DIM,
                                   clip_embeddings_dim=vision.config.hidden_size, num_tokens=4)
    enc = attention.FacialEncoder(None, embedding_dim=vision.config.hidden_size,
                                  output_dim=unet4.config.cross_attention_dim, embed_dim=unet4.config.cross_attention_dim)
    holder = StableDiffusionInpaintConsistentIDPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tok, unet=UNet2DConditionModel.from_config(unet4.config),
        scheduler=euler, safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    holder.lora_rank, holder.torch_dtype, holder.num_tokens = 4, torch.float32, 4
    holder.set_ip_adapter()
    adapters = torch.nn.ModuleList(holder.unet.attn_processors.values())
    for m in (proj, enc, adapters):
        randomize(m, gen)
    checkpoint = {"image_proj": {k: v.to(torch.bfloat16) for k, v in proj.state_dict().items()},
                  "FacialEncoder": enc.state_dict(), "adapter_modules": adapters.state_dict()}
    torch.save(checkpoint, OUT / "ConsistentID-v1.bin")

    face = Image.open(DATA / "images" / "astronaut.png").convert("RGB")
    mask = Image.new("RGB", face.size, (0, 0, 0))
    ImageDraw.Draw(mask).ellipse((150, 60, 360, 300), fill=(255, 255, 255))
    mask.save(OUT / "mask.png")
    id_embedding = F.normalize(torch.randn(1, ID_DIM, generator=gen), dim=-1)

    torch.Tensor.cuda = lambda self, *a, **k: self  # P3
    out = {"id_embedding": id_embedding}
    ddim = DDIMScheduler.from_config(DDIMScheduler.load_config(FIX / "sd_tiny" / "scheduler"))
    controlnet = ControlNetModel.from_pretrained(FIX / "controlnet_tiny" / "controlnet").eval()
    edges = cv2.Canny(np.array(face), 100, 200)[:, :, None]  # the official demos' make_canny_condition
    canny = Image.fromarray(np.concatenate([edges] * 3, axis=2))
    # (name, UNet, scheduler, strength, ControlNet settings: scale, start, end)
    cases = [("unet4_s1", unet4, euler, 1.0, None), ("unet4_s06", unet4, euler, 0.6, None),
             ("unet9_s1", unet9, euler, 1.0, None), ("unet9_s06", unet9, euler, 0.6, None),
             ("unet4_s06_ddim", unet4, ddim, 0.6, None),
             ("control_unet4_s1", unet4, euler, 1.0, (0.5, 0.0, 0.6)),
             ("control_unet9_s06", unet9, euler, 0.6, (0.8, 0.2, 1.0))]
    for seed, (name, unet, scheduler, strength, control) in enumerate(cases):
        pipe = make_pipe(unet, checkpoint, vision, scheduler, models, controlnet if control else None)
        pipe.get_prepare_faceid = lambda face_image: id_embedding  # P2
        draws = Draws(100 + seed)
        vae_module.randn_tensor = draws.make(draws.vae)  # P5
        inpaint_module.randn_tensor = draws.make(draws.pipeline)
        control_module.randn_tensor = draws.make(draws.pipeline)
        seen = {}
        prepare_latents, prepare_mask_latents = pipe.prepare_latents, pipe.prepare_mask_latents

        def record_latents(*a, **k):
            r = prepare_latents(*a, **k)
            if len(r) == 3:
                seen["image_latents"] = r[2]
            return r

        def record_mask(*a, **k):
            m, masked = prepare_mask_latents(*a, **k)
            seen["mask"], seen["masked_image_latents"] = m[:1], masked[:1]
            return m, masked

        pipe.prepare_latents, pipe.prepare_mask_latents = record_latents, record_mask
        extra = {}
        if control:
            extra = dict(control_image=canny, controlnet_conditioning_scale=control[0],
                         control_guidance_start=control[1], control_guidance_end=control[2])
        with torch.no_grad():
            image = pipe(prompt=PROMPT, negative_prompt=NEGATIVE, image=face, mask_image=mask, input_id_images=face,
                         height=HEIGHT, width=WIDTH, strength=strength, num_inference_steps=STEPS,
                         start_merge_step=MERGE, output_type="pt", **extra).images
        # The VAE draws in order: the photo's (when drawn), then the masked photo's.
        image_drawn = unet.config.in_channels == 4 or strength != 1.0
        assert len(draws.vae) == 1 + image_drawn and len(draws.pipeline) == 1, (len(draws.vae), len(draws.pipeline))
        out[f"{name}.noise"] = draws.pipeline[0]
        if image_drawn:
            out[f"{name}.image_noise"] = draws.vae[0]
        out[f"{name}.masked_noise"] = draws.vae[-1]
        for k, v in seen.items():
            out[f"{name}.{k}"] = v
        out[f"{name}.image"] = image
        print(name, image.shape, float(image.mean()))
    # Image-to-image: diffusers' own pipeline on plain sd_tiny (no ConsistentID), the photo
    # given at the output size (its preprocess keeps the size of what it is given).
    tok, text_encoder, plain_unet, vae, euler = load_sd_tiny()
    img2img = StableDiffusionImg2ImgPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tok, unet=plain_unet,
                                             scheduler=euler, safety_checker=None, feature_extractor=None,
                                             requires_safety_checker=False)
    draws = Draws(200)
    vae_module.randn_tensor = draws.make(draws.vae)
    img2img_module.randn_tensor = draws.make(draws.pipeline)
    with torch.no_grad():
        image = img2img(prompt=PROMPT, negative_prompt=NEGATIVE, image=face.resize((WIDTH, HEIGHT), Image.LANCZOS),
                        strength=0.6, num_inference_steps=STEPS, output_type="pt").images
    out.update({"img2img.image_noise": draws.vae[0], "img2img.noise": draws.pipeline[0], "img2img.image": image})
    save_file({k: v.contiguous().float() for k, v in out.items()}, str(OUT / "expected.safetensors"),
              metadata={"prompt": PROMPT, "negative_prompt": NEGATIVE, "steps": str(STEPS), "merge_step": str(MERGE)})


if __name__ == "__main__":
    main()
