//! Dense and grouped 3x3 stride-1 convolutions by Winograd's minimal filtering F(m x m, 3x3),
//! m = 2 or 4: `(m + 2)²` multiplies per m x m output tile and channel pair instead of `9 m²`,
//! so the multiply work drops 2.25x (F(2x2)) or 4x (F(4x4)); the transforms are linear-time and
//! run on eight tiles per vector ([`F8`]).
//!
//! # Algorithm
//! With `d` an `α x α` input patch (`α = m + 2`) and `g` the 3x3 kernel, the m x m output tile
//! is `Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A` (Lavin & Gray, 2016). Per layer:
//! - *Filter transform (compile time, in f64):* `U[ξ][k][c] = (G g_kc Gᵀ)[ξ]` for the `α²`
//!   positions `ξ` of the transformed tile.
//! - *Input transform:* the zero-padded input is split once per image into its `m` column
//!   phases (column `q` goes to phase `q mod m`, index `q / m`), so column `j` of the patch of
//!   tile `tx` is entry `tx + j / m` of phase `j mod m`: each transform is a loop over a tile
//!   row with contiguous loads and stores, `V[ξ][c][t] = (Bᵀ d_ct B)[ξ]`.
//! - *`α²` products per group:* `M[ξ] = U[ξ] · V[ξ]` (`c_out/group x c_in/group` times
//!   `c_in/group x tiles`): through the `gemm` crate for deep groups, and through an AVX2
//!   register-blocked loop ([`avx2::small_k`]) for shallow ones (`c_in/group` up to
//!   [`SMALL_K`]), whose products are too small for `gemm`'s packing to pay off.
//! - *Output transform and epilogue:* `Y = Aᵀ M A` per tile, interleaved into the output rows,
//!   then bias, residuals and the activation while the row is in L1. Tiles past the output edge
//!   are computed and dropped.
//!
//! Tiles are processed in blocks of whole tile rows sized so `V` and `M` stay in L2. With the
//! `gemm` crate, every phase of a block splits over the rayon pool (channels for the
//! transforms, `(ξ, group)` products for the GEMMs); with the small-K loop, whole blocks go to
//! the threads, each with its own `V` and `M` (one parallel section per layer instead of three
//! per block). Everything runs as AVX2 code where the host has it (`par::simd`).
//!
//! # Accuracy
//! F(2x2) only adds and subtracts (`G` has halves, exact in binary), so compared with a direct
//! sum the result differs by reassociation. F(4x4)'s constants (`G` has sixths and
//! twenty-fourths, `Bᵀ` fours and fives, `Aᵀ` eights) amplify rounding: on the two-layer model
//! of `tests/models.rs` (64 and 128 channels, a residual) the worst relative error against the
//! reference executor is 6.7e-6 with F(4x4) (2.9e-7 with F(2x2)), 15x inside the JIT's 1e-4
//! contract; ResNet-18 with F(4x4) in its first two stages agrees with ONNX Runtime within
//! 4.6e-7 (`scripts/bench_jit.sh`). The unit test bounds F(4x4) at 2e-5 of the output's scale.
//!
//! # Where it is used
//! [`Winograd::choose`] takes it only where it measured faster than im2col: ungrouped layers
//! of 64+ channels. The small-K loop exists for the 64-channel layers (F(4x4) on ResNet's
//! 56x56 stage); shallow and grouped layers (SqueezeNet, the 16- to 128-channel groups of
//! block-grouped SSC models) measured no faster, because their transforms cost as much as the
//! products they save.

use std::ops::{Add, Mul, Sub};

use rayon::prelude::*;

use crate::kernels::par::{for_ranges, has_avx2_fma, par_units, simd, SendPtr};
use crate::kernels::{epilogue, sgemm, split_row};
use crate::spec::{ConvGeom, Epilogue};

/// Bytes of the `V` and `M` blocks together: about half of the 1 MiB L2 per core.
const BLOCK_BYTES: usize = 512 * 1024;

/// Fewest tiles per block for the `gemm` crate (unless the image has fewer): the GEMMs' `n`,
/// below which `gemm`'s packing and call overhead dominate.
const MIN_TILES: usize = 64;

/// Tiles handled per step of the output transform (stack buffers of this many tiles' rows).
const CHUNK: usize = 64;

/// Deepest group (`c_in / group`) whose products go through the small-K loop on AVX2 hosts.
const SMALL_K: usize = 64;

/// The output tile of the minimal filtering algorithm: F(2x2, 3x3) or F(4x4, 3x3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tile {
    F2,
    F4,
}

impl Tile {
    /// Output rows and columns per tile.
    const fn m(self) -> usize {
        match self {
            Tile::F2 => 2,
            Tile::F4 => 4,
        }
    }

    /// Positions of the transformed tile, `(m + 2)²`.
    const fn positions(self) -> usize {
        (self.m() + 2) * (self.m() + 2)
    }
}

/// Runs `f(begin, end)` over `0..n`: split over the rayon pool when `parallel`, else in one
/// call (the caller is already one of the pool's tasks).
#[inline(always)]
fn spread(parallel: bool, n: usize, min_part: usize, f: impl Fn(usize, usize) + Sync + Send) {
    if parallel {
        for_ranges(n, min_part, f);
    } else {
        f(0, n);
    }
}

