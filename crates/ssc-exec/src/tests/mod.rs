//! Unit tests per op family, each through a one-node graph built with the IR API and run by
//! the [`Executor`](crate::Executor); expected values are computed by hand in the comments.

mod control;
mod conv;
mod einsum;
mod elementwise;
mod executor;
mod index;
mod misc;
mod norm;
mod optional;
mod pool;
mod quant;
mod reduce;
mod resize;
mod rnn;
mod select;
mod shape;

use ssc_ir::{
    Attribute, DataType, Dim, Graph, Model, OpDesc, OpsetImport, Tensor, TensorType, ValueType,
};

use crate::{ExecError, Executor};

pub(crate) fn f(dims: &[usize], v: &[f32]) -> Tensor {
    Tensor::from_f32(dims.to_vec(), v)
}

pub(crate) fn i(dims: &[usize], v: &[i64]) -> Tensor {
    Tensor::from_i64(dims.to_vec(), v)
}

/// A tensor of any numeric type from f64 values.
pub(crate) fn t(dt: DataType, dims: &[usize], v: &[f64]) -> Tensor {
    Tensor::from_f64_as(dt, dims.to_vec(), v).expect("numeric type")
}

/// A model with one `op` node whose present inputs are graph inputs `in<k>` (typed as the
/// given tensors) and whose `n_out` outputs are graph outputs `out<k>`.
pub(crate) fn one_node(
    op: &str,
    opset: i64,
    attrs: Vec<Attribute>,
    ins: &[Option<&Tensor>],
    n_out: usize,
) -> Model {
    let mut g = Graph::new("test");
    let mut inputs = Vec::new();
    let mut graph_inputs = Vec::new();
    for (k, tensor) in ins.iter().enumerate() {
        inputs.push(tensor.map(|t| {
            let ty = ValueType::Tensor(TensorType {
                elem: t.dtype,
                shape: Some(t.dims.iter().map(|&d| Dim::Known(d)).collect()),
            });
            let v = g.add_value(format!("in{k}"), Some(ty)).unwrap();
            graph_inputs.push(v);
            v
        }));
    }
    let outputs: Vec<_> = (0..n_out)
        .map(|k| g.add_value(format!("out{k}"), None).unwrap())
        .collect();
    let mut desc = OpDesc::new(op).with_name("n");
    desc.attrs = attrs;
    g.add_op(desc, inputs, outputs.iter().map(|&v| Some(v)).collect())
        .unwrap();
    g.set_inputs(graph_inputs);
    g.set_outputs(outputs);
    Model {
        ir_version: 8,
        opset_imports: vec![OpsetImport {
            domain: String::new(),
            version: opset,
        }],
        graph: g,
        ..Model::default()
    }
}

/// Runs one `op` node on `ins` (`None` = empty slot) and returns its `n_out` outputs.
pub(crate) fn run(
    op: &str,
    opset: i64,
    attrs: Vec<Attribute>,
    ins: &[Option<&Tensor>],
    n_out: usize,
) -> Result<Vec<Tensor>, ExecError> {
    let m = one_node(op, opset, attrs, ins, n_out);
    let feeds: Vec<(String, Tensor)> = ins
        .iter()
        .enumerate()
        .filter_map(|(k, t)| t.map(|t| (format!("in{k}"), t.clone())))
        .collect();
    let outs = Executor::new(&m)?.run(&feeds)?;
    // The single-node evaluator used for constant folding must agree.
    let direct = crate::eval_node(&m.graph.op(m.graph.op_ids()[0]).desc, opset, ins, n_out)?;
    for ((_, a), b) in outs.iter().zip(&direct) {
        assert_eq!(a, b, "eval_node disagrees with the executor");
    }
    Ok(outs.into_iter().map(|(_, t)| t).collect())
}

/// Asserts that `got` has `want`'s type and dims and values within 1e-6 (relative to the
/// larger magnitude, or absolute near zero). NaNs must match NaNs.
pub(crate) fn assert_close(got: &Tensor, want: &Tensor) {
    assert_eq!(got.dtype, want.dtype, "dtype");
    assert_eq!(got.dims, want.dims, "dims");
    let (g, w) = (got.to_f64_vec().unwrap(), want.to_f64_vec().unwrap());
    for (k, (&a, &b)) in g.iter().zip(&w).enumerate() {
        let ok = (a.is_nan() && b.is_nan())
            || a == b
            || (a - b).abs() <= 1e-6 * a.abs().max(b.abs()).max(1.0);
        assert!(ok, "element {k}: got {a}, want {b}\n got {g:?}\nwant {w:?}");
    }
}

/// Runs one node and compares every output.
pub(crate) fn check(
    op: &str,
    opset: i64,
    attrs: Vec<Attribute>,
    ins: &[Option<&Tensor>],
    want: &[Tensor],
) {
    let got = run(op, opset, attrs, ins, want.len()).unwrap_or_else(|e| panic!("{op} failed: {e}"));
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert_close(g, w);
    }
}

/// Runs one node and returns the error message, panicking if it succeeds.
pub(crate) fn fails(
    op: &str,
    opset: i64,
    attrs: Vec<Attribute>,
    ins: &[Option<&Tensor>],
) -> String {
    match run(op, opset, attrs, ins, 1) {
        Ok(v) => panic!("{op} unexpectedly succeeded: {v:?}"),
        Err(e) => e.to_string(),
    }
}

pub(crate) use ssc_ir::Attribute as A;
