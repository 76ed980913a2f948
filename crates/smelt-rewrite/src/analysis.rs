//! The e-class analysis: what rule conditions and the cost model know about a class.
//!
//! Every class of a value carries its [`TensorType`] (dtype and symbolic shape), the
//! encoding of the constant it holds, the constant's handle and, for small constants, its
//! value (one number when all elements are equal, the integers of a small integer
//! tensor). Types of nodes that came from the graph are the graph's recorded types; types
//! of nodes added by rules come from smelt-ir's own inference ([`infer_op`]), run on a
//! scratch graph holding just that node, so rules see exactly what the verifier will.

use std::collections::HashMap;

use egg::{Analysis, DidMerge, EGraph, Id};
use smelt_ir::infer::{infer_node, merge_types};
use smelt_ir::{
    ConstId, Constant, DType, Encoding, Graph, Tensor, TensorType, ValueId, WeightStore,
};

use crate::lang::{IrLang, Leaf, OpSym};

/// The e-graph over smelt's IR.
pub type IrEGraph = EGraph<IrLang, IrAnalysis>;

/// Small integer constants (axes, shapes, permutations) keep their elements up to this many.
const MAX_INTS: usize = 64;
/// Constants up to this many elements are scanned for a common value.
const MAX_SPLAT: usize = 4096;

/// What is known about one e-class.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassData {
    /// The value's type; `None` for tuples, indices and `_`, or if inference failed.
    pub ty: Option<TensorType>,
    /// For a multi-output node: the type of each output.
    pub outputs: Vec<TensorType>,
    /// How the class's constant is stored (`Plain` for computed values).
    pub encoding: Encoding,
    /// The constant this class is, by handle.
    pub constant: Option<ConstId>,
    /// The common value of all elements of a small plain constant.
    pub splat: Option<f64>,
    /// The elements of a small plain integer constant.
    pub ints: Option<Vec<i64>>,
    /// For output-index leaves: the index.
    pub index: Option<usize>,
    /// Whether this is the omitted-input leaf `_`.
    pub absent: bool,
    /// Whether the value can be computed from constants alone (fold-constants will).
    pub foldable: bool,
    /// Whether values of different types were merged into this class (only an unchecked
    /// raw egg rewrite can do that); such an e-graph is not extracted.
    pub conflict: bool,
}

impl Default for ClassData {
    fn default() -> Self {
        ClassData {
            ty: None,
            outputs: vec![],
            encoding: Encoding::Plain,
            constant: None,
            splat: None,
            ints: None,
            index: None,
            absent: false,
            foldable: false,
            conflict: false,
        }
    }
}

impl ClassData {
    /// Number of elements, when every dim is known.
    pub fn num_elements(&self) -> Option<usize> {
        self.ty.as_ref()?.shape.num_elements()
    }

    /// The rank, when known.
    pub fn rank(&self) -> Option<usize> {
        self.ty.as_ref()?.rank()
    }

    /// The dtype, for value classes.
    pub fn dtype(&self) -> Option<DType> {
        self.ty.as_ref().map(|t| t.dtype)
    }
}

/// The analysis state: the weight store the `#N` leaves index, and the types of the
/// `%N` leaves.
#[derive(Debug, Clone, Default)]
pub struct IrAnalysis {
    store: WeightStore,
    original_consts: usize,
    leaf_types: HashMap<ValueId, TensorType>,
    /// Types to use for the next op node `make` sees, instead of inferring them: set by
    /// whoever already knows them (graph conversion, checked rule application).
    pending: Option<Vec<TensorType>>,
    new_scalars: HashMap<(DType, u64), ConstId>,
}

impl IrAnalysis {
    /// An analysis over a graph's weight store (shared, no data copied).
    pub fn new(store: WeightStore) -> IrAnalysis {
        let original_consts = store.len();
        IrAnalysis {
            store,
            original_consts,
            ..IrAnalysis::default()
        }
    }

    /// The weight store, including constants rules created.
    pub fn store(&self) -> &WeightStore {
        &self.store
    }

    /// Whether a constant was created by a rule (it is not in the graph's store).
    pub fn is_new_const(&self, c: ConstId) -> bool {
        c.0 as usize >= self.original_consts
    }

    /// Declare the type of an outside value before adding its `%N` leaf.
    pub fn set_leaf_type(&mut self, v: ValueId, ty: TensorType) {
        self.leaf_types.insert(v, ty);
    }

    /// The declared type of an outside value.
    pub fn leaf_type(&self, v: ValueId) -> Option<&TensorType> {
        self.leaf_types.get(&v)
    }

    /// Use `types` for the next op node added instead of inferring them.
    pub fn set_pending(&mut self, types: Vec<TensorType>) {
        self.pending = Some(types);
    }

    /// Forget pending types (after an `add` that found the node already present).
    pub fn clear_pending(&mut self) {
        self.pending = None;
    }

