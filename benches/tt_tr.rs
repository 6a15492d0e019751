//! TT and TR benchmarks, each against a baseline measured in the same run.
//!
//! - `tt_svd/8^8` and `tr_svd/8^8`: the decomposition of an 8^8 f64 tensor (a sum of three
//!   random TT tensors of ranks 3, 3, 2 with decaying weights, plus 1e-3 relative noise) at
//!   relative tolerance 1e-2, against `floor`: only the SVDs the algorithm cannot avoid,
//!   i.e. `left_svd_streaming` (blocked QR read in place + small SVD) of every sequential
//!   unfolding it factorises, on the same matrices, precomputed outside the timed loop.
//!   `floor_copy_qr` is the same with the copy-then-QR kernel `unfolding_left_svd`.
//! - `tt_round/r` and `tt_inner/r`: TT rounding of `x + x` (ranks 2r back to r) and the
//!   TT-TT inner product, on an 8^10 TT of ranks r = 4, 8, 16, 32 (cost O(d n r^3)).
//! - `tr_inner/r`: the TR-TR inner product for ranks 2, 4, 8 (cost O(d n r^5)).
//!
//! Run: `cargo bench --bench tt_tr -- --warm-up-time 1 --measurement-time 3`.

mod common;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use ndarray::{Array2, ArrayD};
use tnet::formats::tr::tr_svd;
use tnet::formats::tt::tt_svd;
use tnet::linalg::{MatrixTruncation, left_svd_streaming, unfolding_left_svd};
use tnet::{Factorized, TrTensor, Truncation, TtTensor};

const EPS: f64 = 1e-2;

/// The 8^8 test tensor: decaying sum of low-rank trains plus small noise.
fn test_tensor() -> ArrayD<f64> {
    common::low_rank_trains_plus_noise(&[8; 8])
}

/// `U^T C` as a row-major matrix.
fn project(u: ndarray::ArrayView2<'_, f64>, c: ndarray::ArrayView2<'_, f64>) -> Array2<f64> {
    tnet::linalg::matmul(u.t(), c)
        .as_standard_layout()
        .into_owned()
}

/// The sequential unfoldings a TT-SVD sweep factorises, rebuilt from its left-orthogonal
/// cores: `C_0` is the `(r n_1) x rest` matrix, `C_k = U_k^T C_{k-1}` reshaped.
fn sequential_unfoldings(c0: Array2<f64>, cores: &[ndarray::Array3<f64>]) -> Vec<Array2<f64>> {
    let mut out = vec![c0];
    for g in &cores[..cores.len() - 1] {
        let (r, n, q) = g.dim();
        let u = g.view().into_shape_with_order((r * n, q)).unwrap();
        let prev = out.last().unwrap();
        let rows = r * n;
        let c = prev
            .view()
            .into_shape_with_order((rows, prev.len() / rows))
            .unwrap();
        let next = project(u, c);
        out.push(next);
    }
    out.pop(); // the last one is the last core itself, not factorised
    // Reshape each to its factorised (r_k n_k) x rest form.
    out.into_iter()
        .zip(cores)
        .map(|(c, g)| {
            let rows = g.dim().0 * g.dim().1;
            let cols = c.len() / rows;
            c.into_shape_with_order((rows, cols)).unwrap()
        })
        .collect()
}

fn floor(mats: &[Array2<f64>], rules: &[MatrixTruncation<f64>]) -> usize {
    mats.iter()
        .zip(rules)
        .map(|(m, &rule)| left_svd_streaming(m.view(), rule).unwrap().rank)
        .sum()
}

fn floor_copy_qr(mats: &[Array2<f64>], rules: &[MatrixTruncation<f64>]) -> usize {
    mats.iter()
        .zip(rules)
        .map(|(m, &rule)| {
            unfolding_left_svd(m.view().into_dyn(), &[0], rule)
                .unwrap()
                .rank
        })
        .sum()
}

