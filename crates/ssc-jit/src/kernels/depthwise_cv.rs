//! Depthwise convolutions with large kernels on small planes with the channels in the vector
//! (AVX-512), as ORT's NCHWc kernels do: on a 14x14 or 7x7 plane, `kernels::depthwise`'s row
//! vectors are mostly padding and edge handling (ConvNeXt's 7x7 layers on 14x14 ran at half
//! ORT's speed), while 16 channels of one pixel fill a vector at any plane size. The two
//! transposes cost about as much as a 3x3 layer's taps, so it pays only for 5x5 and 7x7 kernels
//! ([`DepthwiseCv::suits`]).
//!
//! Per image: the input is gathered (16 channels of a pixel per AVX-512 gather) into a
//! zero-padded channels-last scratch `[hp][wp][cp]` (`cp` = channels rounded up to 16); each
//! output pixel block (8 adjacent pixels x 16 channels, 8 independent sums) takes its `k x k`
//! taps as FMAs of whole vectors into a channels-last result; that is gathered back to NCHW
//! (16 pixels of a channel at a time) through the usual epilogue (bias, residuals,
//! activation). Both transposes touch `c * h * w` floats, against `k * k` multiply-adds per
//! output.

use crate::kernels::epilogue_in_place;
use crate::kernels::par::{for_ranges, par_units, SendPtr};
use crate::spec::{ConvGeom, Epilogue};

/// Lanes of a vector: channels per block.
const L: usize = 16;
/// Adjacent output pixels per block (independent sums sharing each weight load).
const PX: usize = 8;

/// A depthwise convolution computed channels-last (see the module doc).
pub(crate) struct DepthwiseCv {
    geom: ConvGeom,
    /// `[k*k][cp]`: tap-major, the channels contiguous, zero past the last.
    weights: Vec<f32>,
    epi: Epilogue,
    cp: usize,
    hp: usize,
    wp: usize,
}

impl DepthwiseCv {
    /// Whether this kernel takes `g` (a depthwise conv with no dilation) on this host, from
    /// `bench_depthwise_cv` (1 thread, ms, row kernel -> this one, in a quiet run): 7x7 kernels
    /// on planes of at most 14x14 outputs (ConvNeXt's 384 channels on 14x14 0.277 -> 0.235, 768
    /// on 7x7 0.240 -> 0.142) and 5x5 ones on 7x7 (MobileNetV3's 960 channels 0.118 -> 0.093).
    /// Not 3x3 kernels (too few taps to pay for the two transposes): `bench_depthwise_3x3`
    /// (session 4, quiet) on MobileNetV2/V3's and EfficientNet-B0's 3x3 layers, stride 1 and 2,
    /// finds the row kernel faster on every one, 1.7-3.6x on 112x112..14x14 planes (384 on
    /// 14x14 0.051 -> 0.098) and 1.14x on 960 channels on 7x7 (0.055 -> 0.063); nor larger planes (7x7 on 28x28 0.480 -> 0.485, on 56x56 0.698 -> 0.847;
    /// 5x5 on 14x14 0.202 -> 0.219).
    pub(crate) fn suits(g: &ConvGeom) -> bool {
        #[cfg(target_arch = "x86_64")]
        let avx512 = crate::kernels::par::has_avx512f();
        #[cfg(not(target_arch = "x86_64"))]
        let avx512 = false;
        let (taps, outs) = (g.kh * g.kw, g.h_out * g.w_out);
        avx512
            && g.group == g.c_in
            && g.c_out == g.c_in
            && g.dilation == [1, 1]
            && ((taps >= 49 && outs <= 196) || (taps >= 25 && outs <= 49))
    }

