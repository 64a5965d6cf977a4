//! IR -> ModelProto and the atomic file writer, with optional external data for large weights.

use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use onnx_proto::{
    attribute_proto::AttributeType, AttributeProto, GraphProto, Message, ModelProto, NodeProto,
    OperatorSetIdProto, StringStringEntryProto, TensorProto, TypeProto, ValueInfoProto,
};
use ssc_ir::{AttrValue, Attribute, Dim, Graph, Model, TensorData, ValueId, ValueType};

use crate::tensor::{kv_proto, tensor_to_proto};
use crate::OnnxError;

/// The protobuf wire format cannot hold a message of 2 GiB or more.
pub const PROTOBUF_LIMIT: usize = (1 << 31) - 1;

/// When to move initializer data out of the `.onnx` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExternalData {
    /// Only when the model would not fit in one protobuf message.
    Auto,
    /// Always, for every initializer of at least `threshold` bytes.
    Always { threshold: usize },
}

/// Options for [`save`].
#[derive(Clone, Debug)]
pub struct SaveOptions {
    pub external_data: ExternalData,
    /// Allow the output to replace an existing file, including the input itself.
    pub overwrite: bool,
}

impl Default for SaveOptions {
    fn default() -> Self {
        SaveOptions {
            external_data: ExternalData::Auto,
            overwrite: true,
        }
    }
}

/// What [`save`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Saved {
    pub model_bytes: usize,
    /// The external data file and its size, when one was written.
    pub external: Option<(PathBuf, usize)>,
}

/// External data offsets are page-aligned so readers can map tensors directly (the spec's
/// SHOULD).
const EXTERNAL_ALIGN: usize = 4096;
/// Initializers below this size stay inline even when external data is on.
pub const DEFAULT_EXTERNAL_THRESHOLD: usize = 1024;

/// Builds the ModelProto for `model`, with all tensor data inline.
pub fn to_proto(model: &Model) -> Result<ModelProto, OnnxError> {
    Ok(ModelProto {
        ir_version: Some(model.ir_version),
        opset_import: model
            .opset_imports
            .iter()
            .map(|o| OperatorSetIdProto {
                domain: Some(o.domain.clone()),
                version: Some(o.version),
            })
            .collect(),
        producer_name: model.producer_name.clone(),
        producer_version: model.producer_version.clone(),
        domain: model.domain.clone(),
        model_version: model.model_version,
        doc_string: model.doc_string.clone(),
        graph: Some(graph_proto(&model.graph)?),
        metadata_props: kv_proto(&model.metadata),
        training_info: decode_all(&model.training_info),
        functions: decode_all(&model.functions),
        configuration: decode_all(&model.configuration),
    })
}

fn decode_all<M: Message + Default>(items: &[Bytes]) -> Vec<M> {
    items
        .iter()
        .map(|b| M::decode(b.clone()).expect("opaque fields are encoded by the importer"))
        .collect()
}

fn graph_proto(g: &Graph) -> Result<GraphProto, OnnxError> {
    let order = g.topo_order().map_err(|e| OnnxError::Invalid {
        path: PathBuf::from("<graph>"),
        what: e.to_string(),
    })?;
    let name_of = |v: Option<ValueId>| v.map(|v| g.value(v).name.clone()).unwrap_or_default();
    let node = order
        .iter()
        .map(|&o| {
            let op = g.op(o);
            let d = &op.desc;
            Ok(NodeProto {
                input: op.inputs().iter().map(|&v| name_of(v)).collect(),
                output: op.outputs().iter().map(|&v| name_of(v)).collect(),
                name: Some(d.name.clone()).filter(|s| !s.is_empty()),
                op_type: Some(d.op_type.clone()),
                domain: Some(d.domain.clone()).filter(|s| !s.is_empty()),
                overload: Some(d.overload.clone()).filter(|s| !s.is_empty()),
                attribute: d
                    .attrs
                    .iter()
                    .map(attribute_proto)
                    .collect::<Result<_, _>>()?,
                doc_string: d.doc_string.clone(),
                metadata_props: kv_proto(&d.metadata),
                device_configurations: decode_all(&d.extra),
            })
        })
        .collect::<Result<_, OnnxError>>()?;
    let interface = |ids: &[ValueId]| ids.iter().map(|&v| value_info(g, v)).collect();
    let value_info = g
        .value_ids()
        .into_iter()
        .filter(|&v| g.value(v).in_value_info && !g.is_graph_input(v) && !g.is_graph_output(v))
        .map(|v| value_info(g, v))
        .collect();
    Ok(GraphProto {
        node,
        name: Some(g.name.clone()),
        initializer: g
            .initializer_ids()
            .into_iter()
            .map(|v| tensor_to_proto(g.initializer(v).expect("listed"), Some(&g.value(v).name)))
            .collect(),
        sparse_initializer: decode_all(&g.extras.sparse_initializers),
        doc_string: g.doc_string.clone(),
        input: interface(g.inputs()),
        output: interface(g.outputs()),
        value_info,
        quantization_annotation: decode_all(&g.extras.quantization_annotation),
        metadata_props: kv_proto(&g.extras.metadata),
    })
}

