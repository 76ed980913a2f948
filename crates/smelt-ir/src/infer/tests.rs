//! Tests of the inference rules on small graphs.

use super::{dtype_from_onnx_code, infer_node, onnx_code_of};
use crate::{Attr, Attrs, Constant, DType, Dim, Graph, OpKind, Shape, Tensor, TensorType, ValueId};

/// Parse a type written as it prints: `f32[?b, 3, ?]`, `i64[]`, `f32[*]`.
fn t(s: &str) -> TensorType {
    let (dt, rest) = s.split_once('[').expect("type has a shape");
    let dtype: DType = dt.parse().expect("dtype");
    let inner = rest.trim_end_matches(']');
    if inner == "*" {
        return TensorType::unranked(dtype);
    }
    let dims = inner
        .split(", ")
        .filter(|p| !p.is_empty())
        .map(|p| match p {
            "?" => Dim::Unknown,
            _ if p.starts_with('?') => Dim::sym(&p[1..]),
            _ => Dim::Known(p.parse().expect("dim")),
        })
        .collect();
    TensorType::new(dtype, Shape::new(dims))
}

fn ints(g: &mut Graph, name: &str, v: &[i64]) -> ValueId {
    let t = Tensor::from_vec(vec![v.len()], v.to_vec()).unwrap();
    g.add_const(name, Constant::plain(t))
}

fn scalar_i64(g: &mut Graph, name: &str, v: i64) -> ValueId {
    g.add_const(name, Constant::plain(Tensor::scalar(v)))
}

fn zeros(g: &mut Graph, name: &str, ty: &str) -> ValueId {
    let ty = t(ty);
    let shape: Vec<usize> = ty.shape.as_known().unwrap();
    let n = shape.iter().product();
    let tensor = match ty.dtype {
        DType::F32 => Tensor::from_vec(shape, vec![0f32; n]),
        DType::F16 => Tensor::from_vec(shape, vec![half::f16::ZERO; n]),
        DType::I8 => Tensor::from_vec(shape, vec![0i8; n]),
        DType::U8 => Tensor::from_vec(shape, vec![0u8; n]),
        DType::I64 => Tensor::from_vec(shape, vec![0i64; n]),
        other => panic!("no zeros for {other}"),
    };
    g.add_const(name, Constant::plain(tensor.unwrap()))
}

/// Add a node whose outputs (of the given dtypes) are left to inference.
fn op(
    g: &mut Graph,
    op: OpKind,
    attrs: Attrs,
    inputs: &[Option<ValueId>],
    outs: &[DType],
) -> Vec<ValueId> {
    let outs = outs
        .iter()
        .map(|d| (String::new(), TensorType::unranked(*d)))
        .collect();
    let id = g.add_node("", op, attrs, inputs.to_vec(), outs).unwrap();
    g.node(id).outputs.clone()
}

fn op1(g: &mut Graph, kind: OpKind, attrs: Attrs, inputs: &[ValueId], out: DType) -> ValueId {
    let ins: Vec<Option<ValueId>> = inputs.iter().map(|v| Some(*v)).collect();
    op(g, kind, attrs, &ins, &[out])[0]
}

fn a() -> Attrs {
    Attrs::new()
}

fn int(name: &str, v: i64) -> Attrs {
    Attrs::new().with(name, Attr::Int(v))
}

fn ty(g: &Graph, v: ValueId) -> String {
    g.ty(v).to_string()
}

fn infer_err(g: &mut Graph) -> String {
    g.infer_types()
        .expect_err("inference should fail")
        .to_string()
}

/// `Shape -> Gather -> Unsqueeze -> Concat -> Reshape` as torch exports it for BERT's
/// attention heads keeps the batch and sequence symbols.
#[test]
fn bert_reshape_chain_keeps_symbols() {
    let mut g = Graph::new("bert");
    let h = g.add_input("hidden", t("f32[?batch_size, ?sequence_length, 384]"));
    let shape = op1(&mut g, OpKind::Shape, a(), &[h], DType::I64);
    let i0 = scalar_i64(&mut g, "i0", 0);
    let i1 = scalar_i64(&mut g, "i1", 1);
    let b = op1(
        &mut g,
        OpKind::Gather,
        int("axis", 0),
        &[shape, i0],
        DType::I64,
    );
    let s = op1(
        &mut g,
        OpKind::Gather,
        int("axis", 0),
        &[shape, i1],
        DType::I64,
    );
    let ax = ints(&mut g, "ax", &[0]);
    let bu = op1(&mut g, OpKind::Unsqueeze, a(), &[b, ax], DType::I64);
    let su = op1(&mut g, OpKind::Unsqueeze, a(), &[s, ax], DType::I64);
    let heads = ints(&mut g, "heads", &[12]);
    let hd = ints(&mut g, "hd", &[32]);
    let cat = op1(
        &mut g,
        OpKind::Concat,
        int("axis", 0),
        &[bu, su, heads, hd],
        DType::I64,
    );
    let r = op1(&mut g, OpKind::Reshape, a(), &[h, cat], DType::F32);
    let perm = Attrs::new().with("perm", Attr::Ints(vec![0, 2, 1, 3]));
    let tr = op1(&mut g, OpKind::Transpose, perm, &[r], DType::F32);
    g.infer_types().unwrap();
    assert_eq!(ty(&g, shape), "i64[3]");
    assert_eq!(ty(&g, b), "i64[]");
    assert_eq!(ty(&g, bu), "i64[1]");
    assert_eq!(ty(&g, cat), "i64[4]");
    assert_eq!(ty(&g, r), "f32[?batch_size, ?sequence_length, 12, 32]");
    assert_eq!(ty(&g, tr), "f32[?batch_size, 12, ?sequence_length, 32]");
}

