//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use smelt_ir::Graph;

/// Where the shared real models live: `$SMELT_MODELS`, else `shared/models` beside the
/// workspace.
pub fn models_dir() -> PathBuf {
    match std::env::var_os("SMELT_MODELS") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/models"
        )),
    }
}

/// MiniLM, if the shared models are present (tests skip, loudly, otherwise).
pub fn minilm() -> Option<Graph> {
    let path = models_dir().join("minilm/minilm_l6_v2.onnx");
    if !path.exists() {
        eprintln!("skipping: {} not found", path.display());
        return None;
    }
    Some(smelt_onnx::import_file(&path).expect("MiniLM imports"))
}

/// Parse textual IR (test input, so a failure is the test's own bug).
pub fn parse(text: &str) -> Graph {
    smelt_ir::text::parse(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// Printed IR with node lines sorted: equal for graphs that differ only in node order.
pub fn sorted_print(g: &Graph) -> Vec<String> {
    let text = smelt_ir::text::print(g);
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let body = lines.len().saturating_sub(3);
    if body > 0 {
        lines[1..1 + body].sort();
    }
    lines
}

/// How many nodes of each op the graph has.
pub fn op_count(g: &Graph, op: &str) -> usize {
    g.node_ids()
        .filter(|n| g.node(*n).op.text_name() == op)
        .count()
}
