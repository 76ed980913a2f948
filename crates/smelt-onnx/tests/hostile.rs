//! Hostile models: files crafted to read outside the model folder, exhaust memory,
//! stack or time, or confuse the importer. Each is built here from the proto structs (or
//! raw protobuf bytes), so nothing is committed and nothing needs Python; models that need
//! files (external data, symlinks) are written to a temporary folder at run time.
//!
//! Every case must fail with an error naming the culprit and the limit, never panic, and
//! never allocate a large buffer: a tracking allocator records the largest allocation
//! this test binary makes, and the bombs check it stays small.

use std::alloc::{GlobalAlloc, Layout, System};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use prost::Message;
use smelt_onnx::proto::attribute_proto::AttributeType;
use smelt_onnx::proto::tensor_proto::DataLocation;
use smelt_onnx::proto::tensor_shape_proto::{dimension, Dimension};
use smelt_onnx::proto::{
    type_proto, AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto,
    StringStringEntryProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};
use smelt_onnx::{
    import_model_bytes_with_limits, import_model_file_with_limits, ImportLimits, ImportOptions,
    OnnxError,
};

// ---------------------------------------------------------------------------------------
// Largest-allocation tracking.

struct Tracking;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the only addition
// is a relaxed atomic update, which neither allocates nor unwinds.
unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOCATOR: Tracking = Tracking;

/// No test here legitimately allocates more than a few MiB.
const ALLOCATION_CEILING: usize = 64 << 20;

fn assert_no_large_allocation(what: &str) {
    let largest = LARGEST.load(Ordering::Relaxed);
    assert!(
        largest < ALLOCATION_CEILING,
        "{what}: some import allocated {largest} bytes at once"
    );
}

// ---------------------------------------------------------------------------------------
// Model building.

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

fn node(op: &str, name: &str, inputs: &[&str], outputs: &[&str]) -> NodeProto {
    NodeProto {
        op_type: Some(op.into()),
        name: Some(name.into()),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

/// An f32 initializer `name` with the given dims and raw bytes.
fn raw_f32(name: &str, dims: &[i64], raw: &[u8]) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        data_type: Some(1),
        dims: dims.to_vec(),
        raw_data: Some(Bytes::copy_from_slice(raw)),
        ..Default::default()
    }
}

/// An f32 initializer `name` of dims [4] whose data lives in an external file.
fn external_f32(name: &str, entries: &[(&str, &str)]) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        data_type: Some(1),
        dims: vec![4],
        data_location: Some(DataLocation::External as i32),
        external_data: entries
            .iter()
            .map(|(k, v)| StringStringEntryProto {
                key: Some(k.to_string()),
                value: Some(v.to_string()),
            })
            .collect(),
        ..Default::default()
    }
}

/// A graph with input `x: f32[2, 3]`, the given nodes and initializers, and outputs.
fn graph(nodes: Vec<NodeProto>, inits: Vec<TensorProto>, outputs: &[&str]) -> GraphProto {
    GraphProto {
        name: Some("hostile".into()),
        node: nodes,
        initializer: inits,
        input: vec![value("x", 1, &[2, 3])],
        output: outputs.iter().map(|o| untyped(o)).collect(),
        ..Default::default()
    }
}

fn model_with_opset(g: GraphProto, opset: i64) -> ModelProto {
    ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(opset),
        }],
        graph: Some(g),
        ..Default::default()
    }
}

fn model(g: GraphProto) -> Vec<u8> {
    model_with_opset(g, 17).encode_to_vec()
}

// ---------------------------------------------------------------------------------------
// Importing.

/// Import `data` (external data resolved in `dir`), catching panics: `Ok` is the import's
/// own result, a panic fails the test naming the case.
fn try_import(
    case: &str,
    data: Vec<u8>,
    dir: Option<&Path>,
    limits: &ImportLimits,
) -> Result<(), OnnxError> {
    let r = catch_unwind(AssertUnwindSafe(|| {
        import_model_bytes_with_limits(Bytes::from(data), dir, &ImportOptions::default(), limits)
            .map(|_| ())
    }));
    match r {
        Ok(r) => r,
        Err(_) => panic!("{case}: the import panicked"),
    }
}

/// The error message of an import that must fail, checked for every fragment.
fn refused_with(case: &str, data: Vec<u8>, dir: Option<&Path>, limits: &ImportLimits) -> OnnxError {
    match try_import(case, data, dir, limits) {
        Ok(()) => panic!("{case}: imported but must be refused"),
        Err(e) => e,
    }
}

