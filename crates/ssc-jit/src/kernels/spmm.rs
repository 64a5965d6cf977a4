//! [`SpmmConv`]: a convolution computed over its non-zero weights only, as a sparse weight
//! matrix times the dense input, vectorised over output pixels with AVX-512; pruned blocks of
//! weights are skipped, blocks of output channels share each input load, and tiles of weights
//! that share one value read a precomputed sum of their inputs once.
//!
//! # Design (after XNNPACK's f32-spmm micro-kernels, for convolutions and x86)
//!
//! *Layout.* The input is copied once per image into zero-padded, phase-split planes
//! (`kernels::planes`), so every (input channel, tap) is one constant offset and output
//! position `p = y*wq + x` (row pitch `wq`) reads `planes[p + offset]` for any stride,
//! dilation and padding. A 1x1 stride-1 unpadded conv reads its input in place (the pitch is
//! the row width; the last tile's loads are masked).
//!
//! *Tiles and blocks.* The flat output positions are cut into tiles of [`TILE`] = 64 (four
//! 16-float vectors). The output channels are cut into blocks of `B` consecutive channels (1, 2,
//! 4 or 8) that share a list of *columns*: the input offsets where any of them has a non-zero
//! weight, each with its `B` weights (zeros where a channel has none). Per tile and block, each
//! column is one load of the tile's inputs at its offset per vector, then `B` broadcasts and `B`
//! FMAs per vector: a block-sparse weight (MSWU's 4x4 tiles, 8x1 or 16x1 tiles) pays one load per
//! `B` multiply-adds instead of one per multiply-add. Accumulators start at the bias. The loop
//! order is tile outer, block inner, so one tile's inputs stay in L1/L2 while every block
//! walks its columns over them; the weight table streams. Blocks of one channel run two
//! unmasked tiles at once (eight vectors per column: one table read and broadcast per 128
//! positions). The input channels are cut into chunks whose inputs fit L1, with at least
//! `MIN_CHUNK_COLUMNS` columns per block on average: between chunks each block keeps its
//! partial sums in scratch. A k x k layer whose output fits one tile is not cut (7x7 planes:
//! the partial sums' round trips cost more than L1 saves there).
//!
//! *Unified tiles.* A tile of weights over `bo` output channels, `bi` input channels and every
//! kernel tap that holds one non-zero value `v` (MSWU's one-value unification) adds the same
//! `v * S` to each of its outputs, where `S` is the box sum of its `bi` inputs over the kernel
//! window. `S` depends on the input block only, so it is computed once per image for every
//! input block some unified tile reads (the `bi` channels' planes summed into a virtual
//! channel, then summed over the taps into a plane at output positions), and the tile becomes
//! one column per output on that plane: `bo` multiply-adds per position instead of
//! `bo * bi * taps`.
//!
//! *Epilogue in registers.* Bias first; after the last column each vector gets the residuals
//! (loaded compactly and expanded to the pitch positions), the activation, and is compressed
//! to its valid columns and stored straight into the NCHW output (`x >= w_out` positions are
//! dropped by the compress mask; the store is masked to the compressed count). Compressing in a
//! register: Zen 4 microcodes the compress-to-memory form.
//!
//! *Threads.* The fill splits over input channels; the products over tiles, which keeps the
//! threads balanced however unevenly the non-zeros fall over the channels; with fewer tiles than
//! four per thread (7x7 and 14x14 planes), over blocks, by their column counts.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use rayon::prelude::*;

use crate::kernels::par::{simd, SendPtr};
use crate::kernels::planes::Planes;
use crate::spec::{Activation, ConvGeom, Epilogue};

/// Output positions per tile: four 16-float vectors.
pub(crate) const TILE: usize = 64;
/// Columns per block that one chunk of input channels should hold at least, on average
/// (`bench_spmm`'s probe, 1 thread, 1x1 960 -> 160 on 7x7 at 20%: 17 chunks of 57 channels (11
/// columns per block) 27 GF/s of non-zero work, 6 chunks of 160 channels 35 GF/s, 1 chunk 31;
/// 384 -> 64 on 14x14 at 20%: 8 chunks 29, 1 chunk 32; 3x3 layers keep their L1-sized chunks,
/// which hold 40-80 columns per block).
const MIN_CHUNK_COLUMNS: usize = 32;
/// Vectors per tile.
const TV: usize = TILE / 16;
/// Bytes of input one chunk of input channels may read per tile (half of Zen 4's 32 KiB L1).
const L1_CHUNK: usize = 16 * 1024;

/// Whether the host runs this kernel (AVX-512F).
pub(crate) fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        crate::kernels::par::has_avx512f()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether the kernel's register epilogue computes `act` (clamps and leaky slopes; the plan
/// keeps other activations on the other kernels).
pub(crate) fn supports(act: Activation) -> bool {
    !matches!(act, Activation::HardSwish | Activation::Silu)
}

/// The block sizes (output channels sharing their columns) the kernel is instantiated for.
pub(crate) const BLOCK_SIZES: [usize; 4] = [1, 2, 4, 8];

/// How a layer's weights are arranged for the kernel: output channels per block, and the
/// tile shape `(bo, bi)` whose one-value tiles read box sums (none: every weight is a column
/// entry).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Arrangement {
    pub block: usize,
    pub unify: Option<(usize, usize)>,
}

