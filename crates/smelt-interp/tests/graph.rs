//! Running small graphs built with the Graph API.

use smelt_interp::{decode_constant, run, run_with_observer, InterpError, Interpreter};
use smelt_ir::{
    Attr, Attrs, Constant, DType, Dim, Encoding, Granularity, Graph, OpKind, Part, ScaleKind,
    Shape, Tensor, TensorType, ValueId,
};

fn f32s(shape: &[usize], v: &[f32]) -> Tensor {
    Tensor::from_vec(shape.to_vec(), v.to_vec()).unwrap()
}

fn sym(dims: &[&str], tail: &[u64]) -> Shape {
    let mut d: Vec<Dim> = dims.iter().map(|s| Dim::sym(s)).collect();
    d.extend(tail.iter().map(|&n| Dim::Known(n)));
    Shape::new(d)
}

fn unranked(d: DType) -> TensorType {
    TensorType::unranked(d)
}

/// x[?batch, 2] · W[2, 3] + b, ReLU, softmax over the last axis.
fn mlp() -> Graph {
    let mut g = Graph::new("mlp");
    let x = g.add_input("x", TensorType::new(DType::F32, sym(&["batch"], &[2])));
    let w = g.add_const(
        "w",
        Constant::plain(f32s(&[2, 3], &[1.0, -1.0, 0.0, 2.0, 0.5, 1.0])),
    );
    let b = g.add_const("b", Constant::plain(f32s(&[3], &[0.0, 0.0, -10.0])));
    let m = g
        .add_simple(
            OpKind::MatMul,
            Attrs::new(),
            &[x, w],
            "m",
            unranked(DType::F32),
        )
        .unwrap();
    let a = g
        .add_simple(
            OpKind::Add,
            Attrs::new(),
            &[m, b],
            "a",
            unranked(DType::F32),
        )
        .unwrap();
    let r = g
        .add_simple(OpKind::Relu, Attrs::new(), &[a], "r", unranked(DType::F32))
        .unwrap();
    let s = g
        .add_simple(
            OpKind::Softmax,
            Attrs::new().with("axis", Attr::Int(-1)),
            &[r],
            "y",
            unranked(DType::F32),
        )
        .unwrap();
    g.set_outputs(vec![s, r]);
    g
}

#[test]
fn runs_a_small_mlp() {
    let g = mlp();
    let out = run(&g, &[("x", f32s(&[2, 2], &[1.0, 1.0, 0.0, 0.0]))]).unwrap();
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].0, "y");
    assert_eq!(out[1].0, "r");
    // Row 0: m = [3, -0.5, 1], a = [3, -0.5, -9], r = [3, 0, 0].
    assert_eq!(
        out[1].1.to_vec::<f32>().unwrap(),
        vec![3.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    );
    let y = out[0].1.to_vec::<f32>().unwrap();
    let e3 = 3f32.exp();
    let want = [e3 / (e3 + 2.0), 1.0 / (e3 + 2.0), 1.0 / (e3 + 2.0)];
    for (got, want) in y[..3].iter().zip(want) {
        assert!((got - want).abs() < 1e-6, "{got} vs {want}");
    }
    for v in &y[3..] {
        assert!((v - 1.0 / 3.0).abs() < 1e-6);
    }
    assert_eq!(out[0].1.shape(), &[2, 3]);
}

#[test]
fn interpreter_runs_repeatedly() {
    let g = mlp();
    let interp = Interpreter::new(&g).unwrap();
    for batch in [1usize, 3, 0] {
        let x = f32s(&[batch, 2], &vec![0.5; batch * 2]);
        let out = interp.run(&[("x", x)]).unwrap();
        assert_eq!(out[0].1.shape(), &[batch, 3]);
    }
}

