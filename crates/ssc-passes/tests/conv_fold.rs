//! Folding BatchNormalization and per-channel Mul/Add into the preceding Conv, checked
//! numerically against a direct f64 computation and, differentially, through the reference
//! executor; plus the near misses that must not fold.

mod common;

use common::{execute, floats, rel_l2, Rng, G};
use ssc_ir::{Attribute, DataType, Tensor};
use ssc_passes::{run_cleanups, PassOptions};

/// All index tuples of `dims`, in row-major order.
fn indices(dims: &[usize]) -> Vec<Vec<usize>> {
    let mut out = vec![vec![]];
    for &d in dims {
        out = out
            .into_iter()
            .flat_map(|p| {
                (0..d).map(move |i| {
                    let mut q = p.clone();
                    q.push(i);
                    q
                })
            })
            .collect();
    }
    out
}

fn flat(idx: &[usize], dims: &[usize]) -> usize {
    idx.iter().zip(dims).fold(0, |acc, (&i, &d)| acc * d + i)
}

/// Group count, stride and symmetric padding shared by every axis.
#[derive(Clone, Copy)]
struct Geom {
    group: usize,
    stride: usize,
    pad: usize,
}

/// A direct N-d grouped convolution in f64 (no dilation): the reference the folds are checked
/// against.
fn conv_ref(
    x: &[f64],
    xd: &[usize],
    w: &[f64],
    wd: &[usize],
    b: Option<&[f64]>,
    geom: Geom,
) -> Vec<f64> {
    let Geom { group, stride, pad } = geom;
    let (n, m, cg) = (xd[0], wd[0], wd[1]);
    let (sp, k) = (&xd[2..], &wd[2..]);
    let osp: Vec<usize> = sp
        .iter()
        .zip(k)
        .map(|(&i, &k)| (i + 2 * pad - k) / stride + 1)
        .collect();
    let mut out = Vec::new();
    for bi in 0..n {
        for o in 0..m {
            let g = o / (m / group);
            for pos in indices(&osp) {
                let mut acc = b.map_or(0.0, |b| b[o]);
                for ci in 0..cg {
                    let ic = g * cg + ci;
                    for kp in indices(k) {
                        let ip: Option<Vec<usize>> = pos
                            .iter()
                            .zip(&kp)
                            .zip(sp)
                            .map(|((&p, &q), &s)| {
                                let v = (p * stride + q) as isize - pad as isize;
                                (v >= 0 && (v as usize) < s).then_some(v as usize)
                            })
                            .collect();
                        let Some(ip) = ip else { continue };
                        let mut xi = vec![bi, ic];
                        xi.extend(ip);
                        let mut wi = vec![o, ci];
                        wi.extend(&kp);
                        acc += x[flat(&xi, xd)] * w[flat(&wi, wd)];
                    }
                }
                out.push(acc);
            }
        }
    }
    out
}

fn f64s(t: &Tensor) -> Vec<f64> {
    t.to_f64_vec().unwrap()
}

/// The tensor a named input of the folded Conv reads.
fn conv_input(g: &G, out: &str, slot: usize) -> (String, Tensor) {
    let gr = &g.m.graph;
    let (op, _) = gr.producer(gr.value_by_name(out).unwrap()).unwrap();
    let v = gr.op(op).input(slot).unwrap();
    (gr.value(v).name.clone(), gr.initializer(v).unwrap().clone())
}

struct Bn {
    gamma: Vec<f32>,
    beta: Vec<f32>,
    mean: Vec<f32>,
    var: Vec<f32>,
}

fn bn_params(rng: &mut Rng, c: usize) -> Bn {
    Bn {
        gamma: rng.vec_f32(c, 0.5, 1.5),
        beta: rng.vec_f32(c, -0.2, 0.2),
        mean: rng.vec_f32(c, -0.3, 0.3),
        var: rng.vec_f32(c, 0.1, 2.0),
    }
}

