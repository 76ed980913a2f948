//! Low-bit floating-point formats: FP8 (E4M3 "fn", E5M2), FP6 (E3M2, E2M3), FP4 (E2M1)
//! and the MX block scale E8M0, with bit-exact encode/decode.
//!
//! Every code of every format decodes to exactly one `f32` (all of them are exactly
//! representable), and [`FloatFormat::encode`] rounds to nearest, ties to even, so that
//! `encode(decode(c)) == c` for every non-NaN code.
//!
//! Special values, per format:
//!
//! | format | bias | max     | min normal | min subnormal | specials                          |
//! |--------|------|---------|------------|---------------|-----------------------------------|
//! | E4M3   | 7    | 448     | 2^-6       | 2^-9          | NaN = S.1111.111, no infinities   |
//! | E5M2   | 15   | 57344   | 2^-14      | 2^-16         | IEEE infinities and NaNs          |
//! | E3M2   | 3    | 28      | 0.25       | 0.0625        | none                              |
//! | E2M3   | 1    | 7.5     | 1          | 0.125         | none                              |
//! | E2M1   | 1    | 6       | 1          | 0.5           | none                              |
//! | E8M0   | 127  | 2^127   | 2^-127     | none          | 0xFF = NaN, no zero, no sign      |
//!
//! Choices where the formats have no natural answer:
//!
//! * FP6 and FP4 have no NaN: a NaN input encodes to +0. They have no infinity either:
//!   ±Inf and every overflow clamp to ±max whatever `saturate` says.
//! * E8M0 has no zero and no sign: NaN, zero and negative inputs encode to the NaN code
//!   0xFF. Positive values go to the nearest power of two, an exact midpoint
//!   `1.5 * 2^k` going up; finite values clamp to `[2^-127, 2^127]`.

use std::fmt;

/// A low-bit float format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FloatFormat {
    /// FP8 E4M3 "fn" (bias 7, max 448, NaN = S.1111.111, no infinities).
    E4M3,
    /// FP8 E5M2 (bias 15, max 57344, IEEE infinities and NaNs).
    E5M2,
    /// FP6 E3M2 (bias 3, max 28, no specials).
    E3M2,
    /// FP6 E2M3 (bias 1, max 7.5, no specials).
    E2M3,
    /// FP4 E2M1 (bias 1, max 6, no specials).
    E2M1,
    /// MX scale E8M0 (bias 127, unsigned powers of two 2^-127..2^127, 0xFF = NaN).
    E8M0,
}

/// Exactly `2^k` as an f64; every exponent used here (-149..=128) is a normal f64.
fn pow2(k: i32) -> f64 {
    f64::from_bits(((k + 1023) as u64) << 52)
}

/// `floor(log2 |a|)` of a finite, nonzero f64 that came from an f32 (so it is normal).
fn floor_log2(a: f64) -> i32 {
    ((a.to_bits() >> 52) & 0x7ff) as i32 - 1023
}

