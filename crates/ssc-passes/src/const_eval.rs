//! A small exact evaluator for the ops that compute shapes and move constant data: integer
//! arithmetic, Gather/Concat/Slice/Reshape/Squeeze/Unsqueeze/Flatten, Range, Cast, Constant and
//! ConstantOfShape. Shape inference uses it to see through `Shape -> Gather -> Concat -> Reshape`
//! chains, and the `fold_shape_arith` phase uses it to fold them.
//!
//! Everything here is exact by construction: data movement copies elements bit for bit, integer
//! arithmetic is checked (an overflow, a division that runtimes round differently or an
//! out-of-range index makes the evaluator decline), and float arithmetic is not attempted.

use bytes::Bytes;
use ssc_ir::{AttrValue, DataType, OpDesc, Tensor, TensorData};

use crate::args::{Arg, OpView};
use crate::util::{int_tensor, norm_axis, raw_elems, raw_tensor};

/// The tensor an ONNX `Constant` op produces, from whichever `value*` attribute it carries.
/// `None` for sparse values and attribute references, which stay as ops.
pub(crate) fn constant_value(desc: &OpDesc) -> Option<Tensor> {
    let a = desc.attrs.iter().find(|a| a.name.starts_with("value"))?;
    let strings = |dims: Vec<usize>, s: Vec<Bytes>| Tensor {
        dtype: DataType::String,
        dims,
        data: TensorData::Strings(s),
        doc_string: None,
        metadata: Vec::new(),
    };
    Some(match (a.name.as_str(), &a.value) {
        ("value", AttrValue::Tensor(t)) => t.clone(),
        ("value_float", AttrValue::Float(f)) => Tensor::from_f32(vec![], &[*f]),
        ("value_floats", AttrValue::Floats(f)) => Tensor::from_f32(vec![f.len()], f),
        ("value_int", AttrValue::Int(i)) => Tensor::from_i64(vec![], &[*i]),
        ("value_ints", AttrValue::Ints(i)) => Tensor::from_i64(vec![i.len()], i),
        ("value_string", AttrValue::String(s)) => strings(vec![], vec![s.clone()]),
        ("value_strings", AttrValue::Strings(s)) => strings(vec![s.len()], s.clone()),
        _ => return None,
    })
}

/// The output of `ConstantOfShape` for a known shape, if it has at most `max_bytes` bytes.
pub(crate) fn constant_of_shape(desc: &OpDesc, shape: &Tensor, max_bytes: usize) -> Option<Tensor> {
    let dims: Vec<usize> = shape
        .to_i64_vec()?
        .into_iter()
        .map(|d| usize::try_from(d).ok())
        .collect::<Option<_>>()?;
    let fill = match desc.get_tensor("value") {
        Ok(Some(t)) => t.clone(),
        Ok(None) => Tensor::from_f32(vec![1], &[0.0]),
        Err(_) => return None,
    };
    if fill.numel() != 1 {
        return None;
    }
    let (elem, _) = raw_elems(&fill)?;
    let numel = ssc_ir::checked_numel(&dims)?;
    let bytes = fill.dtype.storage_bytes(numel)?;
    if bytes > max_bytes {
        return None;
    }
    raw_tensor(fill.dtype, dims, elem.repeat(numel))
}

