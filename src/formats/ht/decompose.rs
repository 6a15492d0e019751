//! HT-SVD: decomposition of a dense tensor into the Hierarchical Tucker format.
//!
//! Two sweeps, as in the MATLAB `htucker` toolbox:
//!
//! - [`Sweep::LeavesToRoot`] (`htucker`'s `truncate_ltr`, the default). For each leaf in
//!   turn, the left singular vectors of the mode unfolding of the *current* tensor give
//!   `U_t`, and the tensor is projected onto them (`X ← X ×_t U_t^T`), so every later SVD
//!   works on a smaller tensor. Then, level by level up the tree, the two child axes of
//!   each node are matricized together, their left singular vectors give `B_t`, and the
//!   two axes are merged into one. Only the first leaf SVD touches the full tensor.
//! - [`Sweep::RootToLeaves`] (Grasedyck 2010, Algorithm 1). For every node `t` the left
//!   singular vectors `U_t` of the matricization `X^{(t)}` of the *full* tensor are
//!   computed; `B_t = (U_l ⊗ U_r)^T U_t`. Every SVD touches the full tensor.
//!
//! # Error bounds
//! Let `d >= 2` and `X_best` be a best approximation with the same ranks. The tree has
//! `2d − 2` non-root nodes, but the two children of the root have matricizations that are
//! transposes of each other, so only `2d − 3` truncations are made (the last child of the
//! root is kept exact). With `Y` the result:
//!
//! - relative tolerance `ε`: `‖X − Y‖ ≤ ε ‖X‖` (each truncation gets `ε ‖X‖ / √(2d−3)`);
//! - fixed ranks: `‖X − Y‖ ≤ √(2d−3) ‖X − X_best‖`;
//! - always: `‖X − Y‖ ≤ info.error_bound = √(Σ_t discarded_t²)`.
//!
//! (Grasedyck, *Hierarchical singular value decomposition of tensors*, SIMAX 31(4), 2010,
//! Theorems 3.11 and 3.14; Tobler's thesis, ETH 2012, for the leaves-to-root variant.)
//!
//! # Cost
//! Leaves to root: the first leaf costs one copy of the tensor plus a Householder QR of the
//! `N/n_1 x n_1` unfolding (`≈ 2 N n_1` flops) and the projection (`2 N k_1`); every
//! later step works on a tensor shrunk by `k_t / n_t`. Peak memory: the input, one copy
//! of it, and the first projected core. Root to leaves: one such pass per node on the full
//! tensor, `O(N Σ_t N_t)` flops.

use ndarray::{Array2, ArrayD, ArrayViewD};

use crate::formats::ht::{HtNode, LabelledCore, truncation_order};
use crate::linalg::{
    MatrixTruncation, Sketch, TruncatedSvd, identity_factor, keeps_everything,
    randomized_unfolding_left_svd, unfolding_left_svd,
};
use crate::{AsRule, Decompose, DimTree, Error, HtTensor, Result, Scalar, TruncationInfo, dense};

/// Which HT-SVD sweep to run; see the [module docs](self).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Sweep {
    /// Leaves to root on successively projected tensors (`htucker`'s `truncate_ltr`).
    #[default]
    LeavesToRoot,
    /// Root to leaves on the full tensor (Grasedyck 2010).
    RootToLeaves,
}

/// HT-SVD of the dense tensor `x` on `tree` under `rule`.
///
/// Returns the HT tensor and, per node, the singular values seen and the discarded norm
/// (see [`TruncationInfo`]); `info.error_bound` bounds `‖X − Y‖_F` rigorously.
///
/// # Errors
/// - [`Error::Empty`] / [`Error::NonFinite`] for an empty tensor or NaN/Inf entries;
/// - [`Error::InvalidTree`] if the tree's order differs from the tensor's;
/// - [`Error::InvalidParameter`] for an invalid rule, or (`name: "x"`) a tensor whose
///   Frobenius norm overflows `T`.
///
/// A zero tensor is fine: it gives an HT tensor of rank 1 everywhere that is zero.
///
/// # Example
/// ```
/// use tnet::formats::ht::{ht_svd, Sweep};
/// use tnet::{DimTree, Factorized, Truncation};
/// let x = tnet::dense::random_normal::<f64>(&[4, 5, 6, 3], 1);
/// let tree = DimTree::balanced(4).unwrap();
/// for sweep in [Sweep::LeavesToRoot, Sweep::RootToLeaves] {
///     let (y, info) = ht_svd(x.view(), &tree, &Truncation::rel(0.3), sweep).unwrap();
///     let err = tnet::dense::rel_error(x.view(), y.to_dense().view()).unwrap();
///     assert!(err <= 0.3 && err <= info.rel_error_bound() * (1.0 + 1e-12));
/// }
/// ```
pub fn ht_svd<T: Scalar>(
    x: ArrayViewD<'_, T>,
    tree: &DimTree,
    rule: &impl AsRule,
    sweep: Sweep,
) -> Result<(HtTensor<T>, TruncationInfo<T>)> {
    ht_decompose("ht_svd", x, tree, rule, sweep, None)
}