/// Position ids: `Range(0, Gather(Shape(ids), 1), 1)` has the sequence length.
#[test]
fn range_over_a_shape_dim_is_symbolic() {
    let mut g = Graph::new("pos");
    let ids = g.add_input("ids", t("i64[?batch_size, ?sequence_length]"));
    let shape = op1(&mut g, OpKind::Shape, a(), &[ids], DType::I64);
    let i1 = scalar_i64(&mut g, "i1", 1);
    let s = op1(&mut g, OpKind::Gather, a(), &[shape, i1], DType::I64);
    let zero = scalar_i64(&mut g, "zero", 0);
    let one = scalar_i64(&mut g, "one", 1);
    let r = op1(&mut g, OpKind::Range, a(), &[zero, s, one], DType::I64);
    let five = scalar_i64(&mut g, "five", 5);
    let delta = g.add_input("delta", t("i64[]"));
    let r2 = op1(&mut g, OpKind::Range, a(), &[five, zero, delta], DType::I64);
    let neg = scalar_i64(&mut g, "neg", -2);
    let r3 = op1(&mut g, OpKind::Range, a(), &[five, zero, neg], DType::I64);
    let (f0, f1, fd) = (
        g.add_const("f0", Constant::plain(Tensor::scalar(0.0f32))),
        g.add_const("f1", Constant::plain(Tensor::scalar(1.0f32))),
        g.add_const("fd", Constant::plain(Tensor::scalar(0.3f32))),
    );
    let r4 = op1(&mut g, OpKind::Range, a(), &[f0, f1, fd], DType::F32);
    g.infer_types().unwrap();
    assert_eq!(ty(&g, r), "i64[?sequence_length]");
    assert_eq!(ty(&g, r2), "i64[?]");
    assert_eq!(ty(&g, r3), "i64[3]");
    assert_eq!(ty(&g, r4), "f32[4]");
}

/// Without anything to follow, a reshape to a computed shape gets only the rank.
#[test]
fn reshape_with_computed_shape_gets_rank() {
    let mut g = Graph::new("r");
    let x = g.add_input("x", t("f32[?b, ?s, 384]"));
    let s4 = g.add_input("s4", t("i64[4]"));
    let sn = g.add_input("sn", t("i64[?]"));
    let r4 = op1(&mut g, OpKind::Reshape, a(), &[x, s4], DType::F32);
    let rn = op1(&mut g, OpKind::Reshape, a(), &[x, sn], DType::F32);
    g.infer_types().unwrap();
    assert_eq!(ty(&g, r4), "f32[?, ?, ?, ?]");
    assert_eq!(ty(&g, rn), "f32[*]");
}

#[test]
fn reshape_copies_zero_and_infers_minus_one() {
    let mut g = Graph::new("r");
    let x = g.add_input("x", t("f32[?b, ?s, 384]"));
    let y = g.add_input("y", t("f32[2, 3, 4]"));
    let cases: Vec<(ValueId, &[i64], &str)> = vec![
        (x, &[0, 0, 12, 32], "f32[?b, ?s, 12, 32]"),
        (x, &[0, -1, 12, 32], "f32[?b, ?s, 12, 32]"),
        (x, &[-1, 0, 384], "f32[?b, ?s, 384]"),
        (x, &[-1, 384], "f32[?, 384]"),
        (x, &[0, -1, 32], "f32[?b, ?, 32]"),
        (y, &[-1, 4], "f32[6, 4]"),
        (y, &[0, -1], "f32[2, 12]"),
        (y, &[24], "f32[24]"),
    ];
    let mut outs = vec![];
    for (i, (v, shape, _)) in cases.iter().enumerate() {
        let s = ints(&mut g, &format!("s{i}"), shape);
        outs.push(op1(&mut g, OpKind::Reshape, a(), &[*v, s], DType::F32));
    }
    g.infer_types().unwrap();
    for (o, (_, shape, want)) in outs.iter().zip(&cases) {
        assert_eq!(ty(&g, *o), *want, "reshape to {shape:?}");
    }
    for (bad, msg) in [
        (&[5i64, -1][..], "cannot reshape"),
        (&[5, 5], "cannot reshape"),
        (&[-1, -1], "more than one -1"),
        (&[0, 0, 0, 0], "copies dim 3"),
        (&[-7, 2], "invalid value -7"),
    ] {
        let mut g = Graph::new("bad");
        let y = g.add_input("y", t("f32[2, 3, 4]"));
        let s = ints(&mut g, "s", bad);
        op1(&mut g, OpKind::Reshape, a(), &[y, s], DType::F32);
        let e = infer_err(&mut g);
        assert!(e.contains(msg), "{bad:?}: {e}");
    }
}

#[test]
fn matmul_broadcasts_batches_and_promotes_vectors() {
    let mut g = Graph::new("mm");
    let x = g.add_input("x", t("f32[?b, 1, 4, 8]"));
    let w = g.add_input("w", t("f32[3, 8, 5]"));
    let v = g.add_input("v", t("f32[8]"));
    let m = g.add_input("m", t("f32[4, 8]"));
    let k = g.add_input("k", t("f32[?b, 8, 5]"));
    let xw = op1(&mut g, OpKind::MatMul, a(), &[x, w], DType::F32);
    let vk = op1(&mut g, OpKind::MatMul, a(), &[v, k], DType::F32);
    let mv = op1(&mut g, OpKind::MatMul, a(), &[m, v], DType::F32);
    let vv = op1(&mut g, OpKind::MatMul, a(), &[v, v], DType::F32);
    g.infer_types().unwrap();
    assert_eq!(ty(&g, xw), "f32[?b, 3, 4, 5]");
    assert_eq!(ty(&g, vk), "f32[?b, 5]");
    assert_eq!(ty(&g, mv), "f32[4]");
    assert_eq!(ty(&g, vv), "f32[]");
}

