//! Cranelift code generation for weight-specialised kernels: the host ISA, code-memory ownership
//! and the kernels built on them ([`StreamConv`], and `chain::ChainCode` for elementwise chains).
//!
//! # Ownership of generated code
//!
//! Every compiled kernel gets its own finalized `JITModule`, wrapped in a `CodeHolder` behind an
//! `Arc` that the kernel keeps. The code stays mapped as long as any kernel (or clone of its
//! function pointers) lives, and is freed when the last `Arc` drops. [`Jit`] itself only owns the
//! target ISA and the options; dropping it does not invalidate kernels.
//!
//! # Host requirements
//!
//! The ISA is built with `cranelift_native::builder()`, which detects host features. Cranelift
//! lowers `fma` to a native `vfmadd` only with both `has_avx` and `has_fma`; otherwise every `fma`
//! would become a libcall, so the generators fall back to `fmul` + `fadd` instead (see
//! [`Jit::has_fma`]). Cranelift emits 128-bit vectors only, so all kernels use `f32x4`.
#![allow(unsafe_code)] // Calling JIT-compiled code and freeing its memory; each use is justified.

pub(crate) mod chain;
mod emit;
mod stream;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use cranelift_codegen::isa::OwnedTargetIsa;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_jit::{JITBuilder, JITModule};

use crate::JitError;

pub use stream::StreamConv;

/// Cranelift's optimisation level for generated code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OptLevel {
    /// No mid-end optimisation: instructions stay in the order the generator emits them. Faster to
    /// compile and, measured on large straight-line kernels, faster to run (`speed` hoists the
    /// splatted weight constants out of the tile loop and then spills them).
    #[default]
    None,
    /// Cranelift's `speed` level (e-graph mid-end, LICM, GVN).
    Speed,
}

/// Knobs of the code generators. The defaults are the measured best on the development machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CodegenOptions {
    pub opt_level: OptLevel,
    /// `f32x4` accumulators per spatial tile (1..=8): a tile covers `4 * tile_vectors` outputs.
    pub tile_vectors: usize,
    /// A convolution with at most this many non-zero weights gets one fully unrolled function per
    /// output channel (weights and offsets as immediates); larger ones run one generated loop
    /// over a baked table of `(offset, weight)` entries, which compiles in constant time.
    pub unroll_max_nnz: usize,
    /// Compile per-channel functions on the rayon pool (the ISA is `Send + Sync`).
    pub parallel_compile: bool,
    /// On hosts with AVX2 and FMA, run every layer through the 8-wide Rust table loop
    /// (`kernels::sparse`) instead of generated code (measured faster at every layer size; see
    /// the `stream` module). `unroll_max_nnz` then does not apply.
    pub vector_table: bool,
}

impl Default for CodegenOptions {
    fn default() -> CodegenOptions {
        CodegenOptions {
            opt_level: OptLevel::None,
            tile_vectors: 4,
            unroll_max_nnz: 4096,
            parallel_compile: true,
            vector_table: true,
        }
    }
}

/// The code generator: the host ISA plus options. Each compiled kernel owns its own code memory.
pub struct Jit {
    isa: OwnedTargetIsa,
    opts: CodegenOptions,
    fma: bool,
}

impl std::fmt::Debug for Jit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jit")
            .field("triple", &self.isa.triple().to_string())
            .field("opts", &self.opts)
            .field("fma", &self.fma)
            .finish()
    }
}

impl Jit {
    /// A JIT for the host CPU with the default options.
    pub fn new() -> Result<Jit, JitError> {
        Jit::with_options(CodegenOptions::default())
    }

    /// A JIT for the host CPU.
    pub fn with_options(opts: CodegenOptions) -> Result<Jit, JitError> {
        if !(1..=8).contains(&opts.tile_vectors) {
            return Err(JitError::Invalid(format!(
                "tile_vectors must be 1..=8, got {}",
                opts.tile_vectors
            )));
        }
        let host = |e: String| JitError::Host(e);
        let mut flags = settings::builder();
        let level = match opts.opt_level {
            OptLevel::None => "none",
            OptLevel::Speed => "speed",
        };
        flags
            .set("opt_level", level)
            .map_err(|e| host(e.to_string()))?;
        // JIT code is placed anywhere in the address space; no PIC needed, no probes (our frames
        // are tiny).
        flags
            .set("is_pic", "false")
            .map_err(|e| host(e.to_string()))?;
        // The IR verifier roughly doubles compile time; the generators are tested instead.
        flags
            .set(
                "enable_verifier",
                if cfg!(debug_assertions) {
                    "true"
                } else {
                    "false"
                },
            )
            .map_err(|e| host(e.to_string()))?;
        let isa = cranelift_native::builder()
            .map_err(|e| host(e.to_string()))?
            .finish(settings::Flags::new(flags))
            .map_err(|e| host(e.to_string()))?;
        let flag = |name: &str| {
            isa.isa_flags()
                .iter()
                .find(|v| v.name == name)
                .and_then(|v| v.as_bool())
                .unwrap_or(false)
        };
        let fma = flag("has_avx") && flag("has_fma");
        Ok(Jit { isa, opts, fma })
    }

    /// Whether generated code uses native FMA (otherwise `fmul` + `fadd`).
    pub fn has_fma(&self) -> bool {
        self.fma
    }

    /// The options this JIT was built with.
    pub fn options(&self) -> &CodegenOptions {
        &self.opts
    }

    /// A fresh module for one kernel's functions.
    fn module(&self) -> JITModule {
        JITModule::new(JITBuilder::with_isa(
            self.isa.clone(),
            cranelift_module::default_libcall_names(),
        ))
    }
}

/// A finalized `JITModule` kept alive by the kernels whose code lives in it.
pub(crate) struct CodeHolder {
    module: Option<JITModule>,
}

// SAFETY: after `finalize_definitions` the module is never used again except to be freed on drop;
// its code memory is immutable (read + execute), so sharing function pointers into it between
// threads is sound. Nothing reads the module's interior state concurrently.
unsafe impl Send for CodeHolder {}
// SAFETY: see `Send`: shared references to the holder expose nothing but its existence.
unsafe impl Sync for CodeHolder {}

impl CodeHolder {
    fn new(module: JITModule) -> Arc<CodeHolder> {
        Arc::new(CodeHolder {
            module: Some(module),
        })
    }
}

impl Drop for CodeHolder {
    fn drop(&mut self) {
        if let Some(m) = self.module.take() {
            // SAFETY: the holder is dropped only when no kernel holds an `Arc` to it any more, so
            // no function pointer into this module can still be called.
            unsafe { m.free_memory() };
        }
    }
}
