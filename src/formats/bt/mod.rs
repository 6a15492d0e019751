//! The block-term (BT) format: a sum of Tucker blocks.
//!
//! A block-term tensor of shape `n_1 x .. x n_d` is the sum of `N_b` Tucker tensors
//! (De Lathauwer, *Decompositions of a higher-order tensor in block terms — Part II*, SIMAX
//! 30(3), 2008):
//!
//! ```text
//! X = Σ_{b=1}^{N_b} G_b ×_1 U_{b,1} ×_2 U_{b,2} .. ×_d U_{b,d}
//! ```
//!
//! each block with its own core `G_b` (`R_1 x .. x R_d`) and factors `U_{b,k}`
//! (`n_k x R_k`), laid out as in [`TuckerTensor`]. Storage
//! `N_b (Σ_k n_k R_k + Π_k R_k)` when every block has the ranks `R_k` (what
//! [`bt_als`] produces); blocks of different ranks are
//! allowed (sums of BT tensors) and then the counts add. One block is exactly Tucker.
//!
//! | operation | result | cost |
//! |---|---|---|
//! | [`add`](BtTensor::add), [`sub`](BtTensor::sub) | blocks concatenated | `O(params)` |
//! | [`scale`](BtTensor::scale) | every core scaled | `O(N_b Π R)` |
//! | [`inner`](BtTensor::inner) | `Σ_{b,c} <B_b, C_c>` (Tucker inner products) | `O(N_b N'_b (Σ n R R' + Π R' Σ R))` |
//! | [`norm`](crate::Factorized::norm) | `√(Σ_{b,c} <B_b, B_c>)` | `O(N_b² (Σ n R² + Π R Σ R))` |
//! | [`entry`](crate::Factorized::entry) | sum of block entries | `O(N_b Π R)` |
//! | [`round`](crate::Factorized::round) | every block rounded | `N_b` Tucker roundings |
//!
//! The norm is computed from the block Gram matrix, so its absolute accuracy is about
//! `eps Σ_b ‖B_b‖²` in the square: when blocks cancel (a norm far below the blocks' norms)
//! only `‖X‖ >~ √eps · max_b ‖B_b‖` is resolved; use `dense::norm` of
//! [`to_dense`](crate::Factorized::to_dense) if that matters.
//!
//! Files: JSON `{"format": "tnet-bt", "version": 1, "dtype": "f64", "shape": [...],
//! "blocks": [{"core": .., "factors": [..]}, ..]}`, every block validated on load through
//! [`TuckerTensor::try_new`], written atomically.

pub mod decompose;
mod io;
mod matrix;

use ndarray::{ArrayD, ArrayViewD};
use rand::RngCore;

pub use decompose::{BtOptions, bt_als, bt_als_refine};
pub use io::BT_FORMAT_VERSION;
pub use matrix::BtMatrix;

use crate::formats::checks::check_same_shape;
use crate::{
    AsRule, Error, Factorized, Result, Scalar, Truncation, TruncationInfo, TuckerTensor, dense,
};

/// A tensor in block-term format: a sum of Tucker blocks of one shape. See the
/// [module docs](self).
///
/// # Example
/// ```
/// use tnet::{BtTensor, Factorized};
/// let x = BtTensor::<f64>::random(&[6, 7, 8], &[2, 2, 3], 3, 1).unwrap();
/// assert_eq!(x.n_blocks(), 3);
/// assert_eq!(x.n_params(), 3 * (6 * 2 + 7 * 2 + 8 * 3 + 2 * 2 * 3));
/// let dense = x.to_dense();
/// assert!((x.norm() - tnet::dense::norm(dense.view())).abs() < 1e-12 * x.norm());
/// assert!((x.entry(&[1, 2, 3]).unwrap() - dense[[1, 2, 3]]).abs() < 1e-12);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct BtTensor<T> {
    shape: Vec<usize>,
    blocks: Vec<TuckerTensor<T>>,
}

impl<T: Scalar> BtTensor<T> {
    /// Builds a block-term tensor from its blocks (each a valid [`TuckerTensor`]).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for no blocks; [`Error::ShapeMismatch`] if the blocks'
    /// shapes differ.
    pub fn try_new(blocks: Vec<TuckerTensor<T>>) -> Result<Self> {
        let first = blocks.first().ok_or_else(|| {
            Error::param("blocks", "a block-term tensor needs at least one block")
        })?;
        let shape = first.shape().to_vec();
        for b in &blocks[1..] {
            if b.shape() != shape.as_slice() {
                return Err(Error::ShapeMismatch {
                    context: "BtTensor::try_new (every block must have the same shape)",
                    expected: shape,
                    got: b.shape().to_vec(),
                });
            }
        }
        Ok(Self { shape, blocks })
    }

