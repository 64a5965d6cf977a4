//! Rules for ops that rearrange data without computing on it: Reshape and friends, Concat,
//! Slice, Split, Gather, Expand, Tile, Pad, Resize.

use ssc_ir::Dim;

use super::{like0, one, rank_only, tt, Cx, Out};
use crate::args::Arg;
use crate::const_eval::slice_plan;
use crate::infer::dims::{broadcast, dim_of, dim_wide, known, scale, unify, Product};
use crate::util::norm_axis;

pub(super) fn flatten(cx: &Cx<'_>) -> Out {
    let Some(x) = cx.shape(0) else {
        return like0(cx, Some(vec![Dim::Unknown, Dim::Unknown]));
    };
    let axis = cx.view.int_attr("axis", 1)?;
    let r = x.len() as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if !(0..=r).contains(&a) {
        return Err(format!("axis {axis} is out of range for rank {r}"));
    }
    let (lo, hi) = x.split_at(a as usize);
    like0(
        cx,
        Some(vec![Product::of(lo).to_dim(), Product::of(hi).to_dim()]),
    )
}

pub(super) fn reshape(cx: &Cx<'_>) -> Out {
    let shape = cx.view.ints_arg("shape", 1, 5)?;
    let Some(target) = shape.known() else {
        // The rank is the length of the shape input, when that is static.
        let r = cx.shape(1).and_then(|s| s.first()).and_then(Dim::known);
        return like0(cx, r.map(|r| vec![Dim::Unknown; r]));
    };
    let allowzero = cx.opset() >= 14 && cx.view.int_attr("allowzero", 0)? != 0;
    let x = cx.shape(0);
    let mut out = Vec::with_capacity(target.len());
    let mut infer_at = None;
    for (i, &s) in target.iter().enumerate() {
        out.push(match s {
            0 if !allowzero => match x {
                Some(x) => x
                    .get(i)
                    .cloned()
                    .ok_or_else(|| format!("shape copies dim {i} of a rank-{} input", x.len()))?,
                None => Dim::Unknown,
            },
            -1 if infer_at.is_none() => {
                infer_at = Some(i);
                Dim::Known(1)
            }
            -1 => return Err("shape has more than one -1".into()),
            s => dim_of(s, "a target dimension")?,
        });
    }
    let total = x.map_or_else(Product::unknown, Product::of);
    let rest = Product::of(&out);
    if let Some(i) = infer_at {
        out[i] = total.div(&rest)?;
    } else if let (Some(a), Some(b)) = (total.static_value(), rest.static_value()) {
        if a != b {
            return Err(format!("cannot reshape {a} elements into {b}"));
        }
    }
    like0(cx, Some(out))
}

pub(super) fn transpose(cx: &Cx<'_>) -> Out {
    let Some(x) = cx.shape(0) else {
        return one(cx.same(0));
    };
    let perm: Vec<i64> = match cx.view.ints_attr("perm")? {
        Arg::Known(p) => p,
        _ => (0..x.len() as i64).rev().collect(),
    };
    let mut seen = vec![false; x.len()];
    let mut out = Vec::with_capacity(x.len());
    for &p in &perm {
        let a = usize::try_from(p)
            .ok()
            .filter(|&a| a < x.len() && !seen[a])
            .ok_or_else(|| format!("perm {perm:?} is not a permutation of rank {}", x.len()))?;
        seen[a] = true;
        out.push(x[a].clone());
    }
    if out.len() != x.len() {
        return Err(format!(
            "perm {perm:?} is not a permutation of rank {}",
            x.len()
        ));
    }
    like0(cx, Some(out))
}

pub(super) fn concat(cx: &Cx<'_>) -> Out {
    let n = cx.view.inputs.len();
    let Some(elem) = (0..n).find_map(|s| cx.elem(s)) else {
        return one(None);
    };
    let default_axis = if cx.opset() < 4 { 1 } else { i64::MIN };
    let axis = cx.view.int_attr("axis", default_axis)?;
    if axis == i64::MIN {
        return Err("`axis` is required".into());
    }
    let shapes: Vec<Option<&[Dim]>> = (0..n).map(|s| cx.shape(s)).collect();
    let Some(rank) = shapes.iter().flatten().map(|s| s.len()).next() else {
        return one(rank_only(elem));
    };
    let a = norm_axis(axis, rank).ok_or_else(|| format!("axis {axis} out of range"))?;
    let mut out = vec![Dim::Unknown; rank];
    let mut total = Some(0usize);
    for s in &shapes {
        let Some(s) = s else {
            total = None;
            continue;
        };
        if s.len() != rank {
            return Err(format!("inputs have ranks {rank} and {}", s.len()));
        }
        for i in 0..rank {
            if i != a {
                out[i] = unify(&out[i], &s[i])?;
            }
        }
        total = total.zip(s[a].known()).and_then(|(t, d)| t.checked_add(d));
    }
    out[a] = total.map_or(Dim::Unknown, Dim::Known);
    if n == 1 {
        if let Some(s) = shapes[0] {
            out[a] = s[a].clone();
        }
    }
    one(tt(elem, out))
}

