//! Arithmetic on HT tensors without densifying.
//!
//! | operation | result ranks | cost |
//! |---|---|---|
//! | [`add`](HtTensor::add), [`sub`](HtTensor::sub) | `k_t + k'_t` (root 1) | `O(Σ n (k+k') + Σ (k+k')³)` |
//! | [`scale`](HtTensor::scale) | unchanged | `O(1)` node |
//! | [`hadamard`](HtTensor::hadamard) | `k_t · k'_t` | `O(Σ n k² k'² + Σ k³ k'³)` |
//! | [`inner`](HtTensor::inner) | scalar | `O(Σ n k k' + Σ k³ k'^2 + ...)` |
//! | [`norm`](crate::Factorized::norm), [`norm_diff`](HtTensor::norm_diff) | scalar | orthogonalisation, `O(Σ n k² + d k⁴)` |
//! | [`mode_product`](HtTensor::mode_product) | unchanged | `O(J n k)` |
//! | [`contract`](HtTensor::contract) | order drops | `O(Σ n k + d k³)` |
//!
//! Sums and products are exact; follow them with [`truncate`](HtTensor::truncate) to
//! bring the ranks back down.

use ndarray::{Array2, Array3, ArrayView1, ArrayView2, s};

use super::{HtNode, HtTensor, LabelledCore};
use crate::tree::TreeSpec;
use crate::{DimTree, Error, Factorized, Result, Scalar};

