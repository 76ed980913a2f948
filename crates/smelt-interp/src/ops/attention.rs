//! Attention and its companions: Attention (opset 23 to 25 forms), RotaryEmbedding,
//! TensorScatter (the KV-cache update), and the recurrent forms LinearAttention and
//! CausalConvWithState.
//!
//! Attention is written as the textbook loop over (batch, head, query) rows: scores
//! `(Q·√scale)(K·√scale)ᵀ`, optional softcap, an additive bias built from the mask, the
//! causal frontier, the sliding window and the padding lengths, a softmax, and the
//! weighted sum of V. Everything is computed in f64 and rounded once on output.

use smelt_ir::Attrs;

use super::normalization::{float_value, floats};
use super::{input, norm_axis, opt_input};
use crate::error::{bail, OpResult};
use crate::value::{array_from, dispatch_all, to_std_vec, typed, Elem, Value};

/// A Q, K or V tensor seen as `[batch, heads, seq, head_size]`, with its elements in
/// that order.
struct Heads {
    dims: [usize; 4],
    data: Vec<f64>,
}

/// Read Q, K or V: 4-D as it is, 3-D `[batch, seq, heads * head_size]` split into
/// `heads` heads (from the attribute `heads_attr`).
fn heads(v: &Value, what: &str, attrs: &Attrs, heads_attr: &str) -> OpResult<Heads> {
    let data = floats(v, what)?;
    match *v.shape() {
        [b, h, s, d] => Ok(Heads {
            dims: [b, h, s, d],
            data,
        }),
        [b, s, hidden] => {
            let Some(n) = attrs.int(heads_attr) else {
                bail!("{what} is 3-D, which needs attribute `{heads_attr}`");
            };
            let h = match usize::try_from(n) {
                Ok(h) if h > 0 && hidden % h == 0 => h,
                _ => bail!(
                    "attribute `{heads_attr}` = {n} must be positive and divide {what}'s hidden size {hidden}"
                ),
            };
            let d = hidden / h;
            let mut out = vec![0.0; data.len()];
            for bi in 0..b {
                for si in 0..s {
                    for hi in 0..h {
                        for di in 0..d {
                            out[((bi * h + hi) * s + si) * d + di] =
                                data[(bi * s + si) * hidden + hi * d + di];
                        }
                    }
                }
            }
            Ok(Heads {
                dims: [b, h, s, d],
                data: out,
            })
        }
        ref other => bail!("{what} must be 3-D or 4-D, got shape {other:?}"),
    }
}

/// `past` (if any) followed by `new` along the sequence axis of `[b, h, s, d]` tensors.
fn concat_seq(past: Option<&Heads>, new: &Heads, what: &str) -> OpResult<Heads> {
    let Some(p) = past else {
        return Ok(Heads {
            dims: new.dims,
            data: new.data.clone(),
        });
    };
    let [b, h, ps, d] = p.dims;
    let [nb, nh, ns, nd] = new.dims;
    if (b, h, d) != (nb, nh, nd) {
        bail!(
            "past_{what} {:?} does not match {what} {:?} in batch, heads or head size",
            p.dims,
            new.dims
        );
    }
    let mut data = Vec::with_capacity(p.data.len() + new.data.len());
    for bh in 0..b * h {
        data.extend_from_slice(&p.data[bh * ps * d..(bh + 1) * ps * d]);
        data.extend_from_slice(&new.data[bh * ns * d..(bh + 1) * ns * d]);
    }
    Ok(Heads {
        dims: [b, h, ps + ns, d],
        data,
    })
}

/// The attention mask as an additive bias lookup: `bias(b, h, i, j)` for key positions
/// `j` below the mask's last dim (later keys are masked, as the spec pads the mask).
struct Mask {
    /// Element strides for (batch, head, query, key), 0 along broadcast dims.
    strides: [usize; 4],
    /// The mask's last dim.
    keys: usize,
    /// Additive values: 0 / −inf for a boolean mask, the values for a float one.
    bias: Vec<f64>,
}

impl Mask {
    fn new(m: &Value, target: [usize; 4]) -> OpResult<Mask> {
        let shape = m.shape();
        if shape.is_empty() || shape.len() > 4 {
            bail!("attn_mask must have rank 1 to 4, got shape {shape:?}");
        }
        let bias: Vec<f64> = match m {
            Value::Bool(a) => a
                .iter()
                .map(|&ok| if ok { 0.0 } else { f64::NEG_INFINITY })
                .collect(),
            _ => floats(m, "attn_mask")?,
        };
        let keys = shape[shape.len() - 1];
        if keys > target[3] {
            bail!(
                "attn_mask {shape:?} has more keys than the total sequence length {}",
                target[3]
            );
        }
        let pad = 4 - shape.len();
        let mut strides = [0usize; 4];
        let mut acc = 1;
        for d in (0..shape.len()).rev() {
            let (size, want) = (shape[d], target[d + pad]);
            // The key dim is padded, never broadcast; the others broadcast numpy-style.
            if d + pad < 3 && size != 1 && size != want {
                bail!("attn_mask {shape:?} does not broadcast to {target:?}");
            }
            strides[d + pad] = if size == 1 && d + pad < 3 { 0 } else { acc };
            acc *= size;
        }
        Ok(Mask {
            strides,
            keys,
            bias,
        })
    }

    fn at(&self, b: usize, h: usize, i: usize, j: usize) -> f64 {
        if j >= self.keys {
            return f64::NEG_INFINITY;
        }
        let s = &self.strides;
        self.bias[b * s[0] + h * s[1] + i * s[2] + j * s[3]]
    }
}

