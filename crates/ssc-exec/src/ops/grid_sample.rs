//! GridSample (opsets 16 to 22) over any number of spatial axes: `nearest`, `linear`
//! (`bilinear` at opset 16) and `cubic` (`bicubic`) sampling, `zeros`/`border`/`reflection`
//! padding, `align_corners`, as the ONNX reference (PyTorch's `grid_sample`) defines them:
//!
//! - a normalised coordinate `n` in `[-1, 1]` maps to `(n + 1) / 2 * (d - 1)` with
//!   `align_corners`, else to `((n + 1) d - 1) / 2`; the grid lists coordinates innermost axis
//!   first (x, then y, then z);
//! - with `border` or `reflection` padding a coordinate outside the sampling range (`[0, d - 1]`
//!   with `align_corners`, `[-0.5, d - 0.5]` without) is first clamped to `[0, d - 1]` or
//!   reflected into the range, for `nearest` and `linear`; `cubic` pads each of its taps
//!   instead, as onnxruntime and PyTorch do (the ONNX reference clamps the coordinate first,
//!   which gives other values under `border`; the node cases do not test that pair);
//! - `nearest` rounds half to even; `linear` weighs the 2^r neighbours, `cubic` the 4^r with
//!   Keys' kernel (a = -0.75); a neighbour outside the image is zero (`zeros`), the nearest edge
//!   pixel (`border`) or its reflection (`reflection`).
//!
//! Computed in f64, rounded once to the input type.

use crate::ctx::{Ctx, Result};
use crate::layout::{numel, strides, unravel};
use crate::value::{dispatch, Array, Elem, Val};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Nearest,
    Linear,
    Cubic,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Padding {
    Zeros,
    Border,
    Reflection,
}

/// Reflects `x` into `[lo, hi]` by the nearer edge, as often as needed.
fn reflect(x: f64, lo: f64, hi: f64) -> f64 {
    let range = hi - lo;
    if range <= 0.0 {
        return lo;
    }
    if x < lo {
        let dx = lo - x;
        let n = (dx / range).floor();
        let r = dx - n * range;
        if n as i64 % 2 == 0 {
            lo + r
        } else {
            hi - r
        }
    } else if x > hi {
        let dx = x - hi;
        let n = (dx / range).floor();
        let r = dx - n * range;
        if n as i64 % 2 == 0 {
            hi - r
        } else {
            lo + r
        }
    } else {
        x
    }
}

/// Keys' cubic convolution weights of the four taps around a fraction `t` in `[0, 1)`.
fn cubic_weights(t: f64) -> [f64; 4] {
    let a = -0.75;
    let w = |x: f64| {
        let x = x.abs();
        if x <= 1.0 {
            ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
        } else if x < 2.0 {
            ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a
        } else {
            0.0
        }
    };
    [w(t + 1.0), w(t), w(1.0 - t), w(2.0 - t)]
}

/// The sampling geometry of one spatial axis.
#[derive(Clone, Copy)]
struct Axis {
    size: usize,
    lo: f64,
    hi: f64,
}

impl Axis {
    /// A tap index along this axis under the padding mode: `None` for a zero (outside, `zeros`).
    fn tap(&self, i: i64, padding: Padding) -> Option<usize> {
        let d = self.size as i64;
        match padding {
            Padding::Zeros => (0..d).contains(&i).then_some(i as usize),
            Padding::Border => Some(i.clamp(0, d - 1) as usize),
            Padding::Reflection => {
                let r = reflect(i as f64, self.lo, self.hi) as i64;
                Some(r.clamp(0, d - 1) as usize)
            }
        }
    }
}

