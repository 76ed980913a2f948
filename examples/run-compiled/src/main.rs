//! Compile a model to native code and run it through `smelt-runtime`, from Rust.
//!
//! ```sh
//! cargo run --release -p run-compiled -- examples/models/tiny_bert.onnx
//! ```
//!
//! Inputs are read from `<model stem>.<input>.npy` beside the model. The example
//! compiles the model for those input shapes (named dims are bound from them), runs it
//! on two threads, prints each output's shape and the largest difference from the
//! reference interpreter, and the memory the run needed.

use std::path::PathBuf;

use anyhow::{Context, Result};
use smelt::ir::npy::read_npy_file;
use smelt::{CompileOptions, Compiled, Model, Tensor};

fn main() -> Result<()> {
    let path = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "examples/models/tiny_bert.onnx".into()),
    );
    for (name, shape, diff) in compile_and_run(&path)? {
        println!("{name}: {shape:?}, max |compiled - interpreter| = {diff:.2e}");
    }
    Ok(())
}

/// Compile the model at `path`, run it on its sibling inputs, and return each output's
/// name, shape and largest difference from the interpreter.
fn compile_and_run(path: &std::path::Path) -> Result<Vec<(String, Vec<usize>, f64)>> {
    let model = Model::load(path)?;
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .context("model path has no file name")?;
    let mut inputs: Vec<(String, Tensor)> = vec![];
    for &v in model.graph.inputs() {
        let name = model.graph.value(v).name.clone();
        let file = path.with_file_name(format!("{stem}.{name}.npy"));
        let t = read_npy_file(&file).with_context(|| format!("reading {}", file.display()))?;
        inputs.push((name, t));
    }
    let named: Vec<(&str, Tensor)> = inputs
        .iter()
        .map(|(n, t)| (n.as_str(), t.clone()))
        .collect();

    let compiled = Compiled::new(
        model.graph.clone(),
        CompileOptions {
            threads: 2,
            ..CompileOptions::default()
        },
    )?;
    let shapes = compiled.input_shapes(&named)?;
    let stats = compiled.prepare(&shapes)?;
    println!(
        "compiled {} kernels in {:.1} ms; arena {} bytes",
        stats.kernels,
        stats.total_ms(),
        stats.arena_bytes
    );
    let outputs = compiled.run(&named)?;
    let reference = model.run_interp(&named)?;
    let mut report = vec![];
    for ((name, got), (_, want)) in outputs.iter().zip(&reference) {
        let (g, w) = (got.to_f64_vec()?, want.to_f64_vec()?);
        let diff = g
            .iter()
            .zip(&w)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        report.push((name.clone(), got.shape().to_vec(), diff));
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    #[test]
    fn tiny_bert_compiles_and_matches_the_interpreter() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/tiny_bert.onnx");
        let report = super::compile_and_run(&path).unwrap();
        assert_eq!(report.len(), 2);
        for (name, _, diff) in report {
            assert!(diff < 1e-4, "{name}: {diff}");
        }
    }
}
