//! `smelt bench`: compile a model for one input shape and time it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use smelt::{Backend, CompileOptions, Compiled, Dim, Driver, Graph, OpKind, Tensor};

use crate::inputs::{load_inputs, parse_binding, synthesize_with};
use crate::opt::{load, parse_dim};

/// Arguments of `smelt bench`.
#[derive(Args)]
pub struct BenchArgs {
    /// Model file (.onnx or .smelt); not needed with `--gemm`.
    #[arg(required_unless_present = "gemm")]
    pub model: Option<PathBuf>,
    /// Time one f32 GEMM `x[M,K] · W[K,N]` (constant W) instead of a model, beside the
    /// measured FMA peak, e.g. `--gemm 128,384,1536`.
    #[arg(long, value_name = "M,K,N", value_parser = crate::gemm::parse_gemm)]
    pub gemm: Option<(usize, usize, usize)>,
    /// The engine: `cranelift` or `interp`.
    #[arg(long, default_value = "cranelift")]
    pub backend: Backend,
    /// Size of the first named dim of the inputs (the batch).
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Size of the second named dim of the inputs (the sequence), if there is one.
    #[arg(long, default_value_t = 128)]
    pub seq: usize,
    /// Worker threads (0: one per core).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Size any other named dim, e.g. `--dim height=224` (repeatable).
    #[arg(long = "dim", value_name = "NAME=SIZE", value_parser = parse_dim)]
    pub dims: Vec<(String, u64)>,
    /// Use this input instead of a synthesised one (NAME=FILE.npy, repeatable).
    #[arg(short = 'i', long = "input", value_name = "NAME=FILE.npy", value_parser = parse_binding)]
    pub inputs: Vec<(String, PathBuf)>,
    /// Run this pass pipeline first.
    #[arg(short = 'p', long = "pipeline", default_value = "")]
    pub pipeline: String,
    /// Untimed runs before measuring.
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// Timed runs.
    #[arg(long, default_value_t = 20)]
    pub runs: usize,
    /// Also time every kernel and print the slowest (stderr).
    #[arg(long)]
    pub profile: bool,
    /// How many of the slowest kernels `--profile` lists.
    #[arg(long, default_value_t = 12)]
    pub profile_top: usize,
    /// Calibration data for data-driven passes: NAME=FILE.npy per model input, samples
    /// along the first axis (repeatable).
    #[arg(long = "calib", value_name = "NAME=FILE.npy", value_parser = crate::inputs::parse_binding)]
    pub calib: Vec<(String, PathBuf)>,
}

/// The named dims of the inputs in order of first appearance.
fn named_dims(g: &Graph) -> Vec<String> {
    let mut out: Vec<String> = vec![];
    for &v in g.inputs() {
        for d in g.ty(v).dims().unwrap_or(&[]) {
            if let Dim::Sym(s) = d {
                if !out.contains(s) {
                    out.push(s.clone());
                }
            }
        }
    }
    out
}

/// Multiply-add FLOPs of the matmuls, Gemms and convolutions of a graph whose shapes
/// are all known (2 per multiply-add); other ops are not counted.
pub fn matmul_flops(g: &Graph) -> u64 {
    let known = |v| -> Option<Vec<u64>> {
        g.ty(v)
            .dims()?
            .iter()
            .map(|d| match d {
                Dim::Known(k) => Some(*k),
                _ => None,
            })
            .collect()
    };
    let mut total = 0u64;
    for n in g.node_ids() {
        let node = g.node(n);
        let Some(&out) = node.outputs.first() else {
            continue;
        };
        let Some(o) = known(out) else { continue };
        let outs: u64 = o.iter().product();
        let first = node.inputs.first().copied().flatten();
        let second = node.inputs.get(1).copied().flatten();
        let flops = match (&node.op, first.and_then(known), second.and_then(known)) {
            (OpKind::MatMul, Some(a), _) => a.last().map_or(0, |k| 2 * outs * k),
            (OpKind::Gemm, Some(a), _) => {
                let k = if node.attrs.int_or("transA", 0) != 0 {
                    a[0]
                } else {
                    a[a.len() - 1]
                };
                2 * outs * k
            }
            (OpKind::Conv, _, Some(w)) => 2 * outs * w.iter().skip(1).product::<u64>(),
            _ => 0,
        };
        total = total.saturating_add(flops);
    }
    total
}

