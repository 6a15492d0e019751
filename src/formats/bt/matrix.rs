//! The block-term matrix format: a sum of Tucker blocks over the paired modes.

use ndarray::{ArrayD, ArrayView2};

use super::{BtOptions, BtTensor};
use crate::formats::AlsOptions;
use crate::matrices::engine::{Engine, NetSpec, delegate_to_engine};
use crate::matrices::{
    FormatDescription, Init, MatrixFormat, MatrixShape, TensorizedFormat, check_core, core_sigma,
    decompose_tensorized, decompose_tensorized_with, normal_cores, normalize_variance,
    paired_tensor,
};
use crate::{AsRule, Error, Result, Scalar, TruncationInfo, TuckerTensor};

/// Sweeps per BT-ALS run in [`BtMatrix::from_dense`](MatrixFormat::from_dense).
const BT_MAX_SWEEPS: usize = 1000;
/// Seed completing rank-deficient starts of the fit (see [`bt_als`]).
const BT_SEED: u64 = 1000;

/// A weight matrix in block-term format (the BT-LSTM layer; Ye et al., *Learning compact
/// recurrent neural networks with block-term tensor decomposition*, CVPR 2018):
///
/// ```text
/// W[i, j] = Σ_{b=1}^{N_b} Σ_{r_1..r_d} G_b[r_1, .., r_d] Π_k A_{b,k}[j_k m_k + i_k, r_k]
/// ```
///
/// `N_b` Tucker blocks over the paired modes `(j_k, i_k)`; factor `A_{b,k}` has shape
/// `(n_k m_k, R_k)` and core `G_b` shape `(R_1, .., R_d)`; every block has the same ranks.
/// Parameters, block by block (factors `1..d`, then the core):
/// `N_b (Σ_k n_k m_k R_k + Π_k R_k)`.
///
/// [`from_dense`](MatrixFormat::from_dense) fits the blocks (BT-ALS) to the paired tensor of `W` by
/// [`bt_als`](super::bt_als), the one block-term algorithm of the crate (joint least
/// squares for the factors, block updates of the cores, line search; started from
/// successive ST-HOSVDs of the residual), with the block rank chosen from the rule as for
/// block-term tensors ([`BtOptions`]: the rank cap, or the smallest rank meeting the
/// tolerance). Block-term fitting has no SVD-style
/// guarantee and its alternating least squares can converge slowly (the "swamps" of
/// block-term and CP fitting): the returned `error_bound` is the achieved error, and
/// sweeps stop when it meets the rule's tolerance, stalls, or after 1000 sweeps
/// ([`fit`](BtMatrix::fit) sets the limit).
///
/// # Example
/// ```
/// use tnet::matrices::{Init, LinearMap, MatrixFormat, MatrixShape, TensorizedMatrix};
/// use tnet::BtMatrix;
/// // The BT-LSTM input layer of UCF11: 4 modes, R = 4, 2 blocks.
/// let shape = MatrixShape::try_new(vec![16, 4, 4, 4], vec![8, 20, 20, 18]).unwrap();
/// let w = BtMatrix::<f32>::random(&shape, &2, 4, Init::Glorot, 0).unwrap();
/// assert_eq!(w.n_params(), 3_392);
/// ```
#[derive(Clone, Debug)]
pub struct BtMatrix<T: Scalar> {
    shape: MatrixShape,
    n_blocks: usize,
    cores: Vec<ArrayD<T>>,
    engine: Engine<T>,
}

