//! Compiling a model to native code and running it.
//!
//! [`Compiled`] holds a model's graph and compiles it lazily per set of input shapes:
//! named dims (`?batch`, `?seq`) are bound from the shapes, shape computations fold
//! away, the graph is lowered to a [`KernelProgram`](smelt_lower::KernelProgram),
//! compiled by the chosen backend and cached, so a second run with the same shapes
//! reuses the code.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use smelt_ir::{Dim, Graph, Tensor};
use smelt_lower::KernelProgram;

use crate::driver::Driver;
use crate::error::{Error, Result};

/// Which engine runs a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The reference interpreter (no compilation).
    Interp,
    /// Native code from Cranelift, JIT-compiled in memory.
    Cranelift,
    /// Native code from LLVM (vectorised for the host's ISA), JIT-compiled in memory.
    /// Needs smelt built with the `llvm` feature.
    Llvm,
}

impl Backend {
    /// Whether this build of smelt has the backend.
    pub fn available(self) -> bool {
        match self {
            Backend::Interp | Backend::Cranelift => true,
            Backend::Llvm => cfg!(feature = "llvm"),
        }
    }
}

impl FromStr for Backend {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Backend, String> {
        match s {
            "interp" => Ok(Backend::Interp),
            "cranelift" => Ok(Backend::Cranelift),
            "llvm" => Ok(Backend::Llvm),
            other => Err(format!(
                "unknown backend `{other}` (expected `interp`, `cranelift` or `llvm`)"
            )),
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Interp => "interp",
            Backend::Cranelift => "cranelift",
            Backend::Llvm => "llvm",
        })
    }
}

/// The passes every shape-specialised graph goes through before lowering: fold the
/// now-constant shape arithmetic, recognise GELU/LayerNorm/Softmax, clean up.
pub const SPECIALIZE_PIPELINE: &str = "fold-constants,canonicalize,simplify,cse,dce";

/// How to compile.
#[derive(Debug, Clone)]
pub struct CompileOptions {
    /// The engine.
    pub backend: Backend,
    /// Worker threads per run (0: one per core).
    pub threads: usize,
    /// Passes run after binding the shapes, before lowering.
    pub specialize_pipeline: String,
    /// Cranelift code generation options.
    pub cranelift: smelt_codegen_cranelift::Options,
    /// LLVM's optimisation level (0 to 3) for the LLVM backend.
    pub llvm_opt_level: u32,
}

impl Default for CompileOptions {
    fn default() -> CompileOptions {
        CompileOptions {
            backend: Backend::Cranelift,
            threads: 0,
            specialize_pipeline: SPECIALIZE_PIPELINE.into(),
            cranelift: smelt_codegen_cranelift::Options::default(),
            llvm_opt_level: 2,
        }
    }
}

/// What compiling for one set of input shapes took and produced.
#[derive(Debug, Clone, Default)]
pub struct CompileStats {
    /// Binding shapes and running the specialisation pipeline, in ms.
    pub specialize_ms: f64,
    /// Lowering to kernels, in ms.
    pub lower_ms: f64,
    /// Native code generation, in ms.
    pub codegen_ms: f64,
    /// Kernels in the program.
    pub kernels: usize,
    /// Peak bytes of the arena for these shapes.
    pub arena_bytes: u64,
    /// Bytes the temporaries would take without reuse.
    pub unshared_bytes: u64,
}

impl CompileStats {
    /// Total compile time in ms.
    pub fn total_ms(&self) -> f64 {
        self.specialize_ms + self.lower_ms + self.codegen_ms
    }
}

struct Entry {
    model: smelt_runtime::CompiledModel,
    stats: CompileStats,
}

/// A shared handle to the runtime model compiled for one set of shapes.
pub struct RuntimeHandle(Arc<Entry>);

impl std::ops::Deref for RuntimeHandle {
    type Target = smelt_runtime::CompiledModel;
    fn deref(&self) -> &smelt_runtime::CompiledModel {
        &self.0.model
    }
}

/// A model compiled on demand for each set of input shapes it is run with.
pub struct Compiled {
    graph: Graph,
    opts: CompileOptions,
    input_names: Vec<String>,
    output_names: Vec<String>,
    cache: Mutex<HashMap<Vec<Vec<usize>>, Arc<Entry>>>,
}

