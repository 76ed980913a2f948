//! Rules for the integer and quantized linear ops: MatMulInteger, ConvInteger,
//! QLinearMatMul, QLinearConv and DynamicQuantizeLinear.

use crate::dtype::DType;
use crate::shape::{Dim, Shape};
use crate::types::TensorType;

use super::util::{attrs, broadcast, input, opt_input, unify_dim, R};
use super::InferCx;

fn one(t: TensorType) -> R<Vec<TensorType>> {
    Ok(vec![t])
}

/// Require an 8-bit integer input.
fn int8(t: &TensorType, what: &str) -> R<()> {
    if matches!(t.dtype, DType::U8 | DType::I8) {
        Ok(())
    } else {
        Err(format!("{what} must be u8 or i8, got {t}"))
    }
}

/// The numpy matmul shape of `a · b`.
fn matmul_shape(a: &TensorType, b: &TensorType) -> R<Shape> {
    let (Some(ad), Some(bd)) = (a.dims(), b.dims()) else {
        return Ok(Shape::unranked());
    };
    if ad.is_empty() || bd.is_empty() {
        return Err(format!("operands must have rank >= 1, got {a} and {b}"));
    }
    let a2: Vec<Dim> = if ad.len() == 1 {
        vec![Dim::Known(1), ad[0].clone()]
    } else {
        ad.to_vec()
    };
    let b2: Vec<Dim> = if bd.len() == 1 {
        vec![bd[0].clone(), Dim::Known(1)]
    } else {
        bd.to_vec()
    };
    let (ka, kb) = (&a2[a2.len() - 1], &b2[b2.len() - 2]);
    if unify_dim(ka, kb).is_none() {
        return Err(format!("inner dims {ka} and {kb} differ ({a} and {b})"));
    }
    let batch = broadcast(
        &[
            &Shape::new(a2[..a2.len() - 2].to_vec()),
            &Shape::new(b2[..b2.len() - 2].to_vec()),
        ],
        "batch dims",
    )?;
    let mut out = batch.dims().map(<[Dim]>::to_vec).unwrap_or_default();
    if ad.len() > 1 {
        out.push(a2[a2.len() - 2].clone());
    }
    if bd.len() > 1 {
        out.push(b2[b2.len() - 1].clone());
    }
    Ok(Shape::new(out))
}

/// The output shape of a convolution of `x` by `w` (`[M, C/group, k...]`).
fn conv_shape(cx: &InferCx, x: &TensorType, w: &TensorType) -> R<Shape> {
    let (Some(xd), Some(wd)) = (x.dims(), w.dims()) else {
        return Ok(Shape::unranked());
    };
    if xd.len() < 3 || wd.len() != xd.len() {
        return Err(format!(
            "x {x} and w {w} must both be [N, C, spatial...] of the same rank"
        ));
    }
    let n = xd.len() - 2;
    let at = attrs(cx);
    let get = |name: &str, len: usize, default: i64| -> R<Vec<i64>> {
        match at.ints(name) {
            None => Ok(vec![default; len]),
            Some(v) if v.len() == len && v.iter().all(|&x| x >= 0) => Ok(v.to_vec()),
            Some(v) => Err(format!(
                "attribute `{name}` {v:?} must have {len} non-negative entries"
            )),
        }
    };
    let strides = get("strides", n, 1)?;
    let dil = get("dilations", n, 1)?;
    let pads = get("pads", 2 * n, 0)?;
    if strides.contains(&0) || dil.contains(&0) {
        return Err("strides and dilations must be positive".into());
    }
    let auto_pad = at.str("auto_pad").unwrap_or("NOTSET");
    let mut out = vec![xd[0].clone(), wd[0].clone()];
    for i in 0..n {
        let (Dim::Known(d), Dim::Known(k)) = (&xd[i + 2], &wd[i + 2]) else {
            out.push(Dim::Unknown);
            continue;
        };
        // i128 keeps any i64 attribute and u64 dim from overflowing.
        let (d, k) = (i128::from(*d), i128::from(*k));
        let w = |v: &[i64], j: usize| i128::from(v[j]);
        let v = match auto_pad {
            "SAME_UPPER" | "SAME_LOWER" => (d + w(&strides, i) - 1) / w(&strides, i),
            _ => {
                let p = if auto_pad == "VALID" {
                    0
                } else {
                    w(&pads, i) + w(&pads, n + i)
                };
                let span = (k - 1) * w(&dil, i) + 1;
                if d + p < span {
                    return Err(format!(
                        "spatial axis {i}: input {d} (padded {}) is smaller than the kernel extent {span}",
                        d + p
                    ));
                }
                (d + p - span) / w(&strides, i) + 1
            }
        };
        out.push(Dim::Known(u64::try_from(v).map_err(|_| {
            format!("spatial axis {i}: output size {v} is too large")
        })?));
    }
    Ok(Shape::new(out))
}

/// `MatMulInteger`: i32 product of 8-bit operands.
pub(super) fn matmul_integer(cx: &InferCx) -> R<Vec<TensorType>> {
    let a = input(cx, 0, "A")?;
    let b = input(cx, 1, "B")?;
    int8(a, "input 0 (A)")?;
    int8(b, "input 1 (B)")?;
    one(TensorType {
        dtype: DType::I32,
        shape: matmul_shape(a, b)?,
    })
}

