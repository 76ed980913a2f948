//! Normalisations and gated activations: BatchNormalization in training mode,
//! RMSNormalization, GroupNormalization,
//! InstanceNormalization, MeanVarianceNormalization, LpNormalization, LRN, Swish and
//! SwiGLU (LayerNormalization, BatchNormalization and Softmax live in `norm`).
//!
//! These kernels read every float type (f16, bf16, f32, f64) as f64, compute in f64 and
//! round once when writing the result, which keeps them short and obviously right. The
//! helpers at the top are shared with the attention kernels.

use half::{bf16, f16};
use smelt_ir::{Attrs, DType};

use super::{input, norm_axes, norm_axis};
use crate::error::{bail, OpResult};
use crate::value::{array_from, Value};

/// The elements of a float value (f16, bf16, f32 or f64) as f64, in standard order.
pub(crate) fn floats(v: &Value, what: &str) -> OpResult<Vec<f64>> {
    match v {
        Value::F64(_) | Value::F32(_) | Value::F16(_) | Value::BF16(_) => v.to_f64_vec(what),
        other => bail!(
            "{what} must be a float tensor (f16, bf16, f32 or f64), got {}",
            other.dtype()
        ),
    }
}

/// A value of float `dtype` from f64 elements in standard order, each rounded once.
pub(crate) fn float_value(dtype: DType, shape: &[usize], data: Vec<f64>) -> OpResult<Value> {
    Ok(match dtype {
        DType::F64 => Value::F64(array_from(shape, data)?),
        DType::F32 => Value::F32(array_from(
            shape,
            data.into_iter().map(|x| x as f32).collect(),
        )?),
        DType::F16 => Value::F16(array_from(
            shape,
            data.into_iter().map(f16::from_f64).collect(),
        )?),
        DType::BF16 => Value::BF16(array_from(
            shape,
            data.into_iter().map(bf16::from_f64).collect(),
        )?),
        other => bail!("internal: {other} is not a float type"),
    })
}

