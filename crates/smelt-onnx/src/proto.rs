//! The ONNX protobuf schema (`onnx.proto`, proto2), written out by hand for prost.
//!
//! Field numbers and labels follow `onnx/onnx.proto` of onnx 1.23 exactly, so the same
//! structs decode a model here and encode one for a later export. proto2 `optional`
//! fields are `Option<T>` (presence matters: `data_location` absent is not the same
//! statement as `DEFAULT`, and an export should not write fields the model never had).
//! Repeated numeric fields are packed only where the schema says `[packed = true]`;
//! prost decodes either form regardless, the distinction is for encoding.
//!
//! Byte fields that can be large (`TensorProto.raw_data`) are [`bytes::Bytes`]: decoding
//! with `Message::decode(Bytes)` then slices the input buffer instead of copying, so
//! initializers can point straight into a memory-mapped model file. Only the parts of
//! the schema an importer needs to recognise are modelled; prost skips unknown fields
//! (e.g. device configurations, training info) while decoding.

/// `onnx.ModelProto`: the top-level container.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ModelProto {
    /// ONNX IR (file format) version.
    #[prost(int64, optional, tag = "1")]
    pub ir_version: Option<i64>,
    /// Operator sets used, by domain and version.
    #[prost(message, repeated, tag = "8")]
    pub opset_import: Vec<OperatorSetIdProto>,
    /// Tool that wrote the model (e.g. `pytorch`).
    #[prost(string, optional, tag = "2")]
    pub producer_name: Option<String>,
    /// Version of the producing tool.
    #[prost(string, optional, tag = "3")]
    pub producer_version: Option<String>,
    /// Reverse-DNS namespace of the model.
    #[prost(string, optional, tag = "4")]
    pub domain: Option<String>,
    /// Version of the model itself.
    #[prost(int64, optional, tag = "5")]
    pub model_version: Option<i64>,
    /// Human-readable documentation.
    #[prost(string, optional, tag = "6")]
    pub doc_string: Option<String>,
    /// The main graph.
    #[prost(message, optional, tag = "7")]
    pub graph: Option<GraphProto>,
    /// Free-form key/value metadata.
    #[prost(message, repeated, tag = "14")]
    pub metadata_props: Vec<StringStringEntryProto>,
    /// Training-only graphs (ignored by the importer).
    #[prost(message, repeated, tag = "20")]
    pub training_info: Vec<TrainingInfoProto>,
    /// Model-local functions.
    #[prost(message, repeated, tag = "25")]
    pub functions: Vec<FunctionProto>,
}

/// `onnx.TrainingInfoProto` (recognised so a training model decodes; never imported).
#[derive(Clone, PartialEq, prost::Message)]
pub struct TrainingInfoProto {
    /// Graph that initializes training state.
    #[prost(message, optional, tag = "1")]
    pub initialization: Option<GraphProto>,
    /// One training step.
    #[prost(message, optional, tag = "2")]
    pub algorithm: Option<GraphProto>,
    /// Initializer names bound to `initialization` outputs.
    #[prost(message, repeated, tag = "3")]
    pub initialization_binding: Vec<StringStringEntryProto>,
    /// Initializer names bound to `algorithm` outputs.
    #[prost(message, repeated, tag = "4")]
    pub update_binding: Vec<StringStringEntryProto>,
}

/// `onnx.OperatorSetIdProto`: one `(domain, version)` opset import.
#[derive(Clone, PartialEq, prost::Message)]
pub struct OperatorSetIdProto {
    /// Operator-set domain (`""` or `ai.onnx` is the default domain).
    #[prost(string, optional, tag = "1")]
    pub domain: Option<String>,
    /// Opset version.
    #[prost(int64, optional, tag = "2")]
    pub version: Option<i64>,
}

/// `onnx.StringStringEntryProto`: a key/value pair (metadata, external data keys).
#[derive(Clone, PartialEq, prost::Message)]
pub struct StringStringEntryProto {
    /// The key.
    #[prost(string, optional, tag = "1")]
    pub key: Option<String>,
    /// The value.
    #[prost(string, optional, tag = "2")]
    pub value: Option<String>,
}

/// `onnx.TensorAnnotation`: quantization parameter names attached to a tensor.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorAnnotation {
    /// The annotated tensor.
    #[prost(string, optional, tag = "1")]
    pub tensor_name: Option<String>,
    /// Names of its scale and zero-point tensors by role.
    #[prost(message, repeated, tag = "2")]
    pub quant_parameter_tensor_names: Vec<StringStringEntryProto>,
}

