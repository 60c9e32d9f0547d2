#!/usr/bin/env bash
# Runs the test suite: installs missing tools, fetches the real test data (cached,
# sha256-checked), builds the web app (the browser test loads it), then every workspace test on
# the CPU backend, and prints one closing line with the totals.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-tools.sh
bash tests/scripts/fetch_real_data.sh
# The official replicate client for the host's client test (a pinned venv, made once).
CONSISTENTID_CLIENT_PYTHON=$(bash scripts/client-venv.sh)
export CONSISTENTID_CLIENT_PYTHON
trunk build
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace --locked "$@" 2>&1 | tee "$log"
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
