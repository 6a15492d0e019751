//! Randomized decompositions (TT, HT, Tucker): the tolerance is met and the a posteriori
//! bound holds on random low-rank-plus-noise tensors, tensors of the target structure are
//! recovered exactly, the error at a fixed rank stays within 1.1x of the exact method's,
//! results are reproducible from the seed, and bad input gets an error.

mod common;

use common::{assert_within, roundoff, tree_strategy};
use ndarray::ArrayD;
use proptest::prelude::*;
use tnet::formats::ht::{Sweep, ht_randomized, ht_svd};
use tnet::formats::tt::{tt_randomized, tt_svd};
use tnet::formats::tucker::{st_hosvd, st_hosvd_randomized};
use tnet::formats::{Decomposition, FormatKind};
use tnet::linalg::Sketch;
use tnet::{DimTree, Error, Factorized, HtTensor, Scalar, Truncation, TtTensor, TuckerTensor};

/// `S + noise · ‖S‖ · G / ‖G‖` for a structured `S` and Gaussian `G`.
fn plus_noise<T: Scalar>(s: ArrayD<T>, noise: f64, seed: u64) -> ArrayD<T> {
    let g = tnet::dense::random_normal::<T>(s.shape(), seed);
    let scale = T::cast(noise) * tnet::dense::norm(s.view()) / tnet::dense::norm(g.view());
    &s + &(g * scale)
}

/// The three randomized decompositions of `x` under `rule`: (name, measured error, bound).
fn all<T: Scalar>(
    x: &ArrayD<T>,
    tree: &DimTree,
    rule: &Truncation,
    sketch: &Sketch,
) -> Vec<(&'static str, f64, f64)> {
    let tt = tt_randomized(x.view(), rule, sketch).unwrap();
    let ht = ht_randomized(x.view(), tree, rule, sketch).unwrap();
    let tucker = st_hosvd_randomized(x.view(), rule, sketch).unwrap();
    let d = |y: &dyn Fn() -> T| y().as_f64();
    vec![
        (
            "TT",
            d(&|| tt.0.distance(x.view()).unwrap()),
            tt.1.error_bound.as_f64(),
        ),
        (
            "HT",
            d(&|| ht.0.distance(x.view()).unwrap()),
            ht.1.error_bound.as_f64(),
        ),
        (
            "Tucker",
            d(&|| tucker.0.distance(x.view()).unwrap()),
            tucker.1.error_bound.as_f64(),
        ),
    ]
}

