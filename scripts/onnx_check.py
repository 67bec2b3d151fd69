#!/usr/bin/env python3
"""Cross-check a Sleeve bundle with onnxruntime.

Loads every ONNX file of a bundle in onnxruntime, feeds it the exact tensors Rust
preprocessed, and compares with tract's outputs. Both come from `sleeve export dump`:

    pip install onnxruntime numpy
    sleeve export dump --bundle BUNDLE --data IMAGES --count 4 --out /tmp/dump
    python3 scripts/onnx_check.py --bundle BUNDLE --dump /tmp/dump [--tolerance 1e-4]

Also checks every file's SHA-256 against manifest.json. Prints one line per run and a
JSON summary; exits 1 when a file fails to load, a hash differs, or an f32 model differs
from tract by more than --tolerance (int8 models are compared with --int8-tolerance,
since runtimes may round integer requantization differently).
"""

import argparse
import hashlib
import json
import os
import sys

import numpy as np
import onnxruntime as ort


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", required=True, help="bundle directory (manifest.json)")
    ap.add_argument("--dump", required=True, help="output directory of `sleeve export dump`")
    ap.add_argument("--tolerance", type=float, default=1e-4, help="max |ort - tract| for f32 files")
    ap.add_argument("--int8-tolerance", type=float, default=0.5,
                    help="max |ort - tract| for int8 files (integer rounding may differ)")
    args = ap.parse_args()

    with open(os.path.join(args.bundle, "manifest.json")) as f:
        manifest = json.load(f)
    files = list(manifest["classifier"]["files"])
    if manifest.get("detector"):
        files += manifest["detector"]["model"]["files"]
    failures = []
    for entry in files:
        path = os.path.join(args.bundle, entry["path"])
        if sha256(path) != entry["sha256"]:
            failures.append(f"{entry['path']}: SHA-256 differs from manifest")

    with open(os.path.join(args.dump, "index.json")) as f:
        runs = json.load(f)
    sessions = {}
    results = []
    for run in runs:
        model = run["model"]
        if model not in sessions:
            try:
                opts = ort.SessionOptions()
                opts.intra_op_num_threads = 1
                sessions[model] = ort.InferenceSession(os.path.join(args.bundle, model), opts,
                                                       providers=["CPUExecutionProvider"])
            except Exception as e:  # noqa: BLE001 - report any load failure
                failures.append(f"{model}: onnxruntime cannot load it: {e}")
                sessions[model] = None
        sess = sessions[model]
        if sess is None:
            continue
        x = np.load(os.path.join(args.dump, run["input"]))
        names = [o["name"] for o in run["outputs"]]
        got = sess.run(names, {run["input_name"]: x})
        tol = args.tolerance if run["precision"] == "f32" else args.int8_tolerance
        for o, y in zip(run["outputs"], got):
            want = np.load(os.path.join(args.dump, o["file"]))
            if y.shape != want.shape:
                failures.append(f"{model} {o['name']}: shape {y.shape} vs tract {want.shape}")
                continue
            diff = float(np.max(np.abs(y.astype(np.float32) - want))) if y.size else 0.0
            same_top1 = None
            if y.ndim == 2 and o["name"] == "logits" and y.shape[1] < 100:
                same_top1 = bool(np.argmax(y) == np.argmax(want))
            results.append({"model": model, "precision": run["precision"], "input": run["input"],
                            "output": o["name"], "max_abs_diff": diff, "same_top1": same_top1})
            status = "ok " if diff <= tol else "BAD"
            print(f"{status} {model:<36} {o['name']:<7} {run['input']:<28} max|ort-tract| = {diff:.3e}")
            if diff > tol:
                failures.append(f"{model} {o['name']} on {run['input']}: {diff:.3e} > {tol:.1e}")

    summary = {"runs": len(results), "failures": failures,
               "worst_f32": max([r["max_abs_diff"] for r in results if r["precision"] == "f32"], default=None),
               "worst_int8": max([r["max_abs_diff"] for r in results if r["precision"] != "f32"], default=None)}
    print(json.dumps(summary, indent=2))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