pub(super) fn slice(cx: &Cx<'_>) -> Out {
    let Some(x) = cx.shape(0) else {
        return one(cx.same(0));
    };
    let v = &cx.view;
    let (starts, ends, axes, steps) = if cx.opset() >= 10 {
        (
            v.ints_input(1),
            v.ints_input(2),
            v.ints_input(3),
            v.ints_input(4),
        )
    } else {
        (
            v.ints_attr("starts")?,
            v.ints_attr("ends")?,
            v.ints_attr("axes")?,
            Arg::Absent,
        )
    };
    let dims: Vec<Option<usize>> = x.iter().map(Dim::known).collect();
    let Some(plan) = slice_plan(&dims, &starts, &ends, &axes, &steps)? else {
        // Which axes are sliced may still be known; the others keep their dims.
        let touched: Option<Vec<usize>> = match (&axes, starts.known()) {
            (Arg::Known(a), _) => a.iter().map(|&a| norm_axis(a, x.len())).collect(),
            (Arg::Absent, Some(s)) => Some((0..s.len().min(x.len())).collect()),
            _ => None,
        };
        let out = x
            .iter()
            .enumerate()
            .map(|(i, d)| match &touched {
                Some(t) if !t.contains(&i) => d.clone(),
                _ => Dim::Unknown,
            })
            .collect();
        return like0(cx, Some(out));
    };
    let touched: Vec<usize> = match &axes {
        Arg::Known(a) => a.iter().filter_map(|&a| norm_axis(a, x.len())).collect(),
        _ => (0..starts.known().map_or(0, <[i64]>::len)).collect(),
    };
    let out = x
        .iter()
        .enumerate()
        .map(|(i, d)| match plan[i] {
            Some(p) => Dim::Known(p.len),
            None if touched.contains(&i) => Dim::Unknown,
            None => d.clone(),
        })
        .collect();
    like0(cx, Some(out))
}

pub(super) fn split(cx: &Cx<'_>) -> Out {
    let n = cx.n_outputs;
    let Some(elem) = cx.elem(0).filter(|_| n > 0) else {
        return Ok(vec![None; n]);
    };
    let Some(x) = cx.shape(0) else {
        return Ok(vec![rank_only(elem); n]);
    };
    let axis = cx.view.int_attr("axis", 0)?;
    let a = norm_axis(axis, x.len()).ok_or_else(|| format!("axis {axis} out of range"))?;
    let sizes = cx.view.ints_arg("split", 1, 13)?;
    let parts: Vec<Dim> = match (&sizes, known(&x[a])) {
        (Arg::Known(s), d) if !s.is_empty() => {
            if s.len() != n {
                return Err(format!("{} split sizes for {n} outputs", s.len()));
            }
            if let Some(d) = d {
                if s.iter().map(|&v| i128::from(v)).sum::<i128>() != i128::from(d) {
                    return Err(format!("split sizes {s:?} do not add up to {d}"));
                }
            }
            s.iter()
                .map(|&v| dim_of(v, "a split size"))
                .collect::<Result<_, _>>()?
        }
        (Arg::Unknown, _) | (_, None) => vec![Dim::Unknown; n],
        (_, Some(d)) => {
            let n64 = n as i64;
            if d % n64 == 0 {
                vec![Dim::Known((d / n64) as usize); n]
            } else if cx.opset() >= 18 {
                // num_outputs with an uneven split: all chunks ceil(d/n), the last smaller.
                let chunk = (d + n64 - 1) / n64;
                let mut v = vec![Dim::Known(chunk as usize); n - 1];
                v.push(dim_of(d - chunk * (n64 - 1), "the last split")?);
                v
            } else {
                return Err(format!("dim {d} does not split evenly into {n}"));
            }
        }
    };
    Ok(parts
        .into_iter()
        .map(|p| {
            let mut s = x.to_vec();
            s[a] = p;
            tt(elem, s)
        })
        .collect())
}

