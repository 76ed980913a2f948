//! Normalisations: BatchNormalization (inference), LayerNormalization, Softmax and
//! LogSoftmax. Statistics accumulate in f64 whatever the element type.

use ndarray::{ArrayD, Axis, IxDyn, Zip};
use smelt_ir::{Attrs, OpKind};

use super::broadcast::{zip2, PAR_THRESHOLD};
use super::{input, norm_axis, opt_input};
use crate::error::{bail, OpError, OpResult};
use crate::num::Float;
use crate::value::{array_from, dispatch_float, typed, Elem, Value};

/// ONNX Softmax / LogSoftmax along `axis` (default −1).
pub(crate) fn softmax(op: &OpKind, attrs: &Attrs, inputs: &[Option<&Value>]) -> OpResult<Value> {
    let x = input(inputs, 0, "input")?;
    let axis = norm_axis(attrs.int_or("axis", -1), x.shape().len().max(1))?;
    let log = *op == OpKind::LogSoftmax;
    dispatch_float!(x, T => Ok(T::into_value(softmax_t::<T>(typed::<T>(x, "input")?, axis, log)?)))
}

fn softmax_t<T: Float>(x: &ArrayD<T>, axis: usize, log: bool) -> OpResult<ArrayD<T>> {
    if x.ndim() == 0 {
        // A scalar is its own single-element lane.
        return Ok(x.mapv(|v| if log { v.sub(v) } else { v.div(v) }));
    }
    let mut out = x.as_standard_layout().into_owned();
    let lane = |mut l: ndarray::ArrayViewMut1<T>| {
        // Subtracting the maximum keeps exp from overflowing.
        let max = l.iter().fold(T::LOWEST, |m, &v| m.max_nan(v));
        if log {
            let sum: f64 = l.iter().map(|&v| v.sub(max).exp().to_f64()).sum();
            let lse = T::from_f64(sum.ln());
            l.mapv_inplace(|v| v.sub(max).sub(lse));
        } else {
            let mut sum = 0.0f64;
            l.mapv_inplace(|v| {
                let e = v.sub(max).exp();
                sum += e.to_f64();
                e
            });
            let s = T::from_f64(sum);
            l.mapv_inplace(|v| v.div(s));
        }
    };
    let lanes = Zip::from(out.lanes_mut(Axis(axis)));
    if x.len() >= PAR_THRESHOLD {
        lanes.par_for_each(lane);
    } else {
        lanes.for_each(lane);
    }
    Ok(out)
}

/// ONNX LayerNormalization: normalise over the dims from `axis` on, then scale and shift.
/// Outputs Y and, when asked for, Mean and InvStdDev.
pub(crate) fn layer_norm(
    attrs: &Attrs,
    inputs: &[Option<&Value>],
    num_outputs: usize,
) -> OpResult<Vec<Value>> {
    let x = input(inputs, 0, "X")?;
    let scale = input(inputs, 1, "Scale")?;
    let bias = opt_input(inputs, 2);
    let rank = x.shape().len();
    let axis = norm_axis(attrs.int_or("axis", -1), rank.max(1))?;
    let eps = f64::from(attrs.float_or("epsilon", 1e-5));
    dispatch_float!(x, T => {
        let b = match bias {
            Some(b) => Some(typed::<T>(b, "B")?),
            None => None,
        };
        let (y, mean, inv) = layer_norm_t::<T>(typed::<T>(x, "X")?, typed::<T>(scale, "Scale")?, b, axis.min(rank), eps)?;
        let mut out = vec![T::into_value(y)];
        if num_outputs > 1 {
            out.push(T::into_value(mean));
        }
        if num_outputs > 2 {
            out.push(T::into_value(inv));
        }
        Ok(out)
    })
}

/// Y, Mean and InvStdDev of a layer norm over dims `axis..`.
type LayerNormOut<T> = (ArrayD<T>, ArrayD<T>, ArrayD<T>);