/// A 3x3, stride-1, dilation-1 (possibly grouped) convolution computed by F(m x m, 3x3).
pub(crate) struct Winograd {
    geom: ConvGeom,
    tile: Tile,
    /// `[positions][c_out][cin_g]`: the transformed filters, one product's left operand per
    /// position.
    u: Vec<f32>,
    epi: Epilogue,
    /// Tile grid: `ceil(h_out / m) x ceil(w_out / m)`.
    th: usize,
    tw: usize,
    /// Tile rows per block.
    rows: usize,
    /// Row stride of the `V` and `M` blocks: the block's tiles rounded up to whole vectors.
    tb: usize,
    /// Whether the products go through [`avx2::small_k`] (whole blocks per thread) rather than
    /// the `gemm` crate (each phase of a block split over the threads).
    small_k: bool,
    /// `V` + `M` block buffers in the scratch: one per thread with `small_k`, else one.
    slots: usize,
}

impl Winograd {
    /// The tile that computes `g` fastest, if Winograd beats im2col + GEMM on it at all.
    /// Measured against the im2col path, single thread, interleaved in one process
    /// (`bench_tiles` below; medians, ms, im2col / F(2x2) / F(4x4)):
    /// - dense 64->64 on 56x56: 2.49-2.67 / 2.30-2.58 / 2.15-2.49;
    /// - dense 128->128 on 28x28: 2.32-2.47 / 1.59-1.87 / 1.30-1.68;
    /// - dense 256->256 on 14x14: 2.45-2.63 / 1.58-1.98 / 1.49-2.39;
    /// - dense 512->512 on 7x7 (16 F(2x2) tiles, 4 F(4x4) ones): 3.08 / 2.67 / 6.47;
    /// - shallow layers lose or tie (SqueezeNet's 16->64 on 55x55: 0.63-0.68 / 0.65-0.72 /
    ///   0.67-0.70; 64->256 on 13x13: 0.52-0.56 / 0.69-0.80 / 0.58-0.75), and so do the
    ///   4-group layers of block-grouped SSC models (16- to 128-channel groups; 64->64 on
    ///   56x56: 0.76-0.88 / 0.81-1.05 / 1.23-1.48), where the transforms cost as much as
    ///   the products they save.
    ///
    /// So: ungrouped layers of 64+ channels in and out take F(4x4) from 36 tiles up (28x28
    /// and larger); below that, F(2x2) from 16 tiles up but only with 128+ input channels
    /// (SqueezeNet's 64->256 layers ran 0.86-0.90 ms with it in the model, against ~0.55 on
    /// im2col); everything else stays on im2col.
    pub(crate) fn choose(g: &ConvGeom) -> Option<Tile> {
        if !Winograd::applies(g) || g.group != 1 || g.c_in < 64 || g.c_out < 64 {
            return None;
        }
        let tiles = |m: usize| g.h_out.div_ceil(m) * g.w_out.div_ceil(m);
        if tiles(4) >= 36 {
            Some(Tile::F4)
        } else if tiles(2) >= 16 && g.c_in >= 128 {
            Some(Tile::F2)
        } else {
            None
        }
    }

    /// Whether F(m x m, 3x3) computes `g` at all: a 3x3, stride-1, undilated kernel with at
    /// least 2x2 outputs.
    fn applies(g: &ConvGeom) -> bool {
        g.kh == 3
            && g.kw == 3
            && g.stride == [1, 1]
            && g.dilation == [1, 1]
            && g.h_out >= 2
            && g.w_out >= 2
    }

    /// Builds the kernel; `weights` is ONNX's `[c_out, c_in/group, 3, 3]`, `threads` the pool
    /// size it will run on. Any geometry [`Winograd::applies`] to is computed correctly.
    pub(crate) fn new(
        geom: ConvGeom,
        weights: &[f32],
        epi: Epilogue,
        tile: Tile,
        threads: usize,
    ) -> Winograd {
        debug_assert!(Winograd::applies(&geom));
        let (co, ci, np) = (geom.c_out, geom.cin_g(), tile.positions());
        let mut u = vec![0.0f32; np * co * ci];
        for k in 0..co {
            for c in 0..ci {
                let t = filter_transform(tile, &weights[(k * ci + c) * 9..][..9]);
                for (xi, &v) in t[..np].iter().enumerate() {
                    u[(xi * co + k) * ci + c] = v;
                }
            }
        }
        let m = tile.m();
        let th = geom.h_out.div_ceil(m);
        let tw = geom.w_out.div_ceil(m);
        let small_k = has_avx2_fma() && ci <= SMALL_K;
        let threads = threads.max(1);
        let fit = BLOCK_BYTES / (np * (geom.c_in + geom.c_out) * tw * 4);
        let rows = if small_k {
            // At least a vector of tiles, and a block for every thread.
            fit.max(8usize.div_ceil(tw)).min(th.div_ceil(threads))
        } else {
            fit.max(MIN_TILES.div_ceil(tw))
        }
        .clamp(1, th);
        let slots = if small_k {
            threads.min(th.div_ceil(rows))
        } else {
            1
        };
        Winograd {
            geom,
            tile,
            u,
            epi,
            th,
            tw,
            rows,
            tb: (rows * tw)
                .next_multiple_of(8)
                .max((rows - 1) * tw + tw.next_multiple_of(8)),
            small_k,
            slots,
        }
    }