fn assert_refused(case: &str, data: Vec<u8>, fragments: &[&str]) {
    let e = refused_with(case, data, None, &ImportLimits::default());
    assert_has(case, &e.to_string(), fragments);
}

fn assert_has(case: &str, msg: &str, fragments: &[&str]) {
    for f in fragments {
        assert!(msg.contains(f), "{case}: `{f}` missing from: {msg}");
    }
}

/// A temporary folder, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(case: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("smelt-hostile-{}-{case}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn sixteen_bytes() -> Vec<u8> {
    [1.0f32, 2.0, 3.0, 4.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect()
}

/// A model whose initializer `w` is external with `entries`, written as `model.onnx`
/// into `dir` next to a 16-byte `w.bin`; returns the model's path.
fn external_model(dir: &Path, entries: &[(&str, &str)]) -> PathBuf {
    std::fs::write(dir.join("w.bin"), sixteen_bytes()).unwrap();
    let g = graph(
        vec![node("Identity", "id", &["w"], &["y"])],
        vec![external_f32("w", entries)],
        &["y"],
    );
    let path = dir.join("model.onnx");
    std::fs::write(&path, model(g)).unwrap();
    path
}

fn import_path(case: &str, path: &Path, limits: &ImportLimits) -> Result<(), OnnxError> {
    let r = catch_unwind(AssertUnwindSafe(|| {
        import_model_file_with_limits(path, &ImportOptions::default(), limits).map(|_| ())
    }));
    match r {
        Ok(r) => r,
        Err(_) => panic!("{case}: the import panicked"),
    }
}

fn file_refused(case: &str, path: &Path, fragments: &[&str]) {
    match import_path(case, path, &ImportLimits::default()) {
        Ok(()) => panic!("{case}: imported but must be refused"),
        Err(e) => assert_has(case, &e.to_string(), fragments),
    }
}

// ---------------------------------------------------------------------------------------
// External data.

#[test]
fn external_data_in_the_folder_imports() {
    let dir = TempDir::new("ext-ok");
    let path = external_model(&dir.0, &[("location", "w.bin")]);
    import_path("external ok", &path, &ImportLimits::default()).unwrap();
    let path = external_model(&dir.0, &[("location", "./w.bin"), ("length", "16")]);
    import_path("external ./", &path, &ImportLimits::default()).unwrap();
}

#[test]
fn path_traversal_is_refused() {
    let dir = TempDir::new("traversal");
    for loc in ["../../etc/passwd", "sub/../../w.bin", "..", "a/../w.bin"] {
        let path = external_model(&dir.0, &[("location", loc)]);
        file_refused(
            loc,
            &path,
            &[
                "tensor `w`",
                &format!("`{loc}`"),
                "escapes the model folder",
                "must not contain `..`",
            ],
        );
    }
}

#[test]
fn absolute_paths_are_refused() {
    let dir = TempDir::new("absolute");
    let inside = dir.0.join("w.bin").display().to_string();
    // Even an absolute path that points into the model folder: the rule is syntactic.
    for loc in ["/etc/passwd", inside.as_str()] {
        let path = external_model(&dir.0, &[("location", loc)]);
        file_refused(
            loc,
            &path,
            &[
                "tensor `w`",
                "escapes the model folder",
                "must be a relative path",
            ],
        );
    }
}

#[cfg(unix)]
#[test]
fn symlink_escapes_are_refused() {
    use std::os::unix::fs::symlink;
    let root = TempDir::new("symlink");
    let outside = root.0.join("outside");
    let folder = root.0.join("model");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(outside.join("secret.bin"), sixteen_bytes()).unwrap();
    // A file link and a folder link, both leading out of the model folder.
    symlink(outside.join("secret.bin"), folder.join("link.bin")).unwrap();
    symlink(&outside, folder.join("dir")).unwrap();
    for loc in ["link.bin", "dir/secret.bin"] {
        let path = external_model(&folder, &[("location", loc)]);
        file_refused(
            loc,
            &path,
            &[
                "tensor `w`",
                "escapes the model folder",
                "resolves outside the model folder",
            ],
        );
    }
    // A link that stays inside the folder is fine.
    symlink(folder.join("w.bin"), folder.join("inner.bin")).unwrap();
    let path = external_model(&folder, &[("location", "inner.bin")]);
    import_path("inner link", &path, &ImportLimits::default()).unwrap();
}

