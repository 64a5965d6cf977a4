//! Constant tensors (initializers and attribute values) held as packed little-endian bytes.

use bytes::Bytes;

use crate::{DataType, IrError};

/// Where a tensor's elements live.
#[derive(Clone, Debug, PartialEq)]
pub enum TensorData {
    /// Fixed-width elements, packed little-endian exactly as ONNX `raw_data` stores them.
    Raw(Bytes),
    /// One byte string per element, for `DataType::String`.
    Strings(Vec<Bytes>),
    /// A tensor of a type this build cannot decode, kept as the I/O layer's encoded message so it
    /// is written back unchanged.
    Opaque(Bytes),
}

/// A constant tensor. `dims` are validated on construction: their product fits in `usize` and the
/// payload length matches the element type.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub dtype: DataType,
    pub dims: Vec<usize>,
    pub data: TensorData,
    pub doc_string: Option<String>,
    pub metadata: Vec<(String, String)>,
}

/// The element count of `dims`, or `None` on overflow.
pub fn checked_numel(dims: &[usize]) -> Option<usize> {
    dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

impl Tensor {
    /// Builds a raw tensor, checking that `data` holds exactly the bytes `dims` call for.
    pub fn from_raw(dtype: DataType, dims: Vec<usize>, data: Bytes) -> Result<Tensor, IrError> {
        let numel = checked_numel(&dims).ok_or_else(|| IrError::ShapeOverflow(dims.clone()))?;
        if dtype.bit_width().is_some() {
            // A fixed-width type whose byte size overflows cannot have matching data.
            let want = dtype
                .storage_bytes(numel)
                .ok_or_else(|| IrError::ShapeOverflow(dims.clone()))?;
            if want != data.len() {
                return Err(IrError::DataLength {
                    dtype,
                    dims,
                    expected: want,
                    actual: data.len(),
                });
            }
        }
        Ok(Tensor {
            dtype,
            dims,
            data: TensorData::Raw(data),
            doc_string: None,
            metadata: Vec::new(),
        })
    }

    /// An f32 tensor. Panics only if `values.len()` differs from the product of `dims`, which is
    /// a programming error in the caller.
    pub fn from_f32(dims: Vec<usize>, values: &[f32]) -> Tensor {
        assert_eq!(
            checked_numel(&dims),
            Some(values.len()),
            "dims/values mismatch"
        );
        let mut raw = Vec::with_capacity(values.len() * 4);
        for v in values {
            raw.extend_from_slice(&v.to_le_bytes());
        }
        Tensor::new_unchecked(DataType::Float, dims, raw)
    }

    /// An f64 tensor; see [`Tensor::from_f32`].
    pub fn from_f64(dims: Vec<usize>, values: &[f64]) -> Tensor {
        assert_eq!(
            checked_numel(&dims),
            Some(values.len()),
            "dims/values mismatch"
        );
        let mut raw = Vec::with_capacity(values.len() * 8);
        for v in values {
            raw.extend_from_slice(&v.to_le_bytes());
        }
        Tensor::new_unchecked(DataType::Double, dims, raw)
    }

    /// An int64 tensor; see [`Tensor::from_f32`].
    pub fn from_i64(dims: Vec<usize>, values: &[i64]) -> Tensor {
        assert_eq!(
            checked_numel(&dims),
            Some(values.len()),
            "dims/values mismatch"
        );
        let mut raw = Vec::with_capacity(values.len() * 8);
        for v in values {
            raw.extend_from_slice(&v.to_le_bytes());
        }
        Tensor::new_unchecked(DataType::Int64, dims, raw)
    }

    /// A tensor of any numeric type from f64 values, rounding as a cast would (saturating for
    /// integers, nearest-even for floats). Returns `None` for types that are not f16/bf16/f32/f64,
    /// bool or an 8-64 bit integer.
    pub fn from_f64_as(dtype: DataType, dims: Vec<usize>, values: &[f64]) -> Option<Tensor> {
        assert_eq!(
            checked_numel(&dims),
            Some(values.len()),
            "dims/values mismatch"
        );
        let mut raw = Vec::with_capacity(dtype.storage_bytes(values.len())?);
        for &v in values {
            match dtype {
                DataType::Float => raw.extend_from_slice(&(v as f32).to_le_bytes()),
                DataType::Double => raw.extend_from_slice(&v.to_le_bytes()),
                DataType::Float16 => {
                    raw.extend_from_slice(&half::f16::from_f64(v).to_bits().to_le_bytes())
                }
                DataType::Bfloat16 => {
                    raw.extend_from_slice(&half::bf16::from_f64(v).to_bits().to_le_bytes())
                }
                DataType::Bool => raw.push((v != 0.0) as u8),
                DataType::Uint8 => raw.push(v as u8),
                DataType::Int8 => raw.push(v as i8 as u8),
                DataType::Uint16 => raw.extend_from_slice(&(v as u16).to_le_bytes()),
                DataType::Int16 => raw.extend_from_slice(&(v as i16).to_le_bytes()),
                DataType::Int32 => raw.extend_from_slice(&(v as i32).to_le_bytes()),
                DataType::Uint32 => raw.extend_from_slice(&(v as u32).to_le_bytes()),
                DataType::Int64 => raw.extend_from_slice(&(v as i64).to_le_bytes()),
                DataType::Uint64 => raw.extend_from_slice(&(v as u64).to_le_bytes()),
                _ => return None,
            }
        }
        Some(Tensor::new_unchecked(dtype, dims, raw))
    }

    fn new_unchecked(dtype: DataType, dims: Vec<usize>, raw: Vec<u8>) -> Tensor {
        Tensor {
            dtype,
            dims,
            data: TensorData::Raw(Bytes::from(raw)),
            doc_string: None,
            metadata: Vec::new(),
        }
    }

    /// The element count.
    pub fn numel(&self) -> usize {
        // Validated at construction, so the product cannot overflow.
        self.dims.iter().product()
    }

    /// The packed bytes, for raw tensors.
    pub fn raw(&self) -> Option<&Bytes> {
        match &self.data {
            TensorData::Raw(b) => Some(b),
            _ => None,
        }
    }

    /// Payload size in bytes (string and opaque tensors count their stored bytes).
    pub fn byte_len(&self) -> usize {
        match &self.data {
            TensorData::Raw(b) | TensorData::Opaque(b) => b.len(),
            TensorData::Strings(s) => s.iter().map(|b| b.len()).sum(),
        }
    }

    /// Every element widened to f64, for the numeric types of 8 bits or more, bool, and the
    /// 16/32/64-bit floats. `None` for other types (strings, sub-byte, float8, complex).
    pub fn to_f64_vec(&self) -> Option<Vec<f64>> {
        let raw = self.raw()?;
        let b = raw.as_ref();
        let out: Vec<f64> = match self.dtype {
            DataType::Float => b
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64)
                .collect(),
            DataType::Double => b
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
                .collect(),
            DataType::Float16 => b
                .chunks_exact(2)
                .map(|c| half::f16::from_bits(u16::from_le_bytes([c[0], c[1]])).to_f64())
                .collect(),
            DataType::Bfloat16 => b
                .chunks_exact(2)
                .map(|c| half::bf16::from_bits(u16::from_le_bytes([c[0], c[1]])).to_f64())
                .collect(),
            DataType::Bool | DataType::Uint8 => b.iter().map(|&v| v as f64).collect(),
            DataType::Int8 => b.iter().map(|&v| v as i8 as f64).collect(),
            DataType::Uint16 => b
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]) as f64)
                .collect(),
            DataType::Int16 => b
                .chunks_exact(2)
                .map(|c| i16::from_le_bytes([c[0], c[1]]) as f64)
                .collect(),
            DataType::Int32 => b
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes(c.try_into().unwrap()) as f64)
                .collect(),
            DataType::Uint32 => b
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes(c.try_into().unwrap()) as f64)
                .collect(),
            DataType::Int64 => b
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f64)
                .collect(),
            DataType::Uint64 => b
                .chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().unwrap()) as f64)
                .collect(),
            _ => return None,
        };
        Some(out)
    }

    /// Every element as f32 (see [`Tensor::to_f64_vec`] for the supported types).
    pub fn to_f32_vec(&self) -> Option<Vec<f32>> {
        if self.dtype == DataType::Float {
            let b = self.raw()?;
            return Some(
                b.chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                    .collect(),
            );
        }
        Some(self.to_f64_vec()?.into_iter().map(|v| v as f32).collect())
    }

    /// Every element as i64, exactly, for integer and bool types. `None` otherwise.
    pub fn to_i64_vec(&self) -> Option<Vec<i64>> {
        let b = self.raw()?.as_ref();
        Some(match self.dtype {
            DataType::Int64 => b
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
                .collect(),
            DataType::Uint64 => b
                .chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().unwrap()) as i64)
                .collect(),
            DataType::Int32 => b
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes(c.try_into().unwrap()) as i64)
                .collect(),
            DataType::Uint32 => b
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes(c.try_into().unwrap()) as i64)
                .collect(),
            DataType::Int16 => b
                .chunks_exact(2)
                .map(|c| i16::from_le_bytes([c[0], c[1]]) as i64)
                .collect(),
            DataType::Uint16 => b
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]) as i64)
                .collect(),
            DataType::Int8 => b.iter().map(|&v| v as i8 as i64).collect(),
            DataType::Uint8 | DataType::Bool => b.iter().map(|&v| v as i64).collect(),
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_length_is_checked() {
        let err = Tensor::from_raw(DataType::Float, vec![2, 2], Bytes::from(vec![0u8; 15]));
        assert!(matches!(
            err,
            Err(IrError::DataLength {
                expected: 16,
                actual: 15,
                ..
            })
        ));
        assert!(Tensor::from_raw(DataType::Int4, vec![3], Bytes::from(vec![0u8; 2])).is_ok());
        let huge = Tensor::from_raw(DataType::Float, vec![usize::MAX, 2], Bytes::new());
        assert!(matches!(huge, Err(IrError::ShapeOverflow(_))));
        // The element count fits but the byte count does not.
        let bytes = Tensor::from_raw(DataType::Float, vec![1 << 62], Bytes::new());
        assert!(matches!(bytes, Err(IrError::ShapeOverflow(_))));
    }

    #[test]
    fn numeric_views() {
        let t = Tensor::from_f32(vec![3], &[1.5, -2.0, 0.0]);
        assert_eq!(t.to_f64_vec().unwrap(), vec![1.5, -2.0, 0.0]);
        let i = Tensor::from_f64_as(DataType::Int32, vec![2], &[7.0, -3.0]).unwrap();
        assert_eq!(i.to_i64_vec().unwrap(), vec![7, -3]);
        let h = Tensor::from_f64_as(DataType::Float16, vec![1], &[0.5]).unwrap();
        assert_eq!(h.to_f32_vec().unwrap(), vec![0.5]);
    }
}
