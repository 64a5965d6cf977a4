//! Normalisation and reduction lowering: LayerNormalization, Softmax, ReduceMean/ReduceSum
//! over a contiguous block of axes.

use ssc_ir::{DataType, OpId};

use super::util::{single_output, static_f32};
use super::{Cx, Kernel, Native};
use crate::kernels::norm::Axes;

fn norm_axis(axis: i64, rank: usize) -> Option<usize> {
    let a = if axis < 0 { axis + rank as i64 } else { axis };
    (0..=rank as i64).contains(&a).then_some(a as usize)
}

/// LayerNormalization over axes `axis..` with constant scale (and bias), without the optional
/// Mean / InvStdDev outputs.
pub(super) fn lower_layer_norm(cx: &Cx, op: OpId) -> Option<Native> {
    let g = cx.g;
    let o = g.op(op);
    let d = &o.desc;
    let x = o.input(0)?;
    let y = single_output(o)?;
    let s = static_f32(g, x)?;
    if static_f32(g, y)? != s || s.is_empty() {
        return None;
    }
    let axis = norm_axis(d.get_int("axis").ok()?.unwrap_or(-1), s.len())?;
    if axis >= s.len() {
        return None;
    }
    let eps = d.get_float("epsilon").ok()?.unwrap_or(1e-5);
    let n: usize = s[axis..].iter().product();
    let param = |slot: usize| -> Option<Option<Vec<f32>>> {
        match o.input(slot) {
            None => Some(None),
            Some(v) => {
                let t = cx.constant(v)?;
                (t.dtype == DataType::Float && t.numel() == n).then(|| t.to_f32_vec().map(Some))?
            }
        }
    };
    let scale = param(1)??;
    let bias = param(2)?;
    let ax = Axes::of(&s, axis, s.len());
    Some(Native {
        what: format!("layernorm ({} x {})", ax.outer, ax.n),
        kernel: Kernel::LayerNorm {
            ax,
            scale,
            bias,
            eps,
        },
        inputs: vec![Some(x)],
        output: y,
        absorbed: vec![],
    })
}

/// Softmax on one axis (opset 13+), or over the flattened axes `axis..` (older opsets).
pub(super) fn lower_softmax(cx: &Cx, op: OpId) -> Option<Native> {
    let g = cx.g;
    let o = g.op(op);
    let d = &o.desc;
    let x = o.input(0)?;
    let y = single_output(o)?;
    let s = static_f32(g, x)?;
    if static_f32(g, y)? != s || s.is_empty() {
        return None;
    }
    let ax = if cx.opset >= 13 {
        let a = norm_axis(d.get_int("axis").ok()?.unwrap_or(-1), s.len())?;
        if a >= s.len() {
            return None;
        }
        Axes::of(&s, a, a + 1)
    } else {
        let a = norm_axis(d.get_int("axis").ok()?.unwrap_or(1), s.len())?;
        Axes::of(&s, a, s.len())
    };
    Some(Native {
        what: format!("softmax ({} x {} x {})", ax.outer, ax.n, ax.inner),
        kernel: Kernel::Softmax(ax),
        inputs: vec![Some(x)],
        output: y,
        absorbed: vec![],
    })
}

/// ReduceMean / ReduceSum over a contiguous block of axes (attribute or, from opset 18,
/// constant input), any keepdims.
pub(super) fn lower_reduce(cx: &Cx, op: OpId) -> Option<Native> {
    let g = cx.g;
    let o = g.op(op);
    let d = &o.desc;
    let x = o.input(0)?;
    let y = single_output(o)?;
    let s = static_f32(g, x)?;
    let ys = static_f32(g, y)?;
    let axes_input = cx.opset >= 18 || (d.op_type == "ReduceSum" && cx.opset >= 13);
    let mut axes: Vec<i64> = if axes_input {
        match o.input(1) {
            Some(v) => cx.constant(v)?.to_i64_vec()?,
            None => Vec::new(),
        }
    } else {
        d.get_ints("axes")
            .ok()?
            .map(|a| a.to_vec())
            .unwrap_or_default()
    };
    if axes.is_empty() {
        if d.get_int("noop_with_empty_axes").ok()?.unwrap_or(0) != 0 {
            return None;
        }
        axes = (0..s.len() as i64).collect();
    }
    let mut ax: Vec<usize> = axes
        .iter()
        .map(|&a| norm_axis(a, s.len()).filter(|&a| a < s.len()))
        .collect::<Option<_>>()?;
    ax.sort_unstable();
    ax.dedup();
    let (a, b) = (ax[0], ax[ax.len() - 1] + 1);
    if b - a != ax.len() {
        return None;
    }
    let split = Axes::of(&s, a, b);
    if ys.iter().product::<usize>() != split.outer * split.inner {
        return None;
    }
    let scale = if d.op_type == "ReduceMean" {
        1.0 / split.n as f32
    } else {
        1.0
    };
    Some(Native {
        what: format!(
            "{} ({} x {} x {})",
            d.op_type, split.outer, split.n, split.inner
        ),
        kernel: Kernel::Reduce { ax: split, scale },
        inputs: vec![Some(x)],
        output: y,
        absorbed: vec![],
    })
}
