//! Per-op type and shape rules for the CNN inference op set: the dispatch table here, the rules
//! in one file per op family.
//!
//! A rule sees the op's attributes, its input types and the constant values of its inputs where
//! known, and returns one optional type per output. `None` for an output means "not inferable
//! here" (the value keeps whatever type it had); `Err` means the inputs are impossible for the op
//! (channels that do not match, shapes that do not broadcast) and names what is wrong.

use ssc_ir::{DataType, Dim, TensorType};

use crate::args::OpView;
use crate::const_eval::constant_value;

mod detect;
mod generate;
mod layout;
mod math;
mod nn;
mod quant;
mod recurrent;

use detect::{einsum, gather_nd, grid_sample, non_max_suppression, one_hot, top_k};
pub(crate) use generate::shape_range;
use generate::{constant_of_shape, range, shape_op};
use layout::{
    concat, expand, flatten, gather, pad, reshape, resize, slice, split, squeeze, tile, transpose,
    unsqueeze,
};
use math::{argmax, elementwise, gemm, matmul, reduce, variadic, where_};
use nn::{batch_norm, conv, depth_space, dropout, global_pool, pool};
use quant::{dequantize, dynamic_quantize, integer, qlinear, quantize};
use recurrent::recurrent;

/// What a rule sees.
pub(crate) struct Cx<'a> {
    pub view: OpView<'a>,
    /// Per input slot, the value's tensor type when it has one.
    pub types: Vec<Option<TensorType>>,
    pub n_outputs: usize,
}

pub(crate) type Out = Result<Vec<Option<TensorType>>, String>;

impl Cx<'_> {
    fn ty(&self, slot: usize) -> Option<&TensorType> {
        self.types.get(slot)?.as_ref()
    }
    fn elem(&self, slot: usize) -> Option<DataType> {
        self.ty(slot).map(|t| t.elem)
    }
    fn shape(&self, slot: usize) -> Option<&[Dim]> {
        self.ty(slot)?.shape.as_deref()
    }
    fn same(&self, slot: usize) -> Option<TensorType> {
        self.ty(slot).cloned()
    }
    fn opset(&self) -> i64 {
        self.view.opset
    }
    fn op_type(&self) -> &str {
        &self.view.desc.op_type
    }
}

fn tt(elem: DataType, shape: Vec<Dim>) -> Option<TensorType> {
    Some(TensorType {
        elem,
        shape: Some(shape),
    })
}

fn rank_only(elem: DataType) -> Option<TensorType> {
    Some(TensorType { elem, shape: None })
}

fn one(t: Option<TensorType>) -> Out {
    Ok(vec![t])
}

/// Same type as input 0 with the given shape (or unknown rank), if input 0 has a type.
fn like0(cx: &Cx<'_>, shape: Option<Vec<Dim>>) -> Out {
    one(cx.elem(0).map(|elem| TensorType { elem, shape }))
}

