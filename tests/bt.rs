//! Block-term format and BT-ALS: exact recovery, monotone ALS error, one block = Tucker,
//! arithmetic against dense computation, degenerate shapes, bad input, files.
mod common;

use common::{assert_within, roundoff};
use ndarray::{ArrayD, IxDyn};
use proptest::prelude::*;
use tnet::dense::{random_normal, rel_error};
use tnet::formats::bt::{bt_als, bt_als_refine};
use tnet::formats::tucker::hooi_refine;
use tnet::formats::tucker::{HosvdOptions, hosvd};
use tnet::formats::{AlsOptions, AlsReport};
use tnet::{BtTensor, Error, Factorized, Scalar, Truncation, TuckerTensor};

/// A shape with one rank per mode (ranks in `1..=max_rank`) and a block count.
fn bt_structure(
    orders: std::ops::RangeInclusive<usize>,
    sizes: std::ops::RangeInclusive<usize>,
    max_len: usize,
    max_rank: usize,
    max_blocks: usize,
) -> impl Strategy<Value = (Vec<usize>, Vec<usize>, usize)> {
    orders
        .prop_flat_map(move |d| proptest::collection::vec(sizes.clone(), d))
        .prop_filter("small enough to densify", move |s| {
            s.iter().product::<usize>() <= max_len
        })
        .prop_flat_map(move |s| {
            let d = s.len();
            (
                Just(s),
                proptest::collection::vec(1..=max_rank, d),
                1..=max_blocks,
            )
        })
}

fn dense_err<T: Scalar>(x: &ArrayD<T>, y: &impl Factorized<T>) -> f64 {
    rel_error(x.view(), y.to_dense().view()).unwrap().as_f64()
}

fn non_increasing<T: Scalar>(e: &[T]) -> bool {
    e.windows(2).all(|w| w[1] <= w[0])
}

/// Recovers random BT tensors of known structure (seeds where ALS is known to converge,
/// see the module docs of `bt_als` for the measured success rate).
fn recovery<T: Scalar>(shape: &[usize], ranks: &[usize], nb: usize, seeds: &[u64], tol: f64) {
    for &seed in seeds {
        let truth = BtTensor::<T>::random(shape, ranks, nb, seed).unwrap();
        let x = truth.to_dense();
        let opts = AlsOptions::default().with_max_iter(1000).with_tol(1e-12);
        let (y, report) = bt_als(x.view(), nb, ranks, 0, &opts).unwrap();
        let err = dense_err(&x, &y);
        assert_within(
            err,
            tol,
            &format!("BT recovery {shape:?} {ranks:?} x{nb} seed {seed}"),
        );
        assert!(non_increasing(&report.errors), "seed {seed}");
        assert!(
            (report.final_error().as_f64() - err).abs() <= 10.0 * roundoff::<T>(x.len()),
            "reported {} vs dense {err}",
            report.final_error()
        );
        assert_eq!(y.ranks(), vec![ranks.to_vec(); nb]);
        assert_eq!(
            y.n_params(),
            nb * (shape.iter().zip(ranks).map(|(n, r)| n * r).sum::<usize>()
                + ranks.iter().product::<usize>())
        );
    }
}

/// BT-ALS recovers well-conditioned random BT tensors (orthonormal factors in general
/// position, Gaussian cores) to 1e-6 in f64, on a fixed seed set, with exactly the
/// requested block structure and N_b (sum n_k R_k + prod R_k) parameters.
#[test]
fn als_recovers_bt_tensors_f64() {
    recovery::<f64>(&[8, 8, 8], &[2, 2, 2], 2, &[0, 1, 2, 4, 5, 6, 7, 8], 1e-6);
    recovery::<f64>(&[5, 6, 7, 4], &[2, 2, 2, 2], 2, &[0, 4, 5, 6, 7, 9], 1e-6);
    recovery::<f64>(&[6, 7, 8], &[2, 2, 2], 3, &[1, 4, 12], 1e-6);
}

