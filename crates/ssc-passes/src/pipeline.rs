//! The ordered clean-up pipeline: named phases run in a fixed order, repeated to a fixed point,
//! with a deterministic per-rewrite count. Naming the phases lets a CLI run a subset
//! (`--passes`) or look at the model after each one (`--dump-after`).

use std::collections::BTreeMap;
use std::fmt;

use ssc_ir::Model;

use crate::passes;
use crate::PassError;

/// The phases, in the order the pipeline runs them:
///
/// 1. `fold_constant`: `Constant` ops become initializers (so later phases see one form).
/// 2. `eliminate_identity`: `Identity` ops go (so patterns need not look through them).
/// 3. `eliminate_dropout`: inference-mode `Dropout` goes.
/// 4. `fold_cast`: `Cast` of a constant becomes a constant.
/// 5. `fold_shape`: `Shape` of a static shape becomes a constant.
/// 6. `fold_shape_arith`: integer shape arithmetic and data movement on constants.
/// 7. `fold_constant_of_shape`: `ConstantOfShape` with a constant shape, size-limited.
/// 8. `fold_eval`: any other op on constants, through the reference executor, size-limited.
/// 9. `fold_bn`: `BatchNormalization` into the preceding `Conv`.
/// 10. `fold_conv_mul_add`: per-channel `Mul`/`Add` into the preceding `Conv`.
/// 11. `unit_window_strides`: a Conv axis with exactly one window gets stride 1.
/// 12. `dce`: dead ops, unused initializers, dangling values.
pub const PHASES: &[&str] = &[
    "fold_constant",
    "eliminate_identity",
    "eliminate_dropout",
    "fold_cast",
    "fold_shape",
    "fold_shape_arith",
    "fold_constant_of_shape",
    "fold_eval",
    "fold_bn",
    "fold_conv_mul_add",
    "unit_window_strides",
    "dce",
];

type PhaseFn = fn(&mut Model, &PassOptions, &mut PassReport) -> Result<(), PassError>;

fn phase_fn(name: &str) -> Option<PhaseFn> {
    Some(match name {
        "fold_constant" => passes::fold_constant::run,
        "eliminate_identity" => passes::eliminate_identity::run,
        "eliminate_dropout" => passes::eliminate_dropout::run,
        "fold_cast" => passes::fold_cast::run,
        "fold_shape" => passes::fold_shape::run,
        "fold_shape_arith" => passes::fold_shape_arith::run,
        "fold_constant_of_shape" => passes::fold_constant_of_shape::run,
        "fold_eval" => passes::fold_eval::run,
        "fold_bn" => passes::fold_bn::run,
        "fold_conv_mul_add" => passes::fold_conv_mul_add::run,
        "unit_window_strides" => passes::unit_window_strides::run,
        "dce" => passes::dce::run,
        _ => return None,
    })
}

/// Default for [`PassOptions::fold_size_limit`]: 1 MiB.
pub const DEFAULT_FOLD_SIZE_LIMIT: usize = 1 << 20;

/// Options for the clean-up pipeline.
#[derive(Clone, Debug)]
pub struct PassOptions {
    /// Largest constant, in bytes, that folding may create where none of that size existed
    /// (ConstantOfShape, shape arithmetic, Cast to a wider type). Folds that do not grow the
    /// model (a Cast of a constant nothing else reads) are not limited.
    pub fold_size_limit: usize,
    /// Bound on the sweeps of the fixed-point loop.
    pub max_iterations: usize,
    /// Run only these phases (still in [`PHASES`] order); `None` runs all of them.
    pub phases: Option<Vec<String>>,
}

impl Default for PassOptions {
    fn default() -> PassOptions {
        PassOptions {
            fold_size_limit: DEFAULT_FOLD_SIZE_LIMIT,
            max_iterations: 8,
            phases: None,
        }
    }
}

/// What the pipeline changed: counts per kind of rewrite (`folded_bn`, `removed_identity`, ...),
/// in a sorted map so reports and snapshots are deterministic.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PassReport {
    pub counts: BTreeMap<&'static str, usize>,
    /// Sweeps over the phase list, including the final one that changed nothing.
    pub iterations: usize,
}

impl PassReport {
    /// The count for `key`, 0 if that rewrite never fired.
    pub fn get(&self, key: &str) -> usize {
        self.counts.get(key).copied().unwrap_or(0)
    }

    /// All rewrites together.
    pub fn total(&self) -> usize {
        self.counts.values().sum()
    }

    pub(crate) fn add(&mut self, key: &'static str, n: usize) {
        *self.counts.entry(key).or_default() += n;
    }
}

impl fmt::Display for PassReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.counts.is_empty() {
            return f.write_str("no changes");
        }
        let parts: Vec<String> = self
            .counts
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        f.write_str(&parts.join(", "))
    }
}

/// Runs the selected phases in [`PHASES`] order, repeatedly, until a sweep changes nothing or
/// `max_iterations` sweeps have run.
pub fn run_cleanups(model: &mut Model, opts: &PassOptions) -> Result<PassReport, PassError> {
    run_cleanups_with(model, opts, &mut |_, _, _| {})
}

/// [`run_cleanups`], calling `after_phase(phase, sweep, model)` after every phase of every sweep
/// (sweeps count from 1), for `--dump-after`.
pub fn run_cleanups_with(
    model: &mut Model,
    opts: &PassOptions,
    after_phase: &mut dyn FnMut(&str, usize, &Model),
) -> Result<PassReport, PassError> {
    let selected = select(opts.phases.as_deref())?;
    // Passes visit ops in topological order; a cycle is reported before anything changes.
    model.graph.topo_order()?;
    let mut report = PassReport::default();
    for sweep in 1..=opts.max_iterations.max(1) {
        let before = report.total();
        for &(name, run) in &selected {
            run(model, opts, &mut report)?;
            after_phase(name, sweep, model);
        }
        report.iterations = sweep;
        if report.total() == before {
            break;
        }
    }
    Ok(report)
}

/// Runs one phase once (no fixed point).
pub fn run_phase(
    model: &mut Model,
    name: &str,
    opts: &PassOptions,
) -> Result<PassReport, PassError> {
    let run = phase_fn(name).ok_or_else(|| unknown_phase(name))?;
    model.graph.topo_order()?;
    let mut report = PassReport {
        iterations: 1,
        ..PassReport::default()
    };
    run(model, opts, &mut report)?;
    Ok(report)
}

fn unknown_phase(name: &str) -> PassError {
    PassError::UnknownPhase {
        name: name.to_string(),
        known: PHASES.join(", "),
    }
}

fn select(subset: Option<&[String]>) -> Result<Vec<(&'static str, PhaseFn)>, PassError> {
    if let Some(s) = subset {
        if let Some(bad) = s.iter().find(|n| !PHASES.contains(&n.as_str())) {
            return Err(unknown_phase(bad));
        }
    }
    Ok(PHASES
        .iter()
        .filter(|p| subset.is_none_or(|s| s.iter().any(|n| n == *p)))
        .map(|&p| (p, phase_fn(p).expect("every listed phase has a function")))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_phase_is_runnable_and_unknown_ones_are_named() {
        for p in PHASES {
            assert!(phase_fn(p).is_some(), "{p}");
        }
        let err = select(Some(&["fold_bn".into(), "nope".into()])).unwrap_err();
        assert!(err.to_string().contains("unknown phase `nope`"), "{err}");
        let order: Vec<&str> = select(Some(&["dce".into(), "fold_bn".into()]))
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(order, ["fold_bn", "dce"]);
    }
}
