//! # smelt-cuda
//!
//! Runs a [`KernelProgram`] on an NVIDIA GPU: the program is compiled to PTX by
//! `smelt-codegen-llvm` (tiled matmuls, warp-per-row reductions; see
//! [`smelt_codegen_llvm::compile_ptx`]) for the device's architecture, loaded with the
//! CUDA driver API, and each run copies the inputs in, launches every kernel with the
//! grid and block [`smelt_codegen_llvm::gpu_launches`] gives it on one stream, and
//! copies the outputs back.
//!
//! The driver library (`libcuda.so`) is opened at run time (cudarc's dynamic loading),
//! so smelt builds and runs without CUDA; on a machine without it
//! [`CudaModel::new`] returns [`CudaError::NoDriver`] and [`driver_available`] says
//! false.
//!
//! Device memory: every constant is uploaded once (its own allocation, so aligned to
//! 256 bytes); the temporaries share one arena laid out by the same static memory plan
//! as the CPU runtime ([`smelt_lower::plan::plan_memory`]), re-planned when the input
//! shapes change; inputs and outputs have their own allocations. Views share their
//! root's storage. The kernels read buffer addresses from a device table and dims from
//! a device array, both rewritten before each run.
//!
//! ```no_run
//! # fn demo(program: smelt_lower::KernelProgram, x: smelt_ir::Tensor) -> Result<(), smelt_cuda::CudaError> {
//! let mut model = smelt_cuda::CudaModel::new(program, 0)?;
//! println!("{}", model.device());
//! let outputs = model.run(&[x])?;
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use cudarc::driver::{
    CudaContext, CudaFunction, CudaSlice, CudaStream, DevicePtr, LaunchConfig, PushKernelArg,
};
use smelt_codegen_llvm::{compile_ptx, gpu_launches, CodegenError, GpuLaunch};
use smelt_ir::Tensor;
use smelt_lower::{BufferId, BufferKind, KernelProgram};

/// Threads per block of one-thread-per-point kernels.
const POINT_BLOCK: u32 = 256;

/// The newest architecture LLVM 19's NVPTX back end targets; newer GPUs run its PTX
/// through the driver's JIT.
const NEWEST_SM: i32 = 90;

/// What can go wrong loading or running a program on the GPU.
#[derive(Debug, thiserror::Error)]
pub enum CudaError {
    /// No CUDA driver library on this machine.
    #[error(
        "no CUDA driver (libcuda.so) found on this machine: the GPU runtime needs an NVIDIA driver"
    )]
    NoDriver,
    /// A driver call failed.
    #[error("CUDA driver: {what}: {message}")]
    Driver {
        /// What was being done.
        what: String,
        /// The driver's error.
        message: String,
    },
    /// The program could not be compiled to PTX.
    #[error(transparent)]
    Codegen(#[from] CodegenError),
    /// The inputs do not fit the program, or a size cannot be computed.
    #[error("{0}")]
    Input(String),
}

/// A driver error with what was being done.
fn driver(what: impl Into<String>) -> impl FnOnce(cudarc::driver::DriverError) -> CudaError {
    let what = what.into();
    move |e| CudaError::Driver {
        what,
        message: e.to_string(),
    }
}

/// Whether the CUDA driver library can be loaded and reports at least one device.
pub fn driver_available() -> bool {
    // SAFETY: only tries to open the library; nothing is called through it.
    if !unsafe { cudarc::driver::sys::is_culib_present() } {
        return false;
    }
    CudaContext::device_count().is_ok_and(|n| n > 0)
}

/// A program loaded on one GPU, ready to run.
pub struct CudaModel {
    program: KernelProgram,
    launches: Vec<GpuLaunch>,
    functions: Vec<CudaFunction>,
    stream: Arc<CudaStream>,
    device: String,
    arch: String,
    /// Device storage of constants, by buffer index.
    constants: HashMap<u32, CudaSlice<u8>>,
    /// The temporaries' arena, and the dims it was planned for.
    arena: Option<(
        HashMap<String, u64>,
        smelt_lower::plan::MemoryPlan,
        CudaSlice<u8>,
    )>,
}

