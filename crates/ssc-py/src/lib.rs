//! The native module of the `ssc_opt` Python package (`ssc_opt._native`): `optimize`,
//! `InferenceSession`, `inspect`, `analyze` and the `ssc-opt` command, over the `ssc-opt`
//! library facade and nothing below it.
//!
//! Boundary rules, kept by every function here:
//! * the GIL is released around all model work (loading, optimising, running);
//! * a panic never crosses into Python: `guard` turns it into `ssc_opt.InternalError`;
//! * a library error becomes the `ssc_opt.Error` subclass of its [`ssc_opt::ErrorKind`],
//!   carrying the line the CLI would print ([`ssc_opt::one_line`]).
//!
//! The Python package (`python/ssc_opt/`) defines the exception classes, re-exports this
//! module's names and documents them in `__init__.pyi`.

// Borrowing numpy and bytes buffers without a copy needs raw pointers into Python objects;
// every unsafe block states why it is sound.
#![allow(unsafe_code)]

mod convert;
mod optimize;
mod session;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyString};

/// The `ssc_opt` exception class for `kind`, created from the Python side of the package.
fn exception_class<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
    py.import("ssc_opt._errors")?.getattr(name)
}

/// A Python exception of class `name` (from `ssc_opt._errors`) with message `msg`.
fn raise(py: Python<'_>, name: &str, msg: String) -> PyErr {
    match exception_class(py, name).and_then(|c| c.call1((msg,))) {
        Ok(e) => PyErr::from_value(e),
        Err(e) => e,
    }
}

/// A library error as the `ssc_opt.Error` subclass of its kind. With `file` (the model's path),
/// the message names it as the CLI's does: errors of reading the file name it already, the
/// others get it in front.
fn to_py(py: Python<'_>, e: &ssc_opt::Error, file: Option<&std::path::Path>) -> PyErr {
    use ssc_opt::ErrorKind as K;
    let class = match e.kind() {
        K::BadModel => "BadModelError",
        K::UnsupportedOp => "UnsupportedOpError",
        K::VerificationFailed => "VerificationError",
        K::InvalidArgument => "InvalidArgumentError",
        K::Io => "FileError",
        K::Internal => "InternalError",
    };
    let msg = match (file, e) {
        (None, _) | (_, ssc_opt::Error::Onnx(_) | ssc_opt::Error::VerificationFailed(_)) => {
            ssc_opt::one_line(e)
        }
        (Some(p), e) => format!("{}: {e}", p.display()),
    };
    raise(py, class, msg)
}

/// `ssc_opt.InvalidArgumentError(msg)`.
fn invalid(py: Python<'_>, msg: String) -> PyErr {
    raise(py, "InvalidArgumentError", msg)
}

/// Runs `f` without the GIL, turning a panic into `ssc_opt.InternalError` and a library
/// error into its exception class.
fn guard<T: Send>(
    py: Python<'_>,
    f: impl FnOnce() -> Result<T, ssc_opt::Error> + Send,
) -> PyResult<T> {
    guard_file(py, None, f)
}

/// `guard` for work on the model file `file`, whose errors name it as the CLI's do.
fn guard_file<T: Send>(
    py: Python<'_>,
    file: Option<&std::path::Path>,
    f: impl FnOnce() -> Result<T, ssc_opt::Error> + Send,
) -> PyResult<T> {
    match py.detach(|| catch_unwind(AssertUnwindSafe(f))) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(to_py(py, &e, file)),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(raise(
                py,
                "InternalError",
                format!("internal error (a bug in ssc-opt, please report it): {what}"),
            ))
        }
    }
}

/// Where a model comes from: a file, or serialized bytes (from `bytes`, or an
/// `onnx.ModelProto`'s `SerializeToString()`).
enum Source {
    Path(PathBuf),
    Bytes(bytes::Bytes, &'static str),
}

impl Source {
    /// The model's path, when it comes from a file.
    fn path(&self) -> Option<PathBuf> {
        match self {
            Source::Path(p) => Some(p.clone()),
            Source::Bytes(..) => None,
        }
    }

