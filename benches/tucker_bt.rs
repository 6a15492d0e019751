//! Tucker and block-term benchmarks.
//!
//! - `st_hosvd_8^8`: ST-HOSVD of an `8^8` f64 tensor (a smooth function on the grid,
//!   `1 / (1 + Σ_k x_k)` with `x_k = i_k / 7`) at relative tolerance `1e-2`, against the
//!   floor of its unavoidable SVD work measured in the same run: the SVD of the first
//!   mode unfolding of the full tensor alone (copy, QR of the `8^7 x 8` transposed
//!   unfolding, SVD of the `8 x 8` triangle).
//! - `tucker_round` / `tucker_inner`: cost against rank `R` of rounding `X + X` (ranks
//!   `2R`) back to `R`, and of the Tucker–Tucker inner product, on a `32^4` tensor.
//!
//! Run: `cargo bench --bench tucker_bt -- --warm-up-time 1 --measurement-time 3`.
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use ndarray::{ArrayD, Dimension, IxDyn};
use tnet::formats::tucker::st_hosvd;
use tnet::linalg::unfolding_left_svd;
use tnet::{Factorized, Truncation, TuckerTensor};

fn smooth(d: usize, n: usize) -> ArrayD<f64> {
    let h = 1.0 / (n - 1) as f64;
    ArrayD::from_shape_fn(IxDyn(&vec![n; d]), |i| {
        1.0 / (1.0 + i.slice().iter().map(|&k| k as f64 * h).sum::<f64>())
    })
}

fn st_hosvd_vs_floor(c: &mut Criterion) {
    let x = smooth(8, 8);
    let rule = Truncation::rel(1e-2);
    let (t, info) = st_hosvd(x.view(), &rule).unwrap();
    let err = tnet::dense::rel_error(x.view(), t.to_dense().view()).unwrap();
    eprintln!(
        "ST-HOSVD 8^8 rel 1e-2: ranks {:?}, params {}, rel error {err:.3e} (bound {:.3e})",
        t.ranks(),
        t.n_params(),
        info.rel_error_bound()
    );
    let first = rule
        .check()
        .unwrap()
        .per_matrix(tnet::dense::norm(x.view()), 8);
    let mut g = c.benchmark_group("st_hosvd_8^8");
    g.sample_size(10);
    g.bench_function("st_hosvd", |b| {
        b.iter(|| st_hosvd(x.view(), &rule).unwrap())
    });
    g.bench_function("floor_first_unfolding_svd", |b| {
        b.iter(|| unfolding_left_svd(x.view(), &[0], first).unwrap())
    });
    g.finish();
}

fn round_and_inner_vs_rank(c: &mut Criterion) {
    let shape = [32; 4];
    let mut g = c.benchmark_group("tucker_round");
    for r in [2usize, 4, 8, 16] {
        let x = TuckerTensor::<f64>::random(&shape, &[r; 4], 1).unwrap();
        let sum = x.add(&x).unwrap();
        g.bench_with_input(BenchmarkId::from_parameter(r), &sum, |b, s| {
            b.iter(|| s.round(&Truncation::rank(r)).unwrap())
        });
    }
    g.finish();
    let mut g = c.benchmark_group("tucker_inner");
    for r in [2usize, 4, 8, 16] {
        let x = TuckerTensor::<f64>::random(&shape, &[r; 4], 1).unwrap();
        let y = TuckerTensor::<f64>::random(&shape, &[r; 4], 2).unwrap();
        g.bench_with_input(BenchmarkId::from_parameter(r), &(x, y), |b, (x, y)| {
            b.iter(|| x.inner(y).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, st_hosvd_vs_floor, round_and_inner_vs_rank);
criterion_main!(benches);
