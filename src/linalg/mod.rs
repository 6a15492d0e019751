//! Dense linear algebra: the only module that talks to faer.
//!
//! Everything else in tnet calls this small API — truncated SVD under a per-matrix
//! truncation, SVD of a tensor unfolding, thin QR and GEMM on ndarray views — so the
//! backend can change in one place. Views are handed to faer without copying whenever
//! their layout allows (faer accepts arbitrary strides).
//!
//! Parallelism is chosen explicitly per call ([`Par::Seq`](faer::Par) for the small and
//! skinny matrices tensor networks are made of; the measured notes in the repository
//! show `rayon` inside such matrices is slower on two cores). Independent matrices are
//! spread over cores with rayon by the callers instead, and the tall-skinny QRs behind
//! the streaming SVDs split their rows into runs of fixed length, factorised in parallel
//! and merged in order (the same result for any number of threads).
//!
//! Every function here that enters faer leaves the vector registers clean (a private
//! drop guard runs `vzeroupper`): faer's x86 GEMM microkernels are assembly that returns
//! with the upper halves of the AVX-512 registers in use, and on Intel cores every later
//! SSE instruction of the thread (all of tnet's scalar code: the LSTM cell, data
//! generation) then waits on a register merge. Measured: 32x on a sigmoid loop, 2.5x on a
//! whole FDHT-LSTM training epoch (docs/architecture.md).
//!
//! Accuracy: singular values always come from an SVD (or a QR followed by an SVD of the
//! triangular factor), never from a Gram matrix, so they are accurate to about
//! `eps * sigma_max` instead of `sqrt(eps) * sigma_max`.

use faer::diag::Diag;
use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::matmul::matmul as faer_matmul;
use faer::linalg::svd::ComputeSvdVectors;
use faer::prelude::ReborrowMut;
use faer::{Accum, Mat, MatMut, MatRef, Par};
use ndarray::{Array2, ArrayView2, ArrayViewD, ArrayViewMut2, ShapeBuilder};

use crate::dense::finite_max_abs;
use crate::{Error, Result, Scalar};

pub mod randomized;
pub use randomized::{RandomizedSvd, Sketch, randomized_unfolding_left_svd};
pub(crate) use randomized::{identity_factor, keeps_everything};

/// How one matrix is truncated: keep at most `max_rank` singular triplets and drop
/// trailing ones while the Frobenius norm of what is dropped stays `<= tol`.
///
/// This is the per-matrix form of [`Truncation`](crate::Truncation); the formats turn a
/// tensor-level rule into one of these per node or per core.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MatrixTruncation<T> {
    /// Largest number of singular triplets kept (at least 1 is always kept).
    pub max_rank: usize,
    /// Absolute Frobenius-norm budget for the discarded part.
    pub tol: T,
}

impl<T: Scalar> MatrixTruncation<T> {
    /// No truncation at all: keep every singular triplet.
    pub fn exact() -> Self {
        Self {
            max_rank: usize::MAX,
            tol: T::zero(),
        }
    }

    /// Keep at most `max_rank` triplets and drop only exact zeros.
    pub fn rank_only(max_rank: usize) -> Self {
        Self {
            max_rank,
            tol: T::zero(),
        }
    }

    /// The number of singular values to keep from `s` (sorted non-increasingly), and the
    /// Frobenius norm of the discarded tail.
    ///
    /// The rank is the smallest `r >= 1` with `sqrt(sum_{i >= r} s_i^2) <= tol`, then capped
    /// by `max_rank`. Cost `O(len(s))`.
    pub fn rank_for(&self, s: &[T]) -> (usize, T) {
        if s.is_empty() {
            return (0, T::zero());
        }
        // Work with s / s_max so that the squares can neither overflow (s near 1e200 in
        // f64) nor underflow (s below 1e-162 would square to 0 and count as dropped).
        let scale = s.iter().fold(T::zero(), |m, &v| m.max(v.abs()));
        if scale == T::zero() {
            return (1, T::zero());
        }
        // tail[i] = sum_{j >= i} (s_j / scale)^2, accumulated from the small end for accuracy.
        let mut tail = vec![T::zero(); s.len() + 1];
        for i in (0..s.len()).rev() {
            let v = s[i] / scale;
            tail[i] = tail[i + 1] + v * v;
        }
        let tol = self.tol / scale;
        let tol2 = tol * tol;
        let mut r = s.len();
        while r > 1 && tail[r - 1] <= tol2 {
            r -= 1;
        }
        let r = r.min(self.max_rank.max(1));
        (r, scale * tail[r].sqrt())
    }
}

/// The result of a truncated SVD `A ≈ U diag(s) V^T`.
#[derive(Clone, Debug)]
pub struct TruncatedSvd<T> {
    /// Left singular vectors kept, `m x r`, orthonormal columns.
    pub u: Array2<T>,
    /// Right singular vectors kept, transposed: `r x n` (absent when not asked for).
    pub vt: Option<Array2<T>>,
    /// All singular values, non-increasing (length `min(m, n)`).
    pub singular_values: Vec<T>,
    /// Number of triplets kept.
    pub rank: usize,
    /// Frobenius norm of the discarded part, `sqrt(sum_{i >= r} s_i^2)`.
    pub discarded: T,
}

impl<T: Scalar> TruncatedSvd<T> {
    /// The kept singular values.
    pub fn kept(&self) -> &[T] {
        &self.singular_values[..self.rank]
    }
}

/// Clears the upper halves of the vector registers of this thread when dropped (and, for
/// a parallel call, of every rayon worker), so that code compiled for baseline x86-64
/// runs at full speed after faer.
///
/// faer's x86 GEMM (the `private-gemm-x86` crate) calls its assembly microkernels through
/// `asm!`, so the compiler does not emit the `vzeroupper` it puts after its own AVX
/// code. With the upper state left in use, every legacy-SSE instruction on an Intel core
/// waits on a merge with the full register: `1 / (1 + exp(-x))` in a loop goes from 6.5
/// to 209 ns, and a training epoch of the default FDHT-LSTM takes 2.1 s instead of 5.3 s
/// once the state is cleared (`examples/fdht_video`, 2.3 GHz 2-core Xeon). The parallel
/// case adds one rayon broadcast, only to products large enough to be run in parallel.
struct SimdStateGuard {
    parallel: bool,
}

impl SimdStateGuard {
    fn new(par: Par) -> Self {
        Self {
            parallel: !matches!(par, Par::Seq),
        }
    }
}

impl Drop for SimdStateGuard {
    fn drop(&mut self) {
        clear_upper_simd_state();
        if self.parallel {
            rayon::broadcast(|_| clear_upper_simd_state());
        }
    }
}