fn value_info(g: &Graph, v: ValueId) -> ValueInfoProto {
    let val = g.value(v);
    ValueInfoProto {
        name: Some(val.name.clone()),
        // A declaration inference found wrong goes out as the model had it (see
        // `Value::declared`); everything else is the current type.
        r#type: val.declared.as_ref().or(val.ty.as_ref()).map(type_proto),
        doc_string: val.doc_string.clone(),
        metadata_props: kv_proto(&val.metadata),
    }
}

fn type_proto(t: &ValueType) -> TypeProto {
    use onnx_proto::tensor_shape_proto::{dimension::Value as D, Dimension};
    use onnx_proto::type_proto::{Tensor, Value};
    match t {
        ValueType::Opaque(b) => TypeProto::decode(b.clone()).expect("encoded by the importer"),
        ValueType::Sequence(e) => TypeProto {
            denotation: None,
            value: Some(Value::SequenceType(Box::new(
                onnx_proto::type_proto::Sequence {
                    elem_type: Some(Box::new(type_proto(e))),
                },
            ))),
        },
        ValueType::Optional(e) => TypeProto {
            denotation: None,
            value: Some(Value::OptionalType(Box::new(
                onnx_proto::type_proto::Optional {
                    elem_type: Some(Box::new(type_proto(e))),
                },
            ))),
        },
        ValueType::Tensor(tt) => TypeProto {
            denotation: None,
            value: Some(Value::TensorType(Tensor {
                elem_type: Some(tt.elem.code()),
                shape: tt.shape.as_ref().map(|dims| onnx_proto::TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|d| Dimension {
                            denotation: None,
                            value: match d {
                                Dim::Known(n) => Some(D::DimValue(*n as i64)),
                                Dim::Param(p) => Some(D::DimParam(p.clone())),
                                Dim::Unknown => None,
                            },
                        })
                        .collect(),
                }),
            })),
        },
    }
}

fn attribute_proto(a: &Attribute) -> Result<AttributeProto, OnnxError> {
    if let AttrValue::Opaque { encoded, .. } = &a.value {
        let mut p = AttributeProto::decode(encoded.clone()).expect("encoded by the importer");
        p.name = Some(a.name.clone());
        p.doc_string = a.doc_string.clone();
        return Ok(p);
    }
    let mut p = AttributeProto {
        name: Some(a.name.clone()),
        doc_string: a.doc_string.clone(),
        ..AttributeProto::default()
    };
    let tensor_name = |i: usize| {
        a.tensor_names
            .get(i)
            .map(String::as_str)
            .filter(|n| !n.is_empty())
    };
    let ty = match &a.value {
        AttrValue::Float(f) => {
            p.f = Some(*f);
            AttributeType::Float
        }
        AttrValue::Int(i) => {
            p.i = Some(*i);
            AttributeType::Int
        }
        AttrValue::String(s) => {
            p.s = Some(s.clone());
            AttributeType::String
        }
        AttrValue::Tensor(t) => {
            p.t = Some(tensor_to_proto(t, tensor_name(0)));
            AttributeType::Tensor
        }
        AttrValue::Floats(v) => {
            p.floats = v.clone();
            AttributeType::Floats
        }
        AttrValue::Ints(v) => {
            p.ints = v.clone();
            AttributeType::Ints
        }
        AttrValue::Strings(v) => {
            p.strings = v.clone();
            AttributeType::Strings
        }
        AttrValue::Tensors(v) => {
            p.tensors = v
                .iter()
                .enumerate()
                .map(|(i, t)| tensor_to_proto(t, tensor_name(i)))
                .collect();
            AttributeType::Tensors
        }
        AttrValue::Graph(sub) => {
            p.g = Some(graph_proto(sub)?);
            AttributeType::Graph
        }
        AttrValue::Graphs(subs) => {
            p.graphs = subs.iter().map(graph_proto).collect::<Result<_, _>>()?;
            AttributeType::Graphs
        }
        AttrValue::Opaque { .. } => unreachable!("handled above"),
    };
    p.r#type = Some(ty as i32);
    Ok(p)
}

/// Serialises `model` with all data inline.
pub fn encode_model(model: &Model) -> Result<Vec<u8>, OnnxError> {
    Ok(to_proto(model)?.encode_to_vec())
}

