//! Dense tensor helpers: unfolding and folding, mode-k products, norms, errors and seeded
//! random tensors.
//!
//! # Conventions (defined once, used everywhere)
//! Dense tensors are `ndarray::ArrayD<T>` in row-major (C) order. The **mode-k
//! unfolding** `X_(k)` is the `n_k x (N / n_k)` matrix whose row `i` holds the entries with
//! `i_k = i`, the column index running over the other modes in increasing mode order,
//! the last mode fastest (C order). More generally the unfolding `X^{(t)}` for a list of
//! row modes `t` puts those modes (in the given order) on the rows and the remaining modes
//! (in increasing order) on the columns. [`fold`] inverts [`unfold`].
//!
//! The **mode-k product** `Y = X ×_k A` with `A` of shape `J x n_k` gives
//! `Y_(k) = A X_(k)`: mode `k` of size `n_k` is replaced by one of size `J`.

use ndarray::{Array2, ArrayD, ArrayView2, ArrayViewD, IxDyn};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::{Error, Result, Scalar};

/// The axis permutation that puts `row_modes` first (in the given order) and the
/// remaining modes after them in increasing order.
///
/// # Panics
/// If `row_modes` repeats a mode or names one `>= order` (internal invariant).
pub(crate) fn rows_first_permutation(order: usize, row_modes: &[usize]) -> Vec<usize> {
    let mut seen = vec![false; order];
    let mut perm = Vec::with_capacity(order);
    for &k in row_modes {
        assert!(
            k < order && !seen[k],
            "rows_first_permutation: bad mode list"
        );
        seen[k] = true;
        perm.push(k);
    }
    perm.extend((0..order).filter(|&k| !seen[k]));
    perm
}

/// A standard-layout (row-major) copy of any view, gathered with `assign_to` (ndarray's
/// Zip: strided inner loops) rather than `iter()`, whose per-element multi-index stepping
/// on a permuted dynamic-rank view is about 7x slower.
pub(crate) fn standard_copy<T: Scalar>(view: ArrayViewD<'_, T>) -> ArrayD<T> {
    let mut buf = ArrayD::<T>::uninit(view.raw_dim());
    view.assign_to(&mut buf);
    // SAFETY: `assign_to` wrote every element of `buf`.
    unsafe { buf.assume_init() }
}

/// Checks that a batch `x` (`B x cols`) has `cols` columns.
pub(crate) fn check_cols<T>(
    context: &'static str,
    x: &ArrayView2<'_, T>,
    cols: usize,
) -> Result<()> {
    if x.ncols() != cols {
        return Err(Error::ShapeMismatch {
            context,
            expected: vec![x.nrows(), cols],
            got: x.shape().to_vec(),
        });
    }
    Ok(())
}

/// Checks that the column range `start..start + len` lies inside `0..n` columns.
pub(crate) fn check_col_range(
    context: &'static str,
    start: usize,
    len: usize,
    n: usize,
) -> Result<()> {
    if start.checked_add(len).is_none_or(|end| end > n) {
        return Err(Error::param(
            "columns",
            format!("{context}: columns {start}..{start}+{len} do not lie inside the {n} columns"),
        ));
    }
    Ok(())
}