/// The rule for `cx`'s op, or `None` when this module has none (the op's outputs stay as they
/// are). Only called for ops of the default ONNX domain.
pub(crate) fn infer(cx: &Cx<'_>) -> Option<Out> {
    Some(match cx.op_type() {
        "Relu"
        | "LeakyRelu"
        | "Sigmoid"
        | "HardSigmoid"
        | "HardSwish"
        | "Tanh"
        | "Elu"
        | "Selu"
        | "Celu"
        | "Softplus"
        | "Softsign"
        | "Mish"
        | "Gelu"
        | "ThresholdedRelu"
        | "Clip"
        | "Abs"
        | "Neg"
        | "Exp"
        | "Log"
        | "Sqrt"
        | "Reciprocal"
        | "Floor"
        | "Ceil"
        | "Round"
        | "Sign"
        | "Sin"
        | "Cos"
        | "Tan"
        | "Asin"
        | "Acos"
        | "Atan"
        | "Sinh"
        | "Cosh"
        | "Asinh"
        | "Acosh"
        | "Atanh"
        | "Erf"
        | "Identity"
        | "Softmax"
        | "LogSoftmax"
        | "Hardmax"
        | "LRN"
        | "InstanceNormalization"
        | "LpNormalization"
        | "MeanVarianceNormalization"
        | "Shrink"
        | "BitwiseNot"
        | "PRelu"
        | "Trilu"
        | "CumSum"
        | "ScatterND"
        | "ScatterElements"
        | "Scatter"
        | "ReverseSequence"
        | "LayerNormalization"
        | "GroupNormalization"
        | "Swish" => {
            // Extra outputs (LayerNormalization's mean/inv-std) are left untyped.
            one(cx.same(0))
        }
        "Not" | "IsNaN" | "IsInf" => bool_like(cx, 0),
        "Dropout" => dropout(cx),
        "BatchNormalization" => batch_norm(cx),
        "Add" | "Sub" | "Mul" | "Div" | "Pow" | "Mod" | "BitShift" | "BitwiseAnd" | "BitwiseOr"
        | "BitwiseXor" => elementwise(cx, None),
        "And" | "Or" | "Xor" | "Equal" | "Less" | "Greater" | "LessOrEqual" | "GreaterOrEqual" => {
            elementwise(cx, Some(DataType::Bool))
        }
        "Sum" | "Max" | "Min" | "Mean" => variadic(cx),
        "Where" => where_(cx),
        "Conv" => conv(cx, false),
        "ConvTranspose" => conv(cx, true),
        "MaxPool" | "AveragePool" | "LpPool" => pool(cx),
        "GlobalAveragePool" | "GlobalMaxPool" | "GlobalLpPool" => global_pool(cx),
        "Gemm" => gemm(cx),
        "MatMul" => matmul(cx),
        "Flatten" => flatten(cx),
        "Reshape" => reshape(cx),
        "Transpose" => transpose(cx),
        "Concat" => concat(cx),
        "Slice" => slice(cx),
        "Split" => split(cx),
        "Gather" => gather(cx),
        "GatherElements" => one(cx.elem(0).and_then(|e| {
            cx.ty(1).map(|t| TensorType {
                elem: e,
                shape: t.shape.clone(),
            })
        })),
        "Squeeze" => squeeze(cx),
        "Unsqueeze" => unsqueeze(cx),
        "Expand" => expand(cx),
        "Tile" => tile(cx),
        "Pad" => pad(cx),
        "Resize" | "Upsample" => resize(cx),
        "ReduceMean" | "ReduceSum" | "ReduceMax" | "ReduceMin" | "ReduceProd" | "ReduceL1"
        | "ReduceL2" | "ReduceLogSum" | "ReduceLogSumExp" | "ReduceSumSquare" => reduce(cx),
        "ArgMax" | "ArgMin" => argmax(cx),
        "Shape" => shape_op(cx),
        "Size" => one(tt(DataType::Int64, vec![])),
        "Cast" => match crate::cast::cast_target(cx.view.desc) {
            Some(to) => one(Some(TensorType {
                elem: to,
                shape: cx.ty(0).and_then(|t| t.shape.clone()),
            })),
            // A type code from a newer ONNX: the output stays as it is.
            None => one(None),
        },
        "CastLike" => one(cx.elem(1).map(|elem| TensorType {
            elem,
            shape: cx.ty(0).and_then(|t| t.shape.clone()),
        })),
        "Constant" => one(constant_value(cx.view.desc).map(|t| TensorType {
            elem: t.dtype,
            shape: Some(t.dims.iter().map(|&d| Dim::Known(d)).collect()),
        })),
        "ConstantOfShape" => constant_of_shape(cx),
        "Range" => range(cx),
        "NonZero" => one(cx
            .shape(0)
            .map(|s| vec![Dim::Known(s.len()), Dim::Unknown])
            .and_then(|s| tt(DataType::Int64, s))),
        "DepthToSpace" | "SpaceToDepth" => depth_space(cx),
        "LSTM" | "GRU" | "RNN" => recurrent(cx),
        "TopK" => top_k(cx),
        "NonMaxSuppression" => non_max_suppression(cx),
        "GatherND" => gather_nd(cx),
        "OneHot" => one_hot(cx),
        "Einsum" => einsum(cx),
        "GridSample" => grid_sample(cx),
        "QuantizeLinear" => quantize(cx),
        "DequantizeLinear" => dequantize(cx),
        "DynamicQuantizeLinear" => dynamic_quantize(cx),
        "ConvInteger" | "MatMulInteger" => integer(cx),
        "QLinearConv" | "QLinearMatMul" => qlinear(cx),
        _ => return None,
    })
}

fn bool_like(cx: &Cx<'_>, slot: usize) -> Out {
    one(cx.ty(slot).map(|t| TensorType {
        elem: DataType::Bool,
        shape: t.shape.clone(),
    }))
}
