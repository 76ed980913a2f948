//! Reading `--input name=file.npy` arguments and checking them against the model.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use smelt::ir::npy;
use smelt::{Dim, Graph, Tensor};

/// Parse `name=path`.
pub fn parse_binding(s: &str) -> Result<(String, PathBuf), String> {
    let (name, path) = s
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=FILE.npy, got `{s}`"))?;
    if name.is_empty() || path.is_empty() {
        return Err(format!("expected NAME=FILE.npy, got `{s}`"));
    }
    Ok((name.to_string(), PathBuf::from(path)))
}

/// Load the given inputs; each name must be a graph input.
pub fn load_inputs(g: &Graph, bindings: &[(String, PathBuf)]) -> Result<Vec<(String, Tensor)>> {
    let mut out = vec![];
    for (name, path) in bindings {
        if !g.inputs().iter().any(|v| g.value(*v).name == *name) {
            let names: Vec<&str> = g
                .inputs()
                .iter()
                .map(|v| g.value(*v).name.as_str())
                .collect();
            bail!(
                "the model has no input `{name}` (inputs: {})",
                names.join(", ")
            );
        }
        let t = npy::read_npy_file(path).with_context(|| format!("reading input `{name}`"))?;
        out.push((name.clone(), t));
    }
    Ok(out)
}

/// Inputs found beside the model as `<stem>.<input>.npy`.
pub fn sibling_inputs(model: &Path, g: &Graph) -> Vec<(String, PathBuf)> {
    g.inputs()
        .iter()
        .filter_map(|v| {
            let name = &g.value(*v).name;
            let p = sibling(model, name)?;
            p.exists().then(|| (name.clone(), p))
        })
        .collect()
}

/// `<dir>/<stem>.<name>.npy` for a model path.
pub fn sibling(model: &Path, name: &str) -> Option<PathBuf> {
    let stem = model.file_stem()?.to_str()?;
    Some(model.with_file_name(format!("{stem}.{name}.npy")))
}

/// Inputs synthesised for every graph input not given: symbolic dims take the size from
/// `dims` (default 1), integer inputs are small non-negative ids, floats are a fixed
/// pseudo-random pattern in [-1, 1].
pub fn synthesize_missing(
    g: &Graph,
    given: &mut Vec<(String, Tensor)>,
    default_dim: usize,
) -> Result<()> {
    synthesize_with(g, given, &|_| default_dim)
}

/// Like [`synthesize_missing`], with the size of each named dim from `dim`.
pub fn synthesize_with(
    g: &Graph,
    given: &mut Vec<(String, Tensor)>,
    dim: &dyn Fn(&str) -> usize,
) -> Result<()> {
    for v in g.inputs() {
        let name = &g.value(*v).name;
        if given.iter().any(|(n, _)| n == name) {
            continue;
        }
        let ty = g.ty(*v);
        let dims: Vec<usize> = match ty.dims() {
            Some(d) => d
                .iter()
                .map(|d| match d {
                    Dim::Known(k) => *k as usize,
                    Dim::Sym(s) => dim(s),
                    _ => dim(""),
                })
                .collect(),
            None => bail!("input `{name}` has unknown rank; pass it with --input"),
        };
        let n: usize = dims.iter().product();
        let t = match ty.dtype {
            smelt::DType::F32 => Tensor::from_vec(
                dims,
                (0..n)
                    .map(|i| ((i * 7919 % 2001) as f32 / 1000.0) - 1.0)
                    .collect(),
            )?,
            smelt::DType::I64 => Tensor::from_vec(dims, (0..n).map(|i| (i % 2) as i64).collect())?,
            smelt::DType::I32 => Tensor::from_vec(dims, (0..n).map(|i| (i % 2) as i32).collect())?,
            other => bail!("cannot synthesise a {other} input `{name}`; pass it with --input"),
        };
        given.push((name.clone(), t));
    }
    Ok(())
}
