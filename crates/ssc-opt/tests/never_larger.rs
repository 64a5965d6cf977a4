//! No rewrite may make the model larger: every structured, sparse (MSWU, N:M, magnitude),
//! filter-pruned and MGIC fixture, optimised under both cost models, comes out with no more
//! parameters than it went in with and without a dropped rewrite. Regression for the MSWU
//! families (bugs.md, 2026-12-07 15:10): a tile-pruned conv whose pruned rows are constant
//! channels once became a conv plus a full constant plane (584 -> 1316 parameters), and a
//! constant channel its padded reader ignored made channel removal fail ("no carrier").

use std::path::Path;
use std::sync::Arc;

use ssc_opt::ir::Model;
use ssc_opt::ssc_rewrite::{CalibratedCost, CostModel, MacCost, RewriteOptions};
use ssc_opt::{optimize, Options};

fn params(m: &Model) -> usize {
    let g = &m.graph;
    g.initializer_ids()
        .into_iter()
        .filter_map(|v| g.initializer(v))
        .map(|t| t.numel())
        .sum()
}

#[test]
fn optimised_fixtures_are_never_larger() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/models");
    let mut files = Vec::new();
    for dir in ["sparse", "structured", "pruned", "mgic"] {
        for e in std::fs::read_dir(root.join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|e| e == "onnx") {
                files.push(p);
            }
        }
    }
    files.sort();
    assert!(files.len() > 30, "fixtures missing: {}", files.len());
    for f in files {
        let original = ssc_opt::load(&f).unwrap().model;
        let before = params(&original);
        let costs: [(&str, Arc<dyn CostModel>); 2] = [
            ("calibrated", Arc::new(CalibratedCost::default())),
            ("macs", Arc::new(MacCost)),
        ];
        for (cname, cost) in costs {
            let mut opt = original.clone();
            let opts = Options {
                rewrite_options: RewriteOptions {
                    cost,
                    ..RewriteOptions::default()
                },
                ..Options::default()
            };
            let name = format!("{} ({cname})", f.display());
            let report = optimize(&mut opt, &opts).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(report.warnings.is_empty(), "{name}: {:?}", report.warnings);
            let after = params(&opt);
            assert!(after <= before, "{name}: {before} -> {after} parameters");
        }
    }
}
