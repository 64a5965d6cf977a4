//! Dense and grouped 3x3 stride-1 convolutions by Winograd's minimal filtering F(m x m, 3x3),
//! m = 2 or 4: `(m + 2)²` multiplies per m x m output tile and channel pair instead of `9 m²`,
//! so the multiply work drops 2.25x (F(2x2)) or 4x (F(4x4)); the transforms are linear-time and
//! run on eight tiles per vector ([`F8`]). The same machinery computes F(3x3, 4x4) for 4x4
//! kernels (36 multiplies per 3x3 outputs instead of 144), which the phase-split stride-2 7x7
//! stem uses ([`PhaseConv`](crate::kernels::phase::PhaseConv)).
//!
//! # Algorithm
//! With `d` an `α x α` input patch (`α = m + r - 1`) and `g` the r x r kernel, the m x m
//! output tile is `Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A` (Lavin & Gray, 2016). Per layer:
//! - *Filter transform (compile time, in f64):* `U[ξ][k][c] = (G g_kc Gᵀ)[ξ]` for the `α²`
//!   positions `ξ` of the transformed tile.
//! - *Input transform:* the input rows of each block are split into their `m` column phases
//!   (input column `x` goes to phase `x mod m`, entry `x / m` plus a shift for the left
//!   padding; AVX2 shuffles straight from the row, masked at its end), so column `j` of the
//!   patch of tile `tx` is entry `tx + off_j` of one phase: each transform is a loop over a
//!   tile row with contiguous loads and stores, `V[ξ][c][t] = (Bᵀ d_ct B)[ξ]`.
//! - *`α²` products per group:* `M[ξ] = U[ξ] · V[ξ]` (`c_out/group x c_in/group` times
//!   `c_in/group x tiles`): through the `gemm` crate for deep groups, and through an AVX2
//!   register-blocked loop ([`small_k`](crate::kernels::small_k)) for shallow ones
//!   (`c_in/group` up to [`SMALL_K`]), whose products are too small for `gemm`'s packing to
//!   pay off.
//! - *Output transform and epilogue:* `Y = Aᵀ M A` per tile, interleaved into the output rows,
//!   then bias, residuals and the activation while the row is in L1. Tiles past the output edge
//!   are computed and dropped.
//! - *SSC pairs* ([`Winograd::with_pointwise`]): `Add(this conv, 1x1 conv)` on one input adds
//!   the 1x1 product (`gemm`) to each block's output rows while they are in L2, then the
//!   residuals and the activation, so the pair is one step with no intermediate tensor.
//!
//! Tiles are processed in blocks of whole tile rows (as many as fit [`SMALL_BLOCK_BYTES`] or
//! [`BLOCK_BYTES`], the blocks evened out), and each block one group at a time. With the `gemm` crate,
//! every phase of a block splits over the rayon pool (channels for the split and the
//! transforms, positions for the products); with the small-K loop, whole blocks go to the
//! threads, each with its own buffers (one parallel section per layer instead of four per
//! block and group). The positions of `V` and `M` are [`SKEW`] floats more than a whole number
//! of rows apart, so the transforms' 16 or 36 streams do not share L1 sets. Everything runs as
//! AVX2 code where the host has it (`par::simd`).
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
//! [`Winograd::choose`] takes it where it measured faster than the other kernels: F(4x4) on
//! images of about 21x21 and up with groups of 16+ channels (ResNet's first two stages,
//! SqueezeNet's expand layers, the grouped layers of block-grouped SSC models) and on smaller
//! ungrouped ones F(2x2) does not take, F(2x2) on smaller images with 128+ input channels.

use std::mem::MaybeUninit;
use std::ops::{Add, Mul, Sub};

use rayon::prelude::*;

use crate::kernels::block_sparse::{self, BlockRows};
use crate::kernels::par::{for_ranges, has_avx2_fma, simd, SendPtr};
use crate::kernels::unified::Unified;
use crate::kernels::{epilogue, epilogue_in_place, sgemm, split_line};
use crate::spec::{Activation, ConvGeom, Epilogue};

/// Bytes of one group's `V` and `M` blocks together with the `gemm` crate: about half of the
/// 1 MiB L2 per core.
const BLOCK_BYTES: usize = 512 * 1024;

/// Bytes of one group's `V` and `M` blocks together with the small-K loop, whose blocks go
/// to the threads whole. More than L2 holds, yet measured best: fewer, longer blocks read
/// each group's transformed filters fewer times and stream better. Single layers, eight in
/// turn so their data is cold as in a model, ms by tile rows per block: 4-group 64 channels
/// on 56x56 (F(4x4)) 0.61 / 0.56 / 0.57 / 0.50 / 0.49 / 0.47 for 1 / 2 / 3 / 4 / 7 / 14 rows,
/// 128 channels on 28x28 0.54 / 0.43 / 0.44 / 0.40 / 0.37 for 1 / 2 / 3 / 4 / 7, 256 on 14x14
/// (F(2x2)) 0.77 / 0.59 / 0.54 / 0.49 / 0.46; the dense 64-channel layer on 56x56 prefers 2-3
/// rows (0.99 against 1.04-1.10 for 7-14), which this budget gives it. (It was 192 KiB, 3
/// rows: the SSC model's Winograd layers went from 0.52-0.61 to 0.40-0.50 ms.)
const SMALL_BLOCK_BYTES: usize = 768 * 1024;

/// With block-sparse products, a block's `V` and `M` may take this share of the kept
/// transformed filters' bytes when that is more than [`SMALL_BLOCK_BYTES`]: each block streams
/// all of them, and on the deep layers of small planes they dwarf the block (ResNet-18's
/// layer4, 512 channels on 7x7 at F(2x2): 8 MiB kept of 16, against 0.25 MiB per tile row,
/// was cut into two blocks that each read it). `ssc-opt bench --kernels`, MSWU models,
/// alternating runs (ms, 768 KiB -> this share): the three layer4 convs 2.4-2.6 -> 1.4-1.8
/// (one-value, 50% quota), 2.0-2.4 -> 1.3-1.6 (50% pruned, sign-kept), 0.7-1.2 -> 0.55-0.9
/// (75% pruned); the whole models 24.3 -> 21.1, 20.3 -> 17.9, 12.1 -> 11.4. A share of 1
/// (one block for layer3 too) measured level with 1/2.
const SPARSE_BLOCK_SHARE: f64 = 0.5;

/// Fewest tiles per block for the `gemm` crate (unless the image has fewer): the GEMMs' `n`,
/// below which `gemm`'s packing and call overhead dominate.
const MIN_TILES: usize = 64;

/// Tiles handled per step of the output transform (stack buffers of this many tiles' rows).
const CHUNK: usize = 64;

/// Floats of padding after each position's rows in the `V` and `M` blocks. The transforms
/// touch all positions of a tile at once, and without it they are often exactly 4 KiB apart
/// (64 channels x 16 tiles), so all of them fall in one L1 set: the 4-group 64-channel F(4x4)
/// layer on 56x56 took 1.1-1.2 ms with the positions 4 KiB apart and 0.76 ms with this skew
/// (single thread, same process).
const SKEW: usize = 16;

/// Deepest group (`c_in / group`) whose products go through the small-K loop on AVX2 hosts.
const SMALL_K: usize = 64;

/// The output tile of the minimal filtering algorithm: F(2x2, 3x3) or F(4x4, 3x3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tile {
    F2,
    F4,
    /// F(3x3, 4x4): 3x3 outputs of a 4x4 kernel from 6x6 patches, on F(4x4, 3x3)'s six points
    /// (so the same input transform `Bᵀ`): the stride-2 7x7 stem split into its input phases
    /// ([`PhaseConv`](crate::kernels::phase::PhaseConv)).
    F3K4,
}

impl Tile {
    /// Output rows and columns per tile.
    const fn m(self) -> usize {
        match self {
            Tile::F2 => 2,
            Tile::F4 => 4,
            Tile::F3K4 => 3,
        }
    }

