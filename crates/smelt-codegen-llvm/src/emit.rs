//! One kernel → one LLVM function: setup, the loop nest and statements (expressions are
//! in `expr.rs`, blocked loop nests in `block.rs`).
//!
//! Loop counters and locals live in entry-block allocas (promoted to SSA by the
//! optimiser); buffer base pointers and dims are loaded once in the entry block.

use std::collections::HashMap;

use inkwell::attributes::{Attribute, AttributeLoc};
use inkwell::builder::{Builder, BuilderError};
use inkwell::context::Context;
use inkwell::module::{Linkage, Module};
use inkwell::types::BasicTypeEnum;
use inkwell::values::{
    BasicValue, BasicValueEnum, FastMathFlags, FunctionValue, InstructionOpcode, InstructionValue,
    IntValue, MetadataValue, PointerValue,
};
use inkwell::{AddressSpace, IntPredicate};
use smelt_ir::DType;
use smelt_lower::{
    BinaryOp, BufferId, BufferKind, Expr, Index, Kernel, KernelProgram, Local, Size, Stmt, Var,
};

use crate::block::{rows_per_block, BlockState, SLOTS};
use crate::CodegenError;

pub(crate) type R<T> = Result<T, CodegenError>;

pub(crate) fn ll(e: BuilderError) -> CodegenError {
    CodegenError::Llvm(format!("builder: {e}"))
}

/// The LLVM type holding a value of `t` in registers and memory.
pub(crate) fn llvm_type(cx: &Context, t: DType) -> Option<BasicTypeEnum<'_>> {
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
pub(crate) fn elem_bytes(t: DType) -> u32 {
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
        let mut slots = vec![];
        for name in ["row_block", "col_block", "row_point", "col_point"] {
            slots.push(b.build_alloca(i64t, name).map_err(ll)?);
        }
        for l in locals_to_expand {
            let ty = llvm_type(cx, kernel.locals[l.0 as usize]).expect("checked above");
            let n = i64t.const_int(SLOTS, false);
            let arr = b
                .build_array_alloca(ty, n, &format!("t{}_block", l.0))
                .map_err(ll)?;
            expanded.insert(l, (arr, ty));
        }
        let packed = crate::packed::setup(cx, module, &b, name, program, kernel, &plan, features)?;
        block = Some(BlockState {
            plan,
            rows: rows_per_block(features),
            slots: [slots[0], slots[1], slots[2], slots[3]],
            packed,
        });
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
        scopes: None,
        gpu: false,
    };
    if e.block.is_some() {
        let domain = cx.metadata_node(&[cx.metadata_string("smelt.blocking").into()]);
        let scope = cx.metadata_node(&[
            cx.metadata_string("smelt.blocking.locals").into(),
            domain.into(),
        ]);
        let list = cx.metadata_node(&[scope.into()]);
        // Blocking needs the kernel to read no storage it writes (see `block::plan`), so
        // its stores to buffers alias none of its loads from buffers either.
        let writes = cx.metadata_node(&[
            cx.metadata_string("smelt.blocking.writes").into(),
            domain.into(),
        ]);
        e.scopes = Some(Scopes {
            locals: list,
            writes: cx.metadata_node(&[writes.into()]),
            both: cx.metadata_node(&[scope.into(), writes.into()]),
            scope_kind: cx.get_kind_id("alias.scope"),
            noalias_kind: cx.get_kind_id("noalias"),
        });
    }
    e.output_loops(0)?;
    e.b.build_return(None).map_err(ll)?;
    Ok(())
}

pub(crate) fn enum_attr(cx: &Context, name: &str) -> Attribute {
    cx.create_enum_attribute(Attribute::get_named_enum_kind_id(name), 0)
}

