//! Graph → e-graph: a whole graph or one region of it becomes an e-graph, remembering
//! which class each original value landed in so the result can be mapped back.

use std::collections::{HashMap, HashSet};

use egg::Id;
use smelt_ir::{ConstId, Graph, NodeId, OpKind, ValueId};

use crate::analysis::{IrAnalysis, IrEGraph};
use crate::error::RewriteError;
use crate::lang::{IrLang, Leaf, OpSym};

/// A value of the region and the class it is in.
#[derive(Debug, Clone)]
pub struct Origin {
    /// The original value.
    pub value: ValueId,
    /// Its class (call `find` after rewriting).
    pub class: Id,
    /// The e-node that defined it (an op, an `out` projection or a constant leaf).
    pub def: IrLang,
    /// Its name in the graph.
    pub name: String,
}

/// An original node of the region.
#[derive(Debug, Clone)]
pub struct OrigNode {
    /// The node.
    pub node: NodeId,
    /// The class of its e-node (the value for one output, the tuple for several).
    pub class: Id,
    /// The e-node as added.
    pub enode: IrLang,
    /// The node's name (`loc`).
    pub loc: String,
}

/// A graph region as an e-graph.
pub struct Conversion {
    /// The e-graph.
    pub egraph: IrEGraph,
    /// Values of the region that must still exist afterwards: graph outputs, values read
    /// outside the region and unread values (so nothing is lost), with their classes.
    pub roots: Vec<(ValueId, Id)>,
    /// Multi-output nodes none of whose outputs is read: kept by their tuple class.
    pub tuple_roots: Vec<Id>,
    /// Every value the region defines, in region order.
    pub origins: Vec<Origin>,
    /// Every node of the region, in region order.
    pub nodes: Vec<OrigNode>,
    /// For each constant leaf, the original value holding it (reused when emitting in place).
    pub const_values: HashMap<ConstId, ValueId>,
    /// The graph's name, inputs (value, name, type) and outputs, for rebuilding a graph.
    pub graph_name: String,
    /// Graph inputs: value, name and type.
    pub inputs: Vec<(ValueId, String, smelt_ir::TensorType)>,
    /// Graph outputs.
    pub outputs: Vec<ValueId>,
}

impl Conversion {
    /// The whole graph as an e-graph (constant nodes included, as leaves).
    pub fn from_graph(g: &Graph) -> Result<Conversion, RewriteError> {
        let order = g.topo_order()?;
        Conversion::from_region(g, &order)
    }