#[test]
fn external_ranges_past_the_end_are_refused() {
    let dir = TempDir::new("ext-range");
    for (case, entries) in [
        ("offset past end", vec![("offset", "1000")]),
        ("length past end", vec![("offset", "8"), ("length", "16")]),
        (
            "offset + length overflows",
            vec![("offset", "18446744073709551615"), ("length", "2")],
        ),
    ] {
        let mut all = vec![("location", "w.bin")];
        all.extend(entries);
        let path = external_model(&dir.0, &all);
        file_refused(
            case,
            &path,
            &["tensor `w`", "runs past the end of `w.bin` (16 bytes)"],
        );
    }
    // In range but shorter than the dims declare.
    let path = external_model(&dir.0, &[("location", "w.bin"), ("length", "12")]);
    file_refused(
        "short",
        &path,
        &["tensor `w`", "need 16 bytes, the data has 12"],
    );
    // Not a number.
    let path = external_model(&dir.0, &[("location", "w.bin"), ("offset", "-1")]);
    file_refused("bad offset", &path, &["tensor `w`", "not a byte count"]);
}

#[test]
fn external_data_needs_a_folder() {
    let g = graph(
        vec![node("Identity", "id", &["w"], &["y"])],
        vec![external_f32("w", &[("location", "w.bin")])],
        &["y"],
    );
    assert_refused("no folder", model(g), &["tensor `w`", "without a folder"]);
}

// ---------------------------------------------------------------------------------------
// Sizes.

fn one_init(t: TensorProto) -> Vec<u8> {
    let name = t.name.clone().unwrap_or_default();
    model(graph(
        vec![node("Identity", "id", &[&name], &["y"])],
        vec![t],
        &["y"],
    ))
}

#[test]
fn size_bombs_are_refused_before_allocating() {
    // 2^31 × 2^31 × 4 = 2^64 elements with 16 bytes of data.
    let bomb = raw_f32("bomb", &[1 << 31, 1 << 31, 4], &sixteen_bytes());
    assert_refused(
        "size bomb",
        one_init(bomb),
        &[
            "tensor `bomb`",
            "overflows u64",
            "exceeds the memory budget",
        ],
    );
    // 2^40 f32 elements (4 TiB): fits u64, exceeds the default 16 GiB budget.
    let big = raw_f32("big", &[1 << 20, 1 << 20], &sixteen_bytes());
    assert_refused(
        "budget bomb",
        one_init(big),
        &[
            "tensor `big`",
            "1099511627776 f32 elements (4398046511104 bytes)",
            "exceeds the memory budget of 17179869184 bytes",
            "ImportLimits::max_memory_bytes",
        ],
    );
    // The same with typed fields instead of raw_data.
    let typed = TensorProto {
        name: Some("typed".into()),
        data_type: Some(7),
        dims: vec![1 << 40],
        int64_data: vec![1, 2],
        ..Default::default()
    };
    assert_refused(
        "typed bomb",
        one_init(typed),
        &["tensor `typed`", "exceeds the memory budget"],
    );
    // A Constant node's tensor attribute is checked the same way.
    let constant = NodeProto {
        attribute: vec![AttributeProto {
            name: Some("value".into()),
            r#type: Some(AttributeType::Tensor as i32),
            t: Some(raw_f32("", &[1 << 40], &sixteen_bytes())),
            ..Default::default()
        }],
        ..node("Constant", "const", &[], &["c"])
    };
    assert_refused(
        "constant bomb",
        model(graph(vec![constant], vec![], &["c"])),
        &["tensor `const.value`", "exceeds the memory budget"],
    );
    assert_no_large_allocation("size bombs");
}

#[test]
fn dim_products_that_overflow_are_refused() {
    for (case, dims, dtype) in [
        ("elements", vec![1i64 << 40, 1 << 40], 1),
        ("elements with a 1", vec![1, i64::MAX, 2], 1),
        // 2^62 i64 elements: the count fits u64, the byte size does not.
        ("bytes", vec![1 << 62], 7),
    ] {
        let t = TensorProto {
            name: Some("w".into()),
            data_type: Some(dtype),
            dims,
            raw_data: Some(Bytes::from(sixteen_bytes())),
            ..Default::default()
        };
        assert_refused(case, one_init(t), &["tensor `w`", "overflows u64"]);
    }
    // Negative dims are malformed, not large.
    let neg = raw_f32("neg", &[-4], &sixteen_bytes());
    assert_refused(
        "negative",
        one_init(neg),
        &["tensor `neg`", "invalid dimension -4"],
    );
    // A zero dim makes the tensor empty, however large the others.
    let empty = raw_f32("empty", &[0, 1 << 62], &[]);
    try_import("empty", one_init(empty), None, &ImportLimits::default()).unwrap();
    assert_no_large_allocation("dim overflow");
}

