//! Which tensor format compresses best? HT, TT, TR, Tucker and block-term side by side.
//!
//! Run: `cargo run --release --example compare_formats` (add `-- --quick` for a small run).
//!
//! Two tensors are compressed by all five formats of tnet, through the one
//! [`Factorized`] trait and the one [`Truncation`] rule:
//!
//! - a smooth function `f(x) = 1 / (1 + x_1 + .. + x_d)` sampled on a grid of `[0, 1]^d`,
//! - a random tensor-train of rank 3 plus Gaussian noise of relative size `1e-4`.
//!
//! For each tensor, two tables:
//!
//! 1. **same tolerance**: every format asked for the same relative error. HT, TT, TR and
//!    Tucker meet it by construction (their SVD-based algorithms guarantee
//!    `‖X − Y‖ ≤ ε ‖X‖`); block-term (2 blocks) has no SVD-based algorithm, so its ranks
//!    are found by a search over ALS fits (its time includes that search).
//! 2. **same parameter budget**: every format gets the largest rank cap whose parameter
//!    count stays within the budget, and the table shows the error it achieves.
//!
//! What you learn: the formats agree on "low rank" only loosely. The smooth function is
//! compressed well by all of them; the tensor train is cheapest in TT and TR, the HT on
//! the balanced tree sees ranks up to `3 · 3 = 9` at the nodes that cut the train in two
//! places, and its multilinear (Tucker) ranks are up to 9 too, so Tucker and block-term pay
//! for a dense core. Under a tight budget only the format that matches the structure
//! reaches the noise level. The columns are: parameters stored, compression ratio (dense entries per
//! parameter), relative error measured against the dense tensor, the rigorous error
//! bound the algorithm reported (`-` for ALS, which has none), the largest rank, and the
//! wall time.

use std::time::Instant;

use ndarray::{ArrayD, IxDyn};
use tnet::formats::AlsOptions;
use tnet::formats::bt::bt_als;
use tnet::{
    BtTensor, DimTree, Factorized, HtTensor, TrTensor, Truncation, TruncationInfo, TtTensor,
    TuckerTensor, dense,
};

/// Sweeps allowed to every block-term ALS fit (it stops earlier when it stalls).
const ALS_SWEEPS: usize = 10;
/// Number of blocks of the block-term decompositions.
const BT_BLOCKS: usize = 2;

fn main() -> tnet::Result<()> {
    let quick = std::env::args().any(|a| a == "--quick");
    let (d, n) = if quick { (5, 8) } else { (5, 12) };
    let shape = vec![n; d];
    let cases = [
        ("smooth 1/(1+x_1+..+x_d)", smooth(&shape), 1e-4),
        ("TT rank 3 + 1e-4 noise", noisy_tt(&shape, 3, 1e-4)?, 1e-3),
    ];
    println!(
        "tnet: five formats on {d}-way tensors of size {n}^{d} = {} entries\n",
        n.pow(d as u32)
    );
    // Room for a rank-3 tensor train with some slack: tight enough that the formats differ.
    let budget = 8 * d * n;
    for (name, x, eps) in &cases {
        print_table(
            &format!("{name}: same tolerance, rel eps = {eps:.0e}"),
            &at_tolerance(x, *eps)?,
        );
        print_table(
            &format!("{name}: same budget, at most {budget} parameters"),
            &at_budget(x, budget)?,
        );
    }
    Ok(())
}

/// One line of a table: what a format achieved on one tensor.
struct Row {
    format: &'static str,
    params: usize,
    ratio: f64,
    rel_error: f64,
    bound: Option<f64>,
    max_rank: usize,
    millis: f64,
}

impl Row {
    /// Measures `y` against the dense `x` (the error is computed, not taken from a bound).
    fn new<F: Factorized<f64>>(
        format: &'static str,
        x: &ArrayD<f64>,
        y: &F,
        bound: Option<f64>,
        max_rank: usize,
        start: Instant,
    ) -> tnet::Result<Self> {
        let millis = start.elapsed().as_secs_f64() * 1e3;
        Ok(Self {
            format,
            params: y.n_params(),
            ratio: y.compression_ratio(),
            rel_error: dense::rel_error(x.view(), y.to_dense().view())?,
            bound,
            max_rank,
            millis,
        })
    }
}

