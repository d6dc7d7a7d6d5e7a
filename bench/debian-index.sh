#!/usr/bin/env bash
# Benchmark: reading a Debian suite's signed source index, the refresh's hot
# path, side by side in one hyperfine session on the same files, served from
# a loopback HTTP server (the network is out of the measurement):
#   pgbin catalog refresh --debian-suite SUITE   (InRelease signature, then
#     Sources.xz and Sources checked against it, then PostgreSQL's paragraphs)
#   curl + gpgv + xz + sha256sum                 (what apt does to the same
#     files: fetch, check the InRelease signature, hash the compressed and
#     the decompressed index)
# and the floors: decompressing the index with xz alone, and SHA-256 of the
# decompressed index at line rate (openssl).
# The suite's files are fetched once from the configured mirror.
# Usage: bash bench/debian-index.sh [SUITE]   (default: trixie)
set -euo pipefail
cd "$(dirname "$0")/.."
suite=${1:-trixie}
cargo build --release --locked --quiet
pgbin=$PWD/target/release/pgbin
work=$(mktemp -d)
server=
trap '[[ -n $server ]] && kill "$server"; rm -rf "$work"' EXIT

mirror=${PGBIN_DEBIAN_MIRROR:-$(awk '/^URIs:/ { print $2; exit } /^deb / { print $2; exit }' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null | head -1)}
dists=$work/root/dists/$suite
mkdir -p "$dists/main/source"
curl -sSf -o "$dists/InRelease" "$mirror/dists/$suite/InRelease"
curl -sSf -o "$dists/main/source/Sources.xz" "$mirror/dists/$suite/main/source/Sources.xz"
xz -dc "$dists/main/source/Sources.xz" >"$work/Sources"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -m http.server "$port" --bind 127.0.0.1 --directory "$work/root" >/dev/null 2>&1 &
server=$!
for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$port/dists/$suite/InRelease" && break; sleep 0.05; done
local=http://127.0.0.1:$port

hyperfine --style basic --warmup 2 --runs 10 --export-json "$work/result.json" \
  -n pgbin "PGBIN_DEBIAN_MIRROR=$local $pgbin catalog refresh --debian-suite $suite --json >/dev/null" \
  -n 'curl+gpgv+xz+sha256sum' "curl -sf $local/dists/$suite/InRelease -o $work/InRelease && gpgv --keyring /usr/share/keyrings/debian-archive-keyring.gpg $work/InRelease 2>/dev/null && curl -sf $local/dists/$suite/main/source/Sources.xz -o $work/Sources.xz && sha256sum $work/Sources.xz >/dev/null && xz -dc $work/Sources.xz | sha256sum >/dev/null" \
  -n 'floor: xz -dc' "xz -dc $dists/main/source/Sources.xz >/dev/null" \
  -n 'floor: sha256 of Sources' "openssl dgst -sha256 $work/Sources >/dev/null" >&2

python3 - "$work/result.json" "$(stat -c %s "$work/Sources")" "$(stat -c %s "$dists/main/source/Sources.xz")" <<'PY'
import json, sys
results = {r["command"]: r["mean"] for r in json.load(open(sys.argv[1]))["results"]}
size, xz = int(sys.argv[2]), int(sys.argv[3])
ours, theirs = results["pgbin"], results["curl+gpgv+xz+sha256sum"]
print(f"index: {size:,} bytes ({xz:,} compressed)")
for name, mean in results.items():
    print(f"{name}: {mean*1000:.0f} ms")
print(f"pgbin / curl+gpgv+xz+sha256sum: {ours/theirs:.2f}")
print(f"pgbin / (xz -dc + sha256 floor): {ours/(results['floor: xz -dc'] + results['floor: sha256 of Sources']):.2f}")
PY
