//! Target setup and the two outputs: a JIT module in memory, an object file on disk.

use cranelift_codegen::ir::{AbiParam, Function, Signature, UserFuncName};
use cranelift_codegen::isa::OwnedTargetIsa;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_codegen::Context;
use cranelift_frontend::FunctionBuilderContext;
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{
    default_libcall_names, DataDescription, FuncId, Linkage, Module, ModuleReloc,
};
use cranelift_object::{ObjectBuilder, ObjectModule};
use smelt_lower::KernelProgram;

use crate::emit::{emit_kernel, FnKind};
use crate::error::CodegenError;

/// A compiled kernel: `(buffers, dims, start, end)`; see the crate docs.
pub type KernelFn = unsafe extern "C" fn(*const *mut u8, *const i64, i64, i64);

/// Code generation options.
#[derive(Debug, Clone)]
pub struct Options {
    /// Cranelift's `opt_level` (`none`, `speed`, `speed_and_size`).
    pub opt_level: String,
    /// Use the register-blocked matmul micro-kernel (off: matmuls run as plain loops;
    /// for differential tests of the template itself).
    pub matmul_microkernel: bool,
    /// Vectorise loops where possible.
    pub vectorize: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            opt_level: "speed".into(),
            matmul_microkernel: true,
            vectorize: true,
        }
    }
}

fn host_isa(opts: &Options, pic: bool) -> Result<OwnedTargetIsa, CodegenError> {
    let mut flags = settings::builder();
    let set = |f: &mut settings::Builder, k: &str, v: &str| {
        f.set(k, v)
            .map_err(|e| CodegenError::Target(format!("setting {k}={v}: {e}")))
    };
    set(&mut flags, "opt_level", &opts.opt_level)?;
    set(&mut flags, "use_colocated_libcalls", "false")?;
    set(&mut flags, "is_pic", if pic { "true" } else { "false" })?;
    set(&mut flags, "enable_verifier", "false")?;
    let isa = cranelift_native::builder().map_err(|e| CodegenError::Target(e.to_string()))?;
    isa.finish(settings::Flags::new(flags))
        .map_err(|e| CodegenError::Target(e.to_string()))
}

/// The host's ISA features Cranelift enabled (`has_avx2`, `has_fma`, …), for reports.
pub fn host_features() -> Vec<String> {
    match host_isa(&Options::default(), false) {
        Ok(isa) => isa
            .isa_flags()
            .iter()
            .filter(|f| f.as_bool() == Some(true))
            .map(|f| f.name.to_string())
            .collect(),
        Err(_) => vec![],
    }
}

pub(crate) fn has_flag(isa: &dyn cranelift_codegen::isa::TargetIsa, name: &str) -> bool {
    isa.isa_flags()
        .iter()
        .any(|f| f.name == name && f.as_bool() == Some(true))
}

fn kernel_signature(module: &dyn Module) -> Signature {
    let ptr = module.target_config().pointer_type();
    let mut sig = module.make_signature();
    sig.params.push(AbiParam::new(ptr));
    sig.params.push(AbiParam::new(ptr));
    sig.params
        .push(AbiParam::new(cranelift_codegen::ir::types::I64));
    sig.params
        .push(AbiParam::new(cranelift_codegen::ir::types::I64));
    sig
}

/// `(buffers, dims, m0, n0, accumulators, rows, vectors)`: a matmul epilogue.
fn epilogue_signature(module: &dyn Module) -> Signature {
    let ptr = module.target_config().pointer_type();
    let i64t = cranelift_codegen::ir::types::I64;
    let mut sig = module.make_signature();
    for t in [ptr, ptr, i64t, i64t, ptr, i64t, i64t] {
        sig.params.push(AbiParam::new(t));
    }
    sig
}

