//! The cost-model interface agreed with `ssc-cost`, kept here until that crate lands; the
//! extractor only sees [`CostModel`], so switching is a change of `use` lines.
//!
//! Unit: microseconds per node execution (per batch), as in `ssc-cost`.

/// What kind of operator a node is, with the parameters that decide its speed.
#[derive(Clone, Debug, PartialEq)]
pub enum OpKind {
    /// A convolution.
    Conv {
        /// The `group` attribute.
        groups: usize,
        /// Input channels per group.
        cin_per_group: usize,
        /// Output channels per group.
        cout_per_group: usize,
        /// Kernel spatial shape.
        kernel: Vec<usize>,
        /// Strides.
        stride: Vec<usize>,
    },
    /// A pooling op.
    Pool,
    /// An elementwise op (Add, Mul, ...).
    Elementwise,
    /// A gather (channel permutation or selection).
    Gather,
    /// A matrix product.
    MatMul,
    /// Anything else.
    Other,
}

/// Everything a cost model may look at for one node.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeCostInput {
    /// The operator.
    pub kind: OpKind,
    /// Multiply-accumulates (additions count as MACs).
    pub macs: u64,
    /// Bytes of activations read.
    pub bytes_in: u64,
    /// Bytes of activations written.
    pub bytes_out: u64,
    /// Bytes of constant weights read.
    pub weight_bytes: u64,
}

/// A node cost model, in microseconds.
pub trait CostModel: Send + Sync + std::fmt::Debug {
    /// The estimated time of one execution of the node.
    fn node_cost(&self, n: &NodeCostInput) -> f64;
}

/// Stand-in for `ssc_cost::CalibratedCost`: a roofline (compute at 8 GMAC/s, memory at
/// 10 GB/s, the slower wins) plus a fixed per-node dispatch overhead.
#[derive(Clone, Copy, Debug, Default)]
pub struct CalibratedCost;

/// Dispatch overhead of one node, microseconds.
const NODE_OVERHEAD_US: f64 = 1.0;
/// Compute throughput, MACs per microsecond.
const MACS_PER_US: f64 = 8_000.0;
/// Memory throughput, bytes per microsecond.
const BYTES_PER_US: f64 = 10_000.0;

impl CostModel for CalibratedCost {
    fn node_cost(&self, n: &NodeCostInput) -> f64 {
        let compute = n.macs as f64 / MACS_PER_US;
        let memory = (n.bytes_in + n.bytes_out + n.weight_bytes) as f64 / BYTES_PER_US;
        NODE_OVERHEAD_US + compute.max(memory)
    }
}

/// MACs only (in thousands, so the unit stays near microseconds), with a tiny per-node and
/// per-byte term so that an alternative with equal MACs but more nodes never wins.
#[derive(Clone, Copy, Debug, Default)]
pub struct MacCost;

impl CostModel for MacCost {
    fn node_cost(&self, n: &NodeCostInput) -> f64 {
        n.macs as f64 / 1000.0 + 1e-3 + (n.bytes_in + n.bytes_out) as f64 * 1e-9
    }
}
