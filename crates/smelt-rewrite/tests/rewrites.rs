//! The rewriter on small hand-written graphs: shipped rules, Rust rules, limits, cost
//! models, reports and the passes.

mod common;

use std::time::Duration;

use common::{op_count, parse};
use egg::{rewrite, Id, Subst};
use smelt_ir::text::print;
use smelt_ir::{Graph, PassContext, PassManager, PassRegistry};
use smelt_rewrite::{
    cond, extract, register_rewrite_passes, rule, shipped, shipped_list, CostModel, IrEGraph,
    NodeCount, Rewriter, Roofline, Rule, RuleSet, Stop,
};

fn simplify(text: &str) -> (Graph, smelt_rewrite::RewriteReport) {
    let mut g = parse(text);
    let r = Rewriter::new(&[shipped("simplify").unwrap()])
        .run(&mut g)
        .unwrap();
    smelt_ir::verify::verify(&g).unwrap();
    (g, r)
}

fn recognize(text: &str) -> (Graph, smelt_rewrite::RewriteReport) {
    let mut g = parse(text);
    let r = Rewriter::new(&shipped_list("simplify,recognize").unwrap())
        .run(&mut g)
        .unwrap();
    smelt_ir::verify::verify(&g).unwrap();
    (g, r)
}

#[test]
fn transposes_compose_and_vanish() {
    let (g, r) = simplify(
        "graph @g(%x: f32[2, 3, 4]) -> (f32[4, 2, 3], f32[2, 3, 4]) {
  %a = transpose(%x) {perm = [0, 2, 1]} : f32[2, 4, 3]
  %b = transpose(%a) {perm = [1, 0, 2]} : f32[4, 2, 3]
  %c = transpose(%x) {perm = [2, 0, 1]} : f32[4, 2, 3]
  %d = transpose(%c) {perm = [1, 2, 0]} : f32[2, 3, 4]
  %e = relu(%d) : f32[2, 3, 4]
  return %b, %e
}",
    );
    // (each application can enable more in an e-graph; the count is of merges)
    assert!(r.fired["transpose-transpose"] >= 2);
    let text = print(&g);
    assert!(
        text.contains("%b = transpose(%x) {perm = [2, 0, 1]}"),
        "{text}"
    );
    assert!(text.contains("%e = relu(%x)"), "{text}");
    assert_eq!(op_count(&g, "transpose"), 1);
}

#[test]
fn reshape_chains_and_neutral_elements() {
    let (g, r) = simplify(
        "graph @g(%x: f32[2, 6]) -> (f32[3, 4]) {
  %s1 = const i64[1] [12]
  %s2 = const i64[2] [3, 4]
  %one = const f32[6] [1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
  %zero = const f32[] [0.0]
  %m = mul(%one, %x) : f32[2, 6]
  %a = add(%m, %zero) : f32[2, 6]
  %r1 = reshape(%a, %s1) : f32[12]
  %r2 = reshape(%r1, %s2) : f32[3, 4]
  return %r2
}",
    );
    assert_eq!(g.op_count(), 1, "{}", print(&g));
    assert!(
        print(&g).contains("%r2 = reshape(%x, %s2)"),
        "{}",
        print(&g)
    );
    assert!(
        r.fired.contains_key("mul-one")
            && r.fired.contains_key("add-zero")
            && r.fired.contains_key("reshape-reshape")
    );
    // constants only the removed nodes read are gone too
    assert!(g.value_by_name("one").is_none() && g.value_by_name("s1").is_none());
}

#[test]
fn broadcasting_neutral_elements_stay() {
    let text = "graph @g(%x: f32[3]) -> (f32[2, 3]) {
  %z = const f32[2, 3] [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
  %0 = add(%x, %z) : f32[2, 3]
  return %0
}";
    let (g, r) = simplify(text);
    assert!(!r.changed);
    assert_eq!(print(&g), print(&parse(text)));
}

#[test]
fn scalar_scales_move_onto_weights() {
    let (g, r) = simplify(
        "graph @g(%x: f32[?b, 4]) -> (f32[?b, 2]) {
  %c = const f32[] [0.125]
  %w = const f32[4, 2] [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
  %s = mul(%x, %c) : f32[?b, 4]
  %y = matmul(%s, %w) : f32[?b, 2]
  return %y
}",
    );
    assert_eq!(r.fired["matmul-scale-input"], 1);
    let text = print(&g);
    assert!(text.contains("mul(%c, %w) : f32[4, 2]"), "{text}");
    assert!(text.contains("%y = matmul(%x, "), "{text}");
}

