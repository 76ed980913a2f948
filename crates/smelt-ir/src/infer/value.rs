//! Values of small integer tensors as inference sees them.
//!
//! Shape-like inputs (Reshape's target, Expand's shape, Slice's bounds, ...) are often
//! computed in the graph rather than constant: torch exports build them with
//! `Shape -> Gather -> Unsqueeze -> Concat`. Following such chains back to the shapes
//! they read lets the output keep symbolic dims (`?batch_size`) instead of losing them.
//! Only rank-0 and rank-1 integer values are followed, through a handful of ops, and the
//! walk is bounded so a large or adversarial graph cannot make it expensive.

use std::cell::Cell;

use crate::dtype::DType;
use crate::graph::{Graph, ValueId};
use crate::op::OpKind;
use crate::shape::Dim;
use crate::tensor::Tensor;

use super::util::SymProd;
use super::{dtype_from_onnx_code, InferCx};

/// Largest value (in elements) that is followed; shape tensors are tiny.
const MAX_ELEMS: usize = 4096;
/// Deepest chain of producers followed.
const MAX_DEPTH: usize = 64;
/// Most producer visits per query, so a DAG with heavy sharing stays cheap.
const BUDGET: usize = 4096;

/// One element of a followed integer value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Val {
    /// A known integer.
    Int(i64),
    /// The size of a symbolic dim (so never negative).
    Sym(String),
    /// Nothing known.
    Unknown,
}

impl Val {
    /// The value as a dim: known non-negative ints and symbols; `Err(n)` for a negative int.
    pub fn to_dim(&self) -> Result<Dim, i64> {
        match self {
            Val::Int(n) => u64::try_from(*n).map(Dim::Known).map_err(|_| *n),
            Val::Sym(s) => Ok(Dim::Sym(s.clone())),
            Val::Unknown => Ok(Dim::Unknown),
        }
    }

    fn from_dim(d: &Dim) -> Val {
        match d {
            Dim::Known(n) => i64::try_from(*n).map(Val::Int).unwrap_or(Val::Unknown),
            Dim::Sym(s) => Val::Sym(s.clone()),
            Dim::Unknown => Val::Unknown,
        }
    }

    fn int(&self) -> Option<i64> {
        match self {
            Val::Int(n) => Some(*n),
            _ => None,
        }
    }
}

/// A followed value of rank 0 (`scalar`) or 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Traced {
    /// Rank 0 (one element) rather than rank 1.
    pub scalar: bool,
    /// The elements.
    pub elems: Vec<Val>,
}

impl Traced {
    /// All elements, when every one is a known integer.
    pub fn ints(&self) -> Option<Vec<i64>> {
        self.elems.iter().map(Val::int).collect()
    }
}

/// What is known of the value on input `slot`: its elements (possibly only some known),
/// or `None` when not even its length is known.
pub(super) fn input_value(cx: &InferCx, slot: usize) -> Option<Traced> {
    if let Some(Some(t)) = cx.consts.get(slot) {
        return from_tensor(t);
    }
    let v = cx.graph.node(cx.node).inputs.get(slot).copied().flatten()?;
    let budget = Cell::new(BUDGET);
    trace(cx.graph, v, 0, &budget)
}

/// The elements of input `slot` when all are known integers.
pub(super) fn input_ints(cx: &InferCx, slot: usize) -> Option<Vec<i64>> {
    input_value(cx, slot)?.ints()
}

fn from_tensor(t: &Tensor) -> Option<Traced> {
    if t.shape().len() > 1 || t.len() > MAX_ELEMS {
        return None;
    }
    let ints = t.to_i64_vec().ok()?;
    Some(Traced {
        scalar: t.shape().is_empty(),
        elems: ints.into_iter().map(Val::Int).collect(),
    })
}

