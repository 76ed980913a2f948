//! Matmuls whose B is a constant run on the packed-B micro-kernel (`packed.rs`):
//! compared with the interpreter at sizes that exercise row tails (fewer than 6 rows),
//! column tails (N not a multiple of the panel width), several column panels, batch
//! loops and fused epilogues, under `-O0`/`-O2`/`-O3` and one or two threads; and the
//! kernel called directly on uneven ranges of its parallel axis (blocks that start
//! inside a panel).

use std::fmt::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};

use smelt_codegen_llvm::{compile_jit, compile_object, emit_ir, Options};
use smelt_runtime::{CompiledModel, Executable};

mod deps {
    pub use smelt_interp as interp;
    pub use smelt_ir as ir;
}
#[path = "../../../tests/kernels/harness.rs"]
mod harness;

/// `(label, threads, opt_level)` of each configuration.
const CONFIGS: [(&str, usize, u32); 4] = [
    ("O2, 1 thread", 1, 2),
    ("O2, 2 threads", 2, 2),
    ("O0, 1 thread", 1, 0),
    ("O3, 1 thread", 1, 3),
];

/// A constant of `shape` with deterministic values in [-0.5, 0.5).
fn constant(name: &str, shape: &[usize], seed: usize) -> String {
    let n: usize = shape.iter().product();
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let mut s = format!("  %{name} = const f32[{}] [", dims.join(", "));
    for i in 0..n {
        if i > 0 {
            s.push_str(", ");
        }
        let v = ((i * 7919 + seed * 104_729) % 1000) as f32 / 1000.0 - 0.5;
        write!(s, "{v}").unwrap();
    }
    s.push_str("]\n");
    s
}

/// `x[batch.., m, k] @ W[k, n]` (W constant) with an epilogue: `plain`, `bias_gelu`
/// (constant bias, gelu) or `bias_residual` (constant bias, plus an input `r`).
fn case_text(batch: &[usize], m: usize, k: usize, n: usize, epilogue: &str, tol: f64) -> String {
    let lead: String = batch.iter().map(|d| format!("{d}, ")).collect();
    let out = format!("f32[{lead}{m}, {n}]");
    let mut params = format!("%x: f32[{lead}{m}, {k}]");
    if epilogue == "bias_residual" {
        write!(params, ", %r: {out}").unwrap();
    }
    let mut t = format!(
        "// CASE: packed {batch:?} x {m} x {k} x {n} {epilogue}\n// TOL: {tol:e}\n\
         graph @t({params}) -> ({out}) {{\n"
    );
    t.push_str(&constant("w", &[k, n], 1));
    t.push_str(&format!("  %0 = matmul(%x, %w) : {out}\n"));
    let last = match epilogue {
        "plain" => "%0",
        "bias_gelu" => {
            t.push_str(&constant("b", &[n], 2));
            t.push_str(&format!(
                "  %1 = add(%0, %b) : {out}\n  %2 = gelu(%1) : {out}\n"
            ));
            "%2"
        }
        "bias_residual" => {
            t.push_str(&constant("b", &[n], 3));
            t.push_str(&format!(
                "  %1 = add(%0, %b) : {out}\n  %2 = add(%1, %r) : {out}\n"
            ));
            "%2"
        }
        other => panic!("unknown epilogue {other}"),
    };
    t.push_str(&format!("  return {last}\n}}\n"));
    t
}

/// Compile and run one case under every configuration; compare with the interpreter.
/// `expect_packed`: whether its matmul must take the packed-B path.
fn check(text: &str, configs: &[(&str, usize, u32)], expect_packed: bool) {
    check_with(text, configs, expect_packed, &Options::default());
}

