//! Small helpers for splitting a kernel's output across the rayon pool the plan runs in, and for
//! running the kernels' Rust loops in code compiled for the host's vector extensions.

use rayon::prelude::*;

/// A raw pointer that may cross threads. Kernels use it to let tasks write disjoint parts of
/// one output buffer; each use site states why its parts are disjoint.
#[derive(Clone, Copy)]
pub(crate) struct SendPtr(pub *mut f32);

// SAFETY: the pointer is only dereferenced by tasks that write disjoint index ranges of a
// buffer that outlives the parallel section (see each use).
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

impl SendPtr {
    /// The pointer. (A method, so closures capture the whole `SendPtr` rather than its
    /// non-`Send` field.)
    #[inline]
    pub(crate) fn get(self) -> *mut f32 {
        self.0
    }
}

/// Whether the host has AVX2 and FMA (detected once; `std` caches the answer).
#[inline]
pub(crate) fn has_avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether the host has AVX-512F (detected once; `std` caches the answer).
#[cfg(target_arch = "x86_64")]
#[inline]
pub(crate) fn has_avx512f() -> bool {
    std::is_x86_feature_detected!("avx512f")
}

/// Runs `f` inside a function compiled for AVX2 + FMA when the host has them, so the loops `f`
/// inlines (elementwise maps, epilogues, transforms, pooling) vectorise 8 wide instead of the
/// baseline's 4 (the crate is built for plain x86-64). `f` is generic, so it is instantiated,
/// and inlined, inside that function.
#[inline(always)]
pub(crate) fn simd<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: AVX2 and FMA were detected at run time.
        return unsafe { with_avx2_fma(f) };
    }
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn with_avx2_fma<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// How many parts `n` units split into on the current pool: about 4 per thread (more parts
/// than threads so uneven parts balance), each at least `min` units; 1 on one thread.
fn part_count(n: usize, min: usize) -> usize {
    let threads = rayon::current_num_threads();
    if threads <= 1 {
        1
    } else {
        (4 * threads).min(n.div_ceil(min.max(1))).max(1)
    }
}

/// Runs `f(begin, end)` over `0..n` split into about `4 * threads` contiguous parts (more parts
/// than threads so uneven parts balance), sequentially when one thread or small `n`.
pub(crate) fn for_ranges(n: usize, min_part: usize, f: impl Fn(usize, usize) + Sync + Send) {
    let parts = part_count(n, min_part);
    if parts <= 1 {
        simd(
            #[inline(always)]
            || f(0, n),
        );
        return;
    }
    (0..parts).into_par_iter().for_each(|p| {
        let b = n * p / parts;
        let e = n * (p + 1) / parts;
        if b < e {
            simd(
                #[inline(always)]
                || f(b, e),
            );
        }
    });
}

/// Runs `f(task, slot)` for every task in `0..n`: one after the other on one thread, else as
/// rayon tasks. `slot` is the running thread's index modulo `slots`: with `slots` at least the
/// pool's size, each thread owns one slot of a per-thread scratch (it runs one task at a time).
pub(crate) fn for_tasks(n: usize, slots: usize, f: impl Fn(usize, usize) + Sync + Send) {
    let slot = || rayon::current_thread_index().unwrap_or(0) % slots.max(1);
    if rayon::current_num_threads() <= 1 {
        simd(
            #[inline(always)]
            || (0..n).for_each(|t| f(t, slot())),
        );
    } else {
        (0..n).into_par_iter().for_each(|t| {
            simd(
                #[inline(always)]
                || f(t, slot()),
            )
        });
    }
}

/// Splits `out` into parts of whole `unit`-element units (about 4 parts per thread, each at
/// least `min_units` units) and runs `f(first_unit, part)` on each in parallel, or `f(0, out)`
/// on one thread or a small `out`: the safe form of a kernel's parallel loop over rows,
/// channels or elements of its output.
pub(crate) fn par_units<T: Send>(
    out: &mut [T],
    unit: usize,
    min_units: usize,
    f: impl Fn(usize, &mut [T]) + Sync + Send,
) {
    let unit = unit.max(1);
    let n = out.len() / unit;
    let parts = part_count(n, min_units);
    if parts <= 1 {
        simd(
            #[inline(always)]
            || f(0, out),
        );
        return;
    }
    let per = n.div_ceil(parts);
    out.par_chunks_mut(per * unit)
        .enumerate()
        .for_each(|(i, part)| {
            simd(
                #[inline(always)]
                || f(i * per, part),
            )
        });
}