impl FloatFormat {
    /// Name in the textual IR.
    pub fn name(self) -> &'static str {
        match self {
            FloatFormat::E4M3 => "e4m3",
            FloatFormat::E5M2 => "e5m2",
            FloatFormat::E3M2 => "e3m2",
            FloatFormat::E2M3 => "e2m3",
            FloatFormat::E2M1 => "e2m1",
            FloatFormat::E8M0 => "e8m0",
        }
    }

    /// Parse a textual name.
    pub fn from_name(s: &str) -> Option<FloatFormat> {
        [
            FloatFormat::E4M3,
            FloatFormat::E5M2,
            FloatFormat::E3M2,
            FloatFormat::E2M3,
            FloatFormat::E2M1,
            FloatFormat::E8M0,
        ]
        .into_iter()
        .find(|f| f.name() == s)
    }

    /// Total bits of one code.
    pub fn bits(self) -> u32 {
        match self {
            FloatFormat::E4M3 | FloatFormat::E5M2 | FloatFormat::E8M0 => 8,
            FloatFormat::E3M2 | FloatFormat::E2M3 => 6,
            FloatFormat::E2M1 => 4,
        }
    }

    /// Number of exponent bits.
    pub fn exp_bits(self) -> u32 {
        match self {
            FloatFormat::E4M3 => 4,
            FloatFormat::E5M2 => 5,
            FloatFormat::E3M2 => 3,
            FloatFormat::E2M3 | FloatFormat::E2M1 => 2,
            FloatFormat::E8M0 => 8,
        }
    }

    /// Number of explicit mantissa bits.
    pub fn man_bits(self) -> u32 {
        match self {
            FloatFormat::E4M3 | FloatFormat::E2M3 => 3,
            FloatFormat::E5M2 | FloatFormat::E3M2 => 2,
            FloatFormat::E2M1 => 1,
            FloatFormat::E8M0 => 0,
        }
    }

    /// Exponent bias.
    pub fn bias(self) -> i32 {
        match self {
            FloatFormat::E4M3 => 7,
            FloatFormat::E5M2 => 15,
            FloatFormat::E3M2 => 3,
            FloatFormat::E2M3 | FloatFormat::E2M1 => 1,
            FloatFormat::E8M0 => 127,
        }
    }

    /// Number of distinct codes, `2^bits()`.
    pub fn code_count(self) -> u32 {
        1 << self.bits()
    }

    /// True when the format has a sign bit (all but E8M0).
    fn has_sign(self) -> bool {
        self != FloatFormat::E8M0
    }

    /// Mask of the meaningful code bits.
    fn code_mask(self) -> u8 {
        (self.code_count() - 1) as u8
    }

    /// The sign bit of a code (0 for E8M0, which is unsigned).
    fn sign_bit(self) -> u8 {
        if self.has_sign() {
            1 << (self.bits() - 1)
        } else {
            0
        }
    }

    /// Largest finite magnitude code (sign bit clear).
    fn max_code(self) -> u8 {
        match self {
            // S.1111.111 is NaN, so the top mantissa value is one below.
            FloatFormat::E4M3 => 0x7E,
            // Exponent all ones is Inf/NaN.
            FloatFormat::E5M2 => 0x7B,
            // 0xFF is NaN.
            FloatFormat::E8M0 => 0xFE,
            other => other.sign_bit() - 1,
        }
    }

    /// The NaN code used when encoding a NaN, or `None` when the format has none.
    fn nan_code(self, negative: bool) -> Option<u8> {
        let sign = if negative { 0x80 } else { 0 };
        match self {
            FloatFormat::E4M3 | FloatFormat::E5M2 => Some(0x7F | sign),
            FloatFormat::E8M0 => Some(0xFF),
            _ => None,
        }
    }

    /// Largest finite value.
    pub fn max_value(self) -> f32 {
        self.decode(self.max_code())
    }

    /// Smallest positive normal value. For E8M0, whose every code is a normal power of
    /// two, this is its smallest value 2^-127.
    pub fn min_normal(self) -> f32 {
        if self == FloatFormat::E8M0 {
            return pow2(-127) as f32;
        }
        pow2(1 - self.bias()) as f32
    }

    /// Smallest positive subnormal value; `None` for E8M0, which has no subnormals.
    pub fn min_subnormal(self) -> Option<f32> {
        if self == FloatFormat::E8M0 {
            return None;
        }
        Some(pow2(1 - self.bias() - self.man_bits() as i32) as f32)
    }

    /// `floor(log2(max_value()))`: the exponent of the largest power of two the format
    /// holds, as used for MX shared scales (E4M3: 8, E5M2: 15, E3M2: 4, E2M3: 2, E2M1: 2).
    pub fn emax(self) -> i32 {
        floor_log2(f64::from(self.max_value()))
    }

    /// True when `code` (only its low `bits()` bits count) is a NaN.
    pub fn is_nan_code(self, code: u8) -> bool {
        let c = code & self.code_mask();
        match self {
            FloatFormat::E4M3 => c & 0x7F == 0x7F,
            FloatFormat::E5M2 => c & 0x7F > 0x7C,
            FloatFormat::E8M0 => c == 0xFF,
            _ => false,
        }
    }

    /// The exact value of a code. Only the low `bits()` bits of `code` are used, so
    /// higher bits of a 6- or 4-bit code are ignored.
    pub fn decode(self, code: u8) -> f32 {
        let c = code & self.code_mask();
        if self.is_nan_code(c) {
            return f32::NAN;
        }
        if self == FloatFormat::E8M0 {
            return pow2(i32::from(c) - 127) as f32;
        }
        let m = self.man_bits();
        let negative = c & self.sign_bit() != 0;
        let mag = c & !self.sign_bit();
        let e = i32::from(mag >> m);
        let man = i32::from(mag & ((1 << m) - 1));
        let v = if self == FloatFormat::E5M2 && e == 31 {
            // Mantissa is zero here; nonzero ones were caught as NaN above.
            f64::INFINITY
        } else if e == 0 {
            f64::from(man) * pow2(1 - self.bias() - m as i32)
        } else {
            f64::from((1 << m) + man) * pow2(e - self.bias() - m as i32)
        };
        // Every value is exactly representable in f32, so this cast does not round.
        let v = v as f32;
        if negative {
            -v
        } else {
            v
        }
    }

    /// Encode `x`, rounding to nearest with ties to even.
    ///
    /// Overflow (a value whose rounded magnitude exceeds [`max_value`](Self::max_value))
    /// and infinite inputs:
    ///
    /// * E4M3: ±max when `saturate`, otherwise NaN (0x7F / 0xFF);
    /// * E5M2: ±max when `saturate`, otherwise ±Inf (0x7C / 0xFC);
    /// * E3M2, E2M3, E2M1: always ±max (no specials to overflow to);
    /// * E8M0: finite values always clamp to 2^127; +Inf gives 0xFE when `saturate`,
    ///   otherwise NaN (0xFF).
    ///
    /// NaN inputs give the NaN code (0x7F with the input's sign for FP8, 0xFF for E8M0)
    /// and +0 for FP6/FP4, which have no NaN. Magnitudes at or below half the smallest
    /// subnormal round to zero, keeping the sign. For E8M0, zero and negative inputs have
    /// no code and give NaN (0xFF); see the module docs for its rounding.
    pub fn encode(self, x: f32, saturate: bool) -> u8 {
        if self == FloatFormat::E8M0 {
            return encode_e8m0(x, saturate);
        }
        let negative = x.is_sign_negative();
        let sign = if negative { self.sign_bit() } else { 0 };
        if x.is_nan() {
            return self.nan_code(negative).unwrap_or(0);
        }
        let overflow = || -> u8 {
            match self {
                FloatFormat::E4M3 if !saturate => 0x7F | sign,
                FloatFormat::E5M2 if !saturate => 0x7C | sign,
                _ => self.max_code() | sign,
            }
        };
        if x.is_infinite() {
            return overflow();
        }
        let m = self.man_bits() as i32;
        let a = f64::from(x.abs());
        // `a / q` below is exact (q is a power of two and nothing under- or overflows),
        // so the only rounding is the explicit ties-to-even one.
        let emin = 1 - self.bias();
        let (q, base) = if a < pow2(emin) {
            // Subnormal range (zero included): the code magnitude is the multiple of
            // the subnormal step; a count of 2^m lands on the smallest normal code.
            (pow2(emin - m), 0i64)
        } else {
            // Normal range: code = ((e + bias) << m) + (n - 2^m), with n in
            // [2^m, 2^(m+1)]; n = 2^(m+1) carries into the exponent as it should.
            let e = floor_log2(a);
            (pow2(e - m), i64::from(e + self.bias() - 1) << m)
        };
        let n = (a / q).round_ties_even() as i64;
        let mag = base + n;
        if mag > i64::from(self.max_code()) {
            return overflow();
        }
        mag as u8 | sign
    }
}

