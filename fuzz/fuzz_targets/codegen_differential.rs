//! Compiled code agrees with the interpreter: a random valid graph (from
//! `smelt-graphgen`, driven by the fuzzer's bytes) compiled by a backend under random
//! code-generation options (threads, matmul micro-kernel, vectorisation; LLVM too with
//! the `llvm` feature) and run on seeded inputs gives the interpreter's outputs.
//!
//! Tolerance: `max |compiled - interpreted| / (1 + max |interpreted|) <= 1e-5` per
//! output (see `smelt_graphgen::max_error` and tests/tests/random_graphs.rs). A compile
//! or run error, a panic or a mismatch panics with the backend, the options and the
//! graph shrunk to a minimal one that still fails.
#![no_main]

use std::panic::{catch_unwind, AssertUnwindSafe};

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use smelt::{Backend, CompileOptions, Compiled, Graph, Tensor};
use smelt_graphgen::{
    generate_from, max_error, print_inline, random_inputs, run_interp, shrink, Config,
};

const TOL: f64 = 1e-5;

/// `Some(description)` if the compiled graph disagrees with the interpreter (or fails).
fn check(g: &Graph, opts: &CompileOptions, seed: u64) -> Option<String> {
    let inputs = random_inputs(g, seed);
    // A graph the interpreter rejects is no test case (only shrunk candidates can be).
    let want = run_interp(g, &inputs).ok()?;
    let run = || -> Result<Vec<(String, Tensor)>, String> {
        let named: Vec<(&str, Tensor)> = inputs
            .iter()
            .map(|(n, t)| (n.as_str(), t.clone()))
            .collect();
        let c = Compiled::new(g.clone(), opts.clone()).map_err(|e| format!("compile: {e}"))?;
        c.run(&named).map_err(|e| format!("run: {e}"))
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

fn options(u: &mut Unstructured<'_>) -> CompileOptions {
    let llvm = cfg!(feature = "llvm") && u.arbitrary::<bool>().unwrap_or(false);
    let mut o = CompileOptions {
        backend: if llvm {
            Backend::Llvm
        } else {
            Backend::Cranelift
        },
        threads: 1 + u.int_in_range(0..=1u8).unwrap_or(0) as usize,
        ..CompileOptions::default()
    };
    o.cranelift.matmul_microkernel = !u.ratio(1u8, 4).unwrap_or(false);
    o.cranelift.vectorize = !u.ratio(1u8, 4).unwrap_or(false);
    o
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let opts = options(&mut u);
    let seed = u.arbitrary::<u64>().unwrap_or(0);
    // Graph size is the fuzzer's choice too: up to twice the default op count.
    let max_nodes = 1 + u.int_in_range(0..=23u8).unwrap_or(11) as usize;
    let cfg = Config {
        max_nodes,
        odd_dim_percent: 20,
        symbolic_percent: 25,
        ..Config::default()
    };
    let g = generate_from(&mut u, &cfg);
    if let Some(what) = check(&g, &opts, seed) {
        let small = shrink(&g, |c| check(c, &opts, seed).is_some());
        panic!(
            "{} (threads {}, micro-kernel {}, vectorize {}) disagrees with the interpreter: {what}\n\
             minimal graph ({}; inputs: smelt_graphgen::random_inputs(&graph, {seed})):\n{}\n\
             original graph:\n{}",
            opts.backend,
            opts.threads,
            opts.cranelift.matmul_microkernel,
            opts.cranelift.vectorize,
            check(&small, &opts, seed).unwrap_or_default(),
            print_inline(&small),
            print_inline(&g)
        );
    }
});