pub(super) fn gather(cx: &Cx<'_>) -> Out {
    let (Some(x), Some(idx)) = (cx.shape(0), cx.shape(1)) else {
        return like0(cx, None);
    };
    let axis = cx.view.int_attr("axis", 0)?;
    let a = norm_axis(axis, x.len()).ok_or_else(|| format!("axis {axis} out of range"))?;
    let mut out = x[..a].to_vec();
    out.extend_from_slice(idx);
    out.extend_from_slice(&x[a + 1..]);
    like0(cx, Some(out))
}

pub(super) fn squeeze(cx: &Cx<'_>) -> Out {
    let Some(x) = cx.shape(0) else {
        return like0(cx, None);
    };
    let axes = cx.view.ints_arg("axes", 1, 13)?;
    let out = match &axes {
        Arg::Absent => {
            if x.iter().any(|d| d.known().is_none()) {
                // A symbolic dim may or may not be 1, so the rank is unknown.
                None
            } else {
                Some(x.iter().filter(|d| **d != Dim::Known(1)).cloned().collect())
            }
        }
        Arg::Known(a) => {
            let axes: Vec<usize> = a
                .iter()
                .map(|&v| norm_axis(v, x.len()).ok_or_else(|| format!("axis {v} out of range")))
                .collect::<Result<_, _>>()?;
            for &i in &axes {
                if matches!(x[i], Dim::Known(d) if d != 1) {
                    return Err(format!(
                        "cannot squeeze axis {i} of size {}",
                        x[i].known().unwrap_or(0)
                    ));
                }
            }
            Some(
                x.iter()
                    .enumerate()
                    .filter(|(i, _)| !axes.contains(i))
                    .map(|(_, d)| d.clone())
                    .collect(),
            )
        }
        Arg::Unknown => None,
    };
    like0(cx, out)
}

pub(super) fn unsqueeze(cx: &Cx<'_>) -> Out {
    let Some(x) = cx.shape(0) else {
        return like0(cx, None);
    };
    let axes = cx.view.ints_arg("axes", 1, 13)?;
    let Some(a) = axes.known() else {
        return like0(cx, None);
    };
    let rank = x.len() + a.len();
    // Place unit dims by index, then fill the rest from the input in order.
    let mut placed: Vec<usize> = a
        .iter()
        .map(|&v| norm_axis(v, rank).ok_or_else(|| format!("axis {v} out of range")))
        .collect::<Result<_, _>>()?;
    placed.sort_unstable();
    if placed.windows(2).any(|w| w[0] == w[1]) {
        return Err(format!("repeated axes {a:?}"));
    }
    let mut src = x.iter();
    let out: Vec<Dim> = (0..rank)
        .map(|i| {
            if placed.binary_search(&i).is_ok() {
                Dim::Known(1)
            } else {
                src.next().cloned().unwrap_or(Dim::Unknown)
            }
        })
        .collect();
    like0(cx, Some(out))
}

pub(super) fn expand(cx: &Cx<'_>) -> Out {
    let shape = cx.view.ints_input(1);
    let (Some(x), Some(s)) = (cx.shape(0), shape.known()) else {
        return like0(cx, None);
    };
    let target: Vec<Dim> = s
        .iter()
        .map(|&v| dim_of(v, "a target dimension"))
        .collect::<Result<_, _>>()?;
    like0(cx, Some(broadcast(&[x, &target])?))
}

pub(super) fn tile(cx: &Cx<'_>) -> Out {
    let reps = cx.view.ints_input(1);
    let (Some(x), Some(r)) = (cx.shape(0), reps.known()) else {
        return like0(cx, cx.shape(0).map(|x| vec![Dim::Unknown; x.len()]));
    };
    if r.len() != x.len() {
        return Err(format!("{} repeats for rank {}", r.len(), x.len()));
    }
    let out = x
        .iter()
        .zip(r)
        .map(|(d, &k)| {
            if k < 0 {
                Err(format!("negative repeat {k}"))
            } else {
                scale(d, k)
            }
        })
        .collect::<Result<_, _>>()?;
    like0(cx, Some(out))
}