/// [`check`] with `base`'s CPU and features.
fn check_with(text: &str, configs: &[(&str, usize, u32)], expect_packed: bool, base: &Options) {
    let cases = harness::parse_corpus(text);
    let case = &cases[0];
    let g = case.graph();
    let program = smelt_lower::lower(&g).unwrap_or_else(|e| panic!("lower: {e}"));
    let ir = emit_ir(&program, base).expect("emit_ir");
    assert_eq!(
        ir.contains("_packed_b"),
        expect_packed,
        "{}: packed B in the module",
        case.title()
    );
    let sets = case.input_sets(&g);
    let wants: Vec<_> = sets
        .iter()
        .map(|s| harness::interpret(&g, &s.tensors).expect("interpreter"))
        .collect();
    let mut failures = vec![];
    for &(label, threads, opt_level) in configs {
        let r = catch_unwind(AssertUnwindSafe(|| -> Result<(), String> {
            let opts = Options {
                opt_level,
                ..base.clone()
            };
            let jit = compile_jit(&program, &opts).map_err(|e| format!("compile: {e}"))?;
            let kernels = jit.kernels.clone();
            // SAFETY: the kernels were compiled from this program by the LLVM backend,
            // whose functions follow the runtime's calling contract, and `jit` owns them.
            let exec = unsafe { Executable::new(program.clone(), kernels, Box::new(jit)) }
                .map_err(|e| format!("executable: {e}"))?;
            let model = CompiledModel::new(exec, threads).map_err(|e| format!("runtime: {e}"))?;
            for (set, want) in sets.iter().zip(&wants) {
                let got = model
                    .run(&set.tensors)
                    .map_err(|e| format!("{}: run: {e}", set.label))?;
                harness::compare(want, &got, case.tol)
                    .map_err(|e| format!("{}: {e}", set.label))?;
            }
            Ok(())
        }))
        .unwrap_or_else(|_| Err("panicked".into()));
        if let Err(e) = r {
            failures.push(format!("{} [{label}]: {e}", case.title()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn packed_small_shapes_match_interpreter() {
    for (batch, m, k, n, epi) in [
        (&[][..], 1, 17, 3, "plain"),
        (&[], 3, 17, 129, "bias_gelu"),
        (&[], 5, 70, 77, "bias_residual"),
        (&[], 7, 3, 33, "plain"),
        (&[], 13, 129, 17, "bias_gelu"),
        (&[], 6, 1, 16, "plain"),
        (&[], 12, 5, 32, "bias_residual"),
        (&[2], 3, 17, 40, "bias_gelu"),
        (&[2], 19, 33, 5, "bias_residual"),
        // B blocks too big for L1: column panels sized for L2, a partial last panel
        // and a column tail.
        (&[], 7, 700, 200, "bias_gelu"),
        (&[2], 9, 450, 37, "bias_residual"),
    ] {
        // One row or a reduction of one is no matmul after lowering.
        let expect_packed = m > 1 && k > 1;
        check(
            &case_text(batch, m, k, n, epi, 1e-5),
            &CONFIGS,
            expect_packed,
        );
    }
}

/// Several column panels (256 KB of packed B each), row tails and a bias + gelu
/// epilogue at MiniLM's FFN size.
#[test]
fn packed_minilm_ffn_shape_matches_interpreter() {
    check(
        &case_text(&[], 128 + 3, 384, 1536, "bias_gelu", 1e-4),
        &CONFIGS[..2],
        true,
    );
}

/// The kernel called directly on uneven ranges of its parallel axis: when that is the
/// columns, blocks start inside a panel of packed B.
#[test]
fn packed_matmul_on_split_ranges() {
    for (m, k, n) in [(5, 70, 301), (40, 33, 77), (3, 20, 1000), (7, 500, 301)] {
        let text = case_text(&[], m, k, n, "bias_residual", 1e-5);
        let g = harness::parse_corpus(&text)[0].graph();
        let p = smelt_lower::lower(&g).expect("lower");
        assert_eq!(p.kernels.len(), 1, "{p}");
        let kern = &p.kernels[0];
        let axis = kern.schedule.parallel_axis.unwrap_or(0);
        let extent = kern.loops[axis].extent.as_known().unwrap() as i64;
        let cases = harness::parse_corpus(&text);
        let set = &cases[0].input_sets(&g)[0];
        let want = harness::interpret(&g, &set.tensors).expect("interpreter");
        let x = set.tensors[0].to_f64_vec().unwrap();
        let r = set.tensors[1].to_f64_vec().unwrap();
        let x: Vec<f32> = x.iter().map(|v| *v as f32).collect();
        let r: Vec<f32> = r.iter().map(|v| *v as f32).collect();
        let mut out = vec![f32::NAN; m * n];
        let jit = compile_jit(&p, &Options::default()).expect("compile_jit");
        let mut bases: Vec<*mut u8> = vec![std::ptr::null_mut(); p.buffers.len()];
        bases[p.inputs[0].0 as usize] = x.as_ptr() as *mut u8;
        bases[p.inputs[1].0 as usize] = r.as_ptr() as *mut u8;
        bases[p.outputs[0].0 as usize] = out.as_mut_ptr() as *mut u8;
        // Constants: the runtime's executable points their buffers at the data.
        let exec_bases = constant_bases(&p);
        for (i, b) in exec_bases {
            bases[i] = b;
        }
        let mut cuts: Vec<i64> = if kern.schedule.parallel_axis.is_some() {
            vec![
                0,
                1,
                extent.min(19),
                extent.min(34),
                extent.min(299),
                extent,
            ]
        } else {
            vec![0, extent]
        };
        cuts.dedup();
        for w in cuts.windows(2) {
            // SAFETY: every buffer of the program has a base of its size (the single
            // kernel reads x, r and the constants, writes out) and the range lies
            // inside the parallel axis.
            unsafe { (jit.kernels[0])(bases.as_ptr(), [0i64].as_ptr(), w[0], w[1]) };
        }
        let got = smelt_ir::Tensor::from_vec(vec![m, n], out).unwrap();
        harness::compare(&want, &[got], 1e-5)
            .unwrap_or_else(|e| panic!("{m}x{k}x{n}, axis {axis}, cuts {cuts:?}: {e}"));
    }
}

/// Base addresses of the program's constant buffers (leaked: the test owns them for
/// the process's life).
fn constant_bases(p: &smelt_lower::KernelProgram) -> Vec<(usize, *mut u8)> {
    let mut out = vec![];
    for (i, b) in p.buffers.iter().enumerate() {
        if let smelt_lower::BufferKind::Constant { data, .. } = &b.kind {
            if let Some(plain) = data.as_plain() {
                let bytes: &'static mut [u8] = plain.bytes().to_vec().leak();
                out.push((i, bytes.as_mut_ptr()));
            }
        }
    }
    out
}

/// The AVX-512 variant (two `<16 x float>` per row, panels of 32 columns): only
/// emitted and assembled, the host may lack AVX-512.
#[test]
fn packed_avx512_emits_and_assembles() {
    let opts = Options {
        cpu: Some("skylake-avx512".into()),
        features: Some("+avx512f,+avx512vl,+avx512bw,+avx512dq,+avx2,+avx,+fma,+f16c".into()),
        ..Options::default()
    };
    let text = case_text(&[], 13, 100, 77, "bias_gelu", 1e-5);
    let g = harness::parse_corpus(&text)[0].graph();
    let p = smelt_lower::lower(&g).expect("lower");
    let ir = emit_ir(&p, &opts).expect("emit_ir");
    assert!(ir.contains("_packed_b"), "{ir}");
    assert!(ir.contains("<16 x float>"), "{ir}");
    let obj = compile_object(&p, "avx512", &opts).expect("compile_object");
    assert!(obj.starts_with(b"\x7fELF"));
}

/// The AVX2 micro-kernel's loop: 12 accumulators, fused multiply-adds on `<8 x float>`.
#[test]
fn packed_avx2_ir_uses_fma_vectors() {
    let opts = Options {
        cpu: Some("haswell".into()),
        features: Some("+avx2,+avx,+fma".into()),
        ..Options::default()
    };
    let text = case_text(&[], 12, 64, 64, "plain", 1e-5);
    let g = harness::parse_corpus(&text)[0].graph();
    let p = smelt_lower::lower(&g).expect("lower");
    let ir = emit_ir(&p, &opts).expect("emit_ir");
    assert!(ir.contains("_packed_b"), "{ir}");
    assert!(
        ir.contains("<8 x float> @llvm.fmuladd.v8f32") || ir.contains("@llvm.fma.v8f32"),
        "{ir}"
    );
}

/// Without AVX the micro-kernel uses `<4 x float>` (panels of 8 columns); run on the
/// host, which has SSE2 like every x86-64.
#[test]
fn packed_sse_matches_interpreter() {
    let base = Options {
        cpu: Some("x86-64".into()),
        features: Some("+sse2".into()),
        ..Options::default()
    };
    for (m, k, n) in [(13, 129, 77), (7, 1100, 45)] {
        check_with(
            &case_text(&[], m, k, n, "bias_gelu", 1e-5),
            &CONFIGS[..2],
            true,
            &base,
        );
    }
}

/// Rows of symbolic size (the runtime binds them): 1, 5, 6 and 131 rows.
#[test]
fn packed_symbolic_rows_match_interpreter() {
    let (k, n) = (40, 50);
    let mut text = String::from(
        "// CASE: packed symbolic rows\n// DIMS: n=1\n// DIMS: n=5\n// DIMS: n=6\n\
         // DIMS: n=131\n",
    );
    text.push_str(&format!(
        "graph @t(%x: f32[?n, {k}]) -> (f32[?n, {n}]) {{\n"
    ));
    text.push_str(&constant("w", &[k, n], 4));
    text.push_str(&constant("b", &[n], 5));
    text.push_str(&format!(
        "  %0 = matmul(%x, %w) : f32[?n, {n}]\n  %1 = add(%0, %b) : f32[?n, {n}]\n\
         %2 = relu(%1) : f32[?n, {n}]\n  return %2\n}}\n"
    ));
    check(&text, &CONFIGS, true);
}