    /// The tile this kernel computes with.
    pub(crate) fn tile(&self) -> Tile {
        self.tile
    }

    /// Floats per row of a split input phase: `tw + 1` entries, with zeros up to a whole
    /// number of vectors of tiles.
    fn phase_row(&self) -> usize {
        self.tw.next_multiple_of(8) + 1
    }

    /// Floats of one channel's split input: `m` phases of `m * th + 2` rows.
    fn split_len(&self) -> usize {
        let m = self.tile.m();
        m * (m * self.th + 2) * self.phase_row()
    }

    /// Floats of one `V` + `M` block buffer.
    fn block_len(&self) -> usize {
        self.tile.positions() * (self.geom.c_in + self.geom.c_out) * self.tb
    }

    /// f32 elements of scratch one image needs: the split input, then the block buffers.
    pub(crate) fn scratch_len(&self) -> usize {
        self.geom.c_in * self.split_len() + self.slots * self.block_len()
    }

    /// One image: `input` is `[c_in, h, w]`; `output` and the residuals are
    /// `[c_out, h_out, w_out]`.
    pub(crate) fn run(
        &self,
        input: &[f32],
        res: [Option<&[f32]>; 2],
        output: &mut [f32],
        scratch: &mut [f32],
    ) {
        let g = self.geom;
        let sl = self.split_len();
        let (split, blocks) = scratch.split_at_mut(g.c_in * sl);
        par_units(
            split,
            sl,
            4,
            #[inline(always)]
            |c0, part| {
                for (i, dst) in part.chunks_exact_mut(sl).enumerate() {
                    let c = c0 + i;
                    self.split_channel(&input[c * g.h * g.w..(c + 1) * g.h * g.w], dst);
                }
            },
        );
        let split: &[f32] = split;
        let out = SendPtr(output.as_mut_ptr());
        debug_assert!(output.len() == g.c_out * g.h_out * g.w_out);
        let nb = self.th.div_ceil(self.rows);
        let bl = self.block_len();
        if !self.small_k {
            for b in 0..nb {
                self.block(split, b, &mut blocks[..bl], res, out, true);
            }
            return;
        }
        let slots = self.slots.min(nb);
        let part = |s: usize| nb * s / slots..nb * (s + 1) / slots;
        if slots <= 1 {
            simd(
                #[inline(always)]
                || self.blocks(split, part(0), &mut blocks[..bl], res, out),
            );
        } else {
            blocks[..slots * bl]
                .par_chunks_mut(bl)
                .enumerate()
                .for_each(|(s, buf)| {
                    simd(
                        #[inline(always)]
                        || self.blocks(split, part(s), buf, res, out),
                    )
                });
        }
    }

    /// Blocks `bs` one after the other on this thread, with `buf` as their `V` and `M`.
    #[inline(always)]
    fn blocks(
        &self,
        split: &[f32],
        bs: std::ops::Range<usize>,
        buf: &mut [f32],
        res: [Option<&[f32]>; 2],
        out: SendPtr,
    ) {
        for b in bs {
            self.block(split, b, buf, res, out, false);
        }
    }

    /// Block `b` (tile rows `b * rows ..`) into the output, with `buf` as its `V` and `M`;
    /// each phase split over the pool when `parallel`.
    #[inline(always)]
    fn block(
        &self,
        split: &[f32],
        b: usize,
        buf: &mut [f32],
        res: [Option<&[f32]>; 2],
        out: SendPtr,
        parallel: bool,
    ) {
        let ty0 = b * self.rows;
        let ty1 = (ty0 + self.rows).min(self.th);
        let (v, m) = buf.split_at_mut(self.tile.positions() * self.geom.c_in * self.tb);
        self.input_block(split, ty0, ty1, v, parallel);
        self.products(v, m, (ty1 - ty0) * self.tw, parallel);
        match self.tile {
            Tile::F2 => self.output_block::<4, 2, 16>(m, ty0, ty1, res, out, parallel),
            Tile::F4 => self.output_block::<6, 4, 36>(m, ty0, ty1, res, out, parallel),
        }
    }

    /// Channel `src` (`h x w`) zero-padded to `(m th + 2) x (m (tw + 1))` and split into its
    /// `m` column phases, one after the other in `dst` (rows of `tw + 1`).
    #[inline(always)]
    fn split_channel(&self, src: &[f32], dst: &mut [f32]) {
        let g = &self.geom;
        let (pt, pl) = (g.pads[0], g.pads[1]);
        let n = self.phase_row();
        let row =
            |r: usize| (r >= pt && r < pt + g.h).then(|| &src[(r - pt) * g.w..(r - pt + 1) * g.w]);
        match self.tile {
            Tile::F2 => {
                let [p0, p1] = split_phases::<2>(dst);
                for (r, (a, b)) in p0
                    .chunks_exact_mut(n)
                    .zip(p1.chunks_exact_mut(n))
                    .enumerate()
                {
                    match row(r) {
                        Some(line) => split_row(line, pl, [a, b]),
                        None => [a, b].into_iter().for_each(|p| p.fill(0.0)),
                    }
                }
            }
            Tile::F4 => {
                let [p0, p1, p2, p3] = split_phases::<4>(dst);
                for (r, (((a, b), c), d)) in p0
                    .chunks_exact_mut(n)
                    .zip(p1.chunks_exact_mut(n))
                    .zip(p2.chunks_exact_mut(n))
                    .zip(p3.chunks_exact_mut(n))
                    .enumerate()
                {
                    match row(r) {
                        Some(line) => split_row(line, pl, [a, b, c, d]),
                        None => [a, b, c, d].into_iter().for_each(|p| p.fill(0.0)),
                    }
                }
            }
        }
    }

