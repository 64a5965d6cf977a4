//! Rules for the ops of detection post-processing and index arithmetic: TopK,
//! NonMaxSuppression, GatherND, OneHot, Einsum and GridSample.

use std::collections::BTreeMap;

use ssc_ir::{DataType, Dim};

use super::{one, rank_only, tt, Cx, Out};
use crate::args::Arg;
use crate::infer::dims::{broadcast, dim_of, unify};
use crate::util::norm_axis;

pub(super) fn top_k(cx: &Cx<'_>) -> Out {
    let Some(elem) = cx.elem(0) else {
        return Ok(vec![None, rank_only(DataType::Int64)]);
    };
    let Some(x) = cx.shape(0) else {
        return Ok(vec![rank_only(elem), rank_only(DataType::Int64)]);
    };
    let axis = cx.view.int_attr("axis", -1)?;
    let a = norm_axis(axis, x.len()).ok_or_else(|| format!("axis {axis} out of range"))?;
    let k = if cx.opset() < 10 {
        Arg::Known(vec![cx.view.int_attr("k", -1)?])
    } else {
        cx.view.ints_input(1)
    };
    let mut out = x.to_vec();
    out[a] = match k {
        Arg::Known(v) if v.len() == 1 => dim_of(v[0], "k")?,
        Arg::Known(v) => return Err(format!("K must hold one value, not {}", v.len())),
        _ => Dim::Unknown,
    };
    Ok(vec![tt(elem, out.clone()), tt(DataType::Int64, out)])
}

pub(super) fn non_max_suppression(_cx: &Cx<'_>) -> Out {
    one(tt(DataType::Int64, vec![Dim::Unknown, Dim::Known(3)]))
}

pub(super) fn gather_nd(cx: &Cx<'_>) -> Out {
    let Some(elem) = cx.elem(0) else {
        return one(None);
    };
    let (Some(d), Some(i)) = (cx.shape(0), cx.shape(1)) else {
        return one(rank_only(elem));
    };
    let b = usize::try_from(cx.view.int_attr("batch_dims", 0)?).map_err(|e| e.to_string())?;
    let Some(k) = i.last().and_then(Dim::known) else {
        return one(rank_only(elem));
    };
    if i.is_empty() || b + k > d.len() || b >= i.len() {
        return Err(format!(
            "batch_dims {b} with index tuples of {k} do not fit data rank {} and indices rank {}",
            d.len(),
            i.len()
        ));
    }
    let mut out = Vec::new();
    for (x, y) in d[..b].iter().zip(&i[..b]) {
        out.push(unify(x, y)?);
    }
    out.extend(i[b..i.len() - 1].iter().cloned());
    out.extend(d[b + k..].iter().cloned());
    one(tt(elem, out))
}

pub(super) fn one_hot(cx: &Cx<'_>) -> Out {
    let Some(elem) = cx.elem(2) else {
        return one(None);
    };
    let Some(ind) = cx.shape(0) else {
        return one(rank_only(elem));
    };
    let axis = cx.view.int_attr("axis", -1)?;
    let a = norm_axis(axis, ind.len() + 1).ok_or_else(|| format!("axis {axis} out of range"))?;
    let depth = match cx.view.konst(1).and_then(|t| t.to_f64_vec()) {
        Some(v) if v.len() == 1 => dim_of(v[0] as i64, "depth")?,
        _ => Dim::Unknown,
    };
    let mut out = ind.to_vec();
    out.insert(a, depth);
    one(tt(elem, out))
}

pub(super) fn grid_sample(cx: &Cx<'_>) -> Out {
    let Some(elem) = cx.elem(0) else {
        return one(None);
    };
    let (Some(x), Some(g)) = (cx.shape(0), cx.shape(1)) else {
        return one(rank_only(elem));
    };
    if x.len() < 3 || g.len() != x.len() {
        return Err(format!(
            "X rank {} and grid rank {} must be equal and at least 3",
            x.len(),
            g.len()
        ));
    }
    let mut out = vec![unify(&x[0], &g[0])?, x[1].clone()];
    out.extend(g[1..g.len() - 1].iter().cloned());
    one(tt(elem, out))
}

/// One term's labels: letters, and `None` where its `...` stands.
fn term_labels(term: &str) -> Result<Vec<Option<u8>>, String> {
    let mut out = Vec::new();
    let mut rest = term;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("...") {
            out.push(None);
            rest = r;
        } else {
            let c = rest.as_bytes()[0];
            if !c.is_ascii_alphabetic() {
                return Err(format!("equation term `{term}` has `{}`", c as char));
            }
            out.push(Some(c));
            rest = &rest[1..];
        }
    }
    Ok(out)
}

pub(super) fn einsum(cx: &Cx<'_>) -> Out {
    let Some(elem) = cx.elem(0) else {
        return one(None);
    };
    let eq: String = cx
        .view
        .string_attr("equation", "")?
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let (lhs, rhs) = match eq.split_once("->") {
        Some((l, r)) => (l, Some(r)),
        None => (eq.as_str(), None),
    };
    let terms: Vec<&str> = lhs.split(',').collect();
    if terms.len() != cx.view.inputs.len() {
        return Err(format!(
            "equation `{eq}` has {} operands but the node has {} inputs",
            terms.len(),
            cx.view.inputs.len()
        ));
    }
    let mut dims: BTreeMap<u8, Dim> = BTreeMap::new();
    let mut counts: BTreeMap<u8, usize> = BTreeMap::new();
    let mut ellipses: Vec<Vec<Dim>> = Vec::new();
    for (slot, term) in terms.iter().enumerate() {
        let labels = term_labels(term)?;
        let Some(shape) = cx.shape(slot) else {
            return one(rank_only(elem));
        };
        let named = labels.iter().filter(|l| l.is_some()).count();
        let covered = shape
            .len()
            .checked_sub(named)
            .filter(|&c| c == 0 || labels.contains(&None));
        let Some(covered) = covered else {
            return Err(format!(
                "term `{term}` does not fit an operand of rank {}",
                shape.len()
            ));
        };
        let mut axis = 0;
        for l in labels {
            match l {
                Some(c) => {
                    let d = &shape[axis];
                    let e = dims.entry(c).or_insert_with(|| d.clone());
                    *e = unify(e, d)?;
                    *counts.entry(c).or_default() += 1;
                    axis += 1;
                }
                None => {
                    ellipses.push(shape[axis..axis + covered].to_vec());
                    axis += covered;
                }
            }
        }
    }
    let refs: Vec<&[Dim]> = ellipses.iter().map(Vec::as_slice).collect();
    let ell = broadcast(&refs)?;
    let out =
        match rhs {
            Some(r) => {
                let mut out = Vec::new();
                for l in term_labels(r)? {
                    match l {
                        Some(c) => out.push(dims.get(&c).cloned().ok_or_else(|| {
                            format!("output label `{}` is in no operand", c as char)
                        })?),
                        None => out.extend(ell.iter().cloned()),
                    }
                }
                out
            }
            None => {
                let mut out = ell;
                out.extend(
                    counts
                        .iter()
                        .filter(|(_, &n)| n == 1)
                        .map(|(c, _)| dims[c].clone()),
                );
                out
            }
        };
    one(tt(elem, out))
}
