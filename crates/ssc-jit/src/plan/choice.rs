//! The per-layer choice between the dense conv kernels, the AVX2 table kernel
//! (`StreamConv`) and the AVX-512 sparse kernel ([`SpmmConv`]), from a cost model of both
//! calibrated by `kernels::spmm::tests::bench::bench_spmm`.
//!
//! The model: the sparse kernel's time is proportional to its column work over the lanes it
//! computes (a column costs [`COLUMN_COST`] plus one multiply-add per channel of its block, on
//! every lane of the 64-position tiles that cover the output at the layout's row pitch).
//! Dividing the chosen arrangement's work by the work of the same weights unblocked gives an
//! *effective density*: the density unstructured weights would need to cost as much. The
//! sparse kernel is taken when its predicted time, at [`SPMM_RATE`] multiply-adds per second
//! per lane, is at most [`MARGIN`] times the dense kernel's, at the rate of the dense form the
//! layer would get ([`dense_rate`]: Winograd F(4x4) and F(2x2) count their saved
//! multiplications). So the crossover density depends on the layer: about 0.15 against
//! Winograd F(4x4) on 56x56 and 28x28, 0.2 against F(2x2) on 14x14 and 7x7 planes (where a
//! quarter of each tile's lanes falls outside the 7- or 14-wide rows), 0.3-0.4 against the
//! direct and GEMM kernels. Blocked weights (MSWU 4x4, 8x1 tiles) reach it at 50% density
//! (effective 0.19; measured 1.2-1.4x the dense kernels on most shapes).
//! Below [`TABLE_DENSITY`] the AVX2 table kernel, which measured as fast as `SpmmConv` at
//! 5-10% density, keeps the layer as before.
//!
//! An earlier version timed both kernels at compile time; on the shared 2-core host the
//! timings under load made the plan change between compiles, so the choice is a model.
//! Layers denser than [`MAX_DENSITY`] (every layer of a dense model) are never considered: a
//! dense model's plan is unchanged.

use crate::kernels::spmm::{self, Arrangement, SpmmConv, BLOCK_SIZES};
use crate::spec::{ConvGeom, Epilogue};

/// Weight density above which a layer keeps the dense kernels without looking further.
pub(super) const MAX_DENSITY: f32 = 0.75;
/// Weight density at or below which the AVX2 table kernel (`StreamConv`) keeps the layer.
pub(super) const TABLE_DENSITY: f32 = 0.12;
/// The sparse kernel's predicted time over the dense kernel's at or below which it is taken.
const MARGIN: f64 = 0.9;

/// `SpmmConv`'s rate in unblocked column entries (one multiply-add on every lane of its
/// tiles), in G/s. `bench_spmm` (1 thread, 2026-12-07, unstructured 20-30% density, blocks of
/// one channel) measured 19-30 on ResNet-18's 3x3 layers (stride 1 and 2, 56x56 to 7x7) and
/// 14-22 on 1x1 layers (MobileNetV2's 960 -> 160 on 7x7 22, 384 -> 64 on 14x14 21, 144 -> 24
/// on 56x56 16, ResNet-18's stride-2 downsample 14); the median of the layers.
const SPMM_RATE: f64 = 21.0;

/// The dense kernel's rate on `g`, in multiply-adds of the direct conv per ns (G/s), by the
/// form `DenseConv::new` gives the layer (the same `bench_spmm` run): Winograd F(4x4) 120
/// (ResNet-18's 3x3 layers on 56x56 and 28x28: 120, 124), F(2x2) and the phase-split stem 80
/// (14x14: 85, 7x7: 74), the direct, wide and GEMM kernels 50 (3x3 stride 2: 50, 54; 1x1 on
/// 7x7 to 56x56: 43-54).
fn dense_rate(g: &ConvGeom, winograd: bool) -> f64 {
    use crate::kernels::phase::PhaseConv;
    use crate::kernels::winograd::{Tile, Winograd};
    if winograd && PhaseConv::suits(g) {
        return 80.0;
    }
    match Winograd::choose(g).filter(|_| winograd) {
        Some(Tile::F4) => 120.0,
        Some(_) => 80.0,
        None => 50.0,
    }
}

/// The effective density at or below which the sparse kernel is predicted to take at most
/// [`MARGIN`] of the dense kernel's time on `g`: `MARGIN * SPMM_RATE / dense_rate`, over the
/// lanes the sparse kernel computes per output.
pub(super) fn crossover(g: &ConvGeom, winograd: bool) -> f64 {
    let wq = crate::kernels::planes::Planes::new(g).wq;
    let lanes = (g.h_out * wq).div_ceil(spmm::TILE) * spmm::TILE;
    let fill = (g.h_out * g.w_out) as f64 / lanes.max(1) as f64;
    MARGIN * SPMM_RATE / dense_rate(g, winograd) * fill
}

