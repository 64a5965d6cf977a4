//! Tests of the Cranelift kernels against the reference executor (`ssc_exec::eval_node`), plus
//! ignored benchmarks that print compile times and GFLOP/s (`-- --ignored --nocapture`).

use super::{CodegenOptions, Jit, OptLevel, StreamConv};
use crate::spec::{Activation, ConvGeom, Epilogue};
use crate::testutil::{reference_conv, Rng};

#[allow(clippy::too_many_arguments)]
fn geom(
    c_in: usize,
    c_out: usize,
    group: usize,
    hw: [usize; 2],
    k: [usize; 2],
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
        h: hw[0],
        w: hw[1],
        kh: k[0],
        kw: k[1],
        stride,
        dilation,
        pads,
        h_out: out(hw[0], pads[0], pads[2], k[0], stride[0], dilation[0]),
        w_out: out(hw[1], pads[1], pads[3], k[1], stride[1], dilation[1]),
    }
}

/// Random weights with the given density; with `unified`, values come from a set of three so
/// that many taps of one channel share a value exactly.
fn weights(rng: &mut Rng, n: usize, density: f64, unified: bool) -> Vec<f32> {
    (0..n)
        .map(|_| {
            if (rng.next() % 1000) as f64 >= density * 1000.0 {
                0.0
            } else if unified {
                rng.pick(&[0.5, -0.25, 1.5])
            } else {
                rng.unit()
            }
        })
        .collect()
}

/// Compiles and runs one conv and compares with the reference; returns the kernel for callers
/// that check more.
fn check(jit: &mut Jit, g: &ConvGeom, w: &[f32], epi: &Epilogue, rng: &mut Rng) -> StreamConv {
    let x: Vec<f32> = (0..g.c_in * g.h * g.w).map(|_| rng.unit()).collect();
    let n_out = g.c_out * g.h_out * g.w_out;
    let res: Option<Vec<f32>> = epi
        .residual
        .then(|| (0..n_out).map(|_| rng.unit()).collect());
    let k = StreamConv::compile(jit, g, w, epi).unwrap_or_else(|e| panic!("{g:?}: {e}"));
    let mut out = vec![f32::NAN; n_out];
    // Dirty scratch: the kernel must not depend on its previous contents.
    let mut scratch = vec![f32::NAN; k.scratch_len()];
    k.run(&x, res.as_deref(), &mut out, &mut scratch);
    let want = reference_conv(g, &x, w, epi, [res.as_deref(), None]);
    // f32 accumulation in another order than the reference (and sums of equal-weight inputs
    // before one multiply): each output is a sum of up to kh*kw*cin_g + 2 terms, whose rounding
    // error is bounded by about terms * 2^-24 * max|term|; terms here are |x*w| <= 1.5, outputs
    // of these sizes are O(1)..O(10), so 1e-5 of the largest output is a strict bound for up to
    // ~100 terms and a loose-but-meaningful one above (the errors are random-signed, ~sqrt(n)).
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let mut worst = 0.0f64;
    for (k, (&a, &b)) in out.iter().zip(&want).enumerate() {
        assert!(a.is_finite(), "{g:?} {epi:?}: output {k} is {a}");
        worst = worst.max((a as f64 - b).abs());
    }
    assert!(
        worst <= 1e-5 * scale.max(1e-30),
        "{g:?} {epi:?}: max error {worst} vs max |ref| {scale}"
    );
    k
}