fn layer_norm_t<T: Float>(
    x: &ArrayD<T>,
    scale: &ArrayD<T>,
    bias: Option<&ArrayD<T>>,
    axis: usize,
    eps: f64,
) -> OpResult<LayerNormOut<T>> {
    let shape = x.shape();
    let rows: usize = shape[..axis].iter().product();
    let cols: usize = shape[axis..].iter().product();
    let norm_shape = &shape[axis..];
    // Scale and bias usually have the normalised shape; then they are one row of `cols`
    // values applied to every row. Anything else broadcasting to X is applied afterwards.
    let row_param = |p: &ArrayD<T>| {
        p.broadcast(IxDyn(norm_shape))
            .map(|v| v.iter().copied().collect::<Vec<T>>())
    };
    let scale_row = row_param(scale);
    let bias_row = match bias {
        Some(b) => row_param(b).map(Some),
        None => Some(None),
    };
    let x_std = x.as_standard_layout();
    let xd = x_std
        .as_slice()
        .ok_or_else(|| OpError::new("internal: X not contiguous"))?;
    let mut y = vec![T::ZERO; xd.len()];
    let mut means = vec![T::ZERO; rows];
    let mut invs = vec![T::ZERO; rows];
    let fused = scale_row.is_some() && bias_row.is_some();
    let one_row = |(xr, yr): (&[T], &mut [T])| -> (T, T) {
        let n = cols as f64;
        let mean = xr.iter().map(|v| v.to_f64()).sum::<f64>() / n;
        let var = xr.iter().map(|v| (v.to_f64() - mean).powi(2)).sum::<f64>() / n;
        let inv = 1.0 / (var + eps).sqrt();
        for (i, (o, v)) in yr.iter_mut().zip(xr).enumerate() {
            let mut r = (v.to_f64() - mean) * inv;
            if fused {
                if let Some(s) = &scale_row {
                    r *= s[i].to_f64();
                }
                if let Some(Some(b)) = &bias_row {
                    r += b[i].to_f64();
                }
            }
            *o = T::from_f64(r);
        }
        (T::from_f64(mean), T::from_f64(inv))
    };
    if cols > 0 {
        use rayon::prelude::*;
        let stats: Vec<(T, T)> = xd
            .par_chunks(cols)
            .zip(y.par_chunks_mut(cols))
            .map(one_row)
            .collect();
        for (i, (m, s)) in stats.into_iter().enumerate() {
            means[i] = m;
            invs[i] = s;
        }
    }
    let mut y = array_from(shape, y)?;
    if !fused {
        y = zip2(&y, scale, |&v, &s| v.mul(s))?;
        if let Some(b) = bias {
            y = zip2(&y, b, |&v, &c| v.add(c))?;
        }
        if y.shape() != shape {
            bail!(
                "Scale {:?} or B does not broadcast to X {shape:?}",
                scale.shape()
            );
        }
    }
    let mut stat_shape = shape[..axis].to_vec();
    stat_shape.extend(std::iter::repeat_n(1, shape.len() - axis));
    Ok((
        y,
        array_from(&stat_shape, means)?,
        array_from(&stat_shape, invs)?,
    ))
}

/// ONNX BatchNormalization in inference mode: per-channel (axis 1) affine normalisation
/// with the running statistics.
pub(crate) fn batch_norm(attrs: &Attrs, inputs: &[Option<&Value>]) -> OpResult<Value> {
    if attrs.int_or("training_mode", 0) != 0 {
        bail!("training mode is not supported");
    }
    let x = input(inputs, 0, "X")?;
    let eps = f64::from(attrs.float_or("epsilon", 1e-5));
    dispatch_float!(x, T => {
        let params: Vec<&ArrayD<T>> = ["scale", "B", "input_mean", "input_var"]
            .iter()
            .enumerate()
            .map(|(i, name)| typed::<T>(input(inputs, i + 1, name)?, name))
            .collect::<OpResult<_>>()?;
        Ok(T::into_value(batch_norm_t::<T>(typed::<T>(x, "X")?, &params, eps)?))
    })
}

