//! Reductions across the axes-as-input changes, ArgMax, and both Softmax semantics.

use super::{check, f, i, A};

#[test]
fn reduce_sum_axes_input_and_noop() {
    let x = f(&[2, 3], &[1., 2., 3., 4., 5., 6.]);
    let ax = i(&[1], &[-1]);
    check(
        "ReduceSum",
        13,
        vec![A::int("keepdims", 0)],
        &[Some(&x), Some(&ax)],
        &[f(&[2], &[6., 15.])],
    );
    check("ReduceSum", 13, vec![], &[Some(&x)], &[f(&[1, 1], &[21.])]);
    check(
        "ReduceSum",
        13,
        vec![A::int("noop_with_empty_axes", 1)],
        &[Some(&x)],
        std::slice::from_ref(&x),
    );
    // Opset 11: axes attribute.
    check(
        "ReduceSum",
        11,
        vec![A::ints("axes", vec![0])],
        &[Some(&x)],
        &[f(&[1, 3], &[5., 7., 9.])],
    );
}

#[test]
fn reduce_mean_max_min_prod() {
    let x = f(&[2, 2], &[1., 4., -2., 8.]);
    check(
        "ReduceMean",
        11,
        vec![A::ints("axes", vec![1])],
        &[Some(&x)],
        &[f(&[2, 1], &[2.5, 3.])],
    );
    // Opset 18: axes is an input for every reduction.
    let ax = i(&[1], &[0]);
    check(
        "ReduceMax",
        18,
        vec![A::int("keepdims", 0)],
        &[Some(&x), Some(&ax)],
        &[f(&[2], &[1., 8.])],
    );
    check(
        "ReduceMin",
        13,
        vec![A::int("keepdims", 0)],
        &[Some(&x)],
        &[f(&[], &[-2.])],
    );
    check(
        "ReduceProd",
        13,
        vec![A::int("keepdims", 0)],
        &[Some(&x)],
        &[f(&[], &[-64.])],
    );
    check(
        "ReduceL2",
        13,
        vec![A::ints("axes", vec![1])],
        &[Some(&x)],
        &[f(&[2, 1], &[17f32.sqrt(), 68f32.sqrt()])],
    );
    let b = super::t(ssc_ir::DataType::Bool, &[2, 2], &[1., 0., 1., 1.]);
    let want = super::t(ssc_ir::DataType::Bool, &[2], &[0., 1.]);
    check(
        "ReduceMin",
        20,
        vec![A::int("keepdims", 0)],
        &[Some(&b), Some(&i(&[1], &[1]))],
        &[want],
    );
    let xi = i(&[3], &[1, 2, 4]);
    check("ReduceMean", 13, vec![], &[Some(&xi)], &[i(&[1], &[2])]);
}

#[test]
fn argmax_keepdims_and_last_index() {
    let x = f(&[2, 3], &[1., 3., 3., 5., 0., 5.]);
    check(
        "ArgMax",
        13,
        vec![A::int("axis", 1)],
        &[Some(&x)],
        &[i(&[2, 1], &[1, 0])],
    );
    check(
        "ArgMax",
        13,
        vec![
            A::int("axis", -1),
            A::int("keepdims", 0),
            A::int("select_last_index", 1),
        ],
        &[Some(&x)],
        &[i(&[2], &[2, 2])],
    );
    check(
        "ArgMin",
        13,
        vec![A::int("axis", 0)],
        &[Some(&x)],
        &[i(&[1, 3], &[0, 1, 0])],
    );
}

#[test]
fn softmax_coerces_to_2d_before_opset_13() {
    let x = f(&[2, 2], &[0., 0., 0., 2f32.ln()]);
    // Opset 11, axis 0: one row of all four elements: 1, 1, 1, 2 over 5.
    check(
        "Softmax",
        11,
        vec![A::int("axis", 0)],
        &[Some(&x)],
        &[f(&[2, 2], &[0.2, 0.2, 0.2, 0.4])],
    );
    // Opset 13, axis 0: per column.
    check(
        "Softmax",
        13,
        vec![A::int("axis", 0)],
        &[Some(&x)],
        &[f(&[2, 2], &[0.5, 1. / 3., 0.5, 2. / 3.])],
    );
    // Default axes: 1 before 13 (whole rows), -1 from 13 (same here).
    check(
        "Softmax",
        11,
        vec![],
        &[Some(&x)],
        &[f(&[2, 2], &[0.5, 0.5, 1. / 3., 2. / 3.])],
    );
    check(
        "LogSoftmax",
        13,
        vec![],
        &[Some(&x)],
        &[f(
            &[2, 2],
            &[0.5f32.ln(), 0.5f32.ln(), (1f32 / 3.).ln(), (2f32 / 3.).ln()],
        )],
    );
}
