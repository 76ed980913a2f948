//! ONNX export: `import(export(g))` must print the same textual IR as `g`, for every
//! attribute kind, element type, shape form and storage (inline and external data), and
//! what ONNX cannot express must be refused with the culprit named.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use prost::Message;
use smelt_ir::text::{parse, print};
use smelt_ir::{
    Attrs, Constant, DType, Dim, Encoding, Granularity, Graph, OpKind, Part, ScaleKind, Shape,
    Tensor, TensorType,
};
use smelt_onnx::proto::tensor_proto::DataLocation;
use smelt_onnx::proto::ModelProto;
use smelt_onnx::{
    export_model, export_model_bytes, export_model_file, import_file, import_model_bytes_with,
    ExportOptions, ImportOptions, OnnxError,
};

/// A fresh, empty folder under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "smelt-onnx-export-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Export in memory and import again (unknown ops kept when `lenient`).
fn reimport(g: &Graph, lenient: bool) -> Graph {
    let bytes = export_model_bytes(g, &ExportOptions::default())
        .unwrap_or_else(|e| panic!("export failed: {e}"));
    let opts = ImportOptions {
        keep_unknown_ops: lenient,
    };
    import_model_bytes_with(Bytes::from(bytes), None, &opts)
        .unwrap_or_else(|e| panic!("re-import failed: {e}\n{}", print(g)))
        .graph
}

/// Parse, complete the types by inference (as an import would), and check the round trip.
fn assert_text_round_trip(text: &str, lenient: bool) -> Graph {
    let mut g = parse(text).unwrap_or_else(|e| panic!("{e}"));
    if !lenient {
        g.infer_types().unwrap();
    }
    let back = reimport(&g, lenient);
    assert_eq!(print(&back), print(&g));
    g
}

#[test]
fn every_attribute_kind_round_trips() {
    // A custom op carries attributes of every kind, empty lists included (they keep their
    // kind through ONNX's `type` field), and an omitted optional input.
    assert_text_round_trip(
        r#"graph @attrs(%x: f32[2, 3]) -> (f32[2, 3]) {
  %y = com.example.Everything(%x, _, %x) {f = 0.5, g = -0.0, i = -3, big = 9007199254740993, s = "h\u{e9}llo \"q\"\n", ints = [1, -2, 3], floats = [1.5, -0.0, 1e-30, inf], strs = ["a", "", "c"], no_ints = ints[], no_floats = floats[], no_strs = strs[], t = tensor<f32[2] [1.0, 2.0]>, t4 = tensor<i4[3] x"21f3">, t6 = tensor<f6e2m3[3] x"013f20">, ts = tensor<string[2] ["x", "yz"]>, scalar = tensor<i64[] [7]>} : f32[2, 3] loc("everything")
  return %y
}
"#,
        true,
    );
}

#[test]
fn builtin_ops_with_attributes_round_trip() {
    assert_text_round_trip(
        r#"graph @nn(%x: f32[?batch, 4, 8, 8], %idx: i64[3]) -> (f32[?batch, 4, 4, 4], f32[?batch, 8, 8, 4], f32[?batch, 4, 8, 8], i64[3]) {
  %p = max_pool(%x) {kernel_shape = [2, 2], strides = [2, 2]} : f32[?batch, 4, 4, 4] loc("pool")
  %l = leaky_relu(%x) {alpha = 0.125} : f32[?batch, 4, 8, 8]
  %t = transpose(%l) {perm = [0, 2, 3, 1]} : f32[?batch, 8, 8, 4] loc("/block/transpose")
  %lo = const f32[] [-1.0]
  %c = clip(%x, %lo, _) : f32[?batch, 4, 8, 8]
  %g = gelu(%c) {approximate = "tanh"} : f32[?batch, 4, 8, 8]
  %s = cast(%idx) {to = 7} : i64[3]
  return %p, %t, %g, %s
}
"#,
        false,
    );
}

