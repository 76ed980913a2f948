//! Resampling: Resize (nearest, linear and cubic, every coordinate transformation mode,
//! antialiasing), GridSample and AffineGrid.
//!
//! Everything is computed in f64. Resize is separable: each resized axis is processed in
//! turn with a per-output-position list of (input index, weight) taps.

use smelt_ir::{Attrs, DType};

use super::cast::cast;
use super::{checked_len, input, norm_axes, opt_input};
use crate::error::{bail, OpResult};
use crate::value::{array_from, Value};

/// A value of `dtype` from f64 results: floats round once to the target type; integers
/// round half to even and saturate (as the ONNX reference does for resampled integers).
pub(crate) fn from_f64(dtype: DType, shape: &[usize], data: Vec<f64>) -> OpResult<Value> {
    let data = match dtype.int_range() {
        Some((lo, hi)) => data
            .into_iter()
            .map(|v| {
                if v.is_nan() {
                    0.0
                } else {
                    v.round_ties_even().clamp(lo as f64, hi as f64)
                }
            })
            .collect(),
        None => data,
    };
    let wide = Value::F64(array_from(shape, data)?);
    if dtype == DType::F64 {
        Ok(wide)
    } else {
        cast(&wide, dtype, true)
    }
}

/// The coefficients of one interpolation kernel at fractional offset `ratio` in (0, 1]:
/// tap `k` reads input position `x_ori - ratio + start + k`.
struct Taps {
    start: i64,
    coeffs: Vec<f64>,
}

#[derive(Clone, Copy)]
enum Mode {
    Nearest(NearestMode),
    Linear,
    Cubic(f64),
}

#[derive(Clone, Copy)]
enum NearestMode {
    RoundPreferFloor,
    RoundPreferCeil,
    Floor,
    Ceil,
}

/// Keys cubic convolution weight at distance `x` with parameter `a`.
fn cubic_weight(x: f64, a: f64) -> f64 {
    let x = x.abs();
    if x <= 1.0 {
        ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a
    } else {
        0.0
    }
}

fn taps(mode: Mode, antialias: bool, ratio: f64, scale: f64) -> Taps {
    match mode {
        Mode::Nearest(nm) => {
            let right = if ratio == 1.0 {
                true
            } else {
                match nm {
                    NearestMode::RoundPreferFloor => ratio > 0.5,
                    NearestMode::RoundPreferCeil => ratio >= 0.5,
                    NearestMode::Floor => false,
                    NearestMode::Ceil => true,
                }
            };
            Taps {
                start: 0,
                coeffs: if right {
                    vec![0.0, 1.0]
                } else {
                    vec![1.0, 0.0]
                },
            }
        }
        Mode::Linear if !antialias => Taps {
            start: 0,
            coeffs: vec![1.0 - ratio, ratio],
        },
        Mode::Cubic(a) if !antialias => Taps {
            start: -1,
            coeffs: (-1..3).map(|i| cubic_weight(i as f64 - ratio, a)).collect(),
        },
        // Antialiasing widens the kernel by 1/scale when downsampling.
        Mode::Linear | Mode::Cubic(_) => {
            let s = scale.min(1.0);
            let support = if matches!(mode, Mode::Linear) {
                1.0
            } else {
                2.0
            };
            let start = (-support / s).floor() as i64 + 1;
            let n = 2 - 2 * start;
            let mut coeffs: Vec<f64> = (start..start + n)
                .map(|i| {
                    let x = (i as f64 - ratio) * s;
                    match mode {
                        Mode::Cubic(a) => cubic_weight(x, a),
                        _ => (1.0 - x.abs()).clamp(0.0, 1.0),
                    }
                })
                .collect();
            let sum: f64 = coeffs.iter().sum();
            coeffs.iter_mut().for_each(|c| *c /= sum);
            Taps { start, coeffs }
        }
    }
}

/// What one output position along an axis reads: weighted input indices, or the
/// extrapolation value.
enum Sample {
    Taps(Vec<(usize, f64)>),
    Extrapolate,
}

/// Settings shared by every axis.
struct Plan<'a> {
    mode: Mode,
    antialias: bool,
    ctm: &'a str,
    exclude_outside: bool,
}

