//! LSTM, GRU and RNN on one hidden unit, where every step can be followed by hand: directions,
//! sequence lengths, peepholes, `input_forget`, `clip`, `linear_before_reset`, activation
//! parameters and `layout`.

use super::{check, f, fails, i, run, t, A};
use ssc_ir::{AttrValue, DataType};

fn strings(name: &str, v: &[&str]) -> A {
    A::new(
        name,
        AttrValue::Strings(v.iter().map(|s| s.as_bytes().to_vec().into()).collect()),
    )
}

fn floats(name: &str, v: &[f32]) -> A {
    A::new(name, AttrValue::Floats(v.to_vec()))
}

/// Affine(1, 0), i.e. the identity, for every gate of every direction.
fn linear(n: usize) -> Vec<A> {
    vec![
        strings("activations", &vec!["Affine"; n]),
        floats("activation_alpha", &vec![1.0; n]),
        floats("activation_beta", &vec![0.0; n]),
    ]
}

#[test]
fn rnn_in_each_direction() {
    // h_t = relu(x_t + 0.5 h_{t-1}) over x = [1, 2, 3]: forward 1, 2.5, 4.25; reverse (from
    // t = 2) 3, 2 + 1.5 = 3.5, 1 + 1.75 = 2.75.
    let x = f(&[3, 1, 1], &[1., 2., 3.]);
    let w = f(&[1, 1, 1], &[1.]);
    let r = f(&[1, 1, 1], &[0.5]);
    let relu = || strings("activations", &["Relu"]);
    check(
        "RNN",
        14,
        vec![relu()],
        &[Some(&x), Some(&w), Some(&r)],
        &[f(&[3, 1, 1, 1], &[1., 2.5, 4.25]), f(&[1, 1, 1], &[4.25])],
    );
    check(
        "RNN",
        14,
        vec![relu(), A::string("direction", "reverse")],
        &[Some(&x), Some(&w), Some(&r)],
        &[f(&[3, 1, 1, 1], &[2.75, 3.5, 3.]), f(&[1, 1, 1], &[2.75])],
    );
    // Bidirectional: Y is [seq, dir, batch, hidden]; one activation list serves both.
    let w2 = f(&[2, 1, 1], &[1., 1.]);
    let r2 = f(&[2, 1, 1], &[0.5, 0.5]);
    check(
        "RNN",
        14,
        vec![relu(), A::string("direction", "bidirectional")],
        &[Some(&x), Some(&w2), Some(&r2)],
        &[
            f(&[3, 2, 1, 1], &[1., 2.75, 2.5, 3.5, 4.25, 3.]),
            f(&[2, 1, 1], &[4.25, 2.75]),
        ],
    );
}

#[test]
fn sequence_lengths_stop_each_row_early() {
    // Row 1 has length 1 forward (h = 1, then zeros) and length 2 in reverse (t = 1 then t = 0:
    // 1, then 1 + 0.5 = 1.5; Y at t = 2 stays zero).
    let x = f(&[3, 2, 1], &[1., 1., 2., 1., 3., 1.]);
    let w = f(&[1, 1, 1], &[1.]);
    let r = f(&[1, 1, 1], &[0.5]);
    let relu = strings("activations", &["Relu"]);
    let lens = t(DataType::Int32, &[2], &[3., 1.]);
    check(
        "RNN",
        14,
        vec![relu.clone()],
        &[Some(&x), Some(&w), Some(&r), None, Some(&lens)],
        &[
            f(&[3, 1, 2, 1], &[1., 1., 2.5, 0., 4.25, 0.]),
            f(&[1, 2, 1], &[4.25, 1.]),
        ],
    );
    let lens = t(DataType::Int32, &[2], &[3., 2.]);
    check(
        "RNN",
        14,
        vec![relu.clone(), A::string("direction", "reverse")],
        &[Some(&x), Some(&w), Some(&r), None, Some(&lens)],
        &[
            f(&[3, 1, 2, 1], &[2.75, 1.5, 3.5, 1., 3., 0.]),
            f(&[1, 2, 1], &[2.75, 1.5]),
        ],
    );
    // An empty sequence leaves a zero state, not the initial one (as onnxruntime does).
    let lens = t(DataType::Int32, &[2], &[3., 0.]);
    let h0 = f(&[1, 2, 1], &[0., 7.]);
    check(
        "RNN",
        14,
        vec![relu],
        &[Some(&x), Some(&w), Some(&r), None, Some(&lens), Some(&h0)],
        &[
            f(&[3, 1, 2, 1], &[1., 0., 2.5, 0., 4.25, 0.]),
            f(&[1, 2, 1], &[4.25, 0.]),
        ],
    );
}

