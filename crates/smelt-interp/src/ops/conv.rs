//! Convolution (1-D, 2-D and 3-D) by im2col and GEMM, plus the window geometry shared
//! with pooling.

use rayon::prelude::*;
use smelt_ir::Attrs;

use super::linalg::{gemm, Gemm, Mat};
use super::{input, opt_input};
use crate::error::{bail, OpError, OpResult};
use crate::value::{array_from, dispatch_float, typed, Elem, Value};

/// Sliding-window geometry for up to three spatial dims, padded to exactly three with
/// leading size-1 dims so one loop nest serves 1-D, 2-D and 3-D.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Window {
    /// Input spatial sizes.
    pub(crate) input: [usize; 3],
    /// Kernel sizes.
    pub(crate) kernel: [usize; 3],
    /// Strides.
    pub(crate) stride: [usize; 3],
    /// Dilations.
    pub(crate) dilation: [usize; 3],
    /// Padding before each dim.
    pub(crate) pad_begin: [usize; 3],
    /// Padding after each dim.
    pub(crate) pad_end: [usize; 3],
    /// Output spatial sizes.
    pub(crate) output: [usize; 3],
    /// Number of real spatial dims (1..=3).
    pub(crate) dims: usize,
}

impl Window {
    /// The geometry for `input` spatial sizes and `kernel` sizes under the ONNX
    /// attributes `auto_pad`, `pads`, `strides`, `dilations` (and `ceil_mode` for pools).
    pub(crate) fn new(
        input: &[usize],
        kernel: &[usize],
        attrs: &Attrs,
        ceil_mode: bool,
    ) -> OpResult<Window> {
        let n = input.len();
        if n == 0 || n > 3 {
            bail!("{n} spatial dims are not supported (1 to 3 are)");
        }
        if kernel.len() != n {
            bail!(
                "kernel has {} dims, input has {n} spatial dims",
                kernel.len()
            );
        }
        if kernel.iter().any(|&k| k == 0 || k > i32::MAX as usize) {
            bail!("kernel sizes {kernel:?} must be positive and below 2^31");
        }
        let list = |name: &str, len: usize, default: i64| -> OpResult<Vec<usize>> {
            let v = attrs
                .ints(name)
                .map(<[i64]>::to_vec)
                .unwrap_or_else(|| vec![default; len]);
            // Bounded so window arithmetic cannot overflow.
            if v.len() != len || v.iter().any(|&x| !(0..=i64::from(i32::MAX)).contains(&x)) {
                bail!("{name} {v:?} must be {len} non-negative values below 2^31");
            }
            Ok(v.iter().map(|&x| x as usize).collect())
        };
        let strides = list("strides", n, 1)?;
        let dilations = list("dilations", n, 1)?;
        if strides.contains(&0) || dilations.contains(&0) {
            bail!("strides {strides:?} and dilations {dilations:?} must be positive");
        }
        let auto_pad = attrs.str("auto_pad").unwrap_or("NOTSET");
        let mut w = Window {
            input: [1; 3],
            kernel: [1; 3],
            stride: [1; 3],
            dilation: [1; 3],
            pad_begin: [0; 3],
            pad_end: [0; 3],
            output: [1; 3],
            dims: n,
        };
        let off = 3 - n;
        let pads = match auto_pad {
            "NOTSET" => list("pads", 2 * n, 0)?,
            "VALID" => vec![0; 2 * n],
            "SAME_UPPER" | "SAME_LOWER" => {
                let mut p = vec![0; 2 * n];
                for i in 0..n {
                    let out = input[i].div_ceil(strides[i]);
                    let span = dilations[i] * (kernel[i].max(1) - 1) + 1;
                    let total = ((out.max(1) - 1) * strides[i] + span).saturating_sub(input[i]);
                    let small = total / 2;
                    let (b, e) = if auto_pad == "SAME_UPPER" {
                        (small, total - small)
                    } else {
                        (total - small, small)
                    };
                    p[i] = b;
                    p[n + i] = e;
                }
                p
            }
            other => bail!("unknown auto_pad `{other}`"),
        };
        for i in 0..n {
            let span = dilations[i] * (kernel[i].max(1) - 1) + 1;
            let padded = input[i] + pads[i] + pads[n + i];
            if kernel[i] == 0 || padded < span {
                bail!("kernel {kernel:?} (dilations {dilations:?}) does not fit input {input:?} with pads {pads:?}");
            }
            let mut out = (padded - span) / strides[i] + 1;
            if ceil_mode {
                if (padded - span).rem_euclid(strides[i]) > 0 {
                    out += 1;
                }
                // The last window must start inside the input or its leading padding.
                if out > 1 && (out - 1) * strides[i] >= input[i] + pads[i] {
                    out -= 1;
                }
            }
            w.input[off + i] = input[i];
            w.kernel[off + i] = kernel[i];
            w.stride[off + i] = strides[i];
            w.dilation[off + i] = dilations[i];
            w.pad_begin[off + i] = pads[i];
            w.pad_end[off + i] = pads[n + i];
            w.output[off + i] = out;
        }
        Ok(w)
    }