/// E8M0 encoding: nearest power of two, exact midpoints (1.5 * 2^k) going up.
fn encode_e8m0(x: f32, saturate: bool) -> u8 {
    if x.is_nan() || x <= 0.0 {
        return 0xFF;
    }
    if x.is_infinite() {
        return if saturate { 0xFE } else { 0xFF };
    }
    let a = f64::from(x);
    let mut k = floor_log2(a);
    // a / 2^k is in [1, 2); at or above 1.5 the upper power of two is nearer (or tied).
    if a / pow2(k) >= 1.5 {
        k += 1;
    }
    (k.clamp(-127, 127) + 127) as u8
}

/// How ONNX `Cast` (opset 24's `round_mode`) rounds a value that is not a power of two
/// to E8M0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum E8M0Rounding {
    /// `up`, ONNX's default: to the next power of two above (away from zero).
    Up,
    /// `down`: to the power of two below (toward zero).
    Down,
    /// `nearest`: to the nearer power of two, an exact midpoint `1.5 * 2^k` going up.
    Nearest,
}

impl E8M0Rounding {
    /// The mode an ONNX `round_mode` string names.
    pub fn from_onnx(s: &str) -> Option<E8M0Rounding> {
        match s {
            "up" => Some(E8M0Rounding::Up),
            "down" => Some(E8M0Rounding::Down),
            "nearest" => Some(E8M0Rounding::Nearest),
            _ => None,
        }
    }
}

