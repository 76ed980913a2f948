//! Rules for attention and its companions: Attention, RotaryEmbedding, TensorScatter,
//! LinearAttention and CausalConvWithState.

use crate::dtype::DType;
use crate::shape::{Dim, Shape};
use crate::types::TensorType;

use super::util::{
    attrs, index_dtype, input, norm_axis, num_outputs, opt_input, same_dtype, unify_dim, R,
};
use super::InferCx;

/// Require a float tensor.
fn float_input(t: &TensorType, what: &str) -> R<()> {
    if matches!(t.dtype, DType::F32 | DType::F64 | DType::F16 | DType::BF16) {
        Ok(())
    } else {
        Err(format!("{what} must be f16, bf16, f32 or f64, got {t}"))
    }
}

/// Two dims that must agree, or an error naming them.
fn agree(a: &Dim, b: &Dim, what: &str) -> R<Dim> {
    unify_dim(a, b).ok_or_else(|| format!("{what} differ: {a} and {b}"))
}

/// `a + b` where expressible.
fn dim_add(a: &Dim, b: &Dim) -> Dim {
    match (a, b) {
        (Dim::Known(x), Dim::Known(y)) => x.checked_add(*y).map_or(Dim::Unknown, Dim::Known),
        (Dim::Known(0), d) | (d, Dim::Known(0)) => d.clone(),
        _ => Dim::Unknown,
    }
}

/// `a * n` where expressible.
fn dim_mul(a: &Dim, n: u64) -> Dim {
    match a {
        Dim::Known(x) => x.checked_mul(n).map_or(Dim::Unknown, Dim::Known),
        d if n == 1 => d.clone(),
        _ => Dim::Unknown,
    }
}

/// `a / n`, an error when a known `a` is not a multiple of `n`.
fn dim_div(a: &Dim, n: u64, what: &str) -> R<Dim> {
    match a {
        Dim::Known(x) if n > 0 && x % n == 0 => Ok(Dim::Known(x / n)),
        Dim::Known(x) => Err(format!("{what} {x} is not a multiple of {n}")),
        d if n == 1 => Ok(d.clone()),
        _ => Ok(Dim::Unknown),
    }
}

/// A positive int attribute, if present.
fn positive_attr(cx: &InferCx, name: &str) -> R<Option<u64>> {
    match attrs(cx).int(name) {
        None => Ok(None),
        Some(v) => match u64::try_from(v) {
            Ok(n) if n > 0 => Ok(Some(n)),
            _ => Err(format!("attribute `{name}` must be positive, got {v}")),
        },
    }
}

/// Q, K, V or a past cache as `[batch, heads, seq, head_size]`: 4-D as it is, 3-D split
/// into the heads named by attribute `heads_attr`.
fn as_heads(t: &TensorType, what: &str, heads: Option<u64>, heads_attr: &str) -> R<[Dim; 4]> {
    match t.dims() {
        Some([b, h, s, d]) => {
            if let (Some(n), Some(k)) = (heads, h.known()) {
                if n != k {
                    return Err(format!(
                        "attribute `{heads_attr}` = {n} but {what} {t} has {k} heads"
                    ));
                }
            }
            Ok([b.clone(), h.clone(), s.clone(), d.clone()])
        }
        Some([b, s, hidden]) => {
            let n = heads.ok_or_else(|| {
                format!("{what} {t} is 3-D, which needs attribute `{heads_attr}`")
            })?;
            let d = dim_div(hidden, n, &format!("{what}'s hidden size"))?;
            Ok([b.clone(), Dim::Known(n), s.clone(), d])
        }
        Some(_) => Err(format!("{what} must be 3-D or 4-D, got {t}")),
        None => Ok([
            Dim::Unknown,
            heads.map_or(Dim::Unknown, Dim::Known),
            Dim::Unknown,
            Dim::Unknown,
        ]),
    }
}

