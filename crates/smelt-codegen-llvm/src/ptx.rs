//! PTX output for NVIDIA GPUs (NVPTX back end).
//!
//! Every kernel becomes one `.entry` `{prefix}_k{i}` (prefix `smelt`) with the CPU
//! signature `(ptr buffers, ptr dims, i64 start, i64 end)`, where `buffers` is a device
//! array of device pointers and `dims` a device array of `i64`. Each kernel gets one of
//! three GPU schedules (`schedule.rs`; [`gpu_launches`] gives each kernel's schedule,
//! grid and block, and [`launch_manifest`] writes them as JSON):
//!
//! - **tiled matmul** (`tile.rs`): 64 × 64 output tiles per block of 16 × 16 threads,
//!   4 × 4 accumulators per thread in registers, A and B staged through shared memory
//!   16 steps of `k` at a time, the fused epilogue run per output point;
//! - **warp per point** (`warp.rs`): one warp per output point of kernels that reduce
//!   (Softmax, LayerNorm, reductions, convolutions): the body's top-level loops are
//!   split across the 32 lanes, each reduction's partial results combined with a
//!   butterfly of `shfl.sync.bfly`;
//! - **point**: one thread per output point (elementwise chains, copies): the thread's
//!   linear index `blockIdx.x * blockDim.x + threadIdx.x` (in `i64`) is split into the
//!   loop variables (innermost fastest), threads past the end return at once.
//!
//! Buffers are accessed through global-memory pointers at their element's natural
//! alignment: every device buffer (constants included) must be aligned to its element
//! size (`cuMemAlloc` gives 256 bytes).
//!
//! `start` and `end` are not read: one launch covers the whole output.
//!
//! Bodies are the plain loop-nest statements of the CPU back end (`emit.rs`,
//! `expr.rs`): none of the CPU-only paths (blocked or packed matmuls, C math library
//! calls) is used. f32 `exp`, `erf` and `tanh` are the CPU's inline polynomials, f32
//! `log` is `lg2.approx.f32(x) * ln 2` (CUDA's `__logf`, absolute error about 2^-21
//! near 1), `sqrt`/`abs`/`max`/`min` map to PTX instructions; operations that would
//! need a math library (libdevice) on the GPU — `pow` of any float, f64 `exp`, `log`,
//! `tanh` and `erf` — are refused with [`CodegenError::Unsupported`] naming the kernel.

mod schedule;
mod tile;
mod warp;

use std::collections::HashMap;
use std::sync::OnceLock;

use inkwell::attributes::AttributeLoc;
use inkwell::context::Context;
use inkwell::module::{Linkage, Module};
use inkwell::passes::PassBuilderOptions;
use inkwell::targets::{
    CodeModel, FileType, InitializationConfig, RelocMode, Target, TargetMachine, TargetTriple,
};
use inkwell::values::{FunctionValue, IntValue, PointerValue};
use inkwell::{AddressSpace, IntPredicate, OptimizationLevel};
use smelt_ir::DType;
use smelt_lower::{BinaryOp, Expr, Index, Kernel, KernelProgram, Loop, Stmt, UnaryOp, Var};

pub use schedule::{gpu_launches, GpuLaunch, GpuSchedule, GridDim};

use crate::emit::{enum_attr, ll, llvm_type, Emitter, R};
use crate::CodegenError;

/// The NVPTX target triple.
const TRIPLE: &str = "nvptx64-nvidia-cuda";

/// LLVM's `PTX_Kernel` calling convention: marks a function as a `.entry`.
const PTX_KERNEL_CC: u32 = 71;

/// The symbol prefix of the kernels.
pub(crate) const PREFIX: &str = "smelt";

/// Initialise LLVM's NVPTX target once per process.
fn init() -> Result<(), CodegenError> {
    static INIT: OnceLock<Result<(), String>> = OnceLock::new();
    INIT.get_or_init(|| {
        Target::initialize_nvptx(&InitializationConfig::default());
        Ok(())
    })
    .clone()
    .map_err(CodegenError::Target)
}