    /// A scalar constant of `dtype` holding `value`, created once per (dtype, value).
    pub fn scalar_const(&mut self, dtype: DType, value: f64) -> Option<ConstId> {
        if let Some(c) = self.new_scalars.get(&(dtype, value.to_bits())) {
            return Some(*c);
        }
        let t = scalar_tensor(dtype, value)?;
        let c = self.store.add(Constant::plain(t));
        self.new_scalars.insert((dtype, value.to_bits()), c);
        Some(c)
    }
}

/// A rank-0 tensor of `dtype` holding `value` (float and integer dtypes only).
pub fn scalar_tensor(dtype: DType, v: f64) -> Option<Tensor> {
    Some(match dtype {
        DType::F32 => Tensor::scalar(v as f32),
        DType::F64 => Tensor::scalar(v),
        DType::F16 => Tensor::scalar(half::f16::from_f64(v)),
        DType::BF16 => Tensor::scalar(half::bf16::from_f64(v)),
        DType::I64 if v.fract() == 0.0 => Tensor::scalar(v as i64),
        DType::I32 if v.fract() == 0.0 => Tensor::scalar(v as i32),
        _ => return None,
    })
}

/// What inference needs to know about one input of a node.
#[derive(Debug, Clone)]
pub struct InputInfo {
    /// The input's type (`None` for `_`).
    pub ty: Option<TensorType>,
    /// The constant it is, if any (so shape-defining constants are seen).
    pub constant: Option<ConstId>,
    /// Whether this is an omitted input.
    pub absent: bool,
}

impl InputInfo {
    /// The info of an existing class.
    pub fn of(data: &ClassData) -> InputInfo {
        InputInfo {
            ty: data.ty.clone(),
            constant: data.constant,
            absent: data.absent,
        }
    }
}

/// Infer the output types of `sym` applied to `inputs` with smelt-ir's inference, on a
/// scratch graph holding the inputs (constants by shared handle) and the one node.
pub fn infer_op(
    store: &WeightStore,
    sym: &OpSym,
    inputs: &[InputInfo],
) -> Result<Vec<TensorType>, String> {
    let mut g = Graph::new("scratch");
    let mut ins = Vec::with_capacity(inputs.len());
    for (i, inp) in inputs.iter().enumerate() {
        if inp.absent {
            ins.push(None);
            continue;
        }
        let c = inp.constant.and_then(|c| store.get(c)).cloned();
        let v = match (c, &inp.ty) {
            (Some(c), _) => g.add_shared_const("", c),
            (None, Some(ty)) => g.add_input("", ty.clone()),
            (None, None) => return Err(format!("type of input {i} is unknown")),
        };
        ins.push(Some(v));
    }
    let outs = (0..sym.nout())
        .map(|_| (String::new(), TensorType::unranked(DType::F32)))
        .collect();
    let id = g
        .add_node("", sym.op().clone(), sym.attrs().clone(), ins, outs)
        .map_err(|e| e.to_string())?;
    let mut tys = infer_node(&g, id).map_err(|e| e.to_string())?;
    if tys.len() < sym.nout() {
        return Err(format!(
            "{} yields {} outputs, the node has {}",
            sym.op(),
            tys.len(),
            sym.nout()
        ));
    }
    tys.truncate(sym.nout());
    Ok(tys)
}

/// The data of a constant leaf.
fn const_data(store: &WeightStore, c: ConstId) -> ClassData {
    let mut d = ClassData {
        constant: Some(c),
        foldable: true,
        ..ClassData::default()
    };
    let Some(k) = store.get(c) else { return d };
    d.ty = Some(TensorType::known(
        k.dtype(),
        &k.shape().iter().map(|&s| s as u64).collect::<Vec<_>>(),
    ));
    d.encoding = k.encoding().clone();
    if let Some(t) = k.as_plain() {
        d.splat = splat_of(t);
        if t.dtype().is_int() && t.len() <= MAX_INTS {
            d.ints = t.to_i64_vec().ok();
        }
    }
    d
}

/// The common value of a small plain tensor's elements.
pub fn splat_of(t: &Tensor) -> Option<f64> {
    if t.is_empty() || t.len() > MAX_SPLAT {
        return None;
    }
    let vals: Vec<f64> = match t.dtype() {
        DType::F32 => t.to_vec::<f32>().ok()?.into_iter().map(f64::from).collect(),
        DType::F64 => t.to_vec::<f64>().ok()?,
        DType::F16 => t
            .to_vec::<half::f16>()
            .ok()?
            .into_iter()
            .map(f64::from)
            .collect(),
        DType::BF16 => t
            .to_vec::<half::bf16>()
            .ok()?
            .into_iter()
            .map(f64::from)
            .collect(),
        d if d.is_int() && d.bits() >= 8 => {
            t.to_i64_vec().ok()?.into_iter().map(|x| x as f64).collect()
        }
        _ => return None,
    };
    let first = vals[0];
    vals.iter()
        .all(|v| v.to_bits() == first.to_bits())
        .then_some(first)
}

impl Analysis<IrLang> for IrAnalysis {
    type Data = ClassData;

