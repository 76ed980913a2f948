//! Opset checks, and rewriting older op forms into the newest ones the IR speaks.
//!
//! smelt's ops follow the newest ONNX opset it supports. Between the oldest supported
//! default-domain opset and the newest, the only op-signature change the IR cares about
//! is that the remaining reductions moved `axes` from an attribute to input 1 at opset
//! 18 (ReduceSum, Squeeze and Unsqueeze already moved at 13). Everything else in that
//! range only added attributes whose defaults keep the old meaning.

use crate::error::{OnnxError, OnnxResult};
use crate::proto::OperatorSetIdProto;

/// The oldest default-domain opset the importer accepts.
pub const MIN_OPSET: i64 = 13;
/// The newest default-domain opset the importer accepts.
pub const MAX_OPSET: i64 = 23;

/// Whether `domain` is the default ONNX operator domain.
pub(crate) fn is_default_domain(domain: &str) -> bool {
    domain.is_empty() || domain == "ai.onnx"
}

/// The model's default-domain opset version, checked against the supported range.
pub(crate) fn default_opset(imports: &[OperatorSetIdProto]) -> OnnxResult<i64> {
    let mut found: Option<i64> = None;
    for imp in imports {
        if !is_default_domain(imp.domain.as_deref().unwrap_or_default()) {
            continue;
        }
        let v = imp.version.unwrap_or_default();
        match found {
            Some(prev) if prev != v => {
                return Err(OnnxError::Opset(format!(
                    "the default domain is imported twice, at versions {prev} and {v}"
                )))
            }
            _ => found = Some(v),
        }
    }
    let v = found.ok_or_else(|| {
        OnnxError::Opset("the model imports no default-domain (ai.onnx) opset".into())
    })?;
    if !(MIN_OPSET..=MAX_OPSET).contains(&v) {
        return Err(OnnxError::Opset(format!(
            "default-domain opset {v} is not supported (supported: {MIN_OPSET}..={MAX_OPSET})"
        )));
    }
    Ok(v)
}

/// Whether `op_type` at `opset` takes its reduction axes as an attribute that must be
/// turned into input 1.
pub(crate) fn reduce_axes_from_attr(op_type: &str, opset: i64) -> bool {
    opset < 18
        && matches!(
            op_type,
            "ReduceMean"
                | "ReduceMax"
                | "ReduceMin"
                | "ReduceProd"
                | "ReduceL1"
                | "ReduceL2"
                | "ReduceSumSquare"
                | "ReduceLogSumExp"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn imp(domain: &str, v: i64) -> OperatorSetIdProto {
        OperatorSetIdProto {
            domain: Some(domain.into()),
            version: Some(v),
        }
    }

    #[test]
    fn opset_range() {
        assert_eq!(default_opset(&[imp("", 17)]).unwrap(), 17);
        assert_eq!(
            default_opset(&[imp("com.microsoft", 1), imp("ai.onnx", 13)]).unwrap(),
            13
        );
        assert!(default_opset(&[imp("", 12)]).is_err());
        assert!(default_opset(&[imp("", 24)]).is_err());
        assert!(default_opset(&[imp("com.microsoft", 1)]).is_err());
        assert!(default_opset(&[imp("", 17), imp("ai.onnx", 18)]).is_err());
        assert!(reduce_axes_from_attr("ReduceL2", 17));
        assert!(!reduce_axes_from_attr("ReduceL2", 18));
        assert!(!reduce_axes_from_attr("ReduceSum", 13));
    }
}
