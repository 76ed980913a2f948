//! Differential tests of lowering: small graphs (text IR) with random inputs, run by
//! the graph interpreter (the oracle) and by the reference evaluator of the lowered
//! program, at odd sizes (1, 3, 17, 129) that break any tiling. Every program's memory
//! plan is checked for overlapping live buffers too.
//!
//! Tolerance: floats compare with `|got - want| <= TOL * max(1, |want|)`, TOL = 1e-5
//! unless a test states otherwise (the evaluator rounds to f32 after every operation,
//! the interpreter accumulates sums in f64, so long sums differ by a few f32 ulps of the
//! partial sums). Integers and bools must match exactly.

use smelt_ir::{text::parse, DType, Dim, Graph, Tensor};
use smelt_lower::{eval::evaluate, lower, plan_memory, KernelKind, KernelProgram, LowerError};

/// The default float tolerance (relative, absolute below 1).
const TOL: f64 = 1e-5;

/// SplitMix64: a small seeded generator, so the tests need no extra crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `[lo, hi)`.
    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform integer in `[lo, hi]`.
    fn int(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo + 1) as u64) as i64
    }
}

/// A random tensor for a graph input: floats in [-2, 2), integers in `ints`, bools
/// half true.
fn random_input(rng: &mut Rng, dtype: DType, shape: &[usize], ints: (i64, i64)) -> Tensor {
    let n: usize = shape.iter().product();
    let vals: Vec<f64> = (0..n)
        .map(|_| match dtype {
            DType::Bool => (rng.next() & 1) as f64,
            t if t.is_float() => rng.uniform(-2.0, 2.0),
            _ => rng.int(ints.0, ints.1) as f64,
        })
        .collect();
    Tensor::from_f64(dtype, shape.to_vec(), &vals).unwrap()
}

fn parse_typed(text: &str) -> Graph {
    let mut g = parse(text).unwrap_or_else(|e| panic!("parse: {e}\n{text}"));
    g.infer_types()
        .unwrap_or_else(|e| panic!("infer: {e}\n{text}"));
    g
}

/// Compare the interpreter and the evaluator on `g` with the given inputs.
fn compare(g: &Graph, program: &KernelProgram, inputs: &[Tensor], tol: f64) {
    let names: Vec<String> = g
        .inputs()
        .iter()
        .map(|&v| g.value(v).name.clone())
        .collect();
    let named: Vec<(&str, Tensor)> = names
        .iter()
        .map(|n| n.as_str())
        .zip(inputs.iter().cloned())
        .collect();
    let want = smelt_interp::run(g, &named).unwrap_or_else(|e| panic!("interp: {e}"));
    let got = evaluate(program, inputs).unwrap_or_else(|e| panic!("evaluate: {e}\n{program}"));
    assert_eq!(want.len(), got.len());
    for ((name, w), o) in want.iter().zip(&got) {
        assert_eq!(w.shape(), o.shape(), "{name}: shapes differ");
        assert_eq!(w.dtype(), o.dtype(), "{name}: dtypes differ");
        let (wv, ov) = (w.to_f64_vec().unwrap(), o.to_f64_vec().unwrap());
        for (i, (a, b)) in wv.iter().zip(&ov).enumerate() {
            let ok = if w.dtype().is_float() {
                (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= tol * a.abs().max(1.0)
            } else {
                a == b
            };
            assert!(ok, "{name}[{i}]: interpreter {a}, lowered {b}\n{program}");
        }
    }
}

/// Lower `text`, check the memory plan, and compare on random inputs (integer inputs in
/// `ints`) for two seeds. Returns the program.
fn check_ints(text: &str, tol: f64, ints: (i64, i64)) -> KernelProgram {
    let g = parse_typed(text);
    let program = lower(&g).unwrap_or_else(|e| panic!("lower: {e}\n{text}"));
    let plan = plan_memory(&program, &|_| None).expect("plan");
    plan.check(&program)
        .expect("memory plan overlaps live buffers");
    for seed in [1u64, 2] {
        let mut rng = Rng(seed ^ text.len() as u64);
        let inputs: Vec<Tensor> = g
            .inputs()
            .iter()
            .map(|&v| {
                let ty = g.ty(v);
                let shape: Vec<usize> = ty
                    .dims()
                    .expect("known rank")
                    .iter()
                    .map(|d| match d {
                        Dim::Known(n) => *n as usize,
                        _ => panic!("test inputs need known dims"),
                    })
                    .collect();
                random_input(&mut rng, ty.dtype, &shape, ints)
            })
            .collect();
        compare(&g, &program, &inputs, tol);
    }
    program
}

fn check(text: &str) -> KernelProgram {
    check_ints(text, TOL, (-3, 3))
}

fn kinds(p: &KernelProgram) -> Vec<KernelKind> {
    p.kernels.iter().map(|k| k.kind).collect()
}

// ---------------------------------------------------------------- elementwise

#[test]
fn binary_ops_with_broadcasting() {
    for op in ["add", "sub", "mul", "div", "max", "min"] {
        let p = check(&format!(
            "graph @t(%a: f32[3, 17], %b: f32[17], %c: f32[3, 1]) -> (f32[3, 17]) {{
  %0 = {op}(%a, %b) : f32[3, 17]
  %1 = {op}(%0, %c) : f32[3, 17]
  return %1
}}"
        ));
        assert_eq!(p.kernels.len(), 1, "{op}: the chain fuses into one kernel");
    }
}

