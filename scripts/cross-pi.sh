#!/usr/bin/env bash
# Cross-builds sleeve-edge for a 64-bit Raspberry Pi (aarch64-unknown-linux-gnu), runs
# `classify` on a generated tiny bundle under qemu, and checks the answers equal the
# x86-64 build's. Slow (tract cross-compiles from scratch): not part of CI.
#
#   scripts/cross-pi.sh            # needs sudo for apt unless the packages are present
#
# The camera feature is left out of the cross build: nokhwa's V4L2 bindings run bindgen,
# which needs libclang plus an aarch64 sysroot's kernel headers. Build on the Pi itself
# (docs/deploy.md) for a camera-enabled binary.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=aarch64-unknown-linux-gnu
FEATURES="synthetic,framebuffer"

rustup target add "$TARGET"
if ! command -v aarch64-linux-gnu-gcc >/dev/null || ! command -v qemu-aarch64-static >/dev/null; then
  SUDO=$([ "$(id -u)" = 0 ] && echo "" || echo sudo)
  $SUDO apt-get update
  $SUDO apt-get install -y gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static
fi

export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64-static -L /usr/aarch64-linux-gnu"
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc

echo "== building x86-64 and aarch64 sleeve-edge" >&2
cargo build -p sleeve-edge --no-default-features --features "$FEATURES,testkit" --examples
cargo build -p sleeve-edge --no-default-features --features "$FEATURES" --target "$TARGET"

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
echo "== generating a tiny bundle and test covers in $WORK" >&2
"$TARGET_DIR/debug/examples/tiny_bundle" "$WORK/bundle" "$WORK/covers"

X86="$TARGET_DIR/debug/sleeve-edge"
ARM="$TARGET_DIR/$TARGET/debug/sleeve-edge"
run_classify() {
  # run_classify BUNDLE PRECISION COVERS... -- BINARY...: latency differs by machine, so it
  # is dropped and everything else compared.
  local bundle=$1 precision=$2; shift 2
  local covers=(); while [ "$1" != "--" ]; do covers+=("$1"); shift; done; shift
  local prec=(); [ "$precision" = selected ] || prec=(--precision "$precision")
  "$@" classify --bundle "$bundle" "${prec[@]}" "${covers[@]}" 2>/dev/null \
    | python3 -c 'import json,sys
for l in sys.stdin:
    v = json.loads(l); v.pop("latency_ms", None); print(json.dumps(v, sort_keys=True))'
}
compare() {
  # compare LABEL X86.jsonl ARM.jsonl TOLERANCE
  python3 - "$@" <<'PY'
import json, sys
label, fa, fb, tol = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
a = [json.loads(l) for l in open(fa)]
b = [json.loads(l) for l in open(fb)]
assert len(a) == len(b) and a, f"{label}: different number of results ({len(a)} vs {len(b)})"
worst = 0.0
for x, y in zip(a, b):
    assert [t["genre"] for t in x["top"]][:1] == [t["genre"] for t in y["top"]][:1], (x, y)
    assert x["pa"] == y["pa"], (x, y)
    worst = max([worst] + [abs(s["p"] - t["p"]) for s, t in zip(x["top"], y["top"])])
assert worst < tol, f"{label}: probabilities differ by {worst} (tolerance {tol})"
print(f"{label}: {len(a)} images, same top-1 genre and PA on aarch64 (qemu) and x86-64; max |dp| = {worst:.2e}")
PY
}
file "$ARM" >&2 || true
QEMU=($CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER)
COVERS=("$WORK"/covers/*.png)
run_classify "$WORK/bundle" selected "${COVERS[@]}" -- "$X86" > "$WORK/x86.jsonl"
run_classify "$WORK/bundle" selected "${COVERS[@]}" -- "${QEMU[@]}" "$ARM" > "$WORK/arm.jsonl"
compare "tiny bundle (f32)" "$WORK/x86.jsonl" "$WORK/arm.jsonl" 1e-4

# The shipped bundle in both int8 forms: weight-only int8 runs float kernels (tight
# tolerance); full int8 runs integer kernels whose rounding may differ by architecture.
SHIPPED=models/default
if [ -f "$SHIPPED/manifest.json" ]; then
  PICK=("$WORK"/covers/scene_*.png)
  PICK=("${PICK[@]:0:4}")
  for spec in "int8-weights 1e-3" "int8-full 5e-2"; do
    set -- $spec
    run_classify "$SHIPPED" "$1" "${PICK[@]}" -- "$X86" > "$WORK/x86-$1.jsonl"
    START=$(date +%s)
    run_classify "$SHIPPED" "$1" "${PICK[@]}" -- "${QEMU[@]}" "$ARM" > "$WORK/arm-$1.jsonl"
    echo "($1 under qemu: $(( $(date +%s) - START )) s for ${#PICK[@]} images; emulated, not a Pi speed)" >&2
    compare "$SHIPPED $1" "$WORK/x86-$1.jsonl" "$WORK/arm-$1.jsonl" "$2"
  done
  # Half precision (--f16, for ARM cores with fp16 arithmetic such as the Pi 5's A76):
  # aarch64 f16 against x86 f32.
  ARGS=(classify --bundle "$SHIPPED" --f16 "${PICK[@]}")
  "${QEMU[@]}" "$ARM" "${ARGS[@]}" 2>/dev/null | python3 -c 'import json,sys
for l in sys.stdin:
    v = json.loads(l); v.pop("latency_ms", None); print(json.dumps(v, sort_keys=True))' > "$WORK/arm-f16.jsonl"
  compare "$SHIPPED int8-weights --f16 (aarch64) vs f32 (x86)" "$WORK/x86-int8-weights.jsonl" "$WORK/arm-f16.jsonl" 5e-2
fi
echo "cross-pi: OK"
