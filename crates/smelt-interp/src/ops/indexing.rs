//! Indexing and data-rearranging ops: GatherElements, GatherND, ScatterElements,
//! ScatterND, Trilu, TopK, CumSum, CumProd, OneHot, NonZero, Unique, Compress,
//! ReverseSequence, DepthToSpace, SpaceToDepth, EyeLike, Pad, CenterCropPad and BitCast.
//!
//! Kernels work on flat standard-order element vectors and explicit index arithmetic,
//! which keeps every op a direct reading of its ONNX definition.

// The kernels are stamped out by `dispatch_all!` for every element type, strings
// included, so element copies are written `.clone()` even where the type is `Copy`.
#![allow(clippy::clone_on_copy)]

use std::cmp::Ordering;

use ndarray::{ArrayD, IxDyn};
use smelt_ir::{Attrs, DType, OpKind, Tensor};

use super::{checked_len, input, norm_axis, opt_input, via_f32, with_codes};
use crate::error::{bail, OpError, OpResult};
use crate::num::Num;
use crate::value::{array_from, dispatch_all, dispatch_num, to_std_vec, typed, Elem, Value};

/// Evaluate one of this module's ops. Pure data movement sees low-bit codes as bytes;
/// ops that compare or compute see half floats widened to f32.
pub(crate) fn eval(
    op: &OpKind,
    attrs: &Attrs,
    inputs: &[Option<&Value>],
    num_outputs: usize,
) -> OpResult<Vec<Value>> {
    let one = |v: OpResult<Value>| v.map(|v| vec![v]);
    let all = usize::MAX;
    match op {
        OpKind::GatherElements => with_codes(inputs, |i| one(gather_elements(i, attrs))),
        OpKind::GatherND => with_codes(inputs, |i| one(gather_nd(i, attrs))),
        OpKind::ScatterElements | OpKind::ScatterND => {
            let f = |i: &[Option<&Value>]| {
                if *op == OpKind::ScatterND {
                    one(scatter_nd(i, attrs))
                } else {
                    one(scatter_elements(i, attrs))
                }
            };
            if reduction(attrs)? == Reduction::None {
                with_codes(inputs, f)
            } else {
                via_f32(inputs, all, f)
            }
        }
        OpKind::Trilu => with_codes(inputs, |i| one(trilu(i, attrs))),
        OpKind::TopK => via_f32(inputs, 1, |i| top_k(i, attrs)),
        OpKind::CumSum => via_f32(inputs, all, |i| one(cumulative(i, attrs, false))),
        OpKind::CumProd => via_f32(inputs, all, |i| one(cumulative(i, attrs, true))),
        OpKind::OneHot => with_codes(inputs, |i| one(one_hot(i, attrs))),
        OpKind::NonZero => one(non_zero(inputs)),
        OpKind::Unique => unique(inputs, attrs, num_outputs),
        OpKind::Compress => with_codes(inputs, |i| one(compress(i, attrs))),
        OpKind::ReverseSequence => with_codes(inputs, |i| one(reverse_sequence(i, attrs))),
        OpKind::DepthToSpace => with_codes(inputs, |i| one(depth_to_space(i, attrs))),
        OpKind::SpaceToDepth => with_codes(inputs, |i| one(space_to_depth(i, attrs))),
        OpKind::EyeLike => one(eye_like(inputs, attrs)),
        OpKind::Pad => with_codes(inputs, |i| one(pad(i, attrs))),
        OpKind::CenterCropPad => with_codes(inputs, |i| one(center_crop_pad(i, attrs))),
        OpKind::BitCast => one(bit_cast(inputs, attrs)),
        OpKind::NonMaxSuppression => via_f32(inputs, all, |i| one(non_max_suppression(i, attrs))),
        other => bail!("{other} is not an indexing op"),
    }
}

/// Row-major strides of `shape`, in elements.
fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        s[d] = s[d + 1] * shape[d + 1];
    }
    s
}

/// Advance a multi-index over `shape` in row-major order (wrapping to all zeros).
fn next_index(idx: &mut [usize], shape: &[usize]) {
    for d in (0..shape.len()).rev() {
        idx[d] += 1;
        if idx[d] < shape[d] {
            return;
        }
        idx[d] = 0;
    }
}

/// The elements of an index input, which must be i32 or i64.
fn index_values(v: &Value, what: &str) -> OpResult<Vec<i64>> {
    if !matches!(v, Value::I64(_) | Value::I32(_)) {
        bail!("{what} must be i32 or i64, got {}", v.dtype());
    }
    v.to_i64_vec(what)
}

/// An index into a dim of size `dim`; negative values count from the back.
fn wrap_index(i: i64, dim: usize, what: &str) -> OpResult<usize> {
    let d = dim as i64;
    let j = if i < 0 { i.saturating_add(d) } else { i };
    if (0..d).contains(&j) {
        Ok(j as usize)
    } else {
        bail!("{what} {i} is out of range for a dim of size {dim}")
    }
}

/// The single element of a scalar (or one-element) integer input.
fn scalar_int(v: &Value, what: &str) -> OpResult<i64> {
    let vals = v.to_i64_vec(what)?;
    match vals.as_slice() {
        [x] => Ok(*x),
        _ => bail!("{what} must hold one element, has shape {:?}", v.shape()),
    }
}

/// Ordering with NaN above every number (and equal to itself), so sorts are total.
fn total_cmp<T: PartialOrd>(a: &T, b: &T) -> Ordering {
    match a.partial_cmp(b) {
        Some(o) => o,
        None => {
            #[allow(clippy::eq_op)]
            let (a_nan, b_nan) = (a != a, b != b);
            a_nan.cmp(&b_nan)
        }
    }
}

// ---------------------------------------------------------------------------------------
// Gather and scatter
// ---------------------------------------------------------------------------------------

/// ONNX GatherElements: `out[i] = data[i with axis replaced by indices[i]]`.
pub(crate) fn gather_elements(inputs: &[Option<&Value>], attrs: &Attrs) -> OpResult<Value> {
    let data = input(inputs, 0, "data")?;
    let indices_v = input(inputs, 1, "indices")?;
    let indices = index_values(indices_v, "indices")?;
    let shape = data.shape().to_vec();
    let ishape = indices_v.shape().to_vec();
    if shape.is_empty() || ishape.len() != shape.len() {
        bail!("data {shape:?} and indices {ishape:?} must have the same rank (at least 1)");
    }
    let axis = norm_axis(attrs.int_or("axis", 0), shape.len())?;
    for d in 0..shape.len() {
        if d != axis && ishape[d] > shape[d] {
            bail!("indices {ishape:?} exceed data {shape:?} along axis {d}");
        }
    }
    let st = strides(&shape);
    let mut src = Vec::with_capacity(indices.len());
    let mut idx = vec![0; ishape.len()];
    for &i in &indices {
        let mut off = 0;
        for d in 0..shape.len() {
            let c = if d == axis {
                wrap_index(i, shape[axis], "index")?
            } else {
                idx[d]
            };
            off += c * st[d];
        }
        src.push(off);
        next_index(&mut idx, &ishape);
    }
    dispatch_all!(data, T => {
        let a = to_std_vec(typed::<T>(data, "data")?);
        Ok(T::into_value(array_from(&ishape, src.iter().map(|&o| a[o].clone()).collect())?))
    })
}

