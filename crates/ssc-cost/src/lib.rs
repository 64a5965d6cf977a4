//! Cost model for ssc-opt: estimated single-thread ONNX Runtime latency of a graph node, so the
//! rewrite engine can choose between exactly-equivalent forms by what actually runs faster.
//!
//! Architecture invariant: this crate knows nothing of graphs, egg or protobuf. It maps the
//! description of one node ([`NodeCostInput`]) to microseconds, and every number it uses comes
//! from one calibration table (`calibration.json`, written by `scripts/calibrate_cost.py` from
//! ORT measurements on the target machine). The only constants in code are unit conversions.
//!
//! Why not MACs: ORT runs a dense conv at full cost whatever zeros its weights hold, and runs a
//! grouped conv with few channels per group far below peak (each im2col element is reused only
//! `cout_per_group` times). A rewrite that lowers MACs can therefore run slower; the calibrated
//! model sees that, [`MacCost`] does not.
//!
//! ```
//! use ssc_cost::{CalibratedCost, ConvShape, CostModel, NodeCostInput};
//!
//! let model = CalibratedCost::default();
//! // ResNet-18 layer3: a dense 3x3 conv, 256 -> 256 channels at 14x14 ...
//! let dense = ConvShape::new_2d(256, 256, 1, 3, 1, 14).cost_input();
//! // ... and its SSC rewrite: grouped 3x3 (G = 4) + pointwise 1x1 + Add.
//! let rewrite = [
//!     ConvShape::new_2d(256, 256, 4, 3, 1, 14).cost_input(),
//!     ConvShape::new_2d(256, 256, 1, 1, 1, 14).cost_input(),
//!     NodeCostInput::elementwise(256 * 14 * 14, 2),
//! ];
//! assert!(model.total_cost(&rewrite) < model.node_cost(&dense));
//! ```

// Every public item is documented: the rewrite engine codes against this interface.
#![warn(missing_docs)]

mod cost;

pub use cost::{
    Alternative, Bucket, CalibratedCost, Calibration, Coefficients, ConvShape, CostError,
    CostModel, Decision, FitStats, KernelClass, MacCost, Machine, NodeCostInput, OpKind, Predicate,
    Sample, F32_BYTES,
};
