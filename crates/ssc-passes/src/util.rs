//! Graph-editing helpers shared by the passes, so each pass states its pattern and guard, not the
//! bookkeeping (legacy initializer inputs, stale ids, type annotations) every rewrite must repeat.

use ssc_ir::{
    DataType, Dim, Graph, Node, OpId, Tensor, TensorData, TensorType, Use, ValueId, ValueType,
};

/// True while `op` still names a live op. Passes snapshot `op_ids()` and then edit the graph;
/// petgraph's stable graph reuses freed indices for new nodes, so a stale id may now be a value.
pub(crate) fn op_alive(g: &Graph, op: OpId) -> bool {
    matches!(g.petgraph().node_weight(op.0), Some(Node::Op(_)))
}

/// True when `op` is alive, of the default ONNX domain, and has type `op_type`.
pub(crate) fn is_onnx_op(g: &Graph, op: OpId, op_type: &str) -> bool {
    op_alive(g, op) && {
        let d = &g.op(op).desc;
        d.is_onnx() && d.op_type == op_type
    }
}

/// True when `v` is used only by input slots of `op` (so changing `v` affects nobody else).
pub(crate) fn used_only_by(g: &Graph, v: ValueId, op: OpId) -> bool {
    !g.is_graph_output(v)
        && !g.is_captured(v)
        && g.consumers(v)
            .iter()
            .all(|&(o, u)| o == op && matches!(u, Use::Input(_)))
}

/// The type describing a constant tensor exactly.
pub(crate) fn tensor_type(t: &Tensor) -> TensorType {
    TensorType {
        elem: t.dtype,
        shape: Some(t.dims.iter().map(|&d| Dim::Known(d)).collect()),
    }
}

/// Makes `v` (which must have no producer) an initializer holding `t`. Its type becomes the
/// tensor's exact type. Below IR version 4 every initializer must also be a graph input, so the
/// value is appended to the inputs there.
pub(crate) fn make_initializer(g: &mut Graph, v: ValueId, t: Tensor) {
    g.value_mut(v).ty = Some(ValueType::Tensor(tensor_type(&t)));
    g.set_initializer(v, t);
    if g.legacy_initializer_inputs && !g.is_graph_input(v) {
        let mut inputs = g.inputs().to_vec();
        inputs.push(v);
        g.set_inputs(inputs);
    }
}

/// Adds a new initializer value named after `base`.
pub(crate) fn new_initializer(g: &mut Graph, base: &str, t: Tensor) -> ValueId {
    let v = g.add_fresh_value(base, None);
    make_initializer(g, v, t);
    v
}

/// Replaces single-output `op` by the constant `t` stored under its output value, so the value
/// keeps its name (graph outputs and subgraph captures refer to it by name).
pub(crate) fn replace_with_constant(g: &mut Graph, op: OpId, out: ValueId, t: Tensor) {
    g.remove_op(op);
    make_initializer(g, out, t);
}

/// Removes `v` if nothing produces, reads or exports it and it is not an initializer.
pub(crate) fn remove_if_dangling(g: &mut Graph, v: ValueId) -> bool {
    if g.producer(v).is_some() || g.is_used(v) || g.is_graph_input(v) || g.initializer(v).is_some()
    {
        return false;
    }
    g.remove_value(v);
    true
}

/// Whether folding `op` into a constant of `out_bytes` bytes is allowed: either the result is
/// within the size limit, or it is no larger than the constant inputs that only `op` reads (which
/// then disappear), so the model cannot grow.
pub(crate) fn fold_fits(g: &Graph, op: OpId, out_bytes: usize, limit: usize) -> bool {
    if out_bytes <= limit {
        return true;
    }
    let freed: usize = g
        .op(op)
        .inputs()
        .iter()
        .flatten()
        .filter(|&&v| used_only_by(g, v, op) && !g.is_graph_input(v))
        .filter_map(|&v| g.initializer(v))
        .map(Tensor::byte_len)
        .sum();
    out_bytes <= freed
}

/// The element width in bytes of types whose elements are whole bytes (sub-byte, string and
/// unknown types have none), for data-movement folding that copies elements as byte strings.
pub(crate) fn elem_bytes(dt: DataType) -> Option<usize> {
    let bits = dt.bit_width()?;
    (bits % 8 == 0).then_some(bits / 8)
}

/// The raw payload of a tensor whose elements are whole bytes.
pub(crate) fn raw_elems(t: &Tensor) -> Option<(&[u8], usize)> {
    let w = elem_bytes(t.dtype)?;
    match &t.data {
        TensorData::Raw(b) => Some((b.as_ref(), w)),
        _ => None,
    }
}

/// An integer tensor of `dtype` (int32 or int64, or any integer type whose range holds the
/// values) from i64 values; `None` when a value does not fit.
pub(crate) fn int_tensor(dtype: DataType, dims: Vec<usize>, vals: &[i64]) -> Option<Tensor> {
    let mut raw = Vec::with_capacity(dtype.storage_bytes(vals.len())?);
    for &v in vals {
        match dtype {
            DataType::Int64 => raw.extend_from_slice(&v.to_le_bytes()),
            DataType::Int32 => raw.extend_from_slice(&i32::try_from(v).ok()?.to_le_bytes()),
            DataType::Int16 => raw.extend_from_slice(&i16::try_from(v).ok()?.to_le_bytes()),
            DataType::Int8 => raw.extend_from_slice(&i8::try_from(v).ok()?.to_le_bytes()),
            DataType::Uint8 => raw.extend_from_slice(&u8::try_from(v).ok()?.to_le_bytes()),
            DataType::Uint16 => raw.extend_from_slice(&u16::try_from(v).ok()?.to_le_bytes()),
            DataType::Uint32 => raw.extend_from_slice(&u32::try_from(v).ok()?.to_le_bytes()),
            DataType::Uint64 => raw.extend_from_slice(&u64::try_from(v).ok()?.to_le_bytes()),
            DataType::Bool => raw.push(u8::from(v != 0)),
            _ => return None,
        }
    }
    Tensor::from_raw(dtype, dims, bytes::Bytes::from(raw)).ok()
}

/// A raw tensor from bytes already in the packed layout.
pub(crate) fn raw_tensor(dtype: DataType, dims: Vec<usize>, raw: Vec<u8>) -> Option<Tensor> {
    Tensor::from_raw(dtype, dims, bytes::Bytes::from(raw)).ok()
}

/// Normalises a possibly negative axis against `rank`.
pub(crate) fn norm_axis(axis: i64, rank: usize) -> Option<usize> {
    let r = i64::try_from(rank).ok()?;
    let a = if axis < 0 { axis + r } else { axis };
    (0..r).contains(&a).then_some(a as usize)
}

/// Formats a shape for messages: `[1,3,N,?]`.
pub(crate) fn fmt_dims(dims: &[Dim]) -> String {
    let parts: Vec<String> = dims
        .iter()
        .map(|d| match d {
            Dim::Known(n) => n.to_string(),
            Dim::Param(p) => p.clone(),
            Dim::Unknown => "?".to_string(),
        })
        .collect();
    format!("[{}]", parts.join(","))
}

/// Formats a value type for messages: `float[1,3,N,?]`.
pub(crate) fn fmt_type(t: &TensorType) -> String {
    match &t.shape {
        Some(s) => format!("{}{}", t.elem, fmt_dims(s)),
        None => format!("{}[*]", t.elem),
    }
}
