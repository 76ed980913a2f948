//! Rules for ops that move data around or compute shapes: Reshape, Flatten, Transpose,
//! Squeeze/Unsqueeze, Concat, Split, Slice, Gather, Expand, Tile, Shape, Range and
//! ConstantOfShape.

use crate::dtype::DType;
use crate::shape::{Dim, Shape};
use crate::tensor::Tensor;
use crate::types::TensorType;

use super::util::{
    attrs, broadcast, index_dtype, input, norm_axes, norm_axis, num_outputs, opt_input,
    product_dim, same_dtype, show, unify_dim, SymProd, R,
};
use super::value::{input_ints, input_value, shape_range, slice_range, Val};
use super::InferCx;

fn one(t: TensorType) -> R<Vec<TensorType>> {
    Ok(vec![t])
}

/// Require a shape-like input to be a 1-D integer tensor.
fn shape_input(t: &TensorType, what: &str, dtypes: &[DType]) -> R<()> {
    if !dtypes.contains(&t.dtype) {
        let names: Vec<&str> = dtypes.iter().map(|d| d.name()).collect();
        return Err(format!("{what} must be {}, got {t}", names.join(" or ")));
    }
    match t.rank() {
        Some(r) if r != 1 => Err(format!("{what} must be 1-D, got {t}")),
        _ => Ok(()),
    }
}

/// `Reshape`: 0 copies the input dim (unless `allowzero`), -1 is inferred from the
/// element count, symbolic where the division works out symbolically.
///
/// A target entry read from a symbolic dim is taken as that size. Were the dim 0 at run
/// time ONNX would copy the input dim instead; only empty tensors can hit that.
pub(super) fn reshape(cx: &InferCx) -> R<Vec<TensorType>> {
    let data = input(cx, 0, "data")?;
    let shape_ty = input(cx, 1, "shape")?;
    shape_input(shape_ty, "input 1 (shape)", &[DType::I64])?;
    let allowzero = attrs(cx).int_or("allowzero", 0) != 0;
    let Some(target) = input_value(cx, 1) else {
        return one(TensorType::unranked(data.dtype));
    };
    let in_dims = data.dims();
    let mut out = Vec::with_capacity(target.elems.len());
    let mut infer_at = None;
    for (i, v) in target.elems.iter().enumerate() {
        out.push(match v {
            Val::Int(-1) => {
                if infer_at.is_some() {
                    return Err(format!(
                        "input 1 (shape) {} has more than one -1",
                        show_vals(&target.elems)
                    ));
                }
                infer_at = Some(i);
                Dim::Unknown
            }
            Val::Int(0) if allowzero => {
                if target.elems.contains(&Val::Int(-1)) {
                    return Err("input 1 (shape) has both 0 and -1 while allowzero=1".into());
                }
                Dim::Known(0)
            }
            Val::Int(0) => match in_dims {
                None => Dim::Unknown,
                Some(d) => d.get(i).cloned().ok_or_else(|| {
                    format!(
                        "input 1 (shape) copies dim {i} (value 0) but data {data} has rank {}",
                        d.len()
                    )
                })?,
            },
            other => other
                .to_dim()
                .map_err(|n| format!("input 1 (shape) has invalid value {n} at position {i}"))?,
        });
    }
    let total = in_dims.and_then(SymProd::of);
    if let Some(k) = infer_at {
        let rest: Vec<Dim> = out
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != k)
            .map(|(_, d)| d.clone())
            .collect();
        if let (Some(total), Some(rest_p)) = (&total, SymProd::of(&rest)) {
            let dim = if total.coef == 0 && rest_p.coef != 0 {
                Dim::Known(0)
            } else if rest_p.coef == 0 {
                return Err(format!(
                    "cannot infer the -1 in shape {} when other dims are 0",
                    show(&out)
                ));
            } else if let Some(q) = total.div(&rest_p) {
                q.to_dim()
            } else if total.syms.is_empty() && rest_p.syms.is_empty() {
                return Err(format!(
                    "cannot reshape data {data} ({} elements) to {}",
                    total.coef,
                    show(&out)
                ));
            } else {
                Dim::Unknown
            };
            if let Some(slot) = out.get_mut(k) {
                *slot = dim;
            }
        }
    } else if let (Some(t), Some(o)) = (&total, SymProd::of(&out)) {
        // With no symbols on either side the element counts must agree.
        if t.syms.is_empty() && o.syms.is_empty() && t.coef != o.coef {
            return Err(format!(
                "cannot reshape data {data} ({} elements) to {} ({} elements)",
                t.coef,
                show(&out),
                o.coef
            ));
        }
    }
    one(TensorType::new(data.dtype, out))
}

