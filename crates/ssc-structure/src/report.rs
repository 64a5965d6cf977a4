//! The compact human summaries shared by the `Display` impls (JSON goes through serde).

use crate::classes::FilterClass;
use crate::connectivity::Connectivity;

/// A percentage that never rounds a non-zero fraction to 0% or a partial one to 100%.
pub(crate) fn pct(x: f64) -> String {
    if x == 0.0 {
        "0%".into()
    } else if x < 0.005 {
        "<1%".into()
    } else if x < 1.0 && x > 0.995 {
        ">99%".into()
    } else {
        format!("{:.0}%", x * 100.0)
    }
}

/// `dense`, `G=4`, `G=4 (perm)`, `depthwise m=1`, `irregular 5 comps` or `all zero`.
pub(crate) fn conn_str(c: &Connectivity, single: &str) -> String {
    if c.components.is_empty() {
        return "all zero".into();
    }
    match &c.blocks {
        None => format!("irregular {} comps", c.components.len()),
        Some(b) if b.groups == 1 => single.to_string(),
        Some(b) => {
            let perm = if b.identity { "" } else { " (perm)" };
            match c.depthwise_multiplier {
                Some(m) => format!("depthwise m={m}{perm}"),
                None => format!("G={}{perm}", b.groups),
            }
        }
    }
}

/// The channel-level unified and pruning facts, for [`unified_str`].
pub(crate) struct ChannelSummary<'a> {
    pub input_classes: &'a [Vec<u32>],
    pub distinct_inputs: usize,
    pub output_classes: &'a [FilterClass],
    pub distinct_outputs: usize,
    pub zero_outputs: usize,
    pub zero_inputs: usize,
    /// What outputs and inputs are called (`out`/`in`, `cols`/`rows`).
    pub names: (&'static str, &'static str),
}

/// `in 16/64 distinct, out 3/8 distinct (±), zero-out 4, zero-in 1`; only facts that are present.
pub(crate) fn unified_str(c: &ChannelSummary<'_>) -> Vec<String> {
    let (on, inn) = c.names;
    let mut parts = Vec::new();
    if !c.input_classes.is_empty() {
        let members: usize = c.input_classes.iter().map(Vec::len).sum();
        let nonzero = c.distinct_inputs + members - c.input_classes.len();
        parts.push(format!("{inn} {}/{nonzero} distinct", c.distinct_inputs));
    }
    if !c.output_classes.is_empty() {
        let members: usize = c.output_classes.iter().map(|k| k.members.len()).sum();
        let nonzero = c.distinct_outputs + members - c.output_classes.len();
        let neg = c
            .output_classes
            .iter()
            .any(|k| k.members.iter().any(|m| m.negated));
        parts.push(format!(
            "{on} {}/{nonzero} distinct{}",
            c.distinct_outputs,
            if neg { " (±)" } else { "" }
        ));
    }
    if c.zero_outputs > 0 {
        parts.push(format!("zero-{on} {}", c.zero_outputs));
    }
    if c.zero_inputs > 0 {
        parts.push(format!("zero-{inn} {}", c.zero_inputs));
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_do_not_lie_at_the_edges() {
        assert_eq!(pct(0.0), "0%");
        assert_eq!(pct(0.001), "<1%");
        assert_eq!(pct(0.999), ">99%");
        assert_eq!(pct(1.0), "100%");
        assert_eq!(pct(0.75), "75%");
    }
}