/// `onnx.GraphProto`: nodes, initializers and the graph's interface.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GraphProto {
    /// Nodes, in topological order.
    #[prost(message, repeated, tag = "1")]
    pub node: Vec<NodeProto>,
    /// Name (unique within its scope).
    #[prost(string, optional, tag = "2")]
    pub name: Option<String>,
    /// Constant tensors (weights); may also be listed as inputs.
    #[prost(message, repeated, tag = "5")]
    pub initializer: Vec<TensorProto>,
    /// Sparse constant tensors.
    #[prost(message, repeated, tag = "15")]
    pub sparse_initializer: Vec<SparseTensorProto>,
    /// Human-readable documentation.
    #[prost(string, optional, tag = "10")]
    pub doc_string: Option<String>,
    /// Graph inputs (and, in old models, initializers).
    #[prost(message, repeated, tag = "11")]
    pub input: Vec<ValueInfoProto>,
    /// Graph outputs.
    #[prost(message, repeated, tag = "12")]
    pub output: Vec<ValueInfoProto>,
    /// Declared types of intermediate values.
    #[prost(message, repeated, tag = "13")]
    pub value_info: Vec<ValueInfoProto>,
    /// Quantization parameters attached to tensors.
    #[prost(message, repeated, tag = "14")]
    pub quantization_annotation: Vec<TensorAnnotation>,
    /// Free-form key/value metadata.
    #[prost(message, repeated, tag = "16")]
    pub metadata_props: Vec<StringStringEntryProto>,
}

/// `onnx.NodeProto`: one operator application.
#[derive(Clone, PartialEq, prost::Message)]
pub struct NodeProto {
    /// Input names in order (`""` marks an omitted optional input).
    #[prost(string, repeated, tag = "1")]
    pub input: Vec<String>,
    /// Output names in order (`""` marks an omitted optional output).
    #[prost(string, repeated, tag = "2")]
    pub output: Vec<String>,
    /// Node name (optional, for diagnostics).
    #[prost(string, optional, tag = "3")]
    pub name: Option<String>,
    /// Operator name, e.g. `MatMul`.
    #[prost(string, optional, tag = "4")]
    pub op_type: Option<String>,
    /// Operator domain (`""` or `ai.onnx` is the default domain).
    #[prost(string, optional, tag = "7")]
    pub domain: Option<String>,
    /// Overload identifier of a function (with `domain` and `name`).
    #[prost(string, optional, tag = "8")]
    pub overload: Option<String>,
    /// Attributes.
    #[prost(message, repeated, tag = "5")]
    pub attribute: Vec<AttributeProto>,
    /// Human-readable documentation.
    #[prost(string, optional, tag = "6")]
    pub doc_string: Option<String>,
    /// Free-form key/value metadata.
    #[prost(message, repeated, tag = "9")]
    pub metadata_props: Vec<StringStringEntryProto>,
}

/// `onnx.AttributeProto`: a named attribute; `type` says which value field is used.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AttributeProto {
    /// Attribute name.
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    /// In a function body: the function attribute this one refers to.
    #[prost(string, optional, tag = "21")]
    pub ref_attr_name: Option<String>,
    /// Human-readable documentation.
    #[prost(string, optional, tag = "13")]
    pub doc_string: Option<String>,
    /// Which value field is used ([`attribute_proto::AttributeType`]).
    #[prost(enumeration = "attribute_proto::AttributeType", optional, tag = "20")]
    pub r#type: Option<i32>,
    /// FLOAT value.
    #[prost(float, optional, tag = "2")]
    pub f: Option<f32>,
    /// INT value.
    #[prost(int64, optional, tag = "3")]
    pub i: Option<i64>,
    /// STRING value (UTF-8 bytes).
    #[prost(bytes = "vec", optional, tag = "4")]
    pub s: Option<Vec<u8>>,
    /// TENSOR value.
    #[prost(message, optional, tag = "5")]
    pub t: Option<TensorProto>,
    /// GRAPH value (a subgraph).
    #[prost(message, optional, tag = "6")]
    pub g: Option<GraphProto>,
    /// SPARSE_TENSOR value.
    #[prost(message, optional, tag = "22")]
    pub sparse_tensor: Option<SparseTensorProto>,
    /// TYPE_PROTO value.
    #[prost(message, optional, tag = "14")]
    pub tp: Option<TypeProto>,
    /// FLOATS value.
    #[prost(float, repeated, packed = "false", tag = "7")]
    pub floats: Vec<f32>,
    /// INTS value.
    #[prost(int64, repeated, packed = "false", tag = "8")]
    pub ints: Vec<i64>,
    /// STRINGS value.
    #[prost(bytes = "vec", repeated, tag = "9")]
    pub strings: Vec<Vec<u8>>,
    /// TENSORS value.
    #[prost(message, repeated, tag = "10")]
    pub tensors: Vec<TensorProto>,
    /// GRAPHS value.
    #[prost(message, repeated, tag = "11")]
    pub graphs: Vec<GraphProto>,
    /// SPARSE_TENSORS value.
    #[prost(message, repeated, tag = "23")]
    pub sparse_tensors: Vec<SparseTensorProto>,
    /// TYPE_PROTOS value.
    #[prost(message, repeated, tag = "15")]
    pub type_protos: Vec<TypeProto>,
}

