//! The one matrix-multiply kernel behind Conv, ConvTranspose, Gemm and MatMul: packed panels,
//! a register-tiled micro-kernel the compiler vectorises, and f64 results.
//!
//! Precision policy. The product of two f32 values is exact in f64 (48 significant bits), so
//! packing f32 operands as f64 and accumulating in f64 gives dot products whose only error is
//! the f64 rounding of the sums (about `k * 2^-53` relative), far below f32 resolution: the
//! final rounding to f32 is then almost always the correctly rounded result. That is the
//! oracle property we want, and on this machine (SSE2 code, no target-cpu flags) it still runs
//! ResNet-50 in a few seconds, so the f32 path accumulates fully in f64 as well.
//!
//! Blocking. `k` is cut into blocks of [`KC`]; for each block both operands are packed into
//! contiguous panels (`MR` rows of A, `NR` columns of B, zero-padded at the edges), and the
//! micro-kernel keeps an `MR x NR` tile of accumulators in registers while it walks the block.
//! A `B` panel (`KC * NR` elements) stays in L1 while every `A` panel streams past it.

/// A read-only strided matrix view: element `(r, c)` is `data[r * rs + c * cs]`.
#[derive(Clone, Copy)]
pub(crate) struct Mat<'a, T> {
    pub data: &'a [T],
    pub rs: usize,
    pub cs: usize,
}

impl<'a, T: Copy> Mat<'a, T> {
    /// A row-major matrix with `cols` columns.
    pub fn rows(data: &'a [T], cols: usize) -> Self {
        Mat {
            data,
            rs: cols,
            cs: 1,
        }
    }

    /// The transpose of this view.
    pub fn t(self) -> Self {
        Mat {
            data: self.data,
            rs: self.cs,
            cs: self.rs,
        }
    }

    fn at(&self, r: usize, c: usize) -> T {
        self.data[r * self.rs + c * self.cs]
    }
}

/// Rows of A per micro-tile.
const MR: usize = 4;
/// Columns of B per micro-tile.
const NR: usize = 4;
/// Depth of one packed block.
const KC: usize = 256;

/// Element types the kernel accepts; they are widened to f64 when packed.
pub(crate) trait Real: Copy {
    fn widen(self) -> f64;
}
impl Real for f32 {
    fn widen(self) -> f64 {
        self as f64
    }
}
impl Real for f64 {
    fn widen(self) -> f64 {
        self
    }
}

/// `c = a * b` for an `m x k` matrix `a` and a `k x n` matrix `b`; `c` is `m x n` row-major
/// and is overwritten.
pub(crate) fn matmul<T: Real>(m: usize, n: usize, k: usize, a: Mat<T>, b: Mat<T>, c: &mut [f64]) {
    debug_assert_eq!(c.len(), m * n);
    c.fill(0.0);
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    let mp = m.div_ceil(MR);
    let np = n.div_ceil(NR);
    let mut apack = vec![0f64; mp * MR * KC.min(k)];
    let mut bpack = vec![0f64; np * NR * KC.min(k)];
    for p0 in (0..k).step_by(KC) {
        let kc = KC.min(k - p0);
        // B panels: for panel jp, element (p, jj) at (jp * kc + p) * NR + jj.
        for jp in 0..np {
            let panel = &mut bpack[jp * kc * NR..(jp + 1) * kc * NR];
            for (p, row) in panel.chunks_exact_mut(NR).enumerate() {
                for (jj, slot) in row.iter_mut().enumerate() {
                    let j = jp * NR + jj;
                    *slot = if j < n { b.at(p0 + p, j).widen() } else { 0.0 };
                }
            }
        }
        // A panels: for panel ip, element (p, ii) at (ip * kc + p) * MR + ii.
        for ip in 0..mp {
            let panel = &mut apack[ip * kc * MR..(ip + 1) * kc * MR];
            for (p, col) in panel.chunks_exact_mut(MR).enumerate() {
                for (ii, slot) in col.iter_mut().enumerate() {
                    let i = ip * MR + ii;
                    *slot = if i < m { a.at(i, p0 + p).widen() } else { 0.0 };
                }
            }
        }
        for jp in 0..np {
            let bp = &bpack[jp * kc * NR..(jp + 1) * kc * NR];
            for ip in 0..mp {
                let ap = &apack[ip * kc * MR..(ip + 1) * kc * MR];
                let acc = micro(ap, bp);
                for (ii, row) in acc.iter().enumerate() {
                    let i = ip * MR + ii;
                    if i >= m {
                        break;
                    }
                    let j0 = jp * NR;
                    let w = NR.min(n - j0);
                    for (dst, &v) in c[i * n + j0..i * n + j0 + w].iter_mut().zip(row) {
                        *dst += v;
                    }
                }
            }
        }
    }
}

/// One `MR x NR` tile over a packed block: fixed-size arrays so the loops unroll and the
/// accumulators live in registers.
#[inline(always)]
fn micro(ap: &[f64], bp: &[f64]) -> [[f64; NR]; MR] {
    let mut acc = [[0f64; NR]; MR];
    for (a, b) in ap.chunks_exact(MR).zip(bp.chunks_exact(NR)) {
        let a: &[f64; MR] = a.try_into().expect("chunk of MR");
        let b: &[f64; NR] = b.try_into().expect("chunk of NR");
        for ii in 0..MR {
            for jj in 0..NR {
                acc[ii][jj] += a[ii] * b[jj];
            }
        }
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_naive_on_ragged_sizes() {
        for &(m, n, k) in &[
            (1, 1, 1),
            (5, 7, 3),
            (9, 13, 300),
            (4, 4, 256),
            (3, 17, 513),
        ] {
            let a: Vec<f32> = (0..m * k).map(|i| ((i * 7 % 11) as f32) - 5.0).collect();
            let b: Vec<f32> = (0..k * n).map(|i| ((i * 5 % 13) as f32) * 0.5).collect();
            let mut c = vec![0.0; m * n];
            matmul(m, n, k, Mat::rows(&a, k), Mat::rows(&b, n), &mut c);
            for i in 0..m {
                for j in 0..n {
                    let want: f64 = (0..k)
                        .map(|p| a[i * k + p] as f64 * b[p * n + j] as f64)
                        .sum();
                    assert_eq!(c[i * n + j], want, "({m},{n},{k}) at ({i},{j})");
                }
            }
            // Transposed views read the same numbers.
            let at: Vec<f32> = (0..k * m).map(|idx| a[(idx % m) * k + idx / m]).collect();
            let mut c2 = vec![0.0; m * n];
            matmul(m, n, k, Mat::rows(&at, m).t(), Mat::rows(&b, n), &mut c2);
            assert_eq!(c, c2);
        }
    }
}
