//! Right-hand sides and their type-checked instantiation.
//!
//! A right-hand side is first planned without touching the e-graph: every new node's
//! output types are inferred from its operands with smelt-ir's inference, and the result
//! must have exactly the matched value's type (same dtype, same dims). Only then are the
//! nodes added. So a rule can never change a value's shape through broadcasting
//! (`x + zeros[2, 3]` with `x: [3]` is not `x`) nor build a node the verifier rejects.

use egg::{ENodeOrVar, Id, Language, PatternAst, Subst};
use smelt_ir::{Attr, DType, OpKind, TensorType};

use crate::analysis::{infer_op, InputInfo, IrEGraph};
use crate::lang::{IrLang, Leaf, OpSym};
use crate::pattern::Match;

/// A right-hand-side template.
#[derive(Debug, Clone, PartialEq)]
pub enum Rhs {
    /// `?x`: the class bound on the left.
    Var(String),
    /// `_`: an omitted optional input.
    Absent,
    /// A number: a new scalar constant with the dtype of its sibling operands.
    Num(f64),
    /// A new op node.
    Op {
        /// The op.
        op: OpKind,
        /// Attributes, each a literal, an attribute variable or a function of variables.
        attrs: Vec<(String, AttrExpr)>,
        /// Operands.
        args: Vec<Rhs>,
    },
    /// `(out k p)`.
    Out {
        /// The output index.
        index: usize,
        /// The node.
        node: Box<Rhs>,
    },
}

/// The value of an attribute on the right-hand side.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrExpr {
    /// A literal.
    Lit(Attr),
    /// An attribute variable bound on the left.
    Var(String),
    /// A function of variables.
    Call(AttrFn, Vec<String>),
}

/// Functions computing attributes from what the left-hand side matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrFn {
    /// `compose_perm(?p, ?q)`: the permutation of `transpose(transpose(x, p), q)`,
    /// `r[i] = p[q[i]]`.
    ComposePerm,
    /// `value(?c)`: the common value of a constant class, as a float.
    Value,
    /// `axis(?axes)`: the element of a one-element integer constant, as an int.
    Axis,
}

impl AttrFn {
    /// The function's name in rule files.
    pub fn name(self) -> &'static str {
        match self {
            AttrFn::ComposePerm => "compose_perm",
            AttrFn::Value => "value",
            AttrFn::Axis => "axis",
        }
    }

    /// The function for a name, with its arity.
    pub fn from_name(name: &str) -> Option<(AttrFn, usize)> {
        match name {
            "compose_perm" => Some((AttrFn::ComposePerm, 2)),
            "value" => Some((AttrFn::Value, 1)),
            "axis" => Some((AttrFn::Axis, 1)),
            _ => None,
        }
    }
}

/// One node of an instantiation plan.
enum Step {
    /// An existing class.
    Existing(Id),
    /// A new e-node whose children index earlier steps, with its output types.
    New(IrLang, Vec<TensorType>),
}

/// A checked plan: steps in dependency order, the last one the root.
struct Plan {
    steps: Vec<Step>,
}

impl Plan {
    fn info(&self, eg: &IrEGraph, i: usize) -> InputInfo {
        match &self.steps[i] {
            Step::Existing(id) => InputInfo::of(&eg[*id].data),
            Step::New(n, tys) => InputInfo {
                ty: tys
                    .first()
                    .cloned()
                    .filter(|_| !matches!(n, IrLang::Op(s, _) if s.nout() != 1)),
                constant: match n {
                    IrLang::Leaf(Leaf::Const(c)) => Some(*c),
                    _ => None,
                },
                absent: matches!(n, IrLang::Leaf(Leaf::Absent)),
            },
        }
    }

    fn outputs(&self, eg: &IrEGraph, i: usize) -> Vec<TensorType> {
        match &self.steps[i] {
            Step::Existing(id) => eg[*id].data.outputs.clone(),
            Step::New(_, tys) => tys.clone(),
        }
    }

    /// Plan an op node over planned operands.
    fn op(&mut self, eg: &IrEGraph, sym: OpSym, kids: Vec<usize>) -> Option<usize> {
        let infos: Vec<InputInfo> = kids.iter().map(|k| self.info(eg, *k)).collect();
        let tys = infer_op(eg.analysis.store(), &sym, &infos).ok()?;
        let node = IrLang::Op(sym, kids.iter().map(|k| Id::from(*k)).collect());
        self.steps.push(Step::New(node, tys));
        Some(self.steps.len() - 1)
    }