#[test]
fn matmul_inner_dim_mismatch_is_an_error() {
    let mut g = Graph::new("mm");
    let x = g.add_input("x", t("f32[?b, ?s, 384]"));
    let w = g.add_input("w", t("f32[1536, 384]"));
    op1(&mut g, OpKind::MatMul, a(), &[x, w], DType::F32);
    let e = infer_err(&mut g);
    assert!(e.contains("inner dims 384 and 1536 differ"), "{e}");
    let mut g = Graph::new("mm");
    let x = g.add_input("x", t("f32[2, 4, 8]"));
    let w = g.add_input("w", t("f32[3, 8, 5]"));
    op1(&mut g, OpKind::MatMul, a(), &[x, w], DType::F32);
    assert!(infer_err(&mut g).contains("do not broadcast"));
}

#[test]
fn gemm_with_transposed_b_and_bias() {
    let mut g = Graph::new("gemm");
    let x = g.add_input("x", t("f32[?n, 64]"));
    let w = zeros(&mut g, "w", "f32[10, 64]");
    let c = zeros(&mut g, "c", "f32[10]");
    let y = op1(
        &mut g,
        OpKind::Gemm,
        int("transB", 1),
        &[x, w, c],
        DType::F32,
    );
    let ta = Attrs::new().with("transA", Attr::Int(1));
    let xt = g.add_input("xt", t("f32[64, ?n]"));
    let w2 = zeros(&mut g, "w2", "f32[64, 10]");
    let y2 = op1(&mut g, OpKind::Gemm, ta, &[xt, w2], DType::F32);
    g.infer_types().unwrap();
    assert_eq!(ty(&g, y), "f32[?n, 10]");
    assert_eq!(ty(&g, y2), "f32[?n, 10]");
    let mut g = Graph::new("gemm");
    let x = g.add_input("x", t("f32[?n, 64]"));
    let w = zeros(&mut g, "w", "f32[10, 64]");
    op1(&mut g, OpKind::Gemm, a(), &[x, w], DType::F32);
    assert!(infer_err(&mut g).contains("inner dims 64 and 10 differ"));
}

/// A small CNN: conv (pad 1) keeps 8x8, max pool 2 halves it, flatten and a classifier.
#[test]
fn small_cnn() {
    let mut g = Graph::new("cnn");
    let x = g.add_input("x", t("f32[?n, 1, 8, 8]"));
    let w = zeros(&mut g, "w", "f32[16, 1, 3, 3]");
    let b = zeros(&mut g, "b", "f32[16]");
    let pads = Attrs::new().with("pads", Attr::Ints(vec![1, 1, 1, 1]));
    let c = op1(&mut g, OpKind::Conv, pads, &[x, w, b], DType::F32);
    let r = op1(&mut g, OpKind::Relu, a(), &[c], DType::F32);
    let pool = Attrs::new()
        .with("kernel_shape", Attr::Ints(vec![2, 2]))
        .with("strides", Attr::Ints(vec![2, 2]));
    let p = op(
        &mut g,
        OpKind::MaxPool,
        pool,
        &[Some(r)],
        &[DType::F32, DType::I64],
    );
    let f = op1(&mut g, OpKind::Flatten, a(), &[p[0]], DType::F32);
    let fc = zeros(&mut g, "fc", "f32[10, 256]");
    let y = op1(&mut g, OpKind::Gemm, int("transB", 1), &[f, fc], DType::F32);
    let gp = op1(&mut g, OpKind::GlobalAveragePool, a(), &[c], DType::F32);
    g.infer_types().unwrap();
    assert_eq!(ty(&g, c), "f32[?n, 16, 8, 8]");
    assert_eq!(ty(&g, p[0]), "f32[?n, 16, 4, 4]");
    assert_eq!(ty(&g, p[1]), "i64[?n, 16, 4, 4]");
    assert_eq!(ty(&g, f), "f32[?n, 256]");
    assert_eq!(ty(&g, y), "f32[?n, 10]");
    assert_eq!(ty(&g, gp), "f32[?n, 16, 1, 1]");
}

#[test]
fn conv_and_pool_padding_modes() {
    let mut g = Graph::new("pads");
    let x = g.add_input("x", t("f32[1, 3, 7, ?w]"));
    let w = zeros(&mut g, "w", "f32[8, 3, 3, 3]");
    let same = Attrs::new()
        .with("auto_pad", Attr::Str("SAME_UPPER".into()))
        .with("strides", Attr::Ints(vec![2, 1]));
    let c1 = op1(&mut g, OpKind::Conv, same, &[x, w], DType::F32);
    let valid = Attrs::new().with("auto_pad", Attr::Str("VALID".into()));
    let c2 = op1(&mut g, OpKind::Conv, valid, &[x, w], DType::F32);
    let dil = Attrs::new().with("dilations", Attr::Ints(vec![2, 2]));
    let c3 = op1(&mut g, OpKind::Conv, dil, &[x, w], DType::F32);
    let gw = zeros(&mut g, "gw", "f32[6, 1, 3, 3]");
    let c4 = op1(&mut g, OpKind::Conv, int("group", 3), &[x, gw], DType::F32);
    let ceil = Attrs::new()
        .with("kernel_shape", Attr::Ints(vec![2, 2]))
        .with("strides", Attr::Ints(vec![2, 2]))
        .with("ceil_mode", Attr::Int(1));
    let p = op1(&mut g, OpKind::AveragePool, ceil, &[x], DType::F32);
    g.infer_types().unwrap();
    assert_eq!(ty(&g, c1), "f32[1, 8, 4, ?w]");
    assert_eq!(ty(&g, c2), "f32[1, 8, 5, ?]");
    assert_eq!(ty(&g, c3), "f32[1, 8, 3, ?]");
    assert_eq!(ty(&g, c4), "f32[1, 6, 5, ?]");
    assert_eq!(ty(&g, p), "f32[1, 3, 4, ?]");

    let mut g = Graph::new("bad");
    let x = g.add_input("x", t("f32[1, 3, 7, 7]"));
    let w = zeros(&mut g, "w", "f32[8, 4, 3, 3]");
    op1(&mut g, OpKind::Conv, a(), &[x, w], DType::F32);
    let e = infer_err(&mut g);
    assert!(
        e.contains("3 channels") && e.contains("f32[8, 4, 3, 3]"),
        "{e}"
    );
    let mut g = Graph::new("bad");
    let x = g.add_input("x", t("f32[1, 3, 2, 2]"));
    let w = zeros(&mut g, "w", "f32[8, 3, 3, 3]");
    op1(&mut g, OpKind::Conv, a(), &[x, w], DType::F32);
    assert!(infer_err(&mut g).contains("smaller than the window"));
}

