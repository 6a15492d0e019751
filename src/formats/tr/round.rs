//! Ring-preserving rounding of a TR tensor, without densifying.
//!
//! There is no TR analogue of TT rounding with a quasi-optimality guarantee: a ring has no
//! orthogonal gauge, and no known SVD-based sweep finds minimal TR ranks. tnet offers two
//! rigorous sweeps and, by default ([`TrRoundMethod::Best`]), runs both and keeps the
//! result with fewer parameters (ties: the smaller error bound), so rounding never makes a
//! ring bigger than the better of the two and always meets its tolerance.
//!
//! # [`TrRoundMethod::TrSvd`]: TR-SVD computed on the compressed tensor
//! 1. the ring is written exactly as a TT `H` with ranks `r_0 r_k`
//!    ([`TrTensor::to_tt`]), and `H_2 .. H_d` are right-orthogonalised, so that
//!    `X_{<1>} = H_1 Q` with `Q` orthonormal rows and `‖X‖ = ‖H_1‖` (accurate to working
//!    precision; this is the norm every method uses for its budget);
//! 2. the SVD of `H_1` (`n_1 x s_1`) is the SVD of `X_{<1>}`: truncated to `R = r_0 r_1`
//!    ([`balanced_split`](super::balanced_split)), it gives `Z_1` as in TR-SVD;
//! 3. `C = U^T X_{<1>}` is, in TT form, `(Σ V^T) H_2 H_3 .. H_d`; moving `a_0` from the
//!    front to the back (`W[a_1, i_2, .., i_d, a_0]`) carries it through the cores as
//!    `I_{r_0} ⊗ H_k`, which keeps them right-orthogonal;
//! 4. a left-to-right sweep of truncated SVDs over `W` gives `Z_2 .. Z_d`.
//!
//! The truncations are nested orthogonal projections of `X`, exactly as in
//! [TR-SVD](super::tr_svd), with the same budget split (`√2 β/√d` for the first, `β/√d`
//! for the `d − 2` others, `β = rule.budget(‖X‖)`): `‖X − Y‖_F ≤ info.error_bound =
//! √(Σ_k δ_k²) ≤ β`. The result is what TR-SVD of the dense tensor would give, so its
//! ranks are TR-SVD's, which for a ring of small ranks can be larger than the input's
//! (TR-SVD mixes `a_0` and `a_1` in its first core). `info` is laid out as TR-SVD's.
//!
//! # [`TrRoundMethod::OpenChain`]: TT rounding of the ring cut open, in its own gauge
//! Cutting the ring at the bond `r_0` gives the open chain `W[a, i_1, .., i_d, a']` (a TT
//! with boundary ranks `r_0`), and `X[i] = Σ_a W[a, i, a]`.
//! - Pass A (ranks `r_1 .. r_{d-1}`): right-orthogonalise `W`, then left-to-right
//!   truncated SVDs, as TT rounding: `‖W − W̃‖ ≤ √(Σ_k δ_k²)`.
//! - Pass B (rank `r_0`): cut at `r_1` instead (chain `Z_2, .., Z_d, Z_1`),
//!   left-orthogonalise `Z_2 .. Z_d` and truncate the right unfolding of `Z_1` by an SVD,
//!   error `δ_0` on that open chain.
//!
//! Closing a chain of boundary rank `r` sums `r` slices, so `‖X − X̃‖ ≤ √r ‖W − W̃‖`
//! (Cauchy–Schwarz), and the guaranteed bound is
//! `‖X − Y‖_F ≤ info.error_bound = √r_0 √(Σ_{k≥1} δ_k²) + √r'_1 δ_0 ≤ β`: pass A gets per
//! bond `β (d−1)/d / (√r_0 √(d−1))`, pass B what is left divided by `√r'_1` (`r'_1` the
//! rank of bond 1 after pass A). Note that this `error_bound` is not `√(Σ discarded²)`.
//! This keeps the ring's own gauge, so ranks never grow, but it cannot remove redundancy
//! that only the trace sees (the open chain of `X + X` really has the doubled ranks).
//! `info.singular_values[k]`, `info.discarded[k]` refer to the rank `r_k`.
//!
//! # Both
//! With a rank cap every rank is `≤ r` and `info.error_bound` says what was achieved. For
//! `d = 1` the result is the exact ring `(1, n, 1)` holding the traces.
//!
//! # Cost
//! With `s = r_0 r`: `O(Σ n s^3)` for the orthogonalisation of `H`, `O(Σ n r'^2 r'_0 s)`
//! for the TR-SVD sweep and `O(Σ n r^3)` for the open-chain passes; the dense tensor is
//! never formed.

