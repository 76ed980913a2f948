//! The shrinker: reduce a failing graph to a minimal one that still fails.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use smelt_ir::{Constant, DType, Graph, NodeId, OpKind, Tensor, ValueDef, ValueId};

/// One candidate simplification.
#[derive(Debug, Clone)]
pub(crate) enum Edit {
    /// Drop graph output `i`.
    DropOutput(usize),
    /// Make these (dead) values graph outputs too, so that a failure that lives in dead
    /// code survives the dead-code removal every rebuild does.
    AddOutputs(Vec<ValueId>),
    /// Graph output `index` becomes `with` (of any type), cutting what only fed it.
    ReplaceOutput { index: usize, with: ValueId },
    /// Every reader of `value` reads `with` (of the same type) instead.
    Bypass { value: ValueId, with: ValueId },
    /// `value` becomes a new graph input; what computed it goes away if unused.
    ToInput(ValueId),
    /// The constant node gets simpler data of the same type.
    ReplaceConst { node: NodeId, with: Arc<Constant> },
}

/// Shrink `g` while `fails` keeps returning true; see [`shrink_with_budget`]. At most
/// 2000 candidates are tried.
pub fn shrink(g: &Graph, fails: impl FnMut(&Graph) -> bool) -> Graph {
    shrink_with_budget(g, 2000, fails)
}

/// Greedily simplify `g` while `fails` (the caller's "does this graph still show the
/// bug?") holds, trying at most `budget` candidates, and return the smallest failing
/// graph found (`g` itself if no simplification keeps the failure).
///
/// Each round tries, in order: dropping a graph output; replacing an output by an
/// input of the node computing it; removing a node by rewiring its
/// readers to one of its inputs or to a graph input of the same type; turning a node's
/// f32 result into a new graph input (which removes the subgraph that computed it);
/// replacing an f32 constant by ones, or by its values rounded to one decimal. Dead
/// nodes and unused inputs are dropped after every step, and only valid graphs (the
/// verifier passes) are offered to `fails`; if the failure needs dead code, every dead
/// result is made an output first. A step is kept only if it makes the graph
/// strictly smaller (fewer ops, then nodes, outputs, and non-trivial constant
/// elements), so shrinking always ends.
pub fn shrink_with_budget(
    g: &Graph,
    budget: usize,
    mut fails: impl FnMut(&Graph) -> bool,
) -> Graph {
    let mut cur = match rebuild(g, None) {
        Some(c) if fails(&c) => c,
        _ => {
            // The failure needs dead code (e.g. a compiler that type-checks every node):
            // keep it by returning every dead result.
            let dead: Vec<ValueId> = g
                .node_ids()
                .filter(|&n| g.node(n).op != OpKind::Const)
                .flat_map(|n| g.node(n).outputs.clone())
                .filter(|&v| !g.is_used(v))
                .collect();
            match rebuild(g, Some(&Edit::AddOutputs(dead))) {
                Some(c) if fails(&c) => c,
                _ => g.clone(),
            }
        }
    };
    let mut tried = 0;
    'rounds: loop {
        let size = measure(&cur);
        for edit in candidates(&cur) {
            if tried >= budget {
                break 'rounds;
            }
            let Some(next) = rebuild(&cur, Some(&edit)) else {
                continue;
            };
            if measure(&next) >= size {
                continue;
            }
            tried += 1;
            if fails(&next) {
                cur = next;
                continue 'rounds;
            }
        }
        break;
    }
    cur
}

/// How big a graph is, compared lexicographically: ops, nodes, outputs, inputs, f32
/// constant elements that are not 1, and those with more than one decimal.
fn measure(g: &Graph) -> (usize, usize, usize, usize, usize, usize) {
    let (mut not_one, mut long) = (0, 0);
    for n in g.node_ids() {
        if let Some(t) = const_tensor(g, n) {
            if let Ok(v) = t.to_vec::<f32>() {
                not_one += v.iter().filter(|&&x| x != 1.0).count();
                long += v.iter().filter(|&&x| round1(x) != x).count();
            }
        }
    }
    (
        g.op_count(),
        g.node_count(),
        g.outputs().len(),
        g.inputs().len(),
        not_one,
        long,
    )
}

fn round1(x: f32) -> f32 {
    (x * 10.0).round() / 10.0
}

/// The data of a plain f32 constant node.
fn const_tensor(g: &Graph, n: NodeId) -> Option<&Tensor> {
    let node = g.node(n);
    let t = g.store().get(node.constant?)?.as_plain()?;
    (t.dtype() == DType::F32).then_some(t)
}

