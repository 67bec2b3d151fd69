#!/usr/bin/env bash
# Store-catalogue recognition on synthetic kiosk scenes of real covers. Prints one JSON object:
# catalogue build stats, sleeve-found rates, retrieval top-1, recognition and false-match rate
# at the default threshold/margin, a calibrated operating point checked on held-out scenes,
# a threshold sweep, int8 search time at 1k/10k/100k generated entries and the file size at 10k.
#
#   scripts/bench-catalogue.sh [COVERS_DIR] [CATALOGUE_SIZE] [QUERIES]
#
# COVERS_DIR (default ../shared/data/covers5): every image under it is enrolled with
# `sleeve catalogue build --from folder` (duplicates dropped by the build), then all but
# CATALOGUE_SIZE (default 3000) entries are removed again with `sleeve catalogue remove`:
# those covers are the *uncatalogued* ones. The build's dedupe keeps near-duplicates out,
# but not every other scan or photo of the same record: the covers listed in
# models/catalogue-data/same-record.csv (confirmed by eye) are dropped from the uncatalogued
# set when their partner is catalogued (SAME_RECORD=FILE for another list, SAME_RECORD= for
# none). QUERIES (default 1000) catalogued covers and every uncatalogued one are rendered
# into one scene each (`sleeve_synth::scenes`, default camera settings, always a sleeve).
# Env: PROFILE=dev for the dev build (default release; search times are only meaningful
# in release); VIEWS=N descriptors per cover (default 1); SEED (default 1); SWEEP=1 keeps
# the threshold sweep in the output; HOLDS=N also renders every cover as an N-frame hold and
# reports the kiosk's per-hold answer (--record-frames matching frames in a row; default 0: off);
# CANDIDATES=K finder outlines matched per frame (default: the kiosk's); ALIGN=N entries an
# unmatched outline is aligned to (default: the kiosk's; 0: off); RETRY=LOW,HIGH|off the
# finder's second pass on frames without a match (default: the kiosk's, 10,30).
set -euo pipefail
cd "$(dirname "$0")/.."
COVERS="$(realpath "${1:-../shared/data/covers5}")"
SIZE="${2:-3000}"
QUERIES="${3:-1000}"
PROFILE="${PROFILE:-release}"
VIEWS="${VIEWS:-1}"
SEED="${SEED:-1}"
HOLDS="${HOLDS:-0}"
CANDIDATES="${CANDIDATES:-}"
ALIGN="${ALIGN:-}"
RETRY="${RETRY:-}"
SAME_RECORD="${SAME_RECORD-models/catalogue-data/same-record.csv}"
[ -d "$COVERS" ] || { echo "bench-catalogue: no covers folder $COVERS" >&2; exit 2; }
cargo build -q -p sleeve-host --profile "$PROFILE" >&2
cargo build -q -p sleeve-edge --features synthetic --example catalogue_eval --profile "$PROFILE" >&2
DIR=$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")
T="${CARGO_TARGET_DIR:-target}/$DIR"

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
echo "== sleeve catalogue build --from folder $COVERS" >&2
"$T/sleeve" catalogue build --from folder "$COVERS" --views "$VIEWS" --out "$TMP/cat.slvc" >"$TMP/build.json"
"$T/sleeve" catalogue stats "$TMP/cat.slvc" --entries >"$TMP/all.json"
python3 - "$TMP" "$SIZE" "$SEED" <<'PY'
import json, random, sys
tmp, size, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
entries = json.load(open(f"{tmp}/all.json"))["entries"]
random.Random(seed).shuffle(entries)
out = entries[size:]
open(f"{tmp}/remove.txt", "w").write(" ".join(str(e["id"]) for e in out))
open(f"{tmp}/negatives.txt", "w").write("".join(e["source"] + "\n" for e in out))
PY
if [ -s "$TMP/remove.txt" ]; then
  # shellcheck disable=SC2046
  "$T/sleeve" catalogue remove "$TMP/cat.slvc" --id $(cat "$TMP/remove.txt") >"$TMP/removed.json"
fi
"$T/sleeve" catalogue stats "$TMP/cat.slvc" >"$TMP/stats.json"
echo "== catalogue_eval: $QUERIES catalogued + $(wc -l <"$TMP/negatives.txt") uncatalogued scenes" >&2
"$T/examples/catalogue_eval" --catalogue "$TMP/cat.slvc" --negatives "$TMP/negatives.txt" \
  --queries "$QUERIES" --seed "$SEED" --holds "$HOLDS" \
  ${CANDIDATES:+--candidates "$CANDIDATES"} ${ALIGN:+--align "$ALIGN"} ${RETRY:+--retry-canny "$RETRY"} \
  ${SAME_RECORD:+--same-record "$SAME_RECORD"} >"$TMP/eval.json"
python3 - "$TMP" "$COVERS" "$VIEWS" "${SWEEP:-0}" <<'PY'
import json, sys
tmp, covers, views, keep_sweep = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
build = json.load(open(f"{tmp}/build.json"))
stats = json.load(open(f"{tmp}/stats.json"))
ev = json.load(open(f"{tmp}/eval.json"))
if not keep_sweep:
    ev.pop("sweep", None)
out = {
    "covers": covers,
    "views_per_cover": views,
    "build": {"images_enrolled": build["added"], "duplicates_dropped": len(build["duplicates"]),
              "skipped": len(build["skipped"])},
    "catalogue": {"entries": stats["entries"], "vectors": stats["vectors"], "dim": stats["dim"],
                  "bytes": stats["bytes"]},
    **ev,
}
print(json.dumps(out, indent=2))
PY