/// `Attention` (opset 23 to 25): outputs Y, present_key, present_value and
/// qk_matmul_output, as many as the node declares.
pub(super) fn attention(cx: &InferCx) -> R<Vec<TensorType>> {
    let q = input(cx, 0, "Q")?;
    let k = input(cx, 1, "K")?;
    let v = input(cx, 2, "V")?;
    float_input(q, "input 0 (Q)")?;
    same_dtype(q, "input 0 (Q)", k, "input 1 (K)")?;
    float_input(v, "input 2 (V)")?;
    let at = attrs(cx);
    let mode = at.int_or("qk_matmul_output_mode", 0);
    if !(0..=3).contains(&mode) {
        return Err(format!(
            "attribute `qk_matmul_output_mode` = {mode} must be 0, 1, 2 or 3"
        ));
    }
    for name in ["left_window_size", "right_window_size"] {
        let w = at.int_or(name, -1);
        if w < -1 {
            return Err(format!(
                "attribute `{name}` = {w} must be -1 or non-negative"
            ));
        }
    }
    if let Some(p) = at.int("softmax_precision") {
        if ![1, 10, 11, 16].contains(&p) {
            return Err(format!(
                "attribute `softmax_precision` = {p} must be 1 (f32), 10 (f16), 11 (f64) or 16 (bf16)"
            ));
        }
    }
    let rank = q.rank();
    for (t, what) in [(k, "input 1 (K)"), (v, "input 2 (V)")] {
        if let (Some(a), Some(b)) = (rank, t.rank()) {
            if a != b {
                return Err(format!(
                    "input 0 (Q) {q} and {what} {t} have different ranks"
                ));
            }
        }
    }
    let qh = positive_attr(cx, "q_num_heads")?;
    let kvh = positive_attr(cx, "kv_num_heads")?;
    let [b, hq, sq, dq] = as_heads(q, "input 0 (Q)", qh, "q_num_heads")?;
    let [kb, hk, skv, dk] = as_heads(k, "input 1 (K)", kvh, "kv_num_heads")?;
    let [vb, hv, svv, dv] = as_heads(v, "input 2 (V)", kvh, "kv_num_heads")?;
    let b = agree(
        &agree(&b, &kb, "batch sizes of Q and K")?,
        &vb,
        "batch sizes of Q and V",
    )?;
    let hk = agree(&hk, &hv, "head counts of K and V")?;
    let skv = agree(&skv, &svv, "sequence lengths of K and V")?;
    agree(&dq, &dk, "head sizes of Q and K")?;
    if let (Some(a), Some(c)) = (hq.known(), hk.known()) {
        if c == 0 || a % c != 0 {
            return Err(format!(
                "Q's {a} heads are not a multiple of K and V's {c} heads"
            ));
        }
    }

    let past_k = opt_input(cx, 4);
    let past_v = opt_input(cx, 5);
    if past_k.is_some() != past_v.is_some() {
        return Err("past_key and past_value must be given together".into());
    }
    let mut total = skv.clone();
    if let (Some(pk), Some(pv)) = (past_k, past_v) {
        same_dtype(k, "input 1 (K)", pk, "input 4 (past_key)")?;
        same_dtype(v, "input 2 (V)", pv, "input 5 (past_value)")?;
        for (t, what) in [(pk, "input 4 (past_key)"), (pv, "input 5 (past_value)")] {
            if t.rank().is_some_and(|r| r != 4) {
                return Err(format!("{what} must be 4-D, got {t}"));
            }
        }
        let [pb, ph, ps, pd] = as_heads(pk, "input 4 (past_key)", None, "")?;
        let [vb2, vh2, vs2, vd2] = as_heads(pv, "input 5 (past_value)", None, "")?;
        agree(&b, &pb, "batch sizes of Q and past_key")?;
        agree(&b, &vb2, "batch sizes of Q and past_value")?;
        agree(&hk, &ph, "head counts of K and past_key")?;
        agree(&hk, &vh2, "head counts of V and past_value")?;
        agree(&dk, &pd, "head sizes of K and past_key")?;
        agree(&dv, &vd2, "head sizes of V and past_value")?;
        let ps = agree(&ps, &vs2, "sequence lengths of past_key and past_value")?;
        total = dim_add(&ps, &skv);
    }
    if let Some(n) = opt_input(cx, 6) {
        if past_k.is_some() {
            return Err("nonpad_kv_seqlen cannot be combined with past_key and past_value".into());
        }
        if n.dtype != DType::I64 {
            return Err(format!("input 6 (nonpad_kv_seqlen) must be i64, got {n}"));
        }
        match n.dims() {
            Some([nb]) => {
                agree(&b, nb, "batch size and nonpad_kv_seqlen's length")?;
            }
            Some(_) => return Err(format!("input 6 (nonpad_kv_seqlen) must be 1-D, got {n}")),
            None => {}
        }
    }
    if let Some(m) = opt_input(cx, 3) {
        if m.dtype != DType::Bool {
            float_input(m, "input 3 (attn_mask)")?;
        }
        if let Some(md) = m.dims() {
            if md.is_empty() || md.len() > 4 {
                return Err(format!(
                    "input 3 (attn_mask) must have rank 1 to 4, got {m}"
                ));
            }
            let target = [b.clone(), hq.clone(), sq.clone()];
            let (lead, last) = md.split_at(md.len() - 1);
            for (i, d) in lead.iter().enumerate() {
                let t = &target[3 - lead.len() + i];
                let ok = match (d.known(), t.known()) {
                    (Some(1), _) => true,
                    (Some(x), Some(y)) => x == y,
                    _ => true,
                };
                if !ok {
                    return Err(format!(
                        "input 3 (attn_mask) {m} does not broadcast to [batch, q_heads, q_seq] = [{b}, {hq}, {sq}]"
                    ));
                }
            }
            if let (Some(x), Some(y)) = (last[0].known(), total.known()) {
                if x > y {
                    return Err(format!(
                        "input 3 (attn_mask) {m} has more keys than the total sequence length {y}"
                    ));
                }
            }
        }
    }

    let y_shape = match rank {
        Some(3) => {
            let hidden = match hq.known() {
                Some(n) => dim_mul(&dv, n),
                None => Dim::Unknown,
            };
            Shape::new(vec![b.clone(), sq.clone(), hidden])
        }
        Some(_) => Shape::new(vec![b.clone(), hq.clone(), sq.clone(), dv.clone()]),
        // Y is 3-D or 4-D like Q.
        None => Shape::unranked(),
    };
    let mut out = vec![TensorType {
        dtype: q.dtype,
        shape: y_shape,
    }];
    let n = num_outputs(cx).min(4);
    if n > 1 {
        out.push(TensorType::new(
            k.dtype,
            Shape::new(vec![b.clone(), hk.clone(), total.clone(), dk]),
        ));
    }
    if n > 2 {
        out.push(TensorType::new(
            v.dtype,
            Shape::new(vec![b.clone(), hk, total.clone(), dv]),
        ));
    }
    if n > 3 {
        out.push(TensorType::new(q.dtype, Shape::new(vec![b, hq, sq, total])));
    }
    Ok(out)
}