/// Softmax of one row; an all-−inf row gives zeros and a NaN anywhere gives NaNs.
fn softmax_row(x: &[f64]) -> Vec<f64> {
    if x.iter().any(|v| v.is_nan()) {
        return vec![f64::NAN; x.len()];
    }
    let max = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY {
        return vec![0.0; x.len()];
    }
    let e: Vec<f64> = x.iter().map(|v| (v - max).exp()).collect();
    let sum: f64 = e.iter().sum();
    e.into_iter().map(|v| v / sum).collect()
}

/// An int attribute that must be −1 (off) or non-negative.
fn window_attr(attrs: &Attrs, name: &str) -> OpResult<Option<i64>> {
    match attrs.int_or(name, -1) {
        -1 => Ok(None),
        w if w >= 0 => Ok(Some(w)),
        w => bail!("attribute `{name}` = {w} must be -1 or non-negative"),
    }
}

/// ONNX Attention. Outputs Y, present_key, present_value and qk_matmul_output (as many
/// as the node asks for).
pub(crate) fn attention(
    attrs: &Attrs,
    inputs: &[Option<&Value>],
    num_outputs: usize,
) -> OpResult<Vec<Value>> {
    let qv = input(inputs, 0, "Q")?;
    let kv = input(inputs, 1, "K")?;
    let vv = input(inputs, 2, "V")?;
    let rank = qv.shape().len();
    if kv.shape().len() != rank || vv.shape().len() != rank {
        bail!(
            "Q {:?}, K {:?} and V {:?} must have the same rank",
            qv.shape(),
            kv.shape(),
            vv.shape()
        );
    }
    let q = heads(qv, "Q", attrs, "q_num_heads")?;
    let k = heads(kv, "K", attrs, "kv_num_heads")?;
    let v = heads(vv, "V", attrs, "kv_num_heads")?;
    let past_k = opt_input(inputs, 4);
    let past_v = opt_input(inputs, 5);
    let nonpad = opt_input(inputs, 6);
    if past_k.is_some() != past_v.is_some() {
        bail!("past_key and past_value must be given together");
    }
    if nonpad.is_some() && past_k.is_some() {
        bail!("nonpad_kv_seqlen cannot be combined with past_key and past_value");
    }
    let past = |p: Option<&Value>, what: &str| -> OpResult<Option<Heads>> {
        match p {
            None => Ok(None),
            Some(p) if p.shape().len() != 4 => {
                bail!("{what} must be 4-D, got shape {:?}", p.shape())
            }
            Some(p) => heads(p, what, attrs, "kv_num_heads").map(Some),
        }
    };
    let pk = past(past_k, "past_key")?;
    let pv = past(past_v, "past_value")?;
    let k = concat_seq(pk.as_ref(), &k, "key")?;
    let v = concat_seq(pv.as_ref(), &v, "value")?;

    let [b, hq, sq, dq] = q.dims;
    let [kb, hk, t, dk] = k.dims;
    let [vb, hv, tv, dv] = v.dims;
    if kb != b || vb != b {
        bail!("Q, K and V have different batch sizes ({b}, {kb}, {vb})");
    }
    if hk != hv || t != tv {
        bail!(
            "K {:?} and V {:?} differ in heads or sequence length",
            k.dims,
            v.dims
        );
    }
    if dk != dq {
        bail!("Q's head size {dq} differs from K's {dk}");
    }
    if hk == 0 || hq % hk != 0 {
        bail!("Q's {hq} heads are not a multiple of K and V's {hk} heads");
    }
    let group = hq / hk;

    let scale = match attrs.float("scale") {
        Some(s) => f64::from(s),
        None => 1.0 / (dq as f64).sqrt(),
    };
    // The spec scales Q and K by √scale each before their product.
    let sqrt_scale = scale.sqrt();
    let softcap = f64::from(attrs.float_or("softcap", 0.0));
    let causal = attrs.int_or("is_causal", 0) != 0;
    let mode = attrs.int_or("qk_matmul_output_mode", 0);
    if !(0..=3).contains(&mode) {
        bail!("attribute `qk_matmul_output_mode` = {mode} must be 0, 1, 2 or 3");
    }
    let left = window_attr(attrs, "left_window_size")?;
    let right = window_attr(attrs, "right_window_size")?;

    let mask = opt_input(inputs, 3)
        .map(|m| Mask::new(m, [b, hq, sq, t]))
        .transpose()?;
    let lens: Option<Vec<i64>> = match nonpad {
        None => None,
        Some(n) => {
            if n.shape() != [b] {
                bail!(
                    "nonpad_kv_seqlen must have shape [{b}], got {:?}",
                    n.shape()
                );
            }
            Some(n.to_i64_vec("nonpad_kv_seqlen")?)
        }
    };
    // Keys preceding the query block, per batch: the past length for an internal cache,
    // `nonpad_kv_seqlen - q_len` for an external one, else 0.
    let offset = |bi: usize| -> i64 {
        match (&pk, &lens) {
            (Some(p), _) => p.dims[2] as i64,
            (None, Some(l)) => l[bi].saturating_sub(sq as i64),
            (None, None) => 0,
        }
    };

    let mut y = vec![0.0; b * hq * sq * dv];
    let mut qk_out = vec![0.0; b * hq * sq * t];
    let mut scores = vec![0.0; t];
    let mut bias = vec![0.0; t];
    for bi in 0..b {
        let off = offset(bi);
        for h in 0..hq {
            let kh = h / group;
            for i in 0..sq {
                let qrow = &q.data[((bi * hq + h) * sq + i) * dq..][..dq];
                for j in 0..t {
                    let krow = &k.data[((bi * hk + kh) * t + j) * dk..][..dk];
                    let mut s: f64 = qrow
                        .iter()
                        .zip(krow)
                        .map(|(a, c)| (a * sqrt_scale) * (c * sqrt_scale))
                        .sum();
                    if softcap > 0.0 {
                        s = softcap * (s / softcap).tanh();
                    }
                    scores[j] = s;
                    let mut bj = mask.as_ref().map_or(0.0, |m| m.at(bi, h, i, j));
                    // Absolute query position minus key position.
                    let diff = (i as i64).saturating_add(off).saturating_sub(j as i64);
                    let blocked = (causal && diff < 0)
                        || left.is_some_and(|l| diff > l)
                        || right.is_some_and(|r| diff < -r)
                        || lens.as_ref().is_some_and(|l| j as i64 >= l[bi]);
                    if blocked {
                        bj = f64::NEG_INFINITY;
                    }
                    bias[j] = bj;
                }
                let x: Vec<f64> = scores.iter().zip(&bias).map(|(s, c)| s + c).collect();
                // A row with every key masked attends to nothing: zero probabilities.
                let probs = if bias.iter().all(|&c| c == f64::NEG_INFINITY) {
                    vec![0.0; t]
                } else {
                    softmax_row(&x)
                };
                let row = ((bi * hq + h) * sq + i) * t;
                let qk = match mode {
                    0 | 1 => &scores,
                    2 => &x,
                    _ => &probs,
                };
                qk_out[row..row + t].copy_from_slice(qk);
                let out = &mut y[((bi * hq + h) * sq + i) * dv..][..dv];
                for (j, p) in probs.iter().enumerate() {
                    let vrow = &v.data[((bi * hk + kh) * t + j) * dv..][..dv];
                    for (o, e) in out.iter_mut().zip(vrow) {
                        *o += p * e;
                    }
                }
            }
        }
    }

    let y = if rank == 3 {
        // Back to [batch, q_seq, heads * v_head_size].
        let mut r = vec![0.0; y.len()];
        for bi in 0..b {
            for h in 0..hq {
                for i in 0..sq {
                    for e in 0..dv {
                        r[(bi * sq + i) * hq * dv + h * dv + e] =
                            y[((bi * hq + h) * sq + i) * dv + e];
                    }
                }
            }
        }
        float_value(qv.dtype(), &[b, sq, hq * dv], r)?
    } else {
        float_value(qv.dtype(), &[b, hq, sq, dv], y)?
    };
    let mut outs = vec![y];
    if num_outputs > 1 {
        outs.push(float_value(kv.dtype(), &k.dims, k.data)?);
    }
    if num_outputs > 2 {
        outs.push(float_value(vv.dtype(), &v.dims, v.data)?);
    }
    if num_outputs > 3 {
        outs.push(float_value(qv.dtype(), &[b, hq, sq, t], qk_out)?);
    }
    Ok(outs)
}

