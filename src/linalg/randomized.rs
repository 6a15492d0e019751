//! Randomized range finders: the left singular factor of a tensor unfolding from a random
//! sketch (Halko, Martinsson and Tropp, *Finding structure with randomness*, SIAM Review
//! 53(2), 2011, Algorithms 4.1, 4.4 and 5.1).
//!
//! For the unfolding `A = X^{(t)}` (`m x n`, rows over the given modes) and a sketch size
//! `s` (the rank to keep plus an oversampling):
//!
//! 1. `Y = A Ω`, with `Ω` an `n x s` matrix of independent random signs `±1`, drawn block
//!    of columns by block from a seeded generator and never stored whole; each of `q`
//!    power iterations replaces `Y` by `A A^T orth(Y)` (one pass: both products on each
//!    block while it is in cache);
//! 2. `Q = orth(Y)` (`m x s`) and `B = Q^T A` (`s x n`);
//! 3. the SVD of `B` (a QR of `B^T` and an SVD of its triangle, as every SVD in tnet),
//!    truncated under the rule with what the residual of step 2 left of the budget;
//!    `U = Q U_B`, and `U^T A = U_B^T B` comes for free.
//!
//! # A posteriori error
//! The norm a step discards is `δ² = ‖A − Q Q^T A‖_F² + Σ_{i > k} σ_i(B)²` (Pythagoras:
//! `Q` has orthonormal columns and `U_B` lies in its range). Both terms are computed,
//! not estimated: the residual `‖A − Q B‖_F` block by block during the projection pass
//! (directly, not as `‖A‖² − ‖B‖²`, which would lose half the digits to cancellation),
//! the tail from the SVD of `B`. So an error bound summed from the steps' `δ` is as
//! rigorous as the exact methods' (up to round-off). Under a tolerance, a sketch whose
//! residual alone exceeds the budget is doubled and drawn again (adaptive sketch size)
//! until it reaches `m`, where the exact factorisation takes over.
//!
//! # Cost
//! `2 + q` passes over `A` (sketch, projection, and one per power iteration), about
//! `2 m n s (3 + 2q) + 4 n s²` flops (the residual costs one product more), against
//! `4 m² n` for the exact QR-based factor
//! ([`unfolding_left_svd`](super::unfolding_left_svd)): the gain grows with `m / s`.
//! When the sketch would not be smaller than `m` the exact factor is computed instead
//! (one pass).
//!
//! # Reproducibility
//! The signs of a block of columns depend only on the seed, the caller's stream number,
//! the attempt and the block's position, and the partial products are added in a fixed
//! order, so the result is the same for any number of threads.

use ndarray::{
    Array2, Array3, ArrayD, ArrayView2, ArrayViewD, ArrayViewMut2, Axis, CowArray, Ix2, s,
};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::{
    MatrixTruncation, Par, TASK_BLOCKS, TruncatedSvd, first_non_finite, matmul, matmul_into,
    middle_left_svd, middle_view, orthonormal_basis,
};
use crate::{Result, Scalar};

/// How a randomized range finder sketches an unfolding: the oversampling `p` (the sketch
/// has `k + p` columns for a rank cap `k`), the number `q` of power iterations, and the
/// seed of the random signs.
///
/// More oversampling or power iterations bring the range closer to the dominant singular
/// subspace (the expected residual falls towards the best rank-`k` error as
/// `(1 + k / (p − 1))^{1/2}` and geometrically in `q` for a decaying spectrum) at the
/// cost of a wider sketch or two more passes per iteration.
///
/// # Example
/// ```
/// use tnet::linalg::Sketch;
/// let s = Sketch::new(7).with_oversample(5).with_power_iterations(0);
/// assert_eq!((s.oversample, s.power_iterations, s.seed), (5, 0, 7));
/// assert_eq!(Sketch::default().oversample, 10);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Sketch {
    /// Columns drawn beyond the rank cap (default 10).
    pub oversample: usize,
    /// Power iterations (default 1: three passes over each sketched unfolding; 0 saves
    /// one at a larger error, see [`randomized_unfolding_left_svd`]).
    pub power_iterations: usize,
    /// Seed of the random signs.
    pub seed: u64,
}

