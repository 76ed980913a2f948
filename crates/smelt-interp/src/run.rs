//! The graph runner: executes nodes in topological order, frees intermediates after their
//! last use and reports every computed value to an optional observer.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use smelt_ir::{ConstId, Dim, Graph, NodeId, OpKind, Tensor, ValueId};

use crate::decode::decode_constant;
use crate::error::InterpError;
use crate::ops;
use crate::value::Value;

/// A prepared interpreter for one graph.
///
/// Preparing computes the execution order and each value's last use once; constants are
/// converted on first use and cached, so running the same graph repeatedly (e.g. over a
/// calibration set) pays for weight conversion only once.
pub struct Interpreter<'g> {
    graph: &'g Graph,
    order: Vec<NodeId>,
    /// For each value read by a node, the position in `order` of its last reader.
    last_use: HashMap<ValueId, usize>,
    consts: Mutex<HashMap<ConstId, Arc<Value>>>,
}

/// Observer of computed values: called with each graph input and each node output.
pub type Observer<'a> = &'a mut dyn FnMut(ValueId, &Tensor);

impl<'g> Interpreter<'g> {
    /// Prepare `graph` for execution; fails if it has a cycle. Nodes that no graph output
    /// depends on are never run.
    pub fn new(graph: &'g Graph) -> Result<Interpreter<'g>, InterpError> {
        let mut needed = HashSet::new();
        let mut stack: Vec<ValueId> = graph.outputs().to_vec();
        while let Some(v) = stack.pop() {
            if let Some((n, _)) = graph.producer(v) {
                if needed.insert(n) {
                    stack.extend(graph.node(n).inputs.iter().flatten());
                }
            }
        }
        let order: Vec<NodeId> = graph
            .topo_order()?
            .into_iter()
            .filter(|n| needed.contains(n))
            .collect();
        let mut last_use = HashMap::new();
        for (pos, &id) in order.iter().enumerate() {
            for v in graph.node(id).inputs.iter().flatten() {
                last_use.insert(*v, pos);
            }
        }
        Ok(Interpreter {
            graph,
            order,
            last_use,
            consts: Mutex::new(HashMap::new()),
        })
    }

    /// The graph being interpreted.
    pub fn graph(&self) -> &'g Graph {
        self.graph
    }

    /// Run the graph on named inputs and return the graph outputs, named, in order.
    pub fn run(&self, inputs: &[(&str, Tensor)]) -> Result<Vec<(String, Tensor)>, InterpError> {
        self.execute(inputs, None)
    }

    /// Like [`Interpreter::run`], calling `observer` with every graph input and every
    /// value a node computes (constants excluded), e.g. to collect calibration ranges.
    pub fn run_with_observer(
        &self,
        inputs: &[(&str, Tensor)],
        observer: Observer<'_>,
    ) -> Result<Vec<(String, Tensor)>, InterpError> {
        self.execute(inputs, Some(observer))
    }

    fn execute(
        &self,
        inputs: &[(&str, Tensor)],
        mut observer: Option<Observer<'_>>,
    ) -> Result<Vec<(String, Tensor)>, InterpError> {
        let g = self.graph;
        let mut slots: Vec<Option<Arc<Value>>> = vec![None; g.value_count()];
        let outputs = g.outputs();
        for (v, value) in self.bind_inputs(inputs)? {
            if let Some(obs) = observer.as_mut() {
                obs(v, &inputs_tensor(inputs, &g.value(v).name)?);
            }
            slots[v.0 as usize] = Some(Arc::new(value));
        }
        for (pos, &id) in self.order.iter().enumerate() {
            let node = g.node(id);
            let label = || g.node_label(id);
            if node.op == OpKind::Const {
                let value = self.constant(id)?;
                if let Some(&out) = node.outputs.first() {
                    slots[out.0 as usize] = Some(value);
                }
                continue;
            }
            let results = {
                let mut args = Vec::with_capacity(node.inputs.len());
                for i in &node.inputs {
                    args.push(match i {
                        None => None,
                        Some(v) => match slots[v.0 as usize].as_deref() {
                            Some(val) => Some(val),
                            None => {
                                return Err(InterpError::Graph(format!(
                                    "value `{}` read by node `{}` was never computed",
                                    g.value(*v).name,
                                    label()
                                )))
                            }
                        },
                    });
                }
                ops::eval(&node.op, &node.attrs, &args, node.outputs.len())
                    .map_err(|e| e.at(&label(), &node.op.to_string()))?
            };
            if results.len() < node.outputs.len() {
                return Err(InterpError::Op {
                    node: label(),
                    op: node.op.to_string(),
                    msg: format!(
                        "produced {} outputs, the node has {}",
                        results.len(),
                        node.outputs.len()
                    ),
                });
            }
            for (&out, value) in node.outputs.iter().zip(results) {
                if let Some(obs) = observer.as_mut() {
                    let t = value
                        .to_tensor()
                        .map_err(|e| e.at(&label(), &node.op.to_string()))?;
                    obs(out, &t);
                }
                // Outputs nobody reads are dropped at once.
                if self.last_use.contains_key(&out) || outputs.contains(&out) {
                    slots[out.0 as usize] = Some(Arc::new(value));
                }
            }
            for v in node.inputs.iter().flatten() {
                if self.last_use.get(v) == Some(&pos) && !outputs.contains(v) {
                    slots[v.0 as usize] = None;
                }
            }
        }
        outputs
            .iter()
            .map(|&v| {
                let name = g.value(v).name.clone();
                match &slots[v.0 as usize] {
                    Some(val) => val
                        .to_tensor()
                        .map(|t| (name.clone(), t))
                        .map_err(|e| InterpError::Graph(format!("output `{name}`: {}", e.0))),
                    None => Err(InterpError::Graph(format!(
                        "graph output `{name}` was never computed"
                    ))),
                }
            })
            .collect()
    }

