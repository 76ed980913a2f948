//! Pattern matching on the graph, for passes written in Rust.
//!
//! A [`Pat`] describes the producer tree of a value: `op(Div, [any("x"), constant("c")])`
//! matches a division of anything by a plain constant and binds `x` and `c`. Ops can be
//! matched commutatively, required to be read by one node only, and bound by name;
//! [`rewrite_all`] runs a rewrite on every match in topological order, skipping matches
//! an earlier rewrite invalidated.
//!
//! ```
//! use smelt_ir::pattern::{any, op, scalar};
//! use smelt_ir::{text, OpKind};
//! let g = text::parse(
//!     "graph @g(%x: f32[4]) -> (f32[4]) {
//!        %two = const f32[] [2.0]
//!        %y = mul(%two, %x) : f32[4]
//!        return %y
//!      }",
//! ).unwrap();
//! let pat = op(OpKind::Mul, [any("x"), scalar(2.0)]).commutative().named("mul");
//! let m = pat.matches(&g, g.value_by_name("y").unwrap()).unwrap();
//! assert_eq!(g.value(m.value("x")).name, "x");
//! assert_eq!(m.nodes().len(), 1);
//! ```

use std::collections::BTreeMap;

use crate::error::IrResult;
use crate::graph::{Graph, NodeId, ValueId};
use crate::op::OpKind;
use crate::patch::Patch;
use crate::tensor::Tensor;

/// A pattern over the producer tree of a value.
#[derive(Debug, Clone)]
pub enum Pat {
    /// Any value; bound under the name if it is not empty.
    Any(String),
    /// A plain (unencoded) constant; bound under the name.
    Constant(String),
    /// A plain constant whose every element equals the number (any float or int dtype).
    Scalar(f64),
    /// A value produced by an op node.
    Op(OpPat),
}

/// The op part of a [`Pat`].
#[derive(Debug, Clone)]
pub struct OpPat {
    op: OpKind,
    inputs: Vec<Pat>,
    name: Option<String>,
    commutative: bool,
    single_use: bool,
}

/// Any value, bound as `name` (`""`: not bound).
pub fn any(name: &str) -> Pat {
    Pat::Any(name.to_string())
}

/// A plain constant, bound as `name`.
pub fn constant(name: &str) -> Pat {
    Pat::Constant(name.to_string())
}

/// A plain constant whose elements all equal `value`.
pub fn scalar(value: f64) -> Pat {
    Pat::Scalar(value)
}

/// A value produced by `op` whose leading inputs match `inputs` (further inputs are
/// ignored; fewer inputs than patterns is no match).
pub fn op(op: OpKind, inputs: impl IntoIterator<Item = Pat>) -> Pat {
    Pat::Op(OpPat {
        op,
        inputs: inputs.into_iter().collect(),
        name: None,
        commutative: false,
        single_use: false,
    })
}

impl Pat {
    /// Bind the op node under `name` (no effect on leaves).
    pub fn named(mut self, name: &str) -> Pat {
        if let Pat::Op(o) = &mut self {
            o.name = Some(name.to_string());
        }
        self
    }

    /// Also try the two inputs of a binary op swapped.
    pub fn commutative(mut self) -> Pat {
        if let Pat::Op(o) = &mut self {
            o.commutative = true;
        }
        self
    }

    /// Only match if the op's output is read once (and is not a graph output), so a
    /// rewrite can drop the node without duplicating work.
    pub fn single_use(mut self) -> Pat {
        if let Pat::Op(o) = &mut self {
            o.single_use = true;
        }
        self
    }

    /// Match against the value `v`.
    pub fn matches(&self, g: &Graph, v: ValueId) -> Option<Match> {
        let mut m = Match {
            root: v,
            values: BTreeMap::new(),
            named_nodes: BTreeMap::new(),
            nodes: vec![],
        };
        self.match_into(g, v, &mut m).then_some(m)
    }

    /// Every match in the graph, rooted at op outputs, in topological order.
    pub fn find_all(&self, g: &Graph) -> IrResult<Vec<Match>> {
        let mut out = vec![];
        for id in g.topo_order()? {
            for &v in &g.node(id).outputs {
                if let Some(m) = self.matches(g, v) {
                    out.push(m);
                }
            }
        }
        Ok(out)
    }

    fn match_into(&self, g: &Graph, v: ValueId, m: &mut Match) -> bool {
        match self {
            Pat::Any(name) => m.bind_value(name, v),
            Pat::Constant(name) => g.plain_constant(v).is_some() && m.bind_value(name, v),
            Pat::Scalar(x) => g.plain_constant(v).is_some_and(|t| all_equal(t, *x)),
            Pat::Op(o) => {
                let Some((node, _)) = g.producer(v) else {
                    return false;
                };
                let n = g.node(node);
                if n.op != o.op || n.inputs.len() < o.inputs.len() {
                    return false;
                }
                if o.single_use && (g.consumers(v).len() != 1 || g.outputs().contains(&v)) {
                    return false;
                }
                let orders: &[&[usize]] = if o.commutative && o.inputs.len() == 2 {
                    &[&[0, 1], &[1, 0]]
                } else {
                    &[&[]]
                };
                for order in orders {
                    let mut attempt = m.clone();
                    let ok = o.inputs.iter().enumerate().all(|(i, p)| {
                        let slot = order.get(i).copied().unwrap_or(i);
                        n.inputs[slot].is_some_and(|input| p.match_into(g, input, &mut attempt))
                    });
                    if ok {
                        if let Some(name) = &o.name {
                            if !attempt.bind_node(name, node) {
                                continue;
                            }
                        }
                        attempt.nodes.push(node);
                        *m = attempt;
                        return true;
                    }
                }
                false
            }
        }
    }
}

