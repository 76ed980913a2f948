//! Recurrent layers: RNN, GRU and LSTM (both layouts, forward, reverse and
//! bidirectional, sequence lengths, initial states, peepholes, clipping and custom
//! activations). Computed in f64, one time step and one batch row at a time.

use smelt_ir::{Attrs, DType, OpKind};

use super::{input, opt_input};
use crate::error::{bail, OpResult};
use crate::value::{array_from, Value};

/// An activation function of a recurrent gate with its alpha and beta.
#[derive(Clone, Copy, Debug)]
enum Act {
    Relu,
    Tanh,
    Sigmoid,
    Affine(f64, f64),
    LeakyRelu(f64),
    ThresholdedRelu(f64),
    ScaledTanh(f64, f64),
    HardSigmoid(f64, f64),
    Elu(f64),
    Softsign,
    Softplus,
}

impl Act {
    fn apply(self, x: f64) -> f64 {
        match self {
            Act::Relu => x.max(0.0),
            Act::Tanh => x.tanh(),
            Act::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Act::Affine(a, b) => a * x + b,
            Act::LeakyRelu(a) => {
                if x < 0.0 {
                    a * x
                } else {
                    x
                }
            }
            Act::ThresholdedRelu(a) => {
                if x > a {
                    x
                } else {
                    0.0
                }
            }
            Act::ScaledTanh(a, b) => a * (b * x).tanh(),
            Act::HardSigmoid(a, b) => (a * x + b).clamp(0.0, 1.0),
            Act::Elu(a) => {
                if x < 0.0 {
                    a * (x.exp() - 1.0)
                } else {
                    x
                }
            }
            Act::Softsign => x / (1.0 + x.abs()),
            Act::Softplus => (1.0 + x.exp()).ln(),
        }
    }
}

/// The activations of every direction: `per_dir` functions each, from the attributes
/// or the op's defaults. Alphas and betas are consumed in order by the functions that
/// take them.
fn activations(attrs: &Attrs, defaults: &[&str], dirs: usize) -> OpResult<Vec<Act>> {
    let names: Vec<String> = match attrs.get("activations") {
        Some(smelt_ir::Attr::Strs(v)) => v.clone(),
        Some(other) => bail!("activations must be a list of strings, got {other:?}"),
        None => (0..dirs)
            .flat_map(|_| defaults.iter().map(|s| s.to_string()))
            .collect(),
    };
    if names.len() != defaults.len() * dirs {
        bail!(
            "activations {names:?} must list {} functions ({} per direction)",
            defaults.len() * dirs,
            defaults.len()
        );
    }
    let alphas = attrs.floats("activation_alpha").unwrap_or(&[]);
    let betas = attrs.floats("activation_beta").unwrap_or(&[]);
    let (mut ai, mut bi) = (0, 0);
    let mut alpha = |d: f64| {
        let v = alphas.get(ai).map_or(d, |&v| f64::from(v));
        ai += 1;
        v
    };
    let mut beta = |d: f64| {
        let v = betas.get(bi).map_or(d, |&v| f64::from(v));
        bi += 1;
        v
    };
    names
        .iter()
        .map(|n| {
            Ok(match n.to_ascii_lowercase().as_str() {
                "relu" => Act::Relu,
                "tanh" => Act::Tanh,
                "sigmoid" => Act::Sigmoid,
                "affine" => Act::Affine(alpha(1.0), beta(0.0)),
                "leakyrelu" => Act::LeakyRelu(alpha(0.01)),
                "thresholdedrelu" => Act::ThresholdedRelu(alpha(1.0)),
                "scaledtanh" => Act::ScaledTanh(alpha(1.0), beta(1.0)),
                "hardsigmoid" => Act::HardSigmoid(alpha(0.2), beta(0.5)),
                "elu" => Act::Elu(alpha(1.0)),
                "softsign" => Act::Softsign,
                "softplus" => Act::Softplus,
                _ => bail!("unknown activation function {n:?}"),
            })
        })
        .collect()
}

#[derive(Clone, Copy, PartialEq)]
enum Cell {
    Rnn,
    Gru,
    Lstm,
}

/// `y = W · x` for a `[rows, cols]` row-major block of `w` starting at row `row0`.
fn matvec(w: &[f64], cols: usize, row0: usize, rows: usize, x: &[f64], y: &mut [f64]) {
    for (r, out) in y.iter_mut().enumerate().take(rows) {
        let wr = &w[(row0 + r) * cols..][..cols];
        *out = wr.iter().zip(x).map(|(a, b)| a * b).sum();
    }
}

