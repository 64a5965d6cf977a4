//! Dense 3x3 stride-1 convolutions by Winograd's minimal filtering F(2x2, 3x3): 16 multiplies
//! per 2x2 output tile and channel pair instead of 36, so the GEMM work of ResNet-style layers
//! drops 2.25x; the transforms are linear-time and vectorised.
//!
//! # Algorithm
//! With `d` a 4x4 input patch and `g` the 3x3 kernel, the 2x2 output tile is
//! `Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A` (Lavin & Gray, 2016). Per layer:
//! - *Filter transform (compile time, in f64):* `U[ξ][k][c] = (G g_kc Gᵀ)[ξ]` for the 16
//!   positions `ξ` of the 4x4 transformed tile.
//! - *Input transform:* the zero-padded input is split into even and odd columns once per image,
//!   so the patch of tile `(ty, tx)` is columns `tx` and `tx + 1` of both halves in rows
//!   `2ty..2ty+4`: each transform is a loop over a tile row with contiguous loads and stores,
//!   `V[ξ][c][t] = (Bᵀ d_ct B)[ξ]`.
//! - *16 GEMMs per group:* `M[ξ] = U[ξ] · V[ξ]` (`c_out/group x c_in/group` times
//!   `c_in/group x tiles`), through the `gemm` crate.
//! - *Output transform and epilogue:* `Y = Aᵀ M A` per tile, interleaved into the output rows,
//!   then bias, residuals and the activation while the row is in L1. Tiles past an odd output
//!   edge are computed and dropped.
//!
//! Tiles are processed in blocks of whole tile rows sized so `V` and `M` stay in L2. Every phase
//! splits over the rayon pool (channels for the transforms, `(ξ, group)` products for the GEMMs);
//! the transforms are inlined into the pool's tasks, which run as AVX2 code where the host has
//! it (`par::simd`).
//!
//! # Accuracy
//! The transforms only add and subtract (`G` has halves, exact in binary), so compared with a
//! direct sum the result differs by reassociation: the measured relative error against the
//! reference executor is ~3e-7 (`tests/models.rs`, two layers with a residual), far inside the
//! JIT's 1e-4 contract. F(4x4,
//! 3x3) would save more multiplies but its transform constants amplify rounding by ~10-100x; it
//! is not used.

use crate::kernels::par::{for_ranges, par_units, SendPtr};
use crate::kernels::{epilogue, sgemm};
use crate::spec::{ConvGeom, Epilogue};

/// Bytes of the `V` and `M` blocks together: about half of the 1 MiB L2 per core.
const BLOCK_BYTES: usize = 512 * 1024;

/// Fewest tiles per block (unless the image has fewer): the GEMMs' `n`, below which `gemm`'s
/// packing and call overhead dominate.
const MIN_TILES: usize = 64;

/// Tiles handled per step of the output transform (stack buffers of this many floats).
const CHUNK: usize = 64;

/// A 3x3, stride-1, dilation-1 (possibly grouped) convolution computed by F(2x2, 3x3).
pub(crate) struct Winograd {
    geom: ConvGeom,
    /// `[16][c_out][cin_g]`: the transformed filters, one GEMM left operand per position.
    u: Vec<f32>,
    epi: Epilogue,
    /// Tile grid: `ceil(h_out / 2) x ceil(w_out / 2)`.
    th: usize,
    tw: usize,
    /// Tile rows per block.
    rows: usize,
}