/// One block of output channels: `rows` channels from `oc0`, their columns at
/// `table[w0..w1]` (each `1 + B` words: the input offset, then one weight per channel).
#[derive(Clone, Copy, Debug)]
struct Block {
    oc0: usize,
    rows: usize,
    b: usize,
    w0: usize,
    w1: usize,
}

/// A box sum a unified tile reads: input channels `c0..c0 + n` of one group.
#[derive(Clone, Copy, Debug)]
struct SumBlock {
    c0: usize,
    n: usize,
}

/// A conv over its non-zero weights (see the module docs).
pub(crate) struct SpmmConv {
    geom: ConvGeom,
    planes: Planes,
    /// 1x1, stride 1, no padding, no box sums: the input is read in place.
    direct: bool,
    n_tiles: usize,
    blocks: Vec<Block>,
    table: Vec<u32>,
    /// Box sums: their virtual channels start at `sum_base` (one `chan_len` each), followed by
    /// their planes at output positions (one `plane` each; for 1x1 kernels the virtual
    /// channel is the sum itself).
    sums: Vec<SumBlock>,
    sum_base: usize,
    /// Tap offsets within one channel's planes (for the box sums).
    tap_offs: Vec<usize>,
    bias: Vec<f32>,
    residuals: usize,
    act: Activation,
    /// Per 16-position chunk: the mask of valid columns and the NCHW index of its first.
    masks: Vec<u16>,
    dsts: Vec<u32>,
    /// Prefix sums of the blocks' work, for splitting blocks over threads.
    cum: Vec<u64>,
    /// Input-channel chunks: every tile runs chunk by chunk, so the inputs a chunk reads stay in
    /// L1 while all blocks walk them; block `b`'s columns of chunk `k` are
    /// `splits[b*(n_chunks+1) + k..][..2]`.
    n_chunks: usize,
    splits: Vec<usize>,
    /// Per-thread partial sums between chunks (`c_out * TILE` floats each) after the layout.
    slots: usize,
    pad_len: usize,
    nnz: usize,
    columns: usize,
}

impl std::fmt::Debug for SpmmConv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpmmConv")
            .field("geom", &self.geom)
            .field("nnz", &self.nnz)
            .field("columns", &self.columns)
            .field("sums", &self.sums.len())
            .finish()
    }
}

/// The one-value tiles of shape `(bo, bi)` (over all taps) in `weights`, per group-local tile
/// index `(group, ob, ib)` row-major: `Some(v)` where every weight of the tile equals `v != 0`.
pub(crate) fn unified_tiles(
    g: &ConvGeom,
    weights: &[f32],
    (bo, bi): (usize, usize),
) -> Vec<Option<f32>> {
    let (cin_g, cout_g, taps) = (g.cin_g(), g.cout_g(), g.kh * g.kw);
    if bo == 0 || bi == 0 || !cout_g.is_multiple_of(bo) || !cin_g.is_multiple_of(bi) {
        return Vec::new();
    }
    let (nob, nib) = (cout_g / bo, cin_g / bi);
    let mut out = Vec::with_capacity(g.group * nob * nib);
    for grp in 0..g.group {
        for ob in 0..nob {
            for ib in 0..nib {
                let v = weights[((grp * cout_g + ob * bo) * cin_g + ib * bi) * taps];
                let one = v != 0.0
                    && (0..bo).all(|o| {
                        let oc = grp * cout_g + ob * bo + o;
                        let row = &weights[(oc * cin_g + ib * bi) * taps..][..bi * taps];
                        row.iter().all(|&w| w == v)
                    });
                out.push(one.then_some(v));
            }
        }
    }
    out
}

/// The tile shapes whose one-value tiles the kernel reads as box sums, in order of preference.
pub(crate) const UNIFY_SHAPES: [(usize, usize); 7] =
    [(4, 4), (8, 1), (16, 1), (1, 8), (2, 2), (4, 1), (1, 4)];

/// The tile shape (if any) whose one-value tiles save the most multiply-adds, counting a tile
/// as `bo * bi * taps` entries replaced by `bo`, and a box sum as `bi + taps` entries.
pub(crate) fn best_unify(g: &ConvGeom, weights: &[f32]) -> Option<(usize, usize)> {
    let taps = g.kh * g.kw;
    // Cheap pre-check: one-value tiles need equal neighbours (along the taps and input
    // channels, or along the output channels).
    let row = g.cin_g() * taps;
    let equal = (0..weights.len())
        .filter(|&i| {
            let w = weights[i];
            w != 0.0 && (weights.get(i + 1) == Some(&w) || weights.get(i + row) == Some(&w))
        })
        .count();
    if equal * 32 < weights.len() {
        return None;
    }
    let mut best = None;
    let mut best_gain = 0i64;
    for &(bo, bi) in &UNIFY_SHAPES {
        let tiles = unified_tiles(g, weights, (bo, bi));
        if tiles.is_empty() {
            continue;
        }
        let nib = g.cin_g() / bi;
        let mut used = vec![false; g.group * nib];
        let mut gain = 0i64;
        let nob = g.cout_g() / bo;
        for (t, v) in tiles.iter().enumerate() {
            if v.is_some() {
                gain += (bo * bi * taps - bo) as i64;
                let (grp, ib) = (t / (nob * nib), t % nib);
                used[grp * nib + ib] = true;
            }
        }
        gain -= used.iter().filter(|&&u| u).count() as i64 * (bi + taps) as i64;
        if gain > best_gain {
            best_gain = gain;
            best = Some((bo, bi));
        }
    }
    best
}

