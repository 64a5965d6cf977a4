//! Conv lowering: the choice between the sparse-weight kernel and the dense kernels, SSC pairs
//! planned as one step, and the fused epilogue.

use ssc_ir::{DataType, OpId};

use super::fuse::fusion_chain;
use super::util::{act_name, ints, resolve_pads, single_output, static_f32, to_usize};
use super::{choice, Cx, Kernel, Native};
use crate::codegen::{Jit, StreamConv};
use crate::kernels::dense::DenseConv;
use crate::kernels::depthwise::Depthwise;
use crate::kernels::spmm;
use crate::spec::{ConvGeom, Epilogue};
use crate::JitOptions;

/// Everything the lowering needs to know about one Conv to build a native kernel.
struct ConvParts {
    geom: ConvGeom,
    weights: Vec<f32>,
    bias: Option<Vec<f32>>,
    batch: usize,
}

/// Weights and bias are read through [`Cx::constant`], so a weight computed from constants
/// (`Reshape(Constant)`, a folded `Cast`...) counts as constant.
fn conv_parts(cx: &Cx, op: OpId) -> Option<ConvParts> {
    let g = cx.g;
    let o = g.op(op);
    let d = &o.desc;
    let x = o.input(0)?;
    let w = o.input(1)?;
    let y = o.output(0)?;
    let xs = static_f32(g, x)?;
    let ys = static_f32(g, y)?;
    let wt = cx.constant(w)?;
    if xs.len() != 4 || ys.len() != 4 || wt.dtype != DataType::Float || wt.dims.len() != 4 {
        return None;
    }
    let group = usize::try_from(d.get_int("group").ok()?.unwrap_or(1)).ok()?;
    let (c_out, cin_g, kh, kw) = (wt.dims[0], wt.dims[1], wt.dims[2], wt.dims[3]);
    if group == 0 || cin_g * group != xs[1] || c_out % group != 0 || ys[1] != c_out {
        return None;
    }
    if let Some(ks) = d.get_ints("kernel_shape").ok()? {
        if to_usize(ks)? != [kh, kw] {
            return None;
        }
    }
    let s = to_usize(&ints(d, "strides", &[1, 1])?)?;
    let dil = to_usize(&ints(d, "dilations", &[1, 1])?)?;
    if s.len() != 2 || dil.len() != 2 || s.contains(&0) || dil.contains(&0) {
        return None;
    }
    let pads = resolve_pads(
        d,
        [xs[2], xs[3]],
        [ys[2], ys[3]],
        [kh, kw],
        [s[0], s[1]],
        [dil[0], dil[1]],
        false,
    )?;
    let bias = cx.optional_f32(o.input(2), c_out)?;
    Some(ConvParts {
        geom: ConvGeom {
            c_in: xs[1],
            c_out,
            group,
            h: xs[2],
            w: xs[3],
            kh,
            kw,
            stride: [s[0], s[1]],
            dilation: [dil[0], dil[1]],
            pads,
            h_out: ys[2],
            w_out: ys[3],
        },
        weights: wt.to_f32_vec()?,
        bias,
        batch: xs[0],
    })
}

/// The layer's weight density: the annotation ssc-passes wrote, or counted.
fn density_of(p: &ConvParts, annotated: Option<f32>) -> f32 {
    annotated.unwrap_or_else(|| {
        let nnz = p.weights.iter().filter(|&&w| w != 0.0).count();
        nnz as f32 / p.weights.len().max(1) as f32
    })
}

/// Whether the layer is a candidate for the AVX-512 sparse kernel, whose use is decided by a
/// cost model against the dense kernels (`plan::choice`).
fn spmm_candidate(p: &ConvParts, opts: &JitOptions, density: f32, epi: &Epilogue) -> bool {
    !opts.dense_only
        && density <= choice::MAX_DENSITY
        && spmm::available()
        && spmm::supports(epi.act)
        && !(p.geom.cin_g() == 1 && Depthwise::suits(&p.geom))
}

/// Chooses the Cranelift / AVX2 sparse-weight kernel (`StreamConv`), which does work per
/// non-zero weight: for a depthwise shape the dense depthwise kernel does not take, and when
/// few enough weights are non-zero (`JitOptions::sparse_threshold`, or on AVX-512 hosts,
/// where `SpmmConv` takes the layers between, `choice::TABLE_DENSITY`).
fn use_stream(p: &ConvParts, opts: &JitOptions, density: f32, spmm_ok: bool) -> bool {
    if opts.dense_only {
        return false;
    }
    // Depthwise layers the direct Rust kernel covers go there unless sparse; other depthwise
    // shapes (7x7, dilated, channel multipliers, hosts without AVX2) keep `StreamConv`.
    let depthwise = p.geom.cin_g() == 1 && !Depthwise::suits(&p.geom);
    let threshold = if spmm_ok {
        choice::TABLE_DENSITY
    } else {
        opts.sparse_threshold
    };
    depthwise || density <= threshold
}

