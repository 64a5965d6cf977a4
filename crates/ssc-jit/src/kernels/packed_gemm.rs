//! A GEMM whose right operand is a compile-time constant, packed once when the model compiles
//! (the `gemm` crate packs B again on every call: ConvNeXt's 49x768x3072 MatMuls ran at 78
//! GFLOP/s against 103 for its 3136-row ones, ddddocr's 20x1024x8210 head packed 33 MB per
//! call). AVX-512 only: B is cut into blocks of at most [`KC`] rows and panels of [`NR`] = 32
//! columns (two vectors, zero past the last column), each panel `[k][32]` contiguous; a
//! register tile of up to [`MR`] rows of A x 32 columns keeps its 2 * MR accumulators in
//! registers while A's values are broadcast straight from its rows (A is not packed). Loop
//! order (GotoBLAS): blocks of [`MC`] rows of A (in L2), then K blocks, then panels (one in L1
//! while every row tile of the block reads it), then row tiles, balanced so that no tile is a
//! lone row (49 rows run as 10+10+10+10+9).

#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;

use crate::kernels::par::{for_tasks, SendPtr};

/// Columns per panel (two AVX-512 vectors).
const NR: usize = 32;
/// Most rows per register tile (24 accumulators + 2 B vectors + a broadcast: 27 of 32 zmm).
const MR: usize = 12;
/// Most K rows per packed block (a 32 x 256 panel is 32 KB).
const KC: usize = 256;
/// Rows of A per cache block (120 x 256 floats = 120 KB of L2).
const MC: usize = 120;

/// A constant `k x n` matrix packed for [`PackedB::gemm`].
pub(crate) struct PackedB {
    k: usize,
    n: usize,
    /// Rows per K block (the last may be shorter).
    kc: usize,
    /// Per K block, per panel: `[rows of the block][NR]`.
    data: Vec<f32>,
}

impl PackedB {
    /// Packs `b`, whose element `(p, j)` is `b[p * rs + j * cs]` (`cs = k, rs = 1` packs a
    /// transposed B without copying it first).
    pub(crate) fn new(b: &[f32], (k, n): (usize, usize), (rs, cs): (usize, usize)) -> PackedB {
        let blocks = k.div_ceil(KC).max(1);
        let kc = k.div_ceil(blocks).max(1);
        let panels = n.div_ceil(NR);
        let mut data = vec![0f32; k * panels * NR];
        for k0 in (0..k).step_by(kc) {
            let kl = kc.min(k - k0);
            let base = k0 * panels * NR;
            for jp in 0..panels {
                let dst = &mut data[base + jp * kl * NR..][..kl * NR];
                let cols = NR.min(n - jp * NR);
                for (p, row) in dst.chunks_exact_mut(NR).enumerate() {
                    for (c, d) in row[..cols].iter_mut().enumerate() {
                        *d = b[(k0 + p) * rs + (jp * NR + c) * cs];
                    }
                }
            }
        }
        PackedB { k, n, kc, data }
    }

    /// `y (m x n, row-major) = (accumulate ? y : 0) + a (m x k, row stride lda) * B`.
    /// The host must have AVX-512F.
    pub(crate) fn gemm(&self, m: usize, a: &[f32], lda: usize, y: &mut [f32], accumulate: bool) {
        let (k, n) = (self.k, self.n);
        if m == 0 || n == 0 {
            return;
        }
        assert!(lda >= k && a.len() >= (m - 1) * lda + k && y.len() >= m * n);
        assert!(crate::kernels::par::has_avx512f());
        let panels = n.div_ceil(NR);
        let mblocks = m.div_ceil(MC);
        // Tasks: row blocks x groups of panels, enough of them to balance the pool.
        let threads = rayon::current_num_threads();
        let ngroups = if threads > 1 {
            (4 * threads).div_ceil(mblocks).clamp(1, panels)
        } else {
            1
        };
        let out = SendPtr(y.as_mut_ptr());
        for_tasks(mblocks * ngroups, 1, |t, _| {
            let (mb, ng) = (t / ngroups, t % ngroups);
            let (m0, m1) = (mb * MC, ((mb + 1) * MC).min(m));
            let (j0, j1) = (panels * ng / ngroups, panels * (ng + 1) / ngroups);
            // SAFETY: the task writes rows m0..m1 and columns of panels j0..j1 of y, disjoint
            // from every other task's; the asserts above bound every read and write.
            unsafe { self.block(a.as_ptr(), lda, out.get(), (m0, m1), (j0, j1), accumulate) };
        });
    }

    /// Rows `m0..m1` x panels `j0..j1` of the product, every K block.
    #[target_feature(enable = "avx512f")]
    unsafe fn block(
        &self,
        a: *const f32,
        lda: usize,
        y: *mut f32,
        (m0, m1): (usize, usize),
        (j0, j1): (usize, usize),
        accumulate: bool,
    ) {
        let (k, n, kc) = (self.k, self.n, self.kc);
        let panels = n.div_ceil(NR);
        let rows = m1 - m0;
        let tiles = rows.div_ceil(MR);
        for k0 in (0..k).step_by(kc) {
            let kl = kc.min(k - k0);
            let acc = accumulate || k0 > 0;
            for jp in j0..j1 {
                let b = self.data.as_ptr().add(k0 * panels * NR + jp * kl * NR);
                let cols = NR.min(n - jp * NR);
                let full = (1u32 << cols.min(16)) - 1;
                let masks = (
                    if cols >= 16 { 0xffff } else { full as u16 },
                    if cols > 16 {
                        ((1u32 << (cols - 16)) - 1) as u16
                    } else {
                        0
                    },
                );
                for t in 0..tiles {
                    let r0 = m0 + rows * t / tiles;
                    let r1 = m0 + rows * (t + 1) / tiles;
                    let ap = a.add(r0 * lda + k0);
                    let yp = y.add(r0 * n + jp * NR);
                    let args = (ap, lda, b, kl, yp, n, masks, acc);
                    match r1 - r0 {
                        1 => tile::<1>(args),
                        2 => tile::<2>(args),
                        3 => tile::<3>(args),
                        4 => tile::<4>(args),
                        5 => tile::<5>(args),
                        6 => tile::<6>(args),
                        7 => tile::<7>(args),
                        8 => tile::<8>(args),
                        9 => tile::<9>(args),
                        10 => tile::<10>(args),
                        11 => tile::<11>(args),
                        _ => tile::<12>(args),
                    }
                }
            }
        }
    }
}

