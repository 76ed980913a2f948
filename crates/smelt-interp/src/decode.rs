//! Decoding encoded constants back to their logical dtype.

use smelt_ir::{Constant, DType, Encoding, Granularity, Tensor};

use crate::error::InterpError;
use crate::ops::cast::cast;
use crate::ops::quant::expand_param;
use crate::value::{array_from, Value};

/// The logical tensor of a constant: plain constants as stored; `BlockwiseInt` as
/// `(q − zero_point) · scale`, `Float` as `decode(code) · scale` and `Mx` as
/// `decode(code) · 2^e`, with scales laid out per the encoding's granularity.
/// Products are computed in f64 and rounded once to the logical dtype.
pub fn decode_constant(c: &Constant) -> Result<Tensor, InterpError> {
    let enc = c.encoding();
    let fail = |msg: String| InterpError::Decode {
        encoding: enc.to_string(),
        msg,
    };
    let part = |name: &str| {
        c.part(name)
            .ok_or_else(|| fail(format!("missing part `{name}`")))
    };
    let numbers = |name: &str| -> Result<(Vec<f64>, Vec<usize>), InterpError> {
        let t = part(name)?;
        let v = Value::from_tensor(t).map_err(|e| fail(e.0))?;
        let v = cast(&v, DType::F64, true).map_err(|e| fail(e.0))?;
        Ok((
            v.to_f64_vec(name).map_err(|e| fail(e.0))?,
            t.shape().to_vec(),
        ))
    };
    let shape = c.shape().to_vec();
    let lay_out = |values: &[f64], pshape: &[usize], g: Granularity, what: &str| {
        let (axis, block) = match g {
            Granularity::Tensor => (0, 0),
            Granularity::Channel { axis } => (axis, 0),
            Granularity::Block { axis, size } => (axis, size as usize),
        };
        expand_param(values, pshape, &shape, axis, block, what).map_err(|e| fail(e.0))
    };
    let logical: Vec<f64> = match enc {
        Encoding::Plain => return part("data").cloned(),
        Encoding::BlockwiseInt {
            granularity,
            zero_point,
            ..
        } => {
            let (q, _) = numbers("codes")?;
            let (s, sshape) = numbers("scales")?;
            let s = lay_out(&s, &sshape, *granularity, "scales")?;
            let z = if *zero_point {
                let (z, zshape) = numbers("zero_points")?;
                lay_out(&z, &zshape, *granularity, "zero_points")?
            } else {
                vec![0.0; q.len()]
            };
            q.iter()
                .zip(&s)
                .zip(&z)
                .map(|((&q, &s), &z)| (q - z) * s)
                .collect()
        }
        Encoding::Float { granularity, .. } => {
            let (q, _) = numbers("codes")?;
            let (s, sshape) = numbers("scales")?;
            let s = lay_out(&s, &sshape, *granularity, "scales")?;
            q.iter().zip(&s).map(|(&q, &s)| q * s).collect()
        }
        Encoding::Mx { axis, block, .. } => {
            let (q, _) = numbers("codes")?;
            // E8M0 scales decode to powers of two through the same cast as any code.
            let (s, sshape) = numbers("scales")?;
            let s = lay_out(
                &s,
                &sshape,
                Granularity::Block {
                    axis: *axis,
                    size: *block,
                },
                "scales",
            )?;
            q.iter().zip(&s).map(|(&q, &s)| q * s).collect()
        }
        other => return Err(InterpError::UnsupportedEncoding(other.to_string())),
    };
    let wide = Value::F64(array_from(&shape, logical).map_err(|e| fail(e.0))?);
    let v = cast(&wide, c.dtype(), true).map_err(|e| fail(e.0))?;
    v.to_tensor().map_err(|e| fail(e.0))
}
