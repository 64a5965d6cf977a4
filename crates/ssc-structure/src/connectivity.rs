//! Channel connectivity: components of a bipartite output/input graph, and the block-diagonal
//! (grouped or depthwise) form they give under channel permutations.

use serde::Serialize;

use crate::unionfind::UnionFind;

/// One connected component with at least one edge: these outputs read only these inputs, and
/// these inputs feed only these outputs. Channels are ascending.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Component {
    /// Output channels, ascending.
    pub outputs: Vec<u32>,
    /// Input channels (full index space), ascending.
    pub inputs: Vec<u32>,
}

/// The weight is block-diagonal after permuting channels: `groups` diagonal blocks of
/// `block_outputs x block_inputs`, i.e. a `Conv(group = groups)` once the channels are reordered.
///
/// The permutations are gather indices: permuted output `j` is original output
/// `output_perm[j]` and permuted input `j` is original input `input_perm[j]`, so
/// `W'[j, j'] = W[output_perm[j], input_perm[j']]` is block-diagonal and
/// `X' = Gather(X, input_perm, axis = 1)`. Block `b` holds permuted outputs
/// `b * block_outputs ..` and inputs `b * block_inputs ..` (the components in order).
/// Isolated channels (no edge at all) come after the blocks, ascending: they are zero rows or
/// columns of `W'`, which a rewrite slices away or spreads over the groups.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BlockDiagonal {
    /// The number of diagonal blocks (the `group` of the equivalent conv).
    pub groups: usize,
    /// Outputs per block.
    pub block_outputs: usize,
    /// Inputs per block.
    pub block_inputs: usize,
    /// Gather indices over outputs (see above).
    pub output_perm: Vec<u32>,
    /// Gather indices over inputs (see above).
    pub input_perm: Vec<u32>,
    /// Both permutations are the identity: the weight already is in grouped layout.
    pub identity: bool,
    /// Isolated channels trail the blocks (see above); `false` means the blocks cover every
    /// channel and the conv is exactly `Conv(group = groups)` on permuted channels.
    pub padded: bool,
}

impl BlockDiagonal {
    /// The inverse of `output_perm`: `Y = Gather(Y', inverse, axis = 1)` restores the original
    /// output order from the permuted conv's output `Y'`.
    pub fn output_unperm(&self) -> Vec<u32> {
        invert(&self.output_perm)
    }
}

/// A slot that holds no channel in a [`PaddedBlocks`] layout (its weights are zero).
pub const PAD: u32 = u32::MAX;

/// Unequal components laid out as `groups` equal blocks of `block_outputs x block_inputs`
/// slots, the short ones padded with zero slots ([`PAD`]), so that a `Conv(group = groups)`
/// computes them exactly: slot `j` of the grouped conv's output is original output
/// `out_slots[j]` (block `j / block_outputs`), and input slot `j` reads original input
/// `in_slots[j]`; a weight entry is zero when either slot is a pad. Outputs with no edge are
/// spread over the blocks with the fewest outputs (they are zero rows there), so every output
/// has exactly one slot. `hubs` are input channels set aside before the components were
/// formed (see [`crate::SscSplit::padded`]); they are in no block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PaddedBlocks {
    /// The number of blocks (the grouped conv's `group`).
    pub groups: usize,
    /// Output slots per block (the largest component's outputs, or more).
    pub block_outputs: usize,
    /// Input slots per block (the largest component's inputs).
    pub block_inputs: usize,
    /// `groups * block_outputs` output slots: an original output channel or [`PAD`].
    pub out_slots: Vec<u32>,
    /// `groups * block_inputs` input slots: an original input channel or [`PAD`].
    pub in_slots: Vec<u32>,
    /// Input channels left out of every block, ascending.
    pub hubs: Vec<u32>,
}

