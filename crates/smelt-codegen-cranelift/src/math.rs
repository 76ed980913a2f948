//! Inline f32 math for scalars and f32x4 alike (Cranelift's instructions are
//! polymorphic over lanes): `exp` by Cody–Waite reduction and a degree-6 polynomial
//! (Cephes `expf`), `erf` by Abramowitz–Stegun 7.1.26 (|error| ≤ 1.5e-7), `tanh` from
//! `exp`. Inline rather than libm calls so that loops containing them vectorise.

use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::types::{self, Type};
use cranelift_codegen::ir::{InstBuilder, MemFlagsData, Value};

use crate::emit::Emitter;

fn ty(e: &Emitter, x: Value) -> Type {
    e.b.func.dfg.value_type(x)
}

fn c(e: &mut Emitter, t: Type, v: f64) -> Value {
    e.float_const(t, v)
}

/// `a * b + c`, fused where the host has FMA.
fn mul_add(e: &mut Emitter, a: Value, b: Value, c0: Value) -> Value {
    if e.fma {
        e.b.ins().fma(a, b, c0)
    } else {
        let p = e.b.ins().fmul(a, b);
        e.b.ins().fadd(p, c0)
    }
}

fn bitcast_flags(t: Type) -> MemFlagsData {
    if t.is_vector() {
        MemFlagsData::new().with_endianness(cranelift_codegen::ir::Endianness::Little)
    } else {
        MemFlagsData::new()
    }
}

/// e^x for f32 / f32x4.
pub(crate) fn exp(e: &mut Emitter, x: Value) -> Value {
    let t = ty(e, x);
    let int_t = if t.is_vector() {
        types::I32X4
    } else {
        types::I32
    };
    let hi = c(e, t, 88.376_26);
    let lo = c(e, t, -87.336_55);
    let x = e.b.ins().fmin(x, hi);
    let x = e.b.ins().fmax(x, lo);
    let log2e = c(e, t, std::f64::consts::LOG2_E);
    let fx = e.b.ins().fmul(x, log2e);
    let n = e.b.ins().nearest(fx);
    // r = x - n*ln2, in two steps so the product is exact.
    let c1 = c(e, t, -0.693_359_375);
    let c2 = c(e, t, 2.121_944_4e-4);
    let r = mul_add(e, n, c1, x);
    let r = mul_add(e, n, c2, r);
    let mut p = c(e, t, 1.987_569_15e-4);
    for k in [
        1.398_199_95e-3,
        8.333_451_9e-3,
        4.166_579_6e-2,
        1.666_666_55e-1,
        5.000_000_1e-1,
    ] {
        let k = c(e, t, k);
        p = mul_add(e, p, r, k);
    }
    let r2 = e.b.ins().fmul(r, r);
    let one = c(e, t, 1.0);
    let r1 = e.b.ins().fadd(r, one);
    let y = mul_add(e, p, r2, r1);
    // 2^n by building the exponent field. `n` is an integer in [-126, 127] here, so
    // the plain truncating conversion is exact (the saturating one costs 7 x86
    // instructions per vector).
    let ni = if t.is_vector() && e.x86 {
        e.b.ins().x86_cvtt2dq(int_t, n)
    } else {
        e.b.ins().fcvt_to_sint_sat(int_t, n)
    };
    let bias = if t.is_vector() {
        let b = e.b.ins().iconst(types::I32, 127);
        e.b.ins().splat(int_t, b)
    } else {
        e.b.ins().iconst(types::I32, 127)
    };
    let biased = e.b.ins().iadd(ni, bias);
    let bits = e.b.ins().ishl_imm_s(biased, 23);
    let scale = e.b.ins().bitcast(t, bitcast_flags(t), bits);
    e.b.ins().fmul(y, scale)
}

/// erf(x) for f32 / f32x4.
pub(crate) fn erf(e: &mut Emitter, x: Value) -> Value {
    let t = ty(e, x);
    let ax = e.b.ins().fabs(x);
    let one = c(e, t, 1.0);
    let p = c(e, t, 0.327_591_1);
    let d = mul_add(e, ax, p, one);
    let tt = e.b.ins().fdiv(one, d);
    let mut poly = c(e, t, 1.061_405_429);
    for k in [-1.453_152_027, 1.421_413_741, -0.284_496_736, 0.254_829_592] {
        let k = c(e, t, k);
        poly = mul_add(e, poly, tt, k);
    }
    poly = e.b.ins().fmul(poly, tt);
    let x2 = e.b.ins().fmul(ax, ax);
    let nx2 = e.b.ins().fneg(x2);
    let ex = exp(e, nx2);
    let pe = e.b.ins().fmul(poly, ex);
    let y = e.b.ins().fsub(one, pe);
    // Give y the sign of x.
    let zero = c(e, t, 0.0);
    let neg = e.b.ins().fcmp(FloatCC::LessThan, x, zero);
    let ny = e.b.ins().fneg(y);
    if t.is_vector() {
        let m = e.b.ins().bitcast(t, bitcast_flags(t), neg);
        e.b.ins().bitselect(m, ny, y)
    } else {
        e.b.ins().select(neg, ny, y)
    }
}

/// tanh(x) = 1 - 2 / (e^{2x} + 1) for f32 / f32x4.
pub(crate) fn tanh(e: &mut Emitter, x: Value) -> Value {
    let t = ty(e, x);
    let two = c(e, t, 2.0);
    let one = c(e, t, 1.0);
    let x2 = e.b.ins().fmul(x, two);
    let ex = exp(e, x2);
    let d = e.b.ins().fadd(ex, one);
    let q = e.b.ins().fdiv(two, d);
    e.b.ins().fsub(one, q)
}
