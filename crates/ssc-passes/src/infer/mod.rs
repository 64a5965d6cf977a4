//! Shape and type inference: fixes symbolic input dims from `--input-shape` overrides, then
//! walks the graph in topological order writing each op's output types into `Value::ty`.
//!
//! Invariants:
//! - A declared type is never silently replaced: inferred information refines it (a symbolic
//!   or unknown dim becomes known). A declared element type that disagrees is an error naming
//!   the value (ONNX Runtime refuses those models); a declared rank or static dim that
//!   disagrees is a warning in [`InferReport::warnings`]: the value takes what the ops compute
//!   and the declaration is kept in `Value::declared`, which export writes back (ONNX Runtime
//!   warns and runs those models, and exporters do write them).
//! - Ops without a rule (other domains, subgraph ops, ops outside the CNN set) are skipped; their
//!   outputs keep whatever type they had.
//! - `in_value_info` is left alone unless [`InferOptions::mark_value_info`] asks to export the
//!   inferred intermediate types.
//!
//! Small integer tensors computed from shapes (`Shape -> Gather -> Concat`) are evaluated on the
//! side with the exact evaluator of `const_eval`, so a Reshape whose target shape is computed
//! still gets a static output.

mod dims;
mod rules;

use std::collections::{BTreeMap, HashMap};

use ssc_ir::{Dim, Graph, Model, OpId, Tensor, TensorType, ValueId, ValueType};

use crate::args::OpView;
use crate::util::{fmt_type, tensor_type};
use crate::PassError;

pub(crate) use rules::shape_range;

/// Element-count bound for the integer tensors inference evaluates on the side (shape
/// arithmetic is a handful of elements; the bound keeps weights from being copied around).
const MAX_PROPAGATED_ELEMS: usize = 1024;

/// Options for [`infer_shapes_with`].
#[derive(Clone, Debug, Default)]
pub struct InferOptions {
    /// Also set `in_value_info` on every intermediate value that ends up with a tensor type, so
    /// export writes the inferred types. Off by default: inference should not bloat the output.
    pub mark_value_info: bool,
}

/// What inference did, for logs and tests. Maps are ordered so reports are deterministic.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InferReport {
    /// Values that had no type and now have one.
    pub newly_typed: usize,
    /// Values whose declared type gained information (an unknown or symbolic dim became known,
    /// an unknown rank became known).
    pub refined: usize,
    /// Symbolic dims fixed by the overrides, substituted wherever they appear.
    pub bindings: BTreeMap<String, usize>,
    /// Ops without an inference rule, by `domain::op_type` (`op_type` alone for ONNX ops), with
    /// their count. Their outputs keep the types they had.
    pub unhandled_ops: BTreeMap<String, usize>,
    /// Values newly marked for export in `value_info`.
    pub marked_value_info: usize,
    /// Values whose declared rank or static dims disagree with what their op computes; each
    /// now has the computed type, its declaration kept in `Value::declared` for export.
    pub declarations_overridden: usize,
    /// One line per such value, naming it, the declared and the inferred type.
    pub warnings: Vec<String>,
}

impl std::fmt::Display for InferReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "typed {} values, refined {}",
            self.newly_typed, self.refined
        )?;
        if !self.bindings.is_empty() {
            let b: Vec<String> = self
                .bindings
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            write!(f, "; fixed {}", b.join(", "))?;
        }
        if self.marked_value_info > 0 {
            write!(f, "; marked {} for value_info", self.marked_value_info)?;
        }
        if self.declarations_overridden > 0 {
            write!(
                f,
                "; {} declared types disagreed with inference",
                self.declarations_overridden
            )?;
        }
        if !self.unhandled_ops.is_empty() {
            let u: Vec<String> = self
                .unhandled_ops
                .iter()
                .map(|(k, v)| format!("{k} x{v}"))
                .collect();
            write!(f, "; no rule for {}", u.join(", "))?;
        }
        Ok(())
    }
}

/// Fixes the dims of graph inputs from `overrides` and infers every type it can; see
/// [`infer_shapes_with`].
pub fn infer_shapes(
    model: &mut Model,
    overrides: &[(String, Vec<Dim>)],
) -> Result<InferReport, PassError> {
    infer_shapes_with(model, overrides, &InferOptions::default())
}

