//! Signal-processing ops: the window generators (HannWindow, HammingWindow,
//! BlackmanWindow), DFT, STFT and MelWeightMatrix.
//!
//! Everything is computed in f64 with direct O(n²) transforms (this is the reference
//! interpreter) and rounded once to the output type.

use std::f64::consts::PI;

use smelt_ir::{Attrs, DType, OpKind};

use super::{checked_len, input, norm_axis, opt_input, via_f32};
use crate::error::{bail, OpResult};
use crate::num::Num;
use crate::value::{array_from, dispatch_float, to_std_vec, typed, Elem, Value};

/// Evaluate one of this module's ops.
pub(crate) fn eval(op: &OpKind, attrs: &Attrs, inputs: &[Option<&Value>]) -> OpResult<Vec<Value>> {
    let one = |v: OpResult<Value>| v.map(|v| vec![v]);
    let all = usize::MAX;
    match op {
        OpKind::HannWindow | OpKind::HammingWindow | OpKind::BlackmanWindow => {
            one(window(op, attrs, inputs))
        }
        OpKind::MelWeightMatrix => one(mel_weight_matrix(attrs, inputs)),
        OpKind::DFT => via_f32(inputs, all, |i| one(dft(attrs, i))),
        OpKind::STFT => via_f32(inputs, all, |i| one(stft(attrs, i))),
        other => bail!("{other} is not a signal-processing op"),
    }
}

/// The single element of a scalar integer input.
fn scalar_int(v: &Value, what: &str) -> OpResult<i64> {
    match v.to_i64_vec(what)?.as_slice() {
        [x] => Ok(*x),
        _ => bail!("{what} must hold one element, has shape {:?}", v.shape()),
    }
}

/// The single element of a scalar numeric input, as f64.
fn scalar_f64(v: &Value, what: &str) -> OpResult<f64> {
    match v.to_f64_vec(what)?.as_slice() {
        [x] => Ok(*x),
        _ => bail!("{what} must hold one element, has shape {:?}", v.shape()),
    }
}

/// f64 values cast to the `output_datatype` attribute's type (default f32).
fn output(data: Vec<f64>, shape: &[usize], attrs: &Attrs) -> OpResult<Value> {
    let dtype = super::cast::dtype_attr(attrs, "output_datatype")?.unwrap_or(DType::F32);
    let v = Value::F64(array_from(shape, data)?);
    super::cast::cast(&v, dtype, false)
}

/// ONNX HannWindow, HammingWindow and BlackmanWindow of length `size`; `periodic`
/// (default 1) divides by N rather than N − 1.
fn window(op: &OpKind, attrs: &Attrs, inputs: &[Option<&Value>]) -> OpResult<Value> {
    let size = scalar_int(input(inputs, 0, "size")?, "size")?;
    let Ok(n) = usize::try_from(size) else {
        bail!("size must not be negative, got {size}")
    };
    checked_len(&[n])?;
    let denom = if attrs.int_or("periodic", 1) != 0 {
        n as f64
    } else {
        n as f64 - 1.0
    };
    let alpha = 25.0 / 46.0;
    let data = (0..n)
        .map(|i| {
            let x = 2.0 * PI * i as f64 / denom;
            match op {
                OpKind::HannWindow => 0.5 - 0.5 * x.cos(),
                OpKind::HammingWindow => alpha - (1.0 - alpha) * x.cos(),
                _ => 0.42 - 0.5 * x.cos() + 0.08 * (2.0 * x).cos(),
            }
        })
        .collect();
    output(data, &[n], attrs)
}

