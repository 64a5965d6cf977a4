//! Direct convolution as an implicit GEMM over the zero-padded input, vectorised over output
//! channels: no column matrix, and no wasted columns at any image size. Tap `k = (ci, ky, kx)`
//! of output pixel `p` reads the padded input at `base[p] + offset[k]`, whatever the stride or
//! dilation (an unpadded input is read in place). Weights are pre-packed as `[k][16]` blocks
//! of output channels. With AVX2 a register block is 6 pixels x 16 channels (two vectors):
//! per tap, 6 broadcast loads and 2 vector loads feed 12 FMAs. With AVX-512 it is up to 24
//! pixels x 16 channels (one vector each, the broadcasts folded into the FMAs), and a block of
//! 16 pixels is transposed in registers at the end and stored into the 16 NCHW planes with its
//! epilogue; other blocks go through a partial-sum buffer, a scatter and an epilogue pass.
//! This is the layout ORT's NCHWc kernels compute in, applied to NCHW tensors by broadcasting
//! input pixels instead of loading them as vectors. It suits the layers where im2col + `gemm`
//! loses to its own overheads: grouped and strided convs, small images and stems
//! (`kernels::dense` picks it per layer, from `bench_direct`), and SSC pairs, a k x k conv and
//! a 1x1 conv on the same input summed, as one conv ([`Pointwise`]).

#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;

use crate::kernels::dense::Pointwise;
use crate::kernels::gemm_conv::Phases;
use crate::kernels::par::{for_tasks, has_avx512f, SendPtr};
use crate::kernels::{epilogue_in_place, pack_channel_blocks, InRegs};
use crate::spec::{ConvGeom, Epilogue};

/// Most pixels per register block: 6 with AVX2 (12 accumulators of 16 registers), 24 with
/// AVX-512 (24 of 32; the broadcasts fold into the FMAs).
const PX: usize = 6;
const PX512: usize = 24;
/// Output channels per register block: two AVX2 vectors.
const CB: usize = 16;
/// Taps per chunk of the sum: 16 KiB of weights.
const KC: usize = 256;
/// Most pixels per tile, whose `[TILE][CB]` partial sums (24 KiB) stay in L1/L2 until the
/// epilogue stores them.
const TILE: usize = 384;
/// How many taps ahead (one 64-byte line of packed weights each) the AVX-512 loop prefetches
/// its weights. A block's first pass over a tap chunk reads the weights from memory, a deep
/// layer's (3.4 MB for a 512-channel 7x7 SSC pair) cold in a model, one line per 16-24 FMAs,
/// which the hardware prefetcher trails. The 7x7 pair, eight layers in turn: 0.92-0.94 ms
/// without, 0.89-0.91 at 8 taps, 0.85-0.87 at 32 and 64; hot, 0.81-0.84 either way.
const PREFETCH_TAPS: usize = 32;

/// Calls `$f::<n>($x)` for a block of `n` pixels, one of the listed sizes.
macro_rules! blocks {
    ($f:ident, $n:expr, $x:expr, $($k:literal)*) => {
        match $n {
            $($k => $f::<$k>($x),)*
            n => unreachable!("a block of {n} pixels"),
        }
    };
}

/// A dense (possibly grouped, strided or dilated) convolution computed directly.
pub(crate) struct DirectConv {
    geom: ConvGeom,
    /// The padded input's layout: [`DirectConv::padded`], as one phase.
    ph: Phases,
    /// Per group, per block of [`CB`] output channels: `[k][CB]` (see `offsets`), the channels
    /// past the group's last zero.
    packed: Vec<f32>,
    /// Per group, the offset of each tap in the padded input, relative to a pixel's base: `[k]`
    /// with `k = cin_g * kh * kw` (tap `(ci, ky, kx)` at `c * hp * wp + ky * dh * wp + kx *
    /// dw` for the group's channel `c`), then `c_in` 1x1 taps with a [`Pointwise`].
    offsets: Vec<u32>,
    /// Taps per output.
    k: usize,
    /// Base of output pixel `p = y * w_out + x` in the padded input: `y * sh * wp + x * sw`.
    bases: Vec<u32>,
    epi: Epilogue,
    /// Threads the plan runs on (one block of partial sums each in the scratch).
    threads: usize,
    /// Whether the host has AVX-512F: blocks of up to 24 pixels, each in one 16-channel
    /// register.
    avx512: bool,
}

