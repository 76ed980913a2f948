//! `--calib NAME=FILE.npy`: calibration data for data-driven passes, the same way on
//! every command that runs a pipeline (`opt`, `export`, `compile`, `run`, `report`,
//! `bench`).
//!
//! Each file holds one model input for all samples: its first axis counts samples and
//! each sample keeps the model's rank with a first dim of 1 (a batch of one), so a file
//! is what `run --input` takes with samples stacked along the batch axis. Every model
//! input needs a file, and all files must have the same number of samples.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use smelt::ir::npy::read_npy_file;
use smelt::{Graph, InterpEvaluator, PassContext, Tensor};

/// The pass context for a pipeline run: with the calibration samples read from
/// `bindings` (and the interpreter to run them) when any are given.
pub fn pass_context(g: &Graph, bindings: &[(String, PathBuf)]) -> Result<PassContext> {
    if bindings.is_empty() {
        return Ok(PassContext::default());
    }
    let samples = load_samples(g, bindings)?;
    Ok(PassContext::with_calibration(
        samples,
        Arc::new(InterpEvaluator),
    ))
}

/// Read the calibration files and split them into samples.
pub fn load_samples(
    g: &Graph,
    bindings: &[(String, PathBuf)],
) -> Result<Vec<Vec<(String, Tensor)>>> {
    let names: Vec<String> = g
        .inputs()
        .iter()
        .map(|&v| g.value(v).name.clone())
        .collect();
    let mut files: Vec<(String, Tensor)> = vec![];
    for (name, path) in bindings {
        if !names.contains(name) {
            bail!(
                "--calib {name}=…: the model has no input `{name}` (inputs: {})",
                names.join(", ")
            );
        }
        if files.iter().any(|(n, _)| n == name) {
            bail!("--calib {name}=… given twice");
        }
        let t = read_npy_file(path)
            .with_context(|| format!("reading calibration data for `{name}`"))?;
        if t.shape().is_empty() {
            bail!(
                "--calib {name}={}: a scalar has no sample axis",
                path.display()
            );
        }
        files.push((name.clone(), t));
    }
    for name in &names {
        if !files.iter().any(|(n, _)| n == name) {
            bail!("calibration data is missing for input `{name}` (give --calib {name}=FILE.npy)");
        }
    }
    let count = files[0].1.shape()[0];
    for (name, t) in &files {
        if t.shape()[0] != count {
            bail!(
                "--calib files disagree on the number of samples: `{}` has {count}, `{name}` has {}",
                files[0].0,
                t.shape()[0]
            );
        }
    }
    if count == 0 {
        bail!("the calibration files hold no samples");
    }
    let mut samples = vec![vec![]; count];
    for (name, t) in &files {
        let mut shape = t.shape().to_vec();
        let per = t.bytes().len() / count;
        shape[0] = 1;
        for (i, sample) in samples.iter_mut().enumerate() {
            let bytes = t.bytes().slice(i * per..(i + 1) * per);
            let s = Tensor::from_bytes(t.dtype(), shape.clone(), bytes)
                .with_context(|| format!("splitting calibration data for `{name}`"))?;
            sample.push((name.clone(), s));
        }
    }
    Ok(samples)
}

#[cfg(test)]
mod tests {
    use super::load_samples;
    use smelt::ir::npy::write_npy_file;
    use smelt::{DType, Graph, Tensor, TensorType};

    #[test]
    fn files_split_into_batch_one_samples_and_mismatches_are_named() {
        let dir = std::env::temp_dir().join(format!("smelt-calib-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut g = Graph::new("g");
        g.add_input("ids", TensorType::known(DType::I64, &[1, 4]));
        let ids = Tensor::from_vec(vec![3, 4], (0..12i64).collect()).unwrap();
        let p = dir.join("ids.npy");
        write_npy_file(&p, &ids).unwrap();
        let samples = load_samples(&g, &[("ids".into(), p.clone())]).unwrap();
        assert_eq!(samples.len(), 3);
        assert_eq!(samples[2][0].1.shape(), [1, 4]);
        assert_eq!(samples[2][0].1.to_vec::<i64>().unwrap(), vec![8, 9, 10, 11]);
        let err = load_samples(&g, &[("nope".into(), p)])
            .unwrap_err()
            .to_string();
        assert!(err.contains("no input `nope`"), "{err}");
        let err = load_samples(&g, &[]).unwrap_err().to_string();
        assert!(err.contains("missing for input `ids`"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
