//! The HT-matrix format: a Hierarchical Tucker network whose leaves pair one input mode
//! with one output mode.

use ndarray::{ArrayD, ArrayView2, IxDyn};

use super::HtNode;
use crate::matrices::engine::{Engine, NetSpec, delegate_to_engine};
use crate::matrices::{
    FormatDescription, Init, MatrixFormat, MatrixShape, TensorizedFormat, check_core, core_sigma,
    decompose_tensorized, normal_cores, normalize_variance, paired_tensor,
};
use crate::{AsRule, DimTree, Error, HtTensor, Result, Scalar, TruncationInfo};

/// A weight matrix in HT-matrix format (the layer of the FDHT-LSTM; Yin et al., *Towards
/// extremely compact RNNs for video recognition with fully decomposed hierarchical Tucker
/// structure*, CVPR 2021).
///
/// On a [`DimTree`] over `d` modes, leaf `t` of mode `k` holds `U_t` of shape
/// `(n_k, m_k, r_t)` and interior node `t` with children `l`, `r` a transfer tensor `B_t`
/// of shape `(r_l, r_r, r_t)`; the root has rank 1. `W` is the HT tensor of the paired
/// modes `(j_k, i_k)` (size `n_k m_k`, index `j_k m_k + i_k`): a leaf is the HT leaf basis
/// `(n_k m_k, r_t)` reshaped. Parameters (one array per tree node, in the tree's
/// pre-order node numbering, root first): `Σ_leaves n_k m_k r_t + Σ_interior r_l r_r r_t`.
///
/// [`from_dense`](MatrixFormat::from_dense) is HT-SVD of the paired tensor (see
/// [`ht_svd`](crate::formats::ht)): with a relative tolerance `ε`,
/// `‖W − W̃‖_F ≤ ε ‖W‖_F`; with a rank cap, within `√(2d−3)` of the best.
///
/// # Example
/// ```
/// use tnet::matrices::{Init, LinearMap, MatrixFormat, MatrixShape, TensorizedMatrix};
/// use tnet::HtMatrix;
/// use tnet::DimTree;
/// let shape = MatrixShape::try_new(vec![16, 4, 4, 4], vec![8, 20, 20, 18]).unwrap();
/// let tree = DimTree::balanced(4).unwrap();
/// let w = HtMatrix::<f32>::random(&shape, &tree, 4, Init::Glorot, 0).unwrap();
/// // leaves 4 (128 + 80 + 80 + 72) + transfers 4*4*4 + 4*4*4 + 4*4*1
/// assert_eq!(w.n_params(), 1_440 + 144);
/// ```
#[derive(Clone, Debug)]
pub struct HtMatrix<T: Scalar> {
    shape: MatrixShape,
    tree: DimTree,
    cores: Vec<ArrayD<T>>,
    engine: Engine<T>,
}

