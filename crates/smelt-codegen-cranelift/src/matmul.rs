//! The matmul template: a register-blocked micro-kernel over the kernel's last two
//! output loops (rows `m`, columns `n`) with the fused epilogue applied to the
//! accumulators in registers.
//!
//! A block of `MR` rows × `NV` f32x4 vectors of columns keeps `MR·NV` accumulators in
//! vector registers (4×2 = 8 of x86's 16 xmm registers, leaving room for the B vectors
//! and the broadcast A element); each step of the reduction loads `NV` vectors of a B
//! row and `MR` scalars of A and issues `MR·NV` fused multiply-adds. Rows that do not
//! fill a block of 4 run with `MR = 1`; columns that do not fill a vector run through
//! the kernel's own scalar body, so every shape is handled.

use std::collections::HashMap;

use cranelift_codegen::ir::types;
use cranelift_codegen::ir::{InstBuilder, Value};
use cranelift_codegen::ir::{StackSlotData, StackSlotKind};
use cranelift_frontend::Variable;
use smelt_lower::matmul::{matmul_parts, MatmulParts};
use smelt_lower::{Kernel, KernelProgram, Var};

use crate::emit::{flags, Emitter, VecCtx, F32X4, LANES, R};
use crate::vecok::Checker;

/// The parts of a kernel on the template: the shared matmul shape (see
/// `smelt_lower::matmul`) with an epilogue the vector code accepts.
type Parts<'k> = MatmulParts<'k>;

/// Whether `kernel` runs on the template.
pub(crate) fn applicable(program: &KernelProgram, kernel: &Kernel) -> bool {
    parts(program, kernel).is_some()
}

fn parts<'k>(program: &'k KernelProgram, k: &'k Kernel) -> Option<Parts<'k>> {
    let p = matmul_parts(program, k)?;
    (Checker { program, kernel: k })
        .body_ok(p.n, p.epilogue, false)
        .then_some(p)
}

/// Emit the kernel with the micro-kernel if its body has the matmul shape; `false`
/// when it does not (the caller emits the plain loop nest).
pub(crate) fn try_emit(e: &mut Emitter) -> R<bool> {
    let Some(p) = parts(e.program, e.kernel) else {
        return Ok(false);
    };
    // Accumulators (4 rows × 2 vectors) then the values of the outer (batch) loop
    // variables, for the epilogue function.
    let outer_vars = e.kernel.loops.len().saturating_sub(2);
    let slot = e.b.create_sized_stack_slot(StackSlotData::new(
        StackSlotKind::ExplicitSlot,
        (ACC_BYTES + 8 * outer_vars as i64) as u32,
        4,
    ));
    let acc_ptr = e.b.ins().stack_addr(types::I64, slot, 0);
    outer(e, &p, 0, acc_ptr)?;
    Ok(true)
}

/// Bytes of the accumulator block handed to the epilogue function.
const ACC_BYTES: i64 = 16 * 4 * 2;

/// Steps of the reduction per trip of the micro-kernel's loop.
const UNROLL: i64 = 4;

/// A loop variable no kernel uses: the column-panel loop of the template.
const PANEL_VAR: Var = Var(u32::MAX - 1);

/// Bytes of B one column panel may take: the panel stays in L2 while every row block
/// of the thread's range streams past it.
const PANEL_BYTES: u64 = 256 * 1024;