/// Conv (+bias) -> BN on input `x` of dims `xd`, the BN writing graph output `out`.
fn conv_bn(
    xd: &[usize],
    wd: &[usize],
    bias: bool,
    group: i64,
    stride: i64,
    pad: i64,
    seed: u64,
) -> (G, Vec<f32>, Option<Vec<f32>>, Bn) {
    let mut rng = Rng::new(seed);
    let mut g = G::new(17);
    let dims: Vec<String> = xd.iter().map(ToString::to_string).collect();
    g.input("x", &format!("float[{}]", dims.join(",")));
    let wn: usize = wd.iter().product();
    let w = rng.vec_f32(wn, -1.0, 1.0);
    g.init("conv.weight", floats(wd, &w));
    let c = wd[0];
    let b = bias.then(|| rng.vec_f32(c, -0.5, 0.5));
    if let Some(b) = &b {
        g.init("conv.bias", floats(&[c], b));
    }
    let p = bn_params(&mut rng, c);
    g.init("bn.weight", floats(&[c], &p.gamma));
    g.init("bn.bias", floats(&[c], &p.beta));
    g.init("bn.mean", floats(&[c], &p.mean));
    g.init("bn.var", floats(&[c], &p.var));
    let sp = wd.len() - 2;
    let attrs = vec![
        Attribute::int("group", group),
        Attribute::ints("strides", vec![stride; sp]),
        Attribute::ints("pads", vec![pad; 2 * sp]),
    ];
    let ins: &[&str] = if bias {
        &["x", "conv.weight", "conv.bias"]
    } else {
        &["x", "conv.weight"]
    };
    g.op_a("Conv", ins, &["c"], attrs);
    g.op_a(
        "BatchNormalization",
        &["c", "bn.weight", "bn.bias", "bn.mean", "bn.var"],
        &["out"],
        vec![Attribute::float("epsilon", 1e-3)],
    );
    g.outputs(&["out"]);
    (g, w, b, p)
}

/// Checks a folded Conv -> BN against f64 BN(conv(x)) computed from the original parameters:
/// the folded weights must be exactly the f64 products rounded once, and the outputs agree.
#[allow(clippy::too_many_arguments)]
fn check_bn_fold(
    xd: &[usize],
    wd: &[usize],
    bias: bool,
    group: usize,
    stride: usize,
    pad: usize,
    seed: u64,
) {
    let (mut g, w, b, p) = conv_bn(xd, wd, bias, group as i64, stride as i64, pad as i64, seed);
    let before = g.m.clone();
    let rep = run_cleanups(&mut g.m, &PassOptions::default()).unwrap();
    assert_eq!(rep.get("folded_bn"), 1);
    assert_eq!(g.ops(), ["Conv"]);
    assert_eq!(g.output_names(), ["out"], "the BN output name survives");
    assert!(
        !g.has("c") && !g.has("bn.mean"),
        "intermediate and BN params removed"
    );

    let c = wd[0];
    let k: usize = wd[1..].iter().product();
    let s: Vec<f64> = (0..c)
        .map(|o| f64::from(p.gamma[o]) / (f64::from(p.var[o]) + f64::from(1e-3f32)).sqrt())
        .collect();
    let (_, wt) = conv_input(&g, "out", 1);
    let want_w: Vec<f32> = w
        .iter()
        .enumerate()
        .map(|(i, &v)| (f64::from(v) * s[i / k]) as f32)
        .collect();
    assert_eq!(
        wt.to_f32_vec().unwrap(),
        want_w,
        "weights: f64 product rounded once"
    );
    let (bname, bt) = conv_input(&g, "out", 2);
    let b0 = |o: usize| b.as_ref().map_or(0.0, |b| f64::from(b[o]));
    let want_b: Vec<f32> = (0..c)
        .map(|o| ((b0(o) - f64::from(p.mean[o])) * s[o] + f64::from(p.beta[o])) as f32)
        .collect();
    assert_eq!(bt.to_f32_vec().unwrap(), want_b);
    assert_eq!(
        bname, "conv.bias",
        "an existing bias is updated in place, a new one named after the weight"
    );

    // Numerically: folded conv versus BN(conv) in f64 from the original parameters. The folded
    // form differs by one f32 rounding of each weight and bias (relative 2^-24 ~ 6e-8 each),
    // so norm-wise relative error far below 1e-6 is expected.
    let mut rng = Rng::new(seed + 1);
    let xs = rng.vec_f32(xd.iter().product(), -1.0, 1.0);
    let x64: Vec<f64> = xs.iter().map(|&v| f64::from(v)).collect();
    let w64: Vec<f64> = w.iter().map(|&v| f64::from(v)).collect();
    let b64: Option<Vec<f64>> = b
        .as_ref()
        .map(|b| b.iter().map(|&v| f64::from(v)).collect());
    let geom = Geom { group, stride, pad };
    let raw = conv_ref(&x64, xd, &w64, wd, b64.as_deref(), geom);
    let per = raw.len() / (xd[0] * c);
    let want: Vec<f64> = raw
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let o = (i / per) % c;
            (v - f64::from(p.mean[o])) * s[o] + f64::from(p.beta[o])
        })
        .collect();
    let got = conv_ref(&x64, xd, &f64s(&wt), wd, Some(&f64s(&bt)), geom);
    let err = rel_l2(&want, &got);
    assert!(err < 1e-6, "relative error {err}");

    // Differentially through the reference executor: same tolerance, same reason (it
    // accumulates convolutions in f64 too).
    let feeds = vec![("x".to_string(), floats(xd, &xs))];
    let (a, z) = (execute(&before, &feeds), execute(&g.m, &feeds));
    let err = rel_l2(&a[0].1, &z[0].1);
    assert!(err < 1e-6, "executor relative error {err}");
}