impl Plan<'_> {
    /// The samples of one axis of `input` positions resized to `out` with `scale`.
    fn axis(&self, input: usize, out: usize, scale: f64, roi: (f64, f64)) -> OpResult<Vec<Sample>> {
        let in_f = input as f64;
        let out_w = scale * in_f;
        let mut samples = Vec::with_capacity(out);
        for y in 0..out {
            let yf = y as f64;
            let x = match self.ctm {
                "half_pixel" => (yf + 0.5) / scale - 0.5,
                "pytorch_half_pixel" => {
                    if out_w == 1.0 {
                        -0.5
                    } else {
                        (yf + 0.5) / scale - 0.5
                    }
                }
                "align_corners" => {
                    if out_w == 1.0 {
                        0.0
                    } else {
                        yf * (in_f - 1.0) / (out_w - 1.0)
                    }
                }
                "asymmetric" => yf / scale,
                "half_pixel_symmetric" => {
                    let adjustment = out as f64 / out_w;
                    let offset = in_f / 2.0 * (1.0 - adjustment);
                    offset + (yf + 0.5) / scale - 0.5
                }
                "tf_crop_and_resize" => {
                    let (r0, r1) = roi;
                    let x = if out_w == 1.0 {
                        (r1 - r0) * (in_f - 1.0) / 2.0
                    } else {
                        yf * (r1 - r0) * (in_f - 1.0) / (out_w - 1.0)
                    } + r0 * (in_f - 1.0);
                    if x < 0.0 || x > in_f - 1.0 {
                        samples.push(Sample::Extrapolate);
                        continue;
                    }
                    x
                }
                other => bail!("unknown coordinate_transformation_mode {other:?}"),
            };
            if !x.is_finite() {
                bail!("coordinate {x} for output position {y} is not finite (scale {scale})");
            }
            let floor = x.floor();
            let ratio = if x == floor { 1.0 } else { x - floor };
            let base = (x - ratio) as i64;
            let t = taps(self.mode, self.antialias, ratio, scale);
            let mut list: Vec<(i64, f64)> = t
                .coeffs
                .iter()
                .enumerate()
                .map(|(k, &c)| (base + t.start + k as i64, c))
                .collect();
            let last = input as i64 - 1;
            if self.exclude_outside {
                for (i, c) in list.iter_mut() {
                    if *i < 0 || *i > last {
                        *c = 0.0;
                    }
                }
                let sum: f64 = list.iter().map(|(_, c)| c).sum();
                let sum = if sum == 0.0 { 1.0 } else { sum };
                list.iter_mut().for_each(|(_, c)| *c /= sum);
            }
            samples.push(Sample::Taps(
                list.into_iter()
                    .map(|(i, c)| (i.clamp(0, last.max(0)) as usize, c))
                    .collect(),
            ));
        }
        Ok(samples)
    }
}

/// Resample axis `axis` of `data` (shape `shape`) with `samples`.
fn apply_axis(
    data: &[f64],
    shape: &[usize],
    axis: usize,
    samples: &[Sample],
    extrapolation: f64,
) -> Vec<f64> {
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    let (din, dout) = (shape[axis], samples.len());
    let mut out = vec![0.0; outer * dout * inner];
    for o in 0..outer {
        for (y, s) in samples.iter().enumerate() {
            let dst = &mut out[(o * dout + y) * inner..][..inner];
            match s {
                Sample::Extrapolate => dst.iter_mut().for_each(|v| *v = extrapolation),
                Sample::Taps(list) => {
                    for &(i, c) in list {
                        let src = &data[(o * din + i) * inner..][..inner];
                        for (d, s) in dst.iter_mut().zip(src) {
                            *d += c * s;
                        }
                    }
                }
            }
        }
    }
    out
}

/// A non-empty optional input (an empty tensor counts as omitted).
fn given<'a>(inputs: &[Option<&'a Value>], i: usize) -> Option<&'a Value> {
    opt_input(inputs, i).filter(|v| v.len() > 0)
}

