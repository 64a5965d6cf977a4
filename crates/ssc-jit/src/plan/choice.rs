//! The per-layer choice between the dense conv kernels, the AVX2 table kernel
//! (`StreamConv`) and the AVX-512 sparse kernel ([`SpmmConv`]), from a cost model of the
//! sparse kernel calibrated by `kernels::spmm::tests::bench::bench_spmm`.
//!
//! The model: the sparse kernel's time is proportional to its column work (a column costs
//! [`COLUMN_COST`] plus one multiply-add per channel of its block). Dividing the chosen
//! arrangement's work by the work of the same weights unblocked gives an *effective density*:
//! the density unstructured weights would need to cost as much. `bench_spmm` (Zen 4, every
//! ResNet-18 / MobileNetV2 layer shape, interleaved runs) puts unstructured weights at parity
//! with the dense kernels (Winograd, direct, GEMM) at 30% density (0.96-1.07x, one 0.70x at
//! 56x56 against Winograd F(4x4)); the sparse kernel is taken at an effective density of at
//! most [`CROSSOVER`] (a margin of 0.9 below parity). Blocked weights (MSWU 4x4, 8x1 tiles)
//! reach it at 50% density (effective 0.19; measured 1.2-1.4x the dense kernels).
//! Below [`TABLE_DENSITY`] the AVX2 table kernel, which measured faster than `SpmmConv` at
//! 5-10% density on most shapes, keeps the layer as before.
//!
//! An earlier version timed both kernels at compile time; on the shared 2-core host the
//! timings under load made the plan change between compiles, so the choice is a model.
//! Layers denser than [`MAX_DENSITY`] (every layer of a dense model) are never considered: a
//! dense model's plan is unchanged.

use crate::kernels::spmm::{self, Arrangement, SpmmConv, BLOCK_SIZES};
use crate::spec::{ConvGeom, Epilogue};

/// Weight density above which a layer keeps the dense kernels without looking further.
pub(super) const MAX_DENSITY: f32 = 0.75;
/// Effective density (see the module docs) at or below which `SpmmConv` is taken.
pub(super) const CROSSOVER: f64 = 0.27;
/// Weight density at or below which the AVX2 table kernel (`StreamConv`) keeps the layer.
pub(super) const TABLE_DENSITY: f32 = 0.12;

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
fn arranged(g: &ConvGeom, weights: &[f32]) -> (Arrangement, f64) {
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
        if bound > CROSSOVER {
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
) -> Option<SpmmConv> {
    if !spmm::available() || !spmm::supports(epi.act) || density > MAX_DENSITY {
        return None;
    }
    let (arr, eff) = arranged(g, weights);
    (eff <= CROSSOVER).then(|| SpmmConv::new(*g, weights, epi, residuals, arr, threads))
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
        assert!(choose(&g, &w, 1.0, &Epilogue::default(), 0, 1).is_none());
        let w = unstructured(&mut rng, &g, 0.5);
        assert!(choose(&g, &w, 0.5, &Epilogue::default(), 0, 1).is_none());
    }

    #[test]
    fn blocked_half_density_and_sparse_layers_are_taken() {
        if !spmm::available() {
            return;
        }
        let g = geom((64, 64, 1), (14, 14), (3, 3), [1, 1], [1, 1], [1; 4]);
        let mut rng = Rng(6);
        let w = tiled(&mut rng, &g, (4, 4), 0.5, TileMode::Free);
        assert!(choose(&g, &w, 0.5, &Epilogue::default(), 1, 1).is_some());
        let w = unstructured(&mut rng, &g, 0.2);
        assert!(choose(&g, &w, 0.2, &Epilogue::default(), 0, 1).is_some());
        // Deterministic: the same weights give the same arrangement.
        assert_eq!(arranged(&g, &w).0, arranged(&g, &w).0);
    }

    /// The shortcut for layers too dense to be taken agrees with the full pricing: it only
    /// fires where the cheapest block size is above the crossover anyway.
    #[test]
    fn the_density_bound_never_hides_a_cheaper_arrangement() {
        let g = geom((64, 64, 1), (8, 8), (3, 3), [1, 1], [1, 1], [1; 4]);
        let mut rng = Rng(9);
        for density in [0.3, 0.5, 0.66, 0.7] {
            let w = unstructured(&mut rng, &g, density);
            let (_, eff) = arranged(&g, &w);
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
            assert_eq!(
                eff > CROSSOVER,
                exact > CROSSOVER,
                "{density}: {eff} vs {exact}"
            );
        }
    }

    #[test]
    fn arrangement_shares_loads_over_weight_tiles() {
        let g = geom((64, 64, 1), (8, 8), (3, 3), [1, 1], [1, 1], [1; 4]);
        let mut rng = Rng(8);
        let w = tiled(&mut rng, &g, (4, 4), 0.5, TileMode::Free);
        assert_eq!(arranged(&g, &w).0.block, 4);
        let w = tiled(&mut rng, &g, (8, 1), 0.5, TileMode::Free);
        assert_eq!(arranged(&g, &w).0.block, 8);
        let w = unstructured(&mut rng, &g, 0.1);
        assert_eq!(arranged(&g, &w).0.block, 1);
        assert_eq!(arranged(&g, &w).0.unify, None);
    }
}
