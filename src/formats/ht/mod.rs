//! The Hierarchical Tucker (HT) format.
//!
//! An HT tensor of shape `n_1 x .. x n_d` on a [`DimTree`] stores, for each leaf `t`
//! (mode `μ`), a basis `U_t` of shape `(n_μ, k_t)`, and for each interior node `t` with
//! children `l`, `r` a transfer tensor `B_t` of shape `(k_l, k_r, k_t)`. The root has rank
//! 1. The implicit frames of interior nodes are
//!
//! ```text
//! U_t[(i_l, i_r), c] = sum_{a, b} U_l[i_l, a] · U_r[i_r, b] · B_t[a, b, c]
//! ```
//!
//! with the rows of `U_t` indexed by the modes under `t` in left-to-right leaf order
//! (row-major), and the tensor is the root frame `U_root` (an `N x 1` column) reordered
//! to the natural mode order. `k_t` is the rank of the matricization `X^{(t)}`.
//!
//! Storage: `sum_leaves n_t k_t + sum_interior k_l k_r k_t` scalars, i.e.
//! `O(d n r + d r^3)` instead of `n^d`.
//!
//! Produced by [`HtTensor::from_dense`] (HT-SVD, see
//! [`formats::ht`](crate::formats::ht)); re-compressed by
//! [`HtTensor::truncate`] (see [`formats::ht`](crate::formats::ht)).

mod arith;
pub mod decompose;
mod io;
mod matrix;
pub mod round;

use ndarray::{Array2, Array3, ArrayD, ArrayView2, ArrayView3, ArrayViewD, Axis, IxDyn};
use serde::{Deserialize, Serialize};

use crate::dense::{random_normal_with, rng};
use crate::formats::checks::check_index;
use crate::{AsRule, DimTree, Error, Factorized, Result, Scalar, TruncationInfo};

pub use decompose::{Sweep, ht_randomized, ht_svd};
pub use io::HT_FORMAT_VERSION;
pub use matrix::HtMatrix;
pub use round::{gramians, orthogonalize, truncate, truncate_sum};

/// The data held at one node of an HT tensor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(bound = "T: Scalar")]
pub enum HtNode<T> {
    /// Leaf basis `U_t` of shape `(n_t, k_t)`.
    Leaf(Array2<T>),
    /// Transfer tensor `B_t` of shape `(k_left, k_right, k_t)`.
    Transfer(Array3<T>),
}

impl<T: Scalar> HtNode<T> {
    /// The node's rank `k_t` (last dimension).
    pub fn rank(&self) -> usize {
        match self {
            HtNode::Leaf(u) => u.ncols(),
            HtNode::Transfer(b) => b.dim().2,
        }
    }

    /// Number of stored scalars.
    pub fn len(&self) -> usize {
        match self {
            HtNode::Leaf(u) => u.len(),
            HtNode::Transfer(b) => b.len(),
        }
    }

    /// True when the node stores nothing (never the case in a valid tensor).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn values(&self) -> Box<dyn Iterator<Item = &T> + '_> {
        match self {
            HtNode::Leaf(u) => Box::new(u.iter()),
            HtNode::Transfer(b) => Box::new(b.iter()),
        }
    }
}

/// A tensor in Hierarchical Tucker format. See the [module docs](self) for the layout.
///
/// The constructor [`try_new`](Self::try_new) checks every invariant (node kinds match
/// the tree, sizes match the shape, ranks agree between parent and children, root rank 1,
/// finite entries), so an `HtTensor` is always valid.
///
/// # Example
/// ```
/// use tnet::{DimTree, Factorized, HtTensor, Truncation};
/// let tree = DimTree::balanced(4).unwrap();
/// let x = HtTensor::<f64>::random(&tree, &[5, 6, 7, 8], 3, 42).unwrap();
/// let (y, info) = HtTensor::from_dense(x.to_dense().view(), &tree, &Truncation::rank(3)).unwrap();
/// assert!(info.error_bound < 1e-10 * info.input_norm);
/// assert_eq!(y.ranks(), x.ranks());
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct HtTensor<T> {
    tree: DimTree,
    shape: Vec<usize>,
    nodes: Vec<HtNode<T>>,
}