/// ONNX GatherND with `batch_dims`.
pub(crate) fn gather_nd(inputs: &[Option<&Value>], attrs: &Attrs) -> OpResult<Value> {
    let data = input(inputs, 0, "data")?;
    let indices_v = input(inputs, 1, "indices")?;
    if !matches!(indices_v, Value::I64(_)) {
        bail!("indices must be i64, got {}", indices_v.dtype());
    }
    let indices = indices_v.to_i64_vec("indices")?;
    let shape = data.shape().to_vec();
    let ishape = indices_v.shape().to_vec();
    let b = usize::try_from(attrs.int_or("batch_dims", 0))
        .map_err(|_| OpError::new("batch_dims must not be negative"))?;
    let Some(&k) = ishape.last() else {
        bail!("indices must have rank at least 1")
    };
    if b >= ishape.len() || b + k > shape.len() {
        bail!(
            "indices {ishape:?} with batch_dims {b} do not fit data {shape:?} (need batch_dims < rank(indices) and batch_dims + indices.shape[-1] <= rank(data))"
        );
    }
    if shape[..b] != ishape[..b] {
        bail!("batch dims of data {shape:?} and indices {ishape:?} differ");
    }
    let st = strides(&shape);
    let inner: usize = shape[b + k..].iter().product();
    let batch_size: usize = shape[b..].iter().product();
    let tuples: usize = ishape[..ishape.len() - 1].iter().product();
    let per_batch: usize = ishape[b..ishape.len() - 1].iter().product();
    let mut out_shape = ishape[..ishape.len() - 1].to_vec();
    out_shape.extend_from_slice(&shape[b + k..]);
    checked_len(&out_shape)?;
    let mut starts = Vec::with_capacity(tuples);
    for t in 0..tuples {
        let batch = t.checked_div(per_batch).unwrap_or(0);
        let mut off = batch * batch_size;
        for m in 0..k {
            off += wrap_index(indices[t * k + m], shape[b + m], "index")? * st[b + m];
        }
        starts.push(off);
    }
    dispatch_all!(data, T => {
        let a = to_std_vec(typed::<T>(data, "data")?);
        let mut out = Vec::with_capacity(tuples * inner);
        for &s in &starts {
            out.extend_from_slice(&a[s..s + inner]);
        }
        Ok(T::into_value(array_from(&out_shape, out)?))
    })
}

/// How a scatter combines an update with the element already there.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Reduction {
    None,
    Add,
    Mul,
    Max,
    Min,
}

fn reduction(attrs: &Attrs) -> OpResult<Reduction> {
    Ok(match attrs.str("reduction").unwrap_or("none") {
        "none" => Reduction::None,
        "add" => Reduction::Add,
        "mul" => Reduction::Mul,
        "max" => Reduction::Max,
        "min" => Reduction::Min,
        other => bail!("unknown reduction `{other}` (expected none, add, mul, max or min)"),
    })
}

fn combine<T: Num>(r: Reduction, old: T, new: T) -> T {
    match r {
        Reduction::None => new,
        Reduction::Add => old.add(new),
        Reduction::Mul => old.mul(new),
        Reduction::Max => old.max_nan(new),
        Reduction::Min => old.min_nan(new),
    }
}

/// A copy of `data` with update `u` written (or combined) at flat offset `targets[u]`,
/// in order, so later duplicates win (or accumulate).
fn scatter_into(data: &Value, updates: &Value, targets: &[usize], r: Reduction) -> OpResult<Value> {
    if updates.dtype() != data.dtype() {
        bail!(
            "updates are {} but data is {}",
            updates.dtype(),
            data.dtype()
        );
    }
    if r == Reduction::None {
        dispatch_all!(data, T => {
            let mut out = to_std_vec(typed::<T>(data, "data")?);
            let up = to_std_vec(typed::<T>(updates, "updates")?);
            for (&t, u) in targets.iter().zip(up) {
                out[t] = u;
            }
            Ok(T::into_value(array_from(data.shape(), out)?))
        })
    } else {
        dispatch_num!(data, T => {
            let mut out = to_std_vec(typed::<T>(data, "data")?);
            let up = to_std_vec(typed::<T>(updates, "updates")?);
            for (&t, u) in targets.iter().zip(up) {
                out[t] = combine(r, out[t], u);
            }
            Ok(T::into_value(array_from(data.shape(), out)?))
        })
    }
}

/// ONNX ScatterElements: the inverse of GatherElements, with an optional reduction.
pub(crate) fn scatter_elements(inputs: &[Option<&Value>], attrs: &Attrs) -> OpResult<Value> {
    let data = input(inputs, 0, "data")?;
    let indices_v = input(inputs, 1, "indices")?;
    let updates = input(inputs, 2, "updates")?;
    let r = reduction(attrs)?;
    let indices = index_values(indices_v, "indices")?;
    let shape = data.shape().to_vec();
    let ishape = indices_v.shape().to_vec();
    if shape.is_empty() || ishape.len() != shape.len() {
        bail!("data {shape:?} and indices {ishape:?} must have the same rank (at least 1)");
    }
    if updates.shape() != ishape.as_slice() {
        bail!(
            "updates {:?} must have the shape of indices {ishape:?}",
            updates.shape()
        );
    }
    let axis = norm_axis(attrs.int_or("axis", 0), shape.len())?;
    for d in 0..shape.len() {
        if d != axis && ishape[d] > shape[d] {
            bail!("indices {ishape:?} exceed data {shape:?} along axis {d}");
        }
    }
    let st = strides(&shape);
    let mut targets = Vec::with_capacity(indices.len());
    let mut idx = vec![0; ishape.len()];
    for &i in &indices {
        let mut off = 0;
        for d in 0..shape.len() {
            let c = if d == axis {
                wrap_index(i, shape[axis], "index")?
            } else {
                idx[d]
            };
            off += c * st[d];
        }
        targets.push(off);
        next_index(&mut idx, &ishape);
    }
    scatter_into(data, updates, &targets, r)
}

/// ONNX ScatterND: each index tuple names a slice of `data` that the matching slice of
/// `updates` replaces (or is combined into).
pub(crate) fn scatter_nd(inputs: &[Option<&Value>], attrs: &Attrs) -> OpResult<Value> {
    let data = input(inputs, 0, "data")?;
    let indices_v = input(inputs, 1, "indices")?;
    let updates = input(inputs, 2, "updates")?;
    let r = reduction(attrs)?;
    if !matches!(indices_v, Value::I64(_)) {
        bail!("indices must be i64, got {}", indices_v.dtype());
    }
    let indices = indices_v.to_i64_vec("indices")?;
    let shape = data.shape().to_vec();
    let ishape = indices_v.shape().to_vec();
    let Some(&k) = ishape.last() else {
        bail!("indices must have rank at least 1")
    };
    if k > shape.len() {
        bail!("indices {ishape:?} index {k} dims of data {shape:?}");
    }
    let mut want = ishape[..ishape.len() - 1].to_vec();
    want.extend_from_slice(&shape[k..]);
    if updates.shape() != want.as_slice() {
        bail!(
            "updates {:?} must have shape {want:?} (indices {ishape:?}, data {shape:?})",
            updates.shape()
        );
    }
    let st = strides(&shape);
    let inner: usize = shape[k..].iter().product();
    let tuples: usize = ishape[..ishape.len() - 1].iter().product();
    let mut targets = Vec::with_capacity(tuples * inner);
    for t in 0..tuples {
        let mut off = 0;
        for m in 0..k {
            off += wrap_index(indices[t * k + m], shape[m], "index")? * st[m];
        }
        targets.extend(off..off + inner);
    }
    scatter_into(data, updates, &targets, r)
}

// ---------------------------------------------------------------------------------------
// Masks, sorting and scans
// ---------------------------------------------------------------------------------------

/// ONNX Trilu: keep the upper (`upper=1`) or lower triangle of the last two dims,
/// shifted by the diagonal offset `k`; zero elsewhere.
pub(crate) fn trilu(inputs: &[Option<&Value>], attrs: &Attrs) -> OpResult<Value> {
    let x = input(inputs, 0, "input")?;
    let k = match opt_input(inputs, 1) {
        Some(v) => scalar_int(v, "k")?,
        None => 0,
    };
    let upper = attrs.int_or("upper", 1) != 0;
    let shape = x.shape();
    if shape.len() < 2 {
        bail!("input must have rank at least 2, got shape {shape:?}");
    }
    let (n, m) = (shape[shape.len() - 2], shape[shape.len() - 1]);
    let keep = move |flat: usize| {
        let (i, j) = ((flat / m.max(1)) % n.max(1), flat % m.max(1));
        let diff = j as i64 - i as i64;
        if upper {
            diff >= k
        } else {
            diff <= k
        }
    };
    dispatch_all!(x, T => {
        let a = to_std_vec(typed::<T>(x, "input")?);
        let out = a.into_iter().enumerate().map(|(f, v)| if keep(f) { v } else { T::default() }).collect();
        Ok(T::into_value(array_from(shape, out)?))
    })
}

