//! `Cast` of a constant becomes the cast constant, computed with exact ONNX semantics (see
//! `cast.rs`), so downstream folds (BN, shape arithmetic) see plain constants.
//!
//! Guard: the input is a constant (not a graph input with a default), the conversion is well
//! defined (`cast_tensor` declines NaN/out-of-range float-to-int and conversions runtimes round
//! differently), and the result fits the size limit or is no larger than the constant it frees.
//!
//! Before: `y = Cast[to=INT64](w)` with `w: float[2] = [1.9, -1.9]`; after: `y: int64[2] = [1, -1]`.

use ssc_ir::Model;

use crate::cast::{cast_target, cast_tensor};
use crate::util::{fold_fits, is_onnx_op, replace_with_constant};
use crate::{PassError, PassOptions, PassReport};

pub(crate) fn run(m: &mut Model, opts: &PassOptions, r: &mut PassReport) -> Result<(), PassError> {
    let g = &mut m.graph;
    for op in g.topo_order()? {
        if !is_onnx_op(g, op, "Cast") {
            continue;
        }
        let o = g.op(op);
        let (Some(x), Some(y)) = (o.input(0), o.output(0)) else {
            continue;
        };
        let Some(to) = cast_target(&o.desc) else {
            continue;
        };
        let Some(t) = g.constant(x).and_then(|t| cast_tensor(t, to)) else {
            continue;
        };
        if !fold_fits(g, op, t.byte_len(), opts.fold_size_limit) {
            continue;
        }
        replace_with_constant(g, op, y, t);
        r.add("folded_cast", 1);
    }
    Ok(())
}
