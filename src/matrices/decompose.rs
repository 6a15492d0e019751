//! The block-term fit behind `BtMatrix::from_dense`, applied to the paired tensor of `W`
//! (the TT and TR matrices use [`tt_svd`](crate::formats::tt) and
//! [`tr_svd`](crate::formats::tr) on it).
//!
//! - [`bt_fit`]: block-term decomposition by block coordinate descent: each block is the
//!   Tucker approximation (one HOOI sweep, De Lathauwer et al. 2000) of the data minus the
//!   other blocks, initialised by successive truncated HOSVDs of the residual. No SVD-based
//!   bound exists for block terms; the returned error is the achieved one.

use ndarray::{Array2, ArrayD, ArrayViewD, s};

use crate::linalg::{MatrixTruncation, svd, unfolding_left_svd};
use crate::{Error, Result, Scalar, Truncation, TruncationInfo, dense};

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
