//! General constant folding through the reference executor (`ssc_exec::eval_node`): any op whose
//! inputs are all constant becomes constants, for what the exact folds before it do not cover
//! (float arithmetic on constants, Transpose of a weight, a Pow of a scalar...).
//!
//! The executor computes float math in f64 and rounds once, so a folded value is the correctly
//! rounded result, which a runtime would match up to its own last-ulp rounding. Guards:
//! - never ops with side effects or nondeterminism (random ops), subgraphs or sequences, nor
//!   ops outside the default domain;
//! - not the ops an exact phase owns (Constant, ConstantOfShape, Cast, CastLike, Identity,
//!   Dropout, Shape), nor integer Div: where those decline, the result is not well defined and
//!   must stay;
//! - never the quantisation ops (QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear): a
//!   `DequantizeLinear` of an int8 weight is how a QDQ model tells a runtime to run the layer
//!   in int8, and folding it would write a float weight four times the size and a float layer;
//! - the output shapes must be inferable before evaluating and fit the size limit (or be no
//!   larger than the constants they free), so an `Expand` to a huge shape is never computed;
//! - dense-arithmetic ops (Conv, MatMul, Gemm...) only on small inputs, to bound folding time.
//!
//! Before: `y = Transpose[perm=[1,0]](w)` with constant `w`; after: initializer `y`.

use ssc_ir::{Model, Tensor};

use crate::infer::op_output_types;
use crate::util::{fold_fits, make_initializer, op_alive};
use crate::{PassError, PassOptions, PassReport};

/// Ops left to the exact phases or never foldable.
const EXCLUDED: &[&str] = &[
    "Constant",
    "ConstantOfShape",
    "Cast",
    "CastLike",
    "Identity",
    "Dropout",
    "Shape",
    "RandomNormal",
    "RandomUniform",
    "RandomNormalLike",
    "RandomUniformLike",
    "Multinomial",
    "Bernoulli",
    "If",
    "Loop",
    "Scan",
    "QuantizeLinear",
    "DequantizeLinear",
    "DynamicQuantizeLinear",
];

/// Ops whose cost grows faster than their output; folded only on small inputs.
const HEAVY: &[&str] = &[
    "Conv",
    "ConvTranspose",
    "MatMul",
    "Gemm",
    "Einsum",
    "ConvInteger",
    "MatMulInteger",
    "QLinearConv",
    "QLinearMatMul",
    "LSTM",
    "GRU",
    "RNN",
];
const HEAVY_INPUT_ELEMS: usize = 1 << 16;

pub(crate) fn run(m: &mut Model, opts: &PassOptions, r: &mut PassReport) -> Result<(), PassError> {
    let opset = m.onnx_opset();
    let g = &mut m.graph;
    for op in g.topo_order()? {
        if !op_alive(g, op) {
            continue;
        }
        let o = g.op(op);
        let d = &o.desc;
        let subgraph = d.has_subgraphs();
        if !d.is_onnx()
            || EXCLUDED.contains(&d.op_type.as_str())
            || d.op_type.starts_with("Sequence")
            || subgraph
            || !o.captures().is_empty()
            || o.outputs().iter().all(Option::is_none)
            || o.inputs().iter().all(Option::is_none)
        {
            continue;
        }
        let inputs: Option<Vec<Option<&Tensor>>> = o
            .inputs()
            .iter()
            .map(|v| match v {
                None => Some(None),
                Some(v) => g.constant(*v).map(Some),
            })
            .collect();
        let Some(inputs) = inputs else {
            continue;
        };
        // Integer division of negative operands rounds differently across runtimes (C
        // truncates, numpy floors); `fold_shape_arith` folds the unambiguous cases.
        if d.op_type == "Div" && inputs.iter().flatten().any(|t| !t.dtype.is_float()) {
            continue;
        }
        let in_elems: usize = inputs.iter().flatten().map(|t| t.numel()).sum();
        if HEAVY.contains(&d.op_type.as_str()) && in_elems > HEAVY_INPUT_ELEMS {
            continue;
        }
        // Size the result before computing it.
        let Some(Ok(types)) = op_output_types(g, op, opset) else {
            continue;
        };
        let mut bytes = 0usize;
        let mut sized = true;
        for (slot, v) in o.outputs().iter().enumerate() {
            if v.is_none() {
                continue;
            }
            let b = types
                .get(slot)
                .cloned()
                .flatten()
                .and_then(|t| Some((t.elem, t.static_shape()?)))
                .and_then(|(e, s)| e.storage_bytes(ssc_ir::checked_numel(&s)?));
            match b {
                Some(b) => bytes = bytes.saturating_add(b),
                None => sized = false,
            }
        }
        if !sized || !fold_fits(g, op, bytes, opts.fold_size_limit) {
            continue;
        }
        let Ok(outs) = ssc_exec::eval_node(d, opset, &inputs, o.outputs().len()) else {
            continue;
        };
        let targets: Vec<_> = o.outputs().to_vec();
        if outs.len() != targets.len() {
            continue;
        }
        g.remove_op(op);
        for (v, t) in targets.into_iter().zip(outs) {
            if let Some(v) = v {
                make_initializer(g, v, t);
            }
        }
        r.add("folded_eval", 1);
    }
    Ok(())
}
