//! Rules for more windowed ops: ConvTranspose, Col2Im, MaxUnpool, DeformConv and
//! RoiAlign, MaxRoiPool (LpPool shares the pooling rule).

use crate::shape::{Dim, Shape};
use crate::types::TensorType;

use super::util::{attrs, input, opt_input, same_dtype, R};
use super::value::input_ints;
use super::InferCx;

/// An ints attribute of `n` values or `default` repeated.
fn ints(cx: &InferCx, name: &str, n: usize, default: i64) -> R<Vec<i64>> {
    match attrs(cx).ints(name) {
        None => Ok(vec![default; n]),
        Some(v) if v.len() == n => Ok(v.to_vec()),
        Some(v) => Err(format!("attribute `{name}` {v:?} must have {n} entries")),
    }
}

/// `ConvTranspose`: X `[N, C, in...]`, W `[C, M/group, k...]`; output `[N, M, out...]`
/// with `out = stride·(in−1) + output_padding + (k−1)·dilation + 1 − pads`, or
/// `output_shape` when given.
pub(super) fn conv_transpose(cx: &InferCx) -> R<Vec<TensorType>> {
    let x = input(cx, 0, "X")?;
    let w = input(cx, 1, "W")?;
    same_dtype(x, "input 0 (X)", w, "input 1 (W)")?;
    if let Some(b) = opt_input(cx, 2) {
        same_dtype(x, "input 0 (X)", b, "input 2 (B)")?;
    }
    let at = attrs(cx);
    let group = at.int_or("group", 1);
    if group <= 0 {
        return Err(format!("attribute `group` must be positive, got {group}"));
    }
    let (Some(xd), Some(wd)) = (x.dims(), w.dims()) else {
        return Ok(vec![TensorType::unranked(x.dtype)]);
    };
    if xd.len() < 3 || wd.len() != xd.len() {
        return Err(format!(
            "X {x} and W {w} must both be [N, C, spatial...] of the same rank"
        ));
    }
    if let (Dim::Known(c), Dim::Known(wc)) = (&xd[1], &wd[0]) {
        if c != wc {
            return Err(format!("X {x} has {c} channels but W {w} expects {wc}"));
        }
    }
    let nsp = xd.len() - 2;
    let m = match &wd[1] {
        Dim::Known(v) => Dim::Known(v * group as u64),
        d if group == 1 => d.clone(),
        _ => Dim::Unknown,
    };
    let strides = ints(cx, "strides", nsp, 1)?;
    let dil = ints(cx, "dilations", nsp, 1)?;
    let out_pad = ints(cx, "output_padding", nsp, 0)?;
    let pads = ints(cx, "pads", 2 * nsp, 0)?;
    let auto_pad = at.str("auto_pad").unwrap_or("NOTSET");
    let mut out = vec![xd[0].clone(), m];
    if let Some(o) = at.ints("output_shape") {
        if o.len() != nsp {
            return Err(format!(
                "attribute `output_shape` {o:?} must have {nsp} entries"
            ));
        }
        for &v in o {
            out.push(Dim::Known(u64::try_from(v).map_err(|_| {
                format!("attribute `output_shape` {o:?} has a negative entry")
            })?));
        }
        return Ok(vec![TensorType::new(x.dtype, Shape::new(out))]);
    }
    for i in 0..nsp {
        let (Dim::Known(n), Dim::Known(k)) = (&xd[i + 2], &wd[i + 2]) else {
            out.push(Dim::Unknown);
            continue;
        };
        // i128 keeps any i64 attribute and u64 dim from overflowing.
        let (n, k) = (i128::from(*n), i128::from(*k));
        let w = |v: &[i64], j: usize| i128::from(v[j]);
        let v = if auto_pad.starts_with("SAME") {
            n * w(&strides, i)
        } else {
            let p = if auto_pad == "VALID" {
                0
            } else {
                w(&pads, i) + w(&pads, nsp + i)
            };
            w(&strides, i) * (n - 1) + w(&out_pad, i) + (k - 1) * w(&dil, i) + 1 - p
        };
        out.push(Dim::Known(u64::try_from(v).map_err(|_| {
            format!("spatial axis {i}: the output size {v} is negative")
        })?));
    }
    Ok(vec![TensorType::new(x.dtype, Shape::new(out))])
}

