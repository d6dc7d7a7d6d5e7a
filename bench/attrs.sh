#!/usr/bin/env bash
# Benchmark: what listing the flake's package names costs as the catalog
# grows, with the real nix (Debian's nix-bin), side by side in one run with
# the floor: reading and parsing the same generated JSON and nothing else.
#   pgbin's flake:  nix eval .#packages.x86_64-linux --apply builtins.attrNames
#   floor:          nix eval of the number of entries in the same files
# The generated data is synthetic but shaped like the real one: 18.6's 24
# entries (12 targets, built on two systems) repeated as 18.0, 18.1, ... up
# to N entries, the newest carrying the aliases, as `pgbin generate` writes.
# nixpkgs is the test stub (tests/nix/stub-nixpkgs): listing names must not
# evaluate a package set, so the stub's cost does not enter.
# Usage: bash bench/attrs.sh [N...]   (default: 240 480 960 1920 3840)
set -euo pipefail
cd "$(dirname "$0")/.."
export NIX_CONFIG=$'experimental-features = nix-command flakes\nsubstituters =\neval-cache = false'
repo=$PWD
stub=$repo/tests/nix/stub-nixpkgs
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sizes=("$@")
((${#sizes[@]})) || sizes=(240 480 960 1920 3840)

make_flake() { # $1: number of entries (a multiple of 24)
  local dir=$work/flake-$1
  mkdir -p "$dir/nix/generated"
  cp "$repo/flake.nix" "$repo/flake.lock" "$dir/"
  cp "$repo"/nix/*.nix "$dir/nix/"
  cp "$repo/nix/generated/systems.json" "$dir/nix/generated/"
  python3 - "$repo/nix/generated/postgresql-18.json" "$dir/nix/generated/postgresql-18.json" "$1" <<'PY'
import json, sys
source, target, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
data = json.load(open(source))
template = [e for e in data["entries"] if e["version"] == "18.6"]
releases = count // len(template)
entries = []
for minor in range(releases):
    for e in template:
        e = dict(e)
        e["version"] = f"18.{minor}"
        e["attr"] = f"postgresql-18_{minor}-{e['targetSuffix']}"
        if minor != releases - 1:
            e["aliases"] = []
        entries.append(e)
data["entries"] = entries
json.dump(data, open(target, "w"), indent=2)
PY
  echo "$dir"
}

# The project's own flake and data, as committed, for comparison.
own_flake() {
  local dir=$work/flake-own
  mkdir -p "$dir/nix"
  cp "$repo/flake.nix" "$repo/flake.lock" "$dir/"
  cp "$repo"/nix/*.nix "$dir/nix/"
  cp -r "$repo/nix/generated" "$dir/nix/"
  echo "$dir"
}

measure() { # $1: label, $2: flake directory
  local dir=$2 n=$1
  listing="nix eval --json --no-write-lock-file --override-input nixpkgs path:$stub path:$dir#packages.x86_64-linux --apply builtins.attrNames"
  floor="nix eval --impure --expr 'let g = $dir/nix/generated; in builtins.length (builtins.concatMap (f: (builtins.fromJSON (builtins.readFile (g + \"/\${f}\"))).entries or [ ]) (builtins.attrNames (builtins.readDir g)))'"
  count=$(eval "$listing" 2>/dev/null | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
  hyperfine --warmup 1 --runs 10 --export-json "$work/$n.json" "$listing" "$floor" >/dev/null 2>&1
  python3 - "$work/$n.json" "$n" "$count" <<'PY'
import json, sys
runs = json.load(open(sys.argv[1]))["results"]
flake, floor = runs[0], runs[1]
print(f"{sys.argv[2]:>7}  {flake['mean']*1000:7.0f} ms ± {flake['stddev']*1000:3.0f} ({sys.argv[3]} names)   {floor['mean']*1000:5.0f} ms   {flake['mean']/floor['mean']:4.1f}x")
PY
}

echo "entries  flake attrNames (mean ± σ)   floor: JSON only   ratio"
for n in "${sizes[@]}"; do
  measure "$n" "$(make_flake "$n")"
done
measure "own: $(python3 -c 'import json,glob; print(sum(len(json.load(open(f)).get("entries", [])) for f in glob.glob("nix/generated/postgresql-*.json")))')" "$(own_flake)"
