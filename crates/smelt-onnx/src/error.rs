//! The import error type: every variant says which file, node, tensor or value it is
//! about, because a model file is untrusted input and the user has to find the culprit.

use std::fmt;
use std::path::PathBuf;

use smelt_ir::IrError;
use thiserror::Error;

/// One operator the importer cannot translate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsupportedOp {
    /// The ONNX `op_type`.
    pub op_type: String,
    /// The operator's domain (`""` for the default ONNX domain).
    pub domain: String,
    /// The node's name (may be empty in the model).
    pub node: String,
}

impl fmt::Display for UnsupportedOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.domain.is_empty() || self.domain == "ai.onnx" {
            write!(f, "`{}`", self.op_type)?;
        } else {
            write!(f, "`{}.{}`", self.domain, self.op_type)?;
        }
        if self.node.is_empty() {
            f.write_str(" (unnamed node)")
        } else {
            write!(f, " (node `{}`)", self.node)
        }
    }
}

/// Everything that can go wrong while importing an ONNX model.
#[derive(Debug, Error)]
pub enum OnnxError {
    /// A file could not be opened, read or mapped.
    #[error("cannot read `{}`: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The bytes are not a valid ONNX protobuf.
    #[error("not a valid ONNX model protobuf: {0}")]
    Decode(#[from] prost::DecodeError),
    /// A model file is not a valid ONNX protobuf (truncated, corrupt, or nested deeper
    /// than the decoder's recursion limit).
    #[error("`{}` is not a valid ONNX model protobuf: {source}", path.display())]
    DecodeFile {
        /// The model file.
        path: PathBuf,
        /// The decoder's error.
        source: prost::DecodeError,
    },
    /// The model exceeds one of the [`ImportLimits`](crate::ImportLimits) (memory budget,
    /// node count, subgraph depth); the message names the field to raise.
    #[error("{context}: {msg}")]
    Limit {
        /// What is too large: a tensor, value, node or graph, named.
        context: String,
        /// What is over which limit.
        msg: String,
    },
    /// The model has no graph.
    #[error("the model has no graph")]
    NoGraph,
    /// The default-domain opset is missing or outside the supported range.
    #[error("opset: {0}")]
    Opset(String),
    /// Operators the importer does not know; lists every one found in the model.
    #[error("{} unsupported op{}: {}", .0.len(), if .0.len() == 1 { "" } else { "s" }, list_ops(.0))]
    UnsupportedOps(Vec<UnsupportedOp>),
    /// A tensor element type smelt cannot represent or the model mislabels.
    #[error("{context}: unsupported ONNX data type {code} ({})", data_type_name(*code))]
    UnsupportedDType {
        /// What carried the type (tensor, value or attribute).
        context: String,
        /// The `TensorProto.DataType` code.
        code: i32,
    },
    /// A tensor's data is malformed (size mismatch, bad dims, out-of-range elements).
    #[error("tensor `{tensor}`: {msg}")]
    Tensor {
        /// The tensor's name.
        tensor: String,
        /// What is wrong.
        msg: String,
    },
    /// A tensor's external data could not be resolved safely.
    #[error("tensor `{tensor}`: external data: {msg}")]
    ExternalData {
        /// The tensor's name.
        tensor: String,
        /// What is wrong.
        msg: String,
    },
    /// A graph input, output or value_info entry cannot be typed.
    #[error("value `{value}`: {msg}")]
    Value {
        /// The value's name.
        value: String,
        /// What is wrong.
        msg: String,
    },
    /// A node is malformed (missing input, duplicate output, inference failure).
    #[error("node `{node}` ({op}): {msg}")]
    Node {
        /// The node's name, or a label built from its op and first output.
        node: String,
        /// The ONNX op type.
        op: String,
        /// What is wrong.
        msg: String,
    },
    /// A node attribute cannot be translated.
    #[error("node `{node}`, attribute `{attr}`: {msg}")]
    Attribute {
        /// The node's name or label.
        node: String,
        /// The attribute's name.
        attr: String,
        /// What is wrong.
        msg: String,
    },
    /// The IR refused a graph edit or a tensor.
    #[error("{context}: {source}")]
    Ir {
        /// What was being built.
        context: String,
        /// The IR's error.
        source: IrError,
    },
}

/// Result alias for the importer.
pub type OnnxResult<T> = Result<T, OnnxError>;

fn list_ops(ops: &[UnsupportedOp]) -> String {
    ops.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn data_type_name(code: i32) -> &'static str {
    crate::dtype::onnx_type_name(code)
}
