//! The Tensor-Ring (TR) format.
//!
//! A TR tensor of shape `n_1 x .. x n_d` stores `d` cores `Z_k` of shape
//! `(r_{k-1}, n_k, r_k)` with `r_d = r_0`: the ring closes by a trace,
//!
//! ```text
//! X[i_1, .., i_d] = trace( Z_1[:, i_1, :] · Z_2[:, i_2, :] · .. · Z_d[:, i_d, :] ).
//! ```
//!
//! A TT tensor is a TR tensor with `r_0 = 1`. The ring is invariant under cyclic shifts of
//! the modes, and its ranks can be smaller than the TT ranks of the same tensor (the
//! unfolding `X_{<k>}` has rank at most `r_0 r_k`). Storage `Σ_k r_{k-1} n_k r_k`.
//!
//! In code, modes and cores are numbered from 0: core `k` is `(r_k, n_k, r_{k+1})`,
//! indices taken cyclically, and [`TrTensor::ranks`] returns `[r_0, .., r_{d-1}]`
//! (length `d`; `r_d = r_0`).
//!
//! Produced by [`TrTensor::from_dense`] (TR-SVD, see
//! [`formats::tr`](crate::formats::tr)) and refined by TR-ALS
//! ([`formats::tr`](crate::formats::tr)); re-compressed by
//! [`round`](crate::Factorized::round) (see
//! [`formats::tr`](crate::formats::tr)). Every operation here works on
//! the cores, never on the dense tensor (except [`to_dense`](crate::Factorized::to_dense)).

pub mod als;
mod arith;
pub mod decompose;
mod io;
mod matrix;
pub mod round;

use ndarray::{Array3, ArrayD, ArrayView3, ArrayViewD, IxDyn, s};

use super::checks::{self, check_index, check_shape};
use super::cores;
use crate::dense::{random_normal_with, rng};
use crate::{AsRule, Error, Factorized, Result, Scalar, TruncationInfo, TtTensor};

pub use als::{TrAlsInit, TrAlsOptions, TrAlsReport, TrAlsStop, tr_als};
pub use decompose::{balanced_split, tr_svd};
pub use io::TR_FORMAT_VERSION;
pub use matrix::{TrLayout, TrMatrix};
pub use round::{TrRoundMethod, tr_round, tr_round_with};

/// A tensor in Tensor-Ring format. See the [module docs](self) for the layout.
///
/// [`try_new`](Self::try_new) checks every invariant (at least one core, neighbouring
/// ranks equal around the ring, no zero rank, no empty mode, finite entries). Cores are
/// stored in standard (row-major) layout.
///
/// # Example
/// ```
/// use tnet::{Factorized, TrTensor, Truncation};
/// let x = TrTensor::<f64>::random(&[4, 5, 6, 7], 2, 42).unwrap();
/// assert_eq!(x.ranks(), vec![2, 2, 2, 2]);
/// let (y, info) = TrTensor::from_dense(x.to_dense().view(), &Truncation::rel(1e-12)).unwrap();
/// let err = tnet::dense::rel_error(x.to_dense().view(), y.to_dense().view()).unwrap();
/// assert!(err < 1e-10 && info.rel_error_bound() < 1e-12);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct TrTensor<T> {
    shape: Vec<usize>,
    cores: Vec<Array3<T>>,
}

impl<T: Scalar> TrTensor<T> {
    /// Builds a TR tensor from its cores `(r_k, n_k, r_{k+1})`, `r_d = r_0`, checking every
    /// invariant. The shape is read off the cores.
    ///
    /// # Errors
    /// - [`Error::Empty`] for no cores or a mode of size 0;
    /// - [`Error::InvalidRank`] for a zero rank or neighbouring ranks that differ
    ///   (including the closing pair `r_d`, `r_0`);
    /// - [`Error::NonFinite`] for NaN/Inf entries.
    ///
    /// # Example
    /// ```
    /// use ndarray::Array3;
    /// use tnet::TrTensor;
    /// let ok = TrTensor::try_new(vec![Array3::<f64>::ones((2, 3, 4)), Array3::ones((4, 5, 2))]);
    /// assert!(ok.is_ok());
    /// let open = TrTensor::try_new(vec![Array3::<f64>::ones((2, 3, 4)), Array3::ones((4, 5, 3))]);
    /// assert!(open.is_err()); // the ring does not close: r_d = 3 but r_0 = 2
    /// ```
    pub fn try_new(cores: Vec<Array3<T>>) -> Result<Self> {
        let cores = cores::check_cores("TrTensor::try_new", cores, true)?;
        let shape = cores.iter().map(|g| g.dim().1).collect();
        Ok(Self { shape, cores })
    }

    /// Builds without checks (valid by construction; checked in debug builds).
    pub(crate) fn from_cores(cores: Vec<Array3<T>>) -> Self {
        debug_assert!(
            Self::try_new(cores.clone()).is_ok(),
            "internal invariant: invalid TR tensor built"
        );
        debug_assert!(cores.iter().all(|g| g.is_standard_layout()));
        let shape = cores.iter().map(|g| g.dim().1).collect();
        Self { shape, cores }
    }

