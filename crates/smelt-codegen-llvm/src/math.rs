//! Inline f32 math, the same algorithms as the Cranelift backend's (`math.rs` there) so
//! both backends compute the same values, and straight-line code so loops containing
//! them vectorise (a libm call per element would not): `exp` by Cody–Waite reduction
//! and a degree-6 polynomial (Cephes `expf`, ≤ 2 ulp; inputs are clamped to
//! [-87.34, 88.38], so `exp(+inf)` is the largest such value, not `inf`), `erf` by
//! Abramowitz–Stegun 7.1.26 (|error| ≤ 1.5e-7), `tanh` as `1 - 2 / (e^{2x} + 1)`.
//! NaN propagates through all three.

use inkwell::values::FloatValue;
use inkwell::FloatPredicate;

use crate::emit::{ll, Emitter, R};

impl<'ctx> Emitter<'_, 'ctx> {
    fn c32(&self, v: f64) -> FloatValue<'ctx> {
        self.cx.f32_type().const_float(v)
    }

    /// `a * b + c`, fused where the target has FMA (`llvm.fmuladd`).
    fn mul_add(
        &self,
        a: FloatValue<'ctx>,
        b: FloatValue<'ctx>,
        c: FloatValue<'ctx>,
    ) -> R<FloatValue<'ctx>> {
        let ty = self.cx.f32_type();
        Ok(self
            .call_intrinsic(
                "llvm.fmuladd",
                &[ty.into()],
                &[a.into(), b.into(), c.into()],
            )?
            .into_float_value())
    }

    /// `x` clamped into `[lo, hi]`, NaN staying NaN.
    fn clamp(&self, x: FloatValue<'ctx>, lo: f64, hi: f64) -> R<FloatValue<'ctx>> {
        let (lo, hi) = (self.c32(lo), self.c32(hi));
        let above = self
            .b
            .build_float_compare(FloatPredicate::OGT, x, hi, "")
            .map_err(ll)?;
        let x = self.b.build_select(above, hi, x, "").map_err(ll)?;
        let x = x.into_float_value();
        let below = self
            .b
            .build_float_compare(FloatPredicate::OLT, x, lo, "")
            .map_err(ll)?;
        Ok(self
            .b
            .build_select(below, lo, x, "")
            .map_err(ll)?
            .into_float_value())
    }

    /// e^x for f32.
    pub(crate) fn exp_f32(&self, x: FloatValue<'ctx>) -> R<FloatValue<'ctx>> {
        let f32t = self.cx.f32_type();
        let i32t = self.cx.i32_type();
        let x = self.clamp(x, -87.336_55, 88.376_26)?;
        let fx = self
            .b
            .build_float_mul(x, self.c32(std::f64::consts::LOG2_E), "")
            .map_err(ll)?;
        let n = self
            .call_intrinsic("llvm.roundeven", &[f32t.into()], &[fx.into()])?
            .into_float_value();
        // r = x - n*ln2, in two steps so the product is exact.
        let r = self.mul_add(n, self.c32(-0.693_359_375), x)?;
        let r = self.mul_add(n, self.c32(2.121_944_4e-4), r)?;
        let mut p = self.c32(1.987_569_15e-4);
        for k in [
            1.398_199_95e-3,
            8.333_451_9e-3,
            4.166_579_6e-2,
            1.666_666_55e-1,
            5.000_000_1e-1,
        ] {
            p = self.mul_add(p, r, self.c32(k))?;
        }
        let r2 = self.b.build_float_mul(r, r, "").map_err(ll)?;
        let r1 = self.b.build_float_add(r, self.c32(1.0), "").map_err(ll)?;
        let y = self.mul_add(p, r2, r1)?;
        // 2^n by building the exponent field; n is an integer in [-126, 127] (NaN is
        // replaced by 0 first: `fptosi` of NaN is poison; y is NaN then anyway).
        let ordered = self
            .b
            .build_float_compare(FloatPredicate::ORD, n, n, "")
            .map_err(ll)?;
        let n = self
            .b
            .build_select(ordered, n, self.c32(0.0), "")
            .map_err(ll)?
            .into_float_value();
        let ni = self.b.build_float_to_signed_int(n, i32t, "").map_err(ll)?;
        let biased = self
            .b
            .build_int_add(ni, i32t.const_int(127, false), "")
            .map_err(ll)?;
        let bits = self
            .b
            .build_left_shift(biased, i32t.const_int(23, false), "")
            .map_err(ll)?;
        let scale = self
            .b
            .build_bit_cast(bits, f32t, "")
            .map_err(ll)?
            .into_float_value();
        self.b.build_float_mul(y, scale, "").map_err(ll)
    }

    /// erf(x) for f32.
    pub(crate) fn erf_f32(&self, x: FloatValue<'ctx>) -> R<FloatValue<'ctx>> {
        let f32t = self.cx.f32_type();
        let ax = self
            .call_intrinsic("llvm.fabs", &[f32t.into()], &[x.into()])?
            .into_float_value();
        let one = self.c32(1.0);
        let d = self.mul_add(ax, self.c32(0.327_591_1), one)?;
        let t = self.b.build_float_div(one, d, "").map_err(ll)?;
        let mut poly = self.c32(1.061_405_429);
        for k in [-1.453_152_027, 1.421_413_741, -0.284_496_736, 0.254_829_592] {
            poly = self.mul_add(poly, t, self.c32(k))?;
        }
        let poly = self.b.build_float_mul(poly, t, "").map_err(ll)?;
        let x2 = self.b.build_float_mul(ax, ax, "").map_err(ll)?;
        let nx2 = self.b.build_float_neg(x2, "").map_err(ll)?;
        let ex = self.exp_f32(nx2)?;
        let pe = self.b.build_float_mul(poly, ex, "").map_err(ll)?;
        let y = self.b.build_float_sub(one, pe, "").map_err(ll)?;
        // Give y the sign of x.
        let neg = self
            .b
            .build_float_compare(FloatPredicate::OLT, x, self.c32(0.0), "")
            .map_err(ll)?;
        let ny = self.b.build_float_neg(y, "").map_err(ll)?;
        Ok(self
            .b
            .build_select(neg, ny, y, "")
            .map_err(ll)?
            .into_float_value())
    }

    /// tanh(x) = 1 - 2 / (e^{2x} + 1) for f32.
    pub(crate) fn tanh_f32(&self, x: FloatValue<'ctx>) -> R<FloatValue<'ctx>> {
        let two = self.c32(2.0);
        let one = self.c32(1.0);
        let x2 = self.b.build_float_mul(x, two, "").map_err(ll)?;
        let ex = self.exp_f32(x2)?;
        let d = self.b.build_float_add(ex, one, "").map_err(ll)?;
        let q = self.b.build_float_div(two, d, "").map_err(ll)?;
        self.b.build_float_sub(one, q, "").map_err(ll)
    }
}
