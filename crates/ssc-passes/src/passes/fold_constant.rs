//! `Constant` ops become initializers, so every later pass sees constants in one place
//! (`Graph::constant`) whatever form the exporter chose.
//!
//! Matches: an ONNX `Constant` whose `value`, `value_float(s)`, `value_int(s)` or
//! `value_string(s)` attribute gives its tensor. Sparse values and attribute references stay.
//! The output value keeps its name (graph outputs and subgraphs refer to it) and gets the
//! tensor's exact type; below IR version 4 it is also listed as a graph input, as the spec
//! requires of every initializer.
//!
//! Before: `c = Constant[value_ints=[1,-1]]()`; after: initializer `c: int64[2] = [1,-1]`.

use ssc_ir::Model;

use crate::const_eval::constant_value;
use crate::util::{is_onnx_op, replace_with_constant};
use crate::{PassError, PassOptions, PassReport};

pub(crate) fn run(m: &mut Model, _: &PassOptions, r: &mut PassReport) -> Result<(), PassError> {
    let g = &mut m.graph;
    for op in g.op_ids() {
        if !is_onnx_op(g, op, "Constant") {
            continue;
        }
        let o = g.op(op);
        let (Some(out), 1) = (o.output(0), o.outputs().len()) else {
            continue;
        };
        if g.initializer(out).is_some() {
            continue;
        }
        let Some(t) = constant_value(&o.desc) else {
            continue;
        };
        replace_with_constant(g, op, out, t);
        r.add("folded_constant", 1);
    }
    Ok(())
}
