//! `smelt bench --gemm M,K,N`: one f32 GEMM `x[M,K] · W[K,N]` (W a constant, as model
//! weights are) compiled and timed, beside the machine's measured FMA peak, so the
//! micro-kernel's efficiency is a number rather than a guess.

use std::time::Instant;

use anyhow::{bail, Result};
use smelt::{
    Attrs, Backend, CompileOptions, Compiled, Constant, DType, Graph, OpKind, Tensor, TensorType,
};

/// Parse `M,K,N`.
pub fn parse_gemm(s: &str) -> Result<(usize, usize, usize), String> {
    let parts: Vec<usize> = s
        .split(',')
        .map(|p| {
            p.trim()
                .parse::<usize>()
                .map_err(|_| format!("`{p}` is not a size"))
        })
        .collect::<Result<_, _>>()?;
    match parts.as_slice() {
        [m, k, n] if *m > 0 && *k > 0 && *n > 0 => Ok((*m, *k, *n)),
        _ => Err(format!("expected M,K,N (three positive sizes), got `{s}`")),
    }
}

fn pseudo_random(n: usize, seed: u32) -> Vec<f32> {
    let mut x = seed.wrapping_mul(2_654_435_761).max(1);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x % 2001) as f32 / 1000.0 - 1.0
        })
        .collect()
}

/// Time the GEMM with `backend` on `threads` threads; prints one line like `smelt bench`.
pub fn bench_gemm(
    (m, k, n): (usize, usize, usize),
    backend: Backend,
    threads: usize,
    warmup: usize,
    runs: usize,
) -> Result<()> {
    let mut g = Graph::new("gemm");
    let x = g.add_input("x", TensorType::known(DType::F32, &[m as u64, k as u64]));
    let w = g.add_const(
        "w",
        Constant::plain(Tensor::from_vec(vec![k, n], pseudo_random(k * n, 7))?),
    );
    let y = g.add_simple(
        OpKind::MatMul,
        Attrs::new(),
        &[x, w],
        "y",
        TensorType::known(DType::F32, &[m as u64, n as u64]),
    )?;
    g.set_outputs(vec![y]);
    let compiled = Compiled::new(
        g,
        CompileOptions {
            backend,
            threads,
            ..CompileOptions::default()
        },
    )?;
    let input = Tensor::from_vec(vec![m, k], pseudo_random(m * k, 3))?;
    let t0 = Instant::now();
    compiled.prepare(&[vec![m, k]])?;
    let compile_ms = t0.elapsed().as_secs_f64() * 1e3;
    let inputs = std::slice::from_ref(&input);
    for _ in 0..warmup {
        compiled.run_ordered(inputs)?;
    }
    let mut times = vec![];
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        compiled.run_ordered(inputs)?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let p90 = times[(times.len() * 9 / 10).min(times.len() - 1)];
    let flops = 2.0 * (m * k * n) as f64;
    let gflops = flops / (median * 1e6);
    let peak = fma_peak_gflops();
    eprintln!(
        "gemm {m}x{k}x{n} · backend {backend} · threads {threads} · compile {compile_ms:.1} ms"
    );
    match peak {
        Some(p) => eprintln!(
            "measured FMA peak {p:.1} GFLOP/s per core ({:.1} for {threads} thread(s)): {:.0}% of peak",
            p * threads as f64,
            100.0 * gflops / (p * threads as f64)
        ),
        None => eprintln!("no FMA peak measurement on this CPU (needs x86-64 with AVX2+FMA)"),
    }
    println!("median {median:.3} ms, p90 {p90:.3} ms, {gflops:.1} GFLOP/s");
    if runs == 0 {
        bail!("no runs");
    }
    Ok(())
}

/// One core's f32 FMA throughput: 12 independent 256-bit FMA chains (enough to cover
/// the FMA latency on two ports), the widest vectors the kernels use on AVX2 hosts.
pub fn fma_peak_gflops() -> Option<f64> {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the features the function needs were just detected.
            return Some(unsafe { fma_loop() });
        }
    }
    None
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn fma_loop() -> f64 {
    use std::arch::x86_64::*;
    let iters = 20_000_000u64;
    let a = _mm256_set1_ps(0.999_999);
    let b = _mm256_set1_ps(1e-7);
    let mut acc = [_mm256_set1_ps(1.0); 12];
    let t = Instant::now();
    for _ in 0..iters {
        for r in acc.iter_mut() {
            *r = _mm256_fmadd_ps(*r, a, b);
        }
    }
    let secs = t.elapsed().as_secs_f64();
    // Keep the result alive so the loop is not removed.
    let mut sink = [0f32; 8];
    for r in &acc {
        _mm256_storeu_ps(sink.as_mut_ptr(), *r);
        std::hint::black_box(&sink);
    }
    (iters * 12 * 8 * 2) as f64 / secs / 1e9
}

#[cfg(test)]
mod tests {
    use super::parse_gemm;

    #[test]
    fn gemm_shapes_parse_and_bad_ones_are_refused() {
        assert_eq!(parse_gemm("128,384,1536"), Ok((128, 384, 1536)));
        assert_eq!(parse_gemm(" 1, 2 ,3"), Ok((1, 2, 3)));
        assert!(parse_gemm("128,384").is_err());
        assert!(parse_gemm("0,1,1").is_err());
        assert!(parse_gemm("a,b,c").is_err());
    }
}