    /// `V[ξ][c][t]` for the tiles of tile rows `ty0..ty1`; with `small_k`, the columns up to the
    /// next whole vector are zeroed (the small-K loop reads them).
    #[inline(always)]
    fn input_block(&self, split: &[f32], ty0: usize, ty1: usize, v: &mut [f32], parallel: bool) {
        let g = self.geom;
        let (tw, sl, tb, np) = (self.tw, self.split_len(), self.tb, self.tile.positions());
        let nt = (ty1 - ty0) * tw;
        let pad = if self.small_k {
            nt..nt.next_multiple_of(8)
        } else {
            nt..nt
        };
        let (n, w8) = (self.phase_row(), tw.next_multiple_of(8));
        let vp = SendPtr(v.as_mut_ptr());
        spread(
            parallel,
            g.c_in,
            8,
            #[inline(always)]
            |c0, c1| {
                for c in c0..c1 {
                    let s = &split[c * sl..(c + 1) * sl];
                    // SAFETY: the rows `V[ξ][c][..tb]` are disjoint, inside `v` (positions x
                    // c_in x tb floats), and written by the task of channel `c` only.
                    let dst = |xi: usize, t0: usize, len: usize| unsafe {
                        std::slice::from_raw_parts_mut(
                            vp.get().add((xi * g.c_in + c) * tb + t0),
                            len,
                        )
                    };
                    for ty in ty0..ty1 {
                        let t0 = (ty - ty0) * tw;
                        match self.tile {
                            Tile::F2 => {
                                let ps = phases::<2>(s);
                                input_row::<2, 4, 16>(
                                    std::array::from_fn(|i| {
                                        ps.map(|p| &p[(2 * ty + i) * n..][..n])
                                    }),
                                    std::array::from_fn(|xi| dst(xi, t0, w8)),
                                );
                            }
                            Tile::F4 => {
                                let ps = phases::<4>(s);
                                input_row::<4, 6, 36>(
                                    std::array::from_fn(|i| {
                                        ps.map(|p| &p[(4 * ty + i) * n..][..n])
                                    }),
                                    std::array::from_fn(|xi| dst(xi, t0, w8)),
                                );
                            }
                        }
                    }
                    for xi in 0..np {
                        dst(xi, pad.start, pad.len()).fill(0.0);
                    }
                }
            },
        );
    }

    /// `M[ξ] = U[ξ] · V[ξ]` per group, for `nt` tiles (row stride of both blocks: `tb`).
    #[inline(always)]
    fn products(&self, v: &[f32], m: &mut [f32], nt: usize, parallel: bool) {
        let g = self.geom;
        let tb = self.tb;
        let (ci, co) = (g.cin_g(), g.cout_g());
        let mp = SendPtr(m.as_mut_ptr());
        spread(
            parallel,
            self.tile.positions() * g.group,
            1,
            #[inline(always)]
            |a, b| {
                for job in a..b {
                    let (xi, grp) = (job / g.group, job % g.group);
                    let lhs = &self.u[(xi * g.c_out + grp * co) * ci..][..co * ci];
                    let rhs = &v[(xi * g.c_in + grp * ci) * tb..][..ci * tb];
                    let dst = (xi * g.c_out + grp * co) * tb;
                    debug_assert!(dst + co * tb <= m.len());
                    #[cfg(target_arch = "x86_64")]
                    if self.small_k {
                        // SAFETY: AVX2 and FMA were detected (`small_k`); `lhs` is co x ci,
                        // `rhs` ci rows of tb >= nt rounded up to 8 floats (the padding zeroed
                        // by `input_block`), and the destination rows `M[ξ][grp*co..][..co]`
                        // (stride tb) are inside `m` and written by this job only.
                        unsafe {
                            avx2::small_k(
                                (lhs.as_ptr(), ci, co),
                                rhs.as_ptr(),
                                mp.get().add(dst),
                                tb,
                                nt.next_multiple_of(8),
                            );
                        }
                        continue;
                    }
                    // SAFETY: the destination rows `M[ξ][grp*co .. +co][..nt]` (row stride tb)
                    // are inside `m` and written by this job only; `lhs` is co x ci and `rhs`
                    // ci x nt with row stride tb, both in bounds as sliced above.
                    unsafe {
                        sgemm(
                            (co, nt, ci),
                            mp.get().add(dst),
                            tb,
                            false,
                            (lhs.as_ptr(), ci, 1),
                            (rhs.as_ptr(), tb, 1),
                            1.0,
                            1,
                        );
                    }
                }
            },
        );
    }

