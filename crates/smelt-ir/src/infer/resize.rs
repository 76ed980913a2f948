//! Rules for the resampling ops: Resize, GridSample and AffineGrid.

use crate::dtype::DType;
use crate::shape::{Dim, Shape};
use crate::types::TensorType;

use super::util::{attrs, input, norm_axes, opt_input, R};
use super::value::input_ints;
use super::InferCx;

/// An optional input that is given and not an empty constant.
fn given<'a>(cx: &InferCx<'a>, slot: usize) -> Option<&'a TensorType> {
    let t = opt_input(cx, slot)?;
    match cx.consts.get(slot).copied().flatten() {
        Some(c) if c.is_empty() => None,
        _ => match t.dims() {
            Some([Dim::Known(0)]) => None,
            _ => Some(t),
        },
    }
}

/// `Resize`: X's dtype and rank; sizes (or scales times the input dims) where known.
pub(super) fn resize(cx: &InferCx) -> R<Vec<TensorType>> {
    let x = input(cx, 0, "X")?;
    let at = attrs(cx);
    match at.str("mode").unwrap_or("nearest") {
        "nearest" | "linear" | "cubic" => {}
        other => {
            return Err(format!(
                "attribute `mode` = {other:?} is not nearest, linear or cubic"
            ))
        }
    }
    let scales = given(cx, 2);
    let sizes = given(cx, 3);
    if let Some(s) = scales {
        if !s.dtype.is_float() {
            return Err(format!("input 2 (scales) must be a float tensor, got {s}"));
        }
    }
    if let Some(s) = sizes {
        if s.dtype != DType::I64 {
            return Err(format!("input 3 (sizes) must be i64, got {s}"));
        }
    }
    let Some(xd) = x.dims() else {
        return Ok(vec![TensorType::unranked(x.dtype)]);
    };
    let r = xd.len();
    let axes = match at.ints("axes") {
        Some(a) => norm_axes(a, r, "attribute `axes`")?,
        None => (0..r).collect(),
    };
    for (t, name) in [(scales, "input 2 (scales)"), (sizes, "input 3 (sizes)")] {
        if let Some(Some([Dim::Known(n)])) = t.map(TensorType::dims) {
            if *n as usize != axes.len() {
                return Err(format!(
                    "{name} has {n} entries but Resize works on {} axes of X {x}",
                    axes.len()
                ));
            }
        }
    }
    let mut out: Vec<Dim> = xd.to_vec();
    for &a in &axes {
        out[a] = Dim::Unknown;
    }
    let stretch = at.str("keep_aspect_ratio_policy").unwrap_or("stretch") == "stretch";
    if sizes.is_some() && stretch {
        if let Some(v) = input_ints(cx, 3) {
            if v.len() == axes.len() {
                for (&a, &n) in axes.iter().zip(&v) {
                    let n = u64::try_from(n)
                        .map_err(|_| format!("input 3 (sizes) {v:?} has a negative size"))?;
                    out[a] = Dim::Known(n);
                }
            }
        }
    } else if sizes.is_none() {
        if let Some(Some(c)) = cx.consts.get(2) {
            if let Ok(s) = c.to_f64_vec() {
                if s.len() == axes.len() {
                    for (&a, &f) in axes.iter().zip(&s) {
                        if let Dim::Known(d) = xd[a] {
                            out[a] = Dim::Known((f * d as f64).floor().max(0.0) as u64);
                        }
                    }
                }
            }
        }
    }
    Ok(vec![TensorType::new(x.dtype, Shape::new(out))])
}

/// `GridSample`: `[N, C, out spatial...]` from X `[N, C, in spatial...]` and grid
/// `[N, out spatial..., r]`.
pub(super) fn grid_sample(cx: &InferCx) -> R<Vec<TensorType>> {
    let x = input(cx, 0, "X")?;
    let g = input(cx, 1, "grid")?;
    if !g.dtype.is_float() {
        return Err(format!("input 1 (grid) must be a float tensor, got {g}"));
    }
    let (Some(xd), Some(gd)) = (x.dims(), g.dims()) else {
        return Ok(vec![TensorType::unranked(x.dtype)]);
    };
    if xd.len() < 3 || gd.len() != xd.len() {
        return Err(format!(
            "X {x} must be [N, C, spatial...] and grid {g} [N, spatial..., r] of the same rank"
        ));
    }
    let r = xd.len() - 2;
    if let Dim::Known(k) = gd[gd.len() - 1] {
        if k as usize != r {
            return Err(format!(
                "input 1 (grid) {g} must end in {r}, the spatial rank of X {x}"
            ));
        }
    }
    let n = super::util::unify_dim(&xd[0], &gd[0])
        .ok_or_else(|| format!("X {x} and grid {g} disagree on the batch size"))?;
    let mut out = vec![n, xd[1].clone()];
    out.extend(gd[1..gd.len() - 1].iter().cloned());
    Ok(vec![TensorType::new(x.dtype, Shape::new(out))])
}