fn random_case(rng: &mut Rng) -> (ConvGeom, f64, bool, Epilogue) {
    let k = [rng.pick(&[1, 2, 3, 5, 7]), rng.pick(&[1, 2, 3, 5, 7])];
    let k = if rng.below(3) == 0 { [k[0], k[0]] } else { k };
    let stride = [rng.pick(&[1, 2, 3]), rng.pick(&[1, 2, 3])];
    let dilation = [rng.pick(&[1, 2]), rng.pick(&[1, 2])];
    let pads = [0; 4].map(|_| rng.below(k[0].max(k[1])));
    let (c_in, c_out, group) = match rng.below(4) {
        0 => (1 + rng.below(6), 1 + rng.below(9), 1),
        1 => (2 * (1 + rng.below(3)), 2 * (1 + rng.below(4)), 2),
        2 => {
            let c = 1 + rng.below(8);
            (c, c, c)
        }
        _ => {
            let c = 1 + rng.below(6);
            (c, 2 * c, c)
        }
    };
    // Input big enough for at least one output.
    let span = |k: usize, d: usize| (k - 1) * d + 1;
    let h = (1 + rng.below(14)).max(span(k[0], dilation[0]).saturating_sub(pads[0] + pads[2]));
    let w = (1 + rng.below(14)).max(span(k[1], dilation[1]).saturating_sub(pads[1] + pads[3]));
    let g = geom(c_in, c_out, group, [h, w], k, stride, dilation, pads);
    let density = rng.pick(&[1.0, 0.5, 0.1, 0.0]);
    let unified = rng.below(3) == 0;
    let epi = Epilogue {
        bias: (rng.below(2) == 0).then(|| (0..c_out).map(|_| rng.unit()).collect()),
        residual: rng.below(2) == 0,
        act: rng.pick(&[
            Activation::None,
            Activation::Relu,
            Activation::Clip(-0.5, 0.75),
            Activation::LeakyRelu(0.1),
        ]),
    };
    (g, density, unified, epi)
}

fn run_random(opts: CodegenOptions, cases: usize, seed: u64) {
    let mut jit = Jit::with_options(opts).expect("host jit");
    let mut rng = Rng(seed);
    for _ in 0..cases {
        let (g, density, unified, epi) = random_case(&mut rng);
        let n = g.c_out * g.cin_g() * g.kh * g.kw;
        let w = weights(&mut rng, n, density, unified);
        check(&mut jit, &g, &w, &epi, &mut rng);
    }
}

/// Options for the unrolled Cranelift kernels (the AVX2 table loop would take every layer on
/// an AVX2 host).
fn unrolled() -> CodegenOptions {
    CodegenOptions {
        vector_table: false,
        ..CodegenOptions::default()
    }
}

#[test]
fn random_geometries_unrolled() {
    run_random(unrolled(), 400, 0x1234_5678);
}

/// The default options: the AVX2 table loop on hosts that have it.
#[test]
fn random_geometries_table_driven() {
    run_random(CodegenOptions::default(), 400, 0x9abc_def0);
}

/// The generated 4-wide table loop, which hosts without AVX2 run (and which this host would
/// otherwise replace with the vector loop).
#[test]
fn random_geometries_cranelift_table() {
    let opts = CodegenOptions {
        unroll_max_nnz: 0,
        vector_table: false,
        ..CodegenOptions::default()
    };
    run_random(opts, 400, 0x00dd_ba11);
}

#[test]
fn random_geometries_other_tiles_and_opt_speed() {
    for (nv, level) in [
        (1, OptLevel::Speed),
        (2, OptLevel::None),
        (8, OptLevel::None),
    ] {
        for unroll in [0, usize::MAX] {
            let opts = CodegenOptions {
                tile_vectors: nv,
                opt_level: level,
                unroll_max_nnz: unroll,
                parallel_compile: nv != 2,
                vector_table: false,
            };
            run_random(opts, 60, 77 + nv as u64);
        }
    }
}

#[test]
fn named_shapes() {
    for opts in [unrolled(), CodegenOptions::default()] {
        named_shapes_with(opts);
    }
}

fn named_shapes_with(opts: CodegenOptions) {
    let mut jit = Jit::with_options(opts).unwrap();
    let mut rng = Rng(99);
    let relu = Epilogue {
        bias: Some(vec![0.25; 8]),
        residual: true,
        act: Activation::Relu,
    };
    let cases = [
        // 7x5 image, 3x3, pads 1: odd sizes.
        geom(3, 8, 1, [7, 5], [3, 3], [1, 1], [1, 1], [1, 1, 1, 1]),
        // 1x1 output.
        geom(4, 8, 1, [3, 3], [3, 3], [1, 1], [1, 1], [0, 0, 0, 0]),
        // Stride 2 with asymmetric pads (TF "SAME" style).
        geom(4, 8, 1, [9, 8], [3, 3], [2, 2], [1, 1], [0, 0, 1, 1]),
        // Depthwise stride 2, multiplier 2.
        geom(4, 8, 4, [11, 11], [3, 3], [2, 2], [1, 1], [1, 1, 1, 1]),
        // 7x7 stride 2 pads 3 (ResNet stem), dilation 2 and stride 3.
        geom(3, 8, 1, [16, 16], [7, 7], [2, 2], [1, 1], [3, 3, 3, 3]),
        geom(2, 8, 2, [13, 10], [3, 2], [3, 1], [2, 2], [2, 0, 1, 3]),
        // 1x1 stride 2 (downsample): only one phase used.
        geom(8, 8, 1, [10, 10], [1, 1], [2, 2], [1, 1], [0, 0, 0, 0]),
        // Wide rows that need several row chunks (wq = 400 > BUF / 16 rows).
        geom(2, 8, 1, [40, 400], [3, 3], [1, 1], [1, 1], [1, 1, 1, 1]),
    ];
    for g in cases {
        for density in [1.0, 0.5, 0.1] {
            let n = g.c_out * g.cin_g() * g.kh * g.kw;
            let w = weights(&mut rng, n, density, false);
            let k = check(&mut jit, &g, &w, &relu, &mut rng);
            assert_eq!(k.nnz(), w.iter().filter(|&&v| v != 0.0).count());
        }
    }
}

