//! Which matmul activations are quantized: every non-constant f32 input of a MatMul
//! (both sides, so attention's Q·Kᵀ and P·V too) and the data input of a Gemm, with
//! blocks along the reduction (last) axis. Their scales come from calibration
//! ([`crate::calibrate`]) and they get a Q/DQ pair ([`crate::qdq`]).

use std::collections::HashMap;

use smelt_ir::{DType, Graph, IrResult, NodeId, OpKind, ValueId};

use crate::calibrate::Blocks;

/// The matmul (and, with `conv`, Conv) activation inputs to quantize: `(node, slot)`
/// of each use, by value.
fn targets(g: &Graph, conv: bool) -> IrResult<HashMap<ValueId, Vec<(NodeId, usize)>>> {
    let mut out: HashMap<ValueId, Vec<(NodeId, usize)>> = HashMap::new();
    for n in g.topo_order()? {
        let node = g.node(n);
        let slots: &[usize] = match node.op {
            OpKind::MatMul => &[0, 1],
            OpKind::Gemm => &[0],
            OpKind::Conv if conv => &[0],
            _ => continue,
        };
        for &slot in slots {
            let Some(Some(v)) = node.inputs.get(slot).copied() else {
                continue;
            };
            // Weights are constants (handled by weight quantization), not activations.
            if g.constant(v).is_some() || g.ty(v).dtype != DType::F32 {
                continue;
            }
            let ok_rank = g.ty(v).dims().is_some_and(|d| d.len() >= 2);
            if ok_rank {
                out.entry(v).or_default().push((n, slot));
            }
        }
    }
    Ok(out)
}

/// The matmul activations to quantize and their blocks along the reduction axis.
///
/// A Conv input's channels are not its last axis, so it gets one scale for the whole
/// tensor (a single block spanning the last axis).
pub fn matmul_targets(
    g: &Graph,
    block: usize,
    conv: bool,
    keep: &dyn Fn(NodeId) -> bool,
) -> IrResult<Vec<crate::qdq::Target>> {
    let mut out = vec![];
    let mut by_value = targets(g, conv)?.into_iter().collect::<Vec<_>>();
    by_value.sort_by_key(|(v, _)| *v);
    for (v, uses) in by_value {
        let uses: Vec<(NodeId, usize)> = uses.into_iter().filter(|(n, _)| !keep(*n)).collect();
        if uses.is_empty() {
            continue;
        }
        // The reduction axis must be known to size the scales.
        let Some(&smelt_ir::Dim::Known(k)) = g.ty(v).dims().and_then(|d| d.last()) else {
            continue;
        };
        let k = k as usize;
        let into_conv = uses.iter().any(|(n, _)| g.node(*n).op == OpKind::Conv);
        out.push((
            v,
            Blocks {
                width: k,
                block: if into_conv {
                    k.max(1)
                } else {
                    block.min(k).max(1)
                },
            },
            uses,
        ));
    }
    Ok(out)
}