    /// `weights` is ONNX's `[c, 1, kh, kw]`.
    pub(crate) fn new(geom: ConvGeom, weights: &[f32], epi: Epilogue) -> DepthwiseCv {
        let (c, kk) = (geom.c_in, geom.kh * geom.kw);
        let cp = c.div_ceil(L) * L;
        let mut packed = vec![0.0; kk * cp];
        for ch in 0..c {
            for t in 0..kk {
                packed[t * cp + ch] = weights[ch * kk + t];
            }
        }
        // The padded extent the taps read: enough rows and columns for every output, at least
        // the image.
        let hp = ((geom.h_out - 1) * geom.stride[0] + geom.kh).max(geom.h + geom.pads[0]);
        let wp = ((geom.w_out - 1) * geom.stride[1] + geom.kw).max(geom.w + geom.pads[1]);
        DepthwiseCv {
            geom,
            weights: packed,
            epi,
            cp,
            hp,
            wp,
        }
    }

    /// f32 elements of scratch: the padded channels-last input and the channels-last output,
    /// and room to start them on a cache line (a vector load across two lines costs two).
    pub(crate) fn scratch_len(&self) -> usize {
        self.cp * (self.hp * self.wp + self.geom.h_out * self.geom.w_out) + L
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
        let (c, cp, wp) = (g.c_in, self.cp, self.wp);
        let (ip, op) = (g.h * g.w, g.h_out * g.w_out);
        assert!(input.len() >= c * ip && output.len() >= c * op);
        assert!(res.iter().flatten().all(|r| r.len() >= c * op));
        let skip = scratch.as_ptr().align_offset(64).min(L);
        let (xs, ys) = scratch[skip..skip + self.scratch_len() - L].split_at_mut(cp * self.hp * wp);
        // 1. Channels-last input with a zero border (lanes past the last channel are never
        // stored, so they need no zeros). Per row, blocks of 16 pixels: 16 lines read per
        // channel-strided pass, the written pixels' lines stay in L1.
        let (top, left) = (g.pads[0], g.pads[1]);
        let px = cp;
        xs[..top * wp * px].fill(0.0);
        xs[(top + g.h) * wp * px..].fill(0.0);
        for y in 0..g.h {
            let row = (y + top) * wp;
            xs[row * px..(row + left) * px].fill(0.0);
            xs[(row + left + g.w) * px..(row + wp) * px].fill(0.0);
            let dst = &mut xs[(row + left) * px..(row + left + g.w) * px];
            // SAFETY: AVX-512F (`suits`); `input` holds `c` planes of `h x w`, `dst` row `y`'s
            // `w` pixels of `cp` lanes.
            unsafe { avx512::pack_row(input, (c, ip, g.w), y, cp, dst) };
        }
        let xs: &[f32] = xs;
        // 2. The taps, output rows shared out.
        let yp = SendPtr(ys.as_mut_ptr());
        for_ranges(
            g.h_out,
            1,
            #[inline(always)]
            |r0, r1| {
                for oy in r0..r1 {
                    // SAFETY: row `oy` of the `h_out x w_out x cp` result, this task's only.
                    let dst = unsafe {
                        std::slice::from_raw_parts_mut(
                            yp.get().add(oy * g.w_out * cp),
                            g.w_out * cp,
                        )
                    };
                    self.row(xs, oy, dst);
                }
            },
        );
        let ys: &[f32] = ys;
        // 3. Back to NCHW with the epilogue, channels shared out.
        let bias = self.epi.bias.as_deref();
        let act = self.epi.act;
        par_units(
            &mut output[..c * op],
            op,
            8,
            #[inline(always)]
            |c0, part| {
                for (i, out) in part.chunks_exact_mut(op).enumerate() {
                    // SAFETY: AVX-512F (`suits`); `ys` is `op x cp`, channel `c0 + i < cp`.
                    unsafe { avx512::unpack_channel(ys, cp, c0 + i, out) };
                }
                for (i, out) in part.chunks_exact_mut(op).enumerate() {
                    let ch = c0 + i;
                    let r = res.map(|r| r.map(|r| &r[ch * op..(ch + 1) * op]));
                    epilogue_in_place(out, bias.map_or(0.0, |b| b[ch]), r, act);
                }
            },
        );
    }