/// Shapes whose unfoldings have more rows than a sketch, so that sketches are used.
fn big_modes() -> impl Strategy<Value = (Vec<usize>, DimTree)> {
    (2usize..=4).prop_flat_map(|d| {
        let max = if d == 2 {
            300
        } else if d == 3 {
            40
        } else {
            14
        };
        (proptest::collection::vec(8usize..=max, d), tree_strategy(d))
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    /// Under a relative tolerance the error is at most `ε ‖X‖` and at most the reported
    /// bound, whatever the noise and the sketch (power iterations 0 or 1).
    #[test]
    fn tolerance_and_bound((shape, tree) in big_modes(), rank in 1usize..12,
                           noise in 1e-4f64..0.3, eps in 0.01f64..0.5,
                           q in 0usize..2, seed in any::<u64>()) {
        let s = TtTensor::<f64>::random(&shape, rank, seed).unwrap().to_dense();
        let x = plus_noise(s, noise, seed ^ 1);
        let norm = tnet::dense::norm(x.view());
        let sketch = Sketch::new(seed).with_power_iterations(q);
        let slack = roundoff::<f64>(x.len()) * norm;
        for (name, err, bound) in all(&x, &tree, &Truncation::rel(eps), &sketch) {
            assert_within(err, eps * norm + slack, &format!("{name} tolerance {eps} on {shape:?}"));
            assert_within(err, bound + slack, &format!("{name} a posteriori bound on {shape:?}"));
        }
    }

    /// The same in f32, up to f32 round-off.
    #[test]
    fn tolerance_and_bound_f32((shape, tree) in big_modes(), rank in 1usize..8,
                               eps in 0.05f64..0.5, seed in any::<u64>()) {
        let s = TtTensor::<f32>::random(&shape, rank, seed).unwrap().to_dense();
        let x = plus_noise(s, 0.02, seed ^ 1);
        let norm = tnet::dense::norm(x.view()).as_f64();
        let slack = roundoff::<f32>(x.len()) * norm;
        for (name, err, bound) in all(&x, &tree, &Truncation::rel(eps), &Sketch::new(seed)) {
            assert_within(err, eps * norm + slack, &format!("{name} f32 tolerance {eps} on {shape:?}"));
            assert_within(err, bound + slack, &format!("{name} f32 bound on {shape:?}"));
        }
    }

    /// Tensors with the target structure are recovered at their rank.
    #[test]
    fn exact_recovery((shape, tree) in big_modes(), rank in 1usize..6, seed in any::<u64>()) {
        let rule = Truncation::rank(rank);
        let sketch = Sketch::new(seed);
        let tol = |x: &ArrayD<f64>| 1e-9 * tnet::dense::norm(x.view());
        let x = TtTensor::<f64>::random(&shape, rank, seed).unwrap().to_dense();
        let (y, _) = tt_randomized(x.view(), &rule, &sketch).unwrap();
        assert_within(y.distance(x.view()).unwrap(), tol(&x), &format!("TT rank {rank} on {shape:?}"));
        let x = HtTensor::<f64>::random(&tree, &shape, rank, seed).unwrap().to_dense();
        let (y, _) = ht_randomized(x.view(), &tree, &rule, &sketch).unwrap();
        assert_within(y.distance(x.view()).unwrap(), tol(&x), &format!("HT rank {rank} on {shape:?} {tree}"));
        let ranks: Vec<usize> = shape.iter().map(|&n| rank.min(n)).collect();
        let x = TuckerTensor::<f64>::random(&shape, &ranks, seed).unwrap().to_dense();
        let (y, _) = st_hosvd_randomized(x.view(), &rule, &sketch).unwrap();
        assert_within(y.distance(x.view()).unwrap(), tol(&x), &format!("Tucker rank {rank} on {shape:?}"));
    }

    /// At a fixed rank on low-rank-plus-noise data the default sketch's error is within
    /// 1.1x of the exact method's.
    #[test]
    fn fixed_rank_close_to_exact((shape, tree) in big_modes(), rank in 1usize..6,
                                 noise in 1e-4f64..1e-2, seed in any::<u64>()) {
        let rule = Truncation::rank(rank);
        let sketch = Sketch::new(seed);
        let x = plus_noise(TtTensor::<f64>::random(&shape, rank, seed).unwrap().to_dense(), noise, seed ^ 2);
        let exact = tt_svd(x.view(), &rule).unwrap().0.distance(x.view()).unwrap();
        let r = tt_randomized(x.view(), &rule, &sketch).unwrap().0.distance(x.view()).unwrap();
        assert_within(r, 1.1 * exact + 1e-12, &format!("TT rank {rank} on {shape:?}"));
        let x = plus_noise(HtTensor::<f64>::random(&tree, &shape, rank, seed).unwrap().to_dense(), noise, seed ^ 3);
        let exact = ht_svd(x.view(), &tree, &rule, Sweep::LeavesToRoot).unwrap().0.distance(x.view()).unwrap();
        let r = ht_randomized(x.view(), &tree, &rule, &sketch).unwrap().0.distance(x.view()).unwrap();
        assert_within(r, 1.1 * exact + 1e-12, &format!("HT rank {rank} on {shape:?} {tree}"));
        let ranks: Vec<usize> = shape.iter().map(|&n| rank.min(n)).collect();
        let x = plus_noise(TuckerTensor::<f64>::random(&shape, &ranks, seed).unwrap().to_dense(), noise, seed ^ 4);
        let exact = st_hosvd(x.view(), &rule).unwrap().0.distance(x.view()).unwrap();
        let r = st_hosvd_randomized(x.view(), &rule, &sketch).unwrap().0.distance(x.view()).unwrap();
        assert_within(r, 1.1 * exact + 1e-12, &format!("Tucker rank {rank} on {shape:?}"));
    }
}

/// Sketches of more than 16 blocks of columns (so that several runs are summed in
/// parallel): the same result on one thread and on the pool, and another seed differs.
#[test]
fn the_seed_decides_the_result_not_the_threads() {
    let one_thread = |f: &(dyn Fn() -> Vec<f64> + Sync)| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap()
            .install(f)
    };
    // TT of a 40 x 20,000 matrix: 20 blocks of 1,024 columns.
    let m = plus_noise(
        TtTensor::<f64>::random(&[40, 20_000], 4, 1)
            .unwrap()
            .to_dense(),
        0.1,
        2,
    );
    // Tucker on 30 x 40 x 50: the middle mode's unfolding has 30 slabs, one block each.
    let t = plus_noise(
        TuckerTensor::<f64>::random(&[30, 40, 50], &[4, 4, 4], 3)
            .unwrap()
            .to_dense(),
        0.1,
        4,
    );
    let rule = Truncation::rank(4);
    let tt = |seed: u64| -> Vec<f64> {
        let y = tt_randomized(m.view(), &rule, &Sketch::new(seed))
            .unwrap()
            .0;
        y.to_dense().iter().copied().collect()
    };
    let tucker = |seed: u64| -> Vec<f64> {
        let y = st_hosvd_randomized(t.view(), &rule, &Sketch::new(seed))
            .unwrap()
            .0;
        y.to_dense().iter().copied().collect()
    };
    assert_eq!(tt(5), one_thread(&|| tt(5)));
    assert_eq!(tucker(5), one_thread(&|| tucker(5)));
    assert_ne!(tt(5), tt(6));
    assert_ne!(tucker(5), tucker(6));
}

/// A rule that keeps everything, and a zero tensor under a relative tolerance, give the
/// exact methods' ranks (no identity blown up to the row count).
#[test]
fn exact_rules_and_zero_tensors_give_the_exact_ranks() {
    let x = TtTensor::<f64>::random(&[6, 7, 8, 5], 2, 1)
        .unwrap()
        .to_dense();
    let sketch = Sketch::default();
    let exact = Truncation::exact();
    let (r, _) = tt_randomized(x.view(), &exact, &sketch).unwrap();
    let (d, _) = tt_svd(x.view(), &exact).unwrap();
    assert!(
        r.ranks()
            .iter()
            .zip(d.ranks())
            .all(|(a, b)| *a <= b.max(6 * 7)),
        "{:?} {:?}",
        r.ranks(),
        d.ranks()
    );
    assert!(r.distance(x.view()).unwrap() <= 1e-10 * tnet::dense::norm(x.view()));
    let big = Truncation::rank(1000);
    let y = tnet::dense::random_normal::<f64>(&[10, 10, 10, 10], 3);
    let (r, _) = tt_randomized(y.view(), &big, &sketch).unwrap();
    assert_eq!(r.ranks(), vec![1, 10, 100, 10, 1]);
    let z = ArrayD::<f64>::zeros(vec![30, 30, 30, 30]);
    let tree = DimTree::balanced(4).unwrap();
    let rel = Truncation::rel(0.1);
    assert!(
        tt_randomized(z.view(), &rel, &sketch)
            .unwrap()
            .0
            .ranks()
            .iter()
            .all(|&k| k == 1)
    );
    assert!(
        ht_randomized(z.view(), &tree, &rel, &sketch)
            .unwrap()
            .0
            .ranks()
            .iter()
            .all(|&k| k == 1)
    );
    assert!(
        st_hosvd_randomized(z.view(), &rel, &sketch)
            .unwrap()
            .0
            .ranks()
            .iter()
            .all(|&k| k == 1)
    );
}

/// Entries near the ends of the range: the power iteration is scaled, the basis found,
/// the error bound honest.
#[test]
fn large_and_tiny_magnitudes() {
    let tree = DimTree::balanced(3).unwrap();
    let rule = Truncation::rank(5);
    let check = |x: ArrayD<f64>, what: &str| {
        let norm = tnet::dense::norm(x.view());
        for (name, err, bound) in all(&x, &tree, &rule, &Sketch::default()) {
            assert!(
                err <= bound + 1e-12 * norm && err <= 1e-9 * norm,
                "{what} {name}: {err:e} {bound:e}"
            );
        }
    };
    let s = TuckerTensor::<f64>::random(&[40, 40, 40], &[3, 3, 3], 1)
        .unwrap()
        .to_dense();
    check(&s * 1e150, "f64 1e150");
    check(&s * 1e-150, "f64 1e-150");
    let s32 = TuckerTensor::<f32>::random(&[40, 40, 40], &[3, 3, 3], 1)
        .unwrap()
        .to_dense();
    for scale in [1e17_f32, 1e30, 1e-25] {
        let x = &s32 * scale;
        let norm = tnet::dense::norm(x.view()).as_f64();
        for (name, err, bound) in all(&x, &tree, &rule, &Sketch::default()) {
            assert!(
                err <= bound + 1e-4 * norm && err <= 1e-4 * norm,
                "f32 {scale:e} {name}: {err:e} {bound:e}"
            );
        }
    }
}

#[test]
fn bad_input_gets_an_error() {
    let tree = DimTree::balanced(3).unwrap();
    let sketch = Sketch::default();
    let mut x = tnet::dense::random_normal::<f64>(&[30, 30, 30], 1);
    x[[3, 4, 5]] = f64::NAN;
    let rule = Truncation::rank(3);
    assert!(matches!(
        tt_randomized(x.view(), &rule, &sketch),
        Err(Error::NonFinite { .. })
    ));
    assert!(matches!(
        ht_randomized(x.view(), &tree, &rule, &sketch),
        Err(Error::NonFinite { .. })
    ));
    assert!(matches!(
        st_hosvd_randomized(x.view(), &rule, &sketch),
        Err(Error::NonFinite { .. })
    ));
    let empty = ArrayD::<f64>::zeros(vec![4, 0, 3]);
    assert!(matches!(
        tt_randomized(empty.view(), &rule, &sketch),
        Err(Error::Empty { .. })
    ));
    let y = tnet::dense::random_normal::<f64>(&[30, 30, 30], 1);
    assert!(matches!(
        tt_randomized(y.view(), &Truncation::rel(-1.0), &sketch),
        Err(Error::InvalidParameter { .. })
    ));
    let wrong = DimTree::balanced(4).unwrap();
    assert!(ht_randomized(y.view(), &wrong, &rule, &sketch).is_err());
    for format in [FormatKind::Tr, FormatKind::Bt] {
        let e = Decomposition::decompose_randomized(format, y.view(), None, &rule, &sketch)
            .unwrap_err();
        assert!(matches!(e, Error::InvalidParameter { .. }), "{e}");
    }
    // A zero tensor is fine: zero error.
    let z = ArrayD::<f64>::zeros(vec![30, 30, 30]);
    let (t, info) = tt_randomized(z.view(), &rule, &sketch).unwrap();
    assert_eq!(t.distance(z.view()).unwrap(), 0.0);
    assert_eq!(info.error_bound, 0.0);
}
