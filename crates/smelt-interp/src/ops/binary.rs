//! Arithmetic with numpy broadcasting: Add, Sub, Mul, Div, Pow, Mod, PRelu and the
//! variadic Max, Min, Sum and Mean.

use ndarray::ArrayD;
use smelt_ir::{Attrs, OpKind};

use super::broadcast::{broadcast_shapes, zip2};
use super::input;
use crate::error::{bail, OpResult};
use crate::num::Num;
use crate::value::{dispatch_num, typed, Elem, Value};

/// Evaluate a broadcasting arithmetic op.
pub(crate) fn eval(op: &OpKind, attrs: &Attrs, inputs: &[Option<&Value>]) -> OpResult<Value> {
    match op {
        OpKind::Max | OpKind::Min | OpKind::Sum | OpKind::Mean => variadic(op, inputs),
        OpKind::Pow => pow(input(inputs, 0, "X")?, input(inputs, 1, "Y")?),
        OpKind::PRelu => prelu(input(inputs, 0, "X")?, input(inputs, 1, "slope")?),
        _ => {
            let a = input(inputs, 0, "A")?;
            let b = input(inputs, 1, "B")?;
            let fmod = attrs.int_or("fmod", 0) != 0;
            dispatch_num!(a, T => {
                let x = typed::<T>(a, "A")?;
                let y = typed::<T>(b, "B")?;
                Ok(T::into_value(arith::<T>(op, x, y, fmod)?))
            })
        }
    }
}

fn arith<T: Num>(op: &OpKind, x: &ArrayD<T>, y: &ArrayD<T>, fmod: bool) -> OpResult<ArrayD<T>> {
    match op {
        OpKind::Add => zip2(x, y, |&p, &q| p.add(q)),
        OpKind::Sub => zip2(x, y, |&p, &q| p.sub(q)),
        OpKind::Mul => zip2(x, y, |&p, &q| p.mul(q)),
        OpKind::Div => {
            if !T::IS_FLOAT && y.iter().any(|v| v.is_zero()) {
                bail!("integer division by zero");
            }
            zip2(x, y, |&p, &q| p.div(q))
        }
        OpKind::Mod => {
            if !T::IS_FLOAT && y.iter().any(|v| v.is_zero()) {
                bail!("integer modulo by zero");
            }
            zip2(x, y, |&p, &q| p.rem(q, fmod))
        }
        other => bail!("{other} is not a binary arithmetic op"),
    }
}

fn variadic(op: &OpKind, inputs: &[Option<&Value>]) -> OpResult<Value> {
    let vals: Vec<&Value> = inputs.iter().flatten().copied().collect();
    let Some(&first) = vals.first() else {
        bail!("needs at least one input")
    };
    dispatch_num!(first, T => {
        let arrays: Vec<&ArrayD<T>> = vals.iter().map(|v| typed::<T>(v, "every input")).collect::<OpResult<_>>()?;
        let f: fn(T, T) -> T = match op {
            OpKind::Max => T::max_nan,
            OpKind::Min => T::min_nan,
            _ => T::add,
        };
        let mut acc = arrays[0].clone();
        for a in &arrays[1..] {
            acc = zip2(&acc, a, |&p, &q| f(p, q))?;
        }
        if *op == OpKind::Mean {
            if !T::IS_FLOAT {
                bail!("Mean needs a float type, got {}", T::DTYPE);
            }
            let n = T::from_f64(arrays.len() as f64);
            acc.mapv_inplace(|v| v.div(n));
        }
        // A single input still has to be broadcast against nothing: keep as is.
        Ok(T::into_value(acc))
    })
}

/// Integer power by squaring, wrapping on overflow.
fn int_pow<T: Num>(base: T, mut e: u64) -> T {
    let (mut acc, mut b) = (T::ONE, base);
    while e > 0 {
        if e & 1 == 1 {
            acc = acc.mul(b);
        }
        b = b.mul(b);
        e >>= 1;
    }
    acc
}

/// ONNX Pow: the exponent may have another numeric type; the result has the base's.
fn pow(base: &Value, exp: &Value) -> OpResult<Value> {
    let e_shape = exp.shape().to_vec();
    let e = ArrayD::from_shape_vec(ndarray::IxDyn(&e_shape), exp.to_f64_vec("exponent")?)
        .map_err(|err| crate::error::OpError::new(err.to_string()))?;
    dispatch_num!(base, T => {
        let x = typed::<T>(base, "X")?;
        let out = if T::IS_FLOAT {
            zip2(x, &e, |&b, &p| T::from_f64(b.to_f64().powf(p)))
        } else {
            zip2(x, &e, |&b, &p| {
                if p >= 0.0 && p.fract() == 0.0 {
                    int_pow(b, p as u64)
                } else {
                    // Negative or fractional exponents: the real power, truncated.
                    T::from_f64(b.to_f64().powf(p))
                }
            })
        }?;
        Ok(T::into_value(out))
    })
}

/// ONNX PRelu: `slope` broadcasts to X (unidirectionally).
fn prelu(x: &Value, slope: &Value) -> OpResult<Value> {
    let out_shape = broadcast_shapes(&[x.shape(), slope.shape()])?;
    if out_shape != x.shape() {
        bail!(
            "slope shape {:?} does not broadcast to X shape {:?}",
            slope.shape(),
            x.shape()
        );
    }
    dispatch_num!(x, T => Ok(T::into_value(prelu_t::<T>(typed::<T>(x, "X")?, typed::<T>(slope, "slope")?)?)))
}

