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
cargo build -p sleeve-edge --no-default-features --features "$FEATURES" --examples
cargo build -p sleeve-edge --no-default-features --features "$FEATURES" --target "$TARGET"

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
echo "== generating a tiny bundle and test covers in $WORK" >&2
"$TARGET_DIR/debug/examples/tiny_bundle" "$WORK/bundle" "$WORK/covers"

X86="$TARGET_DIR/debug/sleeve-edge"
ARM="$TARGET_DIR/$TARGET/debug/sleeve-edge"
run_classify() {
  # Latency differs by machine: compare everything else.
  "$@" classify --bundle "$WORK/bundle" "$WORK"/covers/*.png 2>/dev/null \
    | python3 -c 'import json,sys
for l in sys.stdin:
    v = json.loads(l); v.pop("latency_ms", None); print(json.dumps(v, sort_keys=True))'
}
run_classify "$X86" > "$WORK/x86.jsonl"
run_classify $CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER "$ARM" > "$WORK/arm.jsonl"
file "$ARM" >&2 || true
if python3 - "$WORK/x86.jsonl" "$WORK/arm.jsonl" <<'PY'
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]
b = [json.loads(l) for l in open(sys.argv[2])]
assert len(a) == len(b) and a, "different number of results"
worst = 0.0
for x, y in zip(a, b):
    assert [t["genre"] for t in x["top"]] == [t["genre"] for t in y["top"]], (x, y)
    assert x["pa"] == y["pa"], (x, y)
    worst = max([worst] + [abs(s["p"] - t["p"]) for s, t in zip(x["top"], y["top"])])
assert worst < 1e-4, f"probabilities differ by {worst}"
print(f"{len(a)} images: same genres and PA on aarch64 (qemu) and x86-64; max |dp| = {worst:.2e}")
PY
then echo "cross-pi: OK"; else echo "cross-pi: MISMATCH" >&2; exit 1; fi
