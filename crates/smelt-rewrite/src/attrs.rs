//! Canonical attribute strings, attribute literals and ONNX attribute defaults.
//!
//! An e-node's op symbol carries its attributes as one canonical string (`perm=[1,0]`,
//! `axis=-1,epsilon=1e-12`), so two nodes are hash-consed together exactly when their
//! attributes are equal. The string never contains spaces or parentheses: egg's
//! s-expression reader splits on those, and op symbols must survive `RecExpr` printing
//! and parsing.

use std::fmt::Write;

use smelt_ir::{Attr, Attrs, DType, OpKind, Tensor};

/// The canonical text of a whole attribute map: `k=v` pairs sorted by name, joined by `,`.
pub fn canonical(attrs: &Attrs) -> String {
    let mut out = String::new();
    for (i, (k, v)) in attrs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_name(k, &mut out);
        out.push('=');
        push_value(v, &mut out);
    }
    out
}

/// The canonical text of one attribute value.
pub fn canonical_value(v: &Attr) -> String {
    let mut out = String::new();
    push_value(v, &mut out);
    out
}

fn push_name(name: &str, out: &mut String) {
    if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        out.push_str(name);
    } else {
        push_str_lit(name, out);
    }
}

fn push_value(v: &Attr, out: &mut String) {
    match v {
        Attr::Int(i) => {
            let _ = write!(out, "{i}");
        }
        // `{:?}` prints the shortest text that parses back to the same f32 and always has
        // a `.`, an exponent or a NaN/inf word, which is how the parser tells floats apart.
        Attr::Float(f) => push_float(*f, out),
        Attr::Str(s) => push_str_lit(s, out),
        Attr::Ints(v) if v.is_empty() => out.push_str("ints[]"),
        Attr::Floats(v) if v.is_empty() => out.push_str("floats[]"),
        Attr::Strs(v) if v.is_empty() => out.push_str("strs[]"),
        Attr::Ints(v) => {
            out.push('[');
            for (i, x) in v.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{x}");
            }
            out.push(']');
        }
        Attr::Floats(v) => {
            out.push('[');
            for (i, x) in v.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_float(*x, out);
            }
            out.push(']');
        }
        Attr::Strs(v) => {
            out.push('[');
            for (i, x) in v.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_str_lit(x, out);
            }
            out.push(']');
        }
        Attr::Tensor(t) => {
            let _ = write!(out, "tensor<{}[", t.dtype());
            for (i, d) in t.shape().iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{d}");
            }
            out.push(']');
            match t.strings() {
                Some(strs) => {
                    out.push('[');
                    for (i, s) in strs.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        push_str_lit(s, out);
                    }
                    out.push(']');
                }
                None => {
                    out.push_str("x\"");
                    for b in t.bytes().iter() {
                        let _ = write!(out, "{b:02x}");
                    }
                    out.push('"');
                }
            }
            out.push('>');
        }
    }
}

fn push_float(f: f32, out: &mut String) {
    if f.is_nan() {
        out.push_str("NaN");
    } else if f.is_infinite() {
        out.push_str(if f > 0.0 { "inf" } else { "-inf" });
    } else {
        let _ = write!(out, "{f:?}");
    }
}

/// Strings are quoted; characters egg's s-expression reader would split on are escaped.
fn push_str_lit(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_whitespace() || c.is_control() || c == '(' || c == ')' => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Parse a canonical attribute map (the inverse of [`canonical`]).
pub fn parse_canonical(text: &str) -> Result<Attrs, String> {
    let mut p = ValueParser::new(text);
    let mut attrs = Attrs::new();
    p.ws();
    if p.at_end() {
        return Ok(attrs);
    }
    loop {
        p.ws();
        let name = if p.peek() == Some('"') {
            p.string()?
        } else {
            p.ident()
        };
        if name.is_empty() {
            return Err(p.err("expected an attribute name"));
        }
        p.ws();
        if !p.eat('=') {
            return Err(p.err("expected `=`"));
        }
        let v = p.value()?;
        attrs.set(&name, v);
        p.ws();
        if p.at_end() {
            return Ok(attrs);
        }
        if !p.eat(',') {
            return Err(p.err("expected `,` between attributes"));
        }
    }
}

/// Parse one attribute value written as in the canonical form (also the `.rules` syntax
/// for literals): `3`, `-1.5`, `"none"`, `[1,0]`, `ints[]`, `tensor<f32[1]x"0000803f">`.
pub fn parse_value(text: &str) -> Result<Attr, String> {
    let mut p = ValueParser::new(text);
    let v = p.value()?;
    p.ws();
    if !p.at_end() {
        return Err(p.err("trailing text after the value"));
    }
    Ok(v)
}

/// A small recursive-descent reader of attribute values.
struct ValueParser<'a> {
    chars: Vec<char>,
    pos: usize,
    text: &'a str,
}

