//! Dense convolution as GEMM: im2col (skipped for 1x1 stride-1 convs) feeding the `gemm`
//! crate, in L2-sized column tiles whose epilogue (bias, residuals, activation) runs right after
//! each tile's product, while it is still in cache. (`kernels::dense` picks this kernel or one of
//! the specialised dense ones per layer.)

use crate::kernels::epilogue_in_place;
use crate::kernels::par::{for_ranges, for_tasks, par_units, SendPtr};
use crate::spec::{ConvGeom, Epilogue};

/// A dense (possibly grouped) convolution with its weights in GEMM layout.
pub(crate) struct GemmConv {
    geom: ConvGeom,
    /// `[c_out, K]` with `K = c_in/group * kh * kw`: ONNX's layout is already this.
    weights: Vec<f32>,
    epi: Epilogue,
    /// 1x1, no padding: the column matrix is the input itself (stride 1) or its phase-(0, 0)
    /// image (a strided 1x1 conv: the input subsampled, one copy; see [`Phases`]), read in place.
    direct: bool,
    /// A strided `direct` conv, whose columns are the phase-(0, 0) image.
    subsample: bool,
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
        // With a 1x1 kernel and no padding, the phase-(0, 0) image is `ceil(h / sh) x
        // ceil(w / sw)`, which is the output's extent: it is the column matrix.
        let direct = geom.kh == 1 && geom.kw == 1 && geom.pads == [0; 4];
        let subsample = direct && geom.stride != [1, 1];
        let k = geom.cin_g() * geom.kh * geom.kw;
        let p = geom.h_out * geom.w_out;
        // Column tiles: the im2col block (k x chunk) and the output block (cout_g x chunk) each
        // fit in L2, so the tile's epilogue runs on data still in cache and the output is written
        // to memory once. Each tile is multiplied by one thread; worth it when there are enough
        // tiles to share out (else one whole-image product with gemm's own threading).
        let chunk = (TILE_BYTES / 4 / k.max(geom.cout_g()).max(1)).max(64) / 16 * 16;
        let tiles = geom.group * p.div_ceil(chunk);
        let chunk = if tiles < 2 * threads.max(1) {
            0
        } else {
            chunk.min(p)
        };
        GemmConv {
            geom,
            weights,
            epi,
            direct,
            subsample,
            chunk,
            threads: threads.max(1),
        }
    }

    fn k(&self) -> usize {
        self.geom.cin_g() * self.geom.kh * self.geom.kw
    }

    /// f32 elements of the phase images at the start of the scratch: all of them, only the
    /// phase-(0, 0) image of a strided 1x1 conv, none for a 1x1 conv read in place.
    fn phases_len(&self) -> usize {
        let g = &self.geom;
        if self.subsample {
            g.c_in * g.h_out * g.w_out
        } else if self.direct {
            0
        } else {
            Phases::of(g).len()
        }
    }

    /// f32 elements of scratch one image needs: the phase images (see [`Phases`]), then one
    /// column tile per thread or the column matrix of one group (none for a 1x1 conv, which
    /// reads its columns in place).
    pub(crate) fn scratch_len(&self) -> usize {
        let cols = if self.direct {
            0
        } else if self.chunk > 0 {
            self.threads * self.k() * self.chunk
        } else {
            self.k() * self.geom.h_out * self.geom.w_out
        };
        self.phases_len() + cols
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
        let res = [residual, residual2];
        let (phases, scratch) = scratch.split_at_mut(self.phases_len());
        if !phases.is_empty() {
            Phases::of(g).fill(g, input, phases);
        }
        let phases: &[f32] = phases;
        // A direct conv's column matrix: the input, or its phase-(0, 0) image.
        let input = if self.subsample { phases } else { input };
        if self.chunk > 0 {
            self.run_tiled(input, phases, res, output, scratch);
        } else {
            self.run_whole(input, phases, res, output, scratch);
        }
    }

    /// The whole-image path (few output columns, so column tiles would not go round the
    /// threads): per group, the column matrix is built with its rows shared out, then the
    /// output channels are shared out: each task multiplies its own block of output rows
    /// single-threaded and applies their epilogue while they are in cache. On one thread both
    /// steps are one task: one product per group, then its epilogue. Against one product
    /// threaded by `gemm` and a sequential im2col (the previous multi-threaded form),
    /// ResNet-18's stride-2 3x3 layers at 14x14 and 7x7 went from 1.34x and 1.41x to 1.45x and
    /// 1.69x on 2 threads; its 7x7 stride-1 layers stayed at ~1.6x (`ssc-opt bench --kernels
    /// --threads`).
    fn run_whole(
        &self,
        input: &[f32],
        phases: &[f32],
        res: [Option<&[f32]>; 2],
        output: &mut [f32],
        scratch: &mut [f32],
    ) {
        let g = &self.geom;
        let (p, k) = (g.h_out * g.w_out, self.k());
        let (cin_g, cout_g) = (g.cin_g(), g.cout_g());
        let ph = Phases::of(g);
        let (bias, act) = (self.epi.bias.as_deref(), self.epi.act);
        // Output-row blocks of a multiple of 16 rows (gemm's micro-kernel height), about 4 per
        // thread.
        let parts = 4 * rayon::current_num_threads();
        let rows = (cout_g.div_ceil(parts).div_ceil(16) * 16).max(16);
        for grp in 0..g.group {
            let col: &[f32] = if self.direct {
                &input[grp * cin_g * p..(grp + 1) * cin_g * p]
            } else {
                let col = SendPtr(scratch.as_mut_ptr());
                for_ranges(
                    k,
                    8,
                    #[inline(always)]
                    move |r0, r1| {
                        // SAFETY: rows r0..r1 of the k x p column matrix at the start of the
                        // scratch, written by this task only.
                        let dst = unsafe {
                            std::slice::from_raw_parts_mut(col.get().add(r0 * p), (r1 - r0) * p)
                        };
                        im2col_rows(g, &ph, phases, grp * cin_g, 0, p, r0..r1, dst);
                    },
                );
                &scratch[..k * p]
            };
            let w = &self.weights[grp * cout_g * k..(grp + 1) * cout_g * k];
            let dst = &mut output[grp * cout_g * p..(grp + 1) * cout_g * p];
            par_units(
                dst,
                rows * p,
                1,
                #[inline(always)]
                |blk, part| {
                    let (m, c0) = (part.len() / p, grp * cout_g + blk * rows);
                    // SAFETY: `part` is output rows c0..c0 + m (row stride p); `w`'s rows from
                    // blk * rows are m x k and `col` is k x p, all in bounds.
                    unsafe {
                        crate::kernels::sgemm(
                            (m, p, k),
                            part.as_mut_ptr(),
                            p,
                            false,
                            (w[blk * rows * k..].as_ptr(), k, 1),
                            (col.as_ptr(), p, 1),
                            1.0,
                            1,
                        );
                    }
                    for (i, row) in part.chunks_exact_mut(p).enumerate() {
                        let c = c0 + i;
                        let r = res.map(|r| r.map(|r| &r[c * p..(c + 1) * p]));
                        epilogue_in_place(row, bias.map_or(0.0, |b| b[c]), r, act);
                    }
                },
            );
        }
    }

    /// The blocked path: tasks are (group, column tile); each builds its tile of the column
    /// matrix in its thread's part of `scratch` (or reads the input directly for a 1x1 conv),
    /// multiplies it single-threaded into its own columns of the output, and applies the
    /// epilogue to those columns while they are in cache.
    fn run_tiled(
        &self,
        input: &[f32],
        phases: &[f32],
        res: [Option<&[f32]>; 2],
        output: &mut [f32],
        scratch: &mut [f32],
    ) {
        let g = self.geom;
        let n_tasks = g.group * (g.h_out * g.w_out).div_ceil(self.chunk);
        let out = SendPtr(output.as_mut_ptr());
        let scr = SendPtr(scratch.as_mut_ptr());
        for_tasks(n_tasks, self.threads, |t, slot| {
            self.tile(t, slot, input, phases, res, out, scr)
        });
    }

    /// Task `t` of [`run_tiled`](Self::run_tiled), on the thread owning scratch tile `slot`:
    /// `out` is the `c_out x p` output and `scr` the scratch after the phase images.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn tile(
        &self,
        t: usize,
        slot: usize,
        input: &[f32],
        phases: &[f32],
        res: [Option<&[f32]>; 2],
        out: SendPtr,
        scr: SendPtr,
    ) {
        let g = &self.geom;
        let (p, k, chunk) = (g.h_out * g.w_out, self.k(), self.chunk);
        let (cin_g, cout_g) = (g.cin_g(), g.cout_g());
        let tiles = p.div_ceil(chunk);
        let (grp, c0) = (t / tiles, (t % tiles) * chunk);
        let n = chunk.min(p - c0);
        let (col, col_rs): (&[f32], usize) = if self.direct {
            (&input[grp * cin_g * p + c0..], p)
        } else {
            // SAFETY: each pool thread owns tile slot `slot` of the scratch (sized for
            // `threads` tiles) and runs one task at a time.
            let col =
                unsafe { std::slice::from_raw_parts_mut(scr.get().add(slot * k * chunk), k * n) };
            im2col_rows(g, &Phases::of(g), phases, grp * cin_g, c0, n, 0..k, col);
            (col, n)
        };
        let w = &self.weights[grp * cout_g * k..(grp + 1) * cout_g * k];
        // SAFETY: the destination is rows [grp*cout_g, +cout_g) x columns [c0, c0+n) of the
        // c_out x p output (row stride p), written by this task only; `w` is cout_g x k and
        // `col` k x n with row stride `col_rs`, in bounds by construction.
        unsafe {
            crate::kernels::sgemm(
                (cout_g, n, k),
                out.get().add(grp * cout_g * p + c0),
                p,
                false,
                (w.as_ptr(), k, 1),
                (col.as_ptr(), col_rs, 1),
                1.0,
                1,
            );
        }
        let (bias, act) = (self.epi.bias.as_deref(), self.epi.act);
        for c in grp * cout_g..(grp + 1) * cout_g {
            let at = c * p + c0;
            // SAFETY: this task's own columns of output row `c`, just written above.
            let row = unsafe { std::slice::from_raw_parts_mut(out.get().add(at), n) };
            let r = res.map(|r| r.map(|r| &r[at..at + n]));
            epilogue_in_place(row, bias.map_or(0.0, |b| b[c]), r, act);
        }
    }
}

