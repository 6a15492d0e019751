//! Orthogonalisation, reduced Gramians and truncation of HT tensors without densifying.
//!
//! # Orthogonalisation (`htucker`'s `orthog`)
//! Leaves to root: each leaf basis is replaced by the `Q` of its QR factorisation and the
//! `R` is pushed into the parent's transfer tensor; each interior transfer tensor, pushed
//! into, is reshaped to `(k_l k_r) x k_t`, QR-factorised, and passes its `R` up. After it
//! every frame `U_t` (non-root) has orthonormal columns and `‖X‖ = ‖B_root‖`. Cost
//! `O(Σ n_t k_t² + Σ k⁴)`.
//!
//! # Reduced Gramians, as square roots
//! For an orthogonal HT tensor, `X^{(t)} = U_t V_t^T` and the reduced Gramian is
//! `G_t = V_t^T V_t`; its eigenvectors are the left singular vectors of `X^{(t)}` in the
//! basis `U_t`. Instead of forming `G_t` (which squares the singular values and loses those
//! below `√ε ‖X‖`), tnet carries a factor `F_t` with `F_t F_t^T = G_t`, top-down:
//! `F_root = [1]` and, for the children of `t`,
//! `K_l = (B_t ×_3 F_t^T)` unfolded on its first index, `K_l = W Σ Z^T`, `F_l = W Σ`
//! (likewise for the right child). The SVD of `K_l` gives the singular values of `X^{(l)}`
//! directly, accurate to `ε ‖X‖`. [`gramians`] returns `G_t = F_t F_t^T` for the users who
//! want them (`htucker`'s `gramians`).
//!
//! # Truncation (`htucker`'s `truncate` on an HT tensor)
//! Orthogonalise; compute every node's left singular vectors `S_t` (truncated under the
//! rule) from the factors above; then `U_t ← U_t S_t` at the leaves and
//! `B_t ← B_t ×_1 S_l^T ×_2 S_r^T ×_3 S_t^T` inside. The error bounds are those of HT-SVD
//! (`2d − 3` truncations: the root's right child takes the rank of the left one):
//! `‖X − Y‖ ≤ ε‖X‖` for a relative tolerance, `≤ √(2d−3) ‖X − X_best‖` for fixed ranks,
//! and always `≤ info.error_bound`. Cost `O(Σ n_t k_t² + d k⁴)`.

use ndarray::{Array2, Array3};

use crate::formats::ht::{
    HtNode, transfer_mul_left, transfer_mul_out, transfer_mul_right, truncation_order,
};
use crate::linalg::{MatrixTruncation, qr, svd};
use crate::{AsRule, Error, Factorized, HtTensor, Result, Scalar, TruncationInfo};

/// Orthogonalises an HT tensor (same tensor, orthonormal frames below the root).
///
/// # Example
/// ```
/// use tnet::{DimTree, Factorized, HtTensor};
/// let x = HtTensor::<f64>::random(&DimTree::balanced(3).unwrap(), &[4, 5, 6], 2, 3).unwrap();
/// let y = tnet::formats::ht::orthogonalize(&x);
/// let err = tnet::dense::rel_error(x.to_dense().view(), y.to_dense().view()).unwrap();
/// assert!(err < 1e-13);
/// ```
pub fn orthogonalize<T: Scalar>(x: &HtTensor<T>) -> HtTensor<T> {
    let tree = x.tree().clone();
    let mut nodes: Vec<HtNode<T>> = x.nodes().to_vec();
    let mut r_of: Vec<Option<Array2<T>>> = vec![None; tree.n_nodes()];
    for t in tree.post_order() {
        let is_root = t == tree.root();
        match tree.children(t) {
            None if is_root => {}
            None => {
                let (q, r) = qr(x.leaf(t));
                nodes[t] = HtNode::Leaf(q);
                r_of[t] = Some(r);
            }
            Some((l, r)) => {
                let HtNode::Transfer(b) = &nodes[t] else {
                    unreachable!("interior node holds a transfer")
                };
                let mut b = b.clone();
                if let Some(rl) = &r_of[l] {
                    b = transfer_mul_left(b.view(), rl.view());
                }
                if let Some(rr) = &r_of[r] {
                    b = transfer_mul_right(b.view(), rr.view());
                }
                if is_root {
                    nodes[t] = HtNode::Transfer(b);
                } else {
                    let (kl, kr, kt) = b.dim();
                    let m = b
                        .into_shape_with_order((kl * kr, kt))
                        .expect("standard layout");
                    let (q, rt) = qr(m.view());
                    let k = q.ncols();
                    nodes[t] = HtNode::Transfer(
                        q.as_standard_layout()
                            .into_owned()
                            .into_shape_with_order((kl, kr, k))
                            .expect("size"),
                    );
                    r_of[t] = Some(rt);
                }
            }
        }
    }
    HtTensor::from_parts(tree, x.shape().to_vec(), nodes)
}