/// The columns `start..start + len` of the `M x n_in` matrix of a linear map given by its
/// row-batched product `apply(X) = X W^T`: applies it to the `len` unit rows
/// `e_start, .., e_{start+len-1}` and transposes. Cost: one product with a batch of `len`;
/// memory `len * n_in`. The range must have been checked.
pub(crate) fn columns_by_apply<T: Scalar>(
    n_in: usize,
    start: usize,
    len: usize,
    apply: impl FnOnce(ArrayView2<'_, T>) -> Result<Array2<T>>,
) -> Result<Array2<T>> {
    let mut unit = Array2::<T>::zeros((len, n_in));
    for j in 0..len {
        unit[[j, start + j]] = T::one();
    }
    Ok(apply(unit.view())?
        .reversed_axes()
        .as_standard_layout()
        .into_owned())
}

/// Checks the operands of the backward pass of a map from `n_in` to `n_out` values: `x` is
/// `B x n_in`, `dy` is `B x n_out`, with the same `B`. `contexts` name the three checks.
pub(crate) fn check_backward<T>(
    contexts: [&'static str; 3],
    x: &ArrayView2<'_, T>,
    dy: &ArrayView2<'_, T>,
    n_in: usize,
    n_out: usize,
) -> Result<()> {
    check_cols(contexts[0], x, n_in)?;
    check_cols(contexts[1], dy, n_out)?;
    if x.nrows() != dy.nrows() {
        return Err(Error::ShapeMismatch {
            context: contexts[2],
            expected: vec![x.nrows(), n_out],
            got: dy.shape().to_vec(),
        });
    }
    Ok(())
}

/// The largest `|x|` of a slice and whether it holds a NaN, in one pass over 16
/// independent lanes (the compiler turns the lanes into SIMD max and compare
/// instructions). A NaN never compares greater, so it is flagged on its own; an Inf shows
/// up as the maximum.
pub(crate) fn max_abs_and_nan<T: Scalar>(s: &[T]) -> (T, bool) {
    const LANES: usize = 16;
    let mut max = [T::zero(); LANES];
    let mut nan = [false; LANES];
    let chunks = s.chunks_exact(LANES);
    let tail = chunks.remainder();
    for chunk in chunks {
        for l in 0..LANES {
            let a = chunk[l].abs();
            max[l] = if a > max[l] { a } else { max[l] };
            nan[l] |= a.is_nan();
        }
    }
    let mut m = T::zero();
    let mut any_nan = false;
    for (&v, &n) in max.iter().zip(&nan) {
        m = if v > m { v } else { m };
        any_nan |= n;
    }
    for &v in tail {
        let a = v.abs();
        m = if a > m { a } else { m };
        any_nan |= a.is_nan();
    }
    (m, any_nan)
}

/// The largest `|x|` over all entries, or [`Error::NonFinite`] with the row-major index
/// of the first NaN/Inf.
///
/// Contiguous inputs (any memory order) are scanned in one vectorised pass, in parallel
/// over fixed blocks; the exact index is looked for only on the error path.
pub(crate) fn finite_max_abs<T: Scalar, D: ndarray::Dimension>(
    context: &'static str,
    x: &ndarray::ArrayView<'_, T, D>,
) -> Result<T> {
    use rayon::prelude::*;
    const BLOCK: usize = 1 << 16;
    let first_bad = || Error::NonFinite {
        context,
        index: x.iter().position(|v| !v.is_finite()).unwrap_or(0),
    };
    let Some(s) = x.as_slice_memory_order() else {
        let mut largest = T::zero();
        for (index, v) in x.iter().enumerate() {
            if !v.is_finite() {
                return Err(Error::NonFinite { context, index });
            }
            largest = largest.max(v.abs());
        }
        return Ok(largest);
    };
    let (max, nan) = if s.len() > BLOCK {
        s.par_chunks(BLOCK)
            .map(max_abs_and_nan)
            .reduce(|| (T::zero(), false), |a, b| (a.0.max(b.0), a.1 | b.1))
    } else {
        max_abs_and_nan(s)
    };
    if nan || !max.is_finite() {
        return Err(first_bad());
    }
    Ok(max)
}

/// Rejects tensors that no decomposition can take: no modes, an empty mode, a NaN/Inf,
/// or entries so deep in the subnormal range that they carry fewer than half the
/// significand's bits.
///
/// The last case: when the largest `|x|` is below `MIN_POSITIVE · √ε` (about `4e-42` in
/// `f32`, `3e-316` in `f64`), every entry is a multiple of the smallest subnormal with
/// fewer than 12 (`f32`) or 26 (`f64`) significant bits, and the cores and the rebuilt
/// tensor round on that grid too: no error bound can be guaranteed (measured: relative
/// errors 0.27-0.51 at `f32` 1e-44 for a requested 1e-2). Scaling by a power of two is
/// exact and avoids it.
///
/// # Errors
/// [`Error::Empty`], [`Error::NonFinite`], or [`Error::InvalidParameter`] (`tensor`) for
/// the subnormal case.
pub fn check_tensor<T: Scalar>(context: &'static str, x: &ArrayViewD<'_, T>) -> Result<()> {
    if x.ndim() == 0 || x.shape().contains(&0) {
        return Err(Error::Empty {
            context,
            shape: x.shape().to_vec(),
        });
    }
    let largest = finite_max_abs(context, x)?;
    if largest > T::zero() && largest < T::min_positive_value() * T::epsilon().sqrt() {
        return Err(Error::param(
            "tensor",
            format!(
                "{context}: the largest entry, {largest:e}, lies deep in the subnormal range of \
                 {} (fewer than half the significand's bits), where no error bound can be \
                 guaranteed; multiply the tensor by a power of two (exact) or use f64",
                T::NAME
            ),
        ));
    }
    Ok(())
}

/// Mode-`k` unfolding `X_(k)` (`n_k x N/n_k`); see the [module conventions](self).
///
/// # Errors
/// [`Error::InvalidMode`] if `k >= x.ndim()`.
///
/// # Example
/// ```
/// use ndarray::{ArrayD, IxDyn};
/// let x = ArrayD::from_shape_fn(IxDyn(&[2, 3, 4]), |i| (i[0] * 100 + i[1] * 10 + i[2]) as f64);
/// let m = tnet::dense::unfold(x.view(), 1).unwrap();
/// assert_eq!(m.dim(), (3, 8));
/// assert_eq!(m[[2, 5]], 121.0); // i_1 = 2, (i_0, i_2) = (1, 1)
/// let back = tnet::dense::fold(m.view(), 1, &[2, 3, 4]).unwrap();
/// assert_eq!(back, x);
/// ```
pub fn unfold<T: Scalar>(x: ArrayViewD<'_, T>, k: usize) -> Result<Array2<T>> {
    unfold_modes(x, &[k])
}

/// Unfolding `X^{(t)}` with the modes `row_modes` (in that order) on the rows.
///
/// # Errors
/// [`Error::InvalidMode`] for a mode `>= x.ndim()`, [`Error::InvalidParameter`] for a
/// repeated mode.
pub fn unfold_modes<T: Scalar>(x: ArrayViewD<'_, T>, row_modes: &[usize]) -> Result<Array2<T>> {
    let order = x.ndim();
    let mut seen = vec![false; order];
    for &k in row_modes {
        if k >= order {
            return Err(Error::InvalidMode { mode: k, order });
        }
        if seen[k] {
            return Err(Error::param("row_modes", format!("mode {k} appears twice")));
        }
        seen[k] = true;
    }
    let rows: usize = row_modes.iter().map(|&k| x.shape()[k]).product();
    // The product of the other modes (not N / rows, which is 0 / 0 for an empty row mode).
    let cols: usize = (0..order)
        .filter(|&k| !seen[k])
        .map(|k| x.shape()[k])
        .product();
    let perm = rows_first_permutation(order, row_modes);
    let data = standard_copy(x.permuted_axes(perm))
        .into_raw_vec_and_offset()
        .0;
    Ok(Array2::from_shape_vec((rows, cols), data).expect("sizes agree by construction"))
}

/// Inverse of [`unfold`]: the tensor of shape `shape` whose mode-`k` unfolding is `m`.
///
/// # Errors
/// [`Error::InvalidMode`] or [`Error::ShapeMismatch`] if `m` is not `n_k x N/n_k`.
pub fn fold<T: Scalar>(m: ArrayView2<'_, T>, k: usize, shape: &[usize]) -> Result<ArrayD<T>> {
    let order = shape.len();
    if k >= order {
        return Err(Error::InvalidMode { mode: k, order });
    }
    // Checked: a shape whose product overflows cannot match any matrix.
    let cols = shape
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != k)
        .try_fold(1usize, |a, (_, &n)| a.checked_mul(n));
    let expected = vec![shape[k], cols.unwrap_or(usize::MAX)];
    if cols.is_none() || m.shape() != expected.as_slice() {
        return Err(Error::ShapeMismatch {
            context: "fold",
            expected,
            got: m.shape().to_vec(),
        });
    }
    let perm = rows_first_permutation(order, &[k]);
    let permuted_shape: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
    let data: Vec<T> = m.iter().copied().collect();
    let t = ArrayD::from_shape_vec(IxDyn(&permuted_shape), data).expect("sizes agree");
    // Undo the permutation: axis perm[i] of the result is axis i of `t`.
    let mut inverse = vec![0; order];
    for (i, &p) in perm.iter().enumerate() {
        inverse[p] = i;
    }
    Ok(standard_copy(t.view().permuted_axes(inverse)))
}

/// Mode-`k` product `Y = X ×_k A` with `A` of shape `J x n_k`: `Y_(k) = A X_(k)`.
///
/// Computed as one GEMM per slab of the leading modes, without unfolding copies of `X`.
/// Cost `2 J N` flops.
///
/// # Errors
/// [`Error::InvalidMode`], or [`Error::ShapeMismatch`] if `A` has not `n_k` columns.
///
/// # Example
/// ```
/// use ndarray::{array, ArrayD, IxDyn};
/// let x = ArrayD::<f64>::ones(IxDyn(&[2, 3]));
/// let a = array![[1.0, 1.0, 1.0]]; // sums mode 1
/// let y = tnet::dense::mode_product(x.view(), a.view(), 1).unwrap();
/// assert_eq!(y.shape(), &[2, 1]);
/// assert_eq!(y[[0, 0]], 3.0);
/// ```
pub fn mode_product<T: Scalar>(
    x: ArrayViewD<'_, T>,
    a: ArrayView2<'_, T>,
    k: usize,
) -> Result<ArrayD<T>> {
    let order = x.ndim();
    if k >= order {
        return Err(Error::InvalidMode { mode: k, order });
    }
    let nk = x.shape()[k];
    if a.ncols() != nk {
        return Err(Error::ShapeMismatch {
            context: "mode_product",
            expected: vec![a.nrows(), nk],
            got: a.shape().to_vec(),
        });
    }
    Ok(contract_axes(x, k, 1, a))
}

/// Contracts the consecutive axes `p..p+len` of `x` (flattened row-major, `n` values) with
/// `a` (`J x n`), putting an axis of size `J` in their place: with `x` viewed as
/// `(left, n, right)`, `y[i, :, j] = a · x[i, :, j]`.
///
/// Runs `min(left, right)` GEMMs on strided views (never one per entry), so it is
/// efficient for the first, middle and last modes alike. Cost `2 J N` flops.
///
/// # Panics
/// If the axes are out of range or `a` has not `n` columns (internal invariant).
pub(crate) fn contract_axes<T: Scalar>(
    x: ArrayViewD<'_, T>,
    p: usize,
    len: usize,
    a: ArrayView2<'_, T>,
) -> ArrayD<T> {
    use crate::linalg::{Parallelism, matmul_into};
    let x = x.as_standard_layout();
    let shape = x.shape();
    let left: usize = shape[..p].iter().product();
    let n: usize = shape[p..p + len].iter().product();
    let right: usize = shape[p + len..].iter().product();
    assert_eq!(
        a.ncols(),
        n,
        "contract_axes: a has the wrong number of columns"
    );
    let j = a.nrows();
    let mut out_shape = shape[..p].to_vec();
    out_shape.push(j);
    out_shape.extend_from_slice(&shape[p + len..]);
    let mut y = ArrayD::<T>::zeros(IxDyn(&out_shape));
    let xs = x.as_slice().expect("standard layout");
    let ys = y.as_slice_mut().expect("fresh array");
    let x3 = ndarray::ArrayView3::from_shape((left, n, right), xs).expect("sizes agree");
    let mut y3 = ndarray::ArrayViewMut3::from_shape((left, j, right), ys).expect("sizes agree");
    // Spread the GEMMs over rayon's threads only when there is enough work to pay for it.
    let parallel = left.min(right) > 1 && x3.len() * j > 1 << 20;
    if right >= left {
        // One GEMM per leading index: y[i] (J x right) = a (J x n) · x[i] (n x right).
        let job = |(yi, xi): (ndarray::ArrayViewMut2<'_, T>, ArrayView2<'_, T>)| {
            matmul_into(yi, a, xi, T::one(), false, Parallelism::Seq)
        };
        if parallel {
            use rayon::prelude::*;
            y3.axis_iter_mut(ndarray::Axis(0))
                .into_par_iter()
                .zip(x3.axis_iter(ndarray::Axis(0)))
                .for_each(job);
        } else {
            y3.axis_iter_mut(ndarray::Axis(0))
                .zip(x3.axis_iter(ndarray::Axis(0)))
                .for_each(job);
        }
    } else {
        // One GEMM per trailing index: y[:, :, j] (left x J) = x[:, :, j] (left x n) · a^T.
        let job = |(yj, xj): (ndarray::ArrayViewMut2<'_, T>, ArrayView2<'_, T>)| {
            matmul_into(yj, xj, a.t(), T::one(), false, Parallelism::Seq)
        };
        if parallel {
            use rayon::prelude::*;
            y3.axis_iter_mut(ndarray::Axis(2))
                .into_par_iter()
                .zip(x3.axis_iter(ndarray::Axis(2)))
                .for_each(job);
        } else {
            y3.axis_iter_mut(ndarray::Axis(2))
                .zip(x3.axis_iter(ndarray::Axis(2)))
                .for_each(job);
        }
    }
    y
}

/// `Σ x²` over a tensor's entries, accumulated in `f64`: partial sums over fixed blocks of
/// 2^16 entries (in parallel), added block by block, so the result does not depend on
/// the thread count. (Entries above about `1e154` in `f64` overflow; use [`norm`] for a
/// scaled norm.)
pub(crate) fn sum_of_squares<T: Scalar>(t: ArrayViewD<'_, T>) -> f64 {
    use rayon::prelude::*;
    const BLOCK: usize = 1 << 16;
    let block_sum = |b: &[T]| b.iter().map(|v| v.as_f64() * v.as_f64()).sum::<f64>();
    match t.as_slice_memory_order() {
        Some(s) if s.len() > BLOCK => s
            .par_chunks(BLOCK)
            .map(block_sum)
            .collect::<Vec<f64>>()
            .into_iter()
            .sum::<f64>(),
        Some(s) => block_sum(s),
        None => t.iter().map(|v| v.as_f64() * v.as_f64()).sum::<f64>(),
    }
}

/// Frobenius norm `‖X‖_F`, computed with scaling so that it neither overflows nor
/// underflows for representable inputs.
///
/// One pass in the common case: `Σ x²` accumulated in `f64` over fixed blocks (in
/// parallel, in a fixed order: the result does not depend on the thread count), which
/// cannot overflow for `f32` entries; only when that sum overflows or falls below
/// `1e-270` (entries near the ends of the `f64` range) is the norm recomputed with
/// scaling by the largest magnitude (two passes).
pub fn norm<T: Scalar>(x: ArrayViewD<'_, T>) -> T {
    /// Sums of squares below this may have lost entries to underflow.
    const TINY: f64 = 1.0e-270;
    let ss = sum_of_squares(x.view());
    if ss.is_finite() && ss > TINY {
        return T::cast(ss.sqrt());
    }
    let scale = x.iter().fold(T::zero(), |m, v| m.max(v.abs()));
    if scale == T::zero() || !scale.is_finite() {
        return scale;
    }
    let s: T = x.iter().map(|&v| (v / scale) * (v / scale)).sum();
    scale * s.sqrt()
}

/// Relative error `‖X − Y‖_F / ‖X‖_F`; defined as `‖Y‖_F` when `X = 0` (so it is 0 for
/// two zero tensors and never divides by zero).
///
/// # Errors
/// [`Error::ShapeMismatch`] if the shapes differ.
pub fn rel_error<T: Scalar>(x: ArrayViewD<'_, T>, y: ArrayViewD<'_, T>) -> Result<T> {
    let nd = distance(x.view(), y)?;
    let nx = norm(x);
    Ok(if nx == T::zero() { nd } else { nd / nx })
}

/// `‖X − Y‖_F` of two dense tensors of one shape, without forming the difference (two
/// passes over both; differences taken in `f64` and scaled by the largest, so the sum
/// neither overflows nor underflows unless a difference itself exceeds the `f64` range).
///
/// # Errors
/// [`Error::ShapeMismatch`] if the shapes differ.
///
/// # Example
/// ```
/// let x = ndarray::arr1(&[3.0e200_f64, 0.0]).into_dyn();
/// let y = ndarray::arr1(&[0.0_f64, 4.0e200]).into_dyn();
/// let d = tnet::dense::distance(x.view(), y.view()).unwrap();
/// assert!((d / 5.0e200 - 1.0).abs() < 1e-15);
/// ```
pub fn distance<T: Scalar>(x: ArrayViewD<'_, T>, y: ArrayViewD<'_, T>) -> Result<T> {
    if x.shape() != y.shape() {
        return Err(Error::ShapeMismatch {
            context: "distance",
            expected: x.shape().to_vec(),
            got: y.shape().to_vec(),
        });
    }
    Ok(ScaledSumSq::of_difference(x, y).norm())
}

/// A sum of squares kept as `scale² · ssq` (LAPACK's `dnrm2`/`dlassq` representation), so
/// that partial sums over blocks of a tensor combine without overflow or underflow for
/// any finite entries. Used for norms of differences computed block by block, never
/// forming the difference.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct ScaledSumSq {
    scale: f64,
    ssq: f64,
}

