//! More elementwise ops: inverse trigonometric and hyperbolic functions, the activations
//! Selu, Celu, ThresholdedRelu, Shrink, Softsign and Mish, the bitwise ops
//! (BitwiseAnd/Or/Xor/Not) and BitShift; plus Hardmax, Einsum and Det.
//!
//! Float functions are evaluated in f64 and rounded once to the input's type.

use smelt_ir::{Attrs, OpKind};

use super::broadcast::{map, zip2};
use super::{checked_len, input, norm_axis, via_f32};
use crate::error::{bail, OpError, OpResult};
use crate::num::Num;
use crate::value::{array_from, dispatch_float, dispatch_num, to_std_vec, typed, Elem, Value};

/// Run `$body` with `$T` bound to the integer element type of `$v`; other dtypes are an
/// error naming `$what`.
macro_rules! dispatch_int {
    ($v:expr, $what:expr, $T:ident => $body:expr) => {{
        match $v {
            Value::I64(_) => {
                type $T = i64;
                $body
            }
            Value::I32(_) => {
                type $T = i32;
                $body
            }
            Value::I16(_) => {
                type $T = i16;
                $body
            }
            Value::I8(_) => {
                type $T = i8;
                $body
            }
            Value::U64(_) => {
                type $T = u64;
                $body
            }
            Value::U32(_) => {
                type $T = u32;
                $body
            }
            Value::U16(_) => {
                type $T = u16;
                $body
            }
            Value::U8(_) => {
                type $T = u8;
                $body
            }
            other => Err(OpError::new(format!(
                "{} must be an integer tensor, got {}",
                $what,
                other.dtype()
            ))),
        }
    }};
}

/// Evaluate one of this module's ops; half floats are widened to f32 first.
pub(crate) fn eval(op: &OpKind, attrs: &Attrs, inputs: &[Option<&Value>]) -> OpResult<Vec<Value>> {
    let one = |v: OpResult<Value>| v.map(|v| vec![v]);
    let all = usize::MAX;
    match op {
        OpKind::Acos
        | OpKind::Asin
        | OpKind::Acosh
        | OpKind::Asinh
        | OpKind::Atanh
        | OpKind::Cosh
        | OpKind::Sinh
        | OpKind::Selu
        | OpKind::Celu
        | OpKind::ThresholdedRelu
        | OpKind::Softsign
        | OpKind::Mish => via_f32(inputs, all, |i| one(float_unary(op, attrs, i))),
        OpKind::Shrink => via_f32(inputs, all, |i| one(shrink(i, attrs))),
        OpKind::BitwiseAnd | OpKind::BitwiseOr | OpKind::BitwiseXor | OpKind::BitwiseNot => {
            one(bitwise(op, inputs))
        }
        OpKind::BitShift => one(bit_shift(inputs, attrs)),
        OpKind::StringConcat => one(string_concat(inputs)),
        OpKind::StringSplit => string_split(inputs, attrs),
        OpKind::StringNormalizer => one(string_normalizer(inputs, attrs)),
        OpKind::TfIdfVectorizer => one(tfidf_vectorizer(inputs, attrs)),
        OpKind::ReduceLogSum => via_f32(inputs, all, |i| one(reduce_log_sum(i, attrs))),
        OpKind::Hardmax => via_f32(inputs, all, |i| one(hardmax(i, attrs))),
        OpKind::Einsum => via_f32(inputs, all, |i| one(einsum(i, attrs))),
        OpKind::Det => via_f32(inputs, all, |i| one(det(i))),
        other => bail!("{other} is not an elementwise or algebra op of this module"),
    }
}

/// ln(1 + eˣ) without overflow.
fn softplus(x: f64) -> f64 {
    if x > 0.0 {
        x + (-x).exp().ln_1p()
    } else {
        x.exp().ln_1p()
    }
}

/// The scalar function of a one-input float op, with its attributes read.
fn float_fn(op: &OpKind, attrs: &Attrs) -> OpResult<Box<dyn Fn(f64) -> f64 + Send + Sync>> {
    let attr = |name: &str, default: f32| f64::from(attrs.float_or(name, default));
    Ok(match op {
        OpKind::Acos => Box::new(f64::acos),
        OpKind::Asin => Box::new(f64::asin),
        OpKind::Acosh => Box::new(f64::acosh),
        OpKind::Asinh => Box::new(f64::asinh),
        OpKind::Atanh => Box::new(f64::atanh),
        OpKind::Cosh => Box::new(f64::cosh),
        OpKind::Sinh => Box::new(f64::sinh),
        OpKind::Softsign => Box::new(|x| x / (1.0 + x.abs())),
        OpKind::Mish => Box::new(|x| x * softplus(x).tanh()),
        OpKind::Selu => {
            // The defaults are the f32 constants ONNX specifies.
            let alpha = attr("alpha", 1.673_263_2);
            let gamma = attr("gamma", 1.050_701);
            Box::new(move |x| {
                if x > 0.0 {
                    gamma * x
                } else {
                    gamma * (alpha * x.exp() - alpha)
                }
            })
        }
        OpKind::Celu => {
            let alpha = attr("alpha", 1.0);
            if alpha == 0.0 {
                bail!("alpha must not be zero");
            }
            Box::new(move |x| x.max(0.0) + (alpha * ((x / alpha).exp() - 1.0)).min(0.0))
        }
        OpKind::ThresholdedRelu => {
            let alpha = attr("alpha", 1.0);
            Box::new(move |x| if x > alpha { x } else { 0.0 })
        }
        other => bail!("{other} is not a float unary op"),
    })
}