/// Per node: the square-root factor `F_t` and the singular values of `X^{(t)}`.
pub(super) type GramianFactors<T> = (Vec<Array2<T>>, Vec<Vec<T>>);

/// Square-root factors `F_t` (`k_t x k_t`) of the reduced Gramians of an **orthogonal** HT
/// tensor, with the singular values of every matricization (see the [module docs](self)).
pub(super) fn gramian_factors<T: Scalar>(x: &HtTensor<T>) -> Result<GramianFactors<T>> {
    let tree = x.tree();
    let n = tree.n_nodes();
    let mut f: Vec<Array2<T>> = vec![Array2::zeros((0, 0)); n];
    let mut sv: Vec<Vec<T>> = vec![Vec::new(); n];
    f[tree.root()] = Array2::from_elem((1, 1), T::one());
    for t in tree.pre_order() {
        let Some((l, r)) = tree.children(t) else {
            continue;
        };
        // K = B_t ×_3 F_t^T: K[a, b, j] = sum_c B[a, b, c] F[c, j].
        let k = transfer_mul_out(x.transfer(t), f[t].t());
        let (kl, kr, kt) = k.dim();
        let kl_mat = k
            .view()
            .into_shape_with_order((kl, kr * kt))
            .expect("standard");
        let kr_mat = k
            .view()
            .permuted_axes([1, 0, 2])
            .as_standard_layout()
            .into_owned()
            .into_shape_with_order((kr, kl * kt))
            .expect("size");
        for (child, m) in [(l, kl_mat.to_owned()), (r, kr_mat)] {
            let s = svd(m.view(), MatrixTruncation::exact(), false)?;
            let mut fc = Array2::<T>::zeros((m.nrows(), m.nrows()));
            for (j, &sj) in s.kept().iter().enumerate() {
                fc.column_mut(j).assign(&(&s.u.column(j) * sj));
            }
            f[child] = fc;
            sv[child] = s.singular_values;
        }
    }
    Ok((f, sv))
}

/// Reduced Gramians `G_t` (`k_t x k_t`) of the HT tensor after orthogonalisation, one per
/// node, with `G_root = [[1]]` (the norm lives in `B_root`), so that the eigenvalues of
/// `G_t` are the squared singular values of `X^{(t)}` (`htucker`'s `gramians`). For
/// accurate singular values use [`truncate`]'s `info.singular_values`, which avoid the
/// squaring.
///
/// Returns the orthogonalised tensor the Gramians refer to and the Gramians.
///
/// # Errors
/// [`Error::Linalg`] if an SVD fails.
pub fn gramians<T: Scalar>(x: &HtTensor<T>) -> Result<(HtTensor<T>, Vec<Array2<T>>)> {
    let y = orthogonalize(x);
    let (f, _) = gramian_factors(&y)?;
    let g = f
        .iter()
        .map(|fi| crate::linalg::matmul(fi.view(), fi.t()))
        .collect();
    Ok((y, g))
}

