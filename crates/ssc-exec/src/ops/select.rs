//! Selection ops of detection post-processing: TopK and NonMaxSuppression.
//!
//! TopK orders ties by index (the lower index first, for largest and smallest alike) and NaN
//! above every number, as numpy's sort does (the ONNX reference sorts with it). Its output is
//! always sorted, which `sorted=0` permits.
//!
//! NonMaxSuppression follows the ONNX reference and onnxruntime step by step: per batch and
//! class, boxes scoring strictly above `score_threshold` are taken in descending score (ties:
//! the lower box index first), and a box is dropped when its IoU with an already selected box
//! is strictly above `iou_threshold`. Box arithmetic is f32, as both compute it, so a box on a
//! threshold decides the same way.

use std::cmp::Ordering;

use ssc_ir::DataType;

use crate::ctx::{Ctx, Result};
use crate::layout::numel;
use crate::value::{Array, Val};

/// Ascending order with NaN above every number.
fn cmp_nan_last(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => a.partial_cmp(&b).expect("no NaN"),
    }
}

/// TopK: `k` is an attribute before opset 10 and a one-element input from it; `largest` and
/// `sorted` exist from opset 11.
pub(crate) fn top_k(ctx: &Ctx) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    let k = if ctx.opset < 10 {
        ctx.int("k", -1)?
    } else {
        match ctx.opt_ints_input(1)? {
            Some(v) if v.len() == 1 => v[0],
            _ => return Err(ctx.err("K must be one integer")),
        }
    };
    if x.rank() == 0 {
        return Err(ctx.err("input must have rank >= 1"));
    }
    let axis = ctx.axis(ctx.int("axis", -1)?, x.rank())?;
    let n = x.shape[axis];
    let k = usize::try_from(k).ok().filter(|&k| k <= n).ok_or_else(|| {
        ctx.err(format!(
            "k {k} is outside [0, {n}] (axis {axis} of {:?})",
            x.shape
        ))
    })?;
    let largest = ctx.int("largest", 1)? != 0;
    if x.dtype() == DataType::Bool {
        return Err(ctx.err("not defined for bool"));
    }
    let xs = x.to_f64_vec();
    // Integers beyond 2^53 would tie in f64: order them exactly.
    let exact = x.to_i64_vec();
    let outer = numel(&x.shape[..axis]);
    let inner = numel(&x.shape[axis + 1..]);
    let mut shape = x.shape.clone();
    shape[axis] = k;
    let mut take = Vec::with_capacity(outer * k * inner);
    let mut order: Vec<usize> = Vec::with_capacity(n);
    let mut picked = vec![0usize; outer * k * inner];
    for o in 0..outer {
        for j in 0..inner {
            let at = |i: usize| (o * n + i) * inner + j;
            order.clear();
            order.extend(0..n);
            order.sort_by(|&a, &b| {
                let c = match &exact {
                    Some(v) => v[at(a)].cmp(&v[at(b)]),
                    None => cmp_nan_last(xs[at(a)], xs[at(b)]),
                };
                let c = if largest { c.reverse() } else { c };
                c.then(a.cmp(&b))
            });
            for (r, &i) in order[..k].iter().enumerate() {
                picked[(o * k + r) * inner + j] = i;
            }
        }
    }
    for (e, &i) in picked.iter().enumerate() {
        let (o, j) = (e / (k * inner), e % inner);
        take.push((o * n + i) * inner + j);
    }
    let values = x.take(shape.clone(), &take, None);
    let indices = Array::new(shape, picked.iter().map(|&i| i as i64).collect());
    Ok(vec![values.into(), indices.into()])
}

/// One box as `(x_min, y_min, x_max, y_max)` in f32.
fn corners(b: &[f32], center: bool) -> [f32; 4] {
    if center {
        let (hw, hh) = (b[2] / 2.0, b[3] / 2.0);
        [b[0] - hw, b[1] - hh, b[0] + hw, b[1] + hh]
    } else {
        // [y1, x1, y2, x2], either corner first.
        [
            b[1].min(b[3]),
            b[0].min(b[2]),
            b[1].max(b[3]),
            b[0].max(b[2]),
        ]
    }
}

