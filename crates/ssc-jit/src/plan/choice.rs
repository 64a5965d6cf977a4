//! The per-layer choice between the dense conv kernels, the AVX2 table kernel
//! (`StreamConv`) and the AVX-512 sparse kernel ([`SpmmConv`]), from a cost model of both
//! whose rates come from the committed calibration table `plan::calibration` (written by
//! `scripts/calibrate_jit.py` from the ignored test `calibrate_jit` below).
//!
//! The model: the sparse kernel's time is proportional to its column work over the lanes it
//! computes (a column costs [`COLUMN_COST`] plus one multiply-add per channel of its block, on
//! every lane of the 64-position tiles that cover the output at the layout's row pitch).
//! Dividing the chosen arrangement's work by the work of the same weights unblocked gives an
//! *effective density*: the density unstructured weights would need to cost as much. The
//! sparse kernel is taken when its predicted time, at [`SPMM_RATE`] multiply-adds per second
//! per lane, is at most [`MARGIN`] times the dense kernel's, at the rate of the dense form the
//! layer would get ([`dense_rate`]: Winograd F(4x4) and F(2x2) count their saved
//! multiplications). So the crossover density depends on the layer: with the table of
//! 2026-12-07 about 0.16 against Winograd F(4x4) on 56x56 and 28x28, 0.22 against F(2x2) on
//! 14x14 and 7x7 planes (where a quarter of each tile's lanes falls outside the 7- or 14-wide
//! rows), 0.3-0.36 against the direct and GEMM kernels. Blocked weights (MSWU 4x4, 8x1 tiles)
//! reach it at 50% density (effective 0.19; measured 1.2-1.4x the dense kernels on most
//! shapes).
//! Below [`TABLE_DENSITY`] the AVX2 table kernel, which measured as fast as `SpmmConv` at
//! 5-10% density, keeps the layer as before.
//!
//! An earlier version timed both kernels at compile time; on the shared 2-core host the
//! timings under load made the plan change between compiles, so the choice is a model.
//! Layers denser than [`MAX_DENSITY`] (every layer of a dense model) are never considered: a
//! dense model's plan is unchanged.

use super::calibration::{COLUMN_COST, DENSE_RATE_DIRECT, DENSE_RATE_F2, DENSE_RATE_F4, SPMM_RATE};
use crate::kernels::spmm::{self, Arrangement, SpmmConv, BLOCK_SIZES};
use crate::spec::{ConvGeom, Epilogue};

#[cfg(target_arch = "x86_64")]
pub(super) mod linear;

/// Weight density above which a layer keeps the dense kernels without looking further.
pub(super) const MAX_DENSITY: f32 = 0.75;
/// Weight density at or below which the AVX2 table kernel (`StreamConv`) keeps the layer.
pub(super) const TABLE_DENSITY: f32 = 0.12;
/// The sparse kernel's predicted time over the dense kernel's at or below which it is taken.
const MARGIN: f64 = 0.9;

/// The dense form `DenseConv::new` gives a layer, as far as its rate goes (the calibration
/// table has one rate per form).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DenseForm {
    /// Winograd F(4x4).
    F4,
    /// Winograd F(2x2) or F(3x3, 4x4), and the phase-split stem.
    F2,
    /// The direct, wide and GEMM kernels.
    Direct,
}

impl DenseForm {
    /// The form `DenseConv::new` picks for `g` (`winograd`: Winograd forms allowed).
    pub(crate) fn of(g: &ConvGeom, winograd: bool) -> DenseForm {
        use crate::kernels::phase::PhaseConv;
        use crate::kernels::winograd::{Tile, Winograd};
        if winograd && PhaseConv::suits(g) {
            return DenseForm::F2;
        }
        match Winograd::choose(g).filter(|_| winograd) {
            Some(Tile::F4) => DenseForm::F4,
            Some(_) => DenseForm::F2,
            None => DenseForm::Direct,
        }
    }

