//! LSTM: each direction's input projection `X W^T + Wb + Rb` is one `gemm` over every time
//! step, then the recurrence walks each batch row with one fused loop per step (the `R h`
//! matrix-vector product, then the gates, peepholes and `clip`). The two directions of a
//! bidirectional layer are independent and run in parallel when the pool has two threads.

use crate::kernels::par::{simd, SendPtr};

/// An activation the recurrence applies (the ones exported models use; others fall back).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RnnAct {
    Sigmoid,
    Tanh,
    Relu,
}

impl RnnAct {
    pub(crate) fn named(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "sigmoid" => Some(Self::Sigmoid),
            "tanh" => Some(Self::Tanh),
            "relu" => Some(Self::Relu),
            _ => None,
        }
    }

    #[inline(always)]
    fn apply(self, x: f32) -> f32 {
        match self {
            Self::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Self::Tanh => x.tanh(),
            Self::Relu => x.max(0.0),
        }
    }
}

/// One LSTM layer, shapes and weights fixed at compile time.
pub(crate) struct Lstm {
    pub seq: usize,
    pub batch: usize,
    pub input: usize,
    pub hidden: usize,
    /// `[batch, seq, ...]` rather than `[seq, batch, ...]` (`layout = 1`).
    pub batch_major: bool,
    /// Per direction: runs back to front.
    pub reverse: Vec<bool>,
    /// Steps of each batch row (`sequence_lens`).
    pub lens: Vec<usize>,
    pub clip: Option<f32>,
    pub input_forget: bool,
    /// Per direction: `f`, `g`, `h`.
    pub acts: Vec<[RnnAct; 3]>,
    /// Per direction, W transposed to `[input, 4h]` and R in panels ([`Lstm::pack`]); `Wb + Rb`
    /// as `[dirs, 4h]`, peepholes `[dirs, 3h]`.
    pub w: Vec<f32>,
    pub r: Vec<f32>,
    pub bias: Vec<f32>,
    pub peep: Option<Vec<f32>>,
    /// Per direction, W^T packed once for `kernels::packed_gemm` (AVX-512 hosts, more than
    /// one projected row; empty otherwise, then `w` goes through the `gemm` crate).
    #[cfg(target_arch = "x86_64")]
    pub w_packed: Vec<crate::kernels::packed_gemm::PackedB>,
}

/// Output buffers of one run (each optional, as the node's outputs are).
pub(crate) struct LstmOut<'a> {
    pub y: Option<&'a mut [f32]>,
    pub yh: Option<&'a mut [f32]>,
    pub yc: Option<&'a mut [f32]>,
}

/// Gate rows per panel of the packed R: eight AVX2 accumulators.
const PANEL: usize = 64;

/// `4h` rounded up to whole panels.
fn padded(gh: usize) -> usize {
    gh.div_ceil(PANEL) * PANEL
}

impl Lstm {
    /// The model's W `[dirs, 4h, input]` and R `[dirs, 4h, h]` in the kernel's layouts: W
    /// transposed per direction (the projection's B with unit strides), R per direction as
    /// panels of 64 gate rows stored `[h][64]` (zero rows pad the last panel), so the
    /// recurrence's matrix-vector product reads one sequential stream with no horizontal sums.
    pub(crate) fn pack(
        w: &[f32],
        r: &[f32],
        dirs: usize,
        input: usize,
        h: usize,
    ) -> (Vec<f32>, Vec<f32>) {
        let gh = 4 * h;
        let gp = padded(gh);
        let mut wt = vec![0f32; dirs * gh * input];
        let mut rp = vec![0f32; dirs * h * gp];
        for d in 0..dirs {
            let (wd, wtd) = (
                &w[d * gh * input..][..gh * input],
                &mut wt[d * gh * input..][..gh * input],
            );
            for j in 0..gh {
                for p in 0..input {
                    wtd[p * gh + j] = wd[j * input + p];
                }
            }
            let (rd, rpd) = (&r[d * gh * h..][..gh * h], &mut rp[d * h * gp..][..h * gp]);
            for j in 0..gh {
                let (panel, q) = (j / PANEL, j % PANEL);
                for p in 0..h {
                    rpd[panel * h * PANEL + p * PANEL + q] = rd[j * h + p];
                }
            }
        }
        (wt, rp)
    }

    fn dirs(&self) -> usize {
        self.reverse.len()
    }

    /// Per direction: the projection of every step, then `gates`, `h`, `c`.
    fn scratch_per_dir(&self) -> usize {
        let gh = 4 * self.hidden;
        self.seq * self.batch * gh + padded(gh) + 2 * self.hidden
    }

