//! Shape and data-movement ops: Reshape, Flatten, Transpose, Squeeze, Unsqueeze,
//! Expand, Tile, Shape, Size, Range, ConstantOfShape, Identity and Dropout.
//!
//! These work on every element type (strings and bools included); low-bit codes are
//! moved as bytes by the dispatcher.

use ndarray::{concatenate, ArrayD, Axis, IxDyn};
use smelt_ir::Attrs;

use super::broadcast::broadcast_shapes;
use super::{axes_input, checked_len, input, norm_axis, opt_input};
use crate::error::{bail, OpError, OpResult};
use crate::num::Num;
use crate::value::{array_from, dispatch_all, dispatch_num, to_std_vec, typed, Elem, Value};

/// `a`'s elements in standard order under a new shape of the same element count.
pub(crate) fn reshaped<T: Clone>(a: &ArrayD<T>, shape: &[usize]) -> OpResult<ArrayD<T>> {
    let n: usize = shape.iter().product();
    if n != a.len() {
        bail!(
            "cannot reshape {:?} ({} elements) to {shape:?} ({n} elements)",
            a.shape(),
            a.len()
        );
    }
    array_from(shape, to_std_vec(a))
}

/// Reshape a value of any type.
pub(crate) fn reshape_value(v: &Value, shape: &[usize]) -> OpResult<Value> {
    dispatch_all!(v, T => Ok(T::into_value(reshaped(typed::<T>(v, "input")?, shape)?)))
}

/// The output shape of ONNX Reshape: `0` copies the input dim (unless `allowzero`), `-1`
/// is inferred from the element count.
fn reshape_target(input: &[usize], spec: &[i64], allowzero: bool) -> OpResult<Vec<usize>> {
    let mut out = Vec::with_capacity(spec.len());
    let mut infer = None;
    for (i, &d) in spec.iter().enumerate() {
        match d {
            -1 => {
                if infer.replace(i).is_some() {
                    bail!("shape {spec:?} has more than one -1");
                }
                out.push(1);
            }
            0 if !allowzero => match input.get(i) {
                Some(&d) => out.push(d),
                None => bail!(
                    "shape {spec:?} copies dim {i} (a 0) but the input {input:?} has rank {}",
                    input.len()
                ),
            },
            d if d < 0 => bail!("shape {spec:?} has a negative dim {d}"),
            d => out.push(d as usize),
        }
    }
    let total: usize = input.iter().product();
    checked_len(&out)?;
    if let Some(i) = infer {
        if allowzero && spec.contains(&0) {
            bail!("shape {spec:?} mixes -1 with a literal 0 under allowzero");
        }
        let known: usize = out
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, d)| d)
            .product();
        if known == 0 || total.rem_euclid(known) > 0 {
            bail!("cannot infer the -1 in {spec:?} for input shape {input:?}");
        }
        out[i] = total / known;
    }
    if out.iter().product::<usize>() != total {
        bail!("cannot reshape {input:?} ({total} elements) to {spec:?}");
    }
    Ok(out)
}

/// ONNX Reshape.
pub(crate) fn reshape(inputs: &[Option<&Value>], attrs: &Attrs) -> OpResult<Value> {
    let data = input(inputs, 0, "data")?;
    let spec = input(inputs, 1, "shape")?.to_i64_vec("shape")?;
    let target = reshape_target(data.shape(), &spec, attrs.int_or("allowzero", 0) != 0)?;
    reshape_value(data, &target)
}

/// ONNX Flatten: a 2-D view splitting the dims at `axis`.
pub(crate) fn flatten(inputs: &[Option<&Value>], attrs: &Attrs) -> OpResult<Value> {
    let data = input(inputs, 0, "input")?;
    let shape = data.shape();
    let rank = shape.len() as i64;
    let axis = attrs.int_or("axis", 1);
    if axis < -rank || axis > rank {
        bail!("axis {axis} is out of range for rank {rank}");
    }
    let axis = if axis < 0 { axis + rank } else { axis } as usize;
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis..].iter().product();
    reshape_value(data, &[outer, inner])
}

