//! Report rules: patterns whose matches are recorded as groups of nodes (fusion
//! candidates, attention blocks, shift candidates) instead of being rewritten.
//!
//! The groups found by one call partition the graph greedily in rule order: a match is
//! kept only if none of its nodes belongs to a group kept before, so listing the larger
//! pattern first (matmul + bias + activation before matmul + bias) yields maximal groups.
//! The rewriter calls this once per rule set.

use std::collections::{HashMap, HashSet};

use egg::Id;
use smelt_ir::{Graph, NodeId, ValueId};

use crate::convert::Conversion;
use crate::error::RewriteError;
use crate::pattern::{search, OpIndex};
use crate::ruleset::{Body, Rule};

/// One matched group.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// The report rule that matched.
    pub rule: String,
    /// The nodes the pattern's ops matched, in graph order.
    pub nodes: Vec<NodeId>,
    /// The value the whole pattern matched.
    pub root: ValueId,
    /// The values bound to the pattern's variables (constants and outside values
    /// included), by variable name.
    pub bindings: Vec<(String, ValueId)>,
}

impl Group {
    /// A one-line description: `rule: root <- [node labels]`.
    pub fn describe(&self, g: &Graph) -> String {
        let labels: Vec<String> = self
            .nodes
            .iter()
            .filter_map(|n| g.try_node(*n).map(|_| g.node_label(*n)))
            .collect();
        format!(
            "{}: %{} <- [{}]",
            self.rule,
            g.value(self.root).name,
            labels.join(", ")
        )
    }
}

/// Find the groups of the report rules among `rules` in `g`.
pub fn find_groups<'a>(
    g: &Graph,
    rules: impl IntoIterator<Item = &'a Rule>,
) -> Result<Vec<Group>, RewriteError> {
    let reports: Vec<&Rule> = rules.into_iter().filter(|r| r.is_report()).collect();
    if reports.is_empty() {
        return Ok(vec![]);
    }
    let conv = Conversion::from_graph(g)?;
    let eg = &conv.egraph;
    let index = OpIndex::new(eg);
    let order: HashMap<NodeId, usize> = g
        .topo_order()?
        .into_iter()
        .enumerate()
        .map(|(i, n)| (n, i))
        .collect();
    // class → the original node and value it stands for (the first, if merged)
    let mut node_of: HashMap<Id, NodeId> = HashMap::new();
    for n in &conv.nodes {
        node_of.entry(eg.find(n.class)).or_insert(n.node);
    }
    let mut value_of: HashMap<Id, ValueId> = HashMap::new();
    for o in &conv.origins {
        value_of.entry(eg.find(o.class)).or_insert(o.value);
    }
    for c in eg.classes() {
        for n in &c.nodes {
            if let Some(crate::lang::Leaf::Value(v)) = n.leaf() {
                value_of.entry(c.id).or_insert(*v);
            }
        }
    }
    let mut claimed: HashSet<NodeId> = HashSet::new();
    let mut groups = vec![];
    for rule in reports {
        let Body::Text { lhs, conds, .. } = &rule.body else {
            continue;
        };
        let mut found: Vec<Group> = search(eg, &index, lhs, usize::MAX)
            .into_iter()
            .filter(|m| conds.iter().all(|c| c.holds(eg, m)))
            .filter_map(|m| {
                let mut nodes: Vec<NodeId> = m
                    .covered
                    .iter()
                    .filter_map(|c| node_of.get(&eg.find(*c)).copied())
                    .collect();
                nodes.sort_by_key(|n| order.get(n).copied().unwrap_or(usize::MAX));
                nodes.dedup();
                let root = *value_of.get(&eg.find(m.root))?;
                let bindings = m
                    .classes
                    .iter()
                    .filter_map(|(n, c)| value_of.get(&eg.find(*c)).map(|v| (n.clone(), *v)))
                    .collect();
                Some(Group {
                    rule: rule.name.clone(),
                    nodes,
                    root,
                    bindings,
                })
            })
            .collect();
        found.sort_by_key(|gr| {
            gr.nodes
                .iter()
                .map(|n| order.get(n).copied().unwrap_or(usize::MAX))
                .max()
        });
        for gr in found {
            if gr.nodes.iter().any(|n| claimed.contains(n)) {
                continue;
            }
            claimed.extend(gr.nodes.iter().copied());
            groups.push(gr);
        }
    }
    Ok(groups)
}