/// Evaluate a one-input float op (Acos ... Mish).
pub(crate) fn float_unary(
    op: &OpKind,
    attrs: &Attrs,
    inputs: &[Option<&Value>],
) -> OpResult<Value> {
    let x = input(inputs, 0, "X")?;
    let f = float_fn(op, attrs)?;
    dispatch_float!(x, T => {
        let a = typed::<T>(x, "X")?;
        Ok(T::into_value(map(a, |&v| T::from_f64(f(v.to_f64())))?))
    })
}

/// ONNX Shrink: `x + bias` below `-lambd`, `x - bias` above `lambd`, 0 between; any
/// numeric type.
pub(crate) fn shrink(inputs: &[Option<&Value>], attrs: &Attrs) -> OpResult<Value> {
    let x = input(inputs, 0, "input")?;
    let bias = f64::from(attrs.float_or("bias", 0.0));
    let lambd = f64::from(attrs.float_or("lambd", 0.5));
    dispatch_num!(x, T => {
        let a = typed::<T>(x, "input")?;
        Ok(T::into_value(map(a, |&v| {
            let f = v.to_f64();
            if f < -lambd {
                T::from_f64(f + bias)
            } else if f > lambd {
                T::from_f64(f - bias)
            } else {
                T::ZERO
            }
        })?))
    })
}

/// BitwiseAnd, BitwiseOr, BitwiseXor (broadcasting) and BitwiseNot on integers.
pub(crate) fn bitwise(op: &OpKind, inputs: &[Option<&Value>]) -> OpResult<Value> {
    let x = input(inputs, 0, "X")?;
    if *op == OpKind::BitwiseNot {
        return dispatch_int!(x, "input", T => Ok(T::into_value(map(typed::<T>(x, "X")?, |&v| !v)?)));
    }
    let y = input(inputs, 1, "Y")?;
    if x.dtype() != y.dtype() {
        bail!(
            "inputs are {} and {}; their dtypes must match",
            x.dtype(),
            y.dtype()
        );
    }
    dispatch_int!(x, "input", T => {
        let (a, b) = (typed::<T>(x, "X")?, typed::<T>(y, "Y")?);
        let out = match op {
            OpKind::BitwiseAnd => zip2(a, b, |&p, &q| p & q)?,
            OpKind::BitwiseOr => zip2(a, b, |&p, &q| p | q)?,
            OpKind::BitwiseXor => zip2(a, b, |&p, &q| p ^ q)?,
            other => bail!("{other} is not a bitwise op"),
        };
        Ok(T::into_value(out))
    })
}

/// ONNX BitShift (`direction` LEFT or RIGHT). Shift amounts outside `[0, bits)` give 0,
/// or -1 for a right shift of a negative signed value; right shifts of signed values
/// are arithmetic and left shifts wrap.
pub(crate) fn bit_shift(inputs: &[Option<&Value>], attrs: &Attrs) -> OpResult<Value> {
    let x = input(inputs, 0, "X")?;
    let y = input(inputs, 1, "Y")?;
    if x.dtype() != y.dtype() {
        bail!(
            "inputs are {} and {}; their dtypes must match",
            x.dtype(),
            y.dtype()
        );
    }
    let left = match attrs.str("direction") {
        Some("LEFT") => true,
        Some("RIGHT") => false,
        Some(other) => bail!("unknown direction `{other}` (expected LEFT or RIGHT)"),
        None => bail!("missing attribute direction"),
    };
    dispatch_int!(x, "input", T => {
        let (a, b) = (typed::<T>(x, "X")?, typed::<T>(y, "Y")?);
        let bits = (std::mem::size_of::<T>() * 8) as i128;
        let out = zip2(a, b, move |&v, &s| {
            let s = s.to_i128();
            if (0..bits).contains(&s) {
                if left {
                    v.wrapping_shl(s as u32)
                } else {
                    v >> (s as u32)
                }
            } else if !left && is_negative(v) {
                // An arithmetic right shift of every bit leaves the sign.
                T::from_i128(-1)
            } else {
                T::ZERO
            }
        })?;
        Ok(T::into_value(out))
    })
}

/// ONNX StringConcat: elementwise concatenation of two broadcast string tensors.
pub(crate) fn string_concat(inputs: &[Option<&Value>]) -> OpResult<Value> {
    let x = typed::<String>(input(inputs, 0, "X")?, "X")?;
    let y = typed::<String>(input(inputs, 1, "Y")?, "Y")?;
    Ok(Value::Str(zip2(x, y, |a, b| format!("{a}{b}"))?))
}

/// Python's `str.split()` without a separator: runs of whitespace separate, leading and
/// trailing whitespace is ignored; after `max` splits the rest is one piece.
fn split_whitespace(s: &str, max: Option<usize>) -> Vec<String> {
    let mut out = vec![];
    let mut rest = s.trim_start();
    while !rest.is_empty() {
        if max.is_some_and(|m| out.len() >= m) {
            out.push(rest.to_string());
            break;
        }
        match rest.find(char::is_whitespace) {
            Some(i) => {
                out.push(rest[..i].to_string());
                rest = rest[i..].trim_start();
            }
            None => {
                out.push(rest.to_string());
                break;
            }
        }
    }
    out
}

