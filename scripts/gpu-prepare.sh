#!/usr/bin/env bash
# Prepares, on this machine, what scripts/gpu-check.sh needs on the lent GPU machine (which can
# reach nothing): .gpu/ (ignored by git; carry it with the device tool's `carry: [".gpu"]`).
#   bash scripts/gpu-prepare.sh
# - .gpu/consistentid.gz        release build with FEATURES=cuda (NVRTC; ~22 min cold), stripped
# - .gpu/consistentid-tuned.gz  the same with burn's autotune + fusion (adds crates to Cargo.lock:
#                               built without --locked, the lock file restored after)
# - .gpu/wheels/                diffusers 0.23.0, huggingface_hub 0.19.4, facexlib 0.3.0 (pure Python)
# - .gpu/official/              the official train.py, attention.py, functions.py, utils.py
#                               (OFFICIAL_DIR: a checkout of JackAILab/ConsistentID e234008)
# - .gpu/real-data/             astronaut.png and the CLIP tokenizer (tests/scripts/fetch_real_data.sh)
# Keep it under the tool's 64 MiB: the two gzipped binaries are ~22 MB each.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${OFFICIAL_DIR:?a checkout of JackAILab/ConsistentID (e234008)}"
data=${CONSISTENTID_REAL_DATA:-$HOME/.cache/consistentid/real-data}
[ -f "$data/images/astronaut.png" ] || bash tests/scripts/fetch_real_data.sh
target=${CARGO_TARGET_DIR:-target}
rm -rf .gpu && mkdir -p .gpu/wheels .gpu/official .gpu/real-data/images
cp Cargo.lock /tmp/Cargo.lock.gpu-prepare
for variant in "cuda:consistentid" "cuda burn/autotune burn/fusion:consistentid-tuned"; do
  features=${variant%%:*} name=${variant##*:}
  cargo build --release -p consistentid-native --features "$features"
  strip -o ".gpu/$name" "$target/release/consistentid"
  gzip -9 -f ".gpu/$name"
done
cp /tmp/Cargo.lock.gpu-prepare Cargo.lock
python3 -m pip download -q --no-deps --only-binary=:all: -d .gpu/wheels \
  diffusers==0.23.0 huggingface_hub==0.19.4 facexlib==0.3.0
cp "$OFFICIAL_DIR"/{train,attention,functions,utils}.py .gpu/official/
cp "$data/images/astronaut.png" .gpu/real-data/images/
cp -r "$data/clip" .gpu/real-data/
du -sh .gpu
