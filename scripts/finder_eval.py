#!/usr/bin/env python3
"""Scores sleeve-edge's sleeve finder against `sleeve synth scenes` ground truth; prints JSON.

    sleeve synth scenes --out SCENES --count 200 [--covers DIR]
    sleeve-edge run --bundle B --files SCENES/frames --every-frame --json FRAMES.jsonl
    scripts/finder_eval.py SCENES FRAMES.jsonl

Presence: a frame with a sleeve in the truth should report one, an empty frame none.
Corners: for frames where both have a sleeve, the largest distance between a found corner
and the true one, in pixels and relative to the true sleeve's side (sqrt of its area).
A found sleeve whose error exceeds 10 % of the side is counted as "wrong sleeve".
"""
import json
import math
import os
import sys


def area(q):
    s = 0.0
    for i in range(4):
        (x0, y0), (x1, y1) = q[i], q[(i + 1) % 4]
        s += x0 * y1 - x1 * y0
    return abs(s) / 2


def pct(v, q):
    if not v:
        return None
    v = sorted(v)
    return v[max(1, min(len(v), math.ceil(q * len(v)))) - 1]


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    scenes_dir, frames = sys.argv[1], sys.argv[2]
    truth = {os.path.basename(r["file_name"]): r for r in json.load(open(os.path.join(scenes_dir, "scenes.json")))}
    tp = fn = fp = tn = wrong = 0
    err_px, err_rel, fn_names, fp_names, wrong_names = [], [], [], [], []
    seen = 0
    for line in open(frames):
        v = json.loads(line)
        if v.get("event") != "frame":
            continue
        name = os.path.basename(v["source"])
        r = truth.get(name)
        if r is None:
            continue
        seen += 1
        found = v.get("sleeve")
        gt = r["corners"]
        if gt is None and found is None:
            tn += 1
        elif gt is None:
            fp += 1
            fp_names.append(name)
        elif found is None:
            fn += 1
            fn_names.append(name)
        else:
            tp += 1
            e = max(math.dist(a, b) for a, b in zip(found["corners"], gt))
            side = math.sqrt(area(gt))
            err_px.append(e)
            err_rel.append(e / side)
            if e / side > 0.10:
                wrong += 1
                wrong_names.append(name)
    pos, neg = tp + fn, tn + fp
    out = {
        "frames": seen,
        "with_sleeve": pos,
        "without_sleeve": neg,
        "found_when_present": tp,
        "missed": fn,
        "false_sleeve_on_empty": fp,
        "empty_correct": tn,
        "recall": tp / pos if pos else None,
        "empty_frames_correct": tn / neg if neg else None,
        "wrong_sleeve_over_10pct": wrong,
        "good_within_10pct_of_present": (tp - wrong) / pos if pos else None,
        "corner_err_px": {"p50": pct(err_px, 0.5), "p90": pct(err_px, 0.9), "max": max(err_px, default=None)},
        "corner_err_rel_side": {"p50": pct(err_rel, 0.5), "p90": pct(err_rel, 0.9), "max": max(err_rel, default=None)},
        "within_2pct_side": sum(e <= 0.02 for e in err_rel) / len(err_rel) if err_rel else None,
        "within_5pct_side": sum(e <= 0.05 for e in err_rel) / len(err_rel) if err_rel else None,
        "missed_frames": fn_names[:20],
        "false_frames": fp_names[:20],
        "wrong_frames": wrong_names[:20],
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