/// ONNX MelWeightMatrix: `[dft_length / 2 + 1, num_mel_bins]` triangular filters
/// spaced evenly on the mel scale between the two edge frequencies.
fn mel_weight_matrix(attrs: &Attrs, inputs: &[Option<&Value>]) -> OpResult<Value> {
    let bins = scalar_int(input(inputs, 0, "num_mel_bins")?, "num_mel_bins")?;
    let dft_len = scalar_int(input(inputs, 1, "dft_length")?, "dft_length")?;
    let rate = scalar_int(input(inputs, 2, "sample_rate")?, "sample_rate")?;
    let lo = scalar_f64(input(inputs, 3, "lower_edge_hertz")?, "lower_edge_hertz")?;
    let hi = scalar_f64(input(inputs, 4, "upper_edge_hertz")?, "upper_edge_hertz")?;
    let (Ok(bins), Ok(dft_len)) = (usize::try_from(bins), usize::try_from(dft_len)) else {
        bail!("num_mel_bins ({bins}) and dft_length ({dft_len}) must not be negative")
    };
    if rate <= 0 {
        bail!("sample_rate must be positive, got {rate}");
    }
    let spec_bins = dft_len / 2 + 1;
    let n = checked_len(&[spec_bins, bins])?;
    let mel = |hz: f64| 2595.0 * (hz / 700.0).ln_1p() / 10f64.ln();
    let (lo_mel, hi_mel) = (mel(lo), mel(hi));
    let step = (hi_mel - lo_mel) / (bins + 2) as f64;
    let points: Vec<i64> = (0..bins + 2)
        .map(|i| {
            let m = i as f64 * step + lo_mel;
            let hz = 700.0 * (m / 2595.0 * 10f64.ln()).exp_m1();
            (((dft_len + 1) as f64 * hz) / rate as f64).floor() as i64
        })
        .collect();
    let mut out = vec![0.0; n];
    let mut set = |j: i64, i: usize, v: f64| -> OpResult<()> {
        match usize::try_from(j) {
            Ok(j) if j < spec_bins => {
                out[j * bins + i] = v;
                Ok(())
            }
            _ => bail!("mel filter {i} reaches frequency bin {j}, outside 0..{spec_bins}"),
        }
    };
    for i in 0..bins {
        let (left, center, right) = (points[i], points[i + 1], points[i + 2]);
        if center == left {
            set(center, i, 1.0)?;
        } else {
            for j in left..=center {
                set(j, i, (j - left) as f64 / (center - left) as f64)?;
            }
        }
        if right > center {
            for j in center..right {
                set(j, i, (right - j) as f64 / (right - center) as f64)?;
            }
        }
    }
    output(out, &[spec_bins, bins], attrs)
}

/// The discrete Fourier transform of `x` (complex, zero-padded or truncated to
/// `len`), or its inverse (divided by `len`).
fn transform(x: &[(f64, f64)], len: usize, inverse: bool) -> Vec<(f64, f64)> {
    let sign = if inverse { 1.0 } else { -1.0 };
    (0..len)
        .map(|f| {
            let (mut re, mut im) = (0.0, 0.0);
            for (t, &(a, b)) in x.iter().take(len).enumerate() {
                // Reduce f·t mod len first so the angle stays small and exact.
                let turn = (f as u128 * t as u128) % len as u128;
                let angle = sign * 2.0 * PI * turn as f64 / len as f64;
                let (s, c) = angle.sin_cos();
                re += a * c - b * s;
                im += a * s + b * c;
            }
            if inverse {
                (re / len as f64, im / len as f64)
            } else {
                (re, im)
            }
        })
        .collect()
}

/// ONNX DFT (opset 20 form: `dft_length` and `axis` inputs; an `axis` attribute is
/// read when the input is absent). The last dim holds 1 (real) or 2 (complex) values.
fn dft(attrs: &Attrs, inputs: &[Option<&Value>]) -> OpResult<Value> {
    let x = input(inputs, 0, "input")?;
    let shape = x.shape().to_vec();
    let r = shape.len();
    if r < 2 || !matches!(shape[r - 1], 1 | 2) {
        bail!("input must end in a dim of 1 (real) or 2 (complex), got shape {shape:?}");
    }
    let axis = match opt_input(inputs, 2) {
        Some(a) => scalar_int(a, "axis")?,
        None => attrs.int_or("axis", -2),
    };
    let axis = norm_axis(axis, r)?;
    if axis == r - 1 {
        bail!("axis {axis} is the real/imaginary dim");
    }
    let inverse = attrs.int_or("inverse", 0) != 0;
    let onesided = attrs.int_or("onesided", 0) != 0;
    let n_in = shape[axis];
    let len = match opt_input(inputs, 1) {
        Some(v) => {
            let l = scalar_int(v, "dft_length")?;
            match usize::try_from(l) {
                Ok(l) if l > 0 => l,
                _ => bail!("dft_length must be positive, got {l}"),
            }
        }
        None if inverse && onesided => 2 * n_in.saturating_sub(1),
        None => n_in,
    };
    if len == 0 {
        bail!("the transform length is zero");
    }
    let complex = shape[r - 1] == 2;
    let (outer, inner) = (
        shape[..axis].iter().product::<usize>(),
        shape[axis + 1..r - 1].iter().product::<usize>(),
    );
    let (out_len, out_c) = match (inverse, onesided) {
        (false, true) => (len / 2 + 1, 2),
        (true, true) => (len, 1),
        _ => (len, 2),
    };
    let mut out_shape = shape.clone();
    out_shape[axis] = out_len;
    out_shape[r - 1] = out_c;
    let total = checked_len(&out_shape)?;
    let c_in = shape[r - 1];
    dispatch_float!(x, T => {
        let a = to_std_vec(typed::<T>(x, "input")?);
        let mut out = vec![T::default(); total];
        for o in 0..outer {
            for n in 0..inner {
                let at = |k: usize| ((o * n_in + k) * inner + n) * c_in;
                let signal: Vec<(f64, f64)> = (0..n_in)
                    .map(|k| {
                        let re = a[at(k)].to_f64();
                        (re, if complex { a[at(k) + 1].to_f64() } else { 0.0 })
                    })
                    .collect();
                let result = if inverse && onesided {
                    // Rebuild the full spectrum from its Hermitian half; the real part
                    // of the inverse is the signal.
                    let full: Vec<(f64, f64)> = (0..len)
                        .map(|f| {
                            if f <= len / 2 {
                                signal.get(f).copied().unwrap_or((0.0, 0.0))
                            } else {
                                let (re, im) = signal.get(len - f).copied().unwrap_or((0.0, 0.0));
                                (re, -im)
                            }
                        })
                        .collect();
                    transform(&full, len, true)
                } else {
                    transform(&signal, len, inverse)
                };
                for (k, &(re, im)) in result.iter().take(out_len).enumerate() {
                    let dst = ((o * out_len + k) * inner + n) * out_c;
                    out[dst] = T::from_f64(re);
                    if out_c == 2 {
                        out[dst + 1] = T::from_f64(im);
                    }
                }
            }
        }
        Ok(T::into_value(array_from(&out_shape, out)?))
    })
}