/// Truncates an HT tensor to `rule` without densifying. See the [module docs](self).
///
/// # Errors
/// [`Error::InvalidParameter`] for an invalid rule or a tensor whose norm overflows `T`,
/// [`Error::Linalg`] if an SVD fails.
///
/// # Example
/// ```
/// use tnet::{DimTree, Factorized, HtTensor, Truncation};
/// let tree = DimTree::balanced(4).unwrap();
/// let x = HtTensor::<f64>::random(&tree, &[6; 4], 2, 1).unwrap();
/// let doubled = x.add(&x).unwrap(); // ranks 4, tensor of ranks 2
/// let (y, info) = doubled.truncate(&Truncation::rel(1e-12)).unwrap();
/// assert!(y.max_rank() <= 2);
/// assert!(info.error_bound <= 1e-12 * info.input_norm);
/// ```
pub fn truncate<T: Scalar>(
    x: &HtTensor<T>,
    rule: &impl AsRule,
) -> Result<(HtTensor<T>, TruncationInfo<T>)> {
    let rule = rule.as_rule()?;
    let tree = x.tree().clone();
    let d = tree.order();
    let y = orthogonalize(x);
    let norm = match &y.nodes()[tree.root()] {
        HtNode::Transfer(b) => crate::dense::norm(b.view().into_dyn()),
        HtNode::Leaf(u) => crate::dense::norm(u.view().into_dyn()),
    };
    if !norm.is_finite() {
        return Err(Error::param(
            "x",
            format!("its Frobenius norm overflows {}", T::NAME),
        ));
    }
    if d == 1 {
        return Ok((
            y,
            TruncationInfo::new(vec![Vec::new()], vec![T::zero()], norm),
        ));
    }
    let node_rule = rule.per_matrix(norm, 2 * d - 3);
    let (f, sv) = gramian_factors(&y)?;
    let (order, left0, exempt) = truncation_order(&tree);
    let n = tree.n_nodes();
    let mut s: Vec<Option<Array2<T>>> = vec![None; n];
    let mut discarded = vec![T::zero(); n];
    for t in order {
        let r = if t == exempt {
            MatrixTruncation::rank_only(s[left0].as_ref().expect("left first").ncols())
        } else {
            node_rule
        };
        let (keep, disc) = r.rank_for(&sv[t]);
        s[t] = Some(if t == exempt {
            // X^{(exempt)} = X^{(left0)T}: with M = B_root as a k_l x k_r matrix, take the
            // range of M^T S_left0, so that the exempt projection is exact given the left
            // one. (Its own leading directions could, for equal singular values at the
            // cut, span another subspace than the left child's and break the bound.)
            let root = y.transfer(tree.root());
            let m = root.index_axis(ndarray::Axis(2), 0);
            let sl = s[left0].as_ref().expect("left first");
            let w = crate::linalg::matmul(m.t(), sl.view());
            leading_directions(w.view(), keep)?
        } else {
            discarded[t] = disc;
            // Left singular vectors of F_t: the first `keep` columns of F_t = W Σ, normalised.
            leading_directions(f[t].view(), keep)?
        });
    }
    let mut nodes = y.nodes().to_vec();
    for t in tree.pre_order() {
        let st = s[t].as_ref();
        nodes[t] = match (&nodes[t], tree.children(t)) {
            (HtNode::Leaf(u), None) => HtNode::Leaf(crate::linalg::matmul(
                u.view(),
                st.expect("non-root").view(),
            )),
            (HtNode::Transfer(b), Some((l, r))) => {
                let sl = s[l].as_ref().expect("child");
                let sr = s[r].as_ref().expect("child");
                let mut b: Array3<T> = transfer_mul_left(b.view(), sl.t());
                b = transfer_mul_right(b.view(), sr.t());
                if let Some(st) = st {
                    b = transfer_mul_out(b.view(), st.t());
                }
                HtNode::Transfer(b)
            }
            _ => unreachable!("node kinds match the tree"),
        };
    }
    let out = HtTensor::from_parts(tree, x.shape().to_vec(), nodes);
    Ok((out, TruncationInfo::new(sv, discarded, norm)))
}

/// The `keep` leading left singular vectors of `F` (whose columns are already `W Σ`
/// from an SVD; recomputed here with a tiny SVD so that zero singular values still give
/// orthonormal directions).
fn leading_directions<T: Scalar>(f: ndarray::ArrayView2<'_, T>, keep: usize) -> Result<Array2<T>> {
    let s = svd(
        f,
        MatrixTruncation {
            max_rank: keep,
            tol: T::zero(),
        },
        false,
    )?;
    let mut u = s.u;
    if u.ncols() < keep {
        // Exactly zero directions were dropped by the SVD rule; pad with an orthonormal
        // completion so the requested rank is honoured.
        let k = f.nrows();
        let mut full = Array2::<T>::eye(k);
        full.slice_mut(ndarray::s![.., ..u.ncols()]).assign(&u);
        let (q, _) = qr(full.view());
        u = q.slice(ndarray::s![.., ..keep]).to_owned();
    }
    Ok(u)
}

/// Truncation of the sum `Σ_i X_i` of HT tensors on one tree to `rule`.
///
/// The summands are orthogonalised one by one and their sum is assembled in HT form
/// (leaf bases side by side, block-diagonal transfer tensors; ranks add), then truncated
/// as in [`truncate`]; the dense sum is never formed. The error bounds of [`truncate`]
/// hold for the exact sum. Cost `O(d (Σ_i k_i)⁴ + Σ n_t (Σ_i k_i)²)`.
///
/// # Errors
/// [`Error::InvalidParameter`] for an empty list, [`Error::ShapeMismatch`] or
/// [`Error::InvalidTree`] if the summands differ in shape or tree.
pub fn truncate_sum<T: Scalar>(
    terms: &[&HtTensor<T>],
    rule: &impl AsRule,
) -> Result<(HtTensor<T>, TruncationInfo<T>)> {
    let (first, rest) = terms
        .split_first()
        .ok_or_else(|| Error::param("terms", "at least one tensor is needed"))?;
    let mut sum = orthogonalize(first);
    for t in rest {
        sum = sum.add(&orthogonalize(t))?;
    }
    truncate(&sum, rule)
}
