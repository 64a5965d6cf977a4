//! The per-layer choice between the dense conv kernels and the AVX-512 sparse kernel
//! ([`SpmmConv`]): measured, on this host, at compile time, so no layer runs slower than the
//! dense kernel it would replace.
//!
//! Why a measurement and not a density threshold: the break-even density of the sparse
//! kernel against the dense one moves with the geometry (Winograd 3x3 layers at 56x56 run
//! ~3x the GFLOP/s of a 7x7-plane 1x1 GEMM, so the sparse kernel pays from ~60% density on
//! one and only below ~30% on the other) and with the weights' structure (blocks of output
//! channels sharing their inputs, one-value tiles). A layer whose weight density is at most
//! [`MAX_DENSITY`] gets both kernels built and timed on a synthetic input, one thread, the
//! best of [`REPS`] interleaved runs each; the sparse kernel is kept only when it beats the
//! dense one by [`MARGIN`]. Denser layers (every layer of a dense model) never reach the
//! measurement, so a dense model's plan is exactly what it was without this module.

use std::sync::OnceLock;
use std::time::Instant;

use crate::kernels::dense::DenseConv;
use crate::kernels::spmm::{self, Arrangement, SpmmConv, BLOCK_SIZES};
use crate::spec::{ConvGeom, Epilogue};

/// Weight density above which a layer keeps the dense kernels without a measurement (the
/// sparse kernel at 75% density does more work per non-zero weight than the dense kernels at
/// 100%: they run 2-3x its GFLOP/s of useful work).
pub(super) const MAX_DENSITY: f32 = 0.75;
/// Weight density at or below which the sparse kernel is taken without a measurement: it runs
/// at least ~25% of the dense kernels' dense-equivalent GFLOP/s on every ResNet/MobileNet layer
/// shape (`bench_spmm`), so at 12% it is ~2x faster; skipping the timing keeps compile times of
/// very sparse models low.
pub(super) const SURE_DENSITY: f32 = 0.12;
/// Timed runs per kernel (after one warm-up run each); the minimum counts.
const REPS: usize = 3;
/// The sparse kernel must take at most this fraction of the dense kernel's time.
const MARGIN: f64 = 0.9;

/// What one column costs beyond its multiply-adds, in multiply-adds: its load, its table
/// words and the loop. Fitted to `bench_spmm` (Zen 4, ResNet-18/MobileNetV2 layer shapes):
/// unstructured weights at 30-50% density run 1.15-1.25x faster in blocks of 2 than of 1,
/// which a per-column cost of 1 (a load) would not predict.
const COLUMN_COST: usize = 5;

/// The arrangement of `weights` the sparse kernel would run fastest: the block size whose
/// columns cost least (a column costs [`COLUMN_COST`] plus one multiply-add per channel of
/// its block), with one-value tiles read as box sums when they save work.
pub(super) fn arrangement(g: &ConvGeom, weights: &[f32]) -> Arrangement {
    let unify = spmm::best_unify(g, weights);
    let mut best = (u64::MAX, 1);
    for &b in &BLOCK_SIZES {
        if b > 1 && g.cout_g() < b {
            continue;
        }
        let s = spmm::shape_of(g, weights, Arrangement { block: b, unify });
        let cost = (s.columns * (b + COLUMN_COST)) as u64;
        if cost < best.0 {
            best = (cost, b);
        }
    }
    Arrangement {
        block: best.1,
        unify,
    }
}

/// The sparse kernel for the conv, or `None` when the dense kernel `dense()` builds measures
/// faster (see the module docs); the dense kernel, when it was built, comes back for the
/// caller to use. `residuals` is the number of fused residual inputs (0..=2).
pub(super) fn choose(
    g: &ConvGeom,
    weights: &[f32],
    density: f32,
    epi: &Epilogue,
    residuals: usize,
    threads: usize,
    dense: impl FnOnce() -> DenseConv,
) -> Result<SpmmConv, Option<DenseConv>> {
    if !spmm::available() || !spmm::supports(epi.act) || density > MAX_DENSITY {
        return Err(None);
    }
    let arr = arrangement(g, weights);
    let k = SpmmConv::new(*g, weights, epi, residuals, arr, threads);
    if density <= SURE_DENSITY {
        return Ok(k);
    }
    let d = dense();
    let (td, ts) = one_thread(|| time_both(g, &d, &k, residuals));
    if ts <= MARGIN * td {
        Ok(k)
    } else {
        Err(Some(d))
    }
}

