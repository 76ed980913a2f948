//! `smelt report`: the end-to-end job on one model.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use smelt::{Backend, CompileOptions, Compiled, Driver, Model, Tensor};

use crate::inputs::{load_inputs, parse_binding, sibling, sibling_inputs, synthesize_missing};
use crate::inspect::group_digits;

/// Arguments of `smelt report`.
#[derive(Args)]
pub struct ReportArgs {
    /// Model file (.onnx or .smelt).
    pub model: PathBuf,
    /// Pass pipeline to apply.
    #[arg(
        short = 'p',
        long = "pipeline",
        default_value = "fold-constants,cse,canonicalize,dce"
    )]
    pub pipeline: String,
    /// An input as NAME=FILE.npy. Inputs not given are read from `<model stem>.<input>.npy`
    /// beside the model, or synthesised.
    #[arg(short = 'i', long = "input", value_name = "NAME=FILE.npy", value_parser = parse_binding)]
    pub inputs: Vec<(String, PathBuf)>,
    /// Size for symbolic dims of synthesised inputs.
    #[arg(long, default_value_t = 4)]
    pub synth_dim: usize,
    /// Also compile the optimised model with this backend and check it against the
    /// interpreter (`interp` skips compilation).
    #[arg(long, default_value = "cranelift")]
    pub backend: Backend,
    /// Worker threads for the compiled model (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Calibration data for data-driven passes: NAME=FILE.npy per model input, samples
    /// along the first axis (repeatable).
    #[arg(long = "calib", value_name = "NAME=FILE.npy", value_parser = crate::inputs::parse_binding)]
    pub calib: Vec<(String, PathBuf)>,
    /// Also write the report as a self-contained HTML page with a per-value error plot.
    #[arg(long, value_name = "FILE.html")]
    pub html: Option<PathBuf>,
}

