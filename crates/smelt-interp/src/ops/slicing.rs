//! Ops that cut tensors apart or put them together: Concat, Split, Slice and Gather.

use ndarray::{concatenate, ArrayD, ArrayViewD, Axis, Slice};
use smelt_ir::Attrs;

use super::{input, norm_axis, opt_input};
use crate::error::{bail, OpError, OpResult};
use crate::value::{array_from, dispatch_all, typed, Elem, Value};

/// ONNX Concat along `axis`.
pub(crate) fn concat(inputs: &[Option<&Value>], attrs: &Attrs) -> OpResult<Value> {
    let parts: Vec<&Value> = inputs.iter().flatten().copied().collect();
    let Some(&first) = parts.first() else {
        bail!("needs at least one input")
    };
    let rank = first.shape().len();
    let Some(axis) = attrs.int("axis") else {
        bail!("missing attribute axis")
    };
    let axis = norm_axis(axis, rank)?;
    for p in &parts {
        let s = p.shape();
        let fits = s.len() == rank
            && s.iter()
                .zip(first.shape())
                .enumerate()
                .all(|(i, (a, b))| i == axis || a == b);
        if !fits {
            bail!(
                "cannot concatenate shape {s:?} with {:?} along axis {axis}",
                first.shape()
            );
        }
    }
    dispatch_all!(first, T => {
        let views: Vec<ArrayViewD<T>> =
            parts.iter().map(|p| typed::<T>(p, "input").map(|a| a.view())).collect::<OpResult<_>>()?;
        Ok(T::into_value(concatenate(Axis(axis), &views).map_err(|e| OpError::new(e.to_string()))?))
    })
}

/// ONNX Split into `num_outputs` pieces: by the `split` input (or attribute), by the
/// `num_outputs` attribute (last piece smaller), or evenly.
pub(crate) fn split(
    inputs: &[Option<&Value>],
    attrs: &Attrs,
    num_outputs: usize,
) -> OpResult<Vec<Value>> {
    let data = input(inputs, 0, "input")?;
    let shape = data.shape();
    let axis = norm_axis(attrs.int_or("axis", 0), shape.len())?;
    let dim = shape[axis];
    let explicit = match opt_input(inputs, 1) {
        Some(s) => Some(s.to_i64_vec("split")?),
        None => attrs.ints("split").map(<[i64]>::to_vec),
    };
    let sizes: Vec<usize> = if let Some(s) = explicit {
        if s.iter().any(|&v| v < 0) || s.iter().map(|&v| i128::from(v)).sum::<i128>() != dim as i128
        {
            bail!("split {s:?} does not add up to dim {dim} of axis {axis}");
        }
        s.iter().map(|&v| v as usize).collect()
    } else if let Some(n) = attrs.int("num_outputs") {
        if n <= 0 {
            bail!("num_outputs must be positive, got {n}");
        }
        let n = n as usize;
        let chunk = dim.div_ceil(n);
        if chunk * (n - 1) > dim {
            bail!("dim {dim} cannot be split into {n} pieces of {chunk}");
        }
        (0..n)
            .map(|i| {
                if i + 1 < n {
                    chunk
                } else {
                    dim - chunk * (n - 1)
                }
            })
            .collect()
    } else {
        let n = num_outputs.max(1);
        if dim.rem_euclid(n) > 0 {
            bail!("dim {dim} of axis {axis} does not split evenly into {n} outputs");
        }
        vec![dim / n; n]
    };
    if sizes.len() < num_outputs {
        bail!(
            "split yields {} pieces but the node has {num_outputs} outputs",
            sizes.len()
        );
    }
    dispatch_all!(data, T => {
        let a = typed::<T>(data, "input")?;
        let mut start = 0;
        let mut out = Vec::with_capacity(sizes.len());
        for &n in &sizes {
            let piece = a.slice_axis(Axis(axis), Slice::from(start..start + n));
            out.push(T::into_value(piece.as_standard_layout().into_owned()));
            start += n;
        }
        Ok(out)
    })
}

/// Start, end (exclusive, may be −1 for negative steps) and step of one sliced axis,
/// clamped like ONNX/numpy.
fn slice_bounds(start: i64, end: i64, step: i64, dim: usize) -> (i64, i64) {
    let d = dim as i64;
    let wrap = |v: i64| if v < 0 { v.saturating_add(d) } else { v };
    let (s, e) = (wrap(start), wrap(end));
    if step > 0 {
        (s.clamp(0, d), e.clamp(0, d))
    } else {
        (s.clamp(0, (d - 1).max(0)), e.clamp(-1, d - 1))
    }
}