/// A checked float input of exactly `shape`, as f64.
fn param(v: &Value, what: &str, shape: &[usize]) -> OpResult<Vec<f64>> {
    if v.shape() != shape {
        bail!("{what} has shape {:?}, expected {shape:?}", v.shape());
    }
    v.to_f64_vec(what)
}

/// Evaluate RNN, GRU or LSTM; returns Y, Y_h and (LSTM) Y_c.
pub(crate) fn eval(op: &OpKind, attrs: &Attrs, inputs: &[Option<&Value>]) -> OpResult<Vec<Value>> {
    let cell = match op {
        OpKind::Rnn => Cell::Rnn,
        OpKind::Gru => Cell::Gru,
        OpKind::Lstm => Cell::Lstm,
        other => bail!("{other} is not a recurrent op"),
    };
    let gates = match cell {
        Cell::Rnn => 1,
        Cell::Gru => 3,
        Cell::Lstm => 4,
    };
    let x = input(inputs, 0, "X")?;
    let dtype = x.dtype();
    if !matches!(dtype, DType::F32 | DType::F64) {
        bail!("X must be a float tensor, got {dtype}");
    }
    let layout = attrs.int_or("layout", 0);
    if layout != 0 && layout != 1 {
        bail!("layout must be 0 or 1, got {layout}");
    }
    let batch_first = layout == 1;
    let xs = x.shape().to_vec();
    if xs.len() != 3 {
        bail!("X must be 3-D, got shape {xs:?}");
    }
    let (seq, batch, isz) = if batch_first {
        (xs[1], xs[0], xs[2])
    } else {
        (xs[0], xs[1], xs[2])
    };
    let direction = attrs.str("direction").unwrap_or("forward");
    let dirs = match direction {
        "forward" | "reverse" => 1,
        "bidirectional" => 2,
        other => bail!("direction {other:?} is not forward, reverse or bidirectional"),
    };
    let h = match attrs.int("hidden_size") {
        Some(v) if v > 0 => v as usize,
        Some(v) => bail!("hidden_size must be positive, got {v}"),
        None => match input(inputs, 2, "R")?.shape() {
            [_, _, hh] => *hh,
            s => bail!("R must be 3-D, got shape {s:?}"),
        },
    };
    let gh = gates * h;
    let w = param(input(inputs, 1, "W")?, "W", &[dirs, gh, isz])?;
    let r = param(input(inputs, 2, "R")?, "R", &[dirs, gh, h])?;
    let b = match opt_input(inputs, 3) {
        Some(v) => param(v, "B", &[dirs, 2 * gh])?,
        None => vec![0.0; dirs * 2 * gh],
    };
    let lens: Vec<usize> = match opt_input(inputs, 4) {
        Some(v) => {
            if v.shape() != [batch] {
                bail!(
                    "sequence_lens has shape {:?}, expected [{batch}]",
                    v.shape()
                );
            }
            v.to_i64_vec("sequence_lens")?
                .into_iter()
                .map(|l| {
                    usize::try_from(l)
                        .ok()
                        .filter(|&l| l <= seq)
                        .ok_or_else(|| {
                            crate::error::OpError::new(format!(
                                "sequence length {l} is outside [0, {seq}]"
                            ))
                        })
                })
                .collect::<OpResult<_>>()?
        }
        None => vec![seq; batch],
    };
    // Initial states, stored [dir, batch, h] whatever the layout.
    let state = |slot: usize, what: &str| -> OpResult<Vec<f64>> {
        match opt_input(inputs, slot) {
            None => Ok(vec![0.0; dirs * batch * h]),
            Some(v) => {
                let shape = if batch_first {
                    [batch, dirs, h]
                } else {
                    [dirs, batch, h]
                };
                let d = param(v, what, &shape)?;
                if !batch_first {
                    return Ok(d);
                }
                let mut out = vec![0.0; d.len()];
                for bb in 0..batch {
                    for dd in 0..dirs {
                        out[(dd * batch + bb) * h..][..h]
                            .copy_from_slice(&d[(bb * dirs + dd) * h..][..h]);
                    }
                }
                Ok(out)
            }
        }
    };
    let h0 = state(5, "initial_h")?;
    let (c0, p) = if cell == Cell::Lstm {
        let p = match opt_input(inputs, 7) {
            Some(v) => param(v, "P", &[dirs, 3 * h])?,
            None => vec![0.0; dirs * 3 * h],
        };
        (state(6, "initial_c")?, p)
    } else {
        (vec![], vec![])
    };
    let defaults: &[&str] = match cell {
        Cell::Rnn => &["Tanh"],
        Cell::Gru => &["Sigmoid", "Tanh"],
        Cell::Lstm => &["Sigmoid", "Tanh", "Tanh"],
    };
    let acts = activations(attrs, defaults, dirs)?;
    let clip = attrs.float("clip").map(f64::from);
    let clipped = |v: f64| match clip {
        Some(c) => v.clamp(-c, c),
        None => v,
    };
    let lbr = attrs.int_or("linear_before_reset", 0) != 0;
    let input_forget = attrs.int_or("input_forget", 0) != 0;
    let xv = x.to_f64_vec("X")?;
    let x_at = |t: usize, bb: usize| -> &[f64] {
        let row = if batch_first {
            bb * seq + t
        } else {
            t * batch + bb
        };
        &xv[row * isz..][..isz]
    };
    // Y stored [seq, dir, batch, h]; Y_h and Y_c [dir, batch, h].
    let mut y = vec![0.0; seq * dirs * batch * h];
    let mut yh = vec![0.0; dirs * batch * h];
    let mut yc = vec![0.0; dirs * batch * h];
    let mut xg = vec![0.0; gh];
    let mut hg = vec![0.0; gh];
    for d in 0..dirs {
        let reverse = direction == "reverse" || d == 1;
        let a = &acts[d * defaults.len()..][..defaults.len()];
        let wd = &w[d * gh * isz..][..gh * isz];
        let rd = &r[d * gh * h..][..gh * h];
        let (wb, rb) = (&b[d * 2 * gh..][..gh], &b[d * 2 * gh + gh..][..gh]);
        for bb in 0..batch {
            let mut ht = h0[(d * batch + bb) * h..][..h].to_vec();
            let mut ct = if cell == Cell::Lstm {
                c0[(d * batch + bb) * h..][..h].to_vec()
            } else {
                vec![]
            };
            let len = lens[bb];
            for step in 0..len {
                let t = if reverse { len - 1 - step } else { step };
                matvec(wd, isz, 0, gh, x_at(t, bb), &mut xg);
                matvec(rd, h, 0, gh, &ht, &mut hg);
                let mut next = vec![0.0; h];
                match cell {
                    Cell::Rnn => {
                        for j in 0..h {
                            next[j] = a[0].apply(clipped(xg[j] + hg[j] + wb[j] + rb[j]));
                        }
                    }
                    Cell::Gru => {
                        // Gate blocks: z, r, h.
                        let mut rh = vec![0.0; h];
                        let mut rt = vec![0.0; h];
                        for j in 0..h {
                            rt[j] =
                                a[0].apply(clipped(xg[h + j] + hg[h + j] + wb[h + j] + rb[h + j]));
                            rh[j] = rt[j] * ht[j];
                        }
                        let mut rlin = vec![0.0; h];
                        if !lbr {
                            matvec(rd, h, 2 * h, h, &rh, &mut rlin);
                        }
                        for j in 0..h {
                            let z = a[0].apply(clipped(xg[j] + hg[j] + wb[j] + rb[j]));
                            let pre = if lbr {
                                xg[2 * h + j]
                                    + rt[j] * (hg[2 * h + j] + rb[2 * h + j])
                                    + wb[2 * h + j]
                            } else {
                                xg[2 * h + j] + rlin[j] + rb[2 * h + j] + wb[2 * h + j]
                            };
                            let cand = a[1].apply(clipped(pre));
                            next[j] = (1.0 - z) * cand + z * ht[j];
                        }
                    }
                    Cell::Lstm => {
                        // Gate blocks: i, o, f, c; peepholes: i, o, f.
                        let pd = &p[d * 3 * h..][..3 * h];
                        let pre = |g: usize, j: usize| {
                            xg[g * h + j] + hg[g * h + j] + wb[g * h + j] + rb[g * h + j]
                        };
                        for j in 0..h {
                            let i = a[0].apply(clipped(pre(0, j) + pd[j] * ct[j]));
                            let f = if input_forget {
                                1.0 - i
                            } else {
                                a[0].apply(clipped(pre(2, j) + pd[2 * h + j] * ct[j]))
                            };
                            let c = a[1].apply(clipped(pre(3, j)));
                            let cn = f * ct[j] + i * c;
                            let o = a[0].apply(clipped(pre(1, j) + pd[h + j] * cn));
                            next[j] = o * a[2].apply(cn);
                            ct[j] = cn;
                        }
                    }
                }
                ht = next;
                y[((t * dirs + d) * batch + bb) * h..][..h].copy_from_slice(&ht);
            }
            yh[(d * batch + bb) * h..][..h].copy_from_slice(&ht);
            if cell == Cell::Lstm {
                yc[(d * batch + bb) * h..][..h].copy_from_slice(&ct);
            }
        }
    }
    let make = |shape: &[usize], data: Vec<f64>| -> OpResult<Value> {
        match dtype {
            DType::F64 => Ok(Value::F64(array_from(shape, data)?)),
            _ => Ok(Value::F32(array_from(
                shape,
                data.into_iter().map(|v| v as f32).collect(),
            )?)),
        }
    };
    let (y_shape, y) = if batch_first {
        // [seq, dir, batch, h] -> [batch, seq, dir, h]
        let mut out = vec![0.0; y.len()];
        for t in 0..seq {
            for d in 0..dirs {
                for bb in 0..batch {
                    out[((bb * seq + t) * dirs + d) * h..][..h]
                        .copy_from_slice(&y[((t * dirs + d) * batch + bb) * h..][..h]);
                }
            }
        }
        (vec![batch, seq, dirs, h], out)
    } else {
        (vec![seq, dirs, batch, h], y)
    };
    let state_out = |s: Vec<f64>| -> OpResult<Value> {
        if !batch_first {
            return make(&[dirs, batch, h], s);
        }
        let mut out = vec![0.0; s.len()];
        for d in 0..dirs {
            for bb in 0..batch {
                out[(bb * dirs + d) * h..][..h].copy_from_slice(&s[(d * batch + bb) * h..][..h]);
            }
        }
        make(&[batch, dirs, h], out)
    };
    let mut outs = vec![make(&y_shape, y)?, state_out(yh)?];
    if cell == Cell::Lstm {
        outs.push(state_out(yc)?);
    }
    Ok(outs)
}

