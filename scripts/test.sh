#!/usr/bin/env bash
# Runs the test suite: fetches the real test data (cached, sha256-checked), then every
# workspace test on the CPU backend.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/scripts/fetch_real_data.sh
cargo test --workspace --locked "$@"
