//! Arithmetic on possibly symbolic dimensions, so inference keeps `batch` as `batch` through
//! elementwise ops and reshapes instead of degrading every non-static dim to unknown.

use ssc_ir::Dim;

/// A dim from a computed size; negative sizes are impossible shapes.
pub(crate) fn dim_of(v: i64, what: &str) -> Result<Dim, String> {
    usize::try_from(v)
        .map(Dim::Known)
        .map_err(|_| format!("{what} would be {v}"))
}

/// The known size of `d` as i64 (dims above i64::MAX cannot occur in a loaded model).
pub(crate) fn known(d: &Dim) -> Option<i64> {
    d.known().and_then(|n| i64::try_from(n).ok())
}

/// One aligned pair of numpy broadcasting.
fn broadcast_pair(a: &Dim, b: &Dim) -> Result<Dim, String> {
    Ok(match (a, b) {
        (Dim::Known(1), x) | (x, Dim::Known(1)) => x.clone(),
        (Dim::Known(x), Dim::Known(y)) if x == y => Dim::Known(*x),
        (Dim::Known(x), Dim::Known(y)) => {
            return Err(format!("dims {x} and {y} do not broadcast"));
        }
        // A broadcast is only valid if the other side is 1 or equal, so the result is n.
        (Dim::Known(n), _) | (_, Dim::Known(n)) => Dim::Known(*n),
        (Dim::Param(p), Dim::Param(q)) if p == q => Dim::Param(p.clone()),
        _ => Dim::Unknown,
    })
}

/// Multidirectional (numpy) broadcasting of several shapes.
pub(crate) fn broadcast(shapes: &[&[Dim]]) -> Result<Vec<Dim>, String> {
    let rank = shapes.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut out = vec![Dim::Known(1); rank];
    for s in shapes {
        let pad = rank - s.len();
        for (i, d) in s.iter().enumerate() {
            out[pad + i] = broadcast_pair(&out[pad + i], d)?;
        }
    }
    Ok(out)
}

/// Two dims that must be equal (Concat's other axes, MatMul's contraction): the more informative
/// one, or an error when both are known and differ.
pub(crate) fn unify(a: &Dim, b: &Dim) -> Result<Dim, String> {
    Ok(match (a, b) {
        (Dim::Known(x), Dim::Known(y)) if x != y => {
            return Err(format!("dims {x} and {y} must be equal"));
        }
        (Dim::Known(x), _) | (_, Dim::Known(x)) => Dim::Known(*x),
        (Dim::Param(p), _) | (_, Dim::Param(p)) => Dim::Param(p.clone()),
        _ => Dim::Unknown,
    })
}

/// `d * k` for a known factor.
pub(crate) fn scale(d: &Dim, k: i64) -> Result<Dim, String> {
    match (d, k) {
        (_, 1) => Ok(d.clone()),
        (Dim::Known(n), _) => {
            let v = i64::try_from(*n)
                .ok()
                .and_then(|n| n.checked_mul(k))
                .ok_or_else(|| format!("dim {n} times {k} overflows"))?;
            dim_of(v, "a dimension")
        }
        _ => Ok(Dim::Unknown),
    }
}

/// The product of some dims, kept symbolic: a known factor times named parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Product {
    known: u128,
    params: Vec<String>,
    /// Some factor is unknown (or the known factor overflowed).
    unknown: bool,
}

impl Product {
    pub(crate) fn of(dims: &[Dim]) -> Product {
        let mut p = Product {
            known: 1,
            params: Vec::new(),
            unknown: false,
        };
        for d in dims {
            match d {
                Dim::Known(n) => match p.known.checked_mul(*n as u128) {
                    Some(k) => p.known = k,
                    None => p.unknown = true,
                },
                Dim::Param(s) => p.params.push(s.clone()),
                Dim::Unknown => p.unknown = true,
            }
        }
        p.params.sort();
        p
    }

    pub(crate) fn unknown() -> Product {
        Product {
            known: 1,
            params: Vec::new(),
            unknown: true,
        }
    }

    /// The product as one dim, when it is a number or exactly one parameter.
    pub(crate) fn to_dim(&self) -> Dim {
        if self.unknown {
            return Dim::Unknown;
        }
        match self.params.as_slice() {
            [] => usize::try_from(self.known).map_or(Dim::Unknown, Dim::Known),
            [p] if self.known == 1 => Dim::Param(p.clone()),
            _ => Dim::Unknown,
        }
    }

    pub(crate) fn static_value(&self) -> Option<u128> {
        (!self.unknown && self.params.is_empty()).then_some(self.known)
    }

    /// `self / other` as one dim (Reshape's -1). Errors only when both are static and the
    /// division is not exact, which no input could satisfy.
    pub(crate) fn div(&self, other: &Product) -> Result<Dim, String> {
        if self.unknown || other.unknown || other.known == 0 {
            return Ok(Dim::Unknown);
        }
        let mut rest = self.params.clone();
        for p in &other.params {
            match rest.iter().position(|q| q == p) {
                Some(i) => {
                    rest.remove(i);
                }
                None => return Ok(Dim::Unknown),
            }
        }
        if !self.known.is_multiple_of(other.known) {
            if rest.is_empty() {
                return Err(format!(
                    "{} elements cannot be split into groups of {}",
                    self.known, other.known
                ));
            }
            return Ok(Dim::Unknown);
        }
        Ok(Product {
            known: self.known / other.known,
            params: rest,
            unknown: false,
        }
        .to_dim())
    }
}

/// A computed output size as a dim; negative or huge sizes are impossible shapes.
pub(crate) fn dim_wide(v: i128) -> Result<Dim, String> {
    usize::try_from(v)
        .map(Dim::Known)
        .map_err(|_| format!("the output size would be {v}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Dim {
        Dim::Param(s.into())
    }
    const fn k(n: usize) -> Dim {
        Dim::Known(n)
    }

    #[test]
    fn broadcasting_keeps_symbols() {
        let a = [p("N"), k(64), k(1), k(1)];
        let b = [k(64), k(7), k(7)];
        assert_eq!(
            broadcast(&[&a, &b]).unwrap(),
            vec![p("N"), k(64), k(7), k(7)]
        );
        assert!(broadcast(&[&[k(3)], &[k(4)]]).is_err());
        assert_eq!(
            broadcast(&[&[p("N")], &[Dim::Unknown]]).unwrap(),
            vec![Dim::Unknown]
        );
    }

    #[test]
    fn symbolic_division_for_reshape() {
        let input = Product::of(&[p("N"), k(512), k(1), k(1)]);
        assert_eq!(input.div(&Product::of(&[p("N")])).unwrap(), k(512));
        assert_eq!(input.div(&Product::of(&[k(512)])).unwrap(), p("N"));
        assert_eq!(input.div(&Product::of(&[k(3)])).unwrap(), Dim::Unknown);
        assert!(Product::of(&[k(10)]).div(&Product::of(&[k(3)])).is_err());
    }
}
