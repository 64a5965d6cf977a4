//! Static support checks: which ops of a model the executor cannot run, all found in one pass
//! so the error lists every one of them.

use ssc_ir::{AttrValue, DataType, Graph, Model, OpDesc};

use crate::error::{ExecError, Unsupported};
use crate::ops::lookup;
use crate::value::is_supported_dtype;

/// Why `desc` cannot run at `opset`, or `None` when it can. An empty reason means the op type
/// (or its domain) is unknown.
pub(crate) fn unsupported_reason(desc: &OpDesc, opset: i64) -> Option<String> {
    if !desc.is_onnx() {
        return Some(String::new());
    }
    let Some((_, min_opset)) = lookup(&desc.op_type) else {
        return Some(String::new());
    };
    if opset < min_opset {
        return Some(format!("opset {opset} < {min_opset}"));
    }
    let s = |name: &str| desc.get_string(name).ok().flatten();
    let i = |name: &str| desc.get_int(name).ok().flatten();
    let bad = |name: &str, v: &dyn std::fmt::Display| Some(format!("{name}={v}"));
    match desc.op_type.as_str() {
        "Conv" | "ConvTranspose" | "MaxPool" | "AveragePool" | "LpPool" => {
            if let Some(p) = s("auto_pad") {
                if !matches!(p.as_str(), "NOTSET" | "SAME_UPPER" | "SAME_LOWER" | "VALID") {
                    return bad("auto_pad", &p);
                }
            }
        }
        "BatchNormalization" => {
            if let Some(t @ 1..) = i("training_mode") {
                return bad("training_mode", &t);
            }
        }
        "Resize" | "Upsample" => {
            if let Some(m) = s("mode") {
                let legacy = desc.op_type == "Upsample" || opset < 11;
                let ok = matches!(m.as_str(), "nearest" | "linear")
                    || (m == "cubic" && !legacy)
                    || (m == "bilinear" && desc.op_type == "Upsample");
                if !ok {
                    return bad("mode", &m);
                }
            }
            if let Some(a @ 1..) = i("antialias") {
                return bad("antialias", &a);
            }
            if let Some(c) = s("coordinate_transformation_mode") {
                let ok = [
                    "half_pixel",
                    "half_pixel_symmetric",
                    "pytorch_half_pixel",
                    "align_corners",
                    "asymmetric",
                    "tf_half_pixel_for_nn",
                    "tf_crop_and_resize",
                ];
                if !ok.contains(&c.as_str()) {
                    return bad("coordinate_transformation_mode", &c);
                }
            }
            if let Some(n) = s("nearest_mode") {
                if !["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]
                    .contains(&n.as_str())
                {
                    return bad("nearest_mode", &n);
                }
            }
        }
        "Pad" => {
            if let Some(m) = s("mode") {
                if !["constant", "reflect", "edge", "wrap"].contains(&m.as_str()) {
                    return bad("mode", &m);
                }
            }
        }
        "Cast" => {
            if let Some(to) = i("to") {
                let dt = ssc_ir::DataType::from_code(to as i32);
                if !is_supported_dtype(dt) {
                    return bad("to", &dt);
                }
            }
        }
        "Gelu" => {
            if let Some(a) = s("approximate") {
                if a != "none" && a != "tanh" {
                    return bad("approximate", &a);
                }
            }
        }
        "Constant" => {
            for a in &desc.attrs {
                let ok = match a.name.as_str() {
                    "value" => match &a.value {
                        AttrValue::Tensor(t) => is_supported_dtype(t.dtype),
                        _ => false,
                    },
                    "value_float" | "value_floats" | "value_int" | "value_ints" => true,
                    _ => false,
                };
                if !ok {
                    return Some(format!("attribute {}", a.name));
                }
            }
        }
        "SequenceEmpty" => {
            if let Some(d) = i("dtype") {
                let dt = ssc_ir::DataType::from_code(d as i32);
                if !is_supported_dtype(dt) {
                    return bad("dtype", &dt);
                }
            }
        }
        _ => {}
    }
    None
}

/// Checks that every op of `model` can run, subgraphs included, listing all that cannot. An op
/// inside a subgraph is named by its path: `If#3/then_branch/Add#1`.
pub fn check_supported(model: &Model) -> Result<(), ExecError> {
    let mut bad = Vec::new();
    check_graph(&model.graph, model.onnx_opset(), "", &mut bad);
    if bad.is_empty() {
        Ok(())
    } else {
        Err(ExecError::Unsupported(bad))
    }
}

/// Checks one node (and the ops of its subgraphs) outside a graph, for single-node evaluation.
pub(crate) fn check_desc(desc: &OpDesc, opset: i64, label: &str, bad: &mut Vec<Unsupported>) {
    if let Some(reason) = unsupported_reason(desc, opset) {
        bad.push(Unsupported {
            node: label.to_string(),
            op_type: desc.op_type.clone(),
            domain: desc.domain.clone(),
            reason,
        });
    }
    for (attr, sub) in desc.subgraphs() {
        check_graph(sub, opset, &format!("{label}/{attr}/"), bad);
    }
}

fn check_graph(g: &Graph, opset: i64, prefix: &str, bad: &mut Vec<Unsupported>) {
    for op in g.op_ids() {
        let o = g.op(op);
        let desc = &o.desc;
        let label = format!("{prefix}{}", g.op_label(op));
        // Element types the executor cannot hold (strings, float8, sub-byte...), when the
        // graph declares them on the op's values.
        let bad_dtype = || {
            o.inputs()
                .iter()
                .chain(o.outputs())
                .flatten()
                .filter_map(|&v| g.value(v).ty.as_ref()?.tensor().map(|t| t.elem))
                .find(|&dt| !is_supported_dtype(dt) && dt != DataType::Unknown(0))
                .map(|dt| format!("{dt} tensors"))
        };
        if let Some(reason) = unsupported_reason(desc, opset).or_else(bad_dtype) {
            bad.push(Unsupported {
                node: label.clone(),
                op_type: desc.op_type.clone(),
                domain: desc.domain.clone(),
                reason,
            });
        }
        for (attr, sub) in desc.subgraphs() {
            check_graph(sub, opset, &format!("{label}/{attr}/"), bad);
        }
    }
}
