//! Ahead-of-time artifacts through the C ABI: `examples/c-api/smelt_run.c` is built
//! against a shared library (and an object file) compiled by smelt, run on .npy inputs,
//! and its outputs compared with the JIT-compiled model and the references.

use std::path::{Path, PathBuf};
use std::process::Command;

use smelt::aot::ArtifactKind;
use smelt::ir::npy::{read_npy_file, write_npy_file};
use smelt::{CompileOptions, Compiled, Model, Tensor};
use smelt_tests::models_dir;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("smelt-aot-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn example_source() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/c-api/smelt_run.c")
}

/// Build the C runner against `artifact` (its header is `model.h` beside it).
fn build_runner(dir: &Path, artifact: &Path) -> PathBuf {
    let exe = dir.join("smelt_run");
    let status = Command::new("cc")
        .args(["-O2", "-Wall", "-Werror", "-I"])
        .arg(dir)
        .arg(example_source())
        .arg(artifact)
        .args(["-lpthread", "-lm", "-o"])
        .arg(&exe)
        .arg(format!("-Wl,-rpath,{}", dir.display()))
        .status()
        .expect("running cc");
    assert!(status.success(), "building the C example failed");
    exe
}

/// Run the C runner on `inputs` and read its outputs back.
fn run_runner(exe: &Path, dir: &Path, inputs: &[Tensor], threads: usize) -> Vec<Tensor> {
    let mut args: Vec<String> = vec!["--threads".into(), threads.to_string()];
    for (i, t) in inputs.iter().enumerate() {
        let p = dir.join(format!("in{i}.npy"));
        write_npy_file(&p, t).unwrap();
        args.push(p.display().to_string());
    }
    let out_dir = dir.join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    args.push(out_dir.display().to_string());
    let out = Command::new(exe)
        .args(&args)
        .output()
        .expect("running the C example");
    assert!(
        out.status.success(),
        "C example failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let n = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("output "))
        .count();
    (0..n)
        .map(|i| read_npy_file(&out_dir.join(format!("{i}.npy"))).unwrap())
        .collect()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.shape(), b.shape());
    let (x, y) = (a.to_f64_vec().unwrap(), b.to_f64_vec().unwrap());
    x.iter()
        .zip(&y)
        .map(|(p, q)| (p - q).abs())
        .fold(0.0, f64::max)
}

/// Compile `model` for `inputs`' shapes as `kind`, run it from C with 1 and 2
/// threads, and return the C outputs beside the JIT's.
fn c_and_jit(
    model: &Model,
    inputs: &[Tensor],
    kind: ArtifactKind,
    name: &str,
) -> Vec<(Tensor, Tensor)> {
    c_and_jit_with(model, inputs, kind, name, smelt::Backend::Cranelift)
}

fn c_and_jit_with(
    model: &Model,
    inputs: &[Tensor],
    kind: ArtifactKind,
    name: &str,
    backend: smelt::Backend,
) -> Vec<(Tensor, Tensor)> {
    let dir = scratch(name);
    let opts = CompileOptions {
        backend,
        ..CompileOptions::default()
    };
    let compiled = Compiled::new(model.graph.clone(), opts).unwrap();
    let shapes: Vec<Vec<usize>> = inputs.iter().map(|t| t.shape().to_vec()).collect();
    let ext = if kind == ArtifactKind::Object {
        "o"
    } else {
        "so"
    };
    let artifact = dir.join(format!("model.{ext}"));
    compiled.compile_aot(&shapes, &artifact, kind).unwrap();
    let exe = build_runner(&dir, &artifact);
    let jit: Vec<Tensor> = compiled
        .run_ordered(inputs)
        .unwrap()
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    let c1 = run_runner(&exe, &dir, inputs, 1);
    let c2 = run_runner(&exe, &dir, inputs, 2);
    for (a, b) in c1.iter().zip(&c2) {
        assert_eq!(max_abs_diff(a, b), 0.0, "1 and 2 threads differ");
    }
    let _ = std::fs::remove_dir_all(&dir);
    c1.into_iter().zip(jit).collect()
}

#[test]
fn small_graph_runs_from_c_as_so_and_o() {
    let text = "graph @g(%x: f32[?n, 3]) -> (f32[?n, 2]) {\n  %w = const f32[3, 2] [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]\n  %b = const f32[2] [0.5, -0.5]\n  %h = matmul(%x, %w) : f32[?n, 2]\n  %y = add(%h, %b) : f32[?n, 2]\n  return %y\n}\n";
    let model = Model {
        graph: smelt::ir::text::parse(text).unwrap(),
        path: PathBuf::from("g.smelt"),
    };
    let x = Tensor::from_vec(vec![2, 3], vec![1.0f32, 0.0, 0.0, 0.0, 1.0, 1.0]).unwrap();
    for kind in [ArtifactKind::SharedLibrary, ArtifactKind::Object] {
        let outs = c_and_jit(
            &model,
            std::slice::from_ref(&x),
            kind,
            &format!("small-{kind:?}"),
        );
        assert_eq!(outs[0].0.to_vec::<f32>().unwrap(), vec![1.5, 1.5, 8.5, 9.5]);
        assert_eq!(max_abs_diff(&outs[0].0, &outs[0].1), 0.0);
    }
}

#[test]
fn minilm_runs_from_c() {
    let model = Model::from_onnx(models_dir().join("minilm/minilm_l6_v2.onnx")).unwrap();
    let dir = "minilm/reference";
    let npy = |n: &str| read_npy_file(&models_dir().join(format!("{dir}/b4_s16.{n}.npy"))).unwrap();
    let inputs: Vec<Tensor> = ["input_ids", "attention_mask", "token_type_ids"]
        .iter()
        .map(|n| npy(n))
        .collect();
    let outs = c_and_jit(&model, &inputs, ArtifactKind::SharedLibrary, "minilm");
    let hidden = max_abs_diff(&outs[0].0, &npy("last_hidden_state"));
    let emb = max_abs_diff(&outs[1].0, &npy("sentence_embedding"));
    eprintln!("C ABI vs ORT: last_hidden_state {hidden:.2e}, sentence_embedding {emb:.2e}");
    assert!(hidden <= 1e-4 && emb <= 1e-5);
    for (c, jit) in &outs {
        assert_eq!(
            max_abs_diff(c, jit),
            0.0,
            "the C artifact and the JIT differ"
        );
    }
}

#[test]
fn digits_cnn_runs_from_c() {
    let model = Model::from_onnx(models_dir().join("digits/digits_cnn.onnx")).unwrap();
    let x = read_npy_file(&models_dir().join("digits/X_test.npy")).unwrap();
    let reference = read_npy_file(&models_dir().join("digits/logits_test.ort_fp32.npy")).unwrap();
    let outs = c_and_jit(&model, &[x], ArtifactKind::SharedLibrary, "digits");
    assert!(max_abs_diff(&outs[0].0, &reference) < 1e-3);
    assert_eq!(max_abs_diff(&outs[0].0, &outs[0].1), 0.0);
}
