//! Helpers shared by the workspace-level tests.

use std::path::PathBuf;

use smelt::{Driver, Graph, PassContext};

/// Where the shared real models live: `$SMELT_MODELS`, else `../shared/models` beside the
/// workspace.
pub fn models_dir() -> PathBuf {
    match std::env::var_os("SMELT_MODELS") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/models")),
    }
}

/// Run one case of a `.smelt` rewrite test: the case's `// RUN: <pipeline>` (or the
/// file's) applied to its graph; returns the printed result followed by the passes'
/// diagnostics as `// note(pass): ...` lines, or the error text.
pub fn run_rewrite_case(pipeline: &str, case: &str) -> String {
    let mut g: Graph = match smelt::ir::text::parse(case) {
        Ok(g) => g,
        Err(e) => return format!("// parse error: {e}\n"),
    };
    let driver = Driver::new();
    let mut pm = match driver.pass_manager(pipeline) {
        Ok(pm) => pm,
        Err(e) => return format!("// pipeline error: {e}\n"),
    };
    pm.verify_each(true);
    let mut cx = PassContext::default();
    match pm.run(&mut g, &mut cx) {
        Ok(_) => {
            let mut out = smelt::ir::text::print(&g);
            for d in &cx.diagnostics {
                let kind = match d.severity {
                    smelt::ir::pass::Severity::Note => "note",
                    smelt::ir::pass::Severity::Warning => "warning",
                };
                out.push_str(&format!("// {kind}({}): {}\n", d.pass, d.message));
            }
            out
        }
        Err(e) => format!("// error: {e}\n"),
    }
}

/// Split a rewrite test file into `(pipeline, case text)` pairs. A `// RUN:` line applies
/// to its case and every later one until the next `// RUN:`; cases are separated by
/// `// -----`.
pub fn split_cases(text: &str) -> Vec<(String, String)> {
    let mut pipeline = String::new();
    let mut out = vec![];
    for chunk in text.split("\n// -----\n") {
        for line in chunk.lines() {
            if let Some(p) = line.trim().strip_prefix("// RUN:") {
                pipeline = p.trim().to_string();
            }
        }
        let body: String = chunk
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        if !body.trim().is_empty() {
            out.push((pipeline.clone(), body));
        }
    }
    out
}
