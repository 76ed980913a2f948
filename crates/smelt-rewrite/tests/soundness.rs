//! Soundness of every shipped rewrite rule: for random valid shapes and random inputs, a
//! small graph matching the rule's left-hand side computes the same outputs (through
//! the reference interpreter) before and after the rule alone is applied.
//!
//! Tolerance: `max |after - before| <= 1e-5 * max(1, max |before|)` per output, i.e.
//! 1e-5 relative to the output's scale (fused ops round differently from their
//! decompositions, by a few ulps). The tanh GELU approximation is compared with its own
//! decomposed form only, never with the erf form.

use proptest::prelude::*;
use smelt_ir::infer::infer_node;
use smelt_ir::{Attr, Attrs, Constant, DType, Graph, OpKind, Tensor, TensorType, ValueId};
use smelt_rewrite::{shipped, Rewriter, RuleSet};

/// Builds a graph node by node, inferring each node's type.
struct B {
    g: Graph,
    inputs: Vec<(String, Tensor)>,
}

impl B {
    fn new() -> B {
        B {
            g: Graph::new("g"),
            inputs: vec![],
        }
    }

    fn input(&mut self, dims: &[usize], vals: Vec<f32>) -> ValueId {
        let name = format!("x{}", self.inputs.len());
        let t = Tensor::from_vec(dims.to_vec(), vals).unwrap();
        let ty = TensorType::known(
            DType::F32,
            &dims.iter().map(|&d| d as u64).collect::<Vec<_>>(),
        );
        let v = self.g.add_input(&name, ty);
        self.inputs.push((name, t));
        v
    }

    fn c(&mut self, dims: &[usize], vals: Vec<f32>) -> ValueId {
        self.g.add_const(
            "",
            Constant::plain(Tensor::from_vec(dims.to_vec(), vals).unwrap()),
        )
    }

    fn s(&mut self, v: f32) -> ValueId {
        self.g.add_const("", Constant::plain(Tensor::scalar(v)))
    }

    fn ints(&mut self, vals: &[i64]) -> ValueId {
        self.g.add_const(
            "",
            Constant::plain(Tensor::from_vec(vec![vals.len()], vals.to_vec()).unwrap()),
        )
    }

    fn op(&mut self, op: &str, ins: &[ValueId], attrs: Attrs) -> ValueId {
        let kind = OpKind::from_text(op).unwrap();
        let id = self
            .g
            .add_node(
                "",
                kind,
                attrs,
                ins.iter().map(|v| Some(*v)).collect(),
                vec![(String::new(), TensorType::unranked(DType::F32))],
            )
            .unwrap();
        let ty = infer_node(&self.g, id)
            .unwrap_or_else(|e| panic!("{e}"))
            .remove(0);
        let out = self.g.node(id).outputs[0];
        self.g.set_type(out, ty);
        out
    }

    fn op0(&mut self, op: &str, ins: &[ValueId]) -> ValueId {
        self.op(op, ins, Attrs::new())
    }

    /// `op(a, b)` or `op(b, a)`: commutative ops are matched in either order.
    fn comm(&mut self, op: &str, a: ValueId, b: ValueId, swap: bool) -> ValueId {
        if swap {
            self.op0(op, &[b, a])
        } else {
            self.op0(op, &[a, b])
        }
    }

    fn finish(mut self, out: ValueId) -> (Graph, Vec<(String, Tensor)>) {
        self.g.set_outputs(vec![out]);
        smelt_ir::verify::verify(&self.g).unwrap();
        (self.g, self.inputs)
    }
}

fn only(rule: &str) -> RuleSet {
    for set in ["simplify", "recognize"] {
        let s = shipped(set).unwrap();
        let found = s.rules().find(|r| r.name() == rule).cloned();
        if let Some(r) = found {
            let mut one = RuleSet::new(rule);
            one.push(r);
            return one;
        }
    }
    panic!("no shipped rule `{rule}`")
}

fn eval(g: &Graph, inputs: &[(String, Tensor)]) -> Vec<Vec<f32>> {
    let ins: Vec<(&str, Tensor)> = inputs
        .iter()
        .map(|(n, t)| (n.as_str(), t.clone()))
        .collect();
    smelt_interp::run(g, &ins)
        .unwrap()
        .into_iter()
        .map(|(_, t)| t.to_vec::<f32>().unwrap())
        .collect()
}