fn show_vals(v: &[Val]) -> String {
    let parts: Vec<String> = v
        .iter()
        .map(|x| match x {
            Val::Int(n) => n.to_string(),
            Val::Sym(s) => format!("?{s}"),
            Val::Unknown => "?".into(),
        })
        .collect();
    format!("[{}]", parts.join(", "))
}

/// `Flatten`: a 2-D result `[prod(dims[..axis]), prod(dims[axis..])]`.
pub(super) fn flatten(cx: &InferCx) -> R<Vec<TensorType>> {
    let x = input(cx, 0, "input")?;
    let axis = attrs(cx).int_or("axis", 1);
    let Some(dims) = x.dims() else {
        return one(TensorType::new(x.dtype, vec![Dim::Unknown, Dim::Unknown]));
    };
    // Flatten's axis is in [-rank, rank]: a negative one counts from the rank (not
    // rank + 1), and axis = rank puts everything in the first dim.
    let rank = dims.len() as i64;
    let a = match axis {
        a if (0..=rank).contains(&a) => a as usize,
        a if (-rank..0).contains(&a) => (a + rank) as usize,
        _ => {
            return Err(format!(
                "attribute `axis` = {axis} is out of range for input {x}"
            ))
        }
    };
    let (head, tail) = dims.split_at(a);
    one(TensorType::new(
        x.dtype,
        vec![product_dim(head), product_dim(tail)],
    ))
}

/// `Transpose`: `perm` defaults to reversing the dims.
pub(super) fn transpose(cx: &InferCx) -> R<Vec<TensorType>> {
    let x = input(cx, 0, "data")?;
    let perm = attrs(cx).ints("perm");
    let rank = match (x.rank(), perm) {
        (Some(r), _) => r,
        (None, Some(p)) => p.len(),
        (None, None) => return one(x.clone()),
    };
    let perm: Vec<i64> = match perm {
        Some(p) => p.to_vec(),
        None => (0..rank as i64).rev().collect(),
    };
    if perm.len() != rank {
        return Err(format!(
            "attribute `perm` {perm:?} has {} entries but input {x} has rank {rank}",
            perm.len()
        ));
    }
    let mut seen = vec![false; rank];
    let mut idx = Vec::with_capacity(rank);
    for &p in &perm {
        let i = usize::try_from(p).ok().filter(|&i| i < rank);
        match i.and_then(|i| seen.get_mut(i).map(|s| (i, s))) {
            Some((i, s)) if !*s => {
                *s = true;
                idx.push(i);
            }
            _ => {
                return Err(format!(
                    "attribute `perm` {perm:?} is not a permutation of 0..{rank}"
                ))
            }
        }
    }
    let dims = match x.dims() {
        Some(d) => idx
            .iter()
            .map(|&i| d.get(i).cloned().unwrap_or(Dim::Unknown))
            .collect(),
        None => vec![Dim::Unknown; rank],
    };
    one(TensorType::new(x.dtype, dims))
}

/// Axes given as input `slot` (newest opsets) or, for older graphs, attribute `axes`.
/// `Ok(None)` when given but not known; `Ok(Some(empty))` when not given.
fn axes_of(cx: &InferCx, slot: usize) -> R<Option<Vec<i64>>> {
    match opt_input(cx, slot) {
        Some(t) => {
            shape_input(t, &format!("input {slot} (axes)"), &[DType::I64])?;
            Ok(input_ints(cx, slot))
        }
        None => Ok(Some(
            attrs(cx)
                .ints("axes")
                .map(<[i64]>::to_vec)
                .unwrap_or_default(),
        )),
    }
}

