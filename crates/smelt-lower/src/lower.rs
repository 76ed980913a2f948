//! Graph → [`KernelProgram`]: grouping nodes into fused kernels and writing each
//! kernel's loop nest.
//!
//! Grouping walks the nodes in topological order. An elementwise node joins the group
//! that produced one of its inputs when that input is the group's latest result, has
//! no other reader, is not a graph output, and has the node's own output shape (no
//! broadcasting of the fused value). Groups start at a matmul (the elementwise nodes
//! that join form its epilogue) or at the first elementwise node of a chain. Softmax,
//! LayerNormalization and Transpose are kernels of their own; reshapes are views.
//!
//! Gemm, Conv, MaxPool/AveragePool, the Reduce* ops, Gather, Slice and Expand are
//! kernel *heads* like MatMul: each computes one value per output point, and
//! elementwise consumers fuse after it as an epilogue (see the `ops` module). Concat and
//! Split are kernels of their own, with one guarded store per piece.

use std::collections::HashMap;

use smelt_ir::{Dim, Graph, NodeId, OpKind, ValueId};

use crate::error::LowerError;
use crate::ir::*;

mod decode;
mod ops;

/// Lower `graph` to a [`KernelProgram`]. Every node whose op is outside the supported
/// set is reported at once in [`LowerError::Unsupported`].
pub fn lower(graph: &Graph) -> Result<KernelProgram, LowerError> {
    let order = graph
        .topo_order()
        .map_err(|e| LowerError::Graph(e.to_string()))?;
    let unsupported: Vec<(String, String)> = order
        .iter()
        .filter(|&&n| role(&graph.node(n).op).is_none())
        .map(|&n| (graph.node_label(n), graph.node(n).op.to_string()))
        .collect();
    if !unsupported.is_empty() {
        return Err(LowerError::Unsupported { nodes: unsupported });
    }
    let mut cx = Lowering {
        graph,
        program: KernelProgram {
            name: graph.name.clone(),
            buffers: vec![],
            inputs: vec![],
            outputs: vec![],
            kernels: vec![],
        },
        value_buf: HashMap::new(),
        decoded: HashMap::new(),
    };
    let groups = group_nodes(graph, &order)?;
    cx.make_buffers(&order, &groups)?;
    let mut by_tail: Vec<&Group> = groups.iter().collect();
    by_tail.sort_by_key(|g| g.tail_pos);
    for g in by_tail {
        let k = cx.kernel_for(g)?;
        cx.program.kernels.push(k);
    }
    cx.bind_outputs()?;
    Ok(cx.program)
}

/// How lowering treats an op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Const,
    View,
    Elementwise,
    MatMul,
    Row,
    Transpose,
    Gemm,
    Conv,
    Pool,
    Reduce,
    Gather,
    Slice,
    Expand,
    Concat,
    Split,
}

impl Role {
    /// Roles whose kernel computes one value per output point in a local, so that
    /// elementwise consumers can fuse after it as an epilogue.
    fn is_head(self) -> bool {
        matches!(
            self,
            Role::MatMul
                | Role::Gemm
                | Role::Conv
                | Role::Pool
                | Role::Reduce
                | Role::Gather
                | Role::Slice
                | Role::Expand
        )
    }
}

fn role(op: &OpKind) -> Option<Role> {
    use OpKind::*;
    Some(match op {
        Const => Role::Const,
        Identity | Reshape | Squeeze | Unsqueeze | Flatten => Role::View,
        Add | Sub | Mul | Div | Pow | Max | Min | Relu | Sigmoid | Tanh | Exp | Log | Sqrt
        | Neg | Abs | Erf | Gelu | Where | Equal | Less | LessOrEqual | Greater
        | GreaterOrEqual | Cast | Reciprocal | Not | And | Or | Clip | Sign | QuantizeLinear
        | DequantizeLinear => Role::Elementwise,
        MatMul => Role::MatMul,
        Softmax | LayerNormalization => Role::Row,
        Transpose => Role::Transpose,
        Gemm => Role::Gemm,
        Conv => Role::Conv,
        MaxPool | AveragePool => Role::Pool,
        ReduceSum | ReduceMean | ReduceMax | ReduceMin | ReduceProd | ReduceL1 | ReduceL2
        | ReduceSumSquare | ReduceLogSum => Role::Reduce,
        Gather => Role::Gather,
        Slice => Role::Slice,
        Expand => Role::Expand,
        Concat => Role::Concat,
        Split => Role::Split,
        _ => return None,
    })
}

/// A set of nodes that becomes one kernel.
struct Group {
    role: Role,
    nodes: Vec<NodeId>,
    /// The value the kernel stores.
    tail: ValueId,
    /// The topological position of the last node; kernels run in this order.
    tail_pos: usize,
}