impl Compiled {
    /// Prepare `graph` for compilation; nothing is compiled until shapes are known.
    pub fn new(graph: Graph, opts: CompileOptions) -> Result<Compiled> {
        if !opts.backend.available() {
            return Err(Error::Usage(format!(
                "this build of smelt has no `{}` backend (build with the `llvm` feature; scripts/setup.sh installs LLVM 19)",
                opts.backend
            )));
        }
        let input_names = graph
            .inputs()
            .iter()
            .map(|&v| graph.value(v).name.clone())
            .collect();
        let output_names = graph
            .outputs()
            .iter()
            .map(|&v| graph.value(v).name.clone())
            .collect();
        Ok(Compiled {
            graph,
            opts,
            input_names,
            output_names,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The graph's input names, in order.
    pub fn input_names(&self) -> &[String] {
        &self.input_names
    }

    /// The graph's output names, in order.
    pub fn output_names(&self) -> &[String] {
        &self.output_names
    }

    /// The shapes of named inputs in the model's input order (every input must be
    /// given), the form [`Compiled::prepare`] takes.
    pub fn input_shapes(&self, inputs: &[(&str, Tensor)]) -> Result<Vec<Vec<usize>>> {
        self.input_names
            .iter()
            .map(|n| {
                inputs
                    .iter()
                    .find(|(m, _)| m == n)
                    .map(|(_, t)| t.shape().to_vec())
                    .ok_or_else(|| Error::Usage(format!("input `{n}` was not given")))
            })
            .collect()
    }

    /// The backend.
    pub fn backend(&self) -> Backend {
        self.opts.backend
    }

    /// The graph specialised to `shapes` (one per input, in order) and cleaned up.
    pub fn specialize(&self, shapes: &[Vec<usize>]) -> Result<Graph> {
        let mut g = self.graph.clone();
        if shapes.len() != g.inputs().len() {
            return Err(Error::Usage(format!(
                "the model has {} inputs, {} shapes were given",
                g.inputs().len(),
                shapes.len()
            )));
        }
        let mut dims: HashMap<String, u64> = HashMap::new();
        for (n, (&v, shape)) in g.inputs().iter().zip(shapes).enumerate() {
            let ty = g.ty(v);
            let Some(want) = ty.dims() else { continue };
            if want.len() != shape.len() {
                return Err(Error::Usage(format!(
                    "input {n} `{}` has rank {}, the model expects {ty}",
                    self.input_names[n],
                    shape.len()
                )));
            }
            for (d, &s) in want.iter().zip(shape) {
                match d {
                    Dim::Known(k) if *k != s as u64 => {
                        return Err(Error::Usage(format!(
                            "input {n} `{}` has shape {shape:?}, the model expects {ty}",
                            self.input_names[n]
                        )))
                    }
                    Dim::Sym(name) => {
                        if let Some(prev) = dims.insert(name.clone(), s as u64) {
                            if prev != s as u64 {
                                return Err(Error::Usage(format!(
                                    "dim ?{name} is {prev} in one input and {s} in input `{}`",
                                    self.input_names[n]
                                )));
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        if !dims.is_empty() {
            g.bind_dims(&dims);
            g.infer_types()?;
        }
        Driver::new().run_pipeline(&mut g, &self.opts.specialize_pipeline)?;
        Ok(g)
    }

    /// The kernel program for `shapes`.
    pub fn program(&self, shapes: &[Vec<usize>]) -> Result<KernelProgram> {
        let g = self.specialize(shapes)?;
        Ok(smelt_lower::lower(&g)?)
    }

    fn entry(&self, shapes: &[Vec<usize>]) -> Result<Arc<Entry>> {
        let key = shapes.to_vec();
        if let Some(e) = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(e.clone());
        }
        let t0 = Instant::now();
        let g = self.specialize(shapes)?;
        let t1 = Instant::now();
        let program = smelt_lower::lower(&g)?;
        let t2 = Instant::now();
        let n_kernels = program.kernels.len();
        let exec = self.jit(program)?;
        let t3 = Instant::now();
        let refs: Vec<&[usize]> = shapes.iter().map(Vec::as_slice).collect();
        let model = smelt_runtime::CompiledModel::new(exec, self.opts.threads)?;
        let plan = model.plan_for(&refs)?;
        let ms = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1e3;
        let entry = Arc::new(Entry {
            stats: CompileStats {
                specialize_ms: ms(t0, t1),
                lower_ms: ms(t1, t2),
                codegen_ms: ms(t2, t3),
                kernels: n_kernels,
                arena_bytes: plan.arena_bytes,
                unshared_bytes: plan.unshared_bytes,
            },
            model,
        });
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, entry.clone());
        Ok(entry)
    }

    /// Native code for `program` from the chosen backend, ready for the runtime.
    fn jit(&self, program: KernelProgram) -> Result<smelt_runtime::Executable> {
        match self.opts.backend {
            Backend::Llvm => self.jit_llvm(program),
            _ => {
                let jit = smelt_codegen_cranelift::compile_jit(&program, &self.opts.cranelift)?;
                let kernels = jit.kernels.clone();
                // SAFETY: the kernels were compiled from this program by the Cranelift
                // backend, whose functions follow the runtime's calling contract, and
                // `jit` owns them.
                Ok(unsafe { smelt_runtime::Executable::new(program, kernels, Box::new(jit))? })
            }
        }
    }

    #[cfg(feature = "llvm")]
    fn jit_llvm(&self, program: KernelProgram) -> Result<smelt_runtime::Executable> {
        let jit = smelt_codegen_llvm::compile_jit(&program, &self.llvm_options())?;
        let kernels = jit.kernels.clone();
        // SAFETY: as for Cranelift: same calling contract, `jit` owns the code.
        Ok(unsafe { smelt_runtime::Executable::new(program, kernels, Box::new(jit))? })
    }

    #[cfg(not(feature = "llvm"))]
    fn jit_llvm(&self, _program: KernelProgram) -> Result<smelt_runtime::Executable> {
        Err(Error::Usage(
            "this build of smelt has no LLVM backend (feature `llvm`)".into(),
        ))
    }

    #[cfg(feature = "llvm")]
    pub(crate) fn llvm_options(&self) -> smelt_codegen_llvm::Options {
        smelt_codegen_llvm::Options {
            opt_level: self.opts.llvm_opt_level,
            cpu: None,
            features: None,
        }
    }

    /// An object file with the kernels of `program` from the chosen backend.
    pub(crate) fn object(&self, program: &KernelProgram, prefix: &str) -> Result<Vec<u8>> {
        match self.opts.backend {
            #[cfg(feature = "llvm")]
            Backend::Llvm => Ok(smelt_codegen_llvm::compile_object(
                program,
                prefix,
                &self.llvm_options(),
            )?),
            #[cfg(not(feature = "llvm"))]
            Backend::Llvm => self.jit_llvm(program.clone()).map(|_| vec![]),
            _ => Ok(smelt_codegen_cranelift::compile_object(
                program,
                prefix,
                &self.opts.cranelift,
            )?),
        }
    }

    /// Compile for `shapes` now (cached); returns what it took.
    pub fn prepare(&self, shapes: &[Vec<usize>]) -> Result<CompileStats> {
        if self.opts.backend == Backend::Interp {
            return Ok(CompileStats::default());
        }
        Ok(self.entry(shapes)?.stats.clone())
    }

    /// The runtime model compiled for `shapes` (compiling it if needed), for profiling
    /// and inspection.
    pub fn runtime_model(&self, shapes: &[Vec<usize>]) -> Result<RuntimeHandle> {
        Ok(RuntimeHandle(self.entry(shapes)?))
    }

    /// Run on named inputs; every graph input must be given. Returns the outputs by
    /// name, in the graph's order.
    pub fn run(&self, inputs: &[(&str, Tensor)]) -> Result<Vec<(String, Tensor)>> {
        if self.opts.backend == Backend::Interp {
            return Ok(smelt_interp::run(&self.graph, inputs)?);
        }
        let by_name: HashMap<&str, &Tensor> = inputs.iter().map(|(n, t)| (*n, t)).collect();
        let mut ordered: Vec<Tensor> = vec![];
        for name in &self.input_names {
            let t = by_name
                .get(name.as_str())
                .ok_or_else(|| Error::Usage(format!("input `{name}` was not given")))?;
            ordered.push((*t).clone());
        }
        for (n, _) in inputs {
            if !self.input_names.iter().any(|x| x == n) {
                return Err(Error::Usage(format!("the model has no input `{n}`")));
            }
        }
        self.run_ordered(&ordered)
    }

    /// Run on inputs given in the graph's input order.
    pub fn run_ordered(&self, inputs: &[Tensor]) -> Result<Vec<(String, Tensor)>> {
        if self.opts.backend == Backend::Interp {
            let named: Vec<(&str, Tensor)> = self
                .input_names
                .iter()
                .map(String::as_str)
                .zip(inputs.iter().cloned())
                .collect();
            return Ok(smelt_interp::run(&self.graph, &named)?);
        }
        let shapes: Vec<Vec<usize>> = inputs.iter().map(|t| t.shape().to_vec()).collect();
        let entry = self.entry(&shapes)?;
        let outs = entry.model.run(inputs)?;
        Ok(self.output_names.iter().cloned().zip(outs).collect())
    }
}