impl<T: Scalar> HtTensor<T> {
    /// Builds an HT tensor from its parts, checking every invariant.
    ///
    /// `nodes[t]` belongs to tree node `t` (pre-order numbering of [`DimTree`]).
    ///
    /// # Errors
    /// - [`Error::InvalidTree`] if the tree's order differs from `shape.len()`;
    /// - [`Error::Empty`] for a mode of size 0;
    /// - [`Error::ShapeMismatch`] if a node is of the wrong kind or size;
    /// - [`Error::InvalidRank`] for a zero rank or a root rank other than 1;
    /// - [`Error::NonFinite`] for NaN/Inf entries.
    pub fn try_new(tree: DimTree, shape: Vec<usize>, nodes: Vec<HtNode<T>>) -> Result<Self> {
        tree.check_order(shape.len())?;
        if shape.contains(&0) {
            return Err(Error::Empty {
                context: "HtTensor::try_new",
                shape,
            });
        }
        if nodes.len() != tree.n_nodes() {
            return Err(Error::ShapeMismatch {
                context: "HtTensor::try_new (number of nodes)",
                expected: vec![tree.n_nodes()],
                got: vec![nodes.len()],
            });
        }
        for t in tree.pre_order() {
            match (&nodes[t], tree.children(t)) {
                (HtNode::Leaf(u), None) => {
                    let n = shape[tree.modes(t)[0]];
                    if u.nrows() != n {
                        return Err(Error::ShapeMismatch {
                            context: "HtTensor::try_new (leaf basis rows must equal the mode size)",
                            expected: vec![n, u.ncols()],
                            got: u.shape().to_vec(),
                        });
                    }
                }
                (HtNode::Transfer(b), Some((l, r))) => {
                    let (kl, kr) = (nodes[l].rank(), nodes[r].rank());
                    if b.dim().0 != kl || b.dim().1 != kr {
                        return Err(Error::ShapeMismatch {
                            context: "HtTensor::try_new (transfer tensor must be (k_left, k_right, k_t))",
                            expected: vec![kl, kr, b.dim().2],
                            got: b.shape().to_vec(),
                        });
                    }
                }
                (node, _) => {
                    return Err(Error::ShapeMismatch {
                        context: "HtTensor::try_new (a leaf needs a Leaf basis, an interior node a Transfer tensor)",
                        expected: vec![],
                        got: node_shape(node),
                    });
                }
            }
            if nodes[t].rank() == 0 {
                return Err(Error::rank(
                    "HtTensor::try_new",
                    format!("node {t} has rank 0"),
                ));
            }
        }
        if nodes[tree.root()].rank() != 1 {
            return Err(Error::rank(
                "HtTensor::try_new",
                format!("the root must have rank 1, got {}", nodes[0].rank()),
            ));
        }
        let mut offset = 0;
        for node in &nodes {
            if let Some(i) = node.values().position(|v| !v.is_finite()) {
                return Err(Error::NonFinite {
                    context: "HtTensor::try_new",
                    index: offset + i,
                });
            }
            offset += node.len();
        }
        Ok(Self { tree, shape, nodes })
    }

    /// Builds without checks: for algorithms of this crate whose output is valid by
    /// construction. Checked in debug builds.
    pub(crate) fn from_parts(tree: DimTree, shape: Vec<usize>, nodes: Vec<HtNode<T>>) -> Self {
        debug_assert!(
            Self::try_new(tree.clone(), shape.clone(), nodes.clone()).is_ok(),
            "internal invariant: invalid HT tensor built"
        );
        Self { tree, shape, nodes }
    }

    /// A random HT tensor with i.i.d. normal transfer tensors and orthonormal leaf bases,
    /// with every rank `min(rank, largest admissible rank)` (see
    /// [`admissible_ranks`](Self::admissible_ranks)). Such a tensor has exactly these HT
    /// ranks with probability one: the oracle for exact-recovery tests.
    ///
    /// # Errors
    /// As [`try_new`](Self::try_new); [`Error::InvalidParameter`] for `rank == 0`.
    pub fn random(tree: &DimTree, shape: &[usize], rank: usize, seed: u64) -> Result<Self> {
        if rank == 0 {
            return Err(Error::param("rank", "must be at least 1"));
        }
        let ranks = Self::admissible_ranks(tree, shape, rank)?;
        Self::random_with_ranks(tree, shape, &ranks, seed)
    }

