//! Integer and quantized linear ops: MatMulInteger, ConvInteger, QLinearMatMul,
//! QLinearConv and DynamicQuantizeLinear.
//!
//! Integer products are computed exactly (i32 for MatMul, f64 holding integers for
//! convolutions) and requantized once, rounding half to even and saturating.

use half::{bf16, f16};
use ndarray::{ArrayD, IxDyn};
use smelt_ir::{Attrs, DType};

use super::cast::cast;
use super::{conv, input, linalg, opt_input};
use crate::error::{bail, OpResult};
use crate::value::{array_from, Value};

/// The elements of an 8-bit integer input (or its zero point) as i32.
fn int8(v: &Value, what: &str) -> OpResult<Vec<i32>> {
    match v.dtype() {
        DType::U8 | DType::I8 => Ok(v.to_i64_vec(what)?.into_iter().map(|x| x as i32).collect()),
        other => bail!("{what} must be u8 or i8, got {other}"),
    }
}

/// `x − zero_point` as i32, the zero point being one value or one per index of
/// `axis` (counted from the end of `shape` when `from_end`).
fn centred(x: &Value, zp: Option<&Value>, what: &str, axis_from_end: usize) -> OpResult<Vec<i32>> {
    let xv = int8(x, what)?;
    let Some(zp) = zp else { return Ok(xv) };
    if zp.dtype() != x.dtype() {
        bail!(
            "the zero point of {what} is {}, {what} is {}",
            zp.dtype(),
            x.dtype()
        );
    }
    let z = int8(zp, &format!("the zero point of {what}"))?;
    if z.len() == 1 {
        return Ok(xv.into_iter().map(|v| v - z[0]).collect());
    }
    let shape = x.shape();
    if shape.len() < axis_from_end || zp.shape().len() > 1 {
        bail!(
            "the zero point of {what} has shape {:?}, which does not fit {shape:?}",
            zp.shape()
        );
    }
    let axis = shape.len() - axis_from_end;
    let (dim, inner) = (shape[axis], shape[axis + 1..].iter().product::<usize>());
    if z.len() != dim {
        bail!(
            "the zero point of {what} has {} values, expected 1 or {dim}",
            z.len()
        );
    }
    Ok(xv
        .into_iter()
        .enumerate()
        .map(|(i, v)| v - z[(i / inner.max(1)) % dim])
        .collect())
}

fn i32_value(shape: &[usize], data: Vec<i32>) -> OpResult<Value> {
    Ok(Value::I32(array_from(shape, data)?))
}

/// ONNX MatMulInteger: `(A − a_zero_point) · (B − b_zero_point)` in i32 (the A zero
/// point per row, the B zero point per column).
pub(crate) fn matmul_integer(inputs: &[Option<&Value>]) -> OpResult<Value> {
    let a = input(inputs, 0, "A")?;
    let b = input(inputs, 1, "B")?;
    let av = i32_value(a.shape(), centred(a, opt_input(inputs, 2), "A", 2)?)?;
    let bv = i32_value(b.shape(), centred(b, opt_input(inputs, 3), "B", 1)?)?;
    linalg::matmul(&[Some(&av), Some(&bv)])
}

/// Values of an i32 result as f64 (for the float convolution kernel) and back.
fn as_f64(shape: &[usize], v: &[i32]) -> OpResult<Value> {
    Ok(Value::F64(array_from(
        shape,
        v.iter().map(|&x| f64::from(x)).collect(),
    )?))
}

/// An integer convolution through the f64 kernel: every partial sum is an integer far
/// below 2^53, so the result is exact.
fn int_conv(
    attrs: &Attrs,
    x: &Value,
    x_zp: Option<&Value>,
    w: &Value,
    w_zp: Option<&Value>,
    bias: Option<&Value>,
) -> OpResult<(Vec<usize>, Vec<f64>)> {
    let xv = as_f64(x.shape(), &centred(x, x_zp, "x", x.shape().len())?)?;
    // The W zero point is one value or one per output channel (axis 0).
    let wv = as_f64(w.shape(), &centred(w, w_zp, "w", w.shape().len())?)?;
    let bv = match bias {
        Some(b) => {
            if b.dtype() != DType::I32 {
                bail!("B must be i32, got {}", b.dtype());
            }
            Some(Value::F64(
                b.to_f64_vec("B").and_then(|d| array_from(b.shape(), d))?,
            ))
        }
        None => None,
    };
    let y = conv::conv(&[Some(&xv), Some(&wv), bv.as_ref()], attrs)?;
    let shape = y.shape().to_vec();
    Ok((shape, y.to_f64_vec("conv result")?))
}