pub(crate) fn grid_sample(ctx: &Ctx) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    let grid = ctx.input(1)?;
    let mode = match ctx.string("mode", "linear")?.as_str() {
        "nearest" => Mode::Nearest,
        "linear" | "bilinear" => Mode::Linear,
        "cubic" | "bicubic" => Mode::Cubic,
        other => return Err(ctx.err(format!("unknown mode `{other}`"))),
    };
    let padding = match ctx.string("padding_mode", "zeros")?.as_str() {
        "zeros" => Padding::Zeros,
        "border" => Padding::Border,
        "reflection" => Padding::Reflection,
        other => return Err(ctx.err(format!("unknown padding_mode `{other}`"))),
    };
    let align = ctx.int("align_corners", 0)? != 0;
    let r = x.rank().saturating_sub(2);
    if r == 0 || grid.rank() != r + 2 || grid.shape[r + 1] != r || grid.shape[0] != x.shape[0] {
        return Err(ctx.err(format!(
            "X {:?} and grid {:?} must be [N, C, D1..Dr] and [N, O1..Or, r]",
            x.shape, grid.shape
        )));
    }
    if !grid.dtype().is_float() {
        return Err(ctx.err(format!("grid must be float, not {}", grid.dtype())));
    }
    let (n, c) = (x.shape[0], x.shape[1]);
    let spatial = &x.shape[2..];
    let axes: Vec<Axis> = spatial
        .iter()
        .map(|&size| {
            let (lo, hi) = if align {
                (0.0, size as f64 - 1.0)
            } else {
                (-0.5, size as f64 - 0.5)
            };
            Axis { size, lo, hi }
        })
        .collect();
    let out_sp = &grid.shape[1..=r];
    let points = numel(out_sp);
    let plane = numel(spatial);
    let xs_strides = strides(spatial);
    let g = grid.to_f64_vec();
    let dt = x.dtype();
    let xv = x.to_f64_vec();
    let mut y = vec![0f64; n * c * points];
    // Per point: the flat input offset and weight of each of its taps (`None`: a zero).
    let mut taps: Vec<(Option<usize>, f64)> = Vec::new();
    let mut per_axis: Vec<Vec<(Option<usize>, f64)>> = vec![Vec::new(); r];
    let mut tap_idx = vec![0usize; r];
    for b in 0..n {
        for p in 0..points {
            let gp = &g[(b * points + p) * r..(b * points + p + 1) * r];
            for (ax, a) in axes.iter().enumerate() {
                // The grid lists the innermost axis first.
                let nrm = gp[r - 1 - ax];
                let d = a.size as f64;
                let mut v = if align {
                    (nrm + 1.0) / 2.0 * (d - 1.0)
                } else {
                    ((nrm + 1.0) * d - 1.0) / 2.0
                };
                if mode == Mode::Nearest {
                    v = v.round_ties_even();
                }
                // Cubic taps are padded one by one instead, as onnxruntime and PyTorch do (the
                // ONNX reference clamps first, which differs under `border`).
                if (v < a.lo || v > a.hi) && mode != Mode::Cubic {
                    match padding {
                        Padding::Border => v = v.clamp(0.0, d - 1.0),
                        Padding::Reflection => v = reflect(v, a.lo, a.hi),
                        Padding::Zeros => {}
                    }
                }
                let list = &mut per_axis[ax];
                list.clear();
                if !v.is_finite() {
                    list.push((None, 0.0));
                    continue;
                }
                match mode {
                    Mode::Nearest => list.push((a.tap(v as i64, padding), 1.0)),
                    Mode::Linear => {
                        let f = v.floor();
                        let t = v - f;
                        list.push((a.tap(f as i64, padding), 1.0 - t));
                        list.push((a.tap(f as i64 + 1, padding), t));
                    }
                    Mode::Cubic => {
                        let f = v.floor();
                        for (k, w) in cubic_weights(v - f).into_iter().enumerate() {
                            list.push((a.tap(f as i64 - 1 + k as i64, padding), w));
                        }
                    }
                }
            }
            // The product of the per-axis taps.
            taps.clear();
            let tap_counts: Vec<usize> = per_axis.iter().map(Vec::len).collect();
            for t in 0..numel(&tap_counts) {
                unravel(t, &tap_counts, &mut tap_idx);
                let mut off = Some(0usize);
                let mut w = 1.0;
                for (ax, &k) in tap_idx.iter().enumerate() {
                    let (i, wk) = per_axis[ax][k];
                    off = off.zip(i).map(|(o, i)| o + i * xs_strides[ax]);
                    w *= wk;
                }
                taps.push((off, w));
            }
            for ch in 0..c {
                let base = (b * c + ch) * plane;
                let s: f64 = taps
                    .iter()
                    .map(|&(off, w)| off.map_or(0.0, |o| xv[base + o] * w))
                    .sum();
                y[(b * c + ch) * points + p] = s;
            }
        }
    }
    let mut shape = vec![n, c];
    shape.extend(out_sp);
    let out = dispatch!(float dt, T => Array::new(shape, y.into_iter().map(T::from_f64).collect::<Vec<T>>()),
        else return Err(ctx.err(format!("X must be float, not {dt}"))));
    Ok(vec![out.into()])
}
