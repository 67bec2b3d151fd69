#!/usr/bin/env python3
"""Times one ONNX model with onnxruntime (CPU) on a random [1,3,S,S] input; prints JSON.

The onnxruntime peer of `sleeve-edge bench`: same file, same thread count. Also counts the
model's multiply-accumulates (Conv / QLinearConv / ConvInteger / MatMul / Gemm and their
integer forms, from ONNX shape inference) and reports this process's peak RSS.

Usage: bench_ort.py MODEL.onnx --size S [--threads N] [--iters N] [--warmup N]
       bench_ort.py MODEL.onnx --size S --macs-only
"""
import argparse
import json
import resource
import sys
import time
from math import prod


def peak_rss_kib() -> int:
    # Linux: ru_maxrss is in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def count_macs(path: str, size: int) -> dict:
    """Multiply-accumulates of one inference, per op type, from ONNX shape inference."""
    import onnx
    from onnx import shape_inference

    model = onnx.load(path)
    g = model.graph
    inits = {t.name for t in g.initializer}
    first = next(i for i in g.input if i.name not in inits)
    dims = first.type.tensor_type.shape.dim
    for d, v in zip(dims, [1, 3, size, size]):
        d.ClearField("dim_param")
        d.dim_value = v
    model = shape_inference.infer_shapes(model)
    g = model.graph
    shapes = {}
    for vi in list(g.value_info) + list(g.input) + list(g.output):
        t = vi.type.tensor_type
        if t.HasField("shape") and all(d.HasField("dim_value") for d in t.shape.dim):
            shapes[vi.name] = [d.dim_value for d in t.shape.dim]
    for t in g.initializer:
        shapes[t.name] = list(t.dims)
    for n in g.node:  # Constant nodes (weights stored as constants)
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    shapes[n.output[0]] = list(a.t.dims)
    per_op = {}
    unknown = []

    def add(op, v):
        per_op[op] = per_op.get(op, 0) + int(v)

    for n in g.node:
        op = n.op_type
        try:
            if op in ("Conv", "ConvInteger", "QLinearConv"):
                w = n.input[3] if op == "QLinearConv" else n.input[1]
                out = shapes[n.output[0]]
                ws = shapes[w]  # [M, C/group, kh, kw]
                add(op, prod(out) * prod(ws[1:]))
            elif op in ("MatMul", "MatMulInteger", "QLinearMatMul"):
                a, b = (n.input[0], n.input[3]) if op == "QLinearMatMul" else (n.input[0], n.input[1])
                k = shapes[a][-1]
                add(op, prod(shapes[n.output[0]]) * k)
            elif op == "Gemm":
                trans_a = next((x.i for x in n.attribute if x.name == "transA"), 0)
                a = shapes[n.input[0]]
                k = a[0] if trans_a else a[-1]
                add(op, prod(shapes[n.output[0]]) * k)
        except (KeyError, IndexError):
            unknown.append(n.name or op)
    return {"macs": sum(per_op.values()), "macs_per_op": per_op, "macs_unknown_nodes": unknown}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--size", type=int, required=True, help="input side S")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--no-spin", action="store_true", help="stop idle worker threads spinning (default: ORT's own default)")
    ap.add_argument("--macs-only", action="store_true", help="only count MACs (needs the onnx package)")
    a = ap.parse_args()
    out = {"model": a.model, "size": a.size}
    try:
        out.update(count_macs(a.model, a.size))
    except Exception as e:  # MACs are informative; timing still runs without them
        out["macs_error"] = f"{type(e).__name__}: {e}"
    if a.macs_only:
        print(json.dumps(out))
        return 0
    try:
        import numpy as np
        import onnxruntime as ort
    except ImportError as e:
        out["error"] = f"onnxruntime not installed: {e}"
        print(json.dumps(out))
        return 1
    rss_before = peak_rss_kib()
    so = ort.SessionOptions()
    so.intra_op_num_threads = a.threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if a.no_spin:
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    t = time.perf_counter()
    try:
        sess = ort.InferenceSession(a.model, so, providers=["CPUExecutionProvider"])
    except Exception as e:
        out["error"] = f"onnxruntime cannot load the model: {e}"
        print(json.dumps(out))
        return 1
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

    def rank(q: float) -> float:
        # Nearest rank, as sleeve-edge bench computes it.
        i = -(-int(round(q * len(times) * 1e6)) // 1_000_000)
        return times[max(1, min(len(times), i)) - 1]

    out.update({
        "runtime": f"onnxruntime {ort.__version__}",
        "threads": a.threads,
        "iters": a.iters,
        "load_ms": load_ms,
        "p50_ms": rank(0.5),
        "p95_ms": rank(0.95),
        "mean_ms": sum(times) / len(times),
        "min_ms": times[0],
        "peak_rss_kib": peak_rss_kib(),
        "rss_before_session_kib": rss_before,
    })
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
