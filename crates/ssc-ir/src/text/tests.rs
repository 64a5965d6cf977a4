//! Tests of the text form, written as data: canonical texts that must round-trip, inputs with
//! their canonical form, and inputs with their error.

use super::*;
use crate::{
    AttrValue, Attribute, DataType, Dim, OpDesc, OpsetImport, Tensor, TensorData, TensorType,
    ValueId, ValueType,
};
use bytes::Bytes;

/// Drops the newline that follows an opening `r#"`, so texts can start on their own line.
fn t(s: &str) -> &str {
    s.strip_prefix('\n').unwrap_or(s)
}

/// Canonical text prints back unchanged.
fn roundtrip(text: &str) -> Model {
    let text = t(text);
    let m = parse_model(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let printed = print_model(&m);
    assert_eq!(printed, text, "printed:\n{printed}");
    m
}

/// `input` parses and prints as `expect`, which is itself canonical.
fn check(input: &str, expect: &str) {
    let m = parse_model(t(input)).unwrap_or_else(|e| panic!("{e}\n{input}"));
    let printed = print_model(&m);
    assert_eq!(printed, t(expect), "printed:\n{printed}");
    roundtrip(expect);
}

/// `input` fails with `expect` (`line:col: message`).
fn check_err(input: &str, expect: &str) {
    match parse_model(t(input)) {
        Ok(m) => panic!("parsed, expected `{expect}`:\n{}", print_model(&m)),
        Err(e) => assert_eq!(e.to_string(), expect, "input:\n{input}"),
    }
}

/// The initializer of `name` in a parsed text.
fn init(m: &Model, name: &str) -> Tensor {
    let g = &m.graph;
    g.initializer(g.value_by_name(name).unwrap())
        .unwrap()
        .clone()
}

#[test]
fn conv_relu_round_trips() {
    let m = roundtrip(
        r#"
model ir_version=8
opset 17
graph main(%input: float[1,3,8,8]) -> (%out: float[1,4,8,8]) {
  init %w: float[4,3,3,3] = ones
  init %b: float[4] = [0.1, -0.2, 0.0, 1.0]
  %y = Conv(%input, %w, %b) {kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1]} name="conv0"
  %out = Relu(%y) : float[1,4,8,8]
}
"#,
    );
    let g = &m.graph;
    let ops = g.topo_order().unwrap();
    let conv = &g.op(ops[0]).desc;
    assert_eq!(
        (conv.op_type.as_str(), conv.name.as_str()),
        ("Conv", "conv0")
    );
    assert_eq!(conv.get_ints("pads").unwrap(), Some(&[1i64, 1, 1, 1][..]));
    assert_eq!(init(&m, "b").to_f32_vec().unwrap(), [0.1, -0.2, 0.0, 1.0]);
    assert_eq!(init(&m, "w").to_f32_vec().unwrap(), vec![1.0; 108]);
    let out = g.value_by_name("out").unwrap();
    assert!(g.is_graph_output(out) && !g.value(out).in_value_info);
    assert_eq!(m.onnx_opset(), 17);
}

#[test]
fn every_attribute_kind_round_trips() {
    let m = roundtrip(
        r#"
model ir_version=9
opset 21
graph g(%x: float[2]) -> (%y: float[2]) {
  %y = Custom(%x) {i=-3, big=9223372036854775807, f=1e-5, g=0.1, h=-0.0, inf=inf, ninf=-inf, nan=NaN, snan=nan(0xffc00000), huge=3.4028235e38, s="a \"q\" \\ \n\t\r é \x01\xff", t=float[2] [1.5, -2.0], ti=int64[] [7], ints=[1, -2, 3], floats=[0.5, 1.0, 2.5e-8], strs=["a", "", "b c"], ts=[float[1] [1.0], int32[2] [1, 2]], e1=ints[], e2=floats[], e3=strings[], e4=tensors[]} : float[2]
}
"#,
    );
    let g = &m.graph;
    let d = &g.op(g.op_ids()[0]).desc;
    let get = |n: &str| d.attr(n).unwrap().value.clone();
    assert_eq!(get("i"), AttrValue::Int(-3));
    assert_eq!(get("big"), AttrValue::Int(i64::MAX));
    assert_eq!(get("f"), AttrValue::Float(1e-5));
    match get("h") {
        AttrValue::Float(v) => assert_eq!(v.to_bits(), (-0.0f32).to_bits()),
        v => panic!("{v:?}"),
    }
    match get("snan") {
        AttrValue::Float(v) => assert_eq!(v.to_bits(), 0xffc0_0000),
        v => panic!("{v:?}"),
    }
    assert_eq!(
        get("s"),
        AttrValue::String(Bytes::from_static(b"a \"q\" \\ \n\t\r \xc3\xa9 \x01\xff"))
    );
    assert_eq!(get("ts"), {
        AttrValue::Tensors(vec![
            Tensor::from_f32(vec![1], &[1.0]),
            Tensor::from_f64_as(DataType::Int32, vec![2], &[1.0, 2.0]).unwrap(),
        ])
    });
    assert_eq!(get("e2"), AttrValue::Floats(vec![]));
    assert_eq!(get("e4"), AttrValue::Tensors(vec![]));
}

#[test]
fn optional_slots_and_multiple_outputs_round_trip() {
    let m = roundtrip(
        r#"
model ir_version=8
opset 17
graph g(%x: float[4,6]) -> (%a: float[4,2], %c, %n) {
  %a, _, %c = Split(%x, _) {axis=1} : float[4,2], ?
  %n = Const()
  () = Print(%a, _, %c, _)
  _ = Drop(%n)
}
"#,
    );
    let g = &m.graph;
    let ops = g.topo_order().unwrap();
    let split = g.op(ops[0]);
    assert_eq!(split.inputs().len(), 2);
    assert_eq!(split.input(1), None);
    assert_eq!(split.outputs().len(), 3);
    assert_eq!(split.output(1), None);
    let print = g.op(ops[2]);
    assert!(print.outputs().is_empty());
    assert_eq!(print.inputs().len(), 4);
    let c = g.value_by_name("c").unwrap();
    assert_eq!(g.value(c).ty, None);
}

