//! # smelt-runtime
//!
//! Runs a compiled model: binds the run-time sizes of named dims from the inputs,
//! plans (and caches, per set of sizes) the memory arena, points every buffer at its
//! storage (inputs and constants in place, temporaries in the arena, outputs in fresh
//! allocations), and calls the kernels in order, each split across a thread pool along
//! its schedule's parallel axis.
//!
//! The runtime does not know which backend produced the code: an [`Executable`] is a
//! [`KernelProgram`] plus one function per kernel with the C signature
//! `void(uint8_t *const *buffers, const int64_t *dims, int64_t start, int64_t end)`.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use smelt_ir::{DType, Tensor};
use smelt_lower::eval::bind_dims;
use smelt_lower::{plan_memory, BufferKind, KernelProgram, LowerError, MemoryPlan};
use thiserror::Error;

pub mod aot;

/// A compiled kernel; see the crate docs for the meaning of its arguments.
pub type KernelFn = unsafe extern "C" fn(*const *mut u8, *const i64, i64, i64);

/// What went wrong running a model.
#[derive(Debug, Error)]
pub enum RuntimeError {
    /// The inputs do not fit the model (count, dtype, rank, sizes).
    #[error("bad input: {0}")]
    Input(String),
    /// Sizing or planning failed.
    #[error(transparent)]
    Lower(#[from] LowerError),
    /// The thread pool could not be created.
    #[error("thread pool: {0}")]
    Threads(String),
}

/// A program with native code for each of its kernels.
pub struct Executable {
    program: KernelProgram,
    kernels: Vec<KernelFn>,
    // Whatever owns the code (a JIT module, a loaded library); dropped last.
    _owner: Box<dyn Any + Send + Sync>,
}

impl Executable {
    /// Bundle a program with its compiled kernels.
    ///
    /// # Safety
    /// `kernels[i]` must implement `program.kernels[i]` with the signature of
    /// [`KernelFn`], touching only the buffers the kernel names within their sizes,
    /// and stay valid as long as `owner` lives.
    pub unsafe fn new(
        program: KernelProgram,
        kernels: Vec<KernelFn>,
        owner: Box<dyn Any + Send + Sync>,
    ) -> Result<Executable, RuntimeError> {
        if kernels.len() != program.kernels.len() {
            return Err(RuntimeError::Input(format!(
                "{} kernel functions for {} kernels",
                kernels.len(),
                program.kernels.len()
            )));
        }
        Ok(Executable {
            program,
            kernels,
            _owner: owner,
        })
    }

    /// The program.
    pub fn program(&self) -> &KernelProgram {
        &self.program
    }
}

/// A pointer that may cross threads: kernels running in parallel write disjoint parts
/// of their output and only read everything else.
#[derive(Clone, Copy)]
struct Shared<T>(T);
unsafe impl<T> Send for Shared<T> {}
unsafe impl<T> Sync for Shared<T> {}

impl<T: Copy> Shared<T> {
    /// The value (a method, so closures capture the wrapper and not the raw field).
    fn get(self) -> T {
        self.0
    }
}

/// 64-byte aligned storage, so vector loads of arena buffers never straddle lines
/// needlessly.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([u8; 64]);

/// A model ready to run.
pub struct CompiledModel {
    exec: Executable,
    threads: usize,
    pool: Option<rayon::ThreadPool>,
    plans: Mutex<HashMap<Vec<u64>, Arc<MemoryPlan>>>,
    arena: Mutex<Vec<Line>>,
    /// `program.dims()`, computed once: the order of the kernels' `dims` argument.
    dim_names: Vec<String>,
    /// Per-kernel wall time in ns summed over runs, when profiling is on.
    profile: Mutex<Option<Vec<u64>>>,
}

/// Below this much work (output points times inner trip counts) a kernel runs on one
/// thread: waking the pool costs more than it saves.
pub(crate) const PARALLEL_MIN_POINTS: u64 = 32 * 1024;

impl CompiledModel {
    /// Wrap an executable; `threads` workers split each kernel (0: one per core).
    pub fn new(exec: Executable, threads: usize) -> Result<CompiledModel, RuntimeError> {
        let threads = if threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            threads
        };
        let pool = if threads > 1 {
            Some(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .thread_name(|i| format!("smelt-worker-{i}"))
                    .build()
                    .map_err(|e| RuntimeError::Threads(e.to_string()))?,
            )
        } else {
            None
        };
        let dim_names = exec.program.dims();
        Ok(CompiledModel {
            exec,
            threads,
            pool,
            plans: Mutex::new(HashMap::new()),
            arena: Mutex::new(vec![]),
            dim_names,
            profile: Mutex::new(None),
        })
    }

    /// Start (or restart) timing every kernel of every run.
    pub fn enable_profile(&self) {
        *self.profile.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(vec![0; self.exec.program.kernels.len()]);
    }

