//! One kernel → one Cranelift function: loop nests, scalar and vector statements.

use std::collections::HashMap;

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::types::{self, Type};
use cranelift_codegen::ir::{AbiParam, FuncRef, Function, InstBuilder, MemFlagsData, Value};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext, Variable};
use cranelift_module::{DataId, FuncId, Linkage, Module};
use smelt_ir::DType;
use smelt_lower::{
    BinaryOp, BufferId, CmpOp, Expr, Index, Kernel, KernelKind, KernelProgram, Local, Size, Stmt,
    UnaryOp, Var,
};

use crate::error::CodegenError;
use crate::module::{has_flag, Options};
use crate::vecok::VecStmt;

pub(crate) type R<T> = Result<T, CodegenError>;

/// Vector lanes of f32 in a 128-bit register.
pub(crate) const LANES: i64 = 4;
pub(crate) const F32X4: Type = types::F32X4;

/// Loads and stores never trap (the runtime hands kernels valid buffers) but may be
/// unaligned: constants point straight into the model file's bytes.
pub(crate) fn flags() -> MemFlagsData {
    MemFlagsData::new().with_notrap()
}

/// The Cranelift type holding a value of `t` in registers.
pub(crate) fn clif_type(t: DType) -> Option<Type> {
    Some(match t {
        DType::F32 => types::F32,
        DType::F64 => types::F64,
        DType::I64 | DType::U64 => types::I64,
        DType::I32 | DType::U32 => types::I32,
        DType::I16 | DType::U16 => types::I16,
        DType::I8 | DType::U8 | DType::Bool => types::I8,
        _ => return None,
    })
}

/// State of a vectorised loop body: the loop variable whose lanes the vectors hold,
/// locals computed in this iteration (as vectors) and the vector accumulators of
/// reductions.
#[derive(Default)]
pub(crate) struct VecCtx {
    pub var: Option<Var>,
    pub temps: HashMap<Local, Value>,
}

pub(crate) struct Emitter<'a, 'b> {
    pub b: FunctionBuilder<'b>,
    pub module: &'a mut dyn Module,
    pub program: &'a KernelProgram,
    pub kernel: &'a Kernel,
    pub opts: &'a Options,
    pub fma: bool,
    /// Whether the target is x86-64 (x86-only instructions may be used).
    pub x86: bool,
    pub bufs: Value,
    pub dims_ptr: Value,
    pub start: Value,
    pub end: Value,
    bases: HashMap<u32, Value>,
    dims: HashMap<String, Value>,
    vars: HashMap<Var, Variable>,
    locals: Vec<Variable>,
    libcalls: HashMap<&'static str, FuncRef>,
    /// The matmul template's epilogue function, when this kernel has one.
    pub epilogue: Option<FuncRef>,
    /// The address of the kernel's packed B panels, when it has them.
    pub packed_b: Option<Value>,
}

/// What a function being emitted is.
pub(crate) enum FnKind {
    /// A kernel: `(buffers, dims, start, end)`. With `epilogue`, its matmul template
    /// calls that function for each block's epilogue.
    Kernel {
        epilogue: Option<FuncId>,
        packed_b: Option<DataId>,
    },
    /// The epilogue of a matmul kernel's template:
    /// `(buffers, dims, m0, n0, accumulators, rows, vectors)`.
    Epilogue,
}

