//! The verifier: structural invariants, constants against their encodings, types against
//! inference, and which ops accept encoded inputs. Every error names the node and value.

use std::collections::HashSet;

use crate::error::{IrError, IrResult};
use crate::graph::{Graph, NodeId, ValueDef};
use crate::infer::{infer_node, merge_types};
use crate::op::OpKind;
use crate::shape::Shape;

/// Check `g`; the first problem found is returned.
pub fn verify(g: &Graph) -> IrResult<()> {
    let order = g.topo_order()?;
    let mut names = HashSet::new();
    for v in g.inputs() {
        if !names.insert(g.value(*v).name.clone()) {
            return Err(err_graph(format!(
                "graph input name `{}` is used twice",
                g.value(*v).name
            )));
        }
    }
    for &id in &order {
        check_node(g, id, &mut names)?;
    }
    for (i, v) in g.outputs().iter().enumerate() {
        match g.try_value(*v) {
            Some(d) if d.def != ValueDef::Dead => {}
            _ => {
                return Err(err_graph(format!(
                    "graph output {i} refers to a removed value"
                )))
            }
        }
    }
    Ok(())
}

fn err_graph(msg: String) -> IrError {
    IrError::Verify {
        node: "<graph>".into(),
        value: None,
        msg,
    }
}

fn check_node(g: &Graph, id: NodeId, names: &mut HashSet<String>) -> IrResult<()> {
    let n = g.node(id);
    let label = g.node_label(id);
    let err = |value: Option<String>, msg: String| IrError::Verify {
        node: label.clone(),
        value,
        msg,
    };
    for (slot, o) in n.outputs.iter().enumerate() {
        let d = g
            .try_value(*o)
            .ok_or_else(|| err(None, format!("output {slot} is not a value of this graph")))?;
        if d.def != (ValueDef::Node { node: id, slot }) {
            return Err(err(
                Some(d.name.clone()),
                format!("output {slot} is not defined by this node"),
            ));
        }
        if !names.insert(d.name.clone()) {
            return Err(err(
                Some(d.name.clone()),
                "value name is defined twice".into(),
            ));
        }
    }
    for (slot, i) in n.inputs.iter().enumerate() {
        if let Some(v) = i {
            match g.try_value(*v) {
                Some(d) if d.def != ValueDef::Dead => {}
                _ => return Err(err(None, format!("input {slot} refers to a removed value"))),
            }
        }
    }
    if n.op == OpKind::Const {
        let c = n
            .constant
            .and_then(|c| g.store().get(c))
            .ok_or_else(|| err(None, "const node without a constant".into()))?;
        if !n.inputs.is_empty() || n.outputs.len() != 1 {
            return Err(err(
                None,
                "const nodes have no inputs and one output".into(),
            ));
        }
        let out = n.outputs[0];
        let want = Shape::known(&c.shape().iter().map(|&d| d as u64).collect::<Vec<_>>());
        if g.ty(out).dtype != c.dtype() || g.ty(out).shape != want {
            return Err(err(
                Some(g.value(out).name.clone()),
                format!(
                    "type {} does not match the constant {}{:?}",
                    g.ty(out),
                    c.dtype(),
                    c.shape()
                ),
            ));
        }
        c.check()
            .map_err(|e| err(Some(g.value(out).name.clone()), e.to_string()))?;
        return Ok(());
    }
    if n.constant.is_some() {
        return Err(err(None, "only const nodes may hold a constant".into()));
    }
    // Encoded constants are only read where a kernel can decode them: weights of the
    // linear ops and embedding tables.
    for (slot, i) in n.inputs.iter().enumerate() {
        let Some(v) = i else { continue };
        if !g.encoding(*v).is_plain() && !accepts_encoded(&n.op, slot) {
            return Err(err(
                Some(g.value(*v).name.clone()),
                format!(
                    "{} cannot read an encoded ({}) input at slot {slot}",
                    n.op,
                    g.encoding(*v)
                ),
            ));
        }
    }
    if matches!(n.op, OpKind::Custom { .. }) {
        return Ok(());
    }
    let inferred = infer_node(g, id)?;
    for (o, ty) in n.outputs.iter().zip(&inferred) {
        merge_types(ty, g.ty(*o)).map_err(|m| err(Some(g.value(*o).name.clone()), m))?;
    }
    Ok(())
}

/// Whether `op` may read an encoded constant at input `slot`.
pub fn accepts_encoded(op: &OpKind, slot: usize) -> bool {
    matches!(
        (op, slot),
        (OpKind::MatMul | OpKind::Gemm | OpKind::Conv, 1) | (OpKind::Gather, 0)
    )
}
