//! Blocking of reduction kernels across their innermost output loop (matmul-like
//! kernels): when the reduce loop reads a buffer contiguously along the innermost
//! *output* loop, the plain nest (`for n { for k { t += a[m,k] * b[k,n] } }`) can only
//! vectorise the reduce loop with strided gathers. Instead the emitter runs a block of
//! [`COLS_1D`] consecutive output points at a time (or [`rows_per_block`] × [`COLS`] points of the
//! two innermost output loops, see [`Plan::rows`]), with every local of the body
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

use inkwell::values::{IntValue, PointerValue};
use inkwell::IntPredicate;
use smelt_lower::{Expr, Kernel, KernelProgram, Local, Size, Stmt, Var};

use crate::emit::{ll, Emitter, R};

/// Rows (points of the next-to-innermost output loop) per block, when blocking rows:
/// [`COLS`] / 8 vector accumulators per row must fit the vector registers (16 with
/// AVX2, 32 with AVX-512).
pub(crate) fn rows_per_block(features: &str) -> u64 {
    if features.split(',').any(|f| f == "+avx512f") {
        4
    } else {
        2
    }
}
/// Columns (points of the innermost output loop) per block, when blocking rows too.
pub(crate) const COLS: u64 = 32;
/// Columns per block when blocking the innermost loop only.
pub(crate) const COLS_1D: u64 = 32;
/// Slots per expanded local: the most points of a block ([`crate::packed::MR`] rows ×
/// [`COLS`]).
pub(crate) const SLOTS: u64 = crate::packed::MR * COLS;

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
    /// Whether to block the next-to-innermost output loop too ([`rows_per_block`] × [`COLS`]
    /// points), because the reduce body reads some operand independently of it (a
    /// matmul's B), which the rows of a block then share.
    pub rows: bool,
}

/// The blocking plan of `kernel` and the locals to expand, or `None` when the kernel
/// does not have the shape or would not profit.
pub(crate) fn plan<'a>(
    program: &KernelProgram,
    kernel: &'a Kernel,
) -> Option<(Plan<'a>, Vec<Local>)> {
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
    // The reduce body assigns locals (possibly under conditions and in nested loops),
    // reading only locals already assigned in this output point.
    let mut all = assigned.clone();
    if !reduce_body_ok(reduce_body, &mut assigned, &mut all) {
        return None;
    }
    if epilogue.iter().any(has_loop) {
        return None;
    }
    // Locals the epilogue reads must be assigned before it in the same output point,
    // by the prefix, the reduce loop or the epilogue itself (checked in order).
    let mut known = assigned;
    if !epilogue_reads_ok(epilogue, &mut known) {
        return None;
    }
    // No memory dependences: the kernel reads no storage it writes.
    let reads: HashSet<_> = kernel
        .reads()
        .into_iter()
        .map(|b| program.root(b))
        .collect();
    if kernel
        .writes()
        .into_iter()
        .any(|b| reads.contains(&program.root(b)))
    {
        return None;
    }
    // Profitable only when the reduce body reads along the output loop contiguously
    // and not along the loop around the read.
    if !contiguous_along(reduce_body, inner, *red_var) {
        return None;
    }
    let rows = kernel.loops.len() >= 2 && {
        let row = kernel.loops[kernel.loops.len() - 2].var;
        shared_across(reduce_body, row)
    };
    let mut expanded: Vec<Local> = all.into_iter().collect();
    expanded.sort();
    Some((
        Plan {
            prefix,
            red_var: *red_var,
            extent,
            reduce_body,
            epilogue,
            rows,
        },
        expanded,
    ))
}

/// Whether a reduce body (assignments, conditions, nested loops; no stores) reads only
/// locals surely assigned before in the same output point. Adds the locals it surely
/// assigns to `assigned` and every local it may assign to `all`.
fn reduce_body_ok(body: &[Stmt], assigned: &mut HashSet<Local>, all: &mut HashSet<Local>) -> bool {
    for s in body {
        match s {
            Stmt::Assign(l, e) => {
                if !locals_in(e).iter().all(|x| assigned.contains(x)) {
                    return false;
                }
                assigned.insert(*l);
                all.insert(*l);
            }
            Stmt::If { cond, then } => {
                if !locals_in(cond).iter().all(|x| assigned.contains(x)) {
                    return false;
                }
                // What the branch (or a loop body, which may run no times) assigns is
                // not surely assigned after it.
                if !reduce_body_ok(then, &mut assigned.clone(), all) {
                    return false;
                }
            }
            Stmt::Loop { body, .. } => {
                if !reduce_body_ok(body, &mut assigned.clone(), all) {
                    return false;
                }
            }
            Stmt::Store(..) => return false,
        }
    }
    true
}

