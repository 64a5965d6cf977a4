//! Shape arithmetic shared by the ops: numpy broadcasting, strides, axis normalisation and
//! strided element walks.

/// Row-major strides of `shape`.
pub(crate) fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

pub(crate) fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// Normalises an ONNX axis in `[-rank, rank)` to `[0, rank)`.
pub(crate) fn norm_axis(axis: i64, rank: usize) -> Option<usize> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    (0..r).contains(&a).then_some(a as usize)
}

/// The numpy broadcast of two shapes, or `None` when they are incompatible.
pub(crate) fn broadcast_shape(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for (i, o) in out.iter_mut().enumerate() {
        let da = if i + a.len() >= n {
            a[i + a.len() - n]
        } else {
            1
        };
        let db = if i + b.len() >= n {
            b[i + b.len() - n]
        } else {
            1
        };
        *o = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return None,
        };
    }
    Some(out)
}

/// Strides for reading an array of `shape` as if it had the broadcast shape `out` (stride 0
/// along broadcast dimensions). `shape` must broadcast to `out`.
pub(crate) fn broadcast_strides(shape: &[usize], out: &[usize]) -> Vec<usize> {
    let own = strides(shape);
    let lead = out.len() - shape.len();
    (0..out.len())
        .map(|i| {
            if i < lead || shape[i - lead] == 1 {
                0
            } else {
                own[i - lead]
            }
        })
        .collect()
}

/// Calls `f(k, [offsets])` for every element `k` of `out`, in row-major order, with the
/// offset into each operand under the given strides. The innermost dimension is a plain loop,
/// so the closure inlines into a tight loop.
pub(crate) fn walk<const N: usize>(
    out: &[usize],
    strides: [&[usize]; N],
    mut f: impl FnMut(usize, [usize; N]),
) {
    let total = numel(out);
    if total == 0 {
        return;
    }
    if out.is_empty() {
        f(0, [0; N]);
        return;
    }
    let rank = out.len();
    let inner = out[rank - 1];
    let inner_strides: [usize; N] = std::array::from_fn(|j| strides[j][rank - 1]);
    let mut idx = vec![0usize; rank - 1];
    let mut base = [0usize; N];
    let mut k = 0;
    loop {
        let mut off = base;
        for _ in 0..inner {
            f(k, off);
            k += 1;
            for j in 0..N {
                off[j] += inner_strides[j];
            }
        }
        // Advance the odometer over the outer dimensions.
        let mut d = rank - 1;
        loop {
            if d == 0 {
                return;
            }
            d -= 1;
            idx[d] += 1;
            for j in 0..N {
                base[j] += strides[j][d];
            }
            if idx[d] < out[d] {
                break;
            }
            for j in 0..N {
                base[j] -= strides[j][d] * out[d];
            }
            idx[d] = 0;
        }
    }
}

/// Materialises `x` (of `shape`) broadcast to `out`.
pub(crate) fn broadcast_to<T: Copy>(x: &[T], shape: &[usize], out: &[usize]) -> Vec<T> {
    if shape == out {
        return x.to_vec();
    }
    let s = broadcast_strides(shape, out);
    let mut v = Vec::with_capacity(numel(out));
    walk(out, [&s], |_, [o]| v.push(x[o]));
    v
}

/// Elementwise `f(a, b)` under numpy broadcasting; `out` is the broadcast shape.
pub(crate) fn zip2<A: Copy, B: Copy, R>(
    a: &[A],
    ash: &[usize],
    b: &[B],
    bsh: &[usize],
    out: &[usize],
    mut f: impl FnMut(A, B) -> R,
) -> Vec<R> {
    if ash == out && bsh == out {
        return a.iter().zip(b).map(|(&x, &y)| f(x, y)).collect();
    }
    if bsh.iter().product::<usize>() == 1 && ash == out {
        let y = b[0];
        return a.iter().map(|&x| f(x, y)).collect();
    }
    let sa = broadcast_strides(ash, out);
    let sb = broadcast_strides(bsh, out);
    let mut v = Vec::with_capacity(numel(out));
    walk(out, [&sa, &sb], |_, [i, j]| v.push(f(a[i], b[j])));
    v
}

/// Every row-major multi-index of `shape`, decoded from a flat index.
pub(crate) fn unravel(mut flat: usize, shape: &[usize], idx: &mut [usize]) {
    for d in (0..shape.len()).rev() {
        idx[d] = flat % shape[d];
        flat /= shape[d];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasting() {
        assert_eq!(broadcast_shape(&[2, 1, 3], &[4, 1]), Some(vec![2, 4, 3]));
        assert_eq!(broadcast_shape(&[2, 3], &[3, 2]), None);
        assert_eq!(broadcast_shape(&[], &[5]), Some(vec![5]));
        let v = zip2(&[1, 2], &[2, 1], &[10, 20, 30], &[3], &[2, 3], |a, b| a + b);
        assert_eq!(v, [11, 21, 31, 12, 22, 32]);
        assert_eq!(broadcast_to(&[7, 8], &[2], &[2, 2]), [7, 8, 7, 8]);
    }

    #[test]
    fn axes() {
        assert_eq!(norm_axis(-1, 3), Some(2));
        assert_eq!(norm_axis(3, 3), None);
        assert_eq!(norm_axis(-4, 3), None);
        assert_eq!(strides(&[2, 3, 4]), [12, 4, 1]);
    }
}
