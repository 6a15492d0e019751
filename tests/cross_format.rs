//! Properties across formats: every format meets the same relative tolerance on the same
//! tensor, and the conversions between formats (Tucker -> block-term, Tucker -> HT on the
//! linear tree -> TT -> TR -> TT) keep the tensor.
//!
//! Already covered elsewhere and not repeated here: TT <-> HT on the linear tree gives the
//! same tensor (`tests/tt.rs`, `tt_ht_conversions`) and TT-SVD and HT-SVD on the linear
//! tree agree in ranks, singular values and error (`tt_svd_and_ht_svd_on_linear_tree_agree`);
//! block-term with one block equals ST-HOSVD without sweeps and reaches the HOOI error
//! with them (`tests/bt.rs`, `one_block_equals_tucker`).
mod common;

use common::{assert_within, roundoff};
use ndarray::ArrayD;
use proptest::prelude::*;
use tnet::dense::{norm, random_normal};
use tnet::formats::AlsOptions;
use tnet::formats::bt::bt_als_refine;
use tnet::{
    BtTensor, DimTree, Factorized, HtTensor, Scalar, TrTensor, Truncation, TtTensor, TuckerTensor,
};

/// Shapes of order 2 to 5 with sizes 2 to 6, at most 2000 entries.
fn small_shape() -> impl Strategy<Value = Vec<usize>> {
    (2usize..=5)
        .prop_flat_map(|d| proptest::collection::vec(2usize..=6, d))
        .prop_filter("small enough to densify", |s| {
            s.iter().product::<usize>() <= 2000
        })
}

/// `‖X − Y‖_F` measured on the dense tensors, in f64.
fn dense_err<T: Scalar>(x: &ArrayD<T>, y: &impl Factorized<T>) -> f64 {
    norm((x - &y.to_dense()).view()).as_f64()
}

/// Decomposes `x` at relative tolerance `eps` in every format (block-term: ALS from the
/// ST-HOSVD result plus a zero block) and asserts each measured error is at most
/// `eps ‖X‖ (1 + 1e-10)` plus round-off of precision `T`.
fn every_format_meets<T: Scalar>(x: &ArrayD<T>, eps: f64, tree: &DimTree) {
    let rule = Truncation::rel(eps);
    let nx = norm(x.view()).as_f64();
    let bound = eps * nx * (1.0 + 1e-10) + roundoff::<T>(x.len()) * nx;
    let (ht, _) = HtTensor::from_dense(x.view(), tree, &rule).unwrap();
    assert_within(dense_err(x, &ht), bound, "HT-SVD");
    let (tt, _) = TtTensor::from_dense(x.view(), &rule).unwrap();
    assert_within(dense_err(x, &tt), bound, "TT-SVD");
    let (tr, _) = TrTensor::from_dense(x.view(), &rule).unwrap();
    assert_within(dense_err(x, &tr), bound, "TR-SVD");
    let (tucker, _) = TuckerTensor::from_dense(x.view(), &rule).unwrap();
    assert_within(dense_err(x, &tucker), bound, "ST-HOSVD");
    // ALS started from the ST-HOSVD result plus a zero second block never increases the
    // error, so it inherits the tolerance.
    let zero = BtTensor::<T>::random(x.shape(), &tucker.ranks(), 1, 0)
        .unwrap()
        .scale(T::zero());
    let init = BtTensor::from_tucker(tucker).add(&zero).unwrap();
    let opts = AlsOptions::default().with_max_iter(3);
    let (bt, _) = bt_als_refine(x.view(), &init, &opts).unwrap();
    assert_eq!(bt.n_blocks(), 2);
    assert_within(dense_err(x, &bt), bound, "BT-ALS");
}

/// `‖X − Y‖_F / s` and `‖X‖_F / s` measured in f64 on entries divided by `s` first, so
/// neither overflows nor underflows at any scale of `X`.
fn scaled_errors<T: Scalar>(x: &ArrayD<T>, y: &impl Factorized<T>, s: f64) -> (f64, f64) {
    let y = y.to_dense();
    let (mut e, mut n) = (0.0f64, 0.0f64);
    for (a, b) in x.iter().zip(y.iter()) {
        let (a, b) = (a.as_f64() / s, b.as_f64() / s);
        e += (a - b) * (a - b);
        n += a * a;
    }
    (e.sqrt(), n.sqrt())
}

