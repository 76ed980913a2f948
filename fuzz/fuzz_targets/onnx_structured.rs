//! Structure-aware ONNX import fuzzing.
//!
//! Raw bytes (the `onnx_import` target) mostly die in the protobuf decoder. This target
//! builds a [`ModelProto`] from the fuzzer's bytes instead, so the framing is always valid
//! and the contents are hostile: names drawn from a tiny pool (so values collide, dangle
//! and form cycles), real op types next to made-up ones, negative / huge / overflowing
//! dims, data types the header and the data disagree on, 4-bit tensors of odd lengths,
//! external-data entries with offsets past the end, absolute paths, `..` and a symlink
//! out of the model folder, long repeated fields, subgraph attributes nested as deep as
//! the decoder allows and beyond, unknown data types and odd opset versions.
//!
//! The model is encoded with prost and imported under either the default
//! [`ImportLimits`] or tight ones. The import must return `Ok` or a clean error, never
//! panic, abort or exhaust memory. A graph that imports must pass the IR verifier, print
//! as text, and (when the exporter takes it) export to a model that imports back to the
//! same text.

#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use prost::Message;
use smelt::onnx::proto::attribute_proto::AttributeType;
use smelt::onnx::proto::tensor_proto::DataLocation;
use smelt::onnx::proto::tensor_shape_proto::dimension::Value as DimValue;
use smelt::onnx::proto::tensor_shape_proto::Dimension;
use smelt::onnx::proto::type_proto;
use smelt::onnx::proto::{
    AttributeProto, FunctionProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto,
    StringStringEntryProto, TensorProto, TensorShapeProto, TrainingInfoProto, TypeProto,
    ValueInfoProto,
};
use smelt::onnx::{ImportLimits, ImportOptions};

/// Value names: few, so that definitions collide, inputs dangle and nodes feed each other
/// in cycles.
const NAMES: &[&str] = &[
    "x", "y", "z", "w", "b", "t", "out", "cond", "i", "", "x ", "é", "a\u{0}b", "%0",
];

/// Op types: ones smelt knows (with and without legacy forms), control flow, and ones it
/// does not.
const OPS: &[&str] = &[
    "Add",
    "Mul",
    "Sub",
    "Div",
    "Pow",
    "Relu",
    "MatMul",
    "Gemm",
    "Conv",
    "Reshape",
    "Transpose",
    "Gather",
    "Concat",
    "Slice",
    "Split",
    "Squeeze",
    "Unsqueeze",
    "Cast",
    "Softmax",
    "LogSoftmax",
    "Hardmax",
    "Constant",
    "Identity",
    "Expand",
    "Tile",
    "Where",
    "ConstantOfShape",
    "Range",
    "Pad",
    "ReduceSum",
    "ReduceMean",
    "ReduceMax",
    "ReduceLogSum",
    "Resize",
    "Upsample",
    "QuantizeLinear",
    "DequantizeLinear",
    "BatchNormalization",
    "GroupNormalization",
    "LayerNormalization",
    "Flatten",
    "Shape",
    "Size",
    "TopK",
    "ArgMax",
    "Einsum",
    "If",
    "Loop",
    "Scan",
    "MaxPool",
    "AveragePool",
    "LpPool",
    "GlobalLpPool",
    "Dropout",
    "Clip",
    "PRelu",
    "Selu",
    "Equal",
    "Greater",
    "And",
    "Xor",
    "Scatter",
    "ScatterElements",
    "GRU",
    "LSTM",
    "RNN",
    "DFT",
    "GridSample",
    "RoiAlign",
    "Attention",
    "NoSuchOp",
    "",
];

/// Attribute names the ops above read.
const ATTR_NAMES: &[&str] = &[
    "axis",
    "axes",
    "perm",
    "value",
    "to",
    "shape",
    "then_branch",
    "else_branch",
    "body",
    "alpha",
    "beta",
    "transA",
    "transB",
    "kernel_shape",
    "strides",
    "pads",
    "dilations",
    "group",
    "keepdims",
    "mode",
    "epsilon",
    "split",
    "value_float",
    "value_ints",
    "broadcast",
    "is_test",
    "spatial",
    "num_groups",
    "k",
    "p",
    "min",
    "max",
    "ratio",
    "starts",
    "ends",
    "paddings",
    "height_scale",
    "width_scale",
    "scales",
    "output_sequence",
    "consumed_inputs",
    "",
];

