//! Error bounds under adversarial inputs: repeated and clustered singular values (ties at
//! every truncation point), tensors at scales from 1e-300 to 1e300, and rank-deficient
//! tensors with exact zeros.
mod common;

use common::{assert_within, roundoff, tree_strategy};
use ndarray::{Array2, ArrayD, IxDyn};
use proptest::prelude::*;
use tnet::dense::{random_orthonormal, rel_error, rng};
use tnet::formats::ht::orthogonalize;
use tnet::formats::ht::{Sweep, ht_svd};
use tnet::{DimTree, Factorized, HtTensor, Scalar, Truncation, TruncationInfo};

fn nrm<T: Scalar>(x: &ArrayD<T>) -> f64 {
    tnet::dense::norm(x.view()).as_f64()
}

/// `X = sum_i s_i ⊗_k Q_k[:, i]` with random orthonormal `Q_k` (`n x n`): every
/// matricization has exactly the singular values `s` (the tensor is orthogonally
/// decomposable), so repeated values in `s` put ties at every node's cut.
fn odeco<T: Scalar>(d: usize, n: usize, s: &[f64], seed: u64) -> ArrayD<T> {
    let mut g = rng(seed);
    let q: Vec<Array2<f64>> = (0..d).map(|_| random_orthonormal(n, n, &mut g)).collect();
    ArrayD::from_shape_fn(IxDyn(&vec![n; d]), |idx| {
        let v: f64 = s
            .iter()
            .enumerate()
            .map(|(i, &si)| si * (0..d).map(|k| q[k][[idx[k], i]]).product::<f64>())
            .sum();
        T::cast(v)
    })
}

/// Checks `‖X − Y‖ ≤ info.error_bound`, `≤ eps‖X‖` for a relative rule without a rank cap
/// (a binding cap overrides the tolerance, as documented), and the rank cap.
fn check_result<T: Scalar>(
    x: &ArrayD<T>,
    y: &HtTensor<T>,
    info: &TruncationInfo<T>,
    rule: &Truncation,
    what: &str,
) {
    let err = nrm(&(x - &y.to_dense()));
    let nx = nrm(x);
    let slack = roundoff::<T>(x.len()) * nx;
    assert_within(
        err,
        info.error_bound.as_f64() * (1.0 + 1e-6) + slack,
        &format!("{what}: returned bound"),
    );
    if let (Some(eps), None) = (rule.rel_eps(), rule.max_rank()) {
        assert_within(err, eps * nx + slack, &format!("{what}: tolerance"));
    }
    if let Some(r) = rule.max_rank() {
        assert!(y.max_rank() <= r, "{what}: rank {} > {r}", y.max_rank());
    }
}

fn all_methods<T: Scalar>(
    x: &ArrayD<T>,
    tree: &DimTree,
    rule: &Truncation,
    what: &str,
) -> Vec<(HtTensor<T>, TruncationInfo<T>)> {
    let mut out = Vec::new();
    for sweep in [Sweep::LeavesToRoot, Sweep::RootToLeaves] {
        let (y, info) = ht_svd(x.view(), tree, rule, sweep).unwrap();
        check_result(x, &y, &info, rule, &format!("{what} {sweep:?}"));
        out.push((y, info));
    }
    let (exact, _) = HtTensor::from_dense(x.view(), tree, &Truncation::exact()).unwrap();
    let (y, info) = exact.truncate(rule).unwrap();
    check_result(x, &y, &info, rule, &format!("{what} truncate"));
    out.push((y, info));
    out
}

