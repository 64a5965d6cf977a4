//! The cost model and its calibration table: every latency number ssc-opt uses lives here
//! (read from `calibration.json`), with its unit.
//!
//! Unit: **microseconds of single-thread ONNX Runtime latency of one node** (CPU execution
//! provider, `intra_op_num_threads = 1`, `ORT_ENABLE_ALL`), on the machine the table was
//! measured on. Costs are non-negative and finite; costs of a graph add up.
//!
//! Form, per bucket (a bucket is an op kind narrowed by a [`Predicate`] on its shape):
//!
//! ```text
//! time_us = overhead_us + groups * us_per_group
//!         + (macs * ns_per_mac + (bytes_in + bytes_out + weight_bytes) * ns_per_byte
//!            + macs / cout_per_group * ns_per_patch) / 1000
//! ```
//!
//! `groups` and `macs / cout_per_group` (the im2col patch elements) are zero for kinds other
//! than Conv. All coefficients are non-negative, so the cost never decreases when MACs or bytes
//! grow within a bucket. Why the patch term: ORT runs a grouped conv whose channels per group
//! are not a multiple of its NCHWc block (16 with AVX-512, 8 with AVX2) as one im2col + GEMM per
//! group; the GEMM has only `cout_per_group` rows, so time follows the patch size, not the MACs.

use std::collections::BTreeMap;

use serde::Deserialize;
use thiserror::Error;

/// The committed calibration table (see `scripts/calibrate_cost.py`).
const DEFAULT_TABLE: &str = include_str!("../calibration.json");
/// The `format` field every calibration file carries.
const FORMAT: &str = "ssc-cost-calibration";
/// The table layout this crate reads.
const FORMAT_VERSION: u32 = 1;
/// Nanoseconds per microsecond: the `ns_per_*` coefficients are per nanosecond.
const NS_PER_US: f64 = 1_000.0;
/// Bytes of one float32 element; the calibration measured float32 tensors only.
pub const F32_BYTES: u64 = std::mem::size_of::<f32>() as u64;
/// Op kinds in the order of [`OpKind`]; the table must have buckets for each.
const KINDS: [&str; 6] = ["conv", "pool", "elementwise", "gather", "matmul", "other"];

/// What kind of op, with the parameters that change its efficiency.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum OpKind {
    /// Convolution (any spatial rank).
    Conv {
        /// The `group` attribute.
        groups: usize,
        /// Input channels per group (`Cin / groups`, the weight's dim 1).
        cin_per_group: usize,
        /// Output channels per group (`Cout / groups`).
        cout_per_group: usize,
        /// Kernel spatial dims, e.g. `[3, 3]`.
        kernel: Vec<usize>,
        /// Strides, e.g. `[1, 1]`.
        stride: Vec<usize>,
    },
    /// AveragePool, MaxPool, GlobalAveragePool.
    Pool,
    /// Add, Mul, Relu, Clip, ...
    Elementwise,
    /// Channel gather / permutation.
    Gather,
    /// Gemm / MatMul.
    MatMul,
    /// Anything else (Concat, Slice, Split, Pad, ...): one coarse bucket.
    Other,
}

impl OpKind {
    /// The kind's key in the calibration table.
    fn key(&self) -> &'static str {
        match self {
            OpKind::Conv { .. } => "conv",
            OpKind::Pool => "pool",
            OpKind::Elementwise => "elementwise",
            OpKind::Gather => "gather",
            OpKind::MatMul => "matmul",
            OpKind::Other => "other",
        }
    }
}

/// One node as the cost model sees it.
///
/// `macs`: Conv `N * Cout * Ho * Wo * (Cin / group) * kh * kw`; MatMul/Gemm `M * K * N`; Pool
/// output elements times window taps (GlobalAveragePool: input elements); Elementwise, Gather
/// and Other: output elements. Bytes are tensor bytes ([`F32_BYTES`] per float32 element):
/// `bytes_in` the activation inputs, `bytes_out` the outputs, `weight_bytes` the initializers
/// (weights, bias, gather indices).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NodeCostInput {
    /// The op and its shape parameters.
    pub kind: OpKind,
    /// Multiply-accumulates (see the type docs for non-MAC ops).
    pub macs: u64,
    /// Bytes of activation inputs read.
    pub bytes_in: u64,
    /// Bytes of outputs written.
    pub bytes_out: u64,
    /// Bytes of constant inputs (weights, bias, indices).
    pub weight_bytes: u64,
}

