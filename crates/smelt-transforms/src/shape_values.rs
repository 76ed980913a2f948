//! Symbolic values of small integer tensors that hold shapes.
//!
//! Exporters compute reshape targets at run time: `Shape(x)` → `Gather` → `Unsqueeze` →
//! `Concat` → `Reshape`. When `x` has symbolic dims (`?batch`), none of that is constant,
//! but each element is still known *symbolically*. This analysis tracks those elements
//! so that `fold-constants` can fold what is fully known and rewrite reshape targets into
//! constant form (`0` = copy the input's dim).

use std::collections::HashMap;

use smelt_ir::{DType, Dim, Graph, IrResult, OpKind, ValueId};

/// One element of a shape value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SymInt {
    /// A known integer.
    Known(i64),
    /// Equal to the symbolic dim of this name.
    Sym(String),
    /// Nothing known.
    Unknown,
}

/// A 0-D or 1-D integer value known element-wise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapeValue {
    /// Elements (one for a scalar).
    pub elems: Vec<SymInt>,
    /// Whether the value is 0-D.
    pub scalar: bool,
}

impl ShapeValue {
    /// All elements as integers, if every one is known.
    pub fn known(&self) -> Option<Vec<i64>> {
        self.elems
            .iter()
            .map(|e| match e {
                SymInt::Known(k) => Some(*k),
                _ => None,
            })
            .collect()
    }
}

/// Elements tracked per value are capped so the analysis stays cheap.
const MAX_ELEMS: usize = 64;

fn sym_of(d: &Dim) -> SymInt {
    match d {
        Dim::Known(k) => i64::try_from(*k)
            .map(SymInt::Known)
            .unwrap_or(SymInt::Unknown),
        Dim::Sym(s) => SymInt::Sym(s.clone()),
        Dim::Unknown => SymInt::Unknown,
    }
}

fn int_list(g: &Graph, v: ValueId) -> Option<Vec<i64>> {
    let t = g.plain_constant(v)?;
    if t.len() > MAX_ELEMS {
        return None;
    }
    t.to_i64_vec().ok()
}

/// Compute shape values for every value where the analysis applies.
pub fn analyse(g: &Graph) -> IrResult<HashMap<ValueId, ShapeValue>> {
    let mut sv: HashMap<ValueId, ShapeValue> = HashMap::new();
    for id in g.topo_order()? {
        let n = g.node(id);
        let Some(&out) = n.outputs.first() else {
            continue;
        };
        let ty = g.ty(out);
        if !matches!(ty.dtype, DType::I64 | DType::I32) || ty.rank().is_some_and(|r| r > 1) {
            continue;
        }
        let input = |slot: usize| n.inputs.get(slot).copied().flatten();
        let sv_in = |slot: usize| input(slot).and_then(|v| sv.get(&v)).cloned();
        let value = match &n.op {
            OpKind::Const => {
                let t = g.plain_constant(out);
                t.filter(|t| t.len() <= MAX_ELEMS && t.shape().len() <= 1)
                    .and_then(|t| {
                        let v = t.to_i64_vec().ok()?;
                        Some(ShapeValue {
                            elems: v.into_iter().map(SymInt::Known).collect(),
                            scalar: t.shape().is_empty(),
                        })
                    })
            }
            OpKind::Shape => input(0).and_then(|x| {
                let dims = g.ty(x).dims()?;
                let rank = dims.len() as i64;
                let clamp = |i: i64| (if i < 0 { i + rank } else { i }).clamp(0, rank) as usize;
                let start = clamp(n.attrs.int_or("start", 0));
                let end = clamp(n.attrs.int_or("end", rank));
                let elems = dims
                    .get(start..end.max(start))?
                    .iter()
                    .map(sym_of)
                    .collect();
                Some(ShapeValue {
                    elems,
                    scalar: false,
                })
            }),
            OpKind::Gather if n.attrs.int_or("axis", 0) == 0 => (|| {
                let data = sv_in(0)?;
                let idx_v = input(1)?;
                let idx = int_list(g, idx_v)?;
                let len = data.elems.len() as i64;
                let elems = idx
                    .iter()
                    .map(|&i| {
                        let i = if i < 0 { i + len } else { i };
                        data.elems.get(usize::try_from(i).ok()?).cloned()
                    })
                    .collect::<Option<Vec<_>>>()?;
                let scalar = g.ty(idx_v).rank() == Some(0);
                Some(ShapeValue { elems, scalar })
            })(),
            OpKind::Unsqueeze => sv_in(0)
                .filter(|s| s.scalar)
                .map(|s| ShapeValue { scalar: false, ..s }),
            OpKind::Squeeze => sv_in(0)
                .filter(|s| s.elems.len() == 1)
                .map(|s| ShapeValue { scalar: true, ..s }),
            OpKind::Identity => sv_in(0),
            OpKind::Cast => sv_in(0),
            OpKind::Concat => (|| {
                let mut elems = vec![];
                for i in n.inputs.iter() {
                    let s = sv.get(&(*i)?)?;
                    if s.scalar {
                        return None;
                    }
                    elems.extend(s.elems.iter().cloned());
                }
                (elems.len() <= MAX_ELEMS).then_some(ShapeValue {
                    elems,
                    scalar: false,
                })
            })(),
            OpKind::Slice => (|| {
                let data = sv_in(0)?;
                let starts = int_list(g, input(1)?)?;
                let ends = int_list(g, input(2)?)?;
                if let Some(a) = input(3) {
                    if int_list(g, a)?.iter().any(|&a| a != 0 && a != -1) {
                        return None;
                    }
                }
                let step = match input(4) {
                    Some(s) => *int_list(g, s)?.first()?,
                    None => 1,
                };
                if step != 1 || data.scalar {
                    return None;
                }
                let len = data.elems.len() as i64;
                let norm = |i: i64| (if i < 0 { i + len } else { i }).clamp(0, len) as usize;
                let (s, e) = (norm(*starts.first()?), norm(*ends.first()?));
                Some(ShapeValue {
                    elems: data.elems.get(s..e.max(s))?.to_vec(),
                    scalar: false,
                })
            })(),
            _ => None,
        };
        if let Some(v) = value {
            sv.insert(out, v);
        }
    }
    Ok(sv)
}