impl DirectConv {
    /// `weights` is ONNX's `[c_out, c_in/group, kh, kw]`. The host must have AVX2 and FMA.
    pub(crate) fn new(
        geom: ConvGeom,
        weights: &[f32],
        epi: Epilogue,
        threads: usize,
    ) -> DirectConv {
        DirectConv::with_pointwise(geom, weights, None, epi, threads)
    }

    /// [`new`](Self::new), plus the taps of a 1x1 conv over all `c_in` channels in every
    /// output (see [`Pointwise`]; its bias belongs in `epi`).
    pub(crate) fn with_pointwise(
        geom: ConvGeom,
        weights: &[f32],
        pw: Option<Pointwise>,
        epi: Epilogue,
        threads: usize,
    ) -> DirectConv {
        let g = geom;
        let padded = DirectConv::padded(&g);
        let ph = Phases::of(&padded);
        let (cin_g, cout_g) = (g.cin_g(), g.cout_g());
        let kg = cin_g * g.kh * g.kw;
        let k = kg + pw.as_ref().map_or(0, |_| g.c_in);
        let packed = pack_channel_blocks((g.group, cout_g, k), CB, |c| {
            let taps = weights[c * kg..][..kg].iter();
            taps.chain(
                pw.iter()
                    .flat_map(move |pw| &pw.weights[c * g.c_in..][..g.c_in]),
            )
        });
        let mut offsets = Vec::with_capacity(g.group * k);
        for grp in 0..g.group {
            offsets.extend(ph.taps(&padded, grp * cin_g));
            if let Some(pw) = &pw {
                let [ty, tx] = [pw.tap[0] * g.dilation[0], pw.tap[1] * g.dilation[1]];
                offsets.extend((0..g.c_in).map(|ci| ph.tap(ci, ty, tx)));
            }
        }
        let p = g.h_out * g.w_out;
        let bases = (0..p)
            .map(|i| {
                let (y, x) = (i / g.w_out * g.stride[0], i % g.w_out * g.stride[1]);
                u32::try_from(y * ph.wq + x).expect("small image")
            })
            .collect();
        DirectConv {
            geom,
            ph,
            packed,
            offsets,
            k,
            bases,
            epi,
            threads: threads.max(1),
            avx512: has_avx512f(),
        }
    }

    /// The AVX2 blocks even on an AVX-512 host (tests cover both).
    #[cfg(test)]
    fn avx2_only(mut self) -> DirectConv {
        self.avx512 = false;
        self
    }

    /// `g` at stride 1: the geometry whose single phase image is the padded input. Not split
    /// into phases: pixels are broadcast one by one, so a stride needs no contiguous rows, and
    /// a padded copy is cheaper than a deinterleave.
    fn padded(g: &ConvGeom) -> ConvGeom {
        ConvGeom {
            stride: [1, 1],
            ..*g
        }
    }

    /// Whether the padded input is the input itself (no padding), read in place.
    fn in_place(&self) -> bool {
        self.geom.pads == [0; 4]
    }

    /// f32 elements of the padded input in the scratch (none when read in place).
    fn ph_len(&self) -> usize {
        if self.in_place() {
            0
        } else {
            self.ph.len()
        }
    }

    /// f32 elements of scratch one image needs: the padded input, then one tile of
    /// `[TILE][CB]` partial sums per thread.
    pub(crate) fn scratch_len(&self) -> usize {
        self.ph_len() + self.threads * TILE * CB
    }

    /// One image: `input` is `[c_in, h, w]`; `output` and the residuals are
    /// `[c_out, h_out, w_out]` (a second residual is added after the first).
    pub(crate) fn run(
        &self,
        input: &[f32],
        res: [Option<&[f32]>; 2],
        output: &mut [f32],
        scratch: &mut [f32],
    ) {
        let g = &self.geom;
        let (padded, sums) = scratch.split_at_mut(self.ph_len());
        let padded: &[f32] = if self.in_place() {
            input
        } else {
            self.ph.fill(&DirectConv::padded(g), input, padded);
            padded
        };
        let per = TILE * CB;
        assert!(sums.len() >= self.threads * per);
        let sums = SendPtr(sums.as_mut_ptr());
        assert_eq!(output.len(), g.c_out * g.h_out * g.w_out);
        // The residuals are read like the output (raw pointers in the fused epilogue).
        assert!(res.iter().flatten().all(|r| r.len() >= output.len()));
        let blocks = g.cout_g().div_ceil(CB);
        let n_tasks = g.group * blocks;
        let out = SendPtr(output.as_mut_ptr());
        for_tasks(n_tasks, self.threads, |t, slot| {
            // SAFETY: each pool thread owns block `slot` of partial sums (the scratch holds
            // `threads` of them, asserted above) and runs one task at a time.
            let acc = unsafe { std::slice::from_raw_parts_mut(sums.get().add(slot * per), per) };
            self.block(t / blocks, t % blocks, padded, res, out, acc)
        });
    }

