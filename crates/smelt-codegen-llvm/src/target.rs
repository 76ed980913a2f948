//! Target setup (LLVM initialisation, target machines), building and optimising a
//! module of kernels, and the object-file and IR outputs.

use std::sync::OnceLock;

use inkwell::context::Context;
use inkwell::module::Module;
use inkwell::passes::PassBuilderOptions;
use inkwell::targets::{
    CodeModel, FileType, InitializationConfig, RelocMode, Target, TargetMachine,
};
use inkwell::OptimizationLevel;
use smelt_lower::KernelProgram;

use crate::{CodegenError, Options};

/// Initialise LLVM's native target once per process (the initialisers are not safe to
/// race).
pub(crate) fn init() -> Result<(), CodegenError> {
    static INIT: OnceLock<Result<(), String>> = OnceLock::new();
    INIT.get_or_init(|| Target::initialize_native(&InitializationConfig::default()))
        .clone()
        .map_err(CodegenError::Target)
}

/// The host's CPU name and feature string.
pub(crate) fn host_cpu() -> (String, String) {
    (
        TargetMachine::get_host_cpu_name().to_string(),
        TargetMachine::get_host_cpu_features().to_string(),
    )
}

/// The CPU and features code is generated for: `opts`' or the host's.
pub(crate) fn cpu_and_features(opts: &Options) -> (String, String) {
    let (cpu, features) = host_cpu();
    (
        opts.cpu.clone().unwrap_or(cpu),
        opts.features.clone().unwrap_or(features),
    )
}

/// The LLVM optimisation level for `opts.opt_level`.
pub(crate) fn level(opts: &Options) -> OptimizationLevel {
    match opts.opt_level {
        0 => OptimizationLevel::None,
        1 => OptimizationLevel::Less,
        2 => OptimizationLevel::Default,
        _ => OptimizationLevel::Aggressive,
    }
}

/// A target machine for the host triple with `opts`' CPU and features.
pub(crate) fn target_machine(
    opts: &Options,
    reloc: RelocMode,
) -> Result<TargetMachine, CodegenError> {
    init()?;
    let triple = TargetMachine::get_default_triple();
    let target = Target::from_triple(&triple).map_err(|e| CodegenError::Target(e.to_string()))?;
    let (cpu, features) = cpu_and_features(opts);
    target
        .create_target_machine(
            &triple,
            &cpu,
            &features,
            level(opts),
            reloc,
            CodeModel::Default,
        )
        .ok_or_else(|| {
            CodegenError::Target(format!(
                "no target machine for {} (cpu `{cpu}`, features `{features}`)",
                triple.as_str().to_string_lossy()
            ))
        })
}

/// A module holding every kernel of `program` as `{prefix}_k{i}`, verified and optimised
/// for `tm`.
pub(crate) fn build_module<'ctx>(
    cx: &'ctx Context,
    program: &KernelProgram,
    prefix: &str,
    opts: &Options,
    tm: &TargetMachine,
) -> Result<Module<'ctx>, CodegenError> {
    let module = cx.create_module(&program.name);
    module.set_triple(&tm.get_triple());
    module.set_data_layout(&tm.get_target_data().get_data_layout());
    let (cpu, features) = cpu_and_features(opts);
    for (i, kernel) in program.kernels.iter().enumerate() {
        let name = crate::kernel_symbol(prefix, i);
        crate::emit::emit_kernel(cx, &module, &name, program, kernel, &cpu, &features)?;
    }
    module
        .verify()
        .map_err(|e| CodegenError::Llvm(format!("invalid module: {}", e.to_string())))?;
    optimise(&module, opts, tm)?;
    Ok(module)
}

/// Run the standard `default<On>` pipeline with the vectorisers on.
fn optimise(module: &Module, opts: &Options, tm: &TargetMachine) -> Result<(), CodegenError> {
    let n = opts.opt_level.min(3);
    let pbo = PassBuilderOptions::create();
    let vectorise = n >= 2;
    pbo.set_loop_vectorization(vectorise);
    pbo.set_loop_slp_vectorization(vectorise);
    pbo.set_loop_interleaving(vectorise);
    pbo.set_loop_unrolling(n >= 1);
    module
        .run_passes(&format!("default<O{n}>"), tm, pbo)
        .map_err(|e| CodegenError::Llvm(format!("optimising: {}", e.to_string())))
}

/// See [`crate::compile_object`].
pub(crate) fn compile_object(
    program: &KernelProgram,
    prefix: &str,
    opts: &Options,
) -> Result<Vec<u8>, CodegenError> {
    let tm = target_machine(opts, RelocMode::PIC)?;
    let cx = Context::create();
    let module = build_module(&cx, program, prefix, opts, &tm)?;
    let buf = tm
        .write_to_memory_buffer(&module, FileType::Object)
        .map_err(|e| CodegenError::Llvm(format!("emitting the object: {}", e.to_string())))?;
    Ok(buf.as_slice().to_vec())
}

/// See [`crate::emit_ir`].
pub(crate) fn emit_ir(program: &KernelProgram, opts: &Options) -> Result<String, CodegenError> {
    let tm = target_machine(opts, RelocMode::Default)?;
    let cx = Context::create();
    let module = build_module(&cx, program, "smelt", opts, &tm)?;
    Ok(module.print_to_string().to_string())
}
