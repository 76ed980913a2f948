//! Cast and CastLike between every pair of dtypes, and the dtype attributes ops use.
//!
//! Every element goes through an exact wide form (i128 for integers and bools, f64 for
//! floats, low-bit floats included) and is then narrowed once, so each pair of types
//! gets ONNX semantics with a single rounding: float→int truncates toward zero,
//! int→int wraps (keeps the low bits), float→float rounds to nearest even and float→FP8
//! saturates or not per the `saturate` attribute.

use half::{bf16, f16};
use smelt_ir::lowfloat::{encode_e8m0_rounded, E8M0Rounding};
use smelt_ir::{Attr, Attrs, DType};

use super::input;
use crate::error::{bail, OpError, OpResult};
use crate::value::{array_from, to_std_vec, Value};

/// A dtype attribute given either as an ONNX code (`to = 1`) or a dtype name
/// (`to = "f32"`); `None` when absent or 0 (ONNX's "undefined").
pub(crate) fn dtype_attr(attrs: &Attrs, name: &str) -> OpResult<Option<DType>> {
    match attrs.get(name) {
        None | Some(Attr::Int(0)) => Ok(None),
        Some(Attr::Int(code)) => match smelt_ir::infer::dtype_from_onnx_code(*code) {
            Some(d) => Ok(Some(d)),
            None => bail!("attribute {name}: unknown ONNX data type code {code}"),
        },
        Some(Attr::Str(s)) => match s.parse::<DType>() {
            Ok(d) => Ok(Some(d)),
            Err(e) => bail!("attribute {name}: {e}"),
        },
        Some(other) => bail!("attribute {name} must be a dtype code or name, got {other:?}"),
    }
}

/// ONNX Cast (`to`) and CastLike (the second input's dtype).
pub(crate) fn eval(
    op: &smelt_ir::OpKind,
    attrs: &Attrs,
    inputs: &[Option<&Value>],
) -> OpResult<Value> {
    let x = input(inputs, 0, "input")?;
    let to = if *op == smelt_ir::OpKind::CastLike {
        input(inputs, 1, "target_type")?.dtype()
    } else {
        match dtype_attr(attrs, "to")? {
            Some(d) => d,
            None => bail!("missing attribute to"),
        }
    };
    let round = match attrs.get("round_mode") {
        None => E8M0Rounding::Up,
        Some(Attr::Str(s)) => match E8M0Rounding::from_onnx(s) {
            Some(r) => r,
            None => bail!("attribute round_mode must be up, down or nearest, got `{s}`"),
        },
        Some(other) => bail!("attribute round_mode must be a string, got {other:?}"),
    };
    cast_rounded(x, to, attrs.int_or("saturate", 1) != 0, round)
}

/// Every element of a value in an exact wide form.
enum Wide {
    Int(Vec<i128>),
    Float(Vec<f64>),
    Str(Vec<String>),
}

fn widen(v: &Value) -> OpResult<Wide> {
    fn ints<T: Copy + Into<i128>>(a: &ndarray::ArrayD<T>) -> Wide {
        Wide::Int(a.iter().map(|&x| x.into()).collect())
    }
    fn floats<T: Copy + Into<f64>>(a: &ndarray::ArrayD<T>) -> Wide {
        Wide::Float(a.iter().map(|&x| x.into()).collect())
    }
    Ok(match v {
        Value::F64(a) => floats(a),
        Value::F32(a) => floats(a),
        Value::F16(a) => floats(a),
        Value::BF16(a) => floats(a),
        Value::I64(a) => ints(a),
        Value::I32(a) => ints(a),
        Value::I16(a) => ints(a),
        Value::I8(a) => ints(a),
        Value::U64(a) => ints(a),
        Value::U32(a) => ints(a),
        Value::U16(a) => ints(a),
        Value::U8(a) => ints(a),
        Value::Bool(a) => Wide::Int(a.iter().map(|&b| i128::from(b)).collect()),
        Value::Str(a) => Wide::Str(to_std_vec(a)),
        Value::Packed { dtype, codes } => match dtype {
            // Sign-extend the nibble.
            DType::I4 => Wide::Int(
                codes
                    .iter()
                    .map(|&c| i128::from(((c << 4) as i8) >> 4))
                    .collect(),
            ),
            DType::U4 => Wide::Int(codes.iter().map(|&c| i128::from(c & 0x0F)).collect()),
            d => match d.low_float() {
                Some(f) => Wide::Float(codes.iter().map(|&c| f64::from(f.decode(c))).collect()),
                None => bail!("cannot read {d} codes"),
            },
        },
    })
}