/// ONNX ConvInteger: the convolution of zero-point-centred 8-bit inputs, in i32.
pub(crate) fn conv_integer(attrs: &Attrs, inputs: &[Option<&Value>]) -> OpResult<Value> {
    let x = input(inputs, 0, "x")?;
    let w = input(inputs, 1, "w")?;
    let (shape, y) = int_conv(
        attrs,
        x,
        opt_input(inputs, 2),
        w,
        opt_input(inputs, 3),
        None,
    )?;
    i32_value(&shape, y.into_iter().map(|v| v as i32).collect())
}

/// `v` rounded to the precision of `dtype` (how the reference combines scales).
fn in_precision(v: f64, dtype: DType) -> f64 {
    match dtype {
        DType::F16 => f64::from(f16::from_f64(v)),
        DType::BF16 => f64::from(bf16::from_f64(v)),
        DType::F32 => f64::from(v as f32),
        _ => v,
    }
}

/// Scale values with their dtype.
fn scales(v: &Value, what: &str) -> OpResult<(Vec<f64>, DType)> {
    if !v.dtype().is_float() {
        bail!("{what} must be a float tensor, got {}", v.dtype());
    }
    Ok((v.to_f64_vec(what)?, v.dtype()))
}

/// Requantize `acc · multiplier[channel] + zero_point` to `dtype`: round half to even
/// and saturate.
fn requantize(
    shape: &[usize],
    acc: &[f64],
    mult: &[f64],
    channel: impl Fn(usize) -> usize,
    zp: f64,
    dtype: DType,
) -> OpResult<Value> {
    let Some((lo, hi)) = dtype.int_range() else {
        bail!("the output type {dtype} is not an integer type");
    };
    let q: Vec<i64> = acc
        .iter()
        .enumerate()
        .map(|(i, &a)| {
            (a * mult[channel(i)] + zp)
                .round_ties_even()
                .clamp(lo as f64, hi as f64) as i64
        })
        .collect();
    cast(&Value::I64(array_from(shape, q)?), dtype, true)
}

/// The zero point of the output (its value and dtype; default 0 in `fallback`).
fn out_zero_point(zp: Option<&Value>, fallback: DType) -> OpResult<(f64, DType)> {
    match zp {
        Some(z) => {
            let v = int8(z, "y_zero_point")?;
            if v.len() != 1 {
                bail!("y_zero_point must hold one value, has {}", v.len());
            }
            Ok((f64::from(v[0]), z.dtype()))
        }
        None => Ok((0.0, fallback)),
    }
}

/// ONNX QLinearMatMul with per-tensor scales and zero points.
pub(crate) fn qlinear_matmul(inputs: &[Option<&Value>]) -> OpResult<Value> {
    let a = input(inputs, 0, "a")?;
    let b = input(inputs, 3, "b")?;
    let (asc, adt) = scales(input(inputs, 1, "a_scale")?, "a_scale")?;
    let (bsc, _) = scales(input(inputs, 4, "b_scale")?, "b_scale")?;
    let (ysc, _) = scales(input(inputs, 6, "y_scale")?, "y_scale")?;
    if asc.len() != 1 || bsc.len() != 1 || ysc.len() != 1 {
        bail!("only per-tensor scales are supported (one value each)");
    }
    let mult = in_precision(in_precision(asc[0] * bsc[0], adt) / ysc[0], adt);
    let av = i32_value(a.shape(), centred(a, opt_input(inputs, 2), "a", 2)?)?;
    let bv = i32_value(b.shape(), centred(b, opt_input(inputs, 5), "b", 1)?)?;
    let c = linalg::matmul(&[Some(&av), Some(&bv)])?;
    let shape = c.shape().to_vec();
    let acc = c.to_f64_vec("product")?;
    let (zp, dtype) = out_zero_point(opt_input(inputs, 7), a.dtype())?;
    requantize(&shape, &acc, &[mult], |_| 0, zp, dtype)
}

