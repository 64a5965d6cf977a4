//! Integer kernels for dynamically quantised models (onnxruntime's `quantize_dynamic` output):
//! DynamicQuantizeLinear, ConvInteger and MatMulInteger, integer Cast and elementwise steps.
//!
//! Every integer result is exact, so it equals the reference executor's bit for bit:
//! - the products run on zero-point-centred operands as i16 (`x - x_zp`, `w - w_zp`, both in
//!   `[-255, 255]` for 8-bit types), two reduction entries per i32 word, through AVX-512
//!   `vpmaddwd` (or VNNI's `vpdpwssd`, the same sums in one instruction): a pair's sum is at most
//!   `2 * 255 * 255`, so nothing saturates, and i32 accumulation wraps as the reference's does
//!   (`vpmaddubsw`, which saturates, is not used). Other hosts run the same sums in scalar code;
//! - DynamicQuantizeLinear computes its scale and zero point with the reference's formula
//!   (`ssc_exec::dynamic_quant_params`, all in f32) and rounds `x / scale` half to even.

use super::par::{for_ranges, SendPtr};

/// Reduction entries per word of a packed operand.
pub(crate) const PAIR: usize = 2;

/// Packs two centred values into one word (low half the even entry).
#[inline(always)]
pub(crate) fn pair(lo: i32, hi: i32) -> u32 {
    (lo as i16 as u16 as u32) | ((hi as i16 as u16 as u32) << 16)
}

/// `out[i * ldo + j] = sum_q l[i * kp + q] . r[q * n + j]` for `i < m`, `j < n`, where each
/// word holds two i16 entries and `.` is their dot product (i32, wrapping).
pub(crate) struct PairGemm {
    pub m: usize,
    pub n: usize,
    pub kp: usize,
}

/// Columns per register block (four 16-lane vectors).
const NB: usize = 64;
/// Rows per register block.
const MB: usize = 4;

impl PairGemm {
    /// Runs the product over column blocks split across the pool; every column block reads the
    /// whole of `l`, which stays in cache, while its panel of `r` is read once.
    pub(crate) fn run(&self, l: &[u32], r: &[u32], out: &mut [i32]) {
        let (m, n, kp) = (self.m, self.n, self.kp);
        assert!(l.len() >= m * kp && r.len() >= kp * n && out.len() >= m * n);
        let blocks = n.div_ceil(NB);
        let o = SendPtr(out.as_mut_ptr() as *mut f32);
        let (lp, rp) = (l.as_ptr() as usize, r.as_ptr() as usize);
        let min = (1usize << 16).div_ceil((m * kp).max(1) * NB).max(1);
        for_ranges(blocks, min, move |b, e| {
            let (l, r) = (lp as *const u32, rp as *const u32);
            let out = o.get() as *mut i32;
            for blk in b..e {
                let j0 = blk * NB;
                let w = NB.min(n - j0);
                // SAFETY: `l` and `r` hold the asserted lengths; each column block writes the
                // columns `j0..j0 + w` of every row, disjoint between tasks.
                unsafe { self.block(l, r, out, j0, w) };
            }
        });
    }

    /// One column block of every row.
    unsafe fn block(&self, l: *const u32, r: *const u32, out: *mut i32, j0: usize, w: usize) {
        #[cfg(target_arch = "x86_64")]
        if has_avx512bw() {
            let vnni = std::is_x86_feature_detected!("avx512vnni");
            // SAFETY: the features were detected at run time.
            unsafe {
                if vnni {
                    x86::block_vnni(self, l, r, out, j0, w)
                } else {
                    x86::block_bw(self, l, r, out, j0, w)
                }
            };
            return;
        }
        let (m, n, kp) = (self.m, self.n, self.kp);
        let mut acc = [0i32; NB];
        for i in 0..m {
            acc[..w].fill(0);
            for q in 0..kp {
                // SAFETY: `i < m`, `q < kp`, `j0 + w <= n`, within the asserted lengths.
                let a = unsafe { *l.add(i * kp + q) };
                let (a0, a1) = (a as u16 as i16 as i32, (a >> 16) as u16 as i16 as i32);
                let row = unsafe { std::slice::from_raw_parts(r.add(q * n + j0), w) };
                for (c, &b) in acc.iter_mut().zip(row) {
                    let (b0, b1) = (b as u16 as i16 as i32, (b >> 16) as u16 as i16 as i32);
                    *c = c.wrapping_add(a0 * b0 + a1 * b1);
                }
            }
            // SAFETY: row `i`, columns `j0..j0 + w` of the output.
            unsafe { std::ptr::copy_nonoverlapping(acc.as_ptr(), out.add(i * n + j0), w) };
        }
    }
}

