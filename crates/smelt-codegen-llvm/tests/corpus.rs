//! Every case of the shared kernel corpus (`tests/kernels/ops.smelt`) lowered, compiled
//! with the LLVM backend's JIT, run through the runtime and compared with the graph
//! interpreter, under four configurations: `-O2` on one and on two threads, `-O0` and
//! `-O3` on one thread.
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

/// `(label, threads, opt_level)` of each configuration.
const CONFIGS: [(&str, usize, u32); 4] = [
    ("O2, 1 thread", 1, 2),
    ("O2, 2 threads", 2, 2),
    ("O0, 1 thread", 1, 0),
    ("O3, 1 thread", 1, 3),
];

/// Compile one case and compare it with the interpreter on every input set, on
/// `threads` threads.
fn run_case(case: &harness::Case, threads: usize, opt_level: u32) -> Result<(), String> {
    let g = case.graph();
    let program = smelt_lower::lower(&g).map_err(|e| format!("lower: {e}"))?;
    let opts = Options {
        opt_level,
        ..Options::default()
    };
    let jit = compile_jit(&program, &opts).map_err(|e| format!("compile: {e}"))?;
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
        for (label, threads, opt_level) in CONFIGS {
            let r = catch_unwind(AssertUnwindSafe(|| run_case(case, threads, opt_level)))
                .unwrap_or_else(|p| {
                    let msg = p
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    Err(format!("panicked: {msg}"))
                });
            match r {
                Ok(()) => passed += 1,
                Err(e) => failures.push(format!("{} [{label}]: {e}", case.title())),
            }
        }
    }
    eprintln!(
        "{} corpus cases x {} configurations: {passed} runs passed, {} failed",
        cases.len(),
        CONFIGS.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
