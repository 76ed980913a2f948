//! Lowering: a [`smelt_ir::Graph`] becomes a [`KernelProgram`], smelt's backend-neutral
//! loop-level IR.
//!
//! A program is a list of buffers (inputs, outputs, constants, temporaries and views)
//! and a list of kernels in execution order. Each kernel is a loop nest over its output
//! with a body of scalar statements, a record of the graph nodes fused into it, and a
//! [`Schedule`] telling backends how to run it (vector width, tiles, loop order,
//! parallel axis). The [`plan`] module assigns temporaries to one arena by liveness,
//! and [`eval`] runs a program directly: the reference every backend is checked
//! against, next to the graph interpreter.

pub mod error;
pub mod eval;
pub mod ir;
pub mod lower;
pub mod matmul;
pub mod plan;

pub use error::LowerError;
pub use ir::*;
pub use lower::lower;
pub use plan::{plan_memory, MemoryPlan};