pub(super) fn pad(cx: &Cx<'_>) -> Out {
    let Some(x) = cx.shape(0) else {
        return one(cx.same(0));
    };
    let pads = match cx.opset() {
        o if o >= 11 => cx.view.ints_input(1),
        o if o >= 2 => cx.view.ints_attr("pads")?,
        _ => cx.view.ints_attr("paddings")?,
    };
    let Some(p) = pads.known() else {
        return like0(cx, Some(vec![Dim::Unknown; x.len()]));
    };
    let axes: Vec<usize> = match cx.view.ints_input(3) {
        Arg::Known(a) if cx.opset() >= 18 => a
            .iter()
            .map(|&v| norm_axis(v, x.len()).ok_or_else(|| format!("axis {v} out of range")))
            .collect::<Result<_, _>>()?,
        Arg::Unknown if cx.opset() >= 18 => {
            return like0(cx, Some(vec![Dim::Unknown; x.len()]));
        }
        _ => (0..x.len()).collect(),
    };
    let k = axes.len();
    if p.len() != 2 * k {
        return Err(format!("{} pads for {k} axes", p.len()));
    }
    let mut out = x.to_vec();
    for (j, &a) in axes.iter().enumerate() {
        out[a] = match &x[a] {
            d if p[j] == 0 && p[j + k] == 0 => d.clone(),
            Dim::Known(n) => dim_wide(*n as i128 + i128::from(p[j]) + i128::from(p[j + k]))?,
            _ => Dim::Unknown,
        };
    }
    like0(cx, Some(out))
}

pub(super) fn resize(cx: &Cx<'_>) -> Out {
    let Some(x) = cx.shape(0) else {
        return one(cx.same(0));
    };
    let v = &cx.view;
    let floats = |slot: usize| -> Option<Option<Vec<f32>>> {
        if !v.present(slot) {
            return Some(None);
        }
        let t = v.konst(slot)?;
        // An empty tensor stands for an omitted input.
        if t.numel() == 0 {
            return Some(None);
        }
        t.to_f32_vec().map(Some)
    };
    let unknown = || like0(cx, Some(vec![Dim::Unknown; x.len()]));
    let (scales, sizes): (Option<Vec<f32>>, Option<Vec<i64>>) = if cx.op_type() == "Upsample" {
        let scales = match cx.opset() {
            o if o >= 9 => match floats(1) {
                Some(s) => s,
                None => return unknown(),
            },
            o if o >= 7 => v
                .desc
                .get_floats("scales")
                .map_err(|e| e.to_string())?
                .map(<[f32]>::to_vec),
            _ => {
                let h = v.float_attr("height_scale", 1.0)?;
                let w = v.float_attr("width_scale", 1.0)?;
                Some(vec![1.0, 1.0, h, w])
            }
        };
        (scales, None)
    } else if cx.opset() < 11 {
        match floats(1) {
            Some(s) => (s, None),
            None => return unknown(),
        }
    } else {
        let Some(scales) = floats(2) else {
            return unknown();
        };
        let sizes = match v.ints_input(3) {
            Arg::Known(s) if s.is_empty() => None,
            Arg::Known(s) => Some(s),
            Arg::Absent => None,
            Arg::Unknown => return unknown(),
        };
        (scales, sizes)
    };
    let axes: Vec<usize> = match v.ints_attr("axes")? {
        Arg::Known(a) if cx.opset() >= 18 => a
            .iter()
            .map(|&v| norm_axis(v, x.len()).ok_or_else(|| format!("axis {v} out of range")))
            .collect::<Result<_, _>>()?,
        _ => (0..x.len()).collect(),
    };
    let policy = v.string_attr("keep_aspect_ratio_policy", "stretch")?;
    let mut out = x.to_vec();
    if let Some(sizes) = sizes {
        if sizes.len() != axes.len() {
            return Err(format!("{} sizes for {} axes", sizes.len(), axes.len()));
        }
        for (j, &a) in axes.iter().enumerate() {
            // Aspect-preserving policies derive one scale from all axes; left unknown here.
            out[a] = if policy == "stretch" || cx.opset() < 18 {
                dim_of(sizes[j], "a target size")?
            } else {
                Dim::Unknown
            };
        }
    } else if let Some(scales) = scales {
        if scales.len() != axes.len() {
            return Err(format!("{} scales for {} axes", scales.len(), axes.len()));
        }
        for (j, &a) in axes.iter().enumerate() {
            let s = scales[j];
            if !s.is_finite() || s <= 0.0 {
                return Err(format!("scale {s} must be positive"));
            }
            out[a] = match &x[a] {
                // In f32, as the ONNX shape inference and ONNX Runtime compute it.
                Dim::Known(n) => Dim::Known((*n as f32 * s).floor() as usize),
                d if s == 1.0 => d.clone(),
                _ => Dim::Unknown,
            };
        }
    } else {
        return Err("neither scales nor sizes is given".into());
    }
    like0(cx, Some(out))
}