#[test]
fn bn_folds_into_grouped_2d_conv_with_bias() {
    check_bn_fold(&[2, 4, 6, 6], &[6, 2, 3, 3], true, 2, 2, 1, 1);
}

#[test]
fn bn_folds_into_1d_and_3d_convs() {
    check_bn_fold(&[1, 3, 9], &[4, 3, 3], true, 1, 1, 1, 2);
    check_bn_fold(&[1, 2, 4, 4, 4], &[3, 2, 2, 2, 2], true, 1, 1, 0, 3);
}

#[test]
fn bn_fold_creates_a_bias_named_after_the_weight() {
    let (mut g, ..) = conv_bn(&[1, 4, 5, 5], &[4, 1, 3, 3], false, 4, 1, 1, 4);
    run_cleanups(&mut g.m, &PassOptions::default()).unwrap();
    let (name, t) = conv_input(&g, "out", 2);
    assert_eq!(name, "conv.bias");
    assert_eq!(t.dims, vec![4]);
}

#[test]
fn bn_fold_keeps_the_weight_type() {
    for dt in [DataType::Double, DataType::Float16] {
        let (mut g, w, ..) = conv_bn(&[1, 2, 4, 4], &[3, 2, 1, 1], true, 1, 1, 0, 5);
        let gr = g.g();
        for name in [
            "conv.weight",
            "conv.bias",
            "bn.weight",
            "bn.bias",
            "bn.mean",
            "bn.var",
        ] {
            let v = gr.value_by_name(name).unwrap();
            let t = gr.initializer(v).unwrap();
            let vals = f64s(t);
            gr.set_initializer(v, Tensor::from_f64_as(dt, t.dims.clone(), &vals).unwrap());
        }
        assert_eq!(
            run_cleanups(&mut g.m, &PassOptions::default())
                .unwrap()
                .get("folded_bn"),
            1
        );
        let (_, wt) = conv_input(&g, "out", 1);
        assert_eq!(wt.dtype, dt);
        assert_eq!(wt.numel(), w.len());
    }
}

