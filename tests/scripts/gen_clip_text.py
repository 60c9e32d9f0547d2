#!/usr/bin/env python3
"""Parity fixtures for the CLIP tokenizer and text encoder.

Builds tiny random-weight CLIP text encoders with transformers, saves them in the diffusers
pipeline layout (model_index.json, tokenizer/, text_encoder/) under tests/fixtures/clip_tiny_*,
runs them on a few prompts, and saves the reference outputs as safetensors. Also tokenizes 200+
varied prompts with the real CLIP vocabulary (fetched by tests/scripts/fetch_real_data.sh) and
stores the ids as JSON.

Pinned reference environment (the official ConsistentID versions; no `ftfy`, so transformers'
slow CLIPTokenizer takes its BasicTokenizer path, as in the official environment):

    python3.11 -m venv venv && venv/bin/pip install torch==2.0.0 transformers==4.31.0 \
        diffusers==0.23.0 safetensors==0.4.0 numpy==1.24.3 huggingface-hub==0.20.3
    bash tests/scripts/fetch_real_data.sh
    venv/bin/python tests/scripts/gen_clip_text.py

Re-running overwrites the fixtures with identical content (fixed seeds).
"""

import gzip
import json
import os
import shutil
import sys
from pathlib import Path

import torch
import transformers
from safetensors.torch import save_file
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

PINNED = {"torch": "2.0.0", "transformers": "4.31.0"}
ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"
sys.path.insert(0, str(Path(__file__).resolve().parent))
from prompts import PROMPTS, ENCODER_PROMPTS  # noqa: E402


def check_versions():
    got = {"torch": torch.__version__.split("+")[0], "transformers": transformers.__version__}
    if got != PINNED:
        sys.exit(f"pinned versions {PINNED} required, found {got}")
    try:
        import ftfy  # noqa: F401

        sys.exit("uninstall ftfy: the official environment tokenizes without it")
    except ImportError:
        pass


