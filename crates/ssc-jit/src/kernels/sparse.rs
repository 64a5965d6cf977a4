//! The table-driven sparse convolution loop as Rust compiled for AVX2 + FMA: the same baked
//! `(offset, weight)` table the Cranelift table kernel walks, with 8-wide vectors instead of
//! Cranelift's 4-wide ones.
//!
//! Why: Cranelift emits 128-bit vectors only, so on an AVX2 host this loop does the same work
//! in half the FMAs. Measured on ResNet-18's 90%-sparse layers (single thread, `ssc-jit`
//! codegen bench `bench_sparse_and_dense_3x3`): ~34 GFLOP/s at 56x56 to 7x7, against 26-31 for
//! unrolled Cranelift code (weights as immediates) and 15-19 for the Cranelift table loop. So
//! `StreamConv` uses it for every layer on AVX2 hosts; elsewhere (no AVX2, or
//! `CodegenOptions::vector_table` off) the generated kernels run.

/// Outputs per tile for planes of more than [`SMALL_TILE`] outputs per channel: four 8-wide
/// accumulators in each of two sets that alternate between terms (an FMA has a 4-cycle
/// latency, so one set of four would leave the FMA units half idle).
pub(crate) const TILE: usize = 32;
/// Outputs per tile for small planes (7x7 pads to 63): one set of eight accumulators, so a
/// channel's table is walked once instead of twice (the table of a 512-channel 90%-sparse
/// layer is ~2 MB). Two sets of eight would spill the 16 AVX2 registers.
pub(crate) const SMALL_TILE: usize = 64;

/// The tile a layer whose channels have `outputs` flat outputs uses.
pub(crate) fn tile_for(outputs: usize) -> usize {
    if outputs <= SMALL_TILE {
        SMALL_TILE
    } else {
        TILE
    }
}

/// `acc[t*TILE + j] = sum over the table of w * in[t*TILE + j + off]` for `n_tiles` tiles,
/// `singles` holding `(byte offset, weight bits)` pairs and `groups` holding runs of
/// `(count, weight bits, byte offset * count)` whose inputs are summed before one multiply
/// (the layout [`crate::codegen::StreamConv`] bakes for the Cranelift table kernel). Written
/// with AVX intrinsics so the eight accumulators stay in registers (plain loops over arrays
/// left them on the stack).
///
/// # Safety
/// The host must have AVX2 and FMA. For every tile `t < n_tiles` and every offset `off` in the
/// table, the `TILE` floats at `inp + t*TILE + off/4` must be readable, and `acc` must have room
/// for `n_tiles * TILE`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::needless_range_loop)] // `v` indexes several register arrays in step
pub(crate) unsafe fn table_tiles(
    inp: *const f32,
    acc: *mut f32,
    n_tiles: usize,
    tile: usize,
    singles: &[i32],
    groups: &[i32],
) {
    // SAFETY: forwarded; `tile` is one of the two instantiated sizes.
    unsafe {
        if tile == SMALL_TILE {
            tiles::<{ SMALL_TILE / 8 }, 1>(inp, acc, n_tiles, singles, groups)
        } else {
            tiles::<{ TILE / 8 }, 2>(inp, acc, n_tiles, singles, groups)
        }
    }
}

/// [`table_tiles`] with `V` vectors per tile and `SETS` (1 or 2) accumulator sets.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
#[allow(clippy::needless_range_loop)]
unsafe fn tiles<const V: usize, const SETS: usize>(
    inp: *const f32,
    acc: *mut f32,
    n_tiles: usize,
    singles: &[i32],
    groups: &[i32],
) {
    use std::arch::x86_64::*;
    let tile = 8 * V;
    let off = |o: i32| o as isize / 4;
    for t in 0..n_tiles {
        // SAFETY: in bounds by the caller's contract (tile t, table offsets); AVX2 + FMA
        // present.
        unsafe {
            let p = inp.add(t * tile);
            let z = _mm256_setzero_ps();
            // `b` is the second set when SETS == 2, else unused.
            let (mut a, mut b) = ([z; V], [z; V]);
            let mut pairs = singles.chunks_exact(4);
            for e in &mut pairs {
                let (x0, w0) = (
                    p.offset(off(e[0])),
                    _mm256_set1_ps(f32::from_bits(e[1] as u32)),
                );
                let (x1, w1) = (
                    p.offset(off(e[2])),
                    _mm256_set1_ps(f32::from_bits(e[3] as u32)),
                );
                for v in 0..V {
                    a[v] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x0.add(8 * v)), a[v]);
                }
                let second = if SETS == 2 { &mut b } else { &mut a };
                for v in 0..V {
                    second[v] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x1.add(8 * v)), second[v]);
                }
            }
            if let [o, bits] = *pairs.remainder() {
                let (x, w) = (
                    p.offset(off(o)),
                    _mm256_set1_ps(f32::from_bits(bits as u32)),
                );
                for v in 0..V {
                    a[v] = _mm256_fmadd_ps(w, _mm256_loadu_ps(x.add(8 * v)), a[v]);
                }
            }
            let mut g = groups;
            while let [cnt, bits, rest @ ..] = g {
                let cnt = *cnt as usize;
                let mut s = [z; V];
                for &o in &rest[..cnt] {
                    let x = p.offset(off(o));
                    for v in 0..V {
                        s[v] = _mm256_add_ps(s[v], _mm256_loadu_ps(x.add(8 * v)));
                    }
                }
                let w = _mm256_set1_ps(f32::from_bits(*bits as u32));
                for v in 0..V {
                    a[v] = _mm256_fmadd_ps(w, s[v], a[v]);
                }
                g = &rest[cnt..];
            }
            for v in 0..V {
                let sum = if SETS == 2 {
                    _mm256_add_ps(a[v], b[v])
                } else {
                    a[v]
                };
                _mm256_storeu_ps(acc.add(t * tile + 8 * v), sum);
            }
        }
    }
}

/// Never called: the vector table loop is chosen only on x86-64 hosts with AVX2 and FMA.
///
/// # Safety
/// Not callable.
#[cfg(not(target_arch = "x86_64"))]
pub(crate) unsafe fn table_tiles(
    _inp: *const f32,
    _acc: *mut f32,
    _n_tiles: usize,
    _tile: usize,
    _singles: &[i32],
    _groups: &[i32],
) {
    unreachable!("the AVX2 table loop runs on x86-64 only")
}