#[test]
fn lstm_peepholes_input_forget_and_clip() {
    // Identity activations, W = [i 1, o 2, f 3, c 4], R = 0, P = [i 0.5, o 0.25, f 1], x = 1,
    // c0 = 1: i = 1 + 0.5 = 1.5, f = 3 + 1 = 4, c~ = 4, C = 4 + 1.5 * 4 = 10,
    // o = 2 + 0.25 * 10 = 4.5, H = 45.
    let x = f(&[1, 1, 1], &[1.]);
    let w = f(&[1, 4, 1], &[1., 2., 3., 4.]);
    let r = f(&[1, 4, 1], &[0.; 4]);
    let c0 = f(&[1, 1, 1], &[1.]);
    let p = f(&[1, 3], &[0.5, 0.25, 1.]);
    let ins = [
        Some(&x),
        Some(&w),
        Some(&r),
        None,
        None,
        None,
        Some(&c0),
        Some(&p),
    ];
    let out = |h: f32, c: f32| {
        [
            f(&[1, 1, 1, 1], &[h]),
            f(&[1, 1, 1], &[h]),
            f(&[1, 1, 1], &[c]),
        ]
    };
    check("LSTM", 14, linear(3), &ins, &out(45., 10.));
    // input_forget: f = 1 - i = -0.5, C = -0.5 + 6 = 5.5, o = 2 + 1.375, H = 3.375 * 5.5.
    let mut attrs = linear(3);
    attrs.push(A::int("input_forget", 1));
    check("LSTM", 14, attrs, &ins, &out(18.5625, 5.5));
    // clip = 3 bounds every pre-activation but not the cell: f = 3, c~ = 3, C = 3 + 4.5 = 7.5,
    // o = min(2 + 1.875, 3) = 3, H = 22.5.
    let mut attrs = linear(3);
    attrs.push(A::float("clip", 3.0));
    check("LSTM", 14, attrs, &ins, &out(22.5, 7.5));
}

#[test]
fn gru_linear_before_reset() {
    // W = [z 0.5, r 2, h 2], Rh = 3, Rbh = 1, h0 = 2, x = 1, identity activations: z = 0.5,
    // r = 2; h~ = 2 + (2 * 2) * 3 + 1 = 15, or with linear_before_reset 2 + 2 * (2 * 3 + 1) = 16;
    // H = 0.5 h~ + 0.5 * 2.
    let x = f(&[1, 1, 1], &[1.]);
    let w = f(&[1, 3, 1], &[0.5, 2., 2.]);
    let r = f(&[1, 3, 1], &[0., 0., 3.]);
    let b = f(&[1, 6], &[0., 0., 0., 0., 0., 1.]);
    let h0 = f(&[1, 1, 1], &[2.]);
    let ins = [Some(&x), Some(&w), Some(&r), Some(&b), None, Some(&h0)];
    check(
        "GRU",
        14,
        linear(2),
        &ins,
        &[f(&[1, 1, 1, 1], &[8.5]), f(&[1, 1, 1], &[8.5])],
    );
    let mut attrs = linear(2);
    attrs.push(A::int("linear_before_reset", 1));
    check(
        "GRU",
        14,
        attrs,
        &ins,
        &[f(&[1, 1, 1, 1], &[9.]), f(&[1, 1, 1], &[9.])],
    );
}

#[test]
fn activation_parameters_are_consumed_in_order() {
    // Two LeakyRelus and one alpha: the forward direction takes 0.5, the reverse one falls back
    // to the default 0.01. x = -2 on one step: -1 and -0.02.
    let x = f(&[1, 1, 1], &[-2.]);
    let w = f(&[2, 1, 1], &[1., 1.]);
    let r = f(&[2, 1, 1], &[0., 0.]);
    check(
        "RNN",
        14,
        vec![
            A::string("direction", "bidirectional"),
            strings("activations", &["LeakyRelu", "leakyrelu"]),
            floats("activation_alpha", &[0.5]),
        ],
        &[Some(&x), Some(&w), Some(&r)],
        &[
            f(&[1, 2, 1, 1], &[-1., -0.02]),
            f(&[2, 1, 1], &[-1., -0.02]),
        ],
    );
}