/// Fixes the dims of graph inputs from `overrides` (input name and full shape; `Dim::Param` or
/// `Dim::Unknown` in an override keeps the declared dim) and infers element types and shapes
/// through the CNN op set.
///
/// Errors: an override naming no graph input, or with the wrong rank, or contradicting a
/// declared static dim; an inferred element type contradicting a declared one; an op whose input shapes are impossible for it.
/// A declared shape contradicting the inferred one, or one symbolic dim given two sizes by the
/// overrides, is a warning (see the module docs).
pub fn infer_shapes_with(
    model: &mut Model,
    overrides: &[(String, Vec<Dim>)],
    opts: &InferOptions,
) -> Result<InferReport, PassError> {
    let opset = model.onnx_opset();
    let g = &mut model.graph;
    let mut report = InferReport::default();
    apply_overrides(g, overrides, &mut report)?;

    for v in g.initializer_ids() {
        // An initializer behind a graph input (IR >= 4) is only a default: a fed value may have
        // another shape, so it says nothing about the input's type.
        let Some(t) = g.constant(v) else {
            continue;
        };
        let ty = tensor_type(t);
        merge(g, v, ty, "<initializer>", &mut report)?;
    }

    let mut known: HashMap<ValueId, Tensor> = HashMap::new();
    for op in g.topo_order()? {
        let o = g.op(op);
        let desc = &o.desc;
        if !rules::covers(desc) {
            *report
                .unhandled_ops
                .entry(format!("{}::{}", desc.domain, desc.op_type))
                .or_default() += 1;
            continue;
        }
        let cx = make_cx(g, op, opset, &|v| g.constant(v).or_else(|| known.get(&v)));
        let inferred = match rules::infer(&cx) {
            None => {
                *report
                    .unhandled_ops
                    .entry(desc.op_type.clone())
                    .or_default() += 1;
                continue;
            }
            Some(Err(msg)) => {
                return Err(PassError::Shape {
                    node: g.op_label(op),
                    op_type: desc.op_type.clone(),
                    msg,
                });
            }
            Some(Ok(t)) => t,
        };
        let values = propagate_values(&cx, g, op);
        let label = g.op_label(op);
        let outputs = o.outputs().to_vec();
        for (slot, ty) in inferred.into_iter().enumerate() {
            if let (Some(Some(v)), Some(ty)) = (outputs.get(slot), ty) {
                merge(g, *v, ty, &label, &mut report)?;
            }
        }
        for (slot, t) in values.into_iter().enumerate() {
            if let Some(Some(v)) = outputs.get(slot) {
                known.insert(*v, t);
            }
        }
    }

    if opts.mark_value_info {
        for v in g.value_ids() {
            let is_interface =
                g.is_graph_input(v) || g.is_graph_output(v) || g.initializer(v).is_some();
            let val = g.value_mut(v);
            if !is_interface && !val.in_value_info && matches!(val.ty, Some(ValueType::Tensor(_))) {
                val.in_value_info = true;
                report.marked_value_info += 1;
            }
        }
    }
    Ok(report)
}

/// The rule context of `op`: its attributes, input types, and the input values `konst` knows.
fn make_cx<'a>(
    g: &'a Graph,
    op: OpId,
    opset: i64,
    konst: &dyn Fn(ValueId) -> Option<&'a Tensor>,
) -> rules::Cx<'a> {
    let o = g.op(op);
    let inputs: Vec<Option<Option<&Tensor>>> = o.inputs().iter().map(|v| v.map(konst)).collect();
    // A known value's type is its tensor's, even where the value carries no annotation.
    let types = o
        .inputs()
        .iter()
        .zip(&inputs)
        .map(|(v, k)| {
            let declared = v.and_then(|v| g.value(v).ty.as_ref()?.tensor().cloned());
            declared.or_else(|| k.flatten().map(tensor_type))
        })
        .collect();
    rules::Cx {
        view: OpView {
            desc: &o.desc,
            opset,
            inputs,
        },
        types,
        n_outputs: o.outputs().len(),
    }
}

