//! # The `blockwise-quant` pass
//!
//! Blockwise quantization of a transformer's weights without retraining: every MatMul
//! or Gemm weight and every embedding table (a Gather's table) becomes a constant with a
//! `BlockwiseInt` encoding — integer codes of 8 or 4 bits and one scale per block of
//! `block` consecutive elements along the reduction axis (the hidden axis for
//! embeddings), stored as f32, f16 or a power of two. Ops keep their meaning; the
//! interpreter decodes the encoding, and lowering decodes it inside the consuming kernel.
//!
//! Options (`blockwise-quant{weights=8,block=64,scale=f16,symmetric=true}`):
//! - `weights`: code bits, 8 or 4;
//! - `activations`: 0 (weights only) or 8: every matmul's activation inputs get a
//!   QuantizeLinear/DequantizeLinear pair with static int8 scales per block of the
//!   last axis, calibrated on the `--calib` samples;
//! - `block`: elements per scale block along the reduction axis;
//! - `scale`: `f32`, `f16` or `pow2` (requantization becomes a shift);
//! - `symmetric`: signed codes without zero points, or unsigned codes with a zero point
//!   per block;
//! - `search`: `mse` (default) clips each weight block's range to the ratio with the
//!   least squared error, `minmax` uses the block's extremes;
//! - `calibrate`: how activation ranges are chosen from the calibration data: `max`
//!   (default), `percentile` (99.99th) or `mse` ([`calibrate`]);
//! - `ops`: which families to quantize, `+`-separated: `matmul`, `embedding` and
//!   `conv` (weights; Conv weights in blocks along the input channels, Conv inputs
//!   per tensor with `activations`), `gelu` (table GELU), `softmax` (table exp, uint8 probabilities),
//!   `layernorm` (int8 LayerNorm inputs) and `residual` (int8 inputs of the residual
//!   Adds), see [`nonlinear`]; all but `softmax` need calibration data. `gelu` matches
//!   `Gelu` ops: run `simplify` (or `recognize`) first to fold the Erf form;
//! - `keep`: node-name patterns (`|`-separated, `*` matches any run of characters, a
//!   pattern without `*` matches anywhere in the name) whose nodes stay in f32:
//!   neither their weights nor their inputs are quantized;
//! - `w8`: node-name patterns whose weights get 8-bit codes when `weights=4`;
//! - `act_block`: elements per activation scale block (default: `block`);
//! - `gptq`: quantize MatMul weights with GPTQ ([`gptq`]; needs calibration data).
//!
//! //! Written only against `smelt-ir`'s public API, as any user's pass would be.

pub mod activations;
pub mod calibrate;
pub mod gptq;
pub mod nonlinear;
pub mod qdq;
pub mod quantize;

use std::collections::{HashMap, HashSet};

use smelt_ir::pass::{OptionKind, OptionSpec, PassOptions};
use smelt_ir::{
    Constant, DType, Encoding, Granularity, Graph, IrError, IrResult, NodeId, OpKind, Part, Pass,
    PassContext, PassRegistry, PassReport, ScaleKind, Tensor, ValueId,
};

use crate::calibrate::{observe_ranges, Blocks, RangeMethod};

use crate::quantize::{pow2_code, quantize, round_scale, stored_bytes, Quantized, ScaleFormat};

/// The pass and its options.
#[derive(Debug, Clone)]
pub struct BlockwiseQuant {
    /// Code bits for weights (8 or 4).
    pub weight_bits: u8,
    /// Elements per block along the reduction axis.
    pub block: usize,
    /// How scales are stored.
    pub scale: ScaleFormat,
    /// Signed codes without zero points (`true`) or unsigned codes with them.
    pub symmetric: bool,
    /// Quantize MatMul/Gemm weights.
    pub matmul: bool,
    /// Quantize Gather tables (embeddings).
    pub embedding: bool,
    /// Quantize Conv weights (and, with `activations`, their inputs per tensor).
    pub conv: bool,
    /// Choose each block's clipping by least squared error instead of its min/max.
    pub mse_search: bool,
    /// Quantize matmul activations to int8 with calibrated blockwise scales.
    pub activations: bool,
    /// Replace exact GELUs by calibrated 256-entry tables.
    pub gelu: bool,
    /// Replace last-axis Softmaxes by the table-exp form with uint8 output.
    pub softmax: bool,
    /// Quantize LayerNormalization inputs to int8.
    pub layernorm: bool,
    /// Quantize both inputs of the residual Adds feeding LayerNormalization to int8.
    pub residual: bool,
    /// How activation ranges are chosen from calibration data.
    pub range: RangeMethod,
    /// Node-name patterns left in f32.
    pub keep: Vec<String>,
    /// Node-name patterns whose weights get 8-bit codes.
    pub w8: Vec<String>,
    /// Quantize MatMul weights with GPTQ (needs calibration data).
    pub gptq: bool,
    /// Elements per scale block of activations along their last axis.
    pub act_block: usize,
}

