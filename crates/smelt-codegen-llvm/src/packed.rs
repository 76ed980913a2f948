//! The packed-B matmul micro-kernel: for kernels of matmul shape whose B is a plain
//! constant (`smelt_lower::matmul::packable_b`), B is packed at compile time into
//! panels of NR columns, two vectors wide (`pack_b`; a private constant global aligned
//! to 64 bytes), and every block of [`MR`] rows × NR columns keeps its accumulators in
//! explicit vector registers:
//!
//! ```text
//! acc[MR][2] = 0                                 // 2 vectors of NR/2 lanes per row
//! for k (unrolled ×4): b0, b1 = packed[c0/NR][k]  // one contiguous 2-vector load
//!     for r: acc[r][j] = fmuladd(splat(A[r0+r, k]), b_j, acc[r][j])
//! acc → the block array of `acc`; the epilogue per valid point (block.rs `points`)
//! ```
//!
//! With AVX2 that is 6 × 2 `<8 x float>` accumulators, two B vectors and one
//! broadcast: 15 of the 16 ymm registers (AVX-512: `<16 x float>`, NR = 32; without
//! AVX: `<4 x float>`, NR = 8).
//!
//! Loop order: when one block column of packed B (K × NR floats) fits L1
//! ([`L1_B_BYTES`]), columns outside and row blocks inside, so every row block reuses
//! it from L1; otherwise column panels whose packed B fits L2 ([`PANEL_BYTES`]), row
//! blocks inside, columns of the panel innermost.
//!
//! Tails: a row tail computes all `MR` rows, the missing ones reading row `r0` again;
//! a column tail the whole zero-padded panel; only valid points go through the
//! epilogue. A column range that starts inside a panel (the columns being the parallel
//! axis) begins with one block whose B reads start mid-panel row: the columns past the
//! panel's end read the next row of the panel (or the padding after the last panel)
//! and are never stored.

use inkwell::builder::Builder;
use inkwell::context::Context;
use inkwell::module::{Linkage, Module};
use inkwell::types::VectorType;
use inkwell::values::{BasicValue, IntValue, PointerValue, VectorValue};
use inkwell::IntPredicate;
use smelt_lower::matmul::{matmul_parts, pack_b, packable_b};
use smelt_lower::{Kernel, KernelProgram};

use crate::block::{Plan, Tile, COLS};
use crate::emit::{ll, Access, Emitter, R};
use crate::CodegenError;

/// Rows per micro-kernel block.
pub(crate) const MR: u64 = 6;
/// Accumulator vectors per row.
const NV: u64 = 2;
/// Steps of the reduction per trip of the k loop.
const UNROLL: u64 = 4;
/// Bytes of packed B one column panel may take.
const PANEL_BYTES: u64 = 256 * 1024;
/// Bytes of packed B one block column (K × NR) may take to be kept in L1 while every
/// row block passes.
const L1_B_BYTES: u64 = 24 * 1024;

/// f32 lanes per vector for `features`: 16 with AVX-512, 8 with AVX, else 4 (SSE).
pub(crate) fn lanes(features: &str) -> u32 {
    let has = |x: &str| features.split(',').any(|f| f == x);
    if has("+avx512f") {
        16
    } else if has("+avx") {
        8
    } else {
        4
    }
}

