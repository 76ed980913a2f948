//! Cost models for extraction.
//!
//! The default, [`Roofline`], estimates the time of each op on a described [`Target`]:
//! `max(FLOPs / peak, bytes moved / bandwidth)` (plus a tenth of the smaller term, for
//! imperfect overlap) plus a fixed launch overhead, with FLOPs
//! and bytes from the op, the operand types and the encoding of constant operands. A
//! fused op reads and writes its tensors once where its decomposed form moves every
//! intermediate, so it is cheaper than its parts; ops of equal size but different work
//! (a multiply by 8 and a shift) differ, unlike under a node count.

use egg::Id;
use smelt_ir::{DType, Dim, Encoding, OpKind, TensorType};

use crate::analysis::{ClassData, IrEGraph};
use crate::lang::IrLang;

/// Prices one e-node for extraction. Costs must be finite and non-negative; the extracted
/// term minimises the sum over its nodes.
pub trait CostModel: Send + Sync {
    /// A short name for reports.
    fn name(&self) -> &str;
    /// The cost of computing `node` (a member of `class`), excluding its operands.
    fn node_cost(&self, egraph: &IrEGraph, class: Id, node: &IrLang) -> f64;
}

/// A node count (egg's `AstSize`): every op costs 1. Useful in tests; it cannot tell a
/// fused op from an equally small but slower one.
#[derive(Debug, Clone, Copy, Default)]
pub struct NodeCount;

impl CostModel for NodeCount {
    fn name(&self) -> &str {
        "node-count"
    }
    fn node_cost(&self, _egraph: &IrEGraph, _class: Id, node: &IrLang) -> f64 {
        match node {
            IrLang::Op(..) => 1.0,
            _ => 0.0,
        }
    }
}

/// The machine the roofline estimate is for.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// Peak f32 throughput in GFLOP/s (16-bit floats count double, 8-bit ints four times).
    pub peak_gflops: f64,
    /// Memory bandwidth in GB/s.
    pub mem_gbps: f64,
    /// Fixed cost of running one op, in microseconds (kernel launch, loop setup).
    pub launch_us: f64,
    /// Size assumed for a symbolic or unknown dimension.
    pub symbolic_dim: u64,
}

impl Default for Target {
    /// A modest CPU core: 100 GFLOP/s, 20 GB/s, 1 µs per op, symbolic dims of 128.
    fn default() -> Self {
        Target {
            peak_gflops: 100.0,
            mem_gbps: 20.0,
            launch_us: 1.0,
            symbolic_dim: 128,
        }
    }
}

/// The analytic roofline cost model (the default).
#[derive(Debug, Clone, Default)]
pub struct Roofline {
    /// The target machine.
    pub target: Target,
}

impl Roofline {
    /// A roofline model for `target`.
    pub fn new(target: Target) -> Roofline {
        Roofline { target }
    }

    fn elems(&self, ty: &TensorType) -> f64 {
        match ty.dims() {
            None => self.target.symbolic_dim.pow(2) as f64,
            Some(dims) => dims
                .iter()
                .map(|d| match d {
                    Dim::Known(n) => *n as f64,
                    _ => self.target.symbolic_dim as f64,
                })
                .product(),
        }
    }

    /// Bytes of a class's value as stored (an encoded constant moves its stored bytes).
    fn bytes(&self, eg: &IrEGraph, d: &ClassData) -> f64 {
        if !d.encoding.is_plain() {
            if let Some(c) = d.constant.and_then(|c| eg.analysis.store().get(c)) {
                return c.stored_bytes() as f64;
            }
        }
        match &d.ty {
            Some(ty) => self.elems(ty) * f64::from(ty.dtype.bits().max(8)) / 8.0,
            None => d
                .outputs
                .iter()
                .map(|t| self.elems(t) * f64::from(t.dtype.bits().max(8)) / 8.0)
                .sum(),
        }
    }

    /// Seconds for `flops` operations of `dtype` (encoded weights compute in their codes).
    fn compute_s(&self, flops: f64, dtype: Option<DType>, encoding: &Encoding) -> f64 {
        let speedup = match (dtype, encoding) {
            (_, Encoding::BlockwiseInt { .. } | Encoding::Mx { .. } | Encoding::Float { .. }) => {
                2.0
            }
            (Some(DType::F16 | DType::BF16), _) => 2.0,
            (Some(DType::I8 | DType::U8), _) => 4.0,
            _ => 1.0,
        };
        flops / (self.target.peak_gflops * 1e9 * speedup)
    }
}