/// ONNX StringSplit: each string split at `delimiter` (whitespace runs when empty or
/// absent) at most `maxsplit` times; the pieces, padded with empty strings to the
/// longest split, and the number of pieces per string.
pub(crate) fn string_split(inputs: &[Option<&Value>], attrs: &Attrs) -> OpResult<Vec<Value>> {
    let x = typed::<String>(input(inputs, 0, "X")?, "X")?;
    let max = match attrs.int("maxsplit") {
        None => None,
        Some(m) => match usize::try_from(m) {
            Ok(m) => Some(m),
            Err(_) => bail!("maxsplit must not be negative, got {m}"),
        },
    };
    let delim = attrs.str("delimiter").unwrap_or("");
    let pieces: Vec<Vec<String>> = x
        .iter()
        .map(|s| {
            if delim.is_empty() {
                split_whitespace(s, max)
            } else {
                match max {
                    Some(m) => s.splitn(m + 1, delim).map(str::to_string).collect(),
                    None => s.split(delim).map(str::to_string).collect(),
                }
            }
        })
        .collect();
    let width = pieces.iter().map(Vec::len).max().unwrap_or(0);
    let mut shape = x.shape().to_vec();
    let counts = pieces.iter().map(|p| p.len() as i64).collect();
    let z = Value::I64(array_from(&shape, counts)?);
    shape.push(width);
    checked_len(&shape)?;
    let mut flat = Vec::with_capacity(pieces.len() * width);
    for mut p in pieces {
        p.resize(width, String::new());
        flat.extend(p);
    }
    Ok(vec![Value::Str(array_from(&shape, flat)?), z])
}

/// ONNX StringNormalizer: drop the elements equal to a stopword (ignoring case unless
/// `is_case_sensitive`), then change case per `case_change_action`. Input `[C]` or
/// `[1, C]`; when nothing is left the output holds one empty string.
pub(crate) fn string_normalizer(inputs: &[Option<&Value>], attrs: &Attrs) -> OpResult<Value> {
    let x = typed::<String>(input(inputs, 0, "X")?, "X")?;
    let row = match *x.shape() {
        [_] => false,
        [1, _] => true,
        ref s => bail!("input must be [C] or [1, C], got shape {s:?}"),
    };
    let sensitive = attrs.int_or("is_case_sensitive", 0) != 0;
    let stops: Vec<String> = match attrs.get("stopwords") {
        None => vec![],
        Some(smelt_ir::Attr::Strs(v)) => v.clone(),
        Some(other) => bail!("stopwords must be a list of strings, got {other:?}"),
    };
    let action = attrs.str("case_change_action").unwrap_or("NONE");
    if !matches!(action, "NONE" | "LOWER" | "UPPER") {
        bail!("unknown case_change_action `{action}` (expected NONE, LOWER or UPPER)");
    }
    let is_stop = |w: &str| {
        stops.iter().any(|s| {
            if sensitive {
                s == w
            } else {
                s.to_lowercase() == w.to_lowercase()
            }
        })
    };
    let mut kept: Vec<String> = x
        .iter()
        .filter(|w| !is_stop(w))
        .map(|w| match action {
            "LOWER" => w.to_lowercase(),
            "UPPER" => w.to_uppercase(),
            _ => w.clone(),
        })
        .collect();
    if kept.is_empty() {
        kept.push(String::new());
    }
    let shape = if row {
        vec![1, kept.len()]
    } else {
        vec![kept.len()]
    };
    Ok(Value::Str(array_from(&shape, kept)?))
}

/// One token of a TfIdfVectorizer input or pool.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Token {
    Int(i64),
    Str(String),
}

