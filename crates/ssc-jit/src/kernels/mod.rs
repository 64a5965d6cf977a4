//! The plain-Rust and `gemm`-backed kernels of the JIT (the Cranelift ones are in `codegen`).

pub(crate) mod eltwise;
pub(crate) mod gemm_conv;
pub(crate) mod linear;
pub(crate) mod par;
pub(crate) mod pool;
