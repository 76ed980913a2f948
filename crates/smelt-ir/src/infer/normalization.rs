//! Rules for the normalisations beyond LayerNormalization and the gated activations:
//! RMSNormalization, GroupNormalization, InstanceNormalization,
//! MeanVarianceNormalization, LpNormalization, LRN, Swish and SwiGLU.

use crate::dtype::DType;
use crate::shape::Dim;
use crate::types::TensorType;

use super::util::{attrs, broadcast, input, norm_axes, norm_axis, same_dtype, unify_dim, R};
use super::InferCx;

/// Require a float tensor (f16, bf16, f32, f64).
fn float_input(t: &TensorType, what: &str) -> R<()> {
    if matches!(t.dtype, DType::F32 | DType::F64 | DType::F16 | DType::BF16) {
        Ok(())
    } else {
        Err(format!("{what} must be f16, bf16, f32 or f64, got {t}"))
    }
}

/// `RMSNormalization`: X's shape with scale's dtype; scale broadcasts to X one way.
pub(super) fn rms_norm(cx: &InferCx) -> R<Vec<TensorType>> {
    let x = input(cx, 0, "X")?;
    let scale = input(cx, 1, "scale")?;
    float_input(x, "input 0 (X)")?;
    float_input(scale, "input 1 (scale)")?;
    if let Some(r) = x.rank() {
        if r == 0 {
            return Err(format!("input 0 (X) must have rank >= 1, got {x}"));
        }
        norm_axis(attrs(cx).int_or("axis", -1), r, "attribute `axis`")?;
        one_way(x, scale, "input 1 (scale)")?;
    }
    Ok(vec![TensorType {
        dtype: scale.dtype,
        shape: x.shape.clone(),
    }])
}

/// Require `p` to broadcast onto `x` without growing it.
fn one_way(x: &TensorType, p: &TensorType, what: &str) -> R<()> {
    let b = broadcast(&[&x.shape, &p.shape], &format!("{what} against X"))?;
    if let (Some(xd), Some(bd)) = (x.dims(), b.dims()) {
        let grows = bd.len() != xd.len()
            || xd
                .iter()
                .zip(bd)
                .any(|(o, n)| o.known().is_some() && o != n);
        if grows {
            return Err(format!("{what} {p} does not broadcast to X {x}"));
        }
    }
    Ok(())
}

/// The channel dim of an `[N, C, ...]` input.
fn channels(x: &TensorType, what: &str) -> R<Dim> {
    match x.dims() {
        Some(d) if d.len() >= 2 => Ok(d[1].clone()),
        Some(_) => Err(format!("{what} must be [N, C, ...], got {x}")),
        None => Ok(Dim::Unknown),
    }
}

/// Per-channel parameters of shape `[C]` with X's dtype.
fn channel_params(cx: &InferCx, x: &TensorType, c: &Dim, params: &[(usize, &str)]) -> R<()> {
    for &(slot, name) in params {
        let p = input(cx, slot, name)?;
        let what = format!("input {slot} ({name})");
        same_dtype(x, "input 0", p, &what)?;
        match p.dims() {
            Some([d]) if unify_dim(d, c).is_some() => {}
            Some(_) => {
                return Err(format!(
                    "{what} must have shape [{c}] (one value per channel), got {p}"
                ))
            }
            None => {}
        }
    }
    Ok(())
}

/// `GroupNormalization` (opset 21: per-channel scale and bias).
pub(super) fn group_norm(cx: &InferCx) -> R<Vec<TensorType>> {
    let x = input(cx, 0, "X")?;
    float_input(x, "input 0 (X)")?;
    let groups = attrs(cx)
        .int("num_groups")
        .ok_or("attribute `num_groups` is missing")?;
    let c = channels(x, "input 0 (X)")?;
    match (u64::try_from(groups), c.known()) {
        (Ok(g), Some(n)) if g > 0 && n % g == 0 => {}
        (Ok(g), None) if g > 0 => {}
        _ => {
            return Err(format!(
                "attribute `num_groups` = {groups} must be positive and divide the {c} channels"
            ))
        }
    }
    channel_params(cx, x, &c, &[(1, "scale"), (2, "bias")])?;
    Ok(vec![x.clone()])
}

/// `InstanceNormalization`.
pub(super) fn instance_norm(cx: &InferCx) -> R<Vec<TensorType>> {
    let x = input(cx, 0, "input")?;
    float_input(x, "input 0 (input)")?;
    let c = channels(x, "input 0 (input)")?;
    channel_params(cx, x, &c, &[(1, "scale"), (2, "B")])?;
    Ok(vec![x.clone()])
}

/// `MeanVarianceNormalization`: the axes (default `[0, 2, 3]`) must exist.
pub(super) fn mean_variance_norm(cx: &InferCx) -> R<Vec<TensorType>> {
    let x = input(cx, 0, "X")?;
    float_input(x, "input 0 (X)")?;
    if let Some(r) = x.rank() {
        let axes = attrs(cx)
            .ints("axes")
            .map_or_else(|| vec![0, 2, 3], <[i64]>::to_vec);
        norm_axes(&axes, r, "attribute `axes`")?;
    }
    Ok(vec![x.clone()])
}

/// `LpNormalization`: p is 1 or 2, the axis must exist.
pub(super) fn lp_norm(cx: &InferCx) -> R<Vec<TensorType>> {
    let x = input(cx, 0, "input")?;
    float_input(x, "input 0 (input)")?;
    let at = attrs(cx);
    let p = at.int_or("p", 2);
    if p != 1 && p != 2 {
        return Err(format!("attribute `p` = {p} must be 1 or 2"));
    }
    if let Some(r) = x.rank() {
        if r == 0 {
            return Err(format!("input 0 (input) must have rank >= 1, got {x}"));
        }
        norm_axis(at.int_or("axis", -1), r, "attribute `axis`")?;
    }
    Ok(vec![x.clone()])
}