#[test]
fn shared_weights_are_copied_not_mutated() {
    let mut rng = Rng::new(6);
    let mut g = G::new(17);
    g.input("x", "float[1,2,3,3]");
    let w = rng.vec_f32(8, -1.0, 1.0);
    g.init("w", floats(&[4, 2, 1, 1], &w));
    for (i, conv_out) in ["c1", "c2"].into_iter().enumerate() {
        let p = bn_params(&mut rng, 4);
        let n = |s: &str| format!("{s}{i}");
        g.init(&n("g"), floats(&[4], &p.gamma));
        g.init(&n("b"), floats(&[4], &p.beta));
        g.init(&n("m"), floats(&[4], &p.mean));
        g.init(&n("v"), floats(&[4], &p.var));
        g.op("Conv", &["x", "w"], &[conv_out]);
        let (gn, bn, mn, vn, on) = (n("g"), n("b"), n("m"), n("v"), n("out"));
        g.op(
            "BatchNormalization",
            &[conv_out, &gn, &bn, &mn, &vn],
            &[&on],
        );
    }
    g.outputs(&["out0", "out1"]);
    let before = g.m.clone();
    let rep = run_cleanups(&mut g.m, &PassOptions::default()).unwrap();
    assert_eq!(rep.get("folded_bn"), 2);
    let (n0, _) = conv_input(&g, "out0", 1);
    let (n1, _) = conv_input(&g, "out1", 1);
    assert_eq!(
        (n0.as_str(), n1.as_str()),
        ("w_folded", "w"),
        "copy while shared, then in place"
    );
    let mut rng = Rng::new(7);
    let feeds = vec![(
        "x".to_string(),
        floats(&[1, 2, 3, 3], &rng.vec_f32(18, -1.0, 1.0)),
    )];
    let (a, z) = (execute(&before, &feeds), execute(&g.m, &feeds));
    for i in 0..2 {
        assert!(rel_l2(&a[i].1, &z[i].1) < 1e-6);
    }
}

#[test]
fn legacy_ir_lists_the_new_bias_as_an_input() {
    let (g0, ..) = conv_bn(&[1, 2, 3, 3], &[2, 2, 1, 1], false, 1, 1, 0, 8);
    let mut g = G::with_ir(7, 3);
    g.m.graph = g0.m.graph.clone();
    g.m.graph.legacy_initializer_inputs = true;
    let mut ins = g.m.graph.inputs().to_vec();
    ins.extend(g.m.graph.initializer_ids());
    g.m.graph.set_inputs(ins);
    assert_eq!(
        run_cleanups(&mut g.m, &PassOptions::default())
            .unwrap()
            .get("folded_bn"),
        1
    );
    assert_eq!(g.input_names(), ["x", "conv.weight", "conv.bias"]);
}

#[test]
fn bn_near_misses_are_left_alone() {
    // (description, how to break the pattern)
    type Breaker = fn(&mut G);
    let cases: &[(&str, Breaker)] = &[
        ("conv output has a second consumer", |g| {
            g.op("Relu", &["c"], &["side"]);
            g.outputs(&["out", "side"]);
        }),
        ("conv output is a graph output", |g| {
            g.outputs(&["out", "c"])
        }),
        ("BN statistics outputs are used", |g| {
            let gr = g.g();
            let bn = gr.producer(gr.value_by_name("out").unwrap()).unwrap().0;
            let m = gr.add_value("running_mean", None).unwrap();
            gr.set_output(bn, 1, Some(m)).unwrap();
            g.outputs(&["out", "running_mean"]);
        }),
        ("scale has the wrong length", |g| {
            let v = g.v("bn.weight");
            g.g().set_initializer(v, floats(&[3], &[1.0; 3]));
        }),
        ("variance is a graph input", |g| {
            let v = g.v("bn.var");
            g.g().remove_initializer(v);
            g.input("bn.var", "float[4]");
        }),
        ("variance + epsilon is not positive", |g| {
            let v = g.v("bn.var");
            g.g().set_initializer(v, floats(&[4], &[-1.0; 4]));
        }),
        ("weight is an overridable input", |g| {
            g.input("conv.weight", "float[4,4,1,1]");
        }),
        ("training mode", |g| {
            let gr = g.g();
            let bn = gr.producer(gr.value_by_name("out").unwrap()).unwrap().0;
            gr.desc_mut(bn).set_attr(Attribute::int("training_mode", 1));
        }),
    ];
    for (what, breaker) in cases {
        let (mut g, ..) = conv_bn(&[1, 4, 3, 3], &[4, 4, 1, 1], true, 1, 1, 0, 9);
        breaker(&mut g);
        let rep = run_cleanups(&mut g.m, &PassOptions::default()).unwrap();
        assert_eq!(rep.get("folded_bn"), 0, "{what}");
        assert!(
            g.ops().contains(&"BatchNormalization".to_string()),
            "{what}"
        );
    }
}

