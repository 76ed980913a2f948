//! Common-subexpression elimination.

use std::collections::HashMap;

use smelt_ir::{Graph, IrResult, NodeId, OpKind, Pass, PassContext, PassReport};

/// Merges nodes with the same op, attributes and inputs (and constants with the same
/// content), keeping the first in topological order.
pub struct Cse;

impl Pass for Cse {
    fn name(&self) -> &str {
        "cse"
    }

    fn run(&self, g: &mut Graph, _cx: &mut PassContext) -> IrResult<PassReport> {
        let mut merged = 0;
        // Bucket by a cheap key; confirm equality (attributes, constant bytes) in the bucket.
        let mut seen: HashMap<String, Vec<NodeId>> = HashMap::new();
        for id in g.topo_order()? {
            let n = g.node(id);
            if !n.op.is_pure() {
                continue;
            }
            let key = match (&n.op, n.constant) {
                (OpKind::Const, Some(c)) => match g.store().get(c) {
                    Some(c) => format!("const#{:x}", c.content_hash()),
                    None => continue,
                },
                _ => format!("{}{:?}#{}", n.op, n.inputs, n.outputs.len()),
            };
            let bucket = seen.entry(key).or_default();
            let twin = bucket
                .iter()
                .copied()
                .find(|&other| same_node(g, other, id));
            match twin {
                Some(other) => {
                    let pairs: Vec<_> = g
                        .node(id)
                        .outputs
                        .iter()
                        .copied()
                        .zip(g.node(other).outputs.clone())
                        .collect();
                    for (mine, theirs) in pairs {
                        if g.ty(mine) != g.ty(theirs) {
                            // Same computation with different recorded types: keep the more
                            // specific one only if it is the survivor's; otherwise skip.
                            continue;
                        }
                        g.replace_all_uses(mine, theirs);
                    }
                    if !g.node(id).outputs.iter().any(|o| g.is_used(*o)) {
                        g.remove_node(id)?;
                        merged += 1;
                    }
                }
                None => bucket.push(id),
            }
        }
        Ok(PassReport::counted(merged, "nodes merged"))
    }
}

fn same_node(g: &Graph, a: NodeId, b: NodeId) -> bool {
    let (x, y) = (g.node(a), g.node(b));
    if x.op != y.op
        || x.inputs != y.inputs
        || x.attrs != y.attrs
        || x.outputs.len() != y.outputs.len()
    {
        return false;
    }
    match (x.constant, y.constant) {
        (Some(p), Some(q)) => match (g.store().get(p), g.store().get(q)) {
            (Some(p), Some(q)) => {
                p.encoding() == q.encoding()
                    && p.shape() == q.shape()
                    && p.dtype() == q.dtype()
                    && p.parts().len() == q.parts().len()
                    && p.parts()
                        .iter()
                        .zip(q.parts())
                        .all(|(s, t)| s.name == t.name && s.tensor.same_content(&t.tensor))
            }
            _ => false,
        },
        (None, None) => true,
        _ => false,
    }
}
