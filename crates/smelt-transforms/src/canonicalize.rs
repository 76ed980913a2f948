//! Canonical form: no-op nodes removed, decomposed GELU/LayerNorm/Softmax recognised.

use smelt_ir::{
    Graph, IrError, IrResult, NodeId, OpKind, Pass, PassContext, PassReport, Tensor, ValueId,
};
use smelt_rewrite::{shipped, Rewriter};

/// Brings a graph to the form later passes expect, whatever exporter produced it.
///
/// 1. Removes nodes that return their input unchanged: `Identity`, inference-mode
///    `Dropout`, `Cast` to the same dtype, `Reshape`/`Expand`/`Flatten` to the same known
///    shape, `Transpose` with the identity permutation, single-input
///    `Concat`/`Sum`/`Max`/`Min`/`Mean`, `x + 0`, `x - 0`, `x * 1`, `x / 1` (when
///    broadcasting does not change the shape).
/// 2. With `recognize` on (the default), runs the `recognize` rule set of smelt-rewrite so
///    that decomposed GELU (erf and tanh forms), LayerNorm and Softmax become single ops.
pub struct Canonicalize {
    /// Also run the recognition rules (step 2).
    pub recognize: bool,
}

impl Default for Canonicalize {
    fn default() -> Self {
        Canonicalize { recognize: true }
    }
}

impl Pass for Canonicalize {
    fn name(&self) -> &str {
        "canonicalize"
    }

    fn run(&self, g: &mut Graph, cx: &mut PassContext) -> IrResult<PassReport> {
        let removed = remove_no_ops(g)?;
        let mut report = PassReport::counted(removed, "no-op nodes removed");
        if self.recognize {
            let rules = shipped("recognize").map_err(|e| pass_error(e.to_string()))?;
            let rewrite = Rewriter::new(&[rules])
                .run(g)
                .map_err(|e| pass_error(e.to_string()))?;
            for (region, stage, stop) in &rewrite.limits_hit {
                cx.warn(format!(
                    "recognition in region {region}, stage {stage} stopped at the {stop}"
                ));
            }
            report.changed |= rewrite.changed;
            for (rule, n) in &rewrite.fired {
                report.notes.push(format!("{rule} recognised {n}x"));
            }
        }
        Ok(report)
    }
}

fn pass_error(msg: String) -> IrError {
    IrError::Pass {
        pass: "canonicalize".into(),
        msg,
    }
}

/// Step 1: forward the input of every no-op node to its users and delete the node.
fn remove_no_ops(g: &mut Graph) -> IrResult<usize> {
    {
        let mut removed = 0;
        for id in g.topo_order()? {
            if let Some(src) = forwarded_input(g, id) {
                let out = g.node(id).outputs[0];
                // A graph output keeps its name and type: skip if the types differ.
                if g.ty(src) != g.ty(out) {
                    continue;
                }
                if g.outputs().contains(&out)
                    && (g.outputs().contains(&src) || g.inputs().contains(&src))
                {
                    continue;
                }
                g.replace_all_uses(out, src);
                g.remove_node(id)?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// If node `id` returns one of its inputs unchanged, that input.
fn forwarded_input(g: &Graph, id: NodeId) -> Option<ValueId> {
    let n = g.node(id);
    let first = n.inputs.first().copied().flatten()?;
    let &out = n.outputs.first()?;
    let same_type = g.ty(first) == g.ty(out) && g.ty(out).shape.as_known().is_some();
    match &n.op {
        OpKind::Identity => Some(first),
        OpKind::Dropout if n.outputs.len() == 1 || !g.is_used(n.outputs[1]) => {
            let training = n
                .inputs
                .get(2)
                .copied()
                .flatten()
                .and_then(|t| g.plain_constant(t));
            let training = training
                .and_then(|t| t.to_i64_vec().ok())
                .is_some_and(|v| v.first() == Some(&1));
            (!training).then_some(first)
        }
        OpKind::Cast if g.ty(first).dtype == g.ty(out).dtype => Some(first),
        OpKind::Reshape | OpKind::Expand | OpKind::Flatten if same_type => Some(first),
        OpKind::Transpose => {
            let perm = n.attrs.ints("perm")?;
            perm.iter()
                .enumerate()
                .all(|(i, &p)| p == i as i64)
                .then_some(first)
        }
        OpKind::Concat | OpKind::Sum | OpKind::Max | OpKind::Min | OpKind::Mean
            if n.inputs.len() == 1 =>
        {
            Some(first)
        }
        OpKind::Add | OpKind::Sub | OpKind::Mul | OpKind::Div => {
            let other = n.inputs.get(1).copied().flatten()?;
            let neutral = if matches!(n.op, OpKind::Add | OpKind::Sub) {
                0.0
            } else {
                1.0
            };
            let t = g.plain_constant(other)?;
            (g.ty(first) == g.ty(out) && all_equal(t, neutral)).then_some(first)
        }
        _ => None,
    }
}

fn all_equal(t: &Tensor, want: f64) -> bool {
    if t.len() > 4096 {
        return false;
    }
    let vals: Option<Vec<f64>> = match t.dtype() {
        smelt_ir::DType::F32 => t
            .to_vec::<f32>()
            .ok()
            .map(|v| v.into_iter().map(f64::from).collect()),
        smelt_ir::DType::F64 => t.to_vec::<f64>().ok(),
        d if d.is_int() => t
            .to_i64_vec()
            .ok()
            .map(|v| v.into_iter().map(|x| x as f64).collect()),
        _ => None,
    };
    vals.is_some_and(|v| v.iter().all(|&x| x == want))
}
