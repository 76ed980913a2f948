//! Rules for linear algebra, convolution and pooling, normalisation, reductions and
//! quantisation.

use crate::dtype::DType;
use crate::shape::{Dim, Shape};
use crate::types::TensorType;

use super::util::{
    attrs, broadcast, input, non_negative, norm_axes, norm_axis, num_outputs, opt_input, positive,
    same_dtype, unify_dim, R,
};
use super::value::input_value;
use super::{dtype_from_onnx_code, InferCx};

fn one(t: TensorType) -> R<Vec<TensorType>> {
    Ok(vec![t])
}

/// `MatMul` with numpy semantics: 1-D operands are promoted (and the added dim dropped
/// again), batch dims broadcast.
pub(super) fn matmul(cx: &InferCx) -> R<Vec<TensorType>> {
    let a = input(cx, 0, "A")?;
    let b = input(cx, 1, "B")?;
    same_dtype(a, "input 0 (A)", b, "input 1 (B)")?;
    let (Some(ad), Some(bd)) = (a.dims(), b.dims()) else {
        return one(TensorType::unranked(a.dtype));
    };
    if ad.is_empty() || bd.is_empty() {
        return Err(format!(
            "MatMul needs operands of rank >= 1, got A {a} and B {b}"
        ));
    }
    let a_vec = ad.len() == 1;
    let b_vec = bd.len() == 1;
    let a2: Vec<Dim> = if a_vec {
        [&[Dim::Known(1)], ad].concat()
    } else {
        ad.to_vec()
    };
    let b2: Vec<Dim> = if b_vec {
        [bd, &[Dim::Known(1)]].concat()
    } else {
        bd.to_vec()
    };
    // Both have at least two dims after promotion.
    let ([a_batch @ .., m, ka], [b_batch @ .., kb, n]) = (a2.as_slice(), b2.as_slice()) else {
        return Err(format!("MatMul operands A {a} and B {b} have too few dims"));
    };
    if unify_dim(ka, kb).is_none() {
        return Err(format!("inner dims {ka} and {kb} differ (A {a}, B {b})"));
    }
    let batch = broadcast(
        &[&Shape::new(a_batch.to_vec()), &Shape::new(b_batch.to_vec())],
        "MatMul batch dims",
    )?;
    let mut out = batch.dims().map(<[Dim]>::to_vec).unwrap_or_default();
    if !a_vec {
        out.push(m.clone());
    }
    if !b_vec {
        out.push(n.clone());
    }
    one(TensorType::new(a.dtype, out))
}

/// The two dims of a 2-D operand (unknown when its rank is).
fn dims2(t: &TensorType, what: &str) -> R<(Dim, Dim)> {
    match t.dims() {
        None => Ok((Dim::Unknown, Dim::Unknown)),
        Some([x, y]) => Ok((x.clone(), y.clone())),
        Some(_) => Err(format!("{what} must be 2-D, got {t}")),
    }
}

/// `Gemm`: `[M, K] x [K, N] (+ C)` with optional transposes.
pub(super) fn gemm(cx: &InferCx) -> R<Vec<TensorType>> {
    let a = input(cx, 0, "A")?;
    let b = input(cx, 1, "B")?;
    same_dtype(a, "input 0 (A)", b, "input 1 (B)")?;
    let at = attrs(cx);
    let (mut m, mut ka) = dims2(a, "input 0 (A)")?;
    let (mut kb, mut n) = dims2(b, "input 1 (B)")?;
    if at.int_or("transA", 0) != 0 {
        std::mem::swap(&mut m, &mut ka);
    }
    if at.int_or("transB", 0) != 0 {
        std::mem::swap(&mut kb, &mut n);
    }
    if unify_dim(&ka, &kb).is_none() {
        return Err(format!("inner dims {ka} and {kb} differ (A {a}, B {b})"));
    }
    let mut shape = Shape::new(vec![m, n]);
    if let Some(c) = opt_input(cx, 2) {
        same_dtype(a, "input 0 (A)", c, "input 2 (C)")?;
        if c.rank().is_some_and(|r| r > 2) {
            return Err(format!(
                "input 2 (C) {c} does not broadcast to the 2-D result"
            ));
        }
        if c.rank().is_some() {
            let b = broadcast(&[&shape, &c.shape], "result and input 2 (C)")?;
            // C broadcasts one way only: it may refine unknown dims, not widen known ones.
            let widened = shape
                .dims()
                .zip(b.dims())
                .is_some_and(|(o, n)| o.iter().zip(n).any(|(o, n)| o.known().is_some() && o != n));
            if widened {
                return Err(format!(
                    "input 2 (C) {c} does not broadcast to the result {shape}"
                ));
            }
            shape = b;
        }
    }
    one(TensorType {
        dtype: a.dtype,
        shape,
    })
}

