//! Normalisations and reductions over one axis block: LayerNormalization, Softmax and
//! ReduceMean/ReduceSum as `outer x n x inner` loops. With `inner == 1` (the reduced axes are
//! the last ones) each of `outer` rows is reduced with vector sums along it; with `inner > 1`
//! (channels of NCHW, say) the reduction runs down the `n` rows of each `inner`-wide plane with
//! vectors across it, so no transpose is ever needed.

use crate::kernels::eltwise::exp_nonpositive;
use crate::kernels::par::{for_ranges, SendPtr};

/// `outer x n x inner` with the reduction over `n`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Axes {
    pub outer: usize,
    pub n: usize,
    pub inner: usize,
}

impl Axes {
    /// The split of `shape` that reduces axes `a..b` (a contiguous block).
    pub(crate) fn of(shape: &[usize], a: usize, b: usize) -> Axes {
        Axes {
            outer: shape[..a].iter().product(),
            n: shape[a..b].iter().product(),
            inner: shape[b..].iter().product(),
        }
    }

    fn len(&self) -> usize {
        self.outer * self.n * self.inner
    }
}

/// Columns of a plane handled per task when `inner > 1`.
const COLS: usize = 256;

/// LayerNormalization: `y = (x - mean) / sqrt(var + eps) * scale + bias` over each `n`-block,
/// `scale`/`bias` indexed by the position in the block (`n * inner` values when the normalised
/// block spans `inner` too: then `n` here is the whole block and `inner` is 1). Mean and
/// variance in f32 with two passes (the variance from the centred values, so no cancellation).
pub(crate) fn layer_norm(
    ax: Axes,
    x: &[f32],
    y: &mut [f32],
    scale: &[f32],
    bias: Option<&[f32]>,
    eps: f32,
) {
    assert!(x.len() == ax.len() && y.len() == ax.len());
    let Axes { outer, n, inner } = ax;
    let yp = SendPtr(y.as_mut_ptr());
    if inner == 1 {
        assert!(scale.len() == n && bias.is_none_or(|b| b.len() == n));
        for_ranges(
            outer,
            (2048 / n.max(1)).max(1),
            #[inline(always)]
            |b0, b1| {
                for r in b0..b1 {
                    let row = &x[r * n..(r + 1) * n];
                    let mean = sum(row) / n as f32;
                    let var = row.iter().map(|&v| (v - mean) * (v - mean)).sum::<f32>() / n as f32;
                    let rstd = 1.0 / (var + eps).sqrt();
                    // SAFETY: tasks own disjoint rows.
                    let out = unsafe { std::slice::from_raw_parts_mut(yp.get().add(r * n), n) };
                    match bias {
                        Some(bv) => {
                            for (((o, &v), &s), &b) in out.iter_mut().zip(row).zip(scale).zip(bv) {
                                *o = (v - mean) * rstd * s + b;
                            }
                        }
                        None => {
                            for ((o, &v), &s) in out.iter_mut().zip(row).zip(scale) {
                                *o = (v - mean) * rstd * s;
                            }
                        }
                    }
                }
            },
        );
        return;
    }
    // Down the planes: statistics for COLS columns at a time.
    assert!(scale.len() == n && bias.is_none_or(|b| b.len() == n));
    let blocks = inner.div_ceil(COLS);
    for_ranges(
        outer * blocks,
        1,
        #[inline(always)]
        |t0, t1| {
            let mut mean = [0f32; COLS];
            let mut var = [0f32; COLS];
            for t in t0..t1 {
                let (o, c0) = (t / blocks, (t % blocks) * COLS);
                let w = COLS.min(inner - c0);
                let base = o * n * inner + c0;
                let (m, v) = (&mut mean[..w], &mut var[..w]);
                m.fill(0.0);
                v.fill(0.0);
                for k in 0..n {
                    for (a, &xv) in m.iter_mut().zip(&x[base + k * inner..base + k * inner + w]) {
                        *a += xv;
                    }
                }
                let inv_n = 1.0 / n as f32;
                for a in m.iter_mut() {
                    *a *= inv_n;
                }
                for k in 0..n {
                    let row = &x[base + k * inner..base + k * inner + w];
                    for ((a, &mu), &xv) in v.iter_mut().zip(m.iter()).zip(row) {
                        *a += (xv - mu) * (xv - mu);
                    }
                }
                for a in v.iter_mut() {
                    *a = 1.0 / (*a * inv_n + eps).sqrt();
                }
                for k in 0..n {
                    let (s, b) = (scale[k], bias.map_or(0.0, |b| b[k]));
                    let row = &x[base + k * inner..base + k * inner + w];
                    // SAFETY: tasks own disjoint (outer, column block) pairs.
                    let out = unsafe {
                        std::slice::from_raw_parts_mut(yp.get().add(base + k * inner), w)
                    };
                    for (((o, &xv), &mu), &rs) in
                        out.iter_mut().zip(row).zip(m.iter()).zip(v.iter())
                    {
                        *o = (xv - mu) * rs * s + b;
                    }
                }
            }
        },
    );
}

