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
//!
//! On AVX-512 hosts two 16-lane forms replace the AVX2 one where they measured faster
//! (`bench_flat`, 1 thread, interleaved, session 5): 3x3 rows in blocks of 16 output columns
//! with k-masked loads at the row ends ([`Block16`]; stride 2 deinterleaved by two-source
//! permutes, 1.2-1.7x; stride 1 on planes past the flat form's, 1.4-1.75x), and small
//! stride-1 planes (at most 14x14 outputs, 3x3 or 5x5) computed over the flattened plane
//! ([`Flat`], 1.15-1.4x). Both add the same taps in the same order as the AVX2 form, so their
//! outputs are bit-identical to it.

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
    /// The AVX-512 form, where one is taken ([`Flat::suits`], [`Block16::suits`]).
    wide: Option<Wide>,
}

/// The AVX-512 forms of the kernel.
#[derive(Clone, Debug)]
enum Wide {
    /// Small stride-1 planes, 16 outputs per vector across rows.
    Flat(Box<Flat>),
    /// 3x3 at stride 1 (planes past the flat form's) or 2, rows in blocks of 16 output
    /// columns.
    Rows(Vec<Block16>),
}

/// A block of 16 output columns of the 3x3 AVX-512 row form. At stride 1 an input row gives
/// its 3 tap vectors from 3 masked loads (from `x0 - pad_left + kx`). At stride 2 also from 3
/// loads: the 32 columns from `2*x0 - pad_left`, split into the even (tap 0) and odd (tap 1)
/// columns by one two-source permute each, and the column after them, shifted into the even
/// columns' last lane (`valignd`) for tap 2; the AVX2 row form needs 8 loads and 6 shuffles
/// (and a permute before each store) for the same 16 outputs. Masked loads (k registers, no
/// fault on masked-off lanes) take the padding at the row ends.
#[derive(Clone, Copy, Debug)]
struct Block16 {
    /// First output column.
    x0: usize,
    /// The lanes of the three loads that lie inside the input row: at stride 1 the 16 columns
    /// from `x0 - pad_left + kx`; at stride 2 the 16 from `2*x0 - pad_left`, the 16 after them
    /// and the one column after those.
    loads: [u16; 3],
    /// The lanes whose output column exists.
    store: u16,
}

impl Block16 {
    /// Whether the row form computes `g` (a geometry `Depthwise::suits`) on this host:
    /// AVX-512, 3x3, stride 2, or stride 1 where the flat form does not.
    fn suits(g: &ConvGeom) -> bool {
        #[cfg(target_arch = "x86_64")]
        let avx512 = crate::kernels::par::has_avx512f();
        #[cfg(not(target_arch = "x86_64"))]
        let avx512 = false;
        avx512
            && g.kh == 3
            && g.kw == 3
            && (g.stride == [2, 2] || g.stride == [1, 1] && !Flat::suits(g))
    }

    /// The blocks of an output row of `g`.
    fn blocks(g: &ConvGeom) -> Vec<Block16> {
        let w = g.w as isize;
        let lanes = |from: isize, n: usize| -> u16 {
            (0..n)
                .filter(|&l| (0..w).contains(&(from + l as isize)))
                .fold(0, |m, l| m | 1 << l)
        };
        (0..g.w_out)
            .step_by(FLAT_LANES)
            .map(|x0| {
                let c0 = (g.stride[1] * x0) as isize - g.pads[1] as isize;
                Block16 {
                    x0,
                    loads: if g.stride[1] == 1 {
                        [lanes(c0, 16), lanes(c0 + 1, 16), lanes(c0 + 2, 16)]
                    } else {
                        [lanes(c0, 16), lanes(c0 + 16, 16), lanes(c0 + 32, 1)]
                    },
                    store: (0..FLAT_LANES.min(g.w_out - x0)).fold(0, |m, l| m | 1 << l),
                }
            })
            .collect()
    }
}