/// Define every kernel of `program` in `module` under `prefix_k{i}`.
fn define_all<M: Module>(
    module: &mut M,
    program: &KernelProgram,
    prefix: &str,
    linkage: Linkage,
    opts: &Options,
) -> Result<Vec<FuncId>, CodegenError> {
    let sig = kernel_signature(module);
    let epi_sig = epilogue_signature(module);
    let plain_opts = Options {
        opt_level: "none".into(),
        ..opts.clone()
    };
    let plain_isa = &*host_isa(&plain_opts, module.isa().flags().is_pic())?;
    let mut fctx = FunctionBuilderContext::new();
    let mut ids = vec![];
    for (i, k) in program.kernels.iter().enumerate() {
        let name = crate::kernel_symbol(prefix, i);
        let id = module
            .declare_function(&name, linkage, &sig)
            .map_err(|e| CodegenError::Module(format!("declaring {name}: {e}")))?;
        // A matmul kernel on the template gets its epilogue as a function of its own,
        // so the epilogue's constants do not crowd the accumulators out of registers.
        let epilogue = if opts.matmul_microkernel && crate::matmul::applicable(program, k) {
            let epi_name = format!("{name}_epilogue");
            let epi = module
                .declare_function(&epi_name, Linkage::Local, &epi_sig)
                .map_err(|e| CodegenError::Module(format!("declaring {epi_name}: {e}")))?;
            let mut ctx = Context::for_function(Function::with_name_signature(
                UserFuncName::user(1, i as u32),
                epi_sig.clone(),
            ));
            emit_kernel(
                module,
                &mut ctx.func,
                &mut fctx,
                program,
                k,
                opts,
                FnKind::Epilogue,
            )?;
            module.define_function(epi, &mut ctx).map_err(|e| {
                CodegenError::Module(format!("compiling the epilogue of `{}`: {e:?}", k.name))
            })?;
            Some(epi)
        } else {
            None
        };
        // Constant B operands of the template are packed once, here, into panels the
        // micro-kernel streams through.
        let packed_b = match epilogue.and(crate::matmul::pack_b(program, k)) {
            Some(bytes) => {
                let data_name = format!("{name}_packed_b");
                let data = module
                    .declare_data(&data_name, Linkage::Local, false, false)
                    .map_err(|e| CodegenError::Module(format!("declaring {data_name}: {e}")))?;
                let mut desc = DataDescription::new();
                desc.define(bytes.into_boxed_slice());
                desc.set_align(64);
                module
                    .define_data(data, &desc)
                    .map_err(|e| CodegenError::Module(format!("defining {data_name}: {e}")))?;
                Some(data)
            }
            None => None,
        };
        let mut ctx = Context::for_function(Function::with_name_signature(
            UserFuncName::user(0, i as u32),
            sig.clone(),
        ));
        emit_kernel(
            module,
            &mut ctx.func,
            &mut fctx,
            program,
            k,
            opts,
            FnKind::Kernel { epilogue, packed_b },
        )?;
        // `SMELT_DISASM=<kernel name substring>` prints the machine code of matching
        // kernels to stderr (for tuning the templates).
        let disasm = std::env::var("SMELT_DISASM")
            .ok()
            .filter(|pat| k.name.contains(pat.as_str()));
        ctx.set_disasm(disasm.is_some());
        if epilogue.is_some() {
            // The template's loop is scheduled by hand (loads next to the FMAs that use
            // them); Cranelift's optimiser would sink the FMAs below all the loads and
            // spill. So template kernels compile without it.
            define_unoptimised(module, id, &mut ctx, plain_isa)
                .map_err(|e| CodegenError::Module(format!("compiling kernel `{}`: {e}", k.name)))?;
        } else {
            module.define_function(id, &mut ctx).map_err(|e| {
                CodegenError::Module(format!("compiling kernel `{}`: {e:?}", k.name))
            })?;
        }
        if disasm.is_some() {
            if let Some(code) = ctx.compiled_code().and_then(|c| c.vcode.as_ref()) {
                eprintln!("; kernel {}\n{code}", k.name);
            }
        }
        ids.push(id);
    }
    Ok(ids)
}

/// Compile `ctx`'s function with `isa` (an unoptimising twin of the module's ISA) and
/// hand the machine code to `module`.
fn define_unoptimised<M: Module>(
    module: &mut M,
    id: FuncId,
    ctx: &mut Context,
    isa: &dyn cranelift_codegen::isa::TargetIsa,
) -> Result<(), String> {
    let (alignment, bytes, mach_relocs) = {
        let code = ctx
            .compile(isa, &mut Default::default())
            .map_err(|e| format!("{:?}", e.inner))?;
        (
            code.buffer.alignment as u64,
            code.code_buffer().to_vec(),
            code.buffer.relocs().to_vec(),
        )
    };
    let alignment = alignment
        .max(isa.function_alignment().minimum as u64)
        .max(isa.symbol_alignment());
    let relocs: Vec<ModuleReloc> = mach_relocs
        .iter()
        .map(|r| ModuleReloc::from_mach_reloc(r, &ctx.func, id))
        .collect();
    module
        .define_function_bytes(id, alignment, &bytes, &relocs)
        .map_err(|e| e.to_string())
}

