//! What a pass gets besides the graph: calibration data, an evaluator, a seed and
//! a place for diagnostics.

use std::sync::Arc;

use crate::error::IrResult;
use crate::graph::{Graph, ValueId};
use crate::tensor::Tensor;

/// One calibration sample: a value for each graph input, by name.
pub type CalibrationSample = Vec<(String, Tensor)>;

/// Runs a graph on concrete inputs and shows every computed value to an observer.
/// The driver plugs in smelt's interpreter; smelt-ir itself cannot execute graphs.
pub trait Evaluator: Send + Sync {
    /// Run `graph` on `inputs`, calling `observe` for each computed value, and return the
    /// graph outputs in order.
    fn run(
        &self,
        graph: &Graph,
        inputs: &[(String, Tensor)],
        observe: &mut dyn FnMut(ValueId, &Tensor),
    ) -> IrResult<Vec<Tensor>>;
}

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Informational.
    Note,
    /// Something the user should look at.
    Warning,
}

/// A message from a pass about a node or value.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    /// The pass that said it.
    pub pass: String,
    /// How serious.
    pub severity: Severity,
    /// The message (names the node or value it is about).
    pub message: String,
}

/// The context a pass runs in.
#[derive(Clone, Default)]
pub struct PassContext {
    /// Calibration inputs, for passes that need data (empty if none were given).
    pub calibration: Vec<CalibrationSample>,
    /// The engine to run calibration with, if the driver provided one.
    pub evaluator: Option<Arc<dyn Evaluator>>,
    /// Seed for any randomness, so results are reproducible.
    pub seed: u64,
    /// Diagnostics emitted so far.
    pub diagnostics: Vec<Diagnostic>,
    current_pass: String,
}

impl PassContext {
    /// A context with calibration data and an evaluator.
    pub fn with_calibration(
        samples: Vec<CalibrationSample>,
        evaluator: Arc<dyn Evaluator>,
    ) -> PassContext {
        PassContext {
            calibration: samples,
            evaluator: Some(evaluator),
            ..PassContext::default()
        }
    }

    pub(crate) fn set_current_pass(&mut self, name: &str) {
        self.current_pass = name.to_string();
    }

    /// Record a warning from the running pass.
    pub fn warn(&mut self, message: impl Into<String>) {
        self.diagnostics.push(Diagnostic {
            pass: self.current_pass.clone(),
            severity: Severity::Warning,
            message: message.into(),
        });
    }

    /// Record a note from the running pass.
    pub fn note(&mut self, message: impl Into<String>) {
        self.diagnostics.push(Diagnostic {
            pass: self.current_pass.clone(),
            severity: Severity::Note,
            message: message.into(),
        });
    }
}

impl std::fmt::Debug for PassContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PassContext")
            .field("calibration_samples", &self.calibration.len())
            .field("evaluator", &self.evaluator.is_some())
            .field("seed", &self.seed)
            .field("diagnostics", &self.diagnostics)
            .finish()
    }
}

/// Convenience for passes: run the calibration set through the evaluator.
pub fn require_calibration<'a>(
    cx: &'a PassContext,
    pass: &str,
) -> IrResult<(&'a [CalibrationSample], &'a Arc<dyn Evaluator>)> {
    match (&cx.evaluator, cx.calibration.is_empty()) {
        (Some(e), false) => Ok((&cx.calibration, e)),
        _ => Err(crate::IrError::Pass {
            pass: pass.to_string(),
            msg: "needs calibration data: pass --calib NAME=FILE.npy for each model input".into(),
        }),
    }
}
