#!/usr/bin/env bash
# Prints the path of a test tool that comes from PyPI: `pip-tool.sh [--venv-only] NAME REQUIREMENTS
# VENV` gives NAME from PATH when it is there (not with --venv-only), else from VENV, made (again)
# from the pinned REQUIREMENTS file whenever that file changed. Used by scripts/moto.sh,
# scripts/seaweedfs.sh and scripts/client-venv.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
path_ok=1
if [ "$1" = --venv-only ]; then
  path_ok=0
  shift
fi
name=$1 req=$2 venv=$3
if [ "$path_ok" = 1 ] && command -v "$name" >/dev/null 2>&1; then
  command -v "$name"
  exit 0
fi
if [ ! -x "$venv/bin/$name" ] || ! cmp -s "$req" "$venv/.requirements"; then
  rm -rf "$venv"
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$req" >&2
  cp "$req" "$venv/.requirements"
fi
echo "$venv/bin/$name"