/// Randomized HT-SVD of the dense tensor `x` on `tree` under `rule`: the leaves-to-root
/// sweep of [`ht_svd`] with each node's left factor found by a randomized range finder
/// ([`randomized_unfolding_left_svd`]; `sketch` sets the oversampling, the power
/// iterations and the seed). A node whose sketch would not be smaller than its
/// unfolding's row count (leaves with `n_t` at most the rank plus the oversampling,
/// typically) is factorised exactly, as by [`ht_svd`].
///
/// # Error
/// Each truncation is an orthogonal projection of the current core, so the bound of
/// [`ht_svd`] holds with each node's discarded norm including its sketch's residual, which
/// is computed directly: `‖X − Y‖_F ≤ info.error_bound = √(Σ_t δ_t²)` a posteriori (up
/// to round-off, as for [`ht_svd`]), and under a tolerance each sketch grows until its node
/// meets its share, so `‖X − Y‖_F ≤ ε ‖X‖_F` as for [`ht_svd`]. At a fixed rank the error
/// is within a small factor of HT-SVD's; `info.singular_values` are those of the
/// sketches' projections (lower bounds).
///
/// # Cost
/// Two passes (plus one per power iteration) over the core at each sketched node, about
/// `2 |core| s_t (3 + 2q)` flops for a sketch of `s_t` columns and `q` power iterations
/// instead of the `≈ 4 |core| rows_t` of a QR-based SVD; the projected core comes out of the sketch's own projection.
/// Seeded: the same seed gives the same tensor for any number of threads.
///
/// # Errors
/// As [`ht_svd`].
///
/// # Example
/// ```
/// use tnet::formats::ht::{ht_randomized, ht_svd, Sweep};
/// use tnet::linalg::Sketch;
/// use tnet::{DimTree, Factorized, HtTensor, Truncation};
/// let tree = DimTree::balanced(4).unwrap();
/// let x = tnet::dense::random_normal::<f64>(&[20, 20, 20, 20], 1);
/// let (r, info) = ht_randomized(x.view(), &tree, &Truncation::rel(0.5), &Sketch::new(3))
///     .unwrap();
/// let err = r.distance(x.view()).unwrap() / tnet::dense::norm(x.view());
/// assert!(err <= 0.5 && err <= info.rel_error_bound() * (1.0 + 1e-9));
/// ```
pub fn ht_randomized<T: Scalar>(
    x: ArrayViewD<'_, T>,
    tree: &DimTree,
    rule: &impl AsRule,
    sketch: &Sketch,
) -> Result<(HtTensor<T>, TruncationInfo<T>)> {
    // In standard layout, so that the sketches (drawn per block of the data as laid out)
    // do not depend on the input's strides.
    let xs = x.as_standard_layout();
    ht_decompose(
        "ht_randomized",
        xs.view(),
        tree,
        rule,
        Sweep::LeavesToRoot,
        Some(sketch),
    )
}