/// An NVPTX target machine for `gpu` (`sm_80`, `sm_90`, ...).
fn target_machine(gpu: &str) -> Result<TargetMachine, CodegenError> {
    init()?;
    let triple = TargetTriple::create(TRIPLE);
    let target = Target::from_triple(&triple).map_err(|e| CodegenError::Target(e.to_string()))?;
    target
        .create_target_machine(
            &triple,
            gpu,
            "",
            OptimizationLevel::Default,
            RelocMode::Default,
            CodeModel::Default,
        )
        .ok_or_else(|| CodegenError::Target(format!("no NVPTX target machine for `{gpu}`")))
}

/// See [`crate::compile_ptx`].
pub(crate) fn compile_ptx(program: &KernelProgram, gpu: &str) -> Result<String, CodegenError> {
    if !gpu.starts_with("sm_") {
        return Err(CodegenError::Target(format!(
            "`{gpu}` is not a CUDA architecture (sm_80, sm_90, ...)"
        )));
    }
    let tm = target_machine(gpu)?;
    let cx = Context::create();
    let module = cx.create_module(&program.name);
    module.set_triple(&tm.get_triple());
    module.set_data_layout(&tm.get_target_data().get_data_layout());
    let launches = schedule::gpu_launches(program, 256);
    for (kernel, launch) in program.kernels.iter().zip(&launches) {
        emit_gpu_kernel(&cx, &module, &launch.symbol, program, kernel, launch)?;
    }
    module
        .verify()
        .map_err(|e| CodegenError::Llvm(format!("invalid module: {}", e.to_string())))?;
    let pbo = PassBuilderOptions::create();
    pbo.set_loop_unrolling(true);
    module
        .run_passes("default<O2>", &tm, pbo)
        .map_err(|e| CodegenError::Llvm(format!("optimising: {}", e.to_string())))?;
    let buf = tm
        .write_to_memory_buffer(&module, FileType::Assembly)
        .map_err(|e| CodegenError::Llvm(format!("emitting PTX: {}", e.to_string())))?;
    let text = String::from_utf8_lossy(buf.as_slice());
    Ok(text.trim_end_matches('\0').to_string())
}

/// Refuse what the GPU cannot run without a math library: `pow` of floats and f64
/// `exp`/`log`/`tanh`/`erf`.
fn check_gpu(program: &KernelProgram, kernel: &Kernel) -> R<()> {
    fn expr(program: &KernelProgram, kernel: &Kernel, e: &Expr) -> Result<(), String> {
        match e {
            Expr::Lit(..) | Expr::Local(_) | Expr::Var(_) => Ok(()),
            Expr::Load(_, idx) => index(program, kernel, idx),
            Expr::Unary(op, a) => {
                let t = e.dtype(program, kernel);
                let bad = t.is_float()
                    && match op {
                        UnaryOp::Exp | UnaryOp::Log | UnaryOp::Tanh | UnaryOp::Erf => {
                            t != DType::F32
                        }
                        _ => false,
                    };
                if bad {
                    return Err(format!(
                        "{op:?} of {t} needs a GPU math library (libdevice), not linked"
                    ));
                }
                expr(program, kernel, a)
            }
            Expr::Binary(op, a, b) => {
                let t = e.dtype(program, kernel);
                if *op == BinaryOp::Pow && t.is_float() {
                    return Err(format!(
                        "Pow of {t} needs a GPU math library (libdevice), not linked"
                    ));
                }
                expr(program, kernel, a)?;
                expr(program, kernel, b)
            }
            Expr::Cmp(_, a, b) => {
                expr(program, kernel, a)?;
                expr(program, kernel, b)
            }
            Expr::Select(c, a, b) => {
                expr(program, kernel, c)?;
                expr(program, kernel, a)?;
                expr(program, kernel, b)
            }
            Expr::Cast(_, a) => expr(program, kernel, a),
        }
    }
    fn index(program: &KernelProgram, kernel: &Kernel, idx: &Index) -> Result<(), String> {
        for (e, _) in &idx.dynamic {
            expr(program, kernel, e)?;
        }
        Ok(())
    }
    fn stmts(program: &KernelProgram, kernel: &Kernel, body: &[Stmt]) -> Result<(), String> {
        for s in body {
            match s {
                Stmt::Assign(_, e) => expr(program, kernel, e)?,
                Stmt::Store(_, idx, e) => {
                    index(program, kernel, idx)?;
                    expr(program, kernel, e)?;
                }
                Stmt::If { cond, then } => {
                    expr(program, kernel, cond)?;
                    stmts(program, kernel, then)?;
                }
                Stmt::Loop { body, .. } => stmts(program, kernel, body)?,
            }
        }
        Ok(())
    }
    stmts(program, kernel, &kernel.body).map_err(|message| CodegenError::Unsupported {
        kernel: kernel.name.clone(),
        message,
    })
}

