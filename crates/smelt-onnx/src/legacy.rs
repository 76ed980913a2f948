//! Old op forms → the forms the IR speaks.
//!
//! smelt's ops follow the newest ONNX opset. A model written against an older opset may
//! use an op whose signature or meaning has changed since: an attribute that became an
//! input (`axes`, `split`, `pads`, `k`, Clip's `min`/`max`, Slice's `starts`/`ends`),
//! legacy broadcasting (`broadcast`/`axis` before opset 7), Softmax's 2-D coercion
//! before opset 13, or an op that was renamed (Upsample → Resize, Scatter →
//! ScatterElements). [`upgrade`] rewrites every such node into the newest form with the
//! same meaning, adding small constants and, where needed, helper nodes.
//!
//! [`FORM_SINCE`] lists, for every default-domain op whose old versions differ in more
//! than new attributes with meaning-preserving defaults, the opset from which its current
//! form applies. A node below that opset either has a conversion here or is refused with
//! the op and opset named: an old form is never imported with a changed meaning.
//! The table was derived from the operator schemas of onnx 1.23.2 (a version is
//! compatible when it only adds attributes, optional inputs or types), plus the changes
//! of meaning that leave the signature alone, found in the operator docs: Softmax,
//! LogSoftmax and Hardmax at 13, RoiAlign's coordinate mapping at 16, GroupNormalization's
//! per-channel scale at 21, PRelu's broadcasting at 7, Concat's default axis at 4.
//! Ops not listed kept a compatible form through all their versions; their legacy
//! `consumed_inputs` attribute (before opset 7), an optimisation hint, is dropped.

use smelt_ir::{Attr, Attrs, Constant, DType, Dim, OpKind, Tensor, ValueId};

use crate::import::Builder;
use crate::proto::NodeProto;

/// The opset from which each listed op has the form the IR speaks (see module docs).
const FORM_SINCE: &[(&str, i64)] = &[
    ("Add", 7),
    ("And", 7),
    ("BatchNormalization", 14),
    ("Cast", 6),
    ("Clip", 11),
    ("Concat", 4),
    ("DFT", 20),
    ("Div", 7),
    ("Dropout", 12),
    ("Equal", 7),
    ("GRU", 7),
    ("Gemm", 7),
    ("GlobalLpPool", 2),
    ("Greater", 7),
    ("GridSample", 20),
    ("GroupNormalization", 21),
    ("Hardmax", 13),
    ("LSTM", 7),
    ("Less", 7),
    ("LogSoftmax", 13),
    ("LpPool", 2),
    ("Mul", 7),
    ("Or", 7),
    ("PRelu", 7),
    ("Pad", 11),
    ("Pow", 7),
    ("RNN", 7),
    ("ReduceL1", 18),
    ("ReduceL2", 18),
    ("ReduceLogSum", 18),
    ("ReduceLogSumExp", 18),
    ("ReduceMax", 18),
    ("ReduceMean", 18),
    ("ReduceMin", 18),
    ("ReduceProd", 18),
    ("ReduceSum", 13),
    ("ReduceSumSquare", 18),
    ("Reshape", 5),
    ("Resize", 11),
    ("RoiAlign", 16),
    ("Scan", 9),
    ("Selu", 6),
    ("Slice", 10),
    ("Softmax", 13),
    ("Split", 13),
    ("Squeeze", 13),
    ("Sub", 7),
    ("Tile", 6),
    ("TopK", 10),
    ("Unsqueeze", 13),
    ("Xor", 7),
];

/// The opset from which `op_type` has its current form (1 when it always had it).
pub(crate) fn form_since(op_type: &str) -> i64 {
    FORM_SINCE
        .iter()
        .find(|(o, _)| *o == op_type)
        .map_or(1, |(_, v)| *v)
}

/// The op type an old op is imported as: Upsample becomes Resize and Scatter becomes
/// ScatterElements (at every opset that defines them); everything else keeps its name.
pub(crate) fn import_as(op_type: &str) -> &str {
    match op_type {
        "Upsample" => "Resize",
        "Scatter" => "ScatterElements",
        other => other,
    }
}

