//! HT arithmetic, contraction, entries, orthogonalisation, Gramians, frames and
//! truncate_sum, each against the dense computation on random trees and shapes small
//! enough to densify, in f64 and f32.
mod common;

use common::{assert_within, roundoff, shape_and_tree};
use ndarray::{Array1, Array2, ArrayD, Axis, Dimension, Ix2, IxDyn};
use proptest::prelude::*;
use tnet::dense::{random_normal, unfold_modes};
use tnet::formats::ht::{Sweep, ht_svd};
use tnet::formats::ht::{gramians, orthogonalize, truncate_sum};
use tnet::linalg::{MatrixTruncation, svd};
use tnet::{DimTree, Factorized, HtNode, HtTensor, Scalar, Truncation};

// ---------------------------------------------------------------- helpers

fn nrm<T: Scalar>(x: &ArrayD<T>) -> f64 {
    tnet::dense::norm(x.view()).as_f64()
}

fn dist<T: Scalar>(a: &ArrayD<T>, b: &ArrayD<T>) -> f64 {
    assert_eq!(a.shape(), b.shape());
    nrm(&(a - b))
}

fn matrix<T: Scalar>(rows: usize, cols: usize, seed: u64) -> Array2<T> {
    random_normal::<T>(&[rows, cols], seed)
        .into_dimensionality::<Ix2>()
        .unwrap()
}

fn vector<T: Scalar>(n: usize, seed: u64) -> Array1<T> {
    random_normal::<T>(&[n], seed)
        .into_dimensionality()
        .unwrap()
}

/// `||I - Q^T Q||_F`, the departure of `Q`'s columns from orthonormality.
fn orth_defect<T: Scalar>(q: &Array2<T>) -> f64 {
    let g = q.t().dot(q);
    let eye = Array2::<T>::eye(g.nrows());
    nrm(&(&g - &eye).into_dyn())
}

/// Dense reference: contracts mode k with `v_k` wherever given, by summing slabs.
fn dense_contract<T: Scalar>(x: &ArrayD<T>, vectors: &[Option<Array1<T>>]) -> ArrayD<T> {
    let mut y = x.clone();
    for k in (0..vectors.len()).rev() {
        if let Some(v) = &vectors[k] {
            let mut shape = y.shape().to_vec();
            shape.remove(k);
            let mut acc = ArrayD::<T>::zeros(IxDyn(&shape));
            for (slab, &c) in y.axis_iter(Axis(k)).zip(v.iter()) {
                acc.scaled_add(c, &slab);
            }
            y = acc;
        }
    }
    y
}

/// Dense reference: `Y[.., j, ..] = sum_m A[j, m] X[.., m, ..]` entry by entry.
fn dense_mode_product<T: Scalar>(x: &ArrayD<T>, a: &Array2<T>, k: usize) -> ArrayD<T> {
    let mut shape = x.shape().to_vec();
    shape[k] = a.nrows();
    ArrayD::from_shape_fn(IxDyn(&shape), |idx| {
        let mut i = idx.slice().to_vec();
        let j = i[k];
        (0..a.ncols())
            .map(|m| {
                i[k] = m;
                a[[j, m]] * x[IxDyn(&i)]
            })
            .sum()
    })
}

/// Singular values of the matricization of the dense tensor at node `t`.
fn dense_sv<T: Scalar>(x: &ArrayD<T>, tree: &DimTree, t: usize) -> Vec<f64> {
    let m = unfold_modes(x.view(), tree.modes(t)).unwrap();
    svd(m.view(), MatrixTruncation::exact(), false)
        .unwrap()
        .singular_values
        .iter()
        .map(|v| v.as_f64())
        .collect()
}

fn pair<T: Scalar>(
    shape: &[usize],
    tree: &DimTree,
    rank: usize,
    seed: u64,
) -> (HtTensor<T>, HtTensor<T>) {
    (
        HtTensor::<T>::random(tree, shape, rank, seed).unwrap(),
        HtTensor::<T>::random(tree, shape, rank.max(2) - 1, seed.wrapping_add(1)).unwrap(),
    )
}

// ---------------------------------------------------------------- checks