/// The same in f32, to 1e-5.
#[test]
fn als_recovers_bt_tensors_f32() {
    recovery::<f32>(&[8, 8, 8], &[2, 2, 2], 2, &[0, 2, 4, 5], 1e-5);
    recovery::<f32>(&[5, 6, 7, 4], &[2, 2, 2, 2], 2, &[0, 4, 5], 1e-5);
}

/// Regression guard on ALS's basin of attraction: of 20 random 8x8x8 BT tensors with 2
/// blocks of ranks (2,2,2), at least 15 are recovered to 1e-6 (16 measured).
#[test]
fn als_success_rate_on_random_bt() {
    let ok = (0..20u64)
        .filter(|&seed| {
            let x = BtTensor::<f64>::random(&[8, 8, 8], &[2, 2, 2], 2, seed)
                .unwrap()
                .to_dense();
            let opts = AlsOptions::default().with_max_iter(1000).with_tol(1e-12);
            let (_, r) = bt_als(x.view(), 2, &[2, 2, 2], 0, &opts).unwrap();
            r.final_error() < 1e-6
        })
        .count();
    assert!(ok >= 15, "only {ok} of 20 recovered");
}

/// One block is exactly Tucker: with no sweeps, BT-ALS with one block returns the
/// ST-HOSVD at the ranks (identical tensor); on a Tucker-structured tensor it recovers
/// it to 1e-10; on a noisy one, BT(1 block) and HOOI reach the same error, both below
/// the ST-HOSVD error.
#[test]
fn one_block_equals_tucker() {
    let shape = [7, 8, 9];
    let ranks = [2, 3, 2];
    let t = TuckerTensor::<f64>::random(&shape, &ranks, 11).unwrap();
    let x = t.to_dense();
    let opts = HosvdOptions::default().with_mode_ranks(ranks.to_vec());
    let (st, _) = hosvd(x.view(), &Truncation::exact(), &opts).unwrap();
    let none = AlsOptions::default().with_max_iter(0);
    let (b0, r0) = bt_als(x.view(), 1, &ranks, 0, &none).unwrap();
    assert_eq!(b0.block(0), &st);
    assert_eq!(r0.errors.len(), 1);
    let (b, r) = bt_als(x.view(), 1, &ranks, 0, &AlsOptions::default()).unwrap();
    assert_within(dense_err(&x, &b), 1e-10, "BT(1) on a Tucker tensor");
    assert!(r.final_error() <= r.initial_error());
    assert_eq!(b.n_params(), t.n_params());

    let noisy = &x + &(random_normal::<f64>(&shape, 12) * 0.02);
    let als = AlsOptions::default().with_max_iter(500).with_tol(1e-13);
    let (_, rb) = bt_als(noisy.view(), 1, &ranks, 0, &als).unwrap();
    let (h, rh) = hooi_with_ranks(&noisy, &ranks, &als);
    assert!(rh.final_error() < rh.initial_error());
    assert!(
        (rb.final_error() - rh.final_error()).abs() <= 1e-8 * rh.final_error(),
        "BT(1) {} vs HOOI {}",
        rb.final_error(),
        rh.final_error()
    );
    assert_eq!(h.ranks(), ranks.to_vec());
}