/// Every loop variable of a statement list.
fn collect_vars(body: &[Stmt], out: &mut Vec<smelt_lower::Var>) {
    for s in body {
        match s {
            Stmt::Loop { var, body, .. } => {
                out.push(*var);
                collect_vars(body, out);
            }
            Stmt::If { then, .. } => collect_vars(then, out),
            Stmt::Assign(..) | Stmt::Store(..) => {}
        }
    }
}

/// The per-kernel emission state every GPU schedule starts from: the entry function
/// with its parameters read, buffers and dims loaded, and an [`Emitter`] positioned in
/// the entry block.
pub(crate) struct GpuFn<'a, 'ctx> {
    pub e: Emitter<'a, 'ctx>,
    pub func: FunctionValue<'ctx>,
}

impl<'a, 'ctx> GpuFn<'a, 'ctx> {
    /// Declares the entry `name` for `kernel` and emits its prologue. `extra_vars` are
    /// loop variables the schedule adds (each gets a slot like the kernel's own).
    pub(crate) fn new(
        cx: &'ctx Context,
        module: &'a Module<'ctx>,
        name: &str,
        program: &'a KernelProgram,
        kernel: &'a Kernel,
    ) -> R<GpuFn<'a, 'ctx>> {
        let unsupported = |message: String| CodegenError::Unsupported {
            kernel: kernel.name.clone(),
            message,
        };
        let mut used = kernel.reads();
        used.extend(kernel.writes());
        used.sort();
        used.dedup();
        for id in &used {
            let t = program.buffer(*id).dtype;
            if llvm_type(cx, t).is_none() {
                return Err(unsupported(format!("buffer b{} has dtype {t}", id.0)));
            }
        }
        for (i, t) in kernel.locals.iter().enumerate() {
            if llvm_type(cx, *t).is_none() {
                return Err(unsupported(format!("local t{i} has dtype {t}")));
            }
        }
        check_gpu(program, kernel)?;

        let ptr = cx.ptr_type(AddressSpace::default());
        let i64t = cx.i64_type();
        let fn_type = cx
            .void_type()
            .fn_type(&[ptr.into(), ptr.into(), i64t.into(), i64t.into()], false);
        let func = module.add_function(name, fn_type, Some(Linkage::External));
        func.set_call_conventions(PTX_KERNEL_CC);
        func.add_attribute(AttributeLoc::Function, enum_attr(cx, "nounwind"));
        for p in 0..2 {
            for a in ["readonly", "nocapture", "noundef"] {
                func.add_attribute(AttributeLoc::Param(p), enum_attr(cx, a));
            }
        }

        let b = cx.create_builder();
        let entry = cx.append_basic_block(func, "entry");
        b.position_at_end(entry);
        let param = |i: u32| {
            func.get_nth_param(i)
                .ok_or_else(|| CodegenError::Llvm(format!("{name}: no parameter {i}")))
        };
        let bufs = param(0)?.into_pointer_value();
        let dims_ptr = param(1)?.into_pointer_value();
        let start = param(2)?.into_int_value();
        let end = param(3)?.into_int_value();

        let mut vars = vec![];
        for l in &kernel.loops {
            vars.push(l.var);
        }
        collect_vars(&kernel.body, &mut vars);
        let mut var_slots = HashMap::new();
        for v in vars {
            let slot = b.build_alloca(i64t, &format!("i{}", v.0)).map_err(ll)?;
            var_slots.insert(v, slot);
        }
        let mut locals = vec![];
        for (i, t) in kernel.locals.iter().enumerate() {
            let ty = llvm_type(cx, *t).ok_or_else(|| unsupported(format!("local t{i}")))?;
            let slot = b.build_alloca(ty, &format!("t{i}")).map_err(ll)?;
            b.build_store(slot, ty.const_zero()).map_err(ll)?;
            locals.push(slot);
        }

        let mut dims = HashMap::new();
        for (j, d) in program.dims().into_iter().enumerate() {
            // SAFETY (of the GEP): `dims` has one entry per program dim.
            let p = unsafe {
                b.build_in_bounds_gep(i64t, dims_ptr, &[i64t.const_int(j as u64, false)], "")
            }
            .map_err(ll)?;
            let v = b.build_load(i64t, p, &format!("dim_{d}")).map_err(ll)?;
            dims.insert(d, v.into_int_value());
        }
        let global = cx.ptr_type(AddressSpace::from(1u16));
        let mut bases = HashMap::new();
        for id in &used {
            // SAFETY (of the GEP): `buffers` has one entry per program buffer.
            let p = unsafe {
                b.build_in_bounds_gep(ptr, bufs, &[i64t.const_int(id.0 as u64, false)], "")
            }
            .map_err(ll)?;
            let v = b.build_load(ptr, p, &format!("b{}", id.0)).map_err(ll)?;
            // Buffers live in global memory: `ld.global`/`st.global` instead of generic.
            let v = b
                .build_address_space_cast(v.into_pointer_value(), global, "")
                .map_err(ll)?;
            bases.insert(id.0, v);
        }

        let e = Emitter {
            cx,
            module,
            b,
            program,
            kernel,
            start,
            end,
            bases,
            dims,
            vars: var_slots,
            locals,
            reduce_depth: 0,
            block: None,
            expanded: HashMap::new(),
            lane: None,
            scopes: None,
            gpu: true,
        };
        Ok(GpuFn { e, func })
    }