#[test]
fn unary_ops() {
    for op in [
        "relu",
        "sigmoid",
        "tanh",
        "exp",
        "neg",
        "abs",
        "erf",
        "reciprocal",
        "sign",
    ] {
        check(&format!(
            "graph @t(%a: f32[1, 129]) -> (f32[1, 129]) {{
  %0 = {op}(%a) : f32[1, 129]
  return %0
}}"
        ));
    }
    // log and sqrt of |x| + 0.5, pow with a positive base.
    for op in ["log", "sqrt"] {
        check(&format!(
            "graph @t(%a: f32[17]) -> (f32[17]) {{
  %h = const f32[] [0.5]
  %0 = abs(%a) : f32[17]
  %1 = add(%0, %h) : f32[17]
  %2 = {op}(%1) : f32[17]
  return %2
}}"
        ));
    }
    check(
        "graph @t(%a: f32[17], %b: f32[17]) -> (f32[17]) {
  %h = const f32[] [0.5]
  %0 = abs(%a) : f32[17]
  %1 = add(%0, %h) : f32[17]
  %2 = pow(%1, %b) : f32[17]
  return %2
}",
    );
}

#[test]
fn gelu_both_forms() {
    for approx in ["none", "tanh"] {
        check(&format!(
            "graph @t(%a: f32[3, 17]) -> (f32[3, 17]) {{
  %0 = gelu(%a) {{approximate = \"{approx}\"}} : f32[3, 17]
  return %0
}}"
        ));
    }
}

#[test]
fn comparisons_logic_where_and_cast() {
    let p = check(
        "graph @t(%a: f32[3, 17], %b: f32[17]) -> (bool[3, 17], bool[3, 17], f32[3, 17], i64[3, 17]) {
  %0 = less(%a, %b) : bool[3, 17]
  %1 = greater_or_equal(%a, %b) : bool[3, 17]
  %2 = equal(%a, %a) : bool[3, 17]
  %3 = less_or_equal(%a, %b) : bool[3, 17]
  %4 = greater(%a, %b) : bool[3, 17]
  %5 = and(%0, %2) : bool[3, 17]
  %6 = or(%3, %4) : bool[3, 17]
  %7 = not(%6) : bool[3, 17]
  %8 = where(%1, %a, %b) : f32[3, 17]
  %9 = cast(%a) {to = 7} : i64[3, 17]
  return %5, %7, %8, %9
}",
    );
    assert!(!p.kernels.is_empty());
}

#[test]
fn clip_forms() {
    // Constant bounds, tensor bounds (broadcast scalar loads), only max, no bounds.
    check(
        "graph @t(%a: f32[3, 17]) -> (f32[3, 17]) {
  %lo = const f32[] [-0.5]
  %hi = const f32[] [0.75]
  %0 = clip(%a, %lo, %hi) : f32[3, 17]
  return %0
}",
    );
    check(
        "graph @t(%a: f32[3, 17], %lo: f32[], %hi: f32[]) -> (f32[3, 17]) {
  %0 = clip(%a, %lo, %hi) : f32[3, 17]
  return %0
}",
    );
    check(
        "graph @t(%a: f32[3, 17]) -> (f32[3, 17]) {
  %hi = const f32[] [0.25]
  %0 = clip(%a, _, %hi) : f32[3, 17]
  %1 = relu(%0) : f32[3, 17]
  return %1
}",
    );
    check(
        "graph @t(%a: f32[17]) -> (f32[17]) {
  %0 = clip(%a) : f32[17]
  return %0
}",
    );
}

