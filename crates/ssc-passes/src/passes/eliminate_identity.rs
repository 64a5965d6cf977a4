//! `Identity` ops are removed: they only rename a value, and every later pattern match would
//! otherwise have to look through them.
//!
//! Guard (see `passes::bypass`): the output is not read by a subgraph; if the output is a graph
//! output, its name survives by making the input's producer write it directly, which needs the
//! input to be an ordinary intermediate (otherwise the Identity stays: it is what gives a graph
//! input or an initializer a second, output name).
//!
//! Before: `y = Relu(x); z = Identity(y); out = Add(z, z)`; after: `y = Relu(x); out = Add(y, y)`.

use ssc_ir::Model;

use super::bypass;
use crate::util::is_onnx_op;
use crate::{PassError, PassOptions, PassReport};

pub(crate) fn run(m: &mut Model, _: &PassOptions, r: &mut PassReport) -> Result<(), PassError> {
    let g = &mut m.graph;
    for op in g.op_ids() {
        if !is_onnx_op(g, op, "Identity") {
            continue;
        }
        let o = g.op(op);
        let (Some(x), Some(y)) = (o.input(0), o.output(0)) else {
            continue;
        };
        if bypass(g, op, x, y)? {
            r.add("removed_identity", 1);
        }
    }
    Ok(())
}
