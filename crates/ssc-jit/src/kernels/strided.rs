//! Data movement as one strided gather: Transpose, Slice and each output of Split are all
//! "output element `i` is input element `base + sum_k i_k * stride_k`", so one kernel runs them,
//! with the index space collapsed at compile time and the two shapes that carry the traffic
//! specialised: contiguous rows (a copy per row) and 2-D transposes (8 x 8 tiles through AVX2
//! registers).

use crate::kernels::par::{for_ranges, SendPtr};

/// A strided gather: `y[i_0, .., i_{r-1}] = x[base + sum_k i_k * strides[k]]`, `y` contiguous.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Strided {
    base: isize,
    dims: Vec<usize>,
    strides: Vec<isize>,
}

impl Strided {
    /// The gather over output dims `dims` with input element strides `strides` from `base`,
    /// collapsed: size-1 dims dropped, and neighbouring dims merged where the outer one steps
    /// as far as the whole inner one.
    pub(crate) fn new(base: isize, dims: &[usize], strides: &[isize]) -> Strided {
        assert_eq!(dims.len(), strides.len());
        let mut d: Vec<usize> = Vec::new();
        let mut s: Vec<isize> = Vec::new();
        for (&n, &st) in dims.iter().zip(strides) {
            if n == 1 {
                continue;
            }
            if let (Some(&ln), Some(&ls)) = (d.last(), s.last()) {
                if ls == st * n as isize {
                    let k = d.len() - 1;
                    d[k] = ln * n;
                    s[k] = st;
                    continue;
                }
            }
            d.push(n);
            s.push(st);
        }
        Strided {
            base,
            dims: d,
            strides: s,
        }
    }

    /// Transpose of a contiguous tensor of shape `shape` by `perm`.
    pub(crate) fn transpose(shape: &[usize], perm: &[usize]) -> Strided {
        let st = contiguous_strides(shape);
        let dims: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
        let strides: Vec<isize> = perm.iter().map(|&p| st[p]).collect();
        Strided::new(0, &dims, &strides)
    }

    /// A box of a contiguous tensor of shape `shape`: on each axis, `n[k]` elements from
    /// `start[k]` in steps of `step[k]` (which may be negative).
    pub(crate) fn slice(shape: &[usize], start: &[usize], n: &[usize], step: &[isize]) -> Strided {
        let st = contiguous_strides(shape);
        let base = start.iter().zip(&st).map(|(&a, &s)| a as isize * s).sum();
        let strides: Vec<isize> = step.iter().zip(&st).map(|(&a, &s)| a * s).collect();
        Strided::new(base, n, &strides)
    }

    /// Output elements.
    pub(crate) fn len(&self) -> usize {
        self.dims.iter().product()
    }

    /// Whether the gather is one contiguous block of the input (`x[base..base + len]`).
    pub(crate) fn contiguous(&self) -> Option<usize> {
        match self.strides.as_slice() {
            [] | [1] => usize::try_from(self.base).ok(),
            _ => None,
        }
    }

    /// A short description for step reports.
    pub(crate) fn describe(&self) -> String {
        let r = self.dims.len();
        if self.contiguous().is_some() {
            return "copy of one block".into();
        }
        match self.strides.last() {
            None => "copy".into(),
            Some(1) if r == 1 => "copy".into(),
            Some(1) => format!("rows of {}", self.dims[r - 1]),
            _ if self.strides.contains(&1) => "transpose 8x8 tiles".into(),
            _ => "gather".into(),
        }
    }

