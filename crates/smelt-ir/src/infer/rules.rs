//! Per-op inference rules: the dispatcher, elementwise ops and casts. Shape-manipulating
//! ops live in `shape_ops`, neural-network ops and reductions in `nn`.

use crate::dtype::DType;
use crate::op::OpKind;
use crate::types::TensorType;

use super::util::{attrs, broadcast, input, num_outputs, opt_input, same_dtype, R};
use super::{
    attention, dtype_from_onnx_code, indexing, loss, nn, normalization, resize, shape_ops, InferCx,
};

/// Output types of the node in `cx`, one per output the op defines (for ops with
/// optional outputs, as many as the node declares).
pub(super) fn infer(cx: &InferCx) -> R<Vec<TensorType>> {
    use OpKind::*;
    let op = &cx.graph.node(cx.node).op;
    match op {
        Const => Err("constants are not inferred".into()),
        Custom { .. } => Err("no inference rule for custom op".into()),
        Identity => Ok(vec![input(cx, 0, "input")?.clone()]),
        Abs | Neg | Exp | Log | Sqrt | Reciprocal | Floor | Ceil | Round | Sign | Erf | Sin
        | Cos | Tan | Atan | Relu | LeakyRelu | Elu | Sigmoid | HardSigmoid | HardSwish | Tanh
        | Softplus | Gelu => Ok(vec![input(cx, 0, "X")?.clone()]),
        Not => {
            let x = input(cx, 0, "X")?;
            require_bool(x, "input 0 (X)")?;
            Ok(vec![x.clone()])
        }
        IsNaN | IsInf => {
            let x = input(cx, 0, "X")?;
            if !x.dtype.is_float() {
                return Err(format!("input 0 (X) must be a float tensor, got {x}"));
            }
            Ok(vec![TensorType {
                dtype: DType::Bool,
                shape: x.shape.clone(),
            }])
        }
        Clip => clip(cx),
        Cast => {
            let x = input(cx, 0, "input")?;
            let code = attrs(cx).int("to").ok_or("attribute `to` is missing")?;
            let dtype = dtype_from_onnx_code(code)
                .ok_or_else(|| format!("attribute `to` = {code} is not a known dtype code"))?;
            Ok(vec![TensorType {
                dtype,
                shape: x.shape.clone(),
            }])
        }
        CastLike => {
            let x = input(cx, 0, "input")?;
            let like = input(cx, 1, "target_type")?;
            Ok(vec![TensorType {
                dtype: like.dtype,
                shape: x.shape.clone(),
            }])
        }
        Add | Sub | Mul | Div | Mod => elementwise(cx, 2, None),
        Max | Min | Sum | Mean => {
            let n = cx.inputs.len();
            if n == 0 {
                return Err(format!("{op} needs at least one input"));
            }
            elementwise(cx, n, None)
        }
        Pow => pow(cx),
        And | Or | Xor => {
            for slot in 0..2 {
                require_bool(
                    input(cx, slot, if slot == 0 { "A" } else { "B" })?,
                    &format!("input {slot}"),
                )?;
            }
            elementwise(cx, 2, Some(DType::Bool))
        }
        Equal | Less | LessOrEqual | Greater | GreaterOrEqual => {
            elementwise(cx, 2, Some(DType::Bool))
        }
        PRelu => prelu(cx),
        Where => where_(cx),
        MatMul => nn::matmul(cx),
        Gemm => nn::gemm(cx),
        Conv => nn::conv(cx),
        MaxPool | AveragePool => nn::pool(cx, *op == MaxPool),
        GlobalAveragePool | GlobalMaxPool => nn::global_pool(cx),
        BatchNormalization => nn::batch_norm(cx),
        LayerNormalization => nn::layer_norm(cx),
        Softmax | LogSoftmax => nn::softmax(cx),
        Dropout => {
            let x = input(cx, 0, "data")?;
            let mut out = vec![x.clone()];
            if num_outputs(cx) > 1 {
                out.push(TensorType {
                    dtype: DType::Bool,
                    shape: x.shape.clone(),
                });
            }
            Ok(out)
        }
        ReduceSum | ReduceMean | ReduceMax | ReduceMin | ReduceProd | ReduceL1 | ReduceL2
        | ReduceSumSquare | ReduceLogSumExp => nn::reduce(cx),
        ArgMax | ArgMin => nn::arg_reduce(cx),
        Reshape => shape_ops::reshape(cx),
        Flatten => shape_ops::flatten(cx),
        Transpose => shape_ops::transpose(cx),
        Squeeze => shape_ops::squeeze(cx),
        Unsqueeze => shape_ops::unsqueeze(cx),
        Concat => shape_ops::concat(cx),
        Split => shape_ops::split(cx),
        Slice => shape_ops::slice(cx),
        Gather => shape_ops::gather(cx),
        Expand => shape_ops::expand(cx),
        Tile => shape_ops::tile(cx),
        Shape => shape_ops::shape(cx),
        Size => {
            input(cx, 0, "data")?;
            Ok(vec![TensorType::new(
                DType::I64,
                crate::shape::Shape::scalar(),
            )])
        }
        Range => shape_ops::range(cx),
        ConstantOfShape => shape_ops::constant_of_shape(cx),
        QuantizeLinear => nn::quantize(cx),
        Acos | Asin | Acosh | Asinh | Atanh | Cosh | Sinh | Selu | Celu | ThresholdedRelu
        | Shrink | Softsign | Mish | BitwiseNot | BitwiseAnd | BitwiseOr | BitwiseXor
        | BitShift | GatherElements | GatherND | ScatterElements | ScatterND | Trilu | TopK
        | CumSum | CumProd | OneHot | NonZero | Unique | Compress | ReverseSequence
        | DepthToSpace | SpaceToDepth | EyeLike | Pad | CenterCropPad | BitCast | Hardmax
        | Einsum | Det | HannWindow | HammingWindow | BlackmanWindow | DFT | STFT
        | MelWeightMatrix | NonMaxSuppression | StringConcat | StringSplit | StringNormalizer
        | ReduceLogSum | TfIdfVectorizer => indexing::infer(cx),
        DequantizeLinear => nn::dequantize(cx),
        Attention => attention::attention(cx),
        RotaryEmbedding => attention::rotary_embedding(cx),
        TensorScatter => attention::tensor_scatter(cx),
        LinearAttention => attention::linear_attention(cx),
        CausalConvWithState => attention::causal_conv_with_state(cx),
        RMSNormalization => normalization::rms_norm(cx),
        GroupNormalization => normalization::group_norm(cx),
        InstanceNormalization => normalization::instance_norm(cx),
        MeanVarianceNormalization => normalization::mean_variance_norm(cx),
        LpNormalization => normalization::lp_norm(cx),
        LRN => normalization::lrn(cx),
        Swish => normalization::swish(cx),
        SwiGLU => normalization::swiglu(cx),
        NegativeLogLikelihoodLoss => loss::loss(cx, false),
        SoftmaxCrossEntropyLoss => loss::loss(cx, true),
        Resize => resize::resize(cx),
        GridSample => resize::grid_sample(cx),
        AffineGrid => resize::affine_grid(cx),
        Rnn => super::rnn::recurrent(cx, 1),
        Gru => super::rnn::recurrent(cx, 3),
        Lstm => super::rnn::recurrent(cx, 4),
        ConvTranspose => super::spatial::conv_transpose(cx),
        LpPool => nn::pool(cx, false),
        Col2Im => super::spatial::col2im(cx),
        MaxUnpool => super::spatial::max_unpool(cx),
        DeformConv => super::spatial::deform_conv(cx),
        RoiAlign => super::spatial::roi_align(cx),
        MaxRoiPool => super::spatial::max_roi_pool(cx),
        MatMulInteger => super::qlinear::matmul_integer(cx),
        ConvInteger => super::qlinear::conv_integer(cx),
        QLinearMatMul => super::qlinear::qlinear_matmul(cx),
        QLinearConv => super::qlinear::qlinear_conv(cx),
        DynamicQuantizeLinear => super::qlinear::dynamic_quantize(cx),
    }
}