    /// Kernel rows and columns.
    const fn r(self) -> usize {
        match self {
            Tile::F2 | Tile::F4 => 3,
            Tile::F3K4 => 4,
        }
    }

    /// Patch rows and columns, `m + r - 1`.
    const fn alpha(self) -> usize {
        self.m() + self.r() - 1
    }

    /// Positions of the transformed tile, `alpha²`.
    const fn positions(self) -> usize {
        self.alpha() * self.alpha()
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
    /// Whether the products go through [`small_k`](crate::kernels::small_k) (whole blocks per
    /// thread) rather than the `gemm` crate (each phase of a block split over the threads).
    small_k: bool,
    /// Block buffers (split rows, `V`, `M`) in the scratch: one per thread with `small_k`,
    /// else one.
    slots: usize,
    /// Where the split rows hold the input: column `x` of a row is entry `x / m + shift` of
    /// its phase `x mod m` (`shift` entries of left padding, `ceil(pad_left / m)`).
    shift: usize,
    /// Per patch column `j < alpha`: the phase and the entry offset (from the tile's index)
    /// that hold padded column `m tx + j` of tile `tx`.
    cols: [(usize, usize); 6],
    /// An SSC pair's 1x1 conv on the same input (`[c_out][c_in]`; the biases are summed in
    /// `epi`): added to each block's output rows once all groups have written them, before the
    /// residuals and the activation (see [`Winograd::with_pointwise`]).
    pointwise: Option<Vec<f32>>,
    /// The transformed filters in blocks of output rows with the input channels they read,
    /// when enough of them are zero for the block-sparse products to pay
    /// ([`Winograd::block_sparse`]); the products then go through it on whole blocks per
    /// thread, as with `small_k`.
    sparse: Option<BlockRows>,
    /// One-value tiles taken out of the weights and added as shared box sums after each
    /// block's output transform, before the residuals and the activation (see
    /// [`kernels::unified`](crate::kernels::unified)); the transformed filters hold the rest.
    unified: Option<Unified>,
}

/// Largest fraction of the multiply-adds the block-sparse products may keep for shallow
/// groups (`c_in / group` up to [`SMALL_K`], against the dense small-K loop) and for deeper
/// ones (against the `gemm` crate). `bench_block_sparse` below (1 thread, 2026-12-07, MSWU
/// 4x4 tiles, dense products on the same weights -> block-sparse, ms): 64->64 on 56x56
/// (F(4x4)) 50% pruned 0.97 -> 0.64, 75% 0.94 -> 0.54; 128->128 on 28x28 (F(4x4)) 1.24 ->
/// 0.64, 1.21 -> 0.45; 256->256 on 14x14 (F(2x2)) 1.85 -> 0.99, 1.80 -> 0.57; 512->512 on
/// 7x7 (F(2x2)) 5.0 -> 2.5, 5.2 -> 1.3. The products run at the dense loops' rate per kept
/// multiply-add or faster (the `gemm` crate's included), so both limits leave a margin for
/// the index loads rather than mark a measured crossover.
const SPARSE_KEPT_SMALL: f64 = 0.9;
const SPARSE_KEPT_DEEP: f64 = 0.8;

impl Winograd {
    /// The tile that computes `g` fastest, if Winograd beats the other kernels on it at all.
    /// Measured single thread, interleaved in one process, at the final code (`bench_tiles`
    /// below, medians in ms, im2col / F(2x2) / F(4x4); the direct kernel from `bench_direct`
    /// where it is the alternative):
    /// - dense 64->64 on 56x56: 2.51 / 1.38 / 0.94; 128->128 on 28x28: 2.36 / 1.37 / 1.06;
    ///   256->256 on 14x14: 2.50 / 1.64 / 1.73; 512->512 on 7x7: 3.11 / 2.23 / 4.92 (4 F(4x4)
    ///   tiles, most of them padding);
    /// - 4 groups (block-grouped SSC ResNet-18): 64->64 on 56x56: 0.77 / 0.53 / 0.43; 128->128
    ///   on 28x28: 0.71 / 0.44 / 0.34; 256->256 on 14x14: 0.75 / 0.40 / 0.38 here, but F(4x4)
    ///   lost with its 2.4 MB of transformed filters cold, as in a model (eight layers in
    ///   turn: 0.53 against 0.47); 512->512 on 7x7: 0.90 / 0.75 / 1.74, and 0.57 direct;
    /// - SqueezeNet's expand layers: 16->64 on 55x55: 0.62 / 0.43 / 0.33; 32->128 on 27x27:
    ///   0.56 / 0.36 / 0.27; 64->256 on 13x13: 0.56 / 0.36 / 0.28, and 0.46 direct (the whole
    ///   model: 6.2-6.4 ms with F(4x4) there against 6.6-6.9 with the direct kernel).
    ///
    /// So: F(4x4) from 36 tiles up (outputs of about 21x21 and larger) on groups of 16+
    /// channels; below that, F(2x2) on layers of 128+ input channels from 16 tiles up, or 32
    /// when grouped, and F(4x4) on the other ungrouped layers of 16+ tiles; the rest goes to
    /// the direct kernel or im2col.
    pub(crate) fn choose(g: &ConvGeom) -> Option<Tile> {
        if !Winograd::applies(g, 3) || g.cin_g() < 16 {
            return None;
        }
        let tiles = |m: usize| g.h_out.div_ceil(m) * g.w_out.div_ceil(m);
        let min_f2 = if g.group == 1 { 16 } else { 32 };
        if tiles(4) >= 36 {
            Some(Tile::F4)
        } else if tiles(2) >= min_f2 && g.c_in >= 128 {
            Some(Tile::F2)
        } else if tiles(4) >= 16 && g.group == 1 {
            Some(Tile::F4)
        } else {
            None
        }
    }

    /// Whether F(m x m, r x r) computes `g` at all: an r x r (3x3 unless the tile says
    /// otherwise), stride-1, undilated kernel with at least 2x2 outputs.
    fn applies(g: &ConvGeom, r: usize) -> bool {
        g.kh == r
            && g.kw == r
            && g.stride == [1, 1]
            && g.dilation == [1, 1]
            && g.h_out >= 2
            && g.w_out >= 2
    }

    /// Builds the kernel; `weights` is ONNX's `[c_out, c_in/group, r, r]` (`tile.r()`),
    /// `threads` the pool size it will run on. Any geometry [`Winograd::applies`] to is
    /// computed correctly.
    pub(crate) fn new(
        geom: ConvGeom,
        weights: &[f32],
        epi: Epilogue,
        tile: Tile,
        threads: usize,
    ) -> Winograd {
        debug_assert!(Winograd::applies(&geom, tile.r()));
        debug_assert!(tile.positions() <= 36);
        let (co, ci, np) = (geom.c_out, geom.cin_g(), tile.positions());
        let split = Winograd::split_unified(&geom, weights, tile);
        let (unified, weights) = match &split {
            Some((un, free, _)) => (Some(un.clone()), &free[..]),
            None => (None, weights),
        };
        let mut u = vec![0.0f32; np * co * ci];
        for k in 0..co {
            for c in 0..ci {
                let rr = tile.r() * tile.r();
                let t = filter_transform(tile, &weights[(k * ci + c) * rr..][..rr]);
                for (xi, &v) in t[..np].iter().enumerate() {
                    u[(xi * co + k) * ci + c] = v;
                }
            }
        }
        let m = tile.m();
        let th = geom.h_out.div_ceil(m);
        let tw = geom.w_out.div_ceil(m);
        let sparse = Winograd::block_sparse(&u, np, &geom);
        let small_k = has_avx2_fma() && (ci <= SMALL_K || sparse.is_some());
        let threads = threads.max(1);
        let budget = if small_k {
            // Block-sparse filters are read once per block: see [`SPARSE_BLOCK_SHARE`].
            let kept_u = sparse
                .as_ref()
                .map_or(0.0, |s| s.kept() * (np * co * ci * 4) as f64);
            SMALL_BLOCK_BYTES.max((kept_u * SPARSE_BLOCK_SHARE) as usize)
        } else {
            BLOCK_BYTES
        };
        let fit = budget / (np * (ci + geom.cout_g()) * tw * 4);
        let rows = if small_k {
            // At least a vector of tiles, and a block for every thread.
            fit.max(8usize.div_ceil(tw)).min(th.div_ceil(threads))
        } else {
            fit.max(MIN_TILES.div_ceil(tw))
        }
        .clamp(1, th);
        // As many blocks, as even as they go.
        let rows = th.div_ceil(th.div_ceil(rows));
        let slots = if small_k {
            threads.min(th.div_ceil(rows))
        } else {
            1
        };
        // Padded column `m tx + j` is input column `x = m tx + j - pad_left`: phase
        // `x mod m`, entry `x / m + shift = tx + (j - pad_left) / m + shift` (floored).
        let shift = geom.pads[1].div_ceil(m);
        let cols = std::array::from_fn(|j| {
            let x = j as isize - geom.pads[1] as isize;
            let (m, shift) = (m as isize, shift as isize);
            (x.rem_euclid(m) as usize, (x.div_euclid(m) + shift) as usize)
        });
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
            shift,
            cols,
            pointwise: None,
            sparse,
            unified,
        }
    }

