//! Activation quantization from calibration data: the activation input of every matmul
//! gets a static, blockwise int8 scale along its reduction (last) axis, calibrated as
//! the largest magnitude each block reaches over all positions of all calibration
//! samples, and a QuantizeLinear/DequantizeLinear pair in front of the matmul.
//!
//! ONNX's blocked Q/DQ needs scales of the input's full (here dynamic) shape, so the
//! block scales are written per channel of the last axis (each block's scale repeated
//! over its channels): the same numbers, expressed as standard per-axis QDQ that any
//! ONNX runtime executes, and visible in the text form as ordinary nodes.

use std::collections::HashMap;

use smelt_ir::pass::require_calibration;
use smelt_ir::{
    Attr, Attrs, DType, Graph, IrResult, NodeId, OpKind, PassContext, Tensor, TensorType, ValueId,
};

use crate::quantize::{round_scale, ScaleFormat};

/// Per-block maxima of |x| along the last axis.
struct BlockMax {
    width: usize,
    block: usize,
    amax: Vec<f32>,
}

impl BlockMax {
    fn observe(&mut self, t: &Tensor) {
        let Ok(v) = t.to_vec::<f32>() else { return };
        for row in v.chunks(self.width) {
            for (k, x) in row.iter().enumerate() {
                if x.is_finite() {
                    let b = k / self.block;
                    self.amax[b] = self.amax[b].max(x.abs());
                }
            }
        }
    }
}

/// The matmul activation inputs to quantize: `(node, slot)` of each use, by value.
fn targets(g: &Graph) -> IrResult<HashMap<ValueId, Vec<(NodeId, usize)>>> {
    let mut out: HashMap<ValueId, Vec<(NodeId, usize)>> = HashMap::new();
    for n in g.topo_order()? {
        let node = g.node(n);
        let slots: &[usize] = match node.op {
            OpKind::MatMul => &[0, 1],
            OpKind::Gemm => &[0],
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

/// Insert calibrated blockwise int8 Q/DQ pairs on the matmul activations; returns how
/// many values were quantized.
pub fn quantize_activations(
    g: &mut Graph,
    cx: &mut PassContext,
    block: usize,
    format: ScaleFormat,
) -> IrResult<usize> {
    let targets = targets(g)?;
    if targets.is_empty() {
        return Ok(0);
    }
    // The reduction axis must be known to size the scales.
    let mut stats: HashMap<ValueId, BlockMax> = HashMap::new();
    for &v in targets.keys() {
        let Some(&smelt_ir::Dim::Known(k)) = g.ty(v).dims().and_then(|d| d.last()) else {
            continue;
        };
        let k = k as usize;
        stats.insert(
            v,
            BlockMax {
                width: k,
                block: block.min(k).max(1),
                amax: vec![0.0; k.div_ceil(block.min(k).max(1))],
            },
        );
    }
    let (samples, evaluator) = require_calibration(cx, "blockwise-quant")?;
    let samples = samples.to_vec();
    let evaluator = evaluator.clone();
    for sample in &samples {
        evaluator.run(g, sample, &mut |v, t| {
            if let Some(s) = stats.get_mut(&v) {
                s.observe(t);
            }
        })?;
    }
    let mut count = 0;
    let mut ids: Vec<ValueId> = stats.keys().copied().collect();
    ids.sort();
    for v in ids {
        let s = &stats[&v];
        let scales: Vec<f32> = (0..s.width)
            .map(|k| round_scale(s.amax[k / s.block] / 127.0, format))
            .collect();
        let ty = g.ty(v).clone();
        let rank = ty.dims().map_or(0, |d| d.len());
        let name = g.value(v).name.clone();
        let scale = g.add_const(
            &format!("{name}.a_scale"),
            smelt_ir::Constant::plain(Tensor::from_vec(vec![s.width], scales)?),
        );
        let zero = g.add_const(
            &format!("{name}.a_zero"),
            smelt_ir::Constant::plain(Tensor::from_vec(vec![s.width], vec![0i8; s.width])?),
        );
        let mut attrs = Attrs::new();
        attrs.set("axis", Attr::Int(rank as i64 - 1));
        let q_ty = TensorType::new(DType::I8, ty.shape.clone());
        let q = g.add_simple(
            OpKind::QuantizeLinear,
            attrs.clone(),
            &[v, scale, zero],
            &format!("{name}.q8"),
            q_ty,
        )?;
        let dq = g.add_simple(
            OpKind::DequantizeLinear,
            attrs,
            &[q, scale, zero],
            &format!("{name}.dq"),
            ty,
        )?;
        for &(node, slot) in &targets[&v] {
            g.set_input(node, slot, Some(dq))?;
        }
        count += 1;
    }
    Ok(count)
}
