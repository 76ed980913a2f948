//! # smelt-transforms
//!
//! The core cleanup passes every pipeline leans on:
//!
//! | pass | what it does |
//! | --- | --- |
//! | `dce` | removes nodes whose results nobody reads, and unreferenced constants |
//! | `cse` | merges identical nodes (same op, attributes and inputs) and identical constants |
//! | `fold-constants` | evaluates nodes whose inputs are constants; folds shape arithmetic (`Shape`→`Gather`→`Unsqueeze`→`Concat`) symbolically |
//! | `canonicalize` | removes no-ops (identity casts, reshapes and transposes, `x+0`, `x*1`, inference-mode dropout) and recognises decomposed GELU, LayerNorm and Softmax |
//!
//! Register them with [`register_core_passes`].

mod canonicalize;
mod cse;
mod dce;
mod fold;
mod shape_values;

pub use canonicalize::Canonicalize;
pub use cse::Cse;
pub use dce::Dce;
pub use fold::FoldConstants;

use smelt_ir::pass::{OptionKind, OptionSpec};
use smelt_ir::PassRegistry;

/// Register `dce`, `cse`, `fold-constants` and `canonicalize`.
pub fn register_core_passes(reg: &mut PassRegistry) {
    reg.register_simple("dce", "remove nodes whose results are unused", || {
        Box::new(Dce)
    });
    reg.register_simple("cse", "merge identical nodes and constants", || {
        Box::new(Cse)
    });
    reg.register(
        "canonicalize",
        "remove no-op nodes (identity casts, reshapes, x+0, x*1, ...); recognise GELU, LayerNorm, Softmax",
        vec![OptionSpec {
            name: "recognize",
            kind: OptionKind::Bool,
            default: Some("true"),
            help: "also replace decomposed GELU/LayerNorm/Softmax by single ops",
        }],
        |opts| {
            let recognize = opts.bool("recognize").unwrap_or(true);
            Ok(Box::new(Canonicalize { recognize }))
        },
    );
    reg.register(
        "fold-constants",
        "evaluate nodes with constant inputs; fold shape arithmetic symbolically",
        vec![OptionSpec {
            name: "max-elements",
            kind: OptionKind::Int {
                min: 0,
                max: i64::MAX,
            },
            default: Some("4194304"),
            help: "do not materialise folded results with more elements than this",
        }],
        |opts| {
            let max = opts.int("max-elements").unwrap_or(4_194_304).max(0) as usize;
            Ok(Box::new(FoldConstants { max_elements: max }))
        },
    );
}
