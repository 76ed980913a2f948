//! The shipped rules on the real MiniLM export: the op counts the brief promises, the
//! outputs unchanged (against the model itself and ONNX Runtime's references), and the
//! time and e-graph sizes reported.

mod common;

use std::time::Instant;

use common::{minilm, models_dir, op_count};
use smelt_ir::npy::read_npy_file;
use smelt_ir::{Graph, Tensor};
use smelt_rewrite::{find_attention, shipped_list, Rewriter};

fn inputs(case: &str) -> Vec<(&'static str, Tensor)> {
    ["input_ids", "attention_mask", "token_type_ids"]
        .into_iter()
        .map(|n| {
            let p = models_dir().join(format!("minilm/reference/{case}.{n}.npy"));
            (
                n,
                read_npy_file(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
            )
        })
        .collect()
}

fn run(g: &Graph, inputs: &[(&str, Tensor)]) -> Vec<(String, Vec<f32>)> {
    smelt_interp::run(g, inputs)
        .unwrap()
        .into_iter()
        .map(|(n, t)| (n, t.to_vec::<f32>().unwrap()))
        .collect()
}

fn max_rel_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = a.iter().fold(0f32, |m, x| m.max(x.abs())).max(1e-6);
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
        / scale
}

#[test]
fn minilm_shipped_rules_recognise_gelu_and_keep_outputs() {
    let Some(original) = minilm() else { return };
    let mut g = original.clone();
    let sets = shipped_list("simplify,recognize,attention,fusion,shift").unwrap();
    let rw = Rewriter::new(&sets);
    let t = Instant::now();
    let report = rw.run(&mut g).unwrap();
    let took = t.elapsed();
    eprintln!("MiniLM rewrite (debug build): {took:?}");
    for n in report.notes() {
        eprintln!("  {n}");
    }
    for gr in &report.groups {
        eprintln!("  {}", gr.describe(&g));
    }
    smelt_ir::verify::verify(&g).unwrap();
    assert_eq!(op_count(&g, "gelu"), 6, "gelu");
    assert_eq!(
        op_count(&g, "layer_normalization"),
        13,
        "layer_normalization"
    );
    assert_eq!(op_count(&g, "softmax"), 6, "softmax");
    assert_eq!(op_count(&g, "erf"), 0, "erf");
    assert_eq!(report.fired.get("gelu-erf"), Some(&6));
    assert!(report.limits_hit.is_empty(), "{:?}", report.limits_hit);
    let names = |g: &Graph| {
        g.outputs()
            .iter()
            .map(|v| g.value(*v).name.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&g), names(&original));
    let per_rule = |r: &str| report.groups.iter().filter(|x| x.rule == r).count();
    assert_eq!(per_rule("attention"), 6);
    assert_eq!(per_rule("matmul-bias-act"), 6);
    assert_eq!(per_rule("residual-layer-norm"), 13);
    assert_eq!(find_attention(&g).unwrap().len(), 6);

    let case = inputs("b4_s16");
    let before = run(&original, &case);
    let after = run(&g, &case);
    for ((n, a), (m, b)) in before.iter().zip(&after) {
        assert_eq!(n, m);
        let d = max_rel_diff(a, b);
        eprintln!("  {n}: max relative difference {d:.2e}");
        assert!(d <= 1e-5, "{n}: {d}");
    }
    for (name, want) in [("last_hidden_state", 1e-4f32), ("sentence_embedding", 1e-5)] {
        let p = models_dir().join(format!("minilm/reference/b4_s16.{name}.npy"));
        let reference = read_npy_file(&p).unwrap().to_vec::<f32>().unwrap();
        let got = &after.iter().find(|(n, _)| n == name).unwrap().1;
        let d = got
            .iter()
            .zip(&reference)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max);
        assert!(d <= want, "{name} vs ONNX Runtime: {d}");
    }
}

#[test]
fn minilm_regions_agree_with_one_big_egraph() {
    let Some(original) = minilm() else { return };
    let sets = shipped_list("simplify,recognize").unwrap();
    let mut whole = original.clone();
    let mut rw = Rewriter::new(&sets);
    rw.options.region_nodes = 0;
    let r1 = rw.run(&mut whole).unwrap();
    let mut small = original.clone();
    rw.options.region_nodes = 40;
    let r2 = rw.run(&mut small).unwrap();
    assert_eq!(r1.regions, 1);
    assert!(r2.regions > 6, "{}", r2.regions);
    for op in ["gelu", "erf", "layer_normalization", "softmax"] {
        assert_eq!(op_count(&whole, op), op_count(&small, op), "{op}");
    }
    // rewrites whose match would straddle a cut are lost, never wrong
    assert!(small.op_count() >= whole.op_count());
}