/// What arranging `weights` as `arr` gives: the columns per block size (summed over blocks),
/// the non-zero entries, and the box sums.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Shape {
    pub columns: usize,
    pub entries: usize,
    pub sums: usize,
}

/// Per output channel: its `(offset, weight)` entries in offset order, for the layout `planes`
/// (or in-place reads when `direct`), with unified tiles as entries on box-sum planes.
struct Entries {
    per_oc: Vec<Vec<(u32, f32)>>,
    sums: Vec<SumBlock>,
    sum_base: usize,
    pad_len: usize,
}

fn entries(
    g: &ConvGeom,
    planes: &Planes,
    weights: &[f32],
    unify: Option<(usize, usize)>,
    direct: bool,
) -> Entries {
    let (cin_g, cout_g, taps) = (g.cin_g(), g.cout_g(), g.kh * g.kw);
    let chan_len = if direct { g.h * g.w } else { planes.chan_len() };
    let tiles = unify.map(|s| (s, unified_tiles(g, weights, s)));
    // Box sums: one per (group, input block) some unified tile reads, in order.
    let mut sum_of = Vec::new();
    let mut sums = Vec::new();
    if let Some(((bo, bi), t)) = &tiles {
        let (nob, nib) = (cout_g / bo, cin_g / bi);
        sum_of = vec![usize::MAX; g.group * nib];
        for grp in 0..g.group {
            for ib in 0..nib {
                if (0..nob).any(|ob| t[(grp * nob + ob) * nib + ib].is_some()) {
                    sum_of[grp * nib + ib] = sums.len();
                    sums.push(SumBlock {
                        c0: grp * cin_g + ib * bi,
                        n: *bi,
                    });
                }
            }
        }
    }
    let sum_base = g.c_in * chan_len;
    let s_base = sum_base + sums.len() * chan_len;
    let s_planes = if taps == 1 { 0 } else { sums.len() };
    let pad_len = if direct {
        0
    } else {
        s_base + s_planes * planes.plane() + TILE
    };
    // A 1x1 kernel's box sum is its virtual channel; a k x k kernel's, the plane of tap sums.
    let sum_off = |k: usize| {
        if taps == 1 {
            sum_base + k * chan_len + planes.offset(0, 0, 0)
        } else {
            s_base + k * planes.plane()
        }
    };
    let mut per_oc = Vec::with_capacity(g.c_out);
    for oc in 0..g.c_out {
        let grp = oc / cout_g;
        let mut e = Vec::new();
        for j in 0..cin_g {
            let ic = grp * cin_g + j;
            if let Some(((bo, bi), t)) = &tiles {
                let (nob, nib) = (cout_g / bo, cin_g / bi);
                let (ob, ib) = ((oc % cout_g) / bo, j / bi);
                if let Some(v) = t[(grp * nob + ob) * nib + ib] {
                    if j % bi == 0 {
                        e.push((sum_off(sum_of[grp * nib + ib]) as u32, v));
                    }
                    continue;
                }
            }
            for ky in 0..g.kh {
                for kx in 0..g.kw {
                    let w = weights[(oc * cin_g + j) * taps + ky * g.kw + kx];
                    if w == 0.0 {
                        continue;
                    }
                    let off = if direct {
                        ic * chan_len
                    } else {
                        planes.offset(ic, ky, kx)
                    };
                    e.push((off as u32, w));
                }
            }
        }
        e.sort_unstable_by_key(|&(o, _)| o);
        per_oc.push(e);
    }
    Entries {
        per_oc,
        sums,
        sum_base,
        pad_len,
    }
}

/// Groups `per_oc` into blocks of `b` channels (not crossing groups), each with the union of
/// its channels' offsets as columns: `(blocks, table)`.
fn blocks_of(g: &ConvGeom, per_oc: &[Vec<(u32, f32)>], b: usize) -> (Vec<Block>, Vec<u32>) {
    let cout_g = g.cout_g();
    let mut blocks = Vec::new();
    let mut table = Vec::new();
    for grp in 0..g.group {
        let mut oc0 = grp * cout_g;
        while oc0 < (grp + 1) * cout_g {
            let rows = b.min((grp + 1) * cout_g - oc0);
            let mut all: Vec<(u32, usize, f32)> = (0..rows)
                .flat_map(|r| per_oc[oc0 + r].iter().map(move |&(o, w)| (o, r, w)))
                .collect();
            all.sort_unstable_by_key(|&(o, r, _)| (o, r));
            let w0 = table.len();
            let mut i = 0;
            while i < all.len() {
                let off = all[i].0;
                let at = table.len();
                table.push(off);
                table.extend(std::iter::repeat_n(0f32.to_bits(), b));
                while i < all.len() && all[i].0 == off {
                    table[at + 1 + all[i].1] = all[i].2.to_bits();
                    i += 1;
                }
            }
            blocks.push(Block {
                oc0,
                rows,
                b,
                w0,
                w1: table.len(),
            });
            oc0 += rows;
        }
    }
    (blocks, table)
}

/// Whether `g` is read in place (1x1, stride 1, no padding) when it has no box sums.
fn reads_in_place(g: &ConvGeom) -> bool {
    g.kh == 1 && g.kw == 1 && g.stride == [1, 1] && g.pads == [0; 4]
}

