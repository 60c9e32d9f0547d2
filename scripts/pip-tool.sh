#!/usr/bin/env bash
# Prints the path of a test tool that comes from PyPI: `pip-tool.sh NAME REQUIREMENTS VENV` gives
# NAME from PATH when it is there, else from VENV, made (again) from the pinned REQUIREMENTS file
# whenever that file changed. Used by scripts/moto.sh and scripts/seaweedfs.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
name=$1 req=$2 venv=$3
if command -v "$name" >/dev/null 2>&1; then
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
