//! The GPU schedule of each kernel: which of the three kernel shapes it is emitted as,
//! and the grid and block it is launched with. Emission ([`super`]) and the launch
//! manifest both read it from here, so they cannot disagree.
//!
//! - [`GpuSchedule::TiledMatmul`]: kernels of matmul shape (`acc = 0; reduce k { acc =
//!   acc + A(m, k) · B(k, n) }; epilogue`, where A and B are any f32 expressions: plain
//!   loads, or the decoding of an encoded weight). A block of 16 × 16 threads computes
//!   a 64 × 64 output tile, 4 × 4 points per thread; A and B are staged through shared
//!   memory 16 steps of `k` at a time. The grid is `(⌈N/64⌉, ⌈M/64⌉, batch)`.
//! - [`GpuSchedule::WarpPerPoint`]: kernels whose body reduces (Softmax, LayerNorm,
//!   reductions, convolutions, matmuls the tiled form does not take): one warp per
//!   output point, the body's top-level loops split across the 32 lanes and every
//!   accumulator combined with a butterfly of warp shuffles. Blocks hold 8 warps.
//! - [`GpuSchedule::Point`]: everything else (elementwise chains, copies), one thread
//!   per output point.

use std::collections::{HashMap, HashSet};

use smelt_ir::DType;
use smelt_lower::{
    BinaryOp, Expr, Kernel, KernelKind, KernelProgram, Local, Loop, Size, Stmt, Var,
};

/// Rows and columns of the output tile one block of a tiled matmul computes.
pub(crate) const TILE: u64 = 64;
/// Threads along each side of a tiled matmul's block (each computes `TILE / THREADS`
/// rows and columns).
pub(crate) const TILE_THREADS: u32 = 16;
/// Steps of `k` staged in shared memory at a time.
pub(crate) const TILE_K: u64 = 16;
/// Padding of each `k` row of the A tile in shared memory (breaks bank conflicts).
pub(crate) const A_PAD: u64 = 1;
/// Lanes of a warp.
pub(crate) const WARP: u32 = 32;
/// Warps per block of a warp-per-point kernel.
pub(crate) const WARPS_PER_BLOCK: u32 = 8;

/// How a kernel's work is spread over the GPU (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GpuSchedule {
    /// One thread per output point.
    Point,
    /// One warp per output point; reductions split across lanes.
    WarpPerPoint,
    /// 64 × 64 output tiles per block of 16 × 16 threads, operands staged in shared
    /// memory.
    TiledMatmul,
}

impl GpuSchedule {
    /// The schedule's name in the launch manifest.
    pub fn name(self) -> &'static str {
        match self {
            GpuSchedule::Point => "point",
            GpuSchedule::WarpPerPoint => "warp-per-point",
            GpuSchedule::TiledMatmul => "tiled-matmul",
        }
    }
}

/// One grid dimension: a size, or a size divided by a block extent, rounded up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GridDim {
    /// Exactly this many blocks.
    Exact(Size),
    /// `⌈size / per_block⌉` blocks (at least 1).
    CeilDiv(Size, u64),
}

impl GridDim {
    /// The number of blocks with the program's named dims bound by `lookup`; `Err`
    /// names the first dim `lookup` does not know.
    pub fn eval(&self, lookup: impl Fn(&str) -> Option<u64>) -> Result<u64, String> {
        Ok(match self {
            GridDim::Exact(s) => s.eval(lookup)?.max(1),
            GridDim::CeilDiv(s, d) => s.eval(lookup)?.div_ceil((*d).max(1)).max(1),
        })
    }

    /// The value as JSON: a number when known, else a formula string.
    pub(crate) fn json(&self) -> String {
        match self {
            GridDim::Exact(s) => match s.as_known() {
                Some(n) => n.max(1).to_string(),
                None => format!("\"{s}\""),
            },
            GridDim::CeilDiv(s, d) => match s.as_known() {
                Some(n) => n.div_ceil((*d).max(1)).max(1).to_string(),
                None => format!("\"ceil({s} / {d})\""),
            },
        }
    }
}

/// How to launch one kernel of a PTX module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuLaunch {
    /// The `.entry` symbol.
    pub symbol: String,
    /// The kernel's name in the program (for messages and profiles).
    pub kernel: String,
    /// Its schedule.
    pub schedule: GpuSchedule,
    /// Blocks along x, y and z.
    pub grid: [GridDim; 3],
    /// Threads per block along x, y and z.
    pub block: [u32; 3],
    /// Static shared memory the kernel declares, in bytes (informational: it is part of
    /// the PTX, not a launch parameter).
    pub shared_bytes: u32,
}