    /// Wall time per kernel in ms, summed over the runs since [`enable_profile`]
    /// (`None` when profiling is off), in program order.
    ///
    /// [`enable_profile`]: CompiledModel::enable_profile
    pub fn profile(&self) -> Option<Vec<f64>> {
        self.profile
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|v| v.iter().map(|&ns| ns as f64 / 1e6).collect())
    }

    /// The program being run.
    pub fn program(&self) -> &KernelProgram {
        &self.exec.program
    }

    /// Worker threads.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// The memory plan for the given input shapes (cached).
    pub fn plan_for(&self, shapes: &[&[usize]]) -> Result<Arc<MemoryPlan>, RuntimeError> {
        let dims = bind_dims(&self.exec.program, shapes)?;
        self.plan(&dims)
    }

    fn plan(&self, dims: &HashMap<String, u64>) -> Result<Arc<MemoryPlan>, RuntimeError> {
        let key: Vec<u64> = self
            .dim_names
            .iter()
            .map(|d| dims.get(d).copied().unwrap_or(0))
            .collect();
        let mut plans = self.plans.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = plans.get(&key) {
            return Ok(p.clone());
        }
        let plan = Arc::new(plan_memory(&self.exec.program, &|d| dims.get(d).copied())?);
        plans.insert(key, plan.clone());
        Ok(plan)
    }

    /// Run on `inputs` (in the model's input order); returns the outputs in order.
    pub fn run(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>, RuntimeError> {
        let program = &self.exec.program;
        let shapes: Vec<&[usize]> = inputs.iter().map(|t| t.shape()).collect();
        let dims = bind_dims(program, &shapes)?;
        for (n, (&b, t)) in program.inputs.iter().zip(inputs).enumerate() {
            let want = program.buffer(b).dtype;
            if t.dtype() != want {
                return Err(RuntimeError::Input(format!(
                    "input {n} `{}` is {}, expected {want}",
                    program.buffer(b).name,
                    t.dtype()
                )));
            }
        }
        let plan = self.plan(&dims)?;
        let dim_values: Vec<i64> = self
            .dim_names
            .iter()
            .map(|d| dims.get(d).copied().unwrap_or(0) as i64)
            .collect();

        let mut arena = self.arena.lock().unwrap_or_else(|p| p.into_inner());
        let lines = plan.arena_bytes.div_ceil(64) as usize;
        if arena.len() < lines {
            *arena = vec![Line([0; 64]); lines];
        }
        let arena_ptr = arena.as_mut_ptr() as *mut u8;

        let mut outputs: Vec<Vec<u8>> = program
            .outputs
            .iter()
            .map(|&b| vec![0u8; plan.sizes[b.0 as usize] as usize])
            .collect();
        let mut ptrs: Vec<*mut u8> = vec![std::ptr::null_mut(); program.buffers.len()];
        for (i, buf) in program.buffers.iter().enumerate() {
            ptrs[i] = match &buf.kind {
                BufferKind::Input(n) => inputs[*n].bytes().as_ptr() as *mut u8,
                BufferKind::Output(n) => outputs[*n].as_mut_ptr(),
                BufferKind::Constant { data, .. } => match data.as_plain() {
                    Some(t) => t.bytes().as_ptr() as *mut u8,
                    None => {
                        return Err(RuntimeError::Input(format!(
                            "constant `{}` is encoded; the program needs a plain one",
                            buf.name
                        )))
                    }
                },
                BufferKind::Temp => match plan.offsets[i] {
                    // SAFETY: the plan keeps every offset + size within arena_bytes.
                    Some(off) => unsafe { arena_ptr.add(off as usize) },
                    // A temporary no kernel touches.
                    None => std::ptr::null_mut(),
                },
                BufferKind::View(_) => std::ptr::null_mut(),
            };
        }
        for i in 0..ptrs.len() {
            let root = program.root(smelt_lower::BufferId(i as u32)).0 as usize;
            if root != i {
                ptrs[i] = ptrs[root];
            }
        }

        let shared_ptrs = Shared(ptrs.as_slice());
        let run_all = || -> Result<(), RuntimeError> {
            let ptrs = shared_ptrs.get();
            let mut profile = self.profile.lock().unwrap_or_else(|p| p.into_inner());
            for (i, (k, f)) in program.kernels.iter().zip(&self.exec.kernels).enumerate() {
                let t = profile.as_ref().map(|_| std::time::Instant::now());
                self.run_kernel(k, *f, ptrs, &dim_values, &dims)?;
                if let (Some(t), Some(p)) = (t, profile.as_mut()) {
                    p[i] += t.elapsed().as_nanos() as u64;
                }
            }
            Ok(())
        };
        // The whole run happens on a pool thread, so the caller's thread does not
        // compete with the workers for cores: with T threads, exactly T run kernels.
        match &self.pool {
            Some(pool) => pool.install(run_all)?,
            None => run_all()?,
        }
        drop(arena);

        program
            .outputs
            .iter()
            .zip(outputs.iter_mut())
            .map(|(&b, data)| {
                let buf = program.buffer(b);
                let shape: Vec<usize> = buf
                    .shape
                    .iter()
                    .map(|s| s.eval(|d| dims.get(d).copied()).map(|v| v as usize))
                    .collect::<Result<_, _>>()
                    .map_err(|d| LowerError::MissingDim {
                        dim: d,
                        buffer: buf.name.clone(),
                    })?;
                let data = std::mem::take(data);
                Tensor::from_bytes(buf.dtype, shape, Bytes::from(data))
                    .map_err(|e| RuntimeError::Input(format!("output `{}`: {e}", buf.name)))
            })
            .collect()
    }

    fn run_kernel(
        &self,
        k: &smelt_lower::Kernel,
        f: KernelFn,
        ptrs: &[*mut u8],
        dim_values: &[i64],
        dims: &HashMap<String, u64>,
    ) -> Result<(), RuntimeError> {
        let size = |s: &smelt_lower::Size| {
            s.eval(|d| dims.get(d).copied())
                .map_err(|d| RuntimeError::Input(format!("no size for ?{d}")))
        };
        let (axis_extent, points) = match k.schedule.parallel_axis {
            Some(a) => (size(&k.loops[a].extent)?, work_points(k, &size)?),
            None => (0, 0),
        };
        let bufs = Shared(ptrs.as_ptr());
        let dv = Shared(dim_values.as_ptr());
        let call = move |start: u64, end: u64| {
            let (b, d) = (bufs.get(), dv.get());
            // SAFETY: `Executable::new`'s contract; every pointer in `ptrs` is valid for
            // the buffer's planned size during this run, and parallel calls cover
            // disjoint ranges of the parallel axis, so their writes do not overlap.
            unsafe { f(b, d, start as i64, end as i64) }
        };
        match &self.pool {
            Some(_) if axis_extent >= 2 && points >= PARALLEL_MIN_POINTS => {
                let chunks = chunks(
                    axis_extent,
                    self.threads as u64,
                    k.schedule
                        .tiles
                        .get(k.schedule.parallel_axis.unwrap_or(0))
                        .copied()
                        .unwrap_or(1),
                );
                // Already on the pool (see `run`): the scope's tasks go to its workers.
                rayon::scope(|s| {
                    for &(lo, hi) in &chunks[1..] {
                        s.spawn(move |_| call(lo, hi));
                    }
                    call(chunks[0].0, chunks[0].1);
                });
            }
            _ => call(0, axis_extent),
        }
        Ok(())
    }
}

