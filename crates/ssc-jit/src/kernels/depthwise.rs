//! Dense depthwise 3x3 convolutions (stride 1 or 2) as a direct kernel: nine shifted
//! multiply-adds per block of 32 outputs held in registers, then the bias, residuals and
//! activation per output row.
//!
//! Why not the sparse-weight kernel (`StreamConv`): a dense depthwise channel has only nine
//! weights, so working per weight saves nothing, while that kernel's per-channel call and
//! separate epilogue pass cost most of the time on small planes (MobileNetV2's 14x14 and 7x7
//! layers ran at 5-9 GFLOP/s in its Cranelift form). This kernel is plain Rust run as AVX2 + FMA
//! code (`par::simd`), 8 lanes per instruction. Sparse or unified depthwise weights still go to
//! `StreamConv`, where skipping zeros and summing equal weights pays.
//!
//! Per channel the input is copied once into zero-padded planes in the task's scratch, split
//! into `S x S` phases for stride `S` (`P[py][px][i][j] = pad[S*i + py][S*j + px]`), all with the
//! row stride `row`. Tap `(ky, kx)` of output `(y, x)` then reads phase `(ky % S, kx % S)` at
//! flat index `y*row + x + (ky / S)*row + kx / S`: over the flat index `y*row + x` every tap is
//! one contiguous stream, as in `StreamConv`, so small planes (7x7) vectorise as well as
//! large ones. Columns `x >= w_out` compute garbage that the epilogue skips.

use crate::kernels::par::par_units;
use crate::spec::{ConvGeom, Epilogue};

/// Output floats computed per register block (4 AVX2 vectors).
const BLOCK: usize = 32;

/// A depthwise (group = c_in = c_out) 3x3 convolution with stride 1 or 2 and no dilation.
pub(crate) struct Depthwise {
    geom: ConvGeom,
    /// `[c][9]`, ONNX order.
    weights: Vec<f32>,
    epi: Epilogue,
    /// Row stride of the phase planes (`w_out + 2 / S`).
    row: usize,
    /// Floats of one phase plane, slack included.
    phase_len: usize,
    /// Flat outputs computed per channel: `h_out * row` rounded up to [`BLOCK`].
    n: usize,
    threads: usize,
}

impl Depthwise {
    /// Whether this kernel computes `g`.
    pub(crate) fn suits(g: &ConvGeom) -> bool {
        g.group == g.c_in
            && g.c_out == g.c_in
            && g.kh == 3
            && g.kw == 3
            && g.stride[0] == g.stride[1]
            && (g.stride[0] == 1 || g.stride[0] == 2)
            && g.dilation == [1, 1]
            && g.h_out >= 1
            && g.w_out >= 1
    }

    /// `weights` is ONNX's `[c, 1, 3, 3]`; the caller checked [`Depthwise::suits`].
    pub(crate) fn new(geom: ConvGeom, weights: Vec<f32>, epi: Epilogue, threads: usize) -> Self {
        debug_assert!(Depthwise::suits(&geom));
        let s = geom.stride[0];
        // Taps shift by up to 2 / S rows and columns within a phase.
        let shift = 2 / s;
        let row = geom.w_out + shift;
        let n = (geom.h_out * row).div_ceil(BLOCK) * BLOCK;
        // Reads reach flat index n - 1 + shift * row + shift.
        let phase_len = (n + shift * row + shift).div_ceil(row) * row;
        Depthwise {
            geom,
            weights,
            epi,
            row,
            phase_len,
            n,
            threads: threads.max(1),
        }
    }

    /// Floats of one task's scratch: the phase planes, then the accumulators.
    fn slot_len(&self) -> usize {
        let s = self.geom.stride[0];
        s * s * self.phase_len + self.n
    }

    /// f32 elements of scratch one image needs: one slot per thread.
    pub(crate) fn scratch_len(&self) -> usize {
        self.threads * self.slot_len()
    }