/// ONNX TfIdfVectorizer: counts of the pool's n-grams (lengths `min_gram_length` to
/// `max_gram_length`, items up to `max_skip_count` apart) in each row, reported as
/// TF (counts), IDF (weight where present) or TFIDF (count times weight).
pub(crate) fn tfidf_vectorizer(inputs: &[Option<&Value>], attrs: &Attrs) -> OpResult<Value> {
    use std::collections::HashMap;
    let x = input(inputs, 0, "X")?;
    let tokens: Vec<Token> = match x {
        Value::Str(a) => a.iter().cloned().map(Token::Str).collect(),
        Value::I32(_) | Value::I64(_) => x.to_i64_vec("X")?.into_iter().map(Token::Int).collect(),
        other => bail!("X must be i32, i64 or string, got {}", other.dtype()),
    };
    let (rows, width, batched) = match *x.shape() {
        [c] => (1, c, false),
        [n, c] => (n, c, true),
        ref s => bail!("X must be [C] or [N, C], got shape {s:?}"),
    };
    let int = |name: &str| -> OpResult<usize> {
        let v = attrs
            .int(name)
            .ok_or_else(|| OpError::new(format!("missing attribute {name}")))?;
        usize::try_from(v)
            .map_err(|_| OpError::new(format!("{name} must not be negative, got {v}")))
    };
    let (min_n, max_n, max_skip) = (
        int("min_gram_length")?,
        int("max_gram_length")?,
        int("max_skip_count")?,
    );
    if min_n == 0 || min_n > max_n {
        bail!(
            "gram lengths must satisfy 1 <= min_gram_length ({min_n}) <= max_gram_length ({max_n})"
        );
    }
    let pool: Vec<Token> = match (attrs.ints("pool_int64s"), attrs.get("pool_strings")) {
        (Some(p), _) => p.iter().map(|&v| Token::Int(v)).collect(),
        (None, Some(smelt_ir::Attr::Strs(p))) => p.iter().cloned().map(Token::Str).collect(),
        _ => bail!("one of pool_int64s and pool_strings is required"),
    };
    let starts = attrs.ints("ngram_counts").unwrap_or(&[]);
    let indexes = attrs.ints("ngram_indexes").unwrap_or(&[]);
    // Pool n-grams in order: starts[k] is where the (k+1)-grams begin.
    let mut grams: HashMap<Vec<Token>, usize> = HashMap::new();
    let mut j = 0;
    for (k, &start) in starts.iter().enumerate() {
        let n = k + 1;
        let start = usize::try_from(start).unwrap_or(usize::MAX);
        let end = starts
            .get(k + 1)
            .map_or(pool.len(), |&e| usize::try_from(e).unwrap_or(usize::MAX));
        if start > end || end > pool.len() || !(end - start).is_multiple_of(n) {
            bail!(
                "ngram_counts {starts:?} do not divide the pool of {} items",
                pool.len()
            );
        }
        for g in pool[start..end].chunks(n) {
            let Some(&out) = indexes.get(j) else {
                bail!(
                    "ngram_indexes has {} entries, fewer than the pool's n-grams",
                    indexes.len()
                )
            };
            let out = usize::try_from(out)
                .map_err(|_| OpError::new(format!("ngram_indexes entry {out} is negative")))?;
            grams.insert(g.to_vec(), out);
            j += 1;
        }
    }
    let size = indexes
        .iter()
        .map(|&i| i.saturating_add(1))
        .max()
        .unwrap_or(0)
        .max(0) as usize;
    checked_len(&[rows, size])?;
    let mut counts = vec![0u64; rows * size];
    for r in 0..rows {
        let row = &tokens[r * width..(r + 1) * width];
        // Items further apart than the row is long never form a gram.
        for dist in 1..=(max_skip + 1).min(width.max(1)) {
            // Unigrams do not depend on the distance: count them once.
            let lo = if dist > 1 { min_n.max(2) } else { min_n };
            for s in 0..width {
                for n in lo..=max_n {
                    let last = (n - 1).checked_mul(dist).and_then(|v| v.checked_add(s));
                    if last.is_none_or(|l| l >= width) {
                        break;
                    }
                    let gram: Vec<Token> = (0..n).map(|i| row[s + i * dist].clone()).collect();
                    if let Some(&o) = grams.get(&gram) {
                        counts[r * size + o] += 1;
                    }
                }
            }
            if max_n < 2 {
                break;
            }
        }
    }
    let weights = attrs.floats("weights");
    let mode = attrs.str("mode").unwrap_or("TF");
    let out: Vec<f32> = counts
        .iter()
        .enumerate()
        .map(|(p, &c)| {
            let w = weights
                .and_then(|w| w.get(p % size.max(1)).copied())
                .unwrap_or(1.0);
            match mode {
                "TF" => Ok(c as f32),
                "IDF" => Ok(if c > 0 { w } else { 0.0 }),
                "TFIDF" => Ok(c as f32 * w),
                other => bail!("unknown mode `{other}` (expected TF, IDF or TFIDF)"),
            }
        })
        .collect::<OpResult<_>>()?;
    let shape = if batched {
        vec![rows, size]
    } else {
        vec![size]
    };
    Ok(Value::F32(array_from(&shape, out)?))
}

/// ONNX ReduceLogSum: the natural log of ReduceSum.
pub(crate) fn reduce_log_sum(inputs: &[Option<&Value>], attrs: &Attrs) -> OpResult<Value> {
    let sum = super::reduce::reduce(&OpKind::ReduceSum, attrs, inputs)?;
    dispatch_float!(&sum, T => Ok(T::into_value(map(typed::<T>(&sum, "sum")?, |&v| T::from_f64(v.to_f64().ln()))?)))
}

/// ONNX Hardmax: 1 at the first maximum along `axis`, 0 elsewhere.
pub(crate) fn hardmax(inputs: &[Option<&Value>], attrs: &Attrs) -> OpResult<Value> {
    let x = input(inputs, 0, "input")?;
    let shape = x.shape().to_vec();
    if shape.is_empty() {
        bail!("input must have rank at least 1");
    }
    let axis = norm_axis(attrs.int_or("axis", -1), shape.len())?;
    let outer: usize = shape[..axis].iter().product();
    let dim = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    dispatch_num!(x, T => {
        let a = to_std_vec(typed::<T>(x, "input")?);
        let mut out = vec![T::ZERO; a.len()];
        for o in 0..outer {
            for n in 0..inner {
                let at = |i: usize| (o * dim + i) * inner + n;
                let mut best: Option<usize> = None;
                for i in 0..dim {
                    let v = a[at(i)];
                    if v.is_nan() {
                        continue;
                    }
                    if best.is_none_or(|b| v > a[at(b)]) {
                        best = Some(i);
                    }
                }
                if let Some(b) = best {
                    out[at(b)] = T::ONE;
                }
            }
        }
        Ok(T::into_value(array_from(&shape, out)?))
    })
}

