//! The small decompositions behind `from_dense` of the TT, TR and block-term matrices,
//! applied to the paired (or split) tensor of `W`.
//!
//! - [`tt_svd`]: TT-SVD (Oseledets 2011, Algorithm 1): `d − 1` sequential truncated SVDs
//!   of the remainder, each with the tolerance `budget / √(d−1)`, so
//!   `‖X − Y‖ ≤ √(Σ discarded²) ≤ budget`. Cost dominated by the first SVD,
//!   `O(n_1 N min(n_1, N / n_1))`.
//! - [`tr_svd`]: TR-SVD (Zhao et al., *Tensor ring decomposition*, 2016, Algorithm 1):
//!   the first SVD gives the rank `r_0 r_1`, split as evenly as the rank cap allows, the
//!   boundary rank `r_0` is moved to the end and a TT-SVD finishes. Same bound.
//! - [`bt_fit`]: block-term decomposition by block coordinate descent: each block is the
//!   Tucker approximation (one HOOI sweep, De Lathauwer et al. 2000) of the data minus the
//!   other blocks, initialised by successive truncated HOSVDs of the residual. No SVD-based
//!   bound exists for block terms; the returned error is the achieved one.

use ndarray::{Array2, ArrayD, ArrayViewD, Axis, IxDyn, s};

use crate::linalg::{MatrixTruncation, svd, unfolding_left_svd};
use crate::{Error, Result, Scalar, Truncation, TruncationInfo, dense};

fn reshape<T: Scalar>(a: Array2<T>, shape: &[usize]) -> ArrayD<T> {
    let a = if a.is_standard_layout() {
        a
    } else {
        a.as_standard_layout().into_owned()
    };
    a.into_shape_with_order(IxDyn(shape))
        .expect("internal invariant: sizes agree")
}

/// `diag(s) · vt` for the first `r` singular triplets.
fn scaled_vt<T: Scalar>(s: &[T], vt: &Array2<T>, r: usize) -> Array2<T> {
    let mut m = vt.slice(s![..r, ..]).to_owned();
    for (mut row, &sv) in m.axis_iter_mut(Axis(0)).zip(s) {
        row *= sv;
    }
    m
}

/// The TT-SVD sweep on a remainder of shape `(r_prev * n_k, rest)`, from mode `first` to
/// the end; the last core gets the trailing size `last_rank`.
#[allow(clippy::too_many_arguments)]
fn tt_sweep<T: Scalar>(
    mut c: Array2<T>,
    shape: &[usize],
    first: usize,
    mut r_prev: usize,
    last_rank: usize,
    rule: MatrixTruncation<T>,
    cores: &mut Vec<ArrayD<T>>,
    sv: &mut Vec<Vec<T>>,
    discarded: &mut Vec<T>,
) -> Result<()> {
    let d = shape.len();
    for &n in &shape[first..d - 1] {
        let rows = r_prev * n;
        let total = c.len();
        let c2 = reshape(c, &[rows, total / rows])
            .into_dimensionality()
            .expect("2-D");
        let f = svd(c2.view(), rule, true)?;
        let r = f.rank;
        cores.push(reshape(f.u, &[r_prev, n, r]));
        c = scaled_vt(&f.singular_values, f.vt.as_ref().expect("asked for V"), r);
        sv.push(f.singular_values);
        discarded.push(f.discarded);
        r_prev = r;
    }
    cores.push(reshape(c, &[r_prev, shape[d - 1], last_rank]));
    sv.push(Vec::new());
    discarded.push(T::zero());
    Ok(())
}

/// TT-SVD of a dense tensor: cores `(r_{k-1}, n_k, r_k)`, `r_0 = r_d = 1`. See the
/// [module docs](self) for the bound.
pub(crate) fn tt_svd<T: Scalar>(
    x: ArrayViewD<'_, T>,
    rule: &Truncation,
) -> Result<(Vec<ArrayD<T>>, TruncationInfo<T>)> {
    dense::check_tensor("tt_svd", &x)?;
    let rule = rule.check()?;
    let norm = dense::norm(x.view());
    let shape = x.shape().to_vec();
    let d = shape.len();
    let data: Vec<T> = x.iter().copied().collect();
    if d == 1 {
        let core = ArrayD::from_shape_vec(IxDyn(&[1, shape[0], 1]), data).expect("size");
        return Ok((
            vec![core],
            TruncationInfo::new(vec![Vec::new()], vec![T::zero()], norm),
        ));
    }
    let mrule = rule.per_matrix(norm, d - 1);
    let c = Array2::from_shape_vec((shape[0], x.len() / shape[0]), data).expect("size");
    let (mut cores, mut sv, mut disc) = (Vec::new(), Vec::new(), Vec::new());
    tt_sweep(c, &shape, 0, 1, 1, mrule, &mut cores, &mut sv, &mut disc)?;
    Ok((cores, TruncationInfo::new(sv, disc, norm)))
}