/// `Squeeze`: drop the listed size-1 dims, or every size-1 dim when none are listed.
pub(super) fn squeeze(cx: &InferCx) -> R<Vec<TensorType>> {
    let x = input(cx, 0, "data")?;
    let Some(dims) = x.dims() else {
        return one(TensorType::unranked(x.dtype));
    };
    let Some(axes) = axes_of(cx, 1)? else {
        // Which dims go is unknown; only how many, if the axes' length is.
        let n = input_value(cx, 1).map(|t| t.elems.len());
        let dims = n
            .and_then(|n| dims.len().checked_sub(n))
            .map(|r| vec![Dim::Unknown; r]);
        return one(TensorType {
            dtype: x.dtype,
            shape: Shape(dims),
        });
    };
    if axes.is_empty() {
        // A symbolic dim might be 1 at run time, so the result rank is then unknown.
        if dims.iter().any(|d| d.known().is_none()) {
            return one(TensorType::unranked(x.dtype));
        }
        let out = dims
            .iter()
            .filter(|d| **d != Dim::Known(1))
            .cloned()
            .collect::<Vec<_>>();
        return one(TensorType::new(x.dtype, out));
    }
    let axes = norm_axes(&axes, dims.len(), "axes")?;
    for &a in &axes {
        if let Some(Dim::Known(n)) = dims.get(a) {
            if *n != 1 {
                return Err(format!("cannot squeeze axis {a} of size {n} in input {x}"));
            }
        }
    }
    let out: Vec<Dim> = dims
        .iter()
        .enumerate()
        .filter(|(i, _)| !axes.contains(i))
        .map(|(_, d)| d.clone())
        .collect();
    one(TensorType::new(x.dtype, out))
}

/// `Unsqueeze`: insert size-1 dims at the listed output positions.
pub(super) fn unsqueeze(cx: &InferCx) -> R<Vec<TensorType>> {
    let x = input(cx, 0, "data")?;
    let Some(axes) = axes_of(cx, 1)? else {
        let n = input_value(cx, 1).map(|t| t.elems.len());
        let dims = x
            .rank()
            .zip(n)
            .and_then(|(r, n)| r.checked_add(n))
            .map(|r| vec![Dim::Unknown; r]);
        return one(TensorType {
            dtype: x.dtype,
            shape: Shape(dims),
        });
    };
    if axes.is_empty() {
        return Err("Unsqueeze needs at least one axis (input 1 / attribute `axes`)".into());
    }
    let Some(dims) = x.dims() else {
        return one(TensorType::unranked(x.dtype));
    };
    let rank = dims.len().checked_add(axes.len()).ok_or("rank overflows")?;
    let axes = norm_axes(&axes, rank, "axes")?;
    let mut src = dims.iter();
    let out: Vec<Dim> = (0..rank)
        .map(|i| {
            if axes.contains(&i) {
                Dim::Known(1)
            } else {
                src.next().cloned().unwrap_or(Dim::Unknown)
            }
        })
        .collect();
    one(TensorType::new(x.dtype, out))
}

/// `Concat`: dims off the axis must agree; the axis dim is the sum.
pub(super) fn concat(cx: &InferCx) -> R<Vec<TensorType>> {
    let axis = attrs(cx).int("axis").ok_or("attribute `axis` is missing")?;
    let first = input(cx, 0, "inputs")?;
    let mut ranked: Vec<(usize, &[Dim])> = vec![];
    let mut any_unranked = false;
    for slot in 0..cx.inputs.len() {
        let t = input(cx, slot, "inputs")?;
        same_dtype(first, "input 0", t, &format!("input {slot}"))?;
        match t.dims() {
            Some(d) => ranked.push((slot, d)),
            None => any_unranked = true,
        }
    }
    let Some(&(slot0, d0)) = ranked.first() else {
        return one(TensorType::unranked(first.dtype));
    };
    let rank = d0.len();
    let a = norm_axis(axis, rank, "attribute `axis`")?;
    let mut out = d0.to_vec();
    let mut sum = Some(SymSum::default());
    for &(slot, d) in &ranked {
        if d.len() != rank {
            return Err(format!(
                "input {slot} has shape {} but input {slot0} has rank {rank}",
                show(d)
            ));
        }
        for (i, (o, x)) in out.iter_mut().zip(d).enumerate() {
            if i == a {
                continue;
            }
            *o = unify_dim(o, x).ok_or_else(|| {
                format!(
                    "input {slot} has shape {} which differs from input {slot0} {} off axis {a}",
                    show(d),
                    show(d0)
                )
            })?;
        }
        sum = sum.and_then(|s| s.add(d.get(a)?));
    }
    if let Some(o) = out.get_mut(a) {
        *o = if any_unranked {
            Dim::Unknown
        } else {
            sum.map(|s| s.to_dim()).unwrap_or(Dim::Unknown)
        };
    }
    one(TensorType::new(first.dtype, out))
}

