//! Rule conditions: a fixed vocabulary of facts about matched classes, usable from rule
//! files ([`Cond`]) and from Rust rules (the predicate functions and the [`var`]-based
//! helpers returning `Fn(&IrEGraph, Id, &Subst) -> bool`).

use std::fmt;
use std::sync::Arc;

use egg::{Id, Subst, Var};
use smelt_ir::{Attr, DType, Dim};

use crate::analysis::IrEGraph;
use crate::pattern::{number_matches, Match};

/// A condition of a Rust rule: the e-graph, the matched class and the substitution.
pub type RustCond = Arc<dyn Fn(&IrEGraph, Id, &Subst) -> bool + Send + Sync>;

// ---- predicates on classes -------------------------------------------------------------

/// The class is computable from constants alone (a constant, or ops on constants that
/// fold-constants will evaluate).
pub fn is_const(eg: &IrEGraph, x: Id) -> bool {
    let d = &eg[x].data;
    d.foldable && !d.absent && d.ty.is_some()
}

/// The class has exactly one element.
pub fn is_scalar(eg: &IrEGraph, x: Id) -> bool {
    eg[x].data.num_elements() == Some(1)
}

/// The class is a one-element constant equal to `v`.
pub fn is_scalar_const(eg: &IrEGraph, x: Id, v: f64) -> bool {
    is_scalar(eg, x) && eg[x].data.splat.is_some_and(|s| number_matches(s, v))
}

/// The class is a constant all of whose elements are the same power of two (either
/// sign), other than ±1 (a no-op or a negation, not a shift).
pub fn is_pow2_const(eg: &IrEGraph, x: Id) -> bool {
    eg[x].data.splat.is_some_and(|v| {
        let a = v.abs();
        a.is_normal() && a != 1.0 && {
            let k = a.log2().round();
            (k as i32 as f64) == k && 2f64.powi(k as i32) == a
        }
    })
}

/// Both classes have the same known-rank shape (dims pairwise identical).
pub fn same_shape(eg: &IrEGraph, a: Id, b: Id) -> bool {
    match (eg[a].data.ty.as_ref(), eg[b].data.ty.as_ref()) {
        (Some(x), Some(y)) => x.shape.dims().is_some() && x.shape == y.shape,
        _ => false,
    }
}

/// The class's rank.
pub fn rank(eg: &IrEGraph, x: Id) -> Option<usize> {
    eg[x].data.rank()
}

/// The class's dtype.
pub fn dtype(eg: &IrEGraph, x: Id) -> Option<DType> {
    eg[x].data.dtype()
}

/// The class's encoding kind is `kind` (`plain`, `blockwise`, `sparse24`, `shift`,
/// `float`, `mx`, `lowrank`); with `None`, any encoding but plain.
pub fn has_encoding(eg: &IrEGraph, x: Id, kind: Option<&str>) -> bool {
    let e = eg[x].data.encoding.to_string();
    let name = e.split('<').next().unwrap_or_default();
    match kind {
        Some(k) => name == k,
        None => name != "plain",
    }
}

/// The single element of a one-element integer constant.
fn single_int(eg: &IrEGraph, x: Id) -> Option<i64> {
    match eg[x].data.ints.as_deref() {
        Some([a]) => Some(*a),
        _ => None,
    }
}

// ---- the rule-file vocabulary ----------------------------------------------------------

/// A comparison in `rank(?x) == 2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl Cmp {
    /// Compare two numbers.
    pub fn holds(self, a: usize, b: usize) -> bool {
        match self {
            Cmp::Eq => a == b,
            Cmp::Ne => a != b,
            Cmp::Lt => a < b,
            Cmp::Le => a <= b,
            Cmp::Gt => a > b,
            Cmp::Ge => a >= b,
        }
    }

    /// The operator's text.
    pub fn text(self) -> &'static str {
        match self {
            Cmp::Eq => "==",
            Cmp::Ne => "!=",
            Cmp::Lt => "<",
            Cmp::Le => "<=",
            Cmp::Gt => ">",
            Cmp::Ge => ">=",
        }
    }
}

/// One dim of a `shape_eq` condition.
#[derive(Debug, Clone, PartialEq)]
pub enum DimLit {
    /// A known size.
    Known(u64),
    /// A symbolic dim by name (`"batch"`).
    Sym(String),
    /// Any dim (`?`).
    Any,
}

