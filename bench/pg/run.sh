#!/usr/bin/env bash
# The queue's cost per job on PostgreSQL, with pgbench and the statements the host runs:
# admissions/s, claims/s (8 claimers racing over 200,000 queued jobs) and event inserts/s.
# Usage: bench/pg/run.sh [ADMIN_URL] (default: a throwaway server from scripts/postgres.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
admin=${1:-}
dir=
if [ -z "$admin" ]; then
  read -r admin dir < <(bash "$here/../../scripts/postgres.sh")
  trap 'bash "$here/../../scripts/postgres.sh" stop "$dir"' EXIT
fi
db="${admin%/*}/bench_queue"
psql "$admin" -qc "DROP DATABASE IF EXISTS bench_queue" -c "CREATE DATABASE bench_queue"
psql "$db" -q -f "$here/../../native/migrations/postgres/0001_init.sql"
bench() {
  echo "== $1 (8 clients, 10 s)"
  pgbench -n -c 8 -j 2 -T 10 -f "$here/$1.sql" "$db" 2>&1 | grep -E "^(tps|latency average)"
}
bench admit
psql "$db" -qc "DELETE FROM predictions" -c "INSERT INTO predictions (id, owner, model, version, status, input)
  SELECT 'p' || g, 'o', 'm', 'v', 'starting', '{}' FROM generate_series(1, 200000) g" -c "VACUUM ANALYZE"
bench claim
bench event
