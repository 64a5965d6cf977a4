//! TensorProto <-> IR tensor conversion: every storage form ONNX allows, normalised to raw bytes.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path};

use bytes::Bytes;
use onnx_proto::{Message, StringStringEntryProto, TensorProto};
use ssc_ir::{checked_numel, DataType, Tensor, TensorData};

/// `TensorProto.DataLocation.EXTERNAL`.
const EXTERNAL: i32 = onnx_proto::tensor_proto::DataLocation::External as i32;

/// Why a tensor could not be read; the caller adds the file and tensor name.
#[derive(Debug)]
pub(crate) enum TensorIssue {
    Invalid(String),
    External(String),
}

pub(crate) fn kv(entries: &[StringStringEntryProto]) -> Vec<(String, String)> {
    entries
        .iter()
        .map(|e| {
            (
                e.key.clone().unwrap_or_default(),
                e.value.clone().unwrap_or_default(),
            )
        })
        .collect()
}

pub(crate) fn kv_proto(entries: &[(String, String)]) -> Vec<StringStringEntryProto> {
    entries
        .iter()
        .map(|(k, v)| StringStringEntryProto {
            key: Some(k.clone()),
            value: Some(v.clone()),
        })
        .collect()
}

/// Validates ONNX dims (non-negative, product within `usize`).
pub(crate) fn dims_of(dims: &[i64]) -> Result<Vec<usize>, String> {
    let mut out = Vec::with_capacity(dims.len());
    for &d in dims {
        if d < 0 {
            return Err(format!("negative dimension {d} in dims {dims:?}"));
        }
        out.push(usize::try_from(d).map_err(|_| format!("dimension {d} is too large"))?);
    }
    if checked_numel(&out).is_none() {
        return Err(format!("dims {dims:?} overflow the element count"));
    }
    Ok(out)
}

/// Converts a TensorProto. `base_dir` resolves external data; `None` forbids it.
pub(crate) fn tensor_from_proto(
    tp: &TensorProto,
    base_dir: Option<&Path>,
) -> Result<Tensor, TensorIssue> {
    let dims = dims_of(&tp.dims).map_err(TensorIssue::Invalid)?;
    let numel = checked_numel(&dims).expect("checked by dims_of");
    let code = tp.data_type.unwrap_or(0);
    let dtype = DataType::from_code(code);
    let meta = kv(&tp.metadata_props);
    let wrap = |data: TensorData| Tensor {
        dtype,
        dims: dims.clone(),
        data,
        doc_string: tp.doc_string.clone(),
        metadata: meta.clone(),
    };
    let opaque = || {
        let mut keep = tp.clone();
        keep.name = None;
        Ok(wrap(TensorData::Opaque(Bytes::from(keep.encode_to_vec()))))
    };
    if tp.segment.is_some() || matches!(dtype, DataType::Unknown(_)) {
        return opaque();
    }
    if tp.data_location == Some(EXTERNAL) {
        let base = base_dir.ok_or_else(|| {
            TensorIssue::External("external data is not allowed here".to_string())
        })?;
        let raw = read_external(tp, base).map_err(TensorIssue::External)?;
        return Tensor::from_raw(dtype, dims.clone(), raw)
            .map(|t| Tensor {
                doc_string: tp.doc_string.clone(),
                metadata: meta.clone(),
                ..t
            })
            .map_err(|e| TensorIssue::Invalid(e.to_string()));
    }
    if dtype == DataType::String {
        if tp.string_data.len() != numel {
            return Err(TensorIssue::Invalid(format!(
                "string tensor with dims {dims:?} has {} strings",
                tp.string_data.len()
            )));
        }
        return Ok(wrap(TensorData::Strings(tp.string_data.clone())));
    }
    if let Some(raw) = &tp.raw_data {
        return Tensor::from_raw(dtype, dims.clone(), raw.clone())
            .map(|t| Tensor {
                doc_string: tp.doc_string.clone(),
                metadata: meta.clone(),
                ..t
            })
            .map_err(|e| TensorIssue::Invalid(e.to_string()));
    }
    let raw = match typed_to_raw(tp, dtype, numel)? {
        Some(raw) => raw,
        None => return opaque(),
    };
    Tensor::from_raw(dtype, dims.clone(), Bytes::from(raw))
        .map(|t| Tensor {
            doc_string: tp.doc_string.clone(),
            metadata: meta.clone(),
            ..t
        })
        .map_err(|e| TensorIssue::Invalid(e.to_string()))
}

