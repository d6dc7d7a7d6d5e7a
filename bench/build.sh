#!/usr/bin/env bash
# Benchmark: pgbin's host build against a plain build of the same tarball.
# Runs, one after the other on a quiet machine:
#   plain:  tar xjf + ./configure (same flags) && make -jN world-bin && make install-world-bin
#   pgbin:  pgbin build VERSION --backend host (fresh build cache: unpack,
#           configure, compile, install, relocate, package, manifest, smoke test)
#   cached: the same pgbin build again (served from the build cache)
# and prints wall times and the ratio pgbin/plain.
# Usage: bash bench/build.sh [VERSION]   (default 18.6)
set -euo pipefail
cd "$(dirname "$0")/.."
version=${1:-18.6}
cargo build --release --locked --quiet
pgbin=$PWD/target/release/pgbin
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tarball=$($pgbin fetch "$version" 2>/dev/null)
flags=$($pgbin targets --json --version "$version" | python3 -c '
import json, sys, os
listing = json.load(sys.stdin)
host = [t for t in listing["targets"] if t["triple"] == "x86_64-unknown-linux-gnu"][0]
print(" ".join(host["configure_flags"]))')
jobs=$(nproc)

now() { date +%s.%N; }
start=$(now)
(
  cd "$work" && tar xjf "$tarball" && cd "postgresql-$version" &&
    ./configure --prefix="$work/plain-install" $flags >/dev/null &&
    make -j"$jobs" world-bin >/dev/null 2>&1 && make install-world-bin >/dev/null 2>&1
)
plain=$(echo "$(now) - $start" | bc)

start=$(now)
PGBIN_CACHE="$work/cache" $pgbin build "$version" --backend host --out "$work/dist" >/dev/null 2>&1
built=$(echo "$(now) - $start" | bc)

start=$(now)
PGBIN_CACHE="$work/cache" $pgbin build "$version" --backend host --out "$work/dist" >/dev/null 2>&1
cached=$(echo "$(now) - $start" | bc)

printf 'PostgreSQL %s, %s jobs\n' "$version" "$jobs"
printf 'plain configure+make world-bin+install: %6.1f s\n' "$plain"
printf 'pgbin build (incl. relocate, package, smoke): %6.1f s\n' "$built"
printf 'pgbin build again (cache hit): %6.3f s\n' "$cached"
printf 'ratio pgbin/plain: %.3f (target <= 1.10)\n' "$(echo "$built / $plain" | bc -l)"
