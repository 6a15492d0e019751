//! Tensor-Ring format: TR-SVD, TR rounding, TR-ALS, arithmetic, conversions, degenerate
//! shapes, bad input and files, in f32 and f64.
mod common;

use common::{assert_within, roundoff, shape_strategy};
use ndarray::{Array3, ArrayD, IxDyn};
use proptest::prelude::*;
use tnet::dense::{random_normal, rel_error};
use tnet::formats::tr::{TrAlsInit, TrAlsOptions, TrAlsStop, tr_als};
use tnet::formats::tr::{TrRoundMethod, tr_round, tr_round_with};
use tnet::formats::tr::{balanced_split, tr_svd};
use tnet::{Error, Factorized, Scalar, TrTensor, Truncation, TtTensor};

fn exact_recovery<T: Scalar>(shape: &[usize], rank: usize, seed: u64, tol: f64) {
    let x = TrTensor::<T>::random(shape, rank, seed).unwrap();
    let dense = x.to_dense();
    let (y, info) = tr_svd(dense.view(), &Truncation::rel(tol / 100.0)).unwrap();
    let err = rel_error(dense.view(), y.to_dense().view())
        .unwrap()
        .as_f64();
    assert_within(
        err,
        tol,
        &format!("TR-SVD exact recovery {shape:?} rank {rank}"),
    );
    assert_within(info.rel_error_bound().as_f64(), tol, "TR-SVD bound");
    // The first rank is the rank of X_<1> (generic: min(r^2, n_1, N/n_1)), split evenly.
    let n: usize = shape.iter().product();
    let ranks = y.ranks();
    let f64_run = T::NAME == "f64";
    if shape.len() > 1 && f64_run {
        let r01 = ranks[0] * ranks[1];
        assert_eq!(
            r01,
            (rank * rank).min(shape[0]).min(n / shape[0]),
            "r_0 r_1 on {shape:?}"
        );
        assert_eq!((ranks[0], ranks[1]), balanced_split(r01, usize::MAX));
    }
    // Rounding the redundant ring x + x keeps the tensor (2x); the default never grows it,
    // and the TR-SVD method finds the same first rank as TR-SVD.
    let doubled = x.add(&x).unwrap();
    let twice = &dense * T::cast(2.0);
    for method in [
        TrRoundMethod::Best,
        TrRoundMethod::TrSvd,
        TrRoundMethod::OpenChain,
    ] {
        let (z, zinfo) = tr_round_with(&doubled, &Truncation::rel(tol / 100.0), method).unwrap();
        let e = rel_error(twice.view(), z.to_dense().view())
            .unwrap()
            .as_f64();
        assert_within(e, tol, &format!("TR rounding of x + x, {method:?}"));
        assert_within(zinfo.rel_error_bound().as_f64(), tol, "TR rounding bound");
        if method == TrRoundMethod::Best {
            assert!(
                z.n_params() <= doubled.n_params(),
                "{method:?} grew the ring"
            );
        }
        if method == TrRoundMethod::TrSvd && shape.len() > 1 && f64_run {
            assert_eq!(
                z.ranks()[0] * z.ranks()[1],
                ranks[0] * ranks[1],
                "rounded first rank"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    /// A random TR tensor of known ranks is recovered by TR-SVD to 1e-10 in f64, with first
    /// rank r_0 r_1 the rank of X_<1> split evenly; TR rounding of x + x recovers 2x.
    #[test]
    fn exact_recovery_f64(shape in shape_strategy(1..=5, 1..=6, 4000), rank in 1usize..4, seed in any::<u64>()) {
        exact_recovery::<f64>(&shape, rank, seed, 1e-10);
    }

    /// The same in f32, to a precision-scaled tolerance.
    #[test]
    fn exact_recovery_f32(shape in shape_strategy(1..=4, 1..=6, 2000), rank in 1usize..3, seed in any::<u64>()) {
        let tol = 200.0 * roundoff::<f32>(shape.iter().product());
        exact_recovery::<f32>(&shape, rank, seed, tol);
    }

    /// TR-SVD's guarantee on random dense tensors: ||X - Y|| <= eps ||X||, the returned bound
    /// bounds the error, the first truncation discards at most sqrt(2) eps ||X|| / sqrt(d) and
    /// the others at most eps ||X|| / sqrt(d); with a rank cap every rank is within it.
    #[test]
    fn tolerance_guarantee(shape in shape_strategy(1..=5, 1..=6, 3000), eps in 0.0f64..0.9, cap in 1usize..8, seed in any::<u64>()) {
        let x = random_normal::<f64>(&shape, seed);
        let (y, info) = tr_svd(x.view(), &Truncation::rel(eps)).unwrap();
        let err = rel_error(x.view(), y.to_dense().view()).unwrap();
        let slack = roundoff::<f64>(x.len());
        assert_within(err, eps + slack, &format!("TR-SVD tolerance {eps} on {shape:?}"));
        assert_within(err, info.rel_error_bound() + slack, "TR-SVD returned bound");
        let d = shape.len() as f64;
        let beta = eps * info.input_norm;
        for (k, &dk) in info.discarded.iter().enumerate() {
            let budget = if k == 0 { 2f64.sqrt() * beta / d.sqrt() } else { beta / d.sqrt() };
            assert_within(dk, budget * (1.0 + 1e-12), "per-truncation budget");
        }
        let (c, cinfo) = tr_svd(x.view(), &Truncation::rel(eps).with_max_rank(cap)).unwrap();
        prop_assert!(c.max_rank() <= cap);
        let cerr = rel_error(x.view(), c.to_dense().view()).unwrap();
        assert_within(cerr, cinfo.rel_error_bound() + slack, "capped bound");
    }

    /// In f32 the TR-SVD tolerance holds up to f32 round-off.
    #[test]
    fn tolerance_guarantee_f32(shape in shape_strategy(2..=4, 2..=6, 1500), eps in 0.01f64..0.9, seed in any::<u64>()) {
        let x = random_normal::<f32>(&shape, seed);
        let (y, info) = tr_svd(x.view(), &Truncation::rel(eps)).unwrap();
        let err = rel_error(x.view(), y.to_dense().view()).unwrap().as_f64();
        let slack = 10.0 * roundoff::<f32>(x.len());
        assert_within(err, eps + slack, &format!("f32 TR-SVD tolerance {eps} on {shape:?}"));
        assert_within(err, info.rel_error_bound().as_f64() + slack, "f32 bound");
    }

    /// TR rounding of a ring (a sum of two random rings, no exact structure) meets its
    /// tolerance against the dense truth and never exceeds its returned bound; with a cap,
    /// every rank is within it.
    #[test]
    fn rounding_guarantee(shape in shape_strategy(1..=5, 2..=5, 2000), ra in 1usize..4, eps in 0.0f64..0.8, cap in 1usize..6, seed in any::<u64>()) {
        let a = TrTensor::<f64>::random(&shape, ra, seed).unwrap();
        let b = TrTensor::<f64>::random(&shape, 2, seed ^ 0xabc).unwrap();
        let x = a.add(&b.scale(0.1)).unwrap();
        let dense = x.to_dense();
        let slack = roundoff::<f64>(dense.len());
        let nx = tnet::dense::norm(dense.view());
        let mut params = Vec::new();
        for method in [TrRoundMethod::Best, TrRoundMethod::TrSvd, TrRoundMethod::OpenChain] {
            let (y, info) = tr_round_with(&x, &Truncation::rel(eps), method).unwrap();
            let err = rel_error(dense.view(), y.to_dense().view()).unwrap();
            assert_within(err, eps + slack, &format!("TR rounding tolerance {eps} on {shape:?}, {method:?}"));
            assert_within(err, info.rel_error_bound() + slack, &format!("TR rounding bound, {method:?}"));
            assert_within((info.input_norm - nx).abs(), 1e-12 * nx, "norm used by rounding");
            let (c, cinfo) = tr_round_with(&x, &Truncation::rank(cap), method).unwrap();
            prop_assert!(c.max_rank() <= cap);
            let cerr = rel_error(dense.view(), c.to_dense().view()).unwrap();
            assert_within(cerr, cinfo.rel_error_bound() + slack, "capped rounding bound");
            params.push(y.n_params());
        }
        prop_assert_eq!(params[0], params[1].min(params[2]), "Best keeps the smaller");
        let (y, _) = x.round(&Truncation::rel(eps)).unwrap();
        prop_assert_eq!(y.n_params(), params[0]);
    }

    /// TR-ALS never increases the error (history non-increasing up to round-off), and ends
    /// at or below its start: from TR-SVD at a rank cap and from a seeded random start.
    #[test]
    fn als_is_monotone(shape in shape_strategy(2..=4, 2..=5, 800), cap in 1usize..4, seed in any::<u64>()) {
        let x = random_normal::<f64>(&shape, seed);
        let opts = TrAlsOptions { max_sweeps: 8, tol: 0.0, min_decrease: 0.0 };
        let (svd_start, _) = tr_svd(x.view(), &Truncation::rank(cap)).unwrap();
        let svd_err = rel_error(x.view(), svd_start.to_dense().view()).unwrap();
        let ranks = vec![cap; shape.len()];
        for init in [TrAlsInit::Svd(Truncation::rank(cap)), TrAlsInit::Random { ranks, seed }] {
            let (y, rep) = tr_als(x.view(), init, &opts).unwrap();
            let e = &rep.rel_errors;
            prop_assert_eq!(e.len(), rep.sweeps + 1);
            // Up to round-off in the squared error (the normal equations resolve it to
            // about eps ||X||^2): e_{t+1}^2 <= e_t^2 + 100 eps.
            for w in e.windows(2) {
                assert_within(w[1] * w[1], w[0] * w[0] * (1.0 + 1e-10) + 100.0 * f64::EPSILON, "monotone history");
            }
            let last = rel_error(x.view(), y.to_dense().view()).unwrap();
            assert_within((last - e[e.len() - 1]).abs(), 1e-12, "reported error is the error");
            prop_assert!(last * last <= e[0] * e[0] * (1.0 + 1e-10) + 100.0 * f64::EPSILON);
        }
        let (y, rep) = tr_als(x.view(), TrAlsInit::Svd(Truncation::rank(cap)), &opts).unwrap();
        assert_within((rep.rel_errors[0] - svd_err).abs(), 1e-12, "starts at the TR-SVD error");
        assert_eq!(y.ranks(), svd_start.ranks());
        let last = *rep.rel_errors.last().unwrap();
        assert_within(last * last, svd_err * svd_err * (1.0 + 1e-10) + 100.0 * f64::EPSILON, "no worse than TR-SVD");
    }

    /// Arithmetic without densifying agrees with dense computation: add, sub, scale,
    /// Hadamard, inner (TR-TR and TR-dense), norm, norm_diff, entries, TT conversions.
    #[test]
    fn arithmetic_agrees_with_dense(shape in shape_strategy(1..=4, 1..=5, 600), ra in 1usize..4, rb in 1usize..4, seed in any::<u64>()) {
        let a = TrTensor::<f64>::random(&shape, ra, seed).unwrap().scale(1.7);
        let b = TrTensor::<f64>::random(&shape, rb, seed ^ 0x5eed).unwrap();
        let (da, db) = (a.to_dense(), b.to_dense());
        let na = tnet::dense::norm(da.view());
        let nb = tnet::dense::norm(db.view());
        let tol = 1e-12;
        let close = |want: &ArrayD<f64>, got: &ArrayD<f64>, what: &str| {
            let e = tnet::dense::norm((want - got).view());
            assert_within(e, tol * (na + nb) * (1.0 + na * nb), what);
        };
        close(&(&da + &db), &a.add(&b).unwrap().to_dense(), "add");
        close(&(&da - &db), &a.sub(&b).unwrap().to_dense(), "sub");
        close(&(&da * -0.3), &a.scale(-0.3).to_dense(), "scale");
        close(&(&da * &db), &a.hadamard(&b).unwrap().to_dense(), "hadamard");
        let di = tnet::dense::inner(da.view(), db.view()).unwrap();
        assert_within((a.inner(&b).unwrap() - di).abs(), tol * (1.0 + na * nb), "inner");
        assert_within((a.inner_dense(db.view()).unwrap() - di).abs(), tol * (1.0 + na * nb), "inner_dense");
        assert_within((a.norm() - na).abs(), 1e-10 * (1.0 + na), "norm");
        let nd = tnet::dense::norm((&da - &db).view());
        assert_within((a.norm_diff(&b).unwrap() - nd).abs(), 1e-10 * (1.0 + na + nb), "norm_diff");
        let idx: Vec<usize> = shape.iter().map(|&n| (seed as usize) % n).collect();
        assert_within((a.entry(&idx).unwrap() - da[IxDyn(&idx)]).abs(), tol * (1.0 + na), "entry");
        let all = ndarray::Array2::from_shape_fn((2, shape.len()), |(r, k)| (r + idx[k]) % shape[k]);
        let vals = a.entries(all.view()).unwrap();
        let idx1: Vec<usize> = all.row(1).to_vec();
        assert_within((vals[1] - da[IxDyn(&idx1)]).abs(), tol * (1.0 + na), "entries");
        // TT conversions: exact both ways; ranks r_0 r_k.
        let t = a.to_tt();
        close(&da, &t.to_dense(), "to_tt");
        close(&t.to_dense(), &TrTensor::from_tt(&t).to_dense(), "from_tt");
        prop_assert!(t.ranks()[1..shape.len()].iter().zip(&a.ranks()[1..]).all(|(&s, &r)| s == ra * r));
    }
}

/// The balanced split: `r_0 r_1 = R`, `r_0 <= r_1`, `r_0` the largest divisor not above
/// `sqrt(R)`; under a cap, the largest `R' <= R` that has a split within the cap.
#[test]
fn balanced_split_properties() {
    for r in 1..200usize {
        let (a, b) = balanced_split(r, usize::MAX);
        assert_eq!(a * b, r);
        assert!(a <= b);
        assert!(
            (a + 1..=b).all(|c| c * c > r || r % c != 0),
            "{r}: ({a}, {b})"
        );
        for cap in 1..15usize {
            let (a, b) = balanced_split(r, cap);
            assert!(
                a <= cap && b <= cap && a * b <= r,
                "{r} cap {cap}: ({a}, {b})"
            );
            let best = (1..=r)
                .rev()
                .find(|&rr| (1..=cap).any(|c| rr % c == 0 && rr / c <= cap))
                .unwrap();
            assert_eq!(a * b, best, "{r} cap {cap}");
        }
    }
    assert_eq!(balanced_split(0, 5), (1, 1));
}

/// The TR-SVD rounding method is TR-SVD computed in compressed form: on a ring with exact
/// structure it gives the ranks TR-SVD gives on the dense tensor. The open-chain method
/// removes zero padding exactly, and the default keeps the smaller of the two.
#[test]
fn rounding_methods_on_exact_data() {
    let x = TrTensor::<f64>::random(&[4, 5, 3, 4], 2, 9).unwrap();
    let s = x.add(&x.scale(0.5)).unwrap();
    let rule = Truncation::rel(1e-10);
    let (r, _) = tr_round_with(&s, &rule, TrRoundMethod::TrSvd).unwrap();
    let (t, _) = tr_svd(s.to_dense().view(), &rule).unwrap();
    assert_eq!(r.ranks(), t.ranks());
    let e = rel_error(s.to_dense().view(), r.to_dense().view()).unwrap();
    assert!(e < 1e-10, "{e:e}");
    let (o, _) = tr_round_with(&s, &rule, TrRoundMethod::OpenChain).unwrap();
    let (b, _) = tr_round(&s, &rule).unwrap();
    assert_eq!(b.n_params(), r.n_params().min(o.n_params()));
    assert!(b.n_params() <= s.n_params());
    let padded = x.add(&x.scale(0.0)).unwrap();
    let (p, pinfo) = tr_round(&padded, &rule).unwrap();
    assert_eq!(p.ranks(), x.ranks(), "zero padding removed");
    assert!(pinfo.error_bound < 1e-12 * pinfo.input_norm);
    // A TT seen as a ring (r_0 = 1) rounds to a ring with a balanced first split.
    let tt = TtTensor::<f64>::random(&[4, 4, 4, 4], 4, 2).unwrap();
    let (rr, _) = tr_round_with(
        &TrTensor::from_tt(&tt),
        &Truncation::rel(1e-12),
        TrRoundMethod::TrSvd,
    )
    .unwrap();
    assert_eq!((rr.ranks()[0], rr.ranks()[1]), (2, 2));
    assert!(rel_error(tt.to_dense().view(), rr.to_dense().view()).unwrap() < 1e-11);
}

/// TR-ALS stopping rules and options: a reachable tolerance stops it (`Tolerance`), zero
/// sweeps only evaluate the start, stagnation is detected, exact data is fitted.
#[test]
fn als_stopping_and_recovery() {
    let x = TrTensor::<f64>::random(&[4, 5, 6], 2, 3)
        .unwrap()
        .to_dense();
    let (_, rep) = tr_als(
        x.view(),
        TrAlsInit::Svd(Truncation::rel(1e-12)),
        &TrAlsOptions {
            tol: 1e-8,
            ..TrAlsOptions::default()
        },
    )
    .unwrap();
    assert_eq!(rep.stop, TrAlsStop::Tolerance);
    assert_eq!(rep.sweeps, 0, "TR-SVD already fits exact data");
    let ranks = vec![2, 2, 2];
    let opts0 = TrAlsOptions {
        max_sweeps: 0,
        ..TrAlsOptions::default()
    };
    let (_, rep) = tr_als(
        x.view(),
        TrAlsInit::Random {
            ranks: ranks.clone(),
            seed: 1,
        },
        &opts0,
    )
    .unwrap();
    assert_eq!(
        (rep.sweeps, rep.stop, rep.rel_errors.len()),
        (0, TrAlsStop::MaxSweeps, 1)
    );
    let (y, rep) = tr_als(
        x.view(),
        TrAlsInit::Random { ranks, seed: 1 },
        &TrAlsOptions {
            max_sweeps: 300,
            tol: 1e-6,
            min_decrease: 0.0,
        },
    )
    .unwrap();
    assert!(
        rep.rel_errors[0] > 0.5,
        "random start is far: {}",
        rep.rel_errors[0]
    );
    assert!(rep.rel_errors.last().unwrap() < &rep.rel_errors[0]);
    assert_eq!(y.ranks(), vec![2, 2, 2]);
    // Stagnation on random data.
    let noise = random_normal::<f64>(&[4, 5, 6], 8);
    let (_, rep) = tr_als(
        noise.view(),
        TrAlsInit::Svd(Truncation::rank(2)),
        &TrAlsOptions {
            max_sweeps: 500,
            tol: 0.0,
            min_decrease: 1e-3,
        },
    )
    .unwrap();
    assert_eq!(rep.stop, TrAlsStop::Stagnation);
    assert!(rep.sweeps < 500);
    // Given start and f32.
    let xf = TrTensor::<f32>::random(&[3, 4, 5], 2, 4).unwrap();
    let start = TrTensor::<f32>::random(&[3, 4, 5], 2, 5).unwrap();
    let (_, rep) = tr_als(
        xf.to_dense().view(),
        TrAlsInit::Given(&start),
        &TrAlsOptions::default(),
    )
    .unwrap();
    for w in rep.rel_errors.windows(2) {
        assert!(
            w[1] <= w[0] * (1.0 + 1e-4) + 1e-6,
            "f32 monotone {:?}",
            rep.rel_errors
        );
    }
    // Order 1: fitted exactly in one sweep, ranks kept.
    let v = random_normal::<f64>(&[7], 1);
    let (y, rep) = tr_als(
        v.view(),
        TrAlsInit::Random {
            ranks: vec![3],
            seed: 2,
        },
        &TrAlsOptions::default(),
    )
    .unwrap();
    assert!(rep.rel_errors.last().unwrap() < &1e-14);
    assert_eq!(y.ranks(), vec![3]);
}

/// Degenerate shapes and ranks: order 1 and 2, modes of size 1, rank 1, a rank cap far
/// above the possible one, and the zero tensor, for TR-SVD, rounding and ALS.
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
            let (y, info) = tr_svd(x.view(), &rule).unwrap();
            let err = rel_error(x.view(), y.to_dense().view()).unwrap();
            assert!(err <= info.rel_error_bound() + 1e-12, "{shape:?} {rule:?}");
            if rule != Truncation::rank(1) || shape.len() == 1 {
                assert!(err < 1e-12, "{shape:?} {rule:?}: {err}");
            }
            assert!(y.max_rank() <= rule.max_rank().unwrap_or(usize::MAX));
            let (z, zi) = y.round(&rule).unwrap();
            let ze = rel_error(y.to_dense().view(), z.to_dense().view()).unwrap();
            assert!(ze <= zi.rel_error_bound() + 1e-12, "{shape:?} {rule:?}");
            assert!(z.max_rank() <= rule.max_rank().unwrap_or(usize::MAX));
        }
        // Rank 1 ring = rank 1 TT.
        let r1 = TrTensor::<f64>::random(&shape, 1, 4).unwrap();
        assert!(r1.ranks().iter().all(|&r| r == 1));
        assert_eq!(r1.to_tt().ranks().iter().max(), Some(&1));
        // Zero tensor: zero ring of rank 1; zero ring rounds to zero; ALS keeps zero.
        let z = ArrayD::<f64>::zeros(IxDyn(&shape));
        let (y, info) = tr_svd(z.view(), &Truncation::rel(1e-3)).unwrap();
        assert_eq!(info.rel_error_bound(), 0.0);
        assert!(y.to_dense().iter().all(|&v| v == 0.0));
        assert_eq!(y.max_rank(), 1);
        assert_eq!(y.norm(), 0.0);
        let (t, _) = TrTensor::<f64>::random(&shape, 2, 1)
            .unwrap()
            .scale(0.0)
            .round(&Truncation::rel(0.1))
            .unwrap();
        assert!(t.to_dense().iter().all(|&v| v == 0.0));
        let (a, rep) = tr_als(
            z.view(),
            TrAlsInit::Random {
                ranks: vec![2; shape.len()],
                seed: 1,
            },
            &TrAlsOptions::default(),
        )
        .unwrap();
        assert!(
            a.to_dense().iter().all(|v| v.abs() < 1e-12),
            "ALS of zero {:?}",
            rep.rel_errors
        );
    }
    // Order 1 ring: trace of each slice.
    let z = Array3::from_shape_fn((2, 3, 2), |(a, i, b)| (a * 10 + i * 3 + b) as f64);
    let r = TrTensor::try_new(vec![z.clone()]).unwrap();
    for i in 0..3 {
        assert_eq!(r.entry(&[i]).unwrap(), z[[0, i, 0]] + z[[1, i, 1]]);
    }
    let (rr, _) = r.round(&Truncation::exact()).unwrap();
    assert_eq!(rr.ranks(), vec![1]);
    assert!(rel_error(r.to_dense().view(), rr.to_dense().view()).unwrap() < 1e-15);
}

