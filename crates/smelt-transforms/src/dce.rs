//! Dead-code elimination.

use smelt_ir::{Graph, IrResult, Pass, PassContext, PassReport};

/// Removes nodes none of whose results are read (by a node or as a graph output), then
/// drops constants no node refers to.
pub struct Dce;

impl Pass for Dce {
    fn name(&self) -> &str {
        "dce"
    }

    fn run(&self, g: &mut Graph, _cx: &mut PassContext) -> IrResult<PassReport> {
        let mut removed = 0;
        // Reverse topological order removes whole dead chains in one sweep.
        let mut order = g.topo_order()?;
        order.reverse();
        for id in order {
            let dead = g.node(id).op.is_pure() && !g.node(id).outputs.iter().any(|o| g.is_used(*o));
            if dead {
                g.remove_node(id)?;
                removed += 1;
            }
        }
        let before = g.store().len();
        g.compact_store();
        let dropped = before - g.store().len();
        let mut report = PassReport::counted(removed, "nodes removed");
        if dropped > 0 {
            report.changed = true;
            report.notes.push(format!("{dropped} constants dropped"));
        }
        Ok(report)
    }
}
