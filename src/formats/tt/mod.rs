//! The Tensor-Train (TT, matrix product state) format.
//!
//! A TT tensor of shape `n_1 x .. x n_d` stores `d` cores `G_k` of shape
//! `(r_{k-1}, n_k, r_k)` with `r_0 = r_d = 1`, and represents
//!
//! ```text
//! X[i_1, .., i_d] = G_1[:, i_1, :] · G_2[:, i_2, :] · .. · G_d[:, i_d, :]   (a 1 x 1 product)
//! ```
//!
//! `r_k` is (at most) the rank of the sequential unfolding `X_{<k>}` whose rows are the
//! modes `1..k` (row-major) and whose columns are the modes `k+1..d`; TT-SVD produces the
//! minimal ranks. Storage `Σ_k r_{k-1} n_k r_k` scalars, `O(d n r^2)` instead of `n^d`.
//!
//! In code, modes and cores are numbered from 0: core `k` is `(r_k, n_k, r_{k+1})` and
//! [`TtTensor::ranks`] returns `[r_0 = 1, r_1, .., r_d = 1]` (length `d + 1`, as ttpy's
//! `.r` and TensorLy's `rank`).
//!
//! Produced by [`TtTensor::from_dense`] (TT-SVD, see
//! [`formats::tt`](crate::formats::tt)); re-compressed by
//! [`round`](crate::Factorized::round) (TT rounding, see
//! [`formats::tt`](crate::formats::tt)). Exact conversions to and from
//! the HT format on the linear tree: [`TtTensor::to_ht`], [`TtTensor::from_ht`].

mod arith;
pub mod decompose;
mod io;
mod matrix;
pub mod round;

use ndarray::{Array2, Array3, ArrayD, ArrayView3, ArrayViewD, IxDyn};

use super::checks::{self, check_index, check_shape};
use super::cores;
use crate::dense::{random_normal_with, random_orthonormal, rng};
use crate::{AsRule, DimTree, Error, Factorized, HtNode, HtTensor, Result, Scalar, TruncationInfo};

pub use decompose::{tt_randomized, tt_svd};
pub use io::TT_FORMAT_VERSION;
pub use matrix::TtMatrix;
pub use round::tt_round;

/// A tensor in Tensor-Train format. See the [module docs](self) for the layout.
///
/// [`try_new`](Self::try_new) checks every invariant (at least one core, ranks that agree
/// between neighbours, boundary ranks 1, no empty mode, finite entries), so a `TtTensor`
/// is always valid. Cores are stored in standard (row-major) layout.
///
/// # Example
/// ```
/// use tnet::{Factorized, Truncation, TtTensor};
/// let x = TtTensor::<f64>::random(&[4, 5, 6, 7], 3, 42).unwrap();
/// assert_eq!(x.ranks(), vec![1, 3, 3, 3, 1]);
/// let (y, info) = TtTensor::from_dense(x.to_dense().view(), &Truncation::rel(1e-12)).unwrap();
/// assert_eq!(y.ranks(), x.ranks());
/// assert!(info.rel_error_bound() < 1e-12);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct TtTensor<T> {
    shape: Vec<usize>,
    cores: Vec<Array3<T>>,
}

impl<T: Scalar> TtTensor<T> {
    /// Builds a TT tensor from its cores `(r_k, n_k, r_{k+1})`, checking every invariant.
    /// The shape is read off the cores.
    ///
    /// # Errors
    /// - [`Error::Empty`] for no cores or a mode of size 0;
    /// - [`Error::InvalidRank`] for a zero rank, neighbouring ranks that differ, or
    ///   boundary ranks other than 1;
    /// - [`Error::NonFinite`] for NaN/Inf entries.
    ///
    /// # Example
    /// ```
    /// use ndarray::Array3;
    /// use tnet::TtTensor;
    /// let ok = TtTensor::try_new(vec![Array3::<f64>::ones((1, 2, 3)), Array3::ones((3, 4, 1))]);
    /// assert!(ok.is_ok());
    /// let bad = TtTensor::try_new(vec![Array3::<f64>::ones((1, 2, 3)), Array3::ones((2, 4, 1))]);
    /// assert!(bad.is_err());
    /// ```
    pub fn try_new(cores: Vec<Array3<T>>) -> Result<Self> {
        let cores = cores::check_cores("TtTensor::try_new", cores, false)?;
        let shape = cores.iter().map(|g| g.dim().1).collect();
        Ok(Self { shape, cores })
    }

