#!/usr/bin/env python3
"""Times one ONNX model with onnxruntime (CPU) on a random [1,3,S,S] input; prints JSON.

The onnxruntime peer of `sleeve-edge bench`: same file, same thread count.
Usage: bench_ort.py MODEL.onnx --size S [--threads N] [--iters N] [--warmup N]
"""
import argparse
import json
import sys
import time


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("model")
    ap.add_argument("--size", type=int, required=True, help="input side S")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=5)
    a = ap.parse_args()
    try:
        import numpy as np
        import onnxruntime as ort
    except ImportError as e:
        print(json.dumps({"model": a.model, "error": f"onnxruntime not installed: {e}"}))
        return 1
    so = ort.SessionOptions()
    so.intra_op_num_threads = a.threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    t = time.perf_counter()
    sess = ort.InferenceSession(a.model, so, providers=["CPUExecutionProvider"])
    load_ms = (time.perf_counter() - t) * 1000
    name = sess.get_inputs()[0].name
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, a.size, a.size)).astype(np.float32)
    for _ in range(a.warmup):
        sess.run(None, {name: x})
    times = []
    for _ in range(a.iters):
        t = time.perf_counter()
        sess.run(None, {name: x})
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    rank = lambda q: times[max(1, min(len(times), -(-int(q * len(times) * 1000) // 1000))) - 1]
    print(json.dumps({
        "model": a.model,
        "runtime": f"onnxruntime {ort.__version__}",
        "threads": a.threads,
        "iters": a.iters,
        "load_ms": load_ms,
        "p50_ms": rank(0.5),
        "p95_ms": rank(0.95),
        "mean_ms": sum(times) / len(times),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
