//! `Shape` of a value whose shape is fully static becomes an int64 constant, which lets the
//! shape-arithmetic folds and Reshape inference go static after `--input-shape` fixes the input.
//!
//! The static shape comes from the input's tensor type (declared or inferred) or, for a constant
//! input, from the tensor itself. Opset 15's `start`/`end` select a range of dims, clamped as
//! the spec says.
//!
//! Before: `s = Shape(x)` with `x: float[1,64,7,7]`; after: `s: int64[4] = [1,64,7,7]`.

use ssc_ir::{Model, Tensor};

use crate::args::OpView;
use crate::infer::shape_range;
use crate::util::{is_onnx_op, replace_with_constant};
use crate::{PassError, PassOptions, PassReport};

pub(crate) fn run(m: &mut Model, _: &PassOptions, r: &mut PassReport) -> Result<(), PassError> {
    let opset = m.onnx_opset();
    let g = &mut m.graph;
    for op in g.op_ids() {
        if !is_onnx_op(g, op, "Shape") {
            continue;
        }
        let o = g.op(op);
        let (Some(x), Some(y)) = (o.input(0), o.output(0)) else {
            continue;
        };
        let dims = match g.constant(x) {
            Some(t) => Some(t.dims.clone()),
            None => g
                .value(x)
                .ty
                .as_ref()
                .and_then(|t| t.tensor())
                .and_then(|t| t.static_shape()),
        };
        let Some(dims) = dims else {
            continue;
        };
        let view = OpView {
            desc: &o.desc,
            opset,
            inputs: Vec::new(),
        };
        let Ok((start, end)) = shape_range(&view, dims.len()) else {
            continue;
        };
        let vals: Vec<i64> = dims[start..end].iter().map(|&d| d as i64).collect();
        replace_with_constant(g, op, y, Tensor::from_i64(vec![vals.len()], &vals));
        r.add("folded_shape", 1);
    }
    Ok(())
}