impl Default for BlockwiseQuant {
    fn default() -> Self {
        BlockwiseQuant {
            weight_bits: 8,
            block: 64,
            scale: ScaleFormat::F16,
            symmetric: true,
            matmul: true,
            embedding: true,
            conv: false,
            mse_search: true,
            activations: false,
            gelu: false,
            softmax: false,
            layernorm: false,
            residual: false,
            range: RangeMethod::Max,
            keep: vec![],
            w8: vec![],
            gptq: false,
            act_block: 64,
        }
    }
}

/// Register `blockwise-quant` with its options.
pub fn register(reg: &mut PassRegistry) {
    reg.register(
        "blockwise-quant",
        "quantize MatMul/Gemm weights and embedding tables blockwise (BlockwiseInt encoding)",
        vec![
            OptionSpec {
                name: "weights",
                kind: OptionKind::Int { min: 4, max: 8 },
                default: Some("8"),
                help: "code bits for weights: 8 or 4",
            },
            OptionSpec {
                name: "activations",
                kind: OptionKind::Int { min: 0, max: 8 },
                default: Some("0"),
                help: "code bits for matmul activations: 0 (weights only) or 8 (calibrated blockwise int8 Q/DQ; needs --calib)",
            },
            OptionSpec {
                name: "block",
                kind: OptionKind::Int { min: 1, max: 1 << 20 },
                default: Some("64"),
                help: "elements per scale block along the reduction axis",
            },
            OptionSpec {
                name: "scale",
                kind: OptionKind::Enum(&["f32", "f16", "pow2"]),
                default: Some("f16"),
                help: "how scales are stored",
            },
            OptionSpec {
                name: "symmetric",
                kind: OptionKind::Bool,
                default: Some("true"),
                help: "signed codes without zero points (false: unsigned codes with a zero point per block)",
            },
            OptionSpec {
                name: "search",
                kind: OptionKind::Enum(&["mse", "minmax"]),
                default: Some("mse"),
                help: "per-block range: clipped for least squared error (mse) or the block's min/max",
            },
            OptionSpec {
                name: "calibrate",
                kind: OptionKind::Enum(&["max", "percentile", "mse"]),
                default: Some("max"),
                help: "activation ranges from calibration data: largest magnitude, 99.99th percentile, or least squared error",
            },
            OptionSpec {
                name: "ops",
                kind: OptionKind::Str,
                default: Some("matmul+embedding"),
                help: "families to quantize, `+`-separated: matmul, embedding, conv, gelu, softmax, layernorm, residual",
            },
            OptionSpec {
                name: "act_block",
                kind: OptionKind::Int { min: 0, max: 1 << 20 },
                default: Some("0"),
                help: "elements per activation scale block along the last axis (0: same as `block`)",
            },
            OptionSpec {
                name: "gptq",
                kind: OptionKind::Bool,
                default: Some("false"),
                help: "quantize MatMul weights with GPTQ: rounding errors compensated on later rows by the calibration activations' inverse Hessian (needs --calib)",
            },
            OptionSpec {
                name: "keep",
                kind: OptionKind::Str,
                default: Some(""),
                help: "node-name patterns (`|`-separated, `*` wildcard) left in f32",
            },
            OptionSpec {
                name: "w8",
                kind: OptionKind::Str,
                default: Some(""),
                help: "node-name patterns (`|`-separated, `*` wildcard) whose weights get 8-bit codes",
            },
        ],
        |o| Ok(Box::new(BlockwiseQuant::from_options(o)?)),
    );
}

fn option_error(msg: impl Into<String>) -> IrError {
    IrError::Pass {
        pass: "blockwise-quant".into(),
        msg: msg.into(),
    }
}