/// The columns, entries and box sums of `weights` arranged in blocks of each size in `blocks`
/// with the same `unify` (what the cost model prices), without building the kernel: the column
/// entries are laid out once and only grouped per block size (laying them out is most of the
/// work).
pub(crate) fn shapes_of(
    g: &ConvGeom,
    weights: &[f32],
    unify: Option<(usize, usize)>,
    blocks: &[usize],
) -> Vec<Shape> {
    let planes = Planes::new(g);
    let direct = reads_in_place(g) && unify.is_none();
    let e = entries(g, &planes, weights, unify, direct);
    let entries = e.per_oc.iter().map(Vec::len).sum();
    // A block's columns are its distinct input offsets (as `blocks_of` groups them): counted
    // with a stamp per offset instead of sorting each block's entries, which made pricing
    // every block size cost more than compiling the layer.
    let span = e
        .per_oc
        .iter()
        .flat_map(|v| v.iter().map(|&(o, _)| o as usize + 1))
        .max()
        .unwrap_or(0);
    let mut stamp = vec![usize::MAX; span];
    let mut id = 0usize;
    let cout_g = g.cout_g();
    blocks
        .iter()
        .map(|&b| {
            let mut columns = 0;
            for grp in 0..g.group {
                let mut oc0 = grp * cout_g;
                while oc0 < (grp + 1) * cout_g {
                    let rows = b.min((grp + 1) * cout_g - oc0);
                    for &(o, _) in e.per_oc[oc0..oc0 + rows].iter().flatten() {
                        if stamp[o as usize] != id {
                            stamp[o as usize] = id;
                            columns += 1;
                        }
                    }
                    id += 1;
                    oc0 += rows;
                }
            }
            Shape {
                columns,
                entries,
                sums: e.sums.len(),
            }
        })
        .collect()
}

/// The column count `blocks_of` gives, for tests of [`shapes_of`]'s counting.
#[cfg(test)]
pub(crate) fn columns_by_blocks(
    g: &ConvGeom,
    weights: &[f32],
    unify: Option<(usize, usize)>,
    b: usize,
) -> usize {
    let planes = Planes::new(g);
    let direct = reads_in_place(g) && unify.is_none();
    let e = entries(g, &planes, weights, unify, direct);
    let (blocks, _) = blocks_of(g, &e.per_oc, b);
    blocks.iter().map(|k| (k.w1 - k.w0) / (1 + k.b)).sum()
}

impl SpmmConv {
    /// The kernel for `geom` with `weights` (`[c_out, c_in/group, kh, kw]`) arranged as `arr`,
    /// the epilogue `epi` plus `residuals` residual tensors (0..=2, the first one is
    /// `epi.residual`'s). The caller has checked [`available`] and the geometry.
    pub(crate) fn new(
        geom: ConvGeom,
        weights: &[f32],
        epi: &Epilogue,
        residuals: usize,
        arr: Arrangement,
        threads: usize,
    ) -> SpmmConv {
        let g = geom;
        let planes = Planes::new(&g);
        let direct = reads_in_place(&g) && arr.unify.is_none();
        let e = entries(&g, &planes, weights, arr.unify, direct);
        let nnz = weights.iter().filter(|&&w| w != 0.0).count();
        let (blocks, table) = blocks_of(&g, &e.per_oc, arr.block);
        let wq = planes.wq;
        let positions = g.h_out * wq;
        let n_tiles = positions.div_ceil(TILE);
        let (mut masks, mut dsts) = (Vec::new(), Vec::new());
        for c in 0..n_tiles * TV {
            let p0 = 16 * c;
            let mut m = 0u16;
            for l in 0..16 {
                let p = p0 + l;
                if p / wq < g.h_out && p % wq < g.w_out {
                    m |= 1 << l;
                }
            }
            let (y0, x0) = (p0 / wq, p0 % wq);
            let d = if y0 >= g.h_out {
                g.h_out * g.w_out
            } else {
                y0 * g.w_out + x0.min(g.w_out)
            };
            masks.push(m);
            dsts.push(d as u32);
        }
        let mut cum = vec![0u64];
        for b in &blocks {
            let cols = ((b.w1 - b.w0) / (1 + b.b)) as u64;
            cum.push(cum.last().copied().unwrap_or(0) + cols * b.b as u64 + 4 * b.rows as u64);
        }
        let columns: usize = blocks.iter().map(|b| (b.w1 - b.w0) / (1 + b.b)).sum();
        // Chunks of input channels whose inputs for one tile fill about half of L1: per
        // channel, each phase plane's rows under the tile plus the taps' reach.
        // (Blocks of one channel run two tiles at once.)
        let span = if arr.block == 1 { 2 * TILE } else { TILE };
        let reach = span + (g.kh - 1) * g.dilation[0] / g.stride[0] * wq + planes.wq;
        let per_chan = 4 * planes.phases.len() * reach;
        // ... but with at least `MIN_CHUNK_COLUMNS` columns per block and chunk on average:
        // between chunks every block stores and reloads its partial sums, which costs more
        // than L1 saves when a chunk holds only a few columns per block (deep 1x1 layers at
        // low density).
        let per_ic = columns as f64 / (blocks.len().max(1) * g.c_in) as f64;
        let kc_min = (MIN_CHUNK_COLUMNS as f64 / per_ic.max(1e-9)).ceil() as usize;
        // A k x k layer whose output fits one tile (7x7 planes) is not cut: `probe_spmm`,
        // paired, 3x3 512 -> 512 on 7x7 at 22% density, one chunk 0.85x the time of 20 chunks
        // (the partial sums' round trips cost more than L1 saves; 1x1 layers keep their
        // chunks: MobileNetV2's 960 -> 320 on 7x7 ran 35 GF/s in 6 chunks, 31 in one).
        let kc = if n_tiles == 1 && g.kh * g.kw > 1 {
            g.c_in
        } else {
            (L1_CHUNK / per_chan).max(kc_min.min(g.c_in))
        };
        let tap_offs = (0..g.kh)
            .flat_map(|ky| (0..g.kw).map(move |kx| (ky, kx)))
            .map(|(ky, kx)| planes.offset(0, ky, kx))
            .collect();
        let mut k = SpmmConv {
            geom: g,
            planes,
            direct,
            n_tiles,
            blocks,
            table,
            sums: e.sums,
            sum_base: e.sum_base,
            tap_offs,
            bias: epi.bias.clone().unwrap_or_else(|| vec![0.0; g.c_out]),
            residuals,
            act: epi.act,
            masks,
            dsts,
            cum,
            n_chunks: 1,
            splits: Vec::new(),
            slots: threads.max(1),
            pad_len: e.pad_len,
            nnz,
            columns,
        };
        k.chunk(kc);
        k
    }