/// ONNX QLinearConv: w_scale (and the w zero point) per tensor or per output channel.
pub(crate) fn qlinear_conv(attrs: &Attrs, inputs: &[Option<&Value>]) -> OpResult<Value> {
    let x = input(inputs, 0, "x")?;
    let w = input(inputs, 3, "w")?;
    let (xs, xdt) = scales(input(inputs, 1, "x_scale")?, "x_scale")?;
    let (ws, _) = scales(input(inputs, 4, "w_scale")?, "w_scale")?;
    let (ys, _) = scales(input(inputs, 6, "y_scale")?, "y_scale")?;
    if xs.len() != 1 || ys.len() != 1 {
        bail!("x_scale and y_scale must hold one value each");
    }
    let m = w.shape().first().copied().unwrap_or(0);
    if ws.len() != 1 && ws.len() != m {
        bail!("w_scale has {} values, expected 1 or {m}", ws.len());
    }
    let (shape, acc) = int_conv(
        attrs,
        x,
        opt_input(inputs, 2),
        w,
        opt_input(inputs, 5),
        opt_input(inputs, 8),
    )?;
    let mult: Vec<f64> = ws
        .iter()
        .map(|&s| in_precision(in_precision(xs[0] * s, xdt) / ys[0], xdt))
        .collect();
    let plane: usize = shape.get(2..).map_or(1, |s| s.iter().product());
    let per_channel = mult.len() > 1;
    let (zp, dtype) = out_zero_point(opt_input(inputs, 7), x.dtype())?;
    requantize(
        &shape,
        &acc,
        &mult,
        |i| {
            if per_channel {
                (i / plane.max(1)) % m
            } else {
                0
            }
        },
        zp,
        dtype,
    )
}

/// ONNX DynamicQuantizeLinear: u8 codes with a scale and zero point chosen so the
/// input's range (widened to include 0) maps onto [0, 255]; computed in f32.
pub(crate) fn dynamic_quantize(inputs: &[Option<&Value>]) -> OpResult<Vec<Value>> {
    let x = input(inputs, 0, "x")?;
    if x.dtype() != DType::F32 {
        bail!("x must be f32, got {}", x.dtype());
    }
    let xv: Vec<f32> = x.to_f64_vec("x")?.into_iter().map(|v| v as f32).collect();
    let max = xv.iter().copied().fold(0.0f32, f32::max);
    let min = xv.iter().copied().fold(0.0f32, f32::min);
    let scale = if max == min { 1.0 } else { max - min } / 255.0f32;
    let zp = (0.0f32 - min / scale).clamp(0.0, 255.0).round_ties_even();
    let q: Vec<u8> = xv
        .iter()
        .map(|&v| ((v / scale).round_ties_even() + zp).clamp(0.0, 255.0) as u8)
        .collect();
    Ok(vec![
        Value::U8(array_from(x.shape(), q)?),
        Value::F32(ArrayD::from_elem(IxDyn(&[]), scale)),
        Value::U8(ArrayD::from_elem(IxDyn(&[]), zp as u8)),
    ])
}

#[cfg(test)]
mod tests {
    use crate::ops::testutil::{data, fails, run, run_n, v};
    use crate::value::Value;
    use smelt_ir::{Attrs, OpKind};

    #[test]
    fn matmul_integer_with_zero_points() {
        let a = v(&[1, 2], &[3u8, 4]);
        let b = v(&[2, 1], &[5u8, 6]);
        let y = run(
            OpKind::MatMulInteger,
            &Attrs::new(),
            &[&a, &b, &v(&[], &[1u8]), &v(&[], &[2u8])],
        );
        // (2, 3) . (3, 4) = 18
        assert_eq!(data::<i32>(&y), (vec![1, 1], vec![18]));
        let bad = v(&[], &[1i8]);
        assert!(fails(OpKind::MatMulInteger, &Attrs::new(), &[&a, &b, &bad]).contains("zero point"));
    }

    #[test]
    fn qlinear_matmul_requantizes() {
        let a = v(&[1, 2], &[2u8, 4]);
        let b = v(&[2, 1], &[1u8, 1]);
        let s = v(&[], &[0.5f32]);
        let z = v(&[], &[0u8]);
        let ys = v(&[], &[1.0f32]);
        let yz = v(&[], &[10u8]);
        // (2 + 4) * 0.25 + 10 = 11.5 -> 12 (half to even)
        let y = run(
            OpKind::QLinearMatMul,
            &Attrs::new(),
            &[&a, &s, &z, &b, &s, &z, &ys, &yz],
        );
        assert_eq!(data::<u8>(&y).1, vec![12]);
    }

