//! Opset checks.
//!
//! smelt's ops follow the newest ONNX opset it supports. The importer reads every
//! default-domain opset from 1 to [`MAX_OPSET`]: older op forms are rewritten into the
//! newest ones by [`crate::legacy`], or refused with the op and opset named where no
//! exact rewrite exists.

use crate::error::{OnnxError, OnnxResult};
use crate::proto::OperatorSetIdProto;

/// The oldest default-domain opset the importer accepts.
pub const MIN_OPSET: i64 = 1;
/// The newest default-domain opset the importer accepts.
pub const MAX_OPSET: i64 = 28;

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
        assert_eq!(default_opset(&[imp("", 1)]).unwrap(), 1);
        assert_eq!(default_opset(&[imp("", 28)]).unwrap(), 28);
        assert!(default_opset(&[imp("", 0)]).is_err());
        assert!(default_opset(&[imp("", 29)]).is_err());
        assert!(default_opset(&[imp("com.microsoft", 1)]).is_err());
        assert!(default_opset(&[imp("", 17), imp("ai.onnx", 18)]).is_err());
    }
}
