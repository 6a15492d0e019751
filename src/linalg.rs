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
//! spread over cores with rayon by the callers instead.
//!
//! Accuracy: singular values always come from an SVD (or a QR followed by an SVD of the
//! triangular factor), never from a Gram matrix, so they are accurate to about
//! `eps * sigma_max` instead of `sqrt(eps) * sigma_max`.

use faer::diag::Diag;
use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::matmul::matmul as faer_matmul;
use faer::linalg::svd::ComputeSvdVectors;
use faer::prelude::{Reborrow, ReborrowMut};
use faer::{Accum, Mat, MatMut, MatRef, Par};
use ndarray::{Array2, ArrayView2, ArrayViewD, ArrayViewMut2, ShapeBuilder};

use crate::{Error, Result, Scalar};

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

    /// The number of singular values to keep from `s` (sorted non-increasingly), and the
    /// Frobenius norm of the discarded tail.
    ///
    /// The rank is the smallest `r >= 1` with `sqrt(sum_{i >= r} s_i^2) <= tol`, then capped
    /// by `max_rank`. Cost `O(len(s))`.
    pub fn rank_for(&self, s: &[T]) -> (usize, T) {
        if s.is_empty() {
            return (0, T::zero());
        }
        // tail[i] = sum_{j >= i} s_j^2, accumulated from the small end for accuracy.
        let mut tail = vec![T::zero(); s.len() + 1];
        for i in (0..s.len()).rev() {
            tail[i] = tail[i + 1] + s[i] * s[i];
        }
        let tol2 = self.tol * self.tol;
        let mut r = s.len();
        while r > 1 && tail[r - 1] <= tol2 {
            r -= 1;
        }
        let r = r.min(self.max_rank.max(1));
        (r, tail[r].sqrt())
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

fn check_finite<T: Scalar>(context: &'static str, a: &ArrayView2<'_, T>) -> Result<()> {
    if let Some(index) = a.iter().position(|x| !x.is_finite()) {
        return Err(Error::NonFinite { context, index });
    }
    Ok(())
}

/// Full thin SVD of `a` (faer, sequential), with U and optionally V.
fn svd_full<T: Scalar>(
    a: MatRef<'_, T>,
    want_u: bool,
    want_v: bool,
) -> Result<(Mat<T>, Mat<T>, Vec<T>)> {
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
    check_finite("svd", &a)?;
    let (u, v, s) = svd_full(as_faer(&a), true, want_v)?;
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
/// This is the workhorse of HT-SVD and Tucker's HOSVD. The unfolding is gathered once into
/// a column-major buffer holding `(X^{(t)})^T`; when the unfolding is wide (the usual
/// case: few rows, many columns) the buffer is QR-factorised in place and only the small
/// triangular factor goes through the SVD, so the whole costs one copy of the tensor and
/// `O(N * rows)` flops, `N` the number of entries. The right singular vectors are not
/// formed.
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
    let perm = crate::dense::rows_first_permutation(x.ndim(), row_modes);
    let rows: usize = row_modes.iter().map(|&k| x.shape()[k]).product();
    let total = x.len();
    let cols = total.checked_div(rows).unwrap_or(0);
    // Column-major (cols x rows) buffer == row-major X^{(t)} == permuted tensor in C order.
    let permuted = x.permuted_axes(perm);
    let mut data: Vec<T> = Vec::with_capacity(total);
    data.extend(permuted.iter().copied());
    if let Some(index) = data.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFinite {
            context: "tensor unfolding",
            index,
        });
    }
    let mut xt = MatMut::from_column_major_slice_mut(&mut data, cols, rows);
    let s_and_u = if cols > rows {
        // Tall (X^{(t)})^T = Q R, so X^{(t)} = R^T Q^T: the left singular vectors of X^{(t)}
        // are those of R^T, i.e. the right singular vectors of R.
        qr_in_place_r(xt.rb_mut());
        let r = xt.rb().submatrix(0, 0, rows, rows);
        let mut r_up = Mat::<T>::zeros(rows, rows);
        for j in 0..rows {
            for i in 0..=j {
                r_up[(i, j)] = r[(i, j)];
            }
        }
        let (_, v, s) = svd_full(r_up.as_ref(), false, true)?;
        (s, v)
    } else {
        let (_, v, s) = svd_full(xt.rb(), false, true)?;
        (s, v)
    };
    let (s, v) = s_and_u;
    let (rank, discarded) = rule.rank_for(&s);
    let u = to_ndarray(v.as_ref().subcols(0, rank));
    Ok(TruncatedSvd {
        u,
        vt: None,
        singular_values: s,
        rank,
        discarded,
    })
}

/// Householder QR in place; afterwards the upper triangle of `a` holds R.
fn qr_in_place_r<T: Scalar>(mut a: MatMut<'_, T>) {
    use faer::linalg::qr::no_pivoting::factor;
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

/// Thin QR factorisation `A = Q R` with `Q` (`m x k`, orthonormal columns) and `R`
/// (`k x n`, upper trapezoidal), `k = min(m, n)`. Cost `O(m n k)`.
///
/// # Example
/// ```
/// use ndarray::array;
/// let a = array![[1.0_f64, 2.0], [3.0, 4.0], [5.0, 6.0]];
/// let (q, r) = tnet::linalg::qr(a.view());
/// let back = q.dot(&r);
/// assert!((&back - &a).iter().all(|d| d.abs() < 1e-12));
/// ```
pub fn qr<T: Scalar>(a: ArrayView2<'_, T>) -> (Array2<T>, Array2<T>) {
    let (m, n) = a.dim();
    let k = m.min(n);
    if k == 0 {
        return (Array2::zeros((m, 0)), Array2::zeros((0, n)));
    }
    let f = as_faer(&a).qr();
    let q = f.compute_thin_Q();
    let r = f.thin_R();
    (to_ndarray(q.as_ref()), to_ndarray(r))
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
