//! The integer steps of dynamically quantised models (onnxruntime's `quantize_dynamic` output:
//! DynamicQuantizeLinear, ConvInteger, MatMulInteger, Cast, int32 Add, Floor, reshapes) run
//! natively and equal the reference executor bit for bit, integer outputs and float outputs
//! alike, on near-miss shapes: odd channels, reductions not a multiple of 2 / 4 / 64, column
//! tails, pads, strides, dilation, groups, zero points 0 / 128 / 255, per-channel weight zero
//! points, signed weights, and inputs whose range degenerates (all equal, all zero).

use ssc_ir::{DataType, Model, Tensor};
use ssc_jit::{CompiledModel, JitOptions};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| (self.next() >> 24) as u8).collect()
    }
    fn floats(&mut self, n: usize, lo: f32, hi: f32) -> Vec<f32> {
        (0..n)
            .map(|_| lo + (hi - lo) * ((self.next() >> 40) as f32 / (1u64 << 24) as f32))
            .collect()
    }
}

fn raw(dt: DataType, dims: Vec<usize>, b: Vec<u8>) -> Tensor {
    Tensor::from_raw(dt, dims, b.into()).unwrap()
}

fn set(m: &mut Model, name: &str, t: Tensor) {
    let g = &mut m.graph;
    let v = g
        .initializer_ids()
        .into_iter()
        .find(|&v| g.value(v).name == name)
        .unwrap_or_else(|| panic!("no initializer {name}"));
    g.set_initializer(v, t);
}

/// Runs `m` with the JIT at 1 and 2 threads and with the reference; every output must be
/// bit-identical and no node may fall back.
fn check(name: &str, m: &Model, feeds: &[(String, Tensor)]) {
    let want = ssc_exec::run_model(m, feeds).unwrap_or_else(|e| panic!("{name}: {e}"));
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
        assert!(fb.is_empty(), "{name}: nodes fall back: {fb:?}");
        let got = c.run(feeds).unwrap_or_else(|e| panic!("{name}: {e}"));
        for ((wn, w), (_, g)) in want.iter().zip(&got) {
            assert_eq!((w.dtype, &w.dims), (g.dtype, &g.dims), "{name}: {wn}");
            assert_eq!(
                w.raw(),
                g.raw(),
                "{name} ({threads} threads): {wn} differs from the reference"
            );
        }
    }
}

/// One layer as `quantize_dynamic` writes it: the input quantised, the f32 bias quantised by
/// the product of the scales (Div, Floor, Cast), ConvInteger, the int32 bias added, Cast back
/// and the scales' product applied. The integer conv output and the zero point are graph
/// outputs too, so they are compared exactly.
#[allow(clippy::too_many_arguments)]
fn conv_model(
    c_in: usize,
    c_out: usize,
    hw: [usize; 2],
    k: [usize; 2],
    stride: usize,
    pad: [usize; 4],
    dil: usize,
    group: usize,
    wty: &str,
    per_channel_zp: bool,
) -> (Model, [usize; 2]) {
    let oh = (hw[0] + pad[0] + pad[2] - dil * (k[0] - 1) - 1) / stride + 1;
    let ow = (hw[1] + pad[1] + pad[3] - dil * (k[1] - 1) - 1) / stride + 1;
    let zp_dims = if per_channel_zp {
        format!("{c_out}")
    } else {
        String::new()
    };
    let text = format!(
        r#"
model ir_version=8
opset 13
graph g(%x: float[1,{c_in},{h},{w}]) -> (%y: float[1,{c_out},{oh},{ow}], %acc: int32[1,{c_out},{oh},{ow}], %xz: uint8[]) {{
  init %wq: {wty}[{c_out},{cig},{kh},{kw}] = zeros
  init %wz: {wty}[{zp_dims}] = zeros
  init %ws: float[] = [0.0123]
  init %bias: float[{c_out}] = zeros
  init %shape: int64[4] = [1, {c_out}, 1, 1]
  %xq, %xs, %xz = DynamicQuantizeLinear(%x)
  %s = Mul(%xs, %ws)
  %bd = Div(%bias, %s)
  %bf = Floor(%bd)
  %bq = Cast(%bf) {{to=6}}
  %acc = ConvInteger(%xq, %wq, %xz, %wz) {{group={group}, kernel_shape=[{kh}, {kw}], pads=[{p0}, {p1}, {p2}, {p3}], strides=[{stride}, {stride}], dilations=[{dil}, {dil}]}}
  %br = Reshape(%bq, %shape)
  %sum = Add(%acc, %br)
  %sf = Cast(%sum) {{to=1}}
  %s2 = Mul(%xs, %ws)
  %y = Mul(%sf, %s2)
}}
"#,
        h = hw[0],
        w = hw[1],
        cig = c_in / group,
        kh = k[0],
        kw = k[1],
        p0 = pad[0],
        p1 = pad[1],
        p2 = pad[2],
        p3 = pad[3],
    );
    (ssc_ir::parse_model(&text).unwrap(), [oh, ow])
}