/// ONNX RotaryEmbedding: rotate the first `rotary_embedding_dim` features of every head
/// vector by the angles of its position, halves (`x[k]`, `x[k + r/2]`) or interleaved
/// pairs (`x[2k]`, `x[2k+1]`) forming the complex numbers.
pub(crate) fn rotary_embedding(attrs: &Attrs, inputs: &[Option<&Value>]) -> OpResult<Value> {
    let x = input(inputs, 0, "X")?;
    let cos_v = input(inputs, 1, "cos_cache")?;
    let sin_v = input(inputs, 2, "sin_cache")?;
    let pos = opt_input(inputs, 3);
    let shape = x.shape().to_vec();
    // Head vectors are contiguous runs of `d` elements in both layouts.
    let (b, s, h, d, layout4) = match *shape.as_slice() {
        [b, h, s, d] => (b, s, h, d, true),
        [b, s, hidden] => {
            let Some(n) = attrs.int("num_heads") else {
                bail!("X is 3-D, which needs attribute `num_heads`");
            };
            match usize::try_from(n) {
                Ok(h) if h > 0 && hidden % h == 0 => (b, s, h, hidden / h, false),
                _ => bail!("attribute `num_heads` = {n} must be positive and divide X's hidden size {hidden}"),
            }
        }
        ref other => bail!("X must be 3-D or 4-D, got shape {other:?}"),
    };
    let rot = match attrs.int_or("rotary_embedding_dim", 0) {
        0 => d,
        r => match usize::try_from(r) {
            Ok(r) if r <= d && r % 2 == 0 => r,
            _ => bail!(
                "attribute `rotary_embedding_dim` = {r} must be even and at most the head size {d}"
            ),
        },
    };
    let half = rot / 2;
    let interleaved = attrs.int_or("interleaved", 0) != 0;
    let cos = floats(cos_v, "cos_cache")?;
    let sin = floats(sin_v, "sin_cache")?;
    if cos_v.shape() != sin_v.shape() {
        bail!(
            "cos_cache {:?} and sin_cache {:?} must have the same shape",
            cos_v.shape(),
            sin_v.shape()
        );
    }
    // The offset into the caches of the angles for (batch, position).
    let row_of: Vec<usize> = match pos {
        Some(p) => {
            if p.shape() != [b, s] {
                bail!(
                    "position_ids must have shape [{b}, {s}], got {:?}",
                    p.shape()
                );
            }
            let [rows, w] = *cos_v.shape() else {
                bail!(
                    "with position_ids the caches must be 2-D, got {:?}",
                    cos_v.shape()
                );
            };
            if w != half {
                bail!("the caches' last dim {w} must be rotary_embedding_dim / 2 = {half}");
            }
            p.to_i64_vec("position_ids")?
                .into_iter()
                .map(|id| match usize::try_from(id) {
                    Ok(r) if r < rows => Ok(r * half),
                    _ => bail!("position id {id} is out of range for caches of {rows} rows"),
                })
                .collect::<OpResult<_>>()?
        }
        None => {
            if cos_v.shape() != [b, s, half] {
                bail!(
                    "without position_ids the caches must have shape [{b}, {s}, {half}], got {:?}",
                    cos_v.shape()
                );
            }
            (0..b * s).map(|r| r * half).collect()
        }
    };
    let mut y = floats(x, "X")?;
    for vi in 0..b * s * h {
        let (bi, si) = if layout4 {
            (vi / (h * s), vi % s)
        } else {
            (vi / (s * h), (vi / h) % s)
        };
        let c = &cos[row_of[bi * s + si]..][..half];
        let sn = &sin[row_of[bi * s + si]..][..half];
        let vec = &mut y[vi * d..(vi + 1) * d];
        let orig = vec[..rot].to_vec();
        for k in 0..half {
            let (i1, i2) = if interleaved {
                (2 * k, 2 * k + 1)
            } else {
                (k, k + half)
            };
            let (x1, x2) = (orig[i1], orig[i2]);
            vec[i1] = c[k] * x1 - sn[k] * x2;
            vec[i2] = sn[k] * x1 + c[k] * x2;
        }
    }
    float_value(x.dtype(), &shape, y)
}