/// The launch of every kernel of `program`, in order. `point_block` is the block size
/// of one-thread-per-point kernels.
pub fn gpu_launches(program: &KernelProgram, point_block: u32) -> Vec<GpuLaunch> {
    let point_block = point_block.clamp(1, 1024);
    program
        .kernels
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let symbol = crate::kernel_symbol(super::PREFIX, i);
            let points = product(k.loops.iter().map(|l| l.extent.clone()));
            let one = || GridDim::Exact(Size::known(1));
            let (schedule, grid, block, shared_bytes) = if let Some(mm) = gpu_matmul(program, k) {
                let r = k.loops.len();
                let batch = product(mm.batch.iter().map(|l| l.extent.clone()));
                let shared = (TILE_K * (TILE + A_PAD) + TILE_K * TILE) * 4;
                (
                    GpuSchedule::TiledMatmul,
                    [
                        GridDim::CeilDiv(k.loops[r - 1].extent.clone(), TILE),
                        GridDim::CeilDiv(k.loops[r - 2].extent.clone(), TILE),
                        GridDim::Exact(batch),
                    ],
                    [TILE_THREADS, TILE_THREADS, 1],
                    shared as u32,
                )
            } else if warp_plan(k).is_some() {
                (
                    GpuSchedule::WarpPerPoint,
                    [
                        GridDim::CeilDiv(points, u64::from(WARPS_PER_BLOCK)),
                        one(),
                        one(),
                    ],
                    [WARP, WARPS_PER_BLOCK, 1],
                    0,
                )
            } else {
                (
                    GpuSchedule::Point,
                    [
                        GridDim::CeilDiv(points, u64::from(point_block)),
                        one(),
                        one(),
                    ],
                    [point_block, 1, 1],
                    0,
                )
            };
            GpuLaunch {
                symbol,
                kernel: k.name.clone(),
                schedule,
                grid,
                block,
                shared_bytes,
            }
        })
        .collect()
}

/// The product of `sizes`.
pub(crate) fn product(sizes: impl Iterator<Item = Size>) -> Size {
    sizes.fold(Size::known(1), |a, s| a.mul(&s))
}

// ------------------------------------------------------------------ tiled matmuls

/// The parts of a kernel the tiled matmul schedule takes.
pub(crate) struct GpuMatmul<'k> {
    /// The batch loops (all output loops but the last two).
    pub batch: &'k [Loop],
    /// Row and column variables.
    pub m: Var,
    pub n: Var,
    /// The reduction variable and its trip count.
    pub k: Var,
    pub k_extent: &'k Size,
    /// The accumulator the epilogue reads.
    pub acc: Local,
    /// The A operand (depends on batch, `m`, `k`) and the B operand (batch, `k`, `n`).
    pub a: &'k Expr,
    pub b: &'k Expr,
    /// The statements after the reduction.
    pub epilogue: &'k [Stmt],
}

/// The tiled-matmul parts of `kernel` when it has matmul shape with f32 operands that
/// read no locals.
pub(crate) fn gpu_matmul<'k>(program: &KernelProgram, kernel: &'k Kernel) -> Option<GpuMatmul<'k>> {
    if kernel.kind != KernelKind::MatMul || kernel.loops.len() < 2 {
        return None;
    }
    let r = kernel.loops.len();
    let (m, n) = (kernel.loops[r - 2].var, kernel.loops[r - 1].var);
    let [Stmt::Assign(acc, Expr::Lit(zero, DType::F32)), Stmt::Loop {
        var: kv,
        extent,
        reduce: true,
        body,
    }, epilogue @ ..] = kernel.body.as_slice()
    else {
        return None;
    };
    if *zero != 0.0 || kernel.locals.get(acc.0 as usize) != Some(&DType::F32) {
        return None;
    }
    let [Stmt::Assign(acc2, Expr::Binary(BinaryOp::Add, sum, prod))] = body.as_slice() else {
        return None;
    };
    if acc2 != acc || **sum != Expr::Local(*acc) {
        return None;
    }
    let Expr::Binary(BinaryOp::Mul, x, y) = &**prod else {
        return None;
    };
    let batch = &kernel.loops[..r - 2];
    let fits = |e: &Expr, other: Var| {
        let mut vars = HashSet::new();
        if !expr_vars(e, &mut vars) || e.dtype(program, kernel) != DType::F32 {
            return false;
        }
        vars.iter().all(|v| {
            *v == *kv || *v == (if other == n { m } else { n }) || batch.iter().any(|l| l.var == *v)
        })
    };
    let (a, b) = if fits(x, n) && fits(y, m) {
        (&**x, &**y)
    } else if fits(y, n) && fits(x, m) {
        (&**y, &**x)
    } else {
        return None;
    };
    Some(GpuMatmul {
        batch,
        m,
        n,
        k: *kv,
        k_extent: extent,
        acc: *acc,
        a,
        b,
        epilogue,
    })
}

/// Adds the loop variables `e` reads to `out`; false when `e` reads a local.
fn expr_vars(e: &Expr, out: &mut HashSet<Var>) -> bool {
    match e {
        Expr::Lit(..) => true,
        Expr::Local(_) => false,
        Expr::Var(v) => {
            out.insert(*v);
            true
        }
        Expr::Load(_, idx) => {
            out.extend(idx.terms.iter().map(|(v, _)| *v));
            idx.dynamic.iter().all(|(d, _)| expr_vars(d, out))
        }
        Expr::Unary(_, a) | Expr::Cast(_, a) => expr_vars(a, out),
        Expr::Binary(_, a, b) | Expr::Cmp(_, a, b) => expr_vars(a, out) && expr_vars(b, out),
        Expr::Select(c, a, b) => expr_vars(c, out) && expr_vars(a, out) && expr_vars(b, out),
    }
}

