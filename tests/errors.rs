//! Bad input gives the right `Error` variant, never a panic and never an invalid tensor.
mod common;

use ndarray::{Array1, Array2, Array3, ArrayD, IxDyn, array};
use tnet::dense::{fold, mode_product, random_normal, unfold, unfold_modes};
use tnet::formats::ht::truncate_sum;
use tnet::formats::ht::{Sweep, ht_svd};
use tnet::{DimTree, Error, Factorized, HtNode, HtTensor, Scalar, Truncation};

macro_rules! assert_err {
    ($e:expr, $pat:pat $(if $guard:expr)?) => {
        match $e {
            Err($pat) $(if $guard)? => {}
            other => panic!(
                "{} gave {:?}, expected {}",
                stringify!($e),
                other.map(|_| "Ok(..)"),
                stringify!($pat)
            ),
        }
    };
}

fn tree(spec: &str) -> DimTree {
    spec.parse().unwrap()
}

/// A valid tensor on ((0,1),2) with shape [2, 3, 4] and ranks [1, 2, 2, 2, 2], as parts.
fn parts<T: Scalar>() -> (DimTree, Vec<usize>, Vec<HtNode<T>>) {
    HtTensor::<T>::random(&tree("((0,1),2)"), &[2, 3, 4], 2, 1)
        .unwrap()
        .into_parts()
}

fn non_finite_inputs<T: Scalar>() {
    let t = DimTree::balanced(3).unwrap();
    for bad in [T::nan(), T::infinity(), T::neg_infinity()] {
        let mut x = random_normal::<T>(&[2, 3, 4], 1);
        x[[1, 2, 3]] = bad;
        for sweep in [Sweep::LeavesToRoot, Sweep::RootToLeaves] {
            assert_err!(
                ht_svd(x.view(), &t, &Truncation::rel(0.1), sweep),
                Error::NonFinite { index: 23, .. }
            );
        }
        let (tr, shape, mut nodes) = parts::<T>();
        if let HtNode::Leaf(u) = &mut nodes[4] {
            u[[3, 1]] = bad;
        }
        assert_err!(HtTensor::try_new(tr, shape, nodes), Error::NonFinite { .. });
        let (tr, shape, mut nodes) = parts::<T>();
        if let HtNode::Transfer(b) = &mut nodes[0] {
            b[[1, 0, 0]] = bad;
        }
        assert_err!(HtTensor::try_new(tr, shape, nodes), Error::NonFinite { .. });
        // Order 1 too.
        let mut v = random_normal::<T>(&[5], 2);
        v[[0]] = bad;
        assert_err!(
            HtTensor::from_dense(v.view(), &tree("0"), &Truncation::exact()),
            Error::NonFinite { index: 0, .. }
        );
        // Matrices given to the linear algebra directly.
        let mut a = Array2::<T>::zeros((3, 2));
        a[[2, 1]] = bad;
        assert_err!(
            tnet::linalg::svd(a.view(), tnet::linalg::MatrixTruncation::exact(), true),
            Error::NonFinite { index: 5, .. }
        );
        // A non-finite mode-product matrix or contraction vector would make an invalid tensor.
        let x = HtTensor::<T>::random(&t, &[2, 3, 4], 2, 3).unwrap();
        let mut m = Array2::<T>::ones((2, 3));
        m[[0, 0]] = bad;
        assert_err!(x.mode_product(m.view(), 1), Error::NonFinite { .. });
        let v = Array1::from_elem(2, bad);
        assert_err!(
            x.contract(&[Some(v.view()), None, None]),
            Error::NonFinite { .. }
        );
    }
}

/// NaN and ±Inf in dense inputs, HT parts, matrices and vectors give NonFinite (f64).
#[test]
fn non_finite_f64() {
    non_finite_inputs::<f64>();
}

/// NaN and ±Inf give NonFinite (f32).
#[test]
fn non_finite_f32() {
    non_finite_inputs::<f32>();
}