#[test]
fn elementwise_chain_with_broadcasting_fuses() {
    let p = check(
        "graph @t(%a: f32[3, 1, 17], %b: f32[1, 129, 1], %c: f32[17]) -> (f32[3, 129, 17]) {
  %0 = add(%a, %b) : f32[3, 129, 17]
  %1 = mul(%0, %c) : f32[3, 129, 17]
  %2 = tanh(%1) : f32[3, 129, 17]
  %3 = sub(%2, %a) : f32[3, 129, 17]
  return %3
}",
    );
    assert_eq!(kinds(&p), [KernelKind::Elementwise]);
}

// ---------------------------------------------------------------- matmul and fusion

#[test]
fn matmul_shapes() {
    check(
        "graph @t(%a: f32[3, 129], %b: f32[129, 17]) -> (f32[3, 17]) {
  %0 = matmul(%a, %b) : f32[3, 17]
  return %0
}",
    );
    // Batched with a broadcast batch, and vector operands.
    check(
        "graph @t(%a: f32[2, 3, 17], %b: f32[17, 5], %c: f32[1, 17, 3]) -> (f32[2, 3, 5], f32[2, 3, 3]) {
  %0 = matmul(%a, %b) : f32[2, 3, 5]
  %1 = matmul(%a, %c) : f32[2, 3, 3]
  return %0, %1
}",
    );
    check(
        "graph @t(%v: f32[17], %b: f32[17, 3], %a: f32[3, 17]) -> (f32[3], f32[3]) {
  %0 = matmul(%v, %b) : f32[3]
  %1 = matmul(%a, %v) : f32[3]
  return %0, %1
}",
    );
}

#[test]
fn matmul_bias_gelu_fuses() {
    let p = check(
        "graph @t(%x: f32[3, 17], %w: f32[17, 129], %b: f32[129]) -> (f32[3, 129]) {
  %0 = matmul(%x, %w) : f32[3, 129]
  %1 = add(%0, %b) : f32[3, 129]
  %2 = gelu(%1) : f32[3, 129]
  return %2
}",
    );
    assert_eq!(kinds(&p), [KernelKind::MatMul]);
    assert_eq!(p.kernels[0].nodes.len(), 3);
}

#[test]
fn matmul_residual_add_fuses() {
    let p = check(
        "graph @t(%x: f32[3, 17], %w: f32[17, 17], %b: f32[17]) -> (f32[3, 17]) {
  %0 = matmul(%x, %w) : f32[3, 17]
  %1 = add(%0, %b) : f32[3, 17]
  %2 = add(%1, %x) : f32[3, 17]
  return %2
}",
    );
    assert_eq!(kinds(&p), [KernelKind::MatMul]);
}

// ---------------------------------------------------------------- rows

#[test]
fn softmax_rows() {
    check(
        "graph @t(%a: f32[3, 1, 129]) -> (f32[3, 1, 129]) {
  %0 = softmax(%a) {axis = -1} : f32[3, 1, 129]
  return %0
}",
    );
    check(
        "graph @t(%a: f32[17, 1]) -> (f32[17, 1]) {
  %0 = softmax(%a) {axis = 1} : f32[17, 1]
  return %0
}",
    );
}

#[test]
fn layer_norm_with_and_without_scale_bias() {
    check(
        "graph @t(%a: f32[3, 129], %s: f32[129], %b: f32[129]) -> (f32[3, 129]) {
  %0 = layer_normalization(%a, %s, %b) {axis = -1, epsilon = 1e-05} : f32[3, 129]
  return %0
}",
    );
    check(
        "graph @t(%a: f32[17, 3], %s: f32[3]) -> (f32[17, 3]) {
  %0 = layer_normalization(%a, %s) {axis = -1} : f32[17, 3]
  return %0
}",
    );
}

// ---------------------------------------------------------------- data movement

