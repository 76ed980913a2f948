//! Rules for indexing and data-rearranging ops (GatherElements, GatherND, the scatters,
//! Trilu, TopK, CumSum/CumProd, OneHot, NonZero, Unique, Compress, ReverseSequence,
//! DepthToSpace/SpaceToDepth, EyeLike, Pad, CenterCropPad, BitCast), Hardmax, Einsum and
//! Det, and the extra elementwise ops (inverse trigonometric and hyperbolic functions,
//! activations, bitwise ops and BitShift).

use crate::dtype::DType;
use crate::op::OpKind;
use crate::shape::{Dim, Shape};
use crate::types::TensorType;

use super::util::{
    attrs, broadcast, index_dtype, input, norm_axes, norm_axis, num_outputs, opt_input,
    product_dim, same_dtype, R,
};
use super::value::{input_ints, input_value};
use super::{dtype_from_onnx_code, InferCx};

/// Output types of one of this family's ops.
pub(super) fn infer(cx: &InferCx) -> R<Vec<TensorType>> {
    use OpKind::*;
    match &cx.graph.node(cx.node).op {
        Acos | Asin | Acosh | Asinh | Atanh | Cosh | Sinh | Selu | Celu | ThresholdedRelu
        | Softsign | Mish => float_unary(cx),
        Shrink => shrink(cx),
        Hardmax => hardmax(cx),
        BitwiseNot => bitwise_not(cx),
        BitwiseAnd | BitwiseOr | BitwiseXor | BitShift => bitwise_binary(cx),
        GatherElements => gather_elements(cx),
        GatherND => gather_nd(cx),
        ScatterElements => scatter(cx, false),
        ScatterND => scatter(cx, true),
        Trilu => trilu(cx),
        TopK => top_k(cx),
        CumSum | CumProd => cumulative(cx),
        OneHot => one_hot(cx),
        NonZero => non_zero(cx),
        Unique => unique(cx),
        Compress => compress(cx),
        ReverseSequence => reverse_sequence(cx),
        DepthToSpace => depth_space(cx, true),
        SpaceToDepth => depth_space(cx, false),
        EyeLike => eye_like(cx),
        Pad => pad(cx),
        CenterCropPad => center_crop_pad(cx),
        BitCast => bit_cast(cx),
        Einsum => einsum(cx),
        Det => det(cx),
        HannWindow | HammingWindow | BlackmanWindow => window(cx),
        MelWeightMatrix => mel_weight_matrix(cx),
        DFT => dft(cx),
        STFT => stft(cx),
        NonMaxSuppression => non_max_suppression(cx),
        StringConcat => string_concat(cx),
        StringSplit => string_split(cx),
        StringNormalizer => string_normalizer(cx),
        TfIdfVectorizer => tfidf_vectorizer(cx),
        ReduceLogSum => super::nn::reduce(cx),
        other => Err(format!("{other} has no rule in the indexing family")),
    }
}

fn one(t: TensorType) -> R<Vec<TensorType>> {
    Ok(vec![t])
}

/// A one-input op on floats whose output has the input's type.
pub(super) fn float_unary(cx: &InferCx) -> R<Vec<TensorType>> {
    let x = input(cx, 0, "X")?;
    if !x.dtype.is_float() {
        return Err(format!("input 0 (X) must be a float tensor, got {x}"));
    }
    one(x.clone())
}

/// `Shrink`: any numeric type, output like the input.
pub(super) fn shrink(cx: &InferCx) -> R<Vec<TensorType>> {
    let x = input(cx, 0, "input")?;
    if !(x.dtype.is_float() || x.dtype.is_int()) {
        return Err(format!("input 0 (input) must be numeric, got {x}"));
    }
    one(x.clone())
}

/// `Hardmax`: float input, `axis` in range.
pub(super) fn hardmax(cx: &InferCx) -> R<Vec<TensorType>> {
    let x = input(cx, 0, "input")?;
    if !(x.dtype.is_float() || x.dtype.is_int()) {
        return Err(format!("input 0 (input) must be numeric, got {x}"));
    }
    if let Some(r) = x.rank() {
        norm_axis(attrs(cx).int_or("axis", -1), r, "attribute `axis`")?;
    }
    one(x.clone())
}

fn require_int(t: &TensorType, what: &str) -> R<()> {
    if t.dtype.is_int() {
        Ok(())
    } else {
        Err(format!("{what} must be an integer tensor, got {t}"))
    }
}

/// `BitwiseNot`: integers, output like the input.
pub(super) fn bitwise_not(cx: &InferCx) -> R<Vec<TensorType>> {
    let x = input(cx, 0, "X")?;
    require_int(x, "input 0 (X)")?;
    one(x.clone())
}

/// `BitwiseAnd/Or/Xor`, `BitShift`: two integer inputs of one dtype, broadcast.
pub(super) fn bitwise_binary(cx: &InferCx) -> R<Vec<TensorType>> {
    let a = input(cx, 0, "A")?;
    let b = input(cx, 1, "B")?;
    require_int(a, "input 0 (A)")?;
    same_dtype(a, "input 0 (A)", b, "input 1 (B)")?;
    let shape = broadcast(&[&a.shape, &b.shape], "inputs A and B")?;
    one(TensorType {
        dtype: a.dtype,
        shape,
    })
}

/// `GatherElements`: the output has the indices' shape and the data's dtype.
pub(super) fn gather_elements(cx: &InferCx) -> R<Vec<TensorType>> {
    let data = input(cx, 0, "data")?;
    let idx = input(cx, 1, "indices")?;
    index_dtype(idx, "input 1 (indices)")?;
    if let (Some(r), Some(q)) = (data.rank(), idx.rank()) {
        if r == 0 || r != q {
            return Err(format!(
                "input 0 (data) {data} and input 1 (indices) {idx} must have the same rank >= 1"
            ));
        }
        norm_axis(attrs(cx).int_or("axis", 0), r, "attribute `axis`")?;
    }
    one(TensorType {
        dtype: data.dtype,
        shape: idx.shape.clone(),
    })
}

