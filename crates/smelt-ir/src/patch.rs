//! Graph editing by patches: describe a small replacement subgraph and the values it
//! takes over, then apply it in one step.
//!
//! A pass rarely needs raw node surgery. It builds a [`Patch`]:
//!
//! * [`Patch::tap`] names an existing value the replacement reads;
//! * [`Patch::add_const`] and [`Patch::add_node`] build the replacement;
//! * [`Patch::replace`] says which existing value the replacement stands for: all its
//!   readers (and the graph outputs) read the new value instead;
//! * [`Patch::apply`] checks everything (values alive, types inferred and compatible),
//!   splices the replacement in, and removes the nodes that nothing reads any more.
//!
//! If any check fails the graph is left as it was and the error names the patch, the node
//! and the value.
//!
//! ```
//! use smelt_ir::{text, Attrs, OpKind, Patch};
//! let mut g = text::parse(
//!     "graph @g(%x: f32[4]) -> (f32[4]) {
//!        %n = neg(%x) : f32[4]
//!        %y = neg(%n) : f32[4]
//!        return %y
//!      }",
//! ).unwrap();
//! let (y, x) = (g.value_by_name("y").unwrap(), g.value_by_name("x").unwrap());
//! // -(-x) is x; relu keeps the example non-trivial.
//! let mut p = Patch::new("double-negation");
//! let x = p.tap(x);
//! let r = p.add_node("relu_of_x", OpKind::Relu, Attrs::new(), &[x]);
//! p.replace(y, r);
//! let outcome = p.apply(&mut g).unwrap();
//! assert_eq!((outcome.nodes_added, outcome.nodes_removed), (1, 2));
//! assert_eq!(g.op_count(), 1);
//! ```

use std::collections::{HashMap, HashSet};

use crate::attr::Attrs;
use crate::dtype::DType;
use crate::encoding::Constant;
use crate::error::{IrError, IrResult};
use crate::graph::{Graph, NodeId, ValueDef, ValueId};
use crate::infer::{infer_node, merge_types};
use crate::op::OpKind;
use crate::types::TensorType;

/// A value as a patch sees it: one of the graph's or one the patch creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PatchValue(Source);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Source {
    Existing(ValueId),
    Const(usize),
    Output { node: usize, slot: usize },
}

struct NewNode {
    name: String,
    op: OpKind,
    attrs: Attrs,
    inputs: Vec<Option<PatchValue>>,
    outputs: usize,
}

/// What [`Patch::apply`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PatchOutcome {
    /// Op and constant nodes inserted.
    pub nodes_added: usize,
    /// Nodes removed because nothing read them any more (or [`Patch::remove_node`]).
    pub nodes_removed: usize,
    /// The graph value each [`PatchValue`] the patch created became, by creation order:
    /// constants first, then node outputs.
    pub created: Vec<ValueId>,
}

/// A replacement subgraph and the values it takes over; see the [module docs](self).
pub struct Patch {
    label: String,
    consts: Vec<(String, Constant)>,
    nodes: Vec<NewNode>,
    replacements: Vec<(ValueId, PatchValue)>,
    removals: Vec<NodeId>,
}

impl Patch {
    /// An empty patch; `label` names it in errors (usually the pass and the node).
    pub fn new(label: impl Into<String>) -> Patch {
        Patch {
            label: label.into(),
            consts: vec![],
            nodes: vec![],
            replacements: vec![],
            removals: vec![],
        }
    }

    /// An existing graph value the replacement reads.
    pub fn tap(&mut self, v: ValueId) -> PatchValue {
        PatchValue(Source::Existing(v))
    }

    /// A new constant.
    pub fn add_const(&mut self, name: &str, c: Constant) -> PatchValue {
        self.consts.push((name.to_string(), c));
        PatchValue(Source::Const(self.consts.len() - 1))
    }

    /// A new node with one output; the output type is inferred on apply.
    pub fn add_node(
        &mut self,
        name: &str,
        op: OpKind,
        attrs: Attrs,
        inputs: &[PatchValue],
    ) -> PatchValue {
        let inputs = inputs.iter().copied().map(Some).collect();
        self.add_node_with(name, op, attrs, inputs, 1)[0]
    }

