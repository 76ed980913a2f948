//! [`Graph`] → ONNX model: the inverse of the importer.
//!
//! The exported model is what the importer reads back into the same graph, so that
//! `import(export(g))` prints the same textual IR as `g`:
//!
//! - Nodes are written in the order the textual IR prints them (a topological order), with
//!   their names, attributes (every [`Attr`](smelt_ir::Attr) kind has one ONNX kind) and
//!   value names. Omitted optional inputs are `""`.
//! - Constants that come before the first operation in that order become initializers;
//!   constants placed among the operations become `Constant` nodes at their place. The
//!   importer adds initializers before all nodes, so this is what reproduces the order.
//! - Graph inputs and outputs carry their types, and every other node output gets a
//!   `value_info` entry: known dims as `dim_value`, symbolic ones as `dim_param`,
//!   unknown ones as neither, an unknown rank as a type without a shape.
//! - Tensor data goes to `raw_data` (little-endian; 4-bit types two per byte, low nibble
//!   first; FP6 repacked four codes into three bytes), strings to `string_data`.
//!   [`export_model_file`] moves large tensors to a side file (see
//!   [`ExportOptions::external_threshold_bytes`]).
//! - The default-domain opset is [`DEFAULT_EXPORT_OPSET`] unless an op, attribute or
//!   element type needs a newer one (Gelu: 20; `block_size`, 4-bit integers: 21;
//!   FP4, `output_dtype` of DequantizeLinear: 23), or the caller asks for one. The IR
//!   version is the one of that opset's ONNX release, raised where an element type
//!   needs it (FP8: 9, 4-bit integers: 10, FP4: 11, E8M0: 12, FP6: 14). Custom ops add
//!   their domain at version 1.
//!
//! What ONNX cannot hold is refused rather than approximated: constants with an
//! [`Encoding`](smelt_ir::Encoding) other than `plain` fail with an error naming the
//! constant and its encoding (blockwise-integer weights are written as their codes and
//! scales with a DequantizeLinear node; other encodings have no ONNX form yet).
//! What is not kept: the names of `const` nodes (ONNX gives initializers and `Constant`
//! nodes no name the importer reads), and model metadata the graph does not hold (the
//! producer becomes `smelt`).

mod attr;
mod encoded;
mod external;
mod opset;
mod tensor;
mod types;

use std::collections::{BTreeSet, HashSet};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use prost::Message;
use smelt_ir::{Graph, NodeId, OpKind, ValueId};

use crate::error::{OnnxError, OnnxResult};
use crate::opset::{is_default_domain, MAX_OPSET};
use crate::proto::attribute_proto::AttributeType;
use crate::proto::{AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto};

use attr::attribute_proto;
use external::{choose, write_external, Slot};
use opset::{dtype_ir_version, dtype_need, ir_version_for_opset, op_need, Need};
use tensor::tensor_proto;
use types::value_info;

pub use external::PROTOBUF_LIMIT;
pub use opset::MIN_EXPORT_OPSET;

/// The default-domain opset exports target unless the graph needs a newer one.
pub const DEFAULT_EXPORT_OPSET: i64 = 21;

/// Default for [`ExportOptions::external_threshold_bytes`]: 1 MiB. Weight matrices go to
/// the data file, biases, norms and shape constants stay inline.
pub const DEFAULT_EXTERNAL_THRESHOLD: u64 = 1 << 20;

/// Default for [`ExportOptions::external_alignment`]: 4 KiB, the usual page size.
pub const DEFAULT_EXTERNAL_ALIGNMENT: u64 = 4096;

/// How to export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportOptions {
    /// The default-domain opset to write, in [`MIN_EXPORT_OPSET`]..=
    /// [`MAX_OPSET`]. `None`: [`DEFAULT_EXPORT_OPSET`], or newer where
    /// the graph needs it. An explicit opset that is too old for the graph is an error
    /// naming the node or value that needs more.
    pub opset: Option<i64>,
    /// [`export_model_file`] writes tensors whose data has at least this many bytes to
    /// the side file `<model stem>.data` instead of inline. `None` keeps tensors inline,
    /// except that a model too large for one protobuf (2 GiB) always moves its largest
    /// tensors out until it fits. Default: [`DEFAULT_EXTERNAL_THRESHOLD`].
    pub external_threshold_bytes: Option<u64>,
    /// In the side file, tensors of at least this many bytes start at a multiple of it
    /// (0 or 1: no padding). Default: [`DEFAULT_EXTERNAL_ALIGNMENT`].
    pub external_alignment: u64,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            opset: None,
            external_threshold_bytes: Some(DEFAULT_EXTERNAL_THRESHOLD),
            external_alignment: DEFAULT_EXTERNAL_ALIGNMENT,
        }
    }
}

