#!/usr/bin/env bash
# The browser benchmark (bench/RESULTS.md, "In the browser"): the web app's release bundle
# (scripts/build-web.sh) in target/bench/dist, a model folder holding only what the browser runs
# (BiSeNet with the real shapes from FOLDER, random weights being as fast as real ones, and the
# real BlazeFace), then BlazeFace and BiSeNet 512² timed in this machine's headless Chromium with
# WebGPU (SwiftShader without a GPU) and on the CPU fallback, and the wasm sizes, raw and gzipped.
#   bash scripts/bench-browser.sh [FOLDER]   (RUNS=5 timed runs per network)
# FOLDER defaults to the full-size folder of scripts/bench.sh (made by bench/make_fullsize.py).
# Writes target/bench/browser.json.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-tools.sh release
bash tests/scripts/fetch_real_data.sh
folder=${1:-$HOME/.cache/consistentid/bench-fullsize}
[ -f "$folder/face_parsing.pth" ] || { echo "no face_parsing.pth in $folder (bench/make_fullsize.py makes one)" >&2; exit 1; }
dir=${CARGO_TARGET_DIR:-$PWD/target}
out="$dir/bench"
models="$out/analysis-models"
mkdir -p "$models/blazeface"
cp "$folder/face_parsing.pth" "$models/"
data=${CONSISTENTID_REAL_DATA:-$HOME/.cache/consistentid/real-data}
cp "$data/blazeface/face_detection_front_128x128_barracuda.onnx" "$models/blazeface/"
CARGO_TARGET_DIR="$dir" bash scripts/build-web.sh --dist "$out/dist"
# The driver and the host as the test build makes them (same features: no second build of burn).
cargo test --workspace --locked --features consistentid-native/cuda,consistentid-native/wgpu,consistentid-native/test-engine --no-run
"$dir/debug/examples/browser_bench" --model "$models" --dist "$out/dist" --runs "${RUNS:-5}" \
  | tee "$out/browser.json"
