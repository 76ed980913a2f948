//! QuantizeLinear and DequantizeLinear: per-tensor, per-axis and blocked scales, optional
//! zero points, integer (8/16-bit and 4-bit) and low-bit float targets.

use smelt_ir::{Attrs, DType};

use super::cast::{cast, dtype_attr};
use super::{input, norm_axis, opt_input};
use crate::error::{bail, OpResult};
use crate::value::{array_from, Value};

/// Lay a scale or zero point out over `shape` (standard order): one value for the whole
/// tensor, one per index of `axis`, or (with `block` > 0) one per `block` consecutive
/// elements along `axis`.
pub(crate) fn expand_param<T: Clone>(
    values: &[T],
    pshape: &[usize],
    shape: &[usize],
    axis: usize,
    block: usize,
    what: &str,
) -> OpResult<Vec<T>> {
    let n: usize = shape.iter().product();
    if values.len() == 1 && pshape.len() <= 1 {
        return Ok(vec![values[0].clone(); n]);
    }
    if axis >= shape.len() {
        bail!("axis {axis} is out of range for shape {shape:?}");
    }
    let outer: usize = shape[..axis].iter().product();
    let (dim, inner) = (shape[axis], shape[axis + 1..].iter().product::<usize>());
    let mut out = Vec::with_capacity(n);
    if block == 0 {
        if pshape != [dim] {
            bail!("per-axis {what} must have shape [{dim}] for axis {axis} of {shape:?}, has {pshape:?}");
        }
        for _ in 0..outer {
            for v in values {
                out.extend(std::iter::repeat_n(v.clone(), inner));
            }
        }
    } else {
        let pdim = dim.div_ceil(block);
        let fits = pshape.len() == shape.len()
            && pshape
                .iter()
                .zip(shape)
                .enumerate()
                .all(|(i, (&p, &s))| if i == axis { p == pdim } else { p == s });
        if !fits {
            bail!("blocked {what} of shape {pshape:?} does not fit {shape:?} with block {block} on axis {axis}");
        }
        for o in 0..outer {
            for a in 0..dim {
                let at = (o * pdim + a / block) * inner;
                out.extend_from_slice(&values[at..at + inner]);
            }
        }
    }
    Ok(out)
}

/// Axis and block size of a Q/DQ node, checked against the input rank.
fn layout(attrs: &Attrs, rank: usize) -> OpResult<(usize, usize)> {
    let block = attrs.int_or("block_size", 0);
    if block < 0 {
        bail!("block_size must be non-negative, got {block}");
    }
    let axis = attrs.int_or("axis", 1);
    // Per-tensor parameters ignore the axis, which may then be out of range.
    let axis = if rank == 0 {
        0
    } else {
        norm_axis(axis, rank).unwrap_or(usize::MAX)
    };
    Ok((axis, block as usize))
}

/// The values of a numeric or low-bit value as f64 (low-bit floats decoded, 4-bit
/// integers sign-extended).
fn numbers(v: &Value, what: &str) -> OpResult<Vec<f64>> {
    match v {
        Value::Packed { .. } => cast(v, DType::F64, true)?.to_f64_vec(what),
        other => other.to_f64_vec(what),
    }
}

/// QuantizeLinear's attributes with `precision` filled in where the division happens in a
/// half type without one: x and y_scale both f16 (or both bf16) divide in that type, as
/// numpy does in the reference. The kernel sees the inputs widened to f32, so the
/// dispatcher calls this on the original ones.
pub(crate) fn default_precision<'a>(
    attrs: &'a Attrs,
    inputs: &[Option<&Value>],
) -> std::borrow::Cow<'a, Attrs> {
    let dtype = |i: usize| inputs.get(i).copied().flatten().map(Value::dtype);
    match (dtype(0), dtype(1)) {
        (Some(x), Some(s))
            if x == s
                && matches!(x, DType::F16 | DType::BF16)
                && attrs.get("precision").is_none() =>
        {
            match smelt_ir::infer::onnx_code_of(x) {
                Some(code) => std::borrow::Cow::Owned(
                    attrs.clone().with("precision", smelt_ir::Attr::Int(code)),
                ),
                None => std::borrow::Cow::Borrowed(attrs),
            }
        }
        _ => std::borrow::Cow::Borrowed(attrs),
    }
}

