//! Pools: ceil_mode, count_include_pad, auto_pad, dilations, Indices, global and 3-D.

use super::{check, f, i, A};

#[test]
fn max_pool_with_indices() {
    let x = f(
        &[1, 1, 4, 4],
        &(1..=16).map(|v| v as f32).collect::<Vec<_>>(),
    );
    check(
        "MaxPool",
        12,
        vec![
            A::ints("kernel_shape", vec![2, 2]),
            A::ints("strides", vec![2, 2]),
        ],
        &[Some(&x)],
        &[
            f(&[1, 1, 2, 2], &[6., 8., 14., 16.]),
            i(&[1, 1, 2, 2], &[5, 7, 13, 15]),
        ],
    );
    // Column-major indices: element (h, w) is h + 4 * w.
    check(
        "MaxPool",
        12,
        vec![
            A::ints("kernel_shape", vec![2, 2]),
            A::ints("strides", vec![2, 2]),
            A::int("storage_order", 1),
        ],
        &[Some(&x)],
        &[
            f(&[1, 1, 2, 2], &[6., 8., 14., 16.]),
            i(&[1, 1, 2, 2], &[5, 13, 7, 15]),
        ],
    );
}

#[test]
fn max_pool_ceil_mode() {
    let k2s2 = |ceil: i64| {
        vec![
            A::ints("kernel_shape", vec![2]),
            A::ints("strides", vec![2]),
            A::int("ceil_mode", ceil),
        ]
    };
    let x = f(&[1, 1, 5], &[1., 2., 3., 4., 5.]);
    check(
        "MaxPool",
        12,
        k2s2(0),
        &[Some(&x)],
        &[f(&[1, 1, 2], &[2., 4.])],
    );
    // The third window [x4] hangs over the end.
    check(
        "MaxPool",
        12,
        k2s2(1),
        &[Some(&x)],
        &[f(&[1, 1, 3], &[2., 4., 5.])],
    );
    // in 3, pads [1, 1]: ceil((5 - 2) / 2) + 1 = 3, but the third window would start at 4,
    // inside the end padding, so it is dropped: windows [pad, x0] and [x1, x2].
    let x = f(&[1, 1, 3], &[1., 2., 3.]);
    let mut attrs = k2s2(1);
    attrs.push(A::ints("pads", vec![1, 1]));
    check(
        "MaxPool",
        12,
        attrs,
        &[Some(&x)],
        &[f(&[1, 1, 2], &[1., 3.])],
    );
}

#[test]
fn max_pool_dilations() {
    // Span 3: (x0, x2), (x1, x3), (x2, x4).
    let x = f(&[1, 1, 5], &[5., 1., 4., 2., 3.]);
    check(
        "MaxPool",
        12,
        vec![
            A::ints("kernel_shape", vec![2]),
            A::ints("dilations", vec![2]),
        ],
        &[Some(&x)],
        &[f(&[1, 1, 3], &[5., 2., 4.])],
    );
}

#[test]
fn average_pool_count_include_pad() {
    let x = f(&[1, 1, 3], &[1., 2., 3.]);
    let attrs = |inc: i64| {
        vec![
            A::ints("kernel_shape", vec![3]),
            A::ints("pads", vec![1, 1]),
            A::int("count_include_pad", inc),
        ]
    };
    // Windows [pad, 1, 2], [1, 2, 3], [2, 3, pad].
    check(
        "AveragePool",
        11,
        attrs(1),
        &[Some(&x)],
        &[f(&[1, 1, 3], &[1., 2., 5. / 3.])],
    );
    check(
        "AveragePool",
        11,
        attrs(0),
        &[Some(&x)],
        &[f(&[1, 1, 3], &[1.5, 2., 2.5])],
    );
}

#[test]
fn average_pool_ceil_mode_does_not_count_beyond_the_pads() {
    let x = f(&[1, 1, 5], &[1., 2., 3., 4., 5.]);
    check(
        "AveragePool",
        11,
        vec![
            A::ints("kernel_shape", vec![2]),
            A::ints("strides", vec![2]),
            A::int("ceil_mode", 1),
            A::int("count_include_pad", 1),
        ],
        &[Some(&x)],
        &[f(&[1, 1, 3], &[1.5, 3.5, 5.])],
    );
}

#[test]
fn average_pool_same_lower_and_upper() {
    let x = f(&[1, 1, 4], &[1., 2., 3., 4.]);
    let attrs = |mode: &str| {
        vec![
            A::ints("kernel_shape", vec![2]),
            A::string("auto_pad", mode),
        ]
    };
    check(
        "AveragePool",
        11,
        attrs("SAME_LOWER"),
        &[Some(&x)],
        &[f(&[1, 1, 4], &[1., 1.5, 2.5, 3.5])],
    );
    check(
        "AveragePool",
        11,
        attrs("SAME_UPPER"),
        &[Some(&x)],
        &[f(&[1, 1, 4], &[1.5, 2.5, 3.5, 4.])],
    );
}

#[test]
fn global_and_3d_pools() {
    let x = f(&[1, 2, 2, 2], &[1., 2., 3., 4., 5., 6., 7., 8.]);
    check(
        "GlobalAveragePool",
        11,
        vec![],
        &[Some(&x)],
        &[f(&[1, 2, 1, 1], &[2.5, 6.5])],
    );
    check(
        "GlobalMaxPool",
        11,
        vec![],
        &[Some(&x)],
        &[f(&[1, 2, 1, 1], &[4., 8.])],
    );
    let x = f(&[1, 1, 2, 2, 2], &[1., 2., 3., 4., 5., 6., 7., 8.]);
    check(
        "AveragePool",
        11,
        vec![A::ints("kernel_shape", vec![2, 2, 2])],
        &[Some(&x)],
        &[f(&[1, 1, 1, 1, 1], &[4.5])],
    );
}