/// A condition of a text rule. Variables are names bound by the rule's left-hand side.
#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    /// `is_const(?x)`: computable from constants alone.
    IsConst(String),
    /// `is_scalar(?x)`: one element.
    IsScalar(String),
    /// `is_scalar_const(?x, 0.5)`: a one-element constant equal to the number.
    IsScalarConst(String, f64),
    /// `is_pow2_const(?c)`: a constant whose elements are one power of two other than ±1.
    IsPow2Const(String),
    /// `same_shape(?a, ?b)`: identical known-rank shapes.
    SameShape(String, String),
    /// `shape_eq(?x, [2, "batch", ?])`: the shape is exactly this.
    ShapeEq(String, Vec<DimLit>),
    /// `rank(?x) == 2` (any comparison).
    Rank(String, Cmp, usize),
    /// `dtype(?x) == f32` (or `!=`).
    DType(String, bool, DType),
    /// `is_float(?x)`: a floating-point dtype.
    IsFloat(String),
    /// `has_encoding(?w, plain)`; without a kind, any encoding but plain.
    HasEncoding(String, Option<String>),
    /// `identity_perm(?p)`: the attribute is the identity permutation.
    IdentityPerm(String),
    /// `no_zero(?s)`: an integer constant with no zero element (a Reshape target that
    /// copies no dim from its input).
    NoZero(String),
    /// `single_axis(?axes)`: a one-element integer constant.
    SingleAxis(String),
    /// `last_axis(?x, ?axes)`: `?axes` is the single last axis of `?x` (-1 or rank-1).
    LastAxis(String, String),
    /// `same_axis(?x, ?axes, ?k)`: the one-element constant `?axes` and the attribute `?k`
    /// name the same axis of `?x`.
    SameAxis(String, String, String),
}

/// The condition names of the vocabulary with their arities, for error messages.
pub const VOCABULARY: &[(&str, &str)] = &[
    ("is_const", "(?x)"),
    ("is_scalar", "(?x)"),
    ("is_scalar_const", "(?x, NUMBER)"),
    ("is_pow2_const", "(?x)"),
    ("same_shape", "(?a, ?b)"),
    ("shape_eq", "(?x, [DIMS])"),
    ("rank", "(?x) CMP N"),
    ("dtype", "(?x) ==|!= DTYPE"),
    ("is_float", "(?x)"),
    ("has_encoding", "(?x[, KIND])"),
    ("identity_perm", "(?perm)"),
    ("no_zero", "(?x)"),
    ("single_axis", "(?axes)"),
    ("last_axis", "(?x, ?axes)"),
    ("same_axis", "(?x, ?axes, ?axis)"),
];

impl Cond {
    /// Whether the condition holds for a match.
    pub fn holds(&self, eg: &IrEGraph, m: &Match) -> bool {
        let c = |v: &str| m.class(v);
        match self {
            Cond::IsConst(x) => c(x).is_some_and(|x| is_const(eg, x)),
            Cond::IsScalar(x) => c(x).is_some_and(|x| is_scalar(eg, x)),
            Cond::IsScalarConst(x, v) => c(x).is_some_and(|x| is_scalar_const(eg, x, *v)),
            Cond::IsPow2Const(x) => c(x).is_some_and(|x| is_pow2_const(eg, x)),
            Cond::SameShape(a, b) => {
                matches!((c(a), c(b)), (Some(a), Some(b)) if same_shape(eg, a, b))
            }
            Cond::ShapeEq(x, dims) => c(x).and_then(|x| eg[x].data.ty.clone()).is_some_and(|t| {
                t.dims().is_some_and(|ds| {
                    ds.len() == dims.len()
                        && ds.iter().zip(dims).all(|(d, l)| match (d, l) {
                            (_, DimLit::Any) => true,
                            (Dim::Known(a), DimLit::Known(b)) => a == b,
                            (Dim::Sym(a), DimLit::Sym(b)) => a == b,
                            _ => false,
                        })
                })
            }),
            Cond::Rank(x, cmp, n) => c(x)
                .and_then(|x| rank(eg, x))
                .is_some_and(|r| cmp.holds(r, *n)),
            Cond::DType(x, eq, d) => c(x)
                .and_then(|x| dtype(eg, x))
                .is_some_and(|t| (t == *d) == *eq),
            Cond::IsFloat(x) => c(x).and_then(|x| dtype(eg, x)).is_some_and(DType::is_float),
            Cond::HasEncoding(x, k) => c(x).is_some_and(|x| has_encoding(eg, x, k.as_deref())),
            Cond::IdentityPerm(p) => match m.attr(p) {
                Some(Attr::Ints(p)) => p.iter().enumerate().all(|(i, &v)| v == i as i64),
                _ => false,
            },
            Cond::NoZero(x) => c(x)
                .and_then(|x| eg[x].data.ints.clone())
                .is_some_and(|v| v.iter().all(|&e| e != 0)),
            Cond::SingleAxis(x) => c(x).and_then(|x| single_int(eg, x)).is_some(),
            Cond::LastAxis(x, axes) => match (
                c(x).and_then(|x| rank(eg, x)),
                c(axes).and_then(|a| single_int(eg, a)),
            ) {
                (Some(r), Some(a)) => a == -1 || (r > 0 && a == r as i64 - 1),
                _ => false,
            },
            Cond::SameAxis(x, axes, k) => {
                let r = c(x).and_then(|x| rank(eg, x)).map(|r| r as i64);
                let a = c(axes).and_then(|a| single_int(eg, a));
                let k = match m.attr(k) {
                    Some(Attr::Int(k)) => Some(*k),
                    _ => None,
                };
                match (r, a, k) {
                    (Some(r), Some(a), Some(k)) => {
                        let norm = |v: i64| if v < 0 { v + r } else { v };
                        (0..r).contains(&norm(a)) && norm(a) == norm(k)
                    }
                    _ => false,
                }
            }
        }
    }
}