/// Bad input gives the documented errors: NaN/Inf, empty modes, rings that do not close,
/// zero ranks, invalid rules and ALS options, shape mismatches, bad indices.
#[test]
fn bad_input_errors() {
    let mut x = random_normal::<f64>(&[3, 4, 5], 1);
    x[[1, 2, 3]] = f64::NAN;
    assert!(matches!(
        tr_svd(x.view(), &Truncation::rel(0.1)),
        Err(Error::NonFinite { .. })
    ));
    assert!(matches!(
        tr_als(
            x.view(),
            TrAlsInit::Svd(Truncation::rank(2)),
            &TrAlsOptions::default()
        ),
        Err(Error::NonFinite { .. })
    ));
    x[[1, 2, 3]] = f64::NEG_INFINITY;
    assert!(matches!(
        tr_svd(x.view(), &Truncation::rel(0.1)),
        Err(Error::NonFinite { .. })
    ));
    let e = ArrayD::<f64>::zeros(IxDyn(&[3, 0, 2]));
    assert!(matches!(
        tr_svd(e.view(), &Truncation::rel(0.1)),
        Err(Error::Empty { .. })
    ));
    let ok = random_normal::<f64>(&[3, 4], 1);
    assert!(matches!(
        tr_svd(ok.view(), &Truncation::rel(-1.0)),
        Err(Error::InvalidParameter { .. })
    ));
    for bad in [
        TrAlsOptions {
            tol: f64::NAN,
            ..TrAlsOptions::default()
        },
        TrAlsOptions {
            min_decrease: -1.0,
            ..TrAlsOptions::default()
        },
    ] {
        assert!(matches!(
            tr_als(ok.view(), TrAlsInit::Svd(Truncation::rank(2)), &bad),
            Err(Error::InvalidParameter { .. })
        ));
    }
    assert!(matches!(
        tr_als(
            ok.view(),
            TrAlsInit::Random {
                ranks: vec![2],
                seed: 0
            },
            &TrAlsOptions::default()
        ),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        tr_als(
            ok.view(),
            TrAlsInit::Random {
                ranks: vec![2, 0],
                seed: 0
            },
            &TrAlsOptions::default()
        ),
        Err(Error::InvalidRank { .. })
    ));
    let other = TrTensor::<f64>::random(&[3, 5], 2, 0).unwrap();
    assert!(matches!(
        tr_als(
            ok.view(),
            TrAlsInit::Given(&other),
            &TrAlsOptions::default()
        ),
        Err(Error::ShapeMismatch { .. })
    ));

    let g = |r, n, q| Array3::<f64>::ones((r, n, q));
    assert!(matches!(
        TrTensor::<f64>::try_new(vec![]),
        Err(Error::Empty { .. })
    ));
    assert!(matches!(
        TrTensor::try_new(vec![g(2, 2, 3), g(3, 2, 1)]),
        Err(Error::InvalidRank { .. })
    ));
    assert!(matches!(
        TrTensor::try_new(vec![g(2, 2, 3), g(2, 2, 2)]),
        Err(Error::InvalidRank { .. })
    ));
    assert!(matches!(
        TrTensor::try_new(vec![g(2, 3, 1)]),
        Err(Error::InvalidRank { .. })
    ));
    assert!(matches!(
        TrTensor::try_new(vec![g(0, 2, 0)]),
        Err(Error::InvalidRank { .. })
    ));
    assert!(matches!(
        TrTensor::try_new(vec![g(2, 0, 2)]),
        Err(Error::Empty { .. })
    ));
    let mut inf = g(2, 2, 2);
    inf[[1, 1, 1]] = f64::INFINITY;
    assert!(matches!(
        TrTensor::try_new(vec![inf]),
        Err(Error::NonFinite { index: 7, .. })
    ));
    assert!(matches!(
        TrTensor::<f64>::random(&[2, 3], 0, 1),
        Err(Error::InvalidParameter { .. })
    ));
    assert!(matches!(
        TrTensor::<f64>::random(&[], 2, 1),
        Err(Error::Empty { .. })
    ));

    let a = TrTensor::<f64>::random(&[2, 3, 4], 2, 1).unwrap();
    let b = TrTensor::<f64>::random(&[2, 3, 5], 2, 1).unwrap();
    assert!(matches!(a.add(&b), Err(Error::ShapeMismatch { .. })));
    assert!(matches!(a.inner(&b), Err(Error::ShapeMismatch { .. })));
    assert!(matches!(a.hadamard(&b), Err(Error::ShapeMismatch { .. })));
    assert!(matches!(
        a.inner_dense(b.to_dense().view()),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        a.entry(&[2, 0, 0]),
        Err(Error::IndexOutOfBounds { .. })
    ));
    assert!(matches!(
        a.round(&Truncation::rank(0)),
        Err(Error::InvalidParameter { .. })
    ));
}

