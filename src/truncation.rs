//! The one truncation rule shared by every format.
//!
//! A [`Truncation`] says how small a decomposition may be made: a cap on every rank, a
//! relative Frobenius tolerance, an absolute Frobenius tolerance, or any combination.
//! Other libraries let `eps` mean three different things; here the meaning is fixed:
//!
//! | rule given | what the result `Y` of decomposing or rounding `X` satisfies |
//! |---|---|
//! | `rel_eps = e` | `‖X − Y‖_F ≤ e · ‖X‖_F` |
//! | `abs_eps = a` | `‖X − Y‖_F ≤ a` |
//! | both | both bounds (the smaller budget wins) |
//! | `max_rank = r` | every rank `≤ r`; error within a format-specific factor of the best rank-`r` error (HT: `√(2d−3)`, TT: `√(d−1)`, Tucker: `√d`) |
//! | rank and a tolerance | every rank `≤ r`; the tolerance holds whenever the cap does not bind, and the returned error bound says what was achieved in any case |
//!
//! Each algorithm spreads the tolerance over its `n` individual SVD truncations as
//! `tol / √n`, because the squared errors of the nested orthogonal projections add up;
//! that is what makes the bounds above rigorous rather than heuristic. Every algorithm
//! also returns the accumulated discarded norm, a rigorous upper bound on the achieved
//! error that is usually tight.

use serde::{Deserialize, Serialize};

use crate::linalg::MatrixTruncation;
use crate::{Error, Result, Scalar};

/// How far a decomposition may be truncated. See the [module docs](self) for exactly what
/// each field guarantees.
///
/// # Example
/// ```
/// use tnet::Truncation;
/// let rule = Truncation::rel(1e-3).with_max_rank(20);
/// assert_eq!(rule.max_rank(), Some(20));
/// assert!(Truncation::rel(-1.0).check().is_err());
/// assert_eq!(rule.check().unwrap().truncation(), rule);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Truncation {
    max_rank: Option<usize>,
    rel_eps: Option<f64>,
    abs_eps: Option<f64>,
}

impl Truncation {
    /// No truncation: exact decomposition (ranks limited only by the unfoldings' ranks,
    /// numerically zero singular values are still kept).
    pub fn exact() -> Self {
        Self::default()
    }

    /// Every rank at most `r`.
    pub fn rank(r: usize) -> Self {
        Self {
            max_rank: Some(r),
            ..Self::default()
        }
    }

    /// Relative Frobenius error at most `eps`.
    pub fn rel(eps: f64) -> Self {
        Self {
            rel_eps: Some(eps),
            ..Self::default()
        }
    }

    /// Absolute Frobenius error at most `eps`.
    pub fn abs(eps: f64) -> Self {
        Self {
            abs_eps: Some(eps),
            ..Self::default()
        }
    }

    /// Adds (or replaces) a rank cap.
    pub fn with_max_rank(mut self, r: usize) -> Self {
        self.max_rank = Some(r);
        self
    }

    /// Adds (or replaces) a relative tolerance.
    pub fn with_rel_eps(mut self, eps: f64) -> Self {
        self.rel_eps = Some(eps);
        self
    }

    /// Adds (or replaces) an absolute tolerance.
    pub fn with_abs_eps(mut self, eps: f64) -> Self {
        self.abs_eps = Some(eps);
        self
    }

    /// The rank cap, if any.
    pub fn max_rank(&self) -> Option<usize> {
        self.max_rank
    }

    /// The relative tolerance, if any.
    pub fn rel_eps(&self) -> Option<f64> {
        self.rel_eps
    }

    /// The absolute tolerance, if any.
    pub fn abs_eps(&self) -> Option<f64> {
        self.abs_eps
    }

