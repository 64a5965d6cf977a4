//! The transcendental activations (SiLU, GELU) over slices in explicit AVX-512 code: their
//! auto-vectorised scalar forms ran at a tenth of Relu's speed (EfficientNet's 16 -> 96 1x1
//! conv on 112x112 took 2.4 ms with its SiLU epilogue against 0.5 ms with Relu; ConvNeXt's
//! GELU chains cost 19 ms of its 121), where ORT's fused QuickGelu/Gelu run at memory speed.
//!
//! SiLU is onnxruntime's arithmetic bit for bit (`ssc_exec::mlas::logistic`'s rational form,
//! so a quantiser after it rounds as in ORT); GELU's `exp` is Cephes' polynomial on the reduced
//! argument, with FMA, and the power of two applied by `vscalefps` (which also saturates to 0
//! and inf past the range). Off AVX-512 hosts the same formulas run as plain loops the compiler
//! vectorises.

use crate::kernels::eltwise::sigmoid;

/// `x * sigmoid(x)` of every element, in place (`eltwise::sigmoid`'s bits).
pub(crate) fn silu_in_place(y: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if crate::kernels::par::has_avx512f() {
        // SAFETY: AVX-512F detected; source and destination are the same valid slice.
        unsafe { avx512::silu(y.as_ptr(), y.as_mut_ptr(), y.len()) };
        return;
    }
    for v in y.iter_mut() {
        *v *= sigmoid(*v);
    }
}

/// `dst[i] = gelu(src[i])`, GELU with the exact erf form `x/2 (1 + erf(x / sqrt 2))`.
pub(crate) fn gelu(src: &[f32], dst: &mut [f32]) {
    let n = src.len().min(dst.len());
    #[cfg(target_arch = "x86_64")]
    if crate::kernels::par::has_avx512f() {
        // SAFETY: AVX-512F detected; both slices hold `n` elements.
        unsafe { avx512::gelu(src.as_ptr(), dst.as_mut_ptr(), n) };
        return;
    }
    for (d, &x) in dst[..n].iter_mut().zip(&src[..n]) {
        *d = gelu_one(x);
    }
}

/// Abramowitz & Stegun 7.1.26: `erfc(z) ~ t P(t) e^{-z^2}`, `t = 1 / (1 + P0 z)`, `z >= 0`,
/// absolute error below 1.5e-7. GELU needs `erfc` rather than `erf`: for `x < 0` it is
/// `x/2 erfc(|x| / sqrt 2)`, for `x >= 0` `x (1 - erfc(x / sqrt 2) / 2)`, so the error in the
/// output stays below `|x| 7.5e-8` on both sides.
const P0: f32 = 0.327_591_1;
const A: [f32; 5] = [
    0.254_829_6,
    -0.284_496_74,
    1.421_413_7,
    -1.453_152,
    1.061_405_4,
];

