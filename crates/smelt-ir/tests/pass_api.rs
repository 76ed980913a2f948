//! The pass API: registry, typed options, pipelines, the manager and the verifier.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use smelt_ir::pass::{OptionKind, OptionSpec, PrintIr};
use smelt_ir::*;

/// Appends `relu` to the output, `times` times.
struct AddRelu {
    times: i64,
}

impl Pass for AddRelu {
    fn name(&self) -> &str {
        "add-relu"
    }
    fn run(&self, g: &mut Graph, cx: &mut PassContext) -> IrResult<PassReport> {
        for _ in 0..self.times {
            let out = g.outputs()[0];
            let ty = g.ty(out).clone();
            let r = g.add_simple(OpKind::Relu, Attrs::new(), &[out], "", ty)?;
            g.set_outputs(vec![r]);
        }
        cx.note(format!("added {}", self.times));
        Ok(PassReport::counted(self.times as usize, "relus added"))
    }
}

/// Breaks the graph: records a wrong output type.
struct Breaker;

impl Pass for Breaker {
    fn name(&self) -> &str {
        "breaker"
    }
    fn run(&self, g: &mut Graph, _cx: &mut PassContext) -> IrResult<PassReport> {
        let out = g.outputs()[0];
        g.set_type(out, TensorType::known(DType::F32, &[99]));
        Ok(PassReport::changed("broke it"))
    }
}

fn registry() -> PassRegistry {
    let mut reg = PassRegistry::new();
    reg.register(
        "add-relu",
        "append relus",
        vec![
            OptionSpec {
                name: "times",
                kind: OptionKind::Int { min: 0, max: 5 },
                default: Some("1"),
                help: "how many",
            },
            OptionSpec {
                name: "mode",
                kind: OptionKind::Enum(&["a", "b"]),
                default: None,
                help: "unused",
            },
        ],
        |o| {
            Ok(Box::new(AddRelu {
                times: o.int("times").unwrap_or(1),
            }))
        },
    );
    reg.register_simple("breaker", "breaks the graph", || Box::new(Breaker));
    reg
}

fn small_graph() -> Graph {
    let mut g = Graph::new("g");
    let x = g.add_input("x", TensorType::known(DType::F32, &[2]));
    let y = g
        .add_simple(
            OpKind::Abs,
            Attrs::new(),
            &[x],
            "y",
            TensorType::known(DType::F32, &[2]),
        )
        .unwrap();
    g.set_outputs(vec![y]);
    g
}

#[test]
fn options_are_typed_and_defaulted() {
    let reg = registry();
    let mut g = small_graph();
    let mut pm = PassManager::from_pipeline(&reg, "add-relu,add-relu{times=3}").unwrap();
    let mut cx = PassContext::default();
    let runs = pm.run(&mut g, &mut cx).unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!((runs[0].ops_before, runs[0].ops_after), (1, 2));
    assert_eq!((runs[1].ops_before, runs[1].ops_after), (2, 5));
    assert_eq!(runs[1].report.notes, vec!["3 relus added".to_string()]);
    assert_eq!(cx.diagnostics.len(), 2);
    assert_eq!(cx.diagnostics[1].pass, "add-relu");

    for (bad, want) in [
        ("add-relu{times=9}", "must be in 0..=5"),
        ("add-relu{times=x}", "must be an integer"),
        ("add-relu{mode=c}", "must be one of a, b"),
        ("add-relu{colour=red}", "has no option `colour`"),
        ("add-relu{times=1,times=2}", "given twice"),
        ("nosuch", "unknown pass `nosuch`"),
    ] {
        let e = PassManager::from_pipeline(&reg, bad)
            .err()
            .expect(bad)
            .to_string();
        assert!(e.contains(want), "{bad}: {e}");
    }
}

