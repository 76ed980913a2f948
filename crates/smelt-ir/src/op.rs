//! The op catalogue: every operation the IR knows.
//!
//! Ops keep ONNX semantics (attribute names and defaults follow the ONNX operator
//! documentation at the newest opset smelt supports) so that import and export are
//! mechanical. `Const` is smelt's own: a node producing a constant from the weight store.

use std::fmt;

macro_rules! ops {
    ($($variant:ident => $onnx:literal, $text:literal;)*) => {
        /// The kind of a node's operation.
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum OpKind {
            $(
                #[doc = concat!("ONNX `", $onnx, "` (text: `", $text, "`).")]
                $variant,
            )*
            /// An op defined outside smelt (a user's own pass), by domain and name.
            Custom { domain: String, name: String },
        }

        const CATALOGUE: &[(OpKind, &str, &str)] = &[
            $((OpKind::$variant, $onnx, $text),)*
        ];
    };
}

ops! {
    Const => "Constant", "const";
    Identity => "Identity", "identity";
    // Elementwise unary
    Abs => "Abs", "abs";
    Neg => "Neg", "neg";
    Exp => "Exp", "exp";
    Log => "Log", "log";
    Sqrt => "Sqrt", "sqrt";
    Reciprocal => "Reciprocal", "reciprocal";
    Floor => "Floor", "floor";
    Ceil => "Ceil", "ceil";
    Round => "Round", "round";
    Sign => "Sign", "sign";
    Erf => "Erf", "erf";
    Sin => "Sin", "sin";
    Cos => "Cos", "cos";
    Tan => "Tan", "tan";
    Atan => "Atan", "atan";
    Relu => "Relu", "relu";
    LeakyRelu => "LeakyRelu", "leaky_relu";
    Elu => "Elu", "elu";
    Sigmoid => "Sigmoid", "sigmoid";
    HardSigmoid => "HardSigmoid", "hard_sigmoid";
    HardSwish => "HardSwish", "hard_swish";
    Tanh => "Tanh", "tanh";
    Softplus => "Softplus", "softplus";
    Gelu => "Gelu", "gelu";
    Not => "Not", "not";
    IsNaN => "IsNaN", "is_nan";
    IsInf => "IsInf", "is_inf";
    Clip => "Clip", "clip";
    Cast => "Cast", "cast";
    CastLike => "CastLike", "cast_like";
    // Elementwise binary / variadic (numpy broadcasting)
    Add => "Add", "add";
    Sub => "Sub", "sub";
    Mul => "Mul", "mul";
    Div => "Div", "div";
    Pow => "Pow", "pow";
    Mod => "Mod", "mod";
    Max => "Max", "max";
    Min => "Min", "min";
    Sum => "Sum", "sum";
    Mean => "Mean", "mean";
    And => "And", "and";
    Or => "Or", "or";
    Xor => "Xor", "xor";
    Equal => "Equal", "equal";
    Less => "Less", "less";
    LessOrEqual => "LessOrEqual", "less_or_equal";
    Greater => "Greater", "greater";
    GreaterOrEqual => "GreaterOrEqual", "greater_or_equal";
    PRelu => "PRelu", "prelu";
    Where => "Where", "where";
    // Linear algebra and neural-network ops
    MatMul => "MatMul", "matmul";
    Gemm => "Gemm", "gemm";
    Conv => "Conv", "conv";
    MaxPool => "MaxPool", "max_pool";
    AveragePool => "AveragePool", "average_pool";
    GlobalAveragePool => "GlobalAveragePool", "global_average_pool";
    GlobalMaxPool => "GlobalMaxPool", "global_max_pool";
    BatchNormalization => "BatchNormalization", "batch_normalization";
    LayerNormalization => "LayerNormalization", "layer_normalization";
    Softmax => "Softmax", "softmax";
    LogSoftmax => "LogSoftmax", "log_softmax";
    Dropout => "Dropout", "dropout";
    // Reductions
    ReduceSum => "ReduceSum", "reduce_sum";
    ReduceMean => "ReduceMean", "reduce_mean";
    ReduceMax => "ReduceMax", "reduce_max";
    ReduceMin => "ReduceMin", "reduce_min";
    ReduceProd => "ReduceProd", "reduce_prod";
    ReduceL1 => "ReduceL1", "reduce_l1";
    ReduceL2 => "ReduceL2", "reduce_l2";
    ReduceSumSquare => "ReduceSumSquare", "reduce_sum_square";
    ReduceLogSumExp => "ReduceLogSumExp", "reduce_log_sum_exp";
    ReduceLogSum => "ReduceLogSum", "reduce_log_sum";
    ArgMax => "ArgMax", "arg_max";
    ArgMin => "ArgMin", "arg_min";
    // Shape and data movement
    Reshape => "Reshape", "reshape";
    Flatten => "Flatten", "flatten";
    Transpose => "Transpose", "transpose";
    Squeeze => "Squeeze", "squeeze";
    Unsqueeze => "Unsqueeze", "unsqueeze";
    Concat => "Concat", "concat";
    Split => "Split", "split";
    Slice => "Slice", "slice";
    Gather => "Gather", "gather";
    Expand => "Expand", "expand";
    Tile => "Tile", "tile";
    Shape => "Shape", "shape";
    Size => "Size", "size";
    Range => "Range", "range";
    ConstantOfShape => "ConstantOfShape", "constant_of_shape";
    // More elementwise math, activations and bitwise ops
    Acos => "Acos", "acos";
    Asin => "Asin", "asin";
    Acosh => "Acosh", "acosh";
    Asinh => "Asinh", "asinh";
    Atanh => "Atanh", "atanh";
    Cosh => "Cosh", "cosh";
    Sinh => "Sinh", "sinh";
    Selu => "Selu", "selu";
    Celu => "Celu", "celu";
    ThresholdedRelu => "ThresholdedRelu", "thresholded_relu";
    Shrink => "Shrink", "shrink";
    Softsign => "Softsign", "softsign";
    Mish => "Mish", "mish";
    BitwiseNot => "BitwiseNot", "bitwise_not";
    BitwiseAnd => "BitwiseAnd", "bitwise_and";
    BitwiseOr => "BitwiseOr", "bitwise_or";
    BitwiseXor => "BitwiseXor", "bitwise_xor";
    BitShift => "BitShift", "bit_shift";
    // Indexing, scatter and data rearrangement
    GatherElements => "GatherElements", "gather_elements";
    GatherND => "GatherND", "gather_nd";
    ScatterElements => "ScatterElements", "scatter_elements";
    ScatterND => "ScatterND", "scatter_nd";
    Trilu => "Trilu", "trilu";
    TopK => "TopK", "top_k";
    CumSum => "CumSum", "cum_sum";
    CumProd => "CumProd", "cum_prod";
    OneHot => "OneHot", "one_hot";
    NonZero => "NonZero", "non_zero";
    Unique => "Unique", "unique";
    Compress => "Compress", "compress";
    ReverseSequence => "ReverseSequence", "reverse_sequence";
    DepthToSpace => "DepthToSpace", "depth_to_space";
    SpaceToDepth => "SpaceToDepth", "space_to_depth";
    EyeLike => "EyeLike", "eye_like";
    Pad => "Pad", "pad";
    CenterCropPad => "CenterCropPad", "center_crop_pad";
    BitCast => "BitCast", "bit_cast";
    // Other tensor algebra
    Hardmax => "Hardmax", "hardmax";
    Einsum => "Einsum", "einsum";
    Det => "Det", "det";
    // Signal processing, detection and strings
    HannWindow => "HannWindow", "hann_window";
    HammingWindow => "HammingWindow", "hamming_window";
    BlackmanWindow => "BlackmanWindow", "blackman_window";
    DFT => "DFT", "dft";
    STFT => "STFT", "stft";
    MelWeightMatrix => "MelWeightMatrix", "mel_weight_matrix";
    NonMaxSuppression => "NonMaxSuppression", "non_max_suppression";
    StringConcat => "StringConcat", "string_concat";
    StringSplit => "StringSplit", "string_split";
    StringNormalizer => "StringNormalizer", "string_normalizer";
    TfIdfVectorizer => "TfIdfVectorizer", "tf_idf_vectorizer";
    // Quantization
    QuantizeLinear => "QuantizeLinear", "quantize_linear";
    DequantizeLinear => "DequantizeLinear", "dequantize_linear";
    // Losses
    NegativeLogLikelihoodLoss => "NegativeLogLikelihoodLoss", "negative_log_likelihood_loss";
    SoftmaxCrossEntropyLoss => "SoftmaxCrossEntropyLoss", "softmax_cross_entropy_loss";
    // Resampling
    Resize => "Resize", "resize";
    GridSample => "GridSample", "grid_sample";
    AffineGrid => "AffineGrid", "affine_grid";
    // Recurrent layers
    Rnn => "RNN", "rnn";
    Gru => "GRU", "gru";
    Lstm => "LSTM", "lstm";
    // More windowed ops
    ConvTranspose => "ConvTranspose", "conv_transpose";
    LpPool => "LpPool", "lp_pool";
    Col2Im => "Col2Im", "col2im";
    MaxUnpool => "MaxUnpool", "max_unpool";
    DeformConv => "DeformConv", "deform_conv";
    RoiAlign => "RoiAlign", "roi_align";
    MaxRoiPool => "MaxRoiPool", "max_roi_pool";
    // Integer and quantized linear ops
    MatMulInteger => "MatMulInteger", "matmul_integer";
    ConvInteger => "ConvInteger", "conv_integer";
    QLinearMatMul => "QLinearMatMul", "qlinear_matmul";
    QLinearConv => "QLinearConv", "qlinear_conv";
    DynamicQuantizeLinear => "DynamicQuantizeLinear", "dynamic_quantize_linear";
    // Attention and normalization
    Attention => "Attention", "attention";
    RotaryEmbedding => "RotaryEmbedding", "rotary_embedding";
    TensorScatter => "TensorScatter", "tensor_scatter";
    LinearAttention => "LinearAttention", "linear_attention";
    CausalConvWithState => "CausalConvWithState", "causal_conv_with_state";
    RMSNormalization => "RMSNormalization", "rms_normalization";
    GroupNormalization => "GroupNormalization", "group_normalization";
    InstanceNormalization => "InstanceNormalization", "instance_normalization";
    MeanVarianceNormalization => "MeanVarianceNormalization", "mean_variance_normalization";
    LpNormalization => "LpNormalization", "lp_normalization";
    LRN => "LRN", "lrn";
    Swish => "Swish", "swish";
    SwiGLU => "SwiGLU", "swiglu";
}