/// Rewrite the node `n` (op type `op_type`, already mapped to `op`, with its converted
/// `attrs` and resolved `inputs`) from the form of the model's opset into the IR's.
pub(crate) fn upgrade(
    b: &mut Builder<'_>,
    n: &NodeProto,
    label: &str,
    op: &mut OpKind,
    attrs: &mut Attrs,
    inputs: &mut Vec<Option<ValueId>>,
) -> Result<(), String> {
    let op_type = n.op_type.as_deref().unwrap_or_default();
    let opset = b.opset;
    // A legacy optimisation hint of the opset-1 forms, with no effect on the result.
    if opset < 7 {
        attrs.0.remove("consumed_inputs");
    }
    let mut cx = Cx {
        b,
        n,
        label,
        attrs,
        inputs,
    };
    match op_type {
        "Upsample" => return cx.upsample(op_type, opset),
        "Scatter" => return Ok(()),
        _ => {}
    }
    let since = form_since(op_type);
    if opset >= since {
        return Ok(());
    }
    let unsupported = |why: &str| {
        Err(format!(
            "the opset-{opset} form of {op_type} is not supported ({why}; its current form \
             dates from opset {since})"
        ))
    };
    match op_type {
        "Add" | "Sub" | "Mul" | "Div" | "Pow" | "And" | "Or" | "Xor" | "Equal" | "Less"
        | "Greater" => cx.legacy_broadcast(),
        "Softmax" | "LogSoftmax" | "Hardmax" => cx.coerced_2d(op),
        "Squeeze" | "Unsqueeze" | "ReduceSum" | "ReduceMean" | "ReduceMax" | "ReduceMin"
        | "ReduceProd" | "ReduceL1" | "ReduceL2" | "ReduceSumSquare" | "ReduceLogSumExp"
        | "ReduceLogSum" => cx.ints_attr_to_input("axes", 1, false),
        "Split" => cx.ints_attr_to_input("split", 1, false),
        "TopK" => {
            let k = cx
                .take_int("k")?
                .ok_or("attribute `k` is required at this opset")?;
            cx.push_input(1, "k", Tensor::from_vec(vec![1], vec![k]))
        }
        "Reshape" => cx.ints_attr_to_input("shape", 1, true),
        "Resize" => unsupported(
            "Resize-10's nearest rounding depends on the scale; no exact conversion is known",
        ),
        "Slice" => cx.slice_attrs(),
        "Clip" => cx.clip_attrs(),
        "Pad" => cx.pad_attrs(),
        "Cast" => cx.cast_to_name(),
        "Concat" => {
            // Before opset 4 the axis was optional, defaulting to 1.
            if cx.attrs.get("axis").is_none() {
                cx.attrs.set("axis", Attr::Int(1));
            }
            Ok(())
        }
        "Gemm" => {
            // C broadcasts to (M, N) from opset 7 on; before, `broadcast` = 1 asked for
            // the same and 0 required C to be (M, N) already.
            cx.attrs.0.remove("broadcast");
            Ok(())
        }
        "Dropout" => cx.dropout(opset),
        "BatchNormalization" => cx.batch_norm(opset),
        "PRelu" => cx.prelu_same_or_scalar(),
        "Tile" => cx.tile_with_axis(),
        "Selu" => {
            // Opset 1 rounded the defaults to four digits.
            for (name, v) in [("alpha", 1.6732f32), ("gamma", 1.0507)] {
                if cx.attrs.get(name).is_none() {
                    cx.attrs.set(name, Attr::Float(v));
                }
            }
            Ok(())
        }
        "LpPool" | "GlobalLpPool" => {
            // `p` was a float before opset 2; only whole values have an int form.
            let p = cx.take_float("p")?.unwrap_or(2.0);
            if p.fract() != 0.0 || !(1.0..=i64::MAX as f32).contains(&p) {
                return Err(format!(
                    "attribute `p` = {p} is not a positive whole number"
                ));
            }
            cx.attrs.set("p", Attr::Int(p as i64));
            Ok(())
        }
        "GridSample" => {
            // Opset 20 renamed the modes (bilinear → linear, bicubic → cubic).
            let mode = match cx.attrs.0.remove("mode") {
                None => "linear".to_string(),
                Some(Attr::Str(m)) => match m.as_str() {
                    "bilinear" => "linear".into(),
                    "bicubic" => "cubic".into(),
                    _ => m,
                },
                Some(_) => return Err("attribute `mode` must be a string".into()),
            };
            cx.attrs.set("mode", Attr::Str(mode));
            Ok(())
        }
        "RoiAlign" => {
            // Opset 16 added the mapping with default half_pixel; before, it was this.
            if cx.attrs.get("coordinate_transformation_mode").is_none() {
                cx.attrs.set(
                    "coordinate_transformation_mode",
                    Attr::Str("output_half_pixel".into()),
                );
            }
            Ok(())
        }
        "DFT" => {
            // Opset 20 moved `axis` (default 1) to input 2 (default -2).
            let axis = cx.take_int("axis")?.unwrap_or(1);
            cx.push_input(2, "axis", Ok(Tensor::scalar(axis)))
        }
        "RNN" | "GRU" | "LSTM" => {
            // Before opset 7 the sequence output Y existed only with output_sequence = 1.
            let seq = cx.take_int("output_sequence")?.unwrap_or(0);
            if seq == 0 && cx.output_used(0) {
                return Err("output Y is used but `output_sequence` = 0".into());
            }
            Ok(())
        }
        "GroupNormalization" => cx.group_norm_per_channel(),
        _ => unsupported("smelt has no exact rewrite of it into the current form"),
    }
}

