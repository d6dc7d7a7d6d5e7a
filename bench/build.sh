#!/usr/bin/env bash
# Benchmark: pgbin's host build against a plain build of the same tarball.
# Runs, one after the other on a quiet machine:
#   plain:  tar xjf + ./configure (same flags) && make -jN world-bin && make install-world-bin
#   plain hardened: the same with pgbin's CFLAGS/LDFLAGS (data/targets.toml)
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

cflags=$(python3 -c 'import tomllib; print(" ".join(tomllib.load(open("data/targets.toml","rb"))["host"]["cflags"]))')
ldflags=$(python3 -c 'import tomllib; print(" ".join(tomllib.load(open("data/targets.toml","rb"))["host"]["ldflags"]))')

now() { date +%s.%N; }
# plain_build NAME [VAR=VALUE...]: unpack, configure, make, install; prints seconds.
plain_build() {
  local name=$1
  shift
  local start
  start=$(now)
  (
    mkdir -p "$work/$name" && cd "$work/$name" && tar xjf "$tarball" && cd "postgresql-$version" &&
      env "$@" ./configure --prefix="$work/$name/install" $flags >/dev/null &&
      make -j"$jobs" world-bin >/dev/null 2>&1 && make install-world-bin >/dev/null 2>&1
  )
  echo "$(now) - $start" | bc
  rm -rf "${work:?}/$name"
}
plain=$(plain_build plain)
plain_hardened=$(plain_build hardened "CFLAGS=$cflags" "LDFLAGS=$ldflags")

# The source is fetched and verified before the clock starts, as it was for
# the plain build: both time the build alone.
PGBIN_CACHE="$work/cache" $pgbin fetch "$version" >/dev/null 2>&1
start=$(now)
PGBIN_CACHE="$work/cache" $pgbin build "$version" --backend host --out "$work/dist" 2>"$work/phases.txt" >/dev/null
built=$(echo "$(now) - $start" | bc)

start=$(now)
PGBIN_CACHE="$work/cache" $pgbin build "$version" --backend host --out "$work/dist" >/dev/null 2>&1
cached=$(echo "$(now) - $start" | bc)

printf 'PostgreSQL %s, %s jobs\n' "$version" "$jobs"
printf 'plain configure+make world-bin+install:               %6.1f s\n' "$plain"
printf 'the same with pgbin'"'"'s hardening CFLAGS/LDFLAGS:         %6.1f s\n' "$plain_hardened"
printf 'pgbin build (incl. relocate, package, smoke):         %6.1f s\n' "$built"
printf 'pgbin build again (cache hit):                        %6.3f s\n' "$cached"
printf 'ratio pgbin/plain:          %.3f (target <= 1.10)\n' "$(echo "$built / $plain" | bc -l)"
printf 'ratio pgbin/plain hardened: %.3f\n' "$(echo "$built / $plain_hardened" | bc -l)"
echo "pgbin phases (seconds since start):"
grep -E '^pgbin: \[' "$work/phases.txt" | sed 's/^pgbin: /  /'
tail -n1 "$work/phases.txt" | sed 's/^pgbin: /  /'