impl OpKind {
    /// The op for an ONNX op type in the default domain, if smelt knows it.
    pub fn from_onnx(op_type: &str) -> Option<OpKind> {
        CATALOGUE
            .iter()
            .find(|(_, o, _)| *o == op_type)
            .map(|(k, _, _)| k.clone())
    }

    /// The op for a textual-IR name.
    pub fn from_text(name: &str) -> Option<OpKind> {
        CATALOGUE
            .iter()
            .find(|(_, _, t)| *t == name)
            .map(|(k, _, _)| k.clone())
    }

    /// The ONNX op type (`MatMul`); for custom ops, their own name.
    pub fn onnx_name(&self) -> &str {
        match self {
            OpKind::Custom { name, .. } => name,
            k => CATALOGUE
                .iter()
                .find(|(c, _, _)| c == k)
                .map(|(_, o, _)| *o)
                .unwrap_or("?"),
        }
    }

    /// The name used in the textual IR (`matmul`); custom ops print as `domain.name`.
    pub fn text_name(&self) -> String {
        match self {
            OpKind::Custom { domain, name } => format!("{domain}.{name}"),
            k => CATALOGUE
                .iter()
                .find(|(c, _, _)| c == k)
                .map(|(_, _, t)| t.to_string())
                .unwrap_or_default(),
        }
    }

