//! Tensor types: element type plus (symbolic) shape.

use std::fmt;

use crate::dtype::DType;
use crate::shape::{Dim, Shape};

/// The type of a value: dtype and shape. How a constant is stored is its
/// [`Encoding`](crate::Encoding), kept beside the constant, not here: every op sees the
/// logical type.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TensorType {
    /// Element type.
    pub dtype: DType,
    /// Shape, possibly symbolic or of unknown rank.
    pub shape: Shape,
}

impl TensorType {
    /// A type from a dtype and shape.
    pub fn new(dtype: DType, shape: impl Into<Shape>) -> TensorType {
        TensorType {
            dtype,
            shape: shape.into(),
        }
    }

    /// A fully known type.
    pub fn known(dtype: DType, dims: &[u64]) -> TensorType {
        TensorType {
            dtype,
            shape: Shape::known(dims),
        }
    }

    /// A type with unknown rank.
    pub fn unranked(dtype: DType) -> TensorType {
        TensorType {
            dtype,
            shape: Shape::unranked(),
        }
    }

    /// The rank if known.
    pub fn rank(&self) -> Option<usize> {
        self.shape.rank()
    }

    /// The dims if the rank is known.
    pub fn dims(&self) -> Option<&[Dim]> {
        self.shape.dims()
    }
}

impl fmt::Display for TensorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.dtype, self.shape)
    }
}
