//! The two small traits every tensor format implements.
//!
//! [`Factorized`] is what lets a user swap the format of a decomposition by changing one
//! word: shape, parameter count, reconstruction, norm, inner product with a dense tensor,
//! element access, slabs with leading modes fixed, the true error against a dense tensor
//! in bounded memory, and rounding under the shared [`Truncation`](crate::Truncation)
//! rule. [`Decompose`] is how
//! a format is built from a dense tensor, with what the format needs beyond the rule (a
//! tree, block options) as an associated type; the tensorized matrices use it on the
//! tensorized weight (see [`TensorizedFormat`](crate::matrices::TensorizedFormat)).
//! Format-specific operations (orthogonalisation, Hadamard products, ...) are inherent
//! methods.

use ndarray::{ArrayD, ArrayViewD, Axis};

use crate::dense::ScaledSumSq;
use crate::{AsRule, Error, Result, Scalar, TruncationInfo};

/// The partial sums of squared differences of `‖X − Y‖` over the slabs below `y`, whose
/// first `depth` modes are already fixed (`x` is the matching slice of `X`), fixing one
/// more mode per level down to `lead` fixed modes, in index order. Each level reuses the
/// tensor fixed at the level above, so a format whose `fix_leading` contracts (Tucker,
/// block terms) does the contraction once per prefix, not once per slab.
fn slab_sums<T: Scalar, F: Factorized<T>>(
    y: &F,
    x: ArrayViewD<'_, T>,
    depth: usize,
    lead: usize,
) -> Result<Vec<ScaledSumSq>> {
    if depth == lead {
        let dense = y.to_dense();
        let dense = dense
            .into_shape_with_order(x.shape())
            .expect("a slab has the shape of its part of X");
        return Ok(vec![ScaledSumSq::of_difference(x, dense.view())]);
    }
    let mut out = Vec::new();
    let mut index = vec![0; depth + 1];
    for i in 0..x.shape()[0] {
        index[depth] = i;
        let fixed = y.fix_leading(&index)?;
        out.extend(slab_sums(
            &fixed,
            x.index_axis(Axis(0), i),
            depth + 1,
            lead,
        )?);
    }
    Ok(out)
}

/// Entries of one dense slab formed by [`Factorized::distance`]: 2^16 (512 KiB of `f64`),
/// so that a slab and its part of `X` stay in the second-level cache.
const SLAB: usize = 1 << 16;

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

    /// The dense tensor this represents (row-major). Memory `prod n_k`, plus the
    /// intermediates counted by [`dense_work`](Self::dense_work).
    fn to_dense(&self) -> ArrayD<T>;

    /// The most entries [`to_dense`](Self::to_dense) holds at once: the result and the
    /// intermediates alive beside it. A partial contraction can be far larger than the
    /// result (a train of shape `1000 x 1000 x 2` with a bond of rank 1000 before the last
    /// mode passes through a `10^6 x 1000` matrix on the way to `2 · 10^6` entries), so
    /// callers holding untrusted cores check this against the
    /// [memory limit](crate::limits) before calling `to_dense`. Saturates instead of
    /// overflowing. The default is the result alone.
    fn dense_work(&self) -> u128 {
        crate::limits::elements(self.shape())
    }

    /// Frobenius norm, computed in the format (never densifying).
    fn norm(&self) -> T;

    /// `<self, X> = sum_i self_i X_i` with a dense tensor, without densifying `self`.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if the shapes differ.
    fn inner_dense(&self, x: ArrayViewD<'_, T>) -> Result<T>;

    /// One entry.
    ///
    /// # Errors
    /// [`Error::IndexOutOfBounds`] for a bad index.
    fn entry(&self, index: &[usize]) -> Result<T>;

    /// The same format with the leading modes fixed: `Y[i_1, .., i_k, :, .., :]` for
    /// `index = [i_1, .., i_k]`, as a tensor of the same order whose first `k` modes have
    /// size 1 (only the factors holding those modes are sliced; cost `O(params)`).
    ///
    /// # Errors
    /// [`Error::IndexOutOfBounds`] if `index` is longer
    /// than the order or an entry is out of range.
    fn fix_leading(&self, index: &[usize]) -> Result<Self>
    where
        Self: Sized;

    /// `‖X − self‖_F`, the true error of an approximation of the dense `X`, **without
    /// forming `self` densely**: the leading modes are fixed
    /// ([`fix_leading`](Self::fix_leading)) until a slab holds at most 2^16 entries, each
    /// slab is reconstructed and compared with its part of `X`, and the squared
    /// differences are summed with scaling (as [`dense::distance`](crate::dense::distance)),
    /// slabs in parallel (rayon; the sum is formed in a fixed order, so the result does
    /// not depend on the thread count). Same flops as [`to_dense`](Self::to_dense) plus one pass
    /// over `X`; extra memory `O(2^16)` per thread instead of `prod n_k`.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if the shapes differ.
    ///
    /// # Example
    /// ```
    /// use tnet::{Factorized, Truncation};
    /// use tnet::formats::tt::tt_svd;
    /// let x = tnet::dense::random_normal::<f64>(&[6, 7, 8, 9], 3);
    /// let (y, _) = tt_svd(x.view(), &Truncation::rank(3)).unwrap();
    /// let d = y.distance(x.view()).unwrap();
    /// let dense = tnet::dense::norm((&x - &y.to_dense()).view());
    /// assert!((d - dense).abs() <= 1e-12 * dense);
    /// ```
    fn distance(&self, x: ArrayViewD<'_, T>) -> Result<T>
    where
        Self: Sized + Sync,
    {
        use rayon::prelude::*;
        let shape = self.shape();
        if x.shape() != shape {
            return Err(Error::ShapeMismatch {
                context: "distance",
                expected: shape.to_vec(),
                got: x.shape().to_vec(),
            });
        }
        // Fix the fewest leading modes that leave slabs of at most SLAB entries (at most
        // d - 1: a last mode longer than SLAB is one slab per index of the others).
        let mut lead = 0;
        while lead + 1 < shape.len() && shape[lead..].iter().product::<usize>() > SLAB {
            lead += 1;
        }
        // The partial sums of mode 0's slices in parallel, each a list in index order,
        // added in that order: the result does not depend on the thread count.
        let parts = if lead == 0 {
            vec![slab_sums(self, x, 0, 0)?]
        } else {
            (0..shape[0])
                .into_par_iter()
                .map(|i| slab_sums(&self.fix_leading(&[i])?, x.index_axis(Axis(0), i), 1, lead))
                .collect::<Result<Vec<_>>>()?
        };
        Ok(parts
            .into_iter()
            .flatten()
            .fold(ScaledSumSq::default(), ScaledSumSq::add)
            .norm())
    }

    /// Re-compresses to a truncation rule without densifying, returning the rounded
    /// tensor and what was discarded.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for an invalid rule.
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
    /// [`Error::InvalidTree`] for `order == 0` (HT).
    fn default_structure(order: usize) -> Result<Self::Structure>;

    /// Decomposes `x` under `rule`, returning the tensor and what was discarded.
    ///
    /// # Errors
    /// [`Error::Empty`] / [`Error::NonFinite`]
    /// for an empty tensor or NaN/Inf entries;
    /// [`Error::InvalidParameter`] for an invalid rule or
    /// structure; the format's own errors.
    fn decompose(
        x: ArrayViewD<'_, T>,
        structure: &Self::Structure,
        rule: &impl AsRule,
    ) -> Result<(Self, TruncationInfo<T>)>;
}