/// Shape of `shape` split around `axis`: (elements before, dim, elements after).
fn lanes(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    (
        shape[..axis].iter().product(),
        shape[axis],
        shape[axis + 1..].iter().product(),
    )
}

/// ONNX TopK: the `k` largest (or smallest) elements along `axis` and their indices;
/// equal values keep their original order.
pub(crate) fn top_k(inputs: &[Option<&Value>], attrs: &Attrs) -> OpResult<Vec<Value>> {
    let x = input(inputs, 0, "X")?;
    let k = scalar_int(input(inputs, 1, "K")?, "K")?;
    let shape = x.shape().to_vec();
    if shape.is_empty() {
        bail!("input must have rank at least 1");
    }
    let axis = norm_axis(attrs.int_or("axis", -1), shape.len())?;
    let largest = attrs.int_or("largest", 1) != 0;
    let (outer, dim, inner) = lanes(&shape, axis);
    let k = match usize::try_from(k) {
        Ok(k) if k <= dim => k,
        _ => bail!("K = {k} is out of range for axis {axis} of size {dim}"),
    };
    let mut out_shape = shape.clone();
    out_shape[axis] = k;
    dispatch_num!(x, T => {
        let a = to_std_vec(typed::<T>(x, "X")?);
        let mut vals = Vec::with_capacity(outer * k * inner);
        let mut idxs = vec![0i64; outer * k * inner];
        vals.resize(outer * k * inner, T::ZERO);
        let mut order: Vec<usize> = Vec::with_capacity(dim);
        for o in 0..outer {
            for n in 0..inner {
                let at = |i: usize| a[(o * dim + i) * inner + n];
                order.clear();
                order.extend(0..dim);
                // A stable sort keeps equal values in index order.
                order.sort_by(|&p, &q| {
                    let c = total_cmp(&at(p), &at(q));
                    if largest { c.reverse() } else { c }
                });
                for (j, &i) in order.iter().take(k).enumerate() {
                    let dst = (o * k + j) * inner + n;
                    vals[dst] = at(i);
                    idxs[dst] = i as i64;
                }
            }
        }
        Ok(vec![
            T::into_value(array_from(&out_shape, vals)?),
            Value::I64(array_from(&out_shape, idxs)?),
        ])
    })
}

/// ONNX CumSum (`product = false`) and CumProd along the scalar `axis` input.
pub(crate) fn cumulative(
    inputs: &[Option<&Value>],
    attrs: &Attrs,
    product: bool,
) -> OpResult<Value> {
    let x = input(inputs, 0, "x")?;
    let axis_v = input(inputs, 1, "axis")?;
    if !matches!(axis_v, Value::I64(_) | Value::I32(_)) {
        bail!("axis must be i32 or i64, got {}", axis_v.dtype());
    }
    let shape = x.shape().to_vec();
    if shape.is_empty() {
        bail!("input must have rank at least 1");
    }
    let axis = norm_axis(scalar_int(axis_v, "axis")?, shape.len())?;
    let exclusive = attrs.int_or("exclusive", 0) != 0;
    let reverse = attrs.int_or("reverse", 0) != 0;
    let (outer, dim, inner) = lanes(&shape, axis);
    dispatch_num!(x, T => {
        let a = to_std_vec(typed::<T>(x, "x")?);
        let start = if product { T::ONE } else { T::ZERO };
        let mut out = vec![start; a.len()];
        for o in 0..outer {
            for n in 0..inner {
                let mut acc = start;
                for step in 0..dim {
                    let i = if reverse { dim - 1 - step } else { step };
                    let at = (o * dim + i) * inner + n;
                    let v = a[at];
                    let next = if product { acc.mul(v) } else { acc.add(v) };
                    out[at] = if exclusive { acc } else { next };
                    acc = next;
                }
            }
        }
        Ok(T::into_value(array_from(&shape, out)?))
    })
}

/// ONNX OneHot: `values[1]` where the index along the new axis equals the (wrapped)
/// index, `values[0]` elsewhere; indices outside `[-depth, depth)` give all `values[0]`.
pub(crate) fn one_hot(inputs: &[Option<&Value>], attrs: &Attrs) -> OpResult<Value> {
    let indices_v = input(inputs, 0, "indices")?;
    let depth_v = input(inputs, 1, "depth")?;
    let values = input(inputs, 2, "values")?;
    let indices: Vec<i64> = indices_v
        .to_f64_vec("indices")?
        .into_iter()
        .map(|f| f as i64)
        .collect();
    let depth = match depth_v.to_f64_vec("depth")?.as_slice() {
        [d] => *d as i64,
        _ => bail!(
            "depth must hold one element, has shape {:?}",
            depth_v.shape()
        ),
    };
    let depth = match usize::try_from(depth) {
        Ok(d) if d > 0 => d,
        _ => bail!("depth must be positive, got {depth}"),
    };
    if values.len() != 2 {
        bail!(
            "values must hold two elements (off, on), has shape {:?}",
            values.shape()
        );
    }
    let ishape = indices_v.shape();
    let r = ishape.len() as i64;
    let axis = attrs.int_or("axis", -1);
    if axis < -r - 1 || axis > r {
        bail!("axis {axis} is out of range for output rank {}", r + 1);
    }
    let axis = if axis < 0 { axis + r + 1 } else { axis } as usize;
    let mut out_shape = ishape[..axis].to_vec();
    out_shape.push(depth);
    out_shape.extend_from_slice(&ishape[axis..]);
    let total = checked_len(&out_shape)?;
    let outer: usize = ishape[..axis].iter().product();
    let inner: usize = ishape[axis..].iter().product();
    let d = depth as i64;
    dispatch_all!(values, T => {
        let vs = to_std_vec(typed::<T>(values, "values")?);
        let mut out = vec![vs[0].clone(); total];
        for o in 0..outer {
            for n in 0..inner {
                let i = indices[o * inner + n];
                let i = if i < 0 { i + d } else { i };
                if (0..d).contains(&i) {
                    out[(o * depth + i as usize) * inner + n] = vs[1].clone();
                }
            }
        }
        Ok(T::into_value(array_from(&out_shape, out)?))
    })
}

/// ONNX NonZero: the indices of the nonzero elements, one row per dim.
pub(crate) fn non_zero(inputs: &[Option<&Value>]) -> OpResult<Value> {
    let x = input(inputs, 0, "X")?;
    let shape = x.shape().to_vec();
    let flags: Vec<bool> = dispatch_all!(x, T => {
        let zero = T::default();
        Ok::<Vec<bool>, OpError>(typed::<T>(x, "X")?.iter().map(|v| *v != zero).collect())
    })?;
    let nnz = flags.iter().filter(|&&f| f).count();
    let rank = shape.len();
    let mut out = vec![0i64; rank * nnz];
    let mut idx = vec![0; rank];
    let mut j = 0;
    for &f in &flags {
        if f {
            for d in 0..rank {
                out[d * nnz + j] = idx[d] as i64;
            }
            j += 1;
        }
        next_index(&mut idx, &shape);
    }
    Ok(Value::I64(array_from(&[rank, nnz], out)?))
}

/// The elements of `a` (shape `shape`) at positions `idx` along `axis`.
fn take<T: Clone>(a: &[T], shape: &[usize], axis: usize, idx: &[usize]) -> Vec<T> {
    let (outer, dim, inner) = lanes(shape, axis);
    let mut out = Vec::with_capacity(outer * idx.len() * inner);
    for o in 0..outer {
        for &i in idx {
            let at = (o * dim + i) * inner;
            out.extend_from_slice(&a[at..at + inner]);
        }
    }
    out
}