    /// The one-value tiles [`Unified::split`] takes out of `weights` for `tile` (F(2x2) and
    /// F(4x4) only), with the rest of the weights and the products' kept fraction.
    fn split_unified(
        g: &ConvGeom,
        weights: &[f32],
        tile: Tile,
    ) -> Option<(Unified, Vec<f32>, f64)> {
        if tile == Tile::F3K4 {
            return None;
        }
        let before = Winograd::kept_dense(g, weights);
        Unified::split(g, weights, before, Winograd::sparse_limit(g))
    }

    /// The kernel's one-value tiles, for step reports.
    pub(crate) fn unified(&self) -> Option<&Unified> {
        self.unified.as_ref()
    }

    /// The block-sparse layout of the transformed filters `u` of `g` (`positions` of them),
    /// where the host runs it and it keeps at most [`Winograd::sparse_limit`] of the
    /// multiply-adds.
    fn block_sparse(u: &[f32], positions: usize, g: &ConvGeom) -> Option<BlockRows> {
        // A cheap look first: a dense layer has no zero weight to skip.
        if !has_avx2_fma() || !u.contains(&0.0) {
            return None;
        }
        let rows = BlockRows::new(u, positions, g.c_out, g.cin_g(), g.group);
        (rows.kept() <= Winograd::sparse_limit(g)).then_some(rows)
    }

    /// Largest fraction of the multiply-adds the block-sparse products may keep on `g`:
    /// [`SPARSE_KEPT_SMALL`] for shallow groups, [`SPARSE_KEPT_DEEP`] for deeper ones.
    fn sparse_limit(g: &ConvGeom) -> f64 {
        if g.cin_g() <= SMALL_K {
            SPARSE_KEPT_SMALL
        } else {
            SPARSE_KEPT_DEEP
        }
    }

    /// The fraction of the products' multiply-adds `Winograd::new` keeps for `weights`
    /// (ONNX's `[c_out, c_in/group, 3, 3]`) on `g`, without transforming them: below 1 where
    /// it will skip zero blocks of channels (`plan::choice` prices the dense form with it).
    pub(crate) fn kept_for(g: &ConvGeom, weights: &[f32]) -> f64 {
        let tile = Winograd::choose(g).unwrap_or(Tile::F4);
        match Winograd::split_unified(g, weights, tile) {
            Some((_, _, kept)) => kept,
            None => Winograd::kept_dense(g, weights),
        }
    }

    /// [`Winograd::kept_for`] without taking one-value tiles out.
    fn kept_dense(g: &ConvGeom, weights: &[f32]) -> f64 {
        if !has_avx2_fma() || !weights.contains(&0.0) {
            return 1.0;
        }
        let kept = block_sparse::kept_of(weights, g.c_out, g.cin_g(), g.group);
        if kept <= Winograd::sparse_limit(g) {
            kept
        } else {
            1.0
        }
    }

    /// The fraction of the multiply-adds of Winograd's products on `g` that the kernel `new`
    /// builds for `weights` would keep: below 1 where it skips zero blocks of channels
    /// (the tests check [`Winograd::kept_for`] against it).
    #[cfg(test)]
    pub(crate) fn kept_products(&self) -> f64 {
        let tail = self.unified.as_ref().map_or(0.0, Unified::product_share);
        self.sparse.as_ref().map_or(1.0, BlockRows::kept) + tail
    }

    /// The SSC pair `Add(this conv, 1x1 conv)` on one input as one kernel: `weights` are the 1x1
    /// conv's `[c_out, c_in]` and `epi` (set in `new`) carries both biases and the epilogue
    /// after the Add. The 1x1 conv must read the output pixel's own input pixel (stride 1, no
    /// padding), so this conv's output has the input's size. Each block's output rows, written
    /// by the transforms with the bias only, take the 1x1 product on the same rows through
    /// `gemm` while they are in L2, then the residuals and the activation: the 3x3 output
    /// never goes through memory as a tensor of its own, and the input rows the 1x1 product
    /// reads were just split.
    pub(crate) fn with_pointwise(mut self, weights: Vec<f32>) -> Winograd {
        let g = &self.geom;
        assert!(g.h_out == g.h && g.w_out == g.w && weights.len() == g.c_out * g.c_in);
        self.pointwise = Some(weights);
        self
    }

    /// The tile this kernel computes with.
    pub(crate) fn tile(&self) -> Tile {
        self.tile
    }

    /// Floats per row of a split input phase: what the transform reads for a whole number of
    /// vectors of tiles, `tw` rounded up to 8 plus the largest column offset.
    fn phase_row(&self) -> usize {
        let a = self.tile.alpha();
        self.tw.next_multiple_of(8) + self.cols[..a].iter().map(|c| c.1).max().unwrap_or(0)
    }

    /// Floats of one channel's split input for one block: `m` phases of `m * rows + r - 1`
    /// rows.
    fn split_len(&self) -> usize {
        let m = self.tile.m();
        m * (m * self.rows + self.tile.r() - 1) * self.phase_row()
    }

    /// Floats between positions of the `V` block: one group's `c_in / group` rows of `tb`,
    /// plus [`SKEW`].
    fn v_pos(&self) -> usize {
        self.geom.cin_g() * self.tb + SKEW
    }

    /// Floats between positions of the `M` block (see [`Winograd::v_pos`]).
    fn m_pos(&self) -> usize {
        self.geom.cout_g() * self.tb + SKEW
    }

    /// Floats of one block buffer: one group's split input for the block, then its `V` and
    /// `M`.
    fn block_len(&self) -> usize {
        let tail = self
            .unified
            .as_ref()
            .map_or(0, |un| un.scratch_len(self.tile.m() * self.rows));
        self.geom.cin_g() * self.split_len()
            + self.tile.positions() * (self.v_pos() + self.m_pos())
            + tail
    }

    /// f32 elements of scratch one image needs: one block buffer per slot.
    pub(crate) fn scratch_len(&self) -> usize {
        self.slots * self.block_len()
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
        debug_assert!(input.len() == g.c_in * g.h * g.w);
        debug_assert!(output.len() == g.c_out * g.h_out * g.w_out);
        let out = SendPtr(output.as_mut_ptr());
        let nb = self.th.div_ceil(self.rows);
        let bl = self.block_len();
        if !self.small_k {
            for b in 0..nb {
                self.block(input, b, &mut scratch[..bl], res, out, true);
            }
            return;
        }
        let slots = self.slots.min(nb);
        let part = |s: usize| nb * s / slots..nb * (s + 1) / slots;
        if slots <= 1 {
            simd(
                #[inline(always)]
                || self.blocks(input, part(0), &mut scratch[..bl], res, out),
            );
        } else {
            scratch[..slots * bl]
                .par_chunks_mut(bl)
                .enumerate()
                .for_each(|(s, buf)| {
                    simd(
                        #[inline(always)]
                        || self.blocks(input, part(s), buf, res, out),
                    )
                });
        }
    }

