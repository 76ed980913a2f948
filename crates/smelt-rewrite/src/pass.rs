//! The rewrite passes for pipelines.
//!
//! | pass | rule sets |
//! | --- | --- |
//! | `simplify` | recognition (first stage), then algebraic simplification |
//! | `recognize` | GELU (erf and tanh forms), LayerNorm, Softmax from their decompositions |
//! | `fusion-groups` | reports matmul+bias+activation, attention, residual+LayerNorm groups |
//! | `shift-candidates` | reports multiplications by powers of two |
//! | `rewrite` | any shipped sets (`sets=simplify+recognize`) and/or a rule file (`rules=FILE`) |
//!
//! All take `iters`, `nodes`, `time-ms` and `region` (op nodes per saturation region, 0
//! for one region).
//!
//! `simplify` runs the recognition rules as its first stage: simplification moves constant
//! scales into the next matmul's weight, and the 0.5 of an erf-form GELU is such a scale,
//! so a GELU simplified before being recognised would no longer be recognisable.

use std::sync::Arc;
use std::time::Duration;

use smelt_ir::pass::{OptionKind, OptionSpec, PassOptions};
use smelt_ir::{Graph, IrError, IrResult, Pass, PassContext, PassRegistry, PassReport};

use crate::cost::Roofline;
use crate::rewrite::{RewriteOptions, Rewriter};
use crate::ruleset::RuleSet;
use crate::saturate::Limits;
use crate::shipped::shipped_list;

/// A pass running rule sets through a [`Rewriter`].
pub struct RewritePass {
    name: String,
    rewriter: Rewriter,
}

impl RewritePass {
    /// A pass named `name` running `sets` with `options`.
    pub fn new(name: &str, sets: &[RuleSet], options: RewriteOptions) -> RewritePass {
        RewritePass {
            name: name.to_string(),
            rewriter: Rewriter::with_options(sets, options),
        }
    }
}

impl Pass for RewritePass {
    fn name(&self) -> &str {
        &self.name
    }

    fn run(&self, graph: &mut Graph, cx: &mut PassContext) -> IrResult<PassReport> {
        let report = self.rewriter.run(graph).map_err(|e| IrError::Pass {
            pass: self.name.clone(),
            msg: e.to_string(),
        })?;
        for g in &report.groups {
            cx.note(g.describe(graph));
        }
        for (region, stage, stop) in &report.limits_hit {
            cx.warn(format!(
                "region {region}, stage {stage}: saturation stopped at the {stop}"
            ));
        }
        Ok(PassReport {
            changed: report.changed,
            notes: report.notes(),
            estimated_error: None,
        })
    }
}

fn common_options() -> Vec<OptionSpec> {
    vec![
        OptionSpec {
            name: "iters",
            kind: OptionKind::Int {
                min: 1,
                max: 10_000,
            },
            default: Some("30"),
            help: "saturation iterations per stage and region",
        },
        OptionSpec {
            name: "nodes",
            kind: OptionKind::Int {
                min: 1,
                max: i64::MAX,
            },
            default: Some("100000"),
            help: "e-nodes per region e-graph",
        },
        OptionSpec {
            name: "time-ms",
            kind: OptionKind::Int {
                min: 1,
                max: i64::MAX,
            },
            default: Some("10000"),
            help: "time limit for the whole pass",
        },
        OptionSpec {
            name: "region",
            kind: OptionKind::Int {
                min: 0,
                max: i64::MAX,
            },
            default: Some("200"),
            help: "op nodes per saturation region (0: whole graph)",
        },
    ]
}

fn options_from(opts: &PassOptions) -> RewriteOptions {
    let int = |k: &str, d: i64| opts.int(k).unwrap_or(d).max(0) as u64;
    RewriteOptions {
        limits: Limits {
            iterations: int("iters", 30) as usize,
            nodes: int("nodes", 100_000) as usize,
            time: Duration::from_millis(int("time-ms", 10_000)),
            ..Limits::default()
        },
        region_nodes: int("region", 200) as usize,
        cost: Arc::new(Roofline::default()),
    }
}

fn register_sets(
    reg: &mut PassRegistry,
    name: &'static str,
    description: &str,
    sets: &'static str,
) {
    reg.register(name, description, common_options(), move |opts| {
        let sets =
            shipped_list(sets).map_err(|e| IrError::Pipeline(format!("pass `{name}`: {e}")))?;
        Ok(Box::new(RewritePass::new(name, &sets, options_from(opts))))
    });
}

/// Register `simplify`, `recognize`, `fusion-groups`, `shift-candidates` and `rewrite`.
pub fn register_rewrite_passes(reg: &mut PassRegistry) {
    register_sets(reg, "simplify", "algebraic simplification by equality saturation (transpose/reshape chains, neutral elements, scales folded into weights), after a recognition stage", "recognize+simplify");
    register_sets(
        reg,
        "recognize",
        "recognise decomposed GELU, LayerNorm and Softmax and replace them by single ops",
        "recognize",
    );
    register_sets(
        reg,
        "fusion-groups",
        "report fusion candidates (attention, matmul+bias+activation, residual+LayerNorm) as notes",
        "attention+fusion",
    );
    register_sets(
        reg,
        "shift-candidates",
        "report multiplications and divisions by powers of two as notes",
        "shift",
    );
    let mut opts = common_options();
    opts.push(OptionSpec {
        name: "sets",
        kind: OptionKind::Str,
        default: Some("recognize,simplify"),
        help: "shipped rule sets, separated by `,` or `+` (`none` for none)",
    });
    opts.push(OptionSpec {
        name: "rules",
        kind: OptionKind::Str,
        default: None,
        help: "a .rules file to run after the sets",
    });
    reg.register(
        "rewrite",
        "equality-saturation rewriting with shipped rule sets and/or a .rules file",
        opts,
        |opts| {
            let mut sets = shipped_list(opts.get("sets").unwrap_or_default())
                .map_err(|e| IrError::Pipeline(format!("pass `rewrite`: {e}")))?;
            if let Some(path) = opts.get("rules") {
                sets.push(
                    RuleSet::from_file(path)
                        .map_err(|e| IrError::Pipeline(format!("pass `rewrite`: {e}")))?,
                );
            }
            Ok(Box::new(RewritePass::new(
                "rewrite",
                &sets,
                options_from(opts),
            )))
        },
    );
}
