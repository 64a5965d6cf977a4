//! Tests of `SpmmConv` against the reference conv: random geometries (odd sizes, tails,
//! strides, pads, dilations, groups), every block size, one-value tiles read as box sums and
//! their near misses, 1 and 2 threads, NaN-filled scratch and outputs.

use super::*;
use crate::spec::{Activation, ConvGeom, Epilogue};
use crate::testutil::{in_pool, reference_conv, Rng};

/// How a test fills one tile of weights.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum TileMode {
    /// Random values.
    Free,
    /// One magnitude per tile, random signs (MSWU sign-kept unification).
    SignKept,
    /// One signed value per tile.
    OneValue,
}

/// Weights of `g` with `density` of them non-zero, uniform in [-1, 1).
pub(crate) fn unstructured(rng: &mut Rng, g: &ConvGeom, density: f64) -> Vec<f32> {
    let n = g.c_out * g.cin_g() * g.kh * g.kw;
    (0..n)
        .map(|_| {
            if (rng.next() % 10_000) as f64 >= density * 10_000.0 {
                0.0
            } else {
                rng.unit()
            }
        })
        .collect()
}

/// Weights of `g` cut into `(bo, bi)` tiles over all taps (per group): a `pruned` fraction of
/// the tiles zero, the others filled by `mode` (`OneValue` on every other kept tile, the rest
/// free: a quota).
pub(crate) fn tiled(
    rng: &mut Rng,
    g: &ConvGeom,
    (bo, bi): (usize, usize),
    pruned: f64,
    mode: TileMode,
) -> Vec<f32> {
    let (cin_g, cout_g, taps) = (g.cin_g(), g.cout_g(), g.kh * g.kw);
    let mut w = vec![0f32; g.c_out * cin_g * taps];
    let mut kept = 0;
    for oc0 in (0..g.c_out).step_by(bo) {
        for i0 in (0..cin_g).step_by(bi) {
            if ((rng.next() % 1000) as f64) < pruned * 1000.0 {
                continue;
            }
            kept += 1;
            let (mag, val) = (0.25 + rng.unit().abs(), rng.unit());
            let one = mode == TileMode::OneValue && kept % 2 == 0;
            for oc in oc0..(oc0 + bo).min(oc0 / cout_g * cout_g + cout_g) {
                for i in i0..(i0 + bi).min(cin_g) {
                    for t in 0..taps {
                        w[(oc * cin_g + i) * taps + t] = match mode {
                            _ if one => val,
                            TileMode::SignKept => {
                                if rng.below(2) == 0 {
                                    mag
                                } else {
                                    -mag
                                }
                            }
                            _ => rng.unit(),
                        };
                    }
                }
            }
        }
    }
    w
}

pub(crate) fn geom(
    (c_in, c_out, group): (usize, usize, usize),
    (h, w): (usize, usize),
    (kh, kw): (usize, usize),
    stride: [usize; 2],
    dilation: [usize; 2],
    pads: [usize; 4],
) -> ConvGeom {
    let out = |n: usize, p0: usize, p1: usize, k: usize, s: usize, d: usize| {
        (n + p0 + p1 - ((k - 1) * d + 1)) / s + 1
    };
    ConvGeom {
        c_in,
        c_out,
        group,
        h,
        w,
        kh,
        kw,
        stride,
        dilation,
        pads,
        h_out: out(h, pads[0], pads[2], kh, stride[0], dilation[0]),
        w_out: out(w, pads[1], pads[3], kw, stride[1], dilation[1]),
    }
}