fn ht_decompose<T: Scalar>(
    context: &'static str,
    x: ArrayViewD<'_, T>,
    tree: &DimTree,
    rule: &impl AsRule,
    sweep: Sweep,
    sketch: Option<&Sketch>,
) -> Result<(HtTensor<T>, TruncationInfo<T>)> {
    dense::check_tensor(context, &x)?;
    tree.check_order(x.ndim())?;
    let rule = rule.as_rule()?;
    let norm = dense::norm(x.view());
    if !norm.is_finite() {
        return Err(Error::param(
            "x",
            format!(
                "its Frobenius norm overflows {}: the root transfer tensor would hold it; scale the tensor down",
                T::NAME
            ),
        ));
    }
    let d = x.ndim();
    if d == 1 {
        // Collect in logical order: `to_owned` keeps a reversed view's negative stride.
        let u = Array2::from_shape_vec((x.len(), 1), x.iter().copied().collect()).expect("n x 1");
        let ht = HtTensor::from_parts(tree.clone(), x.shape().to_vec(), vec![HtNode::Leaf(u)]);
        return Ok((
            ht,
            TruncationInfo::new(vec![Vec::new()], vec![T::zero()], norm),
        ));
    }
    let node_rule = rule.per_matrix(norm, 2 * d - 3);
    // A zero tensor has nothing to sketch: the exact sweep gives ranks 1.
    let sketch = sketch.filter(|_| norm > T::zero());
    match sweep {
        Sweep::LeavesToRoot => leaves_to_root(x, tree, node_rule, norm, sketch),
        Sweep::RootToLeaves => root_to_leaves(x, tree, node_rule, norm),
    }
}

struct Record<T> {
    nodes: Vec<Option<HtNode<T>>>,
    singular_values: Vec<Vec<T>>,
    discarded: Vec<T>,
}

impl<T: Scalar> Record<T> {
    fn new(n: usize) -> Self {
        Self {
            nodes: vec![None; n],
            singular_values: vec![Vec::new(); n],
            discarded: vec![T::zero(); n],
        }
    }

    fn finish(self, tree: &DimTree, shape: &[usize], norm: T) -> (HtTensor<T>, TruncationInfo<T>) {
        let nodes = self
            .nodes
            .into_iter()
            .map(|n| n.expect("internal invariant: every node set"))
            .collect();
        let ht = HtTensor::from_parts(tree.clone(), shape.to_vec(), nodes);
        (
            ht,
            TruncationInfo::new(self.singular_values, self.discarded, norm),
        )
    }
}

fn as_transfer<T: Scalar>(u: Array2<T>, kl: usize, kr: usize) -> HtNode<T> {
    let kt = u.ncols();
    let u = u.as_standard_layout().into_owned();
    HtNode::Transfer(
        u.into_shape_with_order((kl, kr, kt))
            .expect("rows = kl * kr"),
    )
}

/// The left factor of the core's unfolding over the axis positions `rows`: exact, or by
/// a sketch, which also gives the core with those axes projected (merged into one) when
/// it comes for free.
fn factor<T: Scalar>(
    core: &LabelledCore<'_, T>,
    rows: &[usize],
    rule: MatrixTruncation<T>,
    sketch: Option<&Sketch>,
    stream: usize,
) -> Result<(TruncatedSvd<T>, Option<ArrayD<T>>)> {
    match sketch {
        None => Ok((unfolding_left_svd(core.data.view(), rows, rule)?, None)),
        Some(s) => {
            let m: usize = rows.iter().map(|&p| core.data.shape()[p]).product();
            if keeps_everything(&rule, m, core.data.len() / m) {
                // The input was checked: no need to read it for an identity.
                return Ok((identity_factor(m), None));
            }
            let f = randomized_unfolding_left_svd(core.data.view(), rows, rule, s, stream as u64)?;
            Ok((f.svd, f.projected))
        }
    }
}

