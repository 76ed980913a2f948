//! ONNX backend node-test conformance: every case of onnx's node test suite (1,884 cases
//! for onnx 1.23.2) imported with `smelt-onnx`, run by the reference interpreter and
//! compared with onnx's expected outputs.
//!
//! The cases come from `.cache/onnx-node-tests/` (written by
//! `scripts/gen_onnx_node_tests.py`, which this test runs itself when the folder is
//! missing). Each case ends in one status:
//!
//! - `pass`: every output of every data set matches;
//! - `import-fail`: the importer refused the model (unsupported op or opset, ...), the
//!   test data holds a type smelt cannot represent, or the case feeds or returns
//!   sequence/optional/map values, which the interpreter's tensor-only API cannot carry;
//! - `run-fail`: the interpreter returned an error, panicked (`panic: ...`; a panic on
//!   a model that imported is a bug and is listed separately) or ran past the per-case
//!   time limit;
//! - `mismatch`: an output's dtype, shape or values differ (the first differing element
//!   is named).
//!
//! Values are compared with `|got - expected| <= atol + rtol * |expected|` per element,
//! NaN matching NaN and infinities matching only themselves:
//!
//! | dtype                        | rtol  | atol  |
//! | ---------------------------- | ----- | ----- |
//! | f32, f64                     | 1e-3  | 1e-5  |
//! | f16                          | 1e-2  | 1e-3  |
//! | bf16                         | 2^-6  | 1e-3  |
//! | f8, f6, f4, e8m0 (decoded)   | exact | exact |
//! | integers, bool, strings      | exact | exact |
//!
//! The verdicts are checked against `tests/onnx-node-manifest.txt` (one line per case:
//! `<name> <status> [<reason>]`): the test fails when a case listed `pass` no longer
//! passes, and notes cases that pass but are not listed yet. With
//! `SMELT_UPDATE_MANIFEST=1` it rewrites the manifest from the run instead. With
//! `SMELT_ONNX_CASES=<substring>` only the matching cases run (and only their manifest
//! lines are checked or rewritten). See `docs/conformance.md`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prost::Message;
use smelt::onnx::proto::{type_proto, ModelProto, ValueInfoProto};
use smelt::{DType, Tensor};

/// The onnx release the cache and the manifest are for (pinned in `scripts/setup.sh`).
const ONNX_VERSION: &str = "1.23.2";
/// A case still running after this long is reported as `run-fail` and abandoned.
const CASE_TIME_LIMIT: Duration = Duration::from_secs(60);
/// Reasons in the manifest are cut to this many characters.
const REASON_CHARS: usize = 200;
const NON_TENSOR: &str = "non-tensor values (sequence/optional/map)";
/// Names of the worker threads (the panic hook keeps their panics quiet).
const WORKER_PREFIX: &str = "onnx-conformance-";

fn repo_root() -> PathBuf {
    let tests = Path::new(env!("CARGO_MANIFEST_DIR"));
    tests.parent().unwrap_or(tests).to_path_buf()
}

fn manifest_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("onnx-node-manifest.txt")
}

// ---------------------------------------------------------------------------------------
// Statuses and tolerances

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Status {
    Pass,
    ImportFail,
    RunFail,
    Mismatch,
}

impl Status {
    fn name(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::ImportFail => "import-fail",
            Status::RunFail => "run-fail",
            Status::Mismatch => "mismatch",
        }
    }

    fn parse(s: &str) -> Option<Status> {
        [
            Status::Pass,
            Status::ImportFail,
            Status::RunFail,
            Status::Mismatch,
        ]
        .into_iter()
        .find(|st| st.name() == s)
    }
}

