//! The pass registry: names → declared options + a constructor.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::options::{OptionSpec, PassOptions};
use super::Pass;
use crate::error::{IrError, IrResult};

type Factory = Arc<dyn Fn(&PassOptions) -> IrResult<Box<dyn Pass>> + Send + Sync>;

/// A registered pass: what `smelt passes` lists.
#[derive(Clone)]
pub struct PassInfo {
    /// Pipeline name.
    pub name: String,
    /// One-line description.
    pub description: String,
    /// Declared options.
    pub options: Vec<OptionSpec>,
    factory: Factory,
}

impl std::fmt::Debug for PassInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PassInfo")
            .field("name", &self.name)
            .field("options", &self.options)
            .finish()
    }
}

/// Passes by name.
#[derive(Clone, Default, Debug)]
pub struct PassRegistry {
    passes: BTreeMap<String, PassInfo>,
}

impl PassRegistry {
    /// An empty registry.
    pub fn new() -> PassRegistry {
        PassRegistry::default()
    }

    /// Register a pass with options. The factory gets checked options with defaults filled.
    /// Registering a name again replaces the earlier pass.
    pub fn register(
        &mut self,
        name: &str,
        description: &str,
        options: Vec<OptionSpec>,
        factory: impl Fn(&PassOptions) -> IrResult<Box<dyn Pass>> + Send + Sync + 'static,
    ) -> &mut Self {
        self.passes.insert(
            name.to_string(),
            PassInfo {
                name: name.to_string(),
                description: description.to_string(),
                options,
                factory: Arc::new(factory),
            },
        );
        self
    }

    /// Register a pass without options.
    pub fn register_simple(
        &mut self,
        name: &str,
        description: &str,
        make: impl Fn() -> Box<dyn Pass> + Send + Sync + 'static,
    ) -> &mut Self {
        self.register(name, description, vec![], move |_| Ok(make()))
    }

    /// A pass's registration.
    pub fn get(&self, name: &str) -> Option<&PassInfo> {
        self.passes.get(name)
    }

    /// All registered passes, by name.
    pub fn iter(&self) -> impl Iterator<Item = &PassInfo> {
        self.passes.values()
    }

    /// Build a pass from a name and `key=value` options.
    pub fn build(&self, name: &str, options: &[(String, String)]) -> IrResult<Box<dyn Pass>> {
        let info = self.passes.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.passes.keys().map(String::as_str).collect();
            IrError::Pipeline(format!(
                "unknown pass `{name}` (known: {})",
                known.join(", ")
            ))
        })?;
        let opts = PassOptions::resolve(name, &info.options, options)?;
        (info.factory)(&opts)
    }
}
