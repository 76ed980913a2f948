#!/usr/bin/env python3
"""Fidelity of a quantized MiniLM on the shared corpus, beside ONNX Runtime's INT8
dynamic quantization, in one run.

Run by hand (not by CI), after `cargo build --release -p smelt-cli --features llvm` and
`scripts/setup.sh`:

    python3 bench/quant_fidelity.py [--pipeline P]... [--calib-rows 128] [--backend llvm]

Protocol (the shared corpus's README): the corpus has 500 sentences and 200 paragraphs
tokenized at seq 128 with ORT FP32 sentence embeddings. The first `--calib-rows` (at most
128) rows calibrate, half sentences and half paragraphs (so the static activation ranges
see full-length inputs too); every other row is evaluated. For each engine: cosine of each row's embedding to the FP32 reference
(mean and min), Spearman correlation of all pairwise cosine similarities against the
reference's, and the share of rows whose nearest neighbour (by cosine, among the
evaluated rows) is unchanged. Also the model file size: smelt's `export` of the
quantized graph (standard QDQ ONNX) and ORT's quantized file.

smelt quantizes once (`smelt export -p PIPELINE --calib ...`, which writes the standard
QDQ ONNX file whose size is reported) and then runs that file itself (`smelt run
--backend llvm`, after folding the weights' DequantizeLinear nodes) on all evaluated rows
as one batch.
"""
import argparse
import os
import subprocess
import tempfile

import numpy as np
import onnxruntime as ort
from onnxruntime.quantization import QuantType, quantize_dynamic

INPUTS = ["input_ids", "attention_mask", "token_type_ids"]
EVERYTHING = (
    "fold-constants,canonicalize,simplify,cse,dce,"
    "blockwise-quant{weights=8,activations=8,block=128,act_block=64,scale=f16,calibrate=mse,"
    "gptq=true,ops=matmul+embedding+gelu+softmax+layernorm+residual}"
)


def load_corpus(models):
    d = os.path.join(models, "minilm", "corpus")
    parts = {}
    for kind in ["sentences", "paragraphs"]:
        parts[kind] = {n: np.load(os.path.join(d, f"{kind}.{n}.npy")) for n in INPUTS}
        parts[kind]["ref"] = np.load(os.path.join(d, f"{kind}.sentence_embedding.ort_fp32.npy"))
    return parts


def cosines(a, b):
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return np.sum(a * b, axis=1)


def rankdata(x):
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = np.arange(len(x), dtype=np.float64)
    # Average ranks over ties.
    sx = x[order]
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and sx[j + 1] == sx[i]:
            j += 1
        if j > i:
            ranks[order[i : j + 1]] = (i + j) / 2.0
        i = j + 1
    return ranks


def metrics(emb, ref):
    cos = cosines(emb, ref)
    n = len(ref)
    un = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    ur = ref / np.linalg.norm(ref, axis=1, keepdims=True)
    se, sr = un @ un.T, ur @ ur.T
    iu = np.triu_indices(n, 1)
    rho = np.corrcoef(rankdata(se[iu]), rankdata(sr[iu]))[0, 1]
    np.fill_diagonal(se, -np.inf)
    np.fill_diagonal(sr, -np.inf)
    nn = float(np.mean(np.argmax(se, axis=1) == np.argmax(sr, axis=1)))
    return cos.mean(), cos.min(), rho, nn


def quantize_and_run(smelt, model, pipeline, calib, feeds, backend, threads, d):
    """Export the quantized model (calibrating once), then run the export with smelt.
    Returns the embeddings and the exported bytes (model file plus external data)."""
    out = os.path.join(d, "q.onnx")
    cmd = [smelt, "export", model, "-p", pipeline, "-o", out]
    for n in INPUTS:
        cp = os.path.join(d, f"calib.{n}.npy")
        np.save(cp, calib[n])
        cmd += ["--calib", f"{n}={cp}"]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    size = sum(os.path.getsize(f) for f in [out, os.path.join(d, "q.data"), out + ".data"]
               if os.path.exists(f))
    # The exported weights are blocked DequantizeLinear nodes on constant codes, which
    # lowering does not take yet: fold them (into f32 constants holding exactly the
    # decoded values) before compiling.
    cmd = [smelt, "run", out, "-p", "fold-constants{max-elements=100000000}", "--backend", backend,
           "--threads", str(threads), "--output-dir", os.path.join(d, "out")]
    for n in INPUTS:
        ip = os.path.join(d, f"eval.{n}.npy")
        np.save(ip, feeds[n])
        cmd += ["--input", f"{n}={ip}"]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return np.load(os.path.join(d, "out", "sentence_embedding.npy")), size


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--smelt", default="target/release/smelt")
    ap.add_argument("--models", default="../shared/models")
    ap.add_argument("--pipeline", action="append", help="smelt pipelines (default: W8A8 everything)")
    ap.add_argument("--calib-rows", type=int, default=128)
    ap.add_argument("--backend", default="llvm")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    pipelines = a.pipeline or [EVERYTHING]
    model = os.path.join(a.models, "minilm", "minilm_l6_v2.onnx")
    corpus = load_corpus(a.models)
    k = min(a.calib_rows, 128)
    ks, kp = k - k // 2, k // 2
    s, p = corpus["sentences"], corpus["paragraphs"]
    calib = {n: np.concatenate([s[n][:ks], p[n][:kp]]) for n in INPUTS}
    feeds = {n: np.concatenate([s[n][ks:], p[n][kp:]]) for n in INPUTS}
    ref = np.concatenate([s["ref"][ks:], p["ref"][kp:]])
    print(f"calibration: {ks} sentences + {kp} paragraphs; evaluation: {len(ref)} rows "
          f"({len(s['ref']) - ks} sentences + {len(p['ref']) - kp} paragraphs), seq {feeds['input_ids'].shape[1]}")
    print("| engine | mean cos | min cos | Spearman | NN unchanged | file bytes |")
    print("| --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as d:
        qpath = os.path.join(d, "ort_int8_dynamic_pc.onnx")
        quantize_dynamic(model, qpath, per_channel=True, weight_type=QuantType.QInt8)
        sess = ort.InferenceSession(qpath, providers=["CPUExecutionProvider"])
        outs = []
        for i in range(0, len(ref), 64):
            f = {n: feeds[n][i : i + 64] for n in INPUTS}
            outs.append(sess.run(["sentence_embedding"], f)[0])
        m = metrics(np.concatenate(outs), ref)
        print(f"| ORT INT8 dynamic per-channel | {m[0]:.5f} | {m[1]:.5f} | {m[2]:.5f} | {m[3]:.3f} | {os.path.getsize(qpath)} |")
        for pipe in pipelines:
            emb, size = quantize_and_run(a.smelt, model, pipe, calib, feeds, a.backend, a.threads, d)
            m = metrics(emb, ref)
            print(f"| smelt `{pipe}` | {m[0]:.5f} | {m[1]:.5f} | {m[2]:.5f} | {m[3]:.3f} | {size} |")


if __name__ == "__main__":
    main()
