#!/usr/bin/env bash
# Starts a throwaway PostgreSQL on loopback for the tests and prints its URL and folder;
# `postgres.sh stop DIR` stops it and deletes its files. The cluster lives in a fresh folder (no
# other database is touched), trusts local connections and keeps nothing durable (fsync off: it is
# thrown away; CONSISTENTID_PG_DURABLE=1 for a benchmark).
# As root it runs as the `postgres` user (the server refuses to run as root).
set -euo pipefail
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
# `postgres.sh down DIR` / `up DIR`: stop the server and start it again on its port, keeping its
# data (the tests of a database outage).
if [ "${1:-}" = down ]; then
  as_pg "$bin/pg_ctl" -D "$2/data" -m fast -w stop >/dev/null
  exit 0
fi
if [ "${1:-}" = up ]; then
  # Its port may be held for a moment (a socket of a client cut off by the stop): a few tries,
  # then the server's log.
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    if as_pg "$bin/pg_ctl" -D "$2/data" -l "$2/server.log" -w -o "$(cat "$2/options")" start >/dev/null; then
      exit 0
    fi
    sleep 0.5
  done
  tail -n 20 "$2/server.log" >&2
  exit 1
fi
if [ "${1:-}" = stop ]; then
  as_pg "$bin/pg_ctl" -D "$2/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$2"
  exit 0
fi
port=${CONSISTENTID_PG_PORT:-55432}
# The first free port from there (another server, or another test run, may hold it).
while (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
dir=$(mktemp -d /tmp/consistentid-pg.XXXXXX)
chmod 755 "$dir"
[ "$(id -u)" = 0 ] && chown postgres "$dir"
as_pg "$bin/initdb" -D "$dir/data" -U postgres -A trust --no-sync >"$dir/initdb.log" 2>&1
# CONSISTENTID_PG_DURABLE=1 keeps the defaults (fsync, synchronous commits) for benchmarks.
fast="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
[ -n "${CONSISTENTID_PG_DURABLE:-}" ] && fast=
echo "-p $port -k $dir -c listen_addresses=127.0.0.1 $fast -c max_connections=300" >"$dir/options"
as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -o "$(cat "$dir/options")" start >/dev/null
echo "postgres://postgres@127.0.0.1:$port/postgres $dir"
