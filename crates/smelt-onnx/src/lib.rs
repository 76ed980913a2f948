//! # smelt-onnx
//!
//! ONNX import for smelt's graph IR: [`import_file`] memory-maps a model and builds a
//! typed [`Graph`](smelt_ir::Graph) whose constants point into the mapping, so weights
//! are never copied. The protobuf schema ([`proto`]) is hand-written prost structs that
//! a later export encodes with. [`read_tensor_file`] reads a standalone serialized
//! `TensorProto` (the `.pb` inputs and outputs of ONNX's test data sets).
//!
//! Model files are untrusted input: every size is checked against the bytes present
//! before anything is allocated, external data cannot leave the model's folder, the
//! memory, node-count and nesting bounds of [`ImportLimits`] are enforced before the work
//! they bound, and every failure is an [`OnnxError`] naming the file, node, tensor or
//! value concerned.

// Model files are untrusted input: library code has no unwrap/expect/panicking index.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
#![cfg_attr(
    test,
    allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

mod attr;
mod dtype;
mod error;
pub mod export;
mod external;
mod import;
mod legacy;
mod limits;
mod mapping;
mod opset;
pub mod proto;
mod tensor;
mod tensor_file;
mod types;

pub use dtype::{dtype_from_onnx, onnx_code_of, onnx_type_name};
pub use error::{OnnxError, OnnxResult, UnsupportedOp};
pub use export::{
    export_model, export_model_bytes, export_model_file, ExportOptions, ExportSummary,
};
pub use import::{
    import_bytes, import_file, import_model_bytes, import_model_bytes_with,
    import_model_bytes_with_limits, import_model_file, import_model_file_with,
    import_model_file_with_limits, ImportOptions, Imported,
};
pub use limits::ImportLimits;
pub use opset::{MAX_OPSET, MIN_OPSET};
pub use tensor_file::{read_tensor_file, tensor_from_bytes};
