//! One-value tiles as shared box sums, for Winograd's layers (MSWU's unified tiles, issue 14):
//! a tile of one output row x `bi` input channels whose weights over all taps are one value
//! `v` adds `v · B` to its output, where `B` is the box sum (over the kernel window) of the
//! sum of its `bi` input planes. `B` depends on the input block only, so it is computed once
//! per block and shared by every output row (and every tile of a `b_out x bi` MSWU tile) that
//! reads it: the tiles cost `bi + taps` additions per pixel per input block plus one
//! multiply-add per pixel per tile, against `bi · taps` multiply-adds per tile directly. The
//! rest of the weights (the one-value tiles zeroed) go through Winograd, whose block-sparse
//! products ([`BlockRows`](crate::kernels::block_sparse::BlockRows)) skip the zeroed tiles
//! when they line up over four output rows; [`Unified::split`] takes a layer only where that
//! pays. Exact for any weights: the split is a partition of the weights.

use crate::kernels::block_sparse;
use crate::kernels::par::has_avx2_fma;
use crate::kernels::sgemm;
use crate::kernels::spmm;
use crate::spec::ConvGeom;

/// Input block widths tried, in order of preference (ties keep the earlier).
const WIDTHS: [usize; 4] = [4, 8, 2, 16];

/// Products' multiply-adds per output pixel and channel pair of Winograd F(4x4) (36 / 16),
/// the denser of its tiles: the tail's product costs one multiply-add per pixel per tile.
const PRODUCT_MACS: f64 = 2.25;

/// Least drop in the products' kept fraction (tail included) for the split to be taken: the
/// box sums' additions and the tail's pass over the output are not free.
const MIN_GAIN: f64 = 0.1;

/// The one-value tiles of a layer, read as box sums (see the module docs).
#[derive(Clone, Debug)]
pub(crate) struct Unified {
    geom: ConvGeom,
    /// Input channels per block.
    bi: usize,
    /// The input blocks some one-value tile reads, in order.
    used: Vec<usize>,
    /// `[c_out][used.len()]`: each output row's value on each used block (0 where its tile
    /// is not one-value).
    coef: Vec<f32>,
}

impl Unified {
    /// The one-value tiles of `weights` (ONNX's `[c_out, c_in, kh, kw]`, ungrouped, stride 1,
    /// undilated) and the rest of the weights with them zeroed, when taking them out lowers
    /// Winograd's kept products (`kept_of`, at most `limit` for the block-sparse products to
    /// run) plus the tail's product by [`MIN_GAIN`] below `kept_before`; with the fraction of
    /// the products that remains (tail included).
    pub(crate) fn split(
        g: &ConvGeom,
        weights: &[f32],
        kept_before: f64,
        limit: f64,
    ) -> Option<(Unified, Vec<f32>, f64)> {
        if !has_avx2_fma()
            || g.group != 1
            || g.stride != [1, 1]
            || g.dilation != [1, 1]
            || weights.len() != g.c_out * g.c_in * g.kh * g.kw
        {
            return None;
        }
        let taps = g.kh * g.kw;
        // Cheap pre-check: a one-value tile has equal neighbours along its taps.
        let equal = weights
            .windows(2)
            .filter(|p| p[0] != 0.0 && p[0] == p[1])
            .count();
        if equal * 16 < weights.len() {
            return None;
        }
        let mut best: Option<(Unified, Vec<f32>, f64)> = None;
        for bi in WIDTHS {
            let tiles = spmm::unified_tiles(g, weights, (1, bi));
            if tiles.iter().all(Option::is_none) {
                continue;
            }
            let nib = g.c_in / bi;
            let used: Vec<usize> = (0..nib)
                .filter(|&ib| (0..g.c_out).any(|k| tiles[k * nib + ib].is_some()))
                .collect();
            let mut coef = vec![0.0f32; g.c_out * used.len()];
            let mut free = weights.to_vec();
            for k in 0..g.c_out {
                for (j, &ib) in used.iter().enumerate() {
                    if let Some(v) = tiles[k * nib + ib] {
                        coef[k * used.len() + j] = v;
                        free[(k * g.c_in + ib * bi) * taps..][..bi * taps].fill(0.0);
                    }
                }
            }
            let kept = block_sparse::kept_of(&free, g.c_out, g.c_in, 1);
            if kept > limit {
                continue;
            }
            let u = Unified {
                geom: *g,
                bi,
                used,
                coef,
            };
            let cost = kept + u.product_share();
            if best.as_ref().is_none_or(|b| cost < b.2) {
                best = Some((u, free, cost));
            }
        }
        best.filter(|b| b.2 + MIN_GAIN <= kept_before)
    }

