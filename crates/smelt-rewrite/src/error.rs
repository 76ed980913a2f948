//! Errors of the rewrite engine; each names the rule, node, file position or limit
//! concerned.

use std::fmt;

use smelt_ir::IrError;
use thiserror::Error;

/// A syntax or meaning error in a rule file, at a line and column (both from 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// Where the text came from: a file path or a name such as `<simplify.rules>`.
    pub source: String,
    /// Line, from 1.
    pub line: usize,
    /// Column in characters, from 1.
    pub col: usize,
    /// What is wrong.
    pub msg: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.source, self.line, self.col, self.msg
        )
    }
}

impl std::error::Error for ParseError {}

/// Everything that can go wrong while rewriting.
#[derive(Debug, Error)]
pub enum RewriteError {
    /// A rule file could not be parsed.
    #[error("{0}")]
    Parse(#[from] ParseError),
    /// A rule file could not be read.
    #[error("reading rule file `{path}`: {msg}")]
    Io {
        /// The path.
        path: String,
        /// The OS error.
        msg: String,
    },
    /// A rule built in Rust is malformed.
    #[error("rule `{rule}`: {msg}")]
    Rule {
        /// The rule's name.
        rule: String,
        /// What is wrong.
        msg: String,
    },
    /// No shipped rule set has this name.
    #[error("unknown rule set `{name}` (shipped sets: {known})")]
    UnknownSet {
        /// The name asked for.
        name: String,
        /// The shipped names.
        known: String,
    },
    /// Extraction could not produce a term (an internal inconsistency, reported rather
    /// than panicking).
    #[error("extraction: {0}")]
    Extract(String),
    /// The rewritten graph failed verification (possible only with raw egg rewrites,
    /// whose right-hand sides are not type-checked); the input graph is left unchanged.
    #[error("the rewritten graph is invalid (rules applied: {rules}): {msg}")]
    Invalid {
        /// The rules that fired.
        rules: String,
        /// The verifier's message.
        msg: String,
    },
    /// The graph handed in is not usable (a missing node, a cycle).
    #[error("graph: {0}")]
    Graph(String),
    /// An IR operation failed (node creation, type inference of the result).
    #[error(transparent)]
    Ir(#[from] IrError),
}
