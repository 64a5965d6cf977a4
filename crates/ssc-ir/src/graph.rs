//! The graph: a petgraph of op and value nodes, with initializers held in a tensor store.
//!
//! Ops and values are both petgraph nodes, so the graph is bipartite: an edge runs from a value
//! to each op that reads it, and from an op to each value it writes. An op's ordered input and
//! output lists (with `None` for ONNX's empty optional slots) are the source of truth for
//! argument order; the edges mirror them so that producers and consumers are found in O(degree).
//! All mutation goes through [`Graph`]'s methods, which keep the two in step.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};

use petgraph::stable_graph::{NodeIndex, StableDiGraph};
use petgraph::visit::EdgeRef;
use petgraph::Direction;

use crate::{Attribute, DataType, IrError, Tensor, ValueType};

/// Identifies a value (a tensor flowing through the graph).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueId(pub NodeIndex);

/// Identifies an op.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OpId(pub NodeIndex);

/// A value: a named tensor (or opaque-typed) edge of the dataflow.
#[derive(Clone, Debug, PartialEq)]
pub struct Value {
    pub name: String,
    pub ty: Option<ValueType>,
    pub doc_string: Option<String>,
    pub metadata: Vec<(String, String)>,
    /// Whether the type is written to the graph's `value_info` on export (inputs and outputs
    /// carry their own).
    pub in_value_info: bool,
    /// The type the model declared, kept only where shape inference found it wrong (a rank or
    /// a static dim that the ops do not compute): `ty` then holds what the ops compute, which
    /// every later stage uses, and export writes this declaration back unchanged, so a model
    /// goes out as it came in unless the caller fixes its types
    /// ([`Graph::fix_declared_types`]). Never printed by the text form.
    pub declared: Option<ValueType>,
    /// Creation order; export lists initializers and value_info in this order.
    pub order: u64,
}

/// The parts of an op other than its wiring.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct OpDesc {
    pub name: String,
    pub op_type: String,
    /// `""` is the default ONNX domain.
    pub domain: String,
    pub overload: String,
    pub attrs: Vec<Attribute>,
    pub doc_string: Option<String>,
    pub metadata: Vec<(String, String)>,
    /// Fields this IR does not interpret (device configurations), encoded by the I/O layer.
    pub extra: Vec<bytes::Bytes>,
    /// IR-only hints for later stages, such as the JIT's `epilogue` and `sparse` (see
    /// `ssc_passes::annotate`): key/value pairs sorted by key, each key once. The text form
    /// prints and parses them; they are never exported to ONNX. Use
    /// [`set_annotation`](Self::set_annotation) to keep the order.
    pub annotations: Vec<(String, String)>,
}

impl OpDesc {
    pub fn new(op_type: impl Into<String>) -> OpDesc {
        OpDesc {
            op_type: op_type.into(),
            ..OpDesc::default()
        }
    }

    pub fn with_name(mut self, name: impl Into<String>) -> OpDesc {
        self.name = name.into();
        self
    }

    pub fn with_attr(mut self, attr: Attribute) -> OpDesc {
        self.attrs.push(attr);
        self
    }

    /// The name messages call the node by: its name, or its op type when it has none.
    pub fn label(&self) -> String {
        if self.name.is_empty() {
            self.op_type.clone()
        } else {
            self.name.clone()
        }
    }

    /// True for ops of the default ONNX domain.
    pub fn is_onnx(&self) -> bool {
        self.domain.is_empty() || self.domain == "ai.onnx"
    }

    pub fn attr(&self, name: &str) -> Option<&Attribute> {
        self.attrs.iter().find(|a| a.name == name)
    }

    pub fn set_attr(&mut self, attr: Attribute) {
        match self.attrs.iter_mut().find(|a| a.name == attr.name) {
            Some(slot) => *slot = attr,
            None => self.attrs.push(attr),
        }
    }

    pub fn remove_attr(&mut self, name: &str) -> Option<Attribute> {
        let idx = self.attrs.iter().position(|a| a.name == name)?;
        Some(self.attrs.remove(idx))
    }

