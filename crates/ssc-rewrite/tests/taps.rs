//! Rule `plus-taps-split` (family c): `+`-shaped taps become a `k x 1` conv over the centre
//! column plus dilated `1 x n` convs over the rest of the centre row (only its non-zero taps). Positive fixtures are rewritten
//! under MAC costs and checked for the form, the MACs and numerically against the original
//! through the reference executor; near misses must stay untouched.

mod common;

use common::*;

/// Tap `t` of a `k x k` kernel lies on the centre row or column.
fn plus(k: usize) -> impl Fn(usize, usize, usize) -> bool {
    move |_, _, t| t / k == k / 2 || t % k == k / 2
}

fn attrs(pad: i64, stride: i64) -> Attrs {
    Attrs {
        pads: vec![pad; 4],
        strides: vec![stride; 2],
        ..Attrs::default()
    }
}

#[test]
fn plus_3x3_becomes_column_plus_row() {
    let m = conv_model(
        weight(8, 8, 3, 1, plus(3)),
        true,
        &attrs(1, 1),
        [2, 8, 9, 9],
    );
    let (after, r) = check(&m, Some("Conv 3x1 dense + Conv 1x2 dense"));
    assert_eq!(op_types(&after), ["Conv", "Conv", "Add"]);
    let g = &after.graph;
    let row = &g.op(g.topo_order().unwrap()[1]).desc;
    assert_eq!(row.get_ints("kernel_shape").unwrap(), Some(&[1i64, 2][..]));
    assert_eq!(row.get_ints("dilations").unwrap(), Some(&[1i64, 2][..]));
    assert_eq!(row.get_ints("pads").unwrap(), Some(&[0i64, 1, 0, 1][..]));
    let l = &r.layers[0];
    assert_eq!(l.rules_fired, ["plus-taps-split"]);
    // 9 taps per (o, i) -> 3 + 2 (the row conv skips the centre with dilation 2: exactly the 5
    // non-zero taps), plus one Add per output element (2 x 8 x 9 x 9).
    let px = 2 * 9 * 9;
    assert_eq!(l.macs_before, 8 * 8 * 9 * px);
    assert_eq!(l.macs_after, 8 * 8 * (3 + 2) * px + 8 * px);
}

#[test]
fn plus_5x5_strided_grouped() {
    // 5x5 '+' with pads 2, stride 2 and two groups: 25 taps -> 5 + 2 + 2, groups kept. The row
    // taps {0, 1, 3, 4} are no single progression that skips the centre, so they become the
    // dilated pairs {0, 3} and {1, 4} (each within the pads), summed by two Adds.
    let mut a = attrs(2, 2);
    a.group = 2;
    let m = conv_model(weight(8, 4, 5, 2, plus(5)), true, &a, [1, 8, 11, 11]);
    let (_, r) = check(&m, Some("Conv 5x1 G=2 + Conv 1x2 G=2 + Conv 1x2 G=2"));
    let l = &r.layers[0];
    let px = 6 * 6;
    assert_eq!(l.macs_before, 8 * 4 * 25 * px);
    assert_eq!(l.macs_after, 8 * 4 * (5 + 2 + 2) * px + 2 * 8 * px);
}

#[test]
fn t_shape_crops_the_column_to_used_rows() {
    // A 'T' (taps 1, 3, 4, 5 of a 3x3): the column branch keeps only the used rows (2x1).
    let m = conv_model(
        weight(8, 8, 3, 3, |_, _, t| matches!(t, 1 | 3 | 4 | 5)),
        false,
        &attrs(1, 1),
        [1, 8, 7, 7],
    );
    // Kernel crop also offers a 2x3 conv (6 taps); the split (2 + 2 and an Add) is cheaper.
    let (_, r) = check(&m, Some("Conv 2x1 dense + Conv 1x2 dense"));
    assert_eq!(r.layers[0].rules_fired, ["kernel-crop", "plus-taps-split"]);
}

#[test]
fn one_sided_arm_falls_back_to_the_zeroed_centre() {
    // A 5x5 '+' whose row lacks column 0: row taps {1, 3, 4}. A conv starting at tap 3 or 4
    // would need a negative begin pad (pads are 2), so every progression holding 3 or 4 must
    // start at 1: {1, 3} or {1, 4}, which leave 4 or 3 alone. The row branch falls back to
    // the cropped 1x4 row (columns 1..5) with the centre zeroed, still exact.
    let m = conv_model(
        weight(8, 8, 5, 7, |_, _, t| {
            matches!(t, 2 | 7 | 11 | 12 | 13 | 14 | 17 | 22)
        }),
        true,
        &attrs(2, 1),
        [1, 8, 9, 9],
    );
    let (_, r) = check(&m, Some("Conv 5x1 dense + Conv 1x4 dense"));
    assert!(r.layers[0]
        .rules_fired
        .contains(&"plus-taps-split".to_string()));
}

#[test]
fn near_miss_one_corner_tap() {
    // One kernel also uses a corner: the union is no longer a '+'.
    let m = conv_model(
        weight(8, 8, 3, 4, |o, i, t| {
            t / 3 == 1 || t % 3 == 1 || (o, i, t) == (3, 5, 0)
        }),
        true,
        &attrs(1, 1),
        [1, 8, 7, 7],
    );
    check(&m, None);
}

#[test]
fn near_miss_without_pads() {
    // Without pads the column conv would need pad -1 on the width axis.
    let m = conv_model(
        weight(8, 8, 3, 5, plus(3)),
        true,
        &attrs(0, 1),
        [1, 8, 7, 7],
    );
    check(&m, None);
}

#[test]
fn near_miss_row_only_is_kernel_crop() {
    // A row alone is a box: kernel-crop handles it, this rule must not fire.
    let m = conv_model(
        weight(8, 8, 3, 6, |_, _, t| t / 3 == 1),
        true,
        &attrs(1, 1),
        [1, 8, 7, 7],
    );
    let (_, r) = check(&m, Some("Conv 1x3 dense"));
    assert_eq!(r.layers[0].rules_fired, ["kernel-crop"]);
}
