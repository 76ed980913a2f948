//! GPTQ: quantize a matmul weight one input row at a time, pushing each row's rounding
//! error onto the rows not yet quantized, weighted by the inverse Hessian of the
//! layer's squared output error, `H = Σ xᵀx` over the calibration activations x.
//!
//! For `y = x·W` with `W` of shape `[K, N]` (blocks along K):
//!
//! ```text
//! H += λ·I  (λ = 1% of mean diag H; rows whose input is always 0 are zeroed)
//! U = chol_upper(H⁻¹)
//! for k in 0..K:
//!     at a block start: scales of rows k..k+B per column, from the current W
//!     q_k = quant(W[k, :])
//!     e = (W[k, :] − q_k) / U[k, k]
//!     W[j, :] −= U[k, j] · e          for j > k
//! ```
//!
//! Scales are chosen when their block starts, from the rows as updated so far, by the
//! same rule as plain quantization ([`crate::quantize::quantize`] with its MSE search),
//! so the codes fit the stored scale format.

use std::collections::HashMap;

use smelt_ir::pass::require_calibration;
use smelt_ir::{Graph, IrResult, PassContext, ValueId};

use crate::quantize::{code_range, quantize, Quantized, ScaleFormat};

/// Rows of activations transposed together when accumulating `xᵀx`.
const CHUNK: usize = 64;

/// `Σ xᵀx` (upper triangle filled, then mirrored) over every row of every observed
/// tensor of each value in `widths` (value → last-axis width K), from the calibration
/// samples of `cx`.
pub fn collect_hessians(
    g: &Graph,
    cx: &PassContext,
    widths: &HashMap<ValueId, usize>,
) -> IrResult<HashMap<ValueId, Vec<f64>>> {
    let (samples, evaluator) = require_calibration(cx, "blockwise-quant{gptq}")?;
    let mut out: HashMap<ValueId, Vec<f64>> = widths
        .iter()
        .map(|(&v, &k)| (v, vec![0.0; k * k]))
        .collect();
    for sample in samples {
        evaluator.run(g, sample, &mut |v, t| {
            let (Some(h), Some(&k)) = (out.get_mut(&v), widths.get(&v)) else {
                return;
            };
            let Ok(x) = t.to_vec::<f32>() else { return };
            accumulate(h, &x, k);
        })?;
    }
    for (v, h) in out.iter_mut() {
        let k = widths[v];
        for i in 0..k {
            for j in 0..i {
                h[i * k + j] = h[j * k + i];
            }
        }
    }
    Ok(out)
}

/// Adds `xᵀx` of the rows of `x` (width `k`) to the upper triangle of `h`.
fn accumulate(h: &mut [f64], x: &[f32], k: usize) {
    if k == 0 {
        return;
    }
    let mut xt = vec![0f32; k * CHUNK];
    for rows in x.chunks(k * CHUNK) {
        let n = rows.len() / k;
        xt.iter_mut().for_each(|v| *v = 0.0);
        for r in 0..n {
            for i in 0..k {
                let v = rows[r * k + i];
                xt[i * CHUNK + r] = if v.is_finite() { v } else { 0.0 };
            }
        }
        for i in 0..k {
            let xi = &xt[i * CHUNK..(i + 1) * CHUNK];
            if xi.iter().all(|v| *v == 0.0) {
                continue;
            }
            for j in i..k {
                let xj = &xt[j * CHUNK..(j + 1) * CHUNK];
                let mut s = 0f32;
                for (a, b) in xi.iter().zip(xj) {
                    s += a * b;
                }
                h[i * k + j] += f64::from(s);
            }
        }
    }
}

/// Lower Cholesky factor of the symmetric positive definite `a` (`n × n`), in place;
/// `false` if `a` is not positive definite.
fn cholesky(a: &mut [f64], n: usize) -> bool {
    for j in 0..n {
        let mut d = a[j * n + j];
        for p in 0..j {
            d -= a[j * n + p] * a[j * n + p];
        }
        if d <= 0.0 || !d.is_finite() {
            return false;
        }
        let d = d.sqrt();
        a[j * n + j] = d;
        for i in j + 1..n {
            let mut s = a[i * n + j];
            for p in 0..j {
                s -= a[i * n + p] * a[j * n + p];
            }
            a[i * n + j] = s / d;
        }
        for p in j + 1..n {
            a[j * n + p] = 0.0;
        }
    }
    true
}

