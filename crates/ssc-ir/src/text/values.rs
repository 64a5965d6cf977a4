//! Tensor payloads in the text form: element literals, generators and the digest of big tensors,
//! shared by the printer and the parser so that what one writes the other reads back exactly.

use half::{bf16, f16};

use crate::{DataType, Tensor, TensorData};

/// A number (or bool) as written in the text. Float types parse `text` themselves so that a
/// shortest round-trip literal lands on the same bits.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Lit {
    pub text: String,
    pub kind: LitKind,
}

#[derive(Clone, Debug, PartialEq)]
pub(super) enum LitKind {
    Int(i128),
    /// Has a fraction, an exponent, or is `inf`.
    Float,
    /// `NaN` (the canonical quiet NaN of the element type) or `nan(0xBITS)`.
    Nan(Option<u64>),
    Bool(bool),
}

impl Lit {
    pub fn int(v: i128) -> Lit {
        Lit {
            text: v.to_string(),
            kind: LitKind::Int(v),
        }
    }

    /// The value as f64, for generator arguments; NaN literals and bools are refused.
    pub fn to_f64(&self) -> Result<f64, String> {
        match self.kind {
            LitKind::Int(_) | LitKind::Float => self
                .text
                .parse::<f64>()
                .map_err(|_| format!("`{}` is not a number", self.text)),
            LitKind::Nan(_) | LitKind::Bool(_) => {
                Err(format!("`{}` is not a finite number", self.text))
            }
        }
    }

    /// The value as f32, for float attributes.
    pub fn to_f32(&self) -> Result<f32, String> {
        let mut out = Vec::with_capacity(4);
        encode_lit(DataType::Float, self, &mut out)?;
        Ok(f32::from_le_bytes([out[0], out[1], out[2], out[3]]))
    }
}

/// A payload generator.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Gen {
    Zeros,
    Ones,
    Fill(Lit),
    Range(Lit, Lit),
    Seeded {
        seed: u64,
        range: Option<(Lit, Lit)>,
    },
}

/// Bytes per element for the types the text writes as numbers; `None` for the rest (strings,
/// sub-byte, float8, complex, unknown), which use `hex(...)`.
pub(super) fn elem_width(dtype: DataType) -> Option<usize> {
    use DataType::*;
    Some(match dtype {
        Bool | Int8 | Uint8 => 1,
        Int16 | Uint16 | Float16 | Bfloat16 => 2,
        Int32 | Uint32 | Float => 4,
        Int64 | Uint64 | Double => 8,
        _ => return None,
    })
}

/// The inclusive range of an integer type (bools store 0..=255).
fn int_range(dtype: DataType) -> Option<(i128, i128)> {
    use DataType::*;
    Some(match dtype {
        Bool | Uint8 => (0, u8::MAX as i128),
        Int8 => (i8::MIN as i128, i8::MAX as i128),
        Uint16 => (0, u16::MAX as i128),
        Int16 => (i16::MIN as i128, i16::MAX as i128),
        Uint32 => (0, u32::MAX as i128),
        Int32 => (i32::MIN as i128, i32::MAX as i128),
        Uint64 => (0, u64::MAX as i128),
        Int64 => (i64::MIN as i128, i64::MAX as i128),
        _ => return None,
    })
}

/// The bits of the canonical quiet NaN, which prints as `NaN`.
fn canonical_nan(dtype: DataType) -> u64 {
    match dtype {
        DataType::Float16 => 0x7e00,
        DataType::Bfloat16 => 0x7fc0,
        DataType::Double => 0x7ff8_0000_0000_0000,
        _ => 0x7fc0_0000,
    }
}

fn le_uint(b: &[u8]) -> u64 {
    b.iter().rev().fold(0u64, |acc, &x| (acc << 8) | x as u64)
}