/// A parsed Einsum equation: per input, one label per dim; the output's labels; the
/// size of every label. Ellipsis dims get labels 256 and up (right-aligned).
struct Einsum {
    terms: Vec<Vec<usize>>,
    out: Vec<usize>,
    sizes: Vec<usize>,
}

const ELLIPSIS: usize = 256;

/// One term's labels for an input of rank `rank` (`None` for the output, whose
/// ellipsis is expanded by the caller), and the number of dims its ellipsis stands for.
fn parse_term(term: &str, rank: Option<usize>) -> OpResult<(Vec<usize>, usize)> {
    let (before, after, has_ell) = match term.split_once("...") {
        Some((b, a)) => (b, a, true),
        None => (term, "", false),
    };
    let letter = |c: char| -> OpResult<usize> {
        if c.is_ascii_alphabetic() {
            Ok(c as usize)
        } else {
            bail!("equation term `{term}` has invalid character `{c}`")
        }
    };
    let b: Vec<usize> = before.chars().map(letter).collect::<OpResult<_>>()?;
    let a: Vec<usize> = after.chars().map(letter).collect::<OpResult<_>>()?;
    let n_ell = match (has_ell, rank) {
        (false, Some(r)) if r != b.len() => {
            bail!(
                "equation term `{term}` has {} labels but its input has rank {r}",
                b.len()
            )
        }
        (false, _) => 0,
        (true, Some(r)) if r < b.len() + a.len() => {
            bail!("equation term `{term}` has more labels than its input's rank {r}")
        }
        (true, Some(r)) => r - b.len() - a.len(),
        (true, None) => usize::MAX,
    };
    let mut labels = b;
    if has_ell && n_ell != usize::MAX {
        labels.extend((0..n_ell).map(|i| ELLIPSIS + i));
    }
    labels.extend(a);
    Ok((labels, n_ell))
}

fn parse_einsum(eq: &str, shapes: &[&[usize]]) -> OpResult<Einsum> {
    let eq: String = eq.chars().filter(|c| !c.is_whitespace()).collect();
    let (lhs, rhs) = match eq.split_once("->") {
        Some((l, r)) => (l, Some(r)),
        None => (eq.as_str(), None),
    };
    let lterms: Vec<&str> = lhs.split(',').collect();
    if lterms.len() != shapes.len() {
        bail!(
            "equation `{eq}` has {} input terms but the op has {} inputs",
            lterms.len(),
            shapes.len()
        );
    }
    let mut terms = vec![];
    let mut max_ell = 0;
    for (t, s) in lterms.iter().zip(shapes) {
        let (labels, n_ell) = parse_term(t, Some(s.len()))?;
        max_ell = max_ell.max(n_ell);
        terms.push((labels, n_ell));
    }
    // Right-align ellipsis labels: dim i of an n-dim ellipsis is label ELLIPSIS + (max - n + i).
    let terms: Vec<Vec<usize>> = terms
        .into_iter()
        .map(|(labels, n)| {
            labels
                .into_iter()
                .map(|l| if l >= ELLIPSIS { l + (max_ell - n) } else { l })
                .collect()
        })
        .collect();
    let out: Vec<usize> = match rhs {
        Some(r) => {
            let (out, _) = parse_term(r, None)?;
            // Expand the output's ellipsis (marked by an empty split) to all ellipsis dims.
            if r.contains("...") {
                let pos = r.find("...").unwrap_or(0);
                let before = r[..pos].chars().count();
                let mut full: Vec<usize> = out[..before].to_vec();
                full.extend((0..max_ell).map(|i| ELLIPSIS + i));
                full.extend_from_slice(&out[before..]);
                full
            } else {
                out
            }
        }
        None => {
            let mut count = std::collections::BTreeMap::new();
            for t in &terms {
                for &l in t.iter().filter(|&&l| l < ELLIPSIS) {
                    *count.entry(l).or_insert(0) += 1;
                }
            }
            let mut out: Vec<usize> = (0..max_ell).map(|i| ELLIPSIS + i).collect();
            out.extend(count.into_iter().filter(|&(_, c)| c == 1).map(|(l, _)| l));
            out
        }
    };
    let mut sizes = vec![1usize; ELLIPSIS + max_ell];
    let mut seen = vec![false; ELLIPSIS + max_ell];
    for (t, s) in terms.iter().zip(shapes) {
        for (&l, &d) in t.iter().zip(s.iter()) {
            if !seen[l] || (l >= ELLIPSIS && sizes[l] == 1) {
                sizes[l] = d;
                seen[l] = true;
            } else if sizes[l] != d && !(l >= ELLIPSIS && d == 1) {
                bail!("equation `{eq}`: a label has sizes {} and {d}", sizes[l]);
            }
        }
    }
    for (i, &l) in out.iter().enumerate() {
        if !seen[l] && l < ELLIPSIS {
            bail!(
                "equation `{eq}`: output label `{}` appears in no input",
                l as u8 as char
            );
        }
        if out[..i].contains(&l) {
            bail!("equation `{eq}`: output repeats a label");
        }
    }
    Ok(Einsum { terms, out, sizes })
}

