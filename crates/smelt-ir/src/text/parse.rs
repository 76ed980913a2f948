//! Text → graph.

// Parsers of untrusted text: no unwrap/expect/panicking indexing on their input.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
#![cfg_attr(
    test,
    allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;

use crate::attr::{Attr, Attrs};
use crate::dtype::DType;
use crate::encoding::{Constant, Encoding};
use crate::error::{IrError, IrResult};
use crate::graph::{Graph, ValueId, WeightStore};
use crate::op::OpKind;
use crate::shape::{Dim, Shape};
use crate::tensor::{Element, Tensor};
use crate::types::TensorType;

/// Parse a graph whose constants are all inline (no `#hash` references).
pub fn parse(text: &str) -> IrResult<Graph> {
    parse_with(text, None)
}

/// Parse a graph; `#hash` constants are looked up in `store` (typically the store of the
/// graph that was printed, or of the model the text came from).
pub fn parse_with(text: &str, store: Option<&WeightStore>) -> IrResult<Graph> {
    let mut p = Parser {
        src: text,
        pos: 0,
        store,
        values: HashMap::new(),
    };
    let g = p.graph()?;
    p.ws();
    if p.pos < p.src.len() {
        return Err(p.err("unexpected text after the graph"));
    }
    Ok(g)
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
    store: Option<&'a WeightStore>,
    values: HashMap<String, ValueId>,
}

impl<'a> Parser<'a> {
    fn err(&self, msg: &str) -> IrError {
        let before = &self.src[..self.pos.min(self.src.len())];
        let line = before.matches('\n').count() + 1;
        let col = before
            .rfind('\n')
            .map(|i| before.len() - i)
            .unwrap_or(before.len() + 1);
        IrError::Parse {
            line,
            col,
            msg: msg.to_string(),
        }
    }

    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    /// Skip white space and `//` comments.
    fn ws(&mut self) {
        loop {
            let r = self.rest();
            let trimmed = r.trim_start();
            self.pos += r.len() - trimmed.len();
            if trimmed.starts_with("//") {
                self.pos += trimmed.find('\n').unwrap_or(trimmed.len());
            } else {
                break;
            }
        }
    }

    fn eat(&mut self, s: &str) -> bool {
        self.ws();
        if self.rest().starts_with(s) {
            self.pos += s.len();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, s: &str) -> IrResult<()> {
        if self.eat(s) {
            Ok(())
        } else {
            let found: String = self.rest().chars().take(12).collect();
            Err(self.err(&format!("expected `{s}`, found `{found}`")))
        }
    }

    /// A run of characters matching `f`.
    fn run(&mut self, f: impl Fn(char) -> bool) -> &'a str {
        self.ws();
        let r = self.rest();
        let end = r
            .char_indices()
            .find(|(_, c)| !f(*c))
            .map(|(i, _)| i)
            .unwrap_or(r.len());
        self.pos += end;
        &r[..end]
    }

    fn word(&mut self) -> IrResult<&'a str> {
        let w = self.run(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
        if w.is_empty() {
            return Err(self.err("expected a word"));
        }
        Ok(w)
    }

