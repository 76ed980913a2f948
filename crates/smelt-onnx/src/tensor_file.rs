//! Standalone serialized `TensorProto`s (`.pb` files), as ONNX's test data sets and many
//! tools store inputs and reference outputs.
//!
//! The bytes are decoded with the same code as a model's initializers, so every storage
//! form and element type the importer accepts is accepted here: `raw_data` or typed
//! fields, 4-bit types packed two per byte, FP8/FP6/FP4, strings. External data is
//! resolved relative to the file's folder, under the importer's confinement rules.
//! A malformed file is an [`OnnxError`], never a panic.

use std::path::Path;

use bytes::Bytes;
use prost::Message;
use smelt_ir::Tensor;

use crate::error::{OnnxError, OnnxResult};
use crate::external::ExternalFiles;
use crate::limits::{Budget, ImportLimits};
use crate::proto::TensorProto;
use crate::tensor::{decode_tensor, TensorSource};

/// Read a file holding one serialized `TensorProto` into a [`Tensor`].
///
/// Errors name the file when the protobuf is malformed and the tensor (by its `name`, or
/// the file name when it has none) when its contents are: an element type smelt has no
/// counterpart for, dims that disagree with the data, out-of-range typed entries, a
/// declared size over the default memory budget ([`ImportLimits`](crate::ImportLimits)).
pub fn read_tensor_file(path: impl AsRef<Path>) -> OnnxResult<Tensor> {
    let path = path.as_ref();
    let data = std::fs::read(path).map_err(|source| OnnxError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let label = path.display().to_string();
    tensor_from_bytes(Bytes::from(data), &label, path.parent())
}

/// Decode one serialized `TensorProto` from memory. `label` names the tensor in errors
/// when it has no name; external data, if any, is looked up in `base_dir` (refused when
/// `None`).
pub fn tensor_from_bytes(data: Bytes, label: &str, base_dir: Option<&Path>) -> OnnxResult<Tensor> {
    let proto = TensorProto::decode(data).map_err(|e| OnnxError::Tensor {
        tensor: label.to_string(),
        msg: format!("not a valid TensorProto: {e}"),
    })?;
    let mut src = TensorSource {
        ext: ExternalFiles::new(base_dir),
        budget: Budget::new(ImportLimits::default().max_memory_bytes),
    };
    decode_tensor(&proto, label, &mut src)
}

#[cfg(test)]
mod tests {
    use super::*;
    use smelt_ir::DType;

    fn encode(t: &TensorProto) -> Bytes {
        Bytes::from(t.encode_to_vec())
    }

    #[test]
    fn raw_and_typed_floats() {
        let raw = TensorProto {
            dims: vec![2],
            data_type: Some(1),
            raw_data: Some(Bytes::from(
                [1.5f32, -2.0]
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect::<Vec<u8>>(),
            )),
            ..Default::default()
        };
        let t = tensor_from_bytes(encode(&raw), "x", None).unwrap();
        assert_eq!(t.dtype(), DType::F32);
        assert_eq!(t.to_vec::<f32>().unwrap(), vec![1.5, -2.0]);

        let typed = TensorProto {
            dims: vec![1, 2],
            data_type: Some(1),
            float_data: vec![3.0, 4.0],
            ..Default::default()
        };
        let t = tensor_from_bytes(encode(&typed), "x", None).unwrap();
        assert_eq!(t.shape(), &[1, 2]);
        assert_eq!(t.to_vec::<f32>().unwrap(), vec![3.0, 4.0]);
    }

    #[test]
    fn packed_int4_and_strings() {
        let i4 = TensorProto {
            dims: vec![3],
            data_type: Some(22),
            raw_data: Some(Bytes::from_static(&[0x21, 0x0f])),
            ..Default::default()
        };
        let t = tensor_from_bytes(encode(&i4), "q", None).unwrap();
        assert_eq!((t.dtype(), t.shape()), (DType::I4, &[3usize][..]));
        assert_eq!(&t.bytes()[..], &[0x21, 0x0f]);

        let s = TensorProto {
            dims: vec![2],
            data_type: Some(8),
            string_data: vec![b"a".to_vec(), b"bc".to_vec()],
            ..Default::default()
        };
        let t = tensor_from_bytes(encode(&s), "s", None).unwrap();
        assert_eq!(t.strings().unwrap(), &["a".to_string(), "bc".to_string()]);
    }

    #[test]
    fn bad_input_is_an_error() {
        // Not a protobuf at all.
        let e = tensor_from_bytes(Bytes::from_static(&[0xff; 7]), "junk", None).unwrap_err();
        assert!(e.to_string().contains("not a valid TensorProto"), "{e}");
        // Dims that promise more data than is present.
        let short = TensorProto {
            dims: vec![4],
            data_type: Some(1),
            raw_data: Some(Bytes::from_static(&[0; 8])),
            ..Default::default()
        };
        assert!(tensor_from_bytes(encode(&short), "s", None).is_err());
        // An element type smelt has no counterpart for (FLOAT8E4M3FNUZ).
        let fnuz = TensorProto {
            dims: vec![1],
            data_type: Some(18),
            raw_data: Some(Bytes::from_static(&[0])),
            ..Default::default()
        };
        let e = tensor_from_bytes(encode(&fnuz), "f", None).unwrap_err();
        assert!(e.to_string().contains("FLOAT8E4M3FNUZ"), "{e}");
        // External data without a folder to resolve it in.
        let ext = TensorProto {
            dims: vec![1],
            data_type: Some(1),
            data_location: Some(1),
            external_data: vec![crate::proto::StringStringEntryProto {
                key: Some("location".into()),
                value: Some("w.bin".into()),
            }],
            ..Default::default()
        };
        assert!(tensor_from_bytes(encode(&ext), "e", None).is_err());
        // A missing file.
        assert!(read_tensor_file("/nonexistent/smelt/tensor.pb").is_err());
    }
}
