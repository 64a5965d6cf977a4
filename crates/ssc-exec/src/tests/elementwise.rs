//! Elementwise ops: broadcasting (numpy and pre-7), integer semantics, activations, Clip,
//! PRelu, variadic ops, comparisons and Where.

use ssc_ir::DataType::{Bool, Int32, Uint8};

use super::{check, f, fails, i, t, A};

#[test]
fn add_broadcasts_numpy_style() {
    let a = f(&[2, 1], &[1., 2.]);
    let b = f(&[3], &[10., 20., 30.]);
    check(
        "Add",
        14,
        vec![],
        &[Some(&a), Some(&b)],
        &[f(&[2, 3], &[11., 21., 31., 12., 22., 32.])],
    );
}

#[test]
fn legacy_broadcast_with_axis() {
    // Opset 6: B [2] lines up with A's axis 0.
    let a = f(&[2, 3], &[1., 2., 3., 4., 5., 6.]);
    let b = f(&[2], &[10., 20.]);
    check(
        "Add",
        6,
        vec![A::int("broadcast", 1), A::int("axis", 0)],
        &[Some(&a), Some(&b)],
        &[f(&[2, 3], &[11., 12., 13., 24., 25., 26.])],
    );
    // Without broadcast=1 the shapes must match.
    let e = fails("Add", 6, vec![], &[Some(&a), Some(&b)]);
    assert!(e.contains("broadcast=0"), "{e}");
}

#[test]
fn integer_division_truncates_and_wraps() {
    let a = i(&[4], &[7, -7, 7, -7]);
    let b = i(&[4], &[2, 2, -2, -2]);
    check(
        "Div",
        14,
        vec![],
        &[Some(&a), Some(&b)],
        &[i(&[4], &[3, -3, -3, 3])],
    );
    let z = i(&[4], &[1, 0, 1, 1]);
    assert!(fails("Div", 14, vec![], &[Some(&a), Some(&z)]).contains("division by zero"));
    // u8 addition wraps.
    let x = t(Uint8, &[2], &[250., 3.]);
    let y = t(Uint8, &[2], &[10., 4.]);
    check(
        "Add",
        14,
        vec![],
        &[Some(&x), Some(&y)],
        &[t(Uint8, &[2], &[4., 7.])],
    );
    // Python-style Mod takes the divisor's sign; fmod=1 the dividend's.
    check(
        "Mod",
        13,
        vec![],
        &[Some(&a), Some(&b)],
        &[i(&[4], &[1, 1, -1, -1])],
    );
    check(
        "Mod",
        13,
        vec![A::int("fmod", 1)],
        &[Some(&a), Some(&b)],
        &[i(&[4], &[1, -1, 1, -1])],
    );
    // Float Mod: numpy's `mod` by default, C's `fmod` with fmod=1.
    let p = f(&[2], &[-4.5, 7.5]);
    let q = f(&[2], &[2., -3.]);
    check(
        "Mod",
        13,
        vec![],
        &[Some(&p), Some(&q)],
        &[f(&[2], &[1.5, -1.5])],
    );
    check(
        "Mod",
        13,
        vec![A::int("fmod", 1)],
        &[Some(&p), Some(&q)],
        &[f(&[2], &[-0.5, 1.5])],
    );
}

#[test]
fn pow_with_integer_exponent() {
    let a = f(&[3], &[2., 3., 4.]);
    let b = i(&[1], &[2]);
    check(
        "Pow",
        15,
        vec![],
        &[Some(&a), Some(&b)],
        &[f(&[3], &[4., 9., 16.])],
    );
}

#[test]
fn activations() {
    let x = f(&[4], &[-2., -0.5, 0., 1.]);
    let e = |v: f64| v.exp();
    let cases: Vec<(&str, Vec<A>, [f64; 4])> = vec![
        ("Relu", vec![], [0., 0., 0., 1.]),
        (
            "LeakyRelu",
            vec![A::float("alpha", 0.5)],
            [-1., -0.25, 0., 1.],
        ),
        (
            "Elu",
            vec![A::float("alpha", 2.)],
            [2. * (e(-2.) - 1.), 2. * (e(-0.5) - 1.), 0., 1.],
        ),
        ("HardSigmoid", vec![], [0.1, 0.4, 0.5, 0.7]),
        (
            "HardSwish",
            vec![],
            [-1. / 3., -0.5 * (0.5 - 0.5 / 6.), 0., 1. * (0.5 + 1. / 6.)],
        ),
        (
            "Sigmoid",
            vec![],
            [
                1. / (1. + e(2.)),
                1. / (1. + e(0.5)),
                0.5,
                1. / (1. + e(-1.)),
            ],
        ),
        (
            "Softplus",
            vec![],
            [
                (1. + e(-2.)).ln(),
                (1. + e(-0.5)).ln(),
                2f64.ln(),
                (1. + e(1.)).ln(),
            ],
        ),
        ("Abs", vec![], [2., 0.5, 0., 1.]),
        ("Neg", vec![], [2., 0.5, 0., -1.]),
        ("Sign", vec![], [-1., -1., 0., 1.]),
        (
            "Shrink",
            vec![A::float("lambd", 1.), A::float("bias", 0.5)],
            [-1.5, 0., 0., 0.],
        ),
    ];
    for (op, attrs, want) in cases {
        let w: Vec<f32> = want.iter().map(|&v| v as f32).collect();
        check(op, 14, attrs, &[Some(&x)], &[f(&[4], &w)]);
    }
    // Selu defaults: gamma * x for x > 0, gamma * alpha * (e^x - 1) otherwise.
    let (al, ga) = (1.673_263_192_176_818_8_f64, 1.050_701_022_148_132_3_f64);
    let s = f(&[2], &[-1., 2.]);
    check(
        "Selu",
        14,
        vec![],
        &[Some(&s)],
        &[f(
            &[2],
            &[(ga * al * (e(-1.) - 1.)) as f32, (2. * ga) as f32],
        )],
    );
}