/// `vzeroupper` on this thread where AVX exists; nothing elsewhere.
#[inline]
fn clear_upper_simd_state() {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: the CPU supports AVX (checked just above), the one requirement of
        // `_mm256_zeroupper`, which only clears register state the ABI lets us clobber.
        unsafe { std::arch::x86_64::_mm256_zeroupper() }
    }
}

/// Borrows an ndarray matrix view as a faer view (no copy; any strides).
fn as_faer<'a, T: Scalar>(a: &'a ArrayView2<'_, T>) -> MatRef<'a, T> {
    let (m, n) = a.dim();
    let s = a.strides();
    // SAFETY: the view is valid for `m x n` elements at these strides for lifetime 'a.
    unsafe { MatRef::from_raw_parts(a.as_ptr(), m, n, s[0], s[1]) }
}

/// Borrows an ndarray mutable matrix view as a faer mutable view (no copy).
fn as_faer_mut<'a, T: Scalar>(a: &'a mut ArrayViewMut2<'_, T>) -> MatMut<'a, T> {
    let (m, n) = a.dim();
    let (rs, cs) = (a.strides()[0], a.strides()[1]);
    // SAFETY: the view is valid and uniquely borrowed for `m x n` elements at these strides.
    unsafe { MatMut::from_raw_parts_mut(a.as_mut_ptr(), m, n, rs, cs) }
}

fn to_ndarray<T: Scalar>(m: MatRef<'_, T>) -> Array2<T> {
    Array2::from_shape_fn((m.nrows(), m.ncols()), |(i, j)| m[(i, j)])
}

/// The divisor that brings a matrix with largest entry `max_abs` to unit scale, when its
/// entries are so large or so small (beyond `max^(1/4)` or below `min_positive^(1/4)`)
/// that the backend's sums of squares could overflow or underflow (faer's SVD reports
/// `NoConvergence` for entries near 1e200 in f64). The singular values are scaled back.
fn rescale_divisor<T: Scalar>(max_abs: T) -> Option<T> {
    let hi = T::max_value().sqrt().sqrt();
    let lo = T::min_positive_value().sqrt().sqrt();
    (max_abs > hi || (max_abs < lo && max_abs > T::zero())).then_some(max_abs)
}

/// `x / c` and `c = max |x|` when the entries of `x` are so large or so small that sums of
/// their squares could overflow or underflow ([`rescale_divisor`]'s thresholds); `None`
/// otherwise. Decompositions are homogeneous, so a caller decomposes `x / c` and scales
/// one factor of the result by `c`.
///
/// # Errors
/// [`Error::NonFinite`] for NaN/Inf entries.
pub(crate) fn unit_scaled<T: Scalar>(
    context: &'static str,
    x: ndarray::ArrayViewD<'_, T>,
) -> Result<Option<(ndarray::ArrayD<T>, T)>> {
    Ok(rescale_divisor(finite_max_abs(context, &x)?).map(|c| (x.mapv(|v| v / c), c)))
}

/// Full thin SVD of `a` (faer, sequential), with U and optionally V.
fn svd_full<T: Scalar>(
    a: MatRef<'_, T>,
    want_u: bool,
    want_v: bool,
) -> Result<(Mat<T>, Mat<T>, Vec<T>)> {
    let _clean = SimdStateGuard::new(Par::Seq);
    let (m, n) = a.shape();
    let k = m.min(n);
    let mut u = Mat::<T>::zeros(if want_u { m } else { 0 }, if want_u { k } else { 0 });
    let mut v = Mat::<T>::zeros(if want_v { n } else { 0 }, if want_v { k } else { 0 });
    let mut s = Diag::<T>::zeros(k);
    if k == 0 {
        return Ok((u, v, Vec::new()));
    }
    let par = Par::Seq;
    let cu = if want_u {
        ComputeSvdVectors::Thin
    } else {
        ComputeSvdVectors::No
    };
    let cv = if want_v {
        ComputeSvdVectors::Thin
    } else {
        ComputeSvdVectors::No
    };
    let mut buf = MemBuffer::new(faer::linalg::svd::svd_scratch::<T>(
        m,
        n,
        cu,
        cv,
        par,
        Default::default(),
    ));
    faer::linalg::svd::svd(
        a,
        s.as_mut(),
        want_u.then(|| u.as_mut()),
        want_v.then(|| v.as_mut()),
        par,
        MemStack::new(&mut buf),
        Default::default(),
    )
    .map_err(|e| Error::Linalg {
        context: "svd",
        reason: format!("{e:?}"),
    })?;
    let s: Vec<T> = s.column_vector().iter().copied().collect();
    Ok((u, v, s))
}

/// Truncated SVD of a matrix: `A ≈ U diag(s) V^T` keeping the rank chosen by `rule`.
///
/// Returns the kept factors, **all** singular values and the Frobenius norm of the
/// discarded part, so `||A - U diag(s) V^T||_F = discarded <= rule.tol` unless the rank cap
/// bit first. Cost `O(m n min(m, n))`; memory one copy of `A` inside the backend.
///
/// # Errors
/// [`Error::NonFinite`] if `A` has NaN or Inf entries; [`Error::Linalg`] if the SVD fails.
///
/// # Example
/// ```
/// use ndarray::array;
/// use tnet::linalg::{svd, MatrixTruncation};
/// let a = array![[3.0, 0.0], [0.0, 1e-12]];
/// let f = svd(a.view(), MatrixTruncation { max_rank: 2, tol: 1e-9 }, true).unwrap();
/// assert_eq!(f.rank, 1);
/// assert!((f.singular_values[0] - 3.0_f64).abs() < 1e-14);
/// ```
pub fn svd<T: Scalar>(
    a: ArrayView2<'_, T>,
    rule: MatrixTruncation<T>,
    want_v: bool,
) -> Result<TruncatedSvd<T>> {
    let divisor = rescale_divisor(finite_max_abs("svd", &a)?);
    let scaled = divisor.map(|c| a.mapv(|v| v / c));
    let (u, v, mut s) = match &scaled {
        Some(m) => svd_full(as_faer(&m.view()), true, want_v)?,
        None => svd_full(as_faer(&a), true, want_v)?,
    };
    if let Some(c) = divisor {
        s.iter_mut().for_each(|v| *v *= c);
    }
    let (rank, discarded) = rule.rank_for(&s);
    let u = to_ndarray(u.as_ref().subcols(0, rank));
    let vt = want_v.then(|| to_ndarray(v.as_ref().subcols(0, rank).transpose()));
    Ok(TruncatedSvd {
        u,
        vt,
        singular_values: s,
        rank,
        discarded,
    })
}

