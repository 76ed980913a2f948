//! Node attributes.

use std::collections::BTreeMap;

use crate::tensor::Tensor;

/// One attribute value.
#[derive(Debug, Clone)]
pub enum Attr {
    Int(i64),
    Float(f32),
    Str(String),
    Ints(Vec<i64>),
    Floats(Vec<f32>),
    Strs(Vec<String>),
    /// A small constant tensor (e.g. ConstantOfShape's `value`).
    Tensor(Tensor),
}

impl PartialEq for Attr {
    fn eq(&self, other: &Self) -> bool {
        use Attr::*;
        match (self, other) {
            (Int(a), Int(b)) => a == b,
            (Float(a), Float(b)) => a.to_bits() == b.to_bits(),
            (Str(a), Str(b)) => a == b,
            (Ints(a), Ints(b)) => a == b,
            (Floats(a), Floats(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
            }
            (Strs(a), Strs(b)) => a == b,
            (Tensor(a), Tensor(b)) => a.same_content(b),
            _ => false,
        }
    }
}

/// Attributes of a node, sorted by name so printing is deterministic.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Attrs(pub BTreeMap<String, Attr>);

impl Attrs {
    /// No attributes.
    pub fn new() -> Attrs {
        Attrs::default()
    }

    /// Builder-style insert.
    pub fn with(mut self, name: &str, value: Attr) -> Attrs {
        self.0.insert(name.to_string(), value);
        self
    }

    /// Insert or replace.
    pub fn set(&mut self, name: &str, value: Attr) {
        self.0.insert(name.to_string(), value);
    }

    /// Look up an attribute.
    pub fn get(&self, name: &str) -> Option<&Attr> {
        self.0.get(name)
    }

    /// Whether there are no attributes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// An integer attribute (`None` if absent or of another kind).
    pub fn int(&self, name: &str) -> Option<i64> {
        match self.get(name)? {
            Attr::Int(v) => Some(*v),
            _ => None,
        }
    }

    /// An integer attribute with a default.
    pub fn int_or(&self, name: &str, default: i64) -> i64 {
        self.int(name).unwrap_or(default)
    }

    /// A float attribute (ints are accepted and converted).
    pub fn float(&self, name: &str) -> Option<f32> {
        match self.get(name)? {
            Attr::Float(v) => Some(*v),
            Attr::Int(v) => Some(*v as f32),
            _ => None,
        }
    }

    /// A float attribute with a default.
    pub fn float_or(&self, name: &str, default: f32) -> f32 {
        self.float(name).unwrap_or(default)
    }

    /// A string attribute.
    pub fn str(&self, name: &str) -> Option<&str> {
        match self.get(name)? {
            Attr::Str(v) => Some(v),
            _ => None,
        }
    }

    /// An integer-list attribute.
    pub fn ints(&self, name: &str) -> Option<&[i64]> {
        match self.get(name)? {
            Attr::Ints(v) => Some(v),
            _ => None,
        }
    }

    /// A float-list attribute.
    pub fn floats(&self, name: &str) -> Option<&[f32]> {
        match self.get(name)? {
            Attr::Floats(v) => Some(v),
            _ => None,
        }
    }

    /// A tensor attribute.
    pub fn tensor(&self, name: &str) -> Option<&Tensor> {
        match self.get(name)? {
            Attr::Tensor(t) => Some(t),
            _ => None,
        }
    }

    /// Iterate in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Attr)> {
        self.0.iter()
    }
}
