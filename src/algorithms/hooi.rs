//! HOOI: higher-order orthogonal iteration, the alternating refinement of a Tucker
//! decomposition at fixed ranks.
//!
//! Best rank-`(R_1, .., R_d)` Tucker approximation means maximising `‖X ×_1 U_1ᵀ .. ×_d
//! U_dᵀ‖` over orthonormal `U_k` (then `G = X ×_k U_kᵀ` and `‖X − Y‖² = ‖X‖² − ‖G‖²`).
//! HOOI (De Lathauwer, De Moor & Vandewalle, *On the best rank-1 and rank-(R1, .., RN)
//! approximation of higher-order tensors*, SIMAX 21(4), 2000, Algorithm 4.2) maximises over
//! one `U_k` at a time: with the others fixed, the optimum is the `R_k` leading left
//! singular vectors of `(X ×_{j≠k} U_jᵀ)_(k)`. A sweep updates every mode once; the core is
//! the final projection.
//!
//! [`hooi`] starts from the ST-HOSVD under the given [`Truncation`] (which fixes the
//! ranks), so the result meets that rule's tolerance too; [`hooi_refine`] starts from any
//! Tucker tensor.
//!
//! # Guarantees
//! Each mode update is an exact maximisation, so the error `‖X − Y_i‖` is non-increasing in
//! exact arithmetic. The error is computed directly as `‖X − Y_i‖` (not as
//! `√(‖X‖² − ‖G‖²)`, which cancels), and a sweep whose error rises through rounding is
//! rejected and ends the iteration. Hence the reported history is non-increasing and the
//! result is never worse than the start: `‖X − Y_HOOI‖ ≤ ‖X − Y_ST-HOSVD‖ ≤ ε ‖X‖`.
//! HOOI converges to a stationary point, not necessarily the global optimum.
//!
//! # Cost
//! One sweep: for every mode `k` the projection of `X` onto the other `d − 1` factors
//! (the cheapest first, `≈ 2 N R` flops), one unfolding SVD of the projected tensor, plus
//! one reconstruction for the error (`≈ 2 N R`): about `2 (d + 1) N R` flops. Memory: the
//! input plus two tensors of its size.

use ndarray::{Array2, ArrayView2, ArrayViewD};

use crate::formats::tucker::multi_mode_product;
use crate::linalg::{MatrixTruncation, unfolding_left_svd};
use crate::{Error, Factorized, Result, Scalar, Truncation, TuckerTensor, dense};

/// Stopping rule of an alternating (ALS-type) iteration: at most `max_iter` sweeps; stop
/// early when a sweep lowers the relative error by at most `tol` times its previous
/// value. Shared by [`hooi`] and [`bt_als`](crate::algorithms::bt_als::bt_als).
///
/// # Example
/// ```
/// use tnet::algorithms::hooi::AlsOptions;
/// let o = AlsOptions::default().with_max_iter(20).with_tol(1e-6);
/// assert!(o.check().is_ok());
/// assert!(AlsOptions::default().with_tol(f64::NAN).check().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AlsOptions {
    /// Maximum number of sweeps (0 returns the initialisation).
    pub max_iter: usize,
    /// Relative decrease of the error below which the iteration stops.
    pub tol: f64,
}

impl Default for AlsOptions {
    /// 100 sweeps, `tol = 1e-10`.
    fn default() -> Self {
        Self {
            max_iter: 100,
            tol: 1e-10,
        }
    }
}

impl AlsOptions {
    /// Sets the sweep limit.
    pub fn with_max_iter(mut self, max_iter: usize) -> Self {
        self.max_iter = max_iter;
        self
    }

    /// Sets the tolerance on the relative decrease of the error.
    pub fn with_tol(mut self, tol: f64) -> Self {
        self.tol = tol;
        self
    }

    /// Validates: `tol` finite and `>= 0`.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming `tol`.
    pub fn check(&self) -> Result<Self> {
        if !self.tol.is_finite() || self.tol < 0.0 {
            return Err(Error::param(
                "tol",
                format!("must be finite and >= 0, got {}", self.tol),
            ));
        }
        Ok(*self)
    }
}

/// What an alternating iteration did.
#[derive(Clone, Debug, PartialEq)]
pub struct AlsReport<T> {
    /// Relative error `‖X − Y_i‖ / ‖X‖` (or `‖Y_i‖` for `X = 0`) of the initialisation
    /// (`errors[0]`) and after each accepted sweep; non-increasing.
    pub errors: Vec<T>,
    /// Number of accepted sweeps (`errors.len() − 1`).
    pub iterations: usize,
    /// True if the iteration stopped on the tolerance (or on a zero error, or on a sweep
    /// rejected because rounding made the error rise) rather than on `max_iter`.
    pub converged: bool,
}

impl<T: Scalar> AlsReport<T> {
    /// The error of the initialisation.
    pub fn initial_error(&self) -> T {
        self.errors[0]
    }

    /// The error of the result.
    pub fn final_error(&self) -> T {
        *self.errors.last().expect("at least the initial error")
    }