#[cfg(test)]
mod tests {
    use crate::ops::testutil::{attrs, data, run_n, v};
    use smelt_ir::{Attr, OpKind};

    #[test]
    fn rnn_one_step_by_hand() {
        // seq 2, batch 1, input 1, hidden 1, Relu: h1 = relu(2*1) = 2, h2 = relu(2*3 + 0.5*2) = 7.
        let x = v(&[2, 1, 1], &[1.0f32, 3.0]);
        let w = v(&[1, 1, 1], &[2.0f32]);
        let r = v(&[1, 1, 1], &[0.5f32]);
        let a = attrs(&[
            ("hidden_size", Attr::Int(1)),
            ("activations", Attr::Strs(vec!["Relu".into()])),
        ]);
        let out = run_n(OpKind::Rnn, &a, &[Some(&x), Some(&w), Some(&r)], 2);
        assert_eq!(data::<f32>(&out[0]), (vec![2, 1, 1, 1], vec![2.0, 7.0]));
        assert_eq!(data::<f32>(&out[1]), (vec![1, 1, 1], vec![7.0]));
        // Reverse: h1 = relu(6) = 6 at t = 1, then relu(2 + 3) = 5 at t = 0.
        let rev = a.with("direction", Attr::Str("reverse".into()));
        let out = run_n(OpKind::Rnn, &rev, &[Some(&x), Some(&w), Some(&r)], 2);
        assert_eq!(data::<f32>(&out[0]).1, vec![5.0, 6.0]);
    }