/// [`every_format_meets`] for a tensor of scale `s` (entries near overflow or in the
/// subnormal range), with the errors measured on the rescaled entries.
fn every_format_meets_at_scale<T: Scalar>(x: &ArrayD<T>, eps: f64, s: f64, what: &str) {
    let rule = Truncation::rel(eps);
    let tree = DimTree::balanced(x.ndim()).unwrap();
    let check = |name: &str, y: &dyn Fn() -> (f64, f64)| {
        let (e, n) = y();
        let bound = eps * n * (1.0 + 1e-10) + roundoff::<T>(x.len()) * n;
        assert!(e <= bound, "{name} at {what}: error {e:e} > {bound:e}");
    };
    let (ht, _) = HtTensor::from_dense(x.view(), &tree, &rule).unwrap();
    check("HT-SVD", &|| scaled_errors(x, &ht, s));
    let (tt, _) = TtTensor::from_dense(x.view(), &rule).unwrap();
    check("TT-SVD", &|| scaled_errors(x, &tt, s));
    let (tr, _) = TrTensor::from_dense(x.view(), &rule).unwrap();
    check("TR-SVD", &|| scaled_errors(x, &tr, s));
    let (tucker, _) = TuckerTensor::from_dense(x.view(), &rule).unwrap();
    check("ST-HOSVD", &|| scaled_errors(x, &tucker, s));
    let init = BtTensor::from_tucker(tucker.clone());
    let (bt, _) = bt_als_refine(x.view(), &init, &AlsOptions::default().with_max_iter(3)).unwrap();
    check("BT-ALS", &|| scaled_errors(x, &bt, s));
    let (bt, _) =
        tnet::formats::bt::bt_als(x.view(), 2, &[2; 3], 1, &AlsOptions::default()).unwrap();
    let (e, n) = scaled_errors(x, &bt, s);
    assert!(
        e.is_finite() && e <= n,
        "BT-ALS from scratch at {what}: {e:e} of {n:e}"
    );
}

/// Entries near the top of the range (1e300, 1e200 in f64, 1e19 in f32) or in the
/// subnormal range (1e-310 in f64, 1e-40 in f32) are decomposed by every format within
/// the tolerance: the SVDs, the streaming QR and the least-squares solves work on
/// rescaled data (they reported `NoConvergence`, or a success with errors near 1, before).
#[test]
fn every_format_meets_the_tolerance_at_extreme_scales() {
    for (k, s) in [1e300, 1e200, 1e-300, 1e-310].into_iter().enumerate() {
        let x = random_normal::<f64>(&[6, 5, 4], k as u64).mapv(|v| v * s);
        every_format_meets_at_scale(&x, 1e-2, s, &format!("f64 x {s:e}"));
    }
    for (k, s) in [1e19f32, 1e-40].into_iter().enumerate() {
        let x = random_normal::<f32>(&[6, 5, 4], 10 + k as u64).mapv(|v| v * s);
        every_format_meets_at_scale(&x, 1e-2, s as f64, &format!("f32 x {s:e}"));
    }
}

