#!/usr/bin/env python3
"""Time smelt's rewrite passes on the whole MiniLM export, and show what they did.

Run by hand (not by CI), after `cargo build --release -p smelt-cli`:

    python3 bench/rewrite_minilm.py [--models ../shared/models] [--repeat 7]

Runs `smelt opt MODEL -p <pipeline>` --repeat times for each pipeline and prints, per
pass, the median wall time and the pass notes of the last run (rules fired, e-graph
sizes, saturation/extraction times). Medians only: the machines are shared and noisy.
"""
import argparse
import os
import re
import statistics
import subprocess
import tempfile
from collections import defaultdict

# `simplify` runs recognition as its first stage (otherwise it would move the 0.5 of an
# erf-form GELU into the next matmul's weight and hide the GELU); `canonicalize` includes
# the recognition rules too.
PIPELINES = [
    "canonicalize",
    "simplify,fusion-groups",
    "canonicalize,simplify,fusion-groups,shift-candidates",
]


def run_once(smelt, model, pipeline):
    with tempfile.TemporaryDirectory() as d:
        out = subprocess.run(
            [smelt, "opt", model, "-p", pipeline, "-o", os.path.join(d, "out.smelt")],
            capture_output=True, text=True, check=True,
        )
    rows = []
    for line in out.stderr.splitlines():
        m = re.match(r"^(\S+)\s+([\d.]+) ms\s+ops (\d+) -> (\d+)\s*(.*)$", line)
        if m:
            rows.append((m.group(1), float(m.group(2)), int(m.group(3)), int(m.group(4)), m.group(5)))
    return rows


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default=os.environ.get("SMELT_MODELS", os.path.join(root, "..", "shared", "models")))
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    smelt = os.path.join(root, "target", "release", "smelt")
    model = os.path.join(args.models, "minilm", "minilm_l6_v2.onnx")
    for pipeline in PIPELINES:
        times = defaultdict(list)
        totals = []
        last = []
        for _ in range(args.repeat):
            last = run_once(smelt, model, pipeline)
            for name, ms, *_ in last:
                times[name].append(ms)
            totals.append(sum(r[1] for r in last))
        print(f"\n== {pipeline}  (MiniLM, {args.repeat} runs, median total {statistics.median(totals):.1f} ms)")
        for name, _, before, after, notes in last:
            print(f"  {name:<18} median {statistics.median(times[name]):8.1f} ms  ops {before} -> {after}")
            for note in notes.split("; "):
                if note:
                    print(f"      {note}")


if __name__ == "__main__":
    main()