#[test]
fn values_larger_than_the_budget_are_refused() {
    // A graph input whose declared shape alone needs 2^60 × 4 bytes.
    let mut g = graph(vec![node("Relu", "relu", &["x"], &["y"])], vec![], &["y"]);
    g.input = vec![value("x", 1, &[1 << 20, 1 << 20, 1 << 20])];
    assert_refused(
        "input",
        model(g),
        &["graph input `x`", "exceeds the memory budget"],
    );
    // An inferred output: Expand to a constant 2^40 × 2^40 shape.
    let shape = TensorProto {
        name: Some("shape".into()),
        data_type: Some(7),
        dims: vec![2],
        int64_data: vec![1 << 40, 1 << 40],
        ..Default::default()
    };
    let mut g = graph(
        vec![node("Expand", "expand", &["x1", "shape"], &["y"])],
        vec![shape],
        &["y"],
    );
    g.input = vec![value("x1", 1, &[1])];
    assert_refused(
        "inferred output",
        model(g),
        &["node `expand` (Expand), output `y`", "overflows u64"],
    );
    assert_no_large_allocation("value bombs");
}

#[test]
fn a_small_budget_is_honoured_in_total() {
    let limits = ImportLimits {
        max_memory_bytes: 40,
        ..Default::default()
    };
    let a = raw_f32("a", &[4], &sixteen_bytes());
    let b = raw_f32("b", &[4], &sixteen_bytes());
    let c = raw_f32("c", &[4], &sixteen_bytes());
    let nodes = vec![
        node("Add", "ab", &["a", "b"], &["ab"]),
        node("Add", "abc", &["ab", "c"], &["y"]),
    ];
    // Two 16-byte constants fit in 40 bytes...
    let g2 = graph(vec![nodes[0].clone()], vec![a.clone(), b.clone()], &["ab"]);
    try_import("two", model(g2), None, &limits).unwrap();
    // ... three do not.
    let g3 = graph(nodes, vec![a, b, c], &["y"]);
    let e = refused_with("three", model(g3), None, &limits);
    assert!(matches!(e, OnnxError::Limit { .. }), "{e}");
    assert_has(
        "three",
        &e.to_string(),
        &[
            "tensor `c`",
            "constants take 48 bytes",
            "exceeds the memory budget of 40 bytes",
        ],
    );
}

#[test]
fn declared_size_and_data_must_agree() {
    let short = raw_f32("short", &[4], &sixteen_bytes()[..12]);
    assert_refused(
        "raw short",
        one_init(short),
        &["tensor `short`", "need 16 bytes, the data has 12"],
    );
    let long = raw_f32("long", &[2], &sixteen_bytes());
    assert_refused(
        "raw long",
        one_init(long),
        &["tensor `long`", "need 8 bytes, the data has 16"],
    );
    let typed = TensorProto {
        name: Some("typed".into()),
        data_type: Some(1),
        dims: vec![3],
        float_data: vec![1.0, 2.0],
        ..Default::default()
    };
    assert_refused(
        "typed",
        one_init(typed),
        &["tensor `typed`", "dims declare 3", "float_data holds 2"],
    );
    let strings = TensorProto {
        name: Some("s".into()),
        data_type: Some(8),
        dims: vec![1 << 30],
        string_data: vec![b"a".to_vec()],
        ..Default::default()
    };
    assert_refused(
        "strings",
        one_init(strings),
        &["tensor `s`", "string_data holds 1"],
    );
    assert_no_large_allocation("size mismatch");
}

// ---------------------------------------------------------------------------------------
// Structure.

