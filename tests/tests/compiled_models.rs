//! The real models compiled with Cranelift and run by the runtime, against ONNX
//! Runtime's reference outputs: MiniLM at seq 16 and 128 (`last_hidden_state` ≤ 1e-4,
//! `sentence_embedding` ≤ 1e-5) and the digits CNN (the same 540 argmaxes).

use smelt::{Backend, CompileOptions, Compiled, Model, Tensor};
use smelt_tests::{argmax_rows, max_abs_diff_f32 as max_abs_diff, model_npy as npy, models_dir};

fn compiled_with(rel: &str, threads: usize, backend: Backend) -> Compiled {
    let model = Model::from_onnx(models_dir().join(rel)).unwrap();
    Compiled::new(
        model.graph,
        CompileOptions {
            threads,
            backend,
            ..CompileOptions::default()
        },
    )
    .unwrap()
}

/// The compiled backends this build has.
fn backends() -> Vec<Backend> {
    [Backend::Cranelift, Backend::Llvm]
        .into_iter()
        .filter(|b| b.available())
        .collect()
}

#[test]
fn minilm_compiled_matches_onnx_runtime() {
    for backend in backends() {
        minilm_case(backend);
    }
}

fn minilm_case(backend: Backend) {
    let model = compiled_with("minilm/minilm_l6_v2.onnx", 2, backend);
    for case in ["b4_s16", "b4_s128"] {
        let dir = "minilm/reference";
        let inputs: Vec<(&str, Tensor)> = ["input_ids", "attention_mask", "token_type_ids"]
            .into_iter()
            .map(|n| (n, npy(&format!("{dir}/{case}.{n}.npy"))))
            .collect();
        let outs = model.run(&inputs).unwrap();
        let hidden = max_abs_diff(
            &outs[0].1,
            &npy(&format!("{dir}/{case}.last_hidden_state.npy")),
        );
        let emb = max_abs_diff(
            &outs[1].1,
            &npy(&format!("{dir}/{case}.sentence_embedding.npy")),
        );
        eprintln!("{backend} {case}: last_hidden_state {hidden:.2e}, sentence_embedding {emb:.2e}");
        assert!(
            hidden <= 1e-4,
            "{case}: last_hidden_state max abs diff {hidden}"
        );
        assert!(emb <= 1e-5, "{case}: sentence_embedding max abs diff {emb}");
    }
}

#[test]
fn digits_cnn_compiled_gives_the_same_argmaxes() {
    let x = npy("digits/X_test.npy");
    let reference = npy("digits/logits_test.ort_fp32.npy");
    for (threads, backend) in backends().into_iter().flat_map(|b| [(1, b), (2, b)]) {
        let model = compiled_with("digits/digits_cnn.onnx", threads, backend);
        let outs = model.run_ordered(std::slice::from_ref(&x)).unwrap();
        assert_eq!(outs[0].1.shape(), [540, 10]);
        assert_eq!(argmax_rows(&outs[0].1), argmax_rows(&reference));
        assert!(max_abs_diff(&outs[0].1, &reference) < 1e-3);
    }
}
