//! How a constant is stored: the `Encoding` of a weight, and constants with their parts.
//!
//! An encoded constant keeps its logical dtype and shape (what ops see: a MatMul weight
//! stays `f32[384, 1536]`) and stores named parts whose layout the encoding defines.
//! [`Encoding::check`] is the single place that says which parts an encoding needs.

use std::fmt;
use std::sync::{Arc, OnceLock};

use crate::dtype::DType;
use crate::error::{IrError, IrResult};
use crate::lowfloat::FloatFormat;
use crate::tensor::Tensor;

/// The element type of a quantization scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScaleKind {
    /// IEEE single precision.
    F32,
    /// IEEE half precision.
    F16,
    /// A power of two stored as an E8M0 exponent, so rescaling is a shift.
    Pow2,
}

impl ScaleKind {
    /// Text name.
    pub fn name(self) -> &'static str {
        match self {
            ScaleKind::F32 => "f32",
            ScaleKind::F16 => "f16",
            ScaleKind::Pow2 => "pow2",
        }
    }

    /// The dtype of the stored scale part.
    pub fn dtype(self) -> DType {
        match self {
            ScaleKind::F32 => DType::F32,
            ScaleKind::F16 => DType::F16,
            ScaleKind::Pow2 => DType::E8M0,
        }
    }

    fn from_name(s: &str) -> Option<ScaleKind> {
        [ScaleKind::F32, ScaleKind::F16, ScaleKind::Pow2]
            .into_iter()
            .find(|k| k.name() == s)
    }
}

/// Which elements share a scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Granularity {
    /// One scale for the whole tensor.
    Tensor,
    /// One scale per index of `axis`.
    Channel { axis: usize },
    /// One scale per `size` consecutive elements along `axis` (the reduction axis).
    Block { axis: usize, size: u32 },
}

impl Granularity {
    /// Shape of the scale tensor for a tensor of `shape`.
    pub fn scale_shape(&self, shape: &[usize]) -> Vec<usize> {
        match *self {
            Granularity::Tensor => vec![],
            Granularity::Channel { axis } => vec![shape.get(axis).copied().unwrap_or(0)],
            Granularity::Block { axis, size } => {
                let mut s = shape.to_vec();
                if let Some(d) = s.get_mut(axis) {
                    *d = d.div_ceil(size.max(1) as usize);
                }
                s
            }
        }
    }

    fn axis(&self) -> Option<usize> {
        match *self {
            Granularity::Tensor => None,
            Granularity::Channel { axis } | Granularity::Block { axis, .. } => Some(axis),
        }
    }
}

/// How a constant's elements are stored.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// The logical dtype, dense, one part `data`.
    Plain,
    /// Integer codes with a scale per block: w = (q - zero_point) · scale.
    /// Parts: `codes` (i8/u8/i4/u4, logical shape), `scales` (scale dtype,
    /// [`Granularity::scale_shape`]), and `zero_points` (codes dtype, scale shape) if
    /// `zero_point`.
    BlockwiseInt {
        bits: u8,
        signed: bool,
        granularity: Granularity,
        scale: ScaleKind,
        zero_point: bool,
    },
    /// 2:4 semi-structured sparsity along `axis`: in every aligned group of 4 at most 2
    /// are nonzero. Parts: `values` (the kept half, encoded by `values`; its parts are
    /// prefixed `values.`) and `indices` (u8, two 2-bit indices per group).
    Sparse24 { axis: usize, values: Box<Encoding> },
    /// Signed powers of two, w = ±α·2^p (no zero). `bits` = 1 sign bit + exponent code.
    /// Parts: `codes` (u8, logical shape), `scales` (scale dtype, per `granularity`).
    Shift {
        bits: u8,
        granularity: Granularity,
        scale: ScaleKind,
    },
    /// A low-bit float format with a scale: w = decode(code) · scale.
    /// Parts: `codes` (the format's dtype), `scales` (scale dtype, per `granularity`).
    Float {
        format: FloatFormat,
        granularity: Granularity,
        scale: ScaleKind,
    },
    /// OCP microscaling: `block` elements along `axis` share one E8M0 scale.
    /// Parts: `codes` (element dtype), `scales` (e8m0).
    Mx {
        elem: FloatFormat,
        axis: usize,
        block: u32,
    },
    /// A rank-`rank` factorisation W ≈ L·R of a 2-D weight, for a low-rank branch.
    /// Parts: `left` ([rows, rank]) and `right` ([rank, cols]), both encoded by `factors`
    /// (parts prefixed `left.` / `right.` when not plain).
    LowRank { rank: u32, factors: Box<Encoding> },
}

