//! Direct convolution vectorised over output pixels, for AVX-512 hosts. Output pixel `(y, x)`
//! is computed at "wide" column `t = y * wq + x` of the phase images' row pitch `wq` (see
//! `gemm_conv::Phases`), where every tap `k` reads `t + offset[k]`: a register block is 8
//! output channels x 48 columns (three vectors), and per tap 3 vector loads and 8 weight
//! broadcasts feed 24 FMAs. The `wq - w_out` columns past each output row (none for a 1x1
//! conv) are computed and dropped; masked loads and stores end each tile. A 1x1 conv reads
//! its input in place (or its subsampled phase image at a stride), stores into the output
//! rows and applies its epilogue in registers. `kernels::dense` gives it the 1x1 layers with
//! few output channels (SqueezeNet's squeeze layers), where the `gemm` crate's 6-column
//! micro-kernel leaves a ragged edge; any other conv is computed correctly too (the unit test
//! covers a padded 7x7 stride-2 stem), but measured no faster than im2col there
//! (`bench_wide`).

#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;

use crate::kernels::gemm_conv::Phases;
use crate::kernels::par::{for_tasks, SendPtr};
use crate::kernels::{epilogue, epilogue_in_place, pack_channel_blocks, InRegs};
use crate::spec::{ConvGeom, Epilogue};

/// Output channels per register block.
const R: usize = 8;
/// Vectors of 16 columns per register block.
const NV: usize = 3;
/// Columns per register block.
const TB: usize = 16 * NV;
/// About this many wide columns per tile: whole output rows whose inputs stay in L2 while
/// every block of output channels reads them.
const TILE_COLS: usize = 768;

/// A dense (possibly grouped or strided) convolution computed over wide output rows.
pub(crate) struct WideConv {
    geom: ConvGeom,
    ph: Phases,
    /// Per group, per block of [`R`] output channels: `[k][R]` with `k = cin_g * kh * kw`,
    /// the channels past the group's last zero.
    packed: Vec<f32>,
    /// Offset of tap `k = (ci, ky, kx)` of group 0 in the phase images, relative to the wide
    /// column (group `g` adds `g * cin_g` channel planes).
    offsets: Vec<u32>,
    epi: Epilogue,
    /// Output rows per tile.
    rows: usize,
    threads: usize,
}

impl WideConv {
    /// `weights` is ONNX's `[c_out, c_in/group, kh, kw]`. The host must have AVX-512F.
    pub(crate) fn new(geom: ConvGeom, weights: &[f32], epi: Epilogue, threads: usize) -> WideConv {
        let g = geom;
        let ph = Phases::of(&g);
        let (cin_g, cout_g) = (g.cin_g(), g.cout_g());
        let k = cin_g * g.kh * g.kw;
        let packed = pack_channel_blocks((g.group, cout_g, k), R, |c| weights[c * k..][..k].iter());
        let offsets = ph.taps(&g, 0).collect();
        WideConv {
            geom,
            ph,
            packed,
            offsets,
            epi,
            rows: (TILE_COLS / ph.wq).clamp(1, g.h_out),
            threads: threads.max(1),
        }
    }

    /// A 1x1 conv without padding: its wide columns are its output pixels (`wq == w_out`),
    /// read from the input in place (stride 1) or from its phase-(0, 0) image.
    fn pointwise(&self) -> bool {
        let g = &self.geom;
        g.kh == 1 && g.kw == 1 && g.pads == [0; 4]
    }

    /// f32 elements of the phase images in the scratch: none for a 1x1 conv at stride 1, the
    /// phase-(0, 0) image at a larger stride, else every phase image plus the slack that the
    /// dropped columns of the last row read past them.
    fn ph_len(&self) -> usize {
        let g = &self.geom;
        if self.pointwise() {
            if g.stride == [1, 1] {
                0
            } else {
                g.c_in * g.h_out * g.w_out
            }
        } else {
            self.ph.len() + 2 * self.ph.wq + TB
        }
    }

    fn tile_cols(&self) -> usize {
        self.rows * self.ph.wq
    }

    /// f32 elements of scratch one image needs: the phase images, then one `R x tile` block
    /// of wide outputs per thread (none for a 1x1 conv, which stores into the output).
    pub(crate) fn scratch_len(&self) -> usize {
        let tiles = if self.pointwise() {
            0
        } else {
            self.threads * R * self.tile_cols()
        };
        self.ph_len() + tiles
    }

