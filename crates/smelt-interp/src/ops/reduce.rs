//! Reductions (ReduceSum, ReduceMean, ReduceMax, ReduceMin, ReduceProd, ReduceL1,
//! ReduceL2, ReduceSumSquare, ReduceLogSumExp) and ArgMax/ArgMin.
//!
//! The reduced axes are moved last and made contiguous, so every output element reduces
//! one contiguous run. Float sums accumulate in f64; integer ones wrap in their type.

use ndarray::{ArrayD, IxDyn};
use rayon::prelude::*;
use smelt_ir::{Attrs, OpKind};

use super::broadcast::PAR_THRESHOLD;
use super::{axes_input, input, norm_axes, norm_axis};
use crate::error::{bail, OpResult};
use crate::num::Num;
use crate::value::{array_from, dispatch_num, typed, Elem, Value};

/// Evaluate a Reduce* op (axes from the second input, or the attribute of older opsets).
pub(crate) fn reduce(op: &OpKind, attrs: &Attrs, inputs: &[Option<&Value>]) -> OpResult<Value> {
    let x = input(inputs, 0, "data")?;
    let rank = x.shape().len();
    let keepdims = attrs.int_or("keepdims", 1) != 0;
    let noop = attrs.int_or("noop_with_empty_axes", 0) != 0;
    let axes = match axes_input(inputs, 1, attrs)? {
        Some(a) if !a.is_empty() => norm_axes(&a, rank)?,
        // Empty axes reduce everything, unless told to leave the tensor alone; even then
        // the per-element part (square, abs, ...) still applies, as in the reference.
        _ if noop => vec![],
        _ => (0..rank).collect(),
    };
    if let Value::Bool(a) = x {
        // Max/Min of booleans are Or/And; reduce them as bytes.
        if !matches!(op, OpKind::ReduceMax | OpKind::ReduceMin) {
            bail!("bool input is only supported by ReduceMax and ReduceMin");
        }
        let bytes = Value::U8(a.mapv(u8::from));
        let r = reduce(op, attrs, &[Some(&bytes), inputs.get(1).copied().flatten()])?;
        return match r {
            Value::U8(b) => Ok(Value::Bool(b.mapv(|v| v != 0))),
            other => Ok(other),
        };
    }
    dispatch_num!(x, T => Ok(T::into_value(reduce_t::<T>(op, typed::<T>(x, "data")?, &axes, keepdims)?)))
}

/// `a` with `axes` moved last, contiguous, plus (outer count, run length) and the output
/// shape.
fn grouped<T: Clone>(
    a: &ArrayD<T>,
    axes: &[usize],
    keepdims: bool,
) -> (Vec<T>, usize, usize, Vec<usize>) {
    let shape = a.shape();
    let kept: Vec<usize> = (0..shape.len()).filter(|i| !axes.contains(i)).collect();
    let perm: Vec<usize> = kept.iter().chain(axes.iter()).copied().collect();
    let moved = a.view().permuted_axes(IxDyn(&perm));
    let data = match moved.as_slice() {
        Some(s) => s.to_vec(),
        None => moved.iter().cloned().collect(),
    };
    let run: usize = axes.iter().map(|&i| shape[i]).product();
    let groups: usize = kept.iter().map(|&i| shape[i]).product();
    let out_shape: Vec<usize> = if keepdims {
        shape
            .iter()
            .enumerate()
            .map(|(i, &d)| if axes.contains(&i) { 1 } else { d })
            .collect()
    } else {
        kept.iter().map(|&i| shape[i]).collect()
    };
    (data, groups, run, out_shape)
}

fn reduce_t<T: Num>(
    op: &OpKind,
    a: &ArrayD<T>,
    axes: &[usize],
    keepdims: bool,
) -> OpResult<ArrayD<T>> {
    let (data, groups, run, out_shape) = grouped(a, axes, keepdims);
    let f = reducer::<T>(op)?;
    let out: Vec<T> = if run == 0 {
        vec![f(&[]); groups]
    } else if data.len() >= PAR_THRESHOLD {
        data.par_chunks(run).map(f).collect()
    } else {
        data.chunks(run).map(f).collect()
    };
    array_from(&out_shape, out)
}

