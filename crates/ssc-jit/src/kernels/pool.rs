//! 2-D max and average pooling (windowed and global) on NCHW images, parallel over channels.

use crate::kernels::par::{for_ranges, SendPtr};

/// What a pooling window computes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum PoolKind {
    Max,
    /// Average over the window; `count_include_pad` divides by the full window size.
    Avg {
        count_include_pad: bool,
    },
}

/// A pooling window's geometry on one image (`c` channels).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct PoolGeom {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: [usize; 2],
    pub dilation: [usize; 2],
    /// Top, left, bottom, right.
    pub pads: [usize; 4],
    pub h_out: usize,
    pub w_out: usize,
}

pub(crate) struct Pool {
    pub geom: PoolGeom,
    pub kind: PoolKind,
}

impl Pool {
    /// One image: `input` is `[c, h, w]`, `output` is `[c, h_out, w_out]`.
    pub(crate) fn run(&self, input: &[f32], output: &mut [f32]) {
        let g = self.geom;
        let kind = self.kind;
        let (ip, op) = (g.h * g.w, g.h_out * g.w_out);
        let ptr = SendPtr(output.as_mut_ptr());
        for_ranges(g.c, 4, move |b, e| {
            for c in b..e {
                // SAFETY: each task writes its own channels [b, e).
                let out = unsafe { std::slice::from_raw_parts_mut(ptr.get().add(c * op), op) };
                pool_plane(&g, kind, &input[c * ip..(c + 1) * ip], out);
            }
        });
    }
}

/// The window taps `lo..hi` (of `k`) that land inside `0..size` for a window starting at
/// `start` with dilation `dil`, plus how many land inside the padded extent `..size + pad_end`.
#[inline]
fn tap_range(
    start: isize,
    k: usize,
    dil: usize,
    size: usize,
    pad_end: usize,
) -> (usize, usize, usize) {
    let inside = |lim: isize| -> usize {
        // Taps t with start + t*dil < lim.
        if lim <= start {
            0
        } else {
            (((lim - start) as usize).div_ceil(dil)).min(k)
        }
    };
    let lo = if start >= 0 {
        0
    } else {
        ((-start) as usize).div_ceil(dil).min(k)
    };
    let hi = inside(size as isize).max(lo);
    let padded = inside((size + pad_end) as isize);
    (lo, hi, padded)
}

/// One channel. Branch-free inner loops: for each window row and column tap, the output
/// columns whose tap lands inside the image are updated in one strided sweep; the window
/// bounds per output pixel only matter for the average's divisor.
fn pool_plane(g: &PoolGeom, kind: PoolKind, x: &[f32], out: &mut [f32]) {
    let max = kind == PoolKind::Max;
    let sw = g.stride[1];
    for oy in 0..g.h_out {
        let y0 = (oy * g.stride[0]) as isize - g.pads[0] as isize;
        let (ky_lo, ky_hi, ky_pad) = tap_range(y0, g.kh, g.dilation[0], g.h, g.pads[2]);
        let acc = &mut out[oy * g.w_out..(oy + 1) * g.w_out];
        acc.fill(if max { f32::NEG_INFINITY } else { 0.0 });
        for ky in ky_lo..ky_hi {
            let iy = (y0 + (ky * g.dilation[0]) as isize) as usize;
            let row = &x[iy * g.w..(iy + 1) * g.w];
            for kx in 0..g.kw {
                let off = (kx * g.dilation[1]) as isize - g.pads[1] as isize;
                // Output columns with 0 <= ox*sw + off < w.
                let lo = if off >= 0 {
                    0
                } else {
                    ((-off) as usize).div_ceil(sw)
                };
                let hi = if off >= g.w as isize {
                    0
                } else {
                    ((g.w as isize - off) as usize).div_ceil(sw).min(g.w_out)
                };
                if lo >= hi {
                    continue;
                }
                let start = ((lo * sw) as isize + off) as usize;
                let src = row[start..start + (hi - lo - 1) * sw + 1]
                    .iter()
                    .step_by(sw);
                let dst = &mut acc[lo..hi];
                if max {
                    for (a, &v) in dst.iter_mut().zip(src) {
                        // NaN-propagating max, as the reference computes it.
                        *a = if v > *a || v.is_nan() { v } else { *a };
                    }
                } else {
                    for (a, &v) in dst.iter_mut().zip(src) {
                        *a += v;
                    }
                }
            }
        }
        if let PoolKind::Avg { count_include_pad } = kind {
            for (ox, a) in acc.iter_mut().enumerate() {
                let x0 = (ox * sw) as isize - g.pads[1] as isize;
                let (kx_lo, kx_hi, kx_pad) = tap_range(x0, g.kw, g.dilation[1], g.w, g.pads[3]);
                // ceil_mode windows may run past the padded extent; ONNX counts only the
                // padded area for count_include_pad.
                let n = if count_include_pad {
                    ky_pad * kx_pad
                } else {
                    (ky_hi - ky_lo) * (kx_hi - kx_lo)
                };
                *a = if n == 0 { 0.0 } else { *a / n as f32 };
            }
        } else if ky_lo >= ky_hi {
            // A window entirely in the padding: no element, as the reference gives.
            acc.fill(f32::NEG_INFINITY);
        }
    }
}

/// Global average or max over each channel's plane: `[c, p] -> [c]`.
pub(crate) fn global_pool(input: &[f32], output: &mut [f32], p: usize, max: bool) {
    for (o, plane) in output.iter_mut().zip(input.chunks_exact(p)) {
        *o =
            if max {
                plane.iter().copied().fold(f32::NEG_INFINITY, |a, b| {
                    if b > a || b.is_nan() {
                        b
                    } else {
                        a
                    }
                })
            } else {
                // Accumulate in f64: a 56x56 plane in f32 loses several bits to summation.
                (plane.iter().map(|&v| v as f64).sum::<f64>() / p as f64) as f32
            };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[ignore]
    fn bench_maxpool() {
        let g = PoolGeom {
            c: 64,
            h: 111,
            w: 111,
            kh: 3,
            kw: 3,
            stride: [2, 2],
            dilation: [1, 1],
            pads: [0, 0, 0, 0],
            h_out: 55,
            w_out: 55,
        };
        let x: Vec<f32> = (0..64 * 111 * 111).map(|i| (i % 97) as f32).collect();
        let mut y = vec![0.0; 64 * 55 * 55];
        let p = Pool {
            geom: g,
            kind: PoolKind::Max,
        };
        let t = std::time::Instant::now();
        for _ in 0..10 {
            p.run(&x, &mut y);
        }
        eprintln!("{:?} per run", t.elapsed() / 10);
    }
}