/// ONNX Transpose (`perm` defaults to reversing the dims).
pub(crate) fn transpose(inputs: &[Option<&Value>], attrs: &Attrs) -> OpResult<Value> {
    let data = input(inputs, 0, "data")?;
    let rank = data.shape().len();
    let perm: Vec<usize> = match attrs.ints("perm") {
        Some(p) => p
            .iter()
            .map(|&a| norm_axis(a, rank))
            .collect::<OpResult<_>>()?,
        None => (0..rank).rev().collect(),
    };
    let mut seen = vec![false; rank];
    if perm.len() != rank || perm.iter().any(|&a| std::mem::replace(&mut seen[a], true)) {
        bail!("perm {perm:?} is not a permutation of {rank} axes");
    }
    dispatch_all!(data, T => {
        let a = typed::<T>(data, "data")?;
        Ok(T::into_value(a.view().permuted_axes(IxDyn(&perm)).as_standard_layout().into_owned()))
    })
}

/// ONNX Squeeze: drop the listed size-1 dims (all size-1 dims when no axes are given).
pub(crate) fn squeeze(inputs: &[Option<&Value>], attrs: &Attrs) -> OpResult<Value> {
    let data = input(inputs, 0, "data")?;
    let shape = data.shape();
    let axes = match axes_input(inputs, 1, attrs)? {
        Some(a) => super::norm_axes(&a, shape.len())?,
        None => (0..shape.len()).filter(|&i| shape[i] == 1).collect(),
    };
    for &a in &axes {
        if shape[a] != 1 {
            bail!("cannot squeeze axis {a} of shape {shape:?}: its size is not 1");
        }
    }
    let out: Vec<usize> = shape
        .iter()
        .enumerate()
        .filter(|(i, _)| !axes.contains(i))
        .map(|(_, &d)| d)
        .collect();
    reshape_value(data, &out)
}

/// ONNX Unsqueeze: insert size-1 dims at the listed positions of the output.
pub(crate) fn unsqueeze(inputs: &[Option<&Value>], attrs: &Attrs) -> OpResult<Value> {
    let data = input(inputs, 0, "data")?;
    let shape = data.shape();
    let Some(axes) = axes_input(inputs, 1, attrs)? else {
        bail!("missing axes")
    };
    let out_rank = shape.len() + axes.len();
    let axes = super::norm_axes(&axes, out_rank)?;
    let mut rest = shape.iter();
    let out: Vec<usize> = (0..out_rank)
        .map(|i| {
            if axes.contains(&i) {
                1
            } else {
                rest.next().copied().unwrap_or(1)
            }
        })
        .collect();
    reshape_value(data, &out)
}

/// ONNX Expand: broadcast the input against `shape` (bidirectionally).
pub(crate) fn expand(inputs: &[Option<&Value>]) -> OpResult<Value> {
    let data = input(inputs, 0, "input")?;
    let spec = input(inputs, 1, "shape")?.to_i64_vec("shape")?;
    if spec.iter().any(|&d| d < 0) {
        bail!("shape {spec:?} has a negative dim");
    }
    let spec: Vec<usize> = spec.iter().map(|&d| d as usize).collect();
    let out = broadcast_shapes(&[data.shape(), &spec])?;
    checked_len(&out)?;
    dispatch_all!(data, T => {
        let a = typed::<T>(data, "input")?;
        match a.broadcast(IxDyn(&out)) {
            Some(v) => Ok(T::into_value(v.as_standard_layout().into_owned())),
            None => bail!("shape {:?} does not broadcast to {out:?}", a.shape()),
        }
    })
}

