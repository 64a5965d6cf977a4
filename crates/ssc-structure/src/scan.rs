//! The single pass over a weight: every per-kernel and per-channel fact that needs the values is
//! gathered here, so each weight element is read once (equality classes re-read only the
//! channels whose hashes collide).

use crate::elem::{position_keys, splitmix64, Elem};
use crate::kernels::{KernelClass, KernelCounts, KernelMap};
use crate::tapset::{words_for, TapSet};
use crate::unionfind::UnionFind;

/// How the weight is laid out in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Layout {
    /// `[o, i, taps...]`: a Conv weight, or a transposed (`transB`) matrix `[N, K]`.
    Oik,
    /// `[i, o]`: a matrix `B[K, N]` feeding `A @ B`; one tap, one group.
    Io,
}

/// The shape of the weight as the analysis sees it: `co` outputs, `cig` inputs per group.
#[derive(Clone, Debug)]
pub(crate) struct Dims {
    pub co: usize,
    pub cig: usize,
    pub groups: usize,
    pub taps: usize,
    pub centre: Option<usize>,
    pub layout: Layout,
}

impl Dims {
    pub fn cog(&self) -> usize {
        self.co / self.groups
    }

    pub fn ci(&self) -> usize {
        self.cig * self.groups
    }

    #[inline(always)]
    pub fn at(&self, o: usize, il: usize, t: usize) -> usize {
        match self.layout {
            Layout::Oik => (o * self.cig + il) * self.taps + t,
            Layout::Io => il * self.co + o,
        }
    }

    /// SSC's point/spatial split only means something for kernels with a centre and more taps.
    pub fn has_ssc(&self) -> bool {
        self.taps > 1 && self.centre.is_some()
    }
}

/// Random odd multipliers per output, input (within a group) and tap position.
struct Keys {
    out: Vec<u64>,
    inp: Vec<u64>,
    tap: Vec<u64>,
}

/// What the pass gathered.
pub(crate) struct Scan {
    pub kernels: KernelMap,
    pub counts: KernelCounts,
    pub nnz: u64,
    /// Non-zero weights per output filter.
    pub out_nnz: Vec<u32>,
    pub union: TapSet,
    pub shared: TapSet,
    /// Output / input channel has a non-zero kernel.
    pub out_nz: Vec<bool>,
    pub in_nz: Vec<bool>,
    /// Output / input channel has a spatial (F or partial) kernel.
    pub out_sp: Vec<bool>,
    pub in_sp: Vec<bool>,
    pub uf_all: UnionFind,
    pub uf_sp: UnionFind,
    /// Exact mode: hash of each channel's values (outputs up to sign).
    pub out_hash: Vec<u64>,
    pub in_hash: Vec<u64>,
    /// Approximate mode: sum of |w| per channel, a bound on how far apart close channels are.
    pub out_sig: Vec<f64>,
    pub in_sig: Vec<f64>,
    pub constant_nonzero: u64,
    pub all_constant: bool,
}

impl Scan {
    fn new(d: &Dims, approx: bool) -> Scan {
        let (co, ci) = (d.co, d.ci());
        let words = words_for(d.taps);
        let sp = if d.has_ssc() { co + ci } else { 0 };
        Scan {
            kernels: KernelMap::new(co, d.cig, d.taps, words),
            counts: KernelCounts::default(),
            nnz: 0,
            out_nnz: vec![0; co],
            union: TapSet::empty(d.taps),
            shared: TapSet::full(d.taps),
            out_nz: vec![false; co],
            in_nz: vec![false; ci],
            out_sp: vec![false; if sp > 0 { co } else { 0 }],
            in_sp: vec![false; if sp > 0 { ci } else { 0 }],
            uf_all: UnionFind::new(co + ci),
            uf_sp: UnionFind::new(sp),
            out_hash: vec![0; if approx { 0 } else { co }],
            in_hash: vec![0; if approx { 0 } else { ci }],
            out_sig: vec![0.0; if approx { co } else { 0 }],
            in_sig: vec![0.0; if approx { ci } else { 0 }],
            constant_nonzero: 0,
            all_constant: true,
        }
    }

    /// Runs the pass. `APPROX` selects epsilon semantics at compile time so the exact path pays
    /// nothing for it; 1-tap weights (1x1 convs, matrices) take a leaner loop because they hold
    /// most of the weights of a typical CNN.
    pub fn run<T: Elem, const APPROX: bool>(w: &[T], d: &Dims, eps: T) -> Scan {
        let mut s = Scan::new(d, APPROX);
        let keys = Keys {
            out: position_keys(d.co, 0x6f75_7470),
            inp: position_keys(d.cig, 0x696e_7075),
            tap: position_keys(d.taps, 0x7461_7073),
        };
        match (d.taps, d.layout) {
            (1, Layout::Oik) => s.points_by_output::<T, APPROX>(w, d, eps, &keys),
            (1, Layout::Io) => s.points_by_input::<T, APPROX>(w, d, eps, &keys),
            (2..=64, _) => s.kernels::<T, APPROX, false>(w, d, eps, &keys),
            _ => s.kernels::<T, APPROX, true>(w, d, eps, &keys),
        }
        if s.counts.total() == s.counts.zero {
            s.shared = TapSet::empty(d.taps);
        }
        s
    }

