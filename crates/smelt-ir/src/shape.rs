//! Shapes with symbolic dimensions.

use std::fmt;

/// One dimension of a tensor shape.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dim {
    /// A known size.
    Known(u64),
    /// A named symbolic size such as `?batch`; equal names denote equal sizes.
    Sym(String),
    /// A size nothing is known about (printed `?`).
    Unknown,
}

impl Dim {
    /// The size, when known.
    pub fn known(&self) -> Option<u64> {
        match self {
            Dim::Known(n) => Some(*n),
            _ => None,
        }
    }

    /// Shorthand for a symbolic dim.
    pub fn sym(name: &str) -> Dim {
        Dim::Sym(name.to_string())
    }
}

impl From<u64> for Dim {
    fn from(n: u64) -> Self {
        Dim::Known(n)
    }
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Known(n) => write!(f, "{n}"),
            Dim::Sym(s) => write!(f, "?{s}"),
            Dim::Unknown => f.write_str("?"),
        }
    }
}

/// A tensor shape: a list of dims, or an unknown rank.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Shape(pub Option<Vec<Dim>>);

impl Shape {
    /// A shape of known rank.
    pub fn new(dims: Vec<Dim>) -> Shape {
        Shape(Some(dims))
    }

    /// A fully known shape.
    pub fn known(dims: &[u64]) -> Shape {
        Shape(Some(dims.iter().map(|&d| Dim::Known(d)).collect()))
    }

    /// The rank-0 shape.
    pub fn scalar() -> Shape {
        Shape(Some(vec![]))
    }

    /// A shape of unknown rank.
    pub fn unranked() -> Shape {
        Shape(None)
    }

    /// The dims, if the rank is known.
    pub fn dims(&self) -> Option<&[Dim]> {
        self.0.as_deref()
    }

    /// The rank, if known.
    pub fn rank(&self) -> Option<usize> {
        self.0.as_ref().map(Vec::len)
    }

    /// All sizes, if every dim is known.
    pub fn as_known(&self) -> Option<Vec<usize>> {
        self.0
            .as_ref()?
            .iter()
            .map(|d| d.known().and_then(|n| usize::try_from(n).ok()))
            .collect()
    }

    /// Element count, if every dim is known and the product does not overflow.
    pub fn num_elements(&self) -> Option<usize> {
        self.as_known()?
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
    }

    /// Whether a concrete shape is an instance of this (possibly symbolic) shape.
    pub fn admits(&self, concrete: &[usize]) -> bool {
        let Some(dims) = self.dims() else { return true };
        dims.len() == concrete.len()
            && dims.iter().zip(concrete).all(|(d, &c)| match d {
                Dim::Known(n) => *n as usize == c,
                _ => true,
            })
    }
}

impl From<Vec<Dim>> for Shape {
    fn from(d: Vec<Dim>) -> Self {
        Shape(Some(d))
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            None => f.write_str("[*]"),
            Some(dims) => {
                f.write_str("[")?;
                for (i, d) in dims.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{d}")?;
                }
                f.write_str("]")
            }
        }
    }
}

/// Multidirectional (numpy-style) broadcasting of two dims.
///
/// Returns `None` when the dims certainly differ and neither is 1.
pub fn broadcast_dim(a: &Dim, b: &Dim) -> Option<Dim> {
    match (a, b) {
        (Dim::Known(1), x) | (x, Dim::Known(1)) => Some(x.clone()),
        (Dim::Known(x), Dim::Known(y)) => (x == y).then_some(Dim::Known(*x)),
        (Dim::Known(x), _) | (_, Dim::Known(x)) => Some(Dim::Known(*x)),
        (Dim::Sym(x), Dim::Sym(y)) if x == y => Some(a.clone()),
        (Dim::Sym(_), Dim::Unknown) => Some(a.clone()),
        (Dim::Unknown, Dim::Sym(_)) => Some(b.clone()),
        _ => Some(Dim::Unknown),
    }
}

/// Broadcast a list of shapes; `None` if two known dims conflict.
pub fn broadcast_shapes(shapes: &[&Shape]) -> Option<Shape> {
    let mut out: Vec<Dim> = vec![];
    for s in shapes {
        let Some(dims) = s.dims() else {
            return Some(Shape::unranked());
        };
        if dims.len() > out.len() {
            let mut padded = vec![Dim::Known(1); dims.len() - out.len()];
            padded.extend(out);
            out = padded;
        }
        let off = out.len() - dims.len();
        for (i, d) in dims.iter().enumerate() {
            out[off + i] = broadcast_dim(&out[off + i], d)?;
        }
    }
    Some(Shape::new(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasting() {
        let a = Shape::new(vec![Dim::sym("b"), Dim::Known(1), Dim::Known(4)]);
        let b = Shape::known(&[3, 1]);
        let c = broadcast_shapes(&[&a, &b]).unwrap();
        assert_eq!(c.to_string(), "[?b, 3, 4]");
        assert!(broadcast_shapes(&[&Shape::known(&[2]), &Shape::known(&[3])]).is_none());
    }

    #[test]
    fn display() {
        assert_eq!(Shape::scalar().to_string(), "[]");
        assert_eq!(Shape::unranked().to_string(), "[*]");
        assert_eq!(
            Shape::new(vec![Dim::Unknown, Dim::Known(2)]).to_string(),
            "[?, 2]"
        );
    }
}
