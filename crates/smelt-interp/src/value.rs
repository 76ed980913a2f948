//! The interpreter's in-memory tensor: one `ndarray` array per element type.
//!
//! Kernels work on typed arrays so that inner loops are monomorphised per element type
//! instead of dispatching per element. Low-bit types (4-bit integers, FP8/FP6/FP4, E8M0)
//! are held one code per element, unpacked, and only converted to numbers by the ops
//! that understand them (Cast, QuantizeLinear, DequantizeLinear); data-movement ops move
//! the codes as they are.

use half::{bf16, f16};
use ndarray::{ArrayD, IxDyn};
use smelt_ir::{DType, Tensor};

use crate::error::{bail, OpError, OpResult};

/// A tensor value during interpretation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    F64(ArrayD<f64>),
    F32(ArrayD<f32>),
    F16(ArrayD<f16>),
    BF16(ArrayD<bf16>),
    I64(ArrayD<i64>),
    I32(ArrayD<i32>),
    I16(ArrayD<i16>),
    I8(ArrayD<i8>),
    U64(ArrayD<u64>),
    U32(ArrayD<u32>),
    U16(ArrayD<u16>),
    U8(ArrayD<u8>),
    Bool(ArrayD<bool>),
    Str(ArrayD<String>),
    /// A low-bit type (`i4`, `u4`, FP8, FP6, FP4, E8M0): one raw code per element.
    Packed {
        dtype: DType,
        codes: ArrayD<u8>,
    },
}

/// An element type with its own [`Value`] variant.
pub(crate) trait Elem: Clone + Default + Send + Sync + std::fmt::Debug + 'static {
    /// The dtype of this element type.
    const DTYPE: DType;
    /// The array inside `v` if `v` holds this element type.
    fn array(v: &Value) -> Option<&ArrayD<Self>>;
    /// Wrap an array into a value.
    fn into_value(a: ArrayD<Self>) -> Value;
}

macro_rules! elem {
    ($t:ty, $variant:ident, $dtype:expr) => {
        impl Elem for $t {
            const DTYPE: DType = $dtype;
            fn array(v: &Value) -> Option<&ArrayD<Self>> {
                match v {
                    Value::$variant(a) => Some(a),
                    _ => None,
                }
            }
            fn into_value(a: ArrayD<Self>) -> Value {
                Value::$variant(a)
            }
        }
    };
}

elem!(f64, F64, DType::F64);
elem!(f32, F32, DType::F32);
elem!(f16, F16, DType::F16);
elem!(bf16, BF16, DType::BF16);
elem!(i64, I64, DType::I64);
elem!(i32, I32, DType::I32);
elem!(i16, I16, DType::I16);
elem!(i8, I8, DType::I8);
elem!(u64, U64, DType::U64);
elem!(u32, U32, DType::U32);
elem!(u16, U16, DType::U16);
elem!(u8, U8, DType::U8);
elem!(bool, Bool, DType::Bool);
elem!(String, Str, DType::String);

/// Run `$body` with `$T` bound to the element type of `$v`, for every unpacked variant.
/// Packed values must be unpacked to `u8` codes by the caller first.
macro_rules! dispatch_all {
    ($v:expr, $T:ident => $body:expr) => {{
        use $crate::value::Value as V;
        match $v {
            V::F64(_) => {
                type $T = f64;
                $body
            }
            V::F32(_) => {
                type $T = f32;
                $body
            }
            V::F16(_) => {
                type $T = half::f16;
                $body
            }
            V::BF16(_) => {
                type $T = half::bf16;
                $body
            }
            V::I64(_) => {
                type $T = i64;
                $body
            }
            V::I32(_) => {
                type $T = i32;
                $body
            }
            V::I16(_) => {
                type $T = i16;
                $body
            }
            V::I8(_) => {
                type $T = i8;
                $body
            }
            V::U64(_) => {
                type $T = u64;
                $body
            }
            V::U32(_) => {
                type $T = u32;
                $body
            }
            V::U16(_) => {
                type $T = u16;
                $body
            }
            V::U8(_) => {
                type $T = u8;
                $body
            }
            V::Bool(_) => {
                type $T = bool;
                $body
            }
            V::Str(_) => {
                type $T = String;
                $body
            }
            V::Packed { dtype, .. } => Err($crate::error::OpError::new(format!(
                "{dtype} codes reached a kernel unpacked (interpreter bug)"
            ))),
        }
    }};
}
pub(crate) use dispatch_all;