    /// Builds without checks: for algorithms of this crate whose output is valid by
    /// construction. Checked in debug builds.
    pub(crate) fn from_cores(cores: Vec<Array3<T>>) -> Self {
        debug_assert!(
            Self::try_new(cores.clone()).is_ok(),
            "internal invariant: invalid TT tensor built"
        );
        debug_assert!(cores.iter().all(|g| g.is_standard_layout()));
        let shape = cores.iter().map(|g| g.dim().1).collect();
        Self { shape, cores }
    }

    /// A random TT tensor with every rank `min(rank, largest admissible rank)` (see
    /// [`admissible_ranks`](Self::admissible_ranks)). Cores `0..d-1` are random with
    /// orthonormal left unfoldings (so the tensor is well conditioned), the last core is
    /// i.i.d. normal. Such a tensor has exactly these TT ranks with probability one: the
    /// oracle for exact-recovery tests.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for `rank == 0`; [`Error::Empty`] for an empty shape or
    /// a mode of size 0.
    pub fn random(shape: &[usize], rank: usize, seed: u64) -> Result<Self> {
        if rank == 0 {
            return Err(Error::param("rank", "must be at least 1"));
        }
        let ranks = Self::admissible_ranks(shape, rank)?;
        Self::random_with_ranks(shape, &ranks, seed)
    }

    /// A random TT tensor with the given ranks `[1, r_1, .., r_{d-1}, 1]`.
    ///
    /// # Errors
    /// [`Error::Empty`] for an empty shape or mode; [`Error::ShapeMismatch`] unless
    /// `ranks.len() == d + 1`; [`Error::InvalidRank`] for zero or non-unit boundary ranks.
    pub fn random_with_ranks(shape: &[usize], ranks: &[usize], seed: u64) -> Result<Self> {
        check_shape("TtTensor::random", shape)?;
        let d = shape.len();
        if ranks.len() != d + 1 {
            return Err(Error::ShapeMismatch {
                context: "TtTensor::random_with_ranks (ranks r_0..r_d)",
                expected: vec![d + 1],
                got: vec![ranks.len()],
            });
        }
        if ranks.contains(&0) {
            return Err(Error::rank(
                "TtTensor::random_with_ranks",
                "ranks must be at least 1",
            ));
        }
        let mut g = rng(seed);
        let cores = (0..d)
            .map(|k| {
                let (r, n, q) = (ranks[k], shape[k], ranks[k + 1]);
                let m: Array2<T> = if k + 1 < d && q <= r * n {
                    random_orthonormal(r * n, q, &mut g)
                } else {
                    random_normal_with::<T, _>(&[r * n, q], &mut g)
                        .into_dimensionality()
                        .expect("2-D")
                };
                cores::core_from(m, r, n, q)
            })
            .collect();
        Self::try_new(cores)
    }

    /// The largest TT ranks not above `rank` for this shape:
    /// `r_k = min(rank, n_1 .. n_k, n_{k+1} .. n_d)` (the sizes of the unfolding
    /// `X_{<k>}`), with `r_0 = r_d = 1`. These also satisfy `r_{k+1} <= r_k n_k` and
    /// `r_k <= n_k r_{k+1}`, so every rank is attained.
    ///
    /// # Errors
    /// [`Error::Empty`] for an empty shape or a mode of size 0.
    pub fn admissible_ranks(shape: &[usize], rank: usize) -> Result<Vec<usize>> {
        check_shape("TtTensor::admissible_ranks", shape)?;
        let d = shape.len();
        let mut ranks = vec![1; d + 1];
        for (k, r) in ranks.iter_mut().enumerate().take(d).skip(1) {
            let left = shape[..k].iter().fold(1usize, |a, &n| a.saturating_mul(n));
            let right = shape[k..].iter().fold(1usize, |a, &n| a.saturating_mul(n));
            *r = rank.min(left).min(right);
        }
        Ok(ranks)
    }