#[cfg(target_arch = "x86_64")]
fn has_avx512bw() -> bool {
    std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512bw")
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{PairGemm, MB};
    use std::arch::x86_64::*;

    macro_rules! block_fn {
        ($name:ident, $feat:literal, $fma:expr) => {
            /// One column block: rows in blocks of [`MB`], four 16-column vectors each, the
            /// column tail masked.
            #[target_feature(enable = $feat)]
            pub(super) unsafe fn $name(
                g: &PairGemm,
                l: *const u32,
                r: *const u32,
                out: *mut i32,
                j0: usize,
                w: usize,
            ) {
                let (m, n, kp) = (g.m, g.n, g.kp);
                let mask = |v: usize| -> __mmask16 {
                    let rem = w.saturating_sub(16 * v);
                    if rem >= 16 {
                        0xffff
                    } else {
                        ((1u32 << rem) - 1) as __mmask16
                    }
                };
                let ks = [mask(0), mask(1), mask(2), mask(3)];
                let nv = w.div_ceil(16);
                let mut i = 0;
                while i < m {
                    let rows = MB.min(m - i);
                    let mut acc = [[_mm512_setzero_si512(); 4]; MB];
                    for q in 0..kp {
                        let rq = r.add(q * n + j0) as *const i32;
                        let mut b = [_mm512_setzero_si512(); 4];
                        for v in 0..nv {
                            b[v] = _mm512_maskz_loadu_epi32(ks[v], rq.add(16 * v));
                        }
                        for (ri, acc) in acc.iter_mut().enumerate().take(rows) {
                            let a = _mm512_set1_epi32(*l.add((i + ri) * kp + q) as i32);
                            for v in 0..4 {
                                acc[v] = $fma(acc[v], a, b[v]);
                            }
                        }
                    }
                    for (ri, acc) in acc.iter().enumerate().take(rows) {
                        let o = out.add((i + ri) * n + j0);
                        for v in 0..nv {
                            _mm512_mask_storeu_epi32(o.add(16 * v), ks[v], acc[v]);
                        }
                    }
                    i += rows;
                }
            }
        };
    }

    #[inline(always)]
    unsafe fn madd_add(c: __m512i, a: __m512i, b: __m512i) -> __m512i {
        _mm512_add_epi32(c, _mm512_madd_epi16(a, b))
    }

    block_fn!(block_bw, "avx512f,avx512bw", madd_add);
    block_fn!(
        block_vnni,
        "avx512f,avx512bw,avx512vnni",
        _mm512_dpwssd_epi32
    );
}

/// An 8-bit integer operand: unsigned or signed bytes.
#[derive(Clone, Copy)]
pub(crate) enum Bytes8<'a> {
    U8(&'a [u8]),
    I8(&'a [i8]),
}

impl Bytes8<'_> {
    #[inline(always)]
    pub(crate) fn at(&self, i: usize) -> i32 {
        match self {
            Bytes8::U8(v) => v[i] as i32,
            Bytes8::I8(v) => v[i] as i32,
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Bytes8::U8(v) => v.len(),
            Bytes8::I8(v) => v.len(),
        }
    }
}

/// ConvInteger over one image: 2-D, any stride, dilation, pads and groups; the weights centred
/// and packed at compile time, the input centred into pair columns at run time.
pub(crate) struct ConvInteger {
    pub c_in: usize,
    pub c_out: usize,
    pub groups: usize,
    pub in_hw: [usize; 2],
    pub out_hw: [usize; 2],
    pub k: [usize; 2],
    pub stride: [usize; 2],
    pub dil: [usize; 2],
    /// Top and left pads.
    pub pad: [usize; 2],
    /// Per group: `c_out / groups` rows of `kp` words.
    pub w: Vec<Vec<u32>>,
    pub kp: usize,
}