/// Nested types of [`AttributeProto`].
pub mod attribute_proto {
    /// `AttributeProto.AttributeType`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
    #[repr(i32)]
    pub enum AttributeType {
        /// `UNDEFINED`.
        Undefined = 0,
        /// `FLOAT`.
        Float = 1,
        /// `INT`.
        Int = 2,
        /// `STRING`.
        String = 3,
        /// `TENSOR`.
        Tensor = 4,
        /// `GRAPH`.
        Graph = 5,
        /// `SPARSE_TENSOR`.
        SparseTensor = 11,
        /// `TYPE_PROTO`.
        TypeProto = 13,
        /// `FLOATS`.
        Floats = 6,
        /// `INTS`.
        Ints = 7,
        /// `STRINGS`.
        Strings = 8,
        /// `TENSORS`.
        Tensors = 9,
        /// `GRAPHS`.
        Graphs = 10,
        /// `SPARSE_TENSORS`.
        SparseTensors = 12,
        /// `TYPE_PROTOS`.
        TypeProtos = 14,
    }
}

/// `onnx.ValueInfoProto`: a value's name and type.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ValueInfoProto {
    /// Value name.
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    /// Value type; absent means unknown.
    #[prost(message, optional, tag = "2")]
    pub r#type: Option<TypeProto>,
    /// Human-readable documentation.
    #[prost(string, optional, tag = "3")]
    pub doc_string: Option<String>,
    /// Free-form key/value metadata.
    #[prost(message, repeated, tag = "4")]
    pub metadata_props: Vec<StringStringEntryProto>,
}

/// `onnx.TensorProto`: a tensor's type, shape and data in one of several storages.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorProto {
    /// Shape (an empty list is a scalar).
    #[prost(int64, repeated, packed = "false", tag = "1")]
    pub dims: Vec<i64>,
    /// Element type ([`tensor_proto::DataType`] code).
    #[prost(int32, optional, tag = "2")]
    pub data_type: Option<i32>,
    /// Which part of a split tensor this is (unsupported).
    #[prost(message, optional, tag = "3")]
    pub segment: Option<tensor_proto::Segment>,
    /// Elements of FLOAT (and COMPLEX64) tensors.
    #[prost(float, repeated, packed = "true", tag = "4")]
    pub float_data: Vec<f32>,
    /// Elements of INT32 and narrower types: one per entry (16-bit floats and FP8 as
    /// bit patterns), except 4-bit types, packed two per entry.
    #[prost(int32, repeated, packed = "true", tag = "5")]
    pub int32_data: Vec<i32>,
    /// Elements of STRING tensors.
    #[prost(bytes = "vec", repeated, tag = "6")]
    pub string_data: Vec<Vec<u8>>,
    /// Elements of INT64 tensors.
    #[prost(int64, repeated, packed = "true", tag = "7")]
    pub int64_data: Vec<i64>,
    /// Tensor name (the value it defines, for initializers).
    #[prost(string, optional, tag = "8")]
    pub name: Option<String>,
    /// Human-readable documentation.
    #[prost(string, optional, tag = "12")]
    pub doc_string: Option<String>,
    /// Little-endian element bytes; a slice of the decoded buffer, never a copy.
    #[prost(bytes = "bytes", optional, tag = "9")]
    pub raw_data: Option<bytes::Bytes>,
    /// Where external data lives: `location`, `offset`, `length`, `checksum`.
    #[prost(message, repeated, tag = "13")]
    pub external_data: Vec<StringStringEntryProto>,
    /// Inline or external storage ([`tensor_proto::DataLocation`]).
    #[prost(enumeration = "tensor_proto::DataLocation", optional, tag = "14")]
    pub data_location: Option<i32>,
    /// Elements of DOUBLE (and COMPLEX128) tensors.
    #[prost(double, repeated, packed = "true", tag = "10")]
    pub double_data: Vec<f64>,
    /// Elements of UINT32 and UINT64 tensors.
    #[prost(uint64, repeated, packed = "true", tag = "11")]
    pub uint64_data: Vec<u64>,
    /// Free-form key/value metadata.
    #[prost(message, repeated, tag = "16")]
    pub metadata_props: Vec<StringStringEntryProto>,
}