impl Default for Sketch {
    fn default() -> Self {
        Self {
            oversample: 10,
            power_iterations: 1,
            seed: 0,
        }
    }
}

impl Sketch {
    /// The default sketch (oversampling 10, one power iteration) with this seed.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            ..Self::default()
        }
    }

    /// Sets the oversampling.
    pub fn with_oversample(mut self, oversample: usize) -> Self {
        self.oversample = oversample;
        self
    }

    /// Sets the number of power iterations.
    pub fn with_power_iterations(mut self, q: usize) -> Self {
        self.power_iterations = q;
        self
    }

    /// The first sketch size for an `m`-row unfolding under `rule`: the rank cap (or
    /// [`FIRST_GUESS`] without one) plus the oversampling, at most `m`.
    fn initial_size<T: Scalar>(&self, rule: &MatrixTruncation<T>, m: usize) -> usize {
        let base = if rule.max_rank < m {
            rule.max_rank
        } else {
            FIRST_GUESS
        };
        base.saturating_add(self.oversample).clamp(1, m)
    }
}

/// Whether `rule` keeps every direction of an `m x cols` unfolding with `m <= cols` (no
/// tolerance and no rank cap below `m`): then the identity is an exact basis of no more
/// columns than any other, and a caller whose input is already checked need not read the
/// data at all.
pub(crate) fn keeps_everything<T: Scalar>(
    rule: &MatrixTruncation<T>,
    m: usize,
    cols: usize,
) -> bool {
    rule.tol == T::zero() && rule.max_rank >= m && m <= cols
}

/// The exact factor of a step that keeps everything ([`keeps_everything`]): `U = I_m`,
/// nothing discarded, singular values not computed.
pub(crate) fn identity_factor<T: Scalar>(m: usize) -> TruncatedSvd<T> {
    TruncatedSvd {
        u: Array2::eye(m),
        vt: None,
        singular_values: Vec::new(),
        rank: m,
        discarded: T::zero(),
    }
}

/// The rank a tolerance-only sketch starts from (then doubled while the residual is too
/// large).
const FIRST_GUESS: usize = 16;

/// Columns of the unfolding per block of random signs.
const BLOCK: usize = 1024;

/// The result of [`randomized_unfolding_left_svd`].
#[derive(Clone, Debug)]
pub struct RandomizedSvd<T> {
    /// `U = Q U_B` (orthonormal columns), the singular values of `B` (lower bounds of
    /// those of the unfolding), the rank kept, and the norm discarded in all: the range
    /// residual and the truncated tail of `B`.
    pub svd: TruncatedSvd<T>,
    /// `‖A − Q Q^T A‖_F`, the part of the discarded norm due to the sketch.
    pub residual: T,
    /// Columns of the final sketch; 0 when the exact factor was computed instead.
    pub sketch_size: usize,
    /// Passes over the unfolding.
    pub passes: usize,
    /// `U^T` applied to the row modes: `x` with its row modes replaced by one axis of
    /// length `rank` at the place of the first, formed from `B` without another pass;
    /// `None` when the exact factor was computed or the unfolding was a permuted copy of
    /// `x` (the caller projects).
    pub projected: Option<ArrayD<T>>,
}

