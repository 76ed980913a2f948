//! NumPy `.npy` files: reading (format versions 1.0, 2.0 and 3.0) and writing (1.0, or
//! 2.0 when the header does not fit 1.0's 16-bit length) of [`Tensor`]s.
//!
//! Only plain little-endian numeric arrays in C order are handled: `f8 f4 f2 i8 i4 i2
//! i1 u8 u4 u2 u1 b1`. The byte-order markers `<`, `=` and `|` (and none) are all read
//! as little-endian, since smelt stores little-endian data and runs on little-endian
//! hosts; `>` is refused except for one-byte types, where order is meaningless.
//!
//! The reader never trusts the header: every length, dimension and element count is
//! checked against the bytes actually present before anything is allocated, so
//! truncated or garbled input gives an [`NpyError`], never a panic or a huge
//! allocation. The array data must fill the rest of the file exactly; trailing bytes
//! are refused rather than silently ignored, since they mean the header and the data
//! disagree.

// Parsers of untrusted text: no unwrap/expect/panicking indexing on their input.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
#![cfg_attr(
    test,
    allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

use std::fmt::Write as _;
use std::ops::Range;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use thiserror::Error;

use crate::dtype::DType;
use crate::tensor::Tensor;

/// Everything that can go wrong reading or writing a `.npy` file.
#[derive(Debug, Error)]
pub enum NpyError {
    /// The file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not a well-formed `.npy` file (bad magic, truncated, garbled header,
    /// data that does not match the header).
    #[error("malformed .npy: {0}")]
    Malformed(String),
    /// A well-formed array or a tensor that has no `.npy` form here (dtype, byte order,
    /// Fortran order, format version).
    #[error("unsupported .npy: {0}")]
    Unsupported(String),
    /// An error in the content of the named file.
    #[error("{}: {source}", path.display())]
    File {
        /// The file concerned.
        path: PathBuf,
        /// What was wrong with its content.
        #[source]
        source: Box<NpyError>,
    },
}

impl NpyError {
    /// Attach the file a content error came from.
    fn in_file(self, path: &Path) -> NpyError {
        NpyError::File {
            path: path.to_path_buf(),
            source: Box::new(self),
        }
    }
}

/// The magic string every `.npy` file starts with.
const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// numpy aligns the start of the data to this many bytes.
const ALIGN: usize = 64;

/// numpy leaves this much room in the header for the first dimension to grow, so that
/// files can be appended to in place; writing the same padding makes our files
/// byte-identical to numpy's.
const GROWTH_AXIS_MAX_DIGITS: usize = 21;

/// Nesting limit for header values, so garbage like `((((...` cannot exhaust the stack.
const MAX_DEPTH: usize = 16;

/// `(numpy type code, dtype, element size in bytes)` of every supported type.
const TYPES: [(&str, DType, usize); 12] = [
    ("f8", DType::F64, 8),
    ("f4", DType::F32, 4),
    ("f2", DType::F16, 2),
    ("i8", DType::I64, 8),
    ("i4", DType::I32, 4),
    ("i2", DType::I16, 2),
    ("i1", DType::I8, 1),
    ("u8", DType::U64, 8),
    ("u4", DType::U32, 4),
    ("u2", DType::U16, 2),
    ("u1", DType::U8, 1),
    ("b1", DType::Bool, 1),
];

/// Read a tensor from the bytes of a `.npy` file. The data is copied out of `bytes`.
pub fn read_npy(bytes: &[u8]) -> Result<Tensor, NpyError> {
    let (dtype, shape, data) = parse(bytes)?;
    let data = bytes
        .get(data)
        .ok_or_else(|| NpyError::Malformed("data range past the end".into()))?;
    make_tensor(dtype, shape, Bytes::copy_from_slice(data))
}

