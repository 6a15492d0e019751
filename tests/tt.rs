//! Tensor-Train format: TT-SVD, TT rounding, arithmetic, conversions to and from HT,
//! degenerate shapes, bad input and files, in f32 and f64.
mod common;

use common::{assert_within, roundoff, shape_strategy};
use ndarray::{Array3, ArrayD, IxDyn};
use proptest::prelude::*;
use tnet::dense::{random_normal, rel_error};
use tnet::formats::ht::{Sweep, ht_svd};
use tnet::formats::tt::tt_round;
use tnet::formats::tt::tt_svd;
use tnet::linalg::{MatrixTruncation, svd};
use tnet::{DimTree, Error, Factorized, HtTensor, Scalar, Truncation, TtTensor};

/// Singular values of the sequential unfolding with rows `0..k` of a dense tensor.
fn unfolding_singular_values(x: &ArrayD<f64>, k: usize) -> Vec<f64> {
    let rows: usize = x.shape()[..k].iter().product();
    let m = x
        .as_standard_layout()
        .into_owned()
        .into_shape_with_order((rows, x.len() / rows))
        .unwrap();
    svd(m.view(), MatrixTruncation::exact(), false)
        .unwrap()
        .singular_values
}

fn exact_recovery<T: Scalar>(shape: &[usize], rank: usize, seed: u64, tol: f64) {
    let x = TtTensor::<T>::random(shape, rank, seed).unwrap();
    let dense = x.to_dense();
    let (y, info) = tt_svd(dense.view(), &Truncation::rank(rank)).unwrap();
    let err = rel_error(dense.view(), y.to_dense().view())
        .unwrap()
        .as_f64();
    assert_within(
        err,
        tol,
        &format!("TT-SVD exact recovery {shape:?} rank {rank}"),
    );
    assert_within(
        info.rel_error_bound().as_f64(),
        tol,
        "TT-SVD bound on exact data",
    );
    assert_eq!(y.ranks(), x.ranks(), "recovered ranks of {shape:?}");
    // Rounding a redundant sum (ranks doubled) back to the ranks recovers 2x.
    let (z, _) = tt_round(&x.add(&x).unwrap(), &Truncation::rank(rank)).unwrap();
    assert_eq!(z.ranks(), x.ranks(), "rounded ranks of {shape:?}");
    let e = z.norm_diff(&x.scale(T::cast(2.0))).unwrap().as_f64() / (2.0 * x.norm().as_f64());
    assert_within(e, tol, "TT rounding of x + x");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    /// A random TT tensor of known ranks, densified and decomposed at those ranks, comes
    /// back to 1e-10 in f64 with the same ranks; TT rounding of x + x recovers 2x.
    #[test]
    fn exact_recovery_f64(shape in shape_strategy(1..=5, 1..=6, 4000), rank in 1usize..5, seed in any::<u64>()) {
        exact_recovery::<f64>(&shape, rank, seed, 1e-10);
    }

    /// The same in f32, to a precision-scaled tolerance.
    #[test]
    fn exact_recovery_f32(shape in shape_strategy(1..=4, 1..=6, 2000), rank in 1usize..4, seed in any::<u64>()) {
        let tol = 200.0 * roundoff::<f32>(shape.iter().product());
        exact_recovery::<f32>(&shape, rank, seed, tol);
    }

    /// Relative tolerance: ||X - Y|| <= eps ||X|| on random dense tensors (no structure),
    /// the returned bound bounds the error, and each bond discards at most eps||X||/sqrt(d-1).
    #[test]
    fn tolerance_guarantee(shape in shape_strategy(1..=5, 1..=6, 3000), eps in 0.0f64..0.9, seed in any::<u64>()) {
        let x = random_normal::<f64>(&shape, seed);
        let (y, info) = tt_svd(x.view(), &Truncation::rel(eps)).unwrap();
        let err = rel_error(x.view(), y.to_dense().view()).unwrap();
        let slack = roundoff::<f64>(x.len());
        assert_within(err, eps + slack, &format!("TT-SVD tolerance {eps} on {shape:?}"));
        assert_within(err, info.rel_error_bound() + slack, "TT-SVD returned bound");
        let per = eps * info.input_norm / ((shape.len().max(2) - 1) as f64).sqrt();
        for &dk in &info.discarded {
            assert_within(dk, per * (1.0 + 1e-12), "per-bond budget");
        }
        // Rounding the exact TT-SVD of x to the same tolerance meets it too.
        let (full, _) = tt_svd(x.view(), &Truncation::exact()).unwrap();
        let (r, rinfo) = full.round(&Truncation::rel(eps)).unwrap();
        let rerr = rel_error(x.view(), r.to_dense().view()).unwrap();
        assert_within(rerr, eps + slack, "TT rounding tolerance");
        assert_within(rerr, rinfo.rel_error_bound() + slack, "TT rounding bound");
    }

    /// In f32 the tolerance holds up to f32 round-off.
    #[test]
    fn tolerance_guarantee_f32(shape in shape_strategy(2..=4, 2..=6, 1500), eps in 0.01f64..0.9, seed in any::<u64>()) {
        let x = random_normal::<f32>(&shape, seed);
        let (y, info) = tt_svd(x.view(), &Truncation::rel(eps)).unwrap();
        let err = rel_error(x.view(), y.to_dense().view()).unwrap().as_f64();
        let slack = 10.0 * roundoff::<f32>(x.len());
        assert_within(err, eps + slack, &format!("f32 TT-SVD tolerance {eps} on {shape:?}"));
        assert_within(err, info.rel_error_bound().as_f64() + slack, "f32 bound");
    }

    /// Fixed ranks: ||X - Y||^2 <= sum_k eps_k^2 with eps_k the best rank-r_k error of the
    /// unfolding X_<k> of the full tensor (Oseledets 2011, Thm 2.2), hence
    /// ||X - Y|| <= sqrt(d-1) ||X - X_best||. Same for TT rounding of the exact TT.
    #[test]
    fn fixed_rank_quasi_optimality(shape in shape_strategy(2..=5, 2..=5, 3000), rank in 1usize..4, seed in any::<u64>()) {
        let x = random_normal::<f64>(&shape, seed);
        let d = shape.len();
        let (y, _) = tt_svd(x.view(), &Truncation::rank(rank)).unwrap();
        let (full, _) = tt_svd(x.view(), &Truncation::exact()).unwrap();
        let (z, _) = full.round(&Truncation::rank(rank)).unwrap();
        let mut sum = 0.0;
        let mut worst = 0.0f64;
        for k in 1..d {
            let s = unfolding_singular_values(&x, k);
            let tail: f64 = s.iter().skip(y.ranks()[k]).map(|v| v * v).sum();
            sum += tail;
            worst = worst.max(tail.sqrt());
        }
        for (what, t) in [("TT-SVD", &y), ("TT rounding", &z)] {
            let err = tnet::dense::norm((&x - &t.to_dense()).view());
            assert_within(err, sum.sqrt() * (1.0 + 1e-10) + 1e-12, &format!("{what} Thm 2.2 on {shape:?}"));
            assert_within(err, ((d - 1) as f64).sqrt() * worst * (1.0 + 1e-10) + 1e-12, "sqrt(d-1) quasi-optimality");
            prop_assert!(t.max_rank() <= rank);
        }
    }

    /// Arithmetic without densifying agrees with the dense computation: add, sub, scale,
    /// Hadamard, inner (TT-TT and TT-dense), norm, norm_diff and entries.
    #[test]
    fn arithmetic_agrees_with_dense(shape in shape_strategy(1..=4, 1..=5, 600), ra in 1usize..4, rb in 1usize..4, seed in any::<u64>()) {
        let a = TtTensor::<f64>::random(&shape, ra, seed).unwrap().scale(1.7);
        let b = TtTensor::<f64>::random(&shape, rb, seed ^ 0x5eed).unwrap();
        let (da, db) = (a.to_dense(), b.to_dense());
        let tol = 1e-12;
        assert_within(rel_error((&da + &db).view(), a.add(&b).unwrap().to_dense().view()).unwrap(), tol, "add");
        assert_within(rel_error((&da - &db).view(), a.sub(&b).unwrap().to_dense().view()).unwrap(), tol, "sub");
        assert_within(rel_error((&da * -0.3).view(), a.scale(-0.3).to_dense().view()).unwrap(), tol, "scale");
        assert_within(rel_error((&da * &db).view(), a.hadamard(&b).unwrap().to_dense().view()).unwrap(), tol, "hadamard");
        let scale = tnet::dense::norm(da.view()) * tnet::dense::norm(db.view());
        let dense_inner = tnet::dense::inner(da.view(), db.view()).unwrap();
        assert_within((a.inner(&b).unwrap() - dense_inner).abs(), tol * scale, "inner");
        assert_within((a.inner_dense(db.view()).unwrap() - dense_inner).abs(), tol * scale, "inner_dense");
        let na = tnet::dense::norm(da.view());
        assert_within((a.norm() - na).abs(), tol * na, "norm");
        let nd = tnet::dense::norm((&da - &db).view());
        assert_within((a.norm_diff(&b).unwrap() - nd).abs(), tol * (na + nd), "norm_diff");
        let idx: Vec<usize> = shape.iter().map(|&n| (seed as usize) % n).collect();
        assert_within((a.entry(&idx).unwrap() - da[IxDyn(&idx)]).abs(), tol * na, "entry");
        let all = ndarray::Array2::from_shape_fn((2, shape.len()), |(r, k)| (r + idx[k]) % shape[k]);
        let vals = a.entries(all.view()).unwrap();
        let idx1: Vec<usize> = all.row(1).to_vec();
        assert_within((vals[1] - da[IxDyn(&idx1)]).abs(), tol * na, "entries");
    }

    /// Orthogonalisation keeps the tensor and makes the left (right) unfoldings of all
    /// but the last (first) core orthonormal.
    #[test]
    fn orthogonalisation(shape in shape_strategy(1..=5, 1..=5, 2000), rank in 1usize..5, seed in any::<u64>()) {
        let x = TtTensor::<f64>::random(&shape, rank, seed).unwrap().scale(3.0);
        let dense = x.to_dense();
        let l = x.left_orthogonalize();
        let r = x.right_orthogonalize();
        for y in [&l, &r] {
            assert_within(rel_error(dense.view(), y.to_dense().view()).unwrap(), 1e-13, "same tensor");
        }
        let d = shape.len();
        for k in 0..d.saturating_sub(1) {
            let g = l.core(k);
            let (a, n, b) = g.dim();
            let m = g.view().into_shape_with_order((a * n, b)).unwrap();
            let e = &m.t().dot(&m) - &ndarray::Array2::<f64>::eye(b);
            assert_within(e.iter().fold(0.0f64, |s, v| s.max(v.abs())), 1e-13, "left orthonormal");
        }
        for k in 1..d {
            let g = r.core(k);
            let (a, n, b) = g.dim();
            let m = g.view().into_shape_with_order((a, n * b)).unwrap();
            let e = &m.dot(&m.t()) - &ndarray::Array2::<f64>::eye(a);
            assert_within(e.iter().fold(0.0f64, |s, v| s.max(v.abs())), 1e-13, "right orthonormal");
        }
    }

    /// TT -> HT on the linear tree -> TT gives the same tensor; the HT has the TT ranks at
    /// its interior nodes, and a random HT on the linear tree converts exactly to TT.
    #[test]
    fn tt_ht_conversions(shape in shape_strategy(1..=5, 1..=5, 2000), rank in 1usize..4, seed in any::<u64>()) {
        let x = TtTensor::<f64>::random(&shape, rank, seed).unwrap();
        let dense = x.to_dense();
        let ht = x.to_ht().unwrap();
        assert_within(rel_error(dense.view(), ht.to_dense().view()).unwrap(), 1e-13, "TT -> HT");
        let back = TtTensor::from_ht(&ht).unwrap();
        assert_within(rel_error(dense.view(), back.to_dense().view()).unwrap(), 1e-13, "HT -> TT");
        prop_assert_eq!(back.ranks(), x.ranks());
        let tree = DimTree::linear(shape.len()).unwrap();
        let h = HtTensor::<f64>::random(&tree, &shape, rank, seed).unwrap();
        let t = TtTensor::from_ht(&h).unwrap();
        assert_within(rel_error(h.to_dense().view(), t.to_dense().view()).unwrap(), 1e-13, "random HT -> TT");
    }
}