/// Emit `kernel` (or its matmul epilogue) into `func`.
pub(crate) fn emit_kernel<M: Module>(
    module: &mut M,
    func: &mut Function,
    fctx: &mut FunctionBuilderContext,
    program: &KernelProgram,
    kernel: &Kernel,
    opts: &Options,
    kind: FnKind,
) -> R<()> {
    let fma = has_flag(module.isa(), "has_fma");
    let x86 = module.isa().triple().architecture == target_lexicon::Architecture::X86_64;
    let ptr = module.target_config().pointer_type();
    let frontend = module.target_config();
    let mut b = FunctionBuilder::new(func, fctx);
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    let params = b.block_params(entry).to_vec();
    let (bufs, dims_ptr, start, end) = (params[0], params[1], params[2], params[3]);
    let mut dims = HashMap::new();
    for (j, name) in program.dims().into_iter().enumerate() {
        let v = b.ins().load(types::I64, flags(), dims_ptr, (8 * j) as i32);
        dims.insert(name, v);
    }
    let mut used = kernel.reads();
    used.extend(kernel.writes());
    used.sort();
    used.dedup();
    let mut bases = HashMap::new();
    for id in used {
        let off = i32::try_from(id.0 as usize * ptr.bytes() as usize).map_err(|_| {
            CodegenError::Unsupported {
                kernel: kernel.name.clone(),
                message: "too many buffers".into(),
            }
        })?;
        bases.insert(id.0, b.ins().load(ptr, flags(), bufs, off));
    }
    let mut locals = vec![];
    for (i, t) in kernel.locals.iter().enumerate() {
        let ty = clif_type(*t).ok_or_else(|| CodegenError::Unsupported {
            kernel: kernel.name.clone(),
            message: format!("local t{i} has dtype {t}"),
        })?;
        locals.push(b.declare_var(ty));
    }
    let mut e = Emitter {
        b,
        module,
        program,
        kernel,
        opts,
        fma,
        x86,
        bufs,
        dims_ptr,
        start,
        end,
        bases,
        dims,
        vars: HashMap::new(),
        locals,
        libcalls: HashMap::new(),
        epilogue: None,
        packed_b: None,
    };
    match kind {
        FnKind::Kernel { epilogue, packed_b } => {
            if let Some(id) = epilogue {
                e.epilogue = Some(e.module.declare_func_in_func(id, e.b.func));
            }
            if let Some(id) = packed_b {
                let gv = e.module.declare_data_in_func(id, e.b.func);
                e.packed_b = Some(e.b.ins().symbol_value(ptr, gv));
            }
            let done = kernel.kind == KernelKind::MatMul
                && opts.matmul_microkernel
                && crate::matmul::try_emit(&mut e)?;
            if !done {
                e.output_loops(0)?;
            }
        }
        FnKind::Epilogue => {
            crate::matmul::emit_epilogue_fn(&mut e, params[4], params[5], params[6])?;
        }
    }
    e.b.ins().return_(&[]);
    e.b.seal_all_blocks();
    e.b.finalize(frontend);
    Ok(())
}

impl Emitter<'_, '_> {
    pub fn unsupported(&self, message: impl Into<String>) -> CodegenError {
        CodegenError::Unsupported {
            kernel: self.kernel.name.clone(),
            message: message.into(),
        }
    }

    pub fn dtype(&self, e: &Expr) -> DType {
        e.dtype(self.program, self.kernel)
    }

    /// A size as an i64 value (dims were loaded in the entry block, so this is pure
    /// arithmetic on values that dominate every use).
    pub fn size(&mut self, s: &Size) -> R<Value> {
        let mut v = self.b.ins().iconst(types::I64, s.factor as i64);
        for sym in &s.syms {
            let d = *self
                .dims
                .get(sym)
                .ok_or_else(|| self.unsupported(format!("unknown dim ?{sym}")))?;
            v = self.b.ins().imul(v, d);
        }
        Ok(v)
    }

    pub fn var(&mut self, v: Var) -> Variable {
        if let Some(x) = self.vars.get(&v) {
            return *x;
        }
        let x = self.b.declare_var(types::I64);
        self.vars.insert(v, x);
        x
    }

    pub fn var_value(&mut self, v: Var) -> Value {
        let x = self.var(v);
        self.b.use_var(x)
    }

    pub fn set_var(&mut self, v: Var, value: Value) {
        let x = self.var(v);
        self.b.def_var(x, value);
    }

    pub fn local_var(&self, l: Local) -> Variable {
        self.locals[l.0 as usize]
    }

    pub fn base(&self, b: BufferId) -> R<Value> {
        self.bases
            .get(&b.0)
            .copied()
            .ok_or_else(|| self.unsupported(format!("buffer b{} has no base", b.0)))
    }

    pub fn elem_bytes(&self, b: BufferId) -> R<i64> {
        let t = self.program.buffer(b).dtype;
        clif_type(t)
            .map(|ty| ty.bytes() as i64)
            .ok_or_else(|| self.unsupported(format!("buffer b{} has dtype {t}", b.0)))
    }

