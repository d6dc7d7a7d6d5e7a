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
  # the SHA-256 floor in bench/diff.sh (openssl dgst over a NAR)
  openssl
  # fetching over HTTPS
  ca-certificates
  # killing pgbin at each rename in the publishing test (fault injection)
  strace
  # reading pgbin catalog refresh --json in scripts/watch.sh
  jq
  # the venv of Python checkers the tests run (scripts/python-tools.txt)
  python3-venv
  # smoke tests of other architectures' archives (qemu-aarch64, qemu-arm, ...)
  qemu-user
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
  apt-get install -o DPkg::Lock::Timeout=600 -y -qq "${missing[@]}" >/dev/null 2>&1 || {
    apt-get update -o DPkg::Lock::Timeout=600 -qq
    apt-get install -o DPkg::Lock::Timeout=600 -y -qq "${missing[@]}" >/dev/null
  }
fi

command -v cargo >/dev/null || {
  echo "pgbin setup: cargo not found; install a Rust toolchain (1.86 or newer)" >&2
  exit 2
}

# Python checkers (zizmor, spdx-tools, check-jsonschema, in-toto-attestation),
# hash-pinned, in a venv outside the checkout; reinstalled only when
# scripts/python-tools.txt changes. Tests find it at $PGBIN_PYTOOLS.
requirements="$(dirname "$0")/python-tools.txt"
venv=${PGBIN_PYTOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/pgbin/pytools}
stamp=$(sha256sum "$requirements" | cut -d' ' -f1)
if [[ ! -x $venv/bin/python || $(cat "$venv/.requirements-sha256" 2>/dev/null) != "$stamp" ]]; then
  echo "pgbin setup: installing Python checkers into $venv" >&2
  rm -rf "$venv"
  /usr/bin/python3 -m venv "$venv"  # Debian's python3, whose venv module python3-venv provides
  "$venv/bin/pip" install --quiet --require-hashes --no-deps -r "$requirements"
  echo "$stamp" >"$venv/.requirements-sha256"
fi