impl<T: Scalar> HtTensor<T> {
    /// Exact sum `X + Y` (ranks add, except the root's which stays 1).
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] or [`Error::InvalidTree`] if shapes or trees differ;
    /// [`Error::NonFinite`] if an entry overflows.
    ///
    /// # Example
    /// ```
    /// use tnet::{DimTree, Factorized, HtTensor};
    /// let t = DimTree::balanced(3).unwrap();
    /// let x = HtTensor::<f64>::random(&t, &[3, 4, 5], 2, 1).unwrap();
    /// let y = HtTensor::<f64>::random(&t, &[3, 4, 5], 2, 2).unwrap();
    /// let s = x.add(&y).unwrap();
    /// let dense = &x.to_dense() + &y.to_dense();
    /// assert!(tnet::dense::rel_error(dense.view(), s.to_dense().view()).unwrap() < 1e-13);
    /// ```
    pub fn add(&self, other: &Self) -> Result<Self> {
        self.combine_sum(other, T::one())
    }

    /// Exact difference `X − Y`.
    ///
    /// # Errors
    /// As [`add`](Self::add).
    pub fn sub(&self, other: &Self) -> Result<Self> {
        self.combine_sum(other, -T::one())
    }

    fn combine_sum(&self, other: &Self, sign: T) -> Result<Self> {
        self.check_same_structure(other, "HtTensor::add")?;
        let tree = self.tree.clone();
        let root = tree.root();
        let mut nodes = Vec::with_capacity(tree.n_nodes());
        for t in tree.pre_order() {
            nodes.push(match tree.children(t) {
                None if t == root => HtNode::Leaf(&self.leaf(t) + &(&other.leaf(t) * sign)),
                None => {
                    let (a, b) = (self.leaf(t), other.leaf(t));
                    let mut u = Array2::zeros((a.nrows(), a.ncols() + b.ncols()));
                    u.slice_mut(s![.., ..a.ncols()]).assign(&a);
                    u.slice_mut(s![.., a.ncols()..]).assign(&b);
                    HtNode::Leaf(u)
                }
                Some(_) => {
                    let (a, b) = (self.transfer(t), other.transfer(t));
                    let (al, ar, at) = a.dim();
                    let (bl, br, bt) = b.dim();
                    if t == root {
                        let mut c = Array3::zeros((al + bl, ar + br, 1));
                        c.slice_mut(s![..al, ..ar, ..]).assign(&a);
                        c.slice_mut(s![al.., ar.., ..]).assign(&(&b * sign));
                        HtNode::Transfer(c)
                    } else {
                        let mut c = Array3::zeros((al + bl, ar + br, at + bt));
                        c.slice_mut(s![..al, ..ar, ..at]).assign(&a);
                        c.slice_mut(s![al.., ar.., at..]).assign(&b);
                        HtNode::Transfer(c)
                    }
                }
            });
        }
        // Checked: entries can overflow (the root leaf sum for d = 1; products here).
        Self::try_new(tree, self.shape.clone(), nodes)
    }

    /// `alpha · X` (scales the root only).
    pub fn scale(&self, alpha: T) -> Self {
        let mut out = self.clone();
        let root = out.tree.root();
        out.nodes[root] = match &out.nodes[root] {
            HtNode::Leaf(u) => HtNode::Leaf(u * alpha),
            HtNode::Transfer(b) => HtNode::Transfer(b * alpha),
        };
        out
    }

    /// Exact Hadamard (entrywise) product `X ∘ Y`; ranks multiply.
    ///
    /// Leaves: `U[i, (a, a')] = U_X[i, a] U_Y[i, a']`; transfers: Kronecker products.
    ///
    /// # Errors
    /// As [`add`](Self::add) (an overflowing product gives [`Error::NonFinite`]).
    pub fn hadamard(&self, other: &Self) -> Result<Self> {
        self.check_same_structure(other, "HtTensor::hadamard")?;
        let tree = self.tree.clone();
        let mut nodes = Vec::with_capacity(tree.n_nodes());
        for t in tree.pre_order() {
            nodes.push(match tree.children(t) {
                None => {
                    let (a, b) = (self.leaf(t), other.leaf(t));
                    let (ka, kb) = (a.ncols(), b.ncols());
                    HtNode::Leaf(Array2::from_shape_fn((a.nrows(), ka * kb), |(i, j)| {
                        a[[i, j / kb]] * b[[i, j % kb]]
                    }))
                }
                Some(_) => {
                    let (a, b) = (self.transfer(t), other.transfer(t));
                    let (al, ar, at) = a.dim();
                    let (bl, br, bt) = b.dim();
                    HtNode::Transfer(Array3::from_shape_fn(
                        (al * bl, ar * br, at * bt),
                        |(i, j, k)| a[[i / bl, j / br, k / bt]] * b[[i % bl, j % br, k % bt]],
                    ))
                }
            });
        }
        // Checked: entries can overflow (the root leaf sum for d = 1; products here).
        Self::try_new(tree, self.shape.clone(), nodes)
    }

    /// Inner product `<X, Y>` without densifying: bottom-up `M_t = U_t^T U'_t` at the leaves
    /// and `M_t = B_t^T (M_l ⊗ M_r) B'_t` inside. Cost `O(Σ n k k' + Σ k_t k'_t (k_l k'_l k_r + ...))`.
    ///
    /// # Errors
    /// As [`add`](Self::add).
    pub fn inner(&self, other: &Self) -> Result<T> {
        self.check_same_structure(other, "HtTensor::inner")?;
        let tree = &self.tree;
        let mut m: Vec<Array2<T>> = vec![Array2::zeros((0, 0)); tree.n_nodes()];
        for t in tree.post_order() {
            m[t] = match tree.children(t) {
                None => crate::linalg::matmul(self.leaf(t).t(), other.leaf(t)),
                Some((l, r)) => transfer_gram(
                    self.transfer(t),
                    other.transfer(t),
                    m[l].view(),
                    m[r].view(),
                ),
            };
        }
        Ok(m[tree.root()][[0, 0]])
    }

    /// `‖X − Y‖_F`, accurate to working precision even when `X ≈ Y` (orthogonalises
    /// `X − Y` instead of expanding `‖X‖² − 2<X,Y> + ‖Y‖²`).
    ///
    /// # Errors
    /// As [`add`](Self::add).
    pub fn norm_diff(&self, other: &Self) -> Result<T> {
        Ok(norm(&self.sub(other)?))
    }

    /// Mode-`k` product `X ×_k A` with `A` of shape `J x n_k`: the leaf basis becomes
    /// `A U_k`.
    ///
    /// # Errors
    /// [`Error::InvalidMode`] or [`Error::ShapeMismatch`]; [`Error::Empty`] if `J = 0`.
    pub fn mode_product(&self, a: ArrayView2<'_, T>, k: usize) -> Result<Self> {
        if k >= self.order() {
            return Err(Error::InvalidMode {
                mode: k,
                order: self.order(),
            });
        }
        if a.ncols() != self.shape[k] {
            return Err(Error::ShapeMismatch {
                context: "HtTensor::mode_product",
                expected: vec![a.nrows(), self.shape[k]],
                got: a.shape().to_vec(),
            });
        }
        let mut shape = self.shape.clone();
        shape[k] = a.nrows();
        let mut nodes = self.nodes.clone();
        let t = self.tree.leaf_of(k);
        nodes[t] = HtNode::Leaf(crate::linalg::matmul(a, self.leaf(t)));
        Self::try_new(self.tree.clone(), shape, nodes)
    }

    /// Contracts the modes given by `vectors[k] = Some(v_k)` with the vectors `v_k`
    /// (`htucker`'s `ttv`), returning the HT tensor over the remaining modes (renumbered
    /// in order), on the tree obtained by removing the contracted leaves.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if `vectors` has not `d` entries or a vector's length
    /// differs from its mode; [`Error::InvalidParameter`] if every mode is contracted (use
    /// [`contract_all`](Self::contract_all) for the scalar).
    pub fn contract(&self, vectors: &[Option<ArrayView1<'_, T>>]) -> Result<Self> {
        self.check_vectors(vectors)?;
        if vectors.iter().all(Option::is_some) {
            return Err(Error::param(
                "vectors",
                "every mode is contracted: use contract_all for the scalar",
            ));
        }
        let tree = &self.tree;
        // Bottom-up: each node becomes either a (possibly rewritten) subtree or, when all its
        // modes are contracted, a row vector w_t (1 x k_t) to fold into its parent.
        enum Part<T> {
            Vector(ndarray::Array1<T>),
            // spec over the original mode numbers, nodes of the subtree in pre-order, and the
            // subtree's frame matrix multiplier is already folded in.
            Tree(TreeSpec, Vec<HtNode<T>>),
        }
        let mut parts: Vec<Option<Part<T>>> = (0..tree.n_nodes()).map(|_| None).collect();
        for t in tree.post_order() {
            let part = match tree.children(t) {
                None => {
                    let k = tree.modes(t)[0];
                    match &vectors[k] {
                        Some(v) => Part::Vector(self.leaf(t).t().dot(v)),
                        None => Part::Tree(
                            TreeSpec::Leaf(k),
                            vec![HtNode::Leaf(self.leaf(t).to_owned())],
                        ),
                    }
                }
                Some((l, r)) => {
                    let b = self.transfer(t);
                    match (
                        parts[l].take().expect("child"),
                        parts[r].take().expect("child"),
                    ) {
                        (Part::Vector(wl), Part::Vector(wr)) => {
                            let (_, _, kt) = b.dim();
                            let w = ndarray::Array1::from_shape_fn(kt, |c| {
                                let mut acc = T::zero();
                                for (a, &x) in wl.iter().enumerate() {
                                    for (bb, &y) in wr.iter().enumerate() {
                                        acc += x * y * b[[a, bb, c]];
                                    }
                                }
                                acc
                            });
                            Part::Vector(w)
                        }
                        (Part::Vector(w), Part::Tree(spec, nodes)) => {
                            // M[b, c] = sum_a w[a] B[a, b, c]: fold into the right subtree.
                            let m = contract_first(b, w.view());
                            Part::Tree(spec, fold_into_subtree(nodes, m))
                        }
                        (Part::Tree(spec, nodes), Part::Vector(w)) => {
                            let m = contract_second(b, w.view());
                            Part::Tree(spec, fold_into_subtree(nodes, m))
                        }
                        (Part::Tree(sl, nl), Part::Tree(sr, nr)) => {
                            let mut nodes = vec![HtNode::Transfer(b.to_owned())];
                            nodes.extend(nl);
                            nodes.extend(nr);
                            Part::Tree(TreeSpec::Node(Box::new(sl), Box::new(sr)), nodes)
                        }
                    }
                }
            };
            parts[t] = Some(part);
        }
        let Some(Part::Tree(spec, nodes)) = parts[tree.root()].take() else {
            unreachable!("some mode is left")
        };
        // Renumber the remaining modes 0..d'.
        let kept: Vec<usize> = (0..self.order())
            .filter(|&k| vectors[k].is_none())
            .collect();
        let spec = renumber(spec, &kept);
        let tree = DimTree::from_spec(&spec)?;
        let shape = kept.iter().map(|&k| self.shape[k]).collect();
        Self::try_new(tree, shape, nodes)
    }

    /// The full contraction `X ×_1 v_1 ×_2 .. ×_d v_d` (a multilinear form), cost
    /// `O(Σ n k + d k³)`.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if there are not `d` vectors of the mode sizes.
    pub fn contract_all(&self, vectors: &[ArrayView1<'_, T>]) -> Result<T> {
        let opts: Vec<Option<ArrayView1<'_, T>>> = vectors.iter().map(|v| Some(v.view())).collect();
        self.check_vectors(&opts)?;
        let tree = &self.tree;
        let mut w: Vec<ndarray::Array1<T>> = vec![ndarray::Array1::zeros(0); tree.n_nodes()];
        for t in tree.post_order() {
            w[t] = match tree.children(t) {
                None => self.leaf(t).t().dot(&vectors[tree.modes(t)[0]]),
                Some((l, r)) => {
                    let m = contract_second(self.transfer(t), w[r].view()); // (k_l, k_t)
                    m.t().dot(&w[l])
                }
            };
        }
        Ok(w[tree.root()][0])
    }

    fn check_vectors(&self, vectors: &[Option<ArrayView1<'_, T>>]) -> Result<()> {
        if vectors.len() != self.order() {
            return Err(Error::ShapeMismatch {
                context: "HtTensor::contract (one entry per mode)",
                expected: vec![self.order()],
                got: vec![vectors.len()],
            });
        }
        for (k, v) in vectors.iter().enumerate() {
            if let Some(v) = v {
                if v.len() != self.shape[k] {
                    return Err(Error::ShapeMismatch {
                        context: "HtTensor::contract (vector length must equal the mode size)",
                        expected: vec![self.shape[k]],
                        got: vec![v.len()],
                    });
                }
            }
        }
        Ok(())
    }
}

/// `M[b, c] = sum_a w[a] B[a, b, c]`.
fn contract_first<T: Scalar>(b: ndarray::ArrayView3<'_, T>, w: ArrayView1<'_, T>) -> Array2<T> {
    let (_, kr, kt) = b.dim();
    Array2::from_shape_fn((kr, kt), |(bb, c)| b.slice(s![.., bb, c]).dot(&w))
}

/// `M[a, c] = sum_b B[a, b, c] w[b]`.
fn contract_second<T: Scalar>(b: ndarray::ArrayView3<'_, T>, w: ArrayView1<'_, T>) -> Array2<T> {
    let (kl, _, kt) = b.dim();
    Array2::from_shape_fn((kl, kt), |(a, c)| b.slice(s![a, .., c]).dot(&w))
}

/// Multiplies the frame of a subtree's top node on the right by `m` (`k_top x k_new`).
fn fold_into_subtree<T: Scalar>(mut nodes: Vec<HtNode<T>>, m: Array2<T>) -> Vec<HtNode<T>> {
    nodes[0] = match &nodes[0] {
        HtNode::Leaf(u) => HtNode::Leaf(u.dot(&m)),
        HtNode::Transfer(b) => HtNode::Transfer(super::transfer_mul_out(b.view(), m.t())),
    };
    nodes
}

fn renumber(spec: TreeSpec, kept: &[usize]) -> TreeSpec {
    match spec {
        TreeSpec::Leaf(k) => TreeSpec::Leaf(kept.iter().position(|&m| m == k).expect("kept mode")),
        TreeSpec::Node(l, r) => {
            TreeSpec::Node(Box::new(renumber(*l, kept)), Box::new(renumber(*r, kept)))
        }
    }
}

/// `M_t[c, c'] = sum B[a, b, c] M_l[a, a'] M_r[b, b'] B'[a', b', c']`.
fn transfer_gram<T: Scalar>(
    b: ndarray::ArrayView3<'_, T>,
    b2: ndarray::ArrayView3<'_, T>,
    ml: ArrayView2<'_, T>,
    mr: ArrayView2<'_, T>,
) -> Array2<T> {
    // C = B' ×_1 M_l ×_2 M_r  (shape k_l x k_r x k'_t), then M = B_(3)^T-style contraction.
    let c = super::transfer_mul_left(b2, ml);
    let c = super::transfer_mul_right(c.view(), mr);
    let (kl, kr, kt) = b.dim();
    let kt2 = c.dim().2;
    let bs = b.as_standard_layout();
    let bm = bs
        .view()
        .into_shape_with_order((kl * kr, kt))
        .expect("standard");
    let cm = c
        .view()
        .into_shape_with_order((kl * kr, kt2))
        .expect("standard");
    crate::linalg::matmul(bm.t(), cm)
}

/// Norm through orthogonalisation: `‖X‖ = ‖B_root‖` of the orthogonalised tensor.
pub(super) fn norm<T: Scalar>(x: &HtTensor<T>) -> T {
    let y = crate::formats::ht::orthogonalize(x);
    match &y.nodes()[y.tree().root()] {
        HtNode::Leaf(u) => crate::dense::norm(u.view().into_dyn()),
        HtNode::Transfer(b) => crate::dense::norm(b.view().into_dyn()),
    }
}

/// Contracts a core whose axes are the leaf ranks (axis `m` = leaf of mode `m`) with the
/// transfer tensors, bottom-up, to the scalar `<X, core-expanded>`.
pub(super) fn contract_core_with_transfers<T: Scalar>(
    x: &HtTensor<T>,
    core: ndarray::ArrayD<T>,
) -> T {
    let tree = x.tree();
    if tree.order() == 1 {
        return core.iter().copied().sum();
    }
    let mut c = LabelledCore {
        data: core.into(),
        axes: (0..tree.order()).map(|m| tree.leaf_of(m)).collect(),
    };
    for t in tree.post_order() {
        if let Some((l, r)) = tree.children(t) {
            let b = x.transfer(t);
            let (kl, kr, kt) = b.dim();
            let bs = b.as_standard_layout();
            let m = bs
                .view()
                .into_shape_with_order((kl * kr, kt))
                .expect("standard")
                .to_owned();
            c.merge(&[l, r], t, m.view());
        }
    }
    c.data.iter().copied().sum()
}
