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
use tnet::algorithms::bt_als::bt_als_refine;
use tnet::algorithms::hooi::AlsOptions;
use tnet::dense::{norm, random_normal};
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
