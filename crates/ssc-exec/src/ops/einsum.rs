//! Einsum (opset 12) with numpy's semantics: explicit (`ij,jk->ik`) and implicit (`ij,jk`,
//! whose output is the ellipsis then every label used once, in alphabetical order) forms,
//! `...` broadcasting, repeated labels within one operand (diagonals: `ii->i`, traces:
//! `ii`), sums over labels absent from the output, and any number of operands.
//!
//! One loop over the product of every label's extent: each operand and the output step
//! through their own strides per label (a repeated label's strides add up). Floats accumulate
//! in f64 and round once; integers wrap like C.

use crate::ctx::{Ctx, Result};
use crate::layout::{numel, strides};
use crate::value::{dispatch, Array, Elem, Val};

/// A parsed term: one label per axis, `Ellipsis(j)` for the `j`-th of the broadcast axes
/// (counted from the right of the ellipsis block).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Label {
    /// Broadcast axes come first in the implicit output, so they sort first.
    Ellipsis(usize),
    Char(u8),
}

impl std::fmt::Display for Label {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Label::Ellipsis(j) => write!(f, "...[{j}]"),
            Label::Char(c) => write!(f, "{}", *c as char),
        }
    }
}

/// The letters of one term before and after its `...`, and whether it has one.
fn parse_term(ctx: &Ctx, term: &str) -> Result<(Vec<u8>, bool, Vec<u8>)> {
    let (before, after, has) = match term.find("...") {
        Some(p) => (&term[..p], &term[p + 3..], true),
        None => (term, "", false),
    };
    let check = |s: &str| -> Result<Vec<u8>> {
        s.bytes()
            .map(|c| {
                if c.is_ascii_alphabetic() {
                    Ok(c)
                } else {
                    Err(ctx.err(format!("equation term `{term}` has `{}`", c as char)))
                }
            })
            .collect()
    };
    Ok((check(before)?, has, check(after)?))
}

