//! Which loop bodies the vector code paths accept (all `f32`, no control flow, loads
//! without data-dependent indices), decided from the program alone so that callers can
//! choose a code shape before emitting anything.

use smelt_ir::DType;
use smelt_lower::{BinaryOp, Expr, Kernel, KernelProgram, Local, Stmt, UnaryOp, Var};

pub(crate) struct Checker<'a> {
    pub program: &'a KernelProgram,
    pub kernel: &'a Kernel,
}

impl Checker<'_> {
    /// Whether `body`, run for `LANES` consecutive values of `var` at once, can be
    /// emitted with f32x4 vectors.
    /// Any stride of the lane variable is accepted (other than 0 and 1 it becomes a
    /// gather or scatter), so `_var` does not constrain the body today.
    pub fn body_ok(&self, _var: Var, body: &[Stmt], reduce: bool) -> bool {
        let mut assigned: Vec<Local> = vec![];
        for s in body {
            match s {
                Stmt::Assign(l, e) => {
                    if self.kernel.locals[l.0 as usize] != DType::F32 {
                        return false;
                    }
                    if reduce {
                        let Expr::Binary(op, a, x) = e else {
                            return false;
                        };
                        if !matches!(op, BinaryOp::Add | BinaryOp::Max | BinaryOp::Min)
                            || **a != Expr::Local(*l)
                            || mentions_local(x, *l)
                            || !self.expr_ok(x, &assigned)
                        {
                            return false;
                        }
                    } else if !self.expr_ok(e, &assigned) {
                        return false;
                    }
                    assigned.push(*l);
                }
                Stmt::Store(b, idx, e) => {
                    if reduce
                        || self.program.buffer(*b).dtype != DType::F32
                        || !idx.dynamic.is_empty()
                        || !self.expr_ok(e, &assigned)
                    {
                        return false;
                    }
                }
                Stmt::If { .. } | Stmt::Loop { .. } => return false,
            }
        }
        // A reduction's accumulator must not be read by another statement of the loop.
        if reduce {
            for s in body {
                if let Stmt::Assign(l, Expr::Binary(_, _, x)) = s {
                    if assigned.iter().any(|a| a != l && mentions_local(x, *a)) {
                        return false;
                    }
                }
            }
        }
        true
    }

    fn expr_ok(&self, e: &Expr, temps: &[Local]) -> bool {
        let f32_or_bool = |t: DType| t == DType::F32;
        match e {
            Expr::Lit(_, t) => f32_or_bool(*t),
            Expr::Load(b, idx) => {
                self.program.buffer(*b).dtype == DType::F32 && idx.dynamic.is_empty()
            }
            Expr::Local(l) => self.kernel.locals[l.0 as usize] == DType::F32 || temps.contains(l),
            Expr::Var(_) | Expr::Cast(..) => false,
            Expr::Unary(op, a) => {
                matches!(
                    op,
                    UnaryOp::Neg
                        | UnaryOp::Abs
                        | UnaryOp::Sqrt
                        | UnaryOp::Exp
                        | UnaryOp::Erf
                        | UnaryOp::Tanh
                ) && a.dtype(self.program, self.kernel) == DType::F32
                    && self.expr_ok(a, temps)
            }
            Expr::Binary(op, a, b) => {
                matches!(
                    op,
                    BinaryOp::Add
                        | BinaryOp::Sub
                        | BinaryOp::Mul
                        | BinaryOp::Div
                        | BinaryOp::Max
                        | BinaryOp::Min
                ) && a.dtype(self.program, self.kernel) == DType::F32
                    && b.dtype(self.program, self.kernel) == DType::F32
                    && self.expr_ok(a, temps)
                    && self.expr_ok(b, temps)
            }
            Expr::Cmp(_, a, b) => {
                a.dtype(self.program, self.kernel) == DType::F32
                    && b.dtype(self.program, self.kernel) == DType::F32
                    && self.expr_ok(a, temps)
                    && self.expr_ok(b, temps)
            }
            Expr::Select(c, a, b) => {
                matches!(**c, Expr::Cmp(..))
                    && self.expr_ok(c, temps)
                    && a.dtype(self.program, self.kernel) == DType::F32
                    && self.expr_ok(a, temps)
                    && self.expr_ok(b, temps)
            }
        }
    }
}

fn mentions_local(e: &Expr, l: Local) -> bool {
    crate::emit::mentions_local(e, l)
}
