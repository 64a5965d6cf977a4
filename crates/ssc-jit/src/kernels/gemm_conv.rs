//! Dense convolution as GEMM: im2col (skipped for 1x1 stride-1 convs) feeding the `gemm`
//! crate, with the bias and residual preloaded into the destination and the activation applied
//! per channel block while it is still in cache.

use crate::kernels::par::{for_ranges, SendPtr};
use crate::spec::{ConvGeom, Epilogue};

/// A dense (possibly grouped) convolution with its weights in GEMM layout.
pub(crate) struct GemmConv {
    geom: ConvGeom,
    /// `[c_out, K]` with `K = c_in/group * kh * kw`: ONNX's layout is already this.
    weights: Vec<f32>,
    epi: Epilogue,
    /// 1x1, stride 1, no padding: the input is already the column matrix.
    direct: bool,
    /// Output columns per tile of the blocked path (0: one whole-image column matrix).
    chunk: usize,
    /// Threads the plan runs on (sizes the per-thread tiles of the scratch).
    threads: usize,
}

/// Bytes of one column tile: small enough to stay in L2 (1 MB per core here) while gemm packs
/// and multiplies it.
const TILE_BYTES: usize = 512 * 1024;

impl GemmConv {
    pub(crate) fn new(
        geom: ConvGeom,
        weights: Vec<f32>,
        epi: Epilogue,
        threads: usize,
    ) -> GemmConv {
        let direct = geom.kh == 1
            && geom.kw == 1
            && geom.stride == [1, 1]
            && geom.pads == [0; 4]
            && geom.h_out == geom.h
            && geom.w_out == geom.w;
        let k = geom.cin_g() * geom.kh * geom.kw;
        let p = geom.h_out * geom.w_out;
        // Column tiles of whole cache-resident im2col blocks, each multiplied by one thread;
        // worth it when there are enough tiles to share out (else one big column matrix and
        // gemm's own threading).
        let chunk = (TILE_BYTES / 4 / k.max(1)).max(64) / 16 * 16;
        let tiles = geom.group * p.div_ceil(chunk);
        let chunk = if direct || tiles < 2 * threads.max(1) || chunk >= p {
            0
        } else {
            chunk
        };
        GemmConv {
            geom,
            weights,
            epi,
            direct,
            chunk,
            threads: threads.max(1),
        }
    }

    fn k(&self) -> usize {
        self.geom.cin_g() * self.geom.kh * self.geom.kw
    }

    /// f32 elements of scratch one image needs: one column tile per thread, or the column
    /// matrix of one group.
    pub(crate) fn scratch_len(&self) -> usize {
        if self.direct {
            0
        } else if self.chunk > 0 {
            self.threads * self.k() * self.chunk
        } else {
            self.k() * self.geom.h_out * self.geom.w_out
        }
    }

    /// One image: `input` is `[c_in, h, w]`; `output` and the residuals are
    /// `[c_out, h_out, w_out]` (a second residual is added after the first).
    pub(crate) fn run(
        &self,
        input: &[f32],
        residual: Option<&[f32]>,
        residual2: Option<&[f32]>,
        output: &mut [f32],
        scratch: &mut [f32],
    ) {
        let g = &self.geom;
        let p = g.h_out * g.w_out;
        let k = self.k();
        let (cin_g, cout_g) = (g.cin_g(), g.cout_g());
        preload(output, residual, residual2, self.epi.bias.as_deref(), p);
        let read_dst = residual.is_some() || self.epi.bias.is_some();
        if self.chunk > 0 {
            self.run_tiled(input, output, scratch, read_dst);
            crate::kernels::eltwise::activation(self.epi.act, None, output);
            return;
        }
        let threads = rayon::current_num_threads();
        for grp in 0..g.group {
            let x = &input[grp * cin_g * g.h * g.w..(grp + 1) * cin_g * g.h * g.w];
            let col: &[f32] = if self.direct {
                x
            } else {
                im2col(g, x, &mut scratch[..k * p]);
                &scratch[..k * p]
            };
            let w = &self.weights[grp * cout_g * k..(grp + 1) * cout_g * k];
            let dst = &mut output[grp * cout_g * p..(grp + 1) * cout_g * p];
            // SAFETY: `dst` is cout_g x p row-major, `w` is cout_g x k and `col` is k x p, all
            // in bounds by construction; gemm reads `dst` only when `read_dst`.
            unsafe {
                crate::kernels::sgemm(
                    (cout_g, p, k),
                    dst.as_mut_ptr(),
                    p,
                    read_dst,
                    (w.as_ptr(), k, 1),
                    (col.as_ptr(), p, 1),
                    1.0,
                    threads,
                );
            }
        }
        crate::kernels::eltwise::activation(self.epi.act, None, output);
    }