/// Padding mode of convolutions and pools.
#[derive(Clone, Copy, PartialEq, Eq)]
enum AutoPad {
    NotSet,
    SameUpper,
    SameLower,
    Valid,
}

/// Window geometry shared by Conv and the pools; all per-spatial-axis.
struct Window {
    kernel: Vec<Option<u64>>,
    strides: Vec<u64>,
    dilations: Vec<u64>,
    /// Begin pads then end pads (ONNX order), all zero unless `auto_pad` is NOTSET.
    pads: Vec<u64>,
    auto_pad: AutoPad,
    ceil_mode: bool,
}

/// An ints attribute of exactly `n` non-negative (or positive) values, or the default.
fn ints_attr(
    cx: &InferCx,
    name: &str,
    n: usize,
    default: u64,
    must_be_positive: bool,
) -> R<Vec<u64>> {
    let Some(v) = attrs(cx).ints(name) else {
        return Ok(vec![default; n]);
    };
    if v.len() != n {
        return Err(format!("attribute `{name}` {v:?} must have {n} entries"));
    }
    let what = format!("attribute `{name}` entry");
    v.iter()
        .map(|&x| {
            if must_be_positive {
                positive(x, &what)
            } else {
                non_negative(x, &what)
            }
        })
        .collect()
}

fn window(cx: &InferCx, kernel: Vec<Option<u64>>, ceil_mode: bool) -> R<Window> {
    let n = kernel.len();
    let auto_pad = match attrs(cx).str("auto_pad").unwrap_or("NOTSET") {
        "NOTSET" | "" => AutoPad::NotSet,
        "SAME_UPPER" => AutoPad::SameUpper,
        "SAME_LOWER" => AutoPad::SameLower,
        "VALID" => AutoPad::Valid,
        other => {
            return Err(format!(
                "attribute `auto_pad` = {other:?} is not NOTSET, SAME_UPPER, SAME_LOWER or VALID"
            ))
        }
    };
    let strides = ints_attr(cx, "strides", n, 1, true)?;
    let dilations = ints_attr(cx, "dilations", n, 1, true)?;
    let mut pads = ints_attr(cx, "pads", 2 * n, 0, false)?;
    if auto_pad != AutoPad::NotSet {
        pads = vec![0; 2 * n];
    }
    Ok(Window {
        kernel,
        strides,
        dilations,
        pads,
        auto_pad,
        ceil_mode,
    })
}