    #[test]
    fn lstm_and_gru_zero_weights() {
        let x = v(&[1, 1, 1], &[1.0f32]);
        let a = attrs(&[("hidden_size", Attr::Int(1))]);
        // All-zero weights: i = o = f = 0.5, c~ = 0, so C = 0 and H = 0.
        let w = v(&[1, 4, 1], &[0.0f32; 4]);
        let r = v(&[1, 4, 1], &[0.0f32; 4]);
        let out = run_n(OpKind::Lstm, &a, &[Some(&x), Some(&w), Some(&r)], 3);
        assert_eq!(data::<f32>(&out[1]).1, vec![0.0]);
        assert_eq!(out.len(), 3);
        // GRU with zero weights and initial state 2: z = 0.5, h~ = 0 -> H = 1.
        let w = v(&[1, 3, 1], &[0.0f32; 3]);
        let r = v(&[1, 3, 1], &[0.0f32; 3]);
        let h0 = v(&[1, 1, 1], &[2.0f32]);
        let out = run_n(
            OpKind::Gru,
            &a,
            &[Some(&x), Some(&w), Some(&r), None, None, Some(&h0)],
            2,
        );
        assert_eq!(data::<f32>(&out[1]).1, vec![1.0]);
        let bad = v(&[1, 2, 1], &[0.0f32; 2]);
        assert!(
            super::super::eval(&OpKind::Gru, &a, &[Some(&x), Some(&bad), Some(&r)], 2)
                .unwrap_err()
                .0
                .contains("W has shape")
        );
    }
}