/// Data type codes: every defined one, the unsupported ones and some never defined.
const DTYPES: &[i32] = &[
    0,
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    8,
    9,
    10,
    11,
    12,
    13,
    14,
    15,
    16,
    17,
    18,
    19,
    20,
    21,
    22,
    23,
    24,
    25,
    26,
    27,
    28,
    29,
    99,
    -1,
    i32::MAX,
    i32::MIN,
];

/// Interesting dims: empty, unit, small, negative, the 2^31 / 2^32 / 2^63 edges.
const DIMS: &[i64] = &[
    0,
    1,
    2,
    3,
    4,
    7,
    -1,
    -2,
    i64::MIN,
    i64::MAX,
    1 << 31,
    (1 << 32) + 1,
    1 << 40,
    1 << 62,
];

/// External data locations: fine, missing, escaping by `..`, absolute, through a
/// symlink, a directory, empty, with a NUL byte.
const LOCATIONS: &[&str] = &[
    "w.bin",
    "./w.bin",
    "sub/w.bin",
    "missing.bin",
    "../../etc/passwd",
    "sub/../../w.bin",
    "/etc/passwd",
    "/dev/zero",
    "escape/passwd",
    "sub",
    "",
    "w\u{0}.bin",
    "C:\\w.bin",
];

/// Offsets and lengths as the strings ONNX stores them.
const NUMBERS: &[&str] = &[
    "0",
    "1",
    "4",
    "16",
    "63",
    "64",
    "65",
    "-1",
    "18446744073709551615",
    "18446744073709551616",
    "9223372036854775807",
    " 8 ",
    "0x10",
    "",
];

/// Opset versions around the supported range and at the integer edges.
const OPSETS: &[i64] = &[
    1,
    6,
    7,
    11,
    13,
    17,
    18,
    21,
    28,
    0,
    -1,
    29,
    1000,
    i64::MAX,
    i64::MIN,
];

/// Domains: the default one (both spellings) and foreign ones.
const DOMAINS: &[&str] = &[
    "",
    "ai.onnx",
    "ai.onnx.ml",
    "com.microsoft",
    "ai.onnx.preview.training",
];

/// Keeps the generated model small enough for a fast iteration; generation stops adding
/// elements past it.
const MAX_ELEMENTS: usize = 2048;

/// The model folder external data is resolved in: `w.bin` (64 bytes), `sub/w.bin`, and
/// `escape`, a symlink to `/etc` (outside the folder).
fn model_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("smelt-fuzz-onnx-{}", std::process::id()));
        let _ = std::fs::create_dir_all(dir.join("sub"));
        let data: Vec<u8> = (0..64u8).collect();
        let _ = std::fs::write(dir.join("w.bin"), &data);
        let _ = std::fs::write(dir.join("sub/w.bin"), &data);
        #[cfg(unix)]
        let _ = std::os::unix::fs::symlink("/etc", dir.join("escape"));
        dir
    })
}

/// Generation state: a budget of elements so a model stays small.
struct Gen<'a, 'b> {
    u: &'a mut Unstructured<'b>,
    elements: usize,
}

impl<'a, 'b> Gen<'a, 'b> {
    fn spend(&mut self, n: usize) -> bool {
        self.elements = self.elements.saturating_add(n);
        self.elements <= MAX_ELEMENTS
    }