/// The packed B of a kernel and the state its micro-kernel needs.
#[derive(Clone, Copy)]
pub(crate) struct Packed<'ctx> {
    /// The packed panels (f32, `pack_b` layout, padded by one panel row).
    pub(crate) base: PointerValue<'ctx>,
    /// The reduction's length.
    pub(crate) k: u64,
    /// f32 lanes per vector.
    pub(crate) lanes: u32,
    /// Counters: column panel, k step.
    pub(crate) slots: [PointerValue<'ctx>; 2],
    /// One slot per accumulator vector (row-major, [`NV`] per row).
    pub(crate) accs: [PointerValue<'ctx>; (MR * NV) as usize],
}

/// Pack B of `kernel` into a global of `module` when the kernel qualifies (matmul
/// shape, packable B, and a row-blocking plan), with the entry-block slots; the
/// builder is in the entry block.
#[allow(clippy::too_many_arguments)]
pub(crate) fn setup<'ctx>(
    cx: &'ctx Context,
    module: &Module<'ctx>,
    b: &Builder<'ctx>,
    name: &str,
    program: &KernelProgram,
    kernel: &Kernel,
    plan: &Plan<'_>,
    features: &str,
) -> R<Option<Packed<'ctx>>> {
    if !plan.rows {
        return Ok(None);
    }
    let Some(parts) = matmul_parts(program, kernel) else {
        return Ok(None);
    };
    let Some((k, _)) = packable_b(program, kernel) else {
        return Ok(None);
    };
    // The blocking plan must be the matmul's own split of the body.
    if plan.red_var != parts.k || plan.epilogue.len() != parts.epilogue.len() || k == 0 {
        return Ok(None);
    }
    let lanes = lanes(features);
    let nr = NV as usize * lanes as usize;
    let Some(mut bytes) = pack_b(program, kernel, nr) else {
        return Ok(None);
    };
    bytes.resize(bytes.len() + nr * 4, 0);
    let data = cx.const_string(&bytes, false);
    let g = module.add_global(data.get_type(), None, &format!("{name}_packed_b"));
    g.set_initializer(&data);
    g.set_constant(true);
    g.set_linkage(Linkage::Private);
    g.set_unnamed_addr(true);
    g.set_alignment(64);
    let i64t = cx.i64_type();
    let mut slots = vec![];
    for s in ["panel", "k_step"] {
        slots.push(b.build_alloca(i64t, s).map_err(ll)?);
    }
    let vty = cx.f32_type().vec_type(lanes);
    let mut accs = vec![];
    for i in 0..MR * NV {
        accs.push(b.build_alloca(vty, &format!("acc{i}")).map_err(ll)?);
    }
    Ok(Some(Packed {
        base: g.as_pointer_value(),
        k,
        lanes,
        slots: [slots[0], slots[1]],
        accs: accs.try_into().expect("MR * NV slots"),
    }))
}