#[test]
fn truncated_protobufs_are_refused_naming_the_file() {
    let dir = TempDir::new("truncated");
    let good = model(graph(
        vec![node("Relu", "relu", &["x"], &["y"])],
        vec![raw_f32("w", &[4], &sixteen_bytes())],
        &["y"],
    ));
    let path = dir.0.join("cut.onnx");
    std::fs::write(&path, &good[..good.len() / 2]).unwrap();
    file_refused(
        "truncated file",
        &path,
        &["cut.onnx", "is not a valid ONNX model protobuf"],
    );
    // Every truncation in memory, too: an error or (for a cut at a field boundary) a
    // smaller model, never a panic.
    for n in 0..good.len() {
        let _ = try_import(
            "truncation",
            good[..n].to_vec(),
            None,
            &ImportLimits::default(),
        );
    }
    // A length prefix claiming far more bytes than follow.
    let mut lying = vec![0x3a, 0xff, 0xff, 0xff, 0xff, 0x0f];
    lying.extend_from_slice(&[0; 8]);
    assert_refused("length prefix", lying, &["not a valid ONNX model protobuf"]);
    assert_no_large_allocation("truncation");
}

#[test]
fn cycles_are_refused() {
    // a -> b -> a.
    let g = graph(
        vec![
            node("Relu", "first", &["b_out"], &["a_out"]),
            node("Relu", "second", &["a_out"], &["b_out"]),
        ],
        vec![],
        &["a_out"],
    );
    assert_refused(
        "two-node cycle",
        model(g),
        &[
            "node `first`",
            "input `b_out`",
            "the graph has a cycle (`first` -> `second` -> `first`)",
        ],
    );
    // A node reading its own output.
    let g = graph(
        vec![node("Add", "selfish", &["x", "y"], &["y"])],
        vec![],
        &["y"],
    );
    assert_refused(
        "self loop",
        model(g),
        &[
            "node `selfish`",
            "the graph has a cycle (`selfish` -> `selfish`)",
        ],
    );
    // A longer cycle behind an acyclic prefix.
    let g = graph(
        vec![
            node("Relu", "entry", &["x"], &["e"]),
            node("Add", "n1", &["e", "n3_out"], &["n1_out"]),
            node("Relu", "n2", &["n1_out"], &["n2_out"]),
            node("Relu", "n3", &["n2_out"], &["n3_out"]),
        ],
        vec![],
        &["n3_out"],
    );
    assert_refused(
        "long cycle",
        model(g),
        &["node `n1`", "cycle (`n1` -> `n2` -> `n3` -> `n1`)"],
    );
    // Merely out of order (no cycle) is told apart.
    let g = graph(
        vec![
            node("Relu", "late", &["early_out"], &["y"]),
            node("Relu", "early", &["x"], &["early_out"]),
        ],
        vec![],
        &["y"],
    );
    assert_refused(
        "out of order",
        model(g),
        &[
            "node `late`",
            "produced by a later node `early`",
            "topological order",
        ],
    );
}

/// Append a length-delimited protobuf field.
fn field(out: &mut Vec<u8>, number: u32, payload: &[u8]) {
    let varint = |mut v: u64, out: &mut Vec<u8>| {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    };
    varint(u64::from(number) << 3 | 2, out);
    varint(payload.len() as u64, out);
    out.extend_from_slice(payload);
}

/// A model whose graph holds an `If` node whose `then_branch` holds an `If` node ...,
/// `depth` graphs below the main one. Built as bytes from the inside out, so neither
/// encoding nor dropping recurses here.
fn nested_model(depth: usize) -> Vec<u8> {
    let leaf = GraphProto {
        name: Some(format!("g{depth}")),
        node: vec![node("Identity", "leaf", &["x"], &["y"])],
        ..Default::default()
    };
    let mut g = leaf.encode_to_vec();
    for level in (0..depth).rev() {
        let mut attr = AttributeProto {
            name: Some("then_branch".into()),
            r#type: Some(AttributeType::Graph as i32),
            ..Default::default()
        }
        .encode_to_vec();
        field(&mut attr, 6, &g); // AttributeProto.g
        let mut n = node("If", &format!("if{level}"), &["cond"], &["out"]).encode_to_vec();
        field(&mut n, 5, &attr); // NodeProto.attribute
        let mut outer = GraphProto {
            name: Some(format!("g{level}")),
            ..Default::default()
        }
        .encode_to_vec();
        field(&mut outer, 1, &n); // GraphProto.node
        g = outer;
    }
    let mut m = ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(17),
        }],
        ..Default::default()
    }
    .encode_to_vec();
    field(&mut m, 7, &g); // ModelProto.graph
    m
}