    fn string(&mut self) -> IrResult<String> {
        self.expect("\"")?;
        let mut out = String::new();
        let mut chars = self.rest().char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.pos += i + 1;
                    return Ok(out);
                }
                '\\' => match chars.next() {
                    Some((_, 'n')) => out.push('\n'),
                    Some((_, 't')) => out.push('\t'),
                    Some((_, '"')) => out.push('"'),
                    Some((_, '\\')) => out.push('\\'),
                    Some((j, 'u')) => {
                        let tail = &self.rest()[j + 1..];
                        let close = tail.find('}').ok_or_else(|| self.err("bad \\u escape"))?;
                        let hex = tail
                            .get(1..close)
                            .ok_or_else(|| self.err("bad \\u escape"))?;
                        let c = u32::from_str_radix(hex, 16)
                            .ok()
                            .and_then(char::from_u32)
                            .ok_or_else(|| self.err("bad \\u escape"))?;
                        out.push(c);
                        for _ in 0..close + 1 {
                            chars.next();
                        }
                    }
                    _ => return Err(self.err("bad escape in string")),
                },
                c => out.push(c),
            }
        }
        Err(self.err("unterminated string"))
    }

    /// A name after `%` or `@`: bare or quoted.
    fn name(&mut self) -> IrResult<String> {
        if self.rest().starts_with('"') {
            return self.string();
        }
        let r = self.rest();
        let end = r
            .char_indices()
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-' | '$')))
            .map(|(i, _)| i)
            .unwrap_or(r.len());
        if end == 0 {
            return Err(self.err("expected a name"));
        }
        self.pos += end;
        Ok(r[..end].to_string())
    }

    fn value_name(&mut self) -> IrResult<String> {
        self.expect("%")?;
        self.name()
    }

    fn value_ref(&mut self) -> IrResult<ValueId> {
        let at = self.pos;
        let name = self.value_name()?;
        self.values.get(&name).copied().ok_or_else(|| {
            self.pos = at;
            self.err(&format!("use of undefined value %{name}"))
        })
    }

    fn dtype(&mut self) -> IrResult<DType> {
        let w = self.word()?;
        w.parse()
            .map_err(|_| self.err(&format!("unknown dtype `{w}`")))
    }

    fn shape(&mut self) -> IrResult<Shape> {
        self.expect("[")?;
        if self.eat("*") {
            self.expect("]")?;
            return Ok(Shape::unranked());
        }
        let mut dims = vec![];
        if self.eat("]") {
            return Ok(Shape::scalar());
        }
        loop {
            if self.eat("?") {
                let r = self.rest();
                if r.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
                    dims.push(Dim::Sym(self.word()?.to_string()));
                } else {
                    dims.push(Dim::Unknown);
                }
            } else {
                let w = self.run(|c| c.is_ascii_digit());
                dims.push(Dim::Known(
                    w.parse().map_err(|_| self.err("expected a dimension"))?,
                ));
            }
            if self.eat("]") {
                return Ok(Shape::new(dims));
            }
            self.expect(",")?;
        }
    }

    fn ty(&mut self) -> IrResult<TensorType> {
        let dtype = self.dtype()?;
        let shape = self.shape()?;
        Ok(TensorType { dtype, shape })
    }

    fn graph(&mut self) -> IrResult<Graph> {
        self.expect("graph")?;
        self.expect("@")?;
        let name = self.name()?;
        let mut g = Graph::new(&name);
        self.expect("(")?;
        if !self.eat(")") {
            loop {
                let n = self.value_name()?;
                self.expect(":")?;
                let ty = self.ty()?;
                let v = g.add_input(&n, ty);
                self.define(&n, v, &g)?;
                if self.eat(")") {
                    break;
                }
                self.expect(",")?;
            }
        }
        self.expect("->")?;
        self.expect("(")?;
        let mut out_types = vec![];
        if !self.eat(")") {
            loop {
                out_types.push(self.ty()?);
                if self.eat(")") {
                    break;
                }
                self.expect(",")?;
            }
        }
        self.expect("{")?;
        loop {
            self.ws();
            if self.eat("return") {
                break;
            }
            self.statement(&mut g)?;
        }
        let mut outs = vec![];
        self.ws();
        if !self.rest().starts_with('}') {
            loop {
                outs.push(self.value_ref()?);
                if !self.eat(",") {
                    break;
                }
            }
        }
        self.expect("}")?;
        if outs.len() != out_types.len() {
            return Err(self.err(&format!(
                "signature declares {} outputs, return has {}",
                out_types.len(),
                outs.len()
            )));
        }
        for (v, t) in outs.iter().zip(&out_types) {
            if g.ty(*v) != t {
                return Err(self.err(&format!(
                    "output %{} has type {}, signature says {t}",
                    g.value(*v).name,
                    g.ty(*v)
                )));
            }
        }
        g.set_outputs(outs);
        Ok(g)
    }

    fn define(&mut self, name: &str, v: ValueId, g: &Graph) -> IrResult<()> {
        if g.value(v).name != name {
            return Err(self.err(&format!("value %{name} is defined twice")));
        }
        self.values.insert(name.to_string(), v);
        Ok(())
    }

    fn statement(&mut self, g: &mut Graph) -> IrResult<()> {
        let mut results = vec![];
        loop {
            let at = self.pos;
            let n = self.value_name()?;
            if self.values.contains_key(&n) {
                self.pos = at;
                return Err(self.err(&format!("value %{n} is defined twice")));
            }
            results.push(n);
            if !self.eat(",") {
                break;
            }
        }
        self.expect("=")?;
        self.ws();
        let op_at = self.pos;
        let op_name = self.word()?;
        if op_name == "const" {
            let [result] = results.as_slice() else {
                return Err(self.err("a const defines exactly one value"));
            };
            let result = result.clone();
            let c = self.constant()?;
            let v = g.add_shared_const(&result, c);
            let loc = self.loc()?;
            if let Some((node, _)) = g.producer(v) {
                g.node_mut(node).name = loc;
            }
            return self.define(&result, v, g);
        }
        let op = match OpKind::from_text(op_name) {
            Some(op) => op,
            None => match op_name.rsplit_once('.') {
                Some((domain, name)) if !domain.is_empty() && !name.is_empty() => OpKind::Custom {
                    domain: domain.to_string(),
                    name: name.to_string(),
                },
                _ => {
                    self.pos = op_at;
                    return Err(self.err(&format!("unknown op `{op_name}`")));
                }
            },
        };
        self.expect("(")?;
        let mut inputs = vec![];
        if !self.eat(")") {
            loop {
                if self.eat("_") {
                    inputs.push(None);
                } else {
                    inputs.push(Some(self.value_ref()?));
                }
                if self.eat(")") {
                    break;
                }
                self.expect(",")?;
            }
        }
        let attrs = if self.eat("{") {
            self.attrs()?
        } else {
            Attrs::new()
        };
        self.expect(":")?;
        let mut types = vec![];
        loop {
            types.push(self.ty()?);
            if !self.eat(",") {
                break;
            }
        }
        if types.len() != results.len() {
            return Err(self.err(&format!(
                "{} results but {} types",
                results.len(),
                types.len()
            )));
        }
        let loc = self.loc()?;
        let outs = results.iter().cloned().zip(types).collect();
        let id = g.add_node(&loc, op, attrs, inputs, outs)?;
        for (n, v) in results.iter().zip(g.node(id).outputs.clone()) {
            self.define(n, v, g)?;
        }
        Ok(())
    }

    fn loc(&mut self) -> IrResult<String> {
        if self.eat("loc(") {
            self.ws();
            let s = self.string()?;
            self.expect(")")?;
            Ok(s)
        } else {
            Ok(String::new())
        }
    }

    fn constant(&mut self) -> IrResult<Arc<Constant>> {
        let at = self.pos;
        let ty = self.ty()?;
        let dims = ty
            .shape
            .as_known()
            .ok_or_else(|| self.err("a constant's shape must be fully known"))?;
        let mut encoding = Encoding::Plain;
        if self.eat("{") {
            self.expect("encoding")?;
            self.expect("=")?;
            self.ws();
            let start = self.pos;
            // the encoding runs to the matching `}`; encodings never contain braces
            let end = self
                .rest()
                .find('}')
                .ok_or_else(|| self.err("unterminated encoding"))?;
            let text = &self.src[start..start + end];
            encoding = text
                .trim()
                .parse()
                .map_err(|e: IrError| self.err(&e.to_string()))?;
            self.pos = start + end + 1;
        }
        self.ws();
        if self.eat("#") {
            let hex = self.run(|c| c.is_ascii_hexdigit());
            let hash = u64::from_str_radix(hex, 16).map_err(|_| self.err("bad constant hash"))?;
            let store = self.store.ok_or_else(|| {
                self.err(&format!("constant #{hex} needs a weight store to resolve"))
            })?;
            let c = store
                .find_by_hash(hash)
                .ok_or_else(|| self.err(&format!("constant #{hex} is not in the weight store")))?;
            if c.dtype() != ty.dtype || c.shape() != dims.as_slice() || c.encoding() != &encoding {
                self.pos = at;
                return Err(self.err(&format!(
                    "constant #{hex} is {}{:?} ({}) in the store, text says {} ({encoding})",
                    c.dtype(),
                    c.shape(),
                    c.encoding(),
                    ty
                )));
            }
            return Ok(c.clone());
        }
        if !encoding.is_plain() {
            return Err(self.err("an encoded constant must be given by #hash"));
        }
        let t = self.elements(ty.dtype, dims)?;
        Ok(Arc::new(Constant::plain(t)))
    }

    /// Elements of a tensor: `[...]` or `x"hex"`.
    fn elements(&mut self, dtype: DType, dims: Vec<usize>) -> IrResult<Tensor> {
        self.ws();
        if self.eat("x\"") {
            let hex = self.run(|c| c.is_ascii_hexdigit());
            self.expect("\"")?;
            if !hex.len().is_multiple_of(2) {
                return Err(self.err("odd number of hex digits"));
            }
            let bytes: Vec<u8> = (0..hex.len() / 2)
                .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16))
                .collect::<Result<_, _>>()
                .map_err(|_| self.err("bad hex"))?;
            return Tensor::from_bytes(dtype, dims, Bytes::from(bytes))
                .map_err(|e| self.err(&e.to_string()));
        }
        self.expect("[")?;
        let mut items: Vec<String> = vec![];
        if !self.eat("]") {
            loop {
                self.ws();
                if self.rest().starts_with('"') {
                    items.push(self.string()?);
                } else {
                    let w = self.run(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+'));
                    if w.is_empty() {
                        return Err(self.err("expected an element"));
                    }
                    items.push(w.to_string());
                }
                if self.eat("]") {
                    break;
                }
                self.expect(",")?;
            }
        }
        build_tensor(dtype, dims, &items).map_err(|m| self.err(&m))
    }

    fn attrs(&mut self) -> IrResult<Attrs> {
        let mut attrs = Attrs::new();
        if self.eat("}") {
            return Ok(attrs);
        }
        loop {
            self.ws();
            let key = if self.rest().starts_with('"') {
                self.string()?
            } else {
                self.name()?
            };
            self.expect("=")?;
            let v = self.attr()?;
            attrs.set(&key, v);
            if self.eat("}") {
                return Ok(attrs);
            }
            self.expect(",")?;
        }
    }

    fn attr(&mut self) -> IrResult<Attr> {
        self.ws();
        if self.rest().starts_with('"') {
            return Ok(Attr::Str(self.string()?));
        }
        for (prefix, empty) in [
            ("ints[]", Attr::Ints(vec![])),
            ("floats[]", Attr::Floats(vec![])),
            ("strs[]", Attr::Strs(vec![])),
        ] {
            if self.eat(prefix) {
                return Ok(empty);
            }
        }
        if self.eat("tensor<") {
            let dtype = self.dtype()?;
            self.expect("[")?;
            let mut dims = vec![];
            if !self.eat("]") {
                loop {
                    let w = self.run(|c| c.is_ascii_digit());
                    dims.push(w.parse().map_err(|_| self.err("expected a dimension"))?);
                    if self.eat("]") {
                        break;
                    }
                    self.expect(",")?;
                }
            }
            let t = self.elements(dtype, dims)?;
            self.expect(">")?;
            return Ok(Attr::Tensor(t));
        }
        if self.eat("[") {
            self.ws();
            if self.rest().starts_with('"') {
                let mut v = vec![];
                loop {
                    v.push(self.string()?);
                    if self.eat("]") {
                        return Ok(Attr::Strs(v));
                    }
                    self.expect(",")?;
                }
            }
            let mut words = vec![];
            loop {
                words.push(self.number_word()?);
                if self.eat("]") {
                    break;
                }
                self.expect(",")?;
            }
            if let Ok(ints) = words
                .iter()
                .map(|w| w.parse::<i64>())
                .collect::<Result<Vec<_>, _>>()
            {
                return Ok(Attr::Ints(ints));
            }
            let floats = words
                .iter()
                .map(|w| w.parse::<f32>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| self.err("expected numbers in the list"))?;
            return Ok(Attr::Floats(floats));
        }
        let w = self.number_word()?;
        if let Ok(i) = w.parse::<i64>() {
            return Ok(Attr::Int(i));
        }
        w.parse::<f32>()
            .map(Attr::Float)
            .map_err(|_| self.err(&format!("bad attribute value `{w}`")))
    }

    fn number_word(&mut self) -> IrResult<String> {
        let w = self.run(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+'));
        if w.is_empty() {
            return Err(self.err("expected a number"));
        }
        Ok(w.to_string())
    }
}