/// `ScatterElements`, `ScatterND`: the output is like the data.
pub(super) fn scatter(cx: &InferCx, nd: bool) -> R<Vec<TensorType>> {
    let data = input(cx, 0, "data")?;
    let idx = input(cx, 1, "indices")?;
    let updates = input(cx, 2, "updates")?;
    index_dtype(idx, "input 1 (indices)")?;
    same_dtype(data, "input 0 (data)", updates, "input 2 (updates)")?;
    let red = attrs(cx).str("reduction").unwrap_or("none");
    if !matches!(red, "none" | "add" | "mul" | "max" | "min") {
        return Err(format!(
            "attribute `reduction` = `{red}` is not one of none, add, mul, max, min"
        ));
    }
    if let (Some(r), Some(q), Some(u)) = (data.rank(), idx.rank(), updates.rank()) {
        if nd {
            if let Some(Dim::Known(k)) = idx.dims().and_then(|d| d.last()) {
                let k = *k as usize;
                if q == 0 || k > r || u + 1 + k != q + r {
                    return Err(format!(
                        "input 2 (updates) {updates} does not fit data {data} and indices {idx}"
                    ));
                }
            }
        } else {
            if r == 0 || q != r || u != r {
                return Err(format!(
                    "data {data}, indices {idx} and updates {updates} must have one rank >= 1"
                ));
            }
            norm_axis(attrs(cx).int_or("axis", 0), r, "attribute `axis`")?;
        }
    }
    one(data.clone())
}

/// `GatherND`: `indices.shape[:-1] + data.shape[batch_dims + k:]`.
pub(super) fn gather_nd(cx: &InferCx) -> R<Vec<TensorType>> {
    let data = input(cx, 0, "data")?;
    let idx = input(cx, 1, "indices")?;
    if idx.dtype != DType::I64 {
        return Err(format!("input 1 (indices) must be i64, got {idx}"));
    }
    let b = attrs(cx).int_or("batch_dims", 0);
    let b = usize::try_from(b).map_err(|_| format!("attribute `batch_dims` = {b} is negative"))?;
    let (Some(d), Some(i)) = (data.dims(), idx.dims()) else {
        return one(TensorType::unranked(data.dtype));
    };
    let Some(last) = i.last() else {
        return Err(format!("input 1 (indices) must have rank >= 1, got {idx}"));
    };
    if b >= i.len() {
        return Err(format!(
            "attribute `batch_dims` = {b} must be less than the rank of indices {idx}"
        ));
    }
    let Dim::Known(k) = last else {
        return one(TensorType::unranked(data.dtype));
    };
    let k = *k as usize;
    if b + k > d.len() {
        return Err(format!(
            "indices {idx} index {k} dims past batch_dims {b}, but data {data} has rank {}",
            d.len()
        ));
    }
    let mut out = i[..i.len() - 1].to_vec();
    out.extend_from_slice(&d[b + k..]);
    one(TensorType::new(data.dtype, out))
}

/// `Trilu`: rank >= 2, optional scalar `k`.
pub(super) fn trilu(cx: &InferCx) -> R<Vec<TensorType>> {
    let x = input(cx, 0, "input")?;
    if x.rank().is_some_and(|r| r < 2) {
        return Err(format!("input 0 (input) must have rank >= 2, got {x}"));
    }
    if let Some(k) = opt_input(cx, 1) {
        if k.dtype != DType::I64 || k.rank().is_some_and(|r| r > 1) {
            return Err(format!("input 1 (k) must be an i64 scalar, got {k}"));
        }
    }
    one(x.clone())
}

/// `TopK`: values and i64 indices, `axis` shortened to `K`.
pub(super) fn top_k(cx: &InferCx) -> R<Vec<TensorType>> {
    let x = input(cx, 0, "X")?;
    let k = input(cx, 1, "K")?;
    if k.dtype != DType::I64 {
        return Err(format!("input 1 (K) must be i64, got {k}"));
    }
    let shape = match x.dims() {
        None => Shape::unranked(),
        Some(d) => {
            if d.is_empty() {
                return Err(format!("input 0 (X) must have rank >= 1, got {x}"));
            }
            let a = norm_axis(attrs(cx).int_or("axis", -1), d.len(), "attribute `axis`")?;
            let kd = match input_ints(cx, 1).as_deref() {
                Some([k]) => {
                    let kn = u64::try_from(*k)
                        .map_err(|_| format!("input 1 (K) = {k} must not be negative"))?;
                    if let Dim::Known(n) = d[a] {
                        if kn > n {
                            return Err(format!("input 1 (K) = {k} exceeds axis {a} of {x}"));
                        }
                    }
                    Dim::Known(kn)
                }
                _ => Dim::Unknown,
            };
            let mut out = d.to_vec();
            out[a] = kd;
            Shape::new(out)
        }
    };
    Ok(vec![
        TensorType {
            dtype: x.dtype,
            shape: shape.clone(),
        },
        TensorType {
            dtype: DType::I64,
            shape,
        },
    ])
}

/// `CumSum`, `CumProd`: output like the input; `axis` is an integer scalar.
pub(super) fn cumulative(cx: &InferCx) -> R<Vec<TensorType>> {
    let x = input(cx, 0, "x")?;
    let axis = input(cx, 1, "axis")?;
    index_dtype(axis, "input 1 (axis)")?;
    if axis.rank().is_some_and(|r| r > 1) {
        return Err(format!("input 1 (axis) must be a scalar, got {axis}"));
    }
    if let (Some(r), Some([a])) = (x.rank(), input_ints(cx, 1).as_deref()) {
        norm_axis(*a, r, "input 1 (axis)")?;
    }
    one(x.clone())
}

/// `OneHot`: the values' dtype; the indices' shape with `depth` inserted at `axis`.
pub(super) fn one_hot(cx: &InferCx) -> R<Vec<TensorType>> {
    let idx = input(cx, 0, "indices")?;
    let depth = input(cx, 1, "depth")?;
    let values = input(cx, 2, "values")?;
    for (t, what) in [(idx, "input 0 (indices)"), (depth, "input 1 (depth)")] {
        if !(t.dtype.is_int() || t.dtype.is_float()) {
            return Err(format!("{what} must be numeric, got {t}"));
        }
    }
    if let Some(d) = values.dims() {
        if d.len() != 1 || matches!(d[0], Dim::Known(n) if n != 2) {
            return Err(format!(
                "input 2 (values) must hold two elements, got {values}"
            ));
        }
    }
    let Some(dims) = idx.dims() else {
        return one(TensorType::unranked(values.dtype));
    };
    let r = dims.len() as i64;
    let axis = attrs(cx).int_or("axis", -1);
    if axis < -r - 1 || axis > r {
        return Err(format!(
            "attribute `axis` = {axis} is out of range for output rank {}",
            r + 1
        ));
    }
    let axis = if axis < 0 { axis + r + 1 } else { axis } as usize;
    let depth_dim = match cx.consts.get(1).copied().flatten() {
        Some(t) => match t.to_f64_vec().ok().as_deref() {
            Some([d]) if *d >= 1.0 => Dim::Known(*d as u64),
            Some([d]) => return Err(format!("input 1 (depth) = {d} must be positive")),
            _ => {
                return Err(format!(
                    "input 1 (depth) must hold one element, got {depth}"
                ))
            }
        },
        None => Dim::Unknown,
    };
    let mut out = dims[..axis].to_vec();
    out.push(depth_dim);
    out.extend_from_slice(&dims[axis..]);
    one(TensorType::new(values.dtype, out))
}

