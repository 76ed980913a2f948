//! E-graph → graph: the extracted terms become nodes again, either as a new graph or in
//! place of the region they came from.
//!
//! Names survive where the meaning does: a class that still holds an original value is
//! emitted under that value's name (graph outputs first), a node identical to an original
//! node keeps the node's name (`loc`), and graph inputs and outputs keep their names
//! exactly (an `identity` node is added when an output would otherwise have to share a
//! value with an input or another output).

use std::collections::{BTreeSet, HashMap, HashSet};

use egg::{Id, Language};
use smelt_ir::{Graph, NodeId, TensorType, ValueId};

use crate::analysis::IrEGraph;
use crate::convert::Conversion;
use crate::error::RewriteError;
use crate::extract::Extraction;
use crate::lang::{IrLang, Leaf};

/// What emitting produced.
#[derive(Debug, Default)]
pub struct Emitted {
    /// Canonical class → the value it became.
    pub values: HashMap<Id, ValueId>,
    /// Values created by emitting, in creation order.
    pub fresh: Vec<ValueId>,
    /// Nodes created by emitting.
    pub new_nodes: Vec<NodeId>,
}

/// How leaves map to values of the target graph.
pub struct LeafMap<'a> {
    /// `%N` leaves: outside value → value in the target graph.
    pub values: &'a dyn Fn(ValueId) -> Option<ValueId>,
    /// Whether `#N` leaves reuse the original constant's value (in place) or get a new
    /// constant node (new graph).
    pub reuse_consts: bool,
}

/// The classes reachable from `roots` through the chosen nodes, or the first class
/// without a choice.
fn needed(eg: &IrEGraph, ex: &Extraction, roots: &[Id]) -> Result<Vec<Id>, RewriteError> {
    let mut seen = HashSet::new();
    let mut stack: Vec<Id> = roots.iter().map(|r| eg.find(*r)).collect();
    let mut out = vec![];
    while let Some(c) = stack.pop() {
        if !seen.insert(c) {
            continue;
        }
        let node = ex
            .choice
            .get(&c)
            .ok_or_else(|| RewriteError::Extract(format!("class {c} has no extractable term")))?;
        out.push(c);
        stack.extend(node.children().iter().copied());
    }
    Ok(out)
}

/// Emit the chosen terms for `roots` into `g`, in an order that follows the original
/// node order where classes still correspond to original nodes.
// `OpSym` carries its parsed attributes (whose tensors cache a hash in a `OnceLock`), but
// hashes and compares only immutable fields, so it is a sound map key.
#[allow(clippy::mutable_key_type)]
pub fn emit(
    g: &mut Graph,
    conv: &Conversion,
    ex: &Extraction,
    roots: &[Id],
    leaves: &LeafMap<'_>,
) -> Result<Emitted, RewriteError> {
    let eg = &conv.egraph;
    let classes = needed(eg, ex, roots)?;
    // Priority of a class: the position of its original node, so an untouched graph comes
    // back in its own order; new classes go right after their last operand.
    let mut orig_key: HashMap<Id, usize> = HashMap::new();
    let mut loc: HashMap<(Id, IrLang), String> = HashMap::new();
    for (pos, n) in conv.nodes.iter().enumerate() {
        let c = eg.find(n.class);
        orig_key.entry(c).or_insert(pos);
        let canon = n.enode.clone().map_children(|k| eg.find(k));
        loc.entry((c, canon)).or_insert_with(|| n.loc.clone());
    }
    // Dependencies among the needed classes.
    let set: HashSet<Id> = classes.iter().copied().collect();
    let mut indeg: HashMap<Id, usize> = HashMap::new();
    let mut users: HashMap<Id, Vec<Id>> = HashMap::new();
    for &c in &classes {
        let mut kids: Vec<Id> = ex.choice[&c].children().to_vec();
        kids.sort();
        kids.dedup();
        kids.retain(|k| set.contains(k));
        indeg.insert(c, kids.len());
        for k in kids {
            users.entry(k).or_default().push(c);
        }
    }
    let mut key: HashMap<Id, usize> = HashMap::new();
    let mut ready: BTreeSet<(usize, Id)> = BTreeSet::new();
    for &c in &classes {
        if indeg[&c] == 0 {
            let k = orig_key.get(&c).copied().unwrap_or(0);
            key.insert(c, k);
            ready.insert((k, c));
        }
    }
    let mut out = Emitted::default();
    let mut tuples: HashMap<Id, Vec<ValueId>> = HashMap::new();
    let mut emitted = 0usize;
    while let Some((k, c)) = ready.pop_first() {
        emitted += 1;
        emit_class(g, conv, ex, c, leaves, &loc, &mut tuples, &mut out)?;
        for &u in users.get(&c).map(Vec::as_slice).unwrap_or(&[]) {
            let d = indeg
                .get_mut(&u)
                .ok_or_else(|| RewriteError::Extract("dependency bookkeeping".into()))?;
            *d -= 1;
            let uk = key.entry(u).or_insert(0);
            *uk = (*uk).max(k);
            if *d == 0 {
                let uk = orig_key.get(&u).copied().unwrap_or(*uk);
                ready.insert((uk, u));
            }
        }
    }
    if emitted != classes.len() {
        return Err(RewriteError::Extract(
            "the extracted terms form a cycle".into(),
        ));
    }
    Ok(out)
}

