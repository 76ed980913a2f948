//! The driver: a pass registry holding the core passes plus the user's, and the glue
//! that lets passes run calibration data through the interpreter.

use std::sync::Arc;

use smelt_ir::pass::{Evaluator, PassRun};
use smelt_ir::{
    Graph, IrError, IrResult, Pass, PassContext, PassManager, PassRegistry, PassReport, Tensor,
    ValueId,
};

use crate::error::Result;

/// Owns the pass registry. `Driver::new()` knows the core passes; add your own with
/// [`Driver::register`] (no options) or through [`Driver::registry_mut`] (with options).
///
/// ```
/// use smelt::{Driver, Graph, IrResult, Pass, PassContext, PassReport};
/// struct CountNodes;
/// impl Pass for CountNodes {
///     fn name(&self) -> &str { "count-nodes" }
///     fn run(&self, g: &mut Graph, cx: &mut PassContext) -> IrResult<PassReport> {
///         cx.note(format!("{} nodes", g.node_count()));
///         Ok(PassReport::unchanged())
///     }
/// }
/// let driver = Driver::new().register(CountNodes);
/// assert!(driver.registry().get("count-nodes").is_some());
/// ```
#[derive(Clone)]
pub struct Driver {
    registry: PassRegistry,
}

impl Default for Driver {
    fn default() -> Self {
        Driver::new()
    }
}

/// Shares one pass instance between pipelines.
struct Shared(Arc<dyn Pass>);

impl Pass for Shared {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn run(&self, g: &mut Graph, cx: &mut PassContext) -> IrResult<PassReport> {
        self.0.run(g, cx)
    }
}

impl Driver {
    /// A driver with the core passes, the rewrite-engine passes and the compression
    /// passes (`blockwise-quant`) registered.
    pub fn new() -> Driver {
        let mut registry = PassRegistry::new();
        smelt_transforms::register_core_passes(&mut registry);
        smelt_rewrite::register_rewrite_passes(&mut registry);
        smelt_pass_blockwise_quant::register(&mut registry);
        Driver { registry }
    }

    /// Register a pass without options under its own name.
    pub fn register(mut self, pass: impl Pass + 'static) -> Driver {
        let pass: Arc<dyn Pass> = Arc::new(pass);
        let name = pass.name().to_string();
        self.registry
            .register_simple(&name, "user pass", move || Box::new(Shared(pass.clone())));
        self
    }

    /// The registry.
    pub fn registry(&self) -> &PassRegistry {
        &self.registry
    }

    /// The registry, to register passes with options.
    pub fn registry_mut(&mut self) -> &mut PassRegistry {
        &mut self.registry
    }

    /// A pass manager for a pipeline string.
    pub fn pass_manager(&self, pipeline: &str) -> Result<PassManager> {
        Ok(PassManager::from_pipeline(&self.registry, pipeline)?)
    }

    /// Run a pipeline on a graph with a fresh context.
    pub fn run_pipeline(&self, graph: &mut Graph, pipeline: &str) -> Result<Vec<PassRun>> {
        let mut cx = PassContext::default();
        Ok(self.pass_manager(pipeline)?.run(graph, &mut cx)?)
    }
}

/// The reference interpreter as the [`Evaluator`] passes use for calibration.
#[derive(Debug, Clone, Copy, Default)]
pub struct InterpEvaluator;

impl Evaluator for InterpEvaluator {
    fn run(
        &self,
        graph: &Graph,
        inputs: &[(String, Tensor)],
        observe: &mut dyn FnMut(ValueId, &Tensor),
    ) -> IrResult<Vec<Tensor>> {
        let named: Vec<(&str, Tensor)> = inputs
            .iter()
            .map(|(n, t)| (n.as_str(), t.clone()))
            .collect();
        let outs =
            smelt_interp::run_with_observer(graph, &named, observe).map_err(|e| IrError::Pass {
                pass: "calibration".into(),
                msg: e.to_string(),
            })?;
        Ok(outs.into_iter().map(|(_, t)| t).collect())
    }
}
