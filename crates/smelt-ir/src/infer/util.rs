//! Helpers shared by the inference rules: input and attribute access, axis
//! normalisation, dim unification and symbolic products.

use crate::attr::Attrs;
use crate::dtype::DType;
use crate::shape::{broadcast_shapes, Dim, Shape};
use crate::types::TensorType;

use super::InferCx;

/// Result type of the rules: errors are plain messages, wrapped with the node's label by
/// the caller.
pub(super) type R<T> = Result<T, String>;

/// The node's attributes.
pub(super) fn attrs<'a>(cx: &InferCx<'a>) -> &'a Attrs {
    &cx.graph.node(cx.node).attrs
}

/// The type of an optional input slot (`None` when omitted or past the end).
pub(super) fn opt_input<'a>(cx: &InferCx<'a>, slot: usize) -> Option<&'a TensorType> {
    cx.inputs.get(slot).copied().flatten()
}

/// The type of a required input slot.
pub(super) fn input<'a>(cx: &InferCx<'a>, slot: usize, what: &str) -> R<&'a TensorType> {
    opt_input(cx, slot).ok_or_else(|| format!("required input {slot} ({what}) is missing"))
}

/// Number of outputs the node declares.
pub(super) fn num_outputs(cx: &InferCx) -> usize {
    cx.graph.node(cx.node).outputs.len()
}

/// Normalise a possibly negative axis against `rank` (valid range `[-rank, rank-1]`).
pub(super) fn norm_axis(axis: i64, rank: usize, what: &str) -> R<usize> {
    let r = i64::try_from(rank).map_err(|_| format!("rank {rank} is too large"))?;
    let a = if axis < 0 {
        axis.checked_add(r)
    } else {
        Some(axis)
    };
    match a {
        Some(a) if (0..r).contains(&a) => {
            usize::try_from(a).map_err(|_| format!("{what} {axis} is out of range"))
        }
        _ => Err(format!("{what} {axis} is out of range for rank {rank}")),
    }
}

/// Normalise a list of axes against `rank`, rejecting duplicates.
pub(super) fn norm_axes(axes: &[i64], rank: usize, what: &str) -> R<Vec<usize>> {
    let mut out = Vec::with_capacity(axes.len());
    for &a in axes {
        let n = norm_axis(a, rank, what)?;
        if out.contains(&n) {
            return Err(format!("{what} {axes:?} name axis {n} twice"));
        }
        out.push(n);
    }
    Ok(out)
}

/// Two dims that must be equal at run time: the more specific one, or `None` when both
/// are known and differ. Different symbol names are accepted (they may still be equal).
pub(super) fn unify_dim(a: &Dim, b: &Dim) -> Option<Dim> {
    match (a, b) {
        (Dim::Known(x), Dim::Known(y)) => (x == y).then(|| a.clone()),
        (Dim::Known(_), _) | (Dim::Sym(_), Dim::Unknown) => Some(a.clone()),
        (_, Dim::Known(_)) | (Dim::Unknown, Dim::Sym(_)) => Some(b.clone()),
        (Dim::Sym(_), Dim::Sym(_)) => Some(a.clone()),
        (Dim::Unknown, Dim::Unknown) => Some(Dim::Unknown),
    }
}

/// Broadcast shapes, with an error naming them when two known dims conflict.
pub(super) fn broadcast(shapes: &[&Shape], what: &str) -> R<Shape> {
    broadcast_shapes(shapes).ok_or_else(|| {
        let list: Vec<String> = shapes.iter().map(|s| s.to_string()).collect();
        format!("{what}: shapes {} do not broadcast", list.join(" and "))
    })
}

/// Require two input types to share a dtype.
pub(super) fn same_dtype(a: &TensorType, a_name: &str, b: &TensorType, b_name: &str) -> R<()> {
    if a.dtype == b.dtype {
        Ok(())
    } else {
        Err(format!(
            "{a_name} is {a} but {b_name} is {b}; their dtypes must match"
        ))
    }
}

