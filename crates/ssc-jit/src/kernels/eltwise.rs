//! Stand-alone elementwise ops on f32 tensors of static shape (the ones no convolution epilogue
//! absorbed): numpy-broadcasting binaries and the common activations.

use crate::kernels::par::par_units;

/// A binary arithmetic op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Max,
    Min,
    /// `PRelu(x, slope)`: `x` where `x >= 0`, else `slope * x` (not commutative).
    PRelu,
    /// `Pow(x, y)` (LayerNorm decompositions square with it).
    Pow,
}

impl BinOp {
    pub(crate) fn from_onnx(op: &str) -> Option<BinOp> {
        Some(match op {
            "Add" => BinOp::Add,
            "Sub" => BinOp::Sub,
            "Mul" => BinOp::Mul,
            "Div" => BinOp::Div,
            "Max" => BinOp::Max,
            "Min" => BinOp::Min,
            "PRelu" => BinOp::PRelu,
            "Pow" => BinOp::Pow,
            _ => return None,
        })
    }

    #[inline]
    pub(crate) fn apply(self, a: f32, b: f32) -> f32 {
        match self {
            BinOp::Add => a + b,
            BinOp::Sub => a - b,
            BinOp::Mul => a * b,
            BinOp::Div => a / b,
            // ONNX Max/Min propagate NaN.
            BinOp::Max => {
                if a.is_nan() || b.is_nan() {
                    f32::NAN
                } else {
                    a.max(b)
                }
            }
            BinOp::Min => {
                if a.is_nan() || b.is_nan() {
                    f32::NAN
                } else {
                    a.min(b)
                }
            }
            BinOp::PRelu => {
                if a < 0.0 {
                    a * b
                } else {
                    a
                }
            }
            // The square exactly (one rounding, as the reference's f64 product rounded).
            BinOp::Pow if b == 2.0 => a * a,
            BinOp::Pow => a.powf(b),
        }
    }
}

/// A unary op (activations and simple math).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum UnOp {
    Act(crate::spec::Activation),
    Sigmoid,
    /// `x * sigmoid(x)`: a Sigmoid and the Mul reading it, as one pass.
    Silu,
    Tanh,
    Neg,
    Abs,
    Sqrt,
    Exp,
    HardSigmoid(f32, f32),
    Floor,
    Ceil,
    /// Round half to even (ONNX Round).
    Round,
}

impl UnOp {
    /// Always inlined: each op's loop in [`unary`] must compile to straight vector code.
    #[inline(always)]
    fn apply(self, x: f32) -> f32 {
        match self {
            UnOp::Act(a) => a.apply(x),
            UnOp::Sigmoid => sigmoid(x),
            UnOp::Silu => x * sigmoid(x),
            // Through f64 like the reference, so the only difference is the final rounding.
            UnOp::Tanh => (x as f64).tanh() as f32,
            UnOp::Neg => -x,
            UnOp::Abs => x.abs(),
            UnOp::Sqrt => x.sqrt(),
            UnOp::Floor => x.floor(),
            UnOp::Ceil => x.ceil(),
            UnOp::Round => x.round_ties_even(),
            UnOp::Exp => (x as f64).exp() as f32,
            UnOp::HardSigmoid(alpha, beta) => (alpha * x + beta).clamp(0.0, 1.0),
        }
    }
}

/// `e^x` for `x <= 0` in f32 arithmetic that vectorises (no branch, no table, no libm call):
/// Cephes' `expf`, i.e. `x = n ln 2 + r` with `|r| <= ln 2 / 2` (ln 2 in two parts, so `r` is
/// exact), a degree-7 polynomial for `e^r`, and `2^n` put into the exponent bits; the sigmoid
/// built on it stayed within 4 f32 epsilons (relative 4.8e-7) of f64; `chain`'s exp and tanh
/// build on it. Inputs below -87.33
/// (where `e^x` leaves the normal range) give `e^-87.33 ~ 1.2e-38`.
#[inline(always)]
pub(crate) fn exp_nonpositive(x: f32) -> f32 {
    // A compare rather than `max`, so a NaN stays a NaN.
    let x = if x < -87.33 { -87.33 } else { x };
    // n = round(x / ln 2) by the 1.5 * 2^23 trick: the sum's low mantissa bits hold n (a
    // float-to-int conversion would not vectorise: Rust's saturating `as` is scalar code).
    const MAGIC: f32 = 12_582_912.0;
    let t = x * std::f32::consts::LOG2_E + MAGIC;
    let n = t - MAGIC;
    // Plain multiplies and adds, as Cephes has them: `mul_add` is a libm call wherever the
    // code is not compiled for FMA. `n * 0.693359375` is exact (few mantissa bits).
    let r = x - n * 0.693_359_4;
    let r = r + n * 2.121_944_4e-4;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_5e-1)
        * r
        + 0.5;
    let y = p * r * r + r + 1.0;
    // n is in -126..=0 here, so 2^n is a normal float: exponent bits n + 127.
    let bits = t.to_bits().wrapping_sub(MAGIC.to_bits()).wrapping_add(127) << 23;
    y * f32::from_bits(bits)
}