    /// Element offset of `idx`, with `lane` added to the value of `lane_var`.
    pub fn offset(&mut self, idx: &Index, lane: Option<(Var, i64)>) -> R<Value> {
        let mut off = self.b.ins().iconst(types::I64, idx.offset);
        for (v, s) in &idx.terms {
            let mut x = self.var_value(*v);
            if let Some((lv, l)) = lane {
                if lv == *v && l != 0 {
                    x = self.b.ins().iadd_imm_s(x, l);
                }
            }
            let st = self.size(s)?;
            let t = self.b.ins().imul(x, st);
            off = self.b.ins().iadd(off, t);
        }
        for (e, s) in &idx.dynamic {
            let x = self.scalar(e)?;
            let x = self.widen_to_i64(x, self.dtype(e));
            let st = self.size(s)?;
            let t = self.b.ins().imul(x, st);
            off = self.b.ins().iadd(off, t);
        }
        Ok(off)
    }

    pub fn address(&mut self, b: BufferId, idx: &Index, lane: Option<(Var, i64)>) -> R<Value> {
        let off = self.offset(idx, lane)?;
        let bytes = self.elem_bytes(b)?;
        let off = self.b.ins().imul_imm_s(off, bytes);
        let base = self.base(b)?;
        Ok(self.b.ins().iadd(base, off))
    }

    fn widen_to_i64(&mut self, x: Value, t: DType) -> Value {
        let ty = self.b.func.dfg.value_type(x);
        if ty == types::I64 {
            x
        } else if t.is_signed_int() {
            self.b.ins().sextend(types::I64, x)
        } else if ty.is_int() {
            self.b.ins().uextend(types::I64, x)
        } else {
            self.b.ins().fcvt_to_sint_sat(types::I64, x)
        }
    }

    /// `for var in lo..hi step step { body }`; returns the counter's value at exit (the
    /// first index the loop did not run).
    pub fn for_range(
        &mut self,
        var: Var,
        lo: Value,
        hi: Value,
        step: i64,
        body: &mut dyn FnMut(&mut Self) -> R<()>,
    ) -> R<Value> {
        let x = self.var(var);
        self.b.def_var(x, lo);
        let header = self.b.create_block();
        let body_block = self.b.create_block();
        let exit = self.b.create_block();
        self.b.ins().jump(header, &[]);
        self.b.switch_to_block(header);
        let i = self.b.use_var(x);
        let cond = if step == 1 {
            self.b.ins().icmp(IntCC::SignedLessThan, i, hi)
        } else {
            let last = self.b.ins().iadd_imm_s(i, step);
            self.b.ins().icmp(IntCC::SignedLessThanOrEqual, last, hi)
        };
        self.b.ins().brif(cond, body_block, &[], exit, &[]);
        self.b.switch_to_block(body_block);
        body(self)?;
        let i = self.b.use_var(x);
        let next = self.b.ins().iadd_imm_s(i, step);
        self.b.def_var(x, next);
        self.b.ins().jump(header, &[]);
        self.b.switch_to_block(exit);
        Ok(self.b.use_var(x))
    }

    /// The output loops from `depth` inwards, then the body.
    pub fn output_loops(&mut self, depth: usize) -> R<()> {
        let kernel = self.kernel;
        if depth == kernel.loops.len() {
            return self.stmts(&kernel.body);
        }
        let l = &kernel.loops[depth];
        let (lo, hi) = self.loop_bounds(depth)?;
        let innermost = depth + 1 == kernel.loops.len();
        if innermost && self.opts.vectorize && self.vec_body_ok(l.var, &kernel.body, false) {
            let at = self.for_range(l.var, lo, hi, LANES, &mut |e| {
                e.vec_stmts(l.var, &kernel.body, &mut VecCtx::default())
            })?;
            self.for_range(l.var, at, hi, 1, &mut |e| e.stmts(&kernel.body))?;
            return Ok(());
        }
        self.for_range(l.var, lo, hi, 1, &mut |e| e.output_loops(depth + 1))?;
        Ok(())
    }

    /// The range an output loop covers in this call: `[start, end)` on the parallel
    /// axis, the whole extent elsewhere.
    pub fn loop_bounds(&mut self, depth: usize) -> R<(Value, Value)> {
        if self.kernel.schedule.parallel_axis == Some(depth) {
            Ok((self.start, self.end))
        } else {
            let zero = self.b.ins().iconst(types::I64, 0);
            let ext = self.kernel.loops[depth].extent.clone();
            Ok((zero, self.size(&ext)?))
        }
    }

