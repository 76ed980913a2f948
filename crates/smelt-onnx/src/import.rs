//! ONNX model → [`Graph`].
//!
//! The model is decoded in one go from a [`Bytes`] buffer (for files: a memory mapping),
//! so initializer data stays a slice of the file. The graph is then built in ONNX order,
//! which the ONNX spec requires to be topological: graph inputs, initializers, then the
//! nodes one at a time. Each node's output types are inferred right after it is added
//! (and merged with any `value_info` / graph-output declaration), so every node sees
//! fully typed inputs.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use bytes::Bytes;
use prost::Message;
use smelt_ir::infer::{infer_node, merge_types};
use smelt_ir::{Attrs, Constant, DType, Graph, IrError, OpKind, Tensor, TensorType, ValueId};

use crate::attr::convert_attr;
use crate::error::{OnnxError, OnnxResult, UnsupportedOp};
use crate::external::ExternalFiles;
use crate::legacy;
use crate::limits::{check_model, Budget, ImportLimits};
use crate::mapping::map_file;
use crate::opset::{default_opset, is_default_domain};
use crate::proto::{GraphProto, ModelProto, NodeProto};
use crate::tensor::{decode_tensor, TensorSource};
use crate::types::declared_type;

/// An imported model: the graph plus the model metadata worth keeping.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The graph; its `name` is the ONNX graph's name.
    pub graph: Graph,
    /// The default-domain (`ai.onnx`) opset the model was written against.
    pub opset: i64,
    /// The ONNX IR version of the file.
    pub ir_version: i64,
    /// The producing tool (`producer_name`, e.g. `pytorch`).
    pub producer_name: String,
    /// The producing tool's version.
    pub producer_version: String,
}

/// Import the ONNX model at `path`. See [`import_model_bytes`] for what is accepted.
pub fn import_file(path: &Path) -> OnnxResult<Graph> {
    import_model_file(path).map(|m| m.graph)
}

/// Import an ONNX model held in memory. External data, if any, is resolved inside
/// `base_dir`; with `None` a model with external data is refused.
pub fn import_bytes(data: Bytes, base_dir: Option<&Path>) -> OnnxResult<Graph> {
    import_model_bytes(data, base_dir).map(|m| m.graph)
}

/// Like [`import_file`], also returning the model's metadata. The file is memory-mapped
/// and initializer data is not copied; external data is resolved next to the file.
pub fn import_model_file(path: &Path) -> OnnxResult<Imported> {
    import_model_file_with(path, &ImportOptions::default())
}

/// How lenient the importer is.
///
/// Resource limits for untrusted models (memory budget, node count, subgraph nesting)
/// are a separate [`ImportLimits`], passed to [`import_model_file_with_limits`] /
/// [`import_model_bytes_with_limits`]; every other entry point applies the defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// Import ops smelt does not know as [`OpKind::Custom`] nodes (typed from the model's
    /// `value_info` where it has them, unranked otherwise) instead of refusing the model.
    /// Such a graph can be inspected and printed but not run; `smelt inspect` uses this
    /// to list a model's unsupported ops.
    pub keep_unknown_ops: bool,
}

/// [`import_model_file`] with options (and the default [`ImportLimits`]).
pub fn import_model_file_with(path: &Path, options: &ImportOptions) -> OnnxResult<Imported> {
    import_model_file_with_limits(path, options, &ImportLimits::default())
}

/// [`import_model_file_with`] under explicit resource limits, for models from sources
/// that warrant tighter (or looser) bounds than the defaults.
pub fn import_model_file_with_limits(
    path: &Path,
    options: &ImportOptions,
    limits: &ImportLimits,
) -> OnnxResult<Imported> {
    let data = map_file(path)?;
    let base = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    import(data, Some(base), options, limits, Some(path))
}

/// Import an ONNX model held in memory, returning the graph and the model's metadata.
///
/// - The default-domain opset must be in [`MIN_OPSET`](crate::MIN_OPSET)..=
///   [`MAX_OPSET`](crate::MAX_OPSET); older op forms are rewritten to the IR's with the
///   same meaning (attributes that became inputs turn into constants, Softmax's 2-D
///   coercion before opset 13 becomes Flatten / Softmax / Reshape, Upsample becomes
///   Resize, ...), and an old form with no exact rewrite is refused with the node, op
///   and opset named. A model that imports no default-domain opset and uses ops of
///   other domains is refused for that op and its domain.
/// - Initializers and `Constant` nodes become constants named after their value. An
///   initializer that is also listed as a graph input (a default value the caller may
///   override in ONNX) becomes a constant and is not a graph input.
/// - Every node's op must be known to smelt; otherwise the error lists all unknown ones.
/// - Graph inputs and outputs must be tensors.
/// - The model must stay within the [`ImportLimits`] (the defaults here): memory budget,
///   node count and subgraph nesting, all checked before the work they bound.
pub fn import_model_bytes(data: Bytes, base_dir: Option<&Path>) -> OnnxResult<Imported> {
    import_model_bytes_with(data, base_dir, &ImportOptions::default())
}