impl CudaModel {
    /// Compiles `program` to PTX for GPU `ordinal`'s architecture, loads it and uploads
    /// the constants.
    pub fn new(program: KernelProgram, ordinal: usize) -> Result<CudaModel, CudaError> {
        // SAFETY: only tries to open the library (cudarc panics on first use otherwise).
        if !unsafe { cudarc::driver::sys::is_culib_present() } {
            return Err(CudaError::NoDriver);
        }
        let ctx = CudaContext::new(ordinal).map_err(driver(format!("opening device {ordinal}")))?;
        let (major, minor) = ctx
            .compute_capability()
            .map_err(driver("reading the compute capability"))?;
        let sm = (major * 10 + minor).min(NEWEST_SM);
        let arch = format!("sm_{sm}");
        let name = ctx.name().unwrap_or_else(|_| "unknown GPU".into());
        let device = format!("{name} (sm_{major}{minor}, PTX for {arch})");
        let ptx = compile_ptx(&program, &arch)?;
        let module = ctx
            .load_module(cudarc::nvrtc::Ptx::from_src(ptx))
            .map_err(driver("loading the PTX module"))?;
        let launches = gpu_launches(&program, POINT_BLOCK);
        let functions = launches
            .iter()
            .map(|l| {
                module
                    .load_function(&l.symbol)
                    .map_err(driver(format!("kernel {} ({})", l.symbol, l.kernel)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let stream = ctx.default_stream();
        let mut constants = HashMap::new();
        for (i, b) in program.buffers.iter().enumerate() {
            if let BufferKind::Constant { data, .. } = &b.kind {
                let t = data.as_plain().ok_or_else(|| {
                    CudaError::Input(format!(
                        "constant `{}` is encoded; the program needs a plain one",
                        b.name
                    ))
                })?;
                let bytes = t.bytes();
                let dev = if bytes.is_empty() {
                    stream.alloc_zeros::<u8>(1)
                } else {
                    stream.clone_htod(&bytes[..])
                }
                .map_err(driver(format!("uploading constant `{}`", b.name)))?;
                constants.insert(i as u32, dev);
            }
        }
        Ok(CudaModel {
            program,
            launches,
            functions,
            stream,
            device,
            arch,
            constants,
            arena: None,
        })
    }

    /// The device, its architecture and the PTX target used.
    pub fn device(&self) -> &str {
        &self.device
    }

    /// The PTX architecture the program was compiled for (`sm_80`, `sm_90`, ...).
    pub fn arch(&self) -> &str {
        &self.arch
    }

    /// How each kernel is launched.
    pub fn launches(&self) -> &[GpuLaunch] {
        &self.launches
    }

    /// Runs on `inputs` (in the program's input order) and returns the outputs.
    pub fn run(&mut self, inputs: &[Tensor]) -> Result<Vec<Tensor>, CudaError> {
        let program = &self.program;
        let shapes: Vec<&[usize]> = inputs.iter().map(|t| t.shape()).collect();
        let dims = smelt_lower::eval::bind_dims(program, &shapes)
            .map_err(|e| CudaError::Input(e.to_string()))?;
        for (n, (&b, t)) in program.inputs.iter().zip(inputs).enumerate() {
            let want = program.buffer(b).dtype;
            if t.dtype() != want {
                return Err(CudaError::Input(format!(
                    "input {n} `{}` is {}, expected {want}",
                    program.buffer(b).name,
                    t.dtype()
                )));
            }
        }
        let lookup = |d: &str| dims.get(d).copied();
        let stream = self.stream.clone();

        // The arena for these dims.
        if self.arena.as_ref().is_none_or(|(d, _, _)| *d != dims) {
            let plan = smelt_lower::plan::plan_memory(program, &lookup)
                .map_err(|e| CudaError::Input(e.to_string()))?;
            let arena = stream
                .alloc_zeros::<u8>(plan.arena_bytes.max(1) as usize)
                .map_err(driver(format!(
                    "allocating {} bytes of temporaries",
                    plan.arena_bytes
                )))?;
            self.arena = Some((dims.clone(), plan, arena));
        }
        let Some((_, plan, arena)) = &self.arena else {
            return Err(CudaError::Input("no arena".into()));
        };

        let mut input_dev = vec![];
        for (t, &b) in inputs.iter().zip(&program.inputs) {
            let bytes = t.bytes();
            let dev = if bytes.is_empty() {
                stream.alloc_zeros::<u8>(1)
            } else {
                stream.clone_htod(&bytes[..])
            }
            .map_err(driver(format!(
                "copying input `{}`",
                program.buffer(b).name
            )))?;
            input_dev.push(dev);
        }
        let mut output_dev = vec![];
        for &b in &program.outputs {
            let size = plan.sizes[b.0 as usize] as usize;
            let dev = stream
                .alloc_zeros::<u8>(size.max(1))
                .map_err(driver(format!(
                    "allocating output `{}`",
                    program.buffer(b).name
                )))?;
            output_dev.push(dev);
        }

        // The buffer table: each buffer's device address (views: their root's).
        let ptr = |s: &CudaSlice<u8>| s.device_ptr(&stream).0;
        let arena_base = ptr(arena);
        let mut table = vec![0u64; program.buffers.len()];
        for (i, buf) in program.buffers.iter().enumerate() {
            table[i] = match &buf.kind {
                BufferKind::Input(n) => input_dev.get(*n).map(ptr).unwrap_or(0),
                BufferKind::Output(n) => output_dev.get(*n).map(ptr).unwrap_or(0),
                BufferKind::Constant { .. } => {
                    self.constants.get(&(i as u32)).map(ptr).unwrap_or(0)
                }
                BufferKind::Temp => plan.offsets[i].map_or(0, |off| arena_base + off),
                BufferKind::View(_) => 0,
            };
        }
        for i in 0..table.len() {
            let root = program.root(BufferId(i as u32)).0 as usize;
            table[i] = table[root];
        }
        let table = stream
            .clone_htod(&table)
            .map_err(driver("uploading the buffer table"))?;
        let mut dim_values: Vec<i64> = program
            .dims()
            .iter()
            .map(|d| dims.get(d).copied().unwrap_or(0) as i64)
            .collect();
        if dim_values.is_empty() {
            dim_values.push(0);
        }
        let dim_values = stream
            .clone_htod(&dim_values)
            .map_err(driver("uploading the dims"))?;

        let (start, end) = (0i64, 0i64);
        for (l, f) in self.launches.iter().zip(&self.functions) {
            let grid = launch_grid(l, &lookup)?;
            let cfg = LaunchConfig {
                grid_dim: grid,
                block_dim: (l.block[0], l.block[1], l.block[2]),
                shared_mem_bytes: 0,
            };
            let mut args = stream.launch_builder(f);
            args.arg(&table).arg(&dim_values).arg(&start).arg(&end);
            // SAFETY: the kernel's signature is (ptr, ptr, i64, i64), which is what is
            // passed; every address in the table points at an allocation of the size
            // the program's buffer needs for these dims.
            unsafe { args.launch(cfg) }
                .map_err(driver(format!("launching {} ({})", l.symbol, l.kernel)))?;
        }
        stream
            .synchronize()
            .map_err(driver("running the kernels"))?;

        program
            .outputs
            .iter()
            .zip(&output_dev)
            .map(|(&b, dev)| {
                let buf = program.buffer(b);
                let shape: Vec<usize> = buf
                    .shape
                    .iter()
                    .map(|s| s.eval(lookup).map(|v| v as usize))
                    .collect::<Result<_, _>>()
                    .map_err(|d| {
                        CudaError::Input(format!("output `{}`: unknown dim {d}", buf.name))
                    })?;
                let size = plan.sizes[b.0 as usize] as usize;
                let mut host = stream
                    .clone_dtoh(dev)
                    .map_err(driver(format!("copying output `{}` back", buf.name)))?;
                host.truncate(size);
                Tensor::from_bytes(buf.dtype, shape, Bytes::from(host))
                    .map_err(|e| CudaError::Input(format!("output `{}`: {e}", buf.name)))
            })
            .collect()
    }
}

/// The grid of launch `l` for the bound dims, checked against CUDA's limits.
fn launch_grid(
    l: &GpuLaunch,
    lookup: &dyn Fn(&str) -> Option<u64>,
) -> Result<(u32, u32, u32), CudaError> {
    const LIMITS: [u64; 3] = [(1 << 31) - 1, 65_535, 65_535];
    let mut out = [0u32; 3];
    for (axis, g) in l.grid.iter().enumerate() {
        let n = g
            .eval(lookup)
            .map_err(|d| CudaError::Input(format!("kernel {}: unknown dim {d}", l.kernel)))?;
        if n > LIMITS[axis] {
            return Err(CudaError::Input(format!(
                "kernel {}: {n} blocks along grid axis {axis} exceed CUDA's limit of {}",
                l.kernel, LIMITS[axis]
            )));
        }
        out[axis] = n as u32;
    }
    Ok((out[0], out[1], out[2]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use smelt_codegen_llvm::{GpuSchedule, GridDim};
    use smelt_lower::Size;

    #[test]
    fn grids_are_evaluated_and_checked_against_cuda_limits() {
        let l = GpuLaunch {
            symbol: "smelt_k0".into(),
            kernel: "k0_matmul".into(),
            schedule: GpuSchedule::TiledMatmul,
            grid: [
                GridDim::CeilDiv(Size::sym("n"), 64),
                GridDim::CeilDiv(Size::known(100), 64),
                GridDim::Exact(Size::sym("b")),
            ],
            block: [16, 16, 1],
            shared_bytes: 0,
        };
        let dims: HashMap<String, u64> = [("n".to_string(), 130), ("b".to_string(), 3)].into();
        let lookup = |d: &str| dims.get(d).copied();
        assert_eq!(launch_grid(&l, &lookup).unwrap(), (3, 2, 3));
        let big: HashMap<String, u64> = [("n".to_string(), 1), ("b".to_string(), 70_000)].into();
        let e = launch_grid(&l, &|d: &str| big.get(d).copied()).unwrap_err();
        assert!(e.to_string().contains("exceed CUDA's limit"), "{e}");
        let e = launch_grid(&l, &|_: &str| None).unwrap_err();
        assert!(e.to_string().contains("unknown dim"), "{e}");
    }

    #[test]
    fn without_a_driver_loading_says_so() {
        if driver_available() {
            return; // A GPU machine: the model tests exercise the real path.
        }
        let g = smelt_ir::text::parse(
            "graph @g(%x: f32[4]) -> (f32[4]) {\n  %y = relu(%x) : f32[4]\n  return %y\n}\n",
        )
        .unwrap();
        let program = smelt_lower::lower(&g).unwrap();
        // SAFETY: only opens the library.
        let present = unsafe { cudarc::driver::sys::is_culib_present() };
        match CudaModel::new(program, 0) {
            Err(CudaError::NoDriver) => assert!(!present),
            Err(e @ CudaError::Driver { .. }) => assert!(present, "{e}"),
            Err(e) => panic!("unexpected error: {e}"),
            Ok(_) => panic!("a model loaded although no device is available"),
        }
    }
}