    /// A new node with optional (omitted) inputs and `outputs` outputs.
    pub fn add_node_with(
        &mut self,
        name: &str,
        op: OpKind,
        attrs: Attrs,
        inputs: Vec<Option<PatchValue>>,
        outputs: usize,
    ) -> Vec<PatchValue> {
        self.nodes.push(NewNode {
            name: name.to_string(),
            op,
            attrs,
            inputs,
            outputs,
        });
        let node = self.nodes.len() - 1;
        (0..outputs)
            .map(|slot| PatchValue(Source::Output { node, slot }))
            .collect()
    }

    /// Every reader of `old` (nodes and graph outputs) reads `new` instead. A graph output
    /// keeps its name.
    pub fn replace(&mut self, old: ValueId, new: PatchValue) {
        self.replacements.push((old, new));
    }

    /// Remove `node` even if the replacements do not make it dead by themselves; its
    /// outputs must be unused once the replacements are made.
    pub fn remove_node(&mut self, node: NodeId) {
        self.removals.push(node);
    }

    /// Whether the patch does nothing.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty() && self.replacements.is_empty() && self.removals.is_empty()
    }

    /// Check and splice the patch into `g`; on error `g` is unchanged.
    pub fn apply(self, g: &mut Graph) -> IrResult<PatchOutcome> {
        self.check_handles(g)?;
        let mut added: Vec<NodeId> = vec![];
        match self.splice(g, &mut added) {
            Ok(outcome) => Ok(outcome),
            Err(e) => {
                // Roll back: the replacements were not made yet, so the inserted nodes
                // are read by nothing but each other.
                for id in added.into_iter().rev() {
                    let _ = g.remove_node(id);
                }
                Err(e)
            }
        }
    }

    fn err(&self, msg: impl Into<String>) -> IrError {
        IrError::Graph(format!("patch `{}`: {}", self.label, msg.into()))
    }

    /// Every handle the patch holds refers to something alive in `g`.
    fn check_handles(&self, g: &Graph) -> IrResult<()> {
        let alive = |v: ValueId| g.try_value(v).is_some_and(|d| d.def != ValueDef::Dead);
        let existing = self
            .nodes
            .iter()
            .flat_map(|n| n.inputs.iter().flatten())
            .chain(self.replacements.iter().map(|(_, new)| new))
            .filter_map(|v| match v.0 {
                Source::Existing(v) => Some(v),
                _ => None,
            });
        for v in existing.chain(self.replacements.iter().map(|(old, _)| *old)) {
            if !alive(v) {
                return Err(self.err(format!("value {v:?} is not (or no longer) in the graph")));
            }
        }
        for (i, n) in self.nodes.iter().enumerate() {
            for v in n.inputs.iter().flatten() {
                if let Source::Output { node, slot } = v.0 {
                    if node >= i || slot >= self.nodes[node].outputs {
                        return Err(self.err(format!(
                            "node `{}` reads output {slot} of patch node {node}, which does not come before it",
                            n.name
                        )));
                    }
                }
            }
        }
        let mut seen = HashSet::new();
        for (old, _) in &self.replacements {
            if !seen.insert(*old) {
                return Err(self.err(format!("value `{}` is replaced twice", g.value(*old).name)));
            }
        }
        for &id in &self.removals {
            if g.try_node(id).is_none() {
                return Err(self.err(format!("node {id:?} to remove is not in the graph")));
            }
        }
        Ok(())
    }

    fn splice(&self, g: &mut Graph, added: &mut Vec<NodeId>) -> IrResult<PatchOutcome> {
        let mut created = vec![];
        for (name, c) in &self.consts {
            let v = g.add_const(name, c.clone());
            added.push(
                g.producer(v)
                    .map(|(n, _)| n)
                    .expect("a constant has a producer"),
            );
            created.push(v);
        }
        let mut outputs: Vec<Vec<ValueId>> = vec![];
        let resolve = |v: PatchValue, created: &[ValueId], outputs: &[Vec<ValueId>]| match v.0 {
            Source::Existing(v) => v,
            Source::Const(i) => created[i],
            Source::Output { node, slot } => outputs[node][slot],
        };
        for n in &self.nodes {
            let inputs = n
                .inputs
                .iter()
                .map(|i| i.map(|v| resolve(v, &created, &outputs)))
                .collect();
            let placeholder = TensorType::unranked(DType::F32);
            let outs = (0..n.outputs)
                .map(|_| (String::new(), placeholder.clone()))
                .collect();
            let id = g.add_node(&n.name, n.op.clone(), n.attrs.clone(), inputs, outs)?;
            added.push(id);
            let types = infer_node(g, id).map_err(|e| self.err(e.to_string()))?;
            if types.len() < n.outputs {
                return Err(self.err(format!(
                    "node `{}` ({}) yields {} outputs, the patch asked for {}",
                    n.name,
                    n.op,
                    types.len(),
                    n.outputs
                )));
            }
            let outs = g.node(id).outputs.clone();
            for (v, ty) in outs.iter().zip(types) {
                g.set_type(*v, ty);
            }
            outputs.push(outs);
        }
        created.extend(outputs.iter().flatten().copied());

        // Types must fit before anything existing is touched.
        let mut plan = vec![];
        for &(old, new) in &self.replacements {
            let new = resolve(new, &created, &outputs);
            let (want, got) = (g.ty(old), g.ty(new));
            merge_types(got, want).map_err(|msg| {
                self.err(format!(
                    "replacement `{}` for `{}` does not fit: {msg}",
                    g.value(new).name,
                    g.value(old).name
                ))
            })?;
            plan.push((old, new));
        }

        // Explicit removals must be dead once the replacements are made.
        let replaced: HashSet<ValueId> = plan.iter().map(|(old, _)| *old).collect();
        let removing: HashSet<NodeId> = self.removals.iter().copied().collect();
        for &id in &self.removals {
            for &o in &g.node(id).outputs {
                let read_elsewhere = g.consumers(o).iter().any(|(n, _)| !removing.contains(n));
                if !replaced.contains(&o) && (read_elsewhere || g.outputs().contains(&o)) {
                    return Err(self.err(format!(
                        "cannot remove `{}`: its output `{}` is still used",
                        g.node_label(id),
                        g.value(o).name
                    )));
                }
            }
        }

        // From here on nothing fails: make the replacements, then sweep.
        let mut dead_candidates: Vec<NodeId> = self.removals.clone();
        let mut renames = vec![];
        for (old, new) in plan {
            let positions: Vec<usize> = g
                .outputs()
                .iter()
                .enumerate()
                .filter(|(_, o)| **o == old)
                .map(|(i, _)| i)
                .collect();
            g.replace_all_uses(old, new);
            if !positions.is_empty() {
                let named_elsewhere = !created.contains(&new)
                    || g.inputs().contains(&new)
                    || g.outputs().iter().filter(|o| **o == new).count() > positions.len();
                let keeper = if named_elsewhere {
                    // The new value has a name of its own (a graph input, another output, an
                    // existing value): keep the output's name on an Identity copy.
                    let ty = g.ty(old).clone();
                    let id = g.add_node(
                        "",
                        OpKind::Identity,
                        Attrs::new(),
                        vec![Some(new)],
                        vec![(String::new(), ty)],
                    )?;
                    added.push(id);
                    let copy = g.node(id).outputs[0];
                    let mut outs = g.outputs().to_vec();
                    for &i in &positions {
                        outs[i] = copy;
                    }
                    g.set_outputs(outs);
                    copy
                } else {
                    new
                };
                renames.push((keeper, old));
            }
            if let Some((node, _)) = g.producer(old) {
                dead_candidates.push(node);
            }
        }
        let removed = sweep(g, dead_candidates)?;
        for (keeper, old) in renames {
            let name = g.value(old).name.clone();
            if g.value(old).def != ValueDef::Dead {
                // The old value survives (another output of its node is still read): it
                // gives its name up to the value that took its place.
                let mut k = 1;
                while g.value_by_name(&format!("{name}.{k}")).is_some() {
                    k += 1;
                }
                g.rename_value(old, &format!("{name}.{k}"))?;
            }
            g.rename_value(keeper, &name)?;
        }
        Ok(PatchOutcome {
            nodes_added: added.len(),
            nodes_removed: removed,
            created,
        })
    }
}