/// HOOI at per-mode ranks, started from the ST-HOSVD at those ranks.
fn hooi_with_ranks(
    x: &ArrayD<f64>,
    ranks: &[usize],
    opts: &AlsOptions,
) -> (TuckerTensor<f64>, AlsReport<f64>) {
    let (st, _) = hosvd(
        x.view(),
        &Truncation::exact(),
        &HosvdOptions::default().with_mode_ranks(ranks.to_vec()),
    )
    .unwrap();
    hooi_refine(x.view(), &st, opts).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, .. ProptestConfig::default() })]

    /// On random dense tensors (no structure) BT-ALS's error history is non-increasing,
    /// ends at or below the ST-HOSVD-deflation start, and the reported final error is the
    /// true one; refining the result cannot make it worse.
    #[test]
    fn als_error_is_monotone((shape, ranks, nb) in bt_structure(1..=4, 1..=6, 1500, 3, 3), seed in any::<u64>()) {
        let x = random_normal::<f64>(&shape, seed);
        let opts = AlsOptions::default().with_max_iter(25);
        let (y, report) = bt_als(x.view(), nb, &ranks, seed, &opts).unwrap();
        prop_assert!(non_increasing(&report.errors), "{:?}", report.errors);
        prop_assert!(report.final_error() <= report.initial_error());
        let err = dense_err(&x, &y);
        prop_assert!((report.final_error() - err).abs() <= 10.0 * roundoff::<f64>(x.len()), "{} vs {}", report.final_error(), err);
        prop_assert_eq!(y.n_blocks(), nb);
        let (_, again) = bt_als_refine(x.view(), &y, &opts).unwrap();
        prop_assert!(again.final_error() <= report.final_error() + 10.0 * roundoff::<f64>(x.len()));
        // The start is the greedy ST-HOSVD deflation: block 1 alone is the ST-HOSVD of X.
        let r = TuckerTensor::<f64>::admissible_ranks(&shape, &ranks).unwrap();
        let (st, _) = hosvd(x.view(), &Truncation::exact(), &HosvdOptions::default().with_mode_ranks(r)).unwrap();
        let (b0, _) = bt_als(x.view(), nb, &ranks, seed, &opts.with_max_iter(0)).unwrap();
        let st_ranks_full = st.ranks() == b0.block(0).ranks();
        if st_ranks_full {
            prop_assert!(rel_error(st.to_dense().view(), b0.block(0).to_dense().view()).unwrap() < 1e-12);
        }
    }

    /// Arithmetic agrees with dense computation: to_dense, norm, inner, inner_dense,
    /// entry, add, sub, scale, and rounding meets its tolerance.
    #[test]
    fn arithmetic_matches_dense((shape, ranks, nb) in bt_structure(1..=4, 1..=5, 600, 3, 3), seed in any::<u64>(), alpha in -3.0f64..3.0, eps in 0.0f64..0.8) {
        let x = BtTensor::<f64>::random(&shape, &ranks, nb, seed).unwrap();
        let y = BtTensor::<f64>::random(&shape, &ranks, 2, seed ^ 9).unwrap();
        let dx: ArrayD<f64> = x.blocks().iter().fold(ArrayD::zeros(IxDyn(&shape)), |acc, b| acc + b.to_dense());
        prop_assert!(rel_error(dx.view(), x.to_dense().view()).unwrap() < 1e-14);
        let dy = y.to_dense();
        let n = tnet::dense::norm(dx.view());
        let tol = 1e-12 * (1.0 + n * tnet::dense::norm(dy.view()));
        assert_within((x.norm() - n).abs(), 1e-10 * (1.0 + n), "norm");
        let inner = tnet::dense::inner(dx.view(), dy.view()).unwrap();
        assert_within((x.inner(&y).unwrap() - inner).abs(), tol, "inner");
        assert_within((x.inner_dense(dy.view()).unwrap() - inner).abs(), tol, "inner_dense");
        let idx: Vec<usize> = shape.iter().map(|&s| (seed as usize / 7) % s).collect();
        assert_within((x.entry(&idx).unwrap() - dx[IxDyn(&idx)]).abs(), 1e-12 * (1.0 + n), "entry");
        let close = |a: &ArrayD<f64>, b: &BtTensor<f64>, what: &str| {
            let e = tnet::dense::norm((a - &b.to_dense()).view());
            assert_within(e, 1e-12 * (1.0 + tnet::dense::norm(a.view())), what);
        };
        close(&(&dx + &dy), &x.add(&y).unwrap(), "add");
        close(&(&dx - &dy), &x.sub(&y).unwrap(), "sub");
        close(&(&dx * alpha), &x.scale(alpha), "scale");
        prop_assert_eq!(x.n_params(), x.blocks().iter().map(|b| b.n_params()).sum::<usize>());
        let (r, info) = x.round(&Truncation::rel(eps)).unwrap();
        let err = dense_err(&dx, &r);
        let slack = 1e-9;
        assert_within(err, eps + slack, "BT round tolerance");
        assert_within(err * n, info.error_bound + slack * n, "BT round bound");
        prop_assert!(r.n_params() <= x.n_params());
        prop_assert_eq!(r.n_blocks(), x.n_blocks());
    }

    /// Files: save then load gives the identical tensor (f64 and f32).
    #[test]
    fn save_load_roundtrip((shape, ranks, nb) in bt_structure(1..=4, 1..=4, 500, 3, 3), seed in any::<u64>()) {
        let p = std::env::temp_dir().join(format!("tnet_bt_rt_{seed}.json"));
        let x = BtTensor::<f64>::random(&shape, &ranks, nb, seed).unwrap();
        x.save(&p).unwrap();
        prop_assert_eq!(BtTensor::<f64>::load(&p).unwrap(), x);
        let y = BtTensor::<f32>::random(&shape, &ranks, nb, seed).unwrap();
        y.save(&p).unwrap();
        prop_assert_eq!(BtTensor::<f32>::load(&p).unwrap(), y);
        std::fs::remove_file(&p).unwrap();
    }
}

