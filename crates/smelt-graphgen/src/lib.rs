//! # smelt-graphgen
//!
//! Random small, *valid* f32 graphs for differential testing and fuzzing, the inputs to
//! run them on, a comparison of two runs, and a shrinker that reduces a failing graph to
//! a minimal one.
//!
//! * [`generate`] builds a graph from a `u64` seed, [`generate_from`] from an
//!   [`arbitrary::Unstructured`] (libFuzzer bytes). Both run the same generator: a seed
//!   is only expanded into bytes first, so seeded tests and the fuzzer explore the same
//!   space.
//! * [`random_inputs`] gives deterministic inputs for a graph from a seed.
//! * [`max_error`] measures how far two sets of outputs are apart, scaled to the
//!   outputs' magnitude.
//! * [`shrink`] greedily removes nodes, outputs and constant detail while a caller's
//!   predicate still reports the failure; [`print_inline`] prints the result as text
//!   with every plain constant inline, ready to paste into a snapshot test.
//!
//! Generated graphs keep their values finite and well conditioned by construction: the
//! generator tracks a bound on every value's magnitude and only applies `exp`, `softmax`
//! and the like to values with a small bound, divides only by denominators at least 0.5
//! away from zero, takes square roots of `|x|` (plus a margin where `x` is computed
//! inexactly), and compares only values every engine computes exactly, so that a
//! comparison cannot flip between engines that round differently.
//!
//! ```
//! use smelt_graphgen::{generate, random_inputs, Config};
//! let g = generate(7, &Config::default());
//! smelt_ir::verify::verify(&g).unwrap();
//! let inputs = random_inputs(&g, 7);
//! let named: Vec<(&str, smelt_ir::Tensor)> =
//!     inputs.iter().map(|(n, t)| (n.as_str(), t.clone())).collect();
//! smelt_interp::run(&g, &named).unwrap();
//! ```

mod gen;
mod inputs;
mod print;
mod rng;
mod shrink;

pub use gen::{generate, generate_from, Config, Profile};
pub use inputs::{max_error, random_inputs, run_interp};
pub use print::print_inline;
pub use rng::Rng;
pub use shrink::{shrink, shrink_with_budget};

#[cfg(test)]
mod tests {
    use super::*;
    use smelt_ir::{OpKind, Tensor};

    fn ops_of(g: &smelt_ir::Graph) -> Vec<OpKind> {
        g.node_ids()
            .map(|n| g.node(n).op.clone())
            .filter(|op| *op != OpKind::Const)
            .collect()
    }

    fn finite(outs: &[(String, Tensor)]) -> bool {
        outs.iter().all(|(_, t)| {
            t.to_f64_vec()
                .map(|v| v.iter().all(|x| x.is_finite()))
                .unwrap_or(false)
        })
    }

    #[test]
    fn generated_graphs_verify_and_run_finite() {
        for (profile, symbolic_percent) in [(Profile::Codegen, 0), (Profile::Interp, 50)] {
            let cfg = Config {
                profile,
                symbolic_percent,
                odd_dim_percent: 20,
                ..Config::default()
            };
            for seed in 0..300 {
                let g = generate(seed, &cfg);
                let text = print_inline(&g);
                smelt_ir::verify::verify(&g).unwrap_or_else(|e| panic!("seed {seed}: {e}\n{text}"));
                assert!(g.op_count() >= 1, "seed {seed}: no ops\n{text}");
                let outs = run_interp(&g, &random_inputs(&g, seed))
                    .unwrap_or_else(|e| panic!("seed {seed}: {e}\n{text}"));
                assert!(finite(&outs), "seed {seed}: non-finite output\n{text}");
                assert_eq!(max_error(&outs, &outs), 0.0);
            }
        }
    }

    #[test]
    fn symbolic_dims_are_generated() {
        let cfg = Config {
            symbolic_percent: 100,
            ..Config::default()
        };
        let n = (0..100)
            .filter(|&seed| smelt_ir::text::print(&generate(seed, &cfg)).contains("?n"))
            .count();
        assert!(n >= 30, "only {n} of 100 graphs have a symbolic dim");
    }

    #[test]
    fn same_seed_same_graph() {
        let cfg = Config::default();
        for seed in [0, 1, 99] {
            assert_eq!(
                smelt_ir::text::print(&generate(seed, &cfg)),
                smelt_ir::text::print(&generate(seed, &cfg))
            );
        }
    }

