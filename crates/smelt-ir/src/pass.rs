//! The pass API: the [`Pass`] trait, typed pass options, the [`PassRegistry`], pipeline
//! strings and the [`PassManager`] that runs them.
//!
//! A pipeline is a comma-separated list of pass names, each with optional options in
//! braces: `fold-constants,dce,blockwise-quant{weights=4,block=64}`. Option values are
//! bare words or double-quoted strings (for values containing `,` or `}`).
//!
//! ```
//! use smelt_ir::{Graph, IrResult, Pass, PassContext, PassReport, PassRegistry, PassManager};
//!
//! struct Nothing;
//! impl Pass for Nothing {
//!     fn name(&self) -> &str { "nothing" }
//!     fn run(&self, _g: &mut Graph, _cx: &mut PassContext) -> IrResult<PassReport> {
//!         Ok(PassReport::unchanged())
//!     }
//! }
//!
//! let mut reg = PassRegistry::new();
//! reg.register_simple("nothing", "does nothing", || Box::new(Nothing));
//! let mut pm = PassManager::from_pipeline(&reg, "nothing,nothing").unwrap();
//! let mut g = Graph::new("g");
//! pm.run(&mut g, &mut PassContext::default()).unwrap();
//! ```

mod context;
mod manager;
mod options;
mod pipeline;
mod registry;

pub use context::{
    require_calibration, CalibrationSample, Diagnostic, Evaluator, PassContext, Severity,
};
pub use manager::{PassManager, PassRun, PrintIr};
pub use options::{OptionKind, OptionSpec, PassOptions};
pub use pipeline::{parse_pipeline, PassSpec, Pipeline};
pub use registry::{PassInfo, PassRegistry};

use crate::error::IrResult;
use crate::graph::Graph;

/// A graph transformation.
///
/// Implement this for your own pass, register it in a [`PassRegistry`] and it runs in any
/// pipeline. A pass edits the graph through [`Graph`]'s methods and reports what it did.
pub trait Pass: Send + Sync {
    /// The name the pass is registered under (`fold-constants`).
    fn name(&self) -> &str;
    /// Transform `graph`.
    fn run(&self, graph: &mut Graph, cx: &mut PassContext) -> IrResult<PassReport>;
}

/// What a pass says it did. Node counts, bytes and timing are measured by the manager.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PassReport {
    /// Whether the graph changed.
    pub changed: bool,
    /// Short human-readable notes (`folded 12 nodes`).
    pub notes: Vec<String>,
    /// An estimate of the numerical error the pass introduced, if it knows one.
    pub estimated_error: Option<f64>,
}

impl PassReport {
    /// Nothing changed.
    pub fn unchanged() -> PassReport {
        PassReport::default()
    }

    /// The graph changed; one note.
    pub fn changed(note: impl Into<String>) -> PassReport {
        PassReport {
            changed: true,
            notes: vec![note.into()],
            estimated_error: None,
        }
    }

    /// Changed iff `count > 0`, with a note `"<verb> <count> <what>"`.
    pub fn counted(count: usize, what: &str) -> PassReport {
        if count == 0 {
            PassReport::unchanged()
        } else {
            PassReport::changed(format!("{count} {what}"))
        }
    }
}
