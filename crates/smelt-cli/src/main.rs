//! `smelt`: inspect, optimise and run neural-network models.

mod bench;
mod calib;
mod compile;
mod export;
mod gemm;
mod html;
mod inputs;
mod inspect;
mod opt;
mod report;
mod run;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// smelt — an ahead-of-time compiler for neural-network models.
#[derive(Parser)]
#[command(name = "smelt", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Summarise a model: ops, parameters, bytes per dtype/encoding, inputs and outputs.
    Inspect {
        /// Model file (.onnx or .smelt).
        model: PathBuf,
    },
    /// Run a pass pipeline and write the resulting IR.
    Opt(opt::OptArgs),
    /// Write a model (optionally after a pass pipeline) as an ONNX file.
    Export(export::ExportArgs),
    /// Run a model on .npy inputs, compiled (default) or with the reference interpreter.
    Run(run::RunArgs),
    /// Compile a model ahead of time to a shared library or object file with a C ABI.
    Compile(compile::CompileArgs),
    /// Time a compiled model on synthesised inputs: median and p90 latency, GFLOP/s.
    Bench(bench::BenchArgs),
    /// Optimise a model, run it before and after, compare against reference outputs and
    /// print a report.
    Report(report::ReportArgs),
    /// List the registered passes and their options.
    Passes,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect { model } => inspect::inspect(&model),
        Command::Opt(a) => opt::opt(a),
        Command::Export(a) => export::export(a),
        Command::Run(a) => run::run(a),
        Command::Bench(a) => bench::bench(a),
        Command::Compile(a) => compile::compile(a),
        Command::Report(a) => report::report(a),
        Command::Passes => {
            list_passes();
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // A readable chain of causes, no backtrace: these are user-facing reports.
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}

fn list_passes() {
    let driver = smelt::Driver::new();
    for p in driver.registry().iter() {
        println!("{:<16} {}", p.name, p.description);
        for o in &p.options {
            let default = o
                .default
                .map(|d| format!(" (default {d})"))
                .unwrap_or_default();
            println!("    {}={:?}{default}  {}", o.name, o.kind, o.help);
        }
    }
}