const GELU_FORMS: &[&str] = &[
    // torch: x * (erf(x / sqrt2) + 1) * 0.5
    "%d = div(%x, %s) : f32[2, 8]
  %e = erf(%d) : f32[2, 8]
  %a = add(%e, %one) : f32[2, 8]
  %m = mul(%x, %a) : f32[2, 8]
  %y = mul(%m, %half) : f32[2, 8]",
    // x * 0.5 * (1 + erf(x * 0.70710678))
    "%d = mul(%x, %r) : f32[2, 8]
  %e = erf(%d) : f32[2, 8]
  %a = add(%one, %e) : f32[2, 8]
  %m = mul(%half, %x) : f32[2, 8]
  %y = mul(%m, %a) : f32[2, 8]",
    // x * (0.5 * (1 + erf(x / sqrt2)))
    "%d = div(%x, %s) : f32[2, 8]
  %e = erf(%d) : f32[2, 8]
  %a = add(%e, %one) : f32[2, 8]
  %m = mul(%half, %a) : f32[2, 8]
  %y = mul(%m, %x) : f32[2, 8]",
];

#[test]
fn gelu_erf_forms_are_recognised() {
    for body in GELU_FORMS {
        let text = format!(
            "graph @g(%x: f32[2, 8]) -> (f32[2, 8]) {{
  %s = const f32[] [1.4142135]
  %r = const f32[] [0.70710677]
  %one = const f32[] [1.0]
  %half = const f32[] [0.5]
  {body}
  return %y
}}"
        );
        let (g, r) = recognize(&text);
        assert_eq!(r.fired.get("gelu-erf"), Some(&1), "{body}");
        let out = print(&g);
        assert!(
            out.contains("%y = gelu(%x) {approximate = \"none\"} : f32[2, 8]"),
            "{out}"
        );
        assert_eq!(g.op_count(), 1, "{out}");
        for c in ["s", "one", "half"] {
            if body.contains(&format!("%{c})")) || body.contains(&format!("%{c},")) {
                assert!(
                    g.value_by_name(c).is_none(),
                    "constants only the old nodes read go: {out}"
                );
            }
        }
    }
}

#[test]
fn gelu_tanh_layer_norm_and_softmax_are_recognised() {
    let (g, r) = recognize(
        "graph @g(%x: f32[2, 8]) -> (f32[2, 8]) {
  %three = const f32[] [3.0]
  %k = const f32[] [0.044715]
  %c = const f32[] [0.7978846]
  %one = const f32[] [1.0]
  %half = const f32[] [0.5]
  %p = pow(%x, %three) : f32[2, 8]
  %q = mul(%k, %p) : f32[2, 8]
  %i = add(%x, %q) : f32[2, 8]
  %j = mul(%c, %i) : f32[2, 8]
  %t = tanh(%j) : f32[2, 8]
  %a = add(%one, %t) : f32[2, 8]
  %h = mul(%half, %x) : f32[2, 8]
  %y = mul(%h, %a) : f32[2, 8]
  return %y
}",
    );
    assert_eq!(r.fired.get("gelu-tanh"), Some(&1));
    assert!(print(&g).contains("gelu(%x) {approximate = \"tanh\"}"));

    let (g, r) = recognize(
        "graph @g(%x: f32[?b, 4, 8]) -> (f32[?b, 4, 8]) {
  %ax = const i64[1] [-1]
  %two = const f32[] [2.0]
  %eps = const f32[] [1e-12]
  %gamma = const f32[8] [1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 1.0, 2.0]
  %beta = const f32[8] [0.0, 0.5, 0.0, 0.5, 0.0, 0.5, 0.0, 0.5]
  %mu = reduce_mean(%x, %ax) {keepdims = 1} : f32[?b, 4, 1]
  %d = sub(%x, %mu) : f32[?b, 4, 8]
  %sq = pow(%d, %two) : f32[?b, 4, 8]
  %var = reduce_mean(%sq, %ax) {keepdims = 1} : f32[?b, 4, 1]
  %ve = add(%var, %eps) : f32[?b, 4, 1]
  %sd = sqrt(%ve) : f32[?b, 4, 1]
  %n = div(%d, %sd) : f32[?b, 4, 8]
  %s = mul(%n, %gamma) : f32[?b, 4, 8]
  %y = add(%s, %beta) : f32[?b, 4, 8]
  return %y
}",
    );
    assert_eq!(r.fired.get("layer-norm"), Some(&1));
    let text = print(&g);
    assert!(
        text.contains("%y = layer_normalization(%x, %gamma, %beta) {axis = -1, epsilon = 1e-12}"),
        "{text}"
    );
    assert_eq!(g.op_count(), 1);

    let (g, r) = recognize(
        "graph @g(%x: f32[3, 5]) -> (f32[3, 5]) {
  %ax = const i64[1] [1]
  %m = reduce_max(%x, %ax) {keepdims = 1} : f32[3, 1]
  %d = sub(%x, %m) : f32[3, 5]
  %e = exp(%d) : f32[3, 5]
  %s = reduce_sum(%e, %ax) : f32[3, 1]
  %y = div(%e, %s) : f32[3, 5]
  return %y
}",
    );
    assert_eq!(r.fired.get("softmax"), Some(&1));
    assert_eq!(r.fired.get("softmax-shift"), Some(&1));
    assert!(
        print(&g).contains("%y = softmax(%x) {axis = 1}"),
        "{}",
        print(&g)
    );
}

