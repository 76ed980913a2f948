//! Op kernels and the dispatcher from [`OpKind`] to them.
//!
//! Kernels see [`Value`]s. Two wrappers keep them small: half floats (f16, bf16) are
//! widened to f32 before float computations and the results rounded back, and low-bit
//! codes are handed to data-movement ops as plain bytes and re-tagged afterwards.

pub(crate) mod attention;
pub(crate) mod binary;
pub(crate) mod broadcast;
pub(crate) mod cast;
pub(crate) mod conv;
pub(crate) mod elementwise_extra;
pub(crate) mod indexing;
pub(crate) mod linalg;
pub(crate) mod logic;
pub(crate) mod loss;
pub(crate) mod norm;
pub(crate) mod normalization;
pub(crate) mod pool;
pub(crate) mod qlinear;
pub(crate) mod quant;
pub(crate) mod reduce;
pub(crate) mod resize;
pub(crate) mod rnn;
pub(crate) mod shape;
pub(crate) mod signal;
pub(crate) mod slicing;
pub(crate) mod spatial;
pub(crate) mod unary;

#[cfg(test)]
pub(crate) mod testutil;

use smelt_ir::{Attrs, DType, OpKind};

use crate::error::{bail, OpResult};
use crate::value::Value;

/// The most elements an op may create from sizes it reads out of its inputs
/// (ConstantOfShape, Expand, Tile, Range, Reshape targets): a bad shape tensor is an
/// error, not an attempt to allocate the impossible.
pub(crate) const MAX_ELEMENTS: usize = 1 << 32;

/// The element count of `shape`, or an error if it overflows or exceeds
/// [`MAX_ELEMENTS`].
pub(crate) fn checked_len(shape: &[usize]) -> OpResult<usize> {
    match shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)) {
        Some(n) if n <= MAX_ELEMENTS => Ok(n),
        _ => bail!("shape {shape:?} has too many elements (the limit is {MAX_ELEMENTS})"),
    }
}

/// Input `i`, which the op requires.
pub(crate) fn input<'a>(inputs: &[Option<&'a Value>], i: usize, name: &str) -> OpResult<&'a Value> {
    match inputs.get(i).copied().flatten() {
        Some(v) => Ok(v),
        None => bail!("missing input {i} ({name})"),
    }
}

/// Input `i` if given.
pub(crate) fn opt_input<'a>(inputs: &[Option<&'a Value>], i: usize) -> Option<&'a Value> {
    inputs.get(i).copied().flatten()
}

/// An axis in `[-rank, rank)` as an index.
pub(crate) fn norm_axis(axis: i64, rank: usize) -> OpResult<usize> {
    let r = rank as i64;
    if axis < -r || axis >= r {
        bail!("axis {axis} is out of range for rank {rank}");
    }
    Ok(if axis < 0 { axis + r } else { axis } as usize)
}

/// Several axes, normalised and checked for repeats (kept in the given order).
pub(crate) fn norm_axes(axes: &[i64], rank: usize) -> OpResult<Vec<usize>> {
    let mut out = Vec::with_capacity(axes.len());
    for &a in axes {
        let n = norm_axis(a, rank)?;
        if out.contains(&n) {
            bail!("axis {a} is repeated in {axes:?}");
        }
        out.push(n);
    }
    Ok(out)
}

/// The axes of ops that take them as an input in the newest opsets (Reduce*, Squeeze,
/// Unsqueeze), falling back to the attribute older opsets used.
pub(crate) fn axes_input(
    inputs: &[Option<&Value>],
    slot: usize,
    attrs: &Attrs,
) -> OpResult<Option<Vec<i64>>> {
    match opt_input(inputs, slot) {
        Some(v) => Ok(Some(v.to_i64_vec("axes")?)),
        None => Ok(attrs.ints("axes").map(<[i64]>::to_vec)),
    }
}