/// ONNX TensorScatter: write `update` into a copy of `past_cache` along the sequence
/// axis, at `write_indices[batch]` onwards (wrapping around in `circular` mode).
pub(crate) fn tensor_scatter(attrs: &Attrs, inputs: &[Option<&Value>]) -> OpResult<Value> {
    let past = input(inputs, 0, "past_cache")?;
    let update = input(inputs, 1, "update")?;
    if past.dtype() != update.dtype() {
        bail!(
            "past_cache is {} but update is {}",
            past.dtype(),
            update.dtype()
        );
    }
    let shape = past.shape().to_vec();
    let ushape = update.shape();
    let axis = norm_axis(attrs.int_or("axis", -2), shape.len())?;
    if axis == 0 {
        bail!("attribute `axis` must not name the batch axis 0");
    }
    if ushape.len() != shape.len()
        || (0..shape.len()).any(|i| {
            if i == axis {
                ushape[i] > shape[i]
            } else {
                ushape[i] != shape[i]
            }
        })
    {
        bail!("update {ushape:?} does not fit past_cache {shape:?} along axis {axis}");
    }
    let circular = match attrs.str("mode").unwrap_or("linear") {
        "linear" => false,
        "circular" => true,
        other => bail!("attribute `mode` = {other:?} must be \"linear\" or \"circular\""),
    };
    let batch = shape[0];
    let starts = match opt_input(inputs, 2) {
        Some(w) => {
            if w.shape() != [batch] {
                bail!(
                    "write_indices must have shape [{batch}], got {:?}",
                    w.shape()
                );
            }
            w.to_i64_vec("write_indices")?
        }
        None => vec![0; batch],
    };
    let max_seq = shape[axis];
    let seq = ushape[axis];
    let prefix: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    // (destination, source) offsets of each run of `inner` elements to copy.
    let mut moves = Vec::with_capacity(prefix * seq);
    for p in 0..prefix {
        let bi = p / (prefix / batch.max(1)).max(1);
        for si in 0..seq {
            let at = starts[bi].saturating_add(si as i64);
            let at = if circular && max_seq > 0 {
                at.rem_euclid(max_seq as i64)
            } else {
                at
            };
            let dst = match usize::try_from(at) {
                Ok(a) if a < max_seq => a,
                _ => bail!(
                    "write index {at} (batch {bi}) is out of range for a sequence axis of {max_seq}"
                ),
            };
            moves.push(((p * max_seq + dst) * inner, (p * seq + si) * inner));
        }
    }
    dispatch_all!(past, T => {
        let mut out = to_std_vec(typed::<T>(past, "past_cache")?);
        let src = to_std_vec(typed::<T>(update, "update")?);
        for &(d, s) in &moves {
            out[d..d + inner].clone_from_slice(&src[s..s + inner]);
        }
        Ok(T::into_value(array_from(&shape, out)?))
    })
}

/// The recurrence of ONNX LinearAttention.
#[derive(Clone, Copy, PartialEq)]
enum UpdateRule {
    Linear,
    Gated,
    Delta,
    GatedDelta,
}

/// A 3-D `[batch, seq, width]` input as f64 elements, checking its batch and sequence.
fn packed(v: &Value, what: &str, b: usize, t: usize) -> OpResult<(usize, Vec<f64>)> {
    match *v.shape() {
        [vb, vt, w] if vb == b && vt == t => Ok((w, floats(v, what)?)),
        ref other => bail!("{what} must have shape [{b}, {t}, _], got {other:?}"),
    }
}

