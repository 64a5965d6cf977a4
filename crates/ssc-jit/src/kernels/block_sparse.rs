//! Block-sparse small products for Winograd's per-position GEMMs: when whole blocks of
//! output channels x input channels are zero over all taps (MSWU's pruned 4x4 or 8x1 tiles,
//! or any weights where a group of four output channels ignores an input channel), their
//! transformed filters `U[ξ]` are zero at every position `ξ` too, so each position's product
//! `U[ξ] · V[ξ]` only needs, per block of four output rows, the input rows of the channels
//! it reads. [`BlockRows`] is that layout (built once at compile time, from `U` itself, so
//! it is exact for any weights: a channel is skipped only where all of its transformed
//! weights in the block are exactly zero), and [`products`] the register-blocked AVX2 loop
//! over it: the same 4 rows x 16 columns register block as
//! [`small_k`](crate::kernels::small_k), with the input rows gathered by index.

/// One block of output rows of a group and the input channels it reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RowBlock {
    /// First output row, within the group.
    k0: usize,
    /// Rows: 4, or 1 for the rows left over after the blocks of 4.
    kb: usize,
    /// First entry of the block in [`BlockRows::idx`].
    e0: usize,
    /// Input channels (entries) the block reads.
    n: usize,
    /// First float of the block's weights in each position's weights.
    w0: usize,
}

/// The block-sparse layout of Winograd's transformed filters (see the module docs).
#[derive(Clone, Debug)]
pub(crate) struct BlockRows {
    /// Per group, its row blocks in order.
    blocks: Vec<Vec<RowBlock>>,
    /// Input channel (within the group) of every entry, the blocks' entries in turn.
    idx: Vec<u32>,
    /// `[positions][per_pos]`: per position, each block's `n x kb` weights, entry-major
    /// (the `kb` rows' weights of one input channel together).
    w: Vec<f32>,
    /// Floats of one position's weights.
    per_pos: usize,
    /// Multiply-adds kept over the dense product's (`co x ci` per position).
    kept: f64,
}

impl BlockRows {
    /// The layout of `u` (`[positions][c_out][cin_g]`, `group` groups of `c_out / group`
    /// rows): per group, blocks of 4 output rows (then single rows), each reading the input
    /// channels where any of its rows has a non-zero transformed weight at any position.
    pub(crate) fn new(u: &[f32], positions: usize, c_out: usize, ci: usize, group: usize) -> Self {
        debug_assert_eq!(u.len(), positions * c_out * ci);
        let (blocks, idx) = lists(c_out, ci, group, |k, c| {
            (0..positions).any(|xi| u[(xi * c_out + k) * ci + c] != 0.0)
        });
        let co = c_out / group;
        let per_pos = blocks.iter().flatten().map(|b| b.n * b.kb).sum();
        let mut w = vec![0.0f32; positions * per_pos];
        for xi in 0..positions {
            for (grp, list) in blocks.iter().enumerate() {
                for b in list {
                    for (e, &c) in idx[b.e0..b.e0 + b.n].iter().enumerate() {
                        for kk in 0..b.kb {
                            w[xi * per_pos + b.w0 + e * b.kb + kk] =
                                u[(xi * c_out + grp * co + b.k0 + kk) * ci + c as usize];
                        }
                    }
                }
            }
        }
        let kept = per_pos as f64 / (c_out * ci).max(1) as f64;
        BlockRows {
            blocks,
            idx,
            w,
            per_pos,
            kept,
        }
    }

    /// Multiply-adds kept over the dense product's: 1 for dense weights.
    pub(crate) fn kept(&self) -> f64 {
        self.kept
    }

    /// `dst[k][t] = Σ_c U[ξ][grp][k][c] · v[c][t]` for the group's rows `k` and `t < n8` (a
    /// multiple of 8), reading only the kept input rows of each block; `v` and `dst` have rows
    /// of stride `tb`.
    ///
    /// # Safety
    /// The host has AVX2 and FMA; `xi` and `grp` are inside the layout, `v` holds the group's
    /// `cin_g` rows of `n8` floats and `dst` its `c_out / group` rows of `n8` (strides `tb`),
    /// and `dst` overlaps neither.
    #[cfg(target_arch = "x86_64")]
    pub(crate) unsafe fn products(
        &self,
        xi: usize,
        grp: usize,
        v: *const f32,
        dst: *mut f32,
        tb: usize,
        n8: usize,
    ) {
        let w = &self.w[xi * self.per_pos..(xi + 1) * self.per_pos];
        for b in &self.blocks[grp] {
            let idx = &self.idx[b.e0..b.e0 + b.n];
            let w = &w[b.w0..b.w0 + b.n * b.kb];
            // SAFETY: the caller's bounds; `idx` holds channels below `cin_g`.
            unsafe {
                let d = dst.add(b.k0 * tb);
                match b.kb {
                    4 => avx2::rows::<4>(w.as_ptr(), idx, v, d, tb, n8),
                    _ => avx2::rows::<1>(w.as_ptr(), idx, v, d, tb, n8),
                }
            }
        }
    }
}

