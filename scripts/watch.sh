#!/usr/bin/env bash
# The watch workflow's work (.github/workflows/watch.yml), runnable anywhere:
# reads Debian's signed source indexes (and the witness clones given), writes
# the proposals pgbin catalog refresh makes, records each catalogued release
# with pgbin lock add (which verifies every proposal again), regenerates the
# flake's data, and writes the pull request's description. It never
# overrides a rule: a proposal lock add refuses (a downgrade, changed
# evidence) is listed for review instead of being recorded.
#
# Usage: scripts/watch.sh OUT_DIR [--witness-clone OWNER/REPO=DIR]...
# Environment: PGBIN (default ./target/release/pgbin); PGBIN_WATCH_SUITES
# (space-separated Debian suites; default: pgbin's --debian list).
# Exit: 0 with OUT_DIR/body.md written (changes, if any, are in the work
# tree); 2 when the refresh could not run.
set -euo pipefail
out=${1:?usage: scripts/watch.sh OUT_DIR [--witness-clone OWNER/REPO=DIR]...}
shift
pgbin=${PGBIN:-./target/release/pgbin}
suites=(--debian)
if [[ -n ${PGBIN_WATCH_SUITES:-} ]]; then
  suites=()
  for suite in $PGBIN_WATCH_SUITES; do suites+=(--debian-suite "$suite"); done
fi
mkdir -p "$out/proposals"
status=0
"$pgbin" catalog refresh "${suites[@]}" "$@" --proposals "$out/proposals" --json >"$out/refresh.json" || status=$?
if ((status > 1)); then
  echo "watch: pgbin catalog refresh could not run (exit $status)" >&2
  exit "$status"
fi

# "VERSION FILE" for every proposal of a catalogued release.
jq -r '
  (.releases[] | select(.catalogued) | .version as $v | .records[] | select(.proposal) | "\($v) \(.proposal)"),
  (.debian[] | select(.catalogued and .proposal) | "\(.version) \(.proposal)")
' "$out/refresh.json" | sort -u >"$out/proposed.txt"

body="$out/body.md"
echo "Found by \`pgbin catalog refresh\` ($(date -u +%Y-%m-%dT%H:%M:%SZ)); every proposal verified again by \`pgbin lock add\`." >"$body"
echo >>"$body"
for version in $(cut -d' ' -f1 "$out/proposed.txt" | sort -uV); do
  mapfile -t files < <(awk -v v="$version" '$1 == v { print $2 }' "$out/proposed.txt")
  if "$pgbin" lock add "$version" --evidence "${files[@]}" "$@" >>"$out/lock-add.log" 2>"$out/lock-add.err"; then
    echo "- $version: recorded ($(grep -o 'locked [^:]*: [a-z]*' "$out/lock-add.log" | tail -1))" >>"$body"
  else
    echo "- $version: not recorded, for review: $(tail -1 "$out/lock-add.err")" >>"$body"
  fi
done
jq -r '
  (.uncatalogued[] | "- \(.): not in data/catalog.toml; add it with its upstream release date, then run this again"),
  (.uncatalogued_pre_releases[] | "- pre-release \(.): not in data/catalog.toml (pre_releases)"),
  (.releases[] | select(.refused) | "- REFUSED: \(.refused)"),
  (.debian[] | select(.refused) | "- REFUSED: \(.refused)")
' "$out/refresh.json" >>"$body"
"$pgbin" generate >/dev/null
