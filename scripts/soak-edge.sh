#!/usr/bin/env bash
# Soak test of the kiosk loop: `sleeve-edge run` on a looping stream of camera-like frames
# with bad frames mixed in and one frame file that disappears and comes back, sampling the
# process's RSS over time. Prints one JSON object: frames, failed frames, bad files,
# restarts (none: the loop never stopped), p50/p99 frame time, the RSS samples and the RSS
# growth per 10k frames after warm-up (target: under 1 MB).
#
#   scripts/soak-edge.sh [FRAMES] [BUNDLE_DIR]     defaults: 100000, a generated tiny bundle
#
# Env: PROFILE=dev|release (default release: what a kiosk runs), SAMPLE_S (RSS sampling
# period, default 2), FLAP_S (how often the flapping file disappears/returns, default 5),
# SLEEVE_EDGE and TINY_BUNDLE (prebuilt executables: skip the build).
set -euo pipefail
cd "$(dirname "$0")/.."
FRAMES="${1:-100000}"
BUNDLE="${2:-}"
PROFILE="${PROFILE:-release}"
SAMPLE_S="${SAMPLE_S:-2}"
FLAP_S="${FLAP_S:-5}"
TARGET="${CARGO_TARGET_DIR:-target}"
DIR=$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")
# SLEEVE_EDGE / TINY_BUNDLE: use these executables instead of building.
if [ -z "${SLEEVE_EDGE:-}" ] || [ -z "${TINY_BUNDLE:-}" ]; then
  cargo build -q -p sleeve-edge --profile "$PROFILE" --features testkit --bin sleeve-edge --example tiny_bundle >&2
fi
BIN="${SLEEVE_EDGE:-$TARGET/$DIR/sleeve-edge}"
TINY="${TINY_BUNDLE:-$TARGET/$DIR/examples/tiny_bundle}"
WORK=$(mktemp -d)
trap 'kill "${FLAP_PID:-}" 2>/dev/null || true; rm -rf "$WORK"' EXIT

# Frames: the tiny bundle's camera-like scenes (640x480), plus bad ones.
"$TINY" "$WORK/tiny-bundle" "$WORK/covers" 2>/dev/null
[ -n "$BUNDLE" ] || BUNDLE="$WORK/tiny-bundle"
mkdir -p "$WORK/frames"
cp "$WORK"/covers/scene_*.png "$WORK/frames/"
printf 'not an image' >"$WORK/frames/bad_garbage.png"
: >"$WORK/frames/bad_empty.jpg"
head -c 2000 "$(ls "$WORK"/covers/scene_*.png | head -1)" >"$WORK/frames/bad_truncated.png"
FLAP="$(ls "$WORK"/frames/scene_*.png | head -1)"

"$BIN" run --bundle "$BUNDLE" --files "$WORK/frames" --loop --max-frames "$FRAMES" \
  --every-frame --json "$WORK/out.jsonl" 2>"$WORK/stderr.log" &
PID=$!
# The source that disappears and returns: one frame file comes and goes.
( while kill -0 "$PID" 2>/dev/null; do
    sleep "$FLAP_S"; mv "$FLAP" "$FLAP.away" 2>/dev/null || true
    sleep "$FLAP_S"; mv "$FLAP.away" "$FLAP" 2>/dev/null || true
  done ) &
FLAP_PID=$!

START=$(date +%s.%N)
: >"$WORK/rss.tsv"
while kill -0 "$PID" 2>/dev/null; do
  RSS=$(awk '/^VmRSS/ {print $2}' "/proc/$PID/status" 2>/dev/null || true)
  [ -n "$RSS" ] || break
  N=$(wc -l <"$WORK/out.jsonl" 2>/dev/null || echo 0)
  T=$(echo "$(date +%s.%N) - $START" | bc)
  printf '%s\t%s\t%s\n' "$T" "$N" "$RSS" >>"$WORK/rss.tsv"
  sleep "$SAMPLE_S"
done
set +e
wait "$PID"
STATUS=$?
set -e
python3 - "$WORK" "$STATUS" "$FRAMES" <<'PY'
import json, sys
work, status, want = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
times = []
with open(f"{work}/out.jsonl") as f:
    for line in f:
        v = json.loads(line)
        if v.get("event") == "frame":
            times.append(v["times_ms"]["total"])
samples = []
for line in open(f"{work}/rss.tsv"):
    t, n, rss = line.split()
    samples.append({"t_s": round(float(t), 1), "frames": int(n), "rss_kb": int(rss)})
log = open(f"{work}/stderr.log").read()
bad_files = log.count("bad image file: skipped")
failed = None
for l in log.splitlines():
    if "input(s) failed" in l:
        failed = int(l.split("error: ")[-1].split(" of ")[0])
# RSS growth after warm-up (first 10 % of frames): least-squares slope, KB per 10k frames.
warm = [s for s in samples if s["frames"] >= 0.1 * max(1, len(times))]
slope = None
if len(warm) >= 3:
    xs = [s["frames"] for s in warm]; ys = [s["rss_kb"] for s in warm]
    mx = sum(xs) / len(xs); my = sum(ys) / len(ys)
    den = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den * 10000 if den else None
ts = sorted(times)
pct = lambda p: round(ts[min(len(ts) - 1, int(p * len(ts)))], 2) if ts else None
print(json.dumps({
    "frames_requested": want,
    "frames_processed": len(times),
    "exit_status": status,
    "failed_frames": failed if failed is not None else 0,
    "bad_files_logged": bad_files,
    "panics": log.count("panicked"),
    "restarts": 0,
    "frame_ms_p50": pct(0.5),
    "frame_ms_p99": pct(0.99),
    "rss_kb_first": samples[0]["rss_kb"] if samples else None,
    "rss_kb_last": samples[-1]["rss_kb"] if samples else None,
    "rss_kb_max": max((s["rss_kb"] for s in samples), default=None),
    "rss_growth_kb_per_10k_frames_after_warmup": round(slope, 1) if slope is not None else None,
    "rss_samples": samples,
}, indent=1))
PY