/// Remove the candidates that nothing reads, then whatever fed only them, transitively.
fn sweep(g: &mut Graph, candidates: Vec<NodeId>) -> IrResult<usize> {
    let mut removed = 0;
    let mut work = candidates;
    let mut done: HashMap<NodeId, ()> = HashMap::new();
    while let Some(id) = work.pop() {
        if done.contains_key(&id) || g.try_node(id).is_none() {
            continue;
        }
        let node = g.node(id);
        if node.outputs.iter().any(|&o| g.is_used(o)) {
            continue;
        }
        let feeders: Vec<NodeId> = node
            .inputs
            .iter()
            .flatten()
            .filter_map(|&v| g.producer(v).map(|(n, _)| n))
            .collect();
        g.remove_node(id)?;
        done.insert(id, ());
        removed += 1;
        work.extend(feeders);
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::Tensor;
    use crate::text::{parse, print};

    fn graph(src: &str) -> Graph {
        parse(src).unwrap()
    }

    fn v(g: &Graph, name: &str) -> ValueId {
        g.value_by_name(name).unwrap()
    }

    const DIV: &str = "graph @g(%x: f32[?b, 2]) -> (f32[?b, 2]) {
  %c = const f32[] [4.0]
  %y = div(%x, %c) : f32[?b, 2]
  return %y
}
";

    #[test]
    fn replaces_a_node_keeps_the_output_name_and_sweeps_dead_nodes() {
        let mut g = graph(DIV);
        let mut p = Patch::new("div-to-mul");
        let x = p.tap(v(&g, "x"));
        let r = p.add_const("r", Constant::plain(Tensor::scalar(0.25f32)));
        let m = p.add_node("mul", OpKind::Mul, Attrs::new(), &[x, r]);
        p.replace(v(&g, "y"), m);
        let out = p.apply(&mut g).unwrap();
        assert_eq!((out.nodes_added, out.nodes_removed), (2, 2));
        assert_eq!(
            print(&g),
            "graph @g(%x: f32[?b, 2]) -> (f32[?b, 2]) {
  %r = const f32[] [0.25]
  %y = mul(%x, %r) : f32[?b, 2] loc(\"mul\")
  return %y
}
"
        );
        crate::verify::verify(&g).unwrap();
    }

    #[test]
    fn a_type_mismatch_leaves_the_graph_unchanged() {
        let mut g = graph(DIV);
        let before = print(&g);
        let mut p = Patch::new("bad");
        let x = p.tap(v(&g, "x"));
        let c = p.add_node(
            "cast",
            OpKind::Cast,
            Attrs::new().with("to", crate::Attr::Int(7)),
            &[x],
        );
        p.replace(v(&g, "y"), c);
        let e = p.apply(&mut g).unwrap_err().to_string();
        assert!(
            e.contains("patch `bad`") && e.contains("does not fit"),
            "{e}"
        );
        assert_eq!(print(&g), before);
    }

    #[test]
    fn an_inference_error_names_the_node_and_rolls_back() {
        let mut g = graph(DIV);
        let before = print(&g);
        let mut p = Patch::new("bad-matmul");
        let x = p.tap(v(&g, "x"));
        let w = p.add_const(
            "w",
            Constant::plain(Tensor::from_vec(vec![3, 1], vec![1f32, 2., 3.]).unwrap()),
        );
        let m = p.add_node("mm", OpKind::MatMul, Attrs::new(), &[x, w]);
        p.replace(v(&g, "y"), m);
        let e = p.apply(&mut g).unwrap_err().to_string();
        assert!(e.contains("`mm`"), "{e}");
        assert_eq!(print(&g), before);
    }

    #[test]
    fn stale_handles_are_errors() {
        let mut g = graph(DIV);
        let y = v(&g, "y");
        let mut first = Patch::new("first");
        let x = first.tap(v(&g, "x"));
        let r = first.add_node("", OpKind::Relu, Attrs::new(), &[x]);
        first.replace(y, r);
        first.apply(&mut g).unwrap();
        let mut second = Patch::new("second");
        let x = second.tap(v(&g, "x"));
        second.replace(y, x);
        let e = second.apply(&mut g).unwrap_err().to_string();
        assert!(e.contains("no longer"), "{e}");
    }

    #[test]
    fn replacing_an_output_by_an_input_keeps_the_output_name() {
        let mut g = graph(
            "graph @g(%x: f32[2]) -> (f32[2]) {
  %y = identity(%x) : f32[2]
  return %y
}
",
        );
        let mut p = Patch::new("fwd");
        let x = p.tap(v(&g, "x"));
        p.replace(v(&g, "y"), x);
        p.apply(&mut g).unwrap();
        let out = g.outputs()[0];
        assert_eq!(g.value(out).name, "y");
        crate::verify::verify(&g).unwrap();
    }

    #[test]
    fn explicit_removal_of_a_used_node_is_refused() {
        let mut g = graph(DIV);
        let before = print(&g);
        let mut p = Patch::new("rm");
        p.remove_node(g.producer(v(&g, "y")).unwrap().0);
        let e = p.apply(&mut g).unwrap_err().to_string();
        assert!(e.contains("still used"), "{e}");
        assert_eq!(print(&g), before);
    }
}