fn seed_conv(m: &mut Model, rng: &mut Rng, c_out: usize, w_len: usize, wdt: DataType, zps: &[u8]) {
    let w = rng.bytes(w_len);
    let w = if wdt == DataType::Int8 {
        // int8 weights as `quantize_dynamic` writes them: symmetric, zero point 0.
        w.iter().map(|&b| (b as i8).max(-127) as u8).collect()
    } else {
        w
    };
    let g = &m.graph;
    let v = g
        .initializer_ids()
        .into_iter()
        .find(|&v| g.value(v).name == "wq")
        .unwrap();
    let dims = g.initializer(v).unwrap().dims.clone();
    set(m, "wq", raw(wdt, dims, w));
    let zdims = if zps.len() == 1 { vec![] } else { vec![c_out] };
    set(m, "wz", raw(wdt, zdims, zps.to_vec()));
    let b = rng.floats(c_out, -0.5, 0.5);
    set(m, "bias", Tensor::from_f32(vec![c_out], &b));
}

/// (c_in, c_out, hw, k, stride, pads, dilation, group, per-channel zp)
type ConvCase = (
    usize,
    usize,
    [usize; 2],
    [usize; 2],
    usize,
    [usize; 4],
    usize,
    usize,
    bool,
);

#[test]
fn conv_integer_near_misses() {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    // (c_in, c_out, hw, k, stride, pads, dilation, group, per-channel zp)
    let cases: &[ConvCase] = &[
        (1, 24, [16, 21], [3, 3], 2, [1, 1, 1, 1], 1, 1, false), // a stem: 9-entry reduction
        (3, 5, [9, 11], [3, 3], 1, [1, 1, 1, 1], 1, 1, false),   // K = 27, odd
        (7, 9, [13, 10], [1, 1], 1, [0, 0, 0, 0], 1, 1, false),  // 1x1, K = 7
        (24, 17, [8, 70], [3, 3], 1, [1, 1, 1, 1], 1, 1, true),  // 560 columns: tails of 64
        (6, 6, [9, 9], [3, 3], 2, [0, 1, 2, 0], 2, 3, false),    // groups, dilation, odd pads
        (5, 4, [7, 6], [2, 3], 1, [1, 0, 0, 2], 1, 1, true),     // rectangular kernel
        (33, 70, [5, 5], [3, 3], 1, [1, 1, 1, 1], 1, 1, false),  // K = 297, rows of 4 + 2
    ];
    for (ci, &(c_in, c_out, hw, k, s, pad, dil, group, pc)) in cases.iter().enumerate() {
        for (wty, wdt) in [("uint8", DataType::Uint8), ("int8", DataType::Int8)] {
            let zps: Vec<u8> = match (wdt, pc) {
                (DataType::Int8, false) => vec![0],
                (DataType::Int8, true) => vec![0; c_out],
                (_, false) => vec![[0u8, 128, 255][ci % 3]],
                (_, true) => (0..c_out).map(|o| [0u8, 128, 255, 77][o % 4]).collect(),
            };
            let (mut m, _) = conv_model(c_in, c_out, hw, k, s, pad, dil, group, wty, pc);
            let w_len = c_out * (c_in / group) * k[0] * k[1];
            seed_conv(&mut m, &mut rng, c_out, w_len, wdt, &zps);
            let n = c_in * hw[0] * hw[1];
            let dims = vec![1, c_in, hw[0], hw[1]];
            // Mixed signs (zero point inside), all positive (zero point 0), all negative
            // (zero point 255), all equal (the range is [0, v]) and all zero (scale 1/255).
            let inputs = [
                rng.floats(n, -1.0, 1.5),
                rng.floats(n, 0.25, 3.0),
                rng.floats(n, -2.0, -0.1),
                vec![0.7; n],
                vec![0.0; n],
            ];
            for (ii, x) in inputs.iter().enumerate() {
                let feeds = vec![("x".to_string(), Tensor::from_f32(dims.clone(), x))];
                check(&format!("conv case {ci} {wty} input {ii}"), &m, &feeds);
            }
        }
    }
}

fn matmul_model(rows: [usize; 2], k: usize, n: usize, per_column: bool) -> Model {
    let zp = if per_column {
        format!("{n}")
    } else {
        String::new()
    };
    let text = format!(
        r#"
model ir_version=8
opset 13
graph g(%x: float[{r0},{r1},{k}]) -> (%y: float[{r0},{r1},{n}], %acc: int32[{r0},{r1},{n}]) {{
  init %b: uint8[{k},{n}] = zeros
  init %bz: uint8[{zp}] = zeros
  init %bs: float[] = [0.031]
  %xq, %xs, %xz = DynamicQuantizeLinear(%x)
  %acc = MatMulInteger(%xq, %b, %xz, %bz)
  %f = Cast(%acc) {{to=1}}
  %s = Mul(%xs, %bs)
  %y = Mul(%f, %s)
}}
"#,
        r0 = rows[0],
        r1 = rows[1],
    );
    ssc_ir::parse_model(&text).unwrap()
}