    pub(crate) fn scratch_len(&self) -> usize {
        self.dirs() * self.scratch_per_dir()
    }

    fn row(&self, t: usize, b: usize) -> usize {
        if self.batch_major {
            b * self.seq + t
        } else {
            t * self.batch + b
        }
    }

    fn state(&self, d: usize, b: usize) -> usize {
        self.hidden
            * if self.batch_major {
                b * self.dirs() + d
            } else {
                d * self.batch + b
            }
    }

    fn y_off(&self, t: usize, d: usize, b: usize) -> usize {
        let nd = self.dirs();
        self.hidden
            * if self.batch_major {
                (b * self.seq + t) * nd + d
            } else {
                (t * nd + d) * self.batch + b
            }
    }

    pub(crate) fn run(
        &self,
        x: &[f32],
        init: [Option<&[f32]>; 2],
        out: LstmOut,
        scratch: &mut [f32],
    ) {
        let y = out.y.map(|y| {
            // Steps past a row's sequence length stay zero.
            y.fill(0.0);
            SendPtr(y.as_mut_ptr())
        });
        let yh = out.yh.map(|v| SendPtr(v.as_mut_ptr()));
        let yc = out.yc.map(|v| SendPtr(v.as_mut_ptr()));
        let per = self.scratch_per_dir();
        let scratch = &mut scratch[..self.dirs() * per];
        let threads = rayon::current_num_threads();
        let run_dir = |d: usize, s: &mut [f32], inner_threads: usize| {
            // SAFETY: direction `d` writes only its own `(t, d, b)` rows of Y and `(d, b)`
            // states of Y_h / Y_c, so concurrent directions write disjoint ranges.
            unsafe { self.direction(d, x, init, [y, yh, yc], s, inner_threads) }
        };
        if self.dirs() == 2 && threads > 1 {
            let (s0, s1) = scratch.split_at_mut(per);
            rayon::join(|| run_dir(0, s0, 1), || run_dir(1, s1, 1));
        } else {
            for (d, s) in scratch.chunks_mut(per).enumerate() {
                run_dir(d, s, threads);
            }
        }
    }

    /// `proj += X W^T` through the `gemm` crate (`wd` is this direction's W^T, `inp x 4h`).
    fn project(&self, x: &[f32], wd: &[f32], proj: &mut [f32], threads: usize) {
        let (inp, gh) = (self.input, 4 * self.hidden);
        let rows = self.seq * self.batch;
        // SAFETY: the strides describe in-bounds matrices of `x`, `wd` and `proj`.
        unsafe {
            crate::kernels::sgemm(
                (rows, gh, inp),
                proj.as_mut_ptr(),
                gh,
                true,
                (x.as_ptr(), inp, 1),
                (wd.as_ptr(), gh, 1),
                1.0,
                threads,
            );
        }
    }

