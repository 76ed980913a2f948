//! The GPU runtime (`smelt::gpu`, feature `cuda`): MiniLM-L6-v2 (batch 1, seq 16) run
//! from its PTX on an NVIDIA GPU through the CUDA driver, compared with the
//! interpreter (max |Δ| ≤ 1e-3 on every output).
//!
//! Where the machine has no CUDA driver or device the model test checks that loading
//! is refused with a clear message instead, and says so on stderr: the PTX itself is
//! validated by `ptx_models.rs` either way.
#![cfg(feature = "cuda")]

use smelt::gpu::{driver_available, GpuModel};
use smelt::Tensor;

use smelt_tests::prepared_model as prepared;

/// Token ids, mask and type ids for batch 1 × `seq`.
fn minilm_inputs(seq: usize) -> Vec<(&'static str, Tensor)> {
    let ids: Vec<i64> = (0..seq as i64).map(|i| 101 + (i * 37) % 2000).collect();
    vec![
        ("input_ids", Tensor::from_vec(vec![1, seq], ids).unwrap()),
        (
            "attention_mask",
            Tensor::from_vec(vec![1, seq], vec![1i64; seq]).unwrap(),
        ),
        (
            "token_type_ids",
            Tensor::from_vec(vec![1, seq], vec![0i64; seq]).unwrap(),
        ),
    ]
}

#[test]
fn minilm_on_the_gpu_matches_the_interpreter() {
    let g = prepared("minilm/minilm_l6_v2.onnx", &[("batch", 1), ("seq", 16)]);
    let inputs = minilm_inputs(16);
    if !driver_available() {
        let err = GpuModel::new(g, 0).err().expect("no device, so no model");
        assert!(err.to_string().contains("no CUDA device"), "{err}");
        eprintln!("no CUDA driver or device on this machine: GPU run skipped ({err})");
        return;
    }
    let want = smelt::interp::run(&g, &inputs).expect("interpreter");
    let gpu = GpuModel::new(g, 0).expect("GPU model");
    let got = gpu.run(&inputs).expect("GPU run");
    eprintln!("ran on {}", gpu.device().unwrap_or_default());
    assert_eq!(got.len(), want.len());
    for ((name, a), (_, b)) in got.iter().zip(&want) {
        assert_eq!(a.shape(), b.shape(), "{name}");
        let (a, b) = (a.to_f64_vec().unwrap(), b.to_f64_vec().unwrap());
        let max = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f64, f64::max);
        eprintln!("{name}: max |gpu - interp| = {max:.3e}");
        assert!(max <= 1e-3, "{name}: {max}");
    }
}