#[test]
fn slice_with_negative_and_open_bounds() {
    let mut g = Graph::new("slice");
    let x = g.add_input("x", t("f32[?b, 10, 6]"));
    let run = |g: &mut Graph, starts: &[i64], ends: &[i64], axes: &[i64], steps: Option<&[i64]>| {
        let s = ints(g, "s", starts);
        let e = ints(g, "e", ends);
        let ax = ints(g, "a", axes);
        let st = steps.map(|v| ints(g, "st", v));
        op(
            g,
            OpKind::Slice,
            a(),
            &[Some(x), Some(s), Some(e), Some(ax), st],
            &[DType::F32],
        )[0]
    };
    let s1 = run(&mut g, &[-3], &[-1], &[1], None);
    let s2 = run(&mut g, &[-1], &[i64::MIN], &[-1], Some(&[-1]));
    let s3 = run(&mut g, &[0, 1], &[i64::MAX, 100], &[0, 2], Some(&[1, 2]));
    let s4 = run(&mut g, &[8], &[2], &[1], Some(&[-3]));
    let s5 = run(&mut g, &[20], &[30], &[1], None);
    let dynamic_start = g.add_input("start", t("i64[1]"));
    let e = ints(&mut g, "e", &[4]);
    let ax = ints(&mut g, "a", &[2]);
    let s6 = op1(
        &mut g,
        OpKind::Slice,
        a(),
        &[x, dynamic_start, e, ax],
        DType::F32,
    );
    g.infer_types().unwrap();
    assert_eq!(ty(&g, s1), "f32[?b, 2, 6]");
    assert_eq!(ty(&g, s2), "f32[?b, 10, 6]");
    assert_eq!(ty(&g, s3), "f32[?b, 10, 3]");
    assert_eq!(ty(&g, s4), "f32[?b, 2, 6]");
    assert_eq!(ty(&g, s5), "f32[?b, 0, 6]");
    assert_eq!(ty(&g, s6), "f32[?b, 10, ?]");

    let mut g = Graph::new("bad");
    let x = g.add_input("x", t("f32[4]"));
    let s = ints(&mut g, "s", &[0]);
    let e = ints(&mut g, "e", &[2]);
    let ax = ints(&mut g, "a", &[0]);
    let st = ints(&mut g, "st", &[0]);
    op1(&mut g, OpKind::Slice, a(), &[x, s, e, ax, st], DType::F32);
    assert!(infer_err(&mut g).contains("steps must not contain 0"));
}

#[test]
fn gather_shapes_and_bounds() {
    let mut g = Graph::new("gather");
    let x = g.add_input("x", t("f32[?b, 10, 6]"));
    let idx = ints(&mut g, "idx", &[0, -1]);
    let i0 = scalar_i64(&mut g, "i0", 3);
    let emb = zeros(&mut g, "emb", "f32[100, 8]");
    let ids = g.add_input("ids", t("i64[?b, ?s]"));
    let g1 = op1(
        &mut g,
        OpKind::Gather,
        int("axis", 1),
        &[x, idx],
        DType::F32,
    );
    let g2 = op1(
        &mut g,
        OpKind::Gather,
        int("axis", -2),
        &[x, i0],
        DType::F32,
    );
    let g3 = op1(&mut g, OpKind::Gather, a(), &[emb, ids], DType::F32);
    g.infer_types().unwrap();
    assert_eq!(ty(&g, g1), "f32[?b, 2, 6]");
    assert_eq!(ty(&g, g2), "f32[?b, 6]");
    assert_eq!(ty(&g, g3), "f32[?b, ?s, 8]");

    let mut g = Graph::new("bad");
    let x = g.add_input("x", t("f32[?b, 10, 6]"));
    let idx = ints(&mut g, "idx", &[6]);
    op1(
        &mut g,
        OpKind::Gather,
        int("axis", 2),
        &[x, idx],
        DType::F32,
    );
    assert!(infer_err(&mut g).contains("out of range"));
}

