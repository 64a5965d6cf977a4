//! ModelProto -> IR: validates the model and builds the petgraph, keeping every field verbatim.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use onnx_proto::attribute_proto::AttributeType;
use onnx_proto::{
    AttributeProto, GraphProto, Message, ModelProto, NodeProto, TypeProto, ValueInfoProto,
};
use ssc_ir::{
    AttrValue, Attribute, DataType, Dim, Graph, GraphExtras, Model, OpDesc, OpaqueAttrKind,
    OpsetImport, TensorType, ValueId, ValueType,
};

use crate::tensor::{kv, tensor_from_proto, TensorIssue};
use crate::OnnxError;

/// The newest IR version this build was written against (`onnx.Version.IR_VERSION`).
pub const MAX_KNOWN_IR_VERSION: i64 = onnx_proto::Version::IrVersion as i64;

/// A loaded model with the non-fatal issues met while reading it.
#[derive(Debug)]
pub struct Loaded {
    pub model: Model,
    pub warnings: Vec<String>,
}

/// Reads an ONNX file. External data is resolved relative to the file's directory.
pub fn load(path: &Path) -> Result<Loaded, OnnxError> {
    let buf = std::fs::read(path).map_err(|source| OnnxError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    decode(Bytes::from(buf), path, Some(&base))
}

/// Reads an ONNX file, dropping warnings.
pub fn load_model(path: &Path) -> Result<Model, OnnxError> {
    load(path).map(|l| l.model)
}

/// Decodes a serialized ModelProto. `path` is used in messages only; `base_dir` resolves
/// external data (`None` makes external data an error).
pub fn decode(buf: Bytes, path: &Path, base_dir: Option<&Path>) -> Result<Loaded, OnnxError> {
    if buf.is_empty() {
        return Err(OnnxError::Empty {
            path: path.to_path_buf(),
        });
    }
    let proto = ModelProto::decode(buf).map_err(|e| OnnxError::decode(path, &e))?;
    let mut imp = Importer {
        path: path.to_path_buf(),
        base_dir: base_dir.map(Path::to_path_buf),
        warnings: Vec::new(),
        negative_dims: Vec::new(),
    };
    let model = imp.model(proto)?;
    Ok(Loaded {
        model,
        warnings: imp.warnings,
    })
}

struct Importer {
    path: PathBuf,
    base_dir: Option<PathBuf>,
    warnings: Vec<String>,
    /// Values whose declared type has a negative dim (read as unknown), for one warning.
    negative_dims: Vec<String>,
}

fn encode<M: Message>(m: &M) -> Bytes {
    Bytes::from(m.encode_to_vec())
}

impl Importer {
    fn invalid(&self, what: impl Into<String>) -> OnnxError {
        OnnxError::Invalid {
            path: self.path.clone(),
            what: what.into(),
        }
    }

    fn model(&mut self, p: ModelProto) -> Result<Model, OnnxError> {
        let ir_version = p.ir_version.ok_or_else(|| {
            self.invalid("ModelProto.ir_version is missing (is this an ONNX model?)")
        })?;
        if ir_version < 1 {
            // ONNX Runtime loads these (only a missing field is refused), so read it too.
            self.warnings.push(format!(
                "{}: ModelProto.ir_version {ir_version} is invalid (versions start at 1); reading it anyway",
                self.path.display()
            ));
        }
        if ir_version > MAX_KNOWN_IR_VERSION {
            self.warnings.push(format!(
                "{}: IR version {ir_version} is newer than the newest this build knows ({MAX_KNOWN_IR_VERSION}); reading it anyway",
                self.path.display()
            ));
        }
        let gp = p
            .graph
            .ok_or_else(|| self.invalid("ModelProto.graph is missing (is this an ONNX model?)"))?;
        let mut opset_imports = Vec::with_capacity(p.opset_import.len());
        for o in &p.opset_import {
            let version = o.version.ok_or_else(|| {
                self.invalid(format!(
                    "opset_import for domain `{}` has no version",
                    o.domain.as_deref().unwrap_or("")
                ))
            })?;
            opset_imports.push(OpsetImport {
                domain: o.domain.clone().unwrap_or_default(),
                version,
            });
        }
        let graph = self.graph(gp, ir_version < 4, &|_| false)?;
        self.report_negative_dims();
        Ok(Model {
            ir_version,
            opset_imports,
            producer_name: p.producer_name,
            producer_version: p.producer_version,
            domain: p.domain,
            model_version: p.model_version,
            doc_string: p.doc_string,
            metadata: kv(&p.metadata_props),
            graph,
            functions: p.functions.iter().map(encode).collect(),
            training_info: p.training_info.iter().map(encode).collect(),
            configuration: p.configuration.iter().map(encode).collect(),
        })
    }

    /// One warning for every value whose type declared a negative dim (Paddle2ONNX writes
    /// `dim_value: -1` for a dynamic batch); ONNX Runtime reads those as dynamic, and so do we.
    fn report_negative_dims(&mut self) {
        let names = std::mem::take(&mut self.negative_dims);
        let Some(first) = names.first() else {
            return;
        };
        let more = match names.len() {
            1 => String::new(),
            n => format!(" and {} more", n - 1),
        };
        self.warnings.push(format!(
            "{}: {first}{more}: negative dimension in a declared type, read as unknown (symbolic)",
            self.path.display()
        ));
    }

    fn value_type(&mut self, t: &TypeProto, what: &str) -> Result<ValueType, OnnxError> {
        use onnx_proto::type_proto::Value;
        let plain = t.denotation.is_none();
        if let (Some(Value::TensorType(tt)), true) = (&t.value, plain) {
            let elem = DataType::from_code(tt.elem_type.unwrap_or(0));
            let shape = match &tt.shape {
                None => None,
                Some(s) => {
                    let mut dims = Vec::with_capacity(s.dim.len());
                    for d in &s.dim {
                        if d.denotation.is_some() {
                            return Ok(ValueType::Opaque(encode(t)));
                        }
                        use onnx_proto::tensor_shape_proto::dimension::Value as D;
                        dims.push(match &d.value {
                            Some(D::DimValue(v)) if *v >= 0 => Dim::Known(*v as usize),
                            Some(D::DimValue(v)) => {
                                let label = format!("{what} ({v})");
                                if self.negative_dims.last() != Some(&label) {
                                    self.negative_dims.push(label);
                                }
                                Dim::Unknown
                            }
                            Some(D::DimParam(p)) => Dim::Param(p.clone()),
                            None => Dim::Unknown,
                        });
                    }
                    Some(dims)
                }
            };
            return Ok(ValueType::Tensor(TensorType { elem, shape }));
        }
        // A sequence or optional of a type the IR holds is parsed (its element recursively);
        // one with a denotation or no element type stays opaque, so it exports as it came.
        let inner = match (&t.value, plain) {
            (Some(Value::SequenceType(s)), true) => s.elem_type.as_deref().map(|e| (e, true)),
            (Some(Value::OptionalType(o)), true) => o.elem_type.as_deref().map(|e| (e, false)),
            _ => None,
        };
        if let Some((e, seq)) = inner {
            let elem = self.value_type(e, what)?;
            if !matches!(elem, ValueType::Opaque(_)) {
                let elem = Box::new(elem);
                return Ok(if seq {
                    ValueType::Sequence(elem)
                } else {
                    ValueType::Optional(elem)
                });
            }
        }
        Ok(ValueType::Opaque(encode(t)))
    }

    fn declare(
        &mut self,
        g: &mut Graph,
        vi: &ValueInfoProto,
        what: &str,
    ) -> Result<ValueId, OnnxError> {
        let name = vi.name.clone().unwrap_or_default();
        if name.is_empty() {
            return Err(self.invalid(format!("{what} has no name")));
        }
        let ty = match &vi.r#type {
            Some(t) => Some(self.value_type(t, &format!("{what} `{name}`"))?),
            None => None,
        };
        let id = match g.value_by_name(&name) {
            Some(id) => id,
            None => g
                .add_value(name.clone(), None)
                .map_err(|e| self.invalid(format!("{what}: {e}")))?,
        };
        let v = g.value_mut(id);
        v.ty = ty;
        v.doc_string = vi.doc_string.clone();
        v.metadata = kv(&vi.metadata_props);
        Ok(id)
    }

    /// Builds a graph. `outer` tells whether a name is defined in an enclosing graph: a
    /// subgraph may read those, and such a read becomes a value of the subgraph that nothing in
    /// it defines (the main graph has no enclosing scope).
    fn graph(
        &mut self,
        gp: GraphProto,
        legacy: bool,
        outer: &dyn Fn(&str) -> bool,
    ) -> Result<Graph, OnnxError> {
        let mut g = Graph::new(gp.name.clone().unwrap_or_default());
        g.doc_string = gp.doc_string.clone();
        g.legacy_initializer_inputs = legacy;
        g.extras = GraphExtras {
            sparse_initializers: gp.sparse_initializer.iter().map(encode).collect(),
            quantization_annotation: gp.quantization_annotation.iter().map(encode).collect(),
            metadata: kv(&gp.metadata_props),
        };

        // Graph inputs first, so their order and types are kept.
        let mut inputs = Vec::with_capacity(gp.input.len());
        for vi in &gp.input {
            let name = vi.name.as_deref().unwrap_or("");
            if g.value_by_name(name).is_some() {
                return Err(self.invalid(format!("graph input `{name}` is listed twice")));
            }
            inputs.push(self.declare(&mut g, vi, "graph input")?);
        }
        g.set_inputs(inputs);

        // Initializers: a name may repeat a graph input (a default value) but not another
        // initializer.
        let mut seen_init = HashSet::new();
        for tp in &gp.initializer {
            let name = tp.name.clone().unwrap_or_default();
            if name.is_empty() {
                return Err(self.invalid("an initializer has no name"));
            }
            if !seen_init.insert(name.clone()) {
                // ONNX Runtime warns and uses the later one; so do we (export writes one).
                self.warnings.push(format!(
                    "{}: initializer `{name}` is defined twice; using the later definition",
                    self.path.display()
                ));
            }
            let t = tensor_from_proto(tp, self.base_dir.as_deref()).map_err(|e| match e {
                TensorIssue::Invalid(w) => self.invalid(format!("initializer `{name}`: {w}")),
                TensorIssue::External(w) => OnnxError::ExternalData {
                    path: self.path.clone(),
                    tensor: name.clone(),
                    what: w,
                },
            })?;
            let id = match g.value_by_name(&name) {
                Some(id) => id,
                None => g
                    .add_value(name.clone(), None)
                    .expect("name checked unique"),
            };
            g.set_initializer(id, t);
        }
        for sp in &gp.sparse_initializer {
            let name = sp
                .values
                .as_ref()
                .and_then(|v| v.name.clone())
                .unwrap_or_default();
            if name.is_empty() || g.value_by_name(&name).is_some() {
                return Err(self.invalid(format!(
                    "sparse initializer `{name}` has no name or repeats one"
                )));
            }
            g.add_value(name, None).expect("name checked unique");
        }
        if legacy {
            for id in g.initializer_ids() {
                if !g.is_graph_input(id) {
                    self.warnings.push(format!(
                        "{}: initializer `{}` is not a graph input, as IR version < 4 requires",
                        self.path.display(),
                        g.value(id).name
                    ));
                }
            }
        }

        // Every node output is a new value: two producers of one name break SSA.
        let mut produced: HashSet<String> = HashSet::new();
        for (idx, n) in gp.node.iter().enumerate() {
            for out in n.output.iter().filter(|o| !o.is_empty()) {
                if !produced.insert(out.clone()) || g.value_by_name(out).is_some() {
                    return Err(self.invalid(format!(
                        "node {} writes `{out}`, which is already defined",
                        node_label(n, idx)
                    )));
                }
                g.add_value(out.clone(), None).expect("name checked unique");
            }
        }
        // value_info may describe any value; types of unknown names are kept as dangling values.
        for vi in &gp.value_info {
            if vi.name.as_deref().unwrap_or("").is_empty() {
                // It describes nothing; ONNX Runtime ignores it too.
                self.warnings.push(format!(
                    "{}: a value_info entry has no name; ignored",
                    self.path.display()
                ));
                continue;
            }
            let id = self.declare(&mut g, vi, "value_info")?;
            g.value_mut(id).in_value_info = true;
        }

        // What a node or graph output may read: a graph input, an initializer or a node output.
        // A name only value_info declares is not a value (ONNX Runtime refuses such reads too).
        let mut defined: HashSet<&str> = produced.iter().map(String::as_str).collect();
        defined.extend(gp.input.iter().filter_map(|v| v.name.as_deref()));
        defined.extend(gp.initializer.iter().filter_map(|t| t.name.as_deref()));
        defined.extend(
            gp.sparse_initializer
                .iter()
                .filter_map(|s| s.values.as_ref().and_then(|v| v.name.as_deref())),
        );
        for (idx, n) in gp.node.iter().enumerate() {
            self.node(&mut g, n, idx, &defined, legacy, outer)?;
        }

        let mut outputs = Vec::with_capacity(gp.output.len());
        for vi in &gp.output {
            let name = vi.name.clone().unwrap_or_default();
            // A subgraph may return an enclosing value as it is.
            if !defined.contains(name.as_str()) && !outer(&name) {
                return Err(self.invalid(format!(
                    "graph output `{name}` is not produced by any node, input or initializer"
                )));
            }
            outputs.push(self.declare(&mut g, vi, "graph output")?);
        }
        g.set_outputs(outputs);
        g.topo_order().map_err(|e| self.invalid(e.to_string()))?;
        Ok(g)
    }

    /// The value `name` reads in `g`: defined here, or (in a subgraph) an enclosing value, which
    /// becomes a value nothing in `g` defines.
    fn read(
        &self,
        g: &mut Graph,
        name: &str,
        defined: &HashSet<&str>,
        outer: &dyn Fn(&str) -> bool,
    ) -> Option<ValueId> {
        if defined.contains(name) {
            return g.value_by_name(name);
        }
        if !outer(name) {
            return None;
        }
        // value_info may already have declared the enclosing value's type here.
        Some(match g.value_by_name(name) {
            Some(v) => v,
            None => g.add_value(name, None).expect("name is new"),
        })
    }

    fn node(
        &mut self,
        g: &mut Graph,
        n: &NodeProto,
        idx: usize,
        defined: &HashSet<&str>,
        legacy: bool,
        outer: &dyn Fn(&str) -> bool,
    ) -> Result<(), OnnxError> {
        let label = node_label(n, idx);
        let op_type = n.op_type.clone().unwrap_or_default();
        if op_type.is_empty() {
            return Err(self.invalid(format!("node {label} has no op_type")));
        }
        let mut slots = |names: &[String]| -> Result<Vec<Option<ValueId>>, OnnxError> {
            names
                .iter()
                .map(|name| {
                    if name.is_empty() {
                        return Ok(None);
                    }
                    self.read(g, name, defined, outer).map(Some).ok_or_else(|| {
                        self.invalid(format!(
                            "node {label} ({op_type}) reads `{name}`, which no node, graph input or initializer produces"
                        ))
                    })
                })
                .collect()
        };
        let inputs = slots(&n.input)?;
        let outputs = slots(&n.output)?;
        let mut attrs = Vec::with_capacity(n.attribute.len());
        // Subgraphs see this graph's values and those around it.
        let visible = |name: &str| defined.contains(name) || outer(name);
        let mut captured = BTreeSet::new();
        for a in &n.attribute {
            let attr = self.attribute(a, &label, legacy, &visible)?;
            let subs: &[Graph] = match &attr.value {
                AttrValue::Graph(sub) => std::slice::from_ref(&**sub),
                AttrValue::Graphs(subs) => subs,
                _ => &[],
            };
            for sub in subs {
                captured.extend(
                    sub.free_values()
                        .into_iter()
                        .map(|v| sub.value(v).name.clone()),
                );
            }
            attrs.push(attr);
        }
        let desc = OpDesc {
            name: n.name.clone().unwrap_or_default(),
            op_type: op_type.clone(),
            domain: n.domain.clone().unwrap_or_default(),
            overload: n.overload.clone().unwrap_or_default(),
            attrs,
            doc_string: n.doc_string.clone(),
            metadata: kv(&n.metadata_props),
            extra: n.device_configurations.iter().map(encode).collect(),
            annotations: Vec::new(),
        };
        let op = g
            .add_op(desc, inputs, outputs)
            .map_err(|e| self.invalid(format!("node {label}: {e}")))?;
        for name in captured {
            let v = self.read(g, &name, defined, outer).ok_or_else(|| {
                self.invalid(format!(
                    "a subgraph of node {label} ({op_type}) reads `{name}`, which is defined nowhere"
                ))
            })?;
            g.add_capture(op, v);
        }
        Ok(())
    }

    /// A subgraph attribute's graph, with errors naming where it sits.
    fn subgraph(
        &mut self,
        gp: &GraphProto,
        node: &str,
        attr: &str,
        legacy: bool,
        visible: &dyn Fn(&str) -> bool,
    ) -> Result<Graph, OnnxError> {
        self.graph(gp.clone(), legacy, visible)
            .map_err(|e| match e {
                OnnxError::Invalid { path, what } => OnnxError::Invalid {
                    path,
                    what: format!("in subgraph `{attr}` of node {node}: {what}"),
                },
                other => other,
            })
    }

    fn attribute(
        &mut self,
        a: &AttributeProto,
        node: &str,
        legacy: bool,
        visible: &dyn Fn(&str) -> bool,
    ) -> Result<Attribute, OnnxError> {
        let name = a.name.clone().unwrap_or_default();
        if name.is_empty() {
            return Err(self.invalid(format!("node {node} has an attribute with no name")));
        }
        let kind = match a.r#type {
            Some(t) => AttributeType::try_from(t).unwrap_or(AttributeType::Undefined),
            // IR version 1 had no type field: infer it from the field that is set.
            None => infer_attr_type(a),
        };
        let tensor = |t: &onnx_proto::TensorProto| {
            tensor_from_proto(t, self.base_dir.as_deref()).map_err(|e| {
                let w = match e {
                    TensorIssue::Invalid(w) | TensorIssue::External(w) => w,
                };
                self.invalid(format!("node {node}: attribute `{name}`: {w}"))
            })
        };
        let opaque = |kind| AttrValue::Opaque {
            kind,
            encoded: encode(a),
        };
        let value = if a.ref_attr_name.is_some() {
            opaque(OpaqueAttrKind::Other)
        } else {
            match kind {
                AttributeType::Float => AttrValue::Float(a.f.unwrap_or(0.0)),
                AttributeType::Int => AttrValue::Int(a.i.unwrap_or(0)),
                AttributeType::String => AttrValue::String(a.s.clone().unwrap_or_default()),
                AttributeType::Tensor => match &a.t {
                    Some(t) => AttrValue::Tensor(tensor(t)?),
                    None => {
                        return Err(self.invalid(format!(
                            "node {node}: tensor attribute `{name}` has no tensor"
                        )))
                    }
                },
                AttributeType::Floats => AttrValue::Floats(a.floats.clone()),
                AttributeType::Ints => AttrValue::Ints(a.ints.clone()),
                AttributeType::Strings => AttrValue::Strings(a.strings.clone()),
                AttributeType::Tensors => {
                    AttrValue::Tensors(a.tensors.iter().map(tensor).collect::<Result<_, _>>()?)
                }
                AttributeType::Graph => match &a.g {
                    Some(gp) => {
                        AttrValue::Graph(Box::new(self.subgraph(gp, node, &name, legacy, visible)?))
                    }
                    None => {
                        return Err(self.invalid(format!(
                            "node {node}: graph attribute `{name}` has no graph"
                        )))
                    }
                },
                AttributeType::Graphs => AttrValue::Graphs(
                    a.graphs
                        .iter()
                        .map(|gp| self.subgraph(gp, node, &name, legacy, visible))
                        .collect::<Result<_, _>>()?,
                ),
                AttributeType::SparseTensor => opaque(OpaqueAttrKind::SparseTensor),
                AttributeType::SparseTensors => opaque(OpaqueAttrKind::SparseTensors),
                AttributeType::TypeProto => opaque(OpaqueAttrKind::TypeProto),
                AttributeType::TypeProtos => opaque(OpaqueAttrKind::TypeProtos),
                AttributeType::Undefined => opaque(OpaqueAttrKind::Other),
            }
        };
        let mut tensor_names: Vec<String> =
            a.t.iter()
                .chain(&a.tensors)
                .map(|t| t.name.clone().unwrap_or_default())
                .collect();
        if tensor_names.iter().all(String::is_empty) {
            tensor_names.clear();
        }
        Ok(Attribute {
            name,
            value,
            doc_string: a.doc_string.clone(),
            tensor_names,
        })
    }
}