impl ScaledSumSq {
    /// `Σ (x_i − y_i)²` over two arrays of one shape (checked by the caller), in two
    /// passes over them and no allocation. NaN entries make the result NaN.
    pub(crate) fn of_difference<T: Scalar>(x: ArrayViewD<'_, T>, y: ArrayViewD<'_, T>) -> Self {
        debug_assert_eq!(x.shape(), y.shape());
        let zip = || ndarray::Zip::from(&x).and(&y);
        let scale = zip().fold(0.0f64, |m, &a, &b| {
            let d = (a.as_f64() - b.as_f64()).abs();
            if d > m || d.is_nan() { d } else { m }
        });
        if scale == 0.0 || !scale.is_finite() {
            return Self { scale, ssq: 1.0 };
        }
        let ssq = zip().fold(0.0f64, |s, &a, &b| {
            let d = (a.as_f64() - b.as_f64()) / scale;
            s + d * d
        });
        Self { scale, ssq }
    }

    /// The combined sum of two partial sums.
    pub(crate) fn add(self, other: Self) -> Self {
        let (big, small) = if self.scale >= other.scale || other.scale.is_nan() {
            (self, other)
        } else {
            (other, self)
        };
        if small.scale == 0.0 || !big.scale.is_finite() {
            return big;
        }
        let ratio = small.scale / big.scale;
        Self {
            scale: big.scale,
            ssq: big.ssq + small.ssq * ratio * ratio,
        }
    }

