//! Running a whole model: a plan built once (support check, topological order, value slots,
//! decoded initializers, last uses), then any number of runs over it.

use std::borrow::Cow;
use std::collections::HashMap;

use ssc_ir::{Model, OpDesc, OpId, Tensor, TensorType, ValueId, ValueType};

use crate::ctx::Ctx;
use crate::error::ExecError;
use crate::support::{check_supported, unsupported_reason};
use crate::value::{Array, Val};

/// One op of the plan.
struct Step {
    op: OpId,
    label: String,
    inputs: Vec<Option<usize>>,
    outputs: Vec<Option<usize>>,
    /// Slots whose last reader is this step, dropped once it has run.
    free: Vec<usize>,
}

/// A graph input: where it goes and what type it declares.
struct InputSpec {
    name: String,
    slot: usize,
    ty: Option<TensorType>,
    /// Whether an initializer provides a default.
    has_default: bool,
}

/// A model prepared for execution. Build it once with [`Executor::new`], then [`run`] it as
/// often as needed; it borrows the model.
///
/// [`run`]: Executor::run
pub struct Executor<'m> {
    model: &'m Model,
    opset: i64,
    steps: Vec<Step>,
    slots: usize,
    /// Decoded initializers, by slot.
    consts: Vec<Option<Val>>,
    inputs: Vec<InputSpec>,
    outputs: Vec<(String, usize)>,
}

