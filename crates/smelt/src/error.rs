//! The facade's error type.

use std::path::PathBuf;

/// Anything that can fail in smelt, with where it happened.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// IR, verification, inference or pass errors.
    #[error(transparent)]
    Ir(#[from] smelt_ir::IrError),
    /// ONNX import errors.
    #[error(transparent)]
    Onnx(#[from] smelt_onnx::OnnxError),
    /// Interpreter errors.
    #[error(transparent)]
    Interp(#[from] smelt_interp::InterpError),
    /// Lowering a graph to kernels, or planning its memory.
    #[error(transparent)]
    Lower(#[from] smelt_lower::LowerError),
    /// Generating native code.
    #[error(transparent)]
    Codegen(#[from] smelt_codegen_cranelift::CodegenError),
    /// Generating native code with LLVM.
    #[cfg(feature = "llvm")]
    #[error(transparent)]
    Llvm(#[from] smelt_codegen_llvm::CodegenError),
    /// Running compiled code.
    #[error(transparent)]
    Runtime(#[from] smelt_runtime::RuntimeError),
    /// Loading or running a model on a GPU.
    #[cfg(feature = "cuda")]
    #[error(transparent)]
    Cuda(#[from] smelt_cuda::CudaError),
    /// Reading or writing a file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// A mistake in how smelt was called (bad input name, wrong shape, ...).
    #[error("{0}")]
    Usage(String),
}

/// Result alias for the facade.
pub type Result<T> = std::result::Result<T, Error>;