/// Times one SVD-based decomposition (`fit`) of `x` and measures it: the row, and the
/// decomposition for further use.
fn svd_row<F: Factorized<f64>>(
    format: &'static str,
    x: &ArrayD<f64>,
    fit: impl FnOnce() -> tnet::Result<(F, TruncationInfo<f64>)>,
    max_rank: impl FnOnce(&F) -> usize,
) -> tnet::Result<(Row, F)> {
    let t = Instant::now();
    let (y, info) = fit()?;
    let rank = max_rank(&y);
    Ok((
        Row::new(format, x, &y, Some(info.rel_error_bound()), rank, t)?,
        y,
    ))
}

/// `f(i) = 1 / (1 + Σ_k t_k)` with `t_k = i_k / (n_k − 1)`: smooth, so every format
/// compresses it with small ranks.
fn smooth(shape: &[usize]) -> ArrayD<f64> {
    ArrayD::from_shape_fn(IxDyn(shape), |i| {
        let s: f64 = (0..shape.len())
            .map(|k| i[k] as f64 / (shape[k] - 1) as f64)
            .sum();
        1.0 / (1.0 + s)
    })
}

/// A random TT tensor of rank `rank` (seeded) plus Gaussian noise of relative size
/// `noise`.
fn noisy_tt(shape: &[usize], rank: usize, noise: f64) -> tnet::Result<ArrayD<f64>> {
    let clean = TtTensor::<f64>::random(shape, rank, 7)?.to_dense();
    let e = dense::random_normal::<f64>(shape, 8);
    let scale = noise * dense::norm(clean.view()) / dense::norm(e.view());
    Ok(&clean + &(&e * scale))
}

/// Every format at relative tolerance `eps`.
fn at_tolerance(x: &ArrayD<f64>, eps: f64) -> tnet::Result<Vec<Row>> {
    let rule = Truncation::rel(eps);
    let tree = DimTree::balanced(x.ndim())?;
    let (ht, _) = svd_row(
        "HT",
        x,
        || HtTensor::from_dense(x.view(), &tree, &rule),
        |y| y.max_rank(),
    )?;
    let (tt, _) = svd_row(
        "TT",
        x,
        || TtTensor::from_dense(x.view(), &rule),
        |y| y.max_rank(),
    )?;
    let (tr, _) = svd_row(
        "TR",
        x,
        || TrTensor::from_dense(x.view(), &rule),
        |y| y.max_rank(),
    )?;
    let (tk, tucker) = svd_row(
        "Tucker",
        x,
        || TuckerTensor::from_dense(x.view(), &rule),
        |y| max_of(&y.ranks()),
    )?;
    let mut rows = vec![ht, tt, tr, tk];

    let t = Instant::now();
    let (y, r) = bt_at_tolerance(x, eps, &tucker.ranks())?;
    rows.push(Row::new("BT (2 blocks)", x, &y, None, r, t)?);
    Ok(rows)
}

/// The block-term tensor with the smallest uniform rank cap `r` whose ALS fit meets
/// `eps`, by bisection over `r`. At the Tucker ranks the fit always meets it (ALS starts
/// from the ST-HOSVD at those ranks and never gets worse), so the search is bounded.
fn bt_at_tolerance(
    x: &ArrayD<f64>,
    eps: f64,
    tucker_ranks: &[usize],
) -> tnet::Result<(BtTensor<f64>, usize)> {
    let capped = |r: usize| -> Vec<usize> { tucker_ranks.iter().map(|&t| t.min(r)).collect() };
    let (mut lo, mut hi) = (1, max_of(tucker_ranks));
    let mut best = bt_fit(x, &capped(hi))?;
    while lo < hi {
        let mid = (lo + hi) / 2;
        let y = bt_fit(x, &capped(mid))?;
        if dense::rel_error(x.view(), y.to_dense().view())? <= eps {
            (hi, best) = (mid, y);
        } else {
            lo = mid + 1;
        }
    }
    Ok((best, hi))
}