/// Appends one element (`b` holds exactly [`elem_width`] bytes) as a literal.
pub(super) fn print_elem(dtype: DataType, b: &[u8], out: &mut String) {
    use std::fmt::Write;
    let bits = le_uint(b);
    let (is_nan, widened) = match dtype {
        DataType::Float => {
            let v = f32::from_bits(bits as u32);
            (v.is_nan(), format!("{v:?}"))
        }
        DataType::Double => {
            let v = f64::from_bits(bits);
            (v.is_nan(), format!("{v:?}"))
        }
        DataType::Float16 => {
            let v = f16::from_bits(bits as u16);
            (v.is_nan(), format!("{:?}", v.to_f32()))
        }
        DataType::Bfloat16 => {
            let v = bf16::from_bits(bits as u16);
            (v.is_nan(), format!("{:?}", v.to_f32()))
        }
        DataType::Bool if bits <= 1 => {
            out.push_str(if bits == 1 { "true" } else { "false" });
            return;
        }
        DataType::Int8 => (false, (bits as u8 as i8).to_string()),
        DataType::Int16 => (false, (bits as u16 as i16).to_string()),
        DataType::Int32 => (false, (bits as u32 as i32).to_string()),
        DataType::Int64 => (false, (bits as i64).to_string()),
        _ => (false, bits.to_string()),
    };
    if is_nan {
        if bits == canonical_nan(dtype) {
            out.push_str("NaN");
        } else {
            let digits = b.len() * 2;
            let _ = write!(out, "nan(0x{bits:0digits$x})");
        }
    } else {
        out.push_str(&widened);
    }
}

/// Appends the storage bytes of one element written as `lit`.
pub(super) fn encode_lit(dtype: DataType, lit: &Lit, out: &mut Vec<u8>) -> Result<(), String> {
    let width = elem_width(dtype).ok_or_else(|| no_numeric_form(dtype))?;
    if let LitKind::Nan(bits) = lit.kind {
        if !dtype.is_float() {
            return Err(format!("`{}` is not a valid {dtype} value", lit.text));
        }
        let bits = bits.unwrap_or_else(|| canonical_nan(dtype));
        if width < 8 && bits >> (width * 8) != 0 {
            return Err(format!("`{}` has more bits than a {dtype}", lit.text));
        }
        let is_nan = match dtype {
            DataType::Float => f32::from_bits(bits as u32).is_nan(),
            DataType::Double => f64::from_bits(bits).is_nan(),
            DataType::Float16 => f16::from_bits(bits as u16).is_nan(),
            _ => bf16::from_bits(bits as u16).is_nan(),
        };
        if !is_nan {
            return Err(format!("`{}` is not a NaN {dtype}", lit.text));
        }
        out.extend_from_slice(&bits.to_le_bytes()[..width]);
        return Ok(());
    }
    if dtype.is_float() {
        if let LitKind::Bool(_) = lit.kind {
            return Err(format!("`{}` is not a valid {dtype} value", lit.text));
        }
        let bad = |_| format!("`{}` is not a valid {dtype} value", lit.text);
        match dtype {
            DataType::Float => {
                let v: f32 = lit.text.parse().map_err(bad)?;
                out.extend_from_slice(&v.to_le_bytes());
            }
            DataType::Double => {
                let v: f64 = lit.text.parse().map_err(bad)?;
                out.extend_from_slice(&v.to_le_bytes());
            }
            _ => {
                // Printed f16/bf16 values are exact f32s, so reading through f32 is exact.
                let v: f32 = lit.text.parse().map_err(bad)?;
                encode_f64(dtype, v as f64, out);
            }
        }
        return Ok(());
    }
    let v = match lit.kind {
        LitKind::Int(v) => v,
        LitKind::Bool(b) if dtype == DataType::Bool => b as i128,
        _ => return Err(format!("`{}` is not a valid {dtype} value", lit.text)),
    };
    encode_int(dtype, v, out)
}

/// Appends an integer element, refusing values outside the type's range.
fn encode_int(dtype: DataType, v: i128, out: &mut Vec<u8>) -> Result<(), String> {
    let (lo, hi) = int_range(dtype).ok_or_else(|| format!("{dtype} takes no integer values"))?;
    if v < lo || v > hi {
        return Err(format!("{v} is out of range for {dtype}"));
    }
    let width = elem_width(dtype).expect("integer types have a width");
    out.extend_from_slice(&(v as u128).to_le_bytes()[..width]);
    Ok(())
}

