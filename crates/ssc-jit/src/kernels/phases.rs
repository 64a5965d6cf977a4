//! AVX2 column-phase shuffles for the Winograd input split: eight groups of `M` columns split
//! into their `M` phases in registers, 3 shuffles per vector, where the portable gather
//! compiled to per-element inserts. At a row's end the loads are masked (the lanes past it
//! read as zeros), so narrow rows need no zero-filled copy.
//!
//! Phase `p` of groups `g0 .. g0 + 8` is `x[M g + p]`; `M` is 2, 3 or 4 (F(2x2), F(3x3, 4x4)
//! and F(4x4)).

#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;

/// `dst[p stride + g] = src[M g + p]` for `g < 8`, `p < M`, where `src[i]` reads as 0 for
/// `i >= valid` (`valid >= 8 M`: all of them are read).
///
/// # Safety
/// The host has AVX2; `src + i` is readable for `i < min(valid, 8 M)` and each
/// `dst + p stride` holds 8 writable floats.
#[inline(always)]
pub(crate) unsafe fn split<const M: usize>(
    src: *const f32,
    valid: usize,
    dst: *mut f32,
    stride: usize,
) {
    // SAFETY: the loads read only `src + i` for `i < valid` (the masks drop the other lanes,
    // which do not fault, and their addresses are formed with `wrapping_add`); the stores stay
    // inside the caller's ranges.
    unsafe {
        let full = valid >= 8 * M;
        // The first `valid - at` (clamped to 0..4) lanes of a 4-float load at `src + at`.
        let mask4 = |at: usize| {
            let n = valid.saturating_sub(at).min(4) as i32;
            _mm_cmpgt_epi32(_mm_set1_epi32(n), _mm_setr_epi32(0, 1, 2, 3))
        };
        let load4 = |at: usize| {
            if full {
                _mm_loadu_ps(src.add(at))
            } else {
                _mm_maskload_ps(src.wrapping_add(at), mask4(at))
            }
        };
        if M == 4 {
            // Group g's four phases are the 128-bit lane at `src + 4 g`; pair groups g and
            // g + 4 in one register, then a 4 x 4 transpose per lane gives phase p of groups
            // 0-3 | 4-7, which is phase p of groups 0-7 in order.
            let q = |g: usize| _mm256_set_m128(load4(16 + 4 * g), load4(4 * g));
            let q = [q(0), q(1), q(2), q(3)];
            let lo01 = _mm256_unpacklo_ps(q[0], q[1]);
            let lo23 = _mm256_unpacklo_ps(q[2], q[3]);
            let hi01 = _mm256_unpackhi_ps(q[0], q[1]);
            let hi23 = _mm256_unpackhi_ps(q[2], q[3]);
            _mm256_storeu_ps(dst, _mm256_shuffle_ps::<0x44>(lo01, lo23));
            _mm256_storeu_ps(dst.add(stride), _mm256_shuffle_ps::<0xEE>(lo01, lo23));
            _mm256_storeu_ps(dst.add(2 * stride), _mm256_shuffle_ps::<0x44>(hi01, hi23));
            _mm256_storeu_ps(dst.add(3 * stride), _mm256_shuffle_ps::<0xEE>(hi01, hi23));
        } else if M == 3 {
            // Phase p's eight floats lie at lanes p, p + 3, p + 6 of `a`, and so on through
            // `b` and `c`: two blends gather one of each lane, one permute orders them.
            let load8 = |at: usize| _mm256_set_m128(load4(at + 4), load4(at));
            let (a, b, c) = (load8(0), load8(8), load8(16));
            let pick = |x: __m256, y: __m256, z: __m256, idx: __m256i| {
                // Lanes 0, 3, 6 from `x`, 1, 4, 7 from `y`, 2, 5 from `z`.
                let t = _mm256_blend_ps::<0b1001_0010>(x, y);
                _mm256_permutevar8x32_ps(_mm256_blend_ps::<0b0010_0100>(t, z), idx)
            };
            let p0 = pick(a, b, c, _mm256_setr_epi32(0, 3, 6, 1, 4, 7, 2, 5));
            let p1 = pick(c, a, b, _mm256_setr_epi32(1, 4, 7, 2, 5, 0, 3, 6));
            let p2 = pick(b, c, a, _mm256_setr_epi32(2, 5, 0, 3, 6, 1, 4, 7));
            _mm256_storeu_ps(dst, p0);
            _mm256_storeu_ps(dst.add(stride), p1);
            _mm256_storeu_ps(dst.add(2 * stride), p2);
        } else {
            debug_assert_eq!(M, 2);
            // Even and odd entries of both vectors give groups 0, 1, 4, 5 | 2, 3, 6, 7; one
            // 64-bit permute puts them in order.
            let load8 = |at: usize| _mm256_set_m128(load4(at + 4), load4(at));
            let (a, b) = (load8(0), load8(8));
            let order =
                |x: __m256| _mm256_castpd_ps(_mm256_permute4x64_pd::<0xD8>(_mm256_castps_pd(x)));
            _mm256_storeu_ps(dst, order(_mm256_shuffle_ps::<0x88>(a, b)));
            _mm256_storeu_ps(dst.add(stride), order(_mm256_shuffle_ps::<0xDD>(a, b)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check<const M: usize>(valid: usize) {
        // 8 M floats, of which the first `valid` are the row's.
        let src: Vec<f32> = (0..8 * M).map(|i| i as f32 + 1.0).collect();
        let mut ph = [[f32::NAN; 8]; M];
        // SAFETY: AVX2 was detected; `src` holds 8 M floats, each phase 8.
        unsafe { split::<M>(src.as_ptr(), valid, ph.as_mut_ptr() as *mut f32, 8) };
        for (p, ph) in ph.iter().enumerate() {
            for (g, &v) in ph.iter().enumerate() {
                let i = M * g + p;
                let want = if i < valid { src[i] } else { 0.0 };
                assert_eq!(v, want, "M={M} valid {valid} phase {p} group {g}");
            }
        }
    }

    #[test]
    fn split_takes_every_mth_float_and_zeros_past_the_row() {
        if !crate::kernels::par::has_avx2_fma() {
            return;
        }
        for valid in 0..=33 {
            check::<2>(valid);
            check::<3>(valid);
            check::<4>(valid);
        }
    }
}