fn prelu_t<T: Num>(x: &ArrayD<T>, slope: &ArrayD<T>) -> OpResult<ArrayD<T>> {
    zip2(x, slope, |&v, &k| if v < T::ZERO { v.mul(k) } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::IxDyn;

    fn a1<T: Clone>(v: &[T]) -> ArrayD<T> {
        ArrayD::from_shape_vec(IxDyn(&[v.len()]), v.to_vec()).unwrap()
    }

    #[test]
    fn integer_division_and_modulo() {
        let x = a1(&[7i32, -7, 7, -7]);
        let y = a1(&[2i32, 2, -2, -2]);
        let d = arith(&OpKind::Div, &x, &y, false).unwrap();
        assert_eq!(d.iter().copied().collect::<Vec<_>>(), vec![3, -3, -3, 3]);
        let m = arith(&OpKind::Mod, &x, &y, false).unwrap();
        assert_eq!(m.iter().copied().collect::<Vec<_>>(), vec![1, 1, -1, -1]);
        let f = arith(&OpKind::Mod, &x, &y, true).unwrap();
        assert_eq!(f.iter().copied().collect::<Vec<_>>(), vec![1, -1, 1, -1]);
        assert!(arith(&OpKind::Div, &x, &a1(&[0i32]), false).is_err());
    }

    #[test]
    fn float_mod_fmod_and_floored() {
        let x = a1(&[5.5f32, -5.5]);
        let y = a1(&[2.0f32]);
        let m = arith(&OpKind::Mod, &x, &y, true).unwrap();
        assert_eq!(m.iter().copied().collect::<Vec<_>>(), vec![1.5, -1.5]);
        // fmod = 0 on floats (opset 28): floored, the result takes the divisor's sign.
        let m = arith(&OpKind::Mod, &x, &a1(&[-2.0f32]), false).unwrap();
        assert_eq!(m.iter().copied().collect::<Vec<_>>(), vec![-0.5, -1.5]);
        let m = arith(&OpKind::Mod, &x, &y, false).unwrap();
        assert_eq!(m.iter().copied().collect::<Vec<_>>(), vec![1.5, 0.5]);
        let x = a1(&[0.0f64, 3.0, -3.0, f64::INFINITY, 1.0, f64::NAN]);
        let y = a1(&[-2.0f64, f64::INFINITY, f64::INFINITY, 2.0, 0.0, 1.0]);
        let m: Vec<f64> = arith(&OpKind::Mod, &x, &y, false)
            .unwrap()
            .iter()
            .copied()
            .collect();
        assert!(m[0] == 0.0 && m[0].is_sign_negative());
        assert_eq!(m[1..3], [3.0, f64::INFINITY]);
        assert!(m[3..].iter().all(|v| v.is_nan()));
    }

    #[test]
    fn integer_powers() {
        assert_eq!(int_pow(3i64, 4), 81);
        assert_eq!(int_pow(2i8, 8), 0);
        let base = Value::I32(a1(&[2, 3, 4]));
        let exp = Value::F32(a1(&[3.0, -1.0, 0.5]));
        assert_eq!(pow(&base, &exp).unwrap(), Value::I32(a1(&[8, 0, 2])));
    }

    use crate::ops::testutil::{data, fails, run, v};

    #[test]
    fn variadic_and_broadcast() {
        let a = v(&[2, 1], &[1.0f32, 5.0]);
        let b = v(&[3], &[2.0f32, 4.0, 6.0]);
        let c = v(&[], &[3.0f32]);
        let at = Attrs::new();
        assert_eq!(
            data::<f32>(&run(OpKind::Max, &at, &[&a, &b, &c])).1,
            vec![3.0, 4.0, 6.0, 5.0, 5.0, 6.0]
        );
        assert_eq!(
            data::<f32>(&run(OpKind::Sum, &at, &[&a, &b, &c])).1,
            vec![6.0, 8.0, 10.0, 10.0, 12.0, 14.0]
        );
        assert_eq!(
            data::<f32>(&run(OpKind::Mean, &at, &[&a, &c])).1,
            vec![2.0, 4.0]
        );
        assert_eq!(data::<f32>(&run(OpKind::Min, &at, &[&a])).1, vec![1.0, 5.0]);
        let n = v(&[2], &[f32::NAN, 1.0]);
        assert!(data::<f32>(&run(OpKind::Max, &at, &[&n, &c])).1[0].is_nan());
        assert!(fails(OpKind::Mean, &at, &[&v(&[1], &[1i32])]).contains("float"));
        assert!(fails(OpKind::Add, &at, &[&a, &v(&[1], &[1i64])]).contains("expected f32"));
        let e = v(&[0, 3], &[] as &[f32]);
        assert_eq!(run(OpKind::Mul, &at, &[&e, &b]).shape(), &[0, 3]);
    }

    #[test]
    fn prelu_and_unsigned_wrap() {
        let x = v(&[2, 2], &[-1.0f32, 2.0, -3.0, 4.0]);
        let s = v(&[2, 1], &[0.5f32, 0.1]);
        let y = run(OpKind::PRelu, &Attrs::new(), &[&x, &s]);
        assert_eq!(data::<f32>(&y).1, vec![-0.5, 2.0, -0.3, 4.0]);
        let big = v(&[3, 2, 2], &[0.0f32; 12]);
        assert!(fails(OpKind::PRelu, &Attrs::new(), &[&x, &big]).contains("slope"));
        let u = v(&[2], &[250u8, 3]);
        let w = v(&[2], &[10u8, 4]);
        assert_eq!(
            data::<u8>(&run(OpKind::Add, &Attrs::new(), &[&u, &w])).1,
            vec![4, 7]
        );
        assert_eq!(
            data::<u8>(&run(OpKind::Sub, &Attrs::new(), &[&w, &u])).1,
            vec![16, 1]
        );
    }
}