#[test]
fn transpose_views_and_output_copies() {
    check(
        "graph @t(%a: f32[3, 17, 2]) -> (f32[2, 3, 17], f32[17, 3, 2], f32[3, 34], f32[3, 17, 2]) {
  %0 = transpose(%a) {perm = [2, 0, 1]} : f32[2, 3, 17]
  %1 = transpose(%a) {perm = [1, 0, 2]} : f32[17, 3, 2]
  %s = const i64[2] [3, 34]
  %2 = reshape(%a, %s) : f32[3, 34]
  %ax = const i64[1] [0]
  %3 = unsqueeze(%a, %ax) : f32[1, 3, 17, 2]
  %4 = squeeze(%3, %ax) : f32[3, 17, 2]
  %5 = flatten(%4) {axis = 1} : f32[3, 34]
  %6 = relu(%5) : f32[3, 34]
  %7 = identity(%a) : f32[3, 17, 2]
  return %0, %1, %6, %7
}",
    );
}

#[test]
fn gather_forms() {
    // Axis 0 (embedding), axis 1 with 2-D indices, axis -1 with scalar indices, i32.
    check(
        "graph @t(%e: f32[17, 3], %i: i64[2, 5]) -> (f32[2, 5, 3]) {
  %0 = gather(%e, %i) {axis = 0} : f32[2, 5, 3]
  return %0
}",
    );
    check(
        "graph @t(%e: f32[2, 17, 3], %i: i32[4, 1]) -> (f32[2, 4, 1, 3]) {
  %0 = gather(%e, %i) {axis = 1} : f32[2, 4, 1, 3]
  return %0
}",
    );
    check(
        "graph @t(%e: f32[3, 5]) -> (f32[3]) {
  %i = const i64[] [-2]
  %0 = gather(%e, %i) {axis = -1} : f32[3]
  return %0
}",
    );
    // Gather then add (the MiniLM embedding pattern) fuses.
    let p = check(
        "graph @t(%e: f32[17, 3], %i: i64[1, 4], %p: f32[1, 4, 3]) -> (f32[1, 4, 3]) {
  %0 = gather(%e, %i) : f32[1, 4, 3]
  %1 = add(%0, %p) : f32[1, 4, 3]
  return %1
}",
    );
    assert_eq!(p.kernels.len(), 1);
}

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

#[test]
fn slice_forms() {
    check(
        "graph @t(%a: f32[17, 5]) -> (f32[5, 3]) {
  %s = const i64[2] [2, 1]
  %e = const i64[2] [15, 100]
  %ax = const i64[2] [0, 1]
  %st = const i64[2] [3, 2]
  %0 = slice(%a, %s, %e, %ax, %st) : f32[5, 2]
  %1 = slice(%a, %s, %e) : f32[13, 4]
  %n = const i64[1] [-1]
  %m = const i64[1] [-100]
  %z = const i64[1] [0]
  %2 = slice(%a, %n, %m, %z, %n) : f32[17, 5]
  %3 = slice(%2, %n, %m, %n, %n) : f32[17, 5]
  %t3 = const i64[1] [3]
  %4 = slice(%3, %z, %t3, %z) : f32[3, 5]
  %5 = transpose(%4) : f32[5, 3]
  return %5
}",
    );
}

#[test]
fn expand_concat_split() {
    check(
        "graph @t(%a: f32[3, 1], %b: f32[3, 4], %c: f32[3, 1]) -> (f32[2, 3, 17], f32[3, 6], f32[1, 3, 6]) {
  %s = const i64[3] [2, 1, 17]
  %0 = expand(%a, %s) : f32[2, 3, 17]
  %1 = concat(%a, %b, %c) {axis = 1} : f32[3, 6]
  %ax = const i64[1] [0]
  %2 = unsqueeze(%1, %ax) : f32[1, 3, 6]
  %3 = concat(%2) {axis = -1} : f32[1, 3, 6]
  return %0, %1, %3
}",
    );
    check(
        "graph @t(%a: f32[3, 17]) -> (f32[3, 5], f32[3, 12], f32[1, 17], f32[2, 17]) {
  %sz = const i64[2] [5, 12]
  %0, %1 = split(%a, %sz) {axis = 1} : f32[3, 5], f32[3, 12]
  %s2 = const i64[2] [1, 2]
  %2, %3 = split(%a, %s2) {axis = 0} : f32[1, 17], f32[2, 17]
  %4 = relu(%3) : f32[2, 17]
  return %0, %1, %2, %4
}",
    );
}

// ---------------------------------------------------------------- reductions

