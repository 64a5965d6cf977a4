//! The plain-Rust and `gemm`-backed kernels of the JIT (the Cranelift ones are in `codegen`).

pub(crate) mod act;
pub(crate) mod block_sparse;
pub(crate) mod chain;
pub(crate) mod deconv;
pub(crate) mod dense;
pub(crate) mod depthwise;
#[cfg(target_arch = "x86_64")]
pub(crate) mod depthwise_cv;
#[cfg(target_arch = "x86_64")]
pub(crate) mod direct;
pub(crate) mod eltwise;
pub(crate) mod gemm_conv;
pub(crate) mod linear;
pub(crate) mod lstm;
pub(crate) mod norm;
#[cfg(target_arch = "x86_64")]
pub(crate) mod packed_gemm;
pub(crate) mod par;
pub(crate) mod phase;
mod phases;
pub(crate) mod planes;
pub(crate) mod pool;
pub(crate) mod quant;
pub(crate) mod resize;
pub(crate) mod rows;
pub(crate) mod small_k;
pub(crate) mod sparse;
#[cfg(target_arch = "x86_64")]
pub(crate) mod sparse_linear;
pub(crate) mod spmm;
pub(crate) mod strided;
pub(crate) mod unified;
#[cfg(target_arch = "x86_64")]
pub(crate) mod wide;
pub(crate) mod winograd;

use crate::spec::{Activation, Epilogue};

/// Conv weights packed for kernels that load `width` output channels per tap: `[group][block
/// of width channels][k][width]`, where `taps(c)` yields output channel `c`'s `k` weights in
/// tap order; channels past a group's last are zero.
pub(crate) fn pack_channel_blocks<'a, I: Iterator<Item = &'a f32>>(
    (group, cout_g, k): (usize, usize, usize),
    width: usize,
    taps: impl Fn(usize) -> I,
) -> Vec<f32> {
    let blocks = cout_g.div_ceil(width);
    let mut packed = vec![0.0; group * blocks * k * width];
    for grp in 0..group {
        for co in 0..cout_g {
            let dst = (grp * blocks + co / width) * k * width + co % width;
            for (kk, &w) in taps(grp * cout_g + co).take(k).enumerate() {
                packed[dst + kk * width] = w;
            }
        }
    }
    packed
}

/// A conv epilogue applied in registers to a block of `N` output channels before the store:
/// `min(max(acc + bias + res + res2, lo), hi)`, which covers no activation (`(-inf, inf)`),
/// Relu and Clip (Leaky Relu stays in the epilogue pass).
pub(crate) struct InRegs<const N: usize> {
    /// The block's channels' biases (zero past its last channel).
    pub bias: [f32; N],
    /// The residuals at the block's first channel and pixel (the kernel knows their strides).
    pub res: [Option<*const f32>; 2],
    pub lo: f32,
    pub hi: f32,
}

impl<const N: usize> InRegs<N> {
    /// `epi` for output channels `c0..c0 + n` (`n <= N`), with no residual pointers yet;
    /// `None` for an activation the form does not cover.
    pub(crate) fn of(epi: &Epilogue, c0: usize, n: usize) -> Option<InRegs<N>> {
        let (lo, hi) = match epi.act {
            Activation::None => (f32::NEG_INFINITY, f32::INFINITY),
            Activation::Relu => (0.0, f32::INFINITY),
            Activation::Clip(lo, hi) => (lo, hi),
            Activation::LeakyRelu(_) | Activation::HardSwish | Activation::Silu => return None,
        };
        let bias = std::array::from_fn(|c| match &epi.bias {
            Some(b) if c < n => b[c0 + c],
            _ => 0.0,
        });
        Some(InRegs {
            bias,
            res: [None; 2],
            lo,
            hi,
        })
    }
}

