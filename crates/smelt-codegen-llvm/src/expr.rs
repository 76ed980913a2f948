//! Scalar expressions: arithmetic, comparisons, casts and calls, with the dtype rules
//! of the Cranelift backend.

use inkwell::attributes::AttributeLoc;
use inkwell::intrinsics::Intrinsic;
use inkwell::module::Linkage;
use inkwell::types::BasicTypeEnum;
use inkwell::values::{
    BasicMetadataValueEnum, BasicValue, BasicValueEnum, FastMathFlags, FloatValue, FunctionValue,
    IntValue,
};
use inkwell::{FloatPredicate, IntPredicate};
use smelt_ir::DType;
use smelt_lower::{BinaryOp, CmpOp, Expr, UnaryOp};

use crate::emit::{elem_bytes, enum_attr, ll, llvm_type, Access, Emitter, R};
use crate::CodegenError;

impl<'ctx> Emitter<'_, 'ctx> {
    // ---------------------------------------------------------------- calls

    pub(crate) fn call_intrinsic(
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

    pub(crate) fn call(
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
    pub(crate) fn libm(&self, name: &str, args: &[FloatValue<'ctx>]) -> R<BasicValueEnum<'ctx>> {
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

    /// ln(x) for f32 on the GPU: `lg2.approx.f32(x) * ln 2` (CUDA's `__logf`; absolute
    /// error about 2^-21 on [0.5, 2], relative 2^-21 elsewhere; 0 gives -inf, negatives
    /// NaN, +inf +inf, NaN NaN).
    pub(crate) fn log_f32_gpu(&self, x: FloatValue<'ctx>) -> R<FloatValue<'ctx>> {
        let ty = self.cx.f32_type();
        let name = "llvm.nvvm.lg2.approx.f";
        let f = self.module.get_function(name).unwrap_or_else(|| {
            self.module
                .add_function(name, ty.fn_type(&[ty.into()], false), None)
        });
        let l2 = self.call(f, &[x.into()])?.into_float_value();
        self.b
            .build_float_mul(l2, ty.const_float(std::f64::consts::LN_2), "")
            .map_err(ll)
    }

    // ---------------------------------------------------------------- expressions

    /// A scalar expression.
    pub(crate) fn scalar(&mut self, e: &Expr) -> R<BasicValueEnum<'ctx>> {
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
                self.mark_access(v.as_instruction_value(), Access::Buffer)?;
                v
            }
            Expr::Local(l) => {
                let ty = self.ty(self.kernel.locals[l.0 as usize])?;
                let p = self.local_ptr(*l)?;
                let v = self.b.build_load(ty, p, "").map_err(ll)?;
                self.mark_access(v.as_instruction_value(), self.local_access(*l))?;
                v
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
    pub(crate) fn truthy(&self, x: BasicValueEnum<'ctx>) -> R<IntValue<'ctx>> {
        let x = x.into_int_value();
        if x.get_type().get_bit_width() == 1 {
            return Ok(x);
        }
        self.b
            .build_int_compare(IntPredicate::NE, x, x.get_type().const_zero(), "")
            .map_err(ll)
    }

    /// A `bool` (i8 0/1) from an `i1`.
    pub(crate) fn bool_value(&self, c: IntValue<'ctx>) -> R<BasicValueEnum<'ctx>> {
        Ok(self
            .b
            .build_int_z_extend(c, self.cx.i8_type(), "")
            .map_err(ll)?
            .into())
    }

    pub(crate) fn compare(
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
    pub(crate) fn contract(&self, v: BasicValueEnum<'ctx>) -> R<BasicValueEnum<'ctx>> {
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

    pub(crate) fn unary(
        &mut self,
        op: UnaryOp,
        x: BasicValueEnum<'ctx>,
        t: DType,
    ) -> R<BasicValueEnum<'ctx>> {
        if t.is_float() {
            let f = x.into_float_value();
            let ty = f.get_type();
            let single = t == DType::F32;
            let intr = |name: &str| self.call_intrinsic(name, &[ty.into()], &[f.into()]);
            return match op {
                UnaryOp::Neg => Ok(self.b.build_float_neg(f, "").map_err(ll)?.into()),
                UnaryOp::Abs => intr("llvm.fabs"),
                UnaryOp::Sqrt => intr("llvm.sqrt"),
                UnaryOp::Exp if single => Ok(self.exp_f32(f)?.into()),
                UnaryOp::Erf if single => Ok(self.erf_f32(f)?.into()),
                UnaryOp::Tanh if single => Ok(self.tanh_f32(f)?.into()),
                UnaryOp::Log if single && self.gpu => Ok(self.log_f32_gpu(f)?.into()),
                UnaryOp::Exp => intr("llvm.exp"),
                UnaryOp::Log => intr("llvm.log"),
                UnaryOp::Tanh => self.libm("tanh", &[f]),
                UnaryOp::Erf => self.libm("erf", &[f]),
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

    pub(crate) fn binary(
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
    pub(crate) fn int_div(
        &self,
        a: IntValue<'ctx>,
        b: IntValue<'ctx>,
        signed: bool,
    ) -> R<IntValue<'ctx>> {
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
    pub(crate) fn convert(
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

    pub(crate) fn cast(
        &mut self,
        v: BasicValueEnum<'ctx>,
        from: DType,
        to: DType,
    ) -> R<BasicValueEnum<'ctx>> {
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
