//! The loop-level kernel IR: [`KernelProgram`], its buffers, kernels, statements and
//! scalar expressions, and its deterministic text form (see `docs/codegen.md`).

use std::fmt;
use std::sync::Arc;

use smelt_ir::{ConstId, Constant, DType};

/// The symbol of kernel `index` in object files whose kernels are named after
/// `prefix` (`{prefix}_k{index}`); every backend and the AOT runtime use this one name.
pub fn kernel_symbol(prefix: &str, index: usize) -> String {
    format!("{prefix}_k{index}")
}

/// A buffer handle, an index into [`KernelProgram::buffers`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BufferId(pub u32);

/// A loop variable of one kernel (printed `i0`, `i1`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Var(pub u32);

/// A scalar local of one kernel (printed `t0`, `t1`, ...); its dtype is in
/// [`Kernel::locals`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Local(pub u32);

/// A symbolic size: a constant factor times a product of named dims
/// (`4*?batch*?seq`). Extents and strides are sizes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Size {
    /// The constant factor.
    pub factor: u64,
    /// Named dims multiplied in, sorted by name.
    pub syms: Vec<String>,
}

impl Size {
    /// A known size.
    pub fn known(n: u64) -> Size {
        Size {
            factor: n,
            syms: vec![],
        }
    }

    /// A named dim.
    pub fn sym(name: &str) -> Size {
        Size {
            factor: 1,
            syms: vec![name.to_string()],
        }
    }

    /// The product of two sizes.
    pub fn mul(&self, other: &Size) -> Size {
        let mut syms = self.syms.clone();
        syms.extend(other.syms.iter().cloned());
        syms.sort();
        Size {
            factor: self.factor * other.factor,
            syms,
        }
    }

    /// The value when it has no named dims.
    pub fn as_known(&self) -> Option<u64> {
        self.syms.is_empty().then_some(self.factor)
    }

    /// The value with every named dim looked up by `lookup`; `Err(name)` names the
    /// first dim `lookup` does not know.
    pub fn eval(&self, lookup: impl Fn(&str) -> Option<u64>) -> Result<u64, String> {
        let mut n = self.factor;
        for s in &self.syms {
            let v = lookup(s).ok_or_else(|| s.clone())?;
            n = n
                .checked_mul(v)
                .ok_or_else(|| format!("{s} (size overflows)"))?;
        }
        Ok(n)
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.syms.is_empty() {
            return write!(f, "{}", self.factor);
        }
        let mut first = true;
        if self.factor != 1 {
            write!(f, "{}", self.factor)?;
            first = false;
        }
        for s in &self.syms {
            if !first {
                f.write_str("*")?;
            }
            write!(f, "?{s}")?;
            first = false;
        }
        Ok(())
    }
}

/// What a buffer is.
#[derive(Debug, Clone)]
pub enum BufferKind {
    /// The `n`-th graph input, provided by the caller.
    Input(usize),
    /// The `n`-th graph output, written by a kernel and returned to the caller.
    Output(usize),
    /// A constant (plain encoding) from the graph's weight store, shared by handle.
    Constant {
        /// The handle in the graph's weight store.
        id: ConstId,
        /// The constant itself.
        data: Arc<Constant>,
    },
    /// An intermediate result; it lives in the arena (see [`crate::plan`]).
    Temp,
    /// A view of another buffer's storage with a different shape (reshape, squeeze,
    /// unsqueeze, flatten, identity): no copy, same row-major element order.
    View(BufferId),
}

/// A buffer: a dense row-major tensor.
#[derive(Debug, Clone)]
pub struct Buffer {
    /// The graph value it holds (for reading the text form).
    pub name: String,
    /// Element type.
    pub dtype: DType,
    /// Shape; every dim is known or named.
    pub shape: Vec<Size>,
    /// What it is.
    pub kind: BufferKind,
}

/// An index into a buffer, as a row-major element offset: the sum of `var * stride`
/// terms, data-dependent `expr * stride` terms (gathers) and a constant offset (padded
/// windows, always guarded by an [`Stmt::If`]). An empty index is element 0.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Index {
    /// The affine terms, outermost first.
    pub terms: Vec<(Var, Size)>,
    /// Data-dependent terms: an `i64` expression times a stride. Lowering clamps the
    /// expression into range, so a bad index in the data cannot reach outside the buffer.
    pub dynamic: Vec<(Expr, Size)>,
    /// A constant element offset.
    pub offset: i64,
}