    /// Output channels `blk * CB..` of group `grp`, every pixel, then their epilogue; `acc`
    /// holds `[TILE][CB]` partial sums.
    #[allow(clippy::too_many_arguments)]
    fn block(
        &self,
        grp: usize,
        blk: usize,
        padded: &[f32],
        res: [Option<&[f32]>; 2],
        out: SendPtr,
        acc: &mut [f32],
    ) {
        let g = &self.geom;
        let (k, p) = (self.k, g.h_out * g.w_out);
        let offsets = &self.offsets[grp * k..(grp + 1) * k];
        let w = &self.packed[(grp * g.cout_g().div_ceil(CB) + blk) * k * CB..][..k * CB];
        let src = padded;
        // Every read is `src[bases[i] + offsets[k]]`: a tap of a valid output pixel, inside the
        // padded input.
        let reach = offsets.iter().max().map_or(0, |&o| o as usize)
            + self.bases.iter().max().map_or(0, |&b| b as usize);
        assert!(reach < src.len() && acc.len() >= TILE * CB && self.bases.len() == p);
        let c0 = grp * g.cout_g() + blk * CB;
        let n_ch = CB.min((grp + 1) * g.cout_g() - c0);
        // SAFETY: output channels c0..c0 + n_ch belong to this task only, inside the output
        // (its length is asserted in `run`).
        let dst = unsafe { std::slice::from_raw_parts_mut(out.get().add(c0 * p), n_ch * p) };
        // With AVX-512 and an epilogue it can apply in registers, whole 16-pixel blocks end in
        // `product512_out`, straight into the output; the other pixels of a tile go through
        // `acc`, a scatter and the epilogue pass.
        let mut fused = InRegs::<CB>::of(&self.epi, c0, n_ch).filter(|_| self.avx512);
        let px = if self.avx512 { PX512 } else { PX };
        let tiles = p.div_ceil(TILE);
        for t in 0..tiles {
            let (i0, i1) = (p * t / tiles, p * (t + 1) / tiles);
            // Pixels `i0..i_out` in whole 16-pixel blocks stored directly, then the rest in
            // blocks of at most `px` pixels of balanced sizes (49 without `fused`: 17 + 16 +
            // 16). A remainder under 8 joins the last whole block (49: 16 + 16 + 17), as a
            // block of a few pixels reloads every weight for a few FMAs each.
            let (whole, r) = ((i1 - i0) / 16, (i1 - i0) % 16);
            let whole = if whole > 0 && r > 0 && r < 8 {
                whole - 1
            } else {
                whole
            };
            let i_out = i0 + fused.as_ref().map_or(0, |_| 16 * whole);
            let rest = i1 - i_out;
            let nb = rest.div_ceil(px);
            let last = k.div_ceil(KC) - 1;
            // Taps in chunks whose weights (`KC x CB`) stay in L1 while every pixel block
            // reads them; the sums carry over in `acc`. (Whole, a 7x7 layer's 1152 taps
            // streamed 73 KB of weights from L2 per block of pixels.)
            for (c, (w, offsets)) in w.chunks(KC * CB).zip(offsets.chunks(KC)).enumerate() {
                for i in (i0..i_out).step_by(16) {
                    let a = acc[(i - i0) * CB..].as_mut_ptr();
                    let x = (
                        w.as_ptr(),
                        offsets,
                        src.as_ptr(),
                        &self.bases[i..i + 16],
                        a,
                        c == 0,
                    );
                    // SAFETY: AVX-512F (`fused` is only set with it); reads in bounds (asserted
                    // above), `w` holds `offsets.len() * CB` floats, `a` the 16 * CB partial
                    // sums of these pixels; the output rows and residuals hold pixels
                    // i..i + 16 of the task's `n_ch` channels.
                    unsafe {
                        match &mut fused {
                            Some(f) if c == last => {
                                f.res = res.map(|r| r.map(|r| r[c0 * p + i..].as_ptr()));
                                product512_out(x, dst[i..].as_mut_ptr(), p, n_ch, f);
                            }
                            _ => product512::<16>(x),
                        }
                    }
                }
                let mut i = i_out;
                for b in 0..nb {
                    let n = rest / nb + usize::from(b < rest % nb);
                    let bases = &self.bases[i..i + n];
                    let a = acc[(i - i0) * CB..].as_mut_ptr();
                    let x = (w.as_ptr(), offsets, src.as_ptr(), bases, a, c == 0);
                    // SAFETY: AVX2 and FMA (AVX-512F for `avx512`) are required by `new`'s
                    // contract; reads are in bounds (asserted above), `w` holds
                    // `offsets.len() * CB` floats and `a` the `n * CB` partial sums of these
                    // pixels.
                    unsafe {
                        if self.avx512 {
                            blocks!(product512, n, x, 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24);
                        } else {
                            blocks!(product, n, x, 1 2 3 4 5 6);
                        }
                    }
                    i += n;
                }
            }
            let skip = i_out - i0;
            for (j, a) in acc[skip * CB..(i1 - i0) * CB].chunks_exact(CB).enumerate() {
                for (c, &v) in a[..n_ch].iter().enumerate() {
                    dst[c * p + i_out + j] = v;
                }
            }
            for c in 0..n_ch {
                let at = (c0 + c) * p;
                let bias = self.epi.bias.as_ref().map_or(0.0, |b| b[c0 + c]);
                let rr = res.map(|r| r.map(|r| &r[at + i_out..at + i1]));
                let o = &mut dst[c * p + i_out..c * p + i1];
                epilogue_in_place(o, bias, rr, self.epi.act);
            }
        }
    }
}