fn float_dtype(f: FloatFormat) -> DType {
    match f {
        FloatFormat::E4M3 => DType::F8E4M3,
        FloatFormat::E5M2 => DType::F8E5M2,
        FloatFormat::E3M2 => DType::F6E3M2,
        FloatFormat::E2M3 => DType::F6E2M3,
        FloatFormat::E2M1 => DType::F4E2M1,
        FloatFormat::E8M0 => DType::E8M0,
    }
}

impl Encoding {
    /// Whether this is [`Encoding::Plain`].
    pub fn is_plain(&self) -> bool {
        matches!(self, Encoding::Plain)
    }

    /// The dtype of the integer codes of a blockwise encoding.
    pub fn blockwise_code_dtype(bits: u8, signed: bool) -> DType {
        match (bits <= 4, signed) {
            (true, true) => DType::I4,
            (true, false) => DType::U4,
            (false, true) => DType::I8,
            (false, false) => DType::U8,
        }
    }

    /// Check the encoding's parameters against the logical type, and `parts` against what
    /// the encoding requires. The error names the part and says what was expected.
    pub fn check(
        &self,
        dtype: DType,
        shape: &[usize],
        parts: &[Part],
        prefix: &str,
    ) -> IrResult<()> {
        let bad = |msg: String| Err(IrError::InvalidEncoding(format!("{self}: {msg}")));
        let rank = shape.len();
        let axis_ok = |axis: usize| axis < rank;
        if !self.is_plain() && !dtype.is_float() {
            return bad(format!(
                "encoded constants must have a float logical type, not {dtype}"
            ));
        }
        match self {
            Encoding::Plain => expect_part(parts, &format!("{prefix}data"), dtype, shape),
            Encoding::BlockwiseInt {
                bits,
                signed,
                granularity,
                scale,
                zero_point,
            } => {
                if !(2..=8).contains(bits) {
                    return bad(format!("bits must be 2..=8, got {bits}"));
                }
                if let Some(a) = granularity.axis() {
                    if !axis_ok(a) {
                        return bad(format!("axis {a} out of range for rank {rank}"));
                    }
                }
                if let Granularity::Block { size: 0, .. } = granularity {
                    return bad("block size must be positive".into());
                }
                let code = Self::blockwise_code_dtype(*bits, *signed);
                expect_part(parts, &format!("{prefix}codes"), code, shape)?;
                let ss = granularity.scale_shape(shape);
                expect_part(parts, &format!("{prefix}scales"), scale.dtype(), &ss)?;
                if *zero_point {
                    expect_part(parts, &format!("{prefix}zero_points"), code, &ss)?;
                }
                Ok(())
            }
            Encoding::Sparse24 { axis, values } => {
                if !axis_ok(*axis) {
                    return bad(format!("axis {axis} out of range for rank {rank}"));
                }
                if !shape[*axis].is_multiple_of(4) {
                    return bad(format!(
                        "dim {} of axis {axis} is not a multiple of 4",
                        shape[*axis]
                    ));
                }
                if matches!(
                    **values,
                    Encoding::Sparse24 { .. } | Encoding::LowRank { .. }
                ) {
                    return bad("sparse24 values must be plain, blockwise, float or shift".into());
                }
                let mut half = shape.to_vec();
                half[*axis] /= 2;
                values.check(dtype, &half, parts, &format!("{prefix}values."))?;
                let mut idx = shape.to_vec();
                idx[*axis] /= 4;
                expect_part(parts, &format!("{prefix}indices"), DType::U8, &idx)
            }
            Encoding::Shift {
                bits,
                granularity,
                scale,
            } => {
                if !(2..=8).contains(bits) {
                    return bad(format!("bits must be 2..=8, got {bits}"));
                }
                if let Some(a) = granularity.axis() {
                    if !axis_ok(a) {
                        return bad(format!("axis {a} out of range for rank {rank}"));
                    }
                }
                expect_part(parts, &format!("{prefix}codes"), DType::U8, shape)?;
                let ss = granularity.scale_shape(shape);
                expect_part(parts, &format!("{prefix}scales"), scale.dtype(), &ss)
            }
            Encoding::Float {
                format,
                granularity,
                scale,
            } => {
                if *format == FloatFormat::E8M0 {
                    return bad("e8m0 is a scale format, not an element format".into());
                }
                if let Some(a) = granularity.axis() {
                    if !axis_ok(a) {
                        return bad(format!("axis {a} out of range for rank {rank}"));
                    }
                }
                expect_part(
                    parts,
                    &format!("{prefix}codes"),
                    float_dtype(*format),
                    shape,
                )?;
                let ss = granularity.scale_shape(shape);
                expect_part(parts, &format!("{prefix}scales"), scale.dtype(), &ss)
            }
            Encoding::Mx { elem, axis, block } => {
                if *elem == FloatFormat::E8M0 {
                    return bad("e8m0 is a scale format, not an element format".into());
                }
                if !axis_ok(*axis) || *block == 0 {
                    return bad(format!(
                        "needs a valid axis and block, got axis {axis} block {block}"
                    ));
                }
                expect_part(parts, &format!("{prefix}codes"), float_dtype(*elem), shape)?;
                let ss = Granularity::Block {
                    axis: *axis,
                    size: *block,
                }
                .scale_shape(shape);
                expect_part(parts, &format!("{prefix}scales"), DType::E8M0, &ss)
            }
            Encoding::LowRank { rank: r, factors } => {
                if rank != 2 {
                    return bad(format!("low-rank needs a 2-D weight, got rank {rank}"));
                }
                let r = *r as usize;
                if r == 0 || r > shape[0].min(shape[1]) {
                    return bad(format!(
                        "rank {r} must be in 1..={}",
                        shape[0].min(shape[1])
                    ));
                }
                factors.check(dtype, &[shape[0], r], parts, &format!("{prefix}left."))?;
                factors.check(dtype, &[r, shape[1]], parts, &format!("{prefix}right."))
            }
        }
    }
}

