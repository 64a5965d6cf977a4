//! The long-lived helper of the differential fuzzer (`tests/conformance/fuzz.py`): one process
//! serves a whole batch of random graphs, so the fuzzer pays one process start per batch instead
//! of three per graph, and each graph goes through exactly the facade calls the CLI makes.
//!
//! Protocol: one JSON request per line on stdin, one JSON response per line on stdout.
//!
//! ```text
//! {"model": "g.onnx", "out": "g.opt.onnx", "cost": "macs", "threads": 1,
//!  "inputs": [["x", "g.x.npy"]], "jit_dir": "g.jit"}
//! ```
//!
//! For each request: `ssc-opt g.onnx -o g.opt.onnx --no-verify --cost-model COST` (load,
//! optimise, save atomically), then `ssc-opt run --engine jit` on the original and on the
//! saved optimised file, with the given `.npy` inputs, writing `orig.OUTPUT.npy` and
//! `opt.OUTPUT.npy` into `jit_dir`. The response says what failed, if anything (`optimize`,
//! `jit_orig`, `jit_opt`: the error line the CLI would print, or `panic: ...`), the optimiser's
//! warnings and the rules whose forms were chosen. A panic is caught and reported for that
//! request; the helper goes on with the next one.
//!
//! Build it with `cargo build --release -p ssc-opt --example fuzz_helper`.

use std::io::{BufRead, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{json, Value};
use ssc_opt::ir::Tensor;
use ssc_opt::ssc_rewrite::{CalibratedCost, CostModel, MacCost, RewriteOptions};
use ssc_opt::{Engine, Options, SaveOptions};

type Outputs = Vec<(String, Tensor)>;

/// Runs `f`, turning an error or a panic into the one line the CLI would print.
fn guarded<T>(f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "(no message)".to_string());
            Err(format!("panic: {msg}"))
        }
    }
}

fn cost(name: &str) -> Result<Arc<dyn CostModel>, String> {
    match name {
        "macs" => Ok(Arc::new(MacCost)),
        "calibrated" => Ok(Arc::new(CalibratedCost::default())),
        other => Err(format!("unknown cost model `{other}`")),
    }
}

/// `ssc-opt IN -o OUT --no-verify --cost-model COST`: the warnings and the chosen rules.
fn optimize(req: &Value) -> Result<(Vec<String>, Vec<String>), String> {
    let input = Path::new(req["model"].as_str().ok_or("no model")?);
    let output = Path::new(req["out"].as_str().ok_or("no out")?);
    let loaded = ssc_opt::load(input).map_err(|e| e.to_string())?;
    let mut model = loaded.model;
    let opts = Options {
        rewrite_options: RewriteOptions {
            cost: cost(req["cost"].as_str().unwrap_or("calibrated"))?,
            ..RewriteOptions::default()
        },
        ..Options::default()
    };
    let report = ssc_opt::optimize(&mut model, &opts).map_err(|e| e.to_string())?;
    ssc_opt::save(&model, output, &SaveOptions::default()).map_err(|e| e.to_string())?;
    let mut warnings = loaded.warnings;
    warnings.extend(report.warnings);
    let rules = report
        .rewrite
        .iter()
        .flat_map(|r| &r.layers)
        .filter_map(|l| {
            // A composed form counts as its own kind: `ssc-split>zero-inputs-sliced`.
            let r = l.rule.clone()?;
            Some(
                std::iter::once(r)
                    .chain(l.composed.iter().cloned())
                    .collect::<Vec<_>>()
                    .join(">"),
            )
        })
        .collect();
    Ok((warnings, rules))
}

/// `ssc-opt run MODEL --engine jit --input NAME=FILE.npy ... --threads N`.
fn run_jit(model: &Path, req: &Value) -> Result<Outputs, String> {
    let model = ssc_opt::load(model).map_err(|e| e.to_string())?.model;
    let mut feeds = Vec::new();
    for pair in req["inputs"].as_array().ok_or("no inputs")? {
        let name = pair[0].as_str().ok_or("bad input name")?;
        let path = PathBuf::from(pair[1].as_str().ok_or("bad input path")?);
        feeds.push((name.to_string(), ssc_opt::Feed::File(path)));
    }
    let inputs = ssc_opt::prepare_inputs(&model, &feeds, &[], 0).map_err(|e| e.to_string())?;
    let threads = req["threads"].as_u64().unwrap_or(1) as usize;
    let (outputs, _) =
        ssc_opt::run_with(&model, &inputs, Engine::Jit, threads).map_err(|e| e.to_string())?;
    Ok(outputs)
}

fn write_outputs(dir: &Path, prefix: &str, outputs: &Outputs) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    for (i, (_, t)) in outputs.iter().enumerate() {
        let path = dir.join(format!("{prefix}.{i}.npy"));
        let bytes =
            ssc_opt::encode_npy(t, &path.display().to_string()).map_err(|e| e.to_string())?;
        std::fs::write(&path, bytes).map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn serve(req: &Value) -> Value {
    let mut resp = json!({ "id": req["id"].clone() });
    let jit_dir = PathBuf::from(req["jit_dir"].as_str().unwrap_or("."));
    match guarded(|| optimize(req)) {
        Ok((warnings, rules)) => {
            resp["warnings"] = json!(warnings);
            resp["rules"] = json!(rules);
        }
        Err(e) => resp["optimize"] = json!(e),
    }
    let runs = [("jit_orig", "orig", "model"), ("jit_opt", "opt", "out")];
    for (key, prefix, file) in runs {
        if key == "jit_opt" && resp.get("optimize").is_some() {
            continue;
        }
        let path = PathBuf::from(req[file].as_str().unwrap_or(""));
        let r = guarded(|| write_outputs(&jit_dir, prefix, &run_jit(&path, req)?));
        if let Err(e) = r {
            resp[key] = json!(e);
        }
    }
    resp
}

fn main() {
    // Panics are reported in the response; the default hook would also print them to stderr,
    // which the fuzzer does not read.
    std::panic::set_hook(Box::new(|_| {}));
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout().lock();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        let resp = match serde_json::from_str::<Value>(&line) {
            Ok(req) => serve(&req),
            Err(e) => json!({ "optimize": format!("bad request: {e}") }),
        };
        if writeln!(stdout, "{resp}")
            .and_then(|_| stdout.flush())
            .is_err()
        {
            break;
        }
    }
}