#[test]
fn manager_verifies_and_prints() {
    let reg = registry();
    let mut g = small_graph();
    let mut pm = PassManager::from_pipeline(&reg, "add-relu,breaker").unwrap();
    pm.verify_each(true);
    let printed = Arc::new(Mutex::new(vec![]));
    let sink = printed.clone();
    pm.print_ir(
        PrintIr::After(vec!["add-relu".into()]),
        Some(Box::new(move |name: &str, g: &Graph| {
            sink.lock()
                .unwrap()
                .push((name.to_string(), text::print(g)))
        })),
    );
    let e = pm
        .run(&mut g, &mut PassContext::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("pass `breaker`: left an invalid graph"), "{e}");
    let printed = printed.lock().unwrap();
    assert_eq!(printed.len(), 1);
    assert!(printed[0].1.contains("= relu(%y)"), "{}", printed[0].1);
}

#[test]
fn verifier_names_node_and_value() {
    // A type that contradicts inference.
    let mut g = Graph::new("g");
    let x = g.add_input("x", TensorType::known(DType::F32, &[2, 3]));
    let t = g
        .add_node(
            "/t",
            OpKind::Transpose,
            Attrs::new(),
            vec![Some(x)],
            vec![("tt".into(), TensorType::known(DType::F32, &[2, 3]))],
        )
        .unwrap();
    let tt = g.node(t).outputs[0];
    g.set_outputs(vec![tt]);
    let e = verify::verify(&g).unwrap_err().to_string();
    assert!(e.contains("`/t`") && e.contains("`tt`"), "{e}");

    // An encoded constant read by an op that cannot decode it.
    let mut g = Graph::new("g");
    let codes = Tensor::from_bytes(DType::I4, vec![4], Bytes::from(vec![0u8; 2])).unwrap();
    let scales = Tensor::from_vec(vec![], vec![1.0f32]).unwrap();
    let c = Constant::encoded(
        DType::F32,
        vec![4],
        "blockwise<i4, scale=f32>".parse().unwrap(),
        vec![
            Part {
                name: "codes".into(),
                tensor: codes,
            },
            Part {
                name: "scales".into(),
                tensor: scales,
            },
        ],
    )
    .unwrap();
    let w = g.add_const("w", c);
    let r = g
        .add_simple(
            OpKind::Relu,
            Attrs::new(),
            &[w],
            "r",
            TensorType::known(DType::F32, &[4]),
        )
        .unwrap();
    g.set_outputs(vec![r]);
    let e = verify::verify(&g).unwrap_err().to_string();
    assert!(
        e.contains("cannot read an encoded") && e.contains("`w`"),
        "{e}"
    );

    // A cycle.
    let mut g = small_graph();
    let y = g.outputs()[0];
    let (abs, _) = g.producer(y).unwrap();
    g.set_input(abs, 0, Some(y)).unwrap();
    let e = verify::verify(&g).unwrap_err().to_string();
    assert!(e.contains("cycle"), "{e}");
}

#[test]
fn graph_edits_keep_edges_in_sync() {
    let mut g = small_graph();
    let x = g.inputs()[0];
    let y = g.outputs()[0];
    let z = g
        .add_simple(
            OpKind::Neg,
            Attrs::new(),
            &[y],
            "z",
            TensorType::known(DType::F32, &[2]),
        )
        .unwrap();
    assert_eq!(g.consumers(y).len(), 1);
    g.replace_all_uses(y, x);
    assert!(g.consumers(y).is_empty());
    assert_eq!(g.consumers(x).len(), 2);
    let (abs, _) = g.producer(y).unwrap();
    g.remove_node(abs).unwrap();
    g.set_outputs(vec![z]);
    assert_eq!(g.topo_order().unwrap().len(), 1);
    // the freed name can be reused
    let w = g
        .add_simple(
            OpKind::Abs,
            Attrs::new(),
            &[x],
            "y",
            TensorType::known(DType::F32, &[2]),
        )
        .unwrap();
    assert_eq!(g.value(w).name, "y");
}
