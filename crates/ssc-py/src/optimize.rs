//! `ssc_opt.optimize` and its result, `ssc_opt.Optimized`: the main `ssc-opt IN -o OUT` job
//! (the same `ssc_opt::optimize_verified` call) with the output kept in memory.

use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes};

use crate::{convert, guard, guard_file, invalid, Source};

/// The optimised model: its bytes, the report, and ways to save or convert it.
#[pyclass(module = "ssc_opt", frozen)]
pub struct Optimized {
    model: ssc_opt::ir::Model,
    bytes: Py<PyBytes>,
    /// `--report json`'s document, serialised once.
    report_json: String,
    summary: String,
}

/// `optimize(model, *, input_shapes=None, verify=2, verify_tol=1e-4, rewrite=True,
/// cost_model="calibrated") -> Optimized`
#[pyfunction]
#[pyo3(signature = (
    model, *, input_shapes = None, verify = None, verify_tol = 1e-4, rewrite = true,
    cost_model = "calibrated"
))]
pub fn optimize(
    py: Python<'_>,
    model: &Bound<'_, PyAny>,
    input_shapes: Option<&Bound<'_, PyAny>>,
    verify: Option<&Bound<'_, PyAny>>,
    verify_tol: f64,
    rewrite: bool,
    cost_model: &str,
) -> PyResult<Optimized> {
    let source = Source::from_py(model)?;
    let shapes = convert::input_shapes(input_shapes)?;
    // `verify` is a sample count (default 2); `False`/`0` turns verification off, `True` is
    // the default count.
    let samples = match verify {
        None => ssc_opt::VerifyOptions::default().samples,
        Some(v) if v.is_instance_of::<PyBool>() => {
            if v.extract::<bool>()? {
                ssc_opt::VerifyOptions::default().samples
            } else {
                0
            }
        }
        Some(v) => v.extract::<usize>().map_err(|_| {
            invalid(
                py,
                format!("verify must be a sample count >= 0 or a bool, not {v}"),
            )
        })?,
    };
    if !(verify_tol.is_finite() && verify_tol >= 0.0) {
        return Err(invalid(
            py,
            format!("verify_tol must be finite and >= 0, got {verify_tol}"),
        ));
    }
    let cost_model = cost_model.to_string();
    let file = source.path();
    let (model, encoded, report_json, summary) = guard_file(py, file.as_deref(), move || {
        let loaded = source.load()?;
        let mut model = loaded.model;
        let opts = ssc_opt::Options {
            rewrite,
            rewrite_options: ssc_opt::ssc_rewrite::RewriteOptions {
                cost: ssc_opt::cost_model(&cost_model)?,
                ..Default::default()
            },
            input_shapes: shapes,
            // `Optimized.report` is the content of `ssc-opt --report json`, which includes
            // the weight structure of the output's layers.
            analyze_structure: true,
            ..ssc_opt::Options::default()
        };
        let verify = ssc_opt::VerifyOptions {
            samples,
            tolerance: verify_tol,
            ..Default::default()
        };
        let job = ssc_opt::optimize_verified(&mut model, &opts, &verify, &mut |_| {})?;
        let encoded = ssc_opt::encode(&model)?;
        let mut summary = job.optimize.summary();
        if let Some(v) = &job.verification {
            summary += &format!("; {}", v.summary());
        }
        let json = serde_json::to_string(&job).expect("plain data");
        Ok((model, encoded, json, summary))
    })?;
    Ok(Optimized {
        model,
        bytes: PyBytes::new(py, &encoded).unbind(),
        report_json,
        summary,
    })
}

#[pymethods]
impl Optimized {
    /// The optimised model, serialised (what `save(path)` writes).
    #[getter]
    fn model_bytes(&self, py: Python<'_>) -> Py<PyBytes> {
        self.bytes.clone_ref(py)
    }

    /// The report as a new dict: the content of `ssc-opt --report json`.
    #[getter]
    fn report(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        convert::json_to_py(py, &self.report_json)
    }

    /// One line: nodes and GMACs before and after, what fired, how verification went.
    fn summary(&self) -> String {
        self.summary.clone()
    }

    /// Writes the model to `path` atomically (a temporary file, then a rename: never a partial
    /// file), replacing an existing file. Without external data the file holds exactly
    /// `model_bytes`; with it, the weights go to `path + ".data"`.
    #[pyo3(signature = (path, external_data = false))]
    fn save(&self, py: Python<'_>, path: PathBuf, external_data: bool) -> PyResult<()> {
        if external_data {
            let model = &self.model;
            guard(py, move || {
                let opts = ssc_opt::SaveOptions {
                    external_data: ssc_opt::ExternalData::Always {
                        threshold: ssc_opt::DEFAULT_EXTERNAL_THRESHOLD,
                    },
                    overwrite: true,
                };
                ssc_opt::save(model, &path, &opts).map(|_| ())
            })
        } else {
            let bytes = self.bytes.bind(py).as_bytes();
            guard(py, move || ssc_opt::write_atomic(&path, bytes))
        }
    }

    /// The model as an `onnx.ModelProto` (needs the `onnx` package).
    fn to_onnx(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let onnx = py.import("onnx")?;
        Ok(onnx
            .call_method1("load_from_string", (self.bytes.bind(py),))?
            .unbind())
    }

    fn __repr__(&self) -> String {
        format!("<ssc_opt.Optimized: {}>", self.summary)
    }
}
