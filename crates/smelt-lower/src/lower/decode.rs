//! Encoded constants read through their decoding: a blockwise-int8 weight stays 8-bit
//! in memory and every load of it becomes `(code - zero_point) · scale` inside the
//! consuming kernel (a matmul's inner loop, an elementwise chain), so compressed
//! weights are never expanded to f32 buffers.

use std::sync::Arc;

use smelt_ir::{
    ConstId, Constant, DType, Encoding, FloatFormat, Granularity, NodeId, ScaleKind, Tensor,
    ValueId,
};

use super::{index_for, node_err, strides, Lowering};
use crate::error::LowerError;
use crate::ir::*;

/// The buffers of an encoded constant and how to combine them.
#[derive(Debug, Clone)]
pub(crate) struct Decoded {
    /// Integer codes, in the logical shape.
    codes: BufferId,
    /// Scales as f32, in the granularity's scale shape.
    scales: BufferId,
    /// Zero points (the codes' dtype, scale shape), if any.
    zero_points: Option<BufferId>,
    granularity: Granularity,
    /// The logical shape.
    pub shape: Vec<Size>,
}

impl Lowering<'_> {
    /// Buffers for the parts of the encoded constant `out` (node `n`). Supported:
    /// `BlockwiseInt` with 8-bit codes and f32, f16 or power-of-two scales; anything
    /// else is refused with the node named.
    pub(super) fn add_decoded(
        &mut self,
        n: NodeId,
        out: ValueId,
        id: ConstId,
        c: &Arc<Constant>,
    ) -> Result<(), LowerError> {
        let g = self.graph;
        let Encoding::BlockwiseInt {
            bits,
            granularity,
            scale,
            zero_point,
            ..
        } = c.encoding()
        else {
            return Err(node_err(
                g,
                n,
                format!(
                    "constant with encoding {} (only plain and 8-bit blockwise constants are lowered yet)",
                    c.encoding()
                ),
            ));
        };
        if *bits != 8 {
            return Err(node_err(
                g,
                n,
                format!("{bits}-bit blockwise codes (only 8-bit codes are lowered yet)"),
            ));
        }
        let part = |name: &str| {
            c.part(name)
                .cloned()
                .ok_or_else(|| node_err(g, n, format!("encoded constant has no `{name}` part")))
        };
        let codes = part("codes")?;
        let scales = part("scales")?;
        let scales = match scale {
            ScaleKind::F32 => scales,
            ScaleKind::F16 => {
                let v = scales
                    .to_f64_vec()
                    .map_err(|e| node_err(g, n, e.to_string()))?;
                Tensor::from_f64(DType::F32, scales.shape().to_vec(), &v)
                    .map_err(|e| node_err(g, n, e.to_string()))?
            }
            ScaleKind::Pow2 => {
                let v: Vec<f64> = scales
                    .bytes()
                    .iter()
                    .map(|&b| f64::from(FloatFormat::E8M0.decode(b)))
                    .collect();
                Tensor::from_f64(DType::F32, scales.shape().to_vec(), &v)
                    .map_err(|e| node_err(g, n, e.to_string()))?
            }
        };
        let name = g.value(out).name.clone();
        let mut add = |suffix: &str, t: Tensor| -> BufferId {
            let id_buf = BufferId(self.program.buffers.len() as u32);
            self.program.buffers.push(Buffer {
                name: format!("{name}.{suffix}"),
                dtype: t.dtype(),
                shape: t.shape().iter().map(|&d| Size::known(d as u64)).collect(),
                kind: BufferKind::Constant {
                    id,
                    data: Arc::new(Constant::plain(t)),
                },
            });
            id_buf
        };
        let codes_buf = add("codes", codes);
        let scales_buf = add("scales", scales);
        let zp_buf = if *zero_point {
            Some(add("zero_points", part("zero_points")?))
        } else {
            None
        };
        let shape = c.shape().iter().map(|&d| Size::known(d as u64)).collect();
        self.decoded.insert(
            out,
            Decoded {
                codes: codes_buf,
                scales: scales_buf,
                zero_points: zp_buf,
                granularity: *granularity,
                shape,
            },
        );
        Ok(())
    }

    /// The shape of `v`, plain or encoded.
    pub(super) fn value_shape(&self, n: NodeId, v: ValueId) -> Result<Vec<Size>, LowerError> {
        if let Some(d) = self.decoded.get(&v) {
            return Ok(d.shape.clone());
        }
        let b = self.buf(n, v)?;
        Ok(self.program.buffer(b).shape.clone())
    }

    /// The element of `v` at `axes` (axis `j` addressed by `axes[j]`, `None`: index 0),
    /// decoding it in place when `v` is an encoded constant.
    pub(super) fn load_value(
        &self,
        n: NodeId,
        v: ValueId,
        axes: &[Option<Var>],
    ) -> Result<Expr, LowerError> {
        let Some(d) = self.decoded.get(&v) else {
            let b = self.buf(n, v)?;
            return Ok(Expr::Load(
                b,
                index_for(&self.program.buffer(b).shape, axes),
            ));
        };
        let code_dtype = self.program.buffer(d.codes).dtype;
        let code = Expr::Cast(
            DType::F32,
            Box::new(Expr::Load(d.codes, index_for(&d.shape, axes))),
        );
        let scale_shape = self.program.buffer(d.scales).shape.clone();
        let scale_index = match d.granularity {
            Granularity::Tensor => Index::default(),
            Granularity::Channel { axis } => Index::affine(
                axes.get(axis)
                    .copied()
                    .flatten()
                    .map(|v| (v, Size::known(1)))
                    .into_iter()
                    .collect(),
            ),
            Granularity::Block { axis, size } => {
                let st = strides(&scale_shape);
                let mut idx = Index::default();
                for (j, a) in axes.iter().enumerate() {
                    let Some(var) = a else { continue };
                    if j == axis {
                        // Block `k / size` of the reduction axis.
                        let block = Expr::binary(
                            BinaryOp::Div,
                            Expr::Var(*var),
                            Expr::lit(f64::from(size.max(1)), DType::I64),
                        );
                        idx.dynamic.push((block, st[j].clone()));
                    } else {
                        idx.terms.push((*var, st[j].clone()));
                    }
                }
                idx
            }
        };
        let centred = match d.zero_points {
            Some(zp) => {
                debug_assert_eq!(self.program.buffer(zp).dtype, code_dtype);
                Expr::binary(
                    BinaryOp::Sub,
                    code,
                    Expr::Cast(DType::F32, Box::new(Expr::Load(zp, scale_index.clone()))),
                )
            }
            None => code,
        };
        Ok(Expr::binary(
            BinaryOp::Mul,
            centred,
            Expr::Load(d.scales, scale_index),
        ))
    }
}