/// ONNX Resize (opset 19 form).
pub(crate) fn resize(attrs: &Attrs, inputs: &[Option<&Value>]) -> OpResult<Value> {
    let x = input(inputs, 0, "X")?;
    let shape = x.shape().to_vec();
    let r = shape.len();
    let axes = match attrs.ints("axes") {
        Some(a) => norm_axes(a, r)?,
        None => (0..r).collect(),
    };
    let na = axes.len();
    let mode = match attrs.str("mode").unwrap_or("nearest") {
        "nearest" => Mode::Nearest(
            match attrs.str("nearest_mode").unwrap_or("round_prefer_floor") {
                "round_prefer_floor" => NearestMode::RoundPreferFloor,
                "round_prefer_ceil" => NearestMode::RoundPreferCeil,
                "floor" => NearestMode::Floor,
                "ceil" => NearestMode::Ceil,
                other => bail!("unknown nearest_mode {other:?}"),
            },
        ),
        "linear" => Mode::Linear,
        "cubic" => Mode::Cubic(f64::from(attrs.float_or("cubic_coeff_a", -0.75))),
        other => bail!("unknown mode {other:?} (nearest, linear or cubic)"),
    };
    let antialias = attrs.int_or("antialias", 0) != 0 && !matches!(mode, Mode::Nearest(_));
    let ctm = attrs
        .str("coordinate_transformation_mode")
        .unwrap_or("half_pixel");
    let plan = Plan {
        mode,
        antialias,
        ctm,
        exclude_outside: attrs.int_or("exclude_outside", 0) != 0,
    };
    let extrapolation = f64::from(attrs.float_or("extrapolation_value", 0.0));
    // Per-axis scale and output size over all r dims.
    let mut scales = vec![1.0f64; r];
    let mut out_shape = shape.clone();
    match (given(inputs, 2), given(inputs, 3)) {
        (Some(_), Some(_)) => bail!("only one of scales and sizes may be given"),
        (None, None) => bail!("one of scales and sizes must be given"),
        (Some(s), None) => {
            let s = s.to_f64_vec("scales")?;
            if s.len() != na {
                bail!("scales has {} entries, expected {na}", s.len());
            }
            for (&a, &v) in axes.iter().zip(&s) {
                if v.is_nan() || v <= 0.0 || !v.is_finite() {
                    bail!("scales must be positive, got {s:?}");
                }
                scales[a] = v;
                out_shape[a] = (v * shape[a] as f64).floor() as usize;
            }
        }
        (None, Some(z)) => {
            let z = z.to_i64_vec("sizes")?;
            if z.len() != na {
                bail!("sizes has {} entries, expected {na}", z.len());
            }
            if z.iter().any(|&v| v < 0) {
                bail!("sizes must not be negative, got {z:?}");
            }
            for (&a, &v) in axes.iter().zip(&z) {
                if shape[a] == 0 {
                    bail!("cannot resize axis {a} of size 0 to {v}");
                }
                scales[a] = v as f64 / shape[a] as f64;
                out_shape[a] = v as usize;
            }
            let policy = attrs.str("keep_aspect_ratio_policy").unwrap_or("stretch");
            let pick = match policy {
                "stretch" => None,
                "not_larger" => Some(f64::min as fn(f64, f64) -> f64),
                "not_smaller" => Some(f64::max as fn(f64, f64) -> f64),
                other => bail!("unknown keep_aspect_ratio_policy {other:?}"),
            };
            if let Some(pick) = pick {
                let first = axes.first().map_or(1.0, |&a| scales[a]);
                let s = axes.iter().fold(first, |m, &a| pick(m, scales[a]));
                for &a in &axes {
                    scales[a] = s;
                    out_shape[a] = (s * shape[a] as f64 + 0.5).floor() as usize;
                }
            }
        }
    }
    checked_len(&out_shape)?;
    if out_shape.iter().any(|&d| d > super::MAX_ELEMENTS) {
        bail!("output shape {out_shape:?} is too large");
    }
    // The region of interest, over all r dims (starts then ends).
    let mut roi = vec![(0.0f64, 1.0f64); r];
    if let Some(v) = given(inputs, 1) {
        let v = v.to_f64_vec("roi")?;
        if v.len() != 2 * na {
            bail!("roi has {} entries, expected {}", v.len(), 2 * na);
        }
        for (i, &a) in axes.iter().enumerate() {
            roi[a] = (v[i], v[na + i]);
        }
    } else if ctm == "tf_crop_and_resize" {
        bail!("tf_crop_and_resize needs the roi input");
    }
    let mut data = x.to_f64_vec("X")?;
    let mut cur = shape.clone();
    for &a in &axes {
        let trivial_roi = ctm != "tf_crop_and_resize" || roi[a] == (0.0, 1.0);
        if (scales[a] - 1.0).abs() < 1e-9 && out_shape[a] == cur[a] && trivial_roi {
            continue;
        }
        let samples = plan.axis(cur[a], out_shape[a], scales[a], roi[a])?;
        if cur[a] == 0 && samples.iter().any(|s| matches!(s, Sample::Taps(_))) {
            bail!("cannot interpolate from an empty axis {a}");
        }
        data = apply_axis(&data, &cur, a, &samples, extrapolation);
        cur[a] = out_shape[a];
    }
    from_f64(x.dtype(), &cur, data)
}

