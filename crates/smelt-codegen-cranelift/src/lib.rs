//! # smelt-codegen-cranelift
//!
//! Compiles a [`KernelProgram`] to native code with Cranelift: in memory ([`compile_jit`])
//! or as a relocatable object file ([`compile_object`]).
//!
//! Every kernel becomes one function with the C signature
//!
//! ```c
//! void kernel(uint8_t *const *buffers, const int64_t *dims, int64_t start, int64_t end);
//! ```
//!
//! `buffers[i]` is the base address of buffer `i` of the program (views point at their
//! root's storage), `dims[j]` the run-time size of the `j`-th entry of
//! [`KernelProgram::dims`], and `[start, end)` the range of the kernel's parallel axis
//! this call covers (the whole extent when run on one thread). The runtime splits the
//! parallel axis across threads by calling the same function on disjoint ranges.
//!
//! Code shape: loops over the kernel's output; the innermost loop and inner row loops
//! vectorised with 128-bit vectors (`f32x4`, the widest Cranelift offers on x86) when
//! every value in them is `f32`; matmul kernels use a register-blocked 4×8 micro-kernel
//! with the fused epilogue applied to the accumulators before they are stored. `exp`,
//! `erf` and `tanh` are inline polynomials (vectorisable, ≤ 2 ulp for `exp`, ≤ 1.5e-7
//! absolute for `erf`); `log` and `pow` call the C library.

mod emit;
mod error;
mod math;
mod matmul;
mod module;
mod vecok;

pub use error::CodegenError;
pub use module::{compile_jit, compile_object, host_features, JitProgram, KernelFn, Options};

/// The symbol name of kernel `index` in object files made with `prefix`.
pub use smelt_lower::kernel_symbol;
