//! The shared kernel corpus (`ops.smelt` beside this file): its parser, the seeded
//! random inputs and the comparison with the interpreter.
//!
//! Included by path from two test crates, which name smelt's crates differently, so
//! each includer first defines
//!
//! ```ignore
//! mod deps {
//!     pub use smelt_interp as interp; // or smelt::interp
//!     pub use smelt_ir as ir; // or smelt::ir
//! }
//! #[path = ".../tests/kernels/harness.rs"]
//! mod harness;
//! ```
//!
//! The file format is described at the top of `ops.smelt`.

#![allow(dead_code)]

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::deps::interp;
use crate::deps::ir::{text::parse, DType, Dim, Graph, Tensor};

/// The corpus text.
pub const CORPUS: &str = include_str!("ops.smelt");

/// Seeds per input binding: every case runs on this many random input sets.
pub const SEEDS: u64 = 2;

/// Why the Cranelift consumer leaves a case out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CraneliftSkip {
    /// `// CRANELIFT: skip <reason>`: the backend documents the case as unsupported.
    Unsupported(String),
    /// `// CRANELIFT: known-bug <line>`: a known backend bug, to be fixed.
    KnownBug(String),
}

/// One case of the corpus.
#[derive(Debug, Clone)]
pub struct Case {
    /// `// CASE:`, unique.
    pub name: String,
    /// 1-based line of the case's `// CASE:` line in `ops.smelt`.
    pub line: usize,
    /// The graph text (directive lines removed).
    pub text: String,
    /// `// TOL:` (default 1e-5).
    pub tol: f64,
    /// `// FLOATS:` range `[lo, hi)` (default `[-1, 1)`).
    pub floats: (f64, f64),
    /// `// INTS:` range `[lo, hi)` (default `[-3, 4)`).
    pub ints: (i64, i64),
    /// `// DIMS:` bindings of symbolic dims, one per line; empty when all dims are known.
    pub dims: Vec<HashMap<String, u64>>,
    /// `// VALUES:` fixed input values by input name.
    pub values: HashMap<String, Vec<f64>>,
    /// `// CRANELIFT:`.
    pub cranelift: Option<CraneliftSkip>,
}

/// One set of inputs for a case.
pub struct InputSet {
    /// What it is, for messages: the dim binding and the seed.
    pub label: String,
    /// The symbolic dims bound (empty when all dims are known).
    pub dims: HashMap<String, u64>,
    /// One tensor per graph input, in order.
    pub tensors: Vec<Tensor>,
}

/// Parse the corpus; panics with the line on any malformed case.
pub fn corpus() -> Vec<Case> {
    parse_corpus(CORPUS)
}

/// The case named `name`.
pub fn case(name: &str) -> Case {
    corpus()
        .into_iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("ops.smelt has no case `{name}`"))
}