impl Window {
    /// Output size along spatial axis `i` for input size `d`.
    fn out_dim(&self, i: usize, d: &Dim) -> R<Dim> {
        let get = |v: &[u64], j: usize| v.get(j).copied().unwrap_or(1);
        let (s, dil) = (get(&self.strides, i), get(&self.dilations, i));
        let n = self.kernel.len();
        let (pb, pe) = (
            self.pads.get(i).copied().unwrap_or(0),
            self.pads.get(i + n).copied().unwrap_or(0),
        );
        if matches!(self.auto_pad, AutoPad::SameUpper | AutoPad::SameLower) {
            return Ok(match d {
                Dim::Known(x) => Dim::Known(x.div_ceil(s)),
                _ if s == 1 => d.clone(),
                _ => Dim::Unknown,
            });
        }
        let Some(k) = self.kernel.get(i).copied().flatten() else {
            return Ok(Dim::Unknown);
        };
        let ext = k
            .checked_sub(1)
            .and_then(|k1| k1.checked_mul(dil))
            .and_then(|e| e.checked_add(1))
            .ok_or_else(|| format!("kernel size {k} with dilation {dil} is invalid"))?;
        let Dim::Known(x) = d else {
            // Stride 1 with padding that exactly compensates the window keeps the size.
            let same = s == 1 && pb.checked_add(pe) == Some(ext - 1);
            return Ok(if same { d.clone() } else { Dim::Unknown });
        };
        let padded = x
            .checked_add(pb)
            .and_then(|v| v.checked_add(pe))
            .ok_or("padded size overflows")?;
        if padded < ext {
            return Err(format!(
                "spatial axis {i}: input size {x} (padded {padded}) is smaller than the window extent {ext}"
            ));
        }
        let span = padded - ext;
        let mut out = if self.ceil_mode {
            span.div_ceil(s)
        } else {
            span / s
        } + 1;
        // A window may not start in the end padding (ONNX / PyTorch ceil_mode rule).
        if self.ceil_mode && (out - 1).saturating_mul(s) >= x.saturating_add(pb) {
            out -= 1;
        }
        Ok(Dim::Known(out))
    }
}

/// `Conv` (N, C, spatial...) with weights (M, C/group, kernel...).
pub(super) fn conv(cx: &InferCx) -> R<Vec<TensorType>> {
    let x = input(cx, 0, "X")?;
    let w = input(cx, 1, "W")?;
    same_dtype(x, "input 0 (X)", w, "input 1 (W)")?;
    let at = attrs(cx);
    let ks = at.ints("kernel_shape");
    let spatial = match (w.rank(), x.rank(), ks) {
        (Some(r), _, _) | (None, Some(r), _) => r
            .checked_sub(2)
            .ok_or_else(|| format!("Conv needs rank >= 3, got X {x} and W {w}"))?,
        (None, None, Some(k)) => k.len(),
        (None, None, None) => return one(TensorType::unranked(x.dtype)),
    };
    for (t, name) in [(x, "input 0 (X)"), (w, "input 1 (W)")] {
        if t.rank().is_some_and(|r| r != spatial + 2) {
            return Err(format!(
                "{name} {t} does not match the {spatial} spatial dims of X {x} and W {w}"
            ));
        }
    }
    let xd = x
        .dims()
        .map(<[Dim]>::to_vec)
        .unwrap_or_else(|| vec![Dim::Unknown; spatial + 2]);
    let wd = w
        .dims()
        .map(<[Dim]>::to_vec)
        .unwrap_or_else(|| vec![Dim::Unknown; spatial + 2]);
    let group = positive(at.int_or("group", 1), "attribute `group`")?;
    let c_in = xd.get(1).and_then(Dim::known);
    let c_w = wd.get(1).and_then(Dim::known);
    let m = wd.first().cloned().unwrap_or(Dim::Unknown);
    if let (Some(c), Some(cw)) = (c_in, c_w) {
        if cw.checked_mul(group) != Some(c) {
            return Err(format!(
                "X {x} has {c} channels but W {w} expects {cw} x group {group}"
            ));
        }
    }
    if let Dim::Known(mm) = m {
        if mm % group != 0 {
            return Err(format!(
                "W {w} has {mm} output channels, not divisible by group {group}"
            ));
        }
    }
    let w_kernel: Vec<Option<u64>> = wd.iter().skip(2).map(Dim::known).collect();
    let kernel = match ks {
        Some(k) => {
            if k.len() != spatial {
                return Err(format!(
                    "attribute `kernel_shape` {k:?} must have {spatial} entries"
                ));
            }
            let k: Vec<u64> = k
                .iter()
                .map(|&v| positive(v, "attribute `kernel_shape` entry"))
                .collect::<R<_>>()?;
            for (i, (a, b)) in k.iter().zip(&w_kernel).enumerate() {
                if b.is_some_and(|b| b != *a) {
                    return Err(format!(
                        "attribute `kernel_shape` {k:?} disagrees with W {w} on spatial axis {i}"
                    ));
                }
            }
            k.into_iter().map(Some).collect()
        }
        None => w_kernel,
    };
    if let Some(b) = opt_input(cx, 2) {
        same_dtype(x, "input 0 (X)", b, "input 2 (B)")?;
        match b.dims() {
            Some([d]) if unify_dim(d, &m).is_none() => {
                return Err(format!(
                    "input 2 (B) {b} does not match the {m} output channels of W {w}"
                ))
            }
            Some(d) if d.len() != 1 => return Err(format!("input 2 (B) must be 1-D, got {b}")),
            _ => {}
        }
    }
    let win = window(cx, kernel, false)?;
    let mut out = vec![xd.first().cloned().unwrap_or(Dim::Unknown), m];
    for (i, d) in xd.iter().skip(2).enumerate() {
        out.push(win.out_dim(i, d)?);
    }
    one(TensorType::new(x.dtype, out))
}