impl NodeCostInput {
    /// An elementwise op over `out_elems` float32 outputs with `n_inputs` full-size inputs
    /// (Add: 2, Relu: 1).
    pub fn elementwise(out_elems: u64, n_inputs: u64) -> Self {
        NodeCostInput {
            kind: OpKind::Elementwise,
            macs: out_elems,
            bytes_in: out_elems.saturating_mul(n_inputs).saturating_mul(F32_BYTES),
            bytes_out: out_elems.saturating_mul(F32_BYTES),
            weight_bytes: 0,
        }
    }

    /// A Gather along the channel axis: `in_elems` float32 inputs, `out_elems` outputs,
    /// `indices` int64 indices.
    pub fn gather(in_elems: u64, out_elems: u64, indices: u64) -> Self {
        NodeCostInput {
            kind: OpKind::Gather,
            macs: out_elems,
            bytes_in: in_elems.saturating_mul(F32_BYTES),
            bytes_out: out_elems.saturating_mul(F32_BYTES),
            weight_bytes: indices.saturating_mul(std::mem::size_of::<i64>() as u64),
        }
    }

    /// A Gemm / MatMul `[m, k] x [k, n]` with a constant `[k, n]` operand (and bias of `n`).
    pub fn matmul(m: u64, k: u64, n: u64, bias: bool) -> Self {
        let w = k.saturating_mul(n).saturating_add(if bias { n } else { 0 });
        NodeCostInput {
            kind: OpKind::MatMul,
            macs: m.saturating_mul(k).saturating_mul(n),
            bytes_in: m.saturating_mul(k).saturating_mul(F32_BYTES),
            bytes_out: m.saturating_mul(n).saturating_mul(F32_BYTES),
            weight_bytes: w.saturating_mul(F32_BYTES),
        }
    }
}

/// The geometry of one convolution, to build its [`NodeCostInput`] consistently.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConvShape {
    /// Batch size.
    pub batch: usize,
    /// Input channels (all groups).
    pub cin: usize,
    /// Output channels (all groups).
    pub cout: usize,
    /// The `group` attribute.
    pub groups: usize,
    /// Kernel spatial dims.
    pub kernel: Vec<usize>,
    /// Strides.
    pub stride: Vec<usize>,
    /// Input spatial dims.
    pub in_spatial: Vec<usize>,
    /// Output spatial dims.
    pub out_spatial: Vec<usize>,
    /// Whether the conv has a bias input.
    pub bias: bool,
}

impl ConvShape {
    /// A square 2-D conv on a square `hw x hw` input, batch 1, with bias and "same" padding
    /// (`k / 2`), so the output is `(hw - 1) / stride + 1` wide for odd `k`.
    pub fn new_2d(
        cin: usize,
        cout: usize,
        groups: usize,
        k: usize,
        stride: usize,
        hw: usize,
    ) -> Self {
        let s = stride.max(1);
        let out = (hw + 2 * (k / 2)).saturating_sub(k) / s + 1;
        ConvShape {
            batch: 1,
            cin,
            cout,
            groups,
            kernel: vec![k, k],
            stride: vec![stride, stride],
            in_spatial: vec![hw, hw],
            out_spatial: vec![out, out],
            bias: true,
        }
    }

