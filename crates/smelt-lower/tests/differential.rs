//! Differential tests of lowering: every case of the shared kernel corpus
//! (`tests/kernels/ops.smelt`: small graphs at odd sizes 1, 3, 17, 129 that break any
//! tiling) runs on seeded random inputs through the graph interpreter (the oracle) and
//! through the reference evaluator of the lowered program. Every program's memory plan
//! is checked for overlapping live buffers too. `tests/tests/codegen_ops.rs` runs the
//! same corpus through the Cranelift backend.
//!
//! Tolerance: floats compare with `|got - want| <= TOL * (1 + |want|)`, TOL = 1e-5 unless
//! the case states otherwise (the evaluator rounds to f32 after every operation, the
//! interpreter accumulates sums in f64, so long sums differ by a few f32 ulps of the
//! partial sums). Integers and bools must match exactly.
//!
//! The tests after the corpus check what the comparison cannot see: which kernels
//! fusion produces for some corpus cases, refusals, index clamping and a snapshot.

use smelt_ir::{text::parse, Graph, Tensor};
use smelt_lower::{eval::evaluate, lower, plan_memory, KernelKind, KernelProgram, LowerError};

mod deps {
    pub use smelt_interp as interp;
    pub use smelt_ir as ir;
}
#[path = "../../../tests/kernels/harness.rs"]
mod harness;

fn parse_typed(text: &str) -> Graph {
    let mut g = parse(text).unwrap_or_else(|e| panic!("parse: {e}\n{text}"));
    g.infer_types()
        .unwrap_or_else(|e| panic!("infer: {e}\n{text}"));
    g
}

/// Lower one corpus case and compare it with the interpreter on every input set;
/// returns how many sets ran.
fn run_case(case: &harness::Case) -> Result<usize, String> {
    let g = case.graph();
    let program = lower(&g).map_err(|e| format!("lower: {e}"))?;
    let sets = case.input_sets(&g);
    for set in &sets {
        let plan = plan_memory(&program, &|d| set.dims.get(d).copied())
            .map_err(|e| format!("{}: plan: {e}", set.label))?;
        plan.check(&program)
            .map_err(|e| format!("{}: memory plan overlaps live buffers: {e}", set.label))?;
        let want = harness::interpret(&g, &set.tensors)?;
        let got = evaluate(&program, &set.tensors)
            .map_err(|e| format!("{}: evaluate: {e}\n{program}", set.label))?;
        harness::compare(&want, &got, case.tol)
            .map_err(|e| format!("{}: {e}\n{program}", set.label))?;
    }
    Ok(sets.len())
}

