//! A matrix product whose right operand is a constant sparse matrix (pruned classifier heads,
//! MLP and recurrent layers; issue 14): `Y (m x n) (+)= A (m x k) * B`, with B compressed once
//! at plan time by output column (each column's non-zero rows, ascending, and their values), so
//! the work is one FMA per non-zero and row block rather than one per weight. A is transposed
//! at run time into tiles of `16 * V` rows (`[tile][k][16 V]`, zero past the last row), and each
//! output column of a tile is the sum over its non-zeros of one row of that tile times the
//! broadcast value: XNNPACK's f32-spmm form with A's rows as the "pixels" (AVX-512, several
//! independent accumulators per column). A single row of A (a batch-1 head) is read in place,
//! one scalar FMA per non-zero. Threads split the columns by their non-zero counts, so uneven
//! columns stay balanced; each output is one fixed-order sum, so results do not depend on the
//! thread count.

#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;

use crate::kernels::par::{for_tasks, SendPtr};

/// A constant `k x n` matrix, compressed by column for [`SparseB::gemm`].
pub(crate) struct SparseB {
    k: usize,
    n: usize,
    /// Column `j`'s non-zeros are entries `starts[j]..starts[j + 1]`.
    starts: Vec<usize>,
    /// Per entry, its row of B (a column of A).
    rows: Vec<u32>,
    vals: Vec<f32>,
}

/// Vectors (of 16 rows of A) per tile: `V` for `m` rows.
fn vectors(m: usize) -> usize {
    m.div_ceil(16).clamp(1, 4)
}

impl SparseB {
    /// Compresses `b`, whose element `(p, j)` is `b[p * rs + j * cs]` (`(1, k)` reads a
    /// transposed B in place). Exact zeros are dropped; `None` when `k` does not fit the table.
    pub(crate) fn new(b: &[f32], (k, n): (usize, usize), (rs, cs): (usize, usize)) -> Option<Self> {
        u32::try_from(k).ok()?;
        let mut starts = Vec::with_capacity(n + 1);
        let (mut rows, mut vals) = (Vec::new(), Vec::new());
        starts.push(0);
        for j in 0..n {
            for p in 0..k {
                let v = b[p * rs + j * cs];
                if v != 0.0 {
                    rows.push(p as u32);
                    vals.push(v);
                }
            }
            starts.push(rows.len());
        }
        Some(SparseB {
            k,
            n,
            starts,
            rows,
            vals,
        })
    }

    /// Non-zero entries.
    pub(crate) fn nnz(&self) -> usize {
        self.vals.len()
    }

    /// f32 elements of scratch a product of `m` rows needs (A transposed into tiles).
    pub(crate) fn scratch_len(&self, m: usize) -> usize {
        if m <= 1 {
            return 0;
        }
        let w = 16 * vectors(m);
        m.div_ceil(w) * w * self.k
    }

    /// `y (m x n, row-major) = (accumulate ? y : 0) + a (m x k, row-major) * B`. The host must
    /// have AVX-512F; `scratch` holds at least [`SparseB::scratch_len`] elements.
    pub(crate) fn gemm(
        &self,
        m: usize,
        a: &[f32],
        y: &mut [f32],
        accumulate: bool,
        scratch: &mut [f32],
    ) {
        let (k, n) = (self.k, self.n);
        if m == 0 || n == 0 {
            return;
        }
        assert!(a.len() >= m * k && y.len() >= m * n && scratch.len() >= self.scratch_len(m));
        assert!(crate::kernels::par::has_avx512f());
        let out = SendPtr(y.as_mut_ptr());
        let threads = rayon::current_num_threads();
        if m == 1 {
            let parts = self.parts(if threads > 1 { 4 * threads } else { 1 });
            for_tasks(parts.len() - 1, 1, |t, _| {
                // SAFETY: the task writes columns parts[t]..parts[t + 1] of the one row of y.
                unsafe { self.row(a.as_ptr(), out.get(), (parts[t], parts[t + 1]), accumulate) }
            });
            return;
        }
        let v = vectors(m);
        let w = 16 * v;
        let tiles = m.div_ceil(w);
        let at = &mut scratch[..tiles * w * k];
        // A transposed into tiles: at[t][p][l] = a[(t w + l) k + p], zero past row m.
        for t in 0..tiles {
            let tile = &mut at[t * w * k..(t + 1) * w * k];
            let rows = w.min(m - t * w);
            if rows < w {
                tile.fill(0.0);
            }
            for p0 in (0..k).step_by(16) {
                let p1 = (p0 + 16).min(k);
                for l in 0..rows {
                    let src = &a[(t * w + l) * k..][p0..p1];
                    for (i, &x) in src.iter().enumerate() {
                        tile[(p0 + i) * w + l] = x;
                    }
                }
            }
        }
        let at: &[f32] = at;
        let parts = self.parts(if threads > 1 {
            (4 * threads).div_ceil(tiles)
        } else {
            1
        });
        let groups = parts.len() - 1;
        for_tasks(tiles * groups, 1, |task, _| {
            let (t, g) = (task / groups, task % groups);
            let rows = w.min(m - t * w);
            let args = Tile {
                at: at[t * w * k..].as_ptr(),
                y: out.get(),
                r0: t * w,
                rows,
                cols: (parts[g], parts[g + 1]),
                accumulate,
            };
            // SAFETY: the task writes rows t w..t w + rows, columns of its part, of y: disjoint
            // from every other task's; the tile holds k x w elements.
            unsafe {
                match v {
                    1 => self.tile::<1, 4>(args),
                    2 => self.tile::<2, 2>(args),
                    3 => self.tile::<3, 1>(args),
                    _ => self.tile::<4, 1>(args),
                }
            }
        });
    }

