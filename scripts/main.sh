#!/usr/bin/env bash
# pgbin's main job on a fresh machine: install what is needed, build the
# driver, fetch and verify the source of one release, seed it into the Nix
# store, then build, relocate, package and smoke-test PostgreSQL with the
# host toolchain (installing its build dependencies).
# Usage: bash scripts/main.sh [VERSION [TARGET]]   (default 18.6 for this
# machine; another Linux architecture, e.g. aarch64-unknown-linux-gnu, is
# cross-compiled with Debian's cross toolchain; archives go to dist/)
set -euo pipefail
cd "$(dirname "$0")/.."
version=${1:-18.6}
target=()
if [[ -n ${2:-} ]]; then target=(--target "$2"); fi
bash scripts/setup.sh
export NIX_CONFIG=$'experimental-features = nix-command flakes\nsubstituters ='
cargo build --release --locked --quiet
pgbin=./target/release/pgbin
$pgbin resolve "$version"
$pgbin generate --check
$pgbin fetch "$version"
$pgbin seed "$version"
$pgbin build "$version" "${target[@]}" --out dist