/// The dense form's time on `weights` over its time on dense weights: Winograd's
/// block-sparse products skip the blocks of four output channels x one input channel that
/// are zero over all taps (`Winograd::kept_for`, e.g. MSWU's pruned 4x4 tiles), so the
/// products' share of its time scales with the fraction they keep and the transforms' share
/// (F(4x4) about 0.3, F(2x2) about none) stays. `bench_block_sparse` (MSWU 4x4 tiles, time
/// over the dense products' at kept 0.46-0.50 / 0.26-0.31): F(4x4) 64 channels on 56x56 0.66
/// / 0.58, 128 on 28x28 0.51 / 0.38; F(2x2) 256 on 14x14 0.54 / 0.32, 512 on 7x7 0.50 /
/// 0.25. 1 for the other dense forms.
fn dense_kept(g: &ConvGeom, weights: &[f32], winograd: bool) -> f64 {
    use crate::kernels::phase::PhaseConv;
    use crate::kernels::winograd::{Tile, Winograd};
    if !winograd || PhaseConv::suits(g) {
        return 1.0;
    }
    let fixed = match Winograd::choose(g) {
        Some(Tile::F4) => 0.3,
        Some(_) => 0.0,
        None => return 1.0,
    };
    fixed + (1.0 - fixed) * Winograd::kept_for(g, weights)
}

/// What one column costs beyond its multiply-adds, in multiply-adds: its load, its table
/// words and the loop. With 2, `bench_spmm`'s cases order as measured: unstructured weights
/// at 30-50% cost about the same in blocks of 1 and 2 (measured 1.0-1.2x apart), blocks of 8
/// with mostly-zero entries do not look cheap, and 4x4 / 8x1 tiles go to blocks of 4 / 8.
const COLUMN_COST: usize = 2;

/// The arrangement of `weights` the sparse kernel would run fastest, and its effective
/// density: the block size whose columns cost least (a column costs [`COLUMN_COST`] plus one
/// multiply-add per channel of its block), with one-value tiles read as box sums when they
/// save work; the effective density is its cost over the cost of one column per non-zero
/// weight, times the density.
fn arranged(g: &ConvGeom, weights: &[f32], limit: f64) -> (Arrangement, f64) {
    let unify = spmm::best_unify(g, weights);
    let nnz = weights.iter().filter(|&&w| w != 0.0).count();
    let density = nnz as f64 / weights.len().max(1) as f64;
    let largest = BLOCK_SIZES[BLOCK_SIZES.len() - 1];
    if unify.is_none() {
        // Without box sums every non-zero weight is one entry and a column of a block of `b`
        // holds at most `b`, so no block size costs less than `nnz * (1 + COLUMN_COST / 8)`:
        // when even that is above the crossover, the layer stays dense without laying out
        // its columns (which dominated compile time on 50-70% dense layers).
        let bound =
            density * (1.0 + COLUMN_COST as f64 / largest as f64) / (1 + COLUMN_COST) as f64;
        if bound > limit {
            return (Arrangement { block: 1, unify }, bound);
        }
    }
    let sizes: Vec<usize> = BLOCK_SIZES
        .iter()
        .copied()
        .filter(|&b| b == 1 || g.cout_g() >= b)
        .collect();
    let mut best = (u64::MAX, 1);
    for (&b, s) in sizes.iter().zip(spmm::shapes_of(g, weights, unify, &sizes)) {
        let cost = (s.columns * (b + COLUMN_COST)) as u64;
        if cost < best.0 {
            best = (cost, b);
        }
    }
    let plain = (nnz * (1 + COLUMN_COST)) as f64;
    let eff = if plain > 0.0 {
        density * best.0 as f64 / plain
    } else {
        0.0
    };
    (
        Arrangement {
            block: best.1,
            unify,
        },
        eff,
    )
}

