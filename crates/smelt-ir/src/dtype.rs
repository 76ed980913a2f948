//! Element types of tensors.

use std::fmt;
use std::str::FromStr;

use crate::lowfloat::FloatFormat;

/// The element type of a tensor.
///
/// Besides the usual machine types, smelt knows the low-bit float formats used by
/// compressed models (FP8, FP6, FP4 and the MX block scale E8M0). Their codes are
/// defined bit-exactly by [`FloatFormat`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DType {
    F64,
    F32,
    F16,
    BF16,
    I64,
    I32,
    I16,
    I8,
    U64,
    U32,
    U16,
    U8,
    /// Signed 4-bit integer, packed two per byte (low nibble first) in memory.
    I4,
    /// Unsigned 4-bit integer, packed two per byte (low nibble first) in memory.
    U4,
    Bool,
    /// FP8 E4M3 "fn": no infinities, one NaN code per sign.
    F8E4M3,
    /// FP8 E5M2: IEEE-style infinities and NaNs.
    F8E5M2,
    /// FP6 E3M2: no special values; stored one code per byte.
    F6E3M2,
    /// FP6 E2M3: no special values; stored one code per byte.
    F6E2M3,
    /// FP4 E2M1: no special values; packed two per byte (low nibble first).
    F4E2M1,
    /// MX block scale: an unsigned power of two, 0xFF is NaN.
    E8M0,
    /// Variable-length UTF-8 strings (only for ONNX models that carry them).
    String,
}

/// `(dtype, text name, bits per element)`; bits are 0 for variable-size strings.
const TABLE: [(DType, &str, u32); 22] = [
    (DType::F64, "f64", 64),
    (DType::F32, "f32", 32),
    (DType::F16, "f16", 16),
    (DType::BF16, "bf16", 16),
    (DType::I64, "i64", 64),
    (DType::I32, "i32", 32),
    (DType::I16, "i16", 16),
    (DType::I8, "i8", 8),
    (DType::U64, "u64", 64),
    (DType::U32, "u32", 32),
    (DType::U16, "u16", 16),
    (DType::U8, "u8", 8),
    (DType::I4, "i4", 4),
    (DType::U4, "u4", 4),
    (DType::Bool, "bool", 8),
    (DType::F8E4M3, "f8e4m3", 8),
    (DType::F8E5M2, "f8e5m2", 8),
    (DType::F6E3M2, "f6e3m2", 6),
    (DType::F6E2M3, "f6e2m3", 6),
    (DType::F4E2M1, "f4e2m1", 4),
    (DType::E8M0, "e8m0", 8),
    (DType::String, "string", 0),
];

impl DType {
    /// Every dtype, in a fixed order.
    pub fn all() -> impl Iterator<Item = DType> {
        TABLE.iter().map(|(d, _, _)| *d)
    }

    fn entry(self) -> &'static (DType, &'static str, u32) {
        TABLE
            .iter()
            .find(|(d, _, _)| *d == self)
            .unwrap_or(&TABLE[0])
    }

    /// The name used in the textual IR (`f32`, `i4`, `f8e4m3`, ...).
    pub fn name(self) -> &'static str {
        self.entry().1
    }

    /// Logical bits per element (6 for FP6 even though it is stored one per byte).
    pub fn bits(self) -> u32 {
        self.entry().2
    }

    /// Bytes occupied in memory by `n` elements in smelt's storage layout:
    /// 4-bit types pack two per byte, FP6 takes one byte per element. `None` for strings
    /// (variable size) or on overflow.
    pub fn storage_bytes(self, n: usize) -> Option<usize> {
        match self {
            DType::String => None,
            DType::I4 | DType::U4 | DType::F4E2M1 => Some(n.div_ceil(2)),
            DType::F6E3M2 | DType::F6E2M3 => Some(n),
            other => n.checked_mul(other.bits() as usize / 8),
        }
    }

    /// True for every floating-point type, low-bit ones included.
    pub fn is_float(self) -> bool {
        matches!(self, DType::F64 | DType::F32 | DType::F16 | DType::BF16)
            || self.low_float().is_some()
    }

    /// True for signed and unsigned integers (4-bit ones included), not bool.
    pub fn is_int(self) -> bool {
        self.is_signed_int() || self.is_unsigned_int()
    }

    /// Signed integer types.
    pub fn is_signed_int(self) -> bool {
        matches!(
            self,
            DType::I64 | DType::I32 | DType::I16 | DType::I8 | DType::I4
        )
    }

    /// Unsigned integer types.
    pub fn is_unsigned_int(self) -> bool {
        matches!(
            self,
            DType::U64 | DType::U32 | DType::U16 | DType::U8 | DType::U4
        )
    }

    /// The low-bit float format of this dtype, if it is one.
    pub fn low_float(self) -> Option<FloatFormat> {
        match self {
            DType::F8E4M3 => Some(FloatFormat::E4M3),
            DType::F8E5M2 => Some(FloatFormat::E5M2),
            DType::F6E3M2 => Some(FloatFormat::E3M2),
            DType::F6E2M3 => Some(FloatFormat::E2M3),
            DType::F4E2M1 => Some(FloatFormat::E2M1),
            DType::E8M0 => Some(FloatFormat::E8M0),
            _ => None,
        }
    }

    /// Inclusive integer range of an integer dtype, as i128 so every type fits.
    pub fn int_range(self) -> Option<(i128, i128)> {
        Some(match self {
            DType::I64 => (i64::MIN as i128, i64::MAX as i128),
            DType::I32 => (i32::MIN as i128, i32::MAX as i128),
            DType::I16 => (i16::MIN as i128, i16::MAX as i128),
            DType::I8 => (-128, 127),
            DType::I4 => (-8, 7),
            DType::U64 => (0, u64::MAX as i128),
            DType::U32 => (0, u32::MAX as i128),
            DType::U16 => (0, u16::MAX as i128),
            DType::U8 => (0, 255),
            DType::U4 => (0, 15),
            _ => return None,
        })
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Error for an unknown dtype name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown dtype `{0}`")]
pub struct UnknownDType(pub String);

impl FromStr for DType {
    type Err = UnknownDType;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TABLE
            .iter()
            .find(|(_, n, _)| *n == s)
            .map(|(d, _, _)| *d)
            .ok_or_else(|| UnknownDType(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for d in DType::all() {
            assert_eq!(d.name().parse::<DType>().unwrap(), d);
        }
        assert_eq!(DType::all().count(), 22);
    }

    #[test]
    fn storage_sizes() {
        assert_eq!(DType::I4.storage_bytes(5), Some(3));
        assert_eq!(DType::F32.storage_bytes(5), Some(20));
        assert_eq!(DType::F6E2M3.storage_bytes(5), Some(5));
        assert_eq!(DType::F64.storage_bytes(usize::MAX), None);
        assert_eq!(DType::String.storage_bytes(1), None);
    }
}