    pub fn stmts(&mut self, body: &[Stmt]) -> R<()> {
        for s in body {
            self.stmt(s)?;
        }
        Ok(())
    }

    fn stmt(&mut self, s: &Stmt) -> R<()> {
        match s {
            Stmt::Assign(l, e) => {
                let v = self.scalar(e)?;
                let v = self.convert(v, self.dtype(e), self.kernel.locals[l.0 as usize]);
                let x = self.local_var(*l);
                self.b.def_var(x, v);
            }
            Stmt::Store(b, idx, e) => {
                let v = self.scalar(e)?;
                let v = self.convert(v, self.dtype(e), self.program.buffer(*b).dtype);
                let addr = self.address(*b, idx, None)?;
                self.b.ins().store(flags(), v, addr, 0);
            }
            Stmt::If { cond, then } => {
                let c = self.scalar(cond)?;
                let then_block = self.b.create_block();
                let merge = self.b.create_block();
                self.b.ins().brif(c, then_block, &[], merge, &[]);
                self.b.switch_to_block(then_block);
                self.stmts(then)?;
                self.b.ins().jump(merge, &[]);
                self.b.switch_to_block(merge);
            }
            Stmt::Loop {
                var,
                extent,
                reduce,
                body,
            } => {
                let zero = self.b.ins().iconst(types::I64, 0);
                let hi = self.size(extent)?;
                if self.opts.vectorize && self.vec_body_ok(*var, body, *reduce) {
                    let at = if *reduce {
                        self.vec_reduce_loop(*var, zero, hi, body)?
                    } else {
                        self.for_range(*var, zero, hi, LANES, &mut |e| {
                            e.vec_stmts(*var, body, &mut VecCtx::default())
                        })?
                    };
                    self.for_range(*var, at, hi, 1, &mut |e| e.stmts(body))?;
                } else {
                    self.for_range(*var, zero, hi, 1, &mut |e| e.stmts(body))?;
                }
            }
        }
        Ok(())
    }

    /// A value of dtype `from` as dtype `to` (only identical register types pass
    /// through; anything else is a cast).
    fn convert(&mut self, v: Value, from: DType, to: DType) -> Value {
        if from == to || clif_type(from) == clif_type(to) && from.is_float() == to.is_float() {
            v
        } else {
            self.cast(v, from, to)
        }
    }

    pub fn cast(&mut self, v: Value, from: DType, to: DType) -> Value {
        let Some(ty) = clif_type(to) else { return v };
        let vt = self.b.func.dfg.value_type(v);
        if to == DType::Bool {
            return if from.is_float() {
                let z = self.float_const(vt, 0.0);
                self.b.ins().fcmp(FloatCC::NotEqual, v, z)
            } else {
                self.b.ins().icmp_imm_s(IntCC::NotEqual, v, 0)
            };
        }
        match (from.is_float(), to.is_float()) {
            (true, true) => {
                if vt.bits() < ty.bits() {
                    self.b.ins().fpromote(ty, v)
                } else if vt.bits() > ty.bits() {
                    self.b.ins().fdemote(ty, v)
                } else {
                    v
                }
            }
            (true, false) => {
                // x86 converts to 32- and 64-bit integers only: narrower targets go
                // through i32 and keep its low bits, as the reference evaluator does.
                let wide = if ty.bits() < 32 { types::I32 } else { ty };
                let w = if to.is_unsigned_int() {
                    self.b.ins().fcvt_to_uint_sat(wide, v)
                } else {
                    self.b.ins().fcvt_to_sint_sat(wide, v)
                };
                if wide == ty {
                    w
                } else {
                    self.b.ins().ireduce(ty, w)
                }
            }
            (false, true) => {
                let unsigned = from.is_unsigned_int() || from == DType::Bool;
                // x86 converts from 32- and 64-bit integers only: widen narrower codes.
                let v = if vt.bits() < 32 {
                    if unsigned {
                        self.b.ins().uextend(types::I32, v)
                    } else {
                        self.b.ins().sextend(types::I32, v)
                    }
                } else {
                    v
                };
                if unsigned {
                    self.b.ins().fcvt_from_uint(ty, v)
                } else {
                    self.b.ins().fcvt_from_sint(ty, v)
                }
            }
            (false, false) => {
                if vt.bits() < ty.bits() {
                    if from.is_signed_int() {
                        self.b.ins().sextend(ty, v)
                    } else {
                        self.b.ins().uextend(ty, v)
                    }
                } else if vt.bits() > ty.bits() {
                    self.b.ins().ireduce(ty, v)
                } else {
                    v
                }
            }
        }
    }