    /// Blocks `bs` one after the other on this thread, with `buf` as their split input, `V`
    /// and `M`.
    #[inline(always)]
    fn blocks(
        &self,
        input: &[f32],
        bs: std::ops::Range<usize>,
        buf: &mut [f32],
        res: [Option<&[f32]>; 2],
        out: SendPtr,
    ) {
        for b in bs {
            self.block(input, b, buf, res, out, false);
        }
    }

    /// Block `b` (tile rows `b * rows ..`) into the output, with `buf` as its split input,
    /// `V` and `M`; each phase split over the pool when `parallel`.
    #[inline(always)]
    fn block(
        &self,
        input: &[f32],
        b: usize,
        buf: &mut [f32],
        res: [Option<&[f32]>; 2],
        out: SendPtr,
        parallel: bool,
    ) {
        let g = self.geom;
        let ty0 = b * self.rows;
        let ty1 = (ty0 + self.rows).min(self.th);
        let (sl, ci) = (self.split_len(), g.cin_g());
        let (split, buf) = buf.split_at_mut(ci * sl);
        let (v, m) = buf.split_at_mut(self.tile.positions() * self.v_pos());
        let (m, tail_buf) = m.split_at_mut(self.tile.positions() * self.m_pos());
        let r0 = self.tile.m() * ty0;
        // One group at a time, so the working set is one group's split rows, `V`, `M` and
        // filters.
        for grp in 0..g.group {
            let sp = SendPtr(split.as_mut_ptr());
            spread(
                parallel,
                ci,
                4,
                #[inline(always)]
                |c0, c1| {
                    for c in c0..c1 {
                        let ch = grp * ci + c;
                        let src = &input[ch * g.h * g.w..(ch + 1) * g.h * g.w];
                        // SAFETY: channel `c`'s `sl` floats of `split` are disjoint from
                        // every other channel's and written by this task only.
                        let dst =
                            unsafe { std::slice::from_raw_parts_mut(sp.get().add(c * sl), sl) };
                        self.split_channel(src, r0, dst);
                    }
                },
            );
            self.input_block(split, ty0, ty1, v, parallel);
            self.products(grp, v, m, (ty1 - ty0) * self.tw, parallel);
            // With a tail, the residuals and the activation come after it.
            let tail = self.pointwise.is_some() || self.unified.is_some();
            let (r, pw) = if tail {
                ([None, None], true)
            } else {
                (res, false)
            };
            match self.tile {
                Tile::F2 => self.output_block::<4, 2>(grp, m, ty0, ty1, r, out, parallel, pw),
                Tile::F4 => self.output_block::<6, 4>(grp, m, ty0, ty1, r, out, parallel, pw),
                Tile::F3K4 => self.output_block::<6, 3>(grp, m, ty0, ty1, r, out, parallel, pw),
            }
        }
        if self.pointwise.is_some() || self.unified.is_some() {
            self.tail_rows(input, ty0, ty1, res, out, parallel, tail_buf);
        }
    }

    /// Padded rows `r0 ..` of channel `src` (`h x w`; rows outside the input are zeros), split
    /// into their `m` column phases (see [`Winograd::shift`]), one phase after the other in
    /// `dst` (rows of [`Winograd::phase_row`]), as many rows as `dst` holds.
    #[inline(always)]
    fn split_channel(&self, src: &[f32], r0: usize, dst: &mut [f32]) {
        match self.tile {
            Tile::F2 => self.split_channel_into::<2>(src, r0, dst),
            Tile::F4 => self.split_channel_into::<4>(src, r0, dst),
            Tile::F3K4 => self.split_channel_into::<3>(src, r0, dst),
        }
    }

    /// [`Winograd::split_channel`] into `M` phases.
    #[inline(always)]
    fn split_channel_into<const M: usize>(&self, src: &[f32], r0: usize, dst: &mut [f32]) {
        let g = &self.geom;
        let pt = g.pads[0];
        let n = self.phase_row();
        let plen = dst.len() / M;
        assert!(src.len() >= g.h * g.w && plen.is_multiple_of(n));
        let avx2 = has_avx2_fma();
        for r in 0..plen / n {
            let y = r0 + r;
            if y >= pt && y < pt + g.h {
                // SAFETY: input row `y - pt` is inside `src` (asserted), and row `r` of every
                // phase, `dst[p plen + r n ..][..n]`, inside `dst`; `avx2` only if detected.
                unsafe {
                    let line = src.as_ptr().add((y - pt) * g.w);
                    let at = dst.as_mut_ptr().add(r * n);
                    split_line::<M>(line, g.w, self.shift, (at, plen, n), avx2);
                }
            } else {
                for p in 0..M {
                    dst[p * plen + r * n..][..n].fill(0.0);
                }
            }
        }
    }

    /// Pointers to patch column `j` of tile 0, for `j < A`, in the split input `s` of one
    /// channel (`M` phases), from entry `at` of each phase (the first patch row).
    #[inline(always)]
    fn patch_cols<const M: usize, const A: usize>(&self, s: &[f32], at: usize) -> [*const f32; A] {
        let plen = s.len() / M;
        std::array::from_fn(|j| {
            let (p, off) = self.cols[j];
            s[p * plen + at + off..].as_ptr()
        })
    }

