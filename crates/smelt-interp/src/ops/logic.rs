//! Comparisons, boolean logic, NaN/infinity tests and Where.

use ndarray::ArrayD;
use smelt_ir::{Attrs, OpKind};

use super::broadcast::{map, zip2, zip3};
use super::input;
use crate::error::{bail, OpResult};
use crate::value::{dispatch_all, dispatch_float, typed, Elem, Value};

/// Evaluate a comparison, logic, IsNaN/IsInf or Where op.
pub(crate) fn eval(op: &OpKind, attrs: &Attrs, inputs: &[Option<&Value>]) -> OpResult<Value> {
    match op {
        OpKind::Equal
        | OpKind::Less
        | OpKind::LessOrEqual
        | OpKind::Greater
        | OpKind::GreaterOrEqual => {
            let a = input(inputs, 0, "A")?;
            let b = input(inputs, 1, "B")?;
            dispatch_all!(a, T => Ok(Value::Bool(compare::<T>(op, typed::<T>(a, "A")?, typed::<T>(b, "B")?)?)))
        }
        OpKind::And | OpKind::Or | OpKind::Xor => {
            let a = typed::<bool>(input(inputs, 0, "A")?, "A")?;
            let b = typed::<bool>(input(inputs, 1, "B")?, "B")?;
            let out = match op {
                OpKind::And => zip2(a, b, |&p, &q| p && q),
                OpKind::Or => zip2(a, b, |&p, &q| p || q),
                _ => zip2(a, b, |&p, &q| p != q),
            }?;
            Ok(Value::Bool(out))
        }
        OpKind::Not => Ok(Value::Bool(map(
            typed::<bool>(input(inputs, 0, "X")?, "X")?,
            |&v| !v,
        )?)),
        OpKind::IsNaN | OpKind::IsInf => {
            let x = input(inputs, 0, "X")?;
            if x.dtype().is_int() {
                // Integers are never NaN or infinite.
                return Ok(Value::Bool(ArrayD::from_elem(
                    ndarray::IxDyn(x.shape()),
                    false,
                )));
            }
            let pos = attrs.int_or("detect_positive", 1) != 0;
            let neg = attrs.int_or("detect_negative", 1) != 0;
            dispatch_float!(x, T => {
                let a = typed::<T>(x, "X")?;
                let out = if *op == OpKind::IsNaN {
                    map(a, |&v| v.is_nan())
                } else {
                    map(a, |&v| v.is_infinite() && if v.is_sign_negative() { neg } else { pos })
                }?;
                Ok(Value::Bool(out))
            })
        }
        OpKind::Where => {
            let cond = typed::<bool>(input(inputs, 0, "condition")?, "condition")?;
            let x = input(inputs, 1, "X")?;
            let y = input(inputs, 2, "Y")?;
            dispatch_all!(x, T => Ok(T::into_value(select::<T>(cond, typed::<T>(x, "X")?, typed::<T>(y, "Y")?)?)))
        }
        other => bail!("{other} is not a logic op"),
    }
}

/// `x` where `cond` holds, else `y`, broadcasting all three.
fn select<T: Elem>(cond: &ArrayD<bool>, x: &ArrayD<T>, y: &ArrayD<T>) -> OpResult<ArrayD<T>> {
    zip3(cond, x, y, |&c, p, q| if c { p.clone() } else { q.clone() })
}

fn compare<T: Elem + PartialOrd>(
    op: &OpKind,
    a: &ArrayD<T>,
    b: &ArrayD<T>,
) -> OpResult<ArrayD<bool>> {
    match op {
        OpKind::Equal => zip2(a, b, |p, q| p == q),
        OpKind::Less => zip2(a, b, |p, q| p < q),
        OpKind::LessOrEqual => zip2(a, b, |p, q| p <= q),
        OpKind::Greater => zip2(a, b, |p, q| p > q),
        OpKind::GreaterOrEqual => zip2(a, b, |p, q| p >= q),
        other => bail!("{other} is not a comparison"),
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testutil::{attrs, data, run, v};
    use smelt_ir::{Attr, Attrs, OpKind};

    #[test]
    fn comparisons_on_all_types() {
        let a = v(&[3], &[1i64, 5, 3]);
        let b = v(&[], &[3i64]);
        assert_eq!(
            data::<bool>(&run(OpKind::Less, &Attrs::new(), &[&a, &b])).1,
            vec![true, false, false]
        );
        assert_eq!(
            data::<bool>(&run(OpKind::GreaterOrEqual, &Attrs::new(), &[&a, &b])).1,
            vec![false, true, true]
        );
        let s = v(&[2], &["x".to_string(), "y".to_string()]);
        let t = v(&[1], &["y".to_string()]);
        assert_eq!(
            data::<bool>(&run(OpKind::Equal, &Attrs::new(), &[&s, &t])).1,
            vec![false, true]
        );
        let n = v(&[2], &[f32::NAN, 1.0]);
        assert_eq!(
            data::<bool>(&run(OpKind::Equal, &Attrs::new(), &[&n, &n])).1,
            vec![false, true]
        );
        let h = v(&[2], &[half::f16::from_f32(1.0), half::f16::from_f32(2.0)]);
        assert_eq!(
            data::<bool>(&run(OpKind::Greater, &Attrs::new(), &[&h, &h])).1,
            vec![false, false]
        );
    }

    #[test]
    fn boolean_logic_and_tests() {
        let p = v(&[4], &[true, true, false, false]);
        let q = v(&[4], &[true, false, true, false]);
        assert_eq!(
            data::<bool>(&run(OpKind::And, &Attrs::new(), &[&p, &q])).1,
            vec![true, false, false, false]
        );
        assert_eq!(
            data::<bool>(&run(OpKind::Or, &Attrs::new(), &[&p, &q])).1,
            vec![true, true, true, false]
        );
        assert_eq!(
            data::<bool>(&run(OpKind::Xor, &Attrs::new(), &[&p, &q])).1,
            vec![false, true, true, false]
        );
        assert_eq!(
            data::<bool>(&run(OpKind::Not, &Attrs::new(), &[&p])).1,
            vec![false, false, true, true]
        );
        let x = v(&[4], &[f32::INFINITY, f32::NEG_INFINITY, f32::NAN, 0.0]);
        assert_eq!(
            data::<bool>(&run(OpKind::IsNaN, &Attrs::new(), &[&x])).1,
            vec![false, false, true, false]
        );
        let neg_only = attrs(&[("detect_positive", Attr::Int(0))]);
        assert_eq!(
            data::<bool>(&run(OpKind::IsInf, &neg_only, &[&x])).1,
            vec![false, true, false, false]
        );
        let ints = v(&[2], &[1i32, 2]);
        assert_eq!(
            data::<bool>(&run(OpKind::IsNaN, &Attrs::new(), &[&ints])).1,
            vec![false, false]
        );
    }

    #[test]
    fn where_broadcasts() {
        let c = v(&[2, 1], &[true, false]);
        let x = v(&[3], &[1i32, 2, 3]);
        let y = v(&[], &[0i32]);
        let out = run(OpKind::Where, &Attrs::new(), &[&c, &x, &y]);
        assert_eq!(data::<i32>(&out), (vec![2, 3], vec![1, 2, 3, 0, 0, 0]));
    }
}
