//! Every case of the shared kernel corpus (`tests/kernels/ops.smelt`) lowered, compiled
//! with the LLVM backend's JIT, run through the runtime on one and on two threads, and
//! compared with the graph interpreter.
//!
//! Tolerance: per case (`// TOL:`, default 1e-5), `|got - want| <= TOL * (1 + |want|)`;
//! integers and bools exactly. The `// CRANELIFT:` markers are the Cranelift backend's
//! and are ignored here: every case runs.

use std::panic::{catch_unwind, AssertUnwindSafe};

use smelt_codegen_llvm::{compile_jit, Options};
use smelt_runtime::{CompiledModel, Executable};

mod deps {
    pub use smelt_interp as interp;
    pub use smelt_ir as ir;
}
#[path = "../../../tests/kernels/harness.rs"]
mod harness;

/// Compile one case and compare it with the interpreter on every input set, on
/// `threads` threads.
fn run_case(case: &harness::Case, threads: usize) -> Result<(), String> {
    let g = case.graph();
    let program = smelt_lower::lower(&g).map_err(|e| format!("lower: {e}"))?;
    let jit = compile_jit(&program, &Options::default()).map_err(|e| format!("compile: {e}"))?;
    let kernels = jit.kernels.clone();
    // SAFETY: the kernels were compiled from this program by the LLVM backend, whose
    // functions follow the runtime's calling contract, and `jit` owns them.
    let exec = unsafe { Executable::new(program, kernels, Box::new(jit)) }
        .map_err(|e| format!("executable: {e}"))?;
    let model = CompiledModel::new(exec, threads).map_err(|e| format!("runtime: {e}"))?;
    for set in case.input_sets(&g) {
        let want = harness::interpret(&g, &set.tensors)?;
        let got = model
            .run(&set.tensors)
            .map_err(|e| format!("{}: run: {e}", set.label))?;
        harness::compare(&want, &got, case.tol).map_err(|e| format!("{}: {e}", set.label))?;
    }
    Ok(())
}

#[test]
fn corpus_llvm_matches_interpreter() {
    let cases = harness::corpus();
    let mut failures = vec![];
    let mut passed = 0;
    for case in &cases {
        for threads in [1, 2] {
            let r =
                catch_unwind(AssertUnwindSafe(|| run_case(case, threads))).unwrap_or_else(|p| {
                    let msg = p
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    Err(format!("panicked: {msg}"))
                });
            match r {
                Ok(()) => passed += 1,
                Err(e) => failures.push(format!("{} [{threads} thread(s)]: {e}", case.title())),
            }
        }
    }
    eprintln!(
        "{} corpus cases x 2 thread counts: {passed} runs passed, {} failed",
        cases.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
