//! LSTM lowering: constant W, R, B, peepholes and `sequence_lens` (the exporters' form), X and
//! the initial states from anywhere; every direction, `layout`, `clip`, `input_forget`, and the
//! `activations` the kernel has (Sigmoid, Tanh, Relu). Other activation lists fall back.

use ssc_ir::{AttrValue, DataType, OpId};

use super::util::static_f32;
use super::{Cx, Kernel, Native};
use crate::kernels::lstm::{Lstm, RnnAct};

pub(super) fn lower_lstm(cx: &Cx, op: OpId) -> Option<Native> {
    let g = cx.g;
    let o = g.op(op);
    let d = &o.desc;
    let x = o.input(0)?;
    let xs = static_f32(g, x)?;
    let f32_const = |i: usize| -> Option<Option<(Vec<usize>, Vec<f32>)>> {
        match o.input(i) {
            None => Some(None),
            Some(v) => {
                let t = cx.constant(v)?;
                if t.dtype != DataType::Float {
                    return None;
                }
                Some(Some((t.dims.clone(), t.to_f32_vec()?)))
            }
        }
    };
    let (wd, w) = f32_const(1)??;
    let (rd, r) = f32_const(2)??;
    let b = f32_const(3)?;
    let p = f32_const(7)?;
    if xs.len() != 3 || wd.len() != 3 || rd.len() != 3 {
        return None;
    }
    let batch_major = match d.get_int("layout").ok()?.unwrap_or(0) {
        0 => false,
        1 => true,
        _ => return None,
    };
    let (seq, batch, input) = if batch_major {
        (xs[1], xs[0], xs[2])
    } else {
        (xs[0], xs[1], xs[2])
    };
    let reverse = match d
        .get_string("direction")
        .ok()?
        .as_deref()
        .unwrap_or("forward")
    {
        "forward" => vec![false],
        "reverse" => vec![true],
        "bidirectional" => vec![false, true],
        _ => return None,
    };
    let nd = reverse.len();
    let hidden = match d.get_int("hidden_size").ok()? {
        None => rd[2],
        Some(h) => usize::try_from(h).ok()?,
    };
    let gh = 4 * hidden;
    if hidden == 0 || wd != [nd, gh, input] || rd != [nd, gh, hidden] {
        return None;
    }
    let bias = match b {
        None => vec![0f32; nd * gh],
        Some((bd, b)) => {
            if bd != [nd, 2 * gh] {
                return None;
            }
            (0..nd)
                .flat_map(|di| {
                    let bb = &b[di * 2 * gh..(di + 1) * 2 * gh];
                    (0..gh).map(move |j| bb[j] + bb[gh + j])
                })
                .collect()
        }
    };
    let peep = match p {
        None => None,
        Some((pd, p)) => {
            if pd != [nd, 3 * hidden] {
                return None;
            }
            Some(p)
        }
    };
    let lens = match o.input(4) {
        None => vec![seq; batch],
        Some(v) => {
            let l = cx.constant(v)?.to_i64_vec()?;
            if l.len() != batch {
                return None;
            }
            l.iter()
                .map(|&n| usize::try_from(n).ok().filter(|&n| n <= seq))
                .collect::<Option<_>>()?
        }
    };
    let clip = match d.get_float("clip").ok()? {
        None => None,
        Some(c) if c > 0.0 => Some(c),
        Some(_) => return None,
    };
    let input_forget = d.get_int("input_forget").ok()?.unwrap_or(0) != 0;
    let acts: Vec<[RnnAct; 3]> = match d.attr("activations").map(|a| &a.value) {
        None => vec![[RnnAct::Sigmoid, RnnAct::Tanh, RnnAct::Tanh]; nd],
        Some(AttrValue::Strings(names)) => {
            let a: Vec<RnnAct> = names
                .iter()
                .map(|s| RnnAct::named(std::str::from_utf8(s).ok()?))
                .collect::<Option<_>>()?;
            match a.len() {
                3 => vec![[a[0], a[1], a[2]]; nd],
                6 if nd == 2 => vec![[a[0], a[1], a[2]], [a[3], a[4], a[5]]],
                _ => return None,
            }
        }
        Some(_) => return None,
    };
    // States and outputs: static f32 of the shapes the layout implies.
    let state = if batch_major {
        vec![batch, nd, hidden]
    } else {
        vec![nd, batch, hidden]
    };
    let y_shape = if batch_major {
        vec![batch, seq, nd, hidden]
    } else {
        vec![seq, nd, batch, hidden]
    };
    for i in [5, 6] {
        if let Some(v) = o.input(i) {
            if static_f32(g, v)? != state {
                return None;
            }
        }
    }
    let outs = o.outputs();
    if outs.len() > 3 {
        return None;
    }
    for (i, v) in outs.iter().enumerate() {
        if let Some(v) = v {
            let want = if i == 0 { &y_shape } else { &state };
            if &static_f32(g, *v)? != want {
                return None;
            }
        }
    }
    let first = outs.iter().flatten().next().copied()?;
    let (w, r) = Lstm::pack(&w, &r, nd, input, hidden);
    // The input projection's W^T packed once (see `kernels::packed_gemm`).
    #[cfg(target_arch = "x86_64")]
    let w_packed = if seq * batch > 1 && crate::kernels::par::has_avx512f() {
        let gh = 4 * hidden;
        w.chunks_exact(gh * input)
            .map(|wd| crate::kernels::packed_gemm::PackedB::new(wd, (input, gh), (gh, 1)))
            .collect()
    } else {
        vec![]
    };
    let k = Lstm {
        seq,
        batch,
        input,
        hidden,
        batch_major,
        reverse,
        lens,
        clip,
        input_forget,
        acts,
        w,
        r,
        bias,
        peep,
        #[cfg(target_arch = "x86_64")]
        w_packed,
    };
    Some(Native {
        what: format!("lstm {nd}x seq {seq} batch {batch} {input}->{hidden}"),
        kernel: Kernel::Lstm(Box::new(k)),
        inputs: vec![Some(x), o.input(5), o.input(6)],
        output: first,
        absorbed: vec![],
    })
}