#[test]
fn gelu_exact_and_tanh() {
    let x = f(&[2], &[1., -1.]);
    // 0.5 x (1 + erf(x / sqrt 2)) with erf(1/sqrt 2) = 0.6826894921370859.
    let exact = 0.5 * (1. + 0.682_689_492_137_085_9);
    check(
        "Gelu",
        20,
        vec![],
        &[Some(&x)],
        &[f(&[2], &[exact as f32, (exact - 1.) as f32])],
    );
    let c = (2. / std::f64::consts::PI).sqrt() * (1. + 0.044715);
    let approx = 0.5 * (1. + c.tanh());
    check(
        "Gelu",
        20,
        vec![A::string("approximate", "tanh")],
        &[Some(&x)],
        &[f(&[2], &[approx as f32, (approx - 1.) as f32])],
    );
}

#[test]
fn clip_attributes_then_inputs() {
    let x = f(&[4], &[-2., -0.5, 0.5, 2.]);
    check(
        "Clip",
        6,
        vec![A::float("min", -1.), A::float("max", 1.)],
        &[Some(&x)],
        &[f(&[4], &[-1., -0.5, 0.5, 1.])],
    );
    // Opset 11: bounds are inputs and each is optional.
    let hi = f(&[], &[0.]);
    check(
        "Clip",
        11,
        vec![],
        &[Some(&x), None, Some(&hi)],
        &[f(&[4], &[-2., -0.5, 0., 0.])],
    );
    let xi = i(&[3], &[-5, 0, 5]);
    let (lo, hi) = (i(&[], &[-1]), i(&[], &[1]));
    check(
        "Clip",
        12,
        vec![],
        &[Some(&xi), Some(&lo), Some(&hi)],
        &[i(&[3], &[-1, 0, 1])],
    );
}

#[test]
fn prelu_broadcasts_slope() {
    let x = f(&[1, 2, 2], &[-1., 1., -2., 2.]);
    let s = f(&[2, 1], &[0.1, 0.5]);
    check(
        "PRelu",
        16,
        vec![],
        &[Some(&x), Some(&s)],
        &[f(&[1, 2, 2], &[-0.1, 1., -1., 2.])],
    );
    // Opset 6: a 1-D slope of length C is per channel.
    let s = f(&[2], &[0.1, 0.5]);
    check(
        "PRelu",
        6,
        vec![],
        &[Some(&x), Some(&s)],
        &[f(&[1, 2, 2], &[-0.1, 1., -1., 2.])],
    );
}

#[test]
fn variadic_ops_broadcast() {
    let a = f(&[2, 1], &[1., 2.]);
    let b = f(&[2], &[10., 20.]);
    let c = f(&[], &[100.]);
    let ins = [Some(&a), Some(&b), Some(&c)];
    check(
        "Sum",
        13,
        vec![],
        &ins,
        &[f(&[2, 2], &[111., 121., 112., 122.])],
    );
    check(
        "Mean",
        13,
        vec![],
        &ins,
        &[f(&[2, 2], &[37., 121. / 3., 112. / 3., 122. / 3.])],
    );
    check("Max", 13, vec![], &ins, &[f(&[2, 2], &[100.; 4])]);
    check(
        "Min",
        13,
        vec![],
        &ins[..2],
        &[f(&[2, 2], &[1., 1., 2., 2.])],
    );
    // NaN propagates through Max.
    let n = f(&[2], &[f32::NAN, 1.]);
    check(
        "Max",
        13,
        vec![],
        &[Some(&n), Some(&b)],
        &[f(&[2], &[f32::NAN, 20.])],
    );
}

#[test]
fn comparisons_logic_and_where() {
    let a = f(&[3], &[1., 2., 3.]);
    let b = f(&[3], &[2., 2., 2.]);
    let bools = |v: &[f64]| t(Bool, &[3], v);
    check(
        "Equal",
        13,
        vec![],
        &[Some(&a), Some(&b)],
        &[bools(&[0., 1., 0.])],
    );
    check(
        "Less",
        13,
        vec![],
        &[Some(&a), Some(&b)],
        &[bools(&[1., 0., 0.])],
    );
    check(
        "Greater",
        13,
        vec![],
        &[Some(&a), Some(&b)],
        &[bools(&[0., 0., 1.])],
    );
    let c = bools(&[1., 0., 1.]);
    check("Not", 13, vec![], &[Some(&c)], &[bools(&[0., 1., 0.])]);
    let y = f(&[], &[-1.]);
    check(
        "Where",
        16,
        vec![],
        &[Some(&c), Some(&a), Some(&y)],
        &[f(&[3], &[1., -1., 3.])],
    );
    let ia = t(Int32, &[2], &[1., 5.]);
    let ib = t(Int32, &[1], &[5.]);
    check(
        "Equal",
        13,
        vec![],
        &[Some(&ia), Some(&ib)],
        &[t(Bool, &[2], &[0., 1.])],
    );
}

#[test]
fn f64_and_f16_keep_their_type() {
    use ssc_ir::DataType::{Double, Float16};
    let x = t(Double, &[2], &[1e-300, 2.]);
    check(
        "Sqrt",
        13,
        vec![],
        &[Some(&x)],
        &[t(Double, &[2], &[1e-150, 2f64.sqrt()])],
    );
    let h = t(Float16, &[2], &[1., 2.]);
    check(
        "Add",
        14,
        vec![],
        &[Some(&h), Some(&h)],
        &[t(Float16, &[2], &[2., 4.])],
    );
}