/// ONNX Unique: the distinct elements (or slices along `axis`), sorted or in order of
/// first occurrence, with their first indices, the inverse mapping and the counts.
pub(crate) fn unique(
    inputs: &[Option<&Value>],
    attrs: &Attrs,
    num_outputs: usize,
) -> OpResult<Vec<Value>> {
    let x = input(inputs, 0, "X")?;
    let sorted = attrs.int_or("sorted", 1) != 0;
    let (shape, axis) = match attrs.int("axis") {
        Some(a) => (x.shape().to_vec(), norm_axis(a, x.shape().len())?),
        None => (vec![x.len()], 0),
    };
    dispatch_all!(x, T => {
        let a = to_std_vec(typed::<T>(x, "X")?);
        let (outer, dim, inner) = lanes(&shape, axis);
        // Slice `i` along the axis, in standard order.
        let slice = |i: usize| -> Vec<&T> {
            (0..outer).flat_map(|o| a[(o * dim + i) * inner..(o * dim + i + 1) * inner].iter()).collect()
        };
        let slices: Vec<Vec<&T>> = (0..dim).map(slice).collect();
        let cmp = |p: &usize, q: &usize| {
            slices[*p]
                .iter()
                .zip(&slices[*q])
                .map(|(u, v)| total_cmp(*u, *v))
                .find(|o| *o != Ordering::Equal)
                .unwrap_or(Ordering::Equal)
        };
        let mut order: Vec<usize> = (0..dim).collect();
        order.sort_by(cmp);
        // Groups of equal slices in sorted order; the first member is the first occurrence.
        let mut groups: Vec<Vec<usize>> = vec![];
        for &i in &order {
            match groups.last_mut() {
                Some(g) if cmp(&g[0], &i) == Ordering::Equal => g.push(i),
                _ => groups.push(vec![i]),
            }
        }
        if !sorted {
            groups.sort_by_key(|g| g[0]);
        }
        let firsts: Vec<usize> = groups.iter().map(|g| g[0]).collect();
        let mut inverse = vec![0i64; dim];
        for (u, g) in groups.iter().enumerate() {
            for &i in g {
                inverse[i] = u as i64;
            }
        }
        let mut y_shape = shape.clone();
        y_shape[axis] = firsts.len();
        let y = take(&a, &shape, axis, &firsts);
        let n = firsts.len();
        let mut outs = vec![
            T::into_value(array_from(&y_shape, y)?),
            Value::I64(array_from(&[n], firsts.iter().map(|&i| i as i64).collect())?),
            Value::I64(array_from(&[dim], inverse)?),
            Value::I64(array_from(&[n], groups.iter().map(|g| g.len() as i64).collect())?),
        ];
        outs.truncate(num_outputs.max(1));
        Ok(outs)
    })
}

/// ONNX Compress: the slices along `axis` (or elements of the flattened input) whose
/// condition entry is true; a shorter condition leaves the rest out.
pub(crate) fn compress(inputs: &[Option<&Value>], attrs: &Attrs) -> OpResult<Value> {
    let x = input(inputs, 0, "input")?;
    let cond_v = input(inputs, 1, "condition")?;
    if !matches!(cond_v, Value::Bool(_)) || cond_v.shape().len() != 1 {
        bail!(
            "condition must be a 1-D bool tensor, got {} {:?}",
            cond_v.dtype(),
            cond_v.shape()
        );
    }
    let cond = cond_v.to_i64_vec("condition")?;
    let (shape, axis) = match attrs.int("axis") {
        Some(a) => (x.shape().to_vec(), norm_axis(a, x.shape().len())?),
        None => (vec![x.len()], 0),
    };
    let dim = shape[axis];
    let keep: Vec<usize> = cond
        .iter()
        .enumerate()
        .filter(|(_, &c)| c != 0)
        .map(|(i, _)| i)
        .collect();
    if let Some(&bad) = keep.iter().find(|&&i| i >= dim) {
        bail!("condition selects position {bad}, past the axis size {dim}");
    }
    let mut out_shape = shape.clone();
    out_shape[axis] = keep.len();
    dispatch_all!(x, T => {
        let a = to_std_vec(typed::<T>(x, "input")?);
        Ok(T::into_value(array_from(&out_shape, take(&a, &shape, axis, &keep))?))
    })
}

/// ONNX ReverseSequence: reverse the first `sequence_lens[b]` elements along
/// `time_axis` of every batch entry `b` along `batch_axis`.
pub(crate) fn reverse_sequence(inputs: &[Option<&Value>], attrs: &Attrs) -> OpResult<Value> {
    let x = input(inputs, 0, "input")?;
    let lens_v = input(inputs, 1, "sequence_lens")?;
    let lens = index_values(lens_v, "sequence_lens")?;
    let shape = x.shape().to_vec();
    if shape.len() < 2 {
        bail!("input must have rank at least 2, got shape {shape:?}");
    }
    let batch_axis = norm_axis(attrs.int_or("batch_axis", 1), shape.len())?;
    let time_axis = norm_axis(attrs.int_or("time_axis", 0), shape.len())?;
    if batch_axis > 1 || time_axis > 1 || batch_axis == time_axis {
        bail!(
            "batch_axis ({batch_axis}) and time_axis ({time_axis}) must be 0 and 1 in some order"
        );
    }
    if lens_v.shape() != [shape[batch_axis]] {
        bail!(
            "sequence_lens {:?} must have one entry per batch element ({})",
            lens_v.shape(),
            shape[batch_axis]
        );
    }
    let tdim = shape[time_axis];
    let lens: Vec<usize> = lens
        .iter()
        .map(|&l| match usize::try_from(l) {
            Ok(l) if l <= tdim => Ok(l),
            _ => Err(OpError::new(format!(
                "sequence length {l} is out of range for a time axis of size {tdim}"
            ))),
        })
        .collect::<OpResult<_>>()?;
    let st = strides(&shape);
    let mut src = Vec::with_capacity(x.len());
    let mut idx = vec![0; shape.len()];
    for flat in 0..x.len() {
        let (b, t) = (idx[batch_axis], idx[time_axis]);
        let l = lens[b];
        src.push(if t < l {
            flat - t * st[time_axis] + (l - 1 - t) * st[time_axis]
        } else {
            flat
        });
        next_index(&mut idx, &shape);
    }
    dispatch_all!(x, T => {
        let a = to_std_vec(typed::<T>(x, "input")?);
        Ok(T::into_value(array_from(&shape, src.iter().map(|&s| a[s].clone()).collect())?))
    })
}

// ---------------------------------------------------------------------------------------
// Rearranging, padding and construction
// ---------------------------------------------------------------------------------------

/// Reshape to `tmp`, permute by `perm`, reshape to `out`.
fn shuffle(x: &Value, tmp: &[usize], perm: &[usize], out: &[usize]) -> OpResult<Value> {
    dispatch_all!(x, T => {
        let a = to_std_vec(typed::<T>(x, "input")?);
        let a = ArrayD::from_shape_vec(IxDyn(tmp), a)
            .map_err(|e| OpError::new(format!("internal shape error: {e}")))?;
        let p = a.permuted_axes(IxDyn(perm));
        Ok(T::into_value(array_from(out, to_std_vec(&p.as_standard_layout().into_owned()))?))
    })
}

fn blocksize(attrs: &Attrs) -> OpResult<usize> {
    let b = attrs
        .int("blocksize")
        .ok_or_else(|| OpError::new("missing attribute blocksize"))?;
    match usize::try_from(b) {
        Ok(b) if b > 0 => Ok(b),
        _ => bail!("blocksize must be positive, got {b}"),
    }
}

fn nchw(x: &Value) -> OpResult<[usize; 4]> {
    match *x.shape() {
        [n, c, h, w] => Ok([n, c, h, w]),
        ref s => bail!("input must have rank 4 (N, C, H, W), got shape {s:?}"),
    }
}