/// Best-of-[`REPS`] milliseconds of the dense and the sparse kernel on one image.
fn time_both(g: &ConvGeom, dense: &DenseConv, k: &SpmmConv, residuals: usize) -> (f64, f64) {
    let in_len = g.c_in * g.h * g.w;
    let out_len = g.c_out * g.h_out * g.w_out;
    // A deterministic, non-constant input (values in [-1, 1)).
    let x: Vec<f32> = (0..in_len)
        .map(|i| ((i.wrapping_mul(2_654_435_761) >> 7) % 2001) as f32 / 1000.0 - 1.0)
        .collect();
    let r = vec![0.5f32; if residuals > 0 { out_len } else { 0 }];
    let res = |n: usize| (residuals > n).then_some(&r[..]);
    let mut y = vec![0f32; out_len];
    let mut scratch = vec![0f32; dense.scratch_len().max(k.scratch_len())];
    let (mut td, mut ts) = (f64::INFINITY, f64::INFINITY);
    for rep in 0..=REPS {
        let t = Instant::now();
        dense.run(&x, res(0), res(1), &mut y, &mut scratch);
        let d = t.elapsed().as_secs_f64() * 1e3;
        let t = Instant::now();
        k.run(&x, [res(0), res(1)], &mut y, &mut scratch);
        let s = t.elapsed().as_secs_f64() * 1e3;
        if rep > 0 {
            td = td.min(d);
            ts = ts.min(s);
        }
    }
    (td, ts)
}

/// Runs `f` on a one-thread rayon pool (built once per process), so the kernels' timings do
/// not depend on the pool the plan is built in or on what else that pool runs.
fn one_thread<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    match POOL.get_or_init(|| rayon::ThreadPoolBuilder::new().num_threads(1).build().ok()) {
        Some(p) => p.install(f),
        None => f(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::spmm::tests::{geom, tiled, unstructured, TileMode};
    use crate::testutil::Rng;

    fn layer() -> ConvGeom {
        geom((32, 32, 1), (14, 14), (3, 3), [1, 1], [1, 1], [1; 4])
    }

    fn no_dense() -> DenseConv {
        panic!("the dense kernel must not be built (no measurement)")
    }

    #[test]
    fn dense_layers_are_never_measured() {
        let g = layer();
        let mut rng = Rng(5);
        let w = unstructured(&mut rng, &g, 1.0);
        let r = choose(&g, &w, 1.0, &Epilogue::default(), 0, 1, no_dense);
        assert!(matches!(r, Err(None)));
        // Just above the bound: still no measurement.
        let r = choose(
            &g,
            &w,
            MAX_DENSITY + 1e-3,
            &Epilogue::default(),
            0,
            1,
            no_dense,
        );
        assert!(matches!(r, Err(None)));
    }

    #[test]
    fn very_sparse_layers_take_the_sparse_kernel_without_timing() {
        let g = layer();
        let mut rng = Rng(6);
        let w = unstructured(&mut rng, &g, 0.05);
        let r = choose(&g, &w, SURE_DENSITY, &Epilogue::default(), 0, 1, no_dense);
        assert_eq!(r.is_ok(), spmm::available());
    }

    #[test]
    fn layers_in_between_are_measured_and_either_kernel_comes_back() {
        if !spmm::available() {
            return;
        }
        let g = layer();
        let mut rng = Rng(7);
        let w = unstructured(&mut rng, &g, 0.5);
        let mut built = false;
        let r = choose(&g, &w, 0.5, &Epilogue::default(), 1, 1, || {
            built = true;
            DenseConv::new(g, w.clone(), Epilogue::default(), 1, true)
        });
        assert!(built);
        assert!(matches!(r, Ok(_) | Err(Some(_))));
    }

    #[test]
    fn arrangement_shares_loads_over_weight_tiles() {
        let g = geom((64, 64, 1), (8, 8), (3, 3), [1, 1], [1, 1], [1; 4]);
        let mut rng = Rng(8);
        let w = tiled(&mut rng, &g, (4, 4), 0.5, TileMode::Free);
        assert_eq!(arrangement(&g, &w).block, 4);
        let w = tiled(&mut rng, &g, (8, 1), 0.5, TileMode::Free);
        assert_eq!(arrangement(&g, &w).block, 8);
        let w = unstructured(&mut rng, &g, 0.1);
        assert_eq!(arrangement(&g, &w).block, 1);
        assert_eq!(arrangement(&g, &w).unify, None);
    }
}
