//! The ssc-opt library facade: load, optimise, inspect and save ONNX models.
//!
//! The CLI is a thin layer over this crate; other compilers use it the same way.
//!
//! ```no_run
//! let loaded = ssc_opt::load(std::path::Path::new("model.onnx"))?;
//! let mut model = loaded.model;
//! let report = ssc_opt::optimize(&mut model, &ssc_opt::Options::default())?;
//! ssc_opt::save(&model, std::path::Path::new("model.opt.onnx"), &Default::default())?;
//! eprintln!("{}", report.summary());
//! # Ok::<(), ssc_opt::Error>(())
//! ```

mod error;
mod inspect;
mod jit;
mod npy;
mod optimize;
mod run;
mod runner;
mod verify;

pub use error::{one_line, ErrorKind};
pub use inspect::{human_bytes, inspect, LayerMacs, ModelInfo, ValueSummary};
pub use jit::{bench, run_with, BenchOptions, BenchReport, Engine, RunInfo, StepTime};
pub use npy::{decode_npy, encode_npy, read_npy, NpyError};
pub use optimize::{cost_model, optimize, optimize_verified, JobReport, Options, Report};
pub use run::{prepare_inputs, random_inputs, random_tensor, run_reference, Feed, SplitMix64};
pub use runner::{Runner, RunnerOptions, ValueInfo, MAX_SHAPE_PLANS};
pub use ssc_ir as ir;
pub use ssc_jit;
pub use ssc_onnx::{ExternalData, Loaded, SaveOptions, Saved, DEFAULT_EXTERNAL_THRESHOLD};
pub use ssc_passes::{infer_shapes, PHASES};
pub use ssc_rewrite;
pub use ssc_structure;
pub use ssc_structure::{AnalysisOptions, ModelStructure};
pub use verify::{rel_err, verify, Verification, VerifyOptions};

use std::path::Path;

/// Everything the facade can fail with; each variant wraps the layer below.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Onnx(#[from] ssc_onnx::OnnxError),
    #[error("{0}")]
    Ir(#[from] ssc_ir::IrError),
    #[error(transparent)]
    Exec(#[from] ssc_exec::ExecError),
    #[error(transparent)]
    Pass(#[from] ssc_passes::PassError),
    #[error(transparent)]
    Rewrite(#[from] ssc_rewrite::RewriteError),
    #[error(transparent)]
    Jit(#[from] ssc_jit::JitError),
    #[error(transparent)]
    Structure(#[from] ssc_structure::StructureError),
    #[error(transparent)]
    Npy(#[from] npy::NpyError),
    #[error("{0}")]
    Usage(String),
    /// `--cost-model FILE` could not be read or is not a calibration table.
    #[error("cost model {spec}: {msg}")]
    CostModel { spec: String, msg: String },
    /// The optimised model's outputs drifted past the tolerance; nothing was written.
    #[error("verification failed: {}", .0.summary())]
    VerificationFailed(Verification),
}

/// Reads an ONNX model, resolving external data next to it.
pub fn load(path: &Path) -> Result<Loaded, Error> {
    Ok(ssc_onnx::load(path)?)
}

/// Decodes a serialized model held in memory. `name` stands for the file in messages; external
/// data cannot be resolved without a directory, so a model that has some is an error.
pub fn load_bytes(bytes: impl Into<bytes::Bytes>, name: &str) -> Result<Loaded, Error> {
    Ok(ssc_onnx::decode(bytes.into(), Path::new(name), None)?)
}

/// What shape inference has to say about `model` without changing it: one line per declared
/// type that disagrees with what its op computes (see [`Report::warnings`]). Empty when
/// inference fails outright; the engines report that themselves.
pub fn type_warnings(model: &ir::Model) -> Vec<String> {
    let mut m = model.clone();
    ssc_passes::infer_shapes(&mut m, &[])
        .map(|r| r.warnings)
        .unwrap_or_default()
}

/// Writes a model atomically (never a partial file).
pub fn save(model: &ir::Model, path: &Path, opts: &SaveOptions) -> Result<Saved, Error> {
    Ok(ssc_onnx::save(model, path, opts)?)
}

/// Serialises a model with all data inline: the bytes [`save`] writes without external data.
pub fn encode(model: &ir::Model) -> Result<Vec<u8>, Error> {
    Ok(ssc_onnx::encode_model(model)?)
}

/// Writes `bytes` to `path` atomically, replacing any existing file (never a partial file).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    Ok(ssc_onnx::write_atomic(path, bytes)?)
}

/// The weight structure of every Conv, Gemm and MatMul with a constant weight, by node (the
/// facts the rewriter's rules are guarded by; see `ssc_structure`).
pub fn analyze(model: &ir::Model, opts: &AnalysisOptions) -> Result<ModelStructure, Error> {
    Ok(ssc_structure::analyze_model(model, opts)?)
}