    /// `sqrt(Σ)` in the working precision (saturating to infinity when it overflows `T`).
    pub(crate) fn norm<T: Scalar>(self) -> T {
        T::cast(self.scale * self.ssq.sqrt())
    }
}

/// Inner product `<X, Y> = sum_i X_i Y_i` of two dense tensors of the same shape.
///
/// # Errors
/// [`Error::ShapeMismatch`] if the shapes differ.
pub fn inner<T: Scalar>(x: ArrayViewD<'_, T>, y: ArrayViewD<'_, T>) -> Result<T> {
    if x.shape() != y.shape() {
        return Err(Error::ShapeMismatch {
            context: "inner",
            expected: x.shape().to_vec(),
            got: y.shape().to_vec(),
        });
    }
    Ok(x.iter().zip(y.iter()).map(|(&a, &b)| a * b).sum())
}

/// A seeded random generator (ChaCha8): every random object in tnet is reproducible from
/// a `u64` seed.
pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// A tensor of the given shape with i.i.d. standard normal entries, from a seed.
///
/// # Example
/// ```
/// let x = tnet::dense::random_normal::<f64>(&[3, 4], 7);
/// assert_eq!(x, tnet::dense::random_normal::<f64>(&[3, 4], 7));
/// ```
pub fn random_normal<T: Scalar>(shape: &[usize], seed: u64) -> ArrayD<T> {
    let mut g = rng(seed);
    random_normal_with(shape, &mut g)
}