    /// The blocked path: tasks are (group, column tile); each builds its tile of the column
    /// matrix in its thread's part of `scratch` and multiplies it single-threaded into its own
    /// columns of the output.
    fn run_tiled(&self, input: &[f32], output: &mut [f32], scratch: &mut [f32], read_dst: bool) {
        use rayon::prelude::*;
        let g = self.geom;
        let (p, k, chunk) = (g.h_out * g.w_out, self.k(), self.chunk);
        let (cin_g, cout_g) = (g.cin_g(), g.cout_g());
        let tiles = p.div_ceil(chunk);
        let out = SendPtr(output.as_mut_ptr());
        let scr = SendPtr(scratch.as_mut_ptr());
        let task = |t: usize| {
            let (grp, c0) = (t / tiles, (t % tiles) * chunk);
            let n = chunk.min(p - c0);
            let slot = rayon::current_thread_index().unwrap_or(0) % self.threads;
            // SAFETY: each pool thread owns tile slot `slot` of the scratch (sized for
            // `threads` tiles); tasks write disjoint column ranges of the output.
            let col =
                unsafe { std::slice::from_raw_parts_mut(scr.get().add(slot * k * chunk), k * n) };
            let x = &input[grp * cin_g * g.h * g.w..(grp + 1) * cin_g * g.h * g.w];
            im2col_tile(&g, x, c0, n, col);
            let w = &self.weights[grp * cout_g * k..(grp + 1) * cout_g * k];
            // SAFETY: the destination is rows [grp*cout_g, +cout_g) x columns [c0, c0+n) of
            // the c_out x p output (row stride p); `w` is cout_g x k, `col` k x n.
            unsafe {
                crate::kernels::sgemm(
                    (cout_g, n, k),
                    out.get().add(grp * cout_g * p + c0),
                    p,
                    read_dst,
                    (w.as_ptr(), k, 1),
                    (col.as_ptr(), n, 1),
                    1.0,
                    1,
                );
            }
        };
        let n_tasks = g.group * tiles;
        if rayon::current_num_threads() <= 1 {
            (0..n_tasks).for_each(task);
        } else {
            (0..n_tasks).into_par_iter().for_each(task);
        }
    }
}

/// Columns `c0..c0+n` of the column matrix of one group's input (`[cin_g*kh*kw, n]`, row
/// stride `n`).
fn im2col_tile(g: &ConvGeom, x: &[f32], c0: usize, n: usize, col: &mut [f32]) {
    let rows = g.cin_g() * g.kh * g.kw;
    for r in 0..rows {
        let ci = r / (g.kh * g.kw);
        let ky = (r / g.kw) % g.kh;
        let kx = r % g.kw;
        let plane = &x[ci * g.h * g.w..(ci + 1) * g.h * g.w];
        let out = &mut col[r * n..(r + 1) * n];
        // Walk the tile one output row segment at a time.
        let mut p = c0;
        while p < c0 + n {
            let y = p / g.w_out;
            let xs = p % g.w_out;
            let xe = g.w_out.min(xs + (c0 + n - p));
            fill_segment(
                g,
                plane,
                ky,
                kx,
                y,
                xs,
                xe,
                &mut out[p - c0..p - c0 + (xe - xs)],
            );
            p += xe - xs;
        }
    }
}

