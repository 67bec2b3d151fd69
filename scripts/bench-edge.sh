#!/usr/bin/env bash
# tract (sleeve-edge, ours) vs onnxruntime (Python, the same ONNX files, the same thread
# count), for every precision the bundle ships (f32, int8-weights, int8-full). Prints one
# JSON object:
#
#   per precision: sleeve-edge's full-pipeline p50/p95 per stage (decode, find, preprocess,
#   classify, detect, total) on synthetic camera scenes, its peak RSS; per model the tract
#   and onnxruntime p50/p95, their ratio, MACs and the fraction of this CPU's peak reached;
#   and the full-frame ratio: tract's frame time over the same frame with onnxruntime's
#   model times put in place of tract's (decode, finding and preprocessing are the same code).
#   A format-2 bundle with a joint model (`sleeve export joint`) is measured both ways:
#   `separate` (two models, `--models separate`) and `joint` (`--models joint`, where the
#   pipeline's `classify` stage is the joint inference and `detect` the box decoding), with
#   onnxruntime on the same joint file, and `joint_over_separate` frame ratios.
#   `allocations_per_frame`: heap allocations and bytes per frame of each stage
#   (examples/alloc_frames.rs, dhat's counting allocator).
#
#   scripts/bench-edge.sh [BUNDLE_DIR] [THREADS] [FRAMES]
#
# Env: PRECISIONS="f32 int8-full" to choose (default: every precision the classifier has);
#      SLEEVE_EDGE_BIN=PATH to time an existing binary instead of building one;
#      PROFILE=dev to time the dev build (default release, what a kiosk runs: measured here,
#      release is 1.3-1.4x faster on the models and 2x on the sleeve finder than dev,
#      whose own crates are opt-level 1 and whose deps lack LTO);
#      PEAK_GHZ, PEAK_F32_MACS_PER_CYCLE, PEAK_INT8_MACS_PER_CYCLE override the peak model.
# Needs python3 with onnxruntime, onnx and numpy (scripts/setup.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
BUNDLE="${1:-models/default}"
THREADS="${2:-1}"
FRAMES="${3:-100}"
PROFILE="${PROFILE:-release}"
[ -f "$BUNDLE/manifest.json" ] || { echo "bench-edge: no bundle at $BUNDLE (manifest.json missing)" >&2; exit 2; }
FEATURES=(--features synthetic)
if [ "$THREADS" -gt 1 ]; then FEATURES=(--features synthetic,multithread); fi
if [ -n "${SLEEVE_EDGE_BIN:-}" ]; then
  BIN="$SLEEVE_EDGE_BIN"   # time an existing build (e.g. the release binary of a long build)
else
  cargo build -q -p sleeve-edge --profile "$PROFILE" "${FEATURES[@]}" >&2
  DIR=$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")
  BIN="${CARGO_TARGET_DIR:-target}/$DIR/sleeve-edge"
fi

# role <TAB> precision <TAB> path <TAB> input size, for every file of the bundle.
FILES=$(python3 - "$BUNDLE" <<'PY'
import json, sys
m = json.load(open(sys.argv[1] + "/manifest.json"))
models = [("classifier", m["classifier"])] + ([("detector", m["detector"]["model"])] if m.get("detector") else [])
models += [("joint", m["joint"]["model"])] if m.get("joint") else []
for role, e in models:
    for f in e["files"]:
        print(f"{role}\t{f['precision']}\t{f['path']}\t{e['preprocess']['input_size']}")
PY
)
PRECISIONS="${PRECISIONS:-$(awk -F'\t' '$1 == "classifier" || $1 == "joint" {print $2}' <<<"$FILES" | sort -u | tr '\n' ' ')}"
HAS_JOINT=$(awk -F'\t' '$1 == "joint"' <<<"$FILES" | wc -l)

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
LAYOUTS="separate"
if [ "$HAS_JOINT" -gt 0 ]; then LAYOUTS="separate joint"; fi
for p in $PRECISIONS; do
  for layout in $LAYOUTS; do
    out="$TMP/tract-$p.json"
    [ "$layout" = joint ] && out="$TMP/tract-joint-$p.json"
    echo "== tract full pipeline, $p, $layout, $THREADS thread(s), $FRAMES frames" >&2
    if ! "$BIN" bench --bundle "$BUNDLE" --threads "$THREADS" --frames "$FRAMES" --precision "$p" \
        --models "$layout" >"$out" 2>"${out%.json}.err"; then
      python3 -c 'import json,sys; print(json.dumps({"error": open(sys.argv[1]).read().strip().splitlines()[-1]}))' \
        "${out%.json}.err" >"$out"
    fi
  done