extern "C" fn smelt_logf(x: f32) -> f32 {
    x.ln()
}
extern "C" fn smelt_log(x: f64) -> f64 {
    x.ln()
}
extern "C" fn smelt_powf(x: f32, y: f32) -> f32 {
    x.powf(y)
}
extern "C" fn smelt_pow(x: f64, y: f64) -> f64 {
    x.powf(y)
}
extern "C" fn smelt_exp(x: f64) -> f64 {
    x.exp()
}
extern "C" fn smelt_tanh(x: f64) -> f64 {
    x.tanh()
}
extern "C" fn smelt_erf(x: f64) -> f64 {
    smelt_lower::eval::erf(x)
}
extern "C" fn smelt_fmaf(x: f32, y: f32, z: f32) -> f32 {
    x.mul_add(y, z)
}
extern "C" fn smelt_fma(x: f64, y: f64, z: f64) -> f64 {
    x.mul_add(y, z)
}

/// The C math symbols generated code may reference, with their addresses.
fn libm_symbols() -> [(&'static str, *const u8); 9] {
    [
        ("logf", smelt_logf as *const u8),
        ("log", smelt_log as *const u8),
        ("powf", smelt_powf as *const u8),
        ("pow", smelt_pow as *const u8),
        ("exp", smelt_exp as *const u8),
        ("tanh", smelt_tanh as *const u8),
        ("erf", smelt_erf as *const u8),
        ("fmaf", smelt_fmaf as *const u8),
        ("fma", smelt_fma as *const u8),
    ]
}

/// A program compiled into executable memory. The code lives as long as this value.
pub struct JitProgram {
    // Keeps the code mapped; dropping it would free the functions.
    _module: JITModule,
    /// One function per kernel, in program order.
    pub kernels: Vec<KernelFn>,
}

// SAFETY: the JIT module's memory is immutable after finalisation and the function
// pointers are plain code addresses; calling them from several threads at once is sound
// because kernels only touch the buffers they are given.
unsafe impl Send for JitProgram {}
unsafe impl Sync for JitProgram {}

/// Compile `program` for the host, in memory.
pub fn compile_jit(program: &KernelProgram, opts: &Options) -> Result<JitProgram, CodegenError> {
    let isa = host_isa(opts, false)?;
    let mut builder = JITBuilder::with_isa(isa, default_libcall_names());
    // The math functions kernels may call, bound to Rust's implementations so the JIT
    // never depends on what the process happens to export (AOT artifacts link -lm).
    for (name, ptr) in libm_symbols() {
        builder.symbol(name, ptr);
    }
    let mut module = JITModule::new(builder);
    let ids = define_all(&mut module, program, "smelt", Linkage::Export, opts)?;
    module
        .finalize_definitions()
        .map_err(|e| CodegenError::Module(e.to_string()))?;
    let kernels = ids
        .into_iter()
        .map(|id| {
            let p = module.get_finalized_function(id);
            // SAFETY: every function was declared with `kernel_signature`, which is this
            // type's C ABI.
            unsafe { std::mem::transmute::<*const u8, KernelFn>(p) }
        })
        .collect();
    Ok(JitProgram {
        _module: module,
        kernels,
    })
}

/// Compile `program` for the host into a relocatable object file whose kernels are
/// global symbols `{prefix}_k{i}`; position-independent so it can go into a shared
/// library.
pub fn compile_object(
    program: &KernelProgram,
    prefix: &str,
    opts: &Options,
) -> Result<Vec<u8>, CodegenError> {
    let isa = host_isa(opts, true)?;
    let builder = ObjectBuilder::new(isa, prefix, default_libcall_names())
        .map_err(|e| CodegenError::Module(e.to_string()))?;
    let mut module = ObjectModule::new(builder);
    define_all(&mut module, program, prefix, Linkage::Export, opts)?;
    module
        .finish()
        .emit()
        .map_err(|e| CodegenError::Module(e.to_string()))
}