/// Left singular vectors and singular values of the unfolding `X^{(t)}` of a tensor,
/// where the rows are indexed by the modes `row_modes` (in that order, row-major) and the
/// columns by the remaining modes in increasing order.
///
/// This is the workhorse of HT-SVD and Tucker's HOSVD. When the unfolding is wide (the
/// usual case: few rows, many columns) the triangular factor `R` of the tall matrix
/// `(X^{(t)})^T = Q R` is computed by a blocked, parallel TSQR: cache-sized blocks of rows
/// are gathered with contiguous copies straight from the tensor, QR-factorised, and their
/// `R` factors reduced pairwise. `X^{(t)} = R^T Q^T`, so the left singular vectors of
/// `X^{(t)}` are the right singular vectors of the small `R`. This is as accurate as an SVD
/// of the unfolding (orthogonal transformations only, no Gram matrix), costs
/// `≈ 2 N rows` flops (`N` entries) and needs no copy of the tensor when `row_modes` is a
/// run of consecutive modes in increasing order (otherwise one permuted copy is made).
/// The right singular vectors are not formed.
///
/// # Errors
/// [`Error::NonFinite`] for NaN/Inf entries, [`Error::Linalg`] if the SVD fails.
///
/// # Panics
/// If `row_modes` repeats a mode or names one the tensor does not have (an internal
/// invariant: callers pass modes from a validated dimension tree).
pub fn unfolding_left_svd<T: Scalar>(
    x: ArrayViewD<'_, T>,
    row_modes: &[usize],
    rule: MatrixTruncation<T>,
) -> Result<TruncatedSvd<T>> {
    let mut owned = Vec::new();
    let (data, a, n, b) = middle_view(&x, row_modes, &mut owned);
    middle_left_svd(data, a, n, b, rule)
}

/// [`unfolding_left_svd`] of the `(a, n, b)` row-major tensor `data`, rows over the
/// middle axis.
fn middle_left_svd<T: Scalar>(
    data: &[T],
    a: usize,
    n: usize,
    b: usize,
    rule: MatrixTruncation<T>,
) -> Result<TruncatedSvd<T>> {
    let cols = a * b;
    if cols > n {
        // Finiteness and scale are measured during the factorisation (one read pass).
        let (r, divisor) = tsqr_r(data, a, n, b)?;
        return right_svd_of_r(r, rule, divisor);
    }
    // Tall unfolding: gather (X^{(t)})^T column-major and take its SVD directly.
    let max_abs = finite_max_abs("tensor unfolding", &ndarray::ArrayView1::from(data))?;
    // Division, not multiplication by 1/c: for subnormal entries 1/c overflows.
    let divisor = rescale_divisor(max_abs);
    let mut xt = Mat::<T>::zeros(cols, n);
    for i in 0..a {
        for c in 0..n {
            for j in 0..b {
                let v = data[i * n * b + c * b + j];
                xt[(i * b + j, c)] = divisor.map_or(v, |d| v / d);
            }
        }
    }
    right_svd_of_r(xt, rule, divisor)
}

/// The tensor `x` as `(a, n, b)` in row-major order, with the modes `row_modes` (in that
/// order) merged into the middle axis: a view of its data when `row_modes` is a run of
/// consecutive modes and `x` is in standard layout, otherwise a permuted copy stored in
/// `owned` (then `a = 1`).
///
/// # Panics
/// If `row_modes` repeats a mode or names one the tensor does not have (an internal
/// invariant: callers pass modes from a validated structure).
fn middle_view<'a, T: Scalar>(
    x: &'a ArrayViewD<'_, T>,
    row_modes: &[usize],
    owned: &'a mut Vec<T>,
) -> (&'a [T], usize, usize, usize) {
    let shape = x.shape();
    let consecutive = !row_modes.is_empty() && row_modes.windows(2).all(|w| w[1] == w[0] + 1);
    match (consecutive, x.as_slice()) {
        (true, Some(slice)) => {
            let p = row_modes[0];
            let q = p + row_modes.len();
            (
                slice,
                shape[..p].iter().product(),
                shape[p..q].iter().product(),
                shape[q..].iter().product(),
            )
        }
        _ => {
            let perm = crate::dense::rows_first_permutation(x.ndim(), row_modes);
            let rows: usize = row_modes.iter().map(|&k| shape[k]).product();
            *owned = crate::dense::standard_copy(x.view().permuted_axes(perm))
                .into_raw_vec_and_offset()
                .0;
            let len = owned.len();
            (&owned[..], 1, rows, len.checked_div(rows).unwrap_or(0))
        }
    }
}

/// The `n x n` triangular factor of the tall `(a b) x n` matrix whose row `i b + j` is
/// `data[i n b + c b + j]` for `c = 0..n` (the transposed middle-mode unfolding of an
/// `(a, n, b)` tensor), by the blocked parallel TSQR of [`tall_r`], and the divisor its
/// rows were divided by ([`scaled_factor`]).
fn tsqr_r<T: Scalar>(data: &[T], a: usize, n: usize, b: usize) -> Result<(Mat<T>, Option<T>)> {
    let rows = a * b;
    let block = (16384 / n.max(1)).max(2 * n).max(64);
    let tasks = row_tasks(rows, block);
    let factor = |divisor: Option<T>| {
        tall_r(n, block, divisor, &tasks, |&(start, end), acc| {
            let mut r0 = start;
            while r0 < end {
                let r1 = (r0 + block).min(end);
                acc.push(r1 - r0, |mut buf| {
                    let mut rho = r0;
                    while rho < r1 {
                        let (i, j0) = (rho / b, rho % b);
                        let j1 = b.min(j0 + (r1 - rho));
                        for c in 0..n {
                            let src = &data[i * n * b + c * b + j0..i * n * b + c * b + j1];
                            buf.rb_mut()
                                .col_mut(c)
                                .subrows_mut(rho - r0, j1 - j0)
                                .copy_from(faer::ColRef::from_slice(src));
                        }
                        rho += j1 - j0;
                    }
                });
                r0 = r1;
            }
            Ok(())
        })
    };
    scaled_factor(factor, || first_non_finite("tensor unfolding", data.iter()))
}

