//! The rewrite driver: regions → e-graphs → staged saturation → extraction → splice, then
//! the report rules on the result.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use smelt_ir::Graph;

use crate::convert::Conversion;
use crate::cost::{CostModel, Roofline};
use crate::error::RewriteError;
use crate::extract::extract;
use crate::region::partition;
use crate::report::{find_groups, Group};
use crate::ruleset::{Rule, RuleSet, Stage};
use crate::saturate::{saturate, Limits, Stop};
use crate::splice::{is_unchanged, replace_region};

/// How a rewrite runs.
#[derive(Clone)]
pub struct RewriteOptions {
    /// Saturation bounds.
    pub limits: Limits,
    /// Most op nodes per region (0: the whole graph is one region).
    pub region_nodes: usize,
    /// The extraction cost model.
    pub cost: Arc<dyn CostModel>,
}

impl Default for RewriteOptions {
    /// Default limits, regions of at most 200 op nodes, the roofline model on the default
    /// target.
    fn default() -> Self {
        RewriteOptions {
            limits: Limits::default(),
            region_nodes: 200,
            cost: Arc::new(Roofline::default()),
        }
    }
}

impl fmt::Debug for RewriteOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RewriteOptions")
            .field("limits", &self.limits)
            .field("region_nodes", &self.region_nodes)
            .field("cost", &self.cost.name())
            .finish()
    }
}

/// What a rewrite did.
#[derive(Debug, Clone, Default)]
pub struct RewriteReport {
    /// Whether the graph changed.
    pub changed: bool,
    /// Successful rewrites per rule name.
    pub fired: BTreeMap<String, usize>,
    /// Regions saturated.
    pub regions: usize,
    /// Regions whose extraction differed from the original and were replaced.
    pub regions_changed: usize,
    /// E-nodes of the largest e-graph (after saturation).
    pub max_nodes: usize,
    /// E-classes of the largest e-graph.
    pub max_classes: usize,
    /// E-nodes summed over regions, before and after saturation.
    pub nodes_before: usize,
    /// See `nodes_before`.
    pub nodes_after: usize,
    /// Stages that stopped at a limit: `(region, stage, reason)`.
    pub limits_hit: Vec<(usize, String, Stop)>,
    /// Time building e-graphs and saturating.
    pub saturate_time: Duration,
    /// Time extracting and splicing.
    pub extract_time: Duration,
    /// Time matching report rules.
    pub report_time: Duration,
    /// Groups found by report rules.
    pub groups: Vec<Group>,
}

impl RewriteReport {
    /// Short notes for a pass report.
    pub fn notes(&self) -> Vec<String> {
        let mut notes = vec![];
        for (rule, n) in &self.fired {
            notes.push(format!("rule {rule} fired {n}x"));
        }
        if self.regions > 0 {
            notes.push(format!(
            "e-graphs: {} region(s), {} changed, {} -> {} e-nodes (largest {} e-nodes / {} classes); saturate {:.1} ms, extract {:.1} ms, report {:.1} ms",
            self.regions,
            self.regions_changed,
            self.nodes_before,
            self.nodes_after,
            self.max_nodes,
            self.max_classes,
            self.saturate_time.as_secs_f64() * 1e3,
            self.extract_time.as_secs_f64() * 1e3,
            self.report_time.as_secs_f64() * 1e3,
        ));
        } else if !self.groups.is_empty() {
            notes.push(format!(
                "report {:.1} ms",
                self.report_time.as_secs_f64() * 1e3
            ));
        }
        for (region, stage, stop) in &self.limits_hit {
            notes.push(format!(
                "region {region}, stage {stage}: stopped at the {stop}"
            ));
        }
        let mut per_rule: BTreeMap<&str, usize> = BTreeMap::new();
        for g in &self.groups {
            *per_rule.entry(&g.rule).or_default() += 1;
        }
        for (rule, n) in per_rule {
            notes.push(format!("group {rule}: {n} match(es)"));
        }
        notes
    }
}

/// Runs rule sets over graphs.
#[derive(Clone, Debug)]
pub struct Rewriter {
    stages: Vec<Stage>,
    /// Report rules, per rule set (each set partitions the graph on its own).
    reports: Vec<Vec<Rule>>,
    /// How it runs.
    pub options: RewriteOptions,
}

impl Rewriter {
    /// A rewriter for `sets` (their stages in order) with default options.
    pub fn new(sets: &[RuleSet]) -> Rewriter {
        Rewriter::with_options(sets, RewriteOptions::default())
    }

