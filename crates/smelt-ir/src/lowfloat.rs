//! Low-bit floating-point formats: FP8 (E4M3 "fn", E5M2), FP6 (E3M2, E2M3), FP4 (E2M1)
//! and the MX block scale E8M0, with bit-exact encode/decode.
//!
//! PLACEHOLDER: being implemented.

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
}

impl fmt::Display for FloatFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
