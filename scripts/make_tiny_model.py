#!/usr/bin/env python3
"""Build examples/models/tiny_bert.onnx, the small model of the README demo, and its
reference outputs.

A one-layer BERT-like encoder (vocab 64, hidden 32, 2 heads, FFN 64, opset 17) written
node by node in the style of a torch.onnx export: constants as Constant nodes, reshape
targets computed at run time through Shape -> Gather -> Unsqueeze -> Concat chains,
erf-GELU decomposed, a masked mean pool at the end. That gives the compiler's constant
folding and fusion passes the same kind of work a real export does, at a size that fits
in the repository (< 100 KB).

Deterministic (numpy seed 0), no network. Usage: python3 scripts/make_tiny_model.py
Writes, under examples/models/:
  tiny_bert.onnx
  tiny_bert.input_ids.npy, tiny_bert.attention_mask.npy       fixed [2, 8] int64 input
  tiny_bert.last_hidden_state.npy, tiny_bert.sentence_embedding.npy   onnxruntime output
"""

import math
import os

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

VOCAB, HIDDEN, HEADS, FFN, MAX_POS = 64, 32, 2, 64, 16
HEAD_DIM = HIDDEN // HEADS
EPS = 1e-12
OPSET = 17

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "examples", "models")


class Builder:
    """Collects nodes and initializers, naming them the way torch.onnx does."""

    def __init__(self):
        self.nodes, self.inits = [], []
        self.counts = {}
        self.matmul_ids = 700

    def node(self, scope, op, inputs, n_out=1, out_name=None, **attrs):
        k = self.counts.get((scope, op), 0)
        self.counts[(scope, op)] = k + 1
        name = f"{scope}/{op}" + (f"_{k}" if k else "")
        outs = [out_name] if out_name else [f"{name}_output_{i}" for i in range(n_out)]
        self.nodes.append(helper.make_node(op, inputs, outs, name=name, **attrs))
        return outs[0] if n_out == 1 else outs

    def const(self, scope, value):
        """A Constant node, as torch emits for literals (shape indices, scalars)."""
        arr = np.array(value)
        if arr.dtype == np.float64:
            arr = arr.astype(np.float32)
        return self.node(scope, "Constant", [], value=numpy_helper.from_array(arr))

    def weight(self, name, arr):
        self.inits.append(numpy_helper.from_array(arr.astype(np.float32), name))
        return name

    def matmul_weight(self, arr):
        """torch exports a Linear's transposed weight under an `onnx::MatMul_N` name."""
        self.matmul_ids += 1
        return self.weight(f"onnx::MatMul_{self.matmul_ids}", arr)

    def dim(self, scope, x, index):
        """x.size(index) as a scalar int64."""
        shape = self.node(scope, "Shape", [x])
        return self.node(scope, "Gather", [shape, self.const(scope, np.int64(index))], axis=0)

    def unsqueeze0(self, scope, scalar):
        return self.node(scope, "Unsqueeze", [scalar, self.const(scope, np.array([0], np.int64))])

    def linear(self, scope, x, w, b):
        """x @ w + b with bias first, like torch's export of nn.Linear."""
        y = self.node(scope, "MatMul", [x, self.matmul_weight(w)])
        return self.node(scope, "Add", [self.weight(f"{scope_to_param(scope)}.bias", b), y])

    def layer_norm(self, scope, x, gamma, beta, out_name=None):
        p = scope_to_param(scope)
        return self.node(
            scope,
            "LayerNormalization",
            [x, self.weight(f"{p}.weight", gamma), self.weight(f"{p}.bias", beta)],
            out_name=out_name,
            axis=-1,
            epsilon=EPS,
        )


def scope_to_param(scope):
    """'/bert/encoder/layer.0/attention/self/query' -> 'bert.encoder.layer.0.attention.self.query'."""
    return scope.strip("/").replace("/", ".")


def make_params(rng):
    def normal(*shape, scale=1.0):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    p = {
        "word": normal(VOCAB, HIDDEN, scale=0.5),
        "pos": normal(MAX_POS, HIDDEN, scale=0.5),
    }
    for ln in ["ln_emb", "ln_attn", "ln_out"]:
        p[ln] = (1.0 + normal(HIDDEN, scale=0.1), normal(HIDDEN, scale=0.1))
    for lin, (fan_in, fan_out) in {
        "q": (HIDDEN, HIDDEN),
        "k": (HIDDEN, HIDDEN),
        "v": (HIDDEN, HIDDEN),
        "o": (HIDDEN, HIDDEN),
        "ffn_in": (HIDDEN, FFN),
        "ffn_out": (FFN, HIDDEN),
    }.items():
        p[lin] = (normal(fan_in, fan_out, scale=1 / math.sqrt(fan_in)), normal(fan_out, scale=0.1))
    return p