    /// Cuts the input channels into chunks of `kc` (the last one also takes the box sums).
    fn chunk(&mut self, kc: usize) {
        let g = &self.geom;
        let kc = kc.clamp(1, g.c_in);
        self.n_chunks = g.c_in.div_ceil(kc);
        let chan_len = if self.direct {
            g.h * g.w
        } else {
            self.planes.chan_len()
        };
        self.splits.clear();
        for b in &self.blocks {
            let words = 1 + b.b;
            let cols: Vec<usize> = self.table[b.w0..b.w1]
                .chunks_exact(words)
                .map(|c| c[0] as usize)
                .collect();
            self.splits.push(0);
            for k in 1..self.n_chunks {
                self.splits
                    .push(cols.partition_point(|&o| o < k * kc * chan_len));
            }
            self.splits.push(cols.len());
        }
    }

    /// f32 elements of scratch one image needs.
    pub(crate) fn scratch_len(&self) -> usize {
        let slots = if self.n_chunks > 1 { self.slots } else { 0 };
        self.pad_len + slots * 2 * self.geom.c_out * TILE
    }

    /// The kernel's name in step reports: the block size and, with one-value tiles, their
    /// shape.
    pub(crate) fn kind(&self) -> String {
        let b = self.blocks.first().map_or(1, |b| b.b);
        let mut s = format!("spmm b{b}");
        if !self.sums.is_empty() {
            s += &format!(" +{} box sums", self.sums.len());
        }
        s
    }

    /// One image: `input` is `[c_in, h, w]`, `output` and the residuals `[c_out, h_out,
    /// w_out]`.
    pub(crate) fn run(
        &self,
        input: &[f32],
        res: [Option<&[f32]>; 2],
        output: &mut [f32],
        scratch: &mut [f32],
    ) {
        let g = &self.geom;
        let hw = g.h_out * g.w_out;
        assert_eq!(input.len(), g.c_in * g.h * g.w, "SpmmConv: input length");
        assert_eq!(output.len(), g.c_out * hw, "SpmmConv: output length");
        let n_res = res.iter().flatten().count();
        assert_eq!(n_res, self.residuals, "SpmmConv: residuals");
        assert!(res.iter().flatten().all(|r| r.len() == output.len()));
        assert!(res[1].is_none() || res[0].is_some());
        let threads = rayon::current_num_threads().max(1);
        assert!(
            scratch.len() >= self.scratch_len(),
            "SpmmConv: scratch too short"
        );
        let (scratch, partials) = scratch.split_at_mut(self.pad_len);
        let partials = SendPtr(partials.as_mut_ptr());
        // Two tiles' partial sums (blocks of one channel run tile pairs).
        let slot_len = 2 * g.c_out * TILE;
        let base: usize = if self.direct {
            input.as_ptr() as usize
        } else {
            let pad = &mut scratch[..self.pad_len];
            let chan_len = self.planes.chan_len();
            let (planes, rest) = pad.split_at_mut(g.c_in * chan_len);
            let n = rest.len();
            rest[n - TILE..].fill(0.0);
            self.planes.fill_split(0, g.c_in, threads, input, planes);
            if !self.sums.is_empty() {
                self.box_sums(pad);
            }
            pad.as_ptr() as usize
        };
        let out = SendPtr(output.as_mut_ptr());
        let res = res.map(|r| r.map(|r| r.as_ptr() as usize));
        let run = |t0: usize, t1: usize, b0: usize, b1: usize| {
            simd(
                #[inline(always)]
                || {
                    // A thread runs one task at a time, so it owns the partial sums of its slot.
                    let slot = rayon::current_thread_index().unwrap_or(0) % self.slots.max(1);
                    let partial = partials.get().wrapping_add(slot * slot_len);
                    // SAFETY: the layout keeps every read in bounds (module docs, `pad_len`);
                    // tasks write disjoint (tile, block) parts of the output, and their threads'
                    // own partial sums (`slots` covers the pool: `new`'s `threads`).
                    #[cfg(target_arch = "x86_64")]
                    unsafe {
                        self.tiles(base as *const f32, t0, t1, b0, b1, out, res, partial)
                    }
                },
            )
        };
        let nb = self.blocks.len();
        if threads <= 1 {
            run(0, self.n_tiles, 0, nb);
        } else if self.n_tiles >= 4 * threads {
            let parts = (4 * threads).min(self.n_tiles);
            (0..parts).into_par_iter().for_each(|p| {
                run(
                    self.n_tiles * p / parts,
                    self.n_tiles * (p + 1) / parts,
                    0,
                    nb,
                )
            });
        } else {
            let parts = (4 * threads).min(nb).max(1);
            let total = *self.cum.last().unwrap_or(&0);
            let cut = |p: usize| {
                let target = total * p as u64 / parts as u64;
                if p == parts {
                    nb
                } else {
                    self.cum.partition_point(|&c| c < target).min(nb)
                }
            };
            (0..parts).into_par_iter().for_each(|p| {
                let (b0, b1) = (cut(p), cut(p + 1));
                if b0 < b1 {
                    run(0, self.n_tiles, b0, b1);
                }
            });
        }
    }

