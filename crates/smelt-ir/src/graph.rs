//! The graph: nodes on a petgraph `StableDiGraph`, SSA values with types, inputs,
//! outputs and the weight store.
//!
//! Every value is defined exactly once, by a graph input or by one output slot of a
//! node. Constants are `const` nodes whose data lives in the [`WeightStore`]. Edges of
//! the petgraph mirror the node inputs (one edge per used input slot, carrying the value)
//! and are kept in sync by the editing methods, so use them rather than touching
//! `Node::inputs` directly.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use petgraph::stable_graph::{NodeIndex, StableDiGraph};
use petgraph::visit::EdgeRef;
use petgraph::Direction;

use crate::attr::Attrs;
use crate::encoding::{Constant, Encoding};
use crate::error::{IrError, IrResult};
use crate::op::OpKind;
use crate::shape::Shape;
use crate::types::TensorType;

/// A node handle; stable across removals of other nodes.
pub type NodeId = NodeIndex<u32>;

/// A value handle; stable for the life of the graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueId(pub u32);

/// A constant handle into the [`WeightStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConstId(pub u32);

/// Where a value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueDef {
    /// The `index`-th graph input.
    Input(usize),
    /// Output `slot` of `node`.
    Node { node: NodeId, slot: usize },
    /// The producing node was removed; such a value must be unused.
    Dead,
}

/// A value: a name, a type and its definition.
#[derive(Debug, Clone)]
pub struct ValueData {
    /// Name (unique within the graph); kept from ONNX where the value came from there.
    pub name: String,
    /// Type (dtype and possibly symbolic shape).
    pub ty: TensorType,
    /// Its definition.
    pub def: ValueDef,
}

/// A node: one operation.
#[derive(Debug, Clone)]
pub struct Node {
    /// Name (may be empty); kept from ONNX.
    pub name: String,
    /// The operation.
    pub op: OpKind,
    /// Attributes.
    pub attrs: Attrs,
    /// Inputs by slot; `None` is an omitted optional input.
    pub inputs: Vec<Option<ValueId>>,
    /// Outputs by slot.
    pub outputs: Vec<ValueId>,
    /// For `const` nodes: the constant.
    pub constant: Option<ConstId>,
}

/// Memory for constants: each one shared by handle, data possibly memory-mapped.
#[derive(Debug, Clone, Default)]
pub struct WeightStore {
    consts: Vec<Arc<Constant>>,
}

impl WeightStore {
    /// Add a constant, returning its handle.
    pub fn add(&mut self, c: Constant) -> ConstId {
        self.add_shared(Arc::new(c))
    }

    /// Add an already shared constant (no copy).
    pub fn add_shared(&mut self, c: Arc<Constant>) -> ConstId {
        self.consts.push(c);
        ConstId(self.consts.len() as u32 - 1)
    }

    /// A constant by handle.
    pub fn get(&self, id: ConstId) -> Option<&Arc<Constant>> {
        self.consts.get(id.0 as usize)
    }

    /// The first constant with this content hash.
    pub fn find_by_hash(&self, hash: u64) -> Option<&Arc<Constant>> {
        self.consts.iter().find(|c| c.content_hash() == hash)
    }

    /// Number of constants held (live or not).
    pub fn len(&self) -> usize {
        self.consts.len()
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.consts.is_empty()
    }

    /// All constants.
    pub fn iter(&self) -> impl Iterator<Item = (ConstId, &Arc<Constant>)> {
        self.consts
            .iter()
            .enumerate()
            .map(|(i, c)| (ConstId(i as u32), c))
    }
}

/// A computation graph.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    /// The graph's name (`@name` in text).
    pub name: String,
    dag: StableDiGraph<Node, ValueId, u32>,
    values: Vec<ValueData>,
    inputs: Vec<ValueId>,
    outputs: Vec<ValueId>,
    store: WeightStore,
    names: HashSet<String>,
    next_anon: u64,
}