    /// `y = gather(x)`; `y.len()` must be [`len`](Self::len) and every index in bounds of `x`
    /// (checked).
    pub(crate) fn run(&self, x: &[f32], y: &mut [f32]) {
        assert_eq!(y.len(), self.len());
        if y.is_empty() {
            return;
        }
        assert!(self.in_bounds(x.len()), "strided gather out of bounds");
        let r = self.dims.len();
        if r == 0 {
            y[0] = x[self.base as usize];
            return;
        }
        // Read only; a `SendPtr` so that the parallel tasks can share it.
        let xs = SendPtr(x.as_ptr().cast_mut());
        let yp = SendPtr(y.as_mut_ptr());
        if self.strides[r - 1] == 1 {
            // Rows: one contiguous copy per output row.
            let row = self.dims[r - 1];
            let rows = self.len() / row;
            let outer = &self.dims[..r - 1];
            let os = &self.strides[..r - 1];
            for_ranges(
                rows,
                (4096 / row).max(1),
                #[inline(always)]
                |b, e| {
                    let xp = xs.get().cast_const();
                    for i in b..e {
                        let off = self.base + offset(i, outer, os);
                        // SAFETY: bounds checked above (`in_bounds`), output rows `i` are disjoint
                        // between tasks.
                        unsafe {
                            std::ptr::copy_nonoverlapping(
                                xp.offset(off),
                                yp.get().add(i * row),
                                row,
                            );
                        }
                    }
                },
            );
            return;
        }
        if let Some(q) = self.strides.iter().position(|&s| s == 1) {
            self.run_tiles(xs, yp, q);
            return;
        }
        // No unit stride: an element-by-element gather along the innermost dim.
        let row = self.dims[r - 1];
        let rows = self.len() / row;
        let (outer, os, si) = (
            &self.dims[..r - 1],
            &self.strides[..r - 1],
            self.strides[r - 1],
        );
        for_ranges(
            rows,
            (1024 / row).max(1),
            #[inline(always)]
            |b, e| {
                let xp = xs.get().cast_const();
                for i in b..e {
                    let off = self.base + offset(i, outer, os);
                    for j in 0..row {
                        // SAFETY: as above.
                        unsafe { *yp.get().add(i * row + j) = *xp.offset(off + j as isize * si) };
                    }
                }
            },
        );
    }

    /// Output dims `q` (unit input stride) and `r - 1` (contiguous output) form 2-D transposes,
    /// one per index of the other dims; they run as 8 x 8 tiles, in parallel over (outer
    /// index, block of 8 along `q`).
    fn run_tiles(&self, xs: SendPtr, yp: SendPtr, q: usize) {
        let r = self.dims.len();
        let (a, b) = (self.dims[q], self.dims[r - 1]);
        let sb = self.strides[r - 1];
        let ystr = contiguous_strides(&self.dims);
        let ysq = ystr[q] as usize;
        // The other dims, with their input strides and output strides.
        let others: Vec<(usize, isize, usize)> = (0..r - 1)
            .filter(|&k| k != q)
            .map(|k| (self.dims[k], self.strides[k], ystr[k] as usize))
            .collect();
        let n_outer: usize = others.iter().map(|o| o.0).product();
        let a_blocks = a.div_ceil(8);
        let avx2 = crate::kernels::par::has_avx2_fma();
        for_ranges(
            n_outer * a_blocks,
            1,
            #[inline(always)]
            |t0, t1| {
                let xp = xs.get().cast_const();
                for t in t0..t1 {
                    let (o, ab) = (t / a_blocks, t % a_blocks);
                    let (mut xo, mut yo) = (self.base, 0usize);
                    let mut rem = o;
                    for &(n, xs, ys) in others.iter().rev() {
                        let i = rem % n;
                        rem /= n;
                        xo += i as isize * xs;
                        yo += i * ys;
                    }
                    let a0 = ab * 8;
                    let na = 8.min(a - a0);
                    let mut b0 = 0;
                    while b0 < b {
                        let nb = 8.min(b - b0);
                        // Tile: y[a0 + i][b0 + j] = x[(a0 + i) + (b0 + j) * sb].
                        let src = xo + a0 as isize + b0 as isize * sb;
                        let dst = yo + a0 * ysq + b0;
                        // SAFETY: every (a0 + i, b0 + j) is inside the bounds checked by `run`;
                        // tasks own disjoint blocks of `q` indices, so their outputs are disjoint.
                        unsafe {
                            #[cfg(target_arch = "x86_64")]
                            if avx2 && na == 8 && nb == 8 {
                                tile8_avx2(xp.offset(src), sb, yp.get().add(dst), ysq);
                                b0 += 8;
                                continue;
                            }
                            let _ = avx2;
                            for i in 0..na {
                                for j in 0..nb {
                                    *yp.get().add(dst + i * ysq + j) =
                                        *xp.offset(src + i as isize + j as isize * sb);
                                }
                            }
                        }
                        b0 += 8;
                    }
                }
            },
        );
    }