#[allow(clippy::too_many_arguments, clippy::mutable_key_type)]
fn emit_class(
    g: &mut Graph,
    conv: &Conversion,
    ex: &Extraction,
    c: Id,
    leaves: &LeafMap<'_>,
    loc: &HashMap<(Id, IrLang), String>,
    tuples: &mut HashMap<Id, Vec<ValueId>>,
    out: &mut Emitted,
) -> Result<(), RewriteError> {
    let eg = &conv.egraph;
    let node = &ex.choice[&c];
    let value = match node {
        IrLang::Leaf(Leaf::Value(v)) => Some((leaves.values)(*v).ok_or_else(|| {
            RewriteError::Extract(format!("outside value {} has no counterpart", v.0))
        })?),
        IrLang::Leaf(Leaf::Const(cid)) => {
            let reuse = if leaves.reuse_consts && !eg.analysis.is_new_const(*cid) {
                conv.const_values.get(cid).copied()
            } else {
                None
            };
            match reuse {
                Some(v) => Some(v),
                None => {
                    let k = eg
                        .analysis
                        .store()
                        .get(*cid)
                        .ok_or_else(|| {
                            RewriteError::Extract(format!("constant #{} is missing", cid.0))
                        })?
                        .clone();
                    let v = g.add_shared_const("", k);
                    if let Some((n, _)) = g.producer(v) {
                        out.new_nodes.push(n);
                    }
                    out.fresh.push(v);
                    Some(v)
                }
            }
        }
        IrLang::Leaf(Leaf::Index(_) | Leaf::Absent) => None,
        IrLang::Out([k, t]) => {
            let k = eg[*k]
                .data
                .index
                .ok_or_else(|| RewriteError::Extract("projection without an index".into()))?;
            let outs = tuples
                .get(&eg.find(*t))
                .ok_or_else(|| RewriteError::Extract("projection of a missing node".into()))?;
            Some(
                *outs
                    .get(k)
                    .ok_or_else(|| RewriteError::Extract(format!("projection {k} out of range")))?,
            )
        }
        IrLang::Op(sym, children) => {
            let mut inputs = Vec::with_capacity(children.len());
            for ch in children.iter() {
                if eg[*ch].data.absent {
                    inputs.push(None);
                } else {
                    let v = out.values.get(&eg.find(*ch)).ok_or_else(|| {
                        RewriteError::Extract(format!(
                            "operand class {ch} of {sym} was not emitted"
                        ))
                    })?;
                    inputs.push(Some(*v));
                }
            }
            let d = &eg[c].data;
            let types: Vec<TensorType> = if sym.nout() == 1 {
                vec![d
                    .ty
                    .clone()
                    .ok_or_else(|| RewriteError::Extract(format!("{sym} has no type")))?]
            } else {
                d.outputs.clone()
            };
            let name = loc.get(&(c, node.clone())).cloned().unwrap_or_default();
            let id = g.add_node(
                &name,
                sym.op().clone(),
                sym.attrs().clone(),
                inputs,
                types.into_iter().map(|t| (String::new(), t)).collect(),
            )?;
            out.new_nodes.push(id);
            let outs = g.node(id).outputs.clone();
            out.fresh.extend(outs.iter().copied());
            if sym.nout() == 1 {
                Some(outs[0])
            } else {
                tuples.insert(c, outs);
                None
            }
        }
    };
    if let Some(v) = value {
        out.values.insert(c, v);
    }
    Ok(())
}

/// Give fresh values their final names: `wanted` names where free, then the smallest free
/// numbers (what the text parser would call an anonymous value).
pub fn assign_names(g: &mut Graph, fresh: &[ValueId], wanted: &HashMap<ValueId, String>) {
    // Move every fresh value out of the way first so wanted names that an earlier
    // anonymous number took are free.
    for (i, v) in fresh.iter().enumerate() {
        let _ = g.rename_value(*v, &format!("\u{1}rw{i}"));
    }
    let mut unnamed = vec![];
    for v in fresh {
        match wanted.get(v) {
            Some(n) if g.rename_value(*v, n).is_ok() => {}
            _ => unnamed.push(*v),
        }
    }
    let mut taken: HashSet<String> = g.live_values().map(|v| g.value(v).name.clone()).collect();
    let mut next = 0u64;
    for v in unnamed {
        while taken.contains(&next.to_string()) {
            next += 1;
        }
        let name = next.to_string();
        if g.rename_value(v, &name).is_ok() {
            taken.insert(name);
        }
    }
}

/// The names fresh values should get: each class's original value name, the names of
/// `outputs` (original graph outputs) first.
pub fn wanted_names(
    conv: &Conversion,
    em: &Emitted,
    outputs: &[ValueId],
) -> HashMap<ValueId, String> {
    let eg = &conv.egraph;
    let fresh: HashSet<ValueId> = em.fresh.iter().copied().collect();
    let mut wanted: HashMap<ValueId, String> = HashMap::new();
    let mut used: HashSet<String> = HashSet::new();
    let outs = outputs
        .iter()
        .filter_map(|o| conv.origins.iter().find(|x| x.value == *o));
    for o in outs.chain(conv.origins.iter()) {
        let c = eg.find(o.class);
        if let Some(v) = em.values.get(&c) {
            if fresh.contains(v) && !wanted.contains_key(v) && !used.contains(&o.name) {
                used.insert(o.name.clone());
                wanted.insert(*v, o.name.clone());
            }
        }
    }
    wanted
}