impl Graph {
    /// An empty graph.
    pub fn new(name: &str) -> Graph {
        Graph {
            name: name.to_string(),
            ..Graph::default()
        }
    }

    // ---- values ------------------------------------------------------------------------

    /// A unique name: `wanted` if free, else `wanted_1`, `wanted_2`, ...; unnamed values
    /// get the next free number (`0`, `1`, ...).
    fn fresh_name(&mut self, wanted: &str) -> String {
        let mut name = wanted.to_string();
        if wanted.is_empty() {
            while name.is_empty() || self.names.contains(&name) {
                name = self.next_anon.to_string();
                self.next_anon += 1;
            }
        } else {
            let mut i = 1;
            while self.names.contains(&name) {
                name = format!("{wanted}_{i}");
                i += 1;
            }
        }
        self.names.insert(name.clone());
        name
    }

    fn new_value(&mut self, name: &str, ty: TensorType, def: ValueDef) -> ValueId {
        let name = self.fresh_name(name);
        self.values.push(ValueData { name, ty, def });
        ValueId(self.values.len() as u32 - 1)
    }

    /// A value's data. Panics only on a handle from another graph (a programming error).
    pub fn value(&self, v: ValueId) -> &ValueData {
        &self.values[v.0 as usize]
    }

    /// A value's data, if the handle is valid.
    pub fn try_value(&self, v: ValueId) -> Option<&ValueData> {
        self.values.get(v.0 as usize)
    }

    /// A value's type.
    pub fn ty(&self, v: ValueId) -> &TensorType {
        &self.value(v).ty
    }

    /// Set a value's type.
    pub fn set_type(&mut self, v: ValueId, ty: TensorType) {
        self.values[v.0 as usize].ty = ty;
    }

    /// Rename a value; fails if the name is taken by another value.
    pub fn rename_value(&mut self, v: ValueId, name: &str) -> IrResult<()> {
        if self.value(v).name == name {
            return Ok(());
        }
        if self.names.contains(name) {
            return Err(IrError::Graph(format!(
                "value name `{name}` is already used"
            )));
        }
        let old = std::mem::replace(&mut self.values[v.0 as usize].name, name.to_string());
        self.names.remove(&old);
        self.names.insert(name.to_string());
        Ok(())
    }

    /// Number of value slots ever created (including dead values).
    pub fn value_count(&self) -> usize {
        self.values.len()
    }