impl BlockwiseQuant {
    /// The pass configured from resolved pipeline options.
    pub fn from_options(o: &PassOptions) -> IrResult<BlockwiseQuant> {
        let bits = o.int("weights").unwrap_or(8);
        if bits != 8 && bits != 4 {
            return Err(option_error(format!(
                "weights={bits}: only 8 and 4 bits are supported"
            )));
        }
        let act = o.int("activations").unwrap_or(0);
        if act != 0 && act != 8 {
            return Err(option_error(format!(
                "activations={act}: activations are quantized to 8 bits (or 0: weights only)"
            )));
        }
        let scale = match o.get("scale").unwrap_or("f16") {
            "f32" => ScaleFormat::F32,
            "pow2" => ScaleFormat::Pow2,
            _ => ScaleFormat::F16,
        };
        let ops = o.get("ops").unwrap_or("matmul+embedding");
        let mut pass = BlockwiseQuant {
            weight_bits: bits as u8,
            block: o.int("block").unwrap_or(64).max(1) as usize,
            scale,
            symmetric: o.bool("symmetric").unwrap_or(true),
            matmul: false,
            embedding: false,
            mse_search: o.get("search").unwrap_or("mse") == "mse",
            activations: act == 8,
            range: RangeMethod::parse(o.get("calibrate").unwrap_or("max"))
                .ok_or_else(|| option_error("calibrate: expected max, percentile or mse"))?,
            keep: patterns(o.get("keep").unwrap_or("")),
            w8: patterns(o.get("w8").unwrap_or("")),
            gptq: o.bool("gptq").unwrap_or(false),
            act_block: match o.int("act_block").unwrap_or(0) {
                0 => o.int("block").unwrap_or(64).max(1) as usize,
                n => n as usize,
            },
            ..BlockwiseQuant::default()
        };
        pass.matmul = false;
        pass.embedding = false;
        for family in ops.split('+').filter(|f| !f.is_empty()) {
            match family {
                "matmul" => pass.matmul = true,
                "embedding" => pass.embedding = true,
                "conv" => pass.conv = true,
                "gelu" => pass.gelu = true,
                "softmax" => pass.softmax = true,
                "layernorm" => pass.layernorm = true,
                "residual" => pass.residual = true,
                other => {
                    return Err(option_error(format!(
                        "ops: unknown family `{other}` (known: matmul, embedding, conv, gelu, softmax, layernorm, residual)"
                    )))
                }
            }
        }
        Ok(pass)
    }

    /// The encoded constant for a plain f32 weight `[rows, cols]` quantized along `axis`.
    /// With `hessian` (GPTQ, axis 0 only) the codes minimise the layer's output error
    /// on the calibration activations instead of each weight's own rounding error.
    fn encode(
        &self,
        t: &Tensor,
        axis: usize,
        bits: u8,
        hessian: Option<&[f64]>,
    ) -> IrResult<(Constant, usize)> {
        if t.shape().len() != 2 {
            return self.encode_nd(t, axis, bits);
        }
        let [rows, cols] = t.shape() else {
            return Err(option_error("only 2-D weights are quantized"));
        };
        let (rows, cols) = (*rows, *cols);
        let values = t.to_vec::<f32>()?;
        let by_gptq = match hessian {
            Some(h) if axis == 0 && h.len() == rows * rows => gptq::gptq(
                &values,
                rows,
                cols,
                h,
                self.block,
                bits,
                self.symmetric,
                self.scale,
                self.mse_search,
            ),
            _ => None,
        };
        let q = match by_gptq {
            Some(q) => q,
            None => quantize(
                &values,
                rows,
                cols,
                axis,
                self.block,
                bits,
                self.symmetric,
                self.scale,
                self.mse_search,
            ),
        };
        let bytes = stored_bytes(&q, bits, self.scale);
        let encoding = Encoding::BlockwiseInt {
            bits,
            signed: self.symmetric,
            granularity: Granularity::Block {
                axis,
                size: self.block as u32,
            },
            scale: self.scale_kind(),
            zero_point: !self.symmetric,
        };
        let parts = self.parts(&q, vec![rows, cols], bits)?;
        Ok((
            Constant::encoded(DType::F32, vec![rows, cols], encoding, parts)?,
            bytes,
        ))
    }