/// What [`export_model_file`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSummary {
    /// The default-domain opset written.
    pub opset: i64,
    /// The ONNX IR version written.
    pub ir_version: i64,
    /// Operation nodes (`Constant` nodes not counted).
    pub nodes: usize,
    /// Initializers.
    pub initializers: usize,
    /// Constants written as `Constant` nodes.
    pub constant_nodes: usize,
    /// Tensors whose data went to the side file.
    pub external_tensors: usize,
    /// Size of the model file.
    pub model_bytes: u64,
    /// The side file, if any tensor went there.
    pub data_file: Option<PathBuf>,
    /// Size of the side file (0 without one).
    pub data_bytes: u64,
}

/// Export `graph` as an in-memory model with every tensor inline.
///
/// Fails if the graph cannot be expressed in ONNX (see the module documentation) or if
/// the model would exceed the 2 GiB a protobuf can hold; export such a model with
/// [`export_model_file`], which moves large tensors to a side file.
pub fn export_model(graph: &Graph, options: &ExportOptions) -> OnnxResult<ModelProto> {
    let built = build(graph, options)?;
    check_size(&built.model, graph)?;
    Ok(built.model)
}

/// [`export_model`], encoded as protobuf bytes (the contents of a `.onnx` file).
pub fn export_model_bytes(graph: &Graph, options: &ExportOptions) -> OnnxResult<Vec<u8>> {
    Ok(export_model(graph, options)?.encode_to_vec())
}

/// Export `graph` to the file `path`; tensors chosen by
/// [`ExportOptions::external_threshold_bytes`] go to `<stem of path>.data` in the same
/// folder (written only when some tensor goes there).
///
/// Both files are written under temporary names and renamed into place at the end, so
/// a failed export leaves no half-written model, and a model can be exported over the
/// file its weights are memory-mapped from.
pub fn export_model_file(
    graph: &Graph,
    path: &Path,
    options: &ExportOptions,
) -> OnnxResult<ExportSummary> {
    let Built {
        mut model,
        slots,
        opset,
        ir_version,
        nodes,
        initializers,
        constant_nodes,
    } = build(graph, options)?;
    let data_name = data_file_name(path)?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let data_path = dir.join(&data_name);

    let encoded_len = model.encoded_len() as u64;
    let gp = model.graph.get_or_insert_with(GraphProto::default);
    let chosen = choose(gp, &slots, options.external_threshold_bytes, encoded_len);
    let mut data_tmp = None;
    let mut data_bytes = 0;
    if !chosen.is_empty() {
        let tmp = temp_path(&data_path);
        let written = write_file(&tmp, &data_path, |w| {
            write_external(gp, &chosen, &data_name, options.external_alignment, w)
        });
        match written {
            Ok(n) => data_bytes = n,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        }
        data_tmp = Some(tmp);
    }
    let cleanup = |data_tmp: &Option<PathBuf>| {
        if let Some(t) = data_tmp {
            let _ = std::fs::remove_file(t);
        }
    };
    if let Err(e) = check_size(&model, graph) {
        cleanup(&data_tmp);
        return Err(e);
    }
    let bytes = model.encode_to_vec();
    let model_tmp = temp_path(path);
    let result = write_file(&model_tmp, path, |w| w.write_all(&bytes))
        .and_then(|()| match &data_tmp {
            Some(t) => rename(t, &data_path),
            None => Ok(()),
        })
        .and_then(|()| rename(&model_tmp, path));
    if let Err(e) = result {
        cleanup(&data_tmp);
        let _ = std::fs::remove_file(&model_tmp);
        return Err(e);
    }
    Ok(ExportSummary {
        opset,
        ir_version,
        nodes,
        initializers,
        constant_nodes,
        external_tensors: chosen.len(),
        model_bytes: bytes.len() as u64,
        data_file: data_tmp.map(|_| data_path),
        data_bytes,
    })
}

/// The model proto and where its tensors are.
struct Built {
    model: ModelProto,
    /// Every tensor that may go to the side file, in model order.
    slots: Vec<Slot>,
    opset: i64,
    ir_version: i64,
    nodes: usize,
    initializers: usize,
    constant_nodes: usize,
}