/// `NonZero`: i64 `[rank, number of nonzeros]`.
pub(super) fn non_zero(cx: &InferCx) -> R<Vec<TensorType>> {
    let x = input(cx, 0, "X")?;
    let rank = match x.rank() {
        Some(r) => Dim::Known(r as u64),
        None => Dim::Unknown,
    };
    one(TensorType::new(DType::I64, vec![rank, Dim::Unknown]))
}

/// `Unique`: data-dependent sizes.
pub(super) fn unique(cx: &InferCx) -> R<Vec<TensorType>> {
    let x = input(cx, 0, "X")?;
    let (y, inverse) = match (attrs(cx).int("axis"), x.dims()) {
        (Some(a), Some(d)) => {
            let a = norm_axis(a, d.len(), "attribute `axis`")?;
            let mut y = d.to_vec();
            y[a] = Dim::Unknown;
            (Shape::new(y), d[a].clone())
        }
        (Some(_), None) => (Shape::unranked(), Dim::Unknown),
        (None, d) => (
            Shape::new(vec![Dim::Unknown]),
            d.map(product_dim).unwrap_or(Dim::Unknown),
        ),
    };
    let n = num_outputs(cx).max(1);
    let mut out = vec![
        TensorType {
            dtype: x.dtype,
            shape: y,
        },
        TensorType::new(DType::I64, vec![Dim::Unknown]),
        TensorType::new(DType::I64, vec![inverse]),
        TensorType::new(DType::I64, vec![Dim::Unknown]),
    ];
    out.truncate(n);
    Ok(out)
}

/// `Compress`: the selected axis (or the flattened input) gets a data-dependent size.
pub(super) fn compress(cx: &InferCx) -> R<Vec<TensorType>> {
    let x = input(cx, 0, "input")?;
    let c = input(cx, 1, "condition")?;
    if c.dtype != DType::Bool || c.rank().is_some_and(|r| r != 1) {
        return Err(format!(
            "input 1 (condition) must be a 1-D bool tensor, got {c}"
        ));
    }
    let shape = match (attrs(cx).int("axis"), x.dims()) {
        (Some(a), Some(d)) => {
            let a = norm_axis(a, d.len(), "attribute `axis`")?;
            let mut s = d.to_vec();
            s[a] = Dim::Unknown;
            Shape::new(s)
        }
        (Some(_), None) => Shape::unranked(),
        (None, _) => Shape::new(vec![Dim::Unknown]),
    };
    one(TensorType {
        dtype: x.dtype,
        shape,
    })
}

/// `ReverseSequence`: output like the input.
pub(super) fn reverse_sequence(cx: &InferCx) -> R<Vec<TensorType>> {
    let x = input(cx, 0, "input")?;
    let lens = input(cx, 1, "sequence_lens")?;
    if lens.dtype != DType::I64 || lens.rank().is_some_and(|r| r != 1) {
        return Err(format!(
            "input 1 (sequence_lens) must be a 1-D i64 tensor, got {lens}"
        ));
    }
    if let Some(r) = x.rank() {
        if r < 2 {
            return Err(format!("input 0 (input) must have rank >= 2, got {x}"));
        }
        let at = attrs(cx);
        let b = norm_axis(at.int_or("batch_axis", 1), r, "attribute `batch_axis`")?;
        let t = norm_axis(at.int_or("time_axis", 0), r, "attribute `time_axis`")?;
        if b > 1 || t > 1 || b == t {
            return Err(format!(
                "attributes `batch_axis` ({b}) and `time_axis` ({t}) must be 0 and 1 in some order"
            ));
        }
    }
    one(x.clone())
}

/// `DepthToSpace` (`to_space`) and `SpaceToDepth` on 4-D inputs.
pub(super) fn depth_space(cx: &InferCx, to_space: bool) -> R<Vec<TensorType>> {
    let x = input(cx, 0, "input")?;
    let at = attrs(cx);
    let b = at
        .int("blocksize")
        .ok_or("attribute `blocksize` is missing")?;
    let b = match u64::try_from(b) {
        Ok(b) if b > 0 => b,
        _ => return Err(format!("attribute `blocksize` = {b} must be positive")),
    };
    let mode = at.str("mode").unwrap_or("DCR");
    if !matches!(mode, "DCR" | "CRD") {
        return Err(format!("attribute `mode` = `{mode}` is not DCR or CRD"));
    }
    let Some(d) = x.dims() else {
        return one(TensorType::new(x.dtype, vec![Dim::Unknown; 4]));
    };
    if d.len() != 4 {
        return Err(format!("input 0 (input) must be 4-D (N, C, H, W), got {x}"));
    }
    let mul = |d: &Dim, by: u64| match d {
        Dim::Known(n) => n
            .checked_mul(by)
            .map(Dim::Known)
            .ok_or_else(|| format!("blocksize {b} makes the output of {x} too large")),
        _ => Ok(Dim::Unknown),
    };
    let div = |d: &Dim, by: u64, what: &str| match d {
        Dim::Known(n) if n % by != 0 => Err(format!(
            "{what} {n} of {x} is not divisible by {by} (blocksize {b})"
        )),
        Dim::Known(n) => Ok(Dim::Known(n / by)),
        _ => Ok(Dim::Unknown),
    };
    let out = if to_space {
        vec![
            d[0].clone(),
            div(&d[1], b.saturating_mul(b), "channel count")?,
            mul(&d[2], b)?,
            mul(&d[3], b)?,
        ]
    } else {
        let c = mul(&d[1], b.saturating_mul(b))?;
        vec![
            d[0].clone(),
            c,
            div(&d[2], b, "height")?,
            div(&d[3], b, "width")?,
        ]
    };
    one(TensorType::new(x.dtype, out))
}

