//! Op attributes: the scalar, list, tensor and subgraph kinds the passes read, and opaque kinds
//! kept verbatim.

use bytes::Bytes;

use crate::{Graph, Tensor};

/// Which ONNX attribute kind an opaque attribute holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpaqueAttrKind {
    SparseTensor,
    SparseTensors,
    TypeProto,
    TypeProtos,
    /// A reference to a function attribute (`ref_attr_name`) or an attribute of unknown type.
    Other,
}

/// An attribute value.
#[derive(Clone, Debug, PartialEq)]
pub enum AttrValue {
    Float(f32),
    Int(i64),
    String(Bytes),
    Tensor(Tensor),
    Floats(Vec<f32>),
    Ints(Vec<i64>),
    Strings(Vec<Bytes>),
    Tensors(Vec<Tensor>),
    /// A subgraph (If's branches, Loop's and Scan's body). It reads values of the enclosing
    /// graphs by name: each such name is a value of the subgraph that nothing in it defines (see
    /// [`Graph::free_values`]), and the op holding the attribute records the enclosing value as
    /// a capture ([`crate::Op::captures`]).
    Graph(Box<Graph>),
    Graphs(Vec<Graph>),
    /// Sparse tensors, type protos and references to function attributes: the I/O layer's
    /// encoded attribute, written back byte for byte.
    Opaque {
        kind: OpaqueAttrKind,
        encoded: Bytes,
    },
}

/// A named attribute of an op.
#[derive(Clone, Debug, PartialEq)]
pub struct Attribute {
    pub name: String,
    pub value: AttrValue,
    pub doc_string: Option<String>,
    /// The names the model gave the attribute's tensors (ONNX's `TensorProto.name` inside a
    /// tensor attribute, which carries no meaning), by position, kept so export writes them
    /// back; empty when none is named. The text form does not show them.
    pub tensor_names: Vec<String>,
}

impl Attribute {
    pub fn new(name: impl Into<String>, value: AttrValue) -> Attribute {
        Attribute {
            name: name.into(),
            value,
            doc_string: None,
            tensor_names: Vec::new(),
        }
    }

    pub fn int(name: impl Into<String>, v: i64) -> Attribute {
        Attribute::new(name, AttrValue::Int(v))
    }

    pub fn ints(name: impl Into<String>, v: Vec<i64>) -> Attribute {
        Attribute::new(name, AttrValue::Ints(v))
    }

    pub fn float(name: impl Into<String>, v: f32) -> Attribute {
        Attribute::new(name, AttrValue::Float(v))
    }

    pub fn string(name: impl Into<String>, v: &str) -> Attribute {
        Attribute::new(
            name,
            AttrValue::String(Bytes::copy_from_slice(v.as_bytes())),
        )
    }

    /// A short name of the value's kind, for error messages.
    pub fn kind_name(&self) -> &'static str {
        match &self.value {
            AttrValue::Float(_) => "float",
            AttrValue::Int(_) => "int",
            AttrValue::String(_) => "string",
            AttrValue::Tensor(_) => "tensor",
            AttrValue::Floats(_) => "floats",
            AttrValue::Ints(_) => "ints",
            AttrValue::Strings(_) => "strings",
            AttrValue::Tensors(_) => "tensors",
            AttrValue::Graph(_) => "graph",
            AttrValue::Graphs(_) => "graphs",
            AttrValue::Opaque { kind, .. } => match kind {
                OpaqueAttrKind::SparseTensor => "sparse_tensor",
                OpaqueAttrKind::SparseTensors => "sparse_tensors",
                OpaqueAttrKind::TypeProto => "type_proto",
                OpaqueAttrKind::TypeProtos => "type_protos",
                OpaqueAttrKind::Other => "opaque",
            },
        }
    }
}

/// Typed attribute look-ups with errors that name the node and attribute.
impl crate::OpDesc {
    fn typed<'a, T>(
        &'a self,
        name: &str,
        expected: &'static str,
        pick: impl Fn(&'a AttrValue) -> Option<T>,
    ) -> Result<Option<T>, crate::IrError> {
        match self.attr(name) {
            None => Ok(None),
            Some(a) => pick(&a.value)
                .map(Some)
                .ok_or_else(|| crate::IrError::AttrKind {
                    node: self.label(),
                    attr: name.to_string(),
                    expected,
                    found: a.kind_name(),
                }),
        }
    }

    pub fn get_int(&self, name: &str) -> Result<Option<i64>, crate::IrError> {
        self.typed(name, "int", |v| match v {
            AttrValue::Int(i) => Some(*i),
            _ => None,
        })
    }

    pub fn get_float(&self, name: &str) -> Result<Option<f32>, crate::IrError> {
        self.typed(name, "float", |v| match v {
            AttrValue::Float(f) => Some(*f),
            _ => None,
        })
    }

    pub fn get_ints(&self, name: &str) -> Result<Option<&[i64]>, crate::IrError> {
        self.typed(name, "ints", |v| match v {
            AttrValue::Ints(i) => Some(i.as_slice()),
            _ => None,
        })
    }

    pub fn get_floats(&self, name: &str) -> Result<Option<&[f32]>, crate::IrError> {
        self.typed(name, "floats", |v| match v {
            AttrValue::Floats(f) => Some(f.as_slice()),
            _ => None,
        })
    }

    /// A string attribute, decoded as UTF-8 (lossily: ONNX strings are meant to be UTF-8).
    pub fn get_string(&self, name: &str) -> Result<Option<String>, crate::IrError> {
        self.typed(name, "string", |v| match v {
            AttrValue::String(s) => Some(String::from_utf8_lossy(s).into_owned()),
            _ => None,
        })
    }

    pub fn get_tensor(&self, name: &str) -> Result<Option<&Tensor>, crate::IrError> {
        self.typed(name, "tensor", |v| match v {
            AttrValue::Tensor(t) => Some(t),
            _ => None,
        })
    }

    pub fn get_graph(&self, name: &str) -> Result<Option<&Graph>, crate::IrError> {
        self.typed(name, "graph", |v| match v {
            AttrValue::Graph(g) => Some(&**g),
            _ => None,
        })
    }

    /// Every subgraph of the op's attributes, with its attribute's name.
    pub fn subgraphs(&self) -> impl Iterator<Item = (&str, &Graph)> {
        self.attrs.iter().flat_map(|a| {
            let graphs: &[Graph] = match &a.value {
                AttrValue::Graph(g) => std::slice::from_ref(&**g),
                AttrValue::Graphs(gs) => gs,
                _ => &[],
            };
            graphs.iter().map(move |g| (a.name.as_str(), g))
        })
    }

    /// Whether any attribute holds a subgraph.
    pub fn has_subgraphs(&self) -> bool {
        self.subgraphs().next().is_some()
    }
}