impl<'a> ValueParser<'a> {
    fn new(text: &'a str) -> Self {
        ValueParser {
            chars: text.chars().collect(),
            pos: 0,
            text,
        }
    }

    fn err(&self, msg: &str) -> String {
        format!("{msg} at offset {} of `{}`", self.pos, self.text)
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.chars.len()
    }

    fn ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, c: char) -> bool {
        self.ws();
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn ident(&mut self) -> String {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            self.pos += 1;
        }
        self.chars[start..self.pos].iter().collect()
    }

    fn string(&mut self) -> Result<String, String> {
        if !self.eat('"') {
            return Err(self.err("expected `\"`"));
        }
        let mut s = String::new();
        loop {
            match self.peek() {
                None => return Err(self.err("unterminated string")),
                Some('"') => {
                    self.pos += 1;
                    return Ok(s);
                }
                Some('\\') => {
                    self.pos += 1;
                    match self.peek() {
                        Some('n') => s.push('\n'),
                        Some('t') => s.push('\t'),
                        Some('u') => {
                            self.pos += 1;
                            if self.peek() != Some('{') {
                                return Err(self.err("expected `{` after `\\u`"));
                            }
                            self.pos += 1;
                            let start = self.pos;
                            while self.peek().is_some_and(|c| c != '}') {
                                self.pos += 1;
                            }
                            let hex: String = self.chars[start..self.pos].iter().collect();
                            let c = u32::from_str_radix(&hex, 16)
                                .ok()
                                .and_then(char::from_u32)
                                .ok_or_else(|| self.err("bad `\\u{..}` escape"))?;
                            s.push(c);
                        }
                        Some(c) => s.push(c),
                        None => return Err(self.err("unterminated string")),
                    }
                    self.pos += 1;
                }
                Some(c) => {
                    s.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    /// A number token: ints have no `.`, exponent or NaN/inf word.
    fn number(&mut self) -> Result<Attr, String> {
        let start = self.pos;
        if matches!(self.peek(), Some('-' | '+')) {
            self.pos += 1;
        }
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '-'))
        {
            // a sign only continues a number right after an exponent marker
            if matches!(self.peek(), Some('+' | '-'))
                && !matches!(self.chars.get(self.pos - 1), Some('e' | 'E'))
            {
                break;
            }
            self.pos += 1;
        }
        let tok: String = self.chars[start..self.pos].iter().collect();
        parse_number(&tok).ok_or_else(|| self.err(&format!("bad number `{tok}`")))
    }

    fn value(&mut self) -> Result<Attr, String> {
        self.ws();
        match self.peek() {
            Some('"') => Ok(Attr::Str(self.string()?)),
            Some('[') => self.list(),
            Some(c) if c.is_ascii_digit() || matches!(c, '-' | '+' | '.') => self.number(),
            Some(c) if c.is_ascii_alphabetic() => {
                let save = self.pos;
                let word = self.ident();
                match word.as_str() {
                    "ints" | "floats" | "strs" => {
                        if !(self.eat('[') && self.eat(']')) {
                            return Err(self.err("expected `[]` after an empty-list type"));
                        }
                        Ok(match word.as_str() {
                            "ints" => Attr::Ints(vec![]),
                            "floats" => Attr::Floats(vec![]),
                            _ => Attr::Strs(vec![]),
                        })
                    }
                    "tensor" => self.tensor(),
                    "NaN" | "inf" => {
                        self.pos = save;
                        self.number()
                    }
                    _ => Err(self.err(&format!("unexpected word `{word}`"))),
                }
            }
            _ => Err(self.err("expected a value")),
        }
    }

    fn list(&mut self) -> Result<Attr, String> {
        self.eat('[');
        let mut items = vec![];
        if !self.eat(']') {
            loop {
                items.push(self.value()?);
                if self.eat(']') {
                    break;
                }
                if !self.eat(',') {
                    return Err(self.err("expected `,` or `]` in a list"));
                }
            }
        }
        list_of(items).ok_or_else(|| self.err("a list mixes value kinds"))
    }

    fn tensor(&mut self) -> Result<Attr, String> {
        if !self.eat('<') {
            return Err(self.err("expected `<` after `tensor`"));
        }
        self.ws();
        let dt = self.ident();
        let dtype: DType = dt
            .parse()
            .map_err(|_| self.err(&format!("unknown dtype `{dt}`")))?;
        let Attr::Ints(dims) = (if self.peek() == Some('[') {
            self.list()?
        } else {
            Attr::Ints(vec![])
        }) else {
            return Err(self.err("tensor dims must be integers"));
        };
        let shape: Vec<usize> = dims
            .iter()
            .map(|&d| usize::try_from(d).unwrap_or(usize::MAX))
            .collect();
        self.ws();
        let t = if self.peek() == Some('x') {
            self.pos += 1;
            let hex = self.string()?;
            let bytes = decode_hex(&hex).ok_or_else(|| self.err("bad hex bytes"))?;
            Tensor::from_bytes(dtype, shape, bytes.into()).map_err(|e| self.err(&e.to_string()))?
        } else {
            let Attr::Strs(strs) = (match self.list()? {
                Attr::Ints(v) if v.is_empty() => Attr::Strs(vec![]),
                other => other,
            }) else {
                return Err(self.err("expected hex bytes or a list of strings"));
            };
            Tensor::from_strings(shape, strs).map_err(|e| self.err(&e.to_string()))?
        };
        if !self.eat('>') {
            return Err(self.err("expected `>` closing the tensor"));
        }
        Ok(Attr::Tensor(t))
    }
}

/// A number literal: an int unless it has a `.`, an exponent or is NaN/inf.
pub fn parse_number(tok: &str) -> Option<Attr> {
    let body = tok.trim_start_matches(['-', '+']);
    let is_float = tok.contains(['.', 'e', 'E']) || body == "NaN" || body == "inf";
    if is_float {
        let f: f32 = match body {
            "NaN" => f32::NAN,
            "inf" if tok.starts_with('-') => f32::NEG_INFINITY,
            "inf" => f32::INFINITY,
            _ => tok.parse().ok()?,
        };
        Some(Attr::Float(f))
    } else {
        tok.parse::<i64>().ok().map(Attr::Int)
    }
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Collapse a list of scalar values into a list attribute; ints in a float list widen.
pub fn list_of(items: Vec<Attr>) -> Option<Attr> {
    if items.is_empty() {
        return Some(Attr::Ints(vec![]));
    }
    if items.iter().all(|a| matches!(a, Attr::Int(_))) {
        return Some(Attr::Ints(
            items
                .iter()
                .filter_map(|a| if let Attr::Int(i) = a { Some(*i) } else { None })
                .collect(),
        ));
    }
    if items
        .iter()
        .all(|a| matches!(a, Attr::Int(_) | Attr::Float(_)))
    {
        return Some(Attr::Floats(
            items
                .iter()
                .map(|a| match a {
                    Attr::Int(i) => *i as f32,
                    Attr::Float(f) => *f,
                    _ => 0.0,
                })
                .collect(),
        ));
    }
    if items.iter().all(|a| matches!(a, Attr::Str(_))) {
        return Some(Attr::Strs(
            items
                .into_iter()
                .filter_map(|a| if let Attr::Str(s) = a { Some(s) } else { None })
                .collect(),
        ));
    }
    None
}

/// Whether an actual attribute value matches a pattern literal. Numbers compare by value
/// (a rule may write `1` for a float attribute); floats compare as f32, as ONNX stores them.
pub fn attr_matches(actual: &Attr, want: &Attr) -> bool {
    match (actual, want) {
        (Attr::Int(a), Attr::Float(b)) | (Attr::Float(b), Attr::Int(a)) => (*a as f32) == *b,
        (Attr::Float(a), Attr::Float(b)) => a == b || (a.is_nan() && b.is_nan()),
        (Attr::Floats(a), Attr::Ints(b)) | (Attr::Ints(b), Attr::Floats(a)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| *x == *y as f32)
        }
        _ => actual == want,
    }
}

/// The ONNX default of an attribute a node may leave out, where the rules need one.
/// `input_rank` is the rank of the node's first input, for defaults that depend on it
/// (Transpose's reversed permutation).
pub fn default_attr(op: &OpKind, name: &str, input_rank: Option<usize>) -> Option<Attr> {
    use OpKind::*;
    let int = |v| Some(Attr::Int(v));
    let float = |v| Some(Attr::Float(v));
    match (op, name) {
        (
            ReduceSum | ReduceMean | ReduceMax | ReduceMin | ReduceProd | ReduceL1 | ReduceL2
            | ReduceSumSquare | ReduceLogSumExp,
            "keepdims",
        ) => int(1),
        (
            ReduceSum | ReduceMean | ReduceMax | ReduceMin | ReduceProd | ReduceL1 | ReduceL2
            | ReduceSumSquare | ReduceLogSumExp,
            "noop_with_empty_axes",
        ) => int(0),
        (ArgMax | ArgMin, "axis") => int(0),
        (ArgMax | ArgMin, "keepdims") => int(1),
        (ArgMax | ArgMin, "select_last_index") => int(0),
        (Softmax | LogSoftmax | LayerNormalization, "axis") => int(-1),
        (LayerNormalization, "epsilon") => float(1e-5),
        (LayerNormalization, "stash_type") => int(1),
        (BatchNormalization, "epsilon") => float(1e-5),
        (BatchNormalization, "momentum") => float(0.9),
        (Gelu, "approximate") => Some(Attr::Str("none".into())),
        (Gemm, "alpha" | "beta") => float(1.0),
        (Gemm, "transA" | "transB") => int(0),
        (Reshape, "allowzero") => int(0),
        (Flatten, "axis") => int(1),
        (Gather, "axis") => int(0),
        (Split, "axis") => int(0),
        (LeakyRelu, "alpha") => float(0.01),
        (Elu, "alpha") => float(1.0),
        (HardSigmoid, "alpha") => float(0.2),
        (HardSigmoid, "beta") => float(0.5),
        (Cast, "saturate") => int(1),
        (Transpose, "perm") => {
            let r = input_rank? as i64;
            Some(Attr::Ints((0..r).rev().collect()))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_round_trips() {
        let t = Tensor::from_vec(vec![2], vec![1.0f32, -2.5]).unwrap();
        let attrs = Attrs::new()
            .with("perm", Attr::Ints(vec![1, 0]))
            .with("epsilon", Attr::Float(1e-12))
            .with("approximate", Attr::Str("a b(c)\"".into()))
            .with("empty", Attr::Floats(vec![]))
            .with("fl", Attr::Floats(vec![0.5, 2.0]))
            .with("names", Attr::Strs(vec!["x".into(), "y".into()]))
            .with("value", Attr::Tensor(t))
            .with("k", Attr::Int(-3));
        let text = canonical(&attrs);
        assert!(!text.contains([' ', '(', ')']), "{text}");
        let back = parse_canonical(&text).unwrap();
        assert_eq!(back, attrs);
        assert_eq!(canonical(&back), text);
        assert_eq!(parse_canonical("").unwrap(), Attrs::new());
    }

    #[test]
    fn numbers_and_errors() {
        assert_eq!(parse_value("1").unwrap(), Attr::Int(1));
        assert_eq!(parse_value("1.0").unwrap(), Attr::Float(1.0));
        assert_eq!(parse_value("1e-5").unwrap(), Attr::Float(1e-5));
        assert_eq!(parse_value("[1, 0]").unwrap(), Attr::Ints(vec![1, 0]));
        assert_eq!(
            parse_value("[1, 0.5]").unwrap(),
            Attr::Floats(vec![1.0, 0.5])
        );
        for bad in [
            "",
            "[1,",
            "\"abc",
            "tensor<q[1]x\"00\">",
            "[1,\"a\"]",
            "foo",
            "1 2",
        ] {
            assert!(parse_value(bad).is_err(), "{bad}");
        }
        assert!(parse_canonical("a=1,").is_err());
        assert!(parse_canonical("a").is_err());
    }

    #[test]
    fn matching_is_numeric() {
        assert!(attr_matches(&Attr::Float(1.0), &Attr::Int(1)));
        assert!(attr_matches(&Attr::Int(-1), &Attr::Int(-1)));
        assert!(!attr_matches(
            &Attr::Str("none".into()),
            &Attr::Str("tanh".into())
        ));
        assert_eq!(
            default_attr(&OpKind::Transpose, "perm", Some(3)),
            Some(Attr::Ints(vec![2, 1, 0]))
        );
    }
}