impl fmt::Display for Cond {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cond::IsConst(x) => write!(f, "is_const(?{x})"),
            Cond::IsScalar(x) => write!(f, "is_scalar(?{x})"),
            Cond::IsScalarConst(x, v) => write!(f, "is_scalar_const(?{x}, {v:?})"),
            Cond::IsPow2Const(x) => write!(f, "is_pow2_const(?{x})"),
            Cond::SameShape(a, b) => write!(f, "same_shape(?{a}, ?{b})"),
            Cond::ShapeEq(x, dims) => {
                let ds: Vec<String> = dims
                    .iter()
                    .map(|d| match d {
                        DimLit::Known(n) => n.to_string(),
                        DimLit::Sym(s) => format!("{s:?}"),
                        DimLit::Any => "?".into(),
                    })
                    .collect();
                write!(f, "shape_eq(?{x}, [{}])", ds.join(", "))
            }
            Cond::Rank(x, c, n) => write!(f, "rank(?{x}) {} {n}", c.text()),
            Cond::DType(x, eq, d) => write!(f, "dtype(?{x}) {} {d}", if *eq { "==" } else { "!=" }),
            Cond::IsFloat(x) => write!(f, "is_float(?{x})"),
            Cond::HasEncoding(x, Some(k)) => write!(f, "has_encoding(?{x}, {k})"),
            Cond::HasEncoding(x, None) => write!(f, "has_encoding(?{x})"),
            Cond::IdentityPerm(p) => write!(f, "identity_perm(?{p})"),
            Cond::NoZero(x) => write!(f, "no_zero(?{x})"),
            Cond::SingleAxis(x) => write!(f, "single_axis(?{x})"),
            Cond::LastAxis(x, a) => write!(f, "last_axis(?{x}, ?{a})"),
            Cond::SameAxis(x, a, k) => write!(f, "same_axis(?{x}, ?{a}, ?{k})"),
        }
    }
}

// ---- helpers for Rust rules ------------------------------------------------------------

/// An egg variable from its text (`"?x"`); `None` for text that is not a variable.
pub fn var(name: &str) -> Option<Var> {
    name.parse().ok()
}

fn bound(subst: &Subst, v: &Option<Var>) -> Option<Id> {
    v.as_ref().and_then(|v| subst.get(*v).copied())
}

/// `is_const(?x)` for Rust rules.
pub fn when_const(x: &str) -> impl Fn(&IrEGraph, Id, &Subst) -> bool + Send + Sync + 'static {
    let x = var(x);
    move |eg, _, s| bound(s, &x).is_some_and(|x| is_const(eg, x))
}

/// `is_scalar_const(?x, v)` for Rust rules.
pub fn when_scalar_const(
    x: &str,
    v: f64,
) -> impl Fn(&IrEGraph, Id, &Subst) -> bool + Send + Sync + 'static {
    let x = var(x);
    move |eg, _, s| bound(s, &x).is_some_and(|x| is_scalar_const(eg, x, v))
}

/// `is_pow2_const(?x)` for Rust rules.
pub fn when_pow2_const(x: &str) -> impl Fn(&IrEGraph, Id, &Subst) -> bool + Send + Sync + 'static {
    let x = var(x);
    move |eg, _, s| bound(s, &x).is_some_and(|x| is_pow2_const(eg, x))
}

/// `same_shape(?a, ?b)` for Rust rules.
pub fn when_same_shape(
    a: &str,
    b: &str,
) -> impl Fn(&IrEGraph, Id, &Subst) -> bool + Send + Sync + 'static {
    let (a, b) = (var(a), var(b));
    move |eg, _, s| matches!((bound(s, &a), bound(s, &b)), (Some(a), Some(b)) if same_shape(eg, a, b))
}

/// `rank(?x) == n` for Rust rules.
pub fn when_rank(
    x: &str,
    n: usize,
) -> impl Fn(&IrEGraph, Id, &Subst) -> bool + Send + Sync + 'static {
    let x = var(x);
    move |eg, _, s| bound(s, &x).and_then(|x| rank(eg, x)) == Some(n)
}

/// `dtype(?x) == d` for Rust rules.
pub fn when_dtype(
    x: &str,
    d: DType,
) -> impl Fn(&IrEGraph, Id, &Subst) -> bool + Send + Sync + 'static {
    let x = var(x);
    move |eg, _, s| bound(s, &x).and_then(|x| dtype(eg, x)) == Some(d)
}