#[test]
fn reductions_with_and_without_keepdims() {
    let mut g = Graph::new("reduce");
    let x = g.add_input("x", t("f32[?b, 10, 6]"));
    let ax = ints(&mut g, "ax", &[1]);
    let neg = ints(&mut g, "neg", &[-1, 0]);
    let keep = op1(&mut g, OpKind::ReduceMean, a(), &[x, ax], DType::F32);
    let drop = op1(
        &mut g,
        OpKind::ReduceSum,
        int("keepdims", 0),
        &[x, ax],
        DType::F32,
    );
    let two = op1(
        &mut g,
        OpKind::ReduceMax,
        int("keepdims", 0),
        &[x, neg],
        DType::F32,
    );
    let all = op1(&mut g, OpKind::ReduceL2, a(), &[x], DType::F32);
    let all0 = op1(
        &mut g,
        OpKind::ReduceProd,
        int("keepdims", 0),
        &[x],
        DType::F32,
    );
    let noop = op1(
        &mut g,
        OpKind::ReduceMin,
        int("noop_with_empty_axes", 1),
        &[x],
        DType::F32,
    );
    let dyn_axes = g.add_input("axes", t("i64[1]"));
    let dk = op1(&mut g, OpKind::ReduceSum, a(), &[x, dyn_axes], DType::F32);
    let am = op1(&mut g, OpKind::ArgMax, int("axis", -1), &[x], DType::I64);
    let am0 = op(
        &mut g,
        OpKind::ArgMin,
        int("keepdims", 0),
        &[Some(x)],
        &[DType::I64],
    )[0];
    g.infer_types().unwrap();
    assert_eq!(ty(&g, keep), "f32[?b, 1, 6]");
    assert_eq!(ty(&g, drop), "f32[?b, 6]");
    assert_eq!(ty(&g, two), "f32[10]");
    assert_eq!(ty(&g, all), "f32[1, 1, 1]");
    assert_eq!(ty(&g, all0), "f32[]");
    assert_eq!(ty(&g, noop), "f32[?b, 10, 6]");
    assert_eq!(ty(&g, dk), "f32[?, ?, ?]");
    assert_eq!(ty(&g, am), "i64[?b, 10, 1]");
    assert_eq!(ty(&g, am0), "i64[10, 6]");

    let mut g = Graph::new("bad");
    let x = g.add_input("x", t("f32[?b, 10, 6]"));
    let ax = ints(&mut g, "ax", &[1, -2]);
    op1(&mut g, OpKind::ReduceMean, a(), &[x, ax], DType::F32);
    assert!(infer_err(&mut g).contains("twice"));
}

#[test]
fn layer_normalization_statistics() {
    // Axis 1 normalises [?s, 384], which a [384] scale broadcasts to.
    let mut g = Graph::new("ln");
    let x = g.add_input("x", t("f16[?b, ?s, 384]"));
    let s = zeros(&mut g, "s", "f16[384]");
    let b = zeros(&mut g, "b", "f16[384]");
    let outs2 = op(
        &mut g,
        OpKind::LayerNormalization,
        a(),
        &[Some(x), Some(s), Some(b)],
        &[DType::F16, DType::F32, DType::F32],
    );
    let bf = Attrs::new()
        .with("axis", Attr::Int(1))
        .with("stash_type", Attr::Int(16));
    let y3 = op(
        &mut g,
        OpKind::LayerNormalization,
        bf,
        &[Some(x), Some(s)],
        &[DType::F16, DType::BF16],
    );
    g.infer_types().unwrap();
    assert_eq!(ty(&g, outs2[0]), "f16[?b, ?s, 384]");
    assert_eq!(ty(&g, outs2[1]), "f32[?b, ?s, 1]");
    assert_eq!(ty(&g, outs2[2]), "f32[?b, ?s, 1]");
    assert_eq!(ty(&g, y3[1]), "bf16[?b, 1, 1]");

    let mut g = Graph::new("bad");
    let x = g.add_input("x", t("f32[?b, 384]"));
    let s = zeros(&mut g, "s", "f32[256]");
    op(
        &mut g,
        OpKind::LayerNormalization,
        a(),
        &[Some(x), Some(s)],
        &[DType::F32],
    );
    assert!(infer_err(&mut g).contains("do not broadcast"));
}

#[test]
fn casts_and_dtype_codes() {
    let mut g = Graph::new("cast");
    let x = g.add_input("x", t("f32[?b, 3]"));
    let y = g.add_input("y", t("i8[2]"));
    let c = op1(&mut g, OpKind::Cast, int("to", 10), &[x], DType::F16);
    let c2 = op1(&mut g, OpKind::Cast, int("to", 9), &[x], DType::Bool);
    let cl = op1(&mut g, OpKind::CastLike, a(), &[x, y], DType::I8);
    g.infer_types().unwrap();
    assert_eq!(ty(&g, c), "f16[?b, 3]");
    assert_eq!(ty(&g, c2), "bool[?b, 3]");
    assert_eq!(ty(&g, cl), "i8[?b, 3]");

    let mut g = Graph::new("bad");
    let x = g.add_input("x", t("f32[?b, 3]"));
    op1(&mut g, OpKind::Cast, int("to", 18), &[x], DType::F16);
    assert!(infer_err(&mut g).contains("`to` = 18"));

    for d in DType::all() {
        if let Some(code) = onnx_code_of(d) {
            assert_eq!(dtype_from_onnx_code(code), Some(d));
        }
    }
    assert_eq!(onnx_code_of(DType::F6E2M3), Some(27));
    assert_eq!(onnx_code_of(DType::F6E3M2), Some(28));
    assert_eq!(dtype_from_onnx_code(7), Some(DType::I64));
    assert_eq!(dtype_from_onnx_code(0), None);
    assert_eq!(dtype_from_onnx_code(-1), None);
}