/// `RotaryEmbedding`: the output has X's type.
pub(super) fn rotary_embedding(cx: &InferCx) -> R<Vec<TensorType>> {
    let x = input(cx, 0, "X")?;
    let cos = input(cx, 1, "cos_cache")?;
    let sin = input(cx, 2, "sin_cache")?;
    float_input(x, "input 0 (X)")?;
    same_dtype(x, "input 0 (X)", cos, "input 1 (cos_cache)")?;
    same_dtype(x, "input 0 (X)", sin, "input 2 (sin_cache)")?;
    let heads = positive_attr(cx, "num_heads")?;
    let head_size = match x.dims() {
        Some([_, _, _, d]) => d.clone(),
        Some([_, _, hidden]) => {
            let n = heads.ok_or_else(|| {
                format!("input 0 (X) {x} is 3-D, which needs attribute `num_heads`")
            })?;
            dim_div(hidden, n, "X's hidden size")?
        }
        Some(_) => return Err(format!("input 0 (X) must be 3-D or 4-D, got {x}")),
        None => Dim::Unknown,
    };
    let rot = attrs(cx).int_or("rotary_embedding_dim", 0);
    if rot < 0 || rot % 2 != 0 {
        return Err(format!(
            "attribute `rotary_embedding_dim` = {rot} must be even and non-negative"
        ));
    }
    if let Some(d) = head_size.known() {
        if rot as u64 > d {
            return Err(format!(
                "attribute `rotary_embedding_dim` = {rot} exceeds the head size {d}"
            ));
        }
    }
    let pos = opt_input(cx, 3);
    if let Some(p) = pos {
        if p.dtype != DType::I64 {
            return Err(format!("input 3 (position_ids) must be i64, got {p}"));
        }
        if p.rank().is_some_and(|r| r != 2) {
            return Err(format!("input 3 (position_ids) must be 2-D, got {p}"));
        }
    }
    let cache_rank = if pos.is_some() { 2 } else { 3 };
    for (t, what) in [(cos, "input 1 (cos_cache)"), (sin, "input 2 (sin_cache)")] {
        if t.rank().is_some_and(|r| r != cache_rank) {
            return Err(format!(
                "{what} must be {cache_rank}-D {} position_ids, got {t}",
                if pos.is_some() { "with" } else { "without" }
            ));
        }
    }
    Ok(vec![x.clone()])
}

