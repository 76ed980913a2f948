//! Every case of the shared kernel corpus (`tests/kernels/ops.smelt`) compiled with the
//! Cranelift backend and run against the interpreter, under the option sets of
//! `codegen_differential.rs`: one thread, two threads, and scalar loops (no matmul
//! micro-kernel, no vectors). `crates/smelt-lower/tests/differential.rs` runs the same
//! corpus through the lowering's reference evaluator.
//!
//! Tolerance: per case (`// TOL:`, default 1e-5), `|got - want| <= TOL * (1 + |want|)`;
//! integers and bools exactly. A case marked `// CRANELIFT: skip <reason>` (a documented
//! unsupported dtype) or `// CRANELIFT: known-bug <line>` is skipped, and the skip is
//! printed.

use std::panic::{catch_unwind, AssertUnwindSafe};

use smelt::{CompileOptions, Compiled, Tensor};

mod deps {
    pub use smelt::interp;
    pub use smelt::ir;
}
#[path = "../kernels/harness.rs"]
mod harness;

fn option_sets() -> Vec<(&'static str, CompileOptions)> {
    smelt_tests::backend_option_sets()
}

/// Compile one case with `opts` and compare it with the interpreter on every input set.
fn run_case(case: &harness::Case, opts: CompileOptions) -> Result<(), String> {
    let g = case.graph();
    let sets = case.input_sets(&g);
    let names = harness::input_names(&g);
    let compiled = Compiled::new(g.clone(), opts).map_err(|e| format!("compile: {e}"))?;
    for set in &sets {
        let want = harness::interpret(&g, &set.tensors)?;
        let named: Vec<(&str, Tensor)> = names
            .iter()
            .map(String::as_str)
            .zip(set.tensors.iter().cloned())
            .collect();
        let got = compiled
            .run(&named)
            .map_err(|e| format!("{}: compile or run: {e}", set.label))?;
        for ((w, _), (o, _)) in want.iter().zip(&got) {
            if w != o {
                return Err(format!(
                    "{}: output `{o}` where `{w}` was expected",
                    set.label
                ));
            }
        }
        let got: Vec<Tensor> = got.into_iter().map(|(_, t)| t).collect();
        harness::compare(&want, &got, case.tol).map_err(|e| format!("{}: {e}", set.label))?;
    }
    Ok(())
}

#[test]
fn corpus_compiled_matches_interpreter() {
    let cases = harness::corpus();
    let (mut ran, mut skipped, mut failures) = (0, 0, vec![]);
    for case in &cases {
        match &case.cranelift {
            Some(harness::CraneliftSkip::Unsupported(why)) => {
                eprintln!("SKIP {}: unsupported: {why}", case.title());
                skipped += 1;
                continue;
            }
            Some(harness::CraneliftSkip::KnownBug(why)) => {
                eprintln!("SKIP {}: known bug: {why}", case.title());
                skipped += 1;
                continue;
            }
            None => {}
        }
        for (label, opts) in option_sets() {
            let r = catch_unwind(AssertUnwindSafe(|| run_case(case, opts))).unwrap_or_else(|p| {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                Err(format!("panicked: {msg}"))
            });
            if let Err(e) = r {
                failures.push(format!("{} [{label}]: {e}", case.title()));
            }
        }
        ran += 1;
    }
    eprintln!(
        "{} corpus cases: {ran} ran under {} option sets, {skipped} skipped",
        cases.len(),
        option_sets().len()
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