/// The logistic function `1 / (1 + e^-x)` as onnxruntime computes it (`ssc_exec::mlas::logistic`,
/// MLAS's rational form with FMAs), so a Sigmoid, SiLU or fused chain gives the reference
/// executor's and onnxruntime's bits: where a DynamicQuantizeLinear follows, "within a few ulp"
/// moved the quantised model by whole steps. Branch-free; vectorises 8 wide in `par::simd` code.
#[inline(always)]
pub(crate) fn sigmoid(x: f32) -> f32 {
    ssc_exec::mlas::logistic(x)
}

/// `out[i] = f(x[i])`, or `out[i] = f(out[i])` in place when `x` is `None`, in parallel.
/// Generic over `f` so every op gets its own loop with no per-element dispatch (an enum match
/// per element costs several times the arithmetic and blocks vectorisation).
pub(crate) fn map<F: Fn(f32) -> f32 + Sync + Send + Copy>(
    x: Option<&[f32]>,
    out: &mut [f32],
    f: F,
) {
    par_units(
        out,
        1,
        1 << 14,
        #[inline(always)]
        |b, o| match x {
            Some(x) => {
                for (o, &v) in o.iter_mut().zip(&x[b..]) {
                    *o = f(v);
                }
            }
            None => {
                for o in o {
                    *o = f(*o);
                }
            }
        },
    );
}

/// Applies an activation (`Activation::apply`, one loop per kind) from `x` or in place.
pub(crate) fn activation(act: crate::spec::Activation, x: Option<&[f32]>, out: &mut [f32]) {
    use crate::spec::Activation as A;
    match act {
        A::None => {
            if let Some(x) = x {
                out.copy_from_slice(x);
            }
        }
        A::Relu => map(x, out, |v| A::Relu.apply(v)),
        A::Clip(lo, hi) => map(x, out, move |v| A::Clip(lo, hi).apply(v)),
        A::LeakyRelu(a) => map(x, out, move |v| A::LeakyRelu(a).apply(v)),
        A::HardSwish => map(x, out, |v| v * (v * (1.0 / 6.0) + 0.5).clamp(0.0, 1.0)),
        A::Silu => silu(x, out),
    }
}

/// SiLU through [`act::silu_in_place`](crate::kernels::act::silu_in_place), in parallel.
fn silu(x: Option<&[f32]>, out: &mut [f32]) {
    par_units(out, 1, 1 << 14, |b, o| {
        if let Some(x) = x {
            o.copy_from_slice(&x[b..b + o.len()]);
        }
        crate::kernels::act::silu_in_place(o);
    });
}

/// `out = op(x)` elementwise.
pub(crate) fn unary(op: UnOp, x: &[f32], out: &mut [f32]) {
    let x = Some(x);
    match op {
        UnOp::Act(a) => activation(a, x, out),
        UnOp::Sigmoid => map(x, out, |v| UnOp::Sigmoid.apply(v)),
        UnOp::Silu => silu(x, out),
        UnOp::Tanh => map(x, out, |v| UnOp::Tanh.apply(v)),
        UnOp::Neg => map(x, out, |v| -v),
        UnOp::Abs => map(x, out, f32::abs),
        UnOp::Sqrt => map(x, out, f32::sqrt),
        UnOp::Exp => map(x, out, |v| UnOp::Exp.apply(v)),
        UnOp::Floor => map(x, out, f32::floor),
        UnOp::Ceil => map(x, out, f32::ceil),
        UnOp::Round => map(x, out, f32::round_ties_even),
        UnOp::HardSigmoid(a, b) => map(x, out, move |v| UnOp::HardSigmoid(a, b).apply(v)),
    }
}

