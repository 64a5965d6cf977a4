//! `ConstantOfShape` with a constant shape becomes an initializer, but only up to the size limit:
//! a light test model must not balloon from kilobytes to a 100 MB zero tensor that a runtime can
//! produce for free.
//!
//! Guard: the shape input is a constant int64 tensor with non-negative entries, the fill value
//! is a one-element tensor of a fixed-width type, and the result has at most
//! `PassOptions::fold_size_limit` bytes.
//!
//! Before: `z = ConstantOfShape[value=float[1]{0}](s)` with `s = [2,3]`; after: `z: float[2,3]`
//! of zeros.

use ssc_ir::Model;

use crate::const_eval::constant_of_shape;
use crate::util::{is_onnx_op, replace_with_constant};
use crate::{PassError, PassOptions, PassReport};

pub(crate) fn run(m: &mut Model, opts: &PassOptions, r: &mut PassReport) -> Result<(), PassError> {
    let g = &mut m.graph;
    for op in g.op_ids() {
        if !is_onnx_op(g, op, "ConstantOfShape") {
            continue;
        }
        let o = g.op(op);
        let (Some(s), Some(y)) = (o.input(0), o.output(0)) else {
            continue;
        };
        let Some(t) = g
            .constant(s)
            .and_then(|s| constant_of_shape(&o.desc, s, opts.fold_size_limit))
        else {
            continue;
        };
        replace_with_constant(g, op, y, t);
        r.add("folded_constant_of_shape", 1);
    }
    Ok(())
}