impl Winograd {
    /// Whether F(2x2, 3x3) applies to `g` and beats im2col + GEMM on it. Its 16 GEMMs per block
    /// have depth `c_in / group` and width = tiles, so both must be large enough for `gemm` to
    /// run near peak. Measured against the tiled im2col path (single thread, `--kernels`):
    /// - ResNet-18 64->64 on 56x56 (784 tiles): 2.3-2.4 ms against 2.8; 256->256 on 14x14 (49
    ///   tiles): 2.0 against 2.9. Wins.
    /// - SqueezeNet 16->64 on 55x55: 1.0 ms against 0.78; 64->256 on 13x13 (49 tiles): 0.78
    ///   against 0.51; grouped 16-channel groups lose too. Shallow GEMMs, small widths.
    /// - 512->512 on 7x7 (16 tiles, a quarter of them padding): no faster.
    pub(crate) fn suits(g: &ConvGeom) -> bool {
        let tiles = g.h_out.div_ceil(2) * g.w_out.div_ceil(2);
        Winograd::applies(g)
            && g.cin_g() >= 64
            && g.cout_g() >= 64
            && tiles >= MIN_TILES / 2
            && (tiles >= 2 * MIN_TILES || g.cin_g() >= 128)
    }

    /// Whether F(2x2, 3x3) computes `g` at all: a 3x3, stride-1, undilated kernel with at least
    /// one whole tile of output.
    fn applies(g: &ConvGeom) -> bool {
        g.kh == 3
            && g.kw == 3
            && g.stride == [1, 1]
            && g.dilation == [1, 1]
            && g.h_out >= 2
            && g.w_out >= 2
    }

    /// Builds the kernel; `weights` is ONNX's `[c_out, c_in/group, 3, 3]`. The planner checked
    /// [`Winograd::suits`]; any geometry F(2x2, 3x3) applies to is computed correctly.
    pub(crate) fn new(geom: ConvGeom, weights: &[f32], epi: Epilogue) -> Winograd {
        debug_assert!(Winograd::applies(&geom));
        let (co, ci) = (geom.c_out, geom.cin_g());
        let mut u = vec![0.0f32; 16 * co * ci];
        for k in 0..co {
            for c in 0..ci {
                let w = &weights[(k * ci + c) * 9..(k * ci + c + 1) * 9];
                let t = filter_transform(w);
                for (xi, &v) in t.iter().enumerate() {
                    u[(xi * co + k) * ci + c] = v;
                }
            }
        }
        let th = geom.h_out.div_ceil(2);
        let tw = geom.w_out.div_ceil(2);
        let per_row = 16 * (geom.c_in + geom.c_out) * tw * 4;
        let rows = (BLOCK_BYTES / per_row)
            .max(MIN_TILES.div_ceil(tw))
            .clamp(1, th);
        Winograd {
            geom,
            u,
            epi,
            th,
            tw,
            rows,
        }
    }

    /// Floats of one channel's split input: `2 * th + 2` rows of `tw + 1` floats, twice (even
    /// and odd columns).
    fn split_len(&self) -> usize {
        2 * (2 * self.th + 2) * (self.tw + 1)
    }

    /// f32 elements of scratch one image needs: the split input, then the `V` and `M` blocks.
    pub(crate) fn scratch_len(&self) -> usize {
        let tb = self.rows * self.tw;
        self.geom.c_in * self.split_len() + 16 * (self.geom.c_in + self.geom.c_out) * tb
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
        let sl = self.split_len();
        let tb = self.rows * self.tw;
        let (split, rest) = scratch.split_at_mut(g.c_in * sl);
        let (v, rest) = rest.split_at_mut(16 * g.c_in * tb);
        let m = &mut rest[..16 * g.c_out * tb];
        par_units(
            split,
            sl,
            4,
            #[inline(always)]
            |c0, part| {
                for (i, dst) in part.chunks_exact_mut(sl).enumerate() {
                    let c = c0 + i;
                    self.split_channel(&input[c * g.h * g.w..(c + 1) * g.h * g.w], dst);
                }
            },
        );
        let split: &[f32] = split;
        let mut ty0 = 0;
        while ty0 < self.th {
            let ty1 = (ty0 + self.rows).min(self.th);
            self.input_block(split, ty0, ty1, v);
            self.gemms(v, m, (ty1 - ty0) * self.tw);
            self.output_block(m, ty0, ty1, res, output);
            ty0 = ty1;
        }
    }

