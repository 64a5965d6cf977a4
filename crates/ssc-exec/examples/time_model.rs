//! Times the reference executor on one ONNX model: `cargo run --release -p ssc-exec --example
//! time_model -- model.onnx [runs] [save.pb]`. Inputs are deterministic (`k / n` ramps, unknown
//! dims 1); with `save.pb` the first output of the last run is written as a TensorProto.

use std::time::Instant;

use ssc_ir::{DataType, Tensor};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: time_model MODEL.onnx [RUNS]")?;
    let runs: usize = args.next().map(|r| r.parse()).transpose()?.unwrap_or(1);
    let save = args.next();
    let t0 = Instant::now();
    let model = ssc_onnx::load_model(path.as_ref())?;
    let load = t0.elapsed();
    let t1 = Instant::now();
    let ex = ssc_exec::Executor::new(&model)?;
    let prep = t1.elapsed();
    let g = &model.graph;
    let mut feeds = Vec::new();
    for &v in g.inputs() {
        if g.initializer(v).is_some() {
            continue;
        }
        let val = g.value(v);
        let ty = val
            .ty
            .as_ref()
            .and_then(|t| t.tensor())
            .ok_or("untyped input")?;
        let dims: Vec<usize> = ty
            .shape
            .as_ref()
            .map(|s| s.iter().map(|d| d.known().unwrap_or(1)).collect())
            .unwrap_or_default();
        let n: usize = dims.iter().product();
        let ramp: Vec<f64> = (0..n).map(|k| k as f64 / n.max(1) as f64).collect();
        let dt = if ty.elem == DataType::Float {
            DataType::Float
        } else {
            ty.elem
        };
        let t = Tensor::from_f64_as(dt, dims, &ramp).ok_or("unsupported input type")?;
        feeds.push((val.name.clone(), t));
    }
    println!(
        "loaded {path} in {load:.2?}, prepared in {prep:.2?} ({} ops)",
        g.op_count()
    );
    let mut last = Vec::new();
    for r in 0..runs {
        let t = Instant::now();
        let out = ex.run(&feeds)?;
        let dt = t.elapsed();
        let summary: Vec<String> = out
            .iter()
            .map(|(n, t)| {
                let v = t.to_f64_vec().unwrap_or_default();
                let sum: f64 = v.iter().sum();
                format!("{n} {:?} sum={sum:.6}", t.dims)
            })
            .collect();
        println!(
            "run {r}: {:.3} s  [{}]",
            dt.as_secs_f64(),
            summary.join("; ")
        );
        last = out;
    }
    if let (Some(p), Some((name, t))) = (save, last.first()) {
        std::fs::write(&p, ssc_onnx::encode_tensor_pb(name, t))?;
        println!("wrote {name} to {p}");
    }
    Ok(())
}
