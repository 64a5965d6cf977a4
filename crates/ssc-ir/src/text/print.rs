//! The text printer: writes a model in the canonical form the parser reads back.

use std::fmt::Write;

use super::values::{detect_generator, digest, elem_width, print_elem};
use super::{is_bare_name, is_ident, name_into, quote_bytes, PrintOptions};
use crate::{
    AttrValue, Attribute, Dim, Graph, Model, OpId, Tensor, TensorData, TensorType, ValueId,
    ValueType,
};

pub(super) struct Printer<'o> {
    opts: &'o PrintOptions,
    out: String,
    /// Nesting of the graph being printed: 0 for the main graph, 1 inside its ops' subgraphs...
    depth: usize,
}

/// A value type as text (`?` for none).
pub(super) fn type_string(ty: &Option<ValueType>) -> String {
    let mut s = String::new();
    type_into(ty, &mut s);
    s
}

/// A static tensor type as text, `float[2,3]`.
pub(super) fn ttype_string(dtype: crate::DataType, dims: &[usize]) -> String {
    type_string(&Some(ValueType::Tensor(TensorType {
        elem: dtype,
        shape: Some(dims.iter().map(|&d| Dim::Known(d)).collect()),
    })))
}

fn type_into(ty: &Option<ValueType>, out: &mut String) {
    match ty {
        None => out.push('?'),
        Some(ValueType::Opaque(_)) => out.push_str("<opaque>"),
        Some(ValueType::Sequence(e)) | Some(ValueType::Optional(e)) => {
            let kind = if matches!(ty, Some(ValueType::Sequence(_))) {
                "seq"
            } else {
                "optional"
            };
            out.push_str(kind);
            out.push('(');
            type_into(&Some((**e).clone()), out);
            out.push(')');
        }
        Some(ValueType::Tensor(TensorType { elem, shape })) => {
            out.push_str(&elem.name());
            out.push('[');
            match shape {
                None => out.push('*'),
                Some(dims) => {
                    for (i, d) in dims.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        match d {
                            Dim::Known(n) => {
                                let _ = write!(out, "{n}");
                            }
                            Dim::Unknown => out.push('?'),
                            Dim::Param(p) => name_into(p, is_ident(p), out),
                        }
                    }
                }
            }
            out.push(']');
        }
    }
}

/// The static type of a tensor, as a value type.
fn tensor_type(t: &Tensor) -> ValueType {
    ValueType::Tensor(TensorType {
        elem: t.dtype,
        shape: Some(t.dims.iter().map(|&d| Dim::Known(d)).collect()),
    })
}

