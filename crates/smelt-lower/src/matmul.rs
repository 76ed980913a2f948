//! Recognising kernels of matmul shape and packing their constant B operand: the part
//! of the matmul schedule every backend shares.
//!
//! A kernel has matmul shape when its last two output loops are rows `m` and columns
//! `n` and its body is `acc = 0; reduce k { acc = acc + A[..] * B[..] }` followed by an
//! epilogue (bias, activation, residual, scale) that reads `acc`, with f32 operands, A
//! not indexed by `n`, B not indexed by `m` and contiguous in `n`. Lowering produces
//! exactly this for MatMul and Gemm (and whatever fuses after them); backends then use a
//! register-blocked micro-kernel instead of the plain loop nest.

use smelt_ir::DType;

use crate::ir::*;

/// The parts of a kernel of matmul shape.
#[derive(Debug, Clone, Copy)]
pub struct MatmulParts<'k> {
    /// The row loop variable.
    pub m: Var,
    /// The column loop variable.
    pub n: Var,
    /// The reduction variable.
    pub k: Var,
    /// The reduction's trip count.
    pub k_extent: &'k Size,
    /// The accumulator local the epilogue reads.
    pub acc: Local,
    /// A: buffer and index (in `m`, `k` and batch variables).
    pub a: (BufferId, &'k Index),
    /// B: buffer and index (in `k`, `n` and batch variables, unit stride in `n`).
    pub b: (BufferId, &'k Index),
    /// The statements after the reduction.
    pub epilogue: &'k [Stmt],
}

/// The parts of `kernel` when it has matmul shape (see the module docs).
pub fn matmul_parts<'k>(program: &'k KernelProgram, k: &'k Kernel) -> Option<MatmulParts<'k>> {
    if k.kind != KernelKind::MatMul {
        return None;
    }
    let r = k.loops.len();
    if r < 2 {
        return None;
    }
    let (m, n) = (k.loops[r - 2].var, k.loops[r - 1].var);
    let [Stmt::Assign(acc, Expr::Lit(zero, DType::F32)), Stmt::Loop {
        var: kv,
        extent,
        reduce: true,
        body,
    }, epilogue @ ..] = k.body.as_slice()
    else {
        return None;
    };
    if *zero != 0.0 {
        return None;
    }
    let [Stmt::Assign(acc2, Expr::Binary(BinaryOp::Add, sum, prod))] = body.as_slice() else {
        return None;
    };
    if acc2 != acc || **sum != Expr::Local(*acc) {
        return None;
    }
    let Expr::Binary(BinaryOp::Mul, a, b) = &**prod else {
        return None;
    };
    let (Expr::Load(ab, ia), Expr::Load(bb, ib)) = (&**a, &**b) else {
        return None;
    };
    let f32_buf = |id| program.buffer(id).dtype == DType::F32;
    let plain = |i: &Index| i.dynamic.is_empty() && i.offset == 0;
    let ok = f32_buf(*ab)
        && f32_buf(*bb)
        && plain(ia)
        && plain(ib)
        && ia.stride_of(n).as_known() == Some(0)
        && ib.stride_of(m).as_known() == Some(0)
        && ib.stride_of(*kv).as_known() != Some(0)
        && ib.stride_of(n).as_known() == Some(1);
    ok.then_some(MatmulParts {
        m,
        n,
        k: *kv,
        k_extent: extent,
        acc: *acc,
        a: (*ab, ia),
        b: (*bb, ib),
        epilogue,
    })
}

/// `(K, N)` when the kernel's B operand can be packed ahead of time: a plain f32
/// constant indexed by the reduction and column variables alone, with known sizes.
pub fn packable_b(program: &KernelProgram, kernel: &Kernel) -> Option<(u64, u64)> {
    let p = matmul_parts(program, kernel)?;
    let (bb, ib) = p.b;
    let buf = program.buffer(program.root(bb));
    let BufferKind::Constant { data, .. } = &buf.kind else {
        return None;
    };
    data.as_plain()?;
    if ib.terms.iter().any(|(v, _)| *v != p.k && *v != p.n) {
        return None;
    }
    let k = p.k_extent.as_known()?;
    let n = kernel.loops.last()?.extent.as_known()?;
    ib.stride_of(p.k).as_known()?;
    Some((k, n))
}

/// B in panels of `width` columns: `packed[t][k][c] = B[k][width·t + c]`, zero beyond
/// the last column, so a micro-kernel reads `width` contiguous floats per step of `k`.
pub fn pack_b(program: &KernelProgram, kernel: &Kernel, width: usize) -> Option<Vec<u8>> {
    let (k, n) = packable_b(program, kernel)?;
    let p = matmul_parts(program, kernel)?;
    let (bb, ib) = p.b;
    let BufferKind::Constant { data, .. } = &program.buffer(program.root(bb)).kind else {
        return None;
    };
    let bytes = data.as_plain()?.bytes();
    let sk = ib.stride_of(p.k).as_known()? as usize;
    let width = width.max(1);
    let tiles = (n as usize).div_ceil(width);
    let (k, n) = (k as usize, n as usize);
    let mut out = vec![0u8; tiles * k * width * 4];
    for t in 0..tiles {
        for kk in 0..k {
            for c in 0..width {
                let col = t * width + c;
                if col >= n {
                    continue;
                }
                let src = (kk * sk + col) * 4;
                let dst = ((t * k + kk) * width + c) * 4;
                out[dst..dst + 4].copy_from_slice(bytes.get(src..src + 4)?);
            }
        }
    }
    Some(out)
}