/// `(rtol, atol)` for a float dtype; `None` means exact comparison.
fn tolerance(dtype: DType) -> Option<(f64, f64)> {
    match dtype {
        DType::F32 | DType::F64 => Some((1e-3, 1e-5)),
        DType::F16 => Some((1e-2, 1e-3)),
        DType::BF16 => Some((1.0 / 64.0, 1e-3)),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------
// One case

/// What the harness knows about a case before running it.
struct Case {
    name: String,
    dir: PathBuf,
}

/// The verdict on one case.
#[derive(Debug, Clone)]
struct Outcome {
    name: String,
    /// The op under test (`_expanded` cases are resolved to their base case's op later).
    op: String,
    tensor_only: bool,
    status: Status,
    /// One line; empty for `pass`.
    reason: String,
    /// `Some(message with location)` when the case panicked.
    panic: Option<String>,
    elapsed: Duration,
}

/// The graph's inputs and outputs as onnx declares them.
struct Signature {
    op: String,
    inputs: Vec<String>,
    outputs: Vec<String>,
    tensor_only: bool,
}

fn is_tensor(v: &ValueInfoProto) -> bool {
    matches!(
        v.r#type.as_ref().and_then(|t| t.value.as_ref()),
        Some(type_proto::Value::TensorType(_))
    )
}

fn signature(model: &Path) -> Result<Signature, String> {
    let bytes = std::fs::read(model).map_err(|e| format!("cannot read model.onnx: {e}"))?;
    let m = ModelProto::decode(&bytes[..]).map_err(|e| format!("model.onnx: {e}"))?;
    let g = m.graph.ok_or("model.onnx has no graph")?;
    let op = match g.node.as_slice() {
        [n] => {
            let op = n.op_type.clone().unwrap_or_default();
            match n.domain.as_deref() {
                None | Some("") | Some("ai.onnx") => op,
                Some(d) => format!("{d}.{op}"),
            }
        }
        _ => String::new(),
    };
    let tensor_only = g.input.iter().chain(&g.output).all(is_tensor);
    let names = |v: &[ValueInfoProto]| {
        v.iter()
            .map(|x| x.name.clone().unwrap_or_default())
            .collect()
    };
    Ok(Signature {
        op,
        inputs: names(&g.input),
        outputs: names(&g.output),
        tensor_only,
    })
}

/// The verdict of [`run_case`] apart from bookkeeping: `(status, reason)`.
type Verdict = (Status, String);

fn run_case(case: &Case, sig: &Signature) -> Verdict {
    let model_path = case.dir.join("model.onnx");
    if !sig.tensor_only {
        // The interpreter takes and returns tensors only; nothing to run.
        return (Status::ImportFail, NON_TENSOR.to_string());
    }
    let graph = match smelt::onnx::import_file(&model_path) {
        Ok(g) => g,
        Err(e) => return (Status::ImportFail, e.to_string()),
    };
    let data_sets = match data_set_dirs(&case.dir) {
        Ok(d) => d,
        Err(e) => return (Status::ImportFail, format!("test data: {e}")),
    };
    for (n, dir) in data_sets.iter().enumerate() {
        let mut inputs = Vec::with_capacity(sig.inputs.len());
        for (k, name) in sig.inputs.iter().enumerate() {
            match smelt::onnx::read_tensor_file(dir.join(format!("input_{k}.pb"))) {
                Ok(t) => inputs.push((name.as_str(), t)),
                Err(e) => return (Status::ImportFail, format!("test data input_{k}: {e}")),
            }
        }
        let outputs = match smelt::interp::run(&graph, &inputs) {
            Ok(o) => o,
            Err(e) => return (Status::RunFail, e.to_string()),
        };
        for (k, name) in sig.outputs.iter().enumerate() {
            let expected = match smelt::onnx::read_tensor_file(dir.join(format!("output_{k}.pb"))) {
                Ok(t) => t,
                Err(e) => return (Status::ImportFail, format!("test data output_{k}: {e}")),
            };
            let set = if data_sets.len() > 1 {
                format!("data set {n}, ")
            } else {
                String::new()
            };
            let Some((_, got)) = outputs.iter().find(|(o, _)| o == name) else {
                return (
                    Status::RunFail,
                    format!("{set}output {k} `{name}` was not produced"),
                );
            };
            if let Err(e) = compare(got, &expected) {
                return (Status::Mismatch, format!("{set}output {k} `{name}`: {e}"));
            }
        }
    }
    (Status::Pass, String::new())
}

fn data_set_dirs(case_dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut sets: Vec<(usize, PathBuf)> = std::fs::read_dir(case_dir)
        .map_err(|e| e.to_string())?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let n = name.strip_prefix("test_data_set_")?.parse().ok()?;
            Some((n, e.path()))
        })
        .collect();
    sets.sort();
    if sets.is_empty() {
        return Err("no test_data_set_N folder".into());
    }
    Ok(sets.into_iter().map(|(_, p)| p).collect())
}

// ---------------------------------------------------------------------------------------
// Comparison

/// Elements of a tensor in a comparable form.
enum Elems {
    Float(Vec<f64>),
    Int(Vec<i128>),
    Str(Vec<String>),
}

fn nibbles(bytes: &[u8], n: usize) -> impl Iterator<Item = u8> + '_ {
    (0..n).map(move |i| {
        let b = bytes[i / 2];
        if i % 2 == 0 {
            b & 0x0f
        } else {
            b >> 4
        }
    })
}

fn elems(t: &Tensor) -> Result<Elems, String> {
    let n = t.len();
    let bytes = t.bytes();
    let e = |e: smelt::IrError| e.to_string();
    Ok(match t.dtype() {
        DType::F64 | DType::F32 | DType::F16 | DType::BF16 => {
            Elems::Float(t.to_f64_vec().map_err(e)?)
        }
        DType::F4E2M1 => {
            let f = smelt::ir::FloatFormat::E2M1;
            Elems::Float(nibbles(bytes, n).map(|c| f64::from(f.decode(c))).collect())
        }
        d if d.low_float().is_some() => {
            let f = d.low_float().ok_or("no float format")?;
            Elems::Float(bytes.iter().map(|&c| f64::from(f.decode(c))).collect())
        }
        DType::I4 => Elems::Int(
            nibbles(bytes, n)
                .map(|c| i128::from(((c << 4) as i8) >> 4))
                .collect(),
        ),
        DType::U4 => Elems::Int(nibbles(bytes, n).map(i128::from).collect()),
        DType::U64 => Elems::Int(
            t.to_vec::<u64>()
                .map_err(e)?
                .into_iter()
                .map(i128::from)
                .collect(),
        ),
        DType::Bool => Elems::Int(bytes.iter().map(|&b| i128::from(b != 0)).collect()),
        DType::String => Elems::Str(t.strings().ok_or("string tensor without strings")?.to_vec()),
        _ => Elems::Int(
            t.to_i64_vec()
                .map_err(e)?
                .into_iter()
                .map(i128::from)
                .collect(),
        ),
    })
}