/// The split `r_0 r_1` of a rank `q`: both factors at most `cap`, the product as large as
/// possible (at most `q`), then as balanced as possible.
fn split_rank(q: usize, cap: usize) -> (usize, usize) {
    let mut best = (1, 1);
    for r0 in 1..=q.min(cap) {
        let r1 = (q / r0).min(cap);
        if r1 < r0 {
            break;
        }
        let better =
            r0 * r1 > best.0 * best.1 || (r0 * r1 == best.0 * best.1 && r1 - r0 < best.1 - best.0);
        if better {
            best = (r0, r1);
        }
    }
    best
}

/// TR-SVD of a dense tensor: cores `(r_{k-1}, n_k, r_k)` on a ring (`r_d = r_0`). See the
/// [module docs](self) for the algorithm and the bound.
pub(crate) fn tr_svd<T: Scalar>(
    x: ArrayViewD<'_, T>,
    rule: &Truncation,
) -> Result<(Vec<ArrayD<T>>, TruncationInfo<T>)> {
    dense::check_tensor("tr_svd", &x)?;
    let rule = rule.check()?;
    let norm = dense::norm(x.view());
    let shape = x.shape().to_vec();
    let d = shape.len();
    let data: Vec<T> = x.iter().copied().collect();
    if d == 1 {
        let core = ArrayD::from_shape_vec(IxDyn(&[1, shape[0], 1]), data).expect("size");
        return Ok((
            vec![core],
            TruncationInfo::new(vec![Vec::new()], vec![T::zero()], norm),
        ));
    }
    let mrule = rule.per_matrix(norm, d - 1);
    let cap = mrule.max_rank;
    let first = MatrixTruncation {
        max_rank: cap.saturating_mul(cap),
        tol: mrule.tol,
    };
    let rest = x.len() / shape[0];
    let c = Array2::from_shape_vec((shape[0], rest), data).expect("size");
    let f = svd(c.view(), first, true)?;
    let (r0, r1) = split_rank(f.rank, cap);
    let q = r0 * r1;
    let extra: T = f.singular_values[q..f.rank].iter().map(|&v| v * v).sum();
    let first_discarded = (f.discarded * f.discarded + extra).sqrt();
    // Core 1: U (n_1 x r0 r1) -> (n_1, r0, r1) -> (r0, n_1, r1).
    let u = f.u.slice(s![.., ..q]).to_owned();
    let core1 = reshape(u, &[shape[0], r0, r1])
        .permuted_axes(IxDyn(&[1, 0, 2]))
        .as_standard_layout()
        .into_owned();
    // Remainder (r0 r1 x rest) -> (r0, r1, rest) -> (r1, rest, r0).
    let rem = scaled_vt(&f.singular_values, f.vt.as_ref().expect("asked for V"), q);
    let rem = reshape(rem, &[r0, r1, rest])
        .permuted_axes(IxDyn(&[1, 2, 0]))
        .as_standard_layout()
        .into_owned();
    let rem_len = rem.len();
    let rem = Array2::from_shape_vec(
        (r1 * shape[1], rem_len / (r1 * shape[1])),
        rem.into_raw_vec_and_offset().0,
    )
    .expect("size");
    let mut cores = vec![core1];
    let mut sv = vec![f.singular_values];
    let mut disc = vec![first_discarded];
    tt_sweep(
        rem, &shape, 1, r1, r0, mrule, &mut cores, &mut sv, &mut disc,
    )?;
    Ok((cores, TruncationInfo::new(sv, disc, norm)))
}

/// `R_k` leading left singular vectors of the mode-`k` unfolding of `y`, completed to
/// exactly `r` orthonormal columns when the unfolding has a smaller numerical rank.
fn leading_basis<T: Scalar>(
    y: ArrayViewD<'_, T>,
    k: usize,
    r: usize,
    seed: u64,
) -> Result<Array2<T>> {
    let f = unfolding_left_svd(
        y,
        &[k],
        MatrixTruncation {
            max_rank: r,
            tol: T::zero(),
        },
    )?;
    if f.rank == r {
        return Ok(f.u);
    }
    let n = f.u.nrows();
    let mut g = dense::rng(seed);
    let mut m = dense::random_normal_with::<T, _>(&[n, r], &mut g)
        .into_dimensionality::<ndarray::Ix2>()
        .expect("2-D");
    m.slice_mut(s![.., ..f.rank]).assign(&f.u);
    Ok(crate::linalg::qr(m.view()).0)
}