#[test]
fn opset_6_bn_is_only_folded_with_is_test() {
    for (is_test, folds) in [(Some(1), 1), (Some(0), 0), (None, 0)] {
        let (mut g, ..) = conv_bn(&[1, 2, 3, 3], &[2, 2, 1, 1], true, 1, 1, 0, 13);
        g.m.opset_imports[0].version = 6;
        let gr = g.g();
        let bn = gr.producer(gr.value_by_name("out").unwrap()).unwrap().0;
        if let Some(t) = is_test {
            gr.desc_mut(bn).set_attr(Attribute::int("is_test", t));
        }
        let rep = run_cleanups(&mut g.m, &PassOptions::default()).unwrap();
        assert_eq!(rep.get("folded_bn"), folds, "is_test={is_test:?}");
    }
}

#[test]
fn opset_7_spatial_bn_is_only_folded_when_spatial() {
    for (spatial, folds) in [(1, 1), (0, 0)] {
        let (mut g, ..) = conv_bn(&[1, 2, 3, 3], &[2, 2, 1, 1], true, 1, 1, 0, 10);
        g.m.opset_imports[0].version = 7;
        let gr = g.g();
        let bn = gr.producer(gr.value_by_name("out").unwrap()).unwrap().0;
        gr.desc_mut(bn).set_attr(Attribute::int("spatial", spatial));
        let rep = run_cleanups(&mut g.m, &PassOptions::default()).unwrap();
        assert_eq!(rep.get("folded_bn"), folds, "spatial={spatial}");
    }
}

/// Conv -> op(conv, c) (or op(c, conv) when `left`), writing graph output `out`.
fn conv_then(op: &str, c: Tensor, left: bool, bias: bool) -> (G, Vec<f32>) {
    let mut rng = Rng::new(11);
    let mut g = G::new(17);
    g.input("x", "float[1,3,4,4]");
    let w = rng.vec_f32(3 * 3 * 9, -1.0, 1.0);
    g.init("w", floats(&[3, 3, 3, 3], &w));
    if bias {
        g.init("b", floats(&[3], &[0.1, 0.2, 0.3]));
        g.op_a(
            "Conv",
            &["x", "w", "b"],
            &["c"],
            vec![Attribute::ints("pads", vec![1; 4])],
        );
    } else {
        g.op_a(
            "Conv",
            &["x", "w"],
            &["c"],
            vec![Attribute::ints("pads", vec![1; 4])],
        );
    }
    g.init("k", c);
    let ins: [&str; 2] = if left { ["k", "c"] } else { ["c", "k"] };
    g.op(op, &ins, &["out"]);
    g.outputs(&["out"]);
    (g, w)
}

/// Runs the cleanups and compares against the executor on the original graph.
fn folds_exactly(mut g: G) -> G {
    let before = g.m.clone();
    run_cleanups(&mut g.m, &PassOptions::default()).unwrap();
    let mut rng = Rng::new(12);
    let feeds = vec![(
        "x".to_string(),
        floats(&[1, 3, 4, 4], &rng.vec_f32(48, -1.0, 1.0)),
    )];
    let (a, z) = (execute(&before, &feeds), execute(&g.m, &feeds));
    let err = rel_l2(&a[0].1, &z[0].1);
    assert!(err < 1e-6, "relative error {err}");
    g
}