#[test]
fn reductions() {
    // Float sums over up to 129 * 3 values: the evaluator rounds every partial sum to
    // f32, the interpreter sums in f64, so allow 1e-4 relative (ReduceProd too).
    let ops = [
        "reduce_sum",
        "reduce_mean",
        "reduce_max",
        "reduce_min",
        "reduce_prod",
        "reduce_l1",
        "reduce_l2",
        "reduce_sum_square",
    ];
    for op in ops {
        // axes input, keepdims default (1).
        check_ints(
            &format!(
                "graph @t(%a: f32[3, 17, 5]) -> (f32[3, 1, 1]) {{
  %ax = const i64[2] [1, -1]
  %0 = {op}(%a, %ax) : f32[3, 1, 1]
  return %0
}}"
            ),
            1e-4,
            (0, 0),
        );
        // keepdims = 0, one axis, and every axis.
        check_ints(
            &format!(
                "graph @t(%a: f32[129, 3]) -> (f32[3], f32[]) {{
  %ax = const i64[1] [0]
  %0 = {op}(%a, %ax) {{keepdims = 0}} : f32[3]
  %1 = {op}(%a) {{keepdims = 0}} : f32[]
  return %0, %1
}}"
            ),
            1e-4,
            (0, 0),
        );
        // noop_with_empty_axes: the tensor stays (after the per-element part).
        check(&format!(
            "graph @t(%a: f32[3, 17]) -> (f32[3, 17]) {{
  %0 = {op}(%a) {{noop_with_empty_axes = 1}} : f32[3, 17]
  return %0
}}"
        ));
    }
    // Axes as an attribute (opset < 18), integer input, and a fused epilogue.
    let p = check(
        "graph @t(%a: f32[3, 17], %b: i64[2, 17]) -> (f32[3, 1], i64[17]) {
  %0 = reduce_mean(%a) {axes = [1]} : f32[3, 1]
  %1 = sqrt(%0) : f32[3, 1]
  %2 = reduce_sum(%b) {axes = [0], keepdims = 0} : i64[17]
  return %1, %2
}",
    );
    assert!(p
        .kernels
        .iter()
        .any(|k| k.kind == KernelKind::Reduce && k.nodes.len() == 2));
}

// ---------------------------------------------------------------- gemm, conv, pool

#[test]
fn gemm_forms() {
    for (ta, tb, ashape, bshape) in [
        (0, 0, "3, 17", "17, 5"),
        (1, 0, "17, 3", "17, 5"),
        (0, 1, "3, 17", "5, 17"),
        (1, 1, "17, 3", "5, 17"),
    ] {
        for c in ["", ", %c1", ", %cm", ", %cs"] {
            let p = check(&format!(
                "graph @t(%a: f32[{ashape}], %b: f32[{bshape}], %c1: f32[5], %cm: f32[3, 5], %cs: f32[1, 1]) -> (f32[3, 5]) {{
  %0 = gemm(%a, %b{c}) {{alpha = 0.5, beta = 2.0, transA = {ta}, transB = {tb}}} : f32[3, 5]
  %1 = relu(%0) : f32[3, 5]
  return %1
}}"
            ));
            assert_eq!(kinds(&p), [KernelKind::MatMul]);
            // The matmul body shape backends pattern-match.
            let body = &p.kernels[0].body;
            assert!(matches!(&body[0], smelt_lower::Stmt::Assign(..)));
            assert!(
                matches!(&body[1], smelt_lower::Stmt::Loop { reduce: true, body, .. } if body.len() == 1)
            );
        }
    }
    check(
        "graph @t(%a: f32[1, 129], %b: f32[129, 17], %c: f32[17]) -> (f32[1, 17]) {
  %0 = gemm(%a, %b, %c) : f32[1, 17]
  return %0
}",
    );
}