/// ONNX Einsum: sums of products over the labels the output leaves out.
pub(crate) fn einsum(inputs: &[Option<&Value>], attrs: &Attrs) -> OpResult<Value> {
    let vals: Vec<&Value> = inputs.iter().flatten().copied().collect();
    let Some(eq) = attrs.str("equation") else {
        bail!("missing attribute equation")
    };
    let Some(first) = vals.first() else {
        bail!("needs at least one input")
    };
    if vals.iter().any(|v| v.dtype() != first.dtype()) {
        bail!("inputs must share one dtype");
    }
    let shapes: Vec<&[usize]> = vals.iter().map(|v| v.shape()).collect();
    let e = parse_einsum(eq, &shapes)?;
    // Every label in use, output labels first, then the summed ones.
    let mut labels = e.out.clone();
    for t in &e.terms {
        for &l in t {
            if !labels.contains(&l) {
                labels.push(l);
            }
        }
    }
    let dims: Vec<usize> = labels.iter().map(|&l| e.sizes[l]).collect();
    checked_len(&dims)?;
    let out_shape: Vec<usize> = e.out.iter().map(|&l| e.sizes[l]).collect();
    // Per input, the element stride each label moves (repeated labels add up, walking a
    // diagonal; broadcast size-1 dims move nothing).
    let strides: Vec<Vec<usize>> = e
        .terms
        .iter()
        .zip(&shapes)
        .map(|(t, s)| {
            let mut st = vec![0; labels.len()];
            let mut acc = 1;
            for d in (0..s.len()).rev() {
                let k = labels.iter().position(|&l| l == t[d]).unwrap_or(0);
                if s[d] != 1 {
                    st[k] += acc;
                }
                acc *= s[d];
            }
            st
        })
        .collect();
    let out_len = checked_len(&out_shape)?;
    let total: usize = dims.iter().product();
    let per_out = total.checked_div(out_len).unwrap_or(0);
    dispatch_num!(first, T => {
        let arrays: Vec<Vec<T>> = vals
            .iter()
            .map(|v| typed::<T>(v, "input").map(to_std_vec))
            .collect::<OpResult<_>>()?;
        let mut out = vec![T::ZERO; out_len];
        let mut idx = vec![0usize; labels.len()];
        for o in out.iter_mut() {
            let mut acc = T::ZERO;
            for _ in 0..per_out {
                let mut p = T::ONE;
                for (a, st) in arrays.iter().zip(&strides) {
                    let off: usize = idx.iter().zip(st).map(|(i, s)| i * s).sum();
                    p = p.mul(a[off]);
                }
                acc = acc.add(p);
                advance(&mut idx, &dims);
            }
            *o = acc;
        }
        Ok(T::into_value(array_from(&out_shape, out)?))
    })
}

/// Row-major increment of a multi-index.
fn advance(idx: &mut [usize], dims: &[usize]) {
    for d in (0..dims.len()).rev() {
        idx[d] += 1;
        if idx[d] < dims[d] {
            return;
        }
        idx[d] = 0;
    }
}

/// ONNX Det: the determinant of each trailing square matrix, by LU decomposition with
/// partial pivoting in f64.
pub(crate) fn det(inputs: &[Option<&Value>]) -> OpResult<Value> {
    let x = input(inputs, 0, "X")?;
    let shape = x.shape().to_vec();
    let r = shape.len();
    if r < 2 || shape[r - 1] != shape[r - 2] {
        bail!("input must be square matrices [..., M, M], got shape {shape:?}");
    }
    let m = shape[r - 1];
    let out_shape = shape[..r - 2].to_vec();
    dispatch_float!(x, T => {
        let a: Vec<f64> = typed::<T>(x, "X")?.iter().map(|v| v.to_f64()).collect();
        // The determinant of a 0×0 matrix is 1.
        let out: Vec<T> = if m == 0 {
            vec![T::ONE; out_shape.iter().product()]
        } else {
            a.chunks(m * m).map(|c| T::from_f64(lu_det(c.to_vec(), m))).collect()
        };
        Ok(T::into_value(array_from(&out_shape, out)?))
    })
}

fn lu_det(mut a: Vec<f64>, m: usize) -> f64 {
    let mut det = 1.0;
    for c in 0..m {
        let p = (c..m)
            .max_by(|&i, &j| a[i * m + c].abs().total_cmp(&a[j * m + c].abs()))
            .unwrap_or(c);
        if a[p * m + c] == 0.0 {
            return 0.0;
        }
        if p != c {
            for k in 0..m {
                a.swap(p * m + k, c * m + k);
            }
            det = -det;
        }
        let pivot = a[c * m + c];
        det *= pivot;
        for i in c + 1..m {
            let f = a[i * m + c] / pivot;
            for k in c..m {
                a[i * m + k] -= f * a[c * m + k];
            }
        }
    }
    det
}

/// `v < 0`, written so that it also compiles, trivially false, for unsigned `T`.
#[allow(clippy::absurd_extreme_comparisons)]
fn is_negative<T: Num>(v: T) -> bool {
    v < T::ZERO
}

#[cfg(test)]
mod tests {
    use crate::ops::testutil::{attrs, data, fails, run, v};
    use smelt_ir::{Attr, Attrs, OpKind};

