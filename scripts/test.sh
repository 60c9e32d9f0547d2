#!/usr/bin/env bash
# Runs the test suite: installs missing tools, fetches the real test data (cached,
# sha256-checked), builds the web app (the browser test loads it) and its wasm32 test while the
# native tests build, then runs every workspace test (CPU backend; the wgpu parity test also on
# a Vulkan adapter when there is one), then the wasm32 test in headless Chromium
# (wasm-bindgen-test), and prints one closing line with the totals. The host's tests run twice: on
# the embedded store, then on a throwaway PostgreSQL (scripts/postgres.sh) with the files in a
# throwaway S3-compatible bucket (moto, scripts/moto.sh).
#
# The lints run inside these builds: clippy-driver wraps the compiler for the workspace's own
# crates (as `cargo clippy` does, dependencies untouched) while cargo builds them for real, so one
# build gives lints, tests and the wasm bundle. Warnings are errors. The binary is built with the
# cuda and wgpu backends too, so their code is linted and compiled without a second build of burn
# (CUDA is loaded at run time; no toolkit is needed to build).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-tools.sh
export RUSTC_WORKSPACE_WRAPPER="${RUSTC_WORKSPACE_WRAPPER-$(command -v clippy-driver)}"
export CLIPPY_ARGS="${CLIPPY_ARGS--D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__}"
bash tests/scripts/fetch_real_data.sh
# The wasm32 test (web/tests/analysis.rs) includes the real photo and BlazeFace at build time.
export CONSISTENTID_REAL_DATA="${CONSISTENTID_REAL_DATA:-$HOME/.cache/consistentid/real-data}"
# The official replicate client for the host's client test (a pinned venv, made once).
CONSISTENTID_CLIENT_PYTHON=$(bash scripts/client-venv.sh)
export CONSISTENTID_CLIENT_PYTHON
# test-engine: the host's many-job tests run workers without models (never in a release build).
features=consistentid-native/cuda,consistentid-native/wgpu,consistentid-native/test-engine
log=$(mktemp)
web_log=$(mktemp)
pg_dir=
s3_pid=
cleanup() {
  rm -f "$log" "$web_log"
  if [ -n "$pg_dir" ]; then bash scripts/postgres.sh stop "$pg_dir"; fi
  if [ -n "$s3_pid" ]; then bash scripts/moto.sh stop "$s3_pid"; fi
}
trap cleanup EXIT
# A throwaway PostgreSQL for the store's tests on a database (unless one is given).
if [ -z "${CONSISTENTID_TEST_DATABASE_URL:-}" ]; then
  read -r CONSISTENTID_TEST_DATABASE_URL pg_dir < <(bash scripts/postgres.sh)
  export CONSISTENTID_TEST_DATABASE_URL
fi
# And a throwaway S3-compatible server (moto, in memory) for the store's files in a bucket.
if [ -z "${CONSISTENTID_TEST_S3:-}" ]; then
  read -r CONSISTENTID_TEST_S3 s3_pid < <(bash scripts/moto.sh)
  export CONSISTENTID_TEST_S3
fi
# The web app (wasm32, built by trunk) and the native tests compile at the same time, each in its
# own target dir (cargo locks a target dir for one build at a time), so that each fills the cores
# the other leaves idle during its long single-crate steps.
web_target="${CARGO_TARGET_DIR:-$PWD/target}/web"
# The wasm32 test shares the app's profile and features, so it adds only its own crate.
wasm_test=(cargo test --locked --target wasm32-unknown-unknown --profile web-dev -p consistentid-web --test analysis)
(
  export CARGO_TARGET_DIR="$web_target"
  trunk build && "${wasm_test[@]}" --no-run
) >"$web_log" 2>&1 &
web=$!
native=(cargo test --workspace --locked --features "$features")
"${native[@]}" --no-run "$@" || { wait "$web" || true; exit 1; }
if ! wait "$web"; then
  cat "$web_log"
  echo "the web app's build failed" >&2
  exit 1
fi
"${native[@]}" "$@" 2>&1 | tee "$log"
# The host's tests again with the store in PostgreSQL and the files in a bucket (built above:
# only the runs).
CONSISTENTID_TEST_SERVE_DATABASE="$CONSISTENTID_TEST_DATABASE_URL" \
  CONSISTENTID_TEST_SERVE_OBJECT_STORE="$CONSISTENTID_TEST_S3" "${native[@]}" \
  --test serve_api --test serve_client --test serve_edges --test serve_hardening --test serve_likeness \
  --test serve_load --test serve_logs --test serve_persistence --test serve_photo --test serve_robustness \
  --test web_e2e \
  "$@" 2>&1 | tee -a "$log"
# In Chromium through chromedriver; web/webdriver.json turns on WebGPU (SwiftShader).
CARGO_TARGET_DIR="$web_target" CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
  CHROMEDRIVER="$(command -v chromedriver)" WASM_BINDGEN_TEST_TIMEOUT=600 \
  "${wasm_test[@]}" 2>&1 | tee -a "$log"
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