/// `TensorScatter`: the output has past_cache's type.
pub(super) fn tensor_scatter(cx: &InferCx) -> R<Vec<TensorType>> {
    let past = input(cx, 0, "past_cache")?;
    let update = input(cx, 1, "update")?;
    same_dtype(past, "input 0 (past_cache)", update, "input 1 (update)")?;
    let at = attrs(cx);
    match at.str("mode").unwrap_or("linear") {
        "linear" | "circular" => {}
        other => {
            return Err(format!(
                "attribute `mode` = {other:?} must be \"linear\" or \"circular\""
            ))
        }
    }
    if let Some(w) = opt_input(cx, 2) {
        index_dtype(w, "input 2 (write_indices)")?;
        if w.rank().is_some_and(|r| r != 1) {
            return Err(format!("input 2 (write_indices) must be 1-D, got {w}"));
        }
    }
    if let (Some(pd), Some(ud)) = (past.dims(), update.dims()) {
        let axis = norm_axis(at.int_or("axis", -2), pd.len(), "attribute `axis`")?;
        if axis == 0 {
            return Err("attribute `axis` must not name the batch axis 0".into());
        }
        if pd.len() != ud.len() {
            return Err(format!(
                "input 1 (update) {update} and input 0 (past_cache) {past} differ in rank"
            ));
        }
        for (i, (p, u)) in pd.iter().zip(ud).enumerate() {
            let bad = if i == axis {
                matches!((p.known(), u.known()), (Some(p), Some(u)) if u > p)
            } else {
                unify_dim(p, u).is_none()
            };
            if bad {
                return Err(format!(
                    "input 1 (update) {update} does not fit input 0 (past_cache) {past} along axis {axis}"
                ));
            }
        }
    }
    Ok(vec![past.clone()])
}

/// The dims of a 3-D input, or unknown dims when its rank is unknown.
fn dims3(t: &TensorType, what: &str) -> R<[Dim; 3]> {
    match t.dims() {
        Some([a, b, c]) => Ok([a.clone(), b.clone(), c.clone()]),
        Some(_) => Err(format!("{what} must be 3-D, got {t}")),
        None => Ok([Dim::Unknown, Dim::Unknown, Dim::Unknown]),
    }
}