impl PaddedBlocks {
    /// Lays out `conn`'s components (at least two) as padded blocks; `None` with fewer.
    pub fn new(conn: &Connectivity, hubs: Vec<u32>) -> Option<PaddedBlocks> {
        let groups = conn.components.len();
        if groups < 2 {
            return None;
        }
        let mut outs: Vec<Vec<u32>> = conn.components.iter().map(|c| c.outputs.clone()).collect();
        for &o in &conn.isolated_outputs {
            // The first block with the fewest outputs: deterministic.
            let (b, _) = outs
                .iter()
                .enumerate()
                .min_by_key(|(b, v)| (v.len(), *b))
                .expect("at least two blocks");
            outs[b].push(o);
        }
        let bo = outs.iter().map(Vec::len).max().unwrap_or(0);
        let bi = conn
            .components
            .iter()
            .map(|c| c.inputs.len())
            .max()
            .unwrap_or(0);
        let out_slots = outs.iter().flat_map(|v| padded(v, bo)).collect();
        let in_slots = conn
            .components
            .iter()
            .flat_map(|c| padded(&c.inputs, bi))
            .collect();
        Some(PaddedBlocks {
            groups,
            block_outputs: bo,
            block_inputs: bi,
            out_slots,
            in_slots,
            hubs,
        })
    }

    /// For each original output (of `outputs`), its slot: `Y = Gather(Y', output_slot_of)`.
    pub fn output_slot_of(&self, outputs: usize) -> Option<Vec<u32>> {
        let mut at = vec![PAD; outputs];
        for (j, &o) in self.out_slots.iter().enumerate() {
            if o != PAD {
                *at.get_mut(o as usize)? = j as u32;
            }
        }
        (!at.contains(&PAD)).then_some(at)
    }
}

/// `v` followed by [`PAD`]s up to `n` entries.
fn padded(v: &[u32], n: usize) -> impl Iterator<Item = u32> + '_ {
    v.iter().copied().chain(std::iter::repeat(PAD)).take(n)
}

/// The inverse of a permutation given as gather indices.
pub fn invert(perm: &[u32]) -> Vec<u32> {
    let mut inv = vec![0u32; perm.len()];
    for (j, &p) in perm.iter().enumerate() {
        inv[p as usize] = j as u32;
    }
    inv
}

/// Components of the bipartite graph whose edges are the (output, input) pairs of selected
/// kernels, in the full channel index space (for a grouped conv, input `g * Ci/group + i`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Connectivity {
    /// Output channels in the graph.
    pub outputs: usize,
    /// Input channels in the graph (all groups).
    pub inputs: usize,
    /// Components with at least one edge, ordered by their smallest output channel.
    pub components: Vec<Component>,
    /// Outputs with no edge, ascending.
    pub isolated_outputs: Vec<u32>,
    /// Inputs with no edge, ascending.
    pub isolated_inputs: Vec<u32>,
    /// Present when there is at least one component and all components have the same size.
    pub blocks: Option<BlockDiagonal>,
    /// Present when the blocks have one input each: a depthwise conv with this channel
    /// multiplier (outputs per input) after permutation. With identity permutations, output `o`
    /// reads input `o / multiplier`, the ONNX `group = Ci` layout.
    pub depthwise_multiplier: Option<usize>,
}

impl Connectivity {
    /// The number of diagonal blocks, when the components are equal-sized.
    pub fn groups(&self) -> Option<usize> {
        self.blocks.as_ref().map(|b| b.groups)
    }

    /// True when every channel is in one component: nothing to split.
    pub fn is_dense(&self) -> bool {
        self.components.len() == 1
            && self.isolated_outputs.is_empty()
            && self.isolated_inputs.is_empty()
    }

    pub(crate) fn build(
        uf: &mut UnionFind,
        outputs: usize,
        inputs: usize,
        out_edge: &[bool],
        in_edge: &[bool],
    ) -> Connectivity {
        let mut comp_of_root = vec![u32::MAX; outputs + inputs];
        let mut components: Vec<Component> = Vec::new();
        let mut isolated_outputs = Vec::new();
        let mut isolated_inputs = Vec::new();
        for (o, &edge) in out_edge.iter().enumerate().take(outputs) {
            if !edge {
                isolated_outputs.push(o as u32);
                continue;
            }
            let r = uf.find(o as u32) as usize;
            if comp_of_root[r] == u32::MAX {
                comp_of_root[r] = components.len() as u32;
                components.push(Component {
                    outputs: Vec::new(),
                    inputs: Vec::new(),
                });
            }
            components[comp_of_root[r] as usize].outputs.push(o as u32);
        }
        for (i, &edge) in in_edge.iter().enumerate().take(inputs) {
            if !edge {
                isolated_inputs.push(i as u32);
                continue;
            }
            let r = uf.find((outputs + i) as u32) as usize;
            // Every edge joins an output and an input, so the root already has a component.
            components[comp_of_root[r] as usize].inputs.push(i as u32);
        }
        let blocks = block_diagonal(&components, &isolated_outputs, &isolated_inputs);
        let depthwise_multiplier = blocks
            .as_ref()
            .filter(|b| b.block_inputs == 1)
            .map(|b| b.block_outputs);
        Connectivity {
            outputs,
            inputs,
            components,
            isolated_outputs,
            isolated_inputs,
            blocks,
            depthwise_multiplier,
        }
    }
}