    /// A random HT tensor with the given rank per node (indexed by node id; root 1).
    ///
    /// # Errors
    /// As [`try_new`](Self::try_new); [`Error::InvalidParameter`] for ranks so large that a
    /// node's size overflows.
    pub fn random_with_ranks(
        tree: &DimTree,
        shape: &[usize],
        ranks: &[usize],
        seed: u64,
    ) -> Result<Self> {
        tree.check_order(shape.len())?;
        if ranks.len() != tree.n_nodes() {
            return Err(Error::ShapeMismatch {
                context: "HtTensor::random_with_ranks (one rank per node)",
                expected: vec![tree.n_nodes()],
                got: vec![ranks.len()],
            });
        }
        if shape.contains(&0) {
            return Err(Error::Empty {
                context: "HtTensor::random_with_ranks",
                shape: shape.to_vec(),
            });
        }
        // A node too large to allocate is an error, not a panic inside ndarray.
        for t in tree.pre_order() {
            let dims = match tree.children(t) {
                None => [shape[tree.modes(t)[0]], ranks[t], 1],
                Some((l, r)) => [ranks[l], ranks[r], ranks[t]],
            };
            let fits = dims
                .iter()
                .try_fold(1usize, |a, &n| a.checked_mul(n))
                .is_some_and(|n| n <= isize::MAX as usize / std::mem::size_of::<T>());
            if !fits {
                return Err(Error::param(
                    "ranks",
                    format!("node {t} would hold {dims:?} entries, more than can be allocated"),
                ));
            }
        }
        let mut g = rng(seed);
        let mut nodes = Vec::with_capacity(tree.n_nodes());
        for t in tree.pre_order() {
            nodes.push(match tree.children(t) {
                None => {
                    let n = shape[tree.modes(t)[0]];
                    if ranks[t] <= n {
                        HtNode::Leaf(crate::dense::random_orthonormal(n, ranks[t], &mut g))
                    } else {
                        HtNode::Leaf(
                            random_normal_with::<T, _>(&[n, ranks[t]], &mut g)
                                .into_dimensionality()
                                .expect("2-D"),
                        )
                    }
                }
                Some((l, r)) => {
                    let b = random_normal_with::<T, _>(&[ranks[l], ranks[r], ranks[t]], &mut g);
                    HtNode::Transfer(b.into_dimensionality().expect("3-D"))
                }
            });
        }
        Self::try_new(tree.clone(), shape.to_vec(), nodes)
    }

    /// The largest ranks not above `rank` that an HT tensor of this shape can have: each
    /// `k_t <= min(N_t, N / N_t)` (the matricization's size), `k_t <= k_l k_r`,
    /// `k_l <= k_r k_t`, `k_r <= k_l k_t`, the root's two children equal and the root 1.
    ///
    /// # Errors
    /// [`Error::InvalidTree`] if the orders differ.
    pub fn admissible_ranks(tree: &DimTree, shape: &[usize], rank: usize) -> Result<Vec<usize>> {
        tree.check_order(shape.len())?;
        let total = shape.iter().fold(1usize, |a, &n| a.saturating_mul(n));
        let mut k: Vec<usize> = tree
            .pre_order()
            .map(|t| {
                let nt = tree
                    .modes(t)
                    .iter()
                    .fold(1usize, |a, &m| a.saturating_mul(shape[m]));
                rank.min(nt).min(total / nt.max(1))
            })
            .collect();
        k[tree.root()] = 1;
        loop {
            let before = k.clone();
            for t in tree.interior() {
                let (l, r) = tree.children(t).expect("interior");
                k[t] = k[t].min(k[l].saturating_mul(k[r]));
                k[l] = k[l].min(k[r].saturating_mul(k[t]));
                k[r] = k[r].min(k[l].saturating_mul(k[t]));
            }
            if let Some((l, r)) = tree.children(tree.root()) {
                let m = k[l].min(k[r]);
                k[l] = m;
                k[r] = m;
            }
            if k == before {
                return Ok(k);
            }
        }
    }

    /// The dimension tree.
    pub fn tree(&self) -> &DimTree {
        &self.tree
    }