#[test]
fn quantize_and_dequantize_dtypes() {
    let mut g = Graph::new("q");
    let x = g.add_input("x", t("f32[?b, 16]"));
    let scale = g.add_const("scale", Constant::plain(Tensor::scalar(0.1f32)));
    let zp_i8 = g.add_const("zp", Constant::plain(Tensor::scalar(0i8)));
    let q_i8 = op1(
        &mut g,
        OpKind::QuantizeLinear,
        a(),
        &[x, scale, zp_i8],
        DType::I8,
    );
    let q_u8 = op1(&mut g, OpKind::QuantizeLinear, a(), &[x, scale], DType::U8);
    let q_f8 = op1(
        &mut g,
        OpKind::QuantizeLinear,
        int("output_dtype", 17),
        &[x, scale],
        DType::F8E4M3,
    );
    let dq = op1(
        &mut g,
        OpKind::DequantizeLinear,
        a(),
        &[q_i8, scale, zp_i8],
        DType::F32,
    );
    let h = g.add_const("h", Constant::plain(Tensor::scalar(half::f16::ONE)));
    let dq16 = op1(
        &mut g,
        OpKind::DequantizeLinear,
        a(),
        &[q_u8, h],
        DType::F16,
    );
    let dq32 = op1(
        &mut g,
        OpKind::DequantizeLinear,
        int("output_dtype", 1),
        &[q_u8, h],
        DType::F32,
    );
    g.infer_types().unwrap();
    assert_eq!(ty(&g, q_i8), "i8[?b, 16]");
    assert_eq!(ty(&g, q_u8), "u8[?b, 16]");
    assert_eq!(ty(&g, q_f8), "f8e4m3[?b, 16]");
    assert_eq!(ty(&g, dq), "f32[?b, 16]");
    assert_eq!(ty(&g, dq16), "f16[?b, 16]");
    assert_eq!(ty(&g, dq32), "f32[?b, 16]");

    let mut g = Graph::new("bad");
    let x = g.add_input("x", t("f32[4]"));
    let scale = g.add_const("scale", Constant::plain(Tensor::scalar(0.1f32)));
    let zp = g.add_const("zp", Constant::plain(Tensor::scalar(0i8)));
    op1(
        &mut g,
        OpKind::QuantizeLinear,
        int("output_dtype", 2),
        &[x, scale, zp],
        DType::U8,
    );
    assert!(infer_err(&mut g).contains("y_zero_point"));
}

#[test]
fn split_sizes() {
    let mut g = Graph::new("split");
    let x = g.add_input("x", t("f32[?b, 10]"));
    let sizes = ints(&mut g, "sizes", &[3, 7]);
    let s1 = op(
        &mut g,
        OpKind::Split,
        int("axis", 1),
        &[Some(x), Some(sizes)],
        &[DType::F32; 2],
    );
    let attrs = Attrs::new()
        .with("axis", Attr::Int(-1))
        .with("num_outputs", Attr::Int(3));
    let s2 = op(&mut g, OpKind::Split, attrs, &[Some(x)], &[DType::F32; 3]);
    let s3 = op(&mut g, OpKind::Split, a(), &[Some(x)], &[DType::F32; 2]);
    let s4 = op(
        &mut g,
        OpKind::Split,
        int("axis", 1),
        &[Some(x)],
        &[DType::F32; 2],
    );
    g.infer_types().unwrap();
    assert_eq!(ty(&g, s1[0]), "f32[?b, 3]");
    assert_eq!(ty(&g, s1[1]), "f32[?b, 7]");
    let s2: Vec<String> = s2.iter().map(|v| ty(&g, *v)).collect();
    assert_eq!(s2, ["f32[?b, 4]", "f32[?b, 4]", "f32[?b, 2]"]);
    assert_eq!(ty(&g, s3[1]), "f32[?, 10]");
    assert_eq!(ty(&g, s4[1]), "f32[?b, 5]");

    let mut g = Graph::new("bad");
    let x = g.add_input("x", t("f32[?b, 10]"));
    let sizes = ints(&mut g, "sizes", &[3, 6]);
    op(
        &mut g,
        OpKind::Split,
        int("axis", 1),
        &[Some(x), Some(sizes)],
        &[DType::F32; 2],
    );
    assert!(infer_err(&mut g).contains("sums to 9"));
}

