//! Inserting QuantizeLinear/DequantizeLinear pairs, the form every quantized activation
//! takes in the graph (visible in the text form, exported as standard ONNX QDQ).
//!
//! ONNX's blocked Q/DQ needs scales of the input's full (often dynamic) shape, so block
//! scales are written per channel of the last axis (each block's scale repeated over
//! its channels): the same numbers, as per-axis QDQ that any ONNX runtime executes.

use smelt_ir::{
    Attr, Attrs, Constant, DType, Graph, IrResult, NodeId, OpKind, Tensor, TensorType, ValueId,
};

use crate::calibrate::Blocks;
use crate::quantize::{round_scale, ScaleFormat};

/// A value to quantize: the value, its blocks along the last axis, and the uses
/// `(node, input slot)` that are to read its quantized form.
pub type Target = (ValueId, Blocks, Vec<(NodeId, usize)>);

/// Per-channel int8 scales for a value whose last axis has `blocks`, from each block's
/// clipping range (`range / 127`, rounded to `format`).
pub fn channel_scales(blocks: Blocks, ranges: &[f32], format: ScaleFormat) -> Vec<f32> {
    let b = blocks.block.max(1);
    (0..blocks.width)
        .map(|k| round_scale(ranges.get(k / b).copied().unwrap_or(0.0) / 127.0, format))
        .collect()
}

/// Quantize `v` to int8 with per-channel `scales` along its last axis (zero points 0)
/// and dequantize it again; the uses `(node, slot)` read the dequantized value, which
/// is returned.
pub fn insert_int8(
    g: &mut Graph,
    v: ValueId,
    scales: Vec<f32>,
    uses: &[(NodeId, usize)],
    suffix: &str,
) -> IrResult<ValueId> {
    let width = scales.len();
    let ty = g.ty(v).clone();
    let rank = ty.dims().map_or(0, |d| d.len());
    let name = g.value(v).name.clone();
    let scale = g.add_const(
        &format!("{name}.{suffix}_scale"),
        Constant::plain(Tensor::from_vec(vec![width], scales)?),
    );
    let zero = g.add_const(
        &format!("{name}.{suffix}_zero"),
        Constant::plain(Tensor::from_vec(vec![width], vec![0i8; width])?),
    );
    let mut attrs = Attrs::new();
    attrs.set("axis", Attr::Int(rank as i64 - 1));
    let q = g.add_simple(
        OpKind::QuantizeLinear,
        attrs.clone(),
        &[v, scale, zero],
        &format!("{name}.{suffix}_q8"),
        TensorType::new(DType::I8, ty.shape.clone()),
    )?;
    let dq = g.add_simple(
        OpKind::DequantizeLinear,
        attrs,
        &[q, scale, zero],
        &format!("{name}.{suffix}_dq"),
        ty,
    )?;
    for &(node, slot) in uses {
        g.set_input(node, slot, Some(dq))?;
    }
    Ok(dq)
}