/// A row-major-output matrix product through the `gemm` crate:
/// `dst = (read_dst ? dst : 0) + scale * lhs * rhs`, where `dst` is `m x n` with row stride
/// `dst_rs`, and `lhs` (`m x k`) and `rhs` (`k x n`) are given as (pointer, row stride, column
/// stride). `threads > 1` lets gemm split the product over the current rayon pool.
///
/// # Safety
/// Every index the strides describe must be in bounds of the pointed-to buffers, and `dst` must
/// not overlap `lhs` or `rhs`.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn sgemm(
    (m, n, k): (usize, usize, usize),
    dst: *mut f32,
    dst_rs: usize,
    read_dst: bool,
    lhs: (*const f32, usize, usize),
    rhs: (*const f32, usize, usize),
    scale: f32,
    threads: usize,
) {
    // SAFETY: forwarded from the caller's contract.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            dst_rs as isize,
            read_dst,
            lhs.0,
            lhs.2 as isize,
            lhs.1 as isize,
            rhs.0,
            rhs.2 as isize,
            rhs.1 as isize,
            1.0f32,
            scale,
            false,
            false,
            false,
            if threads > 1 {
                gemm::Parallelism::Rayon(threads)
            } else {
                gemm::Parallelism::None
            },
        );
    }
}

/// `f32::max(x, b)` for a non-NaN bound `b`, as one `maxps` (a NaN `x` gives `b`, as `max`
/// does; `f32::max` itself also handles a NaN `b`, which costs a compare and a blend per vector).
#[inline(always)]
fn max_to(x: f32, b: f32) -> f32 {
    if x > b {
        x
    } else {
        b
    }
}

/// `f32::min(x, b)` for a non-NaN bound `b` (see [`max_to`]).
#[inline(always)]
fn min_to(x: f32, b: f32) -> f32 {
    if x < b {
        x
    } else {
        b
    }
}

/// HardSwish with compare-selects (vectorises; a NaN gives 0 * NaN = NaN as the reference).
#[inline(always)]
fn hard_swish(x: f32) -> f32 {
    x * min_to(max_to(x * (1.0 / 6.0) + 0.5, 0.0), 1.0)
}

/// `out = act(acc + bias + res + res2)` (a missing `acc` or residual is 0), with the activation
/// dispatched outside the loop so each variant vectorises.
#[inline(always)]
pub(crate) fn epilogue(
    acc: Option<&[f32]>,
    bias: f32,
    res: [Option<&[f32]>; 2],
    out: &mut [f32],
    act: Activation,
) {
    match act {
        Activation::None => epi_with(acc, bias, res, out, |x| x),
        Activation::Relu => epi_with(acc, bias, res, out, |x| max_to(x, 0.0)),
        Activation::Clip(lo, hi) => epi_with(acc, bias, res, out, |x| min_to(max_to(x, lo), hi)),
        Activation::LeakyRelu(a) => {
            epi_with(acc, bias, res, out, |x| if x >= 0.0 { x } else { a * x })
        }
        Activation::HardSwish => epi_with(acc, bias, res, out, hard_swish),
        Activation::Silu => {
            epi_with(acc, bias, res, out, |x| x);
            act::silu_in_place(out);
        }
    }
}

/// `out = act(out + bias + res + res2)` in place (a missing residual is 0).
#[inline(always)]
pub(crate) fn epilogue_in_place(
    out: &mut [f32],
    bias: f32,
    res: [Option<&[f32]>; 2],
    act: Activation,
) {
    match act {
        Activation::None => in_place_with(out, bias, res, |x| x),
        Activation::Relu => in_place_with(out, bias, res, |x| max_to(x, 0.0)),
        Activation::Clip(lo, hi) => in_place_with(out, bias, res, |x| min_to(max_to(x, lo), hi)),
        Activation::LeakyRelu(a) => {
            in_place_with(out, bias, res, |x| if x >= 0.0 { x } else { a * x })
        }
        Activation::HardSwish => in_place_with(out, bias, res, hard_swish),
        Activation::Silu => {
            in_place_with(out, bias, res, |x| x);
            act::silu_in_place(out);
        }
    }
}

#[inline(always)]
fn in_place_with(out: &mut [f32], bias: f32, res: [Option<&[f32]>; 2], f: impl Fn(f32) -> f32) {
    match res {
        [Some(r), Some(r2)] => {
            for ((o, &r), &r2) in out.iter_mut().zip(r).zip(r2) {
                *o = f(*o + bias + r + r2);
            }
        }
        [Some(r), None] => {
            for (o, &r) in out.iter_mut().zip(r) {
                *o = f(*o + bias + r);
            }
        }
        _ => {
            for o in out.iter_mut() {
                *o = f(*o + bias);
            }
        }
    }
}

