//! ConvTranspose (1-D and 2-D) as GEMM + col2im: per image and group, `col = W_g^T * X_g`
//! (one `gemm` call of `(C_out/g * kh * kw) x (H * W) x C_in/g`), then each column row is added
//! into the output plane at the shifted, strided positions its kernel tap maps to. Unlike a conv
//! over a zero-inserted input, no multiply touches a zero.

use rayon::prelude::*;

/// One ConvTranspose, shapes and geometry resolved at compile time.
pub(crate) struct Deconv {
    pub batch: usize,
    pub c_in: usize,
    pub c_out: usize,
    pub group: usize,
    /// Input and output spatial sizes `[h, w]` (1-D ops have `h == 1`).
    pub inp: [usize; 2],
    pub out: [usize; 2],
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub dilation: [usize; 2],
    /// Padding before each dim; negative when the output is larger than the full size
    /// (`SAME_*` with a large `output_shape`).
    pub pad: [i64; 2],
    /// `[C_in, C_out/g, kh, kw]`, as the model stores it.
    pub weights: Vec<f32>,
    pub bias: Option<Vec<f32>>,
}

impl Deconv {
    fn rows(&self) -> usize {
        self.c_out / self.group * self.kernel[0] * self.kernel[1]
    }

    /// The column buffer: one group's `rows x (h * w)` product.
    pub(crate) fn scratch_len(&self) -> usize {
        self.rows() * self.inp[0] * self.inp[1]
    }

    /// For tap `k` of a dim of input size `n`: the input range whose outputs `i * s + k * d -
    /// pad` fall inside `0..out`, and the output index of its first element.
    fn tap_range(&self, dim: usize, k: usize) -> (usize, usize, usize) {
        let (s, d, p) = (
            self.stride[dim] as i64,
            self.dilation[dim] as i64,
            self.pad[dim],
        );
        let (n, out) = (self.inp[dim] as i64, self.out[dim] as i64);
        let shift = k as i64 * d - p;
        // Smallest i with i * s + shift >= 0, largest with i * s + shift < out.
        let lo = if shift >= 0 { 0 } else { (-shift + s - 1) / s };
        let hi = if out - shift <= 0 {
            0
        } else {
            ((out - shift + s - 1) / s).min(n)
        };
        if hi <= lo {
            return (0, 0, 0);
        }
        (lo as usize, hi as usize, (lo * s + shift) as usize)
    }

    pub(crate) fn run(&self, x: &[f32], y: &mut [f32], col: &mut [f32]) {
        let (cg, mg) = (self.c_in / self.group, self.c_out / self.group);
        let rows = self.rows();
        let inn = self.inp[0] * self.inp[1];
        let on = self.out[0] * self.out[1];
        let (kh, kw) = (self.kernel[0], self.kernel[1]);
        let col = &mut col[..rows * inn];
        let threads = rayon::current_num_threads();
        let ranges_h: Vec<_> = (0..kh).map(|k| self.tap_range(0, k)).collect();
        let ranges_w: Vec<_> = (0..kw).map(|k| self.tap_range(1, k)).collect();
        let (sw, iw_n, ow_n) = (self.stride[1], self.inp[1], self.out[1]);
        for n in 0..self.batch {
            for grp in 0..self.group {
                let xg = &x[(n * self.c_in + grp * cg) * inn..][..cg * inn];
                let wg = &self.weights[grp * cg * rows..][..cg * rows];
                // col[r][j] = sum_c wg[c][r] * xg[c][j].
                // SAFETY: `wg` is cg x rows (read transposed: row stride 1, column stride rows),
                // `xg` cg x inn, `col` rows x inn, all in bounds; `col` is disjoint from both.
                unsafe {
                    crate::kernels::sgemm(
                        (rows, inn, cg),
                        col.as_mut_ptr(),
                        inn,
                        false,
                        (wg.as_ptr(), 1, rows),
                        (xg.as_ptr(), inn, 1),
                        1.0,
                        threads,
                    );
                }
                let yg = &mut y[(n * self.c_out + grp * mg) * on..][..mg * on];
                let col = &*col;
                let plane = |(mi, yp): (usize, &mut [f32])| {
                    yp.fill(self.bias.as_ref().map_or(0.0, |b| b[grp * mg + mi]));
                    for (ki, &(h_lo, h_hi, oh0)) in ranges_h.iter().enumerate() {
                        for (kj, &(w_lo, w_hi, ow0)) in ranges_w.iter().enumerate() {
                            if w_hi == w_lo {
                                continue;
                            }
                            let src = &col[((mi * kh + ki) * kw + kj) * inn..][..inn];
                            for (t, ih) in (h_lo..h_hi).enumerate() {
                                let oh = oh0 + t * self.stride[0];
                                let s = &src[ih * iw_n + w_lo..ih * iw_n + w_hi];
                                let d = &mut yp[oh * ow_n + ow0..];
                                if sw == 1 {
                                    for (o, &v) in d[..s.len()].iter_mut().zip(s) {
                                        *o += v;
                                    }
                                } else {
                                    for (t, &v) in s.iter().enumerate() {
                                        d[t * sw] += v;
                                    }
                                }
                            }
                        }
                    }
                };
                if threads > 1 && mg * on >= 1 << 14 {
                    yg.par_chunks_mut(on).enumerate().for_each(plane);
                } else {
                    yg.chunks_mut(on).enumerate().for_each(plane);
                }
            }
        }
    }
}
