//! Union-find over output and input channels, the cheapest way to get connected components of a
//! bipartite graph met one edge at a time during the weight scan.

pub(crate) struct UnionFind {
    parent: Vec<u32>,
    size: Vec<u32>,
}

impl UnionFind {
    pub(crate) fn new(n: usize) -> UnionFind {
        UnionFind {
            parent: (0..n as u32).collect(),
            size: vec![1; n],
        }
    }

    #[inline]
    pub(crate) fn find(&mut self, mut x: u32) -> u32 {
        // Path halving keeps trees flat without recursion.
        while self.parent[x as usize] != x {
            let p = self.parent[x as usize];
            let gp = self.parent[p as usize];
            self.parent[x as usize] = gp;
            x = gp;
        }
        x
    }

    pub(crate) fn union(&mut self, a: u32, b: u32) {
        let ra = self.find(a);
        self.union_root(ra, b);
    }

    /// Joins `x` to the tree whose root is `root` and returns the root of the joined tree. The
    /// scan calls this with the root of the row it is in, so the common case (x already in
    /// that tree, directly under its root) costs one load.
    #[inline(always)]
    pub(crate) fn union_root(&mut self, root: u32, x: u32) -> u32 {
        if self.parent[x as usize] == root {
            return root;
        }
        self.link(root, x)
    }

    #[inline(never)]
    fn link(&mut self, ra: u32, x: u32) -> u32 {
        let rb = self.find(x);
        if ra == rb {
            return ra;
        }
        let (big, small) = if self.size[ra as usize] >= self.size[rb as usize] {
            (ra, rb)
        } else {
            (rb, ra)
        };
        self.parent[small as usize] = big;
        self.size[big as usize] += self.size[small as usize];
        big
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_transitively() {
        let mut uf = UnionFind::new(6);
        uf.union(0, 3);
        uf.union(3, 4);
        uf.union(1, 5);
        assert_eq!(uf.find(0), uf.find(4));
        assert_ne!(uf.find(0), uf.find(1));
        assert_eq!(uf.find(1), uf.find(5));
        assert_eq!(uf.find(2), 2);
    }
}
