//! Views and in-place concatenation in the memory plan: a value that is a contiguous block of
//! another (a Reshape, a channel Slice or Split of an NCHW image) is placed inside it instead of
//! being copied, and the inputs of a Concat along its outermost non-unit axis are written by
//! their producers straight into the concatenation (DenseNet's growing feature maps become one
//! buffer per block, each layer writing its channels once).
//!
//! The plan is a forest: each arena value either is a root (placed by `memory::place`) or lives
//! at a fixed offset inside a parent. A root's lifetime is the union of its descendants'.

use super::{Kernel, Loc, Step};

/// Parent links over arena value indices (before placement).
pub(super) struct Aliases {
    /// `(parent, offset in elements)` for non-roots.
    pub parent: Vec<Option<(usize, usize)>>,
}

impl Aliases {
    /// The root of `i` and `i`'s offset inside it.
    pub(super) fn root(&self, mut i: usize) -> (usize, usize) {
        let mut off = 0;
        while let Some((p, o)) = self.parent[i] {
            off += o;
            i = p;
        }
        (i, off)
    }
}

fn arena(l: Option<Loc>) -> Option<usize> {
    match l {
        Some(Loc::Arena { off, .. }) => Some(off),
        _ => None,
    }
}

/// Turns copies into views and Concats into in-place writes where that is safe, rewriting the
/// steps' kernels (`Kernel::View`, `Kernel::Concat` with `in_place` flags). `lens[i]` is arena
/// value `i`'s length; `pinned[i]` marks values that must keep their own buffer (graph inputs,
/// which the session fills before the run).
pub(super) fn plan(steps: &mut [Step], lens: &[usize], pinned: &[bool]) -> Aliases {
    let mut al = Aliases {
        parent: vec![None; lens.len()],
    };
    for s in steps.iter_mut() {
        let out = arena(s.outputs.first().copied().flatten());
        match &mut s.kernel {
            Kernel::Copy => {
                if let (Some(i), Some(o)) = (arena(s.inputs[0]), out) {
                    if lens[i] == lens[o] && !pinned[o] {
                        al.parent[o] = Some((i, 0));
                        s.kernel = Kernel::View;
                        s.what = "view (no copy)".into();
                    }
                }
            }
            Kernel::Strided(k) => {
                if let (Some(i), Some(o), Some(base)) = (arena(s.inputs[0]), out, k.contiguous()) {
                    if base + lens[o] <= lens[i] && !pinned[o] {
                        al.parent[o] = Some((i, base));
                        s.kernel = Kernel::View;
                        s.what = "view of a block (no copy)".into();
                    }
                }
            }
            Kernel::Split(parts) => {
                let Some(i) = arena(s.inputs[0]) else {
                    continue;
                };
                let outs: Option<Vec<(usize, usize)>> = parts
                    .iter()
                    .zip(&s.outputs)
                    .map(|(k, l)| {
                        let o = arena(*l)?;
                        let b = k.contiguous()?;
                        (b + lens[o] <= lens[i] && !pinned[o]).then_some((o, b))
                    })
                    .collect();
                if let Some(outs) = outs {
                    for (o, b) in outs {
                        al.parent[o] = Some((i, b));
                    }
                    s.kernel = Kernel::View;
                    s.what = "split as views (no copy)".into();
                }
            }
            Kernel::Concat {
                outer: 1,
                blocks,
                in_place,
            } => {
                let Some(c) = out else { continue };
                if pinned[c] {
                    continue;
                }
                // Wanted offset of each input, and where its root would have to go.
                let mut at = 0usize;
                let mut claims: Vec<(usize, usize, usize)> = Vec::new(); // (input, root, delta)
                for (j, &b) in blocks.iter().enumerate() {
                    let d = at;
                    at += b;
                    let Some(i) = arena(s.inputs[j]) else {
                        continue;
                    };
                    let (r, off) = al.root(i);
                    if r == c || pinned[r] || d < off || lens[i] != b {
                        continue;
                    }
                    claims.push((j, r, d - off));
                }
                // Roots that fit their input exactly first: a larger root (a tensor of which only
                // a part is concatenated) must not crowd out a conv output written in place.
                claims.sort_by_key(|&(j, r, _)| (lens[r], j));
                // Each root once, at one offset, inside the output, not overlapping another.
                let mut taken: Vec<(usize, usize, usize)> = Vec::new(); // (root, start, end)
                for &(j, r, delta) in &claims {
                    let end = delta + lens[r];
                    let same = taken.iter().find(|t| t.0 == r);
                    let ok = match same {
                        Some(t) => t.1 == delta,
                        None => {
                            end <= lens[c]
                                && taken.iter().all(|t| end <= t.1 || t.2 <= delta)
                                // a root also read as an input elsewhere in this concat, at
                                // another offset, keeps its buffer
                                && claims.iter().all(|&(_, r2, d2)| r2 != r || d2 == delta)
                        }
                    };
                    if ok {
                        if same.is_none() {
                            taken.push((r, delta, end));
                        }
                        in_place[j] = true;
                    }
                }
                // A copied input must not land on a placed root's range.
                let mut at = 0usize;
                let copied: Vec<(usize, usize)> = blocks
                    .iter()
                    .enumerate()
                    .map(|(j, &b)| {
                        let r = (at, at + b);
                        at += b;
                        (j, r)
                    })
                    .filter(|(j, _)| !in_place[*j])
                    .map(|(_, r)| r)
                    .collect();
                taken.retain(|t| copied.iter().all(|&(a, b)| b <= t.1 || t.2 <= a));
                for (j, flag) in in_place.iter_mut().enumerate() {
                    if *flag {
                        let i = arena(s.inputs[j]).expect("claimed inputs are arena values");
                        let r = al.root(i).0;
                        *flag = taken.iter().any(|t| t.0 == r);
                    }
                }
                for &(r, delta, _) in &taken {
                    al.parent[r] = Some((c, delta));
                }
                if in_place.iter().all(|&f| f) {
                    s.what = "concat in place (no copy)".into();
                } else if in_place.iter().any(|&f| f) {
                    s.what = format!(
                        "concat ({} of {} inputs in place)",
                        in_place.iter().filter(|&&f| f).count(),
                        in_place.len()
                    );
                }
            }
            _ => {}
        }
    }
    al
}
