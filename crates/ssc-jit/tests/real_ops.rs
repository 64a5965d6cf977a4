//! Ops that real exported models (tests/zoo: PaddleOCR, YOLO, MTCNN, CRNN exports) bring and the
//! JIT runs natively: shape arithmetic folded at compile time, PRelu, Resize. Each model here is
//! checked against the reference executor, and every one of its nodes must get a native kernel.

use ssc_ir::{Model, Tensor};
use ssc_jit::{CompiledModel, JitOptions};

/// Agreement with the reference executor, relative to the output's largest magnitude.
const RTOL: f64 = 1e-5;

fn xorshift(s: &mut u64, n: usize) -> Vec<f32> {
    (0..n)
        .map(|_| {
            *s ^= *s << 13;
            *s ^= *s >> 7;
            *s ^= *s << 17;
            (*s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

/// Seeds every float initializer with values in [-1, 1), so the weights are not all zeros.
fn seeded(text: &str, mut seed: u64) -> Model {
    let mut m = ssc_ir::parse_model(text).unwrap();
    let g = &mut m.graph;
    for id in g.initializer_ids() {
        let t = g.initializer(id).unwrap();
        if t.dtype != ssc_ir::DataType::Float {
            continue;
        }
        let dims = t.dims.clone();
        let vals = xorshift(&mut seed, dims.iter().product());
        g.set_initializer(id, Tensor::from_f32(dims, &vals));
    }
    m
}

/// Runs `m` on seeded inputs of the given shapes with the JIT (1 and 2 threads) and the
/// reference executor; asserts agreement and that no node fell back.
fn check(name: &str, m: &Model, feeds: &[(&str, Vec<usize>)]) {
    check_as(name, m, feeds, true)
}

/// [`check`], with the no-fallback assertion only when `native`.
fn check_as(name: &str, m: &Model, feeds: &[(&str, Vec<usize>)], native: bool) {
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    let feeds: Vec<(String, Tensor)> = feeds
        .iter()
        .map(|(n, d)| {
            let v = xorshift(&mut s, d.iter().product());
            (n.to_string(), Tensor::from_f32(d.clone(), &v))
        })
        .collect();
    let want = ssc_exec::run_model(m, &feeds).unwrap();
    for threads in [1, 2] {
        let opts = JitOptions {
            threads,
            ..JitOptions::default()
        };
        let c = CompiledModel::compile(m, &opts).unwrap_or_else(|e| panic!("{name}: {e}"));
        let fb: Vec<String> = c
            .fallback_nodes()
            .iter()
            .map(|s| format!("{} ({})", s.node, s.op_type))
            .collect();
        assert_eq!(fb.is_empty(), native, "{name}: nodes fall back: {fb:?}");
        let got = c.run(&feeds).unwrap_or_else(|e| panic!("{name}: {e}"));
        for ((wn, w), (_, g)) in want.iter().zip(&got) {
            assert_eq!(w.dims, g.dims, "{name}: {wn}");
            let (a, b) = (w.to_f64_vec().unwrap(), g.to_f64_vec().unwrap());
            let scale = a.iter().fold(0f64, |m, x| m.max(x.abs())).max(1e-30);
            let e = a
                .iter()
                .zip(&b)
                .fold(0f64, |m, (x, y)| m.max((x - y).abs()))
                / scale;
            assert!(e <= RTOL, "{name} ({threads} threads): {wn} off by {e:.3e}");
        }
    }
}

#[test]
fn shape_arithmetic_folds_at_compile_time() {
    // The exporters' dynamic-reshape idiom: Shape -> Gather -> Unsqueeze -> Concat -> Reshape,
    // plus Size, a sliced Shape (opset 15 start/end) and ConstantOfShape/Expand from it.
    let m = seeded(
        r#"
model ir_version=8
opset 17
graph g(%x: float[2,6,5,3]) -> (%y: float[2,90], %z: float[3,5], %n: float[2,6,5,3]) {
  init %i0: int64[] = zeros
  init %ax: int64[1] = zeros
  init %m1: int64[1] = zeros
  %s = Shape(%x)
  %b = Gather(%s, %i0) {axis=0}
  %bu = Unsqueeze(%b, %ax)
  %shp = Concat(%bu, %m1) {axis=0}
  %y = Reshape(%x, %shp)
  %tail = Shape(%x) {start=-2}
  %rev = Slice(%tail, %ax, %ax)
  %one = ConstantOfShape(%tail)
  %zt = Transpose(%one) {perm=[1, 0]}
  %z = Cast(%zt) {to=1}
  %sz = Size(%x)
  %szf = Cast(%sz) {to=1}
  %n = Div(%x, %szf)
}
"#,
        3,
    );
    let mut m = m;
    // -1 (infer) for the second Reshape dim.
    let g = &mut m.graph;
    let m1 = g
        .initializer_ids()
        .into_iter()
        .find(|&v| g.value(v).name == "m1")
        .unwrap();
    g.set_initializer(m1, Tensor::from_i64(vec![1], &[-1]));
    check("shape_arith", &m, &[("x", vec![2, 6, 5, 3])]);
}

#[test]
fn pow_squares_and_general_exponents() {
    // LayerNorm as Paddle2ONNX writes it (Pow(x - mean, 2)), a broadcast exponent, and a
    // fractional power of a positive value.
    let m = seeded(
        r#"
model ir_version=8
opset 17
graph g(%x: float[2,7,9]) -> (%y: float[2,7,1], %z: float[2,7,9], %w: float[2,7,9]) {
  init %two: float[] = zeros
  init %e: float[9] = zeros
  init %h: float[1] = zeros
  %m = ReduceMean(%x) {axes=[-1]}
  %d = Sub(%x, %m)
  %p = Pow(%d, %two)
  %y = ReduceMean(%p) {axes=[-1]}
  %z = Pow(%x, %e)
  %a = Abs(%x)
  %w = Pow(%a, %h)
}
"#,
        5,
    );
    let mut m = m;
    let g = &mut m.graph;
    for id in g.initializer_ids() {
        let t = match g.value(id).name.as_str() {
            "two" => Tensor::from_f32(vec![], &[2.0]),
            "e" => Tensor::from_f32(vec![9], &[0.0, 1.0, 2.0, 3.0, -1.0, 2.0, 4.0, 1.0, 2.0]),
            _ => Tensor::from_f32(vec![1], &[0.37]),
        };
        g.set_initializer(id, t);
    }
    check("pow", &m, &[("x", vec![2, 7, 9])]);
}

#[test]
fn prelu_per_channel_and_scalar_slopes() {
    // MTCNN's form (slope [C,1,1]) after a conv, a scalar slope, and an NHWC slope [W?, C].
    let m = seeded(
        r#"
model ir_version=8
opset 17
graph g(%x: float[1,5,7,9]) -> (%y: float[1,5,7,9], %z: float[1,5,7,9], %w: float[1,5,7,9]) {
  init %k: float[5,5,3,3] = zeros
  init %a: float[5,1,1] = zeros
  init %s: float[1] = zeros
  init %c: float[9] = zeros
  %c1 = Conv(%x, %k) {kernel_shape=[3, 3], pads=[1, 1, 1, 1]}
  %y = PRelu(%c1, %a)
  %z = PRelu(%x, %s)
  %w = PRelu(%x, %c)
}
"#,
        11,
    );
    check("prelu", &m, &[("x", vec![1, 5, 7, 9])]);
}

/// A Resize node over `x: float[1,3,5,7]` with the given attributes and scales or sizes.
fn resize_model(attrs: &str, scales: Option<[f32; 4]>, sizes: Option<[i64; 4]>) -> Model {
    let (s_decl, z_decl, args) = match (scales, sizes) {
        (Some(_), None) => ("init %sc: float[4] = zeros", "", "%x, _, %sc"),
        (None, Some(_)) => ("", "init %sz: int64[4] = zeros", "%x, _, _, %sz"),
        _ => unreachable!(),
    };
    let text = format!(
        r#"
model ir_version=8
opset 19
graph g(%x: float[1,3,5,7]) -> (%y: float[?,?,?,?]) {{
  {s_decl}
  {z_decl}
  %y = Resize({args}) {{{attrs}}}
}}
"#
    );
    let mut m = ssc_ir::parse_model(&text).unwrap();
    let g = &mut m.graph;
    for id in g.initializer_ids() {
        let name = g.value(id).name.clone();
        let t = match (name.as_str(), scales, sizes) {
            ("sc", Some(s), _) => Tensor::from_f32(vec![4], &s),
            ("sz", _, Some(s)) => Tensor::from_i64(vec![4], &s),
            _ => continue,
        };
        g.set_initializer(id, t);
    }
    m
}

#[test]
fn resize_every_mode_and_coordinate_transform() {
    let coords = [
        "half_pixel",
        "half_pixel_symmetric",
        "pytorch_half_pixel",
        "align_corners",
        "asymmetric",
        "tf_half_pixel_for_nn",
    ];
    let nearest = ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"];
    // Up, down, uneven and identity-height scales; one sizes form.
    let scales: [[f32; 4]; 4] = [
        [1.0, 1.0, 2.0, 2.0],
        [1.0, 1.0, 0.6, 0.5],
        [1.0, 1.0, 1.7, 3.0],
        [1.0, 1.0, 1.0, 1.3],
    ];
    let mut n = 0;
    for coord in coords {
        for sc in scales {
            for nm in nearest {
                let attrs = format!(
                    r#"mode="nearest", coordinate_transformation_mode="{coord}", nearest_mode="{nm}""#
                );
                check(
                    &attrs,
                    &resize_model(&attrs, Some(sc), None),
                    &[("x", vec![1, 3, 5, 7])],
                );
                n += 1;
            }
            for mode in ["linear", "cubic"] {
                let attrs = format!(r#"mode="{mode}", coordinate_transformation_mode="{coord}""#);
                // tf_half_pixel_for_nn (meant for nearest) shifts every dim by half a pixel,
                // so interpolation blends channel planes: left to the reference kernel.
                let native = coord != "tf_half_pixel_for_nn";
                let m = resize_model(&attrs, Some(sc), None);
                check_as(&attrs, &m, &[("x", vec![1, 3, 5, 7])], native);
                n += 1;
            }
        }
        let attrs = format!(r#"mode="linear", coordinate_transformation_mode="{coord}""#);
        let m = resize_model(&attrs, None, Some([1, 3, 9, 4]));
        check_as(
            &attrs,
            &m,
            &[("x", vec![1, 3, 5, 7])],
            coord != "tf_half_pixel_for_nn",
        );
        n += 1;
    }
    // tf_crop_and_resize needs a roi: extrapolated points.
    let m = ssc_ir::parse_model(
        r#"
model ir_version=8
opset 19
graph g(%x: float[1,2,5,7]) -> (%y: float[?,?,?,?]) {
  init %roi: float[8] = zeros
  init %sz: int64[4] = zeros
  %y = Resize(%x, %roi, _, %sz) {mode="linear", coordinate_transformation_mode="tf_crop_and_resize", extrapolation_value=-3.0}
}
"#,
    )
    .unwrap();
    let mut m = m;
    let g = &mut m.graph;
    for id in g.initializer_ids() {
        let t = if g.value(id).name == "roi" {
            Tensor::from_f32(vec![8], &[0.0, 0.0, -0.2, 0.1, 1.0, 1.0, 1.3, 0.8])
        } else {
            Tensor::from_i64(vec![4], &[1, 2, 6, 5])
        };
        g.set_initializer(id, t);
    }
    check("tf_crop_and_resize", &m, &[("x", vec![1, 2, 5, 7])]);
    assert!(n > 100);
}

#[test]
fn upsample_and_resize10_legacy_forms() {
    let m = ssc_ir::parse_model(
        r#"
model ir_version=8
opset 9
graph g(%x: float[2,3,4,5]) -> (%y: float[?,?,?,?]) {
  init %sc: float[4] = zeros
  %y = Upsample(%x, %sc) {mode="nearest"}
}
"#,
    )
    .unwrap();
    let mut m = m;
    let g = &mut m.graph;
    let id = g.initializer_ids()[0];
    g.set_initializer(id, Tensor::from_f32(vec![4], &[1.0, 1.0, 2.0, 3.0]));
    check("upsample9", &m, &[("x", vec![2, 3, 4, 5])]);
}

#[test]
fn weights_given_as_constant_nodes() {
    // Paddle2ONNX's form: conv weights and Clip bounds as Constant nodes.
    let m = ssc_ir::parse_model(
        r#"
model ir_version=7
opset 11
graph g(%x: float[1,3,9,9]) -> (%y: float[1,4,5,5]) {
  %w4 = Constant() {value=float[4,3,1,1] [0.5, -0.25, 0.125, 1.0, -1.0, 0.75, 0.3, -0.6, 0.2, 0.1, 0.05, -0.4]}
  %c = Conv(%x, %w4) {kernel_shape=[1, 1], strides=[2, 2]}
  %lo = Constant() {value_float=0.0}
  %hi = Constant() {value_float=0.5}
  %y = Clip(%c, %lo, %hi)
}
"#,
    )
    .unwrap();
    check("constant_nodes", &m, &[("x", vec![1, 3, 9, 9])]);
}

#[test]
fn gelu_patterns_run_as_one_op() {
    // GELU as torch exports it after a MatMul's bias Add (and a residual Add after it), with the
    // halving first and `Mul(x, 1/sqrt 2)` on a graph input, and a near miss (Div by 1.5, not
    // sqrt 2) that must stay the plain five-op chain; 2 x 9 x 37 leaves a 16-lane tail.
    let m = seeded(
        r#"
model ir_version=8
opset 17
graph g(%x: float[2,9,37], %w: float[2,9,37], %q: float[2,9,37]) -> (%v: float[2,9,37], %z: float[2,9,37], %u: float[2,9,37]) {
  init %b: float[37] = zeros
  init %s2: float[] = zeros
  init %r2: float[] = zeros
  init %one: float[] = zeros
  init %half: float[] = zeros
  init %off: float[] = zeros
  %a = Add(%x, %b)
  %d = Div(%a, %s2)
  %e = Erf(%d)
  %p = Add(%e, %one)
  %m = Mul(%a, %p)
  %y = Mul(%m, %half)
  %v = Add(%y, %x)
  %h = Mul(%w, %half)
  %d2 = Mul(%r2, %w)
  %e2 = Erf(%d2)
  %p2 = Add(%one, %e2)
  %z = Mul(%h, %p2)
  %d3 = Div(%q, %off)
  %e3 = Erf(%d3)
  %p3 = Add(%e3, %one)
  %m3 = Mul(%q, %p3)
  %u = Mul(%m3, %half)
}
"#,
        7,
    );
    let mut m = m;
    let g = &mut m.graph;
    for id in g.initializer_ids() {
        let v = match g.value(id).name.as_str() {
            "s2" => std::f32::consts::SQRT_2,
            "r2" => std::f32::consts::FRAC_1_SQRT_2,
            "one" => 1.0,
            "half" => 0.5,
            "off" => 1.5,
            _ => continue,
        };
        g.set_initializer(id, Tensor::from_f32(vec![], &[v]));
    }
    // Inputs of [-1, 1) scaled up, so the tails of erf are reached.
    let g = &mut m.graph;
    let b = g
        .initializer_ids()
        .into_iter()
        .find(|&v| g.value(v).name == "b")
        .unwrap();
    let bias: Vec<f32> = (0..37).map(|i| (i as f32 - 18.0) * 0.4).collect();
    g.set_initializer(b, Tensor::from_f32(vec![37], &bias));
    check(
        "gelu",
        &m,
        &[
            ("x", vec![2, 9, 37]),
            ("w", vec![2, 9, 37]),
            ("q", vec![2, 9, 37]),
        ],
    );
    let c = CompiledModel::compile(&m, &JitOptions::default()).unwrap();
    let kernels: Vec<String> = c.steps().into_iter().map(|s| s.kernel).collect();
    let gelus = kernels.iter().filter(|k| k.contains("Gelu")).count();
    assert_eq!(gelus, 2, "{kernels:?}");
    assert!(
        kernels.iter().any(|k| k.starts_with("chain Add+Gelu+Add")),
        "the bias Add, the GELU and the residual Add in one step: {kernels:?}"
    );
    assert!(
        kernels
            .iter()
            .any(|k| k.starts_with("chain Div+Erf+Add+Mul+Mul")),
        "{kernels:?}"
    );
}

#[test]
fn algebraic_chains_run_as_cranelift_code() {
    // A layer scale (per channel) and residual add with HardSwish (three instructions), a
    // PRelu / LeakyRelu / HardSigmoid / Clip / Div chain with a bias on the last axis and a
    // scalar, and a lone HardSwish (one instruction: stays the Rust form). 3 x 5 x 7 x 11
    // leaves vector and scalar tails.
    let m = seeded(
        r#"
model ir_version=8
opset 17
graph g(%x: float[3,5,7,11], %r: float[3,5,7,11]) -> (%y: float[3,5,7,11], %z: float[3,5,7,11], %h: float[3,5,7,11]) {
  init %gamma: float[5,1,1] = zeros
  init %slope: float[] = zeros
  init %col: float[11] = zeros
  init %s: float[] = zeros
  %a = Mul(%x, %gamma)
  %b = Add(%a, %r)
  %y = HardSwish(%b)
  %c = Sub(%r, %col)
  %d = PRelu(%c, %slope)
  %e = LeakyRelu(%d) {alpha=0.2}
  %f = HardSigmoid(%e) {alpha=0.3, beta=0.4}
  %g2 = Div(%f, %s)
  %z = Clip(%g2, %s)
  %h = HardSwish(%x)
}
"#,
        11,
    );
    check(
        "chains",
        &m,
        &[("x", vec![3, 5, 7, 11]), ("r", vec![3, 5, 7, 11])],
    );
    let kernels = |cranelift_chains: bool| -> Vec<String> {
        let opts = JitOptions {
            cranelift_chains,
            ..JitOptions::default()
        };
        let c = CompiledModel::compile(&m, &opts).unwrap();
        c.steps().into_iter().map(|s| s.kernel).collect()
    };
    let on = kernels(true);
    let generated = on.iter().filter(|k| k.contains("cranelift")).count();
    assert_eq!(generated, 2, "{on:?}");
    assert!(
        on.iter()
            .any(|k| k.starts_with("chain Mul+Add+HardSwish") && k.contains("cranelift")),
        "{on:?}"
    );
    assert!(
        on.iter().any(|k| k == "chain HardSwish (1 x 1155)"),
        "{on:?}"
    );
    assert!(kernels(false).iter().all(|k| !k.contains("cranelift")));
    // Both forms compute the same bits.
    let mut seed = 5u64;
    let feeds: Vec<(String, Tensor)> = ["x", "r"]
        .iter()
        .map(|n| {
            let v: Vec<f32> = xorshift(&mut seed, 1155).iter().map(|x| 4.0 * x).collect();
            (n.to_string(), Tensor::from_f32(vec![3, 5, 7, 11], &v))
        })
        .collect();
    let run = |cranelift_chains: bool| {
        let opts = JitOptions {
            cranelift_chains,
            threads: 1,
            ..JitOptions::default()
        };
        CompiledModel::compile(&m, &opts)
            .unwrap()
            .run(&feeds)
            .unwrap()
    };
    for ((n, a), (_, b)) in run(true).iter().zip(&run(false)) {
        let (a, b) = (a.to_f32_vec().unwrap(), b.to_f32_vec().unwrap());
        assert!(
            a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()),
            "{n}"
        );
    }
}

/// A model of one op on `x` with seeded float initializers, the output shape left to inference.
fn one_op(opset: u32, inputs: &str, inits: &str, outs: &str, call: &str, seed: u64) -> Model {
    let n_out = outs.split(',').filter(|s| s.trim() != "_").count();
    let out_decl: Vec<String> = outs
        .split(',')
        .map(str::trim)
        .filter(|s| *s != "_")
        .map(|s| format!("{s}: float[*]"))
        .collect();
    assert_eq!(out_decl.len(), n_out);
    seeded(
        &format!(
            "model ir_version=8\nopset {opset}\ngraph g({inputs}) -> ({}) {{\n{inits}\n  {outs} = {call}\n}}\n",
            out_decl.join(", ")
        ),
        seed,
    )
}

#[test]
fn conv_transpose_every_attribute() {
    // (input dims, weight dims, attributes): strides, pads, output_padding, dilations, groups,
    // odd sizes, auto_pad both ways, output_shape larger than the full size, 1-D.
    let cases: &[(&[usize], &[usize], &str)] = &[
        (&[1, 24, 5, 7], &[24, 6, 2, 2], "strides=[2, 2]"),
        (
            &[2, 3, 5, 4],
            &[3, 5, 3, 3],
            "strides=[3, 2], pads=[1, 0, 2, 1]",
        ),
        (
            &[1, 4, 6, 5],
            &[4, 3, 3, 3],
            "strides=[2, 2], output_padding=[1, 1], pads=[1, 1, 1, 1]",
        ),
        (
            &[1, 6, 5, 5],
            &[6, 2, 3, 2],
            "group=3, dilations=[2, 3], strides=[1, 2]",
        ),
        (
            &[1, 3, 4, 5],
            &[3, 2, 3, 3],
            "auto_pad=\"SAME_UPPER\", strides=[2, 2]",
        ),
        (
            &[1, 3, 4, 5],
            &[3, 2, 4, 3],
            "auto_pad=\"SAME_LOWER\", strides=[2, 2]",
        ),
        (
            &[1, 2, 3, 3],
            &[2, 2, 3, 3],
            "strides=[3, 2], output_shape=[10, 8]",
        ),
        (
            &[1, 1, 3, 3],
            &[1, 2, 3, 3],
            "auto_pad=\"SAME_UPPER\", strides=[2, 2], output_shape=[8, 9]",
        ),
        (
            &[2, 3, 9],
            &[3, 4, 3],
            "strides=[2], pads=[1, 2], output_padding=[1]",
        ),
        (&[1, 1, 1, 1], &[1, 1, 1, 1], ""),
    ];
    for (i, (xd, wd, attrs)) in cases.iter().enumerate() {
        for bias in [false, true] {
            let fmt = |d: &[usize]| {
                d.iter()
                    .map(|v| v.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            };
            let c_out = wd[1] * attrs.find("group=3").map_or(1, |_| 3);
            let (b_init, b_arg) = if bias {
                (format!("  init %b: float[{c_out}] = zeros"), ", %b")
            } else {
                (String::new(), "")
            };
            let m = one_op(
                11,
                &format!("%x: float[{}]", fmt(xd)),
                &format!("  init %w: float[{}] = zeros\n{b_init}", fmt(wd)),
                "%y",
                &format!("ConvTranspose(%x, %w{b_arg}) {{{attrs}}}"),
                i as u64 + 7,
            );
            check(
                &format!("convtranspose {i} bias={bias}"),
                &m,
                &[("x", xd.to_vec())],
            );
        }
    }
}

#[test]
fn batched_matmul_broadcasts_and_promotes() {
    // (A, B): equal batches, broadcast batch dims both ways, ranks that differ, 1-D operands.
    let cases: &[(&[usize], &[usize])] = &[
        (&[2, 3, 4, 5], &[2, 3, 5, 6]),
        (&[1, 3, 4, 5], &[2, 1, 5, 7]),
        (&[3, 4, 5], &[2, 3, 5, 1]),
        (&[5], &[2, 5, 3]),
        (&[2, 3, 5], &[5]),
        (&[7], &[7]),
        (&[4, 1, 3, 8], &[8, 2]),
    ];
    for (i, (a, b)) in cases.iter().enumerate() {
        let fmt = |d: &[usize]| {
            d.iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        let m = one_op(
            13,
            &format!("%a: float[{}], %b: float[{}]", fmt(a), fmt(b)),
            "",
            "%y",
            "MatMul(%a, %b)",
            i as u64,
        );
        check(
            &format!("matmul {a:?} x {b:?}"),
            &m,
            &[("a", a.to_vec()), ("b", b.to_vec())],
        );
    }
}

#[test]
fn lstm_directions_layouts_states_and_options() {
    // (direction, hidden, seq, batch, input, layout, extra attrs, with B/P/lens/initial states).
    struct Case {
        dir: &'static str,
        h: usize,
        seq: usize,
        batch: usize,
        input: usize,
        layout: usize,
        attrs: &'static str,
        full: bool,
        outs: &'static str,
    }
    let cases = [
        Case { dir: "forward", h: 5, seq: 4, batch: 1, input: 3, layout: 0, attrs: "", full: false, outs: "%y" },
        Case { dir: "reverse", h: 13, seq: 6, batch: 3, input: 9, layout: 0, attrs: "", full: true, outs: "%y, %yh, %yc" },
        Case { dir: "bidirectional", h: 8, seq: 5, batch: 2, input: 7, layout: 0, attrs: "", full: true, outs: "%y, %yh" },
        Case { dir: "bidirectional", h: 7, seq: 3, batch: 2, input: 4, layout: 1, attrs: "", full: true, outs: "%y, %yh, %yc" },
        // Hidden sizes past the vector width with a tail (the AVX2 matrix-vector loop).
        Case { dir: "bidirectional", h: 37, seq: 3, batch: 2, input: 20, layout: 0, attrs: "", full: true, outs: "%y, %yh, %yc" },
        Case { dir: "forward", h: 64, seq: 2, batch: 1, input: 33, layout: 1, attrs: "", full: false, outs: "%y" },
        Case { dir: "forward", h: 6, seq: 5, batch: 2, input: 3, layout: 0, attrs: ", clip=0.5, input_forget=1", full: true, outs: "_, %yh, %yc" },
        Case {
            dir: "bidirectional", h: 4, seq: 4, batch: 1, input: 5, layout: 0,
            attrs: ", activations=strings[\"Relu\", \"Tanh\", \"Sigmoid\", \"Sigmoid\", \"Relu\", \"Tanh\"]",
            full: false, outs: "%y, _, %yc",
        },
    ];
    for (i, c) in cases.iter().enumerate() {
        let nd = if c.dir == "bidirectional" { 2 } else { 1 };
        let (g4, h) = (4 * c.h, c.h);
        let (xd, sd) = if c.layout == 1 {
            (vec![c.batch, c.seq, c.input], vec![c.batch, nd, h])
        } else {
            (vec![c.seq, c.batch, c.input], vec![nd, c.batch, h])
        };
        let fmt = |d: &[usize]| {
            d.iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        let mut inits = format!(
            "  init %w: float[{nd},{g4},{}] = zeros\n  init %r: float[{nd},{g4},{h}] = zeros\n",
            c.input
        );
        let mut inputs = format!("%x: float[{}]", fmt(&xd));
        let args = if c.full {
            // Sequence lengths of 0 (first row, when batch > 2), the full length, and between.
            let lens: Vec<String> = (0..c.batch)
                .map(|b| match b % 3 {
                    0 => c.seq,
                    1 => c.seq - 2,
                    _ => 0,
                })
                .map(|v| v.to_string())
                .collect();
            inits += &format!(
                "  init %b: float[{nd},{}] = zeros\n  init %p: float[{nd},{}] = zeros\n  init %sl: int32[{}] = [{}]\n",
                2 * g4,
                3 * h,
                c.batch,
                lens.join(", ")
            );
            inputs += &format!(", %h0: float[{}], %c0: float[{}]", fmt(&sd), fmt(&sd));
            "%x, %w, %r, %b, %sl, %h0, %c0, %p"
        } else {
            "%x, %w, %r"
        };
        let m = one_op(
            14,
            &inputs,
            &inits,
            c.outs,
            &format!(
                "LSTM({args}) {{direction=\"{}\", hidden_size={h}, layout={}{}}}",
                c.dir, c.layout, c.attrs
            ),
            i as u64 + 100,
        );
        let mut feeds = vec![("x", xd.clone())];
        if c.full {
            feeds.push(("h0", sd.clone()));
            feeds.push(("c0", sd.clone()));
        }
        check(&format!("lstm case {i} ({})", c.dir), &m, &feeds);
    }
}

#[test]
fn conv_weight_computed_from_constants() {
    // A conv weight given as Reshape(Constant): constant once folded, so the conv is native.
    let m = one_op(
        13,
        "%x: float[1,4,7,6]",
        "  init %wf: float[72] = zeros\n  init %shp: int64[4] = [6, 4, 1, 3]\n  %w = Reshape(%wf, %shp)",
        "%y",
        "Conv(%x, %w) {pads=[0, 1, 0, 1]}",
        5,
    );
    check("conv reshape weight", &m, &[("x", vec![1, 4, 7, 6])]);
}

#[test]
fn gemm_with_constant_weights_both_layouts() {
    // Constant B, transB both ways (a transposed one laid out at compile time for more than one
    // row, read as it is for one), few and many rows, odd k and n, C broadcast or full, alpha and beta.
    let cases: &[(usize, usize, usize, &str, &str)] = &[
        (20, 131, 203, "transB=1", "[203]"),
        (1, 256, 300, "", "[1,300]"),
        (7, 129, 130, "transB=1, beta=0.5", "[7,130]"),
        (32, 64, 257, "", ""),
        (33, 64, 257, "transB=1", "[257]"),
        (4, 100, 200, "alpha=2.0, transB=1", "[]"),
        (1, 129, 131, "transB=1", "[131]"),
    ];
    for (i, &(m, k, n, attrs, c)) in cases.iter().enumerate() {
        let tb = attrs.contains("transB=1");
        let bd = if tb {
            format!("{n},{k}")
        } else {
            format!("{k},{n}")
        };
        let (c_init, c_arg) = if c.is_empty() {
            (String::new(), "")
        } else {
            (format!("\n  init %c: float{c} = zeros"), ", %c")
        };
        let m_ = one_op(
            13,
            &format!("%a: float[{m},{k}]"),
            &format!("  init %b: float[{bd}] = zeros{c_init}"),
            "%y",
            &format!("Gemm(%a, %b{c_arg}) {{{attrs}}}"),
            i as u64 + 40,
        );
        check(&format!("gemm case {i}"), &m_, &[("a", vec![m, k])]);
    }
    // MatMul folding A's leading dims into m, constant B.
    let m_ = one_op(
        13,
        "%a: float[2,5,70]",
        "  init %b: float[70,300] = zeros",
        "%y",
        "MatMul(%a, %b)",
        9,
    );
    check("matmul const b", &m_, &[("a", vec![2, 5, 70])]);
}