/// ONNX STFT: windowed DFTs of frames `frame_step` apart over a `[batch, length, 1|2]`
/// signal, giving `[batch, frames, bins, 2]` (`onesided`, default 1, keeps the first
/// half of the bins).
fn stft(attrs: &Attrs, inputs: &[Option<&Value>]) -> OpResult<Value> {
    let x = input(inputs, 0, "signal")?;
    let step = scalar_int(input(inputs, 1, "frame_step")?, "frame_step")?;
    let shape = x.shape().to_vec();
    let [batch, length, c_in] = *shape.as_slice() else {
        bail!("signal must be [batch, length, 1 or 2], got shape {shape:?}")
    };
    if !matches!(c_in, 1 | 2) {
        bail!("signal must end in a dim of 1 (real) or 2 (complex), got shape {shape:?}");
    }
    let Ok(step) = usize::try_from(step) else {
        bail!("frame_step must be positive, got {step}")
    };
    if step == 0 {
        bail!("frame_step must be positive, got 0");
    }
    let window = opt_input(inputs, 2)
        .map(|w| w.to_f64_vec("window"))
        .transpose()?;
    let frame_len = match (opt_input(inputs, 3), &window) {
        (Some(v), _) => {
            let l = scalar_int(v, "frame_length")?;
            match usize::try_from(l) {
                Ok(l) if l > 0 => l,
                _ => bail!("frame_length must be positive, got {l}"),
            }
        }
        (None, Some(w)) => w.len(),
        (None, None) => length,
    };
    if let Some(w) = &window {
        if w.len() != frame_len {
            bail!(
                "window has {} elements but frame_length is {frame_len}",
                w.len()
            );
        }
    }
    if frame_len > length || frame_len == 0 {
        bail!("frame_length {frame_len} does not fit a signal of length {length}");
    }
    let frames = 1 + (length - frame_len) / step;
    let onesided = attrs.int_or("onesided", 1) != 0;
    let bins = if onesided {
        frame_len / 2 + 1
    } else {
        frame_len
    };
    let out_shape = [batch, frames, bins, 2];
    let total = checked_len(&out_shape)?;
    dispatch_float!(x, T => {
        let a = to_std_vec(typed::<T>(x, "signal")?);
        let mut out = vec![T::default(); total];
        for b in 0..batch {
            for f in 0..frames {
                let frame: Vec<(f64, f64)> = (0..frame_len)
                    .map(|k| {
                        let at = (b * length + f * step + k) * c_in;
                        let w = window.as_ref().map_or(1.0, |w| w[k]);
                        let im = if c_in == 2 { a[at + 1].to_f64() } else { 0.0 };
                        (a[at].to_f64() * w, im * w)
                    })
                    .collect();
                for (k, &(re, im)) in transform(&frame, frame_len, false).iter().take(bins).enumerate() {
                    let dst = ((b * frames + f) * bins + k) * 2;
                    out[dst] = T::from_f64(re);
                    out[dst + 1] = T::from_f64(im);
                }
            }
        }
        Ok(T::into_value(array_from(&out_shape, out)?))
    })
}