/// E8M0 encoding with ONNX `Cast` semantics (opset 24): a positive finite `x` goes to
/// `2^k` with `k` picked by `round`. A result above 2^127 (and +Inf) gives 2^127 when
/// `saturate`, otherwise NaN (0xFF); zero, and results below 2^-127, give 2^-127 (code
/// 0) when `saturate`, otherwise NaN. NaN gives NaN; negative values, which ONNX leaves
/// unspecified, give NaN too.
pub fn encode_e8m0_rounded(x: f64, saturate: bool, round: E8M0Rounding) -> u8 {
    let clamp = |too_big: bool| match (saturate, too_big) {
        (false, _) => 0xFF,
        (true, true) => 0xFE,
        (true, false) => 0x00,
    };
    if x.is_nan() || x < 0.0 {
        return 0xFF;
    }
    if x.is_infinite() {
        return clamp(true);
    }
    // Far below 2^-127 (f64 subnormals included) every mode but `up` underflows, and
    // `up` lands on 2^-127.
    if x < pow2(-200) {
        return match round {
            E8M0Rounding::Up if x > 0.0 => 0x00,
            _ => clamp(false),
        };
    }
    let mut k = floor_log2(x);
    let frac = x / pow2(k); // exact, in [1, 2)
    match round {
        E8M0Rounding::Up if frac > 1.0 => k += 1,
        E8M0Rounding::Nearest if frac >= 1.5 => k += 1,
        _ => {}
    }
    match k {
        k if k > 127 => clamp(true),
        k if k < -127 => clamp(false),
        k => (k + 127) as u8,
    }
}

/// The E8M0 code of the MX shared scale `X = 2^(floor(log2 amax) - emax)` for a block
/// whose largest magnitude is `amax`, where `emax` is [`FloatFormat::emax`] of the
/// element format. Dividing every element of the block by `X` leaves magnitudes below
/// `2^(emax + 1)`.
///
/// `amax` is taken by magnitude. A zero `amax` gives code 0 (2^-127); NaN or infinite
/// `amax` gives the NaN code 0xFF. The exponent is clamped to [-127, 127].
pub fn mx_shared_exponent(amax: f32, elem: FloatFormat) -> u8 {
    if !amax.is_finite() {
        return 0xFF;
    }
    if amax == 0.0 {
        return 0;
    }
    let e = floor_log2(f64::from(amax.abs())) - elem.emax();
    (e.clamp(-127, 127) + 127) as u8
}

