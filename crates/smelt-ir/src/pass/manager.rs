//! Runs a pipeline: verifies after each pass, times passes, prints IR on request and
//! reports what each pass changed.

use std::time::{Duration, Instant};

use super::context::PassContext;
use super::pipeline::parse_pipeline;
use super::registry::PassRegistry;
use super::{Pass, PassReport};
use crate::error::{IrError, IrResult};
use crate::graph::Graph;

/// When to print the IR.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum PrintIr {
    /// Never.
    #[default]
    Never,
    /// After every pass.
    AfterAll,
    /// After each pass with one of these names.
    After(Vec<String>),
}

/// The record of one pass run.
#[derive(Debug, Clone, PartialEq)]
pub struct PassRun {
    /// Pass name.
    pub pass: String,
    /// Wall time of the pass (verification excluded).
    pub time: Duration,
    /// Op nodes (constants excluded) before and after.
    pub ops_before: usize,
    /// Op nodes after.
    pub ops_after: usize,
    /// Bytes of constant data referenced by the graph before.
    pub const_bytes_before: usize,
    /// Bytes after.
    pub const_bytes_after: usize,
    /// What the pass said.
    pub report: PassReport,
}

type IrSink = Box<dyn FnMut(&str, &Graph) + Send>;

/// Runs a sequence of passes.
pub struct PassManager {
    passes: Vec<Box<dyn Pass>>,
    verify_each: bool,
    print_ir: PrintIr,
    sink: Option<IrSink>,
}

impl PassManager {
    /// An empty manager. Verification after each pass is on in debug builds and tests.
    pub fn new() -> PassManager {
        PassManager {
            passes: vec![],
            verify_each: cfg!(debug_assertions),
            print_ir: PrintIr::Never,
            sink: None,
        }
    }

    /// A manager for a pipeline string, building each pass from `registry`.
    pub fn from_pipeline(registry: &PassRegistry, pipeline: &str) -> IrResult<PassManager> {
        let mut pm = PassManager::new();
        for spec in parse_pipeline(pipeline)?.0 {
            pm.add(registry.build(&spec.name, &spec.options)?);
        }
        Ok(pm)
    }

    /// Append a pass.
    pub fn add(&mut self, pass: Box<dyn Pass>) -> &mut Self {
        self.passes.push(pass);
        self
    }

    /// Verify the graph after every pass (on by default in debug builds).
    pub fn verify_each(&mut self, on: bool) -> &mut Self {
        self.verify_each = on;
        self
    }

    /// Print the IR after passes; `sink` receives `(pass name, graph)` (the default sink
    /// writes the text form to stderr).
    pub fn print_ir(&mut self, when: PrintIr, sink: Option<IrSink>) -> &mut Self {
        self.print_ir = when;
        self.sink = sink;
        self
    }

    /// Names of the passes in order.
    pub fn pass_names(&self) -> Vec<String> {
        self.passes.iter().map(|p| p.name().to_string()).collect()
    }

    /// Run every pass in order on `graph`.
    pub fn run(&mut self, graph: &mut Graph, cx: &mut PassContext) -> IrResult<Vec<PassRun>> {
        let mut runs = vec![];
        for pass in &self.passes {
            let name = pass.name().to_string();
            cx.set_current_pass(&name);
            let ops_before = graph.op_count();
            let const_bytes_before = live_const_bytes(graph);
            let start = Instant::now();
            let _span = tracing::info_span!("pass", name = %name).entered();
            let report = pass.run(graph, cx)?;
            let time = start.elapsed();
            if self.verify_each {
                crate::verify::verify(graph).map_err(|e| IrError::Pass {
                    pass: name.clone(),
                    msg: format!("left an invalid graph: {e}"),
                })?;
            }
            let print = match &self.print_ir {
                PrintIr::Never => false,
                PrintIr::AfterAll => true,
                PrintIr::After(names) => names.contains(&name),
            };
            if print {
                match &mut self.sink {
                    Some(sink) => sink(&name, graph),
                    None => eprintln!(
                        "// ----- IR after {name} -----\n{}",
                        crate::text::print(graph)
                    ),
                }
            }
            runs.push(PassRun {
                pass: name,
                time,
                ops_before,
                ops_after: graph.op_count(),
                const_bytes_before,
                const_bytes_after: live_const_bytes(graph),
                report,
            });
        }
        Ok(runs)
    }
}

impl Default for PassManager {
    fn default() -> Self {
        PassManager::new()
    }
}

/// Bytes of constant data referenced by const nodes.
pub(crate) fn live_const_bytes(g: &Graph) -> usize {
    g.node_ids()
        .filter_map(|n| g.node(n).constant)
        .filter_map(|c| g.store().get(c))
        .map(|c| c.stored_bytes())
        .sum()
}
