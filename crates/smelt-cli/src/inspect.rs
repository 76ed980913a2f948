//! `smelt inspect`.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;
use smelt::{Model, OpKind};

pub fn inspect(path: &Path) -> Result<()> {
    let t0 = std::time::Instant::now();
    let model = Model::load_lenient(path)?;
    let load_ms = t0.elapsed().as_secs_f64() * 1e3;
    let g = &model.graph;
    println!("model      {}  (loaded in {load_ms:.1} ms)", path.display());
    println!("graph      @{}", g.name);
    for v in g.inputs() {
        println!("input      %{}: {}", g.value(*v).name, g.ty(*v));
    }
    for v in g.outputs() {
        println!("output     %{}: {}", g.value(*v).name, g.ty(*v));
    }
    let mut ops: BTreeMap<String, usize> = BTreeMap::new();
    let mut custom = vec![];
    for id in g.node_ids() {
        let n = g.node(id);
        *ops.entry(n.op.onnx_name().to_string()).or_default() += 1;
        if let OpKind::Custom { domain, name } = &n.op {
            custom.push(format!("{domain}.{name} (node `{}`)", n.name));
        }
    }
    println!(
        "nodes      {} ({} ops, {} constants), {} op types",
        g.node_count(),
        g.op_count(),
        g.node_count() - g.op_count(),
        ops.len()
    );
    println!("parameters {}", group_digits(g.parameter_count()));
    let mut hist: Vec<_> = ops.into_iter().collect();
    hist.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    println!("op histogram:");
    for (op, n) in hist {
        println!("  {op:<24} {n:>6}");
    }
    let mut bytes: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for id in g.node_ids() {
        if let Some(c) = g.node(id).constant.and_then(|c| g.store().get(c)) {
            let e = bytes
                .entry(format!("{} {}", c.dtype(), c.encoding()))
                .or_default();
            e.0 += 1;
            e.1 += c.stored_bytes();
        }
    }
    println!("constant bytes by dtype and encoding:");
    for (k, (n, b)) in bytes {
        println!(
            "  {k:<32} {n:>6} tensors {:>14} bytes",
            group_digits(b as u64)
        );
    }
    if custom.is_empty() {
        println!("unsupported ops: none");
    } else {
        println!("unsupported ops ({}):", custom.len());
        for c in custom {
            println!("  {c}");
        }
    }
    Ok(())
}

/// `22565376` → `22,565,376`.
pub fn group_digits(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
