#!/usr/bin/env bash
# Benchmark: comparing and hashing real PostgreSQL installs, side by side in
# one run with the established tools:
#   identical installs:   pgbin diff  vs  diffoscope  vs  diff -r(q)
#   realistic differences (a text file naming another build path, one
#   changed ELF byte, one archive rebuilt with a later mtime):
#                         pgbin diff  vs  diffoscope  vs  diff -r
#   NAR hashing:          pgbin hash  vs  nix hash path, and the floor:
#                         openssl dgst -sha256 over the same tree's NAR,
#                         already serialised to one file (SHA-256 alone)
# plus pgbin diff's peak memory on the two archives (GNU time).
# Usage: bash bench/diff.sh   (after bash scripts/setup.sh; builds 18.6 once)
set -euo pipefail
cd "$(dirname "$0")/.."
export NIX_CONFIG=$'experimental-features = nix-command flakes\nsubstituters ='
cargo build --release --locked --quiet
pgbin=$PWD/target/release/pgbin
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

archive=$($pgbin build 18.6 --backend host --out "$work/dist" 2>/dev/null | head -1)
stem=$(basename "$archive" .tar.gz)
mkdir -p "$work/a" "$work/b" "$work/c"
tar xzf "$archive" -C "$work/a"
tar xzf "$archive" -C "$work/b"
tar xzf "$archive" -C "$work/c"
a=$work/a/$stem b=$work/b/$stem c=$work/c/$stem
# Realistic differences in c: another build path in PGXS's Makefile.global,
# one changed byte in libpq's .text, an archive with a later mtime.
sed -i 's|/usr/src/postgresql-18.6|/build/other-path/postgresql-18.6|' "$c/lib/pgxs/src/Makefile.global"
python3 - "$c/lib/libpq.so.5" <<'PY'
import sys
path = sys.argv[1]
data = bytearray(open(path, "rb").read())
data[0x4000] ^= 0xFF
open(path, "wb").write(data)
PY
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@1700000000 -C "$work/a" -czf "$work/a.tar.gz" "$stem"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@1700000099 -C "$work/a" -czf "$work/later.tar.gz" "$stem"

command -v diffoscope >/dev/null || { echo "diffoscope missing: apt-get install diffoscope-minimal" >&2; exit 2; }
run() { hyperfine --style basic -N -i --warmup 1 --runs "$1" --export-json "$2" "${@:3}" >&2; }
run 20 "$work/identical.json" \
  -n 'pgbin diff' "$pgbin diff $a $b" \
  -n 'diffoscope' "diffoscope $a $b" \
  -n 'diff -rq' "diff -rq $a $b"
run 3 "$work/different.json" \
  -n 'pgbin diff' "$pgbin diff $a $c" \
  -n 'diffoscope' "diffoscope $a $c" \
  -n 'diff -r' "diff -r $a $c"
run 5 "$work/archives.json" \
  -n 'pgbin diff' "$pgbin diff $work/a.tar.gz $work/later.tar.gz" \
  -n 'diffoscope' "diffoscope $work/a.tar.gz $work/later.tar.gz"
nix-store --dump "$a" > "$work/a.nar"
run 20 "$work/hash.json" \
  -n 'pgbin hash' "$pgbin hash $a" \
  -n 'nix hash path' "nix hash path $a" \
  -n 'openssl dgst' "openssl dgst -sha256 $work/a.nar"
[ "$($pgbin hash "$a")" = "$(nix hash path "$a")" ] || { echo "hash mismatch" >&2; exit 1; }
[ "$($pgbin hash "$a")" = "sha256-$(openssl dgst -sha256 -binary "$work/a.nar" | base64)" ] || { echo "NAR dump mismatch" >&2; exit 1; }
# pgbin diff exits 1 here (the archives differ); only its peak RSS matters.
peak=$( { /usr/bin/time -f '%M' "$pgbin" diff "$work/a.tar.gz" "$work/later.tar.gz" >/dev/null || true; } 2>&1 | tail -1)

python3 - "$work" "$peak" "$(du -sb "$a" | cut -f1)" "$(find "$a" -type f | wc -l)" <<'PY'
import json, sys
work, peak, size, files = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
def load(name, statistic="mean"):
    return {r["command"]: r[statistic] for r in json.load(open(f"{work}/{name}.json"))["results"]}
print(f"install: {size/1e6:.1f} MB in {files} files")
for name, title in [("identical", "identical installs"), ("different", "installs with differences"),
                    ("archives", "archives differing in mtime"), ("hash", "NAR hash")]:
    r = load(name)
    print(f"{title}: " + ", ".join(f"{k} {v*1000:.0f} ms" for k, v in r.items()))
for statistic in ["mean", "median"]:
    i = load("identical", statistic)
    print(f"identical ({statistic}): diffoscope/pgbin = {i['diffoscope']/i['pgbin diff']:.1f}x (target >= 50x); "
          f"pgbin/diff -rq = {i['pgbin diff']/i['diff -rq']:.2f} (target <= 2)")
d = load("different")
print(f"different: diffoscope/pgbin = {d['diffoscope']/d['pgbin diff']:.0f}x")
for statistic in ["mean", "median"]:
    r = load("archives", statistic)
    print(f"archives ({statistic}): diffoscope/pgbin = {r['diffoscope']/r['pgbin diff']:.1f}x (goal >= 30x)")
h = load("hash", "median")
print(f"hash (median): pgbin/nix = {h['pgbin hash']/h['nix hash path']:.2f} (target <= 0.5); "
      f"SHA-256 alone over the NAR (openssl) / nix = {h['openssl dgst']/h['nix hash path']:.2f}")
print(f"pgbin diff peak memory on the archives: {peak/1024:.0f} MB (target < 200 MB)")
PY
