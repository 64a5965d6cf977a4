//! The ONNX package's model test data as a reusable harness (loader, tolerance rules, per-folder
//! tally and report), so the executor's test and the JIT's (`crates/ssc-jit/tests/onnx_testdata.rs`,
//! which includes this file with `#[path]`) check the same cases in the same way.
//!
//! The data ships inside the `onnx` Python package; the Python is `$SSC_OPT_PYTHON`, else the
//! workspace `.venv`, else `/tmp/venvtest/v`. Without it a test prints a loud SKIP and passes.
//! `SSC_EXEC_TESTDATA_DIR` points at another tree of the same layout (for example node cases
//! written by onnx's case generators; a relative path is read from the workspace root), `SSC_EXEC_TESTDATA_FOLDERS=node,simple` picks other
//! folders (the `node` folder holds the per-operator cases), `SSC_EXEC_TESTDATA_ONLY=substr`
//! filters cases by name.
//!
//! Tolerance against the stored outputs ([`compare`]): an output passes when
//! `max|got - want| <= 1e-4 * max(max|want|, 1e-6)` (two ulps of the type instead of 1e-4 for
//! float16 and bfloat16 outputs). This is norm-wise rather than per element on purpose: the
//! stored outputs come from other float32 implementations whose summation order differs from
//! ours, so an element near zero inside a large output can differ by a few ulps of the output's
//! scale without anything being wrong, while a real bug (a wrong pad, a swapped axis) moves
//! values by a sizable fraction of that scale. Where the test data documents its own tolerance
//! (the `data.json` of the light models: numpy `allclose` with rtol/atol), an output that meets
//! it also passes. Types and shapes must match exactly.

#![allow(dead_code)] // each test binary uses a different subset

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use ssc_exec::{check_supported, ExecError};
use ssc_ir::{DataType, Model, RunValue, Tensor};

pub const NORM_RTOL: f64 = 1e-4;

/// The norm-wise tolerance for an output type: [`NORM_RTOL`], widened to two units in the last
/// place for the 16-bit floats (whose own resolution is coarser: 2^-10 and 2^-7), as the onnx
/// backend runner does for bfloat16.
pub fn norm_rtol(dt: DataType) -> f64 {
    match dt {
        DataType::Float16 => NORM_RTOL.max(2.0 * 2f64.powi(-10)),
        DataType::Bfloat16 => NORM_RTOL.max(2.0 * 2f64.powi(-7)),
        _ => NORM_RTOL,
    }
}

fn onnx_dir() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Ok(p) = std::env::var("SSC_OPT_PYTHON") {
        candidates.push(p.into());
    }
    candidates.push(root.join(".venv/bin/python3"));
    candidates.push("/tmp/venvtest/v/bin/python".into());
    for py in candidates {
        let out = Command::new(&py)
            .args([
                "-c",
                "import onnx, os; print(os.path.dirname(onnx.__file__))",
            ])
            .output();
        if let Ok(out) = out {
            if out.status.success() {
                let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
                if dir.join("backend/test/data").is_dir() {
                    return Some(dir);
                }
            }
        }
    }
    None
}

/// numpy `allclose` tolerances documented by a case, if any.
#[derive(Clone, Copy, Debug)]
pub struct Documented {
    pub rtol: f64,
    pub atol: f64,
}

fn read_documented(path: &Path) -> Option<Documented> {
    let text = std::fs::read_to_string(path).ok()?;
    // A tiny flat-JSON reader: the files are one object of numbers and strings.
    let num = |key: &str| -> Option<f64> {
        let at = text.find(&format!("\"{key}\""))?;
        let rest = &text[at + key.len() + 2..];
        let rest = rest.trim_start().strip_prefix(':')?.trim_start();
        let end = rest.find([',', '}']).unwrap_or(rest.len());
        rest[..end].trim().parse().ok()
    };
    Some(Documented {
        rtol: num("rtol")?,
        atol: num("atol")?,
    })
}

