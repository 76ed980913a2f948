//! A direct evaluator of [`KernelProgram`]s: every buffer as `f64` values, every
//! statement run as written, the schedule ignored.
//!
//! It checks lowering on its own (graph interpreter vs this evaluator) so that a
//! backend mismatch can be pinned on the backend. Values are rounded to their dtype
//! after every operation (f32 arithmetic is done in f64 and rounded, integers wrap to
//! their width), which matches compiled f32 code to within a few ulps.

use std::collections::HashMap;

use smelt_ir::{DType, Tensor};

use crate::error::LowerError;
use crate::ir::*;

/// Bind the program's named dims from the shapes of its inputs. Every named dim must
/// appear alone (factor 1) in some input dim; all appearances must agree, and known
/// dims must match exactly.
pub fn bind_dims(
    program: &KernelProgram,
    shapes: &[&[usize]],
) -> Result<HashMap<String, u64>, LowerError> {
    if shapes.len() != program.inputs.len() {
        return Err(LowerError::Input(format!(
            "expected {} inputs, got {}",
            program.inputs.len(),
            shapes.len()
        )));
    }
    let mut dims: HashMap<String, u64> = HashMap::new();
    for (n, (&b, shape)) in program.inputs.iter().zip(shapes).enumerate() {
        let buf = program.buffer(b);
        if buf.shape.len() != shape.len() {
            return Err(LowerError::Input(format!(
                "input {n} `{}` has rank {}, expected {}",
                buf.name,
                shape.len(),
                buf.shape.len()
            )));
        }
        for (s, &d) in buf.shape.iter().zip(shape.iter()) {
            let d = d as u64;
            match (s.as_known(), s.syms.as_slice()) {
                (Some(k), _) if k != d => {
                    return Err(LowerError::Input(format!(
                        "input {n} `{}` has shape {shape:?}; a dim of {k} was expected where it has {d}",
                        buf.name
                    )))
                }
                (Some(_), _) => {}
                (None, [sym]) if s.factor == 1 => {
                    if let Some(&prev) = dims.get(sym) {
                        if prev != d {
                            return Err(LowerError::Input(format!(
                                "dim ?{sym} is {prev} in one input and {d} in input {n} `{}`",
                                buf.name
                            )));
                        }
                    }
                    dims.insert(sym.clone(), d);
                }
                _ => {}
            }
        }
    }
    for name in program.dims() {
        if !dims.contains_key(&name) {
            return Err(LowerError::Input(format!(
                "dim ?{name} is not the size of any input dim"
            )));
        }
    }
    Ok(dims)
}

/// Run `program` on `inputs` (in the program's input order) and return its outputs.
pub fn evaluate(program: &KernelProgram, inputs: &[Tensor]) -> Result<Vec<Tensor>, LowerError> {
    let shapes: Vec<&[usize]> = inputs.iter().map(|t| t.shape()).collect();
    let dims = bind_dims(program, &shapes)?;
    let dim = |s: &str| dims.get(s).copied();
    let mut store: Vec<Vec<f64>> = vec![vec![]; program.buffers.len()];
    for (i, buf) in program.buffers.iter().enumerate() {
        let numel = buf
            .shape
            .iter()
            .map(|s| s.eval(dim).map(|v| v as usize))
            .try_fold(1usize, |a, d| {
                d.map_err(|d| LowerError::MissingDim {
                    dim: d,
                    buffer: buf.name.clone(),
                })
                .and_then(|d| {
                    a.checked_mul(d)
                        .ok_or_else(|| LowerError::Input(format!("`{}` is too large", buf.name)))
                })
            })?;
        store[i] = match &buf.kind {
            BufferKind::Input(n) => {
                let t = &inputs[*n];
                if t.dtype() != buf.dtype {
                    return Err(LowerError::Input(format!(
                        "input {n} `{}` is {}, expected {}",
                        buf.name,
                        t.dtype(),
                        buf.dtype
                    )));
                }
                t.to_f64_vec()
                    .map_err(|e| LowerError::Input(format!("input {n}: {e}")))?
            }
            BufferKind::Constant { data, .. } => data
                .as_plain()
                .ok_or_else(|| LowerError::Eval(format!("constant `{}` is encoded", buf.name)))?
                .to_f64_vec()
                .map_err(|e| LowerError::Eval(format!("constant `{}`: {e}", buf.name)))?,
            BufferKind::View(_) => vec![],
            BufferKind::Temp | BufferKind::Output(_) => vec![0.0; numel],
        };
    }
    let root: Vec<usize> = (0..program.buffers.len())
        .map(|i| program.root(BufferId(i as u32)).0 as usize)
        .collect();
    for k in &program.kernels {
        let mut m = Machine {
            program,
            kernel: k,
            dims: &dims,
            store: &mut store,
            root: &root,
            vars: vec![0; count_vars(k)],
            locals: vec![0.0; k.locals.len()],
        };
        m.run_kernel()
            .map_err(|e| LowerError::Eval(format!("kernel {}: {e}", k.name)))?;
    }
    program
        .outputs
        .iter()
        .map(|&b| {
            let buf = program.buffer(b);
            let shape: Vec<usize> = buf
                .shape
                .iter()
                .map(|s| s.eval(dim).map(|v| v as usize))
                .collect::<Result<_, _>>()
                .map_err(|d| LowerError::MissingDim {
                    dim: d,
                    buffer: buf.name.clone(),
                })?;
            Tensor::from_f64(buf.dtype, shape, &store[root[b.0 as usize]])
                .map_err(|e| LowerError::Eval(format!("output `{}`: {e}", buf.name)))
        })
        .collect()
}