/// `MaxPool` / `AveragePool`; MaxPool's optional second output holds i64 indices.
pub(super) fn pool(cx: &InferCx, is_max: bool) -> R<Vec<TensorType>> {
    let x = input(cx, 0, "X")?;
    let at = attrs(cx);
    let ks = at
        .ints("kernel_shape")
        .ok_or("attribute `kernel_shape` is missing")?;
    let kernel: Vec<Option<u64>> = ks
        .iter()
        .map(|&v| positive(v, "attribute `kernel_shape` entry").map(Some))
        .collect::<R<_>>()?;
    let spatial = kernel.len();
    let xd = match x.dims() {
        Some(d) if d.len() != spatial + 2 => {
            return Err(format!(
                "input 0 (X) {x} does not have 2 + {spatial} dims for kernel_shape {ks:?}"
            ))
        }
        Some(d) => d.to_vec(),
        None => vec![Dim::Unknown; spatial + 2],
    };
    let win = window(cx, kernel, at.int_or("ceil_mode", 0) != 0)?;
    let mut out: Vec<Dim> = xd.iter().take(2).cloned().collect();
    for (i, d) in xd.iter().skip(2).enumerate() {
        out.push(win.out_dim(i, d)?);
    }
    let mut res = vec![TensorType::new(x.dtype, out.clone())];
    if is_max && num_outputs(cx) > 1 {
        res.push(TensorType::new(DType::I64, out));
    }
    Ok(res)
}

/// `GlobalAveragePool` / `GlobalMaxPool`: spatial dims become 1.
pub(super) fn global_pool(cx: &InferCx) -> R<Vec<TensorType>> {
    let x = input(cx, 0, "X")?;
    let Some(d) = x.dims() else {
        return one(x.clone());
    };
    if d.len() < 2 {
        return Err(format!("input 0 (X) must have rank >= 2, got {x}"));
    }
    let out: Vec<Dim> = d
        .iter()
        .enumerate()
        .map(|(i, d)| if i < 2 { d.clone() } else { Dim::Known(1) })
        .collect();
    one(TensorType::new(x.dtype, out))
}

