//! Elementwise ops with one input: math functions, activations and Clip.

use ndarray::ArrayD;
use smelt_ir::{Attrs, OpKind};

use super::broadcast::map;
use super::{input, opt_input};
use crate::error::{bail, OpResult};
use crate::num::{Float, Num};
use crate::value::{dispatch_float, dispatch_num, typed, Elem, Value};

/// Evaluate a one-input elementwise op.
pub(crate) fn eval(op: &OpKind, attrs: &Attrs, inputs: &[Option<&Value>]) -> OpResult<Value> {
    let x = input(inputs, 0, "X")?;
    match op {
        OpKind::Abs | OpKind::Neg | OpKind::Sign | OpKind::Relu => {
            dispatch_num!(x, T => Ok(T::into_value(numeric::<T>(op, typed::<T>(x, "X")?)?)))
        }
        OpKind::Clip => {
            dispatch_num!(x, T => Ok(T::into_value(clip::<T>(inputs, attrs, typed::<T>(x, "X")?)?)))
        }
        _ => {
            dispatch_float!(x, T => Ok(T::into_value(float::<T>(op, attrs, typed::<T>(x, "X")?)?)))
        }
    }
}

fn numeric<T: Num>(op: &OpKind, a: &ArrayD<T>) -> OpResult<ArrayD<T>> {
    match op {
        OpKind::Abs => map(a, |&x| x.abs()),
        OpKind::Neg => map(a, |&x| x.neg()),
        OpKind::Sign => map(a, |&x| x.sign()),
        // `x < 0` is false for NaN, so NaN passes through.
        OpKind::Relu => map(a, |&x| if x < T::ZERO { T::ZERO } else { x }),
        other => bail!("{other} is not a numeric unary op"),
    }
}

/// The single element of an optional scalar bound input, or its attribute (opset < 11).
fn bound<T: Num>(
    inputs: &[Option<&Value>],
    slot: usize,
    attrs: &Attrs,
    name: &str,
    default: T,
) -> OpResult<T> {
    match opt_input(inputs, slot) {
        Some(v) => {
            let a = typed::<T>(v, name)?;
            match a.iter().next() {
                Some(&b) if a.len() == 1 => Ok(b),
                _ => bail!("{name} must hold one element, has shape {:?}", a.shape()),
            }
        }
        None => Ok(attrs
            .float(name)
            .map(|f| T::from_f64(f64::from(f)))
            .unwrap_or(default)),
    }
}

fn clip<T: Num>(inputs: &[Option<&Value>], attrs: &Attrs, a: &ArrayD<T>) -> OpResult<ArrayD<T>> {
    let lo = bound(inputs, 1, attrs, "min", T::LOWEST)?;
    let hi = bound(inputs, 2, attrs, "max", T::HIGHEST)?;
    // Applying max second makes min > max give max everywhere, as ONNX specifies.
    map(a, move |&x| {
        let y = if x < lo { lo } else { x };
        if y > hi {
            hi
        } else {
            y
        }
    })
}

/// Exact GELU, ½x(1 + erf(x/√2)).
fn gelu_exact(x: f64) -> f64 {
    0.5 * x * (1.0 + crate::math::erf(x * std::f64::consts::FRAC_1_SQRT_2))
}

/// Tanh-approximated GELU.
fn gelu_tanh(x: f64) -> f64 {
    let c = (2.0 / std::f64::consts::PI).sqrt();
    0.5 * x * (1.0 + (c * (x + 0.044715 * x * x * x)).tanh())
}