/// `AffineGrid`: theta `[N, 2, 3]` or `[N, 3, 4]`, size `[N, C, spatial...]` (4 or 5
/// entries); the grid is `[N, spatial..., r]` in theta's dtype.
pub(super) fn affine_grid(cx: &InferCx) -> R<Vec<TensorType>> {
    let theta = input(cx, 0, "theta")?;
    let size = input(cx, 1, "size")?;
    if !theta.dtype.is_float() {
        return Err(format!(
            "input 0 (theta) must be a float tensor, got {theta}"
        ));
    }
    if size.dtype != DType::I64 {
        return Err(format!("input 1 (size) must be i64, got {size}"));
    }
    let r = match (theta.dims(), size.dims()) {
        (Some([_, Dim::Known(a), Dim::Known(b)]), _) if (*a == 2 || *a == 3) && *b == a + 1 => {
            Some(*a as usize)
        }
        (Some([_, _, _]) | None, Some([Dim::Known(k)])) if *k == 4 || *k == 5 => {
            Some(*k as usize - 2)
        }
        (Some([_, _, _]) | None, _) => None,
        _ => {
            return Err(format!(
                "input 0 (theta) must be [N, 2, 3] or [N, 3, 4], got {theta}"
            ))
        }
    };
    let Some(r) = r else {
        return Ok(vec![TensorType::unranked(theta.dtype)]);
    };
    let n = theta.dims().map(|d| d[0].clone()).unwrap_or(Dim::Unknown);
    let mut out = vec![n];
    match input_ints(cx, 1) {
        Some(v) if v.len() == r + 2 => {
            for &d in &v[2..] {
                out.push(Dim::Known(u64::try_from(d).map_err(|_| {
                    format!("input 1 (size) {v:?} has a negative entry")
                })?));
            }
        }
        _ => out.extend(std::iter::repeat_n(Dim::Unknown, r)),
    }
    out.push(Dim::Known(r as u64));
    Ok(vec![TensorType::new(theta.dtype, Shape::new(out))])
}

#[cfg(test)]
mod tests {
    use crate::attr::{Attr, Attrs};
    use crate::dtype::DType;
    use crate::graph::Graph;
    use crate::infer::infer_node;
    use crate::op::OpKind;
    use crate::shape::{Dim, Shape};
    use crate::tensor::Tensor;
    use crate::types::TensorType;
    use crate::Constant;

    fn tt(dtype: DType, dims: &[u64]) -> TensorType {
        TensorType::new(
            dtype,
            Shape::new(dims.iter().map(|&d| Dim::Known(d)).collect()),
        )
    }

    #[test]
    fn resize_shapes() {
        let mut g = Graph::new("t");
        let x = g.add_input("x", tt(DType::F32, &[1, 3, 4, 4]));
        let s = g.add_const(
            "s",
            Constant::plain(Tensor::from_vec(vec![2], vec![2.0f32, 0.5]).unwrap()),
        );
        let a = Attrs::new().with("axes", Attr::Ints(vec![2, 3]));
        let n = g
            .add_node(
                "n",
                OpKind::Resize,
                a.clone(),
                vec![Some(x), None, Some(s)],
                vec![("y".into(), TensorType::unranked(DType::F32))],
            )
            .unwrap();
        assert_eq!(infer_node(&g, n).unwrap()[0].to_string(), "f32[1, 3, 8, 2]");
        let z = g.add_const(
            "z",
            Constant::plain(Tensor::from_vec(vec![3], vec![1i64, 2, 3]).unwrap()),
        );
        let n = g
            .add_node(
                "m",
                OpKind::Resize,
                a,
                vec![Some(x), None, None, Some(z)],
                vec![("y2".into(), TensorType::unranked(DType::F32))],
            )
            .unwrap();
        let e = infer_node(&g, n).unwrap_err().to_string();
        assert!(e.contains("3 entries"), "{e}");
    }
}
