//! [`Attr`] → `AttributeProto`: the inverse of the importer's attribute translation.
//! Every attribute kind the IR has maps to exactly one ONNX kind, with the `type` field
//! always set, so an empty list keeps its kind.

use smelt_ir::Attr;

use crate::error::OnnxResult;
use crate::proto::attribute_proto::AttributeType;
use crate::proto::AttributeProto;

use super::tensor::tensor_proto;

/// Translate attribute `name` of node `node` (the node's label, for errors).
pub(super) fn attribute_proto(name: &str, a: &Attr, node: &str) -> OnnxResult<AttributeProto> {
    let mut p = AttributeProto {
        name: Some(name.to_string()),
        ..AttributeProto::default()
    };
    let ty = match a {
        Attr::Int(i) => {
            p.i = Some(*i);
            AttributeType::Int
        }
        Attr::Float(f) => {
            p.f = Some(*f);
            AttributeType::Float
        }
        Attr::Str(s) => {
            p.s = Some(s.as_bytes().to_vec());
            AttributeType::String
        }
        Attr::Ints(v) => {
            p.ints = v.clone();
            AttributeType::Ints
        }
        Attr::Floats(v) => {
            p.floats = v.clone();
            AttributeType::Floats
        }
        Attr::Strs(v) => {
            p.strings = v.iter().map(|s| s.as_bytes().to_vec()).collect();
            AttributeType::Strings
        }
        Attr::Tensor(t) => {
            p.t = Some(tensor_proto(None, t, &format!("{node}.{name}"))?);
            AttributeType::Tensor
        }
    };
    p.r#type = Some(ty as i32);
    Ok(p)
}
