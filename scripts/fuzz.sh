#!/usr/bin/env bash
# Long property-based fuzzing of the parsers a user can feed (manifest JSON, the image
# decoding front door, CSV/JSON importers, hand-edited manifest.csv, COCO JSON).
#
#   scripts/fuzz.sh DURATION [CASES]     e.g. scripts/fuzz.sh 1h   (DURATION: 90s, 30m, 2h)
#
# Runs the same proptest properties as the test suite (which uses a few dozen cases each)
# in rounds of CASES cases (default 2000) with a fresh random seed per round, until
# DURATION has passed. A failing round stops with proptest's minimal failing input in
# target/fuzz/fuzz.log: turn it into a regression test. Prints a JSON summary at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:?usage: scripts/fuzz.sh DURATION [CASES]}
cases=${2:-2000}
case "$duration" in
  *h) secs=$(( ${duration%h} * 3600 )) ;;
  *m) secs=$(( ${duration%m} * 60 )) ;;
  *s) secs=${duration%s} ;;
  *) secs=$duration ;;
esac
target=${CARGO_TARGET_DIR:-target}
log_dir="$target/fuzz"
mkdir -p "$log_dir"
log="$log_dir/fuzz.log"
: > "$log"

# The fuzz properties, as `package|cargo test target arguments|test name filter`.
suites=(
  "sleeve-shared|--features image --test integration|fuzz::"
  "sleeve-data|--test integration|fuzz::"
  "sleeve-synth|--lib|coco::fuzz::"
)
# Build once and run the test executables directly (no cargo lock held between rounds).
exes=()
for s in "${suites[@]}"; do
  IFS='|' read -r pkg args filter <<<"$s"
  # shellcheck disable=SC2086
  exe=$(cargo test -q -p "$pkg" $args --no-run --message-format=json 2>>"$log" |
    python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        print(m["executable"])' | tail -1)
  [ -x "$exe" ] || { echo "fuzz: no test executable for $pkg" >&2; exit 2; }
  exes+=("$exe|$filter")
done

start=$(date +%s)
rounds=0
status=ok
while [ $(( $(date +%s) - start )) -lt "$secs" ]; do
  for e in "${exes[@]}"; do
    IFS='|' read -r exe filter <<<"$e"
    seed=$(od -An -N8 -tu8 /dev/urandom | tr -d ' ')
    echo "== round $rounds $(basename "$exe") $filter cases=$cases seed=$seed" >>"$log"
    if ! PROPTEST_CASES=$cases PROPTEST_RNG_SEED=$seed "$exe" -q "$filter" >>"$log" 2>&1; then
      status=failed
      break 2
    fi
  done
  rounds=$((rounds + 1))
done
elapsed=$(( $(date +%s) - start ))
printf '{"status": "%s", "seconds": %d, "rounds": %d, "cases_per_property_per_round": %d, "cases_per_property": %d, "log": "%s"}\n' \
  "$status" "$elapsed" "$rounds" "$cases" "$((rounds * cases))" "$log"
[ "$status" = ok ]
