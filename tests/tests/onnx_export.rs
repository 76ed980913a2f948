//! ONNX export of the shared real models: the exported file re-imports to the same
//! textual IR, and ONNX Runtime computes the same outputs from it as from the original.
//!
//! The ONNX Runtime comparisons call `scripts/ort_compare.py`, which needs python3 with
//! numpy and onnxruntime (`scripts/setup.sh` installs them). Without them these tests
//! fail, by design: CI runs `setup.sh` first.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use smelt::ir::text::print;
use smelt::onnx::ExportOptions;
use smelt::{Driver, Model};
use smelt_tests::models_dir;

const MINILM: &str = "minilm/minilm_l6_v2.onnx";
const DIGITS: [&str; 3] = [
    "digits/digits_cnn.onnx",
    "digits/digits_cnn_int8_qdq.onnx",
    "digits/digits_cnn_int8_qdq_pc.onnx",
];

/// A fresh, empty folder under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "smelt-onnx-export-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn load(rel: &str) -> Model {
    let p = models_dir().join(rel);
    Model::from_onnx(&p).unwrap_or_else(|e| panic!("importing {}: {e}", p.display()))
}

/// Export `model` into a fresh folder as `<stem>.onnx`; the folder lives as long as the
/// returned guard.
fn export(model: &Model, tag: &str, options: &ExportOptions) -> (TempDir, PathBuf) {
    let stem = model
        .path
        .file_stem()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let dir = TempDir::new(tag);
    let path = dir.join(&format!("{stem}.onnx"));
    model
        .save_onnx_with(&path, options)
        .unwrap_or_else(|e| panic!("exporting {}: {e}", model.path.display()));
    (dir, path)
}

/// The max abs differences `scripts/ort_compare.py` reports: `outputs` (original vs
/// exported) and `reference` (exported vs the `--ref` files).
struct Diffs {
    outputs: BTreeMap<String, f64>,
    reference: BTreeMap<String, f64>,
}

fn ort_compare(
    original: &Path,
    exported: &Path,
    inputs: &[(&str, PathBuf)],
    refs: &[(&str, PathBuf)],
) -> Diffs {
    ort_compare_at(original, exported, inputs, refs, "all")
}

/// [`ort_compare`] at an ONNX Runtime graph optimization level.
fn ort_compare_at(
    original: &Path,
    exported: &Path,
    inputs: &[(&str, PathBuf)],
    refs: &[(&str, PathBuf)],
    level: &str,
) -> Diffs {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/ort_compare.py");
    let mut cmd = Command::new("python3");
    cmd.arg(&script).arg(original).arg(exported);
    cmd.arg(format!("--opt-level={level}"));
    for (name, file) in inputs {
        cmd.arg(format!("{name}={}", file.display()));
    }
    for (name, file) in refs {
        cmd.arg("--ref").arg(format!("{name}={}", file.display()));
    }
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("cannot run python3 ({e}); install Python 3 and run scripts/setup.sh")
    });
    let stderr = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(0) => {}
        Some(3) => panic!(
            "onnxruntime or numpy is missing; run scripts/setup.sh to install them:\n{stderr}"
        ),
        _ => panic!("scripts/ort_compare.py failed ({}):\n{stderr}", out.status),
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json = Json::parse(stdout.trim())
        .unwrap_or_else(|e| panic!("unreadable ort_compare output ({e}): {stdout}"));
    let section = |key: &str| -> BTreeMap<String, f64> {
        match json.get(key) {
            Some(Json::Object(m)) => m
                .iter()
                .map(|(k, v)| match v {
                    Json::Number(x) => (k.clone(), *x),
                    other => panic!("`{key}.{k}` is not a number: {other:?}"),
                })
                .collect(),
            other => panic!("no object `{key}` in {stdout}: {other:?}"),
        }
    };
    Diffs {
        outputs: section("outputs"),
        reference: section("reference"),
    }
}

fn assert_within(what: &str, diffs: &BTreeMap<String, f64>, expected: &[&str], tol: f64) {
    let names: Vec<&str> = diffs.keys().map(String::as_str).collect();
    let mut want = expected.to_vec();
    want.sort_unstable();
    assert_eq!(names, want, "{what}: compared outputs");
    for (name, d) in diffs {
        eprintln!("{what}: {name} max abs diff {d:.3e}");
        assert!(*d <= tol, "{what}: {name} max abs diff {d} > {tol}");
    }
}

fn minilm_inputs(case: &str) -> Vec<(&'static str, PathBuf)> {
    let dir = models_dir().join("minilm/reference");
    ["input_ids", "attention_mask", "token_type_ids"]
        .into_iter()
        .map(|n| (n, dir.join(format!("{case}.{n}.npy"))))
        .collect()
}