/// Nested types of [`TensorProto`].
pub mod tensor_proto {
    /// `TensorProto.DataType`: element type codes.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
    #[repr(i32)]
    pub enum DataType {
        /// `UNDEFINED`.
        Undefined = 0,
        /// `FLOAT`.
        Float = 1,
        /// `UINT8`.
        Uint8 = 2,
        /// `INT8`.
        Int8 = 3,
        /// `UINT16`.
        Uint16 = 4,
        /// `INT16`.
        Int16 = 5,
        /// `INT32`.
        Int32 = 6,
        /// `INT64`.
        Int64 = 7,
        /// `STRING`.
        String = 8,
        /// `BOOL`.
        Bool = 9,
        /// `FLOAT16`.
        Float16 = 10,
        /// `DOUBLE`.
        Double = 11,
        /// `UINT32`.
        Uint32 = 12,
        /// `UINT64`.
        Uint64 = 13,
        /// `COMPLEX64`.
        Complex64 = 14,
        /// `COMPLEX128`.
        Complex128 = 15,
        /// `BFLOAT16`.
        Bfloat16 = 16,
        /// `FLOAT8E4M3FN`.
        Float8e4m3fn = 17,
        /// `FLOAT8E4M3FNUZ`.
        Float8e4m3fnuz = 18,
        /// `FLOAT8E5M2`.
        Float8e5m2 = 19,
        /// `FLOAT8E5M2FNUZ`.
        Float8e5m2fnuz = 20,
        /// `UINT4`.
        Uint4 = 21,
        /// `INT4`.
        Int4 = 22,
        /// `FLOAT4E2M1`.
        Float4e2m1 = 23,
        /// `FLOAT8E8M0`.
        Float8e8m0 = 24,
        /// `UINT2`.
        Uint2 = 25,
        /// `INT2`.
        Int2 = 26,
        /// `FLOAT6E2M3`.
        Float6e2m3 = 27,
        /// `FLOAT6E3M2`.
        Float6e3m2 = 28,
    }

    /// `TensorProto.Segment`: part of a tensor split over several protos.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Segment {
        /// Start of the segment.
        #[prost(int64, optional, tag = "1")]
        pub begin: Option<i64>,
        /// End of the segment.
        #[prost(int64, optional, tag = "2")]
        pub end: Option<i64>,
    }

    /// `TensorProto.DataLocation`: inline or in an external file.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
    #[repr(i32)]
    pub enum DataLocation {
        /// Data inline in the proto.
        Default = 0,
        /// Data in an external file.
        External = 1,
    }
}

/// `onnx.SparseTensorProto` (recognised so it can be refused with a clear error).
#[derive(Clone, PartialEq, prost::Message)]
pub struct SparseTensorProto {
    /// The nonzero values.
    #[prost(message, optional, tag = "1")]
    pub values: Option<TensorProto>,
    /// Their indices.
    #[prost(message, optional, tag = "2")]
    pub indices: Option<TensorProto>,
    /// Shape of the dense tensor.
    #[prost(int64, repeated, packed = "false", tag = "3")]
    pub dims: Vec<i64>,
}

/// `onnx.TensorShapeProto`: a list of dimensions.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorShapeProto {
    /// The dimensions, outermost first.
    #[prost(message, repeated, tag = "1")]
    pub dim: Vec<tensor_shape_proto::Dimension>,
}

/// Nested types of [`TensorShapeProto`].
pub mod tensor_shape_proto {
    /// `TensorShapeProto.Dimension`: a known size, a named parameter, or neither.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Dimension {
        /// The size or its symbolic name.
        #[prost(oneof = "dimension::Value", tags = "1, 2")]
        pub value: Option<dimension::Value>,
        /// Optional semantic denotation (e.g. `IMAGE`).
        #[prost(string, optional, tag = "3")]
        pub denotation: Option<String>,
    }

    /// Nested types of [`Dimension`].
    pub mod dimension {
        /// The `value` oneof of a dimension.
        #[derive(Clone, PartialEq, prost::Oneof)]
        pub enum Value {
            /// A known size.
            #[prost(int64, tag = "1")]
            DimValue(i64),
            /// A named symbolic size.
            #[prost(string, tag = "2")]
            DimParam(String),
        }
    }
}