/// Like [`random_normal`], drawing from a caller-owned generator.
pub fn random_normal_with<T: Scalar, R: rand::Rng>(shape: &[usize], g: &mut R) -> ArrayD<T> {
    ArrayD::from_shape_simple_fn(IxDyn(shape), || {
        let v: f64 = StandardNormal.sample(g);
        T::cast(v)
    })
}

/// Random matrix with orthonormal columns (`n x r`, `r <= n`), from the QR of a Gaussian
/// matrix.
pub fn random_orthonormal<T: Scalar, R: rand::Rng>(n: usize, r: usize, g: &mut R) -> Array2<T> {
    let a = random_normal_with::<T, R>(&[n, r], g)
        .into_dimensionality()
        .expect("2-D");
    crate::linalg::qr(a.view()).0
}

/// Modes in the order that makes a chain of mode products (or truncations) cheapest.
///
/// Step `k` costs `cost[k]` times the current tensor size and multiplies that size by
/// `ratio[k]`; the total `Σ_j cost[σ_j] Π_{i<j} ratio[σ_i]` is minimised by Smith's rule
/// (an exchange argument): shrinking modes first by increasing `cost / (1 − ratio)`,
/// then size-preserving ones, then growing ones by increasing `cost / (1 − ratio)`.
pub(crate) fn cheapest_order(cost: &[f64], ratio: &[f64]) -> Vec<usize> {
    let group = |k: usize| {
        if ratio[k] < 1.0 {
            0
        } else if ratio[k] == 1.0 {
            1
        } else {
            2
        }
    };
    let key = |k: usize| {
        if ratio[k] == 1.0 {
            cost[k]
        } else {
            cost[k] / (1.0 - ratio[k])
        }
    };
    let mut order: Vec<usize> = (0..cost.len()).collect();
    order.sort_by(|&a, &b| {
        group(a)
            .cmp(&group(b))
            .then(key(a).total_cmp(&key(b)))
            .then(a.cmp(&b))
    });
    order
}

/// `X ×_{k_1} A_1 ×_{k_2} A_2 ..` for distinct modes, in the cheapest order (see
/// [`cheapest_order`]). An empty list returns a copy of `X`.
///
/// # Panics
/// If a mode is out of range or a matrix has the wrong number of columns (internal
/// invariant: callers pass factors of a validated tensor).
#[track_caller]
pub(crate) fn multi_mode_product<T: Scalar>(
    x: ArrayViewD<'_, T>,
    ops: &[(usize, ArrayView2<'_, T>)],
) -> ArrayD<T> {
    let cost: Vec<f64> = ops.iter().map(|(_, a)| a.nrows() as f64).collect();
    let ratio: Vec<f64> = ops
        .iter()
        .map(|(k, a)| a.nrows() as f64 / x.shape()[*k] as f64)
        .collect();
    let mut cur: Option<ArrayD<T>> = None;
    for i in cheapest_order(&cost, &ratio) {
        let (k, a) = &ops[i];
        let src = cur.as_ref().map_or(x.view(), ArrayD::view);
        cur = Some(
            mode_product(src, a.view(), *k).expect("internal invariant: matrix matches the mode"),
        );
    }
    cur.unwrap_or_else(|| x.to_owned())
}
