//! Passes preserve semantics: a random valid graph (from `smelt-graphgen`, driven by the
//! fuzzer's bytes) through a random pipeline of the semantics-preserving passes in
//! `Driver::new()` computes what the original computes, by the reference interpreter.
//!
//! Tolerance: `max |after - before| / (1 + max |before|) <= 1e-5` per output (see
//! `smelt_graphgen::max_error` and tests/tests/random_graphs.rs). A pass error, a graph
//! that no longer verifies or runs, or a mismatch panics with the pipeline and the graph
//! shrunk to a minimal one that still fails.
#![no_main]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::OnceLock;

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use smelt::{Driver, Graph, Tensor};
use smelt_graphgen::{
    generate_from, max_error, print_inline, random_inputs, run_interp, shrink, Config, Profile,
};

const TOL: f64 = 1e-5;

/// Passes that change numerics by design and are not compared.
const LOSSY: &[&str] = &["blockwise-quant"];

fn driver() -> &'static (Driver, Vec<String>) {
    static D: OnceLock<(Driver, Vec<String>)> = OnceLock::new();
    D.get_or_init(|| {
        let d = Driver::new();
        let names = d
            .registry()
            .iter()
            .map(|p| p.name.clone())
            .filter(|n| !LOSSY.contains(&n.as_str()))
            .collect();
        (d, names)
    })
}

/// Known bugs the target does not stop on, so that fuzzing gets past them: (a pass in
/// the pipeline, a piece of the failure message). Keep in step with `KNOWN_BUGS` in
/// tests/tests/random_graphs.rs and remove entries once fixed.
const KNOWN_BUGS: &[(&str, &str)] = &[];

/// `Some(description)` if the pipeline changes what `g` computes (or fails on it),
/// known bugs aside.
fn check(g: &Graph, pipeline: &str, seed: u64) -> Option<String> {
    let what = check_raw(g, pipeline, seed)?;
    let known = KNOWN_BUGS
        .iter()
        .any(|(pass, msg)| pipeline.split(',').any(|p| p == *pass) && what.contains(msg));
    (!known).then_some(what)
}

fn check_raw(g: &Graph, pipeline: &str, seed: u64) -> Option<String> {
    let inputs = random_inputs(g, seed);
    // A graph the interpreter rejects is no test case (only shrunk candidates can be).
    let want = run_interp(g, &inputs).ok()?;
    let run = || -> Result<Vec<(String, Tensor)>, String> {
        let mut after = g.clone();
        driver()
            .0
            .run_pipeline(&mut after, pipeline)
            .map_err(|e| format!("pipeline error: {e}"))?;
        smelt::ir::verify::verify(&after).map_err(|e| format!("does not verify: {e}"))?;
        run_interp(&after, &inputs).map_err(|e| format!("interpreter after: {e}"))
    };
    match catch_unwind(AssertUnwindSafe(run)) {
        Err(_) => Some("panicked".into()),
        Ok(Err(e)) => Some(e),
        Ok(Ok(got)) => {
            let err = max_error(&want, &got);
            (err > TOL).then(|| format!("max error {err:e} > {TOL:e}"))
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let (_, names) = driver();
    let mut u = Unstructured::new(data);
    let n = u.int_in_range(1..=4u8).unwrap_or(1);
    let pipeline: Vec<&str> = (0..n)
        .map(|_| names[u.choose_index(names.len()).unwrap_or(0)].as_str())
        .collect();
    let pipeline = pipeline.join(",");
    let seed = u.arbitrary::<u64>().unwrap_or(0);
    // Graph size is the fuzzer's choice too: up to twice the default op count.
    let max_nodes = 1 + u.int_in_range(0..=23u8).unwrap_or(11) as usize;
    let cfg = Config {
        max_nodes,
        profile: Profile::Interp,
        symbolic_percent: 25,
        ..Config::default()
    };
    let g = generate_from(&mut u, &cfg);
    if let Some(what) = check(&g, &pipeline, seed) {
        let small = shrink(&g, |c| check(c, &pipeline, seed).is_some());
        panic!(
            "`{pipeline}` changed the graph's meaning: {what}\n\
             minimal graph ({}; inputs: smelt_graphgen::random_inputs(&graph, {seed})):\n{}\n\
             original graph:\n{}",
            check(&small, &pipeline, seed).unwrap_or_default(),
            print_inline(&small),
            print_inline(&g)
        );
    }
});