/// Left singular vectors and singular values of a matrix `A` (`m x n`, any layout),
/// **without copying it** when it is wide (`m < n`): the workhorse of the sequential
/// sweeps of TT-SVD and TR-SVD, whose unfoldings are short and very wide.
///
/// `A^T` is factorised by a blocked tall-skinny QR: blocks of `b = max(8 m, 2048)` of its
/// rows (columns of `A`) are gathered into a small workspace under the running triangular
/// factor `R` and QR-factorised in place, so only `O(m (m + b))` extra memory per thread
/// is used. Runs of 16 blocks are factorised in parallel (rayon) and their factors merged
/// in order, so the result is the same for any number of threads. The largest entry is
/// measured while the blocks are in cache, so `A` is read once (twice only when its
/// entries lie beyond `max^(1/4)` or below `min_positive^(1/4)`, where the rows are
/// factorised again divided by the largest entry). Then `A = R^T Q^T`, and the left
/// singular vectors of `A` are the right singular vectors of the `m x m` factor `R`, from
/// its SVD: singular values accurate to `eps ‖A‖`, never from a Gram matrix. The right
/// singular vectors are not formed. Cost `≈ 2 n m^2 (1 + m / b)` flops. Tall or square
/// matrices go through [`svd`] (one copy inside the backend).
///
/// # Errors
/// [`Error::NonFinite`] for NaN/Inf entries (the flat row-major index of the first one),
/// [`Error::Linalg`] if the SVD fails.
///
/// # Example
/// ```
/// use tnet::linalg::{left_svd_streaming, MatrixTruncation};
/// let a = tnet::dense::random_normal::<f64>(&[3, 5000], 1).into_dimensionality().unwrap();
/// let f = left_svd_streaming(a.view(), MatrixTruncation::exact()).unwrap();
/// let g = tnet::linalg::svd(a.view(), MatrixTruncation::exact(), false).unwrap();
/// for (x, y) in f.singular_values.iter().zip(&g.singular_values) {
///     assert!((x - y).abs() < 1e-12 * g.singular_values[0]);
/// }
/// ```
pub fn left_svd_streaming<T: Scalar>(
    a: ArrayView2<'_, T>,
    rule: MatrixTruncation<T>,
) -> Result<TruncatedSvd<T>> {
    let (m, n) = a.dim();
    if m >= n || m == 0 {
        return svd(a, rule, false);
    }
    let block = (8 * m).max(2048);
    let at = as_faer(&a).transpose(); // n x m
    let tasks = row_tasks(n, block);
    // One pass in the common case: the scale is measured while the rows go through the
    // QR, which is repeated on scaled rows only for entries near the ends of the range.
    let factor = |divisor: Option<T>| {
        tall_r(m, block, divisor, &tasks, |&(start, end), acc| {
            let mut row = start;
            while row < end {
                let b = block.min(end - row);
                acc.push(b, |mut dst| dst.copy_from(at.subrows(row, b)));
                row += b;
            }
            Ok(())
        })
    };
    let (r, divisor) = scaled_factor(factor, || first_non_finite("left_svd_streaming", a.iter()))?;
    right_svd_of_r(r, rule, divisor)
}

/// Rows of a tall matrix handed to one parallel task of [`tall_r`]: a fixed number of
/// blocks, so the split (and hence every rounding) is the same for any number of threads.
const TASK_BLOCKS: usize = 16;

/// The row ranges `[start, end)` of the parallel tasks for a tall matrix of `rows` rows
/// read in blocks of `block`.
fn row_tasks(rows: usize, block: usize) -> Vec<(usize, usize)> {
    let task = block * TASK_BLOCKS;
    (0..rows.div_ceil(task))
        .map(|t| (t * task, (t * task + task).min(rows)))
        .collect()
}

/// A triangular factor computed by [`tall_r`]: `R`, and the largest magnitude and
/// whether a NaN was seen among the rows pushed (before any division).
struct Factor<T> {
    r: Mat<T>,
    max_abs: T,
    nan: bool,
}

/// [`Error::NonFinite`] at the first NaN/Inf of `values` (in their iteration order), if
/// any.
fn first_non_finite<'a, T: Scalar>(
    context: &'static str,
    values: impl IntoIterator<Item = &'a T>,
) -> Option<Error> {
    values
        .into_iter()
        .position(|x| !x.is_finite())
        .map(|index| Error::NonFinite { context, index })
}

/// Runs `factor` unscaled and, when the rows turn out to hold entries so large or small
/// that sums of squares leave the range ([`rescale_divisor`]), once more with the
/// entries divided by the largest magnitude. Returns `R` and the divisor used.
///
/// # Errors
/// `non_finite()` (the position of the first NaN/Inf of the input) when a row held one;
/// [`Error::NonFinite`] if `R` is not finite otherwise (overflow).
fn scaled_factor<T: Scalar>(
    factor: impl Fn(Option<T>) -> Result<Factor<T>>,
    non_finite: impl FnOnce() -> Option<Error>,
) -> Result<(Mat<T>, Option<T>)> {
    let first = factor(None)?;
    if first.nan || !first.max_abs.is_finite() {
        return Err(non_finite().unwrap_or(Error::NonFinite {
            context: "streaming QR",
            index: 0,
        }));
    }
    let (f, divisor) = match rescale_divisor(first.max_abs) {
        None => (first, None),
        Some(c) => (factor(Some(c))?, Some(c)),
    };
    if f.r.col_iter().any(|c| c.iter().any(|v| !v.is_finite())) {
        return Err(Error::NonFinite {
            context: "streaming QR",
            index: 0,
        });
    }
    Ok((f.r, divisor))
}

/// The triangular factor `R` (`cols x cols`) of a tall matrix whose rows are produced by
/// independent `tasks`, each pushing its rows into its own [`TallR`] (rows divided by
/// `divisor`, if any): the tasks run in parallel (rayon), and their factors are merged in
/// task order by one more QR of the stacked factors, so the result does not depend on
/// the number of threads.
///
/// # Errors
/// Whatever a task returns.
fn tall_r<T: Scalar, S: Sync>(
    cols: usize,
    block: usize,
    divisor: Option<T>,
    tasks: &[S],
    work: impl Fn(&S, &mut TallR<T>) -> Result<()> + Sync,
) -> Result<Factor<T>> {
    use rayon::prelude::*;
    let block = block.max(cols);
    // Each task keeps only its factor: the workspaces are freed as the tasks end.
    let run = |task: &S| -> Result<Factor<T>> {
        let mut acc = TallR::new(cols, block, divisor);
        work(task, &mut acc)?;
        Ok(Factor {
            r: acc.r,
            max_abs: acc.max_abs,
            nan: acc.nan,
        })
    };
    let parts: Vec<Factor<T>> = if tasks.len() > 1 {
        tasks.par_iter().map(run).collect::<Result<_>>()?
    } else {
        tasks.iter().map(run).collect::<Result<_>>()?
    };
    let mut acc = TallR::new(cols, block, None);
    let (mut max_abs, mut nan) = (T::zero(), false);
    for p in &parts {
        acc.push(cols, |mut dst| dst.copy_from(p.r.as_ref()));
        max_abs = max_abs.max(p.max_abs);
        nan |= p.nan;
    }
    Ok(Factor {
        r: acc.r,
        max_abs,
        nan,
    })
}