/// Left singular factor of the unfolding `X^{(t)}` (rows over `row_modes`, as in
/// [`unfolding_left_svd`](super::unfolding_left_svd)) by a randomized range finder; see
/// the [module docs](self) for the algorithm, its a posteriori error and cost. `stream`
/// separates the random signs of different calls under one seed (e.g. the steps of a
/// sweep).
///
/// The factor is exact (`sketch_size == 0`) when the sketch would be at least as large as
/// the unfolding's row count or when entries are so large or small that products could
/// leave the range ([`unfolding_left_svd`](super::unfolding_left_svd), which rescales
/// them), and the identity (`passes == 0`, singular values not computed) when the rule
/// keeps everything (no tolerance and no rank cap below `m`).
///
/// # Errors
/// [`Error::Empty`](crate::Error::Empty) for a tensor without entries;
/// [`Error::NonFinite`](crate::Error::NonFinite) for NaN/Inf entries;
/// [`Error::Linalg`](crate::Error::Linalg) if an SVD fails.
///
/// # Panics
/// If `row_modes` repeats a mode or names one the tensor does not have (an internal
/// invariant: callers pass modes from a validated structure).
///
/// # Example
/// ```
/// use tnet::linalg::{randomized_unfolding_left_svd, MatrixTruncation, Sketch};
/// // A 40 x 3000 matrix of rank 5 as a (40, 3000) tensor: the sketch finds its range.
/// use ndarray::{Array2, Ix2};
/// let l = tnet::dense::random_normal::<f64>(&[40, 5], 1).into_dimensionality::<Ix2>().unwrap();
/// let r = tnet::dense::random_normal::<f64>(&[5, 3000], 2).into_dimensionality::<Ix2>().unwrap();
/// let a: Array2<f64> = l.dot(&r);
/// let rule = MatrixTruncation { max_rank: 5, tol: 0.0 };
/// let f = randomized_unfolding_left_svd(a.view().into_dyn(), &[0], rule, &Sketch::new(3), 0)
///     .unwrap();
/// assert_eq!((f.svd.rank, f.sketch_size, f.passes), (5, 15, 3)); // one power iteration
/// assert!(f.svd.discarded < 1e-9 * tnet::dense::norm(a.view().into_dyn()));
/// ```
pub fn randomized_unfolding_left_svd<T: Scalar>(
    x: ArrayViewD<'_, T>,
    row_modes: &[usize],
    rule: MatrixTruncation<T>,
    sketch: &Sketch,
    stream: u64,
) -> Result<RandomizedSvd<T>> {
    if x.is_empty() {
        return Err(crate::Error::Empty {
            context: "randomized_unfolding_left_svd",
            shape: x.shape().to_vec(),
        });
    }
    // A permuted copy (`middle_view`) puts the row modes first: its projection is not in
    // the caller's layout.
    let in_place = x.as_slice().is_some() && row_modes.windows(2).all(|w| w[1] == w[0] + 1);
    let mut owned = Vec::new();
    let (data, a, m, b) = middle_view(&x, row_modes, &mut owned);
    let exact = |passes: usize| -> Result<RandomizedSvd<T>> {
        Ok(RandomizedSvd {
            svd: middle_left_svd(data, a, m, b, rule)?,
            residual: T::zero(),
            sketch_size: 0,
            passes: passes + 1,
            projected: None,
        })
    };
    let tol = rule.tol.as_f64();
    if keeps_everything(&rule, m, a * b) {
        // The rule keeps every direction: the identity is an exact basis (the data are
        // only checked for NaN/Inf; singular values are not computed).
        if let Some(e) = first_non_finite("randomized range finder", data.iter()) {
            return Err(e);
        }
        return Ok(RandomizedSvd {
            svd: identity_factor(m),
            residual: T::zero(),
            sketch_size: 0,
            passes: 0,
            projected: None,
        });
    }
    let mut size = sketch.initial_size(&rule, m);
    // No tolerance and no binding cap: everything must be kept, which a sketch cannot
    // promise; nor is a sketch smaller than the matrix then.
    let keep_all = tol == 0.0 && rule.max_rank >= m.min(a * b);
    if keep_all || size >= m || a * b <= size {
        return exact(0);
    }
    let blocks = column_blocks(a, b);
    let mut checked = false;
    let mut norm_a = 1.0;
    let mut passes = 0;
    let mut attempt = 0_u64;
    loop {
        let draw = |index: usize, _: usize, j0: usize, j1: usize| {
            CowArray::from(signs::<T>(
                j1 - j0,
                size,
                block_seed(sketch.seed, stream, attempt, index as u64),
            ))
        };
        let (mut y, squares) = times(data, m, b, &blocks, size, &draw, !checked);
        passes += 1;
        if !checked {
            if !squares.is_finite() {
                if let Some(e) = first_non_finite("randomized range finder", data.iter()) {
                    return Err(e);
                }
            }
            // Entries whose products could leave the range of `T` (or whose squares that
            // of `f64`): the exact factor measures the scale and divides by it.
            let norm = squares.sqrt();
            let (max, tiny) = (
                T::max_value().as_f64(),
                (T::min_positive_value() / T::epsilon()).as_f64(),
            );
            if !norm.is_finite()
                || norm * ((a * b) as f64).sqrt() > 1e-3 * max
                || norm < tiny
                || squares < 1e-250
            {
                return exact(passes);
            }
            checked = true;
            norm_a = norm;
        }
        for _ in 0..sketch.power_iterations {
            // `Y ← A (A^T orth(Y))`, block by block in one pass; the `n x s` middle factor
            // is not orthonormalised (a tall QR as costly as a pass): with `Q`
            // orthonormal, directions are lost only below `√ε σ_1` per iteration.
            let q = orthonormal_basis(y.view())?;
            y = power_step(data, m, b, &blocks, q.view(), T::cast(1.0 / norm_a));
            passes += 1;
        }
        let q = orthonormal_basis(y.view())?;
        let (proj, rho2) = project(data, a, m, b, &blocks, q.view());
        passes += 1;
        if tol > 0.0 && rho2 > tol * tol && rule.max_rank >= size {
            size = size.saturating_mul(2).min(m);
            if size >= m {
                return exact(passes);
            }
            attempt += 1;
            continue;
        }
        let inner = MatrixTruncation {
            max_rank: rule.max_rank,
            tol: T::cast((tol * tol - rho2).max(0.0).sqrt()),
        };
        let f = middle_left_svd(proj.as_slice().expect("standard layout"), a, size, b, inner)?;
        let u = matmul(q.view(), f.u.view());
        // `U^T` on the row modes, in the caller's shape (the row modes become one axis).
        let projected = if in_place {
            let p = crate::dense::mode_product(proj.view().into_dyn(), f.u.t(), 1)?;
            let p = if p.is_standard_layout() {
                p
            } else {
                p.as_standard_layout().into_owned()
            };
            let first = row_modes[0];
            let mut shape = x.shape()[..first].to_vec();
            shape.push(f.rank);
            shape.extend_from_slice(&x.shape()[first + row_modes.len()..]);
            Some(p.into_shape_with_order(shape).expect("sizes agree"))
        } else {
            None
        };
        let d = f.discarded.as_f64();
        return Ok(RandomizedSvd {
            svd: TruncatedSvd {
                u,
                vt: None,
                singular_values: f.singular_values,
                rank: f.rank,
                discarded: T::cast((rho2 + d * d).sqrt()),
            },
            residual: T::cast(rho2.sqrt()),
            sketch_size: size,
            passes,
            projected,
        });
    }
}