pub(crate) struct Emitter<'a, 'ctx> {
    pub(crate) cx: &'ctx Context,
    pub(crate) module: &'a Module<'ctx>,
    pub(crate) b: Builder<'ctx>,
    pub(crate) program: &'a KernelProgram,
    pub(crate) kernel: &'a Kernel,
    pub(crate) start: IntValue<'ctx>,
    pub(crate) end: IntValue<'ctx>,
    pub(crate) bases: HashMap<u32, PointerValue<'ctx>>,
    pub(crate) dims: HashMap<String, IntValue<'ctx>>,
    pub(crate) vars: HashMap<Var, PointerValue<'ctx>>,
    pub(crate) locals: Vec<PointerValue<'ctx>>,
    /// How many reduce loops enclose the statement being emitted.
    pub(crate) reduce_depth: usize,
    /// The blocking plan of the innermost output loop, with its counter slots (block,
    /// point in block); see [`crate::block`].
    pub(crate) block: Option<BlockState<'a, 'ctx>>,
    /// Locals expanded to one slot per point of a block: the array and element type.
    pub(crate) expanded: HashMap<Local, (PointerValue<'ctx>, BasicTypeEnum<'ctx>)>,
    /// The point of the block being emitted, while emitting a blocked body.
    pub(crate) lane: Option<IntValue<'ctx>>,
    /// Scoped alias metadata under blocking: the scope list of the block arrays, which
    /// buffer accesses are marked as not aliasing (so the vectoriser needs no run-time
    /// overlap checks and the accumulators stay in registers); with the kind ids of
    /// `alias.scope` and `noalias`.
    pub(crate) scopes: Option<Scopes<'ctx>>,
    /// Emitting for the GPU (`ptx.rs`): every buffer is accessed at its element's
    /// natural alignment (device allocations are aligned, and the GPU faults on
    /// misaligned accesses anyway).
    pub(crate) gpu: bool,
}

/// What a load or store accesses, for [`Emitter::mark_access`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// A slot of a block array (an expanded local).
    Array,
    /// A local's own slot.
    Local,
    /// A buffer (or the packed B of the micro-kernel).
    Buffer,
}

/// Scoped alias metadata of a blocked kernel: the scope lists of the block arrays, of
/// the buffer stores and of both, with the kind ids of `alias.scope` and `noalias`.
#[derive(Clone, Copy)]
pub(crate) struct Scopes<'ctx> {
    locals: MetadataValue<'ctx>,
    writes: MetadataValue<'ctx>,
    both: MetadataValue<'ctx>,
    scope_kind: u32,
    noalias_kind: u32,
}

