//! `ssc_opt.InferenceSession`: onnxruntime's session shape over [`ssc_opt::Runner`] (the JIT
//! when it covers the model, else the reference executor).
//!
//! Threads: `run` releases the GIL and may be called from several threads at once; each call
//! takes its own arena from the runner's pool (see `ssc_opt::Runner`), so calls never share
//! intermediate memory. Input arrays are borrowed, not copied, for the duration of the call:
//! writing to an array while a `run` reads it gives unspecified results (as in onnxruntime).

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use numpy::PyArrayDescr;
use ssc_opt::ir::{DataType, Dim};

use crate::{convert, guard, invalid, Source};

/// A graph input or output, as onnxruntime's `NodeArg`: `name`, `shape` (ints for known
/// dimensions, strings for symbolic ones, `None` for unknown) and `type` (`"tensor(float)"`).
#[pyclass(module = "ssc_opt", frozen, get_all)]
pub struct NodeArg {
    name: String,
    shape: Option<Vec<Py<PyAny>>>,
    #[pyo3(name = "type")]
    ty: String,
}

#[pymethods]
impl NodeArg {
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let shape = match &self.shape {
            None => "None".to_string(),
            Some(s) => {
                let parts: PyResult<Vec<String>> = s
                    .iter()
                    .map(|d| Ok(d.bind(py).repr()?.to_string()))
                    .collect();
                format!("[{}]", parts?.join(", "))
            }
        };
        Ok(format!(
            "NodeArg(name='{}', type='{}', shape={shape})",
            self.name, self.ty
        ))
    }
}

fn node_arg(py: Python<'_>, v: &ssc_opt::ValueInfo) -> PyResult<NodeArg> {
    let shape = match &v.shape {
        None => None,
        Some(dims) => Some(
            dims.iter()
                .map(|d| {
                    Ok(match d {
                        Dim::Known(n) => n.into_pyobject(py)?.into_any().unbind(),
                        Dim::Param(p) => p.into_pyobject(py)?.into_any().unbind(),
                        Dim::Unknown => py.None(),
                    })
                })
                .collect::<PyResult<Vec<_>>>()?,
        ),
    };
    Ok(NodeArg {
        name: v.name.clone(),
        shape,
        ty: match v.dtype {
            Some(t) => format!("tensor({})", t.name()),
            None => "unknown".into(),
        },
    })
}

/// A model ready to run many times: `InferenceSession(model, *, threads=None, engine="auto",
/// input_shapes=None)`.
#[pyclass(module = "ssc_opt", frozen)]
pub struct InferenceSession {
    runner: ssc_opt::Runner,
    inputs: Vec<Py<NodeArg>>,
    outputs: Vec<Py<NodeArg>>,
    /// Each input's element type and numpy dtype, in the order of `inputs`.
    input_types: Vec<(DataType, Py<PyArrayDescr>)>,
}

