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
//!
//! A block's four rows need not be consecutive: rows that read the same input channels are
//! grouped first (a stable grouping, the identity for dense weights), so blocks stay whole
//! when an earlier rewrite removed rows (ssc-opt's duplicate-filter gather shifts MSWU's
//! 4x4 tiles off the multiples of four: on the one-value ResNet-18, 0.64-0.89 of the
//! products kept in row order, 0.52-0.58 grouped).

/// One block of output rows of a group and the input channels it reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RowBlock {
    /// Its output rows, within the group (the first `kb`).
    rows: [usize; 4],
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
                        for (kk, &k) in b.rows[..b.kb].iter().enumerate() {
                            w[xi * per_pos + b.w0 + e * b.kb + kk] =
                                u[(xi * c_out + grp * co + k) * ci + c as usize];
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
                let d = b.rows.map(|k| dst.add(k * tb));
                match b.kb {
                    4 => avx2::rows::<4>(w.as_ptr(), idx, v, d, tb, n8),
                    _ => avx2::rows::<1>(w.as_ptr(), idx, v, [d[0]], tb, n8),
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
/// blocks' weight offsets assume entry-major `n x kb` weights in block order. Rows that read
/// the same channels form blocks of 4 first (classes in order of their first row, rows in
/// order within a class), then the rows left over, in order: for dense weights (one class)
/// that is the rows in order.
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
        let patterns: Vec<Vec<bool>> = (0..co)
            .map(|k| (0..ci).map(|c| used(grp * co + k, c)).collect())
            .collect();
        let mut classes: Vec<Vec<usize>> = Vec::new();
        let mut class_of = std::collections::HashMap::new();
        for (k, p) in patterns.iter().enumerate() {
            let at = *class_of.entry(p).or_insert_with(|| {
                classes.push(Vec::new());
                classes.len() - 1
            });
            classes[at].push(k);
        }
        let (mut order, mut rest) = (Vec::with_capacity(co), Vec::new());
        for class in &classes {
            let whole = class.len() / 4 * 4;
            order.extend_from_slice(&class[..whole]);
            rest.extend_from_slice(&class[whole..]);
        }
        order.extend(rest);
        let mut list = Vec::new();
        let mut at = 0;
        while at < co {
            let kb = if at + 4 <= co { 4 } else { 1 };
            let mut rows = [order[at]; 4];
            rows[..kb].copy_from_slice(&order[at..at + kb]);
            let e0 = idx.len();
            idx.extend(
                (0..ci as u32).filter(|&c| rows[..kb].iter().any(|&k| patterns[k][c as usize])),
            );
            let n = idx.len() - e0;
            list.push(RowBlock {
                rows,
                kb,
                e0,
                n,
                w0,
            });
            w0 += n * kb;
            at += kb;
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
        dst: [*mut f32; KB],
        tb: usize,
        n8: usize,
    ) {
        let n16 = n8 / 16 * 16;
        // SAFETY: column blocks stay below `n8`.
        unsafe {
            for t in (0..n16).step_by(16) {
                block::<KB, 2>(w, idx, v.add(t), dst.map(|d| d.add(t)), tb);
            }
            if n16 < n8 {
                block::<KB, 1>(w, idx, v.add(n16), dst.map(|d| d.add(n16)), tb);
            }
        }
    }

    /// `KB` rows x `NV` vectors of columns: one input vector load per `KB` FMAs, the
    /// weights broadcast from the block's entry-major table; row `kk` is stored at `dst[kk]`.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    #[allow(clippy::needless_range_loop)] // `kk` and `j` index register arrays in step
    unsafe fn block<const KB: usize, const NV: usize>(
        w: *const f32,
        idx: &[u32],
        v: *const f32,
        dst: [*mut f32; KB],
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
                    _mm256_storeu_ps(dst[kk].add(8 * j), acc[kk][j]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows that read the same channels are grouped whatever their order: MSWU-like 4x4 blocks
    /// (every other input channel of each block of four rows zero) keep half the products in
    /// row order, and still half with the rows shuffled and three of them dropped (ssc-opt's
    /// duplicate-filter gather); dense rows keep their order.
    #[test]
    fn rows_reading_the_same_channels_are_grouped() {
        let (ci, taps) = (16, 9);
        let tile = |k: usize, c: usize| (c / 4 + k / 4).is_multiple_of(2);
        let weights = |rows: &[usize]| -> Vec<f32> {
            let mut w = vec![0.0f32; rows.len() * ci * taps];
            for (r, &k) in rows.iter().enumerate() {
                for c in (0..ci).filter(|&c| tile(k, c)) {
                    w[(r * ci + c) * taps..][..taps].fill(1.0 + k as f32);
                }
            }
            w
        };
        let in_order: Vec<usize> = (0..32).collect();
        assert_eq!(kept_of(&weights(&in_order), 32, ci, 1), 0.5);
        // Rows 0..29 in a shuffled order (7 is prime to 29), plus row 0's block pattern once
        // more: 30 rows, 7 blocks of four alike and two rows over.
        let shuffled: Vec<usize> = (0..30).map(|r| (r * 7 + 3) % 29).collect();
        let w = weights(&shuffled);
        let kept = kept_of(&w, 30, ci, 1);
        assert!(kept <= 0.5 + 2.0 / 30.0, "kept {kept}");
        // The blocks' rows: every row once; dense rows stay in order.
        let (blocks, _) = lists(30, ci, 1, |k, c| w[(k * ci + c) * taps] != 0.0);
        let mut seen: Vec<usize> = blocks[0]
            .iter()
            .flat_map(|b| b.rows[..b.kb].to_vec())
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..30).collect::<Vec<_>>());
        let (blocks, _) = lists(10, ci, 1, |_, _| true);
        let order: Vec<usize> = blocks[0]
            .iter()
            .flat_map(|b| b.rows[..b.kb].to_vec())
            .collect();
        assert_eq!(order, (0..10).collect::<Vec<_>>());
    }
}