    /// Output rows `m*ty0 .. m*ty1` (clipped to `h_out`) of every channel from `M`, with the
    /// epilogue, by the output transform of `A x A` positions to `M x M` outputs.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn output_block<const A: usize, const M: usize, const NP: usize>(
        &self,
        m: &[f32],
        ty0: usize,
        ty1: usize,
        res: [Option<&[f32]>; 2],
        out: SendPtr,
        parallel: bool,
    ) {
        let g = self.geom;
        let mm = self.tile.m();
        let (tw, tb, wo, ho) = (self.tw, self.tb, g.w_out, g.h_out);
        let plane = ho * wo;
        let act = self.epi.act;
        spread(
            parallel,
            g.c_out,
            4,
            #[inline(always)]
            |k0, k1| {
                let mut acc = [[0.0f32; 4 * CHUNK]; 4];
                for k in k0..k1 {
                    let bias = self.epi.bias.as_ref().map_or(0.0, |b| b[k]);
                    let ms: [&[f32]; NP] =
                        std::array::from_fn(|xi| &m[(xi * g.c_out + k) * tb..][..tb]);
                    for ty in ty0..ty1 {
                        let t0 = (ty - ty0) * tw;
                        let mut tx = 0;
                        while tx < tw {
                            let n = CHUNK.min(tw - tx);
                            let n8 = n.next_multiple_of(8);
                            output_row::<A, M, NP>(
                                std::array::from_fn(|xi| &ms[xi][t0 + tx..t0 + tx + n8]),
                                &mut acc,
                            );
                            let x0 = mm * tx;
                            let len = (mm * n).min(wo - x0);
                            for (dy, a) in acc[..mm].iter().enumerate() {
                                let y = mm * ty + dy;
                                if y >= ho {
                                    break;
                                }
                                let at = k * plane + y * wo + x0;
                                let r = res.map(|r| r.map(|r| &r[at..][..len]));
                                // SAFETY: `at + len <= c_out * plane`, the output's length.
                                // Row `y` of channel `k` from column `x0` belongs to this task
                                // alone: tasks split the channels (phase-parallel) or the tile
                                // rows (block-parallel).
                                let o = unsafe {
                                    std::slice::from_raw_parts_mut(out.get().add(at), len)
                                };
                                epilogue(Some(&a[..len]), bias, r, o, act);
                            }
                            tx += n;
                        }
                    }
                }
            },
        );
    }
}

/// `dst` cut into `M` equal phases.
fn split_phases<const M: usize>(dst: &mut [f32]) -> [&mut [f32]; M] {
    let n = dst.len() / M;
    let mut rest = dst;
    std::array::from_fn(|_| {
        let (a, b) = std::mem::take(&mut rest).split_at_mut(n);
        rest = b;
        a
    })
}

/// One channel's split input cut into its `M` phases.
fn phases<const M: usize>(s: &[f32]) -> [&[f32]; M] {
    let n = s.len() / M;
    std::array::from_fn(|p| &s[p * n..(p + 1) * n])
}

/// `G g Gᵀ` for one 3x3 kernel, row-major `(m + 2)²` (the first 16 entries for F(2x2)),
/// computed in f64 and rounded once. (A fixed array: a `Vec` per kernel tripled ResNet-18's
/// compile time.)
fn filter_transform(tile: Tile, w: &[f32]) -> [f32; 36] {
    const G2: [[f64; 3]; 4] = [
        [1.0, 0.0, 0.0],
        [0.5, 0.5, 0.5],
        [0.5, -0.5, 0.5],
        [0.0, 0.0, 1.0],
    ];
    const G4: [[f64; 3]; 6] = [
        [1.0 / 4.0, 0.0, 0.0],
        [-1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0],
        [-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0],
        [1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0],
        [1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0],
        [0.0, 0.0, 1.0],
    ];
    let g: &[[f64; 3]] = match tile {
        Tile::F2 => &G2,
        Tile::F4 => &G4,
    };
    let a = g.len();
    let mut gw = [[0.0f64; 3]; 6];
    for (gi, row) in g.iter().zip(&mut gw) {
        for (j, v) in row.iter_mut().enumerate() {
            *v = (0..3).map(|r| gi[r] * w[r * 3 + j] as f64).sum();
        }
    }
    let mut out = [0.0f32; 36];
    for (i, row) in gw[..a].iter().enumerate() {
        for (j, gj) in g.iter().enumerate() {
            out[i * a + j] = (0..3).map(|c| row[c] * gj[c]).sum::<f64>() as f32;
        }
    }
    out
}

/// Eight tiles' values of one transform position. The transforms are written on these plain
/// arrays, so in the AVX2 code they are inlined into (`par::simd`) each operation is one
/// 8-wide instruction, and elsewhere two SSE ones, with no intrinsics to keep in step.
#[derive(Clone, Copy)]
struct F8([f32; 8]);

impl Add for F8 {
    type Output = F8;
    #[inline(always)]
    fn add(mut self, o: F8) -> F8 {
        for (a, b) in self.0.iter_mut().zip(o.0) {
            *a += b;
        }
        self
    }
}

