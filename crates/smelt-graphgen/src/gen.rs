//! The random graph generator.

use arbitrary::Unstructured;
use smelt_ir::infer::infer_node;
use smelt_ir::{Attr, Attrs, Constant, DType, Graph, OpKind, Tensor, TensorType, ValueId};

use crate::rng::Rng;

/// Which consumer the graphs are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Profile {
    /// Only forms the code generators lower (Softmax and LayerNormalization over the
    /// last axis only); what backend differential tests need.
    #[default]
    Codegen,
    /// Everything the interpreter runs, e.g. Softmax over any axis; for pass tests.
    Interp,
}

/// Limits of the generated graphs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Graph inputs: at least 1, at most this many (values beyond become constants).
    pub max_inputs: usize,
    /// Operations (non-constant nodes) to attempt: 1 to this many. A few helper nodes
    /// (e.g. the `abs` and `add` of a safe denominator) may come on top.
    pub max_nodes: usize,
    /// Largest size of a freshly chosen dim (concatenation and broadcasting may grow
    /// dims beyond it).
    pub max_dim: usize,
    /// Largest rank of a freshly chosen shape.
    pub max_rank: usize,
    /// Which op forms to use.
    pub profile: Profile,
    /// Percent of fresh shapes that get one dim from a list of sizes that break
    /// tiling and vector widths (7, 8, 9, 16, 17, 33, 64, 65) instead of `1..=max_dim`.
    pub odd_dim_percent: usize,
    /// Percent of graphs whose outputs include an edge case: a graph input or a
    /// constant returned as is, one value returned twice, or a value that other nodes
    /// also read.
    pub odd_output_percent: usize,
    /// Percent of graphs whose inputs get a symbolic leading dim: every input whose
    /// first dim has the size of input 0's first dim gets `?n<size>` there (e.g.
    /// `?n3`), and the other values' types are inferred again from the inputs, so
    /// symbolic dims flow as far as inference carries them. [`random_inputs`]
    /// binds `?n3` to 3, the size the graph was built for.
    ///
    /// [`random_inputs`]: crate::random_inputs
    pub symbolic_percent: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_inputs: 3,
            max_nodes: 12,
            max_dim: 6,
            max_rank: 4,
            profile: Profile::Codegen,
            odd_dim_percent: 0,
            odd_output_percent: 20,
            symbolic_percent: 0,
        }
    }
}

/// A graph from a seed: the seed is expanded into bytes that drive [`generate_from`].
pub fn generate(seed: u64, cfg: &Config) -> Graph {
    let bytes = Rng::new(seed).bytes(4096);
    let mut u = Unstructured::new(&bytes);
    generate_from(&mut u, cfg)
}

/// A graph from fuzzer bytes. Never fails: once the bytes run out every choice takes
/// its first option, which still gives a valid graph.
pub fn generate_from(u: &mut Unstructured<'_>, cfg: &Config) -> Graph {
    // Constant data comes from a seeded generator so that the fuzzer's bytes go into
    // structure rather than into thousands of float bits.
    let seed = u.arbitrary::<u64>().unwrap_or(0);
    let mut gen = Gen {
        u,
        rng: Rng::new(seed),
        g: Graph::new("g"),
        pool: vec![],
        cfg: cfg.clone(),
        n_inputs: 0,
    };
    gen.run();
    if gen.chance(cfg.symbolic_percent) {
        if let Some(sym) = symbolize(&gen.g) {
            return sym;
        }
    }
    gen.g
}

/// `g` with a symbolic leading dim on its inputs (see [`Config::symbolic_percent`]),
/// or `None` if no input qualifies or inference cannot carry the result.
fn symbolize(g: &Graph) -> Option<Graph> {
    let first = *g.inputs().first()?;
    let k = g.ty(first).dims()?.first()?.known()?;
    // Inference assumes a symbolic dim is not 1 when broadcasting it against an
    // unknown dim (`?n` with `?` gives `?n`), so a graph typed symbolically is only
    // right for sizes >= 2.
    if k < 2 {
        return None;
    }
    let mut s = g.clone();
    let name = format!("n{k}");
    for &v in g.inputs() {
        let ty = g.ty(v);
        let Some(dims) = ty.dims() else { continue };
        if dims.first().and_then(|d| d.known()) == Some(k) {
            let mut dims = dims.to_vec();
            dims[0] = smelt_ir::Dim::sym(&name);
            s.set_type(v, TensorType::new(ty.dtype, smelt_ir::Shape::new(dims)));
        }
    }
    for v in s.live_values().collect::<Vec<_>>() {
        let from_op = s
            .producer(v)
            .is_some_and(|(n, _)| s.node(n).op != OpKind::Const);
        if from_op {
            let dt = s.ty(v).dtype;
            s.set_type(v, TensorType::unranked(dt));
        }
    }
    s.infer_types().ok()?;
    // Only worth it if some value kept a symbolic dim, and every output is ranked.
    let any_sym = s.live_values().any(|v| {
        s.ty(v)
            .dims()
            .is_some_and(|d| d.iter().any(|d| d.known().is_none()))
    });
    let ranked = s.outputs().iter().all(|&o| s.ty(o).rank().is_some());
    smelt_ir::verify::verify(&s).ok()?;
    (any_sym && ranked).then_some(s)
}

/// Values above this magnitude are not produced: they would make the scaled comparison
/// meaningless for everything computed from them.
const CAP: f32 = 1000.0;
/// The largest input magnitude for smooth saturating ops (tanh, sigmoid, erf, gelu,
/// softmax, layernorm): errors of `|x| * eps` stay far below the tolerance.
const SMOOTH_CAP: f32 = 16.0;
/// The largest input magnitude for `exp` (e^6 ≈ 403).
const EXP_CAP: f32 = 6.0;

/// A value the generator can build on.
#[derive(Debug, Clone)]
struct Val {
    id: ValueId,
    shape: Vec<usize>,
    /// An upper bound on the magnitude of every element.
    bound: f32,
    /// Whether every engine computes it bit-exactly (inputs, constants and data
    /// movement, max/min/relu/abs/neg of exact values): only such values are compared,
    /// so a condition cannot flip between engines.
    exact: bool,
    /// A graph input or a constant (not chosen as a graph output).
    leaf: bool,
}

struct Gen<'a, 'b> {
    u: &'a mut Unstructured<'b>,
    rng: Rng,
    g: Graph,
    pool: Vec<Val>,
    cfg: Config,
    n_inputs: usize,
}

fn f32_ty(shape: &[usize]) -> TensorType {
    TensorType::known(
        DType::F32,
        &shape.iter().map(|&d| d as u64).collect::<Vec<_>>(),
    )
}

/// The numpy broadcast of two shapes, if they are compatible.
fn broadcast(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let r = a.len().max(b.len());
    let mut out = vec![1; r];
    for (i, o) in out.iter_mut().enumerate() {
        let da = if i + a.len() >= r {
            a[i + a.len() - r]
        } else {
            1
        };
        let db = if i + b.len() >= r {
            b[i + b.len() - r]
        } else {
            1
        };
        *o = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return None,
        };
    }
    Some(out)
}

fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

impl Gen<'_, '_> {
    // ---- choices ---------------------------------------------------------------------

    /// A choice in `0..n` from the fuzzer bytes (0 once they run out).
    fn below(&mut self, n: usize) -> usize {
        if n <= 1 {
            return 0;
        }
        let n = n.min(256);
        self.u.int_in_range(0..=(n - 1) as u8).unwrap_or(0) as usize
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn dim(&mut self) -> usize {
        1 + self.below(self.cfg.max_dim.max(1))
    }

    fn shape(&mut self) -> Vec<usize> {
        let rank = 1 + self.below(self.cfg.max_rank.max(1));
        let mut s: Vec<usize> = (0..rank).map(|_| self.dim()).collect();
        if self.chance(self.cfg.odd_dim_percent) {
            let i = self.below(rank);
            s[i] = [7, 8, 9, 16, 17, 33, 64, 65][self.below(8)];
        }
        s
    }

    /// A shape that broadcasts against `s`: the same, a suffix, some dims set to 1,
    /// a scalar, one more leading dim, or `s`'s unit dims expanded.
    fn bcast_partner(&mut self, s: &[usize]) -> Vec<usize> {
        let r = s.len();
        match self.below(7) {
            0 | 1 => s.to_vec(),
            2 => vec![],
            3 => {
                let keep = 1 + self.below(r.max(1));
                s[r.saturating_sub(keep)..].to_vec()
            }
            4 => s
                .iter()
                .map(|&d| if self.chance(50) { 1 } else { d })
                .collect(),
            5 if r < self.cfg.max_rank => {
                let mut out = vec![self.dim()];
                out.extend_from_slice(s);
                out
            }
            _ => s
                .iter()
                .map(|&d| if d == 1 { self.dim() } else { d })
                .collect(),
        }
    }

    // ---- leaves ----------------------------------------------------------------------

    fn input(&mut self, shape: &[usize]) -> Val {
        let name = format!("x{}", self.n_inputs);
        self.n_inputs += 1;
        let id = self.g.add_input(&name, f32_ty(shape));
        let v = Val {
            id,
            shape: shape.to_vec(),
            bound: 2.0,
            exact: true,
            leaf: true,
        };
        self.pool.push(v.clone());
        v
    }

    /// A constant with values uniform in `[lo, hi)`, rounded to two decimals so that
    /// shrunk graphs read well.
    fn constant_in(&mut self, shape: &[usize], lo: f32, hi: f32) -> Val {
        let vals: Vec<f32> = (0..numel(shape))
            .map(|_| (self.rng.range(lo, hi) * 100.0).round() / 100.0)
            .collect();
        let bound = vals.iter().fold(0f32, |m, x| m.max(x.abs()));
        self.const_values(shape, vals, bound)
    }

    fn const_values(&mut self, shape: &[usize], vals: Vec<f32>, bound: f32) -> Val {
        let t = Tensor::from_vec(shape.to_vec(), vals).unwrap_or_else(|_| Tensor::scalar(0f32));
        let shape = t.shape().to_vec();
        let id = self.g.add_const("", Constant::plain(t));
        let v = Val {
            id,
            shape,
            bound,
            exact: true,
            leaf: true,
        };
        self.pool.push(v.clone());
        v
    }

    fn ints(&mut self, vals: &[i64]) -> ValueId {
        let t = Tensor::from_vec(vec![vals.len()], vals.to_vec())
            .unwrap_or_else(|_| Tensor::scalar(0i64));
        self.g.add_const("", Constant::plain(t))
    }

    /// A fresh leaf of `shape`: a new graph input while there is room (sometimes),
    /// otherwise a constant in `[-2, 2)`.
    fn fresh(&mut self, shape: &[usize]) -> Val {
        if self.n_inputs < self.cfg.max_inputs && self.chance(30) {
            self.input(shape)
        } else {
            self.constant_in(shape, -2.0, 2.0)
        }
    }

    /// A value from the pool satisfying `ok`, preferring recent ones so that chains
    /// form.
    fn pick(&mut self, ok: impl Fn(&Val) -> bool) -> Option<Val> {
        // Scalars (rank 0) only appear as fresh operands: most ops need an axis.
        let cands: Vec<usize> = (0..self.pool.len())
            .filter(|&i| !self.pool[i].shape.is_empty() && ok(&self.pool[i]))
            .collect();
        if cands.is_empty() {
            return None;
        }
        let i = if self.chance(50) {
            cands[cands.len() - 1]
        } else {
            cands[self.below(cands.len())]
        };
        Some(self.pool[i].clone())
    }

    /// An operand that broadcasts against `s`: an existing value (sometimes) or a fresh
    /// leaf of a broadcast-compatible shape.
    fn partner(&mut self, s: &[usize], ok: impl Fn(&Val) -> bool) -> Val {
        if self.chance(40) {
            let s2 = s.to_vec();
            if let Some(v) = self.pick(|v| ok(v) && broadcast(&s2, &v.shape).is_some()) {
                return v;
            }
        }
        let shape = self.bcast_partner(s);
        self.fresh(&shape)
    }

    // ---- nodes -----------------------------------------------------------------------

    /// Add a node with one output, inferring its type; `None` (and no node) when
    /// inference rejects it or the result is not a known, non-empty shape.
    fn node(
        &mut self,
        op: OpKind,
        attrs: Attrs,
        ins: &[Option<ValueId>],
    ) -> Option<(ValueId, Vec<usize>)> {
        let id = self
            .g
            .add_node(
                "",
                op,
                attrs,
                ins.to_vec(),
                vec![(String::new(), TensorType::unranked(DType::F32))],
            )
            .ok()?;
        let ty = infer_node(&self.g, id)
            .ok()
            .and_then(|mut t| if t.len() == 1 { t.pop() } else { None });
        let shape = ty.as_ref().and_then(|t| t.shape.as_known());
        match (ty, shape) {
            (Some(ty), Some(shape)) if !shape.contains(&0) => {
                let out = self.g.node(id).outputs[0];
                self.g.set_type(out, ty);
                Some((out, shape))
            }
            _ => {
                // Nothing reads the new output yet, so removal cannot fail.
                let _ = self.g.remove_node(id);
                None
            }
        }
    }

    /// Add a node and put its f32 result in the pool.
    fn push(
        &mut self,
        op: OpKind,
        attrs: Attrs,
        ins: &[Option<ValueId>],
        bound: f32,
        exact: bool,
    ) -> Option<Val> {
        let (id, shape) = self.node(op, attrs, ins)?;
        let v = Val {
            id,
            shape,
            bound,
            exact,
            leaf: false,
        };
        self.pool.push(v.clone());
        Some(v)
    }

    fn op1(&mut self, op: OpKind, x: &Val, attrs: Attrs, bound: f32, exact: bool) -> Option<Val> {
        self.push(op, attrs, &[Some(x.id)], bound, exact)
    }

    fn op2(&mut self, op: OpKind, a: &Val, b: &Val, bound: f32, exact: bool) -> Option<Val> {
        self.push(op, Attrs::new(), &[Some(a.id), Some(b.id)], bound, exact)
    }

    // ---- the generator ---------------------------------------------------------------

    fn run(&mut self) {
        let n_in = 1 + self.below(self.cfg.max_inputs.max(1));
        for _ in 0..n_in {
            let s = self.shape();
            self.input(&s);
        }
        let n_ops = 1 + self.below(self.cfg.max_nodes.max(1));
        let mut made = 0;
        let mut tries = 0;
        while made < n_ops && tries < n_ops * 8 {
            tries += 1;
            if self.step().is_some() {
                made += 1;
            }
        }
        if made == 0 {
            // Every attempt was rejected (only possible with odd configs): one relu
            // keeps the graph non-trivial.
            let x = self.pool[0].clone();
            let _ = self.op1(OpKind::Relu, &x, Attrs::new(), x.bound, x.exact);
        }
        self.finish();
    }

    /// One random operation on the pool.
    fn step(&mut self) -> Option<Val> {
        match self.below(30) {
            20 | 21 => self.motif(),
            27 => self.conv(),
            28 => self.pool(),
            29 => self.reshape_by_shape(),
            22 => self.unary_more(),
            23 => self.view(),
            24 => self.gather(),
            25 => self.split(),
            26 => self.reduce_more(),
            0..=3 => self.unary(),
            4..=7 => self.binary(),
            8 => self.div(),
            9 => self.matmul(),
            10 => self.gemm(),
            11 => self.transpose(),
            12 => self.reshape(),
            13 => self.softmax(),
            14 => self.layernorm(),
            15 => self.reduce(),
            16 => self.concat(),
            17 => self.slice(),
            18 => self.where_(),
            _ => self.clip(),
        }
    }

    fn unary(&mut self) -> Option<Val> {
        let x = self.pick(|v| v.bound <= CAP)?;
        let b = x.bound;
        match self.below(10) {
            0 => self.op1(OpKind::Relu, &x, Attrs::new(), b, x.exact),
            1 => self.op1(OpKind::Abs, &x, Attrs::new(), b, x.exact),
            2 => self.op1(OpKind::Neg, &x, Attrs::new(), b, x.exact),
            3 if b <= SMOOTH_CAP => self.op1(OpKind::Sigmoid, &x, Attrs::new(), 1.0, false),
            4 if b <= SMOOTH_CAP => self.op1(OpKind::Tanh, &x, Attrs::new(), 1.0, false),
            5 if b <= EXP_CAP => self.op1(OpKind::Exp, &x, Attrs::new(), b.exp(), false),
            6 if b <= SMOOTH_CAP => self.op1(OpKind::Erf, &x, Attrs::new(), 1.0, false),
            7 if b <= SMOOTH_CAP => {
                let attrs = match self.below(3) {
                    0 => Attrs::new(),
                    1 => Attrs::new().with("approximate", Attr::Str("none".into())),
                    _ => Attrs::new().with("approximate", Attr::Str("tanh".into())),
                };
                self.op1(OpKind::Gelu, &x, attrs, b, false)
            }
            8 => self.sqrt(&x),
            _ => self.op1(OpKind::Identity, &x, Attrs::new(), b, x.exact),
        }
    }

    /// `sqrt(|x|)`, or `sqrt(|x| + c)` when `x` is inexact: the square root's slope is
    /// unbounded at 0, where engines that round `x` differently would disagree widely.
    fn sqrt(&mut self, x: &Val) -> Option<Val> {
        let a = self.op1(OpKind::Abs, x, Attrs::new(), x.bound, x.exact)?;
        let arg = if x.exact {
            a
        } else {
            let c = self.constant_in(&[], 0.25, 1.0);
            self.op2(OpKind::Add, &a, &c, a.bound + c.bound, false)?
        };
        self.op1(OpKind::Sqrt, &arg, Attrs::new(), arg.bound.sqrt(), false)
    }

    fn binary(&mut self) -> Option<Val> {
        let a = self.pick(|v| v.bound <= CAP)?;
        let b = self.partner(&a.shape, |v| v.bound <= CAP);
        let (op, bound, exact) = match self.below(5) {
            0 => (OpKind::Add, a.bound + b.bound, false),
            1 => (OpKind::Sub, a.bound + b.bound, false),
            2 => (OpKind::Mul, a.bound * b.bound, false),
            3 => (OpKind::Max, a.bound.max(b.bound), a.exact && b.exact),
            _ => (OpKind::Min, a.bound.max(b.bound), a.exact && b.exact),
        };
        if bound > CAP {
            return None;
        }
        let (a, b) = if self.chance(20) { (b, a) } else { (a, b) };
        self.op2(op, &a, &b, bound, exact)
    }

    /// `a / d` with `|d| >= 0.5`: a constant away from zero or `|y| + c`, `c >= 0.5`.
    fn div(&mut self) -> Option<Val> {
        let a = self.pick(|v| v.bound <= CAP / 2.0)?;
        let shape = self.bcast_partner(&a.shape);
        let d = if self.chance(50) {
            let vals: Vec<f32> = (0..numel(&shape))
                .map(|_| {
                    let m = (self.rng.range(0.5, 2.0) * 100.0).round() / 100.0;
                    if self.rng.below(2) == 0 {
                        m
                    } else {
                        -m
                    }
                })
                .collect();
            let bound = vals.iter().fold(0f32, |m, x| m.max(x.abs()));
            self.const_values(&shape, vals, bound)
        } else {
            let y = self.partner(&a.shape, |v| v.bound <= CAP);
            let ay = self.op1(OpKind::Abs, &y, Attrs::new(), y.bound, y.exact)?;
            let c = self.constant_in(&[], 0.5, 1.5);
            let c = if c.bound < 0.5 {
                self.constant_in(&[], 1.0, 1.0)
            } else {
                c
            };
            self.op2(OpKind::Add, &ay, &c, ay.bound + c.bound, false)?
        };
        self.op2(OpKind::Div, &a, &d, a.bound * 2.0, false)
    }

    fn matmul(&mut self) -> Option<Val> {
        let a = self.pick(|v| v.bound <= CAP)?;
        let r = a.shape.len();
        let k = a.shape[r - 1];
        let n = self.dim();
        let bshape: Vec<usize> = if r == 1 {
            vec![k, n]
        } else {
            match self.below(4) {
                0 => vec![k],
                1 => {
                    let mut s: Vec<usize> = a.shape[..r - 2]
                        .iter()
                        .map(|&d| if self.chance(30) { 1 } else { d })
                        .collect();
                    s.extend([k, n]);
                    s
                }
                _ => vec![k, n],
            }
        };
        let b = if self.chance(30) {
            let want = bshape.clone();
            self.pick(|v| v.shape == want && v.bound <= CAP)
                .unwrap_or_else(|| self.fresh(&bshape))
        } else {
            self.fresh(&bshape)
        };
        let bound = k as f32 * a.bound * b.bound;
        if bound > CAP {
            return None;
        }
        self.op2(OpKind::MatMul, &a, &b, bound, false)
    }

    fn gemm(&mut self) -> Option<Val> {
        let a = self.pick(|v| v.shape.len() == 2 && v.bound <= CAP)?;
        let trans_a = self.chance(30);
        let trans_b = self.chance(30);
        let (m, k) = if trans_a {
            (a.shape[1], a.shape[0])
        } else {
            (a.shape[0], a.shape[1])
        };
        let n = self.dim();
        let b = self.fresh(&if trans_b { [n, k] } else { [k, n] });
        let alpha = [1.0f32, 0.5, 2.0][self.below(3)];
        let beta = [1.0f32, 0.5][self.below(2)];
        let c = match self.below(4) {
            0 => None,
            1 => Some(self.fresh(&[n])),
            2 => Some(self.fresh(&[m, n])),
            _ => Some(self.fresh(&[1, 1])),
        };
        let bound =
            alpha * k as f32 * a.bound * b.bound + beta * c.as_ref().map_or(0.0, |c| c.bound);
        if bound > CAP {
            return None;
        }
        let mut attrs = Attrs::new();
        if alpha != 1.0 {
            attrs.set("alpha", Attr::Float(alpha));
        }
        if beta != 1.0 {
            attrs.set("beta", Attr::Float(beta));
        }
        if trans_a {
            attrs.set("transA", Attr::Int(1));
        }
        if trans_b {
            attrs.set("transB", Attr::Int(1));
        }
        let mut ins = vec![Some(a.id), Some(b.id)];
        if let Some(c) = &c {
            ins.push(Some(c.id));
        }
        self.push(OpKind::Gemm, attrs, &ins, bound, false)
    }

    /// A scalar constant.
    fn scalar(&mut self, v: f32) -> Val {
        self.const_values(&[], vec![v], v.abs())
    }

    /// `reduce(x, [last axis], keepdims = 1)`.
    fn reduce_last(&mut self, op: OpKind, x: &Val, bound: f32) -> Option<Val> {
        let axis = if self.chance(50) {
            -1
        } else {
            x.shape.len() as i64 - 1
        };
        let axes = self.ints(&[axis]);
        self.push(op, Attrs::new(), &[Some(x.id), Some(axes)], bound, false)
    }

    /// Shapes the rewrite passes look for: neutral elements, transpose and reshape
    /// chains, decomposed GELU / Softmax / LayerNorm, scales next to a matmul, and
    /// multiplications by powers of two. All are computed exactly as written by the
    /// interpreter, so a rewrite that recognises them must keep the numbers.
    fn motif(&mut self) -> Option<Val> {
        let x = self.pick(|v| v.bound <= SMOOTH_CAP)?;
        let b = x.bound;
        match self.below(8) {
            0 => {
                let (op, c) = [
                    (OpKind::Mul, 1.0),
                    (OpKind::Add, 0.0),
                    (OpKind::Sub, 0.0),
                    (OpKind::Div, 1.0),
                ][self.below(4)]
                .clone();
                let shape = if self.chance(50) {
                    vec![]
                } else {
                    x.shape.clone()
                };
                let c = self.const_values(&shape, vec![c; numel(&shape)], c);
                self.op2(op, &x, &c, b, false)
            }
            1 => {
                let n = self.op1(OpKind::Neg, &x, Attrs::new(), b, x.exact)?;
                self.op1(OpKind::Neg, &n, Attrs::new(), b, x.exact)
            }
            2 => {
                let t = self.transpose_of(&x)?;
                self.transpose_of(&t)
            }
            3 => {
                let r = self.reshape_of(&x)?;
                self.reshape_of(&r)
            }
            4 => {
                // x * (1 + erf(x / sqrt 2)) * 0.5
                let k = if self.chance(50) {
                    let c = self.scalar(std::f32::consts::SQRT_2);
                    self.op2(OpKind::Div, &x, &c, b, false)?
                } else {
                    let c = self.scalar(std::f32::consts::FRAC_1_SQRT_2);
                    self.op2(OpKind::Mul, &x, &c, b, false)?
                };
                let e = self.op1(OpKind::Erf, &k, Attrs::new(), 1.0, false)?;
                let one = self.scalar(1.0);
                let t = self.op2(OpKind::Add, &e, &one, 2.0, false)?;
                let m = self.op2(OpKind::Mul, &x, &t, 2.0 * b, false)?;
                let half = self.scalar(0.5);
                self.op2(OpKind::Mul, &m, &half, b, false)
            }
            5 => {
                // exp(x - max x) / sum exp(x - max x) over the last axis.
                let arg = if self.chance(50) || b > EXP_CAP {
                    let m = self.reduce_last(OpKind::ReduceMax, &x, b)?;
                    self.op2(OpKind::Sub, &x, &m, 2.0 * b, false)?
                } else {
                    x.clone()
                };
                let e = self.op1(OpKind::Exp, &arg, Attrs::new(), b.exp(), false)?;
                let n = *x.shape.last().unwrap_or(&1) as f32;
                let s = self.reduce_last(OpKind::ReduceSum, &e, e.bound * n)?;
                self.op2(OpKind::Div, &e, &s, 1.0, false)
            }
            6 => {
                // (x - mean) / sqrt(var + eps) * scale + bias over the last axis.
                let n = *x.shape.last().unwrap_or(&1);
                let mean = self.reduce_last(OpKind::ReduceMean, &x, b)?;
                let c = self.op2(OpKind::Sub, &x, &mean, 2.0 * b, false)?;
                let sq = self.op2(OpKind::Mul, &c, &c, 4.0 * b * b, false)?;
                let var = self.reduce_last(OpKind::ReduceMean, &sq, 4.0 * b * b)?;
                let eps = self.scalar(1e-2);
                let ve = self.op2(OpKind::Add, &var, &eps, 4.0 * b * b + 0.01, false)?;
                let sd = self.op1(OpKind::Sqrt, &ve, Attrs::new(), 2.0 * b + 0.1, false)?;
                let nb = (n as f32).sqrt();
                let z = self.op2(OpKind::Div, &c, &sd, nb, false)?;
                let scale = self.constant_in(&[n], -1.5, 1.5);
                let bias = self.constant_in(&[n], -1.0, 1.0);
                let zs = self.op2(OpKind::Mul, &z, &scale, nb * scale.bound, false)?;
                self.op2(
                    OpKind::Add,
                    &zs,
                    &bias,
                    nb * scale.bound + bias.bound,
                    false,
                )
            }
            _ => {
                // A power-of-two or other scalar scale before or after a matmul with a
                // constant weight.
                let k = *x.shape.last().unwrap_or(&1);
                let n = self.dim();
                let w = self.constant_in(&[k, n], -2.0, 2.0);
                let c = [0.25f32, 0.5, 2.0, 0.3][self.below(4)];
                let cv = self.scalar(c);
                let bound = k as f32 * b * w.bound * c;
                if bound > CAP {
                    return None;
                }
                if self.chance(50) {
                    let xs = self.op2(OpKind::Mul, &x, &cv, b * c, false)?;
                    self.op2(OpKind::MatMul, &xs, &w, bound, false)
                } else {
                    let m = self.op2(OpKind::MatMul, &x, &w, bound / c, false)?;
                    self.op2(OpKind::Mul, &m, &cv, bound, false)
                }
            }
        }
    }

    /// `|x| + c` with `c` in `[lo, hi)`: a value at least `lo` away from zero.
    fn positive(&mut self, x: &Val, lo: f32, hi: f32) -> Option<Val> {
        let a = self.op1(OpKind::Abs, x, Attrs::new(), x.bound, x.exact)?;
        let c = self.constant_in(&[], lo, hi);
        let c = if c.bound < lo { self.scalar(lo) } else { c };
        self.op2(OpKind::Add, &a, &c, a.bound + c.bound, false)
    }

    /// Log, reciprocal and pow of values kept away from zero; sign and a round trip
    /// through i64 of exact values (both are discontinuous).
    fn unary_more(&mut self) -> Option<Val> {
        let x = self.pick(|v| v.bound <= 100.0)?;
        match self.below(5) {
            0 => {
                let p = self.positive(&x, 0.5, 1.5)?;
                self.op1(
                    OpKind::Log,
                    &p,
                    Attrs::new(),
                    p.bound.ln().abs().max(0.7),
                    false,
                )
            }
            1 => {
                let p = self.positive(&x, 0.5, 1.5)?;
                self.op1(OpKind::Reciprocal, &p, Attrs::new(), 2.0, false)
            }
            2 if x.bound <= 8.0 => {
                let p = self.positive(&x, 0.5, 1.5)?;
                let e = if self.chance(50) {
                    self.constant_in(&[], -2.0, 2.0)
                } else {
                    let s = self.bcast_partner(&p.shape);
                    self.constant_in(&s, -2.0, 2.0)
                };
                let bound = p.bound.max(2.0).powf(2.0);
                self.op2(OpKind::Pow, &p, &e, bound, false)
            }
            3 if x.exact => self.op1(OpKind::Sign, &x, Attrs::new(), 1.0, true),
            _ if x.exact => {
                let i = self.push(
                    OpKind::Cast,
                    Attrs::new().with("to", Attr::Int(7)),
                    &[Some(x.id)],
                    x.bound,
                    true,
                )?;
                // The i64 value is not an f32 operand for later ops.
                self.pool.pop();
                self.push(
                    OpKind::Cast,
                    Attrs::new().with("to", Attr::Int(1)),
                    &[Some(i.id)],
                    x.bound,
                    true,
                )
            }
            _ => None,
        }
    }

    /// Views and broadcasts: unsqueeze, squeeze, flatten, expand.
    fn view(&mut self) -> Option<Val> {
        let x = self.pick(|_| true)?;
        let r = x.shape.len();
        match self.below(4) {
            0 if r < self.cfg.max_rank => {
                let a = self.below(r + 1) as i64;
                let axes = self.ints(&[a]);
                self.push(
                    OpKind::Unsqueeze,
                    Attrs::new(),
                    &[Some(x.id), Some(axes)],
                    x.bound,
                    x.exact,
                )
            }
            1 if r > 1 && x.shape.contains(&1) => {
                let units: Vec<i64> = (0..r)
                    .filter(|&i| x.shape[i] == 1)
                    .map(|i| i as i64)
                    .collect();
                let a = units[self.below(units.len())];
                let mut ins = vec![Some(x.id)];
                if units.len() < r || self.chance(70) {
                    ins.push(Some(self.ints(&[a])));
                }
                self.push(OpKind::Squeeze, Attrs::new(), &ins, x.bound, x.exact)
            }
            2 => {
                let a = self.below(r + 1) as i64;
                self.op1(
                    OpKind::Flatten,
                    &x,
                    Attrs::new().with("axis", Attr::Int(a)),
                    x.bound,
                    x.exact,
                )
            }
            _ => {
                let mut target: Vec<i64> = x
                    .shape
                    .iter()
                    .map(|&d| {
                        if d == 1 && self.chance(60) {
                            self.dim() as i64
                        } else {
                            d as i64
                        }
                    })
                    .collect();
                if r < self.cfg.max_rank && self.chance(40) {
                    target.insert(0, self.dim() as i64);
                }
                let t = self.ints(&target);
                self.push(
                    OpKind::Expand,
                    Attrs::new(),
                    &[Some(x.id), Some(t)],
                    x.bound,
                    x.exact,
                )
            }
        }
    }

    /// Gather along an axis with constant indices (negative ones included).
    fn gather(&mut self) -> Option<Val> {
        let x = self.pick(|v| v.shape.len() <= 3)?;
        let r = x.shape.len();
        let axis = self.below(r);
        let d = x.shape[axis] as i64;
        let ishape: Vec<usize> = match self.below(3) {
            0 => vec![],
            1 => vec![self.dim()],
            _ => vec![self.dim(), self.dim()],
        };
        let idx: Vec<i64> = (0..numel(&ishape))
            .map(|_| self.rng.below(2 * d as usize) as i64 - d)
            .collect();
        let t = Tensor::from_vec(ishape, idx).ok()?;
        let i = self.g.add_const("", Constant::plain(t));
        let axis = if self.chance(30) {
            axis as i64 - r as i64
        } else {
            axis as i64
        };
        self.push(
            OpKind::Gather,
            Attrs::new().with("axis", Attr::Int(axis)),
            &[Some(x.id), Some(i)],
            x.bound,
            x.exact,
        )
    }

    /// Split into two pieces along an axis of size >= 2; both pieces join the pool.
    fn split(&mut self) -> Option<Val> {
        let x = self.pick(|v| v.shape.iter().any(|&d| d >= 2))?;
        let axes: Vec<usize> = (0..x.shape.len()).filter(|&i| x.shape[i] >= 2).collect();
        let axis = axes[self.below(axes.len())];
        let d = x.shape[axis];
        let first = 1 + self.below(d - 1);
        let sizes = self.ints(&[first as i64, (d - first) as i64]);
        let f32u = || (String::new(), TensorType::unranked(DType::F32));
        let id = self
            .g
            .add_node(
                "",
                OpKind::Split,
                Attrs::new().with("axis", Attr::Int(axis as i64)),
                vec![Some(x.id), Some(sizes)],
                vec![f32u(), f32u()],
            )
            .ok()?;
        let tys = match infer_node(&self.g, id) {
            Ok(t) if t.len() == 2 && t.iter().all(|t| t.shape.as_known().is_some()) => t,
            _ => {
                let _ = self.g.remove_node(id);
                return None;
            }
        };
        let outs = self.g.node(id).outputs.clone();
        let mut last = None;
        for (o, ty) in outs.into_iter().zip(tys) {
            let shape = ty.shape.as_known().unwrap_or_default();
            self.g.set_type(o, ty);
            let v = Val {
                id: o,
                shape,
                bound: x.bound,
                exact: x.exact,
                leaf: false,
            };
            self.pool.push(v.clone());
            last = Some(v);
        }
        last
    }

    /// The other reductions the backends lower.
    fn reduce_more(&mut self) -> Option<Val> {
        let x = self.pick(|v| v.bound <= 30.0)?;
        let r = x.shape.len();
        let a = self.below(r);
        let count = x.shape[a] as f32;
        let b = x.bound;
        let (op, bound, exact) = match self.below(5) {
            0 => (OpKind::ReduceMin, b, x.exact),
            1 if count <= 6.0 && b <= 2.0 => (OpKind::ReduceProd, b.max(1.0).powf(count), false),
            2 => (OpKind::ReduceL1, b * count, false),
            3 => (OpKind::ReduceL2, b * count.sqrt(), false),
            _ => (OpKind::ReduceSumSquare, b * b * count, false),
        };
        if bound > CAP {
            return None;
        }
        let keep = self.chance(50);
        let mut attrs = Attrs::new();
        if !keep && r > 1 {
            attrs.set("keepdims", Attr::Int(0));
        }
        let axes = self.ints(&[a as i64]);
        self.push(op, attrs, &[Some(x.id), Some(axes)], bound, exact)
    }

    /// Conv over 1 or 2 spatial dims with random kernel, strides, dilations, pads
    /// (or `SAME_UPPER`), groups and bias.
    fn conv(&mut self) -> Option<Val> {
        let x = self.pick(|v| (v.shape.len() == 3 || v.shape.len() == 4) && v.bound <= 50.0)?;
        let sp = x.shape.len() - 2;
        let c = x.shape[1];
        let divisors: Vec<usize> = (1..=c).filter(|g| c.is_multiple_of(*g)).collect();
        let group = if self.chance(60) {
            1
        } else {
            divisors[self.below(divisors.len())]
        };
        let m = group * (1 + self.below(3));
        let kernel: Vec<usize> = (0..sp)
            .map(|i| 1 + self.below(3.min(x.shape[2 + i] + 1)))
            .collect();
        let mut wshape = vec![m, c / group];
        wshape.extend(&kernel);
        let w = self.constant_in(&wshape, -1.0, 1.0);
        let bias = if self.chance(50) {
            Some(self.constant_in(&[m], -1.0, 1.0))
        } else {
            None
        };
        let mut attrs = Attrs::new();
        if group > 1 {
            attrs.set("group", Attr::Int(group as i64));
        }
        if self.chance(40) {
            attrs.set(
                "strides",
                Attr::Ints((0..sp).map(|_| 1 + self.below(2) as i64).collect()),
            );
        }
        if self.chance(30) {
            attrs.set(
                "dilations",
                Attr::Ints((0..sp).map(|_| 1 + self.below(2) as i64).collect()),
            );
        }
        match self.below(3) {
            0 => attrs.set(
                "pads",
                Attr::Ints((0..2 * sp).map(|_| self.below(2) as i64).collect()),
            ),
            1 if self.chance(50) => attrs.set("auto_pad", Attr::Str("SAME_UPPER".into())),
            _ => {}
        }
        let taps = (c / group * kernel.iter().product::<usize>()) as f32;
        let bound = taps * x.bound * w.bound + bias.as_ref().map_or(0.0, |b| b.bound);
        if bound > CAP {
            return None;
        }
        let mut ins = vec![Some(x.id), Some(w.id)];
        if let Some(b) = &bias {
            ins.push(Some(b.id));
        }
        self.push(OpKind::Conv, attrs, &ins, bound, false)
    }

    /// MaxPool or AveragePool over 1 or 2 spatial dims.
    fn pool(&mut self) -> Option<Val> {
        let x = self.pick(|v| v.shape.len() == 3 || v.shape.len() == 4)?;
        let sp = x.shape.len() - 2;
        let kernel: Vec<i64> = (0..sp)
            .map(|i| 1 + self.below(3.min(x.shape[2 + i])) as i64)
            .collect();
        let mut attrs = Attrs::new().with("kernel_shape", Attr::Ints(kernel.clone()));
        if self.chance(50) {
            attrs.set(
                "strides",
                Attr::Ints((0..sp).map(|_| 1 + self.below(2) as i64).collect()),
            );
        }
        if self.chance(40) {
            // Pads must stay below the kernel size.
            let pads: Vec<i64> = (0..2 * sp)
                .map(|i| self.below(kernel[i % sp] as usize) as i64)
                .collect();
            attrs.set("pads", Attr::Ints(pads));
        }
        let max = self.chance(50);
        if !max && self.chance(50) {
            attrs.set("count_include_pad", Attr::Int(1));
        }
        let op = if max {
            OpKind::MaxPool
        } else {
            OpKind::AveragePool
        };
        self.op1(op, &x, attrs, x.bound, max && x.exact)
    }

    /// `reshape(x, concat(unsqueeze(gather(shape(x), i)), [-1]))`: a reshape target
    /// computed from the input's shape, as torch exports write them.
    fn reshape_by_shape(&mut self) -> Option<Val> {
        let x = self.pick(|v| v.shape.len() >= 2)?;
        let r = x.shape.len();
        let (s, _) = self.node(OpKind::Shape, Attrs::new(), &[Some(x.id)])?;
        let i = self.below(r) as i64;
        let it = self.g.add_const("", Constant::plain(Tensor::scalar(i)));
        let (d, _) = self.node(
            OpKind::Gather,
            Attrs::new().with("axis", Attr::Int(0)),
            &[Some(s), Some(it)],
        )?;
        let zero = self.ints(&[0]);
        let (u, _) = self.node(OpKind::Unsqueeze, Attrs::new(), &[Some(d), Some(zero)])?;
        let rest = self.ints(&[-1]);
        let (t, _) = self.node(
            OpKind::Concat,
            Attrs::new().with("axis", Attr::Int(0)),
            &[Some(u), Some(rest)],
        )?;
        self.push(
            OpKind::Reshape,
            Attrs::new(),
            &[Some(x.id), Some(t)],
            x.bound,
            x.exact,
        )
    }

    fn transpose_of(&mut self, x: &Val) -> Option<Val> {
        let r = x.shape.len();
        if r < 2 {
            return None;
        }
        let mut perm: Vec<i64> = (0..r as i64).collect();
        for i in (1..r).rev() {
            let j = self.below(i + 1);
            perm.swap(i, j);
        }
        self.op1(
            OpKind::Transpose,
            x,
            Attrs::new().with("perm", Attr::Ints(perm)),
            x.bound,
            x.exact,
        )
    }

    fn transpose(&mut self) -> Option<Val> {
        let x = self.pick(|v| v.shape.len() >= 2)?;
        let r = x.shape.len();
        let attrs = if self.chance(20) {
            // No perm: the axes reversed.
            Attrs::new()
        } else {
            let mut perm: Vec<i64> = (0..r as i64).collect();
            for i in (1..r).rev() {
                let j = self.below(i + 1);
                perm.swap(i, j);
            }
            Attrs::new().with("perm", Attr::Ints(perm))
        };
        self.op1(OpKind::Transpose, &x, attrs, x.bound, x.exact)
    }

    fn reshape(&mut self) -> Option<Val> {
        let x = self.pick(|_| true)?;
        self.reshape_of(&x)
    }

    fn reshape_of(&mut self, x: &Val) -> Option<Val> {
        let mut factors = vec![];
        let mut n = numel(&x.shape);
        let mut p = 2;
        while n > 1 {
            while n.is_multiple_of(p) {
                factors.push(p);
                n /= p;
            }
            p += 1;
        }
        let rank = 1 + self.below(self.cfg.max_rank.max(1));
        let mut dims = vec![1i64; rank];
        for f in factors {
            let i = self.below(rank);
            dims[i] *= f as i64;
        }
        if self.chance(25) {
            let i = self.below(rank);
            dims[i] = -1;
        }
        let s = self.ints(&dims);
        self.push(
            OpKind::Reshape,
            Attrs::new(),
            &[Some(x.id), Some(s)],
            x.bound,
            x.exact,
        )
    }

    /// The axis attribute of a row op: the last axis (as `-1` or `r-1`) for codegen,
    /// any axis otherwise.
    fn row_axis(&mut self, r: usize) -> i64 {
        match self.cfg.profile {
            Profile::Codegen => {
                if self.chance(50) {
                    -1
                } else {
                    r as i64 - 1
                }
            }
            Profile::Interp => self.below(2 * r) as i64 - r as i64,
        }
    }

    fn softmax(&mut self) -> Option<Val> {
        let x = self.pick(|v| v.bound <= SMOOTH_CAP)?;
        let axis = self.row_axis(x.shape.len());
        let attrs = if axis == -1 && self.chance(50) {
            Attrs::new()
        } else {
            Attrs::new().with("axis", Attr::Int(axis))
        };
        self.op1(OpKind::Softmax, &x, attrs, 1.0, false)
    }

    fn layernorm(&mut self) -> Option<Val> {
        let x = self.pick(|v| v.bound <= SMOOTH_CAP)?;
        let r = x.shape.len();
        let axis = self.row_axis(r);
        let a = if axis < 0 { axis + r as i64 } else { axis } as usize;
        let norm_shape = x.shape[a..].to_vec();
        let scale = self.constant_in(&norm_shape, -1.5, 1.5);
        let bias = if self.chance(60) {
            Some(self.constant_in(&norm_shape, -1.0, 1.0))
        } else {
            None
        };
        let bound = (numel(&norm_shape) as f32).sqrt() * scale.bound
            + bias.as_ref().map_or(0.0, |b| b.bound);
        // A large epsilon keeps 1/sqrt(var + eps) small for nearly constant rows, where
        // engines that compute the mean differently by an ulp would otherwise disagree.
        let mut attrs = Attrs::new().with("epsilon", Attr::Float(1e-2));
        if axis != -1 || self.chance(50) {
            attrs.set("axis", Attr::Int(axis));
        }
        let mut ins = vec![Some(x.id), Some(scale.id)];
        if let Some(b) = &bias {
            ins.push(Some(b.id));
        }
        self.push(OpKind::LayerNormalization, attrs, &ins, bound, false)
    }

    fn reduce(&mut self) -> Option<Val> {
        let x = self.pick(|v| v.bound <= CAP)?;
        let r = x.shape.len();
        let mut axes: Vec<usize> = (0..r).filter(|_| self.chance(40)).collect();
        if axes.is_empty() {
            axes.push(self.below(r));
        }
        let all = axes.len() == r;
        // Keep results of rank >= 1: reducing every axis without keepdims gives a
        // scalar, which few later ops take.
        let keepdims = all || self.chance(50);
        let count: usize = axes.iter().map(|&a| x.shape[a]).product();
        let (op, bound, exact) = match self.below(3) {
            0 => (OpKind::ReduceSum, x.bound * count as f32, false),
            1 => (OpKind::ReduceMean, x.bound, false),
            _ => (OpKind::ReduceMax, x.bound, x.exact),
        };
        if bound > CAP {
            return None;
        }
        let mut attrs = Attrs::new();
        if !keepdims {
            attrs.set("keepdims", Attr::Int(0));
        }
        let mut ins = vec![Some(x.id)];
        if !(all && self.chance(50)) {
            let axes: Vec<i64> = axes
                .iter()
                .map(|&a| {
                    if self.chance(30) {
                        a as i64 - r as i64
                    } else {
                        a as i64
                    }
                })
                .collect();
            ins.push(Some(self.ints(&axes)));
        }
        self.push(op, attrs, &ins, bound, exact)
    }

    fn concat(&mut self) -> Option<Val> {
        let x = self.pick(|_| true)?;
        let r = x.shape.len();
        let axis = self.below(r);
        let mut parts = vec![x.clone()];
        for _ in 0..1 + self.below(2) {
            let mut s = x.shape.clone();
            s[axis] = self.dim();
            let want = s.clone();
            let p = if self.chance(40) {
                self.pick(|v| v.shape == want)
                    .unwrap_or_else(|| self.fresh(&s))
            } else {
                self.fresh(&s)
            };
            parts.push(p);
        }
        let k = self.below(parts.len());
        parts.swap(0, k);
        let axis_attr = if self.chance(30) {
            axis as i64 - r as i64
        } else {
            axis as i64
        };
        let bound = parts.iter().fold(0f32, |m, p| m.max(p.bound));
        let exact = parts.iter().all(|p| p.exact);
        let ins: Vec<Option<ValueId>> = parts.iter().map(|p| Some(p.id)).collect();
        self.push(
            OpKind::Concat,
            Attrs::new().with("axis", Attr::Int(axis_attr)),
            &ins,
            bound,
            exact,
        )
    }

    fn slice(&mut self) -> Option<Val> {
        let x = self.pick(|_| true)?;
        let r = x.shape.len();
        let mut axes: Vec<usize> = (0..r).filter(|_| self.chance(50)).collect();
        if axes.is_empty() {
            axes.push(self.below(r));
        }
        let (mut starts, mut ends, mut steps) = (vec![], vec![], vec![]);
        for &a in &axes {
            let d = x.shape[a] as i64;
            let step: i64 = [1, 1, 2, -1][self.below(4)];
            let start = self.below(d as usize) as i64;
            let (s, e) = if step > 0 {
                let end = start + 1 + self.below((d - start) as usize) as i64;
                let e = if end == d && self.chance(50) {
                    i64::MAX
                } else {
                    end
                };
                (start, e)
            } else {
                // From `start` down to just past `end` (exclusive); `-d - 1` or less
                // means "through index 0".
                let end = self.below(start as usize + 1) as i64 - 1;
                let e = if end == -1 {
                    -d - 1 - self.below(3) as i64
                } else {
                    end
                };
                (start, e)
            };
            // Sometimes index from the end.
            let s = if self.chance(30) { s - d } else { s };
            starts.push(s);
            ends.push(e);
            steps.push(step);
        }
        let all_in_order = axes.len() == r;
        let mut ins = vec![Some(x.id), Some(self.ints(&starts)), Some(self.ints(&ends))];
        let need_steps = steps.iter().any(|&s| s != 1);
        if !all_in_order || need_steps || self.chance(50) {
            let axes: Vec<i64> = axes.iter().map(|&a| a as i64).collect();
            ins.push(Some(self.ints(&axes)));
            if need_steps || self.chance(50) {
                ins.push(Some(self.ints(&steps)));
            }
        }
        self.push(OpKind::Slice, Attrs::new(), &ins, x.bound, x.exact)
    }

    /// `where(cmp(p, q), a, b)` with `p` and `q` exact, so the condition is the same in
    /// every engine.
    fn where_(&mut self) -> Option<Val> {
        let a = self.pick(|_| true)?;
        let sa = a.shape.clone();
        let p = match self.pick(|v| v.exact && broadcast(&sa, &v.shape).is_some()) {
            Some(p) if self.chance(70) => p,
            _ => {
                let s = self.bcast_partner(&a.shape);
                self.constant_in(&s, -2.0, 2.0)
            }
        };
        let sp = p.shape.clone();
        let q = match self.pick(|v| v.exact && broadcast(&sp, &v.shape).is_some() && v.id != p.id) {
            Some(q) if self.chance(40) => q,
            _ => {
                let s = self.bcast_partner(&p.shape);
                self.constant_in(&s, -2.0, 2.0)
            }
        };
        let cmp = [
            OpKind::Less,
            OpKind::Greater,
            OpKind::LessOrEqual,
            OpKind::GreaterOrEqual,
            OpKind::Equal,
        ][self.below(5)]
        .clone();
        let (mut cond, mut cshape) = self.node(cmp, Attrs::new(), &[Some(p.id), Some(q.id)])?;
        // Sometimes combine with a second comparison or negate.
        match self.below(4) {
            0 => {
                if let Some((c, s)) = self.node(OpKind::Not, Attrs::new(), &[Some(cond)]) {
                    (cond, cshape) = (c, s);
                }
            }
            1 => {
                let t = self.constant_in(&cshape.clone(), -1.0, 1.0);
                let op = if self.chance(50) {
                    OpKind::Less
                } else {
                    OpKind::Greater
                };
                if let Some((c2, _)) = self.node(op, Attrs::new(), &[Some(p.id), Some(t.id)]) {
                    let op = if self.chance(50) {
                        OpKind::And
                    } else {
                        OpKind::Or
                    };
                    if let Some((c, s)) = self.node(op, Attrs::new(), &[Some(cond), Some(c2)]) {
                        (cond, cshape) = (c, s);
                    }
                }
            }
            _ => {}
        }
        let Some(sab) = broadcast(&cshape, &a.shape) else {
            // `q` widened `p` past what `a` broadcasts with; drop the unused compare.
            if let Some((n, _)) = self.g.producer(cond) {
                let _ = self.g.remove_node(n);
            }
            return None;
        };
        let b = self.partner(&sab, |_| true);
        let (x, y) = if self.chance(50) { (a, b) } else { (b, a) };
        self.push(
            OpKind::Where,
            Attrs::new(),
            &[Some(cond), Some(x.id), Some(y.id)],
            x.bound.max(y.bound),
            x.exact && y.exact,
        )
    }

    fn clip(&mut self) -> Option<Val> {
        let x = self.pick(|_| true)?;
        let lo = if self.chance(70) {
            Some(self.constant_in(&[], -1.0, 0.0))
        } else {
            None
        };
        let hi = if self.chance(70) {
            Some(self.constant_in(&[], 0.0, 1.0))
        } else {
            None
        };
        let bound = match (&lo, &hi) {
            (Some(l), Some(h)) => l.bound.max(h.bound),
            _ => x.bound,
        };
        let mut ins = vec![Some(x.id)];
        match (&lo, &hi) {
            (None, None) => {}
            (Some(l), None) => ins.push(Some(l.id)),
            (l, Some(h)) => {
                ins.push(l.as_ref().map(|l| l.id));
                ins.push(Some(h.id));
            }
        }
        self.push(OpKind::Clip, Attrs::new(), &ins, bound, x.exact)
    }

    // ---- outputs and cleanup ---------------------------------------------------------

    /// Outputs: the latest computed value plus up to two other computed values that
    /// nothing reads (others stay as dead code for DCE to find); then drop constants
    /// nobody reads (left by rejected attempts).
    fn finish(&mut self) {
        let computed: Vec<Val> = self.pool.iter().filter(|v| !v.leaf).cloned().collect();
        let mut outs: Vec<ValueId> = vec![];
        if let Some(last) = computed.last() {
            outs.push(last.id);
        }
        let sinks: Vec<ValueId> = computed
            .iter()
            .map(|v| v.id)
            .filter(|&v| !outs.contains(&v) && self.g.consumers(v).is_empty())
            .collect();
        let extra = self.below(3).min(sinks.len());
        for i in 0..extra {
            let j = self.below(sinks.len());
            let v = sinks[(j + i) % sinks.len()];
            if !outs.contains(&v) {
                outs.push(v);
            }
        }
        if outs.is_empty() {
            outs.push(self.pool[0].id);
        }
        if self.chance(self.cfg.odd_output_percent) {
            let pool: Vec<Val> = self.pool.clone();
            match self.below(4) {
                0 => outs.push(self.g.inputs()[0]),
                1 => {
                    let v = outs[0];
                    outs.push(v);
                }
                2 => {
                    let leaves: Vec<&Val> = pool.iter().filter(|v| v.leaf).collect();
                    let v = leaves[self.below(leaves.len())].id;
                    outs.insert(0, v);
                }
                _ => {
                    let read: Vec<&Val> = pool
                        .iter()
                        .filter(|v| !v.leaf && !self.g.consumers(v.id).is_empty())
                        .collect();
                    if !read.is_empty() {
                        let v = read[self.below(read.len())].id;
                        outs.push(v);
                    }
                }
            }
        }
        self.g.set_outputs(outs);
        loop {
            let dead: Vec<_> = self
                .g
                .node_ids()
                .filter(|&n| {
                    let node = self.g.node(n);
                    node.op == OpKind::Const && !node.outputs.iter().any(|&o| self.g.is_used(o))
                })
                .collect();
            if dead.is_empty() {
                break;
            }
            for n in dead {
                let _ = self.g.remove_node(n);
            }
        }
        self.g.compact_store();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_rules() {
        assert_eq!(broadcast(&[3, 1], &[4]), Some(vec![3, 4]));
        assert_eq!(broadcast(&[], &[2, 3]), Some(vec![2, 3]));
        assert_eq!(broadcast(&[2], &[3]), None);
    }
}