    /// Validates the rule once, at the edge: ranks at least 1, tolerances finite and
    /// non-negative. The algorithms take the [`CheckedRule`] this returns (or check a
    /// [`Truncation`] given to them through [`AsRule`]), so nothing below re-checks.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming the offending field.
    pub fn check(&self) -> Result<CheckedRule> {
        if self.max_rank == Some(0) {
            return Err(Error::param("max_rank", "must be at least 1"));
        }
        for (name, v) in [("rel_eps", self.rel_eps), ("abs_eps", self.abs_eps)] {
            if let Some(v) = v {
                if !v.is_finite() || v < 0.0 {
                    return Err(Error::param(
                        name,
                        format!("must be finite and >= 0, got {v}"),
                    ));
                }
            }
        }
        Ok(CheckedRule(*self))
    }
}

/// A [`Truncation`] that has been validated (see [`Truncation::check`]): the type the
/// decomposition and rounding algorithms work with. It can only be made by checking, so
/// holding one proves the rule is valid; it answers the questions the algorithms ask
/// (the error budget, the per-SVD rule).
///
/// # Example
/// ```
/// use tnet::Truncation;
/// let rule = Truncation::rel(1e-2).with_max_rank(8).check().unwrap();
/// assert_eq!(rule.budget(10.0), 0.1);
/// assert_eq!(rule.max_rank(), Some(8));
/// // Lowering the cap keeps the rule valid; a zero cap is refused.
/// assert_eq!(rule.capped(4).unwrap().max_rank(), Some(4));
/// assert!(rule.capped(0).is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CheckedRule(Truncation);

impl CheckedRule {
    /// The rule as given.
    pub fn truncation(&self) -> Truncation {
        self.0
    }

    /// The rank cap, if any.
    pub fn max_rank(&self) -> Option<usize> {
        self.0.max_rank
    }

    /// The relative tolerance, if any.
    pub fn rel_eps(&self) -> Option<f64> {
        self.0.rel_eps
    }

    /// The absolute tolerance, if any.
    pub fn abs_eps(&self) -> Option<f64> {
        self.0.abs_eps
    }

    /// The same rule with the rank cap lowered to `min(cap, r)` (set to `r` if there was
    /// none).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for `r == 0`.
    pub fn capped(&self, r: usize) -> Result<Self> {
        let r = self.0.max_rank.map_or(r, |c| c.min(r));
        self.0.with_max_rank(r).check()
    }

    /// The total absolute error budget for a tensor of norm `norm`:
    /// `min(rel_eps * norm, abs_eps)`, or 0 when no tolerance is set (exact up to rounding).
    pub fn budget(&self, norm: f64) -> f64 {
        let rel = self.0.rel_eps.map(|e| e * norm);
        match (rel, self.0.abs_eps) {
            (Some(r), Some(a)) => r.min(a),
            (Some(r), None) => r,
            (None, Some(a)) => a,
            (None, None) => 0.0,
        }
    }

    /// True when a tolerance is set (so `budget` can be non-zero).
    pub fn has_tolerance(&self) -> bool {
        self.0.rel_eps.is_some() || self.0.abs_eps.is_some()
    }

    /// The per-matrix rule for one of `n_truncations` nested truncations of a tensor of
    /// norm `norm`: rank cap as given, tolerance `budget / sqrt(n_truncations)`.
    pub fn per_matrix<T: Scalar>(&self, norm: T, n_truncations: usize) -> MatrixTruncation<T> {
        let n = n_truncations.max(1) as f64;
        let tol = if self.has_tolerance() {
            self.budget(norm.as_f64()) / n.sqrt()
        } else {
            // Exact: drop only what is zero to working precision, relative to the norm.
            0.0
        };
        MatrixTruncation {
            max_rank: self.0.max_rank.unwrap_or(usize::MAX),
            tol: T::cast(tol),
        }
    }
}

/// What the algorithms accept as a rule: a [`Truncation`] (checked on entry) or a
/// [`CheckedRule`] (taken as it is). Public algorithms take `&impl AsRule`, so a user
/// writes `tt_svd(x, &Truncation::rel(1e-3))` while the layers inside pass the checked
/// rule down without checking it again.
pub trait AsRule {
    /// The checked rule.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for an invalid [`Truncation`].
    fn as_rule(&self) -> Result<CheckedRule>;
}