    /// The ranks `[r_0 = 1, r_1, .., r_{d-1}, r_d = 1]`.
    pub fn ranks(&self) -> Vec<usize> {
        let mut r: Vec<usize> = self.cores.iter().map(|g| g.dim().0).collect();
        r.push(1);
        r
    }

    /// The largest rank.
    pub fn max_rank(&self) -> usize {
        self.ranks().into_iter().max().unwrap_or(1)
    }

    /// The cores `(r_k, n_k, r_{k+1})`, in standard layout.
    pub fn cores(&self) -> &[Array3<T>] {
        &self.cores
    }

    /// Core `k`.
    ///
    /// # Panics
    /// If `k >= d`.
    pub fn core(&self, k: usize) -> &Array3<T> {
        &self.cores[k]
    }

    /// Takes the cores out.
    pub fn into_cores(self) -> Vec<Array3<T>> {
        self.cores
    }

    pub(crate) fn core_views(&self) -> Vec<ArrayView3<'_, T>> {
        self.cores.iter().map(|g| g.view()).collect()
    }

    /// TT-SVD of a dense tensor; see [`formats::tt`](crate::formats::tt)
    /// for the algorithm, its cost and its error bound.
    ///
    /// # Errors
    /// See [`tt_svd`].
    pub fn from_dense(
        x: ArrayViewD<'_, T>,
        rule: &impl AsRule,
    ) -> Result<(Self, TruncationInfo<T>)> {
        crate::formats::tt::tt_svd(x, rule)
    }

    /// Entries at many multi-indices (one row of `indices` per entry), `O(d r^2)` each.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if `indices` has not `d` columns;
    /// [`Error::IndexOutOfBounds`] for an index outside the tensor.
    pub fn entries(&self, indices: ndarray::ArrayView2<'_, usize>) -> Result<Vec<T>> {
        let context = "TtTensor::entries (one column per mode)";
        checks::entries(context, &self.shape, indices, |i| self.entry(i))
    }

    /// Left-orthogonal form of the same tensor: cores `0..d-1` get orthonormal left
    /// unfoldings (`G_k^{<2>T} G_k^{<2>} = I`) by QR sweeps from the left; the norm moves
    /// into the last core, so `‖X‖ = ‖G_d‖_F`. Ranks that exceed `r_{k-1} n_k` shrink.
    /// Cost `O(Σ n_k r^3)`.
    ///
    /// # Example
    /// ```
    /// use tnet::{Factorized, TtTensor};
    /// let x = TtTensor::<f64>::random(&[3, 4, 5], 2, 1).unwrap().scale(3.0);
    /// let y = x.left_orthogonalize();
    /// let last = y.cores().last().unwrap();
    /// let n = last.iter().map(|v| v * v).sum::<f64>().sqrt();
    /// assert!((n - x.norm()).abs() < 1e-12 * n);
    /// ```
    pub fn left_orthogonalize(&self) -> Self {
        let mut cores = self.cores.clone();
        let d = cores.len();
        cores::left_orthogonalize(&mut cores, d - 1);
        Self::from_cores(cores)
    }

    /// Right-orthogonal form: cores `1..d` get orthonormal right unfoldings
    /// (`G_k^{<1>} G_k^{<1>T} = I`) by QR sweeps from the right; `‖X‖ = ‖G_1‖_F`.
    /// Cost `O(Σ n_k r^3)`.
    pub fn right_orthogonalize(&self) -> Self {
        let mut cores = self.cores.clone();
        cores::right_orthogonalize(&mut cores, 0);
        Self::from_cores(cores)
    }

    /// The exactly equal HT tensor on [`DimTree::linear`]`(d)`, whose interior nodes
    /// `{k..d-1}` carry the TT ranks `r_k`.
    ///
    /// Leaf `k < d-1` gets the left singular vectors `U_k` of the mode-2 unfolding of core
    /// `k` (`n_k x r_k r_{k+1}`, exact: only exactly zero singular values are dropped),
    /// and the interior node `{k..d-1}` the transfer tensor
    /// `B[a, b, c] = Σ_i U_k[i, a] G_k[c, i, b]`; the last leaf is `G_{d-1}[:, :, 0]^T`.
    /// Cost `O(Σ n_k r^4)`.
    ///
    /// # Errors
    /// [`Error::Linalg`] if an SVD fails.
    ///
    /// # Example
    /// ```
    /// use tnet::{Factorized, TtTensor};
    /// let x = TtTensor::<f64>::random(&[3, 4, 5, 2], 2, 7).unwrap();
    /// let ht = x.to_ht().unwrap();
    /// let back = TtTensor::from_ht(&ht).unwrap();
    /// let e = tnet::dense::rel_error(x.to_dense().view(), back.to_dense().view()).unwrap();
    /// assert!(e < 1e-13 && back.ranks() == x.ranks());
    /// ```
    pub fn to_ht(&self) -> Result<HtTensor<T>> {
        let d = self.order();
        let tree = DimTree::linear(d)?;
        let mut nodes: Vec<Option<HtNode<T>>> = vec![None; tree.n_nodes()];
        if d == 1 {
            let g = &self.cores[0];
            let u = g
                .view()
                .into_shape_with_order((g.dim().1, 1))
                .expect("standard")
                .to_owned();
            return HtTensor::try_new(tree, self.shape.clone(), vec![HtNode::Leaf(u)]);
        }
        // Interior node t_k holds the modes {k..d-1}: walk down the right spine.
        let mut t = tree.root();
        for k in 0..d - 1 {
            let (leaf, next) = tree.children(t).expect("linear tree spine");
            let g = &self.cores[k];
            let (r, n, q) = g.dim();
            // Mode-2 unfolding: rows i, columns (c, b).
            let m = g
                .view()
                .permuted_axes([1, 0, 2])
                .as_standard_layout()
                .into_owned()
                .into_shape_with_order((n, r * q))
                .expect("standard");
            let svd = crate::linalg::svd(m.view(), crate::linalg::MatrixTruncation::exact(), true)?;
            let kept = svd.rank;
            let vt = svd.vt.expect("asked for V");
            // C[a, (c, b)] = s_a V^T[a, (c, b)]; B[a, b, c] = C[a, c, b].
            let mut coeff = vt;
            for (a, mut row) in coeff.rows_mut().into_iter().enumerate() {
                row *= svd.singular_values[a];
            }
            let b = coeff
                .into_shape_with_order((kept, r, q))
                .expect("row-major")
                .permuted_axes([0, 2, 1])
                .as_standard_layout()
                .into_owned();
            nodes[leaf] = Some(HtNode::Leaf(svd.u));
            nodes[t] = Some(HtNode::Transfer(b));
            t = next;
        }
        let last = &self.cores[d - 1];
        let (r, n, _) = last.dim();
        let u = last
            .view()
            .into_shape_with_order((r, n))
            .expect("standard")
            .t()
            .to_owned();
        nodes[t] = Some(HtNode::Leaf(u));
        let nodes = nodes
            .into_iter()
            .map(|n| n.expect("internal invariant: every node of the linear tree set"))
            .collect();
        HtTensor::try_new(tree, self.shape.clone(), nodes)
    }

    /// The exactly equal TT tensor of an HT tensor on the linear tree
    /// [`DimTree::linear`]`(d)`: core `k` is `G_k[c, i, b] = Σ_a U_k[i, a] B_{t_k}[a, b, c]`
    /// (the leaf basis contracted into the transfer tensor of the node `{k..d-1}`), the
    /// last core is the last leaf basis. The TT ranks are the HT ranks of the interior
    /// nodes. Cost `O(Σ n_k r^3)`.
    ///
    /// # Errors
    /// [`Error::InvalidTree`] if the HT tensor's tree is not `DimTree::linear(d)`.
    pub fn from_ht(ht: &HtTensor<T>) -> Result<Self> {
        let d = ht.order();
        let tree = ht.tree();
        if *tree != DimTree::linear(d)? {
            return Err(Error::tree(format!(
                "TtTensor::from_ht needs the linear tree {}, got {tree}",
                DimTree::linear(d)?
            )));
        }
        let leaf = |t: usize| match ht.node(t) {
            HtNode::Leaf(u) => u.view(),
            HtNode::Transfer(_) => unreachable!("linear tree: leaf"),
        };
        if d == 1 {
            let u = leaf(tree.root());
            let n = u.nrows();
            return Self::try_new(vec![
                u.to_owned()
                    .into_shape_with_order((1, n, 1))
                    .expect("column"),
            ]);
        }
        let mut cores = Vec::with_capacity(d);
        let mut t = tree.root();
        for _ in 0..d - 1 {
            let (l, next) = tree.children(t).expect("linear tree spine");
            let HtNode::Transfer(b) = ht.node(t) else {
                unreachable!("linear tree: interior")
            };
            let (ka, kb, kc) = b.dim();
            let u = leaf(l);
            let n = u.nrows();
            // G[c, i, b] = Σ_a U[i, a] B[a, b, c]: (n x ka)(ka x kb kc) -> (i, b, c).
            let bm = b
                .as_standard_layout()
                .into_owned()
                .into_shape_with_order((ka, kb * kc))
                .expect("standard");
            let g = cores::matmul_rm(u, bm.view())
                .into_shape_with_order((n, kb, kc))
                .expect("row-major")
                .permuted_axes([2, 0, 1])
                .as_standard_layout()
                .into_owned();
            cores.push(g);
            t = next;
        }
        let u = leaf(t);
        let (n, r) = u.dim();
        cores.push(
            u.t()
                .as_standard_layout()
                .into_owned()
                .into_shape_with_order((r, n, 1))
                .expect("standard"),
        );
        Self::try_new(cores)
    }
}