/// Moves raw initializer payloads of at least `threshold` bytes into one data blob, returning
/// the blob. Offsets are aligned; the order is the initializer order, so output is deterministic.
fn externalise(proto: &mut ModelProto, location: &str, threshold: usize) -> Vec<u8> {
    let mut blob = Vec::new();
    let graph = proto
        .graph
        .as_mut()
        .expect("to_proto always sets the graph");
    for t in &mut graph.initializer {
        let big = t.raw_data.as_ref().is_some_and(|r| r.len() >= threshold);
        if !big {
            continue;
        }
        let raw = t.raw_data.take().expect("checked");
        let offset = blob.len().next_multiple_of(EXTERNAL_ALIGN);
        blob.resize(offset, 0);
        blob.extend_from_slice(&raw);
        let entry = |k: &str, v: String| StringStringEntryProto {
            key: Some(k.to_string()),
            value: Some(v),
        };
        t.external_data = vec![
            entry("location", location.to_string()),
            entry("offset", offset.to_string()),
            entry("length", raw.len().to_string()),
        ];
        t.data_location = Some(onnx_proto::tensor_proto::DataLocation::External as i32);
    }
    blob
}

/// Writes `model` to `path` atomically: data goes to a temporary file in the same directory,
/// which is renamed over the target only once complete, so a failure never leaves a partial file.
pub fn save(model: &Model, path: &Path, opts: &SaveOptions) -> Result<Saved, OnnxError> {
    let out_err = |what: String| OnnxError::Output {
        path: path.to_path_buf(),
        what,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(out_err(format!(
            "directory `{}` does not exist",
            dir.display()
        )));
    }
    if path.is_dir() {
        return Err(out_err("the output path is a directory".into()));
    }
    if path.exists() && !opts.overwrite {
        return Err(out_err(
            "the file exists (pass --overwrite to replace it)".into(),
        ));
    }
    let mut proto = to_proto(model)?;
    let inline_size = proto.encoded_len();
    let threshold = match opts.external_data {
        ExternalData::Always { threshold } => Some(threshold),
        ExternalData::Auto if inline_size > PROTOBUF_LIMIT => Some(DEFAULT_EXTERNAL_THRESHOLD),
        ExternalData::Auto => None,
    };
    // Everything is encoded and checked before anything touches the disk.
    let mut external = None;
    if let Some(threshold) = threshold {
        let file_name = path
            .file_name()
            .ok_or_else(|| out_err("the output path has no file name".into()))?;
        let location = format!("{}.data", file_name.to_string_lossy());
        let blob = externalise(&mut proto, &location, threshold);
        external = Some((dir.join(&location), blob));
    }
    let bytes = proto.encode_to_vec();
    if bytes.len() > PROTOBUF_LIMIT {
        return Err(out_err(
            "the model's graph alone exceeds the 2 GiB protobuf limit".into(),
        ));
    }
    // Both files are complete in temporaries before either is renamed into place, so a failed
    // write leaves neither a partial model nor a stray data file (the temporaries are removed
    // when dropped).
    let data_tmp = match &external {
        Some((data_path, blob)) => {
            Some(write_temp(data_path, blob).map_err(|source| OnnxError::Io {
                path: data_path.clone(),
                source,
            })?)
        }
        None => None,
    };
    let model_tmp = write_temp(path, &bytes).map_err(|source| OnnxError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if let (Some(tmp), Some((data_path, _))) = (data_tmp, &external) {
        tmp.persist(data_path).map_err(|e| OnnxError::Io {
            path: data_path.clone(),
            source: e.error,
        })?;
    }
    model_tmp.persist(path).map_err(|e| OnnxError::Io {
        path: path.to_path_buf(),
        source: e.error,
    })?;
    Ok(Saved {
        model_bytes: bytes.len(),
        external: external.map(|(p, blob)| (p, blob.len())),
    })
}

/// Writes `bytes` to `path` atomically (a synced temporary file in the same directory, then a
/// rename), replacing any existing file: a failure never leaves a partial file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), OnnxError> {
    let io = |source| OnnxError::Io {
        path: path.to_path_buf(),
        source,
    };
    write_temp(path, bytes)
        .map_err(io)?
        .persist(path)
        .map_err(|e| io(e.error))?;
    Ok(())
}

/// Writes `bytes` to a synced temporary file next to `path`, ready to be renamed over it.
fn write_temp(path: &Path, bytes: &[u8]) -> std::io::Result<tempfile::NamedTempFile> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".ssc-opt-")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    Ok(tmp)
}

/// Serialises a tensor as a standalone TensorProto (the format of ONNX test-data `.pb` files).
pub fn encode_tensor_pb(name: &str, t: &ssc_ir::Tensor) -> Vec<u8> {
    let tp: TensorProto = tensor_to_proto(t, Some(name));
    tp.encode_to_vec()
}

/// True when the tensor's payload is held inline as raw bytes.
pub fn is_raw(t: &ssc_ir::Tensor) -> bool {
    matches!(t.data, TensorData::Raw(_))
}