/// Left singular vectors of the wide matrix whose transpose has the triangular factor
/// `r` (or is `r`), computed on entries divided by `divisor`: the right singular vectors
/// of `r`, with the singular values scaled back.
fn right_svd_of_r<T: Scalar>(
    r: Mat<T>,
    rule: MatrixTruncation<T>,
    divisor: Option<T>,
) -> Result<TruncatedSvd<T>> {
    let (_, v, mut s) = svd_full(r.as_ref(), false, true)?;
    if let Some(c) = divisor {
        s.iter_mut().for_each(|v| *v *= c);
    }
    let (rank, discarded) = rule.rank_for(&s);
    Ok(TruncatedSvd {
        u: to_ndarray(v.as_ref().subcols(0, rank)),
        vt: None,
        singular_values: s,
        rank,
        discarded,
    })
}

/// Streaming accumulation of the triangular factor `R` of a tall matrix given by blocks
/// of its rows (the blocked tall-skinny QR behind [`left_svd_streaming`] and
/// [`project_and_factor`]); [`tall_r`] runs several in parallel.
struct TallR<T: Scalar> {
    cols: usize,
    /// Capacity in rows of `block`.
    block_rows: usize,
    /// The next block of rows, column-major with column stride `block_rows`.
    block: Vec<T>,
    /// The running factor (zero before the first block: `[0; B]` has the factor of `B`).
    r: Mat<T>,
    /// `[R; B]` for faer's QR, when `cols > NARROW_COLS` in `f64` (allocated on first use).
    work: Option<Mat<T>>,
    /// Rows are divided by it as they arrive ([`rescale_divisor`]).
    divisor: Option<T>,
    /// Largest magnitude of the rows pushed, before the division.
    max_abs: T,
    /// Whether a pushed row held a NaN.
    nan: bool,
}

impl<T: Scalar> TallR<T> {
    fn new(cols: usize, block: usize, divisor: Option<T>) -> Self {
        Self {
            cols,
            block_rows: block,
            block: vec![T::zero(); block * cols],
            r: Mat::zeros(cols, cols),
            work: None,
            divisor,
            max_abs: T::zero(),
            nan: false,
        }
    }