/// A sum that vectorises (eight partial sums).
#[inline(always)]
fn sum(v: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let mut ch = v.chunks_exact(8);
    for c in &mut ch {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a += x;
        }
    }
    acc.iter().sum::<f32>() + ch.remainder().iter().sum::<f32>()
}

/// Softmax over `n` (`y = e^(x - max) / sum`), numerically safe for any finite input.
pub(crate) fn softmax(ax: Axes, x: &[f32], y: &mut [f32]) {
    assert!(x.len() == ax.len() && y.len() == ax.len());
    let Axes { outer, n, inner } = ax;
    let yp = SendPtr(y.as_mut_ptr());
    if inner == 1 {
        for_ranges(
            outer,
            (2048 / n.max(1)).max(1),
            #[inline(always)]
            |b0, b1| {
                for r in b0..b1 {
                    let row = &x[r * n..(r + 1) * n];
                    let m = row
                        .iter()
                        .fold(f32::NEG_INFINITY, |a, &v| if v > a { v } else { a });
                    // SAFETY: tasks own disjoint rows.
                    let out = unsafe { std::slice::from_raw_parts_mut(yp.get().add(r * n), n) };
                    for (o, &v) in out.iter_mut().zip(row) {
                        *o = exp_nonpositive(v - m);
                    }
                    let s = 1.0 / sum(out);
                    for o in out.iter_mut() {
                        *o *= s;
                    }
                }
            },
        );
        return;
    }
    let blocks = inner.div_ceil(COLS);
    for_ranges(
        outer * blocks,
        1,
        #[inline(always)]
        |t0, t1| {
            let mut mx = [0f32; COLS];
            let mut sm = [0f32; COLS];
            for t in t0..t1 {
                let (o, c0) = (t / blocks, (t % blocks) * COLS);
                let w = COLS.min(inner - c0);
                let base = o * n * inner + c0;
                let (m, s) = (&mut mx[..w], &mut sm[..w]);
                m.fill(f32::NEG_INFINITY);
                s.fill(0.0);
                for k in 0..n {
                    for (a, &v) in m.iter_mut().zip(&x[base + k * inner..]) {
                        *a = if v > *a { v } else { *a };
                    }
                }
                for k in 0..n {
                    // SAFETY: tasks own disjoint (outer, column block) pairs.
                    let out = unsafe {
                        std::slice::from_raw_parts_mut(yp.get().add(base + k * inner), w)
                    };
                    for (((o, &v), &mu), a) in out
                        .iter_mut()
                        .zip(&x[base + k * inner..])
                        .zip(m.iter())
                        .zip(s.iter_mut())
                    {
                        *o = exp_nonpositive(v - mu);
                        *a += *o;
                    }
                }
                for a in s.iter_mut() {
                    *a = 1.0 / *a;
                }
                for k in 0..n {
                    // SAFETY: as above.
                    let out = unsafe {
                        std::slice::from_raw_parts_mut(yp.get().add(base + k * inner), w)
                    };
                    for (o, &r) in out.iter_mut().zip(s.iter()) {
                        *o *= r;
                    }
                }
            }
        },
    );
}

