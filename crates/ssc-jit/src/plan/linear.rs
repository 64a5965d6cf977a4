//! Gemm / MatMul lowering: Gemm, MatMul with a 2-D right operand (A's leading dims fold into
//! M), and batched MatMul of two activations (numpy broadcasting over the batch dims, 1-D
//! operands as the spec promotes them), as in attention heads.

use ssc_ir::{OpId, ValueId};

use super::util::static_f32;
use super::{Cx, Kernel, Native};
use crate::kernels::linear::Linear;

pub(super) fn lower_linear(cx: &Cx, op: OpId) -> Option<Native> {
    let g = cx.g;
    let o = g.op(op);
    let d = &o.desc;
    let (a, b) = (o.input(0)?, o.input(1)?);
    let y = o.output(0)?;
    let (sa, sb, sy) = (static_f32(g, a)?, static_f32(g, b)?, static_f32(g, y)?);
    let is_gemm = d.op_type == "Gemm";
    let (ta, tb) = if is_gemm {
        (
            d.get_int("transA").ok()?.unwrap_or(0) != 0,
            d.get_int("transB").ok()?.unwrap_or(0) != 0,
        )
    } else {
        (false, false)
    };
    if !is_gemm && (sb.len() != 2 || sa.len() < 2) {
        return lower_batched(a, b, y, &sa, &sb, &sy);
    }
    if sb.len() != 2 || (is_gemm && sa.len() != 2) || sa.len() < 2 {
        return None;
    }
    let (m, k) = if ta {
        (sa[1], sa[0])
    } else {
        (sa[..sa.len() - 1].iter().product(), sa[sa.len() - 1])
    };
    let (kb, n) = if tb { (sb[1], sb[0]) } else { (sb[0], sb[1]) };
    if k != kb || sy.iter().product::<usize>() != m * n || sy.last() != Some(&n) {
        return None;
    }
    let (alpha, beta) = if is_gemm {
        (
            d.get_float("alpha").ok()?.unwrap_or(1.0),
            d.get_float("beta").ok()?.unwrap_or(1.0),
        )
    } else {
        (1.0, 1.0)
    };
    let c = if is_gemm { o.input(2) } else { None };
    // A constant transposed B is laid out k x n now, so the gemm packs it with unit strides;
    // only when this node is its one reader (a copy per node of a weight that unrolled
    // recurrent cells share would multiply the memory and push it out of the shared cache),
    // and only for more than one row of A: a single row is a matrix-vector product that reads
    // the transposed B row by row already (VGG-11's 1x25088x4096 classifier: 24 ms as it is
    // against 29-32 ms laid out, and the copy took half a second of its compile time).
    let own_const = || {
        cx.constant(b)
            .filter(|t| m > 1 && t.dtype == ssc_ir::DataType::Float && g.consumers(b).len() == 1)
            .and_then(|t| t.to_f32_vec())
    };
    // On AVX-512 hosts such a B (either layout) is packed once for `kernels::packed_gemm`,
    // which then never packs at run time (ConvNeXt's 49x768x3072 MatMuls 2.97 -> 2.33 ms).
    // A constant B with enough exact zeros is compressed for `kernels::sparse_linear` instead,
    // where `plan::choice::linear` prices it below the dense product (one row included: its
    // table is read, unlike a dense one, without a copy per reader that matters).
    #[cfg(target_arch = "x86_64")]
    let sparse = (!ta && alpha == 1.0 && crate::kernels::par::has_avx512f() && !cx.opts.dense_only)
        .then(|| {
            cx.constant(b)
                .filter(|t| t.dtype == ssc_ir::DataType::Float && g.consumers(b).len() == 1)
        })
        .flatten()
        .filter(|t| {
            nonzeros_if_sparse(t)
                .is_some_and(|nnz| super::choice::linear::sparse_pays(m, k, n, nnz))
        })
        .and_then(|t| t.to_f32_vec())
        .and_then(|v| {
            let strides = if tb { (1, k) } else { (n, 1) };
            crate::kernels::sparse_linear::SparseB::new(&v, (k, n), strides)
        });
    #[cfg(target_arch = "x86_64")]
    let own_const = || sparse.is_none().then(own_const).flatten();
    #[cfg(target_arch = "x86_64")]
    let packed = (!ta && alpha == 1.0 && crate::kernels::par::has_avx512f())
        .then(own_const)
        .flatten()
        .map(|v| {
            let strides = if tb { (1, k) } else { (n, 1) };
            crate::kernels::packed_gemm::PackedB::new(&v, (k, n), strides)
        });
    #[cfg(target_arch = "x86_64")]
    let own_const = || packed.is_none().then(own_const).flatten();
    let b_const = if tb { own_const() } else { None }.map(|v| transposed(&v, n, k));
    let tb = tb && b_const.is_none();
    #[cfg(target_arch = "x86_64")]
    let b_in = (b_const.is_none() && packed.is_none() && sparse.is_none()).then_some(b);
    #[cfg(not(target_arch = "x86_64"))]
    let b_in = b_const.is_none().then_some(b);
    let c_strides = match c {
        Some(c) => Some(Linear::c_strides(&static_f32(g, c)?, m, n)?),
        None => None,
    };
    #[cfg(target_arch = "x86_64")]
    let what = match &sparse {
        Some(s) => format!("{} sparse {m}x{k}x{n} nnz={}", d.op_type, s.nnz()),
        None => format!("{} {m}x{k}x{n}", d.op_type),
    };
    #[cfg(not(target_arch = "x86_64"))]
    let what = format!("{} {m}x{k}x{n}", d.op_type);
    Some(Native {
        what,
        kernel: Kernel::Linear(Linear {
            m,
            k,
            n,
            trans_a: ta,
            trans_b: tb,
            alpha,
            beta,
            c_strides,
            batches: vec![],
            b_const,
            #[cfg(target_arch = "x86_64")]
            packed,
            #[cfg(target_arch = "x86_64")]
            sparse,
        }),
        inputs: vec![Some(a), b_in, c],
        output: y,
        absorbed: vec![],
    })
}