/// Appends a float element, rounding `v` to the element type.
fn encode_f64(dtype: DataType, v: f64, out: &mut Vec<u8>) {
    match dtype {
        DataType::Float => out.extend_from_slice(&(v as f32).to_le_bytes()),
        DataType::Double => out.extend_from_slice(&v.to_le_bytes()),
        DataType::Float16 => out.extend_from_slice(&f16::from_f64(v).to_le_bytes()),
        DataType::Bfloat16 => out.extend_from_slice(&bf16::from_f64(v).to_le_bytes()),
        _ => unreachable!("encode_f64 is only called for float types"),
    }
}

/// One element (of [`elem_width`] bytes) as f64.
fn decode_f64(dtype: DataType, b: &[u8]) -> f64 {
    let bits = le_uint(b);
    match dtype {
        DataType::Float => f32::from_bits(bits as u32) as f64,
        DataType::Double => f64::from_bits(bits),
        DataType::Float16 => f16::from_bits(bits as u16).to_f64(),
        DataType::Bfloat16 => bf16::from_bits(bits as u16).to_f64(),
        _ => decode_int(dtype, b) as f64,
    }
}

/// One integer (or bool) element, sign-extended for signed types.
fn decode_int(dtype: DataType, b: &[u8]) -> i128 {
    let bits = le_uint(b);
    match dtype {
        DataType::Int8 => bits as u8 as i8 as i128,
        DataType::Int16 => bits as u16 as i16 as i128,
        DataType::Int32 => bits as u32 as i32 as i128,
        DataType::Int64 => bits as i64 as i128,
        _ => bits as i128,
    }
}

fn no_numeric_form(dtype: DataType) -> String {
    format!("{dtype} elements have no numeric form; write the storage bytes as hex(...)")
}

/// The element of `range(start, step)` at `i`, for float types. Shared by generation and by the
/// printer's detection so that both agree to the bit.
fn range_f64(start: f64, step: f64, i: usize) -> f64 {
    start + step * i as f64
}

/// SplitMix64 (Steele, Lea and Flood 2014), the documented generator behind `seeded`.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1) on a 2^-24 grid, so `2u - 1` is exact in f32.
    fn unit(&mut self) -> f64 {
        (self.next() >> 40) as f64 / (1u64 << 24) as f64
    }
}

/// The storage bytes of `numel` elements made by `gen`.
pub(super) fn generate(dtype: DataType, numel: usize, gen: &Gen) -> Result<Vec<u8>, String> {
    let width = elem_width(dtype).ok_or_else(|| no_numeric_form(dtype))?;
    let mut out = Vec::with_capacity(numel * width);
    let repeat = |lit: &Lit, mut out: Vec<u8>| -> Result<Vec<u8>, String> {
        encode_lit(dtype, lit, &mut out)?;
        let one = out.clone();
        for _ in 1..numel {
            out.extend_from_slice(&one);
        }
        out.truncate(numel * width);
        Ok(out)
    };
    match gen {
        Gen::Zeros => repeat(&Lit::int(0), out),
        Gen::Ones => repeat(&Lit::int(1), out),
        Gen::Fill(lit) => repeat(lit, out),
        Gen::Range(start, step) => {
            if dtype == DataType::Bool {
                return Err("range is not defined for bool".into());
            }
            if dtype.is_float() {
                let (a, d) = (start.to_f64()?, step.to_f64()?);
                for i in 0..numel {
                    encode_f64(dtype, range_f64(a, d, i), &mut out);
                }
            } else {
                let (LitKind::Int(a), LitKind::Int(d)) = (&start.kind, &step.kind) else {
                    return Err(format!("range over {dtype} needs integer start and step"));
                };
                for i in 0..numel {
                    let v = (i as i128)
                        .checked_mul(*d)
                        .and_then(|x| x.checked_add(*a))
                        .ok_or_else(|| format!("range element {i} overflows"))?;
                    encode_int(dtype, v, &mut out)
                        .map_err(|e| format!("range element {i}: {e}"))?;
                }
            }
            Ok(out)
        }
        Gen::Seeded { seed, range } => {
            let mut rng = SplitMix64(*seed);
            if dtype == DataType::Bool {
                if range.is_some() {
                    return Err("seeded over bool takes no range".into());
                }
                out.extend((0..numel).map(|_| (rng.next() >> 63) as u8));
            } else if dtype.is_float() {
                let (lo, hi) = match range {
                    Some((lo, hi)) => (lo.to_f64()?, hi.to_f64()?),
                    None => (-1.0, 1.0),
                };
                for _ in 0..numel {
                    let u = rng.unit();
                    let v = if range.is_some() {
                        lo + (hi - lo) * u
                    } else {
                        2.0 * u - 1.0
                    };
                    encode_f64(dtype, v, &mut out);
                }
            } else {
                let Some((lo, hi)) = range else {
                    return Err(format!(
                        "seeded over {dtype} needs a range: seeded(seed, lo, hi)"
                    ));
                };
                let (LitKind::Int(lo), LitKind::Int(hi)) = (&lo.kind, &hi.kind) else {
                    return Err(format!("seeded over {dtype} needs integer bounds"));
                };
                let (tlo, thi) = int_range(dtype).expect("integer type");
                if lo >= hi || *lo < tlo || hi - 1 > thi {
                    return Err(format!(
                        "seeded bounds [{lo}, {hi}) are empty or outside {dtype}"
                    ));
                }
                let span = (hi - lo) as u128;
                for _ in 0..numel {
                    let v = lo + ((rng.next() as u128 * span) >> 64) as i128;
                    encode_int(dtype, v, &mut out)?;
                }
            }
            Ok(out)
        }
    }
}