impl Index {
    /// An affine index with no dynamic terms and no offset.
    pub fn affine(terms: Vec<(Var, Size)>) -> Index {
        Index {
            terms,
            dynamic: vec![],
            offset: 0,
        }
    }

    /// The stride of `var` in this index (0 when it does not occur).
    pub fn stride_of(&self, var: Var) -> Size {
        let mut total: Option<Size> = None;
        for (v, s) in &self.terms {
            if *v == var {
                total = Some(match total {
                    None => s.clone(),
                    // Repeated vars only come from diagonal reads; keep the sum exact when known.
                    Some(t) => Size::known(t.as_known().unwrap_or(0) + s.as_known().unwrap_or(0)),
                });
            }
        }
        total.unwrap_or(Size::known(0))
    }
}

/// Unary scalar functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaryOp {
    /// `-x`.
    Neg,
    /// `|x|`.
    Abs,
    /// `e^x`.
    Exp,
    /// Natural logarithm.
    Log,
    /// Square root.
    Sqrt,
    /// Hyperbolic tangent.
    Tanh,
    /// The error function.
    Erf,
    /// Logical not of a bool.
    Not,
}

/// Binary scalar arithmetic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    /// `a + b`.
    Add,
    /// `a - b`.
    Sub,
    /// `a * b`.
    Mul,
    /// `a / b` (integer division truncates toward zero).
    Div,
    /// `a ^ b`.
    Pow,
    /// The larger (NaN if either is NaN, for floats).
    Max,
    /// The smaller (NaN if either is NaN, for floats).
    Min,
    /// Logical and of bools.
    And,
    /// Logical or of bools.
    Or,
}

/// Comparisons; they produce a `bool`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `a == b`.
    Eq,
    /// `a < b`.
    Lt,
    /// `a <= b`.
    Le,
    /// `a > b`.
    Gt,
    /// `a >= b`.
    Ge,
}

/// A scalar expression. Every expression has one dtype, given by [`Expr::dtype`].
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A literal of a dtype (integers and bools are held exactly in the `f64`).
    Lit(f64, DType),
    /// An element of a buffer.
    Load(BufferId, Index),
    /// A local's current value.
    Local(Local),
    /// The current value of a loop variable, as an `i64`.
    Var(Var),
    /// A unary function.
    Unary(UnaryOp, Box<Expr>),
    /// Binary arithmetic; both sides have the same dtype.
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    /// A comparison of two values of the same dtype.
    Cmp(CmpOp, Box<Expr>, Box<Expr>),
    /// `cond ? a : b`; `a` and `b` have the same dtype.
    Select(Box<Expr>, Box<Expr>, Box<Expr>),
    /// A conversion (float to int truncates toward zero; to bool is `!= 0`).
    Cast(DType, Box<Expr>),
}

impl Expr {
    /// A float literal.
    pub fn lit(v: f64, dtype: DType) -> Expr {
        Expr::Lit(v, dtype)
    }

    /// `op(a)`.
    pub fn unary(op: UnaryOp, a: Expr) -> Expr {
        Expr::Unary(op, Box::new(a))
    }

    /// `op(a, b)`.
    pub fn binary(op: BinaryOp, a: Expr, b: Expr) -> Expr {
        Expr::Binary(op, Box::new(a), Box::new(b))
    }

    /// The dtype of the expression; `program` and `kernel` give buffer and local types.
    pub fn dtype(&self, program: &KernelProgram, kernel: &Kernel) -> DType {
        match self {
            Expr::Lit(_, t) | Expr::Cast(t, _) => *t,
            Expr::Load(b, _) => program.buffers[b.0 as usize].dtype,
            Expr::Local(l) => kernel.locals[l.0 as usize],
            Expr::Var(_) => DType::I64,
            Expr::Unary(_, a) | Expr::Binary(_, a, _) => a.dtype(program, kernel),
            Expr::Cmp(..) => DType::Bool,
            Expr::Select(_, a, _) => a.dtype(program, kernel),
        }
    }
}