/// For every element of shape `to` (standard order), the flat index of the element of
/// shape `from` that broadcasts onto it. Broadcasting is one way (numpy rules): `from`
/// may not have more dims than `to`, and each of its dims is 1 or equal to `to`'s.
pub(crate) fn broadcast_map(from: &[usize], to: &[usize], what: &str) -> OpResult<Vec<usize>> {
    if from.len() > to.len() {
        bail!("{what} {from:?} has more dims than the tensor {to:?} it applies to");
    }
    let pad = to.len() - from.len();
    // Strides of `from` seen at `to`'s rank; 0 along broadcast dims.
    let mut strides = vec![0usize; to.len()];
    let mut acc = 1usize;
    for d in (0..from.len()).rev() {
        let (f, t) = (from[d], to[d + pad]);
        if f != 1 && f != t {
            bail!("{what} {from:?} does not broadcast to {to:?}");
        }
        strides[d + pad] = if f == 1 { 0 } else { acc };
        acc *= f;
    }
    let n: usize = to.iter().product();
    let mut out = Vec::with_capacity(n);
    let mut idx = vec![0usize; to.len()];
    for _ in 0..n {
        out.push(idx.iter().zip(&strides).map(|(i, s)| i * s).sum());
        // Advance the multi-index (last dim fastest).
        for d in (0..to.len()).rev() {
            idx[d] += 1;
            if idx[d] < to[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    Ok(out)
}

/// For every element of `shape` (standard order), the flat index of its group when the
/// dims in `axes` are reduced (kept dims in order); also the number of groups.
fn reduce_groups(shape: &[usize], axes: &[usize]) -> (Vec<usize>, usize) {
    let kept: Vec<usize> = (0..shape.len()).filter(|d| !axes.contains(d)).collect();
    let groups: usize = kept.iter().map(|&d| shape[d]).product();
    let n: usize = shape.iter().product();
    let mut out = Vec::with_capacity(n);
    let mut idx = vec![0usize; shape.len()];
    for _ in 0..n {
        out.push(kept.iter().fold(0, |acc, &d| acc * shape[d] + idx[d]));
        for d in (0..shape.len()).rev() {
            idx[d] += 1;
            if idx[d] < shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    (out, groups)
}

/// ONNX RMSNormalization: `X / sqrt(mean(X²) + epsilon) * scale`, the mean taken over
/// the dims from `axis` on; `scale` broadcasts to X one way. The output has scale's
/// dtype (the spec's `V`).
pub(crate) fn rms_norm(attrs: &Attrs, inputs: &[Option<&Value>]) -> OpResult<Value> {
    let x = input(inputs, 0, "X")?;
    let scale = input(inputs, 1, "scale")?;
    let shape = x.shape().to_vec();
    if shape.is_empty() {
        bail!("X must have rank >= 1, got a scalar");
    }
    let axis = norm_axis(attrs.int_or("axis", -1), shape.len())?;
    let eps = f64::from(attrs.float_or("epsilon", 1e-5));
    let xs = floats(x, "X")?;
    let ss = floats(scale, "scale")?;
    let map = broadcast_map(scale.shape(), &shape, "scale")?;
    let cols: usize = shape[axis..].iter().product();
    let mut y = vec![0.0; xs.len()];
    if cols > 0 {
        for (r, row) in xs.chunks(cols).enumerate() {
            let ms = row.iter().map(|v| v * v).sum::<f64>() / cols as f64;
            let inv = 1.0 / (ms + eps).sqrt();
            for (c, v) in row.iter().enumerate() {
                let i = r * cols + c;
                y[i] = v * inv * ss[map[i]];
            }
        }
    }
    float_value(scale.dtype(), &shape, y)
}

/// Mean and variance (population) of each group of `xs` given by `group_of`.
fn group_stats(xs: &[f64], group_of: &[usize], groups: usize) -> Vec<(f64, f64)> {
    let mut sum = vec![0.0; groups];
    let mut count = vec![0usize; groups];
    for (v, &g) in xs.iter().zip(group_of) {
        sum[g] += v;
        count[g] += 1;
    }
    let mean: Vec<f64> = sum
        .iter()
        .zip(&count)
        .map(|(s, &c)| s / c.max(1) as f64)
        .collect();
    let mut sq = vec![0.0; groups];
    for (v, &g) in xs.iter().zip(group_of) {
        sq[g] += (v - mean[g]).powi(2);
    }
    mean.into_iter()
        .zip(sq)
        .zip(&count)
        .map(|((m, s), &c)| (m, s / c.max(1) as f64))
        .collect()
}

/// The per-channel parameter `name` of an `[N, C, ...]` input: shape `[C]`.
fn channel_param(
    inputs: &[Option<&Value>],
    slot: usize,
    name: &str,
    c: usize,
) -> OpResult<Vec<f64>> {
    let p = input(inputs, slot, name)?;
    if p.shape() != [c] {
        bail!(
            "{name} must have shape [{c}] (one value per channel), got {:?}",
            p.shape()
        );
    }
    floats(p, name)
}

/// ONNX GroupNormalization (opset 21): the channels of `[N, C, ...]` are split into
/// `num_groups` groups, each (instance, group) normalised over its channels and spatial
/// dims, then scaled and shifted per channel.
pub(crate) fn group_norm(attrs: &Attrs, inputs: &[Option<&Value>]) -> OpResult<Value> {
    let x = input(inputs, 0, "X")?;
    let shape = x.shape().to_vec();
    if shape.len() < 2 {
        bail!("X must be [N, C, ...], got {shape:?}");
    }
    let Some(groups) = attrs.int("num_groups") else {
        bail!("attribute `num_groups` is missing");
    };
    let c = shape[1];
    let g = match usize::try_from(groups) {
        Ok(g) if g > 0 && c % g == 0 => g,
        _ => {
            bail!("attribute `num_groups` = {groups} must be positive and divide the {c} channels")
        }
    };
    let scale = channel_param(inputs, 1, "scale", c)?;
    let bias = channel_param(inputs, 2, "bias", c)?;
    let eps = f64::from(attrs.float_or("epsilon", 1e-5));
    let xs = floats(x, "X")?;
    let spatial: usize = shape[2..].iter().product();
    let per_group = c / g;
    // Element i is at (n, ch, s) with ch = (i / spatial) % c; its group is (n, ch / per_group).
    let channel = |i: usize| (i / spatial.max(1)) % c;
    let group_of: Vec<usize> = (0..xs.len())
        .map(|i| (i / (spatial.max(1) * c)) * g + channel(i) / per_group)
        .collect();
    let stats = group_stats(&xs, &group_of, shape[0] * g);
    let y = xs
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let (m, var) = stats[group_of[i]];
            let ch = channel(i);
            (v - m) / (var + eps).sqrt() * scale[ch] + bias[ch]
        })
        .collect();
    float_value(x.dtype(), &shape, y)
}

/// ONNX BatchNormalization in training mode: Y normalised with the batch's own
/// per-channel mean and (population) variance; when asked for, the updated running
/// statistics `input_mean * momentum + batch_mean * (1 - momentum)` (and likewise for
/// the variance).
pub(crate) fn batch_norm_training(
    attrs: &Attrs,
    inputs: &[Option<&Value>],
    num_outputs: usize,
) -> OpResult<Vec<Value>> {
    let x = input(inputs, 0, "X")?;
    let shape = x.shape().to_vec();
    if shape.len() < 2 {
        bail!("X must be [N, C, ...], got {shape:?}");
    }
    let c = shape[1];
    let scale = channel_param(inputs, 1, "scale", c)?;
    let bias = channel_param(inputs, 2, "B", c)?;
    let mean_in = channel_param(inputs, 3, "input_mean", c)?;
    let var_in = channel_param(inputs, 4, "input_var", c)?;
    let eps = f64::from(attrs.float_or("epsilon", 1e-5));
    let momentum = f64::from(attrs.float_or("momentum", 0.9));
    let xs = floats(x, "X")?;
    let spatial: usize = shape[2..].iter().product();
    let group_of: Vec<usize> = (0..xs.len()).map(|i| (i / spatial.max(1)) % c).collect();
    let stats = group_stats(&xs, &group_of, c);
    let y = xs
        .iter()
        .zip(&group_of)
        .map(|(v, &ch)| {
            let (m, var) = stats[ch];
            (v - m) / (var + eps).sqrt() * scale[ch] + bias[ch]
        })
        .collect();
    let mut out = vec![float_value(x.dtype(), &shape, y)?];
    let stat_dtype = input(inputs, 3, "input_mean")?.dtype();
    if num_outputs > 1 {
        let m = (0..c)
            .map(|ch| mean_in[ch] * momentum + stats[ch].0 * (1.0 - momentum))
            .collect();
        out.push(float_value(stat_dtype, &[c], m)?);
    }
    if num_outputs > 2 {
        let v = (0..c)
            .map(|ch| var_in[ch] * momentum + stats[ch].1 * (1.0 - momentum))
            .collect();
        out.push(float_value(stat_dtype, &[c], v)?);
    }
    Ok(out)
}

/// ONNX InstanceNormalization: each (instance, channel) of `[N, C, ...]` normalised over
/// its spatial dims, then scaled and shifted per channel.
pub(crate) fn instance_norm(attrs: &Attrs, inputs: &[Option<&Value>]) -> OpResult<Value> {
    let x = input(inputs, 0, "input")?;
    let shape = x.shape().to_vec();
    if shape.len() < 2 {
        bail!("input must be [N, C, ...], got {shape:?}");
    }
    let c = shape[1];
    let scale = channel_param(inputs, 1, "scale", c)?;
    let bias = channel_param(inputs, 2, "B", c)?;
    let eps = f64::from(attrs.float_or("epsilon", 1e-5));
    let xs = floats(x, "input")?;
    let spatial: usize = shape[2..].iter().product();
    let group_of: Vec<usize> = (0..xs.len()).map(|i| i / spatial.max(1)).collect();
    let stats = group_stats(&xs, &group_of, shape[0] * c);
    let y = xs
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let (m, var) = stats[group_of[i]];
            let ch = group_of[i] % c;
            (v - m) / (var + eps).sqrt() * scale[ch] + bias[ch]
        })
        .collect();
    float_value(x.dtype(), &shape, y)
}

/// ONNX MeanVarianceNormalization: `(X - E[X]) / (sqrt(E[X²] - E[X]²) + 1e-9)` with the
/// expectations over `axes` (default `[0, 2, 3]`), as the op's function body defines it.
pub(crate) fn mean_variance_norm(attrs: &Attrs, inputs: &[Option<&Value>]) -> OpResult<Value> {
    let x = input(inputs, 0, "X")?;
    let shape = x.shape().to_vec();
    let axes = attrs
        .ints("axes")
        .map_or_else(|| vec![0, 2, 3], <[i64]>::to_vec);
    let axes = norm_axes(&axes, shape.len())?;
    let xs = floats(x, "X")?;
    let (group_of, groups) = reduce_groups(&shape, &axes);
    let stats = group_stats(&xs, &group_of, groups);
    let y = xs
        .iter()
        .zip(&group_of)
        .map(|(v, &g)| {
            let (m, var) = stats[g];
            (v - m) / (var.sqrt() + 1e-9)
        })
        .collect();
    float_value(x.dtype(), &shape, y)
}

/// ONNX LpNormalization: `x / ||x||_p` along `axis` (default −1), `p` 1 or 2 (default 2);
/// a zero norm gives zeros.
pub(crate) fn lp_norm(attrs: &Attrs, inputs: &[Option<&Value>]) -> OpResult<Value> {
    let x = input(inputs, 0, "input")?;
    let shape = x.shape().to_vec();
    if shape.is_empty() {
        bail!("input must have rank >= 1, got a scalar");
    }
    let axis = norm_axis(attrs.int_or("axis", -1), shape.len())?;
    let p = attrs.int_or("p", 2);
    if p != 1 && p != 2 {
        bail!("attribute `p` = {p} must be 1 or 2");
    }
    let xs = floats(x, "input")?;
    let (group_of, groups) = reduce_groups(&shape, &[axis]);
    let mut acc = vec![0.0; groups];
    for (v, &g) in xs.iter().zip(&group_of) {
        acc[g] += if p == 1 { v.abs() } else { v * v };
    }
    let norms: Vec<f64> = acc
        .into_iter()
        .map(|a| if p == 1 { a } else { a.sqrt() })
        .collect();
    let y = xs
        .iter()
        .zip(&group_of)
        .map(|(v, &g)| if norms[g] == 0.0 { 0.0 } else { v / norms[g] })
        .collect();
    float_value(x.dtype(), &shape, y)
}

/// ONNX LRN: each element of `[N, C, ...]` divided by
/// `(bias + alpha / size * Σ x²)^beta`, the sum over the `size` neighbouring channels
/// `c - floor((size-1)/2) ..= c + ceil((size-1)/2)` (clipped to the channels there are).
pub(crate) fn lrn(attrs: &Attrs, inputs: &[Option<&Value>]) -> OpResult<Value> {
    let x = input(inputs, 0, "X")?;
    let shape = x.shape().to_vec();
    if shape.len() < 2 {
        bail!("X must be [N, C, ...], got {shape:?}");
    }
    let Some(size) = attrs.int("size") else {
        bail!("attribute `size` is missing");
    };
    let size = match usize::try_from(size) {
        Ok(s) if s > 0 => s,
        _ => bail!("attribute `size` = {size} must be positive"),
    };
    let alpha = f64::from(attrs.float_or("alpha", 1e-4));
    let beta = f64::from(attrs.float_or("beta", 0.75));
    let bias = f64::from(attrs.float_or("bias", 1.0));
    let xs = floats(x, "X")?;
    let c = shape[1];
    let spatial: usize = shape[2..].iter().product();
    let (below, above) = ((size - 1) / 2, size / 2);
    let mut y = vec![0.0; xs.len()];
    for (i, out) in y.iter_mut().enumerate() {
        let s = i % spatial.max(1);
        let ch = (i / spatial.max(1)) % c;
        let n = i / (spatial.max(1) * c);
        let lo = ch.saturating_sub(below);
        let hi = (ch + above).min(c - 1);
        let sum: f64 = (lo..=hi)
            .map(|k| xs[(n * c + k) * spatial + s].powi(2))
            .sum();
        *out = xs[i] / (bias + alpha / size as f64 * sum).powf(beta);
    }
    float_value(x.dtype(), &shape, y)
}

/// `a * sigmoid(alpha * a)`.
fn swish1(a: f64, alpha: f64) -> f64 {
    a / (1.0 + (-alpha * a).exp())
}

/// ONNX Swish (opset 24): `X * sigmoid(alpha * X)`, `alpha` defaulting to 1.
pub(crate) fn swish(attrs: &Attrs, inputs: &[Option<&Value>]) -> OpResult<Value> {
    let x = input(inputs, 0, "X")?;
    let alpha = f64::from(attrs.float_or("alpha", 1.0));
    let y = floats(x, "X")?
        .into_iter()
        .map(|a| swish1(a, alpha))
        .collect();
    float_value(x.dtype(), x.shape(), y)
}

/// ONNX SwiGLU: `Swish_alpha(A) * B` for inputs of one shape and dtype (no broadcasting).
pub(crate) fn swiglu(attrs: &Attrs, inputs: &[Option<&Value>]) -> OpResult<Value> {
    let a = input(inputs, 0, "A")?;
    let b = input(inputs, 1, "B")?;
    if a.shape() != b.shape() || a.dtype() != b.dtype() {
        bail!(
            "A and B must have the same shape and dtype (no broadcasting), got {} {:?} and {} {:?}",
            a.dtype(),
            a.shape(),
            b.dtype(),
            b.shape()
        );
    }
    let alpha = f64::from(attrs.float_or("alpha", 1.0));
    let y = floats(a, "A")?
        .into_iter()
        .zip(floats(b, "B")?)
        .map(|(a, b)| swish1(a, alpha) * b)
        .collect();
    float_value(a.dtype(), a.shape(), y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testutil::{attrs, data, fails, run, v};
    use smelt_ir::{Attr, OpKind};

    fn close(got: &[f32], want: &[f32]) {
        assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-5, "{got:?} vs {want:?}");
        }
    }

    #[test]
    fn broadcast_map_one_way() {
        assert_eq!(broadcast_map(&[2], &[2, 2], "s").unwrap(), vec![0, 1, 0, 1]);
        assert_eq!(
            broadcast_map(&[2, 1], &[2, 2], "s").unwrap(),
            vec![0, 0, 1, 1]
        );
        assert!(broadcast_map(&[3], &[2, 2], "s").is_err());
        assert!(broadcast_map(&[1, 2, 2], &[2, 2], "s").is_err());
    }

    #[test]
    fn rms_norm_rows() {
        // Rows [3, 4] and [0, 0]: RMS 3.5355 and 0 (epsilon 0 on the zero row is inf; use 1e-5 default).
        let x = v::<f32>(&[2, 2], &[3.0, 4.0, 1.0, 1.0]);
        let s = v::<f32>(&[2], &[1.0, 2.0]);
        let y = run(
            OpKind::RMSNormalization,
            &attrs(&[("epsilon", Attr::Float(0.0))]),
            &[&x, &s],
        );
        let r = (12.5f32).sqrt();
        close(&data::<f32>(&y).1, &[3.0 / r, 8.0 / r, 1.0, 2.0]);
        // axis 0 normalises over everything.
        let y = run(
            OpKind::RMSNormalization,
            &attrs(&[("epsilon", Attr::Float(0.0)), ("axis", Attr::Int(0))]),
            &[&x, &v::<f32>(&[1], &[1.0])],
        );
        let r = (27.0f32 / 4.0).sqrt();
        close(&data::<f32>(&y).1, &[3.0 / r, 4.0 / r, 1.0 / r, 1.0 / r]);
        assert!(fails(
            OpKind::RMSNormalization,
            &attrs(&[]),
            &[&x, &v::<f32>(&[3], &[1.0; 3])]
        )
        .contains("broadcast"));
        assert!(fails(
            OpKind::RMSNormalization,
            &attrs(&[("axis", Attr::Int(2))]),
            &[&x, &s]
        )
        .contains("out of range"));
    }

    #[test]
    fn group_and_instance_norm() {
        // One instance, 2 channels of 2 elements; one group normalises all four.
        let x = v::<f32>(&[1, 2, 2], &[1.0, 2.0, 3.0, 4.0]);
        let ones = v::<f32>(&[2], &[1.0, 1.0]);
        let zeros = v::<f32>(&[2], &[0.0, 10.0]);
        let a = attrs(&[("num_groups", Attr::Int(1)), ("epsilon", Attr::Float(0.0))]);
        let y = run(OpKind::GroupNormalization, &a, &[&x, &ones, &zeros]);
        let s = 1.25f32.sqrt();
        close(
            &data::<f32>(&y).1,
            &[-1.5 / s, -0.5 / s, 0.5 / s + 10.0, 1.5 / s + 10.0],
        );
        // Two groups = instance norm: each channel on its own.
        let a = attrs(&[("num_groups", Attr::Int(2)), ("epsilon", Attr::Float(0.0))]);
        let y = run(OpKind::GroupNormalization, &a, &[&x, &ones, &zeros]);
        close(&data::<f32>(&y).1, &[-1.0, 1.0, 9.0, 11.0]);
        let e = attrs(&[("epsilon", Attr::Float(0.0))]);
        let y = run(OpKind::InstanceNormalization, &e, &[&x, &ones, &zeros]);
        close(&data::<f32>(&y).1, &[-1.0, 1.0, 9.0, 11.0]);
        let bad = attrs(&[("num_groups", Attr::Int(3))]);
        assert!(fails(OpKind::GroupNormalization, &bad, &[&x, &ones, &zeros]).contains("divide"));
        let three = v::<f32>(&[3], &[1.0; 3]);
        assert!(fails(OpKind::InstanceNormalization, &e, &[&x, &three, &zeros]).contains("[2]"));
    }

    #[test]
    fn batch_norm_training_stats() {
        // One channel [1, 3]: batch mean 2, variance 1; running stats start at 0 and 1.
        let x = v::<f32>(&[2, 1, 1], &[1.0, 3.0]);
        let one = v::<f32>(&[1], &[1.0]);
        let zero = v::<f32>(&[1], &[0.0]);
        let a = attrs(&[
            ("training_mode", Attr::Int(1)),
            ("epsilon", Attr::Float(0.0)),
            ("momentum", Attr::Float(0.5)),
        ]);
        let ins = [Some(&x), Some(&one), Some(&zero), Some(&zero), Some(&one)];
        let outs = crate::ops::testutil::run_n(OpKind::BatchNormalization, &a, &ins, 3);
        close(&data::<f32>(&outs[0]).1, &[-1.0, 1.0]);
        close(&data::<f32>(&outs[1]).1, &[1.0]);
        close(&data::<f32>(&outs[2]).1, &[1.0]);
    }

    #[test]
    fn mvn_lp_lrn() {
        let x = v::<f32>(&[1, 1, 2, 1], &[1.0, 3.0]);
        let y = run(OpKind::MeanVarianceNormalization, &attrs(&[]), &[&x]);
        close(&data::<f32>(&y).1, &[-1.0, 1.0]);
        let x = v::<f32>(&[2, 2], &[3.0, -4.0, 0.0, 0.0]);
        let y = run(OpKind::LpNormalization, &attrs(&[]), &[&x]);
        close(&data::<f32>(&y).1, &[0.6, -0.8, 0.0, 0.0]);
        let y = run(
            OpKind::LpNormalization,
            &attrs(&[("p", Attr::Int(1)), ("axis", Attr::Int(0))]),
            &[&x],
        );
        close(&data::<f32>(&y).1, &[1.0, -1.0, 0.0, 0.0]);
        assert!(fails(
            OpKind::LpNormalization,
            &attrs(&[("p", Attr::Int(3))]),
            &[&x]
        )
        .contains("`p`"));
        // LRN with size 2 over 2 channels: channel 0 sees channels 0..=1, channel 1 only itself.
        let x = v::<f32>(&[1, 2, 1, 1], &[1.0, 2.0]);
        let a = attrs(&[
            ("size", Attr::Int(2)),
            ("alpha", Attr::Float(2.0)),
            ("beta", Attr::Float(1.0)),
            ("bias", Attr::Float(1.0)),
        ]);
        let y = run(OpKind::LRN, &a, &[&x]);
        close(&data::<f32>(&y).1, &[1.0 / 6.0, 2.0 / 5.0]);
        assert!(fails(OpKind::LRN, &attrs(&[]), &[&x]).contains("size"));
    }

    #[test]
    fn swish_and_swiglu() {
        let x = v::<f32>(&[2], &[0.0, 2.0]);
        let y = run(OpKind::Swish, &attrs(&[]), &[&x]);
        close(&data::<f32>(&y).1, &[0.0, 2.0 / (1.0 + (-2.0f32).exp())]);
        let b = v::<f32>(&[2], &[5.0, 3.0]);
        let y = run(
            OpKind::SwiGLU,
            &attrs(&[("alpha", Attr::Float(0.5))]),
            &[&x, &b],
        );
        close(
            &data::<f32>(&y).1,
            &[0.0, 3.0 * 2.0 / (1.0 + (-1.0f32).exp())],
        );
        let h = v::<half::f16>(&[2], &[half::f16::ONE, half::f16::ZERO]);
        let (_, hy) = data::<half::f16>(&run(OpKind::SwiGLU, &attrs(&[]), &[&h, &h]));
        assert!((hy[0].to_f32() - 0.7310586).abs() < 1e-3);
        assert!(
            fails(OpKind::SwiGLU, &attrs(&[]), &[&x, &v::<f32>(&[1], &[1.0])])
                .contains("same shape")
        );
    }
}
