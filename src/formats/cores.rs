//! Kernels on chains of 3-way cores `(r_prev, n_k, r_next)`, shared by the TT and TR
//! formats (crate-private).
//!
//! A *chain* is a list of cores whose neighbouring ranks agree; its first core may have a
//! left rank and its last core a right rank other than 1 (an *open* chain, as a tensor ring
//! cut at one bond). Every core is kept in standard (row-major) layout, so its left
//! unfolding `(r_prev n_k) x r_next` and right unfolding `r_prev x (n_k r_next)` are free
//! reshapes.

use ndarray::{Array2, Array3, ArrayView2, ArrayView3, ArrayViewMut2, s};

use crate::linalg::{
    MatrixTruncation, Parallelism, TruncatedSvd, left_svd_streaming, matmul_into,
    project_and_factor, qr,
};
use crate::{Error, Result, Scalar};

/// `C = A B` into a fresh row-major array (so that it can be reshaped without a copy).
pub(crate) fn matmul_rm<T: Scalar>(a: ArrayView2<'_, T>, b: ArrayView2<'_, T>) -> Array2<T> {
    let mut c = Array2::<T>::zeros((a.nrows(), b.ncols()));
    matmul_into(c.view_mut(), a, b, T::one(), false, Parallelism::Seq);
    c
}

/// `C <- A B` into a given row-major view.
pub(crate) fn matmul_to<T: Scalar>(
    c: ArrayViewMut2<'_, T>,
    a: ArrayView2<'_, T>,
    b: ArrayView2<'_, T>,
) {
    matmul_into(c, a, b, T::one(), false, Parallelism::Seq);
}

/// Left unfolding `(r_prev n) x r_next` of a standard-layout core (a view, no copy).
///
/// # Panics
/// If the core is not in standard layout (internal invariant of the formats).
pub(crate) fn left_unfolding<'a, T: Scalar>(g: &'a Array3<T>) -> ArrayView2<'a, T> {
    let (r, n, q) = g.dim();
    g.view()
        .into_shape_with_order((r * n, q))
        .expect("internal invariant: cores are in standard layout")
}

/// Right unfolding `r_prev x (n r_next)` of a standard-layout core (a view, no copy).
///
/// # Panics
/// If the core is not in standard layout (internal invariant of the formats).
pub(crate) fn right_unfolding<'a, T: Scalar>(g: &'a Array3<T>) -> ArrayView2<'a, T> {
    let (r, n, q) = g.dim();
    g.view()
        .into_shape_with_order((r, n * q))
        .expect("internal invariant: cores are in standard layout")
}

/// A core from a row-major matrix of `r * n * q` entries.
pub(crate) fn core_from<T: Scalar>(m: Array2<T>, r: usize, n: usize, q: usize) -> Array3<T> {
    let m = if m.is_standard_layout() {
        m
    } else {
        m.as_standard_layout().into_owned()
    };
    m.into_shape_with_order((r, n, q))
        .expect("internal invariant: sizes agree")
}

/// Checks a list of cores for the shared invariants and normalises them to standard
/// layout: at least one core, no empty mode, no zero rank, neighbouring ranks equal
/// (cyclically when `ring`), boundary ranks 1 when not `ring`, finite entries.
pub(crate) fn check_cores<T: Scalar>(
    context: &'static str,
    cores: Vec<Array3<T>>,
    ring: bool,
) -> Result<Vec<Array3<T>>> {
    if cores.is_empty() {
        return Err(Error::Empty {
            context,
            shape: Vec::new(),
        });
    }
    let d = cores.len();
    let shape: Vec<usize> = cores.iter().map(|g| g.dim().1).collect();
    if shape.contains(&0) {
        return Err(Error::Empty { context, shape });
    }
    for (k, g) in cores.iter().enumerate() {
        let (r, _, q) = g.dim();
        if r == 0 || q == 0 {
            return Err(Error::rank(
                context,
                format!(
                    "core {k} has shape {:?}: ranks must be at least 1",
                    g.shape()
                ),
            ));
        }
    }
    for k in 0..d {
        let next = if k + 1 < d {
            k + 1
        } else if ring {
            0
        } else {
            break;
        };
        let (q, r) = (cores[k].dim().2, cores[next].dim().0);
        if q != r {
            return Err(Error::rank(
                context,
                format!(
                    "core {k} has right rank {q} but core {next} has left rank {r} (shapes {:?} and {:?})",
                    cores[k].shape(),
                    cores[next].shape()
                ),
            ));
        }
    }
    if !ring {
        let (r0, rd) = (cores[0].dim().0, cores[d - 1].dim().2);
        if r0 != 1 || rd != 1 {
            return Err(Error::rank(
                context,
                format!("the boundary ranks r_0 and r_d must be 1, got {r0} and {rd}"),
            ));
        }
    }
    let mut offset = 0;
    for g in &cores {
        if let Some(i) = g.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                context,
                index: offset + i,
            });
        }
        offset += g.len();
    }
    Ok(cores
        .into_iter()
        .map(|g| {
            if g.is_standard_layout() {
                g
            } else {
                g.as_standard_layout().into_owned()
            }
        })
        .collect())
}