#[test]
fn input_errors_name_the_input() {
    let g = mlp();
    let err = run(&g, &[]).unwrap_err();
    assert_eq!(
        err,
        InterpError::InputSet {
            missing: vec!["x".into()],
            extra: vec![]
        }
    );
    let x = f32s(&[1, 2], &[0.0, 0.0]);
    let err = run(&g, &[("x", x.clone()), ("z", x.clone())]).unwrap_err();
    assert!(err.to_string().contains("z"), "{err}");
    let err = run(&g, &[("x", x.clone()), ("x", x.clone())]).unwrap_err();
    assert!(
        matches!(err, InterpError::InputSet { ref extra, .. } if extra == &["x".to_string()]),
        "{err}"
    );
    let err = run(&g, &[("x", f32s(&[1, 3], &[0.0; 3]))]).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("`x`") && msg.contains("[?batch, 2]") && msg.contains("[1, 3]"),
        "{msg}"
    );
    let err = run(
        &g,
        &[("x", Tensor::from_vec(vec![1, 2], vec![0i64, 0]).unwrap())],
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("expected dtype f32, given i64"),
        "{err}"
    );
}

#[test]
fn symbolic_dims_must_agree_across_inputs() {
    let mut g = Graph::new("sym");
    let a = g.add_input("a", TensorType::new(DType::F32, sym(&["n"], &[])));
    let b = g.add_input("b", TensorType::new(DType::F32, sym(&["n"], &[])));
    let s = g
        .add_simple(
            OpKind::Add,
            Attrs::new(),
            &[a, b],
            "s",
            unranked(DType::F32),
        )
        .unwrap();
    g.set_outputs(vec![s]);
    let err = run(
        &g,
        &[
            ("a", f32s(&[2], &[1.0, 2.0])),
            ("b", f32s(&[3], &[1.0, 2.0, 3.0])),
        ],
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("`n`") && msg.contains("`b`") && msg.contains("`a`"),
        "{msg}"
    );
    let ok = run(
        &g,
        &[
            ("a", f32s(&[2], &[1.0, 2.0])),
            ("b", f32s(&[2], &[3.0, 4.0])),
        ],
    )
    .unwrap();
    assert_eq!(ok[0].1.to_vec::<f32>().unwrap(), vec![4.0, 6.0]);
}

#[test]
fn op_errors_name_node_and_op() {
    let mut g = Graph::new("bad");
    let a = g.add_input("a", TensorType::known(DType::F32, &[2]));
    let b = g.add_input("b", TensorType::known(DType::F32, &[3]));
    let id = g
        .add_node(
            "the_add",
            OpKind::Add,
            Attrs::new(),
            vec![Some(a), Some(b)],
            vec![("s".into(), unranked(DType::F32))],
        )
        .unwrap();
    let s = g.node(id).outputs[0];
    g.set_outputs(vec![s]);
    let err = run(
        &g,
        &[("a", f32s(&[2], &[0.0; 2])), ("b", f32s(&[3], &[0.0; 3]))],
    )
    .unwrap_err();
    match &err {
        InterpError::Op { node, op, msg } => {
            assert_eq!(node, "the_add");
            assert_eq!(op, "add");
            assert!(msg.contains("broadcast"), "{msg}");
        }
        other => panic!("unexpected {other}"),
    }
    assert!(
        err.to_string().starts_with("node `the_add` (add):"),
        "{err}"
    );
}

#[test]
fn observer_sees_inputs_and_computed_values() {
    let g = mlp();
    let mut seen: Vec<(ValueId, Vec<usize>)> = vec![];
    let mut obs = |v: ValueId, t: &Tensor| seen.push((v, t.shape().to_vec()));
    run_with_observer(&g, &[("x", f32s(&[1, 2], &[1.0, 2.0]))], &mut obs).unwrap();
    let names: Vec<String> = seen.iter().map(|(v, _)| g.value(*v).name.clone()).collect();
    assert_eq!(names, vec!["x", "m", "a", "r", "y"]);
    assert!(seen.iter().skip(1).all(|(_, s)| s == &[1, 3]));
}

