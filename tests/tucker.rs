//! Tucker format, ST-HOSVD / HOSVD and HOOI: exact recovery, error guarantees, arithmetic
//! against dense computation, conversions with HT, degenerate shapes, bad input, files.
mod common;

use common::{assert_within, roundoff, shape_and_tree, shape_strategy};
use ndarray::{Array2, ArrayD, IxDyn};
use proptest::prelude::*;
use tnet::dense::{random_normal, rel_error};
use tnet::formats::AlsOptions;
use tnet::formats::tucker::{HosvdOptions, HosvdVariant, ModeOrder, hosvd, st_hosvd};
use tnet::formats::tucker::{hooi, hooi_refine};
use tnet::linalg::{MatrixTruncation, svd};
use tnet::{DimTree, Error, Factorized, HtTensor, Scalar, Truncation, TuckerTensor};

/// A shape with one rank per mode (ranks in `1..=max_rank`).
fn shape_and_ranks(
    orders: std::ops::RangeInclusive<usize>,
    sizes: std::ops::RangeInclusive<usize>,
    max_len: usize,
    max_rank: usize,
) -> impl Strategy<Value = (Vec<usize>, Vec<usize>)> {
    shape_strategy(orders, sizes, max_len).prop_flat_map(move |s| {
        let d = s.len();
        (Just(s), proptest::collection::vec(1..=max_rank, d))
    })
}

/// A shape and a mode order for it.
fn shape_and_order(
    orders: std::ops::RangeInclusive<usize>,
    sizes: std::ops::RangeInclusive<usize>,
    max_len: usize,
) -> impl Strategy<Value = (Vec<usize>, ModeOrder)> {
    shape_strategy(orders, sizes, max_len).prop_flat_map(|s| {
        let d = s.len();
        (Just(s), order_strategy(d))
    })
}

/// A mode order: natural, automatic, or a random permutation.
fn order_strategy(d: usize) -> impl Strategy<Value = ModeOrder> {
    prop_oneof![
        Just(ModeOrder::Auto),
        Just(ModeOrder::Natural),
        Just((0..d).collect::<Vec<_>>())
            .prop_shuffle()
            .prop_map(ModeOrder::Given),
    ]
}

fn dense_err<T: Scalar>(x: &ArrayD<T>, y: &impl Factorized<T>) -> f64 {
    rel_error(x.view(), y.to_dense().view()).unwrap().as_f64()
}

/// Norms of the tails `sqrt(sum_{i >= r} sigma_i^2)` of the mode-k unfolding's singular values.
fn mode_tail(x: &ArrayD<f64>, k: usize, r: usize) -> f64 {
    let m = tnet::dense::unfold(x.view(), k).unwrap();
    let s = svd(m.view(), MatrixTruncation::exact(), false).unwrap();
    s.singular_values
        .iter()
        .skip(r)
        .map(|v| v * v)
        .sum::<f64>()
        .sqrt()
}