#[test]
fn batch_major_layout_is_a_transpose() {
    // The same sequences in [seq, batch, in] and [batch, seq, in]; outputs must match after the
    // same transposition.
    let (seq, batch) = (3, 2);
    let xs: Vec<f32> = (0..seq * batch * 2)
        .map(|k| (k as f32 * 0.37).sin())
        .collect();
    let x0 = f(&[seq, batch, 2], &xs);
    let mut xt = vec![0f32; xs.len()];
    for s in 0..seq {
        for b in 0..batch {
            for k in 0..2 {
                xt[(b * seq + s) * 2 + k] = xs[(s * batch + b) * 2 + k];
            }
        }
    }
    let x1 = f(&[batch, seq, 2], &xt);
    let w = f(
        &[1, 8, 2],
        &(0..16).map(|k| (k as f32 * 0.21).cos()).collect::<Vec<_>>(),
    );
    let r = f(
        &[1, 8, 2],
        &(0..16).map(|k| (k as f32 * 0.13).sin()).collect::<Vec<_>>(),
    );
    let a = run("LSTM", 14, vec![], &[Some(&x0), Some(&w), Some(&r)], 3).unwrap();
    let b = run(
        "LSTM",
        14,
        vec![A::int("layout", 1)],
        &[Some(&x1), Some(&w), Some(&r)],
        3,
    )
    .unwrap();
    assert_eq!(b[0].dims, [batch, seq, 1, 2]);
    assert_eq!(b[1].dims, [batch, 1, 2]);
    let (ya, yb) = (a[0].to_f64_vec().unwrap(), b[0].to_f64_vec().unwrap());
    for s in 0..seq {
        for bi in 0..batch {
            for k in 0..2 {
                assert_eq!(ya[(s * batch + bi) * 2 + k], yb[(bi * seq + s) * 2 + k]);
            }
        }
    }
    assert_eq!(a[2].to_f64_vec(), b[2].to_f64_vec());
}

#[test]
fn empty_sequences_and_bad_inputs() {
    // No time steps: Y is empty and the states are zero.
    let x = f(&[0, 2, 1], &[]);
    let w = f(&[1, 1, 1], &[1.]);
    let r = f(&[1, 1, 1], &[0.5]);
    check(
        "RNN",
        14,
        vec![],
        &[Some(&x), Some(&w), Some(&r)],
        &[f(&[0, 1, 2, 1], &[]), f(&[1, 2, 1], &[0., 0.])],
    );
    let x = f(&[2, 1, 1], &[1., 2.]);
    let e = fails(
        "RNN",
        14,
        vec![strings("activations", &["Swish"])],
        &[Some(&x), Some(&w), Some(&r)],
    );
    assert!(e.contains("unknown activation function `Swish`"), "{e}");
    let lens = i(&[1], &[3]);
    let e = fails(
        "RNN",
        14,
        vec![],
        &[Some(&x), Some(&w), Some(&r), None, Some(&lens)],
    );
    assert!(e.contains("sequence length 3 is outside [0, 2]"), "{e}");
    let w3 = f(&[1, 2, 1], &[1., 1.]);
    let e = fails("RNN", 14, vec![], &[Some(&x), Some(&w3), Some(&r)]);
    assert!(e.contains("W [1, 2, 1] must have shape [1, 1, 1]"), "{e}");
    let e = fails(
        "RNN",
        14,
        vec![A::string("direction", "bidirectional")],
        &[Some(&x), Some(&w), Some(&r)],
    );
    assert!(e.contains("must have shape [2, 1, 1]"), "{e}");
    let xi = i(&[2, 1, 1], &[1, 2]);
    let e = fails("RNN", 14, vec![], &[Some(&xi), Some(&w), Some(&r)]);
    assert!(e.contains("float tensor"), "{e}");
}