#[test]
fn outputs_may_be_inputs_or_constants() {
    let mut g = Graph::new("pass");
    let x = g.add_input("x", TensorType::known(DType::I64, &[2]));
    let c = g.add_const("c", Constant::plain(Tensor::scalar(7i32)));
    g.set_outputs(vec![x, c, x]);
    let xs = Tensor::from_vec(vec![2], vec![1i64, 2]).unwrap();
    let out = run(&g, &[("x", xs)]).unwrap();
    assert_eq!(out.len(), 3);
    assert_eq!(out[0].1.to_vec::<i64>().unwrap(), vec![1, 2]);
    assert_eq!(out[1].1.to_vec::<i32>().unwrap(), vec![7]);
    assert_eq!(out[2].0, "x");
}

#[test]
fn shape_subgraph_like_an_exported_transformer() {
    // x[?b, ?s, 4] -> Shape -> Gather(1) -> Unsqueeze -> Concat([-1 ...]) -> Reshape
    let mut g = Graph::new("shapes");
    let x = g.add_input("x", TensorType::new(DType::F32, sym(&["b", "s"], &[4])));
    let shp = g
        .add_simple(
            OpKind::Shape,
            Attrs::new(),
            &[x],
            "shp",
            unranked(DType::I64),
        )
        .unwrap();
    let one = g.add_const("one", Constant::plain(Tensor::scalar(1i64)));
    let s = g
        .add_simple(
            OpKind::Gather,
            Attrs::new(),
            &[shp, one],
            "s",
            unranked(DType::I64),
        )
        .unwrap();
    let zero_axes = g.add_const(
        "ax",
        Constant::plain(Tensor::from_vec(vec![1], vec![0i64]).unwrap()),
    );
    let s1 = g
        .add_simple(
            OpKind::Unsqueeze,
            Attrs::new(),
            &[s, zero_axes],
            "s1",
            unranked(DType::I64),
        )
        .unwrap();
    let tail = g.add_const(
        "tail",
        Constant::plain(Tensor::from_vec(vec![2], vec![2i64, 2]).unwrap()),
    );
    let minus = g.add_const(
        "minus",
        Constant::plain(Tensor::from_vec(vec![1], vec![-1i64]).unwrap()),
    );
    let target = g
        .add_simple(
            OpKind::Concat,
            Attrs::new().with("axis", Attr::Int(0)),
            &[minus, s1, tail],
            "t",
            unranked(DType::I64),
        )
        .unwrap();
    let y = g
        .add_simple(
            OpKind::Reshape,
            Attrs::new(),
            &[x, target],
            "y",
            unranked(DType::F32),
        )
        .unwrap();
    g.set_outputs(vec![y]);
    let data: Vec<f32> = (0..24).map(|i| i as f32).collect();
    let out = run(&g, &[("x", f32s(&[2, 3, 4], &data))]).unwrap();
    assert_eq!(out[0].1.shape(), &[2, 3, 2, 2]);
    assert_eq!(out[0].1.to_vec::<f32>().unwrap(), data);
}

#[test]
fn split_feeds_several_consumers() {
    let mut g = Graph::new("split");
    let x = g.add_input("x", TensorType::known(DType::F32, &[4]));
    let id = g
        .add_node(
            "sp",
            OpKind::Split,
            Attrs::new().with("axis", Attr::Int(0)),
            vec![Some(x)],
            vec![
                ("p".into(), unranked(DType::F32)),
                ("q".into(), unranked(DType::F32)),
            ],
        )
        .unwrap();
    let (p, q) = (g.node(id).outputs[0], g.node(id).outputs[1]);
    let s = g
        .add_simple(
            OpKind::Sub,
            Attrs::new(),
            &[q, p],
            "d",
            unranked(DType::F32),
        )
        .unwrap();
    let m = g
        .add_simple(
            OpKind::Mul,
            Attrs::new(),
            &[s, p],
            "m",
            unranked(DType::F32),
        )
        .unwrap();
    g.set_outputs(vec![m]);
    let out = run(&g, &[("x", f32s(&[4], &[1.0, 2.0, 5.0, 7.0]))]).unwrap();
    assert_eq!(out[0].1.to_vec::<f32>().unwrap(), vec![4.0, 10.0]);
}

