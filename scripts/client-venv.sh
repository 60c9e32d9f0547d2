#!/usr/bin/env bash
# Creates (once) the Python environment with the official `replicate` client that the host's
# client test drives (native/tests/serve_client.rs), pinned by tests/scripts/requirements-client.txt.
# Prints the environment's python.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${CONSISTENTID_CLIENT_VENV:-$HOME/.cache/consistentid/venv-client}"
REQ=tests/scripts/requirements-client.txt
stamp="$VENV/.requirements"
if [ ! -x "$VENV/bin/python" ] || ! cmp -s "$REQ" "$stamp"; then
  rm -rf "$VENV"
  python3 -m venv "$VENV" >&2
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQ" >&2
  cp "$REQ" "$stamp"
fi
echo "$VENV/bin/python"
