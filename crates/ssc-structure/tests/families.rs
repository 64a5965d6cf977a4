//! The structure families planted by `scripts/make_structured.py` into ResNet-18 must each be
//! recognised on every layer the generator says it changed, and nothing must be "found" on the
//! layers it left dense.
//!
//! Models come from `$SSC_STRUCTURED_MODELS` or `tests/models/structured/` at the workspace
//! root (regenerate with `python scripts/make_structured.py`); without a manifest there, the
//! test says so and passes.

use std::path::PathBuf;

use serde_json::Value;
use ssc_structure::{analyze_model, AnalysisOptions, ConvStructure, NodeStructure, TapSet};

fn models_dir() -> PathBuf {
    match std::env::var_os("SSC_STRUCTURED_MODELS") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/models/structured"),
    }
}

/// A layer the family left alone: seeded random weights are dense and unstructured.
fn dense(c: &ConvStructure) -> Result<(), String> {
    let ok = c.zero_fraction == 0.0
        && c.connectivity.is_dense()
        && c.ssc.is_none()
        && !c.taps.shrinkable
        && (c.taps_per_kernel() == 1 || c.kernels.full == c.kernels.total())
        && c.unified.input_classes.is_empty()
        && c.unified.output_classes.is_empty()
        && !c.unified.all_kernels_constant;
    ok.then_some(())
        .ok_or_else(|| "expected a dense, unstructured weight".into())
}

fn expect(cond: bool, what: &str) -> Result<(), String> {
    cond.then_some(()).ok_or_else(|| what.to_string())
}

/// What `family` must look like to the analysis on a layer it changed.
fn recognised(family: &str, c: &ConvStructure) -> Result<(), String> {
    let (co, ci) = (c.outputs(), c.inputs());
    let total = c.kernels.total();
    match family {
        "ssc_block" | "ssc_shift" => {
            let ssc = c.ssc.as_ref().ok_or("no SSC split")?;
            let b = ssc
                .spatial
                .blocks
                .as_ref()
                .ok_or("spatial part is not block-diagonal")?;
            expect(
                (b.groups, b.block_outputs, b.block_inputs) == (4, co / 4, ci / 4),
                "spatial blocks are not G=4",
            )?;
            expect(!b.padded, "spatial blocks do not cover every channel")?;
            // The block pattern is already grouped; the shifted one needs the permutation.
            expect(
                b.identity == (family == "ssc_block"),
                "unexpected permutation",
            )?;
            expect(c.kernels.full * 4 == total, "F kernels are not 1/4")?;
            expect(
                ssc.pointwise_kernels * 4 == total * 3,
                "pointwise part is not 3/4",
            )
        }
        "ssc_dw" => {
            let ssc = c.ssc.as_ref().ok_or("no SSC split")?;
            expect(
                ssc.spatial.depthwise_multiplier == Some(co / ci),
                "spatial part is not depthwise with multiplier Co/Ci",
            )?;
            expect(ssc.spatial.groups() == Some(ci), "spatial groups != Ci")
        }
        "blockdiag" => {
            let b = c.connectivity.blocks.as_ref().ok_or("not block-diagonal")?;
            expect(
                (b.groups, b.block_outputs, b.block_inputs) == (4, co / 4, ci / 4),
                "blocks are not G=4",
            )?;
            expect(
                !b.padded && !b.identity,
                "expected a full, permuted block form",
            )?;
            expect(c.kernels.zero * 4 == total * 3, "zero kernels are not 3/4")
        }
        "plus" => {
            let plus = TapSet::from_taps(9, [1, 3, 4, 5, 7]);
            expect(
                c.taps.uniform && c.taps.union == plus,
                "taps are not a shared '+'",
            )
        }
        "zero_filters" => {
            expect(
                c.unified.zero_outputs.len() == co / 2,
                "half the filters are not zero",
            )?;
            expect(c.unified.zero_inputs.is_empty(), "unexpected zero inputs")
        }
        "const_kernels" => expect(
            c.unified.all_kernels_constant,
            "kernels are not all constant",
        ),
        "in_blocks4" => {
            let classes = &c.unified.input_classes;
            expect(
                classes.len() == ci / 4 && classes.iter().all(|k| k.len() == 4),
                "inputs are not in classes of 4",
            )?;
            expect(
                c.unified.distinct_inputs == ci / 4,
                "distinct inputs != Ci/4",
            )
        }
        "sparse90" => {
            let want = (c.numel as f64 * 0.9).floor() / c.numel as f64;
            expect(c.zero_fraction == want, "zero fraction is not 90%")
        }
        other => Err(format!("unknown family {other}")),
    }
}

#[test]
fn every_family_is_recognised_on_every_affected_layer() {
    let dir = models_dir();
    let Ok(text) = std::fs::read_to_string(dir.join("manifest.json")) else {
        eprintln!(
            "skipping: no manifest in {} (run scripts/make_structured.py)",
            dir.display()
        );
        return;
    };
    let manifest: Value = serde_json::from_str(&text).unwrap();
    let models = manifest["models"].as_object().unwrap();
    let mut failures = Vec::new();
    let mut families = Vec::new();
    for (name, entry) in models {
        let family = entry["family"].as_str().unwrap();
        families.push(family.to_string());
        let model = ssc_onnx::load_model(&dir.join(entry["file"].as_str().unwrap())).unwrap();
        let s = analyze_model(&model, &AnalysisOptions::exact()).unwrap();
        assert!(s.skipped.is_empty(), "{name}: skipped {:?}", s.skipped);
        let mut affected = 0;
        for (layer, info) in entry["layers"].as_object().unwrap() {
            let node = s
                .nodes
                .get(layer)
                .unwrap_or_else(|| panic!("{name}: no {layer}"));
            let changed = info["affected"].as_bool().unwrap();
            let verdict = match node {
                NodeStructure::Conv(c) if changed => {
                    affected += 1;
                    recognised(family, c)
                }
                NodeStructure::Conv(c) => dense(c),
                NodeStructure::Matrix(m) => expect(
                    m.zero_fraction == 0.0 && m.connectivity.is_dense(),
                    "expected a dense matrix",
                ),
            };
            if let Err(why) = verdict {
                failures.push(format!("{name} {layer}: {why}\n    {node}"));
            }
        }
        assert!(
            family == "dense" || affected > 0,
            "{name}: no affected layer"
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    families.sort();
    assert_eq!(families.len(), 10, "{families:?}");
}
