//! Snapshot testing of graph rewrites, for smelt's own passes and for yours.
//!
//! Enable with the `testing` feature (`smelt = { ..., features = ["testing"] }` under
//! `[dev-dependencies]`). Two ways to write a test:
//!
//! * inline: [`assert_rewrite!`](crate::assert_rewrite) runs a pipeline on a graph in the
//!   textual IR and snapshots the printed result with insta;
//! * files: [`rewrite_file_tests!`](crate::rewrite_file_tests) walks a folder of `.smelt`
//!   files and snapshots each.
//!
//! A `.smelt` test file is a list of cases separated by `// -----` lines. A
//! `// RUN: <pipeline>` line sets the pipeline for its case and every later one;
//! `// ERROR: <text>` says the case must fail (or warn) with a message containing
//! `<text>`. `// CALIB: <n>` gives data-driven passes `n` calibration samples: inputs of
//! the graph's (static) shapes filled with deterministic pseudo-random values (floats in
//! [-4, 4), integers in [0, 4), booleans alternating), run through the interpreter. Any
//! other `//` line is a comment. The snapshot holds, per case, the pipeline,
//! the output IR (or the error) and the passes' diagnostics as `// note(pass): ...` lines.
//!
//! ```text
//! // RUN: fold-constants,dce
//! graph @g(%x: f32[2]) -> (f32[2]) {
//!   %a = const f32[2] [1.0, 2.0]
//!   %b = mul(%a, %a) : f32[2]
//!   %y = add(%x, %b) : f32[2]
//!   return %y
//! }
//! // -----
//! // ERROR: unknown pass `no-such-pass`
//! // RUN: no-such-pass
//! graph @g(%x: f32[2]) -> (f32[2]) {
//!   return %x
//! }
//! ```
//!
//! The printer is deterministic (values numbered in topological order, attributes
//! sorted), so snapshots change only when the rewrite does. Review changes with
//! `cargo insta review`.

use smelt_ir::pass::Severity;
use smelt_ir::PassContext;

use crate::Driver;

/// insta, re-exported so that the macros work in crates that do not depend on it.
pub use insta;

/// One case of a `.smelt` test file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    /// The pipeline in force (`// RUN:`).
    pub pipeline: String,
    /// Expected error or diagnostic texts (`// ERROR:`), each a substring.
    pub expected_errors: Vec<String>,
    /// Calibration samples to generate (`// CALIB:`), 0 for none.
    pub calibration: usize,
    /// The graph text (comment lines removed).
    pub input: String,
    /// 1-based line of the case's first line in the file, for messages.
    pub line: usize,
}

/// Split a `.smelt` test file into cases.
pub fn split_cases(text: &str) -> Vec<Case> {
    let mut pipeline = String::new();
    let mut cases = vec![];
    let mut line = 1;
    for chunk in text.split("\n// -----\n") {
        let mut expected_errors = vec![];
        let mut body = vec![];
        let mut calibration = 0;
        for l in chunk.lines() {
            let t = l.trim();
            if let Some(p) = t.strip_prefix("// RUN:") {
                pipeline = p.trim().to_string();
            } else if let Some(n) = t.strip_prefix("// CALIB:") {
                calibration = n.trim().parse().unwrap_or(0);
            } else if let Some(e) = t.strip_prefix("// ERROR:") {
                expected_errors.push(e.trim().to_string());
            } else if !t.starts_with("//") {
                body.push(l);
            }
        }
        let input = body.join("\n");
        if !input.trim().is_empty() || !expected_errors.is_empty() {
            cases.push(Case {
                pipeline: pipeline.clone(),
                expected_errors,
                calibration,
                input,
                line,
            });
        }
        line += chunk.lines().count() + 1;
    }
    cases
}

/// What running one case gave: the text for the snapshot, and every error or diagnostic
/// message (to check `// ERROR:` lines against).
#[derive(Debug, Clone)]
pub struct CaseOutput {
    /// Printed IR followed by `// note(pass): ...` lines, or `// error: ...`.
    pub text: String,
    /// Whether the case failed (parse, pipeline or pass error).
    pub failed: bool,
    /// Error and diagnostic messages.
    pub messages: Vec<String>,
}

/// Run `pipeline` (passes from `driver`) on a graph given in the textual IR, verifying
/// the graph after every pass.
pub fn run_case(driver: &Driver, pipeline: &str, input: &str) -> CaseOutput {
    run_case_calibrated(driver, pipeline, input, 0)
}