    /// Every built-in op.
    pub fn all() -> impl Iterator<Item = OpKind> {
        CATALOGUE.iter().map(|(k, _, _)| k.clone())
    }

    /// Elementwise ops with numpy broadcasting across all inputs.
    pub fn is_broadcasting_elementwise(&self) -> bool {
        use OpKind::*;
        matches!(
            self,
            Add | Sub
                | Mul
                | Div
                | Pow
                | Mod
                | Max
                | Min
                | Sum
                | Mean
                | And
                | Or
                | Xor
                | Equal
                | Less
                | LessOrEqual
                | Greater
                | GreaterOrEqual
                | PRelu
                | Where
                | BitwiseAnd
                | BitwiseOr
                | BitwiseXor
                | BitShift
        )
    }

    /// Ops with no side effects whose output depends only on their inputs (all of ours).
    pub fn is_pure(&self) -> bool {
        !matches!(self, OpKind::Custom { .. })
    }
}

impl fmt::Display for OpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_round_trip() {
        let mut texts = std::collections::HashSet::new();
        for k in OpKind::all() {
            assert!(texts.insert(k.text_name()), "duplicate {}", k.text_name());
            assert_eq!(OpKind::from_text(&k.text_name()), Some(k.clone()));
            assert_eq!(OpKind::from_onnx(k.onnx_name()), Some(k.clone()));
        }
    }
}
