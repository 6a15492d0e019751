//! TR-ALS: refinement of a tensor-ring approximation by alternating least squares.
//!
//! Zhao et al., *Tensor Ring Decomposition*, arXiv:1606.05535 (2016), Algorithm 2. With
//! the ranks fixed, each sweep updates the cores `k = 1 .. d` in turn, each by the exact
//! least-squares problem
//!
//! ```text
//! min_{Z_k} ‖ X_[k] − Z_k(2) B_k^T ‖_F,       B_k[(i_{k+1} .. i_{k-1}), (a, b)] = S_k[b, .., a],
//! ```
//!
//! where `X_[k]` is the mode-`k` unfolding with the other modes in cyclic order, `Z_k(2)`
//! the `n_k x r_{k-1} r_k` unfolding of the core and `S_k = Z_{k+1} .. Z_{k-1}` the open
//! subchain of the other cores. It is solved through the normal equations
//! `Z_k(2) G_k = X_[k] B_k` with `G_k = B_k^T B_k`, as in the paper: `G_k` comes from the
//! transfer matrices of the subchain (`O(d n r^5)`), `X_[k] B_k` from contracting `X` with
//! the subchain one core at a time (`O(N r^2)`, never forming `B_k`), and the solve uses
//! the SVD of `G_k` with a pseudo-inverse cut at `r^2 eps σ_max`.
//!
//! # Guarantees
//! - **Monotone**: every update minimises the error over one core with the others fixed,
//!   so the error never increases. An update whose computed objective change
//!   `tr(D G (Z_new + Z_old)^T) − 2 <D, X_[k] B_k>` (`D = Z_new − Z_old`, evaluated
//!   without cancellation against `‖X‖²`) is positive, which round-off in a singular
//!   `G_k` can cause, is rejected. The reported history is therefore non-increasing up to
//!   round-off in the squared error: the normal equations resolve `‖X − Y‖²` to about
//!   `eps ‖X‖²`, so once the fit is exact the relative error wanders below `√eps`.
//! - Started from TR-SVD ([`TrAlsInit::Svd`]), the result is never worse than TR-SVD.
//! - ALS is a local method: no bound relative to the best TR approximation exists.
//!
//! The relative error `‖X − Y‖ / ‖X‖` is evaluated after each sweep from the dense
//! residual (`O(r_0 N r)`), so the history is accurate to working precision.
//!
//! # Cost
//! Per sweep `O(d (N r^2 + d n r^5 + r^6))` time; memory `N` (a cyclically permuted copy
//! of `X`) plus `N r^2 / n` for the first contraction with the subchain.

use ndarray::{Array2, Array3, ArrayViewD, Axis, s};

use crate::formats::cores::{chain_transfer, matmul_rm, matmul_to};
use crate::linalg::{MatrixTruncation, svd};
use crate::{Error, Factorized, Result, Scalar, TrTensor, Truncation, dense};

/// Where TR-ALS starts.
#[derive(Clone, Debug)]
pub enum TrAlsInit<'a, T> {
    /// TR-SVD of the data under this rule (deterministic); ALS keeps its ranks.
    Svd(Truncation),
    /// Random cores with these ranks `[r_0, .., r_{d-1}]`, from a seed.
    Random {
        /// The ranks, one per core.
        ranks: Vec<usize>,
        /// The seed of the generator.
        seed: u64,
    },
    /// A given TR tensor of the data's shape (for example an earlier result).
    Given(&'a TrTensor<T>),
}

/// Stopping rules of TR-ALS.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrAlsOptions {
    /// Largest number of sweeps (each updates every core once). 0 only evaluates the start.
    pub max_sweeps: usize,
    /// Stop when the relative error `‖X − Y‖/‖X‖` is at most this.
    pub tol: f64,
    /// Stop when a sweep lowers the relative error by less than this fraction of it.
    pub min_decrease: f64,
}

impl Default for TrAlsOptions {
    /// 50 sweeps, `tol = 0` (run until stagnation), `min_decrease = 1e-6`.
    fn default() -> Self {
        Self {
            max_sweeps: 50,
            tol: 0.0,
            min_decrease: 1e-6,
        }
    }
}

impl TrAlsOptions {
    fn check(&self) -> Result<()> {
        for (name, v) in [("tol", self.tol), ("min_decrease", self.min_decrease)] {
            if !v.is_finite() || v < 0.0 {
                return Err(Error::param(
                    name,
                    format!("must be finite and >= 0, got {v}"),
                ));
            }
        }
        Ok(())
    }
}

