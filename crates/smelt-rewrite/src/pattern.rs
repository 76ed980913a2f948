//! Left-hand-side patterns of text rules and their matcher.
//!
//! Unlike egg's patterns, these match attributes partially (only the attributes a pattern
//! names are constrained; a missing attribute matches its ONNX default), bind attribute
//! values to variables, treat number literals as "a constant whose elements all equal
//! this", try both operand orders of commutative ops, and allow alternatives `(| p q)`.
//! A match also records the class of every op it matched, so report rules can name the
//! nodes of a group.

use std::collections::HashMap;

use egg::Id;
use smelt_ir::{Attr, OpKind};

use crate::analysis::IrEGraph;
use crate::attrs::{attr_matches, default_attr};
use crate::lang::IrLang;

/// A left-hand-side pattern.
#[derive(Debug, Clone, PartialEq)]
pub enum Pat {
    /// `?x`: any class; a variable used twice must bind the same class both times.
    Var(String),
    /// `?_`: any class, not bound.
    Wild,
    /// `_`: an omitted optional input.
    Absent,
    /// A number: a constant whose elements all equal it (relative tolerance 1e-6, so
    /// `1.4142135` matches the f32 nearest √2).
    Num(f64),
    /// An op with constrained attributes and operand patterns.
    Op {
        /// The op.
        op: OpKind,
        /// Attribute constraints, by name.
        attrs: Vec<(String, AttrPat)>,
        /// Operand patterns, one per input slot.
        args: Vec<Pat>,
    },
    /// `(out k p)`: output `k` of a multi-output node matching `p`.
    Out {
        /// The output index.
        index: usize,
        /// The node pattern.
        node: Box<Pat>,
    },
    /// `(| p q ...)`: any of the alternatives.
    Alt(Vec<Pat>),
}

/// A constraint on one attribute.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrPat {
    /// The attribute must equal this value.
    Lit(Attr),
    /// The attribute's value is bound to this variable (equal values where used twice).
    Var(String),
}

/// One match of a pattern.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Match {
    /// The class the whole pattern matched.
    pub root: Id,
    /// Class variables.
    pub classes: Vec<(String, Id)>,
    /// Attribute variables.
    pub attrs: Vec<(String, Attr)>,
    /// The class of every op the pattern matched, root first.
    pub covered: Vec<Id>,
}

impl Match {
    /// The class bound to `?var`.
    pub fn class(&self, var: &str) -> Option<Id> {
        self.classes.iter().find(|(n, _)| n == var).map(|(_, c)| *c)
    }

    /// The attribute value bound to `?var`.
    pub fn attr(&self, var: &str) -> Option<&Attr> {
        self.attrs.iter().find(|(n, _)| n == var).map(|(_, a)| a)
    }
}

/// Whether `op`'s two operands may be swapped.
pub fn is_commutative(op: &OpKind) -> bool {
    use OpKind::*;
    matches!(
        op,
        Add | Mul | Max | Min | And | Or | Xor | Equal | Sum | Mean
    )
}

/// Classes by op kind, built once per saturation iteration so a pattern only visits the
/// classes that can match its root.
#[derive(Debug, Default)]
pub struct OpIndex {
    by_op: HashMap<OpKind, Vec<Id>>,
    all: Vec<Id>,
}

impl OpIndex {
    /// Index a clean e-graph.
    pub fn new(eg: &IrEGraph) -> OpIndex {
        let mut idx = OpIndex::default();
        let mut classes: Vec<Id> = eg.classes().map(|c| c.id).collect();
        classes.sort();
        for c in classes {
            idx.all.push(c);
            for n in &eg[c].nodes {
                if let IrLang::Op(sym, _) = n {
                    let v = idx.by_op.entry(sym.op().clone()).or_default();
                    if v.last() != Some(&c) {
                        v.push(c);
                    }
                }
            }
        }
        idx
    }

    fn candidates(&self, pat: &Pat, out: &mut Vec<Id>) {
        match pat {
            Pat::Op { op, .. } => out.extend(self.by_op.get(op).map(Vec::as_slice).unwrap_or(&[])),
            Pat::Alt(ps) => ps.iter().for_each(|p| self.candidates(p, out)),
            _ => out.extend(&self.all),
        }
    }
}

/// Find up to `limit` matches of `pat` anywhere in `eg`.
pub fn search(eg: &IrEGraph, index: &OpIndex, pat: &Pat, limit: usize) -> Vec<Match> {
    let mut roots = vec![];
    index.candidates(pat, &mut roots);
    roots.sort();
    roots.dedup();
    let mut out = vec![];
    for root in roots {
        let mut found = vec![];
        match_class(
            eg,
            pat,
            root,
            Match {
                root,
                ..Match::default()
            },
            &mut found,
        );
        for m in found {
            if !out.iter().any(|o: &Match| same_match(eg, o, &m)) {
                out.push(m);
            }
        }
        if out.len() >= limit {
            out.truncate(limit);
            break;
        }
    }
    out
}