/// A sum of dims that stays exact while at most one term is not a known size.
#[derive(Default)]
struct SymSum {
    known: u64,
    other: Option<Dim>,
}

impl SymSum {
    fn add(mut self, d: &Dim) -> Option<SymSum> {
        match d {
            Dim::Known(n) => self.known = self.known.checked_add(*n)?,
            _ if self.other.is_none() => self.other = Some(d.clone()),
            _ => return None,
        }
        Some(self)
    }

    fn to_dim(&self) -> Dim {
        match &self.other {
            None => Dim::Known(self.known),
            Some(d) if self.known == 0 => d.clone(),
            Some(_) => Dim::Unknown,
        }
    }
}

/// `Split`: sizes from the `split` input (or attribute), else equal parts with a
/// smaller last part (opset 18 `num_outputs`).
pub(super) fn split(cx: &InferCx) -> R<Vec<TensorType>> {
    let x = input(cx, 0, "input")?;
    let n = num_outputs(cx);
    let a = attrs(cx);
    if let Some(k) = a.int("num_outputs") {
        if usize::try_from(k).ok() != Some(n) {
            return Err(format!(
                "attribute `num_outputs` = {k} but the node has {n} outputs"
            ));
        }
    }
    let Some(dims) = x.dims() else {
        return Ok(vec![TensorType::unranked(x.dtype); n]);
    };
    let axis = norm_axis(a.int_or("axis", 0), dims.len(), "attribute `axis`")?;
    let dim = dims.get(axis).cloned().unwrap_or(Dim::Unknown);
    let sizes: Option<Vec<Dim>> = match opt_input(cx, 1) {
        Some(t) => {
            shape_input(t, "input 1 (split)", &[DType::I64])?;
            input_ints(cx, 1)
                .map(|s| sizes_from_split(&s, n, &dim, x))
                .transpose()?
        }
        None => match a.ints("split") {
            Some(s) => Some(sizes_from_split(s, n, &dim, x)?),
            None => Some(equal_split(&dim, n, x)?),
        },
    };
    let sizes = sizes.unwrap_or_else(|| vec![Dim::Unknown; n]);
    Ok(sizes
        .into_iter()
        .map(|s| {
            let mut d = dims.to_vec();
            if let Some(o) = d.get_mut(axis) {
                *o = s;
            }
            TensorType::new(x.dtype, d)
        })
        .collect())
}

fn sizes_from_split(split: &[i64], n: usize, dim: &Dim, x: &TensorType) -> R<Vec<Dim>> {
    if split.len() != n {
        return Err(format!(
            "split {split:?} has {} entries but the node has {n} outputs",
            split.len()
        ));
    }
    let mut total = 0u64;
    let mut out = vec![];
    for &s in split {
        let s = u64::try_from(s).map_err(|_| format!("split {split:?} has a negative size"))?;
        total = total.checked_add(s).ok_or("split sizes overflow")?;
        out.push(Dim::Known(s));
    }
    if let Dim::Known(d) = dim {
        if *d != total {
            return Err(format!(
                "split {split:?} sums to {total} but the split axis of input {x} has size {d}"
            ));
        }
    }
    Ok(out)
}

