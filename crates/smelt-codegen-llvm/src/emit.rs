//! One kernel → one LLVM function: the loop nest, statements and scalar expressions.
//!
//! Loop counters and locals live in entry-block allocas (promoted to SSA by the
//! optimiser); buffer base pointers and dims are loaded once in the entry block.

use std::collections::HashMap;

use inkwell::attributes::{Attribute, AttributeLoc};
use inkwell::builder::{Builder, BuilderError};
use inkwell::context::Context;
use inkwell::intrinsics::Intrinsic;
use inkwell::module::{Linkage, Module};
use inkwell::types::BasicTypeEnum;
use inkwell::values::{
    BasicMetadataValueEnum, BasicValue, BasicValueEnum, FastMathFlags, FloatValue, FunctionValue,
    IntValue, PointerValue,
};
use inkwell::{AddressSpace, FloatPredicate, IntPredicate};
use smelt_ir::DType;
use smelt_lower::{
    BinaryOp, BufferId, BufferKind, CmpOp, Expr, Index, Kernel, KernelProgram, Local, Size, Stmt,
    UnaryOp, Var,
};

use crate::block::{Plan, BLOCK};
use crate::CodegenError;

type R<T> = Result<T, CodegenError>;

fn ll(e: BuilderError) -> CodegenError {
    CodegenError::Llvm(format!("builder: {e}"))
}

/// The LLVM type holding a value of `t` in registers and memory.
fn llvm_type(cx: &Context, t: DType) -> Option<BasicTypeEnum<'_>> {
    Some(match t {
        DType::F32 => cx.f32_type().into(),
        DType::F64 => cx.f64_type().into(),
        DType::I64 | DType::U64 => cx.i64_type().into(),
        DType::I32 | DType::U32 => cx.i32_type().into(),
        DType::I16 | DType::U16 => cx.i16_type().into(),
        DType::I8 | DType::U8 | DType::Bool => cx.i8_type().into(),
        _ => return None,
    })
}

/// Bytes per element of `t` (only for dtypes [`llvm_type`] accepts).
fn elem_bytes(t: DType) -> u32 {
    match t {
        DType::F64 | DType::I64 | DType::U64 => 8,
        DType::F32 | DType::I32 | DType::U32 => 4,
        DType::I16 | DType::U16 => 2,
        _ => 1,
    }
}

/// Every loop variable of a statement list.
fn collect_vars(body: &[Stmt], out: &mut Vec<Var>) {
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

/// Emit `kernel` as the function `name` of `module`, for `cpu` with `features`.
pub(crate) fn emit_kernel<'ctx>(
    cx: &'ctx Context,
    module: &Module<'ctx>,
    name: &str,
    program: &KernelProgram,
    kernel: &Kernel,
    cpu: &str,
    features: &str,
) -> R<()> {
    let unsupported = |message: String| CodegenError::Unsupported {
        kernel: kernel.name.clone(),
        message,
    };
    // Refuse unsupported dtypes up front, so no kernel is half emitted.
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

    let ptr = cx.ptr_type(AddressSpace::default());
    let i64t = cx.i64_type();
    let fn_type = cx
        .void_type()
        .fn_type(&[ptr.into(), ptr.into(), i64t.into(), i64t.into()], false);
    let func = module.add_function(name, fn_type, Some(Linkage::External));
    func.add_attribute(
        AttributeLoc::Function,
        cx.create_string_attribute("target-cpu", cpu),
    );
    func.add_attribute(
        AttributeLoc::Function,
        cx.create_string_attribute("target-features", features),
    );
    func.add_attribute(AttributeLoc::Function, enum_attr(cx, "nounwind"));
    // The buffer and dim arrays are only read, and never escape.
    for p in 0..2 {
        for a in ["readonly", "nocapture", "noundef"] {
            func.add_attribute(AttributeLoc::Param(p), enum_attr(cx, a));
        }
    }

    let b = cx.create_builder();
    let entry = cx.append_basic_block(func, "entry");
    b.position_at_end(entry);
    let param = |i: u32| func.get_nth_param(i).expect("kernel parameter");
    let bufs = param(0).into_pointer_value();
    let dims_ptr = param(1).into_pointer_value();
    let start = param(2).into_int_value();
    let end = param(3).into_int_value();

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
        let ty = llvm_type(cx, *t).expect("checked above");
        let slot = b.build_alloca(ty, &format!("t{i}")).map_err(ll)?;
        b.build_store(slot, ty.const_zero()).map_err(ll)?;
        locals.push(slot);
    }
    let mut block = None;
    let mut expanded = HashMap::new();
    if let Some((plan, locals_to_expand)) = crate::block::plan(program, kernel) {
        let outer = b.build_alloca(i64t, "block").map_err(ll)?;
        let point = b.build_alloca(i64t, "point").map_err(ll)?;
        for l in locals_to_expand {
            let ty = llvm_type(cx, kernel.locals[l.0 as usize]).expect("checked above");
            let n = i64t.const_int(BLOCK, false);
            let arr = b
                .build_array_alloca(ty, n, &format!("t{}_block", l.0))
                .map_err(ll)?;
            expanded.insert(l, (arr, ty));
        }
        block = Some((plan, outer, point));
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
    let mut bases = HashMap::new();
    for id in &used {
        // SAFETY (of the GEP): `buffers` has one entry per program buffer.
        let p =
            unsafe { b.build_in_bounds_gep(ptr, bufs, &[i64t.const_int(id.0 as u64, false)], "") }
                .map_err(ll)?;
        let v = b.build_load(ptr, p, &format!("b{}", id.0)).map_err(ll)?;
        bases.insert(id.0, v.into_pointer_value());
    }

    let mut e = Emitter {
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
        block,
        expanded,
        lane: None,
    };
    e.output_loops(0)?;
    e.b.build_return(None).map_err(ll)?;
    Ok(())
}