/// TT-SVD and HT-SVD on the linear tree agree on a tensor of exact TT ranks: the HT ranks
/// of the interior nodes {k..d-1} are the TT ranks, the singular values of the same
/// unfoldings agree to round-off, and both errors are at round-off level. On random data at
/// fixed ranks they give the same error (both are projections onto the same dominant
/// subspaces when the rank cap binds only at the interior nodes).
#[test]
fn tt_svd_and_ht_svd_on_linear_tree_agree() {
    let shape = [3, 4, 5, 4, 3];
    let d = shape.len();
    let tree = DimTree::linear(d).unwrap();
    let x = TtTensor::<f64>::random(&shape, 3, 11).unwrap().to_dense();
    let (tt, tinfo) = tt_svd(x.view(), &Truncation::rel(1e-12)).unwrap();
    let (ht, hinfo) = ht_svd(
        x.view(),
        &tree,
        &Truncation::rel(1e-12),
        Sweep::RootToLeaves,
    )
    .unwrap();
    let hranks = ht.ranks();
    let mut t = tree.root();
    for k in 0..d - 1 {
        let (_, next) = tree.children(t).unwrap();
        assert_eq!(
            hranks[next],
            tt.ranks()[k + 1],
            "node {{{}..{}}}",
            k + 1,
            d - 1
        );
        // Both saw the singular values of X_<k+1> (HT: of its transpose).
        let (a, b) = (&tinfo.singular_values[k], &hinfo.singular_values[next]);
        for i in 0..tt.ranks()[k + 1] {
            assert_within((a[i] - b[i]).abs(), 1e-12 * a[0], "singular values");
        }
        t = next;
    }
    let et = rel_error(x.view(), tt.to_dense().view()).unwrap();
    let eh = rel_error(x.view(), ht.to_dense().view()).unwrap();
    assert!(et < 1e-13 && eh < 1e-13, "{et:e} {eh:e}");
    // Converting the HT-SVD result gives the TT-SVD tensor.
    let conv = TtTensor::from_ht(&ht).unwrap();
    assert_eq!(conv.ranks(), tt.ranks());
    assert_within(
        conv.norm_diff(&tt).unwrap() / tt.norm(),
        1e-12,
        "same tensor",
    );
    // Noisy data, fixed rank 2 everywhere and leaves kept exact (rank >= n would be
    // needed for that, so use rank caps equal on both and compare the errors' scale).
    let noisy = &x + &(random_normal::<f64>(&shape, 5) * 1e-6);
    let (tt2, i2) = tt_svd(noisy.view(), &Truncation::rel(1e-4)).unwrap();
    let (ht2, j2) = ht_svd(
        noisy.view(),
        &tree,
        &Truncation::rel(1e-4),
        Sweep::RootToLeaves,
    )
    .unwrap();
    assert_eq!(TtTensor::from_ht(&ht2).unwrap().ranks(), tt2.ranks());
    let e1 = rel_error(noisy.view(), tt2.to_dense().view()).unwrap();
    let e2 = rel_error(noisy.view(), ht2.to_dense().view()).unwrap();
    assert!(
        e1 <= i2.rel_error_bound() * (1.0 + 1e-10) && e2 <= j2.rel_error_bound() * (1.0 + 1e-10)
    );
    assert!((e1 / e2 - 1.0).abs() < 0.05, "errors {e1:e} vs {e2:e}");
}