    /// The cost-model description of this conv (float32 tensors).
    pub fn cost_input(&self) -> NodeCostInput {
        let g = self.groups.max(1);
        let (cin_pg, cout_pg) = (self.cin / g, self.cout / g);
        let prod = |v: &[usize]| v.iter().fold(1u64, |a, &d| a.saturating_mul(d as u64));
        let (taps, out_px, in_px) = (
            prod(&self.kernel),
            prod(&self.out_spatial),
            prod(&self.in_spatial),
        );
        let n = self.batch as u64;
        let macs = [n, self.cout as u64, out_px, cin_pg as u64, taps]
            .iter()
            .fold(1u64, |a, &d| a.saturating_mul(d));
        let weights = [self.cout as u64, cin_pg as u64, taps]
            .iter()
            .fold(1u64, |a, &d| a.saturating_mul(d))
            .saturating_add(if self.bias { self.cout as u64 } else { 0 });
        NodeCostInput {
            kind: OpKind::Conv {
                groups: g,
                cin_per_group: cin_pg,
                cout_per_group: cout_pg,
                kernel: self.kernel.clone(),
                stride: self.stride.clone(),
            },
            macs,
            bytes_in: [n, self.cin as u64, in_px, F32_BYTES]
                .iter()
                .fold(1u64, |a, &d| a.saturating_mul(d)),
            bytes_out: [n, self.cout as u64, out_px, F32_BYTES]
                .iter()
                .fold(1u64, |a, &d| a.saturating_mul(d)),
            weight_bytes: weights.saturating_mul(F32_BYTES),
        }
    }
}

/// Estimated single-thread latency in microseconds. Unit documented; non-negative, finite.
pub trait CostModel: Send + Sync + std::fmt::Debug {
    /// The latency of one node, in microseconds (non-negative, finite).
    fn node_cost(&self, n: &NodeCostInput) -> f64;

    /// The latency of running `nodes` one after the other: the sum of their costs.
    fn total_cost(&self, nodes: &[NodeCostInput]) -> f64 {
        nodes.iter().map(|n| self.node_cost(n)).sum()
    }

    /// The channel count granularity the runtime computes in (ORT's NCHWc block: 16 with
    /// AVX-512): a layer whose channels were a multiple of it should stay one, since the runtime
    /// pads a partial block and leaves its fast layout for an unaligned input. Channel removal
    /// keeps that many channels more where needed. `1` (the default) means no granularity.
    fn channel_block(&self) -> usize {
        1
    }
}

/// Pure-MAC baseline: cost proportional to MACs, blind to shape (for tests and comparison).
///
/// Its unit is nominally microseconds at [`MacCost::MACS_PER_US`]; only the ordering it
/// induces means anything. Among forms with equal MACs, fewer nodes and then fewer bytes win
/// (tie-break terms far below one MAC's worth), so an extractor using it never keeps a
/// needless node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MacCost;

impl MacCost {
    /// Nominal throughput, MACs per microsecond (50 GMAC/s: the dense-conv rate the committed
    /// calibration measured with AVX-512). It only scales the baseline's unit.
    pub const MACS_PER_US: f64 = 50_000.0;
    /// Tie-break per node, microseconds: 1/20000 of one nominal MAC (2e-5 us).
    pub const TIE_BREAK_PER_NODE_US: f64 = 1e-9;
    /// Tie-break per byte moved, microseconds: below the per-node one for any tensor under
    /// 1 GB.
    pub const TIE_BREAK_PER_BYTE_US: f64 = 1e-18;
}

impl CostModel for MacCost {
    fn node_cost(&self, n: &NodeCostInput) -> f64 {
        let bytes = n.bytes_in as f64 + n.bytes_out as f64 + n.weight_bytes as f64;
        n.macs as f64 / Self::MACS_PER_US
            + Self::TIE_BREAK_PER_NODE_US
            + bytes * Self::TIE_BREAK_PER_BYTE_US
    }
}

