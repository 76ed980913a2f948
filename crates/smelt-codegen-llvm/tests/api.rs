//! The outputs besides the JIT: object files and optimised IR (proof that the target
//! attributes reach the vectorisers), kernels called directly on split parallel ranges,
//! and refusals of unsupported dtypes.

use smelt_codegen_llvm::{compile_jit, compile_object, emit_ir, host_cpu, CodegenError, Options};
use smelt_ir::text::parse;
use smelt_lower::{lower, KernelProgram};

fn program(text: &str) -> KernelProgram {
    let mut g = parse(text).unwrap_or_else(|e| panic!("parse: {e}\n{text}"));
    g.infer_types().unwrap_or_else(|e| panic!("infer: {e}"));
    lower(&g).unwrap_or_else(|e| panic!("lower: {e}"))
}

const ADD: &str = "graph @t(%a: f32[1024], %b: f32[1024]) -> (f32[1024]) {
  %0 = add(%a, %b) : f32[1024]
  return %0
}";

const SUM_ROWS: &str = "graph @t(%a: f32[64, 257]) -> (f32[64, 1]) {
  %ax = const i64[1] [1]
  %0 = reduce_sum(%a, %ax) : f32[64, 1]
  return %0
}";

fn host_has(feature: &str) -> bool {
    host_cpu().1.split(',').any(|f| f == format!("+{feature}"))
}

fn print_ir_if_asked(ir: &str) {
    if std::env::var_os("SMELT_PRINT_IR").is_some() {
        eprintln!("{ir}");
    }
}

#[test]
fn object_is_elf_with_kernel_symbols() {
    let p = program(ADD);
    let obj = compile_object(&p, "mymodel", &Options::default()).expect("compile_object");
    assert!(obj.starts_with(b"\x7fELF"), "not an ELF file");
    // ET_REL: a relocatable object.
    assert_eq!(u16::from_le_bytes([obj[16], obj[17]]), 1, "not ET_REL");
    for i in 0..p.kernels.len() {
        let sym = format!("mymodel_k{i}\0");
        assert!(
            obj.windows(sym.len()).any(|w| w == sym.as_bytes()),
            "symbol {sym} missing from the object"
        );
    }
}

#[test]
fn elementwise_ir_uses_host_vectors() {
    let ir = emit_ir(&program(ADD), &Options::default()).expect("emit_ir");
    print_ir_if_asked(&ir);
    assert!(
        ir.contains("\"target-cpu\""),
        "no target-cpu attribute:\n{ir}"
    );
    if host_has("avx512f") {
        assert!(
            ir.contains("<16 x float>") || ir.contains("<8 x float>"),
            "no 512/256-bit vectors on an AVX-512 host:\n{ir}"
        );
    } else if host_has("avx2") {
        assert!(
            ir.contains("<8 x float>"),
            "no 256-bit vectors on an AVX2 host:\n{ir}"
        );
    } else {
        eprintln!("host has neither AVX2 nor AVX-512; vector width not checked");
    }
}

#[test]
fn float_reduction_vectorises_with_reassoc() {
    let ir = emit_ir(&program(SUM_ROWS), &Options::default()).expect("emit_ir");
    print_ir_if_asked(&ir);
    assert!(
        ir.contains("fadd reassoc contract"),
        "no reassociable adds:\n{ir}"
    );
    if host_has("avx2") {
        assert!(
            ir.contains("fadd reassoc contract <8 x float>")
                || ir.contains("fadd reassoc contract <16 x float>"),
            "the row sum did not vectorise:\n{ir}"
        );
    }
}

#[test]
fn explicit_cpu_without_avx_gives_narrow_vectors() {
    let opts = Options {
        cpu: Some("x86-64".into()),
        features: Some("+sse2".into()),
        ..Options::default()
    };
    let ir = emit_ir(&program(ADD), &opts).expect("emit_ir");
    assert!(
        !ir.contains("<8 x float>"),
        "256-bit vectors without AVX:\n{ir}"
    );
    assert!(
        ir.contains("\"target-cpu\"=\"x86-64\""),
        "cpu option ignored:\n{ir}"
    );
}