/// The sparse kernel for the conv when the cost model says it beats the dense kernels (see
/// the module docs). `residuals` is the number of fused residual inputs (0..=2).
pub(super) fn choose(
    g: &ConvGeom,
    weights: &[f32],
    density: f32,
    epi: &Epilogue,
    residuals: usize,
    threads: usize,
    winograd: bool,
) -> Option<SpmmConv> {
    if !spmm::available() || !spmm::supports(epi.act) || density > MAX_DENSITY {
        return None;
    }
    let limit = crossover(g, winograd) * dense_kept(g, weights, winograd);
    let (arr, eff) = arranged(g, weights, limit);
    (eff <= limit).then(|| SpmmConv::new(*g, weights, epi, residuals, arr, threads))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::spmm::tests::{geom, tiled, unstructured, TileMode};
    use crate::testutil::Rng;

    fn layer() -> ConvGeom {
        geom((32, 32, 1), (14, 14), (3, 3), [1, 1], [1, 1], [1; 4])
    }

    #[test]
    fn dense_layers_are_never_taken() {
        let g = layer();
        let mut rng = Rng(5);
        let w = unstructured(&mut rng, &g, 1.0);
        assert!(choose(&g, &w, 1.0, &Epilogue::default(), 0, 1, true).is_none());
        let w = unstructured(&mut rng, &g, 0.5);
        assert!(choose(&g, &w, 0.5, &Epilogue::default(), 0, 1, true).is_none());
    }

    #[test]
    fn blocked_half_density_and_sparse_layers_are_taken() {
        if !spmm::available() {
            return;
        }
        // Stride 2: the dense kernel is the direct one (no Winograd).
        let g = geom((64, 64, 1), (28, 28), (3, 3), [2, 2], [1, 1], [1; 4]);
        let mut rng = Rng(6);
        let w = tiled(&mut rng, &g, (4, 4), 0.5, TileMode::Free);
        assert!(choose(&g, &w, 0.5, &Epilogue::default(), 1, 1, true).is_some());
        let w = unstructured(&mut rng, &g, 0.2);
        assert!(choose(&g, &w, 0.2, &Epilogue::default(), 0, 1, true).is_some());
        // Deterministic: the same weights give the same arrangement.
        assert_eq!(arranged(&g, &w, 1.0).0, arranged(&g, &w, 1.0).0);
    }

    /// The shortcut for layers too dense to be taken agrees with the full pricing: it only
    /// fires where the cheapest block size is above the crossover anyway.
    #[test]
    fn the_density_bound_never_hides_a_cheaper_arrangement() {
        let g = geom((64, 64, 1), (8, 8), (3, 3), [1, 1], [1, 1], [1; 4]);
        let mut rng = Rng(9);
        for density in [0.1, 0.15, 0.3, 0.5, 0.66, 0.7] {
            let w = unstructured(&mut rng, &g, density);
            let limit = crossover(&g, true);
            let (_, eff) = arranged(&g, &w, limit);
            let sizes = [1, 2, 4, 8];
            let full = sizes
                .iter()
                .zip(spmm::shapes_of(&g, &w, None, &sizes))
                .map(|(&b, s)| s.columns * (b + COLUMN_COST))
                .min()
                .unwrap();
            let nnz = w.iter().filter(|&&x| x != 0.0).count();
            let exact =
                nnz as f64 / w.len() as f64 * full as f64 / (nnz * (1 + COLUMN_COST)) as f64;
            assert!(
                eff <= exact + 1e-12,
                "{density}: bound {eff} above the price {exact}"
            );
            assert_eq!(eff > limit, exact > limit, "{density}: {eff} vs {exact}");
        }
    }

    /// The crossover is lower against a faster dense form and on planes whose rows leave
    /// tile lanes idle.
    #[test]
    fn the_crossover_prices_the_dense_form_and_the_idle_lanes() {
        let c = |ci, co, hw, k, s| {
            let g = geom((ci, co, 1), (hw, hw), (k, k), [s, s], [1, 1], [k / 2; 4]);
            crossover(&g, true)
        };
        // Winograd F(4x4) on 56x56 against the direct kernel at stride 2.
        assert!(c(64, 64, 56, 3, 1) < c(64, 128, 56, 3, 2));
        // Without Winograd, the same layer gets the direct kernel's crossover.
        let g = geom((64, 64, 1), (56, 56), (3, 3), [1, 1], [1, 1], [1; 4]);
        assert!(crossover(&g, false) > crossover(&g, true));
        // 1x1 on 7x7: 49 of the tile's 64 lanes are outputs; on 56x56 all are.
        assert!(c(960, 160, 7, 1, 1) < c(144, 24, 56, 1, 1));
        assert!((c(144, 24, 56, 1, 1) - MARGIN * SPMM_RATE / 50.0).abs() < 1e-9);
    }

    /// Pruned 4x4 tiles lower the crossover on layers Winograd takes (its block-sparse
    /// products skip them), and only there; dense weights leave it as it was.
    #[test]
    fn pruned_tiles_speed_up_the_winograd_form() {
        let g = geom((64, 64, 1), (56, 56), (3, 3), [1, 1], [1, 1], [1; 4]);
        let mut rng = Rng(10);
        let dense = unstructured(&mut rng, &g, 1.0);
        assert_eq!(dense_kept(&g, &dense, true), 1.0);
        let w = tiled(&mut rng, &g, (4, 4), 0.5, TileMode::Free);
        let k = dense_kept(&g, &w, true);
        if crate::kernels::par::has_avx2_fma() {
            assert!(k > 0.3 && k < 0.8, "{k}");
        }
        assert_eq!(dense_kept(&g, &w, false), 1.0);
        let s2 = geom((64, 64, 1), (56, 56), (3, 3), [2, 2], [1, 1], [1; 4]);
        let w2 = tiled(&mut rng, &s2, (4, 4), 0.5, TileMode::Free);
        assert_eq!(dense_kept(&s2, &w2, true), 1.0);
    }

    #[test]
    fn arrangement_shares_loads_over_weight_tiles() {
        let g = geom((64, 64, 1), (8, 8), (3, 3), [1, 1], [1, 1], [1; 4]);
        let mut rng = Rng(8);
        let w = tiled(&mut rng, &g, (4, 4), 0.5, TileMode::Free);
        assert_eq!(arranged(&g, &w, 1.0).0.block, 4);
        let w = tiled(&mut rng, &g, (8, 1), 0.5, TileMode::Free);
        assert_eq!(arranged(&g, &w, 1.0).0.block, 8);
        let w = unstructured(&mut rng, &g, 0.1);
        assert_eq!(arranged(&g, &w, 1.0).0.block, 1);
        assert_eq!(arranged(&g, &w, 1.0).0.unify, None);
    }
}
