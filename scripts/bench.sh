#!/usr/bin/env bash
# The benchmark, ours and PyTorch's side by side on this machine in one run (issue 13's table):
#   bash scripts/bench.sh [FOLDER] [consistentid bench flags, e.g. --steps 3 --width 512]
# FOLDER (default ~/.cache/consistentid/bench-fullsize) is made first when missing, by
# bench/make_fullsize.py: a full-size random-weight ConsistentID folder (no download, ~5 GB).
# PYTHON is the fixture venv's interpreter (torch 2.0.0, diffusers 0.23.0, transformers 4.31.0,
# onnxruntime 1.16.3, opencv-python-headless 4.8.1.78). PROFILE=release (default) or dev;
# FEATURES as for scripts/build.sh; DEVICE (default auto) picks our backend.
# Writes target/bench/{ours,torch}.json and prints the Markdown table for bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-venv/bin/python}
PROFILE=${PROFILE:-release}
folder=${1:-$HOME/.cache/consistentid/bench-fullsize}
shift || true
face=${FACE:-$HOME/.cache/consistentid/real-data/images/astronaut.png}
[ -f "$face" ] || bash tests/scripts/fetch_real_data.sh
[ -d "$folder" ] || "$PYTHON" bench/make_fullsize.py "$folder"
cargo build --locked --profile "$PROFILE" -p consistentid-native ${FEATURES:+--features "$FEATURES"}
dir=${CARGO_TARGET_DIR:-target}
bin="$dir/$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")/consistentid"
out="$dir/bench"
mkdir -p "$out"
"$bin" --device "${DEVICE:-auto}" bench --model "$folder" --face "$face" "$@" >"$out/ours.json"
"$PYTHON" bench/torch_pipeline.py --model "$folder" --face "$face" "$@" >"$out/torch.json"
"$PYTHON" bench/compare.py "$out/ours.json" "$out/torch.json"