/// Evaluates `view`'s op when every input it needs is known and the result has at most
/// `max_elems` elements per output. `None` when the op is not supported here or the result
/// would not be exact.
pub(crate) fn eval(view: &OpView<'_>, max_elems: usize) -> Option<Vec<Tensor>> {
    let d = view.desc;
    if !d.is_onnx() {
        return None;
    }
    let out = match d.op_type.as_str() {
        "Identity" => view.konst(0)?.clone(),
        "Constant" => constant_value(d)?,
        "Cast" => crate::cast::cast_tensor(view.konst(0)?, crate::cast::cast_target(d)?)?,
        "Reshape" => {
            let x = view.konst(0)?;
            let shape = view.ints_arg("shape", 1, 5).ok()?;
            let allowzero = view.opset >= 14 && view.int_attr("allowzero", 0).ok()? != 0;
            let dims = reshape_dims(&x.dims, shape.known()?, allowzero)?;
            with_dims(x, dims)?
        }
        "Flatten" => {
            let x = view.konst(0)?;
            let axis = view.int_attr("axis", 1).ok()?;
            let r = x.dims.len() as i64;
            let a = if axis < 0 { axis + r } else { axis };
            if !(0..=r).contains(&a) {
                return None;
            }
            let (lo, hi) = x.dims.split_at(a as usize);
            with_dims(x, vec![lo.iter().product(), hi.iter().product()])?
        }
        "Squeeze" => {
            let x = view.konst(0)?;
            let axes = view.ints_arg("axes", 1, 13).ok()?;
            let dims = squeeze_dims(&x.dims, &axes)?;
            with_dims(x, dims)?
        }
        "Unsqueeze" => {
            let x = view.konst(0)?;
            let axes = view.ints_arg("axes", 1, 13).ok()?;
            let dims = unsqueeze_dims(&x.dims, axes.known()?)?;
            with_dims(x, dims)?
        }
        "Gather" => gather(
            view.konst(0)?,
            view.konst(1)?,
            view.int_attr("axis", 0).ok()?,
        )?,
        "Concat" => {
            let xs: Vec<&Tensor> = (0..view.inputs.len())
                .map(|s| view.konst(s))
                .collect::<Option<_>>()?;
            concat(&xs, view.int_attr("axis", 1).ok()?)?
        }
        "Slice" => {
            let x = view.konst(0)?;
            let (starts, ends, axes, steps) = if view.opset >= 10 {
                (
                    view.ints_input(1),
                    view.ints_input(2),
                    view.ints_input(3),
                    view.ints_input(4),
                )
            } else {
                (
                    view.ints_attr("starts").ok()?,
                    view.ints_attr("ends").ok()?,
                    view.ints_attr("axes").ok()?,
                    Arg::Absent,
                )
            };
            let dims: Vec<Option<usize>> = x.dims.iter().map(|&d| Some(d)).collect();
            let plan = slice_plan(&dims, &starts, &ends, &axes, &steps).ok()??;
            slice(x, &plan)?
        }
        "Add" | "Sub" | "Mul" | "Div" | "Max" | "Min" if view.inputs.len() == 2 => {
            int_binary(&d.op_type, view.konst(0)?, view.konst(1)?)?
        }
        "Neg" => {
            let x = view.konst(0)?;
            int_only(x)?;
            let v: Vec<i64> = x
                .to_i64_vec()?
                .into_iter()
                .map(i64::checked_neg)
                .collect::<Option<_>>()?;
            int_tensor(x.dtype, x.dims.clone(), &v)?
        }
        "Range" => range(view.konst(0)?, view.konst(1)?, view.konst(2)?, max_elems)?,
        "ConstantOfShape" => constant_of_shape(d, view.konst(0)?, max_elems.saturating_mul(8))?,
        _ => return None,
    };
    (out.numel() <= max_elems).then_some(vec![out])
}

fn with_dims(x: &Tensor, dims: Vec<usize>) -> Option<Tensor> {
    if ssc_ir::checked_numel(&dims)? != x.numel() {
        return None;
    }
    let mut t = x.clone();
    t.dims = dims;
    Some(t)
}

/// Int32 and int64 are the types shape arithmetic uses; narrower ones would need wrapping rules.
fn int_only(t: &Tensor) -> Option<()> {
    matches!(t.dtype, DataType::Int64 | DataType::Int32).then_some(())
}

/// The output dims of Reshape with a known target `shape` (0 copies, -1 infers).
pub(crate) fn reshape_dims(input: &[usize], shape: &[i64], allowzero: bool) -> Option<Vec<usize>> {
    let mut out = Vec::with_capacity(shape.len());
    let mut infer_at = None;
    for (i, &s) in shape.iter().enumerate() {
        match s {
            0 if !allowzero => out.push(*input.get(i)?),
            -1 if infer_at.is_none() => {
                infer_at = Some(i);
                out.push(1);
            }
            s if s >= 0 => out.push(usize::try_from(s).ok()?),
            _ => return None,
        }
    }
    let total = ssc_ir::checked_numel(input)?;
    let rest = ssc_ir::checked_numel(&out)?;
    if let Some(i) = infer_at {
        if rest == 0 || total % rest != 0 {
            return None;
        }
        out[i] = total / rest;
    } else if rest != total {
        return None;
    }
    Some(out)
}