/// `LinearAttention` (opset 27): output `[B, T, H_q * d_v]` with query's dtype and
/// present_state `[B, H_kv, d_k, d_v]` with past_state's dtype (query's without one).
pub(super) fn linear_attention(cx: &InferCx) -> R<Vec<TensorType>> {
    let q = input(cx, 0, "query")?;
    let k = input(cx, 1, "key")?;
    let v = input(cx, 2, "value")?;
    float_input(q, "input 0 (query)")?;
    same_dtype(q, "input 0 (query)", k, "input 1 (key)")?;
    same_dtype(q, "input 0 (query)", v, "input 2 (value)")?;
    let at = attrs(cx);
    let rule = at.str("update_rule").unwrap_or("gated_delta");
    let (gating, delta) = match rule {
        "linear" => (false, false),
        "gated" => (true, false),
        "delta" => (false, true),
        "gated_delta" => (true, true),
        other => {
            return Err(format!(
                "attribute `update_rule` = {other:?} must be \"linear\", \"gated\", \"delta\" or \"gated_delta\""
            ))
        }
    };
    let decay = opt_input(cx, 4);
    let beta = opt_input(cx, 5);
    if gating != decay.is_some() {
        return Err(format!(
            "update rule {rule:?} {} input 4 (decay)",
            if gating { "requires" } else { "forbids" }
        ));
    }
    if delta != beta.is_some() {
        return Err(format!(
            "update rule {rule:?} {} input 5 (beta)",
            if delta { "requires" } else { "forbids" }
        ));
    }
    let hq = positive_attr(cx, "q_num_heads")?.ok_or("attribute `q_num_heads` is missing")?;
    let hk = positive_attr(cx, "kv_num_heads")?.ok_or("attribute `kv_num_heads` is missing")?;
    if hq % hk != 0 {
        return Err(format!(
            "q_num_heads {hq} must be a multiple of kv_num_heads {hk}"
        ));
    }
    let [b, t, qw] = dims3(q, "input 0 (query)")?;
    let [kb, kt, kw] = dims3(k, "input 1 (key)")?;
    let [vb, vt, vw] = dims3(v, "input 2 (value)")?;
    let b = agree(
        &agree(&b, &kb, "batch sizes of query and key")?,
        &vb,
        "batch sizes of query and value",
    )?;
    let t = agree(
        &agree(&t, &kt, "sequence lengths of query and key")?,
        &vt,
        "sequence lengths of query and value",
    )?;
    let dk = dim_div(&qw, hq, "query's width")?;
    agree(&dim_mul(&dk, hk), &kw, "key's width and kv_num_heads * d_k")?;
    let dv = dim_div(&vw, hk, "value's width")?;
    for (slot, t3, name) in [(4, decay, "decay"), (5, beta, "beta")] {
        if let Some(x) = t3 {
            same_dtype(q, "input 0 (query)", x, &format!("input {slot} ({name})"))?;
            dims3(x, &format!("input {slot} ({name})"))?;
        }
    }
    let state_dtype = match opt_input(cx, 3) {
        Some(p) => {
            float_input(p, "input 3 (past_state)")?;
            if p.rank().is_some_and(|r| r != 4) {
                return Err(format!("input 3 (past_state) must be 4-D, got {p}"));
            }
            p.dtype
        }
        None => q.dtype,
    };
    Ok(vec![
        TensorType::new(q.dtype, Shape::new(vec![b.clone(), t, dim_mul(&dv, hq)])),
        TensorType::new(state_dtype, Shape::new(vec![b, Dim::Known(hk), dk, dv])),
    ])
}

