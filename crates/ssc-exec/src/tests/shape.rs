//! Shape and data-movement ops: Reshape (allowzero), Flatten, Squeeze/Unsqueeze across the
//! opset-13 change, Transpose, Concat/Split, Slice clamping, Gather, Expand, Tile, Pad.

use ssc_ir::DataType;

use super::{check, f, fails, i, t, A};

fn iota(dims: &[usize]) -> ssc_ir::Tensor {
    let n: usize = dims.iter().product();
    f(dims, &(0..n).map(|v| v as f32).collect::<Vec<_>>())
}

#[test]
fn reshape_zero_and_minus_one() {
    let x = iota(&[2, 3, 4]);
    let s = i(&[2], &[0, -1]);
    check(
        "Reshape",
        13,
        vec![],
        &[Some(&x), Some(&s)],
        &[iota(&[2, 12])],
    );
    // allowzero=1: a 0 is a literal zero, so an empty tensor reshapes to [0, 3].
    let e = f(&[0, 3], &[]);
    let s = i(&[2], &[3, 0]);
    check(
        "Reshape",
        14,
        vec![A::int("allowzero", 1)],
        &[Some(&e), Some(&s)],
        &[f(&[3, 0], &[])],
    );
    // Without it, 0 copies the input dim.
    let s = i(&[2], &[0, 3]);
    check(
        "Reshape",
        14,
        vec![],
        &[Some(&e), Some(&s)],
        &[f(&[0, 3], &[])],
    );
    let bad = i(&[1], &[5]);
    assert!(fails("Reshape", 13, vec![], &[Some(&x), Some(&bad)]).contains("cannot reshape"));
}

#[test]
fn flatten_axes() {
    let x = iota(&[2, 3, 4]);
    check(
        "Flatten",
        13,
        vec![A::int("axis", 0)],
        &[Some(&x)],
        &[iota(&[1, 24])],
    );
    check(
        "Flatten",
        13,
        vec![A::int("axis", -1)],
        &[Some(&x)],
        &[iota(&[6, 4])],
    );
    check(
        "Flatten",
        13,
        vec![A::int("axis", 3)],
        &[Some(&x)],
        &[iota(&[24, 1])],
    );
}

#[test]
fn squeeze_unsqueeze_attr_then_input() {
    let x = iota(&[1, 3, 1]);
    check(
        "Squeeze",
        11,
        vec![A::ints("axes", vec![-1])],
        &[Some(&x)],
        &[iota(&[1, 3])],
    );
    check(
        "Squeeze",
        13,
        vec![],
        &[Some(&x), Some(&i(&[1], &[0]))],
        &[iota(&[3, 1])],
    );
    check("Squeeze", 13, vec![], &[Some(&x)], &[iota(&[3])]);
    let y = iota(&[3]);
    check(
        "Unsqueeze",
        11,
        vec![A::ints("axes", vec![0, -1])],
        &[Some(&y)],
        &[iota(&[1, 3, 1])],
    );
    check(
        "Unsqueeze",
        13,
        vec![],
        &[Some(&y), Some(&i(&[1], &[1]))],
        &[iota(&[3, 1])],
    );
    assert!(
        fails("Squeeze", 11, vec![A::ints("axes", vec![1])], &[Some(&x)])
            .contains("cannot squeeze")
    );
}

#[test]
fn transpose_and_concat() {
    let x = iota(&[2, 3]);
    check(
        "Transpose",
        13,
        vec![],
        &[Some(&x)],
        &[f(&[3, 2], &[0., 3., 1., 4., 2., 5.])],
    );
    let x3 = iota(&[1, 2, 3]);
    check(
        "Transpose",
        13,
        vec![A::ints("perm", vec![2, 0, 1])],
        &[Some(&x3)],
        &[f(&[3, 1, 2], &[0., 3., 1., 4., 2., 5.])],
    );
    let a = iota(&[2, 1]);
    let b = f(&[2, 2], &[10., 11., 12., 13.]);
    check(
        "Concat",
        13,
        vec![A::int("axis", -1)],
        &[Some(&a), Some(&b)],
        &[f(&[2, 3], &[0., 10., 11., 1., 12., 13.])],
    );
}

#[test]
fn split_forms() {
    let x = iota(&[5]);
    // Opset 11: `split` attribute.
    check(
        "Split",
        11,
        vec![A::ints("split", vec![2, 3])],
        &[Some(&x)],
        &[f(&[2], &[0., 1.]), f(&[3], &[2., 3., 4.])],
    );
    // Opset 13: `split` input, negative axis.
    let s = i(&[2], &[4, 1]);
    check(
        "Split",
        13,
        vec![A::int("axis", -1)],
        &[Some(&x), Some(&s)],
        &[f(&[4], &[0., 1., 2., 3.]), f(&[1], &[4.])],
    );
    // Opset 18: num_outputs with an uneven last chunk (ceil(5 / 3) = 2).
    check(
        "Split",
        18,
        vec![A::int("num_outputs", 3)],
        &[Some(&x)],
        &[f(&[2], &[0., 1.]), f(&[2], &[2., 3.]), f(&[1], &[4.])],
    );
}