/// from_ht refuses HT tensors that do not live on the linear tree.
#[test]
fn from_ht_requires_linear_tree() {
    let tree = DimTree::balanced(4).unwrap();
    let h = HtTensor::<f64>::random(&tree, &[2, 3, 4, 5], 2, 1).unwrap();
    assert!(matches!(
        TtTensor::from_ht(&h),
        Err(Error::InvalidTree { .. })
    ));
}

/// Degenerate shapes and ranks: order 1 and 2, modes of size 1, rank 1, a requested rank
/// far above the possible one, and the zero tensor.
#[test]
fn degenerate_shapes() {
    for shape in [
        vec![7],
        vec![5, 3],
        vec![1, 4, 1],
        vec![1, 1, 1, 1],
        vec![2, 1, 3, 1, 2],
    ] {
        let x = random_normal::<f64>(&shape, 3);
        for rule in [
            Truncation::rank(1),
            Truncation::rank(1000),
            Truncation::rel(0.0),
            Truncation::exact(),
        ] {
            let (y, info) = tt_svd(x.view(), &rule).unwrap();
            let err = rel_error(x.view(), y.to_dense().view()).unwrap();
            assert!(err <= info.rel_error_bound() + 1e-12, "{shape:?} {rule:?}");
            if rule != Truncation::rank(1) || shape.len() == 1 {
                assert!(err < 1e-12, "{shape:?} {rule:?}: {err}");
            }
            assert!(y.max_rank() <= rule.max_rank().unwrap_or(usize::MAX));
            let adm = TtTensor::<f64>::admissible_ranks(&shape, usize::MAX).unwrap();
            assert!(y.ranks().iter().zip(&adm).all(|(a, b)| a <= b), "{shape:?}");
            let (z, _) = y.round(&rule).unwrap();
            assert!(
                rel_error(x.view(), z.to_dense().view()).unwrap() <= err + 1e-12
                    || rule == Truncation::rank(1)
            );
        }
        // Requested rank above the possible: capped at the admissible ranks.
        let big = TtTensor::<f64>::random(&shape, 1000, 1).unwrap();
        assert_eq!(
            big.ranks(),
            TtTensor::<f64>::admissible_ranks(&shape, 1000).unwrap()
        );
        // Zero tensor: no division by zero, exact zero result of rank 1.
        let z = ArrayD::<f64>::zeros(IxDyn(&shape));
        let (y, info) = tt_svd(z.view(), &Truncation::rel(1e-3)).unwrap();
        assert_eq!(info.rel_error_bound(), 0.0);
        assert!(y.to_dense().iter().all(|&v| v == 0.0));
        assert_eq!(y.max_rank(), 1);
        assert_eq!(y.norm(), 0.0);
        let (t, tinfo) = y.round(&Truncation::rel(0.1)).unwrap();
        assert!(t.to_dense().iter().all(|&v| v == 0.0));
        assert_eq!(tinfo.error_bound, 0.0);
    }
}