fn enum_attr(cx: &Context, name: &str) -> Attribute {
    cx.create_enum_attribute(Attribute::get_named_enum_kind_id(name), 0)
}

struct Emitter<'a, 'ctx> {
    cx: &'ctx Context,
    module: &'a Module<'ctx>,
    b: Builder<'ctx>,
    program: &'a KernelProgram,
    kernel: &'a Kernel,
    start: IntValue<'ctx>,
    end: IntValue<'ctx>,
    bases: HashMap<u32, PointerValue<'ctx>>,
    dims: HashMap<String, IntValue<'ctx>>,
    vars: HashMap<Var, PointerValue<'ctx>>,
    locals: Vec<PointerValue<'ctx>>,
    /// How many reduce loops enclose the statement being emitted.
    reduce_depth: usize,
    /// The blocking plan of the innermost output loop, with its counter slots (block,
    /// point in block); see [`crate::block`].
    block: Option<(Plan<'a>, PointerValue<'ctx>, PointerValue<'ctx>)>,
    /// Locals expanded to one slot per point of a block: the array and element type.
    expanded: HashMap<Local, (PointerValue<'ctx>, BasicTypeEnum<'ctx>)>,
    /// The point of the block being emitted, while emitting a blocked body.
    lane: Option<IntValue<'ctx>>,
}

impl<'ctx> Emitter<'_, 'ctx> {
    fn unsupported(&self, message: impl Into<String>) -> CodegenError {
        CodegenError::Unsupported {
            kernel: self.kernel.name.clone(),
            message: message.into(),
        }
    }

    fn dtype(&self, e: &Expr) -> DType {
        e.dtype(self.program, self.kernel)
    }

