//! `smelt run`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use smelt::{Backend, CompileOptions, Compiled, Driver, Tensor};

use crate::inputs::{load_inputs, parse_binding};
use crate::opt::{load, parse_dim};

/// Arguments of `smelt run`.
#[derive(Args)]
pub struct RunArgs {
    /// Model file (.onnx or .smelt).
    pub model: PathBuf,
    /// An input as NAME=FILE.npy (repeatable; every model input is needed).
    #[arg(short = 'i', long = "input", value_name = "NAME=FILE.npy", value_parser = parse_binding)]
    pub inputs: Vec<(String, PathBuf)>,
    /// Write each output to DIR/<output name>.npy.
    #[arg(long = "output-dir", value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
    /// Run this pass pipeline first.
    #[arg(short = 'p', long = "pipeline", default_value = "")]
    pub pipeline: String,
    /// Fix a symbolic dim, e.g. `--dim batch=1`.
    #[arg(long = "dim", value_name = "NAME=SIZE", value_parser = parse_dim)]
    pub dims: Vec<(String, u64)>,
    /// Run this many times (after one warm-up run) and print the median and p90 time.
    #[arg(long, default_value_t = 1)]
    pub repeat: usize,
    /// The engine: `cranelift` or `llvm` (compiled native code), `interp` (reference
    /// interpreter), or `cuda` (PTX on NVIDIA GPU 0; needs the `cuda` feature and a
    /// driver).
    #[arg(long, default_value = "cranelift", value_parser = parse_engine)]
    pub backend: Engine,
    /// Worker threads for compiled code (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Calibration data for data-driven passes: NAME=FILE.npy per model input, samples
    /// along the first axis (repeatable).
    #[arg(long = "calib", value_name = "NAME=FILE.npy", value_parser = crate::inputs::parse_binding)]
    pub calib: Vec<(String, PathBuf)>,
}

/// What runs the model: a CPU engine of [`Compiled`], or the GPU.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// The interpreter or a CPU code generator.
    Cpu(Backend),
    /// PTX on an NVIDIA GPU through the CUDA driver.
    Cuda,
}

fn parse_engine(s: &str) -> std::result::Result<Engine, String> {
    match s {
        "cuda" => Ok(Engine::Cuda),
        other => other
            .parse::<Backend>()
            .map(Engine::Cpu)
            .map_err(|e| format!("{e}, or `cuda`")),
    }
}

pub fn run(a: RunArgs) -> Result<()> {
    let mut model = load(&a.model, &a.dims)?;
    let mut cx = crate::calib::pass_context(&model.graph, &a.calib)?;
    Driver::new()
        .pass_manager(&a.pipeline)?
        .run(&mut model.graph, &mut cx)?;
    let inputs = load_inputs(&model.graph, &a.inputs)?;
    let named: Vec<(&str, Tensor)> = inputs
        .iter()
        .map(|(n, t)| (n.as_str(), t.clone()))
        .collect();
    let backend = match a.backend {
        Engine::Cpu(b) => b,
        Engine::Cuda => {
            let outputs = run_cuda(&model.graph, &named, a.repeat)?;
            return write_outputs(&outputs, a.output_dir.as_deref());
        }
    };
    let compiled = Compiled::new(
        model.graph.clone(),
        CompileOptions {
            backend,
            threads: a.threads,
            ..CompileOptions::default()
        },
    )?;
    let by_name = compiled.input_shapes(&named)?;
    let stats = compiled.prepare(&by_name)?;
    if backend != Backend::Interp {
        eprintln!(
            "compiled in {:.1} ms ({} kernels, arena {} bytes)",
            stats.total_ms(),
            stats.kernels,
            stats.arena_bytes
        );
    }
    let t0 = std::time::Instant::now();
    let outputs = compiled.run(&named)?;
    let first_ms = t0.elapsed().as_secs_f64() * 1e3;
    if a.repeat > 1 {
        let times = sorted_times_ms(a.repeat, || compiled.run(&named).map(drop))?;
        let p90 = times[(times.len() * 9 / 10).min(times.len() - 1)];
        eprintln!(
            "{}: median {:.2} ms, p90 {p90:.2} ms over {} runs",
            backend,
            times[times.len() / 2],
            times.len()
        );
    } else {
        eprintln!("ran in {first_ms:.1} ms ({})", backend);
    }
    write_outputs(&outputs, a.output_dir.as_deref())
}

/// Wall times of `runs` calls of `f`, in ms, sorted.
fn sorted_times_ms(runs: usize, mut f: impl FnMut() -> smelt::Result<()>) -> Result<Vec<f64>> {
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = std::time::Instant::now();
        f()?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    Ok(times)
}

/// Prints each output's preview and writes it to `dir/<name>.npy` when asked.
fn write_outputs(outputs: &[(String, Tensor)], dir: Option<&std::path::Path>) -> Result<()> {
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    for (name, t) in outputs {
        println!("{name}: {}{:?} {}", t.dtype(), t.shape(), preview(t));
        if let Some(dir) = dir {
            let file = dir.join(format!("{}.npy", sanitize(name)));
            smelt::ir::npy::write_npy_file(&file, t)?;
        }
    }
    Ok(())
}

/// Runs on GPU 0 (after one untimed run when `repeat` > 1, which compiles and loads).
#[cfg(feature = "cuda")]
fn run_cuda(
    graph: &smelt::Graph,
    named: &[(&str, Tensor)],
    repeat: usize,
) -> Result<Vec<(String, Tensor)>> {
    let gpu = smelt::gpu::GpuModel::new(graph.clone(), 0)?;
    let t0 = std::time::Instant::now();
    let outputs = gpu.run(named)?;
    eprintln!(
        "compiled, loaded and ran in {:.1} ms on {}",
        t0.elapsed().as_secs_f64() * 1e3,
        gpu.device().unwrap_or_default()
    );
    if repeat > 1 {
        let times = sorted_times_ms(repeat, || gpu.run(named).map(drop))?;
        eprintln!(
            "cuda: median {:.3} ms over {} runs (inputs and outputs copied each run)",
            times[times.len() / 2],
            times.len()
        );
    }
    Ok(outputs)
}

#[cfg(not(feature = "cuda"))]
fn run_cuda(
    _graph: &smelt::Graph,
    _named: &[(&str, Tensor)],
    _repeat: usize,
) -> Result<Vec<(String, Tensor)>> {
    anyhow::bail!(
        "this build of smelt has no GPU runtime (build smelt-cli with the `cuda` feature)"
    )
}

/// Output names may contain `/`; keep file names inside the output folder.
fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The first few values of a tensor.
pub fn preview(t: &Tensor) -> String {
    let vals: Vec<String> = match t.dtype() {
        smelt::DType::F32 => t
            .to_vec::<f32>()
            .unwrap_or_default()
            .iter()
            .take(6)
            .map(|v| format!("{v:.5}"))
            .collect(),
        d if d.is_int() || d == smelt::DType::Bool => t
            .to_i64_vec()
            .unwrap_or_default()
            .iter()
            .take(6)
            .map(i64::to_string)
            .collect(),
        _ => vec![],
    };
    let more = if t.len() > vals.len() { ", ..." } else { "" };
    format!("[{}{more}]", vals.join(", "))
}