// ------------------------------------------------------------------ warp per point

/// How a warp-per-point kernel combines the lanes' partial results: for each top-level
/// reduce loop (by its position in the body), its accumulators and their operations.
pub(crate) struct WarpPlan {
    pub reductions: HashMap<usize, Vec<(Local, BinaryOp)>>,
}

/// The warp plan of `kernel` when its body has a top-level reduce loop and every
/// top-level loop can be split across lanes: each reduce loop carries only
/// accumulators `t = t op e` (op `+`, `max` or `min`, `t` f32 or i32), and no local a
/// top-level loop assigns otherwise is read after it.
pub(crate) fn warp_plan(kernel: &Kernel) -> Option<WarpPlan> {
    let mut reductions = HashMap::new();
    for (i, s) in kernel.body.iter().enumerate() {
        let Stmt::Loop { reduce, body, .. } = s else {
            continue;
        };
        let mut forms: HashMap<Local, Vec<Option<BinaryOp>>> = HashMap::new();
        assignments(body, &mut forms);
        let mut accs = vec![];
        let mut temps = HashSet::new();
        for (l, f) in &forms {
            let op = f[0];
            let accumulates = *reduce && op.is_some() && f.iter().all(|o| *o == op);
            if accumulates {
                let t = *kernel.locals.get(l.0 as usize)?;
                if t != DType::F32 && t != DType::I32 {
                    return None;
                }
                accs.push((*l, op?));
            } else {
                temps.insert(*l);
            }
        }
        // A loop's temporaries differ from lane to lane: nothing after it may read them.
        if kernel.body[i + 1..].iter().any(|s| reads_any(s, &temps)) {
            return None;
        }
        if *reduce {
            accs.sort_by_key(|(l, _)| l.0);
            reductions.insert(i, accs);
        }
    }
    (!reductions.is_empty()).then_some(WarpPlan { reductions })
}

/// For every local assigned in `body`: `Some(op)` per assignment of the form
/// `t = t op e` (op `+`, `max`, `min`, `e` not reading `t`), `None` per other one.
fn assignments(body: &[Stmt], out: &mut HashMap<Local, Vec<Option<BinaryOp>>>) {
    for s in body {
        match s {
            Stmt::Assign(l, e) => {
                let op = match e {
                    Expr::Binary(op @ (BinaryOp::Add | BinaryOp::Max | BinaryOp::Min), a, b)
                        if **a == Expr::Local(*l) && !expr_reads(b, *l) =>
                    {
                        Some(*op)
                    }
                    _ => None,
                };
                out.entry(*l).or_default().push(op);
            }
            Stmt::Store(..) => {}
            Stmt::If { then, .. } => assignments(then, out),
            Stmt::Loop { body, .. } => assignments(body, out),
        }
    }
}

/// Whether `e` reads local `l`.
fn expr_reads(e: &Expr, l: Local) -> bool {
    let mut set = HashSet::new();
    set.insert(l);
    expr_reads_any(e, &set)
}

fn expr_reads_any(e: &Expr, set: &HashSet<Local>) -> bool {
    match e {
        Expr::Lit(..) | Expr::Var(_) => false,
        Expr::Local(l) => set.contains(l),
        Expr::Load(_, idx) => idx.dynamic.iter().any(|(d, _)| expr_reads_any(d, set)),
        Expr::Unary(_, a) | Expr::Cast(_, a) => expr_reads_any(a, set),
        Expr::Binary(_, a, b) | Expr::Cmp(_, a, b) => {
            expr_reads_any(a, set) || expr_reads_any(b, set)
        }
        Expr::Select(c, a, b) => {
            expr_reads_any(c, set) || expr_reads_any(a, set) || expr_reads_any(b, set)
        }
    }
}

/// Whether statement `s` reads any local of `set`.
fn reads_any(s: &Stmt, set: &HashSet<Local>) -> bool {
    if set.is_empty() {
        return false;
    }
    match s {
        Stmt::Assign(_, e) => expr_reads_any(e, set),
        Stmt::Store(_, idx, e) => {
            expr_reads_any(e, set) || idx.dynamic.iter().any(|(d, _)| expr_reads_any(d, set))
        }
        Stmt::If { cond, then } => {
            expr_reads_any(cond, set) || then.iter().any(|s| reads_any(s, set))
        }
        Stmt::Loop { body, .. } => body.iter().any(|s| reads_any(s, set)),
    }
}

/// Whether `body` stores to a buffer anywhere.
pub(crate) fn stores(body: &[Stmt]) -> bool {
    body.iter().any(|s| match s {
        Stmt::Store(..) => true,
        Stmt::Assign(..) => false,
        Stmt::If { then, .. } => stores(then),
        Stmt::Loop { body, .. } => stores(body),
    })
}
