//! The e-graph language of smelt's IR.
//!
//! * `Op(sym, children)`: one node of any [`OpKind`]; the [`OpSym`] carries the op, its
//!   attributes as a canonical string, its output count and, for impure ops, a tag that
//!   keeps two identical calls apart.
//! * `(out k node)`: output `k` of a multi-output node (its class holds the tuple).
//! * [`Leaf`]s: values defined outside the e-graph (graph inputs, values of other regions)
//!   by [`ValueId`], constants by [`ConstId`] (the tensor data stays in the weight store),
//!   output indices, and `_` for an omitted optional input.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;
use std::sync::Arc;

use egg::{define_language, Id};
use smelt_ir::{Attrs, ConstId, OpKind, ValueId};

use crate::attrs;

define_language! {
    /// An e-node: an op application (`Op`), an output projection (`Out`: output index
    /// leaf, tuple class) or a leaf (`Leaf`).
    #[allow(missing_docs)] // the macro cannot carry docs on variants; see the enum's doc
    pub enum IrLang {
        "out" = Out([Id; 2]),
        Leaf(Leaf),
        Op(OpSym, Box<[Id]>),
    }
}

impl IrLang {
    /// The op symbol, for op nodes.
    pub fn op_sym(&self) -> Option<&OpSym> {
        match self {
            IrLang::Op(s, _) => Some(s),
            _ => None,
        }
    }

    /// The leaf, for leaf nodes.
    pub fn leaf(&self) -> Option<&Leaf> {
        match self {
            IrLang::Leaf(l) => Some(l),
            _ => None,
        }
    }
}

/// A childless e-node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Leaf {
    /// A value defined outside the e-graph (`%12`).
    Value(ValueId),
    /// A constant, by handle into the analysis' weight store (`#3`).
    Const(ConstId),
    /// An output index, the `k` of `(out k node)` (`0`).
    Index(usize),
    /// An omitted optional input (`_`).
    Absent,
}

impl fmt::Display for Leaf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Leaf::Value(v) => write!(f, "%{}", v.0),
            Leaf::Const(c) => write!(f, "#{}", c.0),
            Leaf::Index(k) => write!(f, "{k}"),
            Leaf::Absent => f.write_str("_"),
        }
    }
}

impl FromStr for Leaf {
    type Err = String;
    fn from_str(s: &str) -> Result<Leaf, String> {
        let bad = || format!("`{s}` is not a leaf (`%N`, `#N`, `N` or `_`)");
        if s == "_" {
            Ok(Leaf::Absent)
        } else if let Some(n) = s.strip_prefix('%') {
            n.parse()
                .map(|n| Leaf::Value(ValueId(n)))
                .map_err(|_| bad())
        } else if let Some(n) = s.strip_prefix('#') {
            n.parse()
                .map(|n| Leaf::Const(ConstId(n)))
                .map_err(|_| bad())
        } else {
            s.parse().map(Leaf::Index).map_err(|_| bad())
        }
    }
}

/// An op with its attributes: the head of an `Op` e-node.
///
/// Equality, hashing and ordering use the op, the canonical attribute string, the output
/// count and the impurity tag; the parsed [`Attrs`] ride along so nobody re-parses them.
#[derive(Debug, Clone)]
pub struct OpSym {
    op: OpKind,
    key: Arc<str>,
    attrs: Arc<Attrs>,
    nout: u32,
    uniq: u32,
}

impl OpSym {
    /// A symbol for `op` with `attrs` and `nout` outputs. `uniq` is 0 for pure ops; impure
    /// ops get a distinct nonzero tag per original node so hash-consing never merges them.
    pub fn new(op: OpKind, attrs: Attrs, nout: u32, uniq: u32) -> OpSym {
        let key: Arc<str> = attrs::canonical(&attrs).into();
        OpSym {
            op,
            key,
            attrs: Arc::new(attrs),
            nout,
            uniq,
        }
    }

    /// The op.
    pub fn op(&self) -> &OpKind {
        &self.op
    }

    /// The attributes.
    pub fn attrs(&self) -> &Attrs {
        &self.attrs
    }

    /// The canonical attribute string.
    pub fn attr_key(&self) -> &str {
        &self.key
    }

    /// Number of outputs of the node.
    pub fn nout(&self) -> usize {
        self.nout as usize
    }

    /// The impurity tag (0 for pure ops).
    pub fn uniq(&self) -> u32 {
        self.uniq
    }

    fn tuple(&self) -> (&OpKind, &str, u32, u32) {
        (&self.op, &self.key, self.nout, self.uniq)
    }
}

impl PartialEq for OpSym {
    fn eq(&self, other: &Self) -> bool {
        self.tuple() == other.tuple()
    }
}

impl Eq for OpSym {}

impl Hash for OpSym {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.tuple().hash(state);
    }
}

