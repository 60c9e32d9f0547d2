#!/usr/bin/env bash
# The GPU checks, run ON the lent GPU machine from the repository root with .gpu/ carried
# (scripts/gpu-prepare.sh makes it here):
#   bash scripts/gpu-check.sh            # every stage; STAGES="parity train" picks some
# Stages (each with its own time limit; a failing one is logged and the next runs):
#   parity  CUDA f32 and f16 on the tiny replica (`stage consistentid`) vs the official
#           pipeline's image (tests/fixtures/consistentid_pipeline), max abs error printed;
#   folder  the full-size random-weight folder (bench/make_fullsize.py, ~2 min);
#   train   one full-size training step, ours (BATCH, default 2 = the official per-GPU batch)
#           and the official trainer in f32 and bf16 (scripts/bench-train.sh);
#   bench   the inference bench, ours untuned and with autotune + fusion, and PyTorch's.
# Everything lands in $OUT (the device tool brings it back): gpu-check.log and the tables.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-target/gpu-check}
mkdir -p "$OUT" /tmp/gpu
exec > >(tee -a "$OUT/gpu-check.log") 2>&1
STAGES=${STAGES:-parity folder train bench}
python3 -m pip install -q --no-index --no-deps --target /tmp/site .gpu/wheels/*.whl && export PYTHONPATH=/tmp/site
export CONSISTENTID_REAL_DATA=$PWD/.gpu/real-data FACEXLIB_WHEEL=$(ls .gpu/wheels/facexlib-*.whl)
export OFFICIAL_DIR=$PWD/.gpu/official PYTHON=python3 CUDA_PATH=${CUDA_PATH:-/usr/local/cuda}
gunzip -c .gpu/consistentid.gz >/tmp/gpu/consistentid && chmod +x /tmp/gpu/consistentid
gunzip -c .gpu/consistentid-tuned.gz >/tmp/gpu/consistentid-tuned 2>/dev/null && chmod +x /tmp/gpu/consistentid-tuned
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
folder=/tmp/gpu/fullsize
stage() { case " $STAGES " in *" $1 "*) ;; *) return 1 ;; esac; echo "== $1 ($(date +%T))"; }

if stage parity; then
  m=/tmp/gpu/replica && rm -rf $m && mkdir -p $m
  cp -r tests/fixtures/sd_tiny/. $m/ && cp -r tests/fixtures/consistentid_pipeline/image_encoder $m/
  cp tests/fixtures/consistentid_pipeline/ConsistentID-v1.bin tests/fixtures/bisenet_tiny/face_parsing.pth $m/
  e=tests/fixtures/consistentid_pipeline/expected.safetensors
  for dtype in f32 f16; do
    timeout 300 /tmp/gpu/consistentid --device cuda --dtype $dtype stage consistentid --model $m \
      --face .gpu/real-data/images/astronaut.png --id-embedding $e \
      --prompt "a photo of a person as an astronaut, highly detailed" --negative-prompt "blurry, lowres" \
      --steps 5 --guidance 5 --merge-step 2 --init-latents $e --out /tmp/gpu/parity-$dtype.safetensors &&
    python3 -c "
from safetensors.numpy import load_file; import sys
a = load_file('/tmp/gpu/parity-$dtype.safetensors')['image']; b = load_file('$e')['image']
print('parity $dtype: max abs error', abs(a - b).max(), '(CPU tests hold f32 to 1e-4)')"
  done
fi
if stage folder; then
  [ -d $folder ] || timeout 600 python3 bench/make_fullsize.py $folder
fi
if stage train; then
  BIN=/tmp/gpu/consistentid DEVICE=cuda BATCH=${BATCH:-2} STEPS=${STEPS:-4} \
    CARGO_TARGET_DIR=/tmp/gpu timeout 900 bash scripts/bench-train.sh $folder | tee "$OUT/train.md"
fi
if stage bench; then
  face=.gpu/real-data/images/astronaut.png
  for b in consistentid consistentid-tuned; do
    [ -x /tmp/gpu/$b ] && timeout 600 /tmp/gpu/$b --device cuda bench --model $folder --face $face \
      --steps 3 --width 512 --height 512 >"$OUT/$b.json"
  done
  timeout 600 python3 bench/torch_pipeline.py --model $folder --face $face --steps 3 --width 512 \
    --height 512 --device cuda >"$OUT/torch.json"
  python3 bench/compare.py "$OUT/consistentid.json" "$OUT/torch.json" | tee "$OUT/bench.md"
fi
echo "== done ($(date +%T))"