/// `x ×_k A_k^T` for every `k` in `modes`.
fn project<T: Scalar>(
    x: ArrayViewD<'_, T>,
    factors: &[Array2<T>],
    skip: Option<usize>,
) -> Result<ArrayD<T>> {
    let mut y = x.to_owned();
    for (k, a) in factors.iter().enumerate() {
        if Some(k) != skip {
            y = dense::mode_product(y.view(), a.t(), k)?;
        }
    }
    Ok(y)
}

/// `g ×_k A_k` for every `k`.
fn expand<T: Scalar>(g: ArrayViewD<'_, T>, factors: &[Array2<T>]) -> Result<ArrayD<T>> {
    let mut y = g.to_owned();
    for (k, a) in factors.iter().enumerate() {
        y = dense::mode_product(y.view(), a.view(), k)?;
    }
    Ok(y)
}

/// One block of a block-term decomposition.
#[derive(Clone)]
struct Block<T> {
    factors: Vec<Array2<T>>,
    core: ArrayD<T>,
}

/// `M^+ = V diag(1/s) U^T` over the singular values above `n · eps · s_max`.
fn pinv<T: Scalar>(m: &Array2<T>) -> Result<Array2<T>> {
    let f = svd(m.view(), MatrixTruncation::exact(), true)?;
    let vt = f.vt.expect("asked for V");
    let n = m.nrows().max(m.ncols());
    let cut =
        f.singular_values.first().copied().unwrap_or(T::zero()) * T::epsilon() * T::cast(n as f64);
    let mut out = Array2::<T>::zeros((m.ncols(), m.nrows()));
    for (i, &sv) in f.singular_values.iter().enumerate().take(f.rank) {
        if sv > cut && sv > T::zero() {
            let v = vt.row(i);
            let u = f.u.column(i);
            for (a, &va) in v.iter().enumerate() {
                for (b, &ub) in u.iter().enumerate() {
                    out[[a, b]] += va * ub / sv;
                }
            }
        }
    }
    Ok(out)
}

fn unfold2<T: Scalar>(x: &ArrayD<T>, k: usize) -> Array2<T> {
    dense::unfold(x.view(), k).expect("valid mode")
}

/// `Σ_b G_b ×_1 A_{b,1} .. ×_d A_{b,d}`.
fn assemble<T: Scalar>(blocks: &[Block<T>]) -> Result<ArrayD<T>> {
    let mut w: Option<ArrayD<T>> = None;
    for b in blocks {
        let e = expand(b.core.view(), &b.factors)?;
        w = Some(match w {
            None => e,
            Some(w) => w + e,
        });
    }
    Ok(w.expect("at least one block"))
}

/// One sweep of alternating least squares: for each mode, the factors of that mode of all
/// blocks at once (normal equations solved by pseudo-inverse), each re-orthonormalised by
/// QR with `R` absorbed in its core; then the cores block by block. Every update is an
/// exact least-squares solve given the rest, so the error does not increase.
fn als_sweep<T: Scalar>(x: &ArrayD<T>, blocks: &mut [Block<T>]) -> Result<()> {
    let d = x.ndim();
    let nb = blocks.len();
    for k in 0..d {
        let rk = blocks[0].factors[k].ncols();
        let pk = x.shape()[k];
        let mut rhs = Array2::<T>::zeros((pk, nb * rk));
        let mut gram = Array2::<T>::zeros((nb * rk, nb * rk));
        for (b, bb) in blocks.iter().enumerate() {
            let y = project(x.view(), &bb.factors, Some(k))?;
            let gk = unfold2(&bb.core, k);
            rhs.slice_mut(s![.., b * rk..(b + 1) * rk])
                .assign(&unfold2(&y, k).dot(&gk.t()));
            for (c, cc) in blocks.iter().enumerate() {
                let mut h = cc.core.clone();
                for j in (0..d).filter(|&j| j != k) {
                    let m = bb.factors[j].t().dot(&cc.factors[j]);
                    h = dense::mode_product(h.view(), m.view(), j)?;
                }
                gram.slice_mut(s![b * rk..(b + 1) * rk, c * rk..(c + 1) * rk])
                    .assign(&gk.dot(&unfold2(&h, k).t()));
            }
        }
        let all = rhs.dot(&pinv(&gram)?);
        for (b, bb) in blocks.iter_mut().enumerate() {
            let a = all.slice(s![.., b * rk..(b + 1) * rk]).to_owned();
            let (q, r) = crate::linalg::qr(a.view());
            if q.ncols() == rk {
                bb.factors[k] = q;
                bb.core = dense::mode_product(bb.core.view(), r.view(), k)?;
            } else {
                bb.factors[k] = a;
            }
        }
    }
    // Cores, block by block (Gauss-Seidel): G_b = (X - Σ_{c≠b} W_c) ×_k A_{b,k}^+.
    let mut w_all = assemble(blocks)?;
    for bb in blocks.iter_mut() {
        let old = expand(bb.core.view(), &bb.factors)?;
        let r = x - &(&w_all - &old);
        let pinvs = bb
            .factors
            .iter()
            .map(|a| pinv(a).map(|p| p.reversed_axes()))
            .collect::<Result<Vec<_>>>()?;
        bb.core = project(r.view(), &pinvs, None)?;
        let new = expand(bb.core.view(), &bb.factors)?;
        w_all = w_all - old + new;
    }
    Ok(())
}