fn require_bool(t: &TensorType, what: &str) -> R<()> {
    if t.dtype == DType::Bool {
        Ok(())
    } else {
        Err(format!("{what} must be bool, got {t}"))
    }
}

/// Numpy-broadcasting op over the first `n` inputs, which must share a dtype; the
/// output has `out_dtype` or the inputs' dtype.
fn elementwise(cx: &InferCx, n: usize, out_dtype: Option<DType>) -> R<Vec<TensorType>> {
    let first = input(cx, 0, "A")?;
    let mut shapes = vec![&first.shape];
    for slot in 1..n {
        let t = input(cx, slot, if slot == 1 { "B" } else { "operand" })?;
        same_dtype(first, "input 0", t, &format!("input {slot}"))?;
        shapes.push(&t.shape);
    }
    let shape = broadcast(&shapes, "inputs")?;
    Ok(vec![TensorType {
        dtype: out_dtype.unwrap_or(first.dtype),
        shape,
    }])
}

/// `Pow`: the exponent may have another numeric dtype than the base.
fn pow(cx: &InferCx) -> R<Vec<TensorType>> {
    let x = input(cx, 0, "X")?;
    let y = input(cx, 1, "Y")?;
    let shape = broadcast(&[&x.shape, &y.shape], "inputs X and Y")?;
    Ok(vec![TensorType {
        dtype: x.dtype,
        shape,
    }])
}