/// The arguments of a product: packed weights, tap offsets, the padded input, the block's
/// pixel bases, its partial sums, and whether they start at zero (the first chunk of taps).
type Args<'a> = (*const f32, &'a [u32], *const f32, &'a [u32], *mut f32, bool);

/// The `P` accumulators (16 channels of one pixel each) of an AVX-512 block: `acc` (or zero
/// for the first chunk) plus this chunk's taps. Per tap, one weight load and `P` broadcasts
/// feed `P` FMAs.
///
/// # Safety
/// As [`product`], with AVX-512F in place of AVX2 and FMA.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn sums512<const P: usize>((w, offsets, src, bases, acc, first): Args) -> [__m512; P] {
    debug_assert!(bases.len() == P);
    // SAFETY: see the contract above.
    unsafe {
        let s: [*const f32; P] = std::array::from_fn(|j| src.add(bases[j] as usize));
        let mut a = [_mm512_setzero_ps(); P];
        if !first {
            for (j, a) in a.iter_mut().enumerate() {
                *a = _mm512_loadu_ps(acc.add(j * CB));
            }
        }
        let mut wk = w;
        for &o in offsets {
            let o = o as usize;
            // A prefetch hint only: past the weights' end the address is formed, never read.
            _mm_prefetch::<_MM_HINT_T0>(wk.wrapping_add(PREFETCH_TAPS * CB) as *const i8);
            let wv = _mm512_loadu_ps(wk);
            for j in 0..P {
                a[j] = _mm512_fmadd_ps(_mm512_set1_ps(*s[j].add(o)), wv, a[j]);
            }
            wk = wk.add(CB);
        }
        a
    }
}

/// [`product`] on AVX-512: `P` pixels x 16 channels in `P` accumulators, stored to `acc`.
///
/// # Safety
/// As [`product`], with AVX-512F in place of AVX2 and FMA.
#[target_feature(enable = "avx512f")]
unsafe fn product512<const P: usize>(x: Args) {
    // SAFETY: see the contract above.
    unsafe {
        let acc = x.4;
        for (j, a) in sums512::<P>(x).iter().enumerate() {
            _mm512_storeu_ps(acc.add(j * CB), *a);
        }
    }
}

/// The last chunk of a 16-pixel AVX-512 block, stored straight into the NCHW output: the
/// accumulators (one pixel's 16 channels each) transposed in registers into one vector of 16
/// pixels per channel, then through the epilogue, one store per channel. Against the sums'
/// round trip through `acc` and a scalar scatter, this removes 256 scalar stores and the
/// epilogue pass per block.
///
/// # Safety
/// As [`product`], with AVX-512F in place of AVX2 and FMA, and `dst` (channel `c` at
/// `dst + c * p`) and `f`'s residuals hold 16 floats for each of the `n_ch` channels.
#[target_feature(enable = "avx512f")]
unsafe fn product512_out(x: Args, dst: *mut f32, p: usize, n_ch: usize, f: &InRegs<CB>) {
    // SAFETY: see the contract above.
    unsafe {
        let t = transpose16(sums512::<16>(x));
        let (lo, hi) = (_mm512_set1_ps(f.lo), _mm512_set1_ps(f.hi));
        for (c, &v) in t.iter().enumerate().take(n_ch) {
            let mut y = _mm512_add_ps(v, _mm512_set1_ps(f.bias[c]));
            for r in f.res.iter().flatten() {
                y = _mm512_add_ps(y, _mm512_loadu_ps(r.add(c * p)));
            }
            y = _mm512_min_ps(_mm512_max_ps(y, lo), hi);
            _mm512_storeu_ps(dst.add(c * p), y);
        }
    }
}

