//! Lowering of the real models: every node lowers, the memory plan is sound, and the
//! lowered program (run by the reference evaluator) matches the graph interpreter.

use std::collections::HashMap;

use smelt::lower::{eval, lower, plan_memory};
use smelt::Tensor;

use smelt_tests::prepared_model as prepared;

#[test]
fn minilm_lowers_and_matches_the_interpreter() {
    let g = prepared("minilm/minilm_l6_v2.onnx", &[("batch", 1), ("seq", 4)]);
    let program = match lower(&g) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    };
    println!("{}", program.fusion_report());
    let plan = plan_memory(&program, &|_| None).expect("plan");
    plan.check(&program).expect("plan overlaps");
    println!(
        "arena {} bytes (unshared {})",
        plan.arena_bytes, plan.unshared_bytes
    );
    let ids = Tensor::from_vec(vec![1, 4], vec![101i64, 2023, 2003, 102]).unwrap();
    let mask = Tensor::from_vec(vec![1, 4], vec![1i64; 4]).unwrap();
    let tt = Tensor::from_vec(vec![1, 4], vec![0i64; 4]).unwrap();
    let names: Vec<String> = g
        .inputs()
        .iter()
        .map(|&v| g.value(v).name.clone())
        .collect();
    let by_name: HashMap<&str, Tensor> = [
        ("input_ids", ids),
        ("attention_mask", mask),
        ("token_type_ids", tt),
    ]
    .into_iter()
    .collect();
    let inputs: Vec<Tensor> = names.iter().map(|n| by_name[n.as_str()].clone()).collect();
    let got = eval::evaluate(&program, &inputs).expect("evaluate");
    let named: Vec<(&str, Tensor)> = names
        .iter()
        .map(|n| n.as_str())
        .zip(inputs.iter().cloned())
        .collect();
    let want = smelt::interp::run(&g, &named).expect("interp");
    for ((name, w), o) in want.iter().zip(&got) {
        let (w, o) = (w.to_f64_vec().unwrap(), o.to_f64_vec().unwrap());
        let diff = w
            .iter()
            .zip(&o)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        println!("{name}: max diff {diff:e}");
        assert!(diff < 1e-4, "{name}: max diff {diff}");
    }
}