    /// Plan `(out k t)`.
    fn out(&mut self, eg: &IrEGraph, k: usize, t: usize) -> Option<usize> {
        let ty = self.outputs(eg, t).get(k)?.clone();
        self.steps
            .push(Step::New(IrLang::Leaf(Leaf::Index(k)), vec![]));
        let idx = self.steps.len() - 1;
        self.steps.push(Step::New(
            IrLang::Out([Id::from(idx), Id::from(t)]),
            vec![ty],
        ));
        Some(self.steps.len() - 1)
    }

    fn existing(&mut self, id: Id) -> usize {
        self.steps.push(Step::Existing(id));
        self.steps.len() - 1
    }

    /// The planned root's type must be exactly the matched class's.
    fn root_fits(&self, eg: &IrEGraph, root: Id) -> bool {
        let d = &eg[root].data;
        let last = self.steps.len() - 1;
        match (&d.ty, self.info(eg, last).ty) {
            (Some(a), Some(b)) => same_type(a, &b),
            (None, None) => !d.outputs.is_empty() && d.outputs == self.outputs(eg, last),
            _ => false,
        }
    }

    /// Add the planned nodes; returns the root's class.
    fn commit(self, eg: &mut IrEGraph) -> Id {
        let mut ids: Vec<Id> = Vec::with_capacity(self.steps.len());
        for step in self.steps {
            let id = match step {
                Step::Existing(id) => id,
                Step::New(node, tys) => {
                    let node = node.map_children(|k| ids[usize::from(k)]);
                    if matches!(node, IrLang::Op(..)) {
                        eg.analysis.set_pending(tys);
                    }
                    let id = eg.add(node);
                    eg.analysis.clear_pending();
                    id
                }
            };
            ids.push(id);
        }
        ids.last().copied().unwrap_or(Id::from(0))
    }
}

/// Types are interchangeable: same dtype and the same known-rank dims.
pub fn same_type(a: &TensorType, b: &TensorType) -> bool {
    a.dtype == b.dtype && a.shape.dims().is_some() && a.shape == b.shape
}

/// Instantiate a text rule's right-hand side for a match; `None` when an attribute cannot
/// be computed or the result would not have the matched value's type.
pub fn instantiate(eg: &mut IrEGraph, rhs: &Rhs, m: &Match) -> Option<Id> {
    let mut plan = Plan { steps: vec![] };
    let root_dtype = eg[m.root].data.dtype();
    plan_rhs(eg, &mut plan, rhs, m, root_dtype)?;
    if !plan.root_fits(eg, m.root) {
        return None;
    }
    Some(plan.commit(eg))
}

fn plan_rhs(
    eg: &mut IrEGraph,
    plan: &mut Plan,
    rhs: &Rhs,
    m: &Match,
    dtype: Option<DType>,
) -> Option<usize> {
    match rhs {
        Rhs::Var(v) => {
            let id = m.class(v)?;
            Some(plan.existing(id))
        }
        Rhs::Absent => {
            plan.steps
                .push(Step::New(IrLang::Leaf(Leaf::Absent), vec![]));
            Some(plan.steps.len() - 1)
        }
        Rhs::Num(v) => {
            let c = eg.analysis.scalar_const(dtype?, *v)?;
            let ty = TensorType::known(dtype?, &[]);
            plan.steps
                .push(Step::New(IrLang::Leaf(Leaf::Const(c)), vec![ty]));
            Some(plan.steps.len() - 1)
        }
        Rhs::Out { index, node } => {
            let t = plan_rhs(eg, plan, node, m, dtype)?;
            plan.out(eg, *index, t)
        }
        Rhs::Op { op, attrs, args } => {
            let mut values = smelt_ir::Attrs::new();
            for (name, e) in attrs {
                values.set(name, eval_attr(eg, e, m)?);
            }
            // Numbers take the dtype of their first non-number sibling.
            let mut kids = vec![None; args.len()];
            let mut sibling = None;
            for (i, a) in args.iter().enumerate() {
                if !matches!(a, Rhs::Num(_)) {
                    let k = plan_rhs(eg, plan, a, m, dtype)?;
                    sibling = sibling.or_else(|| plan.info(eg, k).ty.map(|t| t.dtype));
                    kids[i] = Some(k);
                }
            }
            for (i, a) in args.iter().enumerate() {
                if matches!(a, Rhs::Num(_)) {
                    kids[i] = Some(plan_rhs(eg, plan, a, m, sibling.or(dtype))?);
                }
            }
            let kids: Vec<usize> = kids.into_iter().collect::<Option<_>>()?;
            plan.op(eg, OpSym::new(op.clone(), values, 1, 0), kids)
        }
    }
}

