//! [`TensorType`] → `ValueInfoProto`: known dims become `dim_value`, symbolic ones
//! `dim_param`, unknown ones a dimension with neither, and an unknown rank a tensor type
//! without a shape. This is exactly what the importer reads back.

use smelt_ir::{Dim, TensorType};

use crate::dtype::onnx_code_of;
use crate::error::{OnnxError, OnnxResult};
use crate::proto::tensor_shape_proto::dimension::Value as DimValue;
use crate::proto::tensor_shape_proto::Dimension;
use crate::proto::type_proto::{Tensor as TensorTypeProto, Value};
use crate::proto::{TensorShapeProto, TypeProto, ValueInfoProto};

/// A value's name and type.
pub(super) fn value_info(name: &str, ty: &TensorType) -> OnnxResult<ValueInfoProto> {
    let shape = match ty.dims() {
        None => None,
        Some(dims) => Some(TensorShapeProto {
            dim: dims
                .iter()
                .map(|d| dimension(d, name))
                .collect::<OnnxResult<_>>()?,
        }),
    };
    Ok(ValueInfoProto {
        name: Some(name.to_string()),
        r#type: Some(TypeProto {
            value: Some(Value::TensorType(TensorTypeProto {
                elem_type: Some(onnx_code_of(ty.dtype)),
                shape,
            })),
            denotation: None,
        }),
        ..ValueInfoProto::default()
    })
}

fn dimension(d: &Dim, value: &str) -> OnnxResult<Dimension> {
    let v = match d {
        Dim::Known(n) => Some(DimValue::DimValue(i64::try_from(*n).map_err(|_| {
            OnnxError::Value {
                value: value.to_string(),
                msg: format!("dimension {n} does not fit ONNX's int64 dim_value"),
            }
        })?)),
        Dim::Sym(s) => Some(DimValue::DimParam(s.clone())),
        Dim::Unknown => None,
    };
    Ok(Dimension {
        value: v,
        denotation: None,
    })
}
