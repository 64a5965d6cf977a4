//! The cost model the extractor prices nodes with: the ORT-calibrated model of `ssc-cost`,
//! re-exported so rule and extractor code (and users replacing it) name one module.

pub use ssc_cost::{CalibratedCost, CostModel, MacCost, NodeCostInput, OpKind};