#[test]
fn conv_forms() {
    // Plain 3x3, padded + strided + bias + fused relu, dilated, grouped, 1-D.
    check(
        "graph @t(%x: f32[1, 3, 7, 6], %w: f32[4, 3, 3, 3]) -> (f32[1, 4, 5, 4]) {
  %0 = conv(%x, %w) : f32[1, 4, 5, 4]
  return %0
}",
    );
    let p = check(
        "graph @t(%x: f32[2, 3, 7, 6], %w: f32[5, 3, 3, 2], %b: f32[5]) -> (f32[2, 5, 4, 3]) {
  %0 = conv(%x, %w, %b) {pads = [1, 0, 1, 1], strides = [2, 2]} : f32[2, 5, 4, 3]
  %1 = relu(%0) : f32[2, 5, 4, 3]
  return %1
}",
    );
    assert_eq!(kinds(&p), [KernelKind::Conv]);
    // The padded window is guarded, and the -pad is the index's constant offset.
    let text = p.to_string();
    assert!(text.contains("if ") && text.contains(" + -"), "{text}");
    check(
        "graph @t(%x: f32[1, 2, 9, 9], %w: f32[3, 2, 3, 3]) -> (f32[1, 3, 7, 7]) {
  %0 = conv(%x, %w) {dilations = [2, 2], pads = [1, 1, 1, 1]} : f32[1, 3, 7, 7]
  return %0
}",
    );
    check(
        "graph @t(%x: f32[1, 4, 5, 5], %w: f32[6, 2, 3, 3], %b: f32[6]) -> (f32[1, 6, 5, 5]) {
  %0 = conv(%x, %w, %b) {group = 2, pads = [1, 1, 1, 1]} : f32[1, 6, 5, 5]
  return %0
}",
    );
    check(
        "graph @t(%x: f32[1, 3, 3, 3], %w: f32[3, 1, 3, 3]) -> (f32[1, 3, 3, 3]) {
  %0 = conv(%x, %w) {group = 3, auto_pad = \"SAME_UPPER\"} : f32[1, 3, 3, 3]
  return %0
}",
    );
    check(
        "graph @t(%x: f32[1, 3, 17], %w: f32[2, 3, 4]) -> (f32[1, 2, 17]) {
  %0 = conv(%x, %w) {pads = [1, 2]} : f32[1, 2, 17]
  return %0
}",
    );
}

#[test]
fn pool_forms() {
    check(
        "graph @t(%x: f32[1, 3, 7, 6]) -> (f32[1, 3, 4, 3], f32[1, 3, 4, 3], f32[1, 3, 4, 3]) {
  %0 = max_pool(%x) {kernel_shape = [3, 3], pads = [1, 1, 1, 1], strides = [2, 2]} : f32[1, 3, 4, 3]
  %1 = average_pool(%x) {kernel_shape = [3, 3], pads = [1, 1, 1, 1], strides = [2, 2]} : f32[1, 3, 4, 3]
  %2 = average_pool(%x) {count_include_pad = 1, kernel_shape = [3, 3], pads = [1, 1, 1, 1], strides = [2, 2]} : f32[1, 3, 4, 3]
  return %0, %1, %2
}",
    );
    let p = check(
        "graph @t(%x: f32[2, 1, 17, 3]) -> (f32[2, 1, 16, 2]) {
  %0 = max_pool(%x) {kernel_shape = [2, 2]} : f32[2, 1, 16, 2]
  %1 = relu(%0) : f32[2, 1, 16, 2]
  return %1
}",
    );
    assert_eq!(kinds(&p), [KernelKind::Pool]);
}

#[test]
fn symbolic_dims() {
    let g = parse_typed(
        "graph @t(%x: f32[?n, 17], %w: f32[17, 3], %b: f32[3]) -> (f32[?n, 3], f32[?n]) {
  %0 = matmul(%x, %w) : f32[?n, 3]
  %1 = add(%0, %b) : f32[?n, 3]
  %2 = relu(%1) : f32[?n, 3]
  %ax = const i64[1] [1]
  %3 = reduce_max(%2, %ax) {keepdims = 0} : f32[?n]
  return %2, %3
}",
    );
    let p = lower(&g).unwrap();
    for n in [1usize, 3, 129] {
        let plan = plan_memory(&p, &|d| (d == "n").then_some(n as u64)).expect("plan");
        plan.check(&p).expect("memory plan overlaps live buffers");
        let mut rng = Rng(n as u64);
        let inputs = vec![
            random_input(&mut rng, DType::F32, &[n, 17], (0, 0)),
            random_input(&mut rng, DType::F32, &[17, 3], (0, 0)),
            random_input(&mut rng, DType::F32, &[3], (0, 0)),
        ];
        compare(&g, &p, &inputs, TOL);
    }
}

#[test]
fn gelu_at_zero() {
    let g = parse_typed(
        "graph @t(%x: f32[3]) -> (f32[3]) {
  %0 = gelu(%x) : f32[3]
  return %0
}",
    );
    let p = lower(&g).unwrap();
    let x = Tensor::from_vec(vec![3], vec![0.0f32, -0.0, 1.0]).unwrap();
    compare(&g, &p, &[x], TOL);
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