/// ONNX DepthToSpace (modes DCR and CRD).
pub(crate) fn depth_to_space(inputs: &[Option<&Value>], attrs: &Attrs) -> OpResult<Value> {
    let x = input(inputs, 0, "input")?;
    let b = blocksize(attrs)?;
    let [n, c, h, w] = nchw(x)?;
    let bb = b.saturating_mul(b);
    if c % bb != 0 {
        bail!("channels {c} are not divisible by blocksize² = {bb}");
    }
    let c2 = c / bb;
    let (Some(hb), Some(wb)) = (h.checked_mul(b), w.checked_mul(b)) else {
        bail!("blocksize {b} makes the output too large")
    };
    let out = [n, c2, hb, wb];
    match attrs.str("mode").unwrap_or("DCR") {
        "DCR" => shuffle(x, &[n, b, b, c2, h, w], &[0, 3, 4, 1, 5, 2], &out),
        "CRD" => shuffle(x, &[n, c2, b, b, h, w], &[0, 1, 4, 2, 5, 3], &out),
        other => bail!("unknown mode `{other}` (expected DCR or CRD)"),
    }
}

/// ONNX SpaceToDepth (modes DCR and CRD).
pub(crate) fn space_to_depth(inputs: &[Option<&Value>], attrs: &Attrs) -> OpResult<Value> {
    let x = input(inputs, 0, "input")?;
    let b = blocksize(attrs)?;
    let [n, c, h, w] = nchw(x)?;
    if h % b != 0 || w % b != 0 {
        bail!("spatial dims {h}x{w} are not divisible by blocksize {b}");
    }
    let tmp = [n, c, h / b, b, w / b, b];
    let Some(cbb) = c.checked_mul(b).and_then(|v| v.checked_mul(b)) else {
        bail!("blocksize {b} makes the output too large")
    };
    let out = [n, cbb, h / b, w / b];
    match attrs.str("mode").unwrap_or("DCR") {
        "DCR" => shuffle(x, &tmp, &[0, 3, 5, 1, 2, 4], &out),
        "CRD" => shuffle(x, &tmp, &[0, 1, 3, 5, 2, 4], &out),
        other => bail!("unknown mode `{other}` (expected DCR or CRD)"),
    }
}

/// Build an output of shape `out_shape` whose element at each position reads the input
/// at the per-axis source coordinates `maps[d][o]`, or `fill` where any is `None`.
fn remap<T: Clone>(
    a: &[T],
    in_shape: &[usize],
    out_shape: &[usize],
    maps: &[Vec<Option<usize>>],
    fill: &T,
) -> OpResult<Vec<T>> {
    let n = checked_len(out_shape)?;
    let st = strides(in_shape);
    let mut out = Vec::with_capacity(n);
    let mut idx = vec![0; out_shape.len()];
    for _ in 0..n {
        let mut off = Some(0);
        for d in 0..out_shape.len() {
            off = match (off, maps[d][idx[d]]) {
                (Some(o), Some(s)) => Some(o + s * st[d]),
                _ => None,
            };
        }
        out.push(match off {
            Some(o) => a[o].clone(),
            None => fill.clone(),
        });
        next_index(&mut idx, out_shape);
    }
    Ok(out)
}

/// ONNX Pad (newest form: `pads`, optional `constant_value` and `axes` inputs) in
/// modes constant, reflect, edge and wrap; negative pads crop.
pub(crate) fn pad(inputs: &[Option<&Value>], attrs: &Attrs) -> OpResult<Value> {
    let x = input(inputs, 0, "data")?;
    let pads = input(inputs, 1, "pads")?.to_i64_vec("pads")?;
    let shape = x.shape().to_vec();
    let rank = shape.len();
    let axes = match opt_input(inputs, 3) {
        Some(a) => super::norm_axes(&a.to_i64_vec("axes")?, rank)?,
        None => (0..rank).collect(),
    };
    if pads.len() != 2 * axes.len() {
        bail!(
            "pads has {} entries, expected {} (two per axis)",
            pads.len(),
            2 * axes.len()
        );
    }
    let mode = attrs.str("mode").unwrap_or("constant");
    if !matches!(mode, "constant" | "reflect" | "edge" | "wrap") {
        bail!("unknown mode `{mode}` (expected constant, reflect, edge or wrap)");
    }
    let mut begin = vec![0i64; rank];
    let mut end = vec![0i64; rank];
    for (i, &a) in axes.iter().enumerate() {
        begin[a] = pads[i];
        end[a] = pads[axes.len() + i];
    }
    let mut out_shape = Vec::with_capacity(rank);
    for d in 0..rank {
        let size = i128::from(shape[d] as i64) + i128::from(begin[d]) + i128::from(end[d]);
        match usize::try_from(size) {
            Ok(s) => out_shape.push(s),
            Err(_) => bail!(
                "pads {} and {} make axis {d} of size {} negative or too large",
                begin[d],
                end[d],
                shape[d]
            ),
        }
    }
    checked_len(&out_shape)?;
    let mut maps = Vec::with_capacity(rank);
    for d in 0..rank {
        let dim = shape[d] as i128;
        let size = out_shape[d] as i128;
        let mut map = Vec::with_capacity(size as usize);
        for o in 0..size {
            // In i128: a huge negative begin pad must not overflow.
            let s = o - i128::from(begin[d]);
            let src = if (0..dim).contains(&s) {
                Some(s)
            } else if mode == "constant" {
                None
            } else if dim == 0 {
                bail!("cannot pad an empty axis {d} in mode {mode}");
            } else {
                Some(match mode {
                    "edge" => s.clamp(0, dim - 1),
                    "wrap" => s.rem_euclid(dim),
                    _ if dim == 1 => 0,
                    _ => {
                        let period = 2 * (dim - 1);
                        let m = s.rem_euclid(period);
                        if m >= dim {
                            period - m
                        } else {
                            m
                        }
                    }
                })
            };
            map.push(src.map(|s| s as usize));
        }
        maps.push(map);
    }
    let value = opt_input(inputs, 2);
    dispatch_all!(x, T => {
        let a = to_std_vec(typed::<T>(x, "data")?);
        let fill = match value {
            Some(v) => match typed::<T>(v, "constant_value")?.iter().next() {
                Some(f) if v.len() == 1 => f.clone(),
                _ => bail!("constant_value must hold one element, has shape {:?}", v.shape()),
            },
            None => T::default(),
        };
        Ok(T::into_value(array_from(&out_shape, remap(&a, &shape, &out_shape, &maps, &fill)?)?))
    })
}

/// ONNX CenterCropPad: crop or zero-pad the given axes to `shape`, centred (the extra
/// element of an odd difference goes to the end).
pub(crate) fn center_crop_pad(inputs: &[Option<&Value>], attrs: &Attrs) -> OpResult<Value> {
    let x = input(inputs, 0, "input_data")?;
    let target = index_values(input(inputs, 1, "shape")?, "shape")?;
    let shape = x.shape().to_vec();
    let rank = shape.len();
    let axes = match attrs.ints("axes") {
        Some(a) => super::norm_axes(a, rank)?,
        None => (0..rank).collect(),
    };
    if target.len() != axes.len() {
        bail!(
            "shape has {} entries but {} axes are cropped or padded",
            target.len(),
            axes.len()
        );
    }
    let mut out_shape = shape.clone();
    for (&a, &t) in axes.iter().zip(&target) {
        out_shape[a] = usize::try_from(t).unwrap_or(0);
    }
    checked_len(&out_shape)?;
    let mut maps: Vec<Vec<Option<usize>>> =
        shape.iter().map(|&d| (0..d).map(Some).collect()).collect();
    for (&a, &t) in axes.iter().zip(&target) {
        let Ok(t) = usize::try_from(t) else {
            bail!("shape entry {t} for axis {a} is negative");
        };
        let dim = shape[a];
        maps[a] = if t <= dim {
            let start = (dim - t) / 2;
            (0..t).map(|o| Some(o + start)).collect()
        } else {
            let start = (t - dim) / 2;
            (0..t)
                .map(|o| (o >= start && o - start < dim).then(|| o - start))
                .collect()
        };
        out_shape[a] = t;
    }
    dispatch_all!(x, T => {
        let a = to_std_vec(typed::<T>(x, "input_data")?);
        Ok(T::into_value(array_from(&out_shape, remap(&a, &shape, &out_shape, &maps, &T::default())?)?))
    })
}

