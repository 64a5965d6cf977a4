//! 2-D max and average pooling (windowed and global) on NCHW images, parallel over channels.
//!
//! Max pooling with a 2x2 or 3x3 window at stride 1 or 2 (every CNN stem's) runs as AVX2 code
//! on the row blocks of `kernels::rows`: each block of 8 outputs is the max of the window's
//! tap vectors, read straight from the input (padding reads as -inf). On SqueezeNet's first pool
//! (64 x 111 x 111, 3x3 stride 2; `bench_maxpool`, ignored) it took 0.20-0.25 ms where the
//! separable path below took 0.34-0.37 (same session), NaN scan included. Other windows,
//! average pooling, and planes holding a NaN (which the vector max would drop) take the scalar
//! path below.

use crate::kernels::par::par_units;
use crate::kernels::rows::{Block, PlaneGeom};

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
    /// For a max pool the row-blocked kernel takes: its plane geometry and column blocks.
    rows: Option<(PlaneGeom, Vec<Block>)>,
    /// For a stride-1 average pool whose every window touches the image (`avg_s1_plane`): per
    /// output column, how many of its window's columns lie inside the image (the divisor's
    /// column factor without `count_include_pad`), then eight ones.
    avg_s1: Option<Vec<f32>>,
}

impl Pool {
    pub(crate) fn new(geom: PoolGeom, kind: PoolKind) -> Pool {
        let g = geom;
        let (hw, out, pads) = ([g.h, g.w], [g.h_out, g.w_out], [g.pads[0], g.pads[1]]);
        let plane = PlaneGeom::new(hw, out, g.kh, g.stride[0], pads);
        let rows = (kind == PoolKind::Max
            && g.kh == g.kw
            && (g.kh == 2 || g.kh == 3)
            && g.stride[0] == g.stride[1]
            && g.dilation == [1, 1]
            && plane.supported()
            && plane.windows_touch_image())
        .then(|| (plane, plane.blocks()));
        // Stride 1, no dilation, and no ceil-mode windows past the padded extent; pads below the
        // window size, so every window has a row and a column inside the image.
        let avg_s1 = (matches!(kind, PoolKind::Avg { .. })
            && g.stride == [1, 1]
            && g.dilation == [1, 1]
            && g.h > 0
            && g.w > 0
            && g.pads[0] < g.kh
            && g.pads[2] < g.kh
            && g.pads[1] < g.kw
            && g.pads[3] < g.kw
            && g.h + g.pads[0] + g.pads[2] + 1 == g.h_out + g.kh
            && g.w + g.pads[1] + g.pads[3] + 1 == g.w_out + g.kw)
            .then(|| {
                (0..g.w_out)
                    .map(|ox| {
                        let x0 = ox as isize - g.pads[1] as isize;
                        let hi = (g.w as isize - x0).min(g.kw as isize);
                        (hi - (-x0).max(0)) as f32
                    })
                    // Eight past the end: the tail's whole vector divides its unused lanes by 1.
                    .chain([1.0; 8])
                    .collect()
            });
        Pool {
            geom,
            kind,
            rows,
            avg_s1,
        }
    }

    /// One image: `input` is `[c, h, w]`, `output` is `[c, h_out, w_out]`.
    pub(crate) fn run(&self, input: &[f32], output: &mut [f32]) {
        let g = self.geom;
        let kind = self.kind;
        let (ip, op) = (g.h * g.w, g.h_out * g.w_out);
        par_units(
            output,
            op,
            4,
            #[inline(always)]
            |b, out| {
                // The separable path's column buffer, once per task (every use writes before
                // it reads).
                let mut cols = [0.0f32; COLS_LEN];
                // The stride-1 average's zero-bordered row, once per task (the borders stay
                // zero; every row writes the middle before it reads it).
                let mut row = match &self.avg_s1 {
                    Some(_) => vec![0.0f32; g.pads[1] + g.w + g.pads[3] + 8],
                    None => Vec::new(),
                };
                for (i, out) in out.chunks_exact_mut(op).enumerate() {
                    let c = b + i;
                    let plane = &input[c * ip..(c + 1) * ip];
                    if let (Some(col_n), PoolKind::Avg { count_include_pad }) = (&self.avg_s1, kind)
                    {
                        avg_s1_plane(&g, count_include_pad, col_n, plane, out, &mut row);
                        continue;
                    }
                    // The fast max is `maxss` (branch-free, but it drops a NaN operand); a plane
                    // holding a NaN takes the NaN-propagating path, as the reference computes it.
                    let nan = kind == PoolKind::Max && has_nan(plane);
                    match &self.rows {
                        Some((pg, blocks)) if !nan => max_plane(pg, blocks, plane, out),
                        _ => pool_plane(&g, kind, plane, out, nan, &mut cols),
                    }
                }
            },
        );
    }
}

