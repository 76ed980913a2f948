use smelt_ir::text::parse;
#[test]
fn show() {
    let text = std::fs::read_to_string(std::env::var("G").unwrap()).unwrap();
    let mut g = parse(&text).unwrap();
    g.infer_types().unwrap();
    let p = smelt_lower::lower(&g).unwrap();
    eprintln!("{p}");
    let ir = smelt_codegen_llvm::emit_ir(&p, &Default::default()).unwrap();
    std::fs::write("/tmp/llvm_ir.ll", ir).unwrap();
}