/// ONNX QuantizeLinear: `saturate(round_half_even(x / scale) + zero_point)`.
pub(crate) fn quantize(attrs: &Attrs, inputs: &[Option<&Value>]) -> OpResult<Value> {
    let x = input(inputs, 0, "x")?;
    let scale = input(inputs, 1, "y_scale")?;
    let zp = opt_input(inputs, 2);
    let out_dtype = match (zp, dtype_attr(attrs, "output_dtype")?) {
        (Some(z), Some(d)) if z.dtype() != d => {
            bail!(
                "output_dtype {d} disagrees with the zero point's dtype {}",
                z.dtype()
            )
        }
        (Some(z), _) => z.dtype(),
        (None, Some(d)) => d,
        (None, None) => DType::U8,
    };
    let shape = x.shape().to_vec();
    let (axis, block) = layout(attrs, shape.len())?;
    let xs = x.to_f64_vec("x")?;
    let s = expand_param(
        &scale.to_f64_vec("y_scale")?,
        scale.shape(),
        &shape,
        axis,
        block,
        "y_scale",
    )?;
    let z = match zp {
        Some(z) => expand_param(
            &numbers(z, "y_zero_point")?,
            z.shape(),
            &shape,
            axis,
            block,
            "y_zero_point",
        )?,
        None => vec![0.0; xs.len()],
    };
    let saturate = attrs.int_or("saturate", 1) != 0;
    // Divide in f32 like the reference and runtimes, so ties round the same way; an
    // explicit `precision` (opset 23) of f16 or bf16 rounds the quotient to that type.
    let precision = dtype_attr(attrs, "precision")?;
    // Both operands are rounded to the precision type, then the quotient (exact in f64,
    // which has room for the rounding to be exact too).
    let div: fn(f64, f64) -> f32 = match precision {
        None | Some(DType::F32) => |x, s| x as f32 / s as f32,
        Some(DType::F16) => |x, s| {
            let h = |v: f64| half::f16::from_f64(v).to_f64();
            half::f16::from_f64(h(x) / h(s)).to_f32()
        },
        Some(DType::BF16) => |x, s| {
            let h = |v: f64| half::bf16::from_f64(v).to_f64();
            half::bf16::from_f64(h(x) / h(s)).to_f32()
        },
        Some(d) => bail!("precision {d} is not supported (f32, f16 or bf16)"),
    };
    let scaled = xs.iter().zip(&s).map(|(&x, &s)| div(x, s));
    if let Some((lo, hi)) = out_dtype.int_range() {
        let (lo, hi) = (lo as f32, hi as f32);
        let q: Vec<i128> = scaled
            .zip(&z)
            .map(|(v, &z)| (v.round_ties_even() + z as f32).clamp(lo, hi) as i128)
            .collect();
        let wide = Value::I64(array_from(&shape, q.iter().map(|&v| v as i64).collect())?);
        return cast(&wide, out_dtype, true);
    }
    match out_dtype.low_float() {
        Some(f) if out_dtype != DType::E8M0 => {
            let codes = scaled
                .zip(&z)
                .map(|(v, &z)| f.encode(v + z as f32, saturate))
                .collect();
            Ok(Value::Packed {
                dtype: out_dtype,
                codes: array_from(&shape, codes)?,
            })
        }
        _ => bail!("{out_dtype} is not a quantized type"),
    }
}