/// A statement of a kernel body.
#[derive(Debug, Clone, PartialEq)]
pub enum Stmt {
    /// `local = value`.
    Assign(Local, Expr),
    /// `buffer[index] = value`.
    Store(BufferId, Index, Expr),
    /// Run `then` only when `cond` (a `bool`) holds; guards padded windows.
    If {
        /// The condition.
        cond: Expr,
        /// The guarded statements.
        then: Vec<Stmt>,
    },
    /// An inner loop. A `reduce` loop carries accumulators (`t = t op e`) from one
    /// iteration to the next; any inner loop may also compute temporaries and store,
    /// each iteration to its own element.
    Loop {
        /// The loop variable, running `0..extent`.
        var: Var,
        /// Trip count.
        extent: Size,
        /// Whether the loop is a reduction over its variable.
        reduce: bool,
        /// The body.
        body: Vec<Stmt>,
    },
}

/// One output loop of a kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loop {
    /// The loop variable, running `0..extent`.
    pub var: Var,
    /// Trip count.
    pub extent: Size,
}

/// How a backend should run a kernel's output loops. The reference evaluator ignores it:
/// a schedule never changes what a kernel computes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// Elements per vector on the innermost output loop (1: scalar).
    pub vector_width: u32,
    /// Tile size per output loop, outermost first (1: not tiled).
    pub tiles: Vec<u64>,
    /// The order to run the output loops in, as indices into [`Kernel::loops`].
    pub loop_order: Vec<usize>,
    /// The output loop to split across threads, if any.
    pub parallel_axis: Option<usize>,
}

/// What a kernel computes, for reports and for backends that pick a code template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelKind {
    /// A fused chain of elementwise ops.
    Elementwise,
    /// A matmul, possibly with a fused elementwise epilogue.
    MatMul,
    /// A row kernel (softmax, layer normalization) with passes over the last axis.
    Row,
    /// A copy with permuted indices (transpose, or materialising an output), or another
    /// data-movement kernel (gather, slice, expand, concat, split).
    Copy,
    /// A convolution: reduce loops over input channels and the kernel window, the
    /// accumulate guarded by an [`Stmt::If`] where the window reaches into padding,
    /// possibly with a fused elementwise epilogue.
    Conv,
    /// A reduction over some axes of its input (ReduceSum, ReduceMax, ...), possibly
    /// with a fused elementwise epilogue.
    Reduce,
    /// A pooling window (max or average) over the spatial axes, possibly with a fused
    /// elementwise epilogue.
    Pool,
}

/// One kernel: a loop nest over its output with a body of scalar statements.
#[derive(Debug, Clone)]
pub struct Kernel {
    /// A readable name (`k3_matmul_add_gelu`).
    pub name: String,
    /// What it computes.
    pub kind: KernelKind,
    /// The graph nodes fused into it, in order, as `(node name, op text name)`.
    pub nodes: Vec<(String, String)>,
    /// The output loops, outermost first.
    pub loops: Vec<Loop>,
    /// The body, run once per point of the output loops.
    pub body: Vec<Stmt>,
    /// The dtype of each local.
    pub locals: Vec<DType>,
    /// How to run it.
    pub schedule: Schedule,
}

impl Kernel {
    /// Buffers the kernel reads, sorted and without repeats.
    pub fn reads(&self) -> Vec<BufferId> {
        fn expr(e: &Expr, out: &mut Vec<BufferId>) {
            match e {
                Expr::Lit(..) | Expr::Local(_) | Expr::Var(_) => {}
                Expr::Load(b, i) => {
                    out.push(*b);
                    for (e, _) in &i.dynamic {
                        expr(e, out);
                    }
                }
                Expr::Unary(_, a) | Expr::Cast(_, a) => expr(a, out),
                Expr::Binary(_, a, b) | Expr::Cmp(_, a, b) => {
                    expr(a, out);
                    expr(b, out);
                }
                Expr::Select(c, a, b) => {
                    expr(c, out);
                    expr(a, out);
                    expr(b, out);
                }
            }
        }
        fn stmts(s: &[Stmt], out: &mut Vec<BufferId>) {
            for st in s {
                match st {
                    Stmt::Assign(_, e) => expr(e, out),
                    Stmt::Store(_, i, e) => {
                        expr(e, out);
                        for (d, _) in &i.dynamic {
                            expr(d, out);
                        }
                    }
                    Stmt::If { cond, then } => {
                        expr(cond, out);
                        stmts(then, out);
                    }
                    Stmt::Loop { body, .. } => stmts(body, out),
                }
            }
        }
        let mut out = vec![];
        stmts(&self.body, &mut out);
        out.sort();
        out.dedup();
        out
    }