fn check_linear_ops<T: Scalar>(shape: &[usize], tree: &DimTree, rank: usize, seed: u64) {
    let (x, y) = pair::<T>(shape, tree, rank, seed);
    let (xd, yd) = (x.to_dense(), y.to_dense());
    let n = xd.len();
    let scale = nrm(&xd) + nrm(&yd);
    let tol = roundoff::<T>(n) * scale;
    let ctx = format!("{shape:?} on {tree}");

    let s = x.add(&y).unwrap();
    assert_within(
        dist(&s.to_dense(), &(&xd + &yd)),
        tol,
        &format!("add {ctx}"),
    );
    let d = x.sub(&y).unwrap();
    assert_within(
        dist(&d.to_dense(), &(&xd - &yd)),
        tol,
        &format!("sub {ctx}"),
    );
    for t in tree.pre_order() {
        let want = if t == tree.root() {
            1
        } else {
            x.ranks()[t] + y.ranks()[t]
        };
        assert_eq!(s.ranks()[t], want, "add ranks at {t} {ctx}");
    }
    let alpha = T::cast(-2.5);
    let sc = x.scale(alpha);
    assert_within(
        dist(&sc.to_dense(), &xd.mapv(|v| v * alpha)),
        tol,
        &format!("scale {ctx}"),
    );
    assert_eq!(sc.ranks(), x.ranks());
    assert_eq!(x.scale(T::zero()).to_dense(), ArrayD::zeros(IxDyn(shape)));

    let h = x.hadamard(&y).unwrap();
    let hd = &xd * &yd;
    assert_within(
        dist(&h.to_dense(), &hd),
        roundoff::<T>(n) * nrm(&xd) * nrm(&yd),
        &format!("hadamard {ctx}"),
    );
    for t in tree.pre_order() {
        assert_eq!(
            h.ranks()[t],
            x.ranks()[t] * y.ranks()[t],
            "hadamard ranks {ctx}"
        );
    }

    let ip = x.inner(&y).unwrap().as_f64();
    let want = tnet::dense::inner(xd.view(), yd.view()).unwrap().as_f64();
    let itol = roundoff::<T>(n) * nrm(&xd) * nrm(&yd);
    assert_within((ip - want).abs(), itol, &format!("inner {ctx}"));
    assert_within(
        (y.inner(&x).unwrap().as_f64() - want).abs(),
        itol,
        "inner symmetric",
    );
    let ipd = x.inner_dense(yd.view()).unwrap().as_f64();
    assert_within((ipd - want).abs(), itol, &format!("inner_dense {ctx}"));
    let xx = x.inner(&x).unwrap().as_f64();
    assert_within(
        (xx - nrm(&xd).powi(2)).abs(),
        itol.max(roundoff::<T>(n) * nrm(&xd).powi(2)),
        "inner(x, x)",
    );

    let nx = x.norm().as_f64();
    assert_within(
        (nx - nrm(&xd)).abs(),
        roundoff::<T>(n) * nrm(&xd),
        &format!("norm {ctx}"),
    );
    let nd = x.norm_diff(&y).unwrap().as_f64();
    assert_within(
        (nd - dist(&xd, &yd)).abs(),
        tol,
        &format!("norm_diff {ctx}"),
    );
    assert_within(
        x.norm_diff(&x).unwrap().as_f64(),
        roundoff::<T>(x.n_params()) * nx,
        "norm_diff(x, x)",
    );
}

/// `norm_diff(x, x + δ y)` with δ far below `sqrt(eps)`: the expansion
/// `‖x‖² − 2<x,z> + ‖z‖²` would lose every digit; orthogonalisation keeps them.
fn check_norm_diff_near<T: Scalar>(shape: &[usize], tree: &DimTree, rank: usize, seed: u64) {
    let (x, y) = pair::<T>(shape, tree, rank, seed);
    let delta = if T::NAME == "f64" { 1e-10 } else { 1e-3 };
    let z = x.add(&y.scale(T::cast(delta))).unwrap();
    let got = x.norm_diff(&z).unwrap().as_f64();
    let want = delta * y.norm().as_f64();
    let tol = roundoff::<T>(z.n_params()) * (x.norm().as_f64() + z.norm().as_f64());
    assert_within(
        (got - want).abs(),
        tol,
        &format!("norm_diff near {shape:?} on {tree}"),
    );
}