/// Matches that bind the same things (commutative matching finds `x * x` twice).
fn same_match(eg: &IrEGraph, a: &Match, b: &Match) -> bool {
    a.root == b.root
        && a.attrs == b.attrs
        && a.classes.len() == b.classes.len()
        && a.classes
            .iter()
            .all(|(n, c)| b.class(n).is_some_and(|d| eg.find(d) == eg.find(*c)))
}

/// Whether a constant's common value equals a pattern number.
pub fn number_matches(actual: f64, want: f64) -> bool {
    actual == want || (actual - want).abs() <= 1e-6 * actual.abs().max(want.abs())
}

fn match_class(eg: &IrEGraph, pat: &Pat, class: Id, m: Match, out: &mut Vec<Match>) {
    let data = &eg[class].data;
    match pat {
        Pat::Var(name) => match m.class(name) {
            Some(b) if eg.find(b) != eg.find(class) => {}
            Some(_) => out.push(m),
            None => {
                let mut m = m;
                m.classes.push((name.clone(), class));
                out.push(m);
            }
        },
        Pat::Wild => out.push(m),
        Pat::Absent => {
            if data.absent {
                out.push(m);
            }
        }
        Pat::Num(v) => {
            if data.splat.is_some_and(|s| number_matches(s, *v)) {
                out.push(m);
            }
        }
        Pat::Alt(ps) => {
            for p in ps {
                match_class(eg, p, class, m.clone(), out);
            }
        }
        Pat::Out { index, node } => {
            for n in &eg[class].nodes {
                if let IrLang::Out([k, t]) = n {
                    if eg[*k].data.index == Some(*index) {
                        match_class(eg, node, *t, m.clone(), out);
                    }
                }
            }
        }
        Pat::Op { op, attrs, args } => {
            for n in &eg[class].nodes {
                let IrLang::Op(sym, children) = n else {
                    continue;
                };
                if sym.op() != op || children.len() != args.len() {
                    continue;
                }
                let rank = children.first().and_then(|c| eg[*c].data.rank());
                let Some(mut m2) = match_attrs(sym.op(), sym.attrs(), rank, attrs, m.clone())
                else {
                    continue;
                };
                m2.covered.push(class);
                match_list(eg, args, children, m2.clone(), out);
                if is_commutative(op) && children.len() == 2 && args[0] != args[1] {
                    let swapped = [children[1], children[0]];
                    match_list(eg, args, &swapped, m2, out);
                }
            }
        }
    }
}

fn match_list(eg: &IrEGraph, pats: &[Pat], classes: &[Id], m: Match, out: &mut Vec<Match>) {
    let (Some(p), Some(c)) = (pats.first(), classes.first()) else {
        out.push(m);
        return;
    };
    let mut partial = vec![];
    match_class(eg, p, *c, m, &mut partial);
    for m in partial {
        match_list(eg, &pats[1..], &classes[1..], m, out);
    }
}

fn match_attrs(
    op: &OpKind,
    actual: &smelt_ir::Attrs,
    rank: Option<usize>,
    pats: &[(String, AttrPat)],
    mut m: Match,
) -> Option<Match> {
    for (name, ap) in pats {
        let value = actual
            .get(name)
            .cloned()
            .or_else(|| default_attr(op, name, rank))?;
        match ap {
            AttrPat::Lit(want) => {
                if !attr_matches(&value, want) {
                    return None;
                }
            }
            AttrPat::Var(var) => match m.attr(var) {
                Some(bound) => {
                    if !attr_matches(bound, &value) {
                        return None;
                    }
                }
                None => m.attrs.push((var.clone(), value)),
            },
        }
    }
    Some(m)
}

pub(crate) fn write_attrs<T>(
    f: &mut std::fmt::Formatter<'_>,
    attrs: &[(String, T)],
    show: impl Fn(&T) -> String,
) -> std::fmt::Result {
    if attrs.is_empty() {
        return Ok(());
    }
    f.write_str(" {")?;
    for (i, (k, v)) in attrs.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{k}={}", show(v))?;
    }
    f.write_str("}")
}

/// Number literals print so they parse back to the same value (and stay numbers).
pub(crate) fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v:?}")
    }
}

/// Patterns print in the rule-file syntax.
impl std::fmt::Display for Pat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pat::Var(v) => write!(f, "?{v}"),
            Pat::Wild => f.write_str("?_"),
            Pat::Absent => f.write_str("_"),
            Pat::Num(v) => f.write_str(&fmt_num(*v)),
            Pat::Op { op, attrs, args } => {
                write!(f, "({op}")?;
                for a in args {
                    write!(f, " {a}")?;
                }
                write_attrs(f, attrs, |a| match a {
                    AttrPat::Lit(l) => crate::attrs::canonical_value(l),
                    AttrPat::Var(v) => format!("?{v}"),
                })?;
                f.write_str(")")
            }
            Pat::Out { index, node } => write!(f, "(out {index} {node})"),
            Pat::Alt(ps) => {
                f.write_str("(|")?;
                for p in ps {
                    write!(f, " {p}")?;
                }
                f.write_str(")")
            }
        }
    }
}
