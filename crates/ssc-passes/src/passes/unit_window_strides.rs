//! A Conv axis that holds exactly one window gets stride 1: the canonical form of a stride that
//! never steps. OpenVINO 2026.4's CPU plugin computes some convs with a stride > 1 on such an
//! axis wrongly (`docs/openvino_conv_quirks.py`); with stride 1 it computes them right.
//!
//! Guard: a `Conv` in the default domain with explicit padding (`auto_pad` absent or
//! `NOTSET`), the input's spatial extents known, the weight's rank known, and on some axis a
//! stride `s > 1` with `0 <= r < s`, where `r = L + pad_begin + pad_end - dilation * (k - 1) - 1`
//! is what the padded input holds beyond the first dilated window: the output has one position
//! on that axis, reading padded positions `0, d, .., d (k - 1)`. The `r` positions after them
//! are never read; when the end pad covers them (`pad_end >= r`) it shrinks by `r`, after which
//! the padded input is exactly one window long, and the stride becomes 1. Both keep every read
//! position and the output length (1), so the result is bit-identical.
//!
//! Before: `Conv(x[1, 1, 4, 3], W[10, 1, 2, 3], strides = [1, 2])` (output `[1, 10, 3, 1]`);
//! after: the same with `strides = [1, 1]`. Before: `Conv(x[.., 2], W[.., 7], pads = [3, 3],
//! strides = [3])` (`r = 1`); after: `pads = [3, 2]`, `strides = [1]`.

use ssc_ir::{Attribute, Dim, Graph, Model, OpId};

use crate::util::is_onnx_op;
use crate::{PassError, PassOptions, PassReport};

pub(crate) fn run(m: &mut Model, _: &PassOptions, r: &mut PassReport) -> Result<(), PassError> {
    let g = &mut m.graph;
    for op in g.op_ids() {
        if !is_onnx_op(g, op, "Conv") {
            continue;
        }
        if let Some((strides, pads)) = unit_window_strides(g, op) {
            g.desc_mut(op).set_attr(Attribute::ints("strides", strides));
            g.desc_mut(op).set_attr(Attribute::ints("pads", pads));
            r.add("unit_window_strides", 1);
        }
    }
    Ok(())
}

/// The conv's strides and pads with every one-window axis at stride 1 (its unread end pad
/// trimmed), when that changes some stride.
fn unit_window_strides(g: &Graph, op: OpId) -> Option<(Vec<i64>, Vec<i64>)> {
    let o = g.op(op);
    let d = &o.desc;
    let auto_pad = d.get_string("auto_pad").ok()?.unwrap_or_default();
    if !(auto_pad.is_empty() || auto_pad == "NOTSET") {
        return None;
    }
    let x = g.value(o.input(0)?).ty.as_ref()?.tensor()?.shape.clone()?;
    let wv = o.input(1)?;
    let w: Vec<Dim> = match g.constant(wv) {
        Some(t) => t.dims.iter().map(|&d| Dim::Known(d)).collect(),
        None => g.value(wv).ty.as_ref()?.tensor()?.shape.clone()?,
    };
    let n = w
        .len()
        .checked_sub(2)
        .filter(|&n| n > 0 && x.len() == n + 2)?;
    let ints = |name: &str, default: i64, len: usize| -> Option<Vec<i64>> {
        match d.get_ints(name).ok()? {
            Some(v) if v.len() == len => Some(v.to_vec()),
            Some(_) => None,
            None => Some(vec![default; len]),
        }
    };
    let mut strides = ints("strides", 1, n)?;
    let dilations = ints("dilations", 1, n)?;
    let mut pads = ints("pads", 0, 2 * n)?;
    let kernel: Vec<i64> = match d.get_ints("kernel_shape").ok()? {
        Some(k) if k.len() == n => k.to_vec(),
        Some(_) => return None,
        None => w[2..]
            .iter()
            .map(|k| k.known().map(|k| k as i64))
            .collect::<Option<_>>()?,
    };
    let mut changed = false;
    for i in 0..n {
        let Some(l) = x[2 + i].known() else {
            continue;
        };
        let rest = l as i64 + pads[i] + pads[n + i] - dilations[i] * (kernel[i] - 1) - 1;
        if strides[i] > 1 && (0..strides[i]).contains(&rest) && pads[n + i] >= rest {
            pads[n + i] -= rest;
            strides[i] = 1;
            changed = true;
        }
    }
    changed.then_some((strides, pads))
}
