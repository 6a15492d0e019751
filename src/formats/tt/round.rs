//! TT rounding: re-compression of a TT tensor without densifying.
//!
//! Oseledets, *Tensor-train decomposition*, SIAM J. Sci. Comput. 33(5), 2011,
//! Algorithm 2 (TT-rounding):
//!
//! 1. right-to-left orthogonalisation: for `k = d .. 2`, the right unfolding
//!    `G_k^{<1>} = R^T Q^T` (QR of its transpose), `G_k ← Q^T`, `G_{k-1} ← G_{k-1} ×_3 R^T`.
//!    Afterwards `‖X‖ = ‖G_1‖_F` and ranks above `n_k r_k` have shrunk;
//! 2. left-to-right truncation: for `k = 1 .. d-1`, the left unfolding
//!    `G_k^{<2>} = U Σ V^T` (truncated), `G_k ← U`, `G_{k+1} ← (Σ V^T) ×_1 G_{k+1}`.
//!
//! Because the cores left of the bond are left-orthogonal and those right of it
//! right-orthogonal, the SVD in step 2 is the SVD of the unfolding `X_{<k>}` of the
//! (partially truncated) tensor, with the small `r_{k-1} n_k x r_k` matrix standing in
//! for the huge one. In exact arithmetic TT rounding is TT-SVD applied to the dense
//! tensor, so it has the same guarantees (see [`tt_svd`](super::tt_svd)): relative
//! tolerance `ε` gives `‖X − Y‖ ≤ ε ‖X‖` (each of the `d − 1` truncations gets
//! `ε ‖X‖ / √(d−1)`), fixed ranks give `‖X − Y‖ ≤ √(d−1) ‖X − X_best‖`, and always
//! `‖X − Y‖ ≤ info.error_bound = √(Σ_k δ_k²)`.
//!
//! # Cost
//! `O(Σ_k n_k r_k^3)` time (QR and SVD of `r n x r` matrices), `O(n r^2)` extra memory
//! per core; the dense tensor is never formed.

use crate::formats::cores;
use crate::{AsRule, Result, Scalar, TruncationInfo, TtTensor};

/// TT rounding of `x` under `rule`. See the [module docs](self).
///
/// `info.singular_values[k]`, `info.discarded[k]` refer to the bond between cores `k` and
/// `k+1` (0-based), as in TT-SVD.
///
/// # Errors
/// [`Error::InvalidParameter`](crate::Error::InvalidParameter) for an invalid rule;
/// [`Error::Linalg`](crate::Error::Linalg) if an SVD fails.
///
/// # Example
/// ```
/// use tnet::{Factorized, Truncation, TtTensor};
/// let x = TtTensor::<f64>::random(&[5, 6, 7, 4], 3, 1).unwrap();
/// let doubled = x.add(&x).unwrap(); // ranks 6, the tensor has ranks 3
/// let (y, info) = tnet::formats::tt::tt_round(&doubled, &Truncation::rel(1e-12)).unwrap();
/// assert_eq!(y.ranks(), x.ranks());
/// assert!(y.norm_diff(&x.scale(2.0)).unwrap() <= 1e-12 * info.input_norm);
/// ```
pub fn tt_round<T: Scalar>(
    x: &TtTensor<T>,
    rule: &impl AsRule,
) -> Result<(TtTensor<T>, TruncationInfo<T>)> {
    let rule = rule.as_rule()?;
    let mut g = x.cores().to_vec();
    let d = g.len();
    cores::right_orthogonalize(&mut g, 0);
    let norm = crate::dense::norm(g[0].view().into_dyn());
    let per = rule.per_matrix(norm, d.saturating_sub(1));
    let rec = cores::truncation_sweep(&mut g, 0..d - 1, &|_| per)?;
    Ok((
        TtTensor::from_cores(g),
        TruncationInfo::new(rec.singular_values, rec.discarded, norm),
    ))
}