    pub(crate) fn start(err: T) -> Self {
        Self {
            errors: vec![err],
            iterations: 0,
            converged: err == T::zero(),
        }
    }

    /// Records a candidate error; returns whether it is accepted (not above the last).
    /// Sets `converged` when the decrease is at most `tol` relative, the error is zero, or
    /// the candidate is rejected.
    pub(crate) fn record(&mut self, err: T, tol: f64) -> bool {
        let last = self.final_error();
        if err > last {
            self.converged = true;
            return false;
        }
        self.errors.push(err);
        self.iterations += 1;
        if err == T::zero() || (last - err).as_f64() <= tol * last.as_f64() {
            self.converged = true;
        }
        true
    }
}

/// Relative error `‖X − Y‖ / ‖X‖` (`‖Y‖` when `X = 0`) with `Y` dense.
pub(crate) fn relative_error<T: Scalar>(
    x: ArrayViewD<'_, T>,
    norm_x: T,
    y: ArrayViewD<'_, T>,
) -> T {
    let mut diff = y.to_owned();
    diff.zip_mut_with(&x, |a, &b| *a = b - *a);
    let e = dense::norm(diff.view());
    if norm_x == T::zero() { e } else { e / norm_x }
}

/// HOOI of `x`, initialised by the ST-HOSVD under `rule` (which fixes the ranks). See the
/// [module docs](self).
///
/// # Errors
/// As [`st_hosvd`](crate::algorithms::hosvd::st_hosvd); [`Error::InvalidParameter`] for
/// invalid options.
///
/// # Example
/// ```
/// use tnet::algorithms::hooi::{hooi, AlsOptions};
/// use tnet::{Factorized, Truncation};
/// let x = tnet::dense::random_normal::<f64>(&[6, 7, 8], 3);
/// let (y, report) = hooi(x.view(), &Truncation::rank(2), &AlsOptions::default()).unwrap();
/// assert!(report.final_error() <= report.initial_error());
/// assert!(report.errors.windows(2).all(|w| w[1] <= w[0]));
/// let err = tnet::dense::rel_error(x.view(), y.to_dense().view()).unwrap();
/// assert!((err - report.final_error()).abs() < 1e-12);
/// ```
pub fn hooi<T: Scalar>(
    x: ArrayViewD<'_, T>,
    rule: &Truncation,
    opts: &AlsOptions,
) -> Result<(TuckerTensor<T>, AlsReport<T>)> {
    let opts = opts.check()?;
    let (init, _) = crate::algorithms::hosvd::st_hosvd(x.view(), rule)?;
    refine(x, init, &opts)
}

/// HOOI of `x` started from `init` (any Tucker tensor of the same shape; its ranks are
/// kept, its factors orthogonalised first). See the [module docs](self).
///
/// # Errors
/// [`Error::ShapeMismatch`] if the shapes differ; [`Error::Empty`] / [`Error::NonFinite`]
/// for a bad `x`; [`Error::InvalidParameter`] for invalid options.
pub fn hooi_refine<T: Scalar>(
    x: ArrayViewD<'_, T>,
    init: &TuckerTensor<T>,
    opts: &AlsOptions,
) -> Result<(TuckerTensor<T>, AlsReport<T>)> {
    let opts = opts.check()?;
    dense::check_tensor("hooi_refine", &x)?;
    if x.shape() != init.shape() {
        return Err(Error::ShapeMismatch {
            context: "hooi_refine (tensor and initial guess)",
            expected: x.shape().to_vec(),
            got: init.shape().to_vec(),
        });
    }
    refine(x, init.orthogonalize(), &opts)
}

/// HOOI sweeps from a Tucker tensor with orthonormal factors.
fn refine<T: Scalar>(
    x: ArrayViewD<'_, T>,
    init: TuckerTensor<T>,
    opts: &AlsOptions,
) -> Result<(TuckerTensor<T>, AlsReport<T>)> {
    let d = x.ndim();
    let norm_x = dense::norm(x.view());
    let mut best = init;
    let mut report = AlsReport::start(relative_error(x.view(), norm_x, best.to_dense().view()));
    while report.iterations < opts.max_iter && !report.converged {
        let ranks = best.ranks();
        let mut factors: Vec<Array2<T>> = best.factors().to_vec();
        let mut core = None;
        for k in 0..d {
            let ops: Vec<(usize, ArrayView2<'_, T>)> = (0..d)
                .filter(|&j| j != k)
                .map(|j| (j, factors[j].t()))
                .collect();
            let y = multi_mode_product(x.view(), &ops);
            let rule = MatrixTruncation {
                max_rank: ranks[k],
                tol: T::zero(),
            };
            let svd = unfolding_left_svd(y.view(), &[k], rule)?;
            if k == d - 1 {
                core = Some(dense::mode_product(y.view(), svd.u.t(), k)?);
            }
            factors[k] = svd.u;
        }
        let candidate = TuckerTensor::from_parts(core.expect("d >= 1"), factors);
        let err = relative_error(x.view(), norm_x, candidate.to_dense().view());
        if report.record(err, opts.tol) {
            best = candidate;
        }
    }
    Ok((best, report))
}