/// Strided pre-pass: strides 2 and 3 (deinterleaved staged rows) with odd sizes and asymmetric
/// pads, stride 4 (generic staged path) and rows too wide for the staging buffer (fallback).
#[test]
fn strided_prepass_shapes() {
    let mut rng = Rng(2024);
    for (unroll, vector_table) in [(0, true), (0, false), (usize::MAX, false)] {
        let mut jit = Jit::with_options(CodegenOptions {
            unroll_max_nnz: unroll,
            vector_table,
            ..CodegenOptions::default()
        })
        .unwrap();
        let cases = [
            geom(3, 4, 1, [13, 11], [3, 3], [2, 2], [1, 1], [1, 0, 0, 1]),
            geom(3, 4, 1, [15, 17], [3, 5], [3, 3], [1, 1], [2, 1, 1, 2]),
            geom(5, 5, 5, [13, 13], [3, 3], [2, 2], [1, 1], [1, 1, 1, 1]),
            geom(5, 5, 5, [7, 9], [3, 3], [3, 2], [1, 1], [0, 2, 1, 0]),
            geom(2, 3, 1, [11, 19], [3, 3], [4, 4], [1, 1], [1, 1, 1, 1]),
            geom(2, 4, 1, [9, 401], [3, 3], [2, 2], [1, 1], [1, 1, 1, 1]),
            geom(2, 4, 2, [5, 700], [1, 3], [1, 3], [1, 1], [0, 1, 0, 2]),
        ];
        for g in cases {
            for density in [1.0, 0.3] {
                let n = g.c_out * g.cin_g() * g.kh * g.kw;
                let w = weights(&mut rng, n, density, density < 1.0);
                let epi = Epilogue {
                    bias: Some((0..g.c_out).map(|_| rng.unit()).collect()),
                    residual: density < 1.0,
                    act: Activation::Clip(-0.5, 0.75),
                };
                check(&mut jit, &g, &w, &epi, &mut rng);
            }
        }
    }
}

#[test]
fn all_zero_weights_give_the_epilogue_of_zero() {
    let mut jit = Jit::new().unwrap();
    let g = geom(3, 4, 1, [5, 5], [3, 3], [1, 1], [1, 1], [1, 1, 1, 1]);
    let epi = Epilogue {
        bias: Some(vec![1.0, -2.0, 0.5, 7.0]),
        residual: false,
        act: Activation::Clip(0.0, 6.0),
    };
    let k = StreamConv::compile(&mut jit, &g, &[0.0; 108], &epi).unwrap();
    assert_eq!(k.nnz(), 0);
    let mut out = vec![f32::NAN; 100];
    let mut scratch = vec![0.0; k.scratch_len()];
    k.run(&[1.0; 75], None, &mut out, &mut scratch);
    for (c, want) in [1.0, 0.0, 0.5, 6.0].into_iter().enumerate() {
        assert!(out[c * 25..(c + 1) * 25].iter().all(|&v| v == want));
    }
}

#[test]
fn unified_blocks_are_summed_then_multiplied() {
    // All 27 taps of each channel equal: one group per channel, which must still be exact-ish.
    for opts in [unrolled(), CodegenOptions::default()] {
        let mut jit = Jit::with_options(opts).unwrap();
        let mut rng = Rng(5);
        let g = geom(3, 2, 1, [6, 6], [3, 3], [1, 1], [1, 1], [1, 1, 1, 1]);
        let mut w = vec![0.75f32; 27];
        w.extend([-1.25f32; 27]);
        check(&mut jit, &g, &w, &Epilogue::default(), &mut rng);
    }
}