done
while IFS=$'\t' read -r role prec path size; do
  echo "== onnxruntime $role $prec" >&2
  python3 scripts/bench_ort.py "$BUNDLE/$path" --size "$size" --threads "$THREADS" --iters "$FRAMES" \
    >"$TMP/ort-$role-$prec.json" || true
done <<<"$FILES"

# Heap allocations per frame, stage by stage (dhat's counting allocator; the bundle's
# selected precision and layout). ALLOCS=0 skips it.
if [ "${ALLOCS:-1}" != 0 ]; then
  echo "== heap allocations per frame" >&2
  if cargo build -q -p sleeve-edge --profile "$PROFILE" --features synthetic --example alloc_frames >&2; then
    DIR=$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")
    "${CARGO_TARGET_DIR:-target}/$DIR/examples/alloc_frames" "$BUNDLE" 20 3 >"$TMP/alloc.json" 2>"$TMP/alloc.err" || true
  fi
fi

python3 - "$TMP" "$BUNDLE" "$THREADS" "$PRECISIONS" <<'PY'
import json, os, re, sys
tmp, bundle, threads, precisions = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4].split()

def load(name):
    p = os.path.join(tmp, name)
    if not os.path.exists(p):
        return None
    txt = open(p).read().strip()
    try:
        return json.loads(txt)
    except json.JSONDecodeError:
        return {"error": txt[-400:] or "no output"}

# Peak multiply-accumulates per second of the cores used, from the widest SIMD this CPU has.
cpuinfo = open("/proc/cpuinfo").read() if os.path.exists("/proc/cpuinfo") else ""
flags = set((re.search(r"^(?:flags|Features)\s*:\s*(.*)$", cpuinfo, re.M) or [None, ""])[1].split())
mhz = re.search(r"^cpu MHz\s*:\s*([\d.]+)", cpuinfo, re.M)
ghz = float(os.environ.get("PEAK_GHZ") or (float(mhz.group(1)) / 1000 if mhz else 0) or 0)
if "avx512f" in flags:
    isa, f32c = "avx512f (2 x 512-bit FMA)", 32
elif "avx2" in flags and "fma" in flags:
    isa, f32c = "avx2+fma (2 x 256-bit FMA)", 16
elif "asimd" in flags:
    isa, f32c = "neon (2 x 128-bit FMA)", 8
else:
    isa, f32c = "unknown", 4
if "avx512_vnni" in flags:
    i8c = 128
elif "avx_vnni" in flags:
    i8c = 64
elif "asimddp" in flags:
    i8c = 32
else:
    i8c = 2 * f32c
f32c = int(os.environ.get("PEAK_F32_MACS_PER_CYCLE", f32c))
i8c = int(os.environ.get("PEAK_INT8_MACS_PER_CYCLE", i8c))
peak = {"ghz": ghz, "cores": threads, "isa": isa,
        "f32_gmacs": ghz * f32c * threads, "int8_gmacs": ghz * i8c * threads,
        "note": "theoretical: GHz x MACs/cycle/core x threads (no turbo, no memory limits)"}

def frac(macs, ms_, prec):
    if not macs or not ms_ or not ghz:
        return None
    p = peak["int8_gmacs"] if prec == "int8-full" else peak["f32_gmacs"]  # int8-weights computes in f32
    return macs / (ms_ / 1000) / 1e9 / p

def ratio(a, b):
    return a / b if a is not None and b else None

