//! Values across the boundary: Python bytes and numpy arrays borrowed as tensor data without a
//! copy, tensors out as new numpy arrays, JSON reports as dicts, and input-shape mappings.

use numpy::{
    dtype, Element, PyArrayDescr, PyArrayDescrMethods, PyArrayDyn, PyArrayMethods, PyUntypedArray,
    PyUntypedArrayMethods,
};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use ssc_opt::ir::{DataType, Dim, Tensor};

/// A Python object's immutable buffer, kept alive by a reference to the object: tensor data
/// that borrows the buffer instead of copying it.
struct Borrowed {
    _owner: Py<PyAny>,
    ptr: *const u8,
    len: usize,
}

// SAFETY: `ptr..ptr+len` is the buffer of `_owner`, which this struct keeps alive; the buffer
// is never moved or freed while the object lives (bytes objects are immutable; numpy arrays do
// not move their data, and a reference to the array keeps the data alive). Reading it from
// another thread is sound as long as no one writes to it meanwhile: true for bytes, and for
// arrays the documented contract of `InferenceSession.run` (as with onnxruntime).
unsafe impl Send for Borrowed {}
// SAFETY: see `Send`: shared access only reads.
unsafe impl Sync for Borrowed {}

impl AsRef<[u8]> for Borrowed {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: see the `Send` impl; `len` bytes from `ptr` belong to the kept-alive object.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

/// The contents of a `bytes` object, borrowed (no copy).
pub fn bytes_of(b: &Bound<'_, PyBytes>) -> bytes::Bytes {
    let data = b.as_bytes();
    bytes::Bytes::from_owner(Borrowed {
        _owner: b.clone().into_any().unbind(),
        ptr: data.as_ptr(),
        len: data.len(),
    })
}

/// A JSON document as Python objects, through the standard `json` module (so the dict is
/// exactly what the CLI's `--json` output parses to).
pub fn json_to_py(py: Python<'_>, json: &str) -> PyResult<Py<PyAny>> {
    Ok(py.import("json")?.call_method1("loads", (json,))?.unbind())
}

/// `{"input": [1, 3, 224, 224], ...}` (or `[("input", [...]), ...]`) as shape overrides; a
/// dimension is an int, a symbolic name, or `None` for unknown.
pub fn input_shapes(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<(String, Vec<Dim>)>> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(Vec::new());
    };
    let items = if obj.hasattr("items")? {
        obj.call_method0("items")?
    } else {
        obj.clone()
    };
    let mut out = Vec::new();
    for item in items.try_iter()? {
        let (name, dims): (String, Bound<'_, PyAny>) = item?.extract()?;
        let mut v = Vec::new();
        for d in dims.try_iter()? {
            let d = d?;
            v.push(if d.is_none() {
                Dim::Unknown
            } else if let Ok(s) = d.extract::<String>() {
                Dim::Param(s)
            } else {
                let n: i64 = d.extract()?;
                let n = usize::try_from(n).map_err(|_| {
                    crate::invalid(
                        d.py(),
                        format!("input_shapes[{name:?}]: dimension {n} is negative"),
                    )
                })?;
                Dim::Known(n)
            });
        }
        out.push((name, v));
    }
    Ok(out)
}

/// The numpy dtype of an ONNX element type, where numpy has one.
pub fn np_dtype<'py>(py: Python<'py>, t: DataType) -> Option<Bound<'py, PyArrayDescr>> {
    Some(match t {
        DataType::Float => dtype::<f32>(py),
        DataType::Double => dtype::<f64>(py),
        DataType::Float16 => dtype::<half::f16>(py),
        DataType::Int8 => dtype::<i8>(py),
        DataType::Int16 => dtype::<i16>(py),
        DataType::Int32 => dtype::<i32>(py),
        DataType::Int64 => dtype::<i64>(py),
        DataType::Uint8 => dtype::<u8>(py),
        DataType::Uint16 => dtype::<u16>(py),
        DataType::Uint32 => dtype::<u32>(py),
        DataType::Uint64 => dtype::<u64>(py),
        DataType::Bool => dtype::<bool>(py),
        _ => return None,
    })
}

