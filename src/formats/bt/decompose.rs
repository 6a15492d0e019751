//! Block-term decomposition by alternating least squares (BT-ALS).
//!
//! Fits `X ≈ Σ_{b=1}^{N_b} G_b ×_1 U_{b,1} .. ×_d U_{b,d}` with every block of ranks
//! `(R_1, .., R_d)` (De Lathauwer & Nion, *Decompositions of a higher-order tensor in
//! block terms — Part III: Alternating least squares algorithms*, SIMAX 30(3), 2008).
//!
//! # Initialisation (seeded)
//! Block 1 is the ST-HOSVD of `X` at ranks `R` ([`hosvd`](crate::formats::tucker)),
//! block `b` the ST-HOSVD of the residual `X − Σ_{c<b} B_c`: a greedy deflation, so the
//! start is already as good as `N_b` successive Tucker fits. Where a residual has a
//! multilinear rank below `R_k` (for example when it is zero), the factor is completed by
//! random orthonormal directions drawn from `seed` and the core by zeros, so every block
//! has exactly the ranks `R`.
//!
//! # One sweep
//! 1. For each mode `k`, all blocks' factors jointly: with the other factors and the cores
//!    fixed, `X_(k) ≈ [U_{1,k} .. U_{N_b,k}] Wᵀ` with `W = [W_1 .. W_{N_b}]`,
//!    `W_b = ((G_b ×_{j≠k} U_{b,j})_(k))ᵀ` (`N/n_k x R_k`). The linear least-squares
//!    problem `min ‖W Aᵀ − X_(k)ᵀ‖` is solved through the SVD of `W`
//!    ([`lstsq`](crate::linalg::lstsq); minimum-norm solution, no normal equations). Each
//!    new `U_{b,k}` is then orthonormalised, `U_{b,k} = Q R`, `G_b ← G_b ×_k R` (the tensor
//!    is unchanged; the factors stay well conditioned).
//! 2. The cores, block by block (Gauss–Seidel): with orthonormal factors the best `G_b`
//!    for the residual `E_b = X − Σ_{c≠b} B_c` is the projection
//!    `E_b ×_1 U_{b,1}ᵀ .. ×_d U_{b,d}ᵀ`, applied as an update `G_b ← G_b + E ×_k U_{b,k}ᵀ`
//!    of the running residual `E`. (The joint least-squares problem for all cores has
//!    `N_b Π R_k` unknowns; block updates keep the cost linear in `N_b`.)
//!
//! 3. Line search (Bro 1998; De Lathauwer & Nion 2008, Section 5): from the second sweep
//!    on, the extrapolation `P_prev + s (P_new − P_prev)` of all cores and factors with
//!    `s = i^{1/3}` (`i` the sweep number) is re-orthonormalised and kept instead of
//!    `P_new` when its error is lower. It roughly halves the sweeps needed.
//!
//! Every step is an exact minimisation over its variables, so `‖X − Y‖` is non-increasing
//! in exact arithmetic; a sweep whose error rises through rounding is rejected and ends the
//! iteration, so the reported history ([`AlsReport`]) is non-increasing and the result is
//! never worse than the ST-HOSVD-based start.
//!
//! # Limitations
//! ALS is a local method and block-term decompositions have degenerate swamps: two blocks
//! grow without bound while cancelling each other and the error stalls above zero. From
//! this initialisation, on random BT tensors of known structure (orthonormal factors,
//! Gaussian cores, equal block sizes), 16 of 20 seeds of `8 x 8 x 8`, 2 blocks of ranks
//! `(2, 2, 2)`, reach a relative error below `1e-6` within 1000 sweeps, and 14 of 20 of
//! `5 x 6 x 7 x 4`, 2 blocks of ranks 2; with 3 blocks of rank 3 in `10 x 10 x 10` most
//! runs stall (random starts in the dominant subspace do no better). Check
//! [`AlsReport::final_error`] and the block norms, and try other block counts if the
//! error stalls.
//!
//! # Cost
//! One sweep: per mode, forming `W` (`O(N_b R_k N/n_k · R)`), its SVD
//! (`O(N/n_k · (N_b R_k)²)`) and `Uᵀ X_(k)ᵀ` (`2 N N_b R_k`); the core pass
//! `≈ 6 N_b N R` flops; the line search one reconstruction (`2 N_b N R`). Memory: the
//! input, a residual and an unfolding copy (`3 N`), plus `W` and its left singular
//! vectors (`2 N N_b R_k / n_k`).

use ndarray::{Array2, ArrayD, ArrayView2, ArrayViewD, Axis, IxDyn, Slice, s};

