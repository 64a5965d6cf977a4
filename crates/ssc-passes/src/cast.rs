//! Exact ONNX `Cast` of constant tensors, shared by Cast folding and shape inference's value
//! propagation, so folding never bakes in a result that a runtime would compute differently.
//!
//! Where ONNX leaves a conversion undefined or runtimes disagree, [`cast_tensor`] returns `None`
//! and the caller leaves the `Cast` in the graph:
//! - float to integer of NaN, infinity or a value out of the target's range (C++ UB);
//! - double to float16/bfloat16 when the double is not exactly a float (ONNX Runtime rounds via
//!   float, numpy rounds directly: double rounding can differ);
//! - integer to float16/bfloat16 when the integer is not exactly a float (same reason);
//! - finite double overflowing float (UB in C++);
//! - strings, sub-byte, float8 and complex types.

use ssc_ir::{DataType, Tensor};

enum Elems {
    /// Integer and bool elements, held widely enough for every 64-bit type.
    Int(Vec<i128>),
    /// Float elements; every f16/bf16/f32 value is exactly an f64.
    Float(Vec<f64>),
}

fn read(t: &Tensor) -> Option<Elems> {
    if t.dtype.is_float() {
        return t.to_f64_vec().map(Elems::Float);
    }
    if t.dtype == DataType::Uint64 {
        // `to_i64_vec` wraps u64 above i64::MAX; read the raw bits to keep the true value.
        let raw = t.raw()?;
        return Some(Elems::Int(
            raw.chunks_exact(8)
                .map(|c| i128::from(u64::from_le_bytes(c.try_into().expect("8 bytes"))))
                .collect(),
        ));
    }
    if t.dtype.is_int() || t.dtype == DataType::Bool {
        return t
            .to_i64_vec()
            .map(|v| Elems::Int(v.into_iter().map(i128::from).collect()));
    }
    None
}

/// Float to integer: truncation toward zero, defined only when the truncated value fits.
fn float_to_int(x: f64, lo: f64, hi: f64) -> Option<i128> {
    if !x.is_finite() {
        return None;
    }
    let t = x.trunc();
    (lo..=hi).contains(&t).then_some(t as i128)
}

/// Casts `t` to `to` with ONNX semantics, or `None` where the result is not well defined (see the
/// module documentation).
pub fn cast_tensor(t: &Tensor, to: DataType) -> Option<Tensor> {
    if t.dtype == to {
        return Some(t.clone());
    }
    let src = t.dtype;
    let elems = read(t)?;
    let n = t.numel();
    let mut raw: Vec<u8> = Vec::with_capacity(to.storage_bytes(n)?);
    match to {
        DataType::Float => match &elems {
            Elems::Int(v) => v
                .iter()
                .for_each(|&x| raw.extend_from_slice(&(x as f32).to_le_bytes())),
            Elems::Float(v) => {
                for &x in v {
                    let y = x as f32;
                    if x.is_finite() && !y.is_finite() {
                        return None;
                    }
                    raw.extend_from_slice(&y.to_le_bytes());
                }
            }
        },
        DataType::Double => match &elems {
            Elems::Int(v) => v
                .iter()
                .for_each(|&x| raw.extend_from_slice(&(x as f64).to_le_bytes())),
            Elems::Float(v) => v
                .iter()
                .for_each(|&x| raw.extend_from_slice(&x.to_le_bytes())),
        },
        DataType::Float16 | DataType::Bfloat16 => {
            let as_f32: Vec<f32> = match &elems {
                Elems::Int(v) => v
                    .iter()
                    .map(|&x| {
                        let f = x as f32;
                        (f as i128 == x).then_some(f)
                    })
                    .collect::<Option<_>>()?,
                Elems::Float(v) => v
                    .iter()
                    .map(|&x| {
                        let f = x as f32;
                        (src != DataType::Double || x.is_nan() || f64::from(f) == x).then_some(f)
                    })
                    .collect::<Option<_>>()?,
            };
            for f in as_f32 {
                let bits = if to == DataType::Float16 {
                    half::f16::from_f32(f).to_bits()
                } else {
                    half::bf16::from_f32(f).to_bits()
                };
                raw.extend_from_slice(&bits.to_le_bytes());
            }
        }
        DataType::Bool => match &elems {
            Elems::Int(v) => v.iter().for_each(|&x| raw.push(u8::from(x != 0))),
            Elems::Float(v) => v.iter().for_each(|&x| raw.push(u8::from(x != 0.0))),
        },
        _ if to.is_int() => {
            let ints: Vec<i128> = match elems {
                Elems::Int(v) => v,
                Elems::Float(v) => {
                    let (lo, hi) = int_range(to)?;
                    v.iter()
                        .map(|&x| float_to_int(x, lo, hi))
                        .collect::<Option<_>>()?
                }
            };
            // Integer to integer keeps the low bits (two's complement), as C++ casts do.
            for x in ints {
                match to {
                    DataType::Int8 => raw.extend_from_slice(&(x as i8).to_le_bytes()),
                    DataType::Uint8 => raw.push(x as u8),
                    DataType::Int16 => raw.extend_from_slice(&(x as i16).to_le_bytes()),
                    DataType::Uint16 => raw.extend_from_slice(&(x as u16).to_le_bytes()),
                    DataType::Int32 => raw.extend_from_slice(&(x as i32).to_le_bytes()),
                    DataType::Uint32 => raw.extend_from_slice(&(x as u32).to_le_bytes()),
                    DataType::Int64 => raw.extend_from_slice(&(x as i64).to_le_bytes()),
                    DataType::Uint64 => raw.extend_from_slice(&(x as u64).to_le_bytes()),
                    _ => return None,
                }
            }
        }
        _ => return None,
    }
    let mut out = Tensor::from_raw(to, t.dims.clone(), bytes::Bytes::from(raw)).ok()?;
    out.doc_string.clone_from(&t.doc_string);
    Some(out)
}

