//! Running a whole model: a plan built once per graph (support check, topological order, value
//! slots, decoded initializers, the steps the outputs depend on, last uses, and the same for
//! every subgraph), then any number of runs over it.
//!
//! A subgraph (If's branches, Loop's and Scan's body) is a [`Plan`] of its own. It reads the
//! values of the graphs around it through its free values: the op holding it captures them
//! (`Op::captures`), the step passes the captured values down, and the subgraph's run borrows
//! them into its slots. Control-flow kernels reach their subgraphs through [`Subgraphs`].

use std::borrow::Cow;
use std::collections::HashMap;

use ssc_ir::{Graph, Model, OpDesc, OpId, RunValue, Tensor, TensorType, ValueId, ValueType};

use crate::ctx::{Ctx, Subgraphs};
use crate::error::ExecError;
use crate::support::check_supported;
use crate::value::{Array, Val};

/// One op of a plan.
struct Step<'g> {
    op: OpId,
    label: String,
    inputs: Vec<Option<usize>>,
    outputs: Vec<Option<usize>>,
    /// Slots whose last reader is this step, dropped once it has run.
    free: Vec<usize>,
    /// Values the op's subgraphs read from this graph: name and slot.
    captures: Vec<(String, usize)>,
    /// The op's subgraphs, prepared: attribute name and plan.
    subgraphs: Vec<(&'g str, Plan<'g>)>,
}

impl Step<'_> {
    /// The slots the step reads: its inputs, and the captures its subgraphs read.
    fn reads(&self) -> impl Iterator<Item = usize> + '_ {
        self.inputs
            .iter()
            .flatten()
            .chain(self.captures.iter().map(|(_, s)| s))
            .copied()
    }
}

/// A graph input: where it goes and what type it declares.
struct InputSpec {
    name: String,
    slot: usize,
    ty: Option<TensorType>,
    /// Whether an initializer provides a default.
    has_default: bool,
}

/// One graph prepared for execution: the main graph or a subgraph.
pub(crate) struct Plan<'g> {
    graph: &'g Graph,
    opset: i64,
    steps: Vec<Step<'g>>,
    slots: usize,
    /// Decoded initializers, by slot.
    consts: Vec<Option<Val>>,
    inputs: Vec<InputSpec>,
    outputs: Vec<(String, usize)>,
    /// Values read from the graphs around this one (a subgraph's free values): name and slot.
    outer: Vec<(String, usize)>,
}

/// A model prepared for execution. Build it once with [`Executor::new`], then [`run`] it as
/// often as needed; it borrows the model.
///
/// [`run`]: Executor::run
pub struct Executor<'m> {
    plan: Plan<'m>,
}