    /// The tail's product over Winograd's dense products (per output pixel: one multiply-add
    /// per row and used block, against [`PRODUCT_MACS`] per channel pair).
    pub(crate) fn product_share(&self) -> f64 {
        self.used.len() as f64 / (self.geom.c_in as f64 * PRODUCT_MACS)
    }

    /// The kernel's name in step reports.
    pub(crate) fn describe(&self) -> String {
        format!("+{} box sums of 1x{}", self.used.len(), self.bi)
    }

    /// f32 elements of scratch [`Unified::add_rows`] needs for up to `rows` output rows.
    pub(crate) fn scratch_len(&self, rows: usize) -> usize {
        let g = &self.geom;
        let rows = rows.min(g.h_out);
        let hp = rows + g.kh - 1;
        let wp = g.w_out + g.kw - 1;
        hp * wp + hp * g.w_out + self.used.len() * rows * g.w_out
    }

    /// `out[k][p] += Σ_j coef[k][j] · B_j[p]` over the output pixels `p` of rows `y0..y1`,
    /// `B_j` the box sum of used block `j` (see the module docs); `scratch` holds
    /// [`Unified::scratch_len`]`(y1 - y0)`, `threads` the product's threads.
    ///
    /// # Safety
    /// `out` points to the `[c_out, h_out, w_out]` output; rows `y0..y1` of every channel
    /// belong to the caller alone.
    pub(crate) unsafe fn add_rows(
        &self,
        input: &[f32],
        y0: usize,
        y1: usize,
        out: *mut f32,
        scratch: &mut [f32],
        threads: usize,
    ) {
        let g = &self.geom;
        assert!(y0 <= y1 && y1 <= g.h_out && input.len() >= g.c_in * g.h * g.w);
        let rows = y1 - y0;
        if rows == 0 || self.used.is_empty() {
            return;
        }
        let (hp, wp, wo) = (rows + g.kh - 1, g.w_out + g.kw - 1, g.w_out);
        let npix = rows * wo;
        let (s, rest) = scratch.split_at_mut(hp * wp);
        let (hsum, b) = rest.split_at_mut(hp * wo);
        let b = &mut b[..self.used.len() * npix];
        let plane = g.h * g.w;
        let (pt, pl) = (g.pads[0], g.pads[1]);
        for (j, &ib) in self.used.iter().enumerate() {
            // The block's channel sum over padded rows `y0 ..`, padded columns `0..wp`
            // (input column `x` at `x + pad_left`; `wp - pad_left >= w`).
            for py in 0..hp {
                let srow = &mut s[py * wp..][..wp];
                srow.fill(0.0);
                let r = (y0 + py) as isize - pt as isize;
                if r < 0 || r >= g.h as isize {
                    continue;
                }
                let r = r as usize;
                let dst = &mut srow[pl..pl + g.w];
                for c in ib * self.bi..(ib + 1) * self.bi {
                    let src = &input[c * plane + r * g.w..][..g.w];
                    for (d, &x) in dst.iter_mut().zip(src) {
                        *d += x;
                    }
                }
            }
            // Along the rows, then down the columns.
            for py in 0..hp {
                let srow = &s[py * wp..][..wp];
                let hrow = &mut hsum[py * wo..][..wo];
                hrow.copy_from_slice(&srow[..wo]);
                for dx in 1..g.kw {
                    for (h, &x) in hrow.iter_mut().zip(&srow[dx..dx + wo]) {
                        *h += x;
                    }
                }
            }
            let bj = &mut b[j * npix..][..npix];
            bj.copy_from_slice(&hsum[..npix]);
            for dy in 1..g.kh {
                for (o, &x) in bj.iter_mut().zip(&hsum[dy * wo..dy * wo + npix]) {
                    *o += x;
                }
            }
        }
        let nu = self.used.len();
        // SAFETY: the destination is rows `y0..y1` of each of the `c_out` output planes (the
        // caller's); `coef` is `c_out x nu`, `b` is `nu x npix`.
        unsafe {
            sgemm(
                (g.c_out, npix, nu),
                out.add(y0 * wo),
                g.h_out * wo,
                true,
                (self.coef.as_ptr(), nu, 1),
                (b.as_ptr(), npix, 1),
                1.0,
                threads,
            );
        }
    }
}