#[test]
fn shared_models_reimport_to_the_same_ir() {
    for rel in std::iter::once(MINILM).chain(DIGITS) {
        let model = load(rel);
        // Through a file with external data (the default 1 MiB threshold moves MiniLM's
        // weight matrices out) ...
        let (_dir, path) = export(&model, "text", &ExportOptions::default());
        let back = Model::from_onnx(&path).unwrap_or_else(|e| panic!("re-importing {rel}: {e}"));
        assert_eq!(print(&back.graph), print(&model.graph), "{rel}: via file");
        // ... and in memory, everything inline.
        let bytes =
            smelt::onnx::export_model_bytes(&model.graph, &ExportOptions::default()).unwrap();
        let back = smelt::onnx::import_bytes(bytes.into(), None).unwrap();
        assert_eq!(print(&back), print(&model.graph), "{rel}: in memory");
    }
}

#[test]
fn minilm_export_matches_onnx_runtime() {
    let model = load(MINILM);
    let (_dir, exported) = export(&model, "minilm", &ExportOptions::default());
    assert!(
        exported.with_extension("data").exists(),
        "no external data written"
    );
    for case in ["b4_s16", "b4_s128"] {
        let d = ort_compare(&model.path, &exported, &minilm_inputs(case), &[]);
        assert_within(
            &format!("minilm {case}"),
            &d.outputs,
            &["last_hidden_state", "sentence_embedding"],
            1e-5,
        );
    }
}

#[test]
fn digits_exports_match_onnx_runtime() {
    let x = models_dir().join("digits/X_test.npy");
    for rel in DIGITS {
        let model = load(rel);
        let (_dir, exported) = export(&model, "digits", &ExportOptions::default());
        let d = ort_compare(&model.path, &exported, &[("input", x.clone())], &[]);
        assert_within(rel, &d.outputs, &["logits"], 1e-5);
    }
}

#[test]
fn optimized_minilm_export_matches_the_reference() {
    let mut model = load(MINILM);
    let ops_before = model.graph.op_count();
    Driver::new()
        .run_pipeline(&mut model.graph, "fold-constants,cse,canonicalize,dce")
        .unwrap();
    assert!(
        model.graph.op_count() < ops_before,
        "the pipeline changed nothing"
    );
    let (_dir, exported) = export(&model, "minilm-opt", &ExportOptions::default());
    let back = Model::from_onnx(&exported).unwrap();
    assert_eq!(print(&back.graph), print(&model.graph));
    let refs = models_dir().join("minilm/reference");
    for case in ["b4_s16", "b4_s128"] {
        let reference = [
            (
                "last_hidden_state",
                refs.join(format!("{case}.last_hidden_state.npy")),
            ),
            (
                "sentence_embedding",
                refs.join(format!("{case}.sentence_embedding.npy")),
            ),
        ];
        let d = ort_compare(&model.path, &exported, &minilm_inputs(case), &reference);
        let outs = ["last_hidden_state", "sentence_embedding"];
        assert_within(
            &format!("optimized minilm {case} vs original"),
            &d.outputs,
            &outs,
            1e-4,
        );
        assert_within(
            &format!("optimized minilm {case} vs reference"),
            &d.reference,
            &outs,
            1e-4,
        );
    }
}

/// A blockwise-quantized MiniLM exports as standard QDQ (int8 codes, f16 scales,
/// blocked DequantizeLinear for the weights; per-axis Q/DQ for calibrated activations)
/// that ONNX Runtime runs and that agrees with smelt's interpreter on the quantized
/// graph.
#[test]
fn quantized_minilm_exports_as_qdq_that_onnx_runtime_runs() {
    for (tag, pipeline, calibrate) in [
        ("w8", "blockwise-quant{weights=8,block=64,scale=f16}", false),
        (
            "w4",
            "blockwise-quant{weights=4,block=32,scale=f16,ops=matmul}",
            false,
        ),
        (
            "w8a8",
            "blockwise-quant{weights=8,activations=8,block=64,scale=f16}",
            true,
        ),
    ] {
        let mut model = load(MINILM);
        let mut cx = if calibrate {
            let inputs: Vec<(String, smelt::Tensor)> = minilm_inputs("b4_s16")
                .into_iter()
                .map(|(n, p)| (n.to_string(), smelt::ir::npy::read_npy_file(&p).unwrap()))
                .collect();
            smelt::PassContext::with_calibration(
                vec![inputs],
                std::sync::Arc::new(smelt::InterpEvaluator),
            )
        } else {
            smelt::PassContext::default()
        };
        Driver::new()
            .pass_manager(pipeline)
            .unwrap()
            .run(&mut model.graph, &mut cx)
            .unwrap();
        let (dir, exported) = export(&model, &format!("minilm-{tag}"), &ExportOptions::default());
        // smelt's own outputs for the quantized graph are the reference ORT must meet.
        let inputs: Vec<(&str, smelt::Tensor)> = minilm_inputs("b4_s16")
            .iter()
            .map(|(n, p)| (*n, smelt::ir::npy::read_npy_file(p).unwrap()))
            .collect();
        let outs = model.run_interp(&inputs).unwrap();
        let mut refs = vec![];
        for (name, t) in &outs {
            let p = dir.join(&format!("{name}.smelt.npy"));
            smelt::ir::npy::write_npy_file(&p, t).unwrap();
            refs.push((name.as_str(), p));
        }
        let exact = ort_compare_at(
            &model.path,
            &exported,
            &minilm_inputs("b4_s16"),
            &refs,
            "disable",
        );
        // The exported graph itself: ONNX Runtime without graph rewrites computes what
        // smelt computes (int8 rounding of activations may flip an occasional code).
        let tol = if calibrate { 1e-3 } else { 1e-4 };
        assert_within(
            &format!("quantized minilm {tag}: ONNX Runtime (no graph optimization) vs smelt"),
            &exact.reference,
            &["last_hidden_state", "sentence_embedding"],
            tol,
        );
        // With its default optimizations ONNX Runtime fuses DequantizeLinear + MatMul
        // into MatMulNBits, which computes differently; the embeddings stay close.
        let d = ort_compare(&model.path, &exported, &minilm_inputs("b4_s16"), &refs);
        for (name, diff) in &d.reference {
            eprintln!("quantized minilm {tag}: ONNX Runtime (all optimizations) vs smelt: {name} {diff:.3e}");
        }
        let emb = d.reference["sentence_embedding"];
        assert!(
            emb <= 1e-2,
            "{tag}: optimized ONNX Runtime sentence_embedding diff {emb}"
        );
    }
}

