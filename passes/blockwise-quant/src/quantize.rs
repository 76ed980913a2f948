//! Blockwise integer quantization of one tensor: the numerics, independent of graphs.
//!
//! A 2-D weight `[rows, cols]` is split into blocks of `block` consecutive elements
//! along `axis` (the reduction axis of the consuming matmul); each block gets one scale
//! `s` (and, asymmetric, one zero point `z`) so that `w ≈ (q − z) · s` with integer codes
//! `q` of `bits` bits. Scales are rounded to their storage format *before* the codes
//! are computed, so the codes are right for the scale that is actually stored.

/// How scales are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScaleFormat {
    /// IEEE single precision.
    F32,
    /// IEEE half precision.
    F16,
    /// A power of two (E8M0 exponent byte), so requantization is a shift.
    Pow2,
}

/// The quantized form of a tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Quantized {
    /// One code per element, in the tensor's order, in `[qmin, qmax]`.
    pub codes: Vec<i32>,
    /// One scale per block, as stored (already rounded to the scale format).
    pub scales: Vec<f32>,
    /// One zero point per block (asymmetric only).
    pub zero_points: Option<Vec<i32>>,
    /// The shape of the scale tensor.
    pub scale_shape: Vec<usize>,
}

/// The code range of `bits`-bit codes: symmetric codes are signed and leave out the
/// most negative value so that the range is symmetric; asymmetric codes are unsigned.
pub fn code_range(bits: u8, symmetric: bool) -> (i32, i32) {
    if symmetric {
        let m = (1i32 << (bits - 1)) - 1;
        (-m, m)
    } else {
        (0, (1i32 << bits) - 1)
    }
}

/// A scale rounded to its storage format; a zero block keeps scale 1 so decoding stays
/// finite (its codes are all zero).
pub fn round_scale(s: f32, format: ScaleFormat) -> f32 {
    if s.is_nan() || s <= 0.0 || !s.is_finite() {
        return 1.0;
    }
    match format {
        ScaleFormat::F32 => s,
        ScaleFormat::F16 => {
            let h = half::f16::from_f32(s);
            // Round up to the next representable half when rounding went down, so the
            // block maximum still fits in the code range.
            let r = f32::from(h);
            if r < s {
                f32::from(half::f16::from_bits(h.to_bits() + 1))
            } else {
                r
            }
        }
        ScaleFormat::Pow2 => 2f32.powi(s.log2().ceil() as i32),
    }
}

/// The E8M0 byte of a power-of-two scale.
pub fn pow2_code(s: f32) -> u8 {
    let e = s.log2().round() as i32 + 127;
    e.clamp(0, 254) as u8
}

/// Clipping ratios tried per block by the MSE search: the block's range shrunk to each
/// fraction, keeping the one with the least squared error.
const CLIP_RATIOS: [f32; 12] = [
    1.0, 0.97, 0.94, 0.91, 0.88, 0.85, 0.82, 0.79, 0.76, 0.73, 0.7, 0.65,
];

