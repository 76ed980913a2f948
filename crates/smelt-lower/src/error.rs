//! Errors of lowering, planning and evaluation.

use thiserror::Error;

/// What went wrong while lowering a graph, planning its memory or evaluating a program.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum LowerError {
    /// Nodes whose ops lowering does not handle yet; every one of them is listed.
    #[error("cannot lower {} node(s): {}", .nodes.len(), list(.nodes))]
    Unsupported {
        /// `(node label, op name)` of each node, in graph order.
        nodes: Vec<(String, String)>,
    },
    /// A node lowering handles, in a form it does not (an axis, a shape, an attribute).
    #[error("cannot lower node `{node}` ({op}): {message}")]
    Node {
        /// The node's label.
        node: String,
        /// Its op.
        op: String,
        /// What is wrong.
        message: String,
    },
    /// The graph itself is malformed (a cycle, a value without a type).
    #[error("cannot lower graph: {0}")]
    Graph(String),
    /// The memory plan needs the size of a named dim that was not given.
    #[error("no size given for dim `?{dim}` (needed by buffer `{buffer}`)")]
    MissingDim {
        /// The dim's name.
        dim: String,
        /// A buffer whose shape uses it.
        buffer: String,
    },
    /// An input given to the evaluator does not match the program.
    #[error("bad input: {0}")]
    Input(String),
    /// The evaluator met something it cannot run.
    #[error("evaluation failed: {0}")]
    Eval(String),
}

fn list(nodes: &[(String, String)]) -> String {
    nodes
        .iter()
        .map(|(n, op)| format!("`{n}` ({op})"))
        .collect::<Vec<_>>()
        .join(", ")
}