/// Code for another CPU than the host's: only emitted, never run.
#[test]
fn avx512_target_emits_and_assembles() {
    let opts = Options {
        cpu: Some("skylake-avx512".into()),
        features: Some("+avx512f,+avx512vl,+avx512bw,+avx512dq,+avx2,+avx,+fma,+f16c".into()),
        ..Options::default()
    };
    let mm = program(
        "graph @t(%a: f32[64, 96], %b: f32[96, 128]) -> (f32[64, 128]) {
  %0 = matmul(%a, %b) : f32[64, 128]
  return %0
}",
    );
    let ir = emit_ir(&mm, &opts).expect("emit_ir");
    assert!(
        ir.contains("<8 x float>") || ir.contains("<16 x float>"),
        "{ir}"
    );
    let obj = compile_object(&mm, "avx512", &opts).expect("compile_object");
    assert!(obj.starts_with(b"\x7fELF"));
}

/// Call each kernel of a one-kernel program directly, its parallel axis split in
/// uneven pieces, and check the result.
#[test]
fn kernels_honour_split_parallel_ranges() {
    let p = program(
        "graph @t(%a: f32[37, 19], %b: f32[19]) -> (f32[37, 19]) {
  %0 = mul(%a, %b) : f32[37, 19]
  return %0
}",
    );
    assert_eq!(p.kernels.len(), 1, "{p}");
    let k = &p.kernels[0];
    let axis = k.schedule.parallel_axis.expect("a parallel axis");
    let extent = k.loops[axis].extent.as_known().unwrap() as i64;
    let a: Vec<f32> = (0..37 * 19).map(|i| i as f32 * 0.25 - 3.0).collect();
    let b: Vec<f32> = (0..19).map(|i| 1.5 - i as f32 * 0.1).collect();
    let mut out = vec![f32::NAN; 37 * 19];
    let mut bases: Vec<*mut u8> = vec![std::ptr::null_mut(); p.buffers.len()];
    bases[p.inputs[0].0 as usize] = a.as_ptr() as *mut u8;
    bases[p.inputs[1].0 as usize] = b.as_ptr() as *mut u8;
    bases[p.outputs[0].0 as usize] = out.as_mut_ptr() as *mut u8;
    let jit = compile_jit(&p, &Options::default()).expect("compile_jit");
    let cuts = [0, 1, extent / 3, extent / 3 + 2, extent];
    for w in cuts.windows(2) {
        // SAFETY: every buffer the kernel touches is bound to storage of its size, the
        // program has no named dims, and the ranges lie inside the parallel extent.
        unsafe { (jit.kernels[0])(bases.as_ptr(), [0i64].as_ptr(), w[0], w[1]) };
    }
    for i in 0..37 {
        for j in 0..19 {
            assert_eq!(out[i * 19 + j], a[i * 19 + j] * b[j], "at [{i}, {j}]");
        }
    }
}

#[test]
fn jit_program_is_send_and_sync() {
    fn check<T: Send + Sync + 'static>() {}
    check::<smelt_codegen_llvm::JitProgram>();
}

#[test]
fn unsupported_dtype_names_the_kernel() {
    let mut g = parse(
        "graph @t(%a: f16[5], %b: f16[5]) -> (f16[5]) {
  %0 = add(%a, %b) : f16[5]
  return %0
}",
    )
    .unwrap();
    g.infer_types().unwrap();
    let Ok(p) = lower(&g) else {
        eprintln!("lowering refuses f16 already; nothing to check");
        return;
    };
    match compile_jit(&p, &Options::default()) {
        Err(CodegenError::Unsupported { kernel, message }) => {
            assert_eq!(kernel, p.kernels[0].name);
            assert!(message.contains("f16"), "{message}");
        }
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("f16 compiled"),
    }
}

/// A matmul with a fused epilogue, run as the blocked nest (full blocks of the
/// innermost output loop and a partial one) on uneven parallel ranges.
#[test]
fn blocked_matmul_on_split_ranges() {
    // The parallel axis is the rows here, the columns (blocked) in the second shape.
    blocked_matmul(5, 70, 77);
    blocked_matmul(3, 40, 301);
}