impl<'o> Printer<'o> {
    pub fn new(opts: &'o PrintOptions) -> Printer<'o> {
        Printer {
            opts,
            out: String::new(),
            depth: 0,
        }
    }

    pub fn model(mut self, m: &Model) -> String {
        let _ = write!(self.out, "model ir_version={}", m.ir_version);
        for (key, v) in [
            ("producer_name", &m.producer_name),
            ("producer_version", &m.producer_version),
            ("domain", &m.domain),
        ] {
            if let Some(v) = v {
                let _ = write!(self.out, " {key}=");
                quote_bytes(v.as_bytes(), &mut self.out);
            }
        }
        if let Some(v) = m.model_version {
            let _ = write!(self.out, " model_version={v}");
        }
        self.out.push('\n');
        for o in &m.opset_imports {
            self.out.push_str("opset ");
            if !o.domain.is_empty() {
                let bare = o
                    .domain
                    .starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                    && is_bare_name(&o.domain);
                name_into(&o.domain, bare, &mut self.out);
                self.out.push(' ');
            }
            let _ = writeln!(self.out, "{}", o.version);
        }
        let g = &m.graph;
        let omitted: Vec<String> = [
            ("function", m.functions.len()),
            ("training info", m.training_info.len()),
            ("device configuration", m.configuration.len()),
            ("sparse initializer", g.extras.sparse_initializers.len()),
            (
                "quantization annotation",
                g.extras.quantization_annotation.len(),
            ),
        ]
        .into_iter()
        .filter(|&(_, n)| n > 0)
        .map(|(what, n)| format!("{n} {what}{}", if n == 1 { "" } else { "s" }))
        .collect();
        if !omitted.is_empty() {
            let _ = writeln!(self.out, "# not shown: {}", omitted.join(", "));
        }
        self.graph(g)
    }

    pub fn graph(mut self, g: &Graph) -> String {
        self.graph_block(g);
        self.out.push('\n');
        self.out
    }

    /// `graph name(...) -> (...) {`, the statements one level deeper, and the closing `}` at
    /// this graph's own indentation (no newline after it).
    fn graph_block(&mut self, g: &Graph) {
        self.out.push_str("graph ");
        if !g.name.is_empty() {
            name_into(&g.name, is_bare_name(&g.name), &mut self.out);
        }
        self.params(g, g.inputs());
        self.out.push_str(" -> ");
        self.params(g, g.outputs());
        self.out.push_str(" {\n");
        for v in g.initializer_ids() {
            self.init(g, v);
        }
        let order = match g.topo_order() {
            Ok(order) => order,
            Err(e) => {
                self.indent(1);
                let _ = writeln!(self.out, "# warning: {e}; ops follow in insertion order");
                g.op_ids()
            }
        };
        for op in order {
            self.op(g, op);
        }
        self.indent(0);
        self.out.push('}');
    }

    /// The indentation of a line `extra` levels inside the current graph.
    fn indent(&mut self, extra: usize) {
        for _ in 0..2 * (self.depth + extra) {
            self.out.push(' ');
        }
    }

    fn value(&mut self, g: &Graph, v: ValueId) {
        let name = &g.value(v).name;
        self.out.push('%');
        name_into(name, is_bare_name(name), &mut self.out);
    }

    fn slot(&mut self, g: &Graph, v: Option<ValueId>) {
        match v {
            Some(v) => self.value(g, v),
            None => self.out.push('_'),
        }
    }

    fn params(&mut self, g: &Graph, ids: &[ValueId]) {
        self.out.push('(');
        for (i, &v) in ids.iter().enumerate() {
            if i > 0 {
                self.out.push_str(", ");
            }
            self.value(g, v);
            if g.value(v).ty.is_some() {
                self.out.push_str(": ");
                type_into(&g.value(v).ty, &mut self.out);
            }
        }
        self.out.push(')');
    }

    fn init(&mut self, g: &Graph, v: ValueId) {
        let t = g.initializer(v).expect("listed initializer");
        let ty = &g.value(v).ty;
        self.indent(1);
        self.out.push_str("init ");
        self.value(g, v);
        let tty = tensor_type(t);
        if g.is_graph_input(v) || ty.is_none() {
            // The type lives in the signature, or the value has none: the tensor carries its own.
            self.out.push_str(" = ");
            self.tensor(t);
        } else if ty.as_ref() == Some(&tty) {
            self.out.push_str(": ");
            type_into(ty, &mut self.out);
            self.out.push_str(" = ");
            self.payload(t);
        } else {
            self.out.push_str(": ");
            type_into(ty, &mut self.out);
            self.out.push_str(" = ");
            self.tensor(t);
        }
        self.out.push('\n');
    }

    /// `dtype[dims] payload`.
    fn tensor(&mut self, t: &Tensor) {
        type_into(&Some(tensor_type(t)), &mut self.out);
        self.out.push(' ');
        self.payload(t);
    }

    fn payload(&mut self, t: &Tensor) {
        let small = t.numel() <= self.opts.max_inline_elements;
        match &t.data {
            TensorData::Strings(ss) if small => {
                self.out.push('[');
                for (i, s) in ss.iter().enumerate() {
                    if i > 0 {
                        self.out.push_str(", ");
                    }
                    quote_bytes(s, &mut self.out);
                }
                self.out.push(']');
            }
            TensorData::Raw(raw) => match elem_width(t.dtype) {
                Some(w) if small => {
                    self.out.push('[');
                    for (i, e) in raw.chunks_exact(w).enumerate() {
                        if i > 0 {
                            self.out.push_str(", ");
                        }
                        print_elem(t.dtype, e, &mut self.out);
                    }
                    self.out.push(']');
                }
                Some(_) => match detect_generator(t.dtype, raw) {
                    Some(gen) => self.out.push_str(&gen),
                    None => self.out.push_str(&digest(t)),
                },
                None if small => {
                    self.out.push_str("hex(");
                    for b in raw.iter() {
                        let _ = write!(self.out, "{b:02x}");
                    }
                    self.out.push(')');
                }
                None => self.out.push_str(&digest(t)),
            },
            _ => self.out.push_str(&digest(t)),
        }
    }

    fn op(&mut self, g: &Graph, id: OpId) {
        let op = g.op(id);
        let d = &op.desc;
        self.indent(1);
        if op.outputs().is_empty() {
            self.out.push_str("()");
        }
        for (i, &v) in op.outputs().iter().enumerate() {
            if i > 0 {
                self.out.push_str(", ");
            }
            self.slot(g, v);
        }
        self.out.push_str(" = ");
        if !d.domain.is_empty() {
            let bare = d
                .domain
                .split('.')
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
            name_into(&d.domain, bare, &mut self.out);
            self.out.push('.');
        }
        name_into(&d.op_type, is_ident(&d.op_type), &mut self.out);
        self.out.push('(');
        for (i, &v) in op.inputs().iter().enumerate() {
            if i > 0 {
                self.out.push_str(", ");
            }
            self.slot(g, v);
        }
        self.out.push(')');
        if !d.attrs.is_empty() {
            self.out.push_str(" {");
            for (i, a) in d.attrs.iter().enumerate() {
                if i > 0 {
                    self.out.push_str(", ");
                }
                self.attr(a);
            }
            self.out.push('}');
        }
        let named: Vec<ValueId> = op.outputs().iter().flatten().copied().collect();
        if named.iter().any(|&v| g.value(v).ty.is_some()) {
            self.out.push_str(" : ");
            for (i, &v) in named.iter().enumerate() {
                if i > 0 {
                    self.out.push_str(", ");
                }
                type_into(&g.value(v).ty, &mut self.out);
            }
        }
        if !d.name.is_empty() {
            self.out.push_str(" name=");
            quote_bytes(d.name.as_bytes(), &mut self.out);
        }
        if !d.overload.is_empty() {
            self.out.push_str(" overload=");
            quote_bytes(d.overload.as_bytes(), &mut self.out);
        }
        if !op.captures().is_empty() {
            self.out.push_str(" captures=[");
            for (i, &v) in op.captures().iter().enumerate() {
                if i > 0 {
                    self.out.push_str(", ");
                }
                self.value(g, v);
            }
            self.out.push(']');
        }
        if !d.annotations.is_empty() {
            let mut notes: Vec<&(String, String)> = d.annotations.iter().collect();
            notes.sort();
            self.out.push_str(" @{");
            for (i, (k, v)) in notes.into_iter().enumerate() {
                if i > 0 {
                    self.out.push_str(", ");
                }
                name_into(k, is_bare_name(k), &mut self.out);
                self.out.push('=');
                quote_bytes(v.as_bytes(), &mut self.out);
            }
            self.out.push('}');
        }
        self.out.push('\n');
    }

    /// A subgraph attribute value: its block one level deeper, closed at the op's indentation.
    fn subgraph(&mut self, sub: &Graph) {
        self.depth += 1;
        self.graph_block(sub);
        self.depth -= 1;
    }

    fn attr(&mut self, a: &Attribute) {
        name_into(&a.name, is_bare_name(&a.name), &mut self.out);
        self.out.push('=');
        let list = |out: &mut String, kind: &str, n: usize| {
            if n == 0 {
                out.push_str(kind);
            }
            out.push('[');
        };
        match &a.value {
            AttrValue::Int(v) => {
                let _ = write!(self.out, "{v}");
            }
            AttrValue::Float(v) => {
                print_elem(crate::DataType::Float, &v.to_le_bytes(), &mut self.out)
            }
            AttrValue::String(s) => quote_bytes(s, &mut self.out),
            AttrValue::Tensor(t) => self.tensor(t),
            AttrValue::Ints(vs) => {
                list(&mut self.out, "ints", vs.len());
                for (i, v) in vs.iter().enumerate() {
                    if i > 0 {
                        self.out.push_str(", ");
                    }
                    let _ = write!(self.out, "{v}");
                }
                self.out.push(']');
            }
            AttrValue::Floats(vs) => {
                list(&mut self.out, "floats", vs.len());
                for (i, v) in vs.iter().enumerate() {
                    if i > 0 {
                        self.out.push_str(", ");
                    }
                    print_elem(crate::DataType::Float, &v.to_le_bytes(), &mut self.out);
                }
                self.out.push(']');
            }
            AttrValue::Strings(vs) => {
                list(&mut self.out, "strings", vs.len());
                for (i, v) in vs.iter().enumerate() {
                    if i > 0 {
                        self.out.push_str(", ");
                    }
                    quote_bytes(v, &mut self.out);
                }
                self.out.push(']');
            }
            AttrValue::Tensors(ts) => {
                list(&mut self.out, "tensors", ts.len());
                for (i, t) in ts.iter().enumerate() {
                    if i > 0 {
                        self.out.push_str(", ");
                    }
                    self.tensor(t);
                }
                self.out.push(']');
            }
            AttrValue::Graph(sub) => self.subgraph(sub),
            AttrValue::Graphs(subs) => {
                list(&mut self.out, "graphs", subs.len());
                for (i, sub) in subs.iter().enumerate() {
                    if i > 0 {
                        self.out.push_str(", ");
                    }
                    self.subgraph(sub);
                }
                self.out.push(']');
            }
            AttrValue::Opaque { .. } => {
                let _ = write!(self.out, "<{}>", a.kind_name());
            }
        }
    }
}