    /// Adds `b <= block` rows, written by `fill(dst)` into the `b x cols` view `dst`.
    fn push(&mut self, b: usize, fill: impl FnOnce(MatMut<'_, T>)) {
        let (m, ld) = (self.cols, self.block_rows);
        fill(MatMut::from_column_major_slice_with_stride_mut(
            &mut self.block,
            b,
            m,
            ld,
        ));
        for col in self.block.chunks_mut(ld) {
            let col = &mut col[..b];
            let (max, nan) = crate::dense::max_abs_and_nan(col);
            self.max_abs = self.max_abs.max(max);
            self.nan |= nan;
            if let Some(c) = self.divisor {
                col.iter_mut().for_each(|v| *v /= c);
            }
        }
        // Below f64's precision (f32) faer's blocked QR loses accuracy: see NARROW_COLS.
        let single = T::epsilon().as_f64() > f64::EPSILON;
        if m <= NARROW_COLS || single {
            // Row chunks that stay in cache across the m reflectors (at least m rows, so
            // that the O(m^2) scalar work per call stays below the O(b m^2) flops).
            let chunk = (KERNEL_BYTES / (m * std::mem::size_of::<T>()).max(1))
                .max(64)
                .max(m);
            let mut r0 = 0;
            while r0 < b {
                let r1 = (r0 + chunk).min(b);
                triangle_on_dense_qr(&mut self.r, &mut self.block, r0..r1, ld);
                r0 = r1;
            }
            return;
        }
        // Wider factors: faer's blocked QR (its trailing updates are GEMMs) of `[R; B]`.
        let work = self.work.get_or_insert_with(|| Mat::zeros(ld + m, m));
        let mut top = work.as_mut().submatrix_mut(0, 0, m, m);
        top.fill(T::zero());
        top.copy_from_triangular_upper(self.r.as_ref());
        work.as_mut().submatrix_mut(m, 0, b, m).copy_from(
            MatRef::from_column_major_slice_with_stride(&self.block, b, m, ld),
        );
        qr_in_place_r(work.as_mut().submatrix_mut(0, 0, m + b, m));
        self.r
            .as_mut()
            .copy_from_triangular_upper(work.as_ref().submatrix(0, 0, m, m));
    }
}

/// Widest `f64` factor (columns) updated by [`triangle_on_dense_qr`]; wider ones go
/// through faer's blocked QR. Measured on TT-SVD, TR-SVD and HOSVD of 8^8 and 16^6
/// tensors (2 cores, AVX-512 machine): the structured kernel is 1.2-2.7x faster up to 128
/// columns and 1.7x slower at 256. `f32` factors always take the structured kernel: through faer's
/// blocked QR, the TR-SVD of an 8^8 tensor (ranks 16, 128-column factors) had tail
/// singular values of 4.6e-4 where `f64` and the structured kernel in `f32` both give
/// 6.8e-5, and its error was 1.47e-3 instead of 1.00e-3.
const NARROW_COLS: usize = 128;

/// Bytes of `B` given to one call of [`triangle_on_dense_qr`]: its `m` reflectors each
/// sweep the block, which should stay in the core's L2 cache (256 KiB or more on current
/// x86 and ARM cores).
const KERNEL_BYTES: usize = 256 * 1024;

/// Householder QR of the `(m + b) x m` matrix `[R; B]`, `R` upper triangular (updated in
/// place to the factor of the whole) and `B` the rows `rows` (`b` of them) of the `m`
/// columns held in `data` with column stride `ld` (overwritten). The structure of LAPACK's
/// `tpqrt`: reflector `j` is `I − τ u uᵀ` with `u = e_j + [0; v]`, so it touches row `j`
/// of `R` and the rows of `B` only, and costs `4 b (m − j)` flops. The norms are plain
/// sums of squares: the callers keep the largest entry between `min_positive^(1/4)` and
/// `max^(1/4)` ([`rescale_divisor`]), where they cannot overflow, and a column whose
/// squares underflow is below `eps` times the largest. Runs with AVX2 and FMA where the
/// CPU has them (detected at run time).
fn triangle_on_dense_qr<T: Scalar>(
    r: &mut Mat<T>,
    data: &mut [T],
    rows: std::ops::Range<usize>,
    ld: usize,
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports AVX2 and FMA (checked just above), the only
        // requirement of a function compiled with those target features.
        unsafe { triangle_on_dense_qr_avx2(r, data, rows, ld) };
        return;
    }
    triangle_on_dense_qr_body(r, data, rows, ld);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn triangle_on_dense_qr_avx2<T: Scalar>(
    r: &mut Mat<T>,
    data: &mut [T],
    rows: std::ops::Range<usize>,
    ld: usize,
) {
    triangle_on_dense_qr_body(r, data, rows, ld);
}

#[inline(always)]
fn triangle_on_dense_qr_body<T: Scalar>(
    r: &mut Mat<T>,
    data: &mut [T],
    rows: std::ops::Range<usize>,
    ld: usize,
) {
    let m = r.ncols();
    for j in 0..m {
        let (head, tail) = data.split_at_mut((j + 1) * ld);
        let v = &mut head[j * ld + rows.start..j * ld + rows.end];
        let s = lanes_dot(v, v);
        if s == T::zero() {
            continue;
        }
        let x0 = r[(j, j)];
        let norm = (x0 * x0 + s).sqrt();
        let beta = if x0 >= T::zero() { -norm } else { norm };
        let v0 = x0 - beta; // |v0| = |x0| + norm > 0
        v.iter_mut().for_each(|x| *x /= v0);
        let tau = (beta - x0) / beta;
        r[(j, j)] = beta;
        for (k, col) in (j + 1..m).zip(tail.chunks_mut(ld)) {
            let col = &mut col[rows.clone()];
            let w = tau * (r[(j, k)] + lanes_dot(v, col));
            r[(j, k)] -= w;
            for (c, &x) in col.iter_mut().zip(v.iter()) {
                *c -= w * x;
            }
        }
    }
}

/// `Σ a_i b_i` over 8 independent lanes (so that it vectorises), lanes summed in order.
#[inline(always)]
fn lanes_dot<T: Scalar>(a: &[T], b: &[T]) -> T {
    const LANES: usize = 8;
    let mut acc = [T::zero(); LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ta, tb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..LANES {
            acc[l] += x[l] * y[l];
        }
    }
    let mut s = T::zero();
    for v in acc {
        s += v;
    }
    for (x, y) in ta.iter().zip(tb) {
        s += *x * *y;
    }
    s
}

/// Fused projection and factorisation, the inner step of TT-SVD and TR-SVD sweeps: forms
///
/// ```text
/// Y[(a, i), (j, s)] = Σ_p U[p, s q + a] · C[p, i M' + j]     (a < q, i < n, j < M', s < t)
/// ```
///
/// (`U` is `p x t q`, `C` is `p x n M'`; with `t = 1` this is `U^T C` reshaped so that
/// the next mode `i` joins the rows; `t > 1` also moves the index `s` to the last column
/// position, as TR-SVD needs) and returns `Y` (`q n x M' t`, row-major) together with its
/// left singular vectors and singular values under `rule`.
///
/// `Y` is produced block of columns by block of columns with small GEMMs, and each block
/// is fed at once, while in cache, to the blocked tall-skinny QR of `Y^T` (see
/// [`left_svd_streaming`]: parallel over fixed runs of blocks, the scale measured on the
/// way), so `C` and `Y` are each traversed once: the GEMM and the factorisation cost one
/// pass over memory instead of three. Cost
/// `2 p q t n M' + 2 (q n)^2 M' t` flops. Tall results (`q n >= M' t`) are formed whole
/// and factorised by [`svd`].
///
/// # Errors
/// [`Error::NonFinite`] if a non-finite value arises; [`Error::Linalg`] if the SVD fails.
///
/// # Panics
/// If `U` is not `p x t q` with `p = C.nrows()` or `n` does not divide `C.ncols()`
/// (internal invariants of the sweeps).
pub fn project_and_factor<T: Scalar>(
    u: ArrayView2<'_, T>,
    c: ArrayView2<'_, T>,
    q: usize,
    n: usize,
    t: usize,
    rule: MatrixTruncation<T>,
) -> Result<(Array2<T>, TruncatedSvd<T>)> {
    let p = c.nrows();
    assert!(
        u.nrows() == p && u.ncols() == t * q && n > 0 && c.ncols() % n == 0,
        "project_and_factor: shapes differ"
    );
    let mp = c.ncols() / n;
    let (mu, cols) = (q * n, mp * t);
    let mut y = Array2::<T>::zeros((mu, cols));
    // Columns `j0 * t .. j1 * t` of `Y`, written into `yv`, the columns of `Y` from
    // `base * t` on.
    let fill_block = |yv: &mut ArrayViewMut2<'_, T>, base: usize, j0: usize, j1: usize| {
        for s in 0..t {
            let us = u.slice(ndarray::s![.., s * q..(s + 1) * q]);
            for i in 0..n {
                let src = c.slice(ndarray::s![.., i * mp + j0..i * mp + j1]);
                let (k0, k1) = ((j0 - base) * t + s, (j1 - base) * t);
                let dst = yv.slice_mut(ndarray::s![i..;n, k0..k1;t]);
                matmul_into(dst, us.t(), src, T::one(), false, Par::Seq);
            }
        }
    };
    if mu >= cols {
        fill_block(&mut y.view_mut(), 0, 0, mp);
        let f = svd(y.view(), rule, false)?;
        return Ok((y, f));
    }
    let block = ((8 * mu).max(2048) / t).max(1);
    let ranges = row_tasks(mp, block);
    let task = block * TASK_BLOCKS;
    let views: Vec<_> = y.axis_chunks_iter_mut(ndarray::Axis(1), task * t).collect();
    let tasks: Vec<_> = ranges
        .into_iter()
        .zip(views.into_iter().map(std::sync::Mutex::new))
        .collect();
    // `Y` is formed on the first pass; a second pass (entries near the ends of the
    // range only) factorises the stored `Y` scaled.
    let formed = std::sync::atomic::AtomicBool::new(false);
    let factor = |divisor: Option<T>| {
        let form = !formed.swap(true, std::sync::atomic::Ordering::Relaxed);
        tall_r(mu, block * t, divisor, &tasks, |((start, end), yv), acc| {
            let mut yv = yv.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let mut j0 = *start;
            while j0 < *end {
                let j1 = (j0 + block).min(*end);
                if form {
                    fill_block(&mut yv, *start, j0, j1);
                }
                let yb = yv.slice(ndarray::s![.., (j0 - start) * t..(j1 - start) * t]);
                acc.push((j1 - j0) * t, |mut dst| {
                    dst.copy_from(as_faer(&yb).transpose());
                });
                j0 = j1;
            }
            Ok(())
        })
    };
    let (r, divisor) = scaled_factor(factor, || first_non_finite("project_and_factor", c.iter()))?;
    drop(tasks);
    Ok((y, right_svd_of_r(r, rule, divisor)?))
}

