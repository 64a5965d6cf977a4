//! TopK (ties, NaN, smallest, k = 0, the opset 1 attribute form) and NonMaxSuppression (both
//! box formats, thresholds, per-class limits, swapped corners).

use super::{check, f, fails, i, A};

#[test]
fn top_k_ties_go_to_the_lower_index() {
    // [3, 1, 3, 2]: largest 2 are 3@0, 3@2; smallest 2 are 1@1, 2@3.
    let x = f(&[1, 4], &[3., 1., 3., 2.]);
    let k = i(&[1], &[2]);
    check(
        "TopK",
        11,
        vec![],
        &[Some(&x), Some(&k)],
        &[f(&[1, 2], &[3., 3.]), i(&[1, 2], &[0, 2])],
    );
    check(
        "TopK",
        11,
        vec![A::int("largest", 0)],
        &[Some(&x), Some(&k)],
        &[f(&[1, 2], &[1., 2.]), i(&[1, 2], &[1, 3])],
    );
    // NaN ranks above every number; axis 0 (negative: -2).
    let x = f(&[3, 1], &[1., f32::NAN, 5.]);
    let got = super::run(
        "TopK",
        11,
        vec![A::int("axis", -2)],
        &[Some(&x), Some(&i(&[1], &[2]))],
        2,
    )
    .unwrap();
    assert!(got[0].to_f64_vec().unwrap()[0].is_nan());
    assert_eq!(got[1], i(&[2, 1], &[1, 2]));
}

#[test]
fn top_k_edge_forms() {
    let x = f(&[3], &[2., 7., 5.]);
    // k = 0 gives empty outputs; opset 1 reads k from the attribute.
    check(
        "TopK",
        11,
        vec![],
        &[Some(&x), Some(&i(&[1], &[0]))],
        &[f(&[0], &[]), i(&[0], &[])],
    );
    check(
        "TopK",
        1,
        vec![A::int("k", 1)],
        &[Some(&x)],
        &[f(&[1], &[7.]), i(&[1], &[1])],
    );
    let e = fails("TopK", 11, vec![], &[Some(&x), Some(&i(&[1], &[4]))]);
    assert!(e.contains("k 4 is outside [0, 3]"), "{e}");
}

#[test]
fn nms_selects_by_score_and_iou() {
    // Three boxes [y1, x1, y2, x2]: box 1 lies inside box 0 with IoU 0.81 / 1 = 0.81, box 2 is
    // apart. Scores 0.9, 0.95, 0.5: box 1 first, box 0 suppressed at iou 0.5, box 2 kept.
    let boxes = f(
        &[1, 3, 4],
        &[0., 0., 1., 1., 0.1, 0.1, 1.0, 1.0, 5., 5., 6., 6.],
    );
    let scores = f(&[1, 1, 3], &[0.9, 0.95, 0.5]);
    let max = i(&[1], &[10]);
    let iou = f(&[1], &[0.5]);
    check(
        "NonMaxSuppression",
        11,
        vec![],
        &[Some(&boxes), Some(&scores), Some(&max), Some(&iou)],
        &[i(&[2, 3], &[0, 0, 1, 0, 0, 2])],
    );
    // A score threshold of 0.5 is strict: box 2 (0.5) goes; at iou 0.85 box 0 survives.
    let hi = f(&[1], &[0.85]);
    let st = f(&[1], &[0.5]);
    check(
        "NonMaxSuppression",
        11,
        vec![],
        &[
            Some(&boxes),
            Some(&scores),
            Some(&max),
            Some(&hi),
            Some(&st),
        ],
        &[i(&[2, 3], &[0, 0, 1, 0, 0, 0])],
    );
    // One box per class at most; no max input selects nothing.
    let one = i(&[1], &[1]);
    check(
        "NonMaxSuppression",
        11,
        vec![],
        &[Some(&boxes), Some(&scores), Some(&one), Some(&iou)],
        &[i(&[1, 3], &[0, 0, 1])],
    );
    check(
        "NonMaxSuppression",
        11,
        vec![],
        &[Some(&boxes), Some(&scores)],
        &[i(&[0, 3], &[])],
    );
}

#[test]
fn nms_center_point_boxes_and_swapped_corners() {
    // The same boxes as centres and sizes: [x_c, y_c, w, h]. Equal scores: the lower index first.
    let boxes = f(
        &[1, 3, 4],
        &[0.5, 0.5, 1., 1., 0.55, 0.55, 0.9, 0.9, 5.5, 5.5, 1., 1.],
    );
    let scores = f(&[1, 1, 3], &[0.9, 0.9, 0.9]);
    let max = i(&[1], &[10]);
    let iou = f(&[1], &[0.5]);
    check(
        "NonMaxSuppression",
        11,
        vec![A::int("center_point_box", 1)],
        &[Some(&boxes), Some(&scores), Some(&max), Some(&iou)],
        &[i(&[2, 3], &[0, 0, 0, 0, 0, 2])],
    );
    // Corner boxes may list either corner first.
    let swapped = f(&[1, 2, 4], &[1., 1., 0., 0., 0., 0., 1., 1.]);
    let scores = f(&[1, 1, 2], &[0.8, 0.7]);
    check(
        "NonMaxSuppression",
        11,
        vec![],
        &[Some(&swapped), Some(&scores), Some(&max), Some(&iou)],
        &[i(&[1, 3], &[0, 0, 0])],
    );
    let e = fails(
        "NonMaxSuppression",
        11,
        vec![A::int("center_point_box", 2)],
        &[Some(&swapped), Some(&scores)],
    );
    assert!(e.contains("center_point_box must be 0 or 1"), "{e}");
}