    /// The form's name in `calibrate_jit`'s output and the calibration script.
    #[cfg(test)]
    fn key(self) -> &'static str {
        match self {
            DenseForm::F4 => "f4",
            DenseForm::F2 => "f2",
            DenseForm::Direct => "direct",
        }
    }
}

/// The dense kernel's rate on `g`, in multiply-adds of the direct conv per ns (G/s), from the
/// calibration table (`plan::calibration`) by the form the layer would get.
fn dense_rate(g: &ConvGeom, winograd: bool) -> f64 {
    match DenseForm::of(g, winograd) {
        DenseForm::F4 => DENSE_RATE_F4,
        DenseForm::F2 => DENSE_RATE_F2,
        DenseForm::Direct => DENSE_RATE_DIRECT,
    }
}

/// The lanes `SpmmConv` computes per output channel of `g`: the 64-position tiles that cover
/// the output at the input layout's row pitch.
pub(crate) fn spmm_lanes(g: &ConvGeom) -> usize {
    let wq = crate::kernels::planes::Planes::new(g).wq;
    (g.h_out * wq).div_ceil(spmm::TILE) * spmm::TILE
}

/// The effective density at or below which the sparse kernel is predicted to take at most
/// [`MARGIN`] of the dense kernel's time on `g`: `MARGIN * SPMM_RATE / dense_rate`, over the
/// lanes the sparse kernel computes per output.
pub(super) fn crossover(g: &ConvGeom, winograd: bool) -> f64 {
    let lanes = spmm_lanes(g);
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
    use crate::kernels::winograd::Winograd;
    let fixed = match DenseForm::of(g, winograd) {
        DenseForm::F4 => 0.3,
        DenseForm::F2 if !PhaseConv::suits(g) => 0.0,
        _ => return 1.0,
    };
    fixed + (1.0 - fixed) * Winograd::kept_for(g, weights)
}

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
    use crate::kernels::spmm::tests::{check, geom, tiled, unstructured, TileMode};
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

    /// Density exactly at the crossover: the densest weights (non-zeros added in one fixed
    /// random order) the model still gives to `SpmmConv`, and one non-zero more. The first are
    /// taken and computed exactly (against the reference, 1 and 2 threads), the second are
    /// not. Taking is monotone in the non-zero count (a non-zero only adds columns), so the
    /// boundary is found by bisection.
    #[test]
    fn density_exactly_at_the_crossover() {
        if !spmm::available() {
            return;
        }
        // Stride 2 (the direct kernel's form) and stride 1 (Winograd's), odd plane sizes.
        for g in [
            geom((40, 24, 1), (15, 13), (3, 3), [2, 2], [1, 1], [1; 4]),
            geom((24, 32, 1), (17, 17), (3, 3), [1, 1], [1, 1], [1; 4]),
        ] {
            let mut rng = Rng(11);
            let total = g.c_out * g.cin_g() * g.kh * g.kw;
            let mut order: Vec<usize> = (0..total).collect();
            for i in (1..total).rev() {
                order.swap(i, rng.below(i + 1));
            }
            let vals: Vec<f32> = (0..total).map(|_| 0.25 + 0.75 * rng.unit().abs()).collect();
            let weights = |n: usize| {
                let mut w = vec![0f32; total];
                for &i in &order[..n] {
                    w[i] = vals[i];
                }
                w
            };
            let epi = Epilogue::default();
            let taken = |n: usize| {
                let density = n as f32 / total as f32;
                choose(&g, &weights(n), density, &epi, 0, 1, true).is_some()
            };
            let (mut lo, mut hi) = (1, total);
            assert!(taken(lo) && !taken(hi), "{g:?}");
            while hi - lo > 1 {
                let mid = (lo + hi) / 2;
                if taken(mid) {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            assert_eq!(hi, lo + 1);
            // The boundary is a real mid-range density, not an end of the walk.
            let at = lo as f32 / total as f32;
            assert!((0.1..MAX_DENSITY).contains(&at), "{g:?}: crossover at {at}");
            let w = weights(lo);
            let limit = crossover(&g, true) * dense_kept(&g, &w, true);
            let (arr, eff) = arranged(&g, &w, limit);
            assert!(eff <= limit, "{g:?}: {eff} > {limit}");
            for threads in [1, 2] {
                check(&mut rng, &g, &w, &epi, 0, arr, threads);
            }
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
        assert!((c(144, 24, 56, 1, 1) - MARGIN * SPMM_RATE / DENSE_RATE_DIRECT).abs() < 1e-9);
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

    /// The calibration run behind `plan::calibration` (`scripts/calibrate_jit.py` runs it and
    /// writes the table): on ResNet-18's and MobileNetV2's layer shapes, 1 thread, the dense
    /// kernel each layer gets (`CAL dense FORM LAYER RATE`, direct multiply-adds per ns) and
    /// `SpmmConv` on unstructured weights at 20% and 30% density in blocks of one channel
    /// (`CAL spmm LAYER DENSITY RATE`, column entries per ns over `spmm_lanes`).
    #[test]
    #[ignore]
    fn calibrate_jit() {
        use crate::kernels::dense::DenseConv;
        use crate::spec::Activation;
        use crate::testutil::interleaved_ms;
        if !spmm::available() {
            return;
        }
        let c = |ci, co, hw, k, s| {
            let p = k / 2;
            geom((ci, co, 1), (hw, hw), (k, k), [s, s], [1, 1], [p; 4])
        };
        let layers = [
            ("r18-l1-64-3x3-56", c(64, 64, 56, 3, 1)),
            ("r18-l2-128-3x3-28", c(128, 128, 28, 3, 1)),
            ("r18-l3-256-3x3-14", c(256, 256, 14, 3, 1)),
            ("r18-l4-512-3x3-7", c(512, 512, 7, 3, 1)),
            ("r18-l2.0-64-128-s2", c(64, 128, 56, 3, 2)),
            ("r18-l4.0-256-512-s2", c(256, 512, 14, 3, 2)),
            ("r18-ds-128-256-1x1-s2", c(128, 256, 28, 1, 2)),
            ("mb2-1x1-144-24-56", c(144, 24, 56, 1, 1)),
            ("mb2-1x1-32-192-28", c(32, 192, 28, 1, 1)),
            ("mb2-1x1-384-64-14", c(384, 64, 14, 1, 1)),
            ("mb2-1x1-960-320-7", c(960, 320, 7, 1, 1)),
        ];
        for (name, g) in layers {
            let mut rng = Rng(1);
            let x: Vec<f32> = (0..g.c_in * g.h * g.w).map(|_| rng.unit()).collect();
            let mut out = vec![0f32; g.c_out * g.h_out * g.w_out];
            let e = Epilogue {
                bias: Some(vec![0.1; g.c_out]),
                residual: false,
                act: Activation::Relu,
            };
            let macs = (g.c_out * g.cin_g() * g.kh * g.kw * g.h_out * g.w_out) as f64;
            let dense = DenseConv::new(g, unstructured(&mut rng, &g, 1.0), e.clone(), 1, true);
            let mut ds = vec![0f32; dense.scratch_len()];
            let [td] = interleaved_ms::<1>(9, |_| dense.run(&x, None, None, &mut out, &mut ds));
            let form = DenseForm::of(&g, true).key();
            println!("CAL dense {form} {name} {:.2}", macs / td / 1e6);
            for density in [0.2, 0.3] {
                let w = unstructured(&mut rng, &g, density);
                let nnz = w.iter().filter(|&&v| v != 0.0).count();
                let arr = Arrangement {
                    block: 1,
                    unify: None,
                };
                let k = SpmmConv::new(g, &w, &e, 0, arr, 1);
                let mut s = vec![0f32; k.scratch_len()];
                let [t] = interleaved_ms::<1>(9, |_| k.run(&x, [None, None], &mut out, &mut s));
                let entries = (nnz * spmm_lanes(&g)) as f64;
                println!("CAL spmm {name} {density} {:.2}", entries / t / 1e6);
            }
        }
    }
}