#[test]
fn near_misses_are_left_alone() {
    // 0.6 is not GELU's 0.5; a reduce over the first axis is not a last-axis LayerNorm
    let text = "graph @g(%x: f32[2, 8]) -> (f32[2, 8]) {
  %s = const f32[] [1.4142135]
  %one = const f32[] [1.0]
  %half = const f32[] [0.6]
  %d = div(%x, %s) : f32[2, 8]
  %e = erf(%d) : f32[2, 8]
  %a = add(%e, %one) : f32[2, 8]
  %m = mul(%x, %a) : f32[2, 8]
  %y = mul(%m, %half) : f32[2, 8]
  return %y
}";
    let (g, r) = recognize(text);
    assert!(r.fired.is_empty() && !r.changed);
    assert_eq!(print(&g), print(&parse(text)));
}

fn is_small(eg: &IrEGraph, _: Id, s: &Subst) -> bool {
    let x = s[cond::var("?x").unwrap()];
    eg[x].data.num_elements().is_some_and(|n| n <= 8)
}

#[test]
fn rust_rules_with_plain_function_conditions() {
    let text = "graph @g(%x: f32[2, 3], %y: f32[2, 3]) -> (f32[2, 3]) {
  %a = neg(%x) : f32[2, 3]
  %b = neg(%a) : f32[2, 3]
  %c = add(%b, %y) : f32[2, 3]
  return %c
}";
    let mut set = RuleSet::new("mine");
    set.push(
        rule!("double-neg"; "(neg (neg ?x))" => "?x" if is_small, cond::when_rank("?x", 2))
            .unwrap(),
    );
    let mut g = parse(text);
    let r = Rewriter::new(&[set]).run(&mut g).unwrap();
    assert_eq!(r.fired["double-neg"], 1);
    assert!(print(&g).contains("%c = add(%x, %y)"));

    // a condition that fails keeps the graph
    fn never(_: &IrEGraph, _: Id, _: &Subst) -> bool {
        false
    }
    let mut set = RuleSet::new("mine");
    set.push(Rule::rust("double-neg", "(neg (neg ?x))", "?x", vec![never]).unwrap());
    let mut g = parse(text);
    assert!(!Rewriter::new(&[set]).run(&mut g).unwrap().changed);

    // raw egg rewrites work too; ops with attributes are written as in RecExprs
    let mut set = RuleSet::new("egg");
    set.push(Rule::from_rewrite(
        rewrite!("swap"; "(add ?a ?b)" => "(add ?b ?a)"),
    ));
    set.push(
        Rule::rust::<fn(&IrEGraph, Id, &Subst) -> bool>(
            "t",
            "(transpose{perm=[1,0]} (transpose{perm=[1,0]} ?x))",
            "?x",
            vec![],
        )
        .unwrap(),
    );
    let mut g = parse(
        "graph @g(%x: f32[2, 3]) -> (f32[2, 3]) {
  %a = transpose(%x) {perm = [1, 0]} : f32[3, 2]
  %b = transpose(%a) {perm = [1, 0]} : f32[2, 3]
  %c = add(%b, %x) : f32[2, 3]
  return %c
}",
    );
    let r = Rewriter::new(&[set]).run(&mut g).unwrap();
    assert_eq!(r.fired["t"], 1);
    assert_eq!(g.op_count(), 1);
    // malformed Rust rules are errors naming the rule
    let e = Rule::rust::<fn(&IrEGraph, Id, &Subst) -> bool>("bad", "(neg ?x)", "?y", vec![])
        .unwrap_err();
    assert!(e.to_string().starts_with("rule `bad`"), "{e}");
}