impl Sub for F8 {
    type Output = F8;
    #[inline(always)]
    fn sub(mut self, o: F8) -> F8 {
        for (a, b) in self.0.iter_mut().zip(o.0) {
            *a -= b;
        }
        self
    }
}

impl Mul<f32> for F8 {
    type Output = F8;
    #[inline(always)]
    fn mul(mut self, c: f32) -> F8 {
        for a in &mut self.0 {
            *a *= c;
        }
        self
    }
}

impl F8 {
    /// The first eight floats of `s`.
    #[inline(always)]
    fn load(s: &[f32]) -> F8 {
        F8(s[..8].try_into().expect("eight floats"))
    }
}

/// `Bᵀ x` for one column or row of `A` values: F(2x2)'s for `A = 4`, F(4x4)'s for `A = 6`.
/// (One function on the size rather than one per tile, so callers call it directly: passed
/// as a function value, F(4x4)'s stayed an out-of-line call.)
#[inline(always)]
fn bt<const A: usize>(x: [F8; A]) -> [F8; A] {
    let mut y = x;
    if A == 4 {
        y[0] = x[0] - x[2];
        y[1] = x[1] + x[2];
        y[2] = x[2] - x[1];
        y[3] = x[1] - x[3];
    } else {
        debug_assert_eq!(A, 6);
        let (a, b) = (x[4] - x[2], x[3] - x[1]);
        y[0] = (x[0] - x[2]) * 4.0 + a;
        y[1] = (x[3] + x[4]) - (x[1] + x[2]) * 4.0;
        y[2] = (x[4] - x[3]) + (x[1] - x[2]) * 4.0;
        y[3] = a + b * 2.0;
        y[4] = a - b * 2.0;
        y[5] = (x[1] - x[3]) * 4.0 + (x[5] - x[3]);
    }
    y
}

/// `Aᵀ x` for one column or row of `A` values, to `M = A - 2`: F(2x2)'s or F(4x4)'s.
#[inline(always)]
fn at<const A: usize, const M: usize>(x: [F8; A]) -> [F8; M] {
    let mut y = [x[0]; M];
    if A == 4 {
        y[0] = x[0] + x[1] + x[2];
        y[1] = x[1] - x[2] - x[3];
    } else {
        debug_assert_eq!((A, M), (6, 4));
        let (a, b, c, d) = (x[1] + x[2], x[1] - x[2], x[3] + x[4], x[3] - x[4]);
        y[0] = x[0] + a + c;
        y[1] = b + d * 2.0;
        y[2] = a + c * 4.0;
        y[3] = b + d * 8.0 + x[5];
    }
    y
}

/// `Bᵀ d B` for one tile row, eight tiles at a time: `r[i][p]` is phase `p` of padded row
/// `M ty + i`, so patch column `j` of tile `tx` is `r[i][j % M][tx + j / M]`, and `out[ξ][tx]`
/// receives position `ξ` of tile `tx`. The phase rows hold `tw.next_multiple_of(8) + 1`
/// floats and the `out` rows one fewer: the tiles past `tw` are scratch the caller overwrites
/// or ignores.
#[inline(always)]
fn input_row<const M: usize, const A: usize, const NP: usize>(
    r: [[&[f32]; M]; A],
    out: [&mut [f32]; NP],
) {
    let w8 = out[0].len();
    let zero = F8([0.0; 8]);
    for tx in (0..w8).step_by(8) {
        // Plain loops over the fixed sizes (they unroll); `array::from_fn` at these sizes
        // compiled to calls and copies.
        let mut cols = [[zero; A]; A];
        for (j, col) in cols.iter_mut().enumerate() {
            let mut x = [zero; A];
            for (i, x) in x.iter_mut().enumerate() {
                *x = F8::load(&r[i][j % M][tx + j / M..]);
            }
            *col = bt(x);
        }
        for i in 0..A {
            let mut x = [zero; A];
            for (j, x) in x.iter_mut().enumerate() {
                *x = cols[j][i];
            }
            for (j, v) in bt(x).into_iter().enumerate() {
                out[i * A + j][tx..tx + 8].copy_from_slice(&v.0);
            }
        }
    }
}

/// `Aᵀ m A` for the tiles of one tile row, eight at a time (`m[ξ][tx]`, rows of a whole
/// number of vectors): output row `i` of the tiles goes to `y[i]`, interleaved
/// (`y[i][M tx + j]`).
#[inline(always)]
fn output_row<const A: usize, const M: usize, const NP: usize>(
    m: [&[f32]; NP],
    y: &mut [[f32; 4 * CHUNK]; 4],
) {
    let zero = F8([0.0; 8]);
    for tx in (0..m[0].len()).step_by(8) {
        let mut cols = [[zero; M]; A];
        for (j, col) in cols.iter_mut().enumerate() {
            let mut x = [zero; A];
            for (i, x) in x.iter_mut().enumerate() {
                *x = F8::load(&m[i * A + j][tx..]);
            }
            *col = at::<A, M>(x);
        }
        for (i, y) in y.iter_mut().enumerate().take(M) {
            let mut x = [zero; A];
            for (j, x) in x.iter_mut().enumerate() {
                *x = cols[j][i];
            }
            let row = at::<A, M>(x);
            for (t, dst) in y[M * tx..M * tx + 8 * M].chunks_exact_mut(M).enumerate() {
                for (d, v) in dst.iter_mut().zip(&row) {
                    *d = v.0[t];
                }
            }
        }
    }
}

