#!/usr/bin/env bash
# Benchmark: verifying a downloaded release set (archive, .sha256, .asc,
# provenance and its .asc) offline. Runs, side by side in one hyperfine
# session on the same files:
#   pgbin verify-artifact ARCHIVE --keyring K
#       (.sha256, both signatures, provenance subject and source trust)
#   sha256sum -c ARCHIVE.sha256 && sqv ARCHIVE.asc && sqv STATEMENT.asc
#       (the same integrity and signature checks with the standard tools;
#        they do not read the provenance)
# and prints pgbin's time as a ratio of the standard tools'.
# The archive is the real 18.6 host build (from pgbin's cache after the
# first build); the key is generated for the run with gpg.
# Usage: bash bench/verify-artifact.sh   (after bash scripts/setup.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --quiet
pgbin=$PWD/target/release/pgbin
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

archive=$($pgbin build 18.6 --backend host --out "$work/dist" 2>/dev/null | head -1)
name=$(basename "$archive")
export GNUPGHOME="$work/gnupg"
mkdir -m 700 "$GNUPGHOME"
gpg --batch --quiet --passphrase '' --quick-gen-key 'pgbin bench <bench@pgbin.invalid>' ed25519 sign never 2>/dev/null
gpg --batch --quiet --armor --export-secret-keys >"$work/signing-key.asc"
gpg --batch --quiet --export >"$work/keyring.pgp"
$pgbin sign "$archive" "$archive.intoto.json" --key "$work/signing-key.asc" >/dev/null 2>&1

cd "$work/dist"
hyperfine --style basic --warmup 3 --runs 30 --export-json "$work/result.json" \
  -n pgbin "$pgbin verify-artifact $name --keyring $work/keyring.pgp" \
  -n 'sha256sum+sqv' "sha256sum -c --quiet $name.sha256 && sqv --keyring $work/keyring.pgp $name.asc $name >/dev/null && sqv --keyring $work/keyring.pgp $name.intoto.json.asc $name.intoto.json >/dev/null" >&2

python3 - "$work/result.json" "$(stat -c %s "$name")" <<'PY'
import json, sys
results = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
ours, theirs = results["pgbin"]["mean"], results["sha256sum+sqv"]["mean"]
print(f"archive: {int(sys.argv[2]):,} bytes")
print(f"pgbin verify-artifact: mean {ours*1000:.1f} ms; sha256sum -c + 2x sqv: mean {theirs*1000:.1f} ms")
print(f"ratio pgbin / standard tools: {ours/theirs:.2f}")
PY