#[test]
fn limits_are_reported() {
    // grows forever: every iteration wraps the sum once more
    let set: RuleSet = "grow: (add ?a ?b) => (add ?b (add ?a (sub ?b ?b)))"
        .parse()
        .unwrap();
    let text = "graph @g(%x: f32[4], %y: f32[4]) -> (f32[4]) {
  %s = add(%x, %y) : f32[4]
  return %s
}";
    let mut rw = Rewriter::new(&[set]);
    rw.options.limits.iterations = 3;
    let r = rw.run(&mut parse(text)).unwrap();
    assert_eq!(
        r.limits_hit,
        vec![(0, "string".to_string(), Stop::IterationLimit)]
    );
    rw.options.limits.iterations = 1000;
    rw.options.limits.nodes = 50;
    let r = rw.run(&mut parse(text)).unwrap();
    assert_eq!(r.limits_hit[0].2, Stop::NodeLimit);
    assert!(
        r.notes()
            .iter()
            .any(|n| n.contains("stopped at the e-node limit")),
        "{:?}",
        r.notes()
    );
    rw.options.limits.nodes = usize::MAX;
    rw.options.limits.time = Duration::from_millis(0);
    let r = rw.run(&mut parse(text)).unwrap();
    assert_eq!(r.limits_hit[0].2, Stop::TimeLimit);
}

#[test]
fn roofline_breaks_node_count_ties() {
    let g = parse(
        "graph @g(%x: f32[64, 64]) -> (f32[64, 64], f32[64, 64]) {
  %two = const f32[] [2.0]
  %half = const f32[] [0.5]
  %a = div(%x, %two) : f32[64, 64]
  %b = mul(%x, %half) : f32[64, 64]
  return %a, %b
}",
    );
    let mut conv = smelt_rewrite::Conversion::from_graph(&g).unwrap();
    let (a, b) = (
        conv.class_of(g.value_by_name("a").unwrap()).unwrap(),
        conv.class_of(g.value_by_name("b").unwrap()).unwrap(),
    );
    conv.egraph.union(a, b);
    conv.egraph.rebuild();
    let c = conv.egraph.find(a);
    let nodes = conv.egraph[c].nodes.clone();
    let costs: Vec<f64> = nodes
        .iter()
        .map(|n| Roofline::default().node_cost(&conv.egraph, c, n))
        .collect();
    let counts: Vec<f64> = nodes
        .iter()
        .map(|n| NodeCount.node_cost(&conv.egraph, c, n))
        .collect();
    assert_eq!(counts[0], counts[1], "a node count cannot tell them apart");
    assert_ne!(costs[0], costs[1], "the roofline can");
    let chosen = extract(&conv.egraph, &Roofline::default()).choice[&c].clone();
    assert_eq!(chosen.op_sym().unwrap().op().text_name(), "mul");
}

#[test]
fn reports_group_nodes() {
    let mut g = parse(
        "graph @g(%q: f32[2, 4, 8], %k: f32[2, 8, 4], %v: f32[2, 4, 8], %i: i32[4]) -> (f32[2, 4, 8], i32[4]) {
  %c = const f32[] [8.0]
  %two = const i32[] [2]
  %s = matmul(%q, %k) : f32[2, 4, 4]
  %t = div(%s, %c) : f32[2, 4, 4]
  %p = softmax(%t) {axis = -1} : f32[2, 4, 4]
  %o = matmul(%p, %v) : f32[2, 4, 8]
  %j = mul(%i, %two) : i32[4]
  return %o, %j
}",
    );
    let r = Rewriter::new(&shipped_list("attention,fusion,shift").unwrap())
        .run(&mut g)
        .unwrap();
    assert!(!r.changed);
    let att: Vec<_> = r.groups.iter().filter(|x| x.rule == "attention").collect();
    assert_eq!(att.len(), 1);
    assert_eq!(att[0].nodes.len(), 4);
    assert_eq!(g.value(att[0].root).name, "o");
    assert!(att[0]
        .bindings
        .iter()
        .any(|(n, v)| n == "q" && g.value(*v).name == "q"));
    let shifts: Vec<_> = r
        .groups
        .iter()
        .filter(|x| x.rule.ends_with("pow2"))
        .map(|x| (x.rule.as_str(), g.value(x.root).name.as_str()))
        .collect();
    assert_eq!(shifts, [("mul-pow2", "j"), ("div-pow2", "t")]);
    assert_eq!(smelt_rewrite::find_attention(&g).unwrap().len(), 1);
}