fn leaves_to_root<T: Scalar>(
    x: ArrayViewD<'_, T>,
    tree: &DimTree,
    rule: MatrixTruncation<T>,
    norm: T,
    sketch: Option<&Sketch>,
) -> Result<(HtTensor<T>, TruncationInfo<T>)> {
    let (_, left0, exempt) = truncation_order(tree);
    let mut rec = Record::new(tree.n_nodes());
    // Post-order: every node is truncated as soon as its children are, so the core shrinks
    // as early as possible and later SVDs work on small tensors. The core borrows the
    // caller's tensor until the first contraction (no copy of the input).
    let mut core = LabelledCore {
        data: x.view().into(),
        axes: (0..x.ndim()).map(|m| tree.leaf_of(m)).collect(),
    };
    for t in tree.post_order() {
        if t == exempt || t == tree.root() {
            continue;
        }
        match tree.children(t) {
            None => {
                let pos = core.position(t);
                let (svd, projected) = factor(&core, &[pos], rule, sketch, t)?;
                let n = core.data.shape()[pos];
                let basis = if let Some(p) = projected {
                    core.data = p.into();
                    svd.u
                } else if svd.rank == n {
                    // Nothing truncated: any orthonormal basis of the whole mode will do,
                    // and the identity needs no projection.
                    Array2::eye(n)
                } else {
                    core.data = dense::mode_product(core.data.view(), svd.u.t(), pos)?.into();
                    svd.u
                };
                rec.discarded[t] = svd.discarded;
                rec.singular_values[t] = svd.singular_values;
                rec.nodes[t] = Some(HtNode::Leaf(basis));
            }
            Some((l, r)) => {
                let rows = core.positions(&[l, r]);
                let (svd, projected) = factor(&core, &rows, rule, sketch, t)?;
                match projected {
                    Some(p) if rows[1] == rows[0] + 1 => core.replace(&[l, r], t, p),
                    _ => core.merge(&[l, r], t, svd.u.view()),
                }
                let (kl, kr) = (rank_of(&rec, l), rank_of(&rec, r));
                rec.discarded[t] = svd.discarded;
                rec.singular_values[t] = svd.singular_values;
                rec.nodes[t] = Some(as_transfer(svd.u, kl, kr));
            }
        }
    }
    // The exempt child of the root: its matricization has rank <= k_left0, so keeping all
    // of it (up to the rank cap, which cannot bind) is exact.
    let exact = MatrixTruncation::rank_only(rule.max_rank);
    let rows: Vec<usize> = match tree.children(exempt) {
        Some((l, r)) => vec![l, r],
        None => vec![exempt],
    };
    let svd = unfolding_left_svd(core.data.view(), &core.positions(&rows), exact)?;
    core.merge(&rows, exempt, svd.u.view());
    rec.singular_values[exempt] = svd.singular_values;
    rec.discarded[exempt] = svd.discarded;
    rec.nodes[exempt] = Some(match tree.children(exempt) {
        Some((l, r)) => {
            let (kl, kr) = (rank_of(&rec, l), rank_of(&rec, r));
            as_transfer(svd.u, kl, kr)
        }
        None => HtNode::Leaf(svd.u),
    });
    // The root: what is left is the matrix B_root[:, :, 0], over (left0, exempt) in some
    // order of axes.
    let m = core
        .data
        .into_owned()
        .into_dimensionality::<ndarray::Ix2>()
        .expect("two axes left");
    let m = if core.axes == [left0, exempt] {
        m
    } else {
        m.reversed_axes()
    };
    let (kl, kr) = m.dim();
    rec.nodes[tree.root()] = Some(as_transfer(column(m), kl, kr));
    Ok(rec.finish(tree, x.shape(), norm))
}

/// The entries of `m` in row-major order as one column.
fn column<T: Scalar>(m: Array2<T>) -> Array2<T> {
    let len = m.len();
    m.as_standard_layout()
        .into_owned()
        .into_shape_with_order((len, 1))
        .expect("standard layout")
}

fn rank_of<T: Scalar>(rec: &Record<T>, t: usize) -> usize {
    rec.nodes[t]
        .as_ref()
        .expect("internal invariant: child done before parent")
        .rank()
}

