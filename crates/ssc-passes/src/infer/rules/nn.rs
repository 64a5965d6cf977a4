//! Rules for the neural-network ops: convolutions, pooling windows, normalisation, Dropout
//! and DepthToSpace/SpaceToDepth.

use ssc_ir::{DataType, Dim};

use super::{bool_like, like0, one, rank_only, tt, Cx, Out};
use crate::args::Arg;
use crate::infer::dims::{dim_of, dim_wide, known, scale};

pub(super) fn dropout(cx: &Cx<'_>) -> Out {
    // The mask is bool from opset 10, the data type before.
    let mask = if cx.opset() >= 10 {
        bool_like(cx, 0)?.remove(0)
    } else {
        cx.same(0)
    };
    Ok(vec![cx.same(0), mask])
}

pub(super) fn batch_norm(cx: &Cx<'_>) -> Out {
    let mut out = vec![cx.same(0)];
    // Training-mode outputs (running / saved statistics) are per channel.
    let c = cx
        .shape(0)
        .and_then(|s| s.get(1).cloned())
        .or_else(|| cx.shape(1).and_then(|s| s.first().cloned()))
        .unwrap_or(Dim::Unknown);
    let stat = cx.elem(3).or(cx.elem(1));
    for _ in 1..cx.n_outputs {
        out.push(stat.and_then(|e| tt(e, vec![c.clone()])));
    }
    Ok(out)
}

/// Kernel, stride, dilation and padding of a conv or pool over `n` spatial axes.
struct Window {
    kernel: Vec<Option<i64>>,
    strides: Vec<i64>,
    dilations: Vec<i64>,
    pads: Vec<i64>,
    auto_pad: String,
}

fn window(cx: &Cx<'_>, n: usize, kernel_from_w: Option<&[Dim]>) -> Result<Window, String> {
    let v = &cx.view;
    let list = |name: &str, default: i64, len: usize| -> Result<Vec<i64>, String> {
        match v.ints_attr(name)? {
            Arg::Known(x) if x.len() == len => Ok(x),
            Arg::Known(x) => Err(format!("`{name}` has {} values, expected {len}", x.len())),
            _ => Ok(vec![default; len]),
        }
    };
    let kernel = match v.ints_attr("kernel_shape")? {
        Arg::Known(k) if k.len() == n => k.into_iter().map(Some).collect(),
        Arg::Known(k) => {
            return Err(format!(
                "`kernel_shape` has {} values, expected {n}",
                k.len()
            ));
        }
        _ => match kernel_from_w {
            Some(w) => w.iter().map(known).collect(),
            None => return Err("`kernel_shape` is required".into()),
        },
    };
    let w = Window {
        kernel,
        strides: list("strides", 1, n)?,
        dilations: list("dilations", 1, n)?,
        pads: list("pads", 0, 2 * n)?,
        auto_pad: v.string_attr("auto_pad", "NOTSET")?,
    };
    if w.strides.iter().chain(&w.dilations).any(|&s| s <= 0) {
        return Err("strides and dilations must be positive".into());
    }
    if w.kernel.iter().flatten().any(|&k| k <= 0) {
        return Err("kernel sizes must be positive".into());
    }
    Ok(w)
}

/// The output size of one spatial axis of a conv or pool.
fn window_out(w: &Window, i: usize, input: &Dim, n: usize, ceil: bool) -> Result<Dim, String> {
    // In i128: attribute values are arbitrary i64s, and no sum or product here may overflow.
    let Some(x) = known(input).map(i128::from) else {
        return Ok(Dim::Unknown);
    };
    let s = i128::from(w.strides[i]);
    match w.auto_pad.as_str() {
        "SAME_UPPER" | "SAME_LOWER" => return dim_wide((x + s - 1) / s),
        "NOTSET" | "VALID" | "" => {}
        other => return Err(format!("unknown auto_pad `{other}`")),
    }
    let Some(k) = w.kernel[i].map(i128::from) else {
        return Ok(Dim::Unknown);
    };
    let (head, tail) = if w.auto_pad == "VALID" {
        (0, 0)
    } else {
        (i128::from(w.pads[i]), i128::from(w.pads[i + n]))
    };
    let extent = (k - 1) * i128::from(w.dilations[i]) + 1;
    let span = x + head + tail - extent;
    if span < 0 {
        return Err(format!(
            "kernel extent {extent} exceeds the padded input {}",
            x + head + tail
        ));
    }
    let mut out = if ceil {
        (span + s - 1) / s + 1
    } else {
        span / s + 1
    };
    // As PyTorch, ONNX Runtime and the ONNX reference do: the last window must start inside
    // the input or its head padding.
    if ceil && (out - 1) * s >= x + head {
        out -= 1;
    }
    dim_wide(out)
}