fn eval_attr(eg: &IrEGraph, e: &AttrExpr, m: &Match) -> Option<Attr> {
    match e {
        AttrExpr::Lit(a) => Some(a.clone()),
        AttrExpr::Var(v) => m.attr(v).cloned(),
        AttrExpr::Call(AttrFn::ComposePerm, args) => {
            let (Some(Attr::Ints(p)), Some(Attr::Ints(q))) =
                (m.attr(args.first()?), m.attr(args.get(1)?))
            else {
                return None;
            };
            if p.len() != q.len() || !is_perm(p) || !is_perm(q) {
                return None;
            }
            Some(Attr::Ints(q.iter().map(|&i| p[i as usize]).collect()))
        }
        AttrExpr::Call(AttrFn::Value, args) => {
            let c = m.class(args.first()?)?;
            eg[c].data.splat.map(|v| Attr::Float(v as f32))
        }
        AttrExpr::Call(AttrFn::Axis, args) => {
            let c = m.class(args.first()?)?;
            match eg[c].data.ints.as_deref() {
                Some([a]) => Some(Attr::Int(*a)),
                _ => None,
            }
        }
    }
}

fn is_perm(p: &[i64]) -> bool {
    let mut seen = vec![false; p.len()];
    p.iter().all(|&i| {
        usize::try_from(i)
            .ok()
            .and_then(|i| seen.get_mut(i))
            .is_some_and(|s| !std::mem::replace(s, true))
    })
}

/// Instantiate an egg pattern for a substitution with the same type check (used by Rust
/// rules built with [`crate::Rule::rust`]).
pub fn instantiate_pattern(
    eg: &mut IrEGraph,
    ast: &PatternAst<IrLang>,
    subst: &Subst,
    root: Id,
) -> Option<Id> {
    let mut plan = Plan { steps: vec![] };
    let mut at: Vec<usize> = Vec::with_capacity(ast.as_ref().len());
    for node in ast.as_ref() {
        let step = match node {
            ENodeOrVar::Var(v) => plan.existing(*subst.get(*v)?),
            ENodeOrVar::ENode(IrLang::Op(sym, kids)) => {
                let kids: Vec<usize> = kids.iter().map(|k| at[usize::from(*k)]).collect();
                plan.op(eg, sym.clone(), kids)?
            }
            ENodeOrVar::ENode(IrLang::Out([k, t])) => {
                let k = match &plan.steps[at[usize::from(*k)]] {
                    Step::New(IrLang::Leaf(Leaf::Index(k)), _) => *k,
                    Step::Existing(id) => eg[*id].data.index?,
                    _ => return None,
                };
                plan.out(eg, k, at[usize::from(*t)])?
            }
            ENodeOrVar::ENode(IrLang::Leaf(l)) => {
                let ty = match l {
                    Leaf::Const(c) => {
                        let k = eg.analysis.store().get(*c)?;
                        vec![TensorType::known(
                            k.dtype(),
                            &k.shape().iter().map(|&d| d as u64).collect::<Vec<_>>(),
                        )]
                    }
                    Leaf::Value(v) => vec![eg.analysis.leaf_type(*v)?.clone()],
                    _ => vec![],
                };
                plan.steps.push(Step::New(IrLang::Leaf(*l), ty));
                plan.steps.len() - 1
            }
        };
        at.push(step);
    }
    if plan.steps.is_empty() || !plan.root_fits(eg, root) {
        return None;
    }
    Some(plan.commit(eg))
}

/// Right-hand sides print in the rule-file syntax.
impl std::fmt::Display for Rhs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rhs::Var(v) => write!(f, "?{v}"),
            Rhs::Absent => f.write_str("_"),
            Rhs::Num(v) => f.write_str(&crate::pattern::fmt_num(*v)),
            Rhs::Op { op, attrs, args } => {
                write!(f, "({op}")?;
                for a in args {
                    write!(f, " {a}")?;
                }
                crate::pattern::write_attrs(f, attrs, |a| match a {
                    AttrExpr::Lit(l) => crate::attrs::canonical_value(l),
                    AttrExpr::Var(v) => format!("?{v}"),
                    AttrExpr::Call(func, args) => {
                        let args: Vec<String> = args.iter().map(|a| format!("?{a}")).collect();
                        format!("{}({})", func.name(), args.join(", "))
                    }
                })?;
                f.write_str(")")
            }
            Rhs::Out { index, node } => write!(f, "(out {index} {node})"),
        }
    }
}