/// Squeeze's output dims; without axes every dim of size 1 goes.
pub(crate) fn squeeze_dims(dims: &[usize], axes: &Arg) -> Option<Vec<usize>> {
    match axes {
        Arg::Absent => Some(dims.iter().copied().filter(|&d| d != 1).collect()),
        Arg::Known(a) => {
            let axes: Vec<usize> = a
                .iter()
                .map(|&x| norm_axis(x, dims.len()))
                .collect::<Option<_>>()?;
            if axes.iter().any(|&x| dims[x] != 1) {
                return None;
            }
            Some(
                dims.iter()
                    .enumerate()
                    .filter(|(i, _)| !axes.contains(i))
                    .map(|(_, &d)| d)
                    .collect(),
            )
        }
        Arg::Unknown => None,
    }
}

/// Unsqueeze's output dims: axes index the output.
pub(crate) fn unsqueeze_dims(dims: &[usize], axes: &[i64]) -> Option<Vec<usize>> {
    let rank = dims.len() + axes.len();
    let mut ins: Vec<usize> = axes
        .iter()
        .map(|&a| norm_axis(a, rank))
        .collect::<Option<_>>()?;
    ins.sort_unstable();
    if ins.windows(2).any(|w| w[0] == w[1]) {
        return None;
    }
    let mut src = dims.iter();
    (0..rank)
        .map(|i| {
            if ins.binary_search(&i).is_ok() {
                Some(1)
            } else {
                src.next().copied()
            }
        })
        .collect()
}

fn gather(data: &Tensor, indices: &Tensor, axis: i64) -> Option<Tensor> {
    let (raw, w) = raw_elems(data)?;
    let axis = norm_axis(axis, data.dims.len())?;
    let n = data.dims[axis];
    let idx: Vec<usize> = indices
        .to_i64_vec()?
        .into_iter()
        .map(|i| {
            let j = if i < 0 { i + n as i64 } else { i };
            usize::try_from(j).ok().filter(|&j| j < n)
        })
        .collect::<Option<_>>()?;
    let outer: usize = data.dims[..axis].iter().product();
    let inner: usize = data.dims[axis + 1..].iter().product::<usize>() * w;
    let mut out = Vec::with_capacity(outer * idx.len() * inner);
    for o in 0..outer {
        for &i in &idx {
            let at = (o * n + i) * inner;
            out.extend_from_slice(&raw[at..at + inner]);
        }
    }
    let mut dims = data.dims[..axis].to_vec();
    dims.extend_from_slice(&indices.dims);
    dims.extend_from_slice(&data.dims[axis + 1..]);
    raw_tensor(data.dtype, dims, out)
}

fn concat(xs: &[&Tensor], axis: i64) -> Option<Tensor> {
    let first = xs.first()?;
    let rank = first.dims.len();
    let axis = norm_axis(axis, rank)?;
    let mut dims = first.dims.clone();
    dims[axis] = 0;
    for x in xs {
        let same = x.dtype == first.dtype
            && x.dims.len() == rank
            && (0..rank).all(|i| i == axis || x.dims[i] == first.dims[i]);
        if !same {
            return None;
        }
        dims[axis] += x.dims[axis];
    }
    let outer: usize = first.dims[..axis].iter().product();
    let inner: usize = first.dims[axis + 1..].iter().product();
    let parts: Vec<(&[u8], usize)> = xs
        .iter()
        .map(|x| raw_elems(x).map(|(r, w)| (r, x.dims[axis] * inner * w)))
        .collect::<Option<_>>()?;
    let mut out = Vec::new();
    for o in 0..outer {
        for (raw, chunk) in &parts {
            out.extend_from_slice(&raw[o * chunk..(o + 1) * chunk]);
        }
    }
    raw_tensor(first.dtype, dims, out)
}

/// One axis of a slice: first index, step and output length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AxisSlice {
    pub start: i64,
    pub step: i64,
    pub len: usize,
}