/// ONNX Slice with optional axes and steps (negative steps walk backwards).
pub(crate) fn slice(inputs: &[Option<&Value>]) -> OpResult<Value> {
    let data = input(inputs, 0, "data")?;
    let shape = data.shape().to_vec();
    let starts = input(inputs, 1, "starts")?.to_i64_vec("starts")?;
    let ends = input(inputs, 2, "ends")?.to_i64_vec("ends")?;
    let axes = match opt_input(inputs, 3) {
        Some(a) => super::norm_axes(&a.to_i64_vec("axes")?, shape.len())?,
        None => (0..starts.len()).collect(),
    };
    let steps = match opt_input(inputs, 4) {
        Some(s) => s.to_i64_vec("steps")?,
        None => vec![1; starts.len()],
    };
    if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
        bail!(
            "starts ({}), ends ({}), axes ({}) and steps ({}) must have the same length",
            starts.len(),
            ends.len(),
            axes.len(),
            steps.len()
        );
    }
    if axes.iter().any(|&a| a >= shape.len()) {
        bail!("axes {axes:?} out of range for rank {}", shape.len());
    }
    // ndarray slices a range [lo, hi) and, for a negative step, walks it from the end.
    let mut cuts = vec![];
    for i in 0..starts.len() {
        let step = steps[i];
        if step == 0 {
            bail!("step must not be zero");
        }
        let dim = shape[axes[i]];
        let (s, e) = slice_bounds(starts[i], ends[i], step, dim);
        let (lo, hi) = if dim == 0 {
            (0, 0)
        } else if step > 0 {
            if s < e {
                (s, e)
            } else {
                (0, 0)
            }
        } else if s > e {
            // The last index visited, so ndarray's [lo, hi) walked backwards matches.
            let stride = -i128::from(step);
            let count = (i128::from(s - e) + stride - 1) / stride;
            ((i128::from(s) - (count - 1) * stride) as i64, s + 1)
        } else {
            (0, 0)
        };
        // A step longer than the axis takes at most one element, like a step of `dim`.
        let d = (dim as i64).max(1);
        cuts.push((
            axes[i],
            Slice::new(lo as isize, Some(hi as isize), step.clamp(-d, d) as isize),
        ));
    }
    dispatch_all!(data, T => {
        let mut v = typed::<T>(data, "data")?.view();
        for &(axis, s) in &cuts {
            v.slice_axis_inplace(Axis(axis), s);
        }
        Ok(T::into_value(v.as_standard_layout().into_owned()))
    })
}

/// ONNX Gather along `axis`; negative indices count from the back.
pub(crate) fn gather(inputs: &[Option<&Value>], attrs: &Attrs) -> OpResult<Value> {
    let data = input(inputs, 0, "data")?;
    let indices_v = input(inputs, 1, "indices")?;
    if !matches!(indices_v, Value::I64(_) | Value::I32(_)) {
        bail!("indices must be i32 or i64, got {}", indices_v.dtype());
    }
    let indices = indices_v.to_i64_vec("indices")?;
    let shape = data.shape();
    let axis = norm_axis(attrs.int_or("axis", 0), shape.len())?;
    let dim = shape[axis] as i64;
    let idx: Vec<usize> = indices
        .iter()
        .map(|&i| {
            let j = if i < 0 { i + dim } else { i };
            if (0..dim).contains(&j) {
                Ok(j as usize)
            } else {
                Err(OpError::new(format!(
                    "index {i} is out of range for axis {axis} of size {dim}"
                )))
            }
        })
        .collect::<OpResult<_>>()?;
    let mut out_shape = shape[..axis].to_vec();
    out_shape.extend_from_slice(indices_v.shape());
    out_shape.extend_from_slice(&shape[axis + 1..]);
    dispatch_all!(data, T => {
        let a = typed::<T>(data, "data")?;
        Ok(T::into_value(gather_t(a, axis, &idx, &out_shape)?))
    })
}