#[test]
fn matmul_integer_near_misses() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    // (rows, k, n): one row, rows not a multiple of 4, K odd / below a pair, columns with
    // tails of 16 and 64.
    let cases = [
        ([1, 1], 1, 3),
        ([3, 1], 7, 17),
        ([2, 3], 64, 65),
        ([5, 2], 130, 129),
        ([1, 9], 33, 200),
    ];
    for (ci, &(rows, k, n)) in cases.iter().enumerate() {
        for per_column in [false, true] {
            let mut m = matmul_model(rows, k, n, per_column);
            set(
                &mut m,
                "b",
                raw(DataType::Uint8, vec![k, n], rng.bytes(k * n)),
            );
            let zps: Vec<u8> = if per_column {
                (0..n).map(|j| [0u8, 128, 255][j % 3]).collect()
            } else {
                vec![[0u8, 128, 255][ci % 3]]
            };
            let zdims = if per_column { vec![n] } else { vec![] };
            set(&mut m, "bz", raw(DataType::Uint8, zdims, zps));
            let len = rows[0] * rows[1] * k;
            for (ii, x) in [rng.floats(len, -3.0, 1.0), vec![-0.25; len]]
                .iter()
                .enumerate()
            {
                let feeds = vec![(
                    "x".to_string(),
                    Tensor::from_f32(vec![rows[0], rows[1], k], x),
                )];
                check(
                    &format!("matmul case {ci} pc {per_column} input {ii}"),
                    &m,
                    &feeds,
                );
            }
        }
    }
}

#[test]
fn integer_casts_and_arithmetic() {
    // Casts f32 -> int (truncation toward zero, saturation), int -> int (wrapping) and back;
    // int32 Sub and Mul with a broadcast constant.
    let text = r#"
model ir_version=8
opset 13
graph g(%x: float[3,7]) -> (%a: float[3,7], %b: float[3,7], %c: int32[3,7], %d: float[3,7], %e: float[3,7]) {
  init %k: int32[7] = [1, -2, 3, 100000, -7, 0, 65536]
  init %big: float[] = [1000.0]
  %xb = Mul(%x, %big)
  %i = Cast(%xb) {to=6}
  %u = Cast(%xb) {to=2}
  %s = Cast(%xb) {to=3}
  %m = Mul(%i, %k)
  %c = Sub(%m, %k)
  %a = Cast(%u) {to=1}
  %b = Cast(%s) {to=1}
  %u2 = Cast(%i) {to=2}
  %d = Cast(%u2) {to=1}
  %r = Round(%xb)
  %e = Ceil(%r)
}
"#;
    let m = ssc_ir::parse_model(text).unwrap();
    let mut rng = Rng(77);
    let mut x = rng.floats(21, -0.4, 0.4);
    x[0] = 0.0025; // 2.5: Round to 2
    x[1] = -0.0035; // -3.5: Round to -4
    x[2] = 5.0; // saturates u8 / i8
    x[3] = -5.0;
    let feeds = vec![("x".to_string(), Tensor::from_f32(vec![3, 7], &x))];
    check("casts", &m, &feeds);
}

/// The models `scripts/make_quant_models.py` writes with onnxruntime's `quantize_dynamic`
/// (uint8 and int8 weights: ConvInteger, MatMulInteger, a bidirectional DynamicQuantizeLSTM),
/// on seeded inputs and on a constant one, bit-identical to the reference.
#[test]
fn quantize_dynamic_models() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/models/quant");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "onnx"))
        .collect();
    names.sort();
    assert_eq!(
        names.len(),
        4,
        "tests/models/quant: run scripts/make_quant_models.py"
    );
    let mut rng = Rng(0x51ed_270b_27a1_f1a3);
    for p in &names {
        let m = ssc_onnx::load(p).unwrap().model;
        let g = &m.graph;
        let x = g.inputs()[0];
        let dims = g
            .value(x)
            .ty
            .as_ref()
            .unwrap()
            .tensor()
            .unwrap()
            .static_shape()
            .unwrap();
        let n: usize = dims.iter().product();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        for (i, v) in [
            rng.floats(n, -1.0, 1.0),
            rng.floats(n, -3.0, 0.5),
            rng.floats(n, 0.0, 2.0),
            vec![0.3; n],
        ]
        .iter()
        .enumerate()
        {
            let feeds = vec![(g.value(x).name.clone(), Tensor::from_f32(dims.clone(), v))];
            check(&format!("{name} input {i}"), &m, &feeds);
        }
    }
}