    /// One image: `input` is `[c_in, h, w]`; `output` and the residuals are
    /// `[c_out, h_out, w_out]` (a second residual is added after the first).
    pub(crate) fn run(
        &self,
        input: &[f32],
        res: [Option<&[f32]>; 2],
        output: &mut [f32],
        scratch: &mut [f32],
    ) {
        let g = &self.geom;
        let (phases, bufs) = scratch.split_at_mut(self.ph_len());
        let phases: &[f32] = if self.ph_len() == 0 {
            input
        } else {
            self.ph.fill(g, input, phases);
            phases
        };
        assert_eq!(output.len(), g.c_out * g.h_out * g.w_out);
        // The residuals are read like the output (raw pointers in the fused epilogue).
        assert!(res.iter().flatten().all(|r| r.len() >= output.len()));
        assert!(bufs.len() >= self.scratch_len() - self.ph_len());
        let tiles = g.h_out.div_ceil(self.rows);
        let n_tasks = g.group * tiles;
        let (out, bufs) = (SendPtr(output.as_mut_ptr()), SendPtr(bufs.as_mut_ptr()));
        for_tasks(n_tasks, self.threads, |t, slot| {
            self.tile(t / tiles, t % tiles, phases, res, out, bufs, slot)
        });
    }

    /// Output rows of tile `tile` of group `grp`, every output channel of the group.
    #[allow(clippy::too_many_arguments)]
    fn tile(
        &self,
        grp: usize,
        tile: usize,
        phases: &[f32],
        res: [Option<&[f32]>; 2],
        out: SendPtr,
        bufs: SendPtr,
        slot: usize,
    ) {
        let g = &self.geom;
        let (k, p, wq) = (self.offsets.len(), g.h_out * g.w_out, self.ph.wq);
        let (y0, y1) = (tile * self.rows, ((tile + 1) * self.rows).min(g.h_out));
        let (t0, t1) = (y0 * wq, y1 * wq);
        let src = &phases[grp * g.cin_g() * self.ph.hq * wq..];
        // Every read is `src[offsets[k] + t]` for `t < t1` (masked past it): a tap of an
        // output pixel or of a dropped column, inside the phase images and their slack.
        let reach = self.offsets.iter().max().map_or(0, |&o| o as usize) + t1;
        assert!(reach <= src.len());
        let blocks = g.cout_g().div_ceil(R);
        for blk in 0..blocks {
            let w = &self.packed[(grp * blocks + blk) * k * R..][..k * R];
            let c0 = grp * g.cout_g() + blk * R;
            let nr = R.min((grp + 1) * g.cout_g() - c0);
            // A 1x1 conv stores into the output rows themselves (their wide columns are the
            // output pixels); others into this thread's tile of wide outputs.
            let (dst, rs) = if self.pointwise() {
                // SAFETY: channels c0..c0 + nr, pixels t0..t1 of the output (asserted
                // length), written by this task only.
                (unsafe { out.get().add(c0 * p) }, p)
            } else {
                let tc = self.tile_cols();
                // SAFETY: slot `slot` of the scratch's `threads` tiles, owned by this thread.
                (
                    unsafe { bufs.get().add(slot * R * tc) }.wrapping_sub(t0),
                    tc,
                )
            };
            // A 1x1 conv's epilogue runs in registers (Leaky Relu in a pass after).
            let mut fused = InRegs::<R>::of(&self.epi, c0, nr).filter(|_| self.pointwise());
            let mut t = t0;
            while t < t1 {
                let n = TB.min(t1 - t);
                if let Some(f) = &mut fused {
                    f.res = res.map(|r| r.map(|r| r[c0 * p + t..].as_ptr()));
                }
                // SAFETY: AVX-512F is required by `new`'s contract; the reads are in bounds
                // (asserted above, masked past `t1`); the stores are `nr` rows of `n` columns
                // at `t` of `dst`, inside the output or the tile.
                unsafe {
                    product(
                        w.as_ptr(),
                        &self.offsets,
                        src.as_ptr().add(t),
                        dst.wrapping_add(t),
                        rs,
                        (nr, n),
                        fused.as_ref(),
                    )
                };
                t += TB;
            }
            if fused.is_some() {
                continue;
            }
            for r in 0..nr {
                let c = c0 + r;
                let bias = self.epi.bias.as_ref().map_or(0.0, |b| b[c]);
                let (a, b) = (c * p + y0 * g.w_out, c * p + y1 * g.w_out);
                // SAFETY: this task's own rows of output channel `c`.
                let o = unsafe { std::slice::from_raw_parts_mut(out.get().add(a), b - a) };
                let rr = res.map(|r| r.map(|r| &r[a..b]));
                if self.pointwise() {
                    epilogue_in_place(o, bias, rr, self.epi.act);
                } else {
                    // SAFETY: row `r` of this thread's tile, written above.
                    let wide = unsafe {
                        std::slice::from_raw_parts(dst.wrapping_add(r * rs + t0), t1 - t0)
                    };
                    for (y, o) in o.chunks_exact_mut(g.w_out).enumerate() {
                        let rr = rr.map(|r| r.map(|r| &r[y * g.w_out..(y + 1) * g.w_out]));
                        epilogue(Some(&wide[y * wq..]), bias, rr, o, self.epi.act);
                    }
                }
            }
        }
    }
}