use ndarray::{Array3, s};

use crate::formats::cores::{
    core_from, left_orthogonalize, left_unfolding, matmul_rm, right_orthogonalize, right_unfolding,
    truncation_sweep,
};
use crate::linalg::{MatrixTruncation, svd};
use crate::{AsRule, CheckedRule, Factorized, Result, Scalar, TrTensor, TruncationInfo};

/// Which ring-rounding sweep to run; see the [module docs](self).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TrRoundMethod {
    /// Run both and keep the result with fewer parameters (ties: smaller error bound).
    #[default]
    Best,
    /// TR-SVD of the represented tensor, computed in compressed form.
    TrSvd,
    /// TT rounding of the ring cut open, keeping its gauge.
    OpenChain,
}

/// Rounds the TR tensor `x` to `rule`, keeping the ring. See the [module docs](self) for
/// the algorithm and the bound it guarantees.
///
/// Uses [`TrRoundMethod::Best`]; `info` is laid out as the chosen method's.
///
/// # Errors
/// [`Error::InvalidParameter`](crate::Error::InvalidParameter) for an invalid rule;
/// [`Error::Linalg`](crate::Error::Linalg) if an SVD fails.
///
/// # Example
/// ```
/// use tnet::{Factorized, TrTensor, Truncation};
/// let x = TrTensor::<f64>::random(&[4, 5, 6, 3], 2, 1).unwrap();
/// let doubled = x.add(&x).unwrap(); // ranks 4 (the trace sees the redundancy)
/// let (y, info) = tnet::formats::tr::tr_round(&doubled, &Truncation::rel(1e-10)).unwrap();
/// assert!(y.n_params() <= doubled.n_params()); // never grows
/// let e = tnet::dense::rel_error(doubled.to_dense().view(), y.to_dense().view()).unwrap();
/// assert!(e <= 1e-10 && e <= info.rel_error_bound() + 1e-14);
/// ```
pub fn tr_round<T: Scalar>(
    x: &TrTensor<T>,
    rule: &impl AsRule,
) -> Result<(TrTensor<T>, TruncationInfo<T>)> {
    tr_round_with(x, rule, TrRoundMethod::Best)
}

