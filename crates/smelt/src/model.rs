//! A loaded model.

use std::path::{Path, PathBuf};

use smelt_ir::Graph;

use crate::error::{Error, Result};

/// A model: its graph and where it came from.
#[derive(Debug, Clone)]
pub struct Model {
    /// The graph.
    pub graph: Graph,
    /// The file it was loaded from.
    pub path: PathBuf,
}

impl Model {
    /// Import an ONNX model (weights stay memory-mapped).
    pub fn from_onnx(path: impl AsRef<Path>) -> Result<Model> {
        let path = path.as_ref();
        let graph = smelt_onnx::import_file(path)?;
        Ok(Model {
            graph,
            path: path.to_path_buf(),
        })
    }

    /// Import an ONNX model keeping ops smelt does not know as `Custom` nodes, so the model
    /// can be inspected (not run) and every unsupported op listed.
    pub fn from_onnx_lenient(path: impl AsRef<Path>) -> Result<Model> {
        let path = path.as_ref();
        let opts = smelt_onnx::ImportOptions {
            keep_unknown_ops: true,
        };
        let graph = smelt_onnx::import_model_file_with(path, &opts)?.graph;
        Ok(Model {
            graph,
            path: path.to_path_buf(),
        })
    }

    /// Parse a model in the textual IR (its constants must be inline).
    pub fn from_text_file(path: impl AsRef<Path>) -> Result<Model> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.into(),
            source,
        })?;
        let graph = smelt_ir::text::parse(&text)
            .map_err(|e| Error::Usage(format!("{}: {e}", path.display())))?;
        Ok(Model {
            graph,
            path: path.to_path_buf(),
        })
    }

    /// Load by extension: `.onnx` or `.smelt`.
    pub fn load(path: impl AsRef<Path>) -> Result<Model> {
        Model::load_impl(path.as_ref(), false)
    }

    /// Like [`Model::load`], keeping unknown ONNX ops (see [`Model::from_onnx_lenient`]).
    pub fn load_lenient(path: impl AsRef<Path>) -> Result<Model> {
        Model::load_impl(path.as_ref(), true)
    }

    fn load_impl(path: &Path, lenient: bool) -> Result<Model> {
        match path.extension().and_then(|e| e.to_str()) {
            Some("smelt") => Model::from_text_file(path),
            Some("onnx") if lenient => Model::from_onnx_lenient(path),
            Some("onnx") => Model::from_onnx(path),
            _ => Err(Error::Usage(format!(
                "{}: unknown model format (expected .onnx or .smelt)",
                path.display()
            ))),
        }
    }

    /// Export the graph as an ONNX model at `path` with the default
    /// [`ExportOptions`](smelt_onnx::ExportOptions): opset 21 (newer where the graph
    /// needs it), tensors of 1 MiB or more in the side file `<stem>.data`.
    pub fn save_onnx(&self, path: impl AsRef<Path>) -> Result<smelt_onnx::ExportSummary> {
        self.save_onnx_with(path, &smelt_onnx::ExportOptions::default())
    }

    /// [`Model::save_onnx`] with explicit export options.
    pub fn save_onnx_with(
        &self,
        path: impl AsRef<Path>,
        options: &smelt_onnx::ExportOptions,
    ) -> Result<smelt_onnx::ExportSummary> {
        Ok(smelt_onnx::export_model_file(
            &self.graph,
            path.as_ref(),
            options,
        )?)
    }

    /// Run the model with the reference interpreter.
    pub fn run_interp(
        &self,
        inputs: &[(&str, smelt_ir::Tensor)],
    ) -> Result<Vec<(String, smelt_ir::Tensor)>> {
        Ok(smelt_interp::run(&self.graph, inputs)?)
    }
}