    /// Column boundaries cutting the non-zeros into about `parts` equal shares.
    fn parts(&self, parts: usize) -> Vec<usize> {
        let nnz = self.nnz();
        let parts = parts.clamp(1, self.n);
        let mut b: Vec<usize> = (0..=parts)
            .map(|i| {
                let goal = nnz * i / parts;
                self.starts.partition_point(|&s| s < goal).min(self.n)
            })
            .collect();
        b[0] = 0;
        b[parts] = self.n;
        b.dedup();
        b
    }

    /// The one row of A (`m == 1`) times columns `j0..j1`: one scalar FMA per non-zero, four
    /// accumulators summed in a fixed order (AVX-512 gathers of 16 non-zeros measured slower on
    /// this host: 1.7-2.7 G non-zeros/s against 2.3-3.1).
    #[target_feature(enable = "avx512f")]
    unsafe fn row(&self, a: *const f32, y: *mut f32, (j0, j1): (usize, usize), acc: bool) {
        for j in j0..j1 {
            let (s, e) = (self.starts[j], self.starts[j + 1]);
            let (rows, vals) = (&self.rows[s..e], &self.vals[s..e]);
            let mut sum = [0f32; 4];
            let mut rc = rows.chunks_exact(4);
            let mut vc = vals.chunks_exact(4);
            for (r, v) in (&mut rc).zip(&mut vc) {
                for i in 0..4 {
                    sum[i] = v[i].mul_add(*a.add(r[i] as usize), sum[i]);
                }
            }
            for (&r, &v) in rc.remainder().iter().zip(vc.remainder()) {
                sum[0] = v.mul_add(*a.add(r as usize), sum[0]);
            }
            let mut total = (sum[0] + sum[1]) + (sum[2] + sum[3]);
            if acc {
                total += *y.add(j);
            }
            *y.add(j) = total;
        }
    }

    /// One tile of `16 V` rows of A times columns `cols`: `U` accumulator sets take the
    /// column's non-zeros in turn (`U * V` independent FMA chains), summed in a fixed order.
    #[target_feature(enable = "avx512f")]
    unsafe fn tile<const V: usize, const U: usize>(&self, t: Tile) {
        let w = 16 * V;
        let n = self.n;
        let mut lanes = [0f32; 64];
        for j in t.cols.0..t.cols.1 {
            let (s, e) = (self.starts[j], self.starts[j + 1]);
            let (rows, vals) = (&self.rows[s..e], &self.vals[s..e]);
            let mut acc = [[_mm512_setzero_ps(); V]; U];
            let mut rc = rows.chunks_exact(U);
            let mut vc = vals.chunks_exact(U);
            for (r, x) in (&mut rc).zip(&mut vc) {
                for u in 0..U {
                    let src = t.at.add(r[u] as usize * w);
                    let b = _mm512_set1_ps(x[u]);
                    for (q, a) in acc[u].iter_mut().enumerate() {
                        *a = _mm512_fmadd_ps(_mm512_loadu_ps(src.add(16 * q)), b, *a);
                    }
                }
            }
            for (&r, &x) in rc.remainder().iter().zip(vc.remainder()) {
                let src = t.at.add(r as usize * w);
                let b = _mm512_set1_ps(x);
                for (q, a) in acc[0].iter_mut().enumerate() {
                    *a = _mm512_fmadd_ps(_mm512_loadu_ps(src.add(16 * q)), b, *a);
                }
            }
            for q in 0..V {
                let mut v = acc[0][q];
                for set in acc.iter().skip(1) {
                    v = _mm512_add_ps(v, set[q]);
                }
                _mm512_storeu_ps(lanes.as_mut_ptr().add(16 * q), v);
            }
            for (l, &v) in lanes[..t.rows].iter().enumerate() {
                let d = t.y.add((t.r0 + l) * n + j);
                *d = if t.accumulate { *d + v } else { v };
            }
        }
    }
}