/// Compares one output with a stored one; on success returns the norm-wise relative error.
pub fn compare(got: &Tensor, want: &Tensor, doc: Option<Documented>) -> Result<f64, String> {
    if got.dtype != want.dtype || got.dims != want.dims {
        return Err(format!(
            "got {} {:?}, want {} {:?}",
            got.dtype, got.dims, want.dtype, want.dims
        ));
    }
    let (g, w) = match (got.to_f64_vec(), want.to_f64_vec()) {
        (Some(g), Some(w)) => (g, w),
        _ => {
            return if got == want {
                Ok(0.0)
            } else {
                Err("non-numeric outputs differ".into())
            }
        }
    };
    let scale = w.iter().fold(0f64, |m, v| m.max(v.abs())).max(1e-6);
    let mut max_err = 0f64;
    let mut allclose = true;
    for (&a, &b) in g.iter().zip(&w) {
        if a.is_nan() || b.is_nan() {
            if a.is_nan() != b.is_nan() {
                return Err(format!("NaN mismatch: got {a}, want {b}"));
            }
            continue;
        }
        let e = (a - b).abs();
        max_err = max_err.max(e);
        if let Some(d) = doc {
            allclose &= e <= d.atol + d.rtol * b.abs();
        }
    }
    let rtol = norm_rtol(want.dtype);
    if max_err <= rtol * scale || (doc.is_some() && allclose) {
        Ok(max_err / scale)
    } else {
        Err(format!(
            "max |err| {max_err:.3e} > {rtol:e} * {scale:.3e}{}",
            if doc.is_some() {
                " (and documented allclose fails)"
            } else {
                ""
            }
        ))
    }
}

/// [`compare`] through sequences (item by item) and optionals (both empty, or both holding
/// values that compare).
pub fn compare_value(
    got: &RunValue,
    want: &RunValue,
    doc: Option<Documented>,
) -> Result<f64, String> {
    match (got, want) {
        (RunValue::Tensor(g), RunValue::Tensor(w)) => compare(g, w, doc),
        (RunValue::Sequence { elem: ge, items: g }, RunValue::Sequence { elem: we, items: w }) => {
            if ge != we || g.len() != w.len() {
                return Err(format!("got {}, want {}", got.describe(), want.describe()));
            }
            let mut worst = 0f64;
            for (k, (a, b)) in g.iter().zip(w).enumerate() {
                worst = worst.max(compare(a, b, doc).map_err(|e| format!("item {k}: {e}"))?);
            }
            Ok(worst)
        }
        (RunValue::Optional(None), RunValue::Optional(None)) => Ok(0.0),
        (RunValue::Optional(Some(g)), RunValue::Optional(Some(w))) => compare_value(g, w, doc),
        _ => Err(format!("got {}, want {}", got.describe(), want.describe())),
    }
}

/// Compares a run's outputs, in graph-output order, with `expected`; returns the worst error.
pub fn compare_outputs(
    out: &[(String, Tensor)],
    expected: &[RunValue],
    doc: Option<Documented>,
) -> Result<f64, String> {
    let out: Vec<(String, RunValue)> = out
        .iter()
        .map(|(n, t)| (n.clone(), RunValue::Tensor(t.clone())))
        .collect();
    compare_value_outputs(&out, expected, doc)
}

/// [`compare_outputs`] for runs whose outputs may be sequences or optionals.
pub fn compare_value_outputs(
    out: &[(String, RunValue)],
    expected: &[RunValue],
    doc: Option<Documented>,
) -> Result<f64, String> {
    if out.len() < expected.len() {
        return Err(format!(
            "{} outputs, {} expected",
            out.len(),
            expected.len()
        ));
    }
    let mut worst = 0f64;
    for (k, ((name, got), want)) in out.iter().zip(expected).enumerate() {
        let e = compare_value(got, want, doc).map_err(|e| format!("output {k} `{name}`: {e}"))?;
        worst = worst.max(e);
    }
    Ok(worst)
}

fn missing_ops(model: &Model) -> Option<BTreeSet<String>> {
    unsupported_list(&check_supported(model).err()?)
}

/// The unsupported ops an [`ExecError::Unsupported`] names, as `op (reason)` strings.
fn unsupported_list(e: &ExecError) -> Option<BTreeSet<String>> {
    let list = e.unsupported()?;
    Some(
        list.iter()
            .map(|u| {
                let mut s = if u.domain.is_empty() {
                    u.op_type.clone()
                } else {
                    format!("{}::{}", u.domain, u.op_type)
                };
                if !u.reason.is_empty() {
                    s.push_str(&format!(" ({})", u.reason));
                }
                s
            })
            .collect(),
    )
}