def build(p):
    b = Builder()
    emb, enc, attn = "/bert/embeddings", "/bert/encoder/layer.0", "/bert/encoder/layer.0/attention/self"

    # Embeddings: word + position, the positions sliced from a buffer by the run-time length.
    b.inits.append(numpy_helper.from_array(np.arange(MAX_POS, dtype=np.int64)[None, :], "onnx::Slice_100"))
    seq = b.dim(emb, "input_ids", 1)
    pos_ids = b.node(
        emb,
        "Slice",
        [
            "onnx::Slice_100",
            b.const(emb, np.array([0], np.int64)),
            b.unsqueeze0(emb, seq),
            b.const(emb, np.array([1], np.int64)),
            b.const(emb, np.array([1], np.int64)),
        ],
    )
    words = b.node(f"{emb}/word_embeddings", "Gather", [b.weight("bert.embeddings.word_embeddings.weight", p["word"]), "input_ids"])
    pos = b.node(f"{emb}/position_embeddings", "Gather", [b.weight("bert.embeddings.position_embeddings.weight", p["pos"]), pos_ids])
    h = b.node(emb, "Add", [words, pos])
    h = b.layer_norm(f"{emb}/LayerNorm", h, *p["ln_emb"])

    # Extended attention mask: (1 - mask[:, None, None, :]) * finfo(float32).min.
    m = b.node("/bert", "Unsqueeze", ["attention_mask", b.const("/bert", np.array([1], np.int64))])
    m = b.node("/bert", "Unsqueeze", [m, b.const("/bert", np.array([2], np.int64))])
    m = b.node("/bert", "Cast", [m], to=TensorProto.FLOAT)
    m = b.node("/bert", "Sub", [b.const("/bert", np.float32(1.0)), m])
    mask_bias = b.node("/bert", "Mul", [m, b.const("/bert", np.float32(np.finfo(np.float32).min))])

    # Self-attention; every reshape target is rebuilt from the input's run-time shape.
    def heads(x, perm):
        batch = b.unsqueeze0(attn, b.dim(attn, h, 0))
        length = b.unsqueeze0(attn, b.dim(attn, h, 1))
        shape = b.node(
            attn,
            "Concat",
            [batch, length, b.const(attn, np.array([HEADS], np.int64)), b.const(attn, np.array([HEAD_DIM], np.int64))],
            axis=0,
        )
        return b.node(attn, "Transpose", [b.node(attn, "Reshape", [x, shape], allowzero=0)], perm=perm)

    q = heads(b.linear(f"{attn}/query", h, *p["q"]), [0, 2, 1, 3])
    k = heads(b.linear(f"{attn}/key", h, *p["k"]), [0, 2, 3, 1])
    v = heads(b.linear(f"{attn}/value", h, *p["v"]), [0, 2, 1, 3])
    scores = b.node(attn, "MatMul", [q, k])
    scores = b.node(attn, "Div", [scores, b.const(attn, np.float32(math.sqrt(HEAD_DIM)))])
    scores = b.node(attn, "Add", [scores, mask_bias])
    probs = b.node(attn, "Softmax", [scores], axis=-1)
    ctx = b.node(attn, "MatMul", [probs, v])
    ctx = b.node(attn, "Transpose", [ctx], perm=[0, 2, 1, 3])
    batch = b.unsqueeze0(attn, b.dim(attn, ctx, 0))
    length = b.unsqueeze0(attn, b.dim(attn, ctx, 1))
    shape = b.node(attn, "Concat", [batch, length, b.const(attn, np.array([HIDDEN], np.int64))], axis=0)
    ctx = b.node(attn, "Reshape", [ctx, shape], allowzero=0)
    out = b.linear(f"{enc}/attention/output/dense", ctx, *p["o"])
    out = b.node(f"{enc}/attention/output", "Add", [out, h])
    h = b.layer_norm(f"{enc}/attention/output/LayerNorm", out, *p["ln_attn"])

    # Feed-forward with GELU(x) = x * 0.5 * (1 + erf(x / sqrt(2))), as torch exports it.
    act = "/bert/encoder/layer.0/intermediate/intermediate_act_fn"
    x = b.linear(f"{enc}/intermediate/dense", h, *p["ffn_in"])
    g = b.node(act, "Div", [x, b.const(act, np.float32(math.sqrt(2.0)))])
    g = b.node(act, "Erf", [g])
    g = b.node(act, "Add", [g, b.const(act, np.float32(1.0))])
    g = b.node(act, "Mul", [x, g])
    g = b.node(act, "Mul", [g, b.const(act, np.float32(0.5))])
    y = b.linear(f"{enc}/output/dense", g, *p["ffn_out"])
    y = b.node(f"{enc}/output", "Add", [y, h])
    last = b.layer_norm(f"{enc}/output/LayerNorm", y, *p["ln_out"], out_name="last_hidden_state")

    # Masked mean pool (sentence-transformers): sum(h * mask) / max(sum(mask), 1e-9).
    pool = "/pooling"
    mexp = b.node(pool, "Unsqueeze", ["attention_mask", b.const(pool, np.array([-1], np.int64))])
    mexp = b.node(pool, "Expand", [mexp, b.node(pool, "Shape", [last])])
    mexp = b.node(pool, "Cast", [mexp], to=TensorProto.FLOAT)
    total = b.node(pool, "ReduceSum", [b.node(pool, "Mul", [last, mexp]), b.const(pool, np.array([1], np.int64))], keepdims=0)
    count = b.node(pool, "ReduceSum", [mexp, b.const(pool, np.array([1], np.int64))], keepdims=0)
    count = b.node(pool, "Clip", [count, b.const(pool, np.float32(1e-9))])
    b.node(pool, "Div", [total, count], out_name="sentence_embedding")

    inputs = [
        helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
        helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"]),
    ]
    outputs = [
        helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "seq", HIDDEN]),
        helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT, ["batch", HIDDEN]),
    ]
    graph = helper.make_graph(b.nodes, "tiny_bert", inputs, outputs, b.inits)
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="smelt-make-tiny-model"
    )
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def reference(p, ids, mask):
    """The same network in numpy, to check the graph computes what it should."""

    def ln(x, gb):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + EPS) * gb[0] + gb[1]

    def lin(x, wb):
        return x @ wb[0] + wb[1]

    erf = np.vectorize(math.erf)
    bsz, n = ids.shape
    h = ln(p["word"][ids] + p["pos"][:n][None], p["ln_emb"])
    split = lambda t: t.reshape(bsz, n, HEADS, HEAD_DIM).transpose(0, 2, 1, 3)
    q, k, v = (split(lin(h, p[w])) for w in "qkv")
    s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(HEAD_DIM)
    s = s + (1.0 - mask[:, None, None, :]) * np.finfo(np.float32).min
    s = np.exp(s - s.max(-1, keepdims=True))
    a = (s / s.sum(-1, keepdims=True)) @ v
    h = ln(lin(a.transpose(0, 2, 1, 3).reshape(bsz, n, HIDDEN), p["o"]) + h, p["ln_attn"])
    x = lin(h, p["ffn_in"])
    h = ln(lin(x * 0.5 * (1.0 + erf(x / math.sqrt(2.0))), p["ffn_out"]) + h, p["ln_out"])
    m = mask[:, :, None].astype(np.float64)
    return h, (h * m).sum(1) / np.maximum(m.sum(1), 1e-9)


