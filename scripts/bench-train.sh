#!/usr/bin/env bash
# One training step at full size, ours and the official PyTorch trainer's on the same machine in
# one run (issue 23), for bench/RESULTS.md:
#   OFFICIAL_DIR=…/ConsistentID bash scripts/bench-train.sh [FOLDER]
# FOLDER (default ~/.cache/consistentid/bench-fullsize) is made first when missing by
# bench/make_fullsize.py. BIN is our binary (default: built here with FEATURES, e.g. cuda);
# PRECISION (ours: bf16, the official recipe, or f32), DEVICE (default auto), BATCH (8),
# STEPS (4), SIZE (512), PYTHON (venv/bin/python: torch,
# diffusers 0.23.0, transformers, einops; on a GPU machine its own torch with diffusers carried).
# TINY=1 smoke-tests on a tiny folder (FOLDER must then hold a ConsistentID-v1.bin of tiny widths).
# Peak memory: ours from nvidia-smi's used memory (CUDA) or the process's max RSS (CPU),
# PyTorch's from torch.cuda.max_memory_allocated (CUDA) or max RSS.
# Writes target/bench/train/{ours.csv,ours.peak,torch-f32.json,torch-bf16.json} and prints the table.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-venv/bin/python}
folder=${1:-$HOME/.cache/consistentid/bench-fullsize}
out=${CARGO_TARGET_DIR:-target}/bench/train
mkdir -p "$out"
: "${OFFICIAL_DIR:?a checkout of JackAILab/ConsistentID (e234008)}"
[ -d "$folder" ] || "$PYTHON" bench/make_fullsize.py "$folder"
if [ -z "${BIN:-}" ]; then
  cargo build --locked --release -p consistentid-native ${FEATURES:+--features "$FEATURES"}
  BIN=${CARGO_TARGET_DIR:-target}/release/consistentid
fi
BATCH=${BATCH:-8} STEPS=${STEPS:-4} SIZE=${SIZE:-512}
extra=(); [ -n "${TINY:-}" ] && extra=(--tiny --rank 4)
"$PYTHON" bench/make_train_data.py "$out/data" 16 "$SIZE"
rm -rf "$out/run"
peak_file="$out/ours.peak"
if command -v nvidia-smi >/dev/null && [ "${DEVICE:-auto}" != cpu ]; then
  base=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -1)
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 200 >"$out/smi.log" &
  smi=$!
  "$BIN" --device "${DEVICE:-auto}" train --model "$folder" --dataset "$out/data/JSON_all.json" \
    --out "$out/run" --steps "$STEPS" --batch "$BATCH" --resolution "$SIZE" --save-every 1000000 \
    --precision "${PRECISION:-bf16}"
  kill "$smi"
  echo $(( ($(sort -n "$out/smi.log" | tail -1) - base) * 1048576 )) >"$peak_file"
else
  "$PYTHON" - "$BIN" "${DEVICE:-auto}" "$folder" "$out" "$STEPS" "$BATCH" "$SIZE" "$peak_file" "${PRECISION:-bf16}" <<'PY'
import resource, subprocess, sys
b, device, folder, out, steps, batch, size, peak, precision = sys.argv[1:]
subprocess.run([b, "--device", device, "train", "--model", folder, "--dataset", f"{out}/data/JSON_all.json",
                "--out", f"{out}/run", "--steps", steps, "--batch", batch, "--resolution", size,
                "--save-every", "1000000", "--precision", precision], check=True)
open(peak, "w").write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024))
PY
fi
cp "$out/run/metrics.csv" "$out/ours.csv"
for precision in f32 bf16; do
  "$PYTHON" bench/torch_train_step.py --model "$folder" --official "$OFFICIAL_DIR" --batch "$BATCH" \
    --steps "$STEPS" --resolution "$SIZE" --precision "$precision" "${extra[@]}" >"$out/torch-$precision.json"
done
PRECISION=${PRECISION:-bf16} "$PYTHON" bench/compare_train.py "$out/ours.csv" "$(cat "$peak_file")" "$out/torch-f32.json" "$out/torch-bf16.json"