impl ConvInteger {
    /// `w` is `[c_out, c_in / groups, kh, kw]`, `w_zp` one value or one per output channel.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        c_in: usize,
        groups: usize,
        in_hw: [usize; 2],
        out_hw: [usize; 2],
        k: [usize; 2],
        stride: [usize; 2],
        dil: [usize; 2],
        pad: [usize; 2],
        w: &[i32],
        w_zp: &[i32],
        c_out: usize,
    ) -> ConvInteger {
        let kk = c_in / groups * k[0] * k[1];
        let kp = kk.div_ceil(PAIR);
        let cog = c_out / groups;
        let packed = (0..groups)
            .map(|g| {
                let mut v = vec![0u32; cog * kp];
                for o in 0..cog {
                    let co = g * cog + o;
                    let z = w_zp[if w_zp.len() == 1 { 0 } else { co }];
                    let row = &w[co * kk..(co + 1) * kk];
                    for q in 0..kp {
                        let e = |t: usize| row.get(t).map_or(0, |&x| x - z);
                        v[o * kp + q] = pair(e(2 * q), e(2 * q + 1));
                    }
                }
                v
            })
            .collect();
        ConvInteger {
            c_in,
            c_out,
            groups,
            in_hw,
            out_hw,
            k,
            stride,
            dil,
            pad,
            w: packed,
            kp,
        }
    }

    /// Scratch words: one group's pair columns.
    pub(crate) fn scratch_words(&self) -> usize {
        self.kp * self.out_hw[0] * self.out_hw[1]
    }

    /// `y = conv(x - x_zp, w - w_zp)` for one image (`y` is `[c_out, oh, ow]`).
    pub(crate) fn run(&self, x: Bytes8, x_zp: i32, y: &mut [i32], col: &mut [u32]) {
        let [ih, iw] = self.in_hw;
        let [oh, ow] = self.out_hw;
        let p = oh * ow;
        let cig = self.c_in / self.groups;
        let cog = self.c_out / self.groups;
        let (kh, kw) = (self.k[0], self.k[1]);
        let kk = cig * kh * kw;
        let col = &mut col[..self.kp * p];
        for g in 0..self.groups {
            // Entry `t` of the reduction at output pixel `(oy, ox)`: the centred input, 0 in the
            // padding (where the input equals its zero point).
            let plane = g * cig * ih * iw;
            let entry = |t: usize, dst: &mut [i32]| {
                if t >= kk {
                    dst.fill(0);
                    return;
                }
                let (c, r) = (t / (kh * kw), t % (kh * kw));
                let (ky, kx) = (r / kw, r % kw);
                let base = plane + c * ih * iw;
                for oy in 0..oh {
                    let iy =
                        (oy * self.stride[0] + ky * self.dil[0]) as isize - self.pad[0] as isize;
                    let d = &mut dst[oy * ow..(oy + 1) * ow];
                    if iy < 0 || iy as usize >= ih {
                        d.fill(0);
                        continue;
                    }
                    let rb = base + iy as usize * iw;
                    // Output columns whose input column is inside the image: `ix = ox * s +
                    // off` with `0 <= ix < iw`.
                    let (sx, off) = (
                        self.stride[1],
                        (kx * self.dil[1]) as isize - self.pad[1] as isize,
                    );
                    let lo = if off >= 0 {
                        0
                    } else {
                        ((-off) as usize).div_ceil(sx)
                    };
                    let hi = if (iw as isize) <= off {
                        0
                    } else {
                        ((iw as isize - off) as usize).div_ceil(sx).min(ow)
                    };
                    let lo = lo.min(hi);
                    d[..lo].fill(0);
                    d[hi..].fill(0);
                    let first = (rb as isize + (lo * sx) as isize + off) as usize;
                    let d = &mut d[lo..hi];
                    match x {
                        Bytes8::U8(v) => centre_row(v, first, sx, x_zp, d),
                        Bytes8::I8(v) => centre_row(v, first, sx, x_zp, d),
                    }
                }
            };
            let cp = SendPtr(col.as_mut_ptr() as *mut f32);
            for_ranges(
                self.kp,
                8,
                #[inline(always)]
                move |b, e| {
                    let mut lo = vec![0i32; p];
                    let mut hi = vec![0i32; p];
                    for q in b..e {
                        entry(2 * q, &mut lo);
                        entry(2 * q + 1, &mut hi);
                        // SAFETY: row `q` of the columns, disjoint between tasks.
                        let row = unsafe {
                            std::slice::from_raw_parts_mut((cp.get() as *mut u32).add(q * p), p)
                        };
                        for ((r, &a), &b) in row.iter_mut().zip(&lo).zip(&hi) {
                            *r = pair(a, b);
                        }
                    }
                },
            );
            let yg = &mut y[g * cog * p..(g + 1) * cog * p];
            PairGemm {
                m: cog,
                n: p,
                kp: self.kp,
            }
            .run(&self.w[g], col, yg);
        }
    }
}

/// `d[i] = x[first + i * step] - zp`: one row of a pair column, in the image.
#[inline(always)]
fn centre_row<T: Copy + Into<i32>>(x: &[T], first: usize, step: usize, zp: i32, d: &mut [i32]) {
    if d.is_empty() {
        return;
    }
    if step == 1 {
        let n = d.len();
        for (o, &v) in d.iter_mut().zip(&x[first..first + n]) {
            *o = v.into() - zp;
        }
    } else {
        for (i, o) in d.iter_mut().enumerate() {
            *o = x[first + i * step].into() - zp;
        }
    }
}

/// MatMulInteger with a constant 2-D B: `(a - a_zp)(b - b_zp)` for `rows` rows of A.
pub(crate) struct MatMulInteger {
    pub k: usize,
    pub n: usize,
    pub kp: usize,
    /// B centred and packed, `kp x n` words.
    pub b: Vec<u32>,
}