pub fn report(a: ReportArgs) -> Result<()> {
    let t0 = Instant::now();
    let original = Model::load(&a.model)?;
    let import_ms = ms(t0);
    let g0 = &original.graph;
    println!("== smelt report: {}", a.model.display());
    println!(
        "imported in {import_ms:.1} ms: {} ops, {} constants, {} parameters",
        g0.op_count(),
        g0.node_count() - g0.op_count(),
        group_digits(g0.parameter_count())
    );

    let mut optimised = original.clone();
    let mut pm = Driver::new().pass_manager(&a.pipeline)?;
    let runs = pm.run(
        &mut optimised.graph,
        &mut crate::calib::pass_context(g0, &a.calib)?,
    )?;
    println!("pipeline `{}`:", a.pipeline);
    for r in &runs {
        println!(
            "  {:<16} {:>8.2} ms  ops {:>5} -> {:<5} {}",
            r.pass,
            r.time.as_secs_f64() * 1e3,
            r.ops_before,
            r.ops_after,
            r.report.notes.join("; ")
        );
    }

    let mut bindings = a.inputs.clone();
    for (n, p) in sibling_inputs(&a.model, g0) {
        if !bindings.iter().any(|(m, _)| *m == n) {
            bindings.push((n, p));
        }
    }
    let mut inputs = load_inputs(g0, &bindings)?;
    // Without explicit inputs, errors are measured on the first calibration sample.
    let from_calib = inputs.is_empty() && !a.calib.is_empty();
    if from_calib {
        if let Some(first) = crate::calib::load_samples(g0, &a.calib)?.into_iter().next() {
            inputs = first;
        }
    }
    let synthesised = g0.inputs().len() - inputs.len();
    synthesize_missing(g0, &mut inputs, a.synth_dim)?;
    let named: Vec<(&str, Tensor)> = inputs
        .iter()
        .map(|(n, t)| (n.as_str(), t.clone()))
        .collect();
    println!(
        "inputs: {} from files, {synthesised} synthesised",
        inputs.len() - synthesised
    );

    let t1 = Instant::now();
    let (before, before_values) =
        interp_with_values(&original.graph, &named).context("running the original model")?;
    let before_ms = ms(t1);
    let t2 = Instant::now();
    let (after, after_values) =
        interp_with_values(&optimised.graph, &named).context("running the optimised model")?;
    let after_ms = ms(t2);
    println!("interpreter: original {before_ms:.1} ms, optimised {after_ms:.1} ms");

    let (bytes_before, bytes_after, tensors) = print_compression(&original.graph, &optimised.graph);
    let value_rows = print_layer_errors(&optimised.graph, &before_values, &after_values);
    if let Some(path) = &a.html {
        let inputs_text = if from_calib {
            "the first calibration sample".to_string()
        } else {
            format!(
                "{} input(s) from files, {synthesised} synthesised",
                inputs.len() - synthesised
            )
        };
        let page = crate::html::render(&crate::html::Page {
            model: &a.model.display().to_string(),
            pipeline: &a.pipeline,
            inputs: &inputs_text,
            bytes_before,
            bytes_after,
            tensors: &tensors,
            values: &value_rows,
        });
        std::fs::write(path, page).with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {}", path.display());
    }

    // A pipeline that quantizes is lossy by design: its outputs are judged by the
    // per-value errors above, not by the lossless tolerances below.
    let lossy = optimised.graph.live_values().any(|v| {
        optimised
            .graph
            .constant(v)
            .is_some_and(|c| !c.encoding().is_plain())
    });
    let mut failures = 0;
    if a.backend != Backend::Interp {
        let compiled = Compiled::new(
            optimised.graph.clone(),
            CompileOptions {
                backend: a.backend,
                threads: a.threads,
                ..CompileOptions::default()
            },
        )?;
        let shapes = compiled.input_shapes(&named)?;
        let stats = compiled
            .prepare(&shapes)
            .context("compiling the optimised model")?;
        let first = compiled.run(&named).context("running the compiled model")?;
        let mut times = vec![];
        for _ in 0..5 {
            let t = Instant::now();
            compiled.run(&named)?;
            times.push(ms(t));
        }
        times.sort_by(f64::total_cmp);
        println!(
            "{}: compiled in {:.1} ms ({} kernels, arena {} bytes), run median {:.2} ms over 5",
            a.backend,
            stats.total_ms(),
            stats.kernels,
            group_digits(stats.arena_bytes),
            times[2]
        );
        for ((name, o), (_, c)) in after.iter().zip(&first) {
            let d = max_abs_diff(o, c)?;
            let scale = as_f64(o)?.iter().fold(1.0f64, |m, v| m.max(v.abs()));
            if d > 1e-4 * scale {
                failures += 1;
            }
            println!("compiled {name}: max |compiled - interpreter| = {d:.3e}");
        }
    }
    for ((name, b), (_, o)) in before.iter().zip(&after) {
        let drift = max_abs_diff(b, o)?;
        let reference = sibling(&a.model, name).filter(|p| p.exists());
        let vs_ref = match &reference {
            Some(p) => {
                let r = smelt::ir::npy::read_npy_file(p)?;
                let d = max_abs_diff(&r, o)?;
                if d > 1e-4 && !lossy {
                    failures += 1;
                }
                format!(", max |optimised - reference| = {d:.3e}")
            }
            None => String::new(),
        };
        if drift > 1e-5 && !lossy {
            failures += 1;
        }
        println!(
            "output {name}: {}{:?}, max |optimised - original| = {drift:.3e}{vs_ref}",
            o.dtype(),
            o.shape()
        );
    }
    if failures > 0 {
        bail!(
            "{failures} output check(s) exceeded tolerance (1e-5 vs original, 1e-4 vs reference, 1e-4 relative compiled vs interpreter)"
        );
    }
    println!("ok");
    Ok(())
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

fn as_f64(t: &Tensor) -> Result<Vec<f64>> {
    Ok(match t.dtype() {
        smelt::DType::F32 => t.to_vec::<f32>()?.into_iter().map(f64::from).collect(),
        smelt::DType::F64 => t.to_vec::<f64>()?,
        d if d.is_int() || d == smelt::DType::Bool => {
            t.to_i64_vec()?.into_iter().map(|v| v as f64).collect()
        }
        d => bail!("cannot compare {d} outputs"),
    })
}

/// Max absolute difference (NaN-aware: NaN vs NaN counts as equal).
pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> Result<f64> {
    if a.shape() != b.shape() {
        bail!("shapes differ: {:?} vs {:?}", a.shape(), b.shape());
    }
    let (x, y) = (as_f64(a)?, as_f64(b)?);
    Ok(x.iter()
        .zip(&y)
        .map(|(p, q)| {
            if p.is_nan() && q.is_nan() {
                0.0
            } else {
                (p - q).abs()
            }
        })
        .fold(
            0.0,
            |m, d| if d.is_nan() { f64::INFINITY } else { m.max(d) },
        ))
}

/// Bytes of every constant before and after the pipeline (encoded constants count every
/// part: codes, scales, zero points), the tensors whose storage changed, and the ratio.
fn print_compression(
    before: &smelt::Graph,
    after: &smelt::Graph,
) -> (usize, usize, Vec<crate::html::TensorRow>) {
    // Constants the graph still uses (the weight store may hold dead entries).
    let total = |g: &smelt::Graph| -> usize {
        g.live_values()
            .filter_map(|v| g.constant(v))
            .map(|c| c.stored_bytes())
            .sum()
    };
    let (b, a) = (total(before), total(after));
    let mut changed: Vec<(String, String, usize, usize)> = vec![];
    for v in after.live_values() {
        let Some(c) = after.constant(v) else { continue };
        if c.encoding().is_plain() {
            continue;
        }
        let logical = c.shape().iter().product::<usize>() * c.dtype().bits().div_ceil(8) as usize;
        changed.push((
            after.value(v).name.clone(),
            c.encoding().to_string(),
            logical,
            c.stored_bytes(),
        ));
    }
    println!(
        "constants: {} -> {} bytes ({:.3}x); {} encoded",
        group_digits(b as u64),
        group_digits(a as u64),
        b as f64 / a.max(1) as f64,
        changed.len()
    );
    changed.sort_by_key(|c| std::cmp::Reverse(c.2));
    for (name, enc, logical, stored) in changed.iter().take(8) {
        println!(
            "  {name:<48} {enc:<40} {:>12} -> {:>12} bytes",
            group_digits(*logical as u64),
            group_digits(*stored as u64)
        );
    }
    if changed.len() > 8 {
        println!("  ... and {} more", changed.len() - 8);
    }
    let rows = changed
        .into_iter()
        .map(|(name, encoding, logical, stored)| crate::html::TensorRow {
            name,
            encoding,
            logical,
            stored,
        })
        .collect();
    (b, a, rows)
}

/// Relative L2 error and cosine of every f32 value the optimised graph shares (by name
/// and shape) with the original, on the report's inputs; prints the worst.
/// Every f32 value a graph computed, by its value name.
type Values = std::collections::HashMap<String, Tensor>;

/// Outputs of `graph` on `inputs` with the interpreter, and every f32 value it
/// computed, by name (tensors share their bytes, so keeping them is cheap).
fn interp_with_values(
    graph: &smelt::Graph,
    inputs: &[(&str, Tensor)],
) -> Result<(Vec<(String, Tensor)>, Values)> {
    let mut values = std::collections::HashMap::new();
    let outs = smelt::interp::run_with_observer(graph, inputs, &mut |v, t| {
        if t.dtype() == smelt::DType::F32 {
            values.insert(graph.value(v).name.clone(), t.clone());
        }
    })?;
    Ok((outs, values))
}

/// Relative L2 error and cosine of every f32 value the optimised graph shares (by name
/// and shape) with the original; prints the worst and returns them all in `graph`'s
/// topological order.
fn print_layer_errors(
    graph: &smelt::Graph,
    reference: &Values,
    values: &Values,
) -> Vec<crate::html::ValueRow> {
    let mut order: Vec<String> = vec![];
    if let Ok(nodes) = graph.topo_order() {
        for n in nodes {
            for &o in &graph.node(n).outputs {
                order.push(graph.value(o).name.clone());
            }
        }
    }
    let mut rows: Vec<(String, f64, f64)> = vec![];
    for name in &order {
        let Some(t) = values.get(name) else {
            continue;
        };
        let Some(r) = reference.get(name) else {
            continue;
        };
        if r.shape() != t.shape() {
            continue;
        }
        let (x, y) = match (r.to_vec::<f32>(), t.to_vec::<f32>()) {
            (Ok(x), Ok(y)) => (x, y),
            _ => continue,
        };
        let (mut dd, mut xx, mut yy, mut xy) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
        for (p, q) in x.iter().zip(&y) {
            let (p, q) = (f64::from(*p), f64::from(*q));
            dd += (p - q) * (p - q);
            xx += p * p;
            yy += q * q;
            xy += p * q;
        }
        let rel = if xx > 0.0 {
            (dd / xx).sqrt()
        } else {
            dd.sqrt()
        };
        let cos = if xx > 0.0 && yy > 0.0 {
            xy / (xx.sqrt() * yy.sqrt())
        } else {
            1.0
        };
        rows.push((name.clone(), rel, cos));
    }
    let all: Vec<crate::html::ValueRow> = rows
        .iter()
        .map(|(name, rel_l2, cosine)| crate::html::ValueRow {
            name: name.clone(),
            rel_l2: *rel_l2,
            cosine: *cosine,
        })
        .collect();
    let changed: Vec<&(String, f64, f64)> = rows.iter().filter(|r| r.1 > 0.0).collect();
    if changed.is_empty() {
        return all;
    }
    let mut worst = changed.clone();
    worst.sort_by(|x, y| y.1.total_cmp(&x.1).then_with(|| x.0.cmp(&y.0)));
    println!(
        "per-value error vs the original ({} values differ; worst by relative L2):",
        changed.len()
    );
    for (name, rel, cos) in worst.iter().take(8) {
        println!("  {name:<64} rel L2 {rel:.3e}  cosine {cos:.6}");
    }
    all
}