/// `chol_upper(H⁻¹)` from the lower Cholesky factor `l` of H: `H⁻¹ = L⁻ᵀ L⁻¹`, then its
/// Cholesky factor, transposed to upper.
fn upper_of_inverse(l: &[f64], n: usize) -> Option<Vec<f64>> {
    // L⁻¹ by forward substitution, column by column.
    let mut li = vec![0.0; n * n];
    for c in 0..n {
        li[c * n + c] = 1.0 / l[c * n + c];
        for i in c + 1..n {
            let mut s = 0.0;
            for p in c..i {
                s += l[i * n + p] * li[p * n + c];
            }
            li[i * n + c] = -s / l[i * n + i];
        }
    }
    // H⁻¹ = L⁻ᵀ L⁻¹: (i, j) = Σ_p li[p][i] · li[p][j], p ≥ max(i, j).
    let mut inv = vec![0.0; n * n];
    for i in 0..n {
        for j in i..n {
            let mut s = 0.0;
            for p in j..n {
                s += li[p * n + i] * li[p * n + j];
            }
            inv[i * n + j] = s;
            inv[j * n + i] = s;
        }
    }
    if !cholesky(&mut inv, n) {
        return None;
    }
    // Upper = lowerᵀ.
    let mut u = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            u[j * n + i] = inv[i * n + j];
        }
    }
    Some(u)
}