fn equal_split(dim: &Dim, n: usize, x: &TensorType) -> R<Vec<Dim>> {
    if n == 0 {
        return Err("Split node has no outputs".into());
    }
    let Dim::Known(d) = dim else {
        return Ok(if n == 1 {
            vec![dim.clone()]
        } else {
            vec![Dim::Unknown; n]
        });
    };
    let parts = n as u64;
    let chunk = d.div_ceil(parts);
    let last = chunk
        .checked_mul(parts - 1)
        .and_then(|used| d.checked_sub(used));
    match last {
        Some(last) if chunk > 0 || *d == 0 => {
            let mut out = vec![Dim::Known(chunk); n - 1];
            out.push(Dim::Known(last));
            Ok(out)
        }
        _ => Err(format!(
            "cannot split axis of size {d} of input {x} into {n} parts"
        )),
    }
}

/// `Slice`: exact sizes where bounds and dims are known; untouched axes keep their dims.
pub(super) fn slice(cx: &InferCx) -> R<Vec<TensorType>> {
    let x = input(cx, 0, "data")?;
    for (slot, name) in [(1, "starts"), (2, "ends"), (3, "axes"), (4, "steps")] {
        if let Some(t) = opt_input(cx, slot) {
            shape_input(
                t,
                &format!("input {slot} ({name})"),
                &[DType::I64, DType::I32],
            )?;
        }
    }
    input(cx, 1, "starts")?;
    input(cx, 2, "ends")?;
    let Some(dims) = x.dims() else {
        return one(x.clone());
    };
    let rank = dims.len();
    let starts = input_value(cx, 1);
    let ends = input_value(cx, 2);
    let n = starts.as_ref().or(ends.as_ref()).map(|t| t.elems.len());
    if let (Some(s), Some(e)) = (&starts, &ends) {
        if s.elems.len() != e.elems.len() {
            return Err(format!(
                "starts has {} entries but ends has {}",
                s.elems.len(),
                e.elems.len()
            ));
        }
    }
    let axes: Option<Vec<usize>> = match opt_input(cx, 3) {
        Some(_) => match input_ints(cx, 3) {
            Some(a) => Some(norm_axes(&a, rank, "axes")?),
            None => None,
        },
        None => match n {
            Some(n) if n > rank => {
                return Err(format!(
                    "starts/ends have {n} entries but input 0 (data) {x} has rank {rank}"
                ))
            }
            n => n.map(|n| (0..n).collect()),
        },
    };
    let Some(axes) = axes else {
        // Any axis may be sliced.
        return one(TensorType::new(x.dtype, vec![Dim::Unknown; rank]));
    };
    if let Some(n) = n {
        if n != axes.len() {
            return Err(format!(
                "starts/ends have {n} entries but axes has {}",
                axes.len()
            ));
        }
    }
    let steps = match opt_input(cx, 4) {
        Some(_) => input_value(cx, 4).map(|t| t.elems),
        None => Some(vec![Val::Int(1); axes.len()]),
    };
    if let Some(s) = &steps {
        if s.len() != axes.len() {
            return Err(format!(
                "steps has {} entries but axes has {}",
                s.len(),
                axes.len()
            ));
        }
        if s.contains(&Val::Int(0)) {
            return Err("steps must not contain 0".into());
        }
    }
    let starts = starts.map(|t| t.elems);
    let ends = ends.map(|t| t.elems);
    let int_at = |v: &Option<Vec<Val>>, k: usize| match v.as_ref().and_then(|v| v.get(k)) {
        Some(Val::Int(i)) => Some(*i),
        _ => None,
    };
    let mut out = dims.to_vec();
    for (k, &a) in axes.iter().enumerate() {
        let Some(o) = out.get_mut(a) else { continue };
        *o = match (int_at(&starts, k), int_at(&ends, k), int_at(&steps, k), &*o) {
            (Some(s), Some(e), Some(st), Dim::Known(d)) => {
                let (_, len) = slice_range(i128::from(*d), s.into(), e.into(), st.into());
                Dim::Known(u64::try_from(len).unwrap_or(0))
            }
            // The whole axis, forwards or backwards: the dim is unchanged even if symbolic.
            (Some(0), Some(i64::MAX), Some(1), d) => d.clone(),
            (Some(-1 | i64::MAX), Some(i64::MIN), Some(-1), d) => d.clone(),
            _ => Dim::Unknown,
        };
    }
    one(TensorType::new(x.dtype, out))
}