/// `CausalConvWithState` (opset 27): output with input's type, present_state
/// `[B, C, k - 1]`.
pub(super) fn causal_conv_with_state(cx: &InferCx) -> R<Vec<TensorType>> {
    let x = input(cx, 0, "input")?;
    let w = input(cx, 1, "weight")?;
    float_input(x, "input 0 (input)")?;
    same_dtype(x, "input 0 (input)", w, "input 1 (weight)")?;
    match attrs(cx).str("activation").unwrap_or("none") {
        "none" | "silu" | "swish" => {}
        other => {
            return Err(format!(
                "attribute `activation` = {other:?} must be \"none\", \"silu\" or \"swish\""
            ))
        }
    }
    let [b, c, _] = dims3(x, "input 0 (input)")?;
    let [wc, one, k] = dims3(w, "input 1 (weight)")?;
    let c = agree(&c, &wc, "channels of input and weight")?;
    if one.known().is_some_and(|n| n != 1) {
        return Err(format!(
            "input 1 (weight) must have shape [C, 1, k], got {w}"
        ));
    }
    if k.known() == Some(0) {
        return Err(format!("input 1 (weight) {w} has an empty kernel"));
    }
    if let Some(bias) = opt_input(cx, 2) {
        same_dtype(x, "input 0 (input)", bias, "input 2 (bias)")?;
        match bias.dims() {
            Some([d]) => {
                agree(&c, d, "channels of input and bias")?;
            }
            Some(_) => return Err(format!("input 2 (bias) must be 1-D, got {bias}")),
            None => {}
        }
    }
    let carry = match k.known() {
        Some(n) => Dim::Known(n - 1),
        None => Dim::Unknown,
    };
    if let Some(p) = opt_input(cx, 3) {
        same_dtype(x, "input 0 (input)", p, "input 3 (past_state)")?;
        let [pb, pc, pk] = dims3(p, "input 3 (past_state)")?;
        agree(&b, &pb, "batch sizes of input and past_state")?;
        agree(&c, &pc, "channels of input and past_state")?;
        agree(&carry, &pk, "past_state's length and the kernel size - 1")?;
    }
    Ok(vec![
        x.clone(),
        TensorType::new(x.dtype, Shape::new(vec![b, c, carry])),
    ])
}

#[cfg(test)]
mod tests {
    use crate::{Attr, Attrs, DType, Dim, Graph, OpKind, Shape, TensorType};

    fn t(dtype: DType, dims: &[u64]) -> TensorType {
        TensorType::known(dtype, dims)
    }

    /// Infer one node of `op` over fresh graph inputs (None: omitted), declaring `outs`
    /// outputs; the inferred output types as text, or the error.
    fn infer(
        op: OpKind,
        a: Attrs,
        ins: &[Option<TensorType>],
        outs: usize,
    ) -> Result<Vec<String>, String> {
        let mut g = Graph::new("t");
        let ids: Vec<_> = ins
            .iter()
            .enumerate()
            .map(|(i, ty)| ty.clone().map(|ty| g.add_input(&format!("i{i}"), ty)))
            .collect();
        let outs = (0..outs)
            .map(|_| (String::new(), TensorType::unranked(DType::F32)))
            .collect();
        let id = g.add_node("", op, a, ids, outs).unwrap();
        g.infer_types().map_err(|e| e.to_string())?;
        Ok(g.node(id)
            .outputs
            .iter()
            .map(|&v| g.ty(v).to_string())
            .collect())
    }

    /// The family's rules return errors, never panic, on odd ranks, dtypes, dims and
    /// attribute values.
    #[test]
    fn family_rules_never_panic() {
        let types = [
            TensorType::unranked(DType::F32),
            t(DType::F32, &[]),
            t(DType::F32, &[0]),
            TensorType::new(
                DType::F32,
                Shape::new(vec![
                    Dim::sym("a"),
                    Dim::Known(1),
                    Dim::Known(3),
                    Dim::Known(3),
                ]),
            ),
            TensorType::new(DType::I64, Shape::new(vec![Dim::Unknown])),
            t(DType::Bool, &[2, 0]),
            t(DType::F32, &[3, 1, 1, 1]),
            t(DType::F16, &[2, 4, 0]),
        ];
        let odd = |v: i64| {
            [
                "q_num_heads",
                "kv_num_heads",
                "num_heads",
                "rotary_embedding_dim",
                "axis",
                "num_groups",
                "size",
                "p",
                "qk_matmul_output_mode",
                "left_window_size",
                "right_window_size",
                "softmax_precision",
                "is_causal",
                "interleaved",
            ]
            .iter()
            .fold(Attrs::new(), |a, n| a.with(n, Attr::Int(v)))
            .with("axes", Attr::Ints(vec![v]))
            .with("mode", Attr::Str("odd".into()))
            .with("update_rule", Attr::Str("odd".into()))
            .with("activation", Attr::Str("odd".into()))
        };
        let attr_sets = [
            Attrs::new(),
            odd(i64::MIN),
            odd(i64::MAX),
            odd(0),
            odd(1),
            odd(2),
        ];
        let ops = [
            OpKind::Attention,
            OpKind::RotaryEmbedding,
            OpKind::TensorScatter,
            OpKind::LinearAttention,
            OpKind::CausalConvWithState,
            OpKind::RMSNormalization,
            OpKind::GroupNormalization,
            OpKind::InstanceNormalization,
            OpKind::MeanVarianceNormalization,
            OpKind::LpNormalization,
            OpKind::LRN,
            OpKind::Swish,
            OpKind::SwiGLU,
        ];
        for op in ops {
            for a in &attr_sets {
                for n in 0..=7usize {
                    for pick in 0..types.len() {
                        let ins: Vec<Option<TensorType>> = (0..n)
                            .map(|slot| {
                                (slot != 3 || pick % 2 == 0)
                                    .then(|| types[(pick + slot) % types.len()].clone())
                            })
                            .collect();
                        // Ok or Err are both fine; a panic fails the test.
                        let _ = infer(op.clone(), a.clone(), &ins, 4);
                    }
                }
            }
        }
    }