    fn make(egraph: &mut IrEGraph, enode: &IrLang, _id: Id) -> ClassData {
        match enode {
            IrLang::Leaf(Leaf::Value(v)) => ClassData {
                ty: egraph.analysis.leaf_types.get(v).cloned(),
                ..ClassData::default()
            },
            IrLang::Leaf(Leaf::Const(c)) => const_data(&egraph.analysis.store, *c),
            IrLang::Leaf(Leaf::Index(k)) => ClassData {
                index: Some(*k),
                ..ClassData::default()
            },
            IrLang::Leaf(Leaf::Absent) => ClassData {
                absent: true,
                foldable: true,
                ..ClassData::default()
            },
            IrLang::Out([k, t]) => {
                let k = egraph[*k].data.index;
                let t = &egraph[*t].data;
                ClassData {
                    ty: k.and_then(|k| t.outputs.get(k).cloned()),
                    foldable: t.foldable,
                    ..ClassData::default()
                }
            }
            IrLang::Op(sym, children) => {
                let foldable =
                    sym.op().is_pure() && children.iter().all(|c| egraph[*c].data.foldable);
                let types = match egraph.analysis.pending.take() {
                    Some(t) => Ok(t),
                    None => {
                        let inputs: Vec<InputInfo> = children
                            .iter()
                            .map(|c| InputInfo::of(&egraph[*c].data))
                            .collect();
                        infer_op(&egraph.analysis.store, sym, &inputs)
                    }
                };
                let mut d = ClassData {
                    foldable,
                    ..ClassData::default()
                };
                // A failed inference leaves the type unknown: rules that need it do not
                // fire, and extraction never picks a node of unknown type.
                if let Ok(mut types) = types {
                    if sym.nout() == 1 {
                        d.ty = types.pop();
                    } else {
                        d.outputs = types;
                    }
                }
                d
            }
        }
    }

    fn merge(&mut self, a: &mut ClassData, b: ClassData) -> DidMerge {
        let before = a.clone();
        a.ty = match (a.ty.take(), &b.ty) {
            (None, t) => t.clone(),
            (Some(x), None) => Some(x),
            // Both sides are sound descriptions of the same value; keep what is more
            // specific. A conflict means a rule equated different things: flag it.
            (Some(x), Some(y)) => match merge_types(&x, y) {
                Ok(t) => Some(t),
                Err(_) => {
                    a.conflict = true;
                    Some(x)
                }
            },
        };
        if a.outputs.is_empty() {
            a.outputs = b.outputs.clone();
        }
        if a.encoding.is_plain() && !b.encoding.is_plain() {
            a.encoding = b.encoding.clone();
        }
        a.constant = a.constant.or(b.constant);
        a.splat = a.splat.or(b.splat);
        if a.ints.is_none() {
            a.ints = b.ints.clone();
        }
        a.index = a.index.or(b.index);
        a.absent |= b.absent;
        a.foldable |= b.foldable;
        a.conflict |= b.conflict;
        let a_changed = *a != before;
        let b_changed = *a != b;
        DidMerge(a_changed, b_changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smelt_ir::{Attrs, OpKind, Shape};

    #[test]
    fn constants_expose_values_and_types_are_inferred() {
        let mut store = WeightStore::default();
        let half = store.add(Constant::plain(Tensor::scalar(0.5f32)));
        let axes = store.add(Constant::plain(
            Tensor::from_vec(vec![1], vec![-1i64]).unwrap(),
        ));
        let mut eg = IrEGraph::new(IrAnalysis::new(store));
        let x = ValueId(0);
        eg.analysis.set_leaf_type(
            x,
            TensorType::new(
                DType::F32,
                Shape::new(vec![smelt_ir::Dim::sym("b"), 4u64.into()]),
            ),
        );
        let xl = eg.add(IrLang::Leaf(Leaf::Value(x)));
        let h = eg.add(IrLang::Leaf(Leaf::Const(half)));
        let a = eg.add(IrLang::Leaf(Leaf::Const(axes)));
        assert_eq!(eg[h].data.splat, Some(0.5));
        assert_eq!(eg[a].data.ints, Some(vec![-1]));
        let mul = eg.add(IrLang::Op(
            OpSym::new(OpKind::Mul, Attrs::new(), 1, 0),
            vec![xl, h].into(),
        ));
        assert_eq!(eg[mul].data.ty.as_ref().unwrap().to_string(), "f32[?b, 4]");
        assert!(!eg[mul].data.foldable);
        let rs = eg.add(IrLang::Op(
            OpSym::new(OpKind::ReduceSum, Attrs::new(), 1, 0),
            vec![mul, a].into(),
        ));
        assert_eq!(eg[rs].data.ty.as_ref().unwrap().to_string(), "f32[?b, 1]");
        // An ill-typed node gets no type.
        let bad = eg.add(IrLang::Op(
            OpSym::new(OpKind::MatMul, Attrs::new(), 1, 0),
            vec![h, h].into(),
        ));
        assert!(eg[bad].data.ty.is_none());
    }
}