    /// True one time in `n`; false once the input is used up, so an exhausted input
    /// takes the ordinary branches (`Unstructured::ratio` would take the rare ones).
    fn one_in(&mut self, n: u8) -> Result<bool> {
        Ok(self.u.int_in_range(1..=n)? == n)
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> Result<T> {
        Ok(*self.u.choose(items)?)
    }

    /// A count in `0..=max`, usually small.
    fn count(&mut self, max: usize) -> Result<usize> {
        if self.one_in(16)? {
            self.u.int_in_range(0..=max)
        } else {
            self.u.int_in_range(0..=max.min(4))
        }
    }

    fn name(&mut self) -> Result<String> {
        if self.one_in(16)? {
            let s: String = self.u.arbitrary()?;
            Ok(s.chars().take(32).collect())
        } else {
            Ok(self.pick(NAMES)?.to_string())
        }
    }

    fn opt_name(&mut self) -> Result<Option<String>> {
        Ok(if self.one_in(8)? {
            None
        } else {
            Some(self.name()?)
        })
    }

    fn dim(&mut self) -> Result<i64> {
        if self.one_in(8)? {
            self.u.arbitrary()
        } else if !self.one_in(4)? {
            Ok(i64::from(self.u.int_in_range(0..=4u8)?))
        } else {
            self.pick(DIMS)
        }
    }

    fn dims(&mut self) -> Result<Vec<i64>> {
        let n = if self.one_in(64)? {
            // A long dims list (a rank bomb): mostly ones.
            let n = self.u.int_in_range(64..=2048)?;
            if !self.spend(n) {
                return Ok(vec![1; 4]);
            }
            return Ok(vec![1; n]);
        } else {
            self.count(6)?
        };
        (0..n).map(|_| self.dim()).collect()
    }

    fn dtype(&mut self) -> Result<i32> {
        // Mostly f32 (so ops type-check and the import gets far), else any code.
        match self.u.int_in_range(0..=15u8)? {
            0..=7 => Ok(1),
            8 => self.u.arbitrary(),
            _ => self.pick(DTYPES),
        }
    }

    fn entries(&mut self) -> Result<Vec<StringStringEntryProto>> {
        let mut out = vec![];
        if !self.one_in(8)? {
            out.push(StringStringEntryProto {
                key: Some("location".into()),
                value: Some(self.pick(LOCATIONS)?.into()),
            });
        }
        for key in ["offset", "length", "checksum"] {
            if self.one_in(2)? {
                out.push(StringStringEntryProto {
                    key: Some(key.into()),
                    value: Some(self.pick(NUMBERS)?.into()),
                });
            }
        }
        if self.one_in(8)? {
            // A duplicate key: the last one wins or the tensor is refused, either way
            // cleanly.
            out.push(StringStringEntryProto {
                key: Some("location".into()),
                value: Some(self.pick(LOCATIONS)?.into()),
            });
        }
        Ok(out)
    }

    /// A tensor whose header and data may disagree.
    fn tensor(&mut self) -> Result<TensorProto> {
        let dims = self.dims()?;
        let data_type = self.dtype()?;
        let mut t = TensorProto {
            dims: dims.clone(),
            data_type: if self.one_in(32)? {
                None
            } else {
                Some(data_type)
            },
            name: self.opt_name()?,
            ..Default::default()
        };
        // The element count the dims declare, when it is small.
        let numel: Option<usize> = dims.iter().try_fold(1usize, |acc, &d| {
            usize::try_from(d).ok().and_then(|d| acc.checked_mul(d))
        });
        let want = numel.filter(|&n| n <= 256);
        match self.u.int_in_range(0..=9u8)? {
            // raw_data sized for 4-byte elements, off by a little or not at all.
            0..=3 => {
                let base = want.unwrap_or(1);
                let bytes_per = match data_type {
                    1 | 6 | 12 => 4,
                    7 | 11 | 13 => 8,
                    4 | 5 | 10 | 16 => 2,
                    21 | 22 | 23 => 0,
                    _ => 1,
                };
                let exact = if bytes_per == 0 {
                    base.div_ceil(2)
                } else {
                    base * bytes_per
                };
                let len = match self.u.int_in_range(0..=5u8)? {
                    0 => exact.saturating_sub(1),
                    1 => exact + 1,
                    2 => 0,
                    // 4-bit: half the element count rounded the wrong way.
                    3 => base / 2,
                    _ => exact,
                };
                if !self.spend(len) {
                    return Ok(t);
                }
                let fill: u8 = self.u.arbitrary()?;
                t.raw_data = Some(bytes::Bytes::from(vec![fill; len]));
            }
            4 => {
                let n = want.unwrap_or(1) + usize::from(self.one_in(4)?);
                if self.spend(n) {
                    t.float_data = (0..n).map(|i| i as f32).collect();
                }
            }
            5 => {
                let n = want
                    .unwrap_or(1)
                    .div_ceil(if self.u.arbitrary()? { 2 } else { 1 });
                if self.spend(n) {
                    let v: i32 = self.pick(&[0, 1, 15, 127, 255, 256, -1, -129, 65536])?;
                    t.int32_data = vec![v; n];
                }
            }
            6 => {
                let n = want.unwrap_or(1);
                if self.spend(n) {
                    t.int64_data = (0..n as i64).collect();
                    if self.u.arbitrary()? {
                        t.uint64_data = vec![u64::MAX; n];
                    }
                }
            }
            7 => {
                let n = want.unwrap_or(1);
                if self.spend(n) {
                    t.string_data = vec![b"s\xff".to_vec(); n];
                }
            }
            8 => {
                t.data_location = Some(DataLocation::External as i32);
                t.external_data = self.entries()?;
                if self.one_in(8)? {
                    t.raw_data = Some(bytes::Bytes::from_static(&[0; 4]));
                }
            }
            _ => {
                // An out-of-range data_location, a segment, or nothing at all.
                match self.u.int_in_range(0..=2u8)? {
                    0 => t.data_location = Some(self.u.arbitrary()?),
                    1 => {
                        t.segment = Some(smelt::onnx::proto::tensor_proto::Segment {
                            begin: Some(0),
                            end: Some(1),
                        })
                    }
                    _ => {}
                }
            }
        }
        Ok(t)
    }

    fn type_proto(&mut self) -> Result<Option<TypeProto>> {
        let value = match self.u.int_in_range(0..=9u8)? {
            9 => return Ok(None),
            1 => Some(type_proto::Value::SequenceType(type_proto::Sequence {
                elem_type: None,
            })),
            2 => Some(type_proto::Value::OptionalType(type_proto::Optional {
                elem_type: None,
            })),
            3 => None,
            _ => {
                let shape = if self.one_in(8)? {
                    None
                } else {
                    let n = self.count(6)?;
                    let mut dim = Vec::with_capacity(n);
                    for _ in 0..n {
                        let value = match self.u.int_in_range(0..=5u8)? {
                            0 => None,
                            1 => Some(DimValue::DimParam(
                                self.pick(&["N", "", "seq", "N"])?.into(),
                            )),
                            _ => Some(DimValue::DimValue(self.dim()?)),
                        };
                        dim.push(Dimension {
                            value,
                            denotation: None,
                        });
                    }
                    Some(TensorShapeProto { dim })
                };
                Some(type_proto::Value::TensorType(type_proto::Tensor {
                    elem_type: Some(self.dtype()?),
                    shape,
                }))
            }
        };
        Ok(Some(TypeProto {
            value,
            denotation: None,
        }))
    }

    fn value_info(&mut self) -> Result<ValueInfoProto> {
        Ok(ValueInfoProto {
            name: self.opt_name()?,
            r#type: self.type_proto()?,
            ..Default::default()
        })
    }

    fn attribute(&mut self, depth: usize) -> Result<AttributeProto> {
        let mut a = AttributeProto {
            name: if self.one_in(32)? {
                None
            } else {
                Some(self.pick(ATTR_NAMES)?.into())
            },
            ..Default::default()
        };
        let kind = self.u.int_in_range(0..=12u8)?;
        let ty = match kind {
            0 => {
                a.i = Some(if self.u.arbitrary()? {
                    self.dim()?
                } else {
                    self.u.arbitrary()?
                });
                AttributeType::Int
            }
            1 => {
                a.f = Some(self.u.arbitrary()?);
                AttributeType::Float
            }
            2 => {
                let n = self.count(256)?;
                if self.spend(n) {
                    a.ints = (0..n).map(|_| self.dim()).collect::<Result<_>>()?;
                }
                AttributeType::Ints
            }
            3 => {
                a.floats = vec![self.u.arbitrary()?; self.count(8)?];
                AttributeType::Floats
            }
            4 => {
                let s: Vec<u8> = self.u.arbitrary()?;
                a.s = Some(s.into_iter().take(64).collect());
                AttributeType::String
            }
            5 | 6 => {
                a.t = Some(self.tensor()?);
                AttributeType::Tensor
            }
            7 | 8 => {
                a.g = Some(self.graph(depth + 1)?);
                AttributeType::Graph
            }
            9 => {
                let n = self.count(3)?;
                a.graphs = (0..n)
                    .map(|_| self.graph(depth + 1))
                    .collect::<Result<_>>()?;
                AttributeType::Graphs
            }
            10 => {
                a.ref_attr_name = Some("ref".into());
                AttributeType::Int
            }
            11 => {
                a.tensors = vec![self.tensor()?];
                AttributeType::Tensors
            }
            _ => AttributeType::Undefined,
        };
        // The type field is sometimes missing (old producers), or contradicts the value.
        a.r#type = match self.u.int_in_range(0..=7u8)? {
            0 => None,
            1 => Some(self.u.arbitrary()?),
            2 => Some(self.u.int_in_range(0..=14)?),
            _ => Some(ty as i32),
        };
        Ok(a)
    }