fn parse_all<T: std::str::FromStr>(items: &[String]) -> Result<Vec<T>, String> {
    items
        .iter()
        .map(|s| s.parse::<T>().map_err(|_| format!("bad element `{s}`")))
        .collect()
}

fn from_vec<T: Element>(dims: Vec<usize>, v: Vec<T>) -> Result<Tensor, String> {
    Tensor::from_vec(dims, v).map_err(|e| e.to_string())
}

fn build_tensor(dtype: DType, dims: Vec<usize>, items: &[String]) -> Result<Tensor, String> {
    match dtype {
        DType::F64 => from_vec(dims, parse_all::<f64>(items)?),
        DType::F32 => from_vec(dims, parse_all::<f32>(items)?),
        DType::F16 => from_vec(
            dims,
            parse_all::<f32>(items)?
                .into_iter()
                .map(half::f16::from_f32)
                .collect(),
        ),
        DType::BF16 => from_vec(
            dims,
            parse_all::<f32>(items)?
                .into_iter()
                .map(half::bf16::from_f32)
                .collect(),
        ),
        DType::I64 => from_vec(dims, parse_all::<i64>(items)?),
        DType::I32 => from_vec(dims, parse_all::<i32>(items)?),
        DType::I16 => from_vec(dims, parse_all::<i16>(items)?),
        DType::I8 => from_vec(dims, parse_all::<i8>(items)?),
        DType::U64 => from_vec(dims, parse_all::<u64>(items)?),
        DType::U32 => from_vec(dims, parse_all::<u32>(items)?),
        DType::U16 => from_vec(dims, parse_all::<u16>(items)?),
        DType::U8 => from_vec(dims, parse_all::<u8>(items)?),
        DType::Bool => from_vec(dims, parse_all::<bool>(items)?),
        DType::String => Tensor::from_strings(dims, items.to_vec()).map_err(|e| e.to_string()),
        other => Err(format!("{other} elements are written as x\"..\" bytes")),
    }
}
