//! `AttributeProto` → [`Attr`].
//!
//! Scalar and list attributes and single tensors translate directly. Subgraphs, sparse
//! tensors, type protos and tensor lists have no IR counterpart and are refused with
//! the node and attribute named.

use smelt_ir::Attr;

use crate::error::{OnnxError, OnnxResult};
use crate::proto::attribute_proto::AttributeType;
use crate::proto::AttributeProto;
use crate::tensor::{decode_tensor, TensorSource};

/// Translate one attribute of node `node` into `(name, value)`.
pub(crate) fn convert_attr(
    a: &AttributeProto,
    node: &str,
    src: &mut TensorSource,
) -> OnnxResult<(String, Attr)> {
    let name = a.name.clone().unwrap_or_default();
    let bad = |msg: &str| OnnxError::Attribute {
        node: node.to_string(),
        attr: name.clone(),
        msg: msg.to_string(),
    };
    if name.is_empty() {
        return Err(bad("attribute has no name"));
    }
    if a.ref_attr_name.as_deref().is_some_and(|r| !r.is_empty()) {
        return Err(bad(
            "refers to a function attribute; only top-level graphs are supported",
        ));
    }
    let value = match attr_type(a).ok_or_else(|| bad("attribute has no type and no value"))? {
        AttributeType::Float => Attr::Float(a.f.unwrap_or_default()),
        AttributeType::Int => Attr::Int(a.i.unwrap_or_default()),
        AttributeType::String => Attr::Str(lossy(a.s.as_deref().unwrap_or_default())),
        AttributeType::Floats => Attr::Floats(a.floats.clone()),
        AttributeType::Ints => Attr::Ints(a.ints.clone()),
        AttributeType::Strings => Attr::Strs(a.strings.iter().map(|s| lossy(s)).collect()),
        AttributeType::Tensor => {
            let t =
                a.t.as_ref()
                    .ok_or_else(|| bad("TENSOR attribute without a tensor"))?;
            Attr::Tensor(decode_tensor(t, &format!("{node}.{name}"), src)?)
        }
        AttributeType::Graph | AttributeType::Graphs => {
            return Err(bad("subgraph attributes (control flow) are not supported"))
        }
        AttributeType::SparseTensor | AttributeType::SparseTensors => {
            return Err(bad("sparse tensor attributes are not supported"))
        }
        AttributeType::TypeProto | AttributeType::TypeProtos => {
            return Err(bad("type attributes are not supported"))
        }
        AttributeType::Tensors => return Err(bad("tensor-list attributes are not supported")),
        AttributeType::Undefined => return Err(bad("attribute has no type and no value")),
    };
    Ok((name, value))
}

/// The attribute's type: the `type` field, or for old producers that left it out, the
/// one value field that is set.
fn attr_type(a: &AttributeProto) -> Option<AttributeType> {
    match a.r#type.map(AttributeType::try_from) {
        Some(Ok(AttributeType::Undefined)) | None => {}
        Some(Ok(t)) => return Some(t),
        Some(Err(_)) => return None,
    }
    Some(if a.f.is_some() {
        AttributeType::Float
    } else if a.i.is_some() {
        AttributeType::Int
    } else if a.s.is_some() {
        AttributeType::String
    } else if a.t.is_some() {
        AttributeType::Tensor
    } else if a.g.is_some() {
        AttributeType::Graph
    } else if a.sparse_tensor.is_some() {
        AttributeType::SparseTensor
    } else if a.tp.is_some() {
        AttributeType::TypeProto
    } else if !a.floats.is_empty() {
        AttributeType::Floats
    } else if !a.ints.is_empty() {
        AttributeType::Ints
    } else if !a.strings.is_empty() {
        AttributeType::Strings
    } else if !a.tensors.is_empty() {
        AttributeType::Tensors
    } else if !a.graphs.is_empty() {
        AttributeType::Graphs
    } else {
        return None;
    })
}

fn lossy(s: &[u8]) -> String {
    String::from_utf8_lossy(s).into_owned()
}