#[test]
fn per_channel_mul_and_add_fold() {
    let scale = [0.5f32, -2.0, 3.0];
    let (g, w) = conv_then("Mul", floats(&[3, 1, 1], &scale), false, true);
    let g = folds_exactly(g);
    assert_eq!(g.ops(), ["Conv"]);
    let (_, wt) = conv_input(&g, "out", 1);
    let want: Vec<f32> = w
        .iter()
        .enumerate()
        .map(|(i, &v)| (f64::from(v) * f64::from(scale[i / 27])) as f32)
        .collect();
    assert_eq!(wt.to_f32_vec().unwrap(), want);
    assert_eq!(
        conv_input(&g, "out", 2).1.to_f32_vec().unwrap(),
        vec![0.05, -0.4, 0.90000004]
    );

    let (g, _) = conv_then("Add", floats(&[1, 3, 1, 1], &[1.0, 2.0, 3.0]), true, false);
    let g = folds_exactly(g);
    assert_eq!(g.ops(), ["Conv"]);
    assert_eq!(
        conv_input(&g, "out", 2).1.to_f32_vec().unwrap(),
        vec![1.0, 2.0, 3.0]
    );

    let (g, _) = conv_then("Mul", floats(&[], &[2.0]), true, true);
    assert_eq!(folds_exactly(g).ops(), ["Conv"]);
}

#[test]
fn mul_add_near_misses_are_left_alone() {
    let cases: Vec<(&str, &str, Tensor)> = vec![
        (
            "broadcasts into a new leading dim",
            "Mul",
            floats(&[3, 1, 1, 1], &[1.0, 2.0, 3.0]),
        ),
        (
            "varies along a spatial axis",
            "Mul",
            floats(&[1, 1, 1, 4], &[1.0, 2.0, 3.0, 4.0]),
        ),
        (
            "aligns with the last axis, not the channels",
            "Add",
            floats(&[3], &[1.0, 2.0, 3.0]),
        ),
        (
            "another element type",
            "Mul",
            Tensor::from_f64(vec![3, 1, 1], &[1.0, 2.0, 3.0]),
        ),
        ("not finite", "Mul", floats(&[], &[f32::INFINITY])),
    ];
    for (what, op, c) in cases {
        let (mut g, _) = conv_then(op, c, false, true);
        let rep = run_cleanups(&mut g.m, &PassOptions::default()).unwrap();
        assert_eq!(rep.get("folded_mul") + rep.get("folded_add"), 0, "{what}");
        assert_eq!(g.ops(), ["Conv", op], "{what}");
    }
    // A Conv output read twice cannot absorb the Mul.
    let (mut g, _) = conv_then("Mul", floats(&[3, 1, 1], &[1.0, 2.0, 3.0]), false, true);
    g.op("Relu", &["c"], &["side"]);
    g.outputs(&["out", "side"]);
    assert_eq!(
        run_cleanups(&mut g.m, &PassOptions::default())
            .unwrap()
            .total(),
        0
    );
}

#[test]
fn mul_and_add_fold_into_a_1d_conv() {
    let mut g = G::new(17);
    g.input("x", "float[1,2,8]");
    g.init("w", floats(&[3, 2, 3], &[0.25; 18]));
    g.init("s", floats(&[3, 1], &[1.0, 2.0, 4.0]));
    g.init("t", floats(&[3, 1], &[0.5, 0.5, 0.5]));
    g.op("Conv", &["x", "w"], &["c"]);
    g.op("Mul", &["c", "s"], &["m"]);
    g.op("Add", &["m", "t"], &["out"]);
    g.outputs(&["out"]);
    let rep = run_cleanups(&mut g.m, &PassOptions::default()).unwrap();
    assert_eq!((rep.get("folded_mul"), rep.get("folded_add")), (1, 1));
    assert_eq!(g.ops(), ["Conv"]);
    assert_eq!(
        conv_input(&g, "out", 2).1.to_f32_vec().unwrap(),
        vec![0.5; 3]
    );
}