#[test]
fn constants_among_operations_keep_their_place() {
    // The first constant precedes every operation and becomes an initializer; the later
    // ones are `Constant` nodes where they stand, so re-import prints the same order.
    let g = assert_text_round_trip(
        r#"graph @order(%x: f32[?b, 4]) -> (f32[?b, 1], f32[?b, 2]) {
  %w = const f32[4] [1.0, 2.0, 3.0, 4.0]
  %m = mul(%x, %w) : f32[?b, 4]
  %axes = const i64[1] [1]
  %r = reduce_l2(%m, %axes) {keepdims = 1} : f32[?b, 1]
  %split = const i64[2] [2, 2]
  %a, %b = split(%m, %split) {axis = 1} : f32[?b, 2], f32[?b, 2]
  %s = add(%a, %b) : f32[?b, 2]
  return %r, %s
}
"#,
        false,
    );
    let m = export_model(&g, &ExportOptions::default()).unwrap();
    let gp = m.graph.unwrap();
    let inits: Vec<_> = gp
        .initializer
        .iter()
        .map(|t| t.name.clone().unwrap())
        .collect();
    assert_eq!(inits, ["w"]);
    let ops: Vec<_> = gp.node.iter().map(|n| n.op_type.clone().unwrap()).collect();
    assert_eq!(
        ops,
        ["Mul", "Constant", "ReduceL2", "Constant", "Split", "Add"]
    );
    // Every intermediate value is declared; graph outputs are not repeated there.
    let vi: Vec<_> = gp
        .value_info
        .iter()
        .map(|v| v.name.clone().unwrap())
        .collect();
    assert_eq!(vi, ["m", "a", "b"]);
}

#[test]
fn symbolic_unknown_and_unranked_shapes_round_trip() {
    let mut g = Graph::new("shapes");
    let x = g.add_input(
        "x",
        TensorType::new(
            DType::F32,
            Shape::new(vec![Dim::sym("batch"), Dim::Unknown, Dim::Known(3)]),
        ),
    );
    let u = g.add_input("u", TensorType::unranked(DType::F16));
    let s = g.add_input("s", TensorType::new(DType::I64, Shape::scalar()));
    let rx = g
        .add_simple(OpKind::Relu, Attrs::new(), &[x], "rx", g.ty(x).clone())
        .unwrap();
    let ru = g
        .add_simple(OpKind::Neg, Attrs::new(), &[u], "ru", g.ty(u).clone())
        .unwrap();
    let rs = g
        .add_simple(OpKind::Neg, Attrs::new(), &[s], "rs", g.ty(s).clone())
        .unwrap();
    g.set_outputs(vec![rx, ru, rs]);
    g.infer_types().unwrap();
    let back = reimport(&g, false);
    assert_eq!(print(&back), print(&g));
    assert!(
        print(&back).contains("f32[?batch, ?, 3]"),
        "{}",
        print(&back)
    );
    assert!(print(&back).contains("f16[*]"), "{}", print(&back));
}

/// Bytes that are valid stored data for `dtype` (bools 0/1, FP6 codes below 64).
fn pattern(dtype: DType, n: usize, seed: u8) -> Tensor {
    if dtype == DType::String {
        let s = (0..n).map(|i| format!("s{i}-{seed}")).collect();
        return Tensor::from_strings(vec![n], s).unwrap();
    }
    let len = dtype.storage_bytes(n).unwrap();
    let bytes: Vec<u8> = (0..len)
        .map(|i| {
            let b = (i as u8).wrapping_mul(37).wrapping_add(seed);
            match dtype {
                DType::Bool => b & 1,
                DType::F6E2M3 | DType::F6E3M2 => b & 0x3f,
                _ => b,
            }
        })
        .collect();
    Tensor::from_bytes(dtype, vec![n], Bytes::from(bytes)).unwrap()
}

