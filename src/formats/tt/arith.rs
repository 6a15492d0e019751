//! Arithmetic on TT tensors without densifying.
//!
//! | operation | result ranks | cost |
//! |---|---|---|
//! | [`add`](TtTensor::add), [`sub`](TtTensor::sub) | `r_k + r'_k` (boundaries 1) | `O(Σ n (r + r')^2)` |
//! | [`scale`](TtTensor::scale) | unchanged | one core |
//! | [`hadamard`](TtTensor::hadamard) | `r_k r'_k` | `O(Σ n r^2 r'^2)` |
//! | [`inner`](TtTensor::inner) | scalar | `O(Σ n r r' (r + r'))` |
//! | [`norm_diff`](TtTensor::norm_diff) | scalar | orthogonalisation, `O(Σ n (r + r')^3)` |
//!
//! Sums and products are exact; follow them with [`round`](crate::Factorized::round) to
//! bring the ranks back down.

use super::TtTensor;
use crate::formats::checks::check_same_shape;
use crate::formats::cores::{self, block_sum, kron_core};
use crate::{Factorized, Result, Scalar};

impl<T: Scalar> TtTensor<T> {
    /// Exact sum `X + Y`: block-diagonal cores, the first concatenated along its right
    /// rank and the last along its left rank (`r_k + r'_k` inside).
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`](crate::Error::ShapeMismatch) if the shapes differ.
    ///
    /// # Example
    /// ```
    /// use tnet::{Factorized, TtTensor};
    /// let x = TtTensor::<f64>::random(&[3, 4, 5], 2, 1).unwrap();
    /// let y = TtTensor::<f64>::random(&[3, 4, 5], 3, 2).unwrap();
    /// let s = x.add(&y).unwrap();
    /// assert_eq!(s.ranks(), vec![1, 5, 5, 1]);
    /// let dense = &x.to_dense() + &y.to_dense();
    /// assert!(tnet::dense::rel_error(dense.view(), s.to_dense().view()).unwrap() < 1e-13);
    /// ```
    pub fn add(&self, other: &Self) -> Result<Self> {
        check_same_shape("TtTensor::add", &self.shape, &other.shape)?;
        Ok(Self::from_cores(block_sum(
            &self.cores,
            &other.cores,
            false,
        )))
    }

    /// Exact difference `X − Y`.
    ///
    /// # Errors
    /// As [`add`](Self::add).
    pub fn sub(&self, other: &Self) -> Result<Self> {
        self.add(&other.scale(-T::one()))
    }

    /// `alpha · X` (scales the first core).
    pub fn scale(&self, alpha: T) -> Self {
        let mut out = self.clone();
        out.cores[0] *= alpha;
        out
    }

    /// Exact Hadamard (entrywise) product `X ∘ Y`: cores
    /// `G[(a, a'), i, (b, b')] = G_X[a, i, b] G_Y[a', i, b']`; ranks multiply.
    ///
    /// # Errors
    /// As [`add`](Self::add).
    pub fn hadamard(&self, other: &Self) -> Result<Self> {
        check_same_shape("TtTensor::hadamard", &self.shape, &other.shape)?;
        Ok(Self::from_cores(
            self.cores
                .iter()
                .zip(&other.cores)
                .map(|(a, b)| kron_core(a, b))
                .collect(),
        ))
    }

    /// Inner product `<X, Y>` without densifying, by the transfer matrices
    /// `M_{k+1} = Σ_i G_k[:, i, :]^T M_k G'_k[:, i, :]` from `M_0 = [1]`, each step two
    /// GEMMs. Cost `O(Σ n_k r r' (r + r'))`, memory `O(n r r')`.
    ///
    /// # Errors
    /// As [`add`](Self::add).
    ///
    /// # Example
    /// ```
    /// use tnet::{Factorized, TtTensor};
    /// let x = TtTensor::<f64>::random(&[3, 4, 5], 2, 1).unwrap();
    /// let y = TtTensor::<f64>::random(&[3, 4, 5], 3, 2).unwrap();
    /// let d = tnet::dense::inner(x.to_dense().view(), y.to_dense().view()).unwrap();
    /// assert!((x.inner(&y).unwrap() - d).abs() < 1e-12);
    /// ```
    pub fn inner(&self, other: &Self) -> Result<T> {
        check_same_shape("TtTensor::inner", &self.shape, &other.shape)?;
        let m = cores::chain_transfer(&self.cores, &other.cores);
        Ok(m[[0, 0, 0]])
    }

    /// `‖X − Y‖_F`, accurate to working precision even when `X ≈ Y` (orthogonalises
    /// `X − Y` instead of expanding `‖X‖² − 2<X, Y> + ‖Y‖²`).
    ///
    /// # Errors
    /// As [`add`](Self::add).
    pub fn norm_diff(&self, other: &Self) -> Result<T> {
        Ok(self.sub(other)?.norm())
    }
}