/// Quantize `values` of shape `[rows, cols]` in blocks of `block` along `axis`
/// (0: down the rows, 1: along a row). With `mse_search`, each block's range is clipped
/// to the ratio (of [`CLIP_RATIOS`]) that minimises its squared rounding error, which
/// matters most at 4 bits, where one outlier otherwise coarsens a whole block.
#[allow(clippy::too_many_arguments)]
pub fn quantize(
    values: &[f32],
    rows: usize,
    cols: usize,
    axis: usize,
    block: usize,
    bits: u8,
    symmetric: bool,
    format: ScaleFormat,
    mse_search: bool,
) -> Quantized {
    let block = block.max(1);
    let (qmin, qmax) = code_range(bits, symmetric);
    let (brows, bcols) = if axis == 0 {
        (rows.div_ceil(block), cols)
    } else {
        (rows, cols.div_ceil(block))
    };
    let mut scales = vec![1.0f32; brows * bcols];
    let mut zps = vec![0i32; brows * bcols];
    let block_of = |r: usize, c: usize| {
        if axis == 0 {
            (r / block) * bcols + c
        } else {
            r * bcols + c / block
        }
    };
    // Block ranges.
    let mut lo = vec![f32::INFINITY; brows * bcols];
    let mut hi = vec![f32::NEG_INFINITY; brows * bcols];
    for r in 0..rows {
        for c in 0..cols {
            let v = values[r * cols + c];
            let b = block_of(r, c);
            if v.is_finite() {
                lo[b] = lo[b].min(v);
                hi[b] = hi[b].max(v);
            }
        }
    }
    // The elements of each block, for the error search.
    let mut members: Vec<Vec<f32>> = if mse_search {
        vec![vec![]; brows * bcols]
    } else {
        vec![]
    };
    if mse_search {
        for r in 0..rows {
            for c in 0..cols {
                let v = values[r * cols + c];
                if v.is_finite() {
                    members[block_of(r, c)].push(v);
                }
            }
        }
    }
    let params = |l: f32, h: f32| -> (f32, i32) {
        if symmetric {
            let amax = l.abs().max(h.abs());
            (round_scale(amax / qmax as f32, format), 0)
        } else {
            let (l, h) = (l.min(0.0), h.max(0.0));
            let s = round_scale((h - l) / (qmax - qmin) as f32, format);
            let z = ((qmin as f32) - l / s)
                .round()
                .clamp(qmin as f32, qmax as f32) as i32;
            (s, z)
        }
    };
    let error = |s: f32, z: i32, vals: &[f32]| -> f64 {
        vals.iter()
            .map(|&v| {
                let q = ((v / s).round_ties_even() + z as f32).clamp(qmin as f32, qmax as f32);
                let d = (q - z as f32) * s - v;
                f64::from(d * d)
            })
            .sum()
    };
    for b in 0..scales.len() {
        if lo[b] > hi[b] {
            continue;
        }
        let (mut s, mut z) = params(lo[b], hi[b]);
        if mse_search {
            let mut best = error(s, z, &members[b]);
            for ratio in &CLIP_RATIOS[1..] {
                let (cs, cz) = params(lo[b] * ratio, hi[b] * ratio);
                let e = error(cs, cz, &members[b]);
                if e < best {
                    (best, s, z) = (e, cs, cz);
                }
            }
        }
        scales[b] = s;
        zps[b] = z;
    }
    let mut codes = vec![0i32; rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            let b = block_of(r, c);
            let v = values[r * cols + c];
            let q = (v / scales[b]).round_ties_even() + zps[b] as f32;
            codes[r * cols + c] = if q.is_nan() {
                0
            } else {
                (q as i32).clamp(qmin, qmax)
            };
        }
    }
    Quantized {
        codes,
        scales,
        zero_points: (!symmetric).then_some(zps),
        scale_shape: vec![brows, bcols],
    }
}

/// Decode quantized values back to f32 (the reference the tests check against).
pub fn dequantize(q: &Quantized, rows: usize, cols: usize, axis: usize, block: usize) -> Vec<f32> {
    let bcols = q.scale_shape[1];
    let block = block.max(1);
    let mut out = vec![0.0; rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            let b = if axis == 0 {
                (r / block) * bcols + c
            } else {
                r * bcols + c / block
            };
            let z = q.zero_points.as_ref().map_or(0, |z| z[b]);
            out[r * cols + c] = (q.codes[r * cols + c] - z) as f32 * q.scales[b];
        }
    }
    out
}

