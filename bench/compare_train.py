#!/usr/bin/env python3
"""The training-step table for bench/RESULTS.md from `consistentid train`'s metrics.csv (and the
peak memory scripts/bench-train.sh measured) and bench/torch_train_step.py's JSON. The first step
of each side (JIT, autotune, allocator warm-up) is reported apart from the mean of the others.

    bench/compare_train.py OURS_METRICS_CSV OURS_PEAK_BYTES TORCH_JSON [TORCH_JSON…]
"""

import csv
import json
import os
import sys

rows = list(csv.DictReader(open(sys.argv[1])))
ours = [float(r["seconds"]) for r in rows]
ours_peak = int(sys.argv[2])
torches = [json.load(open(p)) for p in sys.argv[3:]]


def split(times):
    rest = times[1:] or times
    return times[0], sum(rest) / len(rest)


o_first, o_mean = split(ours)
head = f"| | ours ({os.environ.get('PRECISION', 'bf16')}) | " + " | ".join(f"PyTorch ({t['precision']})" for t in torches) + " | " + \
    " | ".join(f"ours / PyTorch ({t['precision']})" for t in torches) + " |"
print(head)
print("|" + "---|" * (1 + 1 + 2 * len(torches)))
for name, mine, theirs in [
    ("first step", o_first, [split(t["steps_s"])[0] for t in torches]),
    ("a step (mean of the rest)", o_mean, [split(t["steps_s"])[1] for t in torches]),
    ("peak memory (GiB)", ours_peak / 2**30, [t["peak_bytes"] / 2**30 for t in torches]),
]:
    cells = [f"{mine:.3f}"] + [f"{v:.3f}" for v in theirs] + [f"{mine / v:.2f}×" for v in theirs]
    print(f"| {name} | " + " | ".join(cells) + " |")
t = torches[0]
print(f"\nbatch {t['batch']}, {t['resolution']}², {len(ours)} steps ours, {len(t['steps_s'])} PyTorch; "
      f"device {t['device']}, torch {t['torch']}")