    pub fn float_const(&mut self, ty: Type, v: f64) -> Value {
        match ty {
            types::F64 => self.b.ins().f64const(v),
            types::F32 => self.b.ins().f32const(v as f32),
            t if t.is_vector() => {
                let s = self.b.ins().f32const(v as f32);
                self.b.ins().splat(t, s)
            }
            _ => self.b.ins().f32const(v as f32),
        }
    }

    fn libcall(&mut self, name: &'static str, ty: Type, arity: usize) -> R<FuncRef> {
        if let Some(f) = self.libcalls.get(name) {
            return Ok(*f);
        }
        let mut sig = self.module.make_signature();
        for _ in 0..arity {
            sig.params.push(AbiParam::new(ty));
        }
        sig.returns.push(AbiParam::new(ty));
        let id = self
            .module
            .declare_function(name, Linkage::Import, &sig)
            .map_err(|e| CodegenError::Module(format!("declaring {name}: {e}")))?;
        let f = self.module.declare_func_in_func(id, self.b.func);
        self.libcalls.insert(name, f);
        Ok(f)
    }

    fn call(&mut self, name: &'static str, ty: Type, args: &[Value]) -> R<Value> {
        let f = self.libcall(name, ty, args.len())?;
        let call = self.b.ins().call(f, args);
        Ok(self.b.inst_results(call)[0])
    }

    /// A scalar expression.
    pub fn scalar(&mut self, e: &Expr) -> R<Value> {
        let t = self.dtype(e);
        Ok(match e {
            Expr::Lit(v, t) => {
                let ty =
                    clif_type(*t).ok_or_else(|| self.unsupported(format!("literal of {t}")))?;
                if t.is_float() {
                    self.float_const(ty, *v)
                } else {
                    self.b.ins().iconst(ty, *v as i64)
                }
            }
            Expr::Load(b, idx) => {
                let ty = clif_type(self.program.buffer(*b).dtype)
                    .ok_or_else(|| self.unsupported("load of an unsupported dtype"))?;
                let addr = self.address(*b, idx, None)?;
                self.b.ins().load(ty, flags(), addr, 0)
            }
            Expr::Local(l) => {
                let x = self.local_var(*l);
                self.b.use_var(x)
            }
            Expr::Var(v) => self.var_value(*v),
            Expr::Unary(op, a) => {
                let x = self.scalar(a)?;
                self.unary(*op, x, t)?
            }
            Expr::Binary(op, a, b2) => {
                let x = self.scalar(a)?;
                let y = self.scalar(b2)?;
                let y = self.convert(y, self.dtype(b2), t);
                self.binary(*op, x, y, t)?
            }
            Expr::Cmp(op, a, b2) => {
                let at = self.dtype(a);
                let x = self.scalar(a)?;
                let y = self.scalar(b2)?;
                let y = self.convert(y, self.dtype(b2), at);
                self.compare(*op, x, y, at)
            }
            Expr::Select(c, a, b2) => {
                let c = self.scalar(c)?;
                let x = self.scalar(a)?;
                let y = self.scalar(b2)?;
                let y = self.convert(y, self.dtype(b2), t);
                self.b.ins().select(c, x, y)
            }
            Expr::Cast(to, a) => {
                let from = self.dtype(a);
                let x = self.scalar(a)?;
                self.cast(x, from, *to)
            }
        })
    }

