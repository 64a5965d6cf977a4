//! Dense depthwise convolutions (3x3 or 5x5 at stride 1 or 2, 7x7 at stride 1) as a direct AVX2 kernel that reads
//! the NCHW input in place (`kernels::rows`) and writes each output vector once.
//!
//! Why not the sparse-weight kernel (`StreamConv`): a dense depthwise channel has only 9 or 25
//! weights, so working per weight saves nothing, while its padded copy of every channel and its
//! separate epilogue pass cost more than the taps (MobileNetV2's layers are memory-bound: about
//! two loads per multiply-add). Sparse or unified depthwise weights still go to `StreamConv`,
//! where skipping zeros and summing equal weights pays.
//!
//! Each block of 8 output columns starts from the bias and adds its `K x K` taps. Where all the
//! tap rows of 4 consecutive output rows lie inside the image, those rows are computed
//! together: each input row is loaded once for every output row it feeds, and the 4
//! independent sums keep both FMA units busy (one row's chain of dependent FMAs would leave
//! them waiting on the 4-cycle latency). Rows next to the top or bottom padding skip the tap
//! rows outside the image. A Relu or Clip with no residual is applied in registers before the
//! store; otherwise the residuals and the activation run over each batch of finished rows while
//! they are in L1 (`kernels::epilogue_in_place`, at least 256 outputs at a time so short rows
//! still vectorise). No scratch is needed. The kernel needs AVX2 + FMA; on other
//! hosts [`Depthwise::suits`] is false and these layers go to `StreamConv`.
//!
//! Measured single-threaded on MobileNetV2's shapes (`bench_mobilenet_shapes`, ignored; the
//! previous design copied each channel into zero-padded phase planes, ran nine flat streams
//! into an accumulator buffer and then a separate epilogue pass), interleaved in one process:
//! 0.55-0.85x the previous time at 112x112 stride 1, ~0.5x at stride 2 and ~0.55x on the
//! 14x14 and 7x7 layers. A padded copy for rows of 16 or fewer outputs (so every load is a
//! plain one) measured no faster and was dropped.

use crate::kernels::par::par_units;
use crate::kernels::rows::{Block, PlaneGeom};
use crate::spec::{ConvGeom, Epilogue};

/// A depthwise (group = c_in = c_out) 3x3, 5x5 or 7x7 convolution with stride 1 or 2 and no
/// dilation.
pub(crate) struct Depthwise {
    geom: ConvGeom,
    plane: PlaneGeom,
    /// `[c][k][k]`, ONNX order.
    weights: Vec<f32>,
    epi: Epilogue,
    /// The column blocks of an output row.
    blocks: Vec<Block>,
}

/// The plane geometry of `g` (its stride along the rows; `suits` checks the columns agree).
fn plane_of(g: &ConvGeom) -> PlaneGeom {
    let (hw, out, pads) = ([g.h, g.w], [g.h_out, g.w_out], [g.pads[0], g.pads[1]]);
    PlaneGeom::new(hw, out, g.kh, g.stride[0], pads)
}

impl Depthwise {
    /// Whether this kernel computes `g` on this host.
    pub(crate) fn suits(g: &ConvGeom) -> bool {
        g.group == g.c_in
            && g.c_out == g.c_in
            && g.kh == g.kw
            && (g.kh == 3 || g.kh == 5 || (g.kh == 7 && g.stride[0] == 1))
            && g.stride[0] == g.stride[1]
            && g.dilation == [1, 1]
            && plane_of(g).supported()
    }

    /// `weights` is ONNX's `[c, 1, k, k]`; the caller checked [`Depthwise::suits`].
    pub(crate) fn new(geom: ConvGeom, weights: Vec<f32>, epi: Epilogue) -> Self {
        debug_assert!(Depthwise::suits(&geom));
        let plane = plane_of(&geom);
        Depthwise {
            geom,
            plane,
            weights,
            epi,
            blocks: plane.blocks(),
        }
    }

    /// f32 elements of scratch one image needs: none.
    pub(crate) fn scratch_len(&self) -> usize {
        0
    }