/// The most entries [`chain_matrix`] holds at once: two consecutive partial products
/// `(r_first n_1..n_k) x r_k` (saturating).
pub(crate) fn chain_work<T: Scalar>(cores: &[ArrayView3<'_, T>]) -> u128 {
    let mut rows = cores[0].dim().0 as u128;
    let mut previous = 0u128;
    let mut most = 0u128;
    for g in cores {
        let (_, n, q) = g.dim();
        rows = rows.saturating_mul(n as u128);
        let current = rows.saturating_mul(q as u128);
        most = most.max(previous.saturating_add(current));
        previous = current;
    }
    most
}

/// The open chain as a matrix `M[(a, i_1..i_d), b]` of shape `(r_first N) x r_last`,
/// row-major. Cost `2 Σ_k r_first n_1..n_k r_k r_{k+1}` flops; memory the result.
pub(crate) fn chain_matrix<T: Scalar>(cores: &[ArrayView3<'_, T>]) -> Array2<T> {
    let g0 = cores[0].as_standard_layout();
    let (r, n, q) = g0.dim();
    let mut m = g0
        .to_owned()
        .into_shape_with_order((r * n, q))
        .expect("standard layout");
    for g in &cores[1..] {
        let g = g.as_standard_layout();
        let (r, n, q) = g.dim();
        let gm = g
            .view()
            .into_shape_with_order((r, n * q))
            .expect("standard layout");
        let p = m.nrows();
        m = matmul_rm(m.view(), gm)
            .into_shape_with_order((p * n, q))
            .expect("row-major product");
    }
    m
}

/// `Σ_i X[i] · (chain)[0, i, 0]` for a chain with boundary ranks 1 and a dense tensor in
/// standard layout given as a flat slice, contracting from the last mode: `X` is never
/// copied and the first step costs `2 N r` flops with an `N r / n` result.
pub(crate) fn chain_inner_dense<T: Scalar>(cores: &[ArrayView3<'_, T>], x: &[T]) -> T {
    let d = cores.len();
    let right = |g: &ArrayView3<'_, T>| {
        let g = g.as_standard_layout().into_owned();
        let (r, n, q) = g.dim();
        g.into_shape_with_order((r, n * q))
            .expect("standard layout")
    };
    // Rows: the leading modes (row-major); columns: (n_k, r_{k+1}) of the current core.
    let g = right(&cores[d - 1]);
    let xm = ArrayView2::from_shape((x.len() / g.ncols(), g.ncols()), x).expect("sizes agree");
    let mut v = matmul_rm(xm, g.t());
    for core in cores[..d - 1].iter().rev() {
        let g = right(core);
        let rows = v.len() / g.ncols();
        let vm = v
            .into_shape_with_order((rows, g.ncols()))
            .expect("row-major");
        v = matmul_rm(vm.view(), g.t());
    }
    v.iter().copied().sum()
}

/// The row vector `G_1[a, i_1, :] · .. · G_d[:, i_d, :]` as an `r_first x r_last`
/// matrix. Cost `O(d r^3)`.
pub(crate) fn chain_slice_product<T: Scalar>(cores: &[Array3<T>], index: &[usize]) -> Array2<T> {
    let mut m = cores[0].slice(s![.., index[0], ..]).to_owned();
    for (g, &i) in cores[1..].iter().zip(&index[1..]) {
        m = matmul_rm(m.view(), g.slice(s![.., i, ..]));
    }
    m
}

/// Left-orthogonalises the cores `0..upto` of a chain (each left unfolding gets
/// orthonormal columns), pushing the triangular factors into core `upto`. Ranks may
/// shrink to `min(r n, r_next)`. The represented (open) tensor is unchanged.
/// Cost `O(Σ n r^3)`.
pub(crate) fn left_orthogonalize<T: Scalar>(cores: &mut [Array3<T>], upto: usize) {
    for k in 0..upto {
        let (r, n, _) = cores[k].dim();
        let (q, rf) = qr(left_unfolding(&cores[k]));
        let m = q.ncols();
        cores[k] = core_from(q, r, n, m);
        let (_, n2, q2) = cores[k + 1].dim();
        let next = matmul_rm(rf.view(), right_unfolding(&cores[k + 1]));
        cores[k + 1] = core_from(next, m, n2, q2);
    }
}

/// Right-orthogonalises the cores `from+1..d` (each right unfolding gets orthonormal
/// rows), pushing the factors into core `from`. Cost `O(Σ n r^3)`.
pub(crate) fn right_orthogonalize<T: Scalar>(cores: &mut [Array3<T>], from: usize) {
    for k in (from + 1..cores.len()).rev() {
        let (_, n, q) = cores[k].dim();
        // G^T = Q R  =>  G = R^T Q^T.
        let (qm, rf) = qr(right_unfolding(&cores[k]).t());
        let m = qm.ncols();
        cores[k] = core_from(qm.t().to_owned(), m, n, q);
        let (r1, n1, _) = cores[k - 1].dim();
        let prev = matmul_rm(left_unfolding(&cores[k - 1]), rf.t());
        cores[k - 1] = core_from(prev, r1, n1, m);
    }
}

/// Transfer-matrix contraction of two chains of the same mode sizes:
/// `M[(a, a'), (b, b')] = Σ_i (G_1[:, i_1, :] .. G_d[:, i_d, :])[a, b] (G'_1 ..)[a', b']`,
/// returned as the array `(r_first r'_first, r_last, r'_last)`.
///
/// Built left to right, each step contracting one core at a time (two GEMMs), so the
/// cost is `O(Σ_k r_0 r'_0 n_k (r_k r'_k r_{k+1} + r'_k r_{k+1} r'_{k+1}))` and no
/// `(r r')^2` transfer matrix is formed.
pub(crate) fn chain_transfer<T: Scalar>(a: &[Array3<T>], b: &[Array3<T>]) -> Array3<T> {
    let (ra, _, _) = a[0].dim();
    let (rb, _, _) = b[0].dim();
    // Start: M[(a0, a0'), a, a'] = δ(a0, a) δ(a0', a').
    let p = ra * rb;
    let mut m = Array3::<T>::zeros((p, ra, rb));
    for i in 0..ra {
        for j in 0..rb {
            m[[i * rb + j, i, j]] = T::one();
        }
    }
    for (ga, gb) in a.iter().zip(b) {
        let (r, n, q) = ga.dim();
        let (r2, _, q2) = gb.dim();
        // T1[(p, a'), (i, b)] = Σ_a M[p, a, a'] G[a, i, b].
        let mt = m
            .view()
            .permuted_axes([0, 2, 1])
            .as_standard_layout()
            .into_owned()
            .into_shape_with_order((p * r2, r))
            .expect("standard");
        let t1 = matmul_rm(mt.view(), right_unfolding(ga)); // (p r2) x (n q)
        // T2[(p, b), (a', i)] then contract with G'[(a', i), b'].
        let t1 = t1
            .into_shape_with_order((p, r2, n, q))
            .expect("row-major")
            .permuted_axes([0, 3, 1, 2])
            .as_standard_layout()
            .into_owned()
            .into_shape_with_order((p * q, r2 * n))
            .expect("standard");
        let t2 = matmul_rm(t1.view(), left_unfolding(gb)); // (p q) x q2
        m = t2.into_shape_with_order((p, q, q2)).expect("row-major");
    }
    m
}

/// What a left-to-right truncation sweep saw: singular values and discarded norm per
/// truncated bond.
pub(crate) struct SweepRecord<T> {
    pub singular_values: Vec<Vec<T>>,
    pub discarded: Vec<T>,
}

/// Left-to-right truncated SVDs on the bonds `k | k+1` for `k in bonds`: the left
/// unfolding of core `k` is factorised `U S V^T` under `rule`, core `k` becomes `U` and
/// `S V^T` moves into core `k+1`. When the cores left of `k` are left-orthogonal and those
/// right of `k` right-orthogonal (as after [`right_orthogonalize`] and the earlier steps of
/// this sweep), each step is an orthogonal projection of the (open) tensor whose singular
/// values are those of its unfolding at that bond. Cost `O(Σ n r^3)`.
///
/// # Errors
/// [`Error::Linalg`] if an SVD fails.
pub(crate) fn truncation_sweep<T: Scalar>(
    cores: &mut [Array3<T>],
    bonds: std::ops::Range<usize>,
    rule: &dyn Fn(usize) -> crate::linalg::MatrixTruncation<T>,
) -> Result<SweepRecord<T>> {
    let mut rec = SweepRecord {
        singular_values: Vec::new(),
        discarded: Vec::new(),
    };
    for k in bonds {
        let (r, n, _) = cores[k].dim();
        let svd = crate::linalg::svd(left_unfolding(&cores[k]), rule(k), true)?;
        let kept = svd.rank;
        let mut sv = svd.vt.expect("asked for V");
        for (a, mut row) in sv.rows_mut().into_iter().enumerate() {
            row *= svd.singular_values[a];
        }
        let (_, n2, q2) = cores[k + 1].dim();
        let next = matmul_rm(sv.view(), right_unfolding(&cores[k + 1]));
        cores[k + 1] = core_from(next, kept, n2, q2);
        cores[k] = core_from(svd.u, r, n, kept);
        rec.singular_values.push(svd.singular_values);
        rec.discarded.push(svd.discarded);
    }
    Ok(rec)
}

/// The result of [`sequential_svd`].
pub(crate) struct Sequential<T> {
    pub cores: Vec<ndarray::Array3<T>>,
    pub singular_values: Vec<Vec<T>>,
    pub discarded: Vec<T>,
}

/// The TT-SVD sweep on a tensor of shape `(r_start, n_1, .., n_m, r_end)` given as the
/// row-major matrix `c0` of shape `(r_start n_1) x (rest)`: cores
/// `(r_k, n_k, r_{k+1})` with the first left rank `r_start` and the last right rank
/// `r_end`, the bond after core `k` truncated by `rule(k)` (`m − 1` truncations). Shared
/// by TT-SVD (`r_start = r_end = 1`) and TR-SVD. `first` is the factorisation of `c0`
/// when the caller already has it.
///
/// Step 0 factorises `c0` in place ([`left_svd_streaming`]); each later step forms
/// `C_k = U_{k-1}^T C_{k-1}` and factorises its unfolding in the same pass
/// ([`project_and_factor`]); the last core is one GEMM.
///
/// A step that keeps its full rank (`U_k` square: nothing can be truncated, as at the
/// first mode whenever `n_1` is at most the rank) is not applied: `U_k^T C_k` is a
/// rotation of the rows of `C_k`, so the next unfolding is factorised on `C_k` itself,
/// reshaped in place, and the rotation is folded into the next core instead
/// (`U_true = (U_k^T ⊗ I) U`, a small GEMM). That saves a GEMM pass and an array as large
/// as the tensor at such steps. The singular values and the tensor are those of the plain
/// sweep; the cores too, up to the signs (and rotations within repeated singular values)
/// that any SVD leaves free.
pub(crate) fn sequential_svd<T: Scalar>(
    c0: ArrayView2<'_, T>,
    r_start: usize,
    sizes: &[usize],
    r_end: usize,
    rule: &dyn Fn(usize) -> MatrixTruncation<T>,
    first: Option<TruncatedSvd<T>>,
) -> Result<Sequential<T>> {
    let m = sizes.len();
    let mut out = Sequential {
        cores: Vec::with_capacity(m),
        singular_values: Vec::with_capacity(m.saturating_sub(1)),
        discarded: Vec::with_capacity(m.saturating_sub(1)),
    };
    if m == 1 {
        out.cores
            .push(core_from(c0.to_owned(), r_start, sizes[0], r_end));
        return Ok(out);
    }
    let mut svd = match first {
        Some(f) => f,
        None => left_svd_streaming(c0, rule(0))?,
    };
    let mut owned: Option<Array2<T>> = None;
    // The rotation not yet applied to the stored matrix (see above): the true `C_k` is
    // `W^T` applied to the left-rank index of the stored one.
    let mut pending: Option<Array2<T>> = None;
    let mut r = r_start;
    for k in 0..m - 1 {
        let mut cur: ArrayView2<'_, T> = match &owned {
            None => c0.view(),
            Some(c) => c.view(),
        };
        if cur.nrows() != svd.u.nrows() {
            // After a deferred step the stored matrix is seen with one more mode in rows.
            let rows = svd.u.nrows();
            cur = cur
                .into_shape_with_order((rows, cur.len() / rows))
                .expect("deferred only on contiguous data");
        }
        let q = svd.rank;
        let u = std::mem::replace(&mut svd.u, Array2::zeros((0, 0)));
        // The core's left vectors in the true basis.
        let core_u = match pending.take() {
            None => u.clone(),
            Some(w) => {
                let n = sizes[k];
                let shaped = u.view().into_shape_with_order((r, n * q)).expect("r n x q");
                matmul_rm(w.t(), shaped)
                    .into_shape_with_order((r * n, q))
                    .expect("r x n q")
            }
        };
        let square = q == u.nrows();
        let next = if k + 2 < m && square && cur.is_standard_layout() {
            // Full rank kept: factorise the same data with one more mode in the rows.
            let n = sizes[k + 1];
            let wide = cur
                .into_shape_with_order((q * n, cur.len() / (q * n)))
                .expect("contiguous, sizes agree");
            let nsvd = left_svd_streaming(wide, rule(k + 1))?;
            let done = std::mem::replace(&mut svd, nsvd);
            out.singular_values.push(done.singular_values);
            out.discarded.push(done.discarded);
            pending = Some(u);
            None
        } else if k + 2 < m {
            let (next, nsvd) = project_and_factor(u.view(), cur, q, sizes[k + 1], 1, rule(k + 1))?;
            let done = std::mem::replace(&mut svd, nsvd);
            out.singular_values.push(done.singular_values);
            out.discarded.push(done.discarded);
            Some(next)
        } else {
            let mut next = Array2::<T>::zeros((q, cur.ncols()));
            matmul_to(next.view_mut(), u.t(), cur);
            out.singular_values
                .push(std::mem::take(&mut svd.singular_values));
            out.discarded.push(svd.discarded);
            Some(next)
        };
        out.cores.push(core_from(core_u, r, sizes[k], q));
        if let Some(next) = next {
            owned = Some(next);
        }
        r = q;
    }
    let last = owned.expect("m >= 2: the last step forms its matrix");
    out.cores.push(core_from(last, r, sizes[m - 1], r_end));
    Ok(out)
}

/// The cores of a chain (train or ring) with its leading modes fixed: core `k < index.len()`
/// keeps only the slice `i_k` of its mode (see `Factorized::fix_leading`).
pub(crate) fn fix_leading_cores<T: Scalar>(cores: &[Array3<T>], index: &[usize]) -> Vec<Array3<T>> {
    let mut out = cores.to_vec();
    for (g, &i) in out.iter_mut().zip(index) {
        *g = g
            .slice(ndarray::s![.., i..=i, ..])
            .as_standard_layout()
            .into_owned();
    }
    out
}

/// Block-diagonal sum of two chains. For a train (`ring == false`) the first core is
/// concatenated along its right rank and the last along its left rank; for a ring every
/// core (including the boundary ranks) is block-diagonal.
pub(crate) fn block_sum<T: Scalar>(a: &[Array3<T>], b: &[Array3<T>], ring: bool) -> Vec<Array3<T>> {
    let d = a.len();
    (0..d)
        .map(|k| {
            let (ga, gb) = (&a[k], &b[k]);
            let (ra, n, qa) = ga.dim();
            let (rb, _, qb) = gb.dim();
            let first = !ring && k == 0;
            let last = !ring && k == d - 1;
            match (first, last) {
                (true, true) => ga + gb,
                (true, false) => {
                    let mut c = Array3::zeros((1, n, qa + qb));
                    c.slice_mut(s![.., .., ..qa]).assign(ga);
                    c.slice_mut(s![.., .., qa..]).assign(gb);
                    c
                }
                (false, true) => {
                    let mut c = Array3::zeros((ra + rb, n, 1));
                    c.slice_mut(s![..ra, .., ..]).assign(ga);
                    c.slice_mut(s![ra.., .., ..]).assign(gb);
                    c
                }
                (false, false) => {
                    let mut c = Array3::zeros((ra + rb, n, qa + qb));
                    c.slice_mut(s![..ra, .., ..qa]).assign(ga);
                    c.slice_mut(s![ra.., .., qa..]).assign(gb);
                    c
                }
            }
        })
        .collect()
}

/// Slice-wise Kronecker product of two cores of the same mode size.
pub(crate) fn kron_core<T: Scalar>(a: &Array3<T>, b: &Array3<T>) -> Array3<T> {
    let (ra, n, qa) = a.dim();
    let (rb, _, qb) = b.dim();
    Array3::from_shape_fn((ra * rb, n, qa * qb), |(i, j, k)| {
        a[[i / rb, j, k / qb]] * b[[i % rb, j, k % qb]]
    })
}