/// BT-ALS with [`BT_BLOCKS`] blocks of `ranks`, at most [`ALS_SWEEPS`] sweeps.
fn bt_fit(x: &ArrayD<f64>, ranks: &[usize]) -> tnet::Result<BtTensor<f64>> {
    let opts = AlsOptions::default()
        .with_max_iter(ALS_SWEEPS)
        .with_tol(1e-8);
    Ok(bt_als(x.view(), BT_BLOCKS, ranks, 0, &opts)?.0)
}

/// Every format with the largest rank cap whose parameter count stays within `budget`.
///
/// The count for a cap `r` is that of a random tensor of the format with cap `r` (an upper
/// bound: a decomposition may find smaller ranks), so only the chosen cap is fitted.
fn at_budget(x: &ArrayD<f64>, budget: usize) -> tnet::Result<Vec<Row>> {
    let shape = x.shape().to_vec();
    let d = shape.len();
    let tree = DimTree::balanced(d)?;
    let r = largest_cap(budget, |r| {
        Ok(HtTensor::<f64>::random(&tree, &shape, r, 0)?.n_params())
    })?;
    let (ht, _) = svd_row(
        "HT",
        x,
        || HtTensor::from_dense(x.view(), &tree, &Truncation::rank(r)),
        |y| y.max_rank(),
    )?;
    let r = largest_cap(budget, |r| {
        Ok(TtTensor::<f64>::random(&shape, r, 0)?.n_params())
    })?;
    let (tt, _) = svd_row(
        "TT",
        x,
        || TtTensor::from_dense(x.view(), &Truncation::rank(r)),
        |y| y.max_rank(),
    )?;
    let r = largest_cap(budget, |r| {
        Ok(TrTensor::<f64>::random(&shape, r, 0)?.n_params())
    })?;
    let (tr, _) = svd_row(
        "TR",
        x,
        || TrTensor::from_dense(x.view(), &Truncation::rank(r)),
        |y| y.max_rank(),
    )?;
    let r = largest_cap(budget, |r| {
        Ok(TuckerTensor::<f64>::random(&shape, &vec![r; d], 0)?.n_params())
    })?;
    let (tk, _) = svd_row(
        "Tucker",
        x,
        || TuckerTensor::from_dense(x.view(), &Truncation::rank(r)),
        |y| max_of(&y.ranks()),
    )?;
    let mut rows = vec![ht, tt, tr, tk];

    let r = largest_cap(budget, |r| {
        Ok(BtTensor::<f64>::random(&shape, &vec![r; d], BT_BLOCKS, 0)?.n_params())
    })?;
    let t = Instant::now();
    let y = bt_fit(x, &vec![r; d])?;
    rows.push(Row::new("BT (2 blocks)", x, &y, None, r, t)?);
    Ok(rows)
}

/// The largest `r >= 1` with `params(r) <= budget` (1 if even rank 1 is over budget),
/// assuming `params` is non-decreasing in `r`. Stops growing at the first `r` whose count
/// no longer changes (the cap no longer binds).
fn largest_cap(
    budget: usize,
    params: impl Fn(usize) -> tnet::Result<usize>,
) -> tnet::Result<usize> {
    let mut r = 1;
    let mut last = params(1)?;
    loop {
        let next = params(r + 1)?;
        if next > budget || next == last {
            return Ok(r);
        }
        (r, last) = (r + 1, next);
    }
}

/// The largest entry of a rank list.
fn max_of(ranks: &[usize]) -> usize {
    ranks.iter().copied().max().unwrap_or(0)
}

/// Prints `rows` as an aligned table under `title`.
fn print_table(title: &str, rows: &[Row]) {
    println!("{title}");
    println!(
        "  {:<14} {:>9} {:>11} {:>10} {:>10} {:>8} {:>10}",
        "format", "params", "compression", "rel error", "bound", "max rank", "time (ms)"
    );
    for r in rows {
        let bound = r.bound.map_or("-".to_string(), |b| format!("{b:.2e}"));
        println!(
            "  {:<14} {:>9} {:>10.1}x {:>10.2e} {:>10} {:>8} {:>10.1}",
            r.format, r.params, r.ratio, r.rel_error, bound, r.max_rank, r.millis
        );
    }
    println!();
}
