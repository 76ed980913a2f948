//! `eval_op`, the entry point constant folding uses.

use smelt_interp::{eval_op, InterpError};
use smelt_ir::{Attr, Attrs, DType, OpKind, Tensor};

fn i64s(v: &[i64]) -> Tensor {
    Tensor::from_vec(vec![v.len()], v.to_vec()).unwrap()
}

#[test]
fn folds_a_shape_computation() {
    let shape = i64s(&[4, 128, 384]);
    let idx = Tensor::scalar(1i64);
    let out = eval_op(
        &OpKind::Gather,
        &Attrs::new(),
        &[Some(&shape), Some(&idx)],
        1,
    )
    .unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].shape(), &[] as &[usize]);
    assert_eq!(out[0].to_vec::<i64>().unwrap(), vec![128]);
    let cat = eval_op(
        &OpKind::Concat,
        &Attrs::new().with("axis", Attr::Int(0)),
        &[Some(&i64s(&[-1])), Some(&i64s(&[12, 32]))],
        1,
    )
    .unwrap();
    assert_eq!(cat[0].to_vec::<i64>().unwrap(), vec![-1, 12, 32]);
}

#[test]
fn returns_exactly_the_outputs_asked_for() {
    let x = Tensor::from_vec(vec![1, 1, 2, 2], vec![1.0f32, 4.0, 3.0, 2.0]).unwrap();
    let a = Attrs::new().with("kernel_shape", Attr::Ints(vec![2, 2]));
    let one = eval_op(&OpKind::MaxPool, &a, &[Some(&x)], 1).unwrap();
    assert_eq!(one.len(), 1);
    let two = eval_op(&OpKind::MaxPool, &a, &[Some(&x)], 2).unwrap();
    assert_eq!(two[1].dtype(), DType::I64);
    assert_eq!(two[1].to_vec::<i64>().unwrap(), vec![1]);
    let err = eval_op(&OpKind::Relu, &Attrs::new(), &[Some(&x)], 2).unwrap_err();
    assert!(err.to_string().contains("2 were asked for"), "{err}");
}

#[test]
fn optional_inputs_may_be_omitted() {
    let x = Tensor::from_vec(vec![3], vec![-2.0f32, 0.5, 2.0]).unwrap();
    let hi = Tensor::scalar(1.0f32);
    let out = eval_op(
        &OpKind::Clip,
        &Attrs::new(),
        &[Some(&x), None, Some(&hi)],
        1,
    )
    .unwrap();
    assert_eq!(out[0].to_vec::<f32>().unwrap(), vec![-2.0, 0.5, 1.0]);
}

#[test]
fn errors_name_the_op_and_can_name_the_node() {
    let x = Tensor::from_vec(vec![2], vec![1i32, 2]).unwrap();
    let zero = Tensor::from_vec(vec![1], vec![0i32]).unwrap();
    let err = eval_op(&OpKind::Div, &Attrs::new(), &[Some(&x), Some(&zero)], 1).unwrap_err();
    assert_eq!(err.to_string(), "op `div`: integer division by zero");
    let err = err.at_node("fold_me");
    assert_eq!(
        err.to_string(),
        "node `fold_me` (div): integer division by zero"
    );
    assert!(matches!(err, InterpError::Op { .. }));
    let err = eval_op(&OpKind::Add, &Attrs::new(), &[Some(&x)], 1).unwrap_err();
    assert!(err.to_string().contains("missing input 1"), "{err}");
    let custom = OpKind::Custom {
        domain: "acme".into(),
        name: "Frob".into(),
    };
    let err = eval_op(&custom, &Attrs::new(), &[Some(&x)], 1).unwrap_err();
    assert!(err.to_string().contains("acme.Frob"), "{err}");
}

#[test]
fn low_bit_tensors_pack_and_unpack() {
    // Three i4 values (-1, 7, -8) packed low nibble first, cast through Identity and Cast.
    let t = Tensor::from_bytes(DType::I4, vec![3], vec![0x7Fu8, 0x08].into()).unwrap();
    let same = eval_op(&OpKind::Identity, &Attrs::new(), &[Some(&t)], 1).unwrap();
    assert!(same[0].same_content(&t));
    let to_i8 = Attrs::new().with("to", Attr::Int(3));
    let wide = eval_op(&OpKind::Cast, &to_i8, &[Some(&t)], 1).unwrap();
    assert_eq!(wide[0].to_vec::<i8>().unwrap(), vec![-1, 7, -8]);
    let sliced = eval_op(
        &OpKind::Slice,
        &Attrs::new(),
        &[Some(&t), Some(&i64s(&[1])), Some(&i64s(&[3]))],
        1,
    )
    .unwrap();
    assert_eq!(sliced[0].dtype(), DType::I4);
    assert_eq!(sliced[0].bytes().as_ref(), &[0x87u8]);
}

#[test]
fn every_builtin_op_is_handled() {
    // No op falls through to a "not implemented" error on trivially valid input; each
    // either evaluates or complains about its inputs.
    let x = Tensor::from_vec(vec![1, 1, 2, 2], vec![1.0f32, 2.0, 3.0, 4.0]).unwrap();
    for op in OpKind::all() {
        if let Err(e) = eval_op(&op, &Attrs::new(), &[Some(&x)], 1) {
            let msg = e.to_string();
            assert!(
                !msg.contains("not implemented") && !msg.contains("not a "),
                "{op}: {msg}"
            );
        }
    }
}