/// `Col2Im`: `[N, C·∏block, L]` to `[N, C, image_shape...]`.
pub(super) fn col2im(cx: &InferCx) -> R<Vec<TensorType>> {
    let x = input(cx, 0, "input")?;
    let img = input(cx, 1, "image_shape")?;
    let blk = input(cx, 2, "block_shape")?;
    for (t, name) in [
        (img, "input 1 (image_shape)"),
        (blk, "input 2 (block_shape)"),
    ] {
        if t.dtype != crate::dtype::DType::I64 || t.rank().is_some_and(|r| r != 1) {
            return Err(format!("{name} must be a 1-D i64 tensor, got {t}"));
        }
    }
    if x.rank().is_some_and(|r| r != 3) {
        return Err(format!(
            "input 0 (input) must be [N, C·∏block_shape, L], got {x}"
        ));
    }
    let xd = x.dims();
    let n = xd.map_or(Dim::Unknown, |d| d[0].clone());
    let c = match (xd.map(|d| &d[1]), input_ints(cx, 2)) {
        (Some(Dim::Known(rows)), Some(b)) => {
            let k = b
                .iter()
                .try_fold(1i128, |acc, &v| acc.checked_mul(i128::from(v)))
                .unwrap_or(0);
            if k <= 0 || i128::from(*rows) % k != 0 {
                return Err(format!(
                    "input 0 (input) {x} has {rows} rows, not a multiple of the block size {k}"
                ));
            }
            Dim::Known((i128::from(*rows) / k) as u64)
        }
        _ => Dim::Unknown,
    };
    let mut out = vec![n, c];
    match input_ints(cx, 1) {
        Some(v) => {
            for d in v {
                out.push(Dim::Known(u64::try_from(d).map_err(|_| {
                    format!("input 1 (image_shape) has a negative entry {d}")
                })?));
            }
        }
        None => match img.dims() {
            Some([Dim::Known(k)]) => out.extend(std::iter::repeat_n(Dim::Unknown, *k as usize)),
            _ => return Ok(vec![TensorType::unranked(x.dtype)]),
        },
    }
    Ok(vec![TensorType::new(x.dtype, Shape::new(out))])
}

/// `MaxUnpool`: X's rank; `(in − 1)·stride − pads + kernel` per spatial dim, or the
/// `output_shape` input.
pub(super) fn max_unpool(cx: &InferCx) -> R<Vec<TensorType>> {
    let x = input(cx, 0, "X")?;
    let i = input(cx, 1, "I")?;
    if i.dtype != crate::dtype::DType::I64 {
        return Err(format!("input 1 (I) must be i64, got {i}"));
    }
    let k = attrs(cx)
        .ints("kernel_shape")
        .ok_or("attribute `kernel_shape` is missing")?
        .to_vec();
    let Some(xd) = x.dims() else {
        return Ok(vec![TensorType::unranked(x.dtype)]);
    };
    let nsp = k.len();
    if xd.len() != nsp + 2 {
        return Err(format!(
            "input 0 (X) {x} does not have 2 + {nsp} dims for kernel_shape {k:?}"
        ));
    }
    if opt_input(cx, 2).is_some() {
        let out = match input_ints(cx, 2) {
            Some(v) if v.len() == xd.len() => v
                .iter()
                .map(|&d| u64::try_from(d).map(Dim::Known))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| format!("input 2 (output_shape) {v:?} has a negative entry"))?,
            Some(v) => {
                return Err(format!(
                    "input 2 (output_shape) {v:?} must have {} entries",
                    xd.len()
                ))
            }
            None => vec![Dim::Unknown; xd.len()],
        };
        return Ok(vec![TensorType::new(x.dtype, Shape::new(out))]);
    }
    let strides = ints(cx, "strides", nsp, 1)?;
    let pads = ints(cx, "pads", 2 * nsp, 0)?;
    let mut out = xd[..2].to_vec();
    for d in 0..nsp {
        out.push(match &xd[d + 2] {
            Dim::Known(v) => {
                let w = |v: &[i64], j: usize| i128::from(v[j]);
                let s = (i128::from(*v) - 1) * w(&strides, d) - w(&pads, d) - w(&pads, nsp + d)
                    + w(&k, d);
                Dim::Known(
                    u64::try_from(s).map_err(|_| {
                        format!("spatial axis {d}: the unpooled size {s} is negative")
                    })?,
                )
            }
            _ => Dim::Unknown,
        });
    }
    Ok(vec![TensorType::new(x.dtype, Shape::new(out))])
}

/// `DeformConv`: `[N, M, out spatial...]`, the output size read from the offset input.
pub(super) fn deform_conv(cx: &InferCx) -> R<Vec<TensorType>> {
    let x = input(cx, 0, "X")?;
    let w = input(cx, 1, "W")?;
    let off = input(cx, 2, "offset")?;
    same_dtype(x, "input 0 (X)", w, "input 1 (W)")?;
    same_dtype(x, "input 0 (X)", off, "input 2 (offset)")?;
    let (Some(xd), Some(wd), Some(od)) = (x.dims(), w.dims(), off.dims()) else {
        return Ok(vec![TensorType::unranked(x.dtype)]);
    };
    if xd.len() < 3 || wd.len() != xd.len() || od.len() != xd.len() {
        return Err(format!(
            "X {x}, W {w} and offset {off} must all be [N, C, spatial...]"
        ));
    }
    let mut out = vec![xd[0].clone(), wd[0].clone()];
    out.extend(od[2..].iter().cloned());
    Ok(vec![TensorType::new(x.dtype, Shape::new(out))])
}