/// Builds the kernel for `arr`, runs it on `threads` threads with NaN-filled scratch and
/// output, and compares with the reference conv; returns the kernel.
pub(crate) fn check(
    rng: &mut Rng,
    g: &ConvGeom,
    w: &[f32],
    epi: &Epilogue,
    residuals: usize,
    arr: Arrangement,
    threads: usize,
) -> SpmmConv {
    let x: Vec<f32> = (0..g.c_in * g.h * g.w).map(|_| rng.unit()).collect();
    let n_out = g.c_out * g.h_out * g.w_out;
    let res: Vec<Vec<f32>> = (0..residuals)
        .map(|_| (0..n_out).map(|_| rng.unit()).collect())
        .collect();
    let epi = Epilogue {
        residual: residuals > 0,
        ..epi.clone()
    };
    let mut k = SpmmConv::new(*g, w, &epi, residuals, arr, threads);
    if rng.below(2) == 0 {
        // Small chunks of input channels: partial sums between chunks.
        k.chunk(1 + rng.below(4));
    }
    let mut out = vec![f32::NAN; n_out];
    let mut scratch = vec![f32::NAN; k.scratch_len()];
    let r = [res.first().map(|v| &v[..]), res.get(1).map(|v| &v[..])];
    in_pool(threads, || k.run(&x, r, &mut out, &mut scratch));
    let want = reference_conv(g, &x, w, &epi, r);
    // Each output sums up to kh*kw*cin_g + 3 terms of |x*w| <= 1.5 in another order than the
    // reference's f64 (box sums add inputs before one multiply); 1e-5 of the largest output
    // before the activation bounds that rounding for these sizes with room (errors are
    // random-signed, ~sqrt(n)).
    let linear = Epilogue {
        act: Activation::None,
        ..epi.clone()
    };
    let pre = reference_conv(g, &x, w, &linear, r);
    let scale = pre.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-30);
    for (i, (&a, &b)) in out.iter().zip(&want).enumerate() {
        assert!(
            (a as f64 - b).abs() <= 1e-5 * scale,
            "{g:?} {arr:?} {epi:?} {threads} threads: output {i} is {a}, want {b} (scale {scale})"
        );
    }
    k
}

fn act(rng: &mut Rng) -> Activation {
    rng.pick(&[
        Activation::None,
        Activation::Relu,
        Activation::Clip(-0.5, 0.75),
        Activation::LeakyRelu(0.1),
    ])
}

fn epi(rng: &mut Rng, c_out: usize) -> Epilogue {
    Epilogue {
        bias: (rng.below(4) > 0).then(|| (0..c_out).map(|_| rng.unit()).collect()),
        residual: false,
        act: act(rng),
    }
}

#[test]
fn random_geometries_every_block_size() {
    if !available() {
        return;
    }
    let mut rng = Rng(0x5eed_0001);
    for case in 0..120 {
        let k = rng.pick(&[1, 1, 2, 3, 3, 5, 7]);
        let kw = if rng.below(4) == 0 {
            rng.pick(&[1, 3])
        } else {
            k
        };
        let group = rng.pick(&[1, 1, 1, 2, 3]);
        let c_in = group * rng.pick(&[1, 2, 3, 5, 8, 13]);
        let c_out = group * rng.pick(&[1, 2, 4, 7, 9, 16]);
        let stride = [rng.pick(&[1, 1, 2, 3]), rng.pick(&[1, 1, 2])];
        let dilation = [rng.pick(&[1, 1, 2]), rng.pick(&[1, 1, 2])];
        let pads = std::array::from_fn(|_| rng.below(k / 2 + 2));
        let span = [(k - 1) * dilation[0] + 1, (kw - 1) * dilation[1] + 1];
        let h = span[0].max(1) + rng.below(20);
        let w = span[1].max(1) + rng.below(70);
        let g = geom(
            (c_in, c_out, group),
            (h, w),
            (k, kw),
            stride,
            dilation,
            pads,
        );
        let density = rng.pick(&[0.0, 0.05, 0.3, 0.6, 1.0]);
        let wts = unstructured(&mut rng, &g, density);
        let arr = Arrangement {
            block: rng.pick(&BLOCK_SIZES),
            unify: None,
        };
        let e = epi(&mut rng, c_out);
        let residuals = rng.below(3);
        let threads = 1 + case % 2;
        check(&mut rng, &g, &wts, &e, residuals, arr, threads);
    }
}

#[test]
fn pointwise_in_place_with_tails() {
    if !available() {
        return;
    }
    let mut rng = Rng(0x5eed_0002);
    // 1x1 stride-1 unpadded convs read the input in place: plane sizes around the 64-position
    // tile (the last tile's loads are masked), a tiny one, and planes of two whole tiles and
    // of a tile pair plus a masked tile (blocks of one channel run unmasked pairs).
    for (hw, c_in, c_out) in [
        ((7, 9), 5, 3),
        ((16, 8), 8, 3),
        ((9, 15), 6, 5),
        ((8, 8), 16, 16),
        ((5, 13), 33, 17),
        ((1, 1), 4, 2),
    ] {
        let g = geom((c_in, c_out, 1), hw, (1, 1), [1, 1], [1, 1], [0; 4]);
        for block in BLOCK_SIZES {
            for threads in [1, 2] {
                let wts = unstructured(&mut rng, &g, 0.4);
                let e = epi(&mut rng, c_out);
                let arr = Arrangement { block, unify: None };
                let k = check(&mut rng, &g, &wts, &e, 1, arr, threads);
                assert!(k.direct && k.pad_len == 0);
            }
        }
    }
}