/// Parse a string as ONNX does: decimal or scientific, or INF/-INF/NaN in any case.
fn parse_float(s: &str) -> OpResult<f64> {
    let t = s.trim();
    match t.to_ascii_lowercase().as_str() {
        "inf" | "+inf" | "infinity" | "+infinity" => return Ok(f64::INFINITY),
        "-inf" | "-infinity" => return Ok(f64::NEG_INFINITY),
        "nan" | "+nan" | "-nan" => return Ok(f64::NAN),
        _ => {}
    }
    t.parse::<f64>()
        .map_err(|_| OpError::new(format!("cannot parse `{s}` as a number")))
}

fn as_floats(w: Wide) -> OpResult<Vec<f64>> {
    match w {
        Wide::Float(v) => Ok(v),
        Wide::Int(v) => Ok(v.into_iter().map(|x| x as f64).collect()),
        Wide::Str(v) => v.iter().map(|s| parse_float(s)).collect(),
    }
}

/// Integers, truncating floats toward zero (saturating at the i128 range; NaN → 0).
fn as_ints(w: Wide) -> OpResult<Vec<i128>> {
    match w {
        Wide::Int(v) => Ok(v),
        Wide::Float(v) => Ok(v.into_iter().map(|x| x as i128).collect()),
        Wide::Str(v) => v
            .iter()
            .map(|s| match s.trim().parse::<i128>() {
                Ok(i) => Ok(i),
                Err(_) => parse_float(s).map(|f| f as i128),
            })
            .collect(),
    }
}

/// Format a float the ONNX way: plain digits, INF/-INF/NaN for specials.
fn float_string(x: f64, shortest: impl Fn() -> String) -> String {
    if x.is_nan() {
        "NaN".into()
    } else if x.is_infinite() {
        if x > 0.0 { "INF" } else { "-INF" }.into()
    } else {
        shortest()
    }
}

fn to_strings(v: &Value) -> OpResult<Vec<String>> {
    fn disp<T: std::fmt::Display>(a: &ndarray::ArrayD<T>) -> Vec<String> {
        a.iter().map(|x| x.to_string()).collect()
    }
    fn flt<T: Copy + Into<f64> + std::fmt::Display>(a: &ndarray::ArrayD<T>) -> Vec<String> {
        a.iter()
            .map(|&x| float_string(x.into(), || x.to_string()))
            .collect()
    }
    Ok(match v {
        Value::F64(a) => flt(a),
        Value::F32(a) => flt(a),
        Value::F16(a) => a
            .iter()
            .map(|&x| float_string(x.into(), || f32::from(x).to_string()))
            .collect(),
        Value::BF16(a) => a
            .iter()
            .map(|&x| float_string(x.into(), || f32::from(x).to_string()))
            .collect(),
        Value::I64(a) => disp(a),
        Value::I32(a) => disp(a),
        Value::I16(a) => disp(a),
        Value::I8(a) => disp(a),
        Value::U64(a) => disp(a),
        Value::U32(a) => disp(a),
        Value::U16(a) => disp(a),
        Value::U8(a) => disp(a),
        Value::Bool(a) => a.iter().map(|&b| u8::from(b).to_string()).collect(),
        Value::Str(a) => to_std_vec(a),
        Value::Packed { .. } => match widen(v)? {
            Wide::Int(i) => i.iter().map(|x| x.to_string()).collect(),
            Wide::Float(f) => f
                .iter()
                .map(|&x| float_string(x, || (x as f32).to_string()))
                .collect(),
            Wide::Str(s) => s,
        },
    })
}

/// Convert `v` to dtype `to` with ONNX Cast semantics (E8M0 targets round to the
/// nearest power of two, see [`smelt_ir::FloatFormat::encode`]).
pub(crate) fn cast(v: &Value, to: DType, saturate: bool) -> OpResult<Value> {
    cast_with(v, to, saturate, None)
}