/// Compare `got` with `expected`: dtype, shape, then every element. Errors say what
/// differs, naming the first differing element.
fn compare(got: &Tensor, expected: &Tensor) -> Result<(), String> {
    if got.dtype() != expected.dtype() {
        return Err(format!(
            "dtype {}, expected {}",
            got.dtype(),
            expected.dtype()
        ));
    }
    if got.shape() != expected.shape() {
        return Err(format!(
            "shape {:?}, expected {:?}",
            got.shape(),
            expected.shape()
        ));
    }
    let tol = tolerance(expected.dtype());
    let (a, b) = (elems(got)?, elems(expected)?);
    let mut first: Option<(usize, String, String)> = None;
    let mut bad = 0usize;
    let mut note = |i: usize, g: String, x: String| {
        bad += 1;
        if first.is_none() {
            first = Some((i, g, x));
        }
    };
    match (&a, &b) {
        (Elems::Float(a), Elems::Float(b)) => {
            let (rtol, atol) = tol.unwrap_or((0.0, 0.0));
            for (i, (&g, &x)) in a.iter().zip(b).enumerate() {
                // Infinities match only themselves (caught by `==`); NaN matches NaN.
                let ok = g == x
                    || (g.is_nan() && x.is_nan())
                    || (g.is_finite() && x.is_finite() && (g - x).abs() <= atol + rtol * x.abs());
                if !ok {
                    note(i, format!("{g:?}"), format!("{x:?}"));
                }
            }
        }
        (Elems::Int(a), Elems::Int(b)) => {
            for (i, (g, x)) in a.iter().zip(b).enumerate() {
                if g != x {
                    note(i, g.to_string(), x.to_string());
                }
            }
        }
        (Elems::Str(a), Elems::Str(b)) => {
            for (i, (g, x)) in a.iter().zip(b).enumerate() {
                if g != x {
                    note(i, format!("{g:?}"), format!("{x:?}"));
                }
            }
        }
        _ => return Err("element kinds differ".into()),
    }
    match first {
        None => Ok(()),
        Some((i, g, x)) => Err(format!(
            "element {i} (index {:?}) got {g} expected {x}; {bad} of {} differ",
            unravel(i, expected.shape()),
            expected.len()
        )),
    }
}

fn unravel(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for (slot, &d) in idx.iter_mut().zip(shape).rev() {
        if d > 0 {
            *slot = i % d;
            i /= d;
        }
    }
    idx
}

/// Collapse whitespace to single spaces and cut to `REASON_CHARS` characters.
fn one_line(s: &str) -> String {
    let flat = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= REASON_CHARS {
        flat
    } else {
        let cut: String = flat.chars().take(REASON_CHARS - 3).collect();
        format!("{cut}...")
    }
}

// ---------------------------------------------------------------------------------------
// Running everything: worker threads, panics caught per case, a time limit per case

thread_local! {
    /// Where the last panic on this thread happened (set by the panic hook).
    static PANIC_AT: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-string panic payload)".to_string()
    }
}

fn evaluate(case: &Case) -> Outcome {
    let start = Instant::now();
    let (op, tensor_only, verdict, panic) = match signature(&case.dir.join("model.onnx")) {
        Err(e) => (String::new(), true, (Status::ImportFail, e), None),
        Ok(sig) => {
            let (verdict, panic) = guarded(|| run_case(case, &sig));
            (sig.op, sig.tensor_only, verdict, panic)
        }
    };
    Outcome {
        name: case.name.clone(),
        op,
        tensor_only,
        status: verdict.0,
        reason: one_line(&verdict.1),
        panic,
        elapsed: start.elapsed(),
    }
}

/// Run `f`, turning a panic into a `run-fail` verdict; the second result is the panic's
/// message and location, for the summary.
fn guarded(f: impl FnOnce() -> Verdict) -> (Verdict, Option<String>) {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(v) => (v, None),
        Err(payload) => {
            let msg = one_line(&panic_message(payload.as_ref()));
            let at = PANIC_AT.with(|p| p.borrow_mut().take()).unwrap_or_default();
            // The manifest names the file only, so line moves do not churn it.
            let reason = match at.split(':').next() {
                Some(file) if !file.is_empty() => format!("panic: {msg} ({file})"),
                _ => format!("panic: {msg}"),
            };
            ((Status::RunFail, reason), Some(format!("{msg} at {at}")))
        }
    }
}