/// The function reducing one contiguous run for `op`.
fn reducer<T: Num>(op: &OpKind) -> OpResult<fn(&[T]) -> T> {
    fn fsum<T: Num>(r: &[T], f: impl Fn(f64) -> f64) -> f64 {
        r.iter().map(|v| f(v.to_f64())).sum()
    }
    fn isum<T: Num>(r: &[T], f: impl Fn(T) -> T) -> T {
        r.iter().fold(T::ZERO, |acc, &v| acc.add(f(v)))
    }
    Ok(match op {
        OpKind::ReduceSum => |r| {
            if T::IS_FLOAT {
                T::from_f64(fsum(r, |v| v))
            } else {
                isum(r, |v| v)
            }
        },
        OpKind::ReduceSumSquare => |r| {
            if T::IS_FLOAT {
                T::from_f64(fsum(r, |v| v * v))
            } else {
                isum(r, |v| v.mul(v))
            }
        },
        OpKind::ReduceL1 => |r| {
            if T::IS_FLOAT {
                T::from_f64(fsum(r, f64::abs))
            } else {
                isum(r, |v| v.abs())
            }
        },
        OpKind::ReduceL2 => |r| T::from_f64(fsum(r, |v| v * v).sqrt()),
        OpKind::ReduceMean => |r| {
            if T::IS_FLOAT {
                T::from_f64(fsum(r, |v| v) / r.len() as f64)
            } else if r.is_empty() {
                T::ZERO
            } else {
                // Integer mean: exact sum, truncating division.
                T::from_i128(r.iter().map(|v| v.to_i128()).sum::<i128>() / r.len() as i128)
            }
        },
        OpKind::ReduceProd => |r| {
            if T::IS_FLOAT {
                T::from_f64(r.iter().map(|v| v.to_f64()).product())
            } else {
                r.iter().fold(T::ONE, |acc, &v| acc.mul(v))
            }
        },
        OpKind::ReduceMax => |r| r.iter().fold(T::LOWEST, |m, &v| m.max_nan(v)),
        OpKind::ReduceMin => |r| r.iter().fold(T::HIGHEST, |m, &v| m.min_nan(v)),
        OpKind::ReduceLogSumExp => |r| {
            let max = r
                .iter()
                .map(|v| v.to_f64())
                .fold(f64::NEG_INFINITY, f64::max);
            if max.is_infinite() {
                // All −∞ (or empty): −∞; any +∞: +∞. Avoids ∞ − ∞.
                return T::from_f64(max);
            }
            T::from_f64(max + fsum(r, |v| (v - max).exp()).ln())
        },
        other => bail!("{other} is not a reduction"),
    })
}