fn outer(e: &mut Emitter, p: &Parts, depth: usize, acc_ptr: Value) -> R<()> {
    let r = e.kernel.loops.len();
    if depth == r - 2 {
        // Rows and columns this call covers: the parallel axis may be either.
        let (lo, hi) = e.loop_bounds(depth)?;
        let (n_lo, n) = e.loop_bounds(r - 1)?;
        // Columns before the first multiple of 8 (only when a thread's range starts
        // mid-panel) run through the scalar body, so vector blocks always start on a
        // panel boundary of the packed B.
        let up = e.b.ins().iadd_imm_s(n_lo, 7);
        let up = e.b.ins().band_imm_s(up, !7);
        let zero = e.b.ins().smin(up, n);
        let body = e.kernel.body.clone();
        e.for_range(p.m, lo, hi, 1, &mut |e| {
            e.for_range(p.n, n_lo, zero, 1, &mut |e| e.stmts(&body))?;
            Ok(())
        })?;
        let panel = match p.k_extent.as_known() {
            Some(k) if k > 0 => (PANEL_BYTES / (4 * k)).clamp(8, 4096) / 8 * 8,
            _ => 64,
        } as i64;
        e.for_range(PANEL_VAR, zero, n, panel, &mut |e| {
            let nc = e.var_value(PANEL_VAR);
            let end = e.b.ins().iadd_imm_s(nc, panel);
            let nc_end = e.b.ins().smin(end, n);
            let at = e.for_range(p.m, lo, hi, 4, &mut |e| {
                columns(e, p, 4, nc, nc_end, acc_ptr)
            })?;
            e.for_range(p.m, at, hi, 1, &mut |e| {
                columns(e, p, 1, nc, nc_end, acc_ptr)
            })?;
            Ok(())
        })
        .and_then(|at| {
            // The last, partial panel.
            let at2 = e.for_range(p.m, lo, hi, 4, &mut |e| columns(e, p, 4, at, n, acc_ptr))?;
            e.for_range(p.m, at2, hi, 1, &mut |e| columns(e, p, 1, at, n, acc_ptr))?;
            Ok(())
        })?;
        return Ok(());
    }
    let var = e.kernel.loops[depth].var;
    let (lo, hi) = e.loop_bounds(depth)?;
    e.for_range(var, lo, hi, 1, &mut |e| outer(e, p, depth + 1, acc_ptr))?;
    Ok(())
}

/// Columns `n_lo..n_hi` of the `mr` rows starting at the current `m`.
fn columns(e: &mut Emitter, p: &Parts, mr: i64, n_lo: Value, n_hi: Value, acc_ptr: Value) -> R<()> {
    let at = e.for_range(p.n, n_lo, n_hi, 2 * LANES, &mut |e| {
        micro(e, p, mr, 2, acc_ptr)
    })?;
    let at = e.for_range(p.n, at, n_hi, LANES, &mut |e| micro(e, p, mr, 1, acc_ptr))?;
    let m0 = e.var_value(p.m);
    let body = e.kernel.body.clone();
    e.for_range(p.n, at, n_hi, 1, &mut |e| {
        for r in 0..mr {
            let m = e.b.ins().iadd_imm_s(m0, r);
            e.set_var(p.m, m);
            e.stmts(&body)?;
        }
        e.set_var(p.m, m0);
        Ok(())
    })?;
    e.set_var(p.m, m0);
    Ok(())
}

