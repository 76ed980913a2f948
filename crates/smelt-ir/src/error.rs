//! The IR's error type.

use thiserror::Error;

/// Everything that can go wrong inside smelt-ir, with the node/value/position it concerns.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum IrError {
    /// Tensor data that does not fit its dtype/shape.
    #[error("invalid tensor: {0}")]
    InvalidTensor(String),
    /// A constant whose encoding parameters or parts are inconsistent.
    #[error("invalid encoding: {0}")]
    InvalidEncoding(String),
    /// A structural or typing error found by the verifier.
    #[error("verifier: node `{node}`{}: {msg}", value.as_ref().map(|v| format!(", value `{v}`")).unwrap_or_default())]
    Verify {
        node: String,
        value: Option<String>,
        msg: String,
    },
    /// Shape or type inference failed for a node.
    #[error("type inference: node `{node}` ({op}): {msg}")]
    Infer {
        node: String,
        op: String,
        msg: String,
    },
    /// The textual IR could not be parsed.
    #[error("parse error at {line}:{col}: {msg}")]
    Parse {
        line: usize,
        col: usize,
        msg: String,
    },
    /// A pipeline string or pass option was invalid.
    #[error("pipeline: {0}")]
    Pipeline(String),
    /// A pass failed.
    #[error("pass `{pass}`: {msg}")]
    Pass { pass: String, msg: String },
    /// The graph has a cycle through the named node.
    #[error("graph has a cycle through node `{0}`")]
    Cycle(String),
    /// Any other misuse of the graph API.
    #[error("{0}")]
    Graph(String),
}

/// Result alias for smelt-ir.
pub type IrResult<T> = Result<T, IrError>;
