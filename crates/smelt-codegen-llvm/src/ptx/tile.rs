//! The tiled matmul schedule: a block of 16 × 16 threads computes a 64 × 64 tile of the
//! output (thread `(tx, ty)` owns rows `ty + 16i` and columns `tx + 16j`, i, j < 4, so
//! its 16 accumulators stay in registers and a warp's shared-memory reads are
//! broadcasts or consecutive words). Each step of the reduction stages 16 values of
//! `k` of A (64 × 16) and B (16 × 64) in shared memory: each thread evaluates 4
//! elements of each operand (the operand expressions are the kernel's own, so an
//! encoded weight is decoded on the way in), zero outside the matrix, with
//! consecutive threads on consecutive `k` for A and consecutive columns for B so the
//! global loads coalesce for row-major operands. The A tile is stored `k`-major with
//! one word of padding per row. After the reduction each thread runs the kernel's
//! fused epilogue for each of its points inside the output.

use inkwell::context::Context;
use inkwell::module::{Linkage, Module};
use inkwell::values::{FloatValue, IntValue, PointerValue};
use inkwell::{AddressSpace, IntPredicate};
use smelt_lower::{Kernel, KernelProgram};

use super::schedule::{gpu_matmul, A_PAD, TILE, TILE_K, TILE_THREADS};
use super::GpuFn;
use crate::emit::{ll, R};
use crate::CodegenError;

/// Points per thread along each side (`TILE / TILE_THREADS`).
const PER_THREAD: u64 = TILE / TILE_THREADS as u64;