def main():
    rng = np.random.default_rng(0)
    params = make_params(rng)
    model = build(params)
    os.makedirs(OUT_DIR, exist_ok=True)
    path = os.path.join(OUT_DIR, "tiny_bert.onnx")
    onnx.save_model(model, path)
    size = os.path.getsize(path)
    assert size < 100_000, f"tiny_bert.onnx is {size} bytes"

    ids = rng.integers(0, VOCAB, size=(2, 8), dtype=np.int64)
    mask = np.ones((2, 8), dtype=np.int64)
    mask[1, 5:] = 0  # the second sentence is padded
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    last, sent = sess.run(["last_hidden_state", "sentence_embedding"], {"input_ids": ids, "attention_mask": mask})
    ref_last, ref_sent = reference(params, ids, mask)
    np.testing.assert_allclose(last, ref_last, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(sent, ref_sent, rtol=1e-4, atol=1e-4)

    for name, arr in [
        ("input_ids", ids),
        ("attention_mask", mask),
        ("last_hidden_state", last),
        ("sentence_embedding", sent),
    ]:
        np.save(os.path.join(OUT_DIR, f"tiny_bert.{name}.npy"), arr)
    print(f"wrote {path} ({size} bytes, {len(model.graph.node)} nodes) and reference outputs")


if __name__ == "__main__":
    main()
