//! The textual IR: a stable, readable, parseable form of a [`Graph`].
//!
//! ```text
//! graph @mlp(%x: f32[?batch, 384]) -> (f32[?batch, 1536]) {
//!   %w = const f32[384, 1536] {encoding = blockwise<i4, axis=0, block=64, scale=f16>} #a3f90c2e11d8b7f4
//!   %b = const f32[2] [0.5, -1.0]
//!   %0 = matmul(%x, %w) : f32[?batch, 1536]
//!   %1 = gelu(%0) {approximate = "none"} : f32[?batch, 1536] loc("/mlp/gelu")
//!   return %1
//! }
//! ```
//!
//! * Values are `%name`; names that are not plain identifiers are quoted (`%"a b"`).
//! * Small plain constants (up to [`INLINE_LIMIT`] elements) print their elements; larger
//!   ones print a content hash (`#` + 16 hex digits) and are found again by hash in a
//!   [`WeightStore`](crate::WeightStore) when parsed. 4-bit, 6-bit and FP8 types print
//!   their stored bytes as `x"0a1b"`.
//! * An omitted optional input is `_`; a node's name, if any, is a trailing `loc("...")`.
//!
//! `print(parse(print(g))) == print(g)` for every graph (tested on random graphs).

mod parse;
mod print;

pub use parse::{parse, parse_with};
pub use print::{print, print_value_name};

/// Plain constants with at most this many elements print inline.
pub const INLINE_LIMIT: usize = 16;