/// Whether some load in `body` has stride 1 along `inner` and not along `around`, the
/// innermost loop enclosing it.
fn contiguous_along(body: &[Stmt], inner: Var, around: Var) -> bool {
    body.iter().any(|s| match s {
        Stmt::Assign(_, e) => has_load(e, &|idx| {
            idx.stride_of(inner).as_known() == Some(1)
                && idx.stride_of(around).as_known() != Some(1)
        }),
        Stmt::If { then, .. } => contiguous_along(then, inner, around),
        Stmt::Loop { var, body, .. } => contiguous_along(body, inner, *var),
        Stmt::Store(..) => false,
    })
}

/// Whether some load in `body` does not depend on `row` (stride 0).
fn shared_across(body: &[Stmt], row: Var) -> bool {
    body.iter().any(|s| match s {
        Stmt::Assign(_, e) => has_load(e, &|idx| {
            idx.stride_of(row).as_known() == Some(0) && !idx.terms.is_empty()
        }),
        Stmt::If { then, .. } => shared_across(then, row),
        Stmt::Loop { body, .. } => shared_across(body, row),
        Stmt::Store(..) => false,
    })
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

// ---------------------------------------------------------------- emission

/// A blocking plan with its counter slots: row block, column block, row point, column
/// point.
#[derive(Clone, Copy)]
pub(crate) struct BlockState<'a, 'ctx> {
    pub(crate) plan: Plan<'a>,
    /// Rows per block (when the plan blocks rows).
    pub(crate) rows: u64,
    pub(crate) slots: [PointerValue<'ctx>; 4],
    /// The packed B and micro-kernel state, for a matmul with a constant B.
    pub(crate) packed: Option<crate::packed::Packed<'ctx>>,
}

/// The output points of one block: optionally `n` rows of the next-to-innermost loop
/// from `v0`, and `n` columns of the innermost loop from `v0`, as `(var, v0, n)`.
#[derive(Clone, Copy)]
pub(crate) struct Tile<'ctx> {
    pub(crate) row: Option<(Var, IntValue<'ctx>, IntValue<'ctx>)>,
    pub(crate) col: (Var, IntValue<'ctx>, IntValue<'ctx>),
}

impl<'ctx> Emitter<'_, 'ctx> {
    /// `body(v0, n)` over `[lo, hi)` in blocks of `size` (`n` = `size`), then once
    /// for the partial block left (`n` < `size`), if any; `slot` counts the blocks.
    pub(crate) fn tiled(
        &mut self,
        lo: IntValue<'ctx>,
        hi: IntValue<'ctx>,
        size: u64,
        slot: PointerValue<'ctx>,
        body: &mut dyn FnMut(&mut Self, IntValue<'ctx>, IntValue<'ctx>) -> R<()>,
    ) -> R<()> {
        let i64t = self.cx.i64_type();
        let nb = i64t.const_int(size, false);
        let span = self.b.build_int_sub(hi, lo, "").map_err(ll)?;
        let full = self.b.build_int_signed_div(span, nb, "").map_err(ll)?;
        self.counted(slot, i64t.const_zero(), full, &mut |e, blk| {
            let off = e.b.build_int_nsw_mul(blk, nb, "").map_err(ll)?;
            let v0 = e.b.build_int_nsw_add(lo, off, "").map_err(ll)?;
            body(e, v0, nb)
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
        body(self, v0, rest)?;
        self.b.build_unconditional_branch(merge).map_err(ll)?;
        self.b.position_at_end(merge);
        Ok(())
    }

    /// The blocked output loops from `depth` (the next-to-innermost loop when the plan
    /// blocks rows too, else the innermost).
    pub(crate) fn blocked_loops(&mut self, depth: usize) -> R<()> {
        let st = self.block.expect("a blocking plan");
        let last = self.kernel.loops.len() - 1;
        let col_var = self.kernel.loops[last].var;
        if let Some(pk) = st.packed {
            return self.packed_loops(depth, st.plan, pk);
        }
        if st.plan.rows {
            let row_var = self.kernel.loops[depth].var;
            let (lo, hi) = self.loop_bounds(depth)?;
            self.tiled(lo, hi, st.rows, st.slots[0], &mut |e, r0, nr| {
                let (clo, chi) = e.loop_bounds(last)?;
                e.tiled(clo, chi, COLS, st.slots[1], &mut |e, c0, nc| {
                    let tile = Tile {
                        row: Some((row_var, r0, nr)),
                        col: (col_var, c0, nc),
                    };
                    e.block_body(st.plan, tile)
                })
            })
        } else {
            let (lo, hi) = self.loop_bounds(last)?;
            self.tiled(lo, hi, COLS_1D, st.slots[1], &mut |e, c0, nc| {
                let tile = Tile {
                    row: None,
                    col: (col_var, c0, nc),
                };
                e.block_body(st.plan, tile)
            })
        }
    }

    /// One block of output points: the prefix for every point, the reduce loop around
    /// all points, then the epilogue for every point.
    pub(crate) fn block_body(&mut self, plan: Plan<'_>, tile: Tile<'ctx>) -> R<()> {
        self.points(tile, plan.prefix)?;
        let hi = self.size(plan.extent)?;
        self.reduce_depth += 1;
        let r = self.for_range(
            plan.red_var,
            self.cx.i64_type().const_zero(),
            hi,
            &mut |e| e.blocked_stmts(tile, plan.reduce_body),
        );
        self.reduce_depth -= 1;
        r?;
        self.points(tile, plan.epilogue)
    }

    /// A reduce body under blocking: nested loops stay outside, every run of other
    /// statements runs for all points (so the loop over points is innermost).
    pub(crate) fn blocked_stmts(&mut self, tile: Tile<'ctx>, body: &[Stmt]) -> R<()> {
        let mut run = 0;
        for (i, s) in body.iter().enumerate() {
            if let Stmt::Loop {
                var: lv,
                extent,
                reduce,
                body: inner,
            } = s
            {
                self.points(tile, &body[run..i])?;
                run = i + 1;
                let hi = self.size(extent)?;
                if *reduce {
                    self.reduce_depth += 1;
                }
                let r = self.for_range(*lv, self.cx.i64_type().const_zero(), hi, &mut |e| {
                    e.blocked_stmts(tile, inner)
                });
                if *reduce {
                    self.reduce_depth -= 1;
                }
                r?;
            }
        }
        self.points(tile, &body[run..])
    }

    /// `body` for every output point of `tile` (columns innermost), with expanded locals
    /// indexed by the point (`row * COLS + column`).
    pub(crate) fn points(&mut self, tile: Tile<'ctx>, body: &[Stmt]) -> R<()> {
        if body.is_empty() {
            return Ok(());
        }
        let st = self.block.expect("a blocking plan");
        let i64t = self.cx.i64_type();
        let (col_var, c0, nc) = tile.col;
        let col_slot = self.var_slot(col_var)?;
        let columns = |e: &mut Self, base: IntValue<'ctx>| -> R<()> {
            e.counted(st.slots[3], i64t.const_zero(), nc, &mut |e, j| {
                let v = e.b.build_int_nsw_add(c0, j, "").map_err(ll)?;
                e.b.build_store(col_slot, v).map_err(ll)?;
                e.lane = Some(e.b.build_int_nsw_add(base, j, "").map_err(ll)?);
                let r = e.stmts(body);
                e.lane = None;
                r
            })
        };
        match tile.row {
            None => columns(self, i64t.const_zero()),
            Some((row_var, r0, nr)) => {
                let row_slot = self.var_slot(row_var)?;
                self.counted(st.slots[2], i64t.const_zero(), nr, &mut |e, r| {
                    let v = e.b.build_int_nsw_add(r0, r, "").map_err(ll)?;
                    e.b.build_store(row_slot, v).map_err(ll)?;
                    let base =
                        e.b.build_int_nsw_mul(r, i64t.const_int(COLS, false), "")
                            .map_err(ll)?;
                    columns(e, base)
                })
            }
        }
    }
}
