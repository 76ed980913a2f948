//! Import of the handmade models in tests/fixtures (made by make_fixtures.py): every
//! tensor storage form, external data and its escapes, and the models that must be
//! refused with a precise error.

use std::path::PathBuf;

use smelt_ir::{DType, Graph, OpKind, Tensor};
use smelt_onnx::{import_file, import_model_file, OnnxError};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures")).join(name)
}

fn import(name: &str) -> Graph {
    match import_file(&fixture(name)) {
        Ok(g) => g,
        Err(e) => panic!("{name}: {e}"),
    }
}

fn import_err(name: &str) -> String {
    match import_file(&fixture(name)) {
        Ok(_) => panic!("{name} imported but must be refused"),
        Err(e) => e.to_string(),
    }
}

fn konst<'g>(g: &'g Graph, name: &str) -> &'g Tensor {
    let v = g
        .value_by_name(name)
        .unwrap_or_else(|| panic!("no value `{name}`"));
    g.plain_constant(v)
        .unwrap_or_else(|| panic!("`{name}` is not a constant"))
}

fn check(g: &Graph, name: &str, dtype: DType, shape: &[usize], bytes: &[u8]) {
    let t = konst(g, name);
    assert_eq!(t.dtype(), dtype, "{name}");
    assert_eq!(t.shape(), shape, "{name}");
    assert_eq!(&t.bytes()[..], bytes, "{name}");
}

fn le<T: smelt_ir::Element>(values: &[T]) -> Vec<u8> {
    let mut out = vec![];
    for v in values {
        v.write_le(&mut out);
    }
    out
}

#[test]
fn every_storage_form_decodes() {
    let g = import("storage.onnx");
    assert_eq!(g.name, "storage");
    assert_eq!(g.op_count(), 0, "only constants");
    let f32s = le(&[1.5f32, -2.0, 3.25]);
    check(&g, "raw_f32", DType::F32, &[3], &f32s);
    check(&g, "typed_f32", DType::F32, &[3], &f32s);
    check(&g, "raw_scalar", DType::F32, &[], &le(&[7.0f32]));
    check(
        &g,
        "raw_f16",
        DType::F16,
        &[2],
        &le(&[half::f16::from_f32(0.5), half::f16::from_f32(-1.5)]),
    );
    check(
        &g,
        "typed_f16",
        DType::F16,
        &[2],
        &le(&[half::f16::from_f32(1.0), half::f16::from_f32(-2.0)]),
    );
    check(
        &g,
        "typed_bf16",
        DType::BF16,
        &[2],
        &le(&[half::bf16::from_f32(1.0), half::bf16::from_f32(-2.0)]),
    );
    check(&g, "empty_f32", DType::F32, &[0, 3], &[]);
    check(&g, "typed_f64", DType::F64, &[2], &le(&[1.5f64, -2.0]));
    check(&g, "typed_i64", DType::I64, &[3], &le(&[-3i64, 4, 1 << 40]));
    check(&g, "typed_i32", DType::I32, &[2], &le(&[-7i32, 8]));
    check(&g, "typed_i16", DType::I16, &[2], &le(&[-300i16, 300]));
    check(&g, "typed_i8", DType::I8, &[2], &le(&[-128i8, 127]));
    check(&g, "typed_u8", DType::U8, &[2], &[0, 255]);
    check(&g, "typed_u16", DType::U16, &[2], &le(&[65535u16, 1]));
    check(&g, "typed_bool", DType::Bool, &[3], &[1, 0, 1]);
    check(
        &g,
        "typed_u32",
        DType::U32,
        &[2],
        &le(&[4_000_000_000u32, 1]),
    );
    check(
        &g,
        "typed_u64",
        DType::U64,
        &[2],
        &le(&[(1u64 << 63) + 5, 0]),
    );
    // [1, -2, 3, -4, 5] as int4, two per byte, first element in the low nibble.
    check(&g, "raw_i4", DType::I4, &[5], &[0xE1, 0xC3, 0x05]);
    check(&g, "typed_i4", DType::I4, &[5], &[0xE1, 0xC3, 0x05]);
    check(&g, "typed_u4", DType::U4, &[3], &[0xF1, 0x07]);
    check(&g, "typed_f4e2m1", DType::F4E2M1, &[3], &[0xC2, 0x01]);
    check(&g, "typed_f8e4m3", DType::F8E4M3, &[2], &[0x38, 0xC0]);
    check(&g, "typed_f8e5m2", DType::F8E5M2, &[2], &[0x3C, 0xC0]);
    check(&g, "typed_e8m0", DType::E8M0, &[2], &[127, 129]);
    // FP6: ONNX packs four codes in three bytes; smelt stores one code per byte.
    check(&g, "raw_f6e2m3", DType::F6E2M3, &[5], &[8, 48, 4, 63, 1]);
    check(&g, "typed_f6e2m3", DType::F6E2M3, &[5], &[8, 48, 4, 63, 1]);
    let s = konst(&g, "typed_string");
    assert_eq!(s.dtype(), DType::String);
    assert_eq!(s.strings().unwrap(), ["hello", "w\u{f6}rld"]);
}

