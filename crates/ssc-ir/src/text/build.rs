//! Turns a parsed text into a [`Model`], checking what the grammar cannot: that every value is
//! defined once and before use, and that the types written for one value agree.

use std::collections::HashMap;

use super::parse::{GraphAst, ModelAst, Spanned};
use super::{error_at, ParseError, DEFAULT_IR_VERSION, DEFAULT_OPSET};
use crate::{AttrValue, Graph, Model, OpsetImport, ValueId, ValueType};

type Result<T> = std::result::Result<T, ParseError>;

pub(super) fn model(src: &str, ast: ModelAst) -> Result<Model> {
    let mut m = Model::default();
    let mut opsets = ast.opsets;
    match ast.header {
        Some(h) => {
            m.ir_version = h.ir_version.unwrap_or(0);
            m.producer_name = h.producer_name;
            m.producer_version = h.producer_version;
            m.domain = h.domain;
            m.model_version = h.model_version;
        }
        None => {
            m.ir_version = DEFAULT_IR_VERSION;
            if opsets.is_empty() {
                opsets.push(OpsetImport {
                    domain: String::new(),
                    version: DEFAULT_OPSET,
                });
            }
        }
    }
    m.opset_imports = opsets;
    m.graph = graph(src, ast.graph, &|_| false)?;
    // As on import: before IR version 4 every initializer is also a graph input, yet constant.
    set_legacy(&mut m.graph, m.ir_version < 4);
    Ok(m)
}

/// Sets the IR < 4 initializer rule on a graph and every subgraph in it.
fn set_legacy(g: &mut Graph, legacy: bool) {
    g.legacy_initializer_inputs = legacy;
    for op in g.op_ids() {
        for a in &mut g.desc_mut(op).attrs {
            match &mut a.value {
                AttrValue::Graph(sub) => set_legacy(sub, legacy),
                AttrValue::Graphs(subs) => subs.iter_mut().for_each(|s| set_legacy(s, legacy)),
                _ => {}
            }
        }
    }
}

/// Where each value was defined, for "already defined" and "used before" messages.
struct Defs<'a> {
    src: &'a str,
    at: HashMap<String, usize>,
}

impl Defs<'_> {
    fn define(&mut self, (name, at): &Spanned) -> Result<()> {
        if let Some(&first) = self.at.get(name) {
            let (line, col) = super::line_col(self.src, first);
            return Err(error_at(
                self.src,
                *at,
                format!("value %{name} is already defined at {line}:{col}"),
            ));
        }
        self.at.insert(name.clone(), *at);
        Ok(())
    }
}

fn add_value(
    src: &str,
    g: &mut Graph,
    (name, at): &Spanned,
    ty: Option<ValueType>,
) -> Result<ValueId> {
    g.add_value(name.clone(), ty)
        .map_err(|e| error_at(src, *at, e.to_string()))
}