/// A component at 1e-12 relative size is resolved (a Gram-based SVD would lose it below
/// 1e-8) by TT-SVD and by TT rounding.
#[test]
fn tiny_singular_values_are_resolved() {
    let a = TtTensor::<f64>::random(&[6; 4], 1, 1).unwrap();
    let b = TtTensor::<f64>::random(&[6; 4], 1, 2).unwrap();
    let x = a.add(&b.scale(1e-12 * a.norm() / b.norm())).unwrap();
    let (y, info) = tt_svd(x.to_dense().view(), &Truncation::rel(1e-14)).unwrap();
    assert_eq!(y.ranks(), vec![1, 2, 2, 2, 1]);
    let ratio = info.singular_values[0][1] / info.singular_values[0][0];
    assert!(
        (ratio / 1e-12 - 1.0).abs() < 0.5,
        "sigma_2 / sigma_1 = {ratio:e}"
    );
    let (t, tinfo) = x.round(&Truncation::rel(1e-14)).unwrap();
    assert_eq!(t.ranks(), vec![1, 2, 2, 2, 1]);
    let ratio = tinfo.singular_values[0][1] / tinfo.singular_values[0][0];
    assert!((ratio / 1e-12 - 1.0).abs() < 0.5, "rounding: {ratio:e}");
    // The norm of a difference of nearly equal tensors is resolved too.
    let nd = x.norm_diff(&a).unwrap();
    assert!(
        (nd / (1e-12 * a.norm()) - 1.0).abs() < 1e-3,
        "norm_diff {nd:e}"
    );
}