/// `ConvInteger`: i32 convolution of 8-bit operands.
pub(super) fn conv_integer(cx: &InferCx) -> R<Vec<TensorType>> {
    let x = input(cx, 0, "x")?;
    let w = input(cx, 1, "w")?;
    int8(x, "input 0 (x)")?;
    int8(w, "input 1 (w)")?;
    one(TensorType {
        dtype: DType::I32,
        shape: conv_shape(cx, x, w)?,
    })
}

/// The output dtype of QLinearMatMul / QLinearConv: the y zero point's, else `a`'s.
fn q_out(cx: &InferCx, a: &TensorType) -> R<DType> {
    let dt = opt_input(cx, 7).map_or(a.dtype, |z| z.dtype);
    if matches!(dt, DType::U8 | DType::I8) {
        Ok(dt)
    } else {
        Err(format!("input 7 (y_zero_point) must be u8 or i8, got {dt}"))
    }
}

/// `QLinearMatMul`: operands at inputs 0 and 3.
pub(super) fn qlinear_matmul(cx: &InferCx) -> R<Vec<TensorType>> {
    let a = input(cx, 0, "a")?;
    let b = input(cx, 3, "b")?;
    int8(a, "input 0 (a)")?;
    int8(b, "input 3 (b)")?;
    for (slot, name) in [(1, "a_scale"), (4, "b_scale"), (6, "y_scale")] {
        let s = input(cx, slot, name)?;
        if !s.dtype.is_float() {
            return Err(format!(
                "input {slot} ({name}) must be a float tensor, got {s}"
            ));
        }
    }
    one(TensorType {
        dtype: q_out(cx, a)?,
        shape: matmul_shape(a, b)?,
    })
}

/// `QLinearConv`: x at input 0, w at input 3.
pub(super) fn qlinear_conv(cx: &InferCx) -> R<Vec<TensorType>> {
    let x = input(cx, 0, "x")?;
    let w = input(cx, 3, "w")?;
    int8(x, "input 0 (x)")?;
    int8(w, "input 3 (w)")?;
    one(TensorType {
        dtype: q_out(cx, x)?,
        shape: conv_shape(cx, x, w)?,
    })
}

/// `DynamicQuantizeLinear`: u8 codes, an f32 scale and a u8 zero point (scalars).
pub(super) fn dynamic_quantize(cx: &InferCx) -> R<Vec<TensorType>> {
    let x = input(cx, 0, "x")?;
    if x.dtype != DType::F32 {
        return Err(format!("input 0 (x) must be f32, got {x}"));
    }
    Ok(vec![
        TensorType {
            dtype: DType::U8,
            shape: x.shape.clone(),
        },
        TensorType::new(DType::F32, Shape::scalar()),
        TensorType::new(DType::U8, Shape::scalar()),
    ])
}

#[cfg(test)]
mod tests {
    use crate::attr::Attrs;
    use crate::dtype::DType;
    use crate::graph::Graph;
    use crate::infer::infer_node;
    use crate::op::OpKind;
    use crate::shape::{Dim, Shape};
    use crate::types::TensorType;

    fn tt(dtype: DType, dims: &[u64]) -> TensorType {
        TensorType::new(
            dtype,
            Shape::new(dims.iter().map(|&d| Dim::Known(d)).collect()),
        )
    }

    fn run(op: OpKind, ins: &[Option<TensorType>]) -> Result<Vec<String>, String> {
        let mut g = Graph::new("t");
        let vals = ins
            .iter()
            .enumerate()
            .map(|(i, t)| t.as_ref().map(|t| g.add_input(&format!("i{i}"), t.clone())))
            .collect();
        let n = g
            .add_node(
                "n",
                op,
                Attrs::new(),
                vals,
                vec![("o".into(), TensorType::unranked(DType::F32))],
            )
            .unwrap();
        infer_node(&g, n)
            .map(|v| v.iter().map(|t| t.to_string()).collect())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn quantized_shapes() {
        let a = tt(DType::U8, &[2, 4, 3]);
        let b = tt(DType::U8, &[3, 5]);
        let s = tt(DType::F32, &[]);
        assert_eq!(
            run(OpKind::MatMulInteger, &[Some(a.clone()), Some(b.clone())]).unwrap(),
            ["i32[2, 4, 5]"]
        );
        let q = run(
            OpKind::QLinearMatMul,
            &[
                Some(a.clone()),
                Some(s.clone()),
                None,
                Some(b),
                Some(s.clone()),
                None,
                Some(s.clone()),
                Some(tt(DType::I8, &[])),
            ],
        )
        .unwrap();
        assert_eq!(q, ["i8[2, 4, 5]"]);
        let x = tt(DType::U8, &[1, 1, 5, 5]);
        let w = tt(DType::U8, &[2, 1, 3, 3]);
        assert_eq!(
            run(OpKind::ConvInteger, &[Some(x), Some(w)]).unwrap(),
            ["i32[1, 2, 3, 3]"]
        );
        let e = run(OpKind::MatMulInteger, &[Some(s.clone()), Some(s)]).unwrap_err();
        assert!(e.contains("u8 or i8"), "{e}");
    }
}