/// Parse corpus text (see the header of `ops.smelt`).
pub fn parse_corpus(text: &str) -> Vec<Case> {
    let mut cases: Vec<Case> = vec![];
    // Blocks of (1-based line, line text).
    let mut blocks: Vec<Vec<(usize, &str)>> = vec![vec![]];
    for (i, line) in text.lines().enumerate() {
        if line.trim() == "// -----" {
            blocks.push(vec![]);
        } else {
            blocks.last_mut().unwrap().push((i + 1, line));
        }
    }
    for block in blocks {
        let mut case = Case {
            name: String::new(),
            line: block.first().map_or(0, |l| l.0),
            text: String::new(),
            tol: 1e-5,
            floats: (-1.0, 1.0),
            ints: (-3, 4),
            dims: vec![],
            values: HashMap::new(),
            cranelift: None,
        };
        for &(n, line) in &block {
            let at = |msg: &str| -> ! { panic!("ops.smelt:{n}: {msg}: `{line}`") };
            let t = line.trim();
            let Some(comment) = t.strip_prefix("//") else {
                case.text.push_str(line);
                case.text.push('\n');
                continue;
            };
            // A directive is `// KEY: value`, one space after the slashes; anything
            // else (`//   KEY: ...` in the header included) is a free comment.
            let Some(comment) = comment.strip_prefix(' ').filter(|c| !c.starts_with(' ')) else {
                continue;
            };
            let Some((key, value)) = comment.split_once(':') else {
                continue;
            };
            if key.is_empty() || !key.chars().all(|c| c.is_ascii_uppercase()) {
                continue; // a free comment
            }
            let value = value.trim();
            let words: Vec<&str> = value.split_whitespace().collect();
            let num = |w: &str| -> f64 { w.parse().unwrap_or_else(|_| at("not a number")) };
            match key {
                "CASE" => {
                    if value.is_empty() {
                        at("empty case name")
                    }
                    case.name = value.to_string();
                    case.line = n;
                }
                "TOL" => case.tol = num(value),
                "FLOATS" | "INTS" => {
                    let [lo, hi] = words[..] else {
                        at("expected `<lo> <hi>`")
                    };
                    let (lo, hi) = (num(lo), num(hi));
                    if lo >= hi {
                        at("empty range")
                    }
                    if key == "FLOATS" {
                        case.floats = (lo, hi);
                    } else {
                        case.ints = (lo as i64, hi as i64);
                    }
                }
                "DIMS" => {
                    let mut b = HashMap::new();
                    for w in &words {
                        let Some((sym, v)) = w.split_once('=') else {
                            at("expected `<sym>=<n>`")
                        };
                        let v: u64 = v.parse().unwrap_or_else(|_| at("bad dim value"));
                        b.insert(sym.trim_start_matches('?').to_string(), v);
                    }
                    case.dims.push(b);
                }
                "VALUES" => {
                    let Some((input, vals)) = words.split_first() else {
                        at("expected `<input> <values>`")
                    };
                    let vals = vals.iter().map(|w| num(w)).collect();
                    case.values
                        .insert(input.trim_start_matches('%').to_string(), vals);
                }
                "CRANELIFT" => {
                    let (kind, why) = value.split_once(' ').unwrap_or((value, ""));
                    let why = why.trim().to_string();
                    if why.is_empty() {
                        at("give a reason")
                    }
                    case.cranelift = Some(match kind {
                        "skip" => CraneliftSkip::Unsupported(why),
                        "known-bug" => CraneliftSkip::KnownBug(why),
                        _ => at("expected `skip <reason>` or `known-bug <line>`"),
                    });
                }
                _ => at("unknown directive"),
            }
        }
        let has_graph = !case.text.trim().is_empty();
        match (case.name.is_empty(), has_graph) {
            (true, false) => continue, // the header, or an empty block
            (true, true) => panic!("ops.smelt:{}: a graph without `// CASE:`", case.line),
            (false, false) => panic!("ops.smelt:{}: case `{}` has no graph", case.line, case.name),
            (false, true) => {}
        }
        if let Some(prev) = cases.iter().find(|c| c.name == case.name) {
            panic!(
                "ops.smelt:{}: case `{}` is also at line {}",
                case.line, case.name, prev.line
            );
        }
        cases.push(case);
    }
    cases
}

/// SplitMix64: a small seeded generator, so failures reproduce.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[lo, hi)`.
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform integer in `[lo, hi)`.
    pub fn int(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo) as u64) as i64
    }
}

/// FNV-1a, to derive a case's seeds from its name (stable across corpus edits).
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

impl Case {
    /// `ops.smelt:<line> `<name>``, for messages.
    pub fn title(&self) -> String {
        format!("ops.smelt:{} `{}`", self.line, self.name)
    }

    /// The case's graph, parsed and type-inferred.
    pub fn graph(&self) -> Graph {
        let mut g = parse(&self.text)
            .unwrap_or_else(|e| panic!("{}: parse: {e}\n{}", self.title(), self.text));
        g.infer_types()
            .unwrap_or_else(|e| panic!("{}: infer: {e}\n{}", self.title(), self.text));
        g
    }

