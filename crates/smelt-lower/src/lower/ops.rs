//! Kernels of the ops beyond elementwise chains, matmuls and rows: Gemm, Conv, pools,
//! reductions, and data movement (Gather, Slice, Expand, Concat, Split), plus Clip.
//!
//! Gemm, Conv, pools, reductions, Gather, Slice and Expand are kernel *heads*: they
//! compute one value per output point into a local, so elementwise consumers fuse after
//! them as an epilogue, as they do after a matmul. Concat and Split are kernels of
//! their own, one guarded store per piece.

use smelt_ir::{DType, Graph, NodeId, OpKind, ValueId};

use super::decode::Coord;
use super::{default_schedule, index_for, node_err, strides, KernelBuilder, Lowering, Role};
use crate::error::LowerError;
use crate::ir::*;

fn lit_i(v: i64) -> Expr {
    Expr::lit(v as f64, DType::I64)
}

fn cmp(op: CmpOp, a: Expr, b: Expr) -> Expr {
    Expr::Cmp(op, Box::new(a), Box::new(b))
}

fn and_all(conds: Vec<Expr>) -> Option<Expr> {
    conds
        .into_iter()
        .reduce(|a, b| Expr::binary(BinaryOp::And, a, b))
}

/// `Clip(x, min, max)` from its inputs' expressions (an omitted bound is `None`; the
/// `min`/`max` attributes of older opsets are used when there is no input).
pub(super) fn clip(
    g: &Graph,
    n: NodeId,
    args: Vec<Option<(Expr, DType)>>,
) -> Result<Expr, LowerError> {
    if args.len() > 3 {
        return Err(node_err(
            g,
            n,
            format!("expected at most 3 inputs, found {}", args.len()),
        ));
    }
    let mut it = args.into_iter();
    let (x, xt) = it
        .next()
        .flatten()
        .ok_or_else(|| node_err(g, n, "missing input 0"))?;
    let attrs = &g.node(n).attrs;
    let bound = |a: Option<Option<(Expr, DType)>>, name: &str| -> Option<Expr> {
        match a.flatten() {
            Some((e, et)) if et == xt => Some(e),
            Some((e, _)) => Some(Expr::Cast(xt, Box::new(e))),
            None => attrs.float(name).map(|f| Expr::lit(f64::from(f), xt)),
        }
    };
    let lo = bound(it.next(), "min");
    let hi = bound(it.next(), "max");
    // max first, then min: a min above max gives max everywhere (as ONNX says); NaN
    // stays NaN.
    let mut y = x;
    if let Some(lo) = lo {
        y = Expr::binary(BinaryOp::Max, y, lo);
    }
    if let Some(hi) = hi {
        y = Expr::binary(BinaryOp::Min, y, hi);
    }
    Ok(y)
}

/// The smallest and largest values of a numeric dtype (infinities for floats).
fn dtype_range(t: DType) -> Option<(f64, f64)> {
    Some(match t {
        t if t.is_float() => (f64::NEG_INFINITY, f64::INFINITY),
        DType::I8 | DType::I16 | DType::I32 | DType::I64 => {
            let b = t.bits() as i32 - 1;
            (-(2f64.powi(b)), 2f64.powi(b) - 1.0)
        }
        DType::U8 | DType::U16 | DType::U32 | DType::U64 => (0.0, 2f64.powi(t.bits() as i32) - 1.0),
        _ => return None,
    })
}

/// A normalised axis.
fn norm_axis(g: &Graph, n: NodeId, axis: i64, rank: usize) -> Result<usize, LowerError> {
    let a = if axis < 0 { axis + rank as i64 } else { axis };
    usize::try_from(a)
        .ok()
        .filter(|&a| a < rank)
        .ok_or_else(|| node_err(g, n, format!("axis {axis} is out of range for rank {rank}")))
}

/// The window of a conv or pool, as ONNX attributes give it.
struct Window {
    input: Vec<u64>,
    kernel: Vec<u64>,
    stride: Vec<u64>,
    dilation: Vec<u64>,
    pad: Vec<u64>,
    output: Vec<u64>,
}