/// ONNX ArgMax / ArgMin along `axis` (first occurrence unless `select_last_index`).
pub(crate) fn arg(op: &OpKind, attrs: &Attrs, inputs: &[Option<&Value>]) -> OpResult<Value> {
    let x = input(inputs, 0, "data")?;
    let rank = x.shape().len();
    let axis = norm_axis(attrs.int_or("axis", 0), rank.max(1))?;
    if rank == 0 {
        return Ok(Value::I64(array_from(&[], vec![0])?));
    }
    if x.shape()[axis] == 0 {
        bail!(
            "cannot take {op} over an empty axis {axis} of shape {:?}",
            x.shape()
        );
    }
    let keepdims = attrs.int_or("keepdims", 1) != 0;
    let last = attrs.int_or("select_last_index", 0) != 0;
    let max = *op == OpKind::ArgMax;
    let bytes;
    let x = match x {
        Value::Bool(a) => {
            bytes = Value::U8(a.mapv(u8::from));
            &bytes
        }
        other => other,
    };
    dispatch_num!(x, T => {
        let (data, _, run, out_shape) = grouped(typed::<T>(x, "data")?, &[axis], keepdims);
        let out: Vec<i64> = data
            .chunks(run)
            .map(|r| {
                let mut best = 0;
                for (i, v) in r.iter().enumerate().skip(1) {
                    let better = if max { *v > r[best] } else { *v < r[best] };
                    let tie = *v == r[best];
                    if better || (last && tie) {
                        best = i;
                    }
                }
                best as i64
            })
            .collect();
        Ok(Value::I64(array_from(&out_shape, out)?))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arr(shape: &[usize], v: &[f32]) -> ArrayD<f32> {
        ArrayD::from_shape_vec(IxDyn(shape), v.to_vec()).unwrap()
    }

    fn red(op: OpKind, a: &ArrayD<f32>, axes: &[usize], keep: bool) -> (Vec<usize>, Vec<f32>) {
        let r = reduce_t(&op, a, axes, keep).unwrap();
        (r.shape().to_vec(), r.iter().copied().collect())
    }

    #[test]
    fn reductions_over_axes() {
        let a = arr(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(
            red(OpKind::ReduceSum, &a, &[1], true),
            (vec![2, 1], vec![6.0, 15.0])
        );
        assert_eq!(
            red(OpKind::ReduceSum, &a, &[0], false),
            (vec![3], vec![5.0, 7.0, 9.0])
        );
        assert_eq!(
            red(OpKind::ReduceMean, &a, &[0, 1], false),
            (vec![], vec![3.5])
        );
        assert_eq!(
            red(OpKind::ReduceMax, &a, &[1], false),
            (vec![2], vec![3.0, 6.0])
        );
        assert_eq!(
            red(OpKind::ReduceProd, &a, &[0], false).1,
            vec![4.0, 10.0, 18.0]
        );
        assert_eq!(
            red(OpKind::ReduceL2, &arr(&[2], &[3.0, 4.0]), &[0], false).1,
            vec![5.0]
        );
        assert_eq!(
            red(OpKind::ReduceSumSquare, &a, &[], true),
            (vec![2, 3], vec![1.0, 4.0, 9.0, 16.0, 25.0, 36.0])
        );
        let lse = red(
            OpKind::ReduceLogSumExp,
            &arr(&[2], &[0.0, 0.0]),
            &[0],
            false,
        )
        .1[0];
        assert!((lse - std::f32::consts::LN_2).abs() < 1e-7);
    }

    #[test]
    fn empty_reductions_give_identities() {
        let e = arr(&[0, 2], &[]);
        assert_eq!(red(OpKind::ReduceSum, &e, &[0], false).1, vec![0.0, 0.0]);
        assert_eq!(red(OpKind::ReduceProd, &e, &[0], false).1, vec![1.0, 1.0]);
        assert_eq!(
            red(OpKind::ReduceMax, &e, &[0], false).1,
            vec![f32::NEG_INFINITY; 2]
        );
        assert_eq!(
            red(OpKind::ReduceLogSumExp, &e, &[0], false).1,
            vec![f32::NEG_INFINITY; 2]
        );
        assert_eq!(red(OpKind::ReduceSum, &e, &[1], true), (vec![0, 1], vec![]));
    }

    #[test]
    fn integer_mean_truncates() {
        let a = ArrayD::from_shape_vec(IxDyn(&[3]), vec![-1i32, -1, 1]).unwrap();
        let r = reduce_t(&OpKind::ReduceMean, &a, &[0], false).unwrap();
        assert_eq!(r.iter().copied().collect::<Vec<_>>(), vec![0]);
    }

    use crate::ops::testutil::{attrs, data, fails, run, v};
    use smelt_ir::{Attr, Attrs as A};

    #[test]
    fn arg_max_min() {
        let x = v(&[2, 3], &[1.0f32, 3.0, 3.0, 2.0, 0.0, 2.0]);
        let y = run(OpKind::ArgMax, &attrs(&[("axis", Attr::Int(1))]), &[&x]);
        assert_eq!(data::<i64>(&y), (vec![2, 1], vec![1, 0]));
        let last = attrs(&[
            ("axis", Attr::Int(-1)),
            ("select_last_index", Attr::Int(1)),
            ("keepdims", Attr::Int(0)),
        ]);
        assert_eq!(
            data::<i64>(&run(OpKind::ArgMax, &last, &[&x])),
            (vec![2], vec![2, 2])
        );
        assert_eq!(
            data::<i64>(&run(OpKind::ArgMin, &A::new(), &[&x])),
            (vec![1, 3], vec![0, 1, 1])
        );
        let empty = v(&[0, 2], &[] as &[f32]);
        assert!(fails(OpKind::ArgMax, &A::new(), &[&empty]).contains("empty"));
    }

    #[test]
    fn axes_from_input_or_attribute() {
        let x = v(&[2, 2], &[1i32, 2, 3, 4]);
        let axes = v(&[1], &[-1i64]);
        let y = run(
            OpKind::ReduceSum,
            &attrs(&[("keepdims", Attr::Int(0))]),
            &[&x, &axes],
        );
        assert_eq!(data::<i32>(&y), (vec![2], vec![3, 7]));
        let old = attrs(&[("axes", Attr::Ints(vec![0]))]);
        assert_eq!(
            data::<i32>(&run(OpKind::ReduceMax, &old, &[&x])),
            (vec![1, 2], vec![3, 4])
        );
        let none = v(&[0], &[] as &[i64]);
        assert_eq!(
            data::<i32>(&run(OpKind::ReduceProd, &A::new(), &[&x, &none])),
            (vec![1, 1], vec![24])
        );
        let noop = attrs(&[("noop_with_empty_axes", Attr::Int(1))]);
        assert_eq!(
            data::<i32>(&run(OpKind::ReduceSum, &noop, &[&x, &none])).1,
            vec![1, 2, 3, 4]
        );
        let b = v(&[2, 2], &[true, false, false, false]);
        assert_eq!(
            data::<bool>(&run(OpKind::ReduceMax, &old, &[&b])).1,
            vec![true, false]
        );
        assert!(
            fails(OpKind::ReduceSum, &A::new(), &[&x, &v(&[2], &[0i64, 0])]).contains("repeated")
        );
    }
}
