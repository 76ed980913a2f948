//! Ranges of activations from calibration data: for chosen values, the clipping range
//! of each block of the last axis, by one of three methods.
//!
//! - `max`: the largest |x| the block reaches over all positions of all samples;
//! - `percentile`: the 99.99th percentile of |x| in the block;
//! - `mse`: the clipping value `c` with the least estimated squared error of int8
//!   quantization, `Σ_x (x − c)²` over clipped values plus `(c/127)²/12` (uniform
//!   rounding noise) per unclipped one, searched over `c = r · max` for r in
//!   0.30, 0.31, …, 1.00.
//!
//! `max` needs one run of the model per sample; the other two a second run that fills a
//! 2048-bin histogram of |x| per block over `[0, max]`.

use std::collections::HashMap;

use smelt_ir::pass::require_calibration;
use smelt_ir::{Graph, IrResult, PassContext, Tensor, ValueId};

/// How a block's clipping range is chosen (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RangeMethod {
    /// The largest magnitude seen.
    Max,
    /// This percentile (0–100) of the magnitudes.
    Percentile(f64),
    /// Least estimated squared error of int8 quantization.
    Mse,
}

impl RangeMethod {
    /// The method named `s` (`max`, `percentile`, `mse`).
    pub fn parse(s: &str) -> Option<RangeMethod> {
        match s {
            "max" | "minmax" => Some(RangeMethod::Max),
            "percentile" => Some(RangeMethod::Percentile(99.99)),
            "mse" => Some(RangeMethod::Mse),
            _ => None,
        }
    }
}

/// Bins of the |x| histogram per block.
const BINS: usize = 2048;

/// What to observe of one value: its last-axis width and the block size along it.
#[derive(Debug, Clone, Copy)]
pub struct Blocks {
    /// Elements of the last axis.
    pub width: usize,
    /// Elements per block (the last block may be shorter).
    pub block: usize,
}

impl Blocks {
    /// Blocks along the last axis.
    pub fn count(&self) -> usize {
        self.width.div_ceil(self.block.max(1))
    }
}

struct Stats {
    blocks: Blocks,
    amax: Vec<f32>,
    hist: Vec<Vec<u64>>,
}

impl Stats {
    fn observe_max(&mut self, t: &Tensor) {
        let Ok(v) = t.to_vec::<f32>() else { return };
        let b = self.blocks.block.max(1);
        for row in v.chunks(self.blocks.width.max(1)) {
            for (k, x) in row.iter().enumerate() {
                if x.is_finite() {
                    self.amax[k / b] = self.amax[k / b].max(x.abs());
                }
            }
        }
    }

    fn observe_hist(&mut self, t: &Tensor) {
        let Ok(v) = t.to_vec::<f32>() else { return };
        let b = self.blocks.block.max(1);
        for row in v.chunks(self.blocks.width.max(1)) {
            for (k, x) in row.iter().enumerate() {
                let m = self.amax[k / b];
                if x.is_finite() && m > 0.0 {
                    let bin = ((x.abs() / m) * BINS as f32) as usize;
                    self.hist[k / b][bin.min(BINS - 1)] += 1;
                }
            }
        }
    }

    /// The clipping value of block `i` by `method`.
    fn range(&self, i: usize, method: RangeMethod) -> f32 {
        let m = self.amax.get(i).copied().unwrap_or(0.0);
        let Some(h) = self.hist.get(i) else {
            return m; // `max`: no histogram was taken.
        };
        let total: u64 = h.iter().sum();
        if m <= 0.0 || total == 0 {
            return m;
        }
        let width = m / BINS as f32;
        match method {
            RangeMethod::Max => m,
            RangeMethod::Percentile(p) => {
                let want = (p / 100.0 * total as f64).ceil() as u64;
                let mut seen = 0;
                for (bin, &n) in h.iter().enumerate() {
                    seen += n;
                    if seen >= want {
                        return (bin + 1) as f32 * width;
                    }
                }
                m
            }
            RangeMethod::Mse => {
                let mut best = (f64::INFINITY, m);
                for r in 30..=100 {
                    let c = m * r as f32 / 100.0;
                    let noise = f64::from(c / 127.0).powi(2) / 12.0;
                    let mut err = 0.0;
                    for (bin, &n) in h.iter().enumerate() {
                        if n == 0 {
                            continue;
                        }
                        let x = (bin as f32 + 0.5) * width;
                        err += n as f64
                            * if x > c {
                                f64::from(x - c).powi(2)
                            } else {
                                noise
                            };
                    }
                    if err < best.0 {
                        best = (err, c);
                    }
                }
                best.1
            }
        }
    }
}