/// A k x k layer whose output fits one tile runs its input channels in one chunk (however
/// many: the deep 7x7 layers), and a plane one position past the tile, or a 1x1 layer, keeps
/// the L1 chunks; each computes the reference (`check` also re-chunks half of its runs).
#[test]
fn single_tile_kxk_layers_are_not_chunked() {
    if !available() {
        return;
    }
    let mut rng = Rng(0x5eed_0014);
    // (c_in, c_out), input plane, kernel, stride, whether one chunk is expected.
    for ((c_in, c_out), hw, k, s, one) in [
        ((300, 40), (7, 7), 3, 1, true),
        ((257, 33), (14, 13), 3, 2, true),
        ((200, 24), (6, 6), 5, 1, true),
        // 7 rows of pitch 10 = 70 positions: two tiles.
        ((300, 40), (7, 8), 3, 1, false),
        ((600, 40), (7, 7), 1, 1, false),
    ] {
        let p = k / 2;
        let g = geom((c_in, c_out, 1), hw, (k, k), [s, s], [1, 1], [p; 4]);
        let wts = unstructured(&mut rng, &g, 0.1);
        let e = epi(&mut rng, c_out);
        for block in [1, 4] {
            let arr = Arrangement { block, unify: None };
            let kern = SpmmConv::new(g, &wts, &e, 0, arr, 1);
            assert_eq!(
                kern.n_chunks == 1,
                one,
                "{g:?} b{block}: {} chunks",
                kern.n_chunks
            );
            for threads in [1, 2] {
                check(&mut rng, &g, &wts, &e, 1, arr, threads);
            }
        }
    }
}

#[test]
fn tiles_pruned_sign_kept_and_one_value() {
    if !available() {
        return;
    }
    let mut rng = Rng(0x5eed_0003);
    let shapes = [(4, 4), (8, 1), (1, 8), (16, 1), (2, 2)];
    for case in 0..40 {
        let (bo, bi) = rng.pick(&shapes);
        let k = rng.pick(&[1, 3]);
        let stride = rng.pick(&[1, 2]);
        let c_in = bi * rng.pick(&[1, 2, 3]) * 4;
        let c_out = bo * rng.pick(&[1, 2, 3]);
        let pad = if k == 3 { 1 } else { 0 };
        let hw = (5 + rng.below(12), 5 + rng.below(30));
        let g = geom((c_in, c_out, 1), hw, (k, k), [stride; 2], [1, 1], [pad; 4]);
        let mode = rng.pick(&[TileMode::Free, TileMode::SignKept, TileMode::OneValue]);
        let pruned = rng.pick(&[0.0, 0.5, 0.75]);
        let wts = tiled(&mut rng, &g, (bo, bi), pruned, mode);
        let unify = best_unify(&g, &wts);
        let arr = Arrangement {
            block: rng.pick(&BLOCK_SIZES),
            unify,
        };
        let e = epi(&mut rng, c_out);
        let residuals = rng.below(2);
        let kern = check(&mut rng, &g, &wts, &e, residuals, arr, 1 + case % 2);
        if mode == TileMode::OneValue && unify.is_some() {
            assert!(
                !kern.sums.is_empty(),
                "{g:?}: one-value tiles without box sums"
            );
        }
    }
}

