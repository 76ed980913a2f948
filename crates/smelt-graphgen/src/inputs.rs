//! Inputs for a graph, running the reference interpreter, and comparing outputs.

use smelt_ir::{DType, Dim, Graph, Tensor};

use crate::rng::Rng;

/// Deterministic inputs for every graph input, by name, in the graph's order.
///
/// f32 inputs are uniform in `[-2, 2)` (the range the generator's value bounds assume);
/// bool inputs are random; integer inputs are uniform in `0..3`. A symbolic dim whose
/// name ends in digits (`?n3`) has that size, other unknown dims count as 1. Inputs of other dtypes get zeros.
pub fn random_inputs(g: &Graph, seed: u64) -> Vec<(String, Tensor)> {
    let mut rng = Rng::new(seed ^ 0x1b87_3593_cc9e_2d51);
    g.inputs()
        .iter()
        .map(|&v| {
            let data = g.value(v);
            let shape: Vec<usize> = data
                .ty
                .dims()
                .map(|ds| {
                    ds.iter()
                        .map(|d| match d {
                            Dim::Known(k) => *k as usize,
                            // `?n3` (from `Config::symbolic_percent`) is 3.
                            Dim::Sym(s) => s
                                .trim_start_matches(|c: char| !c.is_ascii_digit())
                                .parse()
                                .unwrap_or(1),
                            _ => 1,
                        })
                        .collect()
                })
                .unwrap_or_default();
            let n: usize = shape.iter().product();
            let t = match data.ty.dtype {
                DType::F32 => Tensor::from_vec(
                    shape.clone(),
                    (0..n).map(|_| rng.range(-2.0, 2.0)).collect::<Vec<f32>>(),
                ),
                DType::Bool => Tensor::from_vec(
                    shape.clone(),
                    (0..n).map(|_| rng.below(2) == 1).collect::<Vec<bool>>(),
                ),
                d if d.is_int() => Tensor::from_f64(
                    d,
                    shape.clone(),
                    &(0..n).map(|_| rng.below(3) as f64).collect::<Vec<f64>>(),
                ),
                d => Tensor::from_f64(d, shape.clone(), &vec![0.0; n]),
            };
            // Building a tensor of a known shape from that many elements cannot fail;
            // an empty tensor keeps the caller going if a dtype is exotic.
            let t = t.unwrap_or_else(|_| Tensor::scalar(0f32));
            (data.name.clone(), t)
        })
        .collect()
}

/// Run the reference interpreter on named inputs; the error is the interpreter's
/// message.
pub fn run_interp(g: &Graph, inputs: &[(String, Tensor)]) -> Result<Vec<(String, Tensor)>, String> {
    let named: Vec<(&str, Tensor)> = inputs
        .iter()
        .map(|(n, t)| (n.as_str(), t.clone()))
        .collect();
    smelt_interp::run(g, &named).map_err(|e| e.to_string())
}

/// The largest scaled difference between two sets of outputs, compared in order:
/// `max_i |got_i - want_i| / (1 + max_j |want_j|)` per output (the error relative to
/// the output's magnitude, absolute for outputs near zero), maximised over outputs.
///
/// Different output counts, shapes or dtypes, or a NaN/infinity on one side only, give
/// `f64::INFINITY`. Non-float outputs compare exactly (any difference is infinite).
pub fn max_error(want: &[(String, Tensor)], got: &[(String, Tensor)]) -> f64 {
    if want.len() != got.len() {
        return f64::INFINITY;
    }
    let mut worst = 0.0f64;
    for ((_, w), (_, g)) in want.iter().zip(got) {
        if w.shape() != g.shape() || w.dtype() != g.dtype() {
            return f64::INFINITY;
        }
        let (Ok(wv), Ok(gv)) = (w.to_f64_vec(), g.to_f64_vec()) else {
            return f64::INFINITY;
        };
        let float = w.dtype().is_float();
        let scale = 1.0
            + wv.iter()
                .filter(|x| x.is_finite())
                .fold(0.0f64, |m, x| m.max(x.abs()));
        for (a, b) in wv.iter().zip(&gv) {
            let d = if a.is_nan() && b.is_nan() || a == b {
                0.0
            } else if !a.is_finite() || !b.is_finite() || !float {
                f64::INFINITY
            } else {
                (a - b).abs() / scale
            };
            worst = worst.max(d);
        }
    }
    worst
}