/// Reflect `x` into `[lo, hi]` by bouncing off the borders.
fn reflect(x: f64, lo: f64, hi: f64) -> f64 {
    let range = hi - lo;
    if range <= 0.0 {
        return lo;
    }
    if x < lo {
        let dx = lo - x;
        let n = (dx / range).trunc();
        let r = dx - n * range;
        if n % 2.0 == 0.0 {
            lo + r
        } else {
            hi - r
        }
    } else if x > hi {
        let dx = x - hi;
        let n = (dx / range).trunc();
        let r = dx - n * range;
        if n % 2.0 == 0.0 {
            hi - r
        } else {
            lo + r
        }
    } else {
        x
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Padding {
    Zeros,
    Border,
    Reflection,
}

/// ONNX GridSample (opset 22 form) for any number of spatial dims.
pub(crate) fn grid_sample(attrs: &Attrs, inputs: &[Option<&Value>]) -> OpResult<Value> {
    let x = input(inputs, 0, "X")?;
    let grid = input(inputs, 1, "grid")?;
    let xs = x.shape().to_vec();
    let gs = grid.shape().to_vec();
    if xs.len() < 3 {
        bail!("X must be [N, C, spatial...], got shape {xs:?}");
    }
    let r = xs.len() - 2;
    if gs.len() != xs.len() || gs[0] != xs[0] || gs[gs.len() - 1] != r {
        bail!(
            "grid has shape {gs:?}, expected [{}, out spatial..., {r}] for X {xs:?}",
            xs[0]
        );
    }
    let mode = attrs.str("mode").unwrap_or("linear");
    let taps_of = match mode {
        "nearest" => 1,
        "linear" | "bilinear" => 2,
        "cubic" | "bicubic" => 4,
        other => bail!("unknown mode {other:?} (nearest, linear or cubic)"),
    };
    let padding = match attrs.str("padding_mode").unwrap_or("zeros") {
        "zeros" => Padding::Zeros,
        "border" => Padding::Border,
        "reflection" => Padding::Reflection,
        other => bail!("unknown padding_mode {other:?} (zeros, border or reflection)"),
    };
    let align = attrs.int_or("align_corners", 0) != 0;
    let round_f32 = grid.dtype() != DType::F64;
    let (n, c) = (xs[0], xs[1]);
    let dims = &xs[2..];
    let in_len: usize = dims.iter().product();
    let out_sp = &gs[1..gs.len() - 1];
    let out_len: usize = out_sp.iter().product();
    let mut out_shape = vec![n, c];
    out_shape.extend_from_slice(out_sp);
    checked_len(&out_shape)?;
    let xv = x.to_f64_vec("X")?;
    let gv = grid.to_f64_vec("grid")?;
    let mut out = vec![0.0; n * c * out_len];
    // Strides of the spatial dims of X.
    let mut strides = vec![1usize; r];
    for i in (0..r.saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * dims[i + 1];
    }
    // Per spatial dim: the taps (index into the plane or None for a zero, weight).
    let mut per_dim: Vec<Vec<(Option<usize>, f64)>> = vec![vec![]; r];
    for b in 0..n {
        for o in 0..out_len {
            let g = &gv[(b * out_len + o) * r..][..r];
            for (i, taps) in per_dim.iter_mut().enumerate() {
                let size = dims[i] as f64;
                // The grid's last axis lists x (innermost dim) first.
                let gn = g[r - 1 - i];
                let mut v = if align {
                    (gn + 1.0) / 2.0 * (size - 1.0)
                } else {
                    ((gn + 1.0) * size - 1.0) / 2.0
                };
                if round_f32 {
                    v = v as f32 as f64;
                }
                if taps_of == 1 {
                    v = v.round_ties_even();
                }
                let (lo, hi) = if align {
                    (0.0, size - 1.0)
                } else {
                    (-0.5, size - 0.5)
                };
                if v < lo || v > hi {
                    match padding {
                        Padding::Border => v = v.clamp(0.0, size - 1.0),
                        Padding::Reflection => v = reflect(v, lo, hi),
                        Padding::Zeros => {}
                    }
                }
                if !v.is_finite() {
                    bail!("grid coordinate {gn} maps to a non-finite position");
                }
                let base = v.floor();
                let t = v - base;
                let coeffs: Vec<(f64, f64)> = match taps_of {
                    1 => vec![(v, 1.0)],
                    2 => vec![(base, 1.0 - t), (base + 1.0, t)],
                    _ => (-1..3)
                        .map(|k| (base + k as f64, cubic_weight(t - k as f64, -0.75)))
                        .collect(),
                };
                taps.clear();
                for (pos, w) in coeffs {
                    let at = match padding {
                        Padding::Zeros => (pos >= 0.0 && pos < size).then_some(pos),
                        Padding::Border => Some(pos.clamp(0.0, size - 1.0)),
                        Padding::Reflection => {
                            Some(reflect(pos, lo, hi).trunc().clamp(0.0, size - 1.0))
                        }
                    };
                    taps.push((at.map(|p| p as usize * strides[i]), w));
                }
            }
            for ch in 0..c {
                let plane = &xv[(b * c + ch) * in_len..][..in_len];
                // Sum over every combination of taps across the dims.
                let mut acc = 0.0;
                let mut idx = vec![0usize; r];
                'combo: loop {
                    let mut w = 1.0;
                    let mut off = Some(0usize);
                    for (i, &k) in idx.iter().enumerate() {
                        let (at, wt) = per_dim[i][k];
                        w *= wt;
                        off = match (off, at) {
                            (Some(o), Some(a)) => Some(o + a),
                            _ => None,
                        };
                    }
                    if let Some(o) = off {
                        acc += w * plane[o];
                    }
                    for i in (0..r).rev() {
                        idx[i] += 1;
                        if idx[i] < per_dim[i].len() {
                            continue 'combo;
                        }
                        idx[i] = 0;
                    }
                    break;
                }
                out[(b * c + ch) * out_len + o] = acc;
            }
        }
    }
    from_f64(x.dtype(), &out_shape, out)
}

/// ONNX AffineGrid: the sampling grid of 2-D (theta `[N, 2, 3]`, size `[N, C, H, W]`) or
/// 3-D (theta `[N, 3, 4]`, size `[N, C, D, H, W]`) affine transforms.
pub(crate) fn affine_grid(attrs: &Attrs, inputs: &[Option<&Value>]) -> OpResult<Value> {
    let theta = input(inputs, 0, "theta")?;
    let size = input(inputs, 1, "size")?.to_i64_vec("size")?;
    let align = attrs.int_or("align_corners", 0) != 0;
    let ts = theta.shape().to_vec();
    let r = match size.len() {
        4 => 2,
        5 => 3,
        n => bail!("size must have 4 or 5 entries, got {n}"),
    };
    if ts.len() != 3 || ts[1] != r || ts[2] != r + 1 {
        bail!("theta has shape {ts:?}, expected [N, {r}, {}]", r + 1);
    }
    if size.iter().any(|&v| v < 0) || size[0] as usize != ts[0] {
        bail!("size {size:?} must be non-negative with N = {}", ts[0]);
    }
    let n = ts[0];
    let sp: Vec<usize> = size[2..].iter().map(|&v| v as usize).collect();
    let mut out_shape = vec![n];
    out_shape.extend_from_slice(&sp);
    out_shape.push(r);
    checked_len(&out_shape)?;
    let base = |i: usize, len: usize| -> f64 {
        if align {
            if len <= 1 {
                -1.0
            } else {
                -1.0 + i as f64 * 2.0 / (len - 1) as f64
            }
        } else {
            -1.0 + (2 * i + 1) as f64 / len as f64
        }
    };
    let tv = theta.to_f64_vec("theta")?;
    let points: usize = sp.iter().product();
    let mut out = Vec::with_capacity(n * points * r);
    for b in 0..n {
        let th = &tv[b * r * (r + 1)..][..r * (r + 1)];
        for p in 0..points {
            // Homogeneous source point, x (innermost dim) first.
            let mut rem = p;
            let mut coords = vec![0.0; r + 1];
            for d in (0..r).rev() {
                let i = rem % sp[d];
                rem /= sp[d];
                coords[r - 1 - d] = base(i, sp[d]);
            }
            coords[r] = 1.0;
            for row in 0..r {
                out.push((0..=r).map(|k| th[row * (r + 1) + k] * coords[k]).sum());
            }
        }
    }
    from_f64(theta.dtype(), &out_shape, out)
}

#[cfg(test)]
mod tests {
    use crate::ops::testutil::{attrs, data, fails, v};
    use smelt_ir::{Attr, OpKind};

    fn resize(a: &smelt_ir::Attrs, x: &crate::value::Value, scales: &[f32]) -> Vec<f32> {
        let s = v(&[scales.len()], scales);
        let out = super::super::eval(&OpKind::Resize, a, &[Some(x), None, Some(&s)], 1).unwrap();
        data::<f32>(&out[0]).1
    }

    #[test]
    fn nearest_and_linear_upsample() {
        let x = v(&[1, 1, 1, 2], &[1.0f32, 2.0]);
        let y = resize(&attrs(&[]), &x, &[1.0, 1.0, 1.0, 2.0]);
        assert_eq!(y, vec![1.0, 1.0, 2.0, 2.0]);
        let lin = attrs(&[("mode", Attr::Str("linear".into()))]);
        // half_pixel: x = (y + 0.5) / 2 - 0.5 -> -0.25, 0.25, 0.75, 1.25 (edges clamp).
        assert_eq!(
            resize(&lin, &x, &[1.0, 1.0, 1.0, 2.0]),
            vec![1.0, 1.25, 1.75, 2.0]
        );
        let ac = lin.with(
            "coordinate_transformation_mode",
            Attr::Str("align_corners".into()),
        );
        let y = resize(&ac, &x, &[1.0, 1.0, 1.0, 1.5]);
        assert_eq!(y, vec![1.0, 1.5, 2.0]);
    }

    #[test]
    fn sizes_axes_and_errors() {
        let x = v(&[2, 2], &[1.0f32, 2.0, 3.0, 4.0]);
        let sizes = v(&[1], &[4i64]);
        let a = attrs(&[("axes", Attr::Ints(vec![1]))]);
        let out = super::super::eval(
            &OpKind::Resize,
            &a,
            &[Some(&x), None, None, Some(&sizes)],
            1,
        )
        .unwrap();
        assert_eq!(
            data::<f32>(&out[0]),
            (vec![2, 4], vec![1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0])
        );
        let s = v(&[1], &[2.0f32]);
        assert!(
            fails(OpKind::Resize, &attrs(&[]), &[&x, &v::<f32>(&[0], &[]), &s]).contains("entries")
        );
        let bad = attrs(&[("mode", Attr::Str("area".into()))]);
        assert!(fails(
            OpKind::Resize,
            &bad,
            &[&x, &v::<f32>(&[0], &[]), &v(&[2], &[1.0f32, 1.0])]
        )
        .contains("unknown mode"));
    }

    #[test]
    fn grid_sample_and_affine_grid() {
        let x = v(&[1, 1, 2, 2], &[1.0f32, 2.0, 3.0, 4.0]);
        // Pixel centres (align_corners = 0) and the middle of the image.
        let g = v(&[1, 1, 2, 2], &[-0.5f32, -0.5, 0.0, 0.0]);
        let y = crate::ops::testutil::run(OpKind::GridSample, &attrs(&[]), &[&x, &g]);
        assert_eq!(data::<f32>(&y), (vec![1, 1, 1, 2], vec![1.0, 2.5]));
        let near = attrs(&[("mode", Attr::Str("nearest".into()))]);
        let g = v(&[1, 1, 1, 2], &[0.9f32, 0.9]);
        let y = crate::ops::testutil::run(OpKind::GridSample, &near, &[&x, &g]);
        assert_eq!(data::<f32>(&y).1, vec![4.0]);
        let bad = v(&[1, 1, 1, 3], &[0.0f32; 3]);
        assert!(fails(OpKind::GridSample, &attrs(&[]), &[&x, &bad]).contains("grid has shape"));
        // The identity transform gives the base grid.
        let theta = v(&[1, 2, 3], &[1.0f32, 0.0, 0.0, 0.0, 1.0, 0.0]);
        let size = v(&[4], &[1i64, 1, 1, 2]);
        let y = crate::ops::testutil::run(OpKind::AffineGrid, &attrs(&[]), &[&theta, &size]);
        assert_eq!(
            data::<f32>(&y),
            (vec![1, 1, 2, 2], vec![-0.5, 0.0, 0.5, 0.0])
        );
    }

    #[test]
    fn integer_inputs_round() {
        let x = v(&[1, 2], &[0u8, 255]);
        let lin = attrs(&[("mode", Attr::Str("linear".into()))]);
        let s = v(&[2], &[1.0f32, 2.0]);
        let out =
            super::super::eval(&OpKind::Resize, &lin, &[Some(&x), None, Some(&s)], 1).unwrap();
        assert_eq!(data::<u8>(&out[0]).1, vec![0, 64, 191, 255]);
    }
}
