//! The stride-2 7x7 convolution of a CNN stem (ResNet's) with fewer multiplies: split into
//! its input's four column/row phases it is a stride-1 4x4 convolution over `4 c_in`
//! channels, which Winograd F(3x3, 4x4) computes with 36 multiplies per 3x3 outputs and
//! channel pair instead of 144.
//!
//! # Algebra
//! With `xp` the zero-padded input, output `(oy, ox)` is `Σ_{c, ky, kx} w[c][ky][kx]
//! xp[c][2 oy + ky][2 ox + kx]`. Writing `ky = 2a + p`, `kx = 2b + q` (`p, q` in {0, 1}):
//! `xp[c][2 oy + ky][2 ox + kx] = X[c, p, q][oy + a][ox + b]` with the phase images `X[c, p,
//! q][i][j] = xp[c][2i + p][2j + q]`, so the output is the valid stride-1 correlation of the
//! `4 c_in` phase images with the 4x4 kernels `w'[c, p, q][a][b] = w[c][2a + p][2b + q]`
//! (zero where `2a + p` or `2b + q` reaches 7). Per output and pair of original channels
//! that is 4 phase channels x 16 taps = 64 products (49 of them nonzero) before Winograd and
//! 4 x 36 / 9 = 16 after it, against 49 direct: 3x fewer multiplies, for the cost of
//! splitting the input (`4 c_in` small planes) and of the transforms. ResNet's stem (3 -> 64
//! channels, 224x224): 2.29-2.39 ms direct, 1.87-2.01 ms this way, in the model.
//!
//! # Accuracy
//! F(3x3, 4x4) shares F(4x4, 3x3)'s points and input transform; its filter and output
//! transforms have the same magnitudes, so its rounding is like F(4x4)'s (see
//! [`winograd`](crate::kernels::winograd)): the unit test bounds it at 2e-5 of the output's
//! scale.

use rayon::prelude::*;

use crate::kernels::par::simd;
use crate::kernels::winograd::{Tile, Winograd};
use crate::spec::{ConvGeom, Epilogue};

/// A stride-2 7x7 convolution computed on its input phases by F(3x3, 4x4).
pub(crate) struct PhaseConv {
    geom: ConvGeom,
    /// The stride-1 4x4 convolution over the `4 c_in` phase images (`h_out + 3` x `w_out + 3`,
    /// unpadded).
    inner: Winograd,
}

impl PhaseConv {
    /// Whether `g` is a stem this kernel computes faster than the direct one: 7x7 at stride
    /// 2, undilated, ungrouped, with few input channels (the phase split multiplies them by 4,
    /// and the products are `4 c_in` deep) and 16+ outputs.
    pub(crate) fn suits(g: &ConvGeom) -> bool {
        g.kh == 7
            && g.kw == 7
            && g.stride == [2, 2]
            && g.dilation == [1, 1]
            && g.group == 1
            && g.c_in <= 4
            && g.c_out >= 16
            && g.h_out >= 3
            && g.w_out >= 3
    }

    /// The phase channel of input channel `c`, row phase `p`, column phase `q`.
    fn channel(c: usize, p: usize, q: usize) -> usize {
        4 * c + 2 * p + q
    }

    /// Builds the kernel for a geometry [`PhaseConv::suits`]; `weights` is ONNX's
    /// `[c_out, c_in, 7, 7]`.
    pub(crate) fn new(geom: ConvGeom, weights: &[f32], epi: Epilogue, threads: usize) -> Self {
        debug_assert!(PhaseConv::suits(&geom));
        let ci = 4 * geom.c_in;
        let inner_geom = ConvGeom {
            c_in: ci,
            c_out: geom.c_out,
            group: 1,
            h: geom.h_out + 3,
            w: geom.w_out + 3,
            kh: 4,
            kw: 4,
            stride: [1, 1],
            dilation: [1, 1],
            pads: [0; 4],
            h_out: geom.h_out,
            w_out: geom.w_out,
        };
        let mut w = vec![0.0f32; geom.c_out * ci * 16];
        for k in 0..geom.c_out {
            for c in 0..geom.c_in {
                for (ky, kx) in (0..7).flat_map(|ky| (0..7).map(move |kx| (ky, kx))) {
                    let pc = PhaseConv::channel(c, ky % 2, kx % 2);
                    w[((k * ci + pc) * 4 + ky / 2) * 4 + kx / 2] =
                        weights[((k * geom.c_in + c) * 7 + ky) * 7 + kx];
                }
            }
        }
        let inner = Winograd::new(inner_geom, &w, epi, Tile::F3K4, threads);
        PhaseConv { geom, inner }
    }