/// `v` (`rows x cols`, row-major) transposed to `cols x rows`, in square tiles so that both
/// sides stay in cache (a plain loop over a classifier's 4096 x 25088 weight writes with a
/// 16 KB stride and took over a second of VGG-11's compile time).
/// The non-zeros of the f32 constant `t`, or `None` when a strided sample (every 1021st value)
/// finds more than 85% of them non-zero: `plan::choice::linear` never takes a matrix that
/// dense, and a dense weight of VGG-11's size (100M values) then costs a hundred thousand
/// reads instead of a 400 MB copy (compile time, issue 16). The count itself is exact.
#[cfg(target_arch = "x86_64")]
fn nonzeros_if_sparse(t: &ssc_ir::Tensor) -> Option<usize> {
    let Some(raw) = t.raw() else {
        return Some(t.to_f32_vec()?.iter().filter(|&&w| w != 0.0).count());
    };
    let at =
        |i: usize| f32::from_le_bytes([raw[4 * i], raw[4 * i + 1], raw[4 * i + 2], raw[4 * i + 3]]);
    let n = raw.len() / 4;
    let (mut seen, mut live) = (0usize, 0usize);
    for i in (0..n).step_by(1021) {
        seen += 1;
        live += usize::from(at(i) != 0.0);
    }
    if live * 100 > seen * 85 {
        return None;
    }
    Some((0..n).filter(|&i| at(i) != 0.0).count())
}

fn transposed(v: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    const TILE: usize = 32;
    let mut t = vec![0f32; rows * cols];
    for r0 in (0..rows).step_by(TILE) {
        let r1 = (r0 + TILE).min(rows);
        for c0 in (0..cols).step_by(TILE) {
            for c in c0..(c0 + TILE).min(cols) {
                let dst = &mut t[c * rows + r0..c * rows + r1];
                for (d, r) in dst.iter_mut().zip(r0..r1) {
                    *d = v[r * cols + c];
                }
            }
        }
    }
    t
}

/// MatMul with numpy semantics: a 1-D A is `[1, k]` and a 1-D B `[k, 1]` (the unit dim then
/// dropped from the output), the batch dims (all but the last two) broadcast.
fn lower_batched(
    a: ValueId,
    b: ValueId,
    y: ValueId,
    sa: &[usize],
    sb: &[usize],
    sy: &[usize],
) -> Option<Native> {
    if sa.is_empty() || sb.is_empty() {
        return None;
    }
    let pa: Vec<usize> = if sa.len() == 1 {
        vec![1, sa[0]]
    } else {
        sa.to_vec()
    };
    let pb: Vec<usize> = if sb.len() == 1 {
        vec![sb[0], 1]
    } else {
        sb.to_vec()
    };
    let (m, k) = (pa[pa.len() - 2], pa[pa.len() - 1]);
    let (kb, n) = (pb[pb.len() - 2], pb[pb.len() - 1]);
    if k != kb {
        return None;
    }
    let (ba, bb) = (&pa[..pa.len() - 2], &pb[..pb.len() - 2]);
    let r = ba.len().max(bb.len());
    let pad = |v: &[usize]| -> Vec<usize> {
        let mut p = vec![1; r - v.len()];
        p.extend_from_slice(v);
        p
    };
    let (ba, bb) = (pad(ba), pad(bb));
    let mut batch = Vec::with_capacity(r);
    for (&x, &z) in ba.iter().zip(&bb) {
        batch.push(match (x, z) {
            (x, z) if x == z => x,
            (1, z) => z,
            (x, 1) => x,
            _ => return None,
        });
    }
    // The output's shape must be the batch, then m and n (without the promoted unit dims).
    let mut want = batch.clone();
    if sa.len() > 1 {
        want.push(m);
    }
    if sb.len() > 1 {
        want.push(n);
    }
    if want != sy {
        return None;
    }
    // Element strides (in matrices) of each batch dim in A and B; 0 where broadcast.
    let strides = |dims: &[usize]| -> Vec<usize> {
        let mut s = vec![0; r];
        let mut acc = 1;
        for i in (0..r).rev() {
            s[i] = if dims[i] == 1 { 0 } else { acc };
            acc *= dims[i];
        }
        s
    };
    let (sta, stb) = (strides(&ba), strides(&bb));
    let count: usize = batch.iter().product();
    let mut batches = Vec::with_capacity(count);
    let mut idx = vec![0usize; r];
    for _ in 0..count {
        let ao: usize = idx.iter().zip(&sta).map(|(i, s)| i * s).sum();
        let bo: usize = idx.iter().zip(&stb).map(|(i, s)| i * s).sum();
        batches.push((ao * m * k, bo * k * n));
        for d in (0..r).rev() {
            idx[d] += 1;
            if idx[d] < batch[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    Some(Native {
        what: format!("MatMul {count}x {m}x{k}x{n}"),
        kernel: Kernel::Linear(Linear {
            m,
            k,
            n,
            trans_a: false,
            trans_b: false,
            alpha: 1.0,
            beta: 1.0,
            c_strides: None,
            batches,
            b_const: None,
            #[cfg(target_arch = "x86_64")]
            packed: None,
            #[cfg(target_arch = "x86_64")]
            sparse: None,
        }),
        inputs: vec![Some(a), Some(b)],
        output: y,
        absorbed: vec![],
    })
}