fn float<T: Float>(op: &OpKind, attrs: &Attrs, a: &ArrayD<T>) -> OpResult<ArrayD<T>> {
    let attr = |name: &str, default: f32| T::from_f64(f64::from(attrs.float_or(name, default)));
    let (zero, one) = (T::ZERO, T::ONE);
    match op {
        OpKind::Exp => map(a, |&x| x.exp()),
        OpKind::Log => map(a, |&x| x.ln()),
        OpKind::Sqrt => map(a, |&x| x.sqrt()),
        OpKind::Reciprocal => map(a, |&x| one.div(x)),
        OpKind::Floor => map(a, |&x| x.floor()),
        OpKind::Ceil => map(a, |&x| x.ceil()),
        OpKind::Round => map(a, |&x| x.round_even()),
        OpKind::Erf => map(a, |&x| x.erf()),
        OpKind::Sin => map(a, |&x| x.sin()),
        OpKind::Cos => map(a, |&x| x.cos()),
        OpKind::Tan => map(a, |&x| x.tan()),
        OpKind::Atan => map(a, |&x| x.atan()),
        OpKind::Tanh => map(a, |&x| x.tanh()),
        OpKind::Sigmoid => map(a, |&x| {
            // Both branches only exponentiate non-positive numbers: no overflow.
            if x >= zero {
                one.div(one.add(x.neg().exp()))
            } else {
                let e = x.exp();
                e.div(one.add(e))
            }
        }),
        OpKind::Softplus => map(a, |&x| {
            if x > zero {
                x.add(x.neg().exp().ln_1p())
            } else {
                x.exp().ln_1p()
            }
        }),
        OpKind::LeakyRelu => {
            let alpha = attr("alpha", 0.01);
            map(a, move |&x| if x < zero { alpha.mul(x) } else { x })
        }
        OpKind::Elu => {
            let alpha = attr("alpha", 1.0);
            map(a, move |&x| {
                if x < zero {
                    alpha.mul(x.exp().sub(one))
                } else {
                    x
                }
            })
        }
        OpKind::HardSigmoid => {
            let (alpha, beta) = (attr("alpha", 0.2), attr("beta", 0.5));
            map(a, move |&x| hard_clamp(alpha.mul(x).add(beta)))
        }
        OpKind::HardSwish => {
            let (alpha, beta) = (T::from_f64(1.0 / 6.0), T::from_f64(0.5));
            map(a, move |&x| x.mul(hard_clamp(alpha.mul(x).add(beta))))
        }
        OpKind::Gelu => {
            // Computed in f64 so f32 results are correctly rounded in practice.
            match attrs.str("approximate").unwrap_or("none") {
                "none" => map(a, |&x| T::from_f64(gelu_exact(x.to_f64()))),
                "tanh" => map(a, |&x| T::from_f64(gelu_tanh(x.to_f64()))),
                other => bail!("unknown approximate mode `{other}` (expected none or tanh)"),
            }
        }
        other => bail!("{other} is not a float unary op"),
    }
}

