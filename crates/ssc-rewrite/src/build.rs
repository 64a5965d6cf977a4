//! Graph to e-graph: one e-class per IR value. Convs the rules understand become
//! [`SscNode::Conv`] nodes; every other op becomes an opaque node per output that keeps its
//! inputs, so the e-graph mirrors the whole dataflow and nothing it does not model is touched.

use std::collections::HashMap;

use egg::{EGraph, Id};
use ssc_ir::{AttrValue, Graph, OpId, ValueId};
use ssc_structure::AnalysisOptions;

use crate::analysis::{SscAnalysis, ValueEntry, WeightEntry};
use crate::lang::{ConvAttrs, SscNode};
use crate::RewriteError;

/// An original conv the e-graph models.
#[derive(Clone, Debug)]
pub(crate) struct ConvSite {
    pub op: OpId,
    pub out: ValueId,
    /// The original node (children canonical at build time).
    pub node: SscNode,
}

/// The e-graph of a graph plus the maps back to the IR.
pub(crate) struct Built {
    pub egraph: EGraph<SscNode, SscAnalysis>,
    pub value_class: HashMap<ValueId, Id>,
    pub sites: Vec<ConvSite>,
    pub roots: Vec<Id>,
}

fn static_shape(g: &Graph, v: ValueId) -> Option<Vec<usize>> {
    g.value(v).ty.as_ref()?.tensor()?.static_shape()
}

/// Normalised attributes of a Conv op whose weight has `kernel` spatial dims, or `None` when
/// the op has attributes or padding modes the rules do not model.
pub(crate) fn conv_attrs(g: &Graph, op: OpId, kernel: &[usize]) -> Option<ConvAttrs> {
    let d = &g.op(op).desc;
    let n = kernel.len();
    for a in &d.attrs {
        if !matches!(
            a.name.as_str(),
            "auto_pad" | "dilations" | "group" | "kernel_shape" | "pads" | "strides"
        ) {
            return None;
        }
    }
    let auto_pad = d.get_string("auto_pad").ok()?.unwrap_or_default();
    let ints = |name: &str, default: usize, len: usize| -> Option<Vec<usize>> {
        match d.attr(name).map(|a| &a.value) {
            None => Some(vec![default; len]),
            Some(AttrValue::Ints(v)) if v.len() == len => {
                v.iter().map(|&x| usize::try_from(x).ok()).collect()
            }
            _ => None,
        }
    };
    if let Some(k) = d.get_ints("kernel_shape").ok()? {
        if k.len() != n || k.iter().zip(kernel).any(|(&a, &b)| a as usize != b) {
            return None;
        }
    }
    let pads = match auto_pad.as_str() {
        "" | "NOTSET" => ints("pads", 0, 2 * n)?,
        "VALID" => vec![0; 2 * n],
        _ => return None,
    };
    let group = usize::try_from(d.get_int("group").ok()?.unwrap_or(1)).ok()?;
    let strides = ints("strides", 1, n)?;
    let dilations = ints("dilations", 1, n)?;
    if group == 0 || strides.contains(&0) || dilations.contains(&0) || kernel.contains(&0) {
        return None;
    }
    Some(ConvAttrs {
        group,
        kernel: kernel.to_vec(),
        strides,
        dilations,
        pads_begin: pads[..n].to_vec(),
        pads_end: pads[n..].to_vec(),
    })
}

/// Builds the e-graph of `g`.
pub(crate) fn build(
    g: &Graph,
    options: AnalysisOptions,
    opset: i64,
    disabled: &[(String, String)],
) -> Result<Built, RewriteError> {
    let mut egraph = EGraph::new(SscAnalysis {
        options,
        opset,
        ..SscAnalysis::default()
    });
    let mut value_class: HashMap<ValueId, Id> = HashMap::new();
    let mut sites = Vec::new();

    // Leaves for everything not produced by an op: graph inputs and initializers.
    let leaf = |egraph: &mut EGraph<SscNode, SscAnalysis>, v: ValueId| -> Id {
        if let Some(t) = g.constant(v) {
            let idx = egraph.analysis.weights.len() as u32;
            egraph.analysis.weights.push(WeightEntry::new(v, t.clone()));
            egraph.add(SscNode::Weight(idx))
        } else {
            let idx = egraph.analysis.values.len() as u32;
            egraph.analysis.values.push(ValueEntry {
                id: v,
                shape: static_shape(g, v),
            });
            egraph.add(SscNode::Input(idx))
        }
    };
    let class_of = |egraph: &mut EGraph<SscNode, SscAnalysis>,
                    value_class: &mut HashMap<ValueId, Id>,
                    v: ValueId|
     -> Id { *value_class.entry(v).or_insert_with(|| leaf(egraph, v)) };

    for op in g.topo_order()? {
        let o = g.op(op);
        let args: Vec<Id> = o
            .inputs()
            .iter()
            .flatten()
            .chain(o.captures())
            .map(|&v| class_of(&mut egraph, &mut value_class, v))
            .collect();
        if let Some((node, out)) = conv_node(g, op, &mut egraph, &value_class) {
            let id = egraph.add(node.clone());
            value_class.insert(out, id);
            egraph.analysis.composable.push(id);
            sites.push(ConvSite { op, out, node });
            continue;
        }
        for v in o.outputs().iter().flatten() {
            let idx = egraph.analysis.values.len() as u32;
            egraph.analysis.values.push(ValueEntry {
                id: *v,
                shape: static_shape(g, *v),
            });
            let id = egraph.add(SscNode::Opaque {
                value: idx,
                args: args.clone(),
            });
            value_class.insert(*v, id);
        }
    }
    let roots = g
        .outputs()
        .iter()
        .map(|&v| class_of(&mut egraph, &mut value_class, v))
        .collect();
    for site in &sites {
        let label = g.op_label(site.op);
        for (node, rule) in disabled {
            if *node == label {
                let class = value_class[&site.out];
                egraph.analysis.disabled.push((class, rule.clone()));
            }
        }
    }
    egraph.rebuild();
    Ok(Built {
        egraph,
        value_class,
        sites,
        roots,
    })
}

/// The Conv node for `op`, when it is a Conv the rules model: default domain, one output, a
/// constant weight of rank >= 3 (and a constant bias if any), no subgraph captures, and
/// attributes [`conv_attrs`] accepts. Its inputs already have classes (topological order).
fn conv_node(
    g: &Graph,
    op: OpId,
    egraph: &mut EGraph<SscNode, SscAnalysis>,
    value_class: &HashMap<ValueId, Id>,
) -> Option<(SscNode, ValueId)> {
    let o = g.op(op);
    if o.desc.op_type != "Conv" || !o.desc.is_onnx() || !o.captures().is_empty() {
        return None;
    }
    if o.outputs().len() != 1 || o.inputs().len() > 3 {
        return None;
    }
    let out = o.output(0)?;
    let (x, w) = (o.input(0)?, o.input(1)?);
    let wt = g.constant(w)?;
    if wt.dims.len() < 3 {
        return None;
    }
    let b = match o.input(2) {
        Some(b) => {
            g.constant(b)?;
            Some(value_class[&b])
        }
        None => None,
    };
    let attrs = conv_attrs(g, op, &wt.dims[2..])?;
    let a = egraph.add(SscNode::ConvAttrs(Box::new(attrs)));
    let b = b.unwrap_or_else(|| egraph.add(SscNode::NoBias));
    Some((SscNode::Conv([a, value_class[&x], value_class[&w], b]), out))
}