#[pymethods]
impl InferenceSession {
    /// `sess_options`, `providers` and `provider_options` are accepted so that code written for
    /// onnxruntime runs unchanged; `sess_options.intra_op_num_threads` (when > 0) sets
    /// `threads` unless `threads` is given, and the rest is ignored.
    #[new]
    #[pyo3(signature = (
        model, sess_options = None, providers = None, provider_options = None, *,
        threads = None, engine = "auto", input_shapes = None
    ))]
    #[allow(clippy::too_many_arguments)] // reason: onnxruntime's signature plus ours
    fn new(
        py: Python<'_>,
        model: &Bound<'_, PyAny>,
        sess_options: Option<&Bound<'_, PyAny>>,
        providers: Option<&Bound<'_, PyAny>>,
        provider_options: Option<&Bound<'_, PyAny>>,
        threads: Option<usize>,
        engine: &str,
        input_shapes: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<InferenceSession> {
        let _ = (providers, provider_options);
        let source = Source::from_py(model)?;
        let engine = match engine {
            "auto" => ssc_opt::Engine::Auto,
            "jit" => ssc_opt::Engine::Jit,
            "reference" => ssc_opt::Engine::Reference,
            other => {
                return Err(invalid(
                    py,
                    format!("engine must be \"auto\", \"jit\" or \"reference\", not {other:?}"),
                ))
            }
        };
        let threads = match (threads, sess_options) {
            (Some(t), _) => t,
            (None, Some(o)) if o.hasattr("intra_op_num_threads")? => {
                o.getattr("intra_op_num_threads")?.extract::<i64>()?.max(0) as usize
            }
            _ => 0,
        };
        let opts = ssc_opt::RunnerOptions {
            engine,
            threads,
            input_shapes: convert::input_shapes(input_shapes)?,
        };
        let runner = guard(py, move || {
            ssc_opt::Runner::new(source.load()?.model, &opts)
        })?;
        let mut input_types = Vec::new();
        for i in runner.inputs() {
            let t = i.dtype.unwrap_or(DataType::Float);
            let np = convert::np_dtype(py, t).ok_or_else(|| {
                invalid(
                    py,
                    format!("input `{}`: {t} inputs cannot be fed from numpy", i.name),
                )
            })?;
            input_types.push((t, np.unbind()));
        }
        let args = |vs: &[ssc_opt::ValueInfo]| -> PyResult<Vec<Py<NodeArg>>> {
            vs.iter().map(|v| Py::new(py, node_arg(py, v)?)).collect()
        };
        Ok(InferenceSession {
            inputs: args(runner.inputs())?,
            outputs: args(runner.outputs())?,
            runner,
            input_types,
        })
    }

    /// Runs the model: `output_names` (`None`: all outputs, in graph order) and a dict of input
    /// name to numpy array; returns the outputs as a list of numpy arrays. `run_options` is
    /// accepted for onnxruntime compatibility and ignored.
    #[pyo3(signature = (output_names, input_feed, run_options = None))]
    fn run<'py>(
        &self,
        py: Python<'py>,
        output_names: Option<Vec<String>>,
        input_feed: &Bound<'py, PyDict>,
        run_options: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyList>> {
        let _ = run_options;
        let infos = self.runner.inputs();
        let mut feeds = Vec::with_capacity(input_feed.len());
        for (k, v) in input_feed.iter() {
            let name: String = k.extract()?;
            let Some(i) = infos.iter().position(|i| i.name == name) else {
                let known: Vec<&str> = infos.iter().map(|i| i.name.as_str()).collect();
                return Err(invalid(
                    py,
                    format!(
                        "`{name}` is not an input of the model (inputs: {})",
                        known.join(", ")
                    ),
                ));
            };
            let (t, np) = &self.input_types[i];
            let tensor = convert::tensor_from_py(&name, &v, *t, np.bind(py))?;
            feeds.push((name, tensor));
        }
        let runner = &self.runner;
        let outs = guard(py, || {
            let refs: Vec<(&str, &ssc_opt::ir::Tensor)> =
                feeds.iter().map(|(n, t)| (n.as_str(), t)).collect();
            runner.run(&refs)
        })?;
        // The borrowed inputs are released here, with the GIL held.
        drop(feeds);
        let list = PyList::empty(py);
        match output_names {
            None => {
                for (name, t) in &outs {
                    list.append(convert::tensor_to_py(py, name, t)?)?;
                }
            }
            Some(names) => {
                for want in &names {
                    let Some((name, t)) = outs.iter().find(|(n, _)| n == want) else {
                        return Err(invalid(
                            py,
                            format!("`{want}` is not an output of the model"),
                        ));
                    };
                    list.append(convert::tensor_to_py(py, name, t)?)?;
                }
            }
        }
        Ok(list)
    }

    /// The inputs a caller feeds, as `NodeArg`s.
    fn get_inputs(&self, py: Python<'_>) -> Vec<Py<NodeArg>> {
        self.inputs.iter().map(|a| a.clone_ref(py)).collect()
    }

    /// The outputs, as `NodeArg`s (shapes as far as inference found them).
    fn get_outputs(&self, py: Python<'_>) -> Vec<Py<NodeArg>> {
        self.outputs.iter().map(|a| a.clone_ref(py)).collect()
    }

    /// `"jit"` or `"reference"`: the engine that runs the model.
    #[getter]
    fn engine(&self) -> &'static str {
        match self.runner.engine() {
            ssc_opt::Engine::Reference => "reference",
            _ => "jit",
        }
    }

    /// Nodes the JIT runs through reference kernels (`"node (OpType)"`); empty when every node
    /// has a native kernel or the reference engine runs the model.
    #[getter]
    fn fallback_nodes(&self) -> Vec<String> {
        self.runner
            .fallback_nodes()
            .iter()
            .map(|s| format!("{} ({})", s.node, s.op_type))
            .collect()
    }

    fn __repr__(&self) -> String {
        let names = |v: &[ssc_opt::ValueInfo]| {
            v.iter()
                .map(|i| i.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!(
            "<ssc_opt.InferenceSession engine={} inputs=[{}] outputs=[{}]>",
            self.engine(),
            names(self.runner.inputs()),
            names(self.runner.outputs())
        )
    }
}
