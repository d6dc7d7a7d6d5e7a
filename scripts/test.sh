#!/usr/bin/env bash
# Runs every pgbin test: unit tests, end-to-end tests through the binary,
# and the Nix tests with the real nix. Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export NIX_CONFIG=$'experimental-features = nix-command flakes\nsubstituters ='
cargo build --release --locked --quiet
./target/release/pgbin generate --check
cargo test --release --locked
