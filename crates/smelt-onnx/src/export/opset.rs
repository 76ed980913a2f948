//! Which default-domain opset and ONNX IR version an exported graph needs.
//!
//! smelt's ops follow the newest opset the importer reads, so an op form can be too new
//! for an older opset: the reductions other than ReduceSum take their axes as input 1
//! only from opset 18 (the importer rewrites older models to that form, so no exported
//! model can be older), Gelu exists from opset 20, and some attributes and element types
//! arrived later still. Each requirement carries its reason so an explicitly requested
//! opset that is too old fails with the op named.

use smelt_ir::{Attrs, DType, OpKind};

/// The oldest default-domain opset an export can target: reductions take `axes` as an
/// input from here on, which is the only form the IR has.
pub const MIN_EXPORT_OPSET: i64 = 18;

/// A lower bound on the opset, and why.
#[derive(Debug, Clone)]
pub(super) struct Need {
    pub opset: i64,
    pub why: String,
}

impl Need {
    /// Keep the higher of two requirements (the first one found on ties).
    pub fn raise(&mut self, other: Option<Need>) {
        if let Some(o) = other {
            if o.opset > self.opset {
                *self = o;
            }
        }
    }
}

/// What an op (with these attributes) needs beyond [`MIN_EXPORT_OPSET`].
pub(super) fn op_need(op: &OpKind, attrs: &Attrs, node: &str) -> Option<Need> {
    let has = |a: &str| attrs.get(a).is_some();
    let need = |opset: i64, what: &str| {
        Some(Need {
            opset,
            why: format!("node `{node}` ({}) {what}", op.onnx_name()),
        })
    };
    match op {
        OpKind::Range if has("stash_type") => need(27, "uses `stash_type`"),
        OpKind::Cast | OpKind::CastLike if has("round_mode") => need(24, "uses `round_mode`"),
        OpKind::Gelu => need(20, "is a Gelu"),
        OpKind::QuantizeLinear if has("precision") => need(23, "uses `precision`"),
        OpKind::DequantizeLinear if has("output_dtype") => need(23, "uses `output_dtype`"),
        OpKind::QuantizeLinear | OpKind::DequantizeLinear if has("block_size") => {
            need(21, "uses `block_size`")
        }
        OpKind::QuantizeLinear if has("output_dtype") => need(21, "uses `output_dtype`"),
        OpKind::QuantizeLinear | OpKind::Cast | OpKind::CastLike if has("saturate") => {
            need(19, "uses `saturate`")
        }
        OpKind::Attention if has("left_window_size") || has("right_window_size") => {
            need(25, "uses a sliding window")
        }
        OpKind::Attention | OpKind::RMSNormalization | OpKind::RotaryEmbedding => {
            need(23, "exists from opset 23")
        }
        OpKind::GroupNormalization => need(21, "has per-channel scale and bias (opset 21)"),
        OpKind::TensorScatter | OpKind::Swish => need(24, "exists from opset 24"),
        OpKind::LinearAttention | OpKind::CausalConvWithState => need(27, "exists from opset 27"),
        OpKind::SwiGLU => need(28, "exists from opset 28"),
        OpKind::BitCast | OpKind::CumProd => need(26, "exists from opset 26"),
        OpKind::DFT => need(20, "takes `axis` as an input (opset 20)"),
        OpKind::StringConcat | OpKind::StringSplit => need(20, "exists from opset 20"),
        OpKind::AffineGrid => need(20, "exists from opset 20"),
        OpKind::GridSample => need(20, "uses the N-D form with linear/cubic modes (opset 20)"),
        OpKind::DeformConv => need(19, "exists from opset 19"),
        OpKind::Resize
            if attrs.str("coordinate_transformation_mode") == Some("half_pixel_symmetric") =>
        {
            need(19, "uses half_pixel_symmetric")
        }
        _ => None,
    }
}

/// The opset from which default-domain ops accept `dtype`, where that is above
/// [`MIN_EXPORT_OPSET`].
pub(super) fn dtype_need(dtype: DType, value: &str) -> Option<Need> {
    let opset = match dtype {
        DType::F8E4M3 | DType::F8E5M2 => 19,
        DType::I4 | DType::U4 => 21,
        DType::F4E2M1 => 23,
        DType::E8M0 => 24,
        DType::F6E2M3 | DType::F6E3M2 => 28,
        _ => return None,
    };
    Some(Need {
        opset,
        why: format!("value `{value}` has element type {dtype}"),
    })
}

/// The ONNX IR version that introduced `dtype` (0 for types every version has).
pub(super) fn dtype_ir_version(dtype: DType) -> i64 {
    match dtype {
        DType::F8E4M3 | DType::F8E5M2 => 9,
        DType::I4 | DType::U4 => 10,
        DType::F4E2M1 => 11,
        DType::E8M0 => 12,
        DType::F6E2M3 | DType::F6E3M2 => 14,
        _ => 0,
    }
}

/// The IR version the ONNX release that introduced `opset` wrote (opset 18: IR 8,
/// 19-20: 9, 21-22: 10, 23: 11, 24: 12, 25-27: 13, 28: 14).
pub(super) fn ir_version_for_opset(opset: i64) -> i64 {
    match opset {
        ..=18 => 8,
        19 | 20 => 9,
        21 | 22 => 10,
        23 => 11,
        24 => 12,
        25..=27 => 13,
        _ => 14,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smelt_ir::Attr;

    #[test]
    fn requirements() {
        let none = Attrs::new();
        assert_eq!(op_need(&OpKind::Gelu, &none, "g").unwrap().opset, 20);
        assert!(op_need(&OpKind::Relu, &none, "r").is_none());
        let block = Attrs::new().with("block_size", Attr::Int(32));
        let n = op_need(&OpKind::DequantizeLinear, &block, "dq").unwrap();
        assert_eq!(n.opset, 21);
        assert!(n.why.contains("block_size"), "{}", n.why);
        assert_eq!(dtype_need(DType::I4, "w").unwrap().opset, 21);
        assert!(dtype_need(DType::F32, "x").is_none());
        assert_eq!(ir_version_for_opset(18), 8);
        assert_eq!(ir_version_for_opset(21), 10);
        assert_eq!(ir_version_for_opset(23), 11);
        assert_eq!(ir_version_for_opset(25), 13);
        assert_eq!(ir_version_for_opset(28), 14);
        let mut need = Need {
            opset: 18,
            why: String::new(),
        };
        need.raise(dtype_need(DType::F8E4M3, "a"));
        need.raise(dtype_need(DType::F8E5M2, "b"));
        assert_eq!((need.opset, need.why.contains("`a`")), (19, true));
    }
}
