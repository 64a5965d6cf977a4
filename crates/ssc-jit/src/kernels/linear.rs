//! Gemm and MatMul through the `gemm` crate: `Y = alpha * op(A) * op(B) + beta * C`, with
//! transposes expressed as strides (nothing is copied) and C preloaded into Y. Batched MatMul
//! (numpy broadcasting over the leading dims) runs one product per output matrix.

/// One matrix product. A's leading dimensions fold into M (MatMul with a 2-D right operand).
pub(crate) struct Linear {
    pub m: usize,
    pub k: usize,
    pub n: usize,
    pub trans_a: bool,
    pub trans_b: bool,
    pub alpha: f32,
    pub beta: f32,
    /// Strides of C over the `[m, n]` output (0 where broadcast), when C is present.
    pub c_strides: Option<[usize; 2]>,
    /// Batched MatMul: for each output matrix (in order), the element offsets of its A and B
    /// matrices (a broadcast operand repeats its offset). Empty for a single product.
    pub batches: Vec<(usize, usize)>,
    /// A constant transposed B laid out `k x n` row-major at compile time (then `trans_b` is
    /// false and the step's B input is not read): read with a column stride, it made the `gemm`
    /// crate's packing stride through memory (ddddocr's 20x1024x8210 head took 40 ms, 7.5 ms
    /// laid out). Only for a B this node alone reads: a copy per node of a weight that unrolled
    /// recurrent cells share (captcha_crnn) made that model 1.8x slower.
    pub b_const: Option<Vec<f32>>,
    /// A constant B packed once for the AVX-512 kernel of `kernels::packed_gemm` (then
    /// `trans_a` is false, `alpha` is 1 and the step's B input is not read).
    #[cfg(target_arch = "x86_64")]
    pub packed: Option<crate::kernels::packed_gemm::PackedB>,
    /// A constant sparse B compressed once for `kernels::sparse_linear` where `plan::choice`
    /// prices it below the dense product (same conditions as `packed`, which it replaces).
    #[cfg(target_arch = "x86_64")]
    pub sparse: Option<crate::kernels::sparse_linear::SparseB>,
}

impl Linear {
    /// `c_dims` is C's shape (rank <= 2, unidirectionally broadcastable to `[m, n]`).
    pub(crate) fn c_strides(c_dims: &[usize], m: usize, n: usize) -> Option<[usize; 2]> {
        let (cm, cn) = match c_dims {
            [] => (1, 1),
            [cn] => (1, *cn),
            [cm, cn] => (*cm, *cn),
            _ => return None,
        };
        if (cm != 1 && cm != m) || (cn != 1 && cn != n) {
            return None;
        }
        let sn = usize::from(cn != 1);
        let sm = if cm != 1 { cn } else { 0 };
        Some([sm, sn])
    }

    /// f32 elements of scratch [`Linear::run`] needs.
    pub(crate) fn scratch_len(&self) -> usize {
        #[cfg(target_arch = "x86_64")]
        if let Some(s) = &self.sparse {
            return s.scratch_len(self.m);
        }
        0
    }

    pub(crate) fn run(
        &self,
        a: &[f32],
        b: Option<&[f32]>,
        c: Option<&[f32]>,
        y: &mut [f32],
        scratch: &mut [f32],
    ) {
        #[cfg(target_arch = "x86_64")]
        if let Some(s) = &self.sparse {
            let read_dst = self.preload(c, y);
            return s.gemm(self.m, a, y, read_dst, scratch);
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = scratch;
        #[cfg(target_arch = "x86_64")]
        if let Some(p) = &self.packed {
            let read_dst = self.preload(c, y);
            return p.gemm(self.m, a, self.k, y, read_dst);
        }
        let b = self
            .b_const
            .as_deref()
            .or(b)
            .expect("a B input or a constant B");
        if self.batches.is_empty() {
            return self.run_one(a, b, c, y);
        }
        let (mk, kn, mn) = (self.m * self.k, self.k * self.n, self.m * self.n);
        for (i, &(ao, bo)) in self.batches.iter().enumerate() {
            self.run_one(
                &a[ao..ao + mk],
                &b[bo..bo + kn],
                None,
                &mut y[i * mn..(i + 1) * mn],
            );
        }
    }

    /// Writes `beta * C` into `y` when there is a C to add; whether it did.
    fn preload(&self, c: Option<&[f32]>, y: &mut [f32]) -> bool {
        let (m, n) = (self.m, self.n);
        match (c, self.c_strides) {
            (Some(c), Some([sm, sn])) if self.beta != 0.0 => {
                for i in 0..m {
                    for j in 0..n {
                        y[i * n + j] = self.beta * c[i * sm + j * sn];
                    }
                }
                true
            }
            _ => false,
        }
    }

    fn run_one(&self, a: &[f32], b: &[f32], c: Option<&[f32]>, y: &mut [f32]) {
        let (m, k, n) = (self.m, self.k, self.n);
        let read_dst = self.preload(c, y);
        // Element (i, p) of op(A) is at a[i*k + p], or a[p*m + i] when transposed.
        let (a_rs, a_cs) = if self.trans_a { (1, m) } else { (k, 1) };
        let (b_rs, b_cs) = if self.trans_b { (1, k) } else { (n, 1) };
        let threads = rayon::current_num_threads();
        // SAFETY: the strides describe in-bounds m x k, k x n and m x n matrices of the given
        // slices (checked by the planner against the static shapes).
        unsafe {
            crate::kernels::sgemm(
                (m, n, k),
                y.as_mut_ptr(),
                n,
                read_dst,
                (a.as_ptr(), a_rs, a_cs),
                (b.as_ptr(), b_rs, b_cs),
                self.alpha,
                threads,
            );
        }
    }
}
