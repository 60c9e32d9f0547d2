#!/usr/bin/env bash
# Creates (once) the Python environment with the official `replicate` client that the host's
# client test drives (native/tests/serve_client.rs), pinned by tests/scripts/requirements-client.txt.
# Prints the environment's python.
set -euo pipefail
cd "$(dirname "$0")/.."
exec bash scripts/pip-tool.sh --venv-only python tests/scripts/requirements-client.txt \
  "${CONSISTENTID_CLIENT_VENV:-$HOME/.cache/consistentid/venv-client}"
