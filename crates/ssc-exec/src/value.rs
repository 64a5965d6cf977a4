//! Runtime values: typed arrays decoded once from `ssc_ir::Tensor` bytes, sequences of them,
//! and optionals.
//!
//! Ops never touch raw bytes: an [`Array`] holds a `Vec` of the element type, and the [`Elem`]
//! trait plus the [`dispatch!`] macro let one generic function serve every element type.

use bytes_le::{decode, encode};
use half::{bf16, f16};
use ssc_ir::{DataType, Tensor};

/// The elements of an array, one variant per supported element type.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Data {
    F32(Vec<f32>),
    F64(Vec<f64>),
    F16(Vec<f16>),
    BF16(Vec<bf16>),
    I8(Vec<i8>),
    I16(Vec<i16>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    U8(Vec<u8>),
    U16(Vec<u16>),
    U32(Vec<u32>),
    U64(Vec<u64>),
    Bool(Vec<bool>),
}

/// A dense row-major array.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Array {
    pub shape: Vec<usize>,
    pub data: Data,
}

/// A runtime value: what flows along a graph edge.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Val {
    Tensor(Array),
    /// An ONNX sequence: an element type (known even when empty) and its tensors.
    Seq(DataType, Vec<Array>),
    /// An ONNX optional: a tensor or sequence, or none.
    Opt(Option<Box<Val>>),
}

impl Val {
    /// The kind of value, for messages.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Val::Tensor(_) => "a tensor",
            Val::Seq(..) => "a sequence",
            Val::Opt(_) => "an optional",
        }
    }

    /// Decodes an interface value.
    pub(crate) fn from_run_value(v: &ssc_ir::RunValue) -> std::result::Result<Val, String> {
        use ssc_ir::RunValue as R;
        Ok(match v {
            R::Tensor(t) => Val::Tensor(Array::from_tensor(t)?),
            R::Sequence { elem, items } => {
                if !is_supported_dtype(*elem) {
                    return Err(format!("sequences of {elem} are not supported"));
                }
                let items = items
                    .iter()
                    .map(|t| match Array::from_tensor(t)? {
                        a if a.dtype() == *elem => Ok(a),
                        a => Err(format!("a {} tensor in a sequence of {elem}", a.dtype())),
                    })
                    .collect::<std::result::Result<_, String>>()?;
                Val::Seq(*elem, items)
            }
            R::Optional(o) => Val::Opt(match o {
                None => None,
                Some(v) => Some(Box::new(Val::from_run_value(v)?)),
            }),
        })
    }

    /// Encodes a value for the interface.
    pub(crate) fn to_run_value(&self) -> ssc_ir::RunValue {
        use ssc_ir::RunValue as R;
        match self {
            Val::Tensor(a) => R::Tensor(a.to_tensor()),
            Val::Seq(elem, items) => R::Sequence {
                elem: *elem,
                items: items.iter().map(Array::to_tensor).collect(),
            },
            Val::Opt(o) => R::Optional(o.as_ref().map(|v| Box::new(v.to_run_value()))),
        }
    }
}

/// An element type the executor computes with.
///
/// Float types compute through `f64` (exact for f32/f16/bf16 inputs, and a single correctly
/// rounded step back, so `+ - * /` give the same bits as native f32 arithmetic); integer types
/// compute through `i128`, which holds every 8-64 bit integer exactly.
pub(crate) trait Elem:
    Copy + Default + PartialEq + PartialOrd + std::fmt::Debug + Send + Sync + 'static
{
    const IS_FLOAT: bool;
    fn to_f64(self) -> f64;
    /// ONNX Cast semantics from a float: integers truncate toward zero (saturating; NaN is 0),
    /// bool is `v != 0`.
    fn from_f64(v: f64) -> Self;
    /// Exact for integers and bool; floats truncate toward zero.
    fn to_i128(self) -> i128;
    /// Integers wrap (two's complement, as C casts do); floats round to nearest.
    fn from_i128(v: i128) -> Self;
    fn slice(d: &Data) -> Option<&[Self]>;
    fn wrap(v: Vec<Self>) -> Data;
}

macro_rules! int_elem {
    ($t:ty, $var:ident) => {
        impl Elem for $t {
            const IS_FLOAT: bool = false;
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            fn to_i128(self) -> i128 {
                self as i128
            }
            fn from_i128(v: i128) -> Self {
                v as $t
            }
            fn slice(d: &Data) -> Option<&[Self]> {
                match d {
                    Data::$var(v) => Some(v),
                    _ => None,
                }
            }
            fn wrap(v: Vec<Self>) -> Data {
                Data::$var(v)
            }
        }
    };
}