/// Builds a graph; `outer` tells whether a name is visible in the enclosing graphs, which a
/// subgraph reads as a value nothing in it defines (the main graph has no enclosing scope).
fn graph(src: &str, ast: GraphAst, outer: &dyn Fn(&str) -> bool) -> Result<Graph> {
    let mut g = Graph::new(ast.name);
    let mut defs = Defs {
        src,
        at: HashMap::new(),
    };
    for p in &ast.inputs {
        defs.define(&p.name)?;
    }
    let input_index: HashMap<&str, usize> = ast
        .inputs
        .iter()
        .enumerate()
        .map(|(i, p)| (p.name.0.as_str(), i))
        .collect();
    let mut input_ids: Vec<Option<ValueId>> = vec![None; ast.inputs.len()];

    // Initializers first, so that their creation order (which orders the tensor store) is the
    // order of the `init` lines.
    for init in ast.inits {
        let (name, at) = &init.name;
        // `init %w: float[4] = ...` types the value; `init %w = float[4] ...` and
        // `init %w: ? = float[4] ...` leave it untyped.
        let annotated = init.annotation.flatten();
        let id = match input_index.get(name.as_str()) {
            Some(&i) => {
                if input_ids[i].is_some() {
                    return Err(error_at(
                        src,
                        *at,
                        format!("initializer %{name} is defined twice"),
                    ));
                }
                let declared = &ast.inputs[i].ty;
                let ty = match (declared, annotated) {
                    (Some(d), Some(a)) if *d != a => {
                        return Err(error_at(
                            src,
                            *at,
                            format!(
                                "initializer %{name}'s type differs from graph input %{name}'s"
                            ),
                        ))
                    }
                    (Some(d), _) => Some(d.clone()),
                    (None, a) => a,
                };
                let id = add_value(src, &mut g, &init.name, ty)?;
                input_ids[i] = Some(id);
                id
            }
            None => {
                defs.define(&init.name)?;
                let id = add_value(src, &mut g, &init.name, annotated)?;
                let v = g.value_mut(id);
                v.in_value_info = v.ty.is_some();
                id
            }
        };
        g.set_initializer(id, init.tensor);
    }
    let mut inputs = Vec::with_capacity(ast.inputs.len());
    for (p, id) in ast.inputs.iter().zip(input_ids) {
        let id = match id {
            Some(id) => id,
            None => add_value(src, &mut g, &p.name, p.ty.clone())?,
        };
        inputs.push(id);
    }
    g.set_inputs(inputs);

    // Op outputs defined later, to tell "used before its definition" from "unknown".
    let mut later: HashMap<String, usize> = HashMap::new();
    for op in &ast.ops {
        for (name, at) in op.outputs.iter().flatten() {
            later.entry(name.clone()).or_insert(*at);
        }
    }
    let resolve = |g: &mut Graph, (name, at): &Spanned| -> Result<ValueId> {
        if let Some(id) = g.value_by_name(name) {
            return Ok(id);
        }
        if outer(name) {
            return add_value(src, g, &(name.clone(), *at), None);
        }
        Err(error_at(
            src,
            *at,
            match later.get(name) {
                Some(&def) => {
                    let (line, col) = super::line_col(src, def);
                    format!("value %{name} is used before its definition at {line}:{col}")
                }
                None => format!("unknown value %{name}"),
            },
        ))
    };

    for mut op in ast.ops {
        let inputs = op
            .inputs
            .iter()
            .map(|s| s.as_ref().map(|s| resolve(&mut g, s)).transpose())
            .collect::<Result<Vec<_>>>()?;
        // Subgraphs see every value defined so far here and in the enclosing graphs; the names
        // they read from outside become this op's captures.
        let mut derived: Vec<Spanned> = Vec::new();
        for (index, asts, list) in std::mem::take(&mut op.subgraphs) {
            let mut built = Vec::with_capacity(asts.len());
            for sub in asts {
                let at = op.outputs.iter().flatten().next().map_or(0, |s| s.1);
                let visible = |n: &str| g.value_by_name(n).is_some() || outer(n);
                let sg = graph(src, sub, &visible)?;
                for v in sg.free_values() {
                    derived.push((sg.value(v).name.clone(), at));
                }
                built.push(sg);
            }
            op.desc.attrs[index].value = if list {
                AttrValue::Graphs(built)
            } else {
                AttrValue::Graph(Box::new(built.pop().expect("one graph")))
            };
        }
        let named = op.outputs.iter().flatten().count();
        let mut types = match op.types {
            Some((tys, at)) => {
                if tys.len() != named {
                    return Err(error_at(
                        src,
                        at,
                        format!(
                            "{} type(s) for {named} named output(s): write one per output, `?` for none",
                            tys.len()
                        ),
                    ));
                }
                tys
            }
            None => vec![None; named],
        }
        .into_iter();
        let mut outputs = Vec::with_capacity(op.outputs.len());
        for out in &op.outputs {
            outputs.push(match out {
                None => None,
                Some(s) => {
                    defs.define(s)?;
                    let ty = types.next().expect("counted above");
                    let id = add_value(src, &mut g, s, ty)?;
                    let v = g.value_mut(id);
                    v.in_value_info = v.ty.is_some();
                    Some(id)
                }
            });
        }
        let captures = op
            .captures
            .iter()
            .chain(&derived)
            .map(|s| resolve(&mut g, s))
            .collect::<Result<Vec<_>>>()?;
        let id = g
            .add_op(op.desc, inputs, outputs)
            .expect("outputs are fresh values");
        for c in captures {
            g.add_capture(id, c);
        }
    }

    let mut outputs = Vec::with_capacity(ast.outputs.len());
    for p in &ast.outputs {
        let (name, at) = &p.name;
        let id = match g.value_by_name(name) {
            Some(id) => id,
            // A subgraph may return an enclosing value as it is.
            None if outer(name) => add_value(src, &mut g, &p.name, None)?,
            None => {
                return Err(error_at(
                    src,
                    *at,
                    format!("graph output %{name} is never defined"),
                ))
            }
        };
        if let Some(ty) = &p.ty {
            let v = g.value_mut(id);
            match &v.ty {
                Some(old) if old != ty => {
                    return Err(error_at(
                        src,
                        *at,
                        format!(
                            "graph output %{name}'s type differs from the one at its definition"
                        ),
                    ))
                }
                _ => v.ty = Some(ty.clone()),
            }
        }
        g.value_mut(id).in_value_info = false;
        outputs.push(id);
    }
    g.set_outputs(outputs);
    for id in g.inputs().to_vec() {
        g.value_mut(id).in_value_info = false;
    }
    Ok(g)
}