#[test]
fn domains_opsets_overloads_and_captures_round_trip() {
    let m = roundtrip(
        r#"
model ir_version=10 producer_name="ssc \"test\"" producer_version="0.1" domain="org.example" model_version=3
opset 21
opset ai.onnx 21
opset com.example 1
opset "3d" 2
graph "my graph"(%x: float[1]) -> (%e) {
  %a = com.example.MyOp(%x) name="n/0"
  %b = ai.onnx.Relu(%a)
  %c = "my-dom"."Weird Op"(%b) overload="v2"
  %d = x."3D"(%c)
  %e = If(%d) captures=[%x, %a]
}
"#,
    );
    let g = &m.graph;
    let ops = g.topo_order().unwrap();
    let descs: Vec<(&str, &str)> = ops
        .iter()
        .map(|&o| {
            let d = &g.op(o).desc;
            (d.domain.as_str(), d.op_type.as_str())
        })
        .collect();
    assert_eq!(
        descs,
        [
            ("com.example", "MyOp"),
            ("ai.onnx", "Relu"),
            ("my-dom", "Weird Op"),
            ("x", "3D"),
            ("", "If")
        ]
    );
    assert_eq!(g.op(ops[2]).desc.overload, "v2");
    assert_eq!(g.op(ops[4]).captures().len(), 2);
    assert_eq!(g.name, "my graph");
    assert_eq!(m.producer_name.as_deref(), Some("ssc \"test\""));
    assert_eq!(m.model_version, Some(3));
    assert_eq!(
        m.opset_imports[3],
        OpsetImport {
            domain: "3d".into(),
            version: 2
        }
    );
}

#[test]
fn annotations_round_trip_sorted() {
    let m = roundtrip(
        r#"
model ir_version=8
opset 17
graph main(%x: float[1,4,4,4]) -> (%z: float[1,4,4,4]) {
  init %w: float[4,4,3,3] = zeros
  %y = Conv(%x, %w) {kernel_shape=[3, 3], pads=[1, 1, 1, 1]} : float[1,4,4,4] name="conv" @{epilogue="relu output=%z absorbed=relu", sparse="0.0000"}
  %z = Relu(%y) : float[1,4,4,4] @{"odd key"="a \"b\""}
}
"#,
    );
    let g = &m.graph;
    let ops = g.topo_order().unwrap();
    let conv = &g.op(ops[0]).desc;
    assert_eq!(conv.annotation("sparse"), Some("0.0000"));
    assert_eq!(
        conv.annotation("epilogue"),
        Some("relu output=%z absorbed=relu")
    );
    assert_eq!(g.op(ops[1]).desc.annotation("odd key"), Some("a \"b\""));
    // Any order parses; the printer writes keys sorted.
    check(
        r#"
graph g(%x: float[1]) -> (%y: float[1]) {
  %y = Relu(%x) @{ zeta = "1" , alpha="2" }
}
"#,
        r#"
model ir_version=8
opset 17
graph g(%x: float[1]) -> (%y: float[1]) {
  %y = Relu(%x) : float[1] @{alpha="2", zeta="1"}
}
"#,
    );
    check_err(
        r#"
graph g(%x: float[1]) -> (%y: float[1]) {
  %y = Relu(%x) @{a="1", a="2"}
}
"#,
        "2:26: annotation `a` is given twice",
    );
    // Setting keeps the list sorted and replaces.
    let mut d = OpDesc::new("Relu");
    d.set_annotation("b", "1");
    d.set_annotation("a", "2");
    d.set_annotation("b", "3");
    assert_eq!(
        d.annotations,
        [("a".to_string(), "2".to_string()), ("b".into(), "3".into())]
    );
    assert_eq!(d.remove_annotation("a").as_deref(), Some("2"));
}

#[test]
fn types_and_quoted_names_round_trip() {
    let m = roundtrip(
        r#"
model ir_version=8
opset 17
graph g(%"gpu_0/data:0": float[N,3,?,"batch size"], %s: int64[], %r: bool[*], %u, %"q\"\\\n": dtype99[2]) -> (%"out put": float16[N,?]) {
  %a.b_0, %"é" = Foo(%"gpu_0/data:0", %s, %r, %u, %"q\"\\\n") : bfloat16[_x,1], ?
  %"out put" = Bar(%a.b_0, %"é") : float16[N,?]
}
"#,
    );
    let g = &m.graph;
    let x = g.value_by_name("gpu_0/data:0").unwrap();
    assert_eq!(
        g.value(x).ty,
        Some(ValueType::Tensor(TensorType {
            elem: DataType::Float,
            shape: Some(vec![
                Dim::Param("N".into()),
                Dim::Known(3),
                Dim::Unknown,
                Dim::Param("batch size".into()),
            ]),
        }))
    );
    let r = g.value_by_name("r").unwrap();
    assert_eq!(
        g.value(r).ty.as_ref().unwrap().tensor().unwrap().shape,
        None
    );
    assert!(g.value_by_name("q\"\\\n").is_some());
    let ab = g.value_by_name("a.b_0").unwrap();
    assert!(g.value(ab).in_value_info);
}

