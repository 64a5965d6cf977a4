//! Helpers the kernels' unit tests share: the reference convolution (the reference executor's
//! Conv, then the JIT's epilogue in f64) every kernel is checked against, a rayon pool of a
//! given size to run a kernel in, and the conv tests' geometries, data and epilogues.

use ssc_ir::{Attribute, OpDesc, Tensor};

use crate::spec::{Activation, ConvGeom, Epilogue};

/// Conv through `ssc_exec::eval_node` (bias included), then the residuals and the activation
/// in f64: what a kernel computing `g` with epilogue `epi` must output, for one image.
pub(crate) fn reference_conv(
    g: &ConvGeom,
    x: &[f32],
    w: &[f32],
    epi: &Epilogue,
    res: [Option<&[f32]>; 2],
) -> Vec<f64> {
    let xt = Tensor::from_f32(vec![1, g.c_in, g.h, g.w], x);
    let wt = Tensor::from_f32(vec![g.c_out, g.cin_g(), g.kh, g.kw], w);
    let bt = Tensor::from_f32(
        vec![g.c_out],
        &epi.bias.clone().unwrap_or(vec![0.0; g.c_out]),
    );
    let i = |v: &[usize]| v.iter().map(|&d| d as i64).collect::<Vec<_>>();
    let mut desc = OpDesc::new("Conv");
    desc.attrs = vec![
        Attribute::ints("kernel_shape", i(&[g.kh, g.kw])),
        Attribute::ints("strides", i(&g.stride)),
        Attribute::ints("dilations", i(&g.dilation)),
        Attribute::ints("pads", i(&g.pads)),
        Attribute::int("group", g.group as i64),
    ];
    let out = ssc_exec::eval_node(&desc, 17, &[Some(&xt), Some(&wt), Some(&bt)], 1)
        .expect("reference conv");
    assert_eq!(out[0].dims, vec![1, g.c_out, g.h_out, g.w_out]);
    let mut y = out[0].to_f64_vec().expect("f32 output");
    for r in res.iter().flatten() {
        for (y, &r) in y.iter_mut().zip(*r) {
            *y += r as f64;
        }
    }
    for y in &mut y {
        *y = match epi.act {
            Activation::None => *y,
            Activation::Relu => y.max(0.0),
            Activation::Clip(lo, hi) => y.max(lo as f64).min(hi as f64),
            Activation::LeakyRelu(a) => {
                if *y >= 0.0 {
                    *y
                } else {
                    a as f64 * *y
                }
            }
            Activation::HardSwish => *y * (*y / 6.0 + 0.5).clamp(0.0, 1.0),
            Activation::Silu => *y / (1.0 + (-*y).exp()),
        };
    }
    y
}

/// Runs `f` in a fresh rayon pool of `threads` threads (kernels split their work over the
/// current pool).
pub(crate) fn in_pool<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("rayon pool")
        .install(f)
}

/// Max |got - want| over max |want|: the norm-wise relative error the kernel tests bound.
pub(crate) fn rel_err(got: &[f32], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(0f64, |m, v| m.max(v.abs())).max(1e-30);
    got.iter()
        .zip(want)
        .fold(0f64, |m, (&g, &w)| m.max((g as f64 - w).abs()))
        / scale
}

/// `n` deterministic test values `((i * mul) % modulo - modulo / 2) * scale`: spread over
/// `[-scale * modulo / 2, scale * modulo / 2)` with no structure a kernel could exploit.
pub(crate) fn pattern(n: usize, mul: usize, modulo: usize, scale: f32) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * mul % modulo) as f32 - (modulo / 2) as f32) * scale)
        .collect()
}

/// The kernel benches' measurement: `N` variants timed in turn for `rounds` rounds on one
/// thread (interleaved, so a change in the host's speed touches them alike), `run(i)` running
/// variant `i` once; the median of each in milliseconds.
pub(crate) fn interleaved_ms<const N: usize>(
    rounds: usize,
    mut run: impl FnMut(usize) + Send,
) -> [f64; N] {
    let mut t: [Vec<std::time::Duration>; N] = std::array::from_fn(|_| Vec::new());
    in_pool(1, || {
        for _ in 0..rounds {
            for (i, t) in t.iter_mut().enumerate() {
                let s = std::time::Instant::now();
                run(i);
                t.push(s.elapsed());
            }
        }
    });
    t.map(|mut v| {
        v.sort();
        v[v.len() / 2].as_secs_f64() * 1e3
    })
}

/// The geometry of a square-kernel conv, its output extent from ONNX's formula: `ch` is
/// `(c_in, c_out, group)`, `hw` the input's `(h, w)`, `kernel` `(k, stride, dilation)`.
pub(crate) fn conv_geom(
    (c_in, c_out, group): (usize, usize, usize),
    (h, w): (usize, usize),
    (k, stride, dilation): (usize, usize, usize),
    pads: [usize; 4],
) -> ConvGeom {
    let span = dilation * (k - 1) + 1;
    ConvGeom {
        c_in,
        c_out,
        group,
        h,
        w,
        kh: k,
        kw: k,
        stride: [stride; 2],
        dilation: [dilation; 2],
        pads,
        h_out: (h + pads[0] + pads[2] - span) / stride + 1,
        w_out: (w + pads[1] + pads[3] - span) / stride + 1,
    }
}

/// A conv test's data from fixed patterns: the input of `g`, weights with `taps` taps per
/// output and input channel of a group, and a residual of the output's size.
pub(crate) fn conv_data(g: &ConvGeom, taps: usize) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let x = pattern(g.c_in * g.h * g.w, 37, 101, 0.02);
    let w = pattern(g.c_out * g.cin_g() * taps, 53, 97, 0.01);
    let res = (0..g.c_out * g.h_out * g.w_out)
        .map(|i| (i % 7) as f32 * 0.3)
        .collect();
    (x, w, res)
}

/// The conv tests' epilogue: bias `0.1 k - 1` on channel `k`, a residual when `residual`.
pub(crate) fn ramp_epilogue(c_out: usize, residual: bool, act: Activation) -> Epilogue {
    Epilogue {
        bias: Some((0..c_out).map(|k| k as f32 * 0.1 - 1.0).collect()),
        residual,
        act,
    }
}

/// The 1x1 conv of an SSC pair whose k x k conv is `g`: one group, no padding, the same
/// stride and output.
pub(crate) fn pointwise_geom(g: &ConvGeom) -> ConvGeom {
    ConvGeom {
        group: 1,
        kh: 1,
        kw: 1,
        pads: [0; 4],
        ..*g
    }
}

/// xorshift64*: deterministic, dependency-free test randomness.
pub(crate) struct Rng(pub u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// Uniform in [-1, 1).
    pub(crate) fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
    pub(crate) fn pick<T: Copy>(&mut self, v: &[T]) -> T {
        v[self.below(v.len())]
    }
}