/// Whether `a` and `b` overlap by an IoU above `threshold` (f32 throughout).
fn suppresses(a: [f32; 4], b: [f32; 4], threshold: f32) -> bool {
    let (ix0, ix1) = (a[0].max(b[0]), a[2].min(b[2]));
    let (iy0, iy1) = (a[1].max(b[1]), a[3].min(b[3]));
    if ix1 <= ix0 || iy1 <= iy0 {
        return false;
    }
    let inter = (ix1 - ix0) * (iy1 - iy0);
    let area_a = (a[2] - a[0]) * (a[3] - a[1]);
    let area_b = (b[2] - b[0]) * (b[3] - b[1]);
    let union = area_a + area_b - inter;
    if inter <= 0.0 || area_a <= 0.0 || area_b <= 0.0 || union <= 0.0 {
        return false;
    }
    inter / union > threshold
}

/// NonMaxSuppression: `selected_indices [n, 3]` of `(batch, class, box)`.
pub(crate) fn non_max_suppression(ctx: &Ctx) -> Result<Vec<Val>> {
    let boxes = ctx.input(0)?;
    let scores = ctx.input(1)?;
    let f32s = |a: &Array, what: &str| -> Result<Vec<f32>> {
        a.slice::<f32>()
            .map(<[f32]>::to_vec)
            .ok_or_else(|| ctx.err(format!("{what} must be float, not {}", a.dtype())))
    };
    let (bv, sv) = (f32s(boxes, "boxes")?, f32s(scores, "scores")?);
    if boxes.rank() != 3 || boxes.shape[2] != 4 || scores.rank() != 3 {
        return Err(ctx.err(format!(
            "boxes {:?} must be [batches, boxes, 4] and scores {:?} [batches, classes, boxes]",
            boxes.shape, scores.shape
        )));
    }
    let (batches, nb) = (boxes.shape[0], boxes.shape[1]);
    let classes = scores.shape[1];
    if scores.shape[0] != batches || scores.shape[2] != nb {
        return Err(ctx.err(format!(
            "boxes {:?} and scores {:?} disagree on batches or boxes",
            boxes.shape, scores.shape
        )));
    }
    // Empty optional inputs count as absent.
    let scalar = |i: usize| -> Result<Option<f64>> {
        match ctx.opt_input(i)? {
            Some(a) if a.len() == 0 => Ok(None),
            Some(a) if a.len() == 1 => Ok(Some(a.to_f64_vec()[0])),
            Some(a) => Err(ctx.err(format!("input {i} {:?} must hold one value", a.shape))),
            None => Ok(None),
        }
    };
    let max_out = scalar(2)?.map_or(0, |v| v.max(0.0) as usize);
    let iou = scalar(3)?.unwrap_or(0.0) as f32;
    let score_min = scalar(4)?.map(|v| v as f32);
    let center = match ctx.int("center_point_box", 0)? {
        0 => false,
        1 => true,
        c => return Err(ctx.err(format!("center_point_box must be 0 or 1, not {c}"))),
    };
    let mut out: Vec<i64> = Vec::new();
    let mut cand: Vec<usize> = Vec::with_capacity(nb);
    let mut kept: Vec<[f32; 4]> = Vec::new();
    for b in 0..batches {
        let bb = &bv[b * nb * 4..(b + 1) * nb * 4];
        for c in 0..classes {
            let sc = &sv[(b * classes + c) * nb..(b * classes + c + 1) * nb];
            cand.clear();
            cand.extend((0..nb).filter(|&i| score_min.is_none_or(|t| sc[i] > t)));
            // Descending score, ties by ascending index (NaN scores last).
            cand.sort_by(|&x, &y| {
                let (a, b) = (sc[x], sc[y]);
                let by_score = match (a.is_nan(), b.is_nan()) {
                    (true, true) => Ordering::Equal,
                    (true, false) => Ordering::Greater,
                    (false, true) => Ordering::Less,
                    _ => b.partial_cmp(&a).expect("no NaN"),
                };
                by_score.then(x.cmp(&y))
            });
            kept.clear();
            for &i in &cand {
                if kept.len() >= max_out {
                    break;
                }
                let bx = corners(&bb[i * 4..i * 4 + 4], center);
                if kept.iter().all(|&k| !suppresses(bx, k, iou)) {
                    kept.push(bx);
                    out.extend([b as i64, c as i64, i as i64]);
                }
            }
        }
    }
    let n = out.len() / 3;
    Ok(vec![Array::new(vec![n, 3], out).into()])
}