/// The fraction of the multiply-adds [`BlockRows`] keeps for the ONNX weights `weights`
/// (`[c_out][ci][taps]`, `group` groups), without building it: a block reads an input channel
/// where any of its rows has a non-zero weight at any tap (then, and only then, a transformed
/// weight can be non-zero).
pub(crate) fn kept_of(weights: &[f32], c_out: usize, ci: usize, group: usize) -> f64 {
    let taps = weights.len() / (c_out * ci).max(1);
    let (blocks, _) = lists(c_out, ci, group, |k, c| {
        weights[(k * ci + c) * taps..][..taps]
            .iter()
            .any(|&w| w != 0.0)
    });
    let kept: usize = blocks.iter().flatten().map(|b| b.n * b.kb).sum();
    kept as f64 / (c_out * ci).max(1) as f64
}

/// Per group, blocks of 4 output rows (then single rows) and the input channels `c` each
/// reads: those where `used(k, c)` for one of its rows `k` (counted over all `c_out`); the
/// blocks' weight offsets assume entry-major `n x kb` weights in block order.
fn lists(
    c_out: usize,
    ci: usize,
    group: usize,
    used: impl Fn(usize, usize) -> bool,
) -> (Vec<Vec<RowBlock>>, Vec<u32>) {
    let co = c_out / group;
    let mut blocks = Vec::with_capacity(group);
    let mut idx = Vec::new();
    let mut w0 = 0;
    for grp in 0..group {
        let mut list = Vec::new();
        let mut k0 = 0;
        while k0 < co {
            let kb = if k0 + 4 <= co { 4 } else { 1 };
            let e0 = idx.len();
            for c in 0..ci {
                if (0..kb).any(|kk| used(grp * co + k0 + kk, c)) {
                    idx.push(c as u32);
                }
            }
            let n = idx.len() - e0;
            list.push(RowBlock { k0, kb, e0, n, w0 });
            w0 += n * kb;
            k0 += kb;
        }
        blocks.push(list);
    }
    (blocks, idx)
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    /// `KB` rows over columns `0..n8`: blocks of 16 columns, then the last 8.
    ///
    /// # Safety
    /// See [`BlockRows::products`](super::BlockRows::products); `w` holds `idx.len() * KB`
    /// floats.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    pub(super) unsafe fn rows<const KB: usize>(
        w: *const f32,
        idx: &[u32],
        v: *const f32,
        dst: *mut f32,
        tb: usize,
        n8: usize,
    ) {
        let n16 = n8 / 16 * 16;
        // SAFETY: column blocks stay below `n8`.
        unsafe {
            for t in (0..n16).step_by(16) {
                block::<KB, 2>(w, idx, v.add(t), dst.add(t), tb);
            }
            if n16 < n8 {
                block::<KB, 1>(w, idx, v.add(n16), dst.add(n16), tb);
            }
        }
    }

    /// `KB` rows x `NV` vectors of columns: one input vector load per `KB` FMAs, the
    /// weights broadcast from the block's entry-major table.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    #[allow(clippy::needless_range_loop)] // `kk` and `j` index register arrays in step
    unsafe fn block<const KB: usize, const NV: usize>(
        w: *const f32,
        idx: &[u32],
        v: *const f32,
        dst: *mut f32,
        tb: usize,
    ) {
        // SAFETY: see `rows`.
        unsafe {
            let mut acc = [[_mm256_setzero_ps(); NV]; KB];
            for (e, &c) in idx.iter().enumerate() {
                let row = v.add(c as usize * tb);
                let x: [__m256; NV] = std::array::from_fn(|j| _mm256_loadu_ps(row.add(8 * j)));
                for kk in 0..KB {
                    let s = _mm256_broadcast_ss(&*w.add(e * KB + kk));
                    for j in 0..NV {
                        acc[kk][j] = _mm256_fmadd_ps(s, x[j], acc[kk][j]);
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
}
