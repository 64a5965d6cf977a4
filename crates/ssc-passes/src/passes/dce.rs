//! Dead-code elimination: ops whose results cannot reach a graph output, initializers nothing
//! reads, and values nothing produces, reads or exports. Earlier folds leave all three behind.
//!
//! Liveness starts at the graph outputs and at every op outside the default ONNX domain (custom
//! ops may have side effects, so they are always kept together with what they read), and flows
//! back through inputs and subgraph captures. Only dead ops of the default domain are removed.
//! An initializer that is also a graph input is an overridable input from IR version 4 and is
//! kept; below IR version 4 every initializer is listed as an input and is a constant, so an
//! unused one is removed from both lists.

use std::collections::HashSet;

use ssc_ir::{Model, OpId, ValueId};

use crate::util::op_alive;
use crate::{PassError, PassOptions, PassReport};

pub(crate) fn run(m: &mut Model, _: &PassOptions, r: &mut PassReport) -> Result<(), PassError> {
    let g = &mut m.graph;
    let ops = g.op_ids();
    let mut live_ops: HashSet<OpId> = HashSet::new();
    let mut live_vals: HashSet<ValueId> = HashSet::new();
    let mut work: Vec<ValueId> = g.outputs().to_vec();
    let mark = |op: OpId, live_ops: &mut HashSet<OpId>, work: &mut Vec<ValueId>| {
        if live_ops.insert(op) {
            let o = g.op(op);
            work.extend(o.inputs().iter().flatten());
            work.extend(o.captures());
        }
    };
    for &op in &ops {
        if !g.op(op).desc.is_onnx() {
            mark(op, &mut live_ops, &mut work);
        }
    }
    while let Some(v) = work.pop() {
        if live_vals.insert(v) {
            if let Some((p, _)) = g.producer(v) {
                mark(p, &mut live_ops, &mut work);
            }
        }
    }
    for &op in &ops {
        if op_alive(g, op) && !live_ops.contains(&op) {
            g.remove_op(op);
            r.add("removed_dead_op", 1);
        }
    }
    for v in g.value_ids() {
        if g.producer(v).is_some() || g.is_used(v) {
            continue;
        }
        let is_init = g.initializer(v).is_some();
        let is_input = g.is_graph_input(v);
        if is_init && (!is_input || g.legacy_initializer_inputs) {
            g.remove_value(v);
            r.add("removed_unused_initializer", 1);
        } else if !is_init && !is_input {
            g.remove_value(v);
            r.add("removed_dangling_value", 1);
        }
    }
    Ok(())
}
