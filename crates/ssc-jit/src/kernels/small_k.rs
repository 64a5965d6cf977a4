//! A register-blocked AVX2 + FMA product for short inner dimensions, `dst = u · v` with `u`
//! small and dense and `v` read in place with any row stride: Winograd's per-position products
//! of groups of up to 64 channels, where the `gemm` crate's packing costs as much as the
//! multiplies (`kernels::winograd::Winograd::choose`). (Tried on 1x1 convolutions of up to 128
//! channels too: no faster than `gemm` there, in ResNet's and MobileNetV2's layers.)

#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;

/// `dst[k][t] = Σ_c u[k][c] · v[c][t]` for `k < co` and `t < n8` (a multiple of 8): `u` is
/// `(pointer, ci, co)` with rows of `ci`; `v` and `dst` have rows of stride `tb`. Blocks of
/// 4 output rows x 16 columns keep 8 accumulators in registers, each input vector loaded
/// once per 4 FMAs. (4 x 24, with 12 accumulators, spilled one to the stack in the inner
/// loop: the dense 64-channel F(4x4) layer on 56x56 went from ~1.9 to ~1.0-1.4 ms
/// without it.)
///
/// # Safety
/// The host has AVX2 and FMA; `u` holds `co * ci` floats, `v` `ci` rows of `n8` floats and
/// `dst` `co` rows of `n8` (strides `tb`), and `dst` overlaps neither.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn small_k(
    (u, ci, co): (*const f32, usize, usize),
    v: *const f32,
    dst: *mut f32,
    tb: usize,
    n8: usize,
) {
    // SAFETY: every block reads and writes inside the bounds the caller guarantees.
    unsafe {
        // Whole 16-column blocks, 4 rows at a time.
        let n16 = n8 / 16 * 16;
        let mut k = 0;
        while k + 4 <= co {
            rows::<4>(u.add(k * ci), ci, v, dst.add(k * tb), tb, n16);
            k += 4;
        }
        while k < co {
            rows::<1>(u.add(k * ci), ci, v, dst.add(k * tb), tb, n16);
            k += 1;
        }
        if n16 < n8 {
            // The last 8 columns, 8 rows at a time: 8 accumulators, as many as the 4 x 16
            // blocks keep, so the FMAs' latency stays hidden (4 rows of one vector ran the
            // tail at half speed).
            let (v, dst) = (v.add(n16), dst.add(n16));
            let mut k = 0;
            while k + 8 <= co {
                block::<8, 1>(u.add(k * ci), ci, v, dst.add(k * tb), tb);
                k += 8;
            }
            while k < co {
                block::<1, 1>(u.add(k * ci), ci, v, dst.add(k * tb), tb);
                k += 1;
            }
        }
    }
}

/// `KB` output rows, all `n16` columns (a multiple of 16).
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn rows<const KB: usize>(
    u: *const f32,
    ci: usize,
    v: *const f32,
    dst: *mut f32,
    tb: usize,
    n16: usize,
) {
    // SAFETY: column blocks stay below `n16` (see `small_k`).
    unsafe {
        for t in (0..n16).step_by(16) {
            block::<KB, 2>(u, ci, v.add(t), dst.add(t), tb);
        }
    }
}

/// `KB` output rows x `NV` vectors of columns.
#[target_feature(enable = "avx2,fma")]
#[inline]
#[allow(clippy::needless_range_loop)] // `kk` and `j` index register arrays in step
unsafe fn block<const KB: usize, const NV: usize>(
    u: *const f32,
    ci: usize,
    v: *const f32,
    dst: *mut f32,
    tb: usize,
) {
    // SAFETY: see `small_k`.
    unsafe {
        let mut acc = [[_mm256_setzero_ps(); NV]; KB];
        for c in 0..ci {
            let x: [__m256; NV] = std::array::from_fn(|j| _mm256_loadu_ps(v.add(c * tb + 8 * j)));
            for kk in 0..KB {
                let w = _mm256_broadcast_ss(&*u.add(kk * ci + c));
                for j in 0..NV {
                    acc[kk][j] = _mm256_fmadd_ps(w, x[j], acc[kk][j]);
                }
            }
        }
        for kk in 0..KB {
            for j in 0..NV {
                _mm256_storeu_ps(dst.add(kk * tb + 8 * j), acc[kk][j]);
            }
        }
    }
}