/// A graph holding, for every dtype, a small and a large constant and an input, each
/// passed through Identity.
fn all_dtypes_graph() -> Graph {
    let mut g = Graph::new("dtypes");
    let mut outs = vec![];
    for (i, d) in DType::all().enumerate() {
        let x = g.add_input(
            &format!("in_{d}"),
            TensorType::new(d, Shape::new(vec![Dim::sym("n")])),
        );
        // 5 elements print inline (odd, so 4-bit types have a padding nibble); 301 print
        // as a content hash, so equal text means equal bytes either way.
        let small = g.add_const(
            &format!("small_{d}"),
            Constant::plain(pattern(d, 5, i as u8)),
        );
        let large = g.add_const(&format!("large_{d}"), Constant::plain(pattern(d, 301, 7)));
        for v in [x, small, large] {
            let name = format!("id_{}", g.value(v).name);
            let ty = g.ty(v).clone();
            outs.push(
                g.add_simple(OpKind::Identity, Attrs::new(), &[v], &name, ty)
                    .unwrap(),
            );
        }
    }
    g.set_outputs(outs);
    g.infer_types().unwrap();
    g
}

/// The initializer or `Constant` node tensor defining `name`.
fn find_tensor<'a>(
    gp: &'a smelt_onnx::proto::GraphProto,
    name: &str,
) -> &'a smelt_onnx::proto::TensorProto {
    gp.initializer
        .iter()
        .find(|t| t.name.as_deref() == Some(name))
        .or_else(|| {
            gp.node
                .iter()
                .find(|n| n.op_type.as_deref() == Some("Constant") && n.output == [name])
                .and_then(|n| n.attribute.first()?.t.as_ref())
        })
        .unwrap_or_else(|| panic!("no tensor `{name}`"))
}

#[test]
fn every_dtype_round_trips() {
    let g = all_dtypes_graph();
    let back = reimport(&g, false);
    assert_eq!(print(&back), print(&g));
    for c in [
        "small_f6e2m3",
        "large_f6e3m2",
        "large_i4",
        "small_u4",
        "large_string",
    ] {
        let v = g.value_by_name(c).unwrap();
        let w = back.value_by_name(c).unwrap();
        assert!(
            g.plain_constant(v)
                .unwrap()
                .same_content(back.plain_constant(w).unwrap()),
            "{c}"
        );
    }
    // FP6 needs opset 28 and IR version 14.
    let m = export_model(&g, &ExportOptions::default()).unwrap();
    assert_eq!(m.ir_version, Some(14));
    let opset = &m.opset_import[0];
    assert_eq!(
        (opset.domain.as_deref(), opset.version),
        (Some(""), Some(28))
    );
    // FP6 goes to ONNX packed: 301 codes of 6 bits in 226 bytes.
    let gp = m.graph.unwrap();
    let fp6 = find_tensor(&gp, "large_f6e2m3");
    assert_eq!(fp6.raw_data.as_ref().unwrap().len(), 226);
    let strings = find_tensor(&gp, "small_string");
    assert_eq!(strings.string_data.len(), 5);
    assert!(strings.raw_data.is_none());
}