/// `Add(Conv_kxk(x), Conv_1x1(x))`, the SSC decomposition ssc-opt writes (a grouped k x k
/// conv plus a pointwise one, both on `x`), as one step computing both convs and the Add (and
/// the chain after it) in one direct conv ([`DenseConv::ssc_pair`]), when `op` is either conv
/// and the other one is not planned yet. The 1x1 conv must read the pixel one of the k x k
/// taps reads (no padding, the same stride and output), each conv's output must have the Add
/// as its only reader, and neither conv may want the sparse kernel.
fn ssc_pair(cx: &Cx, op: OpId) -> Option<Native> {
    let Cx {
        g,
        opset,
        opts,
        ready,
        ..
    } = *cx;
    let o = g.op(op);
    let (x, y) = (o.input(0)?, o.output(0)?);
    let (add, _) = g.sole_consumer(y)?;
    let ao = g.op(add);
    if !ao.desc.is_onnx() || ao.desc.op_type != "Add" || ao.inputs().len() != 2 {
        return None;
    }
    let other = if ao.input(0) == Some(y) {
        ao.input(1)?
    } else {
        ao.input(0)?
    };
    if other == y || ready.contains(&other) || g.sole_consumer(other)?.0 != add {
        return None;
    }
    let (op2, _) = g.producer(other)?;
    let o2 = g.op(op2);
    if !o2.desc.is_onnx() || o2.desc.op_type != "Conv" || o2.input(0) != Some(x) {
        return None;
    }
    if o.outputs().iter().flatten().count() != 1 || o2.outputs().iter().flatten().count() != 1 {
        return None;
    }
    let pointwise = |p: &ConvParts| {
        let gm = &p.geom;
        gm.kh == 1 && gm.kw == 1 && gm.group == 1 && gm.pads == [0; 4]
    };
    let (pa, pb) = (conv_parts(cx, op)?, conv_parts(cx, op2)?);
    let ((a, a_op, a_out), (b, b_op, b_out)) = if pointwise(&pb) && !pointwise(&pa) {
        ((pa, op, y), (pb, op2, other))
    } else if pointwise(&pa) && !pointwise(&pb) {
        ((pb, op2, other), (pa, op, y))
    } else {
        return None;
    };
    let (ga, gb) = (a.geom, b.geom);
    let same_out = ga.c_out == gb.c_out && (ga.h_out, ga.w_out) == (gb.h_out, gb.w_out);
    if !same_out || ga.stride != gb.stride || a.batch != b.batch {
        return None;
    }
    // The k x k tap at the output pixel's own input position, (pad_top, pad_left) / dilation.
    let tap = [0, 1].map(|i| ga.pads[i] / ga.dilation[i]);
    if (0..2).any(|i| ga.pads[i] % ga.dilation[i] != 0) || tap[0] >= ga.kh || tap[1] >= ga.kw {
        return None;
    }
    // The kernel choice first: it needs only the geometry, the checks below read every weight
    // and walk the epilogue chain.
    if !DenseConv::pair_suits(&ga, opts.winograd) {
        return None;
    }
    for (p, c) in [(&a, a_op), (&b, b_op)] {
        let density = density_of(p, ssc_passes::sparse_density_of(&g.op(c).desc));
        if use_stream(p, opts, density, false)
            || (!opts.dense_only && spmm::available() && density <= choice::MAX_DENSITY)
        {
            return None;
        }
    }
    // The epilogue after the Add, walked from whichever conv's annotation goes through it.
    let chain = [(b_op, a_out), (a_op, b_out)]
        .into_iter()
        .find_map(|(c, partner)| {
            let mut r = ready.clone();
            r.insert(partner);
            let ch = fusion_chain(g, c, opset, &r);
            (ch.residual == Some(partner) && ch.absorbed.first() == Some(&add)).then_some(ch)
        })?;
    let bias = match (&a.bias, &b.bias) {
        (None, None) => None,
        (ba, bb) => Some(
            (0..ga.c_out)
                .map(|c| ba.as_ref().map_or(0.0, |v| v[c]) + bb.as_ref().map_or(0.0, |v| v[c]))
                .collect(),
        ),
    };
    let epi = Epilogue {
        bias,
        residual: chain.residual2.is_some(),
        act: chain.act,
    };
    let tail = format!(
        "{}{}{}",
        if epi.bias.is_some() { " +bias" } else { "" },
        if epi.residual { " +add" } else { "" },
        act_name(epi.act)
    );
    let pw = crate::kernels::dense::Pointwise {
        weights: &b.weights,
        tap,
    };
    let threads = opts.threads.max(1);
    let k = DenseConv::ssc_pair(ga, &a.weights, pw, epi, threads, opts.winograd)?;
    let mut absorbed = chain.absorbed;
    absorbed.push(op2);
    Some(Native {
        what: format!(
            "conv {}{} {}x{} g={} + 1x1 (SSC pair){tail}",
            k.kind(),
            k.detail(),
            ga.kh,
            ga.kw,
            ga.group
        ),
        kernel: Kernel::DenseConv {
            k: Box::new(k),
            batch: a.batch,
            in_len: ga.c_in * ga.h * ga.w,
            out_len: ga.c_out * ga.h_out * ga.w_out,
        },
        inputs: vec![Some(x), chain.residual2, None],
        output: chain.output,
        absorbed,
    })
}