/// One `mr` × `nv`·4 block at the current (`m`, `n`).
fn micro(e: &mut Emitter, p: &Parts, mr: i64, nv: i64, acc_ptr: Value) -> R<()> {
    let m0 = e.var_value(p.m);
    let n0 = e.var_value(p.n);
    let zero = e.b.ins().iconst(types::I64, 0);
    e.set_var(p.k, zero);
    // Pointers at k = 0 into A's first row of the block and into B at n0; each step of
    // k advances them by one stride, and the other rows of A are reached by immediate
    // offsets when A's row stride is known (one pointer instead of four in registers).
    let a_row_bytes = p.a.1.stride_of(p.m).as_known().map(|s| s as i64 * 4);
    let a_base = e.base(p.a.0)?;
    let mut rows: Vec<Value> = vec![];
    for r in 0..mr {
        if r > 0 && a_row_bytes.is_some_and(|b| b * mr < i32::MAX as i64) {
            break;
        }
        let m = e.b.ins().iadd_imm_s(m0, r);
        e.set_var(p.m, m);
        let off = e.offset(p.a.1, None)?;
        let bytes = e.b.ins().imul_imm_s(off, 4);
        rows.push(e.b.ins().iadd(a_base, bytes));
    }
    e.set_var(p.m, m0);
    let sa_k = p.a.1.stride_of(p.k);
    let sa_k = e.size(&sa_k)?;
    let sa_k4 = e.b.ins().imul_imm_s(sa_k, 4);
    // B: the packed panels when the kernel has them (8 columns × K rows, contiguous),
    // else B itself.
    let (pb0, sb_k4, packed_k_bytes) = match (
        e.packed_b,
        smelt_lower::matmul::packable_b(e.program, e.kernel),
    ) {
        (Some(base), Some((k, _))) => {
            let tile = e.b.ins().ushr_imm_s(n0, 3);
            let tile_bytes = e.b.ins().imul_imm_s(tile, (k * 32) as i64);
            let lane = e.b.ins().band_imm_s(n0, 7);
            let lane_bytes = e.b.ins().imul_imm_s(lane, 4);
            let off = e.b.ins().iadd(tile_bytes, lane_bytes);
            let pb0 = e.b.ins().iadd(base, off);
            (pb0, e.b.ins().iconst(types::I64, 32), Some(32))
        }
        _ => {
            let b_off = e.offset(p.b.1, None)?;
            let b_bytes = e.b.ins().imul_imm_s(b_off, 4);
            let b_base = e.base(p.b.0)?;
            let pb0 = e.b.ins().iadd(b_base, b_bytes);
            let sb_k = p.b.1.stride_of(p.k);
            let sb_k = e.size(&sb_k)?;
            (pb0, e.b.ins().imul_imm_s(sb_k, 4), None)
        }
    };
    let row_ptrs: Vec<Variable> = rows
        .iter()
        .map(|v| {
            let x = e.b.declare_var(types::I64);
            e.b.def_var(x, *v);
            x
        })
        .collect();
    let pb = e.b.declare_var(types::I64);
    e.b.def_var(pb, pb0);
    let accs: Vec<Variable> = (0..mr * nv)
        .map(|_| {
            let x = e.b.declare_var(F32X4);
            let z = e.float_const(F32X4, 0.0);
            e.b.def_var(x, z);
            x
        })
        .collect();
    let k_ext = e.size(p.k_extent)?;
    // Strides known at compile time become immediate offsets, so the unrolled steps
    // share one pointer increment.
    let sa_k_bytes = p.a.1.stride_of(p.k).as_known().map(|s| s as i64 * 4);
    let sb_k_bytes =
        packed_k_bytes.or_else(|| p.b.1.stride_of(p.k).as_known().map(|s| s as i64 * 4));
    let unroll = if sa_k_bytes.is_some() && sb_k_bytes.is_some() {
        UNROLL
    } else {
        1
    };
    let step = |e: &mut Emitter, steps: i64| -> R<()> {
        let pbk = e.b.use_var(pb);
        let ptrs: Vec<Value> = row_ptrs.iter().map(|x| e.b.use_var(*x)).collect();
        for u in 0..steps {
            let b_off = sb_k_bytes.map_or(0, |s| s * u);
            let bv: Vec<Value> = (0..nv)
                .map(|j| e.b.ins().load(F32X4, flags(), pbk, (b_off + 16 * j) as i32))
                .collect();
            for r in 0..mr as usize {
                let (ptr, off) = match (ptrs.get(r), a_row_bytes) {
                    (Some(p), _) => (*p, 0),
                    (None, Some(rb)) => (ptrs[0], rb * r as i64),
                    (None, None) => return Err(e.unsupported("missing A row pointer")),
                };
                let off = off + sa_k_bytes.map_or(0, |s| s * u);
                let a = e.b.ins().load(types::F32, flags(), ptr, off as i32);
                let av = e.b.ins().splat(F32X4, a);
                for (j, b) in bv.iter().enumerate() {
                    let x = accs[r * nv as usize + j];
                    let acc = e.b.use_var(x);
                    let y = if e.fma {
                        e.b.ins().fma(av, *b, acc)
                    } else {
                        let t = e.b.ins().fmul(av, *b);
                        e.b.ins().fadd(t, acc)
                    };
                    e.b.def_var(x, y);
                }
            }
        }
        let (da, db) = if steps == 1 {
            (sa_k4, sb_k4)
        } else {
            (
                e.b.ins()
                    .iconst(types::I64, sa_k_bytes.unwrap_or(0) * steps),
                e.b.ins()
                    .iconst(types::I64, sb_k_bytes.unwrap_or(0) * steps),
            )
        };
        for (x, p) in row_ptrs.iter().zip(&ptrs) {
            let next = e.b.ins().iadd(*p, da);
            e.b.def_var(*x, next);
        }
        let next = e.b.ins().iadd(pbk, db);
        e.b.def_var(pb, next);
        Ok(())
    };
    let at = if unroll > 1 {
        e.for_range(p.k, zero, k_ext, unroll, &mut |e| step(e, unroll))?
    } else {
        zero
    };
    e.for_range(p.k, at, k_ext, 1, &mut |e| step(e, 1))?;
    if let Some(f) = e.epilogue {
        for r in 0..mr {
            for j in 0..nv {
                let acc = e.b.use_var(accs[(r * nv + j) as usize]);
                e.b.ins()
                    .store(flags(), acc, acc_ptr, (16 * (2 * r + j)) as i32);
            }
        }
        for d in 0..e.kernel.loops.len() - 2 {
            let v = e.var_value(e.kernel.loops[d].var);
            e.b.ins()
                .store(flags(), v, acc_ptr, (ACC_BYTES + 8 * d as i64) as i32);
        }
        let rows = e.b.ins().iconst(types::I64, mr);
        let vecs = e.b.ins().iconst(types::I64, nv);
        let args = [e.bufs, e.dims_ptr, m0, n0, acc_ptr, rows, vecs];
        e.b.ins().call(f, &args);
    } else {
        for r in 0..mr {
            let m = e.b.ins().iadd_imm_s(m0, r);
            e.set_var(p.m, m);
            for j in 0..nv {
                let n = e.b.ins().iadd_imm_s(n0, j * LANES);
                e.set_var(p.n, n);
                let acc = e.b.use_var(accs[(r * nv + j) as usize]);
                let mut cx = VecCtx {
                    var: Some(p.n),
                    temps: HashMap::from([(p.acc, acc)]),
                };
                e.vec_stmts(p.n, p.epilogue, &mut cx)?;
            }
        }
    }
    e.set_var(p.m, m0);
    e.set_var(p.n, n0);
    Ok(())
}

