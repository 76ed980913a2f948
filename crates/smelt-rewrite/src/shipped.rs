//! The rule sets that ship with smelt, embedded from their `.rules` files so users read
//! and write the same format.

use crate::error::RewriteError;
use crate::ruleset::RuleSet;

/// `(name, text)` of every shipped set.
pub const SHIPPED: &[(&str, &str)] = &[
    ("simplify", include_str!("../rules/simplify.rules")),
    ("recognize", include_str!("../rules/recognize.rules")),
    ("fusion", include_str!("../rules/fusion.rules")),
    ("attention", include_str!("../rules/attention.rules")),
    ("shift", include_str!("../rules/shift.rules")),
];

/// The names of the shipped sets.
pub fn shipped_names() -> Vec<&'static str> {
    SHIPPED.iter().map(|(n, _)| *n).collect()
}

/// A shipped rule set by name.
pub fn shipped(name: &str) -> Result<RuleSet, RewriteError> {
    let (n, text) =
        SHIPPED
            .iter()
            .find(|(n, _)| *n == name)
            .ok_or_else(|| RewriteError::UnknownSet {
                name: name.to_string(),
                known: shipped_names().join(", "),
            })?;
    RuleSet::parse(&format!("<{n}.rules>"), text)
}

/// Several shipped sets, from a list separated by `,` or `+` (`simplify+recognize`);
/// `none` or an empty list is no set.
pub fn shipped_list(names: &str) -> Result<Vec<RuleSet>, RewriteError> {
    names
        .split([',', '+'])
        .map(str::trim)
        .filter(|n| !n.is_empty() && *n != "none")
        .map(shipped)
        .collect()
}
