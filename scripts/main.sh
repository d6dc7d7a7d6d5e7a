#!/usr/bin/env bash
# pgbin's main job on a fresh machine: install what is needed, build the
# driver, verify every locked source and check the generated Nix data.
# Usage: bash scripts/main.sh [VERSION]   (default 18.6)
set -euo pipefail
cd "$(dirname "$0")/.."
version=${1:-18.6}
bash scripts/setup.sh
cargo build --release --locked --quiet
pgbin=./target/release/pgbin
$pgbin resolve "$version"
$pgbin generate --check
