//! Arithmetic traits over the element types kernels compute in.
//!
//! [`Num`] covers f32, f64 and every integer type; integer arithmetic wraps like the C
//! code ONNX runtimes are written in, instead of panicking on overflow. [`Float`] adds the
//! transcendental functions for f32 and f64. Half floats never appear here: they are
//! widened to f32 before a kernel runs and rounded back afterwards.

use crate::math;
use crate::value::Elem;

/// An element type kernels can do arithmetic on.
pub(crate) trait Num: Elem + Copy + PartialOrd {
    /// Whether this is a floating-point type.
    const IS_FLOAT: bool;
    /// Zero.
    const ZERO: Self;
    /// One.
    const ONE: Self;
    /// The lowest value (−∞ for floats): the identity of `max`.
    const LOWEST: Self;
    /// The highest value (+∞ for floats): the identity of `min`.
    const HIGHEST: Self;
    /// Sum (wrapping for integers).
    fn add(self, o: Self) -> Self;
    /// Difference (wrapping for integers).
    fn sub(self, o: Self) -> Self;
    /// Product (wrapping for integers).
    fn mul(self, o: Self) -> Self;
    /// Quotient; integers truncate toward zero. Integer division by zero must be ruled
    /// out by the caller.
    fn div(self, o: Self) -> Self;
    /// Remainder with ONNX `Mod` semantics: `fmod` takes the dividend's sign (C `fmod`,
    /// truncated division), otherwise the divisor's (Python `%`, floored division; for
    /// floats from opset 28).
    fn rem(self, o: Self, fmod: bool) -> Self;
    /// Negation (wrapping for integers).
    fn neg(self) -> Self;
    /// Absolute value (wrapping for the most negative integer).
    fn abs(self) -> Self;
    /// −1, 0 or 1 (NaN stays NaN).
    fn sign(self) -> Self;
    /// Whether this is zero.
    fn is_zero(self) -> bool;
    /// Whether this is NaN (never for integers).
    fn is_nan(self) -> bool;
    /// Conversion to f64 (rounding for 64-bit integers).
    fn to_f64(self) -> f64;
    /// Conversion from f64: rounding for floats, truncation toward zero (saturating) for
    /// integers.
    fn from_f64(v: f64) -> Self;
    /// Exact conversion to i128 (floats truncate).
    fn to_i128(self) -> i128;
    /// Conversion from i128, wrapping for integers.
    fn from_i128(v: i128) -> Self;

    /// The larger value; NaN wins so it propagates like numpy's `maximum`.
    #[inline]
    fn max_nan(self, o: Self) -> Self {
        if self.is_nan() || o > self {
            if self.is_nan() {
                self
            } else {
                o
            }
        } else {
            self
        }
    }

    /// The smaller value; NaN wins so it propagates like numpy's `minimum`.
    #[inline]
    fn min_nan(self, o: Self) -> Self {
        if self.is_nan() || o < self {
            if self.is_nan() {
                self
            } else {
                o
            }
        } else {
            self
        }
    }
}

macro_rules! int_num {
    ($t:ty) => {
        impl Num for $t {
            const IS_FLOAT: bool = false;
            const ZERO: Self = 0;
            const ONE: Self = 1;
            const LOWEST: Self = <$t>::MIN;
            const HIGHEST: Self = <$t>::MAX;
            #[inline]
            fn add(self, o: Self) -> Self {
                self.wrapping_add(o)
            }
            #[inline]
            fn sub(self, o: Self) -> Self {
                self.wrapping_sub(o)
            }
            #[inline]
            fn mul(self, o: Self) -> Self {
                self.wrapping_mul(o)
            }
            #[inline]
            fn div(self, o: Self) -> Self {
                if o == 0 {
                    0
                } else {
                    self.wrapping_div(o)
                }
            }
            #[inline]
            fn rem(self, o: Self, fmod: bool) -> Self {
                if o == 0 {
                    return 0;
                }
                let r = self.wrapping_rem(o);
                // Python-style modulo: a nonzero remainder takes the divisor's sign.
                #[allow(unused_comparisons)]
                let differ = (r < 0) != (o < 0);
                if !fmod && r != 0 && differ {
                    r.wrapping_add(o)
                } else {
                    r
                }
            }
            #[inline]
            fn neg(self) -> Self {
                self.wrapping_neg()
            }
            #[inline]
            #[allow(unused_comparisons)]
            fn abs(self) -> Self {
                if self < 0 {
                    self.wrapping_neg()
                } else {
                    self
                }
            }
            #[inline]
            #[allow(unused_comparisons)]
            fn sign(self) -> Self {
                if self > 0 {
                    1
                } else if self < 0 {
                    (0 as $t).wrapping_sub(1)
                } else {
                    0
                }
            }
            #[inline]
            fn is_zero(self) -> bool {
                self == 0
            }
            #[inline]
            fn is_nan(self) -> bool {
                false
            }
            #[inline]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline]
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            #[inline]
            fn to_i128(self) -> i128 {
                self as i128
            }
            #[inline]
            fn from_i128(v: i128) -> Self {
                v as $t
            }
        }
    };
}