#[test]
fn blockwise_int4_weights_decode_and_multiply() {
    // W[4, 2] logical, i4 codes with one f32 scale per 2 rows (block along axis 0).
    let codes: Vec<i8> = vec![1, -2, 3, 4, -8, 7, 0, 1];
    let packed: Vec<u8> = codes
        .chunks(2)
        .map(|p| (p[0] as u8 & 0x0F) | ((p[1] as u8 & 0x0F) << 4))
        .collect();
    let codes_t = Tensor::from_bytes(DType::I4, vec![4, 2], packed.into()).unwrap();
    let scales = f32s(&[2, 2], &[0.5, 1.0, 0.25, 2.0]);
    let enc = Encoding::BlockwiseInt {
        bits: 4,
        signed: true,
        granularity: Granularity::Block { axis: 0, size: 2 },
        scale: ScaleKind::F32,
        zero_point: false,
    };
    let c = Constant::encoded(
        DType::F32,
        vec![4, 2],
        enc,
        vec![
            Part {
                name: "codes".into(),
                tensor: codes_t,
            },
            Part {
                name: "scales".into(),
                tensor: scales,
            },
        ],
    )
    .unwrap();
    let w = decode_constant(&c).unwrap();
    assert_eq!(
        w.to_vec::<f32>().unwrap(),
        vec![0.5, -2.0, 1.5, 4.0, -2.0, 14.0, 0.0, 2.0]
    );

    let mut g = Graph::new("q");
    let x = g.add_input("x", TensorType::known(DType::F32, &[1, 4]));
    let wv = g.add_const("w", c);
    let y = g
        .add_simple(
            OpKind::MatMul,
            Attrs::new(),
            &[x, wv],
            "y",
            unranked(DType::F32),
        )
        .unwrap();
    g.set_outputs(vec![y]);
    let out = run(&g, &[("x", f32s(&[1, 4], &[1.0, 1.0, 1.0, 1.0]))]).unwrap();
    assert_eq!(out[0].1.to_vec::<f32>().unwrap(), vec![0.0, 18.0]);
}

#[test]
fn blockwise_with_zero_point_and_f16_logical_type() {
    let codes = Tensor::from_vec(vec![3], vec![10u8, 12, 8]).unwrap();
    let scales = Tensor::from_vec(vec![3], vec![half::f16::from_f32(0.5); 3]).unwrap();
    let zps = Tensor::from_vec(vec![3], vec![10u8, 10, 10]).unwrap();
    let enc = Encoding::BlockwiseInt {
        bits: 8,
        signed: false,
        granularity: Granularity::Channel { axis: 0 },
        scale: ScaleKind::F16,
        zero_point: true,
    };
    let parts = vec![
        Part {
            name: "codes".into(),
            tensor: codes,
        },
        Part {
            name: "scales".into(),
            tensor: scales,
        },
        Part {
            name: "zero_points".into(),
            tensor: zps,
        },
    ];
    let c = Constant::encoded(DType::F16, vec![3], enc, parts).unwrap();
    let w = decode_constant(&c).unwrap();
    assert_eq!(w.dtype(), DType::F16);
    let v: Vec<f32> = w
        .to_vec::<half::f16>()
        .unwrap()
        .into_iter()
        .map(f32::from)
        .collect();
    assert_eq!(v, vec![0.0, 1.0, -1.0]);
}