/// Householder QR in place; afterwards the upper triangle of `a` holds R.
fn qr_in_place_r<T: Scalar>(mut a: MatMut<'_, T>) {
    use faer::linalg::qr::no_pivoting::factor;
    let _clean = SimdStateGuard::new(Par::Seq);
    let (m, n) = a.shape();
    let bs = factor::recommended_block_size::<T>(m, n);
    let mut coeff = Mat::<T>::zeros(bs, m.min(n));
    let par = Par::Seq;
    let mut buf = MemBuffer::new(factor::qr_in_place_scratch::<T>(
        m,
        n,
        bs,
        par,
        Default::default(),
    ));
    factor::qr_in_place(
        a.rb_mut(),
        coeff.as_mut(),
        par,
        MemStack::new(&mut buf),
        Default::default(),
    );
}

/// An orthonormal basis of the column space of `a` (`m x n`, `m >= n`): the thin left
/// singular vectors (all `n` of them, orthonormal even where `a` is rank-deficient), from
/// a sequential SVD, so the same for any number of threads. Cost `O(m n²)`.
///
/// # Errors
/// [`Error::NonFinite`] for NaN/Inf entries; [`Error::Linalg`] if the SVD fails.
pub(crate) fn orthonormal_basis<T: Scalar>(a: ArrayView2<'_, T>) -> Result<Array2<T>> {
    if let Some(e) = first_non_finite("orthonormal basis", a.iter()) {
        return Err(e);
    }
    // The basis does not depend on the scale: divide by the largest magnitude, which
    // keeps the SVD away from the ends of the range.
    let max = a.iter().fold(T::zero(), |m, v| m.max(v.abs()));
    let (u, _, _) = match rescale_divisor(max) {
        Some(d) => {
            let scaled = a.mapv(|v| v / d);
            svd_full(as_faer(&scaled.view()), true, false)?
        }
        None => svd_full(as_faer(&a), true, false)?,
    };
    Ok(to_ndarray(u.as_ref()))
}

/// Thin QR factorisation `A = Q R` with `Q` (`m x k`, orthonormal columns) and `R`
/// (`k x n`, upper trapezoidal), `k = min(m, n)`. Cost `O(m n k)`.
///
/// # Example
/// ```
/// use ndarray::array;
/// let a = array![[1.0_f64, 2.0], [3.0, 4.0], [5.0, 6.0]];
/// let (q, r) = tnet::linalg::qr(a.view());
/// let back = q.dot(&r);
/// assert!((&back - &a).iter().all(|d: &f64| d.abs() < 1e-12));
/// ```
pub fn qr<T: Scalar>(a: ArrayView2<'_, T>) -> (Array2<T>, Array2<T>) {
    let (m, n) = a.dim();
    let k = m.min(n);
    if k == 0 {
        return (Array2::zeros((m, 0)), Array2::zeros((0, n)));
    }
    let _clean = SimdStateGuard::new(Par::Seq);
    let f = as_faer(&a).qr();
    let q = f.compute_thin_Q();
    let r = f.thin_R();
    (to_ndarray(q.as_ref()), to_ndarray(r))
}

/// The minimum-norm least-squares solution of `min_X ‖A X − B‖_F`, with the numerical
/// rank of `A` and its singular values.
#[derive(Clone, Debug)]
pub struct LeastSquares<T> {
    /// The solution `X = A⁺ B` (`n x p` for `A` of shape `m x n`, `B` of shape `m x p`).
    pub x: Array2<T>,
    /// The numerical rank of `A` used: singular values `<= max(m, n) · eps · σ_max` are
    /// treated as zero (NumPy's `lstsq` default cut-off).
    pub rank: usize,
    /// All singular values of `A`, non-increasing.
    pub singular_values: Vec<T>,
}

/// Least-squares solve `min_X ‖A X − B‖_F` through the SVD of `A` (never the normal
/// equations), returning the minimum-norm solution `X = V Σ⁺ Uᵀ B`.
///
/// Because `A` itself is factorised, the solution's accuracy depends on `κ(A)`, not on
/// `κ(A)²` as with `(AᵀA)⁻¹ Aᵀ B`; rank-deficient and under-determined systems get the
/// minimum-norm solution, singular values below `max(m, n) · eps · σ_max` being dropped.
/// Cost `O(m n min(m, n) + m n p)`; memory: a copy of `A` inside the backend, `U` (`m x
/// min(m, n)`).
///
/// # Errors
/// [`Error::ShapeMismatch`] if `A` and `B` have different numbers of rows;
/// [`Error::NonFinite`] for NaN/Inf in either; [`Error::Linalg`] if the SVD fails.
///
/// # Example
/// ```
/// use ndarray::array;
/// // Fit y = c0 + c1 t to four points on the line y = 1 + 2 t.
/// let a = array![[1.0, 0.0], [1.0, 1.0], [1.0, 2.0], [1.0, 3.0]];
/// let b = array![[1.0], [3.0], [5.0], [7.0]];
/// let ls = tnet::linalg::lstsq(a.view(), b.view()).unwrap();
/// assert!((ls.x[[0, 0]] - 1.0_f64).abs() < 1e-12 && (ls.x[[1, 0]] - 2.0).abs() < 1e-12);
/// assert_eq!(ls.rank, 2);
/// ```
pub fn lstsq<T: Scalar>(a: ArrayView2<'_, T>, b: ArrayView2<'_, T>) -> Result<LeastSquares<T>> {
    let _clean = SimdStateGuard::new(Par::Seq);
    if a.nrows() != b.nrows() {
        return Err(Error::ShapeMismatch {
            context: "lstsq (A and B need the same number of rows)",
            expected: vec![a.nrows(), b.ncols()],
            got: b.shape().to_vec(),
        });
    }
    // Both sides brought to unit scale when near overflow or underflow:
    // A⁺ B = (A / c_a)⁺ (B / c_b) · c_b / c_a.
    let ca = rescale_divisor(finite_max_abs("lstsq (matrix A)", &a)?);
    let cb = rescale_divisor(finite_max_abs("lstsq (right-hand side B)", &b)?);
    let a_scaled = ca.map(|c| a.mapv(|v| v / c));
    let b_scaled = cb.map(|c| b.mapv(|v| v / c));
    let a = match &a_scaled {
        Some(m) => m.view(),
        None => a.reborrow(),
    };
    let b = match &b_scaled {
        Some(m) => m.view(),
        None => b.reborrow(),
    };
    let (m, n) = a.dim();
    let p = b.ncols();
    let k = m.min(n);
    if k == 0 {
        return Ok(LeastSquares {
            x: Array2::zeros((n, p)),
            rank: 0,
            singular_values: Vec::new(),
        });
    }
    let (u, v, mut s) = svd_full(as_faer(&a), true, true)?;
    let cutoff = T::cast(m.max(n) as f64) * T::epsilon() * s[0];
    let rank = s.iter().take_while(|&&si| si > cutoff).count();
    let unscale = |s: &mut Vec<T>| {
        if let Some(c) = ca {
            s.iter_mut().for_each(|v| *v *= c);
        }
    };
    if rank == 0 {
        unscale(&mut s);
        return Ok(LeastSquares {
            x: Array2::zeros((n, p)),
            rank,
            singular_values: s,
        });
    }
    // X = V_r Σ_r⁻¹ (U_rᵀ B).
    let mut c = Mat::<T>::zeros(rank, p);
    faer_matmul(
        c.as_mut(),
        Accum::Replace,
        u.as_ref().subcols(0, rank).transpose(),
        as_faer(&b),
        T::one(),
        Par::Seq,
    );
    for i in 0..rank {
        let inv = s[i].recip();
        for j in 0..p {
            c[(i, j)] *= inv;
        }
    }
    let mut x = Array2::<T>::zeros((n, p).f());
    faer_matmul(
        as_faer_mut(&mut x.view_mut()),
        Accum::Replace,
        v.as_ref().subcols(0, rank),
        c.as_ref(),
        T::one(),
        Par::Seq,
    );
    if ca.is_some() || cb.is_some() {
        let (da, mb) = (ca.unwrap_or(T::one()), cb.unwrap_or(T::one()));
        x.mapv_inplace(|v| v / da * mb);
    }
    unscale(&mut s);
    Ok(LeastSquares {
        x,
        rank,
        singular_values: s,
    })
}