    /// Input positions along dim `d` visited by output position `o` through kernel tap
    /// `k`, as a signed coordinate (negative or ≥ input: padding).
    #[inline]
    pub(crate) fn coord(&self, d: usize, o: usize, k: usize) -> isize {
        (o * self.stride[d] + k * self.dilation[d]) as isize - self.pad_begin[d] as isize
    }

    /// Product of the output sizes.
    pub(crate) fn output_len(&self) -> usize {
        self.output.iter().product()
    }

    /// Product of the input sizes.
    pub(crate) fn input_len(&self) -> usize {
        self.input.iter().product()
    }

    /// Product of the kernel sizes.
    pub(crate) fn kernel_len(&self) -> usize {
        self.kernel.iter().product()
    }

    /// The output spatial shape with only the real dims.
    pub(crate) fn output_dims(&self) -> Vec<usize> {
        self.output[3 - self.dims..].to_vec()
    }
}

/// ONNX Conv.
pub(crate) fn conv(inputs: &[Option<&Value>], attrs: &Attrs) -> OpResult<Value> {
    let x = input(inputs, 0, "X")?;
    let w = input(inputs, 1, "W")?;
    let b = opt_input(inputs, 2);
    dispatch_float!(x, T => {
        let bias = match b {
            Some(v) => Some(typed::<T>(v, "B")?),
            None => None,
        };
        conv_t::<T>(typed::<T>(x, "X")?, typed::<T>(w, "W")?, bias, attrs).map(T::into_value)
    })
}

fn conv_t<T: Gemm>(
    x: &ndarray::ArrayD<T>,
    w: &ndarray::ArrayD<T>,
    bias: Option<&ndarray::ArrayD<T>>,
    attrs: &Attrs,
) -> OpResult<ndarray::ArrayD<T>> {
    let (xs, ws) = (x.shape(), w.shape());
    if xs.len() < 3 || ws.len() != xs.len() {
        bail!("X {xs:?} and W {ws:?} must both be [N, C, spatial...] with 1 to 3 spatial dims");
    }
    let (batch, channels, m) = (xs[0], xs[1], ws[0]);
    let group = attrs.int_or("group", 1);
    if group <= 0 || channels % group as usize != 0 || m % group as usize != 0 {
        bail!("group {group} must divide both {channels} input and {m} output channels");
    }
    let group = group as usize;
    let (cg, mg) = (channels / group, m / group);
    if ws[1] != cg {
        bail!(
            "W has {} input channels per group, X gives {cg} ({channels} / group {group})",
            ws[1]
        );
    }
    let kernel: Vec<usize> = match attrs.ints("kernel_shape") {
        Some(k) => k.iter().map(|&v| v.max(0) as usize).collect(),
        None => ws[2..].to_vec(),
    };
    if kernel != ws[2..] {
        bail!(
            "kernel_shape {kernel:?} disagrees with W's spatial dims {:?}",
            &ws[2..]
        );
    }
    let win = Window::new(&xs[2..], &kernel, attrs, false)?;
    if let Some(b) = bias {
        if b.shape() != [m] {
            bail!("B has shape {:?}, expected [{m}]", b.shape());
        }
    }
    let bias: Option<Vec<T>> = bias.map(|b| b.iter().copied().collect());
    let x_std = x.as_standard_layout();
    let w_std = w.as_standard_layout();
    let xd = x_std
        .as_slice()
        .ok_or_else(|| OpError::new("internal: X not contiguous"))?;
    let wd = w_std
        .as_slice()
        .ok_or_else(|| OpError::new("internal: W not contiguous"))?;
    let (in_len, out_len, k_len) = (win.input_len(), win.output_len(), win.kernel_len());
    let rows = cg * k_len;
    // 1×1 kernels with unit stride and no padding read the input as it is.
    let direct =
        k_len == 1 && win.stride == [1; 3] && win.pad_begin == [0; 3] && win.pad_end == [0; 3];
    let mut out = vec![T::ZERO; batch * m * out_len];
    if !out.is_empty() {
        // One task per (image, group): its output block is contiguous.
        out.par_chunks_mut(mg * out_len)
            .enumerate()
            .try_for_each(|(task, y)| -> OpResult<()> {
                let (n, g) = (task / group, task % group);
                let xg =
                    &xd[(n * channels + g * cg) * in_len..(n * channels + (g + 1) * cg) * in_len];
                let col;
                let cols: &[T] = if direct {
                    xg
                } else {
                    col = im2col(xg, cg, &win);
                    &col
                };
                let wg = &wd[g * mg * rows..(g + 1) * mg * rows];
                gemm(
                    (mg, rows, out_len),
                    T::ONE,
                    Mat::rows(wg, rows),
                    Mat::rows(cols, out_len),
                    T::ZERO,
                    y,
                    out_len,
                )?;
                if let Some(b) = &bias {
                    for (oc, plane) in y.chunks_mut(out_len).enumerate() {
                        let bv = b[g * mg + oc];
                        plane.iter_mut().for_each(|v| *v = v.add(bv));
                    }
                }
                Ok(())
            })?;
    }
    let mut shape = vec![batch, m];
    shape.extend(win.output_dims());
    array_from(&shape, out)
}