/// A Conv (or the SSC pair it belongs to) with its fused epilogue.
pub(super) fn lower_conv(cx: &Cx, jit: &mut Jit, op: OpId) -> Option<Native> {
    let Cx {
        g,
        opset,
        opts,
        ready,
        ..
    } = *cx;
    let o = g.op(op);
    let d = &o.desc;
    if let Some(n) = ssc_pair(cx, op) {
        return Some(n);
    }
    let parts = conv_parts(cx, op)?;
    single_output(o)?;
    let chain = fusion_chain(g, op, opset, ready);
    let epi = Epilogue {
        bias: parts.bias.clone(),
        residual: chain.residual.is_some(),
        act: chain.act,
    };
    let gm = parts.geom;
    let in_len = gm.c_in * gm.h * gm.w;
    let out_len = gm.c_out * gm.h_out * gm.w_out;
    let tail = format!(
        "{}{}{}",
        if epi.bias.is_some() { " +bias" } else { "" },
        match (chain.residual.is_some(), chain.residual2.is_some()) {
            (true, true) => " +add +add",
            (true, false) => " +add",
            _ => "",
        },
        act_name(epi.act)
    );
    let density = density_of(&parts, ssc_passes::sparse_density_of(d));
    let candidate = spmm_candidate(&parts, opts, density, &epi);
    let stream = if chain.residual2.is_none() && use_stream(&parts, opts, density, candidate) {
        // A code generation failure is a bug, but the GEMM computes the same conv, so
        // the model still runs; the step's description records it.
        Some(StreamConv::compile(jit, &gm, &parts.weights, &epi))
    } else {
        None
    };
    let residuals = usize::from(chain.residual.is_some()) + usize::from(chain.residual2.is_some());
    let (kind, kernel, note) = match stream {
        Some(Ok(k)) => (
            k.kind().to_string(),
            Kernel::StreamConv {
                k: Box::new(k),
                batch: parts.batch,
                in_len,
                out_len,
            },
            String::new(),
        ),
        other => {
            let threads = opts.threads.max(1);
            let sparse = if candidate && other.is_none() {
                choice::choose(
                    &gm,
                    &parts.weights,
                    density,
                    &epi,
                    residuals,
                    threads,
                    opts.winograd,
                )
            } else {
                None
            };
            match sparse {
                Some(s) => (
                    s.kind(),
                    Kernel::Spmm {
                        k: Box::new(s),
                        batch: parts.batch,
                        in_len,
                        out_len,
                    },
                    String::new(),
                ),
                None => {
                    let k = DenseConv::new(gm, parts.weights, epi, threads, opts.winograd);
                    (
                        k.kind().to_string() + &k.detail(),
                        Kernel::DenseConv {
                            k: Box::new(k),
                            batch: parts.batch,
                            in_len,
                            out_len,
                        },
                        match other {
                            Some(Err(e)) => format!(" (cranelift failed: {e})"),
                            _ => String::new(),
                        },
                    )
                }
            }
        }
    };
    Some(Native {
        what: format!(
            "conv {kind} {}x{}{}{tail}",
            gm.kh,
            gm.kw,
            if gm.group > 1 {
                format!(" g={}", gm.group)
            } else {
                String::new()
            }
        ) + &note,
        kernel,
        inputs: vec![o.input(0), chain.residual, chain.residual2],
        output: chain.output,
        absorbed: chain.absorbed,
    })
}
