//! Resource limits for untrusted models.
//!
//! A model file is untrusted input, so the importer bounds what it will take on before
//! doing the work: the number of nodes and the nesting depth of subgraphs are counted
//! on the decoded protobuf before the graph is built, and every tensor's declared size
//! (dims × element size, computed without overflow) is checked against a memory budget
//! before its data is looked at. Refusals are [`OnnxError::Limit`] errors naming the
//! tensor, value, node or graph and the [`ImportLimits`] field to raise.

use smelt_ir::{DType, Dim, TensorType};

use crate::error::{OnnxError, OnnxResult};
use crate::proto::{GraphProto, ModelProto, NodeProto};

/// Bounds on what an imported model may demand. The defaults admit every real model
/// we know of while refusing files crafted to exhaust memory, stack or time.
///
/// ```
/// let limits = smelt_onnx::ImportLimits {
///     max_nodes: 10_000,
///     ..Default::default()
/// };
/// assert_eq!(limits.max_subgraph_depth, 64);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportLimits {
    /// The memory budget in bytes (default 16 GiB). Refused: a constant tensor whose
    /// declared size (dims × element size) exceeds it, constants whose sizes together
    /// exceed it, and a value whose statically known shape alone would need more. Checked
    /// before anything is allocated; dims whose product overflows are always refused.
    pub max_memory_bytes: u64,
    /// The most nodes a model may have, counting the nodes of every subgraph and model
    /// function (default 1,000,000).
    pub max_nodes: usize,
    /// The deepest nesting of subgraphs (`If`/`Loop`/`Scan` bodies and other graph
    /// attributes) a model may have; the main graph is depth 0 (default 64). The
    /// protobuf decoder's own recursion limit (100 messages) refuses nesting deeper than
    /// 32 subgraphs first, as a decode error, so only a lower setting takes effect.
    pub max_subgraph_depth: usize,
}

/// 16 GiB.
const DEFAULT_MEMORY_BYTES: u64 = 16 << 30;

impl Default for ImportLimits {
    fn default() -> ImportLimits {
        ImportLimits {
            max_memory_bytes: DEFAULT_MEMORY_BYTES,
            max_nodes: 1_000_000,
            max_subgraph_depth: 64,
        }
    }
}

/// Tracks the bytes of constants taken so far against [`ImportLimits::max_memory_bytes`].
#[derive(Debug, Clone)]
pub(crate) struct Budget {
    max: u64,
    used: u64,
}

impl Budget {
    pub(crate) fn new(max: u64) -> Budget {
        Budget { max, used: 0 }
    }

    /// Check that a tensor of `numel` `dtype` elements fits, alone and together with the
    /// constants taken before, then count it. `what` names the tensor in the message.
    /// FP6 is counted unpacked (one byte per element), as smelt stores it.
    pub(crate) fn take(&mut self, dtype: DType, numel: u64, dims: &[i64]) -> Result<(), String> {
        let bytes = byte_size(dtype, numel).ok_or_else(|| {
            format!(
                "the byte size of dims {dims:?} ({numel} {dtype} elements) overflows u64, so the \
                 tensor exceeds the memory budget (ImportLimits::max_memory_bytes)"
            )
        })?;
        if bytes > self.max {
            return Err(format!(
                "dims {dims:?} declare {numel} {dtype} elements ({bytes} bytes), which exceeds \
                 the memory budget of {} bytes (ImportLimits::max_memory_bytes)",
                self.max
            ));
        }
        let total = self.used.saturating_add(bytes);
        if total > self.max {
            return Err(format!(
                "with this tensor's {bytes} bytes the model's constants take {total} bytes, \
                 which exceeds the memory budget of {} bytes (ImportLimits::max_memory_bytes)",
                self.max
            ));
        }
        self.used = total;
        Ok(())
    }

    /// Check that a value of type `ty` could be held within the budget, counting only its
    /// known dims (symbolic and unknown dims are left to run time).
    pub(crate) fn check_value(&self, ty: &TensorType) -> Result<(), String> {
        let Some(dims) = ty.shape.dims() else {
            return Ok(());
        };
        let mut numel: u64 = 1;
        let mut overflow = false;
        for d in dims {
            if let Dim::Known(n) = d {
                match numel.checked_mul(*n) {
                    Some(p) => numel = p,
                    None => overflow = true,
                }
            }
        }
        // A zero dim makes the value empty whatever the other dims are.
        if dims.iter().any(|d| matches!(d, Dim::Known(0))) {
            return Ok(());
        }
        let bytes = if overflow {
            None
        } else {
            byte_size(ty.dtype, numel)
        };
        match bytes {
            None => Err(format!(
                "the size of type {ty} overflows u64, so the value exceeds the memory budget \
                 (ImportLimits::max_memory_bytes)"
            )),
            Some(b) if b > self.max => Err(format!(
                "type {ty} needs {b} bytes, which exceeds the memory budget of {} bytes \
                 (ImportLimits::max_memory_bytes)",
                self.max
            )),
            Some(_) => Ok(()),
        }
    }
}