    /// Whether every index the gather reads is inside `0..n`.
    fn in_bounds(&self, n: usize) -> bool {
        let (mut lo, mut hi) = (self.base, self.base);
        for (&d, &s) in self.dims.iter().zip(&self.strides) {
            let span = (d as isize - 1) * s;
            if span < 0 {
                lo += span;
            } else {
                hi += span;
            }
        }
        lo >= 0 && (hi as usize) < n
    }
}

/// Row-major element strides of a contiguous tensor.
pub(crate) fn contiguous_strides(shape: &[usize]) -> Vec<isize> {
    let mut st = vec![1isize; shape.len()];
    for k in (0..shape.len().saturating_sub(1)).rev() {
        st[k] = st[k + 1] * shape[k + 1] as isize;
    }
    st
}

/// The input offset of row `i` of a row-major walk over `dims` with input strides `strides`.
#[inline(always)]
fn offset(mut i: usize, dims: &[usize], strides: &[isize]) -> isize {
    let mut off = 0isize;
    for (&n, &s) in dims.iter().zip(strides).rev() {
        off += (i % n) as isize * s;
        i /= n;
    }
    off
}

/// One 8 x 8 transpose: `dst[i * dst_rs + j] = src[i + j * src_rs]` for `i, j < 8`.
///
/// # Safety
/// The 64 source and 64 destination elements are in bounds; AVX2 is available.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn tile8_avx2(src: *const f32, src_rs: isize, dst: *mut f32, dst_rs: usize) {
    use std::arch::x86_64::*;
    // SAFETY: the caller's bounds; unaligned loads and stores.
    unsafe {
        let r: [__m256; 8] =
            std::array::from_fn(|j| _mm256_loadu_ps(src.offset(j as isize * src_rs)));
        // Rows j of the tile hold x[.. + i] for i = 0..8; a standard three-stage 8x8 shuffle.
        let t0 = _mm256_unpacklo_ps(r[0], r[1]);
        let t1 = _mm256_unpackhi_ps(r[0], r[1]);
        let t2 = _mm256_unpacklo_ps(r[2], r[3]);
        let t3 = _mm256_unpackhi_ps(r[2], r[3]);
        let t4 = _mm256_unpacklo_ps(r[4], r[5]);
        let t5 = _mm256_unpackhi_ps(r[4], r[5]);
        let t6 = _mm256_unpacklo_ps(r[6], r[7]);
        let t7 = _mm256_unpackhi_ps(r[6], r[7]);
        let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
        let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
        let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
        let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
        let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
        let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
        let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
        let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
        let o = [
            _mm256_permute2f128_ps::<0x20>(u0, u4),
            _mm256_permute2f128_ps::<0x20>(u1, u5),
            _mm256_permute2f128_ps::<0x20>(u2, u6),
            _mm256_permute2f128_ps::<0x20>(u3, u7),
            _mm256_permute2f128_ps::<0x31>(u0, u4),
            _mm256_permute2f128_ps::<0x31>(u1, u5),
            _mm256_permute2f128_ps::<0x31>(u2, u6),
            _mm256_permute2f128_ps::<0x31>(u3, u7),
        ];
        for (i, v) in o.into_iter().enumerate() {
            _mm256_storeu_ps(dst.add(i * dst_rs), v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The gather by definition, index by index.
    fn naive(
        shape: &[usize],
        base: isize,
        dims: &[usize],
        strides: &[isize],
        x: &[f32],
    ) -> Vec<f32> {
        let _ = shape;
        let n: usize = dims.iter().product();
        (0..n)
            .map(|flat| {
                let mut r = flat;
                let mut off = base;
                for k in (0..dims.len()).rev() {
                    off += (r % dims[k]) as isize * strides[k];
                    r /= dims[k];
                }
                x[off as usize]
            })
            .collect()
    }

    fn data(n: usize) -> Vec<f32> {
        (0..n).map(|i| i as f32 * 0.5 - 7.0).collect()
    }

    /// Every permutation of rank-3 and rank-4 tensors with odd sizes (tile tails on both
    /// sides of the 8 x 8 blocks), plus the layouts models use (NCHW <-> NHWC, ShuffleNet's
    /// channel shuffle).
    #[test]
    fn transposes_match_the_definition() {
        fn perms(n: usize) -> Vec<Vec<usize>> {
            if n == 1 {
                return vec![vec![0]];
            }
            let mut out = Vec::new();
            for p in perms(n - 1) {
                for i in 0..n {
                    let mut q = p.clone();
                    q.insert(i, n - 1);
                    out.push(q);
                }
            }
            out
        }
        for shape in [
            vec![3usize, 17, 9],
            vec![1, 13, 8, 16],
            vec![2, 5, 9, 11],
            vec![1, 96, 7, 7],
            vec![1, 2, 58, 28, 28],
        ] {
            let x = data(shape.iter().product());
            let st = contiguous_strides(&shape);
            for perm in perms(shape.len()) {
                let dims: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
                let strides: Vec<isize> = perm.iter().map(|&p| st[p]).collect();
                let want = naive(&shape, 0, &dims, &strides, &x);
                let k = Strided::transpose(&shape, &perm);
                let mut y = vec![f32::NAN; want.len()];
                k.run(&x, &mut y);
                assert_eq!(y, want, "shape {shape:?} perm {perm:?} ({})", k.describe());
            }
        }
    }

    /// Slices with offsets, steps > 1 and negative steps, on every axis.
    #[test]
    fn slices_match_the_definition() {
        let shape = [2usize, 7, 9, 10];
        let x = data(shape.iter().product());
        let st = contiguous_strides(&shape);
        let cases: &[(&[usize], &[usize], &[isize])] = &[
            (&[0, 0, 0, 0], &[2, 7, 9, 10], &[1, 1, 1, 1]),
            (&[1, 2, 0, 0], &[1, 3, 9, 10], &[1, 1, 1, 1]),
            (&[0, 1, 1, 1], &[2, 3, 4, 5], &[1, 2, 2, 2]),
            (&[0, 6, 8, 9], &[2, 7, 9, 10], &[1, -1, -1, -1]),
            (&[1, 0, 3, 2], &[1, 7, 3, 3], &[1, 1, 2, 3]),
            (&[0, 0, 0, 9], &[2, 7, 9, 4], &[1, 1, 1, -3]),
        ];
        for &(start, n, step) in cases {
            let strides: Vec<isize> = step.iter().zip(&st).map(|(&a, &s)| a * s).collect();
            let base = start.iter().zip(&st).map(|(&a, &s)| a as isize * s).sum();
            let want = naive(&shape, base, n, &strides, &x);
            let k = Strided::slice(&shape, start, n, step);
            let mut y = vec![f32::NAN; want.len()];
            k.run(&x, &mut y);
            assert_eq!(y, want, "start {start:?} n {n:?} step {step:?}");
        }
    }

    #[test]
    fn collapses_contiguous_blocks() {
        // A channel slice of an NCHW image is one block.
        let k = Strided::slice(&[1, 8, 5, 5], &[0, 4, 0, 0], &[1, 4, 5, 5], &[1, 1, 1, 1]);
        assert_eq!(k.contiguous(), Some(100));
        // NCHW -> NHWC is one 2-D transpose.
        let k = Strided::transpose(&[1, 8, 5, 5], &[0, 2, 3, 1]);
        assert_eq!(k.dims, vec![25, 8]);
        assert_eq!(k.contiguous(), None);
    }
}
