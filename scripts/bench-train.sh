#!/usr/bin/env bash
# Training throughput of the classifier recipes on this machine. Prints one JSON object:
#
#   feature_extraction: frozen pretrained MobileNetV2 forward passes (images/s, seconds per
#                       pass over the subset) — the expensive part of the default recipe;
#   head_training:      linear head on the cached embeddings (items/s, seconds per epoch);
#   scratch_cnn:        the small scratch CNN trained end to end on augmented images
#                       (images/s, seconds per epoch, at SCRATCH_SIZE px);
#   fresh_views:        fine-tuning blocks N.. on freshly augmented images (frozen prefix
#                       forward only), one epoch per N in FRESH_BLOCKS (default "13 6"), at
#                       SIZE px (images/s and seconds per epoch, validation included);
#   plus the subset size, input size, thread count and CPU model.
#
#   scripts/bench-train.sh [IMAGE_FOLDER] [IMAGES_PER_CLASS]
#
# IMAGE_FOLDER is a folder-per-genre tree (default: ../shared/data/covers5). A subset of
# IMAGES_PER_CLASS images per genre (default 40) is linked into a temporary folder, so a run
# takes a few minutes on 2 cores. Everything runs with a fresh feature cache.
# Env: WEIGHTS (default models/pretrained/mobilenet_v2_1.0_224_quant.tflite), SIZE (224),
#      SCRATCH_SIZE (112), KEEP=1 keeps the temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${1:-../shared/data/covers5}"
PER_CLASS="${2:-40}"
WEIGHTS="${WEIGHTS:-models/pretrained/mobilenet_v2_1.0_224_quant.tflite}"
SIZE="${SIZE:-224}"
SCRATCH_SIZE="${SCRATCH_SIZE:-112}"
[ -d "$DATA" ] || { echo "bench-train: no image folder at $DATA" >&2; exit 2; }
[ -f "$WEIGHTS" ] || { echo "bench-train: no weights at $WEIGHTS" >&2; exit 2; }
command -v jq >/dev/null || { echo "bench-train: needs jq" >&2; exit 2; }

cargo build -q -p sleeve-host >&2
BIN="${CARGO_TARGET_DIR:-target}/debug/sleeve"
TMP=$(mktemp -d)
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$TMP"' EXIT

# subset: the first PER_CLASS images (sorted) of every genre, as symlinks
N=0
for g in "$DATA"/*/; do
  genre=$(basename "$g")
  mkdir -p "$TMP/data/$genre"
  while IFS= read -r f; do
    ln -s "$(realpath "$f")" "$TMP/data/$genre/"
    N=$((N + 1))
  done < <(find "$g" -maxdepth 1 -type f \( -iname '*.jpg' -o -iname '*.jpeg' -o -iname '*.png' \) | sort | head -n "$PER_CLASS")
done
[ "$N" -gt 0 ] || { echo "bench-train: no images under $DATA" >&2; exit 2; }

# 1. pretrained: feature extraction (plain view only) + 20 head epochs
"$BIN" train classifier --data "$TMP/data" --out "$TMP/head" --weights "$WEIGHTS" \
  --size "$SIZE" --views 0 --epochs 20 --patience 0 --seed 1 >"$TMP/head.json" 2>"$TMP/head.log"
# the extracted rows: train + val of the 80/10/10 split (test images are not extracted)
ROWS=$(grep -o 'features: [0-9]* train rows ([0-9]* views), [0-9]* val rows' "$TMP/head.log" |
  awk '{print $2 + $7}')
# 2. fresh-view fine-tuning: one epoch per first trained block (the linear probe first)
FRESH_JSON="{}"
for n in ${FRESH_BLOCKS:-13 6}; do
  "$BIN" train classifier --data "$TMP/data" --out "$TMP/fresh$n" --weights "$WEIGHTS" \
    --size "$SIZE" --finetune-from-block "$n" --epochs 1 --patience 0 --seed 1 \
    >"$TMP/fresh$n.json" 2>"$TMP/fresh$n.log"
  FRESH_JSON=$(jq -c --arg n "$n" --slurpfile f "$TMP/fresh$n.json" \
    '. + {("from_block_" + $n): {images_per_sec: $f[0].train_items_per_sec, epoch_seconds: $f[0].epoch_seconds}}' \
    <<<"$FRESH_JSON")
done
# 3. scratch CNN: 2 epochs on augmented images
"$BIN" train classifier --data "$TMP/data" --out "$TMP/scratch" --arch scratch \
  --size "$SCRATCH_SIZE" --epochs 2 --patience 0 --seed 1 >"$TMP/scratch.json" 2>"$TMP/scratch.log"

jq -n \
  --slurpfile head "$TMP/head.json" --slurpfile scratch "$TMP/scratch.json" \
  --argjson rows "${ROWS:-0}" --argjson images "$N" --argjson size "$SIZE" \
  --argjson scratch_size "$SCRATCH_SIZE" --argjson threads "$(nproc)" \
  --argjson fresh "$FRESH_JSON" \
  --arg cpu "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')" '
  ($head[0]) as $h | ($scratch[0]) as $s | {
    images: $images, input_size: $size, threads: $threads, cpu: $cpu,
    feature_extraction: {
      images: $rows, seconds: $h.feature_seconds,
      images_per_sec: (if $h.feature_seconds > 0 then $rows / $h.feature_seconds else null end),
      ms_per_image: (if $rows > 0 then 1000 * $h.feature_seconds / $rows else null end)
    },
    head_training: {
      epochs: $h.epochs, items_per_sec: $h.train_items_per_sec, epoch_seconds: $h.epoch_seconds
    },
    scratch_cnn: {
      input_size: $scratch_size, epochs: $s.epochs,
      images_per_sec: $s.train_items_per_sec, epoch_seconds: $s.epoch_seconds
    },
    fresh_views: ($fresh + {input_size: $size})
  }'