fn expect_part(parts: &[Part], name: &str, dtype: DType, shape: &[usize]) -> IrResult<()> {
    // A plain part at the top level is called `data`; nested plain parts drop the suffix.
    let alt = name.strip_suffix(".data").map(str::to_string);
    let part = parts
        .iter()
        .find(|p| p.name == name || Some(&p.name) == alt.as_ref())
        .ok_or_else(|| IrError::InvalidEncoding(format!("missing part `{name}`")))?;
    if part.tensor.dtype() != dtype || part.tensor.shape() != shape {
        return Err(IrError::InvalidEncoding(format!(
            "part `{name}` should be {dtype}{shape:?}, is {}{:?}",
            part.tensor.dtype(),
            part.tensor.shape()
        )));
    }
    Ok(())
}

impl fmt::Display for Granularity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Granularity::Tensor => Ok(()),
            Granularity::Channel { axis } => write!(f, ", axis={axis}"),
            Granularity::Block { axis, size } => write!(f, ", axis={axis}, block={size}"),
        }
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Encoding::Plain => f.write_str("plain"),
            Encoding::BlockwiseInt {
                bits,
                signed,
                granularity,
                scale,
                zero_point,
            } => {
                write!(
                    f,
                    "blockwise<{}{bits}{granularity}, scale={}",
                    if *signed { "i" } else { "u" },
                    scale.name()
                )?;
                if *zero_point {
                    f.write_str(", zero_point")?;
                }
                f.write_str(">")
            }
            Encoding::Sparse24 { axis, values } => write!(f, "sparse24<axis={axis}, {values}>"),
            Encoding::Shift {
                bits,
                granularity,
                scale,
            } => {
                write!(f, "shift<bits={bits}{granularity}, scale={}>", scale.name())
            }
            Encoding::Float {
                format,
                granularity,
                scale,
            } => {
                write!(f, "float<{format}{granularity}, scale={}>", scale.name())
            }
            Encoding::Mx { elem, axis, block } => {
                write!(f, "mx<{elem}, axis={axis}, block={block}>")
            }
            Encoding::LowRank { rank, factors } => write!(f, "lowrank<rank={rank}, {factors}>"),
        }
    }
}

