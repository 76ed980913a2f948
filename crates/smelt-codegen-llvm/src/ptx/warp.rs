//! The warp-per-point schedule: one warp (32 lanes) per output point of a kernel that
//! reduces. Statements outside loops run in every lane (they compute the same values);
//! each top-level loop is split across the lanes (lane `l` runs iterations `l`,
//! `l + 32`, ...); after a reduce loop every accumulator is combined across the warp
//! with five butterfly shuffles, so all lanes hold the full result (float `+` is
//! commutative, so every lane computes the same bits). Additive accumulators start at
//! zero in lanes 1–31 (lane 0 keeps the initial value); `max`/`min` are idempotent and
//! keep it in every lane. A loop that stores is followed by a warp barrier, which also
//! orders memory, because a later loop may read an element another lane wrote.

use inkwell::context::Context;
use inkwell::module::Module;
use inkwell::IntPredicate;
use smelt_ir::DType;
use smelt_lower::{BinaryOp, Kernel, KernelProgram, Local, Stmt};

use super::schedule::{stores, warp_plan, WARP, WARPS_PER_BLOCK};
use super::GpuFn;
use crate::emit::{ll, R};
use crate::CodegenError;

/// Emits `kernel` as the warp-per-point entry `name`.
pub(super) fn emit<'ctx>(
    cx: &'ctx Context,
    module: &Module<'ctx>,
    name: &str,
    program: &KernelProgram,
    kernel: &Kernel,
) -> R<()> {
    let plan = warp_plan(kernel).ok_or_else(|| CodegenError::Unsupported {
        kernel: kernel.name.clone(),
        message: "not a warp-per-point kernel".into(),
    })?;
    let mut g = GpuFn::new(cx, module, name, program, kernel)?;
    let i64t = cx.i64_type();
    let lane = g.sreg("tid.x")?;
    let warp = g.sreg("tid.y")?;
    let block = g.sreg("ctaid.x")?;
    let point =
        g.e.b
            .build_int_nuw_mul(block, i64t.const_int(u64::from(WARPS_PER_BLOCK), false), "")
            .map_err(ll)?;
    let point = g.e.b.build_int_nuw_add(point, warp, "point").map_err(ll)?;
    let total = g.extent_product(&kernel.loops)?;
    // `point` is the same in all lanes: whole warps leave together, so the shuffles
    // below always see all 32 lanes.
    let inside =
        g.e.b
            .build_int_compare(IntPredicate::ULT, point, total, "inside")
            .map_err(ll)?;
    g.when(inside, &mut |g| {
        g.split_index(point, &kernel.loops)?;
        for (i, s) in kernel.body.iter().enumerate() {
            let Stmt::Loop {
                var,
                extent,
                reduce,
                body,
            } = s
            else {
                g.e.stmt(s)?;
                continue;
            };
            let accs = plan.reductions.get(&i).map(Vec::as_slice).unwrap_or(&[]);
            for (l, op) in accs {
                if *op == BinaryOp::Add {
                    zero_outside_lane0(g, *l, lane)?;
                }
            }
            let hi = g.e.size(extent)?;
            let slot = g.e.var_slot(*var)?;
            if *reduce {
                g.e.reduce_depth += 1;
            }
            let r = g.strided(slot, lane, hi, u64::from(WARP), &mut |g, _| g.e.stmts(body));
            if *reduce {
                g.e.reduce_depth -= 1;
            }
            r?;
            for (l, op) in accs {
                all_reduce(g, *l, *op)?;
            }
            if stores(body) {
                g.intrinsic(
                    "llvm.nvvm.bar.warp.sync",
                    &[cx.i32_type().const_all_ones().into()],
                )?;
            }
        }
        Ok(())
    })?;
    g.finish()
}

/// `t = lane == 0 ? t : 0`.
fn zero_outside_lane0(g: &mut GpuFn, l: Local, lane: inkwell::values::IntValue) -> R<()> {
    let t = g.e.kernel.locals[l.0 as usize];
    let ty = g.e.ty(t)?;
    let p = g.e.local_ptr(l)?;
    let cur = g.e.b.build_load(ty, p, "").map_err(ll)?;
    let first =
        g.e.b
            .build_int_compare(
                IntPredicate::EQ,
                lane,
                g.e.cx.i64_type().const_zero(),
                "lane0",
            )
            .map_err(ll)?;
    let v =
        g.e.b
            .build_select(first, cur, ty.const_zero(), "")
            .map_err(ll)?;
    g.e.b.build_store(p, v).map_err(ll)?;
    Ok(())
}

/// Combines local `l` across the warp with `op` (a butterfly of `shfl.sync.bfly`); every
/// lane ends with the full result.
fn all_reduce(g: &mut GpuFn, l: Local, op: BinaryOp) -> R<()> {
    let t = g.e.kernel.locals[l.0 as usize];
    let name = match t {
        DType::F32 => "llvm.nvvm.shfl.sync.bfly.f32",
        DType::I32 => "llvm.nvvm.shfl.sync.bfly.i32",
        other => return Err(g.e.unsupported(format!("warp reduction of {other}"))),
    };
    let ty = g.e.ty(t)?;
    let i32t = g.e.cx.i32_type();
    let p = g.e.local_ptr(l)?;
    let mut offset = WARP / 2;
    while offset > 0 {
        let v = g.e.b.build_load(ty, p, "").map_err(ll)?;
        let other = g.e.call_intrinsic(
            name,
            &[],
            &[
                i32t.const_all_ones().into(),
                v.into(),
                i32t.const_int(u64::from(offset), false).into(),
                i32t.const_int(u64::from(WARP - 1), false).into(),
            ],
        )?;
        let r = g.e.binary(op, v, other, t)?;
        g.e.b.build_store(p, r).map_err(ll)?;
        offset /= 2;
    }
    Ok(())
}