#[test]
fn bad_specs_are_typed_errors() {
    let mut jit = Jit::new().unwrap();
    let g = geom(3, 4, 1, [5, 5], [3, 3], [1, 1], [1, 1], [1, 1, 1, 1]);
    let e = Epilogue::default();
    assert!(StreamConv::compile(&mut jit, &g, &[1.0; 10], &e).is_err());
    let bad_out = ConvGeom { h_out: 4, ..g };
    assert!(StreamConv::compile(&mut jit, &bad_out, &[1.0; 108], &e).is_err());
    let bad_group = ConvGeom { group: 2, ..g };
    assert!(StreamConv::compile(&mut jit, &bad_group, &[1.0; 54], &e).is_err());
    let bad_bias = Epilogue {
        bias: Some(vec![1.0]),
        ..Epilogue::default()
    };
    assert!(StreamConv::compile(&mut jit, &g, &[1.0; 108], &bad_bias).is_err());
    let zero = ConvGeom {
        stride: [0, 1],
        ..g
    };
    assert!(StreamConv::compile(&mut jit, &zero, &[1.0; 108], &e).is_err());
}

#[test]
fn kernels_outlive_the_jit_and_run_from_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<StreamConv>();
    let g = geom(8, 16, 1, [12, 12], [3, 3], [1, 1], [1, 1], [1, 1, 1, 1]);
    let mut rng = Rng(11);
    let w = weights(&mut rng, 16 * 8 * 9, 0.3, false);
    let k = {
        let mut jit = Jit::new().unwrap();
        StreamConv::compile(&mut jit, &g, &w, &Epilogue::default()).unwrap()
    };
    let x: Vec<f32> = (0..8 * 144).map(|_| rng.unit()).collect();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(3)
        .build()
        .unwrap();
    let mut a = vec![0.0; 16 * 144];
    let mut b = vec![0.0; 16 * 144];
    let mut s = vec![0.0; k.scratch_len()];
    k.run(&x, None, &mut a, &mut s);
    pool.install(|| k.run(&x, None, &mut b, &mut s));
    assert_eq!(a, b);
}

mod bench {
    //! Ignored benchmarks: `cargo test -p ssc-jit --release -- --ignored --nocapture bench_`.
    use std::time::Instant;

    use super::*;