    fn node(&mut self, depth: usize) -> Result<NodeProto> {
        let op = if self.one_in(32)? {
            let s: String = self.u.arbitrary()?;
            s.chars().take(16).collect()
        } else {
            self.pick(OPS)?.to_string()
        };
        let n_in = self.count(6)?;
        let n_out = self.count(4)?;
        let n_attr = self.count(4)?;
        Ok(NodeProto {
            input: (0..n_in).map(|_| self.name()).collect::<Result<_>>()?,
            output: (0..n_out).map(|_| self.name()).collect::<Result<_>>()?,
            name: self.opt_name()?,
            op_type: Some(op),
            domain: if self.one_in(8)? {
                Some(self.pick(DOMAINS)?.into())
            } else {
                None
            },
            attribute: (0..n_attr)
                .map(|_| self.attribute(depth))
                .collect::<Result<_>>()?,
            ..Default::default()
        })
    }

    /// A graph `depth` subgraphs below the main one. Deeper than a few levels only the
    /// depth-bomb path below recurses, so generation stays bounded.
    fn graph(&mut self, depth: usize) -> Result<GraphProto> {
        if depth > 3 || !self.spend(1) {
            return Ok(GraphProto::default());
        }
        let n_nodes = if self.one_in(32)? {
            // A node-count bomb: one node repeated, without its subgraph and tensor
            // attributes (those are fuzzed elsewhere; here only the count matters).
            let n = self.u.int_in_range(16..=MAX_ELEMENTS)?;
            let mut node = self.node(depth)?;
            node.attribute
                .retain(|a| a.g.is_none() && a.graphs.is_empty() && a.t.is_none());
            if !self.spend(n) {
                return Ok(GraphProto::default());
            }
            let mut g = self.graph_shell()?;
            g.node = vec![node; n];
            return Ok(g);
        } else {
            self.count(12)?
        };
        let mut g = self.graph_shell()?;
        for _ in 0..n_nodes {
            if !self.spend(1) {
                break;
            }
            g.node.push(self.node(depth)?);
        }
        let n_init = self.count(6)?;
        for _ in 0..n_init {
            g.initializer.push(self.tensor()?);
        }
        Ok(g)
    }

