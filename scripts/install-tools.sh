#!/usr/bin/env bash
# Installs the build tools the project needs, each only when missing: the wasm32 target,
# rustfmt/clippy, trunk and wasm-bindgen-cli at the versions that install offline here
# (see shared/spec/toolchain.md). `install-tools.sh release` adds wasm-opt (binaryen 132, from
# npm) for the web app's release bundle.
set -euo pipefail
TRUNK_VERSION=0.21.14
WASM_BINDGEN_VERSION=0.2.130

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown
fi
for c in rustfmt clippy; do
  rustup component list --installed | grep -q "^$c" || rustup component add "$c"
done
if ! trunk --version 2>/dev/null | grep -q "$TRUNK_VERSION"; then
  cargo install trunk --version "$TRUNK_VERSION" --locked
fi
if ! wasm-bindgen --version 2>/dev/null | grep -q "$WASM_BINDGEN_VERSION"; then
  # Not --locked: a locked transitive version is missing from the registry.
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
fi
# Headless Chromium and its WebDriver for the browser end-to-end test (Debian packages).
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
  else
    echo "install Debian's chromium and chromium-driver (sudo apt-get install chromium chromium-driver)" >&2
    exit 1
  fi
fi
# cmake builds libjpeg-turbo from source for the JPEG decoder (turbojpeg-sys); nasm gives it
# its SIMD code (the decoded pixels are the same without it).
if ! command -v cmake >/dev/null || ! command -v nasm >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmake nasm >/dev/null
  else
    echo "install cmake and nasm (sudo apt-get install cmake nasm)" >&2
    exit 1
  fi
fi
# Mesa's lavapipe (Vulkan on the CPU) for the wgpu backend's parity test.
if ! ls /usr/share/vulkan/icd.d/lvp_icd.*.json >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null
  else
    echo "install mesa-vulkan-drivers and libvulkan1 (sudo apt-get install mesa-vulkan-drivers libvulkan1)" >&2
    exit 1
  fi
fi
# PostgreSQL for the store's tests on a database (scripts/postgres.sh starts a throwaway one).
if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  else
    echo "install PostgreSQL (sudo apt-get install postgresql)" >&2
    exit 1
  fi
fi
# npm and pip fetch the real test data (tests/scripts/fetch_real_data.sh).
# python3-venv holds the official `replicate` client for the host's client test.
if ! command -v npm >/dev/null || ! python3 -m pip --version >/dev/null 2>&1 \
  || ! python3 -c "import ensurepip" >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm python3-pip python3-venv >/dev/null
  else
    echo "install npm, python3-pip and python3-venv (sudo apt-get install npm python3-pip python3-venv)" >&2
    exit 1
  fi
fi
# wasm-opt for the release bundle (trunk runs it; `[tools] wasm_opt` in Trunk.toml).
if [ "${1:-}" = release ] && ! wasm-opt --version 2>/dev/null | grep -q "version_132"; then
  if [ "$(id -u)" = 0 ]; then
    npm install -g --silent binaryen@132
  else
    echo "install binaryen 132's wasm-opt (npm install -g binaryen@132)" >&2
    exit 1
  fi
fi