#[test]
fn opset_and_ir_version() {
    let relu =
        parse("graph @g(%x: f32[2]) -> (f32[2]) {\n  %y = relu(%x) : f32[2]\n  return %y\n}\n")
            .unwrap();
    let m = export_model(&relu, &ExportOptions::default()).unwrap();
    assert_eq!(m.opset_import.len(), 1);
    assert_eq!(m.opset_import[0].version, Some(21));
    assert_eq!(m.ir_version, Some(10));
    assert_eq!(m.producer_name.as_deref(), Some("smelt"));
    let at = |opset| ExportOptions {
        opset: Some(opset),
        ..ExportOptions::default()
    };
    let m = export_model(&relu, &at(18)).unwrap();
    assert_eq!(
        (m.opset_import[0].version, m.ir_version),
        (Some(18), Some(8))
    );
    let m = export_model(&relu, &at(23)).unwrap();
    assert_eq!(
        (m.opset_import[0].version, m.ir_version),
        (Some(23), Some(11))
    );
    let m = export_model(&relu, &at(28)).unwrap();
    assert_eq!(
        (m.opset_import[0].version, m.ir_version),
        (Some(28), Some(14))
    );
    for bad in [17, 29] {
        let e = export_model(&relu, &at(bad)).unwrap_err();
        assert!(
            matches!(&e, OnnxError::Opset(m) if m.contains("18..=28")),
            "{e}"
        );
    }

    // Gelu exists from opset 20: an explicit older opset names the node.
    let gelu = parse(
        "graph @g(%x: f32[2]) -> (f32[2]) {\n  %y = gelu(%x) : f32[2] loc(\"act\")\n  return %y\n}\n",
    )
    .unwrap();
    let e = export_model(&gelu, &at(19)).unwrap_err().to_string();
    assert!(
        e.contains("`act`") && e.contains("Gelu") && e.contains("20"),
        "{e}"
    );
    assert!(export_model(&gelu, &at(20)).is_ok());

    // Opset 24-28 forms: Cast's round_mode needs 24, floored float Mod needs 28.
    let newest = |body: &str| {
        let g = parse(&format!(
            "graph @g(%x: f32[2]) -> (f32[2]) {{\n  {body}\n  return %y\n}}\n"
        ))
        .unwrap();
        export_model(&g, &ExportOptions::default())
            .unwrap()
            .opset_import[0]
            .version
    };
    assert_eq!(
        newest("%y = cast(%x) {to = 1, round_mode = \"down\"} : f32[2]"),
        Some(24)
    );
    assert_eq!(newest("%y = mod(%x, %x) : f32[2]"), Some(28));
    assert_eq!(newest("%y = mod(%x, %x) {fmod = 1} : f32[2]"), Some(21));

    // Custom domains are imported at version 1, each once.
    let custom = parse(
        "graph @g(%x: f32[2]) -> (f32[2]) {\n  %a = com.acme.Foo(%x) : f32[2]\n  %b = com.acme.Bar(%a) : f32[2]\n  %c = org.other.Baz(%b) : f32[2]\n  return %c\n}\n",
    )
    .unwrap();
    let m = export_model(&custom, &ExportOptions::default()).unwrap();
    let imports: Vec<_> = m
        .opset_import
        .iter()
        .map(|o| (o.domain.clone().unwrap(), o.version.unwrap()))
        .collect();
    assert_eq!(
        imports,
        [
            (String::new(), 21),
            ("com.acme".to_string(), 1),
            ("org.other".to_string(), 1)
        ]
    );
    let gp = m.graph.unwrap();
    assert_eq!(gp.node[0].domain.as_deref(), Some("com.acme"));
    assert_eq!(gp.node[0].op_type.as_deref(), Some("Foo"));
}

/// `y = x · fc.weight` with `fc.weight` an encoded f32[4, 3] constant.
fn add_encoded_matmul(g: &mut Graph, x: smelt_ir::ValueId, enc: Encoding, parts: Vec<Part>) {
    let w = g.add_const(
        "fc.weight",
        Constant::encoded(DType::F32, vec![4, 3], enc, parts).unwrap(),
    );
    let y = g
        .add_simple(
            OpKind::MatMul,
            Attrs::new(),
            &[x, w],
            "y",
            TensorType::known(DType::F32, &[2, 3]),
        )
        .unwrap();
    g.set_outputs(vec![y]);
}

#[test]
fn blockwise_constants_export_as_dequantize_linear() {
    let mut g = Graph::new("q");
    let x = g.add_input("x", TensorType::known(DType::F32, &[2, 4]));
    let codes = Tensor::from_bytes(DType::I4, vec![4, 3], Bytes::from(vec![0x21u8; 6])).unwrap();
    let scales = Tensor::from_vec(vec![2, 3], vec![0.5f32, 0.25, 1.0, 2.0, 0.5, 0.125]).unwrap();
    let enc = Encoding::BlockwiseInt {
        bits: 4,
        signed: true,
        granularity: Granularity::Block { axis: 0, size: 2 },
        scale: ScaleKind::F32,
        zero_point: false,
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
    ];
    add_encoded_matmul(&mut g, x, enc, parts);
    let model = export_model(&g, &ExportOptions::default()).unwrap();
    let gp = model.graph.as_ref().unwrap();
    let dq = gp
        .node
        .iter()
        .find(|n| n.op_type.as_deref() == Some("DequantizeLinear"))
        .expect("a DequantizeLinear node rebuilds the weight");
    let attr = |name: &str| {
        dq.attribute
            .iter()
            .find(|a| a.name.as_deref() == Some(name))
            .and_then(|a| a.i)
    };
    assert_eq!(attr("axis"), Some(0));
    assert_eq!(attr("block_size"), Some(2));
    assert!(dq.output.iter().any(|o| o == "fc.weight"));
    // Re-imported, the DequantizeLinear computes the weight the encoding means.
    let back = import_model_bytes_with(
        Bytes::from(model.encode_to_vec()),
        None,
        &smelt_onnx::ImportOptions::default(),
    )
    .unwrap()
    .graph;
    let xv =
        Tensor::from_vec(vec![2, 4], vec![1.0f32, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, -1.0]).unwrap();
    let want = smelt_interp::run(&g, &[("x", xv.clone())]).unwrap();
    let got = smelt_interp::run(&back, &[("x", xv)]).unwrap();
    assert_eq!(
        want[0].1.to_vec::<f32>().unwrap(),
        got[0].1.to_vec::<f32>().unwrap()
    );
}