    /// All live values (graph inputs and outputs of existing nodes).
    pub fn live_values(&self) -> impl Iterator<Item = ValueId> + '_ {
        (0..self.values.len() as u32)
            .map(ValueId)
            .filter(|v| self.value(*v).def != ValueDef::Dead)
    }

    /// Find a live value by name.
    pub fn value_by_name(&self, name: &str) -> Option<ValueId> {
        self.live_values().find(|v| self.value(*v).name == name)
    }

    // ---- inputs / outputs --------------------------------------------------------------

    /// Add a graph input.
    pub fn add_input(&mut self, name: &str, ty: TensorType) -> ValueId {
        let idx = self.inputs.len();
        let v = self.new_value(name, ty, ValueDef::Input(idx));
        self.inputs.push(v);
        v
    }

    /// Graph inputs in order.
    pub fn inputs(&self) -> &[ValueId] {
        &self.inputs
    }

    /// Graph outputs in order.
    pub fn outputs(&self) -> &[ValueId] {
        &self.outputs
    }

    /// Set the graph outputs.
    pub fn set_outputs(&mut self, outputs: Vec<ValueId>) {
        self.outputs = outputs;
    }

    // ---- nodes -------------------------------------------------------------------------

    /// Add a node. Each output is `(name, type)`; use an unranked type when it is to be
    /// inferred. Returns the node; its output values are `graph.node(id).outputs`.
    pub fn add_node(
        &mut self,
        name: &str,
        op: OpKind,
        attrs: Attrs,
        inputs: Vec<Option<ValueId>>,
        outputs: Vec<(String, TensorType)>,
    ) -> IrResult<NodeId> {
        for v in inputs.iter().flatten() {
            match self.try_value(*v) {
                Some(d) if d.def != ValueDef::Dead => {}
                _ => {
                    return Err(IrError::Graph(format!(
                        "node `{name}` ({op}) uses an undefined value {v:?}"
                    )))
                }
            }
        }
        let id = self.dag.add_node(Node {
            name: name.to_string(),
            op,
            attrs,
            inputs: inputs.clone(),
            outputs: vec![],
            constant: None,
        });
        let outs: Vec<ValueId> = outputs
            .into_iter()
            .enumerate()
            .map(|(slot, (n, ty))| self.new_value(&n, ty, ValueDef::Node { node: id, slot }))
            .collect();
        self.dag[id].outputs = outs;
        for v in inputs.into_iter().flatten() {
            self.link(v, id);
        }
        Ok(id)
    }

    /// Add a node with one output and return that output.
    pub fn add_simple(
        &mut self,
        op: OpKind,
        attrs: Attrs,
        inputs: &[ValueId],
        out_name: &str,
        out_ty: TensorType,
    ) -> IrResult<ValueId> {
        let name = String::new();
        let id = self.add_node(
            &name,
            op,
            attrs,
            inputs.iter().map(|v| Some(*v)).collect(),
            vec![(out_name.to_string(), out_ty)],
        )?;
        Ok(self.dag[id].outputs[0])
    }

    /// Add a constant node holding `c` and return its value.
    pub fn add_const(&mut self, name: &str, c: Constant) -> ValueId {
        self.add_shared_const(name, Arc::new(c))
    }

    /// Add a constant node for an already shared constant.
    pub fn add_shared_const(&mut self, name: &str, c: Arc<Constant>) -> ValueId {
        let ty = TensorType::new(
            c.dtype(),
            Shape::known(&c.shape().iter().map(|&d| d as u64).collect::<Vec<_>>()),
        );
        let cid = self.store.add_shared(c);
        let id = self.dag.add_node(Node {
            name: String::new(),
            op: OpKind::Const,
            attrs: Attrs::new(),
            inputs: vec![],
            outputs: vec![],
            constant: Some(cid),
        });
        let v = self.new_value(name, ty, ValueDef::Node { node: id, slot: 0 });
        self.dag[id].outputs = vec![v];
        v
    }

    fn link(&mut self, v: ValueId, consumer: NodeId) {
        if let ValueDef::Node { node, .. } = self.value(v).def {
            self.dag.add_edge(node, consumer, v);
        }
    }

    fn unlink(&mut self, v: ValueId, consumer: NodeId) {
        if let ValueDef::Node { node, .. } = self.value(v).def {
            let edge = self
                .dag
                .edges_connecting(node, consumer)
                .find(|e| *e.weight() == v)
                .map(|e| e.id());
            if let Some(e) = edge {
                self.dag.remove_edge(e);
            }
        }
    }

    /// A node by id. Panics on a stale id (a programming error, not user input).
    pub fn node(&self, id: NodeId) -> &Node {
        &self.dag[id]
    }

    /// A node by id, if it exists.
    pub fn try_node(&self, id: NodeId) -> Option<&Node> {
        self.dag.node_weight(id)
    }

    /// Mutable access to a node's name, op and attributes. Change inputs with
    /// [`Graph::set_input`] so edges stay in sync.
    pub fn node_mut(&mut self, id: NodeId) -> &mut Node {
        &mut self.dag[id]
    }

    /// Replace input `slot` of `node`.
    pub fn set_input(&mut self, node: NodeId, slot: usize, value: Option<ValueId>) -> IrResult<()> {
        let old = *self.dag[node].inputs.get(slot).ok_or_else(|| {
            IrError::Graph(format!(
                "node `{}` has no input {slot}",
                self.dag[node].name
            ))
        })?;
        if let Some(o) = old {
            self.unlink(o, node);
        }
        self.dag[node].inputs[slot] = value;
        if let Some(v) = value {
            self.link(v, node);
        }
        Ok(())
    }

    /// All node ids (unordered).
    pub fn node_ids(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.dag.node_indices()
    }

    /// Number of nodes (constants included).
    pub fn node_count(&self) -> usize {
        self.dag.node_count()
    }

    /// Number of non-constant nodes.
    pub fn op_count(&self) -> usize {
        self.dag
            .node_weights()
            .filter(|n| n.op != OpKind::Const)
            .count()
    }

    /// The node and slot producing `v`, if any.
    pub fn producer(&self, v: ValueId) -> Option<(NodeId, usize)> {
        match self.value(v).def {
            ValueDef::Node { node, slot } => Some((node, slot)),
            _ => None,
        }
    }

    /// The producing node's op, if `v` is a node output.
    pub fn producer_op(&self, v: ValueId) -> Option<&OpKind> {
        self.producer(v).map(|(n, _)| &self.dag[n].op)
    }

    /// Every `(node, input slot)` that reads `v`.
    pub fn consumers(&self, v: ValueId) -> Vec<(NodeId, usize)> {
        let mut out = vec![];
        match self.value(v).def {
            ValueDef::Node { node, .. } => {
                let mut seen = HashSet::new();
                for e in self.dag.edges_directed(node, Direction::Outgoing) {
                    if *e.weight() == v && seen.insert(e.target()) {
                        for (slot, i) in self.dag[e.target()].inputs.iter().enumerate() {
                            if *i == Some(v) {
                                out.push((e.target(), slot));
                            }
                        }
                    }
                }
            }
            _ => {
                for n in self.dag.node_indices() {
                    for (slot, i) in self.dag[n].inputs.iter().enumerate() {
                        if *i == Some(v) {
                            out.push((n, slot));
                        }
                    }
                }
            }
        }
        out.sort();
        out
    }

    /// Whether `v` is read by any node or is a graph output.
    pub fn is_used(&self, v: ValueId) -> bool {
        self.outputs.contains(&v) || !self.consumers(v).is_empty()
    }

    /// Make every reader of `old` (nodes and graph outputs) read `new` instead.
    pub fn replace_all_uses(&mut self, old: ValueId, new: ValueId) {
        if old == new {
            return;
        }
        for (node, slot) in self.consumers(old) {
            self.unlink(old, node);
            self.dag[node].inputs[slot] = Some(new);
            self.link(new, node);
        }
        for o in &mut self.outputs {
            if *o == old {
                *o = new;
            }
        }
    }

    /// Remove a node; its outputs become dead values and must be unused.
    pub fn remove_node(&mut self, id: NodeId) -> IrResult<Node> {
        let node = self
            .dag
            .node_weight(id)
            .ok_or_else(|| IrError::Graph("removing a missing node".into()))?;
        for &o in &node.outputs {
            if self.is_used(o) {
                return Err(IrError::Graph(format!(
                    "cannot remove node `{}` ({}): its output `{}` is still used",
                    node.name,
                    node.op,
                    self.value(o).name
                )));
            }
        }
        let node = self
            .dag
            .remove_node(id)
            .ok_or_else(|| IrError::Graph("removing a missing node".into()))?;
        for &o in &node.outputs {
            self.values[o.0 as usize].def = ValueDef::Dead;
            let name = self.values[o.0 as usize].name.clone();
            self.names.remove(&name);
        }
        Ok(node)
    }

    /// Nodes in a topological order (stable: ties broken by insertion order), or the
    /// name of a node on a cycle.
    pub fn topo_order(&self) -> IrResult<Vec<NodeId>> {
        let mut indeg: HashMap<NodeId, usize> = HashMap::new();
        for n in self.dag.node_indices() {
            indeg.insert(n, self.dag.edges_directed(n, Direction::Incoming).count());
        }
        let mut ready: std::collections::BTreeSet<NodeId> = indeg
            .iter()
            .filter(|(_, d)| **d == 0)
            .map(|(n, _)| *n)
            .collect();
        let mut order = Vec::with_capacity(indeg.len());
        while let Some(n) = ready.pop_first() {
            order.push(n);
            for e in self.dag.edges_directed(n, Direction::Outgoing) {
                let d = indeg.get_mut(&e.target()).expect("edge to a known node");
                *d -= 1;
                if *d == 0 {
                    ready.insert(e.target());
                }
            }
        }
        if order.len() != indeg.len() {
            let stuck = indeg.iter().filter(|(_, d)| **d > 0).map(|(n, _)| *n).min();
            let name = stuck.map(|n| self.node_label(n)).unwrap_or_default();
            return Err(IrError::Cycle(name));
        }
        Ok(order)
    }

    /// A human label for a node: its name, or its op and first output.
    pub fn node_label(&self, id: NodeId) -> String {
        let n = &self.dag[id];
        if !n.name.is_empty() {
            return n.name.clone();
        }
        match n.outputs.first() {
            Some(o) => format!("{} -> %{}", n.op, self.value(*o).name),
            None => n.op.to_string(),
        }
    }

    // ---- constants ---------------------------------------------------------------------

    /// The weight store.
    pub fn store(&self) -> &WeightStore {
        &self.store
    }

    /// The constant behind a value, if it is produced by a `const` node.
    pub fn constant(&self, v: ValueId) -> Option<&Arc<Constant>> {
        let (n, _) = self.producer(v)?;
        self.store.get(self.dag[n].constant?)
    }

    /// The data of a plain constant value.
    pub fn plain_constant(&self, v: ValueId) -> Option<&crate::Tensor> {
        self.constant(v)?.as_plain()
    }

    /// The encoding of a value: the constant's, or `Plain` for computed values.
    pub fn encoding(&self, v: ValueId) -> &Encoding {
        static PLAIN: Encoding = Encoding::Plain;
        self.constant(v).map(|c| c.encoding()).unwrap_or(&PLAIN)
    }

    /// Drop constants no node refers to any more and renumber the rest.
    pub fn compact_store(&mut self) {
        let mut remap = HashMap::new();
        let mut fresh = WeightStore::default();
        let ids: Vec<NodeId> = self.dag.node_indices().collect();
        for n in ids {
            if let Some(c) = self.dag[n].constant {
                let new = *remap
                    .entry(c)
                    .or_insert_with(|| fresh.add_shared(self.store.consts[c.0 as usize].clone()));
                self.dag[n].constant = Some(new);
            }
        }
        self.store = fresh;
    }

    /// Replace symbolic dims by sizes everywhere (`batch` → 1); returns how many dims
    /// changed. Run [`Graph::infer_types`] afterwards to propagate.
    pub fn bind_dims(&mut self, sizes: &HashMap<String, u64>) -> usize {
        let mut changed = 0;
        for v in &mut self.values {
            if let Some(dims) = v.ty.shape.0.as_mut() {
                for d in dims.iter_mut() {
                    if let crate::shape::Dim::Sym(s) = d {
                        if let Some(&k) = sizes.get(s.as_str()) {
                            *d = crate::shape::Dim::Known(k);
                            changed += 1;
                        }
                    }
                }
            }
        }
        changed
    }

    /// Parameters: total logical elements of the float constants of rank ≥ 1 (scalars such
    /// as ε or √2 are fixed hyper-constants, not learned weights).
    pub fn parameter_count(&self) -> u64 {
        self.dag
            .node_weights()
            .filter_map(|n| n.constant)
            .filter_map(|c| self.store.get(c))
            .filter(|c| c.dtype().is_float() && !c.shape().is_empty())
            .map(|c| c.shape().iter().product::<usize>() as u64)
            .sum()
    }
}