pub(super) fn conv(cx: &Cx<'_>, transpose: bool) -> Out {
    let Some(elem) = cx.elem(0).or(cx.elem(1)) else {
        return one(None);
    };
    let w = cx.shape(1);
    let Some(x) = cx.shape(0).or(w) else {
        return one(rank_only(elem));
    };
    let rank = x.len();
    if rank < 3 || w.is_some_and(|w| w.len() != rank) {
        return Err(format!(
            "input and weight ranks must match and be at least 3 (input {rank}, weight {:?})",
            w.map(<[Dim]>::len)
        ));
    }
    let n = rank - 2;
    let group = cx.view.int_attr("group", 1)?;
    if group <= 0 {
        return Err(format!("group {group} must be positive"));
    }
    let batch = if cx.shape(0).is_some() {
        x[0].clone()
    } else {
        Dim::Unknown
    };
    let win = window(cx, n, w.map(|w| &w[2..]))?;
    let mut out = vec![batch];
    if !transpose {
        // X is [N, C, ...], W is [M, C/group, ...].
        if let (Some(c), Some(ci)) = (
            cx.shape(0).and_then(|s| known(&s[1])),
            w.and_then(|w| known(&w[1])),
        ) {
            if c != ci * group {
                return Err(format!(
                    "input has {c} channels but weight expects {ci} x group {group}"
                ));
            }
        }
        out.push(w.map_or(Dim::Unknown, |w| w[0].clone()));
        for i in 0..n {
            let d = if cx.shape(0).is_some() {
                window_out(&win, i, &x[2 + i], n, false)?
            } else {
                Dim::Unknown
            };
            out.push(d);
        }
    } else {
        // ConvTranspose: W is [C, M/group, ...].
        out.push(w.map_or(Ok(Dim::Unknown), |w| scale(&w[1], group))?);
        let output_shape = cx.view.ints_attr("output_shape")?;
        let opad = match cx.view.ints_attr("output_padding")? {
            Arg::Known(p) if p.len() == n => p,
            _ => vec![0; n],
        };
        for i in 0..n {
            if let Arg::Known(os) = &output_shape {
                // Given either for the spatial axes or for the whole output.
                let v = match os.len() {
                    l if l == n => os[i],
                    l if l == n + 2 => os[2 + i],
                    _ => return Err("`output_shape` has the wrong length".into()),
                };
                out.push(dim_of(v, "the output size")?);
                continue;
            }
            let Some(xi) = cx.shape(0).and_then(|s| known(&s[2 + i])).map(i128::from) else {
                out.push(Dim::Unknown);
                continue;
            };
            let s = i128::from(win.strides[i]);
            let d = match win.auto_pad.as_str() {
                "SAME_UPPER" | "SAME_LOWER" => xi * s,
                _ => {
                    let Some(k) = win.kernel[i].map(i128::from) else {
                        out.push(Dim::Unknown);
                        continue;
                    };
                    let (head, tail) = if win.auto_pad == "VALID" {
                        (0, 0)
                    } else {
                        (i128::from(win.pads[i]), i128::from(win.pads[i + n]))
                    };
                    let extent = (k - 1) * i128::from(win.dilations[i]) + 1;
                    s * (xi - 1) + i128::from(opad[i]) + extent - head - tail
                }
            };
            out.push(dim_wide(d)?);
        }
    }
    one(tt(elem, out))
}

pub(super) fn pool(cx: &Cx<'_>) -> Out {
    let Some(elem) = cx.elem(0) else {
        return one(None);
    };
    let Some(x) = cx.shape(0) else {
        return Ok(vec![rank_only(elem), rank_only(DataType::Int64)]);
    };
    if x.len() < 3 {
        return Err(format!("input rank {} is below 3", x.len()));
    }
    let n = x.len() - 2;
    let win = window(cx, n, None)?;
    let ceil = cx.view.int_attr("ceil_mode", 0)? != 0;
    let mut out = vec![x[0].clone(), x[1].clone()];
    for i in 0..n {
        out.push(window_out(&win, i, &x[2 + i], n, ceil)?);
    }
    // MaxPool's optional second output holds int64 indices of the same shape.
    Ok(vec![tt(elem, out.clone()), tt(DataType::Int64, out)])
}

pub(super) fn global_pool(cx: &Cx<'_>) -> Out {
    let Some(x) = cx.shape(0) else {
        return one(cx.same(0));
    };
    if x.len() < 2 {
        return Err(format!("input rank {} is below 2", x.len()));
    }
    let mut out = x[..2].to_vec();
    out.resize(x.len(), Dim::Known(1));
    like0(cx, Some(out))
}

pub(super) fn depth_space(cx: &Cx<'_>) -> Out {
    let Some(x) = cx.shape(0) else {
        return one(cx.same(0));
    };
    if x.len() != 4 {
        return Err(format!("input rank {} is not 4", x.len()));
    }
    let b = cx.view.int_attr("blocksize", 0)?;
    if b <= 0 {
        return Err(format!("blocksize {b} must be positive"));
    }
    let bb = b
        .checked_mul(b)
        .ok_or_else(|| format!("blocksize {b} is too large"))?;
    let div = |d: &Dim, k: i64| -> Result<Dim, String> {
        match known(d) {
            Some(n) if n % k == 0 => dim_of(n / k, "a dimension"),
            Some(n) => Err(format!("dim {n} is not divisible by {k}")),
            None => Ok(Dim::Unknown),
        }
    };
    let out = if cx.op_type() == "DepthToSpace" {
        vec![
            x[0].clone(),
            div(&x[1], bb)?,
            scale(&x[2], b)?,
            scale(&x[3], b)?,
        ]
    } else {
        vec![
            x[0].clone(),
            scale(&x[1], bb)?,
            div(&x[2], b)?,
            div(&x[3], b)?,
        ]
    };
    like0(cx, Some(out))
}
