# Sourced by the test servers' start scripts (moto.sh, seaweedfs.sh): `await_ready PID LOG NAME
# LINE` waits up to 30 s for the caller's `ready` function to succeed, then prints LINE (what the
# tests read); if the process dies or the time runs out, it kills it, shows its log's tail and fails.
await_ready() {
  local pid=$1 log=$2 name=$3 line=$4
  for _ in $(seq 300); do
    if ready; then
      echo "$line"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
  tail -30 "$log" >&2
  echo "$name did not start" >&2
  return 1
}
