#!/usr/bin/env bash
# Compares tract (sleeve-edge bench, whole-frame model timings) with onnxruntime (same ONNX
# files, same thread count) per model of a bundle, and prints one JSON object.
#
#   scripts/bench-edge.sh [BUNDLE_DIR] [THREADS] [FRAMES]
#
# Env: PROFILE=release to time an optimised sleeve-edge build (default: the dev profile,
# whose dependencies — tract included — are already built with opt-level 3).
# Needs python3 with onnxruntime + numpy (scripts/setup.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
BUNDLE="${1:-models/default}"
THREADS="${2:-1}"
FRAMES="${3:-50}"
PROFILE="${PROFILE:-dev}"
FEATURES=""
if [ "$THREADS" -gt 1 ]; then FEATURES="--features multithread"; fi
cargo build -q -p sleeve-edge --profile "$PROFILE" $FEATURES >&2
DIR=$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")
BIN="${CARGO_TARGET_DIR:-target}/$DIR/sleeve-edge"

TRACT=$("$BIN" bench --bundle "$BUNDLE" --threads "$THREADS" --frames "$FRAMES" --whole-frame 2>/dev/null)
ORT=()
while IFS=$'\t' read -r role path size; do
  ORT+=("$(python3 scripts/bench_ort.py "$BUNDLE/$path" --size "$size" --threads "$THREADS" --iters "$FRAMES" | sed "s/^{/{\"role\": \"$role\", /")")
done < <(python3 - "$BUNDLE" <<'PY'
import json, sys
m = json.load(open(sys.argv[1] + "/manifest.json"))
models = [("classifier", m["classifier"])] + ([("detector", m["detector"]["model"])] if m.get("detector") else [])
for role, e in models:
    f = next(f for f in e["files"] if f["precision"] == e["selected"])
    print(f"{role}\t{f['path']}\t{e['preprocess']['input_size']}")
PY
)
python3 - "$TRACT" "${ORT[@]}" <<'PY'
import json, sys
tract = json.loads(sys.argv[1])
ort = [json.loads(s) for s in sys.argv[2:]]
out = {"threads": tract["threads"], "bundle": tract["bundle"], "models": []}
for o in ort:
    t = tract["stages_ms"]["classify" if o["role"] == "classifier" else "detect"]
    out["models"].append({
        "role": o["role"], "file": o["model"],
        "tract_p50_ms": t["p50"], "tract_p95_ms": t["p95"],
        "ort_p50_ms": o.get("p50_ms"), "ort_p95_ms": o.get("p95_ms"),
        "tract_over_ort_p50": (t["p50"] / o["p50_ms"]) if o.get("p50_ms") else None,
        "ort_error": o.get("error"),
    })
out["tract_peak_rss_kib"] = tract.get("peak_rss_kib")
out["tract_preprocess_p50_ms"] = tract["stages_ms"]["preprocess"]["p50"]
print(json.dumps(out, indent=2))
PY
