#!/usr/bin/env python3
"""smelt's compiled MiniLM (`smelt bench`) beside ONNX Runtime FP32, in one run.

Run by hand (not by CI), after `cargo build --release -p smelt-cli` and
`scripts/setup.sh`:

    python3 bench/compiled_vs_ort.py [--backends cranelift,llvm] [--runs 30] [--models DIR]

(`llvm` needs `cargo build --release -p smelt-cli --features llvm`.)

For batch 1 and 8 at sequence 128, with 1 and 2 threads, both engines get the same
inputs (the reference rows of the shared corpus, tiled to the batch). Prints median and
p90 latency per engine, the ratio smelt/ORT per backend (below 1: smelt is faster), smelt's
GFLOP/s, compile time and peak arena bytes. The machines are shared and noisy: compare
ratios taken in the same run, not absolute times across runs.
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


def ort_times(model, feeds, threads, runs):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    for _ in range(3):
        sess.run(None, feeds)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        sess.run(None, feeds)
        times.append((time.perf_counter() - t) * 1e3)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.9))]


def smelt_times(smelt, model, feeds, threads, runs, backend, batch, seq):
    with tempfile.TemporaryDirectory() as d:
        cmd = [smelt, "bench", model, "--backend", backend, "--batch", str(batch),
               "--seq", str(seq), "--threads", str(threads), "--runs", str(runs)]
        for n, a in feeds.items():
            p = os.path.join(d, f"{n}.npy")
            np.save(p, a)
            cmd += ["--input", f"{n}={p}"]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    m = re.search(r"median ([\d.]+) ms, p90 ([\d.]+) ms, ([\d.]+) GFLOP/s", out.stdout)
    c = re.search(r"compile ([\d.]+) ms .*arena (\d+) bytes", out.stderr)
    return float(m.group(1)), float(m.group(2)), float(m.group(3)), float(c.group(1)), int(c.group(2))


def main():
    ap = argparse.ArgumentParser()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--models", default=os.environ.get("SMELT_MODELS", os.path.join(root, "..", "shared", "models")))
    ap.add_argument("--backends", default="cranelift", help="comma-separated: cranelift,llvm")
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--seq", type=int, default=128)
    args = ap.parse_args()
    model = os.path.join(args.models, "minilm", "minilm_l6_v2.onnx")
    ref = os.path.join(args.models, "minilm", "reference")
    smelt = os.path.join(root, "target", "release", "smelt")
    names = ["input_ids", "attention_mask", "token_type_ids"]
    base = {n: np.load(os.path.join(ref, f"b4_s128.{n}.npy"))[:, : args.seq] for n in names}

    backends = [b for b in args.backends.split(",") if b]
    print(f"MiniLM-L6 FP32, seq {args.seq}, {args.runs} runs each")
    print(f"{'batch':>5} {'thr':>3} | {'ORT med':>8} {'p90':>7} | {'backend':>9} {'smelt med':>9} {'p90':>7} "
          f"{'GFLOP/s':>8} | {'smelt/ORT':>9} | {'compile ms':>10} {'arena MB':>8}")
    for batch in (1, 8):
        reps = -(-batch // 4)
        feeds = {n: np.ascontiguousarray(np.tile(a, (reps, 1))[:batch]) for n, a in base.items()}
        for threads in (1, 2):
            o_med, o_p90 = ort_times(model, feeds, threads, args.runs)
            for backend in backends:
                s_med, s_p90, gflops, compile_ms, arena = smelt_times(
                    smelt, model, feeds, threads, args.runs, backend, batch, args.seq)
                print(f"{batch:>5} {threads:>3} | {o_med:>8.2f} {o_p90:>7.2f} | {backend:>9} {s_med:>9.2f} "
                      f"{s_p90:>7.2f} {gflops:>8.1f} | {s_med / o_med:>9.2f} | {compile_ms:>10.0f} "
                      f"{arena / 1e6:>8.2f}")


if __name__ == "__main__":
    main()