#[test]
fn constant_nodes_become_constants() {
    let g = import("storage.onnx");
    check(&g, "c_float", DType::F32, &[], &le(&[2.5f32]));
    check(&g, "c_floats", DType::F32, &[2], &le(&[1.0f32, 2.0]));
    check(&g, "c_int", DType::I64, &[], &le(&[-4i64]));
    check(&g, "c_ints", DType::I64, &[3], &le(&[1i64, 2, 3]));
    check(&g, "c_tensor", DType::I64, &[2, 2], &le(&[1i64, 2, 3, 4]));
    assert_eq!(konst(&g, "c_string").strings().unwrap(), ["abc"]);
    assert_eq!(konst(&g, "c_strings").strings().unwrap(), ["a", "bc"]);
    assert_eq!(g.outputs().len(), 27 + 7);
}

#[test]
fn external_data_is_read_in_place() {
    let m = import_model_file(&fixture("external.onnx")).unwrap();
    let g = &m.graph;
    let w: Vec<f32> = (0..16).map(|i| i as f32 * 0.5).collect();
    check(g, "w", DType::F32, &[4, 4], &le(&w));
    check(g, "b", DType::I64, &[3], &le(&[5i64, 6, 7]));
    // The Constant node's tensor attribute lives in the side file too.
    let c: Vec<f32> = (0..8).map(|i| i as f32).collect();
    check(g, "c", DType::F32, &[8], &le(&c));
    assert_eq!(m.opset, 17);
    assert_eq!(m.producer_name, "smelt-fixtures");
}

#[test]
fn external_data_cannot_escape_the_model_folder() {
    for (name, why) in [
        ("escape/parent.onnx", "must not contain `..`"),
        ("escape/absolute.onnx", "must be a relative path"),
        ("escape/symlink.onnx", "resolves outside the model folder"),
    ] {
        let e = import_err(name);
        assert!(e.contains(why) && e.contains("tensor `x`"), "{name}: {e}");
    }
}

#[test]
fn external_data_ranges_are_checked() {
    let e = import_err("ext_range.onnx");
    assert!(e.contains("runs past the end of `external.bin`"), "{e}");
    let e = import_err("ext_offset.onnx");
    assert!(e.contains("runs past the end"), "{e}");
    let e = import_err("ext_missing.onnx");
    assert!(e.contains("cannot open `missing.bin`"), "{e}");
}

#[test]
fn external_data_needs_a_folder() {
    let data = std::fs::read(fixture("external.onnx")).unwrap();
    let e = smelt_onnx::import_bytes(data.into(), None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("without a folder"), "{e}");
}

#[test]
fn all_unsupported_ops_are_listed() {
    let err = import_file(&fixture("unsupported.onnx")).unwrap_err();
    let OnnxError::UnsupportedOps(ops) = &err else {
        panic!("wrong error: {err}")
    };
    let names: Vec<_> = ops
        .iter()
        .map(|o| (o.domain.as_str(), o.op_type.as_str(), o.node.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("com.microsoft", "FusedMatMul", "fused"),
            ("", "FrobnicateV2", "frob"),
            ("", "Teleport", "tele")
        ]
    );
    let msg = err.to_string();
    assert!(msg.starts_with("3 unsupported ops"), "{msg}");
    for part in [
        "`com.microsoft.FusedMatMul` (node `fused`)",
        "`FrobnicateV2` (node `frob`)",
        "`Teleport`",
    ] {
        assert!(msg.contains(part), "{msg}");
    }
}

