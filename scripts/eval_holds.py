#!/usr/bin/env python3
"""Single-frame vs per-hold genre accuracy on camera scenes of held-out covers.

Usage:
  scripts/eval_holds.py --data runs/data --bundle models/default --out runs/holds \
      [--split test] [--holds 300] [--frames 5] [--seed 77] [--views 1]

1. links the covers of one split of a `sleeve dataset` directory (manifest.csv) into
   OUT/covers/<genre>/;
2. renders HOLDS sleeves, each held for FRAMES frames under a shaking camera
   (`sleeve synth scenes --frames-per-sleeve`);
3. classifies every frame with the kiosk's own finder and models
   (`sleeve-edge classify --find --top-k <all>`);
4. reports, as JSON on stdout and in OUT/holds.json: single-frame accuracy (every frame on
   its own; a frame where no sleeve is found counts as wrong) and per-hold accuracy (the
   mean of the probabilities of a hold's frames, what `sleeve-edge run` shows after
   `--hold-views` frames).

Binaries: $SLEEVE and $SLEEVE_EDGE (default target/release/sleeve, sleeve-edge).
"""
import argparse
import collections
import csv
import json
import os
import subprocess
import sys
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--bundle", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--split", default="test")
    ap.add_argument("--holds", type=int, default=300)
    ap.add_argument("--frames", type=int, default=5)
    ap.add_argument("--seed", type=int, default=77)
    ap.add_argument("--views", type=int, default=1)
    ap.add_argument("--edge-arg", action="append", default=[],
                    help="extra argument for `sleeve-edge classify` (repeat), e.g. --edge-arg=--finder-edges=per-channel")
    a = ap.parse_args()
    sleeve = os.environ.get("SLEEVE", "target/release/sleeve")
    edge = os.environ.get("SLEEVE_EDGE", "target/release/sleeve-edge")

    manifest = a.data / "manifest.csv"
    if not manifest.is_file():
        sys.exit(f"eval_holds: {manifest} not found (a `sleeve dataset` directory?)")
    covers = a.out / "covers"
    n_linked = 0
    with open(manifest, newline="") as f:
        for row in csv.DictReader(f):
            if row.get("split") != a.split:
                continue
            src = (a.data / row["path"]).resolve()
            dst = covers / row["genre"] / src.name
            dst.parent.mkdir(parents=True, exist_ok=True)
            if not dst.exists():
                dst.symlink_to(src)
            n_linked += 1
    if n_linked == 0:
        sys.exit(f"eval_holds: no '{a.split}' rows in {manifest}")

    scenes = a.out / "scenes"
    if not (scenes / "scenes.json").is_file():
        subprocess.run(
            [sleeve, "synth", "scenes", "--covers", str(covers), "--out", str(scenes),
             "--count", str(a.holds), "--frames-per-sleeve", str(a.frames),
             "--no-sleeve-prob", "0", "--seed", str(a.seed), "--force"],
            check=True)
    records = json.loads((scenes / "scenes.json").read_text())
    truth = {r["file_name"]: r["genre"] for r in records}
    frames = sorted(truth)
    labels_n = len(json.loads((a.bundle / "manifest.json").read_text())["labels"]["names"])
    out = subprocess.run(
        [edge, "classify", "--bundle", str(a.bundle), "--find", "--top-k", str(labels_n),
         "--views", str(a.views)] + a.edge_arg + [str(scenes / f) for f in frames],
        capture_output=True, text=True)
    lines = [json.loads(l) for l in out.stdout.splitlines() if l.strip()]
    if len(lines) != len(frames):
        sys.exit(f"eval_holds: {len(lines)} answers for {len(frames)} frames\n{out.stderr[-2000:]}")

    holds = collections.defaultdict(list)
    right_frames = found = 0
    for f, line in zip(frames, lines):
        hold = f.rsplit("_", 1)[0]
        probs = {t["genre"]: t["p"] for t in line.get("top", [])}
        holds[hold].append((truth[f], probs))
        if probs:
            found += 1
            right_frames += max(probs, key=probs.get) == truth[f]
    right_holds = 0
    for items in holds.values():
        g = items[0][0]
        mean = collections.Counter()
        for _, p in items:
            mean.update(p)
        right_holds += bool(mean) and max(mean, key=mean.get) == g
    report = {
        "split": a.split, "holds": len(holds), "frames": len(frames),
        "frames_per_hold": a.frames, "views": a.views, "seed": a.seed,
        "sleeve_found": found / len(frames),
        "single_frame_accuracy": right_frames / len(frames),
        "per_hold_accuracy": right_holds / len(holds),
        "bundle": str(a.bundle),
        "edge_args": a.edge_arg,
    }
    (a.out / "holds.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
