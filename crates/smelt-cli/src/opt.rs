//! `smelt opt`.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use smelt::ir::pass::PrintIr;
use smelt::{Driver, Model};

/// Arguments of `smelt opt`.
#[derive(Args)]
pub struct OptArgs {
    /// Model file (.onnx or .smelt).
    pub model: PathBuf,
    /// Pass pipeline, e.g. `fold-constants,cse,dce`.
    #[arg(short = 'p', long = "pipeline", default_value = "")]
    pub pipeline: String,
    /// Write the resulting IR here (.smelt); without it the IR goes to stdout.
    #[arg(short = 'o', long = "output")]
    pub output: Option<PathBuf>,
    /// Print the IR after every pass (to stderr).
    #[arg(long)]
    pub print_ir_after_all: bool,
    /// Print the IR after the named pass (repeatable).
    #[arg(long = "print-ir-after", value_name = "PASS")]
    pub print_ir_after: Vec<String>,
    /// Fix a symbolic dim to a size, e.g. `--dim batch=1` (repeatable).
    #[arg(long = "dim", value_name = "NAME=SIZE", value_parser = parse_dim)]
    pub dims: Vec<(String, u64)>,
    /// A `.rules` file of rewrites (`lhs => rhs if cond`), loaded at run time and applied
    /// after the pipeline (repeatable; each file runs as its own pass `rules:<stem>`).
    #[arg(long = "rules", value_name = "FILE")]
    pub rules: Vec<PathBuf>,
    /// Calibration data for data-driven passes: NAME=FILE.npy per model input, samples
    /// along the first axis (repeatable).
    #[arg(long = "calib", value_name = "NAME=FILE.npy", value_parser = crate::inputs::parse_binding)]
    pub calib: Vec<(String, PathBuf)>,
}

/// Parse `name=size`.
pub fn parse_dim(s: &str) -> Result<(String, u64), String> {
    let (n, v) = s
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=SIZE, got `{s}`"))?;
    let v = v.parse().map_err(|_| format!("`{v}` is not a size"))?;
    Ok((n.to_string(), v))
}

/// Load a model and bind dims.
pub fn load(path: &PathBuf, dims: &[(String, u64)]) -> Result<Model> {
    let mut model = Model::load(path)?;
    if !dims.is_empty() {
        let map: HashMap<String, u64> = dims.iter().cloned().collect();
        if model.graph.bind_dims(&map) == 0 {
            bail!("none of the --dim names occur in the model");
        }
        model
            .graph
            .infer_types()
            .context("propagating the bound dims")?;
    }
    Ok(model)
}

pub fn opt(a: OptArgs) -> Result<()> {
    let mut model = load(&a.model, &a.dims)?;
    let driver = Driver::new();
    let mut pm = driver.pass_manager(&a.pipeline)?;
    for path in &a.rules {
        let rules = smelt::rewrite::RuleSet::from_file(path)?;
        let name = format!("rules:{}", rules.name);
        pm.add(Box::new(smelt::rewrite::RewritePass::new(
            &name,
            &[rules],
            smelt::rewrite::RewriteOptions::default(),
        )));
    }
    let when = if a.print_ir_after_all {
        PrintIr::AfterAll
    } else if !a.print_ir_after.is_empty() {
        for name in &a.print_ir_after {
            if driver.registry().get(name).is_none() {
                bail!("--print-ir-after: unknown pass `{name}`");
            }
        }
        PrintIr::After(a.print_ir_after.clone())
    } else {
        PrintIr::Never
    };
    pm.print_ir(when, None);
    let mut cx = crate::calib::pass_context(&model.graph, &a.calib)?;
    let runs = pm.run(&mut model.graph, &mut cx)?;
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
    let text = smelt::ir::text::print(&model.graph);
    match a.output {
        Some(p) => match p.extension().and_then(|e| e.to_str()) {
            Some("smelt") => {
                std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?
            }
            _ => bail!("{}: only .smelt output is supported so far", p.display()),
        },
        None => print!("{text}"),
    }
    Ok(())
}