/// A binary op with numpy broadcasting, its strides resolved at compile time.
pub(crate) struct Binary {
    pub op: BinOp,
    /// Output shape, and each input's element strides in the output's index space (0 where
    /// the input is broadcast), all padded to the output's rank.
    out_dims: Vec<usize>,
    sa: Vec<usize>,
    sb: Vec<usize>,
}

impl Binary {
    /// `None` if the shapes do not broadcast to `out`.
    pub(crate) fn new(op: BinOp, a: &[usize], b: &[usize], out: &[usize]) -> Option<Binary> {
        let strides = |s: &[usize]| -> Option<Vec<usize>> {
            if s.len() > out.len() {
                return None;
            }
            let pad = out.len() - s.len();
            let mut st = vec![0usize; out.len()];
            let mut acc = 1usize;
            for i in (0..s.len()).rev() {
                let d = s[i];
                let od = out[pad + i];
                if d == od {
                    st[pad + i] = if d == 1 { 0 } else { acc };
                } else if d != 1 {
                    return None;
                }
                acc *= d;
            }
            Some(st)
        };
        let (sa, sb) = (strides(a)?, strides(b)?);
        // Collapse the index space: drop dims of size 1, and merge a dim into the next when
        // both inputs step through the pair as one (contiguous, or broadcast along both).
        // A per-channel scale `[1, C, 1, 1]` on `[1, C, H, W]` becomes `[C, H*W]`, whose
        // rows are one vector loop.
        let (mut dims, mut ka, mut kb) = (Vec::new(), Vec::new(), Vec::new());
        for d in 0..out.len() {
            if out[d] == 1 {
                continue;
            }
            if let (Some(&last), Some(&la), Some(&lb)) = (dims.last(), ka.last(), kb.last()) {
                if la == sa[d] * out[d] && lb == sb[d] * out[d] {
                    let n = dims.len();
                    dims[n - 1] = last * out[d];
                    ka[n - 1] = sa[d];
                    kb[n - 1] = sb[d];
                    continue;
                }
            }
            dims.push(out[d]);
            ka.push(sa[d]);
            kb.push(sb[d]);
        }
        Some(Binary {
            op,
            out_dims: dims,
            sa: ka,
            sb: kb,
        })
    }

    pub(crate) fn run(&self, a: &[f32], b: &[f32], out: &mut [f32]) {
        // One monomorphised loop per op (see `map`).
        match self.op {
            BinOp::Add => self.run_with(a, b, out, |x, y| x + y),
            BinOp::Sub => self.run_with(a, b, out, |x, y| x - y),
            BinOp::Mul => self.run_with(a, b, out, |x, y| x * y),
            BinOp::Div => self.run_with(a, b, out, |x, y| x / y),
            BinOp::Max => self.run_with(a, b, out, |x, y| BinOp::Max.apply(x, y)),
            BinOp::Min => self.run_with(a, b, out, |x, y| BinOp::Min.apply(x, y)),
            BinOp::PRelu => self.run_with(a, b, out, |x, y| BinOp::PRelu.apply(x, y)),
            BinOp::Pow => self.run_with(a, b, out, |x, y| BinOp::Pow.apply(x, y)),
        }
    }

    /// The int32 forms of Add, Sub and Mul (wrapping, as the reference's int32 arithmetic).
    pub(crate) fn run_i32(&self, a: &[i32], b: &[i32], out: &mut [i32]) {
        match self.op {
            BinOp::Add => self.run_with(a, b, out, |x: i32, y| x.wrapping_add(y)),
            BinOp::Sub => self.run_with(a, b, out, |x: i32, y| x.wrapping_sub(y)),
            BinOp::Mul => self.run_with(a, b, out, |x: i32, y| x.wrapping_mul(y)),
            _ => unreachable!("only Add, Sub and Mul are lowered for int32"),
        }
    }

