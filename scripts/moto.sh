#!/usr/bin/env bash
# Starts moto's S3 server (in memory, no credentials checked) on a free loopback port for the
# tests and prints its URL and process id; `moto.sh stop PID` stops it. moto comes from PATH, or
# from a venv pinned by tests/scripts/requirements-moto.txt (made once).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = stop ]; then
  kill "$2" 2>/dev/null || true
  exit 0
fi
moto=$(bash scripts/pip-tool.sh moto_server tests/scripts/requirements-moto.txt \
  "${CONSISTENTID_MOTO_VENV:-$HOME/.cache/consistentid/venv-moto}")
# Below Linux's ephemeral range (32768–60999), where hosts under test take their ports.
port=${CONSISTENTID_S3_PORT:-29400}
# The first free port from there.
while (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
log=$(mktemp /tmp/consistentid-moto.XXXXXX)
"$moto" -H 127.0.0.1 -p "$port" >"$log" 2>&1 </dev/null &
pid=$!
# Ready when this server says it runs on the port and answers S3's bucket listing there (a
# port taken meanwhile by another process answers nothing of the kind).
ready() {
  grep -q "Running on http://127.0.0.1:$port" "$log" &&
    python3 -c 'import sys, urllib.request
body = urllib.request.urlopen(sys.argv[1], timeout=2).read()
sys.exit(0 if b"ListAllMyBucketsResult" in body else 1)' "http://127.0.0.1:$port/" 2>/dev/null
}
. scripts/await-ready.sh
await_ready "$pid" "$log" "moto's S3 server" "http://127.0.0.1:$port $pid"