/// The outcome of a run that failed with `e`: unsupported when the executor refused an input
/// value it does not implement (a condition only a run can see, such as a Dropout whose
/// `training_mode` input is true), a failure otherwise.
pub fn run_failure(set: &str, e: &ExecError) -> Outcome {
    match unsupported_list(e) {
        Some(ops) => Outcome::Unsupported(ops),
        None => Outcome::Failed(format!("{set}: {e}")),
    }
}

/// One input set of a case and the outputs stored for it.
pub struct DataSet {
    /// `test_data_set_0`, ... (`dummy` for the light models' generated input).
    pub name: String,
    pub feeds: Vec<(String, RunValue)>,
    pub expected: Vec<RunValue>,
}

impl DataSet {
    /// The feeds as tensors, when every one is (`None` when a sequence or optional is fed).
    pub fn tensor_feeds(&self) -> Option<Vec<(String, Tensor)>> {
        self.feeds
            .iter()
            .map(|(n, v)| Some((n.clone(), v.tensor()?.clone())))
            .collect()
    }
}

/// A case whose model the reference executor supports, with its data.
pub struct Case {
    pub name: String,
    pub model: Model,
    pub sets: Vec<DataSet>,
    pub doc: Option<Documented>,
}

/// Errors of a passing case.
#[derive(Clone, Copy, Default)]
pub struct Errors {
    /// Worst norm-wise relative error against the stored outputs.
    pub vs_expected: f64,
    /// Worst norm-wise relative error against the reference executor (engines other than it).
    pub vs_reference: f64,
}

/// One case's outcome.
pub enum Outcome {
    Passed(Errors),
    /// The reference executor does not support these ops (the case is not run), or refused an
    /// input value it does not implement when run (see [`run_failure`]).
    Unsupported(BTreeSet<String>),
    /// The engine under test declines the model (`JitError::NotCovered`), with its reason.
    NotCovered(String),
    Failed(String),
}

fn sorted_files(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut v: Vec<(usize, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let k = name
                .strip_prefix(prefix)?
                .strip_suffix(".pb")?
                .parse()
                .ok()?;
            Some((k, e.path()))
        })
        .collect();
    v.sort();
    v.into_iter().map(|(_, p)| p).collect()
}

/// Loads a case directory with `model.onnx` and `test_data_set_*`.
fn load_case_dir(name: &str, dir: &Path) -> Result<Case, Outcome> {
    let model = ssc_onnx::load_model(&dir.join("model.onnx"))
        .map_err(|e| Outcome::Failed(format!("load: {e}")))?;
    if let Some(ops) = missing_ops(&model) {
        return Err(Outcome::Unsupported(ops));
    }
    let doc = read_documented(&dir.join("data.json"));
    let mut set_dirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_dir()
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("test_data_set"))
        })
        .collect();
    set_dirs.sort();
    let g = &model.graph;
    // Each file is read as its graph input's or output's declared type says it is stored.
    let load = |p: &Path, v: Option<&ssc_ir::ValueId>| {
        let ty = v.and_then(|&v| g.value(v).ty.as_ref());
        ssc_onnx::load_value_pb(p, ty)
            .map_err(|e| Outcome::Failed(format!("load {}: {e}", p.display())))
    };
    let mut sets = Vec::new();
    for set in set_dirs {
        let mut feeds = Vec::new();
        for (k, p) in sorted_files(&set, "input_").iter().enumerate() {
            let (name, t) = load(p, g.inputs().get(k))?;
            // The runner feeds input_k to graph input k; the stored name, when it names a
            // graph input, says the same.
            let by_name = g.inputs().iter().any(|&v| g.value(v).name == name);
            let name = if by_name {
                name
            } else {
                match g.inputs().get(k) {
                    Some(&v) => g.value(v).name.clone(),
                    None => return Err(Outcome::Failed(format!("input_{k} has no graph input"))),
                }
            };
            feeds.push((name, t));
        }
        let mut expected = Vec::new();
        for (k, p) in sorted_files(&set, "output_").iter().enumerate() {
            expected.push(load(p, g.outputs().get(k))?.1);
        }
        let name = set.file_name().unwrap().to_string_lossy().into_owned();
        sets.push(DataSet {
            name,
            feeds,
            expected,
        });
    }
    Ok(Case {
        name: name.to_string(),
        model,
        sets,
        doc,
    })
}