#[test]
fn impure_ops_are_never_merged() {
    let text = "graph @g(%x: f32[2]) -> (f32[2], f32[2]) {
  %a = my.rand(%x) : f32[2]
  %b = my.rand(%x) : f32[2]
  return %a, %b
}";
    let back = smelt_rewrite::round_trip(&parse(text)).unwrap();
    assert_eq!(back.op_count(), 2);
}

#[test]
fn passes_register_run_and_report() {
    let mut reg = PassRegistry::new();
    register_rewrite_passes(&mut reg);
    for name in [
        "simplify",
        "recognize",
        "fusion-groups",
        "shift-candidates",
        "rewrite",
    ] {
        assert!(reg.get(name).is_some(), "{name}");
    }
    let dir = std::env::temp_dir().join(format!("smelt-rewrite-pass-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rules = dir.join("x.rules");
    std::fs::write(&rules, "relu-relu: (relu (relu ?x)) => (relu ?x)\n").unwrap();
    let pipeline = format!(
        "simplify{{iters=5,region=0}},rewrite{{sets=none,rules=\"{}\"}},fusion-groups",
        rules.display()
    );
    let mut pm = PassManager::from_pipeline(&reg, &pipeline).unwrap();
    pm.verify_each(true);
    let mut g = parse(
        "graph @g(%x: f32[2, 4]) -> (f32[2, 4]) {
  %w = const f32[4, 4] [1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0]
  %b = const f32[4] [0.0, 1.0, 2.0, 3.0]
  %t = transpose(%x) {perm = [1, 0]} : f32[4, 2]
  %u = transpose(%t) {perm = [1, 0]} : f32[2, 4]
  %m = matmul(%u, %w) : f32[2, 4]
  %a = add(%m, %b) : f32[2, 4]
  %r = relu(%a) : f32[2, 4]
  %s = relu(%r) : f32[2, 4]
  return %s
}",
    );
    let mut cx = PassContext::default();
    let runs = pm.run(&mut g, &mut cx).unwrap();
    assert!(
        runs[0]
            .report
            .notes
            .iter()
            .any(|n| n.starts_with("rule transpose-transpose fired")),
        "{:?}",
        runs[0].report.notes
    );
    assert!(
        runs[1]
            .report
            .notes
            .iter()
            .any(|n| n == "rule relu-relu fired 1x"),
        "{:?}",
        runs[1].report.notes
    );
    assert!(
        runs[2]
            .report
            .notes
            .iter()
            .any(|n| n == "group matmul-bias-act: 1 match(es)"),
        "{:?}",
        runs[2].report.notes
    );
    assert!(
        cx.diagnostics
            .iter()
            .any(|d| d.message.starts_with("matmul-bias-act: %s <- [")),
        "{:?}",
        cx.diagnostics
    );
    assert_eq!(g.op_count(), 3);
    let _ = std::fs::remove_dir_all(&dir);

    let e = PassManager::from_pipeline(&reg, "rewrite{sets=nope}")
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("unknown rule set `nope`"), "{e}");
    let e = PassManager::from_pipeline(&reg, "rewrite{rules=/no/such.rules}")
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("/no/such.rules"), "{e}");
}

#[test]
fn an_ill_typed_raw_rewrite_is_an_error_and_changes_nothing() {
    // egg applies raw rewrites unchecked: this one claims squeeze(x) equals relu(x)
    let mut set = RuleSet::new("bad");
    set.push(Rule::from_rewrite(
        rewrite!("wrong"; "(relu ?x)" => "(squeeze ?x)"),
    ));
    let text = "graph @g(%x: f32[2, 1, 3]) -> (f32[2, 1, 3]) {
  %r = relu(%x) : f32[2, 1, 3]
  return %r
}";
    let mut g = parse(text);
    let e = Rewriter::new(&[set]).run(&mut g).unwrap_err().to_string();
    assert!(e.contains("rules applied: wrong"), "{e}");
    assert_eq!(print(&g), print(&parse(text)));
}