/// One channel of a max pool through the row-blocked AVX2 kernel (`Pool::rows` is set: AVX2
/// is present, the window is 2x2 or 3x3 at stride 1 or 2, and every window touches the image).
#[inline(always)]
fn max_plane(g: &PlaneGeom, blocks: &[Block], x: &[f32], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `Pool::new` set `rows` only with AVX2 present; `x` is the `h * w` plane and `out`
    // the `h_out * w_out` one.
    unsafe {
        match (g.k, g.s) {
            (2, 1) => avx2::max_plane::<2, 1>(g, blocks, x, out),
            (2, _) => avx2::max_plane::<2, 2>(g, blocks, x, out),
            (_, 1) => avx2::max_plane::<3, 1>(g, blocks, x, out),
            _ => avx2::max_plane::<3, 2>(g, blocks, x, out),
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!(
        "the row-blocked max pool runs on x86-64 only ({g:?}, {}, {}, {})",
        blocks.len(),
        x.len(),
        out.len()
    )
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use crate::kernels::rows::avx2::{store, Rows};
    use crate::kernels::rows::{Block, PlaneGeom};

    /// `out[y, x] = max` of the `K x K` window at stride `S`; the padding never wins.
    ///
    /// # Safety
    /// AVX2; `x` holds `h * w` floats, `out` `h_out * w_out`; `blocks` are `g`'s and every
    /// window has a tap inside the image.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn max_plane<const K: usize, const S: usize>(
        g: &PlaneGeom,
        blocks: &[Block],
        x: &[f32],
        out: &mut [f32],
    ) {
        debug_assert!(x.len() == g.h * g.w && out.len() == g.h_out * g.w_out);
        for y in 0..g.h_out {
            let r = Rows::new(x, g, y);
            let (lo, hi) = r.tap_rows(K);
            // Blocks from the row's end to its start (`store`'s contract).
            for b in blocks.iter().rev() {
                let mut m = _mm256_set1_ps(f32::NEG_INFINITY);
                for ky in lo..hi {
                    // SAFETY: row top + ky exists; `interior` or the masks keep every load
                    // inside it.
                    let v = unsafe {
                        if b.interior {
                            r.vectors::<K, S, true, true>(b, ky)
                        } else {
                            r.vectors::<K, S, false, true>(b, ky)
                        }
                    };
                    for v in v {
                        m = _mm256_max_ps(m, v);
                    }
                }
                // SAFETY: y < h_out.
                unsafe { store::<S>(m, y, g.w_out, b, out) };
            }
        }
    }
}

/// One channel of a stride-1 average pool whose every window touches the image (`Pool::avg_s1`
/// is set; `col_n` is it). Per output row, the window's input rows are summed into the middle of
/// `row` (zero borders of the left and right pads), then each output is the sum of `kw`
/// neighbouring entries of `row`, divided by the window size (`count_include_pad`: stride 1
/// without ceil-mode windows puts every tap inside the padded extent) or by its taps inside the
/// image. Every loop is over contiguous slices, so it vectorises; the sum is reassociated (rows
/// first) against the reference's tap order.
#[inline(always)]
fn avg_s1_plane(
    g: &PoolGeom,
    count_include_pad: bool,
    col_n: &[f32],
    x: &[f32],
    out: &mut [f32],
    row: &mut [f32],
) {
    let (w, w_out, kw) = (g.w, g.w_out, g.kw);
    let full = (g.kh * kw) as f32;
    for oy in 0..g.h_out {
        let y0 = oy as isize - g.pads[0] as isize;
        let lo = (-y0).max(0) as usize;
        let hi = (g.h as isize - y0).min(g.kh as isize) as usize;
        let first = (y0 + lo as isize) as usize;
        let taps = &x[first * w..(first + hi - lo) * w];
        let mid = &mut row[g.pads[1]..g.pads[1] + w];
        // The rows' sums in one pass, eight columns per step through a local array (no copy
        // of the first row, no in-place adds: both cost more per row than the sums on these
        // short rows).
        let mut j = 0;
        while j + 8 <= w {
            let mut a: [f32; 8] = taps[j..j + 8].try_into().expect("8 inputs");
            for r in taps.chunks_exact(w).skip(1) {
                let v: &[f32; 8] = r[j..j + 8].try_into().expect("8 inputs");
                for (a, &v) in a.iter_mut().zip(v) {
                    *a += v;
                }
            }
            mid[j..j + 8].copy_from_slice(&a);
            j += 8;
        }
        for (i, m) in mid.iter_mut().enumerate().skip(j) {
            let mut a = taps[i];
            for r in taps.chunks_exact(w).skip(1) {
                a += r[i];
            }
            *m = a;
        }
        let dst = &mut out[oy * w_out..(oy + 1) * w_out];
        // The window's column sums and the divisor in one pass, eight outputs per step (a
        // fixed-length body, so it becomes one 256-bit vector per term).
        let rows = (hi - lo) as f32;
        let mut j = 0;
        while j + 8 <= w_out {
            let d: &mut [f32; 8] = (&mut dst[j..j + 8]).try_into().expect("8 outputs");
            window8(
                d,
                &row[j..j + 7 + kw],
                kw,
                count_include_pad,
                full,
                rows,
                &col_n[j..j + 8],
            );
            j += 8;
        }
        if j < w_out {
            // The tail as a whole vector too: `row` and `col_n` run 8 entries past the last
            // window (zeros and ones), and only the real outputs are kept.
            let mut d = [0.0f32; 8];
            window8(
                &mut d,
                &row[j..j + 7 + kw],
                kw,
                count_include_pad,
                full,
                rows,
                &col_n[j..j + 8],
            );
            dst[j..].copy_from_slice(&d[..w_out - j]);
        }
    }
}

/// Eight outputs of `avg_s1_plane`: `d[i] = sum(r[i..i + kw]) / n[i]`, `r` holding `7 + kw`.
#[inline(always)]
fn window8(
    d: &mut [f32; 8],
    r: &[f32],
    kw: usize,
    count_include_pad: bool,
    full: f32,
    rows: f32,
    col_n: &[f32],
) {
    let mut acc = [0.0f32; 8];
    acc.copy_from_slice(&r[..8]);
    for t in 1..kw {
        let v: &[f32; 8] = r[t..t + 8].try_into().expect("8 inputs");
        for (a, &v) in acc.iter_mut().zip(v) {
            *a += v;
        }
    }
    if count_include_pad {
        for (d, &a) in d.iter_mut().zip(&acc) {
            *d = a / full;
        }
    } else {
        let n: &[f32; 8] = col_n.try_into().expect("8 divisors");
        for ((d, &a), &n) in d.iter_mut().zip(&acc).zip(n) {
            *d = a / (rows * n);
        }
    }
}

/// Whether `x` holds a NaN: the largest magnitude bit pattern (`bits & 0x7fff_ffff`) exceeds
/// infinity's. An unsigned max reduction, which vectorises (`vpand` + `vpmaxud`), so the scan
/// runs at memory speed.
#[inline(always)]
fn has_nan(x: &[f32]) -> bool {
    let top = x.iter().fold(0u32, |m, v| m.max(v.to_bits() & 0x7fff_ffff));
    top > f32::INFINITY.to_bits()
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

/// One channel. Output columns whose window lies inside the image horizontally (computed once)
/// skip the per-pixel bounds arithmetic; the rest clip their window with `tap_range`. Inlined
/// into the caller's `par_units` task, which runs it as AVX2 code where available.
#[inline(always)]
fn pool_plane(
    g: &PoolGeom,
    kind: PoolKind,
    x: &[f32],
    out: &mut [f32],
    nan: bool,
    cols: &mut [f32],
) {
    // One monomorphised loop per mode, so the innermost loop has no mode test.
    match (kind, nan) {
        (PoolKind::Max, false) => plane_mode::<MAX>(g, kind, x, out, cols),
        (PoolKind::Max, true) => plane_mode::<MAX_NAN>(g, kind, x, out, cols),
        (PoolKind::Avg { .. }, _) => plane_mode::<AVG>(g, kind, x, out, cols),
    }
}

/// Folds one window element into the accumulator: `maxss` semantics for MAX (branch-free; it
/// drops a NaN operand), the NaN-propagating max the reference uses for MAX_NAN, a sum for AVG.
#[inline(always)]
fn take<const MODE: u8>(acc: f32, v: f32) -> f32 {
    match MODE {
        MAX => {
            if v > acc {
                v
            } else {
                acc
            }
        }
        MAX_NAN => {
            if v > acc || v.is_nan() {
                v
            } else {
                acc
            }
        }
        _ => acc + v,
    }
}

const MAX: u8 = 0;
const MAX_NAN: u8 = 1;
const AVG: u8 = 2;

/// `dst[j] = fold(col[j*S..j*S + 3])`, averaged over the 9 taps for AVG.
#[inline(always)]
fn fold_cols<const MODE: u8, const S: usize>(col: &[f32], dst: &mut [f32]) {
    let col = &col[..(dst.len() - 1) * S + 3];
    for (j, o) in dst.iter_mut().enumerate() {
        let acc = take::<MODE>(take::<MODE>(col[j * S], col[j * S + 1]), col[j * S + 2]);
        // A full window: 9 taps, all inside the image (and the padded extent).
        *o = if MODE == AVG { acc / 9.0 } else { acc };
    }
}

#[inline(always)]
fn fold_cols_dyn<const MODE: u8>(col: &[f32], s: usize, dst: &mut [f32]) {
    for (j, o) in dst.iter_mut().enumerate() {
        let acc = take::<MODE>(take::<MODE>(col[j * s], col[j * s + 1]), col[j * s + 2]);
        *o = if MODE == AVG { acc / 9.0 } else { acc };
    }
}

/// Output columns the separable 3x3 path folds per pass (its column buffer is on the stack).
const SEP_COLS: usize = 256;
/// Floats of the column buffer: one pass of `SEP_COLS` outputs at stride 3 (larger strides fold
/// fewer outputs per pass).
const COLS_LEN: usize = 3 * SEP_COLS + 3;

#[inline(always)]
fn plane_mode<const MODE: u8>(
    g: &PoolGeom,
    kind: PoolKind,
    x: &[f32],
    out: &mut [f32],
    cols: &mut [f32],
) {
    let (sw, dw) = (g.stride[1], g.dilation[1]);
    let span = (g.kw - 1) * dw;
    // Interior columns: x0 = ox*sw - pad_l >= 0 and x0 + span < w.
    let int_lo = g.pads[1].div_ceil(sw);
    let int_hi = if g.w + g.pads[1] > span {
        ((g.w + g.pads[1] - span - 1) / sw + 1).min(g.w_out)
    } else {
        0
    };
    for oy in 0..g.h_out {
        let y0 = (oy * g.stride[0]) as isize - g.pads[0] as isize;
        let (ky_lo, ky_hi, ky_pad) = tap_range(y0, g.kh, g.dilation[0], g.h, g.pads[2]);
        // Full 3x3 windows (every CNN stem's max pool): three row slices and nine taps of
        // straight-line code per interior pixel; the border pixels take the general path.
        let fast = g.kh == 3 && g.kw == 3 && dw == 1 && g.dilation[0] == 1 && ky_hi - ky_lo == 3;
        if fast && int_lo < int_hi {
            let iy = (y0 + ky_lo as isize) as usize;
            let rows = &x[iy * g.w..(iy + 3) * g.w];
            let (r0, rest) = rows.split_at(g.w);
            let (r1, r2) = rest.split_at(g.w);
            let x0 = int_lo * sw - g.pads[1];
            let n = int_hi - int_lo;
            let span_end = x0 + (n - 1) * sw + 3;
            let dst = &mut out[oy * g.w_out + int_lo..oy * g.w_out + int_hi];
            // Separable: the column folds of the three rows (contiguous, vectorised), then each
            // output folds three neighbouring columns. Max is order-free; the average sums
            // columns first (a reassociation of the nine-term sum).
            let mut done = 0;
            while done < n {
                // At most SEP_COLS outputs, and no more columns than the buffer holds.
                let m = (n - done).min(SEP_COLS).min((COLS_LEN - 3) / sw + 1);
                let c0 = x0 + done * sw;
                let c1 = (c0 + (m - 1) * sw + 3).min(span_end);
                let col = &mut cols[..c1 - c0];
                for (((v, &a), &b), &c) in col
                    .iter_mut()
                    .zip(&r0[c0..c1])
                    .zip(&r1[c0..c1])
                    .zip(&r2[c0..c1])
                {
                    *v = take::<MODE>(take::<MODE>(a, b), c);
                }
                // Constant strides 1 and 2 let the compiler vectorise the window loads.
                let dst = &mut dst[done..done + m];
                match sw {
                    1 => fold_cols::<MODE, 1>(col, dst),
                    2 => fold_cols::<MODE, 2>(col, dst),
                    _ => fold_cols_dyn::<MODE>(col, sw, dst),
                }
                done += m;
            }
        }
        // The fast path above wrote the interior columns; only the borders are left.
        let (skip_lo, skip_hi) = if fast && int_lo < int_hi {
            (int_lo, int_hi)
        } else {
            (g.w_out, g.w_out)
        };
        for ox in (0..skip_lo).chain(skip_hi..g.w_out) {
            let x0 = (ox * sw) as isize - g.pads[1] as isize;
            let (kx_lo, kx_hi, kx_pad) = if ox >= int_lo && ox < int_hi {
                (0, g.kw, g.kw)
            } else {
                tap_range(x0, g.kw, dw, g.w, g.pads[3])
            };
            // The running max, or the running sum for AVG (a plain local, so it stays in a
            // register).
            let mut acc = if MODE == AVG {
                0.0f32
            } else {
                f32::NEG_INFINITY
            };
            for ky in ky_lo..ky_hi {
                let iy = (y0 + (ky * g.dilation[0]) as isize) as usize;
                let row = &x[iy * g.w..(iy + 1) * g.w];
                if dw == 1 {
                    // Contiguous window row: a slice walk with no per-tap index arithmetic,
                    // fully unrolled for the common 3-wide window.
                    let s = (x0 + kx_lo as isize) as usize;
                    let win = &row[s..s + (kx_hi - kx_lo)];
                    if let [a, b, c] = win {
                        acc = take::<MODE>(take::<MODE>(take::<MODE>(acc, *a), *b), *c);
                    } else {
                        for &v in win {
                            acc = take::<MODE>(acc, v);
                        }
                    }
                } else {
                    for kx in kx_lo..kx_hi {
                        acc = take::<MODE>(acc, row[(x0 + (kx * dw) as isize) as usize]);
                    }
                }
            }
            let (m, sum) = (acc, acc);
            out[oy * g.w_out + ox] = match kind {
                PoolKind::Max => m,
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
    crate::kernels::par::simd(
        #[inline(always)]
        || global_pool_body(input, output, p, max),
    )
}

#[inline(always)]
fn global_pool_body(input: &[f32], output: &mut [f32], p: usize, max: bool) {
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
                // Eight independent lanes so the loop vectorises.
                let mut lanes = [0.0f64; 8];
                let mut chunks = plane.chunks_exact(8);
                for c in &mut chunks {
                    for (l, &v) in lanes.iter_mut().zip(c) {
                        *l += v as f64;
                    }
                }
                let tail: f64 = chunks.remainder().iter().map(|&v| v as f64).sum();
                ((lanes.iter().sum::<f64>() + tail) / p as f64) as f32
            };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The row-blocked max pool (2x2 and 3x3, strides 1 and 2, rows shorter and longer than a
    /// vector, ceil-mode windows past the end), the separable 3x3 path (strides 1-4, rows
    /// wider than one pass of `SEP_COLS` outputs, pads) and the border path against the
    /// reference executor's MaxPool and AveragePool.
    #[test]
    fn pools_match_the_reference_executor() {
        use ssc_ir::{Attribute, OpDesc, Tensor};
        // (c, h, w, k, stride, pads, ceil_mode)
        let cases = [
            (3, 9, 11, 3, 2, [0; 4], false),
            (2, 8, 8, 3, 1, [1; 4], false),
            (2, 7, 1030, 3, 4, [1, 0, 1, 2], false),
            (1, 5, 800, 3, 3, [0, 1, 0, 1], false),
            (2, 6, 600, 3, 2, [1, 1, 1, 1], false),
            (3, 13, 13, 3, 2, [0; 4], true),
            (2, 27, 37, 3, 2, [0; 4], true),
            (2, 5, 6, 2, 2, [0; 4], false),
            (2, 9, 21, 2, 2, [0; 4], true),
            (2, 10, 19, 2, 1, [0, 1, 1, 0], false),
            (2, 4, 3, 3, 1, [1; 4], false),
            // Stride-1 averages (`avg_s1_plane`): the sum-pool's 3x3 pads 1 on odd and tiny
            // planes, one row or column, asymmetric and zero pads, 2x2 / 4x4 / 5x5 windows,
            // rows longer than a vector's multiple, a window as large as the padded plane.
            (3, 7, 7, 3, 1, [1; 4], false),
            (2, 1, 1, 3, 1, [1; 4], false),
            (2, 1, 9, 3, 1, [1; 4], false),
            (2, 9, 1, 3, 1, [1; 4], false),
            (2, 13, 17, 3, 1, [0, 1, 2, 0], false),
            (2, 6, 5, 3, 1, [0; 4], false),
            (2, 11, 37, 2, 1, [1, 0, 0, 1], false),
            (2, 9, 10, 4, 1, [3, 1, 2, 3], false),
            (1, 5, 5, 5, 1, [2; 4], false),
            (1, 3, 3, 5, 1, [1; 4], false),
            (1, 4, 1030, 3, 1, [1; 4], false),
        ];
        for (c, h, w, k, s, pads, ceil) in cases {
            let out = |n: usize, p: usize| {
                let span = n + p - k;
                (if ceil { span.div_ceil(s) } else { span / s }) + 1
            };
            let (h_out, w_out) = (out(h, pads[0] + pads[2]), out(w, pads[1] + pads[3]));
            let g = PoolGeom {
                c,
                h,
                w,
                kh: k,
                kw: k,
                stride: [s, s],
                dilation: [1, 1],
                pads,
                h_out,
                w_out,
            };
            let x = crate::testutil::pattern(c * h * w, 37, 101, 0.02);
            for (kind, op) in [
                (PoolKind::Max, "MaxPool"),
                (
                    PoolKind::Avg {
                        count_include_pad: false,
                    },
                    "AveragePool",
                ),
                (
                    PoolKind::Avg {
                        count_include_pad: true,
                    },
                    "AveragePool",
                ),
            ] {
                let mut y = vec![f32::NAN; c * h_out * w_out];
                let pool = Pool::new(g, kind);
                let row_blocked = kind == PoolKind::Max && s <= 2 && k <= 3;
                assert_eq!(
                    pool.rows.is_some(),
                    row_blocked && crate::kernels::par::has_avx2_fma()
                );
                let avg = matches!(kind, PoolKind::Avg { .. });
                assert_eq!(pool.avg_s1.is_some(), avg && s == 1 && !ceil);
                pool.run(&x, &mut y);
                let i = |v: &[usize]| v.iter().map(|&d| d as i64).collect::<Vec<_>>();
                let mut desc = OpDesc::new(op);
                desc.attrs = vec![
                    Attribute::ints("kernel_shape", vec![k as i64, k as i64]),
                    Attribute::ints("strides", i(&[s, s])),
                    Attribute::ints("pads", i(&pads)),
                    Attribute::int("ceil_mode", i64::from(ceil)),
                ];
                if let PoolKind::Avg { count_include_pad } = kind {
                    desc.attrs.push(Attribute::int(
                        "count_include_pad",
                        i64::from(count_include_pad),
                    ));
                }
                let xt = Tensor::from_f32(vec![1, c, h, w], &x);
                let want = ssc_exec::eval_node(&desc, 17, &[Some(&xt)], 1).unwrap();
                assert_eq!(want[0].dims, vec![1, c, h_out, w_out]);
                let want = want[0].to_f32_vec().unwrap();
                for (n, (&a, &b)) in y.iter().zip(&want).enumerate() {
                    assert!(
                        (a - b).abs() <= 1e-6,
                        "{kind:?} {c}x{h}x{w} k{k} s{s} {pads:?} ceil {ceil} at {n}: {a} vs {b}"
                    );
                }
            }
        }
    }

    #[test]
    fn max_pool_propagates_nan_and_clips_padded_windows() {
        // 1 channel 4x4, 3x3 window, stride 2, pads 1: windows at the borders are clipped.
        let g = PoolGeom {
            c: 1,
            h: 4,
            w: 4,
            kh: 3,
            kw: 3,
            stride: [2, 2],
            dilation: [1, 1],
            pads: [1, 1, 1, 1],
            h_out: 2,
            w_out: 2,
        };
        let mut x: Vec<f32> = (0..16).map(|i| i as f32).collect();
        let mut y = vec![0.0; 4];
        let p = Pool::new(g, PoolKind::Max);
        p.run(&x, &mut y);
        assert_eq!(y, vec![5.0, 7.0, 13.0, 15.0]);
        x[0] = f32::NAN;
        p.run(&x, &mut y);
        assert!(y[0].is_nan() && y[1] == 7.0 && y[2] == 13.0, "{y:?}");
        // Average with and without the padding in the divisor.
        let avg = |count_include_pad| {
            let mut y = vec![0.0; 4];
            let x: Vec<f32> = (0..16).map(|i| i as f32).collect();
            Pool::new(g, PoolKind::Avg { count_include_pad }).run(&x, &mut y);
            y
        };
        assert_eq!(avg(false)[0], (0.0 + 1.0 + 4.0 + 5.0) / 4.0);
        assert_eq!(avg(true)[0], (0.0 + 1.0 + 4.0 + 5.0) / 9.0);
    }

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
        let p = Pool::new(g, PoolKind::Max);
        crate::testutil::in_pool(1, || {
            for _ in 0..3 {
                let t = std::time::Instant::now();
                for _ in 0..20 {
                    p.run(&x, &mut y);
                }
                eprintln!("{:?} per run", t.elapsed() / 20);
                let t = std::time::Instant::now();
                let mut any = 0;
                for _ in 0..20 {
                    any += std::hint::black_box(&x)
                        .iter()
                        .fold(false, |n, v| n | v.is_nan()) as usize;
                }
                eprintln!("{:?} per NaN scan ({any})", t.elapsed() / 20);
                let t = std::time::Instant::now();
                for _ in 0..20 {
                    // The same pooling as plain fixed 3x3 loops: the bar the kernel should
                    // stay near.
                    for c in 0..64 {
                        let xp = &x[c * 111 * 111..(c + 1) * 111 * 111];
                        for oy in 0..55 {
                            for ox in 0..55 {
                                let mut m = f32::NEG_INFINITY;
                                for ky in 0..3 {
                                    for kx in 0..3 {
                                        let v = xp[(oy * 2 + ky) * 111 + ox * 2 + kx];
                                        m = if v > m { v } else { m };
                                    }
                                }
                                y[c * 55 * 55 + oy * 55 + ox] = m;
                            }
                        }
                    }
                }
                eprintln!("{:?} per run (fixed 3x3 loops)", t.elapsed() / 20);
            }
        });
    }
}
