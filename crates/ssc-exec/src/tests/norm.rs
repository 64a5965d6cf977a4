//! BatchNormalization (spatial and legacy per-element), InstanceNormalization, LRN.

use super::{check, f, A};

#[test]
fn batch_norm_per_channel() {
    // (x - mean) / sqrt(var + eps) * scale + B: (1 - 0) / 1 * 1 + 0 and (2 - 1) / 2 * 2 + 1.
    let x = f(&[1, 2, 1, 1], &[1., 2.]);
    let p = |v: [f32; 2]| f(&[2], &v);
    let (s, b, m, v) = (p([1., 2.]), p([0., 1.]), p([0., 1.]), p([1., 4.]));
    check(
        "BatchNormalization",
        15,
        vec![A::float("epsilon", 0.)],
        &[Some(&x), Some(&s), Some(&b), Some(&m), Some(&v)],
        &[f(&[1, 2, 1, 1], &[1., 2.])],
    );
}

#[test]
fn batch_norm_spatial_0_is_per_position() {
    let x = f(&[2, 1, 2], &[1., 2., 3., 4.]);
    let s = f(&[1, 2], &[1., 10.]);
    let z = f(&[1, 2], &[0., 0.]);
    let one = f(&[1, 2], &[1., 1.]);
    check(
        "BatchNormalization",
        7,
        vec![A::int("spatial", 0), A::float("epsilon", 0.)],
        &[Some(&x), Some(&s), Some(&z), Some(&z), Some(&one)],
        &[f(&[2, 1, 2], &[1., 20., 3., 40.])],
    );
}

#[test]
fn instance_norm_and_lrn() {
    let x = f(&[1, 1, 2], &[1., 3.]);
    let one = f(&[1], &[1.]);
    let zero = f(&[1], &[0.]);
    check(
        "InstanceNormalization",
        6,
        vec![A::float("epsilon", 0.)],
        &[Some(&x), Some(&one), Some(&zero)],
        &[f(&[1, 1, 2], &[-1., 1.])],
    );
    // size 3, alpha / size = 1, beta 1, bias 1: 1 / (1 + 1 + 4), 2 / (1 + 14), 3 / (1 + 13).
    let x = f(&[1, 3, 1, 1], &[1., 2., 3.]);
    check(
        "LRN",
        13,
        vec![
            A::int("size", 3),
            A::float("alpha", 3.),
            A::float("beta", 1.),
        ],
        &[Some(&x)],
        &[f(&[1, 3, 1, 1], &[1. / 6., 2. / 15., 3. / 14.])],
    );
}