fn group_nodes(graph: &Graph, order: &[NodeId]) -> Result<Vec<Group>, LowerError> {
    let mut groups: Vec<Group> = vec![];
    let mut group_of: HashMap<NodeId, usize> = HashMap::new();
    for (pos, &n) in order.iter().enumerate() {
        let node = graph.node(n);
        let r = role(&node.op).unwrap_or(Role::Const);
        if matches!(r, Role::Const | Role::View) {
            continue;
        }
        let out = *node
            .outputs
            .first()
            .ok_or_else(|| node_err(graph, n, "no outputs"))?;
        let mut joined = None;
        if r == Role::Elementwise {
            for v in node.inputs.iter().flatten() {
                let Some((p, _)) = graph.producer(*v) else {
                    continue;
                };
                let Some(&g) = group_of.get(&p) else { continue };
                let grp = &groups[g];
                let fusable = (grp.role == Role::Elementwise || grp.role.is_head())
                    && grp.tail == *v
                    && graph.consumers(*v).iter().all(|(c, _)| *c == n)
                    && !graph.outputs().contains(v)
                    && graph.ty(*v).shape == graph.ty(out).shape;
                if fusable {
                    joined = Some(g);
                    break;
                }
            }
        }
        match joined {
            Some(g) => {
                groups[g].nodes.push(n);
                groups[g].tail = out;
                groups[g].tail_pos = pos;
                group_of.insert(n, g);
            }
            None => {
                group_of.insert(n, groups.len());
                groups.push(Group {
                    role: r,
                    nodes: vec![n],
                    tail: out,
                    tail_pos: pos,
                });
            }
        }
    }
    Ok(groups)
}

fn node_err(graph: &Graph, n: NodeId, message: impl Into<String>) -> LowerError {
    LowerError::Node {
        node: graph.node_label(n),
        op: graph.node(n).op.to_string(),
        message: message.into(),
    }
}

/// The shape of a value as sizes; unknown ranks and unnamed unknown dims are refused.
fn shape_of(graph: &Graph, v: ValueId) -> Result<Vec<Size>, String> {
    let ty = graph.ty(v);
    let dims = ty
        .dims()
        .ok_or_else(|| format!("value %{} has unknown rank", graph.value(v).name))?;
    dims.iter()
        .map(|d| match d {
            Dim::Known(n) => Ok(Size::known(*n)),
            Dim::Sym(s) => Ok(Size::sym(s)),
            Dim::Unknown => Err(format!(
                "value %{} has an unnamed unknown dim ({ty})",
                graph.value(v).name
            )),
        })
        .collect()
}

/// Row-major strides of a shape.
fn strides(shape: &[Size]) -> Vec<Size> {
    let mut out = vec![Size::known(1); shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        out[i] = out[i + 1].mul(&shape[i + 1]);
    }
    out
}

/// The index of a buffer of `shape` whose axis `j` is addressed by `axes[j]` (`None`:
/// the axis is broadcast and always 0).
fn index_for(shape: &[Size], axes: &[Option<Var>]) -> Index {
    let st = strides(shape);
    Index::affine(
        axes.iter()
            .zip(st)
            .filter_map(|(a, s)| a.map(|v| (v, s)))
            .collect(),
    )
}

/// Numpy broadcasting: the axes of an input of `shape` read inside loops `vars` over
/// `out` (aligned at the right; size-1 axes broadcast).
fn broadcast_axes(shape: &[Size], out: &[Size], vars: &[Var]) -> Result<Vec<Option<Var>>, String> {
    if shape.len() > out.len() {
        return Err(format!(
            "cannot broadcast rank {} into rank {}",
            shape.len(),
            out.len()
        ));
    }
    let lead = out.len() - shape.len();
    shape
        .iter()
        .enumerate()
        .map(|(j, d)| {
            let o = &out[lead + j];
            if d == o {
                Ok((o != &Size::known(1)).then_some(vars[lead + j]))
            } else if *d == Size::known(1) {
                Ok(None)
            } else {
                Err(format!("cannot broadcast dim {d} against {o}"))
            }
        })
        .collect()
}

struct Lowering<'g> {
    graph: &'g Graph,
    program: KernelProgram,
    value_buf: HashMap<ValueId, BufferId>,
    /// Encoded constants, read through their decoding (see `decode.rs`).
    decoded: HashMap<ValueId, decode::Decoded>,
}

/// A kernel under construction.
#[derive(Default)]
struct KernelBuilder {
    vars: u32,
    locals: Vec<smelt_ir::DType>,
}

impl KernelBuilder {
    fn var(&mut self) -> Var {
        self.vars += 1;
        Var(self.vars - 1)
    }
    fn local(&mut self, t: smelt_ir::DType) -> Local {
        self.locals.push(t);
        Local(self.locals.len() as u32 - 1)
    }
}

impl<'g> Lowering<'g> {
    fn add_buffer(&mut self, v: ValueId, kind: BufferKind) -> Result<BufferId, String> {
        let shape = shape_of(self.graph, v)?;
        let id = BufferId(self.program.buffers.len() as u32);
        self.program.buffers.push(Buffer {
            name: self.graph.value(v).name.clone(),
            dtype: self.graph.ty(v).dtype,
            shape,
            kind,
        });
        self.value_buf.insert(v, id);
        Ok(id)
    }