type TileArgs = (
    *const f32,
    usize,
    *const f32,
    usize,
    *mut f32,
    usize,
    (u16, u16),
    bool,
);

/// `R` rows x one panel over `kl` K rows: `y[r][..] (+)= sum_p a[r * lda + p] * b[p][..]`,
/// the two column vectors stored under `masks`.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn tile<const R: usize>((a, lda, b, kl, y, ldy, masks, acc): TileArgs) {
    let mut c0 = [_mm512_setzero_ps(); R];
    let mut c1 = [_mm512_setzero_ps(); R];
    for p in 0..kl {
        let b0 = _mm512_loadu_ps(b.add(p * NR));
        let b1 = _mm512_loadu_ps(b.add(p * NR + 16));
        for r in 0..R {
            let av = _mm512_set1_ps(*a.add(r * lda + p));
            c0[r] = _mm512_fmadd_ps(av, b0, c0[r]);
            c1[r] = _mm512_fmadd_ps(av, b1, c1[r]);
        }
    }
    let (m0, m1) = (masks.0 as __mmask16, masks.1 as __mmask16);
    for r in 0..R {
        let yr = y.add(r * ldy);
        let (mut v0, mut v1) = (c0[r], c1[r]);
        if acc {
            v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, yr));
            v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, yr.add(16)));
        }
        _mm512_mask_storeu_ps(yr, m0, v0);
        _mm512_mask_storeu_ps(yr.add(16), m1, v1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(m: usize, k: usize, n: usize, a: &[f32], lda: usize, b: &[f32]) -> Vec<f32> {
        let mut y = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut s = 0f64;
                for p in 0..k {
                    s += a[i * lda + p] as f64 * b[p * n + j] as f64;
                }
                y[i * n + j] = s as f32;
            }
        }
        y
    }

    fn vals(len: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2654435761).wrapping_add(12345);
        (0..len)
            .map(|_| {
                s = s.wrapping_mul(1664525).wrapping_add(1013904223);
                (s >> 8) as f32 / (1u32 << 24) as f32 - 0.5
            })
            .collect()
    }

    fn check(m: usize, k: usize, n: usize, lda_pad: usize, trans: bool, accumulate: bool) {
        let lda = k + lda_pad;
        let a = vals(m.max(1) * lda, 1 + m as u32);
        let b = vals(k * n, 7 + n as u32);
        let packed = if trans {
            let bt: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
            PackedB::new(&bt, (k, n), (1, k))
        } else {
            PackedB::new(&b, (k, n), (n, 1))
        };
        let init = vals(m * n, 99);
        let mut y = if accumulate {
            init.clone()
        } else {
            vec![f32::NAN; m * n]
        };
        packed.gemm(m, &a, lda, &mut y, accumulate);
        let mut want = reference(m, k, n, &a, lda, &b);
        if accumulate {
            want.iter_mut().zip(&init).for_each(|(w, i)| *w += i);
        }
        for (i, (g, w)) in y.iter().zip(&want).enumerate() {
            assert!(
                (g - w).abs() <= 1e-4 * (1.0 + w.abs()),
                "{m}x{k}x{n} lda {lda} trans {trans} acc {accumulate}: [{i}] {g} vs {w}"
            );
        }
    }

    #[test]
    fn matches_the_reference_on_near_miss_shapes() {
        if !crate::kernels::par::has_avx512f() {
            return;
        }
        // Row tails (1, 11, 13, 49, 121 rows: balanced tiles and a second MC block), column
        // tails (1, 15, 17, 33, 47 columns), K across one and several blocks (1, 257, 600).
        for &(m, k, n) in &[
            (1, 1, 1),
            (2, 5, 15),
            (11, 17, 17),
            (13, 96, 33),
            (49, 257, 47),
            (121, 600, 64),
            (250, 31, 100),
        ] {
            for &(pad, trans, acc) in &[(0, false, false), (3, true, false), (0, false, true)] {
                check(m, k, n, pad, trans, acc);
            }
        }
    }

    #[test]
    fn two_threads_give_the_same_bytes() {
        if !crate::kernels::par::has_avx512f() {
            return;
        }
        let (m, k, n) = (130, 300, 200);
        let a = vals(m * k, 3);
        let b = vals(k * n, 4);
        let p = PackedB::new(&b, (k, n), (n, 1));
        let mut one = vec![0f32; m * n];
        p.gemm(m, &a, k, &mut one, false);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let mut two = vec![0f32; m * n];
        pool.install(|| p.gemm(m, &a, k, &mut two, false));
        assert_eq!(one, two);
    }
}
