//! ScatterND, ScatterElements/Scatter, GatherND, OneHot, Trilu and CumSum: reductions,
//! duplicate and negative indices, negative axes, empty tensors.

use super::{check, f, fails, i, t, A};
use ssc_ir::DataType::{Bool, Int32};

#[test]
fn scatter_nd_with_reductions() {
    // Rows 1 and -1 (= 3) of a [4, 2] tensor; index 1 appears twice.
    let data = f(&[4, 2], &[1., 1., 2., 2., 3., 3., 4., 4.]);
    let idx = i(&[3, 1], &[1, -1, 1]);
    let upd = f(&[3, 2], &[10., 10., 20., 20., 30., 30.]);
    // none: the last duplicate wins.
    check(
        "ScatterND",
        16,
        vec![],
        &[Some(&data), Some(&idx), Some(&upd)],
        &[f(&[4, 2], &[1., 1., 30., 30., 3., 3., 20., 20.])],
    );
    check(
        "ScatterND",
        16,
        vec![A::string("reduction", "add")],
        &[Some(&data), Some(&idx), Some(&upd)],
        &[f(&[4, 2], &[1., 1., 42., 42., 3., 3., 24., 24.])],
    );
    check(
        "ScatterND",
        18,
        vec![A::string("reduction", "min")],
        &[Some(&data), Some(&idx), Some(&upd)],
        &[f(&[4, 2], &[1., 1., 2., 2., 3., 3., 4., 4.])],
    );
    // Full index tuples address single elements.
    let idx = i(&[2, 2], &[0, 1, 3, 0]);
    let upd = f(&[2], &[-1., -2.]);
    check(
        "ScatterND",
        13,
        vec![],
        &[Some(&data), Some(&idx), Some(&upd)],
        &[f(&[4, 2], &[1., -1., 2., 2., 3., 3., -2., 4.])],
    );
    let bad = i(&[1, 1], &[4]);
    let e = fails(
        "ScatterND",
        13,
        vec![],
        &[Some(&data), Some(&bad), Some(&f(&[1, 2], &[0., 0.]))],
    );
    assert!(
        e.contains("index 4 is out of range for an axis of 4"),
        "{e}"
    );
}

#[test]
fn scatter_elements_along_negative_axis() {
    let data = f(&[2, 3], &[0.; 6]);
    let idx = i(&[2, 2], &[2, -3, 0, 2]);
    let upd = f(&[2, 2], &[1., 2., 3., 4.]);
    let want = f(&[2, 3], &[2., 0., 1., 3., 0., 4.]);
    check(
        "ScatterElements",
        13,
        vec![A::int("axis", -1)],
        &[Some(&data), Some(&idx), Some(&upd)],
        std::slice::from_ref(&want),
    );
    // Scatter (opset 9) is the same op.
    check(
        "Scatter",
        9,
        vec![A::int("axis", 1)],
        &[Some(&data), Some(&idx), Some(&upd)],
        &[want],
    );
    // mul on int32 wraps like C: 2^20 * 2^12 = 2^32 -> 0.
    let d = t(Int32, &[1, 2], &[1048576., 3.]);
    let idx = i(&[1, 1], &[0]);
    let u = t(Int32, &[1, 1], &[4096.]);
    check(
        "ScatterElements",
        16,
        vec![A::int("axis", 1), A::string("reduction", "mul")],
        &[Some(&d), Some(&idx), Some(&u)],
        &[t(Int32, &[1, 2], &[0., 3.])],
    );
}

#[test]
fn gather_nd_with_batch_dims() {
    // batch_dims 1: batch 0 takes row 1, batch 1 row -1 (= 1).
    let data = f(&[2, 2, 2], &[1., 2., 3., 4., 5., 6., 7., 8.]);
    let idx = i(&[2, 1], &[1, -1]);
    check(
        "GatherND",
        12,
        vec![A::int("batch_dims", 1)],
        &[Some(&data), Some(&idx)],
        &[f(&[2, 2], &[3., 4., 7., 8.])],
    );
    let idx = i(&[2, 3], &[0, 0, 1, 1, 1, 0]);
    check(
        "GatherND",
        11,
        vec![],
        &[Some(&data), Some(&idx)],
        &[f(&[2], &[2., 7.])],
    );
}

#[test]
fn one_hot_negative_and_out_of_range_indices() {
    // depth 3: -1 -> 2, 3 is off the axis (all off), axis 0 puts depth first.
    let ind = i(&[3], &[0, -1, 3]);
    let depth = i(&[], &[3]);
    let vals = f(&[2], &[0., 5.]);
    check(
        "OneHot",
        11,
        vec![A::int("axis", 0)],
        &[Some(&ind), Some(&depth), Some(&vals)],
        &[f(&[3, 3], &[5., 0., 0., 0., 0., 0., 0., 5., 0.])],
    );
    // Float indices truncate; an empty index tensor gives an empty output.
    let ind = f(&[2], &[1.7, 0.2]);
    check(
        "OneHot",
        11,
        vec![],
        &[Some(&ind), Some(&depth), Some(&vals)],
        &[f(&[2, 3], &[0., 5., 0., 5., 0., 0.])],
    );
    let empty = i(&[0], &[]);
    check(
        "OneHot",
        11,
        vec![],
        &[Some(&empty), Some(&depth), Some(&vals)],
        &[f(&[0, 3], &[])],
    );
}

#[test]
fn trilu_offsets() {
    let x = f(&[2, 3], &[1., 2., 3., 4., 5., 6.]);
    // Upper with k = 1: j - i >= 1.
    check(
        "Trilu",
        14,
        vec![],
        &[Some(&x), Some(&i(&[], &[1]))],
        &[f(&[2, 3], &[0., 2., 3., 0., 0., 6.])],
    );
    // Lower with k = -1: j - i <= -1.
    check(
        "Trilu",
        14,
        vec![A::int("upper", 0)],
        &[Some(&x), Some(&i(&[], &[-1]))],
        &[f(&[2, 3], &[0., 0., 0., 4., 0., 0.])],
    );
    let b = t(Bool, &[1, 2], &[1., 1.]);
    check(
        "Trilu",
        14,
        vec![A::int("upper", 0)],
        &[Some(&b)],
        &[t(Bool, &[1, 2], &[1., 0.])],
    );
}

#[test]
fn cum_sum_modes() {
    let x = f(&[2, 3], &[1., 2., 3., 4., 5., 6.]);
    let ax = i(&[], &[-1]);
    check(
        "CumSum",
        14,
        vec![],
        &[Some(&x), Some(&ax)],
        &[f(&[2, 3], &[1., 3., 6., 4., 9., 15.])],
    );
    check(
        "CumSum",
        14,
        vec![A::int("exclusive", 1), A::int("reverse", 1)],
        &[Some(&x), Some(&ax)],
        &[f(&[2, 3], &[5., 3., 0., 11., 6., 0.])],
    );
    let ax0 = t(Int32, &[1], &[0.]);
    check(
        "CumSum",
        14,
        vec![A::int("exclusive", 1)],
        &[Some(&x), Some(&ax0)],
        &[f(&[2, 3], &[0., 0., 0., 1., 2., 3.])],
    );
    let e = fails("CumSum", 14, vec![], &[Some(&x), Some(&i(&[], &[2]))]);
    assert!(e.contains("axis 2 is out of range for rank 2"), "{e}");
}