    #[test]
    fn attention_shapes() {
        let a = Attrs::new()
            .with("q_num_heads", Attr::Int(9))
            .with("kv_num_heads", Attr::Int(3));
        let f = DType::F32;
        let got = infer(
            OpKind::Attention,
            a.clone(),
            &[
                Some(t(f, &[2, 4, 72])),
                Some(t(f, &[2, 6, 24])),
                Some(t(f, &[2, 6, 30])),
                Some(t(f, &[4, 18])),
                Some(t(f, &[2, 3, 12, 8])),
                Some(t(f, &[2, 3, 12, 10])),
            ],
            4,
        )
        .unwrap();
        assert_eq!(
            got,
            [
                "f32[2, 4, 90]",
                "f32[2, 3, 18, 8]",
                "f32[2, 3, 18, 10]",
                "f32[2, 9, 4, 18]"
            ]
        );
        // 4-D with a symbolic batch.
        let q = TensorType::new(
            f,
            Shape::new(vec![
                Dim::sym("b"),
                Dim::Known(2),
                Dim::Known(3),
                Dim::Known(8),
            ]),
        );
        let kv = TensorType::new(
            f,
            Shape::new(vec![
                Dim::sym("b"),
                Dim::Known(1),
                Dim::Known(5),
                Dim::Known(8),
            ]),
        );
        let got = infer(
            OpKind::Attention,
            Attrs::new(),
            &[Some(q.clone()), Some(kv.clone()), Some(kv.clone())],
            1,
        )
        .unwrap();
        assert_eq!(got, ["f32[?b, 2, 3, 8]"]);
        // An unranked Q leaves Y's rank open; the caches are 4-D.
        let got = infer(
            OpKind::Attention,
            Attrs::new(),
            &[
                Some(TensorType::unranked(f)),
                Some(kv.clone()),
                Some(kv.clone()),
            ],
            2,
        )
        .unwrap();
        assert_eq!(got, ["f32[*]", "f32[?b, 1, 5, 8]"]);
        // Errors: head sizes, hidden not divisible, 3 heads into 2, bad mode.
        let k7 = t(f, &[2, 1, 5, 7]);
        let e = infer(
            OpKind::Attention,
            Attrs::new(),
            &[Some(q.clone()), Some(k7), Some(kv.clone())],
            1,
        )
        .unwrap_err();
        assert!(e.contains("head sizes"), "{e}");
        let e = infer(
            OpKind::Attention,
            a,
            &[
                Some(t(f, &[2, 4, 70])),
                Some(t(f, &[2, 6, 24])),
                Some(t(f, &[2, 6, 24])),
            ],
            1,
        )
        .unwrap_err();
        assert!(e.contains("multiple"), "{e}");
        let e = infer(
            OpKind::Attention,
            Attrs::new(),
            &[
                Some(t(f, &[1, 3, 2, 4])),
                Some(t(f, &[1, 2, 2, 4])),
                Some(t(f, &[1, 2, 2, 4])),
            ],
            1,
        )
        .unwrap_err();
        assert!(e.contains("heads"), "{e}");
        let m = Attrs::new().with("qk_matmul_output_mode", Attr::Int(4));
        assert!(infer(
            OpKind::Attention,
            m,
            &[Some(q.clone()), Some(kv.clone()), Some(kv.clone())],
            1
        )
        .is_err());
        let e = infer(
            OpKind::Attention,
            Attrs::new(),
            &[Some(q), Some(kv.clone()), Some(kv), Some(t(f, &[3, 3, 5]))],
            1,
        )
        .unwrap_err();
        assert!(e.contains("broadcast"), "{e}");
    }

