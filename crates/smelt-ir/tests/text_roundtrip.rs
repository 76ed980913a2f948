//! The textual IR round-trips exactly: print(parse(print(g))) == print(g).

use bytes::Bytes;
use proptest::prelude::*;
use smelt_ir::text::{parse, parse_with, print};
use smelt_ir::*;

const SAMPLE: &str = r#"graph @mlp(%x: f32[?batch, 4], %"odd name": i64[*]) -> (f32[?batch, 4], i64[2]) {
  %w = const f32[4, 5] #WHASH
  %b = const f32[4] [0.5, -1.0, 1e-12, NaN]
  %s = const i64[2] [-1, 4]
  %q = const i4[3] x"f21a"
  %0 = matmul(%x, %w) : f32[?batch, 4]
  %1 = add(%0, %b) : f32[?batch, 4] loc("/mlp/add")
  %2 = gelu(%1) {approximate = "tanh"} : f32[?batch, 4]
  %3, %4 = split(%2, _) {axis = -1, num_outputs = 2} : f32[?batch, 2], f32[?batch, 2]
  %5 = concat(%3, %4) {axis = 1} : f32[?batch, 4]
  %6 = reshape(%5, %s) {modes = ["a", "b\"c"], perm = ints[], scales = [1.5, 2.0]} : f32[?, 4]
  %c = constant_of_shape(%s) {value = tensor<f32[1] [0.0]>} : f32[?, 4]
  %u = acme.frob(%"odd name") {k = inf} : i64[2]
  return %2, %u
}
"#;

fn sample_store() -> (WeightStore, u64) {
    let w = Tensor::from_vec(vec![4, 5], (0..20).map(|i| i as f32 * 0.25).collect()).unwrap();
    let mut store = WeightStore::default();
    let c = Constant::plain(w);
    let h = c.content_hash();
    store.add(c);
    (store, h)
}

#[test]
fn sample_round_trips_exactly() {
    let (store, h) = sample_store();
    let text = SAMPLE.replace("WHASH", &format!("{h:016x}"));
    let g = parse_with(&text, Some(&store)).unwrap();
    let printed = print(&g);
    assert_eq!(printed, text);
    let again = parse_with(&printed, Some(g.store())).unwrap();
    assert_eq!(print(&again), printed);
    // the weight was re-bound, not copied
    let w = g.value_by_name("w").unwrap();
    assert!(std::sync::Arc::ptr_eq(
        g.constant(w).unwrap(),
        store.find_by_hash(h).unwrap()
    ));
}

#[test]
fn parse_errors_have_positions() {
    let cases = [
        (
            "graph @g() -> () {\n  %0 = nosuchop() : f32[]\n  return\n}",
            "unknown op",
        ),
        (
            "graph @g() -> (f32[]) {\n  return %zz\n}",
            "undefined value",
        ),
        (
            "graph @g(%x: f32[2]) -> () {\n  %x = abs(%x) : f32[2]\n  return\n}",
            "defined twice",
        ),
        (
            "graph @g() -> () {\n  %w = const f32[300] #00000000000000ff\n  return\n}",
            "weight store",
        ),
        (
            "graph @g() -> () {\n  %w = const f32[2] [1.0]\n  return\n}",
            "needs 8 bytes",
        ),
        ("graph @g(%x: f33[2]) -> () {\n  return\n}", "unknown dtype"),
        (
            "graph @g(%x: f32[2]) -> (f32[3]) {\n  return %x\n}",
            "signature says",
        ),
    ];
    for (text, want) in cases {
        let e = parse(text).unwrap_err().to_string();
        assert!(e.contains(want), "{text}\n=> {e}");
        assert!(e.starts_with("parse error at "), "{e}");
    }
}

#[test]
fn encoded_constants_print_their_encoding() {
    let mut g = Graph::new("enc");
    let codes = Tensor::from_bytes(DType::I4, vec![4, 2], Bytes::from(vec![0x21u8; 4])).unwrap();
    let scales = Tensor::from_vec(vec![2, 2], vec![half::f16::from_f32(0.5); 4]).unwrap();
    let enc: Encoding = "blockwise<i4, axis=0, block=2, scale=f16>".parse().unwrap();
    let c = Constant::encoded(
        DType::F32,
        vec![4, 2],
        enc,
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
    let x = g.add_input("x", TensorType::known(DType::F32, &[1, 4]));
    let w = g.add_const("w", c);
    let y = g
        .add_simple(
            OpKind::MatMul,
            Attrs::new(),
            &[x, w],
            "y",
            TensorType::known(DType::F32, &[1, 2]),
        )
        .unwrap();
    g.set_outputs(vec![y]);
    let text = print(&g);
    assert!(
        text.contains("{encoding = blockwise<i4, axis=0, block=2, scale=f16>} #"),
        "{text}"
    );
    assert_eq!(print(&parse_with(&text, Some(g.store())).unwrap()), text);
}

// ---- random graphs -------------------------------------------------------------------

fn arb_name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9_]{0,6}",
        "/[a-z]{1,4}/[A-Z][a-z]{0,3}_output_[0-9]",
        "[a-z ]{1,5}\"?[+*]{0,2}",
    ]
}

fn arb_dim() -> impl Strategy<Value = Dim> {
    prop_oneof![
        (0u64..40).prop_map(Dim::Known),
        "[a-z]{1,5}".prop_map(Dim::Sym),
        Just(Dim::Unknown)
    ]
}