    fn run_with<T: Copy + Send + Sync, F: Fn(T, T) -> T + Sync + Send + Copy>(
        &self,
        a: &[T],
        b: &[T],
        out: &mut [T],
        op: F,
    ) {
        let n = out.len();
        if a.len() == n && b.len() == n {
            par_units(
                out,
                1,
                1 << 14,
                #[inline(always)]
                |s, o| {
                    for ((o, &x), &y) in o.iter_mut().zip(&a[s..]).zip(&b[s..]) {
                        *o = op(x, y);
                    }
                },
            );
            return;
        }
        let rank = self.out_dims.len();
        if rank == 0 {
            out[0] = op(a[0], b[0]);
            return;
        }
        let inner = self.out_dims[rank - 1];
        let (ia, ib) = (self.sa[rank - 1], self.sb[rank - 1]);
        par_units(
            out,
            inner,
            64,
            #[inline(always)]
            |rb, part| {
                for (r, o) in (rb..).zip(part.chunks_exact_mut(inner.max(1))) {
                    // Offsets of row r in each input.
                    let (mut oa, mut ob) = (0usize, 0usize);
                    let mut rem = r;
                    for d in (0..rank - 1).rev() {
                        let i = rem % self.out_dims[d];
                        rem /= self.out_dims[d];
                        oa += i * self.sa[d];
                        ob += i * self.sb[d];
                    }
                    // The common row shapes as loops the compiler vectorises.
                    let n = o.len();
                    match (ia, ib) {
                        (1, 1) => {
                            for ((o, &x), &y) in o.iter_mut().zip(&a[oa..oa + n]).zip(&b[ob..]) {
                                *o = op(x, y);
                            }
                        }
                        (1, 0) => {
                            let y = b[ob];
                            for (o, &x) in o.iter_mut().zip(&a[oa..oa + n]) {
                                *o = op(x, y);
                            }
                        }
                        (0, 1) => {
                            let x = a[oa];
                            for (o, &y) in o.iter_mut().zip(&b[ob..ob + n]) {
                                *o = op(x, y);
                            }
                        }
                        _ => {
                            for (j, o) in o.iter_mut().enumerate() {
                                *o = op(a[oa + j * ia], b[ob + j * ib]);
                            }
                        }
                    }
                }
            },
        );
    }
}

/// `y[n, c, ...] = x[n, c, ...] * scale[c] + shift[c]` (inference BatchNormalization, with its
/// four parameters folded into two at compile time).
pub(crate) fn affine(x: &[f32], out: &mut [f32], scale: &[f32], shift: &[f32], inner: usize) {
    let c = scale.len();
    par_units(
        out,
        inner,
        4,
        #[inline(always)]
        |b, part| {
            for (p, o) in (b..).zip(part.chunks_exact_mut(inner.max(1))) {
                let ch = p % c;
                let (a, s) = (scale[ch], shift[ch]);
                for (o, &v) in o.iter_mut().zip(&x[p * inner..(p + 1) * inner]) {
                    *o = v * a + s;
                }
            }
        },
    );
}

