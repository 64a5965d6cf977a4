//! Feeding and running a model with the reference executor: `.npy` or seeded random inputs in,
//! named output tensors out.

use std::path::PathBuf;

use ssc_ir::{DataType, Dim, Model, Tensor, ValueType};

use crate::{npy, Error};

/// Where one input's data comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum Feed {
    /// A `.npy` file.
    File(PathBuf),
    /// Seeded pseudo-random data shaped by the input's declared type.
    Random,
}

/// A tiny deterministic generator (SplitMix64), so seeded inputs are identical across
/// platforms and crate versions.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [-1, 1).
    pub fn next_signed_unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }
}

/// The static shape an input will be fed with: declared dims, with `overrides` applied by name
/// and any remaining symbolic dimension set to 1.
fn feed_shape(
    model: &Model,
    name: &str,
    overrides: &[(String, Vec<Dim>)],
) -> Result<(DataType, Vec<usize>), Error> {
    let g = &model.graph;
    let v = g
        .value_by_name(name)
        .filter(|&v| g.is_graph_input(v))
        .ok_or_else(|| Error::Usage(format!("`{name}` is not an input of the model")))?;
    let tt = match &g.value(v).ty {
        Some(ValueType::Tensor(t)) => t,
        _ => {
            return Err(Error::Usage(format!(
                "input `{name}` has no tensor type; feed it from a .npy file"
            )))
        }
    };
    let declared = tt.shape.clone().ok_or_else(|| {
        Error::Usage(format!(
            "input `{name}` has unknown rank; feed it from a .npy file or give --input-shape"
        ))
    })?;
    let dims = match overrides.iter().find(|(n, _)| n == name) {
        Some((_, d)) => d.clone(),
        None => declared,
    };
    let dims = dims.iter().map(|d| d.known().unwrap_or(1)).collect();
    Ok((tt.elem, dims))
}

/// Seeded random data for an input: floats uniform in [-1, 1), integers in [0, 10), booleans
/// fair coin flips.
pub fn random_tensor(dtype: DataType, dims: Vec<usize>, seed: u64) -> Option<Tensor> {
    let n = ssc_ir::checked_numel(&dims)?;
    let mut rng = SplitMix64::new(seed);
    let vals: Vec<f64> = (0..n)
        .map(|_| {
            if dtype.is_float() {
                rng.next_signed_unit()
            } else if dtype == DataType::Bool {
                (rng.next_u64() & 1) as f64
            } else {
                (rng.next_u64() % 10) as f64
            }
        })
        .collect();
    Tensor::from_f64_as(dtype, dims, &vals)
}

/// Builds the feeds: `.npy` files are checked against the declared dtype, rank and static dims
/// (naming the file on mismatch); random inputs are seeded by `seed` plus the input's position.
pub fn prepare_inputs(
    model: &Model,
    feeds: &[(String, Feed)],
    overrides: &[(String, Vec<Dim>)],
    seed: u64,
) -> Result<Vec<(String, Tensor)>, Error> {
    let g = &model.graph;
    let mut out = Vec::with_capacity(feeds.len());
    for (idx, (name, feed)) in feeds.iter().enumerate() {
        let (dtype, dims) = feed_shape(model, name, overrides)?;
        let t = match feed {
            Feed::Random => {
                random_tensor(dtype, dims, seed.wrapping_add(idx as u64)).ok_or_else(|| {
                    Error::Usage(format!("cannot make random {dtype} data for `{name}`"))
                })?
            }
            Feed::File(path) => {
                let t = npy::read_npy(path)?;
                let v = g.value_by_name(name).expect("checked by feed_shape");
                let tt = g
                    .value(v)
                    .ty
                    .as_ref()
                    .and_then(ValueType::tensor)
                    .expect("checked");
                let p = path.display();
                if t.dtype != tt.elem {
                    return Err(Error::Usage(format!(
                        "{p}: input `{name}` wants {} but the file holds {}",
                        tt.elem, t.dtype
                    )));
                }
                let want = overrides
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, d)| d.clone())
                    .or_else(|| tt.shape.clone());
                if let Some(want) = want {
                    if want.len() != t.dims.len() {
                        return Err(Error::Usage(format!(
                            "{p}: input `{name}` has rank {} but the file has shape {:?}",
                            want.len(),
                            t.dims
                        )));
                    }
                    for (axis, (w, &h)) in want.iter().zip(&t.dims).enumerate() {
                        if let Some(w) = w.known() {
                            if w != h {
                                return Err(Error::Usage(format!(
                                    "{p}: input `{name}` needs dim {axis} = {w} but the file has shape {:?}",
                                    t.dims
                                )));
                            }
                        }
                    }
                }
                t
            }
        };
        out.push((name.clone(), t));
    }
    Ok(out)
}

/// Random feeds for every required input (those without an initializer default), in graph order.
pub fn random_inputs(
    model: &Model,
    overrides: &[(String, Vec<Dim>)],
    seed: u64,
) -> Result<Vec<(String, Tensor)>, Error> {
    let g = &model.graph;
    let feeds: Vec<(String, Feed)> = g
        .inputs()
        .iter()
        .filter(|&&v| g.initializer(v).is_none())
        .map(|&v| (g.value(v).name.clone(), Feed::Random))
        .collect();
    prepare_inputs(model, &feeds, overrides, seed)
}

/// Runs `model` with the reference executor.
pub fn run_reference(
    model: &Model,
    inputs: &[(String, Tensor)],
) -> Result<Vec<(String, Tensor)>, Error> {
    let exec = ssc_exec::Executor::new(model)?;
    Ok(exec.run(inputs)?)
}
