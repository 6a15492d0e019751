//! Tensorized matrices: products against the dense reference, gradients against finite
//! differences, parameter counts against closed forms, decomposition, initialisation,
//! shapes and errors.
mod common;

use common::{assert_within, roundoff, tree_strategy};
use ndarray::{Array2, ArrayD};
use proptest::prelude::*;
use tnet::matrices::{
    DenseMatrix, Init, LinearMap, MatrixFormat, MatrixShape, TensorizedMatrix, factorizations,
    factorize, pad_to_factorable,
};
use tnet::{BtMatrix, HtMatrix, TrLayout, TrMatrix, TtMatrix};
use tnet::{DimTree, Error, Scalar, Truncation};

/// The formats under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Dense,
    Ht,
    Tt,
    TrPaired,
    TrSplit,
    Bt,
}

const KINDS: [Kind; 6] = [
    Kind::Dense,
    Kind::Ht,
    Kind::Tt,
    Kind::TrPaired,
    Kind::TrSplit,
    Kind::Bt,
];

fn make<T: Scalar>(
    kind: Kind,
    shape: &MatrixShape,
    tree: &DimTree,
    rank: usize,
    seed: u64,
) -> Box<dyn TensorizedMatrix<T>> {
    make_with(kind, shape, tree, rank, Init::Variance(1.0), seed)
}

fn make_with<T: Scalar>(
    kind: Kind,
    shape: &MatrixShape,
    tree: &DimTree,
    rank: usize,
    init: Init,
    seed: u64,
) -> Box<dyn TensorizedMatrix<T>> {
    match kind {
        Kind::Dense => Box::new(DenseMatrix::<T>::random(shape, &(), rank, init, seed).unwrap()),
        Kind::Ht => Box::new(HtMatrix::<T>::random(shape, tree, rank, init, seed).unwrap()),
        Kind::Tt => Box::new(TtMatrix::<T>::random(shape, &(), rank, init, seed).unwrap()),
        Kind::TrPaired => {
            Box::new(TrMatrix::<T>::random(shape, &TrLayout::Paired, rank, init, seed).unwrap())
        }
        Kind::TrSplit => {
            Box::new(TrMatrix::<T>::random(shape, &TrLayout::Split, rank, init, seed).unwrap())
        }
        Kind::Bt => Box::new(BtMatrix::<T>::random(shape, &2, rank, init, seed).unwrap()),
    }
}

fn matrix<T: Scalar>(rows: usize, cols: usize, seed: u64) -> Array2<T> {
    tnet::dense::random_normal::<T>(&[rows, cols], seed)
        .into_dimensionality()
        .unwrap()
}

fn rel(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
    tnet::dense::rel_error(b.view().into_dyn(), a.view().into_dyn()).unwrap()
}

/// Output modes, input modes (same order 1..=4, sizes 1..=4) and a tree over that order.
fn shape_strategy() -> impl Strategy<Value = (MatrixShape, DimTree)> {
    (1usize..=4)
        .prop_flat_map(|d| {
            (
                proptest::collection::vec(1usize..=4, d),
                proptest::collection::vec(1usize..=4, d),
                tree_strategy(d),
            )
        })
        .prop_map(|(m, n, t)| (MatrixShape::try_new(m, n).unwrap(), t))
}