/// The input zero-padded and split into `stride_h * stride_w` phase images, so that every
/// im2col row segment is one contiguous copy: padded pixel `(r, q)` of channel `c` lives in
/// phase `(r % sh, q % sw)` at `(r / sh, q / sw)`, and tap `(ky, kx)` of output pixel `(y, x)`
/// reads padded pixel `(y*sh + ky*dh, x*sw + kx*dw)`, i.e. phase `((ky*dh) % sh, (kx*dw) % sw)`
/// at `(y + (ky*dh) / sh, x + (kx*dw) / sw)`.
#[derive(Clone, Copy)]
pub(crate) struct Phases {
    pub(crate) sh: usize,
    pub(crate) sw: usize,
    c: usize,
    /// Phase image height and width: the padded extent divided by the stride, rounded up.
    pub(crate) hq: usize,
    pub(crate) wq: usize,
}

impl Phases {
    pub(crate) fn of(g: &ConvGeom) -> Phases {
        let (sh, sw) = (g.stride[0], g.stride[1]);
        let hp = g.h + g.pads[0] + g.pads[2];
        let wp = g.w + g.pads[1] + g.pads[3];
        Phases {
            sh,
            sw,
            c: g.c_in,
            hq: hp.div_ceil(sh),
            wq: wp.div_ceil(sw),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.sh * self.sw * self.c * self.hq * self.wq
    }

    /// Start of channel `c`'s image of phase `(py, px)`.
    pub(crate) fn plane(&self, py: usize, px: usize, c: usize) -> usize {
        ((py * self.sw + px) * self.c + c) * self.hq * self.wq
    }

    /// Offset from an output pixel's position `y * wq + x` (in phase-image coordinates) to
    /// what channel `c`'s tap at `(ty, tx)` (kernel cell times dilation) reads: phase
    /// `(ty % sh, tx % sw)` at `(ty / sh, tx / sw)`.
    pub(crate) fn tap(&self, c: usize, ty: usize, tx: usize) -> u32 {
        let o = self.plane(ty % self.sh, tx % self.sw, c) + (ty / self.sh) * self.wq + tx / self.sw;
        u32::try_from(o).expect("phase images under 2^32 floats")
    }

    /// [`Phases::tap`] for every tap of a group of `g` whose first input channel is `c0`, in
    /// ONNX's weight order `(ci, ky, kx)`.
    pub(crate) fn taps<'a>(&'a self, g: &'a ConvGeom, c0: usize) -> impl Iterator<Item = u32> + 'a {
        (0..g.cin_g() * g.kh * g.kw).map(move |k| {
            let ci = c0 + k / (g.kh * g.kw);
            let ty = ((k / g.kw) % g.kh) * g.dilation[0];
            self.tap(ci, ty, (k % g.kw) * g.dilation[1])
        })
    }

    /// Writes the phase images of `x` (`[c_in, h, w]`) that some tap reads, channels in
    /// parallel (`out` must reach the last of them: a 1x1 conv reads phase (0, 0) only, whose
    /// planes come first); cells past the padded extent (when it does not divide by the stride)
    /// are zero and never read.
    pub(crate) fn fill(&self, g: &ConvGeom, x: &[f32], out: &mut [f32]) {
        let me = *self;
        let g = *g;
        let used = |phase: usize, taps: usize, dil: usize, stride: usize| {
            (0..taps).any(|t| (t * dil) % stride == phase)
        };
        let last = (0..me.sh * me.sw)
            .rev()
            .filter(|&i| used(i / me.sw, g.kh, g.dilation[0], me.sh))
            .find(|&i| used(i % me.sw, g.kw, g.dilation[1], me.sw))
            .map_or(0, |i| {
                me.plane(i / me.sw, i % me.sw, me.c - 1) + me.hq * me.wq
            });
        assert!(last <= out.len(), "phase images overrun the scratch");
        let ptr = SendPtr(out.as_mut_ptr());
        for_ranges(
            self.c,
            1,
            #[inline(always)]
            move |b, e| {
                for c in b..e {
                    let src = &x[c * g.h * g.w..(c + 1) * g.h * g.w];
                    for py in (0..me.sh).filter(|&py| used(py, g.kh, g.dilation[0], me.sh)) {
                        for px in (0..me.sw).filter(|&px| used(px, g.kw, g.dilation[1], me.sw)) {
                            let at = me.plane(py, px, c);
                            // SAFETY: each task writes the planes of its own channels only,
                            // all inside `out` (asserted above).
                            let dst = unsafe {
                                std::slice::from_raw_parts_mut(ptr.get().add(at), me.hq * me.wq)
                            };
                            me.fill_plane(&g, src, py, px, dst);
                        }
                    }
                }
            },
        );
    }

    #[inline(always)]
    fn fill_plane(&self, g: &ConvGeom, src: &[f32], py: usize, px: usize, dst: &mut [f32]) {
        let sw = self.sw;
        // Columns j whose padded column j*sw + px is input column j*sw + px - pad_left in 0..w.
        let j_lo = g.pads[1].saturating_sub(px).div_ceil(sw).min(self.wq);
        let j_hi = (g.w + g.pads[1])
            .saturating_sub(px)
            .div_ceil(sw)
            .clamp(j_lo, self.wq);
        for (i, row) in dst.chunks_exact_mut(self.wq).enumerate() {
            // Padded row r = i*sh + py is input row r - pad_top.
            let r = i * self.sh + py;
            if r < g.pads[0] || r >= g.pads[0] + g.h || j_lo == j_hi {
                row.fill(0.0);
                continue;
            }
            let line = &src[(r - g.pads[0]) * g.w..(r - g.pads[0] + 1) * g.w];
            row[..j_lo].fill(0.0);
            row[j_hi..].fill(0.0);
            let s = &line[j_lo * sw + px - g.pads[1]..];
            let d = &mut row[j_lo..j_hi];
            // Constant strides 1 and 2 vectorise (a copy, a deinterleave).
            match sw {
                1 => d.copy_from_slice(&s[..d.len()]),
                2 => {
                    // Whole pairs as a fixed-width deinterleave; the last element of an odd
                    // row alone.
                    let n = d.len().min(s.len() / 2);
                    for (d, p) in d[..n].iter_mut().zip(s.chunks_exact(2)) {
                        *d = p[0];
                    }
                    if n < d.len() {
                        d[n] = s[2 * n];
                    }
                }
                _ => {
                    for (d, v) in d.iter_mut().zip(s.iter().step_by(sw)) {
                        *d = *v;
                    }
                }
            }
        }
    }
}

/// Rows `rows` and columns `c0..c0+n` of the column matrix of the group whose first input
/// channel is `c_base` (`[cin_g*kh*kw, n]`; `col` holds the rows asked for, row stride `n`),
/// copied out of the phase images.
#[allow(clippy::too_many_arguments)]
fn im2col_rows(
    g: &ConvGeom,
    ph: &Phases,
    phases: &[f32],
    c_base: usize,
    c0: usize,
    n: usize,
    rows: std::ops::Range<usize>,
    col: &mut [f32],
) {
    let first = rows.start;
    for r in rows {
        let ci = r / (g.kh * g.kw);
        let (ty, tx) = (
            ((r / g.kw) % g.kh) * g.dilation[0],
            (r % g.kw) * g.dilation[1],
        );
        let plane = &phases[ph.plane(ty % ph.sh, tx % ph.sw, c_base + ci)..][..ph.hq * ph.wq];
        let (dy, dx) = (ty / ph.sh, tx / ph.sw);
        let out = &mut col[(r - first) * n..(r - first + 1) * n];
        // One contiguous copy per output row the tile touches.
        let mut p = c0;
        while p < c0 + n {
            let (y, xs) = (p / g.w_out, p % g.w_out);
            let len = (g.w_out - xs).min(c0 + n - p);
            let src = (y + dy) * ph.wq + xs + dx;
            out[p - c0..p - c0 + len].copy_from_slice(&plane[src..src + len]);
            p += len;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Activation;
    use crate::testutil::{in_pool, pattern, reference_conv, rel_err};

    /// Every path (1x1 read in place, im2col; column tiles or one whole-image product, on one
    /// thread or with the output rows shared out) against the reference convolution, with
    /// groups, strides, dilation, pads and two residuals.
    #[test]
    fn matches_the_reference_convolution() {
        // (c_in, c_out, group, h, w, k, stride, dilation, pads)
        let cases = [
            (8, 40, 1, 9, 11, 3, 1, 1, [1; 4]),
            (6, 36, 3, 10, 7, 3, 2, 1, [1, 0, 2, 1]),
            (16, 48, 1, 12, 12, 1, 1, 1, [0; 4]),
            (4, 8, 2, 9, 9, 3, 1, 2, [2; 4]),
            (3, 20, 1, 23, 21, 7, 2, 1, [3; 4]),
            (32, 64, 1, 80, 80, 1, 1, 1, [0; 4]),
            (16, 32, 2, 40, 40, 3, 1, 1, [1; 4]),
            // Strided 1x1: the phase-(0, 0) image read in place (odd and even extents), and
            // with padding, through im2col with the unread phases left unwritten.
            (16, 24, 2, 11, 9, 1, 2, 1, [0; 4]),
            (32, 64, 1, 56, 56, 1, 2, 1, [0; 4]),
            (8, 12, 1, 10, 9, 1, 3, 1, [1, 0, 2, 1]),
        ];
        for (ci, co, grp, h, w, k, s, d, pads) in cases {
            let g = ConvGeom {
                c_in: ci,
                c_out: co,
                group: grp,
                h,
                w,
                kh: k,
                kw: k,
                stride: [s, s],
                dilation: [d, d],
                pads,
                h_out: (h + pads[0] + pads[2] - d * (k - 1) - 1) / s + 1,
                w_out: (w + pads[1] + pads[3] - d * (k - 1) - 1) / s + 1,
            };
            let x = pattern(ci * h * w, 37, 101, 0.02);
            let wt = pattern(co * (ci / grp) * k * k, 53, 97, 0.01);
            let n = co * g.h_out * g.w_out;
            let r1 = pattern(n, 7, 11, 0.3);
            let r2 = pattern(n, 5, 13, 0.2);
            for (threads, residuals, act) in [
                (1, 0, Activation::Relu),
                (2, 1, Activation::None),
                (2, 2, Activation::Clip(-0.5, 0.5)),
                (1, 1, Activation::HardSwish),
                (2, 0, Activation::Silu),
            ] {
                let epi = Epilogue {
                    bias: Some(pattern(co, 3, 17, 0.1)),
                    residual: residuals > 0,
                    act,
                };
                let r = [
                    (residuals > 0).then_some(&r1[..]),
                    (residuals > 1).then_some(&r2[..]),
                ];
                let kern = GemmConv::new(g, wt.clone(), epi.clone(), threads);
                let mut scratch = vec![f32::NAN; kern.scratch_len()];
                let mut y = vec![f32::NAN; n];
                in_pool(threads, || kern.run(&x, r[0], r[1], &mut y, &mut scratch));
                let e = rel_err(&y, &reference_conv(&g, &x, &wt, &epi, r));
                assert!(
                    e < 1e-5,
                    "{g:?} {threads} threads, chunk {}: rel err {e:e}",
                    kern.chunk
                );
            }
        }
    }

    #[test]
    #[ignore]
    fn bench_stem() {
        // ResNet's 7x7 stride-2 stem: the whole conv, then its im2col tiles alone.
        let g = ConvGeom {
            c_in: 3,
            c_out: 64,
            group: 1,
            h: 224,
            w: 224,
            kh: 7,
            kw: 7,
            stride: [2, 2],
            dilation: [1, 1],
            pads: [3; 4],
            h_out: 112,
            w_out: 112,
        };
        let x: Vec<f32> = (0..3 * 224 * 224).map(|i| (i % 13) as f32 * 0.1).collect();
        let w: Vec<f32> = (0..64 * 147).map(|i| (i % 7) as f32 * 0.01).collect();
        let conv = GemmConv::new(g, w, Epilogue::default(), 1);
        let mut scratch = vec![0.0; conv.scratch_len()];
        let mut y = vec![0.0; 64 * 112 * 112];
        crate::testutil::in_pool(1, || {
            for _ in 0..3 {
                let t = std::time::Instant::now();
                for _ in 0..10 {
                    conv.run(&x, None, None, &mut y, &mut scratch);
                }
                eprintln!("stem conv {:?} (chunk {})", t.elapsed() / 10, conv.chunk);
                let t = std::time::Instant::now();
                let p = 112 * 112;
                let ph = Phases::of(&g);
                let (phases, cols) = scratch.split_at_mut(ph.len());
                for _ in 0..10 {
                    ph.fill(&g, &x, phases);
                    let mut c0 = 0;
                    while c0 < p {
                        let n = conv.chunk.max(1).min(p - c0);
                        im2col_rows(&g, &ph, phases, 0, c0, n, 0..147, &mut cols[..147 * n]);
                        c0 += n;
                    }
                }
                eprintln!("stem phases + im2col tiles {:?}", t.elapsed() / 10);
            }
        });
    }

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
        crate::testutil::in_pool(1, || {
            let n = 20;
            let t = std::time::Instant::now();
            for _ in 0..n {
                let ph = Phases::of(&g);
                let mut phases = vec![0.0; ph.len()];
                ph.fill(&g, &x, &mut phases);
                im2col_rows(&g, &ph, &phases, 0, 0, p, 0..k, &mut col);
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
            let t = std::time::Instant::now();
            for _ in 0..n {
                for row in y.chunks_exact_mut(p) {
                    epilogue_in_place(row, 0.5, [None, None], Activation::Relu);
                }
            }
            eprintln!("epilogue {:?}", t.elapsed() / n);
        });
    }
}

#[cfg(test)]
mod shape_bench {
    use super::*;

    /// MobileNetV2's 1x1 shapes through the conv kernel (tiled) and as one whole GEMM.
    #[test]
    #[ignore]
    fn bench_pointwise_shapes() {
        for (cin, cout, hw) in [
            (16, 96, 112),
            (96, 24, 56),
            (24, 144, 56),
            (144, 24, 56),
            (32, 192, 28),
            (64, 384, 14),
            (384, 64, 14),
            (160, 960, 7),
            (960, 160, 7),
            (320, 1280, 7),
        ] {
            let g = ConvGeom {
                c_in: cin,
                c_out: cout,
                group: 1,
                h: hw,
                w: hw,
                kh: 1,
                kw: 1,
                stride: [1, 1],
                dilation: [1, 1],
                pads: [0; 4],
                h_out: hw,
                w_out: hw,
            };
            let p = hw * hw;
            let x: Vec<f32> = (0..cin * p).map(|i| (i % 13) as f32 * 0.1).collect();
            let w: Vec<f32> = (0..cout * cin).map(|i| (i % 7) as f32 * 0.01).collect();
            let epi = Epilogue {
                bias: Some(vec![0.1; cout]),
                residual: false,
                act: crate::spec::Activation::Clip(0.0, 6.0),
            };
            let conv = GemmConv::new(g, w.clone(), epi, 1);
            let mut scratch = vec![0.0; conv.scratch_len()];
            let mut y = vec![0.0; cout * p];
            crate::testutil::in_pool(1, || {
                let n = 30;
                let gf =
                    |d: std::time::Duration| 2.0 * (cin * cout * p) as f64 / d.as_secs_f64() / 1e9;
                let t = std::time::Instant::now();
                for _ in 0..n {
                    // SAFETY: y is cout x p, w cout x cin, x cin x p.
                    unsafe {
                        crate::kernels::sgemm(
                            (cout, p, cin),
                            y.as_mut_ptr(),
                            p,
                            false,
                            (w.as_ptr(), cin, 1),
                            (x.as_ptr(), p, 1),
                            1.0,
                            1,
                        );
                    }
                }
                let d2 = t.elapsed() / n;
                let t = std::time::Instant::now();
                for _ in 0..n {
                    conv.run(&x, None, None, &mut y, &mut scratch);
                }
                let d1 = t.elapsed() / n;
                eprintln!(
                    "{cin:>4}->{cout:<5} {hw:>3}x{hw:<3} conv {d1:>10.2?} ({:5.1} GF/s, chunk {})  whole gemm {d2:>10.2?} ({:5.1} GF/s)",
                    gf(d1), conv.chunk, gf(d2)
                );
            });
        }
    }
}

#[cfg(test)]
mod act_bench {
    use super::*;
    use crate::spec::Activation;
    use crate::testutil::{interleaved_ms, pattern};

    /// EfficientNet's first expansion (16 -> 96 on 112x112) with each epilogue activation,
    /// and the activations alone over the same output:
    /// `cargo test --release -p ssc-jit bench_conv_activations -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn bench_conv_activations() {
        let g = crate::testutil::conv_geom((16, 96, 1), (112, 112), (1, 1, 1), [0; 4]);
        let x = pattern(g.c_in * g.h * g.w, 37, 101, 0.02);
        let w = pattern(g.c_out * g.c_in, 53, 97, 0.01);
        let acts = [
            Activation::None,
            Activation::Relu,
            Activation::HardSwish,
            Activation::Silu,
        ];
        let convs: Vec<GemmConv> = acts
            .iter()
            .map(|&act| {
                let epi = Epilogue {
                    bias: Some(vec![0.1; g.c_out]),
                    residual: false,
                    act,
                };
                GemmConv::new(g, w.clone(), epi, 1)
            })
            .collect();
        let mut scratch = vec![0.0; convs[0].scratch_len()];
        let mut y = vec![0.0; g.c_out * g.h_out * g.w_out];
        let t: [f64; 8] = interleaved_ms(20, |i| {
            if i < 4 {
                convs[i].run(&x, None, None, &mut y, &mut scratch);
            } else {
                crate::kernels::par::simd(|| {
                    epilogue_in_place(&mut y, 0.1, [None, None], acts[i - 4])
                });
            }
        });
        for (i, a) in acts.iter().enumerate() {
            eprintln!(
                "{a:?}: conv {:.3} ms, activation alone {:.3} ms",
                t[i],
                t[i + 4]
            );
        }
    }
}
