#!/usr/bin/env bash
# The web app's release bundle (dist/, or --dist DIR): profile web-release (Cargo.toml: optimised
# for size with fat LTO, the CPU fallback's kernels at opt-level 3), wasm SIMD for the CPU fallback
# (`simd` feature, `+simd128`), then wasm-opt (binaryen 132, `data-wasm-opt` in index.html).
# Extra arguments go to `trunk build`. Without them, a dist/ already built from the same sources,
# lock file and flags is kept as it is (a second start of the main job takes seconds, not the
# minutes of wasm-bindgen and wasm-opt): dist/.release-stamp holds the inputs' digest.
set -euo pipefail
cd "$(dirname "$0")/.."
stamp_of() {
  { find web/src web/style.css web/Cargo.toml core/src core/Cargo.toml -type f -print0 | sort -z | xargs -0 sha256sum
    sha256sum index.html Trunk.toml Cargo.toml Cargo.lock scripts/build-web.sh; } | sha256sum | cut -d' ' -f1
}
if [ $# -eq 0 ] && [ -f dist/index.html ] && [ -f dist/.release-stamp ] \
  && [ "$(cat dist/.release-stamp)" = "$(stamp_of)" ]; then
  echo "the web app's release bundle in dist/ is up to date"
  exit 0
fi
# The container image installs its tools itself (Dockerfile) and sets SKIP_TOOLS=1.
[ "${SKIP_TOOLS:-}" = 1 ] || bash scripts/install-tools.sh release
# The web app's own target dir: the flags below would otherwise rebuild the native crates' deps.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}/web"
RUSTFLAGS="-C target-feature=+simd128" trunk build --release --cargo-profile web-release --features simd "$@"
if [ $# -eq 0 ]; then
  stamp_of >dist/.release-stamp
fi