/// `C = A B` for ndarray views of any layout, computed by faer (sequential).
///
/// # Panics
/// If the inner dimensions differ (an internal invariant; public callers check shapes).
///
/// # Example
/// ```
/// use ndarray::array;
/// let c = tnet::linalg::matmul(array![[1.0, 2.0]].view(), array![[3.0], [4.0]].view());
/// assert_eq!(c[[0, 0]], 11.0);
/// ```
#[track_caller]
pub fn matmul<T: Scalar>(a: ArrayView2<'_, T>, b: ArrayView2<'_, T>) -> Array2<T> {
    assert_eq!(a.ncols(), b.nrows(), "matmul: inner dimensions differ");
    let mut c = Array2::<T>::zeros((a.nrows(), b.ncols()).f());
    matmul_into(c.view_mut(), a, b, T::one(), false, Par::Seq);
    c
}

/// `C <- alpha A B (+ C if accumulate)` in place, any layouts, explicit parallelism.
///
/// # Panics
/// If the shapes do not agree (an internal invariant).
#[track_caller]
pub fn matmul_into<T: Scalar>(
    mut c: ArrayViewMut2<'_, T>,
    a: ArrayView2<'_, T>,
    b: ArrayView2<'_, T>,
    alpha: T,
    accumulate: bool,
    par: Par,
) {
    assert!(
        a.ncols() == b.nrows() && c.nrows() == a.nrows() && c.ncols() == b.ncols(),
        "matmul_into: shapes differ"
    );
    let accum = if accumulate {
        Accum::Add
    } else {
        Accum::Replace
    };
    let _clean = SimdStateGuard::new(par);
    faer_matmul(
        as_faer_mut(&mut c),
        accum,
        as_faer(&a),
        as_faer(&b),
        alpha,
        par,
    );
}

pub use faer::Par as Parallelism;

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    /// Whether the upper halves of the vector registers are in use on this thread
    /// (`XINUSE` bits YMM_Hi128 and ZMM_Hi256), or `None` where the CPU cannot tell.
    #[cfg(target_arch = "x86_64")]
    fn upper_state_in_use() -> Option<bool> {
        use std::arch::x86_64::{__cpuid_count, _xgetbv};
        if !std::arch::is_x86_feature_detected!("avx") {
            return None;
        }
        // CPUID.(EAX = 0DH, ECX = 1):EAX bit 2: XGETBV with ECX = 1 reports XINUSE.
        #[allow(unused_unsafe)]
        // SAFETY: CPUID leaf 0xD exists on every CPU with AVX (XSAVE is required).
        let leaf = unsafe { __cpuid_count(0xD, 1) };
        if leaf.eax & 4 == 0 {
            return None;
        }
        // SAFETY: XSAVE is enabled by the OS (AVX was detected, which requires it) and
        // XGETBV with ECX = 1 is supported (checked above).
        let in_use = unsafe { _xgetbv(1) };
        Some(in_use & ((1 << 2) | (1 << 6)) != 0)
    }

    #[cfg(not(target_arch = "x86_64"))]
    fn upper_state_in_use() -> Option<bool> {
        None
    }

    fn operand<T: Scalar>(m: usize, n: usize) -> Array2<T> {
        Array2::from_shape_fn((m, n), |(i, j)| {
            T::cast(((i * 7 + 3 * j) % 13) as f64 - 6.0)
        })
    }

    /// faer's assembly GEMM leaves the upper vector state in use; every entry point into
    /// faer must clear it, on the calling thread and, for parallel products, on the rayon
    /// workers (see `SimdStateGuard`).
    #[test]
    fn faer_calls_leave_the_upper_vector_state_clean() {
        if upper_state_in_use().is_none() {
            return;
        }
        fn check<T: Scalar>() {
            let (a, b) = (operand::<T>(192, 160), operand::<T>(160, 224));
            let mut c = Array2::<T>::zeros((192, 224));
            matmul_into(c.view_mut(), a.view(), b.view(), T::one(), false, Par::Seq);
            assert_eq!(upper_state_in_use(), Some(false), "after matmul_into");
            matmul_into(
                c.view_mut(),
                a.view(),
                b.view(),
                T::one(),
                true,
                Par::rayon(0),
            );
            assert_eq!(
                upper_state_in_use(),
                Some(false),
                "after a parallel matmul_into"
            );
            let workers = rayon::broadcast(|_| upper_state_in_use());
            assert!(
                workers.iter().all(|w| *w != Some(true)),
                "a rayon worker kept the state: {workers:?}"
            );
            let _ = svd(a.view(), MatrixTruncation::exact(), true).unwrap();
            assert_eq!(upper_state_in_use(), Some(false), "after svd");
            let _ = qr(a.view());
            assert_eq!(upper_state_in_use(), Some(false), "after qr");
            let _ = lstsq(a.view(), operand::<T>(192, 3).view()).unwrap();
            assert_eq!(upper_state_in_use(), Some(false), "after lstsq");
        }
        check::<f32>();
        check::<f64>();
    }
}
