#!/usr/bin/env python3
"""Prints `consistentid bench` and bench/torch_pipeline.py results side by side as a Markdown
table (ours / PyTorch ratios; below 1.0 means we are faster or smaller).

    bench/compare.py OURS.json TORCH.json
"""

import json
import sys


def rows(ours, torch_):
    def portrait(r, k):
        return r["portraits"][min(k, len(r["portraits"]) - 1)]

    yield "load the folder", ours["load_s"], torch_["load_s"], "s"
    for k, name in ((0, "cold"), (1, "warm")):
        yield f"whole portrait ({name})", portrait(ours, k)["total_s"], portrait(torch_, k)["total_s"], "s"
    warm_o, warm_t = portrait(ours, 1), portrait(torch_, 1)
    for phase in ("analyse", "parse", "encode", "denoise", "decode"):
        yield f"  {phase} (warm)", warm_o["phases_s"].get(phase), warm_t["phases_s"].get(phase), "s"
    med = lambda xs: sorted(xs)[len(xs) // 2] if xs else None
    yield "  UNet step, median (warm)", med(warm_o["steps_s"]), med(warm_t["steps_s"]), "s"
    for key, label in (("text_encoder_pair", "CLIP-L text, 2×77"), ("clip_vision_batch1", "CLIP ViT-H, 1 image"),
                       ("clip_vision_batch5", "CLIP ViT-H, 5 images"), ("bisenet_512", "BiSeNet 512²"),
                       ("vae_decode", "VAE decode")):
        yield f"  {label}", ours["components_s"].get(key), torch_["components_s"].get(key), "s"
    yield "RSS after load", ours["rss_after_load_mb"], torch_["rss_after_load_mb"], "MB"
    yield "peak RSS", ours["peak_rss_mb"], torch_["peak_rss_mb"], "MB"


def fmt(v, unit):
    if v is None:
        return "–"
    return f"{v:.0f} MB" if unit == "MB" else f"{v:.2f} s"


def main():
    ours, torch_ = (json.load(open(p)) for p in sys.argv[1:3])
    s = ours["settings"]
    print(f"{s['width']}×{s['height']}, {s['steps']} steps, merge step {s['merge_step']}, {s['dtype']}, "
          f"ours on {ours['backend']}; {ours['machine'].get('cpu')}, {ours['machine'].get('threads')} threads\n")
    print("| | PyTorch (official pipeline) | ours | ours / PyTorch |")
    print("|---|---|---|---|")
    for label, o, t, unit in rows(ours, torch_):
        ratio = f"{o / t:.2f}×" if o is not None and t else "–"
        print(f"| {label} | {fmt(t, unit)} | {fmt(o, unit)} | {ratio} |")


if __name__ == "__main__":
    main()