    #[test]
    fn inline_text_parses_back_to_the_same_graph() {
        for seed in 0..100 {
            let g = generate(seed, &Config::default());
            let text = print_inline(&g);
            assert!(
                !text.contains('#'),
                "seed {seed}: a constant kept its hash\n{text}"
            );
            let back =
                smelt_ir::text::parse(&text).unwrap_or_else(|e| panic!("seed {seed}: {e}\n{text}"));
            assert_eq!(smelt_ir::text::print(&back), smelt_ir::text::print(&g));
        }
    }

    #[test]
    fn fuzzer_bytes_of_any_length_give_valid_graphs() {
        let data: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
        for len in [0, 1, 7, 64, 500, 3000] {
            let mut u = arbitrary::Unstructured::new(&data[..len]);
            let g = generate_from(&mut u, &Config::default());
            smelt_ir::verify::verify(&g).unwrap();
            run_interp(&g, &random_inputs(&g, 0)).unwrap();
        }
    }

    #[test]
    fn every_op_family_is_generated() {
        let mut seen = std::collections::HashSet::new();
        for seed in 0..400 {
            seen.extend(ops_of(&generate(seed, &Config::default())));
        }
        for op in [
            "add",
            "sub",
            "mul",
            "div",
            "max",
            "min",
            "relu",
            "sigmoid",
            "tanh",
            "exp",
            "abs",
            "neg",
            "sqrt",
            "erf",
            "gelu",
            "matmul",
            "gemm",
            "transpose",
            "reshape",
            "softmax",
            "layer_normalization",
            "reduce_sum",
            "reduce_mean",
            "reduce_max",
            "concat",
            "slice",
            "where",
            "less",
            "clip",
            "log",
            "reciprocal",
            "pow",
            "sign",
            "cast",
            "unsqueeze",
            "squeeze",
            "flatten",
            "expand",
            "gather",
            "split",
            "reduce_min",
            "reduce_prod",
            "reduce_l1",
            "reduce_l2",
            "reduce_sum_square",
            "not",
            "and",
            "or",
        ] {
            let k = OpKind::from_text(op).unwrap();
            assert!(seen.contains(&k), "{op} never generated");
        }
    }

    #[test]
    fn shrinker_reduces_a_planted_failure_to_one_node() {
        let has_softmax = |g: &smelt_ir::Graph| ops_of(g).contains(&OpKind::Softmax);
        let mut shrunk_some = 0;
        for seed in 0..400 {
            let g = generate(seed, &Config::default());
            // A softmax in dead code counts too: the shrinker then returns dead results.
            if !has_softmax(&g) || g.op_count() < 3 {
                continue;
            }
            let small = shrink(&g, has_softmax);
            let text = print_inline(&small);
            assert_eq!(
                ops_of(&small),
                vec![OpKind::Softmax],
                "seed {seed}:\n{text}"
            );
            assert_eq!(small.node_count(), 1, "seed {seed}:\n{text}");
            smelt_ir::text::parse(&text).unwrap();
            shrunk_some += 1;
            if shrunk_some == 10 {
                break;
            }
        }
        assert!(shrunk_some > 0, "no seed generated a softmax");
    }

    #[test]
    fn shrinker_simplifies_constants_and_keeps_a_passing_graph() {
        // A predicate that needs a matmul with a constant operand: the constant stays
        // but becomes all ones.
        let needs = |g: &smelt_ir::Graph| {
            g.node_ids().any(|n| {
                let node = g.node(n);
                node.op == OpKind::MatMul
                    && node
                        .inputs
                        .iter()
                        .flatten()
                        .any(|v| g.plain_constant(*v).is_some())
            })
        };
        let seed = (0..1000)
            .find(|&s| {
                let live = shrink::rebuild(&generate(s, &Config::default()), None);
                live.is_some_and(|g| needs(&g))
            })
            .expect("a matmul with a constant operand");
        let small = shrink(&generate(seed, &Config::default()), needs);
        assert_eq!(small.op_count(), 1, "{}", print_inline(&small));
        for n in small.node_ids() {
            if let Some(t) = small.node(n).constant.and_then(|c| small.store().get(c)) {
                let v = t.as_plain().unwrap().to_vec::<f32>().unwrap();
                assert!(v.iter().all(|&x| x == 1.0), "{}", print_inline(&small));
            }
        }
        // A graph that does not fail comes back unchanged.
        let g = generate(seed, &Config::default());
        let same = shrink(&g, |_| false);
        assert_eq!(smelt_ir::text::print(&same), smelt_ir::text::print(&g));
    }
}
