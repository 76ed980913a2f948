//! The README demo model (examples/models/tiny_bert.onnx, made by
//! scripts/make_tiny_model.py) imports with fully typed outputs.

use smelt_ir::OpKind;
use smelt_onnx::import_model_file;

#[test]
fn tiny_bert_imports() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/models/tiny_bert.onnx"
    );
    let m = import_model_file(std::path::Path::new(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    let g = &m.graph;
    assert_eq!((g.name.as_str(), m.opset), ("tiny_bert", 17));

    // 124 ONNX nodes, 40 of them Constant; 21 initializers.
    assert_eq!(g.op_count(), 124 - 40);
    assert_eq!(g.node_count(), 124 + 21);
    // Embeddings 64x32 + 16x32, four 32x32 projections, FFN 32x64 and 64x32, their
    // biases and three LayerNorms.
    assert_eq!(g.parameter_count(), 11_168);

    let inputs: Vec<_> = g
        .inputs()
        .iter()
        .map(|&v| (g.value(v).name.clone(), g.ty(v).to_string()))
        .collect();
    assert_eq!(
        inputs,
        [
            ("input_ids".to_string(), "i64[?batch, ?seq]".to_string()),
            (
                "attention_mask".to_string(),
                "i64[?batch, ?seq]".to_string()
            )
        ]
    );
    let outputs: Vec<_> = g
        .outputs()
        .iter()
        .map(|&v| (g.value(v).name.clone(), g.ty(v).to_string()))
        .collect();
    assert_eq!(
        outputs,
        [
            (
                "last_hidden_state".to_string(),
                "f32[?batch, ?seq, 32]".to_string()
            ),
            (
                "sentence_embedding".to_string(),
                "f32[?batch, 32]".to_string()
            )
        ]
    );
    let count = |op: OpKind| g.node_ids().filter(|&n| g.node(n).op == op).count();
    assert_eq!(count(OpKind::LayerNormalization), 3);
    assert_eq!(count(OpKind::MatMul), 8);
    assert_eq!(count(OpKind::Erf), 1);
}