fn exact_recovery<T: Scalar>(shape: &[usize], ranks: &[usize], seed: u64, tol: f64) {
    let x = TuckerTensor::<T>::random(shape, ranks, seed).unwrap();
    let want = x.ranks();
    let dense = x.to_dense();
    for variant in [HosvdVariant::Sequential, HosvdVariant::Plain] {
        let opts = HosvdOptions::default()
            .with_variant(variant)
            .with_mode_ranks(want.clone());
        let (y, info) = hosvd(dense.view(), &Truncation::exact(), &opts).unwrap();
        let err = dense_err(&dense, &y);
        assert_within(
            err,
            tol,
            &format!("recovery {shape:?} ranks {want:?} {variant:?}"),
        );
        assert_within(info.rel_error_bound().as_f64(), tol, "bound");
        assert_eq!(y.ranks(), want, "{shape:?} {variant:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    /// A random Tucker tensor of known ranks, densified and decomposed at those ranks by
    /// ST-HOSVD and plain HOSVD, comes back to 1e-10 in f64 with the same ranks; with a
    /// tiny relative tolerance instead of ranks, ST-HOSVD finds the ranks itself.
    #[test]
    fn exact_recovery_f64((shape, ranks) in shape_and_ranks(1..=5, 1..=6, 4000, 4), seed in any::<u64>()) {
        exact_recovery::<f64>(&shape, &ranks, seed, 1e-10);
        let x = TuckerTensor::<f64>::random(&shape, &ranks, seed).unwrap();
        let dense = x.to_dense();
        let (y, _) = st_hosvd(dense.view(), &Truncation::rel(1e-10)).unwrap();
        prop_assert_eq!(y.ranks(), x.ranks());
        assert_within(dense_err(&dense, &y), 1e-10, "recovery at rel 1e-10");
    }

    /// The same in f32, to a precision-scaled tolerance.
    #[test]
    fn exact_recovery_f32((shape, ranks) in shape_and_ranks(1..=4, 1..=6, 2000, 3), seed in any::<u64>()) {
        let tol = 200.0 * roundoff::<f32>(shape.iter().product());
        exact_recovery::<f32>(&shape, &ranks, seed, tol);
    }

    /// Relative tolerance on random dense tensors (no structure): ||X - Y|| <= eps ||X||
    /// for both variants and every mode order; the returned bound bounds the error, and
    /// for ST-HOSVD it equals it (||X - Y||^2 = sum of the discarded parts squared).
    #[test]
    fn tolerance_guarantee((shape, order) in shape_and_order(1..=5, 1..=6, 3000), eps in 0.0f64..0.9, seed in any::<u64>()) {
        let x = random_normal::<f64>(&shape, seed);
        let slack = roundoff::<f64>(x.len());
        for variant in [HosvdVariant::Sequential, HosvdVariant::Plain] {
            let opts = HosvdOptions::default().with_variant(variant).with_order(order.clone());
            let (y, info) = hosvd(x.view(), &Truncation::rel(eps), &opts).unwrap();
            let err = dense_err(&x, &y);
            assert_within(err, eps + slack, &format!("tolerance {eps} on {shape:?} {variant:?} {order:?}"));
            assert_within(err, info.rel_error_bound() + slack, "returned bound");
            if variant == HosvdVariant::Sequential {
                prop_assert!((err - info.rel_error_bound()).abs() <= slack, "ST-HOSVD error {} != bound {}", err, info.rel_error_bound());
            }
        }
        // Absolute tolerance too.
        let a = eps * tnet::dense::norm(x.view());
        let (y, _) = st_hosvd(x.view(), &Truncation::abs(a)).unwrap();
        let abs_err = tnet::dense::norm((&x - &y.to_dense()).view());
        assert_within(abs_err, a + slack * a.max(1.0), "absolute tolerance");
    }

    /// The tolerance guarantee in f32 (to a precision-scaled slack), for ST-HOSVD, plain
    /// HOSVD, HOOI and rounding.
    #[test]
    fn tolerance_guarantee_f32(shape in shape_strategy(2..=4, 2..=6, 2000), eps in 0.01f64..0.9, seed in any::<u64>()) {
        let x = random_normal::<f32>(&shape, seed);
        let slack = 10.0 * roundoff::<f32>(x.len());
        for variant in [HosvdVariant::Sequential, HosvdVariant::Plain] {
            let opts = HosvdOptions::default().with_variant(variant);
            let (y, info) = hosvd(x.view(), &Truncation::rel(eps), &opts).unwrap();
            let err = dense_err(&x, &y);
            assert_within(err, eps + slack, &format!("f32 tolerance {eps} {shape:?} {variant:?}"));
            assert_within(err, info.rel_error_bound() as f64 + slack, "f32 bound");
            let (r, _) = y.round(&Truncation::rel(eps / 2.0)).unwrap();
            assert_within(dense_err(&y.to_dense(), &r), eps / 2.0 + slack, "f32 round");
        }
        let (h, report) = hooi(x.view(), &Truncation::rel(eps), &AlsOptions::default().with_max_iter(10)).unwrap();
        assert_within(dense_err(&x, &h), eps + slack, "f32 HOOI meets the rule");
        prop_assert!(report.errors.windows(2).all(|w| w[1] <= w[0]));
    }

    /// Fixed ranks: ||X - Y|| <= sqrt(sum_k tail_k^2) <= sqrt(d) ||X - X_best||, where
    /// tail_k is the best rank-R_k error of the mode-k unfolding (a lower bound on the best
    /// Tucker error), for both variants.
    #[test]
    fn fixed_rank_quasi_optimality((shape, ranks) in shape_and_ranks(2..=4, 2..=6, 3000, 4), seed in any::<u64>()) {
        let x = random_normal::<f64>(&shape, seed);
        let d = shape.len();
        for variant in [HosvdVariant::Sequential, HosvdVariant::Plain] {
            let opts = HosvdOptions::default().with_variant(variant).with_mode_ranks(ranks.clone());
            let (y, _) = hosvd(x.view(), &Truncation::exact(), &opts).unwrap();
            let err = tnet::dense::norm((&x - &y.to_dense()).view());
            let tails: Vec<f64> = (0..d).map(|k| mode_tail(&x, k, y.ranks()[k])).collect();
            let sum = tails.iter().map(|t| t * t).sum::<f64>().sqrt();
            let best_lower = tails.iter().cloned().fold(0.0, f64::max);
            assert_within(err, sum * (1.0 + 1e-10) + 1e-12, "err <= sqrt(sum tails^2)");
            assert_within(err, (d as f64).sqrt() * best_lower * (1.0 + 1e-10) + 1e-12, "sqrt(d) quasi-optimality");
        }
    }

    /// HOOI: the error history is non-increasing, the final error is at most the
    /// ST-HOSVD error (which meets the rule), and the reported error is the true one.
    #[test]
    fn hooi_improves_on_st_hosvd((shape, ranks) in shape_and_ranks(2..=4, 2..=6, 2000, 3), seed in any::<u64>(), noise in 0.0f64..1.0) {
        let signal = TuckerTensor::<f64>::random(&shape, &ranks, seed).unwrap().to_dense();
        let x = &signal + &(random_normal::<f64>(&shape, seed ^ 7) * noise);
        let cap = *ranks.iter().max().unwrap();
        let rule = Truncation::rank(cap);
        let (start, _) = st_hosvd(x.view(), &rule).unwrap();
        let start_err = dense_err(&x, &start);
        let (y, report) = hooi(x.view(), &rule, &AlsOptions::default().with_max_iter(30)).unwrap();
        let err = dense_err(&x, &y);
        let slack = roundoff::<f64>(x.len());
        prop_assert!(report.errors.windows(2).all(|w| w[1] <= w[0]), "history {:?}", report.errors);
        prop_assert!((report.initial_error() - start_err).abs() <= slack);
        prop_assert!((report.final_error() - err).abs() <= slack);
        assert_within(err, start_err + slack, "HOOI no worse than ST-HOSVD");
        prop_assert_eq!(y.ranks(), start.ranks());
        prop_assert_eq!(report.iterations + 1, report.errors.len());
    }

    /// Arithmetic agrees with dense computation: add, sub, scale, inner, hadamard,
    /// mode_product, norm, norm_diff, inner_dense, entry.
    #[test]
    fn arithmetic_matches_dense((shape, ranks) in shape_and_ranks(1..=4, 1..=5, 600, 3), seed in any::<u64>(), alpha in -3.0f64..3.0) {
        let x = TuckerTensor::<f64>::random(&shape, &ranks, seed).unwrap().scale(1.5);
        let y = TuckerTensor::<f64>::random(&shape, &ranks, seed ^ 1).unwrap();
        let (dx, dy) = (x.to_dense(), y.to_dense());
        let tol = 1e-12 * (1.0 + tnet::dense::norm(dx.view()) * tnet::dense::norm(dy.view()));
        let close = |a: &ArrayD<f64>, b: &TuckerTensor<f64>, what: &str| {
            let e = tnet::dense::norm((a - &b.to_dense()).view());
            assert_within(e, 1e-12 * (1.0 + tnet::dense::norm(a.view())), what);
        };
        close(&(&dx + &dy), &x.add(&y).unwrap(), "add");
        close(&(&dx - &dy), &x.sub(&y).unwrap(), "sub");
        close(&(&dx * alpha), &x.scale(alpha), "scale");
        close(&(&dx * &dy), &x.hadamard(&y).unwrap(), "hadamard");
        let inner = tnet::dense::inner(dx.view(), dy.view()).unwrap();
        assert_within((x.inner(&y).unwrap() - inner).abs(), tol, "inner");
        assert_within((x.inner_dense(dy.view()).unwrap() - inner).abs(), tol, "inner_dense");
        let n = tnet::dense::norm(dx.view());
        assert_within((x.norm() - n).abs(), 1e-12 * n, "norm");
        let nd = tnet::dense::norm((&dx - &dy).view());
        assert_within((x.norm_diff(&y).unwrap() - nd).abs(), 1e-12 * (1.0 + nd), "norm_diff");
        let k = shape.len() - 1;
        let a = random_normal::<f64>(&[3, shape[k]], seed ^ 2).into_dimensionality::<ndarray::Ix2>().unwrap();
        let want = tnet::dense::mode_product(dx.view(), a.view(), k).unwrap();
        close(&want, &x.mode_product(a.view(), k).unwrap(), "mode_product");
        let idx: Vec<usize> = shape.iter().map(|&s| (seed as usize) % s).collect();
        assert_within((x.entry(&idx).unwrap() - dx[IxDyn(&idx)]).abs(), 1e-12 * (1.0 + n), "entry");
        prop_assert_eq!(x.n_params(), shape.iter().zip(x.ranks()).map(|(n, r)| n * r).sum::<usize>() + x.ranks().iter().product::<usize>());
    }

    /// Rounding (orthogonalise, ST-HOSVD of the core) meets its tolerance against the
    /// dense truth and its own bound, without densifying; re-rounding to the same ranks
    /// changes nothing.
    #[test]
    fn round_meets_tolerance((shape, ranks) in shape_and_ranks(1..=4, 2..=5, 1500, 3), seed in any::<u64>(), eps in 0.0f64..0.8) {
        let a = TuckerTensor::<f64>::random(&shape, &ranks, seed).unwrap();
        let b = TuckerTensor::<f64>::random(&shape, &ranks, seed ^ 3).unwrap();
        let x = a.add(&b.scale(0.1)).unwrap();
        let dense = x.to_dense();
        let (y, info) = x.round(&Truncation::rel(eps)).unwrap();
        let err = dense_err(&dense, &y);
        let slack = roundoff::<f64>(dense.len());
        assert_within(err, eps + slack, "round tolerance");
        assert_within(err, info.rel_error_bound() + slack, "round bound");
        prop_assert!(y.n_params() <= x.n_params());
        let opts = HosvdOptions::default().with_mode_ranks(y.ranks());
        let (z, _) = y.round(&Truncation::exact()).unwrap();
        assert_within(rel_error(y.to_dense().view(), z.to_dense().view()).unwrap(), 1e-10, "idempotent");
        let (w, _) = hosvd(y.to_dense().view(), &Truncation::exact(), &opts).unwrap();
        assert_within(rel_error(y.to_dense().view(), w.to_dense().view()).unwrap(), 1e-10, "re-decomposition");
    }

    /// Tucker -> HT on any tree and HT -> Tucker are exact: the same tensor, and the two
    /// routes (Tucker -> HT -> Tucker, HT -> Tucker -> HT) agree.
    #[test]
    fn tucker_ht_conversions(((shape, tree), ranks) in shape_and_tree(1..=5, 1..=5, 2000).prop_flat_map(|(s, t)| { let d = s.len(); (Just((s, t)), proptest::collection::vec(1usize..=3, d)) }), seed in any::<u64>()) {
        let x = TuckerTensor::<f64>::random(&shape, &ranks, seed).unwrap();
        let dense = x.to_dense();
        let h = x.to_ht(&tree).unwrap();
        assert_within(rel_error(dense.view(), h.to_dense().view()).unwrap(), 1e-12, "Tucker -> HT");
        let back = TuckerTensor::from_ht(&h).unwrap();
        assert_within(rel_error(dense.view(), back.to_dense().view()).unwrap(), 1e-12, "Tucker -> HT -> Tucker");
        for (k, &r) in x.ranks().iter().enumerate() {
            prop_assert!(h.ranks()[tree.leaf_of(k)] <= r, "HT leaf rank above the Tucker rank");
        }
        let g = HtTensor::<f64>::random(&tree, &shape, 3, seed ^ 5).unwrap();
        let t = TuckerTensor::from_ht(&g).unwrap();
        let gd = g.to_dense();
        assert_within(rel_error(gd.view(), t.to_dense().view()).unwrap(), 1e-12, "HT -> Tucker");
        assert_within(rel_error(gd.view(), t.to_ht(&tree).unwrap().to_dense().view()).unwrap(), 1e-12, "HT -> Tucker -> HT");
    }

    /// Files: save then load gives the identical tensor (f64 and f32).
    #[test]
    fn save_load_roundtrip((shape, ranks) in shape_and_ranks(1..=4, 1..=4, 500, 3), seed in any::<u64>()) {
        let dir = std::env::temp_dir();
        let x = TuckerTensor::<f64>::random(&shape, &ranks, seed).unwrap();
        let p = dir.join(format!("tnet_tucker_rt_{seed}.json"));
        x.save(&p).unwrap();
        prop_assert_eq!(TuckerTensor::<f64>::load(&p).unwrap(), x);
        let y = TuckerTensor::<f32>::random(&shape, &ranks, seed).unwrap();
        y.save(&p).unwrap();
        prop_assert_eq!(TuckerTensor::<f32>::load(&p).unwrap(), y);
        std::fs::remove_file(&p).unwrap();
    }
}

/// HOOI strictly improves on ST-HOSVD for a noisy low-rank tensor, converges within its
/// limit, and refining its own output changes nothing; HOOI refinement from a random
/// start of the right ranks reaches the same error.
#[test]
fn hooi_converges_on_noisy_low_rank() {
    let shape = [10, 11, 12];
    let signal = TuckerTensor::<f64>::random(&shape, &[3, 3, 3], 4)
        .unwrap()
        .to_dense();
    let x = &signal + &(random_normal::<f64>(&shape, 5) * 0.05);
    let opts = AlsOptions::default().with_max_iter(200).with_tol(1e-12);
    let (y, report) = hooi(x.view(), &Truncation::rank(3), &opts).unwrap();
    assert!(report.converged, "{report:?}");
    assert!(
        report.final_error() < report.initial_error(),
        "HOOI should strictly improve here: {:?}",
        report.errors
    );
    let (z, again) = hooi_refine(x.view(), &y, &opts).unwrap();
    assert!((again.final_error() - report.final_error()).abs() < 1e-12);
    assert_eq!(z.ranks(), y.ranks());
    let random_start = TuckerTensor::<f64>::random(&shape, &[3, 3, 3], 99).unwrap();
    let (_, from_random) = hooi_refine(x.view(), &random_start, &opts).unwrap();
    assert!(
        (from_random.final_error() - report.final_error()).abs() < 1e-8,
        "{} vs {}",
        from_random.final_error(),
        report.final_error()
    );
    // Zero sweeps return the start.
    let (w, r0) = hooi(x.view(), &Truncation::rank(3), &opts.with_max_iter(0)).unwrap();
    let (s, _) = st_hosvd(x.view(), &Truncation::rank(3)).unwrap();
    assert_eq!(w, s);
    assert_eq!(r0.errors.len(), 1);
}

/// Degenerate shapes: order 1, order 2, modes of size 1, rank 1, ranks far above the
/// possible ones, and the zero tensor (no division by zero, exact zero result).
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
            for variant in [HosvdVariant::Sequential, HosvdVariant::Plain] {
                let opts = HosvdOptions::default().with_variant(variant);
                let (y, info) = hosvd(x.view(), &rule, &opts).unwrap();
                let err = dense_err(&x, &y);
                assert!(err <= info.rel_error_bound() + 1e-12, "{shape:?} {rule:?}");
                if rule != Truncation::rank(1) || shape.len() == 1 {
                    assert!(err < 1e-12, "{shape:?} {rule:?} {variant:?}: {err}");
                }
                let cap = rule.max_rank().unwrap_or(usize::MAX);
                assert!(y.ranks().iter().all(|&r| r <= cap));
                for (k, &r) in y.ranks().iter().enumerate() {
                    assert!(r <= shape[k], "rank above the mode size");
                }
            }
        }
        let (h, rep) = hooi(x.view(), &Truncation::rank(1), &AlsOptions::default()).unwrap();
        assert!(rep.final_error() <= rep.initial_error());
        assert!(h.ranks().iter().all(|&r| r == 1));
        // Ranks above the possible ones are clipped by `random`.
        let t = TuckerTensor::<f64>::random(&shape, &vec![50; shape.len()], 1).unwrap();
        assert_eq!(
            t.ranks(),
            TuckerTensor::<f64>::admissible_ranks(&shape, &vec![50; shape.len()]).unwrap()
        );
        // Zero tensor.
        let z = ArrayD::<f64>::zeros(IxDyn(&shape));
        for rule in [
            Truncation::rel(1e-3),
            Truncation::rank(2),
            Truncation::exact(),
        ] {
            let (y, info) = st_hosvd(z.view(), &rule).unwrap();
            assert_eq!(info.rel_error_bound(), 0.0);
            assert!(y.to_dense().iter().all(|&v| v == 0.0));
            assert_eq!(y.norm(), 0.0);
            let (r, rinfo) = y.round(&Truncation::rel(0.1)).unwrap();
            assert!(r.to_dense().iter().all(|&v| v == 0.0));
            assert!(rinfo.rel_error_bound().is_finite());
        }
        let (zh, zrep) = hooi(z.view(), &Truncation::rank(2), &AlsOptions::default()).unwrap();
        assert_eq!(zrep.final_error(), 0.0);
        assert!(zh.to_dense().iter().all(|&v| v == 0.0));
    }
    // admissible ranks: R_k <= prod of the others.
    assert_eq!(
        TuckerTensor::<f64>::admissible_ranks(&[2, 9, 9], &[5, 5, 5]).unwrap(),
        vec![2, 5, 5]
    );
    assert_eq!(
        TuckerTensor::<f64>::admissible_ranks(&[1, 9, 9], &[5, 5, 5]).unwrap(),
        vec![1, 5, 5]
    );
    assert_eq!(
        TuckerTensor::<f64>::admissible_ranks(&[2, 2, 9], &[5, 5, 5]).unwrap(),
        vec![2, 2, 4]
    );
}

