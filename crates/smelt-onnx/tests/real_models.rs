//! Import of the real models in the shared model folder (`$SMELT_MODELS`, by default
//! `<workspace>/../shared/models`): MiniLM and the digits CNNs (float and int8 QDQ).
//! Each test is skipped, with a note on stderr, when its model is not present.

use std::path::PathBuf;

use smelt_ir::{DType, Graph, OpKind};
use smelt_onnx::import_model_file;

fn models_dir() -> PathBuf {
    std::env::var_os("SMELT_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../../shared/models"
            ))
        })
}

/// The model's path, or `None` (test skipped) when the model folder lacks it.
fn model(rel: &str) -> Option<PathBuf> {
    let path = models_dir().join(rel);
    if path.is_file() {
        Some(path)
    } else {
        eprintln!("skipped: {} not found (set SMELT_MODELS)", path.display());
        None
    }
}

fn import(rel: &str) -> smelt_onnx::Imported {
    let path = models_dir().join(rel);
    match import_model_file(&path) {
        Ok(m) => m,
        Err(e) => panic!("{}: {e}", path.display()),
    }
}

fn ty(g: &Graph, name: &str) -> String {
    g.ty(g
        .value_by_name(name)
        .unwrap_or_else(|| panic!("no `{name}`")))
        .to_string()
}

#[test]
fn minilm_imports_without_copying_weights() {
    let Some(path) = model("minilm/minilm_l6_v2.onnx") else {
        return;
    };
    let m = import("minilm/minilm_l6_v2.onnx");
    let g = &m.graph;
    assert_eq!((m.opset, m.producer_name.as_str()), (17, "pytorch"));

    // 530 ONNX nodes of which 164 are Constant; 101 initializers; the ReduceL2's `axes`
    // attribute (opset 17) becomes one more constant.
    assert_eq!(g.op_count(), 530 - 164);
    assert_eq!(g.node_count(), 530 + 101 + 1);
    let reduce_l2 = g
        .node_ids()
        .find(|&n| g.node(n).op == OpKind::ReduceL2)
        .unwrap();
    assert!(g.node(reduce_l2).inputs[1].is_some());

    let names: Vec<_> = g
        .inputs()
        .iter()
        .map(|&v| g.value(v).name.as_str())
        .collect();
    assert_eq!(names, ["input_ids", "attention_mask", "token_type_ids"]);
    for &v in g.inputs() {
        assert_eq!(g.ty(v).to_string(), "i64[?batch, ?seq]");
    }
    let outs: Vec<_> = g
        .outputs()
        .iter()
        .map(|&v| g.value(v).name.as_str())
        .collect();
    assert_eq!(outs, ["last_hidden_state", "sentence_embedding"]);
    assert_eq!(ty(g, "last_hidden_state"), "f32[?batch, ?seq, 384]");
    assert_eq!(ty(g, "sentence_embedding"), "f32[?batch, 384]");
    // The 22,565,376 initializer floats; the Constant nodes' floats are all scalars,
    // which parameter_count leaves out.
    assert_eq!(g.parameter_count(), 22_565_376);

    // All large constants are slices of one buffer no bigger than the file: the mapping.
    let (lo, hi) = data_span(g);
    assert!(hi - lo <= std::fs::metadata(&path).unwrap().len() as usize);
}

/// The address range covered by the data of constants over 4 KiB.
fn data_span(g: &Graph) -> (usize, usize) {
    let big: Vec<_> = g
        .store()
        .iter()
        .filter_map(|(_, c)| c.as_plain())
        .filter(|t| t.bytes().len() > 4096)
        .map(|t| (t.bytes().as_ptr() as usize, t.bytes().len()))
        .collect();
    assert!(
        big.len() >= 36,
        "expected the weight matrices of six layers"
    );
    let lo = big.iter().map(|(p, _)| *p).min().unwrap();
    let hi = big.iter().map(|(p, n)| p + n).max().unwrap();
    (lo, hi)
}

#[test]
fn minilm_initializers_point_into_the_input_buffer() {
    let Some(path) = model("minilm/minilm_l6_v2.onnx") else {
        return;
    };
    let data = bytes::Bytes::from(std::fs::read(&path).unwrap());
    let (start, end) = (data.as_ptr() as usize, data.as_ptr() as usize + data.len());
    let g = smelt_onnx::import_bytes(data.clone(), path.parent()).unwrap();
    let (lo, hi) = data_span(&g);
    assert!(
        start <= lo && hi <= end,
        "initializer data was copied out of the input buffer"
    );
}

#[test]
fn digits_models_import() {
    for (file, quantized) in [
        ("digits/digits_cnn.onnx", false),
        ("digits/digits_cnn_int8_qdq.onnx", true),
        ("digits/digits_cnn_int8_qdq_pc.onnx", true),
    ] {
        if model(file).is_none() {
            continue;
        }
        let g = import(file).graph;
        assert_eq!(ty(&g, "input"), "f32[?N, 1, 8, 8]", "{file}");
        assert_eq!(g.ty(g.outputs()[0]).to_string(), "f32[?N, 10]", "{file}");
        let has_q = g
            .node_ids()
            .any(|n| g.node(n).op == OpKind::DequantizeLinear);
        assert_eq!(has_q, quantized, "{file}");
        if quantized {
            let int8 = g
                .store()
                .iter()
                .filter(|(_, c)| c.dtype() == DType::I8)
                .count();
            assert_eq!(int8, 8, "{file}");
        }
    }
}

#[test]
fn real_models_re_encode_identically() {
    use prost::Message;
    for file in [
        "digits/digits_cnn.onnx",
        "digits/digits_cnn_int8_qdq.onnx",
        "minilm/minilm_l6_v2.onnx",
    ] {
        let Some(path) = model(file) else { continue };
        let data = bytes::Bytes::from(std::fs::read(&path).unwrap());
        let proto = smelt_onnx::proto::ModelProto::decode(data.clone()).unwrap();
        assert!(
            proto.encode_to_vec() == data,
            "{file} does not re-encode identically"
        );
    }
}