/// One task's share of [`SparseB::tile`]: its tile of A transposed, the output, the tile's
/// first row and row count, its columns.
struct Tile {
    at: *const f32,
    y: *mut f32,
    r0: usize,
    rows: usize,
    cols: (usize, usize),
    accumulate: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::Rng;

    fn reference(m: usize, k: usize, n: usize, a: &[f32], b: &[f32]) -> Vec<f32> {
        let mut y = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut s = 0f64;
                for p in 0..k {
                    s += a[i * k + p] as f64 * b[p * n + j] as f64;
                }
                y[i * n + j] = s as f32;
            }
        }
        y
    }

    /// Random `k x n` weights with about `density` of them non-zero, one column empty.
    fn sparse(rng: &mut Rng, k: usize, n: usize, density: f32) -> Vec<f32> {
        let mut b: Vec<f32> = (0..k * n)
            .map(|_| {
                let keep = rng.unit() * 0.5 + 0.5 < density;
                if keep {
                    rng.unit()
                } else {
                    0.0
                }
            })
            .collect();
        if n > 2 {
            for p in 0..k {
                b[p * n + n / 2] = 0.0;
            }
        }
        b
    }

    fn check(m: usize, k: usize, n: usize, density: f32, accumulate: bool, transposed: bool) {
        let mut rng = Rng(m as u64 * 7919 + k as u64 * 31 + n as u64);
        let a: Vec<f32> = (0..m * k).map(|_| rng.unit()).collect();
        let b = sparse(&mut rng, k, n, density);
        let bt: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
        let s = if transposed {
            SparseB::new(&bt, (k, n), (1, k)).unwrap()
        } else {
            SparseB::new(&b, (k, n), (n, 1)).unwrap()
        };
        assert_eq!(s.nnz(), b.iter().filter(|&&v| v != 0.0).count());
        let mut want = reference(m, k, n, &a, &b);
        let init: Vec<f32> = (0..m * n).map(|i| (i % 7) as f32 * 0.25 - 0.5).collect();
        let mut y = if accumulate {
            for (w, c) in want.iter_mut().zip(&init) {
                *w += c;
            }
            init.clone()
        } else {
            vec![f32::NAN; m * n]
        };
        let mut scratch = vec![f32::NAN; s.scratch_len(m)];
        s.gemm(m, &a, &mut y, accumulate, &mut scratch);
        for (i, (g, w)) in y.iter().zip(&want).enumerate() {
            assert!(
                (g - w).abs() <= 1e-4 * (1.0 + w.abs()),
                "{m}x{k}x{n} at {density}: y[{i}] = {g}, want {w}"
            );
        }
        // Deterministic: the same input gives the same bytes, at 1 and 2 threads.
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let mut y2 = if accumulate {
            init.clone()
        } else {
            vec![0f32; m * n]
        };
        pool.install(|| s.gemm(m, &a, &mut y2, accumulate, &mut scratch));
        assert_eq!(
            y.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            y2.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
    }

    #[test]
    fn matches_the_dense_product_on_near_miss_shapes() {
        if !crate::kernels::par::has_avx512f() {
            return;
        }
        // Rows: one (the batch-1 head), under one vector, each tile width and its tails,
        // several tiles; odd k and n; dense, sparse and very sparse B; C preloaded or not.
        for &(m, k, n) in &[
            (1, 37, 19),
            (1, 512, 100),
            (2, 5, 3),
            (15, 33, 17),
            (16, 64, 40),
            (17, 31, 9),
            (32, 70, 41),
            (33, 16, 5),
            (48, 9, 33),
            (63, 20, 7),
            (64, 18, 11),
            (65, 25, 13),
            (130, 19, 6),
        ] {
            for density in [1.0, 0.3, 0.05] {
                check(m, k, n, density, false, false);
            }
            check(m, k, n, 0.2, true, true);
        }
    }

    #[test]
    fn an_all_zero_matrix_writes_zeros_or_keeps_c() {
        if !crate::kernels::par::has_avx512f() {
            return;
        }
        let (m, k, n) = (20, 8, 6);
        let s = SparseB::new(&vec![0.0; k * n], (k, n), (n, 1)).unwrap();
        assert_eq!(s.nnz(), 0);
        let a = vec![1.0; m * k];
        let mut scratch = vec![0f32; s.scratch_len(m)];
        let mut y = vec![f32::NAN; m * n];
        s.gemm(m, &a, &mut y, false, &mut scratch);
        assert!(y.iter().all(|&v| v == 0.0));
        let mut y = vec![2.5; m * n];
        s.gemm(m, &a, &mut y, true, &mut scratch);
        assert!(y.iter().all(|&v| v == 2.5));
    }
}