/// The transpose of a 16 x 16 block of f32 held in 16 registers (row `i` in `r[i]`): 64
/// shuffles, in three rounds (pairs of floats, pairs of pairs, 128-bit lanes).
#[target_feature(enable = "avx512f")]
#[inline]
fn transpose16(r: [__m512; 16]) -> [__m512; 16] {
    // a[2i] lane L: r2i[4L], r2i+1[4L], r2i[4L+1], r2i+1[4L+1]; a[2i+1]: the same for
    // 4L+2 and 4L+3.
    let a: [__m512; 16] = std::array::from_fn(|k| {
        let (x, y) = (r[k & !1], r[k | 1]);
        if k % 2 == 0 {
            _mm512_unpacklo_ps(x, y)
        } else {
            _mm512_unpackhi_ps(x, y)
        }
    });
    // b[4i + q] lane L: channel 4L + q of rows 4i..4i + 4.
    let b: [__m512; 16] = std::array::from_fn(|k| {
        let (i, q) = (k / 4, k % 4);
        let (x, y) = (a[4 * i + q / 2], a[4 * i + 2 + q / 2]);
        if q % 2 == 0 {
            _mm512_shuffle_ps::<0x44>(x, y)
        } else {
            _mm512_shuffle_ps::<0xEE>(x, y)
        }
    });
    // Channel 4L + q gathers lane L of b[q], b[4 + q], b[8 + q], b[12 + q].
    let mut out = [_mm512_setzero_ps(); 16];
    for q in 0..4 {
        let c1 = _mm512_shuffle_f32x4::<0x88>(b[q], b[4 + q]);
        let c2 = _mm512_shuffle_f32x4::<0x88>(b[8 + q], b[12 + q]);
        let d1 = _mm512_shuffle_f32x4::<0xDD>(b[q], b[4 + q]);
        let d2 = _mm512_shuffle_f32x4::<0xDD>(b[8 + q], b[12 + q]);
        out[q] = _mm512_shuffle_f32x4::<0x88>(c1, c2);
        out[8 + q] = _mm512_shuffle_f32x4::<0xDD>(c1, c2);
        out[4 + q] = _mm512_shuffle_f32x4::<0x88>(d1, d2);
        out[12 + q] = _mm512_shuffle_f32x4::<0xDD>(d1, d2);
    }
    out
}

