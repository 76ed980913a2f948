//! # smelt-codegen-llvm
//!
//! Compiles a [`KernelProgram`] to native code through LLVM 19 (via inkwell): in memory
//! ([`compile_jit`]), as a relocatable object file ([`compile_object`]), or as textual
//! LLVM IR for inspection ([`emit_ir`]).
//!
//! Every kernel becomes one function with the same C signature as the Cranelift
//! backend's kernels:
//!
//! ```c
//! void kernel(uint8_t *const *buffers, const int64_t *dims, int64_t start, int64_t end);
//! ```
//!
//! `buffers[i]` is the base address of buffer `i` of the program (views point at their
//! root's storage), `dims[j]` the run-time size of the `j`-th entry of
//! [`KernelProgram::dims`], and `[start, end)` the range of the kernel's parallel axis
//! (`kernel.schedule.parallel_axis`) this call covers; every other output loop runs
//! over its full extent.
//!
//! Code shape: plain loop nests with `i64` counters; LLVM's standard `default<On>`
//! pipeline (loop and SLP vectorisers included) does the rest. Each function carries
//! `target-cpu`/`target-features` attributes (the host's unless [`Options`] say
//! otherwise), so the vectorisers use the host's widest vectors. Float accumulations
//! inside reduce loops (`t = t op e`) carry the `reassoc` and `contract` fast-math
//! flags so they vectorise (the float arithmetic inside reduce loops may contract into
//! FMAs); everything else keeps strict IEEE semantics. Kernels whose reduce loop reads
//! contiguously along the innermost *output* loop (matmuls, reductions over outer
//! axes, stride-1 convolutions) are emitted blocked over their output points so that
//! the vectorised loop is that contiguous one, with the accumulators in registers
//! (see `block.rs`). Matmuls whose B operand is a constant go further (`packed.rs`): B
//! is packed at compile time into panels of two vectors' width, stored in the module
//! as a private constant, and a register-blocked micro-kernel (6 rows × 2 vectors of
//! accumulators, explicit vector FMAs) computes each block before the fused epilogue.
//!
//! Semantics match the Cranelift backend: integer division by zero gives 0 (and
//! `MIN / -1` wraps instead of trapping), float-to-integer casts saturate (NaN gives 0)
//! and truncate toward zero, `bool` is an `i8` holding 0 or 1, float `max`/`min`
//! propagate NaN (`llvm.maximum`/`llvm.minimum`). f32 `exp`, `erf` and `tanh` are the
//! same inline polynomials as Cranelift's (so they vectorise; `exp` clamps its input to
//! [-87.34, 88.38]); `log`, `sqrt`, `pow` and f64 `exp` are LLVM intrinsics; f64 `tanh`
//! and `erf` call the C library (in the JIT every math symbol is bound to a Rust
//! implementation). f16, bf16, the low-precision float formats, packed 4-bit integers
//! and strings are refused with [`CodegenError::Unsupported`].
//!
//! [`compile_ptx`] compiles the same kernels to PTX for NVIDIA GPUs with GPU schedules
//! (shared-memory tiled matmuls, warp-per-row reductions, one thread per point
//! elsewhere); [`gpu_launches`] and [`launch_manifest`] say how to launch them.

mod block;
mod emit;
mod expr;
mod jit;
mod math;
mod packed;
mod ptx;
mod target;

use smelt_lower::KernelProgram;

pub use jit::JitProgram;
pub use ptx::{gpu_launches, GpuLaunch, GpuSchedule, GridDim};

/// A compiled kernel: `(buffers, dims, start, end)`; see the crate docs.
pub type KernelFn = unsafe extern "C" fn(*const *mut u8, *const i64, i64, i64);

/// Code generation options.
#[derive(Debug, Clone)]
pub struct Options {
    /// LLVM optimisation level, 0 to 3 (default 2): the `default<On>` pass pipeline
    /// and the code generator's level. Values above 3 count as 3.
    pub opt_level: u32,
    /// Target CPU name (`skylake-avx512`, `znver4`, ...); `None`: the host's.
    pub cpu: Option<String>,
    /// Target feature string (`+avx2,+fma,...`); `None`: the host's.
    pub features: Option<String>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            opt_level: 2,
            cpu: None,
            features: None,
        }
    }
}