    /// A PTX special register (`tid.x`, `ctaid.y`, ...) as an i64.
    pub(crate) fn sreg(&self, reg: &str) -> R<IntValue<'ctx>> {
        let (cx, module, b) = (self.e.cx, self.e.module, &self.e.b);
        let fname = format!("llvm.nvvm.read.ptx.sreg.{reg}");
        let i32t = cx.i32_type();
        let f = module.get_function(&fname).unwrap_or_else(|| {
            module.add_function(&fname, i32t.fn_type(&[], false), Some(Linkage::External))
        });
        let v = b
            .build_call(f, &[], reg)
            .map_err(ll)?
            .try_as_basic_value()
            .basic()
            .ok_or_else(|| CodegenError::Llvm(format!("{fname} without a value")))?
            .into_int_value();
        b.build_int_z_extend(v, cx.i64_type(), "").map_err(ll)
    }

    /// A call to a non-overloaded NVVM intrinsic such as `llvm.nvvm.barrier0` (its
    /// result, if any, is dropped).
    pub(crate) fn intrinsic(
        &self,
        name: &str,
        args: &[inkwell::values::BasicMetadataValueEnum<'ctx>],
    ) -> R<()> {
        let f = inkwell::intrinsics::Intrinsic::find(name)
            .and_then(|i| i.get_declaration(self.e.module, &[]))
            .ok_or_else(|| CodegenError::Llvm(format!("no intrinsic {name}")))?;
        self.e.b.build_call(f, args, "").map_err(ll)?;
        Ok(())
    }

    /// Stores `value` into the slot of loop variable `v`.
    pub(crate) fn set_var(&self, v: Var, value: IntValue<'ctx>) -> R<()> {
        let slot = self.e.var_slot(v)?;
        self.e.b.build_store(slot, value).map_err(ll)?;
        Ok(())
    }

    /// Splits `index` into the variables of `loops` (innermost fastest) and stores
    /// them.
    pub(crate) fn split_index(&mut self, index: IntValue<'ctx>, loops: &[Loop]) -> R<()> {
        let mut rest = index;
        for l in loops.iter().rev() {
            let x = self.e.size(&l.extent)?;
            let v = self.e.b.build_int_unsigned_rem(rest, x, "").map_err(ll)?;
            rest = self.e.b.build_int_unsigned_div(rest, x, "").map_err(ll)?;
            self.set_var(l.var, v)?;
        }
        Ok(())
    }

    /// `if cond { then }` around statements emitted by `then`.
    pub(crate) fn when(
        &mut self,
        cond: IntValue<'ctx>,
        then: &mut dyn FnMut(&mut Self) -> R<()>,
    ) -> R<()> {
        let then_bb = self.e.cx.append_basic_block(self.func, "then");
        let merge = self.e.cx.append_basic_block(self.func, "endif");
        self.e
            .b
            .build_conditional_branch(cond, then_bb, merge)
            .map_err(ll)?;
        self.e.b.position_at_end(then_bb);
        then(self)?;
        self.e.b.build_unconditional_branch(merge).map_err(ll)?;
        self.e.b.position_at_end(merge);
        Ok(())
    }

    /// `for (slot = lo; slot < hi; slot += step) { body(slot) }` (signed compare).
    pub(crate) fn strided(
        &mut self,
        slot: PointerValue<'ctx>,
        lo: IntValue<'ctx>,
        hi: IntValue<'ctx>,
        step: u64,
        body: &mut dyn FnMut(&mut Self, IntValue<'ctx>) -> R<()>,
    ) -> R<()> {
        let i64t = self.e.cx.i64_type();
        let b = &self.e.b;
        b.build_store(slot, lo).map_err(ll)?;
        let header = self.e.cx.append_basic_block(self.func, "loop");
        let body_bb = self.e.cx.append_basic_block(self.func, "body");
        let exit = self.e.cx.append_basic_block(self.func, "exit");
        b.build_unconditional_branch(header).map_err(ll)?;
        b.position_at_end(header);
        let i = b.build_load(i64t, slot, "").map_err(ll)?.into_int_value();
        let c = b
            .build_int_compare(IntPredicate::SLT, i, hi, "")
            .map_err(ll)?;
        b.build_conditional_branch(c, body_bb, exit).map_err(ll)?;
        b.position_at_end(body_bb);
        body(self, i)?;
        let b = &self.e.b;
        let i = b.build_load(i64t, slot, "").map_err(ll)?.into_int_value();
        let next = b
            .build_int_nsw_add(i, i64t.const_int(step, false), "")
            .map_err(ll)?;
        b.build_store(slot, next).map_err(ll)?;
        b.build_unconditional_branch(header).map_err(ll)?;
        b.position_at_end(exit);
        Ok(())
    }

    /// The product of the extents of `loops`, as an i64.
    pub(crate) fn extent_product(&self, loops: &[Loop]) -> R<IntValue<'ctx>> {
        let mut total = self.e.cx.i64_type().const_int(1, false);
        for l in loops {
            let x = self.e.size(&l.extent)?;
            total = self.e.b.build_int_nuw_mul(total, x, "").map_err(ll)?;
        }
        Ok(total)
    }

    /// Ends the function: returns from the current block.
    pub(crate) fn finish(self) -> R<()> {
        self.e.b.build_return(None).map_err(ll)?;
        Ok(())
    }
}

