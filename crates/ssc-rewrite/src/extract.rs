//! Cost of e-nodes from a [`CostModel`], and a DAG-aware greedy extractor that counts a shared
//! sub-graph once.
//!
//! egg's tree extractor adds a child's cost once per use, so a value read by two consumers (every
//! residual block) is counted twice, and the error compounds with depth. Here the cost of a
//! choice is the cost of the *set* of e-classes it needs:
//!
//! 1. Every class starts unresolved. In passes over the classes (ascending id), each node whose
//!    children are all resolved is costed as `own cost + Σ over the union of the children's
//!    class sets` (a sorted list of `(class, cost of its chosen node)`), i.e. every class in the
//!    sub-DAG once. A node whose sub-DAG contains its own class (a cycle) is skipped.
//! 2. A class takes the cheapest node; a later pass replaces it only on a strict improvement,
//!    with original nodes tried first, so ties keep the original form. Passes repeat until
//!    nothing changes (the costs only decrease, so it terminates).
//!
//! Why greedy is good enough here: the rules add, per conv, one alternative whose new classes
//! (gathers, weight ops, branch convs) belong to that alternative alone, and whose remaining
//! children are the original input classes shared by every alternative. Union-of-sets costing
//! counts those shared inputs once whichever alternative is picked, so the local choice per conv
//! is exactly the choice that minimises the total. The one thing it cannot see is a new class
//! shared by the alternatives of two *different* convs (say, the same input gather), which it
//! charges to both; that can only make it keep an original where rewriting both would be a
//! little cheaper, never produce a worse graph than the original. Deterministic: passes,
//! nodes and ties are visited in a fixed order.

use std::collections::HashMap;

use egg::{EGraph, Id, Language};

use crate::analysis::{attrs_of, SscAnalysis};
use crate::cost::{CostModel, NodeCostInput, OpKind};
use crate::lang::SscNode;

/// Bytes per element: the rules only rewrite f32 convs.
const ELEM_BYTES: u64 = 4;

fn numel(s: &[usize]) -> u64 {
    s.iter().map(|&d| d as u64).product()
}

/// The cost-model input of a node, or `None` for nodes that cost nothing at run time (leaves,
/// opaque ops, which every alternative shares, and symbolic weight ops, folded into constants).
pub fn cost_input(egraph: &EGraph<SscNode, SscAnalysis>, node: &SscNode) -> Option<NodeCostInput> {
    let shape = |id: Id| egraph[id].data.shape.as_deref();
    match node {
        SscNode::Conv([a, x, w, _]) => {
            let attrs = attrs_of(egraph, *a)?;
            let (xs, ws) = (shape(*x)?, shape(*w)?);
            let out_sp = attrs.output_spatial(xs.get(2..)?)?;
            let (n, co, cig) = (xs[0] as u64, ws[0] as u64, ws[1] as u64);
            let taps = numel(&attrs.kernel);
            let pixels = numel(&out_sp);
            Some(NodeCostInput {
                kind: OpKind::Conv {
                    groups: attrs.group,
                    cin_per_group: ws[1],
                    cout_per_group: ws[0] / attrs.group.max(1),
                    kernel: attrs.kernel.clone(),
                    stride: attrs.strides.clone(),
                },
                macs: n * co * cig * taps * pixels,
                bytes_in: numel(xs) * ELEM_BYTES,
                bytes_out: n * co * pixels * ELEM_BYTES,
                weight_bytes: numel(ws) * ELEM_BYTES,
            })
        }
        SscNode::Add([l, _]) => {
            let e = numel(shape(*l)?);
            Some(NodeCostInput {
                kind: OpKind::Elementwise,
                macs: e,
                bytes_in: 2 * e * ELEM_BYTES,
                bytes_out: e * ELEM_BYTES,
                weight_bytes: 0,
            })
        }
        SscNode::Mul([l, _]) => {
            let e = numel(shape(*l)?);
            Some(NodeCostInput {
                kind: OpKind::Elementwise,
                macs: e,
                bytes_in: 2 * e * ELEM_BYTES,
                bytes_out: e * ELEM_BYTES,
                weight_bytes: 0,
            })
        }
        SscNode::AvgPool([a, x]) => {
            // A sum-pool: `k^2` additions per output element (the division is folded into the
            // consumer's weights); priced as MACs like the manifest's ideal does.
            let attrs = attrs_of(egraph, *a)?;
            let xs = shape(*x)?;
            let out_sp = attrs.output_spatial(xs.get(2..)?)?;
            let (n, c) = (xs[0] as u64, xs[1] as u64);
            let out = n * c * numel(&out_sp);
            Some(NodeCostInput {
                kind: OpKind::Pool,
                macs: out * numel(&attrs.kernel),
                bytes_in: numel(xs) * ELEM_BYTES,
                bytes_out: out * ELEM_BYTES,
                weight_bytes: 0,
            })
        }
        SscNode::Concat([l, r]) => {
            let e = numel(shape(*l)?) + numel(shape(*r)?);
            Some(NodeCostInput {
                kind: OpKind::Gather,
                macs: 0,
                bytes_in: e * ELEM_BYTES,
                bytes_out: e * ELEM_BYTES,
                weight_bytes: 0,
            })
        }
        SscNode::Gather { arg, idx } => {
            let s = shape(arg[0])?;
            let e = numel(s) / (s.get(1).copied().unwrap_or(1).max(1) as u64) * idx.len() as u64;
            Some(NodeCostInput {
                kind: OpKind::Gather,
                macs: 0,
                bytes_in: e * ELEM_BYTES,
                bytes_out: e * ELEM_BYTES,
                weight_bytes: idx.len() as u64 * 8,
            })
        }
        _ => None,
    }
}