    /// The annotation `key`, if present.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Sets annotation `key` to `value`, replacing an earlier value and keeping the list sorted
    /// by key.
    pub fn set_annotation(&mut self, key: impl Into<String>, value: impl Into<String>) {
        let (key, value) = (key.into(), value.into());
        match self
            .annotations
            .binary_search_by(|(k, _)| k.as_str().cmp(&key))
        {
            Ok(i) => self.annotations[i].1 = value,
            Err(i) => self.annotations.insert(i, (key, value)),
        }
    }

    /// Removes annotation `key`, returning its value.
    pub fn remove_annotation(&mut self, key: &str) -> Option<String> {
        let idx = self.annotations.iter().position(|(k, _)| k == key)?;
        Some(self.annotations.remove(idx).1)
    }
}

/// An op: its description plus its wiring.
#[derive(Clone, Debug, PartialEq)]
pub struct Op {
    pub desc: OpDesc,
    inputs: Vec<Option<ValueId>>,
    outputs: Vec<Option<ValueId>>,
    captures: Vec<ValueId>,
    /// Position key; topological order breaks ties by it, so export keeps the original order.
    pub order: u64,
}

impl Op {
    pub fn inputs(&self) -> &[Option<ValueId>] {
        &self.inputs
    }
    pub fn outputs(&self) -> &[Option<ValueId>] {
        &self.outputs
    }
    /// Outer-scope values that the op's subgraph attributes read by name.
    pub fn captures(&self) -> &[ValueId] {
        &self.captures
    }
    /// The value at input `slot`, if the slot exists and is not empty.
    pub fn input(&self, slot: usize) -> Option<ValueId> {
        self.inputs.get(slot).copied().flatten()
    }
    /// The value at output `slot`, if the slot exists and is not empty.
    pub fn output(&self, slot: usize) -> Option<ValueId> {
        self.outputs.get(slot).copied().flatten()
    }
}

/// A petgraph node.
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    Op(Box<Op>),
    Value(Box<Value>),
}

/// A petgraph edge: which slot of the op it connects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Edge {
    /// value -> op, at this input slot
    Input(usize),
    /// value -> op, read by name inside a subgraph attribute
    Capture,
    /// op -> value, at this output slot
    Output(usize),
}

/// How an op uses a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Use {
    Input(usize),
    Capture,
}

/// Graph-level fields the IR does not interpret, kept verbatim for export.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GraphExtras {
    pub sparse_initializers: Vec<bytes::Bytes>,
    pub quantization_annotation: Vec<bytes::Bytes>,
    pub metadata: Vec<(String, String)>,
}

/// A computation graph.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    g: StableDiGraph<Node, Edge>,
    names: HashMap<String, ValueId>,
    inputs: Vec<ValueId>,
    outputs: Vec<ValueId>,
    initializers: BTreeMap<ValueId, Tensor>,
    next_order: u64,
    pub name: String,
    pub doc_string: Option<String>,
    /// Set for IR versions below 4, where every initializer is also listed as a graph input and
    /// is nonetheless a constant.
    pub legacy_initializer_inputs: bool,
    pub extras: GraphExtras,
}

/// Structural equality: the same name, interface, values (names, types, initializers, in
/// creation order) and ops (descriptions and wiring by value name, in topological order). Two
/// graphs built separately from one text or one ONNX graph compare equal.
impl PartialEq for Graph {
    fn eq(&self, other: &Graph) -> bool {
        let names = |g: &Graph, ids: &[ValueId]| -> Vec<String> {
            ids.iter().map(|&v| g.value(v).name.clone()).collect()
        };
        let values = |g: &Graph| {
            g.value_ids()
                .into_iter()
                .map(|v| {
                    let val = g.value(v);
                    (
                        val.name.clone(),
                        val.ty.clone(),
                        val.doc_string.clone(),
                        val.metadata.clone(),
                        val.in_value_info,
                        g.initializer(v).cloned(),
                    )
                })
                .collect::<Vec<_>>()
        };
        let ops = |g: &Graph| {
            let order = g.topo_order().unwrap_or_else(|_| g.op_ids());
            order
                .into_iter()
                .map(|o| {
                    let op = g.op(o);
                    let slots = |s: &[Option<ValueId>]| -> Vec<Option<String>> {
                        s.iter()
                            .map(|v| v.map(|v| g.value(v).name.clone()))
                            .collect()
                    };
                    (
                        op.desc.clone(),
                        slots(op.inputs()),
                        slots(op.outputs()),
                        names(g, op.captures()),
                    )
                })
                .collect::<Vec<_>>()
        };
        self.name == other.name
            && self.doc_string == other.doc_string
            && self.legacy_initializer_inputs == other.legacy_initializer_inputs
            && self.extras == other.extras
            && names(self, &self.inputs) == names(other, &other.inputs)
            && names(self, &self.outputs) == names(other, &other.outputs)
            && values(self) == values(other)
            && ops(self) == ops(other)
    }
}