/// Run `$body` with `$T` bound to the element type of `$v` for the arithmetic types
/// (f32, f64 and all integers); other dtypes are an error. Half floats are widened to
/// f32 before kernels run, so they never reach here.
macro_rules! dispatch_num {
    ($v:expr, $T:ident => $body:expr) => {{
        use $crate::value::Value as V;
        match $v {
            V::F64(_) => {
                type $T = f64;
                $body
            }
            V::F32(_) => {
                type $T = f32;
                $body
            }
            V::I64(_) => {
                type $T = i64;
                $body
            }
            V::I32(_) => {
                type $T = i32;
                $body
            }
            V::I16(_) => {
                type $T = i16;
                $body
            }
            V::I8(_) => {
                type $T = i8;
                $body
            }
            V::U64(_) => {
                type $T = u64;
                $body
            }
            V::U32(_) => {
                type $T = u32;
                $body
            }
            V::U16(_) => {
                type $T = u16;
                $body
            }
            V::U8(_) => {
                type $T = u8;
                $body
            }
            other => Err($crate::error::OpError::new(format!(
                "unsupported input dtype {}",
                other.dtype()
            ))),
        }
    }};
}
pub(crate) use dispatch_num;

/// Like [`dispatch_num`] for the floating-point types only.
macro_rules! dispatch_float {
    ($v:expr, $T:ident => $body:expr) => {{
        use $crate::value::Value as V;
        match $v {
            V::F64(_) => {
                type $T = f64;
                $body
            }
            V::F32(_) => {
                type $T = f32;
                $body
            }
            other => Err($crate::error::OpError::new(format!(
                "unsupported input dtype {} (expected a float type)",
                other.dtype()
            ))),
        }
    }};
}
pub(crate) use dispatch_float;

/// The array of `v` as element type `T`, or an error naming `what` and both dtypes.
pub(crate) fn typed<'a, T: Elem>(v: &'a Value, what: &str) -> OpResult<&'a ArrayD<T>> {
    T::array(v)
        .ok_or_else(|| OpError::new(format!("{what} is {}, expected {}", v.dtype(), T::DTYPE)))
}

/// An array from a shape and standard-order data; the lengths were computed to match.
pub(crate) fn array_from<T>(shape: &[usize], data: Vec<T>) -> OpResult<ArrayD<T>> {
    ArrayD::from_shape_vec(IxDyn(shape), data)
        .map_err(|e| OpError::new(format!("internal shape error for {shape:?}: {e}")))
}

/// The elements of `a` in standard (row-major) order.
pub(crate) fn to_std_vec<T: Clone>(a: &ArrayD<T>) -> Vec<T> {
    match a.as_slice() {
        Some(s) => s.to_vec(),
        None => a.iter().cloned().collect(),
    }
}

impl Value {
    /// The element type.
    pub(crate) fn dtype(&self) -> DType {
        match self {
            Value::F64(_) => DType::F64,
            Value::F32(_) => DType::F32,
            Value::F16(_) => DType::F16,
            Value::BF16(_) => DType::BF16,
            Value::I64(_) => DType::I64,
            Value::I32(_) => DType::I32,
            Value::I16(_) => DType::I16,
            Value::I8(_) => DType::I8,
            Value::U64(_) => DType::U64,
            Value::U32(_) => DType::U32,
            Value::U16(_) => DType::U16,
            Value::U8(_) => DType::U8,
            Value::Bool(_) => DType::Bool,
            Value::Str(_) => DType::String,
            Value::Packed { dtype, .. } => *dtype,
        }
    }

    /// The concrete shape.
    pub(crate) fn shape(&self) -> &[usize] {
        match self {
            Value::F64(a) => a.shape(),
            Value::F32(a) => a.shape(),
            Value::F16(a) => a.shape(),
            Value::BF16(a) => a.shape(),
            Value::I64(a) => a.shape(),
            Value::I32(a) => a.shape(),
            Value::I16(a) => a.shape(),
            Value::I8(a) => a.shape(),
            Value::U64(a) => a.shape(),
            Value::U32(a) => a.shape(),
            Value::U16(a) => a.shape(),
            Value::U8(a) => a.shape(),
            Value::Bool(a) => a.shape(),
            Value::Str(a) => a.shape(),
            Value::Packed { codes, .. } => codes.shape(),
        }
    }

    /// Number of elements.
    pub(crate) fn len(&self) -> usize {
        self.shape().iter().product()
    }