impl<T: Scalar> Factorized<T> for TtTensor<T> {
    fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Slices the cores of the fixed modes.
    fn fix_leading(&self, index: &[usize]) -> Result<Self> {
        checks::check_leading_index(index, &self.shape)?;
        Ok(Self::from_cores(cores::fix_leading_cores(
            &self.cores,
            index,
        )))
    }

    /// `Σ_k r_k n_k r_{k+1}`.
    fn n_params(&self) -> usize {
        self.cores.iter().map(|g| g.len()).sum()
    }

    /// The chain's partial products `(n_1..n_k) x r_k` and the one being formed.
    fn dense_work(&self) -> u128 {
        cores::chain_work(&self.core_views())
    }

    /// Left-to-right products of the cores; cost `O(N r^2)`, memory `N r / n_d`.
    fn to_dense(&self) -> ArrayD<T> {
        let m = cores::chain_matrix(&self.core_views());
        ArrayD::from_shape_vec(IxDyn(&self.shape), m.into_raw_vec_and_offset().0)
            .expect("N x 1 row-major")
    }

    /// Norm through left-orthogonalisation, `‖G_d‖_F` of the orthogonalised tensor:
    /// accurate to working precision relative to `‖X‖` (unlike `sqrt(<X, X>)`, which
    /// loses everything below `sqrt(eps) ‖X‖` in differences). Cost `O(Σ n_k r^3)`.
    fn norm(&self) -> T {
        let y = self.left_orthogonalize();
        crate::dense::norm(y.cores[y.cores.len() - 1].view().into_dyn())
    }