/// ONNX LinearAttention (opset 27): the recurrent state `S` (`[d_k, d_v]` per batch and
/// KV head) is updated token by token by the chosen rule and read by the query heads
/// sharing that KV head: `o_t = scale · q_tᵀ S_t`. Outputs `output` and `present_state`.
pub(crate) fn linear_attention(attrs: &Attrs, inputs: &[Option<&Value>]) -> OpResult<Vec<Value>> {
    let qv = input(inputs, 0, "query")?;
    let kv = input(inputs, 1, "key")?;
    let vv = input(inputs, 2, "value")?;
    let past = opt_input(inputs, 3);
    let decay = opt_input(inputs, 4);
    let beta = opt_input(inputs, 5);
    let rule = match attrs.str("update_rule").unwrap_or("gated_delta") {
        "linear" => UpdateRule::Linear,
        "gated" => UpdateRule::Gated,
        "delta" => UpdateRule::Delta,
        "gated_delta" => UpdateRule::GatedDelta,
        other => bail!(
            "attribute `update_rule` = {other:?} must be \"linear\", \"gated\", \"delta\" or \"gated_delta\""
        ),
    };
    let gating = matches!(rule, UpdateRule::Gated | UpdateRule::GatedDelta);
    let delta = matches!(rule, UpdateRule::Delta | UpdateRule::GatedDelta);
    if gating != decay.is_some() {
        bail!(
            "update rule {:?} {} the decay input",
            attrs.str("update_rule").unwrap_or("gated_delta"),
            if gating { "requires" } else { "forbids" }
        );
    }
    if delta != beta.is_some() {
        bail!(
            "update rule {:?} {} the beta input",
            attrs.str("update_rule").unwrap_or("gated_delta"),
            if delta { "requires" } else { "forbids" }
        );
    }
    let heads_attr = |name: &str| -> OpResult<usize> {
        match attrs.int(name) {
            None => bail!("attribute `{name}` is missing"),
            Some(n) => match usize::try_from(n) {
                Ok(h) if h > 0 => Ok(h),
                _ => bail!("attribute `{name}` = {n} must be positive"),
            },
        }
    };
    let hq = heads_attr("q_num_heads")?;
    let hk = heads_attr("kv_num_heads")?;
    if hq % hk != 0 {
        bail!("q_num_heads {hq} must be a multiple of kv_num_heads {hk}");
    }
    let group = hq / hk;
    let [b, t, qw] = *qv.shape() else {
        bail!(
            "query must be 3-D [batch, seq, heads * d_k], got {:?}",
            qv.shape()
        );
    };
    if qw % hq != 0 {
        bail!("query's width {qw} is not a multiple of q_num_heads {hq}");
    }
    let dk = qw / hq;
    let q = floats(qv, "query")?;
    let (kw, k) = packed(kv, "key", b, t)?;
    if kw != hk * dk {
        bail!("key's width {kw} must be kv_num_heads * d_k = {}", hk * dk);
    }
    let (vw, v) = packed(vv, "value", b, t)?;
    if vw % hk != 0 {
        bail!("value's width {vw} is not a multiple of kv_num_heads {hk}");
    }
    let dv = vw / hk;
    let decay = match decay {
        None => None,
        Some(d) => {
            let (w, g) = packed(d, "decay", b, t)?;
            if w != hk && w != hk * dk {
                bail!(
                    "decay's width {w} must be kv_num_heads ({hk}) or kv_num_heads * d_k ({})",
                    hk * dk
                );
            }
            Some((w, g))
        }
    };
    let beta = match beta {
        None => None,
        Some(x) => {
            let (w, be) = packed(x, "beta", b, t)?;
            if w != hk && w != 1 {
                bail!("beta's width {w} must be kv_num_heads ({hk}) or 1");
            }
            Some((w, be))
        }
    };
    let mut state = match past {
        Some(p) => {
            if p.shape() != [b, hk, dk, dv] {
                bail!(
                    "past_state must have shape [{b}, {hk}, {dk}, {dv}], got {:?}",
                    p.shape()
                );
            }
            floats(p, "past_state")?
        }
        None => vec![0.0; b * hk * dk * dv],
    };
    // A scale of 0 (the default) means 1/sqrt(head size).
    let given = attrs.float_or("scale", 0.0);
    let scale = if given == 0.0 {
        1.0 / (dk as f64).sqrt()
    } else {
        f64::from(given)
    };
    let mut out = vec![0.0; b * t * hq * dv];
    for bi in 0..b {
        for h in 0..hk {
            let s = &mut state[(bi * hk + h) * dk * dv..][..dk * dv];
            for ti in 0..t {
                let row = bi * t + ti;
                let kt = &k[row * kw + h * dk..][..dk];
                let mut vt = v[row * vw + h * dv..][..dv].to_vec();
                if let Some((w, g)) = &decay {
                    for d in 0..dk {
                        let gd = if *w == hk {
                            g[row * w + h]
                        } else {
                            g[row * w + h * dk + d]
                        };
                        let f = gd.exp();
                        s[d * dv..(d + 1) * dv].iter_mut().for_each(|x| *x *= f);
                    }
                }
                if let Some((w, be)) = &beta {
                    let bt = be[row * w + if *w == 1 { 0 } else { h }];
                    for (m, x) in vt.iter_mut().enumerate() {
                        let retrieved: f64 = (0..dk).map(|d| s[d * dv + m] * kt[d]).sum();
                        *x = bt * (*x - retrieved);
                    }
                }
                for d in 0..dk {
                    for m in 0..dv {
                        s[d * dv + m] += kt[d] * vt[m];
                    }
                }
                for qh in h * group..(h + 1) * group {
                    let qt = &q[row * qw + qh * dk..][..dk];
                    for m in 0..dv {
                        let o: f64 = (0..dk).map(|d| qt[d] * s[d * dv + m]).sum();
                        out[row * hq * dv + qh * dv + m] = scale * o;
                    }
                }
            }
        }
    }
    let state_dtype = past.map_or(qv.dtype(), Value::dtype);
    Ok(vec![
        float_value(qv.dtype(), &[b, t, hq * dv], out)?,
        float_value(state_dtype, &[b, hk, dk, dv], state)?,
    ])
}

