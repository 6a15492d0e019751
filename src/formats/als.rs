//! Stopping rules and reports shared by the alternating (ALS-type) iterations of the
//! formats: HOOI ([`hooi`](fn@crate::formats::tucker::hooi)) and BT-ALS
//! ([`bt_als`](crate::formats::bt::bt_als)).

use ndarray::ArrayViewD;

use crate::{Error, Result, Scalar, dense};

/// Stopping rule of an alternating (ALS-type) iteration: at most `max_iter` sweeps; stop
/// early when a sweep lowers the relative error by at most `tol` times its previous
/// value, or as soon as the relative error is at most `target` (an error budget: the
/// block-term matrix fit stops there). Shared by [`hooi`](fn@crate::formats::tucker::hooi) and [`bt_als`](crate::formats::bt::bt_als).
///
/// # Example
/// ```
/// use tnet::formats::AlsOptions;
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
    /// Relative error at or below which the iteration stops (0: run to `tol` or
    /// `max_iter`).
    pub target: f64,
}

impl Default for AlsOptions {
    /// 100 sweeps, `tol = 1e-10`.
    fn default() -> Self {
        Self {
            max_iter: 100,
            tol: 1e-10,
            target: 0.0,
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

    /// Sets the relative error at which the iteration stops early.
    pub fn with_target(mut self, target: f64) -> Self {
        self.target = target;
        self
    }

    /// Validates: `tol` and `target` finite and `>= 0`.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming `tol` or `target`.
    pub fn check(&self) -> Result<Self> {
        for (name, v) in [("tol", self.tol), ("target", self.target)] {
            if !v.is_finite() || v < 0.0 {
                return Err(Error::param(
                    name,
                    format!("must be finite and >= 0, got {v}"),
                ));
            }
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
    /// True if the iteration stopped on the tolerance, on the error target, on a zero
    /// error, or on a sweep rejected because rounding made the error rise, rather than on
    /// `max_iter`.
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

    /// Whether the iteration should stop on the error target: true (and `converged` set)
    /// once the error is at most `target`.
    pub(crate) fn meets_target(&mut self, target: f64) -> bool {
        if target > 0.0 && self.final_error().as_f64() <= target {
            self.converged = true;
        }
        self.converged
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