#[test]
fn deeply_nested_subgraphs_are_refused() {
    let limits = ImportLimits {
        max_subgraph_depth: 4,
        ..Default::default()
    };
    let e = refused_with("depth 10", nested_model(10), None, &limits);
    assert!(matches!(e, OnnxError::Limit { .. }), "{e}");
    assert_has(
        "depth 10",
        &e.to_string(),
        &[
            "node `if4` (If), attribute `then_branch`",
            "subgraphs are nested 5 deep, more than the limit of 4",
            "ImportLimits::max_subgraph_depth",
        ],
    );
    // At the limit the depth check passes (and `If` is refused as unsupported).
    let e = refused_with("depth 4", nested_model(4), None, &limits);
    assert!(!matches!(e, OnnxError::Limit { .. }), "{e}");
    // Under the default limit (64) a nesting bomb is stopped by the protobuf decoder's
    // recursion limit first; either way an error, not a stack overflow.
    let limits = ImportLimits::default();
    let e = refused_with("depth 50", nested_model(50), None, &limits);
    assert_has(
        "depth 50",
        &e.to_string(),
        &["not a valid ONNX model protobuf"],
    );
    let e = refused_with("depth 2000", nested_model(2000), None, &limits);
    assert_has("depth 2000", &e.to_string(), &["recursion limit"]);
    let e = refused_with(
        "depth 20",
        nested_model(20),
        None,
        &ImportLimits {
            max_subgraph_depth: 19,
            ..Default::default()
        },
    );
    assert_has("depth 20", &e.to_string(), &["nested 20 deep"]);
}

#[test]
fn too_many_nodes_are_refused() {
    let limits = ImportLimits {
        max_nodes: 10,
        ..Default::default()
    };
    let chain = |n: usize| {
        let nodes = (0..n)
            .map(|i| {
                let input = if i == 0 {
                    "x".to_string()
                } else {
                    format!("v{i}")
                };
                let output = format!("v{}", i + 1);
                node("Relu", &format!("relu{i}"), &[&input], &[&output])
            })
            .collect();
        model(graph(nodes, vec![], &[&format!("v{n}")]))
    };
    try_import("10 nodes", chain(10), None, &limits).unwrap();
    let e = refused_with("11 nodes", chain(11), None, &limits);
    assert!(matches!(e, OnnxError::Limit { .. }), "{e}");
    assert_has(
        "11 nodes",
        &e.to_string(),
        &[
            "graph `hostile`",
            "more than 10 nodes",
            "ImportLimits::max_nodes",
        ],
    );
    // Nodes in subgraphs count too: three nested `If` nodes and the leaf's node are 4.
    let e = refused_with(
        "nested nodes",
        nested_model(3),
        None,
        &ImportLimits {
            max_nodes: 3,
            ..Default::default()
        },
    );
    assert_has("nested nodes", &e.to_string(), &["more than 3 nodes"]);
}

// ---------------------------------------------------------------------------------------
// Types and versions.

#[test]
fn unknown_dtypes_are_refused() {
    let t = raw_f32("w", &[4], &sixteen_bytes());
    for (code, name) in [(99, "unknown"), (-3, "unknown"), (14, "COMPLEX64")] {
        let bad = TensorProto {
            data_type: Some(code),
            ..t.clone()
        };
        assert_refused(
            "initializer",
            one_init(bad),
            &[
                "tensor `w`",
                &format!("unsupported ONNX data type {code} ({name})"),
            ],
        );
    }
    let mut g = graph(vec![node("Relu", "relu", &["x"], &["y"])], vec![], &["y"]);
    g.input = vec![value("x", 1234, &[2])];
    assert_refused(
        "graph input",
        model(g),
        &["value `x`", "unsupported ONNX data type 1234 (unknown)"],
    );
    let mut g = graph(vec![node("Relu", "relu", &["x"], &["y"])], vec![], &[]);
    g.output = vec![value("y", 0, &[2, 3])];
    assert_refused(
        "graph output",
        model(g),
        &["value `y`", "unsupported ONNX data type 0 (UNDEFINED)"],
    );
}

#[test]
fn out_of_range_opsets_are_refused() {
    for v in [999, 29, 0, -1, i64::MAX] {
        let g = graph(vec![node("Relu", "relu", &["x"], &["y"])], vec![], &["y"]);
        let data = model_with_opset(g, v).encode_to_vec();
        assert_refused(
            "opset",
            data,
            &[&format!(
                "default-domain opset {v} is not supported (supported: 1..=28)"
            )],
        );
    }
}