/// Read a tensor from a `.npy` file; errors name the file.
pub fn read_npy_file(path: &Path) -> Result<Tensor, NpyError> {
    let bytes = std::fs::read(path).map_err(|source| NpyError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let (dtype, shape, data) = parse(&bytes).map_err(|e| e.in_file(path))?;
    // Slicing the file's buffer avoids copying the data a second time.
    make_tensor(dtype, shape, Bytes::from(bytes).slice(data)).map_err(|e| e.in_file(path))
}

/// Serialize a tensor as a `.npy` file (format 1.0, or 2.0 for very long headers),
/// byte-identical to what `numpy.save` writes for the same array.
///
/// Fails for dtypes numpy has no equivalent of (bf16, 4-bit integers, the low-bit float
/// formats, strings).
pub fn write_npy(t: &Tensor) -> Result<Vec<u8>, NpyError> {
    let descr = descr_of(t.dtype())?;
    let mut dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': (");
    for (i, d) in t.shape().iter().enumerate() {
        if i > 0 {
            dict.push_str(", ");
        }
        // Writing to a String cannot fail.
        let _ = write!(dict, "{d}");
    }
    if t.shape().len() == 1 {
        // Python's one-element tuple.
        dict.push(',');
    }
    dict.push_str("), }");
    if let Some(first) = t.shape().first() {
        let digits = first.to_string().len();
        dict.extend(std::iter::repeat_n(
            ' ',
            GROWTH_AXIS_MAX_DIGITS.saturating_sub(digits),
        ));
    }
    // The header is the dict, space padding and a newline, sized so that the data
    // starts on an ALIGN boundary (numpy always pads, by a full ALIGN if need be).
    let hlen = dict.len() + 1;
    let padded = |prefix: usize| hlen + ALIGN - (prefix + hlen) % ALIGN;
    // Version 1.0 stores the header length in 16 bits, 2.0 in 32.
    let (version, prefix) = if padded(10) <= usize::from(u16::MAX) {
        (1u8, 10)
    } else {
        (2u8, 12)
    };
    let header_len = padded(prefix);
    let pad = header_len - hlen;
    let data = t.bytes();
    let mut out = Vec::with_capacity(prefix + header_len + data.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[version, 0]);
    if version == 1 {
        // Fits: checked when choosing the version.
        out.extend_from_slice(&(header_len as u16).to_le_bytes());
    } else {
        let len = u32::try_from(header_len).map_err(|_| {
            NpyError::Unsupported(format!("header of {header_len} bytes is too long"))
        })?;
        out.extend_from_slice(&len.to_le_bytes());
    }
    out.extend_from_slice(dict.as_bytes());
    out.extend(std::iter::repeat_n(b' ', pad));
    out.push(b'\n');
    out.extend_from_slice(data);
    Ok(out)
}

/// Write a tensor to a `.npy` file; errors name the file.
pub fn write_npy_file(path: &Path, t: &Tensor) -> Result<(), NpyError> {
    let bytes = write_npy(t).map_err(|e| e.in_file(path))?;
    std::fs::write(path, bytes).map_err(|source| NpyError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// The numpy descr of a dtype.
fn descr_of(dtype: DType) -> Result<String, NpyError> {
    let (code, _, size) = TYPES.iter().find(|(_, d, _)| *d == dtype).ok_or_else(|| {
        NpyError::Unsupported(format!(
            "numpy has no {dtype} dtype; convert the tensor to a supported type first"
        ))
    })?;
    let order = if *size == 1 { '|' } else { '<' };
    Ok(format!("{order}{code}"))
}

/// Build the tensor once the data range has been checked against the header.
fn make_tensor(dtype: DType, shape: Vec<usize>, data: Bytes) -> Result<Tensor, NpyError> {
    Tensor::from_bytes(dtype, shape, data).map_err(|e| NpyError::Malformed(e.to_string()))
}

/// Check a file's structure: its dtype, shape and the byte range of its data.
fn parse(bytes: &[u8]) -> Result<(DType, Vec<usize>, Range<usize>), NpyError> {
    let malformed = |msg: String| NpyError::Malformed(msg);
    if bytes.get(..6) != Some(&MAGIC[..]) {
        return Err(malformed("missing the \\x93NUMPY magic".into()));
    }
    let (major, minor) = match bytes.get(6..8) {
        Some(&[a, b]) => (a, b),
        _ => return Err(malformed("truncated version".into())),
    };
    let (header_len, start): (usize, usize) = match major {
        1 => {
            let len = bytes
                .get(8..10)
                .ok_or_else(|| malformed("truncated header length".into()))?;
            let len: [u8; 2] = len
                .try_into()
                .map_err(|_| malformed("truncated header length".into()))?;
            (usize::from(u16::from_le_bytes(len)), 10)
        }
        2 | 3 => {
            let len = bytes
                .get(8..12)
                .ok_or_else(|| malformed("truncated header length".into()))?;
            let len: [u8; 4] = len
                .try_into()
                .map_err(|_| malformed("truncated header length".into()))?;
            let len = u32::from_le_bytes(len);
            let len = usize::try_from(len)
                .map_err(|_| malformed(format!("header length {len} too large")))?;
            (len, 12)
        }
        _ => {
            return Err(NpyError::Unsupported(format!(
                "format version {major}.{minor} (only 1.0, 2.0 and 3.0 are known)"
            )))
        }
    };
    let end = start
        .checked_add(header_len)
        .filter(|&end| end <= bytes.len())
        .ok_or_else(|| {
            malformed(format!(
                "header of {header_len} bytes runs past the end of the {}-byte file",
                bytes.len()
            ))
        })?;
    let header = bytes
        .get(start..end)
        .ok_or_else(|| malformed("truncated header".into()))?;
    let (descr, fortran, shape) = parse_header(header)
        .map_err(|msg| malformed(format!("bad header {}: {msg}", snippet(header))))?;
    if fortran {
        return Err(NpyError::Unsupported(
            "fortran_order is True; only C-order arrays are supported (save a C-contiguous \
             copy, e.g. numpy.ascontiguousarray)"
                .into(),
        ));
    }
    let (dtype, size) = dtype_of(&descr)?;
    let numel = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| malformed(format!("element count of shape {shape:?} overflows")))?;
    let need = numel
        .checked_mul(size)
        .ok_or_else(|| malformed(format!("byte size of shape {shape:?} overflows")))?;
    let have = bytes.len() - end;
    if need != have {
        return Err(malformed(format!(
            "{descr} array of shape {shape:?} needs {need} data bytes, the file has {have}"
        )));
    }
    Ok((dtype, shape, end..bytes.len()))
}

/// The dtype and element size of a numpy descr string.
fn dtype_of(descr: &str) -> Result<(DType, usize), NpyError> {
    let (order, code) = match descr.chars().next() {
        Some(c @ ('<' | '>' | '=' | '|')) => (c, &descr[1..]),
        _ => ('=', descr),
    };
    let (_, dtype, size) = TYPES.iter().find(|(c, _, _)| *c == code).ok_or_else(|| {
        let known: Vec<&str> = TYPES.iter().map(|(c, _, _)| *c).collect();
        NpyError::Unsupported(format!(
            "dtype '{descr}' (supported type codes: {})",
            known.join(" ")
        ))
    })?;
    if order == '>' && *size > 1 {
        return Err(NpyError::Unsupported(format!(
            "big-endian dtype '{descr}'; only little-endian data is supported (convert with \
             arr.astype(arr.dtype.newbyteorder('<')))"
        )));
    }
    Ok((*dtype, *size))
}

/// A short printable excerpt of a header for error messages.
fn snippet(header: &[u8]) -> String {
    let cut = header.get(..header.len().min(120)).unwrap_or(header);
    let more = if cut.len() < header.len() { "..." } else { "" };
    format!("\"{}{more}\"", cut.escape_ascii())
}

/// A Python literal as found in a `.npy` header.
#[derive(Debug)]
enum Value {
    Str(String),
    Bool(bool),
    Int(u64),
    None,
    /// A tuple (`is_list == false`) or list.
    Seq {
        items: Vec<Value>,
        is_list: bool,
    },
    /// A dict, only to report it clearly when it shows up where it should not.
    Dict,
}

/// Parse the header dict into `(descr, fortran_order, shape)`; errors are messages.
fn parse_header(header: &[u8]) -> Result<(String, bool, Vec<usize>), String> {
    let mut p = Parser { s: header, pos: 0 };
    let entries = p.dict(0)?;
    p.skip_ws();
    if p.pos != header.len() {
        return Err(format!("unexpected text after the dict at byte {}", p.pos));
    }
    let (mut descr, mut fortran, mut shape) = (None, None, None);
    for (key, value) in entries {
        let slot_taken = match key.as_str() {
            "descr" => descr.replace(value).is_some(),
            "fortran_order" => fortran.replace(value).is_some(),
            "shape" => shape.replace(value).is_some(),
            other => return Err(format!("unexpected key '{other}'")),
        };
        if slot_taken {
            return Err(format!("key '{key}' appears twice"));
        }
    }
    let descr = match descr {
        Some(Value::Str(s)) => s,
        Some(Value::Seq { is_list: true, .. }) => {
            return Err("structured dtypes (a list as 'descr') are not supported".into())
        }
        Some(other) => return Err(format!("'descr' must be a string, got {other:?}")),
        None => return Err("missing key 'descr'".into()),
    };
    let fortran = match fortran {
        Some(Value::Bool(b)) => b,
        Some(other) => return Err(format!("'fortran_order' must be a bool, got {other:?}")),
        None => return Err("missing key 'fortran_order'".into()),
    };
    let shape = match shape {
        Some(Value::Seq {
            items,
            is_list: false,
        }) => items
            .into_iter()
            .map(|v| match v {
                Value::Int(d) => usize::try_from(d).map_err(|_| format!("dimension {d} too large")),
                other => Err(format!("shape entries must be integers, got {other:?}")),
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(other) => return Err(format!("'shape' must be a tuple, got {other:?}")),
        None => return Err("missing key 'shape'".into()),
    };
    Ok((descr, fortran, shape))
}

/// A recursive-descent parser for the small subset of Python literals headers use.
struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while self
            .s
            .get(self.pos)
            .is_some_and(|c| c.is_ascii_whitespace())
        {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.s.get(self.pos).copied()
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(format!("expected '{}' at byte {}", c as char, self.pos))
        }
    }

    /// `{ 'key': value, ... }`, trailing comma allowed.
    fn dict(&mut self, depth: usize) -> Result<Vec<(String, Value)>, String> {
        self.expect(b'{')?;
        let mut entries = Vec::new();
        loop {
            if self.peek() == Some(b'}') {
                self.pos += 1;
                return Ok(entries);
            }
            let key = match self.value(depth + 1)? {
                Value::Str(k) => k,
                other => return Err(format!("dict keys must be strings, got {other:?}")),
            };
            self.expect(b':')?;
            let value = self.value(depth + 1)?;
            entries.push((key, value));
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {}
                _ => return Err(format!("expected ',' or '}}' at byte {}", self.pos)),
            }
        }
    }

    /// `( items )` or `[ items ]`, trailing comma allowed.
    fn seq(&mut self, close: u8, depth: usize) -> Result<Vec<Value>, String> {
        self.pos += 1;
        let mut items = Vec::new();
        loop {
            if self.peek() == Some(close) {
                self.pos += 1;
                return Ok(items);
            }
            items.push(self.value(depth + 1)?);
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(c) if c == close => {}
                _ => {
                    return Err(format!(
                        "expected ',' or '{}' at byte {}",
                        close as char, self.pos
                    ))
                }
            }
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, String> {
        if depth > MAX_DEPTH {
            return Err("values nested too deeply".into());
        }
        match self.peek() {
            Some(q @ (b'\'' | b'"')) => {
                let start = self.pos + 1;
                let len = self
                    .s
                    .get(start..)
                    .unwrap_or(&[])
                    .iter()
                    .position(|&c| c == q)
                    .ok_or_else(|| format!("unterminated string at byte {}", self.pos))?;
                let raw = self.s.get(start..start + len).unwrap_or(&[]);
                // numpy writes plain ASCII names; escapes would need a real Python lexer.
                if raw.contains(&b'\\') || !raw.is_ascii() {
                    return Err(format!(
                        "unsupported characters in string at byte {}",
                        self.pos
                    ));
                }
                self.pos = start + len + 1;
                Ok(Value::Str(String::from_utf8_lossy(raw).into_owned()))
            }
            Some(b'(') => Ok(Value::Seq {
                items: self.seq(b')', depth)?,
                is_list: false,
            }),
            Some(b'[') => Ok(Value::Seq {
                items: self.seq(b']', depth)?,
                is_list: true,
            }),
            Some(b'{') => {
                self.dict(depth)?;
                Ok(Value::Dict)
            }
            Some(c) if c.is_ascii_digit() => {
                let start = self.pos;
                let mut n: u64 = 0;
                while let Some(&d) = self.s.get(self.pos).filter(|d| d.is_ascii_digit()) {
                    n = n
                        .checked_mul(10)
                        .and_then(|n| n.checked_add(u64::from(d - b'0')))
                        .ok_or_else(|| format!("integer too large at byte {start}"))?;
                    self.pos += 1;
                }
                // Python 2's long suffix, found in files written by old numpy.
                if matches!(self.s.get(self.pos), Some(b'L' | b'l')) {
                    self.pos += 1;
                }
                Ok(Value::Int(n))
            }
            Some(c) if c.is_ascii_alphabetic() => {
                let start = self.pos;
                while self
                    .s
                    .get(self.pos)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
                {
                    self.pos += 1;
                }
                match self.s.get(start..self.pos).unwrap_or(&[]) {
                    b"True" => Ok(Value::Bool(true)),
                    b"False" => Ok(Value::Bool(false)),
                    b"None" => Ok(Value::None),
                    other => Err(format!(
                        "unknown name '{}' at byte {start}",
                        other.escape_ascii()
                    )),
                }
            }
            Some(b'-') => Err(format!("negative number at byte {}", self.pos)),
            Some(c) => Err(format!(
                "unexpected '{}' at byte {}",
                [c].escape_ascii(),
                self.pos
            )),
            None => Err("unexpected end of header".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every dtype the format handles, with its descr.
    const SUPPORTED: [(DType, &str); 12] = [
        (DType::F64, "<f8"),
        (DType::F32, "<f4"),
        (DType::F16, "<f2"),
        (DType::I64, "<i8"),
        (DType::I32, "<i4"),
        (DType::I16, "<i2"),
        (DType::I8, "|i1"),
        (DType::U64, "<u8"),
        (DType::U32, "<u4"),
        (DType::U16, "<u2"),
        (DType::U8, "|u1"),
        (DType::Bool, "|b1"),
    ];

    /// A tensor with distinct, deterministic bytes (0/1 for bool).
    fn sample(dtype: DType, shape: &[usize]) -> Tensor {
        let n: usize = shape.iter().product();
        let len = dtype.storage_bytes(n).unwrap();
        let data: Vec<u8> = (0..len)
            .map(|i| {
                if dtype == DType::Bool {
                    (i % 2) as u8
                } else {
                    (i * 37 + 11) as u8
                }
            })
            .collect();
        Tensor::from_bytes(dtype, shape.to_vec(), Bytes::from(data)).unwrap()
    }

    /// A file with a hand-written header dict (padded like numpy does) and data.
    fn with_header(dict: &str, data: &[u8]) -> Vec<u8> {
        let hlen = dict.len() + 1;
        let pad = ALIGN - (10 + hlen) % ALIGN;
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&[1, 0]);
        out.extend_from_slice(&((hlen + pad) as u16).to_le_bytes());
        out.extend_from_slice(dict.as_bytes());
        out.extend(std::iter::repeat_n(b' ', pad));
        out.push(b'\n');
        out.extend_from_slice(data);
        out
    }

    fn header_text(file: &[u8]) -> String {
        let len = usize::from(u16::from_le_bytes([file[8], file[9]]));
        String::from_utf8(file[10..10 + len].to_vec()).unwrap()
    }

    fn malformed(r: Result<Tensor, NpyError>) -> String {
        match r {
            Err(e @ NpyError::Malformed(_)) => e.to_string(),
            other => panic!("expected a malformed-file error, got {other:?}"),
        }
    }

    fn unsupported(r: Result<Tensor, NpyError>) -> String {
        match r {
            Err(e @ NpyError::Unsupported(_)) => e.to_string(),
            other => panic!("expected an unsupported error, got {other:?}"),
        }
    }

    #[test]
    fn round_trip_every_dtype_and_shape() {
        let shapes: [&[usize]; 7] = [&[], &[0], &[5], &[2, 3], &[2, 0, 3], &[1, 1, 1, 4], &[3, 1]];
        for (dtype, descr) in SUPPORTED {
            for shape in shapes {
                let t = sample(dtype, shape);
                let file = write_npy(&t).unwrap();
                assert_eq!(&file[..8], b"\x93NUMPY\x01\x00");
                assert_eq!(
                    file.len() % ALIGN,
                    t.bytes().len() % ALIGN,
                    "data is aligned"
                );
                assert!(header_text(&file).contains(&format!("'descr': '{descr}'")));
                assert!(header_text(&file).ends_with('\n'));
                let back = read_npy(&file).unwrap();
                assert!(back.same_content(&t), "{dtype} {shape:?}");
            }
        }
    }

    #[test]
    fn header_matches_numpy() {
        // What numpy.save writes for these shapes (dict, growth padding, alignment).
        let t = sample(DType::F32, &[3]);
        let h = header_text(&write_npy(&t).unwrap());
        assert!(h.starts_with("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }"));
        assert_eq!(h.len() + 10, 128);
        let h = header_text(&write_npy(&sample(DType::I64, &[])).unwrap());
        assert_eq!(
            h.trim_end(),
            "{'descr': '<i8', 'fortran_order': False, 'shape': (), }"
        );
        assert_eq!(h.len() + 10, 128);
    }

    #[test]
    fn long_headers_use_version_2() {
        let shape = vec![1usize; 30_000];
        let t = sample(DType::U8, &shape);
        let file = write_npy(&t).unwrap();
        assert_eq!(&file[6..8], &[2, 0]);
        let len = u32::from_le_bytes([file[8], file[9], file[10], file[11]]) as usize;
        assert_eq!((12 + len) % ALIGN, 0);
        assert!(read_npy(&file).unwrap().same_content(&t));
    }

    #[test]
    fn reads_version_3_and_other_spellings() {
        // Version 3.0 differs from 2.0 only in the header's text encoding.
        let t = sample(DType::U8, &vec![1usize; 30_000]);
        let mut file = write_npy(&t).unwrap();
        file[6] = 3;
        assert!(read_npy(&file).unwrap().same_content(&t));

        let data = [1u8, 0, 0, 0, 2, 0, 0, 0];
        for dict in [
            "{'descr': '=i4', 'fortran_order': False, 'shape': (2,), }",
            "{'descr': 'i4', 'fortran_order': False, 'shape': (2,), }",
            "{\"shape\": (2L,), \"fortran_order\": False, \"descr\": \"<i4\"}",
            "{'descr':'<i4','fortran_order':False,'shape':(2,)}",
            "{ 'descr' : '<i4' ,\n 'fortran_order' : False , 'shape' : ( 2 , ) , }",
        ] {
            let back = read_npy(&with_header(dict, &data)).unwrap();
            assert_eq!(back.to_vec::<i32>().unwrap(), [1, 2], "{dict}");
        }
        // Byte order does not matter for one-byte types.
        for descr in [">i1", "|i1", "<i1", "=i1"] {
            let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': (2,), }}");
            let back = read_npy(&with_header(&dict, &[0xFF, 7])).unwrap();
            assert_eq!(back.to_vec::<i8>().unwrap(), [-1, 7]);
        }
        let dict = "{'descr': '>b1', 'fortran_order': False, 'shape': (), }";
        assert_eq!(
            read_npy(&with_header(dict, &[1])).unwrap().dtype(),
            DType::Bool
        );
    }

    #[test]
    fn refuses_unsupported_arrays() {
        let dict = "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }";
        assert!(unsupported(read_npy(&with_header(dict, &[0; 16]))).contains("fortran_order"));
        let dict = "{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }";
        assert!(unsupported(read_npy(&with_header(dict, &[0; 4]))).contains("big-endian"));
        for descr in ["<c8", "<U10", "|O", "<M8[ns]", "<f16", "|S3", "<V4"] {
            let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': (1,), }}");
            let msg = unsupported(read_npy(&with_header(&dict, &[0; 4])));
            assert!(msg.contains(descr), "{msg}");
        }
        let dict = "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }";
        assert!(malformed(read_npy(&with_header(dict, &[0; 4]))).contains("structured"));
        let mut file = write_npy(&sample(DType::F32, &[1])).unwrap();
        file[6] = 4;
        assert!(unsupported(read_npy(&file)).contains("4.0"));
    }

    #[test]
    fn refuses_garbled_headers() {
        let bad = [
            "",
            "{",
            "}",
            "{'descr': '<f4', 'fortran_order': False}",
            "{'descr': '<f4', 'shape': (1,)}",
            "{'fortran_order': False, 'shape': (1,)}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'extra': 1}",
            "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': [1]}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (1.5,)}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': ('1',)}",
            "{'descr': '<f4', 'fortran_order': 0, 'shape': (1,)}",
            "{'descr': 4, 'fortran_order': False, 'shape': (1,)}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} junk",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (1,)",
            "{'descr': '<f4, 'fortran_order': False, 'shape': (1,)}",
            "{'descr': '<f\\x34', 'fortran_order': False, 'shape': (1,)}",
            "{'descr': '<f4' 'fortran_order': False, 'shape': (1,)}",
            "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (1,)}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999,)}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': {'a': 1}}",
        ];
        for dict in bad {
            let msg = malformed(read_npy(&with_header(dict, &[0; 4])));
            assert!(msg.contains("bad header"), "{dict}: {msg}");
        }
        // Deep nesting is refused, not recursed into until the stack runs out.
        let deep = format!("{{'shape': {}", "(".repeat(60_000));
        assert!(malformed(read_npy(&with_header(&deep, &[]))).contains("nested"));
        // Non-ASCII and invalid UTF-8 bytes.
        let mut file = with_header(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (1,)}",
            &[0; 4],
        );
        file[12] = 0xE9;
        malformed(read_npy(&file));
    }

    #[test]
    fn checks_sizes_before_allocating() {
        for shape in [
            "(1000000000000,)",
            "(4294967296, 4294967296, 4294967296)",
            "(3,)",
            "(0,)",
        ] {
            let dict = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': {shape}, }}");
            let msg = malformed(read_npy(&with_header(&dict, &[0; 16])));
            assert!(msg.contains("overflows") || msg.contains("needs"), "{msg}");
        }
        // Too few and too many data bytes.
        let file = write_npy(&sample(DType::I32, &[2, 3])).unwrap();
        assert!(malformed(read_npy(&file[..file.len() - 1])).contains("needs 24"));
        let mut longer = file.clone();
        longer.push(0);
        assert!(malformed(read_npy(&longer)).contains("needs 24"));
        // A header length that points past the end of the file.
        let mut file = write_npy(&sample(DType::I32, &[2])).unwrap();
        file[8] = 0xFF;
        file[9] = 0xFF;
        assert!(malformed(read_npy(&file)).contains("past the end"));
        let mut file = write_npy(&sample(DType::U8, &vec![1usize; 30_000])).unwrap();
        file[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(malformed(read_npy(&file)).contains("past the end"));
    }

    #[test]
    fn every_truncation_and_corruption_is_an_error() {
        let file = write_npy(&sample(DType::F32, &[2, 3])).unwrap();
        for len in 0..file.len() {
            assert!(read_npy(&file[..len]).is_err(), "prefix of {len} bytes");
        }
        assert!(malformed(read_npy(b"garbage that is not an npy file")).contains("magic"));
        // Random single-byte corruptions must give a tensor or an error, never a panic.
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let mut f = file.clone();
            let at = (state % f.len() as u64) as usize;
            f[at] = (state >> 32) as u8;
            let _ = read_npy(&f);
            let mut g = file.clone();
            g.truncate((state >> 40) as usize % file.len());
            let _ = read_npy(&g);
        }
        // Pure noise after a valid magic and length.
        for seed in 0..2_000u64 {
            let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            let chars = b" {}()[],:'\"0123456789LTrueFalse<f4descrshape";
            let mut f = b"\x93NUMPY\x01\x00\x40\x00".to_vec();
            for _ in 0..80 {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                f.push(chars[(s % chars.len() as u64) as usize]);
            }
            let _ = read_npy(&f);
        }
    }

    #[test]
    fn refuses_dtypes_numpy_lacks() {
        for dtype in [
            DType::BF16,
            DType::I4,
            DType::U4,
            DType::F8E4M3,
            DType::F8E5M2,
            DType::F6E3M2,
            DType::F6E2M3,
            DType::F4E2M1,
            DType::E8M0,
        ] {
            let t = sample(dtype, &[4]);
            match write_npy(&t) {
                Err(e @ NpyError::Unsupported(_)) => {
                    assert!(e.to_string().contains(dtype.name()), "{e}")
                }
                other => panic!("{dtype}: {other:?}"),
            }
        }
        let s = Tensor::from_strings(vec![1], vec!["a".into()]).unwrap();
        assert!(matches!(write_npy(&s), Err(NpyError::Unsupported(_))));
    }

    #[test]
    fn file_errors_name_the_file() {
        let dir = std::env::temp_dir().join(format!("smelt-npy-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.npy");
        let t = sample(DType::F16, &[2, 2]);
        write_npy_file(&path, &t).unwrap();
        assert!(read_npy_file(&path).unwrap().same_content(&t));

        std::fs::write(&path, b"\x93NUMPY\x01\x00").unwrap();
        let e = read_npy_file(&path).unwrap_err();
        assert!(matches!(e, NpyError::File { .. }));
        assert!(
            e.to_string().contains("t.npy") && e.to_string().contains("malformed"),
            "{e}"
        );

        let missing = dir.join("missing.npy");
        let e = read_npy_file(&missing).unwrap_err();
        assert!(
            matches!(e, NpyError::Io { .. }) && e.to_string().contains("missing.npy"),
            "{e}"
        );

        let bf = sample(DType::BF16, &[1]);
        let e = write_npy_file(&dir.join("bf.npy"), &bf).unwrap_err();
        assert!(
            e.to_string().contains("bf.npy") && e.to_string().contains("bf16"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Where the shared model files live: `$SMELT_MODELS`, else next to the workspace.
    fn models_dir() -> PathBuf {
        std::env::var_os("SMELT_MODELS")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/models"))
    }

    /// Read a real numpy-written file, if present, and check that writing it back
    /// reproduces numpy's bytes exactly.
    fn check_real(rel: &str, dtype: DType, shape: &[usize]) -> Option<Tensor> {
        let path = models_dir().join(rel);
        if !path.exists() {
            eprintln!("skipping: {} not found", path.display());
            return None;
        }
        let t = read_npy_file(&path).unwrap();
        assert_eq!(t.dtype(), dtype);
        assert_eq!(t.shape(), shape);
        assert_eq!(write_npy(&t).unwrap(), std::fs::read(&path).unwrap());
        Some(t)
    }

    #[test]
    fn reads_real_numpy_files() {
        if let Some(t) = check_real("digits/X_test.npy", DType::F32, &[540, 1, 8, 8]) {
            assert!(t.to_vec::<f32>().unwrap().iter().all(|v| v.is_finite()));
        }
        if let Some(t) = check_real(
            "minilm/reference/b4_s16.input_ids.npy",
            DType::I64,
            &[4, 16],
        ) {
            // BERT input ids start with [CLS] = 101.
            assert_eq!(t.to_vec::<i64>().unwrap()[0], 101);
        }
    }
}
