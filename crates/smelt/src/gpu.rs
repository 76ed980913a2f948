//! Running a model on an NVIDIA GPU (feature `cuda`): the graph is specialised and
//! lowered per input shape exactly as for the CPU backends ([`Compiled::program`]),
//! compiled to PTX with the LLVM back end and run through the CUDA driver API
//! ([`smelt_cuda::CudaModel`]). The driver library is opened at run time, so this
//! builds everywhere; without an NVIDIA driver [`GpuModel::new`] says so.
//!
//! ```no_run
//! # fn demo(graph: smelt::Graph, x: smelt::Tensor) -> smelt::Result<()> {
//! let gpu = smelt::gpu::GpuModel::new(graph, 0)?;
//! let outputs = gpu.run(&[("x", x)])?;
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::sync::Mutex;

use smelt_ir::{Graph, Tensor};

pub use smelt_cuda::{driver_available, CudaError, CudaModel};

use crate::{Backend, CompileOptions, Compiled, Error, Result};

/// A model run on one GPU, compiled once per set of input shapes.
pub struct GpuModel {
    compiled: Compiled,
    ordinal: usize,
    cache: Mutex<HashMap<Vec<Vec<usize>>, CudaModel>>,
}

impl GpuModel {
    /// Prepares `graph` for GPU `ordinal`; fails at once when no CUDA driver or device
    /// is present.
    pub fn new(graph: Graph, ordinal: usize) -> Result<GpuModel> {
        if !driver_available() {
            return Err(Error::Usage(
                "no CUDA device: the GPU runtime needs an NVIDIA driver (libcuda.so) and a GPU"
                    .into(),
            ));
        }
        let compiled = Compiled::new(
            graph,
            CompileOptions {
                backend: Backend::Interp,
                ..CompileOptions::default()
            },
        )?;
        Ok(GpuModel {
            compiled,
            ordinal,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The graph's input names, in order.
    pub fn input_names(&self) -> &[String] {
        self.compiled.input_names()
    }

    /// Runs on named inputs (every graph input must be given); returns the outputs by
    /// name in the graph's order. The first run with new shapes compiles and loads.
    pub fn run(&self, inputs: &[(&str, Tensor)]) -> Result<Vec<(String, Tensor)>> {
        let shapes = self.compiled.input_shapes(inputs)?;
        let by_name: HashMap<&str, &Tensor> = inputs.iter().map(|(n, t)| (*n, t)).collect();
        let ordered: Vec<Tensor> = self
            .compiled
            .input_names()
            .iter()
            .map(|n| {
                by_name
                    .get(n.as_str())
                    .map(|t| (*t).clone())
                    .ok_or_else(|| Error::Usage(format!("input `{n}` was not given")))
            })
            .collect::<Result<_>>()?;
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if !cache.contains_key(&shapes) {
            let program = self.compiled.program(&shapes)?;
            let model = CudaModel::new(program, self.ordinal)?;
            cache.insert(shapes.clone(), model);
        }
        let model = cache
            .get_mut(&shapes)
            .ok_or_else(|| Error::Usage("GPU model cache lost an entry".into()))?;
        let outputs = model.run(&ordered)?;
        Ok(self
            .compiled
            .output_names()
            .iter()
            .cloned()
            .zip(outputs)
            .collect())
    }

    /// The device the model for `inputs`' shapes runs on (compiling it if needed).
    pub fn device(&self) -> Option<String> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.values().next().map(|m| m.device().to_string())
    }
}
