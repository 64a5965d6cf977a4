//! Typed errors: what can be wrong with a weight handed to the analysis.

use ssc_ir::{DataType, IrError};

/// Why a weight could not be analysed.
#[derive(Debug, thiserror::Error)]
pub enum StructureError {
    /// Only floating-point weights carry the structures this crate looks for.
    #[error("weight has element type {0}; only float, float16, bfloat16 and double are analysed")]
    UnsupportedDtype(DataType),
    /// The tensor's payload is not packed raw data (strings or an undecodable type).
    #[error("weight payload is not raw numeric data")]
    NotNumeric,
    /// A Conv weight is `[Co, Ci/group, k...]` with at least one spatial axis.
    #[error("conv weight must have rank 3 or more, got dims {0:?}")]
    ConvRank(Vec<usize>),
    /// A matrix weight is 2-D.
    #[error("matrix weight must have rank 2, got dims {0:?}")]
    MatrixRank(Vec<usize>),
    /// A kernel with no taps has no structure to find.
    #[error("kernel shape {0:?} has an empty axis")]
    EmptyKernel(Vec<usize>),
    /// `group` must be positive and divide the output channels.
    #[error("group {group} does not divide the {outputs} output channels")]
    Group {
        /// The `group` attribute.
        group: usize,
        /// The weight's output channels.
        outputs: usize,
    },
    /// Channel indices are reported as `u32`.
    #[error("{0} channels exceed the supported 2^32 - 1")]
    TooManyChannels(usize),
    /// A tile has at least one output and one input channel.
    #[error("tile shape {0}x{1} has an empty side")]
    TileShape(usize, usize),
    /// Epsilon is a non-negative finite tolerance.
    #[error("epsilon must be finite and >= 0, got {0}")]
    Epsilon(f32),
    /// An attribute of the node could not be read.
    #[error(transparent)]
    Ir(#[from] IrError),
    /// Any of the above, located at a node of a model.
    #[error("node `{node}`: {source}")]
    Node {
        /// The node's label (name, or `op_type#index`).
        node: String,
        /// What went wrong there.
        #[source]
        source: Box<StructureError>,
    },
}
