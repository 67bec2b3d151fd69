#!/usr/bin/env bash
# Counts the aarch64 instructions one kiosk inference executes, under qemu-user with a TCG
# instruction-count plugin (scripts/qemu/insn_count.c): wall time under qemu means nothing,
# instruction counts do. For each precision the bundle ships (and int8-weights with --f16),
# `sleeve-edge classify` runs on COVER once and K+1 times in one process; the difference /
# K is what one more cover costs (JPEG decode + preprocessing + inference + decoding), with
# start-up and plan optimisation cancelled out. `--find` adds the sleeve finder, measured
# the same way on a kiosk scene. Prints one JSON object.
#
#   scripts/qemu-insn.sh [BUNDLE_DIR] [K]
#
# Env: SLEEVE_EDGE_ARM=PATH uses an existing aarch64 build (else one is built, dev profile:
#      the dependencies, tract included, are at opt-level 3; 20+ minutes of two cores the
#      first time). Needs qemu-user (dynamic: the static build cannot load plugins),
#      gcc-aarch64-linux-gnu and libc6-dev-arm64-cross (installed here if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
BUNDLE="${1:-models/default}"
K="${2:-2}"
TARGET=aarch64-unknown-linux-gnu
[ -f "$BUNDLE/manifest.json" ] || { echo "qemu-insn: no bundle at $BUNDLE" >&2; exit 2; }

if ! command -v qemu-aarch64 >/dev/null || ! command -v aarch64-linux-gnu-gcc >/dev/null; then
  SUDO=$([ "$(id -u)" = 0 ] && echo "" || echo sudo)
  $SUDO apt-get install -y qemu-user gcc-aarch64-linux-gnu libc6-dev-arm64-cross >&2
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
gcc -shared -fPIC -O2 -o "$WORK/insn_count.so" scripts/qemu/insn_count.c

if [ -n "${SLEEVE_EDGE_ARM:-}" ]; then
  ARM="$SLEEVE_EDGE_ARM"
else
  rustup target add "$TARGET" >&2
  export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
  export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
  cargo build -q -p sleeve-edge --no-default-features --features synthetic,framebuffer \
    --target "$TARGET" >&2
  ARM="${CARGO_TARGET_DIR:-target}/$TARGET/debug/sleeve-edge"
fi

# A cover and a kiosk scene to classify (generated: no data needed).
python3 - "$WORK" <<'PY'
import sys
from PIL import Image, ImageDraw
w = sys.argv[1]
cover = Image.new("RGB", (600, 600), (40, 60, 120))
d = ImageDraw.Draw(cover)
for i in range(12):
    d.ellipse((30 * i, 20 * i, 30 * i + 200, 20 * i + 160), fill=(20 * i, 200 - 10 * i, 90))
d.rectangle((420, 500, 560, 585), fill=(0, 0, 0))
cover.save(f"{w}/cover.jpg", quality=90)
scene = Image.new("RGB", (640, 480), (170, 160, 150))
scene.paste(cover.resize((300, 300)), (170, 90))
scene.save(f"{w}/scene.jpg", quality=85)
PY

count() {
  # count N EXTRA_ARGS...: guest instructions of `classify` on N covers
  local n=$1; shift
  local files=(); for _ in $(seq "$n"); do files+=("$WORK/cover.jpg"); done
  [[ " $* " == *" --find "* ]] && { files=(); for _ in $(seq "$n"); do files+=("$WORK/scene.jpg"); done; }
  qemu-aarch64 -L /usr/aarch64-linux-gnu -plugin "$WORK/insn_count.so" \
    "$ARM" classify --bundle "$BUNDLE" --threads 1 "$@" "${files[@]}" 2>&1 >/dev/null \
    | awk '/^guest_instructions/ {print $2}'
}

PRECISIONS=$(python3 - "$BUNDLE" <<'PY'
import json, sys
m = json.load(open(sys.argv[1] + "/manifest.json"))
entry = m.get("joint", {}).get("model") or m["classifier"]
print(" ".join(f["precision"] for f in entry["files"]))
PY
)
ROWS="$WORK/rows.tsv"
: >"$ROWS"
measure() {
  # measure NAME ARGS...
  local name=$1; shift
  echo "== $name: classify $* (1 and $((K + 1)) covers)" >&2
  local one many
  one=$(count 1 "$@")
  many=$(count $((K + 1)) "$@")
  printf '%s\t%s\t%s\n' "$name" "$one" "$many" >>"$ROWS"
}
for p in $PRECISIONS; do
  measure "$p" --precision "$p"
done
SEL=$(python3 -c 'import json,sys; m=json.load(open(sys.argv[1]+"/manifest.json")); print((m.get("joint",{}).get("model") or m["classifier"])["selected"])' "$BUNDLE")
measure "$SEL+f16" --precision "$SEL" --f16
measure "$SEL+separate" --precision "$SEL" --models separate
# aarch64 keeps stride-2 depthwise convolutions by default; the x86 default splits them.
measure "$SEL+split-strided-depthwise" --precision "$SEL" --strided-depthwise split
measure "$SEL+find" --precision "$SEL" --find

python3 - "$ROWS" "$K" "$BUNDLE" <<'PY'
import json, sys
rows, k, bundle = sys.argv[1], int(sys.argv[2]), sys.argv[3]
out = {"bundle": bundle, "guest": "aarch64 (qemu-user TCG, scripts/qemu/insn_count.c)",
       "covers_extra": k, "per_cover": {}}
for line in open(rows):
    name, one, many = line.rstrip("\n").split("\t")
    if not one or not many:
        out["per_cover"][name] = {"error": "no count (the run failed)"}
        continue
    one, many = int(one), int(many)
    out["per_cover"][name] = {"instructions": (many - one) / k, "process_1_cover": one}
sel = [n for n in out["per_cover"] if n.endswith("+find")]
if sel:
    base = out["per_cover"].get(sel[0][: -len("+find")], {}).get("instructions")
    f = out["per_cover"][sel[0]].get("instructions")
    if base and f:
        out["finder_instructions"] = f - base
print(json.dumps(out, indent=2))
PY