    /// Contracts `X` with the cores from the last mode, never densifying `self` and never
    /// copying `X` (if it is in standard layout). Cost `2 N r_{d-1} + O(N r^2 / n_d)`
    /// flops, memory `N r / n`.
    fn inner_dense(&self, x: ArrayViewD<'_, T>) -> Result<T> {
        if x.shape() != self.shape.as_slice() {
            return Err(Error::ShapeMismatch {
                context: "TtTensor::inner_dense",
                expected: self.shape.clone(),
                got: x.shape().to_vec(),
            });
        }
        let x = x.as_standard_layout();
        let xs = x.as_slice().expect("standard layout");
        Ok(cores::chain_inner_dense(&self.core_views(), xs))
    }

    /// Product of the `d` slices `G_k[:, i_k, :]`, `O(d r^2)`.
    fn entry(&self, index: &[usize]) -> Result<T> {
        check_index(index, &self.shape)?;
        let mut v = self.cores[0]
            .slice(ndarray::s![0usize, index[0], ..])
            .to_owned();
        for (g, &i) in self.cores[1..].iter().zip(&index[1..]) {
            v = g.slice(ndarray::s![.., i, ..]).t().dot(&v);
        }
        Ok(v[0])
    }

    /// TT rounding; see [`formats::tt`](crate::formats::tt).
    fn round(&self, rule: &impl AsRule) -> Result<(Self, TruncationInfo<T>)> {
        crate::formats::tt::tt_round(self, rule)
    }
}