/// `EyeLike`: 2-D, dtype from the `dtype` attribute or the input.
pub(super) fn eye_like(cx: &InferCx) -> R<Vec<TensorType>> {
    let x = input(cx, 0, "input")?;
    if x.rank().is_some_and(|r| r != 2) {
        return Err(format!("input 0 (input) must be 2-D, got {x}"));
    }
    let dtype = match attrs(cx).int("dtype") {
        None | Some(0) => x.dtype,
        Some(code) => dtype_from_onnx_code(code)
            .ok_or_else(|| format!("attribute `dtype` = {code} is not a known dtype code"))?,
    };
    one(TensorType {
        dtype,
        shape: x.shape.clone(),
    })
}

/// `Pad`: each padded axis grows by its two pads (which may be negative).
pub(super) fn pad(cx: &InferCx) -> R<Vec<TensorType>> {
    let x = input(cx, 0, "data")?;
    let pads = input(cx, 1, "pads")?;
    if pads.dtype != DType::I64 || pads.rank().is_some_and(|r| r != 1) {
        return Err(format!(
            "input 1 (pads) must be a 1-D i64 tensor, got {pads}"
        ));
    }
    if let Some(v) = opt_input(cx, 2) {
        same_dtype(x, "input 0 (data)", v, "input 2 (constant_value)")?;
    }
    let mode = attrs(cx).str("mode").unwrap_or("constant");
    if !matches!(mode, "constant" | "reflect" | "edge" | "wrap") {
        return Err(format!(
            "attribute `mode` = `{mode}` is not constant, reflect, edge or wrap"
        ));
    }
    let Some(d) = x.dims() else {
        return one(x.clone());
    };
    let axes: Option<Vec<usize>> = match opt_input(cx, 3) {
        None => Some((0..d.len()).collect()),
        Some(_) => match input_ints(cx, 3) {
            Some(a) => Some(norm_axes(&a, d.len(), "input 3 (axes)")?),
            None => None,
        },
    };
    let (Some(axes), Some(p)) = (axes, input_ints(cx, 1)) else {
        return one(TensorType::new(x.dtype, vec![Dim::Unknown; d.len()]));
    };
    if p.len() != 2 * axes.len() {
        return Err(format!(
            "input 1 (pads) has {} entries, expected {} (two per padded axis)",
            p.len(),
            2 * axes.len()
        ));
    }
    let mut out = d.to_vec();
    for (i, &a) in axes.iter().enumerate() {
        let grow = i128::from(p[i]) + i128::from(p[axes.len() + i]);
        out[a] = match &d[a] {
            _ if grow == 0 => d[a].clone(),
            Dim::Known(n) => {
                let size = i128::from(*n) + grow;
                let size = u64::try_from(size)
                    .map_err(|_| format!("pads make axis {a} of {x} negative"))?;
                Dim::Known(size)
            }
            _ => Dim::Unknown,
        };
    }
    one(TensorType::new(x.dtype, out))
}

/// `CenterCropPad`: the given axes take the sizes in `shape`.
pub(super) fn center_crop_pad(cx: &InferCx) -> R<Vec<TensorType>> {
    let x = input(cx, 0, "input_data")?;
    let s = input(cx, 1, "shape")?;
    index_dtype(s, "input 1 (shape)")?;
    let Some(d) = x.dims() else {
        return one(x.clone());
    };
    let axes = match attrs(cx).ints("axes") {
        Some(a) => norm_axes(a, d.len(), "attribute `axes`")?,
        None => (0..d.len()).collect(),
    };
    let mut out = d.to_vec();
    match input_value(cx, 1) {
        Some(v) => {
            if v.elems.len() != axes.len() {
                return Err(format!(
                    "input 1 (shape) has {} entries for {} axes",
                    v.elems.len(),
                    axes.len()
                ));
            }
            for (&a, e) in axes.iter().zip(&v.elems) {
                out[a] = e
                    .to_dim()
                    .map_err(|n| format!("input 1 (shape) has negative entry {n}"))?;
            }
        }
        None => axes.iter().for_each(|&a| out[a] = Dim::Unknown),
    }
    one(TensorType::new(x.dtype, out))
}

/// `Det`: `[..., M, M]` to `[...]`.
pub(super) fn det(cx: &InferCx) -> R<Vec<TensorType>> {
    let x = input(cx, 0, "X")?;
    if !x.dtype.is_float() {
        return Err(format!("input 0 (X) must be a float tensor, got {x}"));
    }
    let Some(d) = x.dims() else {
        return one(TensorType::unranked(x.dtype));
    };
    let r = d.len();
    if r < 2 {
        return Err(format!("input 0 (X) must have rank >= 2, got {x}"));
    }
    if let (Dim::Known(a), Dim::Known(b)) = (&d[r - 2], &d[r - 1]) {
        if a != b {
            return Err(format!(
                "input 0 (X) {x} is not square in its last two dims"
            ));
        }
    }
    one(TensorType::new(x.dtype, d[..r - 2].to_vec()))
}

/// `BitCast`: same shape, `to` dtype of the same bit width.
pub(super) fn bit_cast(cx: &InferCx) -> R<Vec<TensorType>> {
    let x = input(cx, 0, "input")?;
    let code = attrs(cx).int("to").ok_or("attribute `to` is missing")?;
    let to = dtype_from_onnx_code(code)
        .ok_or_else(|| format!("attribute `to` = {code} is not a known dtype code"))?;
    if x.dtype == DType::String || to == DType::String || x.dtype.bits() != to.bits() {
        return Err(format!(
            "cannot bit-cast {x} to {to}: element widths must be equal and fixed"
        ));
    }
    one(TensorType {
        dtype: to,
        shape: x.shape.clone(),
    })
}