impl<T: Scalar> BtMatrix<T> {
    /// Builds a block-term matrix from its arrays (block by block: `d` factors, then the
    /// core), checking every invariant.
    ///
    /// # Errors
    /// - [`Error::InvalidParameter`] for zero blocks;
    /// - [`Error::ShapeMismatch`] for a wrong number of arrays or an array of the wrong
    ///   shape (blocks must agree in ranks);
    /// - [`Error::InvalidRank`] for a zero rank;
    /// - [`Error::NonFinite`] for NaN/Inf entries.
    pub fn try_new(shape: MatrixShape, n_blocks: usize, cores: Vec<ArrayD<T>>) -> Result<Self> {
        if n_blocks == 0 {
            return Err(Error::param("n_blocks", "at least one block is needed"));
        }
        let d = shape.order();
        if cores.len() != n_blocks * (d + 1) {
            return Err(Error::ShapeMismatch {
                context: "BtMatrix::try_new (d factors and one core per block)",
                expected: vec![n_blocks * (d + 1)],
                got: vec![cores.len()],
            });
        }
        let ranks: Vec<usize> = cores[d].shape().to_vec();
        if ranks.len() != d {
            return Err(Error::ShapeMismatch {
                context: "BtMatrix::try_new (the core of a block is (R_1, .., R_d))",
                expected: vec![d],
                got: vec![ranks.len()],
            });
        }
        if ranks.contains(&0) {
            return Err(Error::rank(
                "BtMatrix::try_new",
                format!("zero rank in {ranks:?}"),
            ));
        }
        let p = shape.paired_modes();
        let cores = cores
            .into_iter()
            .enumerate()
            .map(|(c, core)| {
                let k = c % (d + 1);
                let expected = if k < d {
                    vec![p[k], ranks[k]]
                } else {
                    ranks.clone()
                };
                check_core(
                    "BtMatrix::try_new (factor (n_k m_k, R_k), core (R_1, .., R_d))",
                    core,
                    &expected,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let engine = Self::engine(&shape, &ranks, n_blocks)?;
        Ok(Self {
            shape,
            n_blocks,
            cores,
            engine,
        })
    }

    fn engine(shape: &MatrixShape, ranks: &[usize], n_blocks: usize) -> Result<Engine<T>> {
        let d = shape.order();
        let mut spec = NetSpec::default();
        let i: Vec<usize> = (0..d)
            .map(|k| spec.label(format!("i{k}"), shape.out_modes()[k]))
            .collect();
        let j: Vec<usize> = (0..d)
            .map(|k| spec.label(format!("j{k}"), shape.in_modes()[k]))
            .collect();
        let r: Vec<usize> = (0..d)
            .map(|k| spec.label(format!("R{k}"), ranks[k]))
            .collect();
        for k in 0..d {
            // (n_k m_k, R_k) in memory is (n_k, m_k, R_k).
            spec.core(format!("A{k}"), vec![j[k], i[k], r[k]]);
        }
        spec.core("G", r);
        Engine::new(spec, &j, &i, n_blocks)
    }

    /// Fits `n_blocks` blocks to a dense `W` with at most `max_sweeps` sweeps per BT-ALS
    /// run ([`from_dense`](MatrixFormat::from_dense) uses 1000): the paired tensor of `W`
    /// (mode `k` = `(j_k, i_k)`) decomposed by [`BtTensor`]'s [`Decompose`](crate::Decompose) (block rank
    /// from the rule as described in [`BtOptions`]), the factors reshaped.
    ///
    /// Cost: that of [`bt_als`](super::bt_als) per run (one sweep about
    /// `O(N_b d R M N)` flops plus an SVD per mode), times the `O(log R)` runs of the
    /// rank search when the rule has a tolerance; memory a few copies of `W`.
    ///
    /// # Errors
    /// As [`from_dense`](MatrixFormat::from_dense).
    pub fn fit(
        w: ArrayView2<'_, T>,
        shape: &MatrixShape,
        n_blocks: usize,
        rule: &impl AsRule,
        max_sweeps: usize,
    ) -> Result<(Self, TruncationInfo<T>)> {
        let opts = options(n_blocks, max_sweeps);
        decompose_tensorized_with(w, shape, &n_blocks, &opts, rule)
    }

    /// The number of blocks `N_b`.
    pub fn n_blocks(&self) -> usize {
        self.n_blocks
    }

    /// The ranks `R_1, .., R_d` (shared by all blocks).
    pub fn ranks(&self) -> Vec<usize> {
        self.cores[self.shape.order()].shape().to_vec()
    }

    /// The arrays, block by block (factors, then core).
    pub fn cores(&self) -> &[ArrayD<T>] {
        &self.cores
    }

    /// Random blocks with the given ranks (see [`Init`]).
    ///
    /// # Errors
    /// As [`try_new`](Self::try_new); [`Error::InvalidParameter`] for an invalid `init`.
    pub fn random_with_ranks(
        shape: &MatrixShape,
        n_blocks: usize,
        ranks: &[usize],
        init: Init,
        seed: u64,
    ) -> Result<Self> {
        let d = shape.order();
        if ranks.len() != d {
            return Err(Error::ShapeMismatch {
                context: "BtMatrix::random_with_ranks (one rank per mode)",
                expected: vec![d],
                got: vec![ranks.len()],
            });
        }
        if n_blocks == 0 {
            return Err(Error::param("n_blocks", "at least one block is needed"));
        }
        let target = init.variance(shape.n_in(), shape.n_out())?;
        let terms = n_blocks as f64 * ranks.iter().map(|&r| r as f64).product::<f64>();
        let sigma = core_sigma(target, terms, d + 1);
        let p = shape.paired_modes();
        crate::limits::check_block_term::<T>("the block-term matrix's cores", &p, ranks, n_blocks)?;
        let mut shapes = Vec::with_capacity(n_blocks * (d + 1));
        for _ in 0..n_blocks {
            shapes.extend((0..d).map(|k| vec![p[k], ranks[k]]));
            shapes.push(ranks.to_vec());
        }
        let w = Self::try_new(shape.clone(), n_blocks, normal_cores(&shapes, sigma, seed)?)?;
        Ok(normalize_variance(w, target, d + 1))
    }
}

delegate_to_engine!(
    BtMatrix,
    cores,
    flops = "`N_b` times the flops of one block.",
    plan = "The plan of one block (every block runs it).",
    groups = |m: &BtMatrix<T>| m.n_blocks
);

impl<T: Scalar> MatrixFormat<T> for BtMatrix<T> {
    /// The number of blocks `N_b`.
    type Structure = usize;

    /// BT-ALS of the paired tensor (see the [type docs](BtMatrix)): the block rank is the
    /// rule's cap, or the smallest rank meeting its tolerance (at most the cap), as in
    /// [`BtOptions`]; at most 1000 sweeps per run ([`fit`](BtMatrix::fit) sets the
    /// limit).
    fn from_dense(
        w: ArrayView2<'_, T>,
        shape: &MatrixShape,
        n_blocks: &usize,
        rule: &impl AsRule,
    ) -> Result<(Self, TruncationInfo<T>)> {
        decompose_tensorized(w, shape, n_blocks, rule)
    }

    /// Ranks `min(rank, n_k m_k)` in every block, clipped to what a Tucker block of the
    /// paired shape can use ([`TuckerTensor::admissible_ranks`]; the ranks `from_dense`
    /// gives for the same rank cap). See [`Init`] for the scale.
    fn random(
        shape: &MatrixShape,
        n_blocks: &usize,
        rank: usize,
        init: Init,
        seed: u64,
    ) -> Result<Self> {
        if rank == 0 {
            return Err(Error::param("rank", "must be at least 1"));
        }
        // The ranks a fit of the same rule would have (a Tucker block cannot use more).
        let ranks =
            TuckerTensor::<T>::admissible_ranks(&shape.paired_modes(), &vec![rank; shape.order()])?;
        Self::random_with_ranks(shape, *n_blocks, &ranks, init, seed)
    }
}

/// The options of the fit: `n_blocks` blocks, at most `max_sweeps` sweeps per run,
/// stopping on a relative decrease below `1e-12` (or on the rule's budget).
fn options(n_blocks: usize, max_sweeps: usize) -> BtOptions {
    BtOptions {
        blocks: n_blocks,
        als: AlsOptions::default()
            .with_max_iter(max_sweeps)
            .with_tol(1e-12),
        seed: BT_SEED,
    }
}

impl<T: Scalar> TensorizedFormat<T> for BtMatrix<T> {
    type Tensor = BtTensor<T>;

    /// The paired tensor with mode `k` = `(j_k, i_k)` (input index major).
    fn tensorize(
        w: ArrayView2<'_, T>,
        shape: &MatrixShape,
        _n_blocks: &usize,
    ) -> Result<ArrayD<T>> {
        Ok(paired_tensor(&w, shape, true))
    }

    fn tensor_structure(_shape: &MatrixShape, n_blocks: &usize) -> Result<BtOptions> {
        options(*n_blocks, BT_MAX_SWEEPS).check()
    }

    /// Block by block: the `d` factors `(n_k m_k, R_k)`, then the core.
    fn from_tensor(t: BtTensor<T>, shape: &MatrixShape, n_blocks: &usize) -> Result<Self> {
        let mut cores = Vec::with_capacity(n_blocks * (shape.order() + 1));
        for block in t.into_blocks() {
            let (core, factors) = block.into_parts();
            cores.extend(factors.into_iter().map(|f| f.into_dyn()));
            cores.push(core);
        }
        Self::try_new(shape.clone(), *n_blocks, cores)
    }
}

impl<T: Scalar> FormatDescription for BtMatrix<T> {
    fn format_description(&self) -> String {
        format!("bt {} blocks", self.n_blocks())
    }
}
