//! Shape and type inference.
//!
//! [`infer_node`] computes the output types of one node from its input types (and the
//! values of constant inputs where an op's output shape depends on them, e.g. Reshape's
//! target shape). [`Graph::infer_types`] runs it over the graph in topological order and
//! merges the result with the types already recorded (e.g. from ONNX `value_info`).
//!
//! Rules follow ONNX semantics at the newest opset smelt supports (axes, split sizes,
//! clip bounds and the like are inputs, not attributes). Symbolic dims are kept wherever
//! they can be derived: besides constant inputs, small integer inputs computed in the
//! graph (`Shape -> Gather -> Unsqueeze -> Concat`, as torch exports build Reshape
//! targets) are followed back to the shapes they read, so such a Reshape keeps
//! `?batch_size` rather than only learning its rank.

use crate::dtype::DType;
use crate::error::{IrError, IrResult};
use crate::graph::{Graph, NodeId};
use crate::op::OpKind;
use crate::shape::{Dim, Shape};
use crate::tensor::Tensor;
use crate::types::TensorType;

/// What inference sees of one node.
pub struct InferCx<'a> {
    /// The graph (for attribute and value lookups).
    pub graph: &'a Graph,
    /// The node.
    pub node: NodeId,
    /// Input types by slot (`None` for omitted optional inputs).
    pub inputs: Vec<Option<&'a TensorType>>,
    /// Input values by slot where the input is a plain constant.
    pub consts: Vec<Option<&'a Tensor>>,
}

/// Infer the output types of `node`.
pub fn infer_node(graph: &Graph, node: NodeId) -> IrResult<Vec<TensorType>> {
    let n = graph.node(node);
    let cx = InferCx {
        graph,
        node,
        inputs: n.inputs.iter().map(|i| i.map(|v| graph.ty(v))).collect(),
        consts: n
            .inputs
            .iter()
            .map(|i| i.and_then(|v| graph.plain_constant(v)))
            .collect(),
    };
    rules::infer(&cx).map_err(|msg| IrError::Infer {
        node: graph.node_label(node),
        op: n.op.to_string(),
        msg,
    })
}

/// Merge an inferred type with a recorded one, keeping what is more specific.
/// Conflicting known facts are an error.
pub fn merge_types(inferred: &TensorType, recorded: &TensorType) -> Result<TensorType, String> {
    if inferred.dtype != recorded.dtype {
        return Err(format!(
            "inferred dtype {} but recorded {}",
            inferred.dtype, recorded.dtype
        ));
    }
    let shape = match (inferred.shape.dims(), recorded.shape.dims()) {
        (None, _) => recorded.shape.clone(),
        (Some(_), None) => inferred.shape.clone(),
        (Some(a), Some(b)) => {
            if a.len() != b.len() {
                return Err(format!(
                    "inferred shape {} but recorded {}",
                    inferred.shape, recorded.shape
                ));
            }
            let mut out = Vec::with_capacity(a.len());
            for (x, y) in a.iter().zip(b) {
                out.push(match (x, y) {
                    (Dim::Known(p), Dim::Known(q)) if p != q => {
                        return Err(format!(
                            "inferred shape {} but recorded {}",
                            inferred.shape, recorded.shape
                        ))
                    }
                    (Dim::Known(_), _) => x.clone(),
                    (_, Dim::Known(_)) => y.clone(),
                    (Dim::Sym(_), _) => x.clone(),
                    (Dim::Unknown, _) => y.clone(),
                });
            }
            Shape::new(out)
        }
    };
    Ok(TensorType {
        dtype: inferred.dtype,
        shape,
    })
}

impl Graph {
    /// Infer the types of every node output in topological order, merging with the
    /// recorded types. Fails on the first node whose inputs do not fit its op.
    pub fn infer_types(&mut self) -> IrResult<()> {
        for id in self.topo_order()? {
            if self.node(id).op == OpKind::Const {
                continue;
            }
            let inferred = infer_node(self, id)?;
            let outs = self.node(id).outputs.clone();
            if inferred.len() < outs.len() {
                return Err(IrError::Infer {
                    node: self.node_label(id),
                    op: self.node(id).op.to_string(),
                    msg: format!(
                        "op yields {} outputs, node has {}",
                        inferred.len(),
                        outs.len()
                    ),
                });
            }
            for (v, ty) in outs.into_iter().zip(inferred) {
                let merged = merge_types(&ty, self.ty(v)).map_err(|msg| IrError::Infer {
                    node: self.node_label(id),
                    op: self.node(id).op.to_string(),
                    msg: format!("output `{}`: {msg}", self.value(v).name),
                })?;
                self.set_type(v, merged);
            }
        }
        Ok(())
    }
}

mod attention;
mod indexing;
mod loss;
mod nn;
mod normalization;
mod qlinear;
mod resize;
mod rnn;
mod rules;
mod shape_ops;
mod spatial;
#[cfg(test)]
mod tests;
mod util;
mod value;

/// ONNX `TensorProto.DataType` codes and the dtypes they name (FP6: 27, 28);
/// the `*FNUZ` FP8 variants (18, 20) are different formats and are not mapped.
const ONNX_CODES: [(i64, DType); 22] = [
    (1, DType::F32),
    (2, DType::U8),
    (3, DType::I8),
    (4, DType::U16),
    (5, DType::I16),
    (6, DType::I32),
    (7, DType::I64),
    (8, DType::String),
    (9, DType::Bool),
    (10, DType::F16),
    (11, DType::F64),
    (12, DType::U32),
    (13, DType::U64),
    (16, DType::BF16),
    (17, DType::F8E4M3),
    (19, DType::F8E5M2),
    (21, DType::U4),
    (22, DType::I4),
    (23, DType::F4E2M1),
    (24, DType::E8M0),
    (27, DType::F6E2M3),
    (28, DType::F6E3M2),
];

/// The dtype named by an ONNX `TensorProto.DataType` code (as used by Cast's `to`,
/// `output_dtype` and `stash_type`), or `None` for codes smelt has no dtype for.
pub fn dtype_from_onnx_code(code: i64) -> Option<DType> {
    ONNX_CODES.iter().find(|(c, _)| *c == code).map(|(_, d)| *d)
}

/// The ONNX `TensorProto.DataType` code of a dtype (FP6 uses the codes onnx 1.23 added,
/// 27 and 28), or `None` for dtypes ONNX cannot express.
pub fn onnx_code_of(dtype: DType) -> Option<i64> {
    ONNX_CODES
        .iter()
        .find(|(_, d)| *d == dtype)
        .map(|(c, _)| *c)
}
