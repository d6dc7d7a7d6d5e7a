#!/usr/bin/env bash
# Installs what pgbin's main job and tests need on a Debian/Ubuntu machine,
# idempotently: only missing packages are installed. As root it runs apt;
# otherwise it prints the exact command to run and exits 2.
set -euo pipefail

packages=(
  # building pgbin: sequoia-openpgp's nettle backend (bindgen needs libclang)
  build-essential pkg-config nettle-dev clang
  # tests with the real Nix, and OpenPGP peers for interop and benchmarks
  nix-bin sqv gpgv hyperfine bc
  # peers of pgbin diff in its benchmark (bench/diff.sh), and peak memory
  diffoscope-minimal time
  # fetching over HTTPS
  ca-certificates
)

missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null | grep -qx installed || missing+=("$pkg")
done

if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "pgbin setup: missing packages; run: sudo apt-get install -y ${missing[*]}" >&2
    exit 2
  fi
  echo "pgbin setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 || {
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
  }
fi

command -v cargo >/dev/null || {
  echo "pgbin setup: cargo not found; install a Rust toolchain (1.86 or newer)" >&2
  exit 2
}