/// `Einsum`: labels of the output (explicit after `->`, else the labels used once, in
/// alphabetical order) take the sizes their inputs give them.
pub(super) fn einsum(cx: &InferCx) -> R<Vec<TensorType>> {
    let eq: String = attrs(cx)
        .str("equation")
        .ok_or("attribute `equation` is missing")?
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let ins: Vec<&TensorType> = cx.inputs.iter().flatten().copied().collect();
    let Some(first) = ins.first() else {
        return Err("Einsum needs at least one input".into());
    };
    for (i, t) in ins.iter().enumerate() {
        same_dtype(first, "input 0", t, &format!("input {i}"))?;
    }
    let (lhs, rhs) = match eq.split_once("->") {
        Some((l, r)) => (l, Some(r)),
        None => (eq.as_str(), None),
    };
    let terms: Vec<&str> = lhs.split(',').collect();
    if terms.len() != ins.len() {
        return Err(format!(
            "equation `{eq}` has {} input terms but the node has {} inputs",
            terms.len(),
            ins.len()
        ));
    }
    // Sizes of letters, and the broadcast ellipsis dims (right-aligned).
    let mut letters: std::collections::BTreeMap<char, (Dim, usize)> = Default::default();
    let mut ell: Option<Vec<Dim>> = Some(vec![]);
    for (term, t) in terms.iter().zip(&ins) {
        let (before, after, has_ell) = match term.split_once("...") {
            Some((b, a)) => (b, a, true),
            None => (*term, "", false),
        };
        if let Some(c) = term.chars().find(|c| !c.is_ascii_alphabetic() && *c != '.') {
            return Err(format!("equation `{eq}` has invalid character `{c}`"));
        }
        let nb = before.chars().count();
        let na = after.chars().count();
        let Some(d) = t.dims() else {
            if has_ell {
                ell = None;
            }
            for c in before.chars().chain(after.chars()) {
                letters.entry(c).or_insert((Dim::Unknown, 0)).1 += 1;
            }
            continue;
        };
        if (!has_ell && d.len() != nb) || d.len() < nb + na {
            return Err(format!(
                "equation term `{term}` does not fit input {t} of rank {}",
                d.len()
            ));
        }
        let mid = &d[nb..d.len() - na];
        if let Some(e) = ell.as_mut() {
            if has_ell {
                let shape = broadcast(
                    &[&Shape::new(e.clone()), &Shape::new(mid.to_vec())],
                    "ellipsis dims",
                )?;
                *e = shape.dims().map(<[Dim]>::to_vec).unwrap_or_default();
            }
        }
        let labelled = before
            .chars()
            .zip(&d[..nb])
            .chain(after.chars().zip(&d[d.len() - na..]));
        for (c, dim) in labelled {
            let entry = letters.entry(c).or_insert((dim.clone(), 0));
            entry.1 += 1;
            if let (Dim::Known(p), Dim::Known(q)) = (&entry.0, dim) {
                if p != q {
                    return Err(format!(
                        "equation `{eq}`: label `{c}` has sizes {p} and {q}"
                    ));
                }
            }
            if !matches!(entry.0, Dim::Known(_)) {
                entry.0 = dim.clone();
            }
        }
    }
    let uses_ell = terms.iter().any(|t| t.contains("..."));
    let out_labels: String = match rhs {
        Some(r) => r.to_string(),
        None => {
            let once: String = letters
                .iter()
                .filter(|(_, (_, n))| *n == 1)
                .map(|(c, _)| *c)
                .collect();
            if uses_ell {
                format!("...{once}")
            } else {
                once
            }
        }
    };
    let mut out = vec![];
    let (before, after, has_ell) = match out_labels.split_once("...") {
        Some((b, a)) => (b, a, true),
        None => (out_labels.as_str(), "", false),
    };
    let dim_of = |c: char| -> R<Dim> {
        letters
            .get(&c)
            .map(|(d, _)| d.clone())
            .ok_or_else(|| format!("equation `{eq}`: output label `{c}` appears in no input"))
    };
    for c in before.chars() {
        out.push(dim_of(c)?);
    }
    if has_ell {
        match &ell {
            Some(e) => out.extend(e.iter().cloned()),
            None => return one(TensorType::unranked(first.dtype)),
        }
    }
    for c in after.chars() {
        out.push(dim_of(c)?);
    }
    one(TensorType::new(first.dtype, out))
}

/// The `output_datatype` attribute of the signal generators (default f32).
fn output_datatype(cx: &InferCx) -> R<DType> {
    match attrs(cx).int("output_datatype") {
        None => Ok(DType::F32),
        Some(code) => dtype_from_onnx_code(code).ok_or_else(|| {
            format!("attribute `output_datatype` = {code} is not a known dtype code")
        }),
    }
}

/// A scalar integer input, and its value when known.
fn int_scalar(cx: &InferCx, slot: usize, what: &str) -> R<Option<i64>> {
    let t = input(cx, slot, what)?;
    index_dtype(t, &format!("input {slot} ({what})"))?;
    if t.rank().is_some_and(|r| r > 1) {
        return Err(format!("input {slot} ({what}) must be a scalar, got {t}"));
    }
    Ok(match input_ints(cx, slot).as_deref() {
        Some([v]) => Some(*v),
        _ => None,
    })
}

/// `HannWindow`, `HammingWindow`, `BlackmanWindow`: `[size]`.
pub(super) fn window(cx: &InferCx) -> R<Vec<TensorType>> {
    let dtype = output_datatype(cx)?;
    let size = match int_scalar(cx, 0, "size")? {
        Some(n) => Dim::Known(u64::try_from(n).map_err(|_| format!("size {n} is negative"))?),
        None => Dim::Unknown,
    };
    one(TensorType::new(dtype, vec![size]))
}

/// `MelWeightMatrix`: `[dft_length / 2 + 1, num_mel_bins]`.
pub(super) fn mel_weight_matrix(cx: &InferCx) -> R<Vec<TensorType>> {
    let dtype = output_datatype(cx)?;
    let bins = int_scalar(cx, 0, "num_mel_bins")?;
    let len = int_scalar(cx, 1, "dft_length")?;
    int_scalar(cx, 2, "sample_rate")?;
    for (slot, what) in [(3, "lower_edge_hertz"), (4, "upper_edge_hertz")] {
        let t = input(cx, slot, what)?;
        if !t.dtype.is_float() {
            return Err(format!(
                "input {slot} ({what}) must be a float scalar, got {t}"
            ));
        }
    }
    let known = |v: Option<i64>| match v.map(u64::try_from) {
        Some(Ok(n)) => Ok(Dim::Known(n)),
        Some(Err(_)) => Err("num_mel_bins and dft_length must not be negative".to_string()),
        None => Ok(Dim::Unknown),
    };
    let rows = match known(len)? {
        Dim::Known(n) => Dim::Known(n / 2 + 1),
        d => d,
    };
    one(TensorType::new(dtype, vec![rows, known(bins)?]))
}

