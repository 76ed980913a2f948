//! Loss ops: NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss.
//!
//! Both compute in f64 and round once to the input's float type.

use smelt_ir::{Attrs, DType};

use super::{input, opt_input};
use crate::error::{bail, OpResult};
use crate::value::{array_from, Value};

/// A float result of `shape` in the dtype of `like` (f32 or f64; half floats were
/// widened to f32 before the kernel ran).
pub(crate) fn float_value(like: DType, shape: &[usize], data: Vec<f64>) -> OpResult<Value> {
    match like {
        DType::F64 => Ok(Value::F64(array_from(shape, data)?)),
        DType::F32 => Ok(Value::F32(array_from(
            shape,
            data.into_iter().map(|v| v as f32).collect(),
        )?)),
        other => bail!("expected a float tensor, got {other}"),
    }
}

/// `log_softmax` over axis 1 of a `[N, C, D]` block (flattened trailing dims).
fn log_softmax_axis1(x: &[f64], n: usize, c: usize, d: usize) -> Vec<f64> {
    let mut out = vec![0.0; x.len()];
    for i in 0..n {
        for j in 0..d {
            let at = |k: usize| (i * c + k) * d + j;
            let max = (0..c).map(|k| x[at(k)]).fold(f64::NEG_INFINITY, f64::max);
            let sum: f64 = (0..c).map(|k| (x[at(k)] - max).exp()).sum();
            let log_sum = sum.ln() + max;
            for k in 0..c {
                out[at(k)] = x[at(k)] - log_sum;
            }
        }
    }
    out
}

/// `NegativeLogLikelihoodLoss` (`softmax = false`) or `SoftmaxCrossEntropyLoss`
/// (`softmax = true`: the scores go through log_softmax over the class axis first, and
/// a second output returns those log-probabilities).
pub(crate) fn loss(
    attrs: &Attrs,
    inputs: &[Option<&Value>],
    softmax: bool,
    num_outputs: usize,
) -> OpResult<Vec<Value>> {
    let x = input(inputs, 0, "input")?;
    let target = input(inputs, 1, "target")?;
    let weight = opt_input(inputs, 2);
    let dtype = x.dtype();
    if !matches!(dtype, DType::F32 | DType::F64) {
        bail!("input must be a float tensor, got {dtype}");
    }
    if !matches!(target.dtype(), DType::I32 | DType::I64) {
        bail!("target must be i32 or i64, got {}", target.dtype());
    }
    let xs = x.shape().to_vec();
    if xs.len() < 2 {
        bail!("input must be [N, C, d...], got shape {xs:?}");
    }
    let (n, c) = (xs[0], xs[1]);
    let d: usize = xs[2..].iter().product();
    let mut tshape = vec![n];
    tshape.extend_from_slice(&xs[2..]);
    if target.shape() != tshape.as_slice() {
        bail!(
            "target has shape {:?}, expected {tshape:?} for input {xs:?}",
            target.shape()
        );
    }
    let reduction = attrs.str("reduction").unwrap_or("mean");
    if !matches!(reduction, "none" | "sum" | "mean") {
        bail!("reduction {reduction:?} is not none, sum or mean");
    }
    let ignore = attrs.int("ignore_index");
    let w = match weight {
        Some(w) => {
            if w.shape() != [c] {
                bail!("weight has shape {:?}, expected [{c}]", w.shape());
            }
            Some(w.to_f64_vec("weight")?)
        }
        None => None,
    };
    let mut xv = x.to_f64_vec("input")?;
    if softmax {
        xv = log_softmax_axis1(&xv, n, c, d);
    }
    let tv = target.to_i64_vec("target")?;
    let mut losses = vec![0.0f64; n * d];
    let mut weight_sum = 0.0f64;
    for i in 0..n {
        for j in 0..d {
            let t = tv[i * d + j];
            if Some(t) == ignore {
                continue;
            }
            let Some(k) = usize::try_from(t).ok().filter(|&k| k < c) else {
                bail!("target value {t} is out of range for {c} classes");
            };
            let wk = w.as_ref().map_or(1.0, |w| w[k]);
            losses[i * d + j] = -xv[(i * c + k) * d + j] * wk;
            weight_sum += wk;
        }
    }
    let loss = match reduction {
        "none" => float_value(dtype, &tshape, losses)?,
        "sum" => float_value(dtype, &[], vec![losses.iter().sum()])?,
        _ => float_value(dtype, &[], vec![losses.iter().sum::<f64>() / weight_sum])?,
    };
    let mut out = vec![loss];
    if softmax && num_outputs > 1 {
        out.push(float_value(dtype, &xs, xv)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use crate::ops::testutil::{attrs, data, fails, run, run_n, v};
    use smelt_ir::{Attr, Attrs, OpKind};

    #[test]
    fn nll_reductions_weights_and_ignore() {
        // N = 2, C = 3.
        let x = v(&[2, 3], &[-1.0f32, -2.0, -3.0, -4.0, -5.0, -6.0]);
        let t = v(&[2], &[2i64, 0]);
        let none = attrs(&[("reduction", Attr::Str("none".into()))]);
        let y = run(OpKind::NegativeLogLikelihoodLoss, &none, &[&x, &t]);
        assert_eq!(data::<f32>(&y), (vec![2], vec![3.0, 4.0]));
        let y = run(OpKind::NegativeLogLikelihoodLoss, &Attrs::new(), &[&x, &t]);
        assert_eq!(data::<f32>(&y), (vec![], vec![3.5]));
        let w = v(&[3], &[1.0f32, 0.0, 3.0]);
        let y = run(
            OpKind::NegativeLogLikelihoodLoss,
            &Attrs::new(),
            &[&x, &t, &w],
        );
        // (3*3 + 4*1) / (3 + 1)
        assert_eq!(data::<f32>(&y).1, vec![13.0 / 4.0]);
        let ii = attrs(&[
            ("reduction", Attr::Str("sum".into())),
            ("ignore_index", Attr::Int(2)),
        ]);
        let y = run(OpKind::NegativeLogLikelihoodLoss, &ii, &[&x, &t]);
        assert_eq!(data::<f32>(&y).1, vec![4.0]);
        let bad = v(&[2], &[3i64, 0]);
        assert!(fails(
            OpKind::NegativeLogLikelihoodLoss,
            &Attrs::new(),
            &[&x, &bad]
        )
        .contains("out of range"));
        let short = v(&[1], &[0i64]);
        assert!(fails(
            OpKind::NegativeLogLikelihoodLoss,
            &Attrs::new(),
            &[&x, &short]
        )
        .contains("expected [2]"));
    }

    #[test]
    fn softmax_cross_entropy_with_log_prob() {
        let x = v(&[1, 2, 1], &[0.0f64, 0.0]);
        let t = v(&[1, 1], &[1i32]);
        let out = run_n(
            OpKind::SoftmaxCrossEntropyLoss,
            &Attrs::new(),
            &[Some(&x), Some(&t)],
            2,
        );
        let ln2 = std::f64::consts::LN_2;
        assert!((data::<f64>(&out[0]).1[0] - ln2).abs() < 1e-12);
        let (shape, lp) = data::<f64>(&out[1]);
        assert_eq!(shape, vec![1, 2, 1]);
        assert!(lp.iter().all(|v| (v + ln2).abs() < 1e-12));
    }
}