/// Gather along one axis with constant indices: `outer` rows, each picking blocks of `inner`
/// elements at `idx` out of `axis_len` blocks.
pub(crate) fn gather(x: &[f32], out: &mut [f32], idx: &[usize], axis_len: usize, inner: usize) {
    let outer = out.len() / (idx.len() * inner).max(1);
    for o in 0..outer {
        let src = &x[o * axis_len * inner..(o + 1) * axis_len * inner];
        let dst = &mut out[o * idx.len() * inner..(o + 1) * idx.len() * inner];
        for (d, &i) in dst.chunks_exact_mut(inner).zip(idx) {
            d.copy_from_slice(&src[i * inner..(i + 1) * inner]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vectorised Sigmoid and SiLU kernels (AVX2 + FMA code where the host has it) give
    /// exactly the scalar `ssc_exec::mlas::logistic` bits, i.e. onnxruntime's, over a sweep that
    /// crosses every exponent range and the clamp; and they stay close to the true logistic.
    #[test]
    fn sigmoid_is_onnxruntime_bit_for_bit() {
        let mut xs: Vec<f32> = (0..40_000).map(|i| -100.0 + i as f32 * 0.005).collect();
        xs.extend([
            0.0,
            -0.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            1e-30,
            -1e-30,
            f32::NAN,
        ]);
        let mut y = vec![0f32; xs.len()];
        unary(UnOp::Sigmoid, &xs, &mut y);
        let mut silu = vec![0f32; xs.len()];
        unary(UnOp::Silu, &xs, &mut silu);
        for ((&x, &g), &s) in xs.iter().zip(&y).zip(&silu) {
            let want = ssc_exec::mlas::logistic(x);
            assert_eq!(
                g.to_bits(),
                want.to_bits(),
                "sigmoid({x}) = {g}, want {want}"
            );
            assert_eq!(s.to_bits(), (x * want).to_bits(), "silu({x})");
            let exact = 1.0 / (1.0 + (-(x as f64)).exp());
            if !x.is_nan() {
                // MLAS forms `p/q + 0.5`, so a small result carries an absolute error of a few
                // ulps of 0.5 (2^-24 each; it even returns 0 near x = -16, where the logistic
                // is 1.2e-7): onnxruntime's accuracy, which this kernel reproduces on purpose.
                let bound = (4.0 * f32::EPSILON as f64 * exact).max(1.5e-7);
                assert!(
                    (g as f64 - exact).abs() <= bound,
                    "sigmoid({x}) = {g}, want {exact}"
                );
            }
        }
        assert_eq!(sigmoid(0.0), 0.5);
        assert_eq!(sigmoid(f32::INFINITY), 1.0);
        assert!(sigmoid(f32::NAN).is_nan());
    }

    #[test]
    fn broadcasting_matches_a_naive_loop() {
        // [2,3,4] + [3,1] and [4] and scalar.
        let a: Vec<f32> = (0..24).map(|i| i as f32).collect();
        let b: Vec<f32> = vec![10.0, 20.0, 30.0];
        let k = Binary::new(BinOp::Sub, &[2, 3, 4], &[3, 1], &[2, 3, 4]).unwrap();
        let mut out = vec![0.0; 24];
        k.run(&a, &b, &mut out);
        for i in 0..24 {
            assert_eq!(out[i], a[i] - b[(i / 4) % 3], "at {i}");
        }
        let c: Vec<f32> = vec![1.0, 2.0, 3.0, 4.0];
        let k = Binary::new(BinOp::Mul, &[4], &[2, 3, 4], &[2, 3, 4]).unwrap();
        k.run(&c, &a, &mut out);
        for i in 0..24 {
            assert_eq!(out[i], c[i % 4] * a[i]);
        }
        assert!(Binary::new(BinOp::Add, &[3], &[2, 4], &[2, 4]).is_none());
    }

    /// Every way two rank-4 shapes broadcast (each dim of each input either full or 1), with
    /// size-1 output dims, against an index-by-index loop: the collapsed index space and the
    /// specialised row loops must not change a single value.
    #[test]
    fn collapsed_broadcasting_matches_a_naive_loop() {
        let out = [2usize, 3, 1, 5];
        let n: usize = out.iter().product();
        for mask_a in 0..16u32 {
            for mask_b in 0..16u32 {
                let shape = |m: u32| -> Vec<usize> {
                    (0..4)
                        .map(|d| if m >> d & 1 == 1 { out[d] } else { 1 })
                        .collect()
                };
                let (sa, sb) = (shape(mask_a), shape(mask_b));
                let (na, nb) = (sa.iter().product::<usize>(), sb.iter().product::<usize>());
                let a: Vec<f32> = (0..na).map(|i| i as f32 * 0.5 + 1.0).collect();
                let b: Vec<f32> = (0..nb).map(|i| i as f32 * 0.25 - 3.0).collect();
                let k = Binary::new(BinOp::Sub, &sa, &sb, &out).unwrap();
                let mut y = vec![f32::NAN; n];
                k.run(&a, &b, &mut y);
                let at = |s: &[usize], idx: &[usize]| {
                    idx.iter()
                        .zip(s)
                        .fold(0, |acc, (&i, &d)| acc * d + if d == 1 { 0 } else { i })
                };
                for (flat, &got) in y.iter().enumerate() {
                    let mut idx = [0usize; 4];
                    let mut r = flat;
                    for d in (0..4).rev() {
                        idx[d] = r % out[d];
                        r /= out[d];
                    }
                    let want = a[at(&sa, &idx)] - b[at(&sb, &idx)];
                    assert_eq!(got, want, "{sa:?} - {sb:?} at {idx:?}");
                }
            }
        }
    }
}