impl<'ctx> Emitter<'_, 'ctx> {
    pub(crate) fn unsupported(&self, message: impl Into<String>) -> CodegenError {
        CodegenError::Unsupported {
            kernel: self.kernel.name.clone(),
            message: message.into(),
        }
    }

    pub(crate) fn dtype(&self, e: &Expr) -> DType {
        e.dtype(self.program, self.kernel)
    }

    pub(crate) fn ty(&self, t: DType) -> R<BasicTypeEnum<'ctx>> {
        llvm_type(self.cx, t).ok_or_else(|| self.unsupported(format!("a value of dtype {t}")))
    }

    pub(crate) fn function(&self) -> FunctionValue<'ctx> {
        self.b
            .get_insert_block()
            .and_then(|bb| bb.get_parent())
            .expect("builder is positioned in a function")
    }

    // ---------------------------------------------------------------- loops

    /// A size as an i64 (dims were loaded in the entry block).
    pub(crate) fn size(&self, s: &Size) -> R<IntValue<'ctx>> {
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

    pub(crate) fn var_slot(&self, v: Var) -> R<PointerValue<'ctx>> {
        self.vars
            .get(&v)
            .copied()
            .ok_or_else(|| self.unsupported(format!("i{} is not a loop variable", v.0)))
    }

    pub(crate) fn var_value(&self, v: Var) -> R<IntValue<'ctx>> {
        let slot = self.var_slot(v)?;
        Ok(self
            .b
            .build_load(self.cx.i64_type(), slot, "")
            .map_err(ll)?
            .into_int_value())
    }

    /// `for var in lo..hi { body }`.
    pub(crate) fn for_range(
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
    pub(crate) fn counted(
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
        let i = self
            .b
            .build_load(i64t, slot, "")
            .map_err(ll)?
            .into_int_value();
        let c = self
            .b
            .build_int_compare(IntPredicate::SLT, i, hi, "")
            .map_err(ll)?;
        self.b
            .build_conditional_branch(c, body_bb, exit)
            .map_err(ll)?;
        self.b.position_at_end(body_bb);
        body(self, i)?;
        let i = self
            .b
            .build_load(i64t, slot, "")
            .map_err(ll)?
            .into_int_value();
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
    pub(crate) fn loop_bounds(&self, depth: usize) -> R<(IntValue<'ctx>, IntValue<'ctx>)> {
        if self.kernel.schedule.parallel_axis == Some(depth) {
            Ok((self.start, self.end))
        } else {
            let l = &self.kernel.loops[depth];
            Ok((self.cx.i64_type().const_zero(), self.size(&l.extent)?))
        }
    }

    /// Marks a memory access for the scoped alias metadata of blocked kernels: block
    /// arrays alias no buffer, and buffer stores no buffer load (blocked kernels read
    /// no storage they write).
    pub(crate) fn mark_access(&self, inst: Option<InstructionValue<'ctx>>, what: Access) -> R<()> {
        if let (Some(i), Some(sc)) = (inst, self.scopes) {
            let set = |list: MetadataValue<'ctx>, kind: u32| {
                i.set_metadata(list, kind)
                    .map_err(|e| CodegenError::Llvm(e.to_string()))
            };
            match what {
                Access::Array => set(sc.locals, sc.scope_kind)?,
                Access::Local => set(sc.locals, sc.noalias_kind)?,
                Access::Buffer if i.get_opcode() == InstructionOpcode::Store => {
                    set(sc.writes, sc.scope_kind)?;
                    set(sc.locals, sc.noalias_kind)?;
                }
                Access::Buffer => set(sc.both, sc.noalias_kind)?,
            }
        }
        Ok(())
    }

    /// The kind of access to local `l`: its slot of a block array or its own slot.
    pub(crate) fn local_access(&self, l: Local) -> Access {
        if self.in_block_array(l) {
            Access::Array
        } else {
            Access::Local
        }
    }

    /// Whether local `l` lives in a block array at the moment.
    pub(crate) fn in_block_array(&self, l: Local) -> bool {
        self.lane.is_some() && self.expanded.contains_key(&l)
    }

    /// Where local `l` lives: its own slot, or its point's slot of a block array.
    pub(crate) fn local_ptr(&self, l: Local) -> R<PointerValue<'ctx>> {
        if let (Some(j), Some((arr, ty))) = (self.lane, self.expanded.get(&l)) {
            // SAFETY (of the GEP): `j` < SLOTS, the array's length.
            return unsafe { self.b.build_in_bounds_gep(*ty, *arr, &[j], "") }.map_err(ll);
        }
        Ok(self.locals[l.0 as usize])
    }

    /// The output loops from `depth` inwards, then the body. The parallel axis runs
    /// over `[start, end)`, every other loop over its full extent.
    pub(crate) fn output_loops(&mut self, depth: usize) -> R<()> {
        let kernel = self.kernel;
        if depth == kernel.loops.len() {
            return self.stmts(&kernel.body);
        }
        if let Some(st) = self.block {
            let first = kernel.loops.len() - if st.plan.rows { 2 } else { 1 };
            if depth == first {
                return self.blocked_loops(depth);
            }
        }
        let (lo, hi) = self.loop_bounds(depth)?;
        self.for_range(kernel.loops[depth].var, lo, hi, &mut |e| {
            e.output_loops(depth + 1)
        })
    }

    // ---------------------------------------------------------------- statements

    pub(crate) fn stmts(&mut self, body: &[Stmt]) -> R<()> {
        for s in body {
            self.stmt(s)?;
        }
        Ok(())
    }

    pub(crate) fn stmt(&mut self, s: &Stmt) -> R<()> {
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
                let st = self.b.build_store(p, v).map_err(ll)?;
                self.mark_access(Some(st), self.local_access(*l))?;
            }
            Stmt::Store(b, idx, e) => {
                let v = self.scalar(e)?;
                let t = self.program.buffer(*b).dtype;
                let v = self.convert(v, self.dtype(e), t)?;
                let addr = self.address(*b, idx)?;
                let st = self.b.build_store(addr, v).map_err(ll)?;
                st.set_alignment(self.align(*b))
                    .map_err(|e| CodegenError::Llvm(e.to_string()))?;
                self.mark_access(Some(st), Access::Buffer)?;
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
    pub(crate) fn accumulate(&mut self, e: &Expr) -> R<BasicValueEnum<'ctx>> {
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
    /// aligned to their element size. On the GPU every buffer is aligned.
    pub(crate) fn align(&self, b: BufferId) -> u32 {
        if self.gpu {
            return elem_bytes(self.program.buffer(b).dtype);
        }
        let root = self.program.root(b);
        match self.program.buffer(root).kind {
            BufferKind::Constant { .. } | BufferKind::Input(_) => 1,
            _ => elem_bytes(self.program.buffer(b).dtype),
        }
    }

    /// The address of element `idx` of buffer `b`.
    pub(crate) fn address(&mut self, b: BufferId, idx: &Index) -> R<PointerValue<'ctx>> {
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

    pub(crate) fn widen_to_i64(&mut self, x: BasicValueEnum<'ctx>, t: DType) -> R<IntValue<'ctx>> {
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