    /// # Safety
    /// The output pointers, when present, point to buffers of the output shapes, and no other
    /// thread writes direction `d`'s parts of them.
    unsafe fn direction(
        &self,
        d: usize,
        x: &[f32],
        [h0, c0]: [Option<&[f32]>; 2],
        [y, yh, yc]: [Option<SendPtr>; 3],
        s: &mut [f32],
        threads: usize,
    ) {
        let (h, inp) = (self.hidden, self.input);
        let gh = 4 * h;
        let rows = self.seq * self.batch;
        let (proj, rest) = s.split_at_mut(rows * gh);
        let gp = padded(gh);
        let (gates, rest) = rest.split_at_mut(gp);
        let (hs, cs) = rest.split_at_mut(h);
        let wd = &self.w[d * gh * inp..][..gh * inp];
        let rd = &self.r[d * h * gp..][..h * gp];
        let bd = &self.bias[d * gh..][..gh];
        for row in proj.chunks_exact_mut(gh) {
            row.copy_from_slice(bd);
        }
        // proj += X W^T: X is rows x inp, W^T stored inp x gh.
        #[cfg(target_arch = "x86_64")]
        if let Some(p) = self.w_packed.get(d) {
            p.gemm(rows, x, inp, proj, true);
        } else {
            self.project(x, wd, proj, threads);
        }
        #[cfg(not(target_arch = "x86_64"))]
        self.project(x, wd, proj, threads);
        let zero = vec![0f32; 3 * h];
        let p = self
            .peep
            .as_ref()
            .map_or(&zero[..], |p| &p[d * 3 * h..][..3 * h]);
        let (pi, po, pf) = (&p[..h], &p[h..2 * h], &p[2 * h..]);
        let [fa, ga, ha] = self.acts[d];
        let clip = |v: f32| match self.clip {
            Some(c) => v.clamp(-c, c),
            None => v,
        };
        for b in 0..self.batch {
            let so = self.state(d, b);
            match h0 {
                Some(v) => hs.copy_from_slice(&v[so..so + h]),
                None => hs.fill(0.0),
            }
            match c0 {
                Some(v) => cs.copy_from_slice(&v[so..so + h]),
                None => cs.fill(0.0),
            }
            let n = self.lens[b];
            for st in 0..n {
                let t = if self.reverse[d] { n - 1 - st } else { st };
                let row = &proj[self.row(t, b) * gh..][..gh];
                panel_matvec(rd, hs, row, gates);
                simd(|| {
                    for k in 0..h {
                        let c = cs[k];
                        let i = fa.apply(clip(gates[k] + pi[k] * c));
                        let f = if self.input_forget {
                            1.0 - i
                        } else {
                            fa.apply(clip(gates[2 * h + k] + pf[k] * c))
                        };
                        let cand = ga.apply(clip(gates[3 * h + k]));
                        let cn = f * c + i * cand;
                        let o = fa.apply(clip(gates[h + k] + po[k] * cn));
                        cs[k] = cn;
                        hs[k] = o * ha.apply(cn);
                    }
                });
                if let Some(y) = y {
                    let o = self.y_off(t, d, b);
                    // SAFETY: in bounds of Y; this direction's rows only (the caller's
                    // contract).
                    unsafe { std::ptr::copy_nonoverlapping(hs.as_ptr(), y.get().add(o), h) };
                }
            }
            // An empty sequence leaves zero states, as the reference does.
            for (out, v) in [(yh, &*hs), (yc, &*cs)] {
                if let Some(out) = out {
                    // SAFETY: as above, state `(d, b)` of a `[dirs, batch, h]` buffer.
                    unsafe {
                        let dst = std::slice::from_raw_parts_mut(out.get().add(so), h);
                        if n > 0 {
                            dst.copy_from_slice(v);
                        } else {
                            dst.fill(0.0);
                        }
                    }
                }
            }
        }
    }
}

/// `y[j] = add[j] + R[j, :] . v` for the `add.len()` gate rows, R in panels ([`Lstm::pack`]);
/// `y` is padded to whole panels.
fn panel_matvec(panels: &[f32], v: &[f32], add: &[f32], y: &mut [f32]) {
    let h = v.len();
    #[cfg(target_arch = "x86_64")]
    if crate::kernels::par::has_avx2_fma() {
        // SAFETY: AVX2 and FMA were detected at run time.
        unsafe { panel_matvec_avx2(panels, v, y) };
    } else {
        panel_matvec_scalar(panels, v, y);
    }
    #[cfg(not(target_arch = "x86_64"))]
    panel_matvec_scalar(panels, v, y);
    debug_assert_eq!(panels.len(), h * y.len());
    for (o, a) in y.iter_mut().zip(add) {
        *o += a;
    }
}

fn panel_matvec_scalar(panels: &[f32], v: &[f32], y: &mut [f32]) {
    let h = v.len();
    for (panel, yp) in panels
        .chunks_exact(h * PANEL)
        .zip(y.chunks_exact_mut(PANEL))
    {
        yp.fill(0.0);
        for (p, &vp) in v.iter().enumerate() {
            for (o, &r) in yp.iter_mut().zip(&panel[p * PANEL..(p + 1) * PANEL]) {
                *o += r * vp;
            }
        }
    }
}

/// Eight accumulators of eight gate rows; per element of `v`, one broadcast and eight loads
/// from the panel's sequential stream.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn panel_matvec_avx2(panels: &[f32], v: &[f32], y: &mut [f32]) {
    use std::arch::x86_64::*;
    let h = v.len();
    assert!(panels.len() >= h * y.len() && y.len().is_multiple_of(PANEL));
    for (pi, yp) in y.chunks_exact_mut(PANEL).enumerate() {
        let base = panels.as_ptr().add(pi * h * PANEL);
        let mut a = [_mm256_setzero_ps(); 8];
        for (p, &vp) in v.iter().enumerate() {
            let b = _mm256_set1_ps(vp);
            let row = base.add(p * PANEL);
            for (q, acc) in a.iter_mut().enumerate() {
                *acc = _mm256_fmadd_ps(_mm256_loadu_ps(row.add(q * 8)), b, *acc);
            }
        }
        for (q, acc) in a.iter().enumerate() {
            _mm256_storeu_ps(yp.as_mut_ptr().add(q * 8), *acc);
        }
    }
}
