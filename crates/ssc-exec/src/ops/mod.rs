//! The op table: every supported op type, the kernel that runs it and the first opset the
//! executor runs it at. [`crate::check_supported`] and evaluation both read this one table.

pub(crate) mod contrib;
mod control;
mod conv;
mod einsum;
pub(crate) mod elementwise;
mod grid_sample;
mod index;
mod matmul;
mod misc;
mod norm;
mod optional;
mod pool;
pub(crate) mod quant;
mod reduce;
pub(crate) mod resize;
mod rnn;
mod select;
mod sequence;
mod shape;
mod window;

use crate::ctx::{Ctx, Result};
use crate::value::Val;

/// A kernel: evaluates one node, returning its outputs in slot order (optional outputs that
/// were not requested may be left off the end).
pub(crate) type Kernel = fn(&Ctx) -> Result<Vec<Val>>;

/// `(op type, kernel, first supported opset)`, sorted by op type.
pub(crate) const OPS: &[(&str, Kernel, i64)] = &[
    ("Abs", elementwise::unary, 1),
    ("Add", elementwise::arith, 1),
    ("And", elementwise::compare, 1),
    ("ArgMax", reduce::arg_extreme, 1),
    ("ArgMin", reduce::arg_extreme, 1),
    ("AveragePool", pool::avg_lp_pool, 1),
    ("BatchNormalization", norm::batch_norm, 1),
    ("Cast", misc::cast, 6),
    ("CastLike", misc::cast, 15),
    ("Ceil", elementwise::unary, 1),
    ("Celu", elementwise::unary, 12),
    ("Clip", elementwise::clip, 6),
    ("Concat", shape::concat, 1),
    ("ConcatFromSequence", sequence::sequence, 11),
    ("Constant", misc::constant, 1),
    ("ConstantOfShape", misc::constant_of_shape, 9),
    ("Conv", conv::conv, 1),
    ("ConvInteger", quant::conv_integer, 10),
    ("ConvTranspose", conv::conv_transpose, 1),
    ("Cos", elementwise::unary, 7),
    ("CumSum", index::cum_sum, 11),
    ("DepthToSpace", shape::depth_space, 1),
    ("DequantizeLinear", quant::dequantize_linear, 10),
    ("Div", elementwise::arith, 1),
    ("Dropout", misc::dropout, 1),
    ("DynamicQuantizeLinear", quant::dynamic_quantize_linear, 11),
    ("Einsum", einsum::einsum, 12),
    ("Elu", elementwise::unary, 1),
    ("Equal", elementwise::compare, 1),
    ("Erf", elementwise::unary, 9),
    ("Exp", elementwise::unary, 1),
    ("Expand", shape::expand, 8),
    ("Flatten", shape::flatten, 1),
    ("Floor", elementwise::unary, 1),
    ("GRU", rnn::recurrent, 1),
    ("Gather", shape::gather, 1),
    ("GatherElements", shape::gather_elements, 11),
    ("GatherND", index::gather_nd, 11),
    ("Gelu", elementwise::unary, 20),
    ("Gemm", matmul::gemm, 1),
    ("GlobalAveragePool", pool::global_pool, 1),
    ("GlobalLpPool", pool::global_pool, 2),
    ("GlobalMaxPool", pool::global_pool, 1),
    ("Greater", elementwise::compare, 1),
    ("GreaterOrEqual", elementwise::compare, 12),
    ("GridSample", grid_sample::grid_sample, 16),
    ("HardSigmoid", elementwise::unary, 1),
    ("HardSwish", elementwise::unary, 14),
    ("Hardmax", reduce::softmax, 1),
    ("Identity", misc::identity, 1),
    ("If", control::if_op, 1),
    ("InstanceNormalization", norm::instance_norm, 1),
    ("IsInf", elementwise::is_nan_inf, 10),
    ("IsNaN", elementwise::is_nan_inf, 9),
    ("LRN", norm::lrn, 1),
    ("LSTM", rnn::recurrent, 1),
    ("LayerNormalization", norm::layer_norm, 17),
    ("LeakyRelu", elementwise::unary, 1),
    ("Less", elementwise::compare, 1),
    ("LessOrEqual", elementwise::compare, 12),
    ("Log", elementwise::unary, 1),
    ("LogSoftmax", reduce::softmax, 1),
    ("Loop", control::loop_op, 1),
    ("LpPool", pool::avg_lp_pool, 2),
    ("MatMul", matmul::mat_mul, 1),
    ("MatMulInteger", quant::matmul_integer, 10),
    ("Max", elementwise::variadic, 1),
    ("MaxPool", pool::max_pool, 1),
    ("Mean", elementwise::variadic, 1),
    ("Min", elementwise::variadic, 1),
    ("Mish", elementwise::unary, 18),
    ("Mod", elementwise::arith, 10),
    ("Mul", elementwise::arith, 1),
    ("Neg", elementwise::unary, 1),
    ("NonMaxSuppression", select::non_max_suppression, 10),
    ("Not", elementwise::not, 1),
    ("OneHot", index::one_hot, 9),
    ("Optional", optional::optional, 15),
    ("OptionalGetElement", optional::optional, 15),
    ("OptionalHasElement", optional::optional, 15),
    ("Or", elementwise::compare, 1),
    ("PRelu", elementwise::prelu, 1),
    ("Pad", shape::pad, 2),
    ("Pow", elementwise::arith, 1),
    ("QLinearConv", quant::qlinear_conv, 10),
    ("QLinearMatMul", quant::qlinear_matmul, 10),
    ("QuantizeLinear", quant::quantize_linear, 10),
    ("RNN", rnn::recurrent, 1),
    ("Range", misc::range, 11),
    ("Reciprocal", elementwise::unary, 1),
    ("ReduceL1", reduce::reduce, 1),
    ("ReduceL2", reduce::reduce, 1),
    ("ReduceLogSum", reduce::reduce, 1),
    ("ReduceLogSumExp", reduce::reduce, 1),
    ("ReduceMax", reduce::reduce, 1),
    ("ReduceMean", reduce::reduce, 1),
    ("ReduceMin", reduce::reduce, 1),
    ("ReduceProd", reduce::reduce, 1),
    ("ReduceSum", reduce::reduce, 1),
    ("ReduceSumSquare", reduce::reduce, 1),
    ("Relu", elementwise::unary, 1),
    ("Reshape", shape::reshape, 1),
    ("Resize", resize::resize, 10),
    ("Round", elementwise::unary, 11),
    ("Scan", control::scan, 8),
    ("Scatter", index::scatter_elements, 9),
    ("ScatterElements", index::scatter_elements, 11),
    ("ScatterND", index::scatter_nd, 11),
    ("Selu", elementwise::unary, 1),
    ("SequenceAt", sequence::sequence, 11),
    ("SequenceConstruct", sequence::sequence, 11),
    ("SequenceEmpty", sequence::sequence, 11),
    ("SequenceErase", sequence::sequence, 11),
    ("SequenceInsert", sequence::sequence, 11),
    ("SequenceLength", sequence::sequence, 11),
    ("Shape", shape::shape, 1),
    ("Shrink", elementwise::unary, 9),
    ("Sigmoid", elementwise::unary, 1),
    ("Sign", elementwise::unary, 9),
    ("Sin", elementwise::unary, 7),
    ("Size", shape::size, 1),
    ("Slice", shape::slice, 1),
    ("Softmax", reduce::softmax, 1),
    ("Softplus", elementwise::unary, 1),
    ("Softsign", elementwise::unary, 1),
    ("SpaceToDepth", shape::depth_space, 1),
    ("Split", shape::split, 2),
    ("SplitToSequence", sequence::sequence, 11),
    ("Sqrt", elementwise::unary, 1),
    ("Squeeze", shape::squeeze, 1),
    ("Sub", elementwise::arith, 1),
    ("Sum", elementwise::variadic, 1),
    ("Swish", elementwise::unary, 24),
    ("Tanh", elementwise::unary, 1),
    ("ThresholdedRelu", elementwise::unary, 10),
    ("Tile", shape::tile, 6),
    ("TopK", select::top_k, 1),
    ("Transpose", shape::transpose, 1),
    ("Trilu", index::trilu, 14),
    ("Unsqueeze", shape::unsqueeze, 1),
    ("Upsample", resize::resize, 7),
    ("Where", elementwise::where_op, 9),
    ("Xor", elementwise::compare, 1),
];