/// `BatchNormalization`: Y like X; in training mode the running mean and variance.
pub(super) fn batch_norm(cx: &InferCx) -> R<Vec<TensorType>> {
    let x = input(cx, 0, "X")?;
    let c = x
        .dims()
        .and_then(|d| d.get(1))
        .cloned()
        .unwrap_or(Dim::Unknown);
    let names = ["X", "scale", "B", "input_mean", "input_var"];
    for (slot, name) in names.iter().enumerate().skip(1) {
        let t = input(cx, slot, name)?;
        match t.dims() {
            Some([d]) if unify_dim(d, &c).is_some() => {}
            None => {}
            _ => {
                return Err(format!(
                    "input {slot} ({name}) must be 1-D of the {c} channels of X {x}, got {t}"
                ))
            }
        }
    }
    let scale = input(cx, 1, "scale")?;
    same_dtype(scale, "input 1 (scale)", input(cx, 2, "B")?, "input 2 (B)")?;
    let mean = input(cx, 3, "input_mean")?;
    same_dtype(
        mean,
        "input 3 (input_mean)",
        input(cx, 4, "input_var")?,
        "input 4 (input_var)",
    )?;
    let mut out = vec![x.clone()];
    for _ in 1..num_outputs(cx) {
        out.push(TensorType::new(mean.dtype, vec![c.clone()]));
    }
    Ok(out)
}

/// `LayerNormalization`: Y like X; Mean and InvStdDev keep the dims before `axis` and
/// have 1 from `axis` on, in the `stash_type` dtype.
pub(super) fn layer_norm(cx: &InferCx) -> R<Vec<TensorType>> {
    let x = input(cx, 0, "X")?;
    let scale = input(cx, 1, "Scale")?;
    same_dtype(x, "input 0 (X)", scale, "input 1 (Scale)")?;
    let at = attrs(cx);
    let code = at.int_or("stash_type", 1);
    let stash = dtype_from_onnx_code(code)
        .ok_or_else(|| format!("attribute `stash_type` = {code} is not a dtype code"))?;
    let stat_shape = match x.dims() {
        None => Shape::unranked(),
        Some(d) => {
            let a = norm_axis(at.int_or("axis", -1), d.len(), "attribute `axis`")?;
            let norm = Shape::new(d.get(a..).unwrap_or(&[]).to_vec());
            for (slot, name) in [(1, "Scale"), (2, "B")] {
                if let Some(t) = opt_input(cx, slot) {
                    let b = broadcast(
                        &[&norm, &t.shape],
                        &format!("input {slot} ({name}) against X's normalised dims"),
                    )?;
                    if b.rank() != norm.rank() && t.rank().is_some() {
                        return Err(format!(
                            "input {slot} ({name}) {t} has more dims than X's normalised {norm}"
                        ));
                    }
                }
            }
            Shape::new(
                d.iter()
                    .enumerate()
                    .map(|(i, d)| if i < a { d.clone() } else { Dim::Known(1) })
                    .collect(),
            )
        }
    };
    let mut out = vec![x.clone()];
    for _ in 1..num_outputs(cx).min(3) {
        out.push(TensorType {
            dtype: stash,
            shape: stat_shape.clone(),
        });
    }
    Ok(out)
}

/// `Softmax` / `LogSoftmax`: same type; the axis must exist.
pub(super) fn softmax(cx: &InferCx) -> R<Vec<TensorType>> {
    let x = input(cx, 0, "input")?;
    if let Some(r) = x.rank() {
        norm_axis(attrs(cx).int_or("axis", -1), r, "attribute `axis`")?;
    }
    one(x.clone())
}