/// Emits `kernel` as the tiled-matmul entry `name`.
pub(super) fn emit<'ctx>(
    cx: &'ctx Context,
    module: &Module<'ctx>,
    name: &str,
    program: &KernelProgram,
    kernel: &Kernel,
) -> R<()> {
    let mm = gpu_matmul(program, kernel).ok_or_else(|| CodegenError::Unsupported {
        kernel: kernel.name.clone(),
        message: "not a tiled-matmul kernel".into(),
    })?;
    let mut g = GpuFn::new(cx, module, name, program, kernel)?;
    let (f32t, i64t) = (cx.f32_type(), cx.i64_type());
    let c = |v: u64| i64t.const_int(v, false);

    // Shared-memory tiles, one pair per kernel.
    let shared = |suffix: &str, len: u64| {
        let ty = f32t.array_type(len as u32);
        let gv = module.add_global(
            ty,
            Some(AddressSpace::from(3u16)),
            &format!("{name}_{suffix}"),
        );
        gv.set_linkage(Linkage::Internal);
        gv.set_initializer(&ty.get_undef());
        gv.set_alignment(16);
        gv.as_pointer_value()
    };
    let a_row = TILE + A_PAD;
    let a_tile = shared("a", TILE_K * a_row);
    let b_tile = shared("b", TILE_K * TILE);

    let tx = g.sreg("tid.x")?;
    let ty = g.sreg("tid.y")?;
    let thread =
        g.e.b
            .build_int_nuw_mul(ty, c(u64::from(TILE_THREADS)), "")
            .map_err(ll)?;
    let thread = g.e.b.build_int_nuw_add(thread, tx, "thread").map_err(ll)?;
    let n0 = g.sreg("ctaid.x")?;
    let n0 = g.e.b.build_int_nuw_mul(n0, c(TILE), "n0").map_err(ll)?;
    let m0 = g.sreg("ctaid.y")?;
    let m0 = g.e.b.build_int_nuw_mul(m0, c(TILE), "m0").map_err(ll)?;
    let z = g.sreg("ctaid.z")?;
    g.split_index(z, mm.batch)?;
    let r = kernel.loops.len();
    let rows = g.e.size(&kernel.loops[r - 2].extent)?;
    let cols = g.e.size(&kernel.loops[r - 1].extent)?;
    let depth = g.e.size(mm.k_extent)?;

    // Entry-block slots: the accumulators, a staging temporary and the k0 counter.
    let mut accs = vec![];
    for i in 0..PER_THREAD * PER_THREAD {
        let slot = g.e.b.build_alloca(f32t, &format!("acc{i}")).map_err(ll)?;
        g.e.b.build_store(slot, f32t.const_zero()).map_err(ll)?;
        accs.push(slot);
    }
    let staged = g.e.b.build_alloca(f32t, "staged").map_err(ll)?;
    let k0_slot = g.e.b.build_alloca(i64t, "k0").map_err(ll)?;

    let threads = u64::from(TILE_THREADS * TILE_THREADS);
    let loads_per_thread = TILE * TILE_K / threads;
    g.strided(k0_slot, c(0), depth, TILE_K, &mut |g, k0| {
        for step in 0..loads_per_thread {
            let e =
                g.e.b
                    .build_int_nuw_add(thread, c(threads * step), "")
                    .map_err(ll)?;
            // A: element (row, kk), kk fastest.
            let row = g.e.b.build_int_unsigned_div(e, c(TILE_K), "").map_err(ll)?;
            let kk = g.e.b.build_int_unsigned_rem(e, c(TILE_K), "").map_err(ll)?;
            let m = g.e.b.build_int_nuw_add(m0, row, "").map_err(ll)?;
            let k = g.e.b.build_int_nuw_add(k0, kk, "").map_err(ll)?;
            let ok = both_below(g, (m, rows), (k, depth))?;
            let v = stage(g, staged, ok, &mut |g| {
                g.set_var(mm.m, m)?;
                g.set_var(mm.k, k)?;
                g.e.scalar(mm.a)
            })?;
            let at = g.e.b.build_int_nuw_mul(kk, c(a_row), "").map_err(ll)?;
            let at = g.e.b.build_int_nuw_add(at, row, "").map_err(ll)?;
            store_shared(g, a_tile, at, v)?;
            // B: element (kk, col), col fastest.
            let kk = g.e.b.build_int_unsigned_div(e, c(TILE), "").map_err(ll)?;
            let col = g.e.b.build_int_unsigned_rem(e, c(TILE), "").map_err(ll)?;
            let n = g.e.b.build_int_nuw_add(n0, col, "").map_err(ll)?;
            let k = g.e.b.build_int_nuw_add(k0, kk, "").map_err(ll)?;
            let ok = both_below(g, (k, depth), (n, cols))?;
            let v = stage(g, staged, ok, &mut |g| {
                g.set_var(mm.n, n)?;
                g.set_var(mm.k, k)?;
                g.e.scalar(mm.b)
            })?;
            let at = g.e.b.build_int_nuw_mul(kk, c(TILE), "").map_err(ll)?;
            let at = g.e.b.build_int_nuw_add(at, col, "").map_err(ll)?;
            store_shared(g, b_tile, at, v)?;
        }
        g.intrinsic("llvm.nvvm.barrier0", &[])?;
        for kk in 0..TILE_K {
            let mut a = vec![];
            for i in 0..PER_THREAD {
                let at =
                    g.e.b
                        .build_int_nuw_add(ty, c(kk * a_row + i * u64::from(TILE_THREADS)), "")
                        .map_err(ll)?;
                a.push(load_shared(g, a_tile, at)?);
            }
            let mut b = vec![];
            for j in 0..PER_THREAD {
                let at =
                    g.e.b
                        .build_int_nuw_add(tx, c(kk * TILE + j * u64::from(TILE_THREADS)), "")
                        .map_err(ll)?;
                b.push(load_shared(g, b_tile, at)?);
            }
            for (i, av) in a.iter().enumerate() {
                for (j, bv) in b.iter().enumerate() {
                    let slot = accs[i * PER_THREAD as usize + j];
                    let acc = g.e.b.build_load(f32t, slot, "").map_err(ll)?;
                    let sum = g.e.call_intrinsic(
                        "llvm.fmuladd",
                        &[f32t.into()],
                        &[(*av).into(), (*bv).into(), acc.into()],
                    )?;
                    g.e.b.build_store(slot, sum).map_err(ll)?;
                }
            }
        }
        g.intrinsic("llvm.nvvm.barrier0", &[])
    })?;

    // The epilogue, once per point of the thread's tile inside the output.
    let acc_ptr = g.e.local_ptr(mm.acc)?;
    for i in 0..PER_THREAD {
        for j in 0..PER_THREAD {
            let m = g.e.b.build_int_nuw_add(m0, ty, "").map_err(ll)?;
            let m =
                g.e.b
                    .build_int_nuw_add(m, c(i * u64::from(TILE_THREADS)), "m")
                    .map_err(ll)?;
            let n = g.e.b.build_int_nuw_add(n0, tx, "").map_err(ll)?;
            let n =
                g.e.b
                    .build_int_nuw_add(n, c(j * u64::from(TILE_THREADS)), "n")
                    .map_err(ll)?;
            let ok = both_below(&g, (m, rows), (n, cols))?;
            let slot = accs[(i * PER_THREAD + j) as usize];
            g.when(ok, &mut |g| {
                g.set_var(mm.m, m)?;
                g.set_var(mm.n, n)?;
                let v = g.e.b.build_load(f32t, slot, "").map_err(ll)?;
                g.e.b.build_store(acc_ptr, v).map_err(ll)?;
                g.e.stmts(mm.epilogue)
            })?;
        }
    }
    g.finish()
}

