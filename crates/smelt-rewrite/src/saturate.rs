//! Bounded equality saturation of one stage.
//!
//! Each iteration searches every rule of the stage on the clean e-graph, then applies all
//! matches and rebuilds (egg's usual two-phase loop, so the order of rules does not
//! matter). It stops when nothing changes, or at the iteration, e-node or time limit;
//! which one is reported.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use egg::{Id, Searcher, Subst};

use crate::analysis::IrEGraph;
use crate::pattern::{search, Match, OpIndex};
use crate::rhs::{instantiate, instantiate_pattern};
use crate::ruleset::{Body, Stage};

/// Bounds on saturation.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Iterations per stage (and region).
    pub iterations: usize,
    /// E-nodes per e-graph (one region).
    pub nodes: usize,
    /// Wall time for the whole rewrite.
    pub time: Duration,
    /// Matches applied per rule and iteration.
    pub matches_per_rule: usize,
}

impl Default for Limits {
    /// 30 iterations, 100 000 e-nodes, 10 s, 10 000 matches per rule and iteration.
    fn default() -> Self {
        Limits {
            iterations: 30,
            nodes: 100_000,
            time: Duration::from_secs(10),
            matches_per_rule: 10_000,
        }
    }
}

/// Why saturation of a stage stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// No rule changed the e-graph: saturated.
    Saturated,
    /// The iteration limit was reached.
    IterationLimit,
    /// The e-graph grew past the e-node limit.
    NodeLimit,
    /// The time limit passed.
    TimeLimit,
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stop::Saturated => "saturated",
            Stop::IterationLimit => "iteration limit",
            Stop::NodeLimit => "e-node limit",
            Stop::TimeLimit => "time limit",
        })
    }
}

/// The record of saturating one stage.
#[derive(Debug, Clone, PartialEq)]
pub struct StageRun {
    /// The stage's name.
    pub stage: String,
    /// Iterations run.
    pub iterations: usize,
    /// Why it stopped.
    pub stop: Stop,
    /// E-nodes afterwards.
    pub nodes: usize,
    /// E-classes afterwards.
    pub classes: usize,
    /// Successful rewrites (unions that merged two classes).
    pub applied: usize,
}

enum Found {
    Text(Vec<Match>),
    Egg(Vec<egg::SearchMatches<'static, crate::lang::IrLang>>),
    Rust(Vec<(Id, Subst)>),
}

/// Saturate `stage` on `eg` within `limits` (`deadline` is the end of the whole run);
/// successful rewrites are counted per rule name into `fired`.
pub fn saturate(
    eg: &mut IrEGraph,
    stage: &Stage,
    limits: &Limits,
    deadline: Instant,
    fired: &mut BTreeMap<String, usize>,
) -> StageRun {
    let rules: Vec<_> = stage.rules.iter().filter(|r| !r.is_report()).collect();
    let mut run = StageRun {
        stage: stage.name.clone(),
        iterations: 0,
        stop: Stop::IterationLimit,
        nodes: 0,
        classes: 0,
        applied: 0,
    };
    eg.rebuild();
    for _ in 0..limits.iterations {
        if Instant::now() >= deadline {
            run.stop = Stop::TimeLimit;
            break;
        }
        run.iterations += 1;
        let index = OpIndex::new(eg);
        let mut found = Vec::with_capacity(rules.len());
        for rule in &rules {
            let f = match &rule.body {
                Body::Text { lhs, conds, .. } => {
                    let ms = search(eg, &index, lhs, limits.matches_per_rule);
                    Found::Text(
                        ms.into_iter()
                            .filter(|m| conds.iter().all(|c| c.holds(eg, m)))
                            .collect(),
                    )
                }
                Body::Egg(rw) => Found::Egg(
                    rw.search_with_limit(eg, limits.matches_per_rule)
                        .into_iter()
                        .map(|m| egg::SearchMatches {
                            eclass: m.eclass,
                            substs: m.substs,
                            ast: None,
                        })
                        .collect(),
                ),
                Body::Rust { lhs, conds, .. } => {
                    let mut v = vec![];
                    for m in lhs.search_with_limit(eg, limits.matches_per_rule) {
                        for s in m.substs {
                            if conds.iter().all(|c| c(eg, m.eclass, &s)) {
                                v.push((m.eclass, s));
                            }
                        }
                    }
                    Found::Rust(v)
                }
            };
            found.push(f);
        }
        let mut changed = 0usize;
        for (rule, f) in rules.iter().zip(found) {
            let n = match (&rule.body, f) {
                (Body::Text { rhs: Some(rhs), .. }, Found::Text(ms)) => {
                    let mut n = 0;
                    for m in ms {
                        if let Some(new) = instantiate(eg, rhs, &m) {
                            n += usize::from(eg.union(m.root, new));
                        }
                    }
                    n
                }
                (Body::Egg(rw), Found::Egg(ms)) => rw.apply(eg, &ms).len(),
                (Body::Rust { rhs, .. }, Found::Rust(ms)) => {
                    let mut n = 0;
                    for (class, s) in ms {
                        if let Some(new) = instantiate_pattern(eg, &rhs.ast, &s, class) {
                            n += usize::from(eg.union(class, new));
                        }
                    }
                    n
                }
                _ => 0,
            };
            if n > 0 {
                *fired.entry(rule.name.clone()).or_default() += n;
            }
            changed += n;
        }
        eg.rebuild();
        run.applied += changed;
        if changed == 0 {
            run.stop = Stop::Saturated;
            break;
        }
        if eg.total_number_of_nodes() > limits.nodes {
            run.stop = Stop::NodeLimit;
            break;
        }
    }
    run.nodes = eg.total_number_of_nodes();
    run.classes = eg.number_of_classes();
    run
}
