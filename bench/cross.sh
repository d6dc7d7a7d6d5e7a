#!/usr/bin/env bash
# Benchmark: cross-compiling against the alternatives, side by side in one run.
#   1. pgbin build VERSION for aarch64-unknown-linux-gnu (Debian's cross
#      toolchain) against the native x86_64-unknown-linux-gnu build of the
#      same release: whole builds (configure, make -jN world-bin, install,
#      relocation, packaging, smoke test), each in a fresh cache, wall time.
#   2. The way of Docker-with-QEMU pipelines (the whole arm64 toolchain
#      emulated) against the cross compiler, on the same preprocessed
#      sources of src/common and src/port: arm64 gcc's compiler proper
#      (cc1 from Debian's cpp-12:arm64, run by qemu-aarch64) against the
#      cross compiler's cc1 (cpp-12-aarch64-linux-gnu), same gcc 12.2, same
#      flags, same inputs, same output target.
# qemu-user does not follow execve, so an emulated gcc driver cannot start
# its cc1 without binfmt_misc (absent here, and machine-wide to register);
# timing cc1 directly measures the compilation itself, which is where the
# time goes, and leaves the driver and assembler out on both sides.
# Usage: bash bench/cross.sh [VERSION]   (default 18.6; needs root for apt)
set -euo pipefail
cd "$(dirname "$0")/.."
version=${1:-18.6}
cargo build --release --locked --quiet
pgbin=$PWD/target/release/pgbin
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
jobs=$(nproc)

$pgbin deps "$version" --install >/dev/null
$pgbin deps "$version" --target aarch64-unknown-linux-gnu --install >/dev/null
tarball=$($pgbin fetch "$version")
digest=$(sha256sum "$tarball" | cut -d' ' -f1)

timed_build() { # target -> seconds
  local cache=$work/cache-$1
  mkdir -p "$cache/sources/sha256/$digest"
  cp "$tarball" "$cache/sources/sha256/$digest/"
  local start
  start=$(date +%s.%N)
  $pgbin build "$version" --backend host --target "$1" --cache "$cache" --out "$work/out-$1" >/dev/null 2>&1
  echo "$(date +%s.%N) - $start" | bc
}

echo "1. whole builds of $version ($jobs jobs)" >&2
native=$(timed_build x86_64-unknown-linux-gnu)
cross=$(timed_build aarch64-unknown-linux-gnu)
echo "native $native s, cross $cross s" >&2

echo "2. cc1 under qemu-aarch64 against the cross cc1" >&2
# The arm64 compiler proper and the libraries it links (multiarch, so they
# install beside the build machine's own).
apt-get install -y -qq -o DPkg::Lock::Timeout=600 libmpc3:arm64 libmpfr6:arm64 libgmp10:arm64 libisl23:arm64 \
  libzstd1:arm64 zlib1g:arm64 >/dev/null
(cd "$work" && apt-get download -qq cpp-12:arm64 2>/dev/null)
dpkg-deb -x "$work"/cpp-12_*_arm64.deb "$work/arm64-cpp"
emulated_cc1=$work/arm64-cpp/usr/lib/gcc/aarch64-linux-gnu/12/cc1
cross_cc1=/usr/lib/gcc-cross/aarch64-linux-gnu/12/cc1
# Preprocessed sources of src/common and src/port, from a cross configure.
mkdir -p "$work/src"
tar xjf "$tarball" -C "$work/src"
src=$work/src/postgresql-$version
(cd "$src" && ./configure --build=x86_64-linux-gnu --host=aarch64-linux-gnu --without-icu --without-readline \
  --without-zlib ZIC=/bin/true >/dev/null)
make -C "$src/src/port" -j"$jobs" COPT="-save-temps=obj" >/dev/null 2>&1
make -C "$src/src/common" -j"$jobs" COPT="-save-temps=obj" >/dev/null 2>&1
find "$src/src/port" "$src/src/common" -name '*.i' | sort >"$work/inputs"
count=$(wc -l <"$work/inputs")
compile_all() { # cc1 runner...
  local start
  start=$(date +%s.%N)
  # The CRC-32C file needs the CRC extension; aarch64 takes it everywhere.
  xargs -P"$jobs" -I{} "$@" -quiet -O2 -march=armv8-a+crc+simd -fstack-protector-strong {} -o /dev/null <"$work/inputs"
  echo "$(date +%s.%N) - $start" | bc
}
cross_cc1_seconds=$(compile_all "$cross_cc1")
emulated_cc1_seconds=$(compile_all qemu-aarch64 "$emulated_cc1")

echo
echo "PostgreSQL $version on $(nproc) cores, $(date -u +%Y-%m-%d):"
printf '| whole build, native x86_64 | %.0f s |\n' "$native"
printf '| whole build, cross aarch64 | %.0f s |\n' "$cross"
printf '| cross / native | %.2f× |\n' "$(echo "$cross / $native" | bc -l)"
printf '| cc1 on %d files of src/common + src/port, cross compiler | %.1f s |\n' "$count" "$cross_cc1_seconds"
printf '| the same under qemu-aarch64 (arm64 cc1) | %.1f s |\n' "$emulated_cc1_seconds"
printf '| emulated / cross | %.1f× |\n' "$(echo "$emulated_cc1_seconds / $cross_cc1_seconds" | bc -l)"