/// The blocks `(i, j0, j1)` of columns of the unfolding of an `(a, m, b)` tensor: column
/// `i b + j` for `j` in `j0..j1`, at most [`BLOCK`] wide, in column order.
fn column_blocks(a: usize, b: usize) -> Vec<(usize, usize, usize)> {
    (0..a)
        .flat_map(|i| {
            (0..b)
                .step_by(BLOCK)
                .map(move |j0| (i, j0, (j0 + BLOCK).min(b)))
        })
        .collect()
}

/// The columns `j0..j1` of slab `i` of the `(a, m, b)` tensor: an `m x (j1 − j0)` view.
fn block_of<T: Scalar>(
    data: &[T],
    m: usize,
    b: usize,
    i: usize,
    j0: usize,
    j1: usize,
) -> ArrayView2<'_, T> {
    ArrayView2::from_shape((m, b), &data[i * m * b..(i + 1) * m * b])
        .expect("sizes agree")
        .slice_move(s![.., j0..j1])
}

/// A `w x s` matrix of independent random signs from `seed`.
fn signs<T: Scalar>(w: usize, s: usize, seed: u64) -> Array2<T> {
    let mut g = ChaCha8Rng::seed_from_u64(seed);
    let mut out = vec![T::one(); w * s];
    let (one, minus) = (T::one(), -T::one());
    for chunk in out.chunks_mut(64) {
        let bits = g.next_u64();
        for (t, v) in chunk.iter_mut().enumerate() {
            *v = if (bits >> t) & 1 == 1 { one } else { minus };
        }
    }
    Array2::from_shape_vec((w, s), out).expect("w s entries")
}

