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
//! [`hooi`] starts from the ST-HOSVD under the given [`Truncation`](crate::Truncation) (which fixes the
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

use crate::dense::multi_mode_product;
use crate::formats::als::{AlsOptions, AlsReport, relative_error};
use crate::linalg::{MatrixTruncation, unfolding_left_svd};
use crate::{AsRule, Error, Factorized, Result, Scalar, TuckerTensor, dense};

/// HOOI of `x`, initialised by the ST-HOSVD under `rule` (which fixes the ranks). See the
/// [module docs](self).
///
/// # Errors
/// As [`st_hosvd`](crate::formats::tucker::st_hosvd); [`Error::InvalidParameter`] for
/// invalid options.
///
/// # Example
/// ```
/// use tnet::formats::AlsOptions;
/// use tnet::formats::tucker::hooi;
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
    rule: &impl AsRule,
    opts: &AlsOptions,
) -> Result<(TuckerTensor<T>, AlsReport<T>)> {
    let opts = opts.check()?;
    let (init, _) = crate::formats::tucker::st_hosvd(x.view(), rule)?;
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
    while !report.meets_target(opts.target) && report.iterations < opts.max_iter {
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