/// Parse the text form produced by `Display`.
impl std::str::FromStr for Encoding {
    type Err = IrError;
    fn from_str(s: &str) -> IrResult<Encoding> {
        let mut p = EncParser {
            s: s.as_bytes(),
            pos: 0,
        };
        let e = p.encoding()?;
        p.ws();
        if p.pos != p.s.len() {
            return Err(p.err("trailing text after encoding"));
        }
        Ok(e)
    }
}

struct EncParser<'a> {
    s: &'a [u8],
    pos: usize,
}

/// Parsed `<...>` parameters of an encoding: `key=value` pairs and an optional nested encoding.
type EncodingParams = (Vec<(String, String)>, Option<Encoding>);

impl EncParser<'_> {
    fn err(&self, msg: &str) -> IrError {
        IrError::InvalidEncoding(format!(
            "{msg} at offset {} of `{}`",
            self.pos,
            String::from_utf8_lossy(self.s)
        ))
    }
    fn ws(&mut self) {
        while self.s.get(self.pos).is_some_and(u8::is_ascii_whitespace) {
            self.pos += 1;
        }
    }
    fn word(&mut self) -> IrResult<String> {
        self.ws();
        let start = self.pos;
        while self
            .s
            .get(self.pos)
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
        {
            self.pos += 1;
        }
        if start == self.pos {
            return Err(self.err("expected a word"));
        }
        Ok(String::from_utf8_lossy(&self.s[start..self.pos]).into_owned())
    }
    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.s.get(self.pos) == Some(&c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn expect(&mut self, c: u8) -> IrResult<()> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(self.err(&format!("expected `{}`", c as char)))
        }
    }
    /// `key=value` pairs and bare flags until `>`; a nested encoding is returned separately.
    fn params(&mut self) -> IrResult<EncodingParams> {
        let mut kv = vec![];
        let mut nested = None;
        loop {
            if self.eat(b'>') {
                return Ok((kv, nested));
            }
            if !kv.is_empty() || nested.is_some() {
                self.expect(b',')?;
            }
            let save = self.pos;
            let w = self.word()?;
            if self.eat(b'=') {
                let v = self.word()?;
                kv.push((w, v));
            } else if matches!(
                w.as_str(),
                "plain" | "blockwise" | "sparse24" | "shift" | "float" | "mx" | "lowrank"
            ) {
                self.pos = save;
                nested = Some(self.encoding()?);
            } else {
                kv.push((w, String::new()));
            }
        }
    }
    fn encoding(&mut self) -> IrResult<Encoding> {
        let head = self.word()?;
        if head == "plain" {
            return Ok(Encoding::Plain);
        }
        self.expect(b'<')?;
        let (mut kv, nested) = self.params()?;
        let num = |v: Option<String>, what: &str| -> IrResult<u32> {
            v.ok_or_else(|| IrError::InvalidEncoding(format!("{head}: missing `{what}`")))?
                .parse()
                .map_err(|_| IrError::InvalidEncoding(format!("{head}: `{what}` must be a number")))
        };
        let granularity = |axis: Option<String>, block: Option<String>| -> IrResult<Granularity> {
            Ok(match (axis, block) {
                (None, None) => Granularity::Tensor,
                (Some(a), None) => Granularity::Channel {
                    axis: num(Some(a), "axis")? as usize,
                },
                (Some(a), Some(b)) => Granularity::Block {
                    axis: num(Some(a), "axis")? as usize,
                    size: num(Some(b), "block")?,
                },
                (None, Some(_)) => {
                    return Err(IrError::InvalidEncoding(format!(
                        "{head}: block needs an axis"
                    )))
                }
            })
        };
        let scale = |v: Option<String>| -> IrResult<ScaleKind> {
            let v =
                v.ok_or_else(|| IrError::InvalidEncoding(format!("{head}: missing `scale`")))?;
            ScaleKind::from_name(&v).ok_or_else(|| {
                IrError::InvalidEncoding(format!("{head}: unknown scale kind `{v}`"))
            })
        };
        let enc = match head.as_str() {
            "blockwise" => {
                // the first bare word is the code type, e.g. `i4`
                let code = take_bare(&mut kv);
                let code =
                    code.ok_or_else(|| self.err("blockwise needs a code type such as i4"))?;
                let signed = code.starts_with('i');
                let bits: u8 = code[1..].parse().map_err(|_| self.err("bad code type"))?;
                let zp = take(&mut kv, "zero_point").is_some();
                let axis = take(&mut kv, "axis");
                let block = take(&mut kv, "block");
                Encoding::BlockwiseInt {
                    bits,
                    signed,
                    granularity: granularity(axis, block)?,
                    scale: scale(take(&mut kv, "scale"))?,
                    zero_point: zp,
                }
            }
            "sparse24" => Encoding::Sparse24 {
                axis: num(take(&mut kv, "axis"), "axis")? as usize,
                values: Box::new(
                    nested
                        .clone()
                        .ok_or_else(|| self.err("sparse24 needs a values encoding"))?,
                ),
            },
            "shift" => {
                let bits = num(take(&mut kv, "bits"), "bits")? as u8;
                let (axis, block) = (take(&mut kv, "axis"), take(&mut kv, "block"));
                Encoding::Shift {
                    bits,
                    granularity: granularity(axis, block)?,
                    scale: scale(take(&mut kv, "scale"))?,
                }
            }
            "float" | "mx" => {
                let fmt_name = take_bare(&mut kv);
                let fmt_name = fmt_name.ok_or_else(|| self.err("needs a format such as e4m3"))?;
                let format = FloatFormat::from_name(&fmt_name)
                    .ok_or_else(|| self.err("unknown float format"))?;
                let (axis, block) = (take(&mut kv, "axis"), take(&mut kv, "block"));
                if head == "mx" {
                    Encoding::Mx {
                        elem: format,
                        axis: num(axis, "axis")? as usize,
                        block: num(block, "block")?,
                    }
                } else {
                    Encoding::Float {
                        format,
                        granularity: granularity(axis, block)?,
                        scale: scale(take(&mut kv, "scale"))?,
                    }
                }
            }
            "lowrank" => Encoding::LowRank {
                rank: num(take(&mut kv, "rank"), "rank")?,
                factors: Box::new(
                    nested
                        .clone()
                        .ok_or_else(|| self.err("lowrank needs a factors encoding"))?,
                ),
            },
            other => {
                return Err(IrError::InvalidEncoding(format!(
                    "unknown encoding `{other}`"
                )))
            }
        };
        if let Some((k, _)) = kv.first() {
            return Err(IrError::InvalidEncoding(format!(
                "{head}: unexpected parameter `{k}`"
            )));
        }
        Ok(enc)
    }
}