#[test]
fn encodings_without_an_onnx_form_are_refused_by_name() {
    let mut g = Graph::new("q");
    let x = g.add_input("x", TensorType::known(DType::F32, &[2, 4]));
    let codes = Tensor::from_vec(vec![4, 3], vec![0x3u8; 12]).unwrap();
    let scales = Tensor::from_vec(vec![], vec![0.5f32]).unwrap();
    let enc = Encoding::Shift {
        bits: 4,
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
            tensor: scales,
        },
    ];
    add_encoded_matmul(&mut g, x, enc, parts);
    let e = export_model(&g, &ExportOptions::default()).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, OnnxError::Tensor { ref tensor, .. } if tensor == "fc.weight"));
    assert!(msg.contains("no ONNX form"), "{msg}");
    // The file export fails the same way and writes nothing.
    let dir = TempDir::new("encoded");
    assert!(export_model_file(&g, &dir.join("q.onnx"), &ExportOptions::default()).is_err());
    assert_eq!(std::fs::read_dir(&dir.0).unwrap().count(), 0);
}

/// A graph with weights of several sizes and storage forms.
fn weights_graph() -> Graph {
    let mut g = Graph::new("weights");
    let x = g.add_input(
        "x",
        TensorType::new(DType::F32, Shape::new(vec![Dim::sym("b"), Dim::Known(64)])),
    );
    let big: Vec<f32> = (0..64 * 64).map(|i| (i as f32).sin()).collect();
    let w = g.add_const(
        "w",
        Constant::plain(Tensor::from_vec(vec![64, 64], big).unwrap()),
    );
    let bias: Vec<f32> = (0..64).map(|i| i as f32 * 0.25).collect();
    let b = g.add_const(
        "b",
        Constant::plain(Tensor::from_vec(vec![64], bias).unwrap()),
    );
    let h = g
        .add_simple(
            OpKind::MatMul,
            Attrs::new(),
            &[x, w],
            "h",
            TensorType::unranked(DType::F32),
        )
        .unwrap();
    let y = g
        .add_simple(
            OpKind::Add,
            Attrs::new(),
            &[h, b],
            "y",
            TensorType::unranked(DType::F32),
        )
        .unwrap();
    // Constants after the first op become Constant nodes; large ones go external too.
    let fp6 = g.add_const("codes6", Constant::plain(pattern(DType::F6E3M2, 5000, 3)));
    let i4 = g.add_const("codes4", Constant::plain(pattern(DType::I4, 3001, 1)));
    let tiny = g.add_const("tiny", Constant::plain(pattern(DType::I64, 2, 9)));
    let mut outs = vec![y];
    for v in [fp6, i4, tiny] {
        let name = format!("id_{}", g.value(v).name);
        let ty = g.ty(v).clone();
        outs.push(
            g.add_simple(OpKind::Identity, Attrs::new(), &[v], &name, ty)
                .unwrap(),
        );
    }
    g.set_outputs(outs);
    g.infer_types().unwrap();
    g
}

fn external_entries(t: &smelt_onnx::proto::TensorProto) -> (String, u64, u64) {
    let get = |k: &str| {
        t.external_data
            .iter()
            .find(|e| e.key.as_deref() == Some(k))
            .and_then(|e| e.value.clone())
            .unwrap()
    };
    (
        get("location"),
        get("offset").parse().unwrap(),
        get("length").parse().unwrap(),
    )
}