/// Entries deeper in the subnormal range (f32 near 1e-44, f64 near 1e-320: fewer than
/// half the significand's bits) cannot be held to any bound; every format refuses them
/// with the way out, where it reported errors of 0.3-0.5 as a success before.
#[test]
fn every_format_refuses_tensors_deep_in_the_subnormal_range() {
    fn refused<T: Scalar>(x: &ArrayD<T>, what: &str) {
        let rule = Truncation::rel(1e-2);
        let tree = DimTree::balanced(x.ndim()).unwrap();
        let results: [(&str, Result<(), tnet::Error>); 5] = [
            (
                "ht",
                HtTensor::from_dense(x.view(), &tree, &rule).map(|_| ()),
            ),
            ("tt", TtTensor::from_dense(x.view(), &rule).map(|_| ())),
            ("tr", TrTensor::from_dense(x.view(), &rule).map(|_| ())),
            (
                "tucker",
                TuckerTensor::from_dense(x.view(), &rule).map(|_| ()),
            ),
            (
                "bt",
                tnet::formats::bt::bt_als(x.view(), 2, &[2; 3], 1, &AlsOptions::default())
                    .map(|_| ()),
            ),
        ];
        for (format, r) in results {
            match r {
                Err(tnet::Error::InvalidParameter {
                    name: "tensor",
                    reason,
                }) => {
                    assert!(
                        reason.contains("subnormal") && reason.contains("power of two"),
                        "{reason}"
                    )
                }
                other => panic!("{format} at {what}: {other:?}"),
            }
        }
    }
    refused(
        &random_normal::<f32>(&[6, 5, 4], 1).mapv(|v| v * 1e-44),
        "f32 x 1e-44",
    );
    refused(
        &random_normal::<f64>(&[6, 5, 4], 2).mapv(|v| v * 1e-320),
        "f64 x 1e-320",
    );
    // The same tensors scaled by a power of two (exact) decompose within the tolerance.
    let x = random_normal::<f32>(&[6, 5, 4], 1).mapv(|v| v * 1e-44 * 2f32.powi(100));
    let (y, _) = TtTensor::from_dense(x.view(), &Truncation::rel(1e-2)).unwrap();
    let e = tnet::dense::rel_error(x.view(), y.to_dense().view()).unwrap();
    assert!(e <= 1e-2, "{e}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    /// The same random tensor decomposed by HT, TT, TR, Tucker and block-term at the same
    /// relative tolerance meets it in every format (measured dense error, f64).
    #[test]
    fn every_format_meets_the_tolerance_f64(shape in small_shape(), eps in 1e-3f64..0.9, seed in any::<u64>()) {
        let x = random_normal::<f64>(&shape, seed);
        every_format_meets(&x, eps, &DimTree::balanced(shape.len()).unwrap());
    }

    /// The same in f32, on a random tensor of low TT rank plus noise (so that the
    /// tolerance actually cuts ranks) and on the linear tree.
    #[test]
    fn every_format_meets_the_tolerance_f32(shape in small_shape(), eps in 1e-2f64..0.9, seed in any::<u64>()) {
        let low = TtTensor::<f32>::random(&shape, 2, seed).unwrap().to_dense();
        let noise = random_normal::<f32>(&shape, seed ^ 1);
        let scale = 0.05 * norm(low.view()) / norm(noise.view());
        let x = &low + &(&noise * scale);
        every_format_meets(&x, eps, &DimTree::linear(shape.len()).unwrap());
    }

    /// A random Tucker tensor is the same tensor as a one-block block-term tensor, as an
    /// HT tensor on the linear tree, as the TT converted from that HT, as the TR with the
    /// TT's cores and as the TT converted back from that TR; the block-term and TT
    /// parameter counts are those of their parts.
    #[test]
    fn conversions_keep_the_tensor(shape in small_shape(), rank in 1usize..=3, seed in any::<u64>()) {
        let d = shape.len();
        let tucker = TuckerTensor::<f64>::random(&shape, &vec![rank; d], seed).unwrap();
        let x = tucker.to_dense();
        let tol = roundoff::<f64>(x.len()) * norm(x.view());
        let bt = BtTensor::from_tucker(tucker.clone());
        prop_assert_eq!(bt.n_params(), tucker.n_params());
        assert_within(dense_err(&x, &bt), tol, "Tucker -> BT");
        let ht = tucker.to_ht(&DimTree::linear(d).unwrap()).unwrap();
        assert_within(dense_err(&x, &ht), tol, "Tucker -> HT");
        let tt = TtTensor::from_ht(&ht).unwrap();
        assert_within(dense_err(&x, &tt), tol, "HT -> TT");
        let tr = TrTensor::from_tt(&tt);
        prop_assert_eq!(tr.n_params(), tt.n_params());
        assert_within(dense_err(&x, &tr), tol, "TT -> TR");
        assert_within(dense_err(&x, &tr.to_tt()), tol, "TR -> TT");
    }
}

/// Every format's `distance` (slab by slab, never dense) equals `‖X − Y‖` measured on the
/// dense tensors, and each slab of `fix_leading` is the slice of the dense tensor.
fn distance_matches_dense<T: Scalar>(x: &ArrayD<T>, y: &(impl Factorized<T> + Sync), tol: f64) {
    let dense = y.to_dense();
    let expect = dense_err(x, y);
    let got = y.distance(x.view()).unwrap().as_f64();
    assert!(
        (got - expect).abs() <= tol * expect.max(norm(x.view()).as_f64()),
        "distance {got} against dense {expect}"
    );
    let index: Vec<usize> = x.shape()[..x.ndim() - 1].iter().map(|&n| n - 1).collect();
    let slab = y.fix_leading(&index).unwrap().to_dense();
    let mut want = dense.view();
    for &i in &index {
        want.index_axis_inplace(ndarray::Axis(0), i);
    }
    assert_eq!(slab.len(), want.len());
    for (a, b) in slab.iter().zip(want.iter()) {
        assert!((a.as_f64() - b.as_f64()).abs() <= tol * (1.0 + b.as_f64().abs()));
    }
}

/// Every format's decomposition of `x` at rank 3 (BT: 2 blocks of rank 2).
fn check_distance_every_format<T: Scalar>(x: &ArrayD<T>, tol: f64) {
    let rule = Truncation::rank(3);
    let tree = DimTree::balanced(x.ndim()).unwrap();
    distance_matches_dense(
        x,
        &HtTensor::from_dense(x.view(), &tree, &rule).unwrap().0,
        tol,
    );
    distance_matches_dense(x, &TtTensor::from_dense(x.view(), &rule).unwrap().0, tol);
    distance_matches_dense(x, &TrTensor::from_dense(x.view(), &rule).unwrap().0, tol);
    let tucker = TuckerTensor::from_dense(x.view(), &rule).unwrap().0;
    distance_matches_dense(x, &tucker, tol);
    let bt = BtTensor::<T>::random(x.shape(), &vec![2; x.ndim()], 2, 7).unwrap();
    distance_matches_dense(x, &bt, tol);
}

/// A tensor of 151,200 entries is measured in ten slabs (mode 0 fixed); the result is the
/// dense difference's norm, in both precisions.
#[test]
fn distance_over_many_slabs_matches_dense() {
    let x = random_normal::<f64>(&[10, 9, 8, 7, 6, 5], 3);
    check_distance_every_format(&x, 1e-12);
    let x = random_normal::<f32>(&[10, 9, 8, 7, 6, 5], 4);
    check_distance_every_format(&x, 1e-5);
}

/// At the ends of the `f64` range the distance neither overflows nor underflows.
#[test]
fn distance_at_extreme_scales() {
    for s in [1e300, 1e-300] {
        let x = random_normal::<f64>(&[6, 5, 4, 3], 5).mapv(|v| v * s);
        let (y, _) = TtTensor::from_dense(x.view(), &Truncation::rank(2)).unwrap();
        let (e, _) = scaled_errors(&x, &y, s);
        let d = y.distance(x.view()).unwrap() / s;
        assert!(
            d.is_finite() && (d - e).abs() <= 1e-10 * e,
            "scale {s}: {d} against {e}"
        );
    }
}

#[test]
fn fix_leading_rejects_bad_indices() {
    let y = TtTensor::<f64>::random(&[3, 4, 5], 2, 1).unwrap();
    assert!(y.fix_leading(&[3]).is_err());
    assert!(y.fix_leading(&[0, 0, 0, 0]).is_err());
    assert_eq!(y.fix_leading(&[]).unwrap(), y);
    let x = random_normal::<f64>(&[3, 4], 1);
    assert!(y.distance(x.view()).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// `distance` and `fix_leading` agree with the dense tensors for every format on
    /// small random tensors.
    #[test]
    fn distance_matches_dense_on_small_tensors(shape in small_shape(), seed in any::<u64>()) {
        let x = random_normal::<f64>(&shape, seed);
        check_distance_every_format(&x, 1e-12);
    }
}