/// Require an input of an integer index type (`i32` or `i64`).
pub(super) fn index_dtype(t: &TensorType, what: &str) -> R<()> {
    if matches!(t.dtype, DType::I64 | DType::I32) {
        Ok(())
    } else {
        Err(format!("{what} must be i32 or i64, got {t}"))
    }
}

/// A symbolic product of dims: `coef * syms[0] * syms[1] * ...` (symbols sorted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SymProd {
    /// The product of the known factors.
    pub coef: u64,
    /// The symbolic factors, sorted by name.
    pub syms: Vec<String>,
}

impl SymProd {
    /// The product of `dims`; `None` when one is unknown or the known part overflows.
    pub fn of(dims: &[Dim]) -> Option<SymProd> {
        let mut p = SymProd {
            coef: 1,
            syms: vec![],
        };
        for d in dims {
            match d {
                Dim::Known(n) => p.coef = p.coef.checked_mul(*n)?,
                Dim::Sym(s) => p.syms.push(s.clone()),
                Dim::Unknown => {
                    // Anything times zero is zero, whatever the unknown dim is.
                    if dims.contains(&Dim::Known(0)) {
                        return Some(SymProd {
                            coef: 0,
                            syms: vec![],
                        });
                    }
                    return None;
                }
            }
        }
        if p.coef == 0 {
            p.syms.clear();
        }
        p.syms.sort();
        Some(p)
    }

    /// The product as one dim, when it is expressible as one.
    pub fn to_dim(&self) -> Dim {
        match (self.coef, self.syms.as_slice()) {
            (0, _) => Dim::Known(0),
            (c, []) => Dim::Known(c),
            (1, [s]) => Dim::Sym(s.clone()),
            _ => Dim::Unknown,
        }
    }

    /// `self / other` when `other`'s symbols all occur in `self` and its known part
    /// divides `self`'s; `None` when the quotient cannot be expressed that way.
    pub fn div(&self, other: &SymProd) -> Option<SymProd> {
        if self.coef.checked_rem(other.coef) != Some(0) {
            return None;
        }
        let mut rest = self.syms.clone();
        for s in &other.syms {
            let i = rest.iter().position(|r| r == s)?;
            rest.remove(i);
        }
        Some(SymProd {
            coef: self.coef / other.coef,
            syms: rest,
        })
    }
}

/// The product of `dims` as a dim (`Unknown` when not expressible).
pub(super) fn product_dim(dims: &[Dim]) -> Dim {
    SymProd::of(dims)
        .map(|p| p.to_dim())
        .unwrap_or(Dim::Unknown)
}

/// Render dims as a shape for messages.
pub(super) fn show(dims: &[Dim]) -> String {
    Shape::new(dims.to_vec()).to_string()
}

/// A `u64` from an i64 attribute value that must be non-negative.
pub(super) fn non_negative(v: i64, what: &str) -> R<u64> {
    u64::try_from(v).map_err(|_| format!("{what} must not be negative, got {v}"))
}

/// A `u64` from an i64 attribute value that must be positive.
pub(super) fn positive(v: i64, what: &str) -> R<u64> {
    match u64::try_from(v) {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{what} must be positive, got {v}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbolic_products() {
        let p = SymProd::of(&[Dim::sym("b"), Dim::sym("s"), Dim::Known(384)]).unwrap();
        let q = SymProd::of(&[Dim::sym("b"), Dim::Known(12), Dim::Known(32)]).unwrap();
        assert_eq!(p.div(&q).unwrap().to_dim(), Dim::sym("s"));
        assert_eq!(
            SymProd::of(&[Dim::Unknown, Dim::Known(0)])
                .unwrap()
                .to_dim(),
            Dim::Known(0)
        );
        assert!(SymProd::of(&[Dim::Known(u64::MAX), Dim::Known(2)]).is_none());
        assert_eq!(norm_axis(-1, 3, "axis"), Ok(2));
        assert!(norm_axis(3, 3, "axis").is_err());
        assert!(norm_axis(i64::MIN, 3, "axis").is_err());
        assert!(norm_axes(&[0, -3], 3, "axes").is_err());
    }
}