impl<'ctx> Emitter<'_, 'ctx> {
    fn i64c(&self, v: u64) -> IntValue<'ctx> {
        self.cx.i64_type().const_int(v, false)
    }

    fn smin(&self, a: IntValue<'ctx>, b: IntValue<'ctx>) -> R<IntValue<'ctx>> {
        let lt = self
            .b
            .build_int_compare(IntPredicate::SLT, a, b, "")
            .map_err(ll)?;
        Ok(self
            .b
            .build_select(lt, a, b, "")
            .map_err(ll)?
            .into_int_value())
    }

    /// `for blk in 0..ceil((hi - lo) / size) { body(lo + blk·size, min(size, rest)) }`.
    fn blocks(
        &mut self,
        slot: PointerValue<'ctx>,
        lo: IntValue<'ctx>,
        hi: IntValue<'ctx>,
        size: u64,
        body: &mut dyn FnMut(&mut Self, IntValue<'ctx>, IntValue<'ctx>) -> R<()>,
    ) -> R<()> {
        let span = self.b.build_int_sub(hi, lo, "").map_err(ll)?;
        let up = self
            .b
            .build_int_nsw_add(span, self.i64c(size - 1), "")
            .map_err(ll)?;
        let n = self
            .b
            .build_int_signed_div(up, self.i64c(size), "")
            .map_err(ll)?;
        self.counted(slot, self.i64c(0), n, &mut |e, blk| {
            let off = e.b.build_int_nsw_mul(blk, e.i64c(size), "").map_err(ll)?;
            let v0 = e.b.build_int_nsw_add(lo, off, "").map_err(ll)?;
            let rest = e.b.build_int_sub(hi, v0, "").map_err(ll)?;
            let len = e.smin(rest, e.i64c(size))?;
            body(e, v0, len)
        })
    }

    /// The row and column loops (from `depth`, the row loop) of a packed-B kernel.
    pub(crate) fn packed_loops(&mut self, depth: usize, plan: Plan<'_>, pk: Packed<'ctx>) -> R<()> {
        let st = self.block.expect("a blocking plan");
        let last = self.kernel.loops.len() - 1;
        let nr = NV * pk.lanes as u64;
        let (rlo, rhi) = self.loop_bounds(depth)?;
        let (mut clo, chi) = self.loop_bounds(last)?;
        if self.kernel.schedule.parallel_axis == Some(last) {
            // Columns up to the first panel boundary: one (partial) block.
            let up = self
                .b
                .build_int_nsw_add(clo, self.i64c(nr - 1), "")
                .map_err(ll)?;
            let up = self
                .b
                .build_and(up, self.cx.i64_type().const_int(!(nr - 1), true), "")
                .map_err(ll)?;
            let up = self.smin(up, chi)?;
            let lead = self.b.build_int_sub(up, clo, "").map_err(ll)?;
            let any = self
                .b
                .build_int_compare(IntPredicate::SGT, lead, self.i64c(0), "")
                .map_err(ll)?;
            let f = self.function();
            let then = self.cx.append_basic_block(f, "lead");
            let merge = self.cx.append_basic_block(f, "lead_done");
            self.b
                .build_conditional_branch(any, then, merge)
                .map_err(ll)?;
            self.b.position_at_end(then);
            self.blocks(st.slots[0], rlo, rhi, MR, &mut |e, r0, mr| {
                e.micro(depth, plan, pk, (r0, mr), (clo, lead))
            })?;
            self.b.build_unconditional_branch(merge).map_err(ll)?;
            self.b.position_at_end(merge);
            clo = up;
        }
        let nc = (PANEL_BYTES / (4 * pk.k)).clamp(nr, 4096) / nr * nr;
        if pk.k * nr * 4 <= L1_B_BYTES {
            // One block column of packed B fits L1: every row block reuses it from there
            // (A streams from L2).
            return self.tiled(clo, chi, nr, st.slots[1], &mut |e, c0, cn| {
                e.blocks(st.slots[0], rlo, rhi, MR, &mut |e, r0, mr| {
                    e.micro(depth, plan, pk, (r0, mr), (c0, cn))
                })
            });
        }
        self.blocks(pk.slots[0], clo, chi, nc, &mut |e, pc, pn| {
            let pe = e.b.build_int_nsw_add(pc, pn, "").map_err(ll)?;
            e.blocks(st.slots[0], rlo, rhi, MR, &mut |e, r0, mr| {
                e.tiled(pc, pe, nr, st.slots[1], &mut |e, c0, cn| {
                    e.micro(depth, plan, pk, (r0, mr), (c0, cn))
                })
            })
        })
    }

    /// One block: rows `r0..r0+mr` (`mr` ≤ [`MR`]), columns `c0..c0+cn` (within one
    /// panel row of packed B), then the epilogue for its points.
    fn micro(
        &mut self,
        depth: usize,
        plan: Plan<'_>,
        pk: Packed<'ctx>,
        (r0, mr): (IntValue<'ctx>, IntValue<'ctx>),
        (c0, cn): (IntValue<'ctx>, IntValue<'ctx>),
    ) -> R<()> {
        let parts = matmul_parts(self.program, self.kernel)
            .ok_or_else(|| self.unsupported("packed kernel without the matmul shape"))?;
        let f32t = self.cx.f32_type();
        let vty = f32t.vec_type(pk.lanes);
        let nr = NV * pk.lanes as u64;
        for a in pk.accs {
            self.b.build_store(a, vty.const_zero()).map_err(ll)?;
        }
        // Row pointers into A at k = 0; rows past the block's end read row r0.
        let (a_buf, a_idx) = parts.a;
        let a_align = self.align(a_buf);
        let m_slot = self.var_slot(parts.m)?;
        let k_slot = self.var_slot(parts.k)?;
        self.b.build_store(k_slot, self.i64c(0)).map_err(ll)?;
        let mut rows = vec![];
        for r in 0..MR {
            let valid = self
                .b
                .build_int_compare(IntPredicate::SLT, self.i64c(r), mr, "")
                .map_err(ll)?;
            let rr = self.b.build_int_nsw_add(r0, self.i64c(r), "").map_err(ll)?;
            let rr = self
                .b
                .build_select(valid, rr, r0, "")
                .map_err(ll)?
                .into_int_value();
            self.b.build_store(m_slot, rr).map_err(ll)?;
            rows.push(self.address(a_buf, a_idx)?);
        }
        let sa_k = self.size(&a_idx.stride_of(parts.k))?;
        // Packed B at column c0: panel c0 / NR, lane c0 % NR.
        let panel = self
            .b
            .build_int_signed_div(c0, self.i64c(nr), "")
            .map_err(ll)?;
        let lane = self
            .b
            .build_int_signed_rem(c0, self.i64c(nr), "")
            .map_err(ll)?;
        let off = self
            .b
            .build_int_nsw_mul(panel, self.i64c(pk.k * nr), "")
            .map_err(ll)?;
        let off = self.b.build_int_nsw_add(off, lane, "").map_err(ll)?;
        // SAFETY (of the GEP): inside the packed global (padded by one panel row).
        let pb = unsafe { self.b.build_in_bounds_gep(f32t, pk.base, &[off], "") }.map_err(ll)?;

        let step = |e: &mut Self, k: IntValue<'ctx>| -> R<()> {
            let boff = e.b.build_int_nsw_mul(k, e.i64c(nr), "").map_err(ll)?;
            let mut bv = vec![];
            for j in 0..NV {
                let o =
                    e.b.build_int_nsw_add(boff, e.i64c(j * pk.lanes as u64), "")
                        .map_err(ll)?;
                // SAFETY (of the GEP): as above.
                let p = unsafe { e.b.build_in_bounds_gep(f32t, pb, &[o], "") }.map_err(ll)?;
                let v = e.b.build_load(vty, p, "").map_err(ll)?;
                let i = v.as_instruction_value().expect("a load");
                i.set_alignment(4)
                    .map_err(|x| CodegenError::Llvm(x.to_string()))?;
                e.mark_access(Some(i), Access::Buffer)?;
                bv.push(v.into_vector_value());
            }
            let aoff = e.b.build_int_nsw_mul(k, sa_k, "").map_err(ll)?;
            for (r, row) in rows.iter().enumerate() {
                // SAFETY (of the GEP): A's element (row, k), inside A.
                let p = unsafe { e.b.build_in_bounds_gep(f32t, *row, &[aoff], "") }.map_err(ll)?;
                let a = e.b.build_load(f32t, p, "").map_err(ll)?;
                let i = a.as_instruction_value().expect("a load");
                i.set_alignment(a_align)
                    .map_err(|x| CodegenError::Llvm(x.to_string()))?;
                e.mark_access(Some(i), Access::Buffer)?;
                let av = e.splat(vty, a.into_float_value())?;
                for (j, b) in bv.iter().enumerate() {
                    let slot = pk.accs[r * NV as usize + j];
                    let acc = e.b.build_load(vty, slot, "").map_err(ll)?;
                    let y = e.call_intrinsic(
                        "llvm.fmuladd",
                        &[vty.into()],
                        &[av.into(), (*b).into(), acc.into()],
                    )?;
                    e.b.build_store(slot, y).map_err(ll)?;
                }
            }
            Ok(())
        };
        let trips = pk.k / UNROLL;
        if trips > 0 {
            self.counted(pk.slots[1], self.i64c(0), self.i64c(trips), &mut |e, q| {
                let k0 = e.b.build_int_nsw_mul(q, e.i64c(UNROLL), "").map_err(ll)?;
                for u in 0..UNROLL {
                    let k = e.b.build_int_nsw_add(k0, e.i64c(u), "").map_err(ll)?;
                    step(e, k)?;
                }
                Ok(())
            })?;
        }
        for k in trips * UNROLL..pk.k {
            step(self, self.i64c(k))?;
        }
        // The accumulators into the block array of `acc` (point r·COLS + column).
        let (arr, _) = *self
            .expanded
            .get(&parts.acc)
            .ok_or_else(|| self.unsupported("accumulator not expanded"))?;
        for r in 0..MR {
            for j in 0..NV {
                let acc = self
                    .b
                    .build_load(vty, pk.accs[(r * NV + j) as usize], "")
                    .map_err(ll)?;
                let at = self.i64c(r * COLS + j * pk.lanes as u64);
                // SAFETY (of the GEP): r·COLS + NR ≤ SLOTS, the array's length.
                let p = unsafe { self.b.build_in_bounds_gep(f32t, arr, &[at], "") }.map_err(ll)?;
                let st = self.b.build_store(p, acc).map_err(ll)?;
                st.set_alignment(4)
                    .map_err(|x| CodegenError::Llvm(x.to_string()))?;
                self.mark_access(Some(st), Access::Array)?;
            }
        }
        let last = self.kernel.loops.len() - 1;
        let tile = Tile {
            row: Some((self.kernel.loops[depth].var, r0, mr)),
            col: (self.kernel.loops[last].var, c0, cn),
        };
        self.points(tile, plan.epilogue)
    }

    /// `x` in every lane of a `vty`.
    fn splat(
        &self,
        vty: VectorType<'ctx>,
        x: inkwell::values::FloatValue<'ctx>,
    ) -> R<VectorValue<'ctx>> {
        let i32t = self.cx.i32_type();
        let v = self
            .b
            .build_insert_element(vty.get_poison(), x, i32t.const_zero(), "")
            .map_err(ll)?;
        let mask = i32t.vec_type(vty.get_size()).const_zero();
        self.b
            .build_shuffle_vector(v, vty.get_poison(), mask, "")
            .map_err(ll)
    }
}