    /// Channel `src` (`h x w`) zero-padded to `(2th + 2) x (2tw + 2)` and split into its even
    /// columns (first half of `dst`, rows of `tw + 1`) and odd columns (second half).
    fn split_channel(&self, src: &[f32], dst: &mut [f32]) {
        let g = &self.geom;
        let (pt, pl) = (g.pads[0], g.pads[1]);
        let n = self.tw + 1;
        let (even, odd) = dst.split_at_mut(dst.len() / 2);
        for (r, (e, o)) in even
            .chunks_exact_mut(n)
            .zip(odd.chunks_exact_mut(n))
            .enumerate()
        {
            if r < pt || r >= pt + g.h {
                e.fill(0.0);
                o.fill(0.0);
                continue;
            }
            crate::kernels::split_row(&src[(r - pt) * g.w..(r - pt + 1) * g.w], pl, e, o);
        }
    }

    /// `V[ξ][c][t]` for the tiles of tile rows `ty0..ty1`.
    fn input_block(&self, split: &[f32], ty0: usize, ty1: usize, v: &mut [f32]) {
        let g = self.geom;
        let (tw, sl, tb) = (self.tw, self.split_len(), self.rows * self.tw);
        let n = tw + 1;
        let vp = SendPtr(v.as_mut_ptr());
        for_ranges(
            g.c_in,
            8,
            #[inline(always)]
            |c0, c1| {
                for c in c0..c1 {
                    let s = &split[c * sl..(c + 1) * sl];
                    let (even, odd) = s.split_at(sl / 2);
                    for ty in ty0..ty1 {
                        let e: [&[f32]; 4] =
                            std::array::from_fn(|i| &even[(2 * ty + i) * n..(2 * ty + i + 1) * n]);
                        let o: [&[f32]; 4] =
                            std::array::from_fn(|i| &odd[(2 * ty + i) * n..(2 * ty + i + 1) * n]);
                        let t0 = (ty - ty0) * tw;
                        // SAFETY: the 16 rows `V[ξ][c][t0..t0 + tw]` are disjoint, inside `v`
                        // (16 x c_in x tb floats), and owned by the task of channel `c`.
                        let out: [&mut [f32]; 16] = std::array::from_fn(|xi| unsafe {
                            std::slice::from_raw_parts_mut(
                                vp.get().add((xi * g.c_in + c) * tb + t0),
                                tw,
                            )
                        });
                        input_row(e, o, out);
                    }
                }
            },
        );
    }

    /// `M[ξ] = U[ξ] · V[ξ]` per group, for `nt` tiles (row stride of both blocks: `tb`).
    fn gemms(&self, v: &[f32], m: &mut [f32], nt: usize) {
        let g = self.geom;
        let tb = self.rows * self.tw;
        let (ci, co) = (g.cin_g(), g.cout_g());
        let mp = SendPtr(m.as_mut_ptr());
        for_ranges(
            16 * g.group,
            1,
            #[inline(always)]
            |a, b| {
                for job in a..b {
                    let (xi, grp) = (job / g.group, job % g.group);
                    let lhs = &self.u[(xi * g.c_out + grp * co) * ci..][..co * ci];
                    let rhs = &v[(xi * g.c_in + grp * ci) * tb..][..(ci - 1) * tb + nt];
                    // SAFETY: the destination rows `M[ξ][grp*co .. +co][..nt]` (row stride tb) are
                    // inside `m` and written by this job only; `lhs` is co x ci and `rhs` ci x nt
                    // with row stride tb, both in bounds as sliced above.
                    unsafe {
                        sgemm(
                            (co, nt, ci),
                            mp.get().add((xi * g.c_out + grp * co) * tb),
                            tb,
                            false,
                            (lhs.as_ptr(), ci, 1),
                            (rhs.as_ptr(), tb, 1),
                            1.0,
                            1,
                        );
                    }
                }
            },
        );
    }