fn check_mode_product<T: Scalar>(
    shape: &[usize],
    tree: &DimTree,
    rank: usize,
    j: usize,
    seed: u64,
) {
    let x = HtTensor::<T>::random(tree, shape, rank, seed).unwrap();
    let xd = x.to_dense();
    for k in 0..shape.len() {
        let a = matrix::<T>(j, shape[k], seed ^ k as u64);
        let y = x.mode_product(a.view(), k).unwrap();
        let want = dense_mode_product(&xd, &a, k);
        assert_eq!(y.shape(), want.shape());
        assert_eq!(y.ranks(), x.ranks());
        let tol = roundoff::<T>(xd.len()) * nrm(&xd) * nrm(&a.clone().into_dyn());
        assert_within(
            dist(&y.to_dense(), &want),
            tol,
            &format!("mode_product {k} {shape:?} on {tree}"),
        );
    }
}

fn check_contract<T: Scalar>(shape: &[usize], tree: &DimTree, rank: usize, mask: u64, seed: u64) {
    let x = HtTensor::<T>::random(tree, shape, rank, seed).unwrap();
    let xd = x.to_dense();
    let d = shape.len();
    let mut take: Vec<bool> = (0..d).map(|k| mask >> k & 1 == 1).collect();
    if take.iter().all(|&b| b) {
        take[(mask >> 32) as usize % d] = false;
    }
    let vs: Vec<Option<Array1<T>>> = (0..d)
        .map(|k| take[k].then(|| vector::<T>(shape[k], seed ^ (k as u64 + 7))))
        .collect();
    let views: Vec<_> = vs.iter().map(|v| v.as_ref().map(|v| v.view())).collect();
    let y = x.contract(&views).unwrap();
    let want = dense_contract(&xd, &vs);
    let ctx = format!("contract {take:?} {shape:?} on {tree}");
    assert_eq!(y.shape(), want.shape(), "{ctx}");
    assert_eq!(y.tree().order(), want.ndim());
    let vnorm: f64 = vs
        .iter()
        .flatten()
        .map(|v| nrm(&v.clone().into_dyn()))
        .product();
    let tol = roundoff::<T>(xd.len()) * nrm(&xd) * vnorm;
    assert_within(dist(&y.to_dense(), &want), tol, &ctx);

    // contract_all against the multilinear form summed entry by entry.
    let all: Vec<Array1<T>> = (0..d)
        .map(|k| vector::<T>(shape[k], seed ^ (k as u64 + 99)))
        .collect();
    let views: Vec<_> = all.iter().map(|v| v.view()).collect();
    let got = x.contract_all(&views).unwrap().as_f64();
    let want: f64 = xd
        .indexed_iter()
        .map(|(i, &v)| (0..d).fold(v.as_f64(), |acc, k| acc * all[k][i[k]].as_f64()))
        .sum();
    let anorm: f64 = all.iter().map(|v| nrm(&v.clone().into_dyn())).product();
    assert_within(
        (got - want).abs(),
        roundoff::<T>(xd.len()) * nrm(&xd) * anorm,
        "contract_all",
    );
}

fn check_entries<T: Scalar>(shape: &[usize], tree: &DimTree, rank: usize, seed: u64) {
    let x = HtTensor::<T>::random(tree, shape, rank, seed).unwrap();
    let xd = x.to_dense();
    let tol = roundoff::<T>(xd.len()) * nrm(&xd);
    let idx: Vec<Vec<usize>> = xd.indexed_iter().map(|(i, _)| i.slice().to_vec()).collect();
    for i in &idx {
        let e = x.entry(i).unwrap();
        assert_within(
            (e - xd[IxDyn(i)]).as_f64().abs(),
            tol,
            &format!("entry {i:?}"),
        );
    }
    let d = shape.len();
    let table = Array2::from_shape_fn((idx.len(), d), |(r, c)| idx[r][c]);
    let got = x.entries(table.view()).unwrap();
    // Also through a non-contiguous (transposed twice, column-major) view.
    let fortran = table.t().to_owned().reversed_axes();
    assert_eq!(x.entries(fortran.view()).unwrap(), got);
    for (g, (_, &w)) in got.iter().zip(xd.indexed_iter()) {
        assert_within((*g - w).as_f64().abs(), tol, "entries");
    }
}