pub(crate) fn einsum(ctx: &Ctx) -> Result<Vec<Val>> {
    let eq: String = ctx
        .string("equation", "")?
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let (lhs, rhs) = match eq.split_once("->") {
        Some((l, r)) => (l, Some(r)),
        None => (eq.as_str(), None),
    };
    let ins: Vec<&Array> = (0..ctx.inputs.len())
        .map(|i| ctx.input(i))
        .collect::<Result<_>>()?;
    let terms: Vec<&str> = lhs.split(',').collect();
    if terms.len() != ins.len() {
        return Err(ctx.err(format!(
            "equation `{eq}` has {} operands but the node has {} inputs",
            terms.len(),
            ins.len()
        )));
    }
    let dt = ins[0].dtype();
    if ins.iter().any(|a| a.dtype() != dt) {
        return Err(ctx.err("inputs differ in type"));
    }
    // Each operand's labels, the ellipsis expanded to its broadcast axes (right-aligned).
    let mut ell_rank = 0usize;
    let mut parsed = Vec::with_capacity(ins.len());
    for (term, a) in terms.iter().zip(&ins) {
        let (before, ell, after) = parse_term(ctx, term)?;
        let named = before.len() + after.len();
        let covered = if ell {
            a.rank().checked_sub(named)
        } else {
            (a.rank() == named).then_some(0)
        }
        .ok_or_else(|| {
            ctx.err(format!(
                "term `{term}` does not fit an operand of rank {}",
                a.rank()
            ))
        })?;
        ell_rank = ell_rank.max(covered);
        parsed.push((before, covered, after));
    }
    let operand_labels: Vec<Vec<Label>> = parsed
        .iter()
        .map(|(before, covered, after)| {
            let mut v: Vec<Label> = before.iter().map(|&c| Label::Char(c)).collect();
            v.extend((0..*covered).map(|j| Label::Ellipsis(ell_rank - covered + j)));
            v.extend(after.iter().map(|&c| Label::Char(c)));
            v
        })
        .collect();
    // Extents: letters must agree; broadcast axes broadcast numpy-style.
    let mut extent: std::collections::BTreeMap<Label, usize> = Default::default();
    for (labels, a) in operand_labels.iter().zip(&ins) {
        for (&l, &d) in labels.iter().zip(&a.shape) {
            let e = extent.entry(l).or_insert(d);
            if *e != d {
                match l {
                    Label::Ellipsis(_) if *e == 1 => *e = d,
                    Label::Ellipsis(_) if d == 1 => {}
                    _ => return Err(ctx.err(format!("label `{l}` has extents {} and {d}", *e))),
                }
            }
        }
    }
    let out_labels: Vec<Label> = match rhs {
        Some(r) => {
            let (before, ell, after) = parse_term(ctx, r)?;
            let mut v: Vec<Label> = before.iter().map(|&c| Label::Char(c)).collect();
            if ell {
                v.extend((0..ell_rank).map(Label::Ellipsis));
            }
            v.extend(after.iter().map(|&c| Label::Char(c)));
            for l in &v {
                if !extent.contains_key(l) {
                    return Err(ctx.err(format!("output label `{l}` is in no operand")));
                }
            }
            v
        }
        None => {
            let mut count: std::collections::BTreeMap<Label, usize> = Default::default();
            for l in operand_labels.iter().flatten() {
                *count.entry(*l).or_default() += 1;
            }
            // BTreeMap order: broadcast axes, then letters in ASCII order (as numpy).
            let mut v: Vec<Label> = (0..ell_rank).map(Label::Ellipsis).collect();
            v.extend(
                count
                    .iter()
                    .filter(|(l, &n)| matches!(l, Label::Char(_)) && n == 1)
                    .map(|(l, _)| *l),
            );
            v
        }
    };
    // Loop labels: the output's, then the summed ones.
    let mut loop_labels = out_labels.clone();
    loop_labels.extend(extent.keys().filter(|l| !out_labels.contains(l)));
    let dims: Vec<usize> = loop_labels.iter().map(|l| extent[l]).collect();
    let out_shape: Vec<usize> = out_labels.iter().map(|l| extent[l]).collect();
    // Per operand (and the output), its stride along each loop label.
    let stride_table = |labels: &[Label], shape: &[usize]| -> Vec<usize> {
        let own = strides(shape);
        loop_labels
            .iter()
            .map(|l| {
                // A broadcast axis (extent 1 against a larger one) stays put.
                labels
                    .iter()
                    .zip(&own)
                    .zip(shape)
                    .filter(|((ll, _), &d)| *ll == l && d != 1)
                    .map(|((_, &s), _)| s)
                    .sum()
            })
            .collect()
    };
    let op_strides: Vec<Vec<usize>> = operand_labels
        .iter()
        .zip(&ins)
        .map(|(l, a)| stride_table(l, &a.shape))
        .collect();
    let out_strides = stride_table(&out_labels, &out_shape);
    let out = dispatch!(num dt, T => {
        let vals: Vec<&[T]> = ins.iter().map(|a| a.slice::<T>().expect("dtype")).collect();
        let mut facc = vec![0f64; numel(&out_shape)];
        let mut iacc = vec![0i128; if T::IS_FLOAT { 0 } else { numel(&out_shape) }];
        walk_labels(&dims, &op_strides, &out_strides, |offs, o| {
            if T::IS_FLOAT {
                let mut p = 1f64;
                for (v, &off) in vals.iter().zip(offs) {
                    p *= v[off].to_f64();
                }
                facc[o] += p;
            } else {
                let mut p = 1i128;
                for (v, &off) in vals.iter().zip(offs) {
                    p = p.wrapping_mul(v[off].to_i128());
                }
                iacc[o] = iacc[o].wrapping_add(p);
            }
        });
        let data: Vec<T> = if T::IS_FLOAT {
            facc.into_iter().map(T::from_f64).collect()
        } else {
            iacc.into_iter().map(T::from_i128).collect()
        };
        Array::new(out_shape.clone(), data)
    }, else return Err(ctx.err(format!("unsupported type {dt}"))));
    Ok(vec![out.into()])
}

/// Calls `f(operand offsets, output offset)` for every point of the loop space `dims`.
fn walk_labels(
    dims: &[usize],
    op_strides: &[Vec<usize>],
    out_strides: &[usize],
    mut f: impl FnMut(&[usize], usize),
) {
    if dims.contains(&0) {
        return;
    }
    let n = op_strides.len();
    let mut idx = vec![0usize; dims.len()];
    let mut offs = vec![0usize; n];
    let mut o = 0usize;
    loop {
        f(&offs, o);
        // Odometer, innermost label last.
        let mut d = dims.len();
        loop {
            if d == 0 {
                return;
            }
            d -= 1;
            idx[d] += 1;
            for (off, s) in offs.iter_mut().zip(op_strides) {
                *off += s[d];
            }
            o += out_strides[d];
            if idx[d] < dims[d] {
                break;
            }
            for (off, s) in offs.iter_mut().zip(op_strides) {
                *off -= s[d] * dims[d];
            }
            o -= out_strides[d] * dims[d];
            idx[d] = 0;
        }
    }
}