/// `onnx.TypeProto`: the type of a value (only tensors are importable).
#[derive(Clone, PartialEq, prost::Message)]
pub struct TypeProto {
    /// The kind of type.
    #[prost(oneof = "type_proto::Value", tags = "1, 4, 5, 9, 8, 7")]
    pub value: Option<type_proto::Value>,
    /// Optional semantic denotation (e.g. `IMAGE`).
    #[prost(string, optional, tag = "6")]
    pub denotation: Option<String>,
}

/// Nested types of [`TypeProto`].
pub mod type_proto {
    use super::{TensorShapeProto, TypeProto};

    /// `TypeProto.Tensor`: element type and shape.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Tensor {
        /// Element type.
        #[prost(int32, optional, tag = "1")]
        pub elem_type: Option<i32>,
        /// Shape; absent means unknown rank.
        #[prost(message, optional, tag = "2")]
        pub shape: Option<TensorShapeProto>,
    }

    /// `TypeProto.Sequence`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Sequence {
        /// Type of the elements.
        #[prost(message, optional, boxed, tag = "1")]
        pub elem_type: Option<Box<TypeProto>>,
    }

    /// `TypeProto.Map`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Map {
        /// Key element type.
        #[prost(int32, optional, tag = "1")]
        pub key_type: Option<i32>,
        /// Value type.
        #[prost(message, optional, boxed, tag = "2")]
        pub value_type: Option<Box<TypeProto>>,
    }

    /// `TypeProto.Optional`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Optional {
        /// Type of the contained value.
        #[prost(message, optional, boxed, tag = "1")]
        pub elem_type: Option<Box<TypeProto>>,
    }

    /// `TypeProto.SparseTensor`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct SparseTensor {
        /// Element type.
        #[prost(int32, optional, tag = "1")]
        pub elem_type: Option<i32>,
        /// Shape; absent means unknown rank.
        #[prost(message, optional, tag = "2")]
        pub shape: Option<TensorShapeProto>,
    }

    /// `TypeProto.Opaque`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Opaque {
        /// Domain of the opaque type.
        #[prost(string, optional, tag = "1")]
        pub domain: Option<String>,
        /// Name of the opaque type.
        #[prost(string, optional, tag = "2")]
        pub name: Option<String>,
    }

    /// The `value` oneof of a type.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Value {
        /// A dense tensor.
        #[prost(message, tag = "1")]
        TensorType(Tensor),
        /// A sequence.
        #[prost(message, tag = "4")]
        SequenceType(Sequence),
        /// A map.
        #[prost(message, tag = "5")]
        MapType(Map),
        /// An optional value.
        #[prost(message, tag = "9")]
        OptionalType(Optional),
        /// A sparse tensor.
        #[prost(message, tag = "8")]
        SparseTensorType(SparseTensor),
        /// An opaque type.
        #[prost(message, tag = "7")]
        OpaqueType(Opaque),
    }
}

/// `onnx.FunctionProto` (decoded so models carrying local functions parse; functions
/// are not inlined, a node calling one is reported as an unsupported op).
#[derive(Clone, PartialEq, prost::Message)]
pub struct FunctionProto {
    /// Function name (the op type that calls it).
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    /// Formal input names.
    #[prost(string, repeated, tag = "4")]
    pub input: Vec<String>,
    /// Formal output names.
    #[prost(string, repeated, tag = "5")]
    pub output: Vec<String>,
    /// Attribute names without defaults.
    #[prost(string, repeated, tag = "6")]
    pub attribute: Vec<String>,
    /// Attributes with defaults.
    #[prost(message, repeated, tag = "11")]
    pub attribute_proto: Vec<AttributeProto>,
    /// Function body, in topological order.
    #[prost(message, repeated, tag = "7")]
    pub node: Vec<NodeProto>,
    /// Human-readable documentation.
    #[prost(string, optional, tag = "8")]
    pub doc_string: Option<String>,
    /// Operator sets used, by domain and version.
    #[prost(message, repeated, tag = "9")]
    pub opset_import: Vec<OperatorSetIdProto>,
    /// Domain the function is defined in.
    #[prost(string, optional, tag = "10")]
    pub domain: Option<String>,
    /// Overload identifier of a function (with `domain` and `name`).
    #[prost(string, optional, tag = "13")]
    pub overload: Option<String>,
    /// Declared types of intermediate values.
    #[prost(message, repeated, tag = "12")]
    pub value_info: Vec<ValueInfoProto>,
    /// Free-form key/value metadata.
    #[prost(message, repeated, tag = "14")]
    pub metadata_props: Vec<StringStringEntryProto>,
}