    /// The input sets to run: each `// DIMS:` binding (or none) times [`SEEDS`] seeds.
    /// Panics when an input's shape is not fully known under a binding.
    pub fn input_sets(&self, g: &Graph) -> Vec<InputSet> {
        let bindings = if self.dims.is_empty() {
            vec![HashMap::new()]
        } else {
            self.dims.clone()
        };
        for name in self.values.keys() {
            assert!(
                g.inputs().iter().any(|&v| &g.value(v).name == name),
                "{}: VALUES for `{name}`, which is no input",
                self.title()
            );
        }
        let all_fixed = g
            .inputs()
            .iter()
            .all(|&v| self.values.contains_key(&g.value(v).name));
        let seeds = if all_fixed { 1 } else { SEEDS };
        let mut sets = vec![];
        for dims in bindings {
            for seed in 0..seeds {
                let mut rng = Rng(fnv(&self.name) ^ seed);
                let mut tensors = vec![];
                for &v in g.inputs() {
                    let name = &g.value(v).name;
                    let ty = g.ty(v);
                    let shape: Vec<usize> = ty
                        .dims()
                        .unwrap_or_else(|| panic!("{}: input `{name}` has no rank", self.title()))
                        .iter()
                        .map(|d| match d {
                            Dim::Known(n) => *n as usize,
                            Dim::Sym(s) => *dims.get(s).unwrap_or_else(|| {
                                panic!("{}: `{name}` needs `// DIMS: {s}=<n>`", self.title())
                            }) as usize,
                            Dim::Unknown => {
                                panic!("{}: input `{name}` has an unknown dim", self.title())
                            }
                        })
                        .collect();
                    let n: usize = shape.iter().product();
                    let vals: Vec<f64> = match self.values.get(name) {
                        Some(vals) => {
                            assert_eq!(
                                vals.len(),
                                n,
                                "{}: VALUES for `{name}` need {n} values",
                                self.title()
                            );
                            vals.clone()
                        }
                        None => (0..n)
                            .map(|_| match ty.dtype {
                                DType::Bool => (rng.next() & 1) as f64,
                                t if t.is_float() => rng.uniform(self.floats.0, self.floats.1),
                                _ => rng.int(self.ints.0, self.ints.1) as f64,
                            })
                            .collect(),
                    };
                    let t = Tensor::from_f64(ty.dtype, shape, &vals)
                        .unwrap_or_else(|e| panic!("{}: input `{name}`: {e}", self.title()));
                    tensors.push(t);
                }
                let mut label = String::new();
                let mut syms: Vec<_> = dims.iter().collect();
                syms.sort();
                for (s, v) in syms {
                    let _ = write!(label, "{s}={v} ");
                }
                let _ = write!(label, "seed {seed}");
                sets.push(InputSet {
                    label,
                    dims: dims.clone(),
                    tensors,
                });
            }
        }
        sets
    }
}

/// The graph's input names, in order.
pub fn input_names(g: &Graph) -> Vec<String> {
    g.inputs()
        .iter()
        .map(|&v| g.value(v).name.clone())
        .collect()
}

/// Run the interpreter (the oracle) on `inputs`, in the graph's input order.
pub fn interpret(g: &Graph, inputs: &[Tensor]) -> Result<Vec<(String, Tensor)>, String> {
    let names = input_names(g);
    let named: Vec<(&str, Tensor)> = names
        .iter()
        .map(String::as_str)
        .zip(inputs.iter().cloned())
        .collect();
    interp::run(g, &named).map_err(|e| format!("interpreter: {e}"))
}

/// Compare outputs with the interpreter's: same count, shapes and dtypes; floats within
/// `|got - want| <= tol * (1 + |want|)` (NaN matches NaN), integers and bools exactly.
/// The error names the first differing element and the worst float difference.
pub fn compare(want: &[(String, Tensor)], got: &[Tensor], tol: f64) -> Result<(), String> {
    if want.len() != got.len() {
        return Err(format!(
            "{} outputs, the interpreter gives {}",
            got.len(),
            want.len()
        ));
    }
    for ((name, w), o) in want.iter().zip(got) {
        if w.shape() != o.shape() {
            return Err(format!(
                "output `{name}`: shape {:?}, the interpreter gives {:?}",
                o.shape(),
                w.shape()
            ));
        }
        if w.dtype() != o.dtype() {
            return Err(format!(
                "output `{name}`: dtype {}, the interpreter gives {}",
                o.dtype(),
                w.dtype()
            ));
        }
        let (wv, ov) = (w.to_f64_vec().unwrap(), o.to_f64_vec().unwrap());
        let float = w.dtype().is_float();
        let mut first_bad: Option<(usize, f64, f64)> = None;
        let mut bad = 0usize;
        let mut worst = 0.0f64;
        for (i, (&a, &b)) in wv.iter().zip(&ov).enumerate() {
            let ok = if float {
                let d = (a - b).abs() / (1.0 + a.abs());
                if d.is_finite() {
                    worst = worst.max(d);
                }
                (a.is_nan() && b.is_nan()) || a == b || d <= tol
            } else {
                a == b
            };
            if !ok {
                bad += 1;
                first_bad.get_or_insert((i, a, b));
            }
        }
        if let Some((i, a, b)) = first_bad {
            return Err(format!(
                "output `{name}`: {bad} of {} elements differ; first at [{i}]: \
                 interpreter {a}, got {b}; worst scaled diff {worst:e} (tol {tol:e})",
                wv.len()
            ));
        }
    }
    Ok(())
}
