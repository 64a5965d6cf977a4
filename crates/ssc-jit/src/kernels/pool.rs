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

fn pool_plane(g: &PoolGeom, kind: PoolKind, x: &[f32], out: &mut [f32]) {
    for oy in 0..g.h_out {
        let y0 = (oy * g.stride[0]) as isize - g.pads[0] as isize;
        let (ky_lo, ky_hi, ky_pad) = tap_range(y0, g.kh, g.dilation[0], g.h, g.pads[2]);
        for ox in 0..g.w_out {
            let x0 = (ox * g.stride[1]) as isize - g.pads[1] as isize;
            let (kx_lo, kx_hi, kx_pad) = tap_range(x0, g.kw, g.dilation[1], g.w, g.pads[3]);
            let mut max = f32::NEG_INFINITY;
            let mut sum = 0.0f32;
            for ky in ky_lo..ky_hi {
                let iy = (y0 + (ky * g.dilation[0]) as isize) as usize;
                let row = &x[iy * g.w..(iy + 1) * g.w];
                for kx in kx_lo..kx_hi {
                    let v = row[(x0 + (kx * g.dilation[1]) as isize) as usize];
                    if v > max || v.is_nan() {
                        max = v;
                    }
                    sum += v;
                }
            }
            out[oy * g.w_out + ox] = match kind {
                PoolKind::Max => max,
                PoolKind::Avg { count_include_pad } => {
                    // ceil_mode windows may run past the padded extent; ONNX counts only the
                    // padded area for count_include_pad.
                    let n = if count_include_pad {
                        ky_pad * kx_pad
                    } else {
                        (ky_hi - ky_lo) * (kx_hi - kx_lo)
                    };
                    if n == 0 {
                        0.0
                    } else {
                        sum / n as f32
                    }
                }
            };
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
