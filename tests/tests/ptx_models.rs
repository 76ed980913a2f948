//! PTX for a real model: MiniLM-L6-v2 (batch 1, seq 16) lowered and compiled to PTX for
//! sm_80 and sm_90 with the LLVM backend (`smelt::codegen_llvm::compile_ptx`: tiled
//! matmuls, warp-per-row Softmax/LayerNorm), then validated with `ptxas -v`, which must
//! report no register spills.
//!
//! `ptxas` is looked up in `SMELT_PTXAS`, then in the `nvidia-cuda-nvcc-cu12` pip
//! wheel; where neither is found the test prints that it skipped the validation and
//! passes (the PTX is still produced). Needs the `llvm` feature (LLVM 19).
#![cfg(feature = "llvm")]

use std::path::PathBuf;
use std::process::Command;

use smelt::codegen_llvm::{compile_ptx, gpu_launches, launch_manifest, GpuSchedule};
use smelt::lower::lower;

use smelt_tests::prepared_model as prepared;

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

#[test]
fn minilm_ptx_validates_with_ptxas() {
    let g = prepared("minilm/minilm_l6_v2.onnx", &[("batch", 1), ("seq", 16)]);
    let program = lower(&g).unwrap_or_else(|e| panic!("lower: {e}"));
    let manifest = launch_manifest(&program, 256);
    assert_eq!(
        manifest.matches("\"kernel\": ").count(),
        program.kernels.len(),
        "{manifest}"
    );
    // Every matmul (projections, FFN, attention) is tiled; Softmax and LayerNorm rows
    // get a warp each.
    let launches = gpu_launches(&program, 256);
    let count = |s: GpuSchedule| launches.iter().filter(|l| l.schedule == s).count();
    let (tiled, warp) = (
        count(GpuSchedule::TiledMatmul),
        count(GpuSchedule::WarpPerPoint),
    );
    eprintln!(
        "MiniLM schedules: {tiled} tiled-matmul, {warp} warp-per-point, {} point",
        count(GpuSchedule::Point)
    );
    assert!(tiled >= 6 * 6, "{manifest}");
    assert!(warp >= 6 * 3, "{manifest}");
    let ptxas = ptxas();
    if ptxas.is_none() {
        eprintln!("ptxas not found (SMELT_PTXAS, nvidia-cuda-nvcc-cu12): skipping validation");
    }
    let dir = std::env::temp_dir().join(format!("smelt-ptx-models-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for gpu in ["sm_80", "sm_90"] {
        let ptx = compile_ptx(&program, gpu).unwrap_or_else(|e| panic!("{gpu}: {e}"));
        assert_eq!(ptx.matches(".entry").count(), program.kernels.len());
        eprintln!(
            "MiniLM {gpu}: {} kernels, {} bytes of PTX",
            program.kernels.len(),
            ptx.len()
        );
        if let Some(p) = &ptxas {
            let src = dir.join(format!("minilm_{gpu}.ptx"));
            let obj = dir.join(format!("minilm_{gpu}.cubin"));
            std::fs::write(&src, &ptx).unwrap();
            let out = Command::new(p)
                .arg(format!("-arch={gpu}"))
                .arg("-v")
                .arg(&src)
                .arg("-o")
                .arg(&obj)
                .output()
                .expect("running ptxas");
            assert!(
                out.status.success(),
                "ptxas -arch={gpu}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let info = String::from_utf8_lossy(&out.stderr);
            let spills: Vec<&str> = info
                .lines()
                .filter(|l| l.contains("spill stores") && !l.contains(" 0 bytes spill stores"))
                .collect();
            assert!(
                spills.is_empty(),
                "ptxas -arch={gpu} reports spills:\n{info}"
            );
            let max_regs = info
                .lines()
                .filter_map(|l| {
                    l.split("Used ")
                        .nth(1)?
                        .split(' ')
                        .next()?
                        .parse::<u32>()
                        .ok()
                })
                .max()
                .unwrap_or(0);
            eprintln!("MiniLM {gpu}: ptxas ok, no spills, at most {max_regs} registers per thread");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
