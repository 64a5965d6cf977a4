//! `.npy` files in and out of IR tensors, for `ssc-opt run` and for tests.

use std::path::Path;

use ssc_ir::{DataType, Tensor};

/// What can go wrong reading or writing a `.npy` file.
#[derive(Debug, thiserror::Error)]
pub enum NpyError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a valid .npy file: {what}")]
    Format { path: String, what: String },
    #[error("{path}: dtype `{dtype}` is not supported (use float32/64, float16, int8-64, uint8-64 or bool)")]
    Dtype { path: String, dtype: String },
    #[error("{path}: {dtype} tensors cannot be written as .npy")]
    Unwritable { path: String, dtype: DataType },
}

fn dtype_of(descr: &str) -> Option<DataType> {
    // Byte order: '<' little, '|' not applicable; big-endian files are rejected.
    let body = descr
        .strip_prefix('<')
        .or_else(|| descr.strip_prefix('|'))?;
    Some(match body {
        "f4" => DataType::Float,
        "f8" => DataType::Double,
        "f2" => DataType::Float16,
        "i1" => DataType::Int8,
        "i2" => DataType::Int16,
        "i4" => DataType::Int32,
        "i8" => DataType::Int64,
        "u1" => DataType::Uint8,
        "u2" => DataType::Uint16,
        "u4" => DataType::Uint32,
        "u8" => DataType::Uint64,
        "b1" => DataType::Bool,
        _ => return None,
    })
}

fn descr_of(dtype: DataType) -> Option<&'static str> {
    Some(match dtype {
        DataType::Float => "<f4",
        DataType::Double => "<f8",
        DataType::Float16 => "<f2",
        DataType::Int8 => "|i1",
        DataType::Int16 => "<i2",
        DataType::Int32 => "<i4",
        DataType::Int64 => "<i8",
        DataType::Uint8 => "|u1",
        DataType::Uint16 => "<u2",
        DataType::Uint32 => "<u4",
        DataType::Uint64 => "<u8",
        DataType::Bool => "|b1",
        _ => return None,
    })
}

/// Reads `.npy` bytes (C order, little-endian) into a tensor.
pub fn decode_npy(bytes: &[u8], path: &str) -> Result<Tensor, NpyError> {
    let fmt = |what: String| NpyError::Format {
        path: path.to_string(),
        what,
    };
    let npy = npyz::NpyFile::new(bytes).map_err(|e| fmt(e.to_string()))?;
    let descr = match npy.dtype() {
        npyz::DType::Plain(ts) => ts.to_string(),
        other => other.descr(),
    };
    let dtype = dtype_of(&descr).ok_or_else(|| NpyError::Dtype {
        path: path.to_string(),
        dtype: descr.clone(),
    })?;
    if npy.order() != npyz::Order::C && npy.shape().len() > 1 {
        return Err(fmt(
            "Fortran-ordered arrays are not supported; save with np.ascontiguousarray".into(),
        ));
    }
    let shape = npy
        .shape()
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| fmt(format!("dimension {d} is too large"))))
        .collect::<Result<Vec<_>, _>>()?;
    let numel = ssc_ir::checked_numel(&shape).ok_or_else(|| fmt("shape overflows".into()))?;
    let want = dtype
        .storage_bytes(numel)
        .ok_or_else(|| fmt("shape overflows".into()))?;
    let truncated = |e: std::io::Error| {
        fmt(format!(
            "shape {shape:?} of {dtype} needs {want} data bytes: {e} (truncated?)"
        ))
    };
    macro_rules! raw {
        ($t:ty) => {{
            let v: Vec<$t> = npy.into_vec().map_err(truncated)?;
            v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>()
        }};
    }
    let raw: Vec<u8> = match dtype {
        DataType::Float => raw!(f32),
        DataType::Double => raw!(f64),
        DataType::Float16 | DataType::Uint16 => raw!(u16),
        DataType::Int8 => raw!(i8),
        DataType::Int16 => raw!(i16),
        DataType::Int32 => raw!(i32),
        DataType::Int64 => raw!(i64),
        DataType::Uint8 => raw!(u8),
        DataType::Uint32 => raw!(u32),
        DataType::Uint64 => raw!(u64),
        DataType::Bool => {
            let v: Vec<bool> = npy.into_vec().map_err(truncated)?;
            v.into_iter().map(u8::from).collect()
        }
        _ => unreachable!("dtype_of only returns the types above"),
    };
    Tensor::from_raw(dtype, shape, bytes::Bytes::from(raw)).map_err(|e| fmt(e.to_string()))
}

