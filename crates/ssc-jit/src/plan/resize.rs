//! Resize / Upsample lowering: the reference's per-dim taps (`ssc_exec::resize_taps`, so both
//! engines read the attributes one way) become a native kernel when only the last two dims
//! are resized (NCHW feature maps: detector necks and FPNs).

use ssc_ir::OpId;

use super::util::{single_output, static_f32};
use super::{Cx, Kernel, Native};
use crate::kernels::resize::{Resize, Taps};

pub(super) fn lower_resize(cx: &Cx, op: OpId) -> Option<Native> {
    let g = cx.g;
    let o = g.op(op);
    let d = &o.desc;
    let x = o.input(0)?;
    let y = single_output(o)?;
    let (sx, sy) = (static_f32(g, x)?, static_f32(g, y)?);
    let r = sx.len();
    if r < 2 {
        return None;
    }
    // Scales, sizes and roi must be known now.
    let rest: Vec<Option<&ssc_ir::Tensor>> = o.inputs()[1..]
        .iter()
        .map(|v| match v {
            None => Some(None),
            Some(v) => cx.constant(*v).map(Some),
        })
        .collect::<Option<_>>()?;
    let t = ssc_exec::resize_taps(d, cx.opset, &sx, &rest).ok()?;
    if t.out != sy {
        return None;
    }
    // Taps on one input index merged (clamped borders), zero weights dropped: cubic and
    // linear on exact points become single taps.
    let merged: Vec<Vec<ssc_exec::ResizeDimTaps>> = t
        .taps
        .iter()
        .map(|dim| {
            dim.iter()
                .map(|tp| {
                    tp.as_ref().map(|tp| {
                        let mut m: Vec<(usize, f64)> = Vec::new();
                        for &(i, w) in tp {
                            match m.iter_mut().find(|e| e.0 == i) {
                                Some(e) => e.1 += w,
                                None => m.push((i, w)),
                            }
                        }
                        m.retain(|e| e.1 != 0.0);
                        m
                    })
                })
                .collect()
        })
        .collect();
    // Leading dims: each output plane reads one input plane (an identity unless a
    // coordinate transform shifts a dim of scale 1, as tf_half_pixel_for_nn can).
    let mut plane_src = vec![0usize];
    for dim in 0..r - 2 {
        let single: Vec<usize> = merged[dim]
            .iter()
            .map(|tp| match tp.as_deref() {
                Some(&[(i, 1.0)]) => Some(i),
                _ => None,
            })
            .collect::<Option<_>>()?;
        let n = sx[dim];
        plane_src = plane_src
            .iter()
            .flat_map(|&p| single.iter().map(move |&i| p * n + i))
            .collect();
    }
    let f32_taps = |v: &[ssc_exec::ResizeDimTaps]| -> Vec<Taps> {
        v.iter()
            .map(|t| {
                t.as_ref()
                    .map(|t| t.iter().map(|&(i, w)| (i, w as f32)).collect())
            })
            .collect()
    };
    let t = ssc_exec::ResizeTaps { taps: merged, ..t };
    let k = Resize::new(
        plane_src,
        (sx[r - 2], sx[r - 1]),
        f32_taps(&t.taps[r - 2]),
        f32_taps(&t.taps[r - 1]),
        t.extrapolation as f32,
    )?;
    let mode = d
        .get_string("mode")
        .ok()
        .flatten()
        .unwrap_or("nearest".into());
    Some(Native {
        what: format!(
            "resize {mode} {}x{} -> {}x{}",
            sx[r - 2],
            sx[r - 1],
            sy[r - 2],
            sy[r - 1]
        ),
        kernel: Kernel::Resize(Box::new(k)),
        inputs: vec![Some(x)],
        output: y,
        absorbed: vec![],
    })
}