/// The GPTQ codes and scales of `w` (`[k, n]`, blocks of `block` rows along k) for
/// the Hessian `h` (`k × k`); `None` when H cannot be factored even with damping.
#[allow(clippy::too_many_arguments)]
pub fn gptq(
    w: &[f32],
    k: usize,
    n: usize,
    h: &[f64],
    block: usize,
    bits: u8,
    symmetric: bool,
    format: ScaleFormat,
    mse_search: bool,
) -> Option<Quantized> {
    let block = block.max(1);
    let mut w: Vec<f64> = w.iter().map(|&v| f64::from(v)).collect();
    let mut h = h.to_vec();
    // Inputs that are always zero carry no information: their rows do not matter.
    for i in 0..k {
        if h[i * k + i] == 0.0 {
            h[i * k + i] = 1.0;
            for c in 0..n {
                w[i * n + c] = 0.0;
            }
        }
    }
    let mean_diag = (0..k).map(|i| h[i * k + i]).sum::<f64>() / k.max(1) as f64;
    let mut damp = 0.01 * mean_diag;
    let u = loop {
        let mut a = h.clone();
        for i in 0..k {
            a[i * k + i] += damp;
        }
        if cholesky(&mut a, k) {
            if let Some(u) = upper_of_inverse(&a, k) {
                break u;
            }
        }
        damp *= 10.0;
        if damp > 1e6 * mean_diag.max(1e-30) {
            return None;
        }
    };
    let (qmin, qmax) = code_range(bits, symmetric);
    let blocks = k.div_ceil(block);
    let mut codes = vec![0i32; k * n];
    let mut scales = vec![1.0f32; blocks * n];
    let mut zps = vec![0i32; blocks * n];
    let mut err = vec![0.0f64; n];
    for r in 0..k {
        let b = r / block;
        if r % block == 0 {
            // This block's scales, from its rows as updated so far.
            let rows = block.min(k - r);
            let current: Vec<f32> = w[r * n..(r + rows) * n].iter().map(|&v| v as f32).collect();
            let q = quantize(
                &current, rows, n, 0, block, bits, symmetric, format, mse_search,
            );
            scales[b * n..(b + 1) * n].copy_from_slice(&q.scales[..n]);
            if let Some(z) = &q.zero_points {
                zps[b * n..(b + 1) * n].copy_from_slice(&z[..n]);
            }
        }
        let d = u[r * k + r];
        for c in 0..n {
            let s = f64::from(scales[b * n + c]);
            let z = zps[b * n + c];
            let v = w[r * n + c];
            let q = ((v / s).round() as i64 + i64::from(z)).clamp(i64::from(qmin), i64::from(qmax))
                as i32;
            codes[r * n + c] = q;
            let deq = f64::from(q - z) * s;
            err[c] = (v - deq) / d;
        }
        for j in r + 1..k {
            let f = u[r * k + j];
            if f == 0.0 {
                continue;
            }
            let row = &mut w[j * n..(j + 1) * n];
            for (x, e) in row.iter_mut().zip(&err) {
                *x -= f * e;
            }
        }
    }
    Some(Quantized {
        codes,
        scales,
        zero_points: (!symmetric).then_some(zps),
        scale_shape: vec![blocks, n],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic values in [-1, 1).
    fn noise(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                ((s >> 33) as f32 / (1u64 << 31) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    fn output_error(
        x: &[f32],
        rows: usize,
        k: usize,
        w: &[f32],
        q: &Quantized,
        n: usize,
        block: usize,
    ) -> f64 {
        let deq = |r: usize, c: usize| {
            let b = r / block;
            let z = q.zero_points.as_ref().map_or(0, |z| z[b * n + c]);
            f64::from(q.codes[r * n + c] - z) * f64::from(q.scales[b * n + c])
        };
        let mut e = 0.0;
        for i in 0..rows {
            for c in 0..n {
                let (mut y, mut yq) = (0.0, 0.0);
                for r in 0..k {
                    let xv = f64::from(x[i * k + r]);
                    y += xv * f64::from(w[r * n + c]);
                    yq += xv * deq(r, c);
                }
                e += (y - yq).powi(2);
            }
        }
        e
    }

    #[test]
    fn cholesky_and_inverse_factor_are_right() {
        let n = 5;
        let m = noise(n * n, 3);
        // A = MᵀM + I is positive definite.
        let mut a = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                a[i * n + j] = (0..n)
                    .map(|p| f64::from(m[p * n + i] * m[p * n + j]))
                    .sum::<f64>()
                    + if i == j { 1.0 } else { 0.0 };
            }
        }
        let mut l = a.clone();
        assert!(cholesky(&mut l, n));
        let u = upper_of_inverse(&l, n).unwrap();
        // Uᵀ U = A⁻¹, so A · Uᵀ U = I.
        for i in 0..n {
            for j in 0..n {
                let mut s = 0.0;
                for p in 0..n {
                    let inv_pj: f64 = (0..n).map(|q| u[q * n + p] * u[q * n + j]).sum();
                    s += a[i * n + p] * inv_pj;
                }
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((s - want).abs() < 1e-9, "({i},{j}) = {s}");
            }
        }
    }

    #[test]
    fn gptq_lowers_the_output_error_of_plain_rounding() {
        // Correlated activations: x = z·M, so H is far from diagonal.
        let (rows, k, n, block) = (256, 32, 16, 8);
        let z = noise(rows * k, 7);
        let m = noise(k * k, 11);
        let mut x = vec![0f32; rows * k];
        for i in 0..rows {
            for j in 0..k {
                x[i * k + j] = (0..k).map(|p| z[i * k + p] * m[p * k + j]).sum();
            }
        }
        let w = noise(k * n, 13);
        let mut h = vec![0.0; k * k];
        accumulate(&mut h, &x, k);
        for i in 0..k {
            for j in 0..i {
                h[i * k + j] = h[j * k + i];
            }
        }
        for (bits, symmetric) in [(4u8, true), (4, false), (8, true)] {
            let plain = quantize(&w, k, n, 0, block, bits, symmetric, ScaleFormat::F32, true);
            let g = gptq(&w, k, n, &h, block, bits, symmetric, ScaleFormat::F32, true).unwrap();
            let (qmin, qmax) = code_range(bits, symmetric);
            assert!(g.codes.iter().all(|&c| c >= qmin && c <= qmax));
            let (ep, eg) = (
                output_error(&x, rows, k, &w, &plain, n, block),
                output_error(&x, rows, k, &w, &g, n, block),
            );
            assert!(
                eg < 0.8 * ep,
                "bits {bits} symmetric {symmetric}: gptq {eg} vs plain {ep}"
            );
        }
    }

    #[test]
    fn a_diagonal_hessian_leaves_plain_rounding() {
        // With H diagonal no error can be pushed anywhere useful: GPTQ rounds like the
        // plain quantizer (same scales, same codes).
        let (k, n, block) = (16, 4, 8);
        let w = noise(k * n, 5);
        let mut h = vec![0.0; k * k];
        for i in 0..k {
            h[i * k + i] = 1.0 + i as f64;
        }
        let plain = quantize(&w, k, n, 0, block, 4, true, ScaleFormat::F32, false);
        let g = gptq(&w, k, n, &h, block, 4, true, ScaleFormat::F32, false).unwrap();
        assert_eq!(g.codes, plain.codes);
        assert_eq!(g.scales, plain.scales);
    }
}