/// Apply `rule` alone; it must fire, and the outputs must agree within the tolerance.
fn check(rule: &str, built: (Graph, Vec<(String, Tensor)>)) -> Result<(), TestCaseError> {
    let (g, inputs) = built;
    let mut after = g.clone();
    let report = Rewriter::new(&[only(rule)]).run(&mut after).unwrap();
    prop_assert!(
        report.fired.contains_key(rule),
        "{rule} did not fire on\n{}",
        smelt_ir::text::print(&g)
    );
    prop_assert!(
        report.changed,
        "{rule} fired but extraction kept\n{}",
        smelt_ir::text::print(&g)
    );
    smelt_ir::verify::verify(&after).unwrap();
    let (want, got) = (eval(&g, &inputs), eval(&after, &inputs));
    for (w, o) in want.iter().zip(&got) {
        prop_assert_eq!(w.len(), o.len());
        let scale = w.iter().fold(1f32, |m, x| m.max(x.abs()));
        let diff = w
            .iter()
            .zip(o)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        prop_assert!(
            diff <= 1e-5 * scale,
            "{rule}: max diff {diff} (scale {scale})\nbefore:\n{}\nafter:\n{}",
            smelt_ir::text::print(&g),
            smelt_ir::text::print(&after)
        );
    }
    Ok(())
}

fn vals(n: usize) -> impl Strategy<Value = Vec<f32>> {
    prop::collection::vec(-3.0f32..3.0, n)
}

/// A shape of rank 1..=4 with dims 1..=4, and values for it.
fn tensor() -> impl Strategy<Value = (Vec<usize>, Vec<f32>)> {
    prop::collection::vec(1usize..=4, 1..=4).prop_flat_map(|d| {
        let n = d.iter().product();
        (Just(d), vals(n))
    })
}

/// A shape of rank 2..=4, values, and two permutations of its axes.
fn perms() -> impl Strategy<Value = (Vec<usize>, Vec<f32>, Vec<i64>, Vec<i64>)> {
    prop::collection::vec(1usize..=4, 2..=4).prop_flat_map(|d| {
        let n = d.iter().product();
        let r = d.len();
        let perm = Just((0..r as i64).collect::<Vec<_>>()).prop_shuffle();
        (Just(d), vals(n), perm.clone(), perm)
    })
}

