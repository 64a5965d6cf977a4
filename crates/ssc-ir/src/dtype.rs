//! ONNX element types, with their numeric codes and storage widths, independent of protobuf.

use std::fmt;

/// An ONNX tensor element type. Codes follow `TensorProto.DataType`; codes this build does not
/// know survive as [`DataType::Unknown`] so that a model from a newer ONNX still round-trips.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DataType {
    Float,
    Uint8,
    Int8,
    Uint16,
    Int16,
    Int32,
    Int64,
    String,
    Bool,
    Float16,
    Double,
    Uint32,
    Uint64,
    Complex64,
    Complex128,
    Bfloat16,
    Float8E4M3FN,
    Float8E4M3FNUZ,
    Float8E5M2,
    Float8E5M2FNUZ,
    Uint4,
    Int4,
    Float4E2M1,
    Float8E8M0,
    Uint2,
    Int2,
    Float6E2M3,
    Float6E3M2,
    /// A code this build does not model (including 0, `UNDEFINED`).
    Unknown(i32),
}

impl DataType {
    /// Maps an ONNX `TensorProto.DataType` code.
    pub fn from_code(code: i32) -> DataType {
        use DataType::*;
        match code {
            1 => Float,
            2 => Uint8,
            3 => Int8,
            4 => Uint16,
            5 => Int16,
            6 => Int32,
            7 => Int64,
            8 => String,
            9 => Bool,
            10 => Float16,
            11 => Double,
            12 => Uint32,
            13 => Uint64,
            14 => Complex64,
            15 => Complex128,
            16 => Bfloat16,
            17 => Float8E4M3FN,
            18 => Float8E4M3FNUZ,
            19 => Float8E5M2,
            20 => Float8E5M2FNUZ,
            21 => Uint4,
            22 => Int4,
            23 => Float4E2M1,
            24 => Float8E8M0,
            25 => Uint2,
            26 => Int2,
            27 => Float6E2M3,
            28 => Float6E3M2,
            other => Unknown(other),
        }
    }

    /// The ONNX `TensorProto.DataType` code.
    pub fn code(self) -> i32 {
        use DataType::*;
        match self {
            Float => 1,
            Uint8 => 2,
            Int8 => 3,
            Uint16 => 4,
            Int16 => 5,
            Int32 => 6,
            Int64 => 7,
            String => 8,
            Bool => 9,
            Float16 => 10,
            Double => 11,
            Uint32 => 12,
            Uint64 => 13,
            Complex64 => 14,
            Complex128 => 15,
            Bfloat16 => 16,
            Float8E4M3FN => 17,
            Float8E4M3FNUZ => 18,
            Float8E5M2 => 19,
            Float8E5M2FNUZ => 20,
            Uint4 => 21,
            Int4 => 22,
            Float4E2M1 => 23,
            Float8E8M0 => 24,
            Uint2 => 25,
            Int2 => 26,
            Float6E2M3 => 27,
            Float6E3M2 => 28,
            Unknown(c) => c,
        }
    }

    /// Bits one element occupies in packed little-endian `raw_data`; `None` for strings and
    /// unknown types, whose storage this build cannot size.
    pub fn bit_width(self) -> Option<usize> {
        use DataType::*;
        Some(match self {
            Uint2 | Int2 => 2,
            Uint4 | Int4 | Float4E2M1 => 4,
            Float6E2M3 | Float6E3M2 => 6,
            Uint8 | Int8 | Bool | Float8E4M3FN | Float8E4M3FNUZ | Float8E5M2 | Float8E5M2FNUZ
            | Float8E8M0 => 8,
            Uint16 | Int16 | Float16 | Bfloat16 => 16,
            Float | Int32 | Uint32 => 32,
            Int64 | Uint64 | Double | Complex64 => 64,
            Complex128 => 128,
            String | Unknown(_) => return None,
        })
    }

    /// Bytes needed for `numel` elements in packed `raw_data`, or `None` on overflow or when the
    /// width is unknown.
    pub fn storage_bytes(self, numel: usize) -> Option<usize> {
        let bits = numel.checked_mul(self.bit_width()?)?;
        Some(bits.div_ceil(8))
    }

    /// True for the floating-point types the executor computes in (f16, bf16, f32, f64).
    pub fn is_float(self) -> bool {
        matches!(
            self,
            DataType::Float | DataType::Double | DataType::Float16 | DataType::Bfloat16
        )
    }

    /// True for the integer types of 8 bits or more.
    pub fn is_int(self) -> bool {
        use DataType::*;
        matches!(
            self,
            Uint8 | Int8 | Uint16 | Int16 | Int32 | Int64 | Uint32 | Uint64
        )
    }

    /// The lower-case ONNX name (`float`, `int64`, ...), as used in the text IR.
    pub fn name(self) -> std::borrow::Cow<'static, str> {
        use DataType::*;
        let s = match self {
            Float => "float",
            Uint8 => "uint8",
            Int8 => "int8",
            Uint16 => "uint16",
            Int16 => "int16",
            Int32 => "int32",
            Int64 => "int64",
            String => "string",
            Bool => "bool",
            Float16 => "float16",
            Double => "double",
            Uint32 => "uint32",
            Uint64 => "uint64",
            Complex64 => "complex64",
            Complex128 => "complex128",
            Bfloat16 => "bfloat16",
            Float8E4M3FN => "float8e4m3fn",
            Float8E4M3FNUZ => "float8e4m3fnuz",
            Float8E5M2 => "float8e5m2",
            Float8E5M2FNUZ => "float8e5m2fnuz",
            Uint4 => "uint4",
            Int4 => "int4",
            Float4E2M1 => "float4e2m1",
            Float8E8M0 => "float8e8m0",
            Uint2 => "uint2",
            Int2 => "int2",
            Float6E2M3 => "float6e2m3",
            Float6E3M2 => "float6e3m2",
            Unknown(c) => return format!("dtype{c}").into(),
        };
        s.into()
    }

    /// Parses a name produced by [`DataType::name`].
    pub fn from_name(name: &str) -> Option<DataType> {
        if let Some(code) = name.strip_prefix("dtype") {
            return code.parse().ok().map(DataType::Unknown);
        }
        (1..=28).map(DataType::from_code).find(|d| d.name() == name)
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names_round_trip() {
        for code in 0..40 {
            let d = DataType::from_code(code);
            assert_eq!(d.code(), code);
            assert_eq!(DataType::from_name(&d.name()), Some(d));
        }
    }

    #[test]
    fn storage_sizes() {
        assert_eq!(DataType::Float.storage_bytes(3), Some(12));
        assert_eq!(DataType::Int4.storage_bytes(3), Some(2));
        assert_eq!(DataType::Uint2.storage_bytes(5), Some(2));
        assert_eq!(DataType::String.storage_bytes(1), None);
        assert_eq!(DataType::Double.storage_bytes(usize::MAX), None);
    }
}
