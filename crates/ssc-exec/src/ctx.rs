//! The view an op kernel gets of its node: attributes with defaults, inputs by slot, the opset,
//! and an error constructor that names the node.

use ssc_ir::{AttrValue, OpDesc, TensorType};

use crate::value::{Array, Val};
use crate::ExecError;

pub(crate) type Result<T> = std::result::Result<T, ExecError>;

/// A node's subgraphs, prepared, with the values they read from the graph around the node.
pub(crate) trait Subgraphs {
    /// Runs the subgraph of attribute `attr` on `inputs` (its graph inputs, in order).
    fn run(&self, attr: &str, inputs: Vec<Val>) -> Result<Vec<Val>>;
    /// The declared types of that subgraph's outputs.
    fn output_types(&self, attr: &str) -> Result<Vec<Option<TensorType>>>;
}

/// One node being evaluated.
pub(crate) struct Ctx<'a> {
    pub desc: &'a OpDesc,
    pub label: &'a str,
    pub opset: i64,
    pub inputs: &'a [Option<&'a Val>],
    /// How many output slots the node has (optional outputs may be requested or not).
    pub n_out: usize,
    /// The node's subgraphs, when it has any.
    pub subgraphs: Option<&'a dyn Subgraphs>,
}

impl<'a> Ctx<'a> {
    pub fn err(&self, msg: impl Into<String>) -> ExecError {
        ExecError::Node {
            node: self.label.to_string(),
            op_type: self.desc.op_type.clone(),
            msg: msg.into(),
        }
    }

    /// Refuses an input value the executor does not implement, as [`ExecError::Unsupported`]:
    /// for conditions only a run can see (a Dropout whose `training_mode` input is true), so
    /// callers tell "not implemented" from a failure the same way as for a static check.
    pub fn unsupported(&self, reason: impl Into<String>) -> ExecError {
        ExecError::Unsupported(vec![crate::Unsupported {
            node: self.label.to_string(),
            op_type: self.desc.op_type.clone(),
            domain: self.desc.domain.clone(),
            reason: reason.into(),
        }])
    }

    fn ir<T>(&self, r: std::result::Result<T, ssc_ir::IrError>) -> Result<T> {
        r.map_err(|e| self.err(e.to_string()))
    }

    /// The node's subgraphs (If, Loop, Scan).
    pub fn subgraphs(&self) -> Result<&'a dyn Subgraphs> {
        self.subgraphs
            .ok_or_else(|| self.err("the node's subgraphs are not available"))
    }

    /// Input `i` as a value of any kind (tensor or sequence), when present.
    pub fn opt_val(&self, i: usize) -> Option<&'a Val> {
        self.inputs.get(i).copied().flatten()
    }

    // ----- inputs -----

    /// Whether input `i` is present (not beyond the list and not an empty slot).
    pub fn has(&self, i: usize) -> bool {
        matches!(self.inputs.get(i), Some(Some(_)))
    }

    /// Required tensor input `i`.
    pub fn input(&self, i: usize) -> Result<&'a Array> {
        self.opt_input(i)?
            .ok_or_else(|| self.err(format!("missing required input {i}")))
    }

    /// Optional tensor input `i`.
    pub fn opt_input(&self, i: usize) -> Result<Option<&'a Array>> {
        match self.inputs.get(i) {
            None | Some(None) => Ok(None),
            Some(Some(Val::Tensor(a))) => Ok(Some(a)),
            Some(Some(v)) => Err(self.err(format!("input {i} is {}, not a tensor", v.kind()))),
        }
    }

    /// Required sequence input `i`.
    pub fn seq_input(&self, i: usize) -> Result<(ssc_ir::DataType, &'a [Array])> {
        match self.inputs.get(i) {
            Some(Some(Val::Seq(dt, items))) => Ok((*dt, items)),
            Some(Some(v)) => Err(self.err(format!("input {i} is {}, not a sequence", v.kind()))),
            _ => Err(self.err(format!("missing required input {i}"))),
        }
    }

    /// Optional integer-list input `i` (axes, pads, shape...), as i64.
    pub fn opt_ints_input(&self, i: usize) -> Result<Option<Vec<i64>>> {
        match self.opt_input(i)? {
            None => Ok(None),
            Some(a) => a.to_i64_vec().map(Some).ok_or_else(|| {
                self.err(format!(
                    "input {i} must be an integer tensor, not {}",
                    a.dtype()
                ))
            }),
        }
    }

    /// Optional scalar (or one-element) input `i`, widened to f64.
    pub fn opt_scalar_input(&self, i: usize) -> Result<Option<f64>> {
        match self.opt_input(i)? {
            None => Ok(None),
            Some(a) if a.len() == 1 => Ok(Some(a.to_f64_vec()[0])),
            Some(a) => Err(self.err(format!(
                "input {i} must hold one element, not shape {:?}",
                a.shape
            ))),
        }
    }

    // ----- attributes -----

    pub fn has_attr(&self, name: &str) -> bool {
        self.desc.attr(name).is_some()
    }

    pub fn int(&self, name: &str, default: i64) -> Result<i64> {
        Ok(self.ir(self.desc.get_int(name))?.unwrap_or(default))
    }

    pub fn float(&self, name: &str, default: f32) -> Result<f32> {
        Ok(self.ir(self.desc.get_float(name))?.unwrap_or(default))
    }

    pub fn string(&self, name: &str, default: &str) -> Result<String> {
        Ok(self
            .ir(self.desc.get_string(name))?
            .unwrap_or_else(|| default.to_string()))
    }

    pub fn ints(&self, name: &str) -> Result<Option<Vec<i64>>> {
        Ok(self.ir(self.desc.get_ints(name))?.map(<[i64]>::to_vec))
    }

    /// A strings attribute, each decoded as UTF-8 (lossily).
    pub fn strings(&self, name: &str) -> Result<Option<Vec<String>>> {
        match self.desc.attr(name).map(|a| &a.value) {
            None => Ok(None),
            Some(AttrValue::Strings(v)) => Ok(Some(
                v.iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect(),
            )),
            Some(_) => Err(self.err(format!("attribute `{name}` must be a list of strings"))),
        }
    }

    pub fn floats(&self, name: &str) -> Result<Option<Vec<f32>>> {
        Ok(self.ir(self.desc.get_floats(name))?.map(<[f32]>::to_vec))
    }

    /// A tensor attribute, decoded.
    pub fn tensor_attr(&self, name: &str) -> Result<Option<Array>> {
        match self.ir(self.desc.get_tensor(name))? {
            None => Ok(None),
            Some(t) => Array::from_tensor(t)
                .map(Some)
                .map_err(|e| self.err(format!("attribute `{name}`: {e}"))),
        }
    }

    /// The name of every attribute present, for ops that take one of several (Constant).
    pub fn attr_names(&self) -> Vec<&'a str> {
        self.desc
            .attrs
            .iter()
            .filter(|a| !matches!(a.value, AttrValue::Opaque { .. }))
            .map(|a| a.name.as_str())
            .collect()
    }

    /// Normalises an axis against `rank`, with an error naming the attribute or input.
    pub fn axis(&self, axis: i64, rank: usize) -> Result<usize> {
        crate::layout::norm_axis(axis, rank)
            .ok_or_else(|| self.err(format!("axis {axis} is out of range for rank {rank}")))
    }
}