/// `DFT`: the transformed axis becomes the transform length (half plus one when
/// one-sided), the last dim 2 (1 for the one-sided inverse).
pub(super) fn dft(cx: &InferCx) -> R<Vec<TensorType>> {
    let x = input(cx, 0, "input")?;
    if !x.dtype.is_float() {
        return Err(format!("input 0 (input) must be a float tensor, got {x}"));
    }
    let len = match opt_input(cx, 1) {
        Some(_) => int_scalar(cx, 1, "dft_length")?,
        None => None,
    };
    let axis = match opt_input(cx, 2) {
        Some(_) => int_scalar(cx, 2, "axis")?,
        None => Some(attrs(cx).int_or("axis", -2)),
    };
    let Some(d) = x.dims() else {
        return one(x.clone());
    };
    let r = d.len();
    if r < 2 || matches!(d[r - 1], Dim::Known(n) if n != 1 && n != 2) {
        return Err(format!(
            "input 0 (input) must end in a dim of 1 (real) or 2 (complex), got {x}"
        ));
    }
    let at = attrs(cx);
    let (inverse, onesided) = (at.int_or("inverse", 0) != 0, at.int_or("onesided", 0) != 0);
    let mut out = d.to_vec();
    out[r - 1] = Dim::Known(if inverse && onesided { 1 } else { 2 });
    let Some(axis) = axis else {
        return one(TensorType::new(x.dtype, {
            let mut u = vec![Dim::Unknown; r];
            u[r - 1] = out[r - 1].clone();
            u
        }));
    };
    let a = norm_axis(axis, r, "axis")?;
    if a == r - 1 {
        return Err(format!("axis {axis} is the real/imaginary dim of {x}"));
    }
    let n = match (len, &d[a]) {
        (Some(l), _) => Some(u64::try_from(l).map_err(|_| format!("dft_length {l} is negative"))?),
        (None, Dim::Known(n)) if inverse && onesided => Some(n.saturating_sub(1).saturating_mul(2)),
        (None, Dim::Known(n)) => Some(*n),
        _ => None,
    };
    out[a] = match n {
        Some(n) if onesided && !inverse => Dim::Known(n / 2 + 1),
        Some(n) => Dim::Known(n),
        None => Dim::Unknown,
    };
    one(TensorType::new(x.dtype, out))
}

/// `STFT`: `[batch, frames, bins, 2]`.
pub(super) fn stft(cx: &InferCx) -> R<Vec<TensorType>> {
    let x = input(cx, 0, "signal")?;
    if !x.dtype.is_float() {
        return Err(format!("input 0 (signal) must be a float tensor, got {x}"));
    }
    int_scalar(cx, 1, "frame_step")?;
    let batch = match x.dims() {
        Some(d) if d.len() == 3 => d[0].clone(),
        Some(_) => {
            return Err(format!(
                "input 0 (signal) must be [batch, length, 1 or 2], got {x}"
            ))
        }
        None => Dim::Unknown,
    };
    one(TensorType::new(
        x.dtype,
        vec![batch, Dim::Unknown, Dim::Unknown, Dim::Known(2)],
    ))
}

/// `NonMaxSuppression`: i64 `[selected, 3]`.
pub(super) fn non_max_suppression(cx: &InferCx) -> R<Vec<TensorType>> {
    let boxes = input(cx, 0, "boxes")?;
    let scores = input(cx, 1, "scores")?;
    if boxes.rank().is_some_and(|r| r != 3) || scores.rank().is_some_and(|r| r != 3) {
        return Err(format!(
            "boxes {boxes} and scores {scores} must be [batches, boxes, 4] and [batches, classes, boxes]"
        ));
    }
    one(TensorType::new(
        DType::I64,
        vec![Dim::Unknown, Dim::Known(3)],
    ))
}

/// `StringConcat`: two broadcast string tensors.
pub(super) fn string_concat(cx: &InferCx) -> R<Vec<TensorType>> {
    let a = input(cx, 0, "X")?;
    let b = input(cx, 1, "Y")?;
    for (t, what) in [(a, "input 0 (X)"), (b, "input 1 (Y)")] {
        if t.dtype != DType::String {
            return Err(format!("{what} must be a string tensor, got {t}"));
        }
    }
    let shape = broadcast(&[&a.shape, &b.shape], "inputs X and Y")?;
    one(TensorType {
        dtype: DType::String,
        shape,
    })
}

/// `StringSplit`: the pieces `input shape + [?]` and their counts.
pub(super) fn string_split(cx: &InferCx) -> R<Vec<TensorType>> {
    let x = input(cx, 0, "X")?;
    if x.dtype != DType::String {
        return Err(format!("input 0 (X) must be a string tensor, got {x}"));
    }
    let pieces = match x.dims() {
        Some(d) => {
            let mut p = d.to_vec();
            p.push(Dim::Unknown);
            Shape::new(p)
        }
        None => Shape::unranked(),
    };
    Ok(vec![
        TensorType {
            dtype: DType::String,
            shape: pieces,
        },
        TensorType {
            dtype: DType::I64,
            shape: x.shape.clone(),
        },
    ])
}

/// `StringNormalizer`: `[C]` or `[1, C]` strings, `C` data-dependent.
pub(super) fn string_normalizer(cx: &InferCx) -> R<Vec<TensorType>> {
    let x = input(cx, 0, "X")?;
    if x.dtype != DType::String {
        return Err(format!("input 0 (X) must be a string tensor, got {x}"));
    }
    let shape = match x.dims() {
        Some([_]) => vec![Dim::Unknown],
        Some([Dim::Known(1), _]) => vec![Dim::Known(1), Dim::Unknown],
        Some(_) => return Err(format!("input 0 (X) must be [C] or [1, C], got {x}")),
        None => return one(TensorType::unranked(DType::String)),
    };
    one(TensorType::new(DType::String, shape))
}