/// Run a float computation with f16/bf16 inputs widened to f32; the first `narrow`
/// outputs that come back as f32 are rounded to the half type again.
fn via_f32(
    inputs: &[Option<&Value>],
    narrow: usize,
    f: impl FnOnce(&[Option<&Value>]) -> OpResult<Vec<Value>>,
) -> OpResult<Vec<Value>> {
    let half = inputs.iter().flatten().find_map(|v| match v {
        Value::F16(_) => Some(DType::F16),
        Value::BF16(_) => Some(DType::BF16),
        _ => None,
    });
    let Some(half) = half else { return f(inputs) };
    let wide: Vec<Option<Value>> = inputs
        .iter()
        .map(|v| v.and_then(Value::widen_half))
        .collect();
    let args: Vec<Option<&Value>> = inputs
        .iter()
        .zip(&wide)
        .map(|(v, w)| w.as_ref().or(*v))
        .collect();
    let outs = f(&args)?;
    Ok(outs
        .into_iter()
        .enumerate()
        .map(|(i, o)| match o {
            Value::F32(a) if i < narrow => Value::narrow_f32(a, half),
            other => other,
        })
        .collect())
}

/// Run a data-movement op with low-bit codes presented as `u8` and re-tagged after.
fn with_codes(
    inputs: &[Option<&Value>],
    f: impl FnOnce(&[Option<&Value>]) -> OpResult<Vec<Value>>,
) -> OpResult<Vec<Value>> {
    let packed = inputs.iter().flatten().find_map(|v| match v {
        Value::Packed { dtype, .. } => Some(*dtype),
        _ => None,
    });
    let Some(dtype) = packed else {
        return f(inputs);
    };
    let mut bytes: Vec<Option<Value>> = Vec::with_capacity(inputs.len());
    for v in inputs {
        bytes.push(match v {
            Some(Value::Packed { dtype: d, codes }) if *d == dtype => {
                Some(Value::U8(codes.clone()))
            }
            Some(Value::Packed { dtype: d, .. }) => bail!("inputs mix {dtype} and {d}"),
            _ => None,
        });
    }
    let args: Vec<Option<&Value>> = inputs
        .iter()
        .zip(&bytes)
        .map(|(v, b)| b.as_ref().or(*v))
        .collect();
    Ok(f(&args)?
        .into_iter()
        .map(|o| match o {
            Value::U8(codes) => Value::Packed { dtype, codes },
            other => other,
        })
        .collect())
}