impl PartialOrd for OpSym {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for OpSym {
    fn cmp(&self, other: &Self) -> Ordering {
        self.tuple().cmp(&other.tuple())
    }
}

/// `name{attrs}:nout!uniq`, the suffixes only when not 1 / 0: `transpose{perm=[1,0]}`.
impl fmt::Display for OpSym {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.op.text_name())?;
        if !self.key.is_empty() {
            write!(f, "{{{}}}", self.key)?;
        }
        if self.nout != 1 {
            write!(f, ":{}", self.nout)?;
        }
        if self.uniq != 0 {
            write!(f, "!{}", self.uniq)?;
        }
        Ok(())
    }
}

impl FromStr for OpSym {
    type Err = String;
    fn from_str(s: &str) -> Result<OpSym, String> {
        // The attribute block may contain `:` and `!` inside strings, so find its end first.
        let (head, attrs, rest) = match s.find('{') {
            Some(open) => {
                let close =
                    matching_brace(s, open).ok_or_else(|| format!("unclosed `{{` in `{s}`"))?;
                (
                    &s[..open],
                    attrs::parse_canonical(&s[open + 1..close])?,
                    &s[close + 1..],
                )
            }
            None => {
                let end = s.find([':', '!']).unwrap_or(s.len());
                (&s[..end], Attrs::new(), &s[end..])
            }
        };
        let op = op_from_text(head).ok_or_else(|| format!("unknown op `{head}`"))?;
        let (mut nout, mut uniq) = (1u32, 0u32);
        let mut rest = rest;
        if let Some(r) = rest.strip_prefix(':') {
            let end = r.find('!').unwrap_or(r.len());
            nout = r[..end]
                .parse()
                .map_err(|_| format!("bad output count in `{s}`"))?;
            rest = &r[end..];
        }
        if let Some(r) = rest.strip_prefix('!') {
            uniq = r
                .parse()
                .map_err(|_| format!("bad impurity tag in `{s}`"))?;
            rest = "";
        }
        if !rest.is_empty() {
            return Err(format!("trailing `{rest}` in op `{s}`"));
        }
        Ok(OpSym::new(op, attrs, nout, uniq))
    }
}

/// A text op name, including `domain.name` for custom ops.
pub fn op_from_text(name: &str) -> Option<OpKind> {
    if let Some(k) = OpKind::from_text(name) {
        return Some(k);
    }
    let (domain, op) = name.rsplit_once('.')?;
    (!domain.is_empty() && !op.is_empty()).then(|| OpKind::Custom {
        domain: domain.to_string(),
        name: op.to_string(),
    })
}

/// Index of the `}` closing the `{` at `open`, skipping quoted strings.
fn matching_brace(s: &str, open: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_str = false;
    let mut escaped = false;
    for (i, c) in s.char_indices().skip_while(|(i, _)| *i < open) {
        if in_str {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_str = true,
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use smelt_ir::Attr;

    #[test]
    fn symbols_round_trip_through_text() {
        let syms = [
            OpSym::new(
                OpKind::Transpose,
                Attrs::new().with("perm", Attr::Ints(vec![1, 0])),
                1,
                0,
            ),
            OpSym::new(
                OpKind::Gelu,
                Attrs::new().with("approximate", Attr::Str("a:b!}c".into())),
                1,
                0,
            ),
            OpSym::new(OpKind::Split, Attrs::new().with("axis", Attr::Int(0)), 3, 0),
            OpSym::new(
                OpKind::Custom {
                    domain: "com.x".into(),
                    name: "Foo".into(),
                },
                Attrs::new(),
                2,
                7,
            ),
            OpSym::new(OpKind::Add, Attrs::new(), 1, 0),
        ];
        for s in syms {
            let text = s.to_string();
            let back: OpSym = text.parse().unwrap();
            assert_eq!(back, s, "{text}");
            assert_eq!(back.attrs(), s.attrs());
        }
        for leaf in [
            Leaf::Value(ValueId(3)),
            Leaf::Const(ConstId(9)),
            Leaf::Index(2),
            Leaf::Absent,
        ] {
            assert_eq!(leaf.to_string().parse::<Leaf>().unwrap(), leaf);
        }
        assert!("nosuchop".parse::<OpSym>().is_err());
        assert!("add{".parse::<OpSym>().is_err());
        assert!("add:x".parse::<OpSym>().is_err());
    }

    #[test]
    fn expressions_parse() {
        let e: egg::RecExpr<IrLang> = "(transpose{perm=[1,0]} (add %0 #1))".parse().unwrap();
        // egg quotes symbols with punctuation when printing; they read back the same
        let again: egg::RecExpr<IrLang> = e.to_string().parse().unwrap();
        assert_eq!(again, e);
        let e: egg::RecExpr<IrLang> = "(out 1 (split{axis=0}:2 %0))".parse().unwrap();
        assert_eq!(e.as_ref().len(), 4);
    }
}