/// `y[o, i] = scale * sum_k x[o, k, i]` (ReduceMean with `scale = 1/n`, ReduceSum with 1).
pub(crate) fn reduce_sum(ax: Axes, x: &[f32], y: &mut [f32], scale: f32) {
    let Axes { outer, n, inner } = ax;
    assert!(x.len() == ax.len() && y.len() == outer * inner);
    let yp = SendPtr(y.as_mut_ptr());
    if inner == 1 {
        for_ranges(
            outer,
            (4096 / n.max(1)).max(1),
            #[inline(always)]
            |b0, b1| {
                for r in b0..b1 {
                    // SAFETY: tasks own disjoint outputs.
                    unsafe { *yp.get().add(r) = sum(&x[r * n..(r + 1) * n]) * scale };
                }
            },
        );
        return;
    }
    let blocks = inner.div_ceil(COLS);
    for_ranges(
        outer * blocks,
        1,
        #[inline(always)]
        |t0, t1| {
            for t in t0..t1 {
                let (o, c0) = (t / blocks, (t % blocks) * COLS);
                let w = COLS.min(inner - c0);
                // SAFETY: tasks own disjoint (outer, column block) pairs.
                let out =
                    unsafe { std::slice::from_raw_parts_mut(yp.get().add(o * inner + c0), w) };
                out.fill(0.0);
                for k in 0..n {
                    let base = (o * n + k) * inner + c0;
                    for (a, &v) in out.iter_mut().zip(&x[base..base + w]) {
                        *a += v;
                    }
                }
                for a in out.iter_mut() {
                    *a *= scale;
                }
            }
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| ((i * 7919 % 1013) as f32 / 101.3 - 5.0) * 1.7)
            .collect()
    }

    fn close(a: &[f32], b: &[f64], tol: f64) {
        let scale = b.iter().fold(0f64, |m, v| m.max(v.abs())).max(1e-30);
        for (i, (&x, &y)) in a.iter().zip(b).enumerate() {
            assert!((x as f64 - y).abs() <= tol * scale, "at {i}: {x} vs {y}");
        }
    }

    /// Near-miss shapes: rows of 1, odd widths, planes narrower and wider than a column block.
    const SHAPES: [(usize, usize, usize); 6] = [
        (1, 1, 1),
        (3, 7, 1),
        (2, 96, 1),
        (1, 13, 5),
        (2, 9, 300),
        (1, 64, 257),
    ];

    #[test]
    fn layer_norm_matches_f64() {
        for (outer, n, inner) in SHAPES {
            let ax = Axes { outer, n, inner };
            let x = data(ax.len());
            let scale: Vec<f32> = (0..n).map(|k| 0.5 + k as f32 * 0.01).collect();
            let bias: Vec<f32> = (0..n).map(|k| k as f32 * -0.02).collect();
            for with_bias in [true, false] {
                let mut y = vec![f32::NAN; ax.len()];
                let b = with_bias.then_some(bias.as_slice());
                layer_norm(ax, &x, &mut y, &scale, b, 1e-5);
                let mut want = vec![0f64; ax.len()];
                for o in 0..outer {
                    for i in 0..inner {
                        let at = |k: usize| (o * n + k) * inner + i;
                        let m = (0..n).map(|k| x[at(k)] as f64).sum::<f64>() / n as f64;
                        let v =
                            (0..n).map(|k| (x[at(k)] as f64 - m).powi(2)).sum::<f64>() / n as f64;
                        for k in 0..n {
                            want[at(k)] = (x[at(k)] as f64 - m) / (v + 1e-5).sqrt()
                                * scale[k] as f64
                                + if with_bias { bias[k] as f64 } else { 0.0 };
                        }
                    }
                }
                close(&y, &want, 1e-5);
            }
        }
    }

    #[test]
    fn softmax_and_reductions_match_f64() {
        for (outer, n, inner) in SHAPES {
            let ax = Axes { outer, n, inner };
            let x = data(ax.len());
            let mut y = vec![f32::NAN; ax.len()];
            softmax(ax, &x, &mut y);
            let mut want = vec![0f64; ax.len()];
            let mut red = vec![0f64; outer * inner];
            for o in 0..outer {
                for i in 0..inner {
                    let at = |k: usize| (o * n + k) * inner + i;
                    let m = (0..n).map(|k| x[at(k)] as f64).fold(f64::MIN, f64::max);
                    let s: f64 = (0..n).map(|k| (x[at(k)] as f64 - m).exp()).sum();
                    for k in 0..n {
                        want[at(k)] = (x[at(k)] as f64 - m).exp() / s;
                    }
                    red[o * inner + i] = (0..n).map(|k| x[at(k)] as f64).sum::<f64>() / n as f64;
                }
            }
            close(&y, &want, 1e-6);
            let mut r = vec![f32::NAN; outer * inner];
            reduce_sum(ax, &x, &mut r, 1.0 / n as f32);
            close(&r, &red, 1e-5);
        }
    }
}
