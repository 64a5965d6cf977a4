//! Rules for arithmetic: broadcasting elementwise ops, Gemm/MatMul, reductions and ArgMax.

use ssc_ir::{DataType, Dim, TensorType};

use super::{like0, one, rank_only, tt, Cx, Out};
use crate::args::Arg;
use crate::infer::dims::{broadcast, unify};
use crate::util::norm_axis;

/// Broadcasting binary ops. Before opset 7 these broadcast only B onto A (with `axis`), so the
/// output has A's shape.
pub(super) fn elementwise(cx: &Cx<'_>, elem: Option<DataType>) -> Out {
    let Some(elem) = elem.or(cx.elem(0)).or(cx.elem(1)) else {
        return one(None);
    };
    if cx.opset() < 7 {
        return one(Some(TensorType {
            elem,
            shape: cx.ty(0).and_then(|t| t.shape.clone()),
        }));
    }
    match (cx.shape(0), cx.shape(1)) {
        (Some(a), Some(b)) => one(tt(elem, broadcast(&[a, b])?)),
        _ => one(rank_only(elem)),
    }
}

pub(super) fn variadic(cx: &Cx<'_>) -> Out {
    let n = cx.view.inputs.len();
    let Some(elem) = (0..n).find_map(|s| cx.elem(s)) else {
        return one(None);
    };
    let shapes: Option<Vec<&[Dim]>> = (0..n)
        .filter(|&s| cx.view.present(s))
        .map(|s| cx.shape(s))
        .collect();
    match shapes {
        Some(s) if !s.is_empty() => one(tt(elem, broadcast(&s)?)),
        _ => one(rank_only(elem)),
    }
}

pub(super) fn where_(cx: &Cx<'_>) -> Out {
    let Some(elem) = cx.elem(1).or(cx.elem(2)) else {
        return one(None);
    };
    match (cx.shape(0), cx.shape(1), cx.shape(2)) {
        (Some(a), Some(b), Some(c)) => one(tt(elem, broadcast(&[a, b, c])?)),
        _ => one(rank_only(elem)),
    }
}

pub(super) fn gemm(cx: &Cx<'_>) -> Out {
    let Some(elem) = cx.elem(0).or(cx.elem(1)) else {
        return one(None);
    };
    let (Some(a), Some(b)) = (cx.shape(0), cx.shape(1)) else {
        return one(tt(elem, vec![Dim::Unknown, Dim::Unknown]));
    };
    if a.len() != 2 || b.len() != 2 {
        return Err(format!(
            "A and B must be 2-D (got ranks {} and {})",
            a.len(),
            b.len()
        ));
    }
    let ta = cx.view.int_attr("transA", 0)? != 0;
    let tb = cx.view.int_attr("transB", 0)? != 0;
    let (m, k1) = if ta { (&a[1], &a[0]) } else { (&a[0], &a[1]) };
    let (k2, n) = if tb { (&b[1], &b[0]) } else { (&b[0], &b[1]) };
    unify(k1, k2).map_err(|e| format!("inner dimensions differ: {e}"))?;
    one(tt(elem, vec![m.clone(), n.clone()]))
}

pub(super) fn matmul(cx: &Cx<'_>) -> Out {
    let Some(elem) = cx.elem(0).or(cx.elem(1)) else {
        return one(None);
    };
    let (Some(a), Some(b)) = (cx.shape(0), cx.shape(1)) else {
        return one(rank_only(elem));
    };
    if a.is_empty() || b.is_empty() {
        return Err("MatMul operands must have rank at least 1".into());
    }
    // Numpy semantics: a 1-D operand gains a unit dim that is dropped again afterwards.
    let a2: Vec<Dim> = if a.len() == 1 {
        vec![Dim::Known(1), a[0].clone()]
    } else {
        a.to_vec()
    };
    let b2: Vec<Dim> = if b.len() == 1 {
        vec![b[0].clone(), Dim::Known(1)]
    } else {
        b.to_vec()
    };
    let (ra, rb) = (a2.len(), b2.len());
    unify(&a2[ra - 1], &b2[rb - 2]).map_err(|e| format!("inner dimensions differ: {e}"))?;
    let mut out = broadcast(&[&a2[..ra - 2], &b2[..rb - 2]])?;
    if a.len() > 1 {
        out.push(a2[ra - 2].clone());
    }
    if b.len() > 1 {
        out.push(b2[rb - 1].clone());
    }
    one(tt(elem, out))
}

pub(super) fn reduce(cx: &Cx<'_>) -> Out {
    let Some(x) = cx.shape(0) else {
        return one(cx.same(0));
    };
    let keep = cx.view.int_attr("keepdims", 1)? != 0;
    let axes = cx.view.reduce_axes()?;
    let input_form = cx.opset() >= if cx.op_type() == "ReduceSum" { 13 } else { 18 };
    let noop = input_form && cx.view.int_attr("noop_with_empty_axes", 0)? != 0;
    let reduced: Vec<usize> = match axes {
        Arg::Absent if noop => return one(cx.same(0)),
        Arg::Absent => (0..x.len()).collect(),
        Arg::Known(a) => a
            .iter()
            .map(|&v| norm_axis(v, x.len()).ok_or_else(|| format!("axis {v} out of range")))
            .collect::<Result<_, _>>()?,
        Arg::Unknown => {
            return like0(cx, keep.then(|| vec![Dim::Unknown; x.len()]));
        }
    };
    let out = x
        .iter()
        .enumerate()
        .filter_map(|(i, d)| match (reduced.contains(&i), keep) {
            (false, _) => Some(d.clone()),
            (true, true) => Some(Dim::Known(1)),
            (true, false) => None,
        })
        .collect();
    like0(cx, Some(out))
}

pub(super) fn argmax(cx: &Cx<'_>) -> Out {
    let Some(x) = cx.shape(0) else {
        return one(rank_only(DataType::Int64));
    };
    let axis = cx.view.int_attr("axis", 0)?;
    let a = norm_axis(axis, x.len()).ok_or_else(|| format!("axis {axis} out of range"))?;
    let keep = cx.view.int_attr("keepdims", 1)? != 0;
    let mut out = x.to_vec();
    if keep {
        out[a] = Dim::Known(1);
    } else {
        out.remove(a);
    }
    one(tt(DataType::Int64, out))
}
