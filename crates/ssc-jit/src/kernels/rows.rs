//! Row-blocked access to NCHW planes for the direct window kernels (depthwise convolution, max
//! pooling): output rows cut into blocks of 8 columns, each block's taps read straight from the
//! input plane as AVX2 vectors, with no padded copy.
//!
//! Tap `(ky, kx)` of the block at output column `x0` in output row `y` reads input row
//! `S*y - pad_top + ky` from column `S*x0 - pad_left + kx`:
//! - stride 1: one unaligned load per tap;
//! - stride 2: the 16 columns from `2*x0 - pad_left + 2m` are loaded as two vectors and split
//!   into their even (tap `2m`) and odd (tap `2m + 1`) columns by one in-lane shuffle each. The
//!   shuffles leave the columns in the order `0 1 4 5 2 3 6 7`; [`avx2::store`] permutes the
//!   result back once per block.
//!
//! Rows of the padding are skipped by the caller ([`avx2::Rows::tap_rows`]). Blocks whose loads
//! all lie inside the input row are "interior" and use plain loads; the others (the row's ends,
//! and every block of rows shorter than a vector) use masked loads, which never touch memory
//! outside the row and give the padding's value for the columns outside it (zero, or -inf for
//! max pooling). Lanes past the last output column compute values nobody keeps.

/// Output columns per block: one AVX2 vector.
pub(crate) const LANES: usize = 8;
/// Loads per input row and block, at most: `K` at stride 1, `2 * ceil(K / 2)` at stride 2, so
/// windows up to 7 wide (ConvNeXt's 7x7 depthwise).
pub(crate) const MAX_LOADS: usize = 8;

/// The geometry of a window kernel on one plane.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PlaneGeom {
    pub h: usize,
    pub w: usize,
    pub h_out: usize,
    pub w_out: usize,
    /// Window size (square).
    pub k: usize,
    /// Stride (the same along both axes), 1 or 2.
    pub s: usize,
    pub pad_top: usize,
    pub pad_left: usize,
}

impl PlaneGeom {
    /// Input `[h, w]`, output `[h_out, w_out]`, a `k x k` window at stride `s`, the top and
    /// left pads.
    pub(crate) fn new(
        [h, w]: [usize; 2],
        [h_out, w_out]: [usize; 2],
        k: usize,
        s: usize,
        [pad_top, pad_left]: [usize; 2],
    ) -> PlaneGeom {
        PlaneGeom {
            h,
            w,
            h_out,
            w_out,
            k,
            s,
            pad_top,
            pad_left,
        }
    }

    /// Whether the row-blocked kernels take this geometry: a window of at most [`MAX_LOADS`]
    /// columns, stride 1 or 2, and the host has AVX2 + FMA.
    pub(crate) fn supported(&self) -> bool {
        crate::kernels::par::has_avx2_fma()
            && (1..=MAX_LOADS).contains(&self.k)
            && (self.s == 1 || self.s == 2)
            && self.h_out >= 1
            && self.w_out >= 1
    }

    /// Whether every window has at least one tap inside the image (so a max over the window is
    /// never over padding alone).
    pub(crate) fn windows_touch_image(&self) -> bool {
        let last = |n_out: usize, pad: usize, n: usize| (self.s * (n_out - 1)) < pad + n;
        self.pad_top < self.k
            && self.pad_left < self.k
            && last(self.h_out, self.pad_top, self.h)
            && last(self.w_out, self.pad_left, self.w)
    }

    /// The output rows all of whose `k` tap rows lie inside the image.
    pub(crate) fn full_rows(&self) -> std::ops::Range<usize> {
        let lo = self.pad_top.div_ceil(self.s).min(self.h_out);
        let hi = if self.h + self.pad_top >= self.k {
            ((self.h + self.pad_top - self.k) / self.s + 1).clamp(lo, self.h_out)
        } else {
            lo
        };
        lo..hi
    }