/// Emit `kernel` as the PTX entry `name` of `module` with the schedule
/// [`schedule::gpu_launches`] gives it.
fn emit_gpu_kernel<'ctx>(
    cx: &'ctx Context,
    module: &Module<'ctx>,
    name: &str,
    program: &KernelProgram,
    kernel: &Kernel,
    launch: &GpuLaunch,
) -> R<()> {
    match launch.schedule {
        GpuSchedule::TiledMatmul => tile::emit(cx, module, name, program, kernel),
        GpuSchedule::WarpPerPoint => warp::emit(cx, module, name, program, kernel),
        GpuSchedule::Point => emit_point_kernel(cx, module, name, program, kernel),
    }
}

/// One thread per output point: the thread's linear index covers the flattened output
/// loops; threads past the end return at once.
fn emit_point_kernel<'ctx>(
    cx: &'ctx Context,
    module: &Module<'ctx>,
    name: &str,
    program: &KernelProgram,
    kernel: &Kernel,
) -> R<()> {
    let mut g = GpuFn::new(cx, module, name, program, kernel)?;
    // The thread's linear index, in i64 (grids may exceed 2^31 threads).
    let ctaid = g.sreg("ctaid.x")?;
    let ntid = g.sreg("ntid.x")?;
    let tid = g.sreg("tid.x")?;
    let idx = g.e.b.build_int_nuw_mul(ctaid, ntid, "").map_err(ll)?;
    let idx = g.e.b.build_int_nuw_add(idx, tid, "idx").map_err(ll)?;
    let total = g.extent_product(&kernel.loops)?;
    let inside =
        g.e.b
            .build_int_compare(IntPredicate::ULT, idx, total, "inside")
            .map_err(ll)?;
    g.when(inside, &mut |g| {
        g.split_index(idx, &kernel.loops)?;
        g.e.stmts(&kernel.body)
    })?;
    g.finish()
}