/// [`import_model_bytes`] with options (and the default [`ImportLimits`]).
pub fn import_model_bytes_with(
    data: Bytes,
    base_dir: Option<&Path>,
    options: &ImportOptions,
) -> OnnxResult<Imported> {
    import(data, base_dir, options, &ImportLimits::default(), None)
}

/// [`import_model_bytes_with`] under explicit resource limits.
pub fn import_model_bytes_with_limits(
    data: Bytes,
    base_dir: Option<&Path>,
    options: &ImportOptions,
    limits: &ImportLimits,
) -> OnnxResult<Imported> {
    import(data, base_dir, options, limits, None)
}

/// The import proper; `file` names the model file in decode errors.
fn import(
    data: Bytes,
    base_dir: Option<&Path>,
    options: &ImportOptions,
    limits: &ImportLimits,
    file: Option<&Path>,
) -> OnnxResult<Imported> {
    // Decoding from `Bytes` makes `raw_data` fields slices of `data`, not copies.
    let model = ModelProto::decode(data).map_err(|source| match file {
        Some(path) => OnnxError::DecodeFile {
            path: path.to_path_buf(),
            source,
        },
        None => OnnxError::Decode(source),
    })?;
    // Node count and subgraph depth before anything walks the graph.
    check_model(&model, limits)?;
    if let Some(gp) = model.graph.as_ref() {
        foreign_domain_only(&model.opset_import, gp)?;
    }
    let opset = default_opset(&model.opset_import)?;
    let gp = model.graph.as_ref().ok_or(OnnxError::NoGraph)?;
    let unsupported = unsupported_ops(gp);
    if !unsupported.is_empty() && !options.keep_unknown_ops {
        return Err(OnnxError::UnsupportedOps(unsupported));
    }
    let mut builder = Builder::new(gp, opset, base_dir, limits)?;
    builder.keep_unknown_ops = options.keep_unknown_ops;
    let graph = builder.build()?;
    Ok(Imported {
        graph,
        opset,
        ir_version: model.ir_version.unwrap_or_default(),
        producer_name: model.producer_name.clone().unwrap_or_default(),
        producer_version: model.producer_version.clone().unwrap_or_default(),
    })
}

/// A model that imports no default-domain opset but uses ops of other domains (e.g.
/// `ai.onnx.ml`, `ai.onnx.preview.training`) is refused for its first such op, not for
/// the missing opset.
fn foreign_domain_only(
    imports: &[crate::proto::OperatorSetIdProto],
    gp: &GraphProto,
) -> OnnxResult<()> {
    if imports
        .iter()
        .any(|i| is_default_domain(i.domain.as_deref().unwrap_or_default()))
    {
        return Ok(());
    }
    let foreign = gp.node.iter().enumerate().find(|(_, n)| {
        let domain = n.domain.as_deref().unwrap_or_default();
        !is_default_domain(domain)
    });
    match foreign {
        Some((i, n)) => {
            let op = n.op_type.as_deref().unwrap_or_default();
            let domain = n.domain.as_deref().unwrap_or_default();
            Err(OnnxError::Node {
                node: node_label(i, n),
                op: op.to_string(),
                msg: format!("op `{op}` of domain `{domain}` is not supported"),
            })
        }
        None => Ok(()),
    }
}

/// Every node whose op smelt does not know, in model order.
fn unsupported_ops(gp: &GraphProto) -> Vec<UnsupportedOp> {
    gp.node
        .iter()
        .filter(|n| {
            let op = n.op_type.as_deref().unwrap_or_default();
            !is_default_domain(n.domain.as_deref().unwrap_or_default())
                || OpKind::from_onnx(legacy::import_as(op)).is_none()
        })
        .map(|n| UnsupportedOp {
            op_type: n.op_type.clone().unwrap_or_default(),
            domain: n.domain.clone().unwrap_or_default(),
            node: n.name.clone().unwrap_or_default(),
        })
        .collect()
}