/// `TfIdfVectorizer`: f32 `[max(ngram_indexes) + 1]`, per row for 2-D input.
pub(super) fn tfidf_vectorizer(cx: &InferCx) -> R<Vec<TensorType>> {
    let x = input(cx, 0, "X")?;
    if !matches!(x.dtype, DType::I32 | DType::I64 | DType::String) {
        return Err(format!("input 0 (X) must be i32, i64 or string, got {x}"));
    }
    let size = attrs(cx)
        .ints("ngram_indexes")
        .and_then(|i| i.iter().max().copied())
        .map_or(0, |m| m.max(-1).saturating_add(1)) as u64;
    let shape = match x.dims() {
        Some([_]) => vec![Dim::Known(size)],
        Some([n, _]) => vec![n.clone(), Dim::Known(size)],
        Some(_) => return Err(format!("input 0 (X) must be [C] or [N, C], got {x}")),
        None => return one(TensorType::unranked(DType::F32)),
    };
    one(TensorType::new(DType::F32, shape))
}

#[cfg(test)]
mod tests {
    use crate::{Attr, Attrs, Constant, DType, Graph, OpKind, Tensor, TensorType};

    fn node(
        op: OpKind,
        attrs: Attrs,
        ins: &[TensorType],
        consts: &[(usize, Tensor)],
        n_out: usize,
    ) -> Result<Vec<String>, String> {
        let mut g = Graph::new("g");
        let mut ids = vec![];
        for (i, t) in ins.iter().enumerate() {
            let id = match consts.iter().find(|(s, _)| *s == i) {
                Some((_, c)) => g.add_const(&format!("c{i}"), Constant::plain(c.clone())),
                None => g.add_input(&format!("x{i}"), t.clone()),
            };
            ids.push(Some(id));
        }
        let outs = (0..n_out)
            .map(|i| (format!("y{i}"), TensorType::unranked(DType::F32)))
            .collect();
        let id = g
            .add_node("n", op, attrs, ids, outs)
            .map_err(|e| e.to_string())?;
        super::super::infer_node(&g, id)
            .map(|ts| ts.iter().map(|t| t.to_string()).collect())
            .map_err(|e| e.to_string())
    }

    fn t(dtype: DType, dims: &[u64]) -> TensorType {
        TensorType::known(dtype, dims)
    }

    fn ints(v: &[i64]) -> Tensor {
        Tensor::from_vec(vec![v.len()], v.to_vec()).unwrap()
    }

    #[test]
    fn gathers_and_scatters() {
        let f = t(DType::F32, &[3, 4]);
        let i = t(DType::I64, &[2, 4]);
        let y = node(
            OpKind::GatherElements,
            Attrs::new(),
            &[f.clone(), i.clone()],
            &[],
            1,
        );
        assert_eq!(y.unwrap(), vec!["f32[2, 4]"]);
        let bad = t(DType::I64, &[2]);
        assert!(node(
            OpKind::GatherElements,
            Attrs::new(),
            &[f.clone(), bad],
            &[],
            1
        )
        .is_err());
        let y = node(
            OpKind::ScatterElements,
            Attrs::new(),
            &[f.clone(), i.clone(), t(DType::F32, &[2, 4])],
            &[],
            1,
        );
        assert_eq!(y.unwrap(), vec!["f32[3, 4]"]);
        let red = Attrs::new().with("reduction", Attr::Str("avg".into()));
        assert!(node(
            OpKind::ScatterElements,
            red,
            &[f.clone(), i, t(DType::F32, &[2, 4])],
            &[],
            1
        )
        .is_err());
        let y = node(
            OpKind::GatherND,
            Attrs::new(),
            &[f.clone(), t(DType::I64, &[5, 1])],
            &[],
            1,
        );
        assert_eq!(y.unwrap(), vec!["f32[5, 4]"]);
        assert!(node(
            OpKind::GatherND,
            Attrs::new(),
            &[f.clone(), t(DType::I64, &[5, 3])],
            &[],
            1
        )
        .is_err());
        let y = node(
            OpKind::ScatterND,
            Attrs::new(),
            &[f.clone(), t(DType::I64, &[5, 1]), t(DType::F32, &[5, 4])],
            &[],
            1,
        );
        assert_eq!(y.unwrap(), vec!["f32[3, 4]"]);
        assert!(node(
            OpKind::ScatterND,
            Attrs::new(),
            &[f, t(DType::I64, &[5, 1]), t(DType::F32, &[5])],
            &[],
            1
        )
        .is_err());
    }

    #[test]
    fn shapes_from_constants() {
        let x = t(DType::F32, &[3, 4]);
        let k = Tensor::from_vec(vec![1], vec![2i64]).unwrap();
        let y = node(
            OpKind::TopK,
            Attrs::new(),
            &[x.clone(), t(DType::I64, &[1])],
            &[(1, k)],
            2,
        );
        assert_eq!(y.unwrap(), vec!["f32[3, 2]", "i64[3, 2]"]);
        let y = node(
            OpKind::Pad,
            Attrs::new(),
            &[x.clone(), t(DType::I64, &[4])],
            &[(1, ints(&[1, 0, 2, -1]))],
            1,
        );
        assert_eq!(y.unwrap(), vec!["f32[6, 3]"]);
        assert!(node(
            OpKind::Pad,
            Attrs::new(),
            &[x.clone(), t(DType::I64, &[2])],
            &[(1, ints(&[1, 0]))],
            1
        )
        .is_err());
        let y = node(
            OpKind::CenterCropPad,
            Attrs::new(),
            &[x.clone(), t(DType::I64, &[2])],
            &[(1, ints(&[2, 7]))],
            1,
        );
        assert_eq!(y.unwrap(), vec!["f32[2, 7]"]);
        let depth = Tensor::scalar(5.0f32);
        let y = node(
            OpKind::OneHot,
            Attrs::new().with("axis", Attr::Int(0)),
            &[t(DType::I64, &[3]), t(DType::F32, &[]), t(DType::I32, &[2])],
            &[(1, depth)],
            1,
        );
        assert_eq!(y.unwrap(), vec!["i32[5, 3]"]);
        let y = node(
            OpKind::NonZero,
            Attrs::new(),
            std::slice::from_ref(&x),
            &[],
            1,
        );
        assert_eq!(y.unwrap(), vec!["i64[2, ?]"]);
        let y = node(
            OpKind::Unique,
            Attrs::new(),
            std::slice::from_ref(&x),
            &[],
            4,
        );
        assert_eq!(y.unwrap(), vec!["f32[?]", "i64[?]", "i64[12]", "i64[?]"]);
        let y = node(
            OpKind::Compress,
            Attrs::new().with("axis", Attr::Int(1)),
            &[x, t(DType::Bool, &[2])],
            &[],
            1,
        );
        assert_eq!(y.unwrap(), vec!["f32[3, ?]"]);
    }