fn build(graph: &Graph, options: &ExportOptions) -> OnnxResult<Built> {
    // Encoded weights become their parts plus DequantizeLinear (see export/encoded.rs).
    let materialized = encoded::materialize(graph)?;
    let graph: &Graph = &materialized;
    let order = graph.topo_order().map_err(|source| OnnxError::Ir {
        context: format!("ordering the nodes of graph `{}`", graph.name),
        source,
    })?;
    check_constants(graph, &order)?;
    let (opset, ir_version) = versions(graph, &order, options)?;

    let mut gp = GraphProto {
        name: Some(graph.name.clone()),
        ..GraphProto::default()
    };
    for &v in graph.inputs() {
        gp.input
            .push(value_info(&graph.value(v).name, graph.ty(v))?);
    }
    let outputs: HashSet<ValueId> = graph.outputs().iter().copied().collect();
    let mut slots = vec![];
    let mut domains = BTreeSet::new();
    let mut seen_op = false;
    let mut nodes = 0;
    for id in order {
        let n = graph.node(id);
        if n.op == OpKind::Const {
            let Some(&v) = n.outputs.first() else {
                return Err(OnnxError::Node {
                    node: graph.node_label(id),
                    op: "Constant".into(),
                    msg: "the const node has no output".into(),
                });
            };
            let name = &graph.value(v).name;
            let t = graph.plain_constant(v).ok_or_else(|| OnnxError::Tensor {
                tensor: name.clone(),
                msg: "the const node has no plain constant in the weight store".into(),
            })?;
            if !seen_op {
                gp.initializer.push(tensor_proto(Some(name), t, name)?);
                slots.push(Slot::Initializer(gp.initializer.len() - 1));
            } else {
                let value = AttributeProto {
                    name: Some("value".into()),
                    r#type: Some(AttributeType::Tensor as i32),
                    t: Some(tensor_proto(None, t, name)?),
                    ..AttributeProto::default()
                };
                gp.node.push(NodeProto {
                    output: vec![name.clone()],
                    op_type: Some("Constant".into()),
                    attribute: vec![value],
                    ..NodeProto::default()
                });
                slots.push(Slot::ConstantNode(gp.node.len() - 1));
            }
            continue;
        }
        seen_op = true;
        nodes += 1;
        gp.node.push(node_proto(graph, id, &mut domains)?);
        for &o in &n.outputs {
            if !outputs.contains(&o) {
                gp.value_info
                    .push(value_info(&graph.value(o).name, graph.ty(o))?);
            }
        }
    }
    for &v in graph.outputs() {
        gp.output
            .push(value_info(&graph.value(v).name, graph.ty(v))?);
    }

    let mut opset_import = vec![OperatorSetIdProto {
        domain: Some(String::new()),
        version: Some(opset),
    }];
    opset_import.extend(domains.into_iter().map(|d| OperatorSetIdProto {
        domain: Some(d),
        version: Some(1),
    }));
    let initializers = gp.initializer.len();
    let constant_nodes = slots.len() - initializers;
    let model = ModelProto {
        ir_version: Some(ir_version),
        opset_import,
        producer_name: Some("smelt".into()),
        producer_version: Some(env!("CARGO_PKG_VERSION").into()),
        graph: Some(gp),
        ..ModelProto::default()
    };
    Ok(Built {
        model,
        slots,
        opset,
        ir_version,
        nodes,
        initializers,
        constant_nodes,
    })
}

/// One operation node; a custom op's domain is added to `domains`.
fn node_proto(graph: &Graph, id: NodeId, domains: &mut BTreeSet<String>) -> OnnxResult<NodeProto> {
    let n = graph.node(id);
    let label = graph.node_label(id);
    let (domain, op_type) = match &n.op {
        OpKind::Custom { domain, name } if !is_default_domain(domain) => {
            domains.insert(domain.clone());
            (Some(domain.clone()), name.clone())
        }
        op => (None, op.onnx_name().to_string()),
    };
    let attribute = n
        .attrs
        .iter()
        .map(|(k, a)| attribute_proto(k, a, &label))
        .collect::<OnnxResult<_>>()?;
    Ok(NodeProto {
        input: n
            .inputs
            .iter()
            .map(|i| i.map(|v| graph.value(v).name.clone()).unwrap_or_default())
            .collect(),
        output: n
            .outputs
            .iter()
            .map(|&o| graph.value(o).name.clone())
            .collect(),
        name: (!n.name.is_empty()).then(|| n.name.clone()),
        op_type: Some(op_type),
        domain,
        attribute,
        ..NodeProto::default()
    })
}

/// Every constant must be plain: ONNX has no form for smelt's encodings yet, and
/// writing the stored parts as if they were the weight would be silently wrong.
fn check_constants(graph: &Graph, order: &[NodeId]) -> OnnxResult<()> {
    for &id in order {
        let n = graph.node(id);
        if n.op != OpKind::Const {
            continue;
        }
        let Some(&v) = n.outputs.first() else {
            return Err(OnnxError::Node {
                node: graph.node_label(id),
                op: "Constant".into(),
                msg: "the const node has no output".into(),
            });
        };
        let name = &graph.value(v).name;
        let c = graph.constant(v).ok_or_else(|| OnnxError::Tensor {
            tensor: name.clone(),
            msg: "the const node has no constant in the weight store".into(),
        })?;
        if !c.encoding().is_plain() {
            return Err(OnnxError::Tensor {
                tensor: name.clone(),
                msg: format!(
                    "constant {}{:?} has encoding `{}`, which cannot be exported to ONNX: \
                     only plain constants can be exported",
                    c.dtype(),
                    c.shape(),
                    c.encoding()
                ),
            });
        }
    }
    Ok(())
}