impl std::fmt::Debug for Executor<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = &self.plan;
        f.debug_struct("Executor")
            .field("opset", &p.opset)
            .field("steps", &p.steps.len())
            .field(
                "inputs",
                &p.inputs.iter().map(|i| &i.name).collect::<Vec<_>>(),
            )
            .field(
                "outputs",
                &p.outputs.iter().map(|o| &o.0).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl<'g> Plan<'g> {
    /// Orders the ops of `g`, assigns value slots, decodes initializers and finds last uses.
    /// A main graph (`subgraph` false) must define every value it reads; a subgraph's free
    /// values are read from the graphs around it.
    pub(crate) fn new(g: &'g Graph, opset: i64, subgraph: bool) -> Result<Plan<'g>, ExecError> {
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
            let captures = o
                .captures()
                .iter()
                .map(|&v| (g.value(v).name.clone(), slot(v)))
                .collect();
            let subgraphs = o
                .desc
                .subgraphs()
                .map(|(attr, sub)| Ok((attr, Plan::new(sub, opset, true)?)))
                .collect::<Result<_, ExecError>>()?;
            steps.push(Step {
                op,
                label: g.op_label(op),
                inputs,
                outputs,
                free: Vec::new(),
                captures,
                subgraphs,
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
        let outer: Vec<(String, usize)> = if subgraph {
            g.free_values()
                .into_iter()
                .map(|v| (g.value(v).name.clone(), slot(v)))
                .collect()
        } else {
            Vec::new()
        };
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
        // Every value read must be defined by an op, an initializer, a graph input or (in a
        // subgraph) an enclosing graph.
        let mut defined = vec![false; slots];
        for i in &inputs {
            defined[i.slot] = true;
        }
        for (_, s) in &outer {
            defined[*s] = true;
        }
        for (s, c) in consts.iter().enumerate() {
            defined[s] |= c.is_some();
        }
        let name_of = |s: usize| {
            slot_of
                .iter()
                .find(|(_, &x)| x == s)
                .map(|(&v, _)| g.value(v).name.clone())
                .unwrap_or_default()
        };
        for st in &steps {
            for s in st.reads() {
                if !defined[s] {
                    return Err(ExecError::Undefined(name_of(s)));
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
        // Only the steps an output depends on run: a node no output reads (an exporter's
        // leftover, a debug branch) costs nothing and cannot fail the run. The walk goes
        // backwards over the topological order; a subgraph's reads from this graph are its
        // op's captures.
        let mut needed = vec![false; slots];
        for (_, s) in &outputs {
            needed[*s] = true;
        }
        let mut live = vec![false; steps.len()];
        for (i, st) in steps.iter().enumerate().rev() {
            if st.outputs.iter().flatten().any(|&s| needed[s]) {
                live[i] = true;
                for s in st.reads() {
                    needed[s] = true;
                }
            }
        }
        let mut live = live.into_iter();
        steps.retain(|_| live.next() == Some(true));
        // Last uses: free a slot after its last reader (captures read too), unless it is a
        // graph output.
        let mut last: Vec<Option<usize>> = vec![None; slots];
        for (i, st) in steps.iter().enumerate() {
            for s in st.reads() {
                last[s] = Some(i);
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
        Ok(Plan {
            graph: g,
            opset,
            steps,
            slots,
            consts,
            inputs,
            outputs,
            outer,
        })
    }

    /// The slots with their initializers in place, borrowed.
    fn initial_values(&self) -> Vec<Option<Cow<'_, Val>>> {
        let values: Vec<Option<Cow<'_, Val>>> = self
            .consts
            .iter()
            .map(|c| c.as_ref().map(Cow::Borrowed))
            .collect();
        debug_assert_eq!(values.len(), self.slots);
        values
    }

    /// Runs every step over `values` (inputs already in place) and takes the graph outputs.
    fn execute<'v>(&'v self, mut values: Vec<Option<Cow<'v, Val>>>) -> Result<Vec<Val>, ExecError> {
        for st in &self.steps {
            let desc: &OpDesc = &self.graph.op(st.op).desc;
            let ins: Vec<Option<&Val>> = st
                .inputs
                .iter()
                .map(|s| s.and_then(|s| values[s].as_deref()))
                .collect();
            let env = (!st.subgraphs.is_empty()).then(|| StepEnv {
                plans: &st.subgraphs,
                captured: st
                    .captures
                    .iter()
                    .filter_map(|(name, s)| Some((name.as_str(), values[*s].as_deref()?)))
                    .collect(),
            });
            let ctx = Ctx {
                desc,
                label: &st.label,
                opset: self.opset,
                inputs: &ins,
                n_out: st.outputs.len(),
                subgraphs: env.as_ref().map(|e| e as &dyn Subgraphs),
            };
            let outs = crate::ops::eval(&ctx)?;
            drop(ins);
            drop(env);
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
            .map(|(name, s)| {
                values[*s]
                    .clone()
                    .map(Cow::into_owned)
                    .ok_or_else(|| ExecError::Undefined(name.clone()))
            })
            .collect()
    }

    /// Runs a subgraph: `inputs` bind its graph inputs in order (an input with an initializer
    /// may be left off the end), `outer` holds the values its free values name.
    pub(crate) fn run_subgraph<'v>(
        &'v self,
        inputs: Vec<Val>,
        outer: &[(&str, &'v Val)],
    ) -> Result<Vec<Val>, ExecError> {
        let mut values = self.initial_values();
        if inputs.len() > self.inputs.len()
            || self.inputs[inputs.len()..].iter().any(|i| !i.has_default)
        {
            return Err(ExecError::BadValue {
                name: self.graph.name.clone(),
                msg: format!(
                    "the subgraph takes {} inputs, {} given",
                    self.inputs.len(),
                    inputs.len()
                ),
            });
        }
        for (spec, v) in self.inputs.iter().zip(inputs) {
            values[spec.slot] = Some(Cow::Owned(v));
        }
        for (name, s) in &self.outer {
            let v = outer
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| *v)
                .ok_or_else(|| ExecError::Undefined(name.clone()))?;
            values[*s] = Some(Cow::Borrowed(v));
        }
        self.execute(values)
    }

    /// The declared types of the graph outputs (for outputs a run produces nothing for, such
    /// as the scan outputs of a Loop that runs no iteration).
    pub(crate) fn output_types(&self) -> Vec<Option<TensorType>> {
        self.graph
            .outputs()
            .iter()
            .map(|&v| {
                self.graph
                    .value(v)
                    .ty
                    .as_ref()
                    .and_then(ValueType::tensor)
                    .cloned()
            })
            .collect()
    }
}

/// What a control-flow kernel sees of its node's subgraphs.
pub(crate) struct StepEnv<'p, 'v> {
    plans: &'p [(&'p str, Plan<'p>)],
    /// The captured values of the enclosing graph, by name.
    captured: Vec<(&'v str, &'v Val)>,
}

impl StepEnv<'_, '_> {
    fn plan(&self, attr: &str) -> Result<&Plan<'_>, ExecError> {
        self.plans
            .iter()
            .find(|(a, _)| *a == attr)
            .map(|(_, p)| p)
            .ok_or_else(|| ExecError::BadValue {
                name: attr.to_string(),
                msg: "the node has no such subgraph attribute".into(),
            })
    }
}

impl Subgraphs for StepEnv<'_, '_> {
    fn run(&self, attr: &str, inputs: Vec<Val>) -> Result<Vec<Val>, ExecError> {
        let plan = self.plan(attr)?;
        plan.run_subgraph(inputs, &self.captured)
    }

    fn output_types(&self, attr: &str) -> Result<Vec<Option<TensorType>>, ExecError> {
        Ok(self.plan(attr)?.output_types())
    }
}

impl<'m> Executor<'m> {
    /// Checks that every op is supported (listing all that are not, subgraphs included),
    /// orders the ops, and decodes the initializers.
    pub fn new(model: &'m Model) -> Result<Executor<'m>, ExecError> {
        check_supported(model)?;
        Ok(Executor {
            plan: Plan::new(&model.graph, model.onnx_opset(), false)?,
        })
    }

    /// The graph inputs a caller must feed (those without an initializer default).
    pub fn required_inputs(&self) -> Vec<&str> {
        self.plan
            .inputs
            .iter()
            .filter(|i| !i.has_default)
            .map(|i| i.name.as_str())
            .collect()
    }

    /// Runs the model. Every graph input without an initializer must be fed; an input with one
    /// may be fed to override it. Fed tensors must match the declared element type, rank and
    /// static dims. Returns the graph outputs in order; a sequence or optional output is an
    /// error here (see [`Executor::run_values`]).
    pub fn run(&self, feeds: &[(String, Tensor)]) -> Result<Vec<(String, Tensor)>, ExecError> {
        let feeds: Vec<(String, RunValue)> = feeds
            .iter()
            .map(|(n, t)| (n.clone(), RunValue::Tensor(t.clone())))
            .collect();
        self.run_values(&feeds)?
            .into_iter()
            .map(|(name, v)| match v {
                RunValue::Tensor(t) => Ok((name, t)),
                other => Err(ExecError::BadValue {
                    msg: format!(
                        "is {}; run_values returns sequence and optional outputs",
                        other.describe()
                    ),
                    name,
                }),
            })
            .collect()
    }

    /// [`Executor::run`] for models whose inputs or outputs may be sequences or optionals.
    pub fn run_values(
        &self,
        feeds: &[(String, RunValue)],
    ) -> Result<Vec<(String, RunValue)>, ExecError> {
        let p = &self.plan;
        let mut values = p.initial_values();
        let mut fed = vec![false; p.inputs.len()];
        for (name, v) in feeds {
            let (i, spec) = p
                .inputs
                .iter()
                .enumerate()
                .find(|(_, s)| &s.name == name)
                .ok_or_else(|| ExecError::UnknownInput(name.clone()))?;
            if std::mem::replace(&mut fed[i], true) {
                return Err(ExecError::DuplicateInput { name: name.clone() });
            }
            if let RunValue::Tensor(t) = v {
                check_feed(spec, t)?;
            }
            let val = Val::from_run_value(v).map_err(|msg| ExecError::BadInput {
                name: name.clone(),
                msg,
            })?;
            values[spec.slot] = Some(Cow::Owned(val));
        }
        for (spec, &f) in p.inputs.iter().zip(&fed) {
            if !f && !spec.has_default {
                return Err(ExecError::MissingInput(spec.name.clone()));
            }
        }
        let outs = p.execute(values)?;
        Ok(p.outputs
            .iter()
            .zip(outs)
            .map(|((name, _), v)| (name.clone(), v.to_run_value()))
            .collect())
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
    let label = desc.label();
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
        subgraphs: None,
    };
    crate::ops::resize::resize_taps(&ctx, x_shape)
}

pub fn eval_node(
    desc: &OpDesc,
    opset: i64,
    inputs: &[Option<&Tensor>],
    num_outputs: usize,
) -> Result<Vec<Tensor>, ExecError> {
    eval_node_with(desc, opset, inputs, num_outputs, &[])
}

/// [`eval_node`] for a node whose subgraphs read values of the graph around it (If, Loop,
/// Scan): `captured` gives each captured value by name (the names of the node's
/// `Op::captures`). Its subgraphs are prepared on each call.
pub fn eval_node_with(
    desc: &OpDesc,
    opset: i64,
    inputs: &[Option<&Tensor>],
    num_outputs: usize,
    captured: &[(&str, &Tensor)],
) -> Result<Vec<Tensor>, ExecError> {
    let ins: Vec<Option<RunValue>> = inputs
        .iter()
        .map(|t| t.map(|t| RunValue::Tensor(t.clone())))
        .collect();
    let ins: Vec<Option<&RunValue>> = ins.iter().map(Option::as_ref).collect();
    let cap: Vec<(&str, RunValue)> = captured
        .iter()
        .map(|(n, t)| (*n, RunValue::Tensor((*t).clone())))
        .collect();
    let cap: Vec<(&str, &RunValue)> = cap.iter().map(|(n, v)| (*n, v)).collect();
    eval_node_values(desc, opset, &ins, num_outputs, &cap)?
        .into_iter()
        .map(|v| match v {
            RunValue::Tensor(t) => Ok(t),
            other => Err(ExecError::Node {
                node: desc.label(),
                op_type: desc.op_type.clone(),
                msg: format!("{} output cannot be returned as a tensor", other.describe()),
            }),
        })
        .collect()
}

/// com.microsoft DynamicQuantizeLSTM with its integer products supplied by `products` (the
/// JIT's packed kernels); everything else is the reference's arithmetic, so the outputs are
/// [`eval_node`]'s.
pub fn dynamic_quantize_lstm_with(
    desc: &OpDesc,
    opset: i64,
    inputs: &[Option<&Tensor>],
    num_outputs: usize,
    products: &dyn crate::LstmProducts,
) -> Result<Vec<Tensor>, ExecError> {
    let label = desc.label();
    let vals: Vec<Option<Val>> = inputs
        .iter()
        .enumerate()
        .map(|(i, t)| {
            t.map(|t| crate::value::Array::from_tensor(t).map(Val::Tensor))
                .transpose()
                .map_err(|e| ExecError::Node {
                    node: label.clone(),
                    op_type: desc.op_type.clone(),
                    msg: format!("input {i}: {e}"),
                })
        })
        .collect::<Result<_, _>>()?;
    let refs: Vec<Option<&Val>> = vals.iter().map(Option::as_ref).collect();
    let ctx = Ctx {
        desc,
        label: &label,
        opset,
        inputs: &refs,
        n_out: num_outputs,
        subgraphs: None,
    };
    crate::ops::contrib::dynamic_quantize_lstm_with(&ctx, Some(products))?
        .into_iter()
        .map(|v| match v {
            Val::Tensor(a) => Ok(a.to_tensor()),
            _ => Err(ExecError::Node {
                node: label.clone(),
                op_type: desc.op_type.clone(),
                msg: "an output is not a tensor".into(),
            }),
        })
        .collect()
}

/// [`eval_node_with`] on values of any kind: tensors, sequences and optionals in and out (the
/// JIT's fallback for the nodes that make or read sequences and optionals).
pub fn eval_node_values(
    desc: &OpDesc,
    opset: i64,
    inputs: &[Option<&RunValue>],
    num_outputs: usize,
    captured: &[(&str, &RunValue)],
) -> Result<Vec<RunValue>, ExecError> {
    let label = desc.label();
    let mut bad = Vec::new();
    crate::support::check_desc(desc, opset, &label, &mut bad);
    if !bad.is_empty() {
        return Err(ExecError::Unsupported(bad));
    }
    let node_err = |msg: String| ExecError::Node {
        node: label.clone(),
        op_type: desc.op_type.clone(),
        msg,
    };
    let vals: Vec<Option<Val>> = inputs
        .iter()
        .enumerate()
        .map(|(i, v)| {
            v.map(Val::from_run_value)
                .transpose()
                .map_err(|e| node_err(format!("input {i}: {e}")))
        })
        .collect::<Result<_, _>>()?;
    let refs: Vec<Option<&Val>> = vals.iter().map(Option::as_ref).collect();
    let plans: Vec<(&str, Plan<'_>)> = desc
        .subgraphs()
        .map(|(attr, sub)| Ok((attr, Plan::new(sub, opset, true)?)))
        .collect::<Result<_, ExecError>>()?;
    let captured_vals: Vec<(&str, Val)> = captured
        .iter()
        .map(|(name, v)| {
            Val::from_run_value(v)
                .map(|v| (*name, v))
                .map_err(|e| node_err(format!("captured `{name}`: {e}")))
        })
        .collect::<Result<_, _>>()?;
    let env = StepEnv {
        plans: &plans,
        captured: captured_vals.iter().map(|(n, v)| (*n, v)).collect(),
    };
    let ctx = Ctx {
        desc,
        label: &label,
        opset,
        inputs: &refs,
        n_out: num_outputs,
        subgraphs: (!plans.is_empty()).then_some(&env as &dyn Subgraphs),
    };
    let outs = crate::ops::eval(&ctx)?;
    if outs.len() < num_outputs {
        return Err(node_err(format!(
            "produced {} outputs, {num_outputs} requested",
            outs.len()
        )));
    }
    Ok(outs
        .into_iter()
        .take(num_outputs)
        .map(|v| v.to_run_value())
        .collect())
}