/// Bad input gives the documented errors: NaN/Inf, empty modes, inconsistent or zero
/// ranks, boundary ranks other than 1, invalid rules, shape mismatches, bad indices.
#[test]
fn bad_input_errors() {
    let mut x = random_normal::<f64>(&[3, 4, 5], 1);
    x[[1, 2, 3]] = f64::NAN;
    assert!(matches!(
        tt_svd(x.view(), &Truncation::rel(0.1)),
        Err(Error::NonFinite { .. })
    ));
    x[[1, 2, 3]] = f64::INFINITY;
    assert!(matches!(
        tt_svd(x.view(), &Truncation::rel(0.1)),
        Err(Error::NonFinite { .. })
    ));
    let e = ArrayD::<f64>::zeros(IxDyn(&[3, 0, 2]));
    assert!(matches!(
        tt_svd(e.view(), &Truncation::rel(0.1)),
        Err(Error::Empty { .. })
    ));
    let ok = random_normal::<f64>(&[3, 4], 1);
    assert!(matches!(
        tt_svd(ok.view(), &Truncation::rel(-1.0)),
        Err(Error::InvalidParameter { .. })
    ));
    assert!(matches!(
        tt_svd(ok.view(), &Truncation::rank(0)),
        Err(Error::InvalidParameter { .. })
    ));
    assert!(matches!(
        tt_svd(ok.view(), &Truncation::rel(f64::NAN)),
        Err(Error::InvalidParameter { .. })
    ));

    let g = |r, n, q| Array3::<f64>::ones((r, n, q));
    assert!(matches!(
        TtTensor::<f64>::try_new(vec![]),
        Err(Error::Empty { .. })
    ));
    assert!(matches!(
        TtTensor::try_new(vec![g(1, 2, 3), g(2, 2, 1)]),
        Err(Error::InvalidRank { .. })
    ));
    assert!(matches!(
        TtTensor::try_new(vec![g(2, 2, 3), g(3, 2, 1)]),
        Err(Error::InvalidRank { .. })
    ));
    assert!(matches!(
        TtTensor::try_new(vec![g(1, 2, 3), g(3, 2, 2)]),
        Err(Error::InvalidRank { .. })
    ));
    assert!(matches!(
        TtTensor::try_new(vec![g(1, 2, 0), g(0, 2, 1)]),
        Err(Error::InvalidRank { .. })
    ));
    assert!(matches!(
        TtTensor::try_new(vec![g(1, 0, 1)]),
        Err(Error::Empty { .. })
    ));
    let mut nan = g(1, 2, 1);
    nan[[0, 1, 0]] = f64::NAN;
    assert!(matches!(
        TtTensor::try_new(vec![nan]),
        Err(Error::NonFinite { index: 1, .. })
    ));
    assert!(matches!(
        TtTensor::<f64>::random(&[2, 3], 0, 1),
        Err(Error::InvalidParameter { .. })
    ));
    assert!(matches!(
        TtTensor::<f64>::random(&[2, 0], 2, 1),
        Err(Error::Empty { .. })
    ));
    assert!(matches!(
        TtTensor::<f64>::random(&[], 2, 1),
        Err(Error::Empty { .. })
    ));
    assert!(matches!(
        TtTensor::<f64>::random_with_ranks(&[2, 3], &[1, 2], 1),
        Err(Error::ShapeMismatch { .. })
    ));

    let a = TtTensor::<f64>::random(&[2, 3, 4], 2, 1).unwrap();
    let b = TtTensor::<f64>::random(&[2, 3, 5], 2, 1).unwrap();
    assert!(matches!(a.add(&b), Err(Error::ShapeMismatch { .. })));
    assert!(matches!(a.inner(&b), Err(Error::ShapeMismatch { .. })));
    assert!(matches!(a.hadamard(&b), Err(Error::ShapeMismatch { .. })));
    assert!(matches!(
        a.inner_dense(b.to_dense().view()),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        a.entry(&[0, 3, 0]),
        Err(Error::IndexOutOfBounds { .. })
    ));
    assert!(matches!(
        a.entry(&[0, 0]),
        Err(Error::IndexOutOfBounds { .. })
    ));
    assert!(matches!(
        a.round(&Truncation::rel(-0.5)),
        Err(Error::InvalidParameter { .. })
    ));
    // A non-standard-layout input is fine (it is read through a copy).
    let t = random_normal::<f64>(&[4, 3], 2);
    let (y, _) = tt_svd(t.t().into_dyn(), &Truncation::exact()).unwrap();
    assert!(rel_error(t.t().into_dyn(), y.to_dense().view()).unwrap() < 1e-13);
}

