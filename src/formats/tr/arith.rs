//! Arithmetic on TR tensors without densifying.
//!
//! | operation | result ranks | cost |
//! |---|---|---|
//! | [`add`](TrTensor::add), [`sub`](TrTensor::sub) | `r_k + r'_k` (every core block-diagonal) | `O(Σ n (r + r')^2)` |
//! | [`scale`](TrTensor::scale) | unchanged | one core |
//! | [`hadamard`](TrTensor::hadamard) | `r_k r'_k` (Kronecker cores) | `O(Σ n r^2 r'^2)` |
//! | [`inner`](TrTensor::inner) | scalar | `O(Σ n r_0 r'_0 r r' (r + r'))` |
//!
//! Sums and products are exact; follow them with [`round`](crate::Factorized::round).

use super::TrTensor;
use crate::formats::checks::check_same_shape;
use crate::formats::cores;
use crate::formats::cores::{block_sum, kron_core};
use crate::{Factorized, Result, Scalar};

impl<T: Scalar> TrTensor<T> {
    /// Exact sum `X + Y`: every core is block-diagonal, `trace(diag(A, B)) = trace A +
    /// trace B`; ranks add.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`](crate::Error::ShapeMismatch) if the shapes differ.
    ///
    /// # Example
    /// ```
    /// use tnet::{Factorized, TrTensor};
    /// let x = TrTensor::<f64>::random(&[3, 4, 5], 2, 1).unwrap();
    /// let y = TrTensor::<f64>::random(&[3, 4, 5], 3, 2).unwrap();
    /// let s = x.add(&y).unwrap();
    /// assert_eq!(s.ranks(), vec![5, 5, 5]);
    /// let dense = &x.to_dense() + &y.to_dense();
    /// assert!(tnet::dense::rel_error(dense.view(), s.to_dense().view()).unwrap() < 1e-13);
    /// ```
    pub fn add(&self, other: &Self) -> Result<Self> {
        check_same_shape("TrTensor::add", &self.shape, &other.shape)?;
        Ok(Self::from_cores(block_sum(&self.cores, &other.cores, true)))
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

    /// Exact Hadamard (entrywise) product `X ∘ Y`: Kronecker cores
    /// `Z[(a, a'), i, (b, b')] = Z_X[a, i, b] Z_Y[a', i, b']`, since
    /// `trace(A ⊗ B) = trace A · trace B`; ranks multiply.
    ///
    /// # Errors
    /// As [`add`](Self::add).
    pub fn hadamard(&self, other: &Self) -> Result<Self> {
        check_same_shape("TrTensor::hadamard", &self.shape, &other.shape)?;
        Ok(Self::from_cores(
            self.cores
                .iter()
                .zip(&other.cores)
                .map(|(a, b)| kron_core(a, b))
                .collect(),
        ))
    }

    /// Inner product `<X, Y> = trace(Π_k E_k)` with the transfer matrices
    /// `E_k = Σ_i Z_k[:, i, :] ⊗ Z'_k[:, i, :]`, multiplied from the left one core at a
    /// time (two GEMMs per core) so that no `(r r')^2 x (r r')^2` matrix is formed.
    /// Cost `O(Σ_k n_k r_0 r'_0 r r' (r + r'))`, memory `O(r_0 r'_0 n r r')`.
    ///
    /// # Errors
    /// As [`add`](Self::add).
    ///
    /// # Example
    /// ```
    /// use tnet::{Factorized, TrTensor};
    /// let x = TrTensor::<f64>::random(&[3, 4, 5], 2, 1).unwrap();
    /// let y = TrTensor::<f64>::random(&[3, 4, 5], 3, 2).unwrap();
    /// let d = tnet::dense::inner(x.to_dense().view(), y.to_dense().view()).unwrap();
    /// assert!((x.inner(&y).unwrap() - d).abs() < 1e-12);
    /// ```
    pub fn inner(&self, other: &Self) -> Result<T> {
        check_same_shape("TrTensor::inner", &self.shape, &other.shape)?;
        let m = cores::chain_transfer(&self.cores, &other.cores);
        let (ra, rb) = (self.cores[0].dim().0, other.cores[0].dim().0);
        let mut s = T::zero();
        for a in 0..ra {
            for b in 0..rb {
                s += m[[a * rb + b, a, b]];
            }
        }
        Ok(s)
    }

    /// `‖X − Y‖_F` from the transfer matrices of `X − Y` (see the accuracy note of
    /// [`norm`](crate::Factorized::norm)).
    ///
    /// # Errors
    /// As [`add`](Self::add).
    pub fn norm_diff(&self, other: &Self) -> Result<T> {
        Ok(self.sub(other)?.norm())
    }
}