fn all_equal(t: &Tensor, x: f64) -> bool {
    t.to_f64_vec()
        .is_ok_and(|v| !v.is_empty() && v.iter().all(|e| *e == x))
}

/// What a [`Pat`] matched: bound values and nodes, and every op node of the match.
#[derive(Debug, Clone)]
pub struct Match {
    /// The value the pattern was matched at.
    pub root: ValueId,
    values: BTreeMap<String, ValueId>,
    named_nodes: BTreeMap<String, NodeId>,
    nodes: Vec<NodeId>,
}

impl Match {
    /// The value bound as `name`. Panics if the pattern binds no such name (a bug in the
    /// pass, not in the input); see [`Match::get`].
    pub fn value(&self, name: &str) -> ValueId {
        self.get(name)
            .unwrap_or_else(|| panic!("pattern binds no value `{name}`"))
    }

    /// The value bound as `name`, if any.
    pub fn get(&self, name: &str) -> Option<ValueId> {
        self.values.get(name).copied()
    }

    /// The op node bound as `name`, if any.
    pub fn node(&self, name: &str) -> Option<NodeId> {
        self.named_nodes.get(name).copied()
    }

    /// Every op node of the match, leaves first.
    pub fn nodes(&self) -> &[NodeId] {
        &self.nodes
    }

    /// Bind a value; a name bound twice must be the same value (`x * x`).
    fn bind_value(&mut self, name: &str, v: ValueId) -> bool {
        if name.is_empty() {
            return true;
        }
        *self.values.entry(name.to_string()).or_insert(v) == v
    }

    fn bind_node(&mut self, name: &str, n: NodeId) -> bool {
        *self.named_nodes.entry(name.to_string()).or_insert(n) == n
    }
}

/// Rewrite every match of `pat`: `rewrite` sees the graph and the match and returns a
/// patch to apply, or `None` to leave it. Matches are found in topological order, and
/// each is re-checked just before its rewrite, so one invalidated by an earlier rewrite
/// is skipped. Returns the number of patches applied.
pub fn rewrite_all(
    g: &mut Graph,
    pat: &Pat,
    mut rewrite: impl FnMut(&Graph, &Match) -> IrResult<Option<Patch>>,
) -> IrResult<usize> {
    let mut applied = 0;
    for candidate in pat.find_all(g)? {
        let alive = g
            .try_value(candidate.root)
            .is_some_and(|d| d.def != crate::graph::ValueDef::Dead);
        let Some(m) = alive.then(|| pat.matches(g, candidate.root)).flatten() else {
            continue;
        };
        if let Some(patch) = rewrite(g, &m)? {
            patch.apply(g)?;
            applied += 1;
        }
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attr::Attrs;
    use crate::encoding::Constant;
    use crate::text::{parse, print};

    const G: &str = "graph @g(%x: f32[4]) -> (f32[4], f32[4]) {
  %two = const f32[] [2.0]
  %a = mul(%x, %two) : f32[4]
  %b = mul(%two, %a) : f32[4]
  %c = add(%a, %a) : f32[4]
  return %b, %c
}
";

    #[test]
    fn commutative_scalar_match_binds_the_other_operand() {
        let g = parse(G).unwrap();
        let pat = op(OpKind::Mul, [any("x"), scalar(2.0)]).commutative();
        let all = pat.find_all(&g).unwrap();
        let roots: Vec<_> = all.iter().map(|m| g.value(m.root).name.clone()).collect();
        assert_eq!(roots, ["a", "b"]);
        assert_eq!(g.value(all[1].value("x")).name, "a");
        assert!(op(OpKind::Mul, [any("x"), scalar(2.0)])
            .matches(&g, g.value_by_name("b").unwrap())
            .is_none());
    }

    #[test]
    fn repeated_names_must_bind_the_same_value_and_single_use_is_checked() {
        let g = parse(G).unwrap();
        let c = g.value_by_name("c").unwrap();
        assert!(op(OpKind::Add, [any("y"), any("y")])
            .matches(&g, c)
            .is_some());
        let nested = op(
            OpKind::Add,
            [
                op(OpKind::Mul, [any("x"), constant("k")]).single_use(),
                any(""),
            ],
        );
        // %a is read three times.
        assert!(nested.matches(&g, c).is_none());
        let m = op(
            OpKind::Add,
            [
                op(OpKind::Mul, [any("x"), constant("k")]).named("m"),
                any(""),
            ],
        )
        .matches(&g, c)
        .unwrap();
        assert_eq!(m.nodes().len(), 2);
        assert_eq!(g.value(m.value("k")).name, "two");
        assert!(m.node("m").is_some());
    }

    #[test]
    fn rewrite_all_skips_invalidated_matches() {
        let mut g = parse(G).unwrap();
        // x * 2 -> x + x, for every match; %b's match reads %a, which the first rewrite
        // replaces, and is re-matched against the new graph.
        let pat = op(OpKind::Mul, [any("x"), scalar(2.0)]).commutative();
        let n = rewrite_all(&mut g, &pat, |_, m| {
            let mut p = Patch::new("double");
            let x = p.tap(m.value("x"));
            let s = p.add_node("", OpKind::Add, Attrs::new(), &[x, x]);
            p.replace(m.root, s);
            Ok(Some(p))
        })
        .unwrap();
        assert_eq!(n, 2);
        let text = print(&g);
        assert!(!text.contains("mul("), "{text}");
        crate::verify::verify(&g).unwrap();
        let _ = Constant::plain(Tensor::scalar(1f32));
    }
}
