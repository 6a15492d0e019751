//! The two small traits every tensor format implements.
//!
//! [`Factorized`] is what lets a user swap the format of a decomposition by changing one
//! word: shape, parameter count, reconstruction, norm, inner product with a dense tensor,
//! element access and rounding under the shared [`Truncation`](crate::Truncation) rule. [`Decompose`] is how
//! a format is built from a dense tensor, with what the format needs beyond the rule (a
//! tree, block options) as an associated type; the tensorized matrices use it on the
//! tensorized weight (see [`TensorizedFormat`](crate::matrices::TensorizedFormat)).
//! Format-specific operations (orthogonalisation, Hadamard products, ...) are inherent
//! methods.

use ndarray::{ArrayD, ArrayViewD};

use crate::{AsRule, Result, Scalar, TruncationInfo};

/// A tensor held in a factorized (tensor-network) format.
pub trait Factorized<T: Scalar> {
    /// The shape `n_1 x .. x n_d` of the represented tensor.
    fn shape(&self) -> &[usize];

    /// The order `d` (number of modes).
    fn order(&self) -> usize {
        self.shape().len()
    }

    /// Number of stored scalars.
    fn n_params(&self) -> usize;

    /// Entries of the dense tensor divided by stored parameters.
    fn compression_ratio(&self) -> f64 {
        self.shape().iter().map(|&n| n as f64).product::<f64>() / self.n_params() as f64
    }

    /// The dense tensor this represents (row-major). Memory `prod n_k`.
    fn to_dense(&self) -> ArrayD<T>;

    /// Frobenius norm, computed in the format (never densifying).
    fn norm(&self) -> T;

    /// `<self, X> = sum_i self_i X_i` with a dense tensor, without densifying `self`.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`](crate::Error::ShapeMismatch) if the shapes differ.
    fn inner_dense(&self, x: ArrayViewD<'_, T>) -> Result<T>;

    /// One entry.
    ///
    /// # Errors
    /// [`Error::IndexOutOfBounds`](crate::Error::IndexOutOfBounds) for a bad index.
    fn entry(&self, index: &[usize]) -> Result<T>;

    /// Re-compresses to a truncation rule without densifying, returning the rounded
    /// tensor and what was discarded.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`](crate::Error::InvalidParameter) for an invalid rule.
    fn round(&self, rule: &impl AsRule) -> Result<(Self, TruncationInfo<T>)>
    where
        Self: Sized;
}

/// Construction of a format from a dense tensor under the shared [`Truncation`](crate::Truncation) rule.
///
/// | format | `Structure` | algorithm | error |
/// |---|---|---|---|
/// | [`HtTensor`](crate::HtTensor) | [`DimTree`](crate::DimTree) | HT-SVD, leaves to root | `≤ rule` a priori |
/// | [`TtTensor`](crate::TtTensor) | `()` | TT-SVD | `≤ rule` a priori |
/// | [`TrTensor`](crate::TrTensor) | `()` | TR-SVD | `≤ rule` a priori |
/// | [`TuckerTensor`](crate::TuckerTensor) | `()` | ST-HOSVD | `≤ rule` a priori |
/// | [`BtTensor`](crate::BtTensor) | [`BtOptions`](crate::formats::bt::BtOptions) | BT-ALS, block rank searched | achieved error reported |
///
/// # Example
/// ```
/// use tnet::{Decompose, DimTree, Factorized, HtTensor, TtTensor, Truncation};
/// fn compress<F: Decompose<f64>>(s: &F::Structure) -> usize {
///     let x = tnet::dense::random_normal::<f64>(&[4, 5, 6], 0);
///     let (y, info) = F::decompose(x.view(), s, &Truncation::rel(0.5)).unwrap();
///     assert!(info.rel_error_bound() <= 0.5);
///     y.n_params()
/// }
/// compress::<TtTensor<f64>>(&());
/// compress::<HtTensor<f64>>(&DimTree::balanced(3).unwrap());
/// ```
pub trait Decompose<T: Scalar>: Factorized<T> + Sized {
    /// What the format needs besides the tensor and the rule.
    type Structure;

    /// The structure used when a caller gives none, for a tensor of order `order`: the
    /// balanced tree (HT), the default options (BT), `()` otherwise.
    ///
    /// # Errors
    /// [`Error::InvalidTree`](crate::Error::InvalidTree) for `order == 0` (HT).
    fn default_structure(order: usize) -> Result<Self::Structure>;

    /// Decomposes `x` under `rule`, returning the tensor and what was discarded.
    ///
    /// # Errors
    /// [`Error::Empty`](crate::Error::Empty) / [`Error::NonFinite`](crate::Error::NonFinite)
    /// for an empty tensor or NaN/Inf entries;
    /// [`Error::InvalidParameter`](crate::Error::InvalidParameter) for an invalid rule or
    /// structure; the format's own errors.
    fn decompose(
        x: ArrayViewD<'_, T>,
        structure: &Self::Structure,
        rule: &impl AsRule,
    ) -> Result<(Self, TruncationInfo<T>)>;
}
