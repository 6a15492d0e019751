//! The one small trait every tensor format implements.
//!
//! [`Factorized`] is what lets a user swap the format of a decomposition by changing one
//! word: shape, parameter count, reconstruction, norm, inner product with a dense tensor,
//! element access and rounding under the shared [`Truncation`] rule. Format-specific
//! operations (orthogonalisation, Hadamard products, ...) are inherent methods.

use ndarray::{ArrayD, ArrayViewD};

use crate::{Result, Scalar, Truncation, TruncationInfo};

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
    fn round(&self, rule: &Truncation) -> Result<(Self, TruncationInfo<T>)>
    where
        Self: Sized;
}