impl MatMulInteger {
    /// `b` is `[k, n]`, `b_zp` one value or one per column.
    pub(crate) fn new(k: usize, n: usize, b: &[i32], b_zp: &[i32]) -> MatMulInteger {
        let kp = k.div_ceil(PAIR);
        let mut packed = vec![0u32; kp * n];
        for q in 0..kp {
            for j in 0..n {
                let z = b_zp[if b_zp.len() == 1 { 0 } else { j }];
                let e = |t: usize| if t < k { b[t * n + j] - z } else { 0 };
                packed[q * n + j] = pair(e(2 * q), e(2 * q + 1));
            }
        }
        MatMulInteger {
            k,
            n,
            kp,
            b: packed,
        }
    }

    /// Scratch words: A's rows packed.
    pub(crate) fn scratch_words(&self, rows: usize) -> usize {
        rows * self.kp
    }

    pub(crate) fn run(&self, a: Bytes8, a_zp: i32, y: &mut [i32], pa: &mut [u32]) {
        let rows = a.len() / self.k.max(1);
        let pa = &mut pa[..rows * self.kp];
        for i in 0..rows {
            for q in 0..self.kp {
                let e = |t: usize| {
                    if t < self.k {
                        a.at(i * self.k + t) - a_zp
                    } else {
                        0
                    }
                };
                pa[i * self.kp + q] = pair(e(2 * q), e(2 * q + 1));
            }
        }
        PairGemm {
            m: rows,
            n: self.n,
            kp: self.kp,
        }
        .run(pa, &self.b, y);
    }
}

/// DynamicQuantizeLSTM's integer products (`ssc_exec::LstmProducts`): per direction, `W` and
/// `R` minus their zero points, packed as [`MatMulInteger`]'s B.
pub(crate) struct LstmProducts {
    /// `[direction][0: W, 1: R]`.
    pub w: Vec<[MatMulInteger; 2]>,
}

impl ssc_exec::LstmProducts for LstmProducts {
    fn product(&self, d: usize, recurrent: bool, qa: &[i32], rows: usize, acc: &mut [i32]) {
        let k = &self.w[d][recurrent as usize];
        let mut pa = vec![0u32; rows * k.kp];
        for (i, row) in qa.chunks_exact(k.k).enumerate().take(rows) {
            for q in 0..k.kp {
                let e = |t: usize| row.get(t).copied().unwrap_or(0);
                pa[i * k.kp + q] = pair(e(2 * q), e(2 * q + 1));
            }
        }
        PairGemm {
            m: rows,
            n: k.n,
            kp: k.kp,
        }
        .run(&pa, &k.b, acc);
    }
}

/// DynamicQuantizeLinear: the u8 quantisation of `x` over `[min(x, 0), max(x, 0)]`; returns the
/// scale and zero point written to the step's other outputs.
pub(crate) fn dynamic_quantize(x: &[f32], y: &mut [u8]) -> (f32, u8) {
    let (mut lo, mut hi) = ([0f32; 16], [0f32; 16]);
    super::par::simd(
        #[inline(always)]
        || {
            let mut chunks = x.chunks_exact(16);
            for c in &mut chunks {
                for i in 0..16 {
                    lo[i] = if c[i] < lo[i] { c[i] } else { lo[i] };
                    hi[i] = if c[i] > hi[i] { c[i] } else { hi[i] };
                }
            }
            for (i, &v) in chunks.remainder().iter().enumerate() {
                lo[i] = if v < lo[i] { v } else { lo[i] };
                hi[i] = if v > hi[i] { v } else { hi[i] };
            }
        },
    );
    let min = lo.iter().copied().fold(0f32, f32::min);
    let max = hi.iter().copied().fold(0f32, f32::max);
    let (scale, zp) = ssc_exec::dynamic_quant_params(min, max);
    let zf = zp as f32;
    let yp = SendPtr(y.as_mut_ptr() as *mut f32);
    for_ranges(
        x.len(),
        1 << 14,
        #[inline(always)]
        move |b, e| {
            // SAFETY: `y` has `x.len()` elements; tasks write disjoint ranges.
            let y = unsafe { std::slice::from_raw_parts_mut((yp.get() as *mut u8).add(b), e - b) };
            for (o, &v) in y.iter_mut().zip(&x[b..e]) {
                // `round(v / scale) + zp`, saturated: the sum of a rounded value and an integer is
                // exact in f32 here (|q| <= 2^24 before the clamp matters), NaN goes to the zero
                // point as in the reference.
                let q = (v / scale).round_ties_even();
                let q = if q.is_nan() { zf } else { q + zf };
                // In range after the clamp, so the i32 conversion is exact (and vectorises).
                *o = q.clamp(0.0, 255.0) as i32 as u8;
            }
        },
    );
    (scale, zp)
}