    #[test]
    fn conv_integer_and_dynamic_quantize() {
        let x = v(&[1, 1, 2, 2], &[1u8, 2, 3, 4]);
        let w = v(&[1, 1, 2, 2], &[1u8, 1, 1, 1]);
        let y = run(
            OpKind::ConvInteger,
            &Attrs::new(),
            &[&x, &w, &v(&[], &[1u8])],
        );
        assert_eq!(data::<i32>(&y), (vec![1, 1, 1, 1], vec![6]));
        let x = v(&[3], &[-255.0f32, -10.4, 0.0]);
        let out = run_n(OpKind::DynamicQuantizeLinear, &Attrs::new(), &[Some(&x)], 3);
        assert_eq!(data::<f32>(&out[1]).1, vec![1.0]);
        assert_eq!(data::<u8>(&out[2]).1, vec![255]);
        assert_eq!(data::<u8>(&out[0]).1, vec![0, 245, 255]);
    }

    /// The ops of this family (losses, resampling, recurrent, windowed and quantized)
    /// return errors, never panic, on odd inputs and attributes.
    #[test]
    fn family_ops_do_not_panic_on_odd_inputs() {
        use smelt_ir::Attr;
        let ops = [
            OpKind::NegativeLogLikelihoodLoss,
            OpKind::SoftmaxCrossEntropyLoss,
            OpKind::Resize,
            OpKind::GridSample,
            OpKind::AffineGrid,
            OpKind::Rnn,
            OpKind::Gru,
            OpKind::Lstm,
            OpKind::ConvTranspose,
            OpKind::LpPool,
            OpKind::Col2Im,
            OpKind::MaxUnpool,
            OpKind::DeformConv,
            OpKind::RoiAlign,
            OpKind::MaxRoiPool,
            OpKind::MatMulInteger,
            OpKind::ConvInteger,
            OpKind::QLinearMatMul,
            OpKind::QLinearConv,
            OpKind::DynamicQuantizeLinear,
        ];
        let vals = [
            v(&[], &[1.0f32]),
            v::<f32>(&[0], &[]),
            v(&[1, 1, 2, 2], &[1.0f32, 2.0, 3.0, 4.0]),
            v(&[1, 1, 0, 2], &[0.0f32; 0]),
            v(&[2], &[i64::MAX, -1]),
            v(&[4], &[1i64, 1, 0, 0]),
            v(&[1, 1, 2, 2], &[1u8, 2, 3, 4]),
            v(&[3, 4], &[0.5f32; 12]),
            v(&[1, 5], &[0.0f32, 1e30, -1e30, f32::NAN, 2.0]),
        ];
        let attr_sets = [
            Attrs::new(),
            Attrs::new()
                .with("kernel_shape", Attr::Ints(vec![2, 2]))
                .with("pooled_shape", Attr::Ints(vec![2, 2]))
                .with("hidden_size", Attr::Int(1))
                .with("strides", Attr::Ints(vec![i64::MAX, 1]))
                .with("pads", Attr::Ints(vec![-1, 0, 0, 0]))
                .with("axes", Attr::Ints(vec![0, 0]))
                .with("mode", Attr::Str("cubic".into()))
                .with("sampling_ratio", Attr::Int(-1))
                .with("output_height", Attr::Int(0)),
            Attrs::new()
                .with("kernel_shape", Attr::Ints(vec![1, 1]))
                .with("pooled_shape", Attr::Ints(vec![1, 1]))
                .with("hidden_size", Attr::Int(2))
                .with("direction", Attr::Str("bidirectional".into()))
                .with(
                    "coordinate_transformation_mode",
                    Attr::Str("tf_crop_and_resize".into()),
                )
                .with("ignore_index", Attr::Int(i64::MIN))
                .with("group", Attr::Int(3)),
        ];
        for op in &ops {
            for a in &attr_sets {
                for n in 0..=5usize {
                    for start in 0..vals.len() {
                        let ins: Vec<Option<&Value>> = (0..n)
                            .map(|k| Some(&vals[(start + k) % vals.len()]))
                            .collect();
                        let _ = super::super::eval(op, a, &ins, 3);
                    }
                }
            }
        }
    }
}