/// Errors loading a calibration table.
#[derive(Debug, Error)]
pub enum CostError {
    /// Not valid JSON, or not the table's layout.
    #[error("calibration table is not valid: {0}")]
    Json(#[from] serde_json::Error),
    /// The `format` field is not `ssc-cost-calibration`.
    #[error("not an ssc-cost calibration table (format {0:?})")]
    Format(String),
    /// A table layout this crate does not read.
    #[error("calibration table version {found} is not supported (expected {expected})")]
    Version {
        /// The version in the file.
        found: u32,
        /// The version this crate reads.
        expected: u32,
    },
    /// An op kind has no buckets.
    #[error("calibration table has no buckets for op kind {0:?}")]
    MissingKind(String),
    /// An op kind the crate does not know.
    #[error("unknown op kind {0:?} in calibration table")]
    UnknownKind(String),
    /// The last bucket of a kind must match every node of that kind.
    #[error(
        "the last bucket of kind {kind:?} ({bucket:?}) has a predicate; it must match everything"
    )]
    NoCatchAll {
        /// The op kind.
        kind: String,
        /// The offending bucket.
        bucket: String,
    },
    /// Shape predicates only apply to Conv buckets.
    #[error("bucket {bucket:?} of kind {kind:?} has a shape predicate; only conv buckets may")]
    PredicateOnNonConv {
        /// The op kind.
        kind: String,
        /// The offending bucket.
        bucket: String,
    },
    /// A coefficient is negative, NaN or infinite.
    #[error("bucket {bucket:?}: coefficient {name} = {value} must be finite and non-negative")]
    BadCoefficient {
        /// The bucket.
        bucket: String,
        /// The coefficient's name.
        name: &'static str,
        /// Its value.
        value: f64,
    },
    /// The NCHWc block size must be at least 1.
    #[error("nchwc_block must be at least 1")]
    ZeroBlock,
    /// A sample or decision node does not describe a node.
    #[error("{0}")]
    BadNode(String),
}

/// Which kernels a conv bucket applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KernelClass {
    /// Every kernel dim is 1.
    Pointwise,
    /// Some kernel dim exceeds 1.
    Spatial,
}

/// Conditions on a Conv's shape; an absent field always holds. Ranges are inclusive
/// `[min, max]`, a `null` end is unbounded.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Predicate {
    /// Range of the `group` attribute.
    #[serde(default)]
    pub groups: Option<[Option<usize>; 2]>,
    /// Range of input channels per group.
    #[serde(default)]
    pub cin_per_group: Option<[Option<usize>; 2]>,
    /// Range of output channels per group.
    #[serde(default)]
    pub cout_per_group: Option<[Option<usize>; 2]>,
    /// Pointwise or spatial kernels.
    #[serde(default)]
    pub kernel: Option<KernelClass>,
    /// Whether channels per group (in and out) are multiples of the table's `nchwc_block`.
    #[serde(default)]
    pub aligned: Option<bool>,
}

impl Predicate {
    /// Whether the predicate has no condition (matches every node of its kind).
    pub fn is_empty(&self) -> bool {
        *self == Predicate::default()
    }

    /// Whether a node satisfies the predicate, with the table's NCHWc block size.
    pub fn matches(&self, kind: &OpKind, nchwc_block: usize) -> bool {
        let OpKind::Conv {
            groups,
            cin_per_group,
            cout_per_group,
            kernel,
            ..
        } = kind
        else {
            return self.is_empty();
        };
        let in_range = |r: &Option<[Option<usize>; 2]>, v: usize| match r {
            None => true,
            Some([lo, hi]) => lo.is_none_or(|lo| v >= lo) && hi.is_none_or(|hi| v <= hi),
        };
        let pointwise = kernel.iter().all(|&k| k == 1);
        let block = nchwc_block.max(1);
        let aligned = cin_per_group % block == 0 && cout_per_group % block == 0;
        in_range(&self.groups, *groups)
            && in_range(&self.cin_per_group, *cin_per_group)
            && in_range(&self.cout_per_group, *cout_per_group)
            && self
                .kernel
                .is_none_or(|k| (k == KernelClass::Pointwise) == pointwise)
            && self.aligned.is_none_or(|a| a == aligned)
    }
}

/// The coefficients of one bucket (units in the field docs; all finite and non-negative).
#[derive(Clone, Copy, Debug, Default, PartialEq, Deserialize)]
pub struct Coefficients {
    /// Microseconds per node.
    pub overhead_us: f64,
    /// Microseconds per convolution group (Conv only).
    #[serde(default)]
    pub us_per_group: f64,
    /// Nanoseconds per MAC (the inverse of GMAC/s).
    pub ns_per_mac: f64,
    /// Nanoseconds per byte moved, `bytes_in + bytes_out + weight_bytes` (inverse of GB/s).
    pub ns_per_byte: f64,
    /// Nanoseconds per im2col patch element, `macs / cout_per_group` (Conv only).
    #[serde(default)]
    pub ns_per_patch: f64,
}