impl std::fmt::Debug for Executor<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("opset", &self.opset)
            .field("steps", &self.steps.len())
            .field(
                "inputs",
                &self.inputs.iter().map(|i| &i.name).collect::<Vec<_>>(),
            )
            .field(
                "outputs",
                &self.outputs.iter().map(|o| &o.0).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl<'m> Executor<'m> {
    /// Checks that every op is supported (listing all that are not), orders the ops, and
    /// decodes the initializers.
    pub fn new(model: &'m Model) -> Result<Executor<'m>, ExecError> {
        check_supported(model)?;
        let g = &model.graph;
        let order = g.topo_order()?;
        let mut slot_of: HashMap<ValueId, usize> = HashMap::new();
        let mut slot = |v: ValueId| {
            let n = slot_of.len();
            *slot_of.entry(v).or_insert(n)
        };
        let mut steps = Vec::with_capacity(order.len());
        for &op in &order {
            let o = g.op(op);
            let inputs: Vec<Option<usize>> = o.inputs().iter().map(|v| v.map(&mut slot)).collect();
            let mut outputs: Vec<Option<usize>> =
                o.outputs().iter().map(|v| v.map(&mut slot)).collect();
            while outputs.last() == Some(&None) {
                outputs.pop();
            }
            steps.push(Step {
                op,
                label: g.op_label(op),
                inputs,
                outputs,
                free: Vec::new(),
            });
        }
        let inputs: Vec<InputSpec> = g
            .inputs()
            .iter()
            .map(|&v| InputSpec {
                name: g.value(v).name.clone(),
                slot: slot(v),
                ty: g.value(v).ty.as_ref().and_then(ValueType::tensor).cloned(),
                has_default: g.initializer(v).is_some(),
            })
            .collect();
        let outputs: Vec<(String, usize)> = g
            .outputs()
            .iter()
            .map(|&v| (g.value(v).name.clone(), slot(v)))
            .collect();
        let slots = slot_of.len();
        let mut consts: Vec<Option<Val>> = vec![None; slots];
        for v in g.initializer_ids() {
            if let Some(&s) = slot_of.get(&v) {
                let t = g.initializer(v).expect("listed initializer");
                let a = Array::from_tensor(t).map_err(|msg| ExecError::BadValue {
                    name: g.value(v).name.clone(),
                    msg,
                })?;
                consts[s] = Some(a.into());
            }
        }
        // Every value read must be defined by an op, an initializer or a graph input.
        let mut defined = vec![false; slots];
        for i in &inputs {
            defined[i.slot] = true;
        }
        for (s, c) in consts.iter().enumerate() {
            defined[s] |= c.is_some();
        }
        for st in &steps {
            for s in st.inputs.iter().flatten() {
                if !defined[*s] {
                    let name = slot_of
                        .iter()
                        .find(|(_, &x)| x == *s)
                        .map(|(&v, _)| g.value(v).name.clone())
                        .unwrap_or_default();
                    return Err(ExecError::Undefined(name));
                }
            }
            for s in st.outputs.iter().flatten() {
                defined[*s] = true;
            }
        }
        for (name, s) in &outputs {
            if !defined[*s] {
                return Err(ExecError::Undefined(name.clone()));
            }
        }
        // Last uses: free a slot after its last reader, unless it is a graph output.
        let mut last: Vec<Option<usize>> = vec![None; slots];
        for (i, st) in steps.iter().enumerate() {
            for s in st.inputs.iter().flatten() {
                last[*s] = Some(i);
            }
        }
        for (_, s) in &outputs {
            last[*s] = None;
        }
        for (s, l) in last.iter().enumerate() {
            if let Some(i) = l {
                steps[*i].free.push(s);
            }
        }
        Ok(Executor {
            model,
            opset: model.onnx_opset(),
            steps,
            slots,
            consts,
            inputs,
            outputs,
        })
    }

    /// The graph inputs a caller must feed (those without an initializer default).
    pub fn required_inputs(&self) -> Vec<&str> {
        self.inputs
            .iter()
            .filter(|i| !i.has_default)
            .map(|i| i.name.as_str())
            .collect()
    }

    /// Runs the model. Every graph input without an initializer must be fed; an input with one
    /// may be fed to override it. Fed tensors must match the declared element type, rank and
    /// static dims. Returns the graph outputs in order.
    pub fn run(&self, feeds: &[(String, Tensor)]) -> Result<Vec<(String, Tensor)>, ExecError> {
        let mut values: Vec<Option<Cow<'_, Val>>> = self
            .consts
            .iter()
            .map(|c| c.as_ref().map(Cow::Borrowed))
            .collect();
        debug_assert_eq!(values.len(), self.slots);
        let mut fed = vec![false; self.inputs.len()];
        for (name, t) in feeds {
            let (i, spec) = self
                .inputs
                .iter()
                .enumerate()
                .find(|(_, s)| &s.name == name)
                .ok_or_else(|| ExecError::UnknownInput(name.clone()))?;
            if std::mem::replace(&mut fed[i], true) {
                return Err(ExecError::DuplicateInput { name: name.clone() });
            }
            check_feed(spec, t)?;
            let a = Array::from_tensor(t).map_err(|msg| ExecError::BadInput {
                name: name.clone(),
                msg,
            })?;
            values[spec.slot] = Some(Cow::Owned(a.into()));
        }
        for (spec, &f) in self.inputs.iter().zip(&fed) {
            if !f && !spec.has_default {
                return Err(ExecError::MissingInput(spec.name.clone()));
            }
        }
        let g = &self.model.graph;
        for st in &self.steps {
            let desc: &OpDesc = &g.op(st.op).desc;
            let ins: Vec<Option<&Val>> = st
                .inputs
                .iter()
                .map(|s| s.and_then(|s| values[s].as_deref()))
                .collect();
            let ctx = Ctx {
                desc,
                label: &st.label,
                opset: self.opset,
                inputs: &ins,
                n_out: st.outputs.len(),
            };
            let outs = crate::ops::eval(&ctx)?;
            drop(ins);
            let produced = outs.len();
            let mut outs = outs.into_iter();
            for (k, s) in st.outputs.iter().enumerate() {
                let v = outs.next();
                if let Some(s) = s {
                    let v = v.ok_or_else(|| ExecError::Node {
                        node: st.label.clone(),
                        op_type: desc.op_type.clone(),
                        msg: format!("output {k} was requested but only {produced} produced"),
                    })?;
                    values[*s] = Some(Cow::Owned(v));
                }
            }
            for &s in &st.free {
                values[s] = None;
            }
        }
        self.outputs
            .iter()
            .map(|(name, s)| match values[*s].as_deref() {
                Some(Val::Tensor(a)) => Ok((name.clone(), a.to_tensor())),
                Some(Val::Seq(..)) => Err(ExecError::BadValue {
                    name: name.clone(),
                    msg: "sequence graph outputs are not supported".into(),
                }),
                None => Err(ExecError::Undefined(name.clone())),
            })
            .collect()
    }
}

/// Checks a fed tensor against the graph input's declared type.
fn check_feed(spec: &InputSpec, t: &Tensor) -> Result<(), ExecError> {
    let bad = |msg: String| ExecError::BadInput {
        name: spec.name.clone(),
        msg,
    };
    let Some(ty) = &spec.ty else {
        return Ok(());
    };
    if ty.elem != t.dtype {
        return Err(bad(format!("expected {}, got {}", ty.elem, t.dtype)));
    }
    if let Some(dims) = &ty.shape {
        if dims.len() != t.dims.len() {
            return Err(bad(format!(
                "expected rank {}, got dims {:?}",
                dims.len(),
                t.dims
            )));
        }
        for (i, (d, &n)) in dims.iter().zip(&t.dims).enumerate() {
            if let Some(k) = d.known() {
                if k != n {
                    return Err(bad(format!("dim {i} must be {k}, got dims {:?}", t.dims)));
                }
            }
        }
    }
    Ok(())
}

/// Builds an [`Executor`] and runs it once.
pub fn run_model(
    model: &Model,
    feeds: &[(String, Tensor)],
) -> Result<Vec<(String, Tensor)>, ExecError> {
    Executor::new(model)?.run(feeds)
}

/// Evaluates a single node on constant inputs, for constant folding: `inputs` follow the
/// node's input slots (`None` for empty optional slots), and `num_outputs` is the number of
/// output slots the node has (optional outputs such as MaxPool's Indices are computed only
/// when counted). Returns one tensor per output slot.
/// The taps of a `Resize` or `Upsample` node on an input of shape `x_shape`: `inputs` are the
/// node's inputs after the first (roi, scales, sizes as the opset orders them; `None` where
/// absent). The reference computes Resize from these; the JIT builds its kernel from them.
pub fn resize_taps(
    desc: &OpDesc,
    opset: i64,
    x_shape: &[usize],
    inputs: &[Option<&Tensor>],
) -> Result<crate::ops::resize::ResizeTaps, ExecError> {
    let label = if desc.name.is_empty() {
        desc.op_type.clone()
    } else {
        desc.name.clone()
    };
    let node_err = |msg: String| ExecError::Node {
        node: label.clone(),
        op_type: desc.op_type.clone(),
        msg,
    };
    if !matches!(desc.op_type.as_str(), "Resize" | "Upsample") || !desc.is_onnx() {
        return Err(node_err("not a Resize or Upsample node".into()));
    }
    // Input 0 is never read: an empty placeholder keeps the input slots aligned.
    let mut vals: Vec<Option<Val>> = vec![Some(Val::from(Array::new(vec![0], Vec::<f32>::new())))];
    for (i, t) in inputs.iter().enumerate() {
        vals.push(
            t.map(|t| Array::from_tensor(t).map(Val::from))
                .transpose()
                .map_err(|e| node_err(format!("input {}: {e}", i + 1)))?,
        );
    }
    let refs: Vec<Option<&Val>> = vals.iter().map(Option::as_ref).collect();
    let ctx = Ctx {
        desc,
        label: &label,
        opset,
        inputs: &refs,
        n_out: 1,
    };
    crate::ops::resize::resize_taps(&ctx, x_shape)
}

pub fn eval_node(
    desc: &OpDesc,
    opset: i64,
    inputs: &[Option<&Tensor>],
    num_outputs: usize,
) -> Result<Vec<Tensor>, ExecError> {
    let label = if desc.name.is_empty() {
        desc.op_type.clone()
    } else {
        desc.name.clone()
    };
    if let Some(reason) = unsupported_reason(desc, opset) {
        return Err(ExecError::Unsupported(vec![crate::Unsupported {
            node: label,
            op_type: desc.op_type.clone(),
            domain: desc.domain.clone(),
            reason,
        }]));
    }
    let node_err = |msg: String| ExecError::Node {
        node: label.clone(),
        op_type: desc.op_type.clone(),
        msg,
    };
    let vals: Vec<Option<Val>> = inputs
        .iter()
        .enumerate()
        .map(|(i, t)| {
            t.map(|t| Array::from_tensor(t).map(Val::from))
                .transpose()
                .map_err(|e| node_err(format!("input {i}: {e}")))
        })
        .collect::<Result<_, _>>()?;
    let refs: Vec<Option<&Val>> = vals.iter().map(Option::as_ref).collect();
    let ctx = Ctx {
        desc,
        label: &label,
        opset,
        inputs: &refs,
        n_out: num_outputs,
    };
    let outs = crate::ops::eval(&ctx)?;
    if outs.len() < num_outputs {
        return Err(node_err(format!(
            "produced {} outputs, {num_outputs} requested",
            outs.len()
        )));
    }
    outs.into_iter()
        .take(num_outputs)
        .map(|v| match v {
            Val::Tensor(a) => Ok(a.to_tensor()),
            Val::Seq(..) => Err(node_err(
                "sequence outputs cannot be returned as tensors".into(),
            )),
        })
        .collect()
}