/// Unfold the windows of `cg` input planes into a `[cg·kernel, output]` matrix,
/// writing zero for padding.
fn im2col<T: Gemm>(x: &[T], cg: usize, w: &Window) -> Vec<T> {
    let [id, ih, iw] = w.input;
    let [kd, kh, kw] = w.kernel;
    let [od, oh, ow] = w.output;
    let out_len = od * oh * ow;
    let mut col = vec![T::ZERO; cg * kd * kh * kw * out_len];
    let mut row = 0;
    for c in 0..cg {
        let plane = &x[c * id * ih * iw..(c + 1) * id * ih * iw];
        for a in 0..kd {
            for b in 0..kh {
                for e in 0..kw {
                    let dst = &mut col[row * out_len..(row + 1) * out_len];
                    row += 1;
                    for z in 0..od {
                        let zi = w.coord(0, z, a);
                        if zi < 0 || zi >= id as isize {
                            continue;
                        }
                        for y in 0..oh {
                            let yi = w.coord(1, y, b);
                            if yi < 0 || yi >= ih as isize {
                                continue;
                            }
                            let src = &plane[(zi as usize * ih + yi as usize) * iw..][..iw];
                            let line = &mut dst[(z * oh + y) * ow..][..ow];
                            for (xo, v) in line.iter_mut().enumerate() {
                                let xi = w.coord(2, xo, e);
                                if xi >= 0 && xi < iw as isize {
                                    *v = src[xi as usize];
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    col
}

#[cfg(test)]
mod tests {
    use super::*;
    use smelt_ir::Attr;

    #[test]
    fn window_output_sizes() {
        let a = Attrs::new();
        assert_eq!(
            Window::new(&[5, 5], &[3, 3], &a, false).unwrap().output,
            [1, 3, 3]
        );
        let a = Attrs::new()
            .with("pads", Attr::Ints(vec![1, 1, 1, 1]))
            .with("strides", Attr::Ints(vec![2, 2]));
        assert_eq!(
            Window::new(&[5, 5], &[3, 3], &a, false).unwrap().output,
            [1, 3, 3]
        );
        let a = Attrs::new()
            .with("auto_pad", Attr::Str("SAME_UPPER".into()))
            .with("strides", Attr::Ints(vec![2]));
        let w = Window::new(&[5], &[2], &a, false).unwrap();
        assert_eq!((w.output[2], w.pad_begin[2], w.pad_end[2]), (3, 0, 1));
        let a = Attrs::new()
            .with("auto_pad", Attr::Str("SAME_LOWER".into()))
            .with("strides", Attr::Ints(vec![2]));
        let w = Window::new(&[5], &[2], &a, false).unwrap();
        assert_eq!((w.output[2], w.pad_begin[2], w.pad_end[2]), (3, 1, 0));
        let a = Attrs::new().with("strides", Attr::Ints(vec![2]));
        assert_eq!(Window::new(&[4], &[3], &a, false).unwrap().output[2], 1);
        assert_eq!(Window::new(&[4], &[3], &a, true).unwrap().output[2], 2);
        let a = Attrs::new().with("dilations", Attr::Ints(vec![2]));
        assert_eq!(Window::new(&[5], &[3], &a, false).unwrap().output[2], 1);
        assert!(Window::new(&[2], &[3], &Attrs::new(), false).is_err());
    }

    use crate::ops::testutil::{attrs, data, fails, run, v};
    use smelt_ir::OpKind;

    fn nine() -> crate::value::Value {
        v(
            &[1, 1, 3, 3],
            &[1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0],
        )
    }

    #[test]
    fn conv2d_hand_computed() {
        let w = v(&[1, 1, 2, 2], &[1.0f32; 4]);
        let y = run(OpKind::Conv, &Attrs::new(), &[&nine(), &w]);
        assert_eq!(
            data::<f32>(&y),
            (vec![1, 1, 2, 2], vec![12.0, 16.0, 24.0, 28.0])
        );
        let a = attrs(&[
            ("pads", Attr::Ints(vec![1, 1, 1, 1])),
            ("strides", Attr::Ints(vec![2, 2])),
        ]);
        let b = v(&[1], &[0.5f32]);
        let y = run(OpKind::Conv, &a, &[&nine(), &w, &b]);
        assert_eq!(
            data::<f32>(&y),
            (vec![1, 1, 2, 2], vec![1.5, 5.5, 11.5, 28.5])
        );
    }

    #[test]
    fn grouped_and_1d_and_dilated() {
        let x = v(&[1, 2, 1, 2], &[1.0f32, 2.0, 3.0, 4.0]);
        let w = v(&[2, 1, 1, 1], &[2.0f32, 3.0]);
        let y = run(OpKind::Conv, &attrs(&[("group", Attr::Int(2))]), &[&x, &w]);
        assert_eq!(data::<f32>(&y).1, vec![2.0, 4.0, 9.0, 12.0]);
        let x = v(&[1, 1, 5], &[1.0f32, 2.0, 3.0, 4.0, 5.0]);
        let w = v(&[1, 1, 3], &[1.0f32, 0.0, -1.0]);
        let y = run(
            OpKind::Conv,
            &attrs(&[("pads", Attr::Ints(vec![1, 1]))]),
            &[&x, &w],
        );
        assert_eq!(
            data::<f32>(&y),
            (vec![1, 1, 5], vec![-2.0, -2.0, -2.0, -2.0, 4.0])
        );
        let w = v(&[1, 1, 2], &[1.0f32, 1.0]);
        let y = run(
            OpKind::Conv,
            &attrs(&[("dilations", Attr::Ints(vec![2]))]),
            &[&x, &w],
        );
        assert_eq!(data::<f32>(&y).1, vec![4.0, 6.0, 8.0]);
    }

    #[test]
    fn conv3d_and_errors() {
        let x = v(
            &[1, 1, 2, 2, 2],
            &[1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
        );
        let w = v(&[1, 1, 2, 1, 1], &[1.0f64, -1.0]);
        let y = run(OpKind::Conv, &Attrs::new(), &[&x, &w]);
        assert_eq!(data::<f64>(&y), (vec![1, 1, 1, 2, 2], vec![-4.0; 4]));
        let w3 = v(&[1, 3, 1, 1], &[1.0f32; 3]);
        assert!(fails(OpKind::Conv, &Attrs::new(), &[&nine(), &w3]).contains("input channels"));
        let big = v(&[1, 1, 4, 4], &[0.0f32; 16]);
        assert!(fails(OpKind::Conv, &Attrs::new(), &[&nine(), &big]).contains("does not fit"));
    }
}