/// The output types the rules give `op` from the graph's current types and constants, without
/// changing anything: `None` when no rule covers the op, `Some(Err)` when its inputs are
/// impossible. Folding uses it to size a result before computing it.
pub(crate) fn op_output_types(
    g: &Graph,
    op: OpId,
    opset: i64,
) -> Option<Result<Vec<Option<TensorType>>, String>> {
    if !rules::covers(&g.op(op).desc) {
        return None;
    }
    rules::infer(&make_cx(g, op, opset, &|v| g.constant(v)))
}

/// The values of `op`'s outputs when they are small integer tensors computable now: `Shape` of a
/// static shape, or an op `const_eval` handles with all inputs known.
fn propagate_values(cx: &rules::Cx<'_>, g: &Graph, op: OpId) -> Vec<Tensor> {
    let desc = cx.view.desc;
    if desc.op_type == "Shape" {
        let dims = cx
            .types
            .first()
            .and_then(Option::as_ref)
            .and_then(TensorType::static_shape)
            .or_else(|| cx.view.konst(0).map(|t| t.dims.clone()));
        let Some(dims) = dims else {
            return Vec::new();
        };
        let Ok((s, e)) = shape_range(&cx.view, dims.len()) else {
            return Vec::new();
        };
        let vals: Vec<i64> = dims[s..e].iter().map(|&d| d as i64).collect();
        return vec![Tensor::from_i64(vec![vals.len()], &vals)];
    }
    let all_known = g
        .op(op)
        .inputs()
        .iter()
        .enumerate()
        .all(|(slot, v)| v.is_none() || cx.view.konst(slot).is_some());
    if !all_known {
        return Vec::new();
    }
    crate::const_eval::eval(&cx.view, MAX_PROPAGATED_ELEMS).unwrap_or_default()
}

