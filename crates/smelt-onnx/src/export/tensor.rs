//! [`Tensor`] → `TensorProto`: the inverse of the importer's tensor decoding.
//!
//! Elements always go to `raw_data` in ONNX's little-endian layout, which is smelt's own
//! layout for every dtype but FP6: 4-bit types are packed two per byte, low nibble first,
//! in both; FP6 is one code per byte in smelt and a packed LSB-first bitstream (four
//! codes in three bytes) in ONNX. String tensors use `string_data`, the only storage ONNX
//! allows for them.

use bytes::Bytes;
use smelt_ir::{DType, Tensor};

use crate::dtype::onnx_code_of;
use crate::error::{OnnxError, OnnxResult};
use crate::proto::TensorProto;

/// The tensor as a proto with its data inline. `name` is the initializer's name (`None`
/// for tensors inside attributes); `label` names the tensor in errors.
pub(super) fn tensor_proto(name: Option<&str>, t: &Tensor, label: &str) -> OnnxResult<TensorProto> {
    let mut p = TensorProto {
        dims: t.shape().iter().map(|&d| d as i64).collect(),
        data_type: Some(onnx_code_of(t.dtype())),
        name: name.map(str::to_string),
        ..TensorProto::default()
    };
    if t.dtype() == DType::String {
        p.string_data = t
            .strings()
            .unwrap_or_default()
            .iter()
            .map(|s| s.as_bytes().to_vec())
            .collect();
    } else {
        p.raw_data = Some(raw_bytes(t, label)?);
    }
    Ok(p)
}

/// The tensor's elements in ONNX's `raw_data` layout. Shares the tensor's buffer (no
/// copy) for every dtype but FP6, which has to be repacked.
fn raw_bytes(t: &Tensor, label: &str) -> OnnxResult<Bytes> {
    if !matches!(t.dtype(), DType::F6E2M3 | DType::F6E3M2) {
        return Ok(t.bytes().clone());
    }
    pack_fp6(t.bytes())
        .map(Bytes::from)
        .map_err(|code| OnnxError::Tensor {
            tensor: label.to_string(),
            msg: format!(
                "{} element code {code:#04x} does not fit in 6 bits; the tensor data is corrupt",
                t.dtype()
            ),
        })
}

/// Pack one FP6 code per byte into ONNX's LSB-first bitstream (element `i` occupies bits
/// `6i..6i+6`). A code with bits above the low six is returned as the error.
pub(super) fn pack_fp6(codes: &[u8]) -> Result<Vec<u8>, u8> {
    let mut out = Vec::with_capacity((codes.len() * 6).div_ceil(8));
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for &c in codes {
        if c > 0x3f {
            return Err(c);
        }
        acc |= u32::from(c) << bits;
        bits += 6;
        while bits >= 8 {
            out.push((acc & 0xff) as u8);
            acc >>= 8;
            bits -= 8;
        }
    }
    if bits > 0 {
        out.push((acc & 0xff) as u8);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fp6_packs_lsb_first() {
        // The importer's unpacking test, the other way round.
        assert_eq!(pack_fp6(&[1, 2, 3, 63]).unwrap(), vec![0x81, 0x30, 0xFC]);
        assert_eq!(pack_fp6(&[5]).unwrap(), vec![5]);
        assert_eq!(pack_fp6(&[]).unwrap(), Vec::<u8>::new());
        assert_eq!(pack_fp6(&[1, 64]), Err(64));
    }
}
