//! Rules for the recurrent layers LSTM, GRU and RNN: `Y` is `[seq, directions, batch, hidden]`
//! and the states `[directions, batch, hidden]` (`[batch, seq, ...]` / `[batch, directions,
//! hidden]` under `layout=1`).

use ssc_ir::Dim;

use super::{rank_only, tt, Cx, Out};
use crate::infer::dims::{known, unify};

pub(super) fn recurrent(cx: &Cx<'_>) -> Out {
    let n_states = if cx.op_type() == "LSTM" { 2 } else { 1 };
    let n = cx.n_outputs.min(1 + n_states);
    let Some(elem) = cx.elem(0) else {
        return Ok(vec![None; n]);
    };
    let gates: i64 = match cx.op_type() {
        "LSTM" => 4,
        "GRU" => 3,
        _ => 1,
    };
    let batch_major = cx.view.int_attr("layout", 0)? != 0;
    let dirs = match cx.view.string_attr("direction", "forward")?.as_str() {
        "forward" | "reverse" => Dim::Known(1),
        "bidirectional" => Dim::Known(2),
        other => return Err(format!("unknown direction `{other}`")),
    };
    let dirs = match cx.shape(1) {
        Some(w) if w.len() == 3 => unify(&dirs, &w[0]).map_err(|e| format!("W: {e}"))?,
        _ => dirs,
    };
    let hidden = match cx.view.int_attr("hidden_size", -1)? {
        -1 => match (cx.shape(2), cx.shape(1)) {
            (Some(r), _) if r.len() == 3 => r[2].clone(),
            (_, Some(w)) if w.len() == 3 => match known(&w[1]) {
                Some(g) if g % gates == 0 => Dim::Known((g / gates) as usize),
                _ => Dim::Unknown,
            },
            _ => Dim::Unknown,
        },
        h if h > 0 => Dim::Known(h as usize),
        h => return Err(format!("hidden_size must be positive, not {h}")),
    };
    let Some(x) = cx.shape(0) else {
        return Ok(vec![rank_only(elem); n]);
    };
    if x.len() != 3 {
        return Err(format!("X must be 3-D, not rank {}", x.len()));
    }
    let (seq, batch) = if batch_major {
        (x[1].clone(), x[0].clone())
    } else {
        (x[0].clone(), x[1].clone())
    };
    let (y, state) = if batch_major {
        (
            vec![batch.clone(), seq, dirs.clone(), hidden.clone()],
            vec![batch, dirs, hidden],
        )
    } else {
        (
            vec![seq, dirs.clone(), batch.clone(), hidden.clone()],
            vec![dirs, batch, hidden],
        )
    };
    let mut out = vec![tt(elem, y)];
    out.extend((0..n_states).map(|_| tt(elem, state.clone())));
    out.truncate(n);
    Ok(out)
}