impl Coefficients {
    fn check(&self, bucket: &str) -> Result<(), CostError> {
        let named = [
            ("overhead_us", self.overhead_us),
            ("us_per_group", self.us_per_group),
            ("ns_per_mac", self.ns_per_mac),
            ("ns_per_byte", self.ns_per_byte),
            ("ns_per_patch", self.ns_per_patch),
        ];
        for (name, value) in named {
            if !(value.is_finite() && value >= 0.0) {
                return Err(CostError::BadCoefficient {
                    bucket: bucket.to_string(),
                    name,
                    value,
                });
            }
        }
        Ok(())
    }

    /// The latency of `n` under these coefficients, in microseconds.
    pub fn eval(&self, n: &NodeCostInput) -> f64 {
        let (groups, patch) = match &n.kind {
            OpKind::Conv {
                groups,
                cout_per_group,
                ..
            } => (
                *groups as f64,
                n.macs as f64 / (*cout_per_group).max(1) as f64,
            ),
            _ => (0.0, 0.0),
        };
        let bytes = n.bytes_in as f64 + n.bytes_out as f64 + n.weight_bytes as f64;
        let t = self.overhead_us
            + groups * self.us_per_group
            + (n.macs as f64 * self.ns_per_mac
                + bytes * self.ns_per_byte
                + patch * self.ns_per_patch)
                / NS_PER_US;
        // Non-negative terms: only overflow to infinity can go wrong; saturate it.
        if t.is_finite() {
            t.max(0.0)
        } else {
            f64::MAX
        }
    }
}

/// How well a bucket fitted its samples (relative error `|predicted - measured| / measured`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct FitStats {
    /// Samples the bucket was fitted on (0: coefficients copied from the previous bucket).
    pub samples: usize,
    /// Median relative error over those samples.
    pub median_rel_err: Option<f64>,
    /// Largest relative error.
    pub max_rel_err: Option<f64>,
}

/// One efficiency bucket: a predicate on the shape and the coefficients for matching nodes.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Bucket {
    /// Name, e.g. `conv_grouped_unaligned`.
    pub name: String,
    /// Which nodes of the kind this bucket applies to (first match wins).
    #[serde(default)]
    pub when: Predicate,
    /// The fitted coefficients.
    #[serde(flatten)]
    pub coefficients: Coefficients,
    /// Fit quality on the calibration samples.
    #[serde(default)]
    pub fit: FitStats,
}

/// One calibration measurement: a single-op model and its measured latency.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// Human-readable description, e.g. `conv c256->256 g4 k3 s1 hw14`.
    pub label: String,
    /// The node.
    pub input: NodeCostInput,
    /// Measured latency, microseconds.
    pub measured_us: f64,
}

/// One form of a layer in a [`Decision`].
#[derive(Clone, Debug, PartialEq)]
pub struct Alternative {
    /// E.g. `grouped4+pointwise+add`.
    pub name: String,
    /// Measured latency of the whole form, microseconds.
    pub measured_us: f64,
    /// Its nodes.
    pub nodes: Vec<NodeCostInput>,
}

/// Exactly-equivalent forms of one layer, each measured as a whole graph in ORT: the choices
/// the cost model must get right.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// Short name, e.g. `ssc_g4_c256_hw14`.
    pub name: String,
    /// What the layer is.
    pub description: String,
    /// The forms.
    pub alternatives: Vec<Alternative>,
}

impl Decision {
    /// The alternative that measured fastest.
    pub fn fastest_measured(&self) -> Option<&Alternative> {
        self.alternatives
            .iter()
            .min_by(|a, b| a.measured_us.total_cmp(&b.measured_us))
    }
}