    /// The nodes, indexed by tree node id.
    pub fn nodes(&self) -> &[HtNode<T>] {
        &self.nodes
    }

    /// The data at one node.
    ///
    /// # Panics
    /// If `t >= tree().n_nodes()`.
    pub fn node(&self, t: usize) -> &HtNode<T> {
        &self.nodes[t]
    }

    /// The rank `k_t` of every node, indexed by node id (root first, always 1).
    pub fn ranks(&self) -> Vec<usize> {
        self.nodes.iter().map(HtNode::rank).collect()
    }

    /// The largest rank over all nodes.
    pub fn max_rank(&self) -> usize {
        self.nodes.iter().map(HtNode::rank).max().unwrap_or(1)
    }

    /// Splits into tree, shape and nodes.
    pub fn into_parts(self) -> (DimTree, Vec<usize>, Vec<HtNode<T>>) {
        (self.tree, self.shape, self.nodes)
    }

    pub(crate) fn leaf(&self, t: usize) -> ArrayView2<'_, T> {
        match &self.nodes[t] {
            HtNode::Leaf(u) => u.view(),
            HtNode::Transfer(_) => unreachable!("internal invariant: node {t} is a leaf"),
        }
    }

    pub(crate) fn transfer(&self, t: usize) -> ArrayView3<'_, T> {
        match &self.nodes[t] {
            HtNode::Transfer(b) => b.view(),
            HtNode::Leaf(_) => unreachable!("internal invariant: node {t} is interior"),
        }
    }

    /// The explicit frame `U_t` of a node (`N_t x k_t`, rows over the node's modes in leaf
    /// order). Cost `O(N_t k^2)`; memory `N_t k_t`, which for the root is the whole tensor.
    pub fn frame(&self, t: usize) -> Array2<T> {
        match self.tree.children(t) {
            None => self.leaf(t).to_owned(),
            Some((l, r)) => {
                combine_frames(self.frame(l).view(), self.frame(r).view(), self.transfer(t))
            }
        }
    }

    /// Entries at many multi-indices at once (one row of `indices` per entry).
    ///
    /// Cost `O(d k^3)` per entry, independent of the tensor's size.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if `indices` has not `d` columns;
    /// [`Error::IndexOutOfBounds`] for an index outside the tensor.
    pub fn entries(&self, indices: ArrayView2<'_, usize>) -> Result<Vec<T>> {
        if indices.ncols() != self.order() {
            return Err(Error::ShapeMismatch {
                context: "HtTensor::entries (one column per mode)",
                expected: vec![indices.nrows(), self.order()],
                got: indices.shape().to_vec(),
            });
        }
        indices
            .rows()
            .into_iter()
            .map(|row| {
                self.entry(
                    row.as_slice()
                        .map(<[usize]>::to_vec)
                        .unwrap_or_else(|| row.to_vec())
                        .as_slice(),
                )
            })
            .collect()
    }

    /// The vector `U_t[i_t, :]` for every node, evaluated bottom-up at one multi-index.
    fn entry_unchecked(&self, index: &[usize]) -> T {
        let mut v: Vec<Vec<T>> = vec![Vec::new(); self.tree.n_nodes()];
        for t in self.tree.post_order() {
            v[t] = match self.tree.children(t) {
                None => self.leaf(t).row(index[self.tree.modes(t)[0]]).to_vec(),
                Some((l, r)) => {
                    let b = self.transfer(t);
                    let (kl, kr, kt) = b.dim();
                    let mut out = vec![T::zero(); kt];
                    for a in 0..kl {
                        for bb in 0..kr {
                            let w = v[l][a] * v[r][bb];
                            for (c, o) in out.iter_mut().enumerate() {
                                *o += w * b[[a, bb, c]];
                            }
                        }
                    }
                    out
                }
            };
        }
        v[self.tree.root()][0]
    }

    fn check_same_structure(&self, other: &Self, context: &'static str) -> Result<()> {
        if self.shape != other.shape {
            return Err(Error::ShapeMismatch {
                context,
                expected: self.shape.clone(),
                got: other.shape.clone(),
            });
        }
        if self.tree != other.tree {
            return Err(Error::tree(format!(
                "{context}: the operands live on different trees ({} and {})",
                self.tree, other.tree
            )));
        }
        Ok(())
    }

    /// HT-SVD of a dense tensor (leaves to root, the default). See
    /// [`formats::ht`](crate::formats::ht) for the algorithm, its cost and
    /// its error bound.
    ///
    /// # Errors
    /// See [`ht_svd`].
    pub fn from_dense(
        x: ArrayViewD<'_, T>,
        tree: &DimTree,
        rule: &impl AsRule,
    ) -> Result<(Self, TruncationInfo<T>)> {
        crate::formats::ht::ht_svd(x, tree, rule, crate::formats::ht::Sweep::LeavesToRoot)
    }

    /// Truncates to a new rule without forming the dense tensor; see
    /// [`formats::ht`](crate::formats::ht).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for an invalid rule.
    pub fn truncate(&self, rule: &impl AsRule) -> Result<(Self, TruncationInfo<T>)> {
        crate::formats::ht::truncate(self, rule)
    }
}