/// The inclusive range of an integer type, as f64 bounds on the truncated value. The 64-bit
/// upper bounds are not exact f64 values, so they use the largest f64 below 2^63 / 2^64.
fn int_range(dt: DataType) -> Option<(f64, f64)> {
    Some(match dt {
        DataType::Int8 => (-128.0, 127.0),
        DataType::Uint8 => (0.0, 255.0),
        DataType::Int16 => (-32768.0, 32767.0),
        DataType::Uint16 => (0.0, 65535.0),
        DataType::Int32 => (-2147483648.0, 2147483647.0),
        DataType::Uint32 => (0.0, 4294967295.0),
        DataType::Int64 => (-9223372036854775808.0, 9223372036854774784.0),
        DataType::Uint64 => (0.0, 18446744073709549568.0),
        _ => return None,
    })
}

/// The element type named by a `Cast` op's `to` attribute: an integer code from opset 6, a
/// string such as `"FLOAT"` before it.
pub(crate) fn cast_target(desc: &ssc_ir::OpDesc) -> Option<DataType> {
    if let Ok(Some(code)) = desc.get_int("to") {
        let dt = DataType::from_code(i32::try_from(code).ok()?);
        return (!matches!(dt, DataType::Unknown(_))).then_some(dt);
    }
    let name = desc.get_string("to").ok()??;
    DataType::from_name(&name.to_ascii_lowercase()).filter(|d| !matches!(d, DataType::Unknown(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f32s(t: &Tensor) -> Vec<f32> {
        t.to_f32_vec().unwrap()
    }

    #[test]
    fn float_to_int_truncates_toward_zero() {
        let t = Tensor::from_f32(vec![4], &[1.9, -1.9, 0.5, -0.5]);
        let c = cast_tensor(&t, DataType::Int64).unwrap();
        assert_eq!(c.to_i64_vec().unwrap(), vec![1, -1, 0, 0]);
        let u = cast_tensor(&Tensor::from_f32(vec![1], &[-0.7]), DataType::Uint8).unwrap();
        assert_eq!(u.to_i64_vec().unwrap(), vec![0]);
    }

    #[test]
    fn undefined_conversions_are_refused() {
        for bad in [f32::NAN, f32::INFINITY, 300.0, -1.0] {
            let t = Tensor::from_f32(vec![1], &[bad]);
            assert!(cast_tensor(&t, DataType::Uint8).is_none(), "{bad}");
        }
        // 1 + 2^-30 is not a float, so double -> half would depend on the rounding path.
        let d = Tensor::from_f64(vec![1], &[1.0 + 2f64.powi(-30)]);
        assert!(cast_tensor(&d, DataType::Float16).is_none());
        assert!(cast_tensor(&d, DataType::Float).is_some());
        let big = Tensor::from_f64(vec![1], &[1e300]);
        assert!(cast_tensor(&big, DataType::Float).is_none());
    }

    #[test]
    fn to_bool_is_nonzero() {
        let t = Tensor::from_f32(vec![4], &[0.0, -0.0, 0.1, f32::NAN]);
        let c = cast_tensor(&t, DataType::Bool).unwrap();
        assert_eq!(c.to_i64_vec().unwrap(), vec![0, 0, 1, 1]);
        let b = cast_tensor(&c, DataType::Float).unwrap();
        assert_eq!(f32s(&b), vec![0.0, 0.0, 1.0, 1.0]);
    }

    #[test]
    fn int_to_int_wraps_and_u64_is_exact() {
        let t = Tensor::from_i64(vec![3], &[300, -1, 1 << 40]);
        let c = cast_tensor(&t, DataType::Uint8).unwrap();
        assert_eq!(c.to_i64_vec().unwrap(), vec![44, 255, 0]);
        let u = cast_tensor(&t, DataType::Uint64).unwrap();
        let back = cast_tensor(&u, DataType::Double).unwrap();
        assert_eq!(back.to_f64_vec().unwrap()[1], u64::MAX as f64);
    }

    #[test]
    fn float_narrowing_rounds_to_nearest() {
        let t = Tensor::from_f64(vec![1], &[0.1]);
        let c = cast_tensor(&t, DataType::Float).unwrap();
        assert_eq!(f32s(&c), vec![0.1f32]);
        let h = cast_tensor(&Tensor::from_f32(vec![1], &[0.1]), DataType::Float16).unwrap();
        assert_eq!(f32s(&h), vec![half::f16::from_f32(0.1).to_f32()]);
        let i = cast_tensor(
            &Tensor::from_i64(vec![1], &[(1 << 24) + 1]),
            DataType::Float16,
        );
        assert!(i.is_none());
    }
}
