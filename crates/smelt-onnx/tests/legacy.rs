//! Old op forms: small models at old (and the newest) opsets, built from the proto
//! structs, must import as the IR's newest op forms with the same meaning, or be refused
//! with the node, op and opset named.

use prost::Message;
use smelt_ir::{Attr, DType, Graph, Node, OpKind};
use smelt_onnx::proto::attribute_proto::AttributeType;
use smelt_onnx::proto::tensor_shape_proto::{dimension, Dimension};
use smelt_onnx::proto::{
    type_proto, AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};
use smelt_onnx::{import_bytes, OnnxError};

/// A tensor type; a negative dim is the symbolic dim `n`.
fn tensor_type(elem: i32, dims: &[i64]) -> TypeProto {
    let dim = dims
        .iter()
        .map(|&d| Dimension {
            value: Some(if d < 0 {
                dimension::Value::DimParam("n".into())
            } else {
                dimension::Value::DimValue(d)
            }),
            denotation: None,
        })
        .collect();
    TypeProto {
        value: Some(type_proto::Value::TensorType(type_proto::Tensor {
            elem_type: Some(elem),
            shape: Some(TensorShapeProto { dim }),
        })),
        denotation: None,
    }
}

fn value(name: &str, elem: i32, dims: &[i64]) -> ValueInfoProto {
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(tensor_type(elem, dims)),
        ..Default::default()
    }
}

fn untyped(name: &str) -> ValueInfoProto {
    ValueInfoProto {
        name: Some(name.into()),
        ..Default::default()
    }
}

fn attr_i(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Int as i32),
        i: Some(i),
        ..Default::default()
    }
}

fn attr_f(name: &str, f: f32) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Float as i32),
        f: Some(f),
        ..Default::default()
    }
}

fn attr_is(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Ints as i32),
        ints: v.to_vec(),
        ..Default::default()
    }
}

fn attr_fs(name: &str, v: &[f32]) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Floats as i32),
        floats: v.to_vec(),
        ..Default::default()
    }
}

fn attr_s(name: &str, s: &str) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::String as i32),
        s: Some(s.as_bytes().to_vec()),
        ..Default::default()
    }
}

fn node(op: &str, inputs: &[&str], outputs: &[&str], attribute: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        op_type: Some(op.into()),
        name: Some(format!("{op}_node")),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        attribute,
        ..Default::default()
    }
}

fn i64_init(name: &str, v: &[i64]) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        data_type: Some(7),
        dims: vec![v.len() as i64],
        int64_data: v.to_vec(),
        ..Default::default()
    }
}