/// `Gather`: `data.shape[..axis] + indices.shape + data.shape[axis+1..]`.
pub(super) fn gather(cx: &InferCx) -> R<Vec<TensorType>> {
    let data = input(cx, 0, "data")?;
    let idx = input(cx, 1, "indices")?;
    index_dtype(idx, "input 1 (indices)")?;
    let (Some(d), Some(i)) = (data.dims(), idx.dims()) else {
        return one(TensorType::unranked(data.dtype));
    };
    if d.is_empty() {
        return Err(format!("input 0 (data) must have rank >= 1, got {data}"));
    }
    let a = norm_axis(attrs(cx).int_or("axis", 0), d.len(), "attribute `axis`")?;
    if let (Some(Dim::Known(n)), Some(values)) = (d.get(a), input_ints(cx, 1)) {
        let n = i128::from(*n);
        if let Some(bad) = values.iter().find(|&&v| !(-n..n).contains(&i128::from(v))) {
            return Err(format!(
                "index {bad} in input 1 (indices) is out of range for axis {a} of data {data}"
            ));
        }
    }
    let mut out = d.get(..a).unwrap_or(&[]).to_vec();
    out.extend_from_slice(i);
    out.extend_from_slice(d.get(a + 1..).unwrap_or(&[]));
    one(TensorType::new(data.dtype, out))
}

/// Dims named by a shape-valued input, `None` when its length is unknown.
fn dims_of_value(cx: &InferCx, slot: usize, what: &str) -> R<Option<Vec<Dim>>> {
    let Some(v) = input_value(cx, slot) else {
        return Ok(None);
    };
    v.elems
        .iter()
        .map(|e| {
            e.to_dim()
                .map_err(|n| format!("{what} has negative value {n}"))
        })
        .collect::<R<Vec<Dim>>>()
        .map(Some)
}

/// `Expand`: broadcast of the input's shape with the requested one.
pub(super) fn expand(cx: &InferCx) -> R<Vec<TensorType>> {
    let x = input(cx, 0, "input")?;
    let s = input(cx, 1, "shape")?;
    shape_input(s, "input 1 (shape)", &[DType::I64])?;
    let Some(target) = dims_of_value(cx, 1, "input 1 (shape)")? else {
        return one(TensorType::unranked(x.dtype));
    };
    let shape = broadcast(
        &[&x.shape, &Shape::new(target)],
        "input 0 and input 1 (shape)",
    )?;
    one(TensorType {
        dtype: x.dtype,
        shape,
    })
}

/// `Tile`: each dim times its repeat count.
pub(super) fn tile(cx: &InferCx) -> R<Vec<TensorType>> {
    let x = input(cx, 0, "input")?;
    let r = input(cx, 1, "repeats")?;
    shape_input(r, "input 1 (repeats)", &[DType::I64])?;
    let Some(dims) = x.dims() else {
        return one(x.clone());
    };
    let Some(reps) = input_value(cx, 1) else {
        return one(TensorType::new(x.dtype, vec![Dim::Unknown; dims.len()]));
    };
    if reps.elems.len() != dims.len() {
        return Err(format!(
            "input 1 (repeats) has {} entries but input 0 {x} has rank {}",
            reps.elems.len(),
            dims.len()
        ));
    }
    let mut out = Vec::with_capacity(dims.len());
    for (d, rep) in dims.iter().zip(&reps.elems) {
        let rep = rep
            .to_dim()
            .map_err(|n| format!("input 1 (repeats) has negative value {n}"))?;
        out.push(product_dim(&[d.clone(), rep]));
    }
    one(TensorType::new(x.dtype, out))
}

/// `Shape`: `i64[len]` for the `[start, end)` dims (opset 15).
pub(super) fn shape(cx: &InferCx) -> R<Vec<TensorType>> {
    let x = input(cx, 0, "data")?;
    let a = attrs(cx);
    let len = match x.rank() {
        Some(r) => {
            let (s, e) = shape_range(a.int("start"), a.int("end"), r);
            Dim::Known((e - s) as u64)
        }
        None => Dim::Unknown,
    };
    one(TensorType::new(DType::I64, vec![len]))
}