/// Files: save/load round trip (f32 and f64); truncated, malformed, wrong tag, wrong
/// version, wrong dtype, rings that do not close all give errors on load.
#[test]
fn files_round_trip_and_corruption() {
    let dir = std::env::temp_dir().join(format!("tnet_tr_test_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let x = TrTensor::<f64>::random(&[2, 3, 4], 2, 5).unwrap();
    let path = dir.join("x.json");
    x.save(&path).unwrap();
    assert_eq!(TrTensor::<f64>::load(&path).unwrap(), x);
    let xf = TrTensor::<f32>::random(&[2, 3, 4], 3, 5).unwrap();
    let pf = dir.join("xf.json");
    xf.save(&pf).unwrap();
    assert_eq!(TrTensor::<f32>::load(&pf).unwrap(), xf);
    assert!(matches!(
        TrTensor::<f32>::load(&path),
        Err(Error::Corrupt { .. })
    ));
    // A TT file is not a TR file.
    let tt = dir.join("tt.json");
    TtTensor::<f64>::random(&[2, 3], 2, 1)
        .unwrap()
        .save(&tt)
        .unwrap();
    assert!(matches!(
        TrTensor::<f64>::load(&tt),
        Err(Error::Corrupt { .. })
    ));

    let text = std::fs::read_to_string(&path).unwrap();
    let bad = |name: &str, content: &str| {
        let p = dir.join(name);
        std::fs::write(&p, content).unwrap();
        TrTensor::<f64>::load(&p)
    };
    assert!(matches!(
        bad("trunc.json", &text[..text.len() - 7]),
        Err(Error::Corrupt { path: Some(_), .. })
    ));
    assert!(matches!(
        bad("garbage.json", "{\"format\":"),
        Err(Error::Corrupt { .. })
    ));
    assert!(matches!(
        bad("ver.json", &text.replace("\"version\":1", "\"version\":2")),
        Err(Error::Version { found: 2, .. })
    ));
    assert!(matches!(
        bad(
            "nan.json",
            &text.replacen("\"data\":[", "\"data\":[null,", 1)
        ),
        Err(Error::Corrupt { .. })
    ));
    // Open the ring: the first core (2, 2, 2) becomes (1, 2, 4), same data length.
    let open = text.replacen("\"dim\":[2,2,2]", "\"dim\":[1,2,4]", 1);
    assert_ne!(open, text);
    assert!(matches!(
        bad("open.json", &open),
        Err(Error::InvalidRank { .. })
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// f32 arithmetic agrees with dense f32 computation to f32 round-off.
#[test]
fn f32_arithmetic() {
    let a = TrTensor::<f32>::random(&[3, 4, 5], 2, 1).unwrap();
    let b = TrTensor::<f32>::random(&[3, 4, 5], 3, 2).unwrap();
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
    assert_within(
        (a.norm() - na).abs() as f64,
        100.0 * tol * na as f64,
        "norm",
    );
    let (r, info) = a.add(&b).unwrap().round(&Truncation::rel(0.2)).unwrap();
    let e = rel_error((&da + &db).view(), r.to_dense().view()).unwrap() as f64;
    assert_within(e, 0.2 + tol, "f32 rounding");
    assert_within(e, info.rel_error_bound() as f64 + tol, "f32 rounding bound");
}

/// `f32` TR-SVD at the ranks `f64` chooses ends at the `f64` error: a decaying sum of
/// tensor trains plus 1e-3 noise gives ranks 16 and 128-column factors, whose tail
/// singular values an `f32` QR must not lose, and the fixed signs of the first singular
/// vectors make both precisions build the same ring. (The loss seen through faer's blocked
/// QR, 1.47e-3 against 1.00e-3, was on the 8^8 tensor of `scripts/compare_python.py`;
/// this smaller tensor does not reproduce it, so the test guards the property, and the
/// comparison script's error columns check that tensor.)
#[test]
fn f32_tr_svd_matches_f64_error() {
    let shape = [8usize; 7];
    let mut x = ArrayD::<f64>::zeros(IxDyn(&shape));
    for (rank, weight, seed) in [(3, 1.0, 1), (3, 0.3, 2), (2, 0.1, 3)] {
        let t = TtTensor::<f64>::random(&shape, rank, seed)
            .unwrap()
            .to_dense();
        let norm = t.iter().map(|v| v * v).sum::<f64>().sqrt();
        x.scaled_add(weight / norm, &t);
    }
    let noise = random_normal::<f64>(&shape, 4);
    let scale = 1e-3 * x.iter().map(|v| v * v).sum::<f64>().sqrt()
        / noise.iter().map(|v| v * v).sum::<f64>().sqrt();
    x.scaled_add(scale, &noise);
    let (y64, _) = tr_svd(x.view(), &Truncation::rel(1e-2)).unwrap();
    let e64 = rel_error(x.view(), y64.to_dense().view()).unwrap();
    let x32 = x.mapv(|v| v as f32);
    let (y32, _) = tr_svd(x32.view(), &Truncation::rel(1e-2)).unwrap();
    assert_eq!(y32.ranks(), y64.ranks());
    let back = y32.to_dense().mapv(f64::from);
    let e32 = rel_error(x.view(), back.view()).unwrap();
    assert_within(e32, 1.05 * e64, "f32 TR-SVD error against f64's");
}
