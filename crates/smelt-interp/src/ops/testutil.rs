//! Helpers for the op unit tests: build values and run ops tersely.

use ndarray::{ArrayD, IxDyn};
use smelt_ir::{Attr, Attrs, OpKind};

use crate::value::{Elem, Value};

/// A value of element type `T` with `shape`.
pub(crate) fn v<T: Elem>(shape: &[usize], data: &[T]) -> Value {
    T::into_value(
        ArrayD::from_shape_vec(IxDyn(shape), data.to_vec()).expect("test data fits its shape"),
    )
}

/// Attributes from `(name, value)` pairs.
pub(crate) fn attrs(list: &[(&str, Attr)]) -> Attrs {
    list.iter()
        .fold(Attrs::new(), |a, (n, v)| a.with(n, v.clone()))
}

/// Run `op`, expecting success, returning `n` outputs.
pub(crate) fn run_n(op: OpKind, a: &Attrs, inputs: &[Option<&Value>], n: usize) -> Vec<Value> {
    super::eval(&op, a, inputs, n).unwrap_or_else(|e| panic!("{op}: {}", e.0))
}

/// Run `op` with all inputs present, expecting one output.
pub(crate) fn run(op: OpKind, a: &Attrs, inputs: &[&Value]) -> Value {
    let ins: Vec<Option<&Value>> = inputs.iter().map(|v| Some(*v)).collect();
    run_n(op, a, &ins, 1).remove(0)
}

/// Run `op`, expecting an error; returns its message.
pub(crate) fn fails(op: OpKind, a: &Attrs, inputs: &[&Value]) -> String {
    let ins: Vec<Option<&Value>> = inputs.iter().map(|v| Some(*v)).collect();
    match super::eval(&op, a, &ins, 1) {
        Ok(_) => panic!("{op} unexpectedly succeeded"),
        Err(e) => e.0,
    }
}

/// Shape and elements of a value of element type `T`.
pub(crate) fn data<T: Elem>(v: &Value) -> (Vec<usize>, Vec<T>) {
    let a = T::array(v).unwrap_or_else(|| panic!("expected {}, got {}", T::DTYPE, v.dtype()));
    (a.shape().to_vec(), a.iter().cloned().collect())
}