    /// Output row `oy`, channels-last (`w_out x cp`).
    #[inline(always)]
    fn row(&self, xs: &[f32], oy: usize, dst: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `suits` requires AVX-512F; `xs` is the padded `hp x wp x cp` input, whose
        // extent covers every tap of every output (`new`), and `dst` is `w_out x cp`.
        unsafe {
            avx512::row(self, xs, oy, dst)
        }
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!("DepthwiseCv runs on AVX-512 hosts only ({xs:p}, {oy}, {dst:p})")
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{DepthwiseCv, L, PX};

    /// Input row `y` channels-last: pixel `x`'s lanes `dst[x*cp..][..c]` gathered from the
    /// `c` planes (`plane = (c, ip, w)`: channels, plane size, row length).
    ///
    /// # Safety
    /// AVX-512F; `input` holds `c * ip` floats with row `y` inside each plane; `dst` holds
    /// `w * cp` floats, `cp >= c` a multiple of 16.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn pack_row(
        input: &[f32],
        (c, ip, w): (usize, usize, usize),
        y: usize,
        cp: usize,
        dst: &mut [f32],
    ) {
        assert!(input.len() >= c * ip && dst.len() >= w * cp && (y + 1) * w <= ip);
        let lanes = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
        let stride = _mm512_mullo_epi32(lanes, _mm512_set1_epi32(ip as i32));
        let mut cb = 0;
        while cb < c {
            let m: __mmask16 = if c - cb >= L {
                0xffff
            } else {
                ((1u32 << (c - cb)) - 1) as u16
            };
            for x in 0..w {
                // SAFETY: lanes `l < c - cb` read channel `cb + l`'s pixel (y, x), in bounds
                // (asserted above); the store is pixel x's lanes cb..cb+16 <= cp.
                unsafe {
                    let base = input.as_ptr().add(cb * ip + y * w + x);
                    let v = _mm512_mask_i32gather_ps::<4>(_mm512_setzero_ps(), m, stride, base);
                    _mm512_storeu_ps(dst.as_mut_ptr().add(x * cp + cb), v);
                }
            }
            cb += L;
        }
    }

