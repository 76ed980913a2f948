//! Extraction: the cheapest e-node of every class under a [`CostModel`].
//!
//! Knuth's generalisation of Dijkstra's algorithm: classes are settled in order of
//! increasing cost, and a node is only priced once all its children are settled. A
//! settled class's choice therefore only refers to classes settled before it, so the
//! chosen nodes never form a cycle (a node whose child is its own class, as `x * 1` after
//! `x * 1 = x`, is simply never complete). Ties break on class id and node order, so the
//! result is deterministic.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};

use egg::{Id, Language};

use crate::analysis::IrEGraph;
use crate::cost::CostModel;
use crate::lang::IrLang;

/// The chosen node and cost of every class that has a finite-cost term.
#[derive(Debug, Clone, Default)]
pub struct Extraction {
    /// Canonical class → chosen node (children canonical).
    pub choice: HashMap<Id, IrLang>,
    /// Canonical class → cost of its best term.
    pub cost: HashMap<Id, f64>,
}

impl Extraction {
    /// The chosen node of a class.
    pub fn node(&self, eg: &IrEGraph, class: Id) -> Option<&IrLang> {
        self.choice.get(&eg.find(class))
    }
}

#[derive(PartialEq)]
struct Entry {
    cost: f64,
    class: Id,
    node: usize,
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        self.cost
            .total_cmp(&other.cost)
            .then(self.class.cmp(&other.class))
            .then(self.node.cmp(&other.node))
    }
}

/// Whether a node may be extracted: op nodes need a known type (a failed inference marks
/// a node that no kernel could run).
fn extractable(eg: &IrEGraph, class: Id, node: &IrLang) -> bool {
    match node {
        IrLang::Op(sym, _) => {
            let d = &eg[class].data;
            if sym.nout() == 1 {
                d.ty.is_some()
            } else {
                d.outputs.len() == sym.nout()
            }
        }
        _ => true,
    }
}

/// Choose the cheapest node of every class of a clean (rebuilt) e-graph.
pub fn extract(eg: &IrEGraph, model: &dyn CostModel) -> Extraction {
    let mut classes: Vec<Id> = eg.classes().map(|c| c.id).collect();
    classes.sort();
    // For each class, the (class, node index) pairs that use it, and per node the number
    // of distinct children not settled yet.
    let mut users: HashMap<Id, Vec<(Id, usize)>> = HashMap::new();
    let mut pending: HashMap<(Id, usize), usize> = HashMap::new();
    let mut heap = BinaryHeap::new();
    for &c in &classes {
        for (i, n) in eg[c].nodes.iter().enumerate() {
            if !extractable(eg, c, n) {
                continue;
            }
            let mut kids: Vec<Id> = n.children().iter().map(|k| eg.find(*k)).collect();
            kids.sort();
            kids.dedup();
            if kids.is_empty() {
                let cost = model.node_cost(eg, c, n).max(0.0);
                heap.push(Reverse(Entry {
                    cost,
                    class: c,
                    node: i,
                }));
            } else {
                pending.insert((c, i), kids.len());
                for k in kids {
                    users.entry(k).or_default().push((c, i));
                }
            }
        }
    }
    let mut out = Extraction::default();
    while let Some(Reverse(Entry { cost, class, node })) = heap.pop() {
        if out.cost.contains_key(&class) || !cost.is_finite() {
            continue;
        }
        let chosen = eg[class].nodes[node].clone().map_children(|k| eg.find(k));
        out.cost.insert(class, cost);
        out.choice.insert(class, chosen);
        for &(uc, ui) in users.get(&class).map(Vec::as_slice).unwrap_or(&[]) {
            if out.cost.contains_key(&uc) {
                continue;
            }
            let Some(left) = pending.get_mut(&(uc, ui)) else {
                continue;
            };
            *left -= 1;
            if *left == 0 {
                let n = &eg[uc].nodes[ui];
                let mut kids: Vec<Id> = n.children().iter().map(|k| eg.find(*k)).collect();
                kids.sort();
                kids.dedup();
                let below: f64 = kids.iter().map(|k| out.cost[k]).sum();
                let c = model.node_cost(eg, uc, n).max(0.0) + below;
                heap.push(Reverse(Entry {
                    cost: c,
                    class: uc,
                    node: ui,
                }));
            }
        }
    }
    out
}