    fn compare(&mut self, op: CmpOp, x: Value, y: Value, t: DType) -> Value {
        if t.is_float() {
            let cc = match op {
                CmpOp::Eq => FloatCC::Equal,
                CmpOp::Lt => FloatCC::LessThan,
                CmpOp::Le => FloatCC::LessThanOrEqual,
                CmpOp::Gt => FloatCC::GreaterThan,
                CmpOp::Ge => FloatCC::GreaterThanOrEqual,
            };
            self.b.ins().fcmp(cc, x, y)
        } else {
            let signed = t.is_signed_int();
            let cc = match (op, signed) {
                (CmpOp::Eq, _) => IntCC::Equal,
                (CmpOp::Lt, true) => IntCC::SignedLessThan,
                (CmpOp::Le, true) => IntCC::SignedLessThanOrEqual,
                (CmpOp::Gt, true) => IntCC::SignedGreaterThan,
                (CmpOp::Ge, true) => IntCC::SignedGreaterThanOrEqual,
                (CmpOp::Lt, false) => IntCC::UnsignedLessThan,
                (CmpOp::Le, false) => IntCC::UnsignedLessThanOrEqual,
                (CmpOp::Gt, false) => IntCC::UnsignedGreaterThan,
                (CmpOp::Ge, false) => IntCC::UnsignedGreaterThanOrEqual,
            };
            self.b.ins().icmp(cc, x, y)
        }
    }

    fn unary(&mut self, op: UnaryOp, x: Value, t: DType) -> R<Value> {
        let ty = self.b.func.dfg.value_type(x);
        Ok(if t.is_float() {
            match (op, ty) {
                (UnaryOp::Neg, _) => self.b.ins().fneg(x),
                (UnaryOp::Abs, _) => self.b.ins().fabs(x),
                (UnaryOp::Sqrt, _) => self.b.ins().sqrt(x),
                (UnaryOp::Exp, types::F32) => crate::math::exp(self, x),
                (UnaryOp::Erf, types::F32) => crate::math::erf(self, x),
                (UnaryOp::Tanh, types::F32) => crate::math::tanh(self, x),
                (UnaryOp::Exp, _) => self.call("exp", ty, &[x])?,
                (UnaryOp::Erf, _) => self.call("erf", ty, &[x])?,
                (UnaryOp::Tanh, _) => self.call("tanh", ty, &[x])?,
                (UnaryOp::Log, types::F32) => self.call("logf", ty, &[x])?,
                (UnaryOp::Log, _) => self.call("log", ty, &[x])?,
                (UnaryOp::Not, _) => return Err(self.unsupported("not of a float")),
            }
        } else {
            match op {
                UnaryOp::Neg => self.b.ins().ineg(x),
                UnaryOp::Abs => self.b.ins().iabs(x),
                UnaryOp::Not => self.b.ins().icmp_imm_s(IntCC::Equal, x, 0),
                other => return Err(self.unsupported(format!("{other:?} of {t}"))),
            }
        })
    }

    fn binary(&mut self, op: BinaryOp, x: Value, y: Value, t: DType) -> R<Value> {
        let ty = self.b.func.dfg.value_type(x);
        Ok(if t.is_float() {
            match op {
                BinaryOp::Add => self.b.ins().fadd(x, y),
                BinaryOp::Sub => self.b.ins().fsub(x, y),
                BinaryOp::Mul => self.b.ins().fmul(x, y),
                BinaryOp::Div => self.b.ins().fdiv(x, y),
                BinaryOp::Max => self.b.ins().fmax(x, y),
                BinaryOp::Min => self.b.ins().fmin(x, y),
                BinaryOp::Pow if ty == types::F32 => self.call("powf", ty, &[x, y])?,
                BinaryOp::Pow => self.call("pow", ty, &[x, y])?,
                BinaryOp::And | BinaryOp::Or => {
                    return Err(self.unsupported("logical op on floats"))
                }
            }
        } else {
            let signed = t.is_signed_int();
            match op {
                BinaryOp::Add => self.b.ins().iadd(x, y),
                BinaryOp::Sub => self.b.ins().isub(x, y),
                BinaryOp::Mul => self.b.ins().imul(x, y),
                BinaryOp::Div => {
                    // A zero divisor would trap; the result for it is 0 (ONNX leaves it
                    // undefined, and a crash is the worst answer).
                    let zero = self.b.ins().icmp_imm_s(IntCC::Equal, y, 0);
                    let one = self.b.ins().iconst(ty, 1);
                    let safe = self.b.ins().select(zero, one, y);
                    let q = if signed {
                        self.b.ins().sdiv(x, safe)
                    } else {
                        self.b.ins().udiv(x, safe)
                    };
                    let z = self.b.ins().iconst(ty, 0);
                    self.b.ins().select(zero, z, q)
                }
                BinaryOp::Max if signed => self.b.ins().smax(x, y),
                BinaryOp::Max => self.b.ins().umax(x, y),
                BinaryOp::Min if signed => self.b.ins().smin(x, y),
                BinaryOp::Min => self.b.ins().umin(x, y),
                BinaryOp::And => self.b.ins().band(x, y),
                BinaryOp::Or => self.b.ins().bor(x, y),
                BinaryOp::Pow => return Err(self.unsupported(format!("pow of {t}"))),
            }
        })
    }