    /// A weight of any rank, blocks along `axis`: each slice `[axis, inner]` for one
    /// index of the outer axes is quantized as a 2-D matrix with blocks along its rows,
    /// which lays the scales out as `[outer.., ⌈axis/block⌉, inner..]`, the encoding's
    /// scale shape.
    fn encode_nd(&self, t: &Tensor, axis: usize, bits: u8) -> IrResult<(Constant, usize)> {
        let shape = t.shape().to_vec();
        let Some(&along) = shape.get(axis) else {
            return Err(option_error(format!(
                "axis {axis} out of range for {shape:?}"
            )));
        };
        let outer: usize = shape[..axis].iter().product();
        let inner: usize = shape[axis + 1..].iter().product();
        let values = t.to_vec::<f32>()?;
        let mut q = Quantized {
            codes: vec![],
            scales: vec![],
            zero_points: (!self.symmetric).then(Vec::new),
            scale_shape: Granularity::Block {
                axis,
                size: self.block as u32,
            }
            .scale_shape(&shape),
        };
        for o in 0..outer {
            let slice = &values[o * along * inner..(o + 1) * along * inner];
            let part = quantize(
                slice,
                along,
                inner,
                0,
                self.block,
                bits,
                self.symmetric,
                self.scale,
                self.mse_search,
            );
            q.codes.extend(part.codes);
            q.scales.extend(part.scales);
            if let (Some(z), Some(pz)) = (q.zero_points.as_mut(), part.zero_points) {
                z.extend(pz);
            }
        }
        let bytes = stored_bytes(&q, bits, self.scale);
        let encoding = Encoding::BlockwiseInt {
            bits,
            signed: self.symmetric,
            granularity: Granularity::Block {
                axis,
                size: self.block as u32,
            },
            scale: self.scale_kind(),
            zero_point: !self.symmetric,
        };
        let parts = self.parts(&q, shape.clone(), bits)?;
        Ok((
            Constant::encoded(DType::F32, shape, encoding, parts)?,
            bytes,
        ))
    }

    fn scale_kind(&self) -> ScaleKind {
        match self.scale {
            ScaleFormat::F32 => ScaleKind::F32,
            ScaleFormat::F16 => ScaleKind::F16,
            ScaleFormat::Pow2 => ScaleKind::Pow2,
        }
    }

    fn code_tensor(&self, codes: &[i32], shape: Vec<usize>, bits: u8) -> IrResult<Tensor> {
        let dtype = Encoding::blockwise_code_dtype(bits, self.symmetric);
        let values: Vec<f64> = codes.iter().map(|&c| f64::from(c)).collect();
        Tensor::from_f64(dtype, shape, &values)
    }

    fn parts(&self, q: &Quantized, shape: Vec<usize>, bits: u8) -> IrResult<Vec<Part>> {
        let scales = match self.scale {
            ScaleFormat::F32 => Tensor::from_vec(q.scale_shape.clone(), q.scales.clone())?,
            ScaleFormat::F16 => Tensor::from_vec(
                q.scale_shape.clone(),
                q.scales.iter().map(|&s| half::f16::from_f32(s)).collect(),
            )?,
            ScaleFormat::Pow2 => Tensor::from_bytes(
                DType::E8M0,
                q.scale_shape.clone(),
                q.scales
                    .iter()
                    .map(|&s| pow2_code(s))
                    .collect::<Vec<u8>>()
                    .into(),
            )?,
        };
        let mut parts = vec![
            Part {
                name: "codes".into(),
                tensor: self.code_tensor(&q.codes, shape, bits)?,
            },
            Part {
                name: "scales".into(),
                tensor: scales,
            },
        ];
        if let Some(z) = &q.zero_points {
            parts.push(Part {
                name: "zero_points".into(),
                tensor: self.code_tensor(z, q.scale_shape.clone(), bits)?,
            });
        }
        Ok(parts)
    }
}

/// Which input of which node is a weight to quantize, and its reduction axis.
fn weight_slot(g: &Graph, node: smelt_ir::NodeId, pass: &BlockwiseQuant) -> Option<(usize, usize)> {
    let n = g.node(node);
    match n.op {
        OpKind::MatMul if pass.matmul => Some((1, 0)),
        OpKind::Gemm if pass.matmul => {
            let tb = n.attrs.int_or("transB", 0) != 0;
            Some((1, if tb { 1 } else { 0 }))
        }
        // An embedding table [vocab, hidden] gathered by row: blocks along the hidden axis.
        OpKind::Gather if pass.embedding && n.attrs.int_or("axis", 0) == 0 => Some((0, 1)),
        // A convolution weight [out, in/groups, k...]: blocks along the input channels.
        OpKind::Conv if pass.conv => Some((1, 1)),
        _ => None,
    }
}

impl Pass for BlockwiseQuant {
    fn name(&self) -> &str {
        "blockwise-quant"
    }

