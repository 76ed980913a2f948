//! Rules for the recurrent layers: RNN, GRU and LSTM.

use crate::shape::{Dim, Shape};
use crate::types::TensorType;

use super::util::{attrs, input, num_outputs, opt_input, same_dtype, unify_dim, R};
use super::InferCx;

/// RNN (`gates = 1`), GRU (3) and LSTM (4, with the cell state `Y_c` as a third
/// output): Y `[seq, dirs, batch, hidden]` and Y_h `[dirs, batch, hidden]`, batch first
/// with `layout = 1`.
pub(super) fn recurrent(cx: &InferCx, gates: u64) -> R<Vec<TensorType>> {
    let x = input(cx, 0, "X")?;
    let w = input(cx, 1, "W")?;
    let r = input(cx, 2, "R")?;
    if !x.dtype.is_float() {
        return Err(format!("input 0 (X) must be a float tensor, got {x}"));
    }
    same_dtype(x, "input 0 (X)", w, "input 1 (W)")?;
    same_dtype(x, "input 0 (X)", r, "input 2 (R)")?;
    let at = attrs(cx);
    let dirs: u64 = match at.str("direction").unwrap_or("forward") {
        "forward" | "reverse" => 1,
        "bidirectional" => 2,
        other => {
            return Err(format!(
                "attribute `direction` = {other:?} is not forward, reverse or bidirectional"
            ))
        }
    };
    let batch_first = match at.int_or("layout", 0) {
        0 => false,
        1 => true,
        other => return Err(format!("attribute `layout` = {other} is not 0 or 1")),
    };
    let hidden = match at.int("hidden_size") {
        Some(h) if h > 0 => Dim::Known(h as u64),
        Some(h) => return Err(format!("attribute `hidden_size` must be positive, got {h}")),
        None => r
            .dims()
            .and_then(|d| d.get(2).cloned())
            .unwrap_or(Dim::Unknown),
    };
    for (t, name, rows_per_gate) in [(w, "input 1 (W)", 1u64), (r, "input 2 (R)", 1)] {
        match t.dims() {
            None => {}
            Some([d, g, _]) => {
                if unify_dim(d, &Dim::Known(dirs)).is_none() {
                    return Err(format!("{name} {t} must have {dirs} directions"));
                }
                if let (Dim::Known(g), Dim::Known(h)) = (g, &hidden) {
                    if Some(*g) != h.checked_mul(gates * rows_per_gate) {
                        return Err(format!(
                            "{name} {t} must have {gates} x hidden_size {h} rows"
                        ));
                    }
                }
            }
            Some(_) => return Err(format!("{name} must be 3-D, got {t}")),
        }
    }
    if let Some(b) = opt_input(cx, 3) {
        same_dtype(x, "input 0 (X)", b, "input 3 (B)")?;
    }
    let (seq, batch) = match x.dims() {
        None => (Dim::Unknown, Dim::Unknown),
        Some([a, b, _]) => {
            if batch_first {
                (b.clone(), a.clone())
            } else {
                (a.clone(), b.clone())
            }
        }
        Some(_) => return Err(format!("input 0 (X) must be 3-D, got {x}")),
    };
    let d = Dim::Known(dirs);
    let y = if batch_first {
        vec![batch.clone(), seq, d.clone(), hidden.clone()]
    } else {
        vec![seq, d.clone(), batch.clone(), hidden.clone()]
    };
    let state = if batch_first {
        vec![batch, d, hidden]
    } else {
        vec![d, batch, hidden]
    };
    let n_out = if gates == 4 { 3 } else { 2 };
    let mut out = vec![TensorType::new(x.dtype, Shape::new(y))];
    for _ in 1..num_outputs(cx).clamp(1, n_out) {
        out.push(TensorType::new(x.dtype, Shape::new(state.clone())));
    }
    if num_outputs(cx) > n_out {
        return Err(format!("the op has at most {n_out} outputs"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use crate::attr::{Attr, Attrs};
    use crate::dtype::DType;
    use crate::graph::Graph;
    use crate::infer::infer_node;
    use crate::op::OpKind;
    use crate::shape::{Dim, Shape};
    use crate::types::TensorType;

    fn tt(dims: &[u64]) -> TensorType {
        TensorType::new(
            DType::F32,
            Shape::new(dims.iter().map(|&d| Dim::Known(d)).collect()),
        )
    }

    fn run(op: OpKind, a: Attrs, ins: &[TensorType], outs: usize) -> Result<Vec<String>, String> {
        let mut g = Graph::new("t");
        let vals = ins
            .iter()
            .enumerate()
            .map(|(i, t)| Some(g.add_input(&format!("i{i}"), t.clone())))
            .collect();
        let o = (0..outs)
            .map(|i| (format!("o{i}"), TensorType::unranked(DType::F32)))
            .collect();
        let n = g.add_node("n", op, a, vals, o).unwrap();
        infer_node(&g, n)
            .map(|v| v.iter().map(|t| t.to_string()).collect())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn recurrent_shapes() {
        let a = Attrs::new()
            .with("hidden_size", Attr::Int(5))
            .with("direction", Attr::Str("bidirectional".into()));
        let y = run(
            OpKind::Lstm,
            a.clone(),
            &[tt(&[7, 2, 3]), tt(&[2, 20, 3]), tt(&[2, 20, 5])],
            3,
        )
        .unwrap();
        assert_eq!(y, ["f32[7, 2, 2, 5]", "f32[2, 2, 5]", "f32[2, 2, 5]"]);
        let e = run(
            OpKind::Gru,
            a,
            &[tt(&[7, 2, 3]), tt(&[2, 20, 3]), tt(&[2, 20, 5])],
            2,
        )
        .unwrap_err();
        assert!(e.contains("rows"), "{e}");
    }
}
