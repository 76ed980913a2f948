//! The in-memory output: an MCJIT execution engine that owns the compiled kernels.

use std::mem::ManuallyDrop;

use inkwell::context::Context;
use inkwell::execution_engine::ExecutionEngine;
use inkwell::module::{Linkage, Module};
use inkwell::targets::RelocMode;
use smelt_lower::KernelProgram;

use crate::{CodegenError, KernelFn, Options};

/// A program compiled into executable memory. The code lives as long as this value.
pub struct JitProgram {
    /// One function per kernel, in program order.
    pub kernels: Vec<KernelFn>,
    // Drop order matters and is done by hand in `Drop`: the engine (which owns the
    // module and the machine code) before the context both borrow.
    engine: ManuallyDrop<ExecutionEngine<'static>>,
    module: ManuallyDrop<Module<'static>>,
    context: ManuallyDrop<Box<Context>>,
}

impl Drop for JitProgram {
    fn drop(&mut self) {
        // SAFETY: each field is dropped exactly once, here, and never used afterwards.
        // The engine and the module (which the engine owns; inkwell disposes it with the
        // engine) borrow `context`, so they go first; the context, kept at a fixed heap
        // address by its `Box`, goes last.
        unsafe {
            ManuallyDrop::drop(&mut self.engine);
            ManuallyDrop::drop(&mut self.module);
            ManuallyDrop::drop(&mut self.context);
        }
    }
}

// SAFETY: after `compile` returns, nothing touches the LLVM objects except `Drop`, which
// runs once on whichever single thread owns the value (every inkwell handle, including
// the reference-counted engine handles shared between `engine` and `module`, lives
// inside this value and moves with it). The machine code is immutable and the kernel
// pointers are plain code addresses: calling them from several threads at once is
// sound because kernels only touch the buffers they are given.
unsafe impl Send for JitProgram {}
unsafe impl Sync for JitProgram {}

extern "C" fn smelt_expf(x: f32) -> f32 {
    x.exp()
}
extern "C" fn smelt_exp(x: f64) -> f64 {
    x.exp()
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
extern "C" fn smelt_tanhf(x: f32) -> f32 {
    (x as f64).tanh() as f32
}
extern "C" fn smelt_tanh(x: f64) -> f64 {
    x.tanh()
}
extern "C" fn smelt_erff(x: f32) -> f32 {
    smelt_lower::eval::erf(x as f64) as f32
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
extern "C" fn smelt_sqrtf(x: f32) -> f32 {
    x.sqrt()
}
extern "C" fn smelt_sqrt(x: f64) -> f64 {
    x.sqrt()
}
extern "C" fn smelt_exp2f(x: f32) -> f32 {
    x.exp2()
}
extern "C" fn smelt_exp2(x: f64) -> f64 {
    x.exp2()
}

/// The C math symbols generated code may reference (directly, or through intrinsics
/// the code generator lowers to calls), with their arity, whether they are `f32`, and
/// the Rust implementation the JIT binds them to.
fn libm_symbols() -> [(&'static str, usize, bool, usize); 16] {
    [
        ("expf", 1, true, smelt_expf as *const () as usize),
        ("exp", 1, false, smelt_exp as *const () as usize),
        ("logf", 1, true, smelt_logf as *const () as usize),
        ("log", 1, false, smelt_log as *const () as usize),
        ("powf", 2, true, smelt_powf as *const () as usize),
        ("pow", 2, false, smelt_pow as *const () as usize),
        ("tanhf", 1, true, smelt_tanhf as *const () as usize),
        ("tanh", 1, false, smelt_tanh as *const () as usize),
        ("erff", 1, true, smelt_erff as *const () as usize),
        ("erf", 1, false, smelt_erf as *const () as usize),
        ("fmaf", 3, true, smelt_fmaf as *const () as usize),
        ("fma", 3, false, smelt_fma as *const () as usize),
        ("sqrtf", 1, true, smelt_sqrtf as *const () as usize),
        ("sqrt", 1, false, smelt_sqrt as *const () as usize),
        ("exp2f", 1, true, smelt_exp2f as *const () as usize),
        ("exp2", 1, false, smelt_exp2 as *const () as usize),
    ]
}

/// See [`crate::compile_jit`].
pub(crate) fn compile(program: &KernelProgram, opts: &Options) -> Result<JitProgram, CodegenError> {
    let tm = crate::target::target_machine(opts, RelocMode::Default)?;
    let context = Box::new(Context::create());
    // SAFETY: the context lives on the heap at a fixed address until `JitProgram::drop`,
    // which drops everything borrowing it (engine, module) first. The `'static` borrow
    // never escapes this module: it is stored only in the `JitProgram` that owns the box.
    let cx: &'static Context = unsafe { &*(&*context as *const Context) };
    let module = crate::target::build_module(cx, program, "smelt", opts, &tm)?;
    // Declare every math symbol (after optimisation, so unused ones survive) so that the
    // engine can bind each name to its Rust implementation: calls the code generator
    // makes while lowering intrinsics (`llvm.exp.f32` -> `expf`) resolve by name too.
    let f32t = cx.f32_type();
    let f64t = cx.f64_type();
    let mut decls = vec![];
    for (name, arity, single, addr) in libm_symbols() {
        let f = module.get_function(name).unwrap_or_else(|| {
            let ty = if single {
                f32t.fn_type(&vec![f32t.into(); arity], false)
            } else {
                f64t.fn_type(&vec![f64t.into(); arity], false)
            };
            module.add_function(name, ty, Some(Linkage::External))
        });
        decls.push((f, addr));
    }
    let engine = module
        .create_jit_execution_engine(crate::target::level(opts))
        .map_err(|e| CodegenError::Llvm(format!("creating the JIT: {}", e.to_string())))?;
    for (f, addr) in &decls {
        engine.add_global_mapping(f, *addr);
    }
    let mut kernels = Vec::with_capacity(program.kernels.len());
    for i in 0..program.kernels.len() {
        let name = crate::kernel_symbol("smelt", i);
        let addr = engine
            .get_function_address(&name)
            .map_err(|e| CodegenError::Llvm(format!("finding `{name}`: {e:?}")))?;
        // SAFETY: every kernel function was emitted with the signature
        // `void(ptr, ptr, i64, i64)` and the C calling convention, which is `KernelFn`.
        kernels.push(unsafe { std::mem::transmute::<usize, KernelFn>(addr) });
    }
    Ok(JitProgram {
        kernels,
        engine: ManuallyDrop::new(engine),
        module: ManuallyDrop::new(module),
        context: ManuallyDrop::new(context),
    })
}