fn check_orthogonalize<T: Scalar>(shape: &[usize], tree: &DimTree, rank: usize, seed: u64) {
    let (a, b) = pair::<T>(shape, tree, rank, seed);
    let x = a.add(&b.scale(T::cast(3.0))).unwrap(); // non-orthogonal, redundant ranks
    let xd = x.to_dense();
    let y = orthogonalize(&x);
    let n = xd.len();
    let ctx = format!("{shape:?} on {tree}");
    assert_within(
        dist(&y.to_dense(), &xd),
        roundoff::<T>(n) * nrm(&xd),
        &format!("orthogonalize changes the tensor {ctx}"),
    );
    let otol = roundoff::<T>(y.n_params());
    for t in tree.pre_order().filter(|&t| t != tree.root()) {
        match y.node(t) {
            HtNode::Leaf(u) => assert_within(orth_defect(u), otol, &format!("leaf {t} {ctx}")),
            HtNode::Transfer(bt) => {
                let (kl, kr, kt) = bt.dim();
                let m = bt
                    .as_standard_layout()
                    .into_owned()
                    .into_shape_with_order((kl * kr, kt))
                    .unwrap();
                assert_within(orth_defect(&m), otol, &format!("transfer {t} {ctx}"));
            }
        }
        assert_within(orth_defect(&y.frame(t)), otol, &format!("frame {t} {ctx}"));
        assert!(y.ranks()[t] <= x.ranks()[t]);
    }
    let root_norm = match y.node(tree.root()) {
        HtNode::Leaf(u) => nrm(&u.clone().into_dyn()),
        HtNode::Transfer(b) => nrm(&b.clone().into_dyn()),
    };
    assert_within(
        (root_norm - nrm(&xd)).abs(),
        roundoff::<T>(n) * nrm(&xd),
        "norm lives in the root",
    );
}

fn check_gramians<T: Scalar>(shape: &[usize], tree: &DimTree, rank: usize, seed: u64) {
    let (a, b) = pair::<T>(shape, tree, rank, seed);
    let x = a.add(&b).unwrap();
    let xd = x.to_dense();
    let (y, g) = gramians(&x).unwrap();
    let n = xd.len();
    assert_within(
        dist(&y.to_dense(), &xd),
        roundoff::<T>(n) * nrm(&xd),
        "gramians' tensor",
    );
    assert_eq!(g.len(), tree.n_nodes());
    assert_eq!(g[tree.root()], Array2::from_elem((1, 1), T::one()));
    let s1 = nrm(&xd);
    for t in tree.pre_order().filter(|&t| t != tree.root()) {
        let gt = &g[t];
        assert_eq!(gt.dim(), (y.ranks()[t], y.ranks()[t]));
        let asym = nrm(&(gt - &gt.t()).into_dyn());
        assert_within(asym, roundoff::<T>(gt.len()) * s1 * s1, "Gramian symmetric");
        // A symmetric PSD matrix's singular values are its eigenvalues.
        let lam: Vec<f64> = svd(gt.view(), MatrixTruncation::exact(), false)
            .unwrap()
            .singular_values
            .iter()
            .map(|v| v.as_f64())
            .collect();
        let sig = dense_sv(&xd, tree, t);
        for i in 0..lam.len().max(sig.len()) {
            let l = lam.get(i).copied().unwrap_or(0.0);
            let s2 = sig.get(i).map_or(0.0, |s| s * s);
            assert_within(
                (l - s2).abs(),
                roundoff::<T>(n) * s1 * s1,
                &format!("eigenvalue {i} of G_{t} vs sigma^2 on {shape:?} {tree}"),
            );
        }
    }
}