    /// One image: `input` is `[c, h, w]`; `output` and the residuals `[c, h_out, w_out]`.
    pub(crate) fn run(
        &self,
        input: &[f32],
        res: [Option<&[f32]>; 2],
        output: &mut [f32],
        _scratch: &mut [f32],
    ) {
        let g = self.geom;
        let (ip, op, kk) = (g.h * g.w, g.h_out * g.w_out, g.kh * g.kw);
        assert!(input.len() >= g.c_in * ip && output.len() >= g.c_out * op);
        assert!(res.iter().flatten().all(|r| r.len() >= g.c_out * op));
        // Parts of at least ~16K outputs: a 7x7 channel takes ~100 cycles.
        par_units(
            &mut output[..g.c_out * op],
            op,
            (1 << 14) / op.max(1),
            #[inline(always)]
            |c0, part| {
                for (i, out) in part.chunks_exact_mut(op).enumerate() {
                    let c = c0 + i;
                    let ch = Channel {
                        x: &input[c * ip..(c + 1) * ip],
                        w: &self.weights[c * kk..(c + 1) * kk],
                        bias: self.epi.bias.as_ref().map_or(0.0, |b| b[c]),
                        res: res.map(|r| r.map(|r| &r[c * op..(c + 1) * op])),
                    };
                    self.channel(&ch, out);
                }
            },
        );
    }