impl Graph {
    pub fn new(name: impl Into<String>) -> Graph {
        Graph {
            name: name.into(),
            ..Graph::default()
        }
    }

    /// Read access to the underlying petgraph, for algorithms that walk it directly.
    pub fn petgraph(&self) -> &StableDiGraph<Node, Edge> {
        &self.g
    }

    fn bump(&mut self) -> u64 {
        self.next_order += 1;
        self.next_order
    }

    // ----- values -----

    /// Adds a value. Names are unique within a graph (ONNX's SSA rule).
    pub fn add_value(
        &mut self,
        name: impl Into<String>,
        ty: Option<ValueType>,
    ) -> Result<ValueId, IrError> {
        let name = name.into();
        if name.is_empty() {
            return Err(IrError::EmptyName);
        }
        if self.names.contains_key(&name) {
            return Err(IrError::DuplicateName(name));
        }
        let order = self.bump();
        let id = ValueId(self.g.add_node(Node::Value(Box::new(Value {
            name: name.clone(),
            ty,
            doc_string: None,
            metadata: Vec::new(),
            in_value_info: false,
            declared: None,
            order,
        }))));
        self.names.insert(name, id);
        Ok(id)
    }

    /// Adds a value with a fresh name derived from `base`.
    pub fn add_fresh_value(&mut self, base: &str, ty: Option<ValueType>) -> ValueId {
        let name = self.fresh_name(base);
        self.add_value(name, ty).expect("fresh names are unique")
    }

    /// A value name not yet used in this graph nor in any of its subgraphs (a new outer value
    /// must not be shadowed by, or shadow, a subgraph's own value).
    pub fn fresh_name(&self, base: &str) -> String {
        let base = if base.is_empty() { "v" } else { base };
        if !self.name_taken(base) {
            return base.to_string();
        }
        (1u64..)
            .map(|i| format!("{base}_{i}"))
            .find(|n| !self.name_taken(n))
            .expect("unbounded search")
    }

    /// Whether `name` names a value here or in a nested subgraph.
    fn name_taken(&self, name: &str) -> bool {
        self.names.contains_key(name)
            || self.g.node_weights().any(|n| match n {
                Node::Op(o) => o.desc.subgraphs().any(|(_, sub)| sub.name_taken(name)),
                Node::Value(_) => false,
            })
    }

    /// The values this graph reads without defining them: no op writes them and they are
    /// neither graph inputs nor initializers. In a subgraph these name values of the enclosing
    /// graphs (ONNX's outer-scope references); a main graph has none. In creation order.
    pub fn free_values(&self) -> Vec<ValueId> {
        self.value_ids()
            .into_iter()
            .filter(|&v| {
                self.producer(v).is_none()
                    && !self.is_graph_input(v)
                    && !self.initializers.contains_key(&v)
                    && self.is_used(v)
            })
            .collect()
    }

    pub fn value(&self, id: ValueId) -> &Value {
        match &self.g[id.0] {
            Node::Value(v) => v,
            Node::Op(_) => panic!("{id:?} is an op, not a value"),
        }
    }

    pub fn value_mut(&mut self, id: ValueId) -> &mut Value {
        match &mut self.g[id.0] {
            Node::Value(v) => v,
            Node::Op(_) => panic!("{id:?} is an op, not a value"),
        }
    }

    /// Drops every declaration that inference found wrong ([`Value::declared`]), so export
    /// writes the types the ops compute. Returns how many values changed.
    pub fn fix_declared_types(&mut self) -> usize {
        let mut fixed = 0;
        for v in self.value_ids() {
            if self.value_mut(v).declared.take().is_some() {
                fixed += 1;
            }
        }
        fixed
    }

    /// Renames a value, keeping names unique.
    pub fn rename_value(&mut self, id: ValueId, name: impl Into<String>) -> Result<(), IrError> {
        let name = name.into();
        if name == self.value(id).name {
            return Ok(());
        }
        if self.names.contains_key(&name) {
            return Err(IrError::DuplicateName(name));
        }
        let old = std::mem::replace(&mut self.value_mut(id).name, name.clone());
        self.names.remove(&old);
        self.names.insert(name, id);
        Ok(())
    }