fn count_vars(k: &Kernel) -> usize {
    fn stmts(s: &[Stmt], m: &mut u32) {
        for st in s {
            match st {
                Stmt::Loop { var, body, .. } => {
                    *m = (*m).max(var.0 + 1);
                    stmts(body, m);
                }
                Stmt::If { then, .. } => stmts(then, m),
                _ => {}
            }
        }
    }
    let mut m = k.loops.iter().map(|l| l.var.0 + 1).max().unwrap_or(0);
    stmts(&k.body, &mut m);
    m as usize
}

struct Machine<'a> {
    program: &'a KernelProgram,
    kernel: &'a Kernel,
    dims: &'a HashMap<String, u64>,
    store: &'a mut Vec<Vec<f64>>,
    root: &'a [usize],
    vars: Vec<i64>,
    locals: Vec<f64>,
}

impl Machine<'_> {
    fn size(&self, s: &Size) -> Result<i64, String> {
        s.eval(|d| self.dims.get(d).copied())
            .map(|v| v as i64)
            .map_err(|d| format!("no size for ?{d}"))
    }

    fn run_kernel(&mut self) -> Result<(), String> {
        let extents: Vec<i64> = self
            .kernel
            .loops
            .iter()
            .map(|l| self.size(&l.extent))
            .collect::<Result<_, _>>()?;
        if extents.contains(&0) {
            return Ok(());
        }
        let mut point = vec![0i64; extents.len()];
        loop {
            for (l, &p) in self.kernel.loops.iter().zip(&point) {
                self.vars[l.var.0 as usize] = p;
            }
            self.stmts(&self.kernel.body)?;
            // Advance the odometer, innermost loop fastest.
            let mut axis = extents.len();
            loop {
                if axis == 0 {
                    return Ok(());
                }
                axis -= 1;
                point[axis] += 1;
                if point[axis] < extents[axis] {
                    break;
                }
                point[axis] = 0;
            }
        }
    }

    fn stmts(&mut self, body: &[Stmt]) -> Result<(), String> {
        for s in body {
            match s {
                Stmt::Assign(l, e) => {
                    let v = self.expr(e)?;
                    let t = self.kernel.locals[l.0 as usize];
                    self.locals[l.0 as usize] = round_to(t, v);
                }
                Stmt::Store(b, i, e) => {
                    let v = self.expr(e)?;
                    let off = self.offset(*b, i)?;
                    let t = self.program.buffer(*b).dtype;
                    let r = self.root[b.0 as usize];
                    *self.store[r]
                        .get_mut(off)
                        .ok_or_else(|| format!("store to b{} at {off} is out of bounds", b.0))? =
                        round_to(t, v);
                }
                Stmt::If { cond, then } => {
                    if self.expr(cond)? != 0.0 {
                        self.stmts(then)?;
                    }
                }
                Stmt::Loop {
                    var, extent, body, ..
                } => {
                    let n = self.size(extent)?;
                    for i in 0..n {
                        self.vars[var.0 as usize] = i;
                        self.stmts(body)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn offset(&mut self, b: BufferId, i: &Index) -> Result<usize, String> {
        let mut off = i.offset;
        for (v, s) in &i.terms {
            off += self.vars[v.0 as usize] * self.size(s)?;
        }
        for (e, s) in &i.dynamic {
            off += self.expr(e)? as i64 * self.size(s)?;
        }
        let len = self.store[self.root[b.0 as usize]].len();
        usize::try_from(off)
            .ok()
            .filter(|&o| o < len)
            .ok_or_else(|| format!("index {off} of b{} is out of bounds (len {len})", b.0))
    }

    fn dtype(&self, e: &Expr) -> DType {
        e.dtype(self.program, self.kernel)
    }

    fn expr(&mut self, e: &Expr) -> Result<f64, String> {
        Ok(match e {
            Expr::Lit(v, t) => round_to(*t, *v),
            Expr::Load(b, i) => {
                let off = self.offset(*b, i)?;
                self.store[self.root[b.0 as usize]][off]
            }
            Expr::Local(l) => self.locals[l.0 as usize],
            Expr::Var(v) => self.vars[v.0 as usize] as f64,
            Expr::Unary(op, a) => {
                let t = self.dtype(a);
                let x = self.expr(a)?;
                let y = match op {
                    UnaryOp::Neg => -x,
                    UnaryOp::Abs => x.abs(),
                    UnaryOp::Exp => x.exp(),
                    UnaryOp::Log => x.ln(),
                    UnaryOp::Sqrt => x.sqrt(),
                    UnaryOp::Tanh => x.tanh(),
                    UnaryOp::Erf => erf(x),
                    UnaryOp::Not => f64::from(x == 0.0),
                };
                round_to(t, y)
            }
            Expr::Binary(op, a, b) => {
                let t = self.dtype(a);
                let (x, y) = (self.expr(a)?, self.expr(b)?);
                let r = match op {
                    BinaryOp::Add => x + y,
                    BinaryOp::Sub => x - y,
                    BinaryOp::Mul => x * y,
                    BinaryOp::Div if t.is_float() => x / y,
                    BinaryOp::Div => {
                        if y == 0.0 {
                            return Err("integer division by zero".into());
                        }
                        (x / y).trunc()
                    }
                    BinaryOp::Pow => x.powf(y),
                    BinaryOp::Max if x.is_nan() || y.is_nan() => f64::NAN,
                    BinaryOp::Min if x.is_nan() || y.is_nan() => f64::NAN,
                    BinaryOp::Max => x.max(y),
                    BinaryOp::Min => x.min(y),
                    BinaryOp::And => f64::from(x != 0.0 && y != 0.0),
                    BinaryOp::Or => f64::from(x != 0.0 || y != 0.0),
                };
                round_to(t, r)
            }
            Expr::Cmp(op, a, b) => {
                let (x, y) = (self.expr(a)?, self.expr(b)?);
                f64::from(match op {
                    CmpOp::Eq => x == y,
                    CmpOp::Lt => x < y,
                    CmpOp::Le => x <= y,
                    CmpOp::Gt => x > y,
                    CmpOp::Ge => x >= y,
                })
            }
            Expr::Select(c, a, b) => {
                if self.expr(c)? != 0.0 {
                    self.expr(a)?
                } else {
                    self.expr(b)?
                }
            }
            Expr::Cast(t, a) => {
                let from = self.dtype(a);
                let x = self.expr(a)?;
                if from.is_float() && !t.is_float() && *t != DType::Bool {
                    round_to(*t, x.trunc())
                } else {
                    round_to(*t, x)
                }
            }
        })
    }
}

/// `v` as a value of dtype `t` would hold it.
fn round_to(t: DType, v: f64) -> f64 {
    match t {
        DType::F32 => v as f32 as f64,
        DType::F16 => f64::from(half::f16::from_f64(v)),
        DType::BF16 => f64::from(half::bf16::from_f64(v)),
        DType::Bool => f64::from(v != 0.0),
        DType::I64 => v as i64 as f64,
        DType::I32 => v as i64 as i32 as f64,
        DType::I16 => v as i64 as i16 as f64,
        DType::I8 => v as i64 as i8 as f64,
        DType::U64 => v as u64 as f64,
        DType::U32 => v as i64 as u32 as f64,
        DType::U16 => v as i64 as u16 as f64,
        DType::U8 => v as i64 as u8 as f64,
        _ => v,
    }
}

/// The error function in f64, accurate to about 1e-15: a Taylor series below 2.5, a
/// continued fraction for erfc up to 6, and 1 beyond (Rust's std has no `erf`). Public
/// so backends can bind the C `erf` symbol to the same function the evaluator uses.
pub fn erf(x: f64) -> f64 {
    // Series for small |x|, continued fraction for erfc at large |x|.
    let ax = x.abs();
    let r = if ax < 2.5 {
        // erf(x) = 2/sqrt(pi) * sum_n (-1)^n x^(2n+1) / (n! (2n+1))
        let mut sum = 0.0;
        let mut term = ax;
        let x2 = ax * ax;
        let mut n = 0.0;
        loop {
            let add = term / (2.0 * n + 1.0);
            sum += add;
            if add.abs() <= 1e-17 * sum.abs() {
                break;
            }
            n += 1.0;
            term *= -x2 / n;
        }
        sum * std::f64::consts::FRAC_2_SQRT_PI
    } else if ax < 6.0 {
        // Lentz's continued fraction for erfc.
        let x2 = ax * ax;
        let mut f = ax;
        let mut c = ax;
        let mut d = 0.0;
        for k in 1..200 {
            let a = k as f64 / 2.0;
            d = ax + a * d;
            d = if d == 0.0 { 1e-300 } else { 1.0 / d };
            c = ax + a / c;
            let delta = c * d;
            f *= delta;
            if (delta - 1.0).abs() < 1e-16 {
                break;
            }
        }
        1.0 - (-x2).exp() / (f * std::f64::consts::PI.sqrt())
    } else {
        1.0
    };
    r.copysign(x)
}

#[cfg(test)]
mod tests {
    use super::erf;

    #[test]
    fn erf_matches_known_values() {
        for (x, want) in [
            (0.0, 0.0),
            (0.5, 0.520_499_877_813_046_5),
            (1.0, 0.842_700_792_949_714_9),
            (2.0, 0.995_322_265_018_952_7),
            (3.0, 0.999_977_909_503_001_4),
            (-1.0, -0.842_700_792_949_714_9),
        ] {
            assert!((erf(x) - want).abs() < 1e-13, "erf({x}) = {}", erf(x));
        }
    }
}
