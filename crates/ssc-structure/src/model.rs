//! Whole models: find every Conv, Gemm and MatMul with a constant weight and analyse it.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use ssc_ir::{Graph, Model, OpId};

use crate::{
    analyze_conv_weight, analyze_matrix, analyze_matrix_transposed, AnalysisOptions, ConvStructure,
    MatrixStructure, StructureError,
};

/// The analysis of one node.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind")]
pub enum NodeStructure {
    /// A Conv's weight.
    Conv(Box<ConvStructure>),
    /// The constant `B` of a Gemm or MatMul.
    Matrix(Box<MatrixStructure>),
}

impl fmt::Display for NodeStructure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeStructure::Conv(c) => c.fmt(f),
            NodeStructure::Matrix(m) => m.fmt(f),
        }
    }
}

/// The analysis of every eligible node, keyed by node label (the node name, or `op_type#index`
/// when unnamed; a repeated name gets `#index` appended), in a `BTreeMap` so reports are
/// deterministic.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ModelStructure {
    /// Analysed nodes by label.
    pub nodes: BTreeMap<String, NodeStructure>,
    /// Conv, Gemm and MatMul nodes that were not analysed, with the reason (a weight that is
    /// not constant, an integer weight, a batched MatMul operand).
    pub skipped: BTreeMap<String, String>,
}

/// One line per node: `label: summary`.
impl fmt::Display for ModelStructure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (label, s) in &self.nodes {
            writeln!(f, "{label}: {s}")?;
        }
        for (label, why) in &self.skipped {
            writeln!(f, "{label}: skipped ({why})")?;
        }
        Ok(())
    }
}

/// The result of looking at one op.
enum Outcome {
    /// Not a Conv, Gemm or MatMul.
    NotApplicable,
    Skipped(String),
    Done(NodeStructure),
}

/// Analyses every Conv (any group and kernel rank), Gemm and MatMul of the main graph whose
/// weight is a constant ([`Graph::constant`]: an initializer a caller cannot override).
///
/// A malformed weight of an eligible node (a Conv whose `group` does not divide its outputs,
/// say) is an error naming the node; a weight that is not constant or not floating point only
/// lands in [`ModelStructure::skipped`].
pub fn analyze_model(
    model: &Model,
    opts: &AnalysisOptions,
) -> Result<ModelStructure, StructureError> {
    opts.validate()?;
    let g = &model.graph;
    let mut out = ModelStructure::default();
    for op in g.op_ids() {
        let mut label = g.op_label(op);
        if out.nodes.contains_key(&label) || out.skipped.contains_key(&label) {
            label = format!("{label}#{}", op.0.index());
        }
        match outcome(g, op, opts).map_err(|e| StructureError::Node {
            node: label.clone(),
            source: Box::new(e),
        })? {
            Outcome::NotApplicable => {}
            Outcome::Skipped(why) => {
                out.skipped.insert(label, why);
            }
            Outcome::Done(s) => {
                out.nodes.insert(label, s);
            }
        }
    }
    Ok(out)
}

/// Analyses one op: `Ok(None)` when it is not a Conv/Gemm/MatMul of the default domain or its
/// weight is not a constant floating-point tensor of the expected rank.
pub fn analyze_op(
    graph: &Graph,
    op: OpId,
    opts: &AnalysisOptions,
) -> Result<Option<NodeStructure>, StructureError> {
    opts.validate()?;
    Ok(match outcome(graph, op, opts)? {
        Outcome::Done(s) => Some(s),
        Outcome::NotApplicable | Outcome::Skipped(_) => None,
    })
}

fn outcome(g: &Graph, op: OpId, opts: &AnalysisOptions) -> Result<Outcome, StructureError> {
    let o = g.op(op);
    let d = &o.desc;
    if !d.is_onnx() || !matches!(d.op_type.as_str(), "Conv" | "Gemm" | "MatMul") {
        return Ok(Outcome::NotApplicable);
    }
    let Some(wv) = o.input(1) else {
        return Ok(Outcome::Skipped("no weight input".into()));
    };
    let Some(w) = g.constant(wv) else {
        return Ok(Outcome::Skipped(format!(
            "weight `{}` is not a constant",
            g.value(wv).name
        )));
    };
    if !w.dtype.is_float() {
        return Ok(Outcome::Skipped(format!(
            "weight has element type {}",
            w.dtype
        )));
    }
    let s = match d.op_type.as_str() {
        "Conv" => {
            let group = d.get_int("group")?.unwrap_or(1);
            let group = usize::try_from(group).map_err(|_| StructureError::Group {
                group: 0,
                outputs: w.dims.first().copied().unwrap_or(0),
            })?;
            NodeStructure::Conv(Box::new(analyze_conv_weight(w, group, opts)?))
        }
        "Gemm" => {
            if w.dims.len() != 2 {
                return Err(StructureError::MatrixRank(w.dims.clone()));
            }
            if d.get_int("transB")?.unwrap_or(0) != 0 {
                NodeStructure::Matrix(Box::new(analyze_matrix_transposed(w, opts)?))
            } else {
                NodeStructure::Matrix(Box::new(analyze_matrix(w, opts)?))
            }
        }
        _ => {
            if w.dims.len() != 2 {
                return Ok(Outcome::Skipped(format!(
                    "MatMul weight has dims {:?}; only 2-D weights are analysed",
                    w.dims
                )));
            }
            NodeStructure::Matrix(Box::new(analyze_matrix(w, opts)?))
        }
    };
    Ok(Outcome::Done(s))
}
