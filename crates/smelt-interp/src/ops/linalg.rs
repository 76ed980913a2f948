//! Matrix products: MatMul (numpy semantics) and Gemm, on top of a strided GEMM kernel
//! (matrixmultiply's sgemm/dgemm for floats, a plain loop for integers).

use ndarray::ArrayD;
use rayon::prelude::*;
use smelt_ir::Attrs;

use super::broadcast::broadcast_shapes;
use super::{input, opt_input};
use crate::error::{bail, OpError, OpResult};
use crate::num::Num;
use crate::value::{array_from, dispatch_num, typed, Elem, Value};

/// A strided matrix operand: element (i, j) is `data[i * rs + j * cs]`.
#[derive(Clone, Copy)]
pub(crate) struct Mat<'a, T> {
    pub(crate) data: &'a [T],
    pub(crate) rs: usize,
    pub(crate) cs: usize,
}

impl<'a, T> Mat<'a, T> {
    /// A row-major matrix with `cols` columns.
    pub(crate) fn rows(data: &'a [T], cols: usize) -> Self {
        Mat {
            data,
            rs: cols,
            cs: 1,
        }
    }

    /// Whether every element of a `rows × cols` matrix lies inside `data`.
    fn covers(&self, rows: usize, cols: usize) -> bool {
        rows == 0 || cols == 0 || (rows - 1) * self.rs + (cols - 1) * self.cs < self.data.len()
    }
}

/// Element types with a GEMM kernel.
pub(crate) trait Gemm: Num {
    /// `c = alpha·a·b + beta·c` with `a` m×k, `b` k×n and `c` m×n row-major (row stride
    /// `ldc`); when `beta` is zero `c` is only written. Operand extents were checked.
    fn gemm_unchecked(
        dims: (usize, usize, usize),
        alpha: Self,
        a: Mat<Self>,
        b: Mat<Self>,
        beta: Self,
        c: &mut [Self],
        ldc: usize,
    );
}

