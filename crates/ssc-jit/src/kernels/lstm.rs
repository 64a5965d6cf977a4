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
    /// `[dirs, 4h, input]`, `[dirs, 4h, h]`, `Wb + Rb` as `[dirs, 4h]`, peepholes `[dirs, 3h]`.
    pub w: Vec<f32>,
    pub r: Vec<f32>,
    pub bias: Vec<f32>,
    pub peep: Option<Vec<f32>>,
}

/// Output buffers of one run (each optional, as the node's outputs are).
pub(crate) struct LstmOut<'a> {
    pub y: Option<&'a mut [f32]>,
    pub yh: Option<&'a mut [f32]>,
    pub yc: Option<&'a mut [f32]>,
}

impl Lstm {
    fn dirs(&self) -> usize {
        self.reverse.len()
    }

    /// Per direction: the projection of every step, then `gates`, `h`, `c`.
    fn scratch_per_dir(&self) -> usize {
        let gh = 4 * self.hidden;
        self.seq * self.batch * gh + gh + 2 * self.hidden
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
        let (gates, rest) = rest.split_at_mut(gh);
        let (hs, cs) = rest.split_at_mut(h);
        let wd = &self.w[d * gh * inp..][..gh * inp];
        let rd = &self.r[d * gh * h..][..gh * h];
        let bd = &self.bias[d * gh..][..gh];
        for row in proj.chunks_exact_mut(gh) {
            row.copy_from_slice(bd);
        }
        // proj += X W^T: X is rows x inp, W^T read from W (gh x inp) with swapped strides.
        // SAFETY: the strides describe in-bounds matrices of `x`, `wd` and `proj`.
        unsafe {
            crate::kernels::sgemm(
                (rows, gh, inp),
                proj.as_mut_ptr(),
                gh,
                true,
                (x.as_ptr(), inp, 1),
                (wd.as_ptr(), 1, inp),
                1.0,
                threads,
            );
        }
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
                matvec(rd, hs, row, gates);
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

/// `y[j] = add[j] + m[j, :] . v` for the `y.len()` rows of the row-major `m`.
fn matvec(m: &[f32], v: &[f32], add: &[f32], y: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if crate::kernels::par::has_avx2_fma() {
        // SAFETY: AVX2 and FMA were detected at run time.
        return unsafe { matvec_avx2(m, v, add, y) };
    }
    for (j, o) in y.iter_mut().enumerate() {
        *o = add[j] + dot(&m[j * v.len()..(j + 1) * v.len()], v);
    }
}

/// Four rows at a time, two accumulators each (eight independent FMA chains), each load of
/// `v` shared by the four rows; scalar tails.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn matvec_avx2(m: &[f32], v: &[f32], add: &[f32], y: &mut [f32]) {
    use std::arch::x86_64::*;
    let n = v.len();
    let rows = y.len();
    assert!(m.len() >= rows * n && add.len() >= rows);
    let n16 = n / 16 * 16;
    let hsum = |x: __m256| -> f32 {
        let lo = _mm256_castps256_ps128(x);
        let hi = _mm256_extractf128_ps::<1>(x);
        let s = _mm_add_ps(lo, hi);
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps::<1>(s, s));
        _mm_cvtss_f32(s)
    };
    let vp = v.as_ptr();
    let mut j = 0;
    while j + 4 <= rows {
        let r = [0, 1, 2, 3].map(|i| m.as_ptr().add((j + i) * n));
        let mut a = [_mm256_setzero_ps(); 8];
        let mut p = 0;
        while p < n16 {
            let v0 = _mm256_loadu_ps(vp.add(p));
            let v1 = _mm256_loadu_ps(vp.add(p + 8));
            for i in 0..4 {
                a[2 * i] = _mm256_fmadd_ps(_mm256_loadu_ps(r[i].add(p)), v0, a[2 * i]);
                a[2 * i + 1] = _mm256_fmadd_ps(_mm256_loadu_ps(r[i].add(p + 8)), v1, a[2 * i + 1]);
            }
            p += 16;
        }
        for i in 0..4 {
            let mut s = hsum(_mm256_add_ps(a[2 * i], a[2 * i + 1]));
            for q in n16..n {
                s += *r[i].add(q) * v[q];
            }
            y[j + i] = add[j + i] + s;
        }
        j += 4;
    }
    for jj in j..rows {
        y[jj] = add[jj] + dot(&m[jj * n..(jj + 1) * n], v);
    }
}

/// A dot product with 32 independent accumulators: four vector registers under [`simd`], so
/// consecutive adds do not wait on each other (one accumulator register made the recurrence
/// latency-bound).
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 32];
    let (ac, bc) = (a.chunks_exact(32), b.chunks_exact(32));
    let tail: f32 = ac
        .remainder()
        .iter()
        .zip(bc.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ac.zip(bc) {
        for l in 0..32 {
            acc[l] += x[l] * y[l];
        }
    }
    let mut s = [0f32; 8];
    for (l, v) in acc.iter().enumerate() {
        s[l % 8] += v;
    }
    (s[0] + s[4]) + (s[1] + s[5]) + (s[2] + s[6]) + (s[3] + s[7]) + tail
}