/// Stride-1 depthwise convolutions whose output rows are as long as the input's, on small
/// planes, computed over the flattened plane: 16 consecutive outputs per AVX-512 vector,
/// whatever rows they straddle. With `w_out == w`, output `p = y*w + x` reads tap `(ky, kx)` at
/// input `p + (ky - pad_top)*w + (kx - pad_left)`, so every tap of a vector is one masked
/// load; the mask (per vector and tap, the same for every channel) drops the lanes whose tap
/// lies in the padding, or whose output does not exist. A 7x7 plane is 4 vectors (the row
/// kernel: 7 rows of one 8-lane block, 2 of them edge rows with one dependent chain of FMAs
/// each), and the 4 vectors of a group are independent sums.
#[derive(Clone, Debug)]
struct Flat {
    /// Per 16-output vector, per tap (`ky * k + kx`): the lanes that load.
    masks: Vec<[u16; MAX_TAPS]>,
    /// Per vector: the lanes whose output exists.
    stores: Vec<u16>,
    /// Per tap: the input offset from the output index.
    offs: [isize; MAX_TAPS],
}

/// Taps of the largest kernel the flat form takes (5x5).
const MAX_TAPS: usize = 25;

/// Output lanes of one vector of the flat form.
const FLAT_LANES: usize = 16;

/// The largest plane (outputs) the flat form takes (`bench_flat`, see [`Flat::suits`]).
const FLAT_MAX_OUTS: usize = 14 * 14;

impl Flat {
    /// Whether the flat form computes `g` (a geometry `Depthwise::suits`) on this host:
    /// AVX-512, stride 1, rows as long as the input's, at most [`FLAT_MAX_OUTS`] outputs.
    fn suits(g: &ConvGeom) -> bool {
        #[cfg(target_arch = "x86_64")]
        let avx512 = crate::kernels::par::has_avx512f();
        #[cfg(not(target_arch = "x86_64"))]
        let avx512 = false;
        avx512
            && g.stride == [1, 1]
            && g.w_out == g.w
            && g.h_out * g.w_out <= FLAT_MAX_OUTS
            && g.kh <= 5
    }