#[test]
fn shape_ops_misc() {
    let mut g = Graph::new("misc");
    let x = g.add_input("x", t("f32[?b, 1, 6]"));
    let sh = op1(&mut g, OpKind::Shape, int("start", -2), &[x], DType::I64);
    let sz = op1(&mut g, OpKind::Size, a(), &[x], DType::I64);
    let full = op1(&mut g, OpKind::Shape, a(), &[x], DType::I64);
    let cos = op1(&mut g, OpKind::ConstantOfShape, a(), &[full], DType::F32);
    let one = Attrs::new().with(
        "value",
        Attr::Tensor(Tensor::from_vec(vec![1], vec![1i64]).unwrap()),
    );
    let cst = ints(&mut g, "cst", &[2, 3]);
    let cos2 = op1(&mut g, OpKind::ConstantOfShape, one, &[cst], DType::I64);
    let es = ints(&mut g, "es", &[1, 4, 1]);
    let ex = op1(&mut g, OpKind::Expand, a(), &[x, es], DType::F32);
    let reps = ints(&mut g, "reps", &[1, 3, 2]);
    let ti = op1(&mut g, OpKind::Tile, a(), &[x, reps], DType::F32);
    let sq = op1(&mut g, OpKind::Squeeze, a(), &[x], DType::F32);
    let ax1 = ints(&mut g, "ax1", &[1]);
    let sq1 = op1(&mut g, OpKind::Squeeze, a(), &[x, ax1], DType::F32);
    let ax = ints(&mut g, "ax", &[0, -1]);
    let us = op1(&mut g, OpKind::Unsqueeze, a(), &[x, ax], DType::F32);
    let y = g.add_input("y", t("f32[?b, 3, 6]"));
    let z = g.add_input("z", t("f32[?, 2, 6]"));
    let cat = op1(
        &mut g,
        OpKind::Concat,
        int("axis", 1),
        &[x, y, z],
        DType::F32,
    );
    let fl = op1(&mut g, OpKind::Flatten, int("axis", 0), &[y], DType::F32);
    let eq = op1(&mut g, OpKind::Equal, a(), &[x, y], DType::Bool);
    let wh = op1(&mut g, OpKind::Where, a(), &[eq, x, y], DType::F32);
    let dr = op(
        &mut g,
        OpKind::Dropout,
        a(),
        &[Some(y)],
        &[DType::F32, DType::Bool],
    );
    g.infer_types().unwrap();
    assert_eq!(ty(&g, sh), "i64[2]");
    assert_eq!(ty(&g, sz), "i64[]");
    assert_eq!(ty(&g, cos), "f32[?b, 1, 6]");
    assert_eq!(ty(&g, cos2), "i64[2, 3]");
    assert_eq!(ty(&g, ex), "f32[?b, 4, 6]");
    assert_eq!(ty(&g, ti), "f32[?b, 3, 12]");
    assert_eq!(ty(&g, sq), "f32[*]");
    assert_eq!(ty(&g, sq1), "f32[?b, 6]");
    assert_eq!(ty(&g, us), "f32[1, ?b, 1, 6, 1]");
    assert_eq!(ty(&g, cat), "f32[?b, 6, 6]");
    assert_eq!(ty(&g, fl), "f32[1, ?]");
    assert_eq!(ty(&g, eq), "bool[?b, 3, 6]");
    assert_eq!(ty(&g, wh), "f32[?b, 3, 6]");
    assert_eq!(ty(&g, dr[1]), "bool[?b, 3, 6]");
}

#[test]
fn elementwise_dtype_and_shape_errors() {
    let cases: Vec<(OpKind, Attrs, &[&str], &str)> = vec![
        (
            OpKind::Add,
            a(),
            &["f32[2, 3]", "i64[3]"],
            "input 0 is f32[2, 3] but input 1 is i64[3]",
        ),
        (
            OpKind::Mul,
            a(),
            &["f32[2, 3]", "f32[4]"],
            "do not broadcast",
        ),
        (OpKind::And, a(), &["f32[2]", "f32[2]"], "must be bool"),
        (
            OpKind::Where,
            a(),
            &["f32[2]", "f32[2]", "f32[2]"],
            "must be bool",
        ),
        (
            OpKind::Transpose,
            Attrs::new().with("perm", Attr::Ints(vec![0, 0, 1])),
            &["f32[2, 3, 4]"],
            "not a permutation",
        ),
        (
            OpKind::Transpose,
            Attrs::new().with("perm", Attr::Ints(vec![0, 1])),
            &["f32[2, 3, 4]"],
            "has 2 entries",
        ),
        (
            OpKind::Transpose,
            Attrs::new().with("perm", Attr::Ints(vec![0, 1, i64::MIN])),
            &["f32[2, 3, 4]"],
            "not a permutation",
        ),
        (
            OpKind::Softmax,
            int("axis", 3),
            &["f32[2, 3, 4]"],
            "out of range",
        ),
        (OpKind::Concat, a(), &["f32[2]"], "`axis` is missing"),
        (
            OpKind::Concat,
            int("axis", 0),
            &["f32[2, 3]", "f32[2, 4]"],
            "differs",
        ),
        (OpKind::MatMul, a(), &["f32[]", "f32[3]"], "rank >= 1"),
        (
            OpKind::Flatten,
            int("axis", 4),
            &["f32[2, 3, 4]"],
            "out of range",
        ),
        (OpKind::MaxPool, a(), &["f32[1, 1, 4, 4]"], "kernel_shape"),
    ];
    for (kind, attrs, ins, msg) in cases {
        let mut g = Graph::new("bad");
        let vals: Vec<ValueId> = ins
            .iter()
            .enumerate()
            .map(|(i, s)| g.add_input(&format!("i{i}"), t(s)))
            .collect();
        op1(&mut g, kind.clone(), attrs, &vals, DType::F32);
        let e = g
            .infer_types()
            .map(|_| String::new())
            .unwrap_or_else(|e| e.to_string());
        assert!(e.contains(msg), "{kind}: expected `{msg}`, got `{e}`");
    }
    let mut g = Graph::new("custom");
    let x = g.add_input("x", t("f32[2]"));
    let custom = OpKind::Custom {
        domain: "me".into(),
        name: "Thing".into(),
    };
    op1(&mut g, custom, a(), &[x], DType::F32);
    assert!(infer_err(&mut g).contains("no inference rule for custom op"));
}