/// A tensor whose norm overflows cannot be held (its root transfer tensor would hold the
/// norm): an error, not an infinite tensor; overflowing products likewise.
#[test]
fn overflow_is_an_error() {
    let x = ArrayD::<f64>::from_elem(IxDyn(&[10, 10, 10]), 1e307);
    let t = DimTree::balanced(3).unwrap();
    for sweep in [Sweep::LeavesToRoot, Sweep::RootToLeaves] {
        assert_err!(
            ht_svd(x.view(), &t, &Truncation::rel(0.1), sweep),
            Error::InvalidParameter { name: "x", .. }
        );
    }
    let big = HtTensor::<f64>::random(&t, &[2, 2, 2], 1, 1)
        .unwrap()
        .scale(1e300);
    assert_err!(big.hadamard(&big), Error::NonFinite { .. });
    let v = HtTensor::<f64>::try_new(
        tree("0"),
        vec![2],
        vec![HtNode::Leaf(array![[1.7e308], [0.0]])],
    )
    .unwrap();
    assert_err!(v.add(&v), Error::NonFinite { .. });
}

/// Empty modes and zero-order tensors give Empty (or InvalidTree: no tree has 0 modes).
#[test]
fn empty_inputs() {
    let t = DimTree::balanced(3).unwrap();
    for shape in [[0, 3, 4], [2, 0, 4], [2, 3, 0]] {
        let x = ArrayD::<f64>::zeros(IxDyn(&shape));
        for sweep in [Sweep::LeavesToRoot, Sweep::RootToLeaves] {
            assert_err!(
                ht_svd(x.view(), &t, &Truncation::rel(0.1), sweep),
                Error::Empty { .. }
            );
        }
        assert_err!(
            HtTensor::<f64>::random(&t, &shape, 2, 0),
            Error::Empty { .. }
        );
    }
    let scalar = ArrayD::<f64>::from_elem(IxDyn(&[]), 1.0);
    assert_err!(
        HtTensor::from_dense(scalar.view(), &tree("0"), &Truncation::exact()),
        Error::Empty { .. }
    );
    assert_err!(
        tnet::dense::check_tensor("test", &scalar.view()),
        Error::Empty { .. }
    );
    let (tr, _, nodes) = parts::<f64>();
    assert_err!(
        HtTensor::try_new(tr, vec![2, 0, 4], nodes),
        Error::Empty { .. }
    );
    // A mode product to zero rows.
    let x = HtTensor::<f64>::random(&t, &[2, 3, 4], 2, 3).unwrap();
    assert_err!(
        x.mode_product(Array2::zeros((0, 3)).view(), 1),
        Error::Empty { .. }
    );
}

/// A tree whose order differs from the tensor's gives InvalidTree everywhere.
#[test]
fn tree_order_mismatch() {
    let x = random_normal::<f64>(&[2, 3, 4], 1);
    for spec in ["(0,1)", "((0,1),(2,3))", "0"] {
        let t = tree(spec);
        for sweep in [Sweep::LeavesToRoot, Sweep::RootToLeaves] {
            assert_err!(
                ht_svd(x.view(), &t, &Truncation::rank(2), sweep),
                Error::InvalidTree { .. }
            );
        }
        assert_err!(
            HtTensor::<f64>::random(&t, &[2, 3, 4], 2, 0),
            Error::InvalidTree { .. }
        );
        assert_err!(
            HtTensor::<f64>::admissible_ranks(&t, &[2, 3, 4], 2),
            Error::InvalidTree { .. }
        );
        let (_, shape, nodes) = parts::<f64>();
        assert_err!(
            HtTensor::try_new(t, shape, nodes),
            Error::InvalidTree { .. }
        );
    }
}