    // ---------------------------------------------------------------- vectors

    /// Whether `body`, run for `LANES` consecutive values of `var` at once, can be
    /// emitted with f32x4 vectors.
    pub fn vec_body_ok(&self, var: Var, body: &[Stmt], reduce: bool) -> bool {
        crate::vecok::Checker {
            program: self.program,
            kernel: self.kernel,
        }
        .body_ok(var, body, reduce)
    }

    /// Statements for lanes `var .. var+LANES`.
    pub fn vec_stmts(&mut self, var: Var, body: &[Stmt], cx: &mut VecCtx) -> R<()> {
        cx.var = Some(var);
        for s in body {
            match s {
                Stmt::Assign(l, e) => {
                    let v = self.vector(e, cx)?;
                    cx.temps.insert(*l, v);
                }
                Stmt::Store(b, idx, e) => {
                    let v = self.vector(e, cx)?;
                    self.vec_store(*b, idx, var, v)?;
                }
                _ => return Err(self.unsupported("vector body with control flow")),
            }
        }
        Ok(())
    }

    pub fn vec_store(&mut self, b: BufferId, idx: &Index, var: Var, v: Value) -> R<()> {
        if idx.stride_of(var).as_known() == Some(1) {
            let addr = self.address(b, idx, None)?;
            self.b.ins().store(flags(), v, addr, 0);
        } else {
            for lane in 0..LANES {
                let x = self.b.ins().extractlane(v, lane as u8);
                let addr = self.address(b, idx, Some((var, lane)))?;
                self.b.ins().store(flags(), x, addr, 0);
            }
        }
        Ok(())
    }

    /// A reduction loop over `var` with vector accumulators; returns the first index
    /// not yet reduced (the scalar tail continues from there).
    fn vec_reduce_loop(&mut self, var: Var, lo: Value, hi: Value, body: &[Stmt]) -> R<Value> {
        let checker = crate::vecok::Checker {
            program: self.program,
            kernel: self.kernel,
        };
        let stmts = checker
            .classify(body, true)
            .ok_or_else(|| self.unsupported("reduction loop is not vectorisable"))?;
        let mut accs: HashMap<Local, (BinaryOp, Variable)> = HashMap::new();
        for s in &stmts {
            if let VecStmt::Reduce(l, op, _) = s {
                let identity = match op {
                    BinaryOp::Add => 0.0,
                    BinaryOp::Max => f64::NEG_INFINITY,
                    _ => f64::INFINITY,
                };
                let x = self.b.declare_var(F32X4);
                let init = self.float_const(F32X4, identity);
                self.b.def_var(x, init);
                accs.insert(*l, (*op, x));
            }
        }
        let at = self.for_range(var, lo, hi, LANES, &mut |e| {
            let mut cx = VecCtx {
                var: Some(var),
                temps: HashMap::new(),
            };
            for s in &stmts {
                match s {
                    VecStmt::Temp(l, x) => {
                        let v = e.vector(x, &mut cx)?;
                        cx.temps.insert(*l, v);
                    }
                    VecStmt::Reduce(l, op, x) => {
                        let v = e.vector(x, &mut cx)?;
                        let acc = accs[l].1;
                        let a = e.b.use_var(acc);
                        let r = e.binary(*op, a, v, DType::F32)?;
                        e.b.def_var(acc, r);
                    }
                    VecStmt::Store(b, idx, x) => {
                        let v = e.vector(x, &mut cx)?;
                        e.vec_store(*b, idx, var, v)?;
                    }
                }
            }
            Ok(())
        })?;
        for s in &stmts {
            let VecStmt::Reduce(l, op, _) = s else {
                continue;
            };
            let (op, acc) = (*op, accs[l].1);
            let a = self.b.use_var(acc);
            let lanes: Vec<Value> = (0..LANES as u8)
                .map(|i| self.b.ins().extractlane(a, i))
                .collect();
            let p = self.binary(op, lanes[0], lanes[1], DType::F32)?;
            let q = self.binary(op, lanes[2], lanes[3], DType::F32)?;
            let h = self.binary(op, p, q, DType::F32)?;
            let x = self.local_var(*l);
            let cur = self.b.use_var(x);
            let r = self.binary(op, cur, h, DType::F32)?;
            self.b.def_var(x, r);
        }
        Ok(at)
    }