/// `PRelu`: `slope` broadcasts onto `X` one way only, so the output has `X`'s rank.
fn prelu(cx: &InferCx) -> R<Vec<TensorType>> {
    let x = input(cx, 0, "X")?;
    let slope = input(cx, 1, "slope")?;
    same_dtype(x, "input 0 (X)", slope, "input 1 (slope)")?;
    if let (Some(xr), Some(sr)) = (x.rank(), slope.rank()) {
        if sr > xr {
            return Err(format!(
                "input 1 (slope) {slope} has a higher rank than input 0 (X) {x}"
            ));
        }
    }
    let shape = broadcast(&[&x.shape, &slope.shape], "inputs X and slope")?;
    // An unranked slope says nothing about X's shape.
    let shape = if slope.rank().is_none() {
        x.shape.clone()
    } else {
        shape
    };
    Ok(vec![TensorType {
        dtype: x.dtype,
        shape,
    }])
}

fn where_(cx: &InferCx) -> R<Vec<TensorType>> {
    let c = input(cx, 0, "condition")?;
    let x = input(cx, 1, "X")?;
    let y = input(cx, 2, "Y")?;
    require_bool(c, "input 0 (condition)")?;
    same_dtype(x, "input 1 (X)", y, "input 2 (Y)")?;
    let shape = broadcast(&[&c.shape, &x.shape, &y.shape], "inputs condition, X and Y")?;
    Ok(vec![TensorType {
        dtype: x.dtype,
        shape,
    }])
}

fn clip(cx: &InferCx) -> R<Vec<TensorType>> {
    let x = input(cx, 0, "input")?;
    for (slot, name) in [(1, "min"), (2, "max")] {
        if let Some(t) = opt_input(cx, slot) {
            same_dtype(x, "input 0 (input)", t, &format!("input {slot} ({name})"))?;
            if t.rank().is_some_and(|r| r > 1) {
                return Err(format!("input {slot} ({name}) must be a scalar, got {t}"));
            }
        }
    }
    Ok(vec![x.clone()])
}