fn node_shape<T: Scalar>(node: &HtNode<T>) -> Vec<usize> {
    match node {
        HtNode::Leaf(u) => u.shape().to_vec(),
        HtNode::Transfer(b) => b.shape().to_vec(),
    }
}

/// `U_t = (U_l ⊗ U_r) B_t` with rows `(i_l, i_r)` row-major: `(N_l N_r) x k_t`.
///
/// Two GEMM passes: `T1 = U_l · B_(1)` (`N_l x k_r k_t`), then `U_r · T1[i_l]` for each
/// `i_l`. Cost `O(N_l k_l k_r k_t + N_l N_r k_r k_t)`.
fn combine_frames<T: Scalar>(
    ul: ArrayView2<'_, T>,
    ur: ArrayView2<'_, T>,
    b: ArrayView3<'_, T>,
) -> Array2<T> {
    let (kl, kr, kt) = b.dim();
    let (nl, nr) = (ul.nrows(), ur.nrows());
    let b_std = b.as_standard_layout();
    let b1 = b_std
        .view()
        .into_shape_with_order((kl, kr * kt))
        .expect("standard layout");
    let t1 = crate::linalg::matmul(ul, b1);
    let t1 = t1.as_standard_layout();
    let mut out = Array2::<T>::zeros((nl * nr, kt));
    for (il, mut block) in out.axis_chunks_iter_mut(Axis(0), nr).enumerate() {
        let t = t1
            .row(il)
            .into_shape_with_order((kr, kt))
            .expect("contiguous row");
        crate::linalg::matmul_into(
            block.view_mut(),
            ur,
            t,
            T::one(),
            false,
            crate::linalg::Parallelism::Seq,
        );
    }
    out
}

/// `B ×_1 A` on the first index: `out[a', b, c] = sum_a A[a', a] B[a, b, c]`.
fn transfer_mul_left<T: Scalar>(b: ArrayView3<'_, T>, a: ArrayView2<'_, T>) -> Array3<T> {
    let (kl, kr, kt) = b.dim();
    let bs = b.as_standard_layout();
    let m = bs
        .view()
        .into_shape_with_order((kl, kr * kt))
        .expect("standard");
    crate::linalg::matmul(a, m)
        .as_standard_layout()
        .into_owned()
        .into_shape_with_order((a.nrows(), kr, kt))
        .expect("size")
}

/// `B ×_2 A` on the second index: `out[a, b', c] = sum_b A[b', b] B[a, b, c]`.
fn transfer_mul_right<T: Scalar>(b: ArrayView3<'_, T>, a: ArrayView2<'_, T>) -> Array3<T> {
    let (kl, _, kt) = b.dim();
    let mut out = Array3::<T>::zeros((kl, a.nrows(), kt));
    for i in 0..kl {
        let slab = b.index_axis(Axis(0), i);
        let res = crate::linalg::matmul(a, slab);
        out.index_axis_mut(Axis(0), i).assign(&res);
    }
    out
}