    pub fn value_by_name(&self, name: &str) -> Option<ValueId> {
        self.names.get(name).copied()
    }

    /// All values, in creation order.
    pub fn value_ids(&self) -> Vec<ValueId> {
        let mut ids: Vec<ValueId> = self
            .g
            .node_indices()
            .filter(|&n| matches!(self.g[n], Node::Value(_)))
            .map(ValueId)
            .collect();
        ids.sort_by_key(|&v| self.value(v).order);
        ids
    }

    /// Removes a value that no op reads or writes and that is not a graph input or output.
    pub fn remove_value(&mut self, id: ValueId) {
        debug_assert!(self
            .g
            .edges_directed(id.0, Direction::Incoming)
            .next()
            .is_none());
        debug_assert!(self
            .g
            .edges_directed(id.0, Direction::Outgoing)
            .next()
            .is_none());
        self.inputs.retain(|&v| v != id);
        self.outputs.retain(|&v| v != id);
        self.initializers.remove(&id);
        if let Some(Node::Value(v)) = self.g.remove_node(id.0) {
            self.names.remove(&v.name);
        }
    }

    // ----- interface -----

    pub fn inputs(&self) -> &[ValueId] {
        &self.inputs
    }
    pub fn outputs(&self) -> &[ValueId] {
        &self.outputs
    }
    pub fn set_inputs(&mut self, inputs: Vec<ValueId>) {
        self.inputs = inputs;
    }
    pub fn set_outputs(&mut self, outputs: Vec<ValueId>) {
        self.outputs = outputs;
    }
    pub fn is_graph_input(&self, v: ValueId) -> bool {
        self.inputs.contains(&v)
    }
    pub fn is_graph_output(&self, v: ValueId) -> bool {
        self.outputs.contains(&v)
    }

    // ----- tensor store -----

    pub fn initializer(&self, v: ValueId) -> Option<&Tensor> {
        self.initializers.get(&v)
    }
    pub fn set_initializer(&mut self, v: ValueId, t: Tensor) {
        self.initializers.insert(v, t);
    }
    pub fn remove_initializer(&mut self, v: ValueId) -> Option<Tensor> {
        self.initializers.remove(&v)
    }
    /// Initializers in value creation order.
    pub fn initializer_ids(&self) -> Vec<ValueId> {
        let mut ids: Vec<ValueId> = self.initializers.keys().copied().collect();
        ids.sort_by_key(|&v| self.value(v).order);
        ids
    }

    /// The constant value of `v`: an initializer that a caller cannot override. Since IR version
    /// 4, an initializer that is also a graph input is only a default, so it is not constant.
    pub fn constant(&self, v: ValueId) -> Option<&Tensor> {
        let t = self.initializers.get(&v)?;
        if !self.legacy_initializer_inputs && self.inputs.contains(&v) {
            return None;
        }
        Some(t)
    }

    // ----- ops -----

    /// Adds an op reading `inputs` and writing `outputs`. Each output must not have a producer yet.
    pub fn add_op(
        &mut self,
        desc: OpDesc,
        inputs: Vec<Option<ValueId>>,
        outputs: Vec<Option<ValueId>>,
    ) -> Result<OpId, IrError> {
        for v in outputs.iter().flatten() {
            if let Some((p, _)) = self.producer(*v) {
                return Err(IrError::MultipleProducers {
                    value: self.value(*v).name.clone(),
                    first: self.op(p).desc.name.clone(),
                    second: desc.name.clone(),
                });
            }
        }
        let order = self.bump() << 20;
        let id = OpId(self.g.add_node(Node::Op(Box::new(Op {
            desc,
            inputs: inputs.clone(),
            outputs: outputs.clone(),
            captures: Vec::new(),
            order,
        }))));
        for (slot, v) in inputs.iter().enumerate() {
            if let Some(v) = v {
                self.g.add_edge(v.0, id.0, Edge::Input(slot));
            }
        }
        for (slot, v) in outputs.iter().enumerate() {
            if let Some(v) = v {
                self.g.add_edge(id.0, v.0, Edge::Output(slot));
            }
        }
        Ok(id)
    }