    /// Output rows `2*ty0 .. 2*ty1` (clipped to `h_out`) of every channel from `M`, with the
    /// epilogue.
    fn output_block(
        &self,
        m: &[f32],
        ty0: usize,
        ty1: usize,
        res: [Option<&[f32]>; 2],
        output: &mut [f32],
    ) {
        let g = self.geom;
        let (tw, tb, wo, ho) = (self.tw, self.rows * self.tw, g.w_out, g.h_out);
        let plane = ho * wo;
        let act = self.epi.act;
        par_units(
            output,
            plane,
            4,
            #[inline(always)]
            |k0, part| {
                let mut acc = [[0.0f32; 2 * CHUNK]; 2];
                for (i, out) in part.chunks_exact_mut(plane).enumerate() {
                    let k = k0 + i;
                    let bias = self.epi.bias.as_ref().map_or(0.0, |b| b[k]);
                    let ms: [&[f32]; 16] =
                        std::array::from_fn(|xi| &m[(xi * g.c_out + k) * tb..][..tb]);
                    for ty in ty0..ty1 {
                        let t0 = (ty - ty0) * tw;
                        let mut tx = 0;
                        while tx < tw {
                            let n = CHUNK.min(tw - tx);
                            let mrow: [&[f32]; 16] =
                                std::array::from_fn(|xi| &ms[xi][t0 + tx..t0 + tx + n]);
                            let [a0, a1] = &mut acc;
                            output_row(mrow, &mut a0[..2 * n], &mut a1[..2 * n]);
                            let x0 = 2 * tx;
                            let len = (2 * n).min(wo - x0);
                            for (dy, a) in acc.iter().enumerate() {
                                let y = 2 * ty + dy;
                                if y >= ho {
                                    break;
                                }
                                let at = y * wo + x0;
                                let r = res.map(|r| r.map(|r| &r[k * plane + at..][..len]));
                                epilogue(Some(&a[..len]), bias, r, &mut out[at..at + len], act);
                            }
                            tx += n;
                        }
                    }
                }
            },
        );
    }
}

/// `G g Gᵀ` for one 3x3 kernel (row-major 4x4), computed in f64 and rounded once.
fn filter_transform(w: &[f32]) -> [f32; 16] {
    const G: [[f64; 3]; 4] = [
        [1.0, 0.0, 0.0],
        [0.5, 0.5, 0.5],
        [0.5, -0.5, 0.5],
        [0.0, 0.0, 1.0],
    ];
    let mut gw = [[0.0f64; 3]; 4];
    for (i, row) in gw.iter_mut().enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            *v = (0..3).map(|r| G[i][r] * w[r * 3 + j] as f64).sum();
        }
    }
    let mut out = [0.0f32; 16];
    for i in 0..4 {
        for j in 0..4 {
            out[i * 4 + j] = (0..3).map(|c| gw[i][c] * G[j][c]).sum::<f64>() as f32;
        }
    }
    out
}

/// `Bᵀ d B` for one tile row: `e[i]` / `o[i]` are even / odd columns of padded row `2ty + i`
/// (`tw + 1` each), and `out[ξ][tx]` receives position `ξ` of tile `tx`.
#[inline(always)]
fn input_row(e: [&[f32]; 4], o: [&[f32]; 4], out: [&mut [f32]; 16]) {
    let tw = out[0].len();
    let e = e.map(|r| &r[..tw + 1]);
    let o = o.map(|r| &r[..tw + 1]);
    let [o0, o1, o2, o3, o4, o5, o6, o7, o8, o9, o10, o11, o12, o13, o14, o15] = out;
    for tx in 0..tw {
        // d[i][j]: row i of the patch, column j = (even tx, odd tx, even tx+1, odd tx+1).
        let d = |i: usize| [e[i][tx], o[i][tx], e[i][tx + 1], o[i][tx + 1]];
        let (d0, d1, d2, d3) = (d(0), d(1), d(2), d(3));
        // Bᵀ d: rows (d0 - d2, d1 + d2, d2 - d1, d1 - d3).
        let t0: [f32; 4] = std::array::from_fn(|j| d0[j] - d2[j]);
        let t1: [f32; 4] = std::array::from_fn(|j| d1[j] + d2[j]);
        let t2: [f32; 4] = std::array::from_fn(|j| d2[j] - d1[j]);
        let t3: [f32; 4] = std::array::from_fn(|j| d1[j] - d3[j]);
        // (Bᵀ d) B: columns the same way.
        let col = |t: [f32; 4]| [t[0] - t[2], t[1] + t[2], t[2] - t[1], t[1] - t[3]];
        let (r0, r1, r2, r3) = (col(t0), col(t1), col(t2), col(t3));
        o0[tx] = r0[0];
        o1[tx] = r0[1];
        o2[tx] = r0[2];
        o3[tx] = r0[3];
        o4[tx] = r1[0];
        o5[tx] = r1[1];
        o6[tx] = r1[2];
        o7[tx] = r1[3];
        o8[tx] = r2[0];
        o9[tx] = r2[1];
        o10[tx] = r2[2];
        o11[tx] = r2[3];
        o12[tx] = r3[0];
        o13[tx] = r3[1];
        o14[tx] = r3[2];
        o15[tx] = r3[3];
    }
}