impl AsRule for Truncation {
    fn as_rule(&self) -> Result<CheckedRule> {
        self.check()
    }
}

impl AsRule for CheckedRule {
    fn as_rule(&self) -> Result<CheckedRule> {
        Ok(*self)
    }
}

/// What a decomposition or rounding discarded.
///
/// `error_bound = sqrt(sum_t discarded_t^2)` is a rigorous upper bound on `‖X − Y‖_F` for
/// the algorithms of this crate (nested orthogonal projections), and it is usually tight.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TruncationInfo<T> {
    /// Singular values seen at each node or core (empty where no SVD was taken), in the
    /// format's node or core order.
    pub singular_values: Vec<Vec<T>>,
    /// Frobenius norm discarded at each node or core.
    pub discarded: Vec<T>,
    /// `sqrt(sum discarded^2)`: an upper bound on the absolute error.
    pub error_bound: T,
    /// Norm of the input `‖X‖_F`.
    pub input_norm: T,
    /// For formats fitted by an iteration (block terms), which has no a-priori bound:
    /// how the fit that was kept ran; `error_bound` is then the error it achieved.
    /// `None` for the SVD-based formats.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fit: Option<FitSummary>,
}

/// How an iterative fit (BT-ALS) that produced a decomposition ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FitSummary {
    /// Sweeps of the run that was kept.
    pub sweeps: usize,
    /// Whether that run stopped on its tolerance or error target rather than on the
    /// sweep limit.
    pub converged: bool,
    /// Runs made to choose the rank (1 when the rank was given).
    pub trials: usize,
}

impl<T: Scalar> TruncationInfo<T> {
    /// Builds the record, summing the discarded parts.
    pub fn new(singular_values: Vec<Vec<T>>, discarded: Vec<T>, input_norm: T) -> Self {
        // Scaled like a norm: no overflow for discarded parts near 1e200 (f64).
        let error_bound = crate::dense::norm(ndarray::aview1(&discarded).into_dyn());
        Self {
            singular_values,
            discarded,
            error_bound,
            input_norm,
            fit: None,
        }
    }

    /// The record of a fit: `error` is the achieved error (no a-priori bound exists).
    pub fn fitted(error: T, input_norm: T, fit: FitSummary) -> Self {
        Self {
            fit: Some(fit),
            ..Self::new(Vec::new(), vec![error], input_norm)
        }
    }

    /// `error_bound / input_norm` (0 for a zero input with zero error).
    pub fn rel_error_bound(&self) -> T {
        if self.input_norm == T::zero() {
            self.error_bound
        } else {
            self.error_bound / self.input_norm
        }
    }

    /// Refuses a measured `‖X − Y‖_F` (`distance`) above the a-priori bound by more than
    /// round-off (`1000 ε ‖X‖`): near the limits of the dtype the rounding of the result
    /// can exceed the bound, and a caller that measured the error must not report it as a
    /// success. Fits (BT-ALS) report the error they reached and pass.
    ///
    /// # Errors
    /// [`Error::BoundNotMet`] naming `context`.
    ///
    /// # Example
    /// ```
    /// use tnet::{Factorized, TtTensor, Truncation};
    /// let x = tnet::dense::random_normal::<f64>(&[4, 5, 6], 0);
    /// let (y, info) = TtTensor::from_dense(x.view(), &Truncation::rel(0.3)).unwrap();
    /// info.check_measured("tt_svd", y.distance(x.view()).unwrap()).unwrap();
    /// assert!(info.check_measured("tt_svd", info.input_norm).is_err());
    /// ```
    pub fn check_measured(&self, context: &'static str, distance: T) -> crate::Result<()> {
        let norm = self.input_norm.as_f64();
        let rel = |v: f64| if norm > 0.0 { v / norm } else { v };
        let (measured, bound) = (rel(distance.as_f64()), rel(self.error_bound.as_f64()));
        if self.fit.is_none() && measured > bound + 1e3 * T::epsilon().as_f64() {
            return Err(crate::Error::BoundNotMet {
                context,
                measured,
                bound,
            });
        }
        Ok(())
    }
}
