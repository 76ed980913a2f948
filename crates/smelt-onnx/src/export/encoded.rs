//! Encoded constants in ONNX: a `BlockwiseInt` weight is written as its integer codes,
//! its scales (and zero points) as initializers, and a `DequantizeLinear` node that
//! rebuilds the f32 weight — per-tensor, per-axis (`axis`) or blocked (`axis` +
//! `block_size`, opset 21) — the standard QDQ form ONNX Runtime executes. Scales are
//! written as f32 (f16 and power-of-two scales widen exactly). Other encodings are
//! refused by name.

use std::borrow::Cow;

use smelt_ir::{
    Attr, Attrs, Constant, DType, Encoding, FloatFormat, Granularity, Graph, OpKind, ScaleKind,
    Tensor, ValueId,
};

use crate::error::{OnnxError, OnnxResult};

fn tensor_err(name: &str, msg: impl Into<String>) -> OnnxError {
    OnnxError::Tensor {
        tensor: name.to_string(),
        msg: msg.into(),
    }
}

/// `graph` with every encoded constant replaced by plain parts and a DequantizeLinear
/// node (borrowed unchanged when it has none).
pub(crate) fn materialize(graph: &Graph) -> OnnxResult<Cow<'_, Graph>> {
    let encoded: Vec<ValueId> = graph
        .live_values()
        .filter(|&v| graph.constant(v).is_some_and(|c| !c.encoding().is_plain()))
        .collect();
    if encoded.is_empty() {
        return Ok(Cow::Borrowed(graph));
    }
    let mut g = graph.clone();
    for v in encoded {
        let name = g.value(v).name.clone();
        let Some(c) = g.constant(v).cloned() else {
            continue;
        };
        let Encoding::BlockwiseInt {
            granularity,
            scale,
            zero_point,
            ..
        } = c.encoding()
        else {
            return Err(tensor_err(
                &name,
                format!(
                    "constant {}{:?} has encoding `{}`, which has no ONNX form yet (blockwise integers export as DequantizeLinear)",
                    c.dtype(),
                    c.shape(),
                    c.encoding()
                ),
            ));
        };
        let part = |p: &str| {
            c.part(p)
                .cloned()
                .ok_or_else(|| tensor_err(&name, format!("encoded constant has no `{p}` part")))
        };
        let codes = part("codes")?;
        // Scales are written as f32: DequantizeLinear's output takes the scale's type,
        // and ONNX Runtime's fusion of DequantizeLinear + MatMul (MatMulNBits) rejects
        // f16 scales beside f32 activations. Widening f16 and E8M0 is exact.
        let scales = match scale {
            ScaleKind::Pow2 => {
                let v: Vec<f32> = part("scales")?
                    .bytes()
                    .iter()
                    .map(|&b| FloatFormat::E8M0.decode(b))
                    .collect();
                let shape = part("scales")?.shape().to_vec();
                Tensor::from_vec(shape, v).map_err(|e| tensor_err(&name, e.to_string()))?
            }
            ScaleKind::F16 => {
                let s = part("scales")?;
                let v: Vec<f32> = s
                    .to_f64_vec()
                    .map_err(|e| tensor_err(&name, e.to_string()))?
                    .into_iter()
                    .map(|x| x as f32)
                    .collect();
                Tensor::from_vec(s.shape().to_vec(), v)
                    .map_err(|e| tensor_err(&name, e.to_string()))?
            }
            ScaleKind::F32 => part("scales")?,
        };
        let mut attrs = Attrs::new();
        match granularity {
            Granularity::Tensor => {}
            Granularity::Channel { axis } => attrs.set("axis", Attr::Int(*axis as i64)),
            Granularity::Block { axis, size } => {
                attrs.set("axis", Attr::Int(*axis as i64));
                attrs.set("block_size", Attr::Int(i64::from(*size)));
            }
        }
        let codes_v = g.add_const(&format!("{name}.codes"), Constant::plain(codes));
        let scales_v = g.add_const(&format!("{name}.scales"), Constant::plain(scales));
        let mut inputs = vec![codes_v, scales_v];
        if *zero_point {
            let zp = g.add_const(
                &format!("{name}.zero_points"),
                Constant::plain(part("zero_points")?),
            );
            inputs.push(zp);
        }
        let ty = g.ty(v).clone();
        let dq = g
            .add_simple(
                OpKind::DequantizeLinear,
                attrs,
                &inputs,
                &format!("{name}.dq"),
                ty,
            )
            .map_err(|source| OnnxError::Ir {
                context: format!("writing encoded constant `{name}` as DequantizeLinear"),
                source,
            })?;
        g.replace_all_uses(v, dq);
        if let Some((producer, _)) = g.producer(v) {
            g.remove_node(producer).map_err(|source| OnnxError::Ir {
                context: format!("removing encoded constant `{name}`"),
                source,
            })?;
        }
        // The DequantizeLinear output takes the weight's name, so the exported graph
        // reads the same as the original.
        let _ = g.rename_value(dq, &name);
        debug_assert_eq!(g.ty(dq).dtype, DType::F32);
    }
    Ok(Cow::Owned(g))
}