/// Checked GEMM: verifies the operands cover their extents before running the kernel.
pub(crate) fn gemm<T: Gemm>(
    (m, k, n): (usize, usize, usize),
    alpha: T,
    a: Mat<T>,
    b: Mat<T>,
    beta: T,
    c: &mut [T],
    ldc: usize,
) -> OpResult<()> {
    let c_ok = m == 0 || n == 0 || ((m - 1) * ldc + n <= c.len() && n <= ldc);
    if !a.covers(m, k) || !b.covers(k, n) || !c_ok {
        bail!("internal: GEMM operands do not cover {m}×{k}·{k}×{n}");
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    T::gemm_unchecked((m, k, n), alpha, a, b, beta, c, ldc);
    Ok(())
}

macro_rules! float_gemm {
    ($t:ty, $f:path) => {
        impl Gemm for $t {
            fn gemm_unchecked(
                (m, k, n): (usize, usize, usize),
                alpha: Self,
                a: Mat<Self>,
                b: Mat<Self>,
                beta: Self,
                c: &mut [Self],
                ldc: usize,
            ) {
                if k == 0 {
                    // matrixmultiply scales C by beta for k = 0; do the same explicitly.
                    for row in c.chunks_mut(ldc).take(m) {
                        for v in &mut row[..n] {
                            *v = if beta == 0.0 { 0.0 } else { beta * *v };
                        }
                    }
                    return;
                }
                // SAFETY: `gemm` checked that a (m×k), b (k×n) and c (m×n, row stride ldc)
                // lie inside their slices; strides are non-negative and fit isize because
                // the slices exist.
                unsafe {
                    $f(
                        m,
                        k,
                        n,
                        alpha,
                        a.data.as_ptr(),
                        a.rs as isize,
                        a.cs as isize,
                        b.data.as_ptr(),
                        b.rs as isize,
                        b.cs as isize,
                        beta,
                        c.as_mut_ptr(),
                        ldc as isize,
                        1,
                    )
                }
            }
        }
    };
}

float_gemm!(f32, matrixmultiply::sgemm);
float_gemm!(f64, matrixmultiply::dgemm);

macro_rules! int_gemm {
    ($($t:ty),*) => {$(
        impl Gemm for $t {
            fn gemm_unchecked((m, k, n): (usize, usize, usize), alpha: Self, a: Mat<Self>, b: Mat<Self>, beta: Self, c: &mut [Self], ldc: usize) {
                for i in 0..m {
                    for j in 0..n {
                        let mut acc: Self = 0;
                        for p in 0..k {
                            acc = acc.wrapping_add(a.data[i * a.rs + p * a.cs].wrapping_mul(b.data[p * b.rs + j * b.cs]));
                        }
                        let old = if beta == 0 { 0 } else { beta.wrapping_mul(c[i * ldc + j]) };
                        c[i * ldc + j] = alpha.wrapping_mul(acc).wrapping_add(old);
                    }
                }
            }
        }
    )*};
}

int_gemm!(i64, i32, i16, i8, u64, u32, u16, u8);

/// For each index of the broadcast batch `out`, the element offset of the matching
/// matrix in an operand with batch dims `src` and `block` elements per matrix.
fn batch_offsets(src: &[usize], out: &[usize], block: usize) -> Vec<usize> {
    let total: usize = out.iter().product();
    let off = out.len() - src.len();
    let mut offsets = Vec::with_capacity(total);
    let mut idx = vec![0usize; out.len()];
    for _ in 0..total {
        let mut flat = 0;
        for (d, &s) in src.iter().enumerate() {
            flat = flat * s + if s == 1 { 0 } else { idx[off + d] };
        }
        offsets.push(flat * block);
        for d in (0..out.len()).rev() {
            idx[d] += 1;
            if idx[d] < out[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    offsets
}

/// ONNX MatMul: numpy `matmul` (1-D operands promoted, batch dims broadcast).
pub(crate) fn matmul(inputs: &[Option<&Value>]) -> OpResult<Value> {
    let a = input(inputs, 0, "A")?;
    let b = input(inputs, 1, "B")?;
    dispatch_num!(a, T => Ok(T::into_value(matmul_t::<T>(typed::<T>(a, "A")?, typed::<T>(b, "B")?)?)))
}

fn matmul_t<T: Gemm>(a: &ArrayD<T>, b: &ArrayD<T>) -> OpResult<ArrayD<T>> {
    let (ash, bsh) = (a.shape(), b.shape());
    if ash.is_empty() || bsh.is_empty() {
        bail!("operands must have rank ≥ 1, got {ash:?} and {bsh:?}");
    }
    let a2 = if ash.len() == 1 {
        vec![1, ash[0]]
    } else {
        ash.to_vec()
    };
    let b2 = if bsh.len() == 1 {
        vec![bsh[0], 1]
    } else {
        bsh.to_vec()
    };
    let (m, k) = (a2[a2.len() - 2], a2[a2.len() - 1]);
    let (k2, n) = (b2[b2.len() - 2], b2[b2.len() - 1]);
    if k != k2 {
        bail!("inner dims differ: {ash:?} · {bsh:?}");
    }
    let (abatch, bbatch) = (&a2[..a2.len() - 2], &b2[..b2.len() - 2]);
    let batch = broadcast_shapes(&[abatch, bbatch])?;
    let nb: usize = batch.iter().product();
    let mut out_shape = batch.clone();
    if ash.len() > 1 {
        out_shape.push(m);
    }
    if bsh.len() > 1 {
        out_shape.push(n);
    }
    let mut out = vec![T::ZERO; nb * m * n];
    if out.is_empty() {
        return array_from(&out_shape, out);
    }
    let a_std = a.as_standard_layout();
    let b_std = b.as_standard_layout();
    let a_s = a_std
        .as_slice()
        .ok_or_else(|| OpError::new("internal: A not contiguous"))?;
    let b_s = b_std
        .as_slice()
        .ok_or_else(|| OpError::new("internal: B not contiguous"))?;
    let a_offs = batch_offsets(abatch, &batch, m * k);
    let b_offs = batch_offsets(bbatch, &batch, k * n);
    let shared_b = b_offs.iter().all(|&o| o == 0);
    let stacked_a = a_offs.iter().enumerate().all(|(i, &o)| o == i * m * k);
    if shared_b && stacked_a {
        // One weight for every batch entry: a single tall GEMM lets the kernel's own
        // threading and packing work on the whole problem.
        gemm(
            (nb * m, k, n),
            T::ONE,
            Mat::rows(a_s, k),
            Mat::rows(b_s, n),
            T::ZERO,
            &mut out,
            n,
        )?;
    } else {
        out.par_chunks_mut(m * n)
            .zip(a_offs.par_iter().zip(b_offs.par_iter()))
            .try_for_each(|(c, (&ao, &bo))| {
                let am = Mat::rows(&a_s[ao..ao + m * k], k);
                let bm = Mat::rows(&b_s[bo..bo + k * n], n);
                gemm((m, k, n), T::ONE, am, bm, T::ZERO, c, n)
            })?;
    }
    array_from(&out_shape, out)
}

/// ONNX Gemm: `alpha·op(A)·op(B) + beta·C` with optional transposes and C broadcast.
pub(crate) fn gemm_op(inputs: &[Option<&Value>], attrs: &Attrs) -> OpResult<Value> {
    let a = input(inputs, 0, "A")?;
    let b = input(inputs, 1, "B")?;
    let c = opt_input(inputs, 2);
    let alpha = f64::from(attrs.float_or("alpha", 1.0));
    let beta = f64::from(attrs.float_or("beta", 1.0));
    let trans_a = attrs.int_or("transA", 0) != 0;
    let trans_b = attrs.int_or("transB", 0) != 0;
    dispatch_num!(a, T => {
        let c = match c {
            Some(v) => Some(typed::<T>(v, "C")?),
            None => None,
        };
        let out = gemm_t::<T>(typed::<T>(a, "A")?, typed::<T>(b, "B")?, c, alpha, beta, trans_a, trans_b)?;
        Ok(T::into_value(out))
    })
}

fn gemm_t<T: Gemm>(
    a: &ArrayD<T>,
    b: &ArrayD<T>,
    c: Option<&ArrayD<T>>,
    alpha: f64,
    beta: f64,
    trans_a: bool,
    trans_b: bool,
) -> OpResult<ArrayD<T>> {
    let (ash, bsh) = (a.shape(), b.shape());
    if ash.len() != 2 || bsh.len() != 2 {
        bail!("A and B must be 2-D, got {ash:?} and {bsh:?}");
    }
    let (m, k) = if trans_a {
        (ash[1], ash[0])
    } else {
        (ash[0], ash[1])
    };
    let (k2, n) = if trans_b {
        (bsh[1], bsh[0])
    } else {
        (bsh[0], bsh[1])
    };
    if k != k2 {
        bail!("inner dims differ: op(A) is {m}×{k}, op(B) is {k2}×{n}");
    }
    let a_std = a.as_standard_layout();
    let b_std = b.as_standard_layout();
    let a_s = a_std
        .as_slice()
        .ok_or_else(|| OpError::new("internal: A not contiguous"))?;
    let b_s = b_std
        .as_slice()
        .ok_or_else(|| OpError::new("internal: B not contiguous"))?;
    // A transpose is just swapped strides.
    let am = if trans_a {
        Mat {
            data: a_s,
            rs: 1,
            cs: m,
        }
    } else {
        Mat::rows(a_s, k)
    };
    let bm = if trans_b {
        Mat {
            data: b_s,
            rs: 1,
            cs: k,
        }
    } else {
        Mat::rows(b_s, n)
    };
    let (mut out, beta) = match c {
        Some(c) => match c.broadcast(ndarray::IxDyn(&[m, n])) {
            Some(v) => (v.iter().copied().collect::<Vec<T>>(), T::from_f64(beta)),
            None => bail!(
                "C of shape {:?} does not broadcast to [{m}, {n}]",
                c.shape()
            ),
        },
        None => (vec![T::ZERO; m * n], T::ZERO),
    };
    gemm(
        (m, k, n),
        T::from_f64(alpha),
        am,
        bm,
        beta,
        &mut out,
        n.max(1),
    )?;
    array_from(&[m, n], out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::IxDyn;

    fn arr<T: Clone>(shape: &[usize], v: &[T]) -> ArrayD<T> {
        ArrayD::from_shape_vec(IxDyn(shape), v.to_vec()).unwrap()
    }

    #[test]
    fn matmul_promotes_vectors() {
        let a = arr(&[2, 3], &[1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let v = arr(&[3], &[1.0f32, 0.0, -1.0]);
        let r = matmul_t(&a, &v).unwrap();
        assert_eq!(r.shape(), &[2]);
        assert_eq!(r.iter().copied().collect::<Vec<_>>(), vec![-2.0, -2.0]);
        let r = matmul_t(&v, &arr(&[3, 1], &[1.0f32, 1.0, 1.0])).unwrap();
        assert_eq!(r.shape(), &[1]);
        assert_eq!(r.iter().copied().collect::<Vec<_>>(), vec![0.0]);
        let dot = matmul_t(&v, &v).unwrap();
        assert_eq!(dot.shape(), &[] as &[usize]);
    }

    #[test]
    fn matmul_broadcasts_batches() {
        // [2,1,2,2] · [3,2,2] -> [2,3,2,2]; B batches are scaled identities.
        let a = arr(&[2, 1, 2, 2], &[1i64, 2, 3, 4, 5, 6, 7, 8]);
        let b = arr(&[3, 2, 2], &[1i64, 0, 0, 1, 2, 0, 0, 2, 3, 0, 0, 3]);
        let r = matmul_t(&a, &b).unwrap();
        assert_eq!(r.shape(), &[2, 3, 2, 2]);
        let v: Vec<i64> = r.iter().copied().collect();
        assert_eq!(&v[..4], &[1, 2, 3, 4]);
        assert_eq!(&v[8..12], &[3, 6, 9, 12]);
        assert_eq!(&v[12..16], &[5, 6, 7, 8]);
    }

    #[test]
    fn matmul_shared_weight_and_empty() {
        let a = arr(&[2, 2, 2], &[1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
        let b = arr(&[2, 1], &[1.0f64, 1.0]);
        let r = matmul_t(&a, &b).unwrap();
        assert_eq!(
            r.iter().copied().collect::<Vec<_>>(),
            vec![3.0, 7.0, 11.0, 15.0]
        );
        let e = matmul_t(&arr::<f32>(&[0, 3], &[]), &arr(&[3, 2], &[0.0f32; 6])).unwrap();
        assert_eq!(e.shape(), &[0, 2]);
        let z = matmul_t(&arr::<f32>(&[2, 0], &[]), &arr::<f32>(&[0, 2], &[])).unwrap();
        assert_eq!(z.iter().copied().collect::<Vec<_>>(), vec![0.0; 4]);
        assert!(matmul_t(&arr(&[2, 3], &[0.0f32; 6]), &arr(&[2, 3], &[0.0f32; 6])).is_err());
    }

    #[test]
    fn gemm_transposes_and_bias() {
        // A^T with A = [[1,3],[2,4]] stored [K=2, M=2]; B^T with B = [[1,0],[0,1]].
        let a = arr(&[2, 2], &[1.0f32, 3.0, 2.0, 4.0]);
        let b = arr(&[2, 2], &[1.0f32, 0.0, 0.0, 1.0]);
        let c = arr(&[2], &[10.0f32, 20.0]);
        let r = gemm_t(&a, &b, Some(&c), 2.0, 0.5, true, true).unwrap();
        assert_eq!(
            r.iter().copied().collect::<Vec<_>>(),
            vec![7.0, 14.0, 11.0, 18.0]
        );
        let r = gemm_t(&a, &b, None, 1.0, 1.0, false, false).unwrap();
        assert_eq!(
            r.iter().copied().collect::<Vec<_>>(),
            vec![1.0, 3.0, 2.0, 4.0]
        );
    }
}