    /// One channel, dispatched to the instantiation for its kernel size and stride.
    #[inline(always)]
    fn channel(&self, ch: &Channel, out: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `suits` (checked by the caller of `new`) requires AVX2 and FMA; `Channel`'s
        // slices have the lengths `channel_k` reads.
        unsafe {
            // Without residuals a Relu or Clip is applied in registers before the store.
            if self.clamp(ch).is_some() {
                match (self.geom.kh, self.geom.stride[0]) {
                    (3, 1) => self.channel_k::<3, 1, true>(ch, out),
                    (3, _) => self.channel_k::<3, 2, true>(ch, out),
                    (5, 1) => self.channel_k::<5, 1, true>(ch, out),
                    (5, _) => self.channel_k::<5, 2, true>(ch, out),
                    (_, 1) => self.channel_k::<7, 1, true>(ch, out),
                    _ => self.channel_k::<7, 2, true>(ch, out),
                }
            } else {
                match (self.geom.kh, self.geom.stride[0]) {
                    (3, 1) => self.channel_k::<3, 1, false>(ch, out),
                    (3, _) => self.channel_k::<3, 2, false>(ch, out),
                    (5, 1) => self.channel_k::<5, 1, false>(ch, out),
                    (5, _) => self.channel_k::<5, 2, false>(ch, out),
                    (_, 1) => self.channel_k::<7, 1, false>(ch, out),
                    _ => self.channel_k::<7, 2, false>(ch, out),
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!("the depthwise kernel runs on x86-64 with AVX2 only ({ch:p}, {out:p})")
    }

    /// The bounds `(lo, hi)` the activation clamps to, when it is applied in registers: a
    /// Relu (`hi` = inf) or a Clip, and no residual to add first. `max`/`min` against the bounds
    /// are `kernels::max_to`/`min_to`, as in the epilogue pass.
    #[inline(always)]
    fn clamp(&self, ch: &Channel) -> Option<(f32, f32)> {
        match (ch.res[0], self.epi.act) {
            (None, crate::spec::Activation::Relu) => Some((0.0, f32::INFINITY)),
            (None, crate::spec::Activation::Clip(lo, hi)) => Some((lo, hi)),
            _ => None,
        }
    }

    /// The residuals and the activation over output rows `rows` (just written, so in L1),
    /// when the epilogue has either and they were not applied in registers.
    #[inline(always)]
    fn epilogue(&self, ch: &Channel, rows: std::ops::Range<usize>, out: &mut [f32]) {
        let res = ch.res;
        if self.clamp(ch).is_some()
            || (res[0].is_none() && self.epi.act == crate::spec::Activation::None)
        {
            return;
        }
        let wo = self.geom.w_out;
        let span = rows.start * wo..rows.end * wo;
        let r = res.map(|r| r.map(|r| &r[span.clone()]));
        crate::kernels::epilogue_in_place(&mut out[span], 0.0, r, self.epi.act);
    }
}

/// One channel's operands: the input plane `[h, w]`, its `k x k` weights, bias and residual
/// planes `[h_out, w_out]`.
struct Channel<'a> {
    x: &'a [f32],
    w: &'a [f32],
    bias: f32,
    res: [Option<&'a [f32]>; 2],
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{Channel, Depthwise};
    use crate::kernels::rows::avx2::{store, Rows};
    use crate::kernels::rows::Block;

    /// Output rows computed together where all their taps lie inside the image.
    const ROWS: usize = 4;

    /// The activation applied before the store: `min(max(v, lo), hi)` with `CLAMP`, else
    /// nothing.
    struct Fin<const CLAMP: bool> {
        lo: __m256,
        hi: __m256,
    }

    impl<const CLAMP: bool> Fin<CLAMP> {
        #[inline(always)]
        fn apply(&self, v: __m256) -> __m256 {
            if CLAMP {
                // SAFETY: only called from code compiled for AVX2 (the kernel's functions).
                unsafe { _mm256_min_ps(_mm256_max_ps(v, self.lo), self.hi) }
            } else {
                v
            }
        }
    }

    impl Depthwise {
        /// The channel `ch` into `out` (`[h_out, w_out]`), `K x K` taps at stride `S`; with
        /// `CLAMP`, the activation applied in registers (`Depthwise::clamp` is `Some`).
        ///
        /// # Safety
        /// The host has AVX2 and FMA; `ch.x` holds `h * w` floats, `ch.w` `K * K`, `out` and
        /// each residual `h_out * w_out`.
        #[target_feature(enable = "avx2,fma")]
        pub(super) unsafe fn channel_k<const K: usize, const S: usize, const CLAMP: bool>(
            &self,
            ch: &Channel,
            out: &mut [f32],
        ) {
            let (g, wo) = (&self.plane, self.geom.w_out);
            debug_assert!(ch.x.len() == g.h * g.w && ch.w.len() == K * K);
            debug_assert!(out.len() == g.h_out * wo);
            let wv: [[__m256; K]; K] = std::array::from_fn(|ky| {
                std::array::from_fn(|kx| _mm256_set1_ps(ch.w[ky * K + kx]))
            });
            let bias = _mm256_set1_ps(ch.bias);
            let (lo, hi) = self.clamp(ch).unwrap_or((f32::NEG_INFINITY, f32::INFINITY));
            let fin = Fin::<CLAMP> {
                lo: _mm256_set1_ps(lo),
                hi: _mm256_set1_ps(hi),
            };
            let full = g.full_rows();
            // Rows whose residuals and activation are applied.
            let mut done = 0;
            let mut y = 0;
            while y < g.h_out {
                let r = Rows::new(ch.x, g, y);
                let n = if full.contains(&y) { full.end - y } else { 0 };
                // SAFETY (the three calls): the tap rows of the rows computed exist.
                y += if n >= ROWS {
                    unsafe { self.full_rows::<K, S, ROWS, CLAMP>(&r, y, &wv, bias, &fin, out) }
                } else if n >= 2 {
                    unsafe { self.full_rows::<K, S, 2, CLAMP>(&r, y, &wv, bias, &fin, out) }
                } else if n == 1 {
                    unsafe { self.full_rows::<K, S, 1, CLAMP>(&r, y, &wv, bias, &fin, out) }
                } else {
                    // A row next to the top or bottom padding.
                    let (lo, hi) = r.tap_rows(K);
                    for b in self.blocks.iter().rev() {
                        // SAFETY: rows lo..hi exist; `interior` or the masks keep every load
                        // inside its row; row y < h_out.
                        unsafe {
                            let acc = if b.interior {
                                edge_taps::<K, S, true>(&r, b, lo, hi, &wv, bias)
                            } else {
                                edge_taps::<K, S, false>(&r, b, lo, hi, &wv, bias)
                            };
                            store::<S>(fin.apply(acc), y, wo, b, out);
                        }
                    }
                    1
                };
                if (y - done) * wo >= 256 || y == g.h_out {
                    self.epilogue(ch, done..y, out);
                    done = y;
                }
            }
        }

        /// Output rows `y..y + R`, all of whose tap rows exist, into `out` (bias included,
        /// residuals and activation not yet); returns `R`.
        ///
        /// # Safety
        /// AVX2 + FMA; the `K` tap rows of each of the `R` rows exist; `y + R <= h_out`.
        #[inline(always)]
        #[allow(clippy::too_many_arguments)]
        unsafe fn full_rows<const K: usize, const S: usize, const R: usize, const CLAMP: bool>(
            &self,
            r: &Rows,
            y: usize,
            wv: &[[__m256; K]; K],
            bias: __m256,
            fin: &Fin<CLAMP>,
            out: &mut [f32],
        ) -> usize {
            for b in self.blocks.iter().rev() {
                // SAFETY: by the contract; `interior` or the masks keep every load inside its
                // row.
                let acc = unsafe {
                    if b.interior {
                        taps::<K, S, R, true>(r, b, wv, bias)
                    } else {
                        taps::<K, S, R, false>(r, b, wv, bias)
                    }
                };
                for (i, acc) in acc.into_iter().enumerate() {
                    // SAFETY: row y + i < h_out.
                    unsafe { store::<S>(fin.apply(acc), y + i, self.geom.w_out, b, out) };
                }
            }
            R
        }
    }

    /// `bias + sum` of all `K x K` taps for block `b` of the `R` output rows from `r`'s, each
    /// input row loaded once for all the output rows it feeds.
    ///
    /// # Safety
    /// AVX2 + FMA; input rows `top .. top + S*(R-1) + K` exist; with `INTERIOR`, `b.interior`.
    #[inline(always)]
    unsafe fn taps<const K: usize, const S: usize, const R: usize, const INTERIOR: bool>(
        r: &Rows,
        b: &Block,
        wv: &[[__m256; K]; K],
        bias: __m256,
    ) -> [__m256; R] {
        let mut acc = [bias; R];
        for i in 0..S * (R - 1) + K {
            // SAFETY: row top + i exists by the caller's contract.
            let v = unsafe { r.vectors::<K, S, INTERIOR, false>(b, i) };
            for (o, acc) in acc.iter_mut().enumerate() {
                // Output row o uses input row i as tap row i - S*o.
                if let Some(wr) = i.checked_sub(S * o).and_then(|ky| wv.get(ky)) {
                    for (&w, &x) in wr.iter().zip(&v) {
                        *acc = _mm256_fmadd_ps(w, x, *acc);
                    }
                }
            }
        }
        acc
    }

    /// `bias + sum` of the taps in tap rows `lo..hi` for block `b` of `r`'s output row.
    ///
    /// # Safety
    /// AVX2 + FMA; input rows `top + lo .. top + hi` exist; with `INTERIOR`, `b.interior`.
    #[inline(always)]
    unsafe fn edge_taps<const K: usize, const S: usize, const INTERIOR: bool>(
        r: &Rows,
        b: &Block,
        lo: usize,
        hi: usize,
        wv: &[[__m256; K]; K],
        bias: __m256,
    ) -> __m256 {
        let mut acc = bias;
        for (ky, wr) in wv.iter().enumerate().take(hi).skip(lo) {
            // SAFETY: row top + ky exists by the caller's contract.
            let v = unsafe { r.vectors::<K, S, INTERIOR, false>(b, ky) };
            for (&w, &x) in wr.iter().zip(&v) {
                acc = _mm256_fmadd_ps(w, x, acc);
            }
        }
        acc
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Activation;
    use crate::testutil::{in_pool, pattern, reference_conv, rel_err};

    /// A depthwise `k x k` geometry: `c` channels of `h x w`, stride `s`, `pads`.
    fn dw_geom(c: usize, h: usize, w: usize, k: usize, s: usize, pads: [usize; 4]) -> ConvGeom {
        ConvGeom {
            c_in: c,
            c_out: c,
            group: c,
            h,
            w,
            kh: k,
            kw: k,
            stride: [s, s],
            dilation: [1, 1],
            pads,
            h_out: (h + pads[0] + pads[2] - k) / s + 1,
            w_out: (w + pads[1] + pads[3] - k) / s + 1,
        }
    }

    #[test]
    fn matches_the_reference_convolution() {
        if !crate::kernels::par::has_avx2_fma() {
            eprintln!("skipped: the depthwise kernel needs AVX2 + FMA");
            return;
        }
        // (c, h, w, k, stride, pads): rows shorter than, equal to and longer than a vector,
        // both strides and kernel sizes, asymmetric, zero and oversized pads.
        let cases = [
            (8, 7, 7, 3, 1, [1; 4]),
            (5, 8, 9, 3, 2, [1; 4]),
            (3, 9, 6, 3, 2, [0, 1, 1, 0]),
            (4, 5, 5, 3, 1, [0; 4]),
            (16, 14, 14, 3, 2, [1, 1, 0, 0]),
            (2, 3, 17, 3, 1, [2, 0, 1, 2]),
            (3, 8, 8, 3, 1, [1; 4]),
            (2, 20, 37, 3, 1, [1; 4]),
            (2, 23, 41, 3, 2, [1; 4]),
            (3, 12, 33, 5, 1, [2; 4]),
            (3, 15, 40, 5, 2, [2, 2, 1, 1]),
            (2, 6, 7, 5, 2, [4, 3, 4, 3]),
            (2, 2, 2, 3, 1, [3, 3, 3, 3]),
            (3, 14, 14, 7, 1, [3; 4]),
            (2, 9, 19, 7, 1, [3, 2, 3, 2]),
            (2, 5, 6, 7, 1, [3; 4]),
        ];
        for (c, h, w, k, s, pads) in cases {
            let g = dw_geom(c, h, w, k, s, pads);
            assert!(Depthwise::suits(&g));
            let x = pattern(c * h * w, 37, 101, 0.02);
            let wt = pattern(c * k * k, 53, 97, 0.01);
            let p = g.h_out * g.w_out;
            let res: Vec<f32> = (0..c * p).map(|i| (i % 7) as f32 * 0.3 - 1.0).collect();
            let res2: Vec<f32> = (0..c * p).map(|i| (i % 5) as f32 * 0.2 - 0.3).collect();
            // Clip and Relu without a residual are applied in registers, the others after.
            for (threads, residuals, act) in [
                (1, 0, Activation::None),
                (2, 1, Activation::Clip(0.0, 0.5)),
                (1, 2, Activation::Relu),
                (2, 0, Activation::LeakyRelu(0.1)),
                (1, 0, Activation::Clip(-0.2, 0.5)),
                (2, 0, Activation::Relu),
                (1, 1, Activation::HardSwish),
                (2, 0, Activation::Silu),
            ] {
                let epi = Epilogue {
                    bias: Some((0..c).map(|k| k as f32 * 0.1 - 0.3).collect()),
                    residual: residuals > 0,
                    act,
                };
                let r = [
                    (residuals > 0).then_some(&res[..]),
                    (residuals > 1).then_some(&res2[..]),
                ];
                let kern = Depthwise::new(g, wt.clone(), epi.clone());
                let mut y = vec![f32::NAN; c * p];
                in_pool(threads, || kern.run(&x, r, &mut y, &mut []));
                let e = rel_err(&y, &reference_conv(&g, &x, &wt, &epi, r));
                // f32 sums of 49 taps round more than of 9 or 25 (measured 1.2e-6 for 7x7).
                let tol = if k == 7 { 4e-6 } else { 1e-6 };
                assert!(e < tol, "{g:?} {act:?}: rel err {e:e}");
            }
        }
    }

    #[test]
    #[ignore]
    fn bench_mobilenet_shapes() {
        for (c, h, k, s) in [
            (32, 112, 3, 1),
            (96, 112, 3, 2),
            (144, 56, 3, 1),
            (144, 56, 3, 2),
            (384, 14, 3, 1),
            (960, 7, 3, 1),
            (240, 28, 5, 1),
        ] {
            let g = dw_geom(c, h, h, k, s, [k / 2; 4]);
            let o = g.h_out;
            let x: Vec<f32> = (0..c * h * h).map(|i| (i % 13) as f32 * 0.1).collect();
            let w: Vec<f32> = (0..c * k * k).map(|i| (i % 7) as f32 * 0.01).collect();
            let epi = Epilogue {
                bias: Some(vec![0.1; c]),
                residual: false,
                act: Activation::Clip(0.0, 6.0),
            };
            let kern = Depthwise::new(g, w, epi);
            let mut y = vec![0.0; c * o * o];
            crate::testutil::in_pool(1, || {
                // The best of 7 rounds of 20 runs (the host is noisy).
                let d = (0..7)
                    .map(|_| {
                        let t = std::time::Instant::now();
                        for _ in 0..20 {
                            kern.run(&x, [None, None], &mut y, &mut []);
                        }
                        t.elapsed() / 20
                    })
                    .min()
                    .expect("rounds");
                let macs = (c * o * o * k * k) as f64;
                eprintln!(
                    "{c}x{h}x{h} {k}x{k} s{s}: {d:?} ({:.1} GFLOP/s)",
                    2.0 * macs / d.as_secs_f64() / 1e9
                );
            });
        }
    }
}