    fn make_buffers(&mut self, order: &[NodeId], groups: &[Group]) -> Result<(), LowerError> {
        let g = self.graph;
        for (i, &v) in g.inputs().iter().enumerate() {
            let id = self
                .add_buffer(v, BufferKind::Input(i))
                .map_err(LowerError::Graph)?;
            self.program.inputs.push(id);
        }
        let tails: HashMap<ValueId, ()> = groups.iter().map(|gr| (gr.tail, ())).collect();
        for &n in order {
            let node = g.node(n);
            let r = role(&node.op).unwrap_or(Role::Const);
            match r {
                Role::Const => {
                    let out = node.outputs[0];
                    let c = g
                        .constant(out)
                        .ok_or_else(|| node_err(g, n, "constant node without data"))?;
                    let id = node.constant.ok_or_else(|| node_err(g, n, "no handle"))?;
                    if !c.encoding().is_plain() {
                        let c = c.clone();
                        self.add_decoded(n, out, id, &c)?;
                        continue;
                    }
                    self.add_buffer(
                        out,
                        BufferKind::Constant {
                            id,
                            data: c.clone(),
                        },
                    )
                    .map_err(|m| node_err(g, n, m))?;
                }
                Role::View => {
                    let src = node
                        .inputs
                        .first()
                        .copied()
                        .flatten()
                        .ok_or_else(|| node_err(g, n, "missing data input"))?;
                    let of = *self
                        .value_buf
                        .get(&src)
                        .ok_or_else(|| node_err(g, n, "input has no buffer"))?;
                    let out = node.outputs[0];
                    self.add_buffer(out, BufferKind::View(of))
                        .map_err(|m| node_err(g, n, m))?;
                    let numel = |s: &[Size]| s.iter().fold(Size::known(1), |a, d| a.mul(d));
                    let a = numel(&self.program.buffers[of.0 as usize].shape);
                    let b = numel(&self.program.buffer(self.value_buf[&out]).shape);
                    if a != b {
                        return Err(node_err(
                            g,
                            n,
                            format!("view changes the element count ({a} to {b})"),
                        ));
                    }
                }
                Role::Split => {
                    for &o in &node.outputs {
                        self.add_buffer(o, BufferKind::Temp)
                            .map_err(|m| node_err(g, n, m))?;
                    }
                }
                _ => {
                    for (slot, o) in node.outputs.iter().enumerate() {
                        if slot > 0 && g.is_used(*o) {
                            return Err(node_err(
                                g,
                                n,
                                format!("output {slot} is used; only the first output is lowered"),
                            ));
                        }
                    }
                    let out = node.outputs[0];
                    if tails.contains_key(&out) {
                        self.add_buffer(out, BufferKind::Temp)
                            .map_err(|m| node_err(g, n, m))?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Graph outputs: a kernel result becomes the output buffer itself; anything else
    /// (an input, a constant, a view, a value returned twice) is copied.
    fn bind_outputs(&mut self) -> Result<(), LowerError> {
        let outs: Vec<ValueId> = self.graph.outputs().to_vec();
        for (i, v) in outs.into_iter().enumerate() {
            let b = *self
                .value_buf
                .get(&v)
                .ok_or_else(|| LowerError::Graph(format!("output {i} has no buffer")))?;
            if matches!(self.program.buffer(b).kind, BufferKind::Temp) {
                self.program.buffers[b.0 as usize].kind = BufferKind::Output(i);
                self.program.outputs.push(b);
                continue;
            }
            let mut dst = self.program.buffer(b).clone();
            dst.kind = BufferKind::Output(i);
            let d = BufferId(self.program.buffers.len() as u32);
            self.program.buffers.push(dst);
            self.program.outputs.push(d);
            let k = self.copy_kernel(b, d, None);
            self.program.kernels.push(k);
        }
        Ok(())
    }

    /// A kernel copying `src` into `dst`; with `perm`, output axis `j` reads input axis
    /// `perm[j]`.
    fn copy_kernel(&self, src: BufferId, dst: BufferId, perm: Option<&[usize]>) -> Kernel {
        let mut kb = KernelBuilder::default();
        let out_shape = self.program.buffer(dst).shape.clone();
        let loops: Vec<Loop> = out_shape
            .iter()
            .map(|e| Loop {
                var: kb.var(),
                extent: e.clone(),
            })
            .collect();
        let vars: Vec<Var> = loops.iter().map(|l| l.var).collect();
        let src_shape = &self.program.buffer(src).shape;
        let mut axes = vec![None; src_shape.len()];
        for (j, v) in vars.iter().enumerate() {
            let a = perm.map_or(j, |p| p[j]);
            axes[a] = Some(*v);
        }
        let load = Expr::Load(src, index_for(src_shape, &axes));
        let all: Vec<Option<Var>> = vars.iter().map(|v| Some(*v)).collect();
        let body = vec![Stmt::Store(dst, index_for(&out_shape, &all), load)];
        let name = format!(
            "k{}_{}",
            self.program.kernels.len(),
            if perm.is_some() { "transpose" } else { "copy" }
        );
        let dtype = self.program.buffer(dst).dtype;
        Kernel {
            name,
            kind: KernelKind::Copy,
            nodes: vec![],
            schedule: default_schedule(KernelKind::Copy, &loops, dtype, None),
            loops,
            body,
            locals: kb.locals,
        }
    }

    fn buf(&self, n: NodeId, v: ValueId) -> Result<BufferId, LowerError> {
        if self.decoded.contains_key(&v) {
            return Err(node_err(
                self.graph,
                n,
                format!(
                    "input `{}` is an encoded constant; only matmul, Gemm and elementwise ops read encoded constants yet",
                    self.graph.value(v).name
                ),
            ));
        }
        self.value_buf
            .get(&v)
            .copied()
            .ok_or_else(|| node_err(self.graph, n, "an input has no buffer"))
    }

    fn input(&self, n: NodeId, slot: usize) -> Result<ValueId, LowerError> {
        self.graph
            .node(n)
            .inputs
            .get(slot)
            .copied()
            .flatten()
            .ok_or_else(|| node_err(self.graph, n, format!("input {slot} is missing")))
    }

    fn kernel_for(&self, grp: &Group) -> Result<Kernel, LowerError> {
        let g = self.graph;
        let first = grp.nodes[0];
        let out_buf = self.buf(first, grp.tail)?;
        let out_shape = self.program.buffer(out_buf).shape.clone();
        let mut kb = KernelBuilder::default();
        let loops_for = |kb: &mut KernelBuilder, shape: &[Size]| -> Vec<Loop> {
            shape
                .iter()
                .map(|e| Loop {
                    var: kb.var(),
                    extent: e.clone(),
                })
                .collect()
        };
        let nodes: Vec<(String, String)> = grp
            .nodes
            .iter()
            .map(|&n| (g.node_label(n), g.node(n).op.to_string()))
            .collect();
        let names: Vec<String> = nodes.iter().map(|(_, op)| op.clone()).collect();
        let name = format!("k{}_{}", self.program.kernels.len(), names.join("_"));
        let dtype = self.program.buffer(out_buf).dtype;
        let (kind, loops, body, row_extent) = match grp.role {
            Role::Const | Role::View => {
                return Err(node_err(g, first, "not a kernel"));
            }
            Role::Transpose => {
                let src = self.buf(first, self.input(first, 0)?)?;
                let rank = out_shape.len();
                let perm: Vec<usize> = match g.node(first).attrs.ints("perm") {
                    Some(p) => p
                        .iter()
                        .map(|&a| {
                            usize::try_from(if a < 0 { a + rank as i64 } else { a })
                                .ok()
                                .filter(|&a| a < rank)
                                .ok_or_else(|| node_err(g, first, format!("bad perm axis {a}")))
                        })
                        .collect::<Result<_, _>>()?,
                    None => (0..rank).rev().collect(),
                };
                if perm.len() != rank {
                    return Err(node_err(g, first, "perm length differs from the rank"));
                }
                let mut k = self.copy_kernel(src, out_buf, Some(&perm));
                k.name = name;
                k.nodes = nodes;
                return Ok(k);
            }
            Role::Row => {
                let x = self.input(first, 0)?;
                let xshape = shape_of(g, x).map_err(|m| node_err(g, first, m))?;
                let rank = xshape.len();
                if rank == 0 {
                    return Err(node_err(g, first, "rank-0 input"));
                }
                let node = g.node(first);
                let axis = node.attrs.int_or("axis", -1);
                if axis != -1 && axis != rank as i64 - 1 {
                    return Err(node_err(
                        g,
                        first,
                        format!(
                            "axis {axis} is not the last axis (only last-axis rows are lowered)"
                        ),
                    ));
                }
                let loops = loops_for(&mut kb, &xshape[..rank - 1]);
                let k = kb.var();
                let mut vars: Vec<Var> = loops.iter().map(|l| l.var).collect();
                vars.push(k);
                let n_extent = xshape[rank - 1].clone();
                let all: Vec<Option<Var>> = vars.iter().map(|v| Some(*v)).collect();
                let xb = self.buf(first, x)?;
                let xi = index_for(&xshape, &all);
                let xl = || Expr::Load(xb, xi.clone());
                let t = g.ty(x).dtype;
                let oi = index_for(&out_shape, &all);
                let body = if node.op == OpKind::Softmax {
                    row_softmax(&mut kb, t, k, &n_extent, xl, out_buf, oi)
                } else {
                    let eps = node.attrs.float_or("epsilon", 1e-5) as f64;
                    let scale = match node.inputs.get(1).copied().flatten() {
                        Some(v) => Some(self.bcast_load(first, v, &xshape, &vars)?),
                        None => None,
                    };
                    let bias = match node.inputs.get(2).copied().flatten() {
                        Some(v) => Some(self.bcast_load(first, v, &xshape, &vars)?),
                        None => None,
                    };
                    let n = n_extent
                        .as_known()
                        .map(|n| Expr::lit(n as f64, t))
                        .ok_or_else(|| node_err(g, first, "symbolic row length"))?;
                    row_layer_norm(
                        &mut kb, t, k, &n_extent, n, eps, xl, scale, bias, out_buf, oi,
                    )
                };
                (KernelKind::Row, loops, body, Some(n_extent))
            }
            Role::Concat => {
                let mut k = self.concat_kernel(first, out_buf)?;
                k.name = name;
                k.nodes = nodes;
                return Ok(k);
            }
            Role::Split => {
                let mut k = self.split_kernel(first)?;
                k.name = name;
                k.nodes = nodes;
                return Ok(k);
            }
            _ => {
                let loops = loops_for(&mut kb, &out_shape);
                let vars: Vec<Var> = loops.iter().map(|l| l.var).collect();
                let mut locals: HashMap<ValueId, Local> = HashMap::new();
                let mut body = vec![];
                let mut kind = KernelKind::Elementwise;
                for (pos, &n) in grp.nodes.iter().enumerate() {
                    let node = g.node(n);
                    let out = node.outputs[0];
                    let t = g.ty(out).dtype;
                    if pos == 0 && grp.role == Role::MatMul {
                        let l = kb.local(t);
                        kind = KernelKind::MatMul;
                        self.matmul_body(n, &mut kb, &vars, l, &mut body)?;
                        locals.insert(out, l);
                    } else if pos == 0 && grp.role.is_head() {
                        let (l, k) =
                            self.head(grp.role, n, &mut kb, &vars, &out_shape, &mut body)?;
                        kind = k;
                        locals.insert(out, l);
                    } else {
                        let l = kb.local(t);
                        let mut args = vec![];
                        for v in node.inputs.iter() {
                            let Some(v) = v else {
                                args.push(None);
                                continue;
                            };
                            let e = match locals.get(v) {
                                Some(l) => Expr::Local(*l),
                                None => self.bcast_load(n, *v, &out_shape, &vars)?,
                            };
                            args.push(Some((e, g.ty(*v).dtype)));
                        }
                        let e = if node.op == OpKind::Clip {
                            ops::clip(g, n, args)?
                        } else {
                            let args = args
                                .into_iter()
                                .map(|a| a.ok_or_else(|| node_err(g, n, "omitted optional input")))
                                .collect::<Result<Vec<_>, _>>()?;
                            elementwise(g, n, args, t)?
                        };
                        body.push(Stmt::Assign(l, e));
                        if kind == KernelKind::Copy {
                            kind = KernelKind::Elementwise;
                        }
                        locals.insert(out, l);
                    }
                }
                let all: Vec<Option<Var>> = vars.iter().map(|v| Some(*v)).collect();
                body.push(Stmt::Store(
                    out_buf,
                    index_for(&out_shape, &all),
                    Expr::Local(locals[&grp.tail]),
                ));
                (kind, loops, body, None)
            }
        };
        Ok(Kernel {
            name,
            kind,
            nodes,
            schedule: default_schedule(kind, &loops, dtype, row_extent.as_ref()),
            loops,
            body,
            locals: kb.locals,
        })
    }

    /// A load of `v` broadcast into loops `vars` over `out`.
    fn bcast_load(
        &self,
        n: NodeId,
        v: ValueId,
        out: &[Size],
        vars: &[Var],
    ) -> Result<Expr, LowerError> {
        let shape = self.value_shape(n, v)?;
        let axes = broadcast_axes(&shape, out, vars).map_err(|m| node_err(self.graph, n, m))?;
        self.load_value(n, v, &axes)
    }

    /// `acc = 0; reduce k { acc = acc + a[.., m, k] * b[.., k, n] }`.
    fn matmul_body(
        &self,
        n: NodeId,
        kb: &mut KernelBuilder,
        vars: &[Var],
        acc: Local,
        body: &mut Vec<Stmt>,
    ) -> Result<(), LowerError> {
        let g = self.graph;
        let (a, b) = (self.input(n, 0)?, self.input(n, 1)?);
        let ash = self.value_shape(n, a)?;
        let bsh = self.value_shape(n, b)?;
        if ash.is_empty() || bsh.is_empty() {
            return Err(node_err(g, n, "matmul of a rank-0 operand"));
        }
        let k_extent = ash[ash.len() - 1].clone();
        let kb_dim = if bsh.len() == 1 {
            &bsh[0]
        } else {
            &bsh[bsh.len() - 2]
        };
        if &k_extent != kb_dim {
            return Err(node_err(
                g,
                n,
                format!("contracted dims differ ({k_extent} and {kb_dim})"),
            ));
        }
        // Output axes: batch..., then m when a has rank >= 2, then n when b has rank >= 2.
        let has_m = ash.len() >= 2;
        let has_n = bsh.len() >= 2;
        let tail = has_m as usize + has_n as usize;
        if vars.len() < tail {
            return Err(node_err(g, n, "output rank too small"));
        }
        let nb = vars.len() - tail;
        let out_shape = shape_of(g, g.node(n).outputs[0]).map_err(|m| node_err(g, n, m))?;
        let batch_out = &out_shape[..nb];
        let m_var = has_m.then(|| vars[nb]);
        let n_var = has_n.then(|| vars[vars.len() - 1]);
        let k = kb.var();
        let mut a_axes = if has_m {
            broadcast_axes(&ash[..ash.len() - 2], batch_out, &vars[..nb])
                .map_err(|m| node_err(g, n, m))?
        } else {
            vec![]
        };
        if has_m {
            a_axes.push((ash[ash.len() - 2] != Size::known(1)).then_some(m_var.unwrap_or(k)));
        }
        a_axes.push(Some(k));
        let mut b_axes = if has_n {
            broadcast_axes(&bsh[..bsh.len() - 2], batch_out, &vars[..nb])
                .map_err(|m| node_err(g, n, m))?
        } else {
            vec![]
        };
        b_axes.push(Some(k));
        if has_n {
            b_axes.push((bsh[bsh.len() - 1] != Size::known(1)).then_some(n_var.unwrap_or(k)));
        }
        let t = g.ty(g.node(n).outputs[0]).dtype;
        body.push(Stmt::Assign(acc, Expr::lit(0.0, t)));
        let prod = Expr::binary(
            BinaryOp::Mul,
            self.load_value(n, a, &a_axes)?,
            self.load_value(n, b, &b_axes)?,
        );
        body.push(Stmt::Loop {
            var: k,
            extent: k_extent,
            reduce: true,
            body: vec![Stmt::Assign(
                acc,
                Expr::binary(BinaryOp::Add, Expr::Local(acc), prod),
            )],
        });
        Ok(())
    }
}

/// Softmax over one row: max, sum of exponentials, then the normalised values.
fn row_softmax(
    kb: &mut KernelBuilder,
    t: smelt_ir::DType,
    k: Var,
    n: &Size,
    x: impl Fn() -> Expr,
    out: BufferId,
    oi: Index,
) -> Vec<Stmt> {
    // Three passes: the row maximum; e^(x - max) stored and summed in one pass (one
    // exponential per element); then a multiply by the reciprocal of the sum.
    let m = kb.local(t);
    let s = kb.local(t);
    let e = kb.local(t);
    let r = kb.local(t);
    vec![
        Stmt::Assign(m, Expr::lit(f64::NEG_INFINITY, t)),
        Stmt::Loop {
            var: k,
            extent: n.clone(),
            reduce: true,
            body: vec![Stmt::Assign(
                m,
                Expr::binary(BinaryOp::Max, Expr::Local(m), x()),
            )],
        },
        Stmt::Assign(s, Expr::lit(0.0, t)),
        Stmt::Loop {
            var: k,
            extent: n.clone(),
            reduce: true,
            body: vec![
                Stmt::Assign(
                    e,
                    Expr::unary(
                        UnaryOp::Exp,
                        Expr::binary(BinaryOp::Sub, x(), Expr::Local(m)),
                    ),
                ),
                Stmt::Store(out, oi.clone(), Expr::Local(e)),
                Stmt::Assign(
                    s,
                    Expr::binary(BinaryOp::Add, Expr::Local(s), Expr::Local(e)),
                ),
            ],
        },
        Stmt::Assign(
            r,
            Expr::binary(BinaryOp::Div, Expr::lit(1.0, t), Expr::Local(s)),
        ),
        Stmt::Loop {
            var: k,
            extent: n.clone(),
            reduce: false,
            body: vec![Stmt::Store(
                out,
                oi.clone(),
                Expr::binary(BinaryOp::Mul, Expr::Load(out, oi), Expr::Local(r)),
            )],
        },
    ]
}

/// Layer normalization over one row: mean, variance, then the scaled values.
#[allow(clippy::too_many_arguments)]
fn row_layer_norm(
    kb: &mut KernelBuilder,
    t: smelt_ir::DType,
    k: Var,
    extent: &Size,
    n: Expr,
    eps: f64,
    x: impl Fn() -> Expr,
    scale: Option<Expr>,
    bias: Option<Expr>,
    out: BufferId,
    oi: Index,
) -> Vec<Stmt> {
    let sum = kb.local(t);
    let mean = kb.local(t);
    let sq = kb.local(t);
    let rstd = kb.local(t);
    let d = || Expr::binary(BinaryOp::Sub, x(), Expr::Local(mean));
    let mut y = Expr::binary(BinaryOp::Mul, d(), Expr::Local(rstd));
    if let Some(s) = scale {
        y = Expr::binary(BinaryOp::Mul, y, s);
    }
    if let Some(b) = bias {
        y = Expr::binary(BinaryOp::Add, y, b);
    }
    let reduce = |body| Stmt::Loop {
        var: k,
        extent: extent.clone(),
        reduce: true,
        body,
    };
    vec![
        Stmt::Assign(sum, Expr::lit(0.0, t)),
        reduce(vec![Stmt::Assign(
            sum,
            Expr::binary(BinaryOp::Add, Expr::Local(sum), x()),
        )]),
        Stmt::Assign(
            mean,
            Expr::binary(BinaryOp::Div, Expr::Local(sum), n.clone()),
        ),
        Stmt::Assign(sq, Expr::lit(0.0, t)),
        reduce(vec![Stmt::Assign(
            sq,
            Expr::binary(
                BinaryOp::Add,
                Expr::Local(sq),
                Expr::binary(BinaryOp::Mul, d(), d()),
            ),
        )]),
        Stmt::Assign(
            rstd,
            Expr::binary(
                BinaryOp::Div,
                Expr::lit(1.0, t),
                Expr::unary(
                    UnaryOp::Sqrt,
                    Expr::binary(
                        BinaryOp::Add,
                        Expr::binary(BinaryOp::Div, Expr::Local(sq), n),
                        Expr::lit(eps, t),
                    ),
                ),
            ),
        ),
        Stmt::Loop {
            var: k,
            extent: extent.clone(),
            reduce: false,
            body: vec![Stmt::Store(out, oi, y)],
        },
    ]
}

/// The scalar expression of one elementwise node, given its inputs' expressions and
/// dtypes; `t` is the output dtype.
fn elementwise(
    graph: &Graph,
    n: NodeId,
    args: Vec<(Expr, smelt_ir::DType)>,
    t: smelt_ir::DType,
) -> Result<Expr, LowerError> {
    use OpKind::*;
    let node = graph.node(n);
    let arity = |k: usize| -> Result<(), LowerError> {
        if args.len() == k {
            Ok(())
        } else {
            Err(node_err(
                graph,
                n,
                format!("expected {k} inputs, found {}", args.len()),
            ))
        }
    };
    // Binary arithmetic converts the right side to the left side's dtype (Pow allows
    // an exponent of another type).
    let bin = |op: BinaryOp, args: Vec<(Expr, smelt_ir::DType)>| -> Result<Expr, LowerError> {
        let mut it = args.into_iter();
        let (mut acc, at) = it.next().ok_or_else(|| node_err(graph, n, "no inputs"))?;
        for (e, et) in it {
            let e = if et == at {
                e
            } else {
                Expr::Cast(at, Box::new(e))
            };
            acc = Expr::binary(op, acc, e);
        }
        Ok(acc)
    };
    let one = |t| Expr::lit(1.0, t);
    Ok(match node.op {
        Add | Sub | Mul | Div | Pow | And | Or => {
            arity(2)?;
            let op = match node.op {
                Add => BinaryOp::Add,
                Sub => BinaryOp::Sub,
                Mul => BinaryOp::Mul,
                Div => BinaryOp::Div,
                Pow => BinaryOp::Pow,
                And => BinaryOp::And,
                _ => BinaryOp::Or,
            };
            bin(op, args)?
        }
        Max | Min => {
            if args.is_empty() {
                return Err(node_err(graph, n, "no inputs"));
            }
            bin(
                if node.op == Max {
                    BinaryOp::Max
                } else {
                    BinaryOp::Min
                },
                args,
            )?
        }
        Equal | Less | LessOrEqual | Greater | GreaterOrEqual => {
            arity(2)?;
            let op = match node.op {
                Equal => CmpOp::Eq,
                Less => CmpOp::Lt,
                LessOrEqual => CmpOp::Le,
                Greater => CmpOp::Gt,
                _ => CmpOp::Ge,
            };
            let mut it = args.into_iter();
            let (a, _) = it.next().expect("arity checked");
            let (b, _) = it.next().expect("arity checked");
            Expr::Cmp(op, Box::new(a), Box::new(b))
        }
        Where => {
            arity(3)?;
            let mut it = args.into_iter();
            let (c, _) = it.next().expect("arity checked");
            let (a, _) = it.next().expect("arity checked");
            let (b, _) = it.next().expect("arity checked");
            Expr::Select(Box::new(c), Box::new(a), Box::new(b))
        }
        QuantizeLinear | DequantizeLinear => quant_linear(graph, n, args, t)?,
        _ => {
            arity(1)?;
            let (x, xt) = args.into_iter().next().expect("arity checked");
            let un = |op| Expr::unary(op, x.clone());
            match node.op {
                Neg => un(UnaryOp::Neg),
                Abs => un(UnaryOp::Abs),
                Exp => un(UnaryOp::Exp),
                Log => un(UnaryOp::Log),
                Sqrt => un(UnaryOp::Sqrt),
                Tanh => un(UnaryOp::Tanh),
                Erf => un(UnaryOp::Erf),
                Not => un(UnaryOp::Not),
                Reciprocal => Expr::binary(BinaryOp::Div, one(xt), x),
                Sign => {
                    let zero = Expr::lit(0.0, xt);
                    let cmp = |op| Expr::Cmp(op, Box::new(x.clone()), Box::new(zero.clone()));
                    Expr::Select(
                        Box::new(cmp(CmpOp::Gt)),
                        Box::new(one(xt)),
                        Box::new(Expr::Select(
                            Box::new(cmp(CmpOp::Lt)),
                            Box::new(Expr::lit(-1.0, xt)),
                            Box::new(x.clone()),
                        )),
                    )
                }
                Relu => Expr::binary(BinaryOp::Max, x, Expr::lit(0.0, xt)),
                Sigmoid => Expr::binary(
                    BinaryOp::Div,
                    one(xt),
                    Expr::binary(
                        BinaryOp::Add,
                        one(xt),
                        Expr::unary(UnaryOp::Exp, un(UnaryOp::Neg)),
                    ),
                ),
                Gelu => {
                    let half_x = Expr::binary(BinaryOp::Mul, Expr::lit(0.5, xt), x.clone());
                    let inner = match node.attrs.str("approximate").unwrap_or("none") {
                        "none" => Expr::unary(
                            UnaryOp::Erf,
                            Expr::binary(
                                BinaryOp::Mul,
                                x.clone(),
                                Expr::lit(std::f64::consts::FRAC_1_SQRT_2, xt),
                            ),
                        ),
                        "tanh" => {
                            let cube = Expr::binary(
                                BinaryOp::Mul,
                                x.clone(),
                                Expr::binary(BinaryOp::Mul, x.clone(), x.clone()),
                            );
                            let poly = Expr::binary(
                                BinaryOp::Add,
                                x.clone(),
                                Expr::binary(BinaryOp::Mul, Expr::lit(0.044715, xt), cube),
                            );
                            let c = (2.0 / std::f64::consts::PI).sqrt();
                            Expr::unary(
                                UnaryOp::Tanh,
                                Expr::binary(BinaryOp::Mul, Expr::lit(c, xt), poly),
                            )
                        }
                        other => {
                            return Err(node_err(
                                graph,
                                n,
                                format!("unknown approximate = {other:?}"),
                            ))
                        }
                    };
                    Expr::binary(
                        BinaryOp::Mul,
                        half_x,
                        Expr::binary(BinaryOp::Add, one(xt), inner),
                    )
                }
                Cast => {
                    if xt == t {
                        x
                    } else {
                        Expr::Cast(t, Box::new(x))
                    }
                }
                _ => return Err(node_err(graph, n, "not an elementwise op")),
            }
        }
    })
}

/// QuantizeLinear / DequantizeLinear with per-tensor or last-axis scales (the scale
/// and zero point broadcast from the right, which is the ONNX meaning only when the
/// quantization axis is the last one): `q = saturate(round_half_even(x / s) + z)` and
/// `x = (q − z) · s`.
fn quant_linear(
    graph: &Graph,
    n: NodeId,
    args: Vec<(Expr, smelt_ir::DType)>,
    t: smelt_ir::DType,
) -> Result<Expr, LowerError> {
    let node = graph.node(n);
    if node.attrs.int_or("block_size", 0) != 0 {
        return Err(node_err(
            graph,
            n,
            "blocked Q/DQ (block_size) is not lowered yet",
        ));
    }
    let rank_of = |slot: usize| {
        node.inputs
            .get(slot)
            .copied()
            .flatten()
            .and_then(|v| graph.ty(v).dims().map(|d| d.len()))
            .unwrap_or(0)
    };
    let x_rank = rank_of(0);
    if rank_of(1) == 1 {
        let axis = node.attrs.int_or("axis", 1);
        let axis = if axis < 0 { axis + x_rank as i64 } else { axis };
        if axis != x_rank as i64 - 1 {
            return Err(node_err(
                graph,
                n,
                format!("per-axis Q/DQ on axis {axis} of a rank-{x_rank} input (only the last axis is lowered yet)"),
            ));
        }
    }
    let mut it = args.into_iter();
    let (x, xt) = it.next().ok_or_else(|| node_err(graph, n, "no input"))?;
    let (s, st) = it.next().ok_or_else(|| node_err(graph, n, "no scale"))?;
    let f = smelt_ir::DType::F32;
    let to_f32 = |e: Expr, et: smelt_ir::DType| {
        if et == f {
            e
        } else {
            Expr::Cast(f, Box::new(e))
        }
    };
    let s = to_f32(s, st);
    let zp = it.next().map(|(z, zt)| to_f32(z, zt));
    Ok(if node.op == OpKind::DequantizeLinear {
        let q = to_f32(x, xt);
        let centred = match zp {
            Some(z) => Expr::binary(BinaryOp::Sub, q, z),
            None => q,
        };
        Expr::binary(BinaryOp::Mul, centred, s)
    } else {
        let (lo, hi) = match t {
            smelt_ir::DType::U8 => (0.0, 255.0),
            smelt_ir::DType::I8 => (-128.0, 127.0),
            other => {
                return Err(node_err(
                    graph,
                    n,
                    format!("quantizing to {other} is not lowered yet"),
                ))
            }
        };
        // Round half to even by the 1.5·2^23 trick: after clamping |v| < 2^22, adding
        // and subtracting the constant leaves v rounded by the FPU's own rounding.
        let magic = Expr::lit(12_582_912.0, f);
        let v = Expr::binary(BinaryOp::Div, to_f32(x, xt), s);
        let v = Expr::binary(
            BinaryOp::Min,
            Expr::binary(BinaryOp::Max, v, Expr::lit(-4_194_304.0, f)),
            Expr::lit(4_194_304.0, f),
        );
        let r = Expr::binary(
            BinaryOp::Sub,
            Expr::binary(BinaryOp::Add, v, magic.clone()),
            magic,
        );
        let r = match zp {
            Some(z) => Expr::binary(BinaryOp::Add, r, z),
            None => r,
        };
        let r = Expr::binary(
            BinaryOp::Min,
            Expr::binary(BinaryOp::Max, r, Expr::lit(lo, f)),
            Expr::lit(hi, f),
        );
        Expr::Cast(t, Box::new(r))
    })
}

/// The default schedule of a kernel: the output loops in order, the first loop longer
/// than 1 split across threads, 256-bit vectors on the innermost loop (the row loop for
/// row kernels) when it is long enough, and 32×32 tiles over a matmul's output rows and
/// columns.
fn default_schedule(
    kind: KernelKind,
    loops: &[Loop],
    dtype: smelt_ir::DType,
    row: Option<&Size>,
) -> Schedule {
    let lanes = (256 / dtype.bits().max(8)).max(1);
    let inner = row.or(loops.last().map(|l| &l.extent));
    let vector_width = match inner.map(Size::as_known) {
        None => 1,
        Some(Some(n)) if n < lanes as u64 => 1,
        Some(_) => lanes,
    };
    let mut tiles = vec![1; loops.len()];
    if kind == KernelKind::MatMul {
        let r = loops.len();
        for t in tiles.iter_mut().skip(r.saturating_sub(2)) {
            *t = 32;
        }
    }
    let first_non_unit = loops
        .iter()
        .position(|l| l.extent != Size::known(1))
        .or((!loops.is_empty()).then_some(0));
    let parallel_axis = if kind == KernelKind::MatMul && loops.len() >= 2 {
        matmul_parallel_axis(loops).or(first_non_unit)
    } else {
        first_non_unit
    };
    Schedule {
        vector_width,
        tiles,
        loop_order: (0..loops.len()).collect(),
        parallel_axis,
    }
}

/// Which loop of a matmul (`[batch.., m, n]`) to split across threads: a batch loop
/// with at least 8 iterations (attention heads, batched inputs: whole independent
/// matmuls per thread), else the columns when there are at least 256 of them (each
/// thread then reads only its share of the weights, which at small batch is most of
/// the traffic), else the rows.
fn matmul_parallel_axis(loops: &[Loop]) -> Option<usize> {
    let r = loops.len();
    let known = |i: usize| loops[i].extent.as_known();
    if let Some(b) = (0..r - 2).find(|&i| known(i).is_none_or(|n| n >= 8)) {
        return Some(b);
    }
    match known(r - 1) {
        Some(n) if n >= 256 => Some(r - 1),
        _ => Some(r - 2),
    }
}