/// Block-term decomposition of `x` with `n_blocks` Tucker blocks of multilinear ranks
/// `ranks`; returns per block the factors `(p_k, R_k)` then the core, and the achieved
/// error (`error_bound` is the exact error of the result).
///
/// Initialisation: successive truncated HOSVDs of the residual. Then alternating least
/// squares (De Lathauwer and Nion, *Decompositions of a higher-order tensor in block terms,
/// Part III: alternating least squares algorithms*, SIMAX 2008), see `als_sweep`.
/// Stops when the error meets the rule's budget, when a sweep improves it by less than
/// `1e-12` relatively, or after `max_iter` sweeps. Cost per sweep `O(N_b^2 d^2 R P)` for a
/// tensor of `P` entries and ranks at most `R`.
pub(crate) fn bt_fit<T: Scalar>(
    x: ArrayViewD<'_, T>,
    n_blocks: usize,
    ranks: &[usize],
    rule: &Truncation,
    max_iter: usize,
) -> Result<(Vec<ArrayD<T>>, TruncationInfo<T>)> {
    dense::check_tensor("bt_fit", &x)?;
    let rule = rule.check()?;
    if n_blocks == 0 {
        return Err(Error::param("n_blocks", "at least one block is needed"));
    }
    let x = x.to_owned();
    let norm = dense::norm(x.view());
    let budget = T::cast(rule.budget(norm.as_f64()));
    let floor = norm * T::epsilon() * T::cast(16.0);
    let mut e = x.clone();
    let mut blocks: Vec<Block<T>> = Vec::with_capacity(n_blocks);
    for b in 0..n_blocks {
        let factors = (0..x.ndim())
            .map(|k| leading_basis(e.view(), k, ranks[k], 1000 + b as u64))
            .collect::<Result<Vec<_>>>()?;
        let core = project(e.view(), &factors, None)?;
        e -= &expand(core.view(), &factors)?;
        blocks.push(Block { factors, core });
    }
    let mut err = dense::norm(e.view());
    for it in 0..max_iter {
        if err <= budget || err <= floor {
            break;
        }
        let prev = blocks.clone();
        als_sweep(&x, &mut blocks)?;
        let mut new_err = dense::norm((&x - &assemble(&blocks)?).view());
        // Line search (Bro 1998; De Lathauwer and Nion 2008): extrapolate along the last
        // step by rho = it^(1/3) and keep the result if it is better.
        if it >= 2 {
            let rho = T::cast(((it + 1) as f64).cbrt());
            let trial: Vec<Block<T>> = prev
                .iter()
                .zip(&blocks)
                .map(|(p, c)| Block {
                    factors: p
                        .factors
                        .iter()
                        .zip(&c.factors)
                        .map(|(a, b)| a + &((b - a) * rho))
                        .collect(),
                    core: &p.core + &((&c.core - &p.core) * rho),
                })
                .collect();
            let trial_err = dense::norm((&x - &assemble(&trial)?).view());
            if trial_err < new_err {
                blocks = trial;
                new_err = trial_err;
            }
        }
        let stalled = err - new_err <= T::cast(1e-12) * err;
        err = new_err;
        if stalled {
            break;
        }
    }
    let mut cores = Vec::with_capacity(n_blocks * (x.ndim() + 1));
    for block in blocks {
        cores.extend(block.factors.into_iter().map(|f| f.into_dyn()));
        cores.push(block.core);
    }
    Ok((
        cores,
        TruncationInfo::new(vec![Vec::new()], vec![err], norm),
    ))
}