    /// Floats of one phase image.
    fn plane(&self) -> usize {
        (self.geom.h_out + 3) * (self.geom.w_out + 3)
    }

    /// f32 elements of scratch one image needs: the phase images, then the inner kernel's.
    pub(crate) fn scratch_len(&self) -> usize {
        4 * self.geom.c_in * self.plane() + self.inner.scratch_len()
    }

    /// One image: `input` is `[c_in, h, w]`; `output` and the residuals are
    /// `[c_out, h_out, w_out]`.
    pub(crate) fn run(
        &self,
        input: &[f32],
        res: [Option<&[f32]>; 2],
        output: &mut [f32],
        scratch: &mut [f32],
    ) {
        let g = self.geom;
        assert!(input.len() == g.c_in * g.h * g.w);
        let (phased, rest) = scratch.split_at_mut(4 * g.c_in * self.plane());
        let (ph, pw) = (g.h_out + 3, g.w_out + 3);
        let (pt, pl) = (g.pads[0] as isize, g.pads[1] as isize);
        // `X[c, p, q][i][j] = xp[c][2i + p][2j + q]`, `xp[y][x] = input[y - pt][x - pl]` inside
        // the input and 0 outside.
        phased
            .par_chunks_mut(self.plane())
            .enumerate()
            .for_each(|(pc, dst)| {
                let (c, p, q) = (pc / 4, (pc / 2) % 2, pc % 2);
                let src = &input[c * g.h * g.w..(c + 1) * g.h * g.w];
                // Columns j with 0 <= 2j + q - pl < w.
                let first = |v: isize| (v.max(0) as usize).min(pw);
                let j0 = first((pl - q as isize + 1).div_euclid(2));
                let j1 = first((g.w as isize + pl - q as isize + 1).div_euclid(2)).max(j0);
                simd(
                    #[inline(always)]
                    || {
                        for (i, row) in dst.chunks_exact_mut(pw).enumerate().take(ph) {
                            let y = 2 * i as isize + p as isize - pt;
                            if y < 0 || y >= g.h as isize {
                                row.fill(0.0);
                                continue;
                            }
                            let line = &src[y as usize * g.w..(y as usize + 1) * g.w];
                            row[..j0].fill(0.0);
                            row[j1..].fill(0.0);
                            let off = q as isize - pl;
                            let from = (2 * j0 as isize + off) as usize;
                            for (d, &v) in
                                row[j0..j1].iter_mut().zip(line[from..].iter().step_by(2))
                            {
                                *d = v;
                            }
                        }
                    },
                );
            });
        self.inner.run(phased, res, output, rest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Activation;
    use crate::testutil::{conv_data, conv_geom, in_pool, ramp_epilogue, reference_conv, rel_err};

    /// Against the reference convolution: ResNet's stem at a small size, odd and even input
    /// sizes (the last phase rows and columns past the padded input), asymmetric pads, one to
    /// four input channels, a residual and activations, 1 and 2 threads, NaN-filled scratch.
    #[test]
    fn matches_the_reference_convolution() {
        for g in [
            conv_geom((3, 64, 1), (40, 40), (7, 2, 1), [3; 4]),
            conv_geom((3, 16, 1), (37, 29), (7, 2, 1), [3; 4]),
            conv_geom((1, 24, 1), (23, 26), (7, 2, 1), [2, 3, 1, 0]),
            conv_geom((4, 32, 1), (18, 21), (7, 2, 1), [0; 4]),
        ] {
            assert!(PhaseConv::suits(&g), "{g:?}");
            let (x, w, res) = conv_data(&g, 49);
            let p = g.h_out * g.w_out;
            for (threads, residual, act) in
                [(1, false, Activation::Relu), (2, true, Activation::None)]
            {
                let epi = ramp_epilogue(g.c_out, residual, act);
                let r = [residual.then_some(&res[..]), None];
                let want = reference_conv(&g, &x, &w, &epi, r);
                let k = PhaseConv::new(g, &w, epi, threads);
                let mut scratch = vec![f32::NAN; k.scratch_len()];
                let mut y = vec![f32::NAN; g.c_out * p];
                in_pool(threads, || k.run(&x, r, &mut y, &mut scratch));
                let e = rel_err(&y, &want);
                assert!(e < 2e-5, "{g:?} threads {threads}: rel err {e:e}");
            }
        }
    }
}