/// The seed of one block's signs (SplitMix64 finalisers over the four coordinates).
fn block_seed(seed: u64, stream: u64, attempt: u64, index: u64) -> u64 {
    let mix = |mut z: u64| {
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    [stream, attempt, index]
        .into_iter()
        .fold(mix(seed), |h, v| {
            mix(h ^ v.wrapping_add(0x9e37_79b9_7f4a_7c15))
        })
}

/// The right factor of one block of columns, `(j1 − j0) x s`, from the block's index,
/// slab and columns.
type Right<'a, T> = dyn Fn(usize, usize, usize, usize) -> CowArray<'a, T, Ix2> + Sync + 'a;

/// `A Ω = Σ_blocks A_block Ω_block` (`m x s`), and `‖A‖_F²` (accumulated in `f64`) when
/// `squares` is set. Runs of [`TASK_BLOCKS`] blocks are summed in parallel and the runs'
/// sums added in order.
fn times<'a, T: Scalar>(
    data: &[T],
    m: usize,
    b: usize,
    blocks: &[(usize, usize, usize)],
    s: usize,
    right: &Right<'a, T>,
    squares: bool,
) -> (Array2<T>, f64) {
    let parts: Vec<(Array2<T>, f64)> = blocks
        .par_chunks(TASK_BLOCKS)
        .enumerate()
        .map(|(run, chunk)| {
            let mut y = Array2::<T>::zeros((m, s));
            let mut sum = 0.0;
            for (k, &(i, j0, j1)) in chunk.iter().enumerate() {
                let ab = block_of(data, m, b, i, j0, j1);
                if squares {
                    sum += ab
                        .rows()
                        .into_iter()
                        .map(|r| r.iter().map(|v| v.as_f64() * v.as_f64()).sum::<f64>())
                        .sum::<f64>();
                }
                let om = right(run * TASK_BLOCKS + k, i, j0, j1);
                matmul_into(y.view_mut(), ab, om.view(), T::one(), true, Par::Seq);
            }
            (y, sum)
        })
        .collect();
    let mut y = Array2::<T>::zeros((m, s));
    let mut sum = 0.0;
    for (p, v) in parts {
        y += &p;
        sum += v;
    }
    (y, sum)
}

/// `A (c A^T Q)` (`m x s`) in one pass: each block's `c A_b^T Q` is formed and
/// multiplied back by `A_b` while the block is in cache. With `c = 1 / ‖A‖_F` every
/// intermediate stays below `‖A‖_F` in magnitude (no overflow for large entries). Runs of
/// [`TASK_BLOCKS`] blocks are summed in parallel and the runs' sums added in order.
fn power_step<T: Scalar>(
    data: &[T],
    m: usize,
    b: usize,
    blocks: &[(usize, usize, usize)],
    q: ArrayView2<'_, T>,
    c: T,
) -> Array2<T> {
    let s = q.ncols();
    let parts: Vec<Array2<T>> = blocks
        .par_chunks(TASK_BLOCKS)
        .map(|chunk| {
            let mut y = Array2::<T>::zeros((m, s));
            let mut z = Array2::<T>::zeros((BLOCK, s));
            for &(i, j0, j1) in chunk {
                let ab = block_of(data, m, b, i, j0, j1);
                let mut zb = z.slice_mut(s![..j1 - j0, ..]);
                matmul_into(zb.view_mut(), ab.t(), q, c, false, Par::Seq);
                matmul_into(y.view_mut(), ab, zb.view(), T::one(), true, Par::Seq);
            }
            y
        })
        .collect();
    let mut y = Array2::<T>::zeros((m, s));
    for p in parts {
        y += &p;
    }
    y
}

