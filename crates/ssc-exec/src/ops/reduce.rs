//! Reductions (ReduceSum/Mean/Max/Min/Prod/L1/L2/SumSquare/LogSum/LogSumExp), ArgMax/ArgMin,
//! and Softmax/LogSoftmax/Hardmax with both the pre-13 "coerce to 2-D" and the single-axis
//! semantics. Sums accumulate in f64 (i128 for integers).

use crate::ctx::{Ctx, Result};
use crate::layout::{numel, strides, walk};
use crate::value::{dispatch, Array, Elem, Val};

/// The opset from which `axes` is an input rather than an attribute.
fn axes_input_from(op: &str) -> i64 {
    if op == "ReduceSum" {
        13
    } else {
        18
    }
}

/// Which dims to reduce, or `None` for the identity (`noop_with_empty_axes`).
fn reduce_axes(ctx: &Ctx, rank: usize) -> Result<Option<Vec<bool>>> {
    let axes = if ctx.opset >= axes_input_from(&ctx.desc.op_type) {
        ctx.opt_ints_input(1)?
    } else {
        ctx.ints("axes")?
    };
    let axes = axes.unwrap_or_default();
    if axes.is_empty() {
        if ctx.int("noop_with_empty_axes", 0)? != 0 {
            return Ok(None);
        }
        return Ok(Some(vec![true; rank]));
    }
    let mut mask = vec![false; rank];
    for &a in &axes {
        let a = ctx.axis(a, rank)?;
        if mask[a] {
            return Err(ctx.err(format!("axis {a} is repeated in {axes:?}")));
        }
        mask[a] = true;
    }
    Ok(Some(mask))
}

pub(crate) fn reduce(ctx: &Ctx) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    let Some(mask) = reduce_axes(ctx, x.rank())? else {
        return Ok(vec![x.clone().into()]);
    };
    let keep = ctx.int("keepdims", 1)? != 0;
    let kept: Vec<usize> = x
        .shape
        .iter()
        .zip(&mask)
        .map(|(&d, &m)| if m { 1 } else { d })
        .collect();
    let kst = strides(&kept);
    // Walk the input; each element lands at the output offset with reduced dims frozen.
    let to_out: Vec<usize> = kst
        .iter()
        .zip(&mask)
        .map(|(&s, &m)| if m { 0 } else { s })
        .collect();
    let on = numel(&kept);
    let count = (numel(&x.shape) / on.max(1)) as f64;
    let shape: Vec<usize> = if keep {
        kept.clone()
    } else {
        x.shape
            .iter()
            .zip(&mask)
            .filter(|(_, &m)| !m)
            .map(|(&d, _)| d)
            .collect()
    };
    let op = ctx.desc.op_type.as_str();
    let dt = x.dtype();
    let is_bool = dt == ssc_ir::DataType::Bool;
    if is_bool && !matches!(op, "ReduceMax" | "ReduceMin") {
        return Err(ctx.err("bool tensors reduce only with ReduceMax and ReduceMin"));
    }
    let out = dispatch!(all dt, T => {
        let xv = x.slice::<T>().expect("dtype matches");
        let v: Vec<T> = match op {
            "ReduceMax" | "ReduceMin" => {
                let max = op == "ReduceMax";
                let mut acc: Vec<Option<T>> = vec![None; on];
                walk(&x.shape, [&to_out], |k, [o]| {
                    acc[o] = Some(match acc[o] {
                        None => xv[k],
                        Some(a) => super::elementwise::pick(a, xv[k], max),
                    });
                });
                // The identity of max / min: -inf / +inf, clamped for integers; false / true.
                let empty = if is_bool {
                    T::from_i128(!max as i128)
                } else {
                    T::from_f64(if max { f64::NEG_INFINITY } else { f64::INFINITY })
                };
                acc.into_iter().map(|a| a.unwrap_or(empty)).collect()
            }
            _ if !T::IS_FLOAT && matches!(op, "ReduceSum" | "ReduceMean" | "ReduceProd" | "ReduceSumSquare" | "ReduceL1") => {
                let prod = op == "ReduceProd";
                let mut acc = vec![if prod { 1i128 } else { 0 }; on];
                walk(&x.shape, [&to_out], |k, [o]| {
                    let v = xv[k].to_i128();
                    match op {
                        "ReduceProd" => acc[o] = acc[o].wrapping_mul(v),
                        "ReduceSumSquare" => acc[o] = acc[o].wrapping_add(v.wrapping_mul(v)),
                        "ReduceL1" => acc[o] += v.abs(),
                        _ => acc[o] += v,
                    }
                });
                let div = if op == "ReduceMean" { count as i128 } else { 1 };
                acc.into_iter().map(|a| T::from_i128(if div == 0 { 0 } else { a / div })).collect()
            }
            _ => {
                let prod = op == "ReduceProd";
                let mut acc = vec![if prod { 1f64 } else { 0.0 }; on];
                let mut maxes = vec![f64::NEG_INFINITY; if op == "ReduceLogSumExp" { on } else { 0 }];
                if op == "ReduceLogSumExp" {
                    walk(&x.shape, [&to_out], |k, [o]| maxes[o] = maxes[o].max(xv[k].to_f64()));
                }
                walk(&x.shape, [&to_out], |k, [o]| {
                    let v = xv[k].to_f64();
                    match op {
                        "ReduceProd" => acc[o] *= v,
                        "ReduceSumSquare" | "ReduceL2" => acc[o] += v * v,
                        "ReduceL1" => acc[o] += v.abs(),
                        "ReduceLogSumExp" => acc[o] += (v - maxes[o]).exp(),
                        _ => acc[o] += v,
                    }
                });
                acc.into_iter().enumerate().map(|(o, a)| T::from_f64(match op {
                    "ReduceMean" => a / count,
                    "ReduceL2" => a.sqrt(),
                    "ReduceLogSum" => a.ln(),
                    "ReduceLogSumExp" if maxes[o].is_finite() => maxes[o] + a.ln(),
                    "ReduceLogSumExp" => maxes[o],
                    _ => a,
                })).collect()
            }
        };
        Array::new(shape.clone(), v)
    }, else return Err(ctx.err(format!("unsupported type {dt}"))));
    Ok(vec![out.into()])
}

