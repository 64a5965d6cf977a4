//! Prints the weight-structure analysis of an ONNX model and how long it took, to eyeball a
//! model's structure and to time the analysis on big models (run it with `--release`).
//!
//! `cargo run --release -p ssc-structure --example analyze -- MODEL.onnx [--eps E] [--json] [--repeat N]`

use std::time::Instant;

use ssc_structure::{analyze_model, AnalysisOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut path = None;
    let mut opts = AnalysisOptions::exact();
    let mut json = false;
    let mut repeat = 1usize;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--eps" => opts.epsilon = args.next().ok_or("--eps needs a value")?.parse()?,
            "--json" => json = true,
            "--repeat" => repeat = args.next().ok_or("--repeat needs a count")?.parse()?,
            _ => path = Some(a),
        }
    }
    let path = path.ok_or("usage: analyze MODEL.onnx [--eps E] [--json] [--repeat N]")?;
    let t0 = Instant::now();
    let model = ssc_onnx::load_model(path.as_ref())?;
    let loaded = t0.elapsed();
    // The fastest of `repeat` runs: the machine is shared, so single timings are noisy.
    let mut analysed = std::time::Duration::MAX;
    let mut s = None;
    for _ in 0..repeat.max(1) {
        let t1 = Instant::now();
        s = Some(analyze_model(&model, &opts)?);
        analysed = analysed.min(t1.elapsed());
    }
    let s = s.expect("at least one run");
    if json {
        println!("{}", serde_json::to_string_pretty(&s)?);
    } else {
        print!("{s}");
    }
    let weights: u64 = s
        .nodes
        .values()
        .map(|n| match n {
            ssc_structure::NodeStructure::Conv(c) => c.numel,
            ssc_structure::NodeStructure::Matrix(m) => m.numel,
        })
        .sum();
    eprintln!(
        "{} nodes, {weights} weights: load {:.1} ms, analysis {:.1} ms",
        s.nodes.len(),
        loaded.as_secs_f64() * 1e3,
        analysed.as_secs_f64() * 1e3
    );
    Ok(())
}