/// ONNX EyeLike: ones on the diagonal shifted by `k`, zeros elsewhere, in the input's
/// shape (2-D) and the `dtype` attribute's type (default: the input's).
pub(crate) fn eye_like(inputs: &[Option<&Value>], attrs: &Attrs) -> OpResult<Value> {
    let x = input(inputs, 0, "input")?;
    let [n, m] = *x.shape() else {
        bail!("input must be 2-D, got shape {:?}", x.shape())
    };
    let dtype = super::cast::dtype_attr(attrs, "dtype")?.unwrap_or(x.dtype());
    let k = attrs.int_or("k", 0);
    let data: Vec<f64> = (0..n * m)
        .map(|f| {
            let (i, j) = ((f / m) as i64, (f % m) as i64);
            if j - i == k {
                1.0
            } else {
                0.0
            }
        })
        .collect();
    let ones = Value::F64(array_from(&[n, m], data)?);
    super::cast::cast(&ones, dtype, false)
}

/// ONNX BitCast: reinterpret each element's bits as the `to` type of the same width.
pub(crate) fn bit_cast(inputs: &[Option<&Value>], attrs: &Attrs) -> OpResult<Value> {
    let x = input(inputs, 0, "input")?;
    let Some(to) = super::cast::dtype_attr(attrs, "to")? else {
        bail!("missing attribute to")
    };
    let from = x.dtype();
    if from == DType::String || to == DType::String {
        bail!("cannot bit-cast {from} to {to}: strings have no fixed width");
    }
    if from.bits() != to.bits() || from.bits() < 8 {
        bail!(
            "cannot bit-cast {from} ({} bits) to {to} ({} bits): widths must be equal whole bytes",
            from.bits(),
            to.bits()
        );
    }
    let t = x.to_tensor()?;
    let out = Tensor::from_bytes(to, t.shape().to_vec(), t.bytes().clone())
        .map_err(|e| OpError::new(e.to_string()))?;
    Value::from_tensor(&out)
}

/// One box as `(x_min, y_min, x_max, y_max)` from corners in either order
/// (`center_point_box = 0`: `[y1, x1, y2, x2]`) or centre and size (`1`).
fn box_corners(b: &[f64], center: bool) -> (f64, f64, f64, f64) {
    if center {
        let (hw, hh) = (b[2] / 2.0, b[3] / 2.0);
        (b[0] - hw, b[1] - hh, b[0] + hw, b[1] + hh)
    } else {
        (
            b[1].min(b[3]),
            b[0].min(b[2]),
            b[1].max(b[3]),
            b[0].max(b[2]),
        )
    }
}

/// Whether two boxes overlap by more than `threshold` (intersection over union).
fn suppresses(a: (f64, f64, f64, f64), b: (f64, f64, f64, f64), threshold: f64) -> bool {
    let (ix0, iy0) = (a.0.max(b.0), a.1.max(b.1));
    let (ix1, iy1) = (a.2.min(b.2), a.3.min(b.3));
    if ix1 <= ix0 || iy1 <= iy0 {
        return false;
    }
    let inter = (ix1 - ix0) * (iy1 - iy0);
    let area = |c: (f64, f64, f64, f64)| (c.2 - c.0) * (c.3 - c.1);
    let (a1, a2) = (area(a), area(b));
    let union = a1 + a2 - inter;
    if a1 <= 0.0 || a2 <= 0.0 || union <= 0.0 {
        return false;
    }
    inter / union > threshold
}

/// ONNX NonMaxSuppression: per batch and class, boxes in decreasing score order (ties by
/// index) are kept unless they overlap a kept box by more than `iou_threshold`; rows of
/// the i64 `[selected, 3]` output are `(batch, class, box)`.
pub(crate) fn non_max_suppression(inputs: &[Option<&Value>], attrs: &Attrs) -> OpResult<Value> {
    let boxes_v = input(inputs, 0, "boxes")?;
    let scores_v = input(inputs, 1, "scores")?;
    let (bs, ss) = (boxes_v.shape(), scores_v.shape());
    let (&[nb, n, 4], &[nb2, classes, n2]) = (bs, ss) else {
        bail!("boxes must be [batches, boxes, 4] and scores [batches, classes, boxes], got {bs:?} and {ss:?}")
    };
    if nb != nb2 || n != n2 {
        bail!("boxes {bs:?} and scores {ss:?} disagree on batches or boxes");
    }
    let first = |slot: usize, what: &str| -> OpResult<Option<f64>> {
        match opt_input(inputs, slot) {
            None => Ok(None),
            Some(v) => Ok(v.to_f64_vec(what)?.first().copied()),
        }
    };
    let max_out = first(2, "max_output_boxes_per_class")?
        .unwrap_or(0.0)
        .max(0.0) as usize;
    let iou = first(3, "iou_threshold")?.unwrap_or(0.0);
    let score_min = first(4, "score_threshold")?;
    let center = match attrs.int_or("center_point_box", 0) {
        0 => false,
        1 => true,
        other => bail!("center_point_box must be 0 or 1, got {other}"),
    };
    let boxes = boxes_v.to_f64_vec("boxes")?;
    let scores = scores_v.to_f64_vec("scores")?;
    let mut rows: Vec<i64> = vec![];
    for b in 0..nb {
        let corners: Vec<_> = (0..n)
            .map(|i| box_corners(&boxes[(b * n + i) * 4..(b * n + i + 1) * 4], center))
            .collect();
        for c in 0..classes {
            let sc = &scores[(b * classes + c) * n..(b * classes + c + 1) * n];
            let mut order: Vec<usize> = (0..n)
                .filter(|&i| score_min.is_none_or(|t| sc[i] > t))
                .collect();
            order.sort_by(|&p, &q| total_cmp(&sc[q], &sc[p]).then(p.cmp(&q)));
            let mut kept: Vec<usize> = vec![];
            for i in order {
                if kept.len() >= max_out {
                    break;
                }
                if kept
                    .iter()
                    .all(|&k| !suppresses(corners[i], corners[k], iou))
                {
                    kept.push(i);
                    rows.extend([b as i64, c as i64, i as i64]);
                }
            }
        }
    }
    let k = rows.len() / 3;
    Ok(Value::I64(array_from(&[k, 3], rows)?))
}

#[cfg(test)]
mod tests {
    use crate::ops::testutil::{attrs, data, fails, run, run_n, v};
    use smelt_ir::{Attr, Attrs, OpKind};

    fn i64s(shape: &[usize], d: &[i64]) -> crate::value::Value {
        v(shape, d)
    }

    #[test]
    fn gather_elements_and_scatter_elements() {
        let x = v(&[2, 2], &[1.0f32, 2.0, 3.0, 4.0]);
        let idx = i64s(&[2, 2], &[0, 0, 1, -2]);
        let y = run(
            OpKind::GatherElements,
            &attrs(&[("axis", Attr::Int(1))]),
            &[&x, &idx],
        );
        assert_eq!(data::<f32>(&y), (vec![2, 2], vec![1.0, 1.0, 4.0, 3.0]));
        let bad = i64s(&[2, 2], &[0, 0, 2, 0]);
        assert!(fails(
            OpKind::GatherElements,
            &attrs(&[("axis", Attr::Int(1))]),
            &[&x, &bad]
        )
        .contains("out of range"));

        let d = v(&[1, 5], &[1.0f32, 2.0, 3.0, 4.0, 5.0]);
        let i = i64s(&[1, 2], &[1, 1]);
        let u = v(&[1, 2], &[1.1f32, 2.1]);
        let a = attrs(&[
            ("axis", Attr::Int(1)),
            ("reduction", Attr::Str("add".into())),
        ]);
        let y = run(OpKind::ScatterElements, &a, &[&d, &i, &u]);
        assert_eq!(data::<f32>(&y).1, vec![1.0, 5.2, 3.0, 4.0, 5.0]);
        let a = attrs(&[("axis", Attr::Int(1))]);
        let i = i64s(&[1, 2], &[1, -2]);
        let y = run(OpKind::ScatterElements, &a, &[&d, &i, &u]);
        assert_eq!(data::<f32>(&y).1, vec![1.0, 1.1, 3.0, 2.1, 5.0]);
        let bad = attrs(&[("reduction", Attr::Str("avg".into()))]);
        assert!(fails(OpKind::ScatterElements, &bad, &[&d, &i, &u]).contains("reduction"));
    }