/// Small singular values survive: a component at 1e-12 relative size gets its own rank
/// and its singular value is resolved (a Gram-based SVD would lose it below 1e-8).
#[test]
fn tiny_singular_values_are_resolved() {
    let a = TuckerTensor::<f64>::random(&[6; 4], &[1; 4], 1).unwrap();
    let b = TuckerTensor::<f64>::random(&[6; 4], &[1; 4], 2).unwrap();
    let x = a.add(&b.scale(1e-12 * a.norm() / b.norm())).unwrap();
    let (y, info) = st_hosvd(x.to_dense().view(), &Truncation::rel(1e-14)).unwrap();
    let (r, rinfo) = x.round(&Truncation::rel(1e-14)).unwrap();
    for (ranks, sv) in [
        (y.ranks(), &info.singular_values),
        (r.ranks(), &rinfo.singular_values),
    ] {
        assert_eq!(ranks, vec![2; 4]);
        // The first mode processed sees the full tensor: sigma_2 / sigma_1 ~ 1e-12.
        let ratios: Vec<f64> = sv.iter().map(|s| s[1] / s[0]).collect();
        assert!(
            ratios.iter().any(|&q| (q / 1e-12 - 1.0).abs() < 0.5),
            "{ratios:?}"
        );
    }
}

/// The automatic mode order follows the cost model: with a rank cap of 2 on `3 x 40 x 3`
/// the small modes go first (each QR costs `~ n_k` per entry); with no truncation the
/// size-3 modes cannot shrink (rank 3) while the size-40 mode drops to rank 9, so it goes
/// first. Checked by comparing with the explicit orders (bitwise equal results).
#[test]
fn auto_mode_order_follows_cost_model() {
    let x = random_normal::<f64>(&[3, 40, 3], 1);
    for (rule, order) in [
        (Truncation::rank(2), vec![0, 2, 1]),
        (Truncation::exact(), vec![1, 0, 2]),
    ] {
        let (y, _) = st_hosvd(x.view(), &rule).unwrap();
        let given = HosvdOptions::default().with_order(ModeOrder::Given(order.clone()));
        let (z, _) = hosvd(x.view(), &rule, &given).unwrap();
        assert_eq!(y, z, "{rule:?}: Auto should be {order:?}");
    }
}