#[test]
fn slice_steps_negatives_and_clamping() {
    let x = iota(&[10]);
    let one = |v: i64| i(&[1], &[v]);
    // From the end backwards by 2, the end clamped far below zero.
    check(
        "Slice",
        13,
        vec![],
        &[
            Some(&x),
            Some(&one(-1)),
            Some(&one(-100)),
            None,
            Some(&one(-2)),
        ],
        &[f(&[5], &[9., 7., 5., 3., 1.])],
    );
    check(
        "Slice",
        13,
        vec![],
        &[Some(&x), Some(&one(7)), Some(&one(1000))],
        &[f(&[3], &[7., 8., 9.])],
    );
    check(
        "Slice",
        13,
        vec![],
        &[Some(&x), Some(&one(5)), Some(&one(2))],
        &[f(&[0], &[])],
    );
    // Opset 9: attributes, on axis 1 of a matrix.
    let m = iota(&[2, 3]);
    check(
        "Slice",
        9,
        vec![
            A::ints("starts", vec![1]),
            A::ints("ends", vec![-1]),
            A::ints("axes", vec![1]),
        ],
        &[Some(&m)],
        &[f(&[2, 1], &[1., 4.])],
    );
}

#[test]
fn gather_any_axis_negative_indices() {
    let x = iota(&[2, 3]);
    let idx = i(&[2], &[-1, 0]);
    check(
        "Gather",
        13,
        vec![A::int("axis", 1)],
        &[Some(&x), Some(&idx)],
        &[f(&[2, 2], &[2., 0., 5., 3.])],
    );
    let idx = t(DataType::Int32, &[1, 1], &[1.]);
    check(
        "Gather",
        13,
        vec![],
        &[Some(&x), Some(&idx)],
        &[f(&[1, 1, 3], &[3., 4., 5.])],
    );
    let bad = i(&[1], &[3]);
    assert!(fails(
        "Gather",
        13,
        vec![A::int("axis", 1)],
        &[Some(&x), Some(&bad)]
    )
    .contains("out of range"));
}

#[test]
fn expand_and_tile() {
    let x = f(&[2, 1], &[1., 2.]);
    let s = i(&[3], &[2, 1, 3]);
    check(
        "Expand",
        13,
        vec![],
        &[Some(&x), Some(&s)],
        &[f(
            &[2, 2, 3],
            &[1., 1., 1., 2., 2., 2., 1., 1., 1., 2., 2., 2.],
        )],
    );
    let r = i(&[2], &[2, 2]);
    check(
        "Tile",
        13,
        vec![],
        &[Some(&x), Some(&r)],
        &[f(&[4, 2], &[1., 1., 2., 2., 1., 1., 2., 2.])],
    );
}

#[test]
fn pad_modes() {
    let x = f(&[1, 3], &[1., 2., 3.]);
    let p = i(&[4], &[0, 2, 0, 1]);
    let run = |mode: &str, want: &[f32]| {
        check(
            "Pad",
            19,
            vec![A::string("mode", mode)],
            &[Some(&x), Some(&p)],
            &[f(&[1, 6], want)],
        );
    };
    run("constant", &[0., 0., 1., 2., 3., 0.]);
    run("reflect", &[3., 2., 1., 2., 3., 2.]);
    run("edge", &[1., 1., 1., 2., 3., 3.]);
    run("wrap", &[2., 3., 1., 2., 3., 1.]);
    // Constant value input; negative pads crop.
    let v = f(&[], &[9.]);
    let p = i(&[4], &[0, -1, 0, 1]);
    check(
        "Pad",
        13,
        vec![],
        &[Some(&x), Some(&p), Some(&v)],
        &[f(&[1, 3], &[2., 3., 9.])],
    );
    // Opset 2: attributes.
    check(
        "Pad",
        2,
        vec![A::ints("pads", vec![1, 0, 0, 0]), A::float("value", 5.)],
        &[Some(&x)],
        &[f(&[2, 3], &[5., 5., 5., 1., 2., 3.])],
    );
}

#[test]
fn depth_to_space_and_back() {
    // 4 channels of 1x1 -> one 2x2 channel; DCR reads the blocks channel-major, CRD the same
    // here since there is one output channel.
    let x = iota(&[1, 4, 1, 1]);
    let want = f(&[1, 1, 2, 2], &[0., 1., 2., 3.]);
    check(
        "DepthToSpace",
        13,
        vec![A::int("blocksize", 2)],
        &[Some(&x)],
        std::slice::from_ref(&want),
    );
    check(
        "SpaceToDepth",
        13,
        vec![A::int("blocksize", 2)],
        &[Some(&want)],
        &[x],
    );
    // Two output channels: DCR interleaves channels inside each block, CRD keeps them apart.
    let x = iota(&[1, 8, 1, 1]);
    let dcr = f(&[1, 2, 2, 2], &[0., 2., 4., 6., 1., 3., 5., 7.]);
    let crd = f(&[1, 2, 2, 2], &[0., 1., 2., 3., 4., 5., 6., 7.]);
    check(
        "DepthToSpace",
        13,
        vec![A::int("blocksize", 2)],
        &[Some(&x)],
        &[dcr],
    );
    check(
        "DepthToSpace",
        13,
        vec![A::int("blocksize", 2), A::string("mode", "CRD")],
        &[Some(&x)],
        &[crd],
    );
}

#[test]
fn shape_with_start_end() {
    let x = iota(&[2, 3, 4]);
    check("Shape", 13, vec![], &[Some(&x)], &[i(&[3], &[2, 3, 4])]);
    check(
        "Shape",
        15,
        vec![A::int("start", -2)],
        &[Some(&x)],
        &[i(&[2], &[3, 4])],
    );
    check(
        "Shape",
        15,
        vec![A::int("start", 1), A::int("end", -1)],
        &[Some(&x)],
        &[i(&[1], &[3])],
    );
}