/// Graph construction state.
pub(crate) struct Builder<'m> {
    gp: &'m GraphProto,
    pub(crate) opset: i64,
    pub(crate) graph: Graph,
    /// External data and the memory budget.
    src: TensorSource,
    /// ONNX value name → IR value.
    values: HashMap<&'m str, ValueId>,
    /// Declared types of values (value_info and graph outputs), for merging.
    declared: HashMap<&'m str, TensorType>,
    /// Every name the model uses, so synthesized constants never take one.
    model_names: HashSet<&'m str>,
    /// See [`ImportOptions::keep_unknown_ops`].
    keep_unknown_ops: bool,
}

impl<'m> Builder<'m> {
    fn new(
        gp: &'m GraphProto,
        opset: i64,
        base_dir: Option<&Path>,
        limits: &ImportLimits,
    ) -> OnnxResult<Builder<'m>> {
        let mut declared = HashMap::new();
        for vi in &gp.value_info {
            // value_info is an optional hint about intermediate values; an entry smelt
            // cannot read (a sequence-typed value, an exotic dtype) gives no hint rather
            // than failing a model whose nodes may still be fine.
            match (vi.name.as_deref(), declared_type(vi)) {
                (Some(name), Ok(Some(ty))) => {
                    declared.insert(name, ty);
                }
                (_, Err(e)) => tracing::debug!("ignoring value_info entry: {e}"),
                _ => {}
            }
        }
        for vi in &gp.output {
            // Graph outputs, unlike value_info, must be tensors.
            if let (Some(name), Some(ty)) = (vi.name.as_deref(), declared_type(vi)?) {
                declared.insert(name, ty);
            }
        }
        let model_names = gp
            .input
            .iter()
            .filter_map(|v| v.name.as_deref())
            .chain(gp.initializer.iter().filter_map(|t| t.name.as_deref()))
            .chain(
                gp.node
                    .iter()
                    .flat_map(|n| n.output.iter().map(String::as_str)),
            )
            .collect();
        Ok(Builder {
            gp,
            opset,
            graph: Graph::new(gp.name.as_deref().unwrap_or_default()),
            src: TensorSource {
                ext: ExternalFiles::new(base_dir),
                budget: Budget::new(limits.max_memory_bytes),
            },
            values: HashMap::new(),
            declared,
            model_names,
            keep_unknown_ops: false,
        })
    }

    fn build(mut self) -> OnnxResult<Graph> {
        if let Some(s) = self.gp.sparse_initializer.first() {
            let name = s
                .values
                .as_ref()
                .and_then(|v| v.name.clone())
                .unwrap_or_default();
            return Err(OnnxError::Tensor {
                tensor: name,
                msg: "sparse initializers are not supported".into(),
            });
        }
        self.add_inputs()?;
        self.add_initializers()?;
        for (i, n) in self.gp.node.iter().enumerate() {
            self.add_node(i, n)?;
        }
        self.set_outputs()?;
        Ok(self.graph)
    }

    /// Record `name` as defined by `v`; ONNX values are SSA, so a second definition is
    /// an error (the caller words it).
    fn define(&mut self, name: &'m str, v: ValueId) -> Result<(), String> {
        if name.is_empty() {
            return Err("a value has an empty name".into());
        }
        if self.values.insert(name, v).is_some() {
            return Err(format!("value `{name}` is defined more than once"));
        }
        Ok(())
    }

    fn add_inputs(&mut self) -> OnnxResult<()> {
        let inits: HashSet<&str> = self
            .gp
            .initializer
            .iter()
            .filter_map(|t| t.name.as_deref())
            .collect();
        for vi in &self.gp.input {
            let name = vi.name.as_deref().unwrap_or_default();
            if inits.contains(name) {
                continue;
            }
            let bad = |msg: String| OnnxError::Value {
                value: name.to_string(),
                msg,
            };
            let ty = declared_type(vi)?.ok_or_else(|| bad("graph input has no type".into()))?;
            self.src
                .budget
                .check_value(&ty)
                .map_err(|msg| OnnxError::Limit {
                    context: format!("graph input `{name}`"),
                    msg,
                })?;
            let v = self.graph.add_input(name, ty);
            self.define(name, v).map_err(bad)?;
        }
        Ok(())
    }

    fn add_initializers(&mut self) -> OnnxResult<()> {
        for (i, t) in self.gp.initializer.iter().enumerate() {
            let name = t.name.as_deref().unwrap_or_default();
            let label = format!("initializer #{i}");
            let tensor = decode_tensor(t, &label, &mut self.src)?;
            let v = self.graph.add_const(name, Constant::plain(tensor));
            self.define(name, v).map_err(|msg| OnnxError::Tensor {
                tensor: if name.is_empty() {
                    label
                } else {
                    name.to_string()
                },
                msg,
            })?;
        }
        Ok(())
    }

    fn add_node(&mut self, index: usize, n: &'m NodeProto) -> OnnxResult<()> {
        let op_type = n.op_type.as_deref().unwrap_or_default();
        let label = node_label(index, n);
        let bad = |msg: String| OnnxError::Node {
            node: label.clone(),
            op: op_type.to_string(),
            msg,
        };
        if op_type == "Constant" {
            return self.add_constant_node(n, &label);
        }
        let domain = n.domain.as_deref().unwrap_or_default();
        let known = if is_default_domain(domain) {
            OpKind::from_onnx(legacy::import_as(op_type))
        } else {
            None
        };
        let mut op = match known {
            Some(op) => op,
            // `unsupported_ops` refused unknown ops unless they are to be kept.
            None if self.keep_unknown_ops => OpKind::Custom {
                domain: domain.to_string(),
                name: op_type.to_string(),
            },
            None => return Err(bad("unsupported op".into())),
        };
        let lenient = matches!(op, OpKind::Custom { .. });

        let mut inputs = Vec::with_capacity(n.input.len());
        for name in &n.input {
            if name.is_empty() {
                inputs.push(None);
                continue;
            }
            let v = self
                .values
                .get(name.as_str())
                .copied()
                .ok_or_else(|| bad(self.undefined_input(index, name)))?;
            inputs.push(Some(v));
        }

        let mut attrs = Attrs::new();
        for a in &n.attribute {
            let (name, value) = convert_attr(a, &label, &mut self.src)?;
            attrs.set(&name, value);
        }
        if !lenient {
            // Older op forms become the IR's (may add constants and helper nodes).
            legacy::upgrade(self, n, &label, &mut op, &mut attrs, &mut inputs).map_err(bad)?;
        }

        // Omitted trailing optional outputs are dropped; an omitted output before a used
        // one still occupies its slot, under a fresh name no ONNX value refers to.
        let used = n
            .output
            .iter()
            .rposition(|o| !o.is_empty())
            .map_or(0, |p| p + 1);
        let outs = n.output.get(..used).unwrap_or_default();
        // Output types are placeholders until inference below fills them in.
        let placeholder = TensorType::unranked(DType::F32);
        let out_types: Vec<(String, TensorType)> = outs
            .iter()
            .enumerate()
            .map(|(slot, o)| {
                let ty = self
                    .declared
                    .get(o.as_str())
                    .cloned()
                    .unwrap_or_else(|| placeholder.clone());
                let name = if o.is_empty() {
                    self.synthetic_name(&format!("{label}_unused_{slot}"))
                } else {
                    o.clone()
                };
                (name, ty)
            })
            .collect();
        let id = self
            .graph
            .add_node(
                n.name.as_deref().unwrap_or_default(),
                op,
                attrs,
                inputs,
                out_types,
            )
            .map_err(|e| bad(e.to_string()))?;
        let out_values = self.graph.node(id).outputs.clone();
        for (o, &v) in outs.iter().zip(&out_values) {
            if !o.is_empty() {
                self.define(o, v).map_err(bad)?;
            }
        }

        let inferred = match infer_node(&self.graph, id) {
            Ok(t) => t,
            // Unknown ops (kept for inspection) and whatever reads their untyped results
            // keep their declared or placeholder types.
            Err(_) if lenient || self.keep_unknown_ops => {
                return self.check_outputs(&label, op_type, outs, &out_values)
            }
            Err(IrError::Infer { msg, .. }) => return Err(bad(format!("type inference: {msg}"))),
            Err(other) => return Err(bad(other.to_string())),
        };
        if inferred.len() < out_values.len() {
            return Err(bad(format!(
                "op yields {} outputs, node has {}",
                inferred.len(),
                out_values.len()
            )));
        }
        for ((o, &v), ty) in outs.iter().zip(&out_values).zip(inferred) {
            let ty = match self.declared.get(o.as_str()) {
                Some(decl) => {
                    merge_types(&ty, decl).map_err(|msg| bad(format!("output `{o}`: {msg}")))?
                }
                None => ty,
            };
            self.graph.set_type(v, ty);
        }
        self.check_outputs(&label, op_type, outs, &out_values)
    }

    /// Refuse a node whose output types (inferred or declared) need more than the memory
    /// budget: later nodes and the compiler never see a shape that cannot exist.
    fn check_outputs(
        &self,
        label: &str,
        op_type: &str,
        names: &[String],
        outs: &[ValueId],
    ) -> OnnxResult<()> {
        for (name, &v) in names.iter().zip(outs) {
            self.src
                .budget
                .check_value(self.graph.ty(v))
                .map_err(|msg| OnnxError::Limit {
                    context: format!("node `{label}` ({op_type}), output `{name}`"),
                    msg,
                })?;
        }
        Ok(())
    }

    /// Why input `name` of node `index` is not defined yet: missing from the model,
    /// produced by a later node (out of order), or produced by a node that depends on
    /// this one (a cycle, which no order can fix).
    fn undefined_input(&self, index: usize, name: &str) -> String {
        let producers: HashMap<&str, usize> = self
            .gp
            .node
            .iter()
            .enumerate()
            .flat_map(|(i, n)| n.output.iter().map(move |o| (o.as_str(), i)))
            .filter(|(o, _)| !o.is_empty())
            .collect();
        let Some(&producer) = producers.get(name) else {
            return format!(
                "input `{name}` is not defined by a graph input, an initializer or any node"
            );
        };
        match dependency_path(self.gp, &producers, producer, index) {
            Some(path) => {
                let labels: Vec<String> = path
                    .iter()
                    .chain(std::iter::once(&index))
                    .filter_map(|&i| {
                        self.gp
                            .node
                            .get(i)
                            .map(|n| format!("`{}`", node_label(i, n)))
                    })
                    .collect();
                format!(
                    "input `{name}` depends on this node's own output: the graph has a cycle \
                     ({}), which no node order can satisfy",
                    labels.join(" -> ")
                )
            }
            None => format!(
                "input `{name}` is produced by a later node `{}` \
                 (nodes must be in topological order)",
                self.gp
                    .node
                    .get(producer)
                    .map_or_else(String::new, |n| node_label(producer, n))
            ),
        }
    }

    /// Add a helper node with one output (named after `base`) that an older op form
    /// needs, infer its type and return its output.
    pub(crate) fn emit(
        &mut self,
        base: &str,
        op: OpKind,
        attrs: Attrs,
        inputs: Vec<Option<ValueId>>,
    ) -> Result<ValueId, String> {
        let name = self.synthetic_name(base);
        let id = self
            .graph
            .add_node(
                "",
                op,
                attrs,
                inputs,
                vec![(name, TensorType::unranked(DType::F32))],
            )
            .map_err(|e| e.to_string())?;
        let Some(&out) = self.graph.node(id).outputs.first() else {
            return Err(format!("helper `{base}` has no output"));
        };
        match infer_node(&self.graph, id) {
            Ok(types) => match types.into_iter().next() {
                Some(ty) => self.graph.set_type(out, ty),
                None => return Err(format!("helper `{base}` yields no output")),
            },
            Err(IrError::Infer { msg, .. }) => {
                return Err(format!("type inference of helper `{base}`: {msg}"))
            }
            Err(other) => return Err(other.to_string()),
        }
        Ok(out)
    }

    /// A name for a value the importer makes up, never one the model uses later.
    pub(crate) fn synthetic_name(&self, base: &str) -> String {
        let mut name = base.to_string();
        let mut i = 1;
        while self.model_names.contains(name.as_str()) {
            name = format!("{base}_{i}");
            i += 1;
        }
        name
    }

    /// A `Constant` node becomes a constant named after its output.
    fn add_constant_node(&mut self, n: &'m NodeProto, label: &str) -> OnnxResult<()> {
        let bad = |msg: String| OnnxError::Node {
            node: label.to_string(),
            op: "Constant".into(),
            msg,
        };
        let [out] = n.output.as_slice() else {
            return Err(bad(format!(
                "must have exactly one output, has {}",
                n.output.len()
            )));
        };
        let [a] = n.attribute.as_slice() else {
            return Err(bad(format!(
                "must have exactly one attribute, has {}",
                n.attribute.len()
            )));
        };
        let attr_name = a.name.as_deref().unwrap_or_default();
        if attr_name == "sparse_value" {
            return Err(OnnxError::Attribute {
                node: label.to_string(),
                attr: attr_name.to_string(),
                msg: "sparse constants are not supported".into(),
            });
        }
        let (_, value) = convert_attr(a, label, &mut self.src)?;
        let tensor = constant_tensor(attr_name, value).map_err(|msg| OnnxError::Attribute {
            node: label.to_string(),
            attr: attr_name.to_string(),
            msg,
        })?;
        let v = self.graph.add_const(out, Constant::plain(tensor));
        self.define(out, v).map_err(bad)
    }

    fn set_outputs(&mut self) -> OnnxResult<()> {
        let mut outputs = Vec::with_capacity(self.gp.output.len());
        for vi in &self.gp.output {
            let name = vi.name.as_deref().unwrap_or_default();
            let bad = |msg: String| OnnxError::Value {
                value: name.to_string(),
                msg,
            };
            let v = *self
                .values
                .get(name)
                .ok_or_else(|| bad("graph output is not defined by the graph".into()))?;
            if let Some(decl) = self.declared.get(name) {
                let merged = merge_types(self.graph.ty(v), decl).map_err(bad)?;
                self.graph.set_type(v, merged);
            }
            outputs.push(v);
        }
        self.graph.set_outputs(outputs);
        Ok(())
    }
}