fn batch_norm_t<T: Float>(x: &ArrayD<T>, params: &[&ArrayD<T>], eps: f64) -> OpResult<ArrayD<T>> {
    let shape = x.shape();
    if shape.len() < 2 {
        bail!("X must be [N, C, ...], got {shape:?}");
    }
    let c = shape[1];
    for p in params {
        if p.shape() != [c] {
            bail!(
                "per-channel parameters must have shape [{c}], got {:?}",
                p.shape()
            );
        }
    }
    let p: Vec<Vec<f64>> = params
        .iter()
        .map(|a| a.iter().map(|v| v.to_f64()).collect())
        .collect();
    // y = x·a + b with a = scale/√(var+ε), b = B − mean·a, per channel.
    let coef: Vec<(f64, f64)> = (0..c)
        .map(|i| {
            let a = p[0][i] / (p[3][i] + eps).sqrt();
            (a, p[1][i] - p[2][i] * a)
        })
        .collect();
    let inner: usize = shape[2..].iter().product();
    let x_std = x.as_standard_layout();
    let xd = x_std
        .as_slice()
        .ok_or_else(|| OpError::new("internal: X not contiguous"))?;
    let y: Vec<T> = xd
        .iter()
        .enumerate()
        .map(|(i, &xv)| {
            let (a, b) = coef[(i / inner.max(1)) % c];
            T::from_f64(xv.to_f64() * a + b)
        })
        .collect();
    array_from(shape, y)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arr(shape: &[usize], v: &[f32]) -> ArrayD<f32> {
        ArrayD::from_shape_vec(IxDyn(shape), v.to_vec()).unwrap()
    }

    #[test]
    fn softmax_is_stable_and_axis_aware() {
        let x = arr(&[2, 2], &[1000.0, 1000.0, 0.0, 1.0_f32.ln()]);
        let s = softmax_t(&x, 1, false).unwrap();
        assert_eq!(
            s.iter().copied().collect::<Vec<_>>(),
            vec![0.5, 0.5, 0.5, 0.5]
        );
        let s = softmax_t(&arr(&[2, 1], &[3.0, 7.0]), 0, false).unwrap();
        assert!((s[[1, 0]] - 0.98201376).abs() < 1e-7);
        let l = softmax_t(&arr(&[2], &[0.0, 0.0]), 0, true).unwrap();
        assert!((l[[0]] + std::f32::consts::LN_2).abs() < 1e-7);
    }

    #[test]
    fn layer_norm_with_stats() {
        let x = arr(&[2, 2], &[1.0, 3.0, -1.0, -1.0]);
        let scale = arr(&[2], &[1.0, 2.0]);
        let bias = arr(&[2], &[0.0, 1.0]);
        let (y, m, inv) = layer_norm_t(&x, &scale, Some(&bias), 1, 0.0).unwrap();
        assert_eq!(y.iter().copied().collect::<Vec<_>>()[..2], [-1.0, 3.0]);
        assert_eq!(m.shape(), &[2, 1]);
        assert_eq!(m.iter().copied().collect::<Vec<_>>(), vec![2.0, -1.0]);
        assert_eq!(inv[[0, 0]], 1.0);
    }

    #[test]
    fn batch_norm_per_channel() {
        let x = arr(&[1, 2, 2], &[1.0, 2.0, 3.0, 4.0]);
        let ones = arr(&[2], &[1.0, 1.0]);
        let b = arr(&[2], &[0.0, 10.0]);
        let mean = arr(&[2], &[1.0, 3.0]);
        let var = arr(&[2], &[4.0, 1.0]);
        let y = batch_norm_t(&x, &[&ones, &b, &mean, &var], 0.0).unwrap();
        assert_eq!(
            y.iter().copied().collect::<Vec<_>>(),
            vec![0.0, 0.5, 10.0, 11.0]
        );
    }
}