/// Files: save/load round trip (f32 and f64); truncated, malformed, wrong tag, wrong
/// version, wrong dtype, inconsistent cores or header all give errors on load.
#[test]
fn files_round_trip_and_corruption() {
    let dir = std::env::temp_dir().join(format!("tnet_tt_test_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let x = TtTensor::<f64>::random(&[2, 3, 4], 2, 5).unwrap();
    let path = dir.join("x.json");
    x.save(&path).unwrap();
    assert_eq!(TtTensor::<f64>::load(&path).unwrap(), x);
    let xf = TtTensor::<f32>::random(&[2, 3, 4], 2, 5).unwrap();
    let pf = dir.join("xf.json");
    xf.save(&pf).unwrap();
    assert_eq!(TtTensor::<f32>::load(&pf).unwrap(), xf);
    assert!(matches!(
        TtTensor::<f32>::load(&path),
        Err(Error::Corrupt { .. })
    ));

    let text = std::fs::read_to_string(&path).unwrap();
    let bad = |name: &str, content: &str| {
        let p = dir.join(name);
        std::fs::write(&p, content).unwrap();
        TtTensor::<f64>::load(&p)
    };
    assert!(matches!(
        bad("trunc.json", &text[..text.len() / 2]),
        Err(Error::Corrupt { path: Some(_), .. })
    ));
    assert!(matches!(bad("empty.json", ""), Err(Error::Corrupt { .. })));
    assert!(matches!(
        bad("tag.json", &text.replace("tnet-tt", "tnet-ht")),
        Err(Error::Corrupt { .. })
    ));
    assert!(matches!(
        bad("ver.json", &text.replace("\"version\":1", "\"version\":99")),
        Err(Error::Version { found: 99, .. })
    ));
    assert!(matches!(
        bad(
            "shape.json",
            &text.replace("\"shape\":[2,3,4]", "\"shape\":[2,3,5]")
        ),
        Err(Error::Corrupt { .. })
    ));
    // Break the rank chain: make the first core (1, 2, 2) into (1, 1, 4) keeping its data.
    let broken = text.replacen("\"dim\":[1,2,2]", "\"dim\":[1,1,4]", 1);
    assert_ne!(broken, text);
    assert!(bad("ranks.json", &broken).is_err());
    // Data length that does not match the dimensions.
    let short = text.replacen("\"dim\":[1,2,2]", "\"dim\":[1,2,3]", 1);
    assert!(matches!(
        bad("len.json", &short),
        Err(Error::Corrupt { .. })
    ));
    assert!(matches!(
        TtTensor::<f64>::load(dir.join("missing.json")),
        Err(Error::Io { .. })
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// f32 arithmetic agrees with dense f32 computation to f32 round-off.
#[test]
fn f32_arithmetic() {
    let a = TtTensor::<f32>::random(&[3, 4, 5], 2, 1).unwrap();
    let b = TtTensor::<f32>::random(&[3, 4, 5], 3, 2).unwrap();
    let (da, db) = (a.to_dense(), b.to_dense());
    let tol = 10.0 * roundoff::<f32>(60);
    assert_within(
        rel_error((&da + &db).view(), a.add(&b).unwrap().to_dense().view()).unwrap() as f64,
        tol,
        "add",
    );
    assert_within(
        rel_error(
            (&da * &db).view(),
            a.hadamard(&b).unwrap().to_dense().view(),
        )
        .unwrap() as f64,
        tol,
        "hadamard",
    );
    let di = tnet::dense::inner(da.view(), db.view()).unwrap();
    let scale = (tnet::dense::norm(da.view()) * tnet::dense::norm(db.view())) as f64;
    assert_within(
        (a.inner(&b).unwrap() - di).abs() as f64,
        tol * scale,
        "inner",
    );
    let na = tnet::dense::norm(da.view());
    assert_within((a.norm() - na).abs() as f64, tol * na as f64, "norm");
    let (r, info) = a.add(&b).unwrap().round(&Truncation::rel(0.2)).unwrap();
    let e = rel_error((&da + &db).view(), r.to_dense().view()).unwrap() as f64;
    assert_within(e, 0.2 + tol, "f32 rounding");
    assert_within(e, info.rel_error_bound() as f64 + tol, "f32 rounding bound");
}

/// The streaming left SVD used by TT-SVD and TR-SVD (blocked QR of the transposed wide
/// matrix read in place) gives the singular values and left singular subspaces of a
/// plain SVD, over one and many blocks, and reports the first non-finite entry.
#[test]
fn streaming_left_svd_matches_svd() {
    use tnet::linalg::left_svd_streaming;
    for (m, n, seed) in [
        (1, 7, 1),
        (3, 5000, 2),
        (20, 9000, 3),
        (300, 2500, 4),
        (64, 64 * 70, 5),
        (7, 5, 6),
        (5, 100_000, 7),
    ] {
        let a = random_normal::<f64>(&[m, n], seed)
            .into_dimensionality::<ndarray::Ix2>()
            .unwrap();
        let f = left_svd_streaming(a.view(), MatrixTruncation::exact()).unwrap();
        let g = svd(a.view(), MatrixTruncation::exact(), false).unwrap();
        assert_eq!(f.singular_values.len(), g.singular_values.len());
        for (x, y) in f.singular_values.iter().zip(&g.singular_values) {
            assert_within(
                (x - y).abs(),
                1e-13 * g.singular_values[0] * (n as f64).sqrt(),
                &format!("sv {m}x{n}"),
            );
        }
        // Same left subspace: U_f^T U_g is orthogonal (up to signs and rotations).
        let p = f.u.t().dot(&g.u);
        let e = &p.t().dot(&p) - &ndarray::Array2::<f64>::eye(p.ncols());
        assert_within(
            e.iter().fold(0.0f64, |s, v| s.max(v.abs())),
            1e-10,
            &format!("subspace {m}x{n}"),
        );
        // Truncation by the rule.
        let t = left_svd_streaming(
            a.view(),
            MatrixTruncation {
                max_rank: 2,
                tol: 0.0,
            },
        )
        .unwrap();
        assert_eq!(t.u.ncols(), 2.min(m).min(n));
    }
    let mut a = random_normal::<f64>(&[4, 6000], 9)
        .into_dimensionality::<ndarray::Ix2>()
        .unwrap();
    a[[2, 5000]] = f64::NAN;
    a[[3, 10]] = f64::INFINITY;
    match left_svd_streaming(a.view(), MatrixTruncation::exact()) {
        Err(Error::NonFinite { index, .. }) => assert_eq!(index, 2 * 6000 + 5000),
        other => panic!("expected NonFinite, got {other:?}"),
    }
}

/// The streaming factorisations split long matrices into parallel tasks of a fixed
/// size and merge them in order: the results are bit-identical for any number of
/// threads, and entries near the ends of the range (rescaled on a second pass) give the
/// scaled singular values.
#[test]
fn streaming_factorisations_do_not_depend_on_threads_or_scale() {
    use tnet::linalg::{left_svd_streaming, project_and_factor};
    let a = random_normal::<f64>(&[6, 150_000], 11)
        .into_dimensionality::<ndarray::Ix2>()
        .unwrap();
    let u = random_normal::<f64>(&[6, 4], 12)
        .into_dimensionality::<ndarray::Ix2>()
        .unwrap();
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let f = left_svd_streaming(a.view(), MatrixTruncation::exact()).unwrap();
            let (y, g) =
                project_and_factor(u.view(), a.view(), 4, 3, 1, MatrixTruncation::exact()).unwrap();
            (f.singular_values, f.u, y, g.singular_values, g.u)
        })
    };
    let one = run(1);
    let three = run(3);
    assert_eq!(one, three, "results depend on the number of threads");
    for scale in [1e300, 1e-300] {
        let big = a.mapv(|v| v * scale);
        let f = left_svd_streaming(big.view(), MatrixTruncation::exact()).unwrap();
        let (_, g) =
            project_and_factor(u.view(), big.view(), 4, 3, 1, MatrixTruncation::exact()).unwrap();
        for (x, y) in f.singular_values.iter().zip(&one.0) {
            assert_within((x / scale - y).abs(), 1e-12 * one.0[0], "scaled left SVD");
        }
        for (x, y) in g.singular_values.iter().zip(&one.3) {
            assert_within((x / scale - y).abs(), 1e-12 * one.3[0], "scaled projection");
        }
    }
}

/// The fused projection-and-factorisation step of the sweeps forms
/// Y[(a, i), (j, s)] = sum_p U[p, s q + a] C[p, i M' + j] exactly and factorises it like a
/// plain SVD, over one and many column blocks, for t = 1 (TT) and t > 1 (TR).
#[test]
fn project_and_factor_matches_reference() {
    use tnet::linalg::project_and_factor;
    for (p, q, n, mp, t, seed) in [
        (6, 3, 4, 3000, 1, 1),
        (8, 4, 8, 1500, 2, 2),
        (5, 2, 3, 7, 3, 3),
        (16, 8, 8, 900, 1, 4),
        (3, 2, 2, 2, 2, 5),
        (4, 2, 3, 40_000, 1, 6),
        (6, 3, 2, 40_000, 2, 7),
    ] {
        let u = random_normal::<f64>(&[p, t * q], seed)
            .into_dimensionality::<ndarray::Ix2>()
            .unwrap();
        let c = random_normal::<f64>(&[p, n * mp], seed + 10)
            .into_dimensionality::<ndarray::Ix2>()
            .unwrap();
        let (y, f) =
            project_and_factor(u.view(), c.view(), q, n, t, MatrixTruncation::exact()).unwrap();
        let full = u.t().dot(&c); // (s q + a) x (i M' + j)
        let reference = ndarray::Array2::from_shape_fn((q * n, mp * t), |(row, col)| {
            let (a, i) = (row / n, row % n);
            let (j, s) = (col / t, col % t);
            full[[s * q + a, i * mp + j]]
        });
        let e = (&y - &reference).iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert_within(
            e,
            1e-12 * (p as f64),
            &format!("Y for p={p} q={q} n={n} M'={mp} t={t}"),
        );
        let g = svd(reference.view(), MatrixTruncation::exact(), false).unwrap();
        for (x, z) in f.singular_values.iter().zip(&g.singular_values) {
            assert_within(
                (x - z).abs(),
                1e-12 * g.singular_values[0],
                "singular values",
            );
        }
        let pm = f.u.t().dot(&g.u);
        let o = &pm.t().dot(&pm) - &ndarray::Array2::<f64>::eye(pm.ncols());
        assert_within(
            o.iter().fold(0.0f64, |m, v| m.max(v.abs())),
            1e-9,
            "left subspace",
        );
    }
}

/// Steps that keep their full rank are folded into the next core instead of being
/// applied (`sequential_svd`): with a cap of 12 on a 3x4x5x6 tensor the first two steps
/// keep everything (ranks 3 and 12) and the third truncates. The singular values of every
/// step are those of the dense sequential unfoldings, the tensor is recovered exactly, and
/// the cores are left-orthogonal as in the plain sweep.
#[test]
fn full_rank_steps_are_folded_not_applied() {
    let shape = [3usize, 4, 5, 6];
    let x = random_normal::<f64>(&shape, 11);
    let (y, info) = tt_svd(x.view(), &Truncation::rank(12)).unwrap();
    assert_eq!(y.ranks(), vec![1, 3, 12, 6, 1]);
    assert!(rel_error(x.view(), y.to_dense().view()).unwrap() < 1e-13);
    let data = x.as_slice().unwrap();
    for (k, sv) in info.singular_values.iter().enumerate() {
        let rows: usize = shape[..=k].iter().product();
        let a = ndarray::ArrayView2::from_shape((rows, data.len() / rows), data).unwrap();
        let want = svd(a, MatrixTruncation::exact(), false)
            .unwrap()
            .singular_values;
        assert_eq!(sv.len(), want.len(), "step {k}");
        for (s, w) in sv.iter().zip(&want) {
            assert!(
                (s - w).abs() <= 1e-12 * want[0],
                "step {k}: {s} against {w}"
            );
        }
    }
    for g in &y.cores()[..3] {
        let (r, n, q) = g.dim();
        let m = g.view().into_shape_with_order((r * n, q)).unwrap();
        let gram = m.t().dot(&m);
        for ((i, j), v) in gram.indexed_iter() {
            let id = if i == j { 1.0 } else { 0.0 };
            assert!(
                (v - id).abs() < 1e-12,
                "core not left-orthogonal: {v} at ({i}, {j})"
            );
        }
    }
}
