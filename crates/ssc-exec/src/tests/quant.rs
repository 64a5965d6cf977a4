//! QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear and the QOperator ops: rounding
//! ties, saturation, per-axis and blocked parameters, zero points and requantisation.

use super::{check, f, fails, t, A};
use ssc_ir::DataType::{Float16, Int32, Int8, Uint16, Uint8};

#[test]
fn quantize_rounds_half_to_even_and_saturates() {
    // x / 1 + 0: -1 saturates to 0, 0.5 -> 0, 1.5 -> 2, 2.5 -> 2 (ties to even), 300 -> 255.
    let x = f(&[6], &[-1., 0., 0.5, 1.5, 2.5, 300.]);
    let one = f(&[], &[1.]);
    check(
        "QuantizeLinear",
        13,
        vec![],
        &[Some(&x), Some(&one)],
        &[t(Uint8, &[6], &[0., 0., 0., 2., 2., 255.])],
    );
    // int8 with zero point -1 and scale 0.5: x / 0.5 = -2, 0, 1, 3, 5, 600 -> -3, -1, 0, 2, 4,
    // 127 (1 is the tie 0.5 * 2 = 1 exactly; 3 is 1.5 / 0.5).
    let zp = t(Int8, &[], &[-1.]);
    let half = f(&[], &[0.5]);
    check(
        "QuantizeLinear",
        13,
        vec![],
        &[Some(&x), Some(&half), Some(&zp)],
        &[t(Int8, &[6], &[-3., -1., 0., 2., 4., 127.])],
    );
    // output_dtype without a zero point (opset 21).
    check(
        "QuantizeLinear",
        21,
        vec![A::int("output_dtype", Uint16.code() as i64)],
        &[Some(&x), Some(&one)],
        &[t(Uint16, &[6], &[0., 0., 0., 2., 2., 300.])],
    );
}

#[test]
fn quantize_per_axis_and_blocked() {
    // Per axis -1 over columns: scales [1, 2], zero points [0, 10].
    let x = f(&[2, 2], &[4., 4., 6., 6.]);
    let s = f(&[2], &[1., 2.]);
    let z = t(Uint8, &[2], &[0., 10.]);
    check(
        "QuantizeLinear",
        13,
        vec![A::int("axis", -1)],
        &[Some(&x), Some(&s), Some(&z)],
        &[t(Uint8, &[2, 2], &[4., 12., 6., 13.])],
    );
    // Blocks of 2 along axis 1 of [1, 5]: scales [1, 2, 4] cover columns {0,1}, {2,3}, {4}.
    let x = f(&[1, 5], &[8., 8., 8., 8., 8.]);
    let s = f(&[1, 3], &[1., 2., 4.]);
    check(
        "QuantizeLinear",
        21,
        vec![A::int("block_size", 2)],
        &[Some(&x), Some(&s)],
        &[t(Uint8, &[1, 5], &[8., 8., 4., 4., 2.])],
    );
    let bad = f(&[1, 2], &[1., 2.]);
    let e = fails(
        "QuantizeLinear",
        21,
        vec![A::int("block_size", 2)],
        &[Some(&x), Some(&bad)],
    );
    assert!(e.contains("does not block [1, 5] along axis 1 by 2"), "{e}");
    let e = fails("QuantizeLinear", 13, vec![], &[Some(&x), Some(&s)]);
    assert!(e.contains("must be one value or 5 values"), "{e}");
}

#[test]
fn dequantize_in_the_scale_type() {
    // (x - 128) * 0.5.
    let x = t(Uint8, &[3], &[0., 128., 255.]);
    let s = f(&[], &[0.5]);
    let z = t(Uint8, &[], &[128.]);
    check(
        "DequantizeLinear",
        13,
        vec![],
        &[Some(&x), Some(&s), Some(&z)],
        &[f(&[3], &[-64., 0., 63.5])],
    );
    // A float16 scale gives a float16 output; int32 input without zero point.
    let x = t(Int32, &[2], &[-7000., 3.]);
    let s = t(Float16, &[], &[0.25]);
    check(
        "DequantizeLinear",
        19,
        vec![],
        &[Some(&x), Some(&s)],
        &[t(Float16, &[2], &[-1750., 0.75])],
    );
    // Per axis 0 on [2, 2].
    let x = t(Int8, &[2, 2], &[1., 2., 3., 4.]);
    let s = f(&[2], &[1., 10.]);
    check(
        "DequantizeLinear",
        13,
        vec![A::int("axis", 0)],
        &[Some(&x), Some(&s)],
        &[f(&[2, 2], &[1., 2., 30., 40.])],
    );
    let z = t(Uint8, &[], &[0.]);
    let e = fails(
        "DequantizeLinear",
        13,
        vec![],
        &[Some(&x), Some(&s), Some(&z)],
    );
    assert!(e.contains("x_zero_point is uint8 but x is int8"), "{e}");
}