    /// The one-block tensor equal to a Tucker tensor.
    pub fn from_tucker(t: TuckerTensor<T>) -> Self {
        Self {
            shape: t.shape().to_vec(),
            blocks: vec![t],
        }
    }

    /// A random block-term tensor of `n_blocks` blocks, each as
    /// [`TuckerTensor::random`] (orthonormal factors, standard normal core) with ranks
    /// [`TuckerTensor::admissible_ranks(shape, ranks)`](TuckerTensor::admissible_ranks),
    /// drawn from one seeded generator.
    ///
    /// # Errors
    /// As [`TuckerTensor::admissible_ranks`]; [`Error::InvalidParameter`] for
    /// `n_blocks == 0`.
    pub fn random(shape: &[usize], ranks: &[usize], n_blocks: usize, seed: u64) -> Result<Self> {
        if n_blocks == 0 {
            return Err(Error::param("n_blocks", "must be at least 1"));
        }
        let ranks = TuckerTensor::<T>::admissible_ranks(shape, ranks)?;
        let mut g = dense::rng(seed);
        let blocks = (0..n_blocks)
            .map(|_| {
                let mut gb = dense::rng(g.next_u64());
                TuckerTensor::random_with(shape, &ranks, &mut gb)
            })
            .collect();
        Ok(Self {
            shape: shape.to_vec(),
            blocks,
        })
    }

    /// The blocks.
    pub fn blocks(&self) -> &[TuckerTensor<T>] {
        &self.blocks
    }

    /// Block `b`.
    ///
    /// # Panics
    /// If `b >= n_blocks()`.
    pub fn block(&self, b: usize) -> &TuckerTensor<T> {
        &self.blocks[b]
    }

    /// The number of blocks `N_b`.
    pub fn n_blocks(&self) -> usize {
        self.blocks.len()
    }

    /// The ranks of each block.
    pub fn ranks(&self) -> Vec<Vec<usize>> {
        self.blocks.iter().map(TuckerTensor::ranks).collect()
    }

    /// Splits into the blocks.
    pub fn into_blocks(self) -> Vec<TuckerTensor<T>> {
        self.blocks
    }

    /// Exact sum: the blocks of both operands.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if the shapes differ.
    ///
    /// # Example
    /// ```
    /// use tnet::{BtTensor, Factorized};
    /// let x = BtTensor::<f64>::random(&[3, 4, 5], &[2, 2, 2], 2, 1).unwrap();
    /// let y = BtTensor::<f64>::random(&[3, 4, 5], &[1, 1, 1], 1, 2).unwrap();
    /// let s = x.add(&y.scale(2.0)).unwrap();
    /// assert_eq!(s.n_blocks(), 3);
    /// let dense = &x.to_dense() + &(&y.to_dense() * 2.0);
    /// assert!(tnet::dense::rel_error(dense.view(), s.to_dense().view()).unwrap() < 1e-14);
    /// ```
    pub fn add(&self, other: &Self) -> Result<Self> {
        check_same_shape("BtTensor::add", &self.shape, &other.shape)?;
        let mut blocks = self.blocks.clone();
        blocks.extend(other.blocks.iter().cloned());
        Ok(Self {
            shape: self.shape.clone(),
            blocks,
        })
    }

    /// Exact difference (the blocks of `other` negated).
    ///
    /// # Errors
    /// As [`add`](Self::add).
    pub fn sub(&self, other: &Self) -> Result<Self> {
        self.add(&other.scale(-T::one()))
    }

    /// `alpha · X` (every core scaled).
    pub fn scale(&self, alpha: T) -> Self {
        Self {
            shape: self.shape.clone(),
            blocks: self.blocks.iter().map(|b| b.scale(alpha)).collect(),
        }
    }

    /// Inner product `<X, Y> = Σ_{b,c} <B_b, C_c>` without densifying.
    ///
    /// # Errors
    /// As [`add`](Self::add).
    pub fn inner(&self, other: &Self) -> Result<T> {
        check_same_shape("BtTensor::inner", &self.shape, &other.shape)?;
        let mut s = T::zero();
        for b in &self.blocks {
            for c in &other.blocks {
                s += b.inner(c)?;
            }
        }
        Ok(s)
    }
}