fn candidates(g: &Graph) -> Vec<Edit> {
    let mut out = vec![];
    if g.outputs().len() > 1 {
        out.extend((0..g.outputs().len()).map(Edit::DropOutput));
    }
    // An output computed by a node can be replaced by one of that node's (non-constant)
    // inputs: this peels ops off the end when nothing of the same type can stand in.
    for (index, &o) in g.outputs().iter().enumerate() {
        if let Some((n, _)) = g.producer(o) {
            for &w in g.node(n).inputs.iter().flatten() {
                if g.plain_constant(w).is_none() && !g.outputs().contains(&w) {
                    out.push(Edit::ReplaceOutput { index, with: w });
                }
            }
        }
    }
    let order = g.topo_order().unwrap_or_default();
    // Later nodes first: removing near the outputs tends to cut the most.
    for &n in order.iter().rev() {
        let node = g.node(n);
        if node.op == OpKind::Const || node.outputs.len() != 1 {
            continue;
        }
        let v = node.outputs[0];
        let ty = g.ty(v);
        let mut seen = HashSet::new();
        for w in node.inputs.iter().flatten().chain(g.inputs()) {
            if *w != v && g.ty(*w) == ty && seen.insert(*w) {
                out.push(Edit::Bypass { value: v, with: *w });
            }
        }
        if ty.dtype == DType::F32 {
            out.push(Edit::ToInput(v));
        }
    }
    for &n in &order {
        let Some(t) = const_tensor(g, n) else {
            continue;
        };
        let Ok(vals) = t.to_vec::<f32>() else {
            continue;
        };
        let shape = t.shape().to_vec();
        let node = g.node(n);
        for simpler in [
            vals.iter().map(|_| 1.0f32).collect::<Vec<_>>(),
            vals.iter().map(|&x| round1(x)).collect(),
        ] {
            if simpler != vals {
                if let Ok(t) = Tensor::from_vec(shape.clone(), simpler) {
                    out.push(Edit::ReplaceConst {
                        node: n,
                        with: Arc::new(Constant::plain(t)),
                    });
                }
            }
        }
        // A constant that is an f32 value can also become an input.
        if node.outputs.len() == 1 && g.ty(node.outputs[0]).dtype == DType::F32 {
            out.push(Edit::ToInput(node.outputs[0]));
        }
    }
    out
}

/// A copy of `g` with `edit` applied, keeping only what the outputs need; `None` if the
/// result does not verify.
pub(crate) fn rebuild(g: &Graph, edit: Option<&Edit>) -> Option<Graph> {
    let resolve = |v: ValueId| match edit {
        Some(Edit::Bypass { value, with }) if *value == v => *with,
        _ => v,
    };
    let as_input = |v: ValueId| matches!(edit, Some(Edit::ToInput(x)) if *x == v);
    let extra: &[ValueId] = match edit {
        Some(Edit::AddOutputs(vs)) => vs,
        _ => &[],
    };
    let outputs: Vec<ValueId> = g
        .outputs()
        .iter()
        .chain(extra)
        .enumerate()
        .filter(|(i, _)| !matches!(edit, Some(Edit::DropOutput(j)) if j == i))
        .map(|(i, &v)| match edit {
            Some(Edit::ReplaceOutput { index, with }) if *index == i => *with,
            _ => resolve(v),
        })
        .collect();
    if outputs.is_empty() {
        return None;
    }

    // What the outputs need.
    let mut live_nodes: HashSet<NodeId> = HashSet::new();
    let mut live_inputs: HashSet<ValueId> = HashSet::new();
    let mut stack: Vec<ValueId> = outputs.clone();
    let mut seen: HashSet<ValueId> = HashSet::new();
    while let Some(v) = stack.pop() {
        if !seen.insert(v) {
            continue;
        }
        if as_input(v) {
            live_inputs.insert(v);
            continue;
        }
        match g.value(v).def {
            ValueDef::Input(_) => {
                live_inputs.insert(v);
            }
            ValueDef::Node { node, .. } => {
                if live_nodes.insert(node) {
                    for i in g.node(node).inputs.iter().flatten() {
                        stack.push(resolve(*i));
                    }
                }
            }
            ValueDef::Dead => return None,
        }
    }

    let mut ng = Graph::new(&g.name);
    let mut map: HashMap<ValueId, ValueId> = HashMap::new();
    for &v in g.inputs() {
        if live_inputs.contains(&v) {
            let d = g.value(v);
            map.insert(v, ng.add_input(&d.name, d.ty.clone()));
        }
    }
    if let Some(Edit::ToInput(v)) = edit {
        if live_inputs.contains(v) {
            let d = g.value(*v);
            map.insert(*v, ng.add_input(&d.name, d.ty.clone()));
        }
    }
    for n in g.topo_order().ok()? {
        if !live_nodes.contains(&n) {
            continue;
        }
        let node = g.node(n);
        if node.outputs.iter().any(|o| as_input(*o)) {
            continue;
        }
        if let Some(cid) = node.constant {
            let c = match edit {
                Some(Edit::ReplaceConst { node: m, with }) if *m == n => with.clone(),
                _ => g.store().get(cid)?.clone(),
            };
            let out = node.outputs[0];
            map.insert(out, ng.add_shared_const(&g.value(out).name, c));
            continue;
        }
        let ins: Vec<Option<ValueId>> = node
            .inputs
            .iter()
            .map(|i| i.map(|v| map.get(&resolve(v)).copied()))
            .map(|i| match i {
                Some(Some(v)) => Ok(Some(v)),
                Some(None) => Err(()),
                None => Ok(None),
            })
            .collect::<Result<_, _>>()
            .ok()?;
        let outs: Vec<(String, smelt_ir::TensorType)> = node
            .outputs
            .iter()
            .map(|&o| (g.value(o).name.clone(), g.ty(o).clone()))
            .collect();
        let id = ng
            .add_node(&node.name, node.op.clone(), node.attrs.clone(), ins, outs)
            .ok()?;
        for (&o, &no) in node.outputs.iter().zip(&ng.node(id).outputs.clone()) {
            map.insert(o, no);
        }
    }
    let outs: Option<Vec<ValueId>> = outputs.iter().map(|v| map.get(v).copied()).collect();
    let outs = outs?;
    // The same value twice as an output is legal but not simpler to read; keep one.
    let mut uniq = vec![];
    for o in outs {
        if !uniq.contains(&o) {
            uniq.push(o);
        }
    }
    ng.set_outputs(uniq);
    smelt_ir::verify::verify(&ng).ok()?;
    Some(ng)
}