/// Packs the typed repeated fields into `raw_data` layout. `Ok(None)` means the combination is
/// legal but not one this build repacks (6-bit floats), so the tensor is kept opaque.
///
/// The value count is checked against `numel` before anything is allocated, and the output is
/// sized from the values actually present: a tensor that declares 10^12 elements but carries no
/// data is an error, never a 4 TB allocation.
fn typed_to_raw(
    tp: &TensorProto,
    dtype: DataType,
    numel: usize,
) -> Result<Option<Vec<u8>>, TensorIssue> {
    use DataType::*;
    // `per` elements share one typed value (packed sub-byte types); `per_elem` values make one
    // element (complex types). `numel` is at most usize::MAX, so the products are checked.
    let check = |have: usize, per: usize, per_elem: usize, what: &str| {
        if numel.div_ceil(per).checked_mul(per_elem) == Some(have) {
            Ok(())
        } else {
            Err(TensorIssue::Invalid(format!(
                "{dtype} tensor with {numel} elements has {have} {what}"
            )))
        }
    };
    let count = |have: usize, per: usize| check(have, per, 1, "typed values");
    let mut out = Vec::new();
    match dtype {
        Float => {
            count(tp.float_data.len(), 1)?;
            out.reserve_exact(4 * tp.float_data.len());
            tp.float_data
                .iter()
                .for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
        }
        Complex64 => {
            // float_data holds 2 floats per complex element.
            check(tp.float_data.len(), 1, 2, "floats")?;
            out.reserve_exact(4 * tp.float_data.len());
            tp.float_data
                .iter()
                .for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
        }
        Double | Complex128 => {
            let per_elem = if dtype == Double { 1 } else { 2 };
            check(tp.double_data.len(), 1, per_elem, "doubles")?;
            out.reserve_exact(8 * tp.double_data.len());
            tp.double_data
                .iter()
                .for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
        }
        Int64 => {
            count(tp.int64_data.len(), 1)?;
            out.reserve_exact(8 * tp.int64_data.len());
            tp.int64_data
                .iter()
                .for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
        }
        Uint32 | Uint64 => {
            count(tp.uint64_data.len(), 1)?;
            out.reserve_exact(8 * tp.uint64_data.len());
            for v in &tp.uint64_data {
                if dtype == Uint32 {
                    out.extend_from_slice(&(*v as u32).to_le_bytes());
                } else {
                    out.extend_from_slice(&v.to_le_bytes());
                }
            }
        }
        Int32 => {
            count(tp.int32_data.len(), 1)?;
            out.reserve_exact(4 * tp.int32_data.len());
            tp.int32_data
                .iter()
                .for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
        }
        Int16 | Uint16 | Float16 | Bfloat16 => {
            count(tp.int32_data.len(), 1)?;
            out.reserve_exact(2 * tp.int32_data.len());
            tp.int32_data
                .iter()
                .for_each(|v| out.extend_from_slice(&(*v as u16).to_le_bytes()));
        }
        Int8 | Uint8 | Bool | Float8E4M3FN | Float8E4M3FNUZ | Float8E5M2 | Float8E5M2FNUZ
        | Float8E8M0 => {
            count(tp.int32_data.len(), 1)?;
            out.extend(tp.int32_data.iter().map(|v| *v as u8));
        }
        Int4 | Uint4 | Float4E2M1 => {
            // Each int32 holds two packed nibbles, i.e. one raw byte.
            count(tp.int32_data.len(), 2)?;
            out.extend(tp.int32_data.iter().map(|v| *v as u8));
        }
        Int2 | Uint2 => {
            count(tp.int32_data.len(), 4)?;
            out.extend(tp.int32_data.iter().map(|v| *v as u8));
        }
        Float6E2M3 | Float6E3M2 | String | Unknown(_) => return Ok(None),
    }
    Ok(Some(out))
}

fn read_external(tp: &TensorProto, base: &Path) -> Result<Bytes, String> {
    let mut location = None;
    let mut offset = 0u64;
    let mut length = None;
    for e in &tp.external_data {
        let v = e.value.as_deref().unwrap_or("");
        match e.key.as_deref().unwrap_or("") {
            "location" => location = Some(v.to_string()),
            "offset" => offset = v.parse().map_err(|_| format!("bad offset `{v}`"))?,
            "length" => length = Some(v.parse::<u64>().map_err(|_| format!("bad length `{v}`"))?),
            _ => {}
        }
    }
    let location = location.ok_or("no `location` key")?;
    let rel = Path::new(&location);
    // The spec makes locations relative to the model; refusing escapes keeps a model from
    // reading arbitrary files.
    if rel.is_absolute()
        || rel
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(format!(
            "location `{location}` must be a relative path inside the model's directory"
        ));
    }
    let full = base.join(rel);
    let mut f = File::open(&full).map_err(|e| format!("{}: {e}", full.display()))?;
    let file_len = f
        .metadata()
        .map_err(|e| format!("{}: {e}", full.display()))?
        .len();
    let length = length.unwrap_or(file_len.saturating_sub(offset));
    let end = offset
        .checked_add(length)
        .ok_or_else(|| "offset + length overflows".to_string())?;
    if end > file_len {
        return Err(format!(
            "{}: bytes {offset}..{end} requested but the file has {file_len}",
            full.display()
        ));
    }
    f.seek(SeekFrom::Start(offset))
        .map_err(|e| format!("{}: {e}", full.display()))?;
    let mut buf = vec![0u8; usize::try_from(length).map_err(|_| "length too large")?];
    f.read_exact(&mut buf)
        .map_err(|e| format!("{}: {e}", full.display()))?;
    Ok(Bytes::from(buf))
}

/// Converts an IR tensor to a TensorProto with its data inline.
pub(crate) fn tensor_to_proto(t: &Tensor, name: Option<&str>) -> TensorProto {
    if let TensorData::Opaque(enc) = &t.data {
        let mut tp = TensorProto::decode(enc.clone()).expect("opaque tensors are encoded by us");
        tp.name = name.map(str::to_string);
        return tp;
    }
    let mut tp = TensorProto {
        dims: t.dims.iter().map(|&d| d as i64).collect(),
        data_type: Some(t.dtype.code()),
        name: name.map(str::to_string),
        doc_string: t.doc_string.clone(),
        metadata_props: kv_proto(&t.metadata),
        ..TensorProto::default()
    };
    match &t.data {
        TensorData::Raw(b) => tp.raw_data = Some(b.clone()),
        TensorData::Strings(s) => tp.string_data = s.clone(),
        TensorData::Opaque(_) => unreachable!("handled above"),
    }
    tp
}