/// Output row `y`, columns `xs..xe`, of the im2col row for tap `(ky, kx)`.
#[allow(clippy::too_many_arguments)]
fn fill_segment(
    g: &ConvGeom,
    plane: &[f32],
    ky: usize,
    kx: usize,
    y: usize,
    xs: usize,
    xe: usize,
    out: &mut [f32],
) {
    let sw = g.stride[1];
    let iy = (y * g.stride[0] + ky * g.dilation[0]) as isize - g.pads[0] as isize;
    if iy < 0 || iy >= g.h as isize {
        out.fill(0.0);
        return;
    }
    let src = &plane[iy as usize * g.w..(iy as usize + 1) * g.w];
    let off_x = (kx * g.dilation[1]) as isize - g.pads[1] as isize;
    // Output columns x with 0 <= x*sw + off_x < w, clipped to the segment.
    let lo = if off_x >= 0 {
        0
    } else {
        ((-off_x) as usize).div_ceil(sw)
    };
    let hi = if off_x >= g.w as isize {
        0
    } else {
        ((g.w as isize - off_x) as usize).div_ceil(sw)
    };
    let (lo, hi) = (lo.clamp(xs, xe), hi.clamp(xs, xe));
    if lo >= hi {
        out.fill(0.0);
        return;
    }
    out[..lo - xs].fill(0.0);
    out[hi - xs..].fill(0.0);
    let start = ((lo * sw) as isize + off_x) as usize;
    let dst = &mut out[lo - xs..hi - xs];
    if sw == 1 {
        dst.copy_from_slice(&src[start..start + dst.len()]);
    } else {
        // Plain indexing: measurably faster here than a `step_by` iterator.
        let src = &src[start..start + (dst.len() - 1) * sw + 1];
        for (j, d) in dst.iter_mut().enumerate() {
            *d = src[j * sw];
        }
    }
}

/// Writes `residual + residual2 + bias[c]` (those present, summed in that order) into every
/// element of channel `c`, or leaves the output to be overwritten when there is none.
pub(crate) fn preload(
    out: &mut [f32],
    residual: Option<&[f32]>,
    residual2: Option<&[f32]>,
    bias: Option<&[f32]>,
    p: usize,
) {
    if residual.is_none() && bias.is_none() {
        return;
    }
    let c = out.len() / p.max(1);
    let ptr = SendPtr(out.as_mut_ptr());
    for_ranges(c, 8, move |b, e| {
        // SAFETY: each task writes channels [b, e) only; ranges are disjoint.
        let out = unsafe { std::slice::from_raw_parts_mut(ptr.get().add(b * p), (e - b) * p) };
        for (i, ch) in out.chunks_exact_mut(p).enumerate() {
            let bv = bias.map_or(0.0, |bs| bs[b + i]);
            let (lo, hi) = ((b + i) * p, (b + i + 1) * p);
            match (residual.map(|r| &r[lo..hi]), residual2.map(|r| &r[lo..hi])) {
                (Some(r), Some(r2)) => {
                    for ((o, &rv), &rv2) in ch.iter_mut().zip(r).zip(r2) {
                        *o = rv + rv2 + bv;
                    }
                }
                (Some(r), None) => {
                    for (o, &rv) in ch.iter_mut().zip(r) {
                        *o = rv + bv;
                    }
                }
                _ => ch.fill(bv),
            }
        }
    });
}

/// The column matrix `[cin_g*kh*kw, h_out*w_out]` of one group's input `[cin_g, h, w]`;
/// out-of-image taps read 0. Rows are filled in parallel.
fn im2col(g: &ConvGeom, x: &[f32], col: &mut [f32]) {
    let p = g.h_out * g.w_out;
    let rows = g.cin_g() * g.kh * g.kw;
    let ptr = SendPtr(col.as_mut_ptr());
    let g = *g;
    for_ranges(rows, 4, move |b, e| {
        for r in b..e {
            // SAFETY: each task fills rows [b, e) of `col`; ranges are disjoint.
            let row = unsafe { std::slice::from_raw_parts_mut(ptr.get().add(r * p), p) };
            let ci = r / (g.kh * g.kw);
            let ky = (r / g.kw) % g.kh;
            let kx = r % g.kw;
            let plane = &x[ci * g.h * g.w..(ci + 1) * g.h * g.w];
            fill_row(&g, plane, ky, kx, row);
        }
    });
}