/// Where and how the table was measured (the fields `scripts/calibrate_cost.py` records).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct Machine {
    /// CPU model from `/proc/cpuinfo`.
    #[serde(default)]
    pub cpu_model: String,
    /// SIMD extensions present.
    #[serde(default)]
    pub simd: Vec<String>,
    /// ONNX Runtime version.
    #[serde(default)]
    pub onnxruntime: String,
    /// Intra-op threads the table is for.
    #[serde(default)]
    pub threads: usize,
    /// Date of the measurement, if recorded.
    #[serde(default)]
    pub date: Option<String>,
}

/// A loaded, validated calibration table.
#[derive(Clone, Debug, PartialEq)]
pub struct Calibration {
    /// Where it was measured.
    pub machine: Machine,
    /// ORT's NCHWc block size on that machine (for [`Predicate::aligned`]).
    pub nchwc_block: usize,
    /// Buckets per op kind key (`conv`, `pool`, `elementwise`, `gather`, `matmul`, `other`).
    pub buckets: BTreeMap<String, Vec<Bucket>>,
    /// The single-op measurements the buckets were fitted on.
    pub samples: Vec<Sample>,
    /// Multi-node decisions measured as whole graphs.
    pub decisions: Vec<Decision>,
}

/// The calibrated latency model: [`CostModel`] over a [`Calibration`] table.
#[derive(Clone, Debug, PartialEq)]
pub struct CalibratedCost {
    table: Calibration,
}

impl Default for CalibratedCost {
    /// The committed table (`crates/ssc-cost/calibration.json`).
    fn default() -> Self {
        // The committed table is checked by this crate's tests; failing here is a build bug.
        Self::from_json(DEFAULT_TABLE).expect("the committed calibration.json is valid")
    }
}

impl CalibratedCost {
    /// The committed table, parsed once per process (`default()` parses it on every call;
    /// use this in hot paths).
    pub fn committed() -> &'static CalibratedCost {
        static COMMITTED: std::sync::OnceLock<CalibratedCost> = std::sync::OnceLock::new();
        COMMITTED.get_or_init(CalibratedCost::default)
    }

    /// Load a calibration table written by `scripts/calibrate_cost.py`.
    pub fn from_json(text: &str) -> Result<Self, CostError> {
        let raw: RawTable = serde_json::from_str(text)?;
        if raw.format != FORMAT {
            return Err(CostError::Format(raw.format));
        }
        if raw.version != FORMAT_VERSION {
            return Err(CostError::Version {
                found: raw.version,
                expected: FORMAT_VERSION,
            });
        }
        if raw.nchwc_block == 0 {
            return Err(CostError::ZeroBlock);
        }
        for kind in raw.buckets.keys() {
            if !KINDS.contains(&kind.as_str()) {
                return Err(CostError::UnknownKind(kind.clone()));
            }
        }
        for kind in KINDS {
            let buckets = raw
                .buckets
                .get(kind)
                .filter(|b| !b.is_empty())
                .ok_or_else(|| CostError::MissingKind(kind.to_string()))?;
            for b in buckets {
                b.coefficients.check(&b.name)?;
                if kind != "conv" && !b.when.is_empty() {
                    return Err(CostError::PredicateOnNonConv {
                        kind: kind.to_string(),
                        bucket: b.name.clone(),
                    });
                }
            }
            let last = &buckets[buckets.len() - 1];
            if !last.when.is_empty() {
                return Err(CostError::NoCatchAll {
                    kind: kind.to_string(),
                    bucket: last.name.clone(),
                });
            }
        }
        let samples = raw
            .samples
            .into_iter()
            .map(|s| {
                Ok(Sample {
                    label: s.node.label.clone().unwrap_or_default(),
                    measured_us: s.measured_us,
                    input: s.node.into_input()?,
                })
            })
            .collect::<Result<_, CostError>>()?;
        let decisions = raw
            .decisions
            .into_iter()
            .map(|d| {
                Ok(Decision {
                    name: d.name,
                    description: d.description,
                    alternatives: d
                        .alternatives
                        .into_iter()
                        .map(|a| {
                            Ok(Alternative {
                                name: a.name,
                                measured_us: a.measured_us,
                                nodes: a
                                    .nodes
                                    .into_iter()
                                    .map(RawNode::into_input)
                                    .collect::<Result<_, _>>()?,
                            })
                        })
                        .collect::<Result<_, CostError>>()?,
                })
            })
            .collect::<Result<_, CostError>>()?;
        Ok(CalibratedCost {
            table: Calibration {
                machine: raw.machine,
                nchwc_block: raw.nchwc_block,
                buckets: raw.buckets,
                samples,
                decisions,
            },
        })
    }

    /// The loaded table: machine, buckets, and the measurements behind them.
    pub fn calibration(&self) -> &Calibration {
        &self.table
    }

    /// The bucket whose coefficients price `n` (the first of its kind whose predicate holds).
    pub fn bucket_for(&self, n: &NodeCostInput) -> &Bucket {
        let buckets = &self.table.buckets[n.kind.key()];
        buckets
            .iter()
            .find(|b| b.when.matches(&n.kind, self.table.nchwc_block))
            // Validated at load: the last bucket of every kind matches everything.
            .unwrap_or(&buckets[buckets.len() - 1])
    }
}