    /// Places `op` immediately before `anchor` in the tie-break order (used when a pass replaces
    /// one op with several, so the export order stays close to the original).
    pub fn place_before(&mut self, op: OpId, anchor: OpId) {
        let a = self.op(anchor).order;
        // Find the largest order below the anchor, and place between.
        let prev = self
            .op_ids()
            .into_iter()
            .filter(|&o| o != op)
            .map(|o| self.op(o).order)
            .filter(|&o| o < a)
            .max()
            .unwrap_or(0);
        let slot = if a - prev >= 2 {
            prev + (a - prev) / 2
        } else {
            a
        };
        self.op_mut(op).order = slot;
    }

    pub fn op(&self, id: OpId) -> &Op {
        match &self.g[id.0] {
            Node::Op(o) => o,
            Node::Value(_) => panic!("{id:?} is a value, not an op"),
        }
    }

    fn op_mut(&mut self, id: OpId) -> &mut Op {
        match &mut self.g[id.0] {
            Node::Op(o) => o,
            Node::Value(_) => panic!("{id:?} is a value, not an op"),
        }
    }

    /// Mutable access to an op's description (name, type, attributes); wiring changes go through
    /// [`Graph::set_input`] and friends.
    pub fn desc_mut(&mut self, id: OpId) -> &mut OpDesc {
        &mut self.op_mut(id).desc
    }

    /// All ops, in order-key order (not necessarily topological).
    pub fn op_ids(&self) -> Vec<OpId> {
        let mut ids: Vec<OpId> = self
            .g
            .node_indices()
            .filter(|&n| matches!(self.g[n], Node::Op(_)))
            .map(OpId)
            .collect();
        ids.sort_by_key(|&o| (self.op(o).order, o));
        ids
    }

    pub fn op_count(&self) -> usize {
        self.g
            .node_indices()
            .filter(|&n| matches!(self.g[n], Node::Op(_)))
            .count()
    }

    /// The op writing `v`, with the output slot.
    pub fn producer(&self, v: ValueId) -> Option<(OpId, usize)> {
        self.g
            .edges_directed(v.0, Direction::Incoming)
            .find_map(|e| match e.weight() {
                Edge::Output(slot) => Some((OpId(e.source()), *slot)),
                _ => None,
            })
    }

    /// Every use of `v`, sorted by op order then slot, so callers see a deterministic order.
    pub fn consumers(&self, v: ValueId) -> Vec<(OpId, Use)> {
        let mut uses: Vec<(OpId, Use)> = self
            .g
            .edges_directed(v.0, Direction::Outgoing)
            .map(|e| {
                let u = match e.weight() {
                    Edge::Input(s) => Use::Input(*s),
                    Edge::Capture => Use::Capture,
                    Edge::Output(_) => unreachable!("values have no outgoing output edges"),
                };
                (OpId(e.target()), u)
            })
            .collect();
        uses.sort_by_key(|&(o, u)| (self.op(o).order, o, u));
        uses
    }

    /// The single op input reading `v`, when that is `v`'s only use: not a graph output, not
    /// read by a subgraph, not read twice. Rewrites that absorb a producer into its consumer
    /// (and the JIT's fused epilogues) need this.
    pub fn sole_consumer(&self, v: ValueId) -> Option<(OpId, usize)> {
        if self.is_graph_output(v) || self.is_captured(v) {
            return None;
        }
        match self.consumers(v).as_slice() {
            [(op, Use::Input(slot))] => Some((*op, *slot)),
            _ => None,
        }
    }

    /// The fully static shape of `v`, when its declared type is a tensor of element type
    /// `elem` with every dimension known.
    pub fn static_shape(&self, v: ValueId, elem: DataType) -> Option<Vec<usize>> {
        let t = self.value(v).ty.as_ref()?.tensor()?;
        (t.elem == elem).then(|| t.static_shape())?
    }

    /// True when some subgraph reads `v` by name, so it cannot be renamed or replaced.
    pub fn is_captured(&self, v: ValueId) -> bool {
        self.g
            .edges_directed(v.0, Direction::Outgoing)
            .any(|e| *e.weight() == Edge::Capture)
    }

    /// Whether anything reads `v`: an op, a subgraph or the graph's outputs.
    pub fn is_used(&self, v: ValueId) -> bool {
        self.outputs.contains(&v)
            || self
                .g
                .edges_directed(v.0, Direction::Outgoing)
                .next()
                .is_some()
    }