    #[test]
    fn gather_nd_and_scatter_nd() {
        let x = v(&[2, 2], &[0i32, 1, 2, 3]);
        let y = run(
            OpKind::GatherND,
            &Attrs::new(),
            &[&x, &i64s(&[2, 2], &[0, 0, 1, 1])],
        );
        assert_eq!(data::<i32>(&y), (vec![2], vec![0, 3]));
        let x3 = v(&[2, 2, 2], &[0i32, 1, 2, 3, 4, 5, 6, 7]);
        let y = run(
            OpKind::GatherND,
            &attrs(&[("batch_dims", Attr::Int(1))]),
            &[&x3, &i64s(&[2, 1], &[1, 0])],
        );
        assert_eq!(data::<i32>(&y), (vec![2, 2], vec![2, 3, 4, 5]));
        assert!(fails(
            OpKind::GatherND,
            &Attrs::new(),
            &[&x, &i64s(&[1, 3], &[0, 0, 0])]
        )
        .contains("do not fit"));

        let d = v(&[2, 2], &[1.0f32, 2.0, 3.0, 4.0]);
        let i = i64s(&[2, 2], &[0, 0, 0, 0]);
        let u = v(&[2], &[5.0f32, 0.5]);
        let a = attrs(&[("reduction", Attr::Str("max".into()))]);
        let y = run(OpKind::ScatterND, &a, &[&d, &i, &u]);
        assert_eq!(data::<f32>(&y).1, vec![5.0, 2.0, 3.0, 4.0]);
        let i = i64s(&[1, 1], &[1]);
        let u = v(&[1, 2], &[9.0f32, 8.0]);
        let y = run(OpKind::ScatterND, &Attrs::new(), &[&d, &i, &u]);
        assert_eq!(data::<f32>(&y).1, vec![1.0, 2.0, 9.0, 8.0]);
    }

    #[test]
    fn trilu_top_k_and_cumulative() {
        let x = v(&[2, 3], &[1i64, 2, 3, 4, 5, 6]);
        let y = run(OpKind::Trilu, &Attrs::new(), &[&x]);
        assert_eq!(data::<i64>(&y).1, vec![1, 2, 3, 0, 5, 6]);
        let k = v(&[], &[-1i64]);
        let y = run(OpKind::Trilu, &attrs(&[("upper", Attr::Int(0))]), &[&x, &k]);
        assert_eq!(data::<i64>(&y).1, vec![0, 0, 0, 4, 0, 0]);

        let x = v(&[4], &[3.0f32, 1.0, 3.0, 2.0]);
        let out = run_n(
            OpKind::TopK,
            &Attrs::new(),
            &[Some(&x), Some(&i64s(&[1], &[3]))],
            2,
        );
        assert_eq!(data::<f32>(&out[0]).1, vec![3.0, 3.0, 2.0]);
        assert_eq!(data::<i64>(&out[1]).1, vec![0, 2, 3]);
        let small = attrs(&[("largest", Attr::Int(0))]);
        let out = run_n(
            OpKind::TopK,
            &small,
            &[Some(&x), Some(&i64s(&[1], &[2]))],
            2,
        );
        assert_eq!(data::<i64>(&out[1]).1, vec![1, 3]);
        assert!(crate::ops::eval(
            &OpKind::TopK,
            &Attrs::new(),
            &[Some(&x), Some(&i64s(&[1], &[5]))],
            2
        )
        .is_err());

        let x = v(&[3], &[1i32, 2, 3]);
        let ax = v(&[], &[0i32]);
        let y = run(OpKind::CumSum, &Attrs::new(), &[&x, &ax]);
        assert_eq!(data::<i32>(&y).1, vec![1, 3, 6]);
        let a = attrs(&[("exclusive", Attr::Int(1)), ("reverse", Attr::Int(1))]);
        let y = run(OpKind::CumSum, &a, &[&x, &ax]);
        assert_eq!(data::<i32>(&y).1, vec![5, 3, 0]);
        let y = run(OpKind::CumProd, &Attrs::new(), &[&x, &ax]);
        assert_eq!(data::<i32>(&y).1, vec![1, 2, 6]);
    }

    #[test]
    fn one_hot_non_zero_unique_compress() {
        let idx = i64s(&[3], &[0, -1, 7]);
        let depth = v(&[], &[3.0f32]);
        let vals = v(&[2], &[0i32, 5]);
        let y = run(OpKind::OneHot, &Attrs::new(), &[&idx, &depth, &vals]);
        assert_eq!(
            data::<i32>(&y),
            (vec![3, 3], vec![5, 0, 0, 0, 0, 5, 0, 0, 0])
        );
        let y = run(
            OpKind::OneHot,
            &attrs(&[("axis", Attr::Int(0))]),
            &[&idx, &depth, &vals],
        );
        assert_eq!(
            data::<i32>(&y),
            (vec![3, 3], vec![5, 0, 0, 0, 0, 0, 0, 5, 0])
        );

        let x = v(&[2, 2], &[true, false, true, true]);
        let y = run(OpKind::NonZero, &Attrs::new(), &[&x]);
        assert_eq!(data::<i64>(&y), (vec![2, 3], vec![0, 1, 1, 0, 0, 1]));

        let x = v(&[6], &[2.0f32, 1.0, 1.0, 3.0, 4.0, 3.0]);
        let out = run_n(
            OpKind::Unique,
            &attrs(&[("sorted", Attr::Int(0))]),
            &[Some(&x)],
            4,
        );
        assert_eq!(data::<f32>(&out[0]).1, vec![2.0, 1.0, 3.0, 4.0]);
        assert_eq!(data::<i64>(&out[1]).1, vec![0, 1, 3, 4]);
        assert_eq!(data::<i64>(&out[2]).1, vec![0, 1, 1, 2, 3, 2]);
        assert_eq!(data::<i64>(&out[3]).1, vec![1, 2, 2, 1]);
        let out = run_n(OpKind::Unique, &Attrs::new(), &[Some(&x)], 1);
        assert_eq!(data::<f32>(&out[0]).1, vec![1.0, 2.0, 3.0, 4.0]);
        let m = v(&[3, 2], &[1i32, 0, 1, 0, 0, 1]);
        let out = run_n(
            OpKind::Unique,
            &attrs(&[("axis", Attr::Int(0))]),
            &[Some(&m)],
            4,
        );
        assert_eq!(data::<i32>(&out[0]), (vec![2, 2], vec![0, 1, 1, 0]));
        assert_eq!(data::<i64>(&out[2]).1, vec![1, 1, 0]);

        let x = v(&[3, 2], &[1i32, 2, 3, 4, 5, 6]);
        let c = v(&[2], &[false, true]);
        let y = run(
            OpKind::Compress,
            &attrs(&[("axis", Attr::Int(0))]),
            &[&x, &c],
        );
        assert_eq!(data::<i32>(&y), (vec![1, 2], vec![3, 4]));
        let c = v(&[4], &[false, false, false, true]);
        assert!(fails(
            OpKind::Compress,
            &attrs(&[("axis", Attr::Int(1))]),
            &[&x, &c]
        )
        .contains("past the axis"));
        let y = run(OpKind::Compress, &Attrs::new(), &[&x, &c]);
        assert_eq!(data::<i32>(&y), (vec![1], vec![4]));
    }