use crate::dense::multi_mode_product;
use crate::formats::als::{AlsOptions, AlsReport, relative_error};
use crate::formats::tucker::{HosvdOptions, hosvd};
use crate::{
    AsRule, BtTensor, CheckedRule, Decompose, Error, Factorized, FitSummary, Result, Scalar,
    Truncation, TruncationInfo, TuckerTensor, dense,
};

/// Block-term decomposition of `x` into `n_blocks` blocks of ranks `ranks` (clipped to
/// [`TuckerTensor::admissible_ranks`]) by ALS, initialised from the ST-HOSVD of `x` and of
/// the successive residuals (`seed` completes rank-deficient starts). See the
/// [module docs](self).
///
/// Returns the tensor (every block with orthonormal factors) and the report: relative
/// error of the start and after every sweep (non-increasing), sweeps done, convergence.
///
/// # Errors
/// - [`Error::Empty`] / [`Error::NonFinite`] for an empty tensor or NaN/Inf entries;
/// - [`Error::ShapeMismatch`] if `ranks` has not one entry per mode;
/// - [`Error::InvalidParameter`] for `n_blocks == 0`, a zero rank or invalid options.
///
/// # Example
/// ```
/// use tnet::formats::bt::bt_als;
/// use tnet::formats::AlsOptions;
/// use tnet::{BtTensor, Factorized};
/// let truth = BtTensor::<f64>::random(&[8, 8, 8], &[2, 2, 2], 2, 5).unwrap();
/// let x = truth.to_dense();
/// let opts = AlsOptions::default().with_max_iter(500).with_tol(1e-12);
/// let (y, report) = bt_als(x.view(), 2, &[2, 2, 2], 0, &opts).unwrap();
/// assert!(report.errors.windows(2).all(|w| w[1] <= w[0]));
/// assert!(report.final_error() < 1e-6);
/// assert_eq!(y.n_params(), 2 * (3 * 8 * 2 + 8));
/// ```
pub fn bt_als<T: Scalar>(
    x: ArrayViewD<'_, T>,
    n_blocks: usize,
    ranks: &[usize],
    seed: u64,
    opts: &AlsOptions,
) -> Result<(BtTensor<T>, AlsReport<T>)> {
    let opts = opts.check()?;
    dense::check_tensor("bt_als", &x)?;
    if n_blocks == 0 {
        return Err(Error::param("n_blocks", "must be at least 1"));
    }
    let ranks = TuckerTensor::<T>::admissible_ranks(x.shape(), ranks)?;
    crate::limits::check_block_term::<T>("the block-term blocks", x.shape(), &ranks, n_blocks)?;
    // Entries near overflow or underflow: fit x / c and scale the cores back by c.
    let scaled = crate::linalg::unit_scaled("bt_als", x.view())?;
    let (x, c) = match &scaled {
        Some((xs, c)) => (xs.view(), Some(*c)),
        None => (x.reborrow(), None),
    };
    let blocks = initialise(x.view(), n_blocks, &ranks, seed)?;
    iterate(x, blocks, &opts, c)
}

/// BT-ALS started from `init` (any block-term tensor of the shape of `x`; its blocks are
/// orthogonalised first, their ranks kept). See the [module docs](self).
///
/// # Errors
/// [`Error::ShapeMismatch`] if the shapes differ; [`Error::Empty`] / [`Error::NonFinite`]
/// for a bad `x`; [`Error::InvalidParameter`] for invalid options.
pub fn bt_als_refine<T: Scalar>(
    x: ArrayViewD<'_, T>,
    init: &BtTensor<T>,
    opts: &AlsOptions,
) -> Result<(BtTensor<T>, AlsReport<T>)> {
    let opts = opts.check()?;
    dense::check_tensor("bt_als_refine", &x)?;
    if x.shape() != init.shape() {
        return Err(Error::ShapeMismatch {
            context: "bt_als_refine (tensor and initial guess)",
            expected: x.shape().to_vec(),
            got: init.shape().to_vec(),
        });
    }
    let scaled = crate::linalg::unit_scaled("bt_als_refine", x.view())?;
    let (x, c) = match &scaled {
        Some((xs, c)) => (xs.view(), Some(*c)),
        None => (x.reborrow(), None),
    };
    let blocks = init
        .blocks()
        .iter()
        .map(|b| {
            let mut block = Block::from_tucker(b.orthogonalize());
            if let Some(c) = c {
                block.core.mapv_inplace(|v| v / c);
            }
            block
        })
        .collect();
    iterate(x, blocks, &opts, c)
}