/// The products of shallow groups, register-blocked for AVX2 + FMA.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    /// `dst[k][t] = Σ_c u[k][c] · v[c][t]` for `k < co` and `t < n8` (a multiple of 8): `u` is
    /// `(pointer, ci, co)` with rows of `ci`; `v` and `dst` have rows of stride `tb`. Blocks of
    /// 4 output rows x 24 columns keep 12 accumulators in registers, each input vector loaded
    /// once per 4 FMAs.
    ///
    /// # Safety
    /// The host has AVX2 and FMA; `u` holds `co * ci` floats, `v` `ci` rows of `n8` floats and
    /// `dst` `co` rows of `n8` (strides `tb`), and `dst` overlaps neither.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn small_k(
        (u, ci, co): (*const f32, usize, usize),
        v: *const f32,
        dst: *mut f32,
        tb: usize,
        n8: usize,
    ) {
        // SAFETY: every block reads and writes inside the bounds the caller guarantees.
        unsafe {
            let mut k = 0;
            while k + 4 <= co {
                rows::<4>(u.add(k * ci), ci, v, dst.add(k * tb), tb, n8);
                k += 4;
            }
            while k < co {
                rows::<1>(u.add(k * ci), ci, v, dst.add(k * tb), tb, n8);
                k += 1;
            }
        }
    }

    /// `KB` output rows, all `n8` columns.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn rows<const KB: usize>(
        u: *const f32,
        ci: usize,
        v: *const f32,
        dst: *mut f32,
        tb: usize,
        n8: usize,
    ) {
        // SAFETY: column blocks stay below `n8` (see `small_k`).
        unsafe {
            let mut t = 0;
            while t + 24 <= n8 {
                block::<KB, 3>(u, ci, v.add(t), dst.add(t), tb);
                t += 24;
            }
            if t + 16 <= n8 {
                block::<KB, 2>(u, ci, v.add(t), dst.add(t), tb);
                t += 16;
            }
            if t + 8 <= n8 {
                block::<KB, 1>(u, ci, v.add(t), dst.add(t), tb);
            }
        }
    }

    /// `KB` output rows x `NV` vectors of columns.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    #[allow(clippy::needless_range_loop)] // `kk` and `j` index register arrays in step
    unsafe fn block<const KB: usize, const NV: usize>(
        u: *const f32,
        ci: usize,
        v: *const f32,
        dst: *mut f32,
        tb: usize,
    ) {
        // SAFETY: see `small_k`.
        unsafe {
            let mut acc = [[_mm256_setzero_ps(); NV]; KB];
            for c in 0..ci {
                let x: [__m256; NV] =
                    std::array::from_fn(|j| _mm256_loadu_ps(v.add(c * tb + 8 * j)));
                for kk in 0..KB {
                    let w = _mm256_broadcast_ss(&*u.add(kk * ci + c));
                    for j in 0..NV {
                        acc[kk][j] = _mm256_fmadd_ps(w, x[j], acc[kk][j]);
                    }
                }
            }
            for kk in 0..KB {
                for j in 0..NV {
                    _mm256_storeu_ps(dst.add(kk * tb + 8 * j), acc[kk][j]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::gemm_conv::GemmConv;
    use crate::spec::Activation;
    use crate::testutil::{in_pool, pattern, reference_conv, rel_err};

    fn geom(
        c_in: usize,
        c_out: usize,
        group: usize,
        h: usize,
        w: usize,
        pads: [usize; 4],
    ) -> ConvGeom {
        ConvGeom {
            c_in,
            c_out,
            group,
            h,
            w,
            kh: 3,
            kw: 3,
            stride: [1, 1],
            dilation: [1, 1],
            pads,
            h_out: h + pads[0] + pads[2] - 2,
            w_out: w + pads[1] + pads[3] - 2,
        }
    }

    impl Winograd {
        /// The same kernel with its products through the `gemm` crate, phase-parallel.
        fn through_gemm_crate(mut self) -> Winograd {
            self.small_k = false;
            self.slots = 1;
            self
        }
    }

    /// Every geometry edge for both tiles and both product paths: output sizes that are and
    /// are not multiples of the tile, asymmetric and zero pads, groups, one and several blocks,
    /// a residual and an activation, 1 and 2 threads. Bounds, relative to the output's scale:
    /// 1e-5 for F(2x2) (measured ~3e-7) and 2e-5 for F(4x4) (measured ~2e-6; its transform
    /// constants amplify rounding, see the module docs).
    #[test]
    fn matches_the_reference_convolution() {
        let cases = [
            geom(16, 16, 1, 8, 8, [1; 4]),
            geom(16, 24, 1, 7, 9, [1; 4]),
            geom(32, 32, 2, 5, 6, [0, 1, 2, 0]),
            geom(16, 16, 1, 4, 5, [0; 4]),
            geom(64, 64, 1, 56, 56, [1; 4]),
            geom(48, 32, 1, 13, 4, [1, 0, 1, 0]),
            geom(64, 64, 4, 30, 29, [1; 4]),
            geom(24, 20, 4, 11, 18, [2, 1, 0, 1]),
            geom(256, 256, 2, 14, 14, [1; 4]),
        ];
        for g in cases {
            assert!(Winograd::applies(&g), "{g:?}");
            let x = pattern(g.c_in * g.h * g.w, 37, 101, 0.02);
            let w = pattern(g.c_out * g.cin_g() * 9, 53, 97, 0.01);
            let p = g.h_out * g.w_out;
            let res: Vec<f32> = (0..g.c_out * p).map(|i| (i % 7) as f32 * 0.3).collect();
            for (threads, residual, act) in
                [(1, false, Activation::None), (2, true, Activation::Relu)]
            {
                let epi = Epilogue {
                    bias: Some((0..g.c_out).map(|k| k as f32 * 0.1 - 1.0).collect()),
                    residual,
                    act,
                };
                let r = [residual.then_some(&res[..]), None];
                let want = reference_conv(&g, &x, &w, &epi, r);
                for (tile, bound) in [(Tile::F2, 1e-5), (Tile::F4, 2e-5)] {
                    let fast = Winograd::new(g, &w, epi.clone(), tile, threads);
                    let small_k = fast.small_k;
                    let kernels = [
                        Some(fast),
                        small_k.then(|| {
                            Winograd::new(g, &w, epi.clone(), tile, threads).through_gemm_crate()
                        }),
                    ];
                    for k in kernels.into_iter().flatten() {
                        let mut scratch = vec![f32::NAN; k.scratch_len()];
                        let mut y = vec![f32::NAN; g.c_out * p];
                        in_pool(threads, || k.run(&x, r, &mut y, &mut scratch));
                        let e = rel_err(&y, &want);
                        assert!(
                            e < bound,
                            "{g:?} {tile:?} small_k {} threads {threads} {act:?}: rel err {e:e}",
                            k.small_k
                        );
                    }
                }
            }
        }
    }

    /// Im2col + GEMM, F(2x2) and F(4x4) interleaved on the layer shapes [`Winograd::choose`]
    /// decides between (`cargo test --release -p ssc-jit bench_tiles -- --ignored
    /// --nocapture`): medians of 15 rounds, single thread.
    #[test]
    #[ignore]
    fn bench_tiles() {
        let shapes = [
            geom(64, 64, 4, 56, 56, [1; 4]),
            geom(128, 128, 4, 28, 28, [1; 4]),
            geom(256, 256, 4, 14, 14, [1; 4]),
            geom(512, 512, 4, 7, 7, [1; 4]),
            geom(64, 64, 1, 56, 56, [1; 4]),
            geom(128, 128, 1, 28, 28, [1; 4]),
            geom(256, 256, 1, 14, 14, [1; 4]),
            geom(512, 512, 1, 7, 7, [1; 4]),
            geom(16, 64, 1, 55, 55, [1; 4]),
            geom(32, 128, 1, 27, 27, [1; 4]),
            geom(64, 256, 1, 13, 13, [1; 4]),
        ];
        for g in shapes {
            let x = pattern(g.c_in * g.h * g.w, 37, 101, 0.02);
            let w = pattern(g.c_out * g.cin_g() * 9, 53, 97, 0.01);
            let epi = Epilogue::default();
            let gc = GemmConv::new(g, w.clone(), epi.clone(), 1);
            let f2 = Winograd::new(g, &w, epi.clone(), Tile::F2, 1);
            let f4 = Winograd::new(g, &w, epi.clone(), Tile::F4, 1);
            let len = gc.scratch_len().max(f2.scratch_len()).max(f4.scratch_len());
            let mut scratch = vec![0.0; len];
            let mut y = vec![0.0; g.c_out * g.h_out * g.w_out];
            let mut t = [vec![], vec![], vec![]];
            in_pool(1, || {
                for _ in 0..15 {
                    let s = std::time::Instant::now();
                    gc.run(&x, None, None, &mut y, &mut scratch);
                    t[0].push(s.elapsed());
                    let s = std::time::Instant::now();
                    f2.run(&x, [None, None], &mut y, &mut scratch);
                    t[1].push(s.elapsed());
                    let s = std::time::Instant::now();
                    f4.run(&x, [None, None], &mut y, &mut scratch);
                    t[2].push(s.elapsed());
                }
            });
            let med = |v: &mut Vec<std::time::Duration>| {
                v.sort();
                v[v.len() / 2].as_secs_f64() * 1e3
            };
            let gf = |ms: f64| 2.0 * g.macs() as f64 / ms / 1e6;
            let [a, b, c] = &mut t;
            let (a, b, c) = (med(a), med(b), med(c));
            eprintln!(
                "{:>3}->{:<3} g{} {:>2}x{:<2}: im2col {a:.3} ms ({:.0} GF/s)  F2 {b:.3} ({:.0})  F4 {c:.3} ({:.0})  choose {:?}",
                g.c_in, g.c_out, g.group, g.h, g.w, gf(a), gf(b), gf(c), Winograd::choose(&g)
            );
        }
    }
}