/// `RoiAlign`: `[num_rois, C, output_height, output_width]`.
pub(super) fn roi_align(cx: &InferCx) -> R<Vec<TensorType>> {
    let x = input(cx, 0, "X")?;
    let rois = input(cx, 1, "rois")?;
    let bi = input(cx, 2, "batch_indices")?;
    same_dtype(x, "input 0 (X)", rois, "input 1 (rois)")?;
    if !matches!(bi.dtype, crate::dtype::DType::I64) {
        return Err(format!("input 2 (batch_indices) must be i64, got {bi}"));
    }
    if x.rank().is_some_and(|r| r != 4) {
        return Err(format!("input 0 (X) must be [N, C, H, W], got {x}"));
    }
    let at = attrs(cx);
    let (h, w) = (at.int_or("output_height", 1), at.int_or("output_width", 1));
    if h <= 0 || w <= 0 {
        return Err(format!(
            "attributes `output_height` {h} and `output_width` {w} must be positive"
        ));
    }
    let nr = match rois.dims() {
        Some([n, Dim::Known(4)]) => n.clone(),
        None => Dim::Unknown,
        _ => return Err(format!("input 1 (rois) must be [num_rois, 4], got {rois}")),
    };
    let c = x.dims().map_or(Dim::Unknown, |d| d[1].clone());
    Ok(vec![TensorType::new(
        x.dtype,
        Shape::new(vec![nr, c, Dim::Known(h as u64), Dim::Known(w as u64)]),
    )])
}

/// `MaxRoiPool`: `[num_rois, C, pooled_shape...]`.
pub(super) fn max_roi_pool(cx: &InferCx) -> R<Vec<TensorType>> {
    let x = input(cx, 0, "X")?;
    let rois = input(cx, 1, "rois")?;
    same_dtype(x, "input 0 (X)", rois, "input 1 (rois)")?;
    if x.rank().is_some_and(|r| r != 4) {
        return Err(format!("input 0 (X) must be [N, C, H, W], got {x}"));
    }
    let p = match attrs(cx).ints("pooled_shape") {
        Some(&[h, w]) if h > 0 && w > 0 => [h as u64, w as u64],
        other => {
            return Err(format!(
                "attribute `pooled_shape` must be two positive values, got {other:?}"
            ))
        }
    };
    let nr = match rois.dims() {
        Some([n, Dim::Known(5)]) => n.clone(),
        None => Dim::Unknown,
        _ => return Err(format!("input 1 (rois) must be [num_rois, 5], got {rois}")),
    };
    let c = x.dims().map_or(Dim::Unknown, |d| d[1].clone());
    Ok(vec![TensorType::new(
        x.dtype,
        Shape::new(vec![nr, c, Dim::Known(p[0]), Dim::Known(p[1])]),
    )])
}

#[cfg(test)]
mod tests {
    use crate::attr::{Attr, Attrs};
    use crate::dtype::DType;
    use crate::graph::Graph;
    use crate::infer::infer_node;
    use crate::op::OpKind;
    use crate::shape::{Dim, Shape};
    use crate::types::TensorType;

    fn tt(dims: &[u64]) -> TensorType {
        TensorType::new(
            DType::F32,
            Shape::new(dims.iter().map(|&d| Dim::Known(d)).collect()),
        )
    }

    #[test]
    fn conv_transpose_shapes() {
        let mut g = Graph::new("t");
        let x = g.add_input("x", tt(&[1, 1, 3, 3]));
        let w = g.add_input("w", tt(&[1, 2, 3, 3]));
        let a = Attrs::new()
            .with("strides", Attr::Ints(vec![3, 2]))
            .with("pads", Attr::Ints(vec![1, 2, 1, 2]));
        let n = g
            .add_node(
                "n",
                OpKind::ConvTranspose,
                a,
                vec![Some(x), Some(w)],
                vec![("y".into(), TensorType::unranked(DType::F32))],
            )
            .unwrap();
        assert_eq!(infer_node(&g, n).unwrap()[0].to_string(), "f32[1, 2, 7, 3]");
        let w2 = g.add_input("w2", tt(&[2, 2, 3, 3]));
        let n = g
            .add_node(
                "m",
                OpKind::ConvTranspose,
                Attrs::new(),
                vec![Some(x), Some(w2)],
                vec![("y2".into(), TensorType::unranked(DType::F32))],
            )
            .unwrap();
        assert!(infer_node(&g, n)
            .unwrap_err()
            .to_string()
            .contains("channels"));
    }
}