int_num!(i64);
int_num!(i32);
int_num!(i16);
int_num!(i8);
int_num!(u64);
int_num!(u32);
int_num!(u16);
int_num!(u8);

macro_rules! float_num {
    ($t:ty) => {
        impl Num for $t {
            const IS_FLOAT: bool = true;
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const LOWEST: Self = <$t>::NEG_INFINITY;
            const HIGHEST: Self = <$t>::INFINITY;
            #[inline]
            fn add(self, o: Self) -> Self {
                self + o
            }
            #[inline]
            fn sub(self, o: Self) -> Self {
                self - o
            }
            #[inline]
            fn mul(self, o: Self) -> Self {
                self * o
            }
            #[inline]
            fn div(self, o: Self) -> Self {
                self / o
            }
            #[inline]
            fn rem(self, o: Self, fmod: bool) -> Self {
                // Rust's `%` on floats is C's fmod.
                let r = self % o;
                if fmod {
                    r
                } else if r == 0.0 {
                    // Floored modulo (opset 28): a zero result takes the divisor's sign.
                    (0.0 as $t).copysign(o)
                } else if (r < 0.0) != (o < 0.0) {
                    // A nonzero remainder takes the divisor's sign (NaN stays NaN, and
                    // an infinite divisor of the other sign is returned as is).
                    r + o
                } else {
                    r
                }
            }
            #[inline]
            fn neg(self) -> Self {
                -self
            }
            #[inline]
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            #[inline]
            fn sign(self) -> Self {
                if self > 0.0 {
                    1.0
                } else if self < 0.0 {
                    -1.0
                } else {
                    // Keeps 0 as 0 and NaN as NaN.
                    self
                }
            }
            #[inline]
            fn is_zero(self) -> bool {
                self == 0.0
            }
            #[inline]
            fn is_nan(self) -> bool {
                <$t>::is_nan(self)
            }
            #[inline]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline]
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            #[inline]
            fn to_i128(self) -> i128 {
                self as i128
            }
            #[inline]
            fn from_i128(v: i128) -> Self {
                v as $t
            }
        }
    };
}

float_num!(f64);
float_num!(f32);

/// The floating-point types kernels compute in (f32 and f64).
pub(crate) trait Float: Num {
    /// e^x.
    fn exp(self) -> Self;
    /// Natural logarithm.
    fn ln(self) -> Self;
    /// ln(1 + x), accurate near zero.
    fn ln_1p(self) -> Self;
    /// Square root.
    fn sqrt(self) -> Self;
    /// Hyperbolic tangent.
    fn tanh(self) -> Self;
    /// Sine.
    fn sin(self) -> Self;
    /// Cosine.
    fn cos(self) -> Self;
    /// Tangent.
    fn tan(self) -> Self;
    /// Arctangent.
    fn atan(self) -> Self;
    /// Round toward −∞.
    fn floor(self) -> Self;
    /// Round toward +∞.
    fn ceil(self) -> Self;
    /// Round to nearest, ties to even.
    fn round_even(self) -> Self;
    /// The error function.
    fn erf(self) -> Self;
}

macro_rules! float_impl {
    ($t:ty, $erf:expr) => {
        impl Float for $t {
            #[inline]
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            #[inline]
            fn ln(self) -> Self {
                <$t>::ln(self)
            }
            #[inline]
            fn ln_1p(self) -> Self {
                <$t>::ln_1p(self)
            }
            #[inline]
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            #[inline]
            fn tanh(self) -> Self {
                <$t>::tanh(self)
            }
            #[inline]
            fn sin(self) -> Self {
                <$t>::sin(self)
            }
            #[inline]
            fn cos(self) -> Self {
                <$t>::cos(self)
            }
            #[inline]
            fn tan(self) -> Self {
                <$t>::tan(self)
            }
            #[inline]
            fn atan(self) -> Self {
                <$t>::atan(self)
            }
            #[inline]
            fn floor(self) -> Self {
                <$t>::floor(self)
            }
            #[inline]
            fn ceil(self) -> Self {
                <$t>::ceil(self)
            }
            #[inline]
            fn round_even(self) -> Self {
                <$t>::round_ties_even(self)
            }
            #[inline]
            fn erf(self) -> Self {
                $erf(self)
            }
        }
    };
}

float_impl!(f64, math::erf);
// f32 goes through the f64 implementation: accurate to well under one f32 ulp.
float_impl!(f32, |x: f32| math::erf(f64::from(x)) as f32);