def measure(t, prec, roles):
    entry = {"tract_pipeline": None, "models": []}
    if "error" in t:
        entry["tract_error"] = t["error"]
    else:
        st = t["stages_ms"]
        entry["tract_pipeline"] = {
            "frames": t["frames"], "frames_with_sleeve": t["frames_with_sleeve"], "fps": t["fps"],
            "multithread_build": t["multithread_build"],
            "stages_ms": {k: {"p50": v["p50"], "p95": v["p95"]} for k, v in st.items()},
            "peak_rss_kib": t["peak_rss_kib"],
        }
    ort_model_p50 = 0.0
    ort_ok = True
    for role, stage in roles:
        # A model without a file of this precision runs its selected one in sleeve-edge:
        # compare against onnxruntime on that same file.
        used = t.get(f"{role}_precision") or prec
        o = load(f"ort-{role}-{used}.json")
        if o is None:
            continue
        tr = None if "error" in t else t["stages_ms"][stage]
        if tr is not None and role == "joint":
            # The joint inference is `classify`; `detect` is decoding only (not a model).
            tr = {k: tr[k] for k in ("p50", "p95")}
        # The pipeline times the detector only on frames with a sleeve; p50 over all frames
        # would mix in zeros, so compare on frames that ran it (p50 is robust here: most do).
        m = {
            "role": role, "precision": used, "file": os.path.basename(o["model"]),
            "macs": o.get("macs"),
            "tract_p50_ms": tr and tr["p50"], "tract_p95_ms": tr and tr["p95"],
            "ort_p50_ms": o.get("p50_ms"), "ort_p95_ms": o.get("p95_ms"),
            "tract_over_ort_p50": ratio(tr and tr["p50"], o.get("p50_ms")),
            "tract_fraction_of_peak": frac(o.get("macs"), tr and tr["p50"], used),
            "ort_fraction_of_peak": frac(o.get("macs"), o.get("p50_ms"), used),
            "ort_peak_rss_kib": o.get("peak_rss_kib"),
            "ort_rss_before_session_kib": o.get("rss_before_session_kib"),
        }
        if "error" in o:
            m["ort_error"] = o["error"]
            ort_ok = False
        else:
            ort_model_p50 += o["p50_ms"]
        entry["models"].append(m)
    if entry["tract_pipeline"] and ort_ok and entry["models"]:
        st = entry["tract_pipeline"]["stages_ms"]
        tract_total = st["total"]["p50"]
        tract_models = st["classify"]["p50"] + (0 if roles[0][0] == "joint" else st["detect"]["p50"])
        same_frame_with_ort = tract_total - tract_models + ort_model_p50
        entry["full_frame"] = {
            "tract_total_p50_ms": tract_total,
            "ort_models_in_place_p50_ms": same_frame_with_ort,
            "tract_over_ort": ratio(tract_total, same_frame_with_ort),
            "models_only_tract_over_ort": ratio(tract_models, ort_model_p50),
        }
    return entry

out = {"bundle": bundle, "threads": threads, "peak": peak, "precisions": {}}
for prec in precisions:
    t = load(f"tract-{prec}.json") or {"error": "not run"}
    entry = measure(t, prec, (("classifier", "classify"), ("detector", "detect")))
    tj = load(f"tract-joint-{prec}.json")
    if tj is not None:
        entry = {"separate": entry, "joint": measure(tj, prec, (("joint", "classify"),))}
        sp, jp = entry["separate"]["tract_pipeline"], entry["joint"]["tract_pipeline"]
        if sp and jp:
            entry["joint_over_separate"] = {
                "frame_p50": ratio(jp["stages_ms"]["total"]["p50"], sp["stages_ms"]["total"]["p50"]),
                "models_p50": ratio(jp["stages_ms"]["classify"]["p50"] + jp["stages_ms"]["detect"]["p50"],
                                    sp["stages_ms"]["classify"]["p50"] + sp["stages_ms"]["detect"]["p50"]),
                "peak_rss": ratio(jp["peak_rss_kib"], sp["peak_rss_kib"]),
            }
    out["precisions"][prec] = entry
out["allocations_per_frame"] = load("alloc.json")
print(json.dumps(out, indent=2))
PY