/// `B = Q^T A` as the `(a, s, b)` tensor (slab `i` is `Q^T A_i`), block by block in
/// parallel, and the residual `‖A − Q B‖_F²` (accumulated in `f64`), formed block by
/// block while the block is in cache: accurate to round-off, where `‖A‖² − ‖B‖²` would
/// lose half the digits.
fn project<T: Scalar>(
    data: &[T],
    a: usize,
    m: usize,
    b: usize,
    blocks: &[(usize, usize, usize)],
    q: ArrayView2<'_, T>,
) -> (Array3<T>, f64) {
    let s = q.ncols();
    let mut out = Array3::<T>::zeros((a, s, b));
    let mut views: Vec<ArrayViewMut2<'_, T>> = Vec::with_capacity(blocks.len());
    for slab in out.outer_iter_mut() {
        let mut rest = slab;
        while rest.ncols() > 0 {
            let w = BLOCK.min(rest.ncols());
            let (head, tail) = rest.split_at(Axis(1), w);
            views.push(head);
            rest = tail;
        }
    }
    let residuals: Vec<f64> = views
        .into_par_iter()
        .zip(blocks.par_iter())
        .map(|(mut dst, &(i, j0, j1))| {
            let ab = block_of(data, m, b, i, j0, j1);
            matmul_into(dst.view_mut(), q.t(), ab, T::one(), false, Par::Seq);
            let mut r = ab.to_owned();
            matmul_into(r.view_mut(), q, dst.view(), -T::one(), true, Par::Seq);
            r.iter().map(|v| v.as_f64() * v.as_f64()).sum::<f64>()
        })
        .collect();
    (out, residuals.into_iter().sum())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linalg::unfolding_left_svd;

    fn low_rank_plus_noise(shape: &[usize], split: usize, rank: usize, noise: f64) -> ArrayD<f64> {
        let m: usize = shape[..split].iter().product();
        let n: usize = shape[split..].iter().product();
        let l: Array2<f64> = crate::dense::random_normal(&[m, rank], 1)
            .into_dimensionality()
            .unwrap();
        let r: Array2<f64> = crate::dense::random_normal(&[rank, n], 2)
            .into_dimensionality()
            .unwrap();
        let e: Array2<f64> = crate::dense::random_normal(&[m, n], 3)
            .into_dimensionality()
            .unwrap();
        (l.dot(&r) + e * noise)
            .into_shape_with_order(shape)
            .unwrap()
            .into_dyn()
    }

    #[test]
    fn the_discarded_norm_is_the_true_projection_error() {
        // Rows over a middle mode (a > 1) and leading modes, with and without power steps.
        let x = low_rank_plus_noise(&[6, 50, 300], 1, 4, 0.05);
        let x = x.into_shape_with_order((6, 50, 300)).unwrap().into_dyn();
        for (modes, q) in [(vec![1], 0), (vec![1], 1), (vec![0, 1], 0)] {
            let rule = MatrixTruncation {
                max_rank: 6,
                tol: 0.0,
            };
            let sk = Sketch::new(5).with_power_iterations(q);
            let f = randomized_unfolding_left_svd(x.view(), &modes, rule, &sk, 0).unwrap();
            assert!(f.sketch_size > 0 && f.svd.rank == 6);
            assert_eq!(f.passes, 2 + q);
            // ‖A − U U^T A‖ computed directly.
            let p = crate::dense::mode_product(x.view(), f.svd.u.t(), modes[0]);
            let p = if modes.len() == 1 {
                p.unwrap()
            } else {
                let y = x.view().into_shape_with_order((300, 300)).unwrap();
                let pr = f.svd.u.t().dot(&y);
                pr.into_dyn()
            };
            let kept = crate::dense::norm(p.view());
            let total = crate::dense::norm(x.view());
            let direct = (total * total - kept * kept).sqrt();
            assert!(
                (direct - f.svd.discarded).abs() < 1e-6 * total,
                "{direct} {}",
                f.svd.discarded
            );
            // `projected` is U^T applied to the row modes, entry by entry.
            let proj = f.projected.unwrap();
            let want = p.into_shape_with_order(proj.shape()).unwrap();
            let diff = crate::dense::norm((&proj - &want).view());
            assert!(diff < 1e-9 * total, "{diff}");
        }
    }

    #[test]
    fn error_is_close_to_the_exact_factor_and_reproducible() {
        let x = low_rank_plus_noise(&[40, 2000], 1, 5, 1e-3);
        let rule = MatrixTruncation {
            max_rank: 5,
            tol: 0.0,
        };
        let exact = unfolding_left_svd(x.view(), &[0], rule).unwrap();
        let f = randomized_unfolding_left_svd(x.view(), &[0], rule, &Sketch::new(1), 0).unwrap();
        assert!(
            f.svd.discarded <= 1.1 * exact.discarded,
            "{} {}",
            f.svd.discarded,
            exact.discarded
        );
        let g = randomized_unfolding_left_svd(x.view(), &[0], rule, &Sketch::new(1), 0).unwrap();
        assert_eq!(f.svd.u, g.svd.u);
        let h = randomized_unfolding_left_svd(x.view(), &[0], rule, &Sketch::new(2), 0).unwrap();
        assert_ne!(f.svd.u, h.svd.u);
    }

    #[test]
    fn a_tolerance_grows_the_sketch_until_it_is_met() {
        // Rank 30 with a tail: the first sketch (16 + 10 columns) misses part of it.
        let x = low_rank_plus_noise(&[200, 3000], 1, 30, 1e-4);
        let norm = crate::dense::norm(x.view());
        let rule = MatrixTruncation {
            max_rank: usize::MAX,
            tol: 1e-2 * norm,
        };
        let f = randomized_unfolding_left_svd(x.view(), &[0], rule, &Sketch::new(0), 0).unwrap();
        assert!(f.sketch_size >= 52, "{}", f.sketch_size);
        assert!(f.svd.discarded <= rule.tol);
        assert_eq!(f.svd.rank, 30);
    }

    #[test]
    fn small_unfoldings_zero_and_non_finite_tensors() {
        let rule = MatrixTruncation {
            max_rank: 3,
            tol: 0.0_f32,
        };
        let sk = Sketch::default();
        // 8 rows: a sketch of 13 columns would not be smaller, so the exact factor.
        let x = crate::dense::random_normal::<f32>(&[8, 100], 0);
        let f = randomized_unfolding_left_svd(x.view(), &[0], rule, &sk, 0).unwrap();
        assert_eq!((f.sketch_size, f.passes, f.svd.rank), (0, 1, 3));
        let rule = MatrixTruncation {
            max_rank: 3,
            tol: 0.0_f64,
        };
        let z = ArrayD::<f64>::zeros(vec![50, 400]);
        let f = randomized_unfolding_left_svd(z.view(), &[0], rule, &sk, 0).unwrap();
        assert_eq!(f.svd.discarded, 0.0);
        let mut y = crate::dense::random_normal::<f64>(&[50, 400], 0);
        y[[7, 9]] = f64::NAN;
        let e = randomized_unfolding_left_svd(y.view(), &[0], rule, &sk, 0).unwrap_err();
        assert!(
            matches!(e, crate::Error::NonFinite { index: 2809, .. }),
            "{e}"
        );
    }
}