/// Degenerate shapes: order 1, order 2, modes of size 1, rank 1, ranks above the possible
/// (clipped), more blocks than needed, and the zero tensor (zero error, no NaN).
#[test]
fn degenerate_shapes() {
    for shape in [
        vec![7],
        vec![5, 3],
        vec![1, 4, 1],
        vec![1, 1, 1, 1],
        vec![2, 1, 3, 1, 2],
    ] {
        let d = shape.len();
        let x = random_normal::<f64>(&shape, 3);
        for (ranks, nb) in [(vec![1; d], 1), (vec![1; d], 3), (vec![100; d], 2)] {
            let (y, r) = bt_als(x.view(), nb, &ranks, 1, &AlsOptions::default()).unwrap();
            assert!(non_increasing(&r.errors), "{shape:?}");
            assert!((dense_err(&x, &y) - r.final_error()).abs() < 1e-12);
            let clipped = TuckerTensor::<f64>::admissible_ranks(&shape, &ranks).unwrap();
            assert_eq!(y.ranks(), vec![clipped.clone(); nb]);
            if ranks[0] == 100 {
                // Full ranks: one block is the whole tensor.
                assert!(
                    r.final_error() < 1e-12,
                    "{shape:?} {ranks:?}: {}",
                    r.final_error()
                );
            }
        }
        let z = ArrayD::<f64>::zeros(IxDyn(&shape));
        let (y, r) = bt_als(z.view(), 2, &vec![2; d], 0, &AlsOptions::default()).unwrap();
        assert_eq!(r.final_error(), 0.0);
        assert!(r.converged);
        assert!(y.to_dense().iter().all(|&v| v == 0.0));
        assert_eq!(y.norm(), 0.0);
        let (rz, info) = y.round(&Truncation::rel(0.1)).unwrap();
        assert!(rz.to_dense().iter().all(|&v| v == 0.0));
        assert!(info.error_bound.is_finite());
    }
    // A rank-1 vector as 3 blocks: the extra blocks are completed from the seed and stay
    // harmless.
    let v = random_normal::<f64>(&[6], 1);
    let (y, r) = bt_als(v.view(), 3, &[1], 5, &AlsOptions::default()).unwrap();
    assert!(r.final_error() < 1e-12);
    assert_eq!(y.n_blocks(), 3);
}