/// onnxruntime contrib ops (domain `com.microsoft`) its own tools write into saved models, as
/// `(op type, kernel, first supported ONNX opset)`, sorted by op type.
pub(crate) const MS_OPS: &[(&str, Kernel, i64)] =
    &[("DynamicQuantizeLSTM", contrib::dynamic_quantize_lstm, 1)];

/// The table entry of `op_type` in `domain` (`""` or `ai.onnx`, or `com.microsoft`).
pub(crate) fn lookup(domain: &str, op_type: &str) -> Option<(Kernel, i64)> {
    let table = match domain {
        "" | "ai.onnx" => OPS,
        "com.microsoft" => MS_OPS,
        _ => return None,
    };
    table
        .binary_search_by(|(name, ..)| (*name).cmp(op_type))
        .ok()
        .map(|i| (table[i].1, table[i].2))
}

/// Runs the node's kernel.
pub(crate) fn eval(ctx: &Ctx) -> Result<Vec<Val>> {
    match lookup(&ctx.desc.domain, &ctx.desc.op_type) {
        Some((kernel, _)) => kernel(ctx),
        None => Err(ctx.err("unsupported op type")),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn table_is_sorted_and_unique() {
        for w in super::OPS.windows(2).chain(super::MS_OPS.windows(2)) {
            assert!(w[0].0 < w[1].0, "{} before {}", w[0].0, w[1].0);
        }
    }
}
