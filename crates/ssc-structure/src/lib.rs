//! Weight-structure analysis: finds the structure hidden in dense Conv, Gemm and MatMul weights
//! so that rewrite rules can replace them with exactly equivalent, cheaper operators.
//!
//! Architecture invariant: this crate reads weights and reports facts; it never changes a graph
//! and knows nothing of egg, protobuf or cost models. It depends only on `ssc-ir`.
//!
//! What it finds (the algebra is in `PAPERS.md`):
//! - **kernel classes** ([`KernelClass`]): every `(o, i)` kernel is Z (zero), P (centre tap
//!   only), F (all taps) or a partial tap subset, with its exact tap mask ([`KernelMap`]);
//! - **tap support** ([`TapSupport`]): the taps any kernel uses (a zero ring shrinks the kernel)
//!   and the taps every non-zero kernel shares (a `+` shape);
//! - **channel connectivity** ([`Connectivity`]): components of the bipartite graph of
//!   non-zero kernels, which under channel permutations give a grouped or depthwise conv;
//! - **the SSC split** ([`SscSplit`]): the same for spatial kernels only, plus the density of
//!   the pointwise remainder;
//! - **unified weights** ([`Unified`]): constant kernels, equal input channels, output
//!   filters equal up to sign, zero outputs and inputs;
//! - **sparse-kernel facts** ([`SparsityFacts`]): MSWU tiles of any shape ([`TileFacts`]:
//!   pruned, one-value and sign-kept tiles, with counts and a per-tile map), N:M runs along
//!   input channels ([`NmFacts`]) and the density of each output channel ([`ChannelDensity`]),
//!   which the JIT's kernel choice reads;
//! - overall sparsity and non-zero MACs per output pixel.
//!
//! Zero means exactly `0.0` (`-0.0` included; NaN is never zero and never equal to anything).
//! With [`AnalysisOptions::epsilon`] `> 0`, `|w| <= eps` counts as zero and values within
//! `eps` as equal, and every result is marked `approximate`.
//!
//! Cost: one pass over the weight values per node, plus a re-read of the channels whose hashes
//! collide (each hash class is verified element by element).
//!
//! ```
//! use ssc_ir::Tensor;
//! use ssc_structure::{analyze_conv_weight, AnalysisOptions};
//!
//! // A 4x4 1x1 conv that only connects channels of equal parity: two groups after permutation.
//! let mut w = vec![0.0f32; 16];
//! for o in 0..4 {
//!     for i in 0..4 {
//!         if o % 2 == i % 2 {
//!             w[o * 4 + i] = (1 + o * 4 + i) as f32;
//!         }
//!     }
//! }
//! let s = analyze_conv_weight(&Tensor::from_f32(vec![4, 4, 1, 1], &w), 1, &AnalysisOptions::default())?;
//! let blocks = s.connectivity.blocks.as_ref().unwrap();
//! assert_eq!(blocks.groups, 2);
//! assert_eq!(blocks.output_perm, vec![0, 2, 1, 3]);
//! assert_eq!(s.to_string(), "Conv 4x4x1x1 g=1: Z 50%; G=2 (perm)");
//! # Ok::<(), ssc_structure::StructureError>(())
//! ```

// Every public item is documented: rules are written against these facts.
#![warn(missing_docs)]

pub mod channels;
mod classes;
mod connectivity;
mod conv;
mod decode;
mod elem;
mod error;
mod kernels;
mod matrix;
mod model;
mod report;
mod scan;
mod sparsity;
mod tapset;
mod unionfind;

pub use channels::{channel_dataflow, ChannelDataflow, ChannelFact, ChannelOp};
pub use classes::{FilterClass, SignedChannel};
pub use connectivity::{invert, BlockDiagonal, Component, Connectivity, PaddedBlocks, PAD};
pub use conv::{analyze_conv_weight, ConvStructure, SscSplit, TapSupport, Unified};
pub use error::StructureError;
pub use kernels::{KernelClass, KernelCounts, KernelMap};
pub use matrix::{analyze_matrix, analyze_matrix_transposed, MatrixStructure};
pub use model::{analyze_model, analyze_op, ModelStructure, NodeStructure};
pub use sparsity::{
    tile_facts, ChannelDensity, NmFacts, SparsityFacts, TileClass, TileFacts, TileShape,
};
pub use tapset::{AxisExtent, TapSet};

use serde::Serialize;

/// How strict "zero" and "equal" are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct AnalysisOptions {
    /// `0.0` (the default) is exact. Otherwise `|w| <= epsilon` is zero and values within
    /// `epsilon` are equal, and results are marked approximate: rewrites built on them change
    /// the model's outputs.
    pub epsilon: f32,
}

impl AnalysisOptions {
    /// Exact analysis: zero is `0.0`, equal is `==`.
    pub fn exact() -> AnalysisOptions {
        AnalysisOptions { epsilon: 0.0 }
    }

    /// Analysis up to `epsilon` (checked when an analysis runs).
    pub fn approximate(epsilon: f32) -> AnalysisOptions {
        AnalysisOptions { epsilon }
    }

    /// True when zero means exactly zero and equal means `==`.
    pub fn is_exact(&self) -> bool {
        self.epsilon == 0.0
    }

    pub(crate) fn validate(&self) -> Result<(), StructureError> {
        if self.epsilon.is_finite() && self.epsilon >= 0.0 {
            Ok(())
        } else {
            Err(StructureError::Epsilon(self.epsilon))
        }
    }
}
