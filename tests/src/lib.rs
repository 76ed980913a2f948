//! Helpers shared by the workspace-level tests.

use std::path::PathBuf;

/// Where the shared real models live: `$SMELT_MODELS`, else `../shared/models` beside the
/// workspace.
pub fn models_dir() -> PathBuf {
    match std::env::var_os("SMELT_MODELS") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/models")),
    }
}