#[cfg(test)]
mod tests {
    use crate::ops::testutil::{attrs, data, fails, run, run_n, v};
    use smelt_ir::{Attr, Attrs, OpKind};

    fn close(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 1e-5)
    }

    #[test]
    fn windows() {
        let n = v(&[], &[4i64]);
        let y = run(OpKind::HannWindow, &Attrs::new(), &[&n]);
        assert!(close(&data::<f32>(&y).1, &[0.0, 0.5, 1.0, 0.5]));
        let sym = attrs(&[("periodic", Attr::Int(0))]);
        let y = run(OpKind::HannWindow, &sym, &[&v(&[], &[3i32])]);
        assert!(close(&data::<f32>(&y).1, &[0.0, 1.0, 0.0]));
        let y = run(OpKind::HammingWindow, &sym, &[&v(&[], &[3i32])]);
        assert!(close(&data::<f32>(&y).1, &[4.0 / 46.0, 1.0, 4.0 / 46.0]));
        let y = run(OpKind::BlackmanWindow, &sym, &[&v(&[], &[3i32])]);
        assert!(close(&data::<f32>(&y).1, &[0.0, 1.0, 0.0]));
        let f64_out = attrs(&[("output_datatype", Attr::Int(11))]);
        let y = run(OpKind::HannWindow, &f64_out, &[&n]);
        assert_eq!(data::<f64>(&y).0, vec![4]);
        assert!(
            fails(OpKind::HannWindow, &Attrs::new(), &[&v(&[], &[-1i64])]).contains("negative")
        );
    }

    #[test]
    fn dft_round_trips() {
        let x = v(&[1, 4, 1], &[1.0f32, 2.0, 3.0, 4.0]);
        let y = run(OpKind::DFT, &Attrs::new(), &[&x]);
        assert_eq!(data::<f32>(&y).0, vec![1, 4, 2]);
        assert!(close(
            &data::<f32>(&y).1,
            &[10.0, 0.0, -2.0, 2.0, -2.0, 0.0, -2.0, -2.0]
        ));
        let inv = attrs(&[("inverse", Attr::Int(1))]);
        let back = run(OpKind::DFT, &inv, &[&y]);
        assert!(close(
            &data::<f32>(&back).1,
            &[1.0, 0.0, 2.0, 0.0, 3.0, 0.0, 4.0, 0.0]
        ));
        let half = attrs(&[("onesided", Attr::Int(1))]);
        let y = run(OpKind::DFT, &half, &[&x]);
        assert_eq!(data::<f32>(&y).0, vec![1, 3, 2]);
        let irfft = attrs(&[("onesided", Attr::Int(1)), ("inverse", Attr::Int(1))]);
        let back = run(OpKind::DFT, &irfft, &[&y]);
        assert_eq!(data::<f32>(&back).0, vec![1, 4, 1]);
        assert!(close(&data::<f32>(&back).1, &[1.0, 2.0, 3.0, 4.0]));
        let bad = v(&[4, 3], &[0.0f32; 12]);
        assert!(fails(OpKind::DFT, &Attrs::new(), &[&bad]).contains("real"));
    }

    #[test]
    fn stft_and_mel() {
        let x = v(&[1, 6, 1], &[1.0f32, 1.0, 1.0, 1.0, 1.0, 1.0]);
        let step = v(&[], &[2i64]);
        let ins = [Some(&x), Some(&step), None, Some(&v(&[], &[4i64]))];
        let y = run_n(OpKind::STFT, &Attrs::new(), &ins, 1).remove(0);
        assert_eq!(data::<f32>(&y).0, vec![1, 2, 3, 2]);
        assert!(close(
            &data::<f32>(&y).1[..6],
            &[4.0, 0.0, 0.0, 0.0, 0.0, 0.0]
        ));

        let i = |n: i32| v(&[], &[n]);
        let f = |x: f32| v(&[], &[x]);
        let y = run(
            OpKind::MelWeightMatrix,
            &Attrs::new(),
            &[&i(8), &i(16), &i(8192), &f(0.0), &f(4096.0)],
        );
        assert_eq!(data::<f32>(&y).0, vec![9, 8]);
    }
}
