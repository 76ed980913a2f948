//! Helpers shared by the workspace-level tests.

use std::path::PathBuf;

/// Where the shared real models live: `$SMELT_MODELS`, else `../shared/models` beside the
/// workspace.
pub fn models_dir() -> PathBuf {
    match std::env::var_os("SMELT_MODELS") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/models")),
    }
}

/// A `.npy` file under [`models_dir`], e.g. `digits/X_test.npy`.
pub fn model_npy(rel: &str) -> smelt::Tensor {
    let p = models_dir().join(rel);
    smelt::ir::npy::read_npy_file(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A shared model (path under [`models_dir`]) with `dims` bound, types inferred and the
/// standard clean-up pipeline run: the graph the lowering and code-generation tests use.
pub fn prepared_model(rel: &str, dims: &[(&str, u64)]) -> smelt::Graph {
    let p = models_dir().join(rel);
    let mut model =
        smelt::Model::load(&p).unwrap_or_else(|e| panic!("loading {}: {e}", p.display()));
    let map: std::collections::HashMap<String, u64> =
        dims.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    model.graph.bind_dims(&map);
    model.graph.infer_types().expect("infer");
    smelt::Driver::new()
        .run_pipeline(
            &mut model.graph,
            "fold-constants,canonicalize,simplify,cse,dce",
        )
        .expect("pipeline");
    model.graph
}

/// The largest absolute difference between two f32 tensors of the same shape.
pub fn max_abs_diff_f32(a: &smelt::Tensor, b: &smelt::Tensor) -> f32 {
    assert_eq!(a.shape(), b.shape());
    let (x, y) = (a.to_vec::<f32>().unwrap(), b.to_vec::<f32>().unwrap());
    x.iter()
        .zip(&y)
        .map(|(p, q)| (p - q).abs())
        .fold(0.0, f32::max)
}

/// The index of the largest value in each row of a 2-D f32 tensor.
pub fn argmax_rows(t: &smelt::Tensor) -> Vec<usize> {
    let cols = t.shape()[1];
    t.to_vec::<f32>()
        .unwrap()
        .chunks(cols)
        .map(|r| (0..cols).fold(0, |b, i| if r[i] > r[b] { i } else { b }))
        .collect()
}

/// The option sets compiled-code tests run every case under: Cranelift with one thread,
/// two threads (kernels split along their parallel axis) and plain scalar loops (no
/// matmul micro-kernel, no vectors); with the `llvm` feature, LLVM with one and two
/// threads. Each code shape is checked against the same oracle.
pub fn backend_option_sets() -> Vec<(&'static str, smelt::CompileOptions)> {
    let mut out = vec![];
    for (label, threads, micro, vector) in [
        ("1 thread", 1, true, true),
        ("2 threads", 2, true, true),
        ("scalar loops", 1, false, false),
    ] {
        let mut o = smelt::CompileOptions {
            backend: smelt::Backend::Cranelift,
            threads,
            ..smelt::CompileOptions::default()
        };
        o.cranelift.matmul_microkernel = micro;
        o.cranelift.vectorize = vector;
        out.push((label, o));
    }
    // With the `llvm` feature, the LLVM backend runs every case as well.
    #[cfg(feature = "llvm")]
    for (label, threads) in [("llvm, 1 thread", 1), ("llvm, 2 threads", 2)] {
        out.push((
            label,
            smelt::CompileOptions {
                backend: smelt::Backend::Llvm,
                threads,
                ..smelt::CompileOptions::default()
            },
        ));
    }
    out
}
