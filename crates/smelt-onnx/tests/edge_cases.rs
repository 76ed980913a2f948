//! Malformed models built directly from the proto structs (encoded, then imported), for
//! the refusals that need no fixture file: each error must name what it is about.

use prost::Message;
use smelt_onnx::proto::attribute_proto::AttributeType;
use smelt_onnx::proto::tensor_shape_proto::{dimension, Dimension};
use smelt_onnx::proto::{
    type_proto, AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto,
    SparseTensorProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};
use smelt_onnx::{import_bytes, OnnxError};

fn tensor_type(elem: i32, dims: &[i64]) -> TypeProto {
    let dim = dims
        .iter()
        .map(|&d| Dimension {
            value: Some(dimension::Value::DimValue(d)),
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

fn value(name: &str, ty: Option<TypeProto>) -> ValueInfoProto {
    ValueInfoProto {
        name: Some(name.into()),
        r#type: ty,
        ..Default::default()
    }
}

fn node(op: &str, name: &str, inputs: &[&str], outputs: &[&str]) -> NodeProto {
    NodeProto {
        op_type: Some(op.into()),
        name: Some(name.into()),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn f32_tensor(name: &str, values: &[f32]) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        data_type: Some(1),
        dims: vec![values.len() as i64],
        float_data: values.to_vec(),
        ..Default::default()
    }
}

/// A graph with input `x: f32[2, 3]` around the given nodes and initializers.
fn graph(
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
    outputs: Vec<ValueInfoProto>,
) -> GraphProto {
    GraphProto {
        name: Some("g".into()),
        node: nodes,
        initializer: inits,
        input: vec![value("x", Some(tensor_type(1, &[2, 3])))],
        output: outputs,
        ..Default::default()
    }
}

fn import_err(g: GraphProto) -> String {
    let m = ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(17),
        }],
        graph: Some(g),
        ..Default::default()
    };
    match import_bytes(m.encode_to_vec().into(), None) {
        Ok(_) => panic!("imported but must be refused"),
        Err(e) => e.to_string(),
    }
}

fn assert_has(msg: &str, parts: &[&str]) {
    for p in parts {
        assert!(msg.contains(p), "`{p}` missing from: {msg}");
    }
}

#[test]
fn refused_tensors_name_the_tensor() {
    let mut seg = f32_tensor("seg", &[1.0]);
    seg.segment = Some(Default::default());
    let e = import_err(graph(vec![], vec![seg], vec![value("seg", None)]));
    assert_has(&e, &["tensor `seg`", "segmented"]);

    let complex = TensorProto {
        name: Some("cplx".into()),
        data_type: Some(14),
        ..Default::default()
    };
    let e = import_err(graph(vec![], vec![complex], vec![value("cplx", None)]));
    assert_has(&e, &["tensor `cplx`", "COMPLEX64"]);

    let bad_u8 = TensorProto {
        name: Some("bytes".into()),
        data_type: Some(2),
        dims: vec![2],
        int32_data: vec![3, 256],
        ..Default::default()
    };
    let e = import_err(graph(vec![], vec![bad_u8], vec![value("bytes", None)]));
    assert_has(&e, &["tensor `bytes`", "256", "out of range"]);

    let negative = TensorProto {
        name: Some("neg".into()),
        data_type: Some(1),
        dims: vec![-1],
        ..Default::default()
    };
    let e = import_err(graph(vec![], vec![negative], vec![value("neg", None)]));
    assert_has(&e, &["tensor `neg`", "invalid dimension -1"]);

    let overflow = TensorProto {
        name: Some("big".into()),
        data_type: Some(1),
        dims: vec![i64::MAX, i64::MAX],
        ..Default::default()
    };
    let e = import_err(graph(vec![], vec![overflow], vec![value("big", None)]));
    assert_has(&e, &["tensor `big`", "overflows"]);

    let g = GraphProto {
        sparse_initializer: vec![SparseTensorProto {
            values: Some(f32_tensor("sp", &[1.0])),
            ..Default::default()
        }],
        ..graph(vec![], vec![], vec![])
    };
    assert_has(&import_err(g), &["tensor `sp`", "sparse initializers"]);
}

#[test]
fn refused_attributes_name_node_and_attribute() {
    let mut relu = node("Relu", "r", &["x"], &["y"]);
    relu.attribute.push(AttributeProto {
        name: Some("body".into()),
        r#type: Some(AttributeType::Graph as i32),
        g: Some(GraphProto::default()),
        ..Default::default()
    });
    let e = import_err(graph(vec![relu], vec![], vec![value("y", None)]));
    assert_has(&e, &["node `r`", "attribute `body`", "subgraph"]);

    let mut c = node("Constant", "c", &[], &["k"]);
    c.attribute.push(AttributeProto {
        name: Some("sparse_value".into()),
        r#type: Some(AttributeType::SparseTensor as i32),
        sparse_tensor: Some(SparseTensorProto::default()),
        ..Default::default()
    });
    let e = import_err(graph(vec![c], vec![], vec![value("k", None)]));
    assert_has(&e, &["node `c`", "attribute `sparse_value`", "sparse"]);
}

#[test]
fn refused_graphs_name_the_value_or_node() {
    let twice = vec![
        node("Relu", "a", &["x"], &["y"]),
        node("Relu", "b", &["x"], &["y"]),
    ];
    let e = import_err(graph(twice, vec![], vec![value("y", None)]));
    assert_has(&e, &["node `b`", "`y` is defined more than once"]);

    let e = import_err(graph(vec![], vec![], vec![value("nowhere", None)]));
    assert_has(&e, &["value `nowhere`", "not defined"]);

    let mut g = graph(vec![node("Relu", "r", &["x"], &["y"])], vec![], vec![]);
    g.output = vec![value("y", Some(tensor_type(7, &[2, 3])))];
    assert_has(&import_err(g), &["node `r`", "output `y`", "dtype"]);

    let mut g = graph(vec![], vec![], vec![value("x", None)]);
    g.input = vec![value("x", None)];
    assert_has(&import_err(g), &["value `x`", "no type"]);

    let map = TypeProto {
        value: Some(type_proto::Value::MapType(type_proto::Map {
            key_type: Some(7),
            value_type: None,
        })),
        denotation: None,
    };
    let g = graph(vec![], vec![], vec![value("x", Some(map))]);
    assert_has(&import_err(g), &["value `x`", "a map"]);
}

#[test]
fn inference_errors_name_the_node() {
    // [2, 3] @ [4]: the inner dimensions disagree.
    let mm = node("MatMul", "mm", &["x", "w"], &["y"]);
    let e = import_err(graph(
        vec![mm],
        vec![f32_tensor("w", &[1.0; 4])],
        vec![value("y", None)],
    ));
    assert_has(&e, &["node `mm`", "type inference"]);
}

#[test]
fn missing_default_opset_is_refused() {
    let m = ModelProto {
        opset_import: vec![OperatorSetIdProto {
            domain: Some("com.microsoft".into()),
            version: Some(1),
        }],
        graph: Some(graph(vec![], vec![], vec![])),
        ..Default::default()
    };
    let e = import_bytes(m.encode_to_vec().into(), None).unwrap_err();
    assert!(matches!(e, OnnxError::Opset(_)), "{e}");
    let m = ModelProto {
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(17),
        }],
        ..Default::default()
    };
    let e = import_bytes(m.encode_to_vec().into(), None).unwrap_err();
    assert!(matches!(e, OnnxError::NoGraph), "{e}");
}