    fn run(&self, g: &mut Graph, cx: &mut PassContext) -> IrResult<PassReport> {
        let order = g.topo_order()?;
        let kept: HashSet<NodeId> = order
            .iter()
            .copied()
            .filter(|&n| matches_any(&self.keep, &g.node(n).name))
            .collect();
        let keep = |n: NodeId| kept.contains(&n);
        let hessians = if self.gptq {
            self.hessians(g, cx, &order, &keep)?
        } else {
            HashMap::new()
        };
        let mut done: HashMap<(ValueId, u8), ValueId> = HashMap::new();
        let mut originals: HashSet<ValueId> = HashSet::new();
        let (mut before, mut after, mut count) = (0usize, 0usize, 0usize);
        for &node in &order {
            if keep(node) {
                continue;
            }
            let Some((slot, axis)) = weight_slot(g, node, self) else {
                continue;
            };
            let Some(Some(w)) = g.node(node).inputs.get(slot).copied() else {
                continue;
            };
            let bits = if matches_any(&self.w8, &g.node(node).name) {
                8
            } else {
                self.weight_bits
            };
            if let Some(&q) = done.get(&(w, bits)) {
                g.set_input(node, slot, Some(q))?;
                continue;
            }
            let Some(t) = g.plain_constant(w).cloned() else {
                continue;
            };
            let rank_ok = match g.node(node).op {
                OpKind::Conv => t.shape().len() >= 3,
                _ => t.shape().len() == 2,
            };
            if t.dtype() != DType::F32 || !rank_ok {
                continue;
            }
            let hessian = match g.node(node).op {
                OpKind::MatMul => g
                    .node(node)
                    .inputs
                    .first()
                    .copied()
                    .flatten()
                    .and_then(|x| hessians.get(&x))
                    .map(Vec::as_slice),
                _ => None,
            };
            let (c, bytes) = self.encode(&t, axis, bits, hessian)?;
            let name = format!("{}.q", g.value(w).name);
            let q = g.add_const(&name, c);
            g.set_input(node, slot, Some(q))?;
            done.insert((w, bits), q);
            originals.insert(w);
            before += t.len() * 4;
            after += bytes;
            count += 1;
        }
        let families = self.quantize_activations(g, cx, &keep)?;
        // The f32 originals go once nothing reads them (the pass leaves no dead weights).
        for &w in &originals {
            if !g.is_used(w) {
                if let Some((producer, _)) = g.producer(w) {
                    g.remove_node(producer)?;
                }
            }
        }
        if count == 0 && families.is_empty() {
            return Ok(PassReport::unchanged());
        }
        let mut parts = vec![];
        if count > 0 {
            parts.push(format!(
                "{count} weights quantized to {} bits (block {}, {} scales): {before} -> {after} bytes ({:.2}x)",
                self.weight_bits,
                self.block,
                self.scale_kind().name(),
                before as f64 / after.max(1) as f64
            ));
        }
        parts.extend(families);
        let note = parts.join("; ");
        cx.note(note.clone());
        Ok(PassReport::changed(note))
    }
}

impl BlockwiseQuant {
    /// `Σ xᵀx` of the activation input of every MatMul whose weight will be quantized
    /// (by activation value, so Q, K and V share theirs).
    fn hessians(
        &self,
        g: &Graph,
        cx: &PassContext,
        order: &[NodeId],
        keep: &dyn Fn(NodeId) -> bool,
    ) -> IrResult<HashMap<ValueId, Vec<f64>>> {
        let mut widths = HashMap::new();
        for &node in order {
            let n = g.node(node);
            if n.op != OpKind::MatMul || keep(node) || !self.matmul {
                continue;
            }
            let (Some(Some(x)), Some(Some(w))) = (n.inputs.first(), n.inputs.get(1)) else {
                continue;
            };
            let Some(t) = g.plain_constant(*w) else {
                continue;
            };
            if t.dtype() == DType::F32 && t.shape().len() == 2 && g.constant(*x).is_none() {
                widths.insert(*x, t.shape()[0]);
            }
        }
        gptq::collect_hessians(g, cx, &widths)
    }