    #[test]
    fn reverse_sequence_and_space_depth() {
        let x = v(&[2, 3], &[1i32, 2, 3, 4, 5, 6]);
        let lens = i64s(&[2], &[2, 3]);
        let a = attrs(&[("batch_axis", Attr::Int(0)), ("time_axis", Attr::Int(1))]);
        let y = run(OpKind::ReverseSequence, &a, &[&x, &lens]);
        assert_eq!(data::<i32>(&y).1, vec![2, 1, 3, 6, 5, 4]);
        assert!(
            fails(OpKind::ReverseSequence, &a, &[&x, &i64s(&[2], &[4, 0])])
                .contains("out of range")
        );

        let x = v(&[1, 4, 1, 1], &[1.0f32, 2.0, 3.0, 4.0]);
        let b = attrs(&[("blocksize", Attr::Int(2))]);
        let y = run(OpKind::DepthToSpace, &b, &[&x]);
        assert_eq!(
            data::<f32>(&y),
            (vec![1, 1, 2, 2], vec![1.0, 2.0, 3.0, 4.0])
        );
        let back = run(OpKind::SpaceToDepth, &b, &[&y]);
        assert_eq!(data::<f32>(&back), data::<f32>(&x));
        let x = v(&[1, 8, 1, 1], &(0..8).map(|i| i as f32).collect::<Vec<_>>());
        let crd = attrs(&[
            ("blocksize", Attr::Int(2)),
            ("mode", Attr::Str("CRD".into())),
        ]);
        let y = run(OpKind::DepthToSpace, &crd, &[&x]);
        assert_eq!(
            data::<f32>(&y),
            (vec![1, 2, 2, 2], (0..8).map(|i| i as f32).collect())
        );
        let y = run(OpKind::SpaceToDepth, &crd, &[&y]);
        assert_eq!(
            data::<f32>(&y).1,
            (0..8).map(|i| i as f32).collect::<Vec<_>>()
        );
        assert!(
            fails(OpKind::SpaceToDepth, &b, &[&v(&[1, 1, 3, 2], &[0.0f32; 6])])
                .contains("divisible")
        );
    }

    #[test]
    fn pads_in_every_mode() {
        let x = v(&[3], &[1i32, 2, 3]);
        let pads = i64s(&[2], &[2, 2]);
        let mode = |m: &str| attrs(&[("mode", Attr::Str(m.into()))]);
        let y = run(
            OpKind::Pad,
            &mode("constant"),
            &[&x, &pads, &v(&[], &[9i32])],
        );
        assert_eq!(data::<i32>(&y).1, vec![9, 9, 1, 2, 3, 9, 9]);
        let y = run(OpKind::Pad, &mode("reflect"), &[&x, &pads]);
        assert_eq!(data::<i32>(&y).1, vec![3, 2, 1, 2, 3, 2, 1]);
        let y = run(OpKind::Pad, &mode("edge"), &[&x, &pads]);
        assert_eq!(data::<i32>(&y).1, vec![1, 1, 1, 2, 3, 3, 3]);
        let y = run(OpKind::Pad, &mode("wrap"), &[&x, &pads]);
        assert_eq!(data::<i32>(&y).1, vec![2, 3, 1, 2, 3, 1, 2]);
        let y = run(OpKind::Pad, &Attrs::new(), &[&x, &i64s(&[2], &[-1, 1])]);
        assert_eq!(data::<i32>(&y).1, vec![2, 3, 0]);
        let m = v(&[2, 2], &[1i32, 2, 3, 4]);
        let ins = [
            Some(&m),
            Some(&i64s(&[2], &[1, 0])),
            None,
            Some(&i64s(&[1], &[-1])),
        ];
        let y = crate::ops::eval(&OpKind::Pad, &Attrs::new(), &ins, 1)
            .unwrap()
            .remove(0);
        assert_eq!(data::<i32>(&y), (vec![2, 3], vec![0, 1, 2, 0, 3, 4]));
        assert!(
            fails(OpKind::Pad, &Attrs::new(), &[&x, &i64s(&[2], &[-2, -2])]).contains("negative")
        );
        assert!(fails(OpKind::Pad, &mode("mirror"), &[&x, &pads]).contains("unknown mode"));
        let huge = i64s(&[2], &[i64::MIN, i64::MAX]);
        // Extreme pads that cancel out are computed without overflow.
        let y = run(OpKind::Pad, &mode("wrap"), &[&x, &huge]);
        assert_eq!(data::<i32>(&y).0, vec![2]);
        let b = attrs(&[("blocksize", Attr::Int(i64::MAX))]);
        assert!(fails(
            OpKind::DepthToSpace,
            &b,
            &[&v(&[1, 0, 3, 1], &[] as &[f32])]
        )
        .contains("too large"));
    }

    #[test]
    fn non_max_suppression_keeps_best_boxes() {
        let boxes = v(
            &[1, 3, 4],
            &[
                0.0f32, 0.0, 1.0, 1.0, 0.0, 0.1, 1.0, 1.1, 0.0, 10.0, 1.0, 11.0,
            ],
        );
        let scores = v(&[1, 1, 3], &[0.9f32, 0.95, 0.3]);
        let max = i64s(&[1], &[3]);
        let iou = v(&[1], &[0.5f32]);
        let y = run(
            OpKind::NonMaxSuppression,
            &Attrs::new(),
            &[&boxes, &scores, &max, &iou],
        );
        assert_eq!(data::<i64>(&y), (vec![2, 3], vec![0, 0, 1, 0, 0, 2]));
        let thr = v(&[1], &[0.5f32]);
        let y = run(
            OpKind::NonMaxSuppression,
            &Attrs::new(),
            &[&boxes, &scores, &max, &iou, &thr],
        );
        assert_eq!(data::<i64>(&y).0, vec![1, 3]);
        let y = run(OpKind::NonMaxSuppression, &Attrs::new(), &[&boxes, &scores]);
        assert_eq!(data::<i64>(&y).0, vec![0, 3]);
        assert!(
            fails(OpKind::NonMaxSuppression, &Attrs::new(), &[&scores, &boxes])
                .contains("boxes must be")
        );
    }

    #[test]
    fn center_crop_pad_eye_like_bit_cast() {
        let x = v(&[5], &[1i32, 2, 3, 4, 5]);
        let y = run(
            OpKind::CenterCropPad,
            &Attrs::new(),
            &[&x, &i64s(&[1], &[2])],
        );
        assert_eq!(data::<i32>(&y).1, vec![2, 3]);
        let y = run(
            OpKind::CenterCropPad,
            &Attrs::new(),
            &[&x, &i64s(&[1], &[8])],
        );
        assert_eq!(data::<i32>(&y).1, vec![0, 1, 2, 3, 4, 5, 0, 0]);

        let x = v(&[2, 3], &[0i32; 6]);
        let y = run(
            OpKind::EyeLike,
            &attrs(&[("k", Attr::Int(1)), ("dtype", Attr::Int(1))]),
            &[&x],
        );
        assert_eq!(data::<f32>(&y).1, vec![0.0, 1.0, 0.0, 0.0, 0.0, 1.0]);
        let y = run(OpKind::EyeLike, &Attrs::new(), &[&x]);
        assert_eq!(data::<i32>(&y).1, vec![1, 0, 0, 0, 1, 0]);

        let x = v(&[2], &[1.0f32, -2.0]);
        let y = run(OpKind::BitCast, &attrs(&[("to", Attr::Int(6))]), &[&x]);
        assert_eq!(data::<i32>(&y).1, vec![0x3f80_0000, 0xc000_0000u32 as i32]);
        assert!(fails(OpKind::BitCast, &attrs(&[("to", Attr::Int(7))]), &[&x]).contains("widths"));
    }
}
