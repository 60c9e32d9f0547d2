#!/usr/bin/env python3
"""Checkpoints as today's transformers (5.x) writes them, next to the pinned 4.31 fixtures.

transformers 5 saves a `CLIPTextModel` it built without the `text_model.` prefix
(`embeddings.token_embedding.weight`, `encoder.layers.0...`, `final_layer_norm.*`); a
`CLIPVisionModelWithProjection` keeps `vision_model.` / `visual_projection.`. This rebuilds the
tiny models of clip_tiny_a (text) and clip_vision_tiny (vision) in transformers 5 with the same
weights, saves them with `save_pretrained` under tests/fixtures/transformers5/, and records
transformers 5's outputs:
  text:   `{i}.input_ids` (clip_tiny_a's), `{i}.last_hidden_state`, `{i}.penultimate_hidden_state`
  vision: `pixel_values` [1,3,224,224], `penultimate_hidden_state`, `image_embeds`

Environment (a current release; the other scripts pin 4.31):

    python3.11 -m venv venv5 && venv5/bin/pip install torch==2.15.0 transformers==5.24.0 safetensors==0.8.0
    venv5/bin/python tests/scripts/gen_transformers5.py
"""

import shutil
from pathlib import Path

import torch
import transformers
from safetensors.torch import load_file, save_file
from transformers import (CLIPTextConfig, CLIPTextModel, CLIPVisionConfig,
                          CLIPVisionModelWithProjection)

assert transformers.__version__ == "5.24.0", transformers.__version__
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
OUT = FIXTURES / "transformers5"


def rebuild(cls, config_cls, src: Path, dst: Path):
    """The model built fresh by transformers 5 (its own key layout) with src's weights."""
    loaded = cls.from_pretrained(src)
    fresh = cls(config_cls.from_pretrained(src)).eval()
    fresh.load_state_dict(loaded.state_dict())
    fresh.save_pretrained(dst)
    return fresh


def main():
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    text = rebuild(CLIPTextModel, CLIPTextConfig, FIXTURES / "clip_tiny_a/text_encoder",
                   OUT / "text_encoder")
    old = load_file(FIXTURES / "clip_tiny_a/expected.safetensors")
    out = {}
    i = 0
    while f"{i}.input_ids" in old:
        ids = old[f"{i}.input_ids"]
        with torch.no_grad():
            r = text(ids, output_hidden_states=True)
        out[f"{i}.input_ids"] = ids
        out[f"{i}.last_hidden_state"] = r.last_hidden_state.contiguous()
        out[f"{i}.penultimate_hidden_state"] = r.hidden_states[-2].contiguous()
        i += 1
    save_file(out, OUT / "text_expected.safetensors")

    vision = rebuild(CLIPVisionModelWithProjection, CLIPVisionConfig, FIXTURES / "clip_vision_tiny",
                     OUT / "image_encoder")
    size = vision.config.image_size
    pixels = torch.randn((1, 3, size, size), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        r = vision(pixels, output_hidden_states=True)
    save_file({"pixel_values": pixels, "penultimate_hidden_state": r.hidden_states[-2].contiguous(),
               "image_embeds": r.image_embeds.contiguous()}, OUT / "vision_expected.safetensors")
    for part in ("text_encoder", "image_encoder"):
        keys = sorted(load_file(OUT / part / "model.safetensors"))
        print(part, len(keys), keys[0], keys[-1])


if __name__ == "__main__":
    main()