/// Run every case on `threads` worker threads. A case running past [`CASE_TIME_LIMIT`]
/// is reported as `run-fail` and its thread abandoned (it ends with the process).
fn run_all(cases: Vec<Case>, threads: usize) -> Vec<Outcome> {
    let cases = Arc::new(cases);
    let next = Arc::new(AtomicUsize::new(0));
    let running: Arc<Mutex<HashMap<usize, Instant>>> = Arc::default();
    let (tx, rx) = mpsc::channel::<(usize, Outcome)>();

    // Panics on the workers are recorded (location) and kept quiet; panics elsewhere (the
    // other tests of this binary) still go to the previous hook.
    let previous: Arc<dyn Fn(&std::panic::PanicHookInfo<'_>) + Send + Sync> =
        Arc::from(std::panic::take_hook());
    let chained = previous.clone();
    std::panic::set_hook(Box::new(move |info| {
        let worker = std::thread::current()
            .name()
            .is_some_and(|n| n.starts_with(WORKER_PREFIX));
        if !worker {
            return chained(info);
        }
        let at = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        PANIC_AT.with(|p| *p.borrow_mut() = Some(at));
    }));

    for w in 0..threads {
        let (cases, next, running, tx) = (cases.clone(), next.clone(), running.clone(), tx.clone());
        std::thread::Builder::new()
            .name(format!("{WORKER_PREFIX}{w}"))
            .stack_size(64 << 20)
            .spawn(move || loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(case) = cases.get(i) else { break };
                running
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(i, Instant::now());
                let outcome = evaluate(case);
                running.lock().unwrap_or_else(|e| e.into_inner()).remove(&i);
                if tx.send((i, outcome)).is_err() {
                    break;
                }
            })
            .expect("spawning a worker thread");
    }
    drop(tx);

    let mut done: Vec<Option<Outcome>> = vec![None; cases.len()];
    let mut remaining = cases.len();
    while remaining > 0 {
        match rx.recv_timeout(Duration::from_millis(500)) {
            Ok((i, o)) => {
                if done[i].is_none() {
                    remaining -= 1;
                }
                done[i] = Some(o);
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        let overdue: Vec<(usize, Duration)> = running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(&i, t)| (i, t.elapsed()))
            .filter(|(i, t)| *t > CASE_TIME_LIMIT && done[*i].is_none())
            .collect();
        for (i, t) in overdue {
            remaining -= 1;
            done[i] = Some(Outcome {
                name: cases[i].name.clone(),
                op: String::new(),
                tensor_only: true,
                status: Status::RunFail,
                reason: format!(
                    "timeout: still running after {} s",
                    CASE_TIME_LIMIT.as_secs()
                ),
                panic: None,
                elapsed: t,
            });
        }
    }
    std::panic::set_hook(Box::new(move |info| previous(info)));

    done.into_iter()
        .zip(cases.iter())
        .map(|(o, c)| {
            o.unwrap_or_else(|| Outcome {
                name: c.name.clone(),
                op: String::new(),
                tensor_only: true,
                status: Status::RunFail,
                reason: "worker thread died".into(),
                panic: None,
                elapsed: Duration::ZERO,
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// The cache

/// The cache folder, generated on first use (once per process, however many tests ask).
/// Panics with instructions when it cannot be.
fn cache_dir() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(prepare_cache_dir).clone()
}

fn prepare_cache_dir() -> PathBuf {
    let dir = match std::env::var_os("SMELT_ONNX_NODE_TESTS") {
        Some(p) => PathBuf::from(p),
        None => repo_root().join(".cache/onnx-node-tests"),
    };
    if stamp_version(&dir).is_none() {
        eprintln!(
            "{}: not found; writing the onnx node-test cases",
            dir.display()
        );
        let status = Command::new("python3")
            .arg(repo_root().join("scripts/gen_onnx_node_tests.py"))
            .arg("--out")
            .arg(&dir)
            .status();
        let ok = matches!(&status, Ok(s) if s.success());
        assert!(
            ok,
            "could not generate the ONNX node-test cases into {} ({status:?}); they need \
             Python 3 with onnx=={ONNX_VERSION}: run `bash scripts/setup.sh`, then \
             `python3 scripts/gen_onnx_node_tests.py`",
            dir.display()
        );
    }
    match stamp_version(&dir) {
        Some(v) if v == ONNX_VERSION => dir,
        other => panic!(
            "{} was written by onnx {other:?}, the manifest is for onnx {ONNX_VERSION}: run \
             `bash scripts/setup.sh` (it pins onnx=={ONNX_VERSION}) and \
             `python3 scripts/gen_onnx_node_tests.py --force`",
            dir.display()
        ),
    }
}

/// The onnx version in the cache's stamp file (written last, so it marks a complete set).
fn stamp_version(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join(".complete")).ok()?;
    let line = text.lines().next()?;
    Some(line.strip_prefix("onnx ")?.trim().to_string())
}

fn list_cases(dir: &Path, filter: Option<&str>) -> Vec<Case> {
    let mut cases: Vec<Case> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .filter(|e| e.path().join("model.onnx").is_file())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            Some(Case {
                name,
                dir: e.path(),
            })
        })
        .filter(|c| filter.is_none_or(|f| c.name.contains(f)))
        .collect();
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    cases
}

// ---------------------------------------------------------------------------------------
// The manifest

/// `name -> (status, reason)` from the manifest; `None` if the file does not exist.
fn read_manifest(path: &Path) -> Option<BTreeMap<String, (Status, String)>> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut out = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut parts = line.splitn(3, ' ');
        let name = parts.next().unwrap_or_default();
        let status = parts
            .next()
            .and_then(Status::parse)
            .unwrap_or_else(|| panic!("{}:{}: bad status in `{line}`", path.display(), n + 1));
        out.insert(
            name.to_string(),
            (status, parts.next().unwrap_or_default().to_string()),
        );
    }
    Some(out)
}