/// Every op, fed odd inputs and attributes, answers with a type or an error, never a panic.
#[test]
fn no_op_panics_on_odd_inputs() {
    let types = [
        "f32[*]",
        "f32[]",
        "f32[0]",
        "f32[?a, 1, 3, 3]",
        "i64[?]",
        "bool[2, 0]",
        "f32[3, 1, 1, 1]",
    ];
    let attr_sets = [
        a(),
        Attrs::new()
            .with("axis", Attr::Int(i64::MIN))
            .with("perm", Attr::Ints(vec![i64::MAX]))
            .with("to", Attr::Int(i64::MAX))
            .with("kernel_shape", Attr::Ints(vec![0, i64::MAX]))
            .with("strides", Attr::Ints(vec![i64::MIN, 0]))
            .with("pads", Attr::Ints(vec![i64::MAX; 4]))
            .with("dilations", Attr::Ints(vec![i64::MAX, i64::MAX]))
            .with("group", Attr::Int(0))
            .with("num_outputs", Attr::Int(-1))
            .with("stash_type", Attr::Int(-5))
            .with("start", Attr::Int(i64::MIN))
            .with("end", Attr::Int(i64::MAX))
            .with("auto_pad", Attr::Str("WHAT".into())),
        Attrs::new()
            .with("axis", Attr::Int(-1))
            .with("kernel_shape", Attr::Ints(vec![u32::MAX.into(), 1]))
            .with("pads", Attr::Ints(vec![i64::MAX, 0, i64::MAX, 0]))
            .with("ceil_mode", Attr::Int(1))
            .with("auto_pad", Attr::Str("SAME_LOWER".into())),
    ];
    let const_vals: [&[i64]; 4] = [&[], &[i64::MIN, -1], &[i64::MAX, 0, -1], &[0]];
    let (mut oks, mut errs) = (0usize, 0usize);
    for kind in OpKind::all().filter(|k| *k != OpKind::Const) {
        for attrs in &attr_sets {
            for n_in in 0..=5usize {
                for pick in 0..types.len() + const_vals.len() {
                    let mut g = Graph::new("fuzz");
                    let mut ins = vec![];
                    for slot in 0..n_in {
                        let k = (pick + slot) % (types.len() + const_vals.len());
                        ins.push(Some(match types.get(k) {
                            Some(s) => g.add_input(&format!("i{slot}"), t(s)),
                            None => ints(&mut g, &format!("c{slot}"), const_vals[k - types.len()]),
                        }));
                    }
                    let outs = [DType::F32, DType::I64, DType::Bool];
                    let id = g
                        .add_node(
                            "n",
                            kind.clone(),
                            attrs.clone(),
                            ins,
                            outs.iter()
                                .map(|d| (String::new(), TensorType::unranked(*d)))
                                .collect(),
                        )
                        .unwrap();
                    match infer_node(&g, id) {
                        Ok(_) => oks += 1,
                        Err(_) => errs += 1,
                    }
                }
            }
        }
    }
    assert!(oks > 1000 && errs > 1000, "{oks} ok, {errs} errors");
}

/// Values fed through a chain of constants fold into the consumer's shape.
#[test]
fn traced_shape_arithmetic() {
    let mut g = Graph::new("arith");
    let x = g.add_input("x", t("f32[?b, ?s, 384]"));
    let shape = op1(&mut g, OpKind::Shape, a(), &[x], DType::I64);
    // [?b, ?s] from a slice of the shape, then the hidden size split 384 / 12 = 32.
    let s0 = ints(&mut g, "s0", &[0]);
    let s2 = ints(&mut g, "s2", &[-1]);
    let head = op1(&mut g, OpKind::Slice, a(), &[shape, s0, s2], DType::I64);
    let i2 = ints(&mut g, "i2", &[2]);
    let hidden = op1(&mut g, OpKind::Gather, a(), &[shape, i2], DType::I64);
    let twelve = ints(&mut g, "twelve", &[12]);
    let hd = op1(&mut g, OpKind::Div, a(), &[hidden, twelve], DType::I64);
    let cat = op1(
        &mut g,
        OpKind::Concat,
        int("axis", 0),
        &[head, twelve, hd],
        DType::I64,
    );
    let r = op1(&mut g, OpKind::Reshape, a(), &[x, cat], DType::F32);
    // Expand via the torch pattern Where(Equal(shape, -1), ones, shape).
    let m1 = ints(&mut g, "m1", &[-1, -1, -1]);
    let eq = op1(&mut g, OpKind::Equal, a(), &[shape, m1], DType::Bool);
    let ones = ints(&mut g, "ones", &[1, 1, 1]);
    let wh = op1(&mut g, OpKind::Where, a(), &[eq, ones, shape], DType::I64);
    let y = g.add_input("y", t("f32[1, 1, 384]"));
    let ex = op1(&mut g, OpKind::Expand, a(), &[y, wh], DType::F32);
    g.infer_types().unwrap();
    assert_eq!(ty(&g, head), "i64[2]");
    assert_eq!(ty(&g, r), "f32[?b, ?s, 12, 32]");
    assert_eq!(ty(&g, ex), "f32[?b, ?s, 384]");
}

/// Flatten's axis is in [-rank, rank]; a negative axis counts back from the rank.
#[test]
fn flatten_axis_range() {
    let mut g = Graph::new("flatten");
    let x = g.add_input("x", t("f32[2, 3, 4]"));
    let cases = [
        (-1, "f32[6, 4]"),
        (-3, "f32[1, 24]"),
        (0, "f32[1, 24]"),
        (3, "f32[24, 1]"),
    ];
    let outs: Vec<ValueId> = cases
        .iter()
        .map(|&(axis, _)| op1(&mut g, OpKind::Flatten, int("axis", axis), &[x], DType::F32))
        .collect();
    let y = g.add_input("y", t("f32[3, 4]"));
    let last = op1(&mut g, OpKind::Flatten, int("axis", -1), &[y], DType::F32);
    g.infer_types().unwrap();
    for (&(axis, want), &v) in cases.iter().zip(&outs) {
        assert_eq!(ty(&g, v), want, "axis {axis}");
    }
    assert_eq!(ty(&g, last), "f32[3, 4]");
    for bad in [4, -4] {
        let mut g = Graph::new("bad");
        let x = g.add_input("x", t("f32[2, 3, 4]"));
        op1(&mut g, OpKind::Flatten, int("axis", bad), &[x], DType::F32);
        assert!(infer_err(&mut g).contains("out of range"), "axis {bad}");
    }
}
