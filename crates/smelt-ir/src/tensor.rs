//! Tensor data: a dtype, a concrete shape and little-endian bytes that may live in a
//! memory-mapped file.

use std::fmt;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;

use crate::dtype::DType;
use crate::error::{IrError, IrResult};

/// A concrete tensor: dtype, shape and data.
///
/// The data is a [`Bytes`] in smelt's storage layout (little-endian; 4-bit types packed
/// two per byte, low nibble first; FP6 one code per byte; bool one byte per element).
/// Cloning is cheap and never copies the data, which may point into a memory-mapped
/// model file. String tensors keep their elements in `strings` and have empty `data`.
#[derive(Clone)]
pub struct Tensor {
    dtype: DType,
    shape: Vec<usize>,
    data: Bytes,
    strings: Option<Arc<Vec<String>>>,
    hash: Arc<OnceLock<u64>>,
}

impl Tensor {
    /// Build a tensor, checking that `data` has exactly the bytes the dtype and shape need.
    pub fn from_bytes(dtype: DType, shape: Vec<usize>, data: Bytes) -> IrResult<Tensor> {
        let n = checked_numel(&shape)?;
        let need = dtype.storage_bytes(n).ok_or_else(|| {
            IrError::InvalidTensor(format!(
                "{dtype} tensor of shape {shape:?} has no byte size"
            ))
        })?;
        if data.len() != need {
            return Err(IrError::InvalidTensor(format!(
                "{dtype} tensor of shape {shape:?} needs {need} bytes, got {}",
                data.len()
            )));
        }
        Ok(Tensor {
            dtype,
            shape,
            data,
            strings: None,
            hash: Arc::default(),
        })
    }

    /// A string tensor.
    pub fn from_strings(shape: Vec<usize>, strings: Vec<String>) -> IrResult<Tensor> {
        let n = checked_numel(&shape)?;
        if strings.len() != n {
            return Err(IrError::InvalidTensor(format!(
                "string tensor of shape {shape:?} needs {n} elements, got {}",
                strings.len()
            )));
        }
        Ok(Tensor {
            dtype: DType::String,
            shape,
            data: Bytes::new(),
            strings: Some(Arc::new(strings)),
            hash: Arc::default(),
        })
    }

    /// A tensor from native elements (f32, i64, ...).
    pub fn from_vec<T: Element>(shape: Vec<usize>, values: Vec<T>) -> IrResult<Tensor> {
        let mut bytes = Vec::with_capacity(values.len() * std::mem::size_of::<T>());
        for v in &values {
            v.write_le(&mut bytes);
        }
        Tensor::from_bytes(T::DTYPE, shape, Bytes::from(bytes))
    }

    /// A rank-0 tensor.
    pub fn scalar<T: Element>(v: T) -> Tensor {
        let mut bytes = Vec::new();
        v.write_le(&mut bytes);
        Tensor {
            dtype: T::DTYPE,
            shape: vec![],
            data: Bytes::from(bytes),
            strings: None,
            hash: Arc::default(),
        }
    }

    /// Element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Concrete shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// True when the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The raw bytes (shared, not copied).
    pub fn bytes(&self) -> &Bytes {
        &self.data
    }

    /// String elements, for string tensors.
    pub fn strings(&self) -> Option<&[String]> {
        self.strings.as_deref().map(Vec::as_slice)
    }

    /// The same data with another shape of equal element count.
    pub fn reshaped(&self, shape: Vec<usize>) -> IrResult<Tensor> {
        if checked_numel(&shape)? != self.len() {
            return Err(IrError::InvalidTensor(format!(
                "cannot reshape {:?} to {shape:?}",
                self.shape
            )));
        }
        Ok(Tensor {
            shape,
            hash: Arc::default(),
            ..self.clone()
        })
    }

    /// Decode to a vector of native elements; fails if `T` is not the tensor's dtype.
    pub fn to_vec<T: Element>(&self) -> IrResult<Vec<T>> {
        if T::DTYPE != self.dtype {
            return Err(IrError::InvalidTensor(format!(
                "tensor is {}, asked for {}",
                self.dtype,
                T::DTYPE
            )));
        }
        Ok(self
            .data
            .chunks_exact(std::mem::size_of::<T>())
            .map(T::read_le)
            .collect())
    }