impl<T: Scalar> HtMatrix<T> {
    /// Builds an HT-matrix from its nodes (indexed by tree node id), checking every
    /// invariant.
    ///
    /// # Errors
    /// - [`Error::InvalidTree`] if the tree's order differs from the shape's;
    /// - [`Error::ShapeMismatch`] for a wrong number of nodes or a node of the wrong shape
    ///   (leaf `(n_k, m_k, r_t)`, transfer `(r_l, r_r, r_t)`);
    /// - [`Error::InvalidRank`] for a zero rank or a root rank other than 1;
    /// - [`Error::NonFinite`] for NaN/Inf entries.
    pub fn try_new(shape: MatrixShape, tree: DimTree, cores: Vec<ArrayD<T>>) -> Result<Self> {
        tree.check_order(shape.order())?;
        if cores.len() != tree.n_nodes() {
            return Err(Error::ShapeMismatch {
                context: "HtMatrix::try_new (one array per tree node)",
                expected: vec![tree.n_nodes()],
                got: vec![cores.len()],
            });
        }
        if let Some(c) = cores.iter().find(|c| c.ndim() != 3) {
            return Err(Error::ShapeMismatch {
                context: "HtMatrix::try_new (every node is 3-D)",
                expected: vec![0, 0, 0],
                got: c.shape().to_vec(),
            });
        }
        let ranks: Vec<usize> = cores.iter().map(|c| c.shape()[2]).collect();
        if ranks.contains(&0) {
            return Err(Error::rank(
                "HtMatrix::try_new",
                format!("zero rank in {ranks:?}"),
            ));
        }
        if ranks[tree.root()] != 1 {
            return Err(Error::rank(
                "HtMatrix::try_new",
                format!("the root must have rank 1, got {}", ranks[tree.root()]),
            ));
        }
        let cores = cores
            .into_iter()
            .enumerate()
            .map(|(t, c)| {
                let expected = match tree.children(t) {
                    None => {
                        let k = tree.modes(t)[0];
                        [shape.in_modes()[k], shape.out_modes()[k], ranks[t]]
                    }
                    Some((l, r)) => [ranks[l], ranks[r], ranks[t]],
                };
                check_core(
                    "HtMatrix::try_new (leaf (n_k, m_k, r_t), transfer (r_l, r_r, r_t))",
                    c,
                    &expected,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let engine = Self::engine(&shape, &tree, &ranks)?;
        Ok(Self {
            shape,
            tree,
            cores,
            engine,
        })
    }

    fn engine(shape: &MatrixShape, tree: &DimTree, ranks: &[usize]) -> Result<Engine<T>> {
        let d = shape.order();
        let mut spec = NetSpec::default();
        let i: Vec<usize> = (0..d)
            .map(|k| spec.label(format!("i{k}"), shape.out_modes()[k]))
            .collect();
        let j: Vec<usize> = (0..d)
            .map(|k| spec.label(format!("j{k}"), shape.in_modes()[k]))
            .collect();
        let r: Vec<usize> = tree
            .pre_order()
            .map(|t| spec.label(format!("r{t}"), ranks[t]))
            .collect();
        for t in tree.pre_order() {
            match tree.children(t) {
                None => {
                    let k = tree.modes(t)[0];
                    spec.core(format!("U{k}"), vec![j[k], i[k], r[t]]);
                }
                Some((a, b)) => spec.core(format!("B{t}"), vec![r[a], r[b], r[t]]),
            }
        }
        Engine::new(spec, &j, &i, 1)
    }

    /// The dimension tree.
    pub fn tree(&self) -> &DimTree {
        &self.tree
    }

    /// The rank of every node, by node id (root first, always 1).
    pub fn ranks(&self) -> Vec<usize> {
        self.cores.iter().map(|c| c.shape()[2]).collect()
    }

    /// The node arrays, by node id.
    pub fn cores(&self) -> &[ArrayD<T>] {
        &self.cores
    }

    /// Random nodes with the given rank per node (by node id, root 1; see [`Init`]).
    ///
    /// # Errors
    /// As [`try_new`](Self::try_new); [`Error::InvalidParameter`] for an invalid `init`.
    pub fn random_with_ranks(
        shape: &MatrixShape,
        tree: &DimTree,
        ranks: &[usize],
        init: Init,
        seed: u64,
    ) -> Result<Self> {
        tree.check_order(shape.order())?;
        if ranks.len() != tree.n_nodes() {
            return Err(Error::ShapeMismatch {
                context: "HtMatrix::random_with_ranks (one rank per node)",
                expected: vec![tree.n_nodes()],
                got: vec![ranks.len()],
            });
        }
        let target = init.variance(shape.n_in(), shape.n_out())?;
        let terms: f64 = tree
            .pre_order()
            .filter(|&t| t != tree.root())
            .map(|t| ranks[t] as f64)
            .product();
        let sigma = core_sigma(target, terms, tree.n_nodes());
        let shapes: Vec<Vec<usize>> = tree
            .pre_order()
            .map(|t| match tree.children(t) {
                None => {
                    let k = tree.modes(t)[0];
                    vec![shape.in_modes()[k], shape.out_modes()[k], ranks[t]]
                }
                Some((l, r)) => vec![ranks[l], ranks[r], ranks[t]],
            })
            .collect();
        let w = Self::try_new(
            shape.clone(),
            tree.clone(),
            normal_cores(&shapes, sigma, seed)?,
        )?;
        Ok(normalize_variance(w, target, tree.n_nodes()))
    }
}

delegate_to_engine!(HtMatrix, cores);

impl<T: Scalar> MatrixFormat<T> for HtMatrix<T> {
    type Structure = DimTree;

    /// HT-SVD (leaves to root) of the paired tensor on `tree`.
    fn from_dense(
        w: ArrayView2<'_, T>,
        shape: &MatrixShape,
        tree: &DimTree,
        rule: &impl AsRule,
    ) -> Result<(Self, TruncationInfo<T>)> {
        decompose_tensorized(w, shape, tree, rule)
    }

    /// Ranks `min(rank, admissible)` per node (as
    /// [`HtTensor::admissible_ranks`] on the paired modes; see [`Init`] for the scale).
    fn random(
        shape: &MatrixShape,
        tree: &DimTree,
        rank: usize,
        init: Init,
        seed: u64,
    ) -> Result<Self> {
        if rank == 0 {
            return Err(Error::param("rank", "must be at least 1"));
        }
        let ranks = HtTensor::<T>::admissible_ranks(tree, &shape.paired_modes(), rank)?;
        Self::random_with_ranks(shape, tree, &ranks, init, seed)
    }
}

impl<T: Scalar> TensorizedFormat<T> for HtMatrix<T> {
    type Tensor = HtTensor<T>;

    /// The paired tensor with mode `k` = `(j_k, i_k)` (input index major), so that a
    /// leaf basis `(n_k m_k, r_k)` reshapes to the leaf core `(n_k, m_k, r_k)`.
    fn tensorize(w: ArrayView2<'_, T>, shape: &MatrixShape, _tree: &DimTree) -> Result<ArrayD<T>> {
        Ok(paired_tensor(&w, shape, true))
    }

    fn tensor_structure(shape: &MatrixShape, tree: &DimTree) -> Result<DimTree> {
        tree.check_order(shape.order())?;
        Ok(tree.clone())
    }

    fn from_tensor(ht: HtTensor<T>, shape: &MatrixShape, tree: &DimTree) -> Result<Self> {
        let (_, _, nodes) = ht.into_parts();
        let cores = nodes
            .into_iter()
            .enumerate()
            .map(|(t, node)| match node {
                HtNode::Leaf(u) => {
                    let k = tree.modes(t)[0];
                    let r = u.ncols();
                    u.as_standard_layout()
                        .into_owned()
                        .into_shape_with_order(IxDyn(&[
                            shape.in_modes()[k],
                            shape.out_modes()[k],
                            r,
                        ]))
                        .expect("paired mode")
                }
                HtNode::Transfer(b) => b.into_dyn(),
            })
            .collect();
        Self::try_new(shape.clone(), tree.clone(), cores)
    }
}

impl<T: Scalar> FormatDescription for HtMatrix<T> {
    fn format_description(&self) -> String {
        format!("ht tree {}", tree_string(self.tree(), self.tree().root()))
    }
}

/// The tree below `node` as nested pairs of mode numbers, e.g. `((0,1),(2,3))`.
fn tree_string(tree: &DimTree, node: usize) -> String {
    match tree.children(node) {
        None => tree.modes(node)[0].to_string(),
        Some((l, r)) => format!("({},{})", tree_string(tree, l), tree_string(tree, r)),
    }
}