/// [`run_case`] with `samples` generated calibration samples (see the module docs).
pub fn run_case_calibrated(
    driver: &Driver,
    pipeline: &str,
    input: &str,
    samples: usize,
) -> CaseOutput {
    let fail = |kind: &str, e: String| CaseOutput {
        text: format!("// {kind}: {e}\n"),
        failed: true,
        messages: vec![e],
    };
    let mut g = match smelt_ir::text::parse(input) {
        Ok(g) => g,
        Err(e) => return fail("parse error", e.to_string()),
    };
    let mut pm = match driver.pass_manager(pipeline) {
        Ok(pm) => pm,
        Err(e) => return fail("pipeline error", e.to_string()),
    };
    pm.verify_each(true);
    let mut cx = if samples == 0 {
        PassContext::default()
    } else {
        match calibration_samples(&g, samples) {
            Ok(s) => PassContext::with_calibration(s, std::sync::Arc::new(crate::InterpEvaluator)),
            Err(e) => return fail("calibration error", e),
        }
    };
    let result = pm.run(&mut g, &mut cx);
    let mut messages = vec![];
    let mut diagnostics = String::new();
    for d in &cx.diagnostics {
        let kind = match d.severity {
            Severity::Note => "note",
            Severity::Warning => "warning",
        };
        diagnostics.push_str(&format!("// {kind}({}): {}\n", d.pass, d.message));
        messages.push(d.message.clone());
    }
    match result {
        Ok(_) => CaseOutput {
            text: smelt_ir::text::print(&g) + &diagnostics,
            failed: false,
            messages,
        },
        Err(e) => {
            let mut out = fail("error", e.to_string());
            out.text.push_str(&diagnostics);
            out.messages.extend(messages);
            out
        }
    }
}

/// `n` calibration samples for `g`'s inputs (static shapes only), deterministic.
fn calibration_samples(
    g: &smelt_ir::Graph,
    n: usize,
) -> Result<Vec<smelt_ir::pass::CalibrationSample>, String> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) as f64 / (1u64 << 31) as f64
    };
    let mut out = vec![];
    for _ in 0..n {
        let mut sample = vec![];
        for &v in g.inputs() {
            let name = g.value(v).name.clone();
            let ty = g.ty(v);
            let dims: Vec<usize> = ty
                .dims()
                .and_then(|d| d.iter().map(|d| d.known().map(|k| k as usize)).collect())
                .ok_or_else(|| format!("input `{name}` has no static shape to calibrate with"))?;
            let count: usize = dims.iter().product();
            let values: Vec<f64> = (0..count)
                .map(|i| {
                    if ty.dtype.is_float() {
                        next() * 8.0 - 4.0
                    } else if ty.dtype == smelt_ir::DType::Bool {
                        (i % 2) as f64
                    } else {
                        (next() * 4.0).floor()
                    }
                })
                .collect();
            let t = smelt_ir::Tensor::from_f64(ty.dtype, dims, &values)
                .map_err(|e| format!("input `{name}`: {e}"))?;
            sample.push((name, t));
        }
        out.push(sample);
    }
    Ok(out)
}

/// Run `pipeline` on `input` with the default driver and return the snapshot text;
/// panics (failing the test) if the case fails. Used by [`assert_rewrite!`](crate::assert_rewrite).
pub fn rewrite(driver: &Driver, pipeline: &str, input: &str) -> String {
    let out = run_case(driver, pipeline, input);
    assert!(!out.failed, "pipeline `{pipeline}` failed:\n{}", out.text);
    out.text
}

/// Run every case of a `.smelt` file and return the snapshot text. Panics (failing the
/// test) when a case has no pipeline, fails without a `// ERROR:` line, or lacks an
/// error or diagnostic its `// ERROR:` lines expect. `file` names the file in messages.
pub fn run_file(driver: &Driver, file: &str, text: &str) -> String {
    let cases = split_cases(text);
    assert!(!cases.is_empty(), "{file}: no cases");
    let mut out = String::new();
    for (i, case) in cases.iter().enumerate() {
        let at = format!("{file}:{} (case {i})", case.line);
        assert!(!case.pipeline.is_empty(), "{at}: no `// RUN:` line");
        let result = run_case_calibrated(driver, &case.pipeline, &case.input, case.calibration);
        if case.expected_errors.is_empty() {
            assert!(!result.failed, "{at}: unexpected failure:\n{}", result.text);
        }
        for want in &case.expected_errors {
            assert!(
                result.messages.iter().any(|m| m.contains(want.as_str())),
                "{at}: expected an error or diagnostic containing `{want}`, got:\n{}",
                result.text
            );
        }
        if i > 0 {
            out.push_str("// -----\n");
        }
        out.push_str(&format!("// RUN: {}\n", case.pipeline));
        out.push_str(&result.text);
    }
    out
}