/// Ops that only reinterpret metadata: a view, no data moved.
fn is_view(op: &OpKind) -> bool {
    matches!(
        op,
        OpKind::Reshape
            | OpKind::Squeeze
            | OpKind::Unsqueeze
            | OpKind::Flatten
            | OpKind::Identity
            | OpKind::Shape
            | OpKind::Size
    )
}

/// FLOPs per output element of elementwise-like ops; transcendental functions cost more.
fn flops_per_elem(op: &OpKind) -> f64 {
    use OpKind::*;
    match op {
        Exp | Log | Erf | Tanh | Sigmoid | Sin | Cos | Tan | Atan | Softplus | Elu | Pow => 10.0,
        Sqrt | Reciprocal | Div | Mod => 4.0,
        Gelu => 12.0,
        HardSigmoid | HardSwish | LeakyRelu | PRelu | Clip => 2.0,
        LayerNormalization => 10.0,
        Softmax | LogSoftmax => 12.0,
        BatchNormalization => 2.0,
        _ => 1.0,
    }
}

impl CostModel for Roofline {
    fn name(&self) -> &str {
        "roofline"
    }

    fn node_cost(&self, eg: &IrEGraph, class: Id, node: &IrLang) -> f64 {
        let IrLang::Op(sym, children) = node else {
            return 0.0;
        };
        let op = sym.op();
        let d = &eg[class].data;
        // Work on constants alone is done once at compile time by fold-constants.
        if op.is_pure() && children.iter().all(|c| eg[*c].data.foldable) {
            return 1e-12;
        }
        if is_view(op) {
            return self.target.launch_us * 1e-8;
        }
        let out_elems = match &d.ty {
            Some(t) => self.elems(t),
            None => d.outputs.iter().map(|t| self.elems(t)).sum(),
        };
        let inputs: Vec<&ClassData> = children
            .iter()
            .map(|c| &eg[*c].data)
            .filter(|c| !c.absent)
            .collect();
        let in_bytes: f64 = inputs.iter().map(|c| self.bytes(eg, c)).sum();
        let bytes = in_bytes + self.bytes(eg, d);
        let first_in = inputs.first().and_then(|c| c.ty.as_ref());
        let flops = match op {
            OpKind::MatMul | OpKind::Gemm => {
                let k = first_in
                    .and_then(|t| t.dims())
                    .and_then(|dims| dims.last())
                    .map(|dm| dm.known().unwrap_or(self.target.symbolic_dim) as f64)
                    .unwrap_or(self.target.symbolic_dim as f64);
                2.0 * out_elems * k
            }
            OpKind::Conv => {
                let per_out = inputs
                    .get(1)
                    .and_then(|w| w.ty.as_ref())
                    .map(|w| {
                        self.elems(w)
                            / w.dims()
                                .and_then(|d| d.first())
                                .and_then(Dim::known)
                                .unwrap_or(1)
                                .max(1) as f64
                    })
                    .unwrap_or(1.0);
                2.0 * out_elems * per_out
            }
            OpKind::ReduceSum
            | OpKind::ReduceMean
            | OpKind::ReduceMax
            | OpKind::ReduceMin
            | OpKind::ReduceProd
            | OpKind::ReduceL1
            | OpKind::ReduceSumSquare => first_in.map(|t| self.elems(t)).unwrap_or(out_elems),
            OpKind::ReduceL2 | OpKind::ReduceLogSumExp => {
                10.0 * first_in.map(|t| self.elems(t)).unwrap_or(out_elems)
            }
            _ => flops_per_elem(op) * out_elems,
        };
        let weight_enc = inputs
            .get(1)
            .map(|c| &c.encoding)
            .unwrap_or(&Encoding::Plain);
        let compute = self.compute_s(flops, d.dtype(), weight_enc);
        let memory = bytes / (self.target.mem_gbps * 1e9);
        // Compute and memory traffic never overlap perfectly: a tenth of the smaller term
        // shows, which also separates ops that move the same bytes but do different work.
        compute.max(memory) + 0.1 * compute.min(memory) + self.target.launch_us * 1e-6
    }
}
