//! GELU, Softmax, LayerNorm and the residual stream on quantized values, written with
//! standard ops so the result runs in the interpreter, compiles, and exports to ONNX.
//!
//! - **GELU by table**: the input is quantized to int8 with calibrated blockwise scales
//!   along the last axis (s_b per block b), and the output is read from a 256-entry
//!   table per block, `T_b[c + 128] = gelu(c · s_b)`:
//!   `Gather(T, Cast<i64>(QuantizeLinear(x)) + 128 + 256·b(k))`. Inside the clipping
//!   range the error is at most `max|gelu'| · s_b / 2` (max|gelu'| ≈ 1.129): the
//!   table is exact at the grid points and the input moves by at most half a step.
//! - **Softmax by table**: `d = x − max(x)` (≤ 0) is quantized to uint8 with a fixed
//!   step `s = ln(2·255)/255` and zero point 255, `exp` is read from a 256-entry table
//!   `E[c] = exp((c − 255) · s)`, summed, divided, and the probabilities are quantized
//!   to uint8 with scale 1/255. The range needs no calibration: any `d` below
//!   `−ln(2·255)` gives a probability under half an output step (it rounds to 0) and is
//!   clipped to the table's last entry, whose own contribution is below the same
//!   bound. `exp` has relative error ≤ s/2 ≈ 1.2% per element before normalization;
//!   each output row sums to 1 within n/2 output steps.
//! - **LayerNorm**: its input (the residual sum) is quantized to int8 with calibrated
//!   blockwise scales; the statistics are computed on the dequantized codes.
//! - **Residual**: both inputs of every Add that feeds a LayerNormalization (the skip
//!   connection and the branch) are quantized likewise.

use smelt_ir::{
    Attr, Attrs, Constant, DType, Graph, IrResult, NodeId, OpKind, Shape, Tensor, TensorType,
    ValueId,
};

use crate::calibrate::Blocks;

/// The GELU input step count: int8 codes −128..=127.
const GELU_CODES: usize = 256;

/// The Softmax exponent range `ln(2 · 255)`: below it a probability rounds to 0 in the
/// uint8 output.
pub fn softmax_range() -> f32 {
    (2.0f32 * 255.0).ln()
}

/// Exact GELU (erf form).
pub fn gelu(x: f64) -> f64 {
    0.5 * x * (1.0 + erf(x / std::f64::consts::SQRT_2))
}