/// Matrices (d = 2) with a cluster of equal singular values straddling the cut: the
/// HT-SVD of a matrix is its truncated SVD, so every method must reach the best error
/// exactly, whichever basis of the cluster it picks for the one child, provided the other
/// child follows it.
#[test]
fn tie_at_the_cut_of_a_matrix() {
    let tree = DimTree::balanced(2).unwrap();
    for seed in 0..12 {
        let n = 6;
        let s = [3.0, 1.0, 1.0, 1.0, 1.0, 0.5];
        let x = odeco::<f64>(2, n, &s, seed);
        for r in 1..n {
            let rule = Truncation::rank(r);
            let best: f64 = s[r..].iter().map(|v| v * v).sum::<f64>().sqrt();
            for (y, info) in all_methods(&x, &tree, &rule, &format!("seed {seed} rank {r}")) {
                let err = nrm(&(&x - &y.to_dense()));
                assert_within(
                    (err - best).abs(),
                    1e-12,
                    &format!("seed {seed} rank {r}: optimal error"),
                );
                assert_within((info.error_bound - best).abs(), 1e-12, "bound = best error");
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    /// Orthogonally decomposable tensors whose matricizations all have a repeated singular
    /// value: every node's cut falls in a tie, on random trees, for rank and tolerance
    /// rules (f64).
    #[test]
    fn ties_at_every_node(tree in (2usize..=4).prop_flat_map(tree_strategy), r in 1usize..4, eps in 0.05f64..0.9, seed in any::<u64>()) {
        let d = tree.order();
        let n = 4;
        let x = odeco::<f64>(d, n, &[2.0, 1.0, 1.0, 1.0], seed);
        for rule in [Truncation::rank(r), Truncation::rel(eps), Truncation::rank(r).with_rel_eps(eps)] {
            let ctx = format!("{tree} {rule:?}");
            for (y, _) in all_methods(&x, &tree, &rule, &ctx) {
                if rule.rel_eps().is_none() {
                    // Every node's best rank-r tail is the same: sqrt(sum_{i >= r} s_i^2).
                    let tail = (n - r) as f64; // the trailing values are all 1
                    let err = nrm(&(&x - &y.to_dense()));
                    assert_within(err, ((2 * d - 3) as f64 * tail).sqrt() * (1.0 + 1e-10), &format!("{ctx}: quasi-optimality"));
                }
            }
        }
    }

    /// Clustered (not equal) singular values 1, 1 + 1e-13, 1 + 2e-13, ...: the same
    /// bounds (f64).
    #[test]
    fn clustered_singular_values(tree in (2usize..=4).prop_flat_map(tree_strategy), r in 1usize..4, eps in 0.05f64..0.9, seed in any::<u64>()) {
        let s: Vec<f64> = (0..4).map(|i| 1.0 + 1e-13 * i as f64).rev().collect();
        let x = odeco::<f64>(tree.order(), 4, &s, seed);
        for rule in [Truncation::rank(r), Truncation::rel(eps)] {
            all_methods(&x, &tree, &rule, &format!("clustered {tree} {rule:?}"));
        }
    }

    /// The tie checks in f32.
    #[test]
    fn ties_f32(tree in (2usize..=4).prop_flat_map(tree_strategy), r in 1usize..4, eps in 0.05f64..0.9, seed in any::<u64>()) {
        let x = odeco::<f32>(tree.order(), 4, &[2.0, 1.0, 1.0, 1.0], seed);
        for rule in [Truncation::rank(r), Truncation::rel(eps)] {
            all_methods(&x, &tree, &rule, &format!("f32 {tree} {rule:?}"));
        }
    }
}

/// The same low-rank tensor at scales 1e-300 .. 1e300 (f64) and 1e-35 .. 1e35 (f32):
/// ranks, relative errors and relative bounds do not depend on the scale, and norms,
/// truncation, orthogonalisation and norm_diff neither overflow nor underflow.
fn scale_invariance<T: Scalar>(exponents: &[i32]) {
    let tree: DimTree = "((0,1),(2,(3,4)))".parse().unwrap();
    let shape = [3, 4, 3, 2, 4];
    let a = HtTensor::<T>::random(&tree, &shape, 2, 1).unwrap();
    let b = HtTensor::<T>::random(&tree, &shape, 2, 2).unwrap();
    let base = a.add(&b.scale(T::cast(0.01))).unwrap().to_dense(); // ranks 4, decaying
    // With no tolerance the ranks count round-off-level singular values, whose rounding
    // differs between scales: only the errors are compared for those rules.
    let rules = [
        Truncation::exact(),
        Truncation::rel(1e-3),
        Truncation::rank(3),
        Truncation::rel(0.0),
    ];
    let ranks_comparable =
        |rule: &Truncation| rule.max_rank().is_some() || rule.rel_eps() > Some(0.0);
    let sweeps = [Sweep::LeavesToRoot, Sweep::RootToLeaves];
    // Per rule and sweep: the ranks and relative bound at scale 1.
    let reference: Vec<Vec<(Vec<usize>, f64)>> = rules
        .iter()
        .map(|rule| {
            sweeps
                .iter()
                .map(|&sweep| {
                    let (y, info) = ht_svd(base.view(), &tree, rule, sweep).unwrap();
                    (y.ranks(), info.rel_error_bound().as_f64())
                })
                .collect()
        })
        .collect();
    let tol = roundoff::<T>(base.len());
    for &e in exponents {
        let c = T::cast(10f64.powi(e));
        let x = base.mapv(|v| v * c);
        let nx = nrm(&x);
        assert!(nx.is_finite() && nx > 0.0, "1e{e}: dense norm {nx:e}");
        for (rule, refs) in rules.iter().zip(&reference) {
            let ctx = format!("{} at 1e{e} {rule:?}", T::NAME);
            for (&sweep, (ranks, bound)) in sweeps.iter().zip(refs) {
                let (y, info) = ht_svd(x.view(), &tree, rule, sweep).unwrap();
                if ranks_comparable(rule) {
                    assert_eq!(&y.ranks(), ranks, "{ctx} {sweep:?}: ranks");
                }
                let err = rel_error(x.view(), y.to_dense().view()).unwrap().as_f64();
                assert_within(err, bound + tol, &format!("{ctx} {sweep:?}: error"));
                assert_within(
                    (info.rel_error_bound().as_f64() - bound).abs(),
                    tol,
                    &format!("{ctx}: relative bound"),
                );
                assert!(info.error_bound.is_finite());
                let ny = nrm(&y.to_dense());
                assert_within(
                    (y.norm().as_f64() / ny - 1.0).abs(),
                    tol,
                    &format!("{ctx}: HT norm"),
                );
                let (z, zinfo) = y.truncate(rule).unwrap();
                if ranks_comparable(rule) {
                    assert_eq!(&z.ranks(), ranks, "{ctx}: truncate ranks");
                }
                assert_within(
                    rel_error(x.view(), z.to_dense().view()).unwrap().as_f64(),
                    2.0 * bound + tol,
                    &format!("{ctx}: truncate error"),
                );
                assert!(zinfo.error_bound.is_finite());
                let o = orthogonalize(&y);
                assert_within(
                    rel_error(x.view(), o.to_dense().view()).unwrap().as_f64(),
                    bound + tol,
                    &format!("{ctx}: orthogonalize"),
                );
                assert_within(
                    y.norm_diff(&o).unwrap().as_f64() / nx,
                    tol,
                    &format!("{ctx}: norm_diff"),
                );
            }
        }
    }
}

/// Scale invariance in f64, from 1e-300 to 1e300.
#[test]
fn scales_1e_minus_300_to_1e300_f64() {
    scale_invariance::<f64>(&[-300, -250, -200, -160, -100, 0, 100, 160, 200, 250, 300]);
}

/// Scale invariance in f32, from 1e-35 to 1e35.
#[test]
fn scales_f32() {
    scale_invariance::<f32>(&[-35, -25, -15, 0, 15, 25, 35]);
}

/// One tensor mixing magnitudes from 1e-300 to 1e300 (a rank-1 tensor with such entries,
/// plus a 1e-300 component): the norm does not overflow, the decomposition meets its
/// normwise bounds, and the exact rank is found.
#[test]
fn magnitudes_spanning_the_range_in_one_tensor() {
    let tree = DimTree::balanced(3).unwrap();
    let a = ndarray::array![1e100_f64, 1.0, 1e-100];
    let x = ArrayD::from_shape_fn(IxDyn(&[3, 3, 3]), |i| a[i[0]] * a[i[1]] * a[i[2]]);
    assert_eq!(x[[0, 0, 0]], 1e300);
    assert_eq!(x[[2, 2, 2]], 1e-300);
    for sweep in [Sweep::LeavesToRoot, Sweep::RootToLeaves] {
        let (y, info) = ht_svd(x.view(), &tree, &Truncation::rel(1e-12), sweep).unwrap();
        assert!(
            y.ranks().iter().all(|&k| k == 1),
            "{sweep:?}: {:?}",
            y.ranks()
        );
        let err = rel_error(x.view(), y.to_dense().view()).unwrap();
        assert!(
            err <= 1e-15 && info.error_bound.is_finite(),
            "{sweep:?}: {err:e}"
        );
        assert!((y.norm() / 1e300 - 1.0).abs() < 1e-15);
        assert!((y.entry(&[0, 0, 0]).unwrap() / 1e300 - 1.0).abs() < 1e-15);
    }
    // A huge tensor plus a tiny one: the tiny part is below round-off of the norm.
    let big = HtTensor::<f64>::random(&tree, &[3, 4, 5], 2, 1)
        .unwrap()
        .scale(1e300);
    let tiny = HtTensor::<f64>::random(&tree, &[3, 4, 5], 2, 2)
        .unwrap()
        .scale(1e-300);
    let s = big.add(&tiny).unwrap();
    assert!((s.norm() / big.norm() - 1.0).abs() < 1e-14);
    assert!(s.norm_diff(&big).unwrap() <= 1e-14 * big.norm());
    let (t, info) = s.truncate(&Truncation::rel(1e-10)).unwrap();
    assert_eq!(t.ranks(), big.ranks());
    assert!(info.error_bound <= 1e-10 * big.norm());
    // The tiny tensor alone keeps its accuracy.
    assert!((tiny.norm() / nrm(&tiny.to_dense()) - 1.0).abs() < 1e-14);
    assert!(tiny.norm_diff(&tiny.scale(1.0 + 1e-6)).unwrap() / (1e-6 * tiny.norm()) - 1.0 < 1e-6);
}

/// Rank-deficient tensors with exact zeros: zero slices, a single non-zero entry, an HT
/// tensor with a zero column in a leaf basis. Exact zeros are dropped, the ranks found
/// are the true ones, and the reconstruction is exact.
#[test]
fn exact_zeros_and_rank_deficiency() {
    let tree: DimTree = "((0,1),(2,3))".parse().unwrap();
    // Zero slices: modes 0 and 2 have rank 2 and 1.
    let mut x = tnet::dense::random_normal::<f64>(&[4, 5, 3, 4], 3);
    for (i, mut slab) in x.outer_iter_mut().enumerate() {
        if i >= 2 {
            slab.fill(0.0);
        }
    }
    for mut v in x.lanes_mut(ndarray::Axis(2)) {
        let keep = v[0];
        v.fill(0.0);
        v[1] = keep;
    }
    let leaf0 = tree.leaf_of(0);
    let leaf2 = tree.leaf_of(2);
    for sweep in [Sweep::LeavesToRoot, Sweep::RootToLeaves] {
        let (y, info) = ht_svd(x.view(), &tree, &Truncation::exact(), sweep).unwrap();
        assert!(
            y.ranks()[leaf0] == 2 && y.ranks()[leaf2] == 1,
            "{sweep:?}: {:?}",
            y.ranks()
        );
        assert!(rel_error(x.view(), y.to_dense().view()).unwrap() < 1e-14);
        assert_eq!(
            info.singular_values[leaf2][1..]
                .iter()
                .filter(|&&s| s != 0.0)
                .count(),
            0,
            "exact zeros stay exact"
        );
    }
    // One non-zero entry: rank 1 everywhere, reconstructed exactly.
    let mut e = ArrayD::<f64>::zeros(IxDyn(&[3, 4, 2, 5]));
    e[[2, 1, 0, 4]] = -7.5;
    for sweep in [Sweep::LeavesToRoot, Sweep::RootToLeaves] {
        let (y, info) = ht_svd(e.view(), &tree, &Truncation::exact(), sweep).unwrap();
        assert!(
            y.ranks().iter().all(|&k| k == 1),
            "{sweep:?}: {:?}",
            y.ranks()
        );
        assert!((y.entry(&[2, 1, 0, 4]).unwrap() + 7.5).abs() < 1e-14);
        assert!(rel_error(e.view(), y.to_dense().view()).unwrap() < 1e-15);
        assert_eq!(info.error_bound, 0.0);
    }
    // An HT tensor with a zero column in a leaf basis: truncation at round-off level drops
    // it (the Gramian's SVD leaves a round-off-sized, not an exactly zero, value there).
    let x = HtTensor::<f64>::random(&tree, &[4, 5, 3, 4], 3, 1).unwrap();
    let (t, s, mut nodes) = x.into_parts();
    if let tnet::HtNode::Leaf(u) = &mut nodes[t.leaf_of(1)] {
        u.column_mut(2).fill(0.0);
    }
    let x = HtTensor::try_new(t.clone(), s, nodes).unwrap();
    let (y, info) = x.truncate(&Truncation::rel(1e-13)).unwrap();
    assert_eq!(y.ranks()[t.leaf_of(1)], 2);
    assert!(info.error_bound <= 1e-15 * x.norm());
    assert!(rel_error(x.to_dense().view(), y.to_dense().view()).unwrap() < 1e-13);
    // Rank-deficient at a rank cap above the true rank: nothing is lost.
    let (z, zinfo) = x.truncate(&Truncation::rank(100)).unwrap();
    assert!(rel_error(x.to_dense().view(), z.to_dense().view()).unwrap() < 1e-13);
    assert!(zinfo.error_bound <= 1e-15 * x.norm());
}