/// A kernel's work in element-steps: its output points times the trip counts of the
/// inner loops at the top of its body (the reduction of a matmul, the passes over a
/// row), so row kernels with few rows but long rows still split across threads.
pub(crate) fn work_points(
    k: &smelt_lower::Kernel,
    size: &dyn Fn(&smelt_lower::Size) -> Result<u64, RuntimeError>,
) -> Result<u64, RuntimeError> {
    let mut points = 1u64;
    for l in &k.loops {
        points = points.saturating_mul(size(&l.extent)?);
    }
    let mut inner = 0u64;
    for s in &k.body {
        if let smelt_lower::Stmt::Loop { extent, .. } = s {
            inner = inner.saturating_add(size(extent)?);
        }
    }
    Ok(points.saturating_mul(inner.max(1)))
}

/// Split `0..extent` into at most `parts` contiguous ranges, with boundaries on
/// multiples of `align` where the extent allows.
fn chunks(extent: u64, parts: u64, align: u64) -> Vec<(u64, u64)> {
    let parts = parts.clamp(1, extent.max(1));
    let align = if extent >= align.max(1) * parts {
        align.max(1)
    } else {
        1
    };
    let units = extent.div_ceil(align);
    let per = units.div_ceil(parts);
    let mut out = vec![];
    let mut lo = 0;
    while lo < extent {
        let hi = (lo + per * align).min(extent);
        out.push((lo, hi));
        lo = hi;
    }
    if out.is_empty() {
        out.push((0, 0));
    }
    out
}

/// Dtype sizes the runtime hands out, for tools that synthesise inputs.
pub fn element_bytes(t: DType) -> usize {
    (t.bits() as usize).div_ceil(8)
}

#[cfg(test)]
mod tests {
    use super::chunks;

    #[test]
    fn chunks_cover_the_extent_without_overlap() {
        for extent in [1u64, 2, 3, 7, 17, 128, 129, 1000] {
            for parts in [1u64, 2, 3, 16] {
                for align in [1u64, 4, 32] {
                    let c = chunks(extent, parts, align);
                    assert_eq!(c.first().unwrap().0, 0);
                    assert_eq!(c.last().unwrap().1, extent);
                    assert!(c.len() as u64 <= parts);
                    for w in c.windows(2) {
                        assert_eq!(w[0].1, w[1].0);
                        assert!(w[0].0 < w[0].1);
                    }
                }
            }
        }
    }
}