    /// The activation families: calibrate every value they quantize in one sweep over
    /// the calibration data, then insert the Q/DQ pairs and replace the nonlinearities
    /// (Q/DQ first, so a pair on a GELU or Softmax output ends up reading the
    /// replacement). Returns a note per family that changed something.
    fn quantize_activations(
        &self,
        g: &mut Graph,
        cx: &mut PassContext,
        keep: &dyn Fn(NodeId) -> bool,
    ) -> IrResult<Vec<String>> {
        let softmaxes = if self.softmax {
            nonlinear::softmax_sites(g, keep)?
        } else {
            vec![]
        };
        // Softmax outputs are already uint8 in the table form.
        let table_outputs: HashSet<ValueId> =
            softmaxes.iter().map(|&n| g.node(n).outputs[0]).collect();
        let mut pairs: Vec<crate::qdq::Target> = vec![];
        let mut add = |v: ValueId, b: Blocks, uses: Vec<(NodeId, usize)>| match pairs
            .iter_mut()
            .find(|(w, _, _)| *w == v)
        {
            Some((_, _, u)) => {
                for x in uses {
                    if !u.contains(&x) {
                        u.push(x);
                    }
                }
            }
            None => pairs.push((v, b, uses)),
        };
        let mut matmul_count = 0;
        if self.activations {
            for (v, b, uses) in activations::matmul_targets(g, self.act_block, self.conv, keep)? {
                if !table_outputs.contains(&v) {
                    matmul_count += 1;
                    add(v, b, uses);
                }
            }
        }
        // The residual stream carries a few outlier channels (hundreds of times the
        // others' magnitude) in every BERT-like model: a block scale would spend its
        // codes on them, so the stream is scaled per channel (its Q/DQ scales are per
        // channel anyway).
        let stream = nonlinear::stream_targets(g, 1, self.layernorm, self.residual, keep)?;
        let stream_count = stream.len();
        for (v, b, uses) in stream {
            add(v, b, uses);
        }
        let gelus = if self.gelu {
            nonlinear::gelu_sites(g, self.act_block, keep)?
        } else {
            vec![]
        };
        let mut wanted: HashMap<ValueId, Blocks> = pairs.iter().map(|(v, b, _)| (*v, *b)).collect();
        for site in &gelus {
            wanted.insert(site.input, site.blocks);
        }
        let ranges = observe_ranges(g, cx, "blockwise-quant", &wanted, self.range)?;
        for (v, b, uses) in &pairs {
            let r = ranges.get(v).map(Vec::as_slice).unwrap_or(&[]);
            qdq::insert_int8(g, *v, qdq::channel_scales(*b, r, self.scale), uses, "a")?;
        }
        for site in &gelus {
            let r = ranges.get(&site.input).map(Vec::as_slice).unwrap_or(&[]);
            let scales: Vec<f32> = (0..site.blocks.count())
                .map(|i| round_scale(r.get(i).copied().unwrap_or(0.0) / 127.0, self.scale))
                .collect();
            nonlinear::replace_gelu(g, site, &scales)?;
        }
        for &n in &softmaxes {
            nonlinear::replace_softmax(g, n)?;
        }
        let mut notes = vec![];
        if matmul_count > 0 {
            notes.push(format!("{matmul_count} matmul activations to int8"));
        }
        if stream_count > 0 {
            notes.push(format!("{stream_count} LayerNorm/residual inputs to int8"));
        }
        if !gelus.is_empty() {
            notes.push(format!("{} GELUs by table", gelus.len()));
        }
        if !softmaxes.is_empty() {
            notes.push(format!("{} Softmaxes by table", softmaxes.len()));
        }
        if !notes.is_empty() {
            let method = match self.range {
                RangeMethod::Max => "max",
                RangeMethod::Percentile(_) => "percentile",
                RangeMethod::Mse => "mse",
            };
            notes.push(format!(
                "activation block {}, ranges by {method}",
                self.act_block
            ));
        }
        Ok(notes)
    }
}

/// `|`-separated node-name patterns.
fn patterns(s: &str) -> Vec<String> {
    s.split('|')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(String::from)
        .collect()
}

/// Whether `name` matches any of `patterns` (see the `keep` option).
fn matches_any(patterns: &[String], name: &str) -> bool {
    patterns.iter().any(|p| glob(p, name))
}

/// `*` matches any run of characters; a pattern without `*` matches anywhere.
fn glob(pattern: &str, name: &str) -> bool {
    if !pattern.contains('*') {
        return name.contains(pattern);
    }
    let parts: Vec<&str> = pattern.split('*').collect();
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !name.starts_with(first) || name.len() < first.len() + last.len() || !name.ends_with(last) {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_node_names() {
        let name = "/encoder/layer.0/attention/self/query/MatMul";
        assert!(glob("attention", name));
        assert!(glob("/encoder/layer.0/*", name));
        assert!(glob("*query*MatMul", name));
        assert!(!glob("*key*", name));
        assert!(!glob("/decoder/*", name));
        assert!(glob("*", ""));
        assert!(!glob("a*a", "a"));
    }
}