/// Why TR-ALS stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrAlsStop {
    /// The relative error reached `tol`.
    Tolerance,
    /// A sweep improved the error by less than `min_decrease` (relative).
    Stagnation,
    /// `max_sweeps` sweeps were run.
    MaxSweeps,
}

/// What TR-ALS did.
#[derive(Clone, Debug, PartialEq)]
pub struct TrAlsReport {
    /// Relative error `‖X − Y‖_F / ‖X‖_F` of the start (`rel_errors[0]`) and after each
    /// sweep; non-increasing up to round-off.
    pub rel_errors: Vec<f64>,
    /// Number of sweeps run.
    pub sweeps: usize,
    /// Why it stopped.
    pub stop: TrAlsStop,
    /// Core updates rejected because they would have increased the error (round-off in a
    /// singular normal matrix); usually 0.
    pub rejected_updates: usize,
}

/// TR-ALS on the dense tensor `x` from `init` under `opts`. See the [module docs](self).
///
/// # Errors
/// - [`Error::Empty`] / [`Error::NonFinite`] for an empty tensor or NaN/Inf entries;
/// - [`Error::ShapeMismatch`] if a given start has another shape;
/// - [`Error::InvalidParameter`] for invalid options or an invalid TR-SVD rule;
/// - [`Error::InvalidRank`] for zero or missing random ranks;
/// - [`Error::Linalg`] if an SVD fails.
///
/// # Example
/// ```
/// use tnet::formats::tr::{tr_als, TrAlsInit, TrAlsOptions};
/// use tnet::Truncation;
/// let x = tnet::dense::random_normal::<f64>(&[4, 5, 6], 3);
/// let init = TrAlsInit::Svd(Truncation::rank(2));
/// let (_y, report) = tr_als(x.view(), init, &TrAlsOptions::default()).unwrap();
/// let e = &report.rel_errors;
/// assert!(e.windows(2).all(|w| w[1] * w[1] <= w[0] * w[0] + 1e-14));
/// assert!(e.last().unwrap() <= &e[0]);
/// ```
pub fn tr_als<T: Scalar>(
    x: ArrayViewD<'_, T>,
    init: TrAlsInit<'_, T>,
    opts: &TrAlsOptions,
) -> Result<(TrTensor<T>, TrAlsReport)> {
    dense::check_tensor("tr_als", &x)?;
    opts.check()?;
    let start = match init {
        TrAlsInit::Svd(rule) => crate::formats::tr::tr_svd(x.view(), &rule)?.0,
        TrAlsInit::Random { ranks, seed } => TrTensor::random_with_ranks(x.shape(), &ranks, seed)?,
        TrAlsInit::Given(t) => {
            if t.shape() != x.shape() {
                return Err(Error::ShapeMismatch {
                    context: "tr_als (start tensor)",
                    expected: x.shape().to_vec(),
                    got: t.shape().to_vec(),
                });
            }
            t.clone()
        }
    };
    let d = x.ndim();
    let xnorm = dense::norm(x.view()).as_f64();
    let rel = |y: &TrTensor<T>| -> f64 {
        let diff = &x - &y.to_dense();
        let e = dense::norm(diff.view()).as_f64();
        if xnorm == 0.0 { e } else { e / xnorm }
    };
    let mut cores = start.into_cores();
    let mut report = TrAlsReport {
        rel_errors: vec![rel(&TrTensor::from_cores(cores.clone()))],
        sweeps: 0,
        stop: TrAlsStop::MaxSweeps,
        rejected_updates: 0,
    };
    if report.rel_errors[0] <= opts.tol {
        report.stop = TrAlsStop::Tolerance;
        return Ok((TrTensor::from_cores(cores), report));
    }
    for sweep in 0..opts.max_sweeps {
        if d == 1 {
            // trace(Z[:, i, :]) = x[i]: the minimum-norm exact solution.
            let r = cores[0].dim().0;
            let inv = T::cast(1.0 / r as f64);
            let mut z = Array3::<T>::zeros(cores[0].dim());
            for a in 0..r {
                z.slice_mut(s![a, .., a])
                    .assign(&(&x.view().into_dimensionality::<ndarray::Ix1>().expect("1-D") * inv));
            }
            cores[0] = z;
        } else {
            for k in 0..d {
                if !update_core(&x, &mut cores, k)? {
                    report.rejected_updates += 1;
                }
            }
        }
        let e = rel(&TrTensor::from_cores(cores.clone()));
        let prev = report.rel_errors[sweep];
        report.rel_errors.push(e);
        report.sweeps = sweep + 1;
        if e <= opts.tol {
            report.stop = TrAlsStop::Tolerance;
            break;
        }
        if prev - e <= opts.min_decrease * prev {
            report.stop = TrAlsStop::Stagnation;
            break;
        }
    }
    Ok((TrTensor::from_cores(cores), report))
}