fn root_to_leaves<T: Scalar>(
    x: ArrayViewD<'_, T>,
    tree: &DimTree,
    rule: MatrixTruncation<T>,
    norm: T,
) -> Result<(HtTensor<T>, TruncationInfo<T>)> {
    let (order, left0, exempt) = truncation_order(tree);
    let mut rec = Record::new(tree.n_nodes());
    // Frames of every non-root node but the exempt child, from the full tensor.
    let mut frames: Vec<Option<Array2<T>>> = vec![None; tree.n_nodes()];
    for t in order.into_iter().filter(|&t| t != exempt) {
        let svd = unfolding_left_svd(x.view(), tree.modes(t), rule)?;
        rec.discarded[t] = svd.discarded;
        rec.singular_values[t] = svd.singular_values;
        frames[t] = Some(svd.u);
    }
    // X^{(left0)} as an N_l x N_r matrix, rows and columns over the two children's modes
    // in tree order (the row orders of U_left0 and U_exempt).
    let root_modes = tree.modes(tree.root());
    let nl: usize = tree.modes(left0).iter().map(|&m| x.shape()[m]).product();
    let nr = x.len() / nl;
    let xl = dense::unfold_modes(x.view(), root_modes)?
        .into_shape_with_order((nl, nr))
        .expect("N x 1");
    // The exempt child: X^{(exempt)} = X^{(left0)T}, so its frame is an orthonormal basis of
    // X^{(left0)T} U_left0, the range of the left-projected tensor; the projection is then
    // exact. (An SVD of X^{(exempt)} of its own would pick, inside a cluster of equal
    // singular values at the cut, a subspace unrelated to the left child's and break the
    // error bound.) Only exactly-zero directions are dropped.
    let ul = frames[left0].as_ref().expect("left child done");
    let w = crate::linalg::matmul(xl.t(), ul.view());
    let exact = MatrixTruncation {
        max_rank: ul.ncols(),
        tol: T::zero(),
    };
    let svd = crate::linalg::svd(w.view(), exact, false)?;
    rec.singular_values[exempt] = rec.singular_values[left0].clone();
    frames[exempt] = Some(svd.u);
    // Transfer tensors B_t = (U_l ⊗ U_r)^T U_t, bottom-up.
    for t in tree.post_order() {
        let frame = |n: usize| frames[n].as_ref().expect("frame computed");
        match tree.children(t) {
            None => rec.nodes[t] = Some(HtNode::Leaf(frame(t).clone())),
            Some((l, r)) if t != tree.root() => {
                rec.nodes[t] = Some(HtNode::Transfer(project_frame(
                    frame(l).view(),
                    frame(r).view(),
                    frame(t).view(),
                )));
            }
            Some((l, r)) => {
                // B_root = U_l^T X^{(l)} U_r = W^T U_r, with W = X^{(l)T} U_l from above.
                debug_assert_eq!((l, r), (left0, exempt));
                let m = crate::linalg::matmul(w.t(), frame(r).view());
                let (kl, kr) = m.dim();
                rec.nodes[t] = Some(as_transfer(column(m), kl, kr));
            }
        }
    }
    Ok(rec.finish(tree, x.shape(), norm))
}

/// `B[a, b, c] = sum_{i, j} U_l[i, a] U_r[j, b] U_t[(i, j), c]`.
fn project_frame<T: Scalar>(
    ul: ndarray::ArrayView2<'_, T>,
    ur: ndarray::ArrayView2<'_, T>,
    ut: ndarray::ArrayView2<'_, T>,
) -> ndarray::Array3<T> {
    let (nl, kl) = ul.dim();
    let (nr, kr) = ur.dim();
    let kt = ut.ncols();
    let ut = ut.as_standard_layout();
    let m = ut
        .view()
        .into_shape_with_order((nl, nr * kt))
        .expect("rows = N_l N_r");
    let t1 = crate::linalg::matmul(ul.t(), m); // kl x (nr kt)
    let t1 = t1.as_standard_layout();
    let mut out = ndarray::Array3::<T>::zeros((kl, kr, kt));
    for a in 0..kl {
        let slab = t1
            .row(a)
            .into_shape_with_order((nr, kt))
            .expect("contiguous");
        out.index_axis_mut(ndarray::Axis(0), a)
            .assign(&crate::linalg::matmul(ur.t(), slab));
    }
    out
}

impl<T: Scalar> Decompose<T> for HtTensor<T> {
    /// The dimension tree.
    type Structure = DimTree;

    /// The balanced tree over `order` modes.
    fn default_structure(order: usize) -> Result<DimTree> {
        DimTree::balanced(order)
    }

    /// HT-SVD, leaves to root ([`ht_svd`] with [`Sweep::LeavesToRoot`]).
    fn decompose(
        x: ArrayViewD<'_, T>,
        tree: &DimTree,
        rule: &impl AsRule,
    ) -> Result<(Self, TruncationInfo<T>)> {
        ht_svd(x, tree, rule, Sweep::LeavesToRoot)
    }
}