fn decompositions(c: &mut Criterion) {
    let x = test_tensor();
    let n = x.len();
    let norm = tnet::dense::norm(x.view());
    let d = x.ndim();
    let flat = x
        .view()
        .into_shape_with_order((8, n / 8))
        .unwrap()
        .to_owned();

    // TT-SVD and its floor.
    let (tt, _) = tt_svd(x.view(), &Truncation::rel(EPS)).unwrap();
    let tt_mats = sequential_unfoldings(flat.clone(), tt.cores());
    let tol = EPS * norm / ((d - 1) as f64).sqrt();
    let tt_rules = vec![
        MatrixTruncation {
            max_rank: usize::MAX,
            tol
        };
        tt_mats.len()
    ];
    eprintln!("TT-SVD ranks {:?}", tt.ranks());
    let mut g = c.benchmark_group("tt_svd");
    g.sample_size(10);
    g.bench_function("8^8/tt_svd", |b| {
        b.iter(|| tt_svd(x.view(), &Truncation::rel(EPS)).unwrap())
    });
    g.bench_function("8^8/floor", |b| b.iter(|| floor(&tt_mats, &tt_rules)));
    g.bench_function("8^8/floor_copy_qr", |b| {
        b.iter(|| floor_copy_qr(&tt_mats, &tt_rules))
    });
    g.finish();
    drop(tt_mats);

    // TR-SVD and its floor: the first unfolding, then the sweep over W.
    let (tr, _) = tr_svd(x.view(), &Truncation::rel(EPS)).unwrap();
    eprintln!("TR-SVD ranks {:?}", tr.ranks());
    let z0 = tr.core(0);
    let (r0, n0, r1) = z0.dim();
    let u = z0
        .view()
        .permuted_axes([1, 0, 2])
        .as_standard_layout()
        .into_owned()
        .into_shape_with_order((n0, r0 * r1))
        .unwrap();
    let cm = project(u.view(), flat.view());
    let m = cm.ncols();
    let w = cm
        .into_shape_with_order((r0, r1, m))
        .unwrap()
        .permuted_axes([1, 2, 0])
        .as_standard_layout()
        .into_owned()
        .into_shape_with_order((r1 * 8, m / 8 * r0))
        .unwrap();
    let mut tr_mats = vec![flat];
    tr_mats.extend(sequential_unfoldings(w, &tr.cores()[1..]));
    let beta = EPS * norm;
    let mut tr_rules = vec![MatrixTruncation {
        max_rank: usize::MAX,
        tol: 2f64.sqrt() * beta / (d as f64).sqrt(),
    }];
    tr_rules.extend(vec![
        MatrixTruncation {
            max_rank: usize::MAX,
            tol: beta / (d as f64).sqrt()
        };
        tr_mats.len() - 1
    ]);
    let mut g = c.benchmark_group("tr_svd");
    g.sample_size(10);
    g.bench_function("8^8/tr_svd", |b| {
        b.iter(|| tr_svd(x.view(), &Truncation::rel(EPS)).unwrap())
    });
    g.bench_function("8^8/floor", |b| b.iter(|| floor(&tr_mats, &tr_rules)));
    g.bench_function("8^8/floor_copy_qr", |b| {
        b.iter(|| floor_copy_qr(&tr_mats, &tr_rules))
    });
    g.finish();
}

fn rank_scaling(c: &mut Criterion) {
    let shape = [8usize; 10];
    let mut g = c.benchmark_group("tt_round");
    for r in [4usize, 8, 16, 32] {
        let x = TtTensor::<f64>::random(&shape, r, 1).unwrap();
        let doubled = x.add(&x).unwrap();
        g.bench_with_input(BenchmarkId::from_parameter(r), &doubled, |b, s| {
            b.iter(|| s.round(&Truncation::rel(1e-8)).unwrap())
        });
    }
    g.finish();
    let mut g = c.benchmark_group("tt_inner");
    for r in [4usize, 8, 16, 32] {
        let x = TtTensor::<f64>::random(&shape, r, 1).unwrap();
        let y = TtTensor::<f64>::random(&shape, r, 2).unwrap();
        g.bench_with_input(BenchmarkId::from_parameter(r), &(x, y), |b, (x, y)| {
            b.iter(|| x.inner(y).unwrap())
        });
    }
    g.finish();
    let mut g = c.benchmark_group("tr_inner");
    for r in [2usize, 4, 8] {
        let x = TrTensor::<f64>::random(&shape, r, 1).unwrap();
        let y = TrTensor::<f64>::random(&shape, r, 2).unwrap();
        g.bench_with_input(BenchmarkId::from_parameter(r), &(x, y), |b, (x, y)| {
            b.iter(|| x.inner(y).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, decompositions, rank_scaling);
criterion_main!(benches);