#[test]
fn payloads_of_every_element_type_round_trip() {
    let m = roundtrip(
        r#"
model ir_version=8
opset 17
graph g() -> () {
  init %bool: bool[4] = [true, false, true, 2]
  init %i8: int8[2] = [-128, 127]
  init %u8: uint8[2] = [0, 255]
  init %i16: int16[2] = [-32768, 32767]
  init %u16: uint16[1] = [65535]
  init %i32: int32[2] = [-2147483648, 2147483647]
  init %u32: uint32[1] = [4294967295]
  init %i64: int64[2] = [-9223372036854775808, 9223372036854775807]
  init %u64: uint64[1] = [18446744073709551615]
  init %f16: float16[5] = [0.099975586, 65504.0, -inf, NaN, nan(0x7e01)]
  init %bf16: bfloat16[3] = [0.100097656, 3.3895314e38, NaN]
  init %f32: float[6] = [1e-45, 3.4028235e38, -0.0, 1e-5, NaN, nan(0x7f800001)]
  init %f64: double[3] = [0.1, 5e-324, nan(0xfff8000000000000)]
  init %str: string[2,1] = ["a", "\xff\x00"]
  init %i4: int4[3] = hex(21f3)
  init %c64: complex64[1] = hex(0000803f00000040)
  init %e8: float8e4m3fn[0] = hex()
  init %empty: float[0,3] = []
  init %scalar: int64[] = [5]
}
"#,
    );
    assert_eq!(init(&m, "bool").raw().unwrap().as_ref(), [1, 0, 1, 2]);
    assert_eq!(init(&m, "u64").to_i64_vec().unwrap(), [-1]);
    let f16 = init(&m, "f16");
    let bits: Vec<u16> = f16
        .raw()
        .unwrap()
        .chunks(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    assert_eq!(bits, [0x2e66, 0x7bff, 0xfc00, 0x7e00, 0x7e01]);
    assert_eq!(
        init(&m, "str").data,
        TensorData::Strings(vec![
            Bytes::from_static(b"a"),
            Bytes::from_static(b"\xff\x00")
        ])
    );
    assert_eq!(init(&m, "i4").raw().unwrap().as_ref(), [0x21, 0xf3]);
    assert_eq!(init(&m, "scalar").dims, Vec::<usize>::new());
}

#[test]
fn float_bits_survive_printing() {
    // Random bit patterns (NaNs and subnormals included) through attributes and tensors.
    let mut s = 0x1234_5678_9abc_def0u64;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let f32s: Vec<f32> = (0..2000).map(|_| f32::from_bits(next() as u32)).collect();
    let f64s: Vec<f64> = (0..2000).map(|_| f64::from_bits(next())).collect();
    let halves: Vec<u8> = (0..4000).map(|_| next() as u8).collect();
    let mut g = Graph::new("bits");
    let x = g.add_value("x", None).unwrap();
    let y = g.add_value("y", None).unwrap();
    g.set_inputs(vec![x]);
    g.set_outputs(vec![y]);
    let desc = OpDesc::new("Bits")
        .with_attr(Attribute::new("f", AttrValue::Floats(f32s.clone())))
        .with_attr(Attribute::new(
            "t",
            AttrValue::Tensors(vec![
                Tensor::from_f64(vec![f64s.len()], &f64s),
                Tensor::from_raw(DataType::Float16, vec![2000], Bytes::from(halves.clone()))
                    .unwrap(),
                Tensor::from_raw(DataType::Bfloat16, vec![2000], Bytes::from(halves)).unwrap(),
            ]),
        ));
    let op = g
        .add_op(desc.clone(), vec![Some(x)], vec![Some(y)])
        .unwrap();
    let m = Model {
        graph: g,
        ..Model::default()
    };
    let opts = PrintOptions {
        max_inline_elements: usize::MAX,
    };
    let text = print_model_with(&m, &opts);
    let back = parse_model(&text).unwrap();
    let d = &back.graph.op(back.graph.op_ids()[0]).desc;
    let bits = |v: &AttrValue| match v {
        AttrValue::Floats(f) => f.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        _ => panic!(),
    };
    assert_eq!(
        bits(&d.attrs[0].value),
        bits(&m.graph.op(op).desc.attrs[0].value)
    );
    // Tensors compare their bytes, so NaN payloads count.
    assert_eq!(d.attrs[1], desc.attrs[1]);
    assert_eq!(print_model_with(&back, &opts), text);
}

#[test]
fn generators_fill_fixtures() {
    let m = parse_model(t(r#"
graph g() -> () {
  init %z: float[2,2] = zeros
  init %o: int32[3] = ones
  init %f: double[2] = fill(-2.5)
  init %b: bool[2] = fill(true)
  init %r: float[4] = range(1, 0.5)
  init %ri: int64[3] = range(10, -4)
  init %s: float[1000] = seeded(0)
  init %s2: float[1000] = seeded(0, 2, 3)
  init %si: int8[1000] = seeded(7, -3, 3)
  init %sb: bool[64] = seeded(1)
  init %h: float16[3] = seeded(0)
}
"#))
    .unwrap();
    assert_eq!(init(&m, "z").to_f32_vec().unwrap(), [0.0; 4]);
    assert_eq!(init(&m, "o").to_i64_vec().unwrap(), [1; 3]);
    assert_eq!(init(&m, "f").to_f64_vec().unwrap(), [-2.5; 2]);
    assert_eq!(init(&m, "b").to_i64_vec().unwrap(), [1, 1]);
    assert_eq!(init(&m, "r").to_f32_vec().unwrap(), [1.0, 1.5, 2.0, 2.5]);
    assert_eq!(init(&m, "ri").to_i64_vec().unwrap(), [10, 6, 2]);
    // SplitMix64 from seed 0 starts 0xe220a8397b1dcdaf; the element is 2u - 1 with 24-bit u.
    let s = init(&m, "s").to_f32_vec().unwrap();
    assert_eq!(s[0], 2.0 * (0xe2_20a8 as f32 / (1 << 24) as f32) - 1.0);
    assert!(s.iter().all(|v| (-1.0..1.0).contains(v)));
    let mean = s.iter().sum::<f32>() / s.len() as f32;
    assert!(mean.abs() < 0.1, "mean {mean}");
    let s2 = init(&m, "s2").to_f32_vec().unwrap();
    assert!(s2.iter().all(|v| (2.0..3.0).contains(v)));
    assert_eq!(s2[0], 2.0 + 0xe2_20a8 as f32 / (1 << 24) as f32);
    let si = init(&m, "si").to_i64_vec().unwrap();
    assert!(si.iter().all(|v| (-3..3).contains(v)));
    for v in -3..3 {
        assert!(si.contains(&v), "{v} never drawn");
    }
    let sb = init(&m, "sb").to_i64_vec().unwrap();
    assert!(sb.contains(&0) && sb.contains(&1));
    // The same fixture twice gives the same weights.
    let again = parse_model(&print_model(&m).replace("<", "#")).err();
    assert!(again.is_some(), "digests do not parse");
    let m2 = parse_model(t(
        "graph g() -> () {\n  init %s: float[1000] = seeded(0)\n}\n",
    ))
    .unwrap();
    assert_eq!(init(&m2, "s"), init(&m, "s"));
}

#[test]
fn big_tensors_print_as_generators_or_digests() {
    let strings = vec!["\"s\""; 65].join(", ");
    let hex = "0f".repeat(65);
    let input = format!(
        r#"
graph g() -> () {{
  init %z: float[100] = zeros
  init %o: int8[65] = ones
  init %nz: float[80] = fill(-0.0)
  init %n: float16[70] = fill(NaN)
  init %f: bool[99] = fill(true)
  init %r: float[200] = range(-1.5, 0.25)
  init %ri: uint64[70] = range(18446744073709551615, -1)
  init %s: float[4,3,3,3] = seeded(3)
  init %si: int32[100] = seeded(3, 0, 1000)
  init %small: float[3] = zeros
  init %txt: string[65] = [{strings}]
  init %raw: int4[130] = hex({hex})
}}
"#
    );
    let printed = print_model(&parse_model(t(&input)).unwrap());
    let expect = t(r#"
model ir_version=8
opset 17
graph g() -> () {
  init %z: float[100] = zeros
  init %o: int8[65] = ones
  init %nz: float[80] = fill(-0.0)
  init %n: float16[70] = fill(NaN)
  init %f: bool[99] = ones
  init %r: float[200] = range(-1.5, 0.25)
  init %ri: uint64[70] = range(18446744073709551615, -1)
  init %s: float[4,3,3,3] = <nnz=108 sum=8.872221e-1 fnv=0x3a8c015017444e26>
  init %si: int32[100] = <nnz=100 sum=5.079600e4 fnv=0x65c8f8d47e108990>
  init %small: float[3] = [0.0, 0.0, 0.0]
  init %txt: string[65] = <fnv=0xe313e4144c5d8e55>
  init %raw: int4[130] = <fnv=0x1b8000064994f21e>
}
"#);
    assert_eq!(printed, expect);
    // Digests hold no values, so they do not parse back.
    let err = parse_model(expect).unwrap_err();
    assert_eq!(err.to_string(), "11:29: a digest stands for values the text does not hold; write the values or a generator (zeros, ones, fill, range, seeded)");
}

#[test]
fn digest_hashes_storage_with_fnv1a() {
    // "foobar" is a published FNV-1a 64 test vector.
    let m =
        parse_model("graph g() -> () {\n  init %t: uint8[6] = [102, 111, 111, 98, 97, 114]\n}\n")
            .unwrap();
    let opts = PrintOptions {
        max_inline_elements: 0,
    };
    let text = print_model_with(&m, &opts);
    assert!(
        text.contains("<nnz=6 sum=6.330000e2 fnv=0x85944171f73967e8>"),
        "{text}"
    );
}

#[test]
fn initializer_forms_round_trip() {
    let m = roundtrip(
        r#"
model ir_version=8
opset 17
graph g(%x: float[2], %d: float[2], %e) -> (%y) {
  init %typed: float[2] = [1.0, 2.0]
  init %untyped = float[2] [3.0, 4.0]
  init %d = float[2] [0.0, 1.0]
  init %sym: float[N] = float[2] [5.0, 6.0]
  init %e = int64[1] [3]
  %y = Sum(%x, %typed, %untyped, %d, %sym, %e)
}
"#,
    );
    let g = &m.graph;
    let ty = |n: &str| g.value(g.value_by_name(n).unwrap()).ty.clone();
    assert!(ty("typed").is_some() && ty("untyped").is_none() && ty("e").is_none());
    let names: Vec<_> = g
        .initializer_ids()
        .into_iter()
        .map(|v| g.value(v).name.clone())
        .collect();
    assert_eq!(names, ["typed", "untyped", "d", "sym", "e"]);
    // %d is an input with a default value, so not a constant (IR >= 4).
    let d = g.value_by_name("d").unwrap();
    assert!(g.initializer(d).is_some() && g.constant(d).is_none());
    assert!(g.value(g.value_by_name("typed").unwrap()).in_value_info);
    assert!(!g.value(d).in_value_info);

    // `: ?` is an explicit "no type".
    check(
        "graph g() -> () {\n  init %u: ? = float[1] [1]\n}\n",
        "model ir_version=8\nopset 17\ngraph g() -> () {\n  init %u = float[1] [1.0]\n}\n",
    );
    // An annotation on a graph input's initializer must agree with the signature.
    check(
        "graph g(%d) -> (%d) {\n  init %d: float[1] = [1]\n}\n",
        "model ir_version=8\nopset 17\ngraph g(%d: float[1]) -> (%d: float[1]) {\n  init %d = float[1] [1.0]\n}\n",
    );
    check_err(
        "graph g(%d: float[2]) -> (%d) {\n  init %d: float[1] = [1]\n}\n",
        "2:8: initializer %d's type differs from graph input %d's",
    );
}

#[test]
fn legacy_models_keep_initializers_constant() {
    let m = roundtrip(
        r#"
model ir_version=3
opset 8
graph g(%x: float[1], %w: float[1]) -> (%y) {
  init %w = float[1] [2.0]
  %y = Mul(%x, %w)
}
"#,
    );
    let g = &m.graph;
    assert!(g.legacy_initializer_inputs);
    assert!(g.constant(g.value_by_name("w").unwrap()).is_some());
}

/// A model built through the API, with op order keys that are not topological and values
/// created out of text order.
fn api_model() -> Model {
    let mut g = Graph::new("api");
    let f = |dims: &[usize]| {
        Some(ValueType::Tensor(TensorType {
            elem: DataType::Float,
            shape: Some(dims.iter().map(|&d| Dim::Known(d)).collect()),
        }))
    };
    let out = g.add_value("out", f(&[1, 8])).unwrap();
    let h = g.add_value("h", f(&[1, 8])).unwrap();
    let b = g.add_value("b", None).unwrap();
    let x = g.add_value("x", f(&[1, 4])).unwrap();
    let w = g.add_value("w", f(&[8, 4])).unwrap();
    let shape = g.add_value("shape", None).unwrap();
    g.set_initializer(b, Tensor::from_f32(vec![8], &[0.5; 8]));
    g.set_initializer(
        w,
        Tensor::from_f32(
            vec![8, 4],
            &(0..32).map(|i| i as f32 / 4.0).collect::<Vec<_>>(),
        ),
    );
    g.set_initializer(shape, Tensor::from_i64(vec![2], &[1, -1]));
    // Typed values other than graph inputs and outputs go to value_info, as the text assumes.
    g.value_mut(h).in_value_info = true;
    g.value_mut(w).in_value_info = true;
    g.add_op(
        OpDesc::new("Relu").with_name("act"),
        vec![Some(h)],
        vec![Some(out)],
    )
    .unwrap();
    g.add_op(
        OpDesc::new("Gemm")
            .with_name("fc")
            .with_attr(Attribute::float("alpha", 1.0))
            .with_attr(Attribute::int("transB", 1)),
        vec![Some(x), Some(w), Some(b)],
        vec![Some(h)],
    )
    .unwrap();
    g.set_inputs(vec![x]);
    g.set_outputs(vec![out]);
    Model {
        ir_version: 9,
        opset_imports: vec![OpsetImport {
            domain: String::new(),
            version: 19,
        }],
        producer_name: Some("ssc-ir tests".into()),
        graph: g,
        ..Model::default()
    }
}

/// Compares what the text form carries: header, interface, ops in order, types, initializers.
fn assert_same_model(a: &Model, b: &Model) {
    assert_eq!(a.ir_version, b.ir_version);
    assert_eq!(a.opset_imports, b.opset_imports);
    assert_eq!(a.producer_name, b.producer_name);
    let (ga, gb) = (&a.graph, &b.graph);
    assert_eq!(ga.name, gb.name);
    let name = |g: &Graph, v: Option<ValueId>| v.map(|v| g.value(v).name.clone());
    let iface = |g: &Graph, ids: &[ValueId]| {
        ids.iter()
            .map(|&v| (name(g, Some(v)), g.value(v).ty.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(iface(ga, ga.inputs()), iface(gb, gb.inputs()));
    assert_eq!(iface(ga, ga.outputs()), iface(gb, gb.outputs()));
    let ops = |g: &Graph| {
        g.topo_order()
            .unwrap()
            .into_iter()
            .map(|o| {
                let op = g.op(o);
                let io = |s: &[Option<ValueId>]| {
                    s.iter()
                        .map(|&v| (name(g, v), v.and_then(|v| g.value(v).ty.clone())))
                        .collect::<Vec<_>>()
                };
                (op.desc.clone(), io(op.inputs()), io(op.outputs()))
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(ops(ga), ops(gb));
    let inits = |g: &Graph| {
        g.initializer_ids()
            .into_iter()
            .map(|v| {
                (
                    name(g, Some(v)),
                    g.value(v).ty.clone(),
                    g.initializer(v).cloned(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(inits(ga), inits(gb));
    for v in ga.value_ids() {
        let val = ga.value(v);
        let other = gb.value(gb.value_by_name(&val.name).expect("value kept"));
        assert_eq!(val.in_value_info, other.in_value_info, "{}", val.name);
    }
}

#[test]
fn printing_then_parsing_reproduces_an_api_model() {
    let m = api_model();
    for max in [0, 8, usize::MAX] {
        let opts = PrintOptions {
            max_inline_elements: max,
        };
        let text = print_model_with(&m, &opts);
        if max == 8 {
            // The 32-element weight is an arithmetic progression.
            assert!(
                text.contains("init %w: float[8,4] = range(0.0, 0.25)"),
                "{text}"
            );
        }
        let back = parse_model(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_same_model(&m, &back);
        assert_eq!(print_model_with(&back, &opts), text);
    }
}

#[test]
fn printing_a_small_model() {
    // The API model plus what snapshots of real rewrites show: a weight too big to print, a
    // multi-output op, an empty optional slot, a custom domain, quoted and symbolic names.
    let mut m = api_model();
    m.opset_imports.push(OpsetImport {
        domain: "com.example".into(),
        version: 1,
    });
    let g = &mut m.graph;
    let out = g.value_by_name("out").unwrap();
    let half = Some(ValueType::Tensor(TensorType {
        elem: DataType::Float,
        shape: Some(vec![Dim::Known(1), Dim::Known(4)]),
    }));
    let lo = g.add_value("lo", half).unwrap();
    let hi = g.add_value("hi", None).unwrap();
    g.add_op(
        OpDesc::new("Split")
            .with_attr(Attribute::int("axis", 1))
            .with_attr(Attribute::int("num_outputs", 2)),
        vec![Some(out)],
        vec![Some(lo), Some(hi)],
    )
    .unwrap();
    let mut seed = 1u32;
    let values: Vec<f32> = (0..16 * 8 * 9)
        .map(|_| {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) as f32 / (1 << 24) as f32 - 0.5
        })
        .collect();
    let big = g.add_value("big_w", None).unwrap();
    g.set_initializer(big, Tensor::from_f32(vec![16, 8, 3, 3], &values));
    let pred = g
        .add_value(
            "gpu_0/pred:0",
            Some(ValueType::Tensor(TensorType {
                elem: DataType::Float,
                shape: Some(vec![Dim::Param("N".into()), Dim::Unknown]),
            })),
        )
        .unwrap();
    let mut fused = OpDesc::new("Fused").with_attr(Attribute::string("mode", "fast"));
    fused.domain = "com.example".into();
    g.add_op(
        fused,
        vec![Some(lo), None, Some(hi), Some(big)],
        vec![Some(pred)],
    )
    .unwrap();
    g.set_outputs(vec![pred, out]);
    insta::assert_snapshot!(print_model(&m));
}

#[test]
fn missing_header_takes_defaults() {
    check(
        "graph g(%x) -> (%y) {\n  %y = Relu(%x)\n}\n",
        "model ir_version=8\nopset 17\ngraph g(%x) -> (%y) {\n  %y = Relu(%x)\n}\n",
    );
    // An explicit header is taken as written, with no opset if none is listed.
    let m = roundtrip("model ir_version=7\ngraph g() -> () {\n}\n");
    assert!(m.opset_imports.is_empty());
    // Opset lines without a model line keep the default ir_version.
    check(
        "opset com.example 2\ngraph () -> () {\n}\n",
        "model ir_version=8\nopset com.example 2\ngraph () -> () {\n}\n",
    );
}

#[test]
fn loose_input_prints_canonically() {
    check(
        r#"
# A fixture may comment, wrap lists and write numbers loosely.
opset 17

graph g(
    %x: float[2,2],   # the input
    %"y"
) -> (%z) {

  init %w: float[2,2] = [
    1, 2,     # row 0
    3, 4.5,   # row 1
  ]
  %s = Add(%x, %w,) {alpha = 1, scales=[1, 2.0], f=floats[1, 2], name_="x"}   # trailing comma
  %z = Mul(%s, %y)   :   float[ 2 , 2 ]   name = "m"
}
"#,
        r#"
model ir_version=8
opset 17
graph g(%x: float[2,2], %y) -> (%z: float[2,2]) {
  init %w: float[2,2] = [1.0, 2.0, 3.0, 4.5]
  %s = Add(%x, %w) {alpha=1, scales=[1.0, 2.0], f=[1.0, 2.0], name_="x"}
  %z = Mul(%s, %y) : float[2,2] name="m"
}
"#,
    );
}

#[test]
fn unprintable_parts_are_marked() {
    let mut m = api_model();
    m.functions.push(Bytes::from_static(b"f"));
    m.graph.extras.sparse_initializers = vec![Bytes::new(), Bytes::new()];
    let op = m.graph.op_ids()[0];
    m.graph.desc_mut(op).set_attr(Attribute::new(
        "body",
        AttrValue::Opaque {
            kind: crate::OpaqueAttrKind::SparseTensor,
            encoded: Bytes::new(),
        },
    ));
    let text = print_model(&m);
    assert!(
        text.contains("\n# not shown: 1 function, 2 sparse initializers\n"),
        "{text}"
    );
    assert!(text.contains("{body=<sparse_tensor>}"), "{text}");
    let err = parse_model(&text).unwrap_err();
    assert!(
        err.msg
            .starts_with("attribute `body` is opaque (`<sparse_tensor>`)"),
        "{err}"
    );
}

#[test]
fn cycles_print_with_a_warning() {
    let mut g = Graph::new("c");
    let a = g.add_value("a", None).unwrap();
    let b = g.add_value("b", None).unwrap();
    g.add_op(
        OpDesc::new("Relu").with_name("p"),
        vec![Some(a)],
        vec![Some(b)],
    )
    .unwrap();
    g.add_op(
        OpDesc::new("Relu").with_name("q"),
        vec![Some(b)],
        vec![Some(a)],
    )
    .unwrap();
    assert_eq!(
        print_graph(&g),
        t(r#"
graph c() -> () {
  # warning: the graph has a cycle through node `p`; ops follow in insertion order
  %b = Relu(%a) name="p"
  %a = Relu(%b) name="q"
}
"#)
    );
}

#[test]
fn parse_errors_point_at_the_problem() {
    let cases: &[(&str, &str)] = &[
        ("graph g(%x) -> (%y) {\n  %y = Relu(%q)\n}\n", "2:13: unknown value %q"),
        ("graph g(%x) -> (%y) {\n  %y = Relu(%x)\n  %y = Relu(%x)\n}\n", "3:3: value %y is already defined at 2:3"),
        ("graph g(%x) -> (%x) {\n  %x = Relu(%x)\n}\n", "2:3: value %x is already defined at 1:9"),
        ("graph g(%x, %x) -> () {\n}\n", "1:13: value %x is already defined at 1:9"),
        ("graph g(%x) -> (%z) {\n  %z = Add(%x, %y)\n  %y = Relu(%x)\n}\n", "2:16: value %y is used before its definition at 3:3"),
        ("graph g(%x) -> (%z) {\n}\n", "1:17: graph output %z is never defined"),
        ("graph g(%x) -> (%y) {\n  %y = Relu(%x\n}\n", "3:1: expected `,` or `)` to close `(` at 2:12, found `}`"),
        ("graph g(%x) -> (%y) {\n  %y = Relu(%x)) \n}\n", "2:16: expected end of line, found `)`"),
        ("graph g(%x) -> (%y) {\n  %y = Relu(x)\n}\n", "2:13: expected a value like `%x` or `_`, found `x`"),
        ("graph g(%x) -> (%y) {\n  %y Relu(%x)\n}\n", "2:6: expected `=`, found `Relu`"),
        ("graph g(%x: flaot[1]) -> () {\n}\n", "1:13: unknown element type `flaot`"),
        ("graph g(%x: float[1,,2]) -> () {\n}\n", "1:21: expected a dimension (a number, `?` or a symbol), found `,`"),
        ("graph g() -> () {\n  init %w: float[2] = [1, 2, 3]\n}\n", "2:23: float[2] needs 2 values, found 3"),
        ("graph g() -> () {\n  init %w: uint8[1] = [256]\n}\n", "2:24: 256 is out of range for uint8"),
        ("graph g() -> () {\n  init %w: int32[1] = [1.5]\n}\n", "2:24: `1.5` is not a valid int32 value"),
        ("graph g() -> () {\n  init %w: float[N] = zeros\n}\n", "2:8: initializer %w needs known dims, not float[N]"),
        ("graph g() -> () {\n  init %w = zeros\n}\n", "2:13: initializer %w needs a tensor type: `init %w: float[4] = ...` or `init %w = float[4] ...`"),
        ("graph g() -> () {\n  init %w: float[2] = ones\n  init %w: float[2] = ones\n}\n", "3:8: value %w is already defined at 2:8"),
        ("graph g() -> () {\n  init %w: int8[2] = seeded(1)\n}\n", "2:22: seeded over int8 needs a range: seeded(seed, lo, hi)"),
        ("graph g() -> () {\n  init %w: int8[300] = range(0, 1)\n}\n", "2:24: range element 128: 128 is out of range for int8"),
        ("graph g() -> () {\n  init %w: float[100000,100000] = zeros\n}\n", "2:35: a float[100000,100000] tensor is too large for the text form (limit 268435456 bytes)"),
        ("graph g() -> () {\n  %a = F() {t=float[18446744073709551615,2] zeros}\n}\n", "2:15: the element count of float[18446744073709551615,2] overflows"),
        ("graph g() -> () {\n  init %w: float[2] = bogus\n}\n", "2:23: expected tensor values: `[...]`, zeros, ones, fill(v), range(start, step), seeded(seed) or hex(...), found `bogus`"),
        ("graph g() -> () {\n  %a = F() {s=\"abc}\n}\n", "2:15: unterminated string"),
        ("graph g() -> () {\n  %a = F() {s=\"\\q\"}\n}\n", "2:16: unknown escape; use \\n \\r \\t \\\\ \\\" or \\xNN"),
        ("graph g() -> () {\n  %a = F() {l=[]}\n}\n", "2:15: an empty list needs its kind: ints[], floats[], strings[] or tensors[]"),
        ("graph g() -> () {\n  %a = F() {l=[1, \"a\"]}\n}\n", "2:15: this is a list of ints, so every item must be one"),
        ("graph g() -> () {\n  %a = F() {i=99999999999999999999}\n}\n", "2:15: 99999999999999999999 does not fit an int attribute"),
        ("graph g() -> () {\n  %a = F() {f=1.5.2}\n}\n", "2:15: malformed number `1.5.2`"),
        ("graph g() -> () {\n  %a = F() {f=-NaN}\n}\n", "2:15: a signed NaN is written as its bits: nan(0x...)"),
        ("graph g() -> () {\n  %a, %b = F() : float[1]\n}\n", "2:18: 1 type(s) for 2 named output(s): write one per output, `?` for none"),
        ("graph g() -> () {\n  %a = F() name=\"x\" name=\"y\"\n}\n", "2:21: `name` is given twice"),
        ("graph g(%x: <opaque>) -> () {\n}\n", "1:13: opaque types (map, sparse, annotated) have no text form"),
        ("graph g(%x: seq(?)) -> () {\n}\n", "1:17: `seq(...)` needs an element type, not `?`"),
        ("graph g() -> () {\n  %a = F()\n", "3:1: expected a statement or `}` to close the graph, found end of input"),
        ("graph g() -> () {\n}\nextra\n", "3:1: expected end of input after the graph, found `extra`"),
        ("model ir_version=8 color=\"red\"\ngraph g() -> () {\n}\n", "1:20: unknown model field `color` (known: ir_version, producer_name, producer_version, domain, model_version)"),
        ("model ir_version=8 ir_version=9\ngraph g() -> () {\n}\n", "1:20: model field `ir_version` is given twice"),
        ("grap g() -> () {\n}\n", "1:1: expected `model`, `opset` or `graph`, found `grap`"),
        ("graph g() -> () {\n  %\"\" = F()\n}\n", "2:3: value name is empty"),
        ("graph g() -> () {\n  %a = F() {t=float[2] <nnz=2 sum=1 fnv=0x1>}\n}\n", "2:24: a digest stands for values the text does not hold; write the values or a generator (zeros, ones, fill, range, seeded)"),
    ];
    let mut failures = Vec::new();
    for (input, expect) in cases {
        match parse_model(input) {
            Ok(m) => failures.push(format!("{input:?} parsed:\n{}", print_model(&m))),
            Err(e) if e.to_string() != *expect => {
                failures.push(format!("{input:?}\n  want {expect}\n  got  {e}"))
            }
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Valid texts that mutations start from.
const CORPUS: &[&str] = &[
    "model ir_version=8 producer_name=\"p\"\nopset 17\nopset com.x 1\ngraph g(%x: float[N,3], %\"a b\": int64[*]) -> (%y: float[N,3]) {\n  init %w: float[3] = [0.5, -1e-5, inf]\n  init %s = int64[2] range(0, 1)\n  %t, _ = com.x.Op(%x, _, %w) {a=1, b=[1.5, 2.0], c=\"s\\n\", d=float[1] [1.0], e=ints[]} : float[N,3]\n  %y = Relu(%t) name=\"r\"\n}\n",
    "graph (%a: bool[2], %q: optional(seq(float[?,3]))) -> (%b) {\n  init %k: uint8[4] = seeded(9, 0, 10)\n  init %h: float16[2] = [NaN, nan(0x7e01)]\n  %b = Not(%a) captures=[%k]\n}\n",
];

#[test]
fn mutated_texts_never_panic() {
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let alphabet: Vec<char> = "%\"\\[](){}<>,:=_#?*.-+0123456789eEnxafgil \n\té\u{0}"
        .chars()
        .collect();
    let mut parsed = 0;
    for i in 0..6000 {
        let base: Vec<char> = CORPUS[i % CORPUS.len()].chars().collect();
        let mut text = base.clone();
        for _ in 0..1 + next() % 4 {
            let at = (next() % (text.len() as u64 + 1)) as usize;
            match next() % 4 {
                0 if at < text.len() => {
                    text.remove(at);
                }
                1 => text.insert(at, alphabet[(next() % alphabet.len() as u64) as usize]),
                2 if at < text.len() => {
                    text[at] = alphabet[(next() % alphabet.len() as u64) as usize]
                }
                _ => {
                    // Splice a slice of the text elsewhere.
                    let from = (next() % base.len() as u64) as usize;
                    let len = (next() % 12) as usize;
                    let piece: Vec<char> = base[from..(from + len).min(base.len())].to_vec();
                    let at = at.min(text.len());
                    text.splice(at..at, piece);
                }
            }
        }
        let text: String = text.into_iter().collect();
        if let Ok(m) = parse_model(&text) {
            parsed += 1;
            let printed = print_model(&m);
            if !printed.contains('<') {
                let again = parse_model(&printed)
                    .unwrap_or_else(|e| panic!("{e}\nfrom {text:?}\nprinted {printed}"));
                assert_eq!(print_model(&again), printed, "from {text:?}");
            }
        }
    }
    // Random bytes, too.
    for _ in 0..2000 {
        let n = (next() % 64) as usize;
        let text: String = (0..n)
            .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
            .collect();
        let _ = parse_model(&text);
        let _ = parse_model(&format!("graph g() -> () {{\n  {text}\n}}\n"));
    }
    assert!(parsed > 100, "only {parsed} mutants parsed");
}

#[test]
fn subgraphs_round_trip_with_their_captures() {
    // If's branches read %x and %w from the main graph; the Loop body nested in the else
    // branch reads %w through two levels, so the else branch captures it too.
    let m = roundtrip(
        r#"
model ir_version=8
opset 17
graph main(%c: bool[], %x: float[2]) -> (%y: float[2]) {
  init %w: float[2] = [1.0, 2.0]
  %y = If(%c) {else_branch=graph other() -> (%e) {
    init %n: int64[] = [3]
    %e = Loop(%n, _, %x) {body=graph step(%i: int64[], %cond: bool[], %v: float[2]) -> (%cond: bool[], %v2) {
      %v2 = Add(%v, %w)
    }} captures=[%w]
  }, then_branch=graph then() -> (%t: float[2]) {
    %t = Mul(%x, %w) : float[2]
  }} : float[2] captures=[%w, %x]
}
"#,
    );
    let g = &m.graph;
    let op = g.op(g.op_ids()[0]);
    let names = |g: &Graph, ids: &[ValueId]| -> Vec<String> {
        ids.iter().map(|&v| g.value(v).name.clone()).collect()
    };
    assert_eq!(names(g, op.captures()), ["w", "x"]);
    let then = op.desc.get_graph("then_branch").unwrap().unwrap();
    assert_eq!(names(then, &then.free_values()), ["x", "w"]);
    let other = op.desc.get_graph("else_branch").unwrap().unwrap();
    // The branch's own free values: what it reads from `main` (the Loop's %x and its body's %w).
    assert_eq!(names(other, &other.free_values()), ["x", "w"]);
    let lp = other.op(other.op_ids()[0]);
    assert_eq!(names(other, lp.captures()), ["w"]);
    // Parsing builds equal graphs; fresh names avoid the subgraphs' names too.
    assert_eq!(m.graph, parse_model(&print_model(&m)).unwrap().graph);
    assert_eq!(m.graph.fresh_name("v2"), "v2_1");
}

#[test]
fn subgraph_names_resolve_only_in_scope() {
    check_err(
        r#"
graph (%c: bool[]) -> (%y) {
  %y = If(%c) {then_branch=graph () -> (%t) {
    %t = Neg(%nowhere)
  }, else_branch=graph () -> (%c) {
  }}
}
"#,
        "3:14: unknown value %nowhere",
    );
}

/// Sequence and optional types print and parse back, nested and with symbolic dims.
#[test]
fn sequence_and_optional_types_round_trip() {
    let text = "graph g(%s: seq(float[N,3]), %o: optional(seq(int64[*]))) -> (%y: optional(float[2])) {\n  %y = Optional(%s)\n}\n";
    let m = parse_model(text).unwrap();
    let g = &m.graph;
    let ty = |i: usize| g.value(g.inputs()[i]).ty.clone().unwrap();
    assert!(matches!(ty(0), ValueType::Sequence(e) if e.is_tensor()));
    assert!(matches!(ty(1), ValueType::Optional(e) if matches!(*e, ValueType::Sequence(_))));
    let printed = print_model(&m);
    assert!(printed.contains("%o: optional(seq(int64[*]))"), "{printed}");
    assert_eq!(print_model(&parse_model(&printed).unwrap()), printed);
}