    /// The box sums: for each, the virtual channel (its input channels' planes summed), then
    /// for k x k kernels the sum over the taps at every output position.
    fn box_sums(&self, pad: &mut [f32]) {
        let chan_len = self.planes.chan_len();
        let plane = self.planes.plane();
        let (planes, rest) = pad.split_at_mut(self.sum_base);
        let (virt, s) = rest.split_at_mut(self.sums.len() * chan_len);
        let planes: &[f32] = planes;
        let taps = self.tap_offs.len();
        let positions = self.geom.h_out * self.planes.wq;
        let mut s_chunks: Vec<&mut [f32]> = if taps == 1 {
            (0..self.sums.len()).map(|_| &mut [][..]).collect()
        } else {
            s[..self.sums.len() * plane]
                .chunks_exact_mut(plane)
                .collect()
        };
        virt.par_chunks_exact_mut(chan_len)
            .zip(s_chunks.par_iter_mut())
            .zip(self.sums.par_iter())
            .for_each(|((v, s), sb)| {
                simd(
                    #[inline(always)]
                    || {
                        v.copy_from_slice(&planes[sb.c0 * chan_len..][..chan_len]);
                        for c in 1..sb.n {
                            let src = &planes[(sb.c0 + c) * chan_len..][..chan_len];
                            for (d, &x) in v.iter_mut().zip(src) {
                                *d += x;
                            }
                        }
                        if taps > 1 {
                            // Every tap reads inside the virtual channel for the valid rows; the
                            // positions after them are only ever garbage lanes.
                            let n = positions;
                            let s = &mut s[..n];
                            s.copy_from_slice(&v[self.tap_offs[0]..][..n]);
                            for &o in &self.tap_offs[1..] {
                                for (d, &x) in s.iter_mut().zip(&v[o..o + n]) {
                                    *d += x;
                                }
                            }
                        }
                    },
                )
            });
    }

    /// Tiles `t0..t1` of blocks `b0..b1`.
    ///
    /// # Safety
    /// AVX-512F; `base` is the filled layout (or the input when `direct`); `out` and the
    /// residual addresses are the caller's NCHW tensors.
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    unsafe fn tiles(
        &self,
        base: *const f32,
        t0: usize,
        t1: usize,
        b0: usize,
        b1: usize,
        out: SendPtr,
        res: [Option<usize>; 2],
        partial: *mut f32,
    ) {
        let g = &self.geom;
        let hw = g.h_out * g.w_out;
        let positions = g.h_out * self.planes.wq;
        let (lo, hi, leaky) = match self.act {
            Activation::None => (f32::NEG_INFINITY, f32::INFINITY, None),
            Activation::Relu => (0.0, f32::INFINITY, None),
            Activation::Clip(lo, hi) => (lo, hi, None),
            Activation::LeakyRelu(a) => (f32::NEG_INFINITY, f32::INFINITY, Some(a)),
            Activation::HardSwish | Activation::Silu => {
                unreachable!("SpmmConv: activation checked by `supports`")
            }
        };
        let epi = Epi {
            lo,
            hi,
            leaky,
            res: res.map(|r| r.map(|a| a as *const f32)),
            hw,
        };
        let nk = self.n_chunks;
        let c_out = g.c_out;
        // Direct reads: lanes past the last position are masked off the loads.
        let lmask_of = |t: usize| -> [u16; TV] {
            std::array::from_fn(|v| {
                let s = t * TILE + 16 * v;
                if s >= positions {
                    0
                } else if s + 16 <= positions {
                    u16::MAX
                } else {
                    (1u16 << (positions - s)) - 1
                }
            })
        };
        let masked_at = |t: usize| self.direct && (t + 1) * TILE > positions;
        let mut t = t0;
        while t < t1 {
            // Blocks of one channel run two tiles at once (8 vectors per column: the
            // column's table words are read once per 128 positions) where both are unmasked.
            let n = if t + 1 < t1 && !masked_at(t + 1) && !masked_at(t) {
                2
            } else {
                1
            };
            for k in 0..nk {
                for (bi, blk) in self.blocks.iter().enumerate().take(b1).skip(b0) {
                    let (c0, c1) = (
                        self.splits[bi * (nk + 1) + k],
                        self.splits[bi * (nk + 1) + k + 1],
                    );
                    let (first, last) = (k == 0, k + 1 == nk);
                    if c0 == c1 && !first && !last {
                        continue;
                    }
                    let words = 1 + blk.b;
                    let tab = &self.table[blk.w0 + c0 * words..blk.w0 + c1 * words];
                    let step = |u: usize| Step {
                        bias: &self.bias[blk.oc0..blk.oc0 + blk.rows],
                        partial: partial.wrapping_add(((u - t) * c_out + blk.oc0) * TILE),
                        first,
                        last,
                        lmask: lmask_of(u),
                        out: out.get(),
                        oc0: blk.oc0,
                        chunk: (&self.masks[u * TV..][..TV], &self.dsts[u * TV..][..TV]),
                    };
                    // SAFETY: forwarded.
                    unsafe {
                        if n == 2 && blk.b == 1 {
                            tile_pair(base.add(t * TILE), tab, &step(t), &step(t + 1), &epi);
                            continue;
                        }
                        for u in t..t + n {
                            let inp = base.add(u * TILE);
                            let step = step(u);
                            match (blk.b, masked_at(u)) {
                                (1, false) => tile::<1, false>(inp, tab, &step, &epi),
                                (1, true) => tile::<1, true>(inp, tab, &step, &epi),
                                (2, false) => tile::<2, false>(inp, tab, &step, &epi),
                                (2, true) => tile::<2, true>(inp, tab, &step, &epi),
                                (4, false) => tile::<4, false>(inp, tab, &step, &epi),
                                (4, true) => tile::<4, true>(inp, tab, &step, &epi),
                                (8, false) => tile::<8, false>(inp, tab, &step, &epi),
                                (8, true) => tile::<8, true>(inp, tab, &step, &epi),
                                _ => unreachable!("block sizes are BLOCK_SIZES"),
                            }
                        }
                    }
                }
            }
            t += n;
        }
    }
}