/// Element count of ONNX `dims` as u64; `Err` names the dims when the product overflows.
/// Negative dims are the caller's to refuse first.
pub(crate) fn dims_numel(dims: &[i64]) -> Result<u64, String> {
    let mut numel: u64 = 1;
    let mut overflow = false;
    for &d in dims {
        let d = u64::try_from(d).map_err(|_| format!("invalid dimension {d} in dims {dims:?}"))?;
        match numel.checked_mul(d) {
            Some(p) => numel = p,
            None => overflow = true,
        }
    }
    if overflow && !dims.contains(&0) {
        return Err(format!(
            "the element count of dims {dims:?} overflows u64, so the tensor exceeds the \
             memory budget (ImportLimits::max_memory_bytes)"
        ));
    }
    Ok(if dims.contains(&0) { 0 } else { numel })
}

/// Bytes `numel` elements of `dtype` take in smelt's storage (strings: none counted here).
fn byte_size(dtype: DType, numel: u64) -> Option<u64> {
    match dtype {
        DType::String => Some(0),
        DType::I4 | DType::U4 | DType::F4E2M1 => Some(numel.div_ceil(2)),
        // smelt unpacks FP6 to one code per byte.
        DType::F6E2M3 | DType::F6E3M2 => Some(numel),
        other => numel.checked_mul(u64::from(other.bits()) / 8),
    }
}

/// Count the model's nodes (subgraphs and functions included) and measure subgraph
/// nesting, refusing a model over [`ImportLimits::max_nodes`] or
/// [`ImportLimits::max_subgraph_depth`]. Iterative, so a deep model cannot overflow the
/// stack here.
pub(crate) fn check_model(model: &ModelProto, limits: &ImportLimits) -> OnnxResult<()> {
    let graph_name = model
        .graph
        .as_ref()
        .and_then(|g| g.name.clone())
        .unwrap_or_default();
    let mut nodes: usize = model.functions.iter().map(|f| f.node.len()).sum();
    let mut stack: Vec<(&GraphProto, usize)> = Vec::new();
    if let Some(g) = &model.graph {
        stack.push((g, 0));
    }
    for t in &model.training_info {
        stack.extend(t.initialization.iter().map(|g| (g, 0)));
        stack.extend(t.algorithm.iter().map(|g| (g, 0)));
    }
    let function_nodes = model.functions.iter().flat_map(|f| f.node.iter());
    // Subgraphs inside function bodies are nested one level below the function.
    let mut pending: Vec<(&NodeProto, usize)> = function_nodes.map(|n| (n, 0)).collect();
    loop {
        for (n, depth) in pending.drain(..) {
            for a in &n.attribute {
                let graphs = a.g.iter().chain(a.graphs.iter());
                for sub in graphs {
                    let d = depth + 1;
                    if d > limits.max_subgraph_depth {
                        return Err(OnnxError::Limit {
                            context: format!(
                                "node `{}` ({}), attribute `{}`",
                                n.name.as_deref().unwrap_or_default(),
                                n.op_type.as_deref().unwrap_or_default(),
                                a.name.as_deref().unwrap_or_default()
                            ),
                            msg: format!(
                                "subgraphs are nested {d} deep, more than the limit of {} \
                                 (ImportLimits::max_subgraph_depth)",
                                limits.max_subgraph_depth
                            ),
                        });
                    }
                    stack.push((sub, d));
                }
            }
        }
        let Some((g, depth)) = stack.pop() else {
            break;
        };
        nodes = nodes.saturating_add(g.node.len());
        if nodes > limits.max_nodes {
            return Err(OnnxError::Limit {
                context: format!("graph `{graph_name}`"),
                msg: format!(
                    "the model has more than {} nodes (subgraphs included), the limit \
                     (ImportLimits::max_nodes)",
                    limits.max_nodes
                ),
            });
        }
        pending.extend(g.node.iter().map(|n| (n, depth)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numel_overflow_and_zero() {
        assert_eq!(dims_numel(&[2, 3]).unwrap(), 6);
        assert_eq!(dims_numel(&[]).unwrap(), 1);
        assert_eq!(dims_numel(&[1 << 40, 1 << 40, 0]).unwrap(), 0);
        assert!(dims_numel(&[1 << 31, 1 << 31, 4])
            .unwrap_err()
            .contains("overflows"));
        assert!(dims_numel(&[-1]).is_err());
    }

    #[test]
    fn budget_counts_alone_and_together() {
        let mut b = Budget::new(100);
        assert!(b.take(DType::F32, 20, &[20]).is_ok());
        assert!(b
            .take(DType::F32, 26, &[26])
            .unwrap_err()
            .contains("budget"));
        assert!(b.take(DType::F32, 5, &[5]).is_ok());
        assert!(b
            .take(DType::U8, 1, &[1])
            .unwrap_err()
            .contains("constants take"));
        assert!(b
            .take(DType::F64, u64::MAX, &[-1])
            .unwrap_err()
            .contains("overflows"));
        assert!(b.take(DType::I4, 2, &[2]).is_err());
        assert!(b.take(DType::String, 1_000_000, &[1_000_000]).is_ok());
    }
}