fn kind_strategy() -> impl Strategy<Value = Kind> {
    proptest::sample::select(KINDS.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    /// Every draw of every format (HT on any tree, paired, split and Kronecker-split; TT;
    /// TR both layouts; BT), at every rank, has `||W||_F^2 = M N Var` to round-off, so the output variance
    /// of `X W^T` for isotropic unit-variance `X` is within 20 % of the dense Glorot
    /// target `N Var` (measured on 256 random rows), in f64 and f32.
    #[test]
    fn per_draw_variance_is_exact((shape, tree) in shape_strategy(), kind in kind_strategy(), rank in 1usize..=16, layout in 0usize..3, seed in any::<u64>()) {
        let (shape, tree) = match layout {
            1 if kind == Kind::Ht => (shape.split(), DimTree::balanced(2 * shape.order()).unwrap()),
            2 if kind == Kind::Ht => {
                let (shape, groups) = shape.kronecker_split();
                (shape, DimTree::from_groups(&groups).unwrap())
            }
            _ => (shape, tree),
        };
        let target = Init::Glorot.variance(shape.n_in(), shape.n_out()).unwrap();
        let mn = (shape.n_out() * shape.n_in()) as f64;
        let w = make_with::<f64>(kind, &shape, &tree, rank, Init::Glorot, seed);
        let fro2 = w.to_dense().iter().map(|v| v * v).sum::<f64>();
        prop_assert!((fro2 / (mn * target) - 1.0).abs() < 1e-10, "{kind:?} rank {rank}: ||W||^2 / (M N Var) = {}", fro2 / (mn * target));
        let w32 = make_with::<f32>(kind, &shape, &tree, rank, Init::Glorot, seed);
        let fro2 = w32.to_dense().iter().map(|v| (*v as f64).powi(2)).sum::<f64>();
        prop_assert!((fro2 / (mn * target) - 1.0).abs() < 1e-4, "{kind:?} rank {rank} f32: {}", fro2 / (mn * target));
        let x = matrix::<f64>(256, shape.n_in(), seed ^ 1);
        let y = w.apply(x.view()).unwrap();
        let var = y.iter().map(|v| v * v).sum::<f64>() / y.len() as f64;
        let glorot = shape.n_in() as f64 * target;
        // The sampling error of 256 rows: small unless M N is tiny, where one output
        // of few inputs fluctuates on its own; the exact identity above is the guarantee.
        if shape.n_in() * shape.n_out() >= 16 {
            prop_assert!((var / glorot - 1.0).abs() < 0.2 + 2.0 / (shape.n_in() as f64).sqrt(), "{kind:?} rank {rank}: output variance {var} vs {glorot}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    /// `balance` leaves `W` unchanged (to round-off) for every format, after the cores were
    /// scaled apart by factors up to 1e3, and leaves the cores of one product (all of them,
    /// or one BT block) with equal root-mean-square entries.
    #[test]
    fn balance_keeps_the_matrix((shape, tree) in shape_strategy(), kind in kind_strategy(), rank in 1usize..=3, seed in any::<u64>(), logs in proptest::collection::vec(-3.0f64..3.0, 16)) {
        let mut w = make::<f64>(kind, &shape, &tree, rank, seed);
        for (p, l) in w.params_mut().into_iter().zip(logs.iter().cycle()) {
            let s = 10f64.powf(*l);
            let mut p = p;
            p.mapv_inplace(|v| v * s);
        }
        let before = w.to_dense();
        w.balance();
        let after = w.to_dense();
        prop_assert!(rel(&after, &before) < 1e-12, "{kind:?}: W changed by {}", rel(&after, &before));
        let rms: Vec<f64> = w.params().iter().map(|p| (p.iter().map(|v| v * v).sum::<f64>() / p.len() as f64).sqrt()).collect();
        let group = match kind {
            Kind::Dense => 1,
            Kind::Bt => shape.order() + 1,
            _ => rms.len(),
        };
        if kind != Kind::Dense {
            for g in rms.chunks(group) {
                prop_assert!(g.iter().all(|r| (r / g[0] - 1.0).abs() < 1e-9), "{kind:?}: rms {g:?}");
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, .. ProptestConfig::default() })]

    /// For every format, shape, tree, rank and batch size (0 included), `apply` agrees with
    /// `X W^T` and `apply_transpose` with `dY W` for `W = to_dense()`, to 1e-10 in f64.
    #[test]
    fn products_match_dense((shape, tree) in shape_strategy(), kind in kind_strategy(), rank in 1usize..=3, batch in 0usize..=5, seed in any::<u64>()) {
        let w = make::<f64>(kind, &shape, &tree, rank, seed);
        let dense = w.to_dense();
        prop_assert_eq!(dense.dim(), (shape.n_out(), shape.n_in()));
        let x = matrix::<f64>(batch, shape.n_in(), seed ^ 1);
        let y = w.apply(x.view()).unwrap();
        prop_assert_eq!(y.dim(), (batch, shape.n_out()));
        if batch > 0 {
            assert_within(rel(&y, &x.dot(&dense.t())), 1e-10, &format!("{kind:?} apply {shape} {tree}"));
        }
        let dy = matrix::<f64>(batch, shape.n_out(), seed ^ 2);
        let dx = w.apply_transpose(dy.view()).unwrap();
        prop_assert_eq!(dx.dim(), (batch, shape.n_in()));
        if batch > 0 {
            assert_within(rel(&dx, &dy.dot(&dense)), 1e-10, &format!("{kind:?} transpose {shape} {tree}"));
        }
    }

    /// For every format, shape, tree and column range (any start and length, aligned to
    /// the modes or not), `column_block(start, len)` equals the columns `start..start+len`
    /// of `to_dense()` (f64 to 1e-12 relative, f32 to round-off); a range past the last
    /// column is an `InvalidParameter` error.
    #[test]
    fn column_blocks_match_dense((shape, tree) in shape_strategy(), kind in kind_strategy(), rank in 1usize..=3, a in 0.0f64..1.0, b in 0.0f64..1.0, seed in any::<u64>()) {
        let n = shape.n_in();
        let start = ((a * n as f64) as usize).min(n);
        let len = ((b * (n - start + 1) as f64) as usize).min(n - start);
        let w = make::<f64>(kind, &shape, &tree, rank, seed);
        let block = w.column_block(start, len).unwrap();
        prop_assert_eq!(block.dim(), (shape.n_out(), len));
        let want = w.to_dense().slice(ndarray::s![.., start..start + len]).to_owned();
        if len > 0 {
            assert_within(rel(&block, &want), 1e-12, &format!("{kind:?} columns {start}+{len} of {shape} {tree}"));
        }
        let w32 = make::<f32>(kind, &shape, &tree, rank, seed);
        let want32 = w32.to_dense().slice(ndarray::s![.., start..start + len]).to_owned();
        let got32 = w32.column_block(start, len).unwrap();
        for (g, e) in got32.iter().zip(&want32) {
            prop_assert!((g - e).abs() <= 1e-5 * (1.0 + e.abs()), "{kind:?} f32 {g} vs {e}");
        }
        let past = matches!(w.column_block(start, n - start + 1), Err(Error::InvalidParameter { .. }));
        prop_assert!(past, "range past the end accepted");
        let overflow = matches!(w.column_block(usize::MAX, 2), Err(Error::InvalidParameter { .. }));
        prop_assert!(overflow, "overflowing range accepted");
    }

    /// The backward pass returns `dX = dY W` and gradients shaped like the parameters, and
    /// the gradient of `<Y, G>` agrees with central finite differences for every parameter
    /// entry and every input entry (the loss is linear in each, so the differences are exact
    /// up to round-off).
    #[test]
    fn gradients_match_finite_differences((shape, tree) in shape_strategy(), kind in kind_strategy(), rank in 1usize..=3, batch in 1usize..=3, seed in any::<u64>()) {
        let mut w = make::<f64>(kind, &shape, &tree, rank, seed);
        let x = matrix::<f64>(batch, shape.n_in(), seed ^ 3);
        let g = matrix::<f64>(batch, shape.n_out(), seed ^ 4);
        let (dx, grads) = w.backward(x.view(), g.view()).unwrap();
        let params: Vec<ArrayD<f64>> = w.params().iter().map(|p| p.to_owned()).collect();
        prop_assert_eq!(grads.len(), params.len());
        let loss = |w: &dyn TensorizedMatrix<f64>, x: &Array2<f64>| (&w.apply(x.view()).unwrap() * &g).sum();
        let h = 1e-3;
        let scale = 1.0 + loss(w.as_ref(), &x).abs();
        for (c, p) in params.iter().enumerate() {
            prop_assert_eq!(grads[c].shape(), p.shape());
            for e in 0..p.len() {
                let set = |w: &mut Box<dyn TensorizedMatrix<f64>>, v: f64| {
                    let mut ps = w.params_mut();
                    *ps[c].iter_mut().nth(e).unwrap() = v;
                };
                let v0 = *p.iter().nth(e).unwrap();
                set(&mut w, v0 + h);
                let lp = loss(w.as_ref(), &x);
                set(&mut w, v0 - h);
                let lm = loss(w.as_ref(), &x);
                set(&mut w, v0);
                let fd = (lp - lm) / (2.0 * h);
                let an = *grads[c].iter().nth(e).unwrap();
                prop_assert!((fd - an).abs() <= 1e-8 * scale, "{kind:?} {shape} core {c} entry {e}: fd {fd} vs {an}");
            }
        }
        for e in 0..x.len() {
            let mut xp = x.clone();
            *xp.iter_mut().nth(e).unwrap() += h;
            let mut xm = x.clone();
            *xm.iter_mut().nth(e).unwrap() -= h;
            let fd = (loss(w.as_ref(), &xp) - loss(w.as_ref(), &xm)) / (2.0 * h);
            let an = *dx.iter().nth(e).unwrap();
            prop_assert!((fd - an).abs() <= 1e-8 * scale, "{kind:?} dX entry {e}: fd {fd} vs {an}");
        }
    }

    /// Parameter counts agree with the closed forms: TT `Σ r_{k-1} m_k n_k r_k`, HT
    /// `Σ n_k m_k r_k + Σ_interior r_l r_r r_t`, TR `Σ r_{k-1} (modes) r_k`, BT
    /// `N_b (Σ n_k m_k R_k + Π R_k)`.
    #[test]
    fn parameter_counts((shape, tree) in shape_strategy(), rank in 1usize..=4, blocks in 1usize..=3, seed in any::<u64>()) {
        let d = shape.order();
        let (m, n) = (shape.out_modes(), shape.in_modes());
        let tt = TtMatrix::<f64>::random(&shape, &(), rank, Init::He, seed).unwrap();
        let r = tt.ranks();
        let expect: usize = (0..d).map(|k| r[k] * m[k] * n[k] * r[k + 1]).sum();
        prop_assert_eq!(tt.n_params(), expect);
        let ht = HtMatrix::<f64>::random(&shape, &tree, rank, Init::He, seed).unwrap();
        let r = ht.ranks();
        let mut expect = 0;
        for t in tree.pre_order() {
            expect += match tree.children(t) {
                None => { let k = tree.modes(t)[0]; n[k] * m[k] * r[t] }
                Some((l, rr)) => r[l] * r[rr] * r[t],
            };
        }
        prop_assert_eq!(ht.n_params(), expect);
        for layout in [TrLayout::Paired, TrLayout::Split] {
            let tr = TrMatrix::<f64>::random(&shape, &layout, rank, Init::He, seed).unwrap();
            let r = tr.ranks();
            let c = r.len();
            let modes: Vec<usize> = match layout {
                TrLayout::Paired => (0..d).map(|k| m[k] * n[k]).collect(),
                TrLayout::Split => n.iter().chain(m).copied().collect(),
            };
            let expect: usize = (0..c).map(|k| r[k] * modes[k] * r[(k + 1) % c]).sum();
            prop_assert_eq!(tr.n_params(), expect);
        }
        let bt = BtMatrix::<f64>::random(&shape, &blocks, rank, Init::He, seed).unwrap();
        let rr = bt.ranks();
        let expect = blocks * ((0..d).map(|k| n[k] * m[k] * rr[k]).sum::<usize>() + rr.iter().product::<usize>());
        prop_assert_eq!(bt.n_params(), expect);
        let dense = DenseMatrix::<f64>::random(&shape, &(), 1, Init::He, seed).unwrap();
        prop_assert_eq!(dense.n_params(), shape.n_in() * shape.n_out());
    }

    /// A matrix built with the structure of a format is recovered by that format's
    /// `from_dense` to 1e-10, with an error bound that says so: HT and TT at the ranks it was
    /// built with (or lower), TR to a tolerance.
    #[test]
    fn from_dense_recovers_structure((shape, tree) in shape_strategy(), rank in 1usize..=3, seed in any::<u64>()) {
        let rule = Truncation::rank(rank);
        let ht = HtMatrix::<f64>::random(&shape, &tree, rank, Init::He, seed).unwrap();
        let w = ht.to_dense();
        let (back, info) = HtMatrix::from_dense(w.view(), &shape, &tree, &rule).unwrap();
        assert_within(rel(&back.to_dense(), &w), 1e-10, &format!("HT {shape} {tree}"));
        prop_assert!(info.rel_error_bound() <= 1e-10);
        let tt = TtMatrix::<f64>::random(&shape, &(), rank, Init::He, seed).unwrap();
        let w = tt.to_dense();
        let (back, _) = TtMatrix::from_dense(w.view(), &shape, &(), &rule).unwrap();
        assert_within(rel(&back.to_dense(), &w), 1e-10, &format!("TT {shape}"));
        prop_assert!(back.ranks().iter().zip(tt.ranks()).all(|(a, b)| *a <= b));
        // TR-SVD recovers a ring matrix exactly, but not necessarily at its ring ranks (the
        // first SVD mixes the two boundary bonds): decompose to a tiny tolerance.
        for layout in [TrLayout::Paired, TrLayout::Split] {
            let tr = TrMatrix::<f64>::random(&shape, &layout, rank, Init::He, seed).unwrap();
            let w = tr.to_dense();
            let (back, info) = TrMatrix::from_dense(w.view(), &shape, &layout, &Truncation::rel(1e-13)).unwrap();
            assert_within(rel(&back.to_dense(), &w), 1e-10, &format!("TR {layout:?} {shape}"));
            prop_assert!(info.rel_error_bound() <= 1e-10);
        }
    }

    /// Decomposition of an unstructured matrix under a relative tolerance meets it
    /// (HT, TT, TR), and the returned bound bounds the achieved error.
    #[test]
    fn from_dense_tolerance((shape, tree) in shape_strategy(), eps in 0.0f64..0.8, seed in any::<u64>()) {
        let w = matrix::<f64>(shape.n_out(), shape.n_in(), seed);
        let rule = Truncation::rel(eps);
        let slack = roundoff::<f64>(w.len());
        let (ht, info) = HtMatrix::from_dense(w.view(), &shape, &tree, &rule).unwrap();
        let e = rel(&ht.to_dense(), &w);
        assert_within(e, eps + slack, "HT tolerance");
        assert_within(e, info.rel_error_bound() + slack, "HT bound");
        let (tt, info) = TtMatrix::from_dense(w.view(), &shape, &(), &rule).unwrap();
        let e = rel(&tt.to_dense(), &w);
        assert_within(e, eps + slack, "TT tolerance");
        assert_within(e, info.rel_error_bound() + slack, "TT bound");
        for layout in [TrLayout::Paired, TrLayout::Split] {
            let (tr, info) = TrMatrix::from_dense(w.view(), &shape, &layout, &rule).unwrap();
            let e = rel(&tr.to_dense(), &w);
            assert_within(e, eps + slack, "TR tolerance");
            assert_within(e, info.rel_error_bound() + slack, "TR bound");
        }
    }

    /// `pad_to_factorable` returns the smallest length >= len with d factors <= max_factor
    /// (checked by brute force), and its factors multiply to it.
    #[test]
    fn padding_is_minimal(len in 1usize..5000, d in 1usize..=4, max_factor in 2usize..=12) {
        let cap = (max_factor as f64).powi(d as i32);
        match pad_to_factorable(len, d, max_factor) {
            Err(_) => prop_assert!(cap < len as f64),
            Ok(p) => {
                prop_assert_eq!(p.factors.iter().product::<usize>(), p.padded_len);
                prop_assert!(p.factors.iter().all(|&f| f <= max_factor));
                prop_assert_eq!(p.padding, p.padded_len - len);
                for l in len..p.padded_len {
                    prop_assert!(factorizations(l, d, max_factor).unwrap().is_empty(), "{l} factors");
                }
            }
        }
    }

    /// Every proposed factorization has d non-increasing factors multiplying to the length,
    /// the first one is the most balanced, and `factorize` returns it.
    #[test]
    fn factorizations_are_valid(len in 1usize..20_000, d in 1usize..=5) {
        let all = factorizations(len, d, usize::MAX).unwrap();
        prop_assert!(!all.is_empty());
        let spread = |f: &Vec<usize>| f.iter().map(|&x| (x as f64).ln().powi(2)).sum::<f64>();
        for f in &all {
            prop_assert_eq!(f.len(), d);
            prop_assert_eq!(f.iter().product::<usize>(), len);
            prop_assert!(f.windows(2).all(|w| w[0] >= w[1]));
            prop_assert!(spread(&all[0]) <= spread(f) + 1e-12);
        }
        prop_assert_eq!(factorize(len, d).unwrap(), all[0].clone());
    }
}

/// The TT-LSTM and BT-LSTM input layers of the UCF11 setting (input 8x20x20x18 = 57,600,
/// output 4 gates x 256 = 1,024): the published counts 3,360 (TT, ranks 4) and 3,392 (BT,
/// R = 4, 2 blocks) come out exactly with the gate factor on the first output mode, i.e.
/// output modes 16x4x4x4; output modes 4x4x8x8 give other counts.
#[test]
fn ucf11_parameter_counts() {
    let shape = MatrixShape::try_new(vec![16, 4, 4, 4], vec![8, 20, 20, 18]).unwrap();
    assert_eq!((shape.n_out(), shape.n_in()), (1024, 57_600));
    let tt = TtMatrix::<f32>::random(&shape, &(), 4, Init::Glorot, 1).unwrap();
    assert_eq!(tt.ranks(), vec![1, 4, 4, 4, 1]);
    assert_eq!(tt.n_params(), 3_360);
    let bt = BtMatrix::<f32>::random(&shape, &2, 4, Init::Glorot, 1).unwrap();
    assert_eq!(bt.n_params(), 3_392);
    let other = MatrixShape::try_new(vec![4, 4, 8, 8], vec![8, 20, 20, 18]).unwrap();
    let tt = TtMatrix::<f32>::random(&other, &(), 4, Init::Glorot, 1).unwrap();
    assert_eq!(tt.n_params(), 128 + 1_280 + 2_560 + 576);
    let bt = BtMatrix::<f32>::random(&other, &2, 4, Init::Glorot, 1).unwrap();
    assert_eq!(bt.n_params(), 2 * (4 * (32 + 80 + 160 + 144) + 256));
    // Compression of the dense layer: 57,600 x 1,024 = 58,982,400 weights.
    assert!(tt.compression_ratio() > 10_000.0);
}

/// The block-term fit recovers a Tucker matrix (one block) exactly, and most random
/// two-block matrices (at least 6 of 8; alternating least squares may stall in a swamp) to
/// 1e-8; the reported error is the achieved one and never exceeds that of a single
/// truncated HOSVD of the same ranks.
#[test]
fn bt_from_dense_recovers_structure() {
    let shape = MatrixShape::try_new(vec![3, 4, 2], vec![4, 3, 5]).unwrap();
    let rule = Truncation::rank(2).with_rel_eps(1e-11);
    let tucker = BtMatrix::<f64>::random(&shape, &1, 2, Init::He, 1).unwrap();
    let w = tucker.to_dense();
    let (back, info) = BtMatrix::from_dense(w.view(), &shape, &1, &rule).unwrap();
    assert_within(rel(&back.to_dense(), &w), 1e-10, "BT with one block");
    assert!(info.rel_error_bound() <= 1e-10);
    let mut recovered = 0;
    for seed in 1..=8u64 {
        let bt = BtMatrix::<f64>::random(&shape, &2, 2, Init::He, seed).unwrap();
        let w = bt.to_dense();
        let (back, info) = BtMatrix::from_dense(w.view(), &shape, &2, &rule).unwrap();
        let e = rel(&back.to_dense(), &w);
        assert_within(
            (info.rel_error_bound() - e).abs(),
            1e-12,
            "BT reported error is the achieved one",
        );
        let (one, _) = BtMatrix::fit(w.view(), &shape, 1, &rule, 0).unwrap();
        assert!(
            e <= rel(&one.to_dense(), &w),
            "seed {seed}: two blocks worse than one HOSVD block"
        );
        assert_eq!(back.ranks(), vec![2, 2, 2]);
        if e <= 1e-8 {
            recovered += 1;
        }
    }
    assert!(
        recovered >= 6,
        "only {recovered} of 8 two-block matrices recovered"
    );
    // A tolerance alone: the smallest block rank meeting it (the fit reports its runs).
    let w = matrix::<f64>(24, 60, 1);
    let (back, info) = BtMatrix::from_dense(w.view(), &shape, &2, &Truncation::rel(0.5)).unwrap();
    let e = rel(&back.to_dense(), &w);
    assert!(
        e <= 0.5 + 1e-12 && (info.rel_error_bound() - e).abs() <= 1e-12,
        "{e}"
    );
    let fit = info.fit.expect("a fit reports its runs");
    assert!(fit.trials >= 1);
    // A zero rank is refused.
    assert!(matches!(
        BtMatrix::from_dense(w.view(), &shape, &2, &Truncation::rank(0)),
        Err(Error::InvalidParameter { .. })
    ));
}

/// Random initialisation: the entries of `W` have the requested variance (Glorot, He, or
/// given), within 20% on the average of `||W||^2 / (M N)` over 64 seeds, for every format
/// (each draw is normalised, see `per_draw_variance_is_exact`).
#[test]
fn initialisation_variance() {
    let shape = MatrixShape::try_new(vec![6, 5, 4], vec![5, 6, 7]).unwrap();
    let tree = DimTree::balanced(3).unwrap();
    for init in [Init::Glorot, Init::He, Init::Variance(0.37)] {
        let target = init.variance(shape.n_in(), shape.n_out()).unwrap();
        for kind in KINDS {
            let seeds = 64;
            let mean: f64 = (0..seeds)
                .map(|s| {
                    let w = match kind {
                        Kind::Dense => {
                            Box::new(DenseMatrix::<f64>::random(&shape, &(), 1, init, s).unwrap())
                                as Box<dyn TensorizedMatrix<f64>>
                        }
                        Kind::Ht => Box::new(HtMatrix::random(&shape, &tree, 4, init, s).unwrap()),
                        Kind::Tt => Box::new(TtMatrix::random(&shape, &(), 4, init, s).unwrap()),
                        Kind::TrPaired => Box::new(
                            TrMatrix::random(&shape, &TrLayout::Paired, 4, init, s).unwrap(),
                        ),
                        Kind::TrSplit => Box::new(
                            TrMatrix::random(&shape, &TrLayout::Split, 4, init, s).unwrap(),
                        ),
                        Kind::Bt => Box::new(BtMatrix::random(&shape, &2, 3, init, s).unwrap()),
                    };
                    let d = w.to_dense();
                    d.iter().map(|v| v * v).sum::<f64>() / d.len() as f64
                })
                .sum::<f64>()
                / seeds as f64;
            let ratio = mean / target;
            assert!(
                (0.8..=1.2).contains(&ratio),
                "{kind:?} {init:?}: empirical variance {mean:e} vs target {target:e} (ratio {ratio})"
            );
        }
    }
    assert!(Init::Variance(-1.0).variance(3, 4).is_err());
    assert!(Init::Variance(f64::NAN).variance(3, 4).is_err());
}

/// f32 works: products agree with the f32 dense reference to single-precision round-off,
/// and gradients agree with those computed in f64 from the same cores.
#[test]
fn single_precision() {
    let shape = MatrixShape::try_new(vec![4, 3, 2], vec![3, 5, 4]).unwrap();
    let tree = DimTree::balanced(3).unwrap();
    for kind in KINDS {
        let w32 = make::<f32>(kind, &shape, &tree, 3, 5);
        let w64 = make::<f64>(kind, &shape, &tree, 3, 5);
        let x = matrix::<f64>(4, shape.n_in(), 6);
        let g = matrix::<f64>(4, shape.n_out(), 7);
        let y32 = w32
            .apply(x.mapv(|v| v as f32).view())
            .unwrap()
            .mapv(f64::from);
        let y64 = w64.apply(x.view()).unwrap();
        let tol = 50.0 * roundoff::<f32>(shape.n_in());
        assert_within(rel(&y32, &y64), tol, &format!("{kind:?} f32 apply"));
        let (dx32, g32) = w32
            .backward(x.mapv(|v| v as f32).view(), g.mapv(|v| v as f32).view())
            .unwrap();
        let (dx64, g64) = w64.backward(x.view(), g.view()).unwrap();
        assert_within(
            rel(&dx32.mapv(f64::from), &dx64),
            tol,
            &format!("{kind:?} f32 dX"),
        );
        for (a, b) in g32.iter().zip(&g64) {
            let e = tnet::dense::rel_error(b.view(), a.mapv(f64::from).view()).unwrap();
            assert_within(e, tol, &format!("{kind:?} f32 core gradient"));
        }
    }
}

/// Wrong shapes and invalid parts are clean errors, never panics.
#[test]
fn shape_errors() {
    let shape = MatrixShape::try_new(vec![4, 3], vec![3, 5]).unwrap();
    let tree = DimTree::balanced(2).unwrap();
    for kind in KINDS {
        let w = make::<f64>(kind, &shape, &tree, 2, 1);
        let bad_x = matrix::<f64>(2, 14, 1);
        assert!(matches!(
            w.apply(bad_x.view()),
            Err(Error::ShapeMismatch { .. })
        ));
        assert!(matches!(
            w.apply_transpose(bad_x.view()),
            Err(Error::ShapeMismatch { .. })
        ));
        let x = matrix::<f64>(2, 15, 1);
        let dy = matrix::<f64>(3, 12, 1);
        assert!(matches!(
            w.backward(x.view(), dy.view()),
            Err(Error::ShapeMismatch { .. })
        ));
        let dy = matrix::<f64>(2, 11, 1);
        assert!(matches!(
            w.backward(x.view(), dy.view()),
            Err(Error::ShapeMismatch { .. })
        ));
    }
    // Shapes.
    assert!(matches!(
        MatrixShape::try_new(vec![4, 0], vec![3, 5]),
        Err(Error::Empty { .. })
    ));
    assert!(matches!(
        MatrixShape::try_new(vec![], vec![]),
        Err(Error::Empty { .. })
    ));
    assert!(matches!(
        MatrixShape::try_new(vec![4], vec![3, 5]),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(MatrixShape::try_new(vec![usize::MAX, 2], vec![1, 1]).is_err());
    assert!(MatrixShape::for_lengths(12, 16, &[4, 3], &[3, 5]).is_err());
    assert!(factorize(0, 2).is_err() && factorize(5, 0).is_err());
    assert!(pad_to_factorable(1000, 2, 10).is_err()); // 10^2 < 1000
    assert!(pad_to_factorable(10, 2, 1).is_err());
    // from_dense with a W of the wrong size or with NaN.
    let w = matrix::<f64>(12, 14, 1);
    assert!(matches!(
        HtMatrix::from_dense(w.view(), &shape, &tree, &Truncation::rank(2)),
        Err(Error::ShapeMismatch { .. })
    ));
    let mut w = matrix::<f64>(12, 15, 1);
    w[[3, 4]] = f64::NAN;
    assert!(matches!(
        TtMatrix::from_dense(w.view(), &shape, &(), &Truncation::rank(2)),
        Err(Error::NonFinite { .. })
    ));
    let w = matrix::<f64>(12, 15, 1);
    assert!(
        TrMatrix::from_dense(w.view(), &shape, &TrLayout::Split, &Truncation::rel(-1.0)).is_err()
    );
    assert!(
        HtMatrix::from_dense(
            w.view(),
            &shape,
            &DimTree::balanced(3).unwrap(),
            &Truncation::rank(2)
        )
        .is_err()
    );
    // Cores that do not fit.
    let tt = TtMatrix::<f64>::random(&shape, &(), 2, Init::He, 1).unwrap();
    let mut cores = tt.cores().to_vec();
    cores.swap(0, 1);
    assert!(TtMatrix::try_new(shape.clone(), cores).is_err());
    let mut cores = tt.cores().to_vec();
    cores[1] = ArrayD::zeros(ndarray::IxDyn(&[2, 3, 4, 1]));
    assert!(matches!(
        TtMatrix::try_new(shape.clone(), cores),
        Err(Error::ShapeMismatch { .. })
    ));
    let mut cores = tt.cores().to_vec();
    cores[0][[0, 0, 0, 0]] = f64::INFINITY;
    assert!(matches!(
        TtMatrix::try_new(shape.clone(), cores),
        Err(Error::NonFinite { .. })
    ));
    assert!(TtMatrix::<f64>::try_new(shape.clone(), vec![]).is_err());
    let ht = HtMatrix::<f64>::random(&shape, &tree, 2, Init::He, 1).unwrap();
    let mut cores = ht.cores().to_vec();
    cores[0] = ArrayD::zeros(ndarray::IxDyn(&[2, 2, 2])); // root rank 2
    assert!(matches!(
        HtMatrix::try_new(shape.clone(), tree.clone(), cores),
        Err(Error::InvalidRank { .. })
    ));
    let tr = TrMatrix::<f64>::random(&shape, &TrLayout::Split, 2, Init::He, 1).unwrap();
    assert!(TrMatrix::try_new(shape.clone(), TrLayout::Paired, tr.cores().to_vec()).is_err());
    let bt = BtMatrix::<f64>::random(&shape, &2, 2, Init::He, 1).unwrap();
    assert!(BtMatrix::try_new(shape.clone(), 3, bt.cores().to_vec()).is_err());
    assert!(BtMatrix::<f64>::try_new(shape.clone(), 0, vec![]).is_err());
    assert!(DenseMatrix::<f64>::try_new(Array2::zeros((0, 3))).is_err());
    for r in [
        TtMatrix::<f64>::random(&shape, &(), 0, Init::He, 1).err(),
        HtMatrix::<f64>::random(&shape, &tree, 0, Init::He, 1).err(),
        TrMatrix::<f64>::random(&shape, &TrLayout::Paired, 0, Init::He, 1).err(),
        BtMatrix::<f64>::random(&shape, &1, 0, Init::He, 1).err(),
    ] {
        assert!(matches!(r, Some(Error::InvalidParameter { .. })));
    }
}

/// The plan is cached per batch size, printable (one line per contraction, with its
/// flops), its flops are what `flops` reports, and it is never worse than contracting the
/// cores one by one into the batch in order (here a plan does strictly better).
#[test]
fn plans_are_cached_printable_and_cheap() {
    let shape = MatrixShape::try_new(vec![16, 4, 4, 4], vec![8, 20, 20, 18]).unwrap();
    let tree = DimTree::balanced(4).unwrap();
    let ht = HtMatrix::<f32>::random(&shape, &tree, 8, Init::He, 1).unwrap();
    let p = ht.plan(96);
    assert!(std::sync::Arc::ptr_eq(&p, &ht.plan(96)));
    assert!(!std::sync::Arc::ptr_eq(&p, &ht.plan(32)));
    assert_eq!(p.flops(), ht.flops(96));
    assert!(p.is_exact());
    let text = p.to_string();
    assert_eq!(text.lines().count(), 1 + p.n_steps());
    assert!(text.contains("MFLOP") && text.contains("X[b,"));
    // Exhaustive DP optimum for this network (computed independently in the design notes);
    // the plan may spend up to 25% more flops to avoid layout changes.
    let optimum = 1_058_701_312u64;
    assert!(
        p.flops() >= optimum && p.flops() * 4 <= optimum * 5,
        "{}",
        p.flops()
    );
    // Dense: 2 B M N; TT at ranks 4: a tiny fraction.
    let dense = DenseMatrix::<f32>::random(&shape, &(), 1, Init::He, 1).unwrap();
    assert_eq!(dense.flops(96), 2 * 96 * 1024 * 57_600);
    let tt = TtMatrix::<f32>::random(&shape, &(), 4, Init::He, 1).unwrap();
    // Contracting the cores one by one from the last mode: the union of the labels of
    // each pairwise step is (b, j_1..j_k, i_k..i_4, r_{k-1}, r_k).
    let b = 96u64;
    let sequential = 2
        * b
        * (57_600 * 4 * 4
            + 8 * 20 * 20 * 4 * 4 * 4 * 4
            + 8 * 20 * 4 * 4 * 4 * 4 * 4
            + 8 * 4 * 4 * 4 * 4 * 16);
    assert!(
        tt.flops(96) <= sequential,
        "{} vs {sequential}",
        tt.flops(96)
    );
    assert!(tt.flops(96) * 20 < dense.flops(96));
}

/// Training works end to end: a few gradient steps on `||X W^T - Y*||^2` with the
/// gradients of `backward` (in the order of `params_mut`) lower the loss.
#[test]
fn gradient_descent_lowers_the_loss() {
    let shape = MatrixShape::try_new(vec![3, 4], vec![4, 3]).unwrap();
    let tree = DimTree::balanced(2).unwrap();
    for kind in KINDS {
        let mut w = make::<f64>(kind, &shape, &tree, 2, 11);
        let target = make::<f64>(kind, &shape, &tree, 2, 12);
        let x = matrix::<f64>(16, 12, 13);
        let y_star = target.apply(x.view()).unwrap();
        let loss = |w: &dyn TensorizedMatrix<f64>| {
            (&w.apply(x.view()).unwrap() - &y_star)
                .mapv(|v| v * v)
                .sum()
        };
        let l0 = loss(w.as_ref());
        for _ in 0..20 {
            let r = &w.apply(x.view()).unwrap() - &y_star;
            let (_, grads) = w.backward(x.view(), (2.0 * &r).view()).unwrap();
            for (mut p, g) in w.params_mut().into_iter().zip(&grads) {
                p.scaled_add(-1e-4, g);
            }
        }
        let l1 = loss(w.as_ref());
        assert!(l1 < l0, "{kind:?}: loss {l0} -> {l1}");
    }
}

/// Shape helpers: balanced shapes, Display, paired modes; the UCF11 length that factors
/// badly (57,856 = 2^9 * 113) pads to 58,080 with factors at most 22.
#[test]
fn shape_helpers() {
    let s = MatrixShape::balanced(1024, 57_600, 4).unwrap();
    assert_eq!(s.out_modes(), &[8, 8, 4, 4]);
    assert_eq!(s.in_modes(), &[16, 16, 15, 15]);
    assert_eq!(s.to_string(), "8x8x4x4 <- 16x16x15x15");
    assert_eq!(s.paired_modes(), vec![128, 128, 60, 60]);
    let p = pad_to_factorable(57_856, 4, 22).unwrap();
    assert_eq!((p.len, p.padded_len, p.padding), (57_856, 58_080, 224));
    assert!(
        factorizations(58_080, 4, 22)
            .unwrap()
            .contains(&vec![22, 22, 12, 10])
    );
    assert_eq!(pad_to_factorable(57_600, 4, 20).unwrap().padding, 0);
}

/// Larger batches run the chain of contractions fused, chunk by chunk over the leading
/// labels (batch and the first input modes): products still agree with the dense
/// reference for every format, and with a single-row batch.
#[test]
fn fused_execution_matches_dense() {
    let shape = MatrixShape::try_new(vec![4, 3, 4], vec![6, 5, 6]).unwrap();
    let tree = DimTree::balanced(3).unwrap();
    for kind in KINDS {
        let w = make::<f64>(kind, &shape, &tree, 3, 21);
        let dense = w.to_dense();
        for batch in [1, 24, 97] {
            let x = matrix::<f64>(batch, shape.n_in(), 22);
            let y = w.apply(x.view()).unwrap();
            assert_within(
                rel(&y, &x.dot(&dense.t())),
                1e-10,
                &format!("{kind:?} fused apply, batch {batch}"),
            );
            let dy = matrix::<f64>(batch, shape.n_out(), 23);
            let dx = w.apply_transpose(dy.view()).unwrap();
            assert_within(
                rel(&dx, &dy.dot(&dense)),
                1e-10,
                &format!("{kind:?} fused transpose, batch {batch}"),
            );
            let (bdx, _) = w.backward(x.view(), dy.view()).unwrap();
            assert_within(
                rel(&bdx, &dx),
                1e-12,
                &format!("{kind:?} backward dX, batch {batch}"),
            );
        }
    }
}

/// Networks of more than 16 cores fall back to a greedy order (the plan says so) and
/// are still exact: a TT-matrix of order 17.
#[test]
fn large_order_uses_greedy_plan() {
    let mut in_modes = vec![1; 16];
    in_modes.push(2);
    let shape = MatrixShape::try_new(vec![2; 17], in_modes).unwrap();
    let w = TtMatrix::<f64>::random(&shape, &(), 2, Init::He, 3).unwrap();
    assert!(!w.plan(3).is_exact());
    let x = matrix::<f64>(3, 2, 4);
    let dense = w.to_dense();
    assert_within(
        rel(&w.apply(x.view()).unwrap(), &x.dot(&dense.t())),
        1e-10,
        "order-17 TT apply",
    );
}

/// The gradient of every core from the (fused, chunked) backward pass is exact at batch
/// sizes that split the work into several chunks and thread groups: the loss
/// `<X W^T, dY>` is linear in each core `θ_c`, so `<∂L/∂θ_c, δ> = L(θ_c + δ) - L(θ_c)`
/// for any direction `δ`, and `dX = dY W`.
#[test]
fn backward_matches_directional_derivatives() {
    let shape = MatrixShape::try_new(vec![4, 3, 4], vec![6, 5, 6]).unwrap();
    let tree = DimTree::balanced(3).unwrap();
    for kind in KINDS {
        let mut w = make::<f64>(kind, &shape, &tree, 3, 31);
        let dense = w.to_dense();
        for batch in [1, 24, 97] {
            let x = matrix::<f64>(batch, shape.n_in(), 32);
            let dy = matrix::<f64>(batch, shape.n_out(), 33);
            let (dx, grads) = w.backward(x.view(), dy.view()).unwrap();
            assert_within(
                rel(&dx, &dy.dot(&dense)),
                1e-12,
                &format!("{kind:?} dX, batch {batch}"),
            );
            let loss = |w: &dyn TensorizedMatrix<f64>| (&w.apply(x.view()).unwrap() * &dy).sum();
            let l0 = loss(w.as_ref());
            for (c, g) in grads.iter().enumerate() {
                let delta = tnet::dense::random_normal::<f64>(g.shape(), 34 + c as u64);
                let original = w.params()[c].to_owned();
                w.params_mut()[c].assign(&(&original + &delta));
                let l1 = loss(w.as_ref());
                w.params_mut()[c].assign(&original);
                let predicted = (g * &delta).sum();
                let scale = l0.abs() + l1.abs() + (g.mapv(f64::abs) * delta.mapv(f64::abs)).sum();
                assert!(
                    (predicted - (l1 - l0)).abs() <= 1e-11 * scale,
                    "{kind:?} core {c}, batch {batch}: {predicted} vs {}",
                    l1 - l0
                );
            }
        }
    }
}

fn params_only_equals_full<T: Scalar>() {
    let shape = MatrixShape::try_new(vec![4, 3, 4], vec![6, 5, 6]).unwrap();
    let tree = DimTree::balanced(3).unwrap();
    for kind in KINDS {
        let w = make::<T>(kind, &shape, &tree, 3, 41);
        for batch in [0, 1, 24, 97] {
            let x = matrix::<T>(batch, shape.n_in(), 42);
            let dy = matrix::<T>(batch, shape.n_out(), 43);
            let (_, full) = w.backward(x.view(), dy.view()).unwrap();
            let params = w.backward_params(x.view(), dy.view()).unwrap();
            assert_eq!(params, full, "{kind:?} {} batch {batch}", T::NAME);
        }
        let bad = matrix::<T>(2, shape.n_in() + 1, 44);
        let dy = matrix::<T>(2, shape.n_out(), 45);
        assert!(matches!(
            w.backward_params(bad.view(), dy.view()),
            Err(Error::ShapeMismatch { .. })
        ));
    }
}

/// `backward_params` returns exactly (bitwise) the parameter gradients of `backward`, for
/// every format, batch sizes 0 to 97, in f64 and f32, and checks shapes as `backward`.
#[test]
fn params_only_backward_equals_full_backward() {
    params_only_equals_full::<f64>();
    params_only_equals_full::<f32>();
}

/// Numerical rank of `w`: singular values above `1e-10` of the largest.
fn numerical_rank(w: &Array2<f64>) -> usize {
    let f = tnet::linalg::svd(w.view(), tnet::linalg::MatrixTruncation::exact(), false).unwrap();
    let s0 = f.singular_values[0];
    f.singular_values
        .iter()
        .filter(|&&s| s > 1e-10 * s0)
        .count()
}

/// The split layout caps `W`'s matrix rank at `r` (the root separates rows from columns);
/// the Kronecker-split layout at the same rank does not (`W = sum_{k<r} A_k (x) B_k`), and
/// it holds a Kronecker product `A (x) B` exactly at root rank 1, decomposed from dense.
#[test]
fn kronecker_layout_is_not_rank_capped_and_holds_kronecker_products() {
    let shape = MatrixShape::try_new(vec![4, 3], vec![5, 4]).unwrap();
    let r = 2;
    let split = HtMatrix::<f64>::random(
        &shape.split(),
        &DimTree::balanced(4).unwrap(),
        r,
        Init::Glorot,
        3,
    )
    .unwrap();
    assert!(numerical_rank(&split.to_dense()) <= r);
    let (kshape, groups) = shape.kronecker_split();
    let ktree = DimTree::from_groups(&groups).unwrap();
    let kron = HtMatrix::<f64>::random(&kshape, &ktree, r, Init::Glorot, 3).unwrap();
    let kr = numerical_rank(&kron.to_dense());
    assert!(kr > r, "Kronecker layout at rank {r}: matrix rank {kr}");

    // W = A (x) B with A 4x5 and B 3x4 (row (i1, i2), column (j1, j2)).
    let a = matrix::<f64>(4, 5, 11);
    let b = matrix::<f64>(3, 4, 12);
    let w = Array2::from_shape_fn((12, 20), |(i, j)| a[[i / 3, j / 4]] * b[[i % 3, j % 4]]);
    assert!(numerical_rank(&w) == 12);
    let (ht, _) =
        HtMatrix::<f64>::from_dense(w.view(), &kshape, &ktree, &Truncation::rel(1e-12)).unwrap();
    let root = ktree.root();
    let (left, _) = ktree.children(root).unwrap();
    let err = tnet::dense::rel_error(w.view().into_dyn(), ht.to_dense().view().into_dyn()).unwrap();
    assert_within(
        err,
        roundoff::<f64>(w.len()),
        "A (x) B in the Kronecker layout",
    );
    assert_eq!(ht.ranks()[left], 1, "ranks {:?}", ht.ranks());
}