fn blocked_matmul(m: usize, k: usize, n: usize) {
    let p = program(&format!(
        "graph @t(%a: f32[{m}, {k}], %b: f32[{k}, {n}], %c: f32[{n}]) -> (f32[{m}, {n}]) {{
  %0 = matmul(%a, %b) : f32[{m}, {n}]
  %1 = add(%0, %c) : f32[{m}, {n}]
  %2 = relu(%1) : f32[{m}, {n}]
  return %2
}}"
    ));
    assert_eq!(p.kernels.len(), 1, "{p}");
    let kern = &p.kernels[0];
    let axis = kern.schedule.parallel_axis.unwrap_or(0);
    let extent = kern.loops[axis].extent.as_known().unwrap() as i64;
    let a: Vec<f32> = (0..m * k)
        .map(|i| ((i * 7) % 13) as f32 * 0.1 - 0.6)
        .collect();
    let b: Vec<f32> = (0..k * n)
        .map(|i| ((i * 5) % 11) as f32 * 0.1 - 0.5)
        .collect();
    let c: Vec<f32> = (0..n).map(|i| (i % 3) as f32 - 1.0).collect();
    let mut out = vec![f32::NAN; m * n];
    let mut bases: Vec<*mut u8> = vec![std::ptr::null_mut(); p.buffers.len()];
    bases[p.inputs[0].0 as usize] = a.as_ptr() as *mut u8;
    bases[p.inputs[1].0 as usize] = b.as_ptr() as *mut u8;
    bases[p.inputs[2].0 as usize] = c.as_ptr() as *mut u8;
    bases[p.outputs[0].0 as usize] = out.as_mut_ptr() as *mut u8;
    let jit = compile_jit(&p, &Options::default()).expect("compile_jit");
    let mut cuts: Vec<i64> = if kern.schedule.parallel_axis.is_some() {
        vec![
            0,
            1,
            extent.min(34),
            extent.min(101),
            extent.min(299),
            extent,
        ]
    } else {
        vec![0, extent]
    };
    cuts.dedup();
    eprintln!("parallel axis {axis} of extent {extent}, cuts {cuts:?}");
    for w in cuts.windows(2) {
        // SAFETY: as in `kernels_honour_split_parallel_ranges`.
        unsafe { (jit.kernels[0])(bases.as_ptr(), [0i64].as_ptr(), w[0], w[1]) };
    }
    for i in 0..m {
        for j in 0..n {
            let s: f64 = (0..k)
                .map(|x| a[i * k + x] as f64 * b[x * n + j] as f64)
                .sum();
            let want = (s + c[j] as f64).max(0.0);
            let got = out[i * n + j] as f64;
            assert!(
                (got - want).abs() <= 1e-5 * (1.0 + want.abs()),
                "at [{i}, {j}]: {got} vs {want}"
            );
        }
    }
}

#[test]
fn matmul_ir_vectorises_along_columns() {
    let p = program(
        "graph @t(%a: f32[64, 96], %b: f32[96, 128]) -> (f32[64, 128]) {
  %0 = matmul(%a, %b) : f32[64, 128]
  return %0
}",
    );
    let ir = emit_ir(&p, &Options::default()).expect("emit_ir");
    print_ir_if_asked(&ir);
    assert!(
        !ir.contains("masked.gather"),
        "matmul reads B with gathers:\n{ir}"
    );
    if host_has("avx2") {
        assert!(ir.contains("fmul contract <8 x float>") || ir.contains("<16 x float>"));
    }
}

/// Several threads compile at once; each program is used and dropped on another thread
/// than the one that compiled it.
#[test]
fn concurrent_compiles_and_cross_thread_drop() {
    let p = program(ADD);
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let p = p.clone();
            std::thread::spawn(move || compile_jit(&p, &Options::default()).expect("compile_jit"))
        })
        .collect();
    let jits: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let a: Vec<f32> = (0..1024).map(|i| i as f32).collect();
    let b: Vec<f32> = (0..1024).map(|i| 2.0 * i as f32).collect();
    std::thread::scope(|s| {
        for jit in jits {
            let (a, b, p) = (&a, &b, &p);
            s.spawn(move || {
                let mut out = vec![0f32; 1024];
                let mut bases: Vec<*mut u8> = vec![std::ptr::null_mut(); p.buffers.len()];
                bases[p.inputs[0].0 as usize] = a.as_ptr() as *mut u8;
                bases[p.inputs[1].0 as usize] = b.as_ptr() as *mut u8;
                bases[p.outputs[0].0 as usize] = out.as_mut_ptr() as *mut u8;
                let k = &p.kernels[0];
                let hi = match k.schedule.parallel_axis {
                    Some(ax) => k.loops[ax].extent.as_known().unwrap() as i64,
                    None => 0,
                };
                // SAFETY: every buffer the kernel touches is bound to storage of its size.
                unsafe { (jit.kernels[0])(bases.as_ptr(), [0i64].as_ptr(), 0, hi) };
                assert!(out.iter().enumerate().all(|(i, &x)| x == 3.0 * i as f32));
                drop(jit);
            });
        }
    });
}