/// `a.0 < a.1 && b.0 < b.1` (signed).
fn both_below<'ctx>(
    g: &GpuFn<'_, 'ctx>,
    a: (IntValue<'ctx>, IntValue<'ctx>),
    b: (IntValue<'ctx>, IntValue<'ctx>),
) -> R<IntValue<'ctx>> {
    let x =
        g.e.b
            .build_int_compare(IntPredicate::SLT, a.0, a.1, "")
            .map_err(ll)?;
    let y =
        g.e.b
            .build_int_compare(IntPredicate::SLT, b.0, b.1, "")
            .map_err(ll)?;
    g.e.b.build_and(x, y, "inside").map_err(ll)
}

/// The value `value` computes when `ok` holds, else 0 (the operand is not evaluated
/// outside the matrix, so it never reads out of bounds).
fn stage<'ctx>(
    g: &mut GpuFn<'_, 'ctx>,
    staged: PointerValue<'ctx>,
    ok: IntValue<'ctx>,
    value: &mut dyn FnMut(&mut GpuFn<'_, 'ctx>) -> R<inkwell::values::BasicValueEnum<'ctx>>,
) -> R<FloatValue<'ctx>> {
    let f32t = g.e.cx.f32_type();
    g.e.b.build_store(staged, f32t.const_zero()).map_err(ll)?;
    g.when(ok, &mut |g| {
        // The operand is f32 (`gpu_matmul` checks it).
        let v = value(g)?;
        g.e.b.build_store(staged, v).map_err(ll)?;
        Ok(())
    })?;
    Ok(g.e
        .b
        .build_load(f32t, staged, "")
        .map_err(ll)?
        .into_float_value())
}

fn shared_ptr<'ctx>(
    g: &GpuFn<'_, 'ctx>,
    tile: PointerValue<'ctx>,
    at: IntValue<'ctx>,
) -> R<PointerValue<'ctx>> {
    // SAFETY (of the GEP): callers index inside the tile (at < its length).
    unsafe {
        g.e.b
            .build_in_bounds_gep(g.e.cx.f32_type(), tile, &[at], "")
    }
    .map_err(ll)
}

fn store_shared<'ctx>(
    g: &GpuFn<'_, 'ctx>,
    tile: PointerValue<'ctx>,
    at: IntValue<'ctx>,
    v: FloatValue<'ctx>,
) -> R<()> {
    let p = shared_ptr(g, tile, at)?;
    g.e.b.build_store(p, v).map_err(ll)?;
    Ok(())
}

fn load_shared<'ctx>(
    g: &GpuFn<'_, 'ctx>,
    tile: PointerValue<'ctx>,
    at: IntValue<'ctx>,
) -> R<FloatValue<'ctx>> {
    let p = shared_ptr(g, tile, at)?;
    Ok(g.e
        .b
        .build_load(g.e.cx.f32_type(), p, "")
        .map_err(ll)?
        .into_float_value())
}