/// `dst[r][t] = Σ_k w[k][r] · src[offsets[k] + t]` for `r < nr` and `t < n` (at most [`TB`]),
/// in `R x NV` accumulators, then through `fused` (a 1x1 conv's epilogue) if given: per tap,
/// `NV` masked vector loads and [`R`] weight broadcasts feed `R * NV` FMAs.
///
/// # Safety
/// The host has AVX-512F; `w` holds `offsets.len() * R` floats; `src[offsets[k] + t]` is in
/// bounds for every `k` and `t < n`; `dst` rows `r < nr` (stride `rs`) hold `n` floats, and so
/// do `fused`'s residuals.
#[target_feature(enable = "avx512f")]
unsafe fn product(
    w: *const f32,
    offsets: &[u32],
    src: *const f32,
    dst: *mut f32,
    rs: usize,
    (nr, n): (usize, usize),
    fused: Option<&InRegs<R>>,
) {
    // SAFETY: see the contract above; masked-off lanes are neither read nor written.
    unsafe {
        let masks: [__mmask16; NV] = std::array::from_fn(|v| {
            let left = n.saturating_sub(16 * v).min(16);
            ((1u32 << left) - 1) as __mmask16
        });
        let mut acc = [[_mm512_setzero_ps(); NV]; R];
        let mut wk = w;
        for &o in offsets {
            let s = src.add(o as usize);
            let x: [__m512; NV] =
                std::array::from_fn(|v| _mm512_maskz_loadu_ps(masks[v], s.add(16 * v)));
            for a in acc.iter_mut() {
                let b = _mm512_set1_ps(*wk);
                for v in 0..NV {
                    a[v] = _mm512_fmadd_ps(b, x[v], a[v]);
                }
                wk = wk.add(1);
            }
        }
        for (r, a) in acc.iter().enumerate().take(nr) {
            for v in 0..NV {
                let mut y = a[v];
                if let Some(f) = fused {
                    y = _mm512_add_ps(y, _mm512_set1_ps(f.bias[r]));
                    for res in f.res.iter().flatten() {
                        let at = res.add(r * rs + 16 * v);
                        y = _mm512_add_ps(y, _mm512_maskz_loadu_ps(masks[v], at));
                    }
                    y = _mm512_max_ps(y, _mm512_set1_ps(f.lo));
                    y = _mm512_min_ps(y, _mm512_set1_ps(f.hi));
                }
                _mm512_mask_storeu_ps(dst.add(r * rs + 16 * v), masks[v], y);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::gemm_conv::GemmConv;
    use crate::kernels::par::has_avx512f;
    use crate::spec::Activation;
    use crate::testutil::{in_pool, interleaved_ms, pattern, reference_conv, rel_err};

    /// A conv of kernel `k` at `stride`, undilated (see `testutil::conv_geom`).
    fn geom(
        ch: (usize, usize, usize),
        hw: (usize, usize),
        (k, stride): (usize, usize),
        pads: [usize; 4],
    ) -> ConvGeom {
        crate::testutil::conv_geom(ch, hw, (k, stride, 1), pads)
    }

    /// Against the reference convolution (on AVX-512 hosts): 1x1 in place and strided, a
    /// padded 7x7 stride-2 stem, grouped and partial channel blocks, masked tile ends, several
    /// tiles, two residuals, 1 and 2 threads, NaN scratch.
    #[test]
    fn matches_the_reference_convolution() {
        if !has_avx512f() {
            return;
        }
        let cases = [
            geom((16, 24, 1), (9, 7), (1, 1), [0; 4]),
            geom((16, 20, 2), (40, 37), (1, 1), [0; 4]),
            geom((12, 16, 1), (11, 9), (1, 2), [0; 4]),
            geom((3, 20, 1), (47, 45), (7, 2), [3; 4]),
            geom((6, 12, 3), (13, 14), (3, 1), [1, 0, 2, 1]),
        ];
        for g in cases {
            let x = pattern(g.c_in * g.h * g.w, 37, 101, 0.02);
            let w = pattern(g.c_out * g.cin_g() * g.kh * g.kw, 53, 97, 0.01);
            let n = g.c_out * g.h_out * g.w_out;
            let (r1, r2) = (pattern(n, 7, 11, 0.3), pattern(n, 5, 13, 0.2));
            for (threads, residuals, act) in [
                (1, 0, Activation::Relu),
                (2, 1, Activation::None),
                (2, 2, Activation::Clip(-0.5, 0.5)),
            ] {
                let epi = Epilogue {
                    bias: Some(pattern(g.c_out, 3, 17, 0.1)),
                    residual: residuals > 0,
                    act,
                };
                let r = [
                    (residuals > 0).then_some(&r1[..]),
                    (residuals > 1).then_some(&r2[..]),
                ];
                let kern = WideConv::new(g, &w, epi.clone(), threads);
                let mut scratch = vec![f32::NAN; kern.scratch_len()];
                let mut y = vec![f32::NAN; n];
                in_pool(threads, || kern.run(&x, r, &mut y, &mut scratch));
                let e = rel_err(&y, &reference_conv(&g, &x, &w, &epi, r));
                assert!(e < 1e-5, "{g:?} {threads} threads: rel err {e:e}");
            }
        }
    }

    /// The wide kernel against im2col + gemm, interleaved in one process:
    /// `cargo test --release -p ssc-jit bench_wide -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn bench_wide() {
        if !has_avx512f() {
            return;
        }
        let shapes = [
            geom((3, 64, 1), (224, 224), (7, 2), [3; 4]),
            geom((3, 32, 1), (224, 224), (3, 2), [1; 4]),
            geom((3, 64, 1), (224, 224), (3, 2), [0; 4]),
            geom((64, 64, 1), (56, 56), (1, 1), [0; 4]),
            geom((128, 128, 1), (28, 28), (1, 1), [0; 4]),
            geom((256, 256, 1), (14, 14), (1, 1), [0; 4]),
            geom((512, 512, 1), (7, 7), (1, 1), [0; 4]),
            geom((64, 128, 1), (56, 56), (1, 2), [0; 4]),
            geom((128, 256, 1), (28, 28), (1, 2), [0; 4]),
            geom((256, 512, 1), (14, 14), (1, 2), [0; 4]),
            geom((16, 96, 1), (112, 112), (1, 1), [0; 4]),
            geom((96, 24, 1), (56, 56), (1, 1), [0; 4]),
            geom((24, 144, 1), (56, 56), (1, 1), [0; 4]),
            geom((144, 24, 1), (56, 56), (1, 1), [0; 4]),
            geom((32, 192, 1), (28, 28), (1, 1), [0; 4]),
            geom((64, 16, 1), (55, 55), (1, 1), [0; 4]),
            geom((16, 64, 1), (55, 55), (1, 1), [0; 4]),
            geom((128, 16, 1), (55, 55), (1, 1), [0; 4]),
            geom((128, 32, 1), (27, 27), (1, 1), [0; 4]),
            geom((256, 32, 1), (27, 27), (1, 1), [0; 4]),
            geom((256, 48, 1), (13, 13), (1, 1), [0; 4]),
            geom((512, 64, 1), (13, 13), (1, 1), [0; 4]),
            geom((32, 16, 1), (112, 112), (1, 1), [0; 4]),
        ];
        for g in shapes {
            let x = pattern(g.c_in * g.h * g.w, 37, 101, 0.02);
            let w = pattern(g.c_out * g.cin_g() * g.kh * g.kw, 53, 97, 0.01);
            let epi = Epilogue {
                bias: Some(vec![0.1; g.c_out]),
                residual: false,
                act: Activation::Relu,
            };
            let gc = GemmConv::new(g, w.clone(), epi.clone(), 1);
            let wc = WideConv::new(g, &w, epi.clone(), 1);
            let mut scratch = vec![0.0; gc.scratch_len().max(wc.scratch_len())];
            let mut y = vec![0.0; g.c_out * g.h_out * g.w_out];
            let [a, b] = interleaved_ms(15, |i| match i {
                0 => gc.run(&x, None, None, &mut y, &mut scratch),
                _ => wc.run(&x, [None, None], &mut y, &mut scratch),
            });
            let gf = |ms: f64| 2.0 * g.macs() as f64 / ms / 1e6;
            eprintln!(
                "{:>3}->{:<3} g{} {:>3}x{:<3} k{} s{}: gemm {a:.3} ms ({:.0} GF/s)  wide {b:.3} ({:.0})",
                g.c_in, g.c_out, g.group, g.h, g.w, g.kh, g.stride[0], gf(a), gf(b)
            );
        }
    }
}