    /// An f32 expression as an f32x4 (a `bool` comparison as an f32x4 lane mask).
    pub fn vector(&mut self, e: &Expr, cx: &mut VecCtx) -> R<Value> {
        let var = cx
            .var
            .ok_or_else(|| self.unsupported("vector without a loop"))?;
        Ok(match e {
            Expr::Lit(v, _) => self.float_const(F32X4, *v),
            Expr::Load(b, idx) => {
                let st = idx.stride_of(var);
                if st.as_known() == Some(1) {
                    let addr = self.address(*b, idx, None)?;
                    self.b.ins().load(F32X4, flags(), addr, 0)
                } else if st.as_known() == Some(0) {
                    let addr = self.address(*b, idx, None)?;
                    let x = self.b.ins().load(types::F32, flags(), addr, 0);
                    self.b.ins().splat(F32X4, x)
                } else {
                    let addr = self.address(*b, idx, None)?;
                    let x = self.b.ins().load(types::F32, flags(), addr, 0);
                    let mut v = self.b.ins().splat(F32X4, x);
                    for lane in 1..LANES {
                        let addr = self.address(*b, idx, Some((var, lane)))?;
                        let x = self.b.ins().load(types::F32, flags(), addr, 0);
                        v = self.b.ins().insertlane(v, x, lane as u8);
                    }
                    v
                }
            }
            Expr::Local(l) => match cx.temps.get(l) {
                Some(v) => *v,
                None => {
                    let x = self.local_var(*l);
                    let s = self.b.use_var(x);
                    self.b.ins().splat(F32X4, s)
                }
            },
            Expr::Unary(op, a) => {
                let x = self.vector(a, cx)?;
                match op {
                    UnaryOp::Neg => self.b.ins().fneg(x),
                    UnaryOp::Abs => self.b.ins().fabs(x),
                    UnaryOp::Sqrt => self.b.ins().sqrt(x),
                    UnaryOp::Exp => crate::math::exp(self, x),
                    UnaryOp::Erf => crate::math::erf(self, x),
                    UnaryOp::Tanh => crate::math::tanh(self, x),
                    other => return Err(self.unsupported(format!("vector {other:?}"))),
                }
            }
            Expr::Binary(op, a, b) => {
                let x = self.vector(a, cx)?;
                let y = self.vector(b, cx)?;
                self.binary(*op, x, y, DType::F32)?
            }
            Expr::Cmp(op, a, b) => {
                let x = self.vector(a, cx)?;
                let y = self.vector(b, cx)?;
                let m = self.compare(*op, x, y, DType::F32);
                self.b.ins().bitcast(
                    F32X4,
                    MemFlagsData::new().with_endianness(cranelift_codegen::ir::Endianness::Little),
                    m,
                )
            }
            Expr::Select(c, a, b) => {
                let m = self.vector(c, cx)?;
                let x = self.vector(a, cx)?;
                let y = self.vector(b, cx)?;
                self.b.ins().bitselect(m, x, y)
            }
            Expr::Var(_) | Expr::Cast(..) => {
                return Err(self.unsupported("vector of a non-f32 value"))
            }
        })
    }
}

pub(crate) fn mentions_local(e: &Expr, l: Local) -> bool {
    match e {
        Expr::Local(x) => *x == l,
        Expr::Lit(..) | Expr::Var(_) => false,
        Expr::Load(_, idx) => idx.dynamic.iter().any(|(d, _)| mentions_local(d, l)),
        Expr::Unary(_, a) | Expr::Cast(_, a) => mentions_local(a, l),
        Expr::Binary(_, a, b) | Expr::Cmp(_, a, b) => mentions_local(a, l) || mentions_local(b, l),
        Expr::Select(c, a, b) => {
            mentions_local(c, l) || mentions_local(a, l) || mentions_local(b, l)
        }
    }
}