/// Remove and return the value of `key=value`.
fn take(kv: &mut Vec<(String, String)>, key: &str) -> Option<String> {
    kv.iter()
        .position(|(a, _)| a == key)
        .map(|i| kv.remove(i).1)
}

/// Remove and return the first bare word (a parameter without `=`).
fn take_bare(kv: &mut Vec<(String, String)>) -> Option<String> {
    kv.iter()
        .position(|(_, v)| v.is_empty())
        .map(|i| kv.remove(i).0)
}

/// A named stored tensor of a constant (`data`, `codes`, `scales`, ...).
#[derive(Debug, Clone)]
pub struct Part {
    /// The part's name, as listed by the encoding.
    pub name: String,
    /// Its data.
    pub tensor: Tensor,
}

/// A constant: logical dtype and shape, how it is stored, and the stored parts.
#[derive(Debug, Clone)]
pub struct Constant {
    dtype: DType,
    shape: Vec<usize>,
    encoding: Encoding,
    parts: Vec<Part>,
    hash: Arc<OnceLock<u64>>,
}

impl Constant {
    /// A plain constant holding `t` as is.
    pub fn plain(t: Tensor) -> Constant {
        Constant {
            dtype: t.dtype(),
            shape: t.shape().to_vec(),
            encoding: Encoding::Plain,
            parts: vec![Part {
                name: "data".into(),
                tensor: t,
            }],
            hash: Arc::default(),
        }
    }