/// [`cast`] with the ONNX `Cast` rounding of E8M0 targets (`round_mode`, opset 24).
pub(crate) fn cast_rounded(
    v: &Value,
    to: DType,
    saturate: bool,
    round: E8M0Rounding,
) -> OpResult<Value> {
    cast_with(v, to, saturate, Some(round))
}

fn cast_with(v: &Value, to: DType, saturate: bool, e8m0: Option<E8M0Rounding>) -> OpResult<Value> {
    if v.dtype() == to {
        return Ok(v.clone());
    }
    let shape = v.shape().to_vec();
    if to == DType::String {
        return Ok(Value::Str(array_from(&shape, to_strings(v)?)?));
    }
    let w = widen(v)?;
    macro_rules! ints {
        ($t:ty, $variant:ident) => {
            Value::$variant(array_from(
                &shape,
                as_ints(w)?.into_iter().map(|x| x as $t).collect(),
            )?)
        };
    }
    Ok(match to {
        DType::F64 => Value::F64(array_from(&shape, as_floats(w)?)?),
        DType::F32 => Value::F32(array_from(
            &shape,
            float_target(w, |x| x as f32, |i| i as f32)?,
        )?),
        DType::F16 => Value::F16(array_from(
            &shape,
            float_target(w, f16::from_f64, |i| f16::from_f64(i as f64))?,
        )?),
        DType::BF16 => Value::BF16(array_from(
            &shape,
            float_target(w, bf16::from_f64, |i| bf16::from_f64(i as f64))?,
        )?),
        DType::I64 => ints!(i64, I64),
        DType::I32 => ints!(i32, I32),
        DType::I16 => ints!(i16, I16),
        DType::I8 => ints!(i8, I8),
        DType::U64 => ints!(u64, U64),
        DType::U32 => ints!(u32, U32),
        DType::U16 => ints!(u16, U16),
        DType::U8 => ints!(u8, U8),
        DType::Bool => {
            let b: Vec<bool> = match w {
                Wide::Int(v) => v.into_iter().map(|x| x != 0).collect(),
                other => as_floats(other)?.into_iter().map(|x| x != 0.0).collect(),
            };
            Value::Bool(array_from(&shape, b)?)
        }
        DType::I4 | DType::U4 => {
            // Keep the low four bits, like every other integer narrowing.
            let codes = as_ints(w)?.into_iter().map(|x| (x as u8) & 0x0F).collect();
            Value::Packed {
                dtype: to,
                codes: array_from(&shape, codes)?,
            }
        }
        DType::E8M0 if e8m0.is_some() => {
            let round = e8m0.unwrap_or(E8M0Rounding::Up);
            let codes = float_target(
                w,
                |x| encode_e8m0_rounded(x, saturate, round),
                |i| encode_e8m0_rounded(i as f64, saturate, round),
            )?;
            Value::Packed {
                dtype: to,
                codes: array_from(&shape, codes)?,
            }
        }
        d => match d.low_float() {
            Some(f) => {
                let codes = float_target(
                    w,
                    |x| f.encode(x as f32, saturate),
                    |i| f.encode(i as f32, saturate),
                )?;
                Value::Packed {
                    dtype: d,
                    codes: array_from(&shape, codes)?,
                }
            }
            None => bail!("cannot cast to {d}"),
        },
    })
}