    /// A rewriter with explicit options.
    pub fn with_options(sets: &[RuleSet], options: RewriteOptions) -> Rewriter {
        let mut stages = vec![];
        let mut reports = vec![];
        for set in sets {
            let mut mine = vec![];
            for s in &set.stages {
                mine.extend(s.rules.iter().filter(|r| r.is_report()).cloned());
                let rules: Vec<Rule> = s.rules.iter().filter(|r| !r.is_report()).cloned().collect();
                if !rules.is_empty() {
                    stages.push(Stage {
                        name: s.name.clone(),
                        rules,
                    });
                }
            }
            if !mine.is_empty() {
                reports.push(mine);
            }
        }
        Rewriter {
            stages,
            reports,
            options,
        }
    }

    /// The rewrite stages.
    pub fn stages(&self) -> &[Stage] {
        &self.stages
    }

    /// Rewrite `g` in place, then match the report rules on the result. On error `g` is
    /// left as it was.
    pub fn run(&self, graph: &mut Graph) -> Result<RewriteReport, RewriteError> {
        // Work on a copy (constants are shared, not copied) so a failure changes nothing.
        let mut work = graph.clone();
        let report = self.run_on(&mut work)?;
        if report.changed {
            *graph = work;
        }
        Ok(report)
    }

    fn run_on(&self, g: &mut Graph) -> Result<RewriteReport, RewriteError> {
        let mut report = RewriteReport::default();
        let start = Instant::now();
        let deadline = start + self.options.limits.time;
        if !self.stages.is_empty() {
            let regions = partition(g, self.options.region_nodes)?;
            report.regions = regions.len();
            for (ri, region) in regions.iter().enumerate() {
                let t0 = Instant::now();
                let mut conv = Conversion::from_region(g, region)?;
                report.nodes_before += conv.egraph.total_number_of_nodes();
                let mut applied = 0;
                for stage in &self.stages {
                    let run = saturate(
                        &mut conv.egraph,
                        stage,
                        &self.options.limits,
                        deadline,
                        &mut report.fired,
                    );
                    applied += run.applied;
                    if run.stop != Stop::Saturated {
                        report.limits_hit.push((ri, stage.name.clone(), run.stop));
                    }
                }
                let (nodes, classes) = (
                    conv.egraph.total_number_of_nodes(),
                    conv.egraph.number_of_classes(),
                );
                report.nodes_after += nodes;
                if nodes > report.max_nodes {
                    report.max_nodes = nodes;
                    report.max_classes = classes;
                }
                report.saturate_time += t0.elapsed();
                if applied == 0 {
                    continue;
                }
                if conv.egraph.classes().any(|c| c.data.conflict) {
                    return Err(RewriteError::Invalid {
                        rules: report.fired.keys().cloned().collect::<Vec<_>>().join(", "),
                        msg: format!("region {ri}: values of different types were made equal"),
                    });
                }
                let t1 = Instant::now();
                let ex = extract(&conv.egraph, self.options.cost.as_ref());
                if !is_unchanged(&conv, &ex) {
                    replace_region(g, &conv, &ex, region)?;
                    report.regions_changed += 1;
                    report.changed = true;
                }
                report.extract_time += t1.elapsed();
            }
            if report.changed {
                let invalid = |msg: String| RewriteError::Invalid {
                    rules: report.fired.keys().cloned().collect::<Vec<_>>().join(", "),
                    msg,
                };
                g.infer_types().map_err(|e| invalid(e.to_string()))?;
                smelt_ir::verify::verify(g).map_err(|e| invalid(e.to_string()))?;
            }
        }
        let t2 = Instant::now();
        for set in &self.reports {
            report.groups.extend(find_groups(g, set)?);
        }
        report.report_time = t2.elapsed();
        Ok(report)
    }
}

/// Rewrite `g` with `sets` under default options.
pub fn rewrite(g: &mut Graph, sets: &[RuleSet]) -> Result<RewriteReport, RewriteError> {
    Rewriter::new(sets).run(g)
}

/// Graph → e-graph → graph with no rules: the graph back, names kept (identical nodes
/// merged, as hash-consing does).
pub fn round_trip(g: &Graph) -> Result<Graph, RewriteError> {
    let conv = Conversion::from_graph(g)?;
    let ex = extract(&conv.egraph, &Roofline::default());
    crate::splice::to_graph(&conv, &ex)
}
