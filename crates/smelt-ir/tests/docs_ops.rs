//! `docs/ir.md` documents every op of the catalogue: adding an op without a line there
//! fails here.

#[test]
fn every_op_is_documented() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/ir.md");
    let docs = std::fs::read_to_string(path).expect("docs/ir.md");
    let ops = docs.split("## Ops").nth(1).expect("an `## Ops` section");
    let missing: Vec<String> = smelt_ir::OpKind::all()
        .map(|k| k.text_name())
        .filter(|t| !ops.contains(&format!("`{t}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "ops missing from docs/ir.md's `## Ops` list: {missing:?}"
    );
}