/// One node being rewritten.
struct Cx<'a, 'b, 'm> {
    b: &'a mut Builder<'m>,
    n: &'b NodeProto,
    label: &'b str,
    attrs: &'a mut Attrs,
    inputs: &'a mut Vec<Option<ValueId>>,
}

impl Cx<'_, '_, '_> {
    /// The base name for values made up for this node.
    fn base(&self, what: &str) -> String {
        match self.n.output.first() {
            Some(o) if !o.is_empty() => format!("{o}_{what}"),
            _ => format!("{}_{what}", self.label),
        }
    }

    /// A new constant named after the node.
    fn constant(&mut self, what: &str, t: Tensor) -> ValueId {
        let name = self.b.synthetic_name(&self.base(what));
        self.b.graph.add_const(&name, Constant::plain(t))
    }

    /// Put a new constant at input `slot`, which must not be taken yet (earlier free
    /// slots are left empty).
    fn push_input(
        &mut self,
        slot: usize,
        what: &str,
        t: Result<Tensor, smelt_ir::IrError>,
    ) -> Result<(), String> {
        let t = t.map_err(|e| e.to_string())?;
        if self.inputs.get(slot).is_some_and(Option::is_some) {
            return Err(format!(
                "has both the attribute `{what}` and an input at slot {slot}"
            ));
        }
        let v = self.constant(what, t);
        self.set_input(slot, v);
        Ok(())
    }

    /// Input `slot`, if the node has one there.
    fn input(&self, slot: usize) -> Option<ValueId> {
        self.inputs.get(slot).copied().flatten()
    }

    /// Put `v` at input `slot`, growing the input list with empty slots as needed.
    fn set_input(&mut self, slot: usize, v: ValueId) {
        if self.inputs.len() <= slot {
            self.inputs.resize(slot + 1, None);
        }
        if let Some(s) = self.inputs.get_mut(slot) {
            *s = Some(v);
        }
    }

    /// Remove an int attribute.
    fn take_int(&mut self, name: &str) -> Result<Option<i64>, String> {
        match self.attrs.0.remove(name) {
            None => Ok(None),
            Some(Attr::Int(i)) => Ok(Some(i)),
            Some(_) => Err(format!("attribute `{name}` must be an int")),
        }
    }

    /// Remove a float attribute.
    fn take_float(&mut self, name: &str) -> Result<Option<f32>, String> {
        match self.attrs.0.remove(name) {
            None => Ok(None),
            Some(Attr::Float(f)) => Ok(Some(f)),
            Some(_) => Err(format!("attribute `{name}` must be a float")),
        }
    }

    /// Remove an ints attribute.
    fn take_ints(&mut self, name: &str) -> Result<Option<Vec<i64>>, String> {
        match self.attrs.0.remove(name) {
            None => Ok(None),
            Some(Attr::Ints(v)) => Ok(Some(v)),
            Some(_) => Err(format!("attribute `{name}` must be a list of ints")),
        }
    }

    /// The static dims of input `slot`, if known.
    fn known_dims(&self, slot: usize) -> Option<Vec<u64>> {
        let v = (*self.inputs.get(slot)?)?;
        self.b.graph.ty(v).dims()?.iter().map(Dim::known).collect()
    }

    /// The rank of input `slot`, if known.
    fn rank(&self, slot: usize) -> Option<usize> {
        let v = (*self.inputs.get(slot)?)?;
        self.b.graph.ty(v).rank()
    }

    fn dtype(&self, slot: usize) -> Option<DType> {
        let v = (*self.inputs.get(slot)?)?;
        Some(self.b.graph.ty(v).dtype)
    }

    /// Input `slot`'s value if it is a plain constant.
    fn constant_input(&self, slot: usize) -> Option<&Tensor> {
        let v = (*self.inputs.get(slot)?)?;
        self.b.graph.plain_constant(v)
    }

    /// Whether output `slot` of the node is used.
    fn output_used(&self, slot: usize) -> bool {
        self.n.output.get(slot).is_some_and(|o| !o.is_empty())
    }

    /// An ints attribute that became an i64 input at `slot` (absent stays absent, unless
    /// `required`).
    fn ints_attr_to_input(
        &mut self,
        name: &str,
        slot: usize,
        required: bool,
    ) -> Result<(), String> {
        match self.take_ints(name)? {
            Some(v) => self.push_input(slot, name, Tensor::from_vec(vec![v.len()], v)),
            None if required && !matches!(self.inputs.get(slot), Some(Some(_))) => {
                Err(format!("attribute `{name}` is required at this opset"))
            }
            None => Ok(()),
        }
    }

    /// Before opset 7, binary ops broadcast only with `broadcast` = 1, B into A, B's
    /// dims lining up with A's from `axis` on (suffix matching without `axis`).
    /// Numpy broadcasting agrees once B has trailing 1s appended up to A's rank.
    fn legacy_broadcast(&mut self) -> Result<(), String> {
        let broadcast = self.take_int("broadcast")?.unwrap_or(0);
        let axis = self.take_int("axis")?;
        if broadcast == 0 {
            if axis.is_some() {
                return Err("attribute `axis` needs `broadcast` = 1".into());
            }
            // Without broadcasting both inputs must have one shape; where the types
            // show otherwise the old model had no meaning.
            if let (Some(a), Some(b)) = (self.dims_of(0), self.dims_of(1)) {
                let differ = a.len() != b.len()
                    || a.iter().zip(&b).any(
                        |(x, y)| matches!((x.known(), y.known()), (Some(p), Some(q)) if p != q),
                    );
                if differ {
                    return Err(
                        "inputs of different shapes need `broadcast` = 1 at this opset".into(),
                    );
                }
            }
            return Ok(());
        }
        let Some(axis) = axis else {
            return Ok(());
        };
        let (Some(ra), Some(rb)) = (self.rank(0), self.rank(1)) else {
            return Err("legacy broadcasting with `axis` needs inputs of known rank".into());
        };
        let (ra, rb) = (ra as i64, rb as i64);
        let axis = if axis < 0 { axis + ra } else { axis };
        // `axis` comes from the model: any i64, so the sum must not overflow.
        if axis < 0 || axis.checked_add(rb).is_none_or(|end| end > ra) {
            return Err(format!(
                "attribute `axis` = {axis} does not place a rank-{rb} B inside a rank-{ra} A"
            ));
        }
        let pad = ra - axis - rb;
        if pad == 0 {
            return Ok(());
        }
        let axes: Vec<i64> = (rb..rb + pad).collect();
        let axes = self.constant(
            "b_axes",
            Tensor::from_vec(vec![axes.len()], axes).map_err(|e| e.to_string())?,
        );
        let b_in = self.input(1);
        let base = self.base("b_aligned");
        let v = self.b.emit(
            &base,
            OpKind::Unsqueeze,
            Attrs::new(),
            vec![b_in, Some(axes)],
        )?;
        self.set_input(1, v);
        Ok(())
    }

    fn dims_of(&self, slot: usize) -> Option<Vec<Dim>> {
        let v = (*self.inputs.get(slot)?)?;
        self.b.graph.ty(v).dims().map(<[Dim]>::to_vec)
    }

    /// Softmax, LogSoftmax and Hardmax before opset 13 work on the input coerced to 2-D
    /// at `axis` (default 1): Flatten(axis), the op over the last axis, then Reshape back
    /// to the input's shape. Where `axis` is the last axis, that is the op itself.
    fn coerced_2d(&mut self, op: &mut OpKind) -> Result<(), String> {
        let axis = self.take_int("axis")?.unwrap_or(1);
        let rank = self
            .rank(0)
            .ok_or("the 2-D coercion of this opset needs an input of known rank")?
            as i64;
        let a = if axis < 0 { axis + rank } else { axis };
        if !(0..rank).contains(&a) {
            return Err(format!(
                "attribute `axis` = {axis} is out of range for rank {rank}"
            ));
        }
        let last = Attrs::new().with("axis", Attr::Int(-1));
        if a == rank - 1 {
            *self.attrs = last;
            return Ok(());
        }
        let x = self.input(0);
        let flat = self.b.emit(
            &self.base("2d"),
            OpKind::Flatten,
            Attrs::new().with("axis", Attr::Int(a)),
            vec![x],
        )?;
        let mut rest = std::mem::take(self.attrs);
        rest.set("axis", Attr::Int(-1));
        let y2d = self
            .b
            .emit(&self.base("2d_out"), op.clone(), rest, vec![Some(flat)])?;
        let shape = match self.known_dims(0) {
            Some(d) => {
                let d: Vec<i64> = d.iter().map(|&x| x as i64).collect();
                self.constant(
                    "shape",
                    Tensor::from_vec(vec![d.len()], d).map_err(|e| e.to_string())?,
                )
            }
            None => self
                .b
                .emit(&self.base("shape"), OpKind::Shape, Attrs::new(), vec![x])?,
        };
        *op = OpKind::Reshape;
        *self.inputs = vec![Some(y2d), Some(shape)];
        Ok(())
    }

    /// Slice before opset 10: `starts`, `ends` and optional `axes` attributes (no steps).
    fn slice_attrs(&mut self) -> Result<(), String> {
        let starts = self
            .take_ints("starts")?
            .ok_or("attribute `starts` is required at this opset")?;
        let ends = self
            .take_ints("ends")?
            .ok_or("attribute `ends` is required at this opset")?;
        let axes = self.take_ints("axes")?;
        if self.inputs.len() > 1 {
            return Err(format!(
                "takes 1 input at this opset, got {}",
                self.inputs.len()
            ));
        }
        self.push_input(1, "starts", Tensor::from_vec(vec![starts.len()], starts))?;
        self.push_input(2, "ends", Tensor::from_vec(vec![ends.len()], ends))?;
        if let Some(axes) = axes {
            self.push_input(3, "axes", Tensor::from_vec(vec![axes.len()], axes))?;
        }
        Ok(())
    }

    /// Clip before opset 11: `min` and `max` attributes; absent ones are no bound.
    fn clip_attrs(&mut self) -> Result<(), String> {
        let min = self.take_float("min")?;
        let max = self.take_float("max")?;
        if self.inputs.len() > 1 {
            return Err(format!(
                "takes 1 input at this opset, got {}",
                self.inputs.len()
            ));
        }
        let dtype = self.dtype(0).ok_or("input 0 is missing")?;
        if let Some(m) = min {
            self.push_input(1, "min", scalar_of(dtype, f64::from(m)))?;
        }
        if let Some(m) = max {
            self.push_input(2, "max", scalar_of(dtype, f64::from(m)))?;
        }
        Ok(())
    }

    /// Pad before opset 11: `pads` (`paddings` at opset 1) and `value` attributes.
    fn pad_attrs(&mut self) -> Result<(), String> {
        let pads = match self.take_ints("pads")? {
            Some(p) => p,
            None => self
                .take_ints("paddings")?
                .ok_or("attribute `pads` is required at this opset")?,
        };
        let value = self.take_float("value")?;
        if self.inputs.len() > 1 {
            return Err(format!(
                "takes 1 input at this opset, got {}",
                self.inputs.len()
            ));
        }
        self.push_input(1, "pads", Tensor::from_vec(vec![pads.len()], pads))?;
        if let Some(v) = value.filter(|v| *v != 0.0) {
            let dtype = self.dtype(0).ok_or("input 0 is missing")?;
            self.push_input(2, "value", scalar_of(dtype, f64::from(v)))?;
        }
        Ok(())
    }

    /// Cast before opset 6 names its target type (`to = "FLOAT"`).
    fn cast_to_name(&mut self) -> Result<(), String> {
        match self.attrs.get("to") {
            Some(Attr::Str(s)) => {
                let code = (1..=64)
                    .find(|&c| crate::dtype::onnx_type_name(c).eq_ignore_ascii_case(s))
                    .ok_or_else(|| format!("attribute `to` = `{s}` is not an ONNX type name"))?;
                self.attrs.set("to", Attr::Int(i64::from(code)));
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Dropout before opset 12: `ratio` is an attribute (input 1 from 12 on); before 7,
    /// `is_test` = 0 (the default) asks for training-mode dropout (input 2 from 12 on);
    /// before 10 the mask output had the data's type instead of bool.
    fn dropout(&mut self, opset: i64) -> Result<(), String> {
        let ratio = self.take_float("ratio")?;
        let is_test = if opset < 7 {
            self.take_int("is_test")?.unwrap_or(0) != 0
        } else {
            true
        };
        if opset < 10 && self.output_used(1) {
            return Err(format!(
                "the opset-{opset} mask output (of the data's type, not bool) is not supported"
            ));
        }
        if self.inputs.len() > 1 {
            return Err(format!(
                "takes 1 input at this opset, got {}",
                self.inputs.len()
            ));
        }
        if let Some(r) = ratio {
            self.push_input(1, "ratio", Ok(Tensor::scalar(r)))?;
        }
        if !is_test {
            self.push_input(2, "training_mode", Ok(Tensor::scalar(true)))?;
        }
        Ok(())
    }

    /// BatchNormalization before opset 14: test mode unless `is_test` = 0 (before 7) or,
    /// from 7, more outputs than Y are asked for; `spatial` = 0 (before 9) normalises
    /// per activation, which the IR's op cannot express.
    fn batch_norm(&mut self, opset: i64) -> Result<(), String> {
        if self.take_int("spatial")?.unwrap_or(1) != 1 {
            return Err("`spatial` = 0 (per-activation statistics) is not supported".into());
        }
        let training = if opset < 7 {
            self.take_int("is_test")?.unwrap_or(0) == 0
        } else {
            (1..self.n.output.len()).any(|i| self.output_used(i))
        };
        if training {
            if (3..self.n.output.len()).any(|i| self.output_used(i)) {
                return Err(format!(
                    "the opset-{opset} training outputs saved_mean / saved_var are not supported"
                ));
            }
            self.attrs.set("training_mode", Attr::Int(1));
        }
        Ok(())
    }

    /// PRelu before opset 7 had no defined broadcasting: accept a slope that has X's
    /// shape or a single element, for which every reading agrees.
    fn prelu_same_or_scalar(&mut self) -> Result<(), String> {
        let (x, s) = (self.dims_of(0), self.known_dims(1));
        let single = s.as_ref().is_some_and(|d| d.iter().product::<u64>() == 1);
        let same = matches!((&x, &s), (Some(x), Some(s)) if x.len() == s.len()
            && x.iter().zip(s).all(|(a, b)| a.known() == Some(*b)));
        if single || same {
            Ok(())
        } else {
            Err(
                "a slope that is neither one element nor X's shape has no defined \
                 broadcasting before opset 7"
                    .into(),
            )
        }
    }

    /// Tile before opset 6: scalar inputs `tiles` and `axis`, which must be constants,
    /// become the `repeats` vector.
    fn tile_with_axis(&mut self) -> Result<(), String> {
        let rank = self.rank(0).ok_or("input 0 must have a known rank")?;
        let scalar = |slot: usize, what: &str| -> Result<i64, String> {
            let t = self
                .constant_input(slot)
                .ok_or_else(|| format!("input `{what}` must be a constant at this opset"))?;
            match t.to_i64_vec().map_err(|e| e.to_string())?.as_slice() {
                [v] => Ok(*v),
                _ => Err(format!("input `{what}` must hold one value")),
            }
        };
        let tiles = scalar(1, "tiles")?;
        let axis = scalar(2, "axis")?;
        let a = if axis < 0 { axis + rank as i64 } else { axis };
        if !(0..rank as i64).contains(&a) {
            return Err(format!(
                "input `axis` = {axis} is out of range for rank {rank}"
            ));
        }
        let mut reps = vec![1i64; rank];
        if let Some(r) = usize::try_from(a).ok().and_then(|a| reps.get_mut(a)) {
            *r = tiles;
        }
        self.inputs.truncate(1);
        self.push_input(1, "repeats", Tensor::from_vec(vec![rank], reps))
    }

    /// GroupNormalization before opset 21 has one scale and bias per group; from 21 on
    /// per channel. Each becomes [G] → Unsqueeze [G, 1] → Expand [G, C / G] → [C].
    fn group_norm_per_channel(&mut self) -> Result<(), String> {
        let groups = match self.attrs.int("num_groups") {
            Some(g) if g > 0 => g,
            _ => return Err("attribute `num_groups` must be positive".into()),
        };
        let c = self
            .dims_of(0)
            .and_then(|d| d.get(1).and_then(Dim::known))
            .ok_or("the per-group scale needs a known channel count")? as i64;
        if c % groups != 0 {
            return Err(format!(
                "num_groups = {groups} does not divide {c} channels"
            ));
        }
        for (slot, what) in [(1, "scale"), (2, "bias")] {
            let Some(v) = self.inputs.get(slot).copied().flatten() else {
                continue;
            };
            let one = self.constant(
                &format!("{what}_axis"),
                Tensor::from_vec(vec![1], vec![1i64]).map_err(|e| e.to_string())?,
            );
            let col = self.b.emit(
                &self.base(&format!("{what}_col")),
                OpKind::Unsqueeze,
                Attrs::new(),
                vec![Some(v), Some(one)],
            )?;
            let wide = self.constant(
                &format!("{what}_wide"),
                Tensor::from_vec(vec![2], vec![groups, c / groups]).map_err(|e| e.to_string())?,
            );
            let rep = self.b.emit(
                &self.base(&format!("{what}_rep")),
                OpKind::Expand,
                Attrs::new(),
                vec![Some(col), Some(wide)],
            )?;
            let flat = self.constant(
                &format!("{what}_flat"),
                Tensor::from_vec(vec![1], vec![c]).map_err(|e| e.to_string())?,
            );
            let per_channel = self.b.emit(
                &self.base(&format!("{what}_per_channel")),
                OpKind::Reshape,
                Attrs::new(),
                vec![Some(rep), Some(flat)],
            )?;
            self.set_input(slot, per_channel);
        }
        Ok(())
    }

    /// Upsample (every opset) is Resize with the asymmetric coordinate mapping; nearest
    /// mode picks `floor(out / scale)`, which is what Upsample's repetition gives.
    fn upsample(&mut self, op_type: &str, opset: i64) -> Result<(), String> {
        let mode = match self.attrs.0.remove("mode") {
            None => "nearest".to_string(),
            Some(Attr::Str(s)) => s,
            Some(_) => return Err("attribute `mode` must be a string".into()),
        };
        let mode = match mode.as_str() {
            "nearest" => "nearest",
            "linear" | "bilinear" => "linear",
            m => return Err(format!("attribute `mode` = `{m}` is not supported")),
        };
        let scales: Option<Vec<f32>> = if opset < 7 {
            let h = self.take_float("height_scale")?;
            let w = self.take_float("width_scale")?;
            match (h, w) {
                (Some(h), Some(w)) => Some(vec![1.0, 1.0, h, w]),
                _ => return Err("attributes `height_scale` and `width_scale` are required".into()),
            }
        } else {
            match self.attrs.0.remove("scales") {
                None => None,
                Some(Attr::Floats(s)) => Some(s),
                Some(_) => return Err("attribute `scales` must be a list of floats".into()),
            }
        };
        if !self.attrs.0.is_empty() {
            let names: Vec<&str> = self.attrs.0.keys().map(String::as_str).collect();
            return Err(format!("{op_type}: unexpected attributes {names:?}"));
        }
        match scales {
            Some(s) => {
                if self.inputs.len() > 1 {
                    return Err(format!(
                        "takes 1 input at this opset, got {}",
                        self.inputs.len()
                    ));
                }
                self.inputs.truncate(1);
                self.push_input(2, "scales", Tensor::from_vec(vec![s.len()], s))?;
            }
            None => {
                let [x, Some(s)] = self.inputs.as_slice() else {
                    return Err("takes inputs X and scales".into());
                };
                *self.inputs = vec![*x, None, Some(*s)];
            }
        }
        self.attrs.set("mode", Attr::Str(mode.into()));
        self.attrs.set(
            "coordinate_transformation_mode",
            Attr::Str("asymmetric".into()),
        );
        if mode == "nearest" {
            self.attrs.set("nearest_mode", Attr::Str("floor".into()));
        }
        Ok(())
    }
}

/// A scalar constant of `dtype` holding `v` (rounded to the type).
fn scalar_of(dtype: DType, v: f64) -> Result<Tensor, smelt_ir::IrError> {
    Ok(match dtype {
        DType::F64 => Tensor::scalar(v),
        DType::F32 => Tensor::scalar(v as f32),
        DType::F16 => Tensor::scalar(half::f16::from_f64(v)),
        DType::BF16 => Tensor::scalar(half::bf16::from_f64(v)),
        DType::I64 => Tensor::scalar(v as i64),
        DType::I32 => Tensor::scalar(v as i32),
        DType::I16 => Tensor::scalar(v as i16),
        DType::I8 => Tensor::scalar(v as i8),
        DType::U64 => Tensor::scalar(v as u64),
        DType::U32 => Tensor::scalar(v as u32),
        DType::U16 => Tensor::scalar(v as u16),
        DType::U8 => Tensor::scalar(v as u8),
        DType::Bool => Tensor::scalar(v != 0.0),
        other => {
            return Err(smelt_ir::IrError::Graph(format!(
                "no scalar constant of {other} for an old attribute"
            )))
        }
    })
}
