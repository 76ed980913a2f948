//! `TensorProto` → [`Tensor`]: every storage form ONNX allows.
//!
//! A tensor's elements live in exactly one of: `raw_data` (little-endian, 4-bit types
//! packed two per byte low nibble first, which is smelt's own layout, so the bytes are
//! used in place), an external file (same layout, sliced from a mapping), or a typed
//! field (`float_data`, `int32_data`, `int64_data`, `double_data`, `uint64_data`,
//! `string_data`), which is converted. The element count the dims declare is checked
//! against what is actually present before anything is allocated, so a tiny file cannot
//! make the importer reserve gigabytes.

use bytes::Bytes;
use smelt_ir::{DType, Tensor};

use crate::dtype::dtype_or_err;
use crate::error::{OnnxError, OnnxResult};
use crate::external::ExternalFiles;
use crate::limits::{dims_numel, Budget};
use crate::proto::tensor_proto::DataLocation;
use crate::proto::TensorProto;

/// Where one import's tensor data comes from and how much of it may be taken.
pub(crate) struct TensorSource {
    /// External data files, confined to the model's folder.
    pub(crate) ext: ExternalFiles,
    /// The memory budget all constants share.
    pub(crate) budget: Budget,
}

/// Decode `t` into a tensor. `label` names the tensor in errors when it has no name.
/// The declared size is checked against the budget before the data is looked at.
pub(crate) fn decode_tensor(
    t: &TensorProto,
    label: &str,
    src: &mut TensorSource,
) -> OnnxResult<Tensor> {
    let name = match t.name.as_deref() {
        Some(n) if !n.is_empty() => n,
        _ => label,
    };
    let bad = |msg: String| OnnxError::Tensor {
        tensor: name.to_string(),
        msg,
    };
    if t.segment.is_some() {
        return Err(bad(
            "segmented tensors (TensorProto.segment) are not supported".into(),
        ));
    }
    let dtype = dtype_or_err(t.data_type.unwrap_or(0), || format!("tensor `{name}`"))?;
    let limit = |msg: String| OnnxError::Limit {
        context: format!("tensor `{name}`"),
        msg,
    };
    // Negative dims first (a malformed tensor), then the size against the budget, all
    // before any data is touched.
    let shape = dims_to_shape(&t.dims).map_err(bad)?;
    let numel64 = dims_numel(&t.dims).map_err(limit)?;
    src.budget.take(dtype, numel64, &t.dims).map_err(limit)?;
    let numel = usize::try_from(numel64).map_err(|_| {
        bad(format!(
            "element count of dims {:?} overflows usize",
            t.dims
        ))
    })?;
    let ir = |source| OnnxError::Ir {
        context: format!("tensor `{name}`"),
        source,
    };

    if dtype == DType::String {
        if t.raw_data.as_ref().is_some_and(|r| !r.is_empty()) || is_external(t) {
            return Err(bad(
                "string tensors must store their elements in string_data".into(),
            ));
        }
        check_count("string_data", t.string_data.len(), numel).map_err(bad)?;
        let strings = t
            .string_data
            .iter()
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect();
        return Tensor::from_strings(shape, strings).map_err(ir);
    }

    let stored = if is_external(t) {
        let data = src.ext.load(name, &t.external_data)?;
        from_le_bytes(dtype, numel, data).map_err(bad)?
    } else if let Some(raw) = t
        .raw_data
        .as_ref()
        .filter(|r| !r.is_empty() || !has_typed_data(t))
    {
        from_le_bytes(dtype, numel, raw.clone()).map_err(bad)?
    } else {
        from_typed_fields(t, dtype, numel).map_err(bad)?
    };
    Tensor::from_bytes(dtype, shape, stored).map_err(ir)
}

fn is_external(t: &TensorProto) -> bool {
    t.data_location == Some(DataLocation::External as i32)
}

fn has_typed_data(t: &TensorProto) -> bool {
    !(t.float_data.is_empty()
        && t.int32_data.is_empty()
        && t.int64_data.is_empty()
        && t.double_data.is_empty()
        && t.uint64_data.is_empty()
        && t.string_data.is_empty())
}

/// ONNX dims (i64) to a concrete shape; negative or oversized dims are errors.
pub(crate) fn dims_to_shape(dims: &[i64]) -> Result<Vec<usize>, String> {
    dims.iter()
        .map(|&d| usize::try_from(d).map_err(|_| format!("invalid dimension {d} in dims {dims:?}")))
        .collect()
}

fn check_count(field: &str, have: usize, want: usize) -> Result<(), String> {
    if have == want {
        Ok(())
    } else {
        Err(format!(
            "dims declare {want} stored entries but {field} holds {have}"
        ))
    }
}

/// Bytes in ONNX's little-endian layout (raw_data or external) to smelt's storage.
/// Everything but FP6 is already in smelt's layout and is used without copying.
fn from_le_bytes(dtype: DType, numel: usize, data: Bytes) -> Result<Bytes, String> {
    if matches!(dtype, DType::F6E2M3 | DType::F6E3M2) {
        return unpack_fp6(numel, &data);
    }
    let need = dtype
        .storage_bytes(numel)
        .ok_or_else(|| format!("byte size of {numel} {dtype} elements overflows"))?;
    if data.len() != need {
        return Err(format!(
            "{numel} {dtype} elements need {need} bytes, the data has {}",
            data.len()
        ));
    }
    Ok(data)
}