fn block_diagonal(
    components: &[Component],
    isolated_outputs: &[u32],
    isolated_inputs: &[u32],
) -> Option<BlockDiagonal> {
    let first = components.first()?;
    let (a, b) = (first.outputs.len(), first.inputs.len());
    if components
        .iter()
        .any(|c| c.outputs.len() != a || c.inputs.len() != b)
    {
        return None;
    }
    let output_perm: Vec<u32> = components
        .iter()
        .flat_map(|c| c.outputs.iter().copied())
        .chain(isolated_outputs.iter().copied())
        .collect();
    let input_perm: Vec<u32> = components
        .iter()
        .flat_map(|c| c.inputs.iter().copied())
        .chain(isolated_inputs.iter().copied())
        .collect();
    let is_id = |p: &[u32]| p.iter().enumerate().all(|(j, &x)| x as usize == j);
    Some(BlockDiagonal {
        groups: components.len(),
        block_outputs: a,
        block_inputs: b,
        identity: is_id(&output_perm) && is_id(&input_perm),
        padded: !isolated_outputs.is_empty() || !isolated_inputs.is_empty(),
        output_perm,
        input_perm,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(outputs: usize, inputs: usize, edges: &[(usize, usize)]) -> Connectivity {
        let mut uf = UnionFind::new(outputs + inputs);
        let mut oe = vec![false; outputs];
        let mut ie = vec![false; inputs];
        for &(o, i) in edges {
            uf.union(o as u32, (outputs + i) as u32);
            oe[o] = true;
            ie[i] = true;
        }
        Connectivity::build(&mut uf, outputs, inputs, &oe, &ie)
    }

    #[test]
    fn interleaved_blocks_get_sorted_permutations() {
        // o in {0,2} <-> i in {1,3}; o in {1,3} <-> i in {0,2}
        let c = conn(4, 4, &[(0, 1), (2, 3), (0, 3), (1, 0), (3, 2), (3, 0)]);
        let b = c.blocks.as_ref().unwrap();
        assert_eq!(b.groups, 2);
        assert_eq!(b.output_perm, vec![0, 2, 1, 3]);
        assert_eq!(b.input_perm, vec![1, 3, 0, 2]);
        assert!(!b.identity && !b.padded);
        assert_eq!(b.output_unperm(), vec![0, 2, 1, 3]);
        assert_eq!(c.depthwise_multiplier, None);
    }

    #[test]
    fn unequal_components_are_not_blocks() {
        let c = conn(3, 3, &[(0, 0), (1, 1), (1, 2), (2, 2)]);
        assert_eq!(c.components.len(), 2);
        assert!(c.blocks.is_none());
    }

    #[test]
    fn isolated_channels_trail_the_blocks() {
        let c = conn(3, 2, &[(0, 0), (2, 1)]);
        let b = c.blocks.as_ref().unwrap();
        assert_eq!((b.groups, b.block_outputs, b.block_inputs), (2, 1, 1));
        assert_eq!(b.output_perm, vec![0, 2, 1]);
        assert!(b.padded);
        assert_eq!(c.depthwise_multiplier, Some(1));
        assert_eq!(c.isolated_outputs, vec![1]);
    }

    #[test]
    fn no_edges_no_blocks() {
        let c = conn(2, 2, &[]);
        assert!(c.components.is_empty() && c.blocks.is_none());
        assert_eq!(invert(&[2, 0, 1]), vec![1, 2, 0]);
    }
}
