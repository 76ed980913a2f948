//! # smelt-interp
//!
//! The reference interpreter for smelt graphs: the numerical oracle every compiled
//! model is checked against, the constant folder's evaluator and the calibration
//! engine.
//!
//! Ops follow ONNX semantics at the newest opset smelt supports (axes, splits, bounds
//! and pads as inputs; the older attribute forms are accepted too) with numpy
//! broadcasting. Correctness comes first; the hot ops (MatMul/Gemm through
//! `matrixmultiply`, Conv by im2col, elementwise loops over typed arrays, rayon across
//! batches and large tensors) make a 6-layer BERT run in well under a second.
//!
//! - [`run`] / [`Interpreter`]: execute a [`Graph`](smelt_ir::Graph) on named inputs.
//! - [`run_with_observer`]: the same, reporting every computed value (calibration).
//! - [`eval_op`]: evaluate one op on tensors (constant folding).
//! - [`decode_constant`]: the logical tensor of an encoded constant.

#![warn(missing_docs)]

mod decode;
mod error;
mod math;
mod num;
mod ops;
mod run;
mod value;

pub use decode::decode_constant;
pub use error::InterpError;
pub use run::{run, run_with_observer, Interpreter, Observer};

use smelt_ir::{Attrs, OpKind, Tensor};

use crate::value::Value;

/// Evaluate one op on tensors, returning exactly `num_outputs` outputs (an op with
/// optional outputs computes only those asked for). `None` inputs are omitted optional
/// inputs. Errors name the op; [`InterpError::at_node`] attaches a node label.
pub fn eval_op(
    op: &OpKind,
    attrs: &Attrs,
    inputs: &[Option<&Tensor>],
    num_outputs: usize,
) -> Result<Vec<Tensor>, InterpError> {
    let name = op.to_string();
    let values: Vec<Option<Value>> = inputs
        .iter()
        .map(|t| t.map(Value::from_tensor).transpose())
        .collect::<Result<_, _>>()
        .map_err(|e| e.at("", &name))?;
    let refs: Vec<Option<&Value>> = values.iter().map(Option::as_ref).collect();
    let outs = ops::eval(op, attrs, &refs, num_outputs).map_err(|e| e.at("", &name))?;
    if outs.len() < num_outputs {
        return Err(InterpError::Op {
            node: String::new(),
            op: name,
            msg: format!(
                "produces {} outputs, {num_outputs} were asked for",
                outs.len()
            ),
        });
    }
    outs.iter()
        .take(num_outputs)
        .map(|v| v.to_tensor().map_err(|e| e.at("", &name)))
        .collect()
}
