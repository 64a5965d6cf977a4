//! Constant, ConstantOfShape, Range, Cast, Dropout, Gemm and MatMul.

use ssc_ir::{AttrValue, DataType};

use super::{check, f, i, t, A};

#[test]
fn constants() {
    check(
        "Constant",
        13,
        vec![A::new("value_floats", AttrValue::Floats(vec![1., 2.]))],
        &[],
        &[f(&[2], &[1., 2.])],
    );
    check(
        "Constant",
        13,
        vec![A::int("value_int", 7)],
        &[],
        &[i(&[], &[7])],
    );
    let v = i(&[1], &[3]);
    check(
        "Constant",
        13,
        vec![A::new("value", AttrValue::Tensor(v.clone()))],
        &[],
        std::slice::from_ref(&v),
    );
    let s = i(&[2], &[2, 1]);
    check(
        "ConstantOfShape",
        13,
        vec![],
        &[Some(&s)],
        &[f(&[2, 1], &[0., 0.])],
    );
    check(
        "ConstantOfShape",
        13,
        vec![A::new("value", AttrValue::Tensor(v))],
        &[Some(&s)],
        &[i(&[2, 1], &[3, 3])],
    );
}

#[test]
fn range_float_and_int() {
    let s = |v: f32| f(&[], &[v]);
    check(
        "Range",
        13,
        vec![],
        &[Some(&s(1.)), Some(&s(2.)), Some(&s(0.3))],
        &[f(&[4], &[1., 1.3, 1.6, 1.9])],
    );
    let n = |v: i64| i(&[], &[v]);
    check(
        "Range",
        13,
        vec![],
        &[Some(&n(10)), Some(&n(4)), Some(&n(-3))],
        &[i(&[2], &[10, 7])],
    );
}

#[test]
fn casts() {
    let x = f(&[4], &[1.9, -1.9, 0., 300.]);
    check(
        "Cast",
        13,
        vec![A::int("to", DataType::Int32.code() as i64)],
        &[Some(&x)],
        &[t(DataType::Int32, &[4], &[1., -1., 0., 300.])],
    );
    check(
        "Cast",
        13,
        vec![A::int("to", DataType::Bool.code() as i64)],
        &[Some(&x)],
        &[t(DataType::Bool, &[4], &[1., 1., 0., 1.])],
    );
    let w = i(&[2], &[257, -1]);
    check(
        "Cast",
        13,
        vec![A::int("to", DataType::Uint8.code() as i64)],
        &[Some(&w)],
        &[t(DataType::Uint8, &[2], &[1., 255.])],
    );
    check(
        "Cast",
        13,
        vec![A::int("to", DataType::Float16.code() as i64)],
        &[Some(&x)],
        &[t(DataType::Float16, &[4], &[1.9, -1.9, 0., 300.])],
    );
}

#[test]
fn dropout_is_identity_with_mask() {
    let x = f(&[2], &[1., 2.]);
    check(
        "Dropout",
        13,
        vec![],
        &[Some(&x)],
        &[x.clone(), t(DataType::Bool, &[2], &[1., 1.])],
    );
    check(
        "Dropout",
        7,
        vec![A::float("ratio", 0.3)],
        &[Some(&x)],
        &[x.clone(), f(&[2], &[1., 1.])],
    );
    let on = t(DataType::Bool, &[], &[1.]);
    let e = super::fails("Dropout", 13, vec![], &[Some(&x), None, Some(&on)]);
    assert!(e.contains("training"), "{e}");
}

#[test]
fn gemm_transposes_and_broadcast_c() {
    // A^T = [[1, 2], [3, 4]] as stored [[1, 3], [2, 4]]; B^T = I; C = [10, 20] per row.
    let a = f(&[2, 2], &[1., 3., 2., 4.]);
    let b = f(&[2, 2], &[1., 0., 0., 1.]);
    let c = f(&[2], &[10., 20.]);
    check(
        "Gemm",
        13,
        vec![
            A::int("transA", 1),
            A::int("transB", 1),
            A::float("alpha", 2.),
            A::float("beta", 0.5),
        ],
        &[Some(&a), Some(&b), Some(&c)],
        &[f(&[2, 2], &[7., 14., 11., 18.])],
    );
    check(
        "Gemm",
        13,
        vec![],
        &[Some(&a), Some(&b)],
        std::slice::from_ref(&a),
    );
}

#[test]
fn matmul_numpy_semantics() {
    let m = f(&[2, 3], &[1., 2., 3., 4., 5., 6.]);
    let v = f(&[3], &[1., 0., -1.]);
    check(
        "MatMul",
        13,
        vec![],
        &[Some(&m), Some(&v)],
        &[f(&[2], &[-2., -2.])],
    );
    let u = f(&[2], &[1., 1.]);
    check(
        "MatMul",
        13,
        vec![],
        &[Some(&u), Some(&m)],
        &[f(&[3], &[5., 7., 9.])],
    );
    // Batch broadcast: [2, 1, 2] x [3, 1] would not fit; [2, 1, 3] x [1, 3, 1].
    let a = f(&[2, 1, 3], &[1., 2., 3., 4., 5., 6.]);
    let b = f(&[1, 3, 1], &[1., 1., 1.]);
    check(
        "MatMul",
        13,
        vec![],
        &[Some(&a), Some(&b)],
        &[f(&[2, 1, 1], &[6., 15.])],
    );
    let b2 = f(&[2, 3, 1], &[1., 0., 0., 0., 0., 1.]);
    check(
        "MatMul",
        13,
        vec![],
        &[Some(&a), Some(&b2)],
        &[f(&[2, 1, 1], &[1., 6.])],
    );
    let ia = i(&[1, 2], &[3, 4]);
    let ib = i(&[2, 1], &[5, 6]);
    check(
        "MatMul",
        13,
        vec![],
        &[Some(&ia), Some(&ib)],
        &[i(&[1, 1], &[39])],
    );
}