/// Bad input gives clear errors: NaN/Inf, empty tensors, core/factor mismatches, zero
/// ranks, bad options and rules, shape mismatches, out-of-range indices and modes.
#[test]
fn bad_input_errors() {
    let mut x = random_normal::<f64>(&[3, 4, 5], 1);
    x[[1, 2, 3]] = f64::NAN;
    assert!(matches!(
        st_hosvd(x.view(), &Truncation::rel(0.1)),
        Err(Error::NonFinite { .. })
    ));
    x[[1, 2, 3]] = f64::INFINITY;
    assert!(matches!(
        hooi(x.view(), &Truncation::rank(2), &AlsOptions::default()),
        Err(Error::NonFinite { .. })
    ));
    let empty = ArrayD::<f64>::zeros(IxDyn(&[3, 0, 2]));
    assert!(matches!(
        st_hosvd(empty.view(), &Truncation::rel(0.1)),
        Err(Error::Empty { .. })
    ));
    let scalar = ArrayD::<f64>::zeros(IxDyn(&[]));
    assert!(matches!(
        st_hosvd(scalar.view(), &Truncation::rel(0.1)),
        Err(Error::Empty { .. })
    ));
    let good = random_normal::<f64>(&[3, 4, 5], 2);
    assert!(matches!(
        st_hosvd(good.view(), &Truncation::rel(-1.0)),
        Err(Error::InvalidParameter { .. })
    ));
    assert!(matches!(
        st_hosvd(good.view(), &Truncation::rank(0)),
        Err(Error::InvalidParameter { .. })
    ));
    for opts in [
        HosvdOptions::default().with_order(ModeOrder::Given(vec![0, 1])),
        HosvdOptions::default().with_order(ModeOrder::Given(vec![0, 1, 1])),
        HosvdOptions::default().with_order(ModeOrder::Given(vec![0, 1, 3])),
        HosvdOptions::default().with_mode_ranks(vec![1, 2]),
        HosvdOptions::default().with_mode_ranks(vec![1, 0, 2]),
    ] {
        assert!(
            matches!(
                hosvd(good.view(), &Truncation::exact(), &opts),
                Err(Error::InvalidParameter { .. })
            ),
            "{opts:?}"
        );
    }
    assert!(matches!(
        hooi(
            good.view(),
            &Truncation::rank(2),
            &AlsOptions::default().with_tol(-1.0)
        ),
        Err(Error::InvalidParameter { .. })
    ));
    // Constructor checks.
    let u = |n: usize, r: usize| Array2::<f64>::ones((n, r));
    let core = ArrayD::<f64>::ones(IxDyn(&[2, 2]));
    assert!(TuckerTensor::try_new(core.clone(), vec![u(3, 2), u(4, 2)]).is_ok());
    assert!(matches!(
        TuckerTensor::try_new(core.clone(), vec![u(3, 2), u(4, 3)]),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        TuckerTensor::try_new(core.clone(), vec![u(3, 2)]),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        TuckerTensor::try_new(core.clone(), vec![]),
        Err(Error::Empty { .. })
    ));
    assert!(matches!(
        TuckerTensor::try_new(core.clone(), vec![u(0, 2), u(4, 2)]),
        Err(Error::Empty { .. })
    ));
    assert!(matches!(
        TuckerTensor::try_new(ArrayD::ones(IxDyn(&[2, 0])), vec![u(3, 2), u(4, 0)]),
        Err(Error::InvalidRank { .. })
    ));
    let mut bad = u(4, 2);
    bad[[3, 1]] = f64::NAN;
    assert!(matches!(
        TuckerTensor::try_new(core.clone(), vec![u(3, 2), bad]),
        Err(Error::NonFinite { index, .. }) if index == 4 + 6 + 7
    ));
    let mut bad_core = core.clone();
    bad_core[[1, 0]] = f64::NEG_INFINITY;
    assert!(matches!(
        TuckerTensor::try_new(bad_core, vec![u(3, 2), u(4, 2)]),
        Err(Error::NonFinite { index: 2, .. })
    ));
    assert!(matches!(
        TuckerTensor::<f64>::random(&[3, 4], &[1], 0),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        TuckerTensor::<f64>::random(&[3, 4], &[1, 0], 0),
        Err(Error::InvalidParameter { .. })
    ));
    assert!(matches!(
        TuckerTensor::<f64>::random(&[3, 0], &[1, 1], 0),
        Err(Error::Empty { .. })
    ));
    // Operations.
    let a = TuckerTensor::<f64>::random(&[3, 4, 5], &[2, 2, 2], 0).unwrap();
    let b = TuckerTensor::<f64>::random(&[3, 4, 6], &[2, 2, 2], 0).unwrap();
    assert!(matches!(a.add(&b), Err(Error::ShapeMismatch { .. })));
    assert!(matches!(a.inner(&b), Err(Error::ShapeMismatch { .. })));
    assert!(matches!(a.hadamard(&b), Err(Error::ShapeMismatch { .. })));
    assert!(matches!(
        a.inner_dense(random_normal::<f64>(&[3, 4], 0).view()),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        a.entry(&[0, 4, 0]),
        Err(Error::IndexOutOfBounds { .. })
    ));
    assert!(matches!(
        a.entry(&[0, 0]),
        Err(Error::IndexOutOfBounds { .. })
    ));
    assert!(matches!(
        a.mode_product(u(2, 4).view(), 3),
        Err(Error::InvalidMode { .. })
    ));
    assert!(matches!(
        a.mode_product(u(2, 5).view(), 1),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        a.mode_product(u(0, 4).view(), 1),
        Err(Error::Empty { .. })
    ));
    assert!(matches!(
        a.to_ht(&DimTree::balanced(4).unwrap()),
        Err(Error::InvalidTree { .. })
    ));
    assert!(matches!(
        hooi_refine(good.view(), &b, &AlsOptions::default()),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        a.round(&Truncation::rel(f64::NAN)),
        Err(Error::InvalidParameter { .. })
    ));
}