#[test]
fn old_and_new_opsets_import() {
    // Opsets 1..=28 are read (see tests/legacy.rs for the refused ones).
    for name in ["opset12.onnx", "opset24.onnx"] {
        assert_eq!(import(name).op_count(), 1, "{name}");
    }
}

#[test]
fn size_mismatches_are_refused() {
    let e = import_err("size_mismatch.onnx");
    assert!(
        e.contains("tensor `short`") && e.contains("need 16 bytes, the data has 12"),
        "{e}"
    );
    let e = import_err("typed_mismatch.onnx");
    assert!(
        e.contains("tensor `typed_short`") && e.contains("float_data holds 2"),
        "{e}"
    );
    // 2^60 declared elements and 8 bytes: refused by the size check, not by the allocator.
    let e = import_err("huge_dims.onnx");
    assert!(e.contains("tensor `huge`"), "{e}");
}

#[test]
fn malformed_files_are_refused() {
    let e = import_err("truncated.onnx");
    assert!(e.contains("not a valid ONNX model"), "{e}");
    let e = import_err("sequence_identity.onnx");
    assert!(e.contains("value `seq`") && e.contains("sequence"), "{e}");
    let e = import_err("sequence_input.onnx");
    assert!(e.contains("SequenceLength"), "{e}");
    let e = import_err("unsorted.onnx");
    assert!(
        e.contains("node `too_early`") && e.contains("input `a`"),
        "{e}"
    );
    let e = import_err("does_not_exist.onnx");
    assert!(e.contains("does_not_exist.onnx"), "{e}");
}

#[test]
fn old_reduce_axes_become_an_input() {
    for file in ["canonical.onnx", "canonical18.onnx"] {
        let g = import(file);
        let mean = g
            .node_ids()
            .find(|&n| g.node(n).op == OpKind::ReduceMean)
            .unwrap();
        let node = g.node(mean);
        assert!(node.attrs.get("axes").is_none(), "{file}");
        assert_eq!(node.attrs.int("keepdims"), Some(0), "{file}");
        let axes = g.plain_constant(node.inputs[1].unwrap()).unwrap();
        assert_eq!(axes.to_vec::<i64>().unwrap(), [1], "{file}");
        let y = g.outputs()[0];
        assert_eq!(g.ty(y).to_string(), "f32[?n, 4]", "{file}");

        // Omitted optional input keeps its slot; omitted trailing outputs are dropped.
        let clip = g
            .node_ids()
            .find(|&n| g.node(n).op == OpKind::Clip)
            .unwrap();
        assert_eq!(g.node(clip).inputs.len(), 3);
        assert!(g.node(clip).inputs[1].is_none());
        let ln = g
            .node_ids()
            .find(|&n| g.node(n).op == OpKind::LayerNormalization)
            .unwrap();
        assert_eq!(g.node(ln).outputs.len(), 1);
        assert_eq!(g.ty(g.outputs()[2]).to_string(), "f32[?n, 3, 4]");
        let ln2 = g.node_ids().find(|&n| g.node(n).name == "ln2").unwrap();
        let outs = &g.node(ln2).outputs;
        assert_eq!(outs.len(), 2);
        assert_eq!(g.value(outs[0]).name, "ln2_unused_0");
        assert_eq!(outs[1], g.outputs()[3]);
        assert_eq!(g.ty(outs[1]).to_string(), "f32[?n, 3, 1]");
    }
}

#[test]
fn unknown_ops_can_be_kept_for_inspection() {
    let opts = smelt_onnx::ImportOptions {
        keep_unknown_ops: true,
    };
    let m = smelt_onnx::import_model_file_with(&fixture("unsupported.onnx"), &opts).unwrap();
    let g = &m.graph;
    let custom: Vec<String> = g
        .node_ids()
        .filter_map(|n| match &g.node(n).op {
            smelt_ir::OpKind::Custom { domain, name } => Some(format!("{domain}.{name}")),
            _ => None,
        })
        .collect();
    assert_eq!(custom.len(), 3, "{custom:?}");
    assert!(
        custom.iter().any(|c| c.starts_with("com.microsoft.")),
        "{custom:?}"
    );
}
