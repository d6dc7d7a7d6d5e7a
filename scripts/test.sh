#!/usr/bin/env bash
# Runs every pgbin test: unit tests, end-to-end tests through the binary,
# and the Nix tests with the real nix. Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export NIX_CONFIG=$'experimental-features = nix-command flakes\nsubstituters ='
cargo build --release --locked --quiet
./target/release/pgbin generate --check
# The host backend's build dependencies, native and for the aarch64 cross
# build the tests run (its cross toolchain; the target's libraries go into
# a sysroot at build time), installed before any test builds, so that no
# package changes under a running build.
./target/release/pgbin deps 18.6 --install >/dev/null
./target/release/pgbin deps 18.6 --target aarch64-unknown-linux-gnu --install >/dev/null
cargo test --release --locked