#[test]
fn float_and_mx_constants_decode() {
    // E4M3 codes 0x38 = 1.0, 0xC0 = -2.0 with a per-tensor scale of 0.5.
    let codes = Tensor::from_bytes(DType::F8E4M3, vec![2], vec![0x38u8, 0xC0].into()).unwrap();
    let enc = Encoding::Float {
        format: smelt_ir::FloatFormat::E4M3,
        granularity: Granularity::Tensor,
        scale: ScaleKind::F32,
    };
    let parts = vec![
        Part {
            name: "codes".into(),
            tensor: codes,
        },
        Part {
            name: "scales".into(),
            tensor: Tensor::scalar(0.5f32),
        },
    ];
    let c = Constant::encoded(DType::F32, vec![2], enc, parts).unwrap();
    assert_eq!(
        decode_constant(&c).unwrap().to_vec::<f32>().unwrap(),
        vec![0.5, -1.0]
    );

    // MX FP4 (E2M1) in blocks of 2 along axis 0, E8M0 scales 2^1 and 2^-1.
    let fp4 = Tensor::from_bytes(DType::F4E2M1, vec![4], vec![0x21u8, 0x7F].into()).unwrap();
    let scales = Tensor::from_bytes(DType::E8M0, vec![2], vec![128u8, 126].into()).unwrap();
    let enc = Encoding::Mx {
        elem: smelt_ir::FloatFormat::E2M1,
        axis: 0,
        block: 2,
    };
    let parts = vec![
        Part {
            name: "codes".into(),
            tensor: fp4,
        },
        Part {
            name: "scales".into(),
            tensor: scales,
        },
    ];
    let c = Constant::encoded(DType::F32, vec![4], enc, parts).unwrap();
    // Codes 1, 2, 15, 7 = 0.5, 1.0, -6.0, 6.0.
    assert_eq!(
        decode_constant(&c).unwrap().to_vec::<f32>().unwrap(),
        vec![1.0, 2.0, -3.0, 3.0]
    );
}

#[test]
fn unsupported_encodings_are_errors() {
    let codes = Tensor::from_vec(vec![4], vec![0u8; 4]).unwrap();
    let enc = Encoding::Shift {
        bits: 3,
        granularity: Granularity::Tensor,
        scale: ScaleKind::F32,
    };
    let parts = vec![
        Part {
            name: "codes".into(),
            tensor: codes,
        },
        Part {
            name: "scales".into(),
            tensor: Tensor::scalar(1.0f32),
        },
    ];
    let c = Constant::encoded(DType::F32, vec![4], enc, parts).unwrap();
    let err = decode_constant(&c).unwrap_err();
    assert_eq!(
        err.to_string(),
        "decoding shift<bits=3, scale=f32> is not supported yet"
    );
}

#[test]
fn half_precision_graph() {
    let mut g = Graph::new("half");
    let x = g.add_input("x", TensorType::known(DType::F16, &[3]));
    let y = g
        .add_simple(OpKind::Sqrt, Attrs::new(), &[x], "y", unranked(DType::F16))
        .unwrap();
    let z = g
        .add_simple(
            OpKind::Add,
            Attrs::new(),
            &[y, x],
            "z",
            unranked(DType::F16),
        )
        .unwrap();
    g.set_outputs(vec![z]);
    let xs: Vec<half::f16> = [4.0f32, 2.0, 0.0]
        .iter()
        .map(|&v| half::f16::from_f32(v))
        .collect();
    let out = run(&g, &[("x", Tensor::from_vec(vec![3], xs).unwrap())]).unwrap();
    let v: Vec<f32> = out[0]
        .1
        .to_vec::<half::f16>()
        .unwrap()
        .into_iter()
        .map(f32::from)
        .collect();
    // sqrt(2) rounds to f16 1.4140625 before the add.
    assert_eq!(v, vec![6.0, 3.4140625, 0.0]);
}

#[test]
fn nodes_no_output_needs_are_skipped() {
    let mut g = Graph::new("dead");
    let x = g.add_input("x", TensorType::known(DType::F32, &[2]));
    let bad = g.add_const("bad", Constant::plain(f32s(&[3], &[0.0; 3])));
    // Would fail (shapes do not broadcast) if it ran.
    let _dead = g
        .add_simple(
            OpKind::Add,
            Attrs::new(),
            &[x, bad],
            "dead",
            unranked(DType::F32),
        )
        .unwrap();
    let y = g
        .add_simple(OpKind::Neg, Attrs::new(), &[x], "y", unranked(DType::F32))
        .unwrap();
    g.set_outputs(vec![y]);
    let out = run(&g, &[("x", f32s(&[2], &[1.0, -2.0]))]).unwrap();
    assert_eq!(out[0].1.to_vec::<f32>().unwrap(), vec![-1.0, 2.0]);
}