/// Bad input gives clear errors: no blocks, zero or mismatched ranks, NaN/Inf, empty
/// tensors, bad options, blocks of different shapes, shape mismatches, bad indices.
#[test]
fn bad_input_errors() {
    let x = random_normal::<f64>(&[3, 4, 5], 1);
    let opts = AlsOptions::default();
    assert!(matches!(
        bt_als(x.view(), 0, &[1, 1, 1], 0, &opts),
        Err(Error::InvalidParameter { .. })
    ));
    assert!(matches!(
        bt_als(x.view(), 2, &[1, 1], 0, &opts),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        bt_als(x.view(), 2, &[1, 0, 1], 0, &opts),
        Err(Error::InvalidParameter { .. })
    ));
    assert!(matches!(
        bt_als(x.view(), 2, &[1, 1, 1], 0, &opts.with_tol(f64::INFINITY)),
        Err(Error::InvalidParameter { .. })
    ));
    let mut bad = x.clone();
    bad[[0, 1, 2]] = f64::NAN;
    assert!(matches!(
        bt_als(bad.view(), 2, &[1, 1, 1], 0, &opts),
        Err(Error::NonFinite { .. })
    ));
    let empty = ArrayD::<f64>::zeros(IxDyn(&[3, 0]));
    assert!(matches!(
        bt_als(empty.view(), 1, &[1, 1], 0, &opts),
        Err(Error::Empty { .. })
    ));
    assert!(matches!(
        BtTensor::<f64>::try_new(vec![]),
        Err(Error::InvalidParameter { .. })
    ));
    let a = TuckerTensor::<f64>::random(&[3, 4, 5], &[1, 1, 1], 0).unwrap();
    let b = TuckerTensor::<f64>::random(&[3, 4, 6], &[1, 1, 1], 0).unwrap();
    assert!(matches!(
        BtTensor::try_new(vec![a.clone(), b.clone()]),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        BtTensor::<f64>::random(&[3, 4], &[1, 1], 0, 0),
        Err(Error::InvalidParameter { .. })
    ));
    let (xa, xb) = (BtTensor::from_tucker(a), BtTensor::from_tucker(b));
    assert!(matches!(xa.add(&xb), Err(Error::ShapeMismatch { .. })));
    assert!(matches!(xa.inner(&xb), Err(Error::ShapeMismatch { .. })));
    assert!(matches!(
        xa.inner_dense(random_normal::<f64>(&[3, 4], 0).view()),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        xa.entry(&[3, 0, 0]),
        Err(Error::IndexOutOfBounds { .. })
    ));
    assert!(matches!(
        bt_als_refine(random_normal::<f64>(&[3, 4, 6], 0).view(), &xa, &opts),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        xa.round(&Truncation::abs(-1.0)),
        Err(Error::InvalidParameter { .. })
    ));
}

/// Corrupt, truncated, tampered, wrong-version and wrong-dtype files give errors.
#[test]
fn corrupt_files_are_rejected() {
    let p = std::env::temp_dir().join("tnet_bt_corrupt.json");
    let x = BtTensor::<f64>::random(&[3, 4, 5], &[2, 2, 2], 2, 9).unwrap();
    x.save(&p).unwrap();
    let text = std::fs::read_to_string(&p).unwrap();
    let load = |s: &str| {
        std::fs::write(&p, s).unwrap();
        BtTensor::<f64>::load(&p)
    };
    assert!(matches!(
        load(&text[..text.len() - 10]),
        Err(Error::Corrupt { path: Some(_), .. })
    ));
    assert!(matches!(
        load(&text.replace("\"version\":1", "\"version\":2")),
        Err(Error::Version { found: 2, .. })
    ));
    assert!(matches!(
        load(&text.replace("tnet-bt", "tnet-tucker")),
        Err(Error::Corrupt { .. })
    ));
    std::fs::write(&p, &text).unwrap();
    assert!(matches!(
        BtTensor::<f32>::load(&p),
        Err(Error::Corrupt { .. })
    ));
    assert!(matches!(
        load(&text.replace("\"shape\":[3,4,5]", "\"shape\":[3,4,7]")),
        Err(Error::Corrupt { .. })
    ));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut w = v.clone();
    w["blocks"] = serde_json::json!([]);
    assert!(matches!(
        load(&w.to_string()),
        Err(Error::InvalidParameter { .. })
    ));
    let mut w = v.clone();
    w["blocks"][1]["factors"][2] = w["blocks"][1]["factors"][1].clone();
    assert!(matches!(
        load(&w.to_string()),
        Err(Error::ShapeMismatch { .. })
    ));
    let mut w = v;
    w["blocks"][0]["core"]["dim"] = serde_json::json!([2, 2, 1]);
    w["blocks"][0]["core"]["data"] = serde_json::json!([1.0, 2.0, 3.0, 4.0]);
    assert!(matches!(
        load(&w.to_string()),
        Err(Error::ShapeMismatch { .. })
    ));
    std::fs::remove_file(&p).unwrap();
}

