//! Errors of code generation.

use thiserror::Error;

/// What went wrong while compiling a program.
#[derive(Debug, Error)]
pub enum CodegenError {
    /// A kernel uses something this backend does not compile (a dtype, an op on a
    /// dtype); the kernel is named.
    #[error("kernel `{kernel}`: {message}")]
    Unsupported {
        /// The kernel's name.
        kernel: String,
        /// What is not supported.
        message: String,
    },
    /// Cranelift refused the host or a setting.
    #[error("target setup: {0}")]
    Target(String),
    /// Cranelift failed to compile or link a function.
    #[error("cranelift: {0}")]
    Module(String),
}