/// Just enough JSON for `ort_compare.py`'s output: objects, strings, numbers
/// (`NaN` and `Infinity` included, as Python writes them).
#[derive(Debug)]
enum Json {
    Object(BTreeMap<String, Json>),
    Number(f64),
    /// A string value (its text is not needed).
    Str,
}

impl Json {
    fn parse(s: &str) -> Result<Json, String> {
        let mut p = JsonParser {
            s: s.as_bytes(),
            pos: 0,
        };
        let v = p.value()?;
        p.ws();
        if p.pos != p.s.len() {
            return Err(format!("trailing text at {}", p.pos));
        }
        Ok(v)
    }

    fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(m) => m.get(key),
            _ => None,
        }
    }
}

struct JsonParser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl JsonParser<'_> {
    fn ws(&mut self) {
        while self.s.get(self.pos).is_some_and(u8::is_ascii_whitespace) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        let hit = self.s.get(self.pos) == Some(&c);
        if hit {
            self.pos += 1;
        }
        hit
    }

    fn value(&mut self) -> Result<Json, String> {
        self.ws();
        match self.s.get(self.pos) {
            Some(b'{') => self.object(),
            Some(b'"') => self.string().map(|_| Json::Str),
            Some(_) => self.number(),
            None => Err("unexpected end".into()),
        }
    }

    fn object(&mut self) -> Result<Json, String> {
        self.eat(b'{');
        let mut m = BTreeMap::new();
        if self.eat(b'}') {
            return Ok(Json::Object(m));
        }
        loop {
            self.ws();
            let k = self.string()?;
            if !self.eat(b':') {
                return Err(format!("expected `:` at {}", self.pos));
            }
            m.insert(k, self.value()?);
            if self.eat(b'}') {
                return Ok(Json::Object(m));
            }
            if !self.eat(b',') {
                return Err(format!("expected `,` or `}}` at {}", self.pos));
            }
        }
    }

    fn string(&mut self) -> Result<String, String> {
        if self.s.get(self.pos) != Some(&b'"') {
            return Err(format!("expected a string at {}", self.pos));
        }
        self.pos += 1;
        let mut out = Vec::new();
        while let Some(&c) = self.s.get(self.pos) {
            self.pos += 1;
            match c {
                b'"' => return String::from_utf8(out).map_err(|e| e.to_string()),
                b'\\' => {
                    let e = *self.s.get(self.pos).ok_or("unterminated escape")?;
                    self.pos += 1;
                    match e {
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'u' => return Err("\\u escapes are not expected here".into()),
                        other => out.push(other),
                    }
                }
                c => out.push(c),
            }
        }
        Err("unterminated string".into())
    }

    fn number(&mut self) -> Result<Json, String> {
        let start = self.pos;
        while self
            .s
            .get(self.pos)
            .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'+' | b'.'))
        {
            self.pos += 1;
        }
        let text = std::str::from_utf8(&self.s[start..self.pos]).map_err(|e| e.to_string())?;
        let v = match text {
            "NaN" => f64::NAN,
            "Infinity" => f64::INFINITY,
            "-Infinity" => f64::NEG_INFINITY,
            t => t.parse().map_err(|_| format!("not a number: `{t}`"))?,
        };
        Ok(Json::Number(v))
    }
}
