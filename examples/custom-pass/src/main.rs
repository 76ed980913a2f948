//! A pass written outside smelt, against its public API only.
//!
//! `DivToMul` rewrites `x / c` for a constant float `c` into `x * (1/c)`: multiplication
//! is cheaper than division on every target, and the reciprocal is folded once at compile
//! time. Run it with
//!
//! ```sh
//! cargo run -p custom-pass -- examples/models/tiny_bert.onnx
//! ```

use std::process::ExitCode;

use smelt::ir::pattern::{any, constant, op, rewrite_all};
use smelt::{
    Attrs, Constant, DType, Driver, Graph, IrResult, Model, OpKind, Pass, PassContext, PassReport,
    Patch, Tensor,
};

/// `div(x, c)` → `mul(x, 1/c)` for f32 constants `c` with no zero elements.
struct DivToMul;

impl Pass for DivToMul {
    fn name(&self) -> &str {
        "div-to-mul"
    }

    fn run(&self, g: &mut Graph, cx: &mut PassContext) -> IrResult<PassReport> {
        let pattern = op(OpKind::Div, [any("x"), constant("c")]).named("div");
        let rewritten = rewrite_all(g, &pattern, |g, m| {
            let divisor = g
                .plain_constant(m.value("c"))
                .expect("the pattern matched a constant");
            if divisor.dtype() != DType::F32 {
                return Ok(None);
            }
            let values = divisor.to_vec::<f32>()?;
            if values.iter().any(|v| *v == 0.0 || !v.is_finite()) {
                let div = m.node("div").expect("the pattern names the division");
                cx.warn(format!(
                    "`{}`: divisor has zero or non-finite elements, left as is",
                    g.node_label(div)
                ));
                return Ok(None);
            }
            let reciprocal = Tensor::from_vec(
                divisor.shape().to_vec(),
                values.iter().map(|v| 1.0 / v).collect(),
            )?;
            // The replacement: x * (1/c), standing in for the division's result. The
            // division (and its constant, if nothing else reads it) goes when applied.
            let mut patch = Patch::new("div-to-mul");
            let x = patch.tap(m.value("x"));
            let r = patch.add_const("", Constant::plain(reciprocal));
            let product = patch.add_node("", OpKind::Mul, Attrs::new(), &[x, r]);
            patch.replace(m.root, product);
            Ok(Some(patch))
        })?;
        Ok(PassReport::counted(
            rewritten,
            "divisions turned into multiplications",
        ))
    }
}

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: custom-pass MODEL.onnx");
        return ExitCode::FAILURE;
    };
    match run(&path) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(path: &str) -> smelt::Result<()> {
    let driver = Driver::new().register(DivToMul);
    let original = Model::from_onnx(path)?;
    let mut model = original.clone();
    for run in driver.run_pipeline(&mut model.graph, "fold-constants,div-to-mul,dce")? {
        println!(
            "{:<16} ops {:>4} -> {:<4} {}",
            run.pass,
            run.ops_before,
            run.ops_after,
            run.report.notes.join("; ")
        );
    }
    let divs = |g: &Graph| {
        g.node_ids()
            .filter(|n| g.node(*n).op == OpKind::Div)
            .count()
    };
    println!(
        "Div nodes: {} -> {}",
        divs(&original.graph),
        divs(&model.graph)
    );

    // Same outputs on a small synthetic input, within float rounding.
    let inputs: Vec<(String, Tensor)> = original
        .graph
        .inputs()
        .iter()
        .map(|v| {
            let name = original.graph.value(*v).name.clone();
            Tensor::from_vec(vec![1, 8], (0..8).map(|i| (i % 5) as i64 + 1).collect())
                .map(|t| (name, t))
        })
        .collect::<Result<_, _>>()?;
    let named: Vec<(&str, Tensor)> = inputs
        .iter()
        .map(|(n, t)| (n.as_str(), t.clone()))
        .collect();
    let before = original.run_interp(&named)?;
    let after = model.run_interp(&named)?;
    for ((name, a), (_, b)) in before.iter().zip(&after) {
        let (a, b) = (a.to_vec::<f32>()?, b.to_vec::<f32>()?);
        let diff = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max);
        println!("{name}: max abs diff {diff:.2e}");
        if diff > 1e-5 {
            return Err(smelt::Error::Usage(format!("{name} changed by {diff}")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    /// The example does its job end to end on the model the repo ships: the pass runs in
    /// a driver pipeline, removes divisions, and the outputs stay within 1e-5.
    #[test]
    fn runs_on_the_bundled_model() {
        let model = concat!(env!("CARGO_MANIFEST_DIR"), "/../models/tiny_bert.onnx");
        super::run(model).unwrap();
    }
}
