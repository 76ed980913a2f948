//! # smelt-ir
//!
//! The graph IR every part of smelt speaks: a [`Graph`] of [`Node`]s over typed SSA
//! values ([`TensorType`]: dtype + symbolic [`Shape`]), constants in a [`WeightStore`]
//! whose storage is described by an [`Encoding`], a stable textual form
//! ([`text::print`] / [`text::parse`]), shape and type inference, a verifier, and the
//! pass API ([`Pass`], [`PassManager`], pipeline strings) a user's own pass is written
//! against.

pub mod attr;
pub mod dtype;
pub mod encoding;
pub mod error;
pub mod graph;
pub mod infer;
pub mod lowfloat;
pub mod npy;
pub mod op;
pub mod pass;
pub mod patch;
pub mod pattern;
pub mod shape;
pub mod tensor;
pub mod text;
pub mod types;
pub mod verify;

pub use attr::{Attr, Attrs};
pub use dtype::DType;
pub use encoding::{Constant, Encoding, Granularity, Part, ScaleKind};
pub use error::{IrError, IrResult};
pub use graph::{ConstId, Graph, Node, NodeId, ValueData, ValueDef, ValueId, WeightStore};
pub use lowfloat::FloatFormat;
pub use op::OpKind;
pub use pass::{Pass, PassContext, PassManager, PassRegistry, PassReport, Pipeline};
pub use patch::{Patch, PatchOutcome, PatchValue};
pub use pattern::{Match, Pat};

pub use shape::{Dim, Shape};
pub use tensor::{Element, Tensor};
pub use types::TensorType;