/// `Reduce*`: axes from input 1 (or the older `axes` attribute); none means all axes,
/// or nothing with `noop_with_empty_axes`.
pub(super) fn reduce(cx: &InferCx) -> R<Vec<TensorType>> {
    let x = input(cx, 0, "data")?;
    let at = attrs(cx);
    let keep = at.int_or("keepdims", 1) != 0;
    let noop = at.int_or("noop_with_empty_axes", 0) != 0;
    let axes: Option<Vec<i64>> = match opt_input(cx, 1) {
        Some(t) => {
            if !matches!(t.dtype, DType::I64) || t.rank().is_some_and(|r| r != 1) {
                return Err(format!("input 1 (axes) must be a 1-D i64 tensor, got {t}"));
            }
            match input_value(cx, 1) {
                Some(v) if v.elems.is_empty() => Some(vec![]),
                Some(v) => v.ints(),
                None => None,
            }
        }
        None => Some(at.ints("axes").map(<[i64]>::to_vec).unwrap_or_default()),
    };
    let Some(axes) = axes else {
        // Unknown axes: with keepdims each dim either stays or becomes 1.
        let shape = match (keep, x.dims()) {
            (true, Some(d)) => Shape::new(
                d.iter()
                    .map(|d| {
                        if *d == Dim::Known(1) {
                            d.clone()
                        } else {
                            Dim::Unknown
                        }
                    })
                    .collect(),
            ),
            _ => Shape::unranked(),
        };
        return one(TensorType {
            dtype: x.dtype,
            shape,
        });
    };
    if axes.is_empty() && noop {
        return one(x.clone());
    }
    let Some(d) = x.dims() else {
        let shape = if keep {
            Shape::unranked()
        } else if axes.is_empty() {
            Shape::scalar()
        } else {
            Shape::unranked()
        };
        return one(TensorType {
            dtype: x.dtype,
            shape,
        });
    };
    let axes = if axes.is_empty() {
        (0..d.len()).collect()
    } else {
        norm_axes(&axes, d.len(), "axes")?
    };
    one(TensorType::new(x.dtype, reduced(d, &axes, keep)))
}

fn reduced(d: &[Dim], axes: &[usize], keep: bool) -> Vec<Dim> {
    d.iter()
        .enumerate()
        .filter_map(|(i, d)| match (axes.contains(&i), keep) {
            (false, _) => Some(d.clone()),
            (true, true) => Some(Dim::Known(1)),
            (true, false) => None,
        })
        .collect()
}

/// `ArgMax` / `ArgMin`: i64 indices along `axis`.
pub(super) fn arg_reduce(cx: &InferCx) -> R<Vec<TensorType>> {
    let x = input(cx, 0, "data")?;
    let at = attrs(cx);
    let keep = at.int_or("keepdims", 1) != 0;
    let Some(d) = x.dims() else {
        return one(TensorType::unranked(DType::I64));
    };
    let a = norm_axis(at.int_or("axis", 0), d.len(), "attribute `axis`")?;
    one(TensorType::new(DType::I64, reduced(d, &[a], keep)))
}

/// The dtype named by the `output_dtype` attribute, if set (0 means unset).
fn output_dtype_attr(cx: &InferCx) -> R<Option<DType>> {
    match attrs(cx).int("output_dtype") {
        None | Some(0) => Ok(None),
        Some(c) => dtype_from_onnx_code(c)
            .map(Some)
            .ok_or_else(|| format!("attribute `output_dtype` = {c} is not a dtype code")),
    }
}

/// `QuantizeLinear`: x's shape; dtype from `output_dtype`, else the zero point's, else u8.
pub(super) fn quantize(cx: &InferCx) -> R<Vec<TensorType>> {
    let x = input(cx, 0, "x")?;
    input(cx, 1, "y_scale")?;
    let zp = opt_input(cx, 2);
    let dtype = match (output_dtype_attr(cx)?, zp) {
        (Some(o), Some(z)) if o != z.dtype => {
            return Err(format!(
                "attribute `output_dtype` says {o} but input 2 (y_zero_point) is {z}"
            ))
        }
        (Some(o), _) => o,
        (None, Some(z)) => z.dtype,
        (None, None) => DType::U8,
    };
    one(TensorType {
        dtype,
        shape: x.shape.clone(),
    })
}

/// `DequantizeLinear`: x's shape; dtype from `output_dtype`, else the scale's.
pub(super) fn dequantize(cx: &InferCx) -> R<Vec<TensorType>> {
    let x = input(cx, 0, "x")?;
    let scale = input(cx, 1, "x_scale")?;
    if let Some(z) = opt_input(cx, 2) {
        same_dtype(x, "input 0 (x)", z, "input 2 (x_zero_point)")?;
    }
    let dtype = output_dtype_attr(cx)?.unwrap_or(scale.dtype);
    one(TensorType {
        dtype,
        shape: x.shape.clone(),
    })
}