    /// Points input `slot` of `op` at `v` (or empties it), growing the input list if needed.
    pub fn set_input(&mut self, op: OpId, slot: usize, v: Option<ValueId>) {
        let old = self.op(op).input(slot);
        if let Some(old) = old {
            let e = self
                .g
                .edges_connecting(old.0, op.0)
                .find(|e| *e.weight() == Edge::Input(slot))
                .map(|e| e.id())
                .expect("edge mirrors input list");
            self.g.remove_edge(e);
        }
        let o = self.op_mut(op);
        if o.inputs.len() <= slot {
            o.inputs.resize(slot + 1, None);
        }
        o.inputs[slot] = v;
        if let Some(v) = v {
            self.g.add_edge(v.0, op.0, Edge::Input(slot));
        }
    }

    /// Replaces the whole input list of `op`.
    pub fn set_inputs_of(&mut self, op: OpId, inputs: Vec<Option<ValueId>>) {
        let n = self.op(op).inputs.len();
        for slot in 0..n {
            self.set_input(op, slot, None);
        }
        self.op_mut(op).inputs.clear();
        for (slot, v) in inputs.into_iter().enumerate() {
            self.set_input(op, slot, v);
        }
    }

    /// Drops trailing empty input slots (ONNX allows omitting them).
    pub fn trim_inputs(&mut self, op: OpId) {
        let o = self.op_mut(op);
        while o.inputs.last() == Some(&None) {
            o.inputs.pop();
        }
    }

    /// Points output `slot` of `op` at `v` (or empties it). `v` must have no other producer.
    pub fn set_output(&mut self, op: OpId, slot: usize, v: Option<ValueId>) -> Result<(), IrError> {
        if let Some(v) = v {
            if let Some((p, _)) = self.producer(v) {
                if p != op || self.op(op).output(slot) != Some(v) {
                    return Err(IrError::MultipleProducers {
                        value: self.value(v).name.clone(),
                        first: self.op(p).desc.name.clone(),
                        second: self.op(op).desc.name.clone(),
                    });
                }
                return Ok(());
            }
        }
        if let Some(old) = self.op(op).output(slot) {
            let e = self
                .g
                .edges_connecting(op.0, old.0)
                .next()
                .map(|e| e.id())
                .expect("edge mirrors output list");
            self.g.remove_edge(e);
        }
        let o = self.op_mut(op);
        if o.outputs.len() <= slot {
            o.outputs.resize(slot + 1, None);
        }
        o.outputs[slot] = v;
        if let Some(v) = v {
            self.g.add_edge(op.0, v.0, Edge::Output(slot));
        }
        Ok(())
    }

    /// Records that a subgraph attribute of `op` reads `v` from the outer scope.
    pub fn add_capture(&mut self, op: OpId, v: ValueId) {
        if !self.op(op).captures.contains(&v) {
            self.op_mut(op).captures.push(v);
            self.g.add_edge(v.0, op.0, Edge::Capture);
        }
    }

    /// Redirects every op input that reads `old` to read `new`. Captures and graph outputs are
    /// left alone: subgraphs name `old` and graph outputs are part of the interface, so callers
    /// must check [`Graph::is_captured`] and [`Graph::is_graph_output`] first.
    pub fn replace_input_uses(&mut self, old: ValueId, new: ValueId) {
        for (op, u) in self.consumers(old) {
            if let Use::Input(slot) = u {
                self.set_input(op, slot, Some(new));
            }
        }
    }

    /// Removes an op and its edges. Its output values stay, without a producer.
    pub fn remove_op(&mut self, op: OpId) {
        self.g.remove_node(op.0);
    }

