#!/usr/bin/env bash
# The main job: builds the release binary and the web app (scripts/build.sh), then runs the host
# on http://127.0.0.1:7860 (`consistentid serve`; extra arguments go to it, e.g. --model DIR,
# --data DIR, --port N, --device cuda). A missing model folder is fetched first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
exec "${CARGO_TARGET_DIR:-target}/release/consistentid" serve --web dist "$@"