/// Rounds the TR tensor `x` to `rule` by the given method. See the [module docs](self)
/// for the algorithms, the bounds they guarantee and the layout of `info`.
///
/// # Errors
/// As [`tr_round`].
///
/// # Example
/// ```
/// use tnet::formats::tr::{tr_round_with, TrRoundMethod};
/// use tnet::{Factorized, TrTensor, Truncation};
/// let x = TrTensor::<f64>::random(&[4, 5, 6], 3, 1).unwrap();
/// let padded = x.add(&x.scale(0.0)).unwrap(); // ranks 6, half of them zero
/// let (y, info) = tr_round_with(&padded, &Truncation::rel(1e-10), TrRoundMethod::OpenChain).unwrap();
/// assert_eq!(y.ranks(), vec![3, 3, 3]);
/// assert!(info.error_bound <= 1e-10 * info.input_norm);
/// ```
pub fn tr_round_with<T: Scalar>(
    x: &TrTensor<T>,
    rule: &impl AsRule,
    method: TrRoundMethod,
) -> Result<(TrTensor<T>, TruncationInfo<T>)> {
    let rule = rule.as_rule()?;
    let d = x.order();
    let mut h = x.to_tt().into_cores();
    right_orthogonalize(&mut h, 0);
    let norm = crate::dense::norm(h[0].view().into_dyn());
    if d == 1 {
        let info = TruncationInfo::new(Vec::new(), Vec::new(), norm);
        return Ok((TrTensor::from_cores(h), info));
    }
    let budget = if rule.has_tolerance() {
        rule.budget(norm.as_f64())
    } else {
        0.0
    };
    match method {
        TrRoundMethod::TrSvd => via_tr_svd(h, &rule, budget, norm),
        TrRoundMethod::OpenChain => open_chain(x, &rule, budget, norm),
        TrRoundMethod::Best => {
            let a = via_tr_svd(h, &rule, budget, norm)?;
            let b = open_chain(x, &rule, budget, norm)?;
            let key = |r: &(TrTensor<T>, TruncationInfo<T>)| (r.0.n_params(), r.1.error_bound);
            Ok(if key(&b) < key(&a) { b } else { a })
        }
    }
}

/// TR-SVD on the right-orthogonalised TT `h` of the ring.
fn via_tr_svd<T: Scalar>(
    h: Vec<Array3<T>>,
    rule: &CheckedRule,
    budget: f64,
    norm: T,
) -> Result<(TrTensor<T>, TruncationInfo<T>)> {
    let d = h.len();
    let cap = rule.max_rank().unwrap_or(usize::MAX);
    let df = d as f64;
    let first_rule = MatrixTruncation {
        max_rank: cap.saturating_mul(cap),
        tol: T::cast(2f64.sqrt() * budget / df.sqrt()),
    };
    let rest_rule = MatrixTruncation {
        max_rank: cap,
        tol: T::cast(budget / df.sqrt()),
    };
    // Step 2: the first unfolding, X_{<1>} = H_1 Q.
    let (_, n0, s1) = h[0].dim();
    let h0 = h[0]
        .view()
        .into_shape_with_order((n0, s1))
        .expect("standard");
    let f = svd(h0, first_rule, true)?;
    let (r0, r1) = super::balanced_split(f.rank, cap);
    let rank = r0 * r1;
    let discarded = f.singular_values[rank..]
        .iter()
        .map(|&v| v * v)
        .sum::<T>()
        .sqrt();
    let z0 =
        f.u.slice(s![.., ..rank])
            .to_owned()
            .into_shape_with_order((n0, r0, r1))
            .expect("row-major")
            .permuted_axes([1, 0, 2])
            .as_standard_layout()
            .into_owned();
    let mut sv =
        f.vt.as_ref()
            .expect("asked for V")
            .slice(s![..rank, ..])
            .to_owned();
    for (a, mut row) in sv.rows_mut().into_iter().enumerate() {
        row *= f.singular_values[a];
    }
    // Step 3: W's cores. K[(a0, a1), i, c] = (Σ V^T H_2)[...].
    let (_, n1, s2) = h[1].dim();
    let k = matmul_rm(sv.view(), right_unfolding(&h[1]))
        .into_shape_with_order((r0, r1, n1, s2))
        .expect("row-major");
    let mut w: Vec<Array3<T>> = Vec::with_capacity(d - 1);
    if d == 2 {
        // W_1[a1, i, a0] = K[a0, a1, i, 0].
        w.push(
            k.index_axis(ndarray::Axis(3), 0)
                .permuted_axes([1, 2, 0])
                .as_standard_layout()
                .into_owned(),
        );
    } else {
        // W_1[a1, i, (a0, c)] = K[a0, a1, i, c].
        w.push(
            k.permuted_axes([1, 2, 0, 3])
                .as_standard_layout()
                .into_owned()
                .into_shape_with_order((r1, n1, r0 * s2))
                .expect("standard"),
        );
        for g in &h[2..d - 1] {
            let (p, n, q) = g.dim();
            let mut c = Array3::<T>::zeros((r0 * p, n, r0 * q));
            for a in 0..r0 {
                c.slice_mut(s![a * p..(a + 1) * p, .., a * q..(a + 1) * q])
                    .assign(g);
            }
            w.push(c);
        }
        // W_d[(a0, c), i, a0'] = δ(a0, a0') H_d[c, i, 0].
        let g = &h[d - 1];
        let (p, n, _) = g.dim();
        let mut c = Array3::<T>::zeros((r0 * p, n, r0));
        for a in 0..r0 {
            c.slice_mut(s![a * p..(a + 1) * p, .., a..a + 1]).assign(g);
        }
        w.push(c);
    }
    drop(h);
    // Step 4: W is right-orthogonal but for its first core: one truncation sweep.
    let rec = truncation_sweep(&mut w, 0..d - 2, &|_| rest_rule)?;
    let mut cores = Vec::with_capacity(d);
    cores.push(z0);
    cores.extend(w);
    let mut singular_values = vec![f.singular_values];
    singular_values.extend(rec.singular_values);
    let mut disc = vec![discarded];
    disc.extend(rec.discarded);
    Ok((
        TrTensor::from_cores(cores),
        TruncationInfo::new(singular_values, disc, norm),
    ))
}