/// The tensor a `Constant` node's single attribute describes.
fn constant_tensor(attr: &str, value: smelt_ir::Attr) -> Result<Tensor, String> {
    use smelt_ir::Attr;
    let r = match (attr, value) {
        ("value", Attr::Tensor(t)) => return Ok(t),
        ("value_float", Attr::Float(f)) => Ok(Tensor::scalar(f)),
        ("value_floats", Attr::Floats(f)) => Tensor::from_vec(vec![f.len()], f),
        ("value_int", Attr::Int(i)) => Ok(Tensor::scalar(i)),
        ("value_ints", Attr::Ints(i)) => Tensor::from_vec(vec![i.len()], i),
        ("value_string", Attr::Str(s)) => Tensor::from_strings(vec![], vec![s]),
        ("value_strings", Attr::Strs(s)) => Tensor::from_strings(vec![s.len()], s),
        (name, v) => {
            return Err(format!(
                "`{name}` with a {} value is not a Constant attribute",
                attr_kind(&v)
            ))
        }
    };
    r.map_err(|e| e.to_string())
}

fn attr_kind(a: &smelt_ir::Attr) -> &'static str {
    use smelt_ir::Attr;
    match a {
        Attr::Int(_) => "int",
        Attr::Float(_) => "float",
        Attr::Str(_) => "string",
        Attr::Ints(_) => "ints",
        Attr::Floats(_) => "floats",
        Attr::Strs(_) => "strings",
        Attr::Tensor(_) => "tensor",
    }
}