    /// Buffers the kernel writes, sorted and without repeats.
    pub fn writes(&self) -> Vec<BufferId> {
        fn stmts(s: &[Stmt], out: &mut Vec<BufferId>) {
            for st in s {
                match st {
                    Stmt::Store(b, _, _) => out.push(*b),
                    Stmt::Loop { body, .. } | Stmt::If { then: body, .. } => stmts(body, out),
                    Stmt::Assign(..) => {}
                }
            }
        }
        let mut out = vec![];
        stmts(&self.body, &mut out);
        out.sort();
        out.dedup();
        out
    }
}

/// A lowered model: buffers and kernels in execution order.
#[derive(Debug, Clone)]
pub struct KernelProgram {
    /// The graph's name.
    pub name: String,
    /// Every buffer.
    pub buffers: Vec<Buffer>,
    /// Buffers of the graph inputs, in order.
    pub inputs: Vec<BufferId>,
    /// Buffers of the graph outputs, in order.
    pub outputs: Vec<BufferId>,
    /// Kernels in execution order.
    pub kernels: Vec<Kernel>,
}

impl KernelProgram {
    /// The named dims the program's sizes use, sorted: the order in which a backend
    /// passes their run-time values to kernels.
    pub fn dims(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .buffers
            .iter()
            .flat_map(|b| b.shape.iter().flat_map(|s| s.syms.iter().cloned()))
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// The buffer behind `id`.
    pub fn buffer(&self, id: BufferId) -> &Buffer {
        &self.buffers[id.0 as usize]
    }

    /// The buffer whose storage `id` uses (itself unless it is a view).
    pub fn root(&self, mut id: BufferId) -> BufferId {
        while let BufferKind::View(of) = self.buffer(id).kind {
            id = of;
        }
        id
    }

    /// The fusion decisions: for each kernel, its name and the nodes it holds.
    pub fn fusion_report(&self) -> String {
        let mut s = String::new();
        for k in &self.kernels {
            let nodes: Vec<String> = k.nodes.iter().map(|(n, op)| format!("{n}:{op}")).collect();
            s.push_str(&format!("{}: {}\n", k.name, nodes.join(", ")));
        }
        s
    }
}

fn shape_text(shape: &[Size]) -> String {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("[{}]", dims.join(", "))
}

impl fmt::Display for Index {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = vec![];
        for (v, s) in &self.terms {
            if *s == Size::known(1) {
                parts.push(format!("i{}", v.0));
            } else {
                parts.push(format!("i{}*{}", v.0, s));
            }
        }
        for (e, s) in &self.dynamic {
            if *s == Size::known(1) {
                parts.push(format!("{{{e}}}"));
            } else {
                parts.push(format!("{{{e}}}*{s}"));
            }
        }
        if self.offset != 0 || parts.is_empty() {
            parts.push(self.offset.to_string());
        }
        f.write_str(&parts.join(" + "))
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Lit(v, t) => {
                if t.is_float() {
                    write!(f, "{v:?}:{t}")
                } else {
                    write!(f, "{v}:{t}")
                }
            }
            Expr::Load(b, i) => write!(f, "b{}[{}]", b.0, i),
            Expr::Local(l) => write!(f, "t{}", l.0),
            Expr::Var(v) => write!(f, "i{}", v.0),
            Expr::Unary(op, a) => write!(f, "{}({a})", format!("{op:?}").to_lowercase()),
            Expr::Binary(op, a, b) => {
                let sym = match op {
                    BinaryOp::Add => "+",
                    BinaryOp::Sub => "-",
                    BinaryOp::Mul => "*",
                    BinaryOp::Div => "/",
                    BinaryOp::And => "&&",
                    BinaryOp::Or => "||",
                    BinaryOp::Pow => return write!(f, "pow({a}, {b})"),
                    BinaryOp::Max => return write!(f, "max({a}, {b})"),
                    BinaryOp::Min => return write!(f, "min({a}, {b})"),
                };
                write!(f, "({a} {sym} {b})")
            }
            Expr::Cmp(op, a, b) => {
                let sym = match op {
                    CmpOp::Eq => "==",
                    CmpOp::Lt => "<",
                    CmpOp::Le => "<=",
                    CmpOp::Gt => ">",
                    CmpOp::Ge => ">=",
                };
                write!(f, "({a} {sym} {b})")
            }
            Expr::Select(c, a, b) => write!(f, "select({c}, {a}, {b})"),
            Expr::Cast(t, a) => write!(f, "cast<{t}>({a})"),
        }
    }
}

