#!/usr/bin/env bash
# The staff web page in a real headless browser: runs `sleeve-edge run --http` (with a
# token) on a looping file source of generated camera-like frames and a generated tiny
# bundle, opens the page in Chromium over the DevTools protocol, checks that it shows a
# decision, the live screen and a healthy camera, and keeps the screenshots:
#   out/web-page.png        desktop (1200x900)
#   out/web-page-phone.png  phone (390x844)
# Prints the page's state as JSON. Not part of scripts/test.sh (a browser does not fit
# the CI budget); needs chromium and python3-websocket (scripts/setup.sh installs them).
#
#   scripts/test-web-page.sh            env: PROFILE=dev|release (default dev), OUT=out
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE="${PROFILE:-dev}"
OUT="${OUT:-out}"
TARGET="${CARGO_TARGET_DIR:-target}"
DIR=$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")
PY=""
for p in /usr/bin/python3 python3; do
  if command -v "$p" >/dev/null && "$p" -c 'import websocket' 2>/dev/null; then PY="$p"; break; fi
done
[ -n "$PY" ] || { echo "test-web-page: needs python3-websocket (apt-get install python3-websocket)" >&2; exit 2; }
command -v chromium >/dev/null || { echo "test-web-page: needs chromium (scripts/setup.sh)" >&2; exit 2; }

cargo build -q -p sleeve-edge --profile "$PROFILE" --bin sleeve-edge --example tiny_bundle >&2
BIN="$TARGET/$DIR/sleeve-edge"
WORK=$(mktemp -d)
KIOSK_PID=""
trap '[ -n "$KIOSK_PID" ] && kill "$KIOSK_PID" 2>/dev/null; rm -rf "$WORK"' EXIT

"$TARGET/$DIR/examples/tiny_bundle" "$WORK/bundle" "$WORK/covers" 2>/dev/null
# Each sleeve held for 6 frames, so the kiosk's hold period (3 frames) passes.
mkdir -p "$WORK/frames"
i=0
for f in "$WORK"/covers/scene_*.png; do
  for k in 1 2 3 4 5 6; do cp "$f" "$WORK/frames/$(printf '%04d' $i).png"; i=$((i + 1)); done
done

PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
TOKEN=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
SLEEVE_HTTP_TOKEN="$TOKEN" "$BIN" run --bundle "$WORK/bundle" --files "$WORK/frames" --loop \
  --http "127.0.0.1:$PORT" --json "$WORK/decisions.jsonl" 2>"$WORK/kiosk.log" &
KIOSK_PID=$!
for _ in $(seq 100); do
  curl -sf -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/api/status" >/dev/null && break
  kill -0 "$KIOSK_PID" 2>/dev/null || { cat "$WORK/kiosk.log" >&2; exit 1; }
  sleep 0.2
done
mkdir -p "$OUT"
"$PY" scripts/web_page_check.py "http://127.0.0.1:$PORT/#token=$TOKEN" \
  "$OUT/web-page.png" --phone "$OUT/web-page-phone.png"
echo "test-web-page: ok; screenshots in $OUT/web-page.png and $OUT/web-page-phone.png" >&2