    /// Read a [`Tensor`], unpacking 4-bit codes (low nibble first).
    pub(crate) fn from_tensor(t: &Tensor) -> OpResult<Value> {
        let shape = t.shape();
        let b = t.bytes();
        Ok(match t.dtype() {
            DType::F64 => Value::F64(array_from(shape, read_le(b))?),
            DType::F32 => Value::F32(array_from(shape, read_le(b))?),
            DType::F16 => Value::F16(array_from(shape, read_le(b))?),
            DType::BF16 => Value::BF16(array_from(shape, read_le(b))?),
            DType::I64 => Value::I64(array_from(shape, read_le(b))?),
            DType::I32 => Value::I32(array_from(shape, read_le(b))?),
            DType::I16 => Value::I16(array_from(shape, read_le(b))?),
            DType::I8 => Value::I8(array_from(shape, read_le(b))?),
            DType::U64 => Value::U64(array_from(shape, read_le(b))?),
            DType::U32 => Value::U32(array_from(shape, read_le(b))?),
            DType::U16 => Value::U16(array_from(shape, read_le(b))?),
            DType::U8 => Value::U8(array_from(shape, b.to_vec())?),
            DType::Bool => Value::Bool(array_from(shape, b.iter().map(|&v| v != 0).collect())?),
            DType::String => {
                let strings = t
                    .strings()
                    .ok_or_else(|| OpError::new("string tensor without strings"))?;
                Value::Str(array_from(shape, strings.to_vec())?)
            }
            d @ (DType::I4 | DType::U4 | DType::F4E2M1) => {
                let n = t.len();
                let codes = (0..n).map(|i| (b[i / 2] >> (4 * (i % 2))) & 0x0F).collect();
                Value::Packed {
                    dtype: d,
                    codes: array_from(shape, codes)?,
                }
            }
            d @ (DType::F8E4M3 | DType::F8E5M2 | DType::F6E3M2 | DType::F6E2M3 | DType::E8M0) => {
                Value::Packed {
                    dtype: d,
                    codes: array_from(shape, b.to_vec())?,
                }
            }
        })
    }

    /// Write a [`Tensor`], packing 4-bit codes two per byte (low nibble first).
    pub(crate) fn to_tensor(&self) -> OpResult<Tensor> {
        fn plain<T: Elem + Le>(a: &ArrayD<T>) -> OpResult<Tensor> {
            let mut bytes = Vec::with_capacity(a.len() * T::SIZE);
            match a.as_slice() {
                Some(s) => s.iter().for_each(|v| v.put_le(&mut bytes)),
                None => a.iter().for_each(|v| v.put_le(&mut bytes)),
            }
            Ok(Tensor::from_bytes(
                T::DTYPE,
                a.shape().to_vec(),
                bytes.into(),
            )?)
        }
        match self {
            Value::F64(a) => plain(a),
            Value::F32(a) => plain(a),
            Value::F16(a) => plain(a),
            Value::BF16(a) => plain(a),
            Value::I64(a) => plain(a),
            Value::I32(a) => plain(a),
            Value::I16(a) => plain(a),
            Value::I8(a) => plain(a),
            Value::U64(a) => plain(a),
            Value::U32(a) => plain(a),
            Value::U16(a) => plain(a),
            Value::U8(a) => plain(a),
            Value::Bool(a) => plain(a),
            Value::Str(a) => Ok(Tensor::from_strings(a.shape().to_vec(), to_std_vec(a))?),
            Value::Packed { dtype, codes } => {
                let codes = to_std_vec(codes);
                let bytes: Vec<u8> = if dtype.bits() == 4 {
                    codes
                        .chunks(2)
                        .map(|p| (p[0] & 0x0F) | (p.get(1).copied().unwrap_or(0) << 4))
                        .collect()
                } else {
                    codes
                };
                Ok(Tensor::from_bytes(
                    *dtype,
                    self.shape().to_vec(),
                    bytes.into(),
                )?)
            }
        }
    }

    /// The elements of an integer (or bool) value as i64, e.g. a shape or axes input.
    pub(crate) fn to_i64_vec(&self, what: &str) -> OpResult<Vec<i64>> {
        fn conv<T: Copy>(a: &ArrayD<T>, f: impl Fn(T) -> i64) -> Vec<i64> {
            a.iter().map(|&x| f(x)).collect()
        }
        Ok(match self {
            Value::I64(a) => conv(a, |x| x),
            Value::I32(a) => conv(a, i64::from),
            Value::I16(a) => conv(a, i64::from),
            Value::I8(a) => conv(a, i64::from),
            Value::U64(a) => conv(a, |x| x as i64),
            Value::U32(a) => conv(a, i64::from),
            Value::U16(a) => conv(a, i64::from),
            Value::U8(a) => conv(a, i64::from),
            Value::Bool(a) => conv(a, i64::from),
            other => bail!("{what} must be an integer tensor, got {}", other.dtype()),
        })
    }

