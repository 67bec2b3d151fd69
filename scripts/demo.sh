#!/usr/bin/env bash
# The main job, end to end, on a fresh machine:
#   setup -> build -> demo data -> import/split/stats -> train classifier (ImageNet start,
#   frozen features) -> train PA detector -> evaluate -> export ONNX -> int8 -> bundle ->
#   sleeve-edge on synthetic camera scenes.
# Everything lands in out/demo/ (or --out DIR). Needs no camera, GPU or network beyond
# package registries. Re-running reuses finished steps (delete out/demo to start over).
#
#   scripts/demo.sh                       # procedural genre-styled covers (no real data needed)
#   scripts/demo.sh --covers DIR          # a folder-per-genre tree of real covers instead
#   scripts/demo.sh --quick               # smallest sizes, a few minutes after the build
#   scripts/demo.sh --no-setup            # skip apt/pip (already set up)
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=out/demo
COVERS=""
QUICK=0
SETUP=1
PROFILE_FLAG=()
BIN=target/debug
while [[ $# -gt 0 ]]; do
    case "$1" in
        --covers) COVERS="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        --quick) QUICK=1; shift ;;
        --no-setup) SETUP=0; shift ;;
        --release) PROFILE_FLAG=(--release); BIN=target/release; shift ;;
        -h|--help) sed -n 2,12p "$0"; exit 0 ;;
        *) echo "demo.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
    esac
done

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
T0=$(date +%s)

if [[ $SETUP == 1 ]]; then
    step "setup (system packages, Rust, Python peers)"
    scripts/setup.sh
fi

step "build sleeve and sleeve-edge"
# The dev profile builds dependencies at opt-level 3 and shares them with scripts/test.sh;
# --release gives the thin-LTO build used for deployment.
cargo build "${PROFILE_FLAG[@]}" -p sleeve-host -p sleeve-edge --features sleeve-edge/synthetic
SLEEVE="$BIN/sleeve"
EDGE="$BIN/sleeve-edge"
mkdir -p "$OUT"

if [[ $QUICK == 1 ]]; then
    PER_GENRE=40; CLS_BUDGET=2m; DET_IMAGES=240; DET_BUDGET=3m; SCENES=24; CALIB=16
else
    PER_GENRE=120; CLS_BUDGET=10m; DET_IMAGES=800; DET_BUDGET=15m; SCENES=60; CALIB=64
fi

WEIGHTS=models/pretrained/mobilenet_v2_1.0_224_quant.tflite
SRC="$COVERS"
if [[ -z "$SRC" ]]; then
    SRC="$OUT/covers"
    if [[ ! -d "$SRC" ]]; then
        step "demo covers: procedural, genre-styled ImageFolder ($PER_GENRE per genre)"
        "$SLEEVE" synth covers --out "$SRC" --per-genre "$PER_GENRE" --seed 7
    fi
fi

DATA="$OUT/data"
if [[ ! -f "$DATA/manifest.csv" ]]; then
    step "import + split"
    "$SLEEVE" dataset import --from folder "$SRC" --out "$DATA"
    "$SLEEVE" dataset split --data "$DATA" --val 0.1 --test 0.1 --seed 1
fi
step "dataset stats"
"$SLEEVE" dataset stats --data "$DATA" --plot "$OUT/dataset-stats.png"

step "train the genre classifier (ImageNet MobileNetV2, frozen features + head)"
if [[ -f "$OUT/classifier/summary.json" ]]; then
    echo "already trained: $OUT/classifier (delete it to retrain)"
else
    "$SLEEVE" train classifier --data "$DATA" --out "$OUT/classifier" \
        --weights "$WEIGHTS" --size 224 --time-budget "$CLS_BUDGET" --seed 1
fi
step "evaluate the classifier on the test split"
"$SLEEVE" eval classifier --checkpoint "$OUT/classifier/classifier" --data "$DATA" --out "$OUT/eval-classifier"

step "train the Parental Advisory detector (SSD-Lite, synthetic labels)"
if [[ -f "$OUT/detector/detector.json" ]]; then
    echo "already trained: $OUT/detector (delete it to retrain)"
else
    "$SLEEVE" train detector --covers "$SRC" --out "$OUT/detector" --weights "$WEIGHTS" \
        --train-images "$DET_IMAGES" --time-budget "$DET_BUDGET" --seed 1
fi
step "evaluate the detector on held-out synthetic covers and scenes"
"$SLEEVE" eval detector --checkpoint "$OUT/detector/best" --covers "$SRC" --count 200 --scenes 100 --out "$OUT/eval-detector"

step "export both models to ONNX, quantize to int8, write the bundle"
"$SLEEVE" export bundle --classifier "$OUT/classifier" --detector "$OUT/detector" \
    --out "$OUT/bundle" --int8 both --calib "$DATA" --calib-count "$CALIB" \
    --eval-data "$DATA" --ap-count 100 --pa-covers "$SRC" \
    --detector-eval "$OUT/eval-detector/detector_eval.json"
"$SLEEVE" export verify --bundle "$OUT/bundle"

step "edge: synthetic kiosk camera frames -> sleeve-edge"
SCENE_DIR="$OUT/scenes"
if [[ ! -d "$SCENE_DIR" ]]; then
    "$SLEEVE" synth scenes --covers "$SRC" --out "$SCENE_DIR" --count "$SCENES" --seed 99
fi
mkdir -p "$OUT/edge"
"$EDGE" run --bundle "$OUT/bundle" --files "$SCENE_DIR/frames" \
    --snapshots "$OUT/edge/frames" --json "$OUT/edge/decisions.jsonl" --every-frame
"$EDGE" bench --bundle "$OUT/bundle" --files "$SCENE_DIR/frames" > "$OUT/edge/bench.json"

step "done in $(( $(date +%s) - T0 )) s"
cat <<EOF
  dataset stats        $OUT/dataset-stats.png
  classifier metrics   $OUT/eval-classifier/
  detector metrics     $OUT/eval-detector/
  model bundle         $OUT/bundle/  (manifest.json, MODEL_CARD.md)
  kiosk screens        $OUT/edge/frames/*.png
  kiosk decisions      $OUT/edge/decisions.jsonl
  edge latency         $OUT/edge/bench.json
EOF