fn write_stmts(f: &mut fmt::Formatter<'_>, body: &[Stmt], depth: usize) -> fmt::Result {
    let pad = "  ".repeat(depth);
    for s in body {
        match s {
            Stmt::Assign(l, e) => writeln!(f, "{pad}t{} = {e}", l.0)?,
            Stmt::Store(b, i, e) => writeln!(f, "{pad}b{}[{i}] = {e}", b.0)?,
            Stmt::If { cond, then } => {
                writeln!(f, "{pad}if {cond} {{")?;
                write_stmts(f, then, depth + 1)?;
                writeln!(f, "{pad}}}")?;
            }
            Stmt::Loop {
                var,
                extent,
                reduce,
                body,
            } => {
                let kw = if *reduce { "reduce" } else { "for" };
                writeln!(f, "{pad}{kw} i{} in 0..{extent} {{", var.0)?;
                write_stmts(f, body, depth + 1)?;
                writeln!(f, "{pad}}}")?;
            }
        }
    }
    Ok(())
}

impl fmt::Display for KernelProgram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "program @{} {{", self.name)?;
        for (n, b) in self.buffers.iter().enumerate() {
            let kind = match &b.kind {
                BufferKind::Input(i) => format!("input {i}"),
                BufferKind::Output(i) => format!("output {i}"),
                BufferKind::Constant { id, data } => {
                    format!("const c{} #{:016x}", id.0, data.content_hash())
                }
                BufferKind::Temp => "temp".to_string(),
                BufferKind::View(of) => format!("view b{}", of.0),
            };
            writeln!(
                f,
                "  b{n} = {kind} {}{} %{}",
                b.dtype,
                shape_text(&b.shape),
                b.name
            )?;
        }
        for k in &self.kernels {
            let nodes: Vec<String> = k.nodes.iter().map(|(n, op)| format!("%{n}:{op}")).collect();
            writeln!(f, "  kernel {} {{", k.name)?;
            writeln!(f, "    fuses [{}]", nodes.join(", "))?;
            let s = &k.schedule;
            let tiles: Vec<String> = s.tiles.iter().map(u64::to_string).collect();
            let order: Vec<String> = s.loop_order.iter().map(usize::to_string).collect();
            let par = s
                .parallel_axis
                .map_or("none".to_string(), |a| a.to_string());
            writeln!(
                f,
                "    schedule vector={} tiles=[{}] order=[{}] parallel={}",
                s.vector_width,
                tiles.join(", "),
                order.join(", "),
                par
            )?;
            if !k.locals.is_empty() {
                let locals: Vec<String> = k
                    .locals
                    .iter()
                    .enumerate()
                    .map(|(i, t)| format!("t{i}:{t}"))
                    .collect();
                writeln!(f, "    locals {}", locals.join(", "))?;
            }
            let loops: Vec<String> = k
                .loops
                .iter()
                .map(|l| format!("i{} in 0..{}", l.var.0, l.extent))
                .collect();
            writeln!(f, "    over ({}) {{", loops.join(", "))?;
            write_stmts(f, &k.body, 3)?;
            writeln!(f, "    }}")?;
            writeln!(f, "  }}")?;
        }
        let outs: Vec<String> = self.outputs.iter().map(|b| format!("b{}", b.0)).collect();
        writeln!(f, "  return {}", outs.join(", "))?;
        writeln!(f, "}}")
    }
}
