//! Cranelift code generation for weight-specialised kernels.