#[test]
fn one_value_tiles_are_found_and_near_misses_are_not() {
    if !available() {
        return;
    }
    let mut rng = Rng(0x5eed_0004);
    let g = geom((16, 8, 1), (9, 11), (3, 3), [1, 1], [1, 1], [1; 4]);
    // Every kept tile one-valued: tile (ob, ib) of 4x4 channels over 9 taps.
    let mut w = vec![0f32; 8 * 16 * 9];
    let value = |ob: usize, ib: usize| 0.1 * (1 + ob * 4 + ib) as f32;
    for ob in 0..2 {
        for ib in 0..4 {
            if (ob + ib) % 3 == 0 {
                continue; // pruned
            }
            let v = value(ob, ib);
            for o in 0..4 {
                for i in 0..4 {
                    for t in 0..9 {
                        w[((ob * 4 + o) * 16 + ib * 4 + i) * 9 + t] = v;
                    }
                }
            }
        }
    }
    assert_eq!(best_unify(&g, &w), Some((4, 4)));
    let tiles = unified_tiles(&g, &w, (4, 4));
    assert_eq!(tiles.iter().filter(|t| t.is_some()).count(), 5);
    // One unequal weight: that tile is no longer one-valued, the others still are.
    let mut near = w.clone();
    near[((4 + 1) * 16 + 4 + 2) * 9 + 5] = 0.7; // tile (1, 1)
    let tiles = unified_tiles(&g, &near, (4, 4));
    assert_eq!(tiles[4 + 1], None);
    assert_eq!(tiles.iter().filter(|t| t.is_some()).count(), 4);
    // One stray non-zero in a pruned tile (0, 0).
    let mut stray = w.clone();
    stray[(2 * 16 + 1) * 9 + 4] = -0.3;
    let e = epi(&mut rng, 8);
    for wts in [&w, &near, &stray] {
        for block in BLOCK_SIZES {
            let arr = Arrangement {
                block,
                unify: best_unify(&g, wts),
            };
            for threads in [1, 2] {
                check(&mut rng, &g, wts, &e, 1, arr, threads);
            }
        }
    }
}