    /// The first input columns of the loads one input row takes for the block at output column
    /// `x0`, and their count: at stride 1 tap `kx` reads from `x0 - pad_left + kx`; at stride 2
    /// pair `m` reads 16 columns from `2*x0 - pad_left + 2m` as two loads.
    fn load_cols(&self, x0: usize) -> ([isize; MAX_LOADS], usize) {
        let c0 = (self.s * x0) as isize - self.pad_left as isize;
        let mut cols = [0; MAX_LOADS];
        let n = if self.s == 1 {
            self.k
        } else {
            2 * self.k.div_ceil(2)
        };
        for (i, c) in cols[..n].iter_mut().enumerate() {
            *c = if self.s == 1 {
                c0 + i as isize
            } else {
                c0 + 2 * (i / 2) as isize + (LANES * (i % 2)) as isize
            };
        }
        (cols, n)
    }

    /// The column blocks of an output row.
    pub(crate) fn blocks(&self) -> Vec<Block> {
        let w = self.w as isize;
        (0..self.w_out)
            .step_by(LANES)
            .map(|x0| {
                let (cols, n) = self.load_cols(x0);
                let mut loads = [[0; LANES]; MAX_LOADS];
                for (m, &c) in loads.iter_mut().zip(&cols[..n]) {
                    *m = std::array::from_fn(|l| -i32::from((0..w).contains(&(c + l as isize))));
                }
                let full = x0 + LANES <= self.w_out;
                Block {
                    x0,
                    interior: cols[..n].iter().all(|&c| c >= 0 && c + LANES as isize <= w),
                    full,
                    loads,
                    store: std::array::from_fn(|l| -i32::from(x0 + l < self.w_out)),
                }
            })
            .collect()
    }
}