/// Loads a light model: inputs follow the onnx backend runner's
/// `generate_dummy_data(random=False)`: every graph input that is not an initializer gets
/// `arange(n).reshape(shape) / n` as float32, unknown dims taken as 1.
fn load_light(name: &str, model_path: &Path, real_dir: &Path) -> Result<Case, Outcome> {
    let model =
        ssc_onnx::load_model(model_path).map_err(|e| Outcome::Failed(format!("load: {e}")))?;
    if let Some(ops) = missing_ops(&model) {
        return Err(Outcome::Unsupported(ops));
    }
    let stem = model_path
        .file_stem()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let g = &model.graph;
    let mut feeds = Vec::new();
    for &v in g.inputs() {
        if g.initializer(v).is_some() {
            continue;
        }
        let val = g.value(v);
        let Some(ty) = val.ty.as_ref().and_then(|t| t.tensor()) else {
            return Err(Outcome::Failed(format!(
                "input `{}` has no tensor type",
                val.name
            )));
        };
        if ty.elem != DataType::Float {
            return Err(Outcome::Failed(format!(
                "input `{}` is not float",
                val.name
            )));
        }
        let dims: Vec<usize> = ty
            .shape
            .as_ref()
            .map(|s| s.iter().map(|d| d.known().unwrap_or(1)).collect())
            .unwrap_or_default();
        let n: usize = dims.iter().product();
        let data: Vec<f32> = (0..n).map(|k| (k as f64 / n as f64) as f32).collect();
        feeds.push((val.name.clone(), Tensor::from_f32(dims, &data).into()));
    }
    let mut expected = Vec::new();
    for k in 0..g.outputs().len() {
        let p = model_path.with_file_name(format!("{stem}_output_{k}.pb"));
        match ssc_onnx::load_tensor_pb(&p) {
            Ok((_, t)) => expected.push(t.into()),
            Err(e) => return Err(Outcome::Failed(format!("load {}: {e}", p.display()))),
        }
    }
    let short = stem.trim_start_matches("light_");
    let doc = read_documented(&real_dir.join(format!("test_{short}/data.json")));
    Ok(Case {
        name: name.to_string(),
        model,
        sets: vec![DataSet {
            name: "dummy".into(),
            feeds,
            expected,
        }],
        doc,
    })
}

/// Per-folder tallies.
#[derive(Default)]
struct Tally {
    cases: usize,
    /// Cases the reference executor supports.
    supported: usize,
    passed: usize,
    unsupported: Vec<(String, BTreeSet<String>)>,
    not_covered: Vec<(String, String)>,
    failures: Vec<(String, String)>,
    /// The largest errors of a passing case, and the case.
    worst_expected: (f64, String),
    worst_reference: (f64, String),
}

impl Tally {
    fn add(&mut self, case: String, outcome: Outcome) {
        self.cases += 1;
        match outcome {
            Outcome::Passed(e) => {
                self.supported += 1;
                self.passed += 1;
                if e.vs_expected >= self.worst_expected.0 {
                    self.worst_expected = (e.vs_expected, case.clone());
                }
                if e.vs_reference >= self.worst_reference.0 {
                    self.worst_reference = (e.vs_reference, case);
                }
            }
            Outcome::Unsupported(ops) => self.unsupported.push((case, ops)),
            Outcome::NotCovered(why) => {
                self.supported += 1;
                self.not_covered.push((case, why));
            }
            Outcome::Failed(msg) => {
                self.supported += 1;
                self.failures.push((case, msg));
            }
        }
    }

    /// One table row; `engine` adds the engine-run / not-covered columns and the error
    /// against the reference executor.
    fn row(&self, label: &str, engine: Option<&str>) -> String {
        match engine {
            None => format!(
                "{label:<18} cases {:>3}  supported {:>3}  passed {:>3}",
                self.cases, self.supported, self.passed
            ),
            Some(engine) => format!(
                "{label:<18} cases {:>3}  supported {:>3}  {engine}-run {:>3}  not covered {:>3}  passed {:>3}",
                self.cases,
                self.supported,
                self.supported - self.not_covered.len(),
                self.not_covered.len(),
                self.passed
            ),
        }
    }

    fn merge(&mut self, other: Tally) {
        self.cases += other.cases;
        self.supported += other.supported;
        self.passed += other.passed;
        self.unsupported.extend(other.unsupported);
        self.not_covered.extend(other.not_covered);
        self.failures.extend(other.failures);
        for (mine, theirs) in [
            (&mut self.worst_expected, other.worst_expected),
            (&mut self.worst_reference, other.worst_reference),
        ] {
            if theirs.0 >= mine.0 {
                *mine = theirs;
            }
        }
    }
}