fn check_frames<T: Scalar>(shape: &[usize], tree: &DimTree, rank: usize, seed: u64) {
    let x = HtTensor::<T>::random(tree, shape, rank, seed).unwrap();
    let xd = x.to_dense();
    let n = xd.len();
    let ctx = format!("{shape:?} on {tree}");
    for t in tree.pre_order() {
        let f = x.frame(t);
        let nt: usize = tree.modes(t).iter().map(|&m| shape[m]).product();
        assert_eq!(f.dim(), (nt, x.ranks()[t]), "frame size {ctx}");
        match tree.children(t) {
            None => assert_eq!(
                f.view(),
                match x.node(t) {
                    HtNode::Leaf(u) => u.view(),
                    HtNode::Transfer(_) => unreachable!(),
                }
            ),
            Some((l, r)) => {
                // U_t[(i, j), c] = sum_{a,b} U_l[i, a] U_r[j, b] B_t[a, b, c], term by term.
                let (fl, fr) = (x.frame(l), x.frame(r));
                let HtNode::Transfer(b) = x.node(t) else {
                    unreachable!()
                };
                let (kl, kr, kt) = b.dim();
                let want = Array2::from_shape_fn((fl.nrows() * fr.nrows(), kt), |(row, c)| {
                    let (i, j) = (row / fr.nrows(), row % fr.nrows());
                    let mut acc = T::zero();
                    for a in 0..kl {
                        for bb in 0..kr {
                            acc += fl[[i, a]] * fr[[j, bb]] * b[[a, bb, c]];
                        }
                    }
                    acc
                });
                let scale = nrm(&want.clone().into_dyn()).max(f64::MIN_POSITIVE);
                assert_within(
                    dist(&f.into_dyn(), &want.into_dyn()),
                    roundoff::<T>(n) * scale,
                    &format!("frame {t} {ctx}"),
                );
            }
        }
    }
    // The root frame is the tensor, as a column over the modes in tree order.
    let col = unfold_modes(xd.view(), tree.modes(tree.root())).unwrap();
    assert_within(
        dist(&x.frame(tree.root()).into_dyn(), &col.into_dyn()),
        roundoff::<T>(n) * nrm(&xd),
        "root frame",
    );
    // Orthogonalised frames hold the column space of every matricization.
    let y = orthogonalize(&x);
    for t in tree.pre_order().filter(|&t| t != tree.root()) {
        let f = y.frame(t);
        let m = unfold_modes(xd.view(), tree.modes(t)).unwrap();
        let proj = f.dot(&f.t().dot(&m));
        assert_within(
            dist(&proj.into_dyn(), &m.into_dyn()),
            roundoff::<T>(n) * nrm(&xd),
            &format!("frame {t} spans X^(t) {ctx}"),
        );
    }
}

fn check_truncate_sum(
    shape: &[usize],
    tree: &DimTree,
    rank: usize,
    terms: usize,
    eps: f64,
    seed: u64,
) {
    let xs: Vec<HtTensor<f64>> = (0..terms)
        .map(|i| {
            HtTensor::random(tree, shape, rank, seed.wrapping_add(i as u64))
                .unwrap()
                .scale(1.0 + i as f64)
        })
        .collect();
    let refs: Vec<&HtTensor<f64>> = xs.iter().collect();
    let sum = xs
        .iter()
        .fold(ArrayD::zeros(IxDyn(shape)), |acc, x| acc + x.to_dense());
    let ns = nrm(&sum);
    let slack = roundoff::<f64>(sum.len()) * ns;
    let ctx = format!("truncate_sum of {terms} on {shape:?} {tree} eps {eps}");
    let (y, info) = truncate_sum(&refs, &Truncation::rel(eps)).unwrap();
    let err = dist(&sum, &y.to_dense());
    assert_within(err, eps * ns + slack, &ctx);
    assert_within(err, info.error_bound + slack, &format!("{ctx}: bound"));
    assert_within((info.input_norm - ns).abs(), slack, "input norm");
    // Against truncating the dense sum: the same singular values per node, and (away from
    // round-off-level values) the same ranks as root-to-leaves HT-SVD of the dense sum.
    for t in tree.pre_order().filter(|&t| t != tree.root()) {
        let sig = dense_sv(&sum, tree, t);
        let got = &info.singular_values[t];
        for i in 0..got.len().max(sig.len()) {
            let a = got.get(i).copied().unwrap_or(0.0);
            let b = sig.get(i).copied().unwrap_or(0.0);
            assert_within(
                (a - b).abs(),
                slack,
                &format!("{ctx}: sigma_{i} at node {t}"),
            );
        }
    }
    if eps >= 1e-6 && shape.len() >= 2 {
        let (z, zinfo) =
            ht_svd(sum.view(), tree, &Truncation::rel(eps), Sweep::RootToLeaves).unwrap();
        assert_eq!(y.ranks(), z.ranks(), "{ctx}: ranks vs dense HT-SVD");
        assert_within(
            (info.error_bound - zinfo.error_bound).abs(),
            slack,
            "same discarded norm",
        );
    }
    // Fixed ranks: every rank at most r; error within the summed per-node tails.
    let (y, info) = truncate_sum(&refs, &Truncation::rank(rank)).unwrap();
    assert!(y.max_rank() <= rank);
    assert_within(
        dist(&sum, &y.to_dense()),
        info.error_bound + slack,
        &format!("{ctx}: rank bound"),
    );
}