/// Evaluate `op` on `inputs`, producing (at least) `num_outputs` outputs.
pub(crate) fn eval(
    op: &OpKind,
    attrs: &Attrs,
    inputs: &[Option<&Value>],
    num_outputs: usize,
) -> OpResult<Vec<Value>> {
    use OpKind as K;
    let one = |v: OpResult<Value>| v.map(|v| vec![v]);
    let all = usize::MAX;
    match op {
        K::Const => {
            bail!("const nodes have no inputs to evaluate; their value is in the weight store")
        }
        K::Custom { domain, name } => bail!("custom op {domain}.{name} cannot be interpreted"),
        K::Identity => one(input(inputs, 0, "input").cloned()),
        K::Dropout => with_codes(inputs, |i| shape::dropout(i, num_outputs)),
        K::Reshape => with_codes(inputs, |i| one(shape::reshape(i, attrs))),
        K::Flatten => with_codes(inputs, |i| one(shape::flatten(i, attrs))),
        K::Transpose => with_codes(inputs, |i| one(shape::transpose(i, attrs))),
        K::Squeeze => with_codes(inputs, |i| one(shape::squeeze(i, attrs))),
        K::Unsqueeze => with_codes(inputs, |i| one(shape::unsqueeze(i, attrs))),
        K::Expand => with_codes(inputs, |i| one(shape::expand(i))),
        K::Tile => with_codes(inputs, |i| one(shape::tile(i))),
        K::Concat => with_codes(inputs, |i| one(slicing::concat(i, attrs))),
        K::Split => with_codes(inputs, |i| slicing::split(i, attrs, num_outputs)),
        K::Slice => with_codes(inputs, |i| one(slicing::slice(i))),
        K::Gather => with_codes(inputs, |i| one(slicing::gather(i, attrs))),
        K::Where => with_codes(inputs, |i| one(logic::eval(op, attrs, i))),
        K::Shape => one(shape::shape_of(inputs, attrs)),
        K::Size => one(shape::size(inputs)),
        K::Range => shape::check_range_stash(inputs, attrs)
            .and_then(|()| via_f32(inputs, all, |i| one(shape::range(i)))),
        K::ConstantOfShape => one(shape::constant_of_shape(inputs, attrs)),
        K::Cast | K::CastLike => one(cast::eval(op, attrs, inputs)),
        K::QuantizeLinear => {
            let attrs = &quant::default_precision(attrs, inputs);
            via_f32(inputs, all, |i| one(quant::quantize(attrs, i)))
        }
        K::DequantizeLinear => via_f32(inputs, all, |i| one(quant::dequantize(attrs, i))),
        K::Abs
        | K::Neg
        | K::Exp
        | K::Log
        | K::Sqrt
        | K::Reciprocal
        | K::Floor
        | K::Ceil
        | K::Round
        | K::Sign
        | K::Erf
        | K::Sin
        | K::Cos
        | K::Tan
        | K::Atan
        | K::Relu
        | K::LeakyRelu
        | K::Elu
        | K::Sigmoid
        | K::HardSigmoid
        | K::HardSwish
        | K::Tanh
        | K::Softplus
        | K::Gelu
        | K::Clip => via_f32(inputs, all, |i| one(unary::eval(op, attrs, i))),
        K::Not
        | K::IsNaN
        | K::IsInf
        | K::And
        | K::Or
        | K::Xor
        | K::Equal
        | K::Less
        | K::LessOrEqual
        | K::Greater
        | K::GreaterOrEqual => via_f32(inputs, all, |i| one(logic::eval(op, attrs, i))),
        K::Add
        | K::Sub
        | K::Mul
        | K::Div
        | K::Pow
        | K::Mod
        | K::Max
        | K::Min
        | K::Sum
        | K::Mean
        | K::PRelu => via_f32(inputs, all, |i| one(binary::eval(op, attrs, i))),
        K::MatMul => via_f32(inputs, all, |i| one(linalg::matmul(i))),
        K::Gemm => via_f32(inputs, all, |i| one(linalg::gemm_op(i, attrs))),
        K::Conv => via_f32(inputs, all, |i| one(conv::conv(i, attrs))),
        K::MaxPool | K::AveragePool | K::GlobalAveragePool | K::GlobalMaxPool => {
            via_f32(inputs, all, |i| pool::eval(op, attrs, i, num_outputs))
        }
        K::BatchNormalization if attrs.int_or("training_mode", 0) != 0 => {
            normalization::batch_norm_training(attrs, inputs, num_outputs)
        }
        K::BatchNormalization => via_f32(inputs, all, |i| one(norm::batch_norm(attrs, i))),
        // Mean and InvStdDev stay f32 for half inputs (the stash type).
        K::LayerNormalization => via_f32(inputs, 1, |i| norm::layer_norm(attrs, i, num_outputs)),
        K::Softmax | K::LogSoftmax => via_f32(inputs, all, |i| one(norm::softmax(op, attrs, i))),
        K::ReduceSum
        | K::ReduceMean
        | K::ReduceMax
        | K::ReduceMin
        | K::ReduceProd
        | K::ReduceL1
        | K::ReduceL2
        | K::ReduceSumSquare
        | K::ReduceLogSumExp => via_f32(inputs, all, |i| one(reduce::reduce(op, attrs, i))),
        K::ArgMax | K::ArgMin => via_f32(inputs, all, |i| one(reduce::arg(op, attrs, i))),
        K::Acos
        | K::Asin
        | K::Acosh
        | K::Asinh
        | K::Atanh
        | K::Cosh
        | K::Sinh
        | K::Selu
        | K::Celu
        | K::ThresholdedRelu
        | K::Shrink
        | K::Softsign
        | K::Mish
        | K::BitwiseNot
        | K::BitwiseAnd
        | K::BitwiseOr
        | K::BitwiseXor
        | K::BitShift
        | K::Hardmax
        | K::Einsum
        | K::Det
        | K::StringConcat
        | K::StringSplit
        | K::StringNormalizer
        | K::ReduceLogSum
        | K::TfIdfVectorizer => elementwise_extra::eval(op, attrs, inputs),
        K::HannWindow
        | K::HammingWindow
        | K::BlackmanWindow
        | K::DFT
        | K::STFT
        | K::MelWeightMatrix => signal::eval(op, attrs, inputs),
        K::GatherElements
        | K::GatherND
        | K::ScatterElements
        | K::ScatterND
        | K::Trilu
        | K::TopK
        | K::CumSum
        | K::CumProd
        | K::OneHot
        | K::NonZero
        | K::Unique
        | K::Compress
        | K::ReverseSequence
        | K::DepthToSpace
        | K::SpaceToDepth
        | K::EyeLike
        | K::Pad
        | K::CenterCropPad
        | K::BitCast
        | K::NonMaxSuppression => indexing::eval(op, attrs, inputs, num_outputs),
        // The attention and normalization kernels compute in f64 for every float type.
        K::Attention => attention::attention(attrs, inputs, num_outputs),
        K::RotaryEmbedding => one(attention::rotary_embedding(attrs, inputs)),
        K::TensorScatter => with_codes(inputs, |i| one(attention::tensor_scatter(attrs, i))),
        K::LinearAttention => attention::linear_attention(attrs, inputs),
        K::CausalConvWithState => attention::causal_conv_with_state(attrs, inputs),
        K::RMSNormalization => one(normalization::rms_norm(attrs, inputs)),
        K::GroupNormalization => one(normalization::group_norm(attrs, inputs)),
        K::InstanceNormalization => one(normalization::instance_norm(attrs, inputs)),
        K::MeanVarianceNormalization => one(normalization::mean_variance_norm(attrs, inputs)),
        K::LpNormalization => one(normalization::lp_norm(attrs, inputs)),
        K::LRN => one(normalization::lrn(attrs, inputs)),
        K::Swish => one(normalization::swish(attrs, inputs)),
        K::SwiGLU => one(normalization::swiglu(attrs, inputs)),
        K::NegativeLogLikelihoodLoss => via_f32(inputs, all, |i| loss::loss(attrs, i, false, 1)),
        K::SoftmaxCrossEntropyLoss => {
            via_f32(inputs, all, |i| loss::loss(attrs, i, true, num_outputs))
        }
        K::Resize => one(resize::resize(attrs, inputs)),
        K::GridSample => one(resize::grid_sample(attrs, inputs)),
        K::AffineGrid => one(resize::affine_grid(attrs, inputs)),
        K::Rnn | K::Gru | K::Lstm => via_f32(inputs, all, |i| rnn::eval(op, attrs, i)),
        K::ConvTranspose => via_f32(inputs, all, |i| one(spatial::conv_transpose(attrs, i))),
        K::LpPool => via_f32(inputs, all, |i| one(spatial::lp_pool(attrs, i))),
        K::Col2Im => via_f32(inputs, all, |i| one(spatial::col2im(attrs, i))),
        K::MaxUnpool => via_f32(inputs, all, |i| one(spatial::max_unpool(attrs, i))),
        K::DeformConv => via_f32(inputs, all, |i| one(spatial::deform_conv(attrs, i))),
        K::RoiAlign => via_f32(inputs, all, |i| one(spatial::roi_align(attrs, i))),
        K::MaxRoiPool => via_f32(inputs, all, |i| one(spatial::max_roi_pool(attrs, i))),
        K::MatMulInteger => one(qlinear::matmul_integer(inputs)),
        K::ConvInteger => one(qlinear::conv_integer(attrs, inputs)),
        K::QLinearMatMul => one(qlinear::qlinear_matmul(inputs)),
        K::QLinearConv => one(qlinear::qlinear_conv(attrs, inputs)),
        K::DynamicQuantizeLinear => qlinear::dynamic_quantize(inputs),
    }
}