    /// A graph's name, inputs, outputs and value_info, without nodes.
    fn graph_shell(&mut self) -> Result<GraphProto> {
        let n_in = self.count(4)?;
        let n_out = self.count(3)?;
        let n_vi = self.count(4)?;
        Ok(GraphProto {
            name: self.opt_name()?,
            input: (0..n_in)
                .map(|_| self.value_info())
                .collect::<Result<_>>()?,
            output: (0..n_out)
                .map(|_| self.value_info())
                .collect::<Result<_>>()?,
            value_info: (0..n_vi)
                .map(|_| self.value_info())
                .collect::<Result<_>>()?,
            ..Default::default()
        })
    }

    fn opsets(&mut self) -> Result<Vec<OperatorSetIdProto>> {
        // Usually one import of the default domain; sometimes none, several, or the
        // default domain twice at different versions.
        let n = if self.one_in(16)? {
            0
        } else if self.one_in(4)? {
            self.count(3)?.max(1)
        } else {
            1
        };
        (0..n)
            .map(|i| {
                Ok(OperatorSetIdProto {
                    domain: if i == 0 && !self.one_in(4)? {
                        Some(String::new())
                    } else {
                        Some(self.pick(DOMAINS)?.into())
                    },
                    version: if !self.one_in(4)? {
                        Some(self.pick(OPSETS)?)
                    } else {
                        Some(self.u.arbitrary()?)
                    },
                })
            })
            .collect()
    }