    /// The value of a const node, converted (and decoded) once and cached.
    fn constant(&self, id: NodeId) -> Result<Arc<Value>, InterpError> {
        let g = self.graph;
        let node = g.node(id);
        let name = node
            .outputs
            .first()
            .map(|&v| g.value(v).name.clone())
            .unwrap_or_default();
        let bad = |msg: String| InterpError::Constant {
            name: name.clone(),
            msg,
        };
        let cid = node
            .constant
            .ok_or_else(|| bad("const node without a constant".into()))?;
        if let Some(v) = self.cache().get(&cid) {
            return Ok(v.clone());
        }
        let c = g
            .store()
            .get(cid)
            .ok_or_else(|| bad(format!("constant {cid:?} is not in the weight store")))?;
        let tensor = match c.as_plain() {
            Some(t) => t.clone(),
            None => decode_constant(c).map_err(|e| bad(e.to_string()))?,
        };
        let value = Arc::new(Value::from_tensor(&tensor).map_err(|e| bad(e.0))?);
        self.cache().insert(cid, value.clone());
        Ok(value)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<ConstId, Arc<Value>>> {
        // A poisoned cache only means another run panicked mid-insert; the map is still
        // a valid cache.
        self.consts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Match provided tensors to graph inputs and check them against the declared types.
    fn bind_inputs(&self, inputs: &[(&str, Tensor)]) -> Result<Vec<(ValueId, Value)>, InterpError> {
        let g = self.graph;
        let mut given: HashMap<&str, &Tensor> = HashMap::new();
        let mut extra = vec![];
        for (name, t) in inputs {
            let known = g.inputs().iter().any(|&v| g.value(v).name == *name);
            if !known || given.insert(name, t).is_some() {
                extra.push(name.to_string());
            }
        }
        let missing: Vec<String> = g
            .inputs()
            .iter()
            .map(|&v| g.value(v).name.clone())
            .filter(|n| !given.contains_key(n.as_str()))
            .collect();
        if !missing.is_empty() || !extra.is_empty() {
            return Err(InterpError::InputSet { missing, extra });
        }
        // Sizes bound to symbolic dims so far, with the input that bound them.
        let mut syms: HashMap<&str, (usize, &str)> = HashMap::new();
        let mut bound = Vec::with_capacity(g.inputs().len());
        for &v in g.inputs() {
            let data = g.value(v);
            let name = data.name.as_str();
            let t = given[name];
            let bad = |msg: String| InterpError::Input {
                name: name.to_string(),
                msg,
            };
            if t.dtype() != data.ty.dtype {
                return Err(bad(format!(
                    "expected dtype {}, given {}",
                    data.ty.dtype,
                    t.dtype()
                )));
            }
            if !data.ty.shape.admits(t.shape()) {
                return Err(bad(format!(
                    "expected shape {}, given {:?}",
                    data.ty.shape,
                    t.shape()
                )));
            }
            if let Some(dims) = data.ty.shape.dims() {
                for (d, &size) in dims.iter().zip(t.shape()) {
                    if let Dim::Sym(s) = d {
                        match syms.get(s.as_str()) {
                            Some(&(prev, other)) if prev != size => {
                                return Err(bad(format!(
                                    "symbolic dim `{s}` is {size} here but {prev} in input `{other}` (expected shape {}, given {:?})",
                                    data.ty.shape,
                                    t.shape()
                                )));
                            }
                            Some(_) => {}
                            None => {
                                syms.insert(s, (size, name));
                            }
                        }
                    }
                }
            }
            bound.push((v, Value::from_tensor(t).map_err(|e| bad(e.0))?));
        }
        Ok(bound)
    }
}

/// The provided tensor called `name` (it was bound, so it exists).
fn inputs_tensor(inputs: &[(&str, Tensor)], name: &str) -> Result<Tensor, InterpError> {
    inputs
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| t.clone())
        .ok_or_else(|| InterpError::Graph(format!("input `{name}` vanished while binding")))
}

/// Run `graph` once on named inputs; see [`Interpreter::run`].
pub fn run(graph: &Graph, inputs: &[(&str, Tensor)]) -> Result<Vec<(String, Tensor)>, InterpError> {
    Interpreter::new(graph)?.run(inputs)
}

/// Run `graph` once, reporting every graph input and computed value to `observer`; see
/// [`Interpreter::run_with_observer`].
pub fn run_with_observer(
    graph: &Graph,
    inputs: &[(&str, Tensor)],
    observer: Observer<'_>,
) -> Result<Vec<(String, Tensor)>, InterpError> {
    Interpreter::new(graph)?.run_with_observer(inputs, observer)
}