fn perm_attr(p: &[i64]) -> Attrs {
    Attrs::new().with("perm", Attr::Ints(p.to_vec()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn transpose_transpose((d, v, p, q) in perms()) {
        let mut b = B::new();
        let x = b.input(&d, v);
        let t = b.op("transpose", &[x], perm_attr(&p));
        let u = b.op("transpose", &[t], perm_attr(&q));
        let y = b.op0("relu", &[u]);
        check("transpose-transpose", b.finish(y))?;
    }

    #[test]
    fn transpose_identity((d, v) in tensor()) {
        let mut b = B::new();
        let x = b.input(&d, v);
        let id: Vec<i64> = (0..d.len() as i64).collect();
        let t = b.op("transpose", &[x], perm_attr(&id));
        let y = b.op0("relu", &[t]);
        check("transpose-identity", b.finish(y))?;
    }

    #[test]
    fn reshape_reshape((d, v) in tensor(), flip in any::<bool>()) {
        let mut b = B::new();
        let n = d.iter().product::<usize>() as i64;
        let x = b.input(&d, v);
        let inner = b.ints(&[n]);
        let r = b.op0("reshape", &[x, inner]);
        let last = *d.last().unwrap() as i64;
        let target = if flip { b.ints(&[last, -1]) } else { b.ints(&[-1, last]) };
        let r2 = b.op0("reshape", &[r, target]);
        let y = b.op0("relu", &[r2]);
        check("reshape-reshape", b.finish(y))?;
    }

    #[test]
    fn reshape_noop((d, v) in tensor()) {
        let mut b = B::new();
        let x = b.input(&d, v);
        let dims: Vec<i64> = d.iter().map(|&k| k as i64).collect();
        let s = b.ints(&dims);
        let r = b.op0("reshape", &[x, s]);
        let y = b.op0("relu", &[r]);
        check("reshape-noop", b.finish(y))?;
    }

    #[test]
    fn squeeze_unsqueeze((d, v) in tensor(), at in 0usize..5) {
        let mut b = B::new();
        let x = b.input(&d, v);
        let axis = (at % (d.len() + 1)) as i64;
        let a = b.ints(&[axis]);
        let u = b.op0("unsqueeze", &[x, a]);
        let s = b.op0("squeeze", &[u, a]);
        let y = b.op0("relu", &[s]);
        check("squeeze-unsqueeze", b.finish(y))?;
    }

    #[test]
    fn neutral_elements((d, v) in tensor(), which in 0usize..5, swap in any::<bool>(), full in any::<bool>()) {
        let (rule, op, neutral) = [("mul-one", "mul", 1.0), ("div-one", "div", 1.0), ("add-zero", "add", 0.0), ("sub-zero", "sub", 0.0), ("pow-one", "pow", 1.0)][which];
        let mut b = B::new();
        let x = b.input(&d, v);
        // a scalar or a constant of the last dim: neither changes x's shape
        let last = *d.last().unwrap();
        let c = if full { b.c(&[last], vec![neutral; last]) } else { b.s(neutral) };
        let commutes = matches!(op, "mul" | "add");
        let m = if commutes { b.comm(op, x, c, swap) } else { b.op0(op, &[x, c]) };
        let y = b.op0("relu", &[m]);
        check(rule, b.finish(y))?;
    }

    #[test]
    fn neg_neg((d, v) in tensor()) {
        let mut b = B::new();
        let x = b.input(&d, v);
        let n = b.op0("neg", &[x]);
        let m = b.op0("neg", &[n]);
        let y = b.op0("relu", &[m]);
        check("neg-neg", b.finish(y))?;
    }

    #[test]
    fn matmul_scale(m in 1usize..5, k in 1usize..5, n in 1usize..5, c in -2.0f32..2.0, seed in vals(64), output in any::<bool>(), swap in any::<bool>()) {
        let mut b = B::new();
        let x = b.input(&[m, k], seed[..m * k].to_vec());
        let w = b.c(&[k, n], seed[16..16 + k * n].to_vec());
        let c = b.s(c);
        let y = if output {
            let p = b.op0("matmul", &[x, w]);
            b.comm("mul", p, c, swap)
        } else {
            let s = b.comm("mul", x, c, swap);
            b.op0("matmul", &[s, w])
        };
        check(if output { "matmul-scale-output" } else { "matmul-scale-input" }, b.finish(y))?;
    }

    #[test]
    fn gelu_erf((d, v) in tensor(), grouping in 0usize..3, by_mul in any::<bool>(), swaps in prop::collection::vec(any::<bool>(), 4)) {
        let mut b = B::new();
        let x = b.input(&d, v);
        let scaled = if by_mul {
            let r = b.s(std::f32::consts::FRAC_1_SQRT_2);
            b.comm("mul", x, r, swaps[0])
        } else {
            let s = b.s(std::f32::consts::SQRT_2);
            b.op0("div", &[x, s])
        };
        let e = b.op0("erf", &[scaled]);
        let one = b.s(1.0);
        let a = b.comm("add", e, one, swaps[1]);
        let half = b.s(0.5);
        let y = match grouping {
            0 => {
                let m = b.comm("mul", x, a, swaps[2]);
                b.comm("mul", m, half, swaps[3])
            }
            1 => {
                let m = b.comm("mul", x, half, swaps[2]);
                b.comm("mul", m, a, swaps[3])
            }
            _ => {
                let m = b.comm("mul", a, half, swaps[2]);
                b.comm("mul", x, m, swaps[3])
            }
        };
        check("gelu-erf", b.finish(y))?;
    }

    #[test]
    fn gelu_tanh((d, v) in tensor(), grouping in 0usize..3, cube in 0usize..4, swaps in prop::collection::vec(any::<bool>(), 6)) {
        let mut b = B::new();
        let x = b.input(&d, v);
        let k = b.s(0.044715);
        let inner = if cube == 3 {
            // x * (1 + 0.044715 x^2)
            let sq = b.op0("mul", &[x, x]);
            let ks = b.comm("mul", sq, k, swaps[0]);
            let one = b.s(1.0);
            let a = b.comm("add", ks, one, swaps[1]);
            b.comm("mul", x, a, swaps[2])
        } else {
            let c = match cube {
                0 => {
                    let three = b.s(3.0);
                    b.op0("pow", &[x, three])
                }
                1 => {
                    let sq = b.op0("mul", &[x, x]);
                    b.comm("mul", x, sq, swaps[0])
                }
                _ => {
                    let sq = b.op0("mul", &[x, x]);
                    b.comm("mul", sq, x, swaps[0])
                }
            };
            let kc = b.comm("mul", c, k, swaps[1]);
            b.comm("add", x, kc, swaps[2])
        };
        let r = b.s(0.797_884_6);
        let sc = b.comm("mul", inner, r, swaps[3]);
        let t = b.op0("tanh", &[sc]);
        let one = b.s(1.0);
        let a = b.comm("add", t, one, swaps[4]);
        let half = b.s(0.5);
        let y = match grouping {
            0 => {
                let m = b.comm("mul", x, a, swaps[5]);
                b.op0("mul", &[m, half])
            }
            1 => {
                let m = b.comm("mul", x, half, swaps[5]);
                b.op0("mul", &[m, a])
            }
            _ => {
                let m = b.comm("mul", a, half, swaps[5]);
                b.op0("mul", &[x, m])
            }
        };
        check("gelu-tanh", b.finish(y))?;
    }

    #[test]
    fn layer_norm(
        dims in prop::collection::vec(1usize..=4, 0..=2),
        last in 2usize..=8,
        seed in vals(256),
        eps in prop::sample::select(vec![1e-12f32, 1e-5, 1e-3]),
        square_by_mul in any::<bool>(),
        by_reciprocal in any::<bool>(),
        positive_axis in any::<bool>(),
        swaps in prop::collection::vec(any::<bool>(), 3),
    ) {
        let mut d = dims.clone();
        d.push(last);
        let n: usize = d.iter().product();
        let mut b = B::new();
        let x = b.input(&d, seed[..n].to_vec());
        let axis = if positive_axis { d.len() as i64 - 1 } else { -1 };
        let ax = b.ints(&[axis]);
        let mean = b.op0("reduce_mean", &[x, ax]);
        let c = b.op0("sub", &[x, mean]);
        let sq = if square_by_mul {
            b.op0("mul", &[c, c])
        } else {
            let two = b.s(2.0);
            b.op0("pow", &[c, two])
        };
        let var = b.op0("reduce_mean", &[sq, ax]);
        let e = b.s(eps);
        let ve = b.comm("add", var, e, swaps[0]);
        let sd = b.op0("sqrt", &[ve]);
        let nrm = if by_reciprocal {
            let r = b.op0("reciprocal", &[sd]);
            b.op0("mul", &[c, r])
        } else {
            b.op0("div", &[c, sd])
        };
        let gamma = b.c(&[last], seed[128..128 + last].to_vec());
        let beta = b.c(&[last], seed[200..200 + last].to_vec());
        let s = b.comm("mul", nrm, gamma, swaps[1]);
        let y = b.comm("add", s, beta, swaps[2]);
        check("layer-norm", b.finish(y))?;
    }

    #[test]
    fn softmax((d, v) in tensor(), at in 0usize..4, by_reciprocal in any::<bool>()) {
        let mut b = B::new();
        let x = b.input(&d, v);
        let axis = (at % d.len()) as i64;
        let ax = b.ints(&[axis]);
        let e = b.op0("exp", &[x]);
        let s = b.op0("reduce_sum", &[e, ax]);
        let y = if by_reciprocal {
            let r = b.op0("reciprocal", &[s]);
            b.op0("mul", &[e, r])
        } else {
            b.op0("div", &[e, s])
        };
        check("softmax", b.finish(y))?;
    }

    #[test]
    fn softmax_shift((d, v) in tensor(), at in 0usize..4, negative in any::<bool>()) {
        let mut b = B::new();
        let x = b.input(&d, v);
        let r = d.len() as i64;
        let axis = (at % d.len()) as i64;
        let ax = b.ints(&[if negative { axis - r } else { axis }]);
        let m = b.op0("reduce_max", &[x, ax]);
        let sh = b.op0("sub", &[x, m]);
        let y = b.op("softmax", &[sh], Attrs::new().with("axis", Attr::Int(axis)));
        check("softmax-shift", b.finish(y))?;
    }
}

/// The list above covers every shipped rewrite rule.
#[test]
fn every_shipped_rule_has_a_property() {
    let covered = [
        "transpose-transpose",
        "transpose-identity",
        "reshape-reshape",
        "reshape-noop",
        "squeeze-unsqueeze",
        "mul-one",
        "div-one",
        "add-zero",
        "sub-zero",
        "pow-one",
        "neg-neg",
        "matmul-scale-input",
        "matmul-scale-output",
        "gelu-erf",
        "gelu-tanh",
        "layer-norm",
        "softmax",
        "softmax-shift",
    ];
    for set in ["simplify", "recognize"] {
        for r in shipped(set).unwrap().rules() {
            assert!(
                covered.contains(&r.name()),
                "shipped rule `{}` has no soundness property",
                r.name()
            );
        }
    }
}
