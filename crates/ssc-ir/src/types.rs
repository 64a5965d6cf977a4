//! Value types: tensor element type plus a shape of known, symbolic or unknown dimensions, and
//! the sequence and optional types built from them.

use bytes::Bytes;

use crate::DataType;

/// One dimension of a value's shape.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Dim {
    Known(usize),
    /// A named symbolic dimension (`dim_param`), such as `batch`.
    Param(String),
    Unknown,
}

impl Dim {
    pub fn known(&self) -> Option<usize> {
        match self {
            Dim::Known(d) => Some(*d),
            _ => None,
        }
    }
}

/// The type of a tensor value. `shape: None` means the rank is unknown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorType {
    pub elem: DataType,
    pub shape: Option<Vec<Dim>>,
}

impl TensorType {
    /// The fully static shape, when every dimension is known.
    pub fn static_shape(&self) -> Option<Vec<usize>> {
        self.shape.as_ref()?.iter().map(Dim::known).collect()
    }
}

/// The type of a value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValueType {
    Tensor(TensorType),
    /// An ONNX sequence (`seq(float[5])`): any number of values of the element type (tensors
    /// in practice; the executor runs sequences of tensors).
    Sequence(Box<ValueType>),
    /// An ONNX optional (`optional(seq(float[5]))`): a value of the element type, or none.
    Optional(Box<ValueType>),
    /// Map, sparse or annotated types, and sequences or optionals of them: the I/O layer's
    /// encoded `TypeProto`, kept verbatim.
    Opaque(Bytes),
}

impl ValueType {
    pub fn tensor(&self) -> Option<&TensorType> {
        match self {
            ValueType::Tensor(t) => Some(t),
            _ => None,
        }
    }

    /// Whether this is a tensor type (sequences, optionals and opaque types are not).
    pub fn is_tensor(&self) -> bool {
        matches!(self, ValueType::Tensor(_))
    }
}