    fn close(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|(x, y)| (x - y).abs() <= 1e-5 * (1.0 + y.abs()))
    }

    #[test]
    fn float_functions() {
        let x = v(&[3], &[-0.5f32, 0.0, 0.5]);
        let y = run(OpKind::Asin, &Attrs::new(), &[&x]);
        assert!(close(
            &data::<f32>(&y).1,
            &[
                -std::f32::consts::FRAC_PI_6,
                0.0,
                std::f32::consts::FRAC_PI_6
            ]
        ));
        let y = run(OpKind::Softsign, &Attrs::new(), &[&x]);
        assert!(close(&data::<f32>(&y).1, &[-1.0 / 3.0, 0.0, 1.0 / 3.0]));
        let y = run(
            OpKind::ThresholdedRelu,
            &attrs(&[("alpha", Attr::Float(0.1))]),
            &[&x],
        );
        assert_eq!(data::<f32>(&y).1, vec![0.0, 0.0, 0.5]);
        let y = run(
            OpKind::Selu,
            &attrs(&[("alpha", Attr::Float(2.0)), ("gamma", Attr::Float(3.0))]),
            &[&x],
        );
        assert!(close(
            &data::<f32>(&y).1,
            &[3.0 * (2.0 * (-0.5f32).exp() - 2.0), 0.0, 1.5]
        ));
        let y = run(OpKind::Celu, &Attrs::new(), &[&x]);
        assert!(close(
            &data::<f32>(&y).1,
            &[(-0.5f32).exp() - 1.0, 0.0, 0.5]
        ));
        let y = run(
            OpKind::Shrink,
            &attrs(&[("bias", Attr::Float(1.0)), ("lambd", Attr::Float(0.2))]),
            &[&x],
        );
        assert_eq!(data::<f32>(&y).1, vec![0.5, 0.0, -0.5]);
        let y = run(OpKind::Mish, &Attrs::new(), &[&v(&[1], &[1000.0f64])]);
        assert_eq!(data::<f64>(&y).1, vec![1000.0]);
        assert!(fails(OpKind::Acos, &Attrs::new(), &[&v(&[1], &[1i32])]).contains("float"));
    }

    #[test]
    fn bitwise_and_shifts() {
        let a = v(&[3], &[0b1100u8, 0xff, 1]);
        let b = v(&[1], &[0b1010u8]);
        assert_eq!(
            data::<u8>(&run(OpKind::BitwiseAnd, &Attrs::new(), &[&a, &b])).1,
            vec![8, 10, 0]
        );
        assert_eq!(
            data::<u8>(&run(OpKind::BitwiseOr, &Attrs::new(), &[&a, &b])).1,
            vec![14, 255, 11]
        );
        assert_eq!(
            data::<u8>(&run(OpKind::BitwiseXor, &Attrs::new(), &[&a, &b])).1,
            vec![6, 245, 11]
        );
        assert_eq!(
            data::<u8>(&run(OpKind::BitwiseNot, &Attrs::new(), &[&a])).1,
            vec![0b1111_0011, 0, 254]
        );
        assert!(
            fails(OpKind::BitwiseNot, &Attrs::new(), &[&v(&[1], &[1.0f32])]).contains("integer")
        );

        let left = attrs(&[("direction", Attr::Str("LEFT".into()))]);
        let right = attrs(&[("direction", Attr::Str("RIGHT".into()))]);
        let x = v(&[4], &[-8i8, 64, 1, -1]);
        let s = v(&[4], &[1i8, 2, 8, -1]);
        assert_eq!(
            data::<i8>(&run(OpKind::BitShift, &left, &[&x, &s])).1,
            vec![-16, 0, 0, 0]
        );
        assert_eq!(
            data::<i8>(&run(OpKind::BitShift, &right, &[&x, &s])).1,
            vec![-4, 16, 0, -1]
        );
        assert!(fails(OpKind::BitShift, &Attrs::new(), &[&x, &s]).contains("direction"));
    }

    #[test]
    fn string_concat_broadcasts() {
        let x = v(&[2], &["a".to_string(), "é".to_string()]);
        let y = v(&[1], &["!".to_string()]);
        let z = run(OpKind::StringConcat, &Attrs::new(), &[&x, &y]);
        assert_eq!(data::<String>(&z).1, vec!["a!", "é!"]);
        assert!(fails(
            OpKind::StringConcat,
            &Attrs::new(),
            &[&x, &v(&[1], &[1.0f32])]
        )
        .contains("Y"));
    }

    #[test]
    fn string_split_normalize_and_log_sum() {
        let s = |v_: &[&str]| {
            v(
                &[v_.len()],
                &v_.iter().map(|x| x.to_string()).collect::<Vec<_>>(),
            )
        };
        let x = s(&["a.b.c", "d"]);
        let out = crate::ops::eval(
            &OpKind::StringSplit,
            &attrs(&[("delimiter", Attr::Str(".".into()))]),
            &[Some(&x)],
            2,
        )
        .unwrap();
        assert_eq!(
            data::<String>(&out[0]),
            (
                vec![2, 3],
                vec!["a", "b", "c", "d", "", ""]
                    .into_iter()
                    .map(String::from)
                    .collect()
            )
        );
        assert_eq!(data::<i64>(&out[1]).1, vec![3, 1]);
        let x = s(&["  o n  n x "]);
        let out = crate::ops::eval(
            &OpKind::StringSplit,
            &attrs(&[("maxsplit", Attr::Int(2))]),
            &[Some(&x)],
            2,
        )
        .unwrap();
        assert_eq!(data::<String>(&out[0]).1, vec!["o", "n", "n x "]);

        let x = s(&["Monday", "tuesday", "monday"]);
        let a = attrs(&[
            ("stopwords", Attr::Strs(vec!["monday".into()])),
            ("case_change_action", Attr::Str("UPPER".into())),
        ]);
        assert_eq!(
            data::<String>(&run(OpKind::StringNormalizer, &a, &[&x])).1,
            vec!["TUESDAY"]
        );
        let a = a.with("is_case_sensitive", Attr::Int(1));
        assert_eq!(
            data::<String>(&run(OpKind::StringNormalizer, &a, &[&x])).1,
            vec!["MONDAY", "TUESDAY"]
        );

        let x = v(&[2, 2], &[1.0f32, 2.0, 3.0, 4.0]);
        let y = run(
            OpKind::ReduceLogSum,
            &attrs(&[("keepdims", Attr::Int(0))]),
            &[&x, &v(&[1], &[1i64])],
        );
        assert!(close(&data::<f32>(&y).1, &[3f32.ln(), 7f32.ln()]));
    }

    #[test]
    fn tfidf_counts_ngrams_with_skips() {
        let x = v(&[6], &[2i32, 3, 5, 3, 2, 5]);
        let a = |skip: i64, min: i64| {
            attrs(&[
                ("min_gram_length", Attr::Int(min)),
                ("max_gram_length", Attr::Int(2)),
                ("max_skip_count", Attr::Int(skip)),
                ("mode", Attr::Str("TF".into())),
                ("ngram_counts", Attr::Ints(vec![0, 2])),
                ("ngram_indexes", Attr::Ints(vec![0, 1, 2, 3])),
                ("pool_int64s", Attr::Ints(vec![2, 3, 2, 5, 3, 5])),
            ])
        };
        // Pool: unigrams 2, 3; bigrams (2, 5), (3, 5).
        let y = run(OpKind::TfIdfVectorizer, &a(0, 1), &[&x]);
        assert_eq!(data::<f32>(&y), (vec![4], vec![2.0, 2.0, 1.0, 1.0]));
        let y = run(OpKind::TfIdfVectorizer, &a(1, 2), &[&x]);
        assert_eq!(data::<f32>(&y).1, vec![0.0, 0.0, 2.0, 2.0]);
        assert!(fails(OpKind::TfIdfVectorizer, &a(0, 3), &[&x]).contains("min_gram_length"));
    }

    #[test]
    fn hardmax_einsum_det() {
        let x = v(&[2, 3], &[1.0f32, 3.0, 3.0, 0.0, -1.0, -2.0]);
        let y = run(OpKind::Hardmax, &Attrs::new(), &[&x]);
        assert_eq!(data::<f32>(&y).1, vec![0.0, 1.0, 0.0, 1.0, 0.0, 0.0]);

        let eq = |e: &str| attrs(&[("equation", Attr::Str(e.into()))]);
        let a = v(&[2, 2], &[1.0f64, 2.0, 3.0, 4.0]);
        let b = v(&[2, 2], &[5.0f64, 6.0, 7.0, 8.0]);
        let y = run(OpKind::Einsum, &eq("ij,jk->ik"), &[&a, &b]);
        assert_eq!(data::<f64>(&y).1, vec![19.0, 22.0, 43.0, 50.0]);
        let y = run(OpKind::Einsum, &eq("ii"), &[&a]);
        assert_eq!(data::<f64>(&y), (vec![], vec![5.0]));
        let y = run(OpKind::Einsum, &eq("ij"), &[&a]);
        assert_eq!(data::<f64>(&y).1, vec![1.0, 2.0, 3.0, 4.0]);
        let y = run(OpKind::Einsum, &eq("ji"), &[&a]);
        assert_eq!(data::<f64>(&y).1, vec![1.0, 3.0, 2.0, 4.0]);
        let y = run(
            OpKind::Einsum,
            &eq("...ii->...i"),
            &[&v(&[1, 2, 2], &[1.0f64, 2.0, 3.0, 4.0])],
        );
        assert_eq!(data::<f64>(&y), (vec![1, 2], vec![1.0, 4.0]));
        assert!(fails(OpKind::Einsum, &eq("ij,jk->ik"), &[&a]).contains("input terms"));
        assert!(fails(OpKind::Einsum, &eq("ijk->i"), &[&a]).contains("rank"));

        let y = run(
            OpKind::Det,
            &Attrs::new(),
            &[&v(&[2, 2, 2], &[1.0f32, 2.0, 3.0, 4.0, 0.0, 1.0, 1.0, 0.0])],
        );
        assert!(close(&data::<f32>(&y).1, &[-2.0, -1.0]));
        assert!(fails(OpKind::Det, &Attrs::new(), &[&v(&[2, 3], &[0.0f32; 6])]).contains("square"));
        let y = run(OpKind::Det, &Attrs::new(), &[&v(&[2, 0, 0], &[] as &[f32])]);
        assert_eq!(data::<f32>(&y), (vec![2], vec![1.0, 1.0]));
    }
}
