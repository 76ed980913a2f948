//! Which loop bodies the vector code paths accept (all `f32`, no control flow, loads
//! without data-dependent indices), decided from the program alone so that callers can
//! choose a code shape before emitting anything.

use smelt_ir::DType;
use smelt_lower::{
    BinaryOp, BufferId, Expr, Index, Kernel, KernelProgram, Local, Stmt, UnaryOp, Var,
};

/// One statement of a vectorisable loop body.
pub(crate) enum VecStmt<'b> {
    /// A local computed in this iteration (a vector temporary).
    Temp(Local, &'b Expr),
    /// An accumulator `local = local op expr` (vector accumulator, combined after).
    Reduce(Local, BinaryOp, &'b Expr),
    /// A store.
    Store(BufferId, &'b Index, &'b Expr),
}

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
        self.classify(body, reduce).is_some()
    }

    /// The statements of a vectorisable loop body, or `None` when the body cannot be
    /// vectorised: every value `f32`, no control flow or data-dependent indices, each
    /// local assigned once, temporaries read only after their assignment, and (in a
    /// reduction loop) accumulators `t = t op e` (op: add, max, min) read by nothing
    /// else.
    pub fn classify<'b>(&self, body: &'b [Stmt], reduce: bool) -> Option<Vec<VecStmt<'b>>> {
        let mut out = vec![];
        let mut temps: Vec<Local> = vec![];
        let mut accs: Vec<Local> = vec![];
        for s in body {
            match s {
                Stmt::Assign(l, e) => {
                    if self.kernel.locals[l.0 as usize] != DType::F32
                        || temps.contains(l)
                        || accs.contains(l)
                    {
                        return None;
                    }
                    match e {
                        Expr::Binary(op, a, x)
                            if reduce
                                && matches!(op, BinaryOp::Add | BinaryOp::Max | BinaryOp::Min)
                                && **a == Expr::Local(*l)
                                && !mentions_local(x, *l) =>
                        {
                            if !self.expr_ok(x, &temps) {
                                return None;
                            }
                            accs.push(*l);
                            out.push(VecStmt::Reduce(*l, *op, x));
                        }
                        _ => {
                            if mentions_local(e, *l) || !self.expr_ok(e, &temps) {
                                return None;
                            }
                            temps.push(*l);
                            out.push(VecStmt::Temp(*l, e));
                        }
                    }
                }
                Stmt::Store(b, idx, e) => {
                    if self.program.buffer(*b).dtype != DType::F32
                        || !idx.dynamic.is_empty()
                        || !self.expr_ok(e, &temps)
                    {
                        return None;
                    }
                    out.push(VecStmt::Store(*b, idx, e));
                }
                Stmt::If { .. } | Stmt::Loop { .. } => return None,
            }
        }
        // No statement may read an accumulator (its vector value is partial) or a
        // temporary assigned later in the body (that would be the previous iteration's).
        for (i, st) in out.iter().enumerate() {
            let e = match st {
                VecStmt::Temp(_, e) | VecStmt::Reduce(_, _, e) | VecStmt::Store(_, _, e) => e,
            };
            if accs.iter().any(|a| mentions_local(e, *a)) {
                return None;
            }
            let later = out[i..].iter().filter_map(|s| match s {
                VecStmt::Temp(l, _) => Some(*l),
                _ => None,
            });
            for l in later {
                if mentions_local(e, l) {
                    return None;
                }
            }
        }
        Some(out)
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
