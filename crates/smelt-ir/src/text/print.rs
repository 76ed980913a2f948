//! Graph → text.

use std::fmt::Write;

use crate::attr::{Attr, Attrs};
use crate::dtype::DType;
use crate::graph::{Graph, NodeId, ValueId};
use crate::op::OpKind;
use crate::tensor::Tensor;

use super::INLINE_LIMIT;

/// Print a graph in the textual IR. Nodes appear in topological order; a graph with a
/// cycle prints its nodes in id order after a `// cycle` comment (so a broken graph can
/// still be looked at).
pub fn print(g: &Graph) -> String {
    let mut out = String::new();
    let _ = write!(out, "graph @{}(", quote_if_needed(&g.name));
    for (i, v) in g.inputs().iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(
            out,
            "%{}: {}",
            print_value_name(&g.value(*v).name),
            g.ty(*v)
        );
    }
    out.push_str(") -> (");
    for (i, v) in g.outputs().iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "{}", g.ty(*v));
    }
    out.push_str(") {\n");
    let order = match g.topo_order() {
        Ok(o) => o,
        Err(_) => {
            out.push_str("  // cycle: nodes in id order\n");
            g.node_ids().collect()
        }
    };
    for id in order {
        print_node(g, id, &mut out);
    }
    out.push_str("  return");
    for (i, v) in g.outputs().iter().enumerate() {
        out.push_str(if i == 0 { " " } else { ", " });
        let _ = write!(out, "%{}", print_value_name(&g.value(*v).name));
    }
    out.push_str("\n}\n");
    out
}

fn print_node(g: &Graph, id: NodeId, out: &mut String) {
    let n = g.node(id);
    out.push_str("  ");
    for (i, o) in n.outputs.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "%{}", print_value_name(&g.value(*o).name));
    }
    if n.op == OpKind::Const {
        out.push_str(" = const ");
        print_const(g, id, out);
    } else {
        let _ = write!(out, " = {}(", n.op.text_name());
        for (i, inp) in n.inputs.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            match inp {
                Some(v) => {
                    let _ = write!(out, "%{}", print_value_name(&g.value(*v).name));
                }
                None => out.push('_'),
            }
        }
        out.push(')');
        print_attrs(&n.attrs, out);
        out.push_str(" :");
        for (i, o) in n.outputs.iter().enumerate() {
            out.push_str(if i == 0 { " " } else { ", " });
            let _ = write!(out, "{}", g.ty(*o));
        }
    }
    if !n.name.is_empty() {
        let _ = write!(out, " loc({})", quote(&n.name));
    }
    out.push('\n');
}

fn print_const(g: &Graph, id: NodeId, out: &mut String) {
    let n = g.node(id);
    let Some(c) = n.constant.and_then(|c| g.store().get(c)) else {
        out.push_str("<missing constant>");
        return;
    };
    let v: ValueId = n.outputs[0];
    let _ = write!(out, "{}", g.ty(v));
    if !c.encoding().is_plain() {
        let _ = write!(out, " {{encoding = {}}}", c.encoding());
    }
    out.push(' ');
    match c.as_plain() {
        Some(t) if t.len() <= INLINE_LIMIT => print_elements(t, out),
        _ => {
            let _ = write!(out, "#{:016x}", c.content_hash());
        }
    }
}

/// Print a tensor's elements (flat, row-major) in the form the parser reads back.
pub(super) fn print_elements(t: &Tensor, out: &mut String) {
    let list = |out: &mut String, items: Vec<String>| {
        out.push('[');
        out.push_str(&items.join(", "));
        out.push(']');
    };
    let floats = |v: Vec<f64>, single: bool| -> Vec<String> {
        v.into_iter()
            .map(|x| {
                if single {
                    format!("{:?}", x as f32)
                } else {
                    format!("{x:?}")
                }
            })
            .collect()
    };
    let items: Option<Vec<String>> = match t.dtype() {
        DType::F64 => t.to_vec::<f64>().ok().map(|v| floats(v, false)),
        DType::F32 => t
            .to_vec::<f32>()
            .ok()
            .map(|v| floats(v.into_iter().map(f64::from).collect(), true)),
        DType::F16 => t
            .to_vec::<half::f16>()
            .ok()
            .map(|v| floats(v.into_iter().map(f64::from).collect(), true)),
        DType::BF16 => t
            .to_vec::<half::bf16>()
            .ok()
            .map(|v| floats(v.into_iter().map(f64::from).collect(), true)),
        DType::U64 => t
            .to_vec::<u64>()
            .ok()
            .map(|v| v.iter().map(u64::to_string).collect()),
        DType::Bool => Some(t.bytes().iter().map(|b| (*b != 0).to_string()).collect()),
        DType::String => t.strings().map(|s| s.iter().map(|e| quote(e)).collect()),
        d if d.is_int() && d.bits() >= 8 => t
            .to_i64_vec()
            .ok()
            .map(|v| v.iter().map(i64::to_string).collect()),
        _ => None,
    };
    match items {
        Some(items) => list(out, items),
        None => {
            out.push_str("x\"");
            for b in t.bytes().iter() {
                let _ = write!(out, "{b:02x}");
            }
            out.push('"');
        }
    }
}

fn print_attrs(attrs: &Attrs, out: &mut String) {
    if attrs.is_empty() {
        return;
    }
    out.push_str(" {");
    for (i, (k, v)) in attrs.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "{} = ", quote_if_needed(k));
        print_attr(v, out);
    }
    out.push('}');
}

fn print_attr(a: &Attr, out: &mut String) {
    match a {
        Attr::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Attr::Float(f) => {
            let _ = write!(out, "{f:?}");
        }
        Attr::Str(s) => out.push_str(&quote(s)),
        Attr::Ints(v) if v.is_empty() => out.push_str("ints[]"),
        Attr::Floats(v) if v.is_empty() => out.push_str("floats[]"),
        Attr::Strs(v) if v.is_empty() => out.push_str("strs[]"),
        Attr::Ints(v) => {
            let _ = write!(
                out,
                "[{}]",
                v.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")
            );
        }
        Attr::Floats(v) => {
            let _ = write!(
                out,
                "[{}]",
                v.iter()
                    .map(|f| format!("{f:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        Attr::Strs(v) => {
            let _ = write!(
                out,
                "[{}]",
                v.iter().map(|s| quote(s)).collect::<Vec<_>>().join(", ")
            );
        }
        Attr::Tensor(t) => {
            let _ = write!(out, "tensor<{}{:?} ", t.dtype(), t.shape());
            print_elements(t, out);
            out.push('>');
        }
    }
}

/// Whether a name can be printed bare (`%name`).
pub(super) fn is_bare(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-' | '$'))
}

/// A value or graph name as printed after `%` / `@`.
pub fn print_value_name(name: &str) -> String {
    quote_if_needed(name)
}

fn quote_if_needed(name: &str) -> String {
    if is_bare(name) {
        name.to_string()
    } else {
        quote(name)
    }
}

/// A double-quoted string with `\"`, `\\`, `\n`, `\t` and `\u{..}` escapes.
pub(super) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
