//! The interpreter's error type.

use smelt_ir::IrError;
use thiserror::Error;

/// Everything that can go wrong while interpreting a graph or evaluating one op.
///
/// Errors about an op name the node (its label, empty when [`crate::eval_op`] is called
/// without a node), the op and the problem, so a failure deep inside a large model can be
/// traced back to the node that caused it.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum InterpError {
    /// An op could not be evaluated on the inputs it was given.
    #[error("{}: {msg}", op_site(node, op))]
    Op {
        /// The node's label (empty when evaluated outside a graph).
        node: String,
        /// The op's textual name.
        op: String,
        /// What went wrong.
        msg: String,
    },
    /// A provided graph input does not fit the graph's declared input type.
    #[error("graph input `{name}`: {msg}")]
    Input {
        /// The input's name.
        name: String,
        /// What went wrong (expected vs given).
        msg: String,
    },
    /// Graph inputs were missing or unknown names were provided.
    #[error("{}", input_set_message(missing, extra))]
    InputSet {
        /// Graph inputs that were not provided.
        missing: Vec<String>,
        /// Provided names that are not graph inputs (or were provided twice).
        extra: Vec<String>,
    },
    /// A constant could not be turned into a tensor.
    #[error("constant `{name}`: {msg}")]
    Constant {
        /// The constant value's name.
        name: String,
        /// What went wrong.
        msg: String,
    },
    /// An encoded constant uses an encoding the interpreter cannot decode.
    #[error("decoding {0} is not supported yet")]
    UnsupportedEncoding(String),
    /// An encoded constant whose parts are inconsistent with its encoding.
    #[error("decoding {encoding}: {msg}")]
    Decode {
        /// The encoding, in its textual form.
        encoding: String,
        /// What went wrong.
        msg: String,
    },
    /// The graph itself is malformed (a cycle, a value nothing computes, ...).
    #[error("graph: {0}")]
    Graph(String),
    /// An error reported by the IR (e.g. building a tensor).
    #[error(transparent)]
    Ir(#[from] IrError),
}

impl InterpError {
    /// The same error attributed to node `label` (only [`InterpError::Op`] carries a node).
    pub fn at_node(self, label: &str) -> InterpError {
        match self {
            InterpError::Op { op, msg, .. } => InterpError::Op {
                node: label.to_string(),
                op,
                msg,
            },
            other => other,
        }
    }
}

fn op_site(node: &str, op: &str) -> String {
    if node.is_empty() {
        format!("op `{op}`")
    } else {
        format!("node `{node}` ({op})")
    }
}

fn input_set_message(missing: &[String], extra: &[String]) -> String {
    let mut parts = vec![];
    if !missing.is_empty() {
        parts.push(format!("missing graph inputs: {}", missing.join(", ")));
    }
    if !extra.is_empty() {
        parts.push(format!("unknown or repeated inputs: {}", extra.join(", ")));
    }
    parts.join("; ")
}

/// The problem one op had with its inputs; turned into [`InterpError::Op`] by the caller,
/// which knows the node and op.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OpError(pub(crate) String);

impl OpError {
    /// An error with this message.
    pub(crate) fn new(msg: impl Into<String>) -> OpError {
        OpError(msg.into())
    }

    /// Attribute the error to a node and op.
    pub(crate) fn at(self, node: &str, op: &str) -> InterpError {
        InterpError::Op {
            node: node.to_string(),
            op: op.to_string(),
            msg: self.0,
        }
    }
}

impl From<IrError> for OpError {
    fn from(e: IrError) -> Self {
        OpError(e.to_string())
    }
}

/// Result of an op kernel.
pub(crate) type OpResult<T> = Result<T, OpError>;

/// Return early with an [`OpError`] built from a format string.
macro_rules! bail {
    ($($arg:tt)*) => {
        return Err($crate::error::OpError::new(format!($($arg)*)))
    };
}
pub(crate) use bail;