fn gather_t<T: Elem>(
    a: &ArrayD<T>,
    axis: usize,
    idx: &[usize],
    out_shape: &[usize],
) -> OpResult<ArrayD<T>> {
    let a = a.as_standard_layout();
    let data = a
        .as_slice()
        .ok_or_else(|| OpError::new("internal: gather source not contiguous"))?;
    let shape = a.shape();
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    let dim = shape[axis];
    // Each index selects a contiguous run of `inner` elements in every outer block.
    let mut out = Vec::with_capacity(outer * idx.len() * inner);
    for o in 0..outer {
        for &i in idx {
            let at = (o * dim + i) * inner;
            out.extend_from_slice(&data[at..at + inner]);
        }
    }
    array_from(out_shape, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slice_bounds_clamp() {
        assert_eq!(slice_bounds(0, i64::MAX, 1, 5), (0, 5));
        assert_eq!(slice_bounds(-2, -1, 1, 5), (3, 4));
        assert_eq!(slice_bounds(-1, i64::MIN, -1, 5), (4, -1));
        assert_eq!(slice_bounds(10, -10, -2, 5), (4, -1));
        assert_eq!(slice_bounds(0, 3, 1, 0), (0, 0));
    }

    use crate::ops::testutil::{attrs, data, fails, run, run_n, v};
    use smelt_ir::{Attr, Attrs, OpKind};

    fn i(v_: &[i64]) -> crate::value::Value {
        v(&[v_.len()], v_)
    }

    #[test]
    fn slices_forward_backward_and_clamped() {
        let x = v(&[2, 6], &(0..12).collect::<Vec<i32>>());
        let y = run(
            OpKind::Slice,
            &Attrs::new(),
            &[&x, &i(&[-1]), &i(&[-100]), &i(&[-1]), &i(&[-2])],
        );
        assert_eq!(data::<i32>(&y), (vec![2, 3], vec![5, 3, 1, 11, 9, 7]));
        let y = run(
            OpKind::Slice,
            &Attrs::new(),
            &[
                &x,
                &i(&[1, 2]),
                &i(&[i64::MAX, 100]),
                &i(&[0, 1]),
                &i(&[1, 3]),
            ],
        );
        assert_eq!(data::<i32>(&y), (vec![1, 2], vec![8, 11]));
        let y = run(OpKind::Slice, &Attrs::new(), &[&x, &i(&[4]), &i(&[2])]);
        assert_eq!(data::<i32>(&y).0, vec![0, 6]);
        assert!(fails(
            OpKind::Slice,
            &Attrs::new(),
            &[&x, &i(&[0]), &i(&[1]), &i(&[0]), &i(&[0])]
        )
        .contains("step"));
    }

    #[test]
    fn gathers_with_negative_and_scalar_indices() {
        let x = v(&[3, 2], &[1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let y = run(OpKind::Gather, &Attrs::new(), &[&x, &v(&[2], &[-1i64, 0])]);
        assert_eq!(data::<f32>(&y), (vec![2, 2], vec![5.0, 6.0, 1.0, 2.0]));
        let y = run(
            OpKind::Gather,
            &attrs(&[("axis", Attr::Int(1))]),
            &[&x, &v(&[], &[1i32])],
        );
        assert_eq!(data::<f32>(&y), (vec![3], vec![2.0, 4.0, 6.0]));
        assert!(
            fails(OpKind::Gather, &Attrs::new(), &[&x, &v(&[1], &[3i64])]).contains("out of range")
        );
        let s = v(&[2], &["a".to_string(), "b".to_string()]);
        let y = run(
            OpKind::Gather,
            &Attrs::new(),
            &[&s, &v(&[3], &[1i64, 1, 0])],
        );
        assert_eq!(data::<String>(&y).1, vec!["b", "b", "a"]);
    }

    #[test]
    fn splits_and_concats() {
        let x = v(&[7], &(0..7).collect::<Vec<i64>>());
        let out = run_n(
            OpKind::Split,
            &attrs(&[("num_outputs", Attr::Int(3))]),
            &[Some(&x)],
            3,
        );
        let sizes: Vec<usize> = out.iter().map(|o| o.shape()[0]).collect();
        assert_eq!(sizes, vec![3, 3, 1]);
        let out = run_n(
            OpKind::Split,
            &Attrs::new(),
            &[Some(&x), Some(&i(&[2, 5]))],
            2,
        );
        assert_eq!(data::<i64>(&out[1]).1, vec![2, 3, 4, 5, 6]);
        let even = v(&[4, 1], &[1u8, 2, 3, 4]);
        let out = run_n(OpKind::Split, &Attrs::new(), &[Some(&even)], 2);
        assert_eq!(data::<u8>(&out[1]), (vec![2, 1], vec![3, 4]));
        assert!(crate::ops::eval(&OpKind::Split, &Attrs::new(), &[Some(&x)], 2).is_err());
        let a = v(&[2, 1], &[1.0f32, 2.0]);
        let b = v(&[2, 0], &[] as &[f32]);
        let c = v(&[2, 2], &[3.0f32, 4.0, 5.0, 6.0]);
        let y = run(
            OpKind::Concat,
            &attrs(&[("axis", Attr::Int(-1))]),
            &[&a, &b, &c],
        );
        assert_eq!(
            data::<f32>(&y),
            (vec![2, 3], vec![1.0, 3.0, 4.0, 2.0, 5.0, 6.0])
        );
        assert!(
            fails(OpKind::Concat, &attrs(&[("axis", Attr::Int(0))]), &[&a, &c])
                .contains("cannot concatenate")
        );
    }
}