/// `B ×_3 A` on the third index: `out[a, b, c'] = sum_c A[c', c] B[a, b, c]`.
fn transfer_mul_out<T: Scalar>(b: ArrayView3<'_, T>, a: ArrayView2<'_, T>) -> Array3<T> {
    let (kl, kr, kt) = b.dim();
    let bs = b.as_standard_layout();
    let m = bs
        .view()
        .into_shape_with_order((kl * kr, kt))
        .expect("standard");
    crate::linalg::matmul(m, a.t())
        .as_standard_layout()
        .into_owned()
        .into_shape_with_order((kl, kr, a.nrows()))
        .expect("size")
}

impl<T: Scalar> Factorized<T> for HtTensor<T> {
    fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Slices the leaf bases of the fixed modes.
    fn fix_leading(&self, index: &[usize]) -> Result<Self> {
        crate::formats::checks::check_leading_index(index, &self.shape)?;
        let mut nodes = self.nodes.clone();
        let mut shape = self.shape.clone();
        for (mode, &i) in index.iter().enumerate() {
            if let HtNode::Leaf(u) = &mut nodes[self.tree.leaf_of(mode)] {
                *u = u.slice(ndarray::s![i..=i, ..]).to_owned();
            }
            shape[mode] = 1;
        }
        Ok(Self::from_parts(self.tree.clone(), shape, nodes))
    }

    /// `sum_leaves n_t k_t + sum_interior k_l k_r k_t`.
    fn n_params(&self) -> usize {
        self.nodes.iter().map(HtNode::len).sum()
    }

    /// The frames alive while [`frame`](HtTensor::frame) recurses (a node's left frame is
    /// held while its right one is built), each combination's `N_l x k_r k_t` product (and
    /// its row-major copy), and the final permuted copy.
    fn dense_work(&self) -> u128 {
        let size = |t: usize| {
            let n = self
                .tree
                .modes(t)
                .iter()
                .map(|&m| self.shape[m] as u128)
                .fold(1u128, u128::saturating_mul);
            (n, n.saturating_mul(self.nodes[t].rank() as u128))
        };
        fn work<T: Scalar>(
            x: &HtTensor<T>,
            size: &dyn Fn(usize) -> (u128, u128),
            t: usize,
            held: u128,
        ) -> u128 {
            match x.tree.children(t) {
                None => held.saturating_add(size(t).1),
                Some((l, r)) => {
                    let ((nl, fl), (_, fr), (_, ft)) = (size(l), size(r), size(t));
                    let kr_kt =
                        (x.nodes[r].rank() as u128).saturating_mul(x.nodes[t].rank() as u128);
                    // `U_l B` comes column-major from the product and is copied to
                    // row-major while alive: twice `N_l k_r k_t`.
                    let t1 = nl.saturating_mul(kr_kt);
                    let combine = [fl, fr, t1, t1, ft]
                        .into_iter()
                        .fold(held, u128::saturating_add);
                    work(x, size, l, held)
                        .max(work(x, size, r, held.saturating_add(fl)))
                        .max(combine)
                }
            }
        }
        let n = crate::limits::elements(&self.shape);
        work(self, &size, self.tree.root(), 0).max(n.saturating_mul(2))
    }

    fn to_dense(&self) -> ArrayD<T> {
        let root = self.frame(self.tree.root());
        let order = self.tree.modes(self.tree.root()).to_vec();
        let tree_shape: Vec<usize> = order.iter().map(|&m| self.shape[m]).collect();
        let x = ArrayD::from_shape_vec(IxDyn(&tree_shape), root.into_raw_vec_and_offset().0)
            .expect("frame size");
        // Axis i of `x` is mode order[i]; put mode m at axis m.
        let mut inverse = vec![0; order.len()];
        for (i, &m) in order.iter().enumerate() {
            inverse[m] = i;
        }
        crate::dense::standard_copy(x.view().permuted_axes(inverse))
    }

    /// Norm through orthogonalisation (accurate to working precision, unlike
    /// `sqrt(<x, x>)`). Cost `O(d k^4 + sum n_t k_t^2)`.
    fn norm(&self) -> T {
        arith::norm(self)
    }