/// ONNX packs FP6 four codes into three bytes (an LSB-first bitstream); smelt keeps
/// one code per byte so elements are addressable.
fn unpack_fp6(numel: usize, data: &[u8]) -> Result<Bytes, String> {
    let need = numel
        .checked_mul(6)
        .map(|bits| bits.div_ceil(8))
        .ok_or_else(|| format!("byte size of {numel} fp6 elements overflows"))?;
    if data.len() != need {
        return Err(format!(
            "{numel} fp6 elements need {need} packed bytes, the data has {}",
            data.len()
        ));
    }
    let mut out = Vec::with_capacity(numel);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    let mut bytes = data.iter();
    while out.len() < numel {
        while bits < 6 {
            let Some(&b) = bytes.next() else {
                return Err("fp6 data ends early".into());
            };
            acc |= u32::from(b) << bits;
            bits += 8;
        }
        out.push((acc & 0x3f) as u8);
        acc >>= 6;
        bits -= 6;
    }
    Ok(Bytes::from(out))
}

/// Convert the typed field that `dtype` uses into smelt's little-endian storage.
fn from_typed_fields(t: &TensorProto, dtype: DType, numel: usize) -> Result<Bytes, String> {
    let out = match dtype {
        DType::F32 => {
            check_count("float_data", t.float_data.len(), numel)?;
            t.float_data.iter().flat_map(|v| v.to_le_bytes()).collect()
        }
        DType::F64 => {
            check_count("double_data", t.double_data.len(), numel)?;
            t.double_data.iter().flat_map(|v| v.to_le_bytes()).collect()
        }
        DType::I64 => {
            check_count("int64_data", t.int64_data.len(), numel)?;
            t.int64_data.iter().flat_map(|v| v.to_le_bytes()).collect()
        }
        DType::U64 => {
            check_count("uint64_data", t.uint64_data.len(), numel)?;
            t.uint64_data.iter().flat_map(|v| v.to_le_bytes()).collect()
        }
        DType::U32 => {
            check_count("uint64_data", t.uint64_data.len(), numel)?;
            let mut out = Vec::with_capacity(numel * 4);
            for &v in &t.uint64_data {
                let v = u32::try_from(v).map_err(|_| format!("uint32 element {v} out of range"))?;
                out.extend_from_slice(&v.to_le_bytes());
            }
            out
        }
        DType::I32 => {
            check_count("int32_data", t.int32_data.len(), numel)?;
            t.int32_data.iter().flat_map(|v| v.to_le_bytes()).collect()
        }
        // Packed 4-bit types: each int32_data entry is one byte holding two elements.
        DType::I4 | DType::U4 | DType::F4E2M1 => {
            check_count("int32_data", t.int32_data.len(), numel.div_ceil(2))?;
            narrow(&t.int32_data, 0, 255, 1, dtype)?
        }
        other => {
            // One element per int32_data entry, stored as its bit pattern / value.
            let (lo, hi, width) = match other {
                DType::I8 => (-128, 127, 1),
                DType::U8 | DType::F8E4M3 | DType::F8E5M2 | DType::E8M0 => (0, 255, 1),
                DType::Bool => (0, 1, 1),
                DType::F6E2M3 | DType::F6E3M2 => (0, 63, 1),
                DType::I16 => (-32768, 32767, 2),
                DType::U16 | DType::F16 | DType::BF16 => (0, 65535, 2),
                _ => return Err(format!("{other} tensors cannot be stored in typed fields")),
            };
            check_count("int32_data", t.int32_data.len(), numel)?;
            narrow(&t.int32_data, lo, hi, width, other)?
        }
    };
    Ok(Bytes::from(out))
}

/// Range-check int32_data entries and keep their low `width` bytes (little-endian).
fn narrow(values: &[i32], lo: i32, hi: i32, width: usize, dtype: DType) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(values.len() * width);
    for &v in values {
        if v < lo || v > hi {
            return Err(format!(
                "int32_data entry {v} is out of range for {dtype} ({lo}..={hi})"
            ));
        }
        out.extend(v.to_le_bytes().iter().take(width));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fp6_unpacks_lsb_first() {
        // x = [1, 2, 3, 63]: byte0 = 1 | (2 & 3) << 6, byte1 = 2 >> 2 | (3 & 15) << 4,
        // byte2 = 3 >> 4 | 63 << 2.
        let packed = [0x81, 0x30, 0xFC];
        assert_eq!(&unpack_fp6(4, &packed).unwrap()[..], &[1, 2, 3, 63]);
        assert_eq!(&unpack_fp6(1, &[5]).unwrap()[..], &[5]);
        assert!(unpack_fp6(4, &packed[..2]).is_err());
    }

    #[test]
    fn narrow_checks_range() {
        assert_eq!(
            narrow(&[0x3c00], 0, 65535, 2, DType::F16).unwrap(),
            vec![0x00, 0x3c]
        );
        assert!(narrow(&[256], 0, 255, 1, DType::U8).is_err());
        assert!(narrow(&[-1], 0, 1, 1, DType::Bool).is_err());
    }
}