/// Two consecutive unmasked tiles (128 positions) of a block of one channel: each column is
/// one table read, one broadcast and eight loads and multiply-adds.
///
/// # Safety
/// As [`tile`] for both steps; `s1`'s tile starts `TILE` positions after `s0`'s.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn tile_pair(inp: *const f32, tab: &[u32], s0: &Step, s1: &Step, epi: &Epi) {
    // SAFETY: see the contract above.
    unsafe {
        let (i0, i1) = (init::<1, TV>(s0, 1, 0), init::<1, TV>(s1, 1, 0));
        let init: [[__m512; 2 * TV]; 1] = [std::array::from_fn(|v| {
            if v < TV {
                i0[0][v]
            } else {
                i1[0][v - TV]
            }
        })];
        let acc = columns::<1, { 2 * TV }, false>(inp, tab, init, [u16::MAX; 2 * TV]);
        let halves: [[[__m512; TV]; 1]; 2] =
            std::array::from_fn(|h| [std::array::from_fn(|v| acc[0][h * TV + v])]);
        for (a, s) in halves.into_iter().zip([s0, s1]) {
            if s.last {
                store::<1, TV>(a, 1, s.out, s.oc0, s.chunk, epi);
            } else {
                keep::<1, TV>(a, 1, s.partial, 0);
            }
        }
    }
}

/// The epilogue's constants.
struct Epi {
    lo: f32,
    hi: f32,
    leaky: Option<f32>,
    /// Residual tensors (NCHW, the output's shape).
    res: [Option<*const f32>; 2],
    hw: usize,
}

/// One block's work on one tile for one chunk of input channels.
struct Step<'a> {
    /// The block's channels' biases (`rows` of them).
    bias: &'a [f32],
    /// The block's partial sums between chunks: `TILE` floats per channel.
    partial: *mut f32,
    /// The first chunk starts from the bias, later ones from the partial sums; the last one
    /// stores through the epilogue, earlier ones to the partial sums.
    first: bool,
    last: bool,
    lmask: [u16; TV],
    out: *mut f32,
    oc0: usize,
    chunk: (&'a [u16], &'a [u32]),
}

/// One tile (64 positions) of one block of `B` output channels over the columns `tab`. `B =
/// 8` runs as two halves of two vectors (32 accumulators would leave no registers for the
/// inputs).
///
/// # Safety
/// AVX-512F; every column offset plus the tile's 64 positions is readable from `inp` (or
/// masked by `lmask` when `MASKED`); `out` is the output tensor; `partial` holds `TILE` floats
/// for each of the block's channels unless the step is both first and last.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn tile<const B: usize, const MASKED: bool>(
    inp: *const f32,
    tab: &[u32],
    s: &Step,
    epi: &Epi,
) {
    // SAFETY: see the contract above.
    unsafe {
        let rows = s.bias.len();
        if B == 8 {
            for h in 0..2 {
                let lm = [s.lmask[2 * h], s.lmask[2 * h + 1]];
                let init = init::<B, 2>(s, rows, 32 * h);
                let acc = columns::<B, 2, MASKED>(inp.add(32 * h), tab, init, lm);
                if s.last {
                    let ch = (&s.chunk.0[2 * h..], &s.chunk.1[2 * h..]);
                    store::<B, 2>(acc, rows, s.out, s.oc0, ch, epi);
                } else {
                    keep::<B, 2>(acc, rows, s.partial, 32 * h);
                }
            }
        } else {
            let init = init::<B, TV>(s, rows, 0);
            let acc = columns::<B, TV, MASKED>(inp, tab, init, s.lmask);
            if s.last {
                store::<B, TV>(acc, rows, s.out, s.oc0, s.chunk, epi);
            } else {
                keep::<B, TV>(acc, rows, s.partial, 0);
            }
        }
    }
}