    fn inner_dense(&self, x: ArrayViewD<'_, T>) -> Result<T> {
        if x.shape() != self.shape.as_slice() {
            return Err(Error::ShapeMismatch {
                context: "HtTensor::inner_dense",
                expected: self.shape.clone(),
                got: x.shape().to_vec(),
            });
        }
        // Project the dense tensor onto the leaf bases, then contract with the transfers.
        let mut core = x.to_owned();
        for t in self.tree.leaves() {
            let m = self.tree.modes(t)[0];
            core = crate::dense::mode_product(core.view(), self.leaf(t).t(), m)?;
        }
        // Now contract through the tree bottom-up: this is the HT-SVD sweep without SVDs.
        Ok(arith::contract_core_with_transfers(self, core))
    }

    fn entry(&self, index: &[usize]) -> Result<T> {
        check_index(index, &self.shape)?;
        Ok(self.entry_unchecked(index))
    }

    fn round(&self, rule: &impl AsRule) -> Result<(Self, TruncationInfo<T>)> {
        self.truncate(rule)
    }
}

/// The non-root nodes in the order the root-to-leaves truncations visit them, with the
/// root's two children `(left0, exempt)`: pre-order, except that `exempt` (the root's right
/// child) comes last, because it is truncated to the rank of `left0` — the two
/// matricizations are transposes of each other — rather than by the rule.
///
/// # Panics
/// If the tree has a single node (order 1; callers handle it first).
fn truncation_order(tree: &DimTree) -> (Vec<usize>, usize, usize) {
    let (left0, exempt) = tree
        .children(tree.root())
        .expect("order >= 2: the root is interior");
    let mut order: Vec<usize> = tree
        .pre_order()
        .filter(|&t| t != tree.root() && t != exempt)
        .collect();
    order.push(exempt);
    (order, left0, exempt)
}

/// A dense tensor whose axes are labelled by tree nodes: the working state of the
/// leaves-to-root sweeps (HT-SVD, inner products with dense tensors).
struct LabelledCore<'a, T> {
    /// Borrowed from the caller until the first contraction, owned afterwards.
    pub data: ndarray::CowArray<'a, T, IxDyn>,
    /// `axes[i]` is the tree node that axis `i` stands for.
    pub axes: Vec<usize>,
}

impl<T: Scalar> LabelledCore<'_, T> {
    pub fn position(&self, node: usize) -> usize {
        self.axes
            .iter()
            .position(|&a| a == node)
            .expect("internal invariant: axis present")
    }

    /// Row modes (axis positions) for a set of nodes.
    pub fn positions(&self, nodes: &[usize]) -> Vec<usize> {
        nodes.iter().map(|&n| self.position(n)).collect()
    }

    /// Replaces the consecutive axes of `nodes` (in that order) by one axis for `new`,
    /// whose contraction the caller has already formed as `data`.
    pub fn replace(&mut self, nodes: &[usize], new: usize, data: ndarray::ArrayD<T>) {
        let p = self.position(nodes[0]);
        debug_assert_eq!(
            self.positions(nodes),
            (p..p + nodes.len()).collect::<Vec<_>>()
        );
        self.data = data.into();
        self.axes.splice(p..p + nodes.len(), [new]);
    }

    /// Replaces the axes of `nodes` by one axis for `new`, contracting with `m`
    /// (`prod k_nodes x k_new`, rows row-major over `nodes`): the new axis takes the place
    /// of the first of them. When the axes are not already consecutive and in order, the
    /// core is first permuted so that they are (one copy).
    pub fn merge(&mut self, nodes: &[usize], new: usize, m: ArrayView2<'_, T>) {
        let mut pos = self.positions(nodes);
        if !pos.windows(2).all(|w| w[1] == w[0] + 1) {
            // Move the group next to its first axis, keeping the others in order.
            let first = pos[0];
            let mut perm: Vec<usize> = (0..self.axes.len())
                .filter(|i| !pos[1..].contains(i))
                .collect();
            let at = perm.iter().position(|&i| i == first).expect("present") + 1;
            perm.splice(at..at, pos[1..].iter().copied());
            self.data =
                crate::dense::standard_copy(self.data.view().permuted_axes(perm.clone())).into();
            self.axes = perm.iter().map(|&i| self.axes[i]).collect();
            pos = self.positions(nodes);
        }
        let p = pos[0];
        self.data = crate::dense::contract_axes(self.data.view(), p, nodes.len(), m.t()).into();
        self.axes.splice(p..p + nodes.len(), [new]);
    }
}
