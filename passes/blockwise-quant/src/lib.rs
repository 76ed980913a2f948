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
//!   reduction axis, calibrated on the `--calib` samples (largest magnitude per block);
//! - `block`: elements per scale block along the reduction axis;
//! - `scale`: `f32`, `f16` or `pow2` (requantization becomes a shift);
//! - `symmetric`: signed codes without zero points, or unsigned codes with a zero point
//!   per block;
//! - `search`: `mse` (default) clips each block's range to the ratio with the least
//!   squared error, `minmax` uses the block's extremes;
//! - `ops`: which families to quantize, `+`-separated: `matmul`, `embedding`.
//!
//! Written only against `smelt-ir`'s public API, as any user's pass would be.

pub mod activations;
pub mod quantize;

use std::collections::HashMap;

use smelt_ir::pass::{OptionKind, OptionSpec, PassOptions};
use smelt_ir::{
    Constant, DType, Encoding, Granularity, Graph, IrError, IrResult, OpKind, Part, Pass,
    PassContext, PassRegistry, PassReport, ScaleKind, Tensor, ValueId,
};

use crate::quantize::{pow2_code, quantize, stored_bytes, Quantized, ScaleFormat};

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
    /// Choose each block's clipping by least squared error instead of its min/max.
    pub mse_search: bool,
    /// Quantize matmul activations to int8 with calibrated blockwise scales.
    pub activations: bool,
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
            mse_search: true,
            activations: false,
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
                name: "ops",
                kind: OptionKind::Str,
                default: Some("matmul+embedding"),
                help: "families to quantize, `+`-separated: matmul, embedding",
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
        };
        for family in ops.split('+').filter(|f| !f.is_empty()) {
            match family {
                "matmul" => pass.matmul = true,
                "embedding" => pass.embedding = true,
                other => {
                    return Err(option_error(format!(
                        "ops: unknown family `{other}` (known: matmul, embedding)"
                    )))
                }
            }
        }
        Ok(pass)
    }

    /// The encoded constant for a plain f32 weight `[rows, cols]` quantized along `axis`.
    fn encode(&self, t: &Tensor, axis: usize) -> IrResult<(Constant, usize)> {
        let [rows, cols] = t.shape() else {
            return Err(option_error("only 2-D weights are quantized"));
        };
        let (rows, cols) = (*rows, *cols);
        let values = t.to_vec::<f32>()?;
        let q = quantize(
            &values,
            rows,
            cols,
            axis,
            self.block,
            self.weight_bits,
            self.symmetric,
            self.scale,
            self.mse_search,
        );
        let bytes = stored_bytes(&q, self.weight_bits, self.scale);
        let encoding = Encoding::BlockwiseInt {
            bits: self.weight_bits,
            signed: self.symmetric,
            granularity: Granularity::Block {
                axis,
                size: self.block as u32,
            },
            scale: self.scale_kind(),
            zero_point: !self.symmetric,
        };
        let parts = self.parts(&q, vec![rows, cols])?;
        Ok((
            Constant::encoded(DType::F32, vec![rows, cols], encoding, parts)?,
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

    fn code_tensor(&self, codes: &[i32], shape: Vec<usize>) -> IrResult<Tensor> {
        let dtype = Encoding::blockwise_code_dtype(self.weight_bits, self.symmetric);
        let values: Vec<f64> = codes.iter().map(|&c| f64::from(c)).collect();
        Tensor::from_f64(dtype, shape, &values)
    }

    fn parts(&self, q: &Quantized, shape: Vec<usize>) -> IrResult<Vec<Part>> {
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
                tensor: self.code_tensor(&q.codes, shape)?,
            },
            Part {
                name: "scales".into(),
                tensor: scales,
            },
        ];
        if let Some(z) = &q.zero_points {
            parts.push(Part {
                name: "zero_points".into(),
                tensor: self.code_tensor(z, q.scale_shape.clone())?,
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
        _ => None,
    }
}

impl Pass for BlockwiseQuant {
    fn name(&self) -> &str {
        "blockwise-quant"
    }

    fn run(&self, g: &mut Graph, cx: &mut PassContext) -> IrResult<PassReport> {
        let order = g.topo_order()?;
        let mut done: HashMap<ValueId, ValueId> = HashMap::new();
        let (mut before, mut after, mut count) = (0usize, 0usize, 0usize);
        for node in order {
            let Some((slot, axis)) = weight_slot(g, node, self) else {
                continue;
            };
            let Some(Some(w)) = g.node(node).inputs.get(slot).copied() else {
                continue;
            };
            if let Some(&q) = done.get(&w) {
                g.set_input(node, slot, Some(q))?;
                continue;
            }
            let Some(t) = g.plain_constant(w).cloned() else {
                continue;
            };
            if t.dtype() != DType::F32 || t.shape().len() != 2 {
                continue;
            }
            let (c, bytes) = self.encode(&t, axis)?;
            let name = format!("{}.q", g.value(w).name);
            let q = g.add_const(&name, c);
            g.set_input(node, slot, Some(q))?;
            done.insert(w, q);
            before += t.len() * 4;
            after += bytes;
            count += 1;
        }
        let activations = if self.activations {
            crate::activations::quantize_activations(g, cx, self.block, self.scale)?
        } else {
            0
        };
        // The f32 originals go once nothing reads them (the pass leaves no dead weights).
        for &w in done.keys() {
            if !g.is_used(w) {
                if let Some((producer, _)) = g.producer(w) {
                    g.remove_node(producer)?;
                }
            }
        }
        if count == 0 && activations == 0 {
            return Ok(PassReport::unchanged());
        }
        let mut note = format!(
            "{count} weights quantized to {} bits (block {}, {} scales): {before} -> {after} bytes ({:.2}x)",
            self.weight_bits,
            self.block,
            self.scale_kind().name(),
            before as f64 / after.max(1) as f64
        );
        if self.activations {
            note.push_str(&format!(
                "; {activations} matmul activations quantized to int8 (calibrated, block {})",
                self.block
            ));
        }
        cx.note(note.clone());
        Ok(PassReport::changed(note))
    }
}