fn apply_overrides(
    g: &mut Graph,
    overrides: &[(String, Vec<Dim>)],
    report: &mut InferReport,
) -> Result<(), PassError> {
    let real_inputs: Vec<ValueId> = g
        .inputs()
        .iter()
        .copied()
        .filter(|&v| g.constant(v).is_none())
        .collect();
    // Symbols the overrides give two sizes (Paddle2ONNX names every unknown dim `?`): ONNX
    // Runtime does not hold one symbol to one size, so neither do we; such a symbol is not
    // substituted elsewhere, and each overridden axis keeps its own size.
    let mut conflicting: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (name, given) in overrides {
        let v = g
            .value_by_name(name)
            .filter(|v| real_inputs.contains(v))
            .ok_or_else(|| PassError::UnknownInput {
                name: name.clone(),
                inputs: real_inputs
                    .iter()
                    .map(|&v| g.value(v).name.clone())
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
        let Some(ValueType::Tensor(tt)) = &g.value(v).ty else {
            return Err(PassError::OverrideUntyped { name: name.clone() });
        };
        let mut tt = tt.clone();
        let shape = match &tt.shape {
            None => given.clone(),
            Some(declared) => {
                if declared.len() != given.len() {
                    return Err(PassError::OverrideRank {
                        name: name.clone(),
                        declared: declared.len(),
                        given: given.len(),
                    });
                }
                let mut out = declared.clone();
                for (axis, (d, n)) in declared.iter().zip(given).enumerate() {
                    let Dim::Known(n) = n else { continue };
                    match d {
                        Dim::Known(k) if k != n => {
                            return Err(PassError::OverrideConflict {
                                name: name.clone(),
                                axis,
                                declared: *k,
                                given: *n,
                            });
                        }
                        Dim::Param(p) => bind(&mut report.bindings, &mut conflicting, p, *n),
                        _ => {}
                    }
                    out[axis] = Dim::Known(*n);
                }
                out
            }
        };
        tt.shape = Some(shape);
        g.value_mut(v).ty = Some(ValueType::Tensor(tt));
    }
    for (p, sizes) in conflicting {
        report.bindings.remove(&p);
        let sizes: Vec<String> = sizes.iter().map(usize::to_string).collect();
        report.warnings.push(format!(
            "symbolic dimension `{p}` is given the sizes {}; its uses are taken as independent",
            sizes.join(" and ")
        ));
    }
    if report.bindings.is_empty() {
        return Ok(());
    }
    // ONNX gives one dim_param one value throughout the graph, so a fixed symbol is fixed
    // everywhere it is declared.
    for v in g.value_ids() {
        if let Some(ValueType::Tensor(TensorType {
            shape: Some(dims), ..
        })) = &mut g.value_mut(v).ty
        {
            for d in dims.iter_mut() {
                if let Dim::Param(p) = d {
                    if let Some(&n) = report.bindings.get(p.as_str()) {
                        *d = Dim::Known(n);
                    }
                }
            }
        }
    }
    Ok(())
}

fn bind(
    bindings: &mut BTreeMap<String, usize>,
    conflicting: &mut BTreeMap<String, Vec<usize>>,
    p: &str,
    n: usize,
) {
    match bindings.get(p) {
        Some(&m) if m != n => {
            let sizes = conflicting.entry(p.to_string()).or_insert_with(|| vec![m]);
            if !sizes.contains(&n) {
                sizes.push(n);
            }
        }
        _ => {
            bindings.insert(p.to_string(), n);
        }
    }
}

/// Writes `inferred` into `v`'s type, refining a declared type. A declared element type that
/// differs is an error (ONNX Runtime refuses such models too); a declared rank or static dim
/// that differs is a warning: the value takes the type the ops compute, and the declaration is
/// kept in [`ssc_ir::Value::declared`] for export (ONNX Runtime warns and runs such models).
fn merge(
    g: &mut Graph,
    v: ValueId,
    inferred: TensorType,
    node: &str,
    report: &mut InferReport,
) -> Result<(), PassError> {
    let val = g.value(v);
    let declared = match &val.ty {
        None => {
            g.value_mut(v).ty = Some(ValueType::Tensor(inferred));
            report.newly_typed += 1;
            return Ok(());
        }
        // Sequences, maps and other non-tensor types are outside what inference models.
        Some(ValueType::Opaque(_) | ValueType::Sequence(_) | ValueType::Optional(_)) => {
            return Ok(())
        }
        Some(ValueType::Tensor(t)) => t,
    };
    let elem = match declared.elem {
        // UNDEFINED (0) declares nothing.
        ssc_ir::DataType::Unknown(0) => inferred.elem,
        e if e == inferred.elem => e,
        _ => {
            return Err(PassError::TypeConflict {
                value: val.name.clone(),
                declared: fmt_type(declared),
                inferred: fmt_type(&inferred),
                node: node.to_string(),
            })
        }
    };
    let mut wrong = false;
    let shape = match (&declared.shape, &inferred.shape) {
        (None, s) | (s, None) => s.clone(),
        (Some(d), Some(i)) if d.len() != i.len() => {
            wrong = true;
            Some(i.clone())
        }
        (Some(d), Some(i)) => Some(
            d.iter()
                .zip(i)
                .map(|(a, b)| match (a, b) {
                    (Dim::Known(x), Dim::Known(y)) if x != y => {
                        wrong = true;
                        Dim::Known(*y)
                    }
                    (Dim::Known(x), _) | (_, Dim::Known(x)) => Dim::Known(*x),
                    (Dim::Param(p), _) | (Dim::Unknown, Dim::Param(p)) => Dim::Param(p.clone()),
                    (Dim::Unknown, Dim::Unknown) => Dim::Unknown,
                })
                .collect(),
        ),
    };
    let merged = TensorType { elem, shape };
    if wrong {
        report.warnings.push(format!(
            "value `{}`: declared type {} disagrees with the inferred {} (from node `{node}`); using the inferred type",
            val.name,
            fmt_type(declared),
            fmt_type(&inferred),
        ));
        report.declarations_overridden += 1;
        let val = g.value_mut(v);
        if val.declared.is_none() {
            val.declared = val.ty.take();
        }
        val.ty = Some(ValueType::Tensor(merged));
        return Ok(());
    }
    if &merged != declared {
        g.value_mut(v).ty = Some(ValueType::Tensor(merged));
        report.refined += 1;
    }
    Ok(())
}