    /// A random TR tensor with every rank equal to `rank`: i.i.d. normal cores scaled by
    /// `1 / sqrt(n_k r_{k+1})`, so that entries stay of order one for any order.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for `rank == 0`; [`Error::Empty`] for an empty shape or
    /// a mode of size 0.
    pub fn random(shape: &[usize], rank: usize, seed: u64) -> Result<Self> {
        if rank == 0 {
            return Err(Error::param("rank", "must be at least 1"));
        }
        Self::random_with_ranks(shape, &vec![rank; shape.len()], seed)
    }

    /// A random TR tensor with ranks `[r_0, .., r_{d-1}]`.
    ///
    /// # Errors
    /// [`Error::Empty`] for an empty shape or mode; [`Error::ShapeMismatch`] unless
    /// `ranks.len() == d`; [`Error::InvalidRank`] for a zero rank.
    pub fn random_with_ranks(shape: &[usize], ranks: &[usize], seed: u64) -> Result<Self> {
        check_shape("TrTensor::random", shape)?;
        let d = shape.len();
        if ranks.len() != d {
            return Err(Error::ShapeMismatch {
                context: "TrTensor::random_with_ranks (ranks r_0..r_{d-1})",
                expected: vec![d],
                got: vec![ranks.len()],
            });
        }
        if ranks.contains(&0) {
            return Err(Error::rank(
                "TrTensor::random_with_ranks",
                "ranks must be at least 1",
            ));
        }
        let mut g = rng(seed);
        let cores = (0..d)
            .map(|k| {
                let (r, n, q) = (ranks[k], shape[k], ranks[(k + 1) % d]);
                let scale = T::cast(1.0 / ((n * q) as f64).sqrt());
                random_normal_with::<T, _>(&[r, n, q], &mut g)
                    .into_dimensionality::<ndarray::Ix3>()
                    .expect("3-D")
                    * scale
            })
            .collect();
        Self::try_new(cores)
    }

    /// The ranks `[r_0, .., r_{d-1}]` (`r_d = r_0`).
    pub fn ranks(&self) -> Vec<usize> {
        self.cores.iter().map(|g| g.dim().0).collect()
    }

    /// The largest rank.
    pub fn max_rank(&self) -> usize {
        self.ranks().into_iter().max().unwrap_or(1)
    }

    /// The cores `(r_k, n_k, r_{k+1})`, in standard layout.
    pub fn cores(&self) -> &[Array3<T>] {
        &self.cores
    }

    /// Core `k`.
    ///
    /// # Panics
    /// If `k >= d`.
    pub fn core(&self, k: usize) -> &Array3<T> {
        &self.cores[k]
    }

    /// Takes the cores out.
    pub fn into_cores(self) -> Vec<Array3<T>> {
        self.cores
    }

    /// TR-SVD of a dense tensor; see [`formats::tr`](crate::formats::tr).
    ///
    /// # Errors
    /// See [`tr_svd`].
    pub fn from_dense(
        x: ArrayViewD<'_, T>,
        rule: &impl AsRule,
    ) -> Result<(Self, TruncationInfo<T>)> {
        crate::formats::tr::tr_svd(x, rule)
    }

    /// The TR tensor with `r_0 = 1` equal to a TT tensor (the same cores).
    pub fn from_tt(x: &TtTensor<T>) -> Self {
        Self::from_cores(x.cores().to_vec())
    }

    /// The exactly equal TT tensor, with ranks `r_0 r_k` (`1` at the ends): the ring's
    /// closing index `a_0` is carried along the train,
    /// `H_k[(a_0, a), i, (a_0', b)] = δ(a_0, a_0') Z_k[a, i, b]`, the first core
    /// `H_0[0, i, (a_0, b)] = Z_0[a_0, i, b]` and the last
    /// `H_{d-1}[(a_0, a), i, 0] = Z_{d-1}[a, i, a_0]`. Round the result to get minimal TT
    /// ranks. Cost `O(Σ n r_0^2 r^2)`.
    pub fn to_tt(&self) -> TtTensor<T> {
        let d = self.order();
        let r0 = self.cores[0].dim().0;
        if d == 1 {
            let z = &self.cores[0];
            let n = z.dim().1;
            let v = Array3::from_shape_fn((1, n, 1), |(_, i, _)| {
                (0..r0).map(|a| z[[a, i, a]]).sum::<T>()
            });
            return TtTensor::from_cores(vec![v]);
        }
        let mut out = Vec::with_capacity(d);
        for (k, z) in self.cores.iter().enumerate() {
            let (r, n, q) = z.dim();
            let core = if k == 0 {
                z.view()
                    .permuted_axes([1, 0, 2])
                    .as_standard_layout()
                    .into_owned()
                    .into_shape_with_order((1, n, r * q))
                    .expect("size")
            } else if k == d - 1 {
                // (a0, a) rows, i, 0: H[(a0, a), i, 0] = Z[a, i, a0].
                Array3::from_shape_fn((r0 * r, n, 1), |(row, i, _)| z[[row % r, i, row / r]])
            } else {
                let mut h = Array3::<T>::zeros((r0 * r, n, r0 * q));
                for a0 in 0..r0 {
                    h.slice_mut(s![a0 * r..(a0 + 1) * r, .., a0 * q..(a0 + 1) * q])
                        .assign(z);
                }
                h
            };
            out.push(core);
        }
        TtTensor::from_cores(out)
    }