    fn new(g: &ConvGeom) -> Flat {
        let k = g.kh;
        let (h, w) = (g.h as isize, g.w as isize);
        let (pt, pl) = (g.pads[0] as isize, g.pads[1] as isize);
        let n = g.h_out * g.w_out;
        let nv = n.div_ceil(FLAT_LANES);
        let mut masks = vec![[0u16; MAX_TAPS]; nv];
        let mut stores = vec![0u16; nv];
        for (v, st) in stores.iter_mut().enumerate() {
            for l in 0..FLAT_LANES {
                let p = v * FLAT_LANES + l;
                if p >= n {
                    continue;
                }
                *st |= 1 << l;
                let (y, x) = ((p / g.w_out) as isize, (p % g.w_out) as isize);
                for ky in 0..k {
                    for kx in 0..k {
                        let (iy, ix) = (y + ky as isize - pt, x + kx as isize - pl);
                        if (0..h).contains(&iy) && (0..w).contains(&ix) {
                            masks[v][ky * k + kx] |= 1 << l;
                        }
                    }
                }
            }
        }
        let offs = std::array::from_fn(|t| ((t / k) as isize - pt) * w + (t % k) as isize - pl);
        Flat {
            masks,
            stores,
            offs,
        }
    }
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
        let wide = Flat::suits(&geom) || Block16::suits(&geom);
        Depthwise::with_form(geom, weights, epi, wide)
    }

    /// As [`Depthwise::new`], in an AVX-512 form if `wide`: the flat one if [`Flat::suits`],
    /// else the row one if [`Block16::suits`], else the flat one on a geometry it can compute
    /// (stride 1, rows as long as the input's, at most 5x5, any plane size), so benchmarks can
    /// try it past `FLAT_MAX_OUTS`.
    fn with_form(geom: ConvGeom, weights: Vec<f32>, epi: Epilogue, wide: bool) -> Self {
        let plane = plane_of(&geom);
        let wide = wide.then(|| {
            if !Flat::suits(&geom) && Block16::suits(&geom) {
                Wide::Rows(Block16::blocks(&geom))
            } else {
                assert!(geom.stride == [1, 1] && geom.w_out == geom.w && geom.kh <= 5);
                Wide::Flat(Box::new(Flat::new(&geom)))
            }
        });
        Depthwise {
            geom,
            plane,
            weights,
            epi,
            blocks: plane.blocks(),
            wide,
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
            // `Flat::suits` and `Block16::suits` require AVX-512F.
            match (&self.wide, self.geom.kh, self.clamp(ch).is_some()) {
                (Some(Wide::Flat(f)), 3, true) => return self.channel_flat::<3, true>(f, ch, out),
                (Some(Wide::Flat(f)), 3, false) => {
                    return self.channel_flat::<3, false>(f, ch, out)
                }
                (Some(Wide::Flat(f)), _, true) => return self.channel_flat::<5, true>(f, ch, out),
                (Some(Wide::Flat(f)), _, false) => {
                    return self.channel_flat::<5, false>(f, ch, out)
                }
                (Some(Wide::Rows(b)), _, c) => {
                    return match (self.geom.stride[0], c) {
                        (1, true) => self.channel_3x3::<1, true>(b, ch, out),
                        (1, false) => self.channel_3x3::<1, false>(b, ch, out),
                        (_, true) => self.channel_3x3::<2, true>(b, ch, out),
                        (_, false) => self.channel_3x3::<2, false>(b, ch, out),
                    }
                }
                (None, ..) => {}
            }
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

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{Block16, Channel, Depthwise, Flat, FLAT_LANES, MAX_TAPS};

    /// Output rows the stride-2 form computes together (each input row is loaded and split
    /// once for all the output rows it feeds).
    const ROWS: usize = 4;

    impl Depthwise {
        /// The channel `ch` into `out` (`[h_out, w_out]`) in the flat form `f`, `K x K` taps;
        /// with `CLAMP`, the activation applied in registers (`Depthwise::clamp` is `Some`).
        ///
        /// # Safety
        /// The host has AVX-512F; `f` was built for this geometry with kernel size `K`;
        /// `ch.x` holds `h * w` floats, `ch.w` `K * K`, `out` and each residual
        /// `h_out * w_out`.
        #[target_feature(enable = "avx512f")]
        pub(super) unsafe fn channel_flat<const K: usize, const CLAMP: bool>(
            &self,
            f: &Flat,
            ch: &Channel,
            out: &mut [f32],
        ) {
            let g = &self.geom;
            debug_assert!(ch.x.len() == g.h * g.w && ch.w.len() == K * K && g.kh == K);
            debug_assert!(out.len() == g.h_out * g.w_out);
            let wv: [[__m512; K]; K] = std::array::from_fn(|ky| {
                std::array::from_fn(|kx| _mm512_set1_ps(ch.w[ky * K + kx]))
            });
            let bias = _mm512_set1_ps(ch.bias);
            let (lo, hi) = self.clamp(ch).unwrap_or((f32::NEG_INFINITY, f32::INFINITY));
            let (lo, hi) = (_mm512_set1_ps(lo), _mm512_set1_ps(hi));
            let nv = f.stores.len();
            let mut v = 0;
            // SAFETY (the three calls): vectors v..v + U exist.
            while v + 4 <= nv {
                unsafe { group::<K, 4, CLAMP>(f, ch.x, v, &wv, bias, lo, hi, out) };
                v += 4;
            }
            if v + 2 <= nv {
                unsafe { group::<K, 2, CLAMP>(f, ch.x, v, &wv, bias, lo, hi, out) };
                v += 2;
            }
            if v < nv {
                unsafe { group::<K, 1, CLAMP>(f, ch.x, v, &wv, bias, lo, hi, out) };
            }
            self.epilogue(ch, 0..g.h_out, out);
        }
    }

    impl Depthwise {
        /// The channel `ch` into `out` (`[h_out, w_out]`) in the 3x3 row form at stride `S`,
        /// blocks `blocks`; with `CLAMP`, the activation applied in registers.
        ///
        /// # Safety
        /// The host has AVX-512F; the geometry is 3x3 at stride `S` and `blocks` its
        /// `Block16::blocks`; `ch.x` holds `h * w` floats, `ch.w` 9, `out` and each residual
        /// `h_out * w_out`.
        #[target_feature(enable = "avx512f")]
        pub(super) unsafe fn channel_3x3<const S: usize, const CLAMP: bool>(
            &self,
            blocks: &[Block16],
            ch: &Channel,
            out: &mut [f32],
        ) {
            let g = &self.geom;
            debug_assert!(ch.x.len() == g.h * g.w && ch.w.len() == 9 && g.kh == 3);
            debug_assert!(out.len() == g.h_out * g.w_out);
            let wv: [[__m512; 3]; 3] = std::array::from_fn(|ky| {
                std::array::from_fn(|kx| _mm512_set1_ps(ch.w[ky * 3 + kx]))
            });
            let bias = _mm512_set1_ps(ch.bias);
            let (lo, hi) = self.clamp(ch).unwrap_or((f32::NEG_INFINITY, f32::INFINITY));
            let fin = (_mm512_set1_ps(lo), _mm512_set1_ps(hi));
            let (mut y, mut done) = (0, 0);
            while y < g.h_out {
                // SAFETY (the three calls): rows y..y + R exist.
                y += if y + ROWS <= g.h_out {
                    unsafe { self.rows_3x3::<S, ROWS, CLAMP>(blocks, ch.x, y, &wv, bias, fin, out) }
                } else if y + 2 <= g.h_out {
                    unsafe { self.rows_3x3::<S, 2, CLAMP>(blocks, ch.x, y, &wv, bias, fin, out) }
                } else {
                    unsafe { self.rows_3x3::<S, 1, CLAMP>(blocks, ch.x, y, &wv, bias, fin, out) }
                };
                if (y - done) * g.w_out >= 256 || y == g.h_out {
                    self.epilogue(ch, done..y, out);
                    done = y;
                }
            }
        }

        /// Output rows `y..y + R` of the row form at stride `S`: `bias + sum` of the taps in the
        /// image (rows in the padding are skipped, as in the row form, so the sums are the
        /// same), clamped with `CLAMP`, stored; returns `R`.
        ///
        /// # Safety
        /// As for [`Depthwise::channel_3x3`]; `y + R <= h_out`.
        #[inline(always)]
        #[allow(clippy::too_many_arguments)]
        unsafe fn rows_3x3<const S: usize, const R: usize, const CLAMP: bool>(
            &self,
            blocks: &[Block16],
            x: &[f32],
            y: usize,
            wv: &[[__m512; 3]; 3],
            bias: __m512,
            (lo, hi): (__m512, __m512),
            out: &mut [f32],
        ) -> usize {
            let g = &self.geom;
            let (h, w) = (g.h as isize, g.w as isize);
            let top = (S * y) as isize - g.pads[0] as isize;
            let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
            let odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
            for b in blocks {
                let c0 = (S * b.x0) as isize - g.pads[1] as isize;
                let mut acc = [bias; R];
                for i in 0..S * (R - 1) + 3 {
                    let iy = top + i as isize;
                    if !(0..h).contains(&iy) {
                        continue;
                    }
                    let row = x.as_ptr().wrapping_offset(iy * w + c0);
                    // SAFETY: the masks keep the lanes inside input row iy (which exists);
                    // masked-off lanes are not accessed.
                    let t = if S == 1 {
                        unsafe {
                            [
                                _mm512_maskz_loadu_ps(b.loads[0], row),
                                _mm512_maskz_loadu_ps(b.loads[1], row.wrapping_add(1)),
                                _mm512_maskz_loadu_ps(b.loads[2], row.wrapping_add(2)),
                            ]
                        }
                    } else {
                        let (l, m, r) = unsafe {
                            (
                                _mm512_maskz_loadu_ps(b.loads[0], row),
                                _mm512_maskz_loadu_ps(b.loads[1], row.wrapping_add(16)),
                                _mm512_maskz_loadu_ps(b.loads[2], row.wrapping_add(32)),
                            )
                        };
                        let t0 = _mm512_permutex2var_ps(l, even, m);
                        let t1 = _mm512_permutex2var_ps(l, odd, m);
                        let t2 = _mm512_castsi512_ps(_mm512_alignr_epi32::<1>(
                            _mm512_castps_si512(r),
                            _mm512_castps_si512(t0),
                        ));
                        [t0, t1, t2]
                    };
                    for (o, acc) in acc.iter_mut().enumerate() {
                        // Output row o uses input row i as tap row i - S*o.
                        if let Some(wr) = i.checked_sub(S * o).and_then(|ky| wv.get(ky)) {
                            for (&wk, &xv) in wr.iter().zip(&t) {
                                *acc = _mm512_fmadd_ps(wk, xv, *acc);
                            }
                        }
                    }
                }
                for (o, acc) in acc.into_iter().enumerate() {
                    let a = if CLAMP {
                        _mm512_min_ps(_mm512_max_ps(acc, lo), hi)
                    } else {
                        acc
                    };
                    let at = (y + o) * g.w_out + b.x0;
                    // SAFETY: the mask keeps the lanes of existing columns of row y + o.
                    unsafe { _mm512_mask_storeu_ps(out.as_mut_ptr().wrapping_add(at), b.store, a) };
                }
            }
            R
        }
    }

    /// Vectors `v..v + U` of the flat form: `bias + sum` of the `K x K` taps, clamped with
    /// `CLAMP`, stored to their existing outputs.
    ///
    /// # Safety
    /// AVX-512F; `v + U <= f.stores.len()`; `x` is the plane `f` was built for, `out` its
    /// output plane.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    unsafe fn group<const K: usize, const U: usize, const CLAMP: bool>(
        f: &Flat,
        x: &[f32],
        v: usize,
        wv: &[[__m512; K]; K],
        bias: __m512,
        lo: __m512,
        hi: __m512,
        out: &mut [f32],
    ) {
        let masks: [&[u16; MAX_TAPS]; U] = std::array::from_fn(|u| &f.masks[v + u]);
        let mut acc = [bias; U];
        for (ky, wr) in wv.iter().enumerate() {
            for (kx, &w) in wr.iter().enumerate() {
                let t = ky * K + kx;
                let base = x
                    .as_ptr()
                    .wrapping_offset(f.offs[t] + (v * FLAT_LANES) as isize);
                for (u, acc) in acc.iter_mut().enumerate() {
                    // SAFETY: the mask keeps only the lanes whose tap lies inside the plane
                    // `x` (masked-off lanes are not accessed).
                    let xv = unsafe {
                        _mm512_maskz_loadu_ps(masks[u][t], base.wrapping_add(u * FLAT_LANES))
                    };
                    *acc = _mm512_fmadd_ps(w, xv, *acc);
                }
            }
        }
        for (u, acc) in acc.into_iter().enumerate() {
            let a = if CLAMP {
                _mm512_min_ps(_mm512_max_ps(acc, lo), hi)
            } else {
                acc
            };
            let p0 = (v + u) * FLAT_LANES;
            // SAFETY: the mask keeps the lanes whose output exists (inside `out`).
            unsafe { _mm512_mask_storeu_ps(out.as_mut_ptr().wrapping_add(p0), f.stores[v + u], a) };
        }
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
            // The flat form's near misses (AVX-512 hosts): 7x7 and 14x14 planes, a plane of
            // whole vectors (16x4 outputs) and one whose last vector has one lane (13x13 ->
            // 169), a row longer than a vector (2x17), a single row and column, one-sided and
            // oversized pads with rows as long as the input's, outputs fewer rows than the input
            // (no top or bottom pad), 5x5 on 14x14 and 9x11, and the largest plane it takes.
            (5, 7, 7, 3, 1, [1; 4]),
            (3, 14, 14, 3, 1, [1; 4]),
            (2, 4, 16, 3, 1, [1; 4]),
            (3, 13, 13, 3, 1, [1; 4]),
            (2, 2, 17, 3, 1, [1; 4]),
            (2, 1, 1, 3, 1, [1; 4]),
            (2, 9, 10, 3, 1, [2, 2, 0, 0]),
            (2, 9, 10, 3, 1, [0, 0, 2, 2]),
            (2, 11, 6, 3, 1, [0, 1, 0, 1]),
            (2, 3, 5, 3, 1, [3, 1, 3, 1]),
            (3, 14, 14, 5, 1, [2; 4]),
            (2, 9, 11, 5, 1, [2, 4, 1, 0]),
            (2, 7, 28, 3, 1, [1; 4]),
            // The stride-2 form's: three blocks of 16 with a partial last one (66 -> 33
            // columns), one whole block whose column after the 32 lies in the right pad,
            // no left pad.
            (2, 7, 66, 3, 2, [1; 4]),
            (3, 6, 32, 3, 2, [0, 0, 0, 1]),
            (2, 5, 35, 3, 2, [1, 0, 1, 0]),
        ];
        for (c, h, w, k, s, pads) in cases {
            let g = dw_geom(c, h, w, k, s, pads);
            assert!(Depthwise::suits(&g));
            // Both forms where an AVX-512 one applies.
            let wide = Flat::suits(&g) || Block16::suits(&g);
            for flat in [false, true].into_iter().filter(|&f| !f || wide) {
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
                    let kern = Depthwise::with_form(g, wt.clone(), epi.clone(), flat);
                    let mut y = vec![f32::NAN; c * p];
                    in_pool(threads, || kern.run(&x, r, &mut y, &mut []));
                    let e = rel_err(&y, &reference_conv(&g, &x, &wt, &epi, r));
                    // f32 sums of 49 taps round more than of 9 or 25 (measured 1.2e-6 for 7x7).
                    let tol = if k == 7 { 4e-6 } else { 1e-6 };
                    assert!(e < tol, "{g:?} {act:?} flat {flat}: rel err {e:e}");
                }
            }
        }
    }

    /// The AVX-512 forms are taken exactly where `Flat::suits` or `Block16::suits` say, and
    /// compute what the row form computes, bit for bit (the same sums in the same order; a
    /// tap in the padding adds `w * 0`, or is skipped in both).
    #[test]
    fn wide_forms_match_the_rows() {
        if !crate::kernels::par::has_avx2_fma() {
            return;
        }
        for (c, h, w, k, s, pads) in [
            (6, 7, 7, 3, 1, [1; 4]),
            (4, 14, 14, 5, 1, [2; 4]),
            (3, 13, 15, 3, 1, [1; 4]),
            (4, 15, 15, 3, 2, [1; 4]),
            (3, 14, 50, 3, 2, [1, 1, 0, 0]),
            (2, 9, 40, 3, 2, [0, 1, 1, 0]),
            (4, 15, 15, 3, 1, [1; 4]),
            (3, 20, 37, 3, 1, [1; 4]),
            (2, 14, 14, 3, 1, [1, 0, 1, 0]),
            (2, 2, 2, 3, 1, [3; 4]),
        ] {
            let g = dw_geom(c, h, w, k, s, pads);
            let wide = Flat::suits(&g) || Block16::suits(&g);
            let kern = Depthwise::new(g, vec![0.0; c * k * k], Epilogue::default());
            assert_eq!(kern.wide.is_some(), wide);
            if !wide {
                continue;
            }
            let x = pattern(c * h * w, 41, 103, 0.03);
            let wt = pattern(c * k * k, 59, 89, 0.02);
            let p = g.h_out * g.w_out;
            for act in [Activation::Clip(0.0, 6.0), Activation::HardSwish] {
                let epi = Epilogue {
                    bias: Some((0..c).map(|i| i as f32 * 0.05).collect()),
                    residual: false,
                    act,
                };
                let (mut a, mut b) = (vec![f32::NAN; c * p], vec![f32::NAN; c * p]);
                let rows = Depthwise::with_form(g, wt.clone(), epi.clone(), false);
                rows.run(&x, [None, None], &mut a, &mut []);
                let wide = Depthwise::with_form(g, wt.clone(), epi, true);
                wide.run(&x, [None, None], &mut b, &mut []);
                assert!(
                    a.iter().zip(&b).all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{g:?}"
                );
            }
        }
        // Not taken: 5x5 at stride 2, 5x5 with rows shorter than the input's or on planes
        // over the flat form's bound, 7x7.
        for g in [
            dw_geom(4, 14, 14, 5, 2, [2; 4]),
            dw_geom(4, 14, 14, 5, 1, [2, 0, 2, 0]),
            dw_geom(4, 15, 15, 5, 1, [2; 4]),
            dw_geom(4, 14, 14, 7, 1, [3; 4]),
        ] {
            assert!(!Flat::suits(&g) && !Block16::suits(&g), "{g:?}");
        }
    }

    /// The AVX-512 forms against the row form on the depthwise shapes of MobileNetV2/V3 and
    /// EfficientNet-B0: the flat one on stride-1 planes around `FLAT_MAX_OUTS`, the stride-2
    /// one on every 3x3 stride-2 layer (bias + Clip(0, 6), 1 thread, interleaved):
    /// `cargo test --release -p ssc-jit bench_flat -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn bench_flat() {
        if !crate::kernels::par::has_avx512f() {
            return;
        }
        for (c, h, k, s) in [
            (96, 112, 3, 2),
            (64, 112, 3, 2),
            (16, 112, 3, 2),
            (144, 56, 3, 2),
            (72, 56, 3, 2),
            (192, 28, 3, 2),
            (240, 28, 3, 2),
            (576, 14, 3, 2),
            (960, 7, 3, 1),
            (576, 7, 3, 1),
            (1152, 7, 3, 1),
            (960, 7, 5, 1),
            (384, 14, 3, 1),
            (576, 14, 3, 1),
            (480, 14, 3, 1),
            (184, 14, 3, 1),
            (480, 14, 5, 1),
            (672, 14, 5, 1),
            (192, 28, 3, 1),
            (240, 28, 5, 1),
            (144, 56, 3, 1),
            (72, 56, 3, 1),
            (32, 112, 3, 1),
            (16, 112, 3, 1),
        ] {
            let g = dw_geom(c, h, h, k, s, [k / 2; 4]);
            let x = pattern(c * h * h, 37, 101, 0.02);
            let w = pattern(c * k * k, 53, 97, 0.01);
            let epi = Epilogue {
                bias: Some(vec![0.1; c]),
                residual: false,
                act: Activation::Clip(0.0, 6.0),
            };
            let rows = Depthwise::with_form(g, w.clone(), epi.clone(), false);
            let flat = Depthwise::with_form(g, w, epi, true);
            let mut y = vec![0.0; c * g.h_out * g.w_out];
            let [a, b] = crate::testutil::interleaved_ms(30, |i| match i {
                0 => rows.run(&x, [None, None], &mut y, &mut []),
                _ => flat.run(&x, [None, None], &mut y, &mut []),
            });
            eprintln!(
                "{c:>4} ch {h:>3}x{h:<3} k{k} s{s}: rows {a:.4} ms  avx-512 {b:.4} ms  ({:.2}x)",
                a / b
            );
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