    #[test]
    fn recurrent_forms() {
        let f = DType::F32;
        let a = Attrs::new()
            .with("q_num_heads", Attr::Int(8))
            .with("kv_num_heads", Attr::Int(4));
        let got = infer(
            OpKind::LinearAttention,
            a.clone(),
            &[
                Some(t(f, &[2, 4, 64])),
                Some(t(f, &[2, 4, 32])),
                Some(t(f, &[2, 4, 32])),
                None,
                Some(t(f, &[2, 4, 32])),
                Some(t(f, &[2, 4, 4])),
            ],
            2,
        )
        .unwrap();
        assert_eq!(got, ["f32[2, 4, 64]", "f32[2, 4, 8, 8]"]);
        let e = infer(
            OpKind::LinearAttention,
            a,
            &[
                Some(t(f, &[2, 4, 64])),
                Some(t(f, &[2, 4, 32])),
                Some(t(f, &[2, 4, 32])),
            ],
            2,
        )
        .unwrap_err();
        assert!(e.contains("requires"), "{e}");
        let got = infer(
            OpKind::CausalConvWithState,
            Attrs::new(),
            &[Some(t(f, &[2, 4, 8])), Some(t(f, &[4, 1, 4]))],
            2,
        )
        .unwrap();
        assert_eq!(got, ["f32[2, 4, 8]", "f32[2, 4, 3]"]);
        let e = infer(
            OpKind::CausalConvWithState,
            Attrs::new(),
            &[Some(t(f, &[2, 4, 8])), Some(t(f, &[3, 1, 4]))],
            2,
        )
        .unwrap_err();
        assert!(e.contains("channels"), "{e}");
    }

    #[test]
    fn rotary_and_scatter() {
        let f = DType::F32;
        let a = Attrs::new().with("num_heads", Attr::Int(4));
        let got = infer(
            OpKind::RotaryEmbedding,
            a,
            &[
                Some(t(f, &[2, 3, 32])),
                Some(t(f, &[50, 4])),
                Some(t(f, &[50, 4])),
                Some(t(DType::I64, &[2, 3])),
            ],
            1,
        )
        .unwrap();
        assert_eq!(got, ["f32[2, 3, 32]"]);
        let e = infer(
            OpKind::RotaryEmbedding,
            Attrs::new(),
            &[
                Some(t(f, &[2, 3, 32])),
                Some(t(f, &[50, 4])),
                Some(t(f, &[50, 4])),
            ],
            1,
        )
        .unwrap_err();
        assert!(e.contains("num_heads"), "{e}");
        let got = infer(
            OpKind::TensorScatter,
            Attrs::new(),
            &[
                Some(t(f, &[2, 1, 4, 5])),
                Some(t(f, &[2, 1, 1, 5])),
                Some(t(DType::I64, &[2])),
            ],
            1,
        )
        .unwrap();
        assert_eq!(got, ["f32[2, 1, 4, 5]"]);
        let e = infer(
            OpKind::TensorScatter,
            Attrs::new(),
            &[Some(t(f, &[2, 1, 4, 5])), Some(t(f, &[2, 1, 5, 5]))],
            1,
        )
        .unwrap_err();
        assert!(e.contains("does not fit"), "{e}");
    }
}