/// Corrupt, truncated, tampered, wrong-version and wrong-dtype files give errors, never
/// an invalid tensor.
#[test]
fn corrupt_files_are_rejected() {
    let dir = std::env::temp_dir();
    let p = dir.join("tnet_tucker_corrupt.json");
    let x = TuckerTensor::<f64>::random(&[3, 4, 5], &[2, 3, 2], 9).unwrap();
    x.save(&p).unwrap();
    let text = std::fs::read_to_string(&p).unwrap();
    let load = |s: &str| {
        std::fs::write(&p, s).unwrap();
        TuckerTensor::<f64>::load(&p)
    };
    assert!(matches!(
        load(&text[..text.len() / 2]),
        Err(Error::Corrupt { path: Some(_), .. })
    ));
    assert!(matches!(load(""), Err(Error::Corrupt { .. })));
    assert!(matches!(
        load(&text.replace("\"version\":1", "\"version\":7")),
        Err(Error::Version { found: 7, .. })
    ));
    assert!(matches!(
        load(&text.replace("tnet-tucker", "tnet-ht")),
        Err(Error::Corrupt { .. })
    ));
    assert!(matches!(
        load(&text.replace("\"dtype\":\"f64\"", "\"dtype\":\"f32\"")),
        Err(Error::Corrupt { .. })
    ));
    assert!(matches!(
        load(&text.replace("\"shape\":[3,4,5]", "\"shape\":[3,4,6]")),
        Err(Error::Corrupt { .. })
    ));
    // Core of the wrong size for the factors: change the core's declared dims.
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut w = v.clone();
    w["core"]["dim"] = serde_json::json!([2, 3]);
    w["core"]["data"] = serde_json::json!([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    assert!(matches!(
        load(&w.to_string()),
        Err(Error::ShapeMismatch { .. })
    ));
    // Data length disagreeing with dims (caught by the ndarray deserializer).
    let mut w = v.clone();
    w["core"]["data"] = serde_json::json!([1.0]);
    assert!(matches!(load(&w.to_string()), Err(Error::Corrupt { .. })));
    // A NaN smuggled in as a huge number parses as inf in JSON? Use null instead.
    let mut w = v.clone();
    w["factors"][0]["data"][0] = serde_json::Value::Null;
    assert!(load(&w.to_string()).is_err());
    let mut w = v;
    w["factors"] = serde_json::json!([]);
    assert!(matches!(load(&w.to_string()), Err(Error::Empty { .. })));
    std::fs::remove_file(&p).unwrap();
    assert!(matches!(
        TuckerTensor::<f64>::load(dir.join("tnet_no_such_file.json")),
        Err(Error::Io { .. })
    ));
}