/// Loop variables of the epilogue function (no kernel uses them).
const ROW_VAR: Var = Var(u32::MAX - 2);
const VEC_VAR: Var = Var(u32::MAX - 3);

/// The body of a template kernel's epilogue function: for `rows` × `vectors` blocks of
/// accumulators at `acc_ptr` (row-major, two vectors per row; the outer loop variables'
/// values follow them), the kernel's epilogue with `m = m0 + row` and
/// `n = n0 + 4·vector` (`m0`, `n0` arrive as the function's third and fourth
/// parameters).
pub(crate) fn emit_epilogue_fn(e: &mut Emitter, acc_ptr: Value, rows: Value, vecs: Value) -> R<()> {
    let Some(p) = parts(e.program, e.kernel) else {
        return Err(e.unsupported("epilogue of a kernel without the matmul shape"));
    };
    let (m0, n0) = (e.start, e.end);
    for d in 0..e.kernel.loops.len() - 2 {
        let v = e.b.ins().load(
            types::I64,
            flags(),
            acc_ptr,
            (ACC_BYTES + 8 * d as i64) as i32,
        );
        e.set_var(e.kernel.loops[d].var, v);
    }
    let zero = e.b.ins().iconst(types::I64, 0);
    e.for_range(ROW_VAR, zero, rows, 1, &mut |e| {
        let r = e.var_value(ROW_VAR);
        let m = e.b.ins().iadd(m0, r);
        e.set_var(p.m, m);
        e.for_range(VEC_VAR, zero, vecs, 1, &mut |e| {
            let j = e.var_value(VEC_VAR);
            let r = e.var_value(ROW_VAR);
            let j4 = e.b.ins().imul_imm_s(j, LANES);
            let n = e.b.ins().iadd(n0, j4);
            e.set_var(p.n, n);
            let slot = e.b.ins().imul_imm_s(r, 2);
            let slot = e.b.ins().iadd(slot, j);
            let off = e.b.ins().imul_imm_s(slot, 16);
            let addr = e.b.ins().iadd(acc_ptr, off);
            let acc = e.b.ins().load(F32X4, flags(), addr, 0);
            let mut cx = VecCtx {
                var: Some(p.n),
                temps: HashMap::from([(p.acc, acc)]),
            };
            e.vec_stmts(p.n, p.epilogue, &mut cx)
        })?;
        Ok(())
    })?;
    Ok(())
}

/// Panel width of packed B: two f32x4 vectors.
pub(crate) const PANEL: usize = 8;

/// B packed for the micro-kernel.
pub(crate) fn pack_b(program: &KernelProgram, kernel: &Kernel) -> Option<Vec<u8>> {
    parts(program, kernel)?;
    smelt_lower::matmul::pack_b(program, kernel, PANEL)
}
