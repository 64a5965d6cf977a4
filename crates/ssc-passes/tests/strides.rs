//! `unit_window_strides`: a stride on a Conv axis that holds exactly one window becomes 1, and
//! the output is bit-identical through the reference executor; the near misses (one more input
//! column, `auto_pad`, an unknown extent) keep their strides.

mod common;

use common::{execute, Rng, G};
use ssc_ir::{Attribute, Tensor};

/// `x[1, 2, h, w]` through a Conv with a `[3, 2, kh, kw]` weight and `attrs`; returns the
/// pass's count, the strides after it, and whether the executor's output is unchanged.
fn conv(h: usize, w: usize, kernel: [usize; 2], attrs: Vec<Attribute>) -> (usize, Vec<i64>, bool) {
    let mut rng = Rng::new(7);
    let mut g = G::new(17);
    g.input("x", &format!("float[1,2,{h},{w}]"));
    let wn = 3 * 2 * kernel[0] * kernel[1];
    g.init(
        "w",
        Tensor::from_f32(
            vec![3, 2, kernel[0], kernel[1]],
            &rng.vec_f32(wn, -1.0, 1.0),
        ),
    );
    g.init("b", Tensor::from_f32(vec![3], &rng.vec_f32(3, -1.0, 1.0)));
    g.op_a("Conv", &["x", "w", "b"], &["y"], attrs);
    g.outputs(&["y"]);
    let x = Tensor::from_f32(vec![1, 2, h, w], &rng.vec_f32(2 * h * w, -1.0, 1.0));
    let feeds = [("x".to_string(), x)];
    let before = execute(&g.m, &feeds);
    let n = g.run("unit_window_strides").get("unit_window_strides");
    let after = execute(&g.m, &feeds);
    let gr = &g.m.graph;
    let (op, _) = gr.producer(gr.value_by_name("y").unwrap()).unwrap();
    let strides = gr
        .op(op)
        .desc
        .get_ints("strides")
        .unwrap()
        .map(<[i64]>::to_vec)
        .unwrap_or_default();
    (n, strides, before == after)
}

#[test]
fn a_stride_on_a_one_window_axis_becomes_one() {
    // The fuzzer's case (seed 5908): W = 3, kw = 3, stride 2 on W, one output column.
    let (n, s, same) = conv(4, 3, [2, 3], vec![Attribute::ints("strides", vec![1, 2])]);
    assert_eq!((n, s.as_slice(), same), (1, &[1, 1][..], true));
    // With padding and dilation: 2 + 1 + 1 = 4 = 2 * (3 - 1): one window, on both axes.
    let attrs = vec![
        Attribute::ints("strides", vec![3, 2]),
        Attribute::ints("pads", vec![1, 1, 1, 1]),
        Attribute::ints("dilations", vec![2, 2]),
    ];
    let (n, s, same) = conv(3, 3, [2, 3], attrs);
    assert_eq!(
        (n, s.as_slice(), same),
        (1, &[3, 1][..], true),
        "H: 3 + 2 - 2 - 1 = 2 > 0 keeps 3"
    );
}

#[test]
fn an_unread_end_pad_is_trimmed_to_make_one_window_exact() {
    // W = 2 padded by 3 + 3 is 8, one window of 7 at stride 3: the last padded position is
    // never read, so the end pad drops to 2 and the stride to 1 (the fuzzer's seed 10256).
    let attrs = vec![
        Attribute::ints("strides", vec![1, 3]),
        Attribute::ints("pads", vec![0, 3, 0, 3]),
    ];
    let (n, s, same) = conv(5, 2, [3, 7], attrs);
    assert_eq!((n, s.as_slice(), same), (1, &[1, 1][..], true));
}

#[test]
fn near_misses_keep_their_strides() {
    // One more input column: two windows at stride 1, one at stride 2, and the unread column
    // is input, not padding: the stride stays.
    let (n, s, _) = conv(4, 4, [2, 3], vec![Attribute::ints("strides", vec![1, 2])]);
    assert_eq!((n, s.as_slice()), (0, &[1, 2][..]));
    // Two windows (rest 2 >= stride 2): not one window, left alone.
    let attrs = vec![
        Attribute::ints("strides", vec![1, 2]),
        Attribute::ints("pads", vec![0, 0, 0, 2]),
    ];
    let (n, _, _) = conv(4, 3, [2, 3], attrs);
    assert_eq!(n, 0);
    // auto_pad decides the padding itself: left alone.
    let attrs = vec![
        Attribute::ints("strides", vec![1, 2]),
        Attribute::string("auto_pad", "VALID"),
    ];
    let (n, _, _) = conv(4, 3, [2, 3], attrs);
    assert_eq!(n, 0);
    // Stride 1 already: nothing to do.
    let (n, _, _) = conv(4, 3, [2, 3], vec![]);
    assert_eq!(n, 0);
}

#[test]
fn an_unknown_extent_keeps_the_stride() {
    let mut g = G::new(17);
    g.input("x", "float[1,2,4,W]");
    g.init("w", Tensor::from_f32(vec![3, 2, 2, 3], &[0.5; 36]));
    g.op_a(
        "Conv",
        &["x", "w"],
        &["y"],
        vec![Attribute::ints("strides", vec![1, 2])],
    );
    g.outputs(&["y"]);
    assert_eq!(g.run("unit_window_strides").get("unit_window_strides"), 0);
}
