#!/usr/bin/env bash
# The main job: builds the `consistentid` binary (release) and the web app's release bundle
# (dist/, scripts/build-web.sh).
# Extra cargo features for the binary go in FEATURES, e.g. FEATURES=cuda or FEATURES=wgpu.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-tools.sh
cargo build --release --locked -p consistentid-native ${FEATURES:+--features "$FEATURES"}
bash scripts/build-web.sh
echo "built ${CARGO_TARGET_DIR:-target}/release/consistentid and dist/ (\`consistentid serve\` serves both)"
