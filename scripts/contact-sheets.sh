#!/usr/bin/env bash
# Contact sheets of the synthetic-data generators: runs each generator with a fixed seed and
# draws a PNG grid of 32 random outputs with their ground truth on top (PA boxes green,
# look-alike hard negatives orange, sleeve outline cyan with its top-left corner red).
#
#   scripts/contact-sheets.sh [--out DIR] [--covers DIR] [--template PNG] [--count N] [--seed S]
#
#   --out DIR       where the generated sets and the sheets go (default out/sheets)
#   --covers DIR    real covers (ImageFolder tree, flat folder or `sleeve dataset` directory):
#                   adds pa-covers and scenes-covers sheets drawn from them
#   --template PNG  a Parental Advisory label image to paste instead of the drawn badge:
#                   adds pa-template (and uses it for pa-covers)
#   --count N       images generated per set (default 200; the sheet shows 32 of them)
#   --seed S        generator seed (default 1)
#
# Writes DIR/<set>/ (images + annotations) and DIR/<set>.png for the sets
#   pa          procedural covers with drawn badges   (sleeve synth pa)
#   pa-template procedural covers, --template badge   (with --template)
#   pa-covers   real covers                           (with --covers)
#   scenes      kiosk camera frames, procedural covers (sleeve synth scenes)
#   scenes-covers  the same with real covers          (with --covers)
#   covers      genre-styled procedural demo covers   (sleeve synth covers)
# Env: SLEEVE=path/to/sleeve to use a built binary (default: `cargo run -p sleeve-host`,
#      dev profile; deps are built at opt-level 3 so the dev build is fast enough).
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=out/sheets
COVERS=""
TEMPLATE=""
COUNT=200
SEED=1
while [ $# -gt 0 ]; do
    case "$1" in
        --out) OUT="$2"; shift 2 ;;
        --covers) COVERS="$2"; shift 2 ;;
        --template) TEMPLATE="$2"; shift 2 ;;
        --count) COUNT="$2"; shift 2 ;;
        --seed) SEED="$2"; shift 2 ;;
        -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
        *) echo "contact-sheets: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
done
[ -z "$COVERS" ] || [ -d "$COVERS" ] || { echo "contact-sheets: --covers $COVERS is not a folder" >&2; exit 2; }
[ -z "$TEMPLATE" ] || [ -f "$TEMPLATE" ] || { echo "contact-sheets: --template $TEMPLATE not found" >&2; exit 2; }
[ "$COUNT" -ge 32 ] 2>/dev/null || { echo "contact-sheets: --count must be a number >= 32" >&2; exit 2; }

if [ -n "${SLEEVE:-}" ]; then
    sleeve() { "$SLEEVE" "$@"; }
else
    cargo build -q -p sleeve-host >&2
    BIN="${CARGO_TARGET_DIR:-target}/debug/sleeve"
    sleeve() { "$BIN" "$@"; }
fi
mkdir -p "$OUT"

# gen NAME SUBCOMMAND ARGS... : generate a set (replacing an older one) and draw its sheet.
# N (the item count, for the speed line) defaults to COUNT.
gen() {
    local n="${N:-$COUNT}"
    local name="$1"; shift
    local sub="$1"; shift
    echo "== $name: sleeve synth $sub $*" >&2
    local t0 t1
    t0=$(date +%s.%N)
    sleeve synth "$sub" --out "$OUT/$name" --seed "$SEED" --force "$@"
    t1=$(date +%s.%N)
    sleeve synth sheet --input "$OUT/$name" --out "$OUT/$name.png" --count 32 --seed "$SEED"
    awk -v n="$name" -v a="$t0" -v b="$t1" -v c="$n" \
        'BEGIN { printf "%-14s %6d items in %6.1f s  (%.1f items/s, including writing files)\n", n, c, b - a, c / (b - a) }' >&2
}

gen pa pa --count "$COUNT"
[ -z "$TEMPLATE" ] || gen pa-template pa --count "$COUNT" --template "$TEMPLATE"
if [ -n "$COVERS" ]; then
    gen pa-covers pa --count "$COUNT" --covers "$COVERS" ${TEMPLATE:+--template "$TEMPLATE"}
fi
gen scenes scenes --count "$COUNT"
[ -z "$COVERS" ] || gen scenes-covers scenes --count "$COUNT" --covers "$COVERS"
PER_GENRE=$(( (COUNT + 4) / 5 ))
N=$((PER_GENRE * 5)) gen covers covers --per-genre "$PER_GENRE"

echo "sheets:" >&2
ls -1 "$OUT"/*.png