/// A generator that reproduces `raw` exactly, if a simple one does: every element equal, or an
/// arithmetic progression.
pub(super) fn detect_generator(dtype: DataType, raw: &[u8]) -> Option<String> {
    let w = elem_width(dtype)?;
    let mut elems = raw.chunks_exact(w);
    let first = elems.next()?;
    if elems.clone().all(|e| e == first) {
        let zero = generate(dtype, 1, &Gen::Zeros).ok()?;
        let one = generate(dtype, 1, &Gen::Ones).ok()?;
        return Some(if first == zero.as_slice() {
            "zeros".into()
        } else if first == one.as_slice() {
            "ones".into()
        } else {
            let mut s = "fill(".to_string();
            print_elem(dtype, first, &mut s);
            s.push(')');
            s
        });
    }
    if dtype == DataType::Bool {
        return None;
    }
    let second = raw.get(w..2 * w)?;
    if dtype.is_float() {
        let start = decode_f64(dtype, first);
        let step = decode_f64(dtype, second) - start;
        if !start.is_finite() || !step.is_finite() {
            return None;
        }
        let mut buf = Vec::with_capacity(w);
        let matches = raw.chunks_exact(w).enumerate().all(|(i, e)| {
            buf.clear();
            encode_f64(dtype, range_f64(start, step, i), &mut buf);
            buf == e
        });
        matches.then(|| format!("range({start:?}, {step:?})"))
    } else {
        let start = decode_int(dtype, first);
        let step = decode_int(dtype, second) - start;
        let matches = raw
            .chunks_exact(w)
            .enumerate()
            .all(|(i, e)| decode_int(dtype, e) == start + step * i as i128);
        matches.then(|| format!("range({start}, {step})"))
    }
}

/// FNV-1a, 64-bit.
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// The stable digest that stands in for a tensor too big to print; see the module docs.
pub(super) fn digest(t: &Tensor) -> String {
    let mut h = Fnv::new();
    match &t.data {
        TensorData::Opaque(_) => "<opaque>".into(),
        TensorData::Strings(ss) => {
            for s in ss {
                h.write(&(s.len() as u64).to_le_bytes());
                h.write(s);
            }
            format!("<fnv=0x{:016x}>", h.0)
        }
        TensorData::Raw(raw) => {
            h.write(raw);
            match elem_width(t.dtype) {
                Some(w) => {
                    let (mut nnz, mut sum) = (0usize, 0f64);
                    for e in raw.chunks_exact(w) {
                        let v = decode_f64(t.dtype, e);
                        nnz += (v != 0.0) as usize;
                        sum += v;
                    }
                    format!("<nnz={nnz} sum={sum:.6e} fnv=0x{:016x}>", h.0)
                }
                None => format!("<fnv=0x{:016x}>", h.0),
            }
        }
    }
}
