//! The values a model takes and returns at run time: tensors, and the sequences and optionals
//! ONNX builds from them. The executor's interface and the test-data loader both speak it, so
//! it lives in the layer they share.

use crate::{DataType, Tensor};

/// A run-time value at a model's interface.
#[derive(Clone, Debug, PartialEq)]
pub enum RunValue {
    Tensor(Tensor),
    /// A sequence of tensors of one element type (known even when the sequence is empty).
    Sequence {
        elem: DataType,
        items: Vec<Tensor>,
    },
    /// An optional: a value, or none.
    Optional(Option<Box<RunValue>>),
}

impl RunValue {
    /// The tensor, if this is one.
    pub fn tensor(&self) -> Option<&Tensor> {
        match self {
            RunValue::Tensor(t) => Some(t),
            _ => None,
        }
    }

    /// A short description of the value's kind and size, for messages.
    pub fn describe(&self) -> String {
        match self {
            RunValue::Tensor(t) => format!("{} {:?}", t.dtype, t.dims),
            RunValue::Sequence { elem, items } => format!("seq({elem}) of {}", items.len()),
            RunValue::Optional(None) => "optional (none)".into(),
            RunValue::Optional(Some(v)) => format!("optional({})", v.describe()),
        }
    }
}

impl From<Tensor> for RunValue {
    fn from(t: Tensor) -> RunValue {
        RunValue::Tensor(t)
    }
}