fn window(g: &Graph, n: NodeId, input: &[u64], kernel: &[u64]) -> Result<Window, LowerError> {
    let attrs = &g.node(n).attrs;
    let nd = input.len();
    if attrs.int_or("ceil_mode", 0) != 0 {
        return Err(node_err(g, n, "ceil_mode = 1 is not lowered"));
    }
    let list = |name: &str, len: usize, default: u64| -> Result<Vec<u64>, LowerError> {
        match attrs.ints(name) {
            None => Ok(vec![default; len]),
            Some(v) if v.len() == len && v.iter().all(|&x| (0..=i32::MAX as i64).contains(&x)) => {
                Ok(v.iter().map(|&x| x as u64).collect())
            }
            Some(v) => Err(node_err(
                g,
                n,
                format!("{name} {v:?} must be {len} non-negative values"),
            )),
        }
    };
    let stride = list("strides", nd, 1)?;
    let dilation = list("dilations", nd, 1)?;
    if stride.contains(&0) || dilation.contains(&0) || kernel.contains(&0) {
        return Err(node_err(g, n, "zero stride, dilation or kernel size"));
    }
    let pads = match attrs.str("auto_pad").unwrap_or("NOTSET") {
        "NOTSET" => list("pads", 2 * nd, 0)?,
        "VALID" => vec![0; 2 * nd],
        mode @ ("SAME_UPPER" | "SAME_LOWER") => {
            let mut p = vec![0; 2 * nd];
            for i in 0..nd {
                let out = input[i].div_ceil(stride[i]);
                let span = dilation[i] * (kernel[i] - 1) + 1;
                let total = ((out.max(1) - 1) * stride[i] + span).saturating_sub(input[i]);
                let small = total / 2;
                let (b, e) = if mode == "SAME_UPPER" {
                    (small, total - small)
                } else {
                    (total - small, small)
                };
                p[i] = b;
                p[nd + i] = e;
            }
            p
        }
        other => return Err(node_err(g, n, format!("unknown auto_pad `{other}`"))),
    };
    let mut output = vec![];
    for i in 0..nd {
        let span = dilation[i] * (kernel[i] - 1) + 1;
        let padded = input[i] + pads[i] + pads[nd + i];
        if padded < span {
            return Err(node_err(g, n, "the window does not fit the padded input"));
        }
        output.push((padded - span) / stride[i] + 1);
    }
    Ok(Window {
        input: input.to_vec(),
        kernel: kernel.to_vec(),
        stride,
        dilation,
        pad: pads[..nd].to_vec(),
        output,
    })
}

fn known(g: &Graph, n: NodeId, s: &[Size], what: &str) -> Result<Vec<u64>, LowerError> {
    s.iter()
        .map(|d| {
            d.as_known()
                .ok_or_else(|| node_err(g, n, format!("{what} has a symbolic dim ({d})")))
        })
        .collect()
}

impl Window {
    /// The spatial part of an input index (`o * stride + k * dilation - pad` per axis)
    /// and the bounds condition, if any window reaches into padding.
    fn spatial(
        &self,
        out_vars: &[Var],
        k_vars: &[Var],
        in_strides: &[u64],
    ) -> (Vec<(Var, Size)>, i64, Option<Expr>) {
        let mut terms = vec![];
        let mut offset = 0i64;
        let mut conds = vec![];
        for d in 0..self.input.len() {
            let st = in_strides[d];
            terms.push((out_vars[d], Size::known(self.stride[d] * st)));
            terms.push((k_vars[d], Size::known(self.dilation[d] * st)));
            offset -= (self.pad[d] * st) as i64;
            let pos = || {
                let scaled = |v: Var, f: u64| {
                    if f == 1 {
                        Expr::Var(v)
                    } else {
                        Expr::binary(BinaryOp::Mul, Expr::Var(v), lit_i(f as i64))
                    }
                };
                Expr::binary(
                    BinaryOp::Add,
                    scaled(out_vars[d], self.stride[d]),
                    scaled(k_vars[d], self.dilation[d]),
                )
            };
            if self.pad[d] > 0 {
                conds.push(cmp(CmpOp::Ge, pos(), lit_i(self.pad[d] as i64)));
            }
            let last =
                (self.output[d] - 1) * self.stride[d] + (self.kernel[d] - 1) * self.dilation[d];
            if last >= self.input[d] + self.pad[d] {
                conds.push(cmp(
                    CmpOp::Lt,
                    pos(),
                    lit_i((self.input[d] + self.pad[d]) as i64),
                ));
            }
        }
        (terms, offset, and_all(conds))
    }
}

/// Nested reduce loops over `vars` (outermost first) around `inner`.
fn reduce_nest(vars: &[(Var, Size)], inner: Vec<Stmt>) -> Vec<Stmt> {
    let mut body = inner;
    for (v, e) in vars.iter().rev() {
        body = vec![Stmt::Loop {
            var: *v,
            extent: e.clone(),
            reduce: true,
            body,
        }];
    }
    body
}

