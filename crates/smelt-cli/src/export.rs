//! `smelt export`: load a model, optionally run a pass pipeline, write ONNX.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use smelt::onnx::{ExportOptions, OnnxError};
use smelt::Driver;

use crate::opt::{load, parse_dim};

/// Arguments of `smelt export`.
#[derive(Args)]
pub struct ExportArgs {
    /// Model file (.onnx or .smelt).
    pub model: PathBuf,
    /// The ONNX file to write (.onnx). Large tensors go to `<stem>.data` beside it.
    #[arg(short = 'o', long = "output", value_name = "OUT.onnx")]
    pub output: PathBuf,
    /// Pass pipeline to run before exporting, e.g. `fold-constants,cse,dce`.
    #[arg(short = 'p', long = "pipeline", default_value = "")]
    pub pipeline: String,
    /// Tensors with at least this many bytes go to the side file (default 1M; suffixes
    /// K, M, G for KiB, MiB, GiB; `none` keeps every tensor inline unless the model
    /// would exceed the 2 GiB a protobuf can hold).
    #[arg(long = "external-threshold", value_name = "BYTES", value_parser = parse_threshold)]
    pub external_threshold: Option<Threshold>,
    /// Default-domain opset to write (default: 21, or newer where the model needs it).
    #[arg(long, value_name = "VERSION")]
    pub opset: Option<i64>,
    /// Fix a symbolic dim to a size before exporting, e.g. `--dim batch=1` (repeatable).
    #[arg(long = "dim", value_name = "NAME=SIZE", value_parser = parse_dim)]
    pub dims: Vec<(String, u64)>,
    /// Calibration data for data-driven passes: NAME=FILE.npy per model input, samples
    /// along the first axis (repeatable).
    #[arg(long = "calib", value_name = "NAME=FILE.npy", value_parser = crate::inputs::parse_binding)]
    pub calib: Vec<(String, PathBuf)>,
}

/// A parsed `--external-threshold`.
#[derive(Clone, Copy, Debug)]
pub struct Threshold(Option<u64>);

/// `1048576`, `64K`, `1M`, `2G` or `none`.
fn parse_threshold(s: &str) -> Result<Threshold, String> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("none") {
        return Ok(Threshold(None));
    }
    let (digits, unit) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => t.split_at(i),
        None => (t, ""),
    };
    let shift = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        _ => {
            return Err(format!(
                "`{s}` is not a byte count (e.g. 1048576, 64K, 1M, none)"
            ))
        }
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{s}` is not a byte count (e.g. 1048576, 64K, 1M, none)"))?;
    n.checked_mul(1 << shift)
        .map(|b| Threshold(Some(b)))
        .ok_or_else(|| format!("`{s}` is too large"))
}

pub fn export(a: ExportArgs) -> Result<()> {
    if a.output.extension().and_then(|e| e.to_str()) != Some("onnx") {
        bail!(
            "{}: the output must be an .onnx file (use `smelt opt -o FILE.smelt` for the textual IR)",
            a.output.display()
        );
    }
    let mut model = load(&a.model, &a.dims)?;
    let mut cx = crate::calib::pass_context(&model.graph, &a.calib)?;
    let runs = Driver::new()
        .pass_manager(&a.pipeline)?
        .run(&mut model.graph, &mut cx)?;
    for r in &runs {
        eprintln!(
            "{:<16} {:>8.2} ms  ops {} -> {}  {}",
            r.pass,
            r.time.as_secs_f64() * 1e3,
            r.ops_before,
            r.ops_after,
            r.report.notes.join("; ")
        );
    }
    let mut options = ExportOptions {
        opset: a.opset,
        ..ExportOptions::default()
    };
    if let Some(t) = a.external_threshold {
        options.external_threshold_bytes = t.0;
    }
    let s = match model.save_onnx_with(&a.output, &options) {
        Ok(s) => s,
        // The importer's I/O error reads "cannot read"; here the file was being written.
        Err(smelt::Error::Onnx(OnnxError::Io { path, source })) => {
            bail!("cannot write {}: {source}", path.display())
        }
        Err(e) => {
            return Err(anyhow::Error::new(e))
                .with_context(|| format!("exporting to {}", a.output.display()))
        }
    };
    eprintln!(
        "wrote {}: opset {}, IR version {}, {} nodes, {} initializers, {} constant nodes, {} bytes",
        a.output.display(),
        s.opset,
        s.ir_version,
        s.nodes,
        s.initializers,
        s.constant_nodes,
        s.model_bytes
    );
    if let Some(d) = &s.data_file {
        eprintln!(
            "wrote {}: {} tensors, {} bytes",
            d.display(),
            s.external_tensors,
            s.data_bytes
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds() {
        let p = |s| parse_threshold(s).map(|t| t.0);
        assert_eq!(p("1048576"), Ok(Some(1 << 20)));
        assert_eq!(p("64K"), Ok(Some(64 << 10)));
        assert_eq!(p("1m"), Ok(Some(1 << 20)));
        assert_eq!(p("0"), Ok(Some(0)));
        assert_eq!(p("none"), Ok(None));
        assert!(p("12X").is_err());
        assert!(p("").is_err());
        assert!(p("99999999999G").is_err());
    }
}