    /// The nodes `region` (in topological order) as an e-graph. Values the region reads
    /// from elsewhere become `%N` leaves typed as in the graph; constants become `#N` leaves.
    pub fn from_region(g: &Graph, region: &[NodeId]) -> Result<Conversion, RewriteError> {
        let mut eg = IrEGraph::new(IrAnalysis::new(g.store().clone()));
        let in_region: HashSet<NodeId> = region.iter().copied().collect();
        let mut class_of: HashMap<ValueId, Id> = HashMap::new();
        let mut conv = Conversion {
            egraph: IrEGraph::new(IrAnalysis::default()),
            roots: vec![],
            tuple_roots: vec![],
            origins: vec![],
            nodes: vec![],
            const_values: HashMap::new(),
            graph_name: g.name.clone(),
            inputs: g
                .inputs()
                .iter()
                .map(|v| (*v, g.value(*v).name.clone(), g.ty(*v).clone()))
                .collect(),
            outputs: g.outputs().to_vec(),
        };
        for (pos, &id) in region.iter().enumerate() {
            let node = g.try_node(id).ok_or_else(|| {
                RewriteError::Graph(format!("region node {} does not exist", id.index()))
            })?;
            if node.op == OpKind::Const {
                let cid = node.constant.ok_or_else(|| {
                    RewriteError::Graph(format!(
                        "const node `{}` has no constant",
                        g.node_label(id)
                    ))
                })?;
                let out = *node.outputs.first().ok_or_else(|| {
                    RewriteError::Graph(format!("const node `{}` has no output", g.node_label(id)))
                })?;
                let enode = IrLang::Leaf(Leaf::Const(cid));
                let class = eg.add(enode.clone());
                class_of.insert(out, class);
                conv.const_values.entry(cid).or_insert(out);
                conv.origins.push(Origin {
                    value: out,
                    class,
                    def: enode.clone(),
                    name: g.value(out).name.clone(),
                });
                conv.nodes.push(OrigNode {
                    node: id,
                    class,
                    enode,
                    loc: node.name.clone(),
                });
                continue;
            }
            let mut children = Vec::with_capacity(node.inputs.len());
            for input in &node.inputs {
                let c = match input {
                    None => eg.add(IrLang::Leaf(Leaf::Absent)),
                    Some(v) => match class_of.get(v) {
                        Some(c) => *c,
                        None => outside_leaf(g, &mut eg, &mut conv.const_values, *v),
                    },
                };
                children.push(c);
            }
            // Impure ops are tagged with their position so identical calls stay apart.
            let uniq = if node.op.is_pure() { 0 } else { pos as u32 + 1 };
            let sym = OpSym::new(
                node.op.clone(),
                node.attrs.clone(),
                node.outputs.len() as u32,
                uniq,
            );
            let enode = IrLang::Op(sym, children.into());
            // The graph's recorded types are what the rest of smelt agreed on; use them
            // rather than re-inferring (which could lose symbolic dims traced through
            // shape arithmetic outside the region).
            eg.analysis
                .set_pending(node.outputs.iter().map(|o| g.ty(*o).clone()).collect());
            let class = eg.add(enode.clone());
            eg.analysis.clear_pending();
            if node.outputs.len() == 1 {
                class_of.insert(node.outputs[0], class);
                let v = node.outputs[0];
                conv.origins.push(Origin {
                    value: v,
                    class,
                    def: enode.clone(),
                    name: g.value(v).name.clone(),
                });
            } else {
                for (k, o) in node.outputs.iter().enumerate() {
                    let idx = eg.add(IrLang::Leaf(Leaf::Index(k)));
                    let def = IrLang::Out([idx, class]);
                    let oc = eg.add(def.clone());
                    class_of.insert(*o, oc);
                    conv.origins.push(Origin {
                        value: *o,
                        class: oc,
                        def,
                        name: g.value(*o).name.clone(),
                    });
                }
            }
            conv.nodes.push(OrigNode {
                node: id,
                class,
                enode,
                loc: node.name.clone(),
            });
        }
        eg.rebuild();
        for &id in region {
            let node = g.node(id);
            let mut any_root = false;
            for o in &node.outputs {
                let consumers = g.consumers(*o);
                let root = g.outputs().contains(o)
                    || consumers.is_empty() && node.outputs.len() == 1
                    || consumers.iter().any(|(n, _)| !in_region.contains(n));
                if root {
                    any_root = true;
                    conv.roots.push((*o, class_of[o]));
                }
            }
            let read_inside = node.outputs.iter().any(|o| !g.consumers(*o).is_empty());
            if node.outputs.len() != 1 && !any_root && !read_inside {
                if let Some(n) = conv.nodes.iter().find(|n| n.node == id) {
                    conv.tuple_roots.push(n.class);
                }
            }
        }
        conv.egraph = eg;
        Ok(conv)
    }

    /// The current class of an original value.
    pub fn class_of(&self, v: ValueId) -> Option<Id> {
        self.origins
            .iter()
            .find(|o| o.value == v)
            .map(|o| self.egraph.find(o.class))
    }
}

/// The leaf for a value the region reads from outside: its constant, or a typed `%N`.
fn outside_leaf(
    g: &Graph,
    eg: &mut IrEGraph,
    const_values: &mut HashMap<ConstId, ValueId>,
    v: ValueId,
) -> Id {
    if let Some((n, _)) = g.producer(v) {
        if let Some(cid) = g.node(n).constant {
            const_values.entry(cid).or_insert(v);
            return eg.add(IrLang::Leaf(Leaf::Const(cid)));
        }
    }
    eg.analysis.set_leaf_type(v, g.ty(v).clone());
    eg.add(IrLang::Leaf(Leaf::Value(v)))
}
