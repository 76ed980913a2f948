//! Splitting a graph into regions saturated one at a time, so a large graph never becomes
//! one large e-graph.
//!
//! Regions are runs of the topological order of at most `max` op nodes (constants are
//! leaves, in no region). Each cut is placed, among the positions between half and all
//! of the allowed size, where the fewest values cross it: in a transformer that is the
//! residual stream between layers, so the patterns of a layer stay within one region.

use std::collections::HashMap;

use smelt_ir::{Graph, NodeId, OpKind};

use crate::error::RewriteError;

/// The regions of `g`, each in topological order; one region if `max` is 0 or the graph
/// is small enough.
pub fn partition(g: &Graph, max: usize) -> Result<Vec<Vec<NodeId>>, RewriteError> {
    let order: Vec<NodeId> = g
        .topo_order()?
        .into_iter()
        .filter(|n| g.node(*n).op != OpKind::Const)
        .collect();
    if max == 0 || order.len() <= max {
        return Ok(if order.is_empty() {
            vec![]
        } else {
            vec![order]
        });
    }
    let pos: HashMap<NodeId, usize> = order.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    // width[i]: values defined at or before position i and read after it.
    let mut delta = vec![0i64; order.len() + 1];
    for (i, n) in order.iter().enumerate() {
        for o in &g.node(*n).outputs {
            let last = g
                .consumers(*o)
                .iter()
                .filter_map(|(c, _)| pos.get(c))
                .max()
                .copied();
            if let Some(last) = last.filter(|l| *l > i) {
                delta[i] += 1;
                delta[last] -= 1;
            }
        }
    }
    let mut width = Vec::with_capacity(order.len());
    let mut acc = 0i64;
    for d in &delta[..order.len()] {
        acc += d;
        width.push(acc);
    }
    let mut regions = vec![];
    let mut start = 0;
    while order.len() - start > max {
        let lo = start + (max / 2).max(1) - 1;
        let hi = start + max - 1;
        // the narrowest cut, the latest among equals (bigger regions, fewer cuts)
        let cut = (lo..=hi)
            .min_by_key(|&c| (width[c], std::cmp::Reverse(c)))
            .unwrap_or(hi);
        regions.push(order[start..=cut].to_vec());
        start = cut + 1;
    }
    regions.push(order[start..].to_vec());
    Ok(regions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_fall_where_fewest_values_cross() {
        // a chain where cutting after `b` would cut two values (`a` and `b`, both read
        // by `c`); every later cut crosses one, and the latest allowed one is taken
        let g = smelt_ir::text::parse(
            "graph @g(%x: f32[2]) -> (f32[2]) {
  %a = exp(%x) : f32[2]
  %b = exp(%a) : f32[2]
  %c = add(%a, %b) : f32[2]
  %d = exp(%c) : f32[2]
  %e = exp(%d) : f32[2]
  %f = exp(%e) : f32[2]
  return %f
}",
        )
        .unwrap();
        let regions = partition(&g, 4).unwrap();
        let sizes: Vec<usize> = regions.iter().map(Vec::len).collect();
        assert_eq!(sizes, [4, 2]);
        assert_eq!(partition(&g, 0).unwrap().len(), 1);
        assert_eq!(partition(&g, 100).unwrap().len(), 1);
        assert_eq!(partition(&g, 1).unwrap().len(), 6);
    }
}