    /// Reads `model`: a `str` or `os.PathLike` path, `bytes`/`bytearray`, or any object with
    /// `SerializeToString()` (an `onnx.ModelProto`; `onnx` itself is never imported here).
    fn from_py(model: &Bound<'_, PyAny>) -> PyResult<Source> {
        let py = model.py();
        if let Ok(b) = model.cast::<PyBytes>() {
            return Ok(Source::Bytes(convert::bytes_of(b), "<bytes>"));
        }
        if let Ok(b) = model.cast::<PyByteArray>() {
            return Ok(Source::Bytes(b.to_vec().into(), "<bytearray>"));
        }
        if model.is_instance_of::<PyString>() || model.hasattr("__fspath__")? {
            return Ok(Source::Path(model.extract()?));
        }
        if model.hasattr("SerializeToString")? {
            let b = model.call_method0("SerializeToString")?;
            let b = b.cast::<PyBytes>().map_err(|_| {
                invalid(py, "model.SerializeToString() did not return bytes".into())
            })?;
            return Ok(Source::Bytes(convert::bytes_of(b), "<onnx.ModelProto>"));
        }
        Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "model must be a path, bytes or an onnx.ModelProto, not {}",
            model.get_type().name()?
        )))
    }

    /// Loads the model (call without the GIL).
    fn load(self) -> Result<ssc_opt::Loaded, ssc_opt::Error> {
        match self {
            Source::Path(p) => ssc_opt::load(&p),
            Source::Bytes(b, name) => ssc_opt::load_bytes(b, name),
        }
    }
}

/// `inspect(model, *, input_shapes=None) -> dict`: what `ssc-opt inspect --json` prints.
#[pyfunction]
#[pyo3(signature = (model, *, input_shapes = None))]
fn inspect(
    py: Python<'_>,
    model: &Bound<'_, PyAny>,
    input_shapes: Option<&Bound<'_, PyAny>>,
) -> PyResult<Py<PyAny>> {
    let source = Source::from_py(model)?;
    let shapes = convert::input_shapes(input_shapes)?;
    let file = source.path();
    let json = guard_file(py, file.as_deref(), move || {
        let mut model = source.load()?.model;
        ssc_opt::infer_shapes(&mut model, &shapes)?;
        Ok(serde_json::to_string(&ssc_opt::inspect(&model)).expect("plain data"))
    })?;
    convert::json_to_py(py, &json)
}

/// `analyze(model, *, epsilon=0.0) -> dict`: the weight structure of every Conv, Gemm and
/// MatMul with a constant weight.
#[pyfunction]
#[pyo3(signature = (model, *, epsilon = 0.0))]
fn analyze(py: Python<'_>, model: &Bound<'_, PyAny>, epsilon: f32) -> PyResult<Py<PyAny>> {
    let source = Source::from_py(model)?;
    let json = guard(py, move || {
        let model = source.load()?.model;
        let s = ssc_opt::analyze(&model, &ssc_opt::AnalysisOptions::approximate(epsilon))?;
        Ok(serde_json::to_string(&s).expect("plain data"))
    })?;
    convert::json_to_py(py, &json)
}

/// `cli_main(argv) -> int`: runs the `ssc-opt` command line (`argv[0]` is the program name)
/// and returns its exit code.
#[pyfunction]
fn cli_main(py: Python<'_>, argv: Vec<std::ffi::OsString>) -> u8 {
    py.detach(|| catch_unwind(|| ssc_opt_cli::run(argv)).unwrap_or(101))
}

/// Panics inside the boundary guard, so the tests can check that a panic becomes
/// `ssc_opt.InternalError` and leaves the interpreter working.
#[pyfunction]
fn _panic_for_tests(py: Python<'_>, msg: String) -> PyResult<()> {
    guard(py, move || -> Result<(), ssc_opt::Error> {
        panic!("{msg}")
    })
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(optimize::optimize, m)?)?;
    m.add_function(wrap_pyfunction!(inspect, m)?)?;
    m.add_function(wrap_pyfunction!(analyze, m)?)?;
    m.add_function(wrap_pyfunction!(cli_main, m)?)?;
    m.add_function(wrap_pyfunction!(_panic_for_tests, m)?)?;
    m.add_class::<optimize::Optimized>()?;
    m.add_class::<session::InferenceSession>()?;
    m.add_class::<session::NodeArg>()?;
    Ok(())
}
