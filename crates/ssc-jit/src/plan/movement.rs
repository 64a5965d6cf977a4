//! Data-movement lowering: Gather with constant indices, reshape-likes, Concat, Transpose,
//! Slice and Split (the last three as strided gathers).

use ssc_ir::OpId;

use super::util::{single_output, static_f32, to_usize};
use super::{Cx, Kernel, Native};
use crate::kernels::strided::Strided;

/// Gather with constant indices along one axis.
pub(super) fn lower_gather(cx: &Cx, op: OpId) -> Option<Native> {
    let g = cx.g;
    let o = g.op(op);
    let d = &o.desc;
    let x = o.input(0)?;
    let y = single_output(o)?;
    let sx = static_f32(g, x)?;
    static_f32(g, y)?;
    let it = cx.constant(o.input(1)?)?;
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
        kernel: Kernel::Concat {
            outer,
            in_place: vec![false; blocks.len()],
            blocks,
        },
        inputs: ins,
        output: y,
        absorbed: vec![],
    })
}

/// Transpose of a static tensor (a strided gather; NCHW <-> NHWC and channel shuffles are its
/// 2-D-tile and row-copy forms).
pub(super) fn lower_transpose(cx: &Cx, op: OpId) -> Option<Native> {
    let g = cx.g;
    let o = g.op(op);
    let x = o.input(0)?;
    let y = single_output(o)?;
    let s = static_f32(g, x)?;
    let perm: Vec<usize> = match o.desc.get_ints("perm").ok()? {
        Some(p) => to_usize(p)?,
        None => (0..s.len()).rev().collect(),
    };
    let mut seen = vec![false; s.len()];
    if perm.len() != s.len()
        || perm
            .iter()
            .any(|&p| p >= s.len() || std::mem::replace(&mut seen[p], true))
    {
        return None;
    }
    let want: Vec<usize> = perm.iter().map(|&p| s[p]).collect();
    if static_f32(g, y)? != want {
        return None;
    }
    let k = Strided::transpose(&s, &perm);
    Some(Native {
        what: format!("transpose {perm:?} ({})", k.describe()),
        kernel: Kernel::Strided(k),
        inputs: vec![Some(x)],
        output: y,
        absorbed: vec![],
    })
}

/// Slice with constant starts/ends/axes/steps (inputs from opset 10, attributes before).
pub(super) fn lower_slice(cx: &Cx, op: OpId) -> Option<Native> {
    let g = cx.g;
    let o = g.op(op);
    let d = &o.desc;
    let x = o.input(0)?;
    let y = single_output(o)?;
    let s = static_f32(g, x)?;
    let r = s.len();
    let konst = |slot: usize| -> Option<Option<Vec<i64>>> {
        match o.input(slot) {
            None => Some(None),
            Some(v) => Some(Some(cx.constant(v)?.to_i64_vec()?)),
        }
    };
    let (starts, ends, axes, steps) = if cx.opset >= 10 {
        (konst(1)??, konst(2)??, konst(3)?, konst(4)?)
    } else {
        (
            d.get_ints("starts").ok()??.to_vec(),
            d.get_ints("ends").ok()??.to_vec(),
            d.get_ints("axes").ok()?.map(|a| a.to_vec()),
            None,
        )
    };
    let axes = axes.unwrap_or_else(|| (0..starts.len() as i64).collect());
    let steps = steps.unwrap_or_else(|| vec![1; starts.len()]);
    if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
        return None;
    }
    let mut start = vec![0usize; r];
    let mut n = s.clone();
    let mut step = vec![1isize; r];
    let mut done = vec![false; r];
    for i in 0..starts.len() {
        let a = if axes[i] < 0 {
            axes[i] + r as i64
        } else {
            axes[i]
        };
        if !(0..r as i64).contains(&a) || steps[i] == 0 {
            return None;
        }
        let a = a as usize;
        if std::mem::replace(&mut done[a], true) {
            return None;
        }
        let dim = s[a] as i64;
        let st = steps[i];
        // ONNX's clamping: negative indices count from the end; starts clamp to [0, dim] (or
        // [0, dim - 1] stepping backwards), ends to [0, dim] (or [-1, dim - 1]).
        let fix = |v: i64| if v < 0 { v.saturating_add(dim) } else { v };
        let (b, e) = if st > 0 {
            (fix(starts[i]).clamp(0, dim), fix(ends[i]).clamp(0, dim))
        } else {
            (
                fix(starts[i]).clamp(0, dim - 1),
                fix(ends[i]).clamp(-1, dim - 1),
            )
        };
        let count = if st > 0 {
            ((e - b).max(0) + st - 1) / st
        } else {
            ((b - e).max(0) + (-st) - 1) / (-st)
        };
        start[a] = usize::try_from(b.max(0)).ok()?;
        n[a] = usize::try_from(count).ok()?;
        step[a] = isize::try_from(st).ok()?;
    }
    if static_f32(g, y)? != n {
        return None;
    }
    let k = Strided::slice(&s, &start, &n, &step);
    Some(Native {
        what: format!("slice ({})", k.describe()),
        kernel: Kernel::Strided(k),
        inputs: vec![Some(x)],
        output: y,
        absorbed: vec![],
    })
}

/// Split along one axis; each output's extent comes from its inferred static shape (which
/// covers every opset's `split` attribute / input / `num_outputs` form).
pub(super) fn lower_split(cx: &Cx, op: OpId) -> Option<Native> {
    let g = cx.g;
    let o = g.op(op);
    let x = o.input(0)?;
    let s = static_f32(g, x)?;
    let r = s.len() as i64;
    let axis = o.desc.get_int("axis").ok()?.unwrap_or(0);
    let axis = if axis < 0 { axis + r } else { axis };
    if !(0..r).contains(&axis) {
        return None;
    }
    let axis = axis as usize;
    let mut parts = Vec::new();
    let mut at = 0usize;
    let mut first = None;
    for v in o.outputs() {
        let v = (*v)?;
        first.get_or_insert(v);
        let ys = static_f32(g, v)?;
        if ys.len() != s.len() || (0..s.len()).any(|k| k != axis && ys[k] != s[k]) {
            return None;
        }
        let mut start = vec![0usize; s.len()];
        start[axis] = at;
        parts.push(Strided::slice(&s, &start, &ys, &vec![1; s.len()]));
        at += ys[axis];
    }
    if at != s[axis] || parts.is_empty() {
        return None;
    }
    Some(Native {
        what: format!("split axis {axis} into {}", parts.len()),
        kernel: Kernel::Split(parts),
        inputs: vec![Some(x)],
        output: first?,
        absorbed: vec![],
    })
}