/// The accumulators a step starts from: the bias, or the partial sums at `at` in each
/// channel's `TILE` floats.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn init<const B: usize, const V: usize>(
    s: &Step,
    rows: usize,
    at: usize,
) -> [[__m512; V]; B] {
    std::array::from_fn(|r| {
        std::array::from_fn(|v| {
            if r >= rows {
                _mm512_setzero_ps()
            } else if s.first {
                _mm512_set1_ps(s.bias[r])
            } else {
                // SAFETY: the partial sums of the block's channels (`tile`'s contract).
                unsafe { _mm512_loadu_ps(s.partial.add(r * TILE + at + 16 * v)) }
            }
        })
    })
}

/// Stores the first `rows` channels' accumulators as partial sums.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn keep<const B: usize, const V: usize>(
    acc: [[__m512; V]; B],
    rows: usize,
    partial: *mut f32,
    at: usize,
) {
    for (r, a) in acc.iter().enumerate().take(rows) {
        for (v, a) in a.iter().enumerate() {
            // SAFETY: as `init`.
            unsafe { _mm512_storeu_ps(partial.add(r * TILE + at + 16 * v), *a) };
        }
    }
}

/// `init` plus, for every column of `tab`, its inputs times its `B` weights.
// `v` indexes the accumulators and the loads' offsets and masks together.
#[allow(clippy::needless_range_loop)]
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn columns<const B: usize, const V: usize, const MASKED: bool>(
    inp: *const f32,
    tab: &[u32],
    init: [[__m512; V]; B],
    lmask: [u16; V],
) -> [[__m512; V]; B] {
    // SAFETY: see `tile`.
    unsafe {
        let mut acc = init;
        let load = |p: *const f32, v: usize| {
            if MASKED {
                _mm512_maskz_loadu_ps(lmask[v], p.add(16 * v))
            } else {
                _mm512_loadu_ps(p.add(16 * v))
            }
        };
        if B == 1 {
            // Two accumulator sets alternate between columns: one column is only V FMAs, fewer
            // than the FMA latency times its throughput.
            let mut acc2 = [_mm512_setzero_ps(); V];
            let mut pairs = tab.chunks_exact(4);
            for c in &mut pairs {
                let (p0, p1) = (inp.add(c[0] as usize), inp.add(c[2] as usize));
                let (w0, w1) = (
                    _mm512_set1_ps(f32::from_bits(c[1])),
                    _mm512_set1_ps(f32::from_bits(c[3])),
                );
                for v in 0..V {
                    acc[0][v] = _mm512_fmadd_ps(w0, load(p0, v), acc[0][v]);
                }
                for v in 0..V {
                    acc2[v] = _mm512_fmadd_ps(w1, load(p1, v), acc2[v]);
                }
            }
            if let [o, w] = *pairs.remainder() {
                let (p, w) = (inp.add(o as usize), _mm512_set1_ps(f32::from_bits(w)));
                for v in 0..V {
                    acc[0][v] = _mm512_fmadd_ps(w, load(p, v), acc[0][v]);
                }
            }
            for v in 0..V {
                acc[0][v] = _mm512_add_ps(acc[0][v], acc2[v]);
            }
            return acc;
        }
        for c in tab.chunks_exact(1 + B) {
            let p = inp.add(c[0] as usize);
            let x: [__m512; V] = std::array::from_fn(|v| load(p, v));
            for r in 0..B {
                let w = _mm512_set1_ps(f32::from_bits(c[1 + r]));
                for v in 0..V {
                    acc[r][v] = _mm512_fmadd_ps(w, x[v], acc[r][v]);
                }
            }
        }
        acc
    }
}

/// Stores the first `rows` channels of `acc` through the epilogue: each vector's valid
/// columns (chunk masks) compressed and written at their NCHW index.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn store<const B: usize, const V: usize>(
    acc: [[__m512; V]; B],
    rows: usize,
    out: *mut f32,
    oc0: usize,
    (masks, dsts): (&[u16], &[u32]),
    epi: &Epi,
) {
    // SAFETY: the chunk's valid columns are `popcount(mask)` NCHW positions from `dst`, inside
    // every channel plane of the output and the residuals.
    unsafe {
        let (lo, hi) = (_mm512_set1_ps(epi.lo), _mm512_set1_ps(epi.hi));
        for (r, acc) in acc.iter().enumerate().take(rows) {
            for v in 0..V {
                let m = masks[v];
                if m == 0 {
                    continue;
                }
                let at = (oc0 + r) * epi.hw + dsts[v] as usize;
                let cm: u16 = ((1u32 << m.count_ones()) - 1) as u16;
                let mut y = acc[v];
                for res in epi.res.iter().flatten() {
                    let x = _mm512_maskz_loadu_ps(cm, res.add(at));
                    y = _mm512_add_ps(y, _mm512_maskz_expand_ps(m, x));
                }
                if epi.lo > f32::NEG_INFINITY {
                    y = _mm512_max_ps(y, lo);
                }
                if epi.hi < f32::INFINITY {
                    y = _mm512_min_ps(y, hi);
                }
                if let Some(a) = epi.leaky {
                    let neg = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(y, _mm512_setzero_ps());
                    y = _mm512_mask_mul_ps(y, neg, y, _mm512_set1_ps(a));
                }
                let packed = _mm512_maskz_compress_ps(m, y);
                _mm512_mask_storeu_ps(out.add(at), cm, packed);
            }
        }
    }
}

#[cfg(test)]
#[path = "spmm_tests.rs"]
pub(crate) mod tests;