    #[test]
    fn signal_detection_and_strings() {
        let size = Tensor::scalar(10i64);
        let y = node(
            OpKind::HannWindow,
            Attrs::new(),
            &[t(DType::I64, &[])],
            &[(0, size)],
            1,
        );
        assert_eq!(y.unwrap(), vec!["f32[10]"]);
        let x = t(DType::F32, &[1, 10, 10, 1]);
        let half = Attrs::new().with("onesided", Attr::Int(1));
        let y = node(
            OpKind::DFT,
            half.clone().with("axis", Attr::Int(1)),
            std::slice::from_ref(&x),
            &[],
            1,
        );
        assert_eq!(y.unwrap(), vec!["f32[1, 6, 10, 2]"]);
        let inv = half
            .with("inverse", Attr::Int(1))
            .with("axis", Attr::Int(1));
        let y = node(OpKind::DFT, inv, &[t(DType::F32, &[1, 6, 10, 2])], &[], 1);
        assert_eq!(y.unwrap(), vec!["f32[1, 10, 10, 1]"]);
        assert!(node(OpKind::DFT, Attrs::new(), &[t(DType::F32, &[4, 3])], &[], 1).is_err());
        let y = node(
            OpKind::NonMaxSuppression,
            Attrs::new(),
            &[t(DType::F32, &[1, 6, 4]), t(DType::F32, &[1, 1, 6])],
            &[],
            1,
        );
        assert_eq!(y.unwrap(), vec!["i64[?, 3]"]);
        let y = node(
            OpKind::StringConcat,
            Attrs::new(),
            &[t(DType::String, &[3]), t(DType::String, &[1])],
            &[],
            1,
        );
        assert_eq!(y.unwrap(), vec!["string[3]"]);
        assert!(node(
            OpKind::StringConcat,
            Attrs::new(),
            &[t(DType::String, &[3]), t(DType::F32, &[1])],
            &[],
            1
        )
        .is_err());
    }

    #[test]
    fn string_ops() {
        let y = node(
            OpKind::StringSplit,
            Attrs::new(),
            &[t(DType::String, &[2, 2])],
            &[],
            2,
        );
        assert_eq!(y.unwrap(), vec!["string[2, 2, ?]", "i64[2, 2]"]);
        let y = node(
            OpKind::StringNormalizer,
            Attrs::new(),
            &[t(DType::String, &[1, 6])],
            &[],
            1,
        );
        assert_eq!(y.unwrap(), vec!["string[1, ?]"]);
        assert!(node(
            OpKind::StringNormalizer,
            Attrs::new(),
            &[t(DType::String, &[2, 6])],
            &[],
            1
        )
        .is_err());
    }

    #[test]
    fn rearranging_and_elementwise() {
        let b = Attrs::new().with("blocksize", Attr::Int(2));
        let y = node(
            OpKind::DepthToSpace,
            b.clone(),
            &[t(DType::F32, &[1, 8, 2, 3])],
            &[],
            1,
        );
        assert_eq!(y.unwrap(), vec!["f32[1, 2, 4, 6]"]);
        let y = node(
            OpKind::SpaceToDepth,
            b.clone(),
            &[t(DType::F32, &[1, 2, 4, 6])],
            &[],
            1,
        );
        assert_eq!(y.unwrap(), vec!["f32[1, 8, 2, 3]"]);
        assert!(node(
            OpKind::SpaceToDepth,
            b,
            &[t(DType::F32, &[1, 2, 3, 6])],
            &[],
            1
        )
        .is_err());
        let y = node(
            OpKind::EyeLike,
            Attrs::new().with("dtype", Attr::Int(11)),
            &[t(DType::I32, &[3, 4])],
            &[],
            1,
        );
        assert_eq!(y.unwrap(), vec!["f64[3, 4]"]);
        let y = node(
            OpKind::BitCast,
            Attrs::new().with("to", Attr::Int(6)),
            &[t(DType::F32, &[3])],
            &[],
            1,
        );
        assert_eq!(y.unwrap(), vec!["i32[3]"]);
        assert!(node(
            OpKind::BitCast,
            Attrs::new().with("to", Attr::Int(7)),
            &[t(DType::F32, &[3])],
            &[],
            1
        )
        .is_err());
        let y = node(
            OpKind::Det,
            Attrs::new(),
            &[t(DType::F32, &[5, 2, 2])],
            &[],
            1,
        );
        assert_eq!(y.unwrap(), vec!["f32[5]"]);
        let eq = |e: &str| Attrs::new().with("equation", Attr::Str(e.into()));
        let y = node(
            OpKind::Einsum,
            eq("bij, bjk -> bik"),
            &[t(DType::F64, &[5, 2, 3]), t(DType::F64, &[5, 3, 4])],
            &[],
            1,
        );
        assert_eq!(y.unwrap(), vec!["f64[5, 2, 4]"]);
        let y = node(
            OpKind::Einsum,
            eq("...ii->...i"),
            &[t(DType::F64, &[3, 5, 5])],
            &[],
            1,
        );
        assert_eq!(y.unwrap(), vec!["f64[3, 5]"]);
        let y = node(OpKind::Einsum, eq("ji"), &[t(DType::F64, &[3, 4])], &[], 1);
        assert_eq!(y.unwrap(), vec!["f64[4, 3]"]);
        assert!(node(
            OpKind::Einsum,
            eq("i,i"),
            &[t(DType::F64, &[3]), t(DType::F64, &[4])],
            &[],
            1
        )
        .is_err());
        assert!(node(OpKind::Acos, Attrs::new(), &[t(DType::I32, &[3])], &[], 1).is_err());
        let y = node(
            OpKind::BitShift,
            Attrs::new(),
            &[t(DType::U8, &[3, 1]), t(DType::U8, &[4])],
            &[],
            1,
        );
        assert_eq!(y.unwrap(), vec!["u8[3, 4]"]);
        assert!(node(
            OpKind::BitwiseAnd,
            Attrs::new(),
            &[t(DType::F32, &[3]), t(DType::F32, &[3])],
            &[],
            1
        )
        .is_err());
    }
}