    /// Channel `ch` of the channels-last `ys` (`op x cp`) into its NCHW plane `out` (`op`).
    ///
    /// # Safety
    /// AVX-512F; `ys` holds `out.len() * cp` floats and `ch < cp`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn unpack_channel(ys: &[f32], cp: usize, ch: usize, out: &mut [f32]) {
        let op = out.len();
        assert!(ch < cp && ys.len() >= op * cp);
        let lanes = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
        let stride = _mm512_mullo_epi32(lanes, _mm512_set1_epi32(cp as i32));
        let mut p0 = 0;
        while p0 < op {
            let n = L.min(op - p0);
            let m: __mmask16 = if n == L {
                0xffff
            } else {
                ((1u32 << n) - 1) as u16
            };
            // SAFETY: lanes `j < n` read pixel `p0 + j < op`'s lane `ch`, in bounds (asserted);
            // the masked store writes `out[p0..p0 + n]`.
            unsafe {
                let base = ys.as_ptr().add(p0 * cp + ch);
                let v = _mm512_mask_i32gather_ps::<4>(_mm512_setzero_ps(), m, stride, base);
                _mm512_mask_storeu_ps(out.as_mut_ptr().add(p0), m, v);
            }
            p0 += n;
        }
    }

    /// # Safety
    /// AVX-512F; the bounds `DepthwiseCv::row` states.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn row(k: &DepthwiseCv, xs: &[f32], oy: usize, dst: &mut [f32]) {
        let g = &k.geom;
        let (cp, wp) = (k.cp, k.wp);
        let (kh, kw, sh, sw) = (g.kh, g.kw, g.stride[0], g.stride[1]);
        let (x, w, d) = (xs.as_ptr(), k.weights.as_ptr(), dst.as_mut_ptr());
        debug_assert!(xs.len() >= k.hp * wp * cp && dst.len() >= g.w_out * cp);
        // SAFETY: input pixel (oy*sh + ky, ox*sw + kx) is inside the padded extent for every
        // output and tap (`new`); weights are `kh*kw x cp`; `dst` is `w_out x cp`.
        unsafe {
            let mut ox = 0;
            while ox < g.w_out {
                let n = PX.min(g.w_out - ox);
                let mut cb = 0;
                while cb < cp {
                    let mut acc = [_mm512_setzero_ps(); PX];
                    for ky in 0..kh {
                        let base = ((oy * sh + ky) * wp + ox * sw) * cp + cb;
                        for kx in 0..kw {
                            let wv = _mm512_loadu_ps(w.add((ky * kw + kx) * cp + cb));
                            let at = base + kx * cp;
                            if n == PX {
                                for (j, a) in acc.iter_mut().enumerate() {
                                    let xv = _mm512_loadu_ps(x.add(at + j * sw * cp));
                                    *a = _mm512_fmadd_ps(xv, wv, *a);
                                }
                            } else {
                                for (j, a) in acc.iter_mut().enumerate().take(n) {
                                    let xv = _mm512_loadu_ps(x.add(at + j * sw * cp));
                                    *a = _mm512_fmadd_ps(xv, wv, *a);
                                }
                            }
                        }
                    }
                    for (j, a) in acc.iter().enumerate().take(n) {
                        _mm512_storeu_ps(d.add((ox + j) * cp + cb), *a);
                    }
                    cb += L;
                }
                ox += n;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::depthwise::Depthwise;
    use crate::spec::Activation;
    use crate::testutil::{conv_geom, in_pool, interleaved_ms, pattern, reference_conv, rel_err};

    #[test]
    fn matches_the_reference_convolution() {
        // (c, h, w, k, stride, pads): channel counts off the 16-lane block, rows shorter than
        // and off the 4-pixel block, both strides, rectangular planes, asymmetric and
        // oversized pads, and 1x1 and even kernels.
        let cases = [
            (16, 14, 14, 7, 1, [3; 4]),
            (21, 7, 7, 7, 1, [3; 4]),
            (5, 9, 6, 3, 2, [0, 1, 1, 0]),
            (33, 6, 11, 5, 1, [2; 4]),
            (17, 13, 13, 5, 2, [2, 2, 1, 1]),
            (3, 2, 2, 3, 1, [3, 3, 3, 3]),
            (40, 7, 7, 1, 1, [0; 4]),
            (9, 8, 5, 4, 2, [1, 2, 2, 1]),
            (1, 3, 1, 3, 1, [1; 4]),
            // 3x3 as in MobileNets, near misses: stride 2 from odd planes, channels off 16,
            // one-sided pads, a 7x7 plane with a partial pixel block.
            (35, 15, 15, 3, 2, [1; 4]),
            (24, 14, 13, 3, 2, [0, 0, 1, 1]),
            (47, 7, 7, 3, 1, [1; 4]),
            (18, 11, 9, 3, 1, [1, 0, 1, 2]),
        ];
        for (c, h, w, k, s, pads) in cases {
            let g = conv_geom((c, c, c), (h, w), (k, s, 1), pads);
            if !crate::kernels::par::has_avx512f() {
                eprintln!("skipped: DepthwiseCv needs AVX-512F");
                return;
            }
            let x = pattern(c * h * w, 37, 101, 0.02);
            let wt = pattern(c * k * k, 53, 97, 0.01);
            let p = g.h_out * g.w_out;
            let res: Vec<f32> = (0..c * p).map(|i| (i % 7) as f32 * 0.3 - 1.0).collect();
            let res2: Vec<f32> = (0..c * p).map(|i| (i % 5) as f32 * 0.2 - 0.3).collect();
            for (threads, residuals, act) in [
                (1, 0, Activation::None),
                (2, 1, Activation::Clip(0.0, 0.5)),
                (1, 2, Activation::Relu),
                (2, 0, Activation::HardSwish),
                (1, 1, Activation::Silu),
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
                let kern = DepthwiseCv::new(g, &wt, epi.clone());
                let mut y = vec![f32::NAN; c * p];
                let mut scratch = vec![f32::NAN; kern.scratch_len()];
                in_pool(threads, || kern.run(&x, r, &mut y, &mut scratch));
                let e = rel_err(&y, &reference_conv(&g, &x, &wt, &epi, r));
                assert!(e < 4e-6, "{g:?} {act:?}: rel err {e:e}");
            }
        }
    }

    /// The row kernel against this one on the mobile zoo's small depthwise layers:
    /// `cargo test --release -p ssc-jit bench_depthwise_cv -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn bench_depthwise_cv() {
        for (c, h, k, s) in [
            (384, 14, 7, 1),
            (768, 7, 7, 1),
            (192, 28, 7, 1),
            (96, 56, 7, 1),
            (960, 7, 5, 1),
            (672, 14, 5, 1),
            (672, 14, 5, 2),
            (480, 14, 3, 1),
            (384, 14, 3, 1),
            (960, 7, 3, 1),
            (144, 28, 3, 1),
            (240, 28, 5, 1),
        ] {
            let g = conv_geom((c, c, c), (h, h), (k, s, 1), [k / 2; 4]);
            if !crate::kernels::par::has_avx512f() {
                return;
            }
            let x = pattern(c * h * h, 37, 101, 0.02);
            let w = pattern(c * k * k, 53, 97, 0.01);
            let epi = Epilogue {
                bias: Some(vec![0.1; c]),
                residual: false,
                act: Activation::Relu,
            };
            let rows = Depthwise::new(g, w.clone(), epi.clone());
            let cv = DepthwiseCv::new(g, &w, epi);
            let mut scratch = vec![0.0; cv.scratch_len()];
            let mut y = vec![0.0; c * g.h_out * g.w_out];
            let [a, b] = interleaved_ms(30, |i| match i {
                0 => rows.run(&x, [None, None], &mut y, &mut []),
                _ => cv.run(&x, [None, None], &mut y, &mut scratch),
            });
            eprintln!("{c:>4} ch {h:>3}x{h:<3} k{k} s{s}: rows {a:.3} ms  channels-last {b:.3} ms");
        }
    }

    /// The row kernel against this one on the 3x3 depthwise layers of MobileNetV2/V3 and
    /// EfficientNet-B0 (112x112 to 7x7 planes, 16 to 960 channels, stride 1 and 2):
    /// `cargo test --release -p ssc-jit bench_depthwise_3x3 -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn bench_depthwise_3x3() {
        if !crate::kernels::par::has_avx512f() {
            return;
        }
        for (c, h, s) in [
            (32, 112, 1),
            (16, 112, 1),
            (96, 112, 2),
            (64, 112, 2),
            (144, 56, 1),
            (72, 56, 1),
            (144, 56, 2),
            (192, 28, 1),
            (240, 28, 1),
            (192, 28, 2),
            (240, 28, 2),
            (384, 14, 1),
            (576, 14, 1),
            (480, 14, 1),
            (200, 14, 1),
            (184, 14, 1),
            (576, 14, 2),
            (960, 7, 1),
        ] {
            let g = conv_geom((c, c, c), (h, h), (3, s, 1), [1; 4]);
            let x = pattern(c * h * h, 37, 101, 0.02);
            let w = pattern(c * 9, 53, 97, 0.01);
            let epi = Epilogue {
                bias: Some(vec![0.1; c]),
                residual: false,
                act: Activation::Clip(0.0, 6.0),
            };
            let rows = Depthwise::new(g, w.clone(), epi.clone());
            let cv = DepthwiseCv::new(g, &w, epi);
            let mut scratch = vec![0.0; cv.scratch_len()];
            let mut y = vec![0.0; c * g.h_out * g.w_out];
            let [a, b] = interleaved_ms(30, |i| match i {
                0 => rows.run(&x, [None, None], &mut y, &mut []),
                _ => cv.run(&x, [None, None], &mut y, &mut scratch),
            });
            eprintln!(
                "{c:>4} ch {h:>3}x{h:<3} k3 s{s}: rows {a:.3} ms  channels-last {b:.3} ms  ({:.2}x)",
                b / a
            );
        }
    }
}