/// See [`crate::launch_manifest`].
pub(crate) fn launch_manifest(program: &KernelProgram, block: u32) -> String {
    let block = block.max(1);
    let mut out = String::from("{\n");
    out.push_str(&format!("  \"program\": {},\n", json_str(&program.name)));
    out.push_str("  \"params\": [\"buffers\", \"dims\", \"start\", \"end\"],\n");
    let dims: Vec<String> = program.dims().iter().map(|d| json_str(d)).collect();
    out.push_str(&format!("  \"dims\": [{}],\n", dims.join(", ")));
    out.push_str("  \"kernels\": [");
    for (i, l) in schedule::gpu_launches(program, block).iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let grid: Vec<String> = l.grid.iter().map(|g| g.json()).collect();
        out.push_str(&format!(
            "\n    {{\"name\": {}, \"kernel\": {}, \"schedule\": \"{}\", \"grid\": [{}], \"block\": [{}, {}, {}], \"shared_bytes\": {}}}",
            json_str(&l.symbol),
            json_str(&l.kernel),
            l.schedule.name(),
            grid.join(", "),
            l.block[0],
            l.block[1],
            l.block[2],
            l.shared_bytes,
        ));
    }
    out.push_str("\n  ],\n");
    // The buffer table the host fills `buffers[i]` from: what each buffer is, its dtype
    // and its byte size (a formula when it has named dims); views share their root's
    // storage.
    out.push_str("  \"buffers\": [");
    for (i, b) in program.buffers.iter().enumerate() {
        let elems = schedule::product(b.shape.iter().cloned());
        let elem_bytes = u64::from(b.dtype.bits().max(8)).div_ceil(8);
        let bytes = if elems.syms.is_empty() {
            (elems.factor * elem_bytes).to_string()
        } else {
            json_str(&format!("{elem_bytes}*{elems}"))
        };
        let kind = match &b.kind {
            smelt_lower::BufferKind::Input(n) => format!("\"input\", \"index\": {n}"),
            smelt_lower::BufferKind::Output(n) => format!("\"output\", \"index\": {n}"),
            smelt_lower::BufferKind::Constant { .. } => "\"constant\"".to_string(),
            smelt_lower::BufferKind::Temp => "\"temp\"".to_string(),
            smelt_lower::BufferKind::View(of) => format!("\"view\", \"of\": {}", of.0),
        };
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!(
            "\n    {{\"buffer\": {i}, \"name\": {}, \"kind\": {kind}, \"dtype\": {}, \"bytes\": {bytes}}}",
            json_str(&b.name),
            json_str(b.dtype.name()),
        ));
    }
    out.push_str("\n  ]\n}\n");
    out
}

/// `s` as a JSON string literal.
fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