/// The run-time cost of a node under `model` (0 for free nodes).
pub fn node_cost(
    egraph: &EGraph<SscNode, SscAnalysis>,
    model: &dyn CostModel,
    node: &SscNode,
) -> f64 {
    cost_input(egraph, node).map_or(0.0, |c| model.node_cost(&c))
}

/// A class set: `(class, cost of its chosen node)`, sorted by class.
type CostSet = Vec<(Id, f64)>;

fn merge_sets(a: &CostSet, b: &CostSet) -> CostSet {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].0.cmp(&b[j].0) {
            std::cmp::Ordering::Less => {
                out.push(a[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(b[j]);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

/// The extractor's result: a chosen node per class.
#[derive(Debug, Default)]
pub struct Extraction {
    /// Chosen node per canonical class (children canonical).
    pub choice: HashMap<Id, SscNode>,
    set: HashMap<Id, (f64, CostSet)>,
}

impl Extraction {
    /// The DAG cost of everything `roots` need, each class counted once.
    pub fn dag_cost(&self, roots: &[Id]) -> f64 {
        let mut all: CostSet = Vec::new();
        for r in roots {
            if let Some((_, s)) = self.set.get(r) {
                all = merge_sets(&all, s);
            }
        }
        all.iter().map(|(_, c)| c).sum()
    }
}

/// Runs the greedy DAG extraction. `preferred` nodes (the originals) are tried first in their
/// class, so an alternative must be strictly cheaper to replace them.
pub fn extract(
    egraph: &EGraph<SscNode, SscAnalysis>,
    model: &dyn CostModel,
    preferred: &[SscNode],
) -> Extraction {
    let mut classes: Vec<Id> = egraph.classes().map(|c| c.id).collect();
    classes.sort_unstable();
    let preferred: std::collections::HashSet<SscNode> = preferred
        .iter()
        .map(|n| n.clone().map_children(|c| egraph.find(c)))
        .collect();
    // Node lists in evaluation order, and their own costs, computed once.
    let nodes: HashMap<Id, Vec<(SscNode, f64)>> = classes
        .iter()
        .map(|&c| {
            let mut ns: Vec<(SscNode, f64)> = egraph[c]
                .nodes
                .iter()
                .map(|n| {
                    let n = n.clone().map_children(|x| egraph.find(x));
                    let cost = node_cost(egraph, model, &n);
                    (n, cost)
                })
                .collect();
            ns.sort_by_key(|(n, _)| !preferred.contains(n));
            (c, ns)
        })
        .collect();
    let mut out = Extraction::default();
    loop {
        let mut changed = false;
        for &c in &classes {
            for (n, own) in &nodes[&c] {
                let mut set: CostSet = vec![(c, *own)];
                let mut ok = true;
                for ch in n.children() {
                    match out.set.get(ch) {
                        Some((_, s)) if s.binary_search_by_key(&c, |e| e.0).is_err() => {
                            set = merge_sets(&set, s);
                        }
                        _ => {
                            ok = false;
                            break;
                        }
                    }
                }
                if !ok {
                    continue;
                }
                let total: f64 = set.iter().map(|(_, x)| x).sum();
                let better = match out.set.get(&c) {
                    None => true,
                    Some((best, _)) => total < best - 1e-9 * best.abs().max(1.0),
                };
                if better {
                    out.set.insert(c, (total, set));
                    out.choice.insert(c, n.clone());
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    out
}