    /// An encoded constant; the parts are checked against the encoding.
    pub fn encoded(
        dtype: DType,
        shape: Vec<usize>,
        encoding: Encoding,
        parts: Vec<Part>,
    ) -> IrResult<Constant> {
        encoding.check(dtype, &shape, &parts, "")?;
        Ok(Constant {
            dtype,
            shape,
            encoding,
            parts,
            hash: Arc::default(),
        })
    }

    /// Logical element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Logical shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Storage encoding.
    pub fn encoding(&self) -> &Encoding {
        &self.encoding
    }

    /// Stored parts.
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// A part by name.
    pub fn part(&self, name: &str) -> Option<&Tensor> {
        self.parts
            .iter()
            .find(|p| p.name == name)
            .map(|p| &p.tensor)
    }

    /// The data of a plain constant.
    pub fn as_plain(&self) -> Option<&Tensor> {
        if self.encoding.is_plain() {
            self.part("data")
        } else {
            None
        }
    }

    /// Bytes stored over all parts.
    pub fn stored_bytes(&self) -> usize {
        self.parts.iter().map(|p| p.tensor.bytes().len()).sum()
    }

    /// Re-check the parts against the encoding.
    pub fn check(&self) -> IrResult<()> {
        self.encoding
            .check(self.dtype, &self.shape, &self.parts, "")
    }

    /// A content hash over encoding and parts; for plain constants it equals the data
    /// tensor's hash, so a printed constant can be found again by hash.
    pub fn content_hash(&self) -> u64 {
        *self.hash.get_or_init(|| {
            if let Some(t) = self.as_plain() {
                return t.content_hash();
            }
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            let mut mix = |x: u64| {
                h ^= x;
                h = h.wrapping_mul(0x0100_0000_01b3).rotate_left(17);
            };
            for b in self.encoding.to_string().bytes() {
                mix(u64::from(b));
            }
            for p in &self.parts {
                for b in p.name.bytes() {
                    mix(u64::from(b));
                }
                mix(p.tensor.content_hash());
            }
            h
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(s: &str) {
        let e: Encoding = s.parse().unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(e.to_string(), s);
    }

    #[test]
    fn text_round_trip() {
        round_trip("plain");
        round_trip("blockwise<i4, axis=0, block=64, scale=f16>");
        round_trip("blockwise<u8, axis=1, scale=pow2, zero_point>");
        round_trip("sparse24<axis=0, blockwise<i4, axis=0, block=64, scale=f16>>");
        round_trip("shift<bits=3, axis=1, scale=f32>");
        round_trip("float<e4m3, scale=f32>");
        round_trip("mx<e2m1, axis=0, block=32>");
        round_trip("lowrank<rank=32, plain>");
        assert!("blockwise<i4, scale=f16, bogus=1>"
            .parse::<Encoding>()
            .is_err());
        assert!("nonsense<>".parse::<Encoding>().is_err());
    }

    #[test]
    fn blockwise_parts_checked() {
        let enc: Encoding = "blockwise<i4, axis=0, block=2, scale=f32>".parse().unwrap();
        let codes =
            Tensor::from_bytes(DType::I4, vec![4, 3], bytes::Bytes::from(vec![0u8; 6])).unwrap();
        let scales = Tensor::from_vec(vec![2, 3], vec![1.0f32; 6]).unwrap();
        let good = vec![
            Part {
                name: "codes".into(),
                tensor: codes.clone(),
            },
            Part {
                name: "scales".into(),
                tensor: scales,
            },
        ];
        assert!(Constant::encoded(DType::F32, vec![4, 3], enc.clone(), good).is_ok());
        let bad_scales = Tensor::from_vec(vec![4, 3], vec![1.0f32; 12]).unwrap();
        let bad = vec![
            Part {
                name: "codes".into(),
                tensor: codes,
            },
            Part {
                name: "scales".into(),
                tensor: bad_scales,
            },
        ];
        let err = Constant::encoded(DType::F32, vec![4, 3], enc, bad).unwrap_err();
        assert!(err.to_string().contains("scales"), "{err}");
    }
}
