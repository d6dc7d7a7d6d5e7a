#!/usr/bin/env bash
# The whole host-buildable matrix, once: for every Linux target that has a
# Debian architecture (pgbin targets --json), install its build
# dependencies (pgbin deps --install: for a cross build Debian's cross
# toolchain; the build unpacks the target's libraries into its sysroot),
# build one release with the host backend (natively or cross-compiled),
# then move the archive and smoke-test it (under qemu-user with the
# sysroot's loader and C library for other architectures). Prints a
# Markdown table, a row as each target finishes (a target whose packages
# cannot be installed gets its row with apt's reason):
# target, archive size, build time, smoke result and time, glibc floor.
# Builds use a fresh cache directory, so every time is a real build.
# Usage: bash bench/matrix.sh [VERSION] [TARGET...]   (default 18.6, every target)
set -euo pipefail
cd "$(dirname "$0")/.."
version=${1:-18.6}
shift || true
cargo build --release --locked --quiet
pgbin=$PWD/target/release/pgbin
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if (($#)); then
  targets=("$@")
else
  mapfile -t targets < <($pgbin targets --json | jq -r '.targets[] | select(.debian) | .triple')
fi

# The verified source once, shared by every build's fresh cache.
tarball=$($pgbin fetch "$version")
mkdir -p "$work/cache/sources/sha256/$(sha256sum "$tarball" | cut -d' ' -f1)"
cp "$tarball" "$work/cache/sources/sha256/$(sha256sum "$tarball" | cut -d' ' -f1)/"

echo "PostgreSQL $version, host backend, $(nproc) cores, $(date -u +%Y-%m-%d):"
echo
echo "| target | archive | build | smoke test | smoke time | glibc floor |"
echo "|---|---|---|---|---|---|"
row() { printf '%s\n' "$1"; }
for target in "${targets[@]}"; do
  echo "matrix: $target" >&2
  if ! $pgbin deps "$version" --target "$target" --install >/dev/null 2>"$work/deps.err"; then
    row "| \`$target\` | – | – | not built: $(tail -1 "$work/deps.err" | cut -c1-160)… | – | – |"
    continue
  fi
  out=$work/out/$target
  start=$(date +%s.%N)
  if ! $pgbin build "$version" --backend host --target "$target" --cache "$work/cache" --out "$out" --json \
    >"$work/build.json" 2>"$work/build.err"; then
    row "| \`$target\` | – | – | build failed: $(tail -1 "$work/build.err") | – | – |"
    continue
  fi
  seconds=$(echo "$(date +%s.%N) - $start" | bc)
  archive=$(jq -r .archive "$work/build.json")
  manifest=$(jq -r .manifest_file "$work/build.json")
  moved=$work/moved/$target
  mkdir -p "$moved"
  mv "$archive" "$moved/"
  size=$(stat -c %s "$moved/$(basename "$archive")")
  floor=$(jq -r .glibc_floor "$manifest")
  arch=$($pgbin targets --json | jq -r --arg t "$target" '.targets[] | select(.triple == $t) | .debian.arch')
  root=()
  for dir in "$work/cache/sysroots/$arch"-*; do
    [[ -d $dir ]] && root=(--sysroot "$dir")
  done
  smoke_start=$(date +%s.%N)
  if $pgbin smoke --json "${root[@]}" "$moved/$(basename "$archive")" >"$work/smoke.json" 2>"$work/smoke.err"; then
    smoke="passed ($(jq '.checks | length' "$work/smoke.json") checks)"
  else
    smoke="FAILED: $(tail -1 "$work/smoke.err")"
  fi
  smoke_seconds=$(echo "$(date +%s.%N) - $smoke_start" | bc)
  row "$(printf '| `%s` | %.1f MB | %.0f s | %s | %.1f s | %s |' "$target" "$(echo "$size / 1000000" | bc -l)" \
    "$seconds" "$smoke" "$smoke_seconds" "$floor")"
done
