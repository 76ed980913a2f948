//! `smelt::assert_rewrite!` as a user would call it: with the shipped passes, and with a
//! driver that has a user pass registered.

use smelt::{Driver, Graph, IrResult, OpKind, Pass, PassContext, PassReport, Patch};

const DOUBLE_NEG: &str = "graph @g(%x: f32[?b, 4]) -> (f32[?b, 4]) {
  %n = neg(%x) : f32[?b, 4]
  %m = neg(%n) : f32[?b, 4]
  %y = relu(%m) : f32[?b, 4]
  return %y
}
";

/// Removes `neg(neg(x))`, through the patch API.
struct DoubleNegation;

impl Pass for DoubleNegation {
    fn name(&self) -> &str {
        "double-negation"
    }

    fn run(&self, g: &mut Graph, _cx: &mut PassContext) -> IrResult<PassReport> {
        use smelt::ir::pattern::{any, op, rewrite_all};
        let pat = op(OpKind::Neg, [op(OpKind::Neg, [any("x")])]);
        let n = rewrite_all(g, &pat, |_, m| {
            let mut p = Patch::new("double-negation");
            let x = p.tap(m.value("x"));
            p.replace(m.root, x);
            Ok(Some(p))
        })?;
        Ok(PassReport::counted(n, "double negations removed"))
    }
}

#[test]
fn shipped_pipeline_snapshot() {
    smelt::assert_rewrite!("fold-constants,dce", DOUBLE_NEG);
}

#[test]
fn user_pass_snapshot() {
    let driver = Driver::new().register(DoubleNegation);
    smelt::assert_rewrite!(driver, "double-negation", DOUBLE_NEG);
}