/// A fed value as a tensor of `want`, borrowing the array's memory when it is a C-contiguous
/// numpy array of exactly that dtype (the common case: no copy at all); other arrays of that
/// dtype are made contiguous first, and non-arrays (lists, scalars) converted. An array of
/// another dtype is an error, as in onnxruntime: a silent cast would hide a bug.
pub fn tensor_from_py(
    name: &str,
    value: &Bound<'_, PyAny>,
    want: DataType,
    want_np: &Bound<'_, PyArrayDescr>,
) -> PyResult<Tensor> {
    let py = value.py();
    let np = || py.import("numpy");
    let arr = match value.cast::<PyUntypedArray>() {
        Ok(a) => {
            if !a.dtype().is_equiv_to(want_np) {
                return Err(crate::invalid(
                    py,
                    format!(
                        "input `{name}`: expected an array of {} (tensor({})), got {}",
                        want_np.str()?,
                        want.name(),
                        a.dtype().str()?
                    ),
                ));
            }
            if a.is_c_contiguous() {
                a.clone()
            } else {
                np()?
                    .call_method1("ascontiguousarray", (a,))?
                    .cast_into::<PyUntypedArray>()?
            }
        }
        Err(_) => np()?
            .call_method1("ascontiguousarray", (value, want_np))?
            .cast_into::<PyUntypedArray>()?,
    };
    let dims = arr.shape().to_vec();
    let len = arr.len() * want_np.itemsize();
    let data = if len == 0 {
        bytes::Bytes::new()
    } else {
        // SAFETY: a C-contiguous array of `len()` elements of this dtype holds `len` bytes
        // from its data pointer; `Borrowed` keeps the array (and so its data) alive.
        let ptr = unsafe { (*arr.as_array_ptr()).fields.data } as *const u8;
        bytes::Bytes::from_owner(Borrowed {
            _owner: arr.into_any().unbind(),
            ptr,
            len,
        })
    };
    Tensor::from_raw(want, dims, data)
        .map_err(|e| crate::invalid(py, format!("input `{name}`: {e}")))
}

/// A new numpy array of `T` holding `raw` (little-endian `T`s) in shape `dims`.
fn array_of<'py, T: Element>(py: Python<'py>, dims: &[usize], raw: &[u8]) -> Bound<'py, PyAny> {
    // SAFETY: the array is created uninitialised and every byte of it is written below before
    // anyone can see it: `raw` holds exactly `numel(dims)` elements of `T` (checked by the
    // tensor's construction), and a new array is C-contiguous.
    unsafe {
        let arr = PyArrayDyn::<T>::new(py, dims, false);
        debug_assert_eq!(arr.len() * std::mem::size_of::<T>(), raw.len());
        std::ptr::copy_nonoverlapping(raw.as_ptr(), arr.data() as *mut u8, raw.len());
        arr.into_any()
    }
}

/// An output tensor as a new numpy array (the session's memory is reused by the next run, so
/// outputs are copied out once, as onnxruntime does).
pub fn tensor_to_py<'py>(py: Python<'py>, name: &str, t: &Tensor) -> PyResult<Bound<'py, PyAny>> {
    let raw = match &t.data {
        ssc_opt::ir::TensorData::Raw(b) => b.as_ref(),
        _ => {
            return Err(crate::invalid(
                py,
                format!(
                    "output `{name}`: {} tensors cannot be returned as numpy arrays",
                    t.dtype
                ),
            ))
        }
    };
    let d = &t.dims;
    Ok(match t.dtype {
        DataType::Float => array_of::<f32>(py, d, raw),
        DataType::Double => array_of::<f64>(py, d, raw),
        DataType::Float16 => array_of::<half::f16>(py, d, raw),
        DataType::Int8 => array_of::<i8>(py, d, raw),
        DataType::Int16 => array_of::<i16>(py, d, raw),
        DataType::Int32 => array_of::<i32>(py, d, raw),
        DataType::Int64 => array_of::<i64>(py, d, raw),
        DataType::Uint8 => array_of::<u8>(py, d, raw),
        DataType::Uint16 => array_of::<u16>(py, d, raw),
        DataType::Uint32 => array_of::<u32>(py, d, raw),
        DataType::Uint64 => array_of::<u64>(py, d, raw),
        DataType::Bool => array_of::<bool>(py, d, raw),
        other => {
            return Err(crate::invalid(
                py,
                format!("output `{name}`: {other} tensors cannot be returned as numpy arrays"),
            ))
        }
    })
}