    /// One image: `input` is `[c, h, w]`; `output` and the residuals `[c, h_out, w_out]`.
    pub(crate) fn run(
        &self,
        input: &[f32],
        res: [Option<&[f32]>; 2],
        output: &mut [f32],
        scratch: &mut [f32],
    ) {
        let g = self.geom;
        let (ip, op) = (g.h * g.w, g.h_out * g.w_out);
        let sl = self.slot_len();
        let slots = crate::kernels::par::SendPtr(scratch.as_mut_ptr());
        par_units(
            output,
            op,
            8,
            #[inline(always)]
            |c0, part| {
                let slot = rayon::current_thread_index().unwrap_or(0) % self.threads;
                // SAFETY: each pool thread owns slot `slot` of the scratch (sized for `threads`
                // slots), and a thread runs one task at a time.
                let mine =
                    unsafe { std::slice::from_raw_parts_mut(slots.get().add(slot * sl), sl) };
                let (planes, acc) = mine.split_at_mut(sl - self.n);
                for (i, out) in part.chunks_exact_mut(op).enumerate() {
                    let borders = i == 0;
                    let c = c0 + i;
                    let x = &input[c * ip..(c + 1) * ip];
                    let r = res.map(|r| r.map(|r| &r[c * op..(c + 1) * op]));
                    let w: &[f32; 9] = self.weights[c * 9..c * 9 + 9].try_into().expect("9 taps");
                    let b = self.epi.bias.as_ref().map_or(0.0, |b| b[c]);
                    if g.stride[0] == 1 {
                        self.pad_channel::<1>(x, planes, borders);
                        self.taps::<1>(planes, w, b, acc);
                    } else {
                        self.pad_channel::<2>(x, planes, borders);
                        self.taps::<2>(planes, w, b, acc);
                    }
                    self.finish(acc, r, out);
                }
            },
        );
    }

    /// Copies channel `x` into the `S x S` phase planes of `planes`; with `borders` (stride 1),
    /// also the zeros outside the image (they stay from one channel to the next).
    #[inline(always)]
    fn pad_channel<const S: usize>(&self, x: &[f32], planes: &mut [f32], borders: bool) {
        if S == 2 {
            self.pad_channel_s2(x, planes);
        } else {
            self.pad_channel_s1(x, planes, borders);
        }
    }

    /// Stride 1: one plane, rows copied into the padded frame.
    #[inline(always)]
    fn pad_channel_s1(&self, x: &[f32], plane: &mut [f32], borders: bool) {
        let g = &self.geom;
        let (pt, pl, n) = (g.pads[0], g.pads[1], self.row);
        // Columns j whose padded column j is input column j - pl in 0..w.
        let lo = pl.min(n);
        let hi = (g.w + pl).clamp(lo, n);
        for (r, dst) in plane[..self.phase_len].chunks_exact_mut(n).enumerate() {
            if r < pt || r - pt >= g.h || lo == hi {
                if borders {
                    dst.fill(0.0);
                }
                continue;
            }
            if borders {
                dst[..lo].fill(0.0);
                dst[hi..].fill(0.0);
            }
            let line = &x[(r - pt) * g.w..(r - pt + 1) * g.w];
            crate::kernels::copy_row(&mut dst[lo..hi], line);
        }
    }

    /// Stride 2: each padded row is split into its even and odd columns in one pass.
    #[inline(always)]
    fn pad_channel_s2(&self, x: &[f32], planes: &mut [f32]) {
        let g = &self.geom;
        let (pt, pl, n) = (g.pads[0], g.pads[1], self.row);
        // Phases (py, px) in order (0, 0), (0, 1), (1, 0), (1, 1).
        let (top, bottom) = planes.split_at_mut(2 * self.phase_len);
        for (py, pair) in [top, bottom].into_iter().enumerate() {
            let (even, odd) = pair.split_at_mut(self.phase_len);
            for (i, (e, o)) in even
                .chunks_exact_mut(n)
                .zip(odd.chunks_exact_mut(n))
                .enumerate()
            {
                let r = 2 * i + py;
                if r < pt || r - pt >= g.h {
                    e.fill(0.0);
                    o.fill(0.0);
                } else {
                    crate::kernels::split_row(&x[(r - pt) * g.w..(r - pt + 1) * g.w], pl, e, o);
                }
            }
        }
    }

    /// `acc[i] = bias + sum_k w[k] * tap_k[i]` over the flat index, [`BLOCK`] outputs at a time
    /// in registers.
    #[inline(always)]
    fn taps<const S: usize>(&self, planes: &[f32], w: &[f32; 9], bias: f32, acc: &mut [f32]) {
        let row = self.row;
        let t: [&[f32]; 9] = std::array::from_fn(|k| {
            let (ky, kx) = (k / 3, k % 3);
            let at = ((ky % S) * S + kx % S) * self.phase_len + (ky / S) * row + kx / S;
            &planes[at..at + self.n]
        });
        for (b, a) in acc.chunks_exact_mut(BLOCK).enumerate() {
            let mut v = [bias; BLOCK];
            for (k, t) in t.iter().enumerate() {
                let src: &[f32; BLOCK] = t[b * BLOCK..(b + 1) * BLOCK].try_into().expect("block");
                for (v, &x) in v.iter_mut().zip(src) {
                    *v = w[k].mul_add(x, *v);
                }
            }
            a.copy_from_slice(&v);
        }
    }