fn model(
    opset: i64,
    nodes: Vec<NodeProto>,
    inputs: Vec<ValueInfoProto>,
    inits: Vec<TensorProto>,
    outputs: Vec<ValueInfoProto>,
) -> ModelProto {
    ModelProto {
        ir_version: Some(7),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(opset),
        }],
        graph: Some(GraphProto {
            name: Some("g".into()),
            node: nodes,
            initializer: inits,
            input: inputs,
            output: outputs,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// One node on an f32 input `x` of shape `dims`, output `y`.
fn one(opset: i64, dims: &[i64], n: NodeProto) -> ModelProto {
    model(
        opset,
        vec![n],
        vec![value("x", 1, dims)],
        vec![],
        vec![untyped("y")],
    )
}

fn import(m: &ModelProto) -> Graph {
    match import_bytes(m.encode_to_vec().into(), None) {
        Ok(g) => g,
        Err(e) => panic!("import failed: {e}"),
    }
}

fn import_err(m: &ModelProto) -> String {
    match import_bytes(m.encode_to_vec().into(), None) {
        Ok(_) => panic!("imported but must be refused"),
        Err(e) => e.to_string(),
    }
}

/// The graph's non-constant nodes in order.
fn ops(g: &Graph) -> Vec<&Node> {
    g.topo_order()
        .unwrap()
        .into_iter()
        .map(|id| g.node(id))
        .filter(|n| n.op != OpKind::Const)
        .collect()
}

fn only(g: &Graph) -> &Node {
    let ns = ops(g);
    assert_eq!(
        ns.len(),
        1,
        "{:?}",
        ns.iter().map(|n| &n.op).collect::<Vec<_>>()
    );
    ns[0]
}

/// The i64 constant at input `slot` of `n`.
fn const_ints(g: &Graph, n: &Node, slot: usize) -> Vec<i64> {
    let v = n.inputs[slot].expect("input present");
    g.plain_constant(v)
        .expect("a constant")
        .to_i64_vec()
        .unwrap()
}

fn const_f64(g: &Graph, n: &Node, slot: usize) -> (DType, Vec<f64>) {
    let t = g
        .plain_constant(n.inputs[slot].expect("input present"))
        .expect("a constant");
    (t.dtype(), t.to_f64_vec().unwrap())
}

fn out_type(g: &Graph) -> String {
    g.ty(g.outputs()[0]).to_string()
}

#[test]
fn opset_range_is_1_to_28() {
    let relu = || node("Relu", &["x"], &["y"], vec![]);
    for v in [1, 6, 12, 13, 23, 24, 28] {
        let g = import(&one(v, &[2], relu()));
        assert_eq!(only(&g).op, OpKind::Relu, "opset {v}");
    }
    for v in [0, 29] {
        let e = import_err(&one(v, &[2], relu()));
        assert!(e.contains(&format!("opset {v} is not supported")), "{e}");
    }
}

#[test]
fn softmax_before_13_is_coerced_to_2d() {
    // axis 1 of a rank-3 input: Flatten(1) -> Softmax(-1) -> Reshape to [2, 3, 4].
    let g = import(&one(
        11,
        &[2, 3, 4],
        node("Softmax", &["x"], &["y"], vec![attr_i("axis", 1)]),
    ));
    let ns = ops(&g);
    let kinds: Vec<&OpKind> = ns.iter().map(|n| &n.op).collect();
    assert_eq!(
        kinds,
        [&OpKind::Flatten, &OpKind::Softmax, &OpKind::Reshape]
    );
    assert_eq!(ns[0].attrs.int("axis"), Some(1));
    assert_eq!(ns[1].attrs.int("axis"), Some(-1));
    assert_eq!(const_ints(&g, ns[2], 1), [2, 3, 4]);
    assert_eq!(out_type(&g), "f32[2, 3, 4]");

    // The last axis: the op itself, over axis -1.
    let g = import(&one(
        1,
        &[2, 3, 4],
        node("LogSoftmax", &["x"], &["y"], vec![attr_i("axis", 2)]),
    ));
    let n = only(&g);
    assert_eq!(
        (&n.op, n.attrs.int("axis")),
        (&OpKind::LogSoftmax, Some(-1))
    );

    // The default axis (1) with a symbolic dim: the shape comes from a Shape node.
    let g = import(&one(
        12,
        &[-1, 3, 4],
        node("Hardmax", &["x"], &["y"], vec![]),
    ));
    let kinds: Vec<OpKind> = ops(&g).iter().map(|n| n.op.clone()).collect();
    assert!(kinds.contains(&OpKind::Shape), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&OpKind::Reshape));
    assert_eq!(out_type(&g), "f32[?n, 3, 4]");

    // Opset 13 keeps the op as written.
    let g = import(&one(
        13,
        &[2, 3, 4],
        node("Softmax", &["x"], &["y"], vec![attr_i("axis", 1)]),
    ));
    assert_eq!(only(&g).attrs.int("axis"), Some(1));

    let e = import_err(&one(
        11,
        &[2, 3],
        node("Softmax", &["x"], &["y"], vec![attr_i("axis", 2)]),
    ));
    assert!(e.contains("Softmax") && e.contains("out of range"), "{e}");
}

#[test]
fn axes_and_split_attributes_become_inputs() {
    let g = import(&one(
        11,
        &[2, 3],
        node(
            "Split",
            &["x"],
            &["y", "z"],
            vec![attr_i("axis", 1), attr_is("split", &[1, 2])],
        ),
    ));
    let n = only(&g);
    assert_eq!(n.op, OpKind::Split);
    assert_eq!(const_ints(&g, n, 1), [1, 2]);

    for (op, opset) in [
        ("Squeeze", 11),
        ("Unsqueeze", 1),
        ("ReduceSum", 12),
        ("ReduceMean", 17),
    ] {
        let g = import(&one(
            opset,
            &[1, 3],
            node(op, &["x"], &["y"], vec![attr_is("axes", &[0])]),
        ));
        let n = only(&g);
        assert_eq!(const_ints(&g, n, 1), [0], "{op}");
        assert!(n.attrs.get("axes").is_none(), "{op}");
    }
    // Without axes the reduction still covers every axis.
    let g = import(&one(11, &[2, 3], node("ReduceSum", &["x"], &["y"], vec![])));
    assert_eq!(only(&g).inputs.len(), 1);
    assert_eq!(out_type(&g), "f32[1, 1]");
}

#[test]
fn clip_slice_reshape_topk_pad_attributes_become_inputs() {
    let g = import(&one(
        6,
        &[4],
        node("Clip", &["x"], &["y"], vec![attr_f("max", 6.0)]),
    ));
    let n = only(&g);
    assert!(n.inputs[1].is_none());
    assert_eq!(const_f64(&g, n, 2), (DType::F32, vec![6.0]));

    let g = import(&one(
        9,
        &[4, 5],
        node(
            "Slice",
            &["x"],
            &["y"],
            vec![
                attr_is("starts", &[1]),
                attr_is("ends", &[3]),
                attr_is("axes", &[1]),
            ],
        ),
    ));
    let n = only(&g);
    assert_eq!(
        (
            const_ints(&g, n, 1),
            const_ints(&g, n, 2),
            const_ints(&g, n, 3)
        ),
        (vec![1], vec![3], vec![1])
    );
    assert_eq!(out_type(&g), "f32[4, 2]");

    let g = import(&one(
        4,
        &[2, 3],
        node("Reshape", &["x"], &["y"], vec![attr_is("shape", &[3, -1])]),
    ));
    assert_eq!(const_ints(&g, only(&g), 1), [3, -1]);
    assert_eq!(out_type(&g), "f32[3, 2]");

    let g = import(&one(
        9,
        &[2, 5],
        node("TopK", &["x"], &["y", "i"], vec![attr_i("k", 2)]),
    ));
    let n = only(&g);
    assert_eq!((&n.op, const_ints(&g, n, 1)), (&OpKind::TopK, vec![2]));

    let g = import(&one(
        2,
        &[2, 3],
        node(
            "Pad",
            &["x"],
            &["y"],
            vec![attr_is("pads", &[0, 1, 0, 1]), attr_f("value", 1.5)],
        ),
    ));
    let n = only(&g);
    assert_eq!(const_ints(&g, n, 1), [0, 1, 0, 1]);
    assert_eq!(const_f64(&g, n, 2), (DType::F32, vec![1.5]));
    let g = import(&one(
        1,
        &[2, 3],
        node(
            "Pad",
            &["x"],
            &["y"],
            vec![attr_is("paddings", &[1, 0, 1, 0])],
        ),
    ));
    assert_eq!(const_ints(&g, only(&g), 1), [1, 0, 1, 0]);
}

#[test]
fn legacy_broadcast_aligns_b_at_axis() {
    let m = model(
        6,
        vec![node(
            "Add",
            &["a", "b"],
            &["y"],
            vec![attr_i("broadcast", 1), attr_i("axis", 1)],
        )],
        vec![value("a", 1, &[2, 3, 4]), value("b", 1, &[3])],
        vec![],
        vec![untyped("y")],
    );
    let g = import(&m);
    let ns = ops(&g);
    assert_eq!(ns.len(), 2);
    assert_eq!(ns[0].op, OpKind::Unsqueeze);
    // B [3] becomes [3, 1], which numpy lines up with A's dims 1 and 2.
    assert_eq!(const_ints(&g, ns[0], 1), [1]);
    assert_eq!(ns[1].op, OpKind::Add);
    assert!(ns[1].attrs.get("broadcast").is_none() && ns[1].attrs.get("axis").is_none());
    assert_eq!(out_type(&g), "f32[2, 3, 4]");

    // Suffix matching without `axis` is numpy broadcasting already.
    let m = model(
        1,
        vec![node(
            "Mul",
            &["a", "b"],
            &["y"],
            vec![attr_i("broadcast", 1)],
        )],
        vec![value("a", 1, &[2, 3]), value("b", 1, &[3])],
        vec![],
        vec![untyped("y")],
    );
    assert_eq!(only(&import(&m)).op, OpKind::Mul);

    // Without `broadcast` the shapes must agree.
    let m = model(
        6,
        vec![node("Sub", &["a", "b"], &["y"], vec![])],
        vec![value("a", 1, &[2, 3]), value("b", 1, &[3])],
        vec![],
        vec![untyped("y")],
    );
    let e = import_err(&m);
    assert!(e.contains("Sub") && e.contains("broadcast"), "{e}");
}

#[test]
fn legacy_broadcast_axis_at_the_integer_edges_is_refused() {
    // `axis + rank(B)` overflowed i64 (a panic with overflow checks on); every extreme
    // axis is now an error naming the node.
    for axis in [i64::MAX, i64::MAX - 1, i64::MIN, 3, -4] {
        let m = model(
            6,
            vec![node(
                "Add",
                &["a", "b"],
                &["y"],
                vec![attr_i("broadcast", 1), attr_i("axis", axis)],
            )],
            vec![value("a", 1, &[2, 3, 4]), value("b", 1, &[3])],
            vec![],
            vec![untyped("y")],
        );
        let e = import_err(&m);
        assert!(
            e.contains("Add") && e.contains("does not place a rank-1 B inside a rank-3 A"),
            "axis {axis}: {e}"
        );
    }
}

#[test]
fn dropout_and_batch_norm_modes() {
    let g = import(&one(
        10,
        &[4],
        node("Dropout", &["x"], &["y"], vec![attr_f("ratio", 0.25)]),
    ));
    let n = only(&g);
    assert_eq!(const_f64(&g, n, 1), (DType::F32, vec![0.25]));
    assert_eq!(n.inputs.len(), 2);

    // Before opset 7, is_test = 0 (the default) is training mode.
    let g = import(&one(6, &[4], node("Dropout", &["x"], &["y"], vec![])));
    let n = only(&g);
    let t = g.plain_constant(n.inputs[2].unwrap()).unwrap();
    assert_eq!(t.dtype(), DType::Bool);
    let g = import(&one(
        6,
        &[4],
        node("Dropout", &["x"], &["y"], vec![attr_i("is_test", 1)]),
    ));
    assert_eq!(only(&g).inputs.len(), 1);

    // The mask had the data's type before opset 10.
    let e = import_err(&one(
        9,
        &[4],
        node("Dropout", &["x"], &["y", "mask"], vec![]),
    ));
    assert!(e.contains("Dropout") && e.contains("mask"), "{e}");

    let bn = |opset: i64, extra: Vec<AttributeProto>| {
        model(
            opset,
            vec![node(
                "BatchNormalization",
                &["x", "s", "b", "m", "v"],
                &["y"],
                extra,
            )],
            vec![value("x", 1, &[1, 2, 3])],
            vec![],
            vec![untyped("y")],
        )
    };
    let with_params = |mut m: ModelProto| {
        let g = m.graph.as_mut().unwrap();
        for name in ["s", "b", "m", "v"] {
            g.initializer.push(TensorProto {
                name: Some(name.into()),
                data_type: Some(1),
                dims: vec![2],
                float_data: vec![1.0, 1.0],
                ..Default::default()
            });
        }
        m
    };
    let g = import(&with_params(bn(6, vec![attr_i("is_test", 1)])));
    let n = only(&g);
    assert!(n.attrs.get("is_test").is_none() && n.attrs.get("training_mode").is_none());
    let g = import(&with_params(bn(9, vec![])));
    assert!(only(&g).attrs.get("training_mode").is_none());
    let e = import_err(&with_params(bn(7, vec![attr_i("spatial", 0)])));
    assert!(
        e.contains("BatchNormalization") && e.contains("spatial"),
        "{e}"
    );
}

#[test]
fn other_old_forms() {
    let m = model(
        6,
        vec![node(
            "Gemm",
            &["x", "x", "c"],
            &["y"],
            vec![attr_i("broadcast", 1), attr_i("transB", 1)],
        )],
        vec![value("x", 1, &[2, 3]), value("c", 1, &[2])],
        vec![],
        vec![untyped("y")],
    );
    let g = import(&m);
    assert!(only(&g).attrs.get("broadcast").is_none());
    assert_eq!(out_type(&g), "f32[2, 2]");

    let m = model(
        3,
        vec![node("Concat", &["x", "x"], &["y"], vec![])],
        vec![value("x", 1, &[2, 3])],
        vec![],
        vec![untyped("y")],
    );
    assert_eq!(out_type(&import(&m)), "f32[2, 6]");

    let g = import(&one(
        5,
        &[2],
        node("Cast", &["x"], &["y"], vec![attr_s("to", "FLOAT16")]),
    ));
    assert_eq!(only(&g).attrs.int("to"), Some(10));
    assert_eq!(out_type(&g), "f16[2]");

    let m = model(
        5,
        vec![node("Tile", &["x", "t", "a"], &["y"], vec![])],
        vec![value("x", 1, &[2, 3])],
        vec![i64_init("t", &[3]), i64_init("a", &[1])],
        vec![untyped("y")],
    );
    let g = import(&m);
    assert_eq!(const_ints(&g, only(&g), 1), [1, 3]);
    assert_eq!(out_type(&g), "f32[2, 9]");
}

#[test]
fn renamed_ops() {
    // Upsample-7 (scales attribute) is Resize with the asymmetric, floor mapping.
    let g = import(&one(
        7,
        &[1, 1, 2, 2],
        node(
            "Upsample",
            &["x"],
            &["y"],
            vec![attr_fs("scales", &[1.0, 1.0, 2.0, 3.0])],
        ),
    ));
    let n = only(&g);
    assert_eq!(n.op, OpKind::Resize);
    assert!(n.inputs[1].is_none());
    assert_eq!(const_f64(&g, n, 2).1, [1.0, 1.0, 2.0, 3.0]);
    assert_eq!(
        n.attrs.get("coordinate_transformation_mode"),
        Some(&Attr::Str("asymmetric".into()))
    );
    assert_eq!(
        n.attrs.get("nearest_mode"),
        Some(&Attr::Str("floor".into()))
    );
    assert_eq!(out_type(&g), "f32[1, 1, 4, 6]");

    let m = model(
        10,
        vec![node(
            "Scatter",
            &["x", "i", "u"],
            &["y"],
            vec![attr_i("axis", 0)],
        )],
        vec![value("x", 1, &[3]), value("u", 1, &[1])],
        vec![i64_init("i", &[1])],
        vec![untyped("y")],
    );
    assert_eq!(only(&import(&m)).op, OpKind::ScatterElements);
}

#[test]
fn unconvertible_old_forms_name_node_op_and_opset() {
    // Resize-10's nearest rounding has no exact counterpart.
    let e = import_err(&one(
        10,
        &[1, 1, 2, 2],
        node("Resize", &["x", "x"], &["y"], vec![]),
    ));
    for part in ["Resize_node", "Resize", "opset-10", "opset 11"] {
        assert!(e.contains(part), "`{part}` missing from: {e}");
    }
    // An RNN's Y before opset 7 exists only with output_sequence = 1.
    let m = model(
        6,
        vec![node(
            "RNN",
            &["x", "w", "r"],
            &["y"],
            vec![attr_i("hidden_size", 2)],
        )],
        vec![
            value("x", 1, &[1, 1, 2]),
            value("w", 1, &[1, 2, 2]),
            value("r", 1, &[1, 2, 2]),
        ],
        vec![],
        vec![untyped("y")],
    );
    let e = import_err(&m);
    assert!(e.contains("RNN") && e.contains("output_sequence"), "{e}");
}

#[test]
fn renamed_attributes_and_defaults() {
    // Selu-1 rounded its defaults.
    let g = import(&one(5, &[2], node("Selu", &["x"], &["y"], vec![])));
    let n = only(&g);
    assert_eq!(
        (n.attrs.float("alpha"), n.attrs.float("gamma")),
        (Some(1.6732), Some(1.0507))
    );
    // GridSample-16's bicubic is opset 20's cubic; its default bilinear is linear.
    let grid = |mode: Option<&str>| {
        let attrs = mode.map(|m| vec![attr_s("mode", m)]).unwrap_or_default();
        let m = model(
            16,
            vec![node("GridSample", &["x", "g"], &["y"], attrs)],
            vec![value("x", 1, &[1, 1, 2, 2]), value("g", 1, &[1, 3, 3, 2])],
            vec![],
            vec![untyped("y")],
        );
        let g = import(&m);
        let mode = only(&g).attrs.str("mode").map(str::to_string);
        mode
    };
    assert_eq!(grid(Some("bicubic")).as_deref(), Some("cubic"));
    assert_eq!(grid(None).as_deref(), Some("linear"));
    assert_eq!(grid(Some("nearest")).as_deref(), Some("nearest"));

    // GroupNormalization-18's per-group scale and bias are repeated per channel.
    let m = model(
        18,
        vec![node(
            "GroupNormalization",
            &["x", "s", "b"],
            &["y"],
            vec![attr_i("num_groups", 2)],
        )],
        vec![
            value("x", 1, &[1, 6, 3]),
            value("s", 1, &[2]),
            value("b", 1, &[2]),
        ],
        vec![],
        vec![untyped("y")],
    );
    let g = import(&m);
    let ns = ops(&g);
    let last = ns.last().unwrap();
    assert_eq!(last.op, OpKind::GroupNormalization);
    for slot in [1, 2] {
        assert_eq!(g.ty(last.inputs[slot].unwrap()).to_string(), "f32[6]");
    }
    assert_eq!(out_type(&g), "f32[1, 6, 3]");
}

#[test]
fn newest_opset_attributes_import() {
    let g = import(&one(
        28,
        &[2],
        node(
            "Cast",
            &["x"],
            &["y"],
            vec![attr_i("to", 24), attr_s("round_mode", "down")],
        ),
    ));
    let n = only(&g);
    assert_eq!(n.attrs.get("round_mode"), Some(&Attr::Str("down".into())));
    assert_eq!(out_type(&g), "e8m0[2]");
    let m = model(
        28,
        vec![node("Mod", &["x", "x"], &["y"], vec![])],
        vec![value("x", 1, &[2])],
        vec![],
        vec![untyped("y")],
    );
    assert_eq!(only(&import(&m)).op, OpKind::Mod);
}

#[test]
fn models_of_other_domains_only() {
    let mut m = one(1, &[2], node("Binarizer", &["x"], &["y"], vec![]));
    m.opset_import = vec![OperatorSetIdProto {
        domain: Some("ai.onnx.ml".into()),
        version: Some(1),
    }];
    m.graph.as_mut().unwrap().node[0].domain = Some("ai.onnx.ml".into());
    let e = import_bytes(m.encode_to_vec().into(), None).unwrap_err();
    assert!(matches!(e, OnnxError::Node { .. }), "{e}");
    let e = e.to_string();
    assert!(
        e.contains("op `Binarizer` of domain `ai.onnx.ml` is not supported"),
        "{e}"
    );
}