impl<T: Scalar> Factorized<T> for BtTensor<T> {
    fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Fixes the modes in every block.
    fn fix_leading(&self, index: &[usize]) -> Result<Self> {
        let blocks = self
            .blocks
            .iter()
            .map(|b| b.fix_leading(index))
            .collect::<Result<Vec<_>>>()?;
        let shape = blocks[0].shape().to_vec();
        Ok(Self { shape, blocks })
    }

    /// `Σ_b (Σ_k n_k R_{b,k} + Π_k R_{b,k})`, i.e. `N_b (Σ_k n_k R_k + Π_k R_k)` for
    /// uniform ranks.
    fn n_params(&self) -> usize {
        self.blocks.iter().map(Factorized::n_params).sum()
    }

    /// The largest block's work beside the accumulated result.
    fn dense_work(&self) -> u128 {
        let block = self
            .blocks
            .iter()
            .map(Factorized::dense_work)
            .max()
            .unwrap_or(0);
        block.saturating_add(crate::limits::elements(&self.shape))
    }

    /// The sum of the blocks' dense tensors. Memory `N` plus one block's
    /// [`dense_work`](Factorized::dense_work).
    fn to_dense(&self) -> ArrayD<T> {
        let mut it = self.blocks.iter();
        let mut x = it.next().expect("at least one block").to_dense();
        for b in it {
            x += &b.to_dense();
        }
        x
    }

    /// `√(Σ_b ‖B_b‖² + 2 Σ_{b<c} <B_b, B_c>)`, each block norm through orthogonalisation
    /// (see the [module docs](self) for the accuracy when blocks cancel).
    fn norm(&self) -> T {
        let mut s = T::zero();
        for (i, b) in self.blocks.iter().enumerate() {
            let nb = b.norm();
            s += nb * nb;
            for c in &self.blocks[i + 1..] {
                s += T::cast(2.0) * b.inner(c).expect("same shape by construction");
            }
        }
        s.max(T::zero()).sqrt()
    }

    /// `Σ_b <B_b, X>`, each block projecting `X` onto its factors. Cost `N_b` times the
    /// Tucker cost.
    fn inner_dense(&self, x: ArrayViewD<'_, T>) -> Result<T> {
        if x.shape() != self.shape.as_slice() {
            return Err(Error::ShapeMismatch {
                context: "BtTensor::inner_dense",
                expected: self.shape.clone(),
                got: x.shape().to_vec(),
            });
        }
        self.blocks.iter().map(|b| b.inner_dense(x.view())).sum()
    }

    fn entry(&self, index: &[usize]) -> Result<T> {
        self.blocks.iter().map(|b| b.entry(index)).sum()
    }

    /// Rounds every block (Tucker [`round`](Factorized::round)) to the rank cap of `rule`
    /// and the absolute budget `tol / N_b`, `tol = rule.budget(‖X‖)`. By the triangle
    /// inequality `‖X − Y‖ ≤ Σ_b ‖B_b − B'_b‖ ≤ tol`. The returned info lists, per block,
    /// the singular values of every mode (`N_b d` entries, block-major) and the block's
    /// error bound in `discarded`; `error_bound` is their **sum** (the blocks' errors are
    /// not orthogonal, so they add, not in squares).
    fn round(&self, rule: &impl AsRule) -> Result<(Self, TruncationInfo<T>)> {
        let rule = rule.as_rule()?;
        let norm = self.norm();
        let nb = self.blocks.len() as f64;
        let mut block_rule = if rule.has_tolerance() {
            Truncation::abs(rule.budget(norm.as_f64()) / nb)
        } else {
            Truncation::exact()
        };
        if let Some(r) = rule.max_rank() {
            block_rule = block_rule.with_max_rank(r);
        }
        let mut blocks = Vec::with_capacity(self.blocks.len());
        let mut singular_values = Vec::new();
        let mut discarded = Vec::with_capacity(self.blocks.len());
        for b in &self.blocks {
            let (y, info) = b.round(&block_rule)?;
            blocks.push(y);
            singular_values.extend(info.singular_values);
            discarded.push(info.error_bound);
        }
        let error_bound = discarded.iter().copied().sum();
        Ok((
            Self {
                shape: self.shape.clone(),
                blocks,
            },
            TruncationInfo {
                singular_values,
                discarded,
                error_bound,
                input_norm: norm,
                fit: None,
            },
        ))
    }
}