#[test]
fn dynamic_quantize_covers_zero() {
    // Range [0, 2.55]: scale 0.01, zero point 0. All-negative [-2.55, -1]: the range widens to
    // [-2.55, 0], so zero point 255.
    let x = f(&[3], &[0., 1., 2.55]);
    check(
        "DynamicQuantizeLinear",
        11,
        vec![],
        &[Some(&x)],
        &[
            t(Uint8, &[3], &[0., 100., 255.]),
            f(&[], &[0.01]),
            t(Uint8, &[], &[0.]),
        ],
    );
    let x = f(&[2], &[-2.55, -1.]);
    check(
        "DynamicQuantizeLinear",
        11,
        vec![],
        &[Some(&x)],
        &[
            t(Uint8, &[2], &[0., 155.]),
            f(&[], &[0.01]),
            t(Uint8, &[], &[255.]),
        ],
    );
}

#[test]
fn integer_conv_and_matmul_subtract_zero_points() {
    // 1x1 conv: (x - 5) * (w - 1) per output channel zero points [1, 3]: w - zp = [2, -1].
    let x = t(Uint8, &[1, 1, 1, 2], &[5., 10.]);
    let w = t(Uint8, &[2, 1, 1, 1], &[3., 2.]);
    let xz = t(Uint8, &[], &[5.]);
    let wz = t(Uint8, &[2], &[1., 3.]);
    check(
        "ConvInteger",
        10,
        vec![],
        &[Some(&x), Some(&w), Some(&xz), Some(&wz)],
        &[t(Int32, &[1, 2, 1, 2], &[0., 10., 0., -5.])],
    );
    // [[1, 2]] x [[3, 4], [5, 6]] with b's zero points per column [1, 2]: b - zp = [[2, 2],
    // [4, 4]] -> [10, 10].
    let a = t(Uint8, &[1, 2], &[1., 2.]);
    let b = t(Uint8, &[2, 2], &[3., 4., 5., 6.]);
    let bz = t(Uint8, &[2], &[1., 2.]);
    check(
        "MatMulInteger",
        10,
        vec![],
        &[Some(&a), Some(&b), None, Some(&bz)],
        &[t(Int32, &[1, 2], &[10., 10.])],
    );
    let bad = t(Int8, &[], &[0.]);
    let e = fails(
        "MatMulInteger",
        10,
        vec![],
        &[Some(&a), Some(&b), Some(&bad)],
    );
    assert!(e.contains("a's zero point is int8 but a is uint8"), "{e}");
}

#[test]
fn qlinear_ops_requantize() {
    // x = [10, 20] (scale 0.5, zp 10), w = 2 (scale 1), bias 4: acc = [4, 24]; multiplier
    // 0.5 * 1 / 2 = 0.25 -> [1, 6], plus y_zp 3 -> [4, 9].
    let x = t(Uint8, &[1, 1, 1, 2], &[10., 20.]);
    let (xs, xz) = (f(&[], &[0.5]), t(Uint8, &[], &[10.]));
    let w = t(Uint8, &[1, 1, 1, 1], &[2.]);
    let (ws, wz) = (f(&[], &[1.]), t(Uint8, &[], &[0.]));
    let (ys, yz) = (f(&[], &[2.]), t(Uint8, &[], &[3.]));
    let b = t(Int32, &[1], &[4.]);
    check(
        "QLinearConv",
        10,
        vec![],
        &[
            Some(&x),
            Some(&xs),
            Some(&xz),
            Some(&w),
            Some(&ws),
            Some(&wz),
            Some(&ys),
            Some(&yz),
            Some(&b),
        ],
        &[t(Uint8, &[1, 1, 1, 2], &[4., 9.])],
    );
    // int8 matmul with per-column b scales [1, 0.5]: acc [[6, -6]] -> [[6, -3]] / y_scale 1,
    // y_zp -125 -> [[-119, -128]] (saturated).
    let a = t(Int8, &[1, 2], &[1., 2.]);
    let b = t(Int8, &[2, 2], &[2., -2., 2., -2.]);
    let one = f(&[], &[1.]);
    let bs = f(&[2], &[1., 0.5]);
    let zero = t(Int8, &[], &[0.]);
    let yz = t(Int8, &[], &[-125.]);
    check(
        "QLinearMatMul",
        10,
        vec![],
        &[
            Some(&a),
            Some(&one),
            Some(&zero),
            Some(&b),
            Some(&bs),
            Some(&zero),
            Some(&one),
            Some(&yz),
        ],
        &[t(Int8, &[1, 2], &[-119., -128.])],
    );
    let bad = f(&[3], &[1., 1., 1.]);
    let e = fails(
        "QLinearMatMul",
        10,
        vec![],
        &[
            Some(&a),
            Some(&one),
            Some(&zero),
            Some(&b),
            Some(&bad),
            Some(&zero),
            Some(&one),
            Some(&yz),
        ],
    );
    assert!(
        e.contains("b_scale [3] must be one value or one per"),
        "{e}"
    );
}