/// `Aᵀ m A` for `n` tiles of one tile row: `m[ξ][tx]`; output row 0 of the tiles goes to `y0`
/// (interleaved: `y0[2tx + j]`) and row 1 to `y1`, each `2n` long.
#[inline(always)]
fn output_row(m: [&[f32]; 16], y0: &mut [f32], y1: &mut [f32]) {
    let n = y0.len() / 2;
    let m = m.map(|r| &r[..n]);
    for (tx, (p0, p1)) in y0
        .chunks_exact_mut(2)
        .zip(y1.chunks_exact_mut(2))
        .enumerate()
    {
        let v = |i: usize, j: usize| m[i * 4 + j][tx];
        // Aᵀ m: rows (m0 + m1 + m2, m1 - m2 - m3).
        let s0: [f32; 4] = std::array::from_fn(|j| v(0, j) + v(1, j) + v(2, j));
        let s1: [f32; 4] = std::array::from_fn(|j| v(1, j) - v(2, j) - v(3, j));
        p0[0] = s0[0] + s0[1] + s0[2];
        p0[1] = s0[1] - s0[2] - s0[3];
        p1[0] = s1[0] + s1[1] + s1[2];
        p1[1] = s1[1] - s1[2] - s1[3];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Activation;
    use crate::testutil::{in_pool, pattern, reference_conv, rel_err};

    fn geom(
        c_in: usize,
        c_out: usize,
        group: usize,
        h: usize,
        w: usize,
        pads: [usize; 4],
    ) -> ConvGeom {
        ConvGeom {
            c_in,
            c_out,
            group,
            h,
            w,
            kh: 3,
            kw: 3,
            stride: [1, 1],
            dilation: [1, 1],
            pads,
            h_out: h + pads[0] + pads[2] - 2,
            w_out: w + pads[1] + pads[3] - 2,
        }
    }

    /// Every geometry edge: odd and even output sizes, asymmetric and zero pads, groups, one
    /// and several blocks, a residual and an activation. Bound: 1e-5 of the output's scale;
    /// F(2x2, 3x3) measured ~3e-7 here.
    #[test]
    fn matches_the_reference_convolution() {
        let cases = [
            geom(16, 16, 1, 8, 8, [1; 4]),
            geom(16, 24, 1, 7, 9, [1; 4]),
            geom(32, 32, 2, 5, 6, [0, 1, 2, 0]),
            geom(16, 16, 1, 4, 5, [0; 4]),
            geom(64, 64, 1, 56, 56, [1; 4]),
            geom(48, 32, 1, 13, 4, [1, 0, 1, 0]),
        ];
        for g in cases {
            assert!(Winograd::applies(&g), "{g:?}");
            let x = pattern(g.c_in * g.h * g.w, 37, 101, 0.02);
            let w = pattern(g.c_out * g.cin_g() * 9, 53, 97, 0.01);
            let p = g.h_out * g.w_out;
            let res: Vec<f32> = (0..g.c_out * p).map(|i| (i % 7) as f32 * 0.3).collect();
            for (threads, residual, act) in
                [(1, false, Activation::None), (2, true, Activation::Relu)]
            {
                let epi = Epilogue {
                    bias: Some((0..g.c_out).map(|k| k as f32 * 0.1 - 1.0).collect()),
                    residual,
                    act,
                };
                let r = [residual.then_some(&res[..]), None];
                let k = Winograd::new(g, &w, epi.clone());
                let mut scratch = vec![f32::NAN; k.scratch_len()];
                let mut y = vec![f32::NAN; g.c_out * p];
                in_pool(threads, || k.run(&x, r, &mut y, &mut scratch));
                let e = rel_err(&y, &reference_conv(&g, &x, &w, &epi, r));
                assert!(e < 1e-5, "{g:?} {act:?}: rel err {e:e}");
            }
        }
    }

    #[test]
    #[ignore]
    fn bench_parts() {
        for g in [
            geom(64, 64, 1, 56, 56, [1; 4]),
            geom(128, 128, 1, 28, 28, [1; 4]),
            geom(256, 256, 1, 14, 14, [1; 4]),
            geom(512, 512, 1, 7, 7, [1; 4]),
        ] {
            let x: Vec<f32> = (0..g.c_in * g.h * g.w)
                .map(|i| (i % 13) as f32 * 0.1)
                .collect();
            let w: Vec<f32> = (0..g.c_out * g.c_in * 9)
                .map(|i| (i % 7) as f32 * 0.01)
                .collect();
            let k = Winograd::new(g, &w, Epilogue::default());
            let mut scratch = vec![0.0; k.scratch_len()];
            let mut y = vec![0.0; g.c_out * g.h_out * g.w_out];
            crate::testutil::in_pool(1, || {
                let n = 20;
                let t = std::time::Instant::now();
                for _ in 0..n {
                    k.run(&x, [None, None], &mut y, &mut scratch);
                }
                let total = t.elapsed() / n;
                let sl = k.split_len();
                let tb = k.rows * k.tw;
                let (split, rest) = scratch.split_at_mut(g.c_in * sl);
                let (v, rest) = rest.split_at_mut(16 * g.c_in * tb);
                let m = &mut rest[..16 * g.c_out * tb];
                let t = std::time::Instant::now();
                for _ in 0..n {
                    for c in 0..g.c_in {
                        k.split_channel(
                            &x[c * g.h * g.w..(c + 1) * g.h * g.w],
                            &mut split[c * sl..(c + 1) * sl],
                        );
                    }
                }
                let t_split = t.elapsed() / n;
                let (mut ti, mut tg, mut to) = (
                    std::time::Duration::ZERO,
                    std::time::Duration::ZERO,
                    std::time::Duration::ZERO,
                );
                for _ in 0..n {
                    let mut ty0 = 0;
                    while ty0 < k.th {
                        let ty1 = (ty0 + k.rows).min(k.th);
                        let t = std::time::Instant::now();
                        k.input_block(split, ty0, ty1, v);
                        ti += t.elapsed();
                        let t = std::time::Instant::now();
                        k.gemms(v, m, (ty1 - ty0) * k.tw);
                        tg += t.elapsed();
                        let t = std::time::Instant::now();
                        k.output_block(m, ty0, ty1, [None, None], &mut y);
                        to += t.elapsed();
                        ty0 = ty1;
                    }
                }
                let macs = 16.0 * (k.th * k.tw * g.c_out * g.c_in) as f64;
                eprintln!(
                    "{}x{} c{}: total {:?} split {:?} in {:?} gemm {:?} ({:.1} GFLOP/s) out {:?}; rows {} tb {}",
                    g.h, g.w, g.c_in, total, t_split, ti / n, tg / n,
                    2.0 * macs / (tg / n).as_secs_f64() / 1e9, to / n, k.rows, tb
                );
            });
        }
    }
}