fn arb_type() -> impl Strategy<Value = TensorType> {
    let dtypes = prop::sample::select(DType::all().collect::<Vec<_>>());
    let shape = prop_oneof![
        1 => Just(Shape::unranked()),
        6 => prop::collection::vec(arb_dim(), 0..4).prop_map(Shape::new),
    ];
    (dtypes, shape).prop_map(|(dtype, shape)| TensorType { dtype, shape })
}

fn arb_attr() -> impl Strategy<Value = Attr> {
    prop_oneof![
        any::<i64>().prop_map(Attr::Int),
        any::<f32>().prop_map(Attr::Float),
        ".{0,8}".prop_map(Attr::Str),
        prop::collection::vec(any::<i64>(), 0..4).prop_map(Attr::Ints),
        prop::collection::vec(any::<f32>(), 0..4).prop_map(Attr::Floats),
        prop::collection::vec(".{0,4}", 0..3).prop_map(Attr::Strs),
        prop::collection::vec(any::<f32>(), 0..5)
            .prop_map(|v| Attr::Tensor(Tensor::from_vec(vec![v.len()], v).unwrap())),
    ]
}

/// A constant of a random dtype and size, small (inline) or large (by hash).
fn arb_const() -> impl Strategy<Value = Tensor> {
    prop_oneof![
        prop::collection::vec(any::<f32>(), 0..40)
            .prop_map(|v| Tensor::from_vec(vec![v.len()], v).unwrap()),
        prop::collection::vec(any::<i64>(), 0..20)
            .prop_map(|v| Tensor::from_vec(vec![v.len()], v).unwrap()),
        prop::collection::vec(any::<u16>(), 1..8).prop_map(|v| {
            Tensor::from_vec(
                vec![v.len()],
                v.into_iter().map(half::f16::from_bits).collect(),
            )
            .unwrap()
        }),
        prop::collection::vec(any::<bool>(), 0..6)
            .prop_map(|v| Tensor::from_vec(vec![v.len()], v).unwrap()),
        prop::collection::vec(any::<u8>(), 1..6).prop_map(|v| {
            Tensor::from_bytes(DType::I4, vec![v.len() * 2], Bytes::from(v)).unwrap()
        }),
        prop::collection::vec(any::<u8>(), 1..6).prop_map(|v| {
            Tensor::from_bytes(DType::F8E4M3, vec![v.len()], Bytes::from(v)).unwrap()
        }),
        prop::collection::vec("[a-z\"\\\\]{0,4}", 1..4).prop_map(|v| Tensor::from_strings(
            vec![v.len()],
            v
        )
        .unwrap()),
    ]
}

#[derive(Debug, Clone)]
struct NodeRecipe {
    op: usize,
    inputs: Vec<Option<prop::sample::Index>>,
    attrs: Vec<(String, Attr)>,
    outputs: Vec<(String, TensorType)>,
    loc: String,
}

fn arb_node() -> impl Strategy<Value = NodeRecipe> {
    (
        any::<usize>(),
        prop::collection::vec(
            prop::option::weighted(0.9, any::<prop::sample::Index>()),
            0..4,
        ),
        prop::collection::vec(("[a-z_]{1,6}", arb_attr()), 0..3),
        prop::collection::vec((arb_name(), arb_type()), 1..3),
        prop_oneof![Just(String::new()), ".{0,10}"],
    )
        .prop_map(|(op, inputs, attrs, outputs, loc)| NodeRecipe {
            op,
            inputs,
            attrs,
            outputs,
            loc,
        })
}

fn build(inputs: Vec<(String, TensorType)>, consts: Vec<Tensor>, nodes: Vec<NodeRecipe>) -> Graph {
    let ops: Vec<OpKind> = OpKind::all().filter(|o| *o != OpKind::Const).collect();
    let mut g = Graph::new("random");
    let mut vals = vec![];
    for (n, t) in inputs {
        vals.push(g.add_input(&n, t));
    }
    for (i, c) in consts.into_iter().enumerate() {
        vals.push(g.add_const(&format!("c{i}"), Constant::plain(c)));
    }
    for r in nodes {
        let ins = r
            .inputs
            .iter()
            .map(|i| {
                i.as_ref()
                    .filter(|_| !vals.is_empty())
                    .map(|i| vals[i.index(vals.len())])
            })
            .collect();
        let mut attrs = Attrs::new();
        for (k, v) in r.attrs {
            attrs.set(&k, v);
        }
        let op = if r.op % 10 == 0 {
            OpKind::Custom {
                domain: "ext.test".into(),
                name: "Op".into(),
            }
        } else {
            ops[r.op % ops.len()].clone()
        };
        let id = g.add_node(&r.loc, op, attrs, ins, r.outputs).unwrap();
        vals.extend(g.node(id).outputs.clone());
    }
    let outs: Vec<ValueId> = vals.iter().rev().take(2).copied().collect();
    g.set_outputs(outs);
    g
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn random_graphs_round_trip(
        inputs in prop::collection::vec((arb_name(), arb_type()), 0..3),
        consts in prop::collection::vec(arb_const(), 0..4),
        nodes in prop::collection::vec(arb_node(), 0..8),
    ) {
        let g = build(inputs, consts, nodes);
        let text = print(&g);
        let parsed = parse_with(&text, Some(g.store())).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        let again = print(&parsed);
        prop_assert_eq!(&again, &text);
    }
}