/// One least-squares update of core `k` (`d >= 2`). Returns false if the update was
/// rejected (it would have increased the error).
fn update_core<T: Scalar>(
    x: &ArrayViewD<'_, T>,
    cores: &mut [Array3<T>],
    k: usize,
) -> Result<bool> {
    let d = cores.len();
    let (rk, nk, rk1) = cores[k].dim();
    let m = rk * rk1;
    let order: Vec<usize> = (1..d).map(|j| (k + j) % d).collect();
    let sub: Vec<Array3<T>> = order.iter().map(|&j| cores[j].clone()).collect();
    // G[(a, b), (a', b')] = Σ S[b, rest, a] S[b', rest, a'];  chain_transfer gives
    // M[(b, b'), a, a'].
    let t = chain_transfer(&sub, &sub);
    let g = Array2::from_shape_fn((m, m), |(p, q)| {
        let (a, b) = (p / rk1, p % rk1);
        let (a2, b2) = (q / rk1, q % rk1);
        t[[b * rk1 + b2, a, a2]]
    });
    // RHS[i, (a, b)] = Σ_rest X[i, rest] S[b, rest, a], rest in cyclic order.
    let perm: Vec<usize> = (0..d).map(|j| (k + j) % d).collect();
    let xp = x
        .view()
        .permuted_axes(perm)
        .as_standard_layout()
        .into_owned();
    let xs = xp.as_slice().expect("standard layout");
    // First step with the last core of the subchain (open right rank a = r_k in front):
    // V[a, p, c] = Σ_i X'[p, i] Z[c, i, a].
    let last = &sub[sub.len() - 1];
    let (c0, nl, _) = last.dim();
    let p = xs.len() / nl;
    let xm = ndarray::ArrayView2::from_shape((p, nl), xs).expect("sizes");
    let mut v = Array3::<T>::zeros((rk, p, c0));
    for a in 0..rk {
        matmul_to(
            v.index_axis_mut(Axis(0), a),
            xm,
            last.slice(s![.., .., a]).t(),
        );
    }
    drop(xp);
    for z in sub[..sub.len() - 1].iter().rev() {
        let (c2, n, c) = z.dim();
        let (_, pp, _) = v.dim();
        let rows = rk * (pp / n);
        let vm = v.into_shape_with_order((rows, n * c)).expect("row-major");
        let zm = z
            .view()
            .into_shape_with_order((c2, n * c))
            .expect("standard");
        v = matmul_rm(vm.view(), zm.t())
            .into_shape_with_order((rk, pp / n, c2))
            .expect("row-major");
    }
    // v: (a, i_k, b).
    let rhs = v
        .permuted_axes([1, 0, 2])
        .as_standard_layout()
        .into_owned()
        .into_shape_with_order((nk, m))
        .expect("standard");
    // Solve Z G = RHS with the pseudo-inverse of G = U S U^T.
    let f = svd(g.view(), MatrixTruncation::exact(), true)?;
    let smax = f.singular_values.first().copied().unwrap_or(T::zero());
    let cut = smax * T::epsilon() * T::cast(m as f64);
    let vt = f.vt.as_ref().expect("asked for V");
    let mut w = matmul_rm(rhs.view(), vt.t()); // nk x rank
    for (j, mut col) in w.columns_mut().into_iter().enumerate() {
        let sj = f.singular_values[j];
        let inv = if sj > cut { T::one() / sj } else { T::zero() };
        col *= inv;
    }
    let z_new = matmul_rm(w.view(), f.u.t()); // nk x m
    let z_old = cores[k]
        .view()
        .permuted_axes([1, 0, 2])
        .as_standard_layout()
        .into_owned()
        .into_shape_with_order((nk, m))
        .expect("standard");
    // Objective change without ‖X‖²: tr(D G (Z_new + Z_old)^T) − 2 <D, RHS>.
    let diff = &z_new - &z_old;
    let sum = &z_new + &z_old;
    let dg = matmul_rm(diff.view(), g.view());
    let change: T = dg.iter().zip(sum.iter()).map(|(&a, &b)| a * b).sum::<T>()
        - T::cast(2.0) * diff.iter().zip(rhs.iter()).map(|(&a, &b)| a * b).sum::<T>();
    if change > T::zero() || z_new.iter().any(|v| !v.is_finite()) {
        return Ok(false);
    }
    cores[k] = z_new
        .into_shape_with_order((nk, rk, rk1))
        .expect("row-major")
        .permuted_axes([1, 0, 2])
        .as_standard_layout()
        .into_owned();
    Ok(true)
}