#[test]
fn corpus_lowered_matches_interpreter() {
    let cases = harness::corpus();
    let (mut sets, mut failures) = (0, vec![]);
    for case in &cases {
        match run_case(case) {
            Ok(n) => sets += n,
            Err(e) => failures.push(format!("{}: {e}", case.title())),
        }
    }
    eprintln!("{} corpus cases, {sets} input sets", cases.len());
    assert!(
        failures.is_empty(),
        "{} of {} corpus cases fail:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

// ---------------------------------------------------------------- fusion of corpus cases

/// The lowered program of a corpus case.
fn lower_case(name: &str) -> KernelProgram {
    let case = harness::case(name);
    lower(&case.graph()).unwrap_or_else(|e| panic!("{}: lower: {e}", case.title()))
}

fn kinds(p: &KernelProgram) -> Vec<KernelKind> {
    p.kernels.iter().map(|k| k.kind).collect()
}

#[test]
fn binary_chains_with_broadcasting_fuse() {
    for op in ["add", "sub", "mul", "div", "max", "min"] {
        let p = lower_case(&format!("binary {op} broadcast"));
        assert_eq!(p.kernels.len(), 1, "{op}: the chain fuses into one kernel");
    }
}

#[test]
fn elementwise_chain_with_broadcasting_fuses() {
    let p = lower_case("elementwise chain broadcast");
    assert_eq!(kinds(&p), [KernelKind::Elementwise]);
}

#[test]
fn matmul_bias_gelu_fuses() {
    let p = lower_case("matmul bias gelu");
    assert_eq!(kinds(&p), [KernelKind::MatMul]);
    assert_eq!(p.kernels[0].nodes.len(), 3);
}

#[test]
fn matmul_residual_add_fuses() {
    let p = lower_case("matmul bias residual");
    assert_eq!(kinds(&p), [KernelKind::MatMul]);
}

#[test]
fn gather_then_add_fuses() {
    // The MiniLM embedding pattern.
    let p = lower_case("gather then add");
    assert_eq!(p.kernels.len(), 1);
}

#[test]
fn reduce_epilogue_fuses() {
    let p = lower_case("reduce axes attribute int input fused epilogue");
    assert!(p
        .kernels
        .iter()
        .any(|k| k.kind == KernelKind::Reduce && k.nodes.len() == 2));
}

#[test]
fn gemm_lowers_to_the_matmul_body_shape() {
    let cases: Vec<_> = harness::corpus()
        .into_iter()
        .filter(|c| c.name.starts_with("gemm transA="))
        .collect();
    assert_eq!(cases.len(), 16, "every transA x transB x C form");
    for case in cases {
        let p = lower(&case.graph()).unwrap();
        assert_eq!(kinds(&p), [KernelKind::MatMul], "{}", case.title());
        // The matmul body shape backends pattern-match.
        let body = &p.kernels[0].body;
        assert!(
            matches!(&body[0], smelt_lower::Stmt::Assign(..)),
            "{}",
            case.title()
        );
        assert!(
            matches!(&body[1], smelt_lower::Stmt::Loop { reduce: true, body, .. } if body.len() == 1),
            "{}",
            case.title()
        );
    }
}

#[test]
fn padded_conv_fuses_relu_and_guards_the_window() {
    let p = lower_case("conv padded strided bias relu");
    assert_eq!(kinds(&p), [KernelKind::Conv]);
    // The padded window is guarded, and the -pad is the index's constant offset.
    let text = p.to_string();
    assert!(text.contains("if ") && text.contains(" + -"), "{text}");
}

#[test]
fn pool_fuses_relu() {
    let p = lower_case("max_pool relu");
    assert_eq!(kinds(&p), [KernelKind::Pool]);
}

// ---------------------------------------------------------------- clamping

#[test]
fn gather_clamps_bad_indices() {
    let g = parse_typed(
        "graph @t(%e: f32[4, 2], %i: i64[3]) -> (f32[3, 2]) {
  %0 = gather(%e, %i) : f32[3, 2]
  return %0
}",
    );
    let p = lower(&g).unwrap();
    let e = Tensor::from_vec(vec![4, 2], (0..8).map(|v| v as f32).collect::<Vec<_>>()).unwrap();
    let i = Tensor::from_vec(vec![3], vec![100i64, -100, -1]).unwrap();
    let out = evaluate(&p, &[e, i]).expect("bad indices must not fault");
    // 100 clamps to 3, -100 (wrapped to -96) clamps to 0, -1 wraps to 3.
    assert_eq!(
        out[0].to_f64_vec().unwrap(),
        vec![6.0, 7.0, 0.0, 1.0, 6.0, 7.0]
    );
}

// ---------------------------------------------------------------- errors and snapshot

#[test]
fn unsupported_nodes_are_named() {
    let g = parse_typed(
        "graph @t(%a: f32[3, 17]) -> (f32[3, 17]) {
  %ax = const i64[] [1]
  %0 = cum_sum(%a, %ax) : f32[3, 17]
  return %0
}",
    );
    match lower(&g) {
        Err(LowerError::Unsupported { nodes }) => assert_eq!(nodes[0].1, "cum_sum"),
        other => panic!("expected Unsupported, got {other:?}"),
    }
    // A supported op in a form lowering refuses: a computed slice bound.
    let g = parse_typed(
        "graph @t(%a: f32[3, 17], %s: i64[1]) -> (f32[*]) {
  %e = const i64[1] [5]
  %0 = slice(%a, %s, %e) : f32[*]
  return %0
}",
    );
    let err = lower(&g).expect_err("computed starts are refused");
    assert!(
        matches!(err, LowerError::Node { .. } | LowerError::Graph(_)),
        "{err}"
    );
    // ceil_mode pools are refused with the node's name, not a panic.
    let g = parse_typed(
        "graph @t(%x: f32[1, 1, 6, 6]) -> (f32[1, 1, 3, 3]) {
  %0 = max_pool(%x) {ceil_mode = 1, kernel_shape = [2, 2], strides = [2, 2]} : f32[1, 1, 3, 3] loc(\"pool1\")
  return %0
}",
    );
    match lower(&g) {
        Err(LowerError::Node { node, message, .. }) => {
            assert!(
                node.contains("pool1") && message.contains("ceil_mode"),
                "{node}: {message}"
            )
        }
        other => panic!("expected a node error, got {other:?}"),
    }
}

#[test]
fn snapshot_matmul_bias_gelu() {
    let g = parse_typed(
        "graph @mlp(%x: f32[3, 17], %w: f32[17, 5], %b: f32[5]) -> (f32[3, 5]) {
  %0 = matmul(%x, %w) : f32[3, 5]
  %1 = add(%0, %b) : f32[3, 5]
  %2 = gelu(%1) : f32[3, 5]
  return %2
}",
    );
    let p = lower(&g).unwrap();
    insta::assert_snapshot!(p.to_string());
}