// ---------------------------------------------------------------- properties

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, .. ProptestConfig::default() })]

    /// add, sub, scale, hadamard, inner, inner_dense, norm and norm_diff agree with the
    /// dense computation, and ranks add / multiply as documented (f64).
    #[test]
    fn linear_ops_f64((shape, tree) in shape_and_tree(1..=5, 1..=5, 1200), rank in 1usize..4, seed in any::<u64>()) {
        check_linear_ops::<f64>(&shape, &tree, rank, seed);
    }

    /// norm_diff(x, x + 1e-10 y) is accurate to round-off of ||x||, far below the
    /// sqrt(eps) floor of the expanded formula (f64).
    #[test]
    fn norm_diff_of_near_tensors_f64((shape, tree) in shape_and_tree(1..=5, 1..=5, 1200), rank in 1usize..4, seed in any::<u64>()) {
        check_norm_diff_near::<f64>(&shape, &tree, rank, seed);
    }

    /// mode_product agrees with the entrywise dense mode product on every mode (f64).
    #[test]
    fn mode_product_f64((shape, tree) in shape_and_tree(1..=4, 1..=5, 600), rank in 1usize..4, j in 1usize..4, seed in any::<u64>()) {
        check_mode_product::<f64>(&shape, &tree, rank, j, seed);
    }

    /// contract (any subset of modes, at least one left) and contract_all agree with the
    /// dense contraction (f64).
    #[test]
    fn contract_f64((shape, tree) in shape_and_tree(1..=5, 1..=5, 1200), rank in 1usize..4, mask in any::<u64>(), seed in any::<u64>()) {
        check_contract::<f64>(&shape, &tree, rank, mask, seed);
    }

    /// entry and entries agree with to_dense at every index (f64).
    #[test]
    fn entries_f64((shape, tree) in shape_and_tree(1..=4, 1..=4, 200), rank in 1usize..4, seed in any::<u64>()) {
        check_entries::<f64>(&shape, &tree, rank, seed);
    }

    /// orthogonalize keeps the tensor and makes leaf bases, transfer reshapes and frames
    /// below the root orthonormal (f64).
    #[test]
    fn orthogonalize_f64((shape, tree) in shape_and_tree(1..=5, 1..=5, 1200), rank in 1usize..4, seed in any::<u64>()) {
        check_orthogonalize::<f64>(&shape, &tree, rank, seed);
    }

    /// The eigenvalues of the reduced Gramians are the squared singular values of the
    /// dense matricizations (f64).
    #[test]
    fn gramians_f64((shape, tree) in shape_and_tree(2..=5, 1..=5, 1200), rank in 1usize..4, seed in any::<u64>()) {
        check_gramians::<f64>(&shape, &tree, rank, seed);
    }

    /// frame(t) = (U_l ⊗ U_r) B_t term by term, the root frame is the tensor, and
    /// orthogonal frames span the matricizations (f64).
    #[test]
    fn frames_f64((shape, tree) in shape_and_tree(1..=4, 1..=5, 600), rank in 1usize..4, seed in any::<u64>()) {
        check_frames::<f64>(&shape, &tree, rank, seed);
    }

    /// truncate_sum meets its tolerance and bound against the dense sum, sees the dense
    /// sum's singular values, and picks the ranks HT-SVD of the dense sum picks.
    #[test]
    fn truncate_sum_vs_dense((shape, tree) in shape_and_tree(1..=5, 2..=5, 1200), rank in 1usize..4, terms in 1usize..4, eps in prop_oneof![Just(0.0), 1e-6f64..0.6], seed in any::<u64>()) {
        check_truncate_sum(&shape, &tree, rank, terms, eps, seed);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    /// The arithmetic checks in f32.
    #[test]
    fn linear_ops_f32((shape, tree) in shape_and_tree(1..=4, 1..=5, 600), rank in 1usize..4, seed in any::<u64>()) {
        check_linear_ops::<f32>(&shape, &tree, rank, seed);
        check_norm_diff_near::<f32>(&shape, &tree, rank, seed);
    }

    /// mode_product, contract, entries in f32.
    #[test]
    fn contractions_f32((shape, tree) in shape_and_tree(1..=4, 1..=4, 200), rank in 1usize..4, mask in any::<u64>(), seed in any::<u64>()) {
        check_mode_product::<f32>(&shape, &tree, rank, 2, seed);
        check_contract::<f32>(&shape, &tree, rank, mask, seed);
        check_entries::<f32>(&shape, &tree, rank, seed);
    }

    /// orthogonalize, gramians and frames in f32.
    #[test]
    fn orthogonal_forms_f32((shape, tree) in shape_and_tree(2..=4, 1..=5, 600), rank in 1usize..4, seed in any::<u64>()) {
        check_orthogonalize::<f32>(&shape, &tree, rank, seed);
        check_gramians::<f32>(&shape, &tree, rank, seed);
        check_frames::<f32>(&shape, &tree, rank, seed);
    }
}