    fn time_run(k: &StreamConv, threads: usize) -> f64 {
        let g = *k.geom();
        let x: Vec<f32> = (0..g.c_in * g.h * g.w)
            .map(|i| (i % 7) as f32 * 0.1)
            .collect();
        let mut out = vec![0.0; g.c_out * g.h_out * g.w_out];
        let mut s = vec![0.0; k.scratch_len()];
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            for _ in 0..3 {
                k.run(&x, None, &mut out, &mut s);
            }
            let mut best = f64::MAX;
            for _ in 0..7 {
                let t = Instant::now();
                let reps = 5;
                for _ in 0..reps {
                    k.run(&x, None, &mut out, &mut s);
                }
                best = best.min(t.elapsed().as_secs_f64() / reps as f64);
            }
            best
        })
    }

    fn report(name: &str, jit: &mut Jit, g: &ConvGeom, density: f64) {
        // `SSC_ONLY=substring` restricts a benchmark to matching shapes (e.g. for profiling).
        if std::env::var("SSC_ONLY").is_ok_and(|f| !name.contains(&f)) {
            return;
        }
        let mut rng = Rng(1);
        let n = g.c_out * g.cin_g() * g.kh * g.kw;
        let w = weights(&mut rng, n, density, false);
        let t = Instant::now();
        let k = StreamConv::compile(jit, g, &w, &Epilogue::default()).unwrap();
        let ct = t.elapsed().as_secs_f64();
        let gf = |s: f64| 2.0 * k.macs() as f64 / s / 1e9;
        let (t1, t2) = (time_run(&k, 1), time_run(&k, 2));
        println!(
            "{name:<34} nnz {:>7} {} compile {:>7.1} ms  1T {:>6.3} ms {:>5.1} GF/s  2T {:>6.3} ms {:>5.1} GF/s",
            k.nnz(),
            if k.is_table_driven() { "tab" } else { "unr" },
            ct * 1e3,
            t1 * 1e3,
            gf(t1),
            t2 * 1e3,
            gf(t2)
        );
    }

    fn opts_from_env() -> CodegenOptions {
        let mut o = CodegenOptions::default();
        if let Ok(v) = std::env::var("SSC_NV") {
            o.tile_vectors = v.parse().unwrap();
        }
        if let Ok(v) = std::env::var("SSC_UNROLL") {
            o.unroll_max_nnz = v.parse().unwrap();
        }
        if std::env::var("SSC_SPEED").is_ok() {
            o.opt_level = OptLevel::Speed;
        }
        o
    }

    #[test]
    #[ignore]
    fn bench_sparse_and_dense_3x3() {
        let mut jit = Jit::with_options(opts_from_env()).unwrap();
        println!("{:?}", jit);
        for (c, s) in [(64, 56), (128, 28), (256, 14), (512, 7)] {
            let g = geom(c, c, 1, [s, s], [3, 3], [1, 1], [1, 1], [1, 1, 1, 1]);
            report(&format!("3x3 {c}->{c} {s}x{s} d=0.1"), &mut jit, &g, 0.1);
        }
        let g = geom(64, 64, 1, [56, 56], [3, 3], [1, 1], [1, 1], [1, 1, 1, 1]);
        report("3x3 64->64 56x56 dense", &mut jit, &g, 1.0);
    }

    #[test]
    #[ignore]
    fn bench_depthwise() {
        let mut jit = Jit::with_options(opts_from_env()).unwrap();
        // MobileNetV2 depthwise layers (channels, input size, stride).
        let shapes = [
            (32, 112, 1),
            (96, 112, 2),
            (144, 56, 1),
            (144, 56, 2),
            (192, 28, 1),
            (192, 28, 2),
            (384, 14, 1),
            (576, 14, 1),
            (576, 14, 2),
            (960, 7, 1),
        ];
        for (c, s, st) in shapes {
            let g = geom(c, c, c, [s, s], [3, 3], [st, st], [1, 1], [1, 1, 1, 1]);
            report(&format!("dw3x3 {c} {s}x{s} s{st}"), &mut jit, &g, 1.0);
        }
    }

    /// ResNet-18 convolutions at density 0.1: compile time per layer and in total.
    #[test]
    #[ignore]
    fn bench_resnet18_compile() {
        let mut jit = Jit::with_options(opts_from_env()).unwrap();
        // (c_in, c_out, size_in, k, stride, pad, count)
        let layers = [
            (3, 64, 224, 7, 2, 3, 1),
            (64, 64, 56, 3, 1, 1, 4),
            (64, 128, 56, 3, 2, 1, 1),
            (128, 128, 28, 3, 1, 1, 3),
            (64, 128, 56, 1, 2, 0, 1),
            (128, 256, 28, 3, 2, 1, 1),
            (256, 256, 14, 3, 1, 1, 3),
            (128, 256, 28, 1, 2, 0, 1),
            (256, 512, 14, 3, 2, 1, 1),
            (512, 512, 7, 3, 1, 1, 3),
            (256, 512, 14, 1, 2, 0, 1),
        ];
        let mut rng = Rng(3);
        let (mut total, mut nnz, mut run1) = (0.0, 0, 0.0);
        for (ci, co, s, k, st, p, count) in layers {
            let g = geom(ci, co, 1, [s, s], [k, k], [st, st], [1, 1], [p; 4]);
            for _ in 0..count {
                let w = weights(&mut rng, co * ci * k * k, 0.1, false);
                let t = Instant::now();
                let kern = StreamConv::compile(&mut jit, &g, &w, &Epilogue::default()).unwrap();
                let ct = t.elapsed().as_secs_f64();
                total += ct;
                nnz += kern.nnz();
                let r = time_run(&kern, 1);
                run1 += r;
                println!(
                    "{ci:>3}->{co:<3} {s:>3}x{s:<3} k{k} s{st}: nnz {:>6} {} compile {:>6.1} ms, run 1T {:>6.3} ms",
                    kern.nnz(),
                    if kern.is_table_driven() { "tab" } else { "unr" },
                    ct * 1e3,
                    r * 1e3
                );
            }
        }
        println!(
            "total: nnz {nnz}, compile {:.1} ms, conv run 1T {:.2} ms",
            total * 1e3,
            run1 * 1e3
        );
    }
}