/// ONNX CausalConvWithState (opset 27): a depthwise causal 1-D convolution of
/// `[batch, channels, length]` over the input preceded by `past_state` (or zeros), with an
/// optional fused SiLU. Outputs `output` and `present_state` (the last `k - 1` positions
/// of the padded sequence).
pub(crate) fn causal_conv_with_state(
    attrs: &Attrs,
    inputs: &[Option<&Value>],
) -> OpResult<Vec<Value>> {
    let xv = input(inputs, 0, "input")?;
    let wv = input(inputs, 1, "weight")?;
    let silu = match attrs.str("activation").unwrap_or("none") {
        "none" => false,
        "silu" | "swish" => true,
        other => {
            bail!("attribute `activation` = {other:?} must be \"none\", \"silu\" or \"swish\"")
        }
    };
    let [b, c, l] = *xv.shape() else {
        bail!(
            "input must be 3-D [batch, channels, length], got {:?}",
            xv.shape()
        );
    };
    let k = match *wv.shape() {
        [wc, 1, k] if wc == c && k > 0 => k,
        ref other => bail!("weight must have shape [{c}, 1, k] with k >= 1, got {other:?}"),
    };
    let x = floats(xv, "input")?;
    let w = floats(wv, "weight")?;
    let bias = match opt_input(inputs, 2) {
        None => vec![0.0; c],
        Some(bv) => {
            if bv.shape() != [c] {
                bail!("bias must have shape [{c}], got {:?}", bv.shape());
            }
            floats(bv, "bias")?
        }
    };
    let past = match opt_input(inputs, 3) {
        None => vec![0.0; b * c * (k - 1)],
        Some(p) => {
            if p.shape() != [b, c, k - 1] {
                bail!(
                    "past_state must have shape [{b}, {c}, {}], got {:?}",
                    k - 1,
                    p.shape()
                );
            }
            floats(p, "past_state")?
        }
    };
    let padded_len = l + k - 1;
    let mut out = vec![0.0; b * c * l];
    let mut present = vec![0.0; b * c * (k - 1)];
    for bc in 0..b * c {
        let ch = bc % c;
        let mut padded = past[bc * (k - 1)..(bc + 1) * (k - 1)].to_vec();
        padded.extend_from_slice(&x[bc * l..(bc + 1) * l]);
        for p in 0..l {
            let mut y = bias[ch];
            for j in 0..k {
                y += w[ch * k + j] * padded[p + j];
            }
            if silu {
                y /= 1.0 + (-y).exp();
            }
            out[bc * l + p] = y;
        }
        present[bc * (k - 1)..(bc + 1) * (k - 1)].copy_from_slice(&padded[padded_len - (k - 1)..]);
    }
    Ok(vec![
        float_value(xv.dtype(), &[b, c, l], out)?,
        float_value(xv.dtype(), &[b, c, k - 1], present)?,
    ])
}

#[cfg(test)]
mod tests {
    use crate::ops::testutil::{attrs, data, run, run_n, v};
    use crate::value::Value;
    use smelt_ir::{Attr, OpKind};