/// `LRN`: `size` is required and positive.
pub(super) fn lrn(cx: &InferCx) -> R<Vec<TensorType>> {
    let x = input(cx, 0, "X")?;
    float_input(x, "input 0 (X)")?;
    channels(x, "input 0 (X)")?;
    let size = attrs(cx).int("size").ok_or("attribute `size` is missing")?;
    if size <= 0 {
        return Err(format!("attribute `size` = {size} must be positive"));
    }
    Ok(vec![x.clone()])
}

/// `Swish`: same type.
pub(super) fn swish(cx: &InferCx) -> R<Vec<TensorType>> {
    let x = input(cx, 0, "X")?;
    float_input(x, "input 0 (X)")?;
    Ok(vec![x.clone()])
}

/// `SwiGLU`: A and B of one dtype and shape (no broadcasting).
pub(super) fn swiglu(cx: &InferCx) -> R<Vec<TensorType>> {
    let a = input(cx, 0, "A")?;
    let b = input(cx, 1, "B")?;
    float_input(a, "input 0 (A)")?;
    same_dtype(a, "input 0 (A)", b, "input 1 (B)")?;
    let shape = match (a.dims(), b.dims()) {
        (Some(x), Some(y)) => {
            if x.len() != y.len() {
                return Err(format!("inputs A {a} and B {b} must have the same shape"));
            }
            let dims = x
                .iter()
                .zip(y)
                .map(|(p, q)| unify_dim(p, q))
                .collect::<Option<Vec<Dim>>>()
                .ok_or_else(|| format!("inputs A {a} and B {b} must have the same shape"))?;
            crate::shape::Shape::new(dims)
        }
        (Some(_), None) => a.shape.clone(),
        _ => b.shape.clone(),
    };
    Ok(vec![TensorType {
        dtype: a.dtype,
        shape,
    }])
}

#[cfg(test)]
mod tests {
    use crate::{Attr, Attrs, DType, Graph, OpKind, TensorType};

    fn t(dtype: DType, dims: &[u64]) -> TensorType {
        TensorType::known(dtype, dims)
    }

    fn infer(op: OpKind, a: Attrs, ins: &[TensorType]) -> Result<String, String> {
        let mut g = Graph::new("t");
        let ids: Vec<_> = ins
            .iter()
            .enumerate()
            .map(|(i, ty)| Some(g.add_input(&format!("i{i}"), ty.clone())))
            .collect();
        let outs = vec![(String::new(), TensorType::unranked(DType::F32))];
        let id = g.add_node("", op, a, ids, outs).unwrap();
        g.infer_types().map_err(|e| e.to_string())?;
        Ok(g.ty(g.node(id).outputs[0]).to_string())
    }

    #[test]
    fn norm_rules() {
        let f = DType::F32;
        let x = t(f, &[3, 4, 2, 2]);
        let c4 = t(f, &[4]);
        assert_eq!(
            infer(
                OpKind::RMSNormalization,
                Attrs::new(),
                &[x.clone(), t(f, &[2])]
            )
            .unwrap(),
            "f32[3, 4, 2, 2]"
        );
        assert!(infer(
            OpKind::RMSNormalization,
            Attrs::new(),
            &[x.clone(), t(f, &[3])]
        )
        .is_err());
        let g2 = Attrs::new().with("num_groups", Attr::Int(2));
        assert_eq!(
            infer(
                OpKind::GroupNormalization,
                g2,
                &[x.clone(), c4.clone(), c4.clone()]
            )
            .unwrap(),
            "f32[3, 4, 2, 2]"
        );
        let g3 = Attrs::new().with("num_groups", Attr::Int(3));
        let e = infer(
            OpKind::GroupNormalization,
            g3,
            &[x.clone(), c4.clone(), c4.clone()],
        )
        .unwrap_err();
        assert!(e.contains("divide"), "{e}");
        let e = infer(
            OpKind::InstanceNormalization,
            Attrs::new(),
            &[x.clone(), t(f, &[3]), c4],
        )
        .unwrap_err();
        assert!(e.contains("one value per channel"), "{e}");
        assert!(infer(
            OpKind::MeanVarianceNormalization,
            Attrs::new(),
            &[t(f, &[2, 2])]
        )
        .is_err());
        let p3 = Attrs::new().with("p", Attr::Int(3));
        assert!(infer(OpKind::LpNormalization, p3, std::slice::from_ref(&x)).is_err());
        assert!(infer(OpKind::LRN, Attrs::new(), std::slice::from_ref(&x))
            .unwrap_err()
            .contains("size"));
        assert!(infer(
            OpKind::SwiGLU,
            Attrs::new(),
            &[t(DType::I32, &[2]), t(DType::I32, &[2])]
        )
        .is_err());
        assert_eq!(
            infer(
                OpKind::SwiGLU,
                Attrs::new(),
                &[t(f, &[2, 4]), t(f, &[2, 4])]
            )
            .unwrap(),
            "f32[2, 4]"
        );
        assert!(infer(
            OpKind::SwiGLU,
            Attrs::new(),
            &[t(f, &[2, 4]), t(f, &[1, 4])]
        )
        .is_err());
        assert_eq!(
            infer(OpKind::Swish, Attrs::new(), std::slice::from_ref(&x)).unwrap(),
            "f32[3, 4, 2, 2]"
        );
        assert!(infer(OpKind::Swish, Attrs::new(), &[t(DType::I32, &[2])]).is_err());
    }
}
