//! PTX output: every case of the shared kernel corpus (`tests/kernels/ops.smelt`) that
//! lowers is compiled to PTX for sm_80 and sm_90 and validated with `ptxas`.
//!
//! `ptxas` is looked up in `SMELT_PTXAS`, then in the `nvidia-cuda-nvcc-cu12` pip
//! wheel (`python3 -c "import nvidia.cuda_nvcc"`). Where neither is found the test
//! still compiles every case to PTX but prints that it skipped the `ptxas` validation,
//! and passes. Cases refused with `CodegenError::Unsupported` (GPU math functions that
//! need libdevice) are listed with the reason and do not fail the test. Set
//! `SMELT_PTX_KEEP=1` to keep the PTX files (under the temp dir) for inspection.

use std::path::{Path, PathBuf};
use std::process::Command;

use smelt_codegen_llvm::{compile_ptx, gpu_launches, launch_manifest, CodegenError, GpuSchedule};

mod deps {
    pub use smelt_interp as interp;
    pub use smelt_ir as ir;
}
#[path = "../../../tests/kernels/harness.rs"]
mod harness;

/// The `ptxas` binary, if one is available.
fn ptxas() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("SMELT_PTXAS") {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    let out = Command::new("python3")
        .args([
            "-c",
            "import nvidia.cuda_nvcc, os; print(list(nvidia.cuda_nvcc.__path__)[0])",
        ])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let dir = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let p = PathBuf::from(dir).join("bin/ptxas");
    p.is_file().then_some(p)
}