/// GELU of one value by the formula the AVX-512 path uses (the reference for its tests and the
/// fallback off AVX-512).
#[inline(always)]
pub(crate) fn gelu_one(x: f32) -> f32 {
    let z = x.abs() * std::f32::consts::FRAC_1_SQRT_2;
    let t = 1.0 / (1.0 + P0 * z);
    let p = t * (A[0] + t * (A[1] + t * (A[2] + t * (A[3] + t * A[4]))));
    let e = crate::kernels::eltwise::exp_nonpositive(-(z * z));
    let h = 0.5 * p * e;
    x * if x >= 0.0 { 1.0 - h } else { h }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{A, P0};

    /// `e^x`, 16 lanes: `x = n ln2 + r`, `|r| <= ln2 / 2`, Cephes' degree-5 polynomial for
    /// `e^r` (relative error ~1e-7) and `2^n` by `vscalefps` (0 and inf past the range; the
    /// clamp keeps `n` small enough to be exact). NaN stays NaN.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn exp(x: __m512) -> __m512 {
        let x = _mm512_max_ps(
            _mm512_min_ps(x, _mm512_set1_ps(100.0)),
            _mm512_set1_ps(-100.0),
        );
        let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
            _mm512_mul_ps(x, _mm512_set1_ps(std::f32::consts::LOG2_E)),
        );
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693_359_4), x);
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.121_944_4e-4), r);
        let mut p = _mm512_set1_ps(1.987_569_1e-4);
        for c in [
            1.398_199_9e-3,
            8.333_452e-3,
            4.166_579_6e-2,
            1.666_666_5e-1,
            0.5,
        ] {
            p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
        }
        let r2 = _mm512_mul_ps(r, r);
        let y = _mm512_add_ps(_mm512_fmadd_ps(p, r2, r), _mm512_set1_ps(1.0));
        _mm512_scalef_ps(y, n)
    }

    /// The lanes of `src..src+n` (a tail of fewer than 16 through masked loads and stores).
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn map(src: *const f32, dst: *mut f32, n: usize, f: impl Fn(__m512) -> __m512) {
        let mut i = 0;
        // SAFETY: `i + 16 <= n` in the loop, the tail's mask covers `n - i < 16` lanes; the
        // caller guarantees `n` readable floats at `src` and writable at `dst`.
        unsafe {
            while i + 16 <= n {
                let x = _mm512_loadu_ps(src.add(i));
                _mm512_storeu_ps(dst.add(i), f(x));
                i += 16;
            }
            if i < n {
                let m: __mmask16 = ((1u32 << (n - i)) - 1) as u16;
                let x = _mm512_maskz_loadu_ps(m, src.add(i));
                _mm512_mask_storeu_ps(dst.add(i), m, f(x));
            }
        }
    }

    /// `x * ssc_exec::mlas::logistic(x)` bit for bit (onnxruntime's Sigmoid: the same clamp,
    /// the same FMA Horner steps, then `p v / q + 0.5` unfused), 16 lanes. `max`/`min` take the
    /// bound first, so a NaN lane stays NaN as `f32::clamp` keeps it.
    ///
    /// # Safety
    /// AVX-512F; `n` floats readable at `src` and writable at `dst` (they may be the same).
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn silu(src: *const f32, dst: *mut f32, n: usize) {
        use ssc_exec::mlas::{LOGISTIC_P, LOGISTIC_Q, LOGISTIC_RANGE};
        let clamp = |v: __m512, lo: f32, hi: f32| {
            _mm512_min_ps(_mm512_set1_ps(hi), _mm512_max_ps(_mm512_set1_ps(lo), v))
        };
        // SAFETY: forwarded from the caller.
        unsafe {
            map(src, dst, n, |x| {
                let v = clamp(x, -LOGISTIC_RANGE, LOGISTIC_RANGE);
                let v2 = _mm512_mul_ps(v, v);
                let mut p = _mm512_set1_ps(LOGISTIC_P[0]);
                for a in &LOGISTIC_P[1..] {
                    p = _mm512_fmadd_ps(p, v2, _mm512_set1_ps(*a));
                }
                let mut q = _mm512_set1_ps(LOGISTIC_Q[0]);
                for b in &LOGISTIC_Q[1..] {
                    q = _mm512_fmadd_ps(q, v2, _mm512_set1_ps(*b));
                }
                let s = _mm512_add_ps(_mm512_div_ps(_mm512_mul_ps(p, v), q), _mm512_set1_ps(0.5));
                _mm512_mul_ps(x, clamp(s, 0.0, 1.0))
            })
        }
    }

    /// GELU by [`super::gelu_one`]'s formula.
    ///
    /// # Safety
    /// AVX-512F; `n` floats readable at `src` and writable at `dst` (they may be the same).
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn gelu(src: *const f32, dst: *mut f32, n: usize) {
        let one = _mm512_set1_ps(1.0);
        let half = _mm512_set1_ps(0.5);
        // SAFETY: forwarded from the caller.
        unsafe {
            map(src, dst, n, |x| {
                let z = _mm512_mul_ps(
                    _mm512_abs_ps(x),
                    _mm512_set1_ps(std::f32::consts::FRAC_1_SQRT_2),
                );
                let t = _mm512_div_ps(one, _mm512_fmadd_ps(z, _mm512_set1_ps(P0), one));
                let mut p = _mm512_set1_ps(A[4]);
                for c in [A[3], A[2], A[1], A[0]] {
                    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(c));
                }
                p = _mm512_mul_ps(p, t);
                let e = exp(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_mul_ps(z, z)));
                let h = _mm512_mul_ps(_mm512_mul_ps(p, e), half);
                let pos = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(x, _mm512_setzero_ps());
                let f = _mm512_mask_blend_ps(pos, h, _mm512_sub_ps(one, h));
                _mm512_mul_ps(x, f)
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// erfc in f64, `z >= 0`: 1 - the Taylor series of erf below 2 (terms stay below e^4, so
    /// no cancellation to speak of), the continued fraction
    /// `e^{-z^2} / sqrt(pi) / (z + 1/2 / (z + 1 / (z + 3/2 / (z + ...))))` above.
    fn erfc64(z: f64) -> f64 {
        if z < 2.0 {
            let (mut term, mut sum, mut k) = (z, z, 0.0);
            while term.abs() > 1e-18 {
                k += 1.0;
                term *= -z * z / k;
                sum += term / (2.0 * k + 1.0);
            }
            return 1.0 - sum * std::f64::consts::FRAC_2_SQRT_PI;
        }
        let mut f = z;
        for n in (1..80).rev() {
            f = z + n as f64 / 2.0 / f;
        }
        (-z * z).exp() / std::f64::consts::PI.sqrt() / f
    }

    fn gelu64(x: f64) -> f64 {
        let h = 0.5 * erfc64(x.abs() / std::f64::consts::SQRT_2);
        x * if x < 0.0 { h } else { 1.0 - h }
    }

    /// A sweep across the range every path sees, in a length with a tail (16k + 7).
    fn sweep() -> Vec<f32> {
        (0..16 * 700 + 7)
            .map(|i| (i as f32 - 5600.0) * 0.0031)
            .collect()
    }

    /// GELU's error stays below `|x| 2.5e-7` (A&S's 1.5e-7 on erfc, halved, plus rounding), on
    /// both sides of 0, through the slice paths and the scalar formula, with the special values.
    #[test]
    fn gelu_matches_f64() {
        let xs = sweep();
        let mut out = vec![0.0; xs.len()];
        gelu(&xs, &mut out);
        for (i, &x) in xs.iter().enumerate() {
            let w = gelu64(x as f64);
            for g in [out[i], gelu_one(x)] {
                let err = (g as f64 - w).abs();
                assert!(
                    err <= 2.5e-7 * (x.abs() as f64).max(1e-3),
                    "gelu({x}) = {g}, want {w}"
                );
            }
        }
        let mut s = [0.0, f32::INFINITY, -40.0, 40.0, f32::NAN];
        gelu(&s.clone(), &mut s);
        assert_eq!([s[0], s[1], s[3]], [0.0, f32::INFINITY, 40.0]);
        assert!(s[2].abs() < 1e-30 && s[4].is_nan());
    }

    /// SiLU gives `x * ssc_exec::mlas::logistic(x)`'s bits (onnxruntime's), at every tail
    /// length 0..=17 and over the sweep, with the special values.
    #[test]
    fn silu_is_onnxruntime_bit_for_bit() {
        let mut xs = sweep();
        xs.extend([
            0.0,
            -0.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            -200.0,
            200.0,
            f32::NAN,
        ]);
        for len in (0..=17).chain([xs.len()]) {
            let mut y = xs[..len].to_vec();
            silu_in_place(&mut y);
            for (&g, &x) in y.iter().zip(&xs[..len]) {
                let want = x * ssc_exec::mlas::logistic(x);
                assert!(
                    g.to_bits() == want.to_bits() || (g.is_nan() && want.is_nan()),
                    "silu({x}) = {g}, want {want}"
                );
            }
        }
    }
}
