#!/usr/bin/env python3
"""smelt's reference interpreter beside ONNX Runtime on MiniLM, in one run.

Run by hand (not by CI), after `cargo build --release -p smelt-cli` and
`scripts/setup.sh`:

    python3 bench/interp_vs_ort.py [--models ../shared/models] [--repeat 20] [--threads 2]

Prints import time, and median/p90 run times for batch 1 x seq 128 for both engines, and
their ratio. Absolute times drift between runs on shared machines: compare the ratio.
"""
import argparse
import os
import re
import statistics
import subprocess
import tempfile
import time

import numpy as np
import onnxruntime as ort


def main():
    ap = argparse.ArgumentParser()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--models", default=os.environ.get("SMELT_MODELS", os.path.join(root, "..", "shared", "models")))
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    model = os.path.join(args.models, "minilm", "minilm_l6_v2.onnx")
    ref = os.path.join(args.models, "minilm", "reference")
    smelt = os.path.join(root, "target", "release", "smelt")

    names = ["input_ids", "attention_mask", "token_type_ids"]
    feeds = {n: np.load(os.path.join(ref, f"b4_s128.{n}.npy"))[:1] for n in names}

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    opts.inter_op_num_threads = 1
    t = time.perf_counter()
    sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    ort_load = (time.perf_counter() - t) * 1e3
    sess.run(None, feeds)
    times = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        sess.run(None, feeds)
        times.append((time.perf_counter() - t) * 1e3)
    ort_med, ort_p90 = statistics.median(times), sorted(times)[int(len(times) * 0.9) - 1]

    with tempfile.TemporaryDirectory() as d:
        cmd = [smelt, "run", model, "--backend", "interp", "--repeat", str(args.repeat)]
        for n, a in feeds.items():
            p = os.path.join(d, f"{n}.npy")
            np.save(p, a)
            cmd += ["--input", f"{n}={p}"]
        env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads))
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
        m = re.search(r"median ([\d.]+) ms, p90 ([\d.]+) ms", out.stderr)
        smelt_med, smelt_p90 = float(m.group(1)), float(m.group(2))
        insp = subprocess.run([smelt, "inspect", model], capture_output=True, text=True, check=True).stdout
        smelt_load = float(re.search(r"loaded in ([\d.]+) ms", insp).group(1))

    print(f"MiniLM b1 x s128, {args.threads} threads, {args.repeat} runs")
    print(f"{'engine':<22}{'load ms':>10}{'median ms':>12}{'p90 ms':>10}{'ratio':>8}")
    print(f"{'onnxruntime':<22}{ort_load:>10.1f}{ort_med:>12.2f}{ort_p90:>10.2f}{1.0:>8.2f}")
    print(f"{'smelt interpreter':<22}{smelt_load:>10.1f}{smelt_med:>12.2f}{smelt_p90:>10.2f}{smelt_med / ort_med:>8.2f}")


if __name__ == "__main__":
    main()
