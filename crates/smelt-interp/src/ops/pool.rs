//! Pooling: MaxPool (with Indices), AveragePool, GlobalAveragePool and GlobalMaxPool.

use ndarray::ArrayD;
use rayon::prelude::*;
use smelt_ir::{Attrs, OpKind};

use super::conv::Window;
use super::input;
use crate::error::{bail, OpError, OpResult};
use crate::num::Num;
use crate::value::{array_from, dispatch_num, typed, Elem, Value};

/// Evaluate a pooling op.
pub(crate) fn eval(
    op: &OpKind,
    attrs: &Attrs,
    inputs: &[Option<&Value>],
    num_outputs: usize,
) -> OpResult<Vec<Value>> {
    let x = input(inputs, 0, "X")?;
    if x.shape().len() < 2 {
        bail!("X must be [N, C, spatial...], got {:?}", x.shape());
    }
    match op {
        OpKind::GlobalAveragePool | OpKind::GlobalMaxPool => {
            let max = *op == OpKind::GlobalMaxPool;
            if !max && !x.dtype().is_float() {
                bail!("needs a float input, got {}", x.dtype());
            }
            dispatch_num!(x, T => Ok(vec![T::into_value(global::<T>(typed::<T>(x, "X")?, max)?)]))
        }
        OpKind::MaxPool | OpKind::AveragePool => {
            let kind = if *op == OpKind::MaxPool {
                Kind::Max
            } else {
                if !x.dtype().is_float() {
                    bail!("needs a float input, got {}", x.dtype());
                }
                Kind::Average {
                    include_pad: attrs.int_or("count_include_pad", 0) != 0,
                }
            };
            dispatch_num!(x, T => {
                let (y, idx) = pool::<T>(typed::<T>(x, "X")?, attrs, kind, num_outputs > 1)?;
                let mut out = vec![T::into_value(y)];
                if let Some(i) = idx {
                    out.push(Value::I64(i));
                }
                Ok(out)
            })
        }
        other => bail!("{other} is not a pooling op"),
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Max,
    Average { include_pad: bool },
}

fn pool<T: Num>(
    x: &ArrayD<T>,
    attrs: &Attrs,
    kind: Kind,
    want_indices: bool,
) -> OpResult<(ArrayD<T>, Option<ArrayD<i64>>)> {
    let xs = x.shape();
    let Some(kernel) = attrs.ints("kernel_shape") else {
        bail!("missing attribute kernel_shape")
    };
    let kernel: Vec<usize> = kernel.iter().map(|&k| k.max(0) as usize).collect();
    let win = Window::new(&xs[2..], &kernel, attrs, attrs.int_or("ceil_mode", 0) != 0)?;
    let column_major = attrs.int_or("storage_order", 0) != 0;
    let planes = xs[0] * xs[1];
    let (in_len, out_len) = (win.input_len(), win.output_len());
    let x_std = x.as_standard_layout();
    let xd = x_std
        .as_slice()
        .ok_or_else(|| OpError::new("internal: X not contiguous"))?;
    let mut values = vec![T::ZERO; planes * out_len];
    let mut indices = vec![0i64; if want_indices { planes * out_len } else { 0 }];
    let [id, ih, iw] = win.input;
    let [kd, kh, kw] = win.kernel;
    let [od, oh, ow] = win.output;
    // Window taps past the end padding (possible under ceil_mode) are not visited at all.
    let limit = |d: usize| (win.input[d] + win.pad_end[d]) as isize;
    let run_plane = |p: usize, vals: &mut [T], idxs: &mut [i64]| {
        let plane = &xd[p * in_len..(p + 1) * in_len];
        let mut o = 0;
        for z in 0..od {
            for y in 0..oh {
                for xo in 0..ow {
                    let (mut best, mut best_at) = (T::LOWEST, -1i64);
                    let (mut sum, mut inside, mut padded) = (0.0f64, 0usize, 0usize);
                    for a in 0..kd {
                        let zi = win.coord(0, z, a);
                        if zi >= limit(0) {
                            continue;
                        }
                        for b in 0..kh {
                            let yi = win.coord(1, y, b);
                            if yi >= limit(1) {
                                continue;
                            }
                            for e in 0..kw {
                                let xi = win.coord(2, xo, e);
                                if xi >= limit(2) {
                                    continue;
                                }
                                padded += 1;
                                let real = zi >= 0 && yi >= 0 && xi >= 0;
                                if !(real
                                    && zi < id as isize
                                    && yi < ih as isize
                                    && xi < iw as isize)
                                {
                                    continue;
                                }
                                let (zi, yi, xi) = (zi as usize, yi as usize, xi as usize);
                                let v = plane[(zi * ih + yi) * iw + xi];
                                inside += 1;
                                sum += v.to_f64();
                                if best_at < 0 || v > best {
                                    best = v;
                                    best_at = if column_major {
                                        zi + id * (yi + ih * xi)
                                    } else {
                                        (zi * ih + yi) * iw + xi
                                    } as i64;
                                }
                            }
                        }
                    }
                    vals[o] = match kind {
                        Kind::Max => best,
                        Kind::Average { include_pad } => {
                            T::from_f64(sum / if include_pad { padded } else { inside } as f64)
                        }
                    };
                    if !idxs.is_empty() {
                        idxs[o] = if best_at < 0 {
                            -1
                        } else {
                            (p * in_len) as i64 + best_at
                        };
                    }
                    o += 1;
                }
            }
        }
    };
    if out_len > 0 {
        if want_indices {
            values
                .par_chunks_mut(out_len)
                .zip(indices.par_chunks_mut(out_len))
                .enumerate()
                .for_each(|(p, (v, i))| run_plane(p, v, i));
        } else {
            values
                .par_chunks_mut(out_len)
                .enumerate()
                .for_each(|(p, v)| run_plane(p, v, &mut []));
        }
    }
    let mut shape = xs[..2].to_vec();
    shape.extend(win.output_dims());
    let idx = if want_indices {
        Some(array_from(&shape, indices)?)
    } else {
        None
    };
    Ok((array_from(&shape, values)?, idx))
}

fn global<T: Num>(x: &ArrayD<T>, max: bool) -> OpResult<ArrayD<T>> {
    let xs = x.shape();
    let planes = xs[0] * xs[1];
    let len: usize = xs[2..].iter().product();
    let x_std = x.as_standard_layout();
    let xd = x_std
        .as_slice()
        .ok_or_else(|| OpError::new("internal: X not contiguous"))?;
    let out: Vec<T> = (0..planes)
        .map(|p| {
            let plane = &xd[p * len..(p + 1) * len];
            if max {
                plane.iter().fold(T::LOWEST, |m, &v| m.max_nan(v))
            } else {
                T::from_f64(plane.iter().map(|v| v.to_f64()).sum::<f64>() / len as f64)
            }
        })
        .collect();
    let mut shape = xs[..2].to_vec();
    shape.extend(std::iter::repeat_n(1, xs.len() - 2));
    array_from(&shape, out)
}

#[cfg(test)]
mod tests {
    use crate::ops::testutil::{attrs, data, run, run_n, v};
    use smelt_ir::{Attr, Attrs, OpKind};

    fn ramp16() -> crate::value::Value {
        let x: Vec<f32> = (1..=16).map(|i| i as f32).collect();
        v(&[1, 1, 4, 4], &x)
    }

    #[test]
    fn max_pool_values_and_indices() {
        let a = attrs(&[
            ("kernel_shape", Attr::Ints(vec![2, 2])),
            ("strides", Attr::Ints(vec![2, 2])),
        ]);
        let out = run_n(OpKind::MaxPool, &a, &[Some(&ramp16())], 2);
        assert_eq!(
            data::<f32>(&out[0]),
            (vec![1, 1, 2, 2], vec![6.0, 8.0, 14.0, 16.0])
        );
        assert_eq!(data::<i64>(&out[1]).1, vec![5, 7, 13, 15]);
        let a = a.with("storage_order", Attr::Int(1));
        let out = run_n(OpKind::MaxPool, &a, &[Some(&ramp16())], 2);
        assert_eq!(data::<i64>(&out[1]).1, vec![5, 13, 7, 15]);
    }

    #[test]
    fn average_pool_padding_modes() {
        let x = v(&[1, 1, 2, 2], &[1.0f32, 2.0, 3.0, 4.0]);
        let a = attrs(&[
            ("kernel_shape", Attr::Ints(vec![2, 2])),
            ("strides", Attr::Ints(vec![2, 2])),
            ("pads", Attr::Ints(vec![1, 1, 1, 1])),
        ]);
        assert_eq!(
            data::<f32>(&run(OpKind::AveragePool, &a, &[&x])).1,
            vec![1.0, 2.0, 3.0, 4.0]
        );
        let a = a.with("count_include_pad", Attr::Int(1));
        assert_eq!(
            data::<f32>(&run(OpKind::AveragePool, &a, &[&x])).1,
            vec![0.25, 0.5, 0.75, 1.0]
        );
    }

    #[test]
    fn ceil_mode_keeps_the_partial_window() {
        let x = v(&[1, 1, 5], &[1.0f32, 2.0, 3.0, 4.0, 5.0]);
        let a = attrs(&[
            ("kernel_shape", Attr::Ints(vec![2])),
            ("strides", Attr::Ints(vec![2])),
            ("ceil_mode", Attr::Int(1)),
        ]);
        assert_eq!(
            data::<f32>(&run(OpKind::MaxPool, &a, &[&x])).1,
            vec![2.0, 4.0, 5.0]
        );
        assert_eq!(
            data::<f32>(&run(OpKind::AveragePool, &a, &[&x])).1,
            vec![1.5, 3.5, 5.0]
        );
        let a = a.with("ceil_mode", Attr::Int(0));
        assert_eq!(
            data::<f32>(&run(OpKind::MaxPool, &a, &[&x])).1,
            vec![2.0, 4.0]
        );
    }

    #[test]
    fn integer_max_pool_and_global_pools() {
        let x = v(&[1, 1, 2, 2], &[-5i8, -7, -1, -128]);
        let a = attrs(&[("kernel_shape", Attr::Ints(vec![2, 2]))]);
        assert_eq!(data::<i8>(&run(OpKind::MaxPool, &a, &[&x])).1, vec![-1]);
        let y = run(OpKind::GlobalAveragePool, &Attrs::new(), &[&ramp16()]);
        assert_eq!(data::<f32>(&y), (vec![1, 1, 1, 1], vec![8.5]));
        let y = run(OpKind::GlobalMaxPool, &Attrs::new(), &[&ramp16()]);
        assert_eq!(data::<f32>(&y).1, vec![16.0]);
    }
}