/// Follow `v`, falling back to "length known, elements unknown" from its type.
fn trace(g: &Graph, v: ValueId, depth: usize, budget: &Cell<usize>) -> Option<Traced> {
    if let Some(t) = trace_exact(g, v, depth, budget) {
        return Some(t);
    }
    let ty = &g.try_value(v)?.ty;
    if !(ty.dtype.is_int() || ty.dtype == DType::Bool) {
        return None;
    }
    match ty.dims()? {
        [] => Some(Traced {
            scalar: true,
            elems: vec![Val::Unknown],
        }),
        [Dim::Known(n)] => {
            let n = usize::try_from(*n).ok().filter(|&n| n <= MAX_ELEMS)?;
            Some(Traced {
                scalar: false,
                elems: vec![Val::Unknown; n],
            })
        }
        _ => None,
    }
}

fn trace_exact(g: &Graph, v: ValueId, depth: usize, budget: &Cell<usize>) -> Option<Traced> {
    let left = budget.get();
    if depth > MAX_DEPTH || left == 0 {
        return None;
    }
    budget.set(left - 1);
    g.try_value(v)?;
    if let Some(t) = g.plain_constant(v) {
        return from_tensor(t);
    }
    let (id, slot) = g.producer(v)?;
    let node = g.try_node(id)?;
    if slot != 0 {
        return None;
    }
    let inp = |i: usize| node.inputs.get(i).copied().flatten();
    let sub = |i: usize| trace(g, inp(i)?, depth + 1, budget);
    let ints = |i: usize| sub(i)?.ints();
    let a = &node.attrs;
    match &node.op {
        OpKind::Identity => sub(0),
        OpKind::Shape => {
            let dims = g.try_value(inp(0)?)?.ty.dims()?;
            let (s, e) = shape_range(a.int("start"), a.int("end"), dims.len());
            let elems = dims
                .get(s..e)
                .unwrap_or(&[])
                .iter()
                .map(Val::from_dim)
                .collect();
            Some(Traced {
                scalar: false,
                elems,
            })
        }
        OpKind::Size => {
            let dims = g.try_value(inp(0)?)?.ty.dims()?;
            let d = SymProd::of(dims)
                .map(|p| p.to_dim())
                .unwrap_or(Dim::Unknown);
            Some(Traced {
                scalar: true,
                elems: vec![Val::from_dim(&d)],
            })
        }
        OpKind::Cast => {
            let to = dtype_from_onnx_code(a.int("to")?)?;
            let (lo, hi) = to.int_range()?;
            let mut t = sub(0)?;
            for e in &mut t.elems {
                // A cast that would wrap is not followed element by element.
                if matches!(e, Val::Int(n) if !(lo..=hi).contains(&i128::from(*n))) {
                    *e = Val::Unknown;
                }
            }
            Some(t)
        }
        OpKind::Gather => {
            let data = sub(0)?;
            let axis = a.int_or("axis", 0);
            if data.scalar || !(axis == 0 || axis == -1) {
                return None;
            }
            let idx = sub(1)?;
            let len = i64::try_from(data.elems.len()).ok()?;
            let mut elems = Vec::with_capacity(idx.elems.len());
            for i in &idx.elems {
                let i = i.int()?;
                let i = if i < 0 { i.checked_add(len)? } else { i };
                elems.push(data.elems.get(usize::try_from(i).ok()?)?.clone());
            }
            Some(Traced {
                scalar: idx.scalar,
                elems,
            })
        }
        OpKind::Unsqueeze => {
            let data = sub(0)?;
            let axes = match inp(1) {
                Some(_) => ints(1)?,
                None => a.ints("axes")?.to_vec(),
            };
            (data.scalar && (axes == [0] || axes == [-1])).then_some(Traced {
                scalar: false,
                ..data
            })
        }
        OpKind::Squeeze => {
            let data = sub(0)?;
            let axes = match inp(1) {
                Some(_) => ints(1)?,
                None => a.ints("axes").map(<[i64]>::to_vec).unwrap_or_default(),
            };
            let ok = !data.scalar
                && data.elems.len() == 1
                && (axes.is_empty() || axes == [0] || axes == [-1]);
            ok.then_some(Traced {
                scalar: true,
                ..data
            })
        }
        OpKind::Concat => {
            let axis = a.int("axis")?;
            if !(axis == 0 || axis == -1) {
                return None;
            }
            let mut elems = vec![];
            for i in 0..node.inputs.len() {
                let t = sub(i)?;
                if t.scalar {
                    return None;
                }
                elems.extend(t.elems);
                if elems.len() > MAX_ELEMS {
                    return None;
                }
            }
            Some(Traced {
                scalar: false,
                elems,
            })
        }
        OpKind::Slice => {
            let data = sub(0)?;
            if data.scalar {
                return None;
            }
            let one = |i: usize, default: i64| -> Option<i64> {
                match inp(i) {
                    None => Some(default),
                    Some(_) => match ints(i)?.as_slice() {
                        [x] => Some(*x),
                        _ => None,
                    },
                }
            };
            let (start, end, axis, step) = (one(1, 0)?, one(2, 0)?, one(3, 0)?, one(4, 1)?);
            if !(axis == 0 || axis == -1) || step == 0 {
                return None;
            }
            let len = i128::try_from(data.elems.len()).ok()?;
            let (first, n) = slice_range(len, start.into(), end.into(), step.into());
            let mut elems = vec![];
            for k in 0..n {
                let i = first.checked_add(k.checked_mul(step.into())?)?;
                elems.push(data.elems.get(usize::try_from(i).ok()?)?.clone());
            }
            Some(Traced {
                scalar: false,
                elems,
            })
        }
        OpKind::Reshape => {
            let data = sub(0)?;
            let target = ints(1)?;
            match target.as_slice() {
                [] if data.elems.len() == 1 => Some(Traced {
                    scalar: true,
                    ..data
                }),
                [n] if *n == -1 || usize::try_from(*n).ok() == Some(data.elems.len()) => {
                    Some(Traced {
                        scalar: false,
                        ..data
                    })
                }
                _ => None,
            }
        }
        OpKind::Add
        | OpKind::Sub
        | OpKind::Mul
        | OpKind::Div
        | OpKind::Equal
        | OpKind::Max
        | OpKind::Min => binary(&node.op, sub(0)?, sub(1)?),
        OpKind::Where => {
            let (c, x, y) = (sub(0)?, sub(1)?, sub(2)?);
            let n = [c.elems.len(), x.elems.len(), y.elems.len()]
                .into_iter()
                .max()?;
            let pick = |t: &Traced, i: usize| -> Option<Val> {
                match t.elems.len() {
                    1 => t.elems.first().cloned(),
                    l if l == n => t.elems.get(i).cloned(),
                    _ => None,
                }
            };
            let mut elems = Vec::with_capacity(n);
            for i in 0..n {
                elems.push(match pick(&c, i)? {
                    Val::Int(0) => pick(&y, i)?,
                    Val::Int(_) => pick(&x, i)?,
                    _ => Val::Unknown,
                });
            }
            Some(Traced {
                scalar: c.scalar && x.scalar && y.scalar,
                elems,
            })
        }
        OpKind::ConstantOfShape => {
            let shape = ints(0)?;
            let fill = a.tensor("value").and_then(|t| t.to_i64_vec().ok())?;
            match (shape.as_slice(), fill.as_slice()) {
                ([n], [x]) => {
                    let n = usize::try_from(*n).ok().filter(|&n| n <= MAX_ELEMS)?;
                    Some(Traced {
                        scalar: false,
                        elems: vec![Val::Int(*x); n],
                    })
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// Elementwise integer arithmetic with numpy broadcasting of rank-0/1 values.
fn binary(op: &OpKind, x: Traced, y: Traced) -> Option<Traced> {
    let n = match (x.elems.len(), y.elems.len()) {
        (a, b) if a == b => a,
        (1, b) => b,
        (a, 1) => a,
        _ => return None,
    };
    fn get(t: &Traced, i: usize) -> Option<&Val> {
        if t.elems.len() == 1 {
            t.elems.first()
        } else {
            t.elems.get(i)
        }
    }
    let mut elems = Vec::with_capacity(n);
    for i in 0..n {
        elems.push(val_op(op, get(&x, i)?, get(&y, i)?));
    }
    Some(Traced {
        scalar: x.scalar && y.scalar,
        elems,
    })
}

fn val_op(op: &OpKind, x: &Val, y: &Val) -> Val {
    use Val::{Int, Sym};
    let known = |r: Option<i64>| r.map(Int).unwrap_or(Val::Unknown);
    match (op, x, y) {
        (OpKind::Add, Int(a), Int(b)) => known(a.checked_add(*b)),
        (OpKind::Sub, Int(a), Int(b)) => known(a.checked_sub(*b)),
        (OpKind::Mul, Int(a), Int(b)) => known(a.checked_mul(*b)),
        // Integer division rounding differs between runtimes for negative operands.
        (OpKind::Div, Int(a), Int(b)) if *a >= 0 && *b > 0 => Int(a / b),
        (OpKind::Max, Int(a), Int(b)) => Int(*a.max(b)),
        (OpKind::Min, Int(a), Int(b)) => Int(*a.min(b)),
        (OpKind::Equal, Int(a), Int(b)) => Int(i64::from(a == b)),
        (OpKind::Add, s @ Sym(_), Int(0)) | (OpKind::Add, Int(0), s @ Sym(_)) => s.clone(),
        (OpKind::Sub, s @ Sym(_), Int(0)) => s.clone(),
        (OpKind::Sub, Sym(a), Sym(b)) if a == b => Int(0),
        (OpKind::Mul, s @ Sym(_), Int(1)) | (OpKind::Mul, Int(1), s @ Sym(_)) => s.clone(),
        (OpKind::Mul, _, Int(0)) | (OpKind::Mul, Int(0), _) => Int(0),
        (OpKind::Div, s @ Sym(_), Int(1)) => s.clone(),
        // Dim sizes are never negative.
        (OpKind::Max, s @ Sym(_), Int(b)) | (OpKind::Max, Int(b), s @ Sym(_)) if *b <= 0 => {
            s.clone()
        }
        (OpKind::Equal, Sym(_), Int(b)) | (OpKind::Equal, Int(b), Sym(_)) if *b < 0 => Int(0),
        (OpKind::Equal, Sym(a), Sym(b)) if a == b => Int(1),
        _ => Val::Unknown,
    }
}

/// The `[start, end)` range of dims `Shape` returns (opset 15 `start`/`end`, clamped).
pub(super) fn shape_range(start: Option<i64>, end: Option<i64>, rank: usize) -> (usize, usize) {
    let r = i128::try_from(rank).unwrap_or(i128::MAX);
    let fix = |v: Option<i64>, default: i128| -> usize {
        let v = v.map(i128::from).unwrap_or(default);
        let v = if v < 0 { v + r } else { v };
        usize::try_from(v.max(0).min(r)).unwrap_or(rank)
    };
    let s = fix(start, 0);
    let e = fix(end, r);
    (s, e.max(s))
}

/// ONNX Slice on one axis of size `d`: the first index taken and the count taken.
/// Negative `start`/`end` count from the end; both are clamped as the spec says.
/// `step` must not be 0.
pub(super) fn slice_range(d: i128, start: i128, end: i128, step: i128) -> (i128, i128) {
    let s = if start < 0 { start + d } else { start };
    let e = if end < 0 { end + d } else { end };
    if step > 0 {
        let (s, e) = (s.max(0).min(d), e.max(0).min(d));
        let n = if e > s { (e - s + step - 1) / step } else { 0 };
        (s, n)
    } else {
        let (s, e) = (s.max(0).min(d - 1), e.max(-1).min(d - 1));
        let n = if s > e { (s - e - step - 1) / -step } else { 0 };
        (s, n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slice_ranges_follow_onnx_clamping() {
        assert_eq!(slice_range(10, 0, i64::MAX.into(), 1), (0, 10));
        assert_eq!(slice_range(10, -3, -1, 1), (7, 2));
        assert_eq!(slice_range(10, -1, i64::MIN.into(), -1), (9, 10));
        assert_eq!(slice_range(10, 1, 8, 3), (1, 3));
        assert_eq!(slice_range(0, -1, i64::MIN.into(), -1).1, 0);
        assert_eq!(slice_range(5, 4, 1, 1).1, 0);
        assert_eq!(shape_range(Some(-2), None, 4), (2, 4));
        assert_eq!(shape_range(Some(3), Some(1), 4), (3, 3));
    }
}