/// ONNX Tile: repeat the input `repeats[i]` times along each axis.
pub(crate) fn tile(inputs: &[Option<&Value>]) -> OpResult<Value> {
    let data = input(inputs, 0, "input")?;
    let reps = input(inputs, 1, "repeats")?.to_i64_vec("repeats")?;
    if reps.len() != data.shape().len() || reps.iter().any(|&r| r < 0) {
        bail!(
            "repeats {reps:?} must be {} non-negative counts for shape {:?}",
            data.shape().len(),
            data.shape()
        );
    }
    let out: Vec<usize> = data
        .shape()
        .iter()
        .zip(&reps)
        .map(|(&d, &r)| d.saturating_mul(r as usize))
        .collect();
    let empty = checked_len(&out)? == 0;
    dispatch_all!(data, T => {
        if empty {
            // Nothing to copy (and a repeat count may be huge when a dim is 0).
            return Ok(T::into_value(ArrayD::<T>::default(IxDyn(&out))));
        }
        let mut a = typed::<T>(data, "input")?.clone();
        for (axis, &r) in reps.iter().enumerate() {
            if r != 1 {
                let copies = vec![a.view(); r as usize];
                a = concatenate(Axis(axis), &copies).map_err(|e| OpError::new(e.to_string()))?;
            }
        }
        Ok(T::into_value(a))
    })
}

/// ONNX Shape with optional `start`/`end` (negative counts from the back, clamped).
pub(crate) fn shape_of(inputs: &[Option<&Value>], attrs: &Attrs) -> OpResult<Value> {
    let shape = input(inputs, 0, "data")?.shape();
    let rank = shape.len() as i64;
    let clamp = |v: i64| (if v < 0 { v + rank } else { v }).clamp(0, rank) as usize;
    let start = clamp(attrs.int_or("start", 0));
    let end = clamp(attrs.int_or("end", rank));
    let dims: Vec<i64> = if start < end {
        shape[start..end].iter().map(|&d| d as i64).collect()
    } else {
        vec![]
    };
    Ok(Value::I64(array_from(&[dims.len()], dims)?))
}

/// ONNX Size: the element count as an i64 scalar.
pub(crate) fn size(inputs: &[Option<&Value>]) -> OpResult<Value> {
    let n = input(inputs, 0, "data")?.len() as i64;
    Ok(Value::I64(array_from(&[], vec![n])?))
}

/// The single element of a scalar (or one-element) input.
fn scalar<T: Elem>(v: &Value, what: &str) -> OpResult<T> {
    let a = typed::<T>(v, what)?;
    if a.len() != 1 {
        bail!("{what} must hold one element, has shape {:?}", a.shape());
    }
    Ok(a.iter().next().cloned().unwrap_or_default())
}

/// ONNX Range: `start, start + delta, ...` up to (excluding) `limit`.
pub(crate) fn range(inputs: &[Option<&Value>]) -> OpResult<Value> {
    let start_v = input(inputs, 0, "start")?;
    dispatch_num!(start_v, T => {
        let start: T = scalar(start_v, "start")?;
        let limit: T = scalar(input(inputs, 1, "limit")?, "limit")?;
        let delta: T = scalar(input(inputs, 2, "delta")?, "delta")?;
        if delta.is_zero() {
            bail!("delta must not be zero");
        }
        let values = range_values(start, limit, delta)?;
        Ok(T::into_value(array_from(&[values.len()], values)?))
    })
}

/// Range's `stash_type` (opset 27): f16 and bf16 inputs accumulate in f32 (code 1, the
/// default, which is how [`range`] computes them); accumulating in the half type itself
/// is not supported and is refused rather than computed differently.
pub(crate) fn check_range_stash(inputs: &[Option<&Value>], attrs: &Attrs) -> OpResult<()> {
    let half = matches!(inputs.first(), Some(Some(Value::F16(_) | Value::BF16(_))));
    match attrs.int_or("stash_type", 1) {
        1 => Ok(()),
        _ if !half => Ok(()),
        code => {
            bail!("stash_type = {code} (accumulating in a type other than f32) is not supported")
        }
    }
}