/// The least-squares solve behind the factor updates is stable (SVD, not normal
/// equations): on a consistent system with condition number 1e7 it recovers the solution
/// to ~cond·eps, where the normal equations would lose ~cond²·eps = 1e-2; on a
/// rank-deficient system it returns the minimum-norm solution (orthogonal to the null
/// space, zero normal-equation residual); shape mismatches and NaN are errors.
#[test]
fn lstsq_is_stable_and_minimum_norm() {
    use ndarray::Array2;
    use tnet::linalg::lstsq;
    let mut g = tnet::dense::rng(3);
    let (m, n) = (60, 6);
    let u: Array2<f64> = tnet::dense::random_orthonormal(m, n, &mut g);
    let v: Array2<f64> = tnet::dense::random_orthonormal(n, n, &mut g);
    let s = Array2::from_diag(&ndarray::Array1::from_iter(
        (0..n).map(|i| 10f64.powf(-7.0 * i as f64 / (n - 1) as f64)),
    ));
    let a = u.dot(&s).dot(&v.t());
    let x_true: Array2<f64> = random_normal::<f64>(&[n, 2], 4)
        .into_dimensionality()
        .unwrap();
    let b = a.dot(&x_true);
    let ls = lstsq(a.view(), b.view()).unwrap();
    assert_eq!(ls.rank, n);
    let err = (&ls.x - &x_true).iter().map(|e| e * e).sum::<f64>().sqrt()
        / x_true.iter().map(|e| e * e).sum::<f64>().sqrt();
    assert!(err < 1e-7, "relative solution error {err:e} at cond 1e7");
    // Rank deficient: the last column duplicates the first.
    let mut a2 = random_normal::<f64>(&[20, 4], 5)
        .into_dimensionality::<ndarray::Ix2>()
        .unwrap();
    let c0 = a2.column(0).to_owned();
    a2.column_mut(3).assign(&c0);
    let b2: Array2<f64> = random_normal::<f64>(&[20, 3], 6)
        .into_dimensionality()
        .unwrap();
    let ls2 = lstsq(a2.view(), b2.view()).unwrap();
    assert_eq!(ls2.rank, 3);
    let normal_residual = a2.t().dot(&(a2.dot(&ls2.x) - &b2));
    assert!(normal_residual.iter().all(|e| e.abs() < 1e-10));
    // The null space is spanned by e_0 - e_3: the minimum-norm solution has x_0 = x_3.
    for j in 0..3 {
        assert!((ls2.x[[0, j]] - ls2.x[[3, j]]).abs() < 1e-10);
    }
    assert!(matches!(
        lstsq(a2.view(), b.view()),
        Err(Error::ShapeMismatch { .. })
    ));
    let mut bad = b2.clone();
    bad[[0, 0]] = f64::NAN;
    assert!(matches!(
        lstsq(a2.view(), bad.view()),
        Err(Error::NonFinite { .. })
    ));
}