/// Snapshot the result of a pipeline on a graph in the textual IR.
///
/// `assert_rewrite!(pipeline, input)` uses [`Driver::new()`](crate::Driver::new) (the
/// shipped passes); `assert_rewrite!(driver, pipeline, input)` uses your driver, e.g. one
/// with your passes registered. The snapshot is named after the test function, as with
/// `insta::assert_snapshot!`.
#[macro_export]
macro_rules! assert_rewrite {
    ($pipeline:expr, $input:expr $(,)?) => {
        $crate::assert_rewrite!($crate::Driver::new(), $pipeline, $input)
    };
    ($driver:expr, $pipeline:expr, $input:expr $(,)?) => {{
        let (pipeline, input): (&str, &str) = ($pipeline, $input);
        let rewritten = $crate::testing::rewrite(&$driver, pipeline, input);
        // The snapshot file records the input too, so a reviewer sees before and after.
        $crate::testing::insta::with_settings!(
            { description => format!("pipeline `{pipeline}` on:\n{input}"), omit_expression => true },
            { $crate::testing::insta::assert_snapshot!(rewritten) }
        );
    }};
}

/// Snapshot every `.smelt` file matching `glob` under `dir` (relative to the calling
/// source file), e.g. `rewrite_file_tests!("../rewrites", "**/*.smelt")`, with the
/// default driver or `rewrite_file_tests!(driver, dir, glob)` with yours. See the
/// [module docs](crate::testing) for the file format.
#[macro_export]
macro_rules! rewrite_file_tests {
    ($dir:expr, $glob:expr $(,)?) => {
        $crate::rewrite_file_tests!($crate::Driver::new(), $dir, $glob)
    };
    ($driver:expr, $dir:expr, $glob:expr $(,)?) => {{
        let driver = $driver;
        $crate::testing::insta::glob!($dir, $glob, |path| {
            let text = ::std::fs::read_to_string(path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let out = $crate::testing::run_file(&driver, &path.display().to_string(), &text);
            $crate::testing::insta::assert_snapshot!(out);
        });
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "// RUN: dce
// a comment
graph @g(%x: f32[2]) -> (f32[2]) {
  %c = const f32[2] [1.0, 2.0]
  return %x
}
// -----
// ERROR: unknown pass `nope`
// RUN: nope
graph @g(%x: f32[2]) -> (f32[2]) {
  return %x
}
";

    #[test]
    fn cases_carry_pipeline_errors_and_lines() {
        let cases = split_cases(FILE);
        assert_eq!(cases.len(), 2);
        assert_eq!(cases[0].pipeline, "dce");
        assert_eq!(cases[0].line, 1);
        assert_eq!(cases[1].pipeline, "nope");
        assert_eq!(cases[1].expected_errors, ["unknown pass `nope`"]);
        assert_eq!(cases[1].line, 8);
        assert!(!cases[0].input.contains("comment"));
    }

    #[test]
    fn file_runner_checks_expected_errors() {
        let out = run_file(&Driver::new(), "t.smelt", FILE);
        assert!(
            out.contains("// pipeline error: pipeline: unknown pass `nope`"),
            "{out}"
        );
        assert!(
            !out.contains("= const"),
            "dce should have removed %c:\n{out}"
        );
    }

    #[test]
    #[should_panic(expected = "expected an error or diagnostic containing `boom`")]
    fn a_missing_expected_error_fails() {
        run_file(
            &Driver::new(),
            "t.smelt",
            "// RUN: dce\n// ERROR: boom\ngraph @g(%x: f32[2]) -> (f32[2]) {\n  return %x\n}\n",
        );
    }

    #[test]
    #[should_panic(expected = "unexpected failure")]
    fn an_unexpected_error_fails() {
        run_file(
            &Driver::new(),
            "t.smelt",
            "// RUN: nope\ngraph @g(%x: f32[2]) -> (f32[2]) {\n  return %x\n}\n",
        );
    }
}