/// `Range`: 1-D; its length is known when start, limit and delta are.
pub(super) fn range(cx: &InferCx) -> R<Vec<TensorType>> {
    let start = input(cx, 0, "start")?;
    for (slot, name) in [(1, "limit"), (2, "delta")] {
        same_dtype(
            start,
            "input 0 (start)",
            input(cx, slot, name)?,
            &format!("input {slot} ({name})"),
        )?;
    }
    for (slot, name) in [(0, "start"), (1, "limit"), (2, "delta")] {
        if let Some(t) = opt_input(cx, slot) {
            if t.rank().is_some_and(|r| r > 1)
                || t.dims()
                    .is_some_and(|d| matches!(d, [Dim::Known(n)] if *n != 1))
            {
                return Err(format!("input {slot} ({name}) must be a scalar, got {t}"));
            }
        }
    }
    let len = range_len(cx)?;
    one(TensorType::new(start.dtype, vec![len]))
}

fn range_len(cx: &InferCx) -> R<Dim> {
    let c = |i: usize| cx.consts.get(i).copied().flatten();
    if let (Some(s), Some(l), Some(d)) = (c(0), c(1), c(2)) {
        if s.dtype().is_float() {
            if let (Some(s), Some(l), Some(d)) = (scalar_f64(s), scalar_f64(l), scalar_f64(d)) {
                if d == 0.0 {
                    return Err("input 2 (delta) must not be 0".into());
                }
                let n = ((l - s) / d).ceil();
                if !n.is_finite() || n >= u64::MAX as f64 {
                    return Err(format!("Range({s}, {l}, {d}) has no finite length"));
                }
                return Ok(Dim::Known(n.max(0.0) as u64));
            }
            return Ok(Dim::Unknown);
        }
    }
    let one_val = |slot: usize| input_value(cx, slot).and_then(|t| t.elems.first().cloned());
    Ok(match (one_val(0), one_val(1), one_val(2)) {
        (Some(Val::Int(_)), _, Some(Val::Int(0))) => {
            return Err("input 2 (delta) must not be 0".into())
        }
        (Some(Val::Int(s)), Some(Val::Int(l)), Some(Val::Int(d))) => {
            let (s, l, d) = (i128::from(s), i128::from(l), i128::from(d));
            let diff = l - s;
            // Ceiling division for either sign of delta.
            let n = if (diff > 0) == (d > 0) && diff != 0 {
                (diff + d - d.signum()) / d
            } else {
                0
            };
            Dim::Known(u64::try_from(n).unwrap_or(0))
        }
        (Some(Val::Int(0)), Some(Val::Sym(l)), Some(Val::Int(1))) => Dim::Sym(l),
        _ => Dim::Unknown,
    })
}

fn scalar_f64(t: &Tensor) -> Option<f64> {
    if t.len() != 1 {
        return None;
    }
    match t.dtype() {
        DType::F64 => t.to_vec::<f64>().ok()?.first().copied(),
        DType::F32 => t.to_vec::<f32>().ok()?.first().map(|&v| f64::from(v)),
        DType::F16 => t.to_vec::<half::f16>().ok()?.first().map(|v| v.to_f64()),
        DType::BF16 => t.to_vec::<half::bf16>().ok()?.first().map(|v| v.to_f64()),
        _ => None,
    }
}

/// `ConstantOfShape`: dims from the shape input, dtype from the `value` attribute.
pub(super) fn constant_of_shape(cx: &InferCx) -> R<Vec<TensorType>> {
    let s = input(cx, 0, "input")?;
    shape_input(s, "input 0 (input)", &[DType::I64])?;
    let dtype = attrs(cx)
        .tensor("value")
        .map(Tensor::dtype)
        .unwrap_or(DType::F32);
    let shape = Shape(dims_of_value(cx, 0, "input 0 (input)")?);
    one(TensorType { dtype, shape })
}