int_elem!(i8, I8);
int_elem!(i16, I16);
int_elem!(i32, I32);
int_elem!(i64, I64);
int_elem!(u8, U8);
int_elem!(u16, U16);
int_elem!(u32, U32);
int_elem!(u64, U64);

macro_rules! float_elem {
    ($t:ty, $var:ident, $to:expr, $from:expr, $from_i:expr) => {
        impl Elem for $t {
            const IS_FLOAT: bool = true;
            fn to_f64(self) -> f64 {
                $to(self)
            }
            fn from_f64(v: f64) -> Self {
                $from(v)
            }
            fn to_i128(self) -> i128 {
                $to(self) as i128
            }
            fn from_i128(v: i128) -> Self {
                $from_i(v)
            }
            fn slice(d: &Data) -> Option<&[Self]> {
                match d {
                    Data::$var(v) => Some(v),
                    _ => None,
                }
            }
            fn wrap(v: Vec<Self>) -> Data {
                Data::$var(v)
            }
        }
    };
}

float_elem!(f32, F32, |x: f32| x as f64, |v: f64| v as f32, |v: i128| v
    as f32);
float_elem!(f64, F64, |x: f64| x, |v: f64| v, |v: i128| v as f64);
float_elem!(f16, F16, |x: f16| x.to_f64(), f16::from_f64, |v: i128| {
    f16::from_f32(v as f32)
});
float_elem!(
    bf16,
    BF16,
    |x: bf16| x.to_f64(),
    bf16::from_f64,
    |v: i128| bf16::from_f32(v as f32)
);

impl Elem for bool {
    const IS_FLOAT: bool = false;
    fn to_f64(self) -> f64 {
        self as u8 as f64
    }
    fn from_f64(v: f64) -> Self {
        v != 0.0
    }
    fn to_i128(self) -> i128 {
        self as i128
    }
    fn from_i128(v: i128) -> Self {
        v != 0
    }
    fn slice(d: &Data) -> Option<&[Self]> {
        match d {
            Data::Bool(v) => Some(v),
            _ => None,
        }
    }
    fn wrap(v: Vec<Self>) -> Data {
        Data::Bool(v)
    }
}

/// Runs `$body` with `$T` bound to the Rust type of element type `$dt`; `$other` handles types
/// the executor does not compute with. Variants: `all` (every type), `num` (no bool), `float`,
/// `int` (integers only).
macro_rules! dispatch {
    (@arm $dt:expr, $T:ident, $body:expr, $other:expr; $($d:ident => $t:ty),*) => {
        match $dt {
            $(ssc_ir::DataType::$d => {
                #[allow(dead_code, reason = "not every body names the type")]
                type $T = $t;
                $body
            })*
            _ => $other,
        }
    };
    (all $dt:expr, $T:ident => $body:expr, else $other:expr) => {
        dispatch!(@arm $dt, $T, $body, $other;
            Float => f32, Double => f64, Float16 => half::f16, Bfloat16 => half::bf16,
            Int8 => i8, Int16 => i16, Int32 => i32, Int64 => i64,
            Uint8 => u8, Uint16 => u16, Uint32 => u32, Uint64 => u64, Bool => bool)
    };
    (num $dt:expr, $T:ident => $body:expr, else $other:expr) => {
        dispatch!(@arm $dt, $T, $body, $other;
            Float => f32, Double => f64, Float16 => half::f16, Bfloat16 => half::bf16,
            Int8 => i8, Int16 => i16, Int32 => i32, Int64 => i64,
            Uint8 => u8, Uint16 => u16, Uint32 => u32, Uint64 => u64)
    };
    (float $dt:expr, $T:ident => $body:expr, else $other:expr) => {
        dispatch!(@arm $dt, $T, $body, $other;
            Float => f32, Double => f64, Float16 => half::f16, Bfloat16 => half::bf16)
    };
    (int $dt:expr, $T:ident => $body:expr, else $other:expr) => {
        dispatch!(@arm $dt, $T, $body, $other;
            Int8 => i8, Int16 => i16, Int32 => i32, Int64 => i64,
            Uint8 => u8, Uint16 => u16, Uint32 => u32, Uint64 => u64)
    };
}
pub(crate) use dispatch;

/// True for the element types [`Data`] can hold.
pub(crate) fn is_supported_dtype(dt: DataType) -> bool {
    dispatch!(all dt, T => true, else false)
}

