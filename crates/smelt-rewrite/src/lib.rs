//! # smelt-rewrite
//!
//! Equality-saturation rewriting of smelt graphs with [egg]:
//!
//! * [`IrLang`]: every op of the IR as an e-node (attributes in the op symbol), graph
//!   inputs and other outside values as `%N` leaves, constants by handle as `#N` leaves
//!   (tensor data never enters the e-graph), `(out k node)` for multi-output nodes.
//! * [`IrAnalysis`]: per class the dtype and symbolic shape (from smelt-ir's inference),
//!   the encoding, and the value of small constants, which rule conditions use.
//! * Rules in the `.rules` text format ([`RuleSet::parse`], [`RuleSet::from_file`]) or in
//!   Rust ([`rule!`], [`Rule::rust`], [`Rule::from_rewrite`]); staged sets saturated
//!   within [`Limits`]; report rules that record groups instead of rewriting.
//! * Extraction by a pluggable [`CostModel`] (default: the [`Roofline`] estimate on a
//!   [`Target`]), back into the graph region by region ([`Rewriter`]).
//! * Shipped sets ([`shipped`]): `simplify`, `recognize`, `fusion`, `attention`, `shift`,
//!   and the pipeline passes of [`register_rewrite_passes`].
//!
//! ```
//! use smelt_rewrite::{shipped, Rewriter};
//! let mut g = smelt_ir::text::parse(
//!     "graph @g(%x: f32[2, 3]) -> (f32[2, 3]) {
//!        %t = transpose(%x) {perm = [1, 0]} : f32[3, 2]
//!        %u = transpose(%t) {perm = [1, 0]} : f32[2, 3]
//!        %y = relu(%u) : f32[2, 3]
//!        return %y
//!      }",
//! ).unwrap();
//! let report = Rewriter::new(&[shipped("simplify").unwrap()]).run(&mut g).unwrap();
//! assert!(report.fired["transpose-transpose"] >= 1);
//! assert_eq!(g.op_count(), 1);
//! ```

#![warn(missing_docs)]

pub mod analysis;
pub mod attrs;
pub mod cond;
pub mod convert;
pub mod cost;
pub mod emit;
pub mod error;
pub mod extract;
pub mod lang;
pub mod pass;
pub mod pattern;
pub mod region;
pub mod report;
pub mod rewrite;
pub mod rhs;
pub mod rulefile;
pub mod ruleset;
pub mod saturate;
pub mod shipped;
pub mod splice;

pub use analysis::{ClassData, IrAnalysis, IrEGraph};
pub use convert::Conversion;
pub use cost::{CostModel, NodeCount, Roofline, Target};
pub use error::{ParseError, RewriteError};
pub use extract::{extract, Extraction};
pub use lang::{IrLang, Leaf, OpSym};
pub use pass::{register_rewrite_passes, RewritePass};
pub use report::{find_groups, Group};
pub use rewrite::{rewrite, round_trip, RewriteOptions, RewriteReport, Rewriter};
pub use ruleset::{Rule, RuleSet, Stage, MAX_RULE_FILE_BYTES};
pub use saturate::{saturate, Limits, Stop};
pub use shipped::{shipped, shipped_list, shipped_names};
pub use splice::{replace_region, to_graph};

/// The attention blocks of `g` (`matmul(softmax(scale(matmul(q, k)) [+ mask]), v)`), as
/// groups of nodes; smelt has no attention op yet, so this is a query, not a rewrite.
pub fn find_attention(g: &smelt_ir::Graph) -> Result<Vec<Group>, RewriteError> {
    let set = shipped("attention")?;
    find_groups(g, set.rules())
}