/// Splits `shape` around `axis` into (outer, axis length, inner) element counts.
fn split3(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    (
        numel(&shape[..axis]),
        shape[axis],
        numel(&shape[axis + 1..]),
    )
}

/// ArgMax and ArgMin: int64 indices along `axis`, first occurrence unless
/// `select_last_index=1`; NaN counts as the extreme (numpy's rule).
#[allow(clippy::eq_op, reason = "v != v is the generic NaN test")]
pub(crate) fn arg_extreme(ctx: &Ctx) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    if x.rank() == 0 {
        return Err(ctx.err("input must have rank >= 1"));
    }
    let axis = ctx.axis(ctx.int("axis", 0)?, x.rank())?;
    let keep = ctx.int("keepdims", 1)? != 0;
    let last = ctx.int("select_last_index", 0)? != 0;
    let max = ctx.desc.op_type == "ArgMax";
    let (outer, n, inner) = split3(&x.shape, axis);
    if n == 0 {
        return Err(ctx.err("cannot take the arg-extreme of an empty axis"));
    }
    let dt = x.dtype();
    let idx: Vec<i64> = dispatch!(num dt, T => {
        let xv = x.slice::<T>().expect("dtype matches");
        let mut out = Vec::with_capacity(outer * inner);
        for o in 0..outer {
            for i in 0..inner {
                let at = |j: usize| xv[(o * n + j) * inner + i];
                let mut best = 0;
                for j in 1..n {
                    let (b, v) = (at(best), at(j));
                    let wins = if b != b {
                        last && v != v
                    } else if v != v {
                        true
                    } else if max {
                        v > b || (last && v == b)
                    } else {
                        v < b || (last && v == b)
                    };
                    if wins {
                        best = j;
                    }
                }
                out.push(best as i64);
            }
        }
        out
    }, else return Err(ctx.err(format!("unsupported type {dt}"))));
    let mut shape = x.shape.clone();
    if keep {
        shape[axis] = 1;
    } else {
        shape.remove(axis);
    }
    Ok(vec![Array::new(shape, idx).into()])
}

/// Softmax, LogSoftmax, Hardmax. Before opset 13 the input is coerced to 2-D at `axis`
/// (default 1) and normalised over the whole second dim; from 13 over `axis` alone (default -1).
pub(crate) fn softmax(ctx: &Ctx) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    let op = ctx.desc.op_type.as_str();
    let legacy = ctx.opset < 13;
    let rank = x.rank();
    let (outer, n, inner) = if rank == 0 {
        (1, 1, 1)
    } else if legacy {
        // The axis may equal the rank here: coerce to (everything, 1).
        let a = ctx.int("axis", 1)?;
        let a = if a == rank as i64 {
            rank
        } else {
            ctx.axis(a, rank)?
        };
        (numel(&x.shape[..a]), numel(&x.shape[a..]), 1)
    } else {
        split3(&x.shape, ctx.axis(ctx.int("axis", -1)?, rank)?)
    };
    let xv = x.to_f64_vec();
    if !x.dtype().is_float() {
        return Err(ctx.err(format!("expects a float tensor, not {}", x.dtype())));
    }
    let mut y = vec![0f64; xv.len()];
    for o in 0..outer {
        for i in 0..inner {
            let at = |j: usize| (o * n + j) * inner + i;
            let m = (0..n).map(|j| xv[at(j)]).fold(f64::NEG_INFINITY, f64::max);
            match op {
                "Hardmax" => {
                    if let Some(j) = (0..n).find(|&j| xv[at(j)] == m) {
                        y[at(j)] = 1.0;
                    }
                }
                _ => {
                    let s: f64 = (0..n).map(|j| (xv[at(j)] - m).exp()).sum();
                    for j in 0..n {
                        let e = xv[at(j)] - m;
                        y[at(j)] = if op == "LogSoftmax" {
                            e - s.ln()
                        } else {
                            e.exp() / s
                        };
                    }
                }
            }
        }
    }
    let out = dispatch!(float x.dtype(), T => Array::new(x.shape.clone(), y.into_iter().map(T::from_f64).collect::<Vec<T>>()),
        else unreachable!("checked float"));
    Ok(vec![out.into()])
}