impl fmt::Display for FloatFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [FloatFormat; 6] = [
        FloatFormat::E4M3,
        FloatFormat::E5M2,
        FloatFormat::E3M2,
        FloatFormat::E2M3,
        FloatFormat::E2M1,
        FloatFormat::E8M0,
    ];

    #[test]
    fn e8m0_round_modes() {
        use E8M0Rounding::*;
        let enc = |x: f64, m| encode_e8m0_rounded(x, true, m);
        // 1.1 lies between 2^0 and 2^1; 1.5 is the midpoint; 2^-3 is exact.
        assert_eq!(
            [enc(1.1, Up), enc(1.1, Down), enc(1.1, Nearest)],
            [128, 127, 127]
        );
        assert_eq!(
            [enc(1.5, Up), enc(1.5, Down), enc(1.5, Nearest)],
            [128, 127, 128]
        );
        assert_eq!(
            [enc(0.125, Up), enc(0.125, Down), enc(0.124, Up)],
            [124, 124, 124]
        );
        // Zero and underflow: 2^-127 when saturating, NaN otherwise.
        assert_eq!(enc(0.0, Up), 0);
        assert_eq!(encode_e8m0_rounded(0.0, false, Up), 0xFF);
        assert_eq!(enc(1e-300, Up), 0);
        assert_eq!(encode_e8m0_rounded(1e-300, false, Down), 0xFF);
        // Overflow and infinities.
        assert_eq!(enc(2f64.powi(127) * 1.2, Up), 0xFE);
        assert_eq!(encode_e8m0_rounded(2f64.powi(127) * 1.2, false, Up), 0xFF);
        assert_eq!(encode_e8m0_rounded(2f64.powi(127) * 1.2, false, Down), 0xFE);
        assert_eq!(enc(f64::INFINITY, Nearest), 0xFE);
        assert_eq!([enc(f64::NAN, Up), enc(-1.0, Up)], [0xFF, 0xFF]);
        assert_eq!(E8M0Rounding::from_onnx("nearest"), Some(Nearest));
        assert_eq!(E8M0Rounding::from_onnx("odd"), None);
    }

    /// The signed formats (everything but E8M0).
    fn signed() -> impl Iterator<Item = FloatFormat> {
        ALL.into_iter().filter(|f| *f != FloatFormat::E8M0)
    }

    /// The next f32 towards +inf / -inf (f32::next_up is newer than the MSRV).
    fn next_up(x: f32) -> f32 {
        assert!(x.is_finite() && x > 0.0);
        f32::from_bits(x.to_bits() + 1)
    }
    fn next_down(x: f32) -> f32 {
        assert!(x.is_finite() && x > 0.0);
        f32::from_bits(x.to_bits() - 1)
    }

    #[test]
    fn names_round_trip() {
        for f in ALL {
            assert_eq!(FloatFormat::from_name(f.name()), Some(f));
            assert_eq!(f.to_string(), f.name());
        }
        assert_eq!(FloatFormat::from_name("e4m4"), None);
    }

    #[test]
    fn layout_matches_table() {
        // (format, bias, max, min normal, min subnormal, emax)
        let table: [(FloatFormat, i32, f32, f32, Option<f32>, i32); 6] = [
            (
                FloatFormat::E4M3,
                7,
                448.0,
                2f32.powi(-6),
                Some(2f32.powi(-9)),
                8,
            ),
            (
                FloatFormat::E5M2,
                15,
                57344.0,
                2f32.powi(-14),
                Some(2f32.powi(-16)),
                15,
            ),
            (FloatFormat::E3M2, 3, 28.0, 0.25, Some(0.0625), 4),
            (FloatFormat::E2M3, 1, 7.5, 1.0, Some(0.125), 2),
            (FloatFormat::E2M1, 1, 6.0, 1.0, Some(0.5), 2),
            (
                FloatFormat::E8M0,
                127,
                2f32.powi(127),
                f32::from_bits(1 << 22),
                None,
                127,
            ),
        ];
        for (f, bias, max, min_normal, min_sub, emax) in table {
            assert_eq!(f.bias(), bias, "{f}");
            assert_eq!(f.max_value(), max, "{f}");
            assert_eq!(f.min_normal(), min_normal, "{f}");
            assert_eq!(f.min_subnormal(), min_sub, "{f}");
            assert_eq!(f.emax(), emax, "{f}");
            assert_eq!(f.code_count(), 1 << f.bits(), "{f}");
            let sign = u32::from(f != FloatFormat::E8M0);
            assert_eq!(sign + f.exp_bits() + f.man_bits(), f.bits(), "{f}");
            // The table's extremes are actual codes, and nothing finite is larger.
            let finite: Vec<f32> = (0..f.code_count())
                .map(|c| f.decode(c as u8))
                .filter(|v| v.is_finite())
                .collect();
            assert!(finite.contains(&max), "{f}");
            assert!(finite.iter().all(|v| v.abs() <= max), "{f}");
            let smallest = finite
                .iter()
                .filter(|v| **v > 0.0)
                .fold(f32::INFINITY, |a, &b| a.min(b));
            assert_eq!(smallest, min_sub.unwrap_or(min_normal), "{f}");
        }
        // E8M0's extreme codes.
        assert_eq!(FloatFormat::E8M0.decode(0), f32::from_bits(1 << 22));
        assert_eq!(FloatFormat::E8M0.decode(127), 1.0);
        assert_eq!(FloatFormat::E8M0.decode(0xFE), 2f32.powi(127));
    }

    #[test]
    fn e2m1_value_set() {
        let f = FloatFormat::E2M1;
        let pos: Vec<f32> = (0..8u8).map(|c| f.decode(c)).collect();
        assert_eq!(pos, [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0]);
        let neg: Vec<f32> = (8..16u8).map(|c| f.decode(c)).collect();
        assert_eq!(neg, [-0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0]);
        assert!(f.decode(8).is_sign_negative());
    }

    #[test]
    fn encode_decode_round_trip_every_code() {
        for f in ALL {
            for c in 0..f.code_count() {
                let c = c as u8;
                if f.is_nan_code(c) {
                    continue;
                }
                let v = f.decode(c);
                // Non-saturating encoding keeps infinities; saturating maps them to max,
                // so E5M2's infinity codes only round-trip without saturation.
                assert_eq!(f.encode(v, false), c, "{f} code {c:#04x} value {v}");
                if v.is_finite() {
                    assert_eq!(f.encode(v, true), c, "{f} code {c:#04x} value {v}");
                }
            }
        }
    }

    #[test]
    fn special_codes() {
        for f in ALL {
            let nans = (0..f.code_count())
                .filter(|&c| f.is_nan_code(c as u8))
                .count();
            let expected = match f {
                FloatFormat::E4M3 => 2,
                FloatFormat::E5M2 => 6,
                FloatFormat::E8M0 => 1,
                _ => 0,
            };
            assert_eq!(nans, expected, "{f}");
            for c in 0..f.code_count() {
                let c = c as u8;
                assert_eq!(f.decode(c).is_nan(), f.is_nan_code(c), "{f} {c:#04x}");
                let inf = f == FloatFormat::E5M2 && c & 0x7F == 0x7C;
                assert_eq!(f.decode(c).is_infinite(), inf, "{f} {c:#04x}");
            }
        }
        assert!(FloatFormat::E4M3.is_nan_code(0x7F) && FloatFormat::E4M3.is_nan_code(0xFF));
        assert_eq!(FloatFormat::E5M2.decode(0x7C), f32::INFINITY);
        assert_eq!(FloatFormat::E5M2.decode(0xFC), f32::NEG_INFINITY);
        assert!(FloatFormat::E8M0.decode(0xFF).is_nan());
    }

    #[test]
    fn decode_ignores_high_bits() {
        for f in [FloatFormat::E3M2, FloatFormat::E2M3, FloatFormat::E2M1] {
            for c in 0..=255u8 {
                let low = c & (f.code_count() - 1) as u8;
                assert_eq!(
                    f.decode(c).to_bits(),
                    f.decode(low).to_bits(),
                    "{f} {c:#04x}"
                );
                assert_eq!(f.is_nan_code(c), f.is_nan_code(low));
            }
        }
    }

    #[test]
    fn decode_is_monotone_and_symmetric() {
        for f in signed() {
            let sign = 1u8 << (f.bits() - 1);
            let finite: Vec<u8> = (0..sign).filter(|&c| f.decode(c).is_finite()).collect();
            // Finite positive codes are a contiguous run from zero.
            assert_eq!(finite.len(), usize::from(f.max_code()) + 1, "{f}");
            for w in finite.windows(2) {
                assert!(f.decode(w[0]) < f.decode(w[1]), "{f} {:#04x}", w[0]);
            }
            for c in 0..sign {
                let (p, n) = (f.decode(c), f.decode(c | sign));
                if p.is_nan() {
                    assert!(n.is_nan());
                } else {
                    assert_eq!((-p).to_bits(), n.to_bits(), "{f} {c:#04x}");
                }
            }
        }
        let e8 = FloatFormat::E8M0;
        for c in 0..0xFEu8 {
            assert_eq!(e8.decode(c) * 2.0, e8.decode(c + 1));
        }
    }

    #[test]
    fn ties_go_to_even_and_neighbours_to_nearest() {
        for f in signed() {
            let sign = 1u8 << (f.bits() - 1);
            for lo in 0..f.max_code() {
                let hi = lo + 1;
                let (a, b) = (f64::from(f.decode(lo)), f64::from(f.decode(hi)));
                let mid = (a + b) / 2.0;
                let mid32 = mid as f32;
                assert_eq!(f64::from(mid32), mid, "{f}: midpoint not exact");
                let even = if lo % 2 == 0 { lo } else { hi };
                for sat in [false, true] {
                    assert_eq!(f.encode(mid32, sat), even, "{f} tie {a}/{b}");
                    assert_eq!(f.encode(-mid32, sat), even | sign, "{f} tie -{a}/-{b}");
                    assert_eq!(f.encode(next_down(mid32), sat), lo, "{f} below {mid}");
                    assert_eq!(f.encode(next_up(mid32), sat), hi, "{f} above {mid}");
                    assert_eq!(f.encode(-next_down(mid32), sat), lo | sign, "{f}");
                    assert_eq!(f.encode(-next_up(mid32), sat), hi | sign, "{f}");
                }
            }
        }
        // E8M0 has no mantissa to be even: the midpoint 1.5 * 2^k goes up.
        let e8 = FloatFormat::E8M0;
        for lo in 0..0xFEu8 {
            let mid = (f64::from(e8.decode(lo)) * 1.5) as f32;
            assert_eq!(f64::from(mid), f64::from(e8.decode(lo)) * 1.5);
            assert_eq!(e8.encode(mid, false), lo + 1);
            assert_eq!(e8.encode(next_up(mid), false), lo + 1);
            assert_eq!(e8.encode(next_down(mid), false), lo);
        }
    }

    #[test]
    fn underflow_keeps_sign() {
        for f in signed() {
            let sign = 1u8 << (f.bits() - 1);
            let half = f.min_subnormal().unwrap_or(0.0) / 2.0;
            for x in [half, next_down(half), 1e-30, f32::from_bits(1), 0.0] {
                assert_eq!(f.encode(x, true), 0, "{f} {x}");
                assert_eq!(f.encode(-x, true), sign, "{f} -{x}");
            }
            assert_eq!(f.encode(next_up(half), true), 1, "{f}");
        }
    }

    #[test]
    fn e4m3_overflow() {
        let f = FloatFormat::E4M3;
        for x in [
            448.0 * 1.1,
            1e9,
            f32::INFINITY,
            f32::MAX,
            480.0,
            next_up(464.0),
        ] {
            assert_eq!(f.encode(x, true), 0x7E, "{x}");
            assert_eq!(f.encode(-x, true), 0xFE, "{x}");
            assert_eq!(f.encode(x, false), 0x7F, "{x}");
            assert_eq!(f.encode(-x, false), 0xFF, "{x}");
        }
        // 464 is the midpoint of 448 (mantissa 110) and the NaN slot (111): ties to even.
        assert_eq!(f.encode(464.0, false), 0x7E);
        assert_eq!(f.encode(f32::NAN, false), 0x7F);
        assert_eq!(f.encode(-f32::NAN, true), 0xFF);
    }

    #[test]
    fn e5m2_overflow() {
        let f = FloatFormat::E5M2;
        for x in [57344.0 * 2.0, 1e9, f32::INFINITY, f32::MAX, 61440.0] {
            assert_eq!(f.encode(x, true), 0x7B, "{x}");
            assert_eq!(f.encode(-x, true), 0xFB, "{x}");
            assert_eq!(f.encode(x, false), 0x7C, "{x}");
            assert_eq!(f.encode(-x, false), 0xFC, "{x}");
        }
        // Just below the max/2^16 midpoint still rounds to max.
        assert_eq!(f.encode(next_down(61440.0), false), 0x7B);
        assert_eq!(f.encode(f32::NAN, false), 0x7F);
        assert_eq!(f.encode(-f32::NAN, true), 0xFF);
        assert!(f.is_nan_code(f.encode(f32::NAN, true)));
    }

    #[test]
    fn small_formats_clamp() {
        for f in [FloatFormat::E3M2, FloatFormat::E2M3, FloatFormat::E2M1] {
            let sign = 1u8 << (f.bits() - 1);
            let max = sign - 1;
            for x in [f.max_value() * 1.1, 1e9, f32::INFINITY, f32::MAX] {
                for sat in [false, true] {
                    assert_eq!(f.encode(x, sat), max, "{f} {x}");
                    assert_eq!(f.encode(-x, sat), max | sign, "{f} -{x}");
                }
            }
            // No NaN code: NaN encodes to +0.
            assert_eq!(f.encode(f32::NAN, false), 0);
            assert_eq!(f.encode(-f32::NAN, true), 0);
        }
        // E2M1 spot checks around its uneven grid.
        let f = FloatFormat::E2M1;
        assert_eq!(f.decode(f.encode(5.0, false)), 4.0);
        assert_eq!(f.decode(f.encode(5.01, false)), 6.0);
        assert_eq!(f.decode(f.encode(2.5, false)), 2.0);
        assert_eq!(f.decode(f.encode(0.75, false)), 1.0);
        assert_eq!(f.decode(f.encode(0.25, false)), 0.0);
        assert_eq!(f.decode(f.encode(-1.25, false)), -1.0);
    }

    #[test]
    fn e8m0_rules() {
        let f = FloatFormat::E8M0;
        for x in [0.0, -0.0, -1.0, f32::NEG_INFINITY, f32::NAN] {
            assert_eq!(f.encode(x, false), 0xFF, "{x}");
            assert_eq!(f.encode(x, true), 0xFF, "{x}");
        }
        assert_eq!(f.encode(f32::INFINITY, false), 0xFF);
        assert_eq!(f.encode(f32::INFINITY, true), 0xFE);
        assert_eq!(f.encode(f32::MAX, false), 0xFE);
        assert_eq!(f.encode(f32::from_bits(1), false), 0);
        assert_eq!(f.encode(1.0, false), 127);
        assert_eq!(f.encode(2.9, false), 128);
        assert_eq!(f.encode(3.0, false), 129);
        assert_eq!(f.encode(0.7, false), 126);
        assert_eq!(f.encode(0.8, false), 127);
    }

    #[test]
    fn mx_scales_fit_the_element_format() {
        assert_eq!(mx_shared_exponent(0.0, FloatFormat::E4M3), 0);
        assert_eq!(mx_shared_exponent(-0.0, FloatFormat::E2M1), 0);
        assert_eq!(mx_shared_exponent(f32::NAN, FloatFormat::E4M3), 0xFF);
        assert_eq!(mx_shared_exponent(f32::INFINITY, FloatFormat::E4M3), 0xFF);
        assert_eq!(mx_shared_exponent(448.0, FloatFormat::E4M3), 127);
        assert_eq!(mx_shared_exponent(6.0, FloatFormat::E2M1), 127);
        assert_eq!(mx_shared_exponent(8.0, FloatFormat::E2M1), 128);
        assert_eq!(mx_shared_exponent(f32::from_bits(1), FloatFormat::E5M2), 0);
        assert_eq!(mx_shared_exponent(f32::MAX, FloatFormat::E2M1), 125 + 127);

        // xorshift64: a fixed, dependency-free stream of f32 bit patterns.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let amax = f32::from_bits((state as u32) & 0x7FFF_FFFF);
            if !amax.is_finite() || amax == 0.0 {
                continue;
            }
            for elem in signed() {
                let code = mx_shared_exponent(amax, elem);
                assert_ne!(code, 0xFF);
                let x = f64::from(FloatFormat::E8M0.decode(code));
                let r = f64::from(amax) / x;
                assert!(
                    r < pow2(elem.emax() + 1),
                    "{elem} amax {amax:e} scale {x:e}"
                );
                // Unless the scale was clamped at 2^-127, the largest element uses the
                // top binade of the element format.
                if code > 0 {
                    assert!(r >= pow2(elem.emax()), "{elem} amax {amax:e} scale {x:e}");
                }
            }
        }
    }
}