/// The clipping range of every block of every value in `targets`, observed by running
/// the calibration samples of `cx` through the graph; `pass` names the caller in the
/// error when there are no samples.
pub fn observe_ranges(
    g: &Graph,
    cx: &PassContext,
    pass: &str,
    targets: &HashMap<ValueId, Blocks>,
    method: RangeMethod,
) -> IrResult<HashMap<ValueId, Vec<f32>>> {
    if targets.is_empty() {
        return Ok(HashMap::new());
    }
    let (samples, evaluator) = require_calibration(cx, pass)?;
    let mut stats: HashMap<ValueId, Stats> = targets
        .iter()
        .map(|(&v, &blocks)| {
            let n = blocks.count();
            (
                v,
                Stats {
                    blocks,
                    amax: vec![0.0; n],
                    hist: vec![],
                },
            )
        })
        .collect();
    for sample in samples {
        evaluator.run(g, sample, &mut |v, t| {
            if let Some(s) = stats.get_mut(&v) {
                s.observe_max(t);
            }
        })?;
    }
    if method != RangeMethod::Max {
        for s in stats.values_mut() {
            s.hist = vec![vec![0; BINS]; s.blocks.count()];
        }
        for sample in samples {
            evaluator.run(g, sample, &mut |v, t| {
                if let Some(s) = stats.get_mut(&v) {
                    s.observe_hist(t);
                }
            })?;
        }
    }
    Ok(stats
        .into_iter()
        .map(|(v, s)| {
            let ranges = (0..s.blocks.count()).map(|i| s.range(i, method)).collect();
            (v, ranges)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats_of(values: &[f32]) -> Stats {
        let blocks = Blocks {
            width: values.len(),
            block: values.len(),
        };
        let mut s = Stats {
            blocks,
            amax: vec![0.0],
            hist: vec![vec![0; BINS]],
        };
        let t = Tensor::from_vec(vec![values.len()], values.to_vec()).unwrap();
        s.observe_max(&t);
        s.observe_hist(&t);
        s
    }

    #[test]
    fn max_is_the_largest_magnitude() {
        let s = stats_of(&[0.5, -3.0, 2.0, f32::NAN]);
        assert_eq!(s.range(0, RangeMethod::Max), 3.0);
    }

    #[test]
    fn percentile_ignores_a_rare_outlier() {
        // 9999 values in [-1, 1] and one at 100.
        let mut v: Vec<f32> = (0..9999)
            .map(|i| ((i % 200) as f32 - 100.0) / 100.0)
            .collect();
        v.push(100.0);
        let s = stats_of(&v);
        let p = s.range(0, RangeMethod::Percentile(99.9));
        assert!(p <= 1.1, "{p}");
        assert_eq!(s.range(0, RangeMethod::Max), 100.0);
    }

    #[test]
    fn mse_clips_a_long_tail() {
        // Exponentially distributed magnitudes: the last few are worth clipping.
        let n = 10_000;
        let v: Vec<f32> = (0..n)
            .map(|i| -((i as f32 + 0.5) / n as f32).ln())
            .collect();
        let s = stats_of(&v);
        let (max, mse) = (s.range(0, RangeMethod::Max), s.range(0, RangeMethod::Mse));
        assert!(mse < 0.97 * max && mse > 0.5 * max, "{mse} vs {max}");
    }

    #[test]
    fn mse_keeps_the_full_range_of_a_uniform_block() {
        let v: Vec<f32> = (0..1000).map(|i| i as f32 / 1000.0).collect();
        let s = stats_of(&v);
        let m = s.range(0, RangeMethod::Mse);
        assert!(m > 0.95, "{m}");
    }
}