/// The default-domain opset and IR version to write.
fn versions(graph: &Graph, order: &[NodeId], options: &ExportOptions) -> OnnxResult<(i64, i64)> {
    let mut need = Need {
        opset: MIN_EXPORT_OPSET,
        why: "reductions take their axes as an input".into(),
    };
    let mut ir = 0;
    let see_value = |v: ValueId, need: &mut Need, ir: &mut i64| {
        let d = graph.value(v);
        need.raise(dtype_need(d.ty.dtype, &d.name));
        *ir = (*ir).max(dtype_ir_version(d.ty.dtype));
    };
    for &v in graph.inputs() {
        see_value(v, &mut need, &mut ir);
    }
    for &id in order {
        let n = graph.node(id);
        for &o in &n.outputs {
            see_value(o, &mut need, &mut ir);
        }
        if n.op != OpKind::Const {
            need.raise(op_need(&n.op, &n.attrs, &graph.node_label(id)));
        }
        // Floored Mod (fmod = 0) on floats exists from opset 28.
        let float_in = n
            .inputs
            .first()
            .copied()
            .flatten()
            .is_some_and(|v| graph.ty(v).dtype.is_float());
        if n.op == OpKind::Mod && n.attrs.int_or("fmod", 0) == 0 && float_in {
            need.raise(Some(Need {
                opset: 28,
                why: format!(
                    "node `{}` (Mod) takes a floored float modulo",
                    graph.node_label(id)
                ),
            }));
        }
        for (_, a) in n.attrs.iter() {
            if let smelt_ir::Attr::Tensor(t) = a {
                ir = ir.max(dtype_ir_version(t.dtype()));
            }
        }
    }
    let opset = match options.opset {
        None => DEFAULT_EXPORT_OPSET.max(need.opset),
        Some(v) if !(MIN_EXPORT_OPSET..=MAX_OPSET).contains(&v) => {
            return Err(OnnxError::Opset(format!(
                "cannot export at default-domain opset {v} (supported: {MIN_EXPORT_OPSET}..={MAX_OPSET})"
            )))
        }
        Some(v) if v < need.opset => {
            return Err(OnnxError::Opset(format!(
                "cannot export at default-domain opset {v}: {}, which needs opset {}",
                need.why, need.opset
            )))
        }
        Some(v) => v,
    };
    Ok((opset, ir.max(ir_version_for_opset(opset))))
}

fn check_size(model: &ModelProto, graph: &Graph) -> OnnxResult<()> {
    let len = model.encoded_len() as u64;
    if len > PROTOBUF_LIMIT {
        return Err(OnnxError::Ir {
            context: format!("exporting graph `{}`", graph.name),
            source: smelt_ir::IrError::Graph(format!(
                "the model takes {len} bytes inline, more than the {PROTOBUF_LIMIT} a protobuf \
                 can hold; export it to a file so that large tensors go to external data"
            )),
        });
    }
    Ok(())
}

/// `<stem>.data`, or `<file name>.data` when that would be the model file itself.
fn data_file_name(path: &Path) -> OnnxResult<String> {
    let file_name = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .ok_or_else(|| OnnxError::Io {
            path: path.to_path_buf(),
            source: io::Error::new(io::ErrorKind::InvalidInput, "not a file name"),
        })?;
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| file_name.clone());
    let name = format!("{stem}.data");
    Ok(if name == file_name {
        format!("{file_name}.data")
    } else {
        name
    })
}

/// A temporary name next to `path`, unique to this process.
fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

/// Create `tmp` and fill it with `fill`; errors name `target`, the file the user asked
/// for.
fn write_file<T>(
    tmp: &Path,
    target: &Path,
    fill: impl FnOnce(&mut BufWriter<File>) -> io::Result<T>,
) -> OnnxResult<T> {
    let io = |source| OnnxError::Io {
        path: target.to_path_buf(),
        source,
    };
    let mut w = BufWriter::new(File::create(tmp).map_err(io)?);
    let r = fill(&mut w).map_err(io)?;
    w.into_inner()
        .map_err(|e| io(e.into_error()))?
        .sync_all()
        .map_err(io)?;
    Ok(r)
}

fn rename(from: &Path, to: &Path) -> OnnxResult<()> {
    std::fs::rename(from, to).map_err(|source| OnnxError::Io {
        path: to.to_path_buf(),
        source,
    })
}