impl Data {
    pub fn dtype(&self) -> DataType {
        match self {
            Data::F32(_) => DataType::Float,
            Data::F64(_) => DataType::Double,
            Data::F16(_) => DataType::Float16,
            Data::BF16(_) => DataType::Bfloat16,
            Data::I8(_) => DataType::Int8,
            Data::I16(_) => DataType::Int16,
            Data::I32(_) => DataType::Int32,
            Data::I64(_) => DataType::Int64,
            Data::U8(_) => DataType::Uint8,
            Data::U16(_) => DataType::Uint16,
            Data::U32(_) => DataType::Uint32,
            Data::U64(_) => DataType::Uint64,
            Data::Bool(_) => DataType::Bool,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Data::F32(v) => v.len(),
            Data::F64(v) => v.len(),
            Data::F16(v) => v.len(),
            Data::BF16(v) => v.len(),
            Data::I8(v) => v.len(),
            Data::I16(v) => v.len(),
            Data::I32(v) => v.len(),
            Data::I64(v) => v.len(),
            Data::U8(v) => v.len(),
            Data::U16(v) => v.len(),
            Data::U32(v) => v.len(),
            Data::U64(v) => v.len(),
            Data::Bool(v) => v.len(),
        }
    }
}

impl Array {
    pub fn new<T: Elem>(shape: Vec<usize>, v: Vec<T>) -> Array {
        debug_assert_eq!(shape.iter().product::<usize>(), v.len());
        Array {
            shape,
            data: T::wrap(v),
        }
    }

    pub fn scalar<T: Elem>(v: T) -> Array {
        Array::new(vec![], vec![v])
    }

    pub fn dtype(&self) -> DataType {
        self.data.dtype()
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// The elements as `T`, or `None` when the array holds another type.
    pub fn slice<T: Elem>(&self) -> Option<&[T]> {
        T::slice(&self.data)
    }

    /// Every element widened to f64 (floats exactly; integers beyond 2^53 round).
    pub fn to_f64_vec(&self) -> Vec<f64> {
        dispatch!(all self.dtype(), T => {
            self.slice::<T>().expect("dtype matches").iter().map(|x| x.to_f64()).collect()
        }, else unreachable!("Data holds only supported types"))
    }

    /// Every element as i64, for integer and bool arrays; `None` for floats.
    pub fn to_i64_vec(&self) -> Option<Vec<i64>> {
        dispatch!(int self.dtype(), T => {
            Some(self.slice::<T>().expect("dtype matches").iter().map(|x| x.to_i128() as i64).collect())
        }, else match &self.data {
            Data::Bool(v) => Some(v.iter().map(|&b| b as i64).collect()),
            _ => None,
        })
    }

    /// Converts every element to `to` with ONNX Cast semantics (see [`Elem::from_f64`] and
    /// [`Elem::from_i128`]).
    pub fn cast(&self, to: DataType) -> Option<Array> {
        if self.dtype() == to {
            return Some(self.clone());
        }
        let from = self.dtype();
        let data = dispatch!(all from, S => {
            let src = self.slice::<S>().expect("dtype matches");
            dispatch!(all to, D => Some(D::wrap(cast_vec::<S, D>(src))), else None)
        }, else None)?;
        Some(Array {
            shape: self.shape.clone(),
            data,
        })
    }

    /// Decodes an IR tensor. Fails for strings, sub-byte, float8 and complex types.
    pub fn from_tensor(t: &Tensor) -> Result<Array, String> {
        let raw = t
            .raw()
            .ok_or_else(|| format!("{} tensors are not supported", t.dtype))?;
        let data = dispatch!(all t.dtype, T => T::wrap(decode::<T>(raw)),
            else return Err(format!("{} tensors are not supported", t.dtype)));
        if data.len() != t.numel() {
            return Err(format!(
                "tensor has {} elements but dims {:?}",
                data.len(),
                t.dims
            ));
        }
        Ok(Array {
            shape: t.dims.clone(),
            data,
        })
    }

    /// Encodes as an IR tensor (packed little-endian bytes).
    pub fn to_tensor(&self) -> Tensor {
        let raw = dispatch!(all self.dtype(), T => encode::<T>(self.slice::<T>().expect("dtype matches")),
            else unreachable!("Data holds only supported types"));
        Tensor::from_raw(self.dtype(), self.shape.clone(), raw.into())
            .expect("encoded length matches dims")
    }
}

impl From<Array> for Val {
    fn from(a: Array) -> Val {
        Val::Tensor(a)
    }
}

/// Index value meaning "use the fill value" in [`Array::take`].
pub(crate) const FILL: usize = usize::MAX;

impl Array {
    /// A new array of `shape` whose element `k` is `self[idx[k]]`, or `fill` (a one-element
    /// array of the same type; zero if absent) where `idx[k]` is [`FILL`]. Every data-movement
    /// op (Transpose, Slice, Gather, Expand, Tile, Pad...) reduces to computing `idx`.
    pub fn take(&self, shape: Vec<usize>, idx: &[usize], fill: Option<&Array>) -> Array {
        dispatch!(all self.dtype(), T => {
            let src = self.slice::<T>().expect("dtype matches");
            let f = fill.and_then(|a| a.slice::<T>()).and_then(|s| s.first().copied()).unwrap_or_default();
            Array::new(shape, idx.iter().map(|&i| if i == FILL { f } else { src[i] }).collect())
        }, else unreachable!("Data holds only supported types"))
    }

