//! Data-movement lowering: Gather with constant indices, reshape-likes, Concat.

use ssc_ir::OpId;

use super::util::{single_output, static_f32};
use super::{Cx, Kernel, Native};

/// Gather with constant indices along one axis.
pub(super) fn lower_gather(cx: &Cx, op: OpId) -> Option<Native> {
    let g = cx.g;
    let o = g.op(op);
    let d = &o.desc;
    let x = o.input(0)?;
    let y = single_output(o)?;
    let sx = static_f32(g, x)?;
    static_f32(g, y)?;
    let it = g.constant(o.input(1)?)?;
    let raw = it.to_i64_vec()?;
    let rank = sx.len() as i64;
    let axis = d.get_int("axis").ok()?.unwrap_or(0);
    let axis = if axis < 0 { axis + rank } else { axis };
    if !(0..rank).contains(&axis) {
        return None;
    }
    let axis = axis as usize;
    let n = sx[axis] as i64;
    let idx: Vec<usize> = raw
        .iter()
        .map(|&i| {
            let i = if i < 0 { i + n } else { i };
            (0..n).contains(&i).then_some(i as usize)
        })
        .collect::<Option<_>>()?;
    Some(Native {
        what: format!("gather axis {axis}"),
        kernel: Kernel::Gather {
            idx,
            axis_len: sx[axis],
            inner: sx[axis + 1..].iter().product(),
        },
        inputs: vec![Some(x)],
        output: y,
        absorbed: vec![],
    })
}

/// Reshape-likes: the output is the input's elements unchanged.
pub(super) fn lower_copy(cx: &Cx, op: OpId) -> Option<Native> {
    let g = cx.g;
    let o = g.op(op);
    let d = &o.desc;
    let x = o.input(0)?;
    let y = single_output(o)?;
    let (sx, sy) = (static_f32(g, x)?, static_f32(g, y)?);
    if sx.iter().product::<usize>() != sy.iter().product::<usize>() {
        return None;
    }
    // Dropout in inference mode only (no training_mode input, no mask output).
    if d.op_type == "Dropout" && o.inputs().len() > 2 {
        return None;
    }
    Some(Native {
        what: "copy".into(),
        kernel: Kernel::Copy,
        inputs: vec![Some(x)],
        output: y,
        absorbed: vec![],
    })
}

/// Concat of static-shape inputs.
pub(super) fn lower_concat(cx: &Cx, op: OpId) -> Option<Native> {
    let g = cx.g;
    let o = g.op(op);
    let d = &o.desc;
    let y = single_output(o)?;
    let sy = static_f32(g, y)?;
    let rank = sy.len() as i64;
    let axis = d.get_int("axis").ok()??;
    let axis = if axis < 0 { axis + rank } else { axis };
    if !(0..rank).contains(&axis) {
        return None;
    }
    let axis = axis as usize;
    let outer: usize = sy[..axis].iter().product();
    let inner: usize = sy[axis + 1..].iter().product();
    let mut blocks = Vec::new();
    let mut ins = Vec::new();
    for v in o.inputs() {
        let v = (*v)?;
        let s = static_f32(g, v)?;
        if s.len() != sy.len() {
            return None;
        }
        blocks.push(s[axis] * inner);
        ins.push(Some(v));
    }
    if blocks.iter().sum::<usize>() * outer != sy.iter().product::<usize>() {
        return None;
    }
    Some(Native {
        what: "concat".into(),
        kernel: Kernel::Concat { outer, blocks },
        inputs: ins,
        output: y,
        absorbed: vec![],
    })
}