/// Validate `ptx` for `gpu` with `ptxas`; `Err` holds ptxas's message.
fn validate(ptxas: &Path, dir: &Path, ptx: &str, gpu: &str, tag: &str) -> Result<(), String> {
    let src = dir.join(format!("{tag}_{gpu}.ptx"));
    let obj = dir.join(format!("{tag}_{gpu}.cubin"));
    std::fs::write(&src, ptx).map_err(|e| e.to_string())?;
    let out = Command::new(ptxas)
        .arg(format!("-arch={gpu}"))
        .arg(&src)
        .arg("-o")
        .arg(&obj)
        .output()
        .map_err(|e| format!("running ptxas: {e}"))?;
    // `SMELT_PTX_KEEP=1` keeps the PTX files (in the temp dir) for inspection.
    if std::env::var_os("SMELT_PTX_KEEP").is_none() {
        let _ = std::fs::remove_file(&src);
        let _ = std::fs::remove_file(&obj);
    }
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn corpus_ptx_validates_with_ptxas() {
    let ptxas = ptxas();
    if ptxas.is_none() {
        eprintln!("ptxas not found (SMELT_PTXAS, nvidia-cuda-nvcc-cu12): skipping validation");
    }
    let dir = std::env::temp_dir().join(format!("smelt-ptx-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases = harness::corpus();
    let (mut lowered, mut valid) = (0, [0usize; 2]);
    let mut schedules = [0usize; 3];
    let mut unsupported = vec![];
    let mut failures = vec![];
    for (n, case) in cases.iter().enumerate() {
        let g = case.graph();
        let Ok(program) = smelt_lower::lower(&g) else {
            continue;
        };
        lowered += 1;
        for (gi, gpu) in ["sm_80", "sm_90"].into_iter().enumerate() {
            match compile_ptx(&program, gpu) {
                Ok(ptx) => {
                    assert_eq!(
                        ptx.matches(".entry").count(),
                        program.kernels.len(),
                        "{}: one .entry per kernel",
                        case.title()
                    );
                    // Each schedule's signature instructions are in the PTX.
                    let launches = gpu_launches(&program, 256);
                    for l in &launches {
                        let (slot, marks): (usize, &[&str]) = match l.schedule {
                            GpuSchedule::Point => (0, &[]),
                            GpuSchedule::WarpPerPoint => (1, &["shfl.sync.bfly"]),
                            GpuSchedule::TiledMatmul => (2, &[".shared", "bar.sync", "fma.rn.f32"]),
                        };
                        if gi == 0 {
                            schedules[slot] += 1;
                        }
                        for mark in marks {
                            assert!(
                                ptx.contains(mark),
                                "{}: {} ({}) has no `{mark}`",
                                case.title(),
                                l.kernel,
                                l.schedule.name()
                            );
                        }
                    }
                    match &ptxas {
                        Some(p) => match validate(p, &dir, &ptx, gpu, &format!("case{n}")) {
                            Ok(()) => valid[gi] += 1,
                            Err(e) => failures.push(format!("{} [{gpu}]: {e}", case.title())),
                        },
                        None => valid[gi] += 1,
                    }
                }
                Err(e @ CodegenError::Unsupported { .. }) => {
                    if gi == 0 {
                        unsupported.push(format!("{}: {e}", case.title()));
                    }
                }
                Err(e) => failures.push(format!("{} [{gpu}]: compile: {e}", case.title())),
            }
        }
        // The manifest names every kernel.
        let m = launch_manifest(&program, 256);
        assert_eq!(m.matches("\"kernel\": ").count(), program.kernels.len());
    }
    eprintln!(
        "{} corpus cases, {lowered} lower: valid PTX for sm_80 {}, sm_90 {}{}; {} unsupported",
        cases.len(),
        valid[0],
        valid[1],
        if ptxas.is_some() {
            " (ptxas)"
        } else {
            " (not validated: no ptxas)"
        },
        unsupported.len()
    );
    eprintln!(
        "kernel schedules: {} point, {} warp-per-point, {} tiled-matmul",
        schedules[0], schedules[1], schedules[2]
    );
    // The corpus has matmuls and row/reduce kernels: both GPU schedules must be used.
    assert!(schedules[1] >= 10 && schedules[2] >= 10, "{schedules:?}");
    if std::env::var_os("SMELT_PTX_KEEP").is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    for u in &unsupported {
        eprintln!("  unsupported: {u}");
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn manifest_has_symbolic_thread_counts_and_bad_gpus_are_refused() {
    let cases = harness::corpus();
    let case = cases
        .iter()
        .find(|c| c.name == "matmul symbolic rows relu reduce_max")
        .expect("corpus case");
    let program = smelt_lower::lower(&case.graph()).expect("lower");
    let m = launch_manifest(&program, 128);
    eprintln!("{m}");
    assert!(m.contains("\"dims\": [\"n\"]"), "{m}");
    assert!(m.contains("?n"), "{m}");
    assert!(m.contains("ceil("), "{m}");
    // The matmul is tiled (16 × 16 threads, grid rows a formula over ?n); the row
    // reduction after it gets a warp per row.
    assert!(m.contains("\"schedule\": \"tiled-matmul\""), "{m}");
    assert!(m.contains("\"block\": [16, 16, 1]"), "{m}");
    assert!(m.contains("\"ceil(?n / 64)\""), "{m}");
    assert!(m.contains("\"name\": \"smelt_k0\""), "{m}");
    // The buffer table: every buffer, inputs and outputs by index, byte sizes (formulas
    // when symbolic).
    assert_eq!(
        m.matches("\"buffer\": ").count(),
        program.buffers.len(),
        "{m}"
    );
    assert!(m.contains("\"kind\": \"input\", \"index\": 0"), "{m}");
    assert!(m.contains("\"kind\": \"output\", \"index\": 0"), "{m}");
    assert!(m.contains("\"bytes\": \"4*"), "{m}");
    let ptx = compile_ptx(&program, "sm_90").expect("ptx");
    assert!(ptx.contains(".target sm_90"), "{ptx}");
    assert!(ptx.contains(".entry smelt_k0"), "{ptx}");
    assert!(matches!(
        compile_ptx(&program, "znver4"),
        Err(CodegenError::Target(_))
    ));
}