#[inline(always)]
fn epi_with(
    acc: Option<&[f32]>,
    bias: f32,
    res: [Option<&[f32]>; 2],
    out: &mut [f32],
    f: impl Fn(f32) -> f32,
) {
    match (acc, res) {
        (Some(a), [Some(r), Some(r2)]) => {
            for (((o, &a), &r), &r2) in out.iter_mut().zip(a).zip(r).zip(r2) {
                *o = f(a + bias + r + r2);
            }
        }
        (Some(a), [Some(r), None]) => {
            for ((o, &a), &r) in out.iter_mut().zip(a).zip(r) {
                *o = f(a + bias + r);
            }
        }
        (Some(a), _) => {
            for (o, &a) in out.iter_mut().zip(a) {
                *o = f(a + bias);
            }
        }
        (None, [Some(r), Some(r2)]) => {
            for ((o, &r), &r2) in out.iter_mut().zip(r).zip(r2) {
                *o = f(0.0 + bias + r + r2);
            }
        }
        (None, [Some(r), None]) => {
            for (o, &r) in out.iter_mut().zip(r) {
                *o = f(0.0 + bias + r);
            }
        }
        (None, _) => out.fill(f(0.0 + bias)),
    }
}

/// `d.copy_from_slice(&s[..d.len()])`, inlined for short rows (a `memmove` call per row of a
/// small image costs more than the copy).
#[inline(always)]
pub(crate) fn copy_row(d: &mut [f32], s: &[f32]) {
    let s = &s[..d.len()];
    if d.len() >= 64 {
        d.copy_from_slice(s);
        return;
    }
    let mut dc = d.chunks_exact_mut(4);
    let mut sc = s.chunks_exact(4);
    for (a, b) in (&mut dc).zip(&mut sc) {
        a.copy_from_slice(b);
    }
    for (a, b) in dc.into_remainder().iter_mut().zip(sc.remainder()) {
        *a = *b;
    }
}

/// One input row split into its `M` column phases (`M <= 4`): entry `k` of phase `p`, at
/// `dst + p plen + k` for `k < n`, is `line[M (k - s) + p]`, or 0 where that column is
/// outside the line (`k < s`, or past its end). Eight entries of every phase at a time by
/// register shuffles when `avx2` (masked loads at the line's end), the rest one by one.
/// (Raw pointers: through arrays of slices, the bounds checks and slice bookkeeping cost
/// more than the copy.)
///
/// # Safety
/// `line` has `w` readable floats; every `dst + p plen + k` (`p < M`, `k < n`) is writable
/// and none overlaps `line`; `avx2` is set only on AVX2 hosts.
#[inline(always)]
pub(crate) unsafe fn split_line<const M: usize>(
    line: *const f32,
    w: usize,
    s: usize,
    (dst, plen, n): (*mut f32, usize, usize),
    avx2: bool,
) {
    #[cfg(not(target_arch = "x86_64"))]
    let _ = avx2;
    debug_assert!(M <= 4);
    // SAFETY: every access is one of the caller's ranges: `line + x` for `x < w`, `dst + p
    // plen + k` for `k < n`.
    unsafe {
        let at = |p: usize, k: usize| dst.add(p * plen + k);
        for k in 0..s.min(n) {
            for p in 0..M {
                *at(p, k) = 0.0;
            }
        }
        let mut k = s;
        while k < n {
            let (x0, groups) = (M * (k - s), 8.min(n - k));
            #[cfg(target_arch = "x86_64")]
            if avx2 && groups == 8 {
                // Past the line's end the pointer is only formed (`wrapping_add`), never read.
                let src = line.wrapping_add(x0);
                phases::split::<M>(src, w.saturating_sub(x0), dst.add(k), plen);
                k += 8;
                continue;
            }
            for t in 0..groups {
                for p in 0..M {
                    let x = x0 + M * t + p;
                    *at(p, k + t) = if x < w { *line.add(x) } else { 0.0 };
                }
            }
            k += groups;
        }
    }
}