/// Resolves Slice's arguments against `dims` (`None` for an unknown dim). Per axis: `Some` when
/// the slice of that axis is known, `None` when it is not (an unknown dim that is sliced).
/// Returns `Ok(None)` when the arguments are not known, `Err` when they are invalid.
#[allow(clippy::type_complexity)] // a per-axis plan; a named type would add nothing
pub(crate) fn slice_plan(
    dims: &[Option<usize>],
    starts: &Arg,
    ends: &Arg,
    axes: &Arg,
    steps: &Arg,
) -> Result<Option<Vec<Option<AxisSlice>>>, String> {
    let rank = dims.len();
    let (Some(starts), Some(ends)) = (starts.known(), ends.known()) else {
        return Ok(None);
    };
    if starts.len() != ends.len() {
        return Err("Slice starts and ends differ in length".into());
    }
    let axes: Vec<i64> = match axes {
        Arg::Absent => (0..starts.len() as i64).collect(),
        Arg::Known(a) => a.clone(),
        Arg::Unknown => return Ok(None),
    };
    let steps: Vec<i64> = match steps {
        Arg::Absent => vec![1; starts.len()],
        Arg::Known(s) => s.clone(),
        Arg::Unknown => return Ok(None),
    };
    if axes.len() != starts.len() || steps.len() != starts.len() {
        return Err("Slice axes/steps do not match starts in length".into());
    }
    let mut plan: Vec<Option<AxisSlice>> = dims
        .iter()
        .map(|d| {
            d.map(|n| AxisSlice {
                start: 0,
                step: 1,
                len: n,
            })
        })
        .collect();
    let mut seen = vec![false; rank];
    for i in 0..starts.len() {
        let a = norm_axis(axes[i], rank)
            .ok_or_else(|| format!("Slice axis {} out of range", axes[i]))?;
        if std::mem::replace(&mut seen[a], true) {
            return Err(format!("Slice axis {a} repeated"));
        }
        let step = steps[i];
        if step == 0 {
            return Err("Slice step is 0".into());
        }
        plan[a] = dims[a].map(|n| slice_axis(n as i64, starts[i], ends[i], step));
    }
    Ok(Some(plan))
}

/// ONNX's clamping rules for one sliced axis of size `n` (in i128, so huge steps and the
/// `INT64_MIN`/`INT64_MAX` sentinels exporters use cannot overflow).
fn slice_axis(n: i64, start: i64, end: i64, step: i64) -> AxisSlice {
    if n <= 0 {
        return AxisSlice {
            start: 0,
            step,
            len: 0,
        };
    }
    let (n, st) = (i128::from(n), i128::from(step));
    let fix = |v: i64| {
        let v = i128::from(v);
        if v < 0 {
            v + n
        } else {
            v
        }
    };
    let (start, end) = (fix(start), fix(end));
    let (start, len) = if st > 0 {
        let s = start.clamp(0, n);
        let e = end.clamp(0, n);
        (s, if e > s { (e - s + st - 1) / st } else { 0 })
    } else {
        let s = start.clamp(0, n - 1);
        let e = end.clamp(-1, n - 1);
        (s, if s > e { (s - e - st - 1) / -st } else { 0 })
    };
    AxisSlice {
        // `start` lies in [0, n] and `len` in [0, n], so both fit.
        start: start as i64,
        step,
        len: len as usize,
    }
}

fn slice(x: &Tensor, plan: &[Option<AxisSlice>]) -> Option<Tensor> {
    let (raw, w) = raw_elems(x)?;
    let plan: Vec<AxisSlice> = plan.iter().copied().collect::<Option<_>>()?;
    let dims: Vec<usize> = plan.iter().map(|p| p.len).collect();
    let numel = ssc_ir::checked_numel(&dims)?;
    let mut strides = vec![1usize; x.dims.len()];
    for i in (0..x.dims.len().saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * x.dims[i + 1];
    }
    let mut out = Vec::with_capacity(numel * w);
    let mut idx = vec![0usize; dims.len()];
    for _ in 0..numel {
        let src: i64 = idx
            .iter()
            .zip(&plan)
            .zip(&strides)
            .map(|((&j, p), &s)| (p.start + j as i64 * p.step) * s as i64)
            .sum();
        let at = usize::try_from(src).ok()? * w;
        out.extend_from_slice(raw.get(at..at + w)?);
        for k in (0..idx.len()).rev() {
            idx[k] += 1;
            if idx[k] < dims[k] {
                break;
            }
            idx[k] = 0;
        }
    }
    raw_tensor(x.dtype, dims, out)
}