    /// The same elements under a new shape of equal element count.
    pub fn reshaped(&self, shape: Vec<usize>) -> Array {
        debug_assert_eq!(shape.iter().product::<usize>(), self.len());
        Array {
            shape,
            data: self.data.clone(),
        }
    }
}

fn cast_vec<S: Elem, D: Elem>(src: &[S]) -> Vec<D> {
    if S::IS_FLOAT {
        src.iter().map(|&x| D::from_f64(x.to_f64())).collect()
    } else {
        src.iter().map(|&x| D::from_i128(x.to_i128())).collect()
    }
}

/// Byte-level decoding and encoding, kept apart so the rest of the crate never sees bytes.
mod bytes_le {
    use super::Elem;
    use half::{bf16, f16};

    /// Element types with a fixed little-endian byte form.
    pub trait Le: Sized {
        const W: usize;
        fn read(b: &[u8]) -> Self;
        fn write(self, out: &mut Vec<u8>);
    }

    macro_rules! le {
        ($($t:ty),*) => {$(
            impl Le for $t {
                const W: usize = std::mem::size_of::<$t>();
                fn read(b: &[u8]) -> Self {
                    <$t>::from_le_bytes(b.try_into().expect("chunk has the width"))
                }
                fn write(self, out: &mut Vec<u8>) {
                    out.extend_from_slice(&self.to_le_bytes());
                }
            }
        )*};
    }
    le!(f32, f64, i8, i16, i32, i64, u8, u16, u32, u64);

    impl Le for f16 {
        const W: usize = 2;
        fn read(b: &[u8]) -> Self {
            f16::from_bits(u16::from_le_bytes([b[0], b[1]]))
        }
        fn write(self, out: &mut Vec<u8>) {
            out.extend_from_slice(&self.to_bits().to_le_bytes());
        }
    }
    impl Le for bf16 {
        const W: usize = 2;
        fn read(b: &[u8]) -> Self {
            bf16::from_bits(u16::from_le_bytes([b[0], b[1]]))
        }
        fn write(self, out: &mut Vec<u8>) {
            out.extend_from_slice(&self.to_bits().to_le_bytes());
        }
    }
    impl Le for bool {
        const W: usize = 1;
        fn read(b: &[u8]) -> Self {
            b[0] != 0
        }
        fn write(self, out: &mut Vec<u8>) {
            out.push(self as u8);
        }
    }

    /// Helper bound: every [`Elem`] is [`Le`]; stated once here so callers need one bound.
    pub trait ElemLe: Elem + Le {}
    impl<T: Elem + Le> ElemLe for T {}

    pub fn decode<T: ElemLe>(raw: &[u8]) -> Vec<T> {
        raw.chunks_exact(T::W).map(T::read).collect()
    }

    pub fn encode<T: ElemLe>(v: &[T]) -> Vec<u8> {
        let mut out = Vec::with_capacity(v.len() * T::W);
        for &x in v {
            x.write(&mut out);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensor_round_trip_and_cast() {
        let t = Tensor::from_f32(vec![3], &[1.5, -2.7, 300.0]);
        let a = Array::from_tensor(&t).unwrap();
        assert_eq!(a.to_tensor(), t);
        let i = a.cast(DataType::Int8).unwrap();
        // Truncation toward zero; 300 saturates (ONNX leaves out-of-range undefined).
        assert_eq!(i.slice::<i8>().unwrap(), &[1, -2, 127]);
        let b = a.cast(DataType::Bool).unwrap();
        assert_eq!(b.slice::<bool>().unwrap(), &[true, true, true]);
        let w = Array::new(vec![2], vec![300i32, -1])
            .cast(DataType::Uint8)
            .unwrap();
        assert_eq!(w.slice::<u8>().unwrap(), &[44, 255]);
    }
}