    /// Read the elements of an integer tensor (any integer dtype or bool) as i64.
    pub fn to_i64_vec(&self) -> IrResult<Vec<i64>> {
        Ok(match self.dtype {
            DType::I64 => self.to_vec::<i64>()?,
            DType::I32 => self.to_vec::<i32>()?.into_iter().map(i64::from).collect(),
            DType::I16 => self.to_vec::<i16>()?.into_iter().map(i64::from).collect(),
            DType::I8 => self.to_vec::<i8>()?.into_iter().map(i64::from).collect(),
            DType::U32 => self.to_vec::<u32>()?.into_iter().map(i64::from).collect(),
            DType::U16 => self.to_vec::<u16>()?.into_iter().map(i64::from).collect(),
            DType::U8 | DType::Bool => self.data.iter().map(|&b| i64::from(b)).collect(),
            DType::U64 => self
                .to_vec::<u64>()?
                .into_iter()
                .map(|v| v as i64)
                .collect(),
            other => {
                return Err(IrError::InvalidTensor(format!(
                    "expected an integer tensor, got {other}"
                )))
            }
        })
    }

    /// Read the elements of a float (f64, f32, f16, bf16) or integer tensor as f64.
    pub fn to_f64_vec(&self) -> IrResult<Vec<f64>> {
        Ok(match self.dtype {
            DType::F64 => self.to_vec::<f64>()?,
            DType::F32 => self.to_vec::<f32>()?.into_iter().map(f64::from).collect(),
            DType::F16 => self
                .to_vec::<half::f16>()?
                .into_iter()
                .map(f64::from)
                .collect(),
            DType::BF16 => self
                .to_vec::<half::bf16>()?
                .into_iter()
                .map(f64::from)
                .collect(),
            _ => self.to_i64_vec()?.into_iter().map(|v| v as f64).collect(),
        })
    }

    /// A tensor of `dtype` from f64 values: floats round to nearest, integers and bools
    /// convert as Rust's `as` does (saturating, NaN to 0), 4-bit integers pack two per
    /// byte. Fails for low-precision floats and strings.
    pub fn from_f64(dtype: DType, shape: Vec<usize>, values: &[f64]) -> IrResult<Tensor> {
        match dtype {
            DType::F64 => Tensor::from_vec(shape, values.to_vec()),
            DType::F32 => Tensor::from_vec(shape, values.iter().map(|&v| v as f32).collect()),
            DType::F16 => Tensor::from_vec(
                shape,
                values.iter().map(|&v| half::f16::from_f64(v)).collect(),
            ),
            DType::BF16 => Tensor::from_vec(
                shape,
                values.iter().map(|&v| half::bf16::from_f64(v)).collect(),
            ),
            DType::I64 => Tensor::from_vec(shape, values.iter().map(|&v| v as i64).collect()),
            DType::I32 => Tensor::from_vec(shape, values.iter().map(|&v| v as i32).collect()),
            DType::I16 => Tensor::from_vec(shape, values.iter().map(|&v| v as i16).collect()),
            DType::I8 => Tensor::from_vec(shape, values.iter().map(|&v| v as i8).collect()),
            DType::U64 => Tensor::from_vec(shape, values.iter().map(|&v| v as u64).collect()),
            DType::U32 => Tensor::from_vec(shape, values.iter().map(|&v| v as u32).collect()),
            DType::U16 => Tensor::from_vec(shape, values.iter().map(|&v| v as u16).collect()),
            DType::U8 => Tensor::from_vec(shape, values.iter().map(|&v| v as u8).collect()),
            DType::Bool => Tensor::from_bytes(
                DType::Bool,
                shape,
                Bytes::from(
                    values
                        .iter()
                        .map(|&v| u8::from(v != 0.0))
                        .collect::<Vec<u8>>(),
                ),
            ),
            // Two codes per byte, low nibble first; values wrap to their 4 bits.
            DType::I4 | DType::U4 => {
                let mut packed = vec![0u8; values.len().div_ceil(2)];
                for (i, &v) in values.iter().enumerate() {
                    let nibble = (v as i64 as u8) & 0x0f;
                    packed[i / 2] |= if i % 2 == 0 { nibble } else { nibble << 4 };
                }
                Tensor::from_bytes(dtype, shape, Bytes::from(packed))
            }
            other => Err(IrError::InvalidTensor(format!(
                "cannot build a {other} tensor from f64 values"
            ))),
        }
    }