/// ONNX DequantizeLinear: `(x − zero_point) · scale`, in the scale's dtype (or
/// `output_dtype`).
pub(crate) fn dequantize(attrs: &Attrs, inputs: &[Option<&Value>]) -> OpResult<Value> {
    let x = input(inputs, 0, "x")?;
    let scale = input(inputs, 1, "x_scale")?;
    let zp = opt_input(inputs, 2);
    if let Some(z) = zp {
        if z.dtype() != x.dtype() {
            bail!("zero point is {}, x is {}", z.dtype(), x.dtype());
        }
    }
    let shape = x.shape().to_vec();
    let (axis, block) = layout(attrs, shape.len())?;
    let xs = numbers(x, "x")?;
    let s = expand_param(
        &scale.to_f64_vec("x_scale")?,
        scale.shape(),
        &shape,
        axis,
        block,
        "x_scale",
    )?;
    let z = match zp {
        Some(z) => expand_param(
            &numbers(z, "x_zero_point")?,
            z.shape(),
            &shape,
            axis,
            block,
            "x_zero_point",
        )?,
        None => vec![0.0; xs.len()],
    };
    // The difference is exact in f64; the product rounds once, in the output type.
    let y: Vec<f64> = xs
        .iter()
        .zip(&s)
        .zip(&z)
        .map(|((&x, &s), &z)| (x - z) * s)
        .collect();
    let y = match scale {
        Value::F64(_) => Value::F64(array_from(&shape, y)?),
        _ => Value::F32(array_from(&shape, y.iter().map(|&v| v as f32).collect())?),
    };
    match dtype_attr(attrs, "output_dtype")? {
        Some(d) if d != y.dtype() => cast(&y, d, true),
        _ => Ok(y),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expand_layouts() {
        let shape = [2, 3];
        assert_eq!(
            expand_param(&[5], &[], &shape, 1, 0, "s").unwrap(),
            vec![5; 6]
        );
        assert_eq!(
            expand_param(&[1, 2, 3], &[3], &shape, 1, 0, "s").unwrap(),
            vec![1, 2, 3, 1, 2, 3]
        );
        assert_eq!(
            expand_param(&[1, 2], &[2], &shape, 0, 0, "s").unwrap(),
            vec![1, 1, 1, 2, 2, 2]
        );
        assert_eq!(
            expand_param(&[1, 2, 3, 4], &[2, 2], &shape, 1, 2, "s").unwrap(),
            vec![1, 1, 2, 3, 3, 4]
        );
        assert!(expand_param(&[1, 2], &[2], &shape, 1, 0, "s").is_err());
    }

    use crate::ops::testutil::{attrs, data, fails, run, v};
    use smelt_ir::{Attr, Attrs, OpKind};

    #[test]
    fn quantize_rounds_half_to_even_and_saturates() {
        let x = v(&[7], &[0.5f32, 1.5, 2.5, -0.5, -1.5, 300.0, -300.0]);
        let s = v(&[], &[1.0f32]);
        let zp = v(&[], &[0i8]);
        let y = run(OpKind::QuantizeLinear, &Attrs::new(), &[&x, &s, &zp]);
        assert_eq!(data::<i8>(&y).1, vec![0, 2, 2, 0, -2, 127, -128]);
        let y = run(OpKind::QuantizeLinear, &Attrs::new(), &[&x, &s]);
        assert_eq!(data::<u8>(&y).1, vec![0, 2, 2, 0, 0, 255, 0]);
        let zp = v(&[], &[10u8]);
        let y = run(
            OpKind::QuantizeLinear,
            &Attrs::new(),
            &[&v(&[2], &[1.0f32, -1.0]), &v(&[], &[0.5f32]), &zp],
        );
        assert_eq!(data::<u8>(&y).1, vec![12, 8]);
    }

    #[test]
    fn per_axis_and_blocked() {
        let x = v(&[2, 2], &[1.0f32, 1.0, 1.0, 1.0]);
        let s = v(&[2], &[0.5f32, 0.25]);
        let y = run(
            OpKind::QuantizeLinear,
            &attrs(&[("axis", Attr::Int(0))]),
            &[&x, &s, &v(&[2], &[0i8, 1])],
        );
        assert_eq!(data::<i8>(&y).1, vec![2, 2, 5, 5]);
        let y = run(
            OpKind::QuantizeLinear,
            &attrs(&[("axis", Attr::Int(-1))]),
            &[&x, &s, &v(&[2], &[0i8, 0])],
        );
        assert_eq!(data::<i8>(&y).1, vec![2, 4, 2, 4]);
        let q = v(&[1, 4], &[1i8, 2, 3, 4]);
        let bs = v(&[1, 2], &[1.0f32, 10.0]);
        let a = attrs(&[("axis", Attr::Int(1)), ("block_size", Attr::Int(2))]);
        let y = run(OpKind::DequantizeLinear, &a, &[&q, &bs]);
        assert_eq!(data::<f32>(&y).1, vec![1.0, 2.0, 30.0, 40.0]);
        let bad = v(&[1, 3], &[1.0f32, 1.0, 1.0]);
        assert!(fails(OpKind::DequantizeLinear, &a, &[&q, &bad]).contains("blocked"));
    }

    #[test]
    fn precision_rounds_the_quotient() {
        // 2.5 + 2^-10 rounds to 3 from f32, but is a tie that f16 rounds to 2.5 first.
        let x = v(&[1], &[2.500_976_6f32]);
        let s = v(&[], &[1.0f32]);
        let zp = v(&[], &[0i8]);
        let q = run(OpKind::QuantizeLinear, &Attrs::new(), &[&x, &s, &zp]);
        assert_eq!(data::<i8>(&q).1, vec![3]);
        let h = attrs(&[("precision", Attr::Int(10))]);
        let q = run(OpKind::QuantizeLinear, &h, &[&x, &s, &zp]);
        assert_eq!(data::<i8>(&q).1, vec![2]);
        // bf16 x and scale without `precision` divide in bf16: 3.546875 / 1.015625 =
        // 3.4923 rounds to 3.5 in bf16 (then to even, 4), while in f32 it gives 3.
        let xh = v(&[1], &[half::bf16::from_f32(3.546875)]);
        let sh = v(&[], &[half::bf16::from_f32(1.015625)]);
        let q = run(OpKind::QuantizeLinear, &Attrs::new(), &[&xh, &sh, &zp]);
        assert_eq!(data::<i8>(&q).1, vec![4]);
        let f = attrs(&[("precision", Attr::Int(1))]);
        let q = run(OpKind::QuantizeLinear, &f, &[&xh, &sh, &zp]);
        assert_eq!(data::<i8>(&q).1, vec![3]);
        let d = attrs(&[("precision", Attr::Int(11))]);
        assert!(fails(OpKind::QuantizeLinear, &d, &[&x, &s, &zp]).contains("precision"));
    }

    #[test]
    fn low_bit_round_trips() {
        let x = v(&[4], &[-9.0f32, -1.0, 2.0, 9.0]);
        let zp = Value::Packed {
            dtype: DType::I4,
            codes: ndarray::ArrayD::from_elem(ndarray::IxDyn(&[]), 0u8),
        };
        let s = v(&[], &[1.0f32]);
        let q = run(OpKind::QuantizeLinear, &Attrs::new(), &[&x, &s, &zp]);
        assert_eq!(q.dtype(), DType::I4);
        let back = run(OpKind::DequantizeLinear, &Attrs::new(), &[&q, &s, &zp]);
        assert_eq!(data::<f32>(&back).1, vec![-8.0, -1.0, 2.0, 7.0]);
        let f8 = attrs(&[("output_dtype", Attr::Int(17))]);
        let q = run(
            OpKind::QuantizeLinear,
            &f8,
            &[&v(&[2], &[1000.0f32, 0.3]), &s],
        );
        assert_eq!(
            q,
            Value::Packed {
                dtype: DType::F8E4M3,
                codes: ndarray::arr1(&[0x7Eu8, 0x2A]).into_dyn()
            }
        );
        let back = run(
            OpKind::DequantizeLinear,
            &Attrs::new(),
            &[&q, &v(&[], &[2.0f32])],
        );
        assert_eq!(data::<f32>(&back).1, vec![896.0, 0.625]);
    }

    #[test]
    fn dequantize_in_the_scale_type() {
        let q = v(&[2], &[130u8, 126]);
        let s = v(&[], &[half::f16::from_f32(0.5)]);
        let zp = v(&[], &[128u8]);
        let y = run(OpKind::DequantizeLinear, &Attrs::new(), &[&q, &s, &zp]);
        assert_eq!(
            data::<half::f16>(&y).1,
            vec![half::f16::from_f32(1.0), half::f16::from_f32(-1.0)]
        );
        let bad_zp = v(&[], &[0i8]);
        assert!(
            fails(OpKind::DequantizeLinear, &Attrs::new(), &[&q, &s, &bad_zp])
                .contains("zero point")
        );
    }
}