fn write_manifest(path: &Path, entries: &BTreeMap<String, (Status, String)>) {
    let mut counts: BTreeMap<Status, usize> = BTreeMap::new();
    for (s, _) in entries.values() {
        *counts.entry(*s).or_default() += 1;
    }
    let count = |s| counts.get(&s).copied().unwrap_or(0);
    let mut text = String::new();
    let _ = writeln!(
        text,
        "# ONNX backend node tests (onnx {ONNX_VERSION}) run through smelt's importer and interpreter."
    );
    let _ = writeln!(
        text,
        "# {} cases: pass {}, import-fail {}, run-fail {}, mismatch {}",
        entries.len(),
        count(Status::Pass),
        count(Status::ImportFail),
        count(Status::RunFail),
        count(Status::Mismatch)
    );
    let _ = writeln!(
        text,
        "# Regenerate: SMELT_UPDATE_MANIFEST=1 cargo test -p smelt-tests --test onnx_conformance"
    );
    let _ = writeln!(
        text,
        "# Format: <case> <status> [<reason>]; see docs/conformance.md."
    );
    for (name, (status, reason)) in entries {
        if reason.is_empty() {
            let _ = writeln!(text, "{name} {}", status.name());
        } else {
            let _ = writeln!(text, "{name} {} {reason}", status.name());
        }
    }
    std::fs::write(path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

// ---------------------------------------------------------------------------------------
// Reports

/// The op family of a case: the op under test, or for `_expanded` cases the op of the
/// case they expand; the name's `test_<word>` prefix when neither is known.
fn families(outcomes: &[Outcome]) -> HashMap<String, String> {
    let by_name: HashMap<&str, &str> = outcomes
        .iter()
        .map(|o| (o.name.as_str(), o.op.as_str()))
        .collect();
    outcomes
        .iter()
        .map(|o| {
            let base = match o.name.find("_expanded") {
                Some(i) => &o.name[..i],
                None => o.name.as_str(),
            };
            let op = match by_name.get(base) {
                Some(op) if !op.is_empty() => (*op).to_string(),
                _ if !o.op.is_empty() => o.op.clone(),
                _ => base
                    .trim_start_matches("test_")
                    .split('_')
                    .next()
                    .unwrap_or(base)
                    .to_string(),
            };
            (o.name.clone(), op)
        })
        .collect()
}

/// Failing cases of one op family.
#[derive(Default)]
struct Family {
    failing: usize,
    /// Failing `_expanded` cases (the op's function body inlined).
    expanded: usize,
    total: usize,
    statuses: BTreeMap<Status, usize>,
    /// Reason kind -> (cases, first concrete reason).
    kinds: BTreeMap<String, (usize, String)>,
}

/// A reason with case-specific details (numbers, node labels) blanked, so reasons of
/// one kind group together.
fn reason_kind(status: Status, reason: &str) -> String {
    let mut out = String::new();
    for (i, part) in reason.split('`').enumerate() {
        if i % 2 == 1 {
            // Quoted: a short single word (an op name) is kept, node and value labels
            // are blanked.
            if part.len() <= 40 && !part.contains(char::is_whitespace) {
                out.push('`');
                out.push_str(part);
                out.push('`');
            } else {
                out.push_str("`…`");
            }
            continue;
        }
        let mut last_digit = false;
        for c in part.chars() {
            if c.is_ascii_digit() {
                if !last_digit {
                    out.push('N');
                }
                last_digit = true;
            } else {
                last_digit = false;
                out.push(c);
            }
        }
    }
    format!("{}: {}", status.name(), one_line(&out))
}

/// `reason` cut to about 120 characters for a table, long `quoted` names (node labels)
/// shortened.
fn abbreviate(reason: &str) -> String {
    let mut out = String::new();
    for (i, part) in reason.split('`').enumerate() {
        if i > 0 {
            out.push('`');
        }
        if i % 2 == 1 && part.chars().count() > 40 {
            out.extend(part.chars().take(36));
            out.push('…');
        } else {
            out.push_str(part);
        }
    }
    if out.chars().count() > 120 {
        out = out.chars().take(117).collect::<String>() + "...";
    }
    out
}

/// The ops named in an "unsupported op(s): `A` (...), `B` (...)" reason.
fn unsupported_ops(reason: &str) -> Vec<String> {
    let Some(i) = reason.find("unsupported op") else {
        return vec![];
    };
    let rest = &reason[i..];
    let rest = rest.split_once(": ").map_or("", |(_, r)| r);
    let mut ops: Vec<String> = rest
        .split(", ")
        .filter_map(|part| {
            let part = part.strip_prefix('`')?;
            Some(part.split('`').next()?.to_string())
        })
        .collect();
    ops.sort();
    ops.dedup();
    ops
}

fn report(outcomes: &[Outcome], wall: Duration) -> String {
    let mut r = String::new();
    let fam = families(outcomes);
    let failing: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.status != Status::Pass)
        .collect();

    // Op families by failing count.
    let mut by_family: BTreeMap<&str, Family> = BTreeMap::new();
    for o in outcomes {
        let f = by_family.entry(fam[&o.name].as_str()).or_default();
        f.total += 1;
        if o.status != Status::Pass {
            f.failing += 1;
            f.expanded += usize::from(o.name.contains("_expanded"));
            *f.statuses.entry(o.status).or_default() += 1;
            let k = f
                .kinds
                .entry(reason_kind(o.status, &o.reason))
                .or_insert_with(|| (0, format!("{}: {}", o.status.name(), o.reason)));
            k.0 += 1;
        }
    }
    let mut fams: Vec<_> = by_family.iter().filter(|(_, f)| f.failing > 0).collect();
    fams.sort_by(|a, b| b.1.failing.cmp(&a.1.failing).then(a.0.cmp(b.0)));
    let _ = writeln!(r, "\nfailing op families ({} with failures):", fams.len());
    let _ = writeln!(
        r,
        "| op | failing | of them expanded | cases | import-fail | run-fail | mismatch | typical reason (cases) |"
    );
    let _ = writeln!(r, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
    for (op, f) in &fams {
        let typical = f
            .kinds
            .iter()
            .max_by(|a, b| a.1 .0.cmp(&b.1 .0).then(b.0.cmp(a.0)))
            .map(|(_, (n, example))| format!("{} ({n})", abbreviate(example)))
            .unwrap_or_default();
        let st = |s| f.statuses.get(&s).copied().unwrap_or(0);
        let _ = writeln!(
            r,
            "| {op} | {} | {} | {} | {} | {} | {} | {} |",
            f.failing,
            f.expanded,
            f.total,
            st(Status::ImportFail),
            st(Status::RunFail),
            st(Status::Mismatch),
            typical.replace('|', "\\|")
        );
    }

    // Opsets the importer refused.
    let mut opsets: BTreeMap<i64, usize> = BTreeMap::new();
    // Single-op cases refused only for their opset although smelt knows the op.
    let mut known: BTreeMap<&str, usize> = BTreeMap::new();
    for o in &failing {
        if let Some(rest) = o.reason.strip_prefix("opset: default-domain opset ") {
            if let Some(v) = rest.split(' ').next().and_then(|v| v.parse().ok()) {
                *opsets.entry(v).or_default() += 1;
            }
            if smelt::OpKind::from_onnx(&o.op).is_some() {
                *known.entry(o.op.as_str()).or_default() += 1;
            }
        }
    }
    let line: Vec<String> = opsets
        .iter()
        .map(|(v, n)| format!("opset {v}: {n}"))
        .collect();
    let _ = writeln!(r, "\ncases refused for their opset: {}", line.join(", "));
    let mut known: Vec<_> = known.into_iter().collect();
    known.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let line: Vec<String> = known.iter().map(|(op, n)| format!("{op} {n}")).collect();
    let _ = writeln!(
        r,
        "of those, single-op cases whose op smelt knows ({} cases): {}",
        known.iter().map(|(_, n)| n).sum::<usize>(),
        line.join(", ")
    );

    // Ops the importer refused, by how many cases name them.
    let mut missing: BTreeMap<String, usize> = BTreeMap::new();
    for o in &failing {
        for op in unsupported_ops(&o.reason) {
            *missing.entry(op).or_default() += 1;
        }
    }
    let mut missing: Vec<_> = missing.into_iter().collect();
    missing.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let _ = writeln!(
        r,
        "\nunsupported ops named by import failures ({} ops):",
        missing.len()
    );
    let line: Vec<String> = missing.iter().map(|(op, n)| format!("{op} {n}")).collect();
    let _ = writeln!(r, "{}", line.join(", "));

    // Failure kinds overall.
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for o in &failing {
        *kinds.entry(reason_kind(o.status, &o.reason)).or_default() += 1;
    }
    let mut kinds: Vec<_> = kinds.into_iter().collect();
    kinds.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let _ = writeln!(r, "\nmost common failure kinds:");
    for (k, n) in kinds.iter().take(25) {
        let _ = writeln!(r, "{n:5}  {k}");
    }

    // Panics: bugs.
    let panics: Vec<&Outcome> = outcomes.iter().filter(|o| o.panic.is_some()).collect();
    let _ = writeln!(r, "\npanics ({}; each is a bug):", panics.len());
    for o in &panics {
        let _ = writeln!(
            r,
            "  {} [{}]: {}",
            o.name,
            fam[&o.name],
            o.panic.as_deref().unwrap_or_default()
        );
    }

    // Slowest cases.
    let mut slow: Vec<&Outcome> = outcomes.iter().collect();
    slow.sort_by_key(|o| std::cmp::Reverse(o.elapsed));
    let _ = writeln!(r, "\nslowest cases:");
    for o in slow.iter().take(10) {
        let _ = writeln!(
            r,
            "  {:8.3} s  {} ({})",
            o.elapsed.as_secs_f64(),
            o.name,
            o.status.name()
        );
    }
    let _ = writeln!(r, "\nwall time {:.1} s", wall.as_secs_f64());
    r
}

/// Cases whose data onnx supplies as ready-made TensorProtos (float8, int4, float4 values
/// numpy cannot hold), from the generator's `index.json`. They are plain tensors and are
/// counted as tensor-only; the figure without them is reported too, because it is the
/// usual denominator (1,666 cases) when comparing with other runtimes.
fn tensorproto_valued(dir: &Path) -> Option<BTreeSet<String>> {
    let text = std::fs::read_to_string(dir.join("index.json")).ok()?;
    let index: serde_json::Value = serde_json::from_str(&text).ok()?;
    let cases = index.get("index")?.as_array()?;
    Some(
        cases
            .iter()
            .filter(|c| c.get("tensorproto_values").and_then(|v| v.as_bool()) == Some(true))
            .filter_map(|c| c.get("name")?.as_str().map(str::to_string))
            .collect(),
    )
}

fn summary_line(outcomes: &[Outcome], tensorproto: Option<&BTreeSet<String>>) -> String {
    let count = |s| outcomes.iter().filter(|o| o.status == s).count();
    let pass = count(Status::Pass);
    let tensor_only = outcomes.iter().filter(|o| o.tensor_only).count();
    let tensor_pass = outcomes
        .iter()
        .filter(|o| o.tensor_only && o.status == Status::Pass)
        .count();
    let pct = |a: usize, b: usize| {
        if b == 0 {
            0.0
        } else {
            100.0 * a as f64 / b as f64
        }
    };
    format!(
        "onnx node tests (onnx {ONNX_VERSION}): {pass} passed, {} failed (import-fail {}, \
         run-fail {}, mismatch {}); tensor-only {tensor_pass}/{tensor_only} = {:.1}%; all \
         {pass}/{} = {:.1}%",
        outcomes.len() - pass,
        count(Status::ImportFail),
        count(Status::RunFail),
        count(Status::Mismatch),
        pct(tensor_pass, tensor_only),
        outcomes.len(),
        pct(pass, outcomes.len()),
    ) + &match tensorproto {
        Some(tp) => {
            let plain = |o: &&Outcome| o.tensor_only && !tp.contains(&o.name);
            let total = outcomes.iter().filter(plain).count();
            let passed = outcomes
                .iter()
                .filter(plain)
                .filter(|o| o.status == Status::Pass)
                .count();
            format!(
                "; tensor-only without TensorProto-valued cases {passed}/{total} = {:.1}%",
                pct(passed, total)
            )
        }
        None => String::new(),
    }
}

// ---------------------------------------------------------------------------------------
// The test

#[test]
fn onnx_node_tests() {
    let dir = cache_dir();
    let filter = std::env::var("SMELT_ONNX_CASES")
        .ok()
        .filter(|f| !f.is_empty());
    let cases = list_cases(&dir, filter.as_deref());
    assert!(!cases.is_empty(), "no cases in {} match", dir.display());
    let threads = std::env::var("SMELT_CONFORMANCE_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .max(1);

    let start = Instant::now();
    let outcomes = run_all(cases, threads);
    let wall = start.elapsed();

    if filter.is_some() {
        for o in &outcomes {
            eprintln!("{} {} {}", o.name, o.status.name(), o.reason);
        }
    }
    eprintln!("{}", report(&outcomes, wall));
    let summary = summary_line(&outcomes, tensorproto_valued(&dir).as_ref());
    eprintln!("{summary}");

    let path = manifest_path();
    let listed = read_manifest(&path);
    if std::env::var_os("SMELT_UPDATE_MANIFEST").is_some_and(|v| v != "0") {
        // With a filter, only the lines of the cases that ran are replaced.
        let mut entries = match (&filter, listed) {
            (Some(_), Some(old)) => old,
            _ => BTreeMap::new(),
        };
        for o in &outcomes {
            entries.insert(o.name.clone(), (o.status, o.reason.clone()));
        }
        write_manifest(&path, &entries);
        eprintln!("wrote {}", path.display());
        return;
    }

    let listed = listed.unwrap_or_else(|| {
        panic!(
            "{} is missing: run `SMELT_UPDATE_MANIFEST=1 cargo test -p smelt-tests --test \
             onnx_conformance` to write it",
            path.display()
        )
    });
    let now: HashMap<&str, &Outcome> = outcomes.iter().map(|o| (o.name.as_str(), o)).collect();
    let mut regressed = vec![];
    for (name, (status, _)) in &listed {
        if *status != Status::Pass {
            continue;
        }
        if filter.as_deref().is_some_and(|f| !name.contains(f)) {
            continue;
        }
        match now.get(name.as_str()) {
            Some(o) if o.status == Status::Pass => {}
            Some(o) => regressed.push(format!("  {name}: {} {}", o.status.name(), o.reason)),
            None => regressed.push(format!("  {name}: missing from {}", dir.display())),
        }
    }
    let newly: Vec<&str> = outcomes
        .iter()
        .filter(|o| o.status == Status::Pass)
        .filter(|o| !matches!(listed.get(&o.name), Some((Status::Pass, _))))
        .map(|o| o.name.as_str())
        .collect();
    if !newly.is_empty() {
        eprintln!(
            "note: {} case(s) pass but are not listed as pass in {}; regenerate it with \
             SMELT_UPDATE_MANIFEST=1:\n  {}",
            newly.len(),
            path.display(),
            newly.join("\n  ")
        );
    }
    assert!(
        regressed.is_empty(),
        "{} case(s) listed as pass in {} no longer pass:\n{}\n{summary}",
        regressed.len(),
        path.display(),
        regressed.join("\n")
    );
}

// ---------------------------------------------------------------------------------------
// The harness's own checks

fn tensor<T: smelt::ir::Element>(shape: Vec<usize>, v: Vec<T>) -> Tensor {
    Tensor::from_vec(shape, v).expect("a valid tensor")
}

#[test]
fn compare_uses_tolerances_and_matches_nan() {
    let exp = tensor(vec![4], vec![1.0f32, f32::NAN, f32::INFINITY, 0.0]);
    let close = tensor(vec![4], vec![1.0005f32, f32::NAN, f32::INFINITY, 5e-6]);
    assert!(compare(&close, &exp).is_ok());
    let far = tensor(vec![4], vec![1.01f32, f32::NAN, f32::INFINITY, 0.0]);
    let e = compare(&far, &exp).unwrap_err();
    assert!(e.starts_with("element 0 (index [0])"), "{e}");
    let nan = tensor(vec![4], vec![1.0f32, 0.0, f32::INFINITY, 0.0]);
    assert!(compare(&nan, &exp).unwrap_err().contains("expected NaN"));
    let inf = tensor(vec![4], vec![1.0f32, f32::NAN, f32::NEG_INFINITY, 0.0]);
    assert!(compare(&inf, &exp).is_err());
}

#[test]
fn compare_checks_dtype_shape_and_exact_ints() {
    let a = tensor(vec![2, 2], vec![1i64, 2, 3, 4]);
    assert!(compare(&a, &a).is_ok());
    let b = tensor(vec![2, 2], vec![1i64, 2, 3, 5]);
    assert!(compare(&b, &a).unwrap_err().contains("index [1, 1]"));
    assert!(compare(&tensor(vec![4], vec![1i64, 2, 3, 4]), &a)
        .unwrap_err()
        .starts_with("shape"));
    assert!(compare(&tensor(vec![2, 2], vec![1i32, 2, 3, 4]), &a)
        .unwrap_err()
        .starts_with("dtype"));
    // int4: two per byte, low nibble first; 0xF is -1.
    let i4 = |b: &'static [u8]| {
        Tensor::from_bytes(DType::I4, vec![3], bytes::Bytes::from_static(b)).expect("i4")
    };
    assert_eq!(
        compare(&i4(&[0x21, 0x0f]), &i4(&[0x21, 0x0e])).unwrap_err(),
        "element 2 (index [2]) got -1 expected -2; 1 of 3 differ"
    );
    // The unused high nibble of the last byte is ignored.
    assert!(compare(&i4(&[0x21, 0xff]), &i4(&[0x21, 0x0f])).is_ok());
}

#[test]
fn panics_become_run_fail() {
    // `resume_unwind` unwinds like a panic without calling the panic hook (no noise).
    let ((status, reason), panic) = guarded(|| std::panic::resume_unwind(Box::new("boom")));
    assert_eq!(status, Status::RunFail);
    assert!(reason.starts_with("panic: boom"), "{reason}");
    assert!(panic.is_some());
}

#[test]
fn unsupported_ops_are_parsed_from_reasons() {
    assert_eq!(
        unsupported_ops("2 unsupported ops: `Resize` (unnamed node), `Pad` (node `p`)"),
        vec!["Pad".to_string(), "Resize".to_string()]
    );
    assert!(unsupported_ops("opset: default-domain opset 25").is_empty());
}

/// Every plain-tensor input and output file of the suite decodes with
/// `smelt_onnx::read_tensor_file`, except those whose element type smelt has no
/// counterpart for (the FP8 "fnuz" variants and 2-bit integers).
#[test]
fn every_test_tensor_file_decodes() {
    let dir = cache_dir();
    let (mut read, mut refused) = (0, 0);
    let mut errors = vec![];
    for case in list_cases(&dir, None) {
        let Ok(sig) = signature(&case.dir.join("model.onnx")) else {
            continue;
        };
        if !sig.tensor_only {
            continue;
        }
        for set in data_set_dirs(&case.dir).unwrap_or_default() {
            let files = (0..sig.inputs.len())
                .map(|k| format!("input_{k}.pb"))
                .chain((0..sig.outputs.len()).map(|k| format!("output_{k}.pb")));
            for f in files {
                match smelt::onnx::read_tensor_file(set.join(&f)) {
                    Ok(_) => read += 1,
                    Err(e) => {
                        let e = e.to_string();
                        if ["FNUZ", "(INT2)", "(UINT2)"].iter().any(|t| e.contains(t)) {
                            refused += 1;
                        } else {
                            errors.push(format!("{}/{f}: {e}", case.name));
                        }
                    }
                }
            }
        }
    }
    eprintln!("{read} test tensors decoded, {refused} refused for their element type");
    assert!(read > 5000, "only {read} tensors read");
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}