/// A block in the working form: orthonormal factors.
#[derive(Clone)]
struct Block<T> {
    core: ArrayD<T>,
    factors: Vec<Array2<T>>,
}

impl<T: Scalar> Block<T> {
    fn from_tucker(t: TuckerTensor<T>) -> Self {
        let (core, factors) = t.into_parts();
        Self { core, factors }
    }

    fn to_dense(&self) -> ArrayD<T> {
        let ops: Vec<(usize, ArrayView2<'_, T>)> = self
            .factors
            .iter()
            .enumerate()
            .map(|(k, u)| (k, u.view()))
            .collect();
        multi_mode_product(self.core.view(), &ops)
    }
}

/// Greedy deflation by ST-HOSVD, completing rank-deficient blocks (module docs).
fn initialise<T: Scalar>(
    x: ArrayViewD<'_, T>,
    n_blocks: usize,
    ranks: &[usize],
    seed: u64,
) -> Result<Vec<Block<T>>> {
    let mut g = dense::rng(seed);
    let opts = HosvdOptions::default().with_mode_ranks(ranks.to_vec());
    let mut residual = x.to_owned();
    let mut blocks = Vec::with_capacity(n_blocks);
    for _ in 0..n_blocks {
        let (t, _) = hosvd(residual.view(), &Truncation::exact(), &opts)?;
        let (mut core, mut factors) = t.into_parts();
        for (k, u) in factors.iter_mut().enumerate() {
            if u.ncols() < ranks[k] {
                *u = complete_orthonormal(u.view(), ranks[k], &mut g);
                let mut padded_shape = core.shape().to_vec();
                padded_shape[k] = ranks[k];
                let mut padded = ArrayD::<T>::zeros(IxDyn(&padded_shape));
                let have = core.shape()[k];
                padded
                    .slice_axis_mut(Axis(k), Slice::from(0..have))
                    .assign(&core);
                core = padded;
            }
        }
        let block = Block { core, factors };
        residual -= &block.to_dense();
        blocks.push(block);
    }
    Ok(blocks)
}

/// `[U, V]` with `V` random and orthonormal to `U` (`U` has orthonormal columns).
fn complete_orthonormal<T: Scalar, R: rand::Rng>(
    u: ArrayView2<'_, T>,
    r: usize,
    g: &mut R,
) -> Array2<T> {
    let (n, have) = u.dim();
    let mut m: Array2<T> = dense::random_normal_with::<T, R>(&[n, r], g)
        .into_dimensionality()
        .expect("2-D");
    m.slice_mut(s![.., ..have]).assign(&u);
    let (q, _) = crate::linalg::qr(m.view());
    // QR keeps span(U) in the first columns, so the tensor is unchanged up to the signs
    // of those columns; restore U exactly.
    let mut q = q;
    q.slice_mut(s![.., ..have]).assign(&u);
    q
}

/// BT-ALS sweeps from `blocks`; the result's cores are multiplied by `scale` (the divisor
/// the caller applied to the tensor).
fn iterate<T: Scalar>(
    x: ArrayViewD<'_, T>,
    mut blocks: Vec<Block<T>>,
    opts: &AlsOptions,
    scale: Option<T>,
) -> Result<(BtTensor<T>, AlsReport<T>)> {
    let norm_x = dense::norm(x.view());
    let mut report = AlsReport::start(relative_error(
        x.view(),
        norm_x,
        sum_dense(&blocks, x.shape()).view(),
    ));
    while !report.meets_target(opts.target) && report.iterations < opts.max_iter {
        let mut candidate = blocks.clone();
        for k in 0..x.ndim() {
            update_factors(x.view(), &mut candidate, k)?;
        }
        let residual = update_cores(x.view(), &mut candidate);
        let mut err = if norm_x == T::zero() {
            dense::norm(residual.view())
        } else {
            dense::norm(residual.view()) / norm_x
        };
        if report.iterations > 0 {
            // Line search (extrapolation): try P_prev + s (P_new − P_prev), s = i^(1/3).
            let step = T::cast(((report.iterations + 1) as f64).powf(1.0 / 3.0));
            let extrapolated = extrapolate(&blocks, &candidate, step);
            let e = relative_error(x.view(), norm_x, sum_dense(&extrapolated, x.shape()).view());
            if e < err {
                err = e;
                candidate = extrapolated;
            }
        }
        if report.record(err, opts.tol) {
            blocks = candidate;
        }
    }
    let tuckers = blocks
        .into_iter()
        .map(|b| {
            let core = match scale {
                Some(c) => b.core.mapv(|v| v * c),
                None => b.core,
            };
            TuckerTensor::from_parts(core, b.factors)
        })
        .collect();
    Ok((BtTensor::try_new(tuckers)?, report))
}

fn sum_dense<T: Scalar>(blocks: &[Block<T>], shape: &[usize]) -> ArrayD<T> {
    let mut y = ArrayD::<T>::zeros(IxDyn(shape));
    for b in blocks {
        y += &b.to_dense();
    }
    y
}

/// Joint least-squares update of every block's mode-`k` factor, then re-orthonormalisation.
fn update_factors<T: Scalar>(
    x: ArrayViewD<'_, T>,
    blocks: &mut [Block<T>],
    k: usize,
) -> Result<()> {
    let d = x.ndim();
    let cols: Vec<Array2<T>> = blocks
        .iter()
        .map(|b| {
            let ops: Vec<(usize, ArrayView2<'_, T>)> = (0..d)
                .filter(|&j| j != k)
                .map(|j| (j, b.factors[j].view()))
                .collect();
            let t = multi_mode_product(b.core.view(), &ops);
            dense::unfold(t.view(), k)
                .expect("valid mode")
                .reversed_axes()
        })
        .collect();
    let views: Vec<ArrayView2<'_, T>> = cols.iter().map(Array2::view).collect();
    let w = ndarray::concatenate(Axis(1), &views).expect("same row count");
    drop(cols);
    let rhs = dense::unfold(x.view(), k)?;
    let ls = crate::linalg::lstsq(w.view(), rhs.t())?;
    drop(w);
    let mut offset = 0;
    for b in blocks.iter_mut() {
        let r = b.core.shape()[k];
        let a = ls.x.slice(s![offset..offset + r, ..]);
        offset += r;
        let (q, rr) = crate::linalg::qr(a.t());
        b.core = dense::mode_product(b.core.view(), rr.view(), k)?;
        b.factors[k] = q;
    }
    Ok(())
}

/// Block Gauss–Seidel update of the cores (orthonormal factors); returns the residual.
fn update_cores<T: Scalar>(x: ArrayViewD<'_, T>, blocks: &mut [Block<T>]) -> ArrayD<T> {
    let mut residual = x.to_owned();
    for b in blocks.iter() {
        residual -= &b.to_dense();
    }
    for b in blocks.iter_mut() {
        let ops: Vec<(usize, ArrayView2<'_, T>)> = b
            .factors
            .iter()
            .enumerate()
            .map(|(k, u)| (k, u.t()))
            .collect();
        let delta = multi_mode_product(residual.view(), &ops);
        let ops: Vec<(usize, ArrayView2<'_, T>)> = b
            .factors
            .iter()
            .enumerate()
            .map(|(k, u)| (k, u.view()))
            .collect();
        residual -= &multi_mode_product(delta.view(), &ops);
        b.core += &delta;
    }
    residual
}

/// `P + s (C − P)` for every core and factor, re-orthonormalised (the tensor is kept).
fn extrapolate<T: Scalar>(prev: &[Block<T>], cur: &[Block<T>], s: T) -> Vec<Block<T>> {
    prev.iter()
        .zip(cur)
        .map(|(p, c)| {
            let core = &p.core + &((&c.core - &p.core) * s);
            let factors = p
                .factors
                .iter()
                .zip(&c.factors)
                .map(|(a, b)| a + &((b - a) * s))
                .collect();
            Block::from_tucker(TuckerTensor::from_parts(core, factors).orthogonalize())
        })
        .collect()
}

/// Parameters of the block-term format (the other formats ignore them).
///
/// BT-ALS ([`bt_als`](fn@crate::formats::bt::bt_als)) fits `blocks` Tucker blocks of
/// equal ranks `(R, .., R)` (clipped to
/// [`TuckerTensor::admissible_ranks`]). The block rank comes from the [`Truncation`] rule:
/// - a rank cap without a tolerance fixes `R`;
/// - with a tolerance, `R` is the smallest block rank (up to the cap, or the largest
///   mode size) whose fit meets the error budget `rule.budget(‖X‖)`, found by doubling
///   and then bisecting `R` (one BT-ALS run per trial); at `R = max n_k` the first block
///   alone is exact, so without a cap the budget is always met up to rounding;
/// - with neither, `R = max n_k`.
///
/// # Example
/// ```
/// use tnet::compress::{decompose, DecomposeOptions};
/// use tnet::formats::bt::BtOptions;
/// use tnet::formats::FormatKind;
/// use tnet::{BtTensor, Factorized, Truncation};
/// let x = BtTensor::<f64>::random(&[5, 6, 7], &[2, 2, 2], 3, 1).unwrap().to_dense();
/// let opts = DecomposeOptions {
///     bt: BtOptions { blocks: 3, ..BtOptions::default() },
///     ..DecomposeOptions::new(FormatKind::Bt, Truncation::rel(1e-4))
/// };
/// let (c, report) = decompose(x.view(), &opts).unwrap();
/// assert!(report.rel_error <= 1e-4);
/// assert_eq!(c.decomposition.blocks(), Some(3));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BtOptions {
    /// The number of blocks `N_b` (at least 1).
    pub blocks: usize,
    /// Sweep limit and stopping tolerance of each BT-ALS run.
    pub als: AlsOptions,
    /// Seed completing rank-deficient starts (see [`bt_als`](crate::formats::bt)).
    pub seed: u64,
}

impl Default for BtOptions {
    /// 2 blocks; at most 200 sweeps per run, stopping when a sweep lowers the error by
    /// less than `1e-7` relative; seed 0.
    fn default() -> Self {
        Self {
            blocks: 2,
            als: AlsOptions::default().with_max_iter(200).with_tol(1e-7),
            seed: 0,
        }
    }
}

impl BtOptions {
    /// Validates: at least one block, valid ALS options.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming `blocks` or `tol`.
    pub fn check(&self) -> Result<Self> {
        if self.blocks == 0 {
            return Err(Error::param("blocks", "must be at least 1"));
        }
        self.als.check()?;
        Ok(*self)
    }
}

impl<T: Scalar> Decompose<T> for BtTensor<T> {
    /// The block count and the fit's options.
    type Structure = BtOptions;

    /// [`BtOptions::default`].
    fn default_structure(_order: usize) -> Result<BtOptions> {
        Ok(BtOptions::default())
    }

    /// BT-ALS with the block rank chosen by the rule (see [`BtOptions`]); the returned
    /// `error_bound` is the achieved error and `fit` says how the fit ran.
    fn decompose(
        x: ArrayViewD<'_, T>,
        opts: &BtOptions,
        rule: &impl AsRule,
    ) -> Result<(Self, TruncationInfo<T>)> {
        bt_search(x, &rule.as_rule()?, &opts.check()?)
    }
}

/// BT-ALS with the block rank chosen by `rule` (see [`BtOptions`]).
fn bt_search<T: Scalar>(
    x: ArrayViewD<'_, T>,
    rule: &CheckedRule,
    opts: &BtOptions,
) -> Result<(BtTensor<T>, TruncationInfo<T>)> {
    crate::dense::check_tensor("block-term decomposition", &x)?;
    let norm = crate::dense::norm(x.view()).as_f64();
    let full = x.shape().iter().copied().max().unwrap_or(1).max(1);
    let cap = rule.max_rank().unwrap_or(full).min(full);
    let mut trials = 0;
    // The reports' errors are relative to ‖X‖ (absolute for X = 0): the budget in the same
    // unit, so that a run stopping on its target is a run meeting the budget.
    let scale = if norm > 0.0 { norm } else { 1.0 };
    let budget = rule.budget(norm) / scale;
    // A run may stop as soon as its error meets the budget.
    let als = if rule.has_tolerance() {
        opts.als.with_target(opts.als.target.max(budget))
    } else {
        opts.als
    };
    let mut run = |r: usize| -> Result<(BtTensor<T>, AlsReport<T>, f64)> {
        trials += 1;
        let ranks = vec![r; x.ndim()];
        let (y, report) = bt_als(x.view(), opts.blocks, &ranks, opts.seed, &als)?;
        let err = report.final_error().as_f64();
        Ok((y, report, err))
    };
    let (y, report, err) = if rule.has_tolerance() {
        // Doubling: the first rank meeting the budget, or the cap.
        let (mut lo, mut r) = (0, 1);
        let mut best = loop {
            let fit = run(r)?;
            if fit.2 <= budget || r == cap {
                break fit;
            }
            lo = r;
            r = (2 * r).min(cap);
        };
        // Bisection between the last failing and the first passing rank.
        if best.2 <= budget {
            let mut hi = r;
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                let fit = run(mid)?;
                if fit.2 <= budget {
                    hi = mid;
                    best = fit;
                } else {
                    lo = mid;
                }
            }
        }
        best
    } else {
        run(cap)?
    };
    let fit = FitSummary {
        sweeps: report.iterations,
        converged: report.converged,
        trials,
    };
    Ok((
        y,
        TruncationInfo::fitted(T::cast(err * scale), T::cast(norm), fit),
    ))
}