    /// Multi-tap kernels, `[o, i, taps]`. `WIDE` kernels need more than one mask word.
    fn kernels<T: Elem, const APPROX: bool, const WIDE: bool>(
        &mut self,
        w: &[T],
        d: &Dims,
        eps: T,
        keys: &Keys,
    ) {
        let (co, cig, taps, cog) = (d.co, d.cig, d.taps, d.cog());
        let words = words_for(taps);
        let centre = d.centre;
        let mut m = vec![0u64; words];
        for o in 0..co {
            let base_in = (o / cog) * cig;
            // Output o is only ever joined during its own row, so it is a root here.
            let (mut root, mut root_sp) = (o as u32, o as u32);
            let mut h_row = 0u64;
            let mut sig_row = 0.0f64;
            let ko = keys.out[o];
            for il in 0..cig {
                let k = o * cig + il;
                let i = base_in + il;
                let ker = &w[k * taps..(k + 1) * taps];
                let first = ker[0];
                let mut constant = true;
                let (mut h_in, mut h_out) = (0u64, 0u64);
                let mut sig = 0.0f64;
                let (mut lo, mut hi) = (first, first);
                let mut nan = false;
                let mut m0 = 0u64;
                if WIDE {
                    m.fill(0);
                }
                for (t, &x) in ker.iter().enumerate() {
                    let bit = (!x.is_zero(eps)) as u64;
                    if WIDE {
                        m[t >> 6] |= bit << (t & 63);
                    } else {
                        m0 |= bit << t;
                    }
                    if APPROX {
                        sig += x.abs().to_f64();
                        nan |= x.is_nan();
                        if x < lo {
                            lo = x;
                        }
                        if x > hi {
                            hi = x;
                        }
                    } else {
                        let kt = keys.tap[t];
                        h_in = h_in.wrapping_add(x.eq_bits().wrapping_mul(kt));
                        h_out = h_out.wrapping_add(x.abs_bits().wrapping_mul(kt));
                        constant &= x == first;
                    }
                }
                if !WIDE {
                    m[0] = m0;
                }
                if APPROX {
                    constant = !nan && hi.sub(lo) <= eps;
                }
                let nzc: u32 = if WIDE {
                    m.iter().map(|w| w.count_ones()).sum()
                } else {
                    m0.count_ones()
                };
                let class = if nzc == 0 {
                    KernelClass::Zero
                } else if nzc == 1 && centre.is_some_and(|c| m[c >> 6] & (1 << (c & 63)) != 0) {
                    KernelClass::Point
                } else if nzc as usize == taps {
                    KernelClass::Full
                } else {
                    KernelClass::Partial
                };
                self.kernels.set_class(k, class);
                self.kernels.push_mask(&m);
                self.counts.add(class);
                if nzc > 0 {
                    self.nnz += nzc as u64;
                    self.out_nnz[o] += nzc;
                    self.out_nz[o] = true;
                    self.in_nz[i] = true;
                    root = self.uf_all.union_root(root, (co + i) as u32);
                    self.union.union_words(&m);
                    self.shared.intersect_words(&m);
                    if class.is_spatial() && !self.out_sp.is_empty() {
                        self.out_sp[o] = true;
                        self.in_sp[i] = true;
                        root_sp = self.uf_sp.union_root(root_sp, (co + i) as u32);
                    }
                    if constant {
                        self.constant_nonzero += 1;
                    }
                }
                self.all_constant &= constant;
                if APPROX {
                    sig_row += sig;
                    self.in_sig[i] += sig;
                } else {
                    h_row = h_row.wrapping_add(splitmix64(h_out).wrapping_mul(keys.inp[il]));
                    self.in_hash[i] =
                        self.in_hash[i].wrapping_add(splitmix64(h_in).wrapping_mul(ko));
                }
            }
            if APPROX {
                self.out_sig[o] = sig_row;
            } else {
                self.out_hash[o] = h_row;
            }
        }
    }

