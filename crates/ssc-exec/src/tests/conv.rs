//! Conv and ConvTranspose: padding modes, strides, dilations, groups, 1-D/3-D.

use super::{check, f, A};

#[test]
fn conv_2d_valid() {
    // 3x3 input 1..9, 2x2 ones kernel: each output sums a 2x2 block.
    let x = f(&[1, 1, 3, 3], &[1., 2., 3., 4., 5., 6., 7., 8., 9.]);
    let w = f(&[1, 1, 2, 2], &[1.; 4]);
    check(
        "Conv",
        11,
        vec![],
        &[Some(&x), Some(&w)],
        &[f(&[1, 1, 2, 2], &[12., 16., 24., 28.])],
    );
}

#[test]
fn conv_same_lower_puts_the_odd_pad_first() {
    // Total padding (4 - 1) + 2 - 4 = 1: SAME_LOWER pads [0, 1, 2, 3, 4], SAME_UPPER [1, 2, 3, 4, 0].
    let x = f(&[1, 1, 4], &[1., 2., 3., 4.]);
    let w = f(&[1, 1, 2], &[1., 10.]);
    check(
        "Conv",
        11,
        vec![A::string("auto_pad", "SAME_LOWER")],
        &[Some(&x), Some(&w)],
        &[f(&[1, 1, 4], &[10., 21., 32., 43.])],
    );
    check(
        "Conv",
        11,
        vec![A::string("auto_pad", "SAME_UPPER")],
        &[Some(&x), Some(&w)],
        &[f(&[1, 1, 4], &[21., 32., 43., 4.])],
    );
}

#[test]
fn conv_strides_dilations_and_explicit_pads() {
    // Span (2 - 1) * 3 + 1 = 4 over 0..6, stride 2: x0 + x3 = 3, x2 + x5 = 7.
    let x = f(&[1, 1, 7], &[0., 1., 2., 3., 4., 5., 6.]);
    let w = f(&[1, 1, 2], &[1., 1.]);
    check(
        "Conv",
        11,
        vec![A::ints("dilations", vec![3]), A::ints("strides", vec![2])],
        &[Some(&x), Some(&w)],
        &[f(&[1, 1, 2], &[3., 7.])],
    );
    // Asymmetric pads [2, 0]: [0, 0, 1, 2, 3] under a 3-wide box.
    let x = f(&[1, 1, 3], &[1., 2., 3.]);
    let w = f(&[1, 1, 3], &[1., 1., 1.]);
    check(
        "Conv",
        11,
        vec![A::ints("pads", vec![2, 0])],
        &[Some(&x), Some(&w)],
        &[f(&[1, 1, 3], &[1., 3., 6.])],
    );
}

#[test]
fn conv_groups_and_bias() {
    // Two groups of one channel: 2 * [1, 2] + 1 and 10 * [3, 4] - 1.
    let x = f(&[1, 2, 2], &[1., 2., 3., 4.]);
    let w = f(&[2, 1, 1], &[2., 10.]);
    let b = f(&[2], &[1., -1.]);
    check(
        "Conv",
        11,
        vec![A::int("group", 2)],
        &[Some(&x), Some(&w), Some(&b)],
        &[f(&[1, 2, 2], &[3., 5., 29., 39.])],
    );
}

#[test]
fn conv_3d_and_batch() {
    let x = f(
        &[2, 1, 2, 2, 2],
        &(1..=16).map(|v| v as f32).collect::<Vec<_>>(),
    );
    let w = f(&[1, 1, 2, 2, 2], &[1.; 8]);
    // Sums of 1..8 and 9..16.
    check(
        "Conv",
        11,
        vec![],
        &[Some(&x), Some(&w)],
        &[f(&[2, 1, 1, 1, 1], &[36., 100.])],
    );
}

#[test]
fn conv_f64_and_f16() {
    use super::t;
    use ssc_ir::DataType::{Double, Float16};
    for dt in [Double, Float16] {
        let x = t(dt, &[1, 1, 3], &[1., 2., 3.]);
        let w = t(dt, &[1, 1, 2], &[0.5, 0.25]);
        check(
            "Conv",
            11,
            vec![],
            &[Some(&x), Some(&w)],
            &[t(dt, &[1, 1, 2], &[1., 1.75])],
        );
    }
}

#[test]
fn conv_transpose_basic_stride_and_pads() {
    let x = f(&[1, 1, 3], &[1., 2., 3.]);
    let w = f(&[1, 1, 2], &[1., 1.]);
    // Each input spreads over two outputs: [1, 1+2, 2+3, 3].
    check(
        "ConvTranspose",
        11,
        vec![],
        &[Some(&x), Some(&w)],
        &[f(&[1, 1, 4], &[1., 3., 5., 3.])],
    );
    // Stride 2 and output_padding 1 give [1, 1, 2, 2, 3, 3, 0]; pads [1, 1] crop both ends.
    check(
        "ConvTranspose",
        11,
        vec![
            A::ints("strides", vec![2]),
            A::ints("output_padding", vec![1]),
            A::ints("pads", vec![1, 1]),
        ],
        &[Some(&x), Some(&w)],
        &[f(&[1, 1, 5], &[1., 2., 2., 3., 3.])],
    );
}

#[test]
fn conv_transpose_output_shape_crops_or_extends() {
    // The full output is [1, 1, 3, 2, 5, 3, 3] (length 7). Without pads, output_shape crops or
    // zero-extends the end (the ONNX reference's rule); SAME_LOWER puts the odd unit of
    // padding first, SAME_UPPER last.
    let x = f(&[1, 1, 3], &[1., 2., 3.]);
    let w = f(&[1, 1, 3], &[1., 1., 1.]);
    let run = |len: i64, extra: Vec<A>, want: &[f32]| {
        let mut attrs = vec![
            A::ints("strides", vec![2]),
            A::ints("output_shape", vec![len]),
        ];
        attrs.extend(extra);
        check(
            "ConvTranspose",
            11,
            attrs,
            &[Some(&x), Some(&w)],
            &[f(&[1, 1, want.len()], want)],
        );
    };
    run(6, vec![], &[1., 1., 3., 2., 5., 3.]);
    run(8, vec![], &[1., 1., 3., 2., 5., 3., 3., 0.]);
    run(
        6,
        vec![A::string("auto_pad", "SAME_UPPER")],
        &[1., 1., 3., 2., 5., 3.],
    );
    run(
        6,
        vec![A::string("auto_pad", "SAME_LOWER")],
        &[1., 3., 2., 5., 3., 3.],
    );
    // SAME without output_shape: in * stride = 6.
    run(
        6,
        vec![A::string("auto_pad", "SAME_LOWER")],
        &[1., 3., 2., 5., 3., 3.],
    );
}

#[test]
fn conv_transpose_groups_and_bias() {
    let x = f(&[1, 2, 1], &[1., 2.]);
    let w = f(&[2, 1, 2], &[1., 2., 3., 4.]);
    let b = f(&[2], &[0.5, -0.5]);
    check(
        "ConvTranspose",
        11,
        vec![A::int("group", 2)],
        &[Some(&x), Some(&w), Some(&b)],
        &[f(&[1, 2, 2], &[1.5, 2.5, 5.5, 7.5])],
    );
}

#[test]
fn conv_rejects_mismatched_channels() {
    let x = f(&[1, 3, 2], &[0.; 6]);
    let w = f(&[1, 2, 1], &[0.; 2]);
    let e = super::fails("Conv", 11, vec![], &[Some(&x), Some(&w)]);
    assert!(e.contains("node `n` (Conv)"), "{e}");
}
