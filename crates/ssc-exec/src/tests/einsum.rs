//! Einsum (explicit and implicit outputs, traces, diagonals, ellipsis broadcasting, integer
//! wrapping) and GridSample (every mode, padding and alignment on hand-sized images).

use super::{check, f, fails, i, A};

fn eq(s: &str) -> A {
    A::string("equation", s)
}

#[test]
fn einsum_products_and_contractions() {
    let a = f(&[2, 3], &[1., 2., 3., 4., 5., 6.]);
    let b = f(&[3, 2], &[1., 0., 0., 1., 1., 1.]);
    // Matrix product: [[1 + 3, 2 + 3], [4 + 6, 5 + 6]].
    check(
        "Einsum",
        12,
        vec![eq("ij,jk->ik")],
        &[Some(&a), Some(&b)],
        &[f(&[2, 2], &[4., 5., 10., 11.])],
    );
    // Implicit output: labels used once (i, k) in alphabetical order, so "jk,ij" is the same.
    check(
        "Einsum",
        12,
        vec![eq("jk,ij")],
        &[Some(&b), Some(&a)],
        &[f(&[2, 2], &[4., 5., 10., 11.])],
    );
    // Transpose, sum over all, outer product.
    check(
        "Einsum",
        12,
        vec![eq("ij->ji")],
        &[Some(&a)],
        &[f(&[3, 2], &[1., 4., 2., 5., 3., 6.])],
    );
    check(
        "Einsum",
        12,
        vec![eq("ij->")],
        &[Some(&a)],
        &[f(&[], &[21.])],
    );
    let u = f(&[2], &[1., 2.]);
    check(
        "Einsum",
        12,
        vec![eq("i,j")],
        &[Some(&u), Some(&u)],
        &[f(&[2, 2], &[1., 2., 2., 4.])],
    );
}

#[test]
fn einsum_repeated_labels_and_ellipsis() {
    let m = f(&[2, 2], &[1., 2., 3., 4.]);
    check("Einsum", 12, vec![eq("ii")], &[Some(&m)], &[f(&[], &[5.])]);
    check(
        "Einsum",
        12,
        vec![eq("ii->i")],
        &[Some(&m)],
        &[f(&[2], &[1., 4.])],
    );
    // Batch dims under "...", broadcast from 1 to 2.
    let x = f(&[1, 1, 2], &[1., 2.]);
    let y = f(&[2, 2, 1], &[1., 1., 2., 3.]);
    check(
        "Einsum",
        12,
        vec![eq("...ij,...jk->...ik")],
        &[Some(&x), Some(&y)],
        &[f(&[2, 1, 1], &[3., 8.])],
    );
    // Integers wrap like C: 2^62 * 4 = 2^64 -> 0 in int64.
    let big = i(&[1], &[1 << 62]);
    let four = i(&[1], &[4]);
    check(
        "Einsum",
        12,
        vec![eq("i,i->")],
        &[Some(&big), Some(&four)],
        &[i(&[], &[0])],
    );
    let e = fails("Einsum", 12, vec![eq("ij,jk->ik")], &[Some(&m), Some(&x)]);
    assert!(e.contains("does not fit an operand of rank 3"), "{e}");
    let e = fails("Einsum", 12, vec![eq("ij->iz")], &[Some(&m)]);
    assert!(e.contains("output label `z` is in no operand"), "{e}");
}

#[test]
fn grid_sample_modes_and_padding() {
    // A 1x1x2x2 image [[1, 2], [3, 4]].
    let img = f(&[1, 1, 2, 2], &[1., 2., 3., 4.]);
    let at = |x: f32, y: f32| f(&[1, 1, 1, 2], &[x, y]);
    let run = |attrs: Vec<A>, grid: &ssc_ir::Tensor, want: f32| {
        check(
            "GridSample",
            20,
            attrs,
            &[Some(&img), Some(grid)],
            &[f(&[1, 1, 1, 1], &[want])],
        )
    };
    // The centre (0, 0) is the mean of all four pixels with bilinear sampling.
    run(vec![], &at(0., 0.), 2.5);
    // align_corners: (-1, -1) is pixel (0, 0) itself; without it, the corner of the pixel,
    // a quarter of it under zero padding, all of it under border padding.
    run(vec![A::int("align_corners", 1)], &at(-1., -1.), 1.);
    run(vec![], &at(-1., -1.), 0.25);
    run(vec![A::string("padding_mode", "border")], &at(-1., -1.), 1.);
    // Nearest rounds half to even: x = ((0 + 1) * 2 - 1) / 2 = 0.5 -> 0; y likewise.
    run(vec![A::string("mode", "nearest")], &at(0., 0.), 1.);
    // Reflection: x = -1.5 (normalised -2, no align) reflects about -0.5 to 0.5.
    run(
        vec![A::string("padding_mode", "reflection")],
        &at(-2., -1.),
        0.5 * 1. + 0.5 * 2.,
    );
    // Bicubic at a pixel centre is that pixel exactly.
    run(
        vec![A::string("mode", "cubic"), A::int("align_corners", 1)],
        &at(1., -1.),
        2.,
    );
    let bad = f(&[1, 1, 1, 3], &[0., 0., 0.]);
    let e = fails("GridSample", 20, vec![], &[Some(&img), Some(&bad)]);
    assert!(
        e.contains("must be [N, C, D1..Dr] and [N, O1..Or, r]"),
        "{e}"
    );
}