/// erf: its Maclaurin series for |x| < 3 (to about 1e-13), Abramowitz–Stegun 7.1.26
/// beyond (absolute error ≤ 1.5e-7 where erf is within 2.3e-5 of ±1).
fn erf(x: f64) -> f64 {
    let a = x.abs();
    let y = if a < 3.0 {
        let (mut sum, mut term, mut n) = (0.0, a, 0.0);
        while n < 200.0 {
            let add = term / (2.0 * n + 1.0);
            sum += add;
            if add.abs() < 1e-17 {
                break;
            }
            n += 1.0;
            term *= -a * a / n;
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    } else {
        let t = 1.0 / (1.0 + 0.327_591_1 * a);
        let poly = t
            * (0.254_829_592
                + t * (-0.284_496_736
                    + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
        1.0 - poly * (-a * a).exp()
    };
    y.copysign(x)
}

/// A GELU node to replace: its input, output and the uses of its output.
pub struct GeluSite {
    /// The Gelu node.
    pub node: NodeId,
    /// Its input.
    pub input: ValueId,
    /// Its input's blocks along the last axis.
    pub blocks: Blocks,
}

/// Every exact (`approximate="none"`) f32 Gelu whose input's last axis is known.
pub fn gelu_sites(
    g: &Graph,
    block: usize,
    keep: &dyn Fn(NodeId) -> bool,
) -> IrResult<Vec<GeluSite>> {
    let mut out = vec![];
    for n in g.topo_order()? {
        let node = g.node(n);
        if node.op != OpKind::Gelu || keep(n) {
            continue;
        }
        if node.attrs.str("approximate").unwrap_or("none") != "none" {
            continue;
        }
        let Some(Some(x)) = node.inputs.first().copied() else {
            continue;
        };
        if g.ty(x).dtype != DType::F32 {
            continue;
        }
        let Some(&smelt_ir::Dim::Known(k)) = g.ty(x).dims().and_then(|d| d.last()) else {
            continue;
        };
        let k = k as usize;
        out.push(GeluSite {
            node: n,
            input: x,
            blocks: Blocks {
                width: k,
                block: block.min(k).max(1),
            },
        });
    }
    Ok(out)
}

/// The table of a GELU site: block b's entries at `256·b .. 256·(b+1)`.
pub fn gelu_table(block_scales: &[f32]) -> Vec<f32> {
    let mut t = Vec::with_capacity(block_scales.len() * GELU_CODES);
    for &s in block_scales {
        for c in -128i32..=127 {
            t.push(gelu(f64::from(c) * f64::from(s)) as f32);
        }
    }
    t
}

/// Replaces the Gelu of `site` by its table form with per-block `block_scales`; returns
/// the new output.
pub fn replace_gelu(g: &mut Graph, site: &GeluSite, block_scales: &[f32]) -> IrResult<ValueId> {
    let x = site.input;
    let Blocks { width, block } = site.blocks;
    let out = g.node(site.node).outputs[0];
    let name = g.value(out).name.clone();
    let ty = g.ty(x).clone();
    let rank = ty.dims().map_or(0, |d| d.len());
    let scales: Vec<f32> = (0..width).map(|k| block_scales[k / block]).collect();
    let scale = g.add_const(
        &format!("{name}.lut_scale"),
        Constant::plain(Tensor::from_vec(vec![width], scales)?),
    );
    let zero = g.add_const(
        &format!("{name}.lut_zero"),
        Constant::plain(Tensor::from_vec(vec![width], vec![0i8; width])?),
    );
    let offsets: Vec<i64> = (0..width)
        .map(|k| 128 + (GELU_CODES * (k / block)) as i64)
        .collect();
    let offsets = g.add_const(
        &format!("{name}.lut_offsets"),
        Constant::plain(Tensor::from_vec(vec![width], offsets)?),
    );
    let table = gelu_table(block_scales);
    let table = g.add_const(
        &format!("{name}.lut"),
        Constant::plain(Tensor::from_vec(vec![table.len()], table)?),
    );
    let mut axis = Attrs::new();
    axis.set("axis", Attr::Int(rank as i64 - 1));
    let q = g.add_simple(
        OpKind::QuantizeLinear,
        axis,
        &[x, scale, zero],
        &format!("{name}.lut_q8"),
        TensorType::new(DType::I8, ty.shape.clone()),
    )?;
    let codes = cast_i64(g, q, &format!("{name}.lut_code"))?;
    let idx = g.add_simple(
        OpKind::Add,
        Attrs::new(),
        &[codes, offsets],
        &format!("{name}.lut_index"),
        TensorType::new(DType::I64, ty.shape.clone()),
    )?;
    let mut gather = Attrs::new();
    gather.set("axis", Attr::Int(0));
    let y = g.add_simple(
        OpKind::Gather,
        gather,
        &[table, idx],
        &format!("{name}.lut_gelu"),
        ty,
    )?;
    g.replace_all_uses(out, y);
    g.remove_node(site.node)?;
    Ok(y)
}

/// `Cast<i64>(v)`.
fn cast_i64(g: &mut Graph, v: ValueId, name: &str) -> IrResult<ValueId> {
    let mut attrs = Attrs::new();
    // ONNX's dtype code of int64.
    attrs.set("to", Attr::Int(7));
    let shape = g.ty(v).shape.clone();
    g.add_simple(
        OpKind::Cast,
        attrs,
        &[v],
        name,
        TensorType::new(DType::I64, shape),
    )
}

/// Every f32 Softmax over the last axis.
pub fn softmax_sites(g: &Graph, keep: &dyn Fn(NodeId) -> bool) -> IrResult<Vec<NodeId>> {
    let mut out = vec![];
    for n in g.topo_order()? {
        let node = g.node(n);
        if node.op != OpKind::Softmax || keep(n) {
            continue;
        }
        let Some(Some(x)) = node.inputs.first().copied() else {
            continue;
        };
        let Some(rank) = g.ty(x).dims().map(|d| d.len()) else {
            continue;
        };
        let axis = node.attrs.int_or("axis", -1);
        let last = axis == -1 || axis == rank as i64 - 1;
        if g.ty(x).dtype == DType::F32 && last && rank >= 1 {
            out.push(n);
        }
    }
    Ok(out)
}

/// The exp table of the Softmax form: `E[c] = exp((c − 255) · step)`.
pub fn exp_table(step: f32) -> Vec<f32> {
    (0..256)
        .map(|c| ((f64::from(c) - 255.0) * f64::from(step)).exp() as f32)
        .collect()
}

/// Replaces Softmax `node` by its table form (see the module docs); returns the new
/// output (the dequantized uint8 probabilities).
pub fn replace_softmax(g: &mut Graph, node: NodeId) -> IrResult<ValueId> {
    let x = g.node(node).inputs[0].ok_or_else(|| smelt_ir::IrError::Pass {
        pass: "blockwise-quant".into(),
        msg: "softmax without an input".into(),
    })?;
    let out = g.node(node).outputs[0];
    let name = g.value(out).name.clone();
    let ty = g.ty(x).clone();
    let mut row_shape = ty.dims().map(|d| d.to_vec()).unwrap_or_default();
    if let Some(last) = row_shape.last_mut() {
        *last = smelt_ir::Dim::Known(1);
    }
    let row_ty = TensorType::new(DType::F32, Shape::new(row_shape));
    let step = softmax_range() / 255.0;

    let c = |g: &mut Graph, suffix: &str, t: Tensor| {
        g.add_const(&format!("{name}.{suffix}"), Constant::plain(t))
    };
    let axes = c(g, "lut_axes", Tensor::from_vec(vec![1], vec![-1i64])?);
    let mut keep = Attrs::new();
    keep.set("keepdims", Attr::Int(1));
    let max = g.add_simple(
        OpKind::ReduceMax,
        keep.clone(),
        &[x, axes],
        &format!("{name}.lut_max"),
        row_ty.clone(),
    )?;
    let d = g.add_simple(
        OpKind::Sub,
        Attrs::new(),
        &[x, max],
        &format!("{name}.lut_shifted"),
        ty.clone(),
    )?;
    let step_v = c(g, "lut_step", Tensor::scalar(step));
    let zp = c(g, "lut_zero", Tensor::from_vec(vec![], vec![255u8])?);
    let q = g.add_simple(
        OpKind::QuantizeLinear,
        Attrs::new(),
        &[d, step_v, zp],
        &format!("{name}.lut_q8"),
        TensorType::new(DType::U8, ty.shape.clone()),
    )?;
    let codes = cast_i64(g, q, &format!("{name}.lut_code"))?;
    let table = c(g, "lut_exp", Tensor::from_vec(vec![256], exp_table(step))?);
    let mut gather = Attrs::new();
    gather.set("axis", Attr::Int(0));
    let e = g.add_simple(
        OpKind::Gather,
        gather,
        &[table, codes],
        &format!("{name}.lut_exp_x"),
        ty.clone(),
    )?;
    let sum = g.add_simple(
        OpKind::ReduceSum,
        keep,
        &[e, axes],
        &format!("{name}.lut_sum"),
        row_ty,
    )?;
    let p = g.add_simple(
        OpKind::Div,
        Attrs::new(),
        &[e, sum],
        &format!("{name}.lut_p"),
        ty.clone(),
    )?;
    let out_scale = c(g, "p_scale", Tensor::scalar(1.0f32 / 255.0));
    let out_zero = c(g, "p_zero", Tensor::from_vec(vec![], vec![0u8])?);
    let pq = g.add_simple(
        OpKind::QuantizeLinear,
        Attrs::new(),
        &[p, out_scale, out_zero],
        &format!("{name}.p_q8"),
        TensorType::new(DType::U8, ty.shape.clone()),
    )?;
    let y = g.add_simple(
        OpKind::DequantizeLinear,
        Attrs::new(),
        &[pq, out_scale, out_zero],
        &format!("{name}.p_dq"),
        ty,
    )?;
    g.replace_all_uses(out, y);
    g.remove_node(node)?;
    Ok(y)
}

/// Inputs of LayerNormalization nodes (`layernorm`) and of the Adds feeding them
/// (`residual`): `(value, uses)` with the uses to redirect, f32 with a known last axis.
pub fn stream_targets(
    g: &Graph,
    block: usize,
    layernorm: bool,
    residual: bool,
    keep: &dyn Fn(NodeId) -> bool,
) -> IrResult<Vec<crate::qdq::Target>> {
    let mut out: Vec<crate::qdq::Target> = vec![];
    let mut push = |g: &Graph, v: ValueId, use_: (NodeId, usize)| {
        if g.constant(v).is_some() || g.ty(v).dtype != DType::F32 {
            return;
        }
        let Some(&smelt_ir::Dim::Known(k)) = g.ty(v).dims().and_then(|d| d.last()) else {
            return;
        };
        let k = k as usize;
        match out.iter_mut().find(|(w, _, _)| *w == v) {
            Some((_, _, uses)) => {
                if !uses.contains(&use_) {
                    uses.push(use_)
                }
            }
            None => out.push((
                v,
                Blocks {
                    width: k,
                    block: block.min(k).max(1),
                },
                vec![use_],
            )),
        }
    };
    for n in g.topo_order()? {
        let node = g.node(n);
        if node.op != OpKind::LayerNormalization || keep(n) {
            continue;
        }
        let Some(Some(x)) = node.inputs.first().copied() else {
            continue;
        };
        if layernorm {
            push(g, x, (n, 0));
        }
        if residual {
            if let Some((add, _)) = g.producer(x) {
                if g.node(add).op == OpKind::Add && !keep(add) {
                    for (slot, v) in g.node(add).inputs.clone().into_iter().enumerate() {
                        if let Some(v) = v {
                            push(g, v, (add, slot));
                        }
                    }
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_and_gelu_match_known_values() {
        // erf(1) = 0.8427007929497149, erf(0.5) = 0.5204998778130465.
        assert!((erf(1.0) - 0.842_700_792_949_714_9).abs() < 1e-12);
        assert!((erf(0.5) - 0.520_499_877_813_046_5).abs() < 1e-12);
        assert!((erf(-2.0) + 0.995_322_265_018_952_7).abs() < 1e-12);
        assert!((erf(4.0) - 0.999_999_984_582_742_1).abs() < 2e-7);
        assert!((gelu(1.0) - 0.841_344_746_068_542_9).abs() < 1e-12);
    }

    #[test]
    fn lut_gelu_error_is_within_half_a_step_times_the_slope() {
        // max |gelu'| over the reals (at x ≈ 2.4).
        let slope = 1.129;
        for s in [0.01f32, 0.05, 0.1] {
            let table = gelu_table(&[s]);
            for i in -1270..=1270 {
                let x = f64::from(i) * f64::from(s) / 10.0;
                let code = (x / f64::from(s)).round().clamp(-128.0, 127.0) as i64;
                let y = f64::from(table[(code + 128) as usize]);
                let bound = slope * f64::from(s) / 2.0 + 1e-6 * (1.0 + x.abs());
                assert!(
                    (y - gelu(x)).abs() <= bound,
                    "s={s} x={x}: {y} vs {}",
                    gelu(x)
                );
            }
        }
    }

    #[test]
    fn exp_table_is_exact_at_the_grid_and_bounded_between() {
        let step = softmax_range() / 255.0;
        let t = exp_table(step);
        assert_eq!(t[255], 1.0);
        // Below the range, the last entry is under half an output step of 1/255.
        assert!(f64::from(t[0]) <= 0.5 / 255.0 + 1e-9, "{}", t[0]);
        for (c, &v) in t.iter().enumerate() {
            let want = ((c as f64 - 255.0) * f64::from(step)).exp();
            assert!((f64::from(v) - want).abs() <= 1e-7 * want.max(1e-30) + 1e-12);
        }
    }
}