    /// The open chains `X = Σ_{a} chain_a`, where chain `a` takes row `a` of the first
    /// core's left rank and column `a` of the last core's right rank (each a TT).
    fn slices(&self, a: usize) -> Vec<ArrayView3<'_, T>> {
        let d = self.cores.len();
        if d == 1 {
            return vec![self.cores[0].slice(s![a..a + 1, .., a..a + 1])];
        }
        let mut v: Vec<ArrayView3<'_, T>> = self.cores.iter().map(|g| g.view()).collect();
        v[0] = self.cores[0].slice(s![a..a + 1, .., ..]);
        v[d - 1] = self.cores[d - 1].slice(s![.., .., a..a + 1]);
        v
    }

    /// Entries at many multi-indices (one row of `indices` per entry), `O(d r^3)` each.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if `indices` has not `d` columns;
    /// [`Error::IndexOutOfBounds`] for an index outside the tensor.
    pub fn entries(&self, indices: ndarray::ArrayView2<'_, usize>) -> Result<Vec<T>> {
        let context = "TrTensor::entries (one column per mode)";
        checks::entries(context, &self.shape, indices, |i| self.entry(i))
    }
}

impl<T: Scalar> Factorized<T> for TrTensor<T> {
    fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Slices the cores of the fixed modes.
    fn fix_leading(&self, index: &[usize]) -> Result<Self> {
        checks::check_leading_index(index, &self.shape)?;
        Ok(Self::from_cores(cores::fix_leading_cores(
            &self.cores,
            index,
        )))
    }

    /// `Σ_k r_k n_k r_{k+1}`.
    fn n_params(&self) -> usize {
        self.cores.iter().map(|g| g.len()).sum()
    }

    /// One slice's chain (as TT) beside the accumulated result.
    fn dense_work(&self) -> u128 {
        cores::chain_work(&self.slices(0)).saturating_add(crate::limits::elements(&self.shape))
    }

    /// Sum over the closing index `a` of the open chains (each a TT contracted left to
    /// right). Cost `O(r_0 Σ_k n_1..n_k r^2)`, memory `N + N r / n`.
    fn to_dense(&self) -> ArrayD<T> {
        let r0 = self.cores[0].dim().0;
        let mut acc = cores::chain_matrix(&self.slices(0));
        for a in 1..r0 {
            acc += &cores::chain_matrix(&self.slices(a));
        }
        ArrayD::from_shape_vec(IxDyn(&self.shape), acc.into_raw_vec_and_offset().0)
            .expect("N x 1 row-major")
    }

    /// `sqrt(<X, X>)` by the transfer-matrix product ([`inner`](TrTensor::inner)).
    ///
    /// A ring has no orthogonal gauge that carries the norm, so unlike TT and HT this is
    /// the square root of an inner product: relative accuracy about `eps · κ` where
    /// `κ = Σ_i |products| / ‖X‖²` (cancellation in the trace), and differences of nearly
    /// equal rings are only resolved down to `sqrt(eps) ‖X‖`. Cost `O(d n r^5)`.
    fn norm(&self) -> T {
        let s = self.inner(self).expect("same shape");
        s.max(T::zero()).sqrt()
    }

    /// `Σ_a <chain_a, X>` with each open chain contracted against `X` from the last mode:
    /// `self` is never densified and `X` never copied (if in standard layout). Cost
    /// `r_0 (2 N r + O(N r^2 / n))` flops, memory `N r / n`.
    fn inner_dense(&self, x: ArrayViewD<'_, T>) -> Result<T> {
        if x.shape() != self.shape.as_slice() {
            return Err(Error::ShapeMismatch {
                context: "TrTensor::inner_dense",
                expected: self.shape.clone(),
                got: x.shape().to_vec(),
            });
        }
        let x = x.as_standard_layout();
        let xs = x.as_slice().expect("standard layout");
        let r0 = self.cores[0].dim().0;
        Ok((0..r0)
            .map(|a| cores::chain_inner_dense(&self.slices(a), xs))
            .sum())
    }

    /// `trace(Z_1[:, i_1, :] .. Z_d[:, i_d, :])`, `O(d r^3)`.
    fn entry(&self, index: &[usize]) -> Result<T> {
        check_index(index, &self.shape)?;
        let m = cores::chain_slice_product(&self.cores, index);
        Ok(m.diag().sum())
    }

    /// Ring-preserving rounding; see [`formats::tr`](crate::formats::tr)
    /// for the algorithm and the bound it guarantees.
    fn round(&self, rule: &impl AsRule) -> Result<(Self, TruncationInfo<T>)> {
        crate::formats::tr::tr_round(self, rule)
    }
}