/// Inconsistent parts in try_new: every broken invariant is caught with the right variant.
#[test]
fn inconsistent_ranks_in_try_new() {
    type N = HtNode<f64>;
    let valid = || parts::<f64>();
    // Sanity: the parts are valid.
    let (t, s, n) = valid();
    HtTensor::try_new(t, s, n).unwrap();
    // Node ids on ((0,1),2): 0 root, 1 (0,1), 2 leaf 0, 3 leaf 1, 4 leaf 2.
    type Edit = Box<dyn Fn(&mut Vec<N>)>;
    type Case = (&'static str, Edit, fn(&Error) -> bool);
    let cases: Vec<Case> = vec![
        (
            "transfer tensor's first dim does not match the left child's rank",
            Box::new(|n| n[1] = N::Transfer(Array3::ones((3, 2, 2)))),
            |e| matches!(e, Error::ShapeMismatch { .. }),
        ),
        (
            "transfer tensor's second dim does not match the right child's rank",
            Box::new(|n| n[0] = N::Transfer(Array3::ones((2, 1, 1)))),
            |e| matches!(e, Error::ShapeMismatch { .. }),
        ),
        (
            "child rank changed under its parent",
            Box::new(|n| n[3] = N::Leaf(Array2::ones((3, 3)))),
            |e| matches!(e, Error::ShapeMismatch { .. }),
        ),
        (
            "root rank 2",
            Box::new(|n| n[0] = N::Transfer(Array3::ones((2, 2, 2)))),
            |e| matches!(e, Error::InvalidRank { .. }),
        ),
        (
            "rank 0 leaf (and a parent that agrees)",
            Box::new(|n| {
                n[4] = N::Leaf(Array2::zeros((4, 0)));
                n[0] = N::Transfer(Array3::zeros((2, 0, 1)));
            }),
            |e| matches!(e, Error::InvalidRank { .. }),
        ),
        (
            "rank 0 interior node",
            Box::new(|n| {
                n[1] = N::Transfer(Array3::zeros((2, 2, 0)));
                n[0] = N::Transfer(Array3::zeros((0, 2, 1)));
            }),
            |e| matches!(e, Error::InvalidRank { .. }),
        ),
        (
            "root rank 0",
            Box::new(|n| n[0] = N::Transfer(Array3::zeros((2, 2, 0)))),
            |e| matches!(e, Error::InvalidRank { .. }),
        ),
        (
            "leaf rows != mode size",
            Box::new(|n| n[2] = N::Leaf(Array2::ones((3, 2)))),
            |e| matches!(e, Error::ShapeMismatch { .. }),
        ),
        (
            "leaf where a transfer tensor belongs",
            Box::new(|n| n[1] = N::Leaf(Array2::ones((6, 2)))),
            |e| matches!(e, Error::ShapeMismatch { .. }),
        ),
        (
            "transfer tensor where a leaf belongs",
            Box::new(|n| n[2] = N::Transfer(Array3::ones((1, 2, 2)))),
            |e| matches!(e, Error::ShapeMismatch { .. }),
        ),
        (
            "one node too few",
            Box::new(|n| {
                n.pop();
            }),
            |e| matches!(e, Error::ShapeMismatch { .. }),
        ),
        (
            "one node too many",
            Box::new(|n| n.push(N::Leaf(Array2::ones((4, 2))))),
            |e| matches!(e, Error::ShapeMismatch { .. }),
        ),
        ("no nodes", Box::new(|n| n.clear()), |e| {
            matches!(e, Error::ShapeMismatch { .. })
        }),
    ];
    for (what, edit, want) in cases {
        let (t, s, mut n) = valid();
        edit(&mut n);
        match HtTensor::try_new(t, s, n) {
            Err(e) if want(&e) => {}
            other => panic!("{what}: got {:?}", other.map(|_| "Ok")),
        }
    }
    // Order 1: the root is a leaf and must have rank 1.
    assert_err!(
        HtTensor::try_new(
            tree("0"),
            vec![3],
            vec![HtNode::<f64>::Leaf(Array2::ones((3, 2)))]
        ),
        Error::InvalidRank { .. }
    );
    assert_err!(
        HtTensor::try_new(
            tree("0"),
            vec![3],
            vec![HtNode::<f64>::Transfer(Array3::ones((1, 1, 1)))]
        ),
        Error::ShapeMismatch { .. }
    );
    // random_with_ranks: wrong count, zero rank, root rank 2.
    let t = tree("((0,1),2)");
    assert_err!(
        HtTensor::<f64>::random_with_ranks(&t, &[2, 3, 4], &[1, 2], 0),
        Error::ShapeMismatch { .. }
    );
    assert_err!(
        HtTensor::<f64>::random_with_ranks(&t, &[2, 3, 4], &[1, 2, 0, 2, 2], 0),
        Error::InvalidRank { .. }
    );
    assert_err!(
        HtTensor::<f64>::random_with_ranks(&t, &[2, 3, 4], &[2, 2, 2, 2, 2], 0),
        Error::InvalidRank { .. }
    );
    assert_err!(
        HtTensor::<f64>::random(&t, &[2, 3, 4], 0, 0),
        Error::InvalidParameter { name: "rank", .. }
    );
    // Ranks too large to allocate: an error, not a panic or an abort.
    let huge = usize::MAX / 2;
    assert_err!(
        HtTensor::<f64>::random_with_ranks(&t, &[2, 3, 4], &[1, huge, huge, 2, 2], 0),
        Error::InvalidParameter { name: "ranks", .. }
    );
}

/// Invalid truncation rules give InvalidParameter naming the field, everywhere a rule is
/// taken.
#[test]
fn invalid_truncation_rules() {
    let x = random_normal::<f64>(&[2, 3, 4], 1);
    let t = DimTree::balanced(3).unwrap();
    let ht = HtTensor::<f64>::random(&t, &[2, 3, 4], 2, 1).unwrap();
    let rules = [
        (Truncation::rel(-1e-3), "rel_eps"),
        (Truncation::rel(f64::NAN), "rel_eps"),
        (Truncation::rel(f64::INFINITY), "rel_eps"),
        (Truncation::abs(-1.0), "abs_eps"),
        (Truncation::abs(f64::NAN), "abs_eps"),
        (Truncation::rank(0), "max_rank"),
        (Truncation::rel(0.1).with_max_rank(0), "max_rank"),
        (
            Truncation::rank(3).with_abs_eps(f64::NEG_INFINITY),
            "abs_eps",
        ),
    ];
    for (rule, field) in rules {
        assert_err!(rule.check(), Error::InvalidParameter { name, .. } if name == field);
        for sweep in [Sweep::LeavesToRoot, Sweep::RootToLeaves] {
            assert_err!(ht_svd(x.view(), &t, &rule, sweep), Error::InvalidParameter { name, .. } if name == field);
        }
        assert_err!(ht.truncate(&rule), Error::InvalidParameter { name, .. } if name == field);
        assert_err!(ht.round(&rule), Error::InvalidParameter { name, .. } if name == field);
        assert_err!(truncate_sum(&[&ht, &ht], &rule), Error::InvalidParameter { name, .. } if name == field);
    }
    // Order 1 also validates the rule.
    let v = random_normal::<f64>(&[4], 1);
    assert_err!(
        HtTensor::from_dense(v.view(), &tree("0"), &Truncation::rank(0)),
        Error::InvalidParameter { .. }
    );
    assert_err!(
        truncate_sum::<f64>(&[], &Truncation::rel(0.1)),
        Error::InvalidParameter { name: "terms", .. }
    );
}

/// Entry indices out of bounds or of the wrong length give IndexOutOfBounds; an index
/// table with the wrong number of columns gives ShapeMismatch.
#[test]
fn entry_out_of_bounds() {
    let x = HtTensor::<f64>::random(&DimTree::balanced(3).unwrap(), &[2, 3, 4], 2, 1).unwrap();
    for idx in [
        vec![2, 0, 0],
        vec![0, 3, 0],
        vec![0, 0, 4],
        vec![0, 0],
        vec![0, 0, 0, 0],
        vec![],
        vec![usize::MAX, 0, 0],
    ] {
        assert_err!(x.entry(&idx), Error::IndexOutOfBounds { .. });
    }
    assert_err!(
        x.entries(array![[0usize, 0, 0], [1, 2, 4]].view()),
        Error::IndexOutOfBounds { .. }
    );
    assert_err!(
        x.entries(array![[0usize, 0]].view()),
        Error::ShapeMismatch { .. }
    );
    assert_eq!(
        x.entries(Array2::<usize>::zeros((0, 3)).view()).unwrap(),
        Vec::<f64>::new()
    );
}

/// Binary operations on tensors of different shapes or trees fail cleanly.
#[test]
fn binary_ops_on_mismatched_operands() {
    let t = tree("((0,1),2)");
    let x = HtTensor::<f64>::random(&t, &[2, 3, 4], 2, 1).unwrap();
    let other_shape = HtTensor::<f64>::random(&t, &[2, 3, 5], 2, 1).unwrap();
    let other_tree = HtTensor::<f64>::random(&tree("(0,(1,2))"), &[2, 3, 4], 2, 1).unwrap();
    let other_order = HtTensor::<f64>::random(&tree("(0,1)"), &[2, 3], 2, 1).unwrap();
    for y in [&other_shape, &other_order] {
        assert_err!(x.add(y), Error::ShapeMismatch { .. });
        assert_err!(x.sub(y), Error::ShapeMismatch { .. });
        assert_err!(x.hadamard(y), Error::ShapeMismatch { .. });
        assert_err!(x.inner(y), Error::ShapeMismatch { .. });
        assert_err!(x.norm_diff(y), Error::ShapeMismatch { .. });
        assert_err!(
            truncate_sum(&[&x, y], &Truncation::rel(0.1)),
            Error::ShapeMismatch { .. }
        );
    }
    assert_err!(x.add(&other_tree), Error::InvalidTree { .. });
    assert_err!(x.hadamard(&other_tree), Error::InvalidTree { .. });
    assert_err!(x.inner(&other_tree), Error::InvalidTree { .. });
    assert_err!(
        truncate_sum(&[&x, &other_tree], &Truncation::rel(0.1)),
        Error::InvalidTree { .. }
    );
    assert_err!(
        x.inner_dense(ArrayD::zeros(IxDyn(&[2, 3, 5])).view()),
        Error::ShapeMismatch { .. }
    );
    assert_err!(
        x.inner_dense(ArrayD::zeros(IxDyn(&[2, 3])).view()),
        Error::ShapeMismatch { .. }
    );
}

/// mode_product with a wrong matrix or mode, contract with wrong vectors.
#[test]
fn mode_product_and_contract_errors() {
    let x = HtTensor::<f64>::random(&tree("((0,1),2)"), &[2, 3, 4], 2, 1).unwrap();
    assert_err!(
        x.mode_product(Array2::ones((2, 4)).view(), 1),
        Error::ShapeMismatch { .. }
    );
    assert_err!(
        x.mode_product(Array2::ones((2, 3)).view(), 3),
        Error::InvalidMode { mode: 3, order: 3 }
    );
    let (a, b, c) = (Array1::ones(2), Array1::ones(3), Array1::ones(4));
    let wrong = Array1::ones(5);
    assert_err!(
        x.contract(&[Some(wrong.view()), None, None]),
        Error::ShapeMismatch { .. }
    );
    assert_err!(
        x.contract(&[None, Some(a.view()), None]),
        Error::ShapeMismatch { .. }
    );
    assert_err!(x.contract(&[None, None]), Error::ShapeMismatch { .. });
    assert_err!(
        x.contract(&[None, None, None, None]),
        Error::ShapeMismatch { .. }
    );
    assert_err!(
        x.contract(&[Some(a.view()), Some(b.view()), Some(c.view())]),
        Error::InvalidParameter {
            name: "vectors",
            ..
        }
    );
    assert_err!(
        x.contract_all(&[a.view(), b.view()]),
        Error::ShapeMismatch { .. }
    );
    assert_err!(
        x.contract_all(&[a.view(), b.view(), wrong.view()]),
        Error::ShapeMismatch { .. }
    );
    assert_err!(x.contract_all(&[]), Error::ShapeMismatch { .. });
}

/// Dense helpers: unfold with bad modes, fold with a wrong shape, mode products and
/// relative errors of mismatched shapes.
#[test]
fn dense_helper_errors() {
    let x = random_normal::<f64>(&[2, 3, 4], 1);
    assert_err!(
        unfold(x.view(), 3),
        Error::InvalidMode { mode: 3, order: 3 }
    );
    assert_err!(
        unfold_modes(x.view(), &[0, 5]),
        Error::InvalidMode { mode: 5, .. }
    );
    assert_err!(
        unfold_modes(x.view(), &[1, 1]),
        Error::InvalidParameter { .. }
    );
    let m = unfold(x.view(), 1).unwrap();
    assert_eq!(fold(m.view(), 1, &[2, 3, 4]).unwrap(), x);
    assert_err!(fold(m.view(), 1, &[2, 3, 5]), Error::ShapeMismatch { .. });
    assert_err!(fold(m.view(), 0, &[2, 3, 4]), Error::ShapeMismatch { .. });
    assert_err!(fold(m.view(), 3, &[2, 3, 4]), Error::InvalidMode { .. });
    assert_err!(fold(m.view(), 0, &[]), Error::InvalidMode { .. });
    assert_err!(
        fold(m.view(), 1, &[usize::MAX, 3, usize::MAX]),
        Error::ShapeMismatch { .. }
    );
    assert_err!(
        mode_product(x.view(), Array2::ones((2, 4)).view(), 1),
        Error::ShapeMismatch { .. }
    );
    assert_err!(
        mode_product(x.view(), Array2::ones((2, 4)).view(), 7),
        Error::InvalidMode { .. }
    );
    let y = random_normal::<f64>(&[2, 3, 5], 1);
    assert_err!(
        tnet::dense::rel_error(x.view(), y.view()),
        Error::ShapeMismatch { .. }
    );
    assert_err!(
        tnet::dense::inner(x.view(), y.view()),
        Error::ShapeMismatch { .. }
    );
    // Unfolding a tensor with an empty mode keeps the other modes' sizes.
    let e = ArrayD::<f64>::zeros(IxDyn(&[0, 3, 4]));
    assert_eq!(unfold(e.view(), 0).unwrap().dim(), (0, 12));
    assert_eq!(unfold(e.view(), 1).unwrap().dim(), (3, 0));
    let back = fold(unfold(e.view(), 0).unwrap().view(), 0, &[0, 3, 4]).unwrap();
    assert_eq!(back.shape(), &[0, 3, 4]);
}

/// Zero tensors: no division by zero anywhere (relative bounds, norms, truncation, sums).
#[test]
fn zero_tensors_are_fine() {
    let t = DimTree::balanced(3).unwrap();
    let z = ArrayD::<f64>::zeros(IxDyn(&[2, 3, 4]));
    for rule in [
        Truncation::rel(0.1),
        Truncation::abs(0.0),
        Truncation::exact(),
        Truncation::rank(2),
    ] {
        for sweep in [Sweep::LeavesToRoot, Sweep::RootToLeaves] {
            let (y, info) = ht_svd(z.view(), &t, &rule, sweep).unwrap();
            assert_eq!(info.rel_error_bound(), 0.0);
            assert_eq!(y.norm(), 0.0);
            assert!(y.to_dense().iter().all(|&v| v == 0.0));
        }
    }
    let x = HtTensor::<f64>::random(&t, &[2, 3, 4], 2, 1).unwrap();
    let zero = x.sub(&x).unwrap();
    assert!(zero.norm() <= 1e-15 * x.norm());
    // Round-off noise truncated to an absolute tolerance above it: rank 1 everywhere.
    let (y, info) = zero.truncate(&Truncation::abs(1e-12 * x.norm())).unwrap();
    assert!(y.ranks().iter().all(|&k| k == 1), "{:?}", y.ranks());
    assert!(info.error_bound <= 1e-15 * x.norm());
    assert!(y.norm() <= 1e-15 * x.norm());
    let scaled = x.scale(0.0);
    assert_eq!(scaled.norm(), 0.0);
    assert_eq!(scaled.norm_diff(&scaled).unwrap(), 0.0);
    let (y, info) = scaled.truncate(&Truncation::rel(0.1)).unwrap();
    assert_eq!(
        (info.error_bound, info.rel_error_bound(), y.norm()),
        (0.0, 0.0, 0.0)
    );
    assert_eq!(tnet::dense::rel_error(z.view(), z.view()).unwrap(), 0.0);
}
