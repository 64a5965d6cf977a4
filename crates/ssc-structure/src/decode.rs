//! Turning a weight tensor into a slice of f32 or f64 without changing any value.

use ssc_ir::{DataType, Tensor};

use crate::StructureError;

/// Calls `on_f32` or `on_f64` with the tensor's values. f16 and bf16 widen to f32 exactly; f64
/// stays f64 so no two distinct values merge.
pub(crate) fn with_values<R>(
    t: &Tensor,
    on_f32: impl FnOnce(&[f32]) -> R,
    on_f64: impl FnOnce(&[f64]) -> R,
) -> Result<R, StructureError> {
    match t.dtype {
        DataType::Float | DataType::Float16 | DataType::Bfloat16 => {
            let v = t.to_f32_vec().ok_or(StructureError::NotNumeric)?;
            check_len(v.len(), t)?;
            Ok(on_f32(&v))
        }
        DataType::Double => {
            let v = t.to_f64_vec().ok_or(StructureError::NotNumeric)?;
            check_len(v.len(), t)?;
            Ok(on_f64(&v))
        }
        other => Err(StructureError::UnsupportedDtype(other)),
    }
}

fn check_len(len: usize, t: &Tensor) -> Result<(), StructureError> {
    if len == t.numel() {
        Ok(())
    } else {
        Err(StructureError::NotNumeric)
    }
}

/// Channel indices are reported as u32.
pub(crate) fn check_channels(n: usize) -> Result<(), StructureError> {
    if n > u32::MAX as usize {
        return Err(StructureError::TooManyChannels(n));
    }
    Ok(())
}