impl CostModel for CalibratedCost {
    fn node_cost(&self, n: &NodeCostInput) -> f64 {
        self.bucket_for(n).coefficients.eval(n)
    }

    fn channel_block(&self) -> usize {
        self.table.nchwc_block.max(1)
    }
}

/// The file layout (private: the public types are validated views of it).
#[derive(Deserialize)]
struct RawTable {
    format: String,
    version: u32,
    nchwc_block: usize,
    #[serde(default)]
    machine: Machine,
    buckets: BTreeMap<String, Vec<Bucket>>,
    #[serde(default)]
    samples: Vec<RawSample>,
    #[serde(default)]
    decisions: Vec<RawDecision>,
}

#[derive(Deserialize)]
struct RawSample {
    #[serde(flatten)]
    node: RawNode,
    measured_us: f64,
}

#[derive(Deserialize)]
struct RawDecision {
    name: String,
    #[serde(default)]
    description: String,
    alternatives: Vec<RawAlternative>,
}

#[derive(Deserialize)]
struct RawAlternative {
    name: String,
    measured_us: f64,
    nodes: Vec<RawNode>,
}

#[derive(Deserialize)]
struct RawNode {
    kind: String,
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    groups: Option<usize>,
    #[serde(default)]
    cin_per_group: Option<usize>,
    #[serde(default)]
    cout_per_group: Option<usize>,
    #[serde(default)]
    kernel: Option<Vec<usize>>,
    #[serde(default)]
    stride: Option<Vec<usize>>,
    macs: u64,
    bytes_in: u64,
    bytes_out: u64,
    weight_bytes: u64,
}

impl RawNode {
    fn into_input(self) -> Result<NodeCostInput, CostError> {
        let kind = match self.kind.as_str() {
            "conv" => {
                let missing = |f: &str| {
                    CostError::BadNode(format!("conv node without {f}: {:?}", self.label))
                };
                OpKind::Conv {
                    groups: self.groups.ok_or_else(|| missing("groups"))?,
                    cin_per_group: self.cin_per_group.ok_or_else(|| missing("cin_per_group"))?,
                    cout_per_group: self
                        .cout_per_group
                        .ok_or_else(|| missing("cout_per_group"))?,
                    kernel: self.kernel.clone().ok_or_else(|| missing("kernel"))?,
                    stride: self.stride.clone().ok_or_else(|| missing("stride"))?,
                }
            }
            "pool" => OpKind::Pool,
            "elementwise" => OpKind::Elementwise,
            "gather" => OpKind::Gather,
            "matmul" => OpKind::MatMul,
            "other" => OpKind::Other,
            k => return Err(CostError::UnknownKind(k.to_string())),
        };
        Ok(NodeCostInput {
            kind,
            macs: self.macs,
            bytes_in: self.bytes_in,
            bytes_out: self.bytes_out,
            weight_bytes: self.weight_bytes,
        })
    }
}