    fn close(got: &[f32], want: &[f32]) {
        assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-5, "{got:?} vs {want:?}");
        }
    }

    /// The family's kernels return errors, never panic, on odd shapes, dtypes and
    /// attribute values.
    #[test]
    fn family_kernels_never_panic() {
        let vals = [
            v::<f32>(&[], &[1.0]),
            v::<f32>(&[0], &[]),
            v::<f32>(&[1, 1, 3, 3], &[0.5; 9]),
            v::<f32>(&[3, 1, 1, 1], &[1.0, -1.0, 2.0]),
            v::<f32>(&[2, 4, 0], &[]),
            v::<f32>(&[1, 2, 2], &[1.0; 4]),
            v::<i64>(&[2], &[i64::MAX, i64::MIN]),
            v::<i64>(&[1, 1], &[-1]),
            v::<bool>(&[2, 0], &[]),
            v::<half::f16>(&[1, 1, 2], &[half::f16::ONE; 2]),
        ];
        let odd = |x: i64| {
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
                "is_causal",
                "interleaved",
                "training_mode",
            ]
            .iter()
            .fold(attrs(&[]), |a, n| a.with(n, Attr::Int(x)))
            .with("axes", Attr::Ints(vec![x]))
            .with("scale", Attr::Float(-1.0))
            .with("mode", Attr::Str("circular".into()))
            .with("update_rule", Attr::Str("linear".into()))
            .with("activation", Attr::Str("silu".into()))
        };
        let attr_sets = [
            attrs(&[]),
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
            OpKind::BatchNormalization,
        ];
        for op in ops {
            for a in &attr_sets {
                for n in 0..=7usize {
                    for pick in 0..vals.len() {
                        let ins: Vec<Option<&Value>> = (0..n)
                            .map(|slot| {
                                (slot != 3 || pick % 2 == 0)
                                    .then(|| &vals[(pick * 3 + slot) % vals.len()])
                            })
                            .collect();
                        // Ok or Err are both fine; a panic fails the test.
                        let _ = crate::ops::eval(&op, a, &ins, 4);
                    }
                }
            }
        }
    }

    #[test]
    fn attention_4d_by_hand() {
        // One head, two queries, two keys, head size 1, scale 1.
        let q = v::<f32>(&[1, 1, 2, 1], &[0.0, 1.0]);
        let k = v::<f32>(&[1, 1, 2, 1], &[0.0, 1.0]);
        let vv = v::<f32>(&[1, 1, 2, 1], &[10.0, 20.0]);
        let a = attrs(&[("scale", Attr::Float(1.0))]);
        let y = run(OpKind::Attention, &a, &[&q, &k, &vv]);
        // Query 0 scores [0, 0] -> mean 15; query 1 scores [0, 1].
        let p = 1.0 / (1.0 + (-1.0f32).exp());
        close(&data::<f32>(&y).1, &[15.0, 10.0 * (1.0 - p) + 20.0 * p]);
        // Causal: query 0 sees key 0 only.
        let c = attrs(&[("scale", Attr::Float(1.0)), ("is_causal", Attr::Int(1))]);
        let y = run(OpKind::Attention, &c, &[&q, &k, &vv]);
        close(&data::<f32>(&y).1, &[10.0, 10.0 * (1.0 - p) + 20.0 * p]);
        // A boolean mask blocking everything for query 0 gives a zero row.
        let m = v::<bool>(&[2, 2], &[false, false, true, true]);
        let outs = run_n(
            OpKind::Attention,
            &attrs(&[
                ("scale", Attr::Float(1.0)),
                ("qk_matmul_output_mode", Attr::Int(3)),
            ]),
            &[Some(&q), Some(&k), Some(&vv), Some(&m)],
            4,
        );
        close(
            &data::<f32>(&outs[0]).1,
            &[0.0, 10.0 * (1.0 - p) + 20.0 * p],
        );
        close(&data::<f32>(&outs[3]).1, &[0.0, 0.0, 1.0 - p, p]);
        // present_key is K itself without a past.
        assert_eq!(data::<f32>(&outs[1]).1, vec![0.0, 1.0]);
    }

    #[test]
    fn attention_3d_gqa_and_past() {
        // Two query heads share one KV head; 3-D inputs with head size 1.
        let q = v::<f32>(&[1, 1, 2], &[1.0, -1.0]);
        let k = v::<f32>(&[1, 1, 1], &[1.0]);
        let vv = v::<f32>(&[1, 1, 1], &[3.0]);
        let pk = v::<f32>(&[1, 1, 1, 1], &[0.0]);
        let pv = v::<f32>(&[1, 1, 1, 1], &[1.0]);
        let a = attrs(&[
            ("q_num_heads", Attr::Int(2)),
            ("kv_num_heads", Attr::Int(1)),
            ("scale", Attr::Float(1.0)),
        ]);
        let outs = run_n(
            OpKind::Attention,
            &a,
            &[Some(&q), Some(&k), Some(&vv), None, Some(&pk), Some(&pv)],
            3,
        );
        // Keys [0 (past), 1]; head 0 scores [0, 1], head 1 scores [0, -1].
        let p = 1.0 / (1.0 + (-1.0f32).exp());
        let (shape, y) = data::<f32>(&outs[0]);
        assert_eq!(shape, vec![1, 1, 2]);
        close(&y, &[(1.0 - p) + 3.0 * p, p + 3.0 * (1.0 - p)]);
        assert_eq!(data::<f32>(&outs[1]), (vec![1, 1, 2, 1], vec![0.0, 1.0]));
        assert_eq!(data::<f32>(&outs[2]).1, vec![1.0, 3.0]);
    }

    #[test]
    fn attention_padding_window_and_errors() {
        let q = v::<f32>(&[1, 1, 1, 1], &[0.0]);
        let k = v::<f32>(&[1, 1, 3, 1], &[0.0, 0.0, 0.0]);
        let vv = v::<f32>(&[1, 1, 3, 1], &[1.0, 2.0, 30.0]);
        // Only the first two keys are valid.
        let n = v::<i64>(&[1], &[2]);
        let outs = run_n(
            OpKind::Attention,
            &attrs(&[]),
            &[Some(&q), Some(&k), Some(&vv), None, None, None, Some(&n)],
            1,
        );
        close(&data::<f32>(&outs[0]).1, &[1.5]);
        // A window of one key to the left of query 0 at offset 0 sees key 0 only.
        let w = attrs(&[
            ("left_window_size", Attr::Int(0)),
            ("right_window_size", Attr::Int(0)),
        ]);
        close(
            &data::<f32>(&run(OpKind::Attention, &w, &[&q, &k, &vv])).1,
            &[1.0],
        );
        // A float mask shorter than the keys: missing keys are masked.
        let m = v::<f32>(&[1, 2], &[0.0, 0.0]);
        close(
            &data::<f32>(&run(OpKind::Attention, &attrs(&[]), &[&q, &k, &vv, &m])).1,
            &[1.5],
        );
        // Extreme lengths mask everything instead of overflowing.
        let huge = v::<i64>(&[1], &[i64::MIN]);
        let outs = run_n(
            OpKind::Attention,
            &attrs(&[("is_causal", Attr::Int(1))]),
            &[Some(&q), Some(&k), Some(&vv), None, None, None, Some(&huge)],
            1,
        );
        close(&data::<f32>(&outs[0]).1, &[0.0]);
        let bad = v::<f32>(&[1, 1, 3, 2], &[0.0; 6]);
        let e = crate::ops::testutil::fails(OpKind::Attention, &attrs(&[]), &[&q, &bad, &vv]);
        assert!(e.contains("head size"), "{e}");
        let q3 = v::<f32>(&[1, 1, 3], &[0.0; 3]);
        let e = crate::ops::testutil::fails(
            OpKind::Attention,
            &attrs(&[("q_num_heads", Attr::Int(2))]),
            &[&q3, &q3, &q3],
        );
        assert!(e.contains("q_num_heads"), "{e}");
    }

    #[test]
    fn rotary_halves_and_interleaved() {
        // One head of size 4, rotation by 90 degrees (cos 0, sin 1) at position 1.
        let x = v::<f32>(&[1, 1, 1, 4], &[1.0, 2.0, 3.0, 4.0]);
        let cos = v::<f32>(&[2, 2], &[1.0, 1.0, 0.0, 0.0]);
        let sin = v::<f32>(&[2, 2], &[0.0, 0.0, 1.0, 1.0]);
        let pos = v::<i64>(&[1, 1], &[1]);
        let y = run(
            OpKind::RotaryEmbedding,
            &attrs(&[]),
            &[&x, &cos, &sin, &pos],
        );
        // Halves: (1, 3) and (2, 4) rotate to (-3, 1) and (-4, 2).
        close(&data::<f32>(&y).1, &[-3.0, -4.0, 1.0, 2.0]);
        let i = attrs(&[("interleaved", Attr::Int(1))]);
        let y = run(OpKind::RotaryEmbedding, &i, &[&x, &cos, &sin, &pos]);
        close(&data::<f32>(&y).1, &[-2.0, 1.0, -4.0, 3.0]);
        // Partial rotation of the first two features only, 3-D input.
        let x3 = v::<f32>(&[1, 1, 4], &[1.0, 2.0, 3.0, 4.0]);
        let c1 = v::<f32>(&[2, 1], &[1.0, 0.0]);
        let s1 = v::<f32>(&[2, 1], &[0.0, 1.0]);
        let p = attrs(&[
            ("num_heads", Attr::Int(1)),
            ("rotary_embedding_dim", Attr::Int(2)),
        ]);
        let y = run(OpKind::RotaryEmbedding, &p, &[&x3, &c1, &s1, &pos]);
        close(&data::<f32>(&y).1, &[-2.0, 1.0, 3.0, 4.0]);
        let far = v::<i64>(&[1, 1], &[5]);
        let e = crate::ops::testutil::fails(
            OpKind::RotaryEmbedding,
            &attrs(&[]),
            &[&x, &cos, &sin, &far],
        );
        assert!(e.contains("out of range"), "{e}");
    }

    #[test]
    fn linear_attention_rules() {
        // One head, d_k = d_v = 1, two steps, scale 1.
        let q = v::<f32>(&[1, 2, 1], &[1.0, 2.0]);
        let k = v::<f32>(&[1, 2, 1], &[1.0, 1.0]);
        let val = v::<f32>(&[1, 2, 1], &[3.0, 5.0]);
        let heads = [
            ("q_num_heads", Attr::Int(1)),
            ("kv_num_heads", Attr::Int(1)),
            ("scale", Attr::Float(1.0)),
        ];
        let lin = attrs(&[
            heads[0].clone(),
            heads[1].clone(),
            heads[2].clone(),
            ("update_rule", Attr::Str("linear".into())),
        ]);
        let outs = run_n(
            OpKind::LinearAttention,
            &lin,
            &[Some(&q), Some(&k), Some(&val)],
            2,
        );
        // S = 3, then 8; outputs 1*3 and 2*8.
        close(&data::<f32>(&outs[0]).1, &[3.0, 16.0]);
        close(&data::<f32>(&outs[1]).1, &[8.0]);
        // Gated with decay ln(0.5): S = 3, then 1.5 + 5.
        let g = v::<f32>(&[1, 2, 1], &[0.0, 0.5f32.ln()]);
        let gated = attrs(&[
            heads[0].clone(),
            heads[1].clone(),
            heads[2].clone(),
            ("update_rule", Attr::Str("gated".into())),
        ]);
        let outs = run_n(
            OpKind::LinearAttention,
            &gated,
            &[Some(&q), Some(&k), Some(&val), None, Some(&g)],
            2,
        );
        close(&data::<f32>(&outs[0]).1, &[3.0, 13.0]);
        // Delta with beta 1: S = 3, then 3 + (5 - 3) = 5.
        let be = v::<f32>(&[1, 2, 1], &[1.0, 1.0]);
        let d = attrs(&[
            heads[0].clone(),
            heads[1].clone(),
            heads[2].clone(),
            ("update_rule", Attr::Str("delta".into())),
        ]);
        let outs = run_n(
            OpKind::LinearAttention,
            &d,
            &[Some(&q), Some(&k), Some(&val), None, None, Some(&be)],
            2,
        );
        close(&data::<f32>(&outs[0]).1, &[3.0, 10.0]);
        // The default rule (gated_delta) needs decay and beta.
        let e =
            crate::ops::testutil::fails(OpKind::LinearAttention, &attrs(&heads), &[&q, &k, &val]);
        assert!(e.contains("requires the decay"), "{e}");
    }

    #[test]
    fn causal_conv_with_state_by_hand() {
        // One channel, kernel [1, 2]: y[p] = x[p-1] + 2 x[p], the past supplying x[-1].
        let x = v::<f32>(&[1, 1, 3], &[1.0, 2.0, 3.0]);
        let w = v::<f32>(&[1, 1, 2], &[1.0, 2.0]);
        let past = v::<f32>(&[1, 1, 1], &[10.0]);
        let outs = run_n(
            OpKind::CausalConvWithState,
            &attrs(&[]),
            &[Some(&x), Some(&w), None, Some(&past)],
            2,
        );
        close(&data::<f32>(&outs[0]).1, &[12.0, 5.0, 8.0]);
        assert_eq!(data::<f32>(&outs[1]), (vec![1, 1, 1], vec![3.0]));
        let silu = attrs(&[("activation", Attr::Str("silu".into()))]);
        let outs = run_n(OpKind::CausalConvWithState, &silu, &[Some(&x), Some(&w)], 2);
        let s = |y: f32| y / (1.0 + (-y).exp());
        close(&data::<f32>(&outs[0]).1, &[s(2.0), s(5.0), s(8.0)]);
        let bad = v::<f32>(&[2, 1, 2], &[1.0; 4]);
        let e = crate::ops::testutil::fails(OpKind::CausalConvWithState, &attrs(&[]), &[&x, &bad]);
        assert!(e.contains("weight"), "{e}");
    }

    #[test]
    fn tensor_scatter_linear_and_circular() {
        // Cache [batch 2, seq 3, 1]; write one step at per-batch indices.
        let cache = v::<i32>(&[2, 3, 1], &[0, 0, 0, 0, 0, 0]);
        let upd = v::<i32>(&[2, 1, 1], &[7, 8]);
        let idx = v::<i64>(&[2], &[1, 2]);
        let y = run(OpKind::TensorScatter, &attrs(&[]), &[&cache, &upd, &idx]);
        assert_eq!(data::<i32>(&y).1, vec![0, 7, 0, 0, 0, 8]);
        let upd2 = v::<i32>(&[2, 2, 1], &[1, 2, 3, 4]);
        let c = attrs(&[("mode", Attr::Str("circular".into()))]);
        let y = run(OpKind::TensorScatter, &c, &[&cache, &upd2, &idx]);
        assert_eq!(data::<i32>(&y).1, vec![0, 1, 2, 4, 0, 3]);
        let e =
            crate::ops::testutil::fails(OpKind::TensorScatter, &attrs(&[]), &[&cache, &upd2, &idx]);
        assert!(e.contains("out of range"), "{e}");
    }
}
