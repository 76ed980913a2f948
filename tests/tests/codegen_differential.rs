//! Differential tests of the Cranelift backend: small graphs with random values at
//! shapes that break tiling (1, 3, 17, 129), compiled and run, against the reference
//! interpreter.
//!
//! Tolerance: |compiled − interpreted| ≤ tol · (1 + |interpreted|), with tol = 2e-6 for
//! elementwise chains (inline `exp` is within 2 ulp, `erf` within 1.5e-7 absolute) and
//! 1e-5 for kernels that sum (matmul, softmax, layernorm: the compiled code adds in a
//! different order, with fused multiply-adds).

use smelt::{CompileOptions, Compiled, Tensor};

/// A small deterministic generator (xorshift*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in [-1, 1).
    fn f32(&mut self) -> f32 {
        ((self.next() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    fn values(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.f32()).collect()
    }
}

fn shape_text(shape: &[usize]) -> String {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    format!("[{}]", dims.join(", "))
}

/// `%name = const f32[shape] [random values]`.
fn const_line(rng: &mut Rng, name: &str, shape: &[usize]) -> String {
    let n: usize = shape.iter().product();
    let vals: Vec<String> = rng.values(n).iter().map(|v| format!("{v:?}")).collect();
    format!(
        "  %{name} = const f32{} [{}]\n",
        shape_text(shape),
        vals.join(", ")
    )
}

/// Compile `text` with the given options, run it and the interpreter on random inputs
/// of `shapes`, and return the largest scaled difference over all outputs.
fn worst_diff(text: &str, shapes: &[Vec<usize>], rng: &mut Rng, opts: CompileOptions) -> f64 {
    let graph = smelt::ir::text::parse(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let names: Vec<String> = graph
        .inputs()
        .iter()
        .map(|&v| graph.value(v).name.clone())
        .collect();
    let inputs: Vec<Tensor> = shapes
        .iter()
        .map(|s| Tensor::from_vec(s.clone(), rng.values(s.iter().product())).unwrap())
        .collect();
    let named: Vec<(&str, Tensor)> = names
        .iter()
        .map(String::as_str)
        .zip(inputs.iter().cloned())
        .collect();
    let want = smelt::interp::run(&graph, &named).expect("interpreter");
    let compiled = Compiled::new(graph, opts).expect("compile");
    let got = compiled
        .run(&named)
        .unwrap_or_else(|e| panic!("compiled run: {e}\n{text}"));
    let mut worst = 0.0f64;
    for ((name, w), (_, g)) in want.iter().zip(&got) {
        assert_eq!(w.shape(), g.shape(), "{name}: shapes differ");
        let (w, g) = (w.to_f64_vec().unwrap(), g.to_f64_vec().unwrap());
        for (a, b) in w.iter().zip(&g) {
            let d = (a - b).abs() / (1.0 + a.abs());
            assert!(!d.is_nan(), "{name}: NaN ({a} vs {b})");
            worst = worst.max(d);
        }
    }
    worst
}

fn option_sets() -> Vec<(&'static str, CompileOptions)> {
    smelt_tests::backend_option_sets()
}

fn check(label: &str, text: &str, shapes: &[Vec<usize>], tol: f64) {
    for (opt_label, opts) in option_sets() {
        let mut rng = Rng(0x5eed_1234_abcd_0001);
        let d = worst_diff(text, shapes, &mut rng, opts);
        eprintln!("{label} ({opt_label}): {d:e}");
        assert!(
            d <= tol,
            "{label} ({opt_label}): worst scaled diff {d:e} > {tol:e}\n{text}"
        );
    }
}

#[test]
fn matmul_bias_gelu_at_odd_sizes() {
    for (m, k, n) in [
        (1, 1, 1),
        (3, 17, 5),
        (17, 3, 129),
        (129, 17, 33),
        (4, 8, 8),
        (5, 64, 12),
    ] {
        let mut rng = Rng(42);
        let text = format!(
            "graph @g(%x: f32[{m}, {k}]) -> (f32[{m}, {n}]) {{\n{}{}  %h = matmul(%x, %w) : f32[{m}, {n}]\n  %hb = add(%h, %b) : f32[{m}, {n}]\n  %y = gelu(%hb) {{approximate = \"none\"}} : f32[{m}, {n}]\n  return %y\n}}\n",
            const_line(&mut rng, "w", &[k, n]),
            const_line(&mut rng, "b", &[n]),
        );
        check(&format!("matmul {m}x{k}x{n}"), &text, &[vec![m, k]], 1e-5);
    }
}

#[test]
fn batched_matmul_with_residual_and_scale() {
    for (b, m, k, n) in [(2, 3, 17, 9), (3, 17, 5, 129), (1, 1, 3, 4)] {
        let text = format!(
            "graph @g(%x: f32[{b}, {m}, {k}], %w: f32[{b}, {k}, {n}], %r: f32[{b}, {m}, {n}]) -> (f32[{b}, {m}, {n}]) {{\n  %s = const f32[] [0.125]\n  %h = matmul(%x, %w) : f32[{b}, {m}, {n}]\n  %hs = mul(%h, %s) : f32[{b}, {m}, {n}]\n  %y = add(%hs, %r) : f32[{b}, {m}, {n}]\n  return %y\n}}\n"
        );
        check(
            &format!("bmm {b}x{m}x{k}x{n}"),
            &text,
            &[vec![b, m, k], vec![b, k, n], vec![b, m, n]],
            1e-5,
        );
    }
}

#[test]
fn three_d_by_two_d_matmul() {
    let mut rng = Rng(7);
    let text = format!(
        "graph @g(%x: f32[2, 17, 33]) -> (f32[2, 17, 20]) {{\n{}  %y = matmul(%x, %w) : f32[2, 17, 20]\n  return %y\n}}\n",
        const_line(&mut rng, "w", &[33, 20])
    );
    check("3d x 2d", &text, &[vec![2, 17, 33]], 1e-5);
}

#[test]
fn softmax_rows_of_odd_lengths() {
    for n in [1, 3, 17, 129] {
        let text = format!(
            "graph @g(%x: f32[3, {n}]) -> (f32[3, {n}]) {{\n  %y = softmax(%x) {{axis = -1}} : f32[3, {n}]\n  return %y\n}}\n"
        );
        check(&format!("softmax {n}"), &text, &[vec![3, n]], 1e-5);
    }
}

#[test]
fn layer_norm_rows_of_odd_lengths() {
    for n in [1, 3, 17, 129] {
        let mut rng = Rng(9);
        let text = format!(
            "graph @g(%x: f32[5, {n}]) -> (f32[5, {n}]) {{\n{}{}  %y = layer_normalization(%x, %g, %b) {{axis = -1, epsilon = 1e-5}} : f32[5, {n}]\n  return %y\n}}\n",
            const_line(&mut rng, "g", &[n]),
            const_line(&mut rng, "b", &[n]),
        );
        check(&format!("layernorm {n}"), &text, &[vec![5, n]], 1e-5);
    }
}

#[test]
fn elementwise_chains_with_broadcasting() {
    for n in [1, 3, 17, 129] {
        let mut rng = Rng(11);
        let text = format!(
            "graph @g(%x: f32[3, {n}], %y: f32[3, 1]) -> (f32[3, {n}], f32[3, {n}]) {{\n{}  %a = add(%x, %c) : f32[3, {n}]\n  %b = mul(%a, %y) : f32[3, {n}]\n  %e = exp(%b) : f32[3, {n}]\n  %t = tanh(%e) : f32[3, {n}]\n  %s = sigmoid(%b) : f32[3, {n}]\n  %m = max(%t, %s) : f32[3, {n}]\n  %r = relu(%b) : f32[3, {n}]\n  %q = sqrt(%r) : f32[3, {n}]\n  %d = div(%m, %e) : f32[3, {n}]\n  %z = sub(%d, %q) : f32[3, {n}]\n  %k = erf(%z) : f32[3, {n}]\n  %w = less(%k, %x) : bool[3, {n}]\n  %o = where(%w, %k, %x) : f32[3, {n}]\n  %ab = abs(%o) : f32[3, {n}]\n  %ng = neg(%ab) : f32[3, {n}]\n  return %ng, %z\n}}\n",
            const_line(&mut rng, "c", &[n]),
        );
        check(
            &format!("chain {n}"),
            &text,
            &[vec![3, n], vec![3, 1]],
            2e-6,
        );
    }
}

#[test]
fn transpose_and_reshape_views() {
    let text = "graph @g(%x: f32[3, 17, 5]) -> (f32[5, 3, 17]) {\n  %t = transpose(%x) {perm = [2, 0, 1]} : f32[5, 3, 17]\n  %y = relu(%t) : f32[5, 3, 17]\n  return %y\n}\n";
    check("transpose", text, &[vec![3, 17, 5]], 0.0);
}

#[test]
fn symbolic_dims_are_specialised_per_shape() {
    let mut rng = Rng(3);
    let text = format!(
        "graph @g(%x: f32[?batch, ?seq, 8]) -> (f32[?batch, ?seq, 8]) {{\n{}  %h = matmul(%x, %w) : f32[?batch, ?seq, 8]\n  %y = softmax(%h) {{axis = -1}} : f32[?batch, ?seq, 8]\n  return %y\n}}\n",
        const_line(&mut rng, "w", &[8, 8])
    );
    let graph = smelt::ir::text::parse(&text).unwrap();
    let compiled = Compiled::new(graph.clone(), CompileOptions::default()).unwrap();
    for (b, s) in [(1, 1), (2, 17), (1, 129)] {
        let x = Tensor::from_vec(vec![b, s, 8], rng.values(b * s * 8)).unwrap();
        let want = smelt::interp::run(&graph, &[("x", x.clone())]).unwrap();
        let got = compiled.run(&[("x", x)]).unwrap();
        let (w, g) = (
            want[0].1.to_vec::<f32>().unwrap(),
            got[0].1.to_vec::<f32>().unwrap(),
        );
        assert_eq!(got[0].1.shape(), [b, s, 8]);
        let d = w
            .iter()
            .zip(&g)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(d < 1e-5, "b{b} s{s}: {d}");
    }
}

#[test]
fn f64_math_goes_through_the_bound_libm_symbols() {
    let text = "graph @g(%x: f64[3, 5]) -> (f64[3, 5]) {\n  %a = abs(%x) : f64[3, 5]\n  %l = log(%a) : f64[3, 5]\n  %e = exp(%l) : f64[3, 5]\n  %t = tanh(%e) : f64[3, 5]\n  %r = erf(%t) : f64[3, 5]\n  %p = pow(%r, %a) : f64[3, 5]\n  return %p\n}\n";
    let graph = smelt::ir::text::parse(text).unwrap();
    let mut rng = Rng(5);
    let vals: Vec<f64> = (0..15).map(|_| rng.f32() as f64 + 1.5).collect();
    let x = Tensor::from_vec(vec![3, 5], vals).unwrap();
    let want = smelt::interp::run(&graph, &[("x", x.clone())]).unwrap();
    let got = Compiled::new(graph, CompileOptions::default())
        .unwrap()
        .run(&[("x", x)])
        .unwrap();
    let (w, g) = (
        want[0].1.to_vec::<f64>().unwrap(),
        got[0].1.to_vec::<f64>().unwrap(),
    );
    for (a, b) in w.iter().zip(&g) {
        assert!((a - b).abs() <= 1e-12 * (1.0 + a.abs()), "{a} vs {b}");
    }
}

/// A weight stored as 8-bit blockwise codes with per-block scales (and optionally zero
/// points): lowering reads it through its decoding inside the matmul's reduction loop.
fn blockwise_weight(
    rng: &mut Rng,
    k: usize,
    n: usize,
    granularity: smelt::ir::Granularity,
    zero_point: bool,
) -> smelt::Constant {
    use smelt::ir::{Part, ScaleKind};
    let codes: Vec<i8> = (0..k * n).map(|_| (rng.f32() * 127.0) as i8).collect();
    let scale_shape = granularity.scale_shape(&[k, n]);
    let ns: usize = scale_shape.iter().product();
    let scales: Vec<f32> = (0..ns).map(|_| 0.01 + 0.02 * rng.f32().abs()).collect();
    let mut parts = vec![
        Part {
            name: "codes".into(),
            tensor: Tensor::from_vec(vec![k, n], codes).unwrap(),
        },
        Part {
            name: "scales".into(),
            tensor: Tensor::from_vec(scale_shape.clone(), scales).unwrap(),
        },
    ];
    if zero_point {
        let zps: Vec<i8> = (0..ns).map(|_| (rng.f32() * 10.0) as i8).collect();
        parts.push(Part {
            name: "zero_points".into(),
            tensor: Tensor::from_vec(scale_shape, zps).unwrap(),
        });
    }
    smelt::Constant::encoded(
        smelt::DType::F32,
        vec![k, n],
        smelt::Encoding::BlockwiseInt {
            bits: 8,
            signed: true,
            granularity,
            scale: ScaleKind::F32,
            zero_point,
        },
        parts,
    )
    .unwrap()
}

#[test]
fn blockwise_int8_weights_are_decoded_inside_the_matmul() {
    use smelt::ir::Granularity;
    for (granularity, zp) in [
        (Granularity::Block { axis: 0, size: 4 }, false),
        (Granularity::Block { axis: 0, size: 16 }, true),
        (Granularity::Channel { axis: 1 }, false),
        (Granularity::Tensor, true),
    ] {
        let mut rng = Rng(17);
        let (m, k, n) = (5, 33, 9);
        let mut g = smelt::Graph::new("q");
        let x = g.add_input(
            "x",
            smelt::TensorType::known(smelt::DType::F32, &[m as u64, k as u64]),
        );
        let w = g.add_const("w", blockwise_weight(&mut rng, k, n, granularity, zp));
        let b = g.add_const(
            "b",
            smelt::Constant::plain(Tensor::from_vec(vec![n], rng.values(n)).unwrap()),
        );
        let ty = smelt::TensorType::known(smelt::DType::F32, &[m as u64, n as u64]);
        let h = g
            .add_simple(
                smelt::OpKind::MatMul,
                Default::default(),
                &[x, w],
                "h",
                ty.clone(),
            )
            .unwrap();
        let y = g
            .add_simple(smelt::OpKind::Add, Default::default(), &[h, b], "y", ty)
            .unwrap();
        g.set_outputs(vec![y]);
        let program = smelt::lower::lower(&g).unwrap();
        let text = program.to_string();
        assert!(
            text.contains("w.codes"),
            "the codes stay a buffer of their own:\n{text}"
        );
        assert!(
            !program.buffers.iter().any(|b| b.name == "w"),
            "no decoded f32 copy of the weight"
        );
        let xv = Tensor::from_vec(vec![m, k], rng.values(m * k)).unwrap();
        let want = smelt::interp::run(&g, &[("x", xv.clone())]).unwrap();
        let evaluated = smelt::lower::eval::evaluate(&program, std::slice::from_ref(&xv)).unwrap();
        let (w, o) = (
            want[0].1.to_vec::<f32>().unwrap(),
            evaluated[0].to_vec::<f32>().unwrap(),
        );
        let d = w
            .iter()
            .zip(&o)
            .map(|(a, b)| (a - b).abs() / (1.0 + a.abs()))
            .fold(0.0, f32::max);
        assert!(d < 1e-5, "{granularity:?} zp={zp} (evaluator): {d}");
        for (label, opts) in option_sets() {
            let got = Compiled::new(g.clone(), opts)
                .unwrap()
                .run(&[("x", xv.clone())])
                .unwrap();
            let (w, o) = (
                want[0].1.to_vec::<f32>().unwrap(),
                got[0].1.to_vec::<f32>().unwrap(),
            );
            let d = w
                .iter()
                .zip(&o)
                .map(|(a, b)| (a - b).abs() / (1.0 + a.abs()))
                .fold(0.0, f32::max);
            assert!(d < 1e-5, "{granularity:?} zp={zp} ({label}): {d}");
        }
    }
}