fn node_label(n: &NodeProto, idx: usize) -> String {
    match n.name.as_deref() {
        Some(s) if !s.is_empty() => format!("`{s}`"),
        _ => format!("#{idx}"),
    }
}

fn infer_attr_type(a: &AttributeProto) -> AttributeType {
    if a.f.is_some() {
        AttributeType::Float
    } else if a.i.is_some() {
        AttributeType::Int
    } else if a.s.is_some() {
        AttributeType::String
    } else if a.t.is_some() {
        AttributeType::Tensor
    } else if a.g.is_some() {
        AttributeType::Graph
    } else if !a.floats.is_empty() {
        AttributeType::Floats
    } else if !a.ints.is_empty() {
        AttributeType::Ints
    } else if !a.strings.is_empty() {
        AttributeType::Strings
    } else if !a.tensors.is_empty() {
        AttributeType::Tensors
    } else if !a.graphs.is_empty() {
        AttributeType::Graphs
    } else {
        AttributeType::Undefined
    }
}

/// Reads a serialized TensorProto (the `input_0.pb` files of ONNX test data). External data
/// is resolved relative to the file's directory.
pub fn load_tensor_pb(path: &Path) -> Result<(String, ssc_ir::Tensor), OnnxError> {
    let buf = std::fs::read(path).map_err(|source| OnnxError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let tp = onnx_proto::TensorProto::decode(Bytes::from(buf))
        .map_err(|e| OnnxError::decode(path, &e))?;
    let name = tp.name.clone().unwrap_or_default();
    let t = tensor_from_proto(&tp, path.parent()).map_err(|e| {
        let what = match e {
            TensorIssue::Invalid(w) | TensorIssue::External(w) => w,
        };
        OnnxError::Invalid {
            path: path.to_path_buf(),
            what: format!("tensor `{name}`: {what}"),
        }
    })?;
    Ok((name, t))
}

/// Reads one value of a test-data set (`input_0.pb`...) as the declared type `ty` says it is
/// stored: a `SequenceProto` for a sequence, an `OptionalProto` for an optional, else a
/// `TensorProto` ([`load_tensor_pb`]). Returns its stored name and the value. Sequences and
/// optionals hold tensors (or, for an optional, a sequence of tensors); maps and sparse
/// tensors are refused.
pub fn load_value_pb(
    path: &Path,
    ty: Option<&ValueType>,
) -> Result<(String, ssc_ir::RunValue), OnnxError> {
    use ssc_ir::RunValue;
    if !matches!(ty, Some(ValueType::Sequence(_) | ValueType::Optional(_))) {
        let (name, t) = load_tensor_pb(path)?;
        return Ok((name, RunValue::Tensor(t)));
    }
    let buf = std::fs::read(path).map_err(|source| OnnxError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let invalid = |what: String| OnnxError::Invalid {
        path: path.to_path_buf(),
        what,
    };
    let tensor = |tp: &onnx_proto::TensorProto| {
        tensor_from_proto(tp, path.parent()).map_err(|e| match e {
            TensorIssue::Invalid(w) | TensorIssue::External(w) => invalid(w),
        })
    };
    let sequence = |sp: &onnx_proto::SequenceProto, ty: Option<&ValueType>| {
        let holds_tensors = sp.elem_type.is_none_or(|e| e == 1);
        let others = sp.sparse_tensor_values.len()
            + sp.sequence_values.len()
            + sp.map_values.len()
            + sp.optional_values.len();
        if !holds_tensors || others > 0 {
            return Err(invalid("only sequences of tensors are supported".into()));
        }
        let items = sp
            .tensor_values
            .iter()
            .map(tensor)
            .collect::<Result<Vec<_>, _>>()?;
        let declared = match ty {
            Some(ValueType::Sequence(e)) => e.tensor().map(|t| t.elem),
            _ => None,
        };
        let elem = items
            .first()
            .map(|t| t.dtype)
            .or(declared)
            .ok_or_else(|| invalid("an empty sequence of undeclared element type".into()))?;
        Ok(RunValue::Sequence { elem, items })
    };
    Ok(match ty {
        Some(ValueType::Sequence(_)) => {
            let sp = onnx_proto::SequenceProto::decode(Bytes::from(buf))
                .map_err(|e| OnnxError::decode(path, &e))?;
            (sp.name.clone().unwrap_or_default(), sequence(&sp, ty)?)
        }
        Some(ValueType::Optional(inner)) => {
            let op = onnx_proto::OptionalProto::decode(Bytes::from(buf))
                .map_err(|e| OnnxError::decode(path, &e))?;
            let value = match (&op.tensor_value, &op.sequence_value) {
                (Some(t), _) => Some(RunValue::Tensor(tensor(t)?)),
                (None, Some(s)) => Some(sequence(s, Some(inner))?),
                (None, None) if op.map_value.is_some() || op.optional_value.is_some() => {
                    return Err(invalid(
                        "only optional tensors and sequences are supported".into(),
                    ))
                }
                (None, None) => None,
            };
            (
                op.name.clone().unwrap_or_default(),
                RunValue::Optional(value.map(Box::new)),
            )
        }
        _ => unreachable!("tensors returned above"),
    })
}
