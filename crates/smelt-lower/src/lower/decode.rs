//! Encoded constants read through their decoding: a blockwise-int8 weight stays 8-bit
//! in memory and every load of it becomes `(code - zero_point) · scale` inside the
//! consuming kernel (a matmul's inner loop, an elementwise chain), so compressed
//! weights are never expanded to f32 buffers.

use std::sync::Arc;

use smelt_ir::{
    ConstId, Constant, DType, Encoding, FloatFormat, Granularity, NodeId, ScaleKind, Tensor,
    ValueId,
};

use super::{node_err, strides, Lowering};
use crate::error::LowerError;
use crate::ir::*;

/// How one axis of a tensor is addressed in a load.
#[derive(Debug, Clone)]
pub(crate) enum Coord {
    /// By a loop variable.
    Var(Var),
    /// By an `i64` expression (a gathered index).
    Expr(Expr),
    /// Always 0 (a broadcast axis).
    Zero,
}

impl Coord {
    fn of(axis: Option<Var>) -> Coord {
        axis.map_or(Coord::Zero, Coord::Var)
    }

    /// The coordinate divided by `size` (the block it falls in).
    fn block(&self, size: u32) -> Coord {
        let div = |e: Expr| {
            Expr::binary(
                BinaryOp::Div,
                e,
                Expr::lit(f64::from(size.max(1)), DType::I64),
            )
        };
        match self {
            Coord::Var(v) => Coord::Expr(div(Expr::Var(*v))),
            Coord::Expr(e) => Coord::Expr(div(e.clone())),
            Coord::Zero => Coord::Zero,
        }
    }
}

/// The row-major index of `coords` into a tensor of `shape`.
fn index_at(shape: &[Size], coords: &[Coord]) -> Index {
    let st = strides(shape);
    let mut idx = Index::default();
    for (c, s) in coords.iter().zip(st) {
        match c {
            Coord::Var(v) => idx.terms.push((*v, s)),
            Coord::Expr(e) => idx.dynamic.push((e.clone(), s)),
            Coord::Zero => {}
        }
    }
    idx
}

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
        let coords: Vec<Coord> = axes.iter().map(|a| Coord::of(*a)).collect();
        self.load_value_at(n, v, &coords)
    }

    /// The element of `v` at `coords`, decoding it in place when `v` is an encoded
    /// constant: `(code − zero_point) · scale`, with the scale (and zero point) of the
    /// block the element falls in.
    pub(super) fn load_value_at(
        &self,
        n: NodeId,
        v: ValueId,
        coords: &[Coord],
    ) -> Result<Expr, LowerError> {
        let Some(d) = self.decoded.get(&v) else {
            let b = self.buf(n, v)?;
            return Ok(Expr::Load(
                b,
                index_at(&self.program.buffer(b).shape, coords),
            ));
        };
        let code = Expr::Cast(
            DType::F32,
            Box::new(Expr::Load(d.codes, index_at(&d.shape, coords))),
        );
        let scale_shape = self.program.buffer(d.scales).shape.clone();
        let scale_index = match d.granularity {
            Granularity::Tensor => Index::default(),
            Granularity::Channel { axis } => {
                let c = coords.get(axis).cloned().unwrap_or(Coord::Zero);
                index_at(&scale_shape, std::slice::from_ref(&c))
            }
            Granularity::Block { axis, size } => {
                let blocked: Vec<Coord> = coords
                    .iter()
                    .enumerate()
                    .map(|(j, c)| if j == axis { c.block(size) } else { c.clone() })
                    .collect();
                index_at(&scale_shape, &blocked)
            }
        };
        let centred = match d.zero_points {
            Some(zp) => Expr::binary(
                BinaryOp::Sub,
                code,
                Expr::Cast(DType::F32, Box::new(Expr::Load(zp, scale_index.clone()))),
            ),
            None => code,
        };
        Ok(Expr::binary(
            BinaryOp::Mul,
            centred,
            Expr::Load(d.scales, scale_index),
        ))
    }
}
