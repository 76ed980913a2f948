//! Putting extracted terms back: as a new graph ([`to_graph`]) or in place of the region
//! they came from ([`replace_region`]).

use std::collections::{HashMap, HashSet};

use egg::{Id, Language};
use smelt_ir::{Attrs, Graph, NodeId, OpKind, ValueId};

use crate::convert::Conversion;
use crate::emit::{assign_names, emit, wanted_names, Emitted, LeafMap};
use crate::error::RewriteError;
use crate::extract::Extraction;

fn root_classes(conv: &Conversion) -> Vec<Id> {
    conv.roots
        .iter()
        .map(|(_, c)| *c)
        .chain(conv.tuple_roots.iter().copied())
        .collect()
}

/// Whether extraction chose exactly the original node for every original value (so
/// splicing would change nothing).
pub fn is_unchanged(conv: &Conversion, ex: &Extraction) -> bool {
    let eg = &conv.egraph;
    conv.origins.iter().all(|o| {
        let c = eg.find(o.class);
        ex.choice
            .get(&c)
            .is_some_and(|n| *n == o.def.clone().map_children(|k| eg.find(k)))
    }) && conv.tuple_roots.iter().all(|t| {
        let c = eg.find(*t);
        conv.nodes.iter().any(|n| {
            eg.find(n.class) == c
                && ex
                    .choice
                    .get(&c)
                    .is_some_and(|x| *x == n.enode.clone().map_children(|k| eg.find(k)))
        })
    })
}

/// Graph outputs keep their names: an output whose new value is not fresh, or already
/// serves another output, is given its own `identity` node.
fn fix_outputs(
    g: &mut Graph,
    em: &mut Emitted,
    wanted: &mut HashMap<ValueId, String>,
    outputs: &[(Option<ValueId>, ValueId, String)],
) -> Result<Vec<ValueId>, RewriteError> {
    let fresh: HashSet<ValueId> = em.fresh.iter().copied().collect();
    let mut claimed = HashSet::new();
    let mut outs = Vec::with_capacity(outputs.len());
    for (new, old, name) in outputs {
        let Some(nv) = *new else {
            outs.push(*old);
            continue;
        };
        let named = if fresh.contains(&nv) {
            wanted.get(&nv) == Some(name)
        } else {
            g.value(nv).name == *name
        };
        if named && claimed.insert(nv) {
            outs.push(nv);
            continue;
        }
        let ty = g.ty(nv).clone();
        let id = g.add_node(
            "",
            OpKind::Identity,
            Attrs::new(),
            vec![Some(nv)],
            vec![(String::new(), ty)],
        )?;
        let v = g.node(id).outputs[0];
        em.new_nodes.push(id);
        em.fresh.push(v);
        wanted.retain(|_, n| n != name);
        wanted.insert(v, name.clone());
        claimed.insert(v);
        outs.push(v);
    }
    Ok(outs)
}

/// Build a new graph from a whole-graph conversion and its extraction.
pub fn to_graph(conv: &Conversion, ex: &Extraction) -> Result<Graph, RewriteError> {
    let mut g = Graph::new(&conv.graph_name);
    let mut inputs = HashMap::new();
    let mut input_names = HashMap::new();
    for (v, name, ty) in &conv.inputs {
        inputs.insert(*v, g.add_input(name, ty.clone()));
        input_names.insert(*v, name.clone());
    }
    let map = |v: ValueId| inputs.get(&v).copied();
    let mut em = emit(
        &mut g,
        conv,
        ex,
        &root_classes(conv),
        &LeafMap {
            values: &map,
            reuse_consts: false,
        },
    )?;
    let mut wanted = wanted_names(conv, &em, &conv.outputs);
    let mut outputs = vec![];
    for o in &conv.outputs {
        let (new, name) = match conv.origins.iter().find(|x| x.value == *o) {
            Some(x) => (
                em.values.get(&conv.egraph.find(x.class)).copied(),
                x.name.clone(),
            ),
            None => (map(*o), input_names.get(o).cloned().unwrap_or_default()),
        };
        let new = new.ok_or_else(|| {
            RewriteError::Extract(format!("graph output `{name}` was not emitted"))
        })?;
        outputs.push((Some(new), *o, name));
    }
    let outs = fix_outputs(&mut g, &mut em, &mut wanted, &outputs)?;
    g.set_outputs(outs);
    assign_names(&mut g, &em.fresh, &wanted);
    Ok(g)
}

/// Replace the nodes of `region` (the conversion's region, topologically ordered) by the
/// extracted terms: readers of the region's root values read the new values, the old
/// nodes go, and so do constants only they read.
pub fn replace_region(
    g: &mut Graph,
    conv: &Conversion,
    ex: &Extraction,
    region: &[NodeId],
) -> Result<(), RewriteError> {
    let same = |v: ValueId| Some(v);
    let mut em = emit(
        g,
        conv,
        ex,
        &root_classes(conv),
        &LeafMap {
            values: &same,
            reuse_consts: true,
        },
    )?;
    let old_outputs = g.outputs().to_vec();
    let mut wanted = wanted_names(conv, &em, &old_outputs);
    let mut targets: HashMap<ValueId, ValueId> = HashMap::new();
    for (v, c) in &conv.roots {
        let nv = *em.values.get(&conv.egraph.find(*c)).ok_or_else(|| {
            RewriteError::Extract(format!("root `{}` was not emitted", g.value(*v).name))
        })?;
        targets.insert(*v, nv);
    }
    let outputs: Vec<(Option<ValueId>, ValueId, String)> = old_outputs
        .iter()
        .map(|o| (targets.get(o).copied(), *o, g.value(*o).name.clone()))
        .collect();
    for (v, nv) in &targets {
        g.replace_all_uses(*v, *nv);
    }
    let outs = fix_outputs(g, &mut em, &mut wanted, &outputs)?;
    g.set_outputs(outs);
    let mut const_inputs = vec![];
    for &n in region.iter().rev() {
        for v in g.node(n).inputs.iter().flatten() {
            if g.constant(*v).is_some() {
                const_inputs.push(*v);
            }
        }
        g.remove_node(n)?;
    }
    for v in const_inputs {
        if let Some((n, _)) = g.producer(v) {
            if g.try_node(n).is_some() && !g.is_used(v) {
                g.remove_node(n)?;
            }
        }
    }
    assign_names(g, &em.fresh, &wanted);
    Ok(())
}