pub fn bench(a: BenchArgs) -> Result<()> {
    if let Some(shape) = a.gemm {
        return crate::gemm::bench_gemm(shape, a.backend, a.threads, a.warmup, a.runs);
    }
    let Some(path) = a.model.clone() else {
        anyhow::bail!("give a model (or --gemm M,K,N)");
    };
    let mut model = load(&path, &[])?;
    let mut cx = crate::calib::pass_context(&model.graph, &a.calib)?;
    Driver::new()
        .pass_manager(&a.pipeline)?
        .run(&mut model.graph, &mut cx)?;
    let mut sizes: HashMap<String, usize> = a
        .dims
        .iter()
        .map(|(n, v)| (n.clone(), *v as usize))
        .collect();
    let named = named_dims(&model.graph);
    for (d, v) in named.iter().zip([a.batch, a.seq]) {
        sizes.entry(d.clone()).or_insert(v);
    }
    let mut inputs = load_inputs(&model.graph, &a.inputs)?;
    synthesize_with(&model.graph, &mut inputs, &|d| {
        sizes.get(d).copied().unwrap_or(1)
    })?;
    let compiled = Compiled::new(
        model.graph.clone(),
        CompileOptions {
            backend: a.backend,
            threads: a.threads,
            ..CompileOptions::default()
        },
    )?;
    let ordered: Vec<Tensor> = compiled
        .input_names()
        .iter()
        .map(|n| {
            inputs
                .iter()
                .find(|(m, _)| m == n)
                .map(|(_, t)| t.clone())
                .with_context(|| format!("no input `{n}`"))
        })
        .collect::<Result<_>>()?;
    let shapes: Vec<Vec<usize>> = ordered.iter().map(|t| t.shape().to_vec()).collect();
    let flops = matmul_flops(&compiled.specialize(&shapes)?);
    let t0 = Instant::now();
    let stats = compiled.prepare(&shapes)?;
    let prepare_ms = t0.elapsed().as_secs_f64() * 1e3;
    for _ in 0..a.warmup {
        compiled.run_ordered(&ordered)?;
    }
    let handle = if a.profile && a.backend != Backend::Interp {
        let h = compiled.runtime_model(&shapes)?;
        h.enable_profile();
        Some(h)
    } else {
        None
    };
    let mut times = Vec::with_capacity(a.runs.max(1));
    for _ in 0..a.runs.max(1) {
        let t = Instant::now();
        compiled.run_ordered(&ordered)?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let p90 = times[(times.len() * 9 / 10).min(times.len() - 1)];
    let shape_text: Vec<String> = named
        .iter()
        .map(|d| format!("{d}={}", sizes.get(d).copied().unwrap_or(1)))
        .collect();
    eprintln!(
        "{} · backend {} · {} · threads {} · {} runs after {} warm-up",
        path.display(),
        a.backend,
        shape_text.join(" "),
        compiled_threads(a.threads),
        times.len(),
        a.warmup
    );
    if a.backend == Backend::Cranelift {
        let features = smelt::codegen_cranelift::host_features();
        eprintln!("host features: {}", features.join(" "));
    }
    if a.backend != Backend::Interp {
        eprintln!(
            "compile {:.1} ms (specialise {:.1}, lower {:.1}, codegen {:.1}; {} kernels; arena {} bytes, {} without reuse)",
            prepare_ms,
            stats.specialize_ms,
            stats.lower_ms,
            stats.codegen_ms,
            stats.kernels,
            stats.arena_bytes,
            stats.unshared_bytes
        );
    }
    if let Some(h) = &handle {
        print_profile(h, times.len(), a.profile_top);
    }
    println!(
        "median {median:.3} ms, p90 {p90:.3} ms, {:.1} GFLOP/s",
        flops as f64 / (median * 1e6)
    );
    Ok(())
}

fn compiled_threads(t: usize) -> usize {
    if t == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        t
    }
}

/// The kernels by time per run, slowest first, with what each fuses.
fn print_profile(h: &smelt::RuntimeHandle, runs: usize, top: usize) {
    let Some(times) = h.profile() else { return };
    let program = h.program();
    let total: f64 = times.iter().sum::<f64>() / runs as f64;
    let mut by_kind: HashMap<String, f64> = HashMap::new();
    for (k, t) in program.kernels.iter().zip(&times) {
        *by_kind.entry(format!("{:?}", k.kind)).or_default() += t / runs as f64;
    }
    let mut kinds: Vec<_> = by_kind.into_iter().collect();
    kinds.sort_by(|a, b| b.1.total_cmp(&a.1));
    eprintln!("kernel time per run: {total:.3} ms");
    for (kind, t) in kinds {
        eprintln!("  {kind:<12} {t:>8.3} ms {:>5.1}%", 100.0 * t / total);
    }
    let mut order: Vec<usize> = (0..times.len()).collect();
    order.sort_by(|&a, &b| times[b].total_cmp(&times[a]));
    eprintln!("slowest kernels:");
    for &i in order.iter().take(top) {
        let k = &program.kernels[i];
        eprintln!(
            "  {:>8.3} ms  {}  (schedule: parallel {:?})",
            times[i] / runs as f64,
            k.name,
            k.schedule.parallel_axis
        );
    }
}