/// Numpy broadcasting of two static shapes.
pub(crate) fn broadcast_static(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let r = a.len().max(b.len());
    (0..r)
        .map(|i| {
            let x = if i + a.len() >= r {
                a[i + a.len() - r]
            } else {
                1
            };
            let y = if i + b.len() >= r {
                b[i + b.len() - r]
            } else {
                1
            };
            match (x, y) {
                (x, y) if x == y => Some(x),
                (1, y) => Some(y),
                (x, 1) => Some(x),
                _ => None,
            }
        })
        .collect()
}

/// Element offsets of `dims` broadcast to `out` (stride 0 along broadcast axes).
fn broadcast_offsets(dims: &[usize], out: &[usize]) -> Vec<usize> {
    let r = out.len();
    let pad = r - dims.len();
    let mut strides = vec![0usize; r];
    let mut s = 1;
    for i in (0..dims.len()).rev() {
        strides[pad + i] = if dims[i] == 1 { 0 } else { s };
        s *= dims[i];
    }
    let numel: usize = out.iter().product();
    let mut offs = Vec::with_capacity(numel);
    let mut idx = vec![0usize; r];
    for _ in 0..numel {
        offs.push(idx.iter().zip(&strides).map(|(i, s)| i * s).sum());
        for k in (0..r).rev() {
            idx[k] += 1;
            if idx[k] < out[k] {
                break;
            }
            idx[k] = 0;
        }
    }
    offs
}

fn int_binary(op: &str, a: &Tensor, b: &Tensor) -> Option<Tensor> {
    int_only(a)?;
    if a.dtype != b.dtype {
        return None;
    }
    let dims = broadcast_static(&a.dims, &b.dims)?;
    let (va, vb) = (a.to_i64_vec()?, b.to_i64_vec()?);
    let (oa, ob) = (
        broadcast_offsets(&a.dims, &dims),
        broadcast_offsets(&b.dims, &dims),
    );
    let vals: Vec<i64> = oa
        .iter()
        .zip(&ob)
        .map(|(&i, &j)| {
            let (x, y) = (va[i], vb[j]);
            match op {
                "Add" => x.checked_add(y),
                "Sub" => x.checked_sub(y),
                "Mul" => x.checked_mul(y),
                // Runtimes disagree on rounding negative quotients (C++ truncates, numpy
                // floors), so only divisions that both agree on are folded.
                "Div" if y != 0 && (x.checked_rem(y) == Some(0) || (x >= 0 && y > 0)) => {
                    x.checked_div(y)
                }
                "Max" => Some(x.max(y)),
                "Min" => Some(x.min(y)),
                _ => None,
            }
        })
        .collect::<Option<_>>()?;
    int_tensor(a.dtype, dims, &vals)
}