/// Reads a `.npy` file.
pub fn read_npy(path: &Path) -> Result<Tensor, NpyError> {
    let p = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| NpyError::Io {
        path: p.clone(),
        source,
    })?;
    decode_npy(&bytes, &p)
}

/// Serialises a tensor as `.npy`.
pub fn encode_npy(t: &Tensor, path: &str) -> Result<Vec<u8>, NpyError> {
    use npyz::WriterBuilder;
    let unwritable = || NpyError::Unwritable {
        path: path.to_string(),
        dtype: t.dtype,
    };
    let descr = descr_of(t.dtype).ok_or_else(unwritable)?;
    let raw = t.raw().ok_or_else(unwritable)?;
    let ts: npyz::TypeStr = descr.parse().expect("static descr strings parse");
    let shape: Vec<u64> = t.dims.iter().map(|&d| d as u64).collect();
    let mut out = Vec::with_capacity(128 + raw.len());
    let io = |e: std::io::Error| NpyError::Io {
        path: path.to_string(),
        source: e,
    };
    macro_rules! put {
        ($t:ty) => {{
            let mut w = npyz::WriteOptions::<$t>::new()
                .dtype(npyz::DType::Plain(ts.clone()))
                .shape(&shape)
                .writer(&mut out)
                .begin_nd()
                .map_err(io)?;
            let n = std::mem::size_of::<$t>();
            for c in raw.chunks_exact(n) {
                w.push(&<$t>::from_le_bytes(c.try_into().expect("exact chunk")))
                    .map_err(io)?;
            }
            w.finish().map_err(io)?;
        }};
    }
    match t.dtype {
        DataType::Float => put!(f32),
        DataType::Double => put!(f64),
        DataType::Float16 | DataType::Uint16 => put!(u16),
        DataType::Int8 => put!(i8),
        DataType::Int16 => put!(i16),
        DataType::Int32 => put!(i32),
        DataType::Int64 => put!(i64),
        DataType::Uint8 => put!(u8),
        DataType::Uint32 => put!(u32),
        DataType::Uint64 => put!(u64),
        DataType::Bool => {
            let mut w = npyz::WriteOptions::<bool>::new()
                .dtype(npyz::DType::Plain(ts.clone()))
                .shape(&shape)
                .writer(&mut out)
                .begin_nd()
                .map_err(io)?;
            for &b in raw.iter() {
                w.push(&(b != 0)).map_err(io)?;
            }
            w.finish().map_err(io)?;
        }
        _ => return Err(unwritable()),
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let t = Tensor::from_f32(vec![2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let b = encode_npy(&t, "t.npy").unwrap();
        assert_eq!(decode_npy(&b, "t.npy").unwrap(), t);
        let s = Tensor::from_i64(vec![], &[7]);
        assert_eq!(decode_npy(&encode_npy(&s, "s").unwrap(), "s").unwrap(), s);
    }

    #[test]
    fn malformed_files_are_errors() {
        let t = Tensor::from_f32(vec![4], &[1.0; 4]);
        let b = encode_npy(&t, "t").unwrap();
        let cut = decode_npy(&b[..b.len() - 3], "t.npy").unwrap_err();
        assert!(matches!(cut, NpyError::Format { .. }), "{cut}");
        assert!(decode_npy(b"hello", "x").is_err());
        let mut big_endian = b.clone();
        let pos = big_endian.windows(3).position(|w| w == b"<f4").unwrap();
        big_endian[pos] = b'>';
        assert!(matches!(
            decode_npy(&big_endian, "x"),
            Err(NpyError::Dtype { .. })
        ));
    }
}
