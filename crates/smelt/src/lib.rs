//! # smelt
//!
//! The API a user of smelt depends on: load a model, run a pass pipeline over it (core
//! passes and your own), and run it.
//!
//! ```no_run
//! use smelt::{Driver, Model};
//!
//! let driver = Driver::new();
//! let mut model = Model::from_onnx("model.onnx")?;
//! let runs = driver.run_pipeline(&mut model.graph, "fold-constants,cse,canonicalize,dce")?;
//! println!("{} passes ran; {} ops left", runs.len(), model.graph.op_count());
//! # Ok::<(), smelt::Error>(())
//! ```
//!
//! The building blocks are re-exported: [`ir`] (graph, types, pass API), [`onnx`]
//! (import), [`interp`] (the reference interpreter), [`transforms`] (core passes) and
//! [`rewrite`] (the equality-saturation engine and its rule sets).

pub mod aot;
mod compile;
mod driver;
mod error;
#[cfg(feature = "cuda")]
pub mod gpu;
mod model;
#[cfg(feature = "testing")]
pub mod testing;

pub use compile::{Backend, CompileOptions, CompileStats, Compiled, RuntimeHandle};
pub use driver::{Driver, InterpEvaluator};
pub use error::{Error, Result};
pub use model::Model;

pub use smelt_codegen_cranelift as codegen_cranelift;
#[cfg(feature = "llvm")]
pub use smelt_codegen_llvm as codegen_llvm;
pub use smelt_interp as interp;
pub use smelt_ir as ir;
pub use smelt_lower as lower;
pub use smelt_onnx as onnx;
pub use smelt_rewrite as rewrite;
pub use smelt_runtime as runtime;
pub use smelt_transforms as transforms;

pub use smelt_ir::{
    Attr, Attrs, Constant, DType, Dim, Encoding, Graph, IrError, IrResult, Match, NodeId, OpKind,
    Pass, PassContext, PassManager, PassRegistry, PassReport, Pat, Patch, PatchOutcome, PatchValue,
    Shape, Tensor, TensorType, ValueId,
};