    /// The elements of a numeric value as f64 (exact for every float type).
    pub(crate) fn to_f64_vec(&self, what: &str) -> OpResult<Vec<f64>> {
        fn conv<T: Copy>(a: &ArrayD<T>, f: impl Fn(T) -> f64) -> Vec<f64> {
            a.iter().map(|&x| f(x)).collect()
        }
        Ok(match self {
            Value::F64(a) => conv(a, |x| x),
            Value::F32(a) => conv(a, f64::from),
            Value::F16(a) => conv(a, f64::from),
            Value::BF16(a) => conv(a, f64::from),
            Value::I64(a) => conv(a, |x| x as f64),
            Value::I32(a) => conv(a, f64::from),
            Value::I16(a) => conv(a, f64::from),
            Value::I8(a) => conv(a, f64::from),
            Value::U64(a) => conv(a, |x| x as f64),
            Value::U32(a) => conv(a, f64::from),
            Value::U16(a) => conv(a, f64::from),
            Value::U8(a) => conv(a, f64::from),
            Value::Bool(a) => conv(a, |x| f64::from(u8::from(x))),
            other => bail!("{what} must be a numeric tensor, got {}", other.dtype()),
        })
    }

    /// For f16/bf16 values, the same values widened to f32 (exactly).
    pub(crate) fn widen_half(&self) -> Option<Value> {
        match self {
            Value::F16(a) => Some(Value::F32(a.mapv(f32::from))),
            Value::BF16(a) => Some(Value::F32(a.mapv(f32::from))),
            _ => None,
        }
    }

    /// An f32 array rounded (to nearest even) to the half type `to` (f16 or bf16).
    pub(crate) fn narrow_f32(a: ArrayD<f32>, to: DType) -> Value {
        match to {
            DType::F16 => Value::F16(a.mapv(f16::from_f32)),
            DType::BF16 => Value::BF16(a.mapv(bf16::from_f32)),
            _ => Value::F32(a),
        }
    }
}

/// Fixed-size little-endian encoding of an element type (done here rather than through
/// `Tensor::to_vec`/`from_vec` so the loops are compiled with this crate's optimisation
/// and run at memory speed on large weights).
trait Le: Copy {
    /// Bytes per element.
    const SIZE: usize;
    /// Decode from exactly `SIZE` bytes.
    fn get_le(b: &[u8]) -> Self;
    /// Append the encoding.
    fn put_le(self, out: &mut Vec<u8>);
}

macro_rules! le {
    ($($t:ty),*) => {$(
        impl Le for $t {
            const SIZE: usize = std::mem::size_of::<$t>();
            #[inline]
            fn get_le(b: &[u8]) -> Self {
                // `b` always has SIZE bytes (chunks_exact); the fallback is unreachable.
                <$t>::from_le_bytes(b.try_into().unwrap_or_default())
            }
            #[inline]
            fn put_le(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
        }
    )*};
}

le!(f64, f32, i64, i32, i16, i8, u64, u32, u16, u8);

impl Le for f16 {
    const SIZE: usize = 2;
    #[inline]
    fn get_le(b: &[u8]) -> Self {
        f16::from_bits(u16::get_le(b))
    }
    #[inline]
    fn put_le(self, out: &mut Vec<u8>) {
        self.to_bits().put_le(out)
    }
}

impl Le for bf16 {
    const SIZE: usize = 2;
    #[inline]
    fn get_le(b: &[u8]) -> Self {
        bf16::from_bits(u16::get_le(b))
    }
    #[inline]
    fn put_le(self, out: &mut Vec<u8>) {
        self.to_bits().put_le(out)
    }
}

impl Le for bool {
    const SIZE: usize = 1;
    #[inline]
    fn get_le(b: &[u8]) -> Self {
        b[0] != 0
    }
    #[inline]
    fn put_le(self, out: &mut Vec<u8>) {
        out.push(u8::from(self))
    }
}

/// Decode little-endian bytes into elements (a trailing partial element is ignored;
/// tensors always hold whole elements).
fn read_le<T: Le>(bytes: &[u8]) -> Vec<T> {
    bytes.chunks_exact(T::SIZE).map(T::get_le).collect()
}