/// What went wrong while compiling a program.
#[derive(Debug, thiserror::Error)]
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
    /// LLVM refused the target, CPU or features.
    #[error("target setup: {0}")]
    Target(String),
    /// LLVM failed to build, verify, optimise, compile or link the module.
    #[error("llvm: {0}")]
    Llvm(String),
}

/// The symbol name of kernel `index` in object files made with `prefix`.
pub use smelt_lower::kernel_symbol;

/// The host's CPU name and feature string, as LLVM reports them
/// (`TargetMachine::get_host_cpu_name` / `get_host_cpu_features`).
pub fn host_cpu() -> (String, String) {
    target::host_cpu()
}

/// Compile `program` for the host (or `opts.cpu`/`opts.features`), in memory.
pub fn compile_jit(program: &KernelProgram, opts: &Options) -> Result<JitProgram, CodegenError> {
    jit::compile(program, opts)
}

/// Compile `program` into an ELF relocatable object file, position-independent (so it
/// can go into a shared library), whose kernels are global symbols `{prefix}_k{i}`.
/// The object references the C math library (`expf`, `erff`, ...): link with `-lm`.
pub fn compile_object(
    program: &KernelProgram,
    prefix: &str,
    opts: &Options,
) -> Result<Vec<u8>, CodegenError> {
    target::compile_object(program, prefix, opts)
}

/// The textual LLVM IR of `program` after optimisation, for debugging and tests.
pub fn emit_ir(program: &KernelProgram, opts: &Options) -> Result<String, CodegenError> {
    target::emit_ir(program, opts)
}

/// Compile `program` to PTX text for the NVIDIA architecture `gpu` (`"sm_80"`,
/// `"sm_90"`; triple `nvptx64-nvidia-cuda`, LLVM `default<O2>`).
///
/// Kernel `i` becomes the `.entry` `smelt_k{i}` with the CPU signature
/// `(buffers, dims, start, end)`; `buffers` and `dims` are device pointers (a device
/// array of device buffer pointers, a device array of `i64` dims). Each kernel has one
/// of three GPU schedules — a shared-memory tiled matmul, one warp per output point
/// with warp-shuffle reductions, or one thread per output point — and must be launched
/// with the grid and block [`gpu_launches`] gives it (also written by
/// [`launch_manifest`]). `start` and `end` are not read. f32 `log` is
/// `lg2.approx.f32(x) * ln 2` (absolute error about 2^-21 near 1). Kernels using `pow`
/// of floats, or f64 `exp`, `log`, `tanh`, `erf` (which would need libdevice) are
/// refused with [`CodegenError::Unsupported`].
pub fn compile_ptx(program: &KernelProgram, gpu: &str) -> Result<String, CodegenError> {
    ptx::compile_ptx(program, gpu)
}

/// A JSON launch manifest for the kernels of [`compile_ptx`]; `block` is the block
/// size of one-thread-per-point kernels (clamped to 1..=1024):
///
/// ```json
/// {"program": "...", "params": ["buffers", "dims", "start", "end"], "dims": ["seq"],
///  "kernels": [{"name": "smelt_k0", "kernel": "k0_matmul", "schedule": "tiled-matmul",
///               "grid": [6, "ceil(?seq / 64)", 1], "block": [16, 16, 1],
///               "shared_bytes": 8256}, ...],
///  "buffers": [{"buffer": 0, "name": "x", "kind": "input", "index": 0,
///               "dtype": "f32", "bytes": "1536*?seq"}, ...]}
/// ```
///
/// Grid extents are numbers when known, else string formulas over the dims (`?d` is
/// dim `d`; `ceil(a / b)` rounds up, and is at least 1). The buffer table says what
/// the host puts in `buffers[i]`: inputs and outputs by index, constants, temporaries
/// and views (which share the storage of the buffer `of` names).
pub fn launch_manifest(program: &KernelProgram, block: u32) -> String {
    ptx::launch_manifest(program, block)
}
