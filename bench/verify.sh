#!/usr/bin/env bash
# Benchmark: verifying a PostgreSQL tarball and its signed Debian .dsc.
# Runs, side by side in one hyperfine session on the same files:
#   pgbin verify 18.6 TARBALL --evidence DSC   (hash + OpenPGP + lock + policy)
#   sha256sum TARBALL && gpgv --keyring ONE-KEY DSC
# and prints pgbin's time as a ratio of the established pipeline's. (sqv 1.1
# verifies detached signatures only, so it cannot check a clearsigned .dsc.)
# Usage: bash bench/verify.sh   (after bash scripts/setup.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --quiet
pgbin=$PWD/target/release/pgbin
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

tarball=$($pgbin fetch 18.6 2>/dev/null)
dsc=$PWD/evidence/debian/postgresql-18_18.6-3.dsc
cert=$PWD/keys/5C48FE6157F49179597087C64C5A6BAB12D2A7AE.asc
# A one-key binary keyring for gpgv, dearmored without gpg.
python3 - "$cert" "$work/one-key.gpg" <<'PY'
import base64, sys
lines = open(sys.argv[1]).read().splitlines()
body = lines[lines.index("") + 1:]
data = "".join(l for l in body if not l.startswith(("=", "-----")))
open(sys.argv[2], "wb").write(base64.b64decode(data))
PY

hyperfine --style basic --warmup 3 --runs 30 --export-json "$work/result.json" \
  -n pgbin "$pgbin verify 18.6 $tarball --evidence $dsc" \
  -n 'sha256sum+gpgv' "sha256sum $tarball && gpgv --keyring $work/one-key.gpg $dsc" >&2

python3 - "$work/result.json" <<'PY'
import json, sys
results = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
ours = results["pgbin"]["mean"]
print(f"tarball: 22,632,314 bytes; pgbin verify mean {ours*1000:.1f} ms")
theirs = results["sha256sum+gpgv"]["mean"]
print(f"sha256sum+gpgv: mean {theirs*1000:.1f} ms")
ratio = ours / theirs
print(f"target ratio <= 0.3 against sha256sum+gpgv: {'met' if ratio <= 0.3 else 'NOT met'} ({ratio:.3f})")
PY
