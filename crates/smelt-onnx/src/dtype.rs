//! ONNX `TensorProto.DataType` codes and smelt's [`DType`].
//!
//! One table maps both ways so import and a later export cannot disagree. Codes with no
//! smelt counterpart (complex numbers, the "fnuz" FP8 variants, 2-bit integers) are
//! absent and refused by the importer.

use smelt_ir::DType;

use crate::error::{OnnxError, OnnxResult};

/// `(code, dtype, ONNX enum name)` for every code smelt can represent.
const TABLE: [(i32, DType, &str); 22] = [
    (1, DType::F32, "FLOAT"),
    (2, DType::U8, "UINT8"),
    (3, DType::I8, "INT8"),
    (4, DType::U16, "UINT16"),
    (5, DType::I16, "INT16"),
    (6, DType::I32, "INT32"),
    (7, DType::I64, "INT64"),
    (8, DType::String, "STRING"),
    (9, DType::Bool, "BOOL"),
    (10, DType::F16, "FLOAT16"),
    (11, DType::F64, "DOUBLE"),
    (12, DType::U32, "UINT32"),
    (13, DType::U64, "UINT64"),
    (16, DType::BF16, "BFLOAT16"),
    (17, DType::F8E4M3, "FLOAT8E4M3FN"),
    (19, DType::F8E5M2, "FLOAT8E5M2"),
    (21, DType::U4, "UINT4"),
    (22, DType::I4, "INT4"),
    (23, DType::F4E2M1, "FLOAT4E2M1"),
    (24, DType::E8M0, "FLOAT8E8M0"),
    (27, DType::F6E2M3, "FLOAT6E2M3"),
    (28, DType::F6E3M2, "FLOAT6E3M2"),
];

/// Names of the codes smelt refuses, for error messages.
const UNSUPPORTED: [(i32, &str); 7] = [
    (0, "UNDEFINED"),
    (14, "COMPLEX64"),
    (15, "COMPLEX128"),
    (18, "FLOAT8E4M3FNUZ"),
    (20, "FLOAT8E5M2FNUZ"),
    (25, "UINT2"),
    (26, "INT2"),
];

/// The smelt dtype of an ONNX data-type code, if smelt has one.
pub fn dtype_from_onnx(code: i32) -> Option<DType> {
    TABLE
        .iter()
        .find(|(c, _, _)| *c == code)
        .map(|(_, d, _)| *d)
}

/// The ONNX data-type code of a smelt dtype (every smelt dtype has one).
pub fn onnx_code_of(dtype: DType) -> i32 {
    // The table covers every DType; the fallback (UNDEFINED) is unreachable but keeps
    // this total without a panic path.
    TABLE
        .iter()
        .find(|(_, d, _)| *d == dtype)
        .map(|(c, _, _)| *c)
        .unwrap_or(0)
}

/// The ONNX enum name of a data-type code (`"FLOAT"`), or `"unknown"`.
pub fn onnx_type_name(code: i32) -> &'static str {
    TABLE
        .iter()
        .map(|(c, _, n)| (*c, *n))
        .chain(UNSUPPORTED)
        .find(|(c, _)| *c == code)
        .map(|(_, n)| n)
        .unwrap_or("unknown")
}

/// [`dtype_from_onnx`] with an error naming what carried the code.
pub(crate) fn dtype_or_err(code: i32, context: impl FnOnce() -> String) -> OnnxResult<DType> {
    dtype_from_onnx(code).ok_or_else(|| OnnxError::UnsupportedDType {
        context: context(),
        code,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_dtype_round_trips() {
        for d in DType::all() {
            assert_eq!(dtype_from_onnx(onnx_code_of(d)), Some(d), "{d}");
        }
        assert_eq!(dtype_from_onnx(14), None);
        assert_eq!(onnx_type_name(18), "FLOAT8E4M3FNUZ");
        assert_eq!(onnx_type_name(99), "unknown");
    }

    #[test]
    fn agrees_with_the_ir_table() {
        // Inference reads Cast's `to` through the IR's own table; both must name the same
        // dtype wherever the IR knows a code.
        for code in 0..64 {
            if let Some(d) = smelt_ir::infer::dtype_from_onnx_code(i64::from(code)) {
                assert_eq!(dtype_from_onnx(code), Some(d), "code {code}");
            }
        }
    }
}