/// Bytes of the stored form: codes at `bits` each, scales at their format's width, zero
/// points at `bits` each.
pub fn stored_bytes(q: &Quantized, bits: u8, format: ScaleFormat) -> usize {
    let scale_bytes = match format {
        ScaleFormat::F32 => 4,
        ScaleFormat::F16 => 2,
        ScaleFormat::Pow2 => 1,
    };
    let codes = (q.codes.len() * bits as usize).div_ceil(8);
    let zps = q
        .zero_points
        .as_ref()
        .map_or(0, |z| (z.len() * bits as usize).div_ceil(8));
    codes + q.scales.len() * scale_bytes + zps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(n: usize, seed: u64) -> Vec<f32> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((x >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// Oracle 2: |w − deq(q(w))| ≤ s/2 (+ float eps) inside the range, codes in range,
    /// and quantizing the dequantized values gives the same codes.
    #[test]
    fn round_trip_error_is_at_most_half_a_step() {
        for (bits, symmetric) in [(8, true), (4, true), (8, false), (4, false)] {
            for format in [ScaleFormat::F32, ScaleFormat::F16, ScaleFormat::Pow2] {
                for axis in [0, 1] {
                    let (rows, cols, block) = (37, 19, 8);
                    let w = lcg(rows * cols, 7 + bits as u64);
                    let q = quantize(&w, rows, cols, axis, block, bits, symmetric, format, false);
                    let (qmin, qmax) = code_range(bits, symmetric);
                    assert!(q.codes.iter().all(|&c| (qmin..=qmax).contains(&c)));
                    let d = dequantize(&q, rows, cols, axis, block);
                    let bcols = q.scale_shape[1];
                    for r in 0..rows {
                        for c in 0..cols {
                            let b = if axis == 0 {
                                (r / block) * bcols + c
                            } else {
                                r * bcols + c / block
                            };
                            let s = q.scales[b];
                            let err = (w[r * cols + c] - d[r * cols + c]).abs();
                            assert!(
                                err <= s / 2.0 + 1e-6,
                                "bits {bits} sym {symmetric} {format:?} axis {axis}: err {err} > s/2 = {}",
                                s / 2.0
                            );
                        }
                    }
                    // Q∘DQ∘Q = Q with the same scales.
                    let q2 = quantize(&d, rows, cols, axis, block, bits, symmetric, format, false);
                    if q2.scales == q.scales && q2.zero_points == q.zero_points {
                        assert_eq!(q2.codes, q.codes);
                    }
                }
            }
        }
    }

    /// The MSE search never does worse than plain min/max scaling (ratio 1 is a
    /// candidate), and with an outlier in the block it does strictly better.
    #[test]
    fn mse_search_never_increases_the_error() {
        let mut w = lcg(32 * 16, 11);
        w[5] = 8.0;
        let err = |q: &Quantized| -> f64 {
            let d = dequantize(q, 32, 16, 0, 32);
            w.iter()
                .zip(&d)
                .map(|(a, b)| f64::from((a - b) * (a - b)))
                .sum()
        };
        for bits in [4, 8] {
            let plain = quantize(&w, 32, 16, 0, 32, bits, true, ScaleFormat::F32, false);
            let searched = quantize(&w, 32, 16, 0, 32, bits, true, ScaleFormat::F32, true);
            assert!(err(&searched) <= err(&plain) + 1e-9);
            if bits == 4 {
                assert!(err(&searched) < err(&plain));
            }
        }
    }

    #[test]
    fn pow2_scales_are_powers_of_two_and_cover_the_block() {
        let w = lcg(64, 3);
        let q = quantize(&w, 64, 1, 0, 16, 8, true, ScaleFormat::Pow2, false);
        for (b, s) in q.scales.iter().enumerate() {
            assert_eq!(s.log2().fract(), 0.0, "scale {s}");
            assert_eq!(smelt_ir::FloatFormat::E8M0.decode(pow2_code(*s)), *s);
            let amax = w[b * 16..(b + 1) * 16]
                .iter()
                .fold(0.0f32, |m, v| m.max(v.abs()));
            assert!(amax <= 127.0 * s);
        }
    }

    #[test]
    fn zero_blocks_and_nan_do_not_poison_scales() {
        let mut w = vec![0.0f32; 32];
        w[20] = f32::NAN;
        w[21] = 0.5;
        let q = quantize(&w, 32, 1, 0, 16, 8, true, ScaleFormat::F16, false);
        assert_eq!(q.scales[0], 1.0);
        assert!(q.scales[1].is_finite() && q.scales[1] > 0.0);
        assert_eq!(q.codes[20], 0);
    }

    #[test]
    fn stored_bytes_count_codes_scales_and_zero_points() {
        let w = lcg(128 * 64, 1);
        let q = quantize(&w, 128, 64, 0, 64, 4, true, ScaleFormat::F16, false);
        // 4 bits per weight plus one f16 scale per 64 weights = 4.25 bits per weight.
        assert_eq!(
            stored_bytes(&q, 4, ScaleFormat::F16),
            128 * 64 / 2 + 2 * 64 * 2
        );
    }
}