/// Runs `run` on every case the reference executor supports (and counts the others), prints
/// a per-folder table and fails the test on any failed case. `engine` names the engine under
/// test when it is not the reference executor itself (adding the `-run` / `not covered`
/// columns and the worst error against the reference).
pub fn run_suite(test: &str, engine: Option<&str>, mut run: impl FnMut(&Case) -> Outcome) {
    let Some(onnx) = onnx_dir() else {
        eprintln!("\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!");
        eprintln!("SKIP {test}: no Python with the `onnx` package found");
        eprintln!("(set SSC_OPT_PYTHON, or run scripts/venv.sh to create /work/main/.venv)");
        eprintln!("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n");
        return;
    };
    // A relative directory is read from the workspace root: cargo runs each test binary in
    // its crate's directory, not where `cargo test` was typed.
    let data = std::env::var("SSC_EXEC_TESTDATA_DIR")
        .map(|d| Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(d))
        .unwrap_or_else(|_| onnx.join("backend/test/data"));
    let only = std::env::var("SSC_EXEC_TESTDATA_ONLY").ok();
    let folders: Vec<String> = match std::env::var("SSC_EXEC_TESTDATA_FOLDERS") {
        Ok(v) => v.split(',').map(str::to_string).collect(),
        Err(_) => ["pytorch-converted", "pytorch-operator", "light", "simple"]
            .map(String::from)
            .to_vec(),
    };
    let mut report = String::new();
    let mut total = Tally::default();
    for folder in &folders {
        let folder = folder.as_str();
        // A folder that cannot be read is a mistake in the setup (a relative or wrong
        // SSC_EXEC_TESTDATA_DIR), never an empty suite that passes.
        let dir = data.join(folder);
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| {
                panic!(
                    "{test}: cannot read test-data folder {}: {e}",
                    dir.display()
                )
            })
            .flatten()
            .map(|e| e.path())
            .collect();
        entries.sort();
        let mut tally = Tally::default();
        for path in entries {
            let case = path.file_name().unwrap().to_string_lossy().into_owned();
            if only.as_deref().is_some_and(|o| !case.contains(o)) {
                continue;
            }
            let loaded = if folder == "light" {
                if path.extension().is_none_or(|e| e != "onnx") {
                    continue;
                }
                load_light(&case, &path, &data.join("real"))
            } else if path.join("model.onnx").is_file() {
                load_case_dir(&case, &path)
            } else {
                continue;
            };
            let outcome = match loaded {
                Ok(c) => run(&c),
                Err(o) => o,
            };
            tally.add(case, outcome);
        }
        report.push_str(&tally.row(folder, engine));
        report.push_str(&format!(
            "   worst passing error {:.1e} ({})",
            tally.worst_expected.0, tally.worst_expected.1
        ));
        if engine.is_some() {
            report.push_str(&format!(
                ", vs reference {:.1e} ({})",
                tally.worst_reference.0, tally.worst_reference.1
            ));
        }
        report.push('\n');
        for (case, ops) in &tally.unsupported {
            let ops: Vec<&str> = ops.iter().map(String::as_str).collect();
            report.push_str(&format!("    unsupported {case}: {}\n", ops.join(", ")));
        }
        for (case, why) in &tally.not_covered {
            report.push_str(&format!("    not covered {case}: {why}\n"));
        }
        for (case, msg) in &tally.failures {
            report.push_str(&format!("    FAILED {case}: {msg}\n"));
        }
        total.merge(tally);
    }
    report.push_str(&total.row("total", engine));
    if engine.is_some() {
        report.push_str(&format!(
            "   worst: {:.1e} vs expected ({}), {:.1e} vs reference ({})",
            total.worst_expected.0,
            total.worst_expected.1,
            total.worst_reference.0,
            total.worst_reference.1
        ));
    }
    report.push('\n');
    println!("\n{test} ({})\n{report}", data.display());
    assert!(
        only.is_some() || total.passed > 0,
        "{test}: no case passed under {} (folders {folders:?})",
        data.display()
    );
    assert!(
        total.failures.is_empty(),
        "{} supported case(s) failed:\n{report}",
        total.failures.len()
    );
}
