//! The textual IR with every plain constant printed inline.

use smelt_ir::{DType, Graph, Tensor};

/// [`smelt_ir::text::print`], but plain constants larger than the printer's inline limit
/// are written out element by element instead of as a `#hash`, so the text parses with
/// [`smelt_ir::text::parse`] alone and can be pasted into a test. Encoded constants keep
/// their hash.
pub fn print_inline(g: &Graph) -> String {
    let mut text = smelt_ir::text::print(g);
    for id in g.node_ids() {
        let Some(c) = g.node(id).constant.and_then(|c| g.store().get(c)) else {
            continue;
        };
        let Some(t) = c.as_plain() else { continue };
        if t.len() <= smelt_ir::text::INLINE_LIMIT {
            continue;
        }
        if let Some(elems) = elements(t) {
            text = text.replace(&format!("#{:016x}", c.content_hash()), &elems);
        }
    }
    text
}

/// `[e0, e1, ...]` in the form the parser reads, for the dtypes the generator makes.
fn elements(t: &Tensor) -> Option<String> {
    let items: Vec<String> = match t.dtype() {
        DType::F32 => t
            .to_vec::<f32>()
            .ok()?
            .iter()
            .map(|x| format!("{x:?}"))
            .collect(),
        DType::F64 => t
            .to_vec::<f64>()
            .ok()?
            .iter()
            .map(|x| format!("{x:?}"))
            .collect(),
        DType::Bool => t.bytes().iter().map(|b| (*b != 0).to_string()).collect(),
        d if d.is_int() && d.bits() >= 8 => {
            t.to_i64_vec().ok()?.iter().map(i64::to_string).collect()
        }
        _ => return None,
    };
    Some(format!("[{}]", items.join(", ")))
}