    /// 1-tap weights stored `[o, i]`: 1x1 convs and transposed matrices.
    fn points_by_output<T: Elem, const APPROX: bool>(
        &mut self,
        w: &[T],
        d: &Dims,
        eps: T,
        keys: &Keys,
    ) {
        let (co, cig, cog) = (d.co, d.cig, d.cog());
        for o in 0..co {
            let base_in = (o / cog) * cig;
            let row = &w[o * cig..(o + 1) * cig];
            let mut root = o as u32;
            let mut h_row = 0u64;
            let ko = keys.out[o];
            let mut sig_row = 0.0f64;
            let mut nnz_row = 0u64;
            for (il, &x) in row.iter().enumerate() {
                let i = base_in + il;
                if APPROX {
                    let a = x.abs().to_f64();
                    sig_row += a;
                    self.in_sig[i] += a;
                } else {
                    h_row = h_row.wrapping_add(x.abs_bits().wrapping_mul(keys.inp[il]));
                    self.in_hash[i] = self.in_hash[i].wrapping_add(x.eq_bits().wrapping_mul(ko));
                }
                if !x.is_zero(eps) {
                    nnz_row += 1;
                    self.in_nz[i] = true;
                    self.kernels.set_class(o * cig + il, KernelClass::Point);
                    root = self.uf_all.union_root(root, (co + i) as u32);
                }
            }
            self.finish_point_row(nnz_row, cig as u64);
            self.out_nnz[o] = nnz_row as u32;
            if nnz_row > 0 {
                self.out_nz[o] = true;
            }
            if APPROX {
                self.out_sig[o] = sig_row;
            } else {
                self.out_hash[o] = h_row;
            }
        }
    }

    /// 1-tap weights stored `[i, o]`: the `B[K, N]` of `X @ B`.
    fn points_by_input<T: Elem, const APPROX: bool>(
        &mut self,
        w: &[T],
        d: &Dims,
        eps: T,
        keys: &Keys,
    ) {
        let (co, cig) = (d.co, d.cig);
        for il in 0..cig {
            let row = &w[il * co..(il + 1) * co];
            // Input il is only ever joined during its own row, so it is a root here.
            let mut root = (co + il) as u32;
            let mut h_row = 0u64;
            let ki = keys.inp[il];
            let mut sig_row = 0.0f64;
            let mut nnz_row = 0u64;
            for (o, &x) in row.iter().enumerate() {
                if APPROX {
                    let a = x.abs().to_f64();
                    sig_row += a;
                    self.out_sig[o] += a;
                } else {
                    h_row = h_row.wrapping_add(x.eq_bits().wrapping_mul(keys.out[o]));
                    self.out_hash[o] = self.out_hash[o].wrapping_add(x.abs_bits().wrapping_mul(ki));
                }
                if !x.is_zero(eps) {
                    nnz_row += 1;
                    self.out_nnz[o] += 1;
                    self.out_nz[o] = true;
                    self.kernels.set_class(o * cig + il, KernelClass::Point);
                    root = self.uf_all.union_root(root, o as u32);
                }
            }
            self.finish_point_row(nnz_row, co as u64);
            if nnz_row > 0 {
                self.in_nz[il] = true;
            }
            if APPROX {
                self.in_sig[il] = sig_row;
            } else {
                self.in_hash[il] = h_row;
            }
        }
    }

    fn finish_point_row(&mut self, nnz_row: u64, len: u64) {
        self.nnz += nnz_row;
        self.counts.point += nnz_row;
        self.counts.zero += len - nnz_row;
        if nnz_row > 0 {
            self.union.union_words(&[1]);
            self.shared.intersect_words(&[1]);
        }
    }
}

/// Input channels `i` and `j` (full index) have the same column `W[:, i, taps]`. Inputs of
/// different groups meet different outputs, so only all-zero columns could match there, and
/// those are never compared.
pub(crate) fn inputs_equal<T: Elem>(w: &[T], d: &Dims, i: usize, j: usize, eps: T) -> bool {
    let g = i / d.cig;
    if j / d.cig != g {
        return false;
    }
    let (il, jl) = (i % d.cig, j % d.cig);
    let cog = d.cog();
    (g * cog..(g + 1) * cog)
        .all(|o| (0..d.taps).all(|t| w[d.at(o, jl, t)].close(w[d.at(o, il, t)], eps)))
}

/// Output filters `a` (a non-zero filter) and `b` are equal up to sign: `Some(false)` when
/// `W[b] == W[a]`, `Some(true)` when `W[b] == -W[a]`.
pub(crate) fn outputs_match<T: Elem>(
    w: &[T],
    d: &Dims,
    a: usize,
    b: usize,
    eps: T,
) -> Option<bool> {
    let cog = d.cog();
    if a / cog != b / cog {
        return None;
    }
    let (ra, rb) = (filter(w, d, a), filter(w, d, b));
    let (&x, &y) = ra.clone().zip(rb.clone()).find(|(x, _)| !x.is_zero(eps))?;
    let negated = if y.close(x, eps) {
        false
    } else if y.close(x.neg(), eps) {
        true
    } else {
        return None;
    };
    ra.zip(rb)
        .all(|(&x, &y)| y.close(if negated { x.neg() } else { x }, eps))
        .then_some(negated)
}

/// The elements of output filter `o` in `(i, tap)` order.
fn filter<'a, T>(w: &'a [T], d: &Dims, o: usize) -> std::iter::StepBy<std::slice::Iter<'a, T>> {
    match d.layout {
        Layout::Oik => {
            let n = d.cig * d.taps;
            w[o * n..(o + 1) * n].iter().step_by(1)
        }
        Layout::Io => w[o..].iter().step_by(d.co),
    }
}