fn range_values<T: Num>(start: T, limit: T, delta: T) -> OpResult<Vec<T>> {
    let n = if T::IS_FLOAT {
        ((limit.to_f64() - start.to_f64()) / delta.to_f64()).ceil()
    } else {
        // Exact ceiling division on integers.
        let (span, d) = (limit.to_i128() - start.to_i128(), delta.to_i128());
        let (q, r) = (span / d, span % d);
        (q + i128::from(r != 0 && (r > 0) == (d > 0))) as f64
    };
    let n = if n.is_nan() || n < 0.0 { 0.0 } else { n };
    if n > super::MAX_ELEMENTS as f64 {
        bail!(
            "a range of {n} elements is too large (the limit is {})",
            super::MAX_ELEMENTS
        );
    }
    // Accumulate like the ONNX function body (and onnxruntime) do, so float results
    // round the same way.
    let mut out = Vec::with_capacity(n as usize);
    let mut v = start;
    for _ in 0..n as usize {
        out.push(v);
        v = v.add(delta);
    }
    Ok(out)
}

/// ONNX ConstantOfShape: a tensor of the given shape filled with `value` (f32 0 by default).
pub(crate) fn constant_of_shape(inputs: &[Option<&Value>], attrs: &Attrs) -> OpResult<Value> {
    let spec = input(inputs, 0, "input")?.to_i64_vec("input")?;
    if spec.iter().any(|&d| d < 0) {
        bail!("shape {spec:?} has a negative dim");
    }
    let shape: Vec<usize> = spec.iter().map(|&d| d as usize).collect();
    checked_len(&shape)?;
    let value = match attrs.tensor("value") {
        Some(t) => Value::from_tensor(t)?,
        None => Value::F32(array_from(&[], vec![0.0])?),
    };
    if value.len() != 1 {
        bail!("value must hold one element, has shape {:?}", value.shape());
    }
    if let Value::Packed { dtype, codes } = &value {
        let c = codes.iter().next().copied().unwrap_or(0);
        return Ok(Value::Packed {
            dtype: *dtype,
            codes: ArrayD::from_elem(IxDyn(&shape), c),
        });
    }
    dispatch_all!(&value, T => {
        let a = typed::<T>(&value, "value")?;
        let v = a.iter().next().cloned().unwrap_or_default();
        Ok(T::into_value(ArrayD::from_elem(IxDyn(&shape), v)))
    })
}

