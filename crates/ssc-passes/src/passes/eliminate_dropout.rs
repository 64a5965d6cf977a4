//! `Dropout` in inference mode is the identity on its data output, so it is removed like an
//! `Identity` (same name-preserving rules, see `passes::bypass`).
//!
//! Guard: from opset 12 a `training_mode` input, when present, must be a constant false (a
//! constant true or a runtime-provided flag keeps the node); the `mask` output, if any, must be
//! unused. Before opset 12 Dropout is always treated as inference (the old `is_test` attribute
//! is ignored, as runtimes do for inference).
//!
//! Before: `y, mask = Dropout(x, 0.5)` with `mask` unused; after: readers of `y` read `x`.

use ssc_ir::Model;

use super::bypass;
use crate::util::{is_onnx_op, remove_if_dangling};
use crate::{PassError, PassOptions, PassReport};

pub(crate) fn run(m: &mut Model, _: &PassOptions, r: &mut PassReport) -> Result<(), PassError> {
    let opset = m.onnx_opset();
    let g = &mut m.graph;
    for op in g.op_ids() {
        if !is_onnx_op(g, op, "Dropout") {
            continue;
        }
        let o = g.op(op);
        let (Some(x), Some(y)) = (o.input(0), o.output(0)) else {
            continue;
        };
        if opset >= 12 {
            if let Some(flag) = o.input(2) {
                let off = g
                    .constant(flag)
                    .and_then(|t| t.to_i64_vec())
                    .is_some_and(|v| v == [0]);
                if !off {
                    continue;
                }
            }
        }
        let mask = o.output(1);
        if mask.is_some_and(|m| g.is_used(m)) || o.outputs().len() > 2 {
            continue;
        }
        if bypass(g, op, x, y)? {
            if let Some(mask) = mask {
                remove_if_dangling(g, mask);
            }
            r.add("removed_dropout", 1);
        }
    }
    Ok(())
}