/// TT rounding of the ring cut open at `r_0` (pass A), then of the closing bond with the
/// ring cut at `r_1` (pass B).
fn open_chain<T: Scalar>(
    x: &TrTensor<T>,
    rule: &CheckedRule,
    budget: f64,
    norm: T,
) -> Result<(TrTensor<T>, TruncationInfo<T>)> {
    let d = x.order();
    let cap = rule.max_rank().unwrap_or(usize::MAX);
    let df = d as f64;
    let mut g: Vec<Array3<T>> = x.cores().to_vec();
    // Pass A.
    right_orthogonalize(&mut g, 0);
    let r0 = g[0].dim().0 as f64;
    let rule_a = MatrixTruncation {
        max_rank: cap,
        tol: T::cast(budget * (df - 1.0) / df / (r0.sqrt() * (df - 1.0).sqrt())),
    };
    let rec = truncation_sweep(&mut g, 0..d - 1, &|_| rule_a)?;
    let err_a = r0.sqrt()
        * rec
            .discarded
            .iter()
            .map(|&e| e.as_f64() * e.as_f64())
            .sum::<f64>()
            .sqrt();
    // Pass B: chain Z_2 .. Z_d, Z_1 (boundary rank r_1); truncate the bond r_0.
    g.rotate_left(1);
    left_orthogonalize(&mut g, d - 1);
    let r1 = g[0].dim().0 as f64;
    let (_, n, q) = g[d - 1].dim();
    let f = svd(
        right_unfolding(&g[d - 1]),
        MatrixTruncation {
            max_rank: cap,
            tol: T::cast((budget - err_a).max(0.0) / r1.sqrt()),
        },
        true,
    )?;
    let kept = f.rank;
    let mut sv = f.vt.expect("asked for V");
    for (a, mut row) in sv.rows_mut().into_iter().enumerate() {
        row *= f.singular_values[a];
    }
    g[d - 1] = core_from(sv, kept, n, q);
    let (rp, np, _) = g[d - 2].dim();
    let prev = matmul_rm(left_unfolding(&g[d - 2]), f.u.view());
    g[d - 2] = core_from(prev, rp, np, kept);
    g.rotate_right(1);
    let err_b = r1.sqrt() * f.discarded.as_f64();
    let mut singular_values = vec![f.singular_values];
    singular_values.extend(rec.singular_values);
    let mut discarded = vec![f.discarded];
    discarded.extend(rec.discarded);
    let info = TruncationInfo {
        singular_values,
        discarded,
        error_bound: T::cast(err_a + err_b),
        input_norm: norm,
        fit: None,
    };
    Ok((TrTensor::from_cores(g), info))
}
