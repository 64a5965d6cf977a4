//! The plain-Rust and `gemm`-backed kernels of the JIT (the Cranelift ones are in `codegen`).

pub(crate) mod eltwise;
pub(crate) mod gemm_conv;
pub(crate) mod linear;
pub(crate) mod par;
pub(crate) mod pool;

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
