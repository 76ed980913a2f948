//! `smelt compile`: build a shared library or object file with a C ABI.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use smelt::aot::ArtifactKind;
use smelt::{Backend, CompileOptions, Compiled, Dim, Driver};

use crate::opt::{load, parse_dim};

/// Arguments of `smelt compile`.
#[derive(Args)]
pub struct CompileArgs {
    /// Model file (.onnx or .smelt).
    pub model: PathBuf,
    /// Output: `NAME.so` (shared library) or `NAME.o` (object file); `NAME.h` is written
    /// beside it.
    #[arg(short = 'o', long = "output", default_value = "model.so")]
    pub output: PathBuf,
    /// Run this pass pipeline first.
    #[arg(short = 'p', long = "pipeline", default_value = "")]
    pub pipeline: String,
    /// The code generator: `cranelift`, or `llvm` in builds with the `llvm` feature.
    #[arg(long, default_value = "cranelift")]
    pub backend: Backend,
    /// Size of a named dim (repeatable); every named dim of the inputs needs one, since
    /// artifacts are compiled for fixed shapes.
    #[arg(long = "dim", value_name = "NAME=SIZE", value_parser = parse_dim)]
    pub dims: Vec<(String, u64)>,
    /// `host` (native code for this machine) or `nvptx` (PTX for an NVIDIA GPU; needs
    /// the `llvm` feature; the output must end in `.ptx`).
    #[arg(long, default_value = "host")]
    pub target: String,
    /// GPU architecture for `--target nvptx`.
    #[arg(long, default_value = "sm_80")]
    pub gpu: String,
    /// Print the kernel program (loop-level IR with fusion and schedules) to stdout
    /// instead of building an artifact.
    #[arg(long)]
    pub print_kernels: bool,
    /// Calibration data for data-driven passes: NAME=FILE.npy per model input, samples
    /// along the first axis (repeatable).
    #[arg(long = "calib", value_name = "NAME=FILE.npy", value_parser = crate::inputs::parse_binding)]
    pub calib: Vec<(String, PathBuf)>,
}

pub fn compile(a: CompileArgs) -> Result<()> {
    if a.backend == Backend::Interp {
        bail!(
            "`smelt compile` needs a code generator; `--backend {}` has none",
            a.backend
        );
    }
    let ptx = match a.target.as_str() {
        "host" => false,
        "nvptx" => true,
        other => bail!("unknown target `{other}` (expected `host` or `nvptx`)"),
    };
    if ptx && a.output.extension().and_then(|e| e.to_str()) != Some("ptx") {
        bail!("with --target nvptx the output must end in .ptx");
    }
    let kind = ArtifactKind::from_path(&a.output);
    if kind.is_none() && !a.print_kernels && !ptx {
        bail!(
            "the output {} must end in .so (shared library) or .o (object file)",
            a.output.display()
        );
    }
    let mut model = load(&a.model, &[])?;
    let mut cx = crate::calib::pass_context(&model.graph, &a.calib)?;
    Driver::new()
        .pass_manager(&a.pipeline)?
        .run(&mut model.graph, &mut cx)?;
    let sizes: HashMap<&str, u64> = a.dims.iter().map(|(n, v)| (n.as_str(), *v)).collect();
    let g = &model.graph;
    let mut shapes = vec![];
    let mut missing: Vec<String> = vec![];
    for &v in g.inputs() {
        let Some(dims) = g.ty(v).dims() else {
            bail!("input `{}` has unknown rank", g.value(v).name);
        };
        let mut shape = vec![];
        for d in dims {
            match d {
                Dim::Known(k) => shape.push(*k as usize),
                Dim::Sym(s) => match sizes.get(s.as_str()) {
                    Some(&n) => shape.push(n as usize),
                    None => {
                        if !missing.contains(s) {
                            missing.push(s.clone());
                        }
                        shape.push(0);
                    }
                },
                Dim::Unknown => bail!("input `{}` has an unnamed unknown dim", g.value(v).name),
            }
        }
        shapes.push(shape);
    }
    if !missing.is_empty() {
        let flags: Vec<String> = missing.iter().map(|m| format!("--dim {m}=N")).collect();
        bail!(
            "artifacts are compiled for fixed shapes; give {}",
            flags.join(" ")
        );
    }
    let compiled = Compiled::new(
        model.graph.clone(),
        CompileOptions {
            backend: a.backend,
            ..CompileOptions::default()
        },
    )?;
    if a.print_kernels {
        print!("{}", compiled.program(&shapes)?);
        return Ok(());
    }
    if ptx {
        let art = compiled.compile_ptx(&shapes, &a.gpu, 256)?;
        std::fs::write(&a.output, &art.ptx)
            .with_context(|| format!("writing {}", a.output.display()))?;
        let manifest = a.output.with_extension("launch.json");
        std::fs::write(&manifest, &art.manifest)
            .with_context(|| format!("writing {}", manifest.display()))?;
        eprintln!(
            "{} kernels for {}: {} bytes of PTX",
            art.kernels,
            a.gpu,
            art.ptx.len()
        );
        println!("{}", a.output.display());
        println!("{}", manifest.display());
        return Ok(());
    }
    let Some(kind) = kind else {
        unreachable!("checked above")
    };
    let r = compiled.compile_aot(&shapes, &a.output, kind)?;
    eprintln!(
        "compiled {} kernels in {:.1} ms, linked with cc in {:.1} ms; arena {} bytes, weights {} bytes",
        r.kernels, r.codegen_ms, r.cc_ms, r.arena_bytes, r.weights_bytes
    );
    println!("{}", r.artifact.display());
    println!("{}", r.header.display());
    Ok(())
}