    fn ty(&self, t: DType) -> R<BasicTypeEnum<'ctx>> {
        llvm_type(self.cx, t).ok_or_else(|| self.unsupported(format!("a value of dtype {t}")))
    }

    fn function(&self) -> FunctionValue<'ctx> {
        self.b
            .get_insert_block()
            .and_then(|bb| bb.get_parent())
            .expect("builder is positioned in a function")
    }

    // ---------------------------------------------------------------- loops

    /// A size as an i64 (dims were loaded in the entry block).
    fn size(&self, s: &Size) -> R<IntValue<'ctx>> {
        let i64t = self.cx.i64_type();
        let mut v = i64t.const_int(s.factor, false);
        for sym in &s.syms {
            let d = *self
                .dims
                .get(sym)
                .ok_or_else(|| self.unsupported(format!("unknown dim ?{sym}")))?;
            v = self.b.build_int_nsw_mul(v, d, "").map_err(ll)?;
        }
        Ok(v)
    }

    fn var_slot(&self, v: Var) -> R<PointerValue<'ctx>> {
        self.vars
            .get(&v)
            .copied()
            .ok_or_else(|| self.unsupported(format!("i{} is not a loop variable", v.0)))
    }

    fn var_value(&self, v: Var) -> R<IntValue<'ctx>> {
        let slot = self.var_slot(v)?;
        Ok(self
            .b
            .build_load(self.cx.i64_type(), slot, "")
            .map_err(ll)?
            .into_int_value())
    }

    /// `for var in lo..hi { body }`.
    fn for_range(
        &mut self,
        var: Var,
        lo: IntValue<'ctx>,
        hi: IntValue<'ctx>,
        body: &mut dyn FnMut(&mut Self) -> R<()>,
    ) -> R<()> {
        let slot = self.var_slot(var)?;
        self.counted(slot, lo, hi, &mut |e, _| body(e))
    }

    /// `for (slot = lo; slot < hi; slot++) { body(slot) }`.
    fn counted(
        &mut self,
        slot: PointerValue<'ctx>,
        lo: IntValue<'ctx>,
        hi: IntValue<'ctx>,
        body: &mut dyn FnMut(&mut Self, IntValue<'ctx>) -> R<()>,
    ) -> R<()> {
        let i64t = self.cx.i64_type();
        self.b.build_store(slot, lo).map_err(ll)?;
        let f = self.function();
        let header = self.cx.append_basic_block(f, "loop");
        let body_bb = self.cx.append_basic_block(f, "body");
        let exit = self.cx.append_basic_block(f, "exit");
        self.b.build_unconditional_branch(header).map_err(ll)?;
        self.b.position_at_end(header);
        let i = self.b.build_load(i64t, slot, "").map_err(ll)?.into_int_value();
        let c = self
            .b
            .build_int_compare(IntPredicate::SLT, i, hi, "")
            .map_err(ll)?;
        self.b
            .build_conditional_branch(c, body_bb, exit)
            .map_err(ll)?;
        self.b.position_at_end(body_bb);
        body(self, i)?;
        let i = self.b.build_load(i64t, slot, "").map_err(ll)?.into_int_value();
        let next = self
            .b
            .build_int_nsw_add(i, i64t.const_int(1, false), "")
            .map_err(ll)?;
        self.b.build_store(slot, next).map_err(ll)?;
        self.b.build_unconditional_branch(header).map_err(ll)?;
        self.b.position_at_end(exit);
        Ok(())
    }

    /// The range an output loop covers in this call: `[start, end)` on the parallel
    /// axis, the whole extent elsewhere.
    fn loop_bounds(&self, depth: usize) -> R<(IntValue<'ctx>, IntValue<'ctx>)> {
        if self.kernel.schedule.parallel_axis == Some(depth) {
            Ok((self.start, self.end))
        } else {
            let l = &self.kernel.loops[depth];
            Ok((self.cx.i64_type().const_zero(), self.size(&l.extent)?))
        }
    }

    /// The innermost output loop under a blocking plan: full blocks of [`BLOCK`]
    /// points, then one partial block.
    fn blocked_loop(&mut self, depth: usize) -> R<()> {
        let (plan, outer, _) = self.block.expect("a blocking plan");
        let i64t = self.cx.i64_type();
        let (lo, hi) = self.loop_bounds(depth)?;
        let nb = i64t.const_int(BLOCK, false);
        let span = self.b.build_int_sub(hi, lo, "").map_err(ll)?;
        let full = self.b.build_int_signed_div(span, nb, "").map_err(ll)?;
        self.counted(outer, i64t.const_zero(), full, &mut |e, blk| {
            let off = e.b.build_int_nsw_mul(blk, nb, "").map_err(ll)?;
            let v0 = e.b.build_int_nsw_add(lo, off, "").map_err(ll)?;
            e.block_body(depth, plan, v0, nb)
        })?;
        let done = self.b.build_int_nsw_mul(full, nb, "").map_err(ll)?;
        let v0 = self.b.build_int_nsw_add(lo, done, "").map_err(ll)?;
        let rest = self.b.build_int_sub(hi, v0, "").map_err(ll)?;
        let any = self
            .b
            .build_int_compare(IntPredicate::SGT, rest, i64t.const_zero(), "")
            .map_err(ll)?;
        let f = self.function();
        let tail = self.cx.append_basic_block(f, "tail");
        let merge = self.cx.append_basic_block(f, "tail_done");
        self.b
            .build_conditional_branch(any, tail, merge)
            .map_err(ll)?;
        self.b.position_at_end(tail);
        self.block_body(depth, plan, v0, rest)?;
        self.b.build_unconditional_branch(merge).map_err(ll)?;
        self.b.position_at_end(merge);
        Ok(())
    }

    /// One block of `n` output points from `v0`: the prefix for every point, the reduce
    /// loop around all points, then the epilogue for every point.
    fn block_body(
        &mut self,
        depth: usize,
        plan: Plan<'_>,
        v0: IntValue<'ctx>,
        n: IntValue<'ctx>,
    ) -> R<()> {
        let var = self.kernel.loops[depth].var;
        self.points(var, v0, n, plan.prefix)?;
        let hi = self.size(plan.extent)?;
        self.reduce_depth += 1;
        let r = self.for_range(plan.red_var, self.cx.i64_type().const_zero(), hi, &mut |e| {
            e.points(var, v0, n, plan.reduce_body)
        });
        self.reduce_depth -= 1;
        r?;
        self.points(var, v0, n, plan.epilogue)
    }

    /// `body` for output points `v0 .. v0 + n` of `var`, with expanded locals indexed by
    /// the point.
    fn points(
        &mut self,
        var: Var,
        v0: IntValue<'ctx>,
        n: IntValue<'ctx>,
        body: &[Stmt],
    ) -> R<()> {
        let (_, _, point) = self.block.expect("a blocking plan");
        let slot = self.var_slot(var)?;
        self.counted(point, self.cx.i64_type().const_zero(), n, &mut |e, j| {
            let v = e.b.build_int_nsw_add(v0, j, "").map_err(ll)?;
            e.b.build_store(slot, v).map_err(ll)?;
            e.lane = Some(j);
            let r = e.stmts(body);
            e.lane = None;
            r
        })
    }

    /// Where local `l` lives: its own slot, or its point's slot of a block array.
    fn local_ptr(&self, l: Local) -> R<PointerValue<'ctx>> {
        if let (Some(j), Some((arr, ty))) = (self.lane, self.expanded.get(&l)) {
            // SAFETY (of the GEP): `j` < BLOCK, the array's length.
            return unsafe { self.b.build_in_bounds_gep(*ty, *arr, &[j], "") }.map_err(ll);
        }
        Ok(self.locals[l.0 as usize])
    }

    /// The output loops from `depth` inwards, then the body. The parallel axis runs
    /// over `[start, end)`, every other loop over its full extent.
    fn output_loops(&mut self, depth: usize) -> R<()> {
        let kernel = self.kernel;
        if depth == kernel.loops.len() {
            return self.stmts(&kernel.body);
        }
        if depth + 1 == kernel.loops.len() && self.block.is_some() {
            return self.blocked_loop(depth);
        }
        let (lo, hi) = self.loop_bounds(depth)?;
        self.for_range(kernel.loops[depth].var, lo, hi, &mut |e| {
            e.output_loops(depth + 1)
        })
    }

    // ---------------------------------------------------------------- statements

    fn stmts(&mut self, body: &[Stmt]) -> R<()> {
        for s in body {
            self.stmt(s)?;
        }
        Ok(())
    }

    fn stmt(&mut self, s: &Stmt) -> R<()> {
        match s {
            Stmt::Assign(l, e) => {
                let to = self.kernel.locals[l.0 as usize];
                let v = if self.reduce_depth > 0 && to.is_float() && is_accumulation(*l, e) {
                    self.accumulate(e)?
                } else {
                    self.scalar(e)?
                };
                let v = self.convert(v, self.dtype(e), to)?;
                let p = self.local_ptr(*l)?;
                self.b.build_store(p, v).map_err(ll)?;
            }
            Stmt::Store(b, idx, e) => {
                let v = self.scalar(e)?;
                let t = self.program.buffer(*b).dtype;
                let v = self.convert(v, self.dtype(e), t)?;
                let addr = self.address(*b, idx)?;
                let st = self.b.build_store(addr, v).map_err(ll)?;
                st.set_alignment(self.align(*b))
                    .map_err(|e| CodegenError::Llvm(e.to_string()))?;
            }
            Stmt::If { cond, then } => {
                let c = self.scalar(cond)?;
                let c = self.truthy(c)?;
                let f = self.function();
                let then_bb = self.cx.append_basic_block(f, "then");
                let merge = self.cx.append_basic_block(f, "endif");
                self.b
                    .build_conditional_branch(c, then_bb, merge)
                    .map_err(ll)?;
                self.b.position_at_end(then_bb);
                self.stmts(then)?;
                self.b.build_unconditional_branch(merge).map_err(ll)?;
                self.b.position_at_end(merge);
            }
            Stmt::Loop {
                var,
                extent,
                reduce,
                body,
            } => {
                let hi = self.size(extent)?;
                let zero = self.cx.i64_type().const_zero();
                if *reduce {
                    self.reduce_depth += 1;
                }
                let r = self.for_range(*var, zero, hi, &mut |e| e.stmts(body));
                if *reduce {
                    self.reduce_depth -= 1;
                }
                r?;
            }
        }
        Ok(())
    }

    /// The accumulation `t op e` of a reduce loop (`t` float): `op` carries `reassoc`
    /// and `contract` so the loop vectorises with partial accumulators, and the float
    /// arithmetic of `e` carries `contract` (multiply-adds may fuse).
    fn accumulate(&mut self, e: &Expr) -> R<BasicValueEnum<'ctx>> {
        let v = self.scalar(e)?;
        if let Some(inst) = v.as_instruction_value() {
            let fmf = FastMathFlags::AllowReassoc | FastMathFlags::AllowContract;
            if inst.can_use_fast_math_flags() {
                inst.set_fast_math_flags(fmf)
                    .map_err(|e| CodegenError::Llvm(e.to_string()))?;
            }
        }
        Ok(v)
    }

    /// Alignment of accesses to `b`: constants and caller inputs may sit at any byte
    /// address (constants point into the model file), buffers the runtime allocates are
    /// aligned to their element size.
    fn align(&self, b: BufferId) -> u32 {
        let root = self.program.root(b);
        match self.program.buffer(root).kind {
            BufferKind::Constant { .. } | BufferKind::Input(_) => 1,
            _ => elem_bytes(self.program.buffer(b).dtype),
        }
    }

    /// The address of element `idx` of buffer `b`.
    fn address(&mut self, b: BufferId, idx: &Index) -> R<PointerValue<'ctx>> {
        let i64t = self.cx.i64_type();
        let mut off = i64t.const_int(idx.offset as u64, true);
        for (v, s) in &idx.terms {
            let x = self.var_value(*v)?;
            let st = self.size(s)?;
            let t = self.b.build_int_nsw_mul(x, st, "").map_err(ll)?;
            off = self.b.build_int_nsw_add(off, t, "").map_err(ll)?;
        }
        for (e, s) in &idx.dynamic {
            let x = self.scalar(e)?;
            let x = self.widen_to_i64(x, self.dtype(e))?;
            let st = self.size(s)?;
            let t = self.b.build_int_nsw_mul(x, st, "").map_err(ll)?;
            off = self.b.build_int_nsw_add(off, t, "").map_err(ll)?;
        }
        let base = *self
            .bases
            .get(&b.0)
            .ok_or_else(|| self.unsupported(format!("buffer b{} has no base", b.0)))?;
        let ty = self.ty(self.program.buffer(b).dtype)?;
        // SAFETY (of the GEP): kernels only index inside their buffers (lowering clamps
        // data-dependent indices and guards padded offsets with an `If`).
        unsafe { self.b.build_in_bounds_gep(ty, base, &[off], "") }.map_err(ll)
    }

    fn widen_to_i64(&mut self, x: BasicValueEnum<'ctx>, t: DType) -> R<IntValue<'ctx>> {
        let i64t = self.cx.i64_type();
        if t.is_float() {
            let v =
                self.call_intrinsic("llvm.fptosi.sat", &[i64t.into(), x.get_type()], &[x.into()])?;
            return Ok(v.into_int_value());
        }
        let x = x.into_int_value();
        if x.get_type().get_bit_width() == 64 {
            Ok(x)
        } else if t.is_signed_int() {
            self.b.build_int_s_extend(x, i64t, "").map_err(ll)
        } else {
            self.b.build_int_z_extend(x, i64t, "").map_err(ll)
        }
    }

    // ---------------------------------------------------------------- calls

    fn call_intrinsic(
        &self,
        name: &str,
        types: &[BasicTypeEnum<'ctx>],
        args: &[BasicMetadataValueEnum<'ctx>],
    ) -> R<BasicValueEnum<'ctx>> {
        let f = Intrinsic::find(name)
            .and_then(|i| i.get_declaration(self.module, types))
            .ok_or_else(|| CodegenError::Llvm(format!("no intrinsic {name} for {types:?}")))?;
        self.call(f, args)
    }

    fn call(
        &self,
        f: FunctionValue<'ctx>,
        args: &[BasicMetadataValueEnum<'ctx>],
    ) -> R<BasicValueEnum<'ctx>> {
        let c = self.b.build_call(f, args, "").map_err(ll)?;
        c.try_as_basic_value()
            .basic()
            .ok_or_else(|| CodegenError::Llvm("call without a value".into()))
    }

    /// A call to the C math function `name` (`f32` when `x` is).
    fn libm(&self, name: &str, args: &[FloatValue<'ctx>]) -> R<BasicValueEnum<'ctx>> {
        let ty = args[0].get_type();
        let f = self.module.get_function(name).unwrap_or_else(|| {
            let params: Vec<_> = args.iter().map(|_| ty.into()).collect();
            let f =
                self.module
                    .add_function(name, ty.fn_type(&params, false), Some(Linkage::External));
            f.add_attribute(AttributeLoc::Function, enum_attr(self.cx, "nounwind"));
            f
        });
        let args: Vec<BasicMetadataValueEnum> = args.iter().map(|a| (*a).into()).collect();
        self.call(f, &args)
    }

    // ---------------------------------------------------------------- expressions

    /// A scalar expression.
    fn scalar(&mut self, e: &Expr) -> R<BasicValueEnum<'ctx>> {
        let t = self.dtype(e);
        Ok(match e {
            Expr::Lit(v, t) => {
                let ty = self.ty(*t)?;
                if t.is_float() {
                    ty.into_float_type().const_float(*v).into()
                } else {
                    ty.into_int_type().const_int(*v as i64 as u64, true).into()
                }
            }
            Expr::Load(b, idx) => {
                let ty = self.ty(self.program.buffer(*b).dtype)?;
                let addr = self.address(*b, idx)?;
                let v = self.b.build_load(ty, addr, "").map_err(ll)?;
                if let Some(i) = v.as_instruction_value() {
                    i.set_alignment(self.align(*b))
                        .map_err(|e| CodegenError::Llvm(e.to_string()))?;
                }
                v
            }
            Expr::Local(l) => {
                let ty = self.ty(self.kernel.locals[l.0 as usize])?;
                let p = self.local_ptr(*l)?;
                self.b.build_load(ty, p, "").map_err(ll)?
            }
            Expr::Var(v) => self.var_value(*v)?.into(),
            Expr::Unary(op, a) => {
                let x = self.scalar(a)?;
                self.unary(*op, x, t)?
            }
            Expr::Binary(op, a, b2) => {
                let x = self.scalar(a)?;
                let y = self.scalar(b2)?;
                let y = self.convert(y, self.dtype(b2), t)?;
                self.binary(*op, x, y, t)?
            }
            Expr::Cmp(op, a, b2) => {
                let at = self.dtype(a);
                let x = self.scalar(a)?;
                let y = self.scalar(b2)?;
                let y = self.convert(y, self.dtype(b2), at)?;
                let c = self.compare(*op, x, y, at)?;
                self.bool_value(c)?
            }
            Expr::Select(c, a, b2) => {
                let c = self.scalar(c)?;
                let c = self.truthy(c)?;
                let x = self.scalar(a)?;
                let y = self.scalar(b2)?;
                let y = self.convert(y, self.dtype(b2), t)?;
                self.b.build_select(c, x, y, "").map_err(ll)?
            }
            Expr::Cast(to, a) => {
                let from = self.dtype(a);
                let x = self.scalar(a)?;
                self.cast(x, from, *to)?
            }
        })
    }

    /// An `i1` from a `bool` (or any integer): `x != 0`.
    fn truthy(&self, x: BasicValueEnum<'ctx>) -> R<IntValue<'ctx>> {
        let x = x.into_int_value();
        if x.get_type().get_bit_width() == 1 {
            return Ok(x);
        }
        self.b
            .build_int_compare(IntPredicate::NE, x, x.get_type().const_zero(), "")
            .map_err(ll)
    }

    /// A `bool` (i8 0/1) from an `i1`.
    fn bool_value(&self, c: IntValue<'ctx>) -> R<BasicValueEnum<'ctx>> {
        Ok(self
            .b
            .build_int_z_extend(c, self.cx.i8_type(), "")
            .map_err(ll)?
            .into())
    }

    fn compare(
        &self,
        op: CmpOp,
        x: BasicValueEnum<'ctx>,
        y: BasicValueEnum<'ctx>,
        t: DType,
    ) -> R<IntValue<'ctx>> {
        if t.is_float() {
            let p = match op {
                CmpOp::Eq => FloatPredicate::OEQ,
                CmpOp::Lt => FloatPredicate::OLT,
                CmpOp::Le => FloatPredicate::OLE,
                CmpOp::Gt => FloatPredicate::OGT,
                CmpOp::Ge => FloatPredicate::OGE,
            };
            self.b
                .build_float_compare(p, x.into_float_value(), y.into_float_value(), "")
                .map_err(ll)
        } else {
            let signed = t.is_signed_int();
            let p = match (op, signed) {
                (CmpOp::Eq, _) => IntPredicate::EQ,
                (CmpOp::Lt, true) => IntPredicate::SLT,
                (CmpOp::Le, true) => IntPredicate::SLE,
                (CmpOp::Gt, true) => IntPredicate::SGT,
                (CmpOp::Ge, true) => IntPredicate::SGE,
                (CmpOp::Lt, false) => IntPredicate::ULT,
                (CmpOp::Le, false) => IntPredicate::ULE,
                (CmpOp::Gt, false) => IntPredicate::UGT,
                (CmpOp::Ge, false) => IntPredicate::UGE,
            };
            self.b
                .build_int_compare(p, x.into_int_value(), y.into_int_value(), "")
                .map_err(ll)
        }
    }

    /// Sets `contract` on a float instruction emitted inside a reduce loop.
    fn contract(&self, v: BasicValueEnum<'ctx>) -> R<BasicValueEnum<'ctx>> {
        if self.reduce_depth > 0 {
            if let Some(i) = v.as_instruction_value() {
                if i.can_use_fast_math_flags() {
                    i.set_fast_math_flags(FastMathFlags::AllowContract)
                        .map_err(|e| CodegenError::Llvm(e.to_string()))?;
                }
            }
        }
        Ok(v)
    }

    fn unary(&mut self, op: UnaryOp, x: BasicValueEnum<'ctx>, t: DType) -> R<BasicValueEnum<'ctx>> {
        if t.is_float() {
            let f = x.into_float_value();
            let ty = f.get_type();
            let single = t == DType::F32;
            let intr = |name: &str| self.call_intrinsic(name, &[ty.into()], &[f.into()]);
            return match op {
                UnaryOp::Neg => Ok(self.b.build_float_neg(f, "").map_err(ll)?.into()),
                UnaryOp::Abs => intr("llvm.fabs"),
                UnaryOp::Sqrt => intr("llvm.sqrt"),
                UnaryOp::Exp => intr("llvm.exp"),
                UnaryOp::Log => intr("llvm.log"),
                UnaryOp::Tanh => self.libm(if single { "tanhf" } else { "tanh" }, &[f]),
                UnaryOp::Erf => self.libm(if single { "erff" } else { "erf" }, &[f]),
                UnaryOp::Not => Err(self.unsupported("not of a float")),
            };
        }
        let i = x.into_int_value();
        let ty = i.get_type();
        match op {
            UnaryOp::Neg => Ok(self.b.build_int_neg(i, "").map_err(ll)?.into()),
            UnaryOp::Abs => self.call_intrinsic(
                "llvm.abs",
                &[ty.into()],
                &[i.into(), self.cx.bool_type().const_zero().into()],
            ),
            UnaryOp::Not => {
                let z = self
                    .b
                    .build_int_compare(IntPredicate::EQ, i, ty.const_zero(), "")
                    .map_err(ll)?;
                Ok(self.b.build_int_z_extend(z, ty, "").map_err(ll)?.into())
            }
            other => Err(self.unsupported(format!("{other:?} of {t}"))),
        }
    }

    fn binary(
        &mut self,
        op: BinaryOp,
        x: BasicValueEnum<'ctx>,
        y: BasicValueEnum<'ctx>,
        t: DType,
    ) -> R<BasicValueEnum<'ctx>> {
        if t.is_float() {
            let (a, b) = (x.into_float_value(), y.into_float_value());
            let ty = a.get_type();
            let v: BasicValueEnum = match op {
                BinaryOp::Add => self.b.build_float_add(a, b, "").map_err(ll)?.into(),
                BinaryOp::Sub => self.b.build_float_sub(a, b, "").map_err(ll)?.into(),
                BinaryOp::Mul => self.b.build_float_mul(a, b, "").map_err(ll)?.into(),
                BinaryOp::Div => return Ok(self.b.build_float_div(a, b, "").map_err(ll)?.into()),
                BinaryOp::Max => {
                    self.call_intrinsic("llvm.maximum", &[ty.into()], &[a.into(), b.into()])?
                }
                BinaryOp::Min => {
                    self.call_intrinsic("llvm.minimum", &[ty.into()], &[a.into(), b.into()])?
                }
                BinaryOp::Pow => {
                    return self.call_intrinsic("llvm.pow", &[ty.into()], &[a.into(), b.into()])
                }
                BinaryOp::And | BinaryOp::Or => {
                    return Err(self.unsupported("logical op on floats"))
                }
            };
            return self.contract(v);
        }
        let (a, b) = (x.into_int_value(), y.into_int_value());
        let ty = a.get_type();
        let signed = t.is_signed_int();
        let v: BasicValueEnum = match op {
            BinaryOp::Add => self.b.build_int_add(a, b, "").map_err(ll)?.into(),
            BinaryOp::Sub => self.b.build_int_sub(a, b, "").map_err(ll)?.into(),
            BinaryOp::Mul => self.b.build_int_mul(a, b, "").map_err(ll)?.into(),
            BinaryOp::Div => self.int_div(a, b, signed)?.into(),
            BinaryOp::Max | BinaryOp::Min => {
                let name = match (op, signed) {
                    (BinaryOp::Max, true) => "llvm.smax",
                    (BinaryOp::Max, false) => "llvm.umax",
                    (_, true) => "llvm.smin",
                    (_, false) => "llvm.umin",
                };
                self.call_intrinsic(name, &[ty.into()], &[a.into(), b.into()])?
            }
            BinaryOp::And => self.b.build_and(a, b, "").map_err(ll)?.into(),
            BinaryOp::Or => self.b.build_or(a, b, "").map_err(ll)?.into(),
            BinaryOp::Pow => return Err(self.unsupported(format!("pow of {t}"))),
        };
        Ok(v)
    }

    /// Integer division truncating toward zero; a zero divisor gives 0 (as in the
    /// Cranelift backend) and `MIN / -1` wraps to `MIN` instead of trapping.
    fn int_div(&self, a: IntValue<'ctx>, b: IntValue<'ctx>, signed: bool) -> R<IntValue<'ctx>> {
        let ty = a.get_type();
        let zero = ty.const_zero();
        let one = ty.const_int(1, false);
        let is_zero = self
            .b
            .build_int_compare(IntPredicate::EQ, b, zero, "")
            .map_err(ll)?;
        if !signed {
            let safe = self.b.build_select(is_zero, one, b, "").map_err(ll)?;
            let q = self
                .b
                .build_int_unsigned_div(a, safe.into_int_value(), "")
                .map_err(ll)?;
            return Ok(self
                .b
                .build_select(is_zero, zero, q, "")
                .map_err(ll)?
                .into_int_value());
        }
        let minus_one = ty.const_all_ones();
        let is_m1 = self
            .b
            .build_int_compare(IntPredicate::EQ, b, minus_one, "")
            .map_err(ll)?;
        let special = self.b.build_or(is_zero, is_m1, "").map_err(ll)?;
        let safe = self.b.build_select(special, one, b, "").map_err(ll)?;
        let q = self
            .b
            .build_int_signed_div(a, safe.into_int_value(), "")
            .map_err(ll)?;
        let neg = self.b.build_int_neg(a, "").map_err(ll)?;
        let q = self.b.build_select(is_m1, neg, q, "").map_err(ll)?;
        Ok(self
            .b
            .build_select(is_zero, zero, q.into_int_value(), "")
            .map_err(ll)?
            .into_int_value())
    }

    // ---------------------------------------------------------------- conversions

    /// A value of dtype `from` as dtype `to` (identical register types pass through;
    /// anything else is a cast).
    fn convert(
        &mut self,
        v: BasicValueEnum<'ctx>,
        from: DType,
        to: DType,
    ) -> R<BasicValueEnum<'ctx>> {
        if from == to
            || llvm_type(self.cx, from) == llvm_type(self.cx, to)
                && from.is_float() == to.is_float()
        {
            Ok(v)
        } else {
            self.cast(v, from, to)
        }
    }

    fn cast(&mut self, v: BasicValueEnum<'ctx>, from: DType, to: DType) -> R<BasicValueEnum<'ctx>> {
        let ty = self.ty(to)?;
        if to == DType::Bool {
            let c = if from.is_float() {
                let f = v.into_float_value();
                self.b
                    .build_float_compare(FloatPredicate::UNE, f, f.get_type().const_zero(), "")
                    .map_err(ll)?
            } else {
                self.truthy(v)?
            };
            return self.bool_value(c);
        }
        Ok(match (from.is_float(), to.is_float()) {
            (true, true) => {
                let f = v.into_float_value();
                let (fb, tb) = (elem_bytes(from), elem_bytes(to));
                let tt = ty.into_float_type();
                if fb < tb {
                    self.b.build_float_ext(f, tt, "").map_err(ll)?.into()
                } else if fb > tb {
                    self.b.build_float_trunc(f, tt, "").map_err(ll)?.into()
                } else {
                    v
                }
            }
            (true, false) => {
                let name = if to.is_unsigned_int() {
                    "llvm.fptoui.sat"
                } else {
                    "llvm.fptosi.sat"
                };
                self.call_intrinsic(name, &[ty, v.get_type()], &[v.into()])?
            }
            (false, true) => {
                let i = v.into_int_value();
                let tt = ty.into_float_type();
                if from.is_unsigned_int() || from == DType::Bool {
                    self.b
                        .build_unsigned_int_to_float(i, tt, "")
                        .map_err(ll)?
                        .into()
                } else {
                    self.b
                        .build_signed_int_to_float(i, tt, "")
                        .map_err(ll)?
                        .into()
                }
            }
            (false, false) => {
                let i = v.into_int_value();
                let tt = ty.into_int_type();
                let (fb, tb) = (i.get_type().get_bit_width(), tt.get_bit_width());
                if fb < tb {
                    if from.is_signed_int() {
                        self.b.build_int_s_extend(i, tt, "").map_err(ll)?.into()
                    } else {
                        self.b.build_int_z_extend(i, tt, "").map_err(ll)?.into()
                    }
                } else if fb > tb {
                    self.b.build_int_truncate(i, tt, "").map_err(ll)?.into()
                } else {
                    v
                }
            }
        })
    }
}

/// Whether `e` is `t op x` or `x op t` with `op` an associative accumulation.
fn is_accumulation(t: Local, e: &Expr) -> bool {
    match e {
        Expr::Binary(BinaryOp::Add | BinaryOp::Mul | BinaryOp::Max | BinaryOp::Min, a, b) => {
            matches!(**a, Expr::Local(l) if l == t) || matches!(**b, Expr::Local(l) if l == t)
        }
        Expr::Binary(BinaryOp::Sub, a, _) => matches!(**a, Expr::Local(l) if l == t),
        _ => false,
    }
}
