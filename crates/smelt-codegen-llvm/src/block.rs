//! Blocking of reduction kernels across their innermost output loop (matmul-like
//! kernels): when the reduce loop reads a buffer contiguously along the innermost
//! *output* loop, the plain nest (`for n { for k { t += a[m,k] * b[k,n] } }`) can only
//! vectorise the reduce loop with strided gathers. Instead the emitter runs a block of
//! [`BLOCK`] consecutive output points at a time, with every local of the body
//! expanded into one slot per point:
//!
//! ```text
//! for n0 in blocks: for j { prefix (t[j] = init) }
//!                   for k { for j { t[j] = t[j] + a[m,k] * b[k,n0+j] } }   // contiguous
//!                   for j { epilogue (uses t[j]) }
//! ```
//!
//! so the innermost loop of the hot nest is contiguous and vectorises. [`plan`] only
//! accepts bodies where this reordering cannot change the result: no memory dependence
//! (the kernel reads no buffer it writes) and no value flowing between output points
//! through locals.

use std::collections::HashSet;

use smelt_lower::{Expr, Kernel, KernelProgram, Local, Size, Stmt, Var};

/// Output points per block.
pub(crate) const BLOCK: u64 = 32;

/// A kernel body split for blocking: `prefix`, then one reduce loop, then `epilogue`.
#[derive(Clone, Copy)]
pub(crate) struct Plan<'a> {
    /// Initialisations before the reduce loop (assignments of locals).
    pub prefix: &'a [Stmt],
    /// The reduce loop's variable.
    pub red_var: Var,
    /// The reduce loop's trip count.
    pub extent: &'a Size,
    /// The reduce loop's body (assignments of locals only).
    pub reduce_body: &'a [Stmt],
    /// Everything after the reduce loop (no loops).
    pub epilogue: &'a [Stmt],
}

/// The blocking plan of `kernel` and the locals to expand, or `None` when the kernel
/// does not have the shape or would not profit.
pub(crate) fn plan<'a>(program: &KernelProgram, kernel: &'a Kernel) -> Option<(Plan<'a>, Vec<Local>)> {
    let inner = kernel.loops.last()?.var;
    let r = kernel
        .body
        .iter()
        .position(|s| matches!(s, Stmt::Loop { .. }))?;
    let Stmt::Loop {
        var: red_var,
        extent,
        reduce: true,
        body: reduce_body,
    } = &kernel.body[r]
    else {
        return None;
    };
    let (prefix, epilogue) = (&kernel.body[..r], &kernel.body[r + 1..]);
    // The prefix assigns locals from values that depend on no local.
    let mut assigned: HashSet<Local> = HashSet::new();
    for s in prefix {
        let Stmt::Assign(l, e) = s else { return None };
        if mentions_any_local(e) {
            return None;
        }
        assigned.insert(*l);
    }
    // The reduce body assigns locals, reading only locals already assigned in this
    // output point (by the prefix or an earlier statement of the body).
    for s in reduce_body {
        let Stmt::Assign(l, e) = s else { return None };
        if !locals_in(e).iter().all(|x| assigned.contains(x)) {
            return None;
        }
        assigned.insert(*l);
    }
    if epilogue.iter().any(has_loop) {
        return None;
    }
    // Locals the epilogue reads must be assigned before it in the same output point,
    // by the prefix, the reduce loop or the epilogue itself (checked in order).
    let mut known = assigned.clone();
    if !epilogue_reads_ok(epilogue, &mut known) {
        return None;
    }
    // No memory dependences: the kernel reads no storage it writes.
    let reads: HashSet<_> = kernel.reads().into_iter().map(|b| program.root(b)).collect();
    if kernel
        .writes()
        .into_iter()
        .any(|b| reads.contains(&program.root(b)))
    {
        return None;
    }
    // Profitable only when the reduce body reads along the output loop contiguously
    // and not along the reduce loop.
    let contiguous = reduce_body.iter().any(|s| match s {
        Stmt::Assign(_, e) => has_load(e, &|idx| {
            idx.stride_of(inner).as_known() == Some(1)
                && idx.stride_of(*red_var).as_known() != Some(1)
        }),
        _ => false,
    });
    if !contiguous {
        return None;
    }
    let mut expanded: Vec<Local> = assigned.into_iter().collect();
    expanded.sort();
    Some((
        Plan {
            prefix,
            red_var: *red_var,
            extent,
            reduce_body,
            epilogue,
        },
        expanded,
    ))
}

fn has_loop(s: &Stmt) -> bool {
    match s {
        Stmt::Loop { .. } => true,
        Stmt::If { then, .. } => then.iter().any(has_loop),
        _ => false,
    }
}

fn epilogue_reads_ok(body: &[Stmt], known: &mut HashSet<Local>) -> bool {
    for s in body {
        match s {
            Stmt::Assign(l, e) => {
                if !locals_in(e).iter().all(|x| known.contains(x)) {
                    return false;
                }
                known.insert(*l);
            }
            Stmt::Store(_, idx, e) => {
                let mut ls = locals_in(e);
                for (d, _) in &idx.dynamic {
                    ls.extend(locals_in(d));
                }
                if !ls.iter().all(|x| known.contains(x)) {
                    return false;
                }
            }
            Stmt::If { cond, then } => {
                if !locals_in(cond).iter().all(|x| known.contains(x)) {
                    return false;
                }
                // Assignments under the condition may not happen: check the branch
                // with a copy, and keep only what was known before.
                let mut inner = known.clone();
                if !epilogue_reads_ok(then, &mut inner) {
                    return false;
                }
            }
            Stmt::Loop { .. } => return false,
        }
    }
    true
}

fn mentions_any_local(e: &Expr) -> bool {
    !locals_in(e).is_empty()
}

/// Every local an expression reads.
fn locals_in(e: &Expr) -> Vec<Local> {
    fn go(e: &Expr, out: &mut Vec<Local>) {
        match e {
            Expr::Local(l) => out.push(*l),
            Expr::Lit(..) | Expr::Var(_) => {}
            Expr::Load(_, idx) => {
                for (d, _) in &idx.dynamic {
                    go(d, out);
                }
            }
            Expr::Unary(_, a) | Expr::Cast(_, a) => go(a, out),
            Expr::Binary(_, a, b) | Expr::Cmp(_, a, b) => {
                go(a, out);
                go(b, out);
            }
            Expr::Select(c, a, b) => {
                go(c, out);
                go(a, out);
                go(b, out);
            }
        }
    }
    let mut out = vec![];
    go(e, &mut out);
    out
}

/// Whether `e` loads with an index satisfying `pred`.
fn has_load(e: &Expr, pred: &dyn Fn(&smelt_lower::Index) -> bool) -> bool {
    match e {
        Expr::Load(_, idx) => pred(idx) || idx.dynamic.iter().any(|(d, _)| has_load(d, pred)),
        Expr::Lit(..) | Expr::Var(_) | Expr::Local(_) => false,
        Expr::Unary(_, a) | Expr::Cast(_, a) => has_load(a, pred),
        Expr::Binary(_, a, b) | Expr::Cmp(_, a, b) => has_load(a, pred) || has_load(b, pred),
        Expr::Select(c, a, b) => has_load(c, pred) || has_load(a, pred) || has_load(b, pred),
    }
}
