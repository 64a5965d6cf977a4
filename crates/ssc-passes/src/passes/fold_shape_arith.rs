//! Ops whose inputs are all constant and that only do integer shape arithmetic or move constant
//! data (Gather, Concat, Slice, Reshape, Squeeze, Unsqueeze, Flatten, integer Add/Sub/Mul/Div/
//! Max/Min/Neg, integer Range) become constants, so `Shape -> Gather -> Concat -> Reshape`
//! chains collapse once the shapes are static.
//!
//! Exactness comes from the evaluator in `const_eval.rs`: data movement copies bits, integer
//! arithmetic is checked and declines anything runtimes might compute differently; no float
//! arithmetic is folded here. Guard: every present input is a constant (graph inputs with
//! defaults are not) and the result fits the size limit or is no larger than the constants it
//! frees. Ops are visited in topological order so a whole chain folds in one sweep.
//!
//! Before: `d = Gather(s, 0)`, `u = Unsqueeze(d, [0])`, `t = Concat(u, [-1])` with
//! `s = [1,512,1,1]`; after: `t: int64[2] = [1,-1]`.

use ssc_ir::Model;

use crate::args::OpView;
use crate::const_eval::eval;
use crate::util::{fold_fits, is_onnx_op, replace_with_constant};
use crate::{PassError, PassOptions, PassReport};

const FOLDABLE: &[&str] = &[
    "Gather",
    "Concat",
    "Slice",
    "Reshape",
    "Squeeze",
    "Unsqueeze",
    "Flatten",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Max",
    "Min",
    "Neg",
    "Range",
];

pub(crate) fn run(m: &mut Model, opts: &PassOptions, r: &mut PassReport) -> Result<(), PassError> {
    let opset = m.onnx_opset();
    let g = &mut m.graph;
    for op in g.topo_order()? {
        if !FOLDABLE.iter().any(|t| is_onnx_op(g, op, t)) {
            continue;
        }
        let o = g.op(op);
        let (Some(y), 1) = (o.output(0), o.outputs().len()) else {
            continue;
        };
        let inputs: Option<Vec<_>> = o
            .inputs()
            .iter()
            .map(|v| match v {
                None => Some(None),
                Some(v) => g.constant(*v).map(|t| Some(Some(t))),
            })
            .collect();
        let Some(inputs) = inputs else {
            continue;
        };
        let in_elems: usize = inputs.iter().flatten().flatten().map(|t| t.numel()).sum();
        let view = OpView {
            desc: &o.desc,
            opset,
            inputs,
        };
        let Some(t) = eval(&view, in_elems.max(opts.fold_size_limit)).and_then(|mut v| v.pop())
        else {
            continue;
        };
        if !fold_fits(g, op, t.byte_len(), opts.fold_size_limit) {
            continue;
        }
        replace_with_constant(g, op, y, t);
        r.add("folded_shape_arith", 1);
    }
    Ok(())
}
