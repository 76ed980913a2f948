//! Rules for the loss ops: NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss.

use crate::shape::Shape;
use crate::types::TensorType;

use super::util::{attrs, index_dtype, input, num_outputs, opt_input, unify_dim, R};
use super::InferCx;

/// The `reduction` attribute: `true` when the loss is reduced to a scalar.
fn reduces(cx: &InferCx) -> R<bool> {
    match attrs(cx).str("reduction").unwrap_or("mean") {
        "none" => Ok(false),
        "sum" | "mean" => Ok(true),
        other => Err(format!(
            "attribute `reduction` = {other:?} is not none, sum or mean"
        )),
    }
}

/// `NegativeLogLikelihoodLoss` (`log_prob = false`) and `SoftmaxCrossEntropyLoss`
/// (`log_prob = true`, whose optional second output has the scores' type): input
/// `[N, C, d...]`, target `[N, d...]` of class indices, optional weight `[C]`.
pub(super) fn loss(cx: &InferCx, log_prob: bool) -> R<Vec<TensorType>> {
    let x = input(cx, 0, "input")?;
    let t = input(cx, 1, "target")?;
    if !x.dtype.is_float() {
        return Err(format!("input 0 (input) must be a float tensor, got {x}"));
    }
    index_dtype(t, "input 1 (target)")?;
    let reduce = reduces(cx)?;
    let mut target_shape = t.shape.clone();
    if let Some(xd) = x.dims() {
        if xd.len() < 2 {
            return Err(format!("input 0 (input) must be [N, C, d...], got {x}"));
        }
        if let Some(td) = t.dims() {
            if td.len() + 1 != xd.len() {
                return Err(format!(
                    "input 1 (target) {t} must have one dim fewer than input 0 (input) {x}"
                ));
            }
            let mut dims = Vec::with_capacity(td.len());
            for (i, d) in td.iter().enumerate() {
                let xi = if i == 0 { &xd[0] } else { &xd[i + 1] };
                dims.push(unify_dim(d, xi).ok_or_else(|| {
                    format!("input 1 (target) {t} does not match input 0 (input) {x}")
                })?);
            }
            target_shape = Shape::new(dims);
        } else {
            let mut dims = vec![xd[0].clone()];
            dims.extend(xd[2..].iter().cloned());
            target_shape = Shape::new(dims);
        }
        if let Some(w) = opt_input(cx, 2) {
            if w.dtype != x.dtype {
                return Err(format!(
                    "input 2 (weight) is {w} but input 0 (input) is {x}; their dtypes must match"
                ));
            }
            match w.dims() {
                Some([c]) if unify_dim(c, &xd[1]).is_some() => {}
                None => {}
                _ => {
                    return Err(format!(
                        "input 2 (weight) must be 1-D of the {} classes of input 0 (input) {x}, got {w}",
                        xd[1]
                    ))
                }
            }
        }
    }
    let loss_shape = if reduce {
        Shape::scalar()
    } else {
        target_shape
    };
    let mut out = vec![TensorType {
        dtype: x.dtype,
        shape: loss_shape,
    }];
    if log_prob && num_outputs(cx) > 1 {
        out.push(x.clone());
    }
    Ok(out)
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

    fn tt(dtype: DType, dims: &[u64]) -> TensorType {
        TensorType::new(
            dtype,
            Shape::new(dims.iter().map(|&d| Dim::Known(d)).collect()),
        )
    }

    fn run(
        op: OpKind,
        attrs: Attrs,
        ins: &[TensorType],
        outs: usize,
    ) -> Result<Vec<TensorType>, String> {
        let mut g = Graph::new("t");
        let vals: Vec<_> = ins
            .iter()
            .enumerate()
            .map(|(i, t)| Some(g.add_input(&format!("i{i}"), t.clone())))
            .collect();
        let o: Vec<(String, TensorType)> = (0..outs)
            .map(|i| (format!("o{i}"), TensorType::unranked(DType::F32)))
            .collect();
        let n = g.add_node("n", op, attrs, vals, o).unwrap();
        infer_node(&g, n).map_err(|e| e.to_string())
    }

    #[test]
    fn loss_shapes() {
        let x = tt(DType::F32, &[3, 5, 2]);
        let t = tt(DType::I64, &[3, 2]);
        let none = Attrs::new().with("reduction", Attr::Str("none".into()));
        let y = run(
            OpKind::NegativeLogLikelihoodLoss,
            none.clone(),
            &[x.clone(), t.clone()],
            1,
        )
        .unwrap();
        assert_eq!(y[0].to_string(), "f32[3, 2]");
        let y = run(
            OpKind::SoftmaxCrossEntropyLoss,
            Attrs::new(),
            &[x.clone(), t.clone()],
            2,
        )
        .unwrap();
        assert_eq!(y[0].to_string(), "f32[]");
        assert_eq!(y[1], x);
        let bad_t = tt(DType::I64, &[3, 4]);
        let e = run(
            OpKind::NegativeLogLikelihoodLoss,
            none.clone(),
            &[x.clone(), bad_t],
            1,
        )
        .unwrap_err();
        assert!(e.contains("does not match"), "{e}");
        let bad_r = Attrs::new().with("reduction", Attr::Str("avg".into()));
        let e = run(OpKind::NegativeLogLikelihoodLoss, bad_r, &[x, t], 1).unwrap_err();
        assert!(e.contains("reduction"), "{e}");
    }
}