    /// Ops in topological order; ties are broken by the order key so the result is deterministic
    /// and close to the original node order.
    pub fn topo_order(&self) -> Result<Vec<OpId>, IrError> {
        let ops = self.op_ids();
        let mut indeg: HashMap<OpId, usize> = HashMap::with_capacity(ops.len());
        for &o in &ops {
            let op = self.op(o);
            let n = op
                .inputs
                .iter()
                .flatten()
                .chain(op.captures.iter())
                .filter(|&&v| self.producer(v).is_some())
                .count();
            indeg.insert(o, n);
        }
        let mut ready: BinaryHeap<Reverse<(u64, OpId)>> = ops
            .iter()
            .filter(|o| indeg[o] == 0)
            .map(|&o| Reverse((self.op(o).order, o)))
            .collect();
        let mut out = Vec::with_capacity(ops.len());
        while let Some(Reverse((_, o))) = ready.pop() {
            out.push(o);
            for v in self.op(o).outputs.iter().flatten() {
                for e in self.g.edges_directed(v.0, Direction::Outgoing) {
                    let c = OpId(e.target());
                    let d = indeg.get_mut(&c).expect("consumer is an op");
                    *d -= 1;
                    if *d == 0 {
                        ready.push(Reverse((self.op(c).order, c)));
                    }
                }
            }
        }
        if out.len() != ops.len() {
            let stuck = ops
                .iter()
                .find(|o| indeg[o] > 0)
                .map(|&o| self.op(o).desc.name.clone())
                .unwrap_or_default();
            return Err(IrError::Cycle(stuck));
        }
        Ok(out)
    }

    /// A display name for an op: its name, or `op_type#index` when unnamed.
    pub fn op_label(&self, op: OpId) -> String {
        let d = &self.op(op).desc;
        if d.name.is_empty() {
            format!("{}#{}", d.op_type, op.0.index())
        } else {
            d.name.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain() -> (Graph, ValueId, ValueId, ValueId, OpId, OpId) {
        let mut g = Graph::new("t");
        let x = g.add_value("x", None).unwrap();
        let y = g.add_value("y", None).unwrap();
        let z = g.add_value("z", None).unwrap();
        let b = g
            .add_op(
                OpDesc::new("Relu").with_name("b"),
                vec![Some(y)],
                vec![Some(z)],
            )
            .unwrap();
        let a = g
            .add_op(
                OpDesc::new("Relu").with_name("a"),
                vec![Some(x)],
                vec![Some(y)],
            )
            .unwrap();
        g.set_inputs(vec![x]);
        g.set_outputs(vec![z]);
        (g, x, y, z, a, b)
    }

    #[test]
    fn topo_order_respects_edges_not_insertion() {
        let (g, ..) = chain();
        let names: Vec<_> = g
            .topo_order()
            .unwrap()
            .into_iter()
            .map(|o| g.op(o).desc.name.clone())
            .collect();
        assert_eq!(names, ["a", "b"]);
    }

    #[test]
    fn rewiring_keeps_edges_in_step() {
        let (mut g, x, y, _z, a, b) = chain();
        g.replace_input_uses(y, x);
        assert_eq!(g.consumers(y), vec![]);
        assert_eq!(g.consumers(x).len(), 2);
        assert_eq!(g.op(b).input(0), Some(x));
        g.remove_op(a);
        assert!(g.producer(y).is_none());
        g.remove_value(y);
        assert!(g.value_by_name("y").is_none());
    }

    #[test]
    fn duplicate_producers_and_names_are_rejected() {
        let (mut g, x, y, ..) = chain();
        assert!(g.add_value("x", None).is_err());
        let r = g.add_op(OpDesc::new("Neg"), vec![Some(x)], vec![Some(y)]);
        assert!(matches!(r, Err(IrError::MultipleProducers { .. })));
    }

    #[test]
    fn cycles_are_reported() {
        let mut g = Graph::new("c");
        let a = g.add_value("a", None).unwrap();
        let b = g.add_value("b", None).unwrap();
        g.add_op(
            OpDesc::new("Relu").with_name("p"),
            vec![Some(a)],
            vec![Some(b)],
        )
        .unwrap();
        g.add_op(
            OpDesc::new("Relu").with_name("q"),
            vec![Some(b)],
            vec![Some(a)],
        )
        .unwrap();
        assert!(matches!(g.topo_order(), Err(IrError::Cycle(_))));
    }

    #[test]
    fn initializers_behind_inputs_are_not_constant() {
        let mut g = Graph::new("i");
        let w = g.add_value("w", None).unwrap();
        g.set_initializer(w, Tensor::from_f32(vec![1], &[1.0]));
        assert!(g.constant(w).is_some());
        g.set_inputs(vec![w]);
        assert!(g.constant(w).is_none());
        g.legacy_initializer_inputs = true;
        assert!(g.constant(w).is_some());
    }
}