#[test]
fn external_data_round_trips() {
    let g = weights_graph();
    let dir = TempDir::new("external");
    let path = dir.join("model.onnx");
    let opts = ExportOptions {
        external_threshold_bytes: Some(1024),
        ..ExportOptions::default()
    };
    let s = export_model_file(&g, &path, &opts).unwrap();
    let data = dir.join("model.data");
    assert_eq!(s.data_file.as_deref(), Some(data.as_path()));
    // w (16 KiB), codes6 (3750 packed bytes), codes4 (1501 bytes); b (256) and tiny stay.
    assert_eq!(s.external_tensors, 3);
    assert_eq!(s.initializers, 2);
    assert_eq!(s.constant_nodes, 3);
    assert_eq!(s.data_bytes, std::fs::metadata(&data).unwrap().len());
    assert_eq!(s.model_bytes, std::fs::metadata(&path).unwrap().len());

    let m = ModelProto::decode(Bytes::from(std::fs::read(&path).unwrap())).unwrap();
    let gp = m.graph.unwrap();
    let mut external = vec![];
    let tensors = gp.initializer.iter().chain(
        gp.node
            .iter()
            .filter_map(|n| n.attribute.first()?.t.as_ref()),
    );
    for t in tensors {
        if t.data_location == Some(DataLocation::External as i32) {
            assert!(t.raw_data.is_none());
            external.push(external_entries(t));
        } else {
            assert!(t.external_data.is_empty());
        }
    }
    assert_eq!(
        external,
        [
            ("model.data".to_string(), 0, 16384),
            ("model.data".to_string(), 16384, 3750),
            ("model.data".to_string(), 16384 + 3750, 1501),
        ]
    );

    // Re-import resolves the side file; the graph prints the same.
    let back = import_file(&path).unwrap();
    assert_eq!(print(&back), print(&g));

    // Export the re-imported graph over the files its weights are mapped from.
    export_model_file(&back, &path, &opts).unwrap();
    let again = import_file(&path).unwrap();
    assert_eq!(print(&again), print(&g));
    let names: Vec<_> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "temporary files left behind: {names:?}");

    // No threshold: everything inline, no side file.
    let inline = dir.join("inline.onnx");
    let s = export_model_file(
        &g,
        &inline,
        &ExportOptions {
            external_threshold_bytes: None,
            ..ExportOptions::default()
        },
    )
    .unwrap();
    assert_eq!((s.external_tensors, s.data_file), (0, None));
    assert!(!dir.join("inline.data").exists());
    assert_eq!(print(&import_file(&inline).unwrap()), print(&g));

    // Threshold 0: every non-empty tensor external, unaligned when asked.
    let all = dir.join("all.onnx");
    let s = export_model_file(
        &g,
        &all,
        &ExportOptions {
            external_threshold_bytes: Some(0),
            external_alignment: 0,
            ..ExportOptions::default()
        },
    )
    .unwrap();
    assert_eq!(s.external_tensors, 5);
    assert_eq!(s.data_bytes, 16384 + 256 + 3750 + 1501 + 16);
    assert_eq!(print(&import_file(&all).unwrap()), print(&g));
}

#[test]
fn data_file_never_overwrites_the_model() {
    let g = weights_graph();
    let dir = TempDir::new("datanames");
    let path = dir.join("weights.data");
    let opts = ExportOptions {
        external_threshold_bytes: Some(1024),
        ..ExportOptions::default()
    };
    let s = export_model_file(&g, &path, &opts).unwrap();
    assert_eq!(s.data_file, Some(dir.join("weights.data.data")));
    assert_eq!(print(&import_file(&path).unwrap()), print(&g));
}

#[test]
fn writing_into_a_missing_folder_names_the_file() {
    let g = weights_graph();
    let dir = TempDir::new("missing");
    let path = dir.join("no/such/dir/m.onnx");
    let e = export_model_file(&g, &path, &ExportOptions::default()).unwrap_err();
    assert!(
        matches!(&e, OnnxError::Io { path: p, .. } if p.ends_with("m.data") || p.ends_with("m.onnx")),
        "{e}"
    );
}