/// A chain of nodes `target, ..., from` in which each node feeds the next,
/// when node `from` depends (through its inputs) on node `target`; `None` otherwise.
/// Iterative with a visited set, so it is linear in the graph and cannot overflow the
/// stack on a long chain.
fn dependency_path(
    gp: &GraphProto,
    producers: &HashMap<&str, usize>,
    from: usize,
    target: usize,
) -> Option<Vec<usize>> {
    // `parent[j] = k`: node j was reached as a producer of one of node k's inputs.
    let mut parent: HashMap<usize, usize> = HashMap::new();
    let mut seen: HashSet<usize> = HashSet::from([from]);
    let mut stack = vec![from];
    while let Some(k) = stack.pop() {
        if k == target {
            let mut path = vec![k];
            let mut at = k;
            while let Some(&p) = parent.get(&at) {
                path.push(p);
                at = p;
            }
            // Data flows target -> ... -> from, and `from` feeds `target` again.
            return Some(path);
        }
        let inputs = gp
            .node
            .get(k)
            .map(|n| n.input.as_slice())
            .unwrap_or_default();
        for i in inputs {
            if let Some(&j) = producers.get(i.as_str()) {
                if seen.insert(j) {
                    parent.insert(j, k);
                    stack.push(j);
                }
            }
        }
    }
    None
}

/// A node's name for errors: its ONNX name, else its op type and first output.
fn node_label(index: usize, n: &NodeProto) -> String {
    match (n.name.as_deref(), n.output.first()) {
        (Some(name), _) if !name.is_empty() => name.to_string(),
        (_, Some(o)) if !o.is_empty() => {
            format!("{} -> {o}", n.op_type.as_deref().unwrap_or_default())
        }
        _ => format!("#{index} ({})", n.op_type.as_deref().unwrap_or_default()),
    }
}