/// One block of [`LANES`] output columns of every output row.
#[derive(Clone, Debug)]
pub(crate) struct Block {
    /// First output column.
    pub x0: usize,
    /// Every load reads inside the input row: plain loads.
    pub interior: bool,
    /// All 8 output columns exist.
    pub full: bool,
    /// Per load of one input row (see `PlaneGeom::load_cols`): -1 for the lanes whose column
    /// lies inside the row, 0 for those in the padding.
    loads: [[i32; LANES]; MAX_LOADS],
    /// -1 for the lanes whose output column exists.
    store: [i32; LANES],
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2 {
    use std::arch::x86_64::*;

    use super::{Block, PlaneGeom, LANES};

    /// One input plane seen from one output row.
    pub(crate) struct Rows {
        x: *const f32,
        /// Input row length and count.
        w: isize,
        h: isize,
        /// Input row of tap row 0 (negative in the top padding).
        pub top: isize,
        /// Left padding.
        left: isize,
    }

    impl Rows {
        /// Output row `y` of the plane `x` (`h * w` floats).
        #[inline(always)]
        pub(crate) fn new(x: &[f32], g: &PlaneGeom, y: usize) -> Rows {
            debug_assert!(x.len() >= g.h * g.w);
            Rows {
                x: x.as_ptr(),
                w: g.w as isize,
                h: g.h as isize,
                top: (g.s * y) as isize - g.pad_top as isize,
                left: g.pad_left as isize,
            }
        }

        /// The tap rows `lo..hi` (of `k`) that lie inside the image.
        #[inline(always)]
        pub(crate) fn tap_rows(&self, k: usize) -> (usize, usize) {
            let lo = (-self.top).clamp(0, k as isize) as usize;
            let hi = (self.h - self.top).clamp(lo as isize, k as isize) as usize;
            (lo, hi)
        }

        /// Tap columns `2m` and `2m + 1` of input row `top + i` for block `b` (the second only
        /// when `2m + 1 < K`; else zero): at stride 2 in the lane order `0 1 4 5 2 3 6 7`;
        /// columns in the padding read 0, or -inf with `NEG_INF_PAD`.
        ///
        /// # Safety
        /// AVX2; input row `top + i` exists; with `INTERIOR`, every load of `b` lies inside it
        /// (`b.interior`); `b` comes from the plane's `PlaneGeom::blocks`; `2m < K`.
        #[inline(always)]
        pub(crate) unsafe fn tap_pair<
            const K: usize,
            const S: usize,
            const INTERIOR: bool,
            const NEG_INF_PAD: bool,
        >(
            &self,
            b: &Block,
            i: usize,
            m: usize,
        ) -> (__m256, __m256) {
            let row = self.x.wrapping_offset((self.top + i as isize) * self.w);
            let c0 = (S * b.x0) as isize - self.left + 2 * m as isize;
            // SAFETY: loads stay inside the row (interior) or are masked to its columns.
            let load = |n: usize, col: isize| unsafe {
                let p = row.wrapping_offset(col);
                if INTERIOR {
                    _mm256_loadu_ps(p)
                } else {
                    let mask = _mm256_loadu_si256(b.loads[n].as_ptr().cast());
                    let v = _mm256_maskload_ps(p, mask);
                    if NEG_INF_PAD {
                        _mm256_blendv_ps(
                            _mm256_set1_ps(f32::NEG_INFINITY),
                            v,
                            _mm256_castsi256_ps(mask),
                        )
                    } else {
                        v
                    }
                }
            };
            let second = 2 * m + 1 < K;
            if S == 1 {
                let odd = if second {
                    load(2 * m + 1, c0 + 1)
                } else {
                    _mm256_setzero_ps()
                };
                (load(2 * m, c0), odd)
            } else {
                let (l, h) = (load(2 * m, c0), load(2 * m + 1, c0 + LANES as isize));
                let even = _mm256_shuffle_ps::<0b10_00_10_00>(l, h);
                let odd = if second {
                    _mm256_shuffle_ps::<0b11_01_11_01>(l, h)
                } else {
                    _mm256_setzero_ps()
                };
                (even, odd)
            }
        }

        /// The `K` tap vectors of input row `top + i` for block `b`: `v[kx]` holds the inputs
        /// tap column `kx` reads (see [`Rows::tap_pair`]).
        ///
        /// # Safety
        /// As for [`Rows::tap_pair`].
        #[inline(always)]
        pub(crate) unsafe fn vectors<
            const K: usize,
            const S: usize,
            const INTERIOR: bool,
            const NEG_INF_PAD: bool,
        >(
            &self,
            b: &Block,
            i: usize,
        ) -> [__m256; K] {
            let mut v = [_mm256_setzero_ps(); K];
            for m in 0..K.div_ceil(2) {
                // SAFETY: forwarded.
                let (e, o) = unsafe { self.tap_pair::<K, S, INTERIOR, NEG_INF_PAD>(b, i, m) };
                v[2 * m] = e;
                if 2 * m + 1 < K {
                    v[2 * m + 1] = o;
                }
            }
            v
        }
    }

    /// Stores `v` to the columns of block `b` in output row `y` of `out` (`h_out * w_out`
    /// floats; at stride 2 `v`'s lanes are first put back in column order).
    ///
    /// A block past the row's end is stored whole when its 8 lanes stay inside the plane: the
    /// lanes beyond the row land in later rows, which the caller writes later (it runs blocks
    /// from the row's end to its start and rows in increasing order). A masked store costs
    /// several times a plain one on AMD cores; with this only the plane's last row pays it.
    ///
    /// # Safety
    /// AVX2; `y * w_out + b.x0 < out.len()`; `b` comes from the plane's `PlaneGeom::blocks`.
    #[inline(always)]
    pub(crate) unsafe fn store<const S: usize>(
        v: __m256,
        y: usize,
        w_out: usize,
        b: &Block,
        out: &mut [f32],
    ) {
        let v = if S == 2 {
            // Columns 0 1 4 5 2 3 6 7 back to 0..8 (64-bit lanes 0 2 1 3).
            _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(v)))
        } else {
            v
        };
        let at = y * w_out + b.x0;
        // SAFETY: the 8 outputs from `at` lie in the plane (`full`: in row y), or the mask
        // keeps the lanes to row y.
        unsafe {
            let o = out.as_mut_ptr().add(at);
            if b.full || at + LANES <= out.len() {
                _mm256_storeu_ps(o, v);
            } else {
                _mm256_maskstore_ps(o, _mm256_loadu_si256(b.store.as_ptr().cast()), v);
            }
        }
    }
}
