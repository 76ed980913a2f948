//! Constant folding.

use smelt_ir::{
    Constant, DType, Dim, Graph, IrError, IrResult, NodeId, OpKind, Pass, PassContext, PassReport,
    Tensor, ValueId,
};

use crate::shape_values::{analyse, SymInt};

/// Evaluates nodes whose inputs are all constants (with the reference interpreter) and
/// replaces them with constants; folds shape arithmetic symbolically: integer values
/// computed from `Shape` become constants when every element is known, and `Reshape`
/// targets whose unknown elements are the input's own symbolic dims become constants
/// using `0` (copy) so the shape chain feeding them dies.
pub struct FoldConstants {
    /// Results with more elements than this are left unfolded (folding would bloat the
    /// model, e.g. `ConstantOfShape` of a large shape).
    pub max_elements: usize,
}

impl Pass for FoldConstants {
    fn name(&self) -> &str {
        "fold-constants"
    }

    fn run(&self, g: &mut Graph, _cx: &mut PassContext) -> IrResult<PassReport> {
        let (mut folded, mut reshapes) = (0, 0);
        // Folding can make shapes known, which makes more folding possible: iterate to a
        // fixed point (bounded, each round strictly removes work).
        for _round in 0..16 {
            let f = self.fold_evaluable(g)? + fold_shape_values(g)?;
            let r = rewrite_reshape_targets(g)?;
            folded += f;
            reshapes += r;
            if f + r == 0 {
                break;
            }
            g.infer_types()?;
        }
        let mut report = PassReport::counted(folded, "nodes folded");
        if reshapes > 0 {
            report.changed = true;
            report
                .notes
                .push(format!("{reshapes} reshape targets made constant"));
        }
        Ok(report)
    }
}

impl FoldConstants {
    fn fold_evaluable(&self, g: &mut Graph) -> IrResult<usize> {
        let mut count = 0;
        for id in g.topo_order()? {
            let n = g.node(id);
            if n.op == OpKind::Const || !n.op.is_pure() || n.inputs.is_empty() {
                continue;
            }
            let inputs: Option<Vec<Option<&Tensor>>> = n
                .inputs
                .iter()
                .map(|i| match i {
                    None => Some(None),
                    Some(v) => g.plain_constant(*v).map(Some),
                })
                .collect();
            let Some(inputs) = inputs else { continue };
            // Outputs known to be large are not materialised.
            if n.outputs.iter().any(|o| {
                g.ty(*o)
                    .shape
                    .num_elements()
                    .is_some_and(|e| e > self.max_elements)
            }) {
                continue;
            }
            let results = match smelt_interp::eval_op(&n.op, &n.attrs, &inputs, n.outputs.len()) {
                Ok(r) => r,
                Err(e) => {
                    return Err(IrError::Pass {
                        pass: "fold-constants".into(),
                        msg: format!("evaluating node `{}`: {e}", g.node_label(id)),
                    })
                }
            };
            if results.iter().any(|t| t.len() > self.max_elements) {
                continue;
            }
            replace_with_constants(g, id, results)?;
            count += 1;
        }
        Ok(count)
    }
}

/// Replace every output of `id` by a constant and remove the node, keeping value names.
fn replace_with_constants(g: &mut Graph, id: NodeId, results: Vec<Tensor>) -> IrResult<()> {
    let outs = g.node(id).outputs.clone();
    let mut renames = vec![];
    for (o, t) in outs.iter().zip(results) {
        if t.dtype() != g.ty(*o).dtype {
            return Err(IrError::Pass {
                pass: "fold-constants".into(),
                msg: format!(
                    "node `{}` evaluated to {} but its output is typed {}",
                    g.node_label(id),
                    t.dtype(),
                    g.ty(*o)
                ),
            });
        }
        let c = g.add_const("", Constant::plain(t));
        g.replace_all_uses(*o, c);
        renames.push((c, g.value(*o).name.clone()));
    }
    g.remove_node(id)?;
    for (c, name) in renames {
        // the name was freed by removing the node
        let _ = g.rename_value(c, &name);
    }
    Ok(())
}

/// Values whose every element is known from shape arithmetic become constants.
fn fold_shape_values(g: &mut Graph) -> IrResult<usize> {
    let sv = analyse(g)?;
    let mut count = 0;
    for id in g.topo_order()? {
        let n = g.node(id);
        if n.op == OpKind::Const || n.outputs.len() != 1 {
            continue;
        }
        let out = n.outputs[0];
        let Some(known) = sv.get(&out).and_then(|s| s.known().map(|k| (k, s.scalar))) else {
            continue;
        };
        let (vals, scalar) = known;
        let shape = if scalar { vec![] } else { vec![vals.len()] };
        let t = match g.ty(out).dtype {
            DType::I64 => Tensor::from_vec(shape, vals)?,
            DType::I32 => Tensor::from_vec(shape, vals.iter().map(|&v| v as i32).collect())?,
            _ => continue,
        };
        replace_with_constants(g, id, vec![t])?;
        count += 1;
    }
    Ok(count)
}

/// `Reshape(x, s)` where `s` is known symbolically: replace `s` by a constant, using 0 for
/// elements equal to `x`'s dim at the same position and -1 for at most one other.
fn rewrite_reshape_targets(g: &mut Graph) -> IrResult<usize> {
    let sv = analyse(g)?;
    let mut count = 0;
    for id in g.topo_order()? {
        let n = g.node(id);
        if n.op != OpKind::Reshape || n.attrs.int_or("allowzero", 0) != 0 {
            continue;
        }
        let (Some(Some(x)), Some(Some(s))) = (n.inputs.first(), n.inputs.get(1)) else {
            continue;
        };
        let (x, s) = (*x, *s);
        if g.plain_constant(s).is_some() {
            continue;
        }
        let Some(target) = sv.get(&s) else { continue };
        let Some(target) = constant_target(g.ty(x).dims(), &target.elems) else {
            continue;
        };
        let t = Tensor::from_vec(vec![target.len()], target)?;
        let c: ValueId = g.add_const("", Constant::plain(t));
        g.set_input(id, 1, Some(c))?;
        count += 1;
    }
    Ok(count)
}

fn constant_target(in_dims: Option<&[Dim]>, elems: &[SymInt]) -> Option<Vec<i64>> {
    let mut out = Vec::with_capacity(elems.len());
    let mut free = 0;
    for (i, e) in elems.iter().enumerate() {
        out.push(match e {
            // A literal 0 would mean "copy"; only safe to keep when allowzero is off and
            // it really is a copy, so refuse to guess.
            SymInt::Known(0) => return None,
            // A literal -1 is already the one inferred dim.
            SymInt::Known(-1) => {
                free += 1;
                -1
            }
            SymInt::Known(k) => *k,
            SymInt::Sym(name) => match in_dims.and_then(|d| d.get(i)) {
                Some(Dim::Sym(m)) if m == name => 0,
                _ => {
                    free += 1;
                    -1
                }
            },
            SymInt::Unknown => {
                free += 1;
                -1
            }
        });
    }
    (free <= 1).then_some(out)
}