    fn model(&mut self) -> Result<ModelProto> {
        let ir_version = self.pick(&[8, 3, 7, 10, 11, 0, -1, i64::MAX])?;
        let opset_import = self.opsets()?;
        let mut graph = self.graph(0)?;
        if self.one_in(16)? {
            // A depth bomb beside the generated nodes: an empty graph wrapped in up to 40
            // If nodes. Each level is three messages (graph, node, attribute), so past
            // about 33 levels the decoder's recursion limit (100) refuses the model.
            // (Encoding is quadratic in the depth, so the bomb stays small otherwise.)
            let levels = self.u.int_in_range(1..=40)?;
            let as_list = self.u.arbitrary()?;
            let bottom = GraphProto::default();
            let bomb = depth_bomb(bottom, levels, as_list);
            let at = self.u.int_in_range(0..=graph.node.len())?;
            graph.node.splice(at..at, bomb.node);
        }
        let mut m = ModelProto {
            ir_version: Some(ir_version),
            opset_import,
            producer_name: Some("smelt-fuzz".into()),
            graph: if self.one_in(32)? { None } else { Some(graph) },
            ..Default::default()
        };
        if self.one_in(16)? {
            let node = self.node(1)?;
            m.functions.push(FunctionProto {
                name: Some("f".into()),
                node: vec![node],
                ..Default::default()
            });
        }
        if self.one_in(32)? {
            m.training_info.push(TrainingInfoProto {
                initialization: Some(self.graph(1)?),
                ..Default::default()
            });
        }
        Ok(m)
    }
}

/// Wrap `inner` in `levels` If nodes, each holding the next as `then_branch` (or as one
/// of its `graphs` when `as_list`): a subgraph depth bomb. Deeper than the protobuf
/// decoder's recursion limit, the decode itself must fail cleanly.
fn depth_bomb(inner: GraphProto, levels: usize, as_list: bool) -> GraphProto {
    let mut g = inner;
    for level in 0..levels {
        let mut attr = AttributeProto {
            name: Some("then_branch".into()),
            r#type: Some(if as_list {
                AttributeType::Graphs as i32
            } else {
                AttributeType::Graph as i32
            }),
            ..Default::default()
        };
        if as_list {
            attr.graphs = vec![g];
        } else {
            attr.g = Some(g);
        }
        g = GraphProto {
            name: Some(format!("level{level}")),
            node: vec![NodeProto {
                input: vec!["cond".into()],
                output: vec![format!("y{level}")],
                op_type: Some("If".into()),
                attribute: vec![attr],
                ..Default::default()
            }],
            ..Default::default()
        };
    }
    g
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(tight) = u.arbitrary::<bool>() else {
        return;
    };
    let Ok(keep_unknown_ops) = u.arbitrary::<bool>() else {
        return;
    };
    let mut gen = Gen {
        u: &mut u,
        elements: 0,
    };
    let Ok(model) = gen.model() else { return };
    let mut bytes = model.encode_to_vec();
    // Occasionally (never once the input is used up) cut the encoding short: a
    // truncated but otherwise plausible file.
    if let Ok(cut) = u.int_in_range(0..=15u8) {
        if cut == 15 && !bytes.is_empty() {
            let keep = u.int_in_range(0..=bytes.len() - 1).unwrap_or(0);
            bytes.truncate(keep);
        }
    }
    let limits = if tight {
        ImportLimits {
            max_memory_bytes: 1 << 20,
            max_nodes: 64,
            max_subgraph_depth: 3,
        }
    } else {
        ImportLimits::default()
    };
    let options = ImportOptions { keep_unknown_ops };
    let result = smelt::onnx::import_model_bytes_with_limits(
        bytes::Bytes::from(bytes),
        Some(model_dir()),
        &options,
        &limits,
    );
    if let Ok(imported) = result {
        let g = &imported.graph;
        // What the importer builds from known ops is a well-formed, fully typed graph.
        if !keep_unknown_ops {
            if let Err(e) = smelt::ir::verify::verify(g) {
                panic!("imported graph fails verification: {e}");
            }
        }
        let printed = smelt::ir::text::print(g);
        // The exporter's contract: import(export(g)) prints as g.
        if !keep_unknown_ops {
            let export = smelt::onnx::ExportOptions::default();
            if let Ok(bytes) = smelt::onnx::export_model_bytes(g, &export) {
                let again = smelt::onnx::import_bytes(bytes::Bytes::from(bytes), None)
                    .unwrap_or_else(|e| panic!("the exported model does not import: {e}"));
                assert_eq!(
                    smelt::ir::text::print(&again),
                    printed,
                    "import(export(g)) differs from g"
                );
            }
        }
    }
});