    /// `V[ξ][c][t]` for the channels `c` of one group (split in `split`) and the tiles of tile
    /// rows `ty0..ty1`; with `small_k`, the columns up to the
    /// next whole vector are zeroed (the small-K loop reads them).
    #[inline(always)]
    fn input_block(&self, split: &[f32], ty0: usize, ty1: usize, v: &mut [f32], parallel: bool) {
        let g = self.geom;
        let (tw, sl, tb, np) = (self.tw, self.split_len(), self.tb, self.tile.positions());
        let vs = self.v_pos();
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
            g.cin_g(),
            8,
            #[inline(always)]
            |c0, c1| {
                for c in c0..c1 {
                    let s = &split[c * sl..(c + 1) * sl];
                    // SAFETY: the rows `V[ξ][c][..tb]` are disjoint, inside `v` (positions x
                    // `v_pos` floats), and written by the task of channel `c` only.
                    let dst = |xi: usize, t0: usize, len: usize| unsafe {
                        std::slice::from_raw_parts_mut(vp.get().add(xi * vs + c * tb + t0), len)
                    };
                    for ty in ty0..ty1 {
                        let t0 = (ty - ty0) * tw;
                        // SAFETY: the transform reads rows `m (ty - ty0) ..` `+ alpha` of each
                        // phase (`n` floats each, inside the block's split input of
                        // `m rows + r - 1` rows) at entries `off_j + tx` for `tx < w8`, all below
                        // `n = w8 + max off_j` (`phase_row`), and writes `V[ξ][c][t0 .. t0 +
                        // w8]` for every `ξ` through a pointer derived from all of `v`: channel
                        // `c`'s rows (`t0 + w8 <= tb`, see `new`).
                        unsafe {
                            match self.tile {
                                Tile::F2 => input_row::<4>(
                                    self.patch_cols::<2, 4>(s, 2 * (ty - ty0) * n),
                                    n,
                                    w8,
                                    vp.get().add(c * tb + t0),
                                    vs,
                                ),
                                Tile::F4 => input_row::<6>(
                                    self.patch_cols::<4, 6>(s, 4 * (ty - ty0) * n),
                                    n,
                                    w8,
                                    vp.get().add(c * tb + t0),
                                    vs,
                                ),
                                Tile::F3K4 => input_row::<6>(
                                    self.patch_cols::<3, 6>(s, 3 * (ty - ty0) * n),
                                    n,
                                    w8,
                                    vp.get().add(c * tb + t0),
                                    vs,
                                ),
                            }
                        }
                    }
                    for xi in 0..np {
                        // A loop, not `fill`: a `memset` call per row of at most 7 floats.
                        for v in dst(xi, pad.start, pad.len()) {
                            *v = 0.0;
                        }
                    }
                }
            },
        );
    }

    /// `M[ξ] = U[ξ] · V[ξ]` for group `grp`, for `nt` tiles (row stride of both blocks: `tb`).
    #[inline(always)]
    fn products(&self, grp: usize, v: &[f32], m: &mut [f32], nt: usize, parallel: bool) {
        let g = self.geom;
        let (tb, vs, ms) = (self.tb, self.v_pos(), self.m_pos());
        let (ci, co) = (g.cin_g(), g.cout_g());
        let mp = SendPtr(m.as_mut_ptr());
        spread(
            parallel,
            self.tile.positions(),
            1,
            #[inline(always)]
            |a, b| {
                for xi in a..b {
                    let lhs = &self.u[(xi * g.c_out + grp * co) * ci..][..co * ci];
                    let rhs = &v[xi * vs..][..ci * tb];
                    let dst = xi * ms;
                    debug_assert!(dst + co * tb <= m.len());
                    #[cfg(target_arch = "x86_64")]
                    if let Some(bs) = &self.sparse {
                        // SAFETY: AVX2 and FMA were detected (`block_sparse`); `rhs` and the
                        // destination rows as for `small_k` below.
                        unsafe {
                            bs.products(
                                xi,
                                grp,
                                rhs.as_ptr(),
                                mp.get().add(dst),
                                tb,
                                nt.next_multiple_of(8),
                            );
                        }
                        continue;
                    }
                    #[cfg(target_arch = "x86_64")]
                    if self.small_k {
                        // SAFETY: AVX2 and FMA were detected (`small_k`); `lhs` is co x ci,
                        // `rhs` ci rows of tb >= nt rounded up to 8 floats (the padding zeroed
                        // by `input_block`), and the destination rows `M[ξ][..co]` (stride tb)
                        // are inside `m` and written by this job only.
                        unsafe {
                            crate::kernels::small_k::small_k(
                                (lhs.as_ptr(), ci, co),
                                rhs.as_ptr(),
                                mp.get().add(dst),
                                tb,
                                nt.next_multiple_of(8),
                            );
                        }
                        continue;
                    }
                    // SAFETY: the destination rows `M[ξ][..co][..nt]` (row stride tb) are
                    // inside `m` and written by this job only; `lhs` is co x ci and `rhs`
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

    /// The tails of tile rows `ty0..ty1`: the pointwise one, `out[k][p] += Σ_c w[k][c]
    /// input[c][p]` over the block's output pixels `p` (all channels; the input has the
    /// output's size), and the one-value tiles' box sums (`tail_buf` their scratch), then the
    /// residuals and the activation in place.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn tail_rows(
        &self,
        input: &[f32],
        ty0: usize,
        ty1: usize,
        res: [Option<&[f32]>; 2],
        out: SendPtr,
        parallel: bool,
        tail_buf: &mut [f32],
    ) {
        let g = self.geom;
        let plane = g.h_out * g.w_out;
        let m = self.tile.m();
        let (y0, y1) = (m * ty0, (m * ty1).min(g.h_out));
        let (p0, p1) = (y0 * g.w_out, y1 * g.w_out);
        let threads = if parallel {
            rayon::current_num_threads()
        } else {
            1
        };
        if let Some(un) = &self.unified {
            // SAFETY: rows `y0..y1` of every output channel belong to this block alone (tasks
            // own whole blocks, or the block runs alone with `parallel`).
            unsafe { un.add_rows(input, y0, y1, out.get(), tail_buf, threads) };
        }
        if let Some(w) = &self.pointwise {
            assert!(input.len() >= g.c_in * plane && w.len() == g.c_out * g.c_in && p1 <= plane);
            // SAFETY: `dst` rows `k * plane + p0 ..` `+ (p1 - p0)` lie inside the output
            // (`c_out` planes) and belong to this block alone (as above); `lhs` is `c_out x
            // c_in` and `rhs` reads `c_in` rows of `p1 - p0` inside the input, both as
            // asserted.
            unsafe {
                sgemm(
                    (g.c_out, p1 - p0, g.c_in),
                    out.get().add(p0),
                    plane,
                    true,
                    (w.as_ptr(), g.c_in, 1),
                    (input.as_ptr().add(p0), plane, 1),
                    1.0,
                    threads,
                );
            }
        }
        let act = self.epi.act;
        spread(
            parallel,
            g.c_out,
            4,
            #[inline(always)]
            |k0, k1| {
                for k in k0..k1 {
                    let at = k * plane + p0;
                    let r = res.map(|r| r.map(|r| &r[at..at + (p1 - p0)]));
                    // SAFETY: as for the product above; channel `k`'s rows belong to this
                    // task.
                    let o = unsafe { std::slice::from_raw_parts_mut(out.get().add(at), p1 - p0) };
                    epilogue_in_place(o, 0.0, r, act);
                }
            },
        );
    }

    /// Output rows `m*ty0 .. m*ty1` (clipped to `h_out`) of group `grp`'s output channels from
    /// `M`, with the epilogue (only its bias when `bias_only`; `res` is then empty), by the
    /// output transform of `A x A` positions to `M x M` outputs.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn output_block<const A: usize, const M: usize>(
        &self,
        grp: usize,
        m: &[f32],
        ty0: usize,
        ty1: usize,
        res: [Option<&[f32]>; 2],
        out: SendPtr,
        parallel: bool,
        bias_only: bool,
    ) {
        let g = self.geom;
        debug_assert_eq!(M, self.tile.m());
        let (tw, tb, wo, ho) = (self.tw, self.tb, g.w_out, g.h_out);
        let ms = self.m_pos();
        let plane = ho * wo;
        let act = if bias_only {
            Activation::None
        } else {
            self.epi.act
        };
        let co = g.cout_g();
        spread(
            parallel,
            co,
            4,
            #[inline(always)]
            |k0, k1| {
                let mut acc = [[0.0f32; 4 * CHUNK]; 4];
                for kl in k0..k1 {
                    let k = grp * co + kl;
                    let bias = self.epi.bias.as_ref().map_or(0.0, |b| b[k]);
                    let mk = &m[kl * tb..];
                    assert!(mk.len() >= (A * A - 1) * ms + tb);
                    for ty in ty0..ty1 {
                        let t0 = (ty - ty0) * tw;
                        let mut tx = 0;
                        while tx < tw {
                            let n = CHUNK.min(tw - tx);
                            let n8 = n.next_multiple_of(8);
                            // SAFETY: `M[ξ][kl][t0 + tx ..][..n8]` lies inside row `kl` of
                            // position `ξ` (`t0 + tx + n8 <= t0 + w8 <= tb`), which the assert
                            // above keeps inside `m`; `M n8 <= 4 * CHUNK` as `n <= CHUNK`.
                            unsafe {
                                output_row::<A, M>(mk[t0 + tx..].as_ptr(), ms, n8, &mut acc);
                            }
                            let x0 = M * tx;
                            let len = (M * n).min(wo - x0);
                            for (dy, a) in acc[..M].iter().enumerate() {
                                let y = M * ty + dy;
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

/// `G g Gᵀ` for one r x r kernel, row-major `alpha²` (the first 16 entries for F(2x2)),
/// computed in f64 and rounded once. (A fixed array: a `Vec` per kernel tripled ResNet-18's
/// compile time.)
fn filter_transform(tile: Tile, w: &[f32]) -> [f32; 36] {
    // F(3x3, 4x4): the rows of F(4x4, 3x3)'s `G` extended to a fourth power of each point,
    // with the same scale factors (they come from the points, which the two share).
    const G34: [[f64; 4]; 6] = [
        [1.0 / 4.0, 0.0, 0.0, 0.0],
        [-1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0],
        [-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0, 1.0 / 6.0],
        [1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0, 1.0 / 3.0],
        [1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0, -1.0 / 3.0],
        [0.0, 0.0, 0.0, 1.0],
    ];
    if tile == Tile::F3K4 {
        return transform_with(&G34, w);
    }
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
    match tile {
        Tile::F2 => transform_with(&G2, w),
        _ => transform_with(&G4, w),
    }
}

/// `G g Gᵀ` for an `R x R` kernel `g` (row-major) and an `α x R` matrix `G` (`α <= 6`),
/// row-major `α²`, in f64.
fn transform_with<const R: usize>(g: &[[f64; R]], w: &[f32]) -> [f32; 36] {
    let a = g.len();
    let mut gw = [[0.0f64; R]; 6];
    for (gi, row) in g.iter().zip(&mut gw) {
        for (j, v) in row.iter_mut().enumerate() {
            *v = (0..R).map(|r| gi[r] * w[r * R + j] as f64).sum();
        }
    }
    let mut out = [0.0f32; 36];
    for (i, row) in gw[..a].iter().enumerate() {
        for (j, gj) in g.iter().enumerate() {
            out[i * a + j] = (0..R).map(|c| row[c] * gj[c]).sum::<f64>() as f32;
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
    /// # Safety
    /// `p` points at eight readable floats.
    #[inline(always)]
    unsafe fn read(p: *const f32) -> F8 {
        // SAFETY: forwarded; unaligned reads are allowed.
        F8(unsafe { std::ptr::read_unaligned(p as *const [f32; 8]) })
    }

    /// # Safety
    /// `p` points at eight writable floats.
    #[inline(always)]
    unsafe fn write(self, p: *mut f32) {
        // SAFETY: forwarded.
        unsafe { std::ptr::write_unaligned(p as *mut [f32; 8], self.0) }
    }
}

/// `[f(0), .., f(N - 1)]` by a plain loop (it unrolls; `array::from_fn` at these sizes
/// compiled to calls and copies).
#[inline(always)]
fn lanes<const N: usize>(f: impl Fn(usize) -> F8) -> [F8; N] {
    let mut x = [const { MaybeUninit::<F8>::uninit() }; N];
    for (i, x) in x.iter_mut().enumerate() {
        x.write(f(i));
    }
    // SAFETY: every element was written, and `MaybeUninit<F8>` has `F8`'s layout. (Not
    // `x.map(assume_init)`: that compiled to an out-of-line copy.)
    unsafe { std::ptr::read(x.as_ptr() as *const [F8; N]) }
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

/// `Aᵀ x` for one column or row of `A` values, to `M` outputs: F(2x2)'s, F(4x4)'s or F(3x3,
/// 4x4)'s.
#[inline(always)]
fn at<const A: usize, const M: usize>(x: [F8; A]) -> [F8; M] {
    let mut y = [x[0]; M];
    if A == 4 {
        y[0] = x[0] + x[1] + x[2];
        y[1] = x[1] - x[2] - x[3];
    } else if M == 3 {
        // F(3x3, 4x4): the first three powers of F(4x4, 3x3)'s points, infinity on the last.
        let (a, b, c, d) = (x[1] + x[2], x[1] - x[2], x[3] + x[4], x[3] - x[4]);
        y[0] = x[0] + a + c;
        y[1] = b + d * 2.0;
        y[2] = a + c * 4.0 + x[5];
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

/// `Bᵀ d B` for one tile row, eight tiles at a time: `c[j]` points at patch column `j` of tile
/// 0 in the tile row's first padded row (rows `n` floats apart, tiles one float apart), so
/// patch row `i`, column `j` of tile `tx` is `c[j][i n + tx]`; position `ξ` of tile `tx` goes
/// to `out[ξ vs + tx]`, for `tx < w8` (a multiple of 8: the tiles past the row's end are
/// scratch the caller overwrites or ignores). Raw pointers: through slices, the bounds
/// checks and the arrays of fat pointers cost more than the arithmetic.
///
/// # Safety
/// Every `c[j] + i n + k` for `i, j < A`, `k < w8` is readable, every `out + ξ vs + t` for
/// `ξ < A²`, `t < w8` is writable, and the two do not overlap.
#[inline(always)]
unsafe fn input_row<const A: usize>(
    c: [*const f32; A],
    n: usize,
    w8: usize,
    out: *mut f32,
    vs: usize,
) {
    for tx in (0..w8).step_by(8) {
        // `cols[j][i]` = (Bᵀ d)[i][j]. Uninitialised, not zeroed: the zeroing compiled to a
        // `memset` per eight tiles.
        let mut cols = [[const { MaybeUninit::<F8>::uninit() }; A]; A];
        for (j, col) in cols.iter_mut().enumerate() {
            // SAFETY: `i < A`, `tx + 8 <= w8` (see the contract).
            let x = lanes::<A>(|i| unsafe { F8::read(c[j].add(i * n + tx)) });
            for (c, v) in col.iter_mut().zip(bt(x)) {
                c.write(v);
            }
        }
        #[allow(clippy::needless_range_loop)] // `i` picks the same entry of every column
        for i in 0..A {
            // SAFETY: every `cols[j][i]` was written above.
            let x = lanes::<A>(|j| unsafe { cols[j][i].assume_init() });
            for (j, v) in bt(x).into_iter().enumerate() {
                // SAFETY: `i A + j < A²`, `tx + 8 <= w8`.
                unsafe { v.write(out.add((i * A + j) * vs + tx)) };
            }
        }
    }
}

/// `Aᵀ m A` for `n8` tiles of one tile row (a multiple of 8), eight at a time: position `ξ` of
/// tile `tx` is `m[ξ ms + tx]`; output row `i` of the tiles goes to `y[i]`, interleaved
/// (`y[i][M tx + j]`).
///
/// # Safety
/// Every `m + ξ ms + t` for `ξ < A²`, `t < n8` is readable, and `M n8 <= 4 CHUNK`.
#[inline(always)]
unsafe fn output_row<const A: usize, const M: usize>(
    m: *const f32,
    ms: usize,
    n8: usize,
    y: &mut [[f32; 4 * CHUNK]; 4],
) {
    debug_assert!(M * n8 <= 4 * CHUNK);
    for tx in (0..n8).step_by(8) {
        let mut cols = [[const { MaybeUninit::<F8>::uninit() }; M]; A];
        for (j, col) in cols.iter_mut().enumerate() {
            // SAFETY: `i A + j < A²`, `tx + 8 <= n8`.
            let x = lanes::<A>(|i| unsafe { F8::read(m.add((i * A + j) * ms + tx)) });
            for (c, v) in col.iter_mut().zip(at::<A, M>(x)) {
                c.write(v);
            }
        }
        for (i, y) in y.iter_mut().enumerate().take(M) {
            // SAFETY: every `cols[j][i]` was written above.
            let row = at::<A, M>(lanes::<A>(|j| unsafe { cols[j][i].assume_init() }));
            for (t, dst) in y[M * tx..M * tx + 8 * M].chunks_exact_mut(M).enumerate() {
                for (d, v) in dst.iter_mut().zip(&row) {
                    *d = v.0[t];
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
    use crate::testutil::{
        conv_data, in_pool, interleaved_ms, pattern, pointwise_geom, ramp_epilogue, reference_conv,
        rel_err,
    };

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
            self.sparse = None;
            self
        }

        /// The same kernel with dense products (the small-K loop where it applies, else the
        /// `gemm` crate), however many of its weights are zero.
        fn without_blocks(mut self) -> Winograd {
            if self.sparse.take().is_some() && self.geom.cin_g() > SMALL_K {
                self = self.through_gemm_crate();
            }
            self
        }
    }

    /// `k` on `x` with the residuals `r` in a pool of `threads`, its scratch and output
    /// pre-filled with NaN (so a value it fails to write shows).
    fn run_on_nan(k: &Winograd, x: &[f32], r: [Option<&[f32]>; 2], threads: usize) -> Vec<f32> {
        let g = k.geom;
        let mut scratch = vec![f32::NAN; k.scratch_len()];
        let mut y = vec![f32::NAN; g.c_out * g.h_out * g.w_out];
        in_pool(threads, || k.run(x, r, &mut y, &mut scratch));
        y
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
            geom(16, 16, 1, 9, 7, [1, 2, 1, 0]),
        ];
        for g in cases {
            assert!(Winograd::applies(&g, 3), "{g:?}");
            let (x, w, res) = conv_data(&g, 9);
            for (threads, residual, act) in [
                (1, false, Activation::None),
                (2, true, Activation::Relu),
                (1, true, Activation::Silu),
            ] {
                let epi = ramp_epilogue(g.c_out, residual, act);
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
                        let e = rel_err(&run_on_nan(&k, &x, r, threads), &want);
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

    /// An SSC pair with its 1x1 conv as the pointwise tail ([`Winograd::with_pointwise`]),
    /// against the two reference convs summed: both tiles and product paths, one and several
    /// blocks, groups, a residual and an activation, 1 and 2 threads, NaN-filled scratch.
    #[test]
    fn pointwise_tail_matches_the_two_convs_summed() {
        for g in [
            geom(16, 16, 1, 8, 8, [1; 4]),
            geom(64, 64, 4, 30, 29, [1; 4]),
            geom(32, 48, 2, 13, 9, [1; 4]),
        ] {
            let g1 = pointwise_geom(&g);
            let (x, w, res) = conv_data(&g, 9);
            let w1 = pattern(g.c_out * g.c_in, 29, 89, 0.01);
            for (threads, residual, act) in
                [(1, false, Activation::None), (2, true, Activation::Relu)]
            {
                let epi = ramp_epilogue(g.c_out, residual, act);
                let r = [residual.then_some(&res[..]), None];
                let plain = Epilogue::default();
                let k3 = reference_conv(&g, &x, &w, &plain, [None, None]);
                let linear = Epilogue {
                    act: Activation::None,
                    ..epi.clone()
                };
                let k1 = reference_conv(&g1, &x, &w1, &linear, r);
                let want: Vec<f64> = k3
                    .iter()
                    .zip(&k1)
                    .map(|(a, b)| match act {
                        Activation::Relu => (a + b).max(0.0),
                        _ => a + b,
                    })
                    .collect();
                for (tile, bound) in [(Tile::F2, 1e-5), (Tile::F4, 2e-5)] {
                    let new = || {
                        Winograd::new(g, &w, epi.clone(), tile, threads).with_pointwise(w1.clone())
                    };
                    for k in [new(), new().through_gemm_crate()] {
                        let e = rel_err(&run_on_nan(&k, &x, r, threads), &want);
                        assert!(
                            e < bound,
                            "{g:?} {tile:?} small_k {} threads {threads}: rel err {e:e}",
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
            let f4g = Winograd::new(g, &w, epi.clone(), Tile::F4, 1).through_gemm_crate();
            let len = gc.scratch_len().max(f2.scratch_len()).max(f4.scratch_len());
            let mut scratch = vec![0.0; len];
            let mut y = vec![0.0; g.c_out * g.h_out * g.w_out];
            let [a, b, c, d] = interleaved_ms(15, |i| match i {
                0 => gc.run(&x, None, None, &mut y, &mut scratch),
                1 => f2.run(&x, [None, None], &mut y, &mut scratch),
                2 => f4.run(&x, [None, None], &mut y, &mut scratch),
                _ => f4g.run(&x, [None, None], &mut y, &mut scratch),
            });
            let gf = |ms: f64| 2.0 * g.macs() as f64 / ms / 1e6;
            eprintln!(
                "{:>3}->{:<3} g{} {:>2}x{:<2}: im2col {a:.3} ms ({:.0} GF/s)  F2 {b:.3} ({:.0})  F4 {c:.3} ({:.0})  F4 via gemm {d:.3}  choose {:?}",
                g.c_in, g.c_out, g.group, g.h, g.w, gf(a), gf(b), gf(c), Winograd::choose(&g)
            );
        }
    }

    /// Block-sparse products ([`BlockRows`]) against the reference convolution: MSWU 4x4 and
    /// 8x1 tiles half pruned, shallow (small-K) and deep (`gemm`-sized) groups, output
    /// channels not a multiple of 4 (single-row blocks), groups, one stray non-zero weight in
    /// a pruned tile, a tile pruned in all but one tap, 1 and 2 threads, both tiles.
    #[test]
    fn block_sparse_products_match_the_reference() {
        use crate::kernels::spmm::tests::{tiled, TileMode};
        use crate::testutil::Rng;
        if !has_avx2_fma() {
            return;
        }
        let cases = [
            (geom(16, 16, 1, 8, 8, [1; 4]), (4, 4)),
            (geom(32, 18, 1, 9, 7, [1, 2, 1, 0]), (4, 4)),
            (geom(64, 64, 1, 30, 29, [1; 4]), (8, 1)),
            (geom(128, 96, 1, 13, 14, [1; 4]), (4, 4)),
            (geom(64, 64, 2, 11, 12, [0, 1, 2, 0]), (4, 4)),
        ];
        let mut rng = Rng(41);
        for (g, tile_shape) in cases {
            let (x, _, res) = conv_data(&g, 9);
            let mut w = tiled(&mut rng, &g, tile_shape, 0.5, TileMode::Free);
            let mut variants = vec![w.clone()];
            // One stray non-zero in a pruned tile (a zero weight of a tap of channel pair
            // (k, c) whose tile is otherwise all zero).
            let ci = g.cin_g();
            if let Some(i) = w.iter().position(|&v| v == 0.0) {
                w[i] = 0.37;
                variants.push(w.clone());
            }
            for w in variants {
                for (threads, residual, act) in
                    [(1, false, Activation::None), (2, true, Activation::Relu)]
                {
                    let epi = ramp_epilogue(g.c_out, residual, act);
                    let r = [residual.then_some(&res[..]), None];
                    let want = reference_conv(&g, &x, &w, &epi, r);
                    for (tile, bound) in [(Tile::F2, 1e-5), (Tile::F4, 2e-5)] {
                        let k = Winograd::new(g, &w, epi.clone(), tile, threads);
                        let kept = k.kept_products();
                        assert_eq!(kept, Winograd::kept_for(&g, &w));
                        assert!(
                            k.sparse.is_some() && kept < 0.75,
                            "{g:?} {tile_shape:?}: kept {kept}"
                        );
                        let e = rel_err(&run_on_nan(&k, &x, r, threads), &want);
                        assert!(
                            e < bound,
                            "{g:?} {tile:?} {tile_shape:?} ci {ci}: rel err {e:e}"
                        );
                    }
                }
            }
        }
        // Dense weights keep the dense products.
        let g = geom(16, 16, 1, 8, 8, [1; 4]);
        let (_, w, _) = conv_data(&g, 9);
        let k = Winograd::new(g, &w, Epilogue::default(), Tile::F4, 1);
        assert!(k.sparse.is_none() && k.kept_products() == 1.0);
    }

    /// One-value tiles as shared box sums ([`Unified`]) against the reference convolution:
    /// MSWU 4x4 one-value tiles on a quota of half the tiles (the other half free), output rows
    /// scaled one by one (a folded BatchNorm: the tiles become 1 x 4), rows dropped and
    /// shuffled (ssc-opt's duplicate-filter gather: the blocks of four rows must be regrouped),
    /// a quarter of the tiles pruned, with the near misses: one weight of a one-value tile
    /// changed (that row's tile is free again) and one stray non-zero in a pruned tile; odd
    /// sizes, asymmetric pads, an SSC pair's pointwise tail, a residual and an activation, 1
    /// and 2 threads, both tiles and both product paths, NaN-filled scratch and output.
    #[test]
    fn one_value_tiles_as_box_sums_match_the_reference() {
        use crate::kernels::spmm::tests::{tiled, TileMode};
        use crate::testutil::Rng;
        if !has_avx2_fma() {
            return;
        }
        let cases = [
            (geom(16, 16, 1, 8, 8, [1; 4]), 0.0),
            (geom(32, 20, 1, 9, 7, [1, 2, 1, 0]), 0.25),
            (geom(64, 64, 1, 30, 29, [1; 4]), 0.0),
            (geom(128, 96, 1, 13, 14, [1; 4]), 0.25),
            (geom(64, 48, 1, 11, 12, [0, 1, 2, 0]), 0.0),
        ];
        let mut rng = Rng(57);
        for (g, pruned) in cases {
            let (x, _, res) = conv_data(&g, 9);
            let (ci, taps) = (g.c_in, 9);
            let base = tiled(&mut rng, &g, (4, 4), pruned, TileMode::OneValue);
            let mut variants = vec![("4x4", base.clone())];
            // Each output row scaled by its own factor.
            let mut scaled = base.clone();
            for (k, row) in scaled.chunks_mut(ci * taps).enumerate() {
                let s = 0.5 + 0.07 * k as f32;
                row.iter_mut().for_each(|w| *w *= s);
            }
            variants.push(("rows scaled", scaled.clone()));
            // Rows shuffled (a fixed permutation), with the last 3 rows copies of row 0.
            let mut shuffled = vec![0.0; scaled.len()];
            for k in 0..g.c_out {
                let from = if k + 3 >= g.c_out {
                    0
                } else {
                    (k * 7 + 3) % (g.c_out - 3)
                };
                shuffled[k * ci * taps..][..ci * taps]
                    .copy_from_slice(&scaled[from * ci * taps..][..ci * taps]);
            }
            variants.push(("rows shuffled", shuffled.clone()));
            // Near misses: one weight of a one-value tile off, one stray non-zero.
            let one = (0..scaled.len() / taps)
                .find(|&kc| {
                    let k = &scaled[kc * taps..][..taps];
                    k[0] != 0.0 && k.iter().all(|&w| w == k[0])
                })
                .expect("a one-value tile");
            let mut off = scaled.clone();
            off[one * taps + 4] *= 1.0 + 1e-3;
            variants.push(("one weight off", off));
            if let Some(i) = scaled.iter().position(|&w| w == 0.0) {
                let mut stray = scaled.clone();
                stray[i] = 0.37;
                variants.push(("stray non-zero", stray));
            }
            for (what, w) in variants {
                for (threads, residual, act, pointwise) in [
                    (1, false, Activation::None, false),
                    (2, true, Activation::Relu, false),
                    (1, true, Activation::Silu, true),
                ] {
                    let epi = ramp_epilogue(g.c_out, residual, act);
                    let r = [residual.then_some(&res[..]), None];
                    let same = g.h_out == g.h && g.w_out == g.w && g.pads[0] < 3 && g.pads[1] < 3;
                    let pw = (pointwise && same).then(|| pattern(g.c_out * g.c_in, 13, 29, 0.05));
                    let mut want = reference_conv(&g, &x, &w, &epi, r);
                    if let Some(pw) = &pw {
                        // The 1x1 conv's product goes in before the residuals and the
                        // activation: the reference of both convs summed.
                        let mut w3 = w.clone();
                        let tap = g.pads[0] * 3 + g.pads[1];
                        for k in 0..g.c_out {
                            for c in 0..ci {
                                w3[(k * ci + c) * taps + tap] += pw[k * ci + c];
                            }
                        }
                        want = reference_conv(&g, &x, &w3, &epi, r);
                    }
                    for (tile, bound) in [(Tile::F2, 1e-5), (Tile::F4, 2e-5)] {
                        let mut k = Winograd::new(g, &w, epi.clone(), tile, threads);
                        if let Some(pw) = &pw {
                            k = k.with_pointwise(pw.clone());
                        }
                        assert!(
                            k.unified.is_some() && k.sparse.is_some(),
                            "{g:?} {what}: split {}, kept {}",
                            k.unified.is_some(),
                            k.kept_products()
                        );
                        assert_eq!(k.kept_products(), Winograd::kept_for(&g, &w));
                        let dense = Winograd::new(g, &w, epi.clone(), tile, threads);
                        let dense = match &pw {
                            Some(pw) => dense.with_pointwise(pw.clone()),
                            None => dense,
                        };
                        for k in [k, dense.through_gemm_crate()] {
                            let e = rel_err(&run_on_nan(&k, &x, r, threads), &want);
                            assert!(
                                e < bound,
                                "{g:?} {tile:?} {what} threads {threads} {act:?}: rel err {e:e}"
                            );
                        }
                    }
                }
            }
        }
        // Weights without one-value tiles keep their form.
        let g = geom(16, 16, 1, 8, 8, [1; 4]);
        let (_, w, _) = conv_data(&g, 9);
        assert!(Winograd::new(g, &w, Epilogue::default(), Tile::F4, 1)
            .unified
            .is_none());
    }

    /// Block-sparse products against the dense ones on the same weights (MSWU 4x4 tiles,
    /// half and three quarters pruned), on the layer shapes of ResNet-18 that get Winograd
    /// (`cargo test --release -p ssc-jit bench_block_sparse -- --ignored --nocapture`):
    /// medians of 15 interleaved rounds, single thread, and the rate in G direct
    /// multiply-adds (of the dense conv) per second.
    #[test]
    #[ignore]
    fn bench_block_sparse() {
        use crate::kernels::spmm::tests::{tiled, TileMode};
        use crate::testutil::Rng;
        let mut rng = Rng(7);
        for g in [
            geom(64, 64, 1, 56, 56, [1; 4]),
            geom(128, 128, 1, 28, 28, [1; 4]),
            geom(256, 256, 1, 14, 14, [1; 4]),
            geom(512, 512, 1, 7, 7, [1; 4]),
        ] {
            let tile = Winograd::choose(&g).expect("ResNet-18's layers get Winograd");
            let x = pattern(g.c_in * g.h * g.w, 37, 101, 0.02);
            for pruned in [0.5, 0.75] {
                let w = tiled(&mut rng, &g, (4, 4), pruned, TileMode::Free);
                let epi = Epilogue::default();
                let sparse = Winograd::new(g, &w, epi.clone(), tile, 1);
                let dense = Winograd::new(g, &w, epi.clone(), tile, 1).without_blocks();
                let mut scratch = vec![0.0; sparse.scratch_len().max(dense.scratch_len())];
                let mut y = vec![0.0; g.c_out * g.h_out * g.w_out];
                let [a, b] = interleaved_ms(15, |i| match i {
                    0 => dense.run(&x, [None, None], &mut y, &mut scratch),
                    _ => sparse.run(&x, [None, None], &mut y, &mut scratch),
                });
                let gm = |ms: f64| g.macs() as f64 / ms / 1e6;
                eprintln!(
                    "{:>3}->{:<3} {:>2}x{:<2} {tile:?} {:.0}% pruned: dense {a:.3} ms ({:.0} G/s)  block-sparse {b:.3} ms ({:.0} G/s, kept {:.2}, used {})  {:.2}x",
                    g.c_in, g.c_out, g.h, g.w, pruned * 100.0, gm(a), gm(b), sparse.kept_products(), sparse.sparse.is_some(), a / b
                );
            }
        }
    }
}