/// One im2col row: for every output pixel, the input pixel tap `(ky, kx)` reads.
fn fill_row(g: &ConvGeom, plane: &[f32], ky: usize, kx: usize, row: &mut [f32]) {
    let (sh, sw) = (g.stride[0], g.stride[1]);
    let off_y = (ky * g.dilation[0]) as isize - g.pads[0] as isize;
    let off_x = (kx * g.dilation[1]) as isize - g.pads[1] as isize;
    // Output columns whose input column is inside the image: x_lo..x_hi.
    let x_lo = if off_x >= 0 {
        0
    } else {
        ((-off_x) as usize).div_ceil(sw)
    };
    let x_hi = if (g.w as isize) <= off_x {
        0
    } else {
        ((g.w as isize - off_x) as usize).div_ceil(sw).min(g.w_out)
    };
    for (y, out) in row.chunks_exact_mut(g.w_out).enumerate() {
        let iy = (y * sh) as isize + off_y;
        if iy < 0 || iy >= g.h as isize || x_lo >= x_hi {
            out.fill(0.0);
            continue;
        }
        let src = &plane[iy as usize * g.w..(iy as usize + 1) * g.w];
        out[..x_lo].fill(0.0);
        out[x_hi..].fill(0.0);
        let start = (x_lo * sw) as isize + off_x;
        if sw == 1 {
            let s = start as usize;
            out[x_lo..x_hi].copy_from_slice(&src[s..s + (x_hi - x_lo)]);
        } else {
            for (j, o) in out[x_lo..x_hi].iter_mut().enumerate() {
                *o = src[start as usize + j * sw];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Activation;

    #[test]
    #[ignore]
    fn bench_gemm_conv_parts() {
        let g = ConvGeom {
            c_in: 64,
            c_out: 64,
            group: 1,
            h: 56,
            w: 56,
            kh: 3,
            kw: 3,
            stride: [1, 1],
            dilation: [1, 1],
            pads: [1; 4],
            h_out: 56,
            w_out: 56,
        };
        let k = 64 * 9;
        let p = 56 * 56;
        let x: Vec<f32> = (0..64 * p).map(|i| (i % 13) as f32 * 0.1).collect();
        let w: Vec<f32> = (0..64 * k).map(|i| (i % 7) as f32 * 0.01).collect();
        let mut col = vec![0.0; k * p];
        let mut y = vec![0.0; 64 * p];
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        pool.install(|| {
            let n = 20;
            let t = std::time::Instant::now();
            for _ in 0..n {
                im2col(&g, &x, &mut col);
            }
            eprintln!("im2col {:?}", t.elapsed() / n);
            let t = std::time::Instant::now();
            for _ in 0..n {
                // SAFETY: y is 64 x p, w 64 x k, col k x p.
                unsafe {
                    crate::kernels::sgemm(
                        (64, p, k),
                        y.as_mut_ptr(),
                        p,
                        false,
                        (w.as_ptr(), k, 1),
                        (col.as_ptr(), p, 1),
                        1.0,
                        1,
                    );
                }
            }
            let d = t.elapsed() / n;
            eprintln!(
                "gemm {:?} = {:.1} GFLOP/s",
                d,
                2.0 * (64 * p * k) as f64 / d.as_secs_f64() / 1e9
            );
            let b = vec![0.5f32; 64];
            let t = std::time::Instant::now();
            for _ in 0..n {
                preload(&mut y, None, None, Some(&b), p);
                crate::kernels::eltwise::activation(Activation::Relu, None, &mut y);
            }
            eprintln!("preload+act {:?}", t.elapsed() / n);
        });
    }
}
