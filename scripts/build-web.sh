#!/usr/bin/env bash
# The web app's release bundle (dist/, or --dist DIR): profile web-release (Cargo.toml: optimised
# for size with fat LTO, the CPU fallback's kernels at opt-level 3), wasm SIMD for the CPU fallback
# (`simd` feature, `+simd128`), then wasm-opt (binaryen 132, `data-wasm-opt` in index.html).
# Extra arguments go to `trunk build`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-tools.sh release
# The web app's own target dir: the flags below would otherwise rebuild the native crates' deps.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}/web"
RUSTFLAGS="-C target-feature=+simd128" trunk build --release --cargo-profile web-release --features simd "$@"
