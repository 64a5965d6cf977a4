//! Reading an op's integer arguments where ONNX moved them from attributes to inputs across opset
//! versions (`axes`, `starts`, `pads`, `split`, the Reshape shape...). Shape inference and constant
//! evaluation both read them the same way through [`OpView`].

use ssc_ir::{OpDesc, Tensor};

/// An integer-list argument of an op.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Arg {
    /// Not given (empty slot, missing attribute): the op's default applies.
    Absent,
    Known(Vec<i64>),
    /// Given as an input whose value is not known.
    Unknown,
}

impl Arg {
    pub(crate) fn known(&self) -> Option<&[i64]> {
        match self {
            Arg::Known(v) => Some(v),
            _ => None,
        }
    }
}

/// An op with the constant values of those inputs that are known.
pub(crate) struct OpView<'a> {
    pub desc: &'a OpDesc,
    pub opset: i64,
    /// Per input slot: `None` for an empty or missing slot, `Some(None)` for a value whose
    /// content is unknown, `Some(Some(t))` for a known value.
    pub inputs: Vec<Option<Option<&'a Tensor>>>,
}

impl<'a> OpView<'a> {
    pub(crate) fn present(&self, slot: usize) -> bool {
        matches!(self.inputs.get(slot), Some(Some(_)))
    }

    /// The known value at `slot`.
    pub(crate) fn konst(&self, slot: usize) -> Option<&'a Tensor> {
        self.inputs.get(slot).copied().flatten().flatten()
    }

    /// The integer values of input `slot`.
    pub(crate) fn ints_input(&self, slot: usize) -> Arg {
        if !self.present(slot) {
            return Arg::Absent;
        }
        match self.konst(slot).and_then(Tensor::to_i64_vec) {
            Some(v) => Arg::Known(v),
            None => Arg::Unknown,
        }
    }

    /// An integer-list attribute.
    pub(crate) fn ints_attr(&self, name: &str) -> Result<Arg, String> {
        match self.desc.get_ints(name) {
            Ok(Some(v)) => Ok(Arg::Known(v.to_vec())),
            Ok(None) => Ok(Arg::Absent),
            Err(e) => Err(e.to_string()),
        }
    }

    /// An argument that is attribute `name` before opset `input_since` and input `slot` from it.
    pub(crate) fn ints_arg(
        &self,
        name: &str,
        slot: usize,
        input_since: i64,
    ) -> Result<Arg, String> {
        if self.opset >= input_since {
            Ok(self.ints_input(slot))
        } else {
            self.ints_attr(name)
        }
    }

    pub(crate) fn int_attr(&self, name: &str, default: i64) -> Result<i64, String> {
        self.desc
            .get_int(name)
            .map(|v| v.unwrap_or(default))
            .map_err(|e| e.to_string())
    }

    pub(crate) fn float_attr(&self, name: &str, default: f32) -> Result<f32, String> {
        self.desc
            .get_float(name)
            .map(|v| v.unwrap_or(default))
            .map_err(|e| e.to_string())
    }

    pub(crate) fn string_attr(&self, name: &str, default: &str) -> Result<String, String> {
        self.desc
            .get_string(name)
            .map(|v| v.unwrap_or_else(|| default.to_string()))
            .map_err(|e| e.to_string())
    }

    /// The axes of a Reduce op: an input for ReduceSum from opset 13 and every other Reduce op
    /// from opset 18, an attribute before.
    pub(crate) fn reduce_axes(&self) -> Result<Arg, String> {
        let since = if self.desc.op_type == "ReduceSum" {
            13
        } else {
            18
        };
        let a = self.ints_arg("axes", 1, since)?;
        Ok(match a {
            Arg::Known(v) if v.is_empty() => Arg::Absent,
            other => other,
        })
    }
}