/// `acc[j][c] (+)= Σ_k w[k][c] · src[bases[j] + offsets[k]]` for the `P` pixels of `bases` and
/// the [`CB`] channels of `w`, in `2P` accumulators (`first`: `acc` starts at zero, else from
/// its contents).
///
/// # Safety
/// The host has AVX2 and FMA; `w` holds `offsets.len() * CB` floats, every
/// `src[bases[j] + offsets[k]]` is in bounds, `bases` holds `P` entries and `acc` `P * CB`
/// floats.
#[target_feature(enable = "avx2,fma")]
unsafe fn product<const P: usize>((w, offsets, src, bases, acc, first): Args) {
    debug_assert!(bases.len() == P);
    // SAFETY: see the contract above.
    unsafe {
        let s: [*const f32; P] = std::array::from_fn(|j| src.add(bases[j] as usize));
        let mut a = [[_mm256_setzero_ps(); 2]; P];
        if !first {
            for (j, a) in a.iter_mut().enumerate() {
                *a = [
                    _mm256_loadu_ps(acc.add(j * CB)),
                    _mm256_loadu_ps(acc.add(j * CB + 8)),
                ];
            }
        }
        let mut wk = w;
        for &o in offsets {
            let o = o as usize;
            let w0 = _mm256_loadu_ps(wk);
            let w1 = _mm256_loadu_ps(wk.add(8));
            for j in 0..P {
                let b = _mm256_broadcast_ss(&*s[j].add(o));
                a[j][0] = _mm256_fmadd_ps(b, w0, a[j][0]);
                a[j][1] = _mm256_fmadd_ps(b, w1, a[j][1]);
            }
            wk = wk.add(CB);
        }
        for (j, a) in a.iter().enumerate() {
            _mm256_storeu_ps(acc.add(j * CB), a[0]);
            _mm256_storeu_ps(acc.add(j * CB + 8), a[1]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::gemm_conv::GemmConv;
    use crate::kernels::par::has_avx2_fma;
    use crate::kernels::winograd::Winograd;
    use crate::spec::Activation;
    use crate::testutil::{
        conv_geom as geom, in_pool, interleaved_ms, pattern, pointwise_geom, reference_conv,
        rel_err,
    };

    /// Against the reference convolution, with the AVX-512 and the AVX2 blocks (the first
    /// where the host has it): partial channel blocks, groups, strides 1-3, dilation, asymmetric
    /// and zero pads, several tap chunks and pixel tiles, two residuals, 1 and 2 threads, NaN
    /// scratch.
    #[test]
    fn matches_the_reference_convolution() {
        if !has_avx2_fma() {
            return;
        }
        let cases = [
            geom((16, 32, 4), (11, 9), (3, 2, 1), [1; 4]),
            geom((12, 18, 3), (10, 10), (3, 1, 1), [1; 4]),
            geom((3, 20, 1), (23, 21), (7, 2, 1), [3; 4]),
            geom((8, 10, 2), (9, 12), (3, 1, 2), [2, 1, 0, 2]),
            geom((6, 9, 1), (13, 8), (5, 3, 1), [0; 4]),
            geom((32, 64, 4), (7, 7), (3, 1, 1), [1; 4]),
            geom((4, 8, 1), (6, 5), (1, 2, 1), [0, 1, 1, 0]),
            // Two chunks of taps (288), several pixel tiles (1800 pixels), 1x1 read in place.
            geom((64, 32, 2), (9, 8), (3, 1, 1), [1; 4]),
            geom((4, 16, 1), (45, 40), (3, 1, 1), [1; 4]),
            geom((40, 24, 1), (7, 6), (1, 1, 1), [0; 4]),
            geom((40, 24, 1), (7, 6), (1, 2, 1), [0; 4]),
            // A mobile 1x1 layer `kernels::dense` gives the direct kernel: 72 inputs, a
            // partial block of output channels, 13x11 pixels (tails of the 24-pixel blocks).
            geom((72, 40, 1), (13, 11), (1, 1, 1), [0; 4]),
        ];
        for g in cases {
            let x = pattern(g.c_in * g.h * g.w, 37, 101, 0.02);
            let w = pattern(g.c_out * g.cin_g() * g.kh * g.kw, 53, 97, 0.01);
            let n = g.c_out * g.h_out * g.w_out;
            let (r1, r2) = (pattern(n, 7, 11, 0.3), pattern(n, 5, 13, 0.2));
            for (threads, residuals, act) in [
                (1, 0, Activation::Relu),
                (2, 1, Activation::None),
                (2, 2, Activation::Clip(-0.5, 0.5)),
                // Not an epilogue the AVX-512 blocks apply in registers: all through `acc`.
                (1, 1, Activation::LeakyRelu(0.1)),
                (2, 0, Activation::HardSwish),
                (1, 2, Activation::Silu),
            ] {
                let epi = Epilogue {
                    bias: Some(pattern(g.c_out, 3, 17, 0.1)),
                    residual: residuals > 0,
                    act,
                };
                let r = [
                    (residuals > 0).then_some(&r1[..]),
                    (residuals > 1).then_some(&r2[..]),
                ];
                let want = reference_conv(&g, &x, &w, &epi, r);
                let kern = DirectConv::new(g, &w, epi.clone(), threads);
                let avx512 = kern.avx512;
                for kern in [
                    kern,
                    DirectConv::new(g, &w, epi.clone(), threads).avx2_only(),
                ] {
                    let mut scratch = vec![f32::NAN; kern.scratch_len()];
                    let mut y = vec![f32::NAN; n];
                    in_pool(threads, || kern.run(&x, r, &mut y, &mut scratch));
                    let e = rel_err(&y, &want);
                    assert!(
                        e < 1e-5,
                        "{g:?} {threads} threads, avx512 {}: rel err {e:e}",
                        kern.avx512
                    );
                    if !avx512 {
                        break;
                    }
                }
            }
        }
    }

    /// An SSC pair as one conv ([`Pointwise`]): against the reference k x k conv plus the
    /// reference 1x1 conv, then a residual and the activation in f64; with AVX-512 and AVX2
    /// blocks, groups, strides 1 and 2, a 5x5 kernel, two tap chunks.
    #[test]
    fn pointwise_pair_matches_two_reference_convolutions() {
        if !has_avx2_fma() {
            return;
        }
        let cases = [
            geom((16, 32, 4), (11, 9), (3, 2, 1), [1; 4]),
            geom((64, 48, 2), (7, 7), (3, 1, 1), [1; 4]),
            geom((8, 16, 1), (10, 10), (5, 1, 1), [2; 4]),
        ];
        for g in cases {
            let pg = pointwise_geom(&g);
            let x = pattern(g.c_in * g.h * g.w, 37, 101, 0.02);
            let wa = pattern(g.c_out * g.cin_g() * g.kh * g.kw, 53, 97, 0.01);
            let wb = pattern(g.c_out * g.c_in, 29, 89, 0.01);
            let n = g.c_out * g.h_out * g.w_out;
            let r = pattern(n, 7, 11, 0.3);
            let bias = pattern(g.c_out, 3, 17, 0.1);
            let plain = Epilogue::default();
            let ya = reference_conv(&g, &x, &wa, &plain, [None, None]);
            let yb = reference_conv(&pg, &x, &wb, &plain, [None, None]);
            let p = g.h_out * g.w_out;
            let want: Vec<f64> = (0..n)
                .map(|i| (ya[i] + yb[i] + bias[i / p] as f64 + r[i] as f64).max(0.0))
                .collect();
            let epi = Epilogue {
                bias: Some(bias.clone()),
                residual: true,
                act: Activation::Relu,
            };
            let pw = || Pointwise {
                weights: &wb,
                tap: [g.kh / 2, g.kw / 2],
            };
            for threads in [1, 2] {
                let kern = DirectConv::with_pointwise(g, &wa, Some(pw()), epi.clone(), threads);
                let avx2 = DirectConv::with_pointwise(g, &wa, Some(pw()), epi.clone(), threads);
                for kern in [kern, avx2.avx2_only()] {
                    let mut scratch = vec![f32::NAN; kern.scratch_len()];
                    let mut y = vec![f32::NAN; n];
                    in_pool(threads, || {
                        kern.run(&x, [Some(&r), None], &mut y, &mut scratch)
                    });
                    let e = rel_err(&y, &want);
                    assert!(e < 1e-5, "{g:?} {threads} threads: rel err {e:e}");
                }
            }
        }
    }

    /// Direct against im2col + gemm on the layers it might take, interleaved in one process:
    /// `cargo test --release -p ssc-jit bench_direct -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn bench_direct() {
        let shapes = [
            geom((3, 64, 1), (224, 224), (7, 2, 1), [3; 4]),
            geom((3, 32, 1), (224, 224), (3, 2, 1), [1; 4]),
            geom((3, 64, 1), (224, 224), (3, 2, 1), [0; 4]),
            geom((64, 128, 4), (56, 56), (3, 2, 1), [1; 4]),
            geom((128, 256, 4), (28, 28), (3, 2, 1), [1; 4]),
            geom((256, 512, 4), (14, 14), (3, 2, 1), [1; 4]),
            geom((256, 256, 4), (14, 14), (3, 1, 1), [1; 4]),
            geom((512, 512, 4), (7, 7), (3, 1, 1), [1; 4]),
            geom((64, 128, 1), (56, 56), (3, 2, 1), [1; 4]),
            geom((128, 256, 1), (28, 28), (3, 2, 1), [1; 4]),
            geom((256, 512, 1), (14, 14), (3, 2, 1), [1; 4]),
            geom((512, 512, 1), (7, 7), (3, 1, 1), [1; 4]),
            geom((64, 64, 4), (56, 56), (3, 1, 1), [1; 4]),
            geom((256, 256, 1), (14, 14), (3, 1, 1), [1; 4]),
            geom((128, 128, 4), (28, 28), (3, 1, 1), [1; 4]),
            geom((64, 256, 1), (13, 13), (3, 1, 1), [1; 4]),
            geom((32, 128, 1), (27, 27), (3, 1, 1), [1; 4]),
            geom((160, 320, 4), (7, 7), (3, 1, 1), [1; 4]),
            geom((512, 512, 1), (7, 7), (1, 1, 1), [0; 4]),
            geom((256, 256, 1), (14, 14), (1, 1, 1), [0; 4]),
            geom((128, 128, 1), (28, 28), (1, 1, 1), [0; 4]),
            geom((64, 64, 1), (56, 56), (1, 1, 1), [0; 4]),
            geom((64, 128, 1), (56, 56), (1, 2, 1), [0; 4]),
            geom((128, 256, 1), (28, 28), (1, 2, 1), [0; 4]),
            geom((256, 512, 1), (14, 14), (1, 2, 1), [0; 4]),
            geom((960, 160, 1), (7, 7), (1, 1, 1), [0; 4]),
            geom((384, 64, 1), (14, 14), (1, 1, 1), [0; 4]),
        ];
        for g in shapes {
            let x = pattern(g.c_in * g.h * g.w, 37, 101, 0.02);
            let w = pattern(g.c_out * g.cin_g() * g.kh * g.kw, 53, 97, 0.01);
            let epi = Epilogue::default();
            let gc = GemmConv::new(g, w.clone(), epi.clone(), 1);
            let dc = DirectConv::new(g, &w, epi.clone(), 1);
            let wg = Winograd::choose(&g).map(|tile| Winograd::new(g, &w, epi.clone(), tile, 1));
            let wl = wg.as_ref().map_or(0, |k| k.scratch_len());
            let mut scratch = vec![0.0; gc.scratch_len().max(dc.scratch_len()).max(wl)];
            let mut y = vec![0.0; g.c_out * g.h_out * g.w_out];
            let [a, b, c] = interleaved_ms(15, |i| match i {
                0 => gc.run(&x, None, None, &mut y, &mut scratch),
                1 => dc.run(&x, [None, None], &mut y, &mut scratch),
                _ => {
                    if let Some(wg) = &wg {
                        wg.run(&x, [None, None], &mut y, &mut scratch);
                    }
                }
            });
            let gf = |ms: f64| 2.0 * g.macs() as f64 / ms / 1e6;
            let wino = match wg {
                Some(_) => format!("  winograd {c:.3}"),
                None => String::new(),
            };
            eprintln!(
                "{:>3}->{:<3} g{} {:>3}x{:<3} k{} s{}: im2col {a:.3} ms ({:.0} GF/s)  direct {b:.3} ({:.0}){wino}",
                g.c_in, g.c_out, g.group, g.h, g.w, g.kh, g.stride[0], gf(a), gf(b)
            );
        }
    }
}

#[cfg(test)]
mod pair_bench {
    use super::*;
    use crate::kernels::dense::DenseConv;
    use crate::testutil::{interleaved_ms, pattern};

    /// An SSC pair as one direct conv against its two convs run apart (each on the kernel the
    /// plan would pick), interleaved in one process:
    /// `cargo test --release -p ssc-jit bench_pairs -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn bench_pairs() {
        for (c, hw, s) in [
            (64, 56, 2),
            (128, 28, 2),
            (256, 14, 1),
            (256, 14, 2),
            (512, 7, 1),
        ] {
            let co = if s == 2 { 2 * c } else { c };
            let h_out = (hw - 1) / s + 1;
            let ga = ConvGeom {
                c_in: c,
                c_out: co,
                group: 4,
                h: hw,
                w: hw,
                kh: 3,
                kw: 3,
                stride: [s, s],
                dilation: [1, 1],
                pads: [1; 4],
                h_out,
                w_out: h_out,
            };
            let gb = ConvGeom {
                group: 1,
                kh: 1,
                kw: 1,
                pads: [0; 4],
                ..ga
            };
            let x = pattern(c * hw * hw, 37, 101, 0.02);
            let wa = pattern(co * (c / 4) * 9, 53, 97, 0.01);
            let wb = pattern(co * c, 29, 89, 0.01);
            let n = co * h_out * h_out;
            let r = pattern(n, 7, 11, 0.3);
            let epi = |res| Epilogue {
                bias: Some(vec![0.1; co]),
                residual: res,
                act: crate::spec::Activation::Relu,
            };
            let pair = DirectConv::with_pointwise(
                ga,
                &wa,
                Some(Pointwise {
                    weights: &wb,
                    tap: [1, 1],
                }),
                epi(true),
                1,
            );
            let a = DenseConv::new(ga, wa.clone(), epi(false), 1, true);
            let b = DenseConv::new(gb, wb.clone(), epi(true), 1, true);
            let len = pair.scratch_len().max(a.scratch_len()).max(b.scratch_len());
            let mut scratch = vec![0.0; len];
            let (mut t, mut y) = (vec![0.0; n], vec![0.0; n]);
            let [p, q] = interleaved_ms(21, |i| {
                if i == 0 {
                    pair.run(&x, [Some(&r), None], &mut y, &mut scratch);
                } else {
                    a.run(&x, None, None, &mut t, &mut scratch);
                    b.run(&x, Some(&t), Some(&r), &mut y, &mut scratch);
                }
            });
            eprintln!(
                "{c:>3}->{co:<3} g4 {hw:>2}x{hw:<2} s{s}: pair {p:.3} ms, apart {q:.3} ms ({} + {})",
                a.kind(),
                b.kind()
            );
        }
    }
}