// ---------------------------------------------------------------- targeted contractions

/// Contracting a whole child of the root, a leaf whose sibling is interior, and all modes
/// but one give the expected trees and the dense result.
#[test]
fn contract_structural_cases() {
    let tree: DimTree = "((0,1),(2,(3,4)))".parse().unwrap();
    let shape = [2, 3, 4, 3, 2];
    let x = HtTensor::<f64>::random(&tree, &shape, 3, 11).unwrap();
    let xd = x.to_dense();
    let cases: [(&[usize], &str); 5] = [
        (&[0, 1], "(0,(1,2))"),  // the root's left child entirely
        (&[2, 3, 4], "(0,1)"),   // the root's right child entirely
        (&[2], "((0,1),(2,3))"), // a leaf whose sibling (3,4) is interior
        (&[0, 1, 2, 4], "0"),    // all but mode 3
        (&[1, 3], "(0,(1,2))"),  // one leaf in each subtree
    ];
    for (modes, spec) in cases {
        let vs: Vec<Option<Array1<f64>>> = (0..5)
            .map(|k| {
                modes
                    .contains(&k)
                    .then(|| vector::<f64>(shape[k], 100 + k as u64))
            })
            .collect();
        let views: Vec<_> = vs.iter().map(|v| v.as_ref().map(|v| v.view())).collect();
        let y = x.contract(&views).unwrap();
        assert_eq!(y.tree().to_string(), spec, "contracting {modes:?}");
        assert_eq!(y.ranks()[0], 1);
        let want = dense_contract(&xd, &vs);
        assert_within(
            dist(&y.to_dense(), &want),
            1e-12 * nrm(&want).max(1.0),
            &format!("contracting {modes:?}"),
        );
    }
    // Nothing contracted: the same tensor.
    let none: Vec<Option<ndarray::ArrayView1<f64>>> = vec![None; 5];
    assert_eq!(x.contract(&none).unwrap(), x);
}

/// A linear tree: contracting the first modes leaves a linear tree over the rest.
#[test]
fn contract_on_linear_tree() {
    let tree = DimTree::linear(5).unwrap();
    let shape = [3, 2, 4, 2, 3];
    let x = HtTensor::<f64>::random(&tree, &shape, 2, 5).unwrap();
    let vs: Vec<Option<Array1<f64>>> = (0..5)
        .map(|k| (k < 2).then(|| vector::<f64>(shape[k], k as u64)))
        .collect();
    let views: Vec<_> = vs.iter().map(|v| v.as_ref().map(|v| v.view())).collect();
    let y = x.contract(&views).unwrap();
    assert_eq!(y.tree(), &DimTree::linear(3).unwrap());
    let want = dense_contract(&x.to_dense(), &vs);
    assert_within(
        dist(&y.to_dense(), &want),
        1e-12 * nrm(&want),
        "linear contraction",
    );
}