impl Lowering<'_> {
    /// The constant integers of an optional input `slot` (`None` when it is omitted).
    fn const_ints(&self, n: NodeId, slot: usize) -> Result<Option<Vec<i64>>, LowerError> {
        let g = self.graph;
        let Some(v) = g.node(n).inputs.get(slot).copied().flatten() else {
            return Ok(None);
        };
        let t = g.plain_constant(v).ok_or_else(|| {
            node_err(
                g,
                n,
                format!("input {slot} must be a constant (it is computed)"),
            )
        })?;
        t.to_i64_vec()
            .map(Some)
            .map_err(|e| node_err(g, n, format!("input {slot}: {e}")))
    }

    fn shape(&self, n: NodeId, v: ValueId) -> Result<(BufferId, Vec<Size>), LowerError> {
        let b = self.buf(n, v)?;
        Ok((b, self.program.buffer(b).shape.clone()))
    }

    /// The statements of a kernel head (`role` of node `n`) computing the value at the
    /// output point `vars` into a local; returns the local and the kernel kind.
    pub(super) fn head(
        &self,
        role: Role,
        n: NodeId,
        kb: &mut KernelBuilder,
        vars: &[Var],
        out_shape: &[Size],
        body: &mut Vec<Stmt>,
    ) -> Result<(Local, KernelKind), LowerError> {
        let g = self.graph;
        if vars.len() != out_shape.len() {
            return Err(node_err(g, n, "loop count differs from the output rank"));
        }
        let t = g.ty(g.node(n).outputs[0]).dtype;
        let simple = |e: Expr, kb: &mut KernelBuilder, body: &mut Vec<Stmt>| {
            let l = kb.local(t);
            body.push(Stmt::Assign(l, e));
            (l, KernelKind::Copy)
        };
        Ok(match role {
            Role::Gemm => (self.gemm(n, kb, vars, out_shape, body)?, KernelKind::MatMul),
            Role::Conv => (self.conv(n, kb, vars, body)?, KernelKind::Conv),
            Role::Pool => (self.pool(n, kb, vars, body)?, KernelKind::Pool),
            Role::Reduce => (self.reduce(n, kb, vars, body)?, KernelKind::Reduce),
            Role::Gather => {
                let e = self.gather(n, kb, vars, body)?;
                simple(e, kb, body)
            }
            Role::Slice => {
                let e = self.slice(n, vars, out_shape)?;
                simple(e, kb, body)
            }
            Role::Expand => {
                let e = self.bcast_load(n, self.input(n, 0)?, out_shape, vars)?;
                simple(e, kb, body)
            }
            _ => return Err(node_err(g, n, "not a kernel head")),
        })
    }

    /// Gemm: the matmul body shape, then `alpha * acc + beta * C` as epilogue.
    fn gemm(
        &self,
        n: NodeId,
        kb: &mut KernelBuilder,
        vars: &[Var],
        out_shape: &[Size],
        body: &mut Vec<Stmt>,
    ) -> Result<Local, LowerError> {
        let g = self.graph;
        let attrs = &g.node(n).attrs;
        let (a, b) = (self.input(n, 0)?, self.input(n, 1)?);
        let ash = self.value_shape(n, a)?;
        let bsh = self.value_shape(n, b)?;
        if ash.len() != 2 || bsh.len() != 2 || vars.len() != 2 {
            return Err(node_err(g, n, "A, B and the output must be 2-D"));
        }
        let ta = attrs.int_or("transA", 0) != 0;
        let tb = attrs.int_or("transB", 0) != 0;
        let alpha = f64::from(attrs.float_or("alpha", 1.0));
        let beta = f64::from(attrs.float_or("beta", 1.0));
        let ka = if ta { &ash[0] } else { &ash[1] };
        let kb_dim = if tb { &bsh[1] } else { &bsh[0] };
        if ka != kb_dim {
            return Err(node_err(
                g,
                n,
                format!("contracted dims differ ({ka} and {kb_dim})"),
            ));
        }
        let (m, nv) = (vars[0], vars[1]);
        let k = kb.var();
        let a_axes = if ta {
            [Some(k), Some(m)]
        } else {
            [Some(m), Some(k)]
        };
        let b_axes = if tb {
            [Some(nv), Some(k)]
        } else {
            [Some(k), Some(nv)]
        };
        let t = g.ty(g.node(n).outputs[0]).dtype;
        let acc = kb.local(t);
        body.push(Stmt::Assign(acc, Expr::lit(0.0, t)));
        let prod = Expr::binary(
            BinaryOp::Mul,
            self.load_value(n, a, &a_axes)?,
            self.load_value(n, b, &b_axes)?,
        );
        body.push(Stmt::Loop {
            var: k,
            extent: ka.clone(),
            reduce: true,
            body: vec![Stmt::Assign(
                acc,
                Expr::binary(BinaryOp::Add, Expr::Local(acc), prod),
            )],
        });
        let mut y = Expr::Local(acc);
        if alpha != 1.0 {
            y = Expr::binary(BinaryOp::Mul, y, Expr::lit(alpha, t));
        }
        if let Some(c) = g.node(n).inputs.get(2).copied().flatten() {
            let mut ce = self.bcast_load(n, c, out_shape, vars)?;
            if g.ty(c).dtype != t {
                ce = Expr::Cast(t, Box::new(ce));
            }
            if beta != 1.0 {
                ce = Expr::binary(BinaryOp::Mul, ce, Expr::lit(beta, t));
            }
            y = Expr::binary(BinaryOp::Add, y, ce);
        }
        if y == Expr::Local(acc) {
            return Ok(acc);
        }
        let l = kb.local(t);
        body.push(Stmt::Assign(l, y));
        Ok(l)
    }

    /// Conv over `[N, M, spatial...]`: reduce over input channels of the group and the
    /// kernel window, the accumulate guarded where the window reaches into padding.
    fn conv(
        &self,
        n: NodeId,
        kb: &mut KernelBuilder,
        vars: &[Var],
        body: &mut Vec<Stmt>,
    ) -> Result<Local, LowerError> {
        let g = self.graph;
        let (xb, xs) = self.shape(n, self.input(n, 0)?)?;
        // The weight may be an encoded constant, decoded at each load.
        let wv = self.input(n, 1)?;
        let ws = match self.decoded.get(&wv) {
            Some(d) => d.shape.clone(),
            None => self.shape(n, wv)?.1,
        };
        let r = xs.len();
        if r < 3 || ws.len() != r || vars.len() != r {
            return Err(node_err(g, n, "X, W and Y must all be [N, C, spatial...]"));
        }
        let wk = known(g, n, &ws, "W")?;
        let xsp = known(g, n, &xs[1..], "X")?;
        let (c, m, cg) = (xsp[0], wk[0], wk[1]);
        let group = g.node(n).attrs.int_or("group", 1);
        if group <= 0 || cg * group as u64 != c || m % group as u64 != 0 {
            return Err(node_err(
                g,
                n,
                format!("group {group} does not fit {c} input and {m} output channels (W has {cg} per group)"),
            ));
        }
        let group = group as u64;
        let mg = m / group;
        if let Some(k) = g.node(n).attrs.ints("kernel_shape") {
            if k.iter().map(|&v| v as u64).ne(wk[2..].iter().copied()) {
                return Err(node_err(g, n, "kernel_shape disagrees with W"));
            }
        }
        let win = window(g, n, &xsp[1..], &wk[2..])?;
        self.check_spatial(n, &win)?;
        let xst = strides(&xs);
        let xst_sp = known(g, n, &xst[2..], "X strides")?;
        let t = g.ty(g.node(n).outputs[0]).dtype;
        let acc = kb.local(t);
        body.push(Stmt::Assign(acc, Expr::lit(0.0, t)));
        let cv = kb.var();
        let kvars: Vec<Var> = (0..r - 2).map(|_| kb.var()).collect();
        let (sp_terms, offset, cond) = win.spatial(&vars[2..], &kvars, &xst_sp);
        let mut x_terms = vec![(vars[0], xst[0].clone()), (cv, xst[1].clone())];
        x_terms.extend(sp_terms);
        let mut dynamic = vec![];
        if group > 1 {
            // Input channel = (m / mg) * cg + c.
            let grp = Expr::binary(BinaryOp::Div, Expr::Var(vars[1]), lit_i(mg as i64));
            dynamic.push((grp, Size::known(cg).mul(&xst[1])));
        }
        let xi = Index {
            terms: x_terms,
            dynamic,
            offset,
        };
        let mut w_coords = vec![Coord::Var(vars[1]), Coord::Var(cv)];
        w_coords.extend(kvars.iter().map(|kv| Coord::Var(*kv)));
        let w_load = self.load_value_at(n, wv, &w_coords)?;
        let update = Stmt::Assign(
            acc,
            Expr::binary(
                BinaryOp::Add,
                Expr::Local(acc),
                Expr::binary(BinaryOp::Mul, Expr::Load(xb, xi), w_load),
            ),
        );
        let inner = match cond {
            Some(cond) => Stmt::If {
                cond,
                then: vec![update],
            },
            None => update,
        };
        let mut loops = vec![(cv, Size::known(cg))];
        loops.extend(
            kvars
                .iter()
                .zip(&win.kernel)
                .map(|(v, k)| (*v, Size::known(*k))),
        );
        body.extend(reduce_nest(&loops, vec![inner]));
        let Some(bias) = g.node(n).inputs.get(2).copied().flatten() else {
            return Ok(acc);
        };
        let (bb, bs) = self.shape(n, bias)?;
        if bs != [Size::known(m)] {
            return Err(node_err(g, n, format!("bias must have shape [{m}]")));
        }
        let l = kb.local(t);
        body.push(Stmt::Assign(
            l,
            Expr::binary(
                BinaryOp::Add,
                Expr::Local(acc),
                Expr::Load(bb, Index::affine(vec![(vars[1], Size::known(1))])),
            ),
        ));
        Ok(l)
    }

    /// The output's spatial dims must be the window's.
    fn check_spatial(&self, n: NodeId, win: &Window) -> Result<(), LowerError> {
        let g = self.graph;
        let out = super::shape_of(g, g.node(n).outputs[0]).map_err(|m| node_err(g, n, m))?;
        let sp = out
            .len()
            .checked_sub(win.output.len())
            .map(|s| &out[s..])
            .ok_or_else(|| node_err(g, n, "output rank too small"))?;
        if sp
            .iter()
            .zip(&win.output)
            .any(|(a, b)| *a != Size::known(*b))
        {
            return Err(node_err(
                g,
                n,
                format!(
                    "output spatial dims differ from the window's {:?}",
                    win.output
                ),
            ));
        }
        Ok(())
    }

    /// MaxPool / AveragePool over `[N, C, spatial...]`.
    fn pool(
        &self,
        n: NodeId,
        kb: &mut KernelBuilder,
        vars: &[Var],
        body: &mut Vec<Stmt>,
    ) -> Result<Local, LowerError> {
        let g = self.graph;
        let node = g.node(n);
        let (xb, xs) = self.shape(n, self.input(n, 0)?)?;
        let r = xs.len();
        if r < 3 || vars.len() != r {
            return Err(node_err(g, n, "X must be [N, C, spatial...]"));
        }
        let kernel: Vec<u64> = node
            .attrs
            .ints("kernel_shape")
            .ok_or_else(|| node_err(g, n, "missing kernel_shape"))?
            .iter()
            .map(|&k| u64::try_from(k).unwrap_or(0))
            .collect();
        if kernel.len() != r - 2 {
            return Err(node_err(
                g,
                n,
                "kernel_shape length differs from the spatial rank",
            ));
        }
        let xsp = known(g, n, &xs[2..], "X")?;
        let win = window(g, n, &xsp, &kernel)?;
        self.check_spatial(n, &win)?;
        let xst = strides(&xs);
        let xst_sp = known(g, n, &xst[2..], "X strides")?;
        let t = g.ty(node.outputs[0]).dtype;
        let max = node.op == OpKind::MaxPool;
        let (lo, _) = dtype_range(t).ok_or_else(|| node_err(g, n, format!("dtype {t}")))?;
        if !max && !t.is_float() {
            return Err(node_err(g, n, "AveragePool needs a float input"));
        }
        let kvars: Vec<Var> = (0..r - 2).map(|_| kb.var()).collect();
        let (sp_terms, offset, cond) = win.spatial(&vars[2..], &kvars, &xst_sp);
        let mut terms = vec![(vars[0], xst[0].clone()), (vars[1], xst[1].clone())];
        terms.extend(sp_terms);
        let x = Expr::Load(
            xb,
            Index {
                terms,
                dynamic: vec![],
                offset,
            },
        );
        let acc = kb.local(t);
        let include_pad = node.attrs.int_or("count_include_pad", 0) != 0;
        let count = (!max && !include_pad && cond.is_some()).then(|| kb.local(t));
        body.push(Stmt::Assign(acc, Expr::lit(if max { lo } else { 0.0 }, t)));
        if let Some(c) = count {
            body.push(Stmt::Assign(c, Expr::lit(0.0, t)));
        }
        let op = if max { BinaryOp::Max } else { BinaryOp::Add };
        let mut update = vec![Stmt::Assign(acc, Expr::binary(op, Expr::Local(acc), x))];
        if let Some(c) = count {
            update.push(Stmt::Assign(
                c,
                Expr::binary(BinaryOp::Add, Expr::Local(c), Expr::lit(1.0, t)),
            ));
        }
        let inner = match cond {
            Some(cond) => vec![Stmt::If { cond, then: update }],
            None => update,
        };
        let loops: Vec<(Var, Size)> = kvars
            .iter()
            .zip(&win.kernel)
            .map(|(v, k)| (*v, Size::known(*k)))
            .collect();
        body.extend(reduce_nest(&loops, inner));
        if max {
            return Ok(acc);
        }
        let div = match count {
            Some(c) => Expr::Local(c),
            None => Expr::lit(kernel.iter().product::<u64>() as f64, t),
        };
        let l = kb.local(t);
        body.push(Stmt::Assign(
            l,
            Expr::binary(BinaryOp::Div, Expr::Local(acc), div),
        ));
        Ok(l)
    }

    /// Reduce* over constant axes: reduce loops over the reduced axes around one
    /// accumulate, then the final step (mean, square root, log).
    fn reduce(
        &self,
        n: NodeId,
        kb: &mut KernelBuilder,
        vars: &[Var],
        body: &mut Vec<Stmt>,
    ) -> Result<Local, LowerError> {
        use OpKind::*;
        let g = self.graph;
        let node = g.node(n);
        let (xb, xs) = self.shape(n, self.input(n, 0)?)?;
        let r = xs.len();
        let keepdims = node.attrs.int_or("keepdims", 1) != 0;
        let noop = node.attrs.int_or("noop_with_empty_axes", 0) != 0;
        let given = match self.const_ints(n, 1)? {
            Some(a) => Some(a),
            None => node.attrs.ints("axes").map(<[i64]>::to_vec),
        };
        let mut axes: Vec<usize> = match given {
            Some(a) if !a.is_empty() => a
                .iter()
                .map(|&a| norm_axis(g, n, a, r))
                .collect::<Result<_, _>>()?,
            _ if noop => vec![],
            _ => (0..r).collect(),
        };
        axes.sort_unstable();
        axes.dedup();
        let t = g.ty(node.outputs[0]).dtype;
        let (lo, hi) = dtype_range(t)
            .ok_or_else(|| node_err(g, n, format!("cannot reduce values of dtype {t}")))?;
        let mut x_axes = vec![];
        let mut rvars = vec![];
        let mut oi = 0;
        for (j, d) in xs.iter().enumerate() {
            if axes.contains(&j) {
                let v = kb.var();
                rvars.push((v, d.clone()));
                x_axes.push(Some(v));
                oi += keepdims as usize;
            } else {
                let v = *vars
                    .get(oi)
                    .ok_or_else(|| node_err(g, n, "output rank too small"))?;
                x_axes.push(Some(v));
                oi += 1;
            }
        }
        if oi != vars.len() {
            return Err(node_err(g, n, "output rank differs from the reduction's"));
        }
        let x = Expr::Load(xb, index_for(&xs, &x_axes));
        let acc = kb.local(t);
        let a = || Expr::Local(acc);
        let bin = |op, a, b| Expr::binary(op, a, b);
        let (init, update) = match node.op {
            ReduceSum | ReduceMean | ReduceLogSum => (0.0, bin(BinaryOp::Add, a(), x)),
            ReduceMax => (lo, bin(BinaryOp::Max, a(), x)),
            ReduceMin => (hi, bin(BinaryOp::Min, a(), x)),
            ReduceProd => (1.0, bin(BinaryOp::Mul, a(), x)),
            ReduceL1 => (0.0, bin(BinaryOp::Add, a(), Expr::unary(UnaryOp::Abs, x))),
            ReduceL2 | ReduceSumSquare => (
                0.0,
                bin(BinaryOp::Add, a(), bin(BinaryOp::Mul, x.clone(), x)),
            ),
            _ => return Err(node_err(g, n, "not a reduction")),
        };
        body.push(Stmt::Assign(acc, Expr::lit(init, t)));
        body.extend(reduce_nest(&rvars, vec![Stmt::Assign(acc, update)]));
        let post = match node.op {
            ReduceMean => {
                let count = rvars
                    .iter()
                    .try_fold(1u64, |c, (_, d)| d.as_known().map(|d| c * d))
                    .ok_or_else(|| node_err(g, n, "mean over a symbolic dim"))?;
                Some(bin(BinaryOp::Div, a(), Expr::lit(count as f64, t)))
            }
            ReduceL2 => Some(Expr::unary(UnaryOp::Sqrt, a())),
            ReduceLogSum => Some(Expr::unary(UnaryOp::Log, a())),
            _ => None,
        };
        let Some(post) = post else { return Ok(acc) };
        let l = kb.local(t);
        body.push(Stmt::Assign(l, post));
        Ok(l)
    }

    /// Gather: the index is loaded into an `i64` local, wrapped when negative and
    /// clamped into the axis, then used as a dynamic index term.
    fn gather(
        &self,
        n: NodeId,
        kb: &mut KernelBuilder,
        vars: &[Var],
        body: &mut Vec<Stmt>,
    ) -> Result<Expr, LowerError> {
        let g = self.graph;
        let table = self.input(n, 0)?;
        let ds = self.value_shape(n, table)?;
        let iv = self.input(n, 1)?;
        let (ib, is) = self.shape(n, iv)?;
        let it = g.ty(iv).dtype;
        if !matches!(it, DType::I64 | DType::I32) {
            return Err(node_err(
                g,
                n,
                format!("indices must be i32 or i64, not {it}"),
            ));
        }
        let r = ds.len();
        if r == 0 {
            return Err(node_err(g, n, "gather from a rank-0 tensor"));
        }
        let axis = norm_axis(g, n, g.node(n).attrs.int_or("axis", 0), r)?;
        let q = is.len();
        if vars.len() != r - 1 + q {
            return Err(node_err(g, n, "output rank differs from the gather's"));
        }
        let size = ds[axis].as_known().ok_or_else(|| {
            node_err(
                g,
                n,
                format!("gathered axis has a symbolic size ({})", ds[axis]),
            )
        })? as i64;
        if size == 0 {
            return Err(node_err(g, n, "gather from an empty axis"));
        }
        let iaxes: Vec<Option<Var>> = vars[axis..axis + q].iter().map(|v| Some(*v)).collect();
        let mut e = Expr::Load(ib, index_for(&is, &iaxes));
        if it != DType::I64 {
            e = Expr::Cast(DType::I64, Box::new(e));
        }
        let ti = kb.local(DType::I64);
        let l = || Expr::Local(ti);
        body.push(Stmt::Assign(ti, e));
        body.push(Stmt::Assign(
            ti,
            Expr::Select(
                Box::new(cmp(CmpOp::Lt, l(), lit_i(0))),
                Box::new(Expr::binary(BinaryOp::Add, l(), lit_i(size))),
                Box::new(l()),
            ),
        ));
        body.push(Stmt::Assign(
            ti,
            Expr::binary(
                BinaryOp::Max,
                Expr::binary(BinaryOp::Min, l(), lit_i(size - 1)),
                lit_i(0),
            ),
        ));
        // The gathered axis is addressed by the clamped index; the others by the
        // output's loop variables. An encoded table decodes in place.
        let coords: Vec<Coord> = (0..r)
            .map(|j| {
                if j < axis {
                    Coord::Var(vars[j])
                } else if j == axis {
                    Coord::Expr(l())
                } else {
                    Coord::Var(vars[q + j - 1])
                }
            })
            .collect();
        self.load_value_at(n, table, &coords)
    }

    /// Slice with constant starts, ends, axes and steps (or the attributes of opset < 10).
    fn slice(&self, n: NodeId, vars: &[Var], out_shape: &[Size]) -> Result<Expr, LowerError> {
        let g = self.graph;
        let node = g.node(n);
        let (xb, xs) = self.shape(n, self.input(n, 0)?)?;
        let r = xs.len();
        let from = |slot: usize, name: &str| -> Result<Option<Vec<i64>>, LowerError> {
            if node.inputs.len() > 1 {
                self.const_ints(n, slot)
            } else {
                Ok(node.attrs.ints(name).map(<[i64]>::to_vec))
            }
        };
        let starts = from(1, "starts")?.ok_or_else(|| node_err(g, n, "missing starts"))?;
        let ends = from(2, "ends")?.ok_or_else(|| node_err(g, n, "missing ends"))?;
        let axes = from(3, "axes")?.unwrap_or_else(|| (0..starts.len() as i64).collect());
        let steps = if node.inputs.len() > 1 {
            self.const_ints(n, 4)?
        } else {
            None
        }
        .unwrap_or_else(|| vec![1; starts.len()]);
        if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
            return Err(node_err(
                g,
                n,
                "starts, ends, axes and steps differ in length",
            ));
        }
        if vars.len() != r {
            return Err(node_err(g, n, "output rank differs from the input's"));
        }
        let mut begin = vec![0i64; r];
        let mut step = vec![1i64; r];
        for i in 0..starts.len() {
            let a = norm_axis(g, n, axes[i], r)?;
            if steps[i] == 0 {
                return Err(node_err(g, n, "step 0"));
            }
            let dim = xs[a]
                .as_known()
                .ok_or_else(|| node_err(g, n, format!("sliced axis {a} has a symbolic size")))?
                as i64;
            let wrap = |v: i64| if v < 0 { v.saturating_add(dim) } else { v };
            let (s, e) = (wrap(starts[i]), wrap(ends[i]));
            let st = steps[i];
            let (s, count) = if st > 0 {
                let (s, e) = (s.clamp(0, dim), e.clamp(0, dim));
                (s, if s < e { (e - s + st - 1) / st } else { 0 })
            } else {
                let (s, e) = (s.clamp(0, (dim - 1).max(0)), e.clamp(-1, dim - 1));
                (s, if s > e { (s - e - st - 1) / -st } else { 0 })
            };
            if out_shape[a] != Size::known(count as u64) {
                return Err(node_err(
                    g,
                    n,
                    format!(
                        "axis {a} slices to {count} elements, the output has {}",
                        out_shape[a]
                    ),
                ));
            }
            begin[a] = s;
            step[a] = st;
        }
        let xst = strides(&xs);
        let mut idx = Index::default();
        for j in 0..r {
            if begin[j] != 0 {
                let s = xst[j]
                    .as_known()
                    .ok_or_else(|| node_err(g, n, "slice start on a symbolic stride"))?;
                idx.offset += begin[j] * s as i64;
            }
            if out_shape[j] == Size::known(1) && step[j] != 1 {
                continue;
            }
            if step[j] > 0 {
                idx.terms
                    .push((vars[j], Size::known(step[j] as u64).mul(&xst[j])));
            } else {
                idx.dynamic.push((
                    Expr::binary(BinaryOp::Mul, Expr::Var(vars[j]), lit_i(step[j])),
                    xst[j].clone(),
                ));
            }
        }
        Ok(Expr::Load(xb, idx))
    }

    /// Concat: one loop nest over the output, one guarded store per input.
    pub(super) fn concat_kernel(&self, n: NodeId, out_buf: BufferId) -> Result<Kernel, LowerError> {
        let g = self.graph;
        let node = g.node(n);
        let out_shape = self.program.buffer(out_buf).shape.clone();
        let r = out_shape.len();
        let axis = node
            .attrs
            .int("axis")
            .ok_or_else(|| node_err(g, n, "missing axis"))?;
        let axis = norm_axis(g, n, axis, r)?;
        let mut kb = KernelBuilder::default();
        let loops: Vec<Loop> = out_shape
            .iter()
            .map(|e| Loop {
                var: kb.var(),
                extent: e.clone(),
            })
            .collect();
        let vars: Vec<Var> = loops.iter().map(|l| l.var).collect();
        let all: Vec<Option<Var>> = vars.iter().map(|v| Some(*v)).collect();
        let oi = index_for(&out_shape, &all);
        let total = out_shape[axis]
            .as_known()
            .ok_or_else(|| node_err(g, n, "concatenated axis has a symbolic size"))?;
        let mut body = vec![];
        let mut off = 0u64;
        for v in node.inputs.iter() {
            let v = v.ok_or_else(|| node_err(g, n, "omitted input"))?;
            let (b, s) = self.shape(n, v)?;
            if s.len() != r
                || s.iter()
                    .zip(&out_shape)
                    .enumerate()
                    .any(|(j, (a, o))| j != axis && a != o)
            {
                return Err(node_err(g, n, "input shapes do not fit the output"));
            }
            let ext = s[axis]
                .as_known()
                .ok_or_else(|| node_err(g, n, "concatenated axis has a symbolic size"))?;
            if ext == 0 {
                continue;
            }
            let st = strides(&s);
            let mut idx = index_for(&s, &all);
            if off > 0 {
                let sa = st[axis]
                    .as_known()
                    .ok_or_else(|| node_err(g, n, "symbolic stride"))?;
                idx.offset = -((off * sa) as i64);
            }
            let store = Stmt::Store(out_buf, oi.clone(), Expr::Load(b, idx));
            let mut conds = vec![];
            let av = || Expr::Var(vars[axis]);
            if off > 0 {
                conds.push(cmp(CmpOp::Ge, av(), lit_i(off as i64)));
            }
            if off + ext < total {
                conds.push(cmp(CmpOp::Lt, av(), lit_i((off + ext) as i64)));
            }
            body.push(match and_all(conds) {
                Some(cond) => Stmt::If {
                    cond,
                    then: vec![store],
                },
                None => store,
            });
            off += ext;
        }
        if off != total {
            return Err(node_err(
                g,
                n,
                "inputs do not add up to the output along the axis",
            ));
        }
        let dtype = self.program.buffer(out_buf).dtype;
        Ok(Kernel {
            name: String::new(),
            kind: KernelKind::Copy,
            nodes: vec![],
            schedule: default_schedule(KernelKind::Copy, &loops, dtype, None),
            loops,
            body,
            locals: kb.locals,
        })
    }

    /// Split: one loop nest over the input, one guarded store per output.
    pub(super) fn split_kernel(&self, n: NodeId) -> Result<Kernel, LowerError> {
        let g = self.graph;
        let node = g.node(n);
        let (xb, xs) = self.shape(n, self.input(n, 0)?)?;
        let r = xs.len();
        let axis = norm_axis(g, n, node.attrs.int_or("axis", 0), r)?;
        let mut kb = KernelBuilder::default();
        let loops: Vec<Loop> = xs
            .iter()
            .map(|e| Loop {
                var: kb.var(),
                extent: e.clone(),
            })
            .collect();
        let vars: Vec<Var> = loops.iter().map(|l| l.var).collect();
        let all: Vec<Option<Var>> = vars.iter().map(|v| Some(*v)).collect();
        let xi = index_for(&xs, &all);
        let total = xs[axis]
            .as_known()
            .ok_or_else(|| node_err(g, n, "split axis has a symbolic size"))?;
        let mut body = vec![];
        let mut off = 0u64;
        for &o in &node.outputs {
            let (b, s) = self.shape(n, o)?;
            if s.len() != r
                || s.iter()
                    .zip(&xs)
                    .enumerate()
                    .any(|(j, (a, x))| j != axis && a != x)
            {
                return Err(node_err(g, n, "output shapes do not fit the input"));
            }
            let ext = s[axis]
                .as_known()
                .ok_or_else(|| node_err(g, n, "split axis has a symbolic size"))?;
            if ext == 0 {
                continue;
            }
            let mut idx = index_for(&s, &all);
            if off > 0 {
                let sa = strides(&s)[axis]
                    .as_known()
                    .ok_or_else(|| node_err(g, n, "symbolic stride"))?;
                idx.offset = -((off * sa) as i64);
            }
            let store = Stmt::Store(b, idx, Expr::Load(xb, xi.clone()));
            let av = || Expr::Var(vars[axis]);
            let mut conds = vec![];
            if off > 0 {
                conds.push(cmp(CmpOp::Ge, av(), lit_i(off as i64)));
            }
            if off + ext < total {
                conds.push(cmp(CmpOp::Lt, av(), lit_i((off + ext) as i64)));
            }
            body.push(match and_all(conds) {
                Some(cond) => Stmt::If {
                    cond,
                    then: vec![store],
                },
                None => store,
            });
            off += ext;
        }
        if off > total {
            return Err(node_err(
                g,
                n,
                "outputs are larger than the input along the axis",
            ));
        }
        let dtype = self.program.buffer(xb).dtype;
        Ok(Kernel {
            name: String::new(),
            kind: KernelKind::Copy,
            nodes: vec![],
            schedule: default_schedule(KernelKind::Copy, &loops, dtype, None),
            loops,
            body,
            locals: kb.locals,
        })
    }
}