/// `shapes_of` counts the columns `blocks_of` lays out, for every block size, unstructured,
/// tiled and unified weights, grouped and strided layers.
#[test]
fn shapes_count_the_columns_the_kernel_lays_out() {
    let mut rng = Rng(11);
    for g in [
        geom((16, 24, 1), (7, 7), (3, 3), [1, 1], [1, 1], [1; 4]),
        geom((16, 16, 2), (9, 9), (3, 3), [2, 2], [1, 1], [1; 4]),
        geom((32, 8, 1), (5, 5), (1, 1), [1, 1], [1, 1], [0; 4]),
    ] {
        let ws = [
            unstructured(&mut rng, &g, 0.4),
            tiled(&mut rng, &g, (4, 4), 0.5, TileMode::Free),
            tiled(&mut rng, &g, (4, 4), 0.0, TileMode::OneValue),
        ];
        for w in &ws {
            for unify in [None, best_unify(&g, w)] {
                let sizes = [1, 2, 4, 8];
                let shapes = shapes_of(&g, w, unify, &sizes);
                for (&b, s) in sizes.iter().zip(&shapes) {
                    assert_eq!(
                        s.columns,
                        columns_by_blocks(&g, w, unify, b),
                        "b={b} {unify:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn shape_counts_columns_entries_and_sums() {
    let g = geom((8, 8, 1), (6, 6), (3, 3), [1, 1], [1, 1], [1; 4]);
    let mut rng = Rng(7);
    let w = tiled(&mut rng, &g, (4, 4), 0.5, TileMode::Free);
    let nnz = w.iter().filter(|&&x| x != 0.0).count();
    let s1 = shapes_of(&g, &w, None, &[1])[0];
    let s4 = shapes_of(&g, &w, None, &[4])[0];
    assert_eq!((s1.entries, s1.columns, s1.sums), (nnz, nnz, 0));
    // 4x4 tiles: every column of a block of 4 serves its 4 channels.
    assert_eq!(s4.columns * 4, nnz);
}

mod bench {
    //! Ignored benchmarks (`cargo test --release -p ssc-jit bench_spmm -- --ignored
    //! --nocapture`): the sparse kernel against the dense kernel the layer would get and the
    //! AVX2 table loop, on ResNet-18's and MobileNetV2's layer shapes, 1 thread, ms and GFLOP/s
    //! of non-zero work.
    use super::*;
    use crate::codegen::{Jit, StreamConv};
    use crate::kernels::dense::DenseConv;
    use crate::testutil::interleaved_ms;

    fn layers() -> Vec<(&'static str, ConvGeom)> {
        let c = |ci, co, hw, k, s| {
            let p = k / 2;
            geom((ci, co, 1), (hw, hw), (k, k), [s, s], [1, 1], [p; 4])
        };
        vec![
            ("r18 l1 64 3x3 56", c(64, 64, 56, 3, 1)),
            ("r18 l2 128 3x3 28", c(128, 128, 28, 3, 1)),
            ("r18 l3 256 3x3 14", c(256, 256, 14, 3, 1)),
            ("r18 l4 512 3x3 7", c(512, 512, 7, 3, 1)),
            ("r18 l2.0 64-128 s2", c(64, 128, 56, 3, 2)),
            ("r18 l4.0 256-512 s2", c(256, 512, 14, 3, 2)),
            ("r18 ds 128-256 1x1 s2", c(128, 256, 28, 1, 2)),
            ("mb2 1x1 144-24 56", c(144, 24, 56, 1, 1)),
            ("mb2 1x1 32-192 28", c(32, 192, 28, 1, 1)),
            ("mb2 1x1 384-64 14", c(384, 64, 14, 1, 1)),
            ("mb2 1x1 960-320 7", c(960, 320, 7, 1, 1)),
        ]
    }

    #[test]
    #[ignore]
    fn bench_spmm() {
        if !available() {
            return;
        }
        let only = std::env::var("SSC_ONLY").ok();
        let mut jit = Jit::new().unwrap();
        for (name, g) in layers() {
            if only.as_ref().is_some_and(|f| !name.contains(f.as_str())) {
                continue;
            }
            let mut rng = Rng(1);
            let x: Vec<f32> = (0..g.c_in * g.h * g.w).map(|_| rng.unit()).collect();
            let mut out = vec![0f32; g.c_out * g.h_out * g.w_out];
            let e = Epilogue {
                bias: Some(vec![0.1; g.c_out]),
                residual: false,
                act: Activation::Relu,
            };
            let dense_w = unstructured(&mut rng, &g, 1.0);
            let dense = DenseConv::new(g, dense_w, e.clone(), 1, true);
            let mut ds = vec![0f32; dense.scratch_len()];
            let [td] = interleaved_ms::<1>(7, |_| dense.run(&x, None, None, &mut out, &mut ds));
            println!("{name:<24} dense {:<16} {td:>7.3} ms", dense.kind());
            let cases: Vec<(String, Vec<f32>, usize)> = vec![
                ("u 5%".into(), unstructured(&mut rng, &g, 0.05), 1),
                ("u 10%".into(), unstructured(&mut rng, &g, 0.1), 1),
                ("u 30%".into(), unstructured(&mut rng, &g, 0.3), 1),
                ("u 30% b2".into(), unstructured(&mut rng, &g, 0.3), 2),
                ("u 50%".into(), unstructured(&mut rng, &g, 0.5), 1),
                ("u 50% b2".into(), unstructured(&mut rng, &g, 0.5), 2),
                (
                    "4x4 50%".into(),
                    tiled(&mut rng, &g, (4, 4), 0.5, TileMode::Free),
                    4,
                ),
                (
                    "4x4 50% b1".into(),
                    tiled(&mut rng, &g, (4, 4), 0.5, TileMode::Free),
                    1,
                ),
                (
                    "8x1 50% b8".into(),
                    tiled(&mut rng, &g, (8, 1), 0.5, TileMode::Free),
                    8,
                ),
            ];
            for (label, w, block) in cases {
                let nnz = w.iter().filter(|&&v| v != 0.0).count();
                let arr = Arrangement { block, unify: None };
                let t0 = std::time::Instant::now();
                let k = SpmmConv::new(g, &w, &e, 0, arr, 1);
                let build = t0.elapsed().as_secs_f64() * 1e3;
                let mut s = vec![0f32; k.scratch_len()];
                let sc = StreamConv::compile(&mut jit, &g, &w, &e).unwrap();
                let mut s2 = vec![0f32; sc.scratch_len()];
                let [t, ts] = interleaved_ms::<2>(7, |i| {
                    if i == 0 {
                        k.run(&x, [None, None], &mut out, &mut s)
                    } else {
                        sc.run(&x, None, &mut out, &mut s2)
                    }
                });
                let gf = |ms: f64| 2.0 * (nnz * g.h_out * g.w_out) as f64 / ms / 1e6;
                println!(
                    "  {label:<12} spmm {t:>7.3} ms {:>6.1} GF/s (x{:.2} dense)  table-avx2 {ts:>7.3} ms {:>6.1} GF/s  build {build:.1} ms",
                    gf(t),
                    td / t,
                    gf(ts)
                );
            }
        }
    }
}

/// A probe for profiling one layer: `SSC_PROBE="ci co hw k s density block chunk"`. With
/// `chunk > 0` the kernel cut into chunks of `chunk` input channels runs interleaved with the
/// same weights at the default chunking (the pair's ratio is what a chunking change is judged
/// by on the shared host; separate runs drift by more than the differences).
#[test]
#[ignore]
fn probe_spmm() {
    let Ok(spec) = std::env::var("SSC_PROBE") else {
        return;
    };
    let v: Vec<f64> = spec
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    let (ci, co, hw, k, s) = (
        v[0] as usize,
        v[1] as usize,
        v[2] as usize,
        v[3] as usize,
        v[4] as usize,
    );
    let g = geom((ci, co, 1), (hw, hw), (k, k), [s, s], [1, 1], [k / 2; 4]);
    let mut rng = Rng(3);
    let w = unstructured(&mut rng, &g, v[5]);
    let e = Epilogue::default();
    let arr = Arrangement {
        block: v[6] as usize,
        unify: None,
    };
    let default = SpmmConv::new(g, &w, &e, 0, arr, 1);
    let mut kern = SpmmConv::new(g, &w, &e, 0, arr, 1);
    if v[7] > 0.0 {
        kern.chunk(v[7] as usize);
    }
    let x: Vec<f32> = (0..g.c_in * g.h * g.w).map(|_| rng.unit()).collect();
    let mut out = vec![0f32; g.c_out * g.h_out * g.w_out];
    let mut sc = vec![0f32; kern.scratch_len().max(default.scratch_len())];
    let nnz = w.iter().filter(|&&x| x != 0.0).count();
    let reps = 200;
    let [td, t] = crate::testutil::interleaved_ms::<2>(reps, |i| {
        let k = if i == 0 { &default } else { &kern };
        k.run(&x, [None, None], &mut out, &mut sc)
    });
    let entries = nnz as f64 * kern.n_tiles as f64;
    for (label, k, t) in [("default", &default, td), ("probe", &kern, t)] {
        println!(
            "{label} chunks {} : {t:.4} ms, {:.1} GF/s, {:.2} ns per entry-tile",
            k.n_chunks,
            2.0 * (nnz * g.h_out * g.w_out) as f64 / t / 1e6,
            t * 1e6 / entries
        );
    }
    println!("{g:?}: probe / default time {:.3}", t / td);
}

/// Load alignment probe: a 1x1 conv read in place from an input starting `shift` floats past
/// a 64-byte boundary (`SSC_ALIGN_PROBE=1`).
#[test]
#[ignore]
fn probe_alignment() {
    if std::env::var("SSC_ALIGN_PROBE").is_err() {
        return;
    }
    let g = geom((64, 64, 1), (64, 64), (1, 1), [1, 1], [1, 1], [0; 4]);
    let mut rng = Rng(3);
    let w = unstructured(&mut rng, &g, 1.0);
    let kern = SpmmConv::new(
        g,
        &w,
        &Epilogue::default(),
        0,
        Arrangement {
            block: 1,
            unify: None,
        },
        1,
    );
    let n = g.c_in * g.h * g.w;
    let buf: Vec<f32> = (0..n + 64).map(|_| rng.unit()).collect();
    let mis = (buf.as_ptr() as usize / 4) % 16;
    let mut out = vec![0f32; g.c_out * g.h_out * g.w_out];
    // The in-place read needs no padded copy, but chunked input channels keep partial sums.
    let mut scratch = vec![0f32; kern.scratch_len()];
    for shift in [0usize, 8, 4, 1] {
        let start = (16 - mis) % 16 + shift;
        let x = &buf[start..start + n];
        let [t] = crate::testutil::interleaved_ms::<1>(300, |_| {
            kern.run(x, [None, None], &mut out, &mut scratch)
        });
        let entries = (64 * 64 * kern.n_tiles) as f64;
        println!(
            "shift {shift:>2} floats: {:.3} ns per entry-tile",
            t * 1e6 / entries
        );
    }
}
