#!/usr/bin/env python3
"""Expected outputs of the ConsistentID text side on many captions, region sets and prompts.

The reference functions below re-create, from shared/spec/consistentid.md §1.2 steps 5-6 and §1.3,
the official `remove_duplicate_keywords`, `process_text_with_markers`,
`tokenize_and_mask_noun_phrases_ends`, `prepare_image_token_idx` and the prompt assembly of
`encode_prompt_with_trigger_word` (pure Python string/regex code; Python semantics such as
`str.find` returning -1 and negative slicing are part of the behaviour). Token ids come from
transformers 4.31 `CLIPTokenizer` with the real CLIP vocabulary (tests/scripts/fetch_real_data.sh)
and ConsistentID's added tokens.

Writes tests/fixtures/consistentid_prompts.json.

    venv/bin/python tests/scripts/gen_prompts.py
"""

import itertools
import json
import os
import re
from pathlib import Path

import transformers
from transformers import CLIPTokenizer

assert transformers.__version__ == "4.31.0"
ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("CONSISTENTID_REAL_DATA", Path.home() / ".cache/consistentid/real-data"))

KEYWORDS = ["face", "ears", "eyes", "nose", "mouth"]
MARKER_KEYS = ["Face", "Left_Ear", "Right_Ear", "Left_Eye", "Right_Eye", "Nose", "Upper_Lip", "Lower_Lip"]
WORD = {"Face": "face", "Left_Ear": "ears", "Right_Ear": "ears", "Left_Eye": "eyes", "Right_Eye": "eyes",
        "Nose": "nose", "Upper_Lip": "mouth", "Lower_Lip": "mouth"}


def remove_duplicate_keywords(text):
    tokens = re.findall(r"\b\w+\b|[.,;!?]", text)
    for kw in KEYWORDS:
        seen = 0
        for i, tok in enumerate(tokens):
            if tok.lower() == kw:
                seen += 1
                if seen > 1:
                    tokens[i] = ""
    return " ".join(tokens)


def process_text_with_markers(caption, keys):
    text = remove_duplicate_keywords(caption)
    features = []
    for key in MARKER_KEYS:
        if key in keys and WORD[key] not in features:
            features.append(WORD[key])
    kept = list(keys)
    for feat in reversed(features):
        new = re.sub(rf"\b{feat}\b", f"{feat} <|{feat}|>", text, count=1)
        if new == text:
            kept = [k for k in kept if WORD.get(k) != feat]
        text = new
    text = text.replace("\n", "")
    clauses = []
    for feat in features:
        marker = f"<|{feat}|>"
        start = text.find(marker)
        end = start + len(marker)
        while start > 0 and text[start - 1] not in ",.;":
            start -= 1
        while end < len(text) and text[end] not in ",.;":
            end += 1
        context = text[start:end].strip()
        if context:
            clauses.append(context + ",")
            text = text[:start] + text[end:]
    out = " ".join(clauses)
    for feat in ["face", "ears", "nose", "eyes", "mouth"]:
        out = out.replace(f"<|{feat}|>", "<|facial|>")
    return out, kept


def build(prompt, caption, keys, tok):
    facial_text, kept = process_text_with_markers(caption, keys)
    prompt_face = prompt + "Detail:" + facial_text
    if len(tok(prompt_face, max_length=77, padding="max_length", truncation=False).input_ids) != 77:
        prompt_face = "Detail:" + facial_text + " Caption:" + prompt
    if len(caption) > 330:
        prompt_face = prompt
    text_only = prompt_face.replace("<|facial|>", "").replace("<|image|>", "")
    facial_id = tok.convert_tokens_to_ids("<|facial|>")
    ids = tok.encode(prompt_face)
    mask = [False] * len(ids)
    clean = []
    for i in ids:
        if i == facial_id:
            mask[len(clean) - 1] = True
        else:
            clean.append(i)
    clean = (clean + [tok.pad_token_id] * 77)[:77]
    mask = (mask + [False] * 77)[:77]
    idx = [i for i, m in enumerate(mask) if m]
    idx_mask = [True] * len(idx)
    if len(idx) < 5:
        idx += [0] * (5 - len(idx))
        idx_mask += [False] * (5 - len(idx_mask))
    return {"prompt_face": prompt_face, "prompt_text_only": text_only, "input_ids": clean,
            "facial_positions": [i for i, m in enumerate(mask) if m], "facial_token_idx": idx,
            "facial_token_idx_mask": idx_mask, "kept": kept}


CAPTIONS = [
    "The person has one face, one nose, two eyes, two ears, and one mouth.",
    "The person has one nose, two eyes, two ears, and a mouth.",
    "The person has one face, one nose, two eyes, two ears, and a mouth.",
    "A woman with a round face, big brown eyes, a small nose and red lips; her ears are hidden.",
    "Her face is oval. The face has freckles, blue eyes and eyes shadow, a straight nose.",
    "face eyes nose mouth ears",
    "THE FACE IS PALE, Eyes are green, the nose is long, and the mouth smiles.",
    "The man has\na square face,\nnarrow eyes, big ears; thin mouth.",
    "No facial words here at all.",
    "one face. two eyes. one nose. one mouth. two ears.",
    "The mouth, the nose, the eyes, the ears and the face are visible",
    "x" * 331 + " face, eyes.",
]
REGION_SETS = [
    ["Face", "Left_Eye", "Left_Ear", "Nose", "Upper_Lip"],
    ["Face", "Right_Eye", "Nose", "Lower_Lip"],
    ["Face"],
    ["Left_Ear", "Nose"],
    ["Face", "Left_Eye", "Right_Ear", "Nose", "Upper_Lip"],
    [],
]
PROMPTS = [
    "A woman wearing a santa hat, highly detailed",
    "",
    "portrait of a person as an astronaut in a space suit, cinematic lighting, film grain, sharp focus, "
    "highly detailed skin texture, natural colours, 85mm lens, shallow depth of field, golden hour, "
    "soft shadows, professional photography, award winning, trending, masterpiece, best quality",
    "a photo of img, oil painting,",
]


def main():
    tok = CLIPTokenizer.from_pretrained(DATA / "clip" / "tokenizer")
    tok.add_tokens(["<|image|>", "<|facial|>"], special_tokens=True)
    cases = []
    for caption, keys in itertools.product(CAPTIONS, REGION_SETS):
        for prompt in PROMPTS[: 2 if keys else 1]:
            cases.append({"prompt": prompt, "caption": caption, "keys": keys, **build(prompt, caption, keys, tok)})
    # Long prompts with the full region set exercise the >77-token fallback.
    for caption in CAPTIONS[:4]:
        for prompt in PROMPTS[2:]:
            keys = REGION_SETS[0]
            cases.append({"prompt": prompt, "caption": caption, "keys": keys, **build(prompt, caption, keys, tok)})
    (ROOT / "fixtures" / "consistentid_prompts.json").write_text(json.dumps(cases, indent=0, ensure_ascii=False))
    fallback = sum(c["prompt_face"].startswith("Detail:") for c in cases)
    print(len(cases), "cases;", fallback, "use the Detail-first fallback")
    print(cases[0]["prompt_face"])


if __name__ == "__main__":
    main()