    /// A 64-bit content hash of dtype, shape and data (word-wise FNV-1a with a final
    /// avalanche), computed once and cached.
    pub fn content_hash(&self) -> u64 {
        *self.hash.get_or_init(|| {
            let mut h = Fnv::new();
            h.write(self.dtype.name().as_bytes());
            for d in &self.shape {
                h.write(&(*d as u64).to_le_bytes());
            }
            h.write(&self.data);
            if let Some(s) = &self.strings {
                for e in s.iter() {
                    h.write(&(e.len() as u64).to_le_bytes());
                    h.write(e.as_bytes());
                }
            }
            h.finish()
        })
    }

    /// Whether two tensors hold the same dtype, shape and bytes.
    pub fn same_content(&self, other: &Tensor) -> bool {
        self.dtype == other.dtype
            && self.shape == other.shape
            && self.data == other.data
            && self.strings == other.strings
    }
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Tensor({}{:?}, #{:016x})",
            self.dtype,
            self.shape,
            self.content_hash()
        )
    }
}

/// Product of dims with overflow checking.
pub fn checked_numel(shape: &[usize]) -> IrResult<usize> {
    shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| {
            IrError::InvalidTensor(format!("element count of shape {shape:?} overflows"))
        })
}

/// FNV-1a, 64-bit: small, stable across platforms and releases (unlike std's hasher).
/// FNV-1a over 64-bit little-endian words (bytes for the tail), with a final avalanche.
/// Word-at-a-time because weights are hashed whole: hundreds of megabytes for a real
/// model, where byte-at-a-time FNV costs about a nanosecond per byte.
struct Fnv(u64);

impl Fnv {
    const PRIME: u64 = 0x0100_0000_01b3;

    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            let word = u64::from_le_bytes(w.try_into().expect("chunks of 8"));
            self.0 = (self.0 ^ word).wrapping_mul(Self::PRIME);
        }
        for &b in words.remainder() {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(Self::PRIME);
        }
        // Length separates inputs that differ only by trailing zero bytes.
        self.0 = (self.0 ^ bytes.len() as u64).wrapping_mul(Self::PRIME);
    }
    fn finish(&self) -> u64 {
        // splitmix64's finaliser: word-wise FNV mixes high bits poorly on its own.
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// A native element type with a fixed little-endian layout.
pub trait Element: Copy + Send + Sync + 'static {
    /// The matching dtype.
    const DTYPE: DType;
    /// Append the little-endian bytes.
    fn write_le(&self, out: &mut Vec<u8>);
    /// Read from exactly `size_of::<Self>()` bytes.
    fn read_le(bytes: &[u8]) -> Self;
}

macro_rules! element {
    ($t:ty, $d:expr) => {
        impl Element for $t {
            const DTYPE: DType = $d;
            fn write_le(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn read_le(bytes: &[u8]) -> Self {
                let mut a = [0u8; std::mem::size_of::<$t>()];
                a.copy_from_slice(bytes);
                <$t>::from_le_bytes(a)
            }
        }
    };
}

element!(f64, DType::F64);
element!(f32, DType::F32);
element!(half::f16, DType::F16);
element!(half::bf16, DType::BF16);
element!(i64, DType::I64);
element!(i32, DType::I32);
element!(i16, DType::I16);
element!(i8, DType::I8);
element!(u64, DType::U64);
element!(u32, DType::U32);
element!(u16, DType::U16);
element!(u8, DType::U8);

impl Element for bool {
    const DTYPE: DType = DType::Bool;
    fn write_le(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self));
    }
    fn read_le(bytes: &[u8]) -> Self {
        bytes[0] != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_hash() {
        let t = Tensor::from_vec(vec![2, 2], vec![1.0f32, 2.0, 3.0, 4.0]).unwrap();
        assert_eq!(t.to_vec::<f32>().unwrap(), vec![1.0, 2.0, 3.0, 4.0]);
        let u = Tensor::from_vec(vec![4], vec![1.0f32, 2.0, 3.0, 4.0]).unwrap();
        assert_ne!(t.content_hash(), u.content_hash());
        assert_eq!(t.content_hash(), t.clone().content_hash());
        assert!(Tensor::from_bytes(DType::F32, vec![3], Bytes::from_static(&[0; 8])).is_err());
        assert!(Tensor::from_bytes(DType::I4, vec![3], Bytes::from_static(&[0; 2])).is_ok());
    }
}