/// ONNX Dropout in inference: the input unchanged and, if asked for, an all-true mask.
pub(crate) fn dropout(inputs: &[Option<&Value>], num_outputs: usize) -> OpResult<Vec<Value>> {
    let data = input(inputs, 0, "data")?;
    if let Some(t) = opt_input(inputs, 2) {
        let ratio = match opt_input(inputs, 1) {
            Some(r) => r.to_f64_vec("ratio")?.first().copied().unwrap_or(0.5),
            None => 0.5,
        };
        if t.to_i64_vec("training_mode")?.iter().any(|&m| m != 0) && ratio != 0.0 {
            bail!("training-mode dropout is random and not supported");
        }
    }
    let mut out = vec![data.clone()];
    if num_outputs > 1 {
        out.push(Value::Bool(ArrayD::from_elem(IxDyn(data.shape()), true)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reshape_targets() {
        assert_eq!(
            reshape_target(&[2, 3, 4], &[0, -1], false).unwrap(),
            vec![2, 12]
        );
        assert_eq!(reshape_target(&[2, 3, 4], &[-1], false).unwrap(), vec![24]);
        assert_eq!(reshape_target(&[0, 3], &[0, 3], true).unwrap(), vec![0, 3]);
        assert!(reshape_target(&[2, 3], &[-1, -1], false).is_err());
        assert!(reshape_target(&[2, 3], &[4, -1], false).is_err());
        assert!(reshape_target(&[2, 3], &[7], false).is_err());
        assert!(reshape_target(&[2, 3], &[i64::MAX, i64::MAX, 0], true).is_err());
    }

    #[test]
    fn range_stash_types() {
        let h = Value::F16(array_from(&[], vec![half::f16::ONE]).unwrap());
        let f = Value::F32(array_from(&[], vec![1.0f32]).unwrap());
        let stash = |c: i64| Attrs::new().with("stash_type", smelt_ir::Attr::Int(c));
        assert!(check_range_stash(&[Some(&h)], &Attrs::new()).is_ok());
        assert!(check_range_stash(&[Some(&h)], &stash(1)).is_ok());
        assert!(check_range_stash(&[Some(&f)], &stash(10)).is_ok());
        assert!(check_range_stash(&[Some(&h)], &stash(10)).is_err());
    }

    #[test]
    fn ranges() {
        assert_eq!(range_values(0i64, 5, 2).unwrap(), vec![0, 2, 4]);
        assert_eq!(range_values(5i32, 0, -2).unwrap(), vec![5, 3, 1]);
        assert_eq!(range_values(0i64, 0, 1).unwrap(), Vec::<i64>::new());
        assert_eq!(
            range_values(1.0f32, 2.0, 0.25).unwrap(),
            vec![1.0, 1.25, 1.5, 1.75]
        );
        assert_eq!(range_values(3i64, 0, 1).unwrap(), Vec::<i64>::new());
    }

    use crate::ops::testutil::{attrs, data, fails, run, run_n, v};
    use smelt_ir::{Attr, OpKind, Tensor};

    fn i(v_: &[i64]) -> Value {
        v(&[v_.len()], v_)
    }

    #[test]
    fn transposes_and_flattens() {
        let x = v(&[2, 3], &[1i32, 2, 3, 4, 5, 6]);
        assert_eq!(
            data::<i32>(&run(OpKind::Transpose, &Attrs::new(), &[&x])),
            (vec![3, 2], vec![1, 4, 2, 5, 3, 6])
        );
        let x3 = v(&[1, 2, 3], &[1i32, 2, 3, 4, 5, 6]);
        let y = run(
            OpKind::Transpose,
            &attrs(&[("perm", Attr::Ints(vec![2, 0, 1]))]),
            &[&x3],
        );
        assert_eq!(data::<i32>(&y), (vec![3, 1, 2], vec![1, 4, 2, 5, 3, 6]));
        assert!(fails(
            OpKind::Transpose,
            &attrs(&[("perm", Attr::Ints(vec![0, 0]))]),
            &[&x]
        )
        .contains("permutation"));
        assert_eq!(
            run(OpKind::Flatten, &attrs(&[("axis", Attr::Int(0))]), &[&x3]).shape(),
            &[1, 6]
        );
        assert_eq!(
            run(OpKind::Flatten, &attrs(&[("axis", Attr::Int(-1))]), &[&x3]).shape(),
            &[2, 3]
        );
        let scalar = v(&[], &[1.0f32]);
        assert_eq!(
            run(
                OpKind::Flatten,
                &attrs(&[("axis", Attr::Int(0))]),
                &[&scalar]
            )
            .shape(),
            &[1, 1]
        );
        assert!(fails(OpKind::Flatten, &Attrs::new(), &[&scalar]).contains("out of range"));
    }

    #[test]
    fn squeezes_and_unsqueezes() {
        let x = v(&[1, 3, 1], &[1u8, 2, 3]);
        assert_eq!(run(OpKind::Squeeze, &Attrs::new(), &[&x]).shape(), &[3]);
        assert_eq!(
            run(OpKind::Squeeze, &Attrs::new(), &[&x, &i(&[-1])]).shape(),
            &[1, 3]
        );
        assert!(fails(OpKind::Squeeze, &Attrs::new(), &[&x, &i(&[1])]).contains("not 1"));
        assert_eq!(
            run(OpKind::Unsqueeze, &Attrs::new(), &[&x, &i(&[0, -1])]).shape(),
            &[1, 1, 3, 1, 1]
        );
        let s = v(&[], &[7i64]);
        assert_eq!(
            run(OpKind::Unsqueeze, &Attrs::new(), &[&s, &i(&[0])]).shape(),
            &[1]
        );
        assert!(fails(OpKind::Unsqueeze, &Attrs::new(), &[&s, &i(&[0, 0])]).contains("repeated"));
        // Older opsets give axes as an attribute.
        let old = attrs(&[("axes", Attr::Ints(vec![0]))]);
        assert_eq!(run(OpKind::Unsqueeze, &old, &[&s.clone()]).shape(), &[1]);
    }

    #[test]
    fn reshapes_expands_tiles() {
        let x = v(&[2, 3], &[1i64, 2, 3, 4, 5, 6]);
        assert_eq!(
            run(OpKind::Reshape, &Attrs::new(), &[&x, &i(&[3, -1])]).shape(),
            &[3, 2]
        );
        let e = v(&[0, 3], &[] as &[i64]);
        let y = run(
            OpKind::Reshape,
            &attrs(&[("allowzero", Attr::Int(1))]),
            &[&e, &i(&[3, 0])],
        );
        assert_eq!(y.shape(), &[3, 0]);
        let col = v(&[2, 1], &[1.0f32, 2.0]);
        let y = run(OpKind::Expand, &Attrs::new(), &[&col, &i(&[2, 1, 3])]);
        assert_eq!(
            data::<f32>(&y),
            (vec![2, 2, 3], [[1.0f32; 3], [2.0; 3]].concat().repeat(2))
        );
        let y = run(OpKind::Tile, &Attrs::new(), &[&col, &i(&[2, 2])]);
        assert_eq!(
            data::<f32>(&y),
            (vec![4, 2], vec![1.0, 1.0, 2.0, 2.0, 1.0, 1.0, 2.0, 2.0])
        );
        assert_eq!(
            run(OpKind::Tile, &Attrs::new(), &[&col, &i(&[0, 1])]).shape(),
            &[0, 1]
        );
    }

    #[test]
    fn shape_size_constant_of_shape_dropout() {
        let x = v(&[2, 3, 4, 5], &[0u8; 120]);
        assert_eq!(
            data::<i64>(&run(OpKind::Shape, &Attrs::new(), &[&x])).1,
            vec![2, 3, 4, 5]
        );
        let a = attrs(&[("start", Attr::Int(1)), ("end", Attr::Int(-1))]);
        assert_eq!(data::<i64>(&run(OpKind::Shape, &a, &[&x])).1, vec![3, 4]);
        assert_eq!(
            data::<i64>(&run(OpKind::Size, &Attrs::new(), &[&x])),
            (vec![], vec![120])
        );
        let y = run(OpKind::ConstantOfShape, &Attrs::new(), &[&i(&[2])]);
        assert_eq!(data::<f32>(&y), (vec![2], vec![0.0, 0.0]));
        let seven = attrs(&[(
            "value",
            Attr::Tensor(Tensor::from_vec(vec![1], vec![7i32]).unwrap()),
        )]);
        assert_eq!(
            data::<i32>(&run(OpKind::ConstantOfShape, &seven, &[&i(&[1, 2])])),
            (vec![1, 2], vec![7, 7])
        );
        assert_eq!(
            run(OpKind::ConstantOfShape, &seven, &[&i(&[])]).shape(),
            &[] as &[usize]
        );
        let out = run_n(OpKind::Dropout, &Attrs::new(), &[Some(&x)], 2);
        assert_eq!(out[0], x);
        assert!(data::<bool>(&out[1]).1.iter().all(|&m| m));
        let r = run(
            OpKind::Range,
            &Attrs::new(),
            &[&v(&[], &[10i32]), &v(&[], &[1]), &v(&[], &[-3])],
        );
        assert_eq!(data::<i32>(&r).1, vec![10, 7, 4]);
    }
}
