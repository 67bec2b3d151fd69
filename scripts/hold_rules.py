#!/usr/bin/env python3
"""Compares rules for showing a catalogue record over a hold, on the per-frame hits that
`catalogue_eval --holds N --hold-records FILE` writes (one JSON line per hold: `truth`, the
true entry or null for an uncatalogued sleeve, and `frames`, each frame's best
[entry, score, runner-up score] or null).

    scripts/hold_rules.py HOLDS.jsonl [HOLDS.jsonl ...]      (JSON on stdout)

A frame matches at 0.90 / 0.05 (the kiosk's defaults) unless a rule says otherwise.
"2 in a row" is the kiosk's `--record-frames 2` (the default), "3 in a row" `--record-frames 3`.
"""
import json
import sys

THRESHOLD, MARGIN = 0.90, 0.05


def matches(frame, threshold=THRESHOLD, margin=MARGIN):
    return frame is not None and frame[1] >= threshold and frame[1] - frame[2] >= margin


def in_a_row(frames, need, later=THRESHOLD):
    """The entry that matched `need` frames in a row (frames after the first at `later`)."""
    run, n = None, 0
    for f in frames:
        if run is not None and f is not None and f[0] == run and matches(f, later):
            n += 1
        elif matches(f):
            run, n = f[0], 1
        else:
            run, n = None, 0
        if run is not None and n >= need:
            return run
    return None


def k_of_n(frames, k):
    """The one entry that matched at least `k` of the frames."""
    counts = {}
    for f in frames:
        if matches(f):
            counts[f[0]] = counts.get(f[0], 0) + 1
    best = [e for e, n in counts.items() if n >= k]
    return best[0] if len(best) == 1 else None


def one_confident(frames, threshold=0.95, margin=0.10):
    return next((f[0] for f in frames if matches(f, threshold, margin)), None)


RULES = {
    "3 in a row": lambda fr: in_a_row(fr, 3),
    "2 in a row": lambda fr: in_a_row(fr, 2),
    "3 of the frames": lambda fr: k_of_n(fr, 3),
    "2 of the frames": lambda fr: k_of_n(fr, 2),
    "3 in a row, later frames at 0.85": lambda fr: in_a_row(fr, 3, later=0.85),
    "3 in a row, later frames at 0.80": lambda fr: in_a_row(fr, 3, later=0.80),
    "3 in a row, or one frame at 0.95 / 0.10": lambda fr: in_a_row(fr, 3) or one_confident(fr),
    "any one matching frame (upper bound)": lambda fr: k_of_n(fr, 1),
}


def score(holds):
    cat = [h for h in holds if h["truth"] is not None]
    other = [h for h in holds if h["truth"] is None]
    out = {"catalogued_holds": len(cat), "uncatalogued_holds": len(other), "rules": {}}
    for name, rule in RULES.items():
        shown = [(h["truth"], rule(h["frames"])) for h in cat]
        false = sum(rule(h["frames"]) is not None for h in other)
        out["rules"][name] = {
            "recognised": sum(s == t for t, s in shown) / max(len(cat), 1),
            "wrong_record": sum(s is not None and s != t for t, s in shown),
            "false_match": false / max(len(other), 1),
            "false_holds": false,
        }
    return out


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    report = {}
    for path in sys.argv[1:]:
        try:
            with open(path) as f:
                holds = [json.loads(line) for line in f if line.strip()]
        except (OSError, ValueError) as e:
            sys.exit(f"hold_rules: cannot read {path}: {e}")
        report[path] = score(holds)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
