//! `TypeProto` → [`TensorType`]: element type and (symbolic) shape of a value.

use smelt_ir::{Dim, Shape, TensorType};

use crate::dtype::dtype_or_err;
use crate::error::{OnnxError, OnnxResult};
use crate::proto::tensor_shape_proto::dimension::Value as DimValue;
use crate::proto::type_proto::Value;
use crate::proto::{TensorShapeProto, ValueInfoProto};

/// The tensor type declared for a value; `Ok(None)` when no type is given.
/// Non-tensor types (sequences, maps, optionals, sparse tensors) are errors: smelt's
/// values are dense tensors only.
pub(crate) fn declared_type(vi: &ValueInfoProto) -> OnnxResult<Option<TensorType>> {
    let name = vi.name.as_deref().unwrap_or_default();
    let bad = |msg: String| OnnxError::Value {
        value: name.to_string(),
        msg,
    };
    let Some(tp) = &vi.r#type else {
        return Ok(None);
    };
    match &tp.value {
        None => Ok(None),
        Some(Value::TensorType(t)) => {
            let dtype = dtype_or_err(t.elem_type.unwrap_or(0), || format!("value `{name}`"))?;
            let shape = t
                .shape
                .as_ref()
                .map_or_else(Shape::unranked, shape_from_proto);
            Ok(Some(TensorType::new(dtype, shape)))
        }
        Some(other) => Err(bad(format!(
            "has {} type; only tensor values are supported",
            kind_name(other)
        ))),
    }
}

/// Describe a non-tensor type for an error message.
fn kind_name(v: &Value) -> &'static str {
    match v {
        Value::TensorType(_) => "a tensor",
        Value::SequenceType(_) => "a sequence",
        Value::MapType(_) => "a map",
        Value::OptionalType(_) => "an optional",
        Value::SparseTensorType(_) => "a sparse tensor",
        Value::OpaqueType(_) => "an opaque",
    }
}

/// Dims: `dim_value` is a known size, `dim_param` a named symbol, neither unknown.
fn shape_from_proto(s: &TensorShapeProto) -> Shape {
    Shape::new(
        s.dim
            .iter()
            .map(|d| match &d.value {
                // Some exporters write -1 for "unknown"; that is not a size, so it is
                // treated like a missing one rather than rejected.
                Some(DimValue::DimValue(v)) => u64::try_from(*v).map_or(Dim::Unknown, Dim::Known),
                Some(DimValue::DimParam(p)) if !p.is_empty() => Dim::Sym(p.clone()),
                _ => Dim::Unknown,
            })
            .collect(),
    )
}