def real_data_dir():
    default = Path.home() / ".cache" / "consistentid" / "real-data"
    return Path(os.environ.get("CONSISTENTID_REAL_DATA", default))


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def write_tokenizer(dst: Path, merges, pad="<|endoftext|>"):
    """A transformers CLIP tokenizer folder whose vocabulary is built from `merges`, the way
    open_clip and openai/clip-vit-large-patch14 build theirs."""
    dst.mkdir(parents=True, exist_ok=True)
    chars = list(bytes_to_unicode().values())
    tokens = chars + [c + "</w>" for c in chars] + ["".join(m) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {t: i for i, t in enumerate(tokens)}
    (dst / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    (dst / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n")
    special = {
        "bos_token": {"content": "<|startoftext|>", "lstrip": False, "normalized": True, "rstrip": False, "single_word": False},
        "eos_token": {"content": "<|endoftext|>", "lstrip": False, "normalized": True, "rstrip": False, "single_word": False},
        "unk_token": {"content": "<|endoftext|>", "lstrip": False, "normalized": True, "rstrip": False, "single_word": False},
        "pad_token": pad,
    }
    (dst / "special_tokens_map.json").write_text(json.dumps(special, indent=2))
    config = {"model_max_length": 77, "tokenizer_class": "CLIPTokenizer", "do_lower_case": True,
              "errors": "replace", "add_prefix_space": False}
    (dst / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
    return len(vocab)


def real_merges():
    gz = real_data_dir() / "clip" / "bpe_simple_vocab_16e6.txt.gz"
    if not gz.exists():
        sys.exit(f"{gz} missing: run tests/scripts/fetch_real_data.sh first")
    lines = gzip.open(gz).read().decode("utf-8").split("\n")
    return [tuple(l.split()) for l in lines[1 : 49152 - 256 - 2 + 1]]


def randomize(model: torch.nn.Module, gen: torch.Generator):
    """Non-trivial weights everywhere, layer norms included, so key mapping errors show."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "layer_norm" in name and name.endswith("weight"):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=gen))
            elif "embedding" in name:
                p.copy_(0.5 * torch.randn(p.shape, generator=gen))
            else:
                fan_in = p.shape[-1] if p.dim() > 1 else 16
                p.copy_(torch.randn(p.shape, generator=gen) / fan_in**0.5)


def make_case(name, merges, config_kw, storage_dtype, variant, pad, seed):
    out = FIXTURES / name
    if out.exists():
        shutil.rmtree(out)
    vocab_size = write_tokenizer(out / "tokenizer", merges, pad=pad)
    config = CLIPTextConfig(vocab_size=vocab_size, max_position_embeddings=77, **config_kw)
    gen = torch.Generator().manual_seed(seed)
    model = CLIPTextModel(config).eval()
    randomize(model, gen)
    # Round the weights to the storage dtype, so the reference sees what the file holds.
    state = {k: v.to(storage_dtype).contiguous() for k, v in model.state_dict().items() if "position_ids" not in k}
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
    (out / "text_encoder").mkdir(parents=True)
    model.config.save_pretrained(out / "text_encoder")
    fname = "model.safetensors" if variant is None else f"model.{variant}.safetensors"
    save_file(state, out / "text_encoder" / fname, metadata={"format": "pt"})
    (out / "model_index.json").write_text(json.dumps({
        "_class_name": "StableDiffusionPipeline", "_diffusers_version": "0.23.0",
        "tokenizer": ["transformers", "CLIPTokenizer"], "text_encoder": ["transformers", "CLIPTextModel"],
    }, indent=2))

    tok = CLIPTokenizer.from_pretrained(out / "tokenizer")
    tensors, cases = {}, []
    for i, prompt in enumerate(ENCODER_PROMPTS):
        ids = tok(prompt, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
        with torch.no_grad():
            res = model(ids, output_hidden_states=True)
        tensors[f"{i}.input_ids"] = ids.to(torch.int64)
        tensors[f"{i}.last_hidden_state"] = res.last_hidden_state.float().contiguous()
        tensors[f"{i}.penultimate_hidden_state"] = res.hidden_states[-2].float().contiguous()
        cases.append(prompt)
    save_file(tensors, out / "expected.safetensors")
    (out / "prompts.json").write_text(json.dumps(cases, ensure_ascii=False, indent=1))


def tokenizer_ids(merges):
    tmp = FIXTURES / "_tmp_real_tokenizer"
    write_tokenizer(tmp, merges)
    tok = CLIPTokenizer.from_pretrained(tmp)
    tok.add_tokens(["<|image|>", "<|facial|>"], special_tokens=True)
    assert tok.convert_tokens_to_ids("<|facial|>") == 49409
    rows = []
    for p in PROMPTS:
        rows.append({
            "prompt": p,
            "ids": tok.encode(p),
            "padded": tok(p, padding="max_length", max_length=77, truncation=True).input_ids,
        })
    shutil.rmtree(tmp)
    (FIXTURES / "clip_tokenizer_real_ids.json").write_text(json.dumps(rows, ensure_ascii=False, indent=0))
    return len(rows)


def main():
    check_versions()
    merges = real_merges()
    assert len(merges) == 48894, len(merges)
    tiny = merges[:600]
    make_case("clip_tiny_a", tiny, dict(hidden_size=40, intermediate_size=56, num_hidden_layers=3,
              num_attention_heads=5, hidden_act="quick_gelu", layer_norm_eps=1e-5),
              torch.float32, None, "<|endoftext|>", 1)
    make_case("clip_tiny_b", tiny, dict(hidden_size=48, intermediate_size=72, num_hidden_layers=2,
              num_attention_heads=3, hidden_act="gelu", layer_norm_eps=1e-6),
              torch.float16, "fp16", "!", 2)
    make_case("clip_tiny_c", tiny, dict(hidden_size=24, intermediate_size=40, num_hidden_layers=4,
              num_attention_heads=2, hidden_act="quick_gelu", layer_norm_eps=1e-5),
              torch.bfloat16, None, "<|endoftext|>", 3)
    n = tokenizer_ids(merges)
    print(f"wrote 3 text-encoder fixtures and {n} tokenizer prompts")


if __name__ == "__main__":
    main()