fn range(start: &Tensor, limit: &Tensor, delta: &Tensor, max_elems: usize) -> Option<Tensor> {
    int_only(start)?;
    let one = |t: &Tensor| -> Option<i64> {
        let v = t.to_i64_vec()?;
        (v.len() == 1 && t.dtype == start.dtype).then(|| v[0])
    };
    let (s, l, d) = (one(start)?, one(limit)?, one(delta)?);
    if d == 0 {
        return None;
    }
    let span = i128::from(l) - i128::from(s);
    let d128 = i128::from(d);
    let n = if (span > 0) == (d > 0) && span != 0 {
        (span + d128 - d128.signum()) / d128
    } else {
        0
    };
    let n = usize::try_from(n).ok().filter(|&n| n <= max_elems)?;
    let vals: Vec<i64> = (0..n).map(|i| s + i as i64 * d).collect();
    int_tensor(start.dtype, vec![n], &vals)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ssc_ir::Attribute;

    fn view<'a>(desc: &'a OpDesc, opset: i64, ins: &[&'a Tensor]) -> OpView<'a> {
        OpView {
            desc,
            opset,
            inputs: ins.iter().map(|t| Some(Some(*t))).collect(),
        }
    }

    fn run(desc: &OpDesc, opset: i64, ins: &[&Tensor]) -> Option<Tensor> {
        eval(&view(desc, opset, ins), 1 << 16).map(|mut v| v.remove(0))
    }

    #[test]
    fn shape_chain_pieces() {
        let shape = Tensor::from_i64(vec![4], &[1, 64, 7, 7]);
        let idx = Tensor::from_i64(vec![], &[0]);
        let g = run(&OpDesc::new("Gather"), 13, &[&shape, &idx]).unwrap();
        assert_eq!((g.dims.clone(), g.to_i64_vec().unwrap()), (vec![], vec![1]));
        let axes = Tensor::from_i64(vec![1], &[0]);
        let u = run(&OpDesc::new("Unsqueeze"), 13, &[&g, &axes]).unwrap();
        assert_eq!(u.dims, vec![1]);
        let m1 = Tensor::from_i64(vec![1], &[-1]);
        let c = run(
            &OpDesc::new("Concat").with_attr(Attribute::int("axis", 0)),
            13,
            &[&u, &m1],
        )
        .unwrap();
        assert_eq!(c.to_i64_vec().unwrap(), vec![1, -1]);
    }

    #[test]
    fn slice_follows_onnx_clamping() {
        let x = Tensor::from_i64(vec![5], &[0, 1, 2, 3, 4]);
        let s = |a: &[i64], b: &[i64], st: &[i64]| {
            let (a, b) = (Tensor::from_i64(vec![1], a), Tensor::from_i64(vec![1], b));
            let ax = Tensor::from_i64(vec![1], &[0]);
            let st = Tensor::from_i64(vec![1], st);
            run(&OpDesc::new("Slice"), 13, &[&x, &a, &b, &ax, &st])
                .unwrap()
                .to_i64_vec()
                .unwrap()
        };
        assert_eq!(s(&[1], &[i64::MAX], &[1]), vec![1, 2, 3, 4]);
        assert_eq!(s(&[-2], &[100], &[1]), vec![3, 4]);
        assert_eq!(s(&[-1], &[i64::MIN], &[-2]), vec![4, 2, 0]);
        assert_eq!(s(&[3], &[1], &[1]), Vec::<i64>::new());
    }

    #[test]
    fn arithmetic_is_checked_and_division_conservative() {
        let a = Tensor::from_i64(vec![2], &[7, -7]);
        let b = Tensor::from_i64(vec![], &[2]);
        assert!(run(&OpDesc::new("Div"), 13, &[&a, &b]).is_none());
        let a = Tensor::from_i64(vec![2], &[8, -8]);
        let d = run(&OpDesc::new("Div"), 13, &[&a, &b]).unwrap();
        assert_eq!(d.to_i64_vec().unwrap(), vec![4, -4]);
        let big = Tensor::from_i64(vec![1], &[i64::MAX]);
        assert!(run(&OpDesc::new("Add"), 13, &[&big, &big]).is_none());
        let f = Tensor::from_f32(vec![1], &[1.0]);
        assert!(run(&OpDesc::new("Add"), 13, &[&f, &f]).is_none());
    }

    #[test]
    fn reshape_and_range() {
        let x = Tensor::from_f32(vec![2, 3], &[0.0; 6]);
        let s = Tensor::from_i64(vec![2], &[0, -1]);
        let r = run(&OpDesc::new("Reshape"), 13, &[&x, &s]).unwrap();
        assert_eq!(r.dims, vec![2, 3]);
        let s = Tensor::from_i64(vec![1], &[-1]);
        assert_eq!(
            run(&OpDesc::new("Reshape"), 13, &[&x, &s]).unwrap().dims,
            vec![6]
        );
        let (a, b, c) = (
            Tensor::from_i64(vec![], &[10]),
            Tensor::from_i64(vec![], &[0]),
            Tensor::from_i64(vec![], &[-3]),
        );
        let r = run(&OpDesc::new("Range"), 13, &[&a, &b, &c]).unwrap();
        assert_eq!(r.to_i64_vec().unwrap(), vec![10, 7, 4, 1]);
    }
}