    /// The valid columns of `acc` to the output rows, with the residuals and the activation.
    #[inline(always)]
    fn finish(&self, acc: &[f32], res: [Option<&[f32]>; 2], out: &mut [f32]) {
        let (wo, row) = (self.geom.w_out, self.row);
        for (y, o) in out.chunks_exact_mut(wo).enumerate() {
            let r = res.map(|r| r.map(|r| &r[y * wo..(y + 1) * wo]));
            crate::kernels::epilogue(Some(&acc[y * row..y * row + wo]), 0.0, r, o, self.epi.act);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Activation;
    use crate::testutil::{in_pool, pattern, reference_conv, rel_err};

    /// A depthwise 3x3 geometry: `c` channels of `h x w`, stride `s`, `pads`.
    fn dw_geom(c: usize, h: usize, w: usize, s: usize, pads: [usize; 4]) -> ConvGeom {
        ConvGeom {
            c_in: c,
            c_out: c,
            group: c,
            h,
            w,
            kh: 3,
            kw: 3,
            stride: [s, s],
            dilation: [1, 1],
            pads,
            h_out: (h + pads[0] + pads[2] - 3) / s + 1,
            w_out: (w + pads[1] + pads[3] - 3) / s + 1,
        }
    }

    #[test]
    fn matches_the_reference_convolution() {
        // (c, h, w, stride, pads): odd and even sizes, both strides, asymmetric and zero pads.
        let cases = [
            (8, 7, 7, 1, [1; 4]),
            (5, 8, 9, 2, [1; 4]),
            (3, 9, 6, 2, [0, 1, 1, 0]),
            (4, 5, 5, 1, [0; 4]),
            (16, 14, 14, 2, [1, 1, 0, 0]),
            (2, 3, 17, 1, [2, 0, 1, 2]),
        ];
        for (c, h, w, s, pads) in cases {
            let g = dw_geom(c, h, w, s, pads);
            assert!(Depthwise::suits(&g));
            let x = pattern(c * h * w, 37, 101, 0.02);
            let wt = pattern(c * 9, 53, 97, 0.01);
            let p = g.h_out * g.w_out;
            let res: Vec<f32> = (0..c * p).map(|i| (i % 7) as f32 * 0.3 - 1.0).collect();
            for (threads, residual, act) in [
                (1, false, Activation::None),
                (2, true, Activation::Clip(0.0, 0.5)),
            ] {
                let epi = Epilogue {
                    bias: Some((0..c).map(|k| k as f32 * 0.1 - 0.3).collect()),
                    residual,
                    act,
                };
                let r = [residual.then_some(&res[..]), None];
                let k = Depthwise::new(g, wt.clone(), epi.clone(), threads);
                let mut scratch = vec![f32::NAN; k.scratch_len()];
                let mut y = vec![f32::NAN; c * p];
                in_pool(threads, || k.run(&x, r, &mut y, &mut scratch));
                let e = rel_err(&y, &reference_conv(&g, &x, &wt, &epi, r));
                assert!(e < 1e-6, "{g:?} {act:?}: rel err {e:e}");
            }
        }
    }

    #[test]
    #[ignore]
    fn bench_mobilenet_shapes() {
        for (c, h, s) in [
            (32, 112, 1),
            (96, 112, 2),
            (144, 56, 1),
            (384, 14, 1),
            (960, 7, 1),
        ] {
            let g = dw_geom(c, h, h, s, [1; 4]);
            let o = g.h_out;
            let x: Vec<f32> = (0..c * h * h).map(|i| (i % 13) as f32 * 0.1).collect();
            let w: Vec<f32> = (0..c * 9).map(|i| (i % 7) as f32 * 0.01).collect();
            let epi = Epilogue {
                bias: Some(vec![0.1; c]),
                residual: false,
                act: Activation::Clip(0.0, 6.0),
            };
            let k = Depthwise::new(g, w, epi, 1);
            let mut scratch = vec![0.0; k.scratch_len()];
            let mut y = vec![0.0; c * o * o];
            crate::testutil::in_pool(1, || {
                let n = 50;
                let t = std::time::Instant::now();
                for _ in 0..n {
                    k.run(&x, [None, None], &mut y, &mut scratch);
                }
                let d = t.elapsed() / n;
                let macs = (c * o * o * 9) as f64;
                eprintln!(
                    "{c}x{h}x{h} s{s}: {d:?} ({:.1} GFLOP/s)",
                    2.0 * macs / d.as_secs_f64() / 1e9
                );
            });
        }
    }
}