/// Narrow to a float-like target, rounding once from the exact wide value.
fn float_target<T>(
    w: Wide,
    from_f: impl Fn(f64) -> T,
    from_i: impl Fn(i128) -> T,
) -> OpResult<Vec<T>> {
    Ok(match w {
        Wide::Int(v) => v.into_iter().map(from_i).collect(),
        other => as_floats(other)?.into_iter().map(from_f).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{ArrayD, IxDyn};

    fn a1<T: Clone>(v: &[T]) -> ArrayD<T> {
        ArrayD::from_shape_vec(IxDyn(&[v.len()]), v.to_vec()).unwrap()
    }

    #[test]
    fn float_to_int_truncates_and_ints_wrap() {
        let x = Value::F32(a1(&[2.7, -2.7, 0.0, 300.0]));
        assert_eq!(
            cast(&x, DType::I32, true).unwrap(),
            Value::I32(a1(&[2, -2, 0, 300]))
        );
        assert_eq!(
            cast(&x, DType::U8, true).unwrap(),
            Value::U8(a1(&[2, 254, 0, 44]))
        );
        let i = Value::I16(a1(&[200, -1]));
        assert_eq!(
            cast(&i, DType::I8, true).unwrap(),
            Value::I8(a1(&[-56, -1]))
        );
        assert_eq!(
            cast(&i, DType::U16, true).unwrap(),
            Value::U16(a1(&[200, 65535]))
        );
    }

    #[test]
    fn bools_and_halves() {
        let x = Value::F32(a1(&[0.0, -0.0, f32::NAN, 0.5]));
        assert_eq!(
            cast(&x, DType::Bool, true).unwrap(),
            Value::Bool(a1(&[false, false, true, true]))
        );
        let b = Value::Bool(a1(&[true, false]));
        assert_eq!(
            cast(&b, DType::F32, true).unwrap(),
            Value::F32(a1(&[1.0, 0.0]))
        );
        let h = cast(&Value::F32(a1(&[1.0 / 3.0, 65520.0])), DType::F16, true).unwrap();
        assert_eq!(
            h,
            Value::F16(a1(&[f16::from_f32(1.0 / 3.0), f16::INFINITY]))
        );
        let big = Value::I64(a1(&[16_777_217]));
        assert_eq!(
            cast(&big, DType::F32, true).unwrap(),
            Value::F32(a1(&[16_777_216.0]))
        );
    }

    #[test]
    fn low_bit_targets() {
        let x = Value::F32(a1(&[1000.0, -1.0, 0.3]));
        let sat = cast(&x, DType::F8E4M3, true).unwrap();
        assert_eq!(
            sat,
            Value::Packed {
                dtype: DType::F8E4M3,
                codes: a1(&[0x7E, 0xB8, 0x2A])
            }
        );
        let nosat = cast(&x, DType::F8E4M3, false).unwrap();
        assert_eq!(
            nosat,
            Value::Packed {
                dtype: DType::F8E4M3,
                codes: a1(&[0x7F, 0xB8, 0x2A])
            }
        );
        let back = cast(&sat, DType::F32, true).unwrap();
        assert_eq!(back, Value::F32(a1(&[448.0, -1.0, 0.3125])));
        let i4 = cast(&Value::I32(a1(&[-8, 7, 9])), DType::I4, true).unwrap();
        assert_eq!(
            cast(&i4, DType::I32, true).unwrap(),
            Value::I32(a1(&[-8, 7, -7]))
        );
    }

    #[test]
    fn e8m0_round_mode() {
        let x = Value::F32(a1(&[0.0, 0.124, 1.1, 8.0]));
        let codes = |round| match cast_rounded(&x, DType::E8M0, true, round).unwrap() {
            Value::Packed { codes, .. } => codes.iter().copied().collect::<Vec<u8>>(),
            other => panic!("{other:?}"),
        };
        assert_eq!(codes(E8M0Rounding::Up), vec![0x00, 0x7C, 0x80, 0x82]);
        assert_eq!(codes(E8M0Rounding::Down), vec![0x00, 0x7B, 0x7F, 0x82]);
        assert_eq!(codes(E8M0Rounding::Nearest), vec![0x00, 0x7C, 0x7F, 0x82]);
        let attrs = Attrs::new()
            .with("to", Attr::Int(24))
            .with("round_mode", Attr::Str("sideways".into()));
        let op = smelt_ir::OpKind::Cast;
        assert!(eval(&op, &attrs, &[Some(&x)]).is_err());
    }

    #[test]
    fn strings() {
        let x = Value::F32(a1(&[3.5, f32::NEG_INFINITY]));
        let s = cast(&x, DType::String, true).unwrap();
        assert_eq!(s, Value::Str(a1(&["3.5".to_string(), "-INF".to_string()])));
        let back = cast(
            &Value::Str(a1(&["1e-3".to_string(), "+INF".to_string()])),
            DType::F64,
            true,
        )
        .unwrap();
        assert_eq!(back, Value::F64(a1(&[1e-3, f64::INFINITY])));
        assert!(cast(&Value::Str(a1(&["x".to_string()])), DType::F32, true).is_err());
    }
}
