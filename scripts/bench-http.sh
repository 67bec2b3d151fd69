#!/usr/bin/env bash
# Latency of the kiosk's local HTTP API under a bounded loopback load, while the kiosk
# loop runs: `sleeve-edge run --http` on BUNDLE (default models/default, the shipped
# models) over a looping file source of generated camera-like frames, then 1,000 GETs to
# each of /api/status and /api/decisions from 1 and from 4 keep-alive clients
# (edge/examples/bench_http.rs). Prints one JSON object: per endpoint and concurrency
# p50/p95/p99/max ms and requests/s, and the kiosk's frame rate before and during the load.
#
#   scripts/bench-http.sh [BUNDLE_DIR] [REQUESTS]
#
# Env: PROFILE=dev|release (default dev: the numbers in docs were taken with it).
set -euo pipefail
cd "$(dirname "$0")/.."
BUNDLE="${1:-models/default}"
REQUESTS="${2:-1000}"
PROFILE="${PROFILE:-dev}"
TARGET="${CARGO_TARGET_DIR:-target}"
DIR=$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")
[ -f "$BUNDLE/manifest.json" ] || { echo "bench-http: no bundle at $BUNDLE" >&2; exit 2; }
cargo build -q -p sleeve-edge --profile "$PROFILE" --bin sleeve-edge \
  --example tiny_bundle --example bench_http >&2
BIN="$TARGET/$DIR/sleeve-edge"
WORK=$(mktemp -d)
KIOSK_PID=""
trap '[ -n "$KIOSK_PID" ] && kill "$KIOSK_PID" 2>/dev/null; rm -rf "$WORK"' EXIT
"$TARGET/$DIR/examples/tiny_bundle" "$WORK/tiny" "$WORK/covers" 2>/dev/null
mkdir -p "$WORK/frames"
i=0
for f in "$WORK"/covers/scene_*.png; do
  for k in 1 2 3 4 5 6; do cp "$f" "$WORK/frames/$(printf '%04d' $i).png"; i=$((i + 1)); done
done
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BIN" run --bundle "$BUNDLE" --files "$WORK/frames" --loop --http "127.0.0.1:$PORT" \
  --json "$WORK/decisions.jsonl" 2>"$WORK/kiosk.log" &
KIOSK_PID=$!
URL="http://127.0.0.1:$PORT"
for _ in $(seq 300); do
  curl -sf "$URL/api/status" >/dev/null && break
  kill -0 "$KIOSK_PID" 2>/dev/null || { cat "$WORK/kiosk.log" >&2; exit 1; }
  sleep 0.2
done
frames() { curl -sf "$URL/api/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["frames"])'; }
sleep 3
f0=$(frames); t0=$(date +%s.%N); sleep 10; f1=$(frames); t1=$(date +%s.%N)
"$TARGET/$DIR/examples/bench_http" "$URL" "$REQUESTS" 1 >"$WORK/c1.json"
"$TARGET/$DIR/examples/bench_http" "$URL" "$REQUESTS" 4 >"$WORK/c4.json"
f2=$(frames); t2=$(date +%s.%N)
python3 - "$WORK" "$f0" "$t0" "$f1" "$t1" "$f2" "$t2" "$BUNDLE" "$PROFILE" <<'PY'
import json, sys
w, f0, t0, f1, t1, f2, t2, bundle, profile = sys.argv[1:]
f0, f1, f2 = int(f0), int(f1), int(f2)
t0, t1, t2 = float(t0), float(t1), float(t2)
print(json.dumps({
    "bundle": bundle, "profile": profile,
    "concurrency_1": json.load(open(f"{w}/c1.json")),
    "concurrency_4": json.load(open(f"{w}/c4.json")),
    "kiosk_fps_idle": (f1 - f0) / (t1 - t0),
    "kiosk_fps_under_load": (f2 - f1) / (t2 - t1),
}, indent=2))
PY