/// max(0, min(1, v)), NaN-preserving.
fn hard_clamp<T: Num>(v: T) -> T {
    if v < T::ZERO {
        T::ZERO
    } else if v > T::ONE {
        T::ONE
    } else {
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::IxDyn;

    fn arr(v: &[f32]) -> ArrayD<f32> {
        ArrayD::from_shape_vec(IxDyn(&[v.len()]), v.to_vec()).unwrap()
    }

    fn run(op: OpKind, attrs: Attrs, v: &[f32]) -> Vec<f32> {
        float::<f32>(&op, &attrs, &arr(v))
            .unwrap()
            .iter()
            .copied()
            .collect()
    }

    #[test]
    fn activations() {
        let x = [-2.0, -0.5, 0.0, 0.5, 2.0];
        let hsig = run(OpKind::HardSigmoid, Attrs::new(), &x);
        for (got, want) in hsig.iter().zip([0.1, 0.4, 0.5, 0.6, 0.9]) {
            assert!((got - want).abs() < 1e-7, "{got} vs {want}");
        }
        assert_eq!(
            run(OpKind::LeakyRelu, Attrs::new(), &[-1.0, 1.0]),
            vec![-0.01, 1.0]
        );
        let hs = run(OpKind::HardSwish, Attrs::new(), &[-4.0, 0.0, 1.0, 4.0]);
        assert_eq!(hs[0], 0.0);
        assert!((hs[2] - 2.0 / 3.0).abs() < 1e-7);
        assert_eq!(hs[3], 4.0);
        let s = run(OpKind::Sigmoid, Attrs::new(), &[-100.0, 0.0, 100.0]);
        assert!(s[0] > 0.0 && s[0] < 1e-43, "{}", s[0]);
        assert_eq!(s[1..], [0.5, 1.0]);
        let sp = run(OpKind::Softplus, Attrs::new(), &[-100.0, 0.0, 100.0]);
        assert_eq!(sp[2], 100.0);
        assert!((sp[1] - std::f32::consts::LN_2).abs() < 1e-7);
        let g = run(OpKind::Gelu, Attrs::new(), &[1.0]);
        assert!((g[0] - 0.841_344_8).abs() < 1e-7);
        let r = run(OpKind::Round, Attrs::new(), &[0.5, 1.5, 2.5, -0.5, -1.5]);
        assert_eq!(r, vec![0.0, 2.0, 2.0, -0.0, -2.0]);
    }

    #[test]
    fn numeric_ops_on_ints() {
        let a = ArrayD::from_shape_vec(IxDyn(&[4]), vec![-3i32, 0, 5, i32::MIN]).unwrap();
        let abs = numeric(&OpKind::Abs, &a).unwrap();
        assert_eq!(
            abs.iter().copied().collect::<Vec<_>>(),
            vec![3, 0, 5, i32::MIN]
        );
        let sign = numeric(&OpKind::Sign, &a).unwrap();
        assert_eq!(sign.iter().copied().collect::<Vec<_>>(), vec![-1, 0, 1, -1]);
        let relu = numeric(&OpKind::Relu, &a).unwrap();
        assert_eq!(relu.iter().copied().collect::<Vec<_>>(), vec![0, 0, 5, 0]);
    }

    use crate::ops::testutil::{data, run as eval1, v};
    use smelt_ir::Attr;

    #[test]
    fn clip_bounds() {
        let x = v(&[4], &[-2.0f32, 0.0, 2.0, f32::NAN]);
        let lo = v(&[], &[-1.0f32]);
        let hi = v(&[], &[1.0f32]);
        let y = eval1(OpKind::Clip, &Attrs::new(), &[&x, &lo, &hi]);
        let d = data::<f32>(&y).1;
        assert_eq!(d[..3], [-1.0, 0.0, 1.0]);
        assert!(d[3].is_nan());
        let inverted = eval1(OpKind::Clip, &Attrs::new(), &[&x, &hi, &lo]);
        assert_eq!(data::<f32>(&inverted).1[..3], [-1.0, -1.0, -1.0]);
        let only_max = super::super::eval(
            &OpKind::Clip,
            &Attrs::new(),
            &[Some(&x), None, Some(&hi)],
            1,
        )
        .unwrap();
        assert_eq!(data::<f32>(&only_max[0]).1[..3], [-2.0, 0.0, 1.0]);
        let ints = v(&[3], &[-5i32, 0, 5]);
        let old = Attrs::new().with("min", Attr::Float(-1.0));
        assert_eq!(
            data::<i32>(&eval1(OpKind::Clip, &old, &[&ints])).1,
            vec![-1, 0, 5]
        );
    }

    #[test]
    fn half_inputs_round_back() {
        let x = v(
            &[2],
            &[half::bf16::from_f32(2.0), half::bf16::from_f32(-1.0)],
        );
        let y = eval1(OpKind::Exp, &Attrs::new(), &[&x]);
        let d = data::<half::bf16>(&y).1;
        assert_eq!(
            d,
            vec![
                half::bf16::from_f32(2f32.exp()),
                half::bf16::from_f32((-1f32).exp())
            ]
        );
        let e = v(&[0], &[] as &[f32]);
        assert_eq!(eval1(OpKind::Erf, &Attrs::new(), &[&e]).shape(), &[0]);
    }
}
